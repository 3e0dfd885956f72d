//! Byte-level tests of the IPVS messages: what we emit matches the uapi layout byte for byte,
//! bytes built by hand from `include/uapi/linux/ip_vs.h` parse to the expected values, and
//! every message and attribute kind survives emit → bytes → parse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use lvs_dataplane::ipvs::{
    DaemonAttribute, DestinationAttribute, FlagsWithMask, InetAddress, IpvsAttribute, IpvsCommand,
    IpvsMessage, ServiceAttribute, StatsAttribute,
};
use netlink_packet_core::{
    DefaultNla, Emitable, NLA_F_NESTED, NetlinkHeader, NetlinkMessage, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

fn emit(message: &IpvsMessage) -> Vec<u8> {
    let mut buffer = vec![0; message.buffer_len()];
    message.emit(&mut buffer);
    buffer
}

fn parse(command: u8, bytes: &[u8]) -> IpvsMessage {
    IpvsMessage::parse_with_param(
        bytes,
        GenlHeader {
            cmd: command,
            version: 1,
        },
    )
    .unwrap()
}

fn round_trip(message: IpvsMessage) {
    let bytes = emit(&message);
    assert_eq!(bytes.len() % 4, 0, "attributes are 4-byte aligned");
    assert_eq!(parse(message.cmd.into(), &bytes), message);
}

/// One attribute as the kernel lays it out: u16 length (header included, padding not), u16
/// type, value, zero padding to 4 bytes.
fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&u16::try_from(4 + value.len()).unwrap().to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(value);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

fn address16(octets: &[u8]) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..octets.len()].copy_from_slice(octets);
    bytes
}

#[test]
fn command_numbers_follow_the_uapi_enum() {
    let commands = [
        (IpvsCommand::NewService, 1),
        (IpvsCommand::SetService, 2),
        (IpvsCommand::DeleteService, 3),
        (IpvsCommand::GetService, 4),
        (IpvsCommand::NewDestination, 5),
        (IpvsCommand::SetDestination, 6),
        (IpvsCommand::DeleteDestination, 7),
        (IpvsCommand::GetDestination, 8),
        (IpvsCommand::NewDaemon, 9),
        (IpvsCommand::DeleteDaemon, 10),
        (IpvsCommand::GetDaemon, 11),
        (IpvsCommand::SetConfig, 12),
        (IpvsCommand::GetConfig, 13),
        (IpvsCommand::SetInfo, 14),
        (IpvsCommand::GetInfo, 15),
        (IpvsCommand::Zero, 16),
        (IpvsCommand::Flush, 17),
        (IpvsCommand::Other(200), 200),
    ];
    for (command, number) in commands {
        assert_eq!(u8::from(command), number);
        assert_eq!(IpvsCommand::from(number), command);
        round_trip(IpvsMessage::new(command, Vec::new()));
    }
    let writes: Vec<_> = commands
        .iter()
        .filter(|(command, _)| command.is_write())
        .map(|(_, number)| *number)
        .collect();
    assert_eq!(writes, [1, 2, 3, 5, 6, 7, 9, 10, 12]);
}

#[test]
fn the_family_is_ipvs_version_1() {
    let message = IpvsMessage::new(IpvsCommand::GetInfo, Vec::new());
    assert_eq!(IpvsMessage::family_name(), "IPVS");
    assert_eq!(message.version(), 1);
    assert_eq!(message.command(), 15);
    assert_eq!(message.family_id(), 0, "resolved at run time");
}

/// `ipvsadm -A -t 10.0.0.1:80 -s wrr`, byte for byte (x86: host order is little-endian).
#[cfg(target_endian = "little")]
#[test]
fn new_service_ipv4_tcp_bytes() {
    let service = vec![
        ServiceAttribute::AddressFamily(2),
        ServiceAttribute::Protocol(6),
        ServiceAttribute::Address(InetAddress(address16(&[10, 0, 0, 1]))),
        ServiceAttribute::Port(80),
        ServiceAttribute::SchedulerName("wrr".into()),
        ServiceAttribute::Flags(FlagsWithMask { flags: 0, mask: 0x3d }),
        ServiceAttribute::Timeout(0),
        ServiceAttribute::Netmask(0xffff_ffff),
    ];
    let message = IpvsMessage::new(IpvsCommand::NewService, vec![IpvsAttribute::Service(service)]);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        84, 0, 0x01, 0x80,                      // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, 84 bytes
        6, 0, 1, 0, 2, 0, 0, 0,                 // AF = AF_INET (host order), padded
        6, 0, 2, 0, 6, 0, 0, 0,                 // PROTOCOL = IPPROTO_TCP
        20, 0, 3, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR, nf_inet_addr
        6, 0, 4, 0, 0, 80, 0, 0,                // PORT = 80, big-endian
        8, 0, 6, 0, b'w', b'r', b'r', 0,        // SCHED_NAME, NUL-terminated
        12, 0, 7, 0, 0, 0, 0, 0, 0x3d, 0, 0, 0, // FLAGS {flags 0, mask 0x3d}
        8, 0, 8, 0, 0, 0, 0, 0,                 // TIMEOUT 0
        8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff,     // NETMASK 255.255.255.255
    ];
    assert_eq!(emit(&message), expected);
    assert_eq!(parse(1, &expected), message);
}

