//! The model ⇄ IPVS attribute conversions, through real bytes: every protocol, family,
//! fwmark, flag, persistence netmask, forwarding method and tunnel type, counters, daemons,
//! timeouts and the version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use lvs_dataplane::ipvs::convert::{
    MANAGED_SERVICE_FLAGS, daemon_attributes, daemon_from_attributes, destination_attributes,
    destination_from_attributes, info_from_attributes, service_attributes, service_from_attributes,
    timeouts_from_attributes,
};
use lvs_dataplane::ipvs::{
    DaemonState, DestinationAttribute, FlagsWithMask, InetAddress, IpvsAttribute, IpvsCommand, IpvsMessage,
    ServiceAttribute, StatsAttribute, SyncDaemon, Timeouts, netmask_for_prefix, prefix_for_netmask,
    stats_from_attributes, stats_to_attributes,
};
use lvs_dataplane::model::{
    AddressFamily, Destination, Forwarding, Persistence, Protocol, Service, ServiceFlags, ServiceKey, Stats,
    TunnelChecksum, TunnelType,
};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;

/// Emits a message and parses the bytes back.
fn through_bytes(message: &IpvsMessage) -> IpvsMessage {
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);
    IpvsMessage::parse_with_param(
        bytes.as_slice(),
        GenlHeader {
            cmd: message.cmd.into(),
            version: 1,
        },
    )
    .unwrap()
}

/// The one top-level attribute of a message, after a trip through bytes.
fn single_attribute(message: &IpvsMessage) -> IpvsAttribute {
    let mut attributes = through_bytes(message).attributes;
    assert_eq!(attributes.len(), 1);
    attributes.remove(0)
}

fn service_through_bytes(service: &Service) -> Service {
    let message = IpvsMessage::new(
        IpvsCommand::NewService,
        vec![IpvsAttribute::Service(service_attributes(service))],
    );
    let IpvsAttribute::Service(attributes) = single_attribute(&message) else {
        panic!("not a service")
    };
    service_from_attributes(&attributes).unwrap().service
}

fn destination_through_bytes(destination: &Destination, family: AddressFamily) -> Destination {
    let attributes = destination_attributes(destination);
    let message = IpvsMessage::new(
        IpvsCommand::NewDestination,
        vec![IpvsAttribute::Destination(attributes)],
    );
    let IpvsAttribute::Destination(attributes) = single_attribute(&message) else {
        panic!("not a destination")
    };
    destination_from_attributes(&attributes, family)
        .unwrap()
        .destination
}

fn address_key(address: &str, port: u16, protocol: Protocol) -> ServiceKey {
    ServiceKey::Address {
        address: address.parse().unwrap(),
        port,
        protocol,
    }
}

fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.into(),
        flags: ServiceFlags::default(),
        persistence: None,
    }
}

