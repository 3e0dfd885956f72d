//! Who else answers for a VIP (split-brain detection): a duplicate-address probe on an uplink —
//! an ARP probe (RFC 5227: sender address 0.0.0.0) or a neighbour solicitation from the
//! unspecified address (as duplicate address detection sends it), neither of which changes a
//! neighbour cache — and the parsers that pick the answers for that VIP out of everything the
//! interface receives. Builders and parsers are pure and tested byte by byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::datalink::{ARP_LENGTH, ETHERNET_HEADER, RawChannel, arp_request, icmpv6_checksum};
use crate::dataplane::{DataplaneError, Object, Operation};

/// IPv6 header length.
const IPV6_HEADER: usize = 40;
/// A neighbour solicitation or advertisement without options: type, code, checksum, flags or
/// reserved, target.
const NEIGHBOUR_MESSAGE: usize = 24;
/// How long one read of the raw socket waits, so the deadline is checked this often (and the
/// last read after it, which takes in what is already queued, costs at most this).
const READ_TIMEOUT: Duration = Duration::from_millis(5);
/// The most frames read after the deadline (a flood must not keep a probe going).
const DRAIN_LIMIT: usize = 256;

/// An ARP probe for `address`: a broadcast request with sender MAC `mac`, sender address
/// 0.0.0.0 and target address `address`.
pub fn arp_probe(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, Ipv4Addr::UNSPECIFIED, address)
}

/// The sender MAC of an ARP reply whose sender address is `address`; `None` for any other
/// frame.
pub fn arp_reply_sender(frame: &[u8], address: Ipv4Addr) -> Option<[u8; 6]> {
    let arp = frame.get(ETHERNET_HEADER..ETHERNET_HEADER + ARP_LENGTH)?;
    let is_reply = frame[12..14] == [0x08, 0x06] // ARP
        && arp[0..2] == [0, 1] // Ethernet
        && arp[2..4] == [0x08, 0x00] // IPv4
        && arp[4..6] == [6, 4]
        && arp[6..8] == [0, 2]; // reply
    if !is_reply || arp[14..18] != address.octets() {
        return None;
    }
    arp[8..14].try_into().ok()
}

/// The solicited-node multicast address of `address` (ff02::1:ffXX:XXXX, RFC 4291 §2.7.1).
pub fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let octets = address.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, octets[13], octets[14], octets[15],
    ])
}

/// A neighbour solicitation for `address` from the unspecified address to its solicited-node
/// multicast address, hop limit 255, without a source link-layer address option (RFC 4861
/// §7.2.2 forbids one from ::), from Ethernet address `mac`.
pub fn neighbour_solicitation_probe(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    let destination = solicited_node(address);
    let mut icmp = Vec::with_capacity(NEIGHBOUR_MESSAGE);
    icmp.extend_from_slice(&[135, 0, 0, 0]); // type NS, code, checksum placeholder
    icmp.extend_from_slice(&[0; 4]); // reserved
    icmp.extend_from_slice(&address.octets());
    let checksum = icmpv6_checksum(&Ipv6Addr::UNSPECIFIED, &destination, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let group = destination.octets();
    let mut frame = Vec::with_capacity(ETHERNET_HEADER + IPV6_HEADER + icmp.len());
    frame.extend_from_slice(&[0x33, 0x33, group[12], group[13], group[14], group[15]]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x86ddu16.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6
    frame.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(24).to_be_bytes());
    frame.extend_from_slice(&[58, 255]); // ICMPv6, hop limit 255 (required for ND)
    frame.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    frame.extend_from_slice(&destination.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// The Ethernet source of a valid neighbour advertisement (hop limit 255, correct checksum)
/// whose target is `address`; `None` for any other frame. Extension headers are not followed:
/// neighbour discovery does not use them.
pub fn neighbour_advertisement_sender(frame: &[u8], address: Ipv6Addr) -> Option<[u8; 6]> {
    let header = frame.get(ETHERNET_HEADER..ETHERNET_HEADER + IPV6_HEADER)?;
    let is_icmpv6 = frame[12..14] == [0x86, 0xdd] && header[0] >> 4 == 6 && header[6] == 58;
    if !is_icmpv6 || header[7] != 255 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let start = ETHERNET_HEADER + IPV6_HEADER;
    let icmp = frame.get(start..start + length)?;
    if length < NEIGHBOUR_MESSAGE || icmp[0] != 136 || icmp[1] != 0 || icmp[8..24] != address.octets() {
        return None;
    }
    let source = Ipv6Addr::from(<[u8; 16]>::try_from(&header[8..24]).ok()?);
    let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&header[24..40]).ok()?);
    if icmpv6_checksum(&source, &destination, icmp) != 0 {
        return None;
    }
    frame[6..12].try_into().ok()
}

/// The probe for `address`, from `mac`.
pub fn probe_frame(mac: [u8; 6], address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(address) => arp_probe(mac, address),
        IpAddr::V6(address) => neighbour_solicitation_probe(mac, address),
    }
}

