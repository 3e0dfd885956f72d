//! The part of the kernel a pass looks at, and the plan of that part alone. A full pass reads
//! and plans everything; a health pass only IPVS services (a failed real server stops getting
//! connections within one pass); a failover pass only VIP addresses, their announcements and
//! the sync daemons (a takeover costs an address dump, an address and an announcement). The
//! plan compares the same part of the desired and the observed state, so nothing outside the
//! scope is ever touched.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lvs_dataplane::model::NodeState;
use lvs_dataplane::{Dataplane, DataplaneError, Op, plan};

/// The part of the kernel state a pass reads and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything we own.
    Everything,
    /// IPVS services and destinations only.
    Services,
    /// VIP addresses, their announcements and the sync daemons only.
    Vips,
}

/// The part of the kernel state an operation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// IPVS services and destinations.
    Services,
    /// VIP addresses, their announcements and the sync daemons.
    Vips,
    /// Devices, sysctls, nftables.
    Rest,
}

impl Part {
    /// The part `op` works on.
    pub fn of(op: &Op) -> Self {
        match op {
            Op::AddService(_)
            | Op::UpdateService(_)
            | Op::DeleteService(_)
            | Op::AddDestination(..)
            | Op::UpdateDestination(..)
            | Op::DeleteDestination(..) => Self::Services,
            Op::AddAddress(_)
            | Op::DeleteAddress(_)
            | Op::Announce { .. }
            | Op::StartSyncDaemon(..)
            | Op::StopSyncDaemon(_) => Self::Vips,
            _ => Self::Rest,
        }
    }
}

impl Scope {
    /// Whether the scope covers `part`.
    pub fn covers(self, part: Part) -> bool {
        match self {
            Self::Everything => true,
            Self::Services => part == Part::Services,
            Self::Vips => part == Part::Vips,
        }
    }

    /// The parts of `state` this scope covers; the rest empty.
    pub fn of_state(self, state: &NodeState) -> NodeState {
        match self {
            Self::Everything => state.clone(),
            Self::Services => NodeState {
                services: state.services.clone(),
                ..NodeState::default()
            },
            Self::Vips => NodeState {
                addresses: state.addresses.clone(),
                announce: state.announce.clone(),
                sync_daemons: state.sync_daemons.clone(),
                ..NodeState::default()
            },
        }
    }

    /// Reads the part of the kernel this scope covers.
    pub async fn observe<D: Dataplane>(self, dataplane: &D) -> Result<NodeState, DataplaneError> {
        match self {
            Self::Everything => dataplane.observe().await,
            Self::Services => dataplane.observe_services().await.map(|services| NodeState {
                services,
                ..NodeState::default()
            }),
            Self::Vips => dataplane.observe_vips().await.map(|vips| NodeState {
                addresses: vips.addresses,
                sync_daemons: vips.sync_daemons,
                ..NodeState::default()
            }),
        }
    }
}

/// Whether two desired states differ in their IPVS services only.
pub fn same_apart_from_services(left: &NodeState, right: &NodeState) -> bool {
    left.links == right.links
        && left.sysctls == right.sysctls
        && left.nftables == right.nftables
        && left.addresses == right.addresses
        && left.announce == right.announce
        && left.sync_daemons == right.sync_daemons
}

/// What the pass changes: the plan of the scope's part; from an incomplete intent without
/// removals (state it does not mention may belong to the missing part) except the VIPs this
/// node gives up (a peer takes them once they are gone); and an announcement of each held VIP
/// another host claimed.
pub fn operations(
    desired: &NodeState,
    observed: &NodeState,
    scope: Scope,
    complete: bool,
    released: &BTreeSet<IpAddr>,
    reannounce: &BTreeSet<IpAddr>,
) -> Vec<Op> {
    let mut ops = plan(&scope.of_state(desired), observed);
    if !complete {
        ops.retain(|op| {
            !is_removal(op) || matches!(op, Op::DeleteAddress(vip) if released.contains(&vip.address))
        });
    }
    for address in reannounce {
        let announced = ops
            .iter()
            .any(|op| matches!(op, Op::Announce { address: other, .. } if other == address));
        if let Some(interface) = desired.announce.get(address)
            && !announced
        {
            ops.push(Op::Announce {
                address: *address,
                interface: interface.clone(),
            });
        }
    }
    ops
}

