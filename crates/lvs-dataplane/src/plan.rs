//! `plan(desired, observed)`: the ordered, minimal list of operations that turns the observed
//! kernel state into the desired one without black-holing traffic.
//!
//! Order: devices → sysctls → nftables (ARP guards before any VIP appears) → services with
//! their destinations (new destinations before old ones go) → sync daemons started (a changed
//! one stopped first) → VIPs added last (then announced) → VIPs removed first among removals →
//! sync daemons stopped → services deleted → nftables narrowed → devices deleted → sysctls
//! restored. Equal states give an empty plan.

use crate::model::{Link, NftRules, NodeState, ServiceState};
use crate::ops::Op;

/// The operations that turn `observed` into `desired`.
pub fn plan(desired: &NodeState, observed: &NodeState) -> Vec<Op> {
    let mut ops = Vec::new();

    for link in desired.links.difference(&observed.links) {
        ops.push(Op::AddLink(link.clone()));
    }
    for (name, value) in &desired.sysctls {
        if observed.sysctls.get(name) != Some(value) {
            ops.push(Op::SetSysctl(crate::model::Sysctl {
                name: name.clone(),
                value: value.clone(),
            }));
        }
    }

    // nftables: widen first (union) so no guard of a still-present VIP disappears early; narrow
    // after the VIPs are gone.
    let desired_rules = desired
        .nftables
        .clone()
        .filter(|rules| !rules.is_empty())
        .map(NftRules::normalized);
    let observed_rules = observed.nftables.clone().map(NftRules::normalized);
    let mut narrow_later = None;
    if desired_rules != observed_rules {
        match (&desired_rules, &observed_rules) {
            (Some(desired_rules), Some(observed_rules)) => {
                let union = union(desired_rules, observed_rules);
                if &union != desired_rules {
                    narrow_later = Some(Op::ReplaceNftables(desired_rules.clone()));
                }
                if &union != observed_rules {
                    ops.push(Op::ReplaceNftables(union));
                }
            }
            (Some(desired_rules), None) => ops.push(Op::ReplaceNftables(desired_rules.clone())),
            (None, Some(_)) => narrow_later = Some(Op::DeleteNftables),
            (None, None) => {}
        }
    }

    for (key, desired_service) in &desired.services {
        match observed.services.get(key) {
            None => {
                ops.push(Op::AddService(desired_service.service.clone()));
                for destination in desired_service.destinations.values() {
                    ops.push(Op::AddDestination(*key, destination.clone()));
                }
            }
            Some(observed_service) => plan_service(desired_service, observed_service, &mut ops),
        }
    }

    for (role, spec) in &desired.sync_daemons {
        match observed.sync_daemons.get(role) {
            None => ops.push(Op::StartSyncDaemon(*role, spec.clone())),
            Some(running) if running != spec => {
                ops.push(Op::StopSyncDaemon(*role));
                ops.push(Op::StartSyncDaemon(*role, spec.clone()));
            }
            Some(_) => {}
        }
    }

    for address in desired.addresses.difference(&observed.addresses) {
        ops.push(Op::AddAddress(address.clone()));
        if let Some(interface) = desired.announce.get(&address.address) {
            ops.push(Op::Announce {
                address: address.address,
                interface: interface.clone(),
            });
        }
    }
    for address in observed.addresses.difference(&desired.addresses) {
        ops.push(Op::DeleteAddress(address.clone()));
    }
    for role in observed
        .sync_daemons
        .keys()
        .filter(|role| !desired.sync_daemons.contains_key(role))
    {
        ops.push(Op::StopSyncDaemon(*role));
    }
    for key in observed
        .services
        .keys()
        .filter(|key| !desired.services.contains_key(key))
    {
        ops.push(Op::DeleteService(*key));
    }
    ops.extend(narrow_later);
    for link in observed.links.difference(&desired.links) {
        // Tunnel fallback devices belong to their kernel module: never deleted.
        if !matches!(link, Link::TunnelFallback { .. }) {
            ops.push(Op::DeleteLink(link.clone()));
        }
    }
    for name in observed
        .sysctls
        .keys()
        .filter(|name| !desired.sysctls.contains_key(*name))
    {
        ops.push(Op::RestoreSysctl(name.clone()));
    }
    ops
}

fn plan_service(desired: &ServiceState, observed: &ServiceState, ops: &mut Vec<Op>) {
    let key = desired.service.key;
    if desired.service != observed.service {
        ops.push(Op::UpdateService(desired.service.clone()));
    }
    for (destination_key, destination) in &desired.destinations {
        match observed.destinations.get(destination_key) {
            None => ops.push(Op::AddDestination(key, destination.clone())),
            Some(current) if current != destination => {
                ops.push(Op::UpdateDestination(key, destination.clone()))
            }
            Some(_) => {}
        }
    }
    for (address, port) in observed
        .destinations
        .keys()
        .filter(|destination| !desired.destinations.contains_key(destination))
    {
        ops.push(Op::DeleteDestination(key, *address, *port));
    }
}

fn union(left: &NftRules, right: &NftRules) -> NftRules {
    let mut rules = left.clone();
    rules.arp_guards.extend(right.arp_guards.iter().cloned());
    rules.redirects.extend(right.redirects.iter().copied());
    rules.masquerade.extend(right.masquerade.iter().copied());
    rules.marks.extend(right.marks.iter().cloned());
    // The guard of both: every VIP of either guarded, every service of either admitted, and
    // the peers of both (the desired port wins if they differ).
    rules.guarded_vips.extend(right.guarded_vips.iter().copied());
    rules
        .guarded_services
        .extend(right.guarded_services.iter().copied());
    rules.heartbeats = match (left.heartbeats.clone(), &right.heartbeats) {
        (Some(mut left), Some(right)) if left.port == right.port => {
            left.peers.extend(right.peers.iter().copied());
            left.rate_per_second = left.rate_per_second.max(right.rate_per_second);
            Some(left)
        }
        (None, right) => right.clone(),
        (left, _) => left,
    };
    rules.normalized()
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
