//! The reconciler's two touches of the failover service: before planning, the desired state
//! keeps only the failover VIPs this node holds (the roles the service publishes) and its
//! input guard admits the peers' heartbeats; after applying, one `PassReport` says what the
//! pass did — VIPs released and announced, this node's own state per VIP — and the service
//! answers with every VIP's state for status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvs_dataplane::Op;
use lvs_dataplane::model::{HeartbeatGuard, NftRules, NodeState};

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

/// Heartbeat datagrams a second (and the burst) the input guard lets through from each peer
/// director; the rest of a peer's datagrams are dropped in the kernel. A peer sends one
/// heartbeat per interval — 50 a second at the shortest interval (20 ms) — and one at once on
/// each role change: 1000 leaves twenty times that, room for heartbeats split into several
/// datagrams, while a flood from a spoofed peer address is cut to what the agent reads without
/// falling behind (one HMAC check per datagram), so the socket buffer never fills and real
/// heartbeats are not lost behind it.
pub const HEARTBEAT_RATE_PER_PEER: u32 = 1000;

/// Adds to `desired`'s input guard the heartbeats of `groups` on UDP `port`: from every peer
/// director's address (this node, `node`, left out), each under `HEARTBEAT_RATE_PER_PEER`;
/// nothing when this node shares no VIP with a reachable peer.
pub fn guard_heartbeats(desired: &mut NodeState, groups: &BTreeMap<IpAddr, Group>, node: &str, port: u16) {
    let peers: Vec<IpAddr> = groups
        .values()
        .flat_map(|group| group.peers.iter())
        .filter(|(name, _)| name.as_str() != node)
        .filter_map(|(_, address)| *address)
        .collect();
    if peers.is_empty() {
        return;
    }
    let mut rules = desired.nftables.take().unwrap_or_default();
    rules.heartbeats = Some(HeartbeatGuard {
        port,
        peers,
        rate_per_second: HEARTBEAT_RATE_PER_PEER,
    });
    desired.nftables = Some(NftRules::normalized(rules));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use lvs_dataplane::model::VipAddress;

    use super::*;
    use crate::ha::wire::Role;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn group() -> Group {
        Group {
            ranked: vec!["d1".into(), "d2".into()],
            peers: BTreeMap::new(),
            interval: Duration::from_millis(200),
            dead_after_count: 3,
            preempt: false,
            preempt_delay: Duration::ZERO,
            connection_sync: None,
            interface: None,
            devices: vec!["lvs0".into()],
            virtual_servers: vec!["lab/web".into()],
        }
    }

    fn with_vips(vips: &[u8]) -> NodeState {
        NodeState {
            addresses: vips
                .iter()
                .map(|last| VipAddress {
                    address: address(*last),
                    device: "lvs0".into(),
                })
                .collect(),
            announce: vips.iter().map(|last| (address(*last), None)).collect(),
            ..NodeState::default()
        }
    }

    #[test]
    fn only_held_failover_vips_stay_and_an_unknown_one_stays_as_it_was() {
        let groups = BTreeMap::from([
            (address(1), group()),
            (address(2), group()),
            (address(3), group()),
        ]);
        let roles = Roles {
            elections: BTreeMap::from([(address(1), Role::Active), (address(2), Role::Standby)]),
            reannounce: BTreeSet::from([address(1), address(2)]),
            ..Roles::default()
        };
        let mut desired = with_vips(&[1, 2, 3, 4]);
        let last = with_vips(&[3]);
        let holding = restrict(&mut desired, &groups, &roles, Some(&last));
        assert_eq!(
            holding.held,
            BTreeSet::from([address(1), address(3)]),
            "3: unknown, held before"
        );
        assert_eq!(holding.released, BTreeSet::from([address(2)]));
        assert_eq!(
            holding.reannounce,
            BTreeSet::from([address(1)]),
            "only what is held"
        );
        let kept: BTreeSet<IpAddr> = desired.addresses.iter().map(|vip| vip.address).collect();
        assert_eq!(
            kept,
            BTreeSet::from([address(1), address(3), address(4)]),
            "4 has no election"
        );
        assert!(!desired.announce.contains_key(&address(2)));
    }

    #[test]
    fn the_guard_admits_heartbeats_from_the_peers_only_when_there_are_peers() {
        let with_peers = |peers: &[(&str, Option<u8>)]| Group {
            peers: peers
                .iter()
                .map(|(name, last)| ((*name).to_owned(), last.map(address)))
                .collect(),
            ..group()
        };
        let groups = BTreeMap::from([
            (address(100), with_peers(&[("d1", Some(1)), ("d2", Some(2))])),
            (
                address(101),
                with_peers(&[("d1", Some(1)), ("d3", Some(3)), ("d4", None)]),
            ),
        ]);
        let mut desired = with_vips(&[100]);
        guard_heartbeats(&mut desired, &groups, "d1", 9751);
        let heartbeats = desired.nftables.unwrap().heartbeats.unwrap();
        assert_eq!(
            heartbeats,
            HeartbeatGuard {
                port: 9751,
                peers: vec![address(2), address(3)],
                rate_per_second: HEARTBEAT_RATE_PER_PEER,
            },
            "every peer of every group, not this node, not a peer without an address"
        );

        let mut alone = with_vips(&[100]);
        let lonely = BTreeMap::from([(address(100), with_peers(&[("d1", Some(1))]))]);
        guard_heartbeats(&mut alone, &lonely, "d1", 9751);
        assert_eq!(alone.nftables, None, "no peer: no heartbeat rules");
    }

    #[test]
    fn a_vip_is_released_only_once_the_pass_saw_it_gone() {
        let groups = BTreeMap::from([(address(1), group()), (address(2), group())]);
        let holding = Holding {
            released: BTreeSet::from([address(1), address(2)]),
            ..Holding::default()
        };
        let observed = with_vips(&[1, 2]);
        let delete = Op::DeleteAddress(VipAddress {
            address: address(1),
            device: "lvs0".into(),
        });
        let ops = [delete];
        let report = pass_report(
            groups.clone(),
            &holding,
            &observed,
            true,
            &ops,
            &|_| true,
            BTreeMap::new(),
            false,
        );
        assert_eq!(report.released, [address(1)], "2 is still there: not released");
        let report = pass_report(
            groups.clone(),
            &holding,
            &observed,
            true,
            &ops,
            &|_| false,
            BTreeMap::new(),
            false,
        );
        assert!(report.released.is_empty(), "the delete failed");
        let report = pass_report(
            groups,
            &holding,
            &NodeState::default(),
            false,
            &[],
            &|_| true,
            BTreeMap::new(),
            false,
        );
        assert!(
            report.released.is_empty(),
            "addresses not read: nothing known to be gone"
        );
    }
}
