//! A VirtualServer's status: `Accepted` from the build, `Programmed` ("n/m directors"), `Ready`
//! (the active director serves at least one real server), `Degraded`, and the fields the
//! printer columns read (`activeDirector`, `ready` as `healthy/total`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::conditions::{reasons, status as condition_status, types};
use lvs_api::labels::DIRECTOR_ROLE;
use lvs_api::{RealServerState, VirtualServer, VirtualServerAddress, VirtualServerStatus};
use lvs_core::BuildOutput;
use lvs_core::conditions::{ConditionDraft, merge_conditions};
use lvs_core::object::{Kind, key_of};

use super::Service;

/// The condition types a VirtualServer's status is computed with.
pub const OWNED: [&str; 6] = [
    types::ACCEPTED,
    types::PROGRAMMED,
    types::READY,
    types::DEGRADED,
    types::DUPLICATE_VIP,
    types::FAILOVER_KEY_MISMATCH,
];

/// The status `object` should have, given the build and its service's reports. `previous`
/// carries the conditions' transition times forward.
pub fn virtual_server_status(
    object: &VirtualServer,
    output: &BuildOutput,
    service: Option<&Service>,
    previous: Option<&VirtualServerStatus>,
    now: &Time,
) -> VirtualServerStatus {
    let key = key_of(Kind::VirtualServer, &object.metadata);
    let generation = object.metadata.generation;
    let mut status = VirtualServerStatus {
        observed_generation: generation,
        conditions: previous
            .map(|previous| previous.conditions.clone())
            .unwrap_or_default(),
        ..VirtualServerStatus::default()
    };
    let Some(outcome) = output.virtual_servers.get(&key) else {
        return previous.cloned().unwrap_or_default();
    };
    let drafts = match (outcome.accepted, service) {
        (true, Some(service)) => {
            let ready = outcome
                .real_servers
                .iter()
                .filter(|real_server| service.serves(&real_server.qualified_name()))
                .count();
            let total = outcome.real_servers.len();
            status.address = outcome.address.map(|address| address.to_string());
            status.address_pool = outcome.pool.clone();
            status.addresses = outcome
                .addresses
                .iter()
                .map(|(address, pool)| VirtualServerAddress {
                    address: address.to_string(),
                    address_pool: Some(pool.clone()),
                })
                .collect();
            status.vip = (!status.addresses.is_empty()).then(|| {
                status
                    .addresses
                    .iter()
                    .map(|entry| entry.address.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            });
            status.active_director = service.active.clone();
            status.ready = Some(format!("{ready}/{total}"));
            status.ready_real_servers = u32::try_from(ready).unwrap_or(u32::MAX);
            status.total_real_servers = u32::try_from(total).unwrap_or(u32::MAX);
            status.directors = service.directors.clone();
            status.last_failover = service.last_failover.clone();
            let failover = service
                .resolved
                .iter()
                .any(|resolved| resolved.high_availability.is_some());
            let mut drafts = vec![
                ConditionDraft::new(
                    types::ACCEPTED,
                    condition_status::TRUE,
                    outcome.reason,
                    if outcome.message.is_empty() {
                        "valid, its VIP granted by an AddressPool, and no other VirtualServer claims its VIP, port and protocol".to_owned()
                    } else {
                        outcome.message.clone()
                    },
                ),
                programmed(service, output, &key),
                serving(object, service, ready, total),
                degraded(service),
            ];
            if failover {
                drafts.push(duplicate_vip(service));
                drafts.push(key_mismatch(service));
            }
            drafts
        }
        _ => vec![ConditionDraft::new(
            types::ACCEPTED,
            condition_status::FALSE,
            outcome.reason,
            outcome.message.clone(),
        )],
    };
    merge_conditions(&mut status.conditions, drafts, &OWNED, generation, now);
    status
}

/// `DuplicateVIP`, for a VIP with failover: True while a director reports another host
/// answering for it.
fn duplicate_vip(service: &Service) -> ConditionDraft {
    if service.duplicates.is_empty() {
        return ConditionDraft::new(
            types::DUPLICATE_VIP,
            condition_status::FALSE,
            reasons::NO_DUPLICATE,
            "only the active director answers for the VIP",
        );
    }
    let seen: Vec<String> = service
        .duplicates
        .iter()
        .map(|(node, owners)| format!("{node} sees {}", owners.join(", ")))
        .collect();
    ConditionDraft::new(
        types::DUPLICATE_VIP,
        condition_status::TRUE,
        reasons::ANSWERED_ELSEWHERE,
        format!("another host answers ARP/NDP for the VIP: {}", seen.join("; ")),
    )
}

/// `FailoverKeyMismatch`, for a VIP with failover: True while a director hears a peer sign its
/// heartbeats with a key it does not have (they cannot hear each other: both may hold the VIP).
fn key_mismatch(service: &Service) -> ConditionDraft {
    if service.key_mismatches.is_empty() {
        return ConditionDraft::new(
            types::FAILOVER_KEY_MISMATCH,
            condition_status::FALSE,
            reasons::KEYS_MATCH,
            "the directors sign their heartbeats with keys they share",
        );
    }
    let seen: Vec<String> = service
        .key_mismatches
        .iter()
        .map(|(director, peer, key_id)| format!("{director} hears {peer} under key id {key_id}"))
        .collect();
    ConditionDraft::new(
        types::FAILOVER_KEY_MISMATCH,
        condition_status::TRUE,
        reasons::PEER_USES_ANOTHER_KEY,
        format!(
            "a director signs its heartbeats with a key its peer does not have: {}; give every director the same failover key",
            seen.join("; ")
        ),
    )
}

fn programmed(service: &Service, output: &BuildOutput, key: &lvs_core::ObjectKey) -> ConditionDraft {
    let total = service.directors.len();
    let done = service
        .directors
        .iter()
        .filter(|director| director.programmed)
        .count();
    if total == 0 {
        let message = output
            .problems_of(key)
            .iter()
            .find(|problem| &problem.object == key && problem.reason == reasons::NO_DIRECTORS)
            .map_or_else(
                || format!("no node carries {DIRECTOR_ROLE}=true"),
                |problem| problem.message.clone(),
            );
        return ConditionDraft::new(
            types::PROGRAMMED,
            condition_status::FALSE,
            reasons::NO_DIRECTORS,
            message,
        );
    }
    let counted = format!("{done}/{total} directors");
    if done == total {
        return ConditionDraft::new(
            types::PROGRAMMED,
            condition_status::TRUE,
            reasons::PROGRAMMED,
            counted,
        );
    }
    match &service.failure {
        Some((node, message, reason)) => ConditionDraft::new(
            types::PROGRAMMED,
            condition_status::FALSE,
            // Only the reasons an agent may give; anything else is a kernel error.
            match reason.as_deref() {
                Some(reasons::FOREIGN_SERVICE) => reasons::FOREIGN_SERVICE,
                _ => reasons::KERNEL_ERROR,
            },
            format!("{counted}; {node}: {message}"),
        ),
        None => {
            let waiting = service.waiting();
            ConditionDraft::new(
                types::PROGRAMMED,
                condition_status::FALSE,
                reasons::PENDING,
                format!("{counted}; waiting for {}", waiting.join(", ")),
            )
        }
    }
}

fn serving(object: &VirtualServer, service: &Service, ready: usize, total: usize) -> ConditionDraft {
    let Some(active) = &service.active else {
        let (reason, message) = if service.directors.is_empty() {
            (reasons::NO_DIRECTORS, "no director node".to_owned())
        } else {
            (
                reasons::PENDING,
                "no director has programmed the service yet".to_owned(),
            )
        };
        return ConditionDraft::new(types::READY, condition_status::FALSE, reason, message);
    };
    if ready > 0 {
        return ConditionDraft::new(
            types::READY,
            condition_status::TRUE,
            reasons::SERVING,
            format!("{active} serves {ready} of {total} real servers"),
        );
    }
    let fallback = if object.spec.fallback.is_some() {
        "; the fallback server answers"
    } else {
        ""
    };
    ConditionDraft::new(
        types::READY,
        condition_status::FALSE,
        reasons::NO_HEALTHY_REAL_SERVERS,
        format!("{active} has no healthy real server to send traffic to{fallback}"),
    )
}

fn degraded(service: &Service) -> ConditionDraft {
    if service.active.is_none() {
        return ConditionDraft::new(
            types::DEGRADED,
            condition_status::TRUE,
            reasons::PENDING,
            "no director serves the VIP yet",
        );
    }
    let expected = service
        .resolved
        .iter()
        .flat_map(|resolved| resolved.destinations.iter())
        .filter(|destination| destination.state == RealServerState::Active && destination.weight > 0);
    let mut missing = Vec::new();
    for destination in expected {
        if service.serves(&destination.real_server) {
            continue;
        }
        let report = service.destinations.get(&destination.real_server);
        let why = if destination.awaiting_node {
            "its node has not configured the VIP yet".to_owned()
        } else {
            match report {
                Some(report) if report.healthy == Some(false) => report.last_failure.clone().map_or_else(
                    || "failing its checks".to_owned(),
                    |failure| format!("failing its checks: {failure}"),
                ),
                Some(_) => "weight 0 in the kernel".to_owned(),
                None => "not reported by the director yet".to_owned(),
            }
        };
        missing.push(format!("{} ({why})", destination.real_server));
    }
    if !missing.is_empty() {
        return ConditionDraft::new(
            types::DEGRADED,
            condition_status::TRUE,
            reasons::REAL_SERVERS_UNHEALTHY,
            format!("not serving: {}", missing.join(", ")),
        );
    }
    let waiting = service.waiting();
    if !waiting.is_empty() {
        return ConditionDraft::new(
            types::DEGRADED,
            condition_status::TRUE,
            reasons::PENDING,
            format!("directors not programmed: {}", waiting.join(", ")),
        );
    }
    ConditionDraft::new(
        types::DEGRADED,
        condition_status::FALSE,
        reasons::AS_DECLARED,
        "every director and active real server serves",
    )
}