/// A GET_SERVICE reply as `ip_vs_genl_fill_service` builds it: nests without NLA_F_NESTED,
/// a 16-byte address, the kernel's HASHED flag with mask ~0, both statistics nests.
#[test]
fn kernel_service_reply_parses() {
    let stats32 = [
        attribute(1, &7u32.to_ne_bytes()),
        attribute(2, &9u32.to_ne_bytes()),
        attribute(4, &1000u64.to_ne_bytes()),
        attribute(11, &[]),
    ]
    .concat();
    let stats64 = [
        attribute(1, &7u64.to_ne_bytes()),
        attribute(5, &(1u64 << 40).to_ne_bytes()),
    ]
    .concat();
    let mut flags = 0x0003u32.to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    let service = [
        attribute(1, &10u16.to_ne_bytes()),
        attribute(2, &17u16.to_ne_bytes()),
        attribute(3, &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10).octets()),
        attribute(4, &53u16.to_be_bytes()),
        attribute(6, b"sh\0"),
        attribute(11, b"sip\0"),
        attribute(7, &flags),
        attribute(8, &300u32.to_ne_bytes()),
        attribute(9, &64u32.to_ne_bytes()),
        attribute(10, &stats32),
        attribute(12, &stats64),
    ]
    .concat();
    let bytes = attribute(1, &service);
    let message = parse(1, &bytes);
    let expected = IpvsMessage::new(
        IpvsCommand::NewService,
        vec![IpvsAttribute::Service(vec![
            ServiceAttribute::AddressFamily(10),
            ServiceAttribute::Protocol(17),
            ServiceAttribute::Address(InetAddress(
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10).octets(),
            )),
            ServiceAttribute::Port(53),
            ServiceAttribute::SchedulerName("sh".into()),
            ServiceAttribute::PersistenceEngineName("sip".into()),
            ServiceAttribute::Flags(FlagsWithMask {
                flags: 3,
                mask: u32::MAX,
            }),
            ServiceAttribute::Timeout(300),
            ServiceAttribute::Netmask(u32::from_be_bytes(64u32.to_ne_bytes())),
            ServiceAttribute::Stats(vec![
                StatsAttribute::Connections(7),
                StatsAttribute::IncomingPackets(9),
                StatsAttribute::IncomingBytes(1000),
                StatsAttribute::Other(DefaultNla::new(11, Vec::new())),
            ]),
            ServiceAttribute::Stats64(vec![
                StatsAttribute::Connections(7),
                StatsAttribute::OutgoingBytes(1 << 40),
            ]),
        ])],
    );
    assert_eq!(message, expected);
    round_trip(expected);
}

#[test]
fn fwmark_service_round_trips() {
    for family in [2u16, 10] {
        round_trip(IpvsMessage::new(
            IpvsCommand::DeleteService,
            vec![IpvsAttribute::Service(vec![
                ServiceAttribute::AddressFamily(family),
                ServiceAttribute::Fwmark(7),
            ])],
        ));
    }
}

#[test]
fn a_four_byte_address_is_accepted_and_zero_filled() {
    let bytes = attribute(1, &attribute(3, &[192, 0, 2, 1]));
    let message = parse(4, &bytes);
    assert_eq!(
        message.attributes,
        [IpvsAttribute::Service(vec![ServiceAttribute::Address(
            InetAddress(address16(&[192, 0, 2, 1]))
        )])]
    );
}

