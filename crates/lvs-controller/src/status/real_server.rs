//! A RealServer's status: `Healthy` from the health checks of the active director of every
//! VirtualServer that uses it, `Configured` from its node's agent (VIP and ARP settings in place)
//! or from the build's problems, and the node and VirtualServers it was resolved to.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::conditions::{reasons, status as condition_status, types};
use lvs_api::{RealServer, RealServerState, RealServerStatus, RealServerVip};
use lvs_core::conditions::{ConditionDraft, merge_conditions};
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::roles::Placement;
use lvs_core::{BuildOutput, Severity};

use super::{AgentReports, Service};

/// The condition types a RealServer's status is computed with.
pub const OWNED: [&str; 2] = [types::HEALTHY, types::CONFIGURED];

/// The status `object` should have. `services` holds the service of every accepted
/// VirtualServer; `previous` carries the conditions' transition times forward.
pub fn real_server_status(
    object: &RealServer,
    output: &BuildOutput,
    services: &BTreeMap<ObjectKey, Service>,
    reports: &AgentReports,
    previous: Option<&RealServerStatus>,
    now: &Time,
) -> RealServerStatus {
    let key = key_of(Kind::RealServer, &object.metadata);
    let generation = object.metadata.generation;
    let mut status = RealServerStatus {
        observed_generation: generation,
        conditions: previous
            .map(|previous| previous.conditions.clone())
            .unwrap_or_default(),
        ..RealServerStatus::default()
    };
    let problem = output
        .problems_of(&key)
        .iter()
        .find(|problem| problem.object == key && problem.severity == Severity::Error);
    let outcome = output.real_servers.get(&key);
    let mut drafts = Vec::new();
    match outcome {
        Some(outcome) if outcome.valid => {
            status.node = match &outcome.placement {
                Some(
                    Placement::Managed(node) | Placement::UnlabelledNode(node) | Placement::MissingNode(node),
                ) => Some(node.clone()),
                Some(Placement::External) | None => None,
            };
            status.virtual_servers = outcome
                .virtual_servers
                .iter()
                .map(ObjectKey::qualified_name)
                .collect();
            if !outcome.virtual_servers.is_empty() && object.spec.state != RealServerState::Disabled {
                drafts.push(healthy(&key, &outcome.virtual_servers, services));
            }
            if let Some(problem) = problem {
                drafts.push(ConditionDraft::new(
                    types::CONFIGURED,
                    condition_status::FALSE,
                    problem.reason,
                    problem.describe(),
                ));
            } else if !outcome.virtual_servers.is_empty() {
                let address = object.spec.address.parse::<IpAddr>().ok();
                drafts.push(configured(&key, address, outcome, output, reports));
            }
        }
        _ => {
            let message =
                problem.map_or_else(|| "the spec is invalid".to_owned(), |problem| problem.describe());
            drafts.push(ConditionDraft::new(
                types::CONFIGURED,
                condition_status::FALSE,
                problem.map_or(reasons::INVALID, |problem| problem.reason),
                message,
            ));
        }
    }
    merge_conditions(&mut status.conditions, drafts, &OWNED, generation, now);
    status
}

fn healthy(
    key: &ObjectKey,
    virtual_servers: &[ObjectKey],
    services: &BTreeMap<ObjectKey, Service>,
) -> ConditionDraft {
    let name = key.qualified_name();
    let mut passing = None;
    for virtual_server in virtual_servers {
        let Some(service) = services.get(virtual_server) else {
            continue;
        };
        let (Some(director), Some(destination)) = (&service.active, service.destinations.get(&name)) else {
            continue;
        };
        let seen_by = format!("from {director} for {}", virtual_server.qualified_name());
        match destination.healthy {
            Some(false) => {
                let failure = destination
                    .last_failure
                    .as_deref()
                    .map_or_else(String::new, |failure| format!(": {failure}"));
                return ConditionDraft::new(
                    types::HEALTHY,
                    condition_status::FALSE,
                    reasons::CHECK_FAILED,
                    format!("failing its checks {seen_by}{failure}"),
                );
            }
            Some(true) if passing.is_none() => passing = Some(seen_by),
            _ => {}
        }
    }
    match passing {
        Some(seen_by) => ConditionDraft::new(
            types::HEALTHY,
            condition_status::TRUE,
            reasons::CHECK_PASSED,
            format!("passing its checks {seen_by}"),
        ),
        None => ConditionDraft::new(
            types::HEALTHY,
            condition_status::UNKNOWN,
            reasons::PENDING,
            "no health-check result yet (or health checking is off)",
        ),
    }
}

