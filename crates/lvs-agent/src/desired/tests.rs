//! The translation from resolved config to kernel state, per method, with health.

use lvs_api::{
    ArpMethod, Destination as ApiDestination, DirectorService, Endpoint, FailureAction, ForwardingMethod,
    ForwardingSpec, LvsNodeConfigSpec, PortProtocol, Protocol, RealServerVip, ResolvedPersistence, Scheduler,
    SchedulerFlag, ThresholdsSpec, TunnelSpec, TunnelType,
};

use super::*;

fn destination(name: &str, address: &str, weight: u16) -> ApiDestination {
    ApiDestination {
        real_server: format!("default/{name}"),
        address: address.parse().unwrap(),
        port: 80,
        weight,
        thresholds: ThresholdsSpec::default(),
        state: Default::default(),
        awaiting_node: false,
    }
}

fn service(method: ForwardingMethod) -> DirectorService {
    DirectorService {
        virtual_server: "default/web".into(),
        address: Some("10.100.0.100".parse().unwrap()),
        port: Some(80),
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Sh,
        scheduler_flags: vec![SchedulerFlag::ShPort],
        forwarding: ForwardingSpec { method, tunnel: None },
        persistence: Some(ResolvedPersistence {
            timeout_seconds: 60,
            prefix_length: 24,
        }),
        destinations: vec![
            destination("a", "10.100.0.11", 1),
            destination("b", "10.100.0.12", 3),
        ],
        ..Default::default()
    }
}

fn healthy(_: &str, _: &str) -> Health {
    Health::Healthy
}

/// The uplinks the IPv6 tests find: `eth1` for fd00:100::100, none for anything else.
static UPLINKS: std::sync::LazyLock<BTreeMap<IpAddr, Vec<String>>> = std::sync::LazyLock::new(|| {
    BTreeMap::from([("fd00:100::100".parse().unwrap(), vec!["eth1".to_owned()])])
});

fn inputs(health: &dyn Fn(&str, &str) -> Health) -> Inputs<'_> {
    Inputs {
        health,
        node_address: Some("10.100.0.11".parse().unwrap()),
        uplinks: &UPLINKS,
    }
}

#[test]
fn a_direct_routing_director_gets_service_destinations_dummy_vip_and_announcement() {
    let config = LvsNodeConfigSpec {
        director_services: vec![service(ForwardingMethod::DirectRouting)],
        ..Default::default()
    };
    let state = desired_state(&config, &inputs(&healthy));
    let (key, entry) = state.services.iter().next().unwrap();
    assert_eq!(key.to_string(), "TCP 10.100.0.100:80");
    assert_eq!(entry.service.scheduler, "sh");
    assert!(entry.service.flags.sched_port && !entry.service.flags.sched_fallback);
    assert_eq!(
        entry.service.persistence,
        Some(Persistence {
            timeout: 60,
            prefix_length: 24
        })
    );
    let weights: Vec<_> = entry
        .destinations
        .values()
        .map(|d| (d.address.to_string(), d.weight, d.forwarding))
        .collect();
    assert_eq!(
        weights,
        [
            ("10.100.0.11".into(), 1, Forwarding::DirectRouting),
            ("10.100.0.12".into(), 3, Forwarding::DirectRouting)
        ]
    );
    assert!(state.links.contains(&Link::Dummy { name: "lvs0".into() }));
    assert!(state.addresses.contains(&VipAddress {
        address: "10.100.0.100".parse().unwrap(),
        device: "lvs0".into()
    }));
    assert_eq!(
        state.announce.keys().map(ToString::to_string).collect::<Vec<_>>(),
        ["10.100.0.100"]
    );
    let rules = state.nftables.unwrap();
    assert_eq!(
        (rules.arp_guards.len(), rules.masquerade.len(), rules.marks.len()),
        (0, 0, 0),
        "direct routing translates nothing"
    );
    assert_eq!(rules.guarded_vips, [ip("10.100.0.100")], "only the guard");
}

fn ip(address: &str) -> IpAddr {
    address.parse().unwrap()
}

fn guarded(address: &str, protocol: lvs_dataplane::model::Protocol, port: u16) -> PortMatch {
    PortMatch {
        address: ip(address),
        protocol,
        port,
    }
}

