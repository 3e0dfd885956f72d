//! Status, computed purely: the agents' reports in their LvsNodeConfig status, read per node
//! ([`AgentReports`]) and per VirtualServer ([`Service`]: its directors, the active one, and how
//! that director sees each real server), combined with the build's outcomes into VirtualServer
//! and RealServer status. Two statuses that differ only in condition timestamps are the same, and
//! the same status is never written.

mod address_pool;
mod inputs;
mod real_server;
#[cfg(test)]
mod tests;
mod virtual_server;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;

use lvs_api::{
    DestinationStatus, DirectorService, DirectorStatus, FailoverRecord, FailoverRole, LvsNodeConfig,
    RealServerStatus, ServiceStatus, VipFailoverStatus, VipStatus, VirtualServerStatus,
};
use lvs_core::BuildOutput;
use lvs_core::build::VirtualServerOutcome;
use lvs_core::conditions::lists_equal_ignoring_time;
use lvs_core::object::ObjectKey;

pub use address_pool::{address_pool_status, same_address_pool_status};
pub use inputs::{Changes, StatusInputs};
pub use real_server::real_server_status;
pub use virtual_server::virtual_server_status;

/// What every node's agent reported, merged across the node's shards.
#[derive(Debug, Clone, Default)]
pub struct AgentReports {
    services: BTreeMap<(String, String), ServiceStatus>,
    vips: BTreeMap<(String, IpAddr), VipStatus>,
    failover: BTreeMap<(String, IpAddr), VipFailoverStatus>,
}

impl AgentReports {
    /// Reads the status of every config.
    pub fn new<'a>(configs: impl IntoIterator<Item = &'a LvsNodeConfig>) -> Self {
        let mut reports = Self::default();
        for config in configs {
            let Some(status) = &config.status else {
                continue;
            };
            let node = &config.spec.node_name;
            for service in &status.services {
                match reports
                    .services
                    .entry((node.clone(), service.virtual_server.clone()))
                {
                    Entry::Vacant(entry) => {
                        entry.insert(service.clone());
                    }
                    // A dual-stack VirtualServer has one service per VIP family on a director.
                    Entry::Occupied(mut entry) => merge_service(entry.get_mut(), service),
                }
            }
            for vip in &status.real_server_vips {
                reports.vips.insert((node.clone(), vip.address), vip.clone());
            }
            for vip in &status.failover {
                reports.failover.insert((node.clone(), vip.address), vip.clone());
            }
        }
        reports
    }

    /// What `node` reported about the service of `virtual_server` (`namespace/name`).
    pub fn service(&self, node: &str, virtual_server: &str) -> Option<&ServiceStatus> {
        self.services.get(&(node.to_owned(), virtual_server.to_owned()))
    }

    /// What director `node` reported about the failover of `vip`.
    pub fn failover(&self, node: &str, vip: IpAddr) -> Option<&VipFailoverStatus> {
        self.failover.get(&(node.to_owned(), vip))
    }

    /// What `node` reported about accepting `vip` as a real server.
    pub fn vip(&self, node: &str, vip: IpAddr) -> Option<&VipStatus> {
        self.vips.get(&(node.to_owned(), vip))
    }
}

/// The services of `name` (`namespace/name`) as the build wrote them for its directors, one
/// per VIP, IPv4 first. Each VIP of a dual-stack VirtualServer may come from another pool and so
/// have other directors: directors are looked at until every VIP is found.
fn resolved_services(
    name: &str,
    outcome: &VirtualServerOutcome,
    output: &BuildOutput,
) -> Vec<DirectorService> {
    let wanted = outcome.addresses.len().max(1);
    let mut found: Vec<DirectorService> = Vec::new();
    for director in &outcome.directors {
        let Some(config) = output.node_configs.get(director) else {
            continue;
        };
        // A director's services are sorted by VirtualServer (the build sorts them).
        let services = &config.director_services;
        let start = services.partition_point(|service| service.virtual_server.as_str() < name);
        let end = start + services[start..].partition_point(|service| service.virtual_server == name);
        for service in &services[start..end] {
            if !found.iter().any(|known| known.address == service.address) {
                found.push(service.clone());
            }
        }
        if found.len() >= wanted {
            break;
        }
    }
    found.sort_by_key(|service| service.address.is_some_and(|address| address.is_ipv6()));
    found
}

/// Folds the report of another service of the same VirtualServer on the same director (the
/// other VIP family of a dual-stack one) into `merged`: programmed when both are, Active when
/// either holds its VIP, the first problem, every destination.
fn merge_service(merged: &mut ServiceStatus, other: &ServiceStatus) {
    merged.programmed &= other.programmed;
    if other.role == Some(FailoverRole::Active) {
        merged.role = other.role;
    }
    if merged.message.is_none() {
        merged.message.clone_from(&other.message);
        merged.reason.clone_from(&other.reason);
    }
    if merged.generation != other.generation {
        merged.generation = merged.generation.min(other.generation);
    }
    merged.destinations.extend(other.destinations.iter().cloned());
}

