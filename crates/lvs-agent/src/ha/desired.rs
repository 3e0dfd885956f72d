//! What the elections change in a node's desired kernel state (pure): a failover VIP is held
//! (address + announcement) only while this node is active for it; the connection-sync backup
//! daemon runs wherever a failover VIP uses sync, the master where this node is active for one.
//! And, back the other way, this node's own state per VIP for the election.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::desired::Health;
use lvs_api::LvsNodeConfigSpec;
use lvs_dataplane::model::{NodeState, SyncDaemonSpec, SyncRole};

use super::election::Local;
use super::groups::Group;

/// Removes from `desired` the failover VIPs this node does not hold, and adds the sync daemons:
/// one pair per node, set up for the first synced VIP (lvs-core warns about VirtualServers whose
/// differing connectionSync is therefore not run).
pub fn restrict(desired: &mut NodeState, groups: &BTreeMap<IpAddr, Group>, holds: &dyn Fn(&IpAddr) -> bool) {
    for (address, group) in groups {
        if holds(address) {
            continue;
        }
        desired
            .addresses
            .retain(|vip| !(vip.address == *address && group.devices.contains(&vip.device)));
        desired.announce.remove(address);
    }
    let Some((_, sync)) = groups
        .iter()
        .find_map(|(address, group)| group.connection_sync.as_ref().map(|sync| (address, sync)))
    else {
        return;
    };
    let spec = SyncDaemonSpec {
        interface: sync.interface.clone(),
        sync_id: sync.sync_id,
    };
    let master = groups
        .iter()
        .any(|(address, group)| group.connection_sync.is_some() && holds(address));
    desired.sync_daemons.insert(SyncRole::Backup, spec.clone());
    if master {
        desired.sync_daemons.insert(SyncRole::Master, spec);
    }
}

/// This node's state for each failover VIP: eligible when every service of the VIP is
/// programmed (`failed` gives the failure of a VirtualServer's operations, if any);
/// healthy real servers counted over the VIP's services (no verdict yet counts as healthy).
/// The uplink is checked by the failover service itself.
pub fn local_states(
    config: &LvsNodeConfigSpec,
    groups: &BTreeMap<IpAddr, Group>,
    failed: &dyn Fn(&str, IpAddr) -> Option<String>,
    health: &dyn Fn(&str, &str) -> Health,
) -> BTreeMap<IpAddr, Local> {
    groups
        .keys()
        .map(|address| {
            let services: Vec<_> = config
                .director_services
                .iter()
                // The services that made this group: failover ones on this VIP (a dual-stack
                // VirtualServer has a service, and an election, per VIP).
                .filter(|service| service.failover().is_some_and(|(vip, _)| vip == *address))
                .collect();
            let failure = services.iter().find_map(|service| {
                failed(&service.virtual_server, *address).map(|message| {
                    format!(
                        "IPVS service of {} not programmed: {message}",
                        service.virtual_server
                    )
                })
            });
            let healthy = services
                .iter()
                .flat_map(|service| {
                    service
                        .destinations
                        .iter()
                        .map(move |destination| (service, destination))
                })
                .filter(|(service, destination)| {
                    health(&service.virtual_server, &destination.real_server) != Health::Unhealthy
                        && destination.weight > 0
                        && destination.state == lvs_api::RealServerState::Active
                })
                .count();
            (
                *address,
                Local {
                    eligible: failure.is_none(),
                    reason: failure,
                    healthy: u16::try_from(healthy).unwrap_or(u16::MAX),
                    synced_since: None,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use lvs_api::{Destination, DirectorService, RealServerState, ResolvedHighAvailability, ThresholdsSpec};

    use super::*;

    fn service(address: &str, real_servers: &[&str]) -> DirectorService {
        DirectorService {
            virtual_server: "default/web".to_owned(),
            address: address.parse().ok(),
            port: Some(80),
            directors: vec!["a".to_owned(), "b".to_owned()],
            high_availability: Some(ResolvedHighAvailability::default()),
            destinations: real_servers
                .iter()
                .map(|name| Destination {
                    real_server: format!("default/{name}"),
                    address: "192.0.2.11".parse().unwrap(),
                    port: 80,
                    weight: 1,
                    thresholds: ThresholdsSpec::default(),
                    state: RealServerState::Active,
                    awaiting_node: false,
                })
                .collect(),
            ..DirectorService::default()
        }
    }

    #[test]
    fn each_vip_of_a_dual_stack_virtual_server_counts_only_its_own_real_servers() {
        let config = LvsNodeConfigSpec {
            director_services: vec![
                service("192.0.2.10", &["v4"]),
                service("2001:db8::10", &["v6-a", "v6-b"]),
            ],
            ..LvsNodeConfigSpec::default()
        };
        let groups = super::super::groups::groups(&config, &BTreeMap::new());
        let states = local_states(&config, &groups, &|_, _| None, &|_, _| Health::Unknown);
        let healthy: Vec<(String, u16)> = states
            .iter()
            .map(|(address, local)| (address.to_string(), local.healthy))
            .collect();
        assert_eq!(
            healthy,
            [("192.0.2.10".to_owned(), 1), ("2001:db8::10".to_owned(), 2)]
        );

        // The IPv6 service failed: only that VIP's election loses this director.
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        let failed = |_: &str, address: IpAddr| (address == v6).then(|| "EBUSY".to_owned());
        let states = local_states(&config, &groups, &failed, &|_, _| Health::Unknown);
        let eligible: Vec<(String, bool)> = states
            .iter()
            .map(|(address, local)| (address.to_string(), local.eligible))
            .collect();
        assert_eq!(
            eligible,
            [
                ("192.0.2.10".to_owned(), true),
                ("2001:db8::10".to_owned(), false)
            ]
        );
    }
}