/// A GET_DEST dump entry as `ip_vs_genl_fill_dest` builds it, tunnel port big-endian.
#[test]
fn kernel_destination_reply_parses() {
    let stats64: Vec<u8> = (1..=10u16)
        .flat_map(|kind| attribute(kind, &u64::from(kind).to_ne_bytes()))
        .collect();
    let destination = [
        attribute(1, &address16(&[10, 1, 0, 2])),
        attribute(2, &8080u16.to_be_bytes()),
        attribute(3, &2u32.to_ne_bytes()),
        attribute(4, &5u32.to_ne_bytes()),
        attribute(13, &[1]),
        attribute(14, &6080u16.to_be_bytes()),
        attribute(15, &1u16.to_ne_bytes()),
        attribute(5, &100u32.to_ne_bytes()),
        attribute(6, &10u32.to_ne_bytes()),
        attribute(7, &3u32.to_ne_bytes()),
        attribute(8, &4u32.to_ne_bytes()),
        attribute(9, &1u32.to_ne_bytes()),
        attribute(11, &2u16.to_ne_bytes()),
        attribute(12, &stats64),
        attribute(99, &[1, 2, 3]),
    ]
    .concat();
    let bytes = [
        attribute(1, &attribute(5, &1u32.to_ne_bytes())),
        attribute(2, &destination),
    ]
    .concat();
    let message = parse(5, &bytes);
    let expected = vec![
        IpvsAttribute::Service(vec![ServiceAttribute::Fwmark(1)]),
        IpvsAttribute::Destination(vec![
            DestinationAttribute::Address(InetAddress(address16(&[10, 1, 0, 2]))),
            DestinationAttribute::Port(8080),
            DestinationAttribute::ForwardingMethod(2),
            DestinationAttribute::Weight(5),
            DestinationAttribute::TunnelType(1),
            DestinationAttribute::TunnelPort(6080),
            DestinationAttribute::TunnelFlags(1),
            DestinationAttribute::UpperThreshold(100),
            DestinationAttribute::LowerThreshold(10),
            DestinationAttribute::ActiveConnections(3),
            DestinationAttribute::InactiveConnections(4),
            DestinationAttribute::PersistentConnections(1),
            DestinationAttribute::AddressFamily(2),
            DestinationAttribute::Stats64(vec![
                StatsAttribute::Connections(1),
                StatsAttribute::IncomingPackets(2),
                StatsAttribute::OutgoingPackets(3),
                StatsAttribute::IncomingBytes(4),
                StatsAttribute::OutgoingBytes(5),
                StatsAttribute::ConnectionsPerSecond(6),
                StatsAttribute::IncomingPacketsPerSecond(7),
                StatsAttribute::OutgoingPacketsPerSecond(8),
                StatsAttribute::IncomingBytesPerSecond(9),
                StatsAttribute::OutgoingBytesPerSecond(10),
            ]),
            DestinationAttribute::Other(DefaultNla::new(99, vec![1, 2, 3])),
        ]),
    ];
    assert_eq!(message.attributes, expected);
    round_trip(message);
}

#[test]
fn every_destination_attribute_round_trips() {
    let stats = vec![
        StatsAttribute::Connections(1),
        StatsAttribute::OutgoingPacketsPerSecond(2),
    ];
    round_trip(IpvsMessage::new(
        IpvsCommand::SetDestination,
        vec![IpvsAttribute::Destination(vec![
            DestinationAttribute::Address(InetAddress(Ipv6Addr::LOCALHOST.octets())),
            DestinationAttribute::Port(65535),
            DestinationAttribute::ForwardingMethod(3),
            DestinationAttribute::Weight(u32::MAX),
            DestinationAttribute::UpperThreshold(1),
            DestinationAttribute::LowerThreshold(2),
            DestinationAttribute::ActiveConnections(3),
            DestinationAttribute::InactiveConnections(4),
            DestinationAttribute::PersistentConnections(5),
            DestinationAttribute::Stats(stats.clone()),
            DestinationAttribute::AddressFamily(10),
            DestinationAttribute::Stats64(stats),
            DestinationAttribute::TunnelType(2),
            DestinationAttribute::TunnelPort(1),
            DestinationAttribute::TunnelFlags(2),
        ])],
    ));
}

