//! The notification filters, on messages built by hand: nf_tables datagrams byte by byte, and
//! rtnetlink messages.

use std::collections::{BTreeMap, BTreeSet};

use netlink_packet_route::address::{AddressAttribute, AddressMessage};

use super::*;

/// One nf_tables notification: netlink header, `nfgenmsg`, then `attributes` (type, value).
fn message(kind: u16, family: u8, attributes: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = vec![family, 0, 0, 0];
    for (attribute, value) in attributes {
        let length = u16::try_from(4 + value.len()).unwrap();
        body.extend_from_slice(&length.to_ne_bytes());
        body.extend_from_slice(&attribute.to_ne_bytes());
        body.extend_from_slice(value);
        body.resize(align(body.len()), 0);
    }
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&u32::try_from(16 + body.len()).unwrap().to_ne_bytes());
    bytes.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | kind).to_ne_bytes());
    bytes.extend_from_slice(&[0; 10]);
    bytes.extend_from_slice(&body);
    bytes
}

const NEWTABLE: u16 = 0;
const DELRULE: u16 = 8;
const INET: u8 = 1;
const ARP: u8 = 3;
const IPV4: u8 = 2;

#[test]
fn an_nftables_notification_counts_when_it_names_our_table_in_our_families() {
    let ours = message(NEWTABLE, INET, &[(1, b"lvs-operator\0")]);
    assert!(names_our_table(&ours));
    // A rule: the table is attribute 1, the chain attribute 2.
    assert!(names_our_table(&message(
        DELRULE,
        ARP,
        &[(1, b"lvs-operator\0"), (2, b"input\0")]
    )));
    assert!(!names_our_table(&message(NEWTABLE, INET, &[(1, b"filter\0")])));
    assert!(!names_our_table(&message(
        NEWTABLE,
        INET,
        &[(1, b"lvs-operator-x\0")]
    )));
    assert!(
        !names_our_table(&message(NEWTABLE, IPV4, &[(1, b"lvs-operator\0")])),
        "not a family we use"
    );
    // The end of a transaction: attribute 1 is the generation id.
    assert!(!names_our_table(&message(NFT_MSG_NEWGEN, 0, &[(1, b"lvs-")])));
}

#[test]
fn every_message_of_a_datagram_is_read_and_garbage_is_not_ours() {
    let mut datagram = message(NEWTABLE, INET, &[(1, b"kube-proxy\0")]);
    datagram.extend(message(DELRULE, INET, &[(2, b"chain\0"), (1, b"lvs-operator\0")]));
    assert!(names_our_table(&datagram));
    assert!(!names_our_table(&[]));
    assert!(!names_our_table(&[0xff; 7]));
    let mut truncated = message(NEWTABLE, INET, &[(1, b"lvs-operator\0")]);
    truncated.truncate(20);
    assert!(!names_our_table(&truncated));
}

fn address(index: u32, prefix: u8, local: &str) -> RouteNetlinkMessage {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = prefix;
    message
        .attributes
        .push(AddressAttribute::Address(local.parse().unwrap()));
    RouteNetlinkMessage::DelAddress(message)
}

fn link(index: u32, name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.attributes.push(LinkAttribute::IfName(name.into()));
    message
}

#[test]
fn only_our_devices_and_host_addresses_are_subjects() {
    let watched = Watched {
        devices: BTreeSet::from(["lvs0".to_owned(), "tunl0".to_owned()]),
        addresses: BTreeSet::from(["10.0.0.100".parse().unwrap()]),
    };
    let mut devices = BTreeMap::from([(1, "lo".to_owned()), (7, "lvs0".to_owned())]);
    let ip = |text: &str| text.parse().unwrap();
    assert_eq!(
        route_subject(&watched, &mut devices, &address(1, 32, "10.0.0.100")),
        Some(Subject::Address(ip("10.0.0.100")))
    );
    assert_eq!(
        route_subject(&watched, &mut devices, &address(7, 128, "fd00::5")),
        Some(Subject::Address(ip("fd00::5"))),
        "anything on lvs0 is ours"
    );
    assert_eq!(
        route_subject(&watched, &mut devices, &address(7, 64, "fe80::1")),
        None,
        "not a host address: the link-local address of the device"
    );
    assert_eq!(
        route_subject(&watched, &mut devices, &address(1, 32, "10.0.0.5")),
        None
    );
    assert_eq!(
        route_subject(
            &watched,
            &mut devices,
            &RouteNetlinkMessage::NewLink(link(9, "veth1234"))
        ),
        None
    );
    assert_eq!(devices.get(&9).map(String::as_str), Some("veth1234"));
    assert_eq!(
        route_subject(
            &watched,
            &mut devices,
            &RouteNetlinkMessage::DelLink(link(7, "lvs0"))
        ),
        Some(Subject::Device("lvs0".into()))
    );
    assert!(!devices.contains_key(&7), "a deleted device is forgotten");
    // A new lvs0 gets a new index.
    route_subject(
        &watched,
        &mut devices,
        &RouteNetlinkMessage::NewLink(link(11, "lvs0")),
    );
    assert_eq!(
        route_subject(&watched, &mut devices, &address(11, 32, "10.9.9.9")),
        Some(Subject::Address(ip("10.9.9.9")))
    );
}

#[tokio::test]
async fn marks_of_our_writes_expire() {
    tokio::time::pause();
    let shared = Shared {
        watched: RwLock::new(Watched::default()),
        own_writes: Mutex::default(),
        writer_port: 0,
        nftables_generation: AtomicU64::new(0),
        nftables_live: AtomicBool::new(false),
    };
    shared.mark(Subject::Nftables);
    assert!(shared.recently_written(&Subject::Nftables));
    assert!(!shared.recently_written(&Subject::Device("lvs0".into())));
    tokio::time::advance(OWN_WRITE_WINDOW).await;
    assert!(!shared.recently_written(&Subject::Nftables));
}
