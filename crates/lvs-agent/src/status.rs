//! What the agent reports: the `LvsNodeConfig` status (per-service programmed state, per-real-
//! server health, per-VIP configured state, drift repairs, last error, the `Synced` condition),
//! built the same way for the Kubernetes status subresource and the standalone status file.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::desired::service_key;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::conditions::{reasons, status as condition_status, types};
use lvs_api::{
    Destination, DestinationStatus, DirectorService, FailoverRole, LvsNodeConfigSpec, LvsNodeConfigStatus,
    RealServerState, ServiceStatus, VipStatus,
};
use lvs_core::conditions::{ConditionDraft, merge_conditions};
use lvs_dataplane::model::ServiceState;

use crate::health::HealthMonitor;
use crate::reconciler::{FailedObject, Outcome};

/// The status of `config` (one shard or the whole node) after `outcome`. `previous` carries the
/// conditions' transition times forward.
pub fn node_status(
    config: &LvsNodeConfigSpec,
    generation: Option<i64>,
    outcome: &Outcome,
    health: &HealthMonitor,
    drift_repairs: u64,
    previous: Option<&LvsNodeConfigStatus>,
    now: &Time,
) -> LvsNodeConfigStatus {
    let node_problem = node_problem(outcome);
    let services = config
        .director_services
        .iter()
        .map(|service| service_status(service, outcome, health, node_problem.as_deref()))
        .collect();
    let real_server_vips = config
        .real_server_vips
        .iter()
        .map(|vip| {
            let message = outcome
                .failures_of(&FailedObject::RealServerVip(vip.address))
                .next()
                .map(str::to_owned)
                .or_else(|| node_problem.clone());
            VipStatus {
                address: vip.address,
                configured: message.is_none(),
                message,
            }
        })
        .collect();
    let addresses: BTreeSet<IpAddr> = config
        .director_services
        .iter()
        .filter_map(|service| service.address)
        .collect();
    let failover: Vec<_> = outcome
        .failover
        .iter()
        .filter(|vip| addresses.contains(&vip.address))
        .cloned()
        .collect();
    let mut conditions = previous
        .map(|status| status.conditions.clone())
        .unwrap_or_default();
    let mut drafts = vec![synced(outcome, drift_repairs)];
    let mut owned = vec![types::SYNCED];
    if !failover.is_empty() {
        drafts.push(duplicate_vip(&failover));
        owned.push(types::DUPLICATE_VIP);
        drafts.push(key_mismatch(&failover));
        owned.push(types::FAILOVER_KEY_MISMATCH);
    }
    merge_conditions(&mut conditions, drafts, &owned, generation, now);
    LvsNodeConfigStatus {
        observed_generation: generation,
        conditions,
        services,
        real_server_vips,
        connection_sync: (!failover.is_empty())
            .then(|| outcome.connection_sync.clone())
            .flatten(),
        failover,
        drift_repairs,
        last_error: outcome.error_summary(),
    }
}

/// What is wrong node-wide, if anything: the kernel could not be read, or a node-wide
/// operation failed. Every object without a failure of its own shows it.
fn node_problem(outcome: &Outcome) -> Option<String> {
    outcome
        .observe_error
        .as_ref()
        .map(|error| format!("reading the kernel: {error}"))
        .or_else(|| outcome.failures_of(&FailedObject::Node).next().map(str::to_owned))
}

/// One director service: programmed or why not, this node's role for its VIP, and each real
/// server's programmed weight and health.
fn service_status(
    service: &DirectorService,
    outcome: &Outcome,
    health: &HealthMonitor,
    node_problem: Option<&str>,
) -> ServiceStatus {
    let object = FailedObject::VirtualServer(service.virtual_server.clone());
    let failure = outcome
        .failures
        .iter()
        .find(|failure| failure.object == object && failure.concerns_vip(service.address));
    let message = failure
        .map(|failure| failure.message.as_str())
        .or(node_problem)
        .map(str::to_owned);
    let reason = failure.and_then(|failure| failure.reason).map(str::to_owned);
    let role = service
        .address
        .and_then(|address| outcome.failover.iter().find(|vip| vip.address == address))
        .map_or(FailoverRole::Active, |vip| vip.role);
    let programmed = service_key(service).and_then(|key| outcome.desired.services.get(&key));
    ServiceStatus {
        virtual_server: service.virtual_server.clone(),
        address: service.address.map(|address| address.to_string()),
        generation: service.generation,
        programmed: message.is_none() && programmed.is_some(),
        role: Some(role),
        message: message.or_else(|| {
            programmed
                .is_none()
                .then(|| "no usable address, port or fwmark".to_owned())
        }),
        reason,
        destinations: service
            .destinations
            .iter()
            .map(|destination| destination_status(service, destination, programmed, health))
            .collect(),
    }
}