/// Who a received frame says holds `address`, if it is an answer for it.
pub fn claimant(frame: &[u8], address: IpAddr) -> Option<[u8; 6]> {
    match address {
        IpAddr::V4(address) => arp_reply_sender(frame, address),
        IpAddr::V6(address) => neighbour_advertisement_sender(frame, address),
    }
}

/// Adds the sender of `frame` to `claimants` when it is an answer for `address` from a host
/// other than this one (`own`: the probing interface's MAC), once per MAC.
pub fn note_claimant(claimants: &mut Vec<[u8; 6]>, frame: &[u8], address: IpAddr, own: &[[u8; 6]]) {
    if claimants.len() < MAX_CLAIMANTS
        && let Some(mac) = claimant(frame, address)
        && !own.contains(&mac)
        && !claimants.contains(&mac)
    {
        claimants.push(mac);
    }
}

/// The most MACs one probe reports: the list goes into status and Events, and a flood of
/// answers (or a hostile host cycling MACs) must not grow it.
pub const MAX_CLAIMANTS: usize = 8;

/// Every MAC address of this host's interfaces: a host with two NICs on one segment answers
/// ARP for a local address on both (`arp_ignore=0`), and that answer is not another owner.
fn own_macs() -> Vec<[u8; 6]> {
    pnet_datalink::interfaces()
        .iter()
        .filter_map(|interface| interface.mac)
        .map(|mac| mac.octets())
        .filter(|mac| *mac != [0; 6])
        .collect()
}

/// Sends a probe for `address` on `interface` — again halfway through `wait`, in case one is
/// lost — and collects, for `wait`, the distinct MAC addresses that answer for it — none of
/// this host's own, at most [`MAX_CLAIMANTS`]. Answers that arrived while this thread was not
/// running are read after the deadline too: a probe whose thread is descheduled past its
/// deadline (a loaded node) must not report "nobody answers" for a holder that did.
pub async fn claimants(
    interface: &str,
    address: IpAddr,
    wait: Duration,
) -> Result<Vec<[u8; 6]>, DataplaneError> {
    let object = Object::Vip {
        address,
        interface: Some(interface.to_owned()),
    };
    let task_object = object.clone();
    let interface = interface.to_owned();
    tokio::task::spawn_blocking(move || listen(&interface, address, wait, task_object))
        .await
        .map_err(|error| DataplaneError::reason(Operation::Probe, object, error.to_string()))?
}

fn listen(
    interface: &str,
    address: IpAddr,
    wait: Duration,
    object: Object,
) -> Result<Vec<[u8; 6]>, DataplaneError> {
    // The channel listens before the probe leaves, so no early answer is missed.
    let mut channel = RawChannel::open(interface, READ_TIMEOUT, Operation::Probe, object.clone())?;
    let mut own = own_macs();
    own.push(channel.mac);
    let probe = probe_frame(channel.mac, address);
    channel.send(&probe)?;
    let started = Instant::now();
    let deadline = started + wait;
    let mut resend = Some(started + wait / 2);
    let mut claimants = Vec::new();
    let mut after_deadline = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            // Whatever is queued already, then stop at the first read that finds nothing.
            after_deadline += 1;
            if after_deadline > DRAIN_LIMIT {
                break;
            }
        } else if resend.is_some_and(|at| now >= at) {
            resend = None;
            channel.send(&probe)?;
        }
        match channel.receiver.next() {
            Ok(frame) => note_claimant(&mut claimants, frame, address, &own),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                if after_deadline > 0 {
                    break;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(DataplaneError::Failed {
                    operation: Operation::Probe,
                    object,
                    reason: format!("receive: {error}"),
                    errno: error.raw_os_error(),
                });
            }
        }
    }
    Ok(claimants)
}

#[cfg(test)]
#[path = "probe/tests.rs"]
mod tests;