#[test]
fn every_local_vip_is_guarded_with_the_services_it_declares() {
    use lvs_dataplane::model::Protocol as P;
    let fwmark = |address: &str, ports: Vec<u16>| DirectorService {
        virtual_server: format!("default/mark-{address}"),
        address: Some(ip(address)),
        port: None,
        fwmark: Some(7),
        fwmark_ports: ports,
        protocol: Protocol::Udp,
        ..service(ForwardingMethod::DirectRouting)
    };
    let mut real_server = vip(ArpMethod::Sysctl, Some("lo"), None);
    real_server.address = ip("10.100.0.50");
    let mut open_real_server = vip(ArpMethod::Sysctl, Some("lo"), None);
    open_real_server.address = ip("10.100.0.60");
    open_real_server.ports.clear();
    let mut redirect = vip(ArpMethod::Redirect, None, None);
    redirect.address = ip("10.100.0.70");
    let config = LvsNodeConfigSpec {
        director_services: vec![
            service(ForwardingMethod::DirectRouting),
            fwmark("10.100.0.101", vec![53, 5353]),
            fwmark("10.100.0.102", vec![]),
        ],
        real_server_vips: vec![real_server, open_real_server, redirect],
        ..Default::default()
    };
    let rules = desired_state(&config, &inputs(&healthy)).nftables.unwrap();
    assert_eq!(
        rules.guarded_vips,
        [
            ip("10.100.0.50"),
            ip("10.100.0.100"),
            ip("10.100.0.101"),
            ip("10.100.0.102")
        ],
        "every local VIP but the one taking every port; a Redirect VIP is not local"
    );
    assert_eq!(
        rules.guarded_services,
        [
            guarded("10.100.0.50", P::Tcp, 80),
            guarded("10.100.0.100", P::Tcp, 80),
            guarded("10.100.0.101", P::Udp, 53),
            guarded("10.100.0.101", P::Udp, 5353),
            guarded("10.100.0.102", P::Udp, 0),
        ],
        "a fwmark service without ports takes every port of its protocol (port 0)"
    );
    assert_eq!(rules.heartbeats, None, "heartbeats are the failover's part");
}

#[test]
fn unhealthy_real_servers_go_quiescent_or_away_and_the_fallback_takes_over() {
    let unhealthy_b = |_: &str, real_server: &str| {
        if real_server == "default/b" {
            Health::Unhealthy
        } else {
            Health::Unknown
        }
    };
    let mut quiescent = service(ForwardingMethod::DirectRouting);
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![quiescent.clone()],
            ..Default::default()
        },
        &inputs(&unhealthy_b),
    );
    let weights: Vec<u32> = state
        .services
        .values()
        .next()
        .unwrap()
        .destinations
        .values()
        .map(|d| d.weight)
        .collect();
    assert_eq!(
        weights,
        [1, 0],
        "Quiescent keeps it at weight 0; unknown counts as healthy"
    );

    quiescent.on_failure = FailureAction::Remove;
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![quiescent.clone()],
            ..Default::default()
        },
        &inputs(&unhealthy_b),
    );
    assert_eq!(
        state.services.values().next().unwrap().destinations.len(),
        1,
        "Remove drops it"
    );

    quiescent.on_failure = FailureAction::Quiescent;
    quiescent.fallback = Some(Endpoint {
        address: "10.100.0.13".parse().unwrap(),
        port: 80,
    });
    let all_down = |_: &str, _: &str| Health::Unhealthy;
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![quiescent.clone()],
            ..Default::default()
        },
        &inputs(&all_down),
    );
    let destinations: Vec<_> = state
        .services
        .values()
        .next()
        .unwrap()
        .destinations
        .values()
        .map(|d| (d.address.to_string(), d.weight))
        .collect();
    assert_eq!(
        destinations,
        [
            ("10.100.0.11".into(), 0),
            ("10.100.0.12".into(), 0),
            ("10.100.0.13".into(), 1)
        ]
    );
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![quiescent],
            ..Default::default()
        },
        &inputs(&unhealthy_b),
    );
    assert_eq!(
        state.services.values().next().unwrap().destinations.len(),
        2,
        "no fallback while one serves"
    );
}

#[test]
fn nat_masquerades_its_destinations_and_tunnel_encapsulates() {
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![service(ForwardingMethod::Nat)],
            ..Default::default()
        },
        &inputs(&healthy),
    );
    assert_eq!(state.nftables.unwrap().masquerade.len(), 2);
    let mut tunnel = service(ForwardingMethod::Tunnel);
    tunnel.forwarding.tunnel = Some(TunnelSpec {
        tunnel_type: TunnelType::Gue,
        port: Some(6080),
        checksum: Default::default(),
    });
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![tunnel],
            ..Default::default()
        },
        &inputs(&healthy),
    );
    let forwarding = state
        .services
        .values()
        .next()
        .unwrap()
        .destinations
        .values()
        .next()
        .unwrap()
        .forwarding;
    assert_eq!(
        forwarding,
        Forwarding::Tunnel {
            kind: lvs_dataplane::model::TunnelType::Gue,
            port: 6080,
            checksum: Default::default()
        }
    );
}

