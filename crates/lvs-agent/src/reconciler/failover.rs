//! The reconciler's two touches of the failover service: before planning, the desired state
//! keeps only the failover VIPs this node holds (the roles the service publishes); after
//! applying, one `PassReport` says what the pass did — VIPs released and announced, this
//! node's own state per VIP — and the service answers with every VIP's state for status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvs_dataplane::Op;
use lvs_dataplane::model::NodeState;

use crate::ha::{self, Group, Now, PassReport, Roles};

/// What this pass does with the failover VIPs.
#[derive(Debug, Clone, Default)]
pub struct Holding {
    /// The failover VIPs it holds.
    pub held: BTreeSet<IpAddr>,
    /// The failover VIPs it gives up (or does not take).
    pub released: BTreeSet<IpAddr>,
    /// Held VIPs to announce again.
    pub reannounce: BTreeSet<IpAddr>,
}

/// Keeps in `desired` only the failover VIPs `roles` says this node holds (a VIP the failover
/// service does not know yet stays as the last pass had it), and adds the sync daemons.
pub fn restrict(
    desired: &mut NodeState,
    groups: &BTreeMap<IpAddr, Group>,
    roles: &Roles,
    last: Option<&NodeState>,
) -> Holding {
    let held_before =
        |address: &IpAddr| last.is_some_and(|last| last.addresses.iter().any(|vip| vip.address == *address));
    let (held, released): (BTreeSet<IpAddr>, BTreeSet<IpAddr>) = groups
        .keys()
        .partition(|address| roles.holds(address, held_before(address)));
    ha::desired::restrict(desired, groups, &|address| held.contains(address));
    Holding {
        reannounce: roles
            .reannounce
            .iter()
            .filter(|address| held.contains(*address))
            .copied()
            .collect(),
        held,
        released,
    }
}

/// The report of a pass that applied `ops` (`succeeded` tells which did) after reading
/// `observed` (`vips_read`: whether the pass read the VIP addresses).
#[allow(clippy::too_many_arguments)] // the one place the pass's facts meet
pub fn pass_report(
    groups: BTreeMap<IpAddr, Group>,
    holding: &Holding,
    observed: &NodeState,
    vips_read: bool,
    ops: &[Op],
    succeeded: &dyn Fn(&Op) -> bool,
    local: BTreeMap<IpAddr, ha::election::Local>,
    backup_running: bool,
) -> PassReport {
    // Released once the address is really gone: this pass read the addresses and either did
    // not find it or deleted it.
    let gone = |address: &IpAddr| {
        vips_read
            && (!observed.addresses.iter().any(|vip| vip.address == *address)
                || ops.iter().any(|op| {
                    matches!(op, Op::DeleteAddress(vip) if vip.address == *address) && succeeded(op)
                }))
    };
    let now = Now::current();
    let announced = ops
        .iter()
        .filter_map(|op| match op {
            Op::Announce { address, .. } if groups.contains_key(address) && succeeded(op) => {
                Some((*address, now))
            }
            _ => None,
        })
        .collect();
    PassReport {
        released: holding
            .released
            .iter()
            .filter(|address| gone(address))
            .copied()
            .collect(),
        held: holding.held.clone(),
        announced,
        local,
        backup_running,
        groups,
    }
}