/// `ip_vs_genl_fill_daemon`: the multicast port and max length in host order, the group as
/// 4 network-order bytes, the interface NUL-terminated.
#[test]
fn kernel_daemon_reply_parses() {
    let daemon = [
        attribute(1, &2u32.to_ne_bytes()),
        attribute(2, b"eth1\0"),
        attribute(3, &42u32.to_ne_bytes()),
        attribute(4, &1472u16.to_ne_bytes()),
        attribute(7, &8848u16.to_ne_bytes()),
        attribute(8, &[1]),
        attribute(5, &[224, 0, 0, 81]),
    ]
    .concat();
    let message = parse(9, &attribute(3, &daemon));
    let expected = IpvsAttribute::Daemon(vec![
        DaemonAttribute::State(2),
        DaemonAttribute::MulticastInterface("eth1".into()),
        DaemonAttribute::SyncId(42),
        DaemonAttribute::SyncMaxLength(1472),
        DaemonAttribute::MulticastPort(8848),
        DaemonAttribute::MulticastTtl(1),
        DaemonAttribute::MulticastGroup(Ipv4Addr::new(224, 0, 0, 81)),
    ]);
    assert_eq!(message.attributes, [expected]);
    round_trip(message);
    round_trip(IpvsMessage::new(
        IpvsCommand::NewDaemon,
        vec![IpvsAttribute::Daemon(vec![
            DaemonAttribute::State(1),
            DaemonAttribute::MulticastGroup6("ff02::1:81".parse().unwrap()),
            DaemonAttribute::Other(DefaultNla::new(77, vec![9])),
        ])],
    ));
}

/// GET_INFO replies (command SET_INFO) number their attributes 1 and 2 like SERVICE and DEST.
#[test]
fn info_and_config_replies_parse() {
    let info = [
        attribute(1, &0x0001_0201u32.to_ne_bytes()),
        attribute(2, &4096u32.to_ne_bytes()),
    ]
    .concat();
    let message = parse(14, &info);
    assert_eq!(message.cmd, IpvsCommand::SetInfo);
    assert_eq!(
        message.attributes,
        [
            IpvsAttribute::Version(0x0001_0201),
            IpvsAttribute::ConnectionTableSize(4096)
        ]
    );
    round_trip(message);

    let config = [
        attribute(4, &900u32.to_ne_bytes()),
        attribute(5, &120u32.to_ne_bytes()),
        attribute(6, &300u32.to_ne_bytes()),
    ]
    .concat();
    let message = parse(12, &config);
    assert_eq!(
        message.attributes,
        [
            IpvsAttribute::TimeoutTcp(900),
            IpvsAttribute::TimeoutTcpFin(120),
            IpvsAttribute::TimeoutUdp(300)
        ]
    );
    round_trip(message);
}

#[test]
fn unknown_attributes_are_kept_at_every_level() {
    round_trip(IpvsMessage::new(
        IpvsCommand::GetService,
        vec![
            IpvsAttribute::Other(DefaultNla::new(42, vec![1, 2, 3, 4, 5])),
            IpvsAttribute::Service(vec![ServiceAttribute::Other(DefaultNla::new(99, vec![]))]),
        ],
    ));
    round_trip(IpvsMessage::new(
        IpvsCommand::GetInfo,
        vec![IpvsAttribute::Other(DefaultNla::new(3, vec![0; 4]))],
    ));
}

#[test]
fn nests_we_send_carry_nla_f_nested() {
    let message = IpvsMessage::new(
        IpvsCommand::GetDestination,
        vec![IpvsAttribute::Service(Vec::new())],
    );
    let bytes = emit(&message);
    assert_eq!(u16::from_ne_bytes([bytes[2], bytes[3]]), 1 | NLA_F_NESTED);
}

/// The whole datagram: netlink header, generic netlink header (command, version 1, reserved 0),
/// attributes.
#[test]
fn netlink_message_round_trips() {
    let payload = IpvsMessage::new(
        IpvsCommand::GetDestination,
        vec![IpvsAttribute::Service(vec![
            ServiceAttribute::AddressFamily(2),
            ServiceAttribute::Fwmark(3),
        ])],
    );
    let mut genl = GenlMessage::from_payload(payload.clone());
    genl.set_resolved_family_id(37);
    let mut message = NetlinkMessage::from(genl);
    message.header.flags = 0x0301;
    message.header.sequence_number = 5;
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    assert_eq!(
        &bytes[4..6],
        &37u16.to_ne_bytes(),
        "the family id is the netlink message type"
    );
    assert_eq!(
        &bytes[16..20],
        &[8, 1, 0, 0],
        "genlmsghdr: command, version, reserved"
    );
    let parsed = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&bytes).unwrap();
    let NetlinkHeader {
        message_type,
        flags,
        sequence_number,
        ..
    } = parsed.header;
    assert_eq!((message_type, flags, sequence_number), (37, 0x0301, 5));
    match parsed.payload {
        netlink_packet_core::NetlinkPayload::InnerMessage(genl) => assert_eq!(genl.payload, payload),
        other => panic!("unexpected payload {other:?}"),
    }
}