#[test]
fn a_fwmark_service_marks_its_vip_within_its_mask() {
    let marked = |mask| {
        let mut fwmark = service(ForwardingMethod::DirectRouting);
        fwmark.port = None;
        fwmark.fwmark = Some(0x68);
        fwmark.fwmark_ports = vec![80, 443];
        fwmark.fwmark_mask = mask;
        let state = desired_state(
            &LvsNodeConfigSpec {
                director_services: vec![fwmark],
                ..Default::default()
            },
            &inputs(&healthy),
        );
        state.nftables.unwrap().marks
    };
    assert_eq!(
        marked(Some(0xff)),
        [MarkRule {
            address: "10.100.0.100".parse().unwrap(),
            protocol: lvs_dataplane::model::Protocol::Tcp,
            ports: vec![80, 443],
            mark: 0x68,
            mask: 0xff,
        }]
    );
    assert_eq!(
        marked(None)[0].mask,
        u32::MAX,
        "no mask: the whole mark, as before masks existed"
    );
}

#[test]
fn awaiting_real_servers_get_no_traffic() {
    let mut gated = service(ForwardingMethod::DirectRouting);
    gated.destinations[0].awaiting_node = true;
    let state = desired_state(
        &LvsNodeConfigSpec {
            director_services: vec![gated],
            ..Default::default()
        },
        &inputs(&healthy),
    );
    let weights: Vec<u32> = state
        .services
        .values()
        .next()
        .unwrap()
        .destinations
        .values()
        .map(|d| d.weight)
        .collect();
    assert_eq!(weights, [0, 3]);
}

fn vip(method: ArpMethod, device: Option<&str>, tunnel: Option<TunnelSpec>) -> RealServerVip {
    RealServerVip {
        address: "10.100.0.100".parse().unwrap(),
        arp_method: method,
        device: device.map(str::to_owned),
        tunnel,
        ports: vec![PortProtocol {
            port: 80,
            protocol: Protocol::Tcp,
        }],
        virtual_servers: vec!["default/web".into()],
    }
}

#[test]
fn real_server_methods() {
    let config = |vip| LvsNodeConfigSpec {
        real_server_vips: vec![vip],
        ..Default::default()
    };
    let sysctl = desired_state(
        &config(vip(ArpMethod::Sysctl, Some("lo"), None)),
        &inputs(&healthy),
    );
    assert_eq!(
        sysctl
            .addresses
            .iter()
            .map(|a| a.device.as_str())
            .collect::<Vec<_>>(),
        ["lo"]
    );
    assert!(
        sysctl.announce.is_empty(),
        "a real server never announces the VIP"
    );
    let guard = sysctl.nftables.unwrap();
    assert_eq!(
        (guard.guarded_vips.len(), guard.arp_guards.len()),
        (1, 0),
        "the guard alone"
    );

    let arp = desired_state(
        &config(vip(ArpMethod::NftablesArp, Some("lvs0"), None)),
        &inputs(&healthy),
    );
    assert!(arp.links.contains(&Link::Dummy { name: "lvs0".into() }));
    assert_eq!(
        arp.nftables.unwrap().arp_guards,
        [ArpGuard {
            vip: "10.100.0.100".parse().unwrap(),
            real_address: Some("10.100.0.11".parse().unwrap())
        }]
    );

    let redirect = desired_state(&config(vip(ArpMethod::Redirect, None, None)), &inputs(&healthy));
    assert!(redirect.addresses.is_empty(), "Redirect holds no VIP");
    assert_eq!(redirect.nftables.unwrap().redirects.len(), 1);

    let gue = TunnelSpec {
        tunnel_type: TunnelType::Gue,
        port: Some(6080),
        checksum: Default::default(),
    };
    let tunnel = desired_state(
        &config(vip(ArpMethod::Sysctl, Some("tunl0"), Some(gue))),
        &inputs(&healthy),
    );
    assert!(tunnel.links.contains(&Link::TunnelFallback {
        name: "tunl0".into(),
        module: "ipip".into()
    }));
    assert!(tunnel.links.contains(&Link::GueReceivePort {
        port: 6080,
        family: AddressFamily::IPv4
    }));
}

#[test]
fn the_dummy_device_is_the_one_core_resolves_real_server_vips_to() {
    // lvs-core names the device in the config it builds; the dataplane owns what is on it.
    // Two constants, one name: the executor's is the one this crate uses.
    assert_eq!(DUMMY_DEVICE, lvs_core::DUMMY_DEVICE);
}

