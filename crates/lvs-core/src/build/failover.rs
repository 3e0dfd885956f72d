//! Failover settings of a VIP with more than one director: the directors in priority order
//! (the spec's `priority` list first, then by name) with the address each is reached at for
//! heartbeats, and connection sync with its interface; and warnings where a director cannot
//! run a VirtualServer's settings because another's take precedence.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvs_api::conditions::reasons;
use lvs_api::{
    DirectorPeer, DirectorService, LvsNodeConfigSpec, ResolvedConnectionSync, ResolvedHighAvailability,
};

use crate::object::ObjectKey;
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
    let peers = ranked
        .into_iter()
        .map(|node| {
            // The node's primary address — its first InternalIP, else its first address —
            // whatever the VIP's family: what the agent binds by default (status.hostIP), so
            // one socket carries the heartbeats of every VIP. An IPv6 VIP on dual-stack
            // directors fails over over IPv4; an IPv6-only cluster uses IPv6.
            let address = nodes.node(node).and_then(|facts| {
                facts
                    .internal_addresses
                    .first()
                    .or_else(|| facts.addresses.first())
                    .copied()
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

/// Warns about failover settings the directors do not run as asked, the way the agent resolves
/// them: on each director the first VirtualServer (by name) of a VIP gives the VIP's election
/// settings, and the first synced VIP (by address) gives the node's one pair of connection-sync
/// daemons. `keys` maps qualified names to the VirtualServers.
pub(super) fn overridden(
    configs: &BTreeMap<String, std::sync::Arc<LvsNodeConfigSpec>>,
    keys: &BTreeMap<String, &ObjectKey>,
    problems: &mut Vec<Problem>,
) {
    // (VirtualServer, field, reason, message) -> the directors it applies to.
    let mut found: BTreeMap<(String, &'static str, &'static str, String), BTreeSet<&str>> = BTreeMap::new();
    for (node, config) in configs {
        let mut vips: BTreeMap<IpAddr, &DirectorService> = BTreeMap::new();
        for service in &config.director_services {
            let Some((address, failover)) = service.failover() else {
                continue;
            };
            let first = *vips.entry(address).or_insert(service);
            if first.high_availability.as_ref() != Some(failover) {
                let message = format!(
                    "VIP {address} is shared with VirtualServer {}, whose failover settings (directors, priority or highAvailability) differ; a VIP has one election, so {}'s are used",
                    first.virtual_server, first.virtual_server
                );
                found
                    .entry((
                        service.virtual_server.clone(),
                        "spec.directors.highAvailability",
                        reasons::FAILOVER_SETTINGS_OVERRIDDEN,
                        message,
                    ))
                    .or_default()
                    .insert(node);
            }
        }
        let mut synced = vips.iter().filter_map(|(address, service)| {
            let sync = service.high_availability.as_ref()?.connection_sync.as_ref()?;
            Some((address, service, sync))
        });
        let Some((first_address, first, running)) = synced.next() else {
            continue;
        };
        for (_, service, sync) in synced {
            if (&sync.interface, sync.sync_id) == (&running.interface, running.sync_id) {
                continue;
            }
            let message = format!(
                "a director runs one pair of connection-sync daemons, set up for VIP {first_address} of VirtualServer {}: interface {}, sync ID {}; this VirtualServer's interface {}, sync ID {} is not run there, so its connections are synced with the other settings and a director running only these would not receive them (give failover VirtualServers on the same directors the same connectionSync)",
                first.virtual_server, running.interface, running.sync_id, sync.interface, sync.sync_id
            );
            found
                .entry((
                    service.virtual_server.clone(),
                    "spec.directors.highAvailability.connectionSync",
                    reasons::CONNECTION_SYNC_OVERRIDDEN,
                    message,
                ))
                .or_default()
                .insert(node);
        }
    }
    for ((virtual_server, field, reason, message), nodes) in found {
        if let Some(key) = keys.get(&virtual_server) {
            let nodes: Vec<&str> = nodes.into_iter().collect();
            problems.push(Problem::warning(
                key,
                field,
                reason,
                format!("on {}: {message}", nodes.join(", ")),
            ));
        }
    }
}