/// How one accepted VirtualServer is served, from its directors' reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    /// Every director and whether it programmed the current generation.
    pub directors: Vec<DirectorStatus>,
    /// The director holding the VIP: the first programmed one reporting the Active role (for a
    /// dual-stack VirtualServer, the first holding one of its VIPs).
    pub active: Option<String>,
    /// The resolved services, as the build wrote them for the directors: one per VIP family
    /// (two for a dual-stack VirtualServer), IPv4 first.
    pub resolved: Vec<DirectorService>,
    /// Each real server (`namespace/name`) as the active director (of its VIP) sees it.
    pub destinations: BTreeMap<String, DestinationStatus>,
    /// The first reason a director gave for not having programmed the service: the director,
    /// its message, and the condition reason when the message has one of its own.
    pub failure: Option<(String, String, Option<String>)>,
    /// The newest takeover of the VIP any director reported.
    pub last_failover: Option<FailoverRecord>,
    /// Directors that found another host answering for the VIP, with what they found.
    pub duplicates: Vec<(String, Vec<String>)>,
    /// Directors that hear a peer of the VIP sign its heartbeats with a key they do not have:
    /// (director, peer, the peer's key id).
    pub key_mismatches: Vec<(String, String, String)>,
}

impl Service {
    /// Reads the directors' reports about `key` at `generation`.
    pub fn new(
        key: &ObjectKey,
        generation: Option<i64>,
        outcome: &VirtualServerOutcome,
        output: &BuildOutput,
        reports: &AgentReports,
    ) -> Self {
        let name = key.qualified_name();
        let mut service = Self {
            resolved: resolved_services(&name, outcome, output),
            ..Self::default()
        };
        for director in &outcome.directors {
            let report = reports.service(director, &name);
            let current = report.is_some_and(|report| {
                report.generation.is_none() || generation.is_none() || report.generation == generation
            });
            let programmed = current && report.is_some_and(|report| report.programmed);
            if let Some(message) = report.and_then(|report| report.message.clone())
                && service.failure.is_none()
            {
                service.failure = Some((
                    director.clone(),
                    message,
                    report.and_then(|report| report.reason.clone()),
                ));
            }
            let role = report.and_then(|report| report.role);
            // Each real server as the first active director reporting it sees it: the VIPs of a
            // dual-stack VirtualServer may have different directors, each active for its own.
            if programmed && role == Some(FailoverRole::Active) {
                service.active.get_or_insert_with(|| director.clone());
                for destination in report.into_iter().flat_map(|report| report.destinations.iter()) {
                    service
                        .destinations
                        .entry(destination.real_server.clone())
                        .or_insert_with(|| destination.clone());
                }
            }
            service.directors.push(DirectorStatus {
                node: director.clone(),
                role,
                programmed,
            });
            let failovers: Vec<&VipFailoverStatus> = service
                .resolved
                .iter()
                .filter_map(|resolved| resolved.address)
                .filter_map(|address| reports.failover(director, address))
                .collect();
            for failover in failovers {
                if !failover.duplicate_owners.is_empty() {
                    service
                        .duplicates
                        .push((director.clone(), failover.duplicate_owners.clone()));
                }
                for peer in &failover.key_mismatch {
                    service
                        .key_mismatches
                        .push((director.clone(), peer.node.clone(), peer.key_id.clone()));
                }
                if let Some(record) = &failover.last_failover
                    && service
                        .last_failover
                        .as_ref()
                        .is_none_or(|newest| newest.detected_at.0 < record.detected_at.0)
                {
                    service.last_failover = Some(record.clone());
                }
            }
        }
        service
    }

    /// The directors that have not programmed the current generation yet.
    pub fn waiting(&self) -> Vec<&str> {
        self.directors
            .iter()
            .filter(|director| !director.programmed)
            .map(|director| director.node.as_str())
            .collect()
    }

    /// Whether the active director sends new connections to `real_server`: weight above 0 in
    /// the kernel and not failing its checks.
    pub fn serves(&self, real_server: &str) -> bool {
        self.destinations
            .get(real_server)
            .is_some_and(|destination| destination.weight > 0 && destination.healthy != Some(false))
    }
}

/// Whether two VirtualServer statuses say the same, apart from condition timestamps.
pub fn same_virtual_server_status(left: &VirtualServerStatus, right: &VirtualServerStatus) -> bool {
    left.observed_generation == right.observed_generation
        && left.address == right.address
        && left.address_pool == right.address_pool
        && left.addresses == right.addresses
        && left.vip == right.vip
        && left.active_director == right.active_director
        && left.ready == right.ready
        && left.ready_real_servers == right.ready_real_servers
        && left.total_real_servers == right.total_real_servers
        && left.directors == right.directors
        && left.last_failover == right.last_failover
        && lists_equal_ignoring_time(&left.conditions, &right.conditions)
}

/// Whether two RealServer statuses say the same, apart from condition timestamps.
pub fn same_real_server_status(left: &RealServerStatus, right: &RealServerStatus) -> bool {
    left.observed_generation == right.observed_generation
        && left.node == right.node
        && left.virtual_servers == right.virtual_servers
        && lists_equal_ignoring_time(&left.conditions, &right.conditions)
}