/// Whether an op removes or restores something (never done from a partial intent).
fn is_removal(op: &Op) -> bool {
    matches!(
        op,
        Op::DeleteLink(_)
            | Op::RestoreSysctl(_)
            | Op::DeleteNftables
            | Op::DeleteService(_)
            | Op::DeleteDestination(..)
            | Op::DeleteAddress(_)
            | Op::StopSyncDaemon(_)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lvs_dataplane::model::{Link, VipAddress};

    use super::*;

    fn vip(last: u8, device: &str) -> VipAddress {
        VipAddress {
            address: IpAddr::from([10, 0, 0, last]),
            device: device.into(),
        }
    }

    fn state(vips: &[VipAddress], links: &[&str]) -> NodeState {
        NodeState {
            addresses: vips.iter().cloned().collect(),
            announce: vips
                .iter()
                .map(|vip| (vip.address, Some("eth0".to_owned())))
                .collect(),
            links: links
                .iter()
                .map(|name| Link::Dummy {
                    name: (*name).to_owned(),
                })
                .collect(),
            ..NodeState::default()
        }
    }

    #[test]
    fn a_scope_plans_only_its_part() {
        let desired = state(&[vip(1, "lvs0")], &["lvs0"]);
        let observed_vips = Scope::Vips.of_state(&NodeState::default());
        let ops = operations(
            &desired,
            &observed_vips,
            Scope::Vips,
            true,
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(
            ops.iter().all(|op| Part::of(op) == Part::Vips),
            "a VIP pass touches no device: {ops:?}"
        );
        assert!(ops.contains(&Op::AddAddress(vip(1, "lvs0"))));
        let ops = operations(
            &desired,
            &NodeState::default(),
            Scope::Services,
            true,
            &BTreeSet::new(),
            &BTreeSet::new(),
        );
        assert!(
            ops.is_empty(),
            "a services pass finds no service to change: {ops:?}"
        );
        assert!(Scope::Everything.covers(Part::Rest) && !Scope::Services.covers(Part::Vips));
    }

    #[test]
    fn an_incomplete_intent_removes_only_the_vips_given_up() {
        let observed = state(&[vip(1, "lvs0"), vip(2, "lvs0")], &["lvs0"]);
        let desired = state(&[], &["lvs0"]);
        let released = BTreeSet::from([IpAddr::from([10, 0, 0, 2])]);
        let ops = operations(
            &desired,
            &observed,
            Scope::Everything,
            false,
            &released,
            &BTreeSet::new(),
        );
        assert_eq!(ops, [Op::DeleteAddress(vip(2, "lvs0"))]);
        let ops = operations(
            &desired,
            &observed,
            Scope::Everything,
            true,
            &released,
            &BTreeSet::new(),
        );
        assert_eq!(ops.len(), 2, "a complete intent prunes: {ops:?}");
    }

    #[test]
    fn a_vip_claimed_elsewhere_is_announced_again_once() {
        let desired = state(&[vip(1, "lvs0")], &[]);
        let reannounce = BTreeSet::from([IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 9])]);
        let ops = operations(
            &desired,
            &desired,
            Scope::Vips,
            true,
            &BTreeSet::new(),
            &reannounce,
        );
        assert_eq!(
            ops,
            [Op::Announce {
                address: IpAddr::from([10, 0, 0, 1]),
                interface: Some("eth0".into())
            }],
            "held and in the desired state: announced; not desired: not"
        );
        let ops = operations(
            &desired,
            &NodeState::default(),
            Scope::Vips,
            true,
            &BTreeSet::new(),
            &reannounce,
        );
        assert_eq!(
            ops.iter().filter(|op| matches!(op, Op::Announce { .. })).count(),
            1,
            "added now: announced by the plan, not twice: {ops:?}"
        );
    }
}