fn destination(address: &str, forwarding: Forwarding) -> Destination {
    Destination {
        address: address.parse().unwrap(),
        port: 8080,
        weight: 3,
        forwarding,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

#[test]
fn services_of_every_protocol_family_and_fwmark_survive() {
    let mut keys = Vec::new();
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        keys.push(address_key("192.0.2.10", 80, protocol));
        keys.push(address_key("2001:db8::10", 443, protocol));
    }
    keys.push(address_key("192.0.2.10", 0, Protocol::Tcp));
    keys.push(ServiceKey::Fwmark {
        family: AddressFamily::IPv4,
        mark: 7,
    });
    keys.push(ServiceKey::Fwmark {
        family: AddressFamily::IPv6,
        mark: u32::MAX,
    });
    for key in keys {
        let service = service(key, "wlc");
        assert_eq!(service_through_bytes(&service), service, "{key}");
    }
}

#[test]
fn every_flag_survives_and_maps_to_its_bit() {
    let flags = [
        (
            ServiceFlags {
                one_packet: true,
                ..Default::default()
            },
            0x04,
        ),
        (
            ServiceFlags {
                sched_fallback: true,
                ..Default::default()
            },
            0x08,
        ),
        (
            ServiceFlags {
                sched_port: true,
                ..Default::default()
            },
            0x10,
        ),
        (
            ServiceFlags {
                sched_3: true,
                ..Default::default()
            },
            0x20,
        ),
        (
            ServiceFlags {
                one_packet: true,
                sched_fallback: true,
                sched_port: true,
                sched_3: true,
            },
            0x3c,
        ),
    ];
    for (flags, bits) in flags {
        let service = Service {
            flags,
            ..service(address_key("192.0.2.1", 53, Protocol::Udp), "mh")
        };
        assert!(
            service_attributes(&service).contains(&ServiceAttribute::Flags(FlagsWithMask {
                flags: bits,
                mask: MANAGED_SERVICE_FLAGS
            }))
        );
        assert_eq!(service_through_bytes(&service), service);
    }
    assert_eq!(
        MANAGED_SERVICE_FLAGS, 0x3d,
        "everything but the kernel's HASHED bit"
    );
}

#[test]
fn persistence_netmask_in_both_families() {
    let ipv4 = Service {
        persistence: Some(Persistence {
            timeout: 300,
            prefix_length: 24,
        }),
        ..service(address_key("192.0.2.1", 80, Protocol::Tcp), "rr")
    };
    let attributes = service_attributes(&ipv4);
    assert!(
        attributes.contains(&ServiceAttribute::Netmask(0xffff_ff00)),
        "255.255.255.0 in network order"
    );
    assert!(attributes.contains(&ServiceAttribute::Timeout(300)));
    assert!(attributes.contains(&ServiceAttribute::Flags(FlagsWithMask { flags: 1, mask: 0x3d })));
    assert_eq!(service_through_bytes(&ipv4), ipv4);

    let ipv6 = Service {
        persistence: Some(Persistence {
            timeout: 60,
            prefix_length: 64,
        }),
        ..service(
            ServiceKey::Fwmark {
                family: AddressFamily::IPv6,
                mark: 2,
            },
            "rr",
        )
    };
    let netmask = netmask_for_prefix(AddressFamily::IPv6, 64);
    assert_eq!(
        netmask.to_be_bytes(),
        64u32.to_ne_bytes(),
        "the prefix length in host order on the wire"
    );
    assert!(service_attributes(&ipv6).contains(&ServiceAttribute::Netmask(netmask)));
    assert_eq!(service_through_bytes(&ipv6), ipv6);

    // Without persistence: timeout 0 and the whole address.
    let plain = service_attributes(&service(address_key("2001:db8::1", 80, Protocol::Tcp), "rr"));
    assert!(plain.contains(&ServiceAttribute::Timeout(0)));
    assert!(plain.contains(&ServiceAttribute::Netmask(netmask_for_prefix(
        AddressFamily::IPv6,
        128
    ))));
    for prefix in [0, 1, 8, 31, 32] {
        assert_eq!(
            prefix_for_netmask(
                AddressFamily::IPv4,
                netmask_for_prefix(AddressFamily::IPv4, prefix)
            )
            .unwrap(),
            prefix
        );
    }
    for prefix in [0, 1, 64, 127, 128] {
        assert_eq!(
            prefix_for_netmask(
                AddressFamily::IPv6,
                netmask_for_prefix(AddressFamily::IPv6, prefix)
            )
            .unwrap(),
            prefix
        );
    }
}

#[test]
fn every_forwarding_method_and_tunnel_survives() {
    let mut methods = vec![Forwarding::Nat, Forwarding::DirectRouting, Forwarding::Local];
    for kind in [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre] {
        for checksum in [
            TunnelChecksum::None,
            TunnelChecksum::Checksum,
            TunnelChecksum::RemoteChecksum,
        ] {
            methods.push(Forwarding::Tunnel {
                kind,
                port: if kind == TunnelType::Gue { 6080 } else { 0 },
                checksum,
            });
        }
    }
    for forwarding in methods {
        for (address, family) in [
            ("10.1.0.2", AddressFamily::IPv4),
            ("2001:db8::2", AddressFamily::IPv6),
        ] {
            let destination = Destination {
                upper_threshold: 100,
                lower_threshold: 10,
                ..destination(address, forwarding)
            };
            assert_eq!(destination_through_bytes(&destination, family), destination);
        }
    }
    let gue = destination_attributes(&destination(
        "10.1.0.2",
        Forwarding::Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            checksum: TunnelChecksum::RemoteChecksum,
        },
    ));
    assert!(gue.contains(&DestinationAttribute::ForwardingMethod(2)));
    assert!(gue.contains(&DestinationAttribute::TunnelType(1)));
    assert!(gue.contains(&DestinationAttribute::TunnelPort(6080)));
    assert!(gue.contains(&DestinationAttribute::TunnelFlags(2)));
    let direct = destination_attributes(&destination("10.1.0.2", Forwarding::DirectRouting));
    assert!(direct.contains(&DestinationAttribute::ForwardingMethod(3)));
    assert!(
        !direct
            .iter()
            .any(|attribute| matches!(attribute, DestinationAttribute::TunnelType(_)))
    );
}

