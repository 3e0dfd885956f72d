//! Unit tests of `plan` over hand-built desired/observed pairs, ordering included.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::plan;
use crate::model::*;
use crate::ops::Op;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn key(address: &str, port: u16) -> ServiceKey {
    ServiceKey::Address {
        address: ip(address),
        port,
        protocol: Protocol::Tcp,
    }
}

fn service(address: &str, port: u16, scheduler: &str) -> Service {
    Service {
        key: key(address, port),
        scheduler: scheduler.to_owned(),
        flags: ServiceFlags::default(),
        persistence: None,
    }
}

fn destination(address: &str, weight: u32) -> Destination {
    Destination {
        address: ip(address),
        port: 80,
        weight,
        forwarding: Forwarding::DirectRouting,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

fn state(services: &[(Service, Vec<Destination>)], vips: &[(&str, &str)]) -> NodeState {
    NodeState {
        services: services
            .iter()
            .map(|(service, destinations)| {
                let destinations: BTreeMap<_, _> =
                    destinations.iter().map(|d| (d.key(), d.clone())).collect();
                (
                    service.key,
                    ServiceState {
                        service: service.clone(),
                        destinations,
                    },
                )
            })
            .collect(),
        addresses: vips
            .iter()
            .map(|(address, device)| VipAddress {
                address: ip(address),
                device: (*device).to_owned(),
            })
            .collect(),
        announce: vips.iter().map(|(address, _)| (ip(address), None)).collect(),
        ..Default::default()
    }
}

fn kinds(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .map(|op| format!("{op:?}").split(['(', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn equal_states_need_nothing() {
    let desired = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[("10.0.0.1", "lvs0")],
    );
    let mut observed = desired.clone();
    observed.announce.clear();
    assert_eq!(plan(&desired, &observed), Vec::<Op>::new());
}

#[test]
fn from_empty_destinations_come_before_the_vip_and_the_announcement_last() {
    let mut desired = state(
        &[(
            service("10.0.0.1", 80, "rr"),
            vec![destination("10.0.1.1", 1), destination("10.0.1.2", 2)],
        )],
        &[("10.0.0.1", "lvs0")],
    );
    desired.links.insert(Link::Dummy { name: "lvs0".into() });
    desired.sysctls.insert("net/ipv4/vs/conntrack".into(), "1".into());
    let ops = plan(&desired, &NodeState::default());
    assert_eq!(
        kinds(&ops),
        [
            "AddLink",
            "SetSysctl",
            "AddService",
            "AddDestination",
            "AddDestination",
            "AddAddress",
            "Announce"
        ]
    );
}

#[test]
fn removal_takes_the_vip_first_then_the_service_then_restores() {
    let mut observed = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[("10.0.0.1", "lvs0")],
    );
    observed.links.insert(Link::Dummy { name: "lvs0".into() });
    observed.links.insert(Link::TunnelFallback {
        name: "tunl0".into(),
        module: "ipip".into(),
    });
    observed
        .sysctls
        .insert("net/ipv4/conf/all/arp_ignore".into(), "1".into());
    observed.nftables = Some(NftRules {
        redirects: vec![PortMatch {
            address: ip("10.0.0.1"),
            protocol: Protocol::Tcp,
            port: 80,
        }],
        ..Default::default()
    });
    let ops = plan(&NodeState::default(), &observed);
    assert_eq!(
        kinds(&ops),
        [
            "DeleteAddress",
            "DeleteService",
            "DeleteNftables",
            "DeleteLink",
            "RestoreSysctl"
        ]
    );
    assert!(!ops.contains(&Op::DeleteLink(Link::TunnelFallback {
        name: "tunl0".into(),
        module: "ipip".into()
    })));
}

#[test]
fn one_weight_change_is_one_update() {
    let observed = state(
        &[(
            service("10.0.0.1", 80, "rr"),
            vec![destination("10.0.1.1", 1), destination("10.0.1.2", 1)],
        )],
        &[],
    );
    let desired = state(
        &[(
            service("10.0.0.1", 80, "rr"),
            vec![destination("10.0.1.1", 1), destination("10.0.1.2", 5)],
        )],
        &[],
    );
    assert_eq!(
        plan(&desired, &observed),
        [Op::UpdateDestination(
            key("10.0.0.1", 80),
            destination("10.0.1.2", 5)
        )]
    );
}

#[test]
fn replacing_a_real_server_adds_the_new_one_before_removing_the_old() {
    let observed = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[],
    );
    let desired = state(
        &[(service("10.0.0.1", 80, "wrr"), vec![destination("10.0.1.2", 1)])],
        &[],
    );
    assert_eq!(
        plan(&desired, &observed),
        [
            Op::UpdateService(service("10.0.0.1", 80, "wrr")),
            Op::AddDestination(key("10.0.0.1", 80), destination("10.0.1.2", 1)),
            Op::DeleteDestination(key("10.0.0.1", 80), ip("10.0.1.1"), 80),
        ]
    );
}

#[test]
fn arp_guards_widen_before_vips_change_and_narrow_after_they_are_gone() {
    let guard = |vip: &str| ArpGuard {
        vip: vip.parse().unwrap(),
        real_address: None,
    };
    let mut observed = state(&[], &[("10.0.0.1", "lo")]);
    observed.announce = BTreeMap::new();
    observed.nftables = Some(NftRules {
        arp_guards: vec![guard("10.0.0.1")],
        ..Default::default()
    });
    let mut desired = state(&[], &[("10.0.0.2", "lo")]);
    desired.announce = BTreeMap::new();
    desired.nftables = Some(NftRules {
        arp_guards: vec![guard("10.0.0.2")],
        ..Default::default()
    });
    let ops = plan(&desired, &observed);
    let both = NftRules {
        arp_guards: vec![guard("10.0.0.1"), guard("10.0.0.2")],
        ..Default::default()
    };
    assert_eq!(
        ops,
        [
            Op::ReplaceNftables(both),
            Op::AddAddress(VipAddress {
                address: ip("10.0.0.2"),
                device: "lo".into()
            }),
            Op::DeleteAddress(VipAddress {
                address: ip("10.0.0.1"),
                device: "lo".into()
            }),
            Op::ReplaceNftables(desired.nftables.unwrap()),
        ]
    );
}

#[test]
fn the_input_guard_covers_old_and_new_vips_and_peers_while_vips_change() {
    let guard = |vip: &str, port: u16, peer: &str| NftRules {
        guarded_vips: vec![ip(vip)],
        guarded_services: vec![crate::model::PortMatch {
            address: ip(vip),
            protocol: crate::model::Protocol::Tcp,
            port,
        }],
        heartbeats: Some(crate::model::HeartbeatGuard {
            port: 9751,
            peers: vec![ip(peer)],
            rate_per_second: 1000,
        }),
        ..Default::default()
    };
    let mut observed = state(&[], &[("10.0.0.1", "lvs0")]);
    observed.nftables = Some(guard("10.0.0.1", 80, "10.0.1.1"));
    let mut desired = state(&[], &[("10.0.0.2", "lvs0")]);
    desired.nftables = Some(guard("10.0.0.2", 443, "10.0.1.2"));
    let ops = plan(&desired, &observed);
    let Some(Op::ReplaceNftables(first)) = ops.first() else {
        panic!("the guard widens first: {ops:#?}");
    };
    assert_eq!(first.guarded_vips, [ip("10.0.0.1"), ip("10.0.0.2")]);
    assert_eq!(first.guarded_services.len(), 2, "both VIPs keep their service");
    assert_eq!(
        first.heartbeats.as_ref().unwrap().peers,
        [ip("10.0.1.1"), ip("10.0.1.2")]
    );
    assert_eq!(
        ops.last(),
        Some(&Op::ReplaceNftables(desired.nftables.unwrap())),
        "and narrows once the old VIP is gone"
    );
}

#[test]
fn real_server_vips_are_never_announced() {
    let mut desired = state(&[], &[("10.0.0.9", "lo")]);
    desired.announce.clear();
    assert_eq!(kinds(&plan(&desired, &NodeState::default())), ["AddAddress"]);
}

#[test]
fn changed_sysctl_is_rewritten_and_unchanged_is_not() {
    let mut desired = NodeState::default();
    desired
        .sysctls
        .insert("net/ipv4/conf/all/arp_ignore".into(), "1".into());
    desired
        .sysctls
        .insert("net/ipv4/conf/all/arp_announce".into(), "2".into());
    let mut observed = NodeState::default();
    observed
        .sysctls
        .insert("net/ipv4/conf/all/arp_ignore".into(), "1".into());
    observed
        .sysctls
        .insert("net/ipv4/conf/all/arp_announce".into(), "0".into());
    assert_eq!(
        plan(&desired, &observed),
        [Op::SetSysctl(Sysctl {
            name: "net/ipv4/conf/all/arp_announce".into(),
            value: "2".into()
        })]
    );
}

#[test]
fn ops_print_like_the_commands_an_administrator_would_type() {
    let mut with_persistence = service("10.0.0.1", 80, "sh");
    with_persistence.flags.sched_port = true;
    with_persistence.persistence = Some(Persistence {
        timeout: 300,
        prefix_length: 24,
    });
    let printed: Vec<String> = [
        Op::AddService(with_persistence),
        Op::AddDestination(key("10.0.0.1", 80), destination("10.0.1.1", 3)),
        Op::AddAddress(VipAddress {
            address: ip("2001:db8::1"),
            device: "lvs0".into(),
        }),
        Op::SetSysctl(Sysctl {
            name: "net/ipv4/conf/eth0.100/arp_ignore".into(),
            value: "1".into(),
        }),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        printed,
        [
            "ipvsadm -A -t 10.0.0.1:80 -s sh -b flag-2 -p 300 -M /24",
            "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 3",
            "ip addr add 2001:db8::1/128 dev lvs0",
            "sysctl -w net.ipv4.conf.eth0.100.arp_ignore=1",
        ]
    );
}

fn sync_daemon(interface: &str, sync_id: u8) -> SyncDaemonSpec {
    SyncDaemonSpec {
        interface: interface.to_owned(),
        sync_id,
    }
}

#[test]
fn a_sync_daemon_starts_after_the_services_and_before_the_vip() {
    let mut desired = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[("10.0.0.1", "lvs0")],
    );
    desired
        .sync_daemons
        .insert(SyncRole::Master, sync_daemon("eth0", 7));
    let ops = plan(&desired, &NodeState::default());
    assert_eq!(
        kinds(&ops),
        [
            "AddService",
            "AddDestination",
            "StartSyncDaemon",
            "AddAddress",
            "Announce"
        ]
    );
    assert_eq!(
        ops[2],
        Op::StartSyncDaemon(SyncRole::Master, sync_daemon("eth0", 7))
    );
}

#[test]
fn a_running_sync_daemon_that_matches_needs_nothing_and_a_changed_one_restarts() {
    let mut desired = NodeState::default();
    desired
        .sync_daemons
        .insert(SyncRole::Backup, sync_daemon("eth0", 7));
    let observed = desired.clone();
    assert_eq!(plan(&desired, &observed), Vec::<Op>::new());

    desired
        .sync_daemons
        .insert(SyncRole::Backup, sync_daemon("eth1", 7));
    assert_eq!(
        plan(&desired, &observed),
        [
            Op::StopSyncDaemon(SyncRole::Backup),
            Op::StartSyncDaemon(SyncRole::Backup, sync_daemon("eth1", 7)),
        ]
    );
    desired
        .sync_daemons
        .insert(SyncRole::Backup, sync_daemon("eth0", 8));
    assert_eq!(
        kinds(&plan(&desired, &observed)),
        ["StopSyncDaemon", "StartSyncDaemon"],
        "a new sync ID restarts the daemon too"
    );
}

#[test]
fn failover_swaps_the_backup_daemon_for_a_master_around_the_vip() {
    // A standby taking over: its backup daemon goes, a master starts before the VIP is added.
    let mut observed = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[],
    );
    observed
        .sync_daemons
        .insert(SyncRole::Backup, sync_daemon("eth0", 7));
    let mut desired = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[("10.0.0.1", "lvs0")],
    );
    desired
        .sync_daemons
        .insert(SyncRole::Master, sync_daemon("eth0", 7));
    assert_eq!(
        kinds(&plan(&desired, &observed)),
        ["StartSyncDaemon", "AddAddress", "Announce", "StopSyncDaemon"]
    );
}

