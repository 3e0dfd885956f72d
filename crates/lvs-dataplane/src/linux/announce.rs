//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) from a raw packet
//! socket, so neighbours and switches learn at once which MAC now holds a VIP. The frame
//! builders are pure and tested byte by byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::datalink::{RawChannel, icmpv6_checksum};
use crate::dataplane::DataplaneError;

/// A gratuitous ARP request: sender and target address are both the VIP, broadcast.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&[0xff; 6]); // broadcast
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x0806u16.to_be_bytes()); // ARP
    frame.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&1u16.to_be_bytes()); // request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&address.octets());
    frame
}

/// An unsolicited neighbour advertisement for `address` to all nodes (ff02::1), override set,
/// with the target link-layer address option (RFC 4861 §7.2.6).
pub fn unsolicited_neighbour_advertisement(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type NA, code, checksum placeholder
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // override flag
    icmp.extend_from_slice(&address.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(&address, &all_nodes, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    frame.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x86ddu16.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6
    frame.extend_from_slice(&u16::try_from(icmp.len()).unwrap_or(32).to_be_bytes());
    frame.extend_from_slice(&[58, 255]); // ICMPv6, hop limit 255 (required for ND)
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&all_nodes.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// Sends `count` announcements for `address` on `interface`, `interval` apart.
pub async fn announce(
    interface: &str,
    address: IpAddr,
    count: u32,
    interval: Duration,
) -> Result<(), DataplaneError> {
    let what = format!("announcing {address} on {interface}");
    for attempt in 0..count {
        let interface = interface.to_owned();
        let task_what = what.clone();
        tokio::task::spawn_blocking(move || send_once(&interface, address, &task_what))
            .await
            .map_err(|error| DataplaneError::Kernel {
                what: what.clone(),
                message: error.to_string(),
            })??;
        if attempt + 1 < count {
            tokio::time::sleep(interval).await;
        }
    }
    Ok(())
}

fn send_once(interface: &str, address: IpAddr, what: &str) -> Result<(), DataplaneError> {
    let mut channel = RawChannel::open(interface, Duration::from_millis(1), what)?;
    let frame = match address {
        IpAddr::V4(address) => gratuitous_arp(channel.mac, address),
        IpAddr::V6(address) => unsolicited_neighbour_advertisement(channel.mac, address),
    };
    channel.send(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0x0a, 0x64, 0, 0x02];

    #[test]
    fn gratuitous_arp_layout() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(10, 100, 0, 100));
        assert_eq!(frame.len(), 42);
        assert_eq!(&frame[0..6], &[0xff; 6]);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[20..22], &[0, 1], "request");
        assert_eq!(&frame[22..28], &MAC, "sender MAC");
        assert_eq!(&frame[28..32], &[10, 100, 0, 100], "sender IP = VIP");
        assert_eq!(&frame[38..42], &[10, 100, 0, 100], "target IP = VIP");
    }

    #[test]
    fn neighbour_advertisement_layout_and_checksum() {
        let address: Ipv6Addr = "fd00:100::100".parse().unwrap();
        let frame = unsolicited_neighbour_advertisement(MAC, address);
        assert_eq!(frame.len(), 14 + 40 + 32);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        assert_eq!(frame[20], 58, "ICMPv6");
        assert_eq!(frame[21], 255, "hop limit");
        let icmp = &frame[54..];
        assert_eq!(icmp[0], 136, "neighbour advertisement");
        assert_eq!(&icmp[8..24], &address.octets(), "target");
        assert_eq!(&icmp[26..32], &MAC, "target link-layer address option");
        // A correct checksum makes the one's-complement sum over pseudo-header + message zero.
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(icmpv6_checksum(&address, &all_nodes, icmp), 0);
    }
}