/// A tunnel may cross families: an IPv6 real server behind an IPv4 service, read with the
/// destination's own ADDR_FAMILY.
#[test]
fn a_destination_keeps_its_own_family() {
    let tunnel = Forwarding::Tunnel {
        kind: TunnelType::Ipip,
        port: 0,
        checksum: TunnelChecksum::None,
    };
    let destination = destination("2001:db8::9", tunnel);
    assert_eq!(
        destination_through_bytes(&destination, AddressFamily::IPv4),
        destination
    );
    // Without ADDR_FAMILY (older kernels) the service's family reads the address.
    let attributes = vec![
        DestinationAttribute::Address(InetAddress::from("10.0.0.9".parse::<IpAddr>().unwrap())),
        DestinationAttribute::Port(80),
        DestinationAttribute::ForwardingMethod(0),
        DestinationAttribute::Weight(1),
    ];
    let observed = destination_from_attributes(&attributes, AddressFamily::IPv4).unwrap();
    assert_eq!(
        observed.destination.address,
        "10.0.0.9".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn stats_and_connection_counts_are_read() {
    let stats = Stats {
        connections: 1,
        incoming_packets: 2,
        outgoing_packets: 3,
        incoming_bytes: 4,
        outgoing_bytes: 5,
        connections_per_second: 6,
        incoming_packets_per_second: 7,
        outgoing_packets_per_second: 8,
        incoming_bytes_per_second: 9,
        outgoing_bytes_per_second: u64::MAX,
    };
    assert_eq!(stats_from_attributes(&stats_to_attributes(&stats)), stats);
    let mut attributes = destination_attributes(&destination("10.1.0.2", Forwarding::Nat));
    attributes.extend([
        DestinationAttribute::ActiveConnections(11),
        DestinationAttribute::InactiveConnections(12),
        DestinationAttribute::PersistentConnections(13),
        DestinationAttribute::Stats(vec![StatsAttribute::Connections(99)]),
        DestinationAttribute::Stats64(stats_to_attributes(&stats)),
    ]);
    let observed = destination_from_attributes(&attributes, AddressFamily::IPv4).unwrap();
    assert_eq!(
        (
            observed.active_connections,
            observed.inactive_connections,
            observed.persistent_connections
        ),
        (11, 12, 13)
    );
    assert_eq!(observed.stats, stats, "STATS64 wins over the 32-bit nest");

    let mut service_attributes =
        service_attributes(&service(address_key("192.0.2.1", 80, Protocol::Tcp), "rr"));
    service_attributes.push(ServiceAttribute::Stats(vec![StatsAttribute::IncomingBytes(5)]));
    let observed = service_from_attributes(&service_attributes).unwrap();
    assert_eq!(
        observed.stats,
        Stats {
            incoming_bytes: 5,
            ..Stats::default()
        },
        "else the 32-bit nest"
    );
}

#[test]
fn the_kernel_hashed_flag_is_ignored() {
    let mut attributes = service_attributes(&service(address_key("192.0.2.1", 80, Protocol::Tcp), "rr"));
    for attribute in &mut attributes {
        if let ServiceAttribute::Flags(flags) = attribute {
            *flags = FlagsWithMask {
                flags: 0x02,
                mask: u32::MAX,
            };
        }
    }
    let observed = service_from_attributes(&attributes).unwrap().service;
    assert_eq!(observed.flags, ServiceFlags::default());
    assert_eq!(observed.persistence, None);
}

#[test]
fn daemons_timeouts_and_info_convert() {
    let daemon = SyncDaemon {
        state: DaemonState::Backup,
        interface: "eth1".into(),
        sync_id: 9,
        max_length: Some(1400),
        multicast_group: Some("239.1.2.3".parse().unwrap()),
        multicast_port: Some(8849),
        multicast_ttl: Some(2),
    };
    let message = IpvsMessage::new_daemon(&daemon);
    let IpvsAttribute::Daemon(attributes) = single_attribute(&message) else {
        panic!("not a daemon")
    };
    assert_eq!(daemon_from_attributes(&attributes).unwrap(), daemon);
    let minimal = SyncDaemon {
        multicast_group: Some("ff02::81".parse().unwrap()),
        ..daemon
    };
    assert_eq!(
        daemon_from_attributes(&daemon_attributes(&minimal)).unwrap(),
        minimal
    );

    let timeouts = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };
    let config = through_bytes(&IpvsMessage::set_config(&timeouts));
    assert_eq!(timeouts_from_attributes(&config.attributes), timeouts);

    let info = info_from_attributes(&[
        IpvsAttribute::Version(0x01_02_01),
        IpvsAttribute::ConnectionTableSize(4096),
    ])
    .unwrap();
    assert_eq!(
        (info.version().as_str(), info.connection_table_size),
        ("1.2.1", 4096)
    );
}