fn configured(
    key: &ObjectKey,
    address: Option<IpAddr>,
    outcome: &lvs_core::build::RealServerOutcome,
    output: &BuildOutput,
    reports: &AgentReports,
) -> ConditionDraft {
    let Some(Placement::Managed(node)) = &outcome.placement else {
        let message = output
            .problems_of(key)
            .iter()
            .find(|problem| &problem.object == key && problem.reason == reasons::UNMANAGED)
            .map_or_else(
                || "not on a cluster node: its VIP and ARP settings are the administrator's job".to_owned(),
                |problem| problem.message.clone(),
            );
        return ConditionDraft::new(
            types::CONFIGURED,
            condition_status::UNKNOWN,
            reasons::UNMANAGED,
            message,
        );
    };
    let users: Vec<String> = outcome
        .virtual_servers
        .iter()
        .map(ObjectKey::qualified_name)
        .collect();
    let used: Vec<&RealServerVip> = output
        .node_configs
        .get(node)
        .into_iter()
        .flat_map(|config| config.real_server_vips.iter())
        .filter(|vip| vip.virtual_servers.iter().any(|user| users.contains(user)))
        .collect();
    // A dual-stack VirtualServer puts both its VIPs on a node that holds real servers of both
    // families; this real server needs only the one of its own family. A VIP of the other family
    // is still needed when its VirtualServers have no VIP of this family here (a Tunnel across
    // families).
    let same_family =
        |vip: &RealServerVip| address.is_none_or(|address| address.is_ipv6() == vip.address.is_ipv6());
    let needed: Vec<IpAddr> = used
        .iter()
        .filter(|vip| {
            same_family(vip)
                || !used.iter().any(|other| {
                    same_family(other)
                        && other
                            .virtual_servers
                            .iter()
                            .any(|user| users.contains(user) && vip.virtual_servers.contains(user))
                })
        })
        .map(|vip| vip.address)
        .collect();
    if needed.is_empty() {
        return ConditionDraft::new(
            types::CONFIGURED,
            condition_status::TRUE,
            reasons::CONFIGURED,
            format!("node {node} needs no VIP for its VirtualServers"),
        );
    }
    let mut waiting = Vec::new();
    for &vip in &needed {
        match reports.vip(node, vip) {
            Some(report) if report.configured => {}
            Some(report) => {
                let message = report.message.as_deref().unwrap_or("not configured");
                return ConditionDraft::new(
                    types::CONFIGURED,
                    condition_status::FALSE,
                    reasons::KERNEL_ERROR,
                    format!("node {node}: VIP {vip}: {message}"),
                );
            }
            None => waiting.push(vip),
        }
    }
    if waiting.is_empty() {
        ConditionDraft::new(
            types::CONFIGURED,
            condition_status::TRUE,
            reasons::CONFIGURED,
            format!("node {node} accepts {}", listed(&needed)),
        )
    } else {
        ConditionDraft::new(
            types::CONFIGURED,
            condition_status::FALSE,
            reasons::PENDING,
            format!(
                "waiting for the agent on node {node} to configure {}",
                listed(&waiting)
            ),
        )
    }
}

/// `addresses`, comma-separated.
fn listed(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
