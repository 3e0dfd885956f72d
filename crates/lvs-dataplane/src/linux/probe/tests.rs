//! Probe frames byte by byte, and the answer parsers on hand-built replies.

use super::*;
use crate::linux::announce::{gratuitous_arp, unsolicited_neighbour_advertisement};

const OWN: [u8; 6] = [0x02, 0, 0x0a, 0x64, 0, 0x02];
const OTHER: [u8; 6] = [0x02, 0, 0x0a, 0x64, 0, 0x03];

fn vip4() -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, 100)
}

fn vip6() -> Ipv6Addr {
    "fd00:100::100".parse().unwrap()
}

/// An ARP frame as a neighbour sends it: to `OWN`, from `sender`.
fn arp(operation: u16, sender: [u8; 6], sender_address: Ipv4Addr, target_address: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&OWN);
    frame.extend_from_slice(&sender);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    frame.extend_from_slice(&operation.to_be_bytes());
    frame.extend_from_slice(&sender);
    frame.extend_from_slice(&sender_address.octets());
    frame.extend_from_slice(&OWN);
    frame.extend_from_slice(&target_address.octets());
    frame
}

#[test]
fn arp_probe_layout() {
    let frame = arp_probe(OWN, vip4());
    assert_eq!(frame.len(), 42);
    assert_eq!(&frame[0..6], &[0xff; 6], "broadcast");
    assert_eq!(&frame[6..12], &OWN);
    assert_eq!(&frame[12..14], &[0x08, 0x06]);
    assert_eq!(
        &frame[14..22],
        &[0, 1, 0x08, 0x00, 6, 4, 0, 1],
        "Ethernet/IPv4 request"
    );
    assert_eq!(&frame[22..28], &OWN, "sender MAC");
    assert_eq!(&frame[28..32], &[0, 0, 0, 0], "sender IP 0.0.0.0: a probe");
    assert_eq!(&frame[32..38], &[0; 6], "target MAC unknown");
    assert_eq!(&frame[38..42], &[10, 100, 0, 100], "target IP = VIP");
}