#[test]
fn malformed_attributes_are_errors() {
    let cases: [(u8, Vec<u8>, &str); 9] = [
        (1, attribute(1, &attribute(4, &[0, 80, 0])), "a 3-byte port"),
        (
            1,
            attribute(1, &attribute(3, &[1, 2, 3, 4, 5])),
            "a 5-byte address",
        ),
        (1, attribute(1, &attribute(7, &[0; 4])), "4-byte flags"),
        (
            1,
            attribute(1, &attribute(6, &[0xff, 0xfe, 0])),
            "a scheduler name that is not UTF-8",
        ),
        (5, attribute(2, &attribute(13, &[0, 0])), "a 2-byte tunnel type"),
        (
            5,
            attribute(2, &attribute(10, &attribute(1, &[1, 2, 3]))),
            "a 3-byte counter",
        ),
        (
            9,
            attribute(3, &attribute(5, &[224, 0, 0])),
            "a 3-byte multicast group",
        ),
        (14, attribute(1, &[1, 2]), "a 2-byte version"),
        (1, vec![8, 0, 1, 0, 0], "an attribute longer than the message"),
    ];
    for (command, bytes, what) in cases {
        let result = IpvsMessage::parse_with_param(
            bytes.as_slice(),
            GenlHeader {
                cmd: command,
                version: 1,
            },
        );
        assert!(result.is_err(), "{what} parsed as {result:?}");
    }
}

/// A GET_SERVICE dump reply as the kernel lays it out: an IPv4 TCP service on `address:port`
/// with `scheduler`, and persistence with this network-order netmask when there is one.
fn kernel_service_reply(
    address: [u8; 4],
    port: u16,
    scheduler: &[u8],
    netmask: Option<[u8; 4]>,
) -> IpvsMessage {
    let persistent = u32::from(netmask.is_some());
    let mut flags = persistent.to_ne_bytes().to_vec();
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    let service = [
        attribute(1, &2u16.to_ne_bytes()),
        attribute(2, &6u16.to_ne_bytes()),
        attribute(3, &address16(&address)),
        attribute(4, &port.to_be_bytes()),
        attribute(6, scheduler),
        attribute(7, &flags),
        attribute(8, &300u32.to_ne_bytes()),
        attribute(9, &netmask.unwrap_or([255; 4])),
    ]
    .concat();
    parse(1, &attribute(1, &service))
}

#[test]
fn an_unreadable_entry_in_a_service_dump_is_skipped_and_the_rest_still_read() {
    use lvs_dataplane::ipvs::UnreadableService;
    use lvs_dataplane::ipvs::convert::service_listing_from_replies;
    use lvs_dataplane::model::{Protocol, ServiceKey};
    let key = |address: [u8; 4], port| ServiceKey::Address {
        address: Ipv4Addr::from(address).into(),
        port,
        protocol: Protocol::Tcp,
    };
    // `ipvsadm -A -t 10.0.0.9:443 -s rr -p 300 -M 255.0.255.0` between two of ours.
    let replies = [
        kernel_service_reply([10, 0, 0, 1], 80, b"rr\0", None),
        kernel_service_reply([10, 0, 0, 9], 443, b"rr\0", Some([255, 0, 255, 0])),
        kernel_service_reply([10, 0, 0, 2], 80, b"wlc\0", Some([255, 255, 255, 0])),
    ];
    let listing = service_listing_from_replies(&replies);
    let read: Vec<ServiceKey> = listing
        .services
        .iter()
        .map(|observed| observed.service.key)
        .collect();
    assert_eq!(read, [key([10, 0, 0, 1], 80), key([10, 0, 0, 2], 80)]);
    assert_eq!(
        listing.services[1]
            .service
            .persistence
            .map(|persistence| persistence.prefix_length),
        Some(24)
    );
    assert_eq!(
        listing.unreadable,
        [UnreadableService {
            key: Some(key([10, 0, 0, 9], 443)),
            reason: "the IPv4 persistence netmask 255.0.255.0 is not a prefix".into(),
        }]
    );
    assert_eq!(
        listing.unreadable[0].to_string(),
        "service TCP 10.0.0.9:443: the IPv4 persistence netmask 255.0.255.0 is not a prefix"
    );
}
