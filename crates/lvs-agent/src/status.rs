//! What the agent reports: the `LvsNodeConfig` status (per-service programmed state, per-real-
//! server health, per-VIP configured state, drift repairs, last error, the `Synced` condition),
//! built the same way for the Kubernetes status subresource and the standalone status file.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::conditions::{reasons, status as condition_status, types};
use lvs_api::{
    DestinationStatus, LvsNodeConfigSpec, LvsNodeConfigStatus, RealServerState, ServiceStatus, VipStatus,
};
use lvs_core::conditions::{ConditionDraft, merge_conditions};
use lvs_dataplane::desired::service_key;

use crate::health::HealthMonitor;
use crate::reconciler::{NODE_OBJECT, Outcome};

/// The role a director reports for its services (every director holds its VIPs until HA
/// elections decide otherwise).
const ACTIVE: &str = "Active";

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
    let node_failures: Vec<&str> = outcome.failures_of(NODE_OBJECT).collect();
    let node_problem = outcome
        .observe_error
        .as_ref()
        .map(|error| format!("reading the kernel: {error}"))
        .or_else(|| node_failures.first().map(|failure| (*failure).to_owned()));
    let services = config
        .director_services
        .iter()
        .map(|service| {
            let failures: Vec<&str> = outcome.failures_of(&service.virtual_server).collect();
            let message = failures
                .first()
                .map(|failure| (*failure).to_owned())
                .or_else(|| node_problem.clone());
            let key = service_key(service);
            let programmed_destinations = key.as_ref().and_then(|key| outcome.desired.services.get(key));
            ServiceStatus {
                virtual_server: service.virtual_server.clone(),
                generation: service.generation,
                programmed: message.is_none() && programmed_destinations.is_some(),
                role: Some(ACTIVE.to_owned()),
                message: message.or_else(|| {
                    programmed_destinations
                        .is_none()
                        .then(|| "no usable address, port or fwmark".to_owned())
                }),
                destinations: service
                    .destinations
                    .iter()
                    .map(|destination| {
                        let weight = programmed_destinations
                            .and_then(|state| {
                                state.destinations.iter().find(|((address, port), _)| {
                                    address.to_string() == destination.address && *port == destination.port
                                })
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
                            consecutive_successes: checked
                                .as_ref()
                                .map_or(0, |status| status.consecutive_successes),
                            consecutive_failures: checked
                                .as_ref()
                                .map_or(0, |status| status.consecutive_failures),
                            last_failure: checked.and_then(|status| status.last_failure),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let real_server_vips = config
        .real_server_vips
        .iter()
        .map(|vip| {
            let message = outcome
                .failures_of(&format!("vip/{}", vip.address))
                .next()
                .map(str::to_owned)
                .or_else(|| node_problem.clone());
            VipStatus {
                address: vip.address.clone(),
                configured: message.is_none(),
                message,
            }
        })
        .collect();
    let mut conditions = previous
        .map(|status| status.conditions.clone())
        .unwrap_or_default();
    let synced = if outcome.synced {
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
    };
    merge_conditions(&mut conditions, vec![synced], &[types::SYNCED], generation, now);
    LvsNodeConfigStatus {
        observed_generation: generation,
        conditions,
        services,
        real_server_vips,
        failover: Vec::new(),
        connection_sync: None,
        drift_repairs,
        last_error: outcome.error_summary(),
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
        && left.last_error == right.last_error
        && lvs_core::conditions::lists_equal_ignoring_time(&left.conditions, &right.conditions)
}