#[test]
fn an_arp_reply_for_the_vip_names_its_sender() {
    let reply = arp(2, OTHER, vip4(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(arp_reply_sender(&reply, vip4()), Some(OTHER));
    assert_eq!(claimant(&reply, IpAddr::V4(vip4())), Some(OTHER));
    let mut padded = reply;
    padded.resize(60, 0);
    assert_eq!(arp_reply_sender(&padded, vip4()), Some(OTHER), "Ethernet padding");
}

#[test]
fn other_arp_frames_are_not_answers() {
    let request = arp(1, OTHER, vip4(), vip4());
    assert_eq!(
        arp_reply_sender(&request, vip4()),
        None,
        "wrong op (a gratuitous ARP)"
    );
    assert_eq!(arp_reply_sender(&gratuitous_arp(OTHER, vip4()), vip4()), None);
    assert_eq!(
        arp_reply_sender(&arp_probe(OWN, vip4()), vip4()),
        None,
        "our own probe"
    );
    let elsewhere = arp(2, OTHER, Ipv4Addr::new(10, 100, 0, 101), Ipv4Addr::UNSPECIFIED);
    assert_eq!(arp_reply_sender(&elsewhere, vip4()), None, "wrong sender IP");
    let reply = arp(2, OTHER, vip4(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(arp_reply_sender(&reply[..41], vip4()), None, "short frame");
    assert_eq!(
        arp_reply_sender(&reply[..10], vip4()),
        None,
        "shorter than a header"
    );
    let mut not_arp = reply.clone();
    not_arp[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(arp_reply_sender(&not_arp, vip4()), None, "wrong EtherType");
    assert_eq!(claimant(&reply, IpAddr::V6(vip6())), None, "wrong family");
}

#[test]
fn solicited_node_addresses() {
    assert_eq!(
        solicited_node("2001:db8::1:2:3".parse().unwrap()),
        "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        solicited_node(vip6()),
        "ff02::1:ff00:100".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn neighbour_solicitation_probe_layout_and_checksum() {
    let frame = neighbour_solicitation_probe(OWN, vip6());
    assert_eq!(frame.len(), 14 + 40 + 24, "no source link-layer address option");
    assert_eq!(
        &frame[0..6],
        &[0x33, 0x33, 0xff, 0x00, 0x01, 0x00],
        "solicited-node group"
    );
    assert_eq!(&frame[6..12], &OWN);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    assert_eq!(frame[14] >> 4, 6);
    assert_eq!(&frame[18..20], &[0, 24], "payload length");
    assert_eq!(frame[20], 58, "ICMPv6");
    assert_eq!(frame[21], 255, "hop limit");
    assert_eq!(&frame[22..38], &[0; 16], "from the unspecified address");
    let group: Ipv6Addr = "ff02::1:ff00:100".parse().unwrap();
    assert_eq!(&frame[38..54], &group.octets());
    let icmp = &frame[54..];
    assert_eq!(icmp[0], 135, "neighbour solicitation");
    assert_eq!(icmp[1], 0);
    assert_eq!(&icmp[4..8], &[0; 4], "reserved");
    assert_eq!(&icmp[8..24], &vip6().octets(), "target");
    assert_eq!(icmpv6_checksum(&Ipv6Addr::UNSPECIFIED, &group, icmp), 0);
}

#[test]
fn a_neighbour_advertisement_for_the_vip_names_its_ethernet_source() {
    // What a holder answers a probe from :: with: an advertisement to all nodes (RFC 4861
    // §7.2.4), shaped like an unsolicited one.
    let advertisement = unsolicited_neighbour_advertisement(OTHER, vip6());
    assert_eq!(
        neighbour_advertisement_sender(&advertisement, vip6()),
        Some(OTHER)
    );
    assert_eq!(claimant(&advertisement, IpAddr::V6(vip6())), Some(OTHER));
    let mut padded = advertisement;
    padded.extend_from_slice(&[0; 4]);
    assert_eq!(neighbour_advertisement_sender(&padded, vip6()), Some(OTHER));
}

#[test]
fn other_icmpv6_frames_are_not_answers() {
    let advertisement = unsolicited_neighbour_advertisement(OTHER, vip6());
    let other_target: Ipv6Addr = "fd00:100::101".parse().unwrap();
    assert_eq!(
        neighbour_advertisement_sender(&advertisement, other_target),
        None,
        "wrong target"
    );
    let probe = neighbour_solicitation_probe(OTHER, vip6());
    assert_eq!(
        neighbour_advertisement_sender(&probe, vip6()),
        None,
        "wrong type (a solicitation)"
    );
    let mut forwarded = advertisement.clone();
    forwarded[21] = 254;
    assert_eq!(
        neighbour_advertisement_sender(&forwarded, vip6()),
        None,
        "hop limit below 255"
    );
    let mut corrupt = advertisement.clone();
    corrupt[54 + 4] ^= 0x40; // a flag bit, not covered by a new checksum
    assert_eq!(
        neighbour_advertisement_sender(&corrupt, vip6()),
        None,
        "bad checksum"
    );
    assert_eq!(
        neighbour_advertisement_sender(&advertisement[..advertisement.len() - 1], vip6()),
        None,
        "shorter than its payload length"
    );
    assert_eq!(
        neighbour_advertisement_sender(&advertisement[..50], vip6()),
        None,
        "short frame"
    );
    assert_eq!(claimant(&advertisement, IpAddr::V4(vip4())), None, "wrong family");
}

#[test]
fn probe_frames_by_family() {
    assert_eq!(probe_frame(OWN, IpAddr::V4(vip4())), arp_probe(OWN, vip4()));
    assert_eq!(
        probe_frame(OWN, IpAddr::V6(vip6())),
        neighbour_solicitation_probe(OWN, vip6())
    );
}

#[test]
fn claimants_are_other_hosts_each_noted_once() {
    let address = IpAddr::V4(vip4());
    let mut claimants = Vec::new();
    let from_us = arp(2, OWN, vip4(), Ipv4Addr::UNSPECIFIED);
    note_claimant(&mut claimants, &from_us, address, &[OWN]);
    assert!(claimants.is_empty(), "our own MAC is not a claimant");
    let from_other = arp(2, OTHER, vip4(), Ipv4Addr::UNSPECIFIED);
    note_claimant(&mut claimants, &from_other, address, &[OWN]);
    note_claimant(&mut claimants, &from_other, address, &[OWN]);
    note_claimant(&mut claimants, &arp_probe(OWN, vip4()), address, &[OWN]);
    let third = [0x02, 0, 0, 0, 0, 0x09];
    note_claimant(
        &mut claimants,
        &arp(2, third, vip4(), Ipv4Addr::UNSPECIFIED),
        address,
        &[OWN],
    );
    assert_eq!(claimants, [OTHER, third]);
}

#[test]
fn claimants_skip_every_own_mac_and_are_bounded() {
    let address = IpAddr::V4(vip4());
    let second_nic = [0x02, 0, 0, 0, 0, 0x42];
    let mut claimants = Vec::new();
    note_claimant(
        &mut claimants,
        &arp(2, second_nic, vip4(), Ipv4Addr::UNSPECIFIED),
        address,
        &[OWN, second_nic],
    );
    assert!(
        claimants.is_empty(),
        "our second NIC answering is not another owner"
    );
    for last in 0..=200u8 {
        let mac = [0x02, 0, 0, 0, 1, last];
        note_claimant(
            &mut claimants,
            &arp(2, mac, vip4(), Ipv4Addr::UNSPECIFIED),
            address,
            &[OWN, second_nic],
        );
    }
    assert_eq!(
        claimants.len(),
        MAX_CLAIMANTS,
        "a flood of answers is cut at the bound"
    );
}
