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
    failed: &dyn Fn(&str) -> Option<String>,
    health: &dyn Fn(&str, &str) -> Health,
) -> BTreeMap<IpAddr, Local> {
    groups
        .iter()
        .map(|(address, group)| {
            let services: Vec<_> = config
                .director_services
                .iter()
                .filter(|service| group.virtual_servers.contains(&service.virtual_server))
                .collect();
            let failure = services.iter().find_map(|service| {
                failed(&service.virtual_server).map(|message| {
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