/// One real server of a director service: the weight the kernel has, and its health checks.
fn destination_status(
    service: &DirectorService,
    destination: &Destination,
    programmed: Option<&ServiceState>,
    health: &HealthMonitor,
) -> DestinationStatus {
    let weight = programmed
        .and_then(|state| {
            state
                .destinations
                .iter()
                .find(|((address, port), _)| *address == destination.address && *port == destination.port)
        })
        .map_or(0, |(_, programmed)| {
            u16::try_from(programmed.weight).unwrap_or(u16::MAX)
        });
    let checked = health.status(&service.virtual_server, &destination.real_server);
    let probed = destination.state == RealServerState::Active;
    DestinationStatus {
        real_server: destination.real_server.clone(),
        healthy: checked
            .as_ref()
            .filter(|_| probed)
            .and_then(|status| status.healthy),
        weight,
        latency_millis: checked
            .as_ref()
            .and_then(|status| status.latency)
            .map(|latency| u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
        consecutive_successes: checked.as_ref().map_or(0, |status| status.consecutive_successes),
        consecutive_failures: checked.as_ref().map_or(0, |status| status.consecutive_failures),
        last_failure: checked.and_then(|status| status.last_failure),
    }
}

/// `Synced`: True when every operation succeeded (saying how often drift was repaired).
fn synced(outcome: &Outcome, drift_repairs: u64) -> ConditionDraft {
    if outcome.synced {
        ConditionDraft::new(
            types::SYNCED,
            condition_status::TRUE,
            reasons::SYNCED,
            if drift_repairs == 0 {
                "the kernel matches this config".to_owned()
            } else {
                format!(
                    "the kernel matches this config; changes made to it by hand were undone {drift_repairs} time(s)"
                )
            },
        )
    } else {
        ConditionDraft::new(
            types::SYNCED,
            condition_status::FALSE,
            reasons::SYNC_FAILED,
            outcome
                .error_summary()
                .unwrap_or_else(|| "not every operation succeeded".to_owned()),
        )
    }
}

/// `DuplicateVIP`: True while another host answered ARP/NDP for one of the failover VIPs.
fn duplicate_vip(failover: &[lvs_api::VipFailoverStatus]) -> ConditionDraft {
    let duplicates: Vec<String> = failover
        .iter()
        .filter(|vip| !vip.duplicate_owners.is_empty())
        .map(|vip| {
            let what = if vip.role == FailoverRole::Active {
                "this node holds it too"
            } else {
                "this node stepped down"
            };
            format!(
                "{} answered by {} ({what})",
                vip.address,
                vip.duplicate_owners.join(", ")
            )
        })
        .collect();
    if duplicates.is_empty() {
        ConditionDraft::new(
            types::DUPLICATE_VIP,
            condition_status::FALSE,
            reasons::NO_DUPLICATE,
            "no other host answers for this node's failover VIPs",
        )
    } else {
        ConditionDraft::new(
            types::DUPLICATE_VIP,
            condition_status::TRUE,
            reasons::ANSWERED_ELSEWHERE,
            duplicates.join("; "),
        )
    }
}

/// `FailoverKeyMismatch`: True while a peer director signs its heartbeats with a key this
/// node does not have (the two cannot hear each other: a split brain in the making).
fn key_mismatch(failover: &[lvs_api::VipFailoverStatus]) -> ConditionDraft {
    let peers: BTreeSet<String> = failover
        .iter()
        .flat_map(|vip| vip.key_mismatch.iter())
        .map(|peer| format!("{} (key id {})", peer.node, peer.key_id))
        .collect();
    if peers.is_empty() {
        ConditionDraft::new(
            types::FAILOVER_KEY_MISMATCH,
            condition_status::FALSE,
            reasons::KEYS_MATCH,
            "no peer director signs its heartbeats with a key this node does not have",
        )
    } else {
        ConditionDraft::new(
            types::FAILOVER_KEY_MISMATCH,
            condition_status::TRUE,
            reasons::PEER_USES_ANOTHER_KEY,
            format!(
                "heartbeats of {} are signed with a key this node does not have: give every director the same failover key",
                peers.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    }
}

/// Every (VirtualServer, RealServer) pair a config health-checks.
pub fn checked_pairs(config: &LvsNodeConfigSpec) -> BTreeSet<(String, String)> {
    config
        .director_services
        .iter()
        .flat_map(|service| {
            service
                .destinations
                .iter()
                .map(|destination| (service.virtual_server.clone(), destination.real_server.clone()))
        })
        .collect()
}

/// Whether two statuses say the same (ignoring condition timestamps, and unless `volatile`,
/// health-check latencies and consecutive counts): an unchanged status is never written.
pub fn same_status(left: &LvsNodeConfigStatus, right: &LvsNodeConfigStatus, volatile: bool) -> bool {
    let services = |status: &LvsNodeConfigStatus| {
        let mut services = status.services.clone();
        if !volatile {
            for destination in services
                .iter_mut()
                .flat_map(|service| service.destinations.iter_mut())
            {
                destination.latency_millis = None;
                destination.consecutive_successes = 0;
                destination.consecutive_failures = 0;
            }
        }
        services
    };
    left.observed_generation == right.observed_generation
        && services(left) == services(right)
        && left.real_server_vips == right.real_server_vips
        && left.drift_repairs == right.drift_repairs
        && left.failover == right.failover
        && (if volatile {
            left.connection_sync == right.connection_sync
        } else {
            sync_without_count(left) == sync_without_count(right)
        })
        && left.last_error == right.last_error
        && lvs_core::conditions::lists_equal_ignoring_time(&left.conditions, &right.conditions)
}

/// The sync status with the connection count left out unless it matters (resync).
fn sync_without_count(status: &LvsNodeConfigStatus) -> Option<lvs_api::ConnectionSyncStatus> {
    status
        .connection_sync
        .clone()
        .map(|sync| lvs_api::ConnectionSyncStatus {
            connections: 0,
            ..sync
        })
}
