//! Property tests of the IPVS decoders and conversions: no input makes them panic, whatever
//! parses re-emits to bytes that parse to the same value, and every model value survives a
//! trip through bytes. `decoders_never_panic_on_arbitrary_messages` runs `LVS_FUZZ_CASES`
//! inputs (default 4,096); the long run is
//! `LVS_FUZZ_CASES=1000000 cargo test --release -p lvs-dataplane --test ipvs_fuzz -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use lvs_dataplane::ipvs::convert::{
    daemon_attributes, daemon_from_attributes, destination_attributes, destination_from_attributes,
    info_from_attributes, service_attributes, service_from_attributes, timeouts_from_attributes,
};
use lvs_dataplane::ipvs::{
    DaemonState, DestinationAttribute, IpvsAttribute, IpvsCommand, IpvsMessage, ServiceAttribute, SyncDaemon,
    stats_to_attributes,
};
use lvs_dataplane::model::{
    AddressFamily, Destination, Forwarding, Persistence, Protocol, Service, ServiceFlags, ServiceKey, Stats,
    TunnelChecksum, TunnelType,
};
use netlink_packet_core::{Emitable, NetlinkMessage, ParseableParametrized};
use netlink_packet_generic::{GenlHeader, GenlMessage};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Attributes as the kernel lays them out, with kinds the decoders know (and a few they do
/// not), values of the lengths they expect (and others), nests, and now and then a corrupted
/// length field.
fn attribute_soup(depth: u32) -> BoxedStrategy<Vec<u8>> {
    let leaf = (
        0u16..18,
        prop_oneof![
            Just(0usize),
            Just(1),
            Just(2),
            Just(4),
            Just(8),
            Just(16),
            0usize..40
        ],
    )
        .prop_flat_map(|(kind, length)| (Just(kind), proptest::collection::vec(any::<u8>(), length)));
    let attribute = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![3 => leaf, 1 => ((0u16..18), attribute_soup(depth - 1))].boxed()
    };
    (
        proptest::collection::vec(attribute, 0..8),
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(|(attributes, corruption, corrupted_length)| {
            let mut bytes = Vec::new();
            for (kind, value) in attributes {
                bytes.extend_from_slice(&u16::try_from(4 + value.len()).unwrap_or(u16::MAX).to_ne_bytes());
                bytes.extend_from_slice(&kind.to_ne_bytes());
                bytes.extend_from_slice(&value);
                bytes.resize(bytes.len().next_multiple_of(4), 0);
            }
            if corruption < 16 && bytes.len() >= 2 {
                bytes[..2].copy_from_slice(&corrupted_length.to_ne_bytes());
            }
            bytes
        })
        .boxed()
}

/// A well-formed message the kernel could send (a service with its counters, a destination,
/// a daemon), then damaged: a few bytes overwritten, maybe cut short.
fn damaged_reply() -> impl Strategy<Value = Vec<u8>> {
    let damage = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    (
        service(),
        destination(),
        damage,
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(service, destination, damage, cut)| {
            let mut service_nest = service_attributes(&service);
            service_nest.push(ServiceAttribute::Stats64(stats_to_attributes(&Stats::default())));
            let mut destination_nest = destination_attributes(&destination);
            destination_nest.extend([
                DestinationAttribute::ActiveConnections(1),
                DestinationAttribute::Stats(stats_to_attributes(&Stats::default())),
            ]);
            let daemon = SyncDaemon {
                state: DaemonState::Backup,
                interface: "eth0".into(),
                sync_id: 1,
                max_length: Some(1500),
                multicast_group: Some(destination.address),
                multicast_port: Some(8848),
                multicast_ttl: Some(1),
            };
            let message = IpvsMessage::new(
                IpvsCommand::NewDestination,
                vec![
                    IpvsAttribute::Service(service_nest),
                    IpvsAttribute::Destination(destination_nest),
                    IpvsAttribute::Daemon(daemon_attributes(&daemon)),
                ],
            );
            let mut bytes = vec![0; message.buffer_len()];
            message.emit(&mut bytes);
            for (position, value) in damage {
                let position = position.index(bytes.len());
                bytes[position] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// Raw bytes, attribute soup or a damaged reply, and a command (mostly the ones replies carry).
fn message_input() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let command = prop_oneof![0u8..=18, any::<u8>()];
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        attribute_soup(3),
        damaged_reply()
    ];
    (command, bytes)
}

/// Everything a decoder does with untrusted bytes: parse, convert every nest, re-emit and
/// re-parse; and the same bytes as a whole netlink datagram.
fn decode_everything(command: u8, bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = IpvsMessage::parse_with_param(
        bytes,
        GenlHeader {
            cmd: command,
            version: 1,
        },
    ) {
        for attribute in &message.attributes {
            match attribute {
                IpvsAttribute::Service(attributes) => {
                    let _ = service_from_attributes(attributes);
                }
                IpvsAttribute::Destination(attributes) => {
                    let _ = destination_from_attributes(attributes, AddressFamily::IPv4);
                    let _ = destination_from_attributes(attributes, AddressFamily::IPv6);
                }
                IpvsAttribute::Daemon(attributes) => {
                    let _ = daemon_from_attributes(attributes);
                }
                _ => {}
            }
        }
        let _ = info_from_attributes(&message.attributes);
        let _ = timeouts_from_attributes(&message.attributes);
        // What parsed re-emits to bytes that parse, and from then on to the same value. (Not
        // always equal to the first parse: netlink-packet-core 0.9 drops NLA_F_NET_BYTEORDER
        // when it emits an unknown attribute that also has NLA_F_NESTED.)
        let once = reparse(command, &message);
        prop_assert!(
            once.is_some(),
            "{:?} re-emitted to bytes that do not parse",
            message
        );
        let once = once.unwrap_or(message);
        let twice = reparse(command, &once);
        prop_assert_eq!(twice.as_ref(), Some(&once));
    }
    let mut datagram = Vec::with_capacity(bytes.len() + 20);
    datagram.extend_from_slice(&u32::try_from(bytes.len() + 20).unwrap().to_ne_bytes());
    datagram.extend_from_slice(&[0x25, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, command, 1, 0, 0]);
    datagram.extend_from_slice(bytes);
    let _ = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&datagram);
    Ok(())
}

fn reparse(command: u8, message: &IpvsMessage) -> Option<IpvsMessage> {
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);
    IpvsMessage::parse_with_param(
        bytes.as_slice(),
        GenlHeader {
            cmd: command,
            version: 1,
        },
    )
    .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decoders_never_panic((command, bytes) in message_input()) {
        decode_everything(command, &bytes)?;
    }

    #[test]
    fn services_survive_bytes(service in service()) {
        let message = IpvsMessage::new(IpvsCommand::NewService, vec![IpvsAttribute::Service(service_attributes(&service))]);
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        let parsed = IpvsMessage::parse_with_param(bytes.as_slice(), GenlHeader { cmd: 1, version: 1 }).unwrap();
        let [IpvsAttribute::Service(attributes)] = parsed.attributes.as_slice() else { panic!("{parsed:?}") };
        prop_assert_eq!(service_from_attributes(attributes).unwrap().service, service);
    }

    #[test]
    fn destinations_survive_bytes(destination in destination(), family in family()) {
        let message =
            IpvsMessage::new(IpvsCommand::NewDestination, vec![IpvsAttribute::Destination(destination_attributes(&destination))]);
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        let parsed = IpvsMessage::parse_with_param(bytes.as_slice(), GenlHeader { cmd: 5, version: 1 }).unwrap();
        let [IpvsAttribute::Destination(attributes)] = parsed.attributes.as_slice() else { panic!("{parsed:?}") };
        prop_assert_eq!(destination_from_attributes(attributes, family).unwrap().destination, destination);
    }
}

#[test]
fn decoders_never_panic_on_arbitrary_messages() {
    let cases = std::env::var("LVS_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(4_096);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    runner
        .run(&message_input(), |(command, bytes)| {
            decode_everything(command, &bytes)
        })
        .unwrap();
    println!(
        "decoders_never_panic: {cases} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::IPv4), Just(AddressFamily::IPv6)]
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
        any::<u128>().prop_map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
    ]
}

fn service() -> impl Strategy<Value = Service> {
    let protocol = prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)];
    let key = prop_oneof![
        (address(), any::<u16>(), protocol).prop_map(|(address, port, protocol)| ServiceKey::Address {
            address,
            port,
            protocol
        }),
        (family(), 1u32..).prop_map(|(family, mark)| ServiceKey::Fwmark { family, mark }),
    ];
    let flags =
        any::<[bool; 4]>().prop_map(|[one_packet, sched_fallback, sched_port, sched_3]| ServiceFlags {
            one_packet,
            sched_fallback,
            sched_port,
            sched_3,
        });
    (
        key,
        "[a-z]{1,15}",
        flags,
        proptest::option::of((any::<u32>(), 0u8..=128)),
    )
        .prop_map(|(key, scheduler, flags, persistence)| {
            let maximum = if key.family() == AddressFamily::IPv4 {
                32
            } else {
                128
            };
            let persistence = persistence.map(|(timeout, prefix_length)| Persistence {
                timeout,
                prefix_length: prefix_length.min(maximum),
            });
            Service {
                key,
                scheduler,
                flags,
                persistence,
            }
        })
}

fn destination() -> impl Strategy<Value = Destination> {
    let kind = prop_oneof![
        Just(TunnelType::Ipip),
        Just(TunnelType::Gue),
        Just(TunnelType::Gre)
    ];
    let checksum = prop_oneof![
        Just(TunnelChecksum::None),
        Just(TunnelChecksum::Checksum),
        Just(TunnelChecksum::RemoteChecksum)
    ];
    let forwarding = prop_oneof![
        Just(Forwarding::Nat),
        Just(Forwarding::DirectRouting),
        Just(Forwarding::Local),
        (kind, any::<u16>(), checksum).prop_map(|(kind, port, checksum)| Forwarding::Tunnel {
            kind,
            port,
            checksum
        }),
    ];
    (
        address(),
        any::<u16>(),
        any::<u32>(),
        forwarding,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(address, port, weight, forwarding, upper_threshold, lower_threshold)| Destination {
                address,
                port,
                weight,
                forwarding,
                upper_threshold,
                lower_threshold,
            },
        )
}
