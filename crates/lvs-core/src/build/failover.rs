//! Failover settings of a VIP with more than one director: the directors in priority order
//! (the spec's `priority` list first, then by name) with the address each is reached at for
//! heartbeats, and connection sync with its interface.

use std::net::IpAddr;

use lvs_api::conditions::reasons;
use lvs_api::{DirectorPeer, ResolvedConnectionSync, ResolvedHighAvailability};

use crate::problem::Problem;
use crate::roles::NodeIndex;
use crate::validate::ValidVirtualServer;

/// The failover settings for `directors` (sorted names) of `virtual_server`; None with fewer
/// than two directors (a single director always holds the VIP).
pub(super) fn resolve(
    virtual_server: &ValidVirtualServer,
    directors: &[String],
    nodes: &NodeIndex,
    problems: &mut Vec<Problem>,
) -> Option<ResolvedHighAvailability> {
    if directors.len() < 2 {
        return None;
    }
    let spec = &virtual_server.directors.high_availability;
    let mut ranked: Vec<&String> = Vec::new();
    let listed = spec.priority.iter().filter(|name| directors.contains(name));
    for name in listed.chain(directors.iter()) {
        if !ranked.contains(&name) {
            ranked.push(name);
        }
    }
    let family_v6 = virtual_server.address.is_some_and(|address| address.is_ipv6());
    let peers = ranked
        .into_iter()
        .map(|node| {
            // The first InternalIP of the VIP's family, else any InternalIP, else an ExternalIP.
            let address = nodes.node(node).and_then(|facts| {
                let same_family = |address: &&IpAddr| address.is_ipv6() == family_v6;
                let internal = &facts.internal_addresses;
                internal
                    .iter()
                    .find(same_family)
                    .or_else(|| internal.first())
                    .or_else(|| facts.addresses.iter().find(same_family))
                    .or_else(|| facts.addresses.iter().next())
                    .map(IpAddr::to_string)
            });
            if address.is_none() {
                problems.push(Problem::warning(
                    &virtual_server.key,
                    "spec.directors",
                    reasons::NO_NODE_ADDRESS,
                    format!(
                        "director {node} has no InternalIP or ExternalIP address: its peers cannot send it heartbeats, so they will take the VIP as if it were down"
                    ),
                ));
            }
            DirectorPeer {
                node: node.clone(),
                address,
            }
        })
        .collect();
    let sync = &spec.connection_sync;
    let connection_sync = if sync.enabled {
        let interface = sync
            .interface
            .clone()
            .or_else(|| virtual_server.directors.interface.clone());
        if interface.is_none() {
            problems.push(Problem::warning(
                &virtual_server.key,
                "spec.directors.highAvailability.connectionSync.interface",
                reasons::NO_SYNC_INTERFACE,
                "connection sync needs an interface (set it here or spec.directors.interface); running without connection sync: established connections break on failover",
            ));
        }
        interface.map(|interface| ResolvedConnectionSync {
            sync_id: sync.sync_id,
            interface,
            failback_sync_seconds: sync.failback_sync_seconds,
        })
    } else {
        None
    };
    Some(ResolvedHighAvailability {
        peers,
        heartbeat_interval_millis: spec.heartbeat_interval_millis,
        dead_after: spec.dead_after,
        preempt: spec.preempt,
        preempt_delay_seconds: spec.preempt_delay_seconds,
        connection_sync,
    })
}