#[test]
fn api_enums_become_the_dataplane_enums_of_the_same_name() {
    for api in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        assert_eq!(protocol(api).as_str(), api.as_str());
    }
    for api in [lvs_api::AddressFamily::IPv4, lvs_api::AddressFamily::IPv6] {
        assert_eq!(format!("{:?}", address_family(api)), format!("{api:?}"));
    }
    for api in [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre] {
        assert_eq!(
            serde_json::to_value(tunnel_type(api)).unwrap(),
            serde_json::to_value(api).unwrap()
        );
    }
    for api in [
        lvs_api::TunnelChecksum::None,
        lvs_api::TunnelChecksum::Checksum,
        lvs_api::TunnelChecksum::RemoteChecksum,
    ] {
        assert_eq!(format!("{:?}", tunnel_checksum(api)), format!("{api:?}"));
    }
}

#[test]
fn an_ipv6_director_vip_is_held_on_its_uplink_so_the_uplink_answers_solicitations() {
    let v6 = |address: &str, placement: VipPlacement, interface: Option<&str>| DirectorService {
        address: Some(address.parse().unwrap()),
        vip_placement: placement,
        interface: interface.map(str::to_owned),
        destinations: vec![destination("a", "fd00:100::11", 1)],
        persistence: None,
        ..service(ForwardingMethod::DirectRouting)
    };
    let devices = |service: DirectorService| {
        let config = LvsNodeConfigSpec {
            director_services: vec![service],
            ..Default::default()
        };
        let state = desired_state(&config, &inputs(&healthy));
        let devices: Vec<String> = state.addresses.iter().map(|vip| vip.device.clone()).collect();
        (
            devices,
            state.links.contains(&Link::Dummy { name: "lvs0".into() }),
        )
    };
    assert_eq!(
        devices(v6("fd00:100::100", VipPlacement::Dummy, None)),
        (vec!["eth1".to_owned()], false),
        "the uplink found for the VIP's network, no dummy device"
    );
    assert_eq!(
        devices(v6("fd00:100::100", VipPlacement::Dummy, Some("eth7"))),
        (vec!["eth7".to_owned()], false),
        "the named uplink wins"
    );
    assert_eq!(
        devices(v6("fd00:200::100", VipPlacement::Dummy, None)),
        (vec!["lvs0".to_owned()], true),
        "a VIP whose network is on no interface is routed to the director: lvs0"
    );
    assert_eq!(
        devices(service(ForwardingMethod::DirectRouting)),
        (vec!["lvs0".to_owned()], true),
        "IPv4 stays on lvs0: the kernel answers ARP for it on the uplink"
    );
    let lookups = uplink_lookups(&LvsNodeConfigSpec {
        director_services: vec![
            v6("fd00:100::100", VipPlacement::Dummy, None),
            v6("fd00:100::101", VipPlacement::Dummy, Some("eth7")),
            v6("fd00:100::102", VipPlacement::Interface, Some("eth7")),
            service(ForwardingMethod::DirectRouting),
        ],
        ..Default::default()
    });
    assert_eq!(
        lookups,
        BTreeSet::from([ip("fd00:100::100")]),
        "only what needs a look-up"
    );
}

#[test]
fn nftables_arp_over_ipv6_drops_solicitations_for_the_vip() {
    let vip = RealServerVip {
        address: "fd00:100::100".parse().unwrap(),
        ..vip(ArpMethod::NftablesArp, Some("lo"), None)
    };
    let config = LvsNodeConfigSpec {
        real_server_vips: vec![vip],
        ..Default::default()
    };
    let rules = desired_state(&config, &inputs(&healthy)).nftables.unwrap();
    assert_eq!(
        rules.nd_guards,
        ["fd00:100::100".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert!(rules.arp_guards.is_empty(), "no ARP for an IPv6 VIP");
}

#[test]
fn direct_routing_and_tunnel_services_skip_conntrack_and_nat_keeps_it() {
    for (method, untracked) in [
        (ForwardingMethod::DirectRouting, true),
        (ForwardingMethod::Tunnel, true),
        (ForwardingMethod::Nat, false),
    ] {
        let director = service(method);
        let state = desired_state(
            &LvsNodeConfigSpec {
                director_services: vec![director.clone()],
                ..Default::default()
            },
            &inputs(&healthy),
        );
        let expected: Vec<PortMatch> = if untracked {
            vec![PortMatch {
                address: director.address.unwrap(),
                protocol: lvs_dataplane::model::Protocol::Tcp,
                port: director.port.unwrap(),
            }]
        } else {
            Vec::new()
        };
        assert_eq!(state.nftables.unwrap().untracked, expected, "{method:?}");
    }
}