#[test]
fn a_sync_daemon_stops_after_the_vips_are_removed_and_before_the_services() {
    let mut observed = state(
        &[(service("10.0.0.1", 80, "rr"), vec![destination("10.0.1.1", 1)])],
        &[("10.0.0.1", "lvs0")],
    );
    observed
        .sync_daemons
        .insert(SyncRole::Master, sync_daemon("eth0", 7));
    let ops = plan(&NodeState::default(), &observed);
    assert_eq!(kinds(&ops), ["DeleteAddress", "StopSyncDaemon", "DeleteService"]);
    assert_eq!(ops[1], Op::StopSyncDaemon(SyncRole::Master));
}

#[test]
fn sync_daemon_ops_print_what_they_do() {
    assert_eq!(
        Op::StartSyncDaemon(SyncRole::Master, sync_daemon("eth0", 7)).to_string(),
        "start IPVS sync daemon master on eth0 (sync ID 7)"
    );
    assert_eq!(
        Op::StopSyncDaemon(SyncRole::Backup).to_string(),
        "stop IPVS sync daemon backup"
    );
}

#[test]
fn a_mark_rule_whose_mask_changed_is_reprogrammed() {
    let node = |mask| NodeState {
        nftables: Some(NftRules {
            marks: vec![MarkRule {
                address: ip("10.0.0.3"),
                protocol: Protocol::Tcp,
                ports: vec![80],
                mark: 0x68,
                mask,
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let desired = node(0xff);
    let ops = plan(&desired, &node(u32::MAX));
    assert_eq!(
        ops.last(),
        Some(&Op::ReplaceNftables(desired.nftables.clone().unwrap())),
        "{ops:?}"
    );
    assert_eq!(
        ops.last().unwrap().to_string(),
        "nft -f - (replace tables lvs-operator: 0 arp guards, 0 redirects, 0 masquerades, 1 marks; masked: 10.0.0.3 0x68/0xff)",
        "the plan shows a mask that is not the whole mark"
    );
    assert_eq!(
        Op::ReplaceNftables(node(u32::MAX).nftables.unwrap()).to_string(),
        "nft -f - (replace tables lvs-operator: 0 arp guards, 0 redirects, 0 masquerades, 1 marks)"
    );
    assert_eq!(
        plan(&desired, &node(0xff)),
        Vec::<Op>::new(),
        "the same mask: nothing to do"
    );
}
