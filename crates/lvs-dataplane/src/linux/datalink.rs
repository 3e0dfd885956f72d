//! Raw Ethernet on one interface through `pnet_datalink`, shared by announcements and probes:
//! finding the interface and its MAC address, opening a channel, sending a frame — and the
//! ICMPv6 checksum both build frames with. Blocking: callers run it on the blocking pool.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pnet_datalink::{DataLinkReceiver, DataLinkSender};

use crate::dataplane::{DataplaneError, Object, Operation};

/// A raw channel open on an interface.
pub struct RawChannel {
    /// The interface's MAC address.
    pub mac: [u8; 6],
    /// Receives the frames the interface sees (each read waits at most the read timeout).
    pub receiver: Box<dyn DataLinkReceiver>,
    sender: Box<dyn DataLinkSender>,
    operation: Operation,
    object: Object,
}

impl RawChannel {
    /// Opens a channel on the interface named `interface_name`, not promiscuous (frames for
    /// this host, broadcast and multicast are all announcements and probes need). `operation`
    /// and `object` name what the channel is for in errors.
    pub fn open(
        interface_name: &str,
        read_timeout: Duration,
        operation: Operation,
        object: Object,
    ) -> Result<Self, DataplaneError> {
        let error = |reason: String, errno: Option<i32>| DataplaneError::Failed {
            operation,
            object: object.clone(),
            reason,
            errno,
        };
        let interface = pnet_datalink::interfaces()
            .into_iter()
            .find(|interface| interface.name == interface_name)
            .ok_or_else(|| DataplaneError::NotFound {
                operation,
                object: Object::Device(interface_name.to_owned()),
                errno: None,
            })?;
        let mac = interface
            .mac
            .ok_or_else(|| error(format!("{interface_name} has no MAC address"), None))?
            .octets();
        let config = pnet_datalink::Config {
            read_timeout: Some(read_timeout),
            promiscuous: false,
            ..Default::default()
        };
        let channel = pnet_datalink::channel(&interface, config)
            .map_err(|source| error(format!("raw socket: {source}"), source.raw_os_error()))?;
        let pnet_datalink::Channel::Ethernet(sender, receiver) = channel else {
            return Err(error("not an Ethernet interface".into(), None));
        };
        Ok(Self {
            mac,
            receiver,
            sender,
            operation,
            object,
        })
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), DataplaneError> {
        let error = |reason: String, errno: Option<i32>| DataplaneError::Failed {
            operation: self.operation,
            object: self.object.clone(),
            reason,
            errno,
        };
        match self.sender.send_to(frame, None) {
            Some(Ok(())) => Ok(()),
            Some(Err(source)) => Err(error(format!("send: {source}"), source.raw_os_error())),
            None => Err(error("send: no buffer".into(), None)),
        }
    }
}

/// Ethernet header length.
pub const ETHERNET_HEADER: usize = 14;
/// ARP payload for Ethernet and IPv4.
pub const ARP_LENGTH: usize = 28;

/// A broadcast ARP request from `mac` with sender address `sender` for `target` (gratuitous ARP:
/// both the VIP; RFC 5227 probe: sender 0.0.0.0).
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETHERNET_HEADER + ARP_LENGTH);
    frame.extend_from_slice(&[0xff; 6]); // broadcast
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x0806u16.to_be_bytes()); // ARP
    frame.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&1u16.to_be_bytes()); // request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&sender.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&target.octets());
    frame
}

/// The ICMPv6 checksum of `message` (its checksum field zero, or as received: then a correct
/// message sums to 0) between `source` and `destination` (RFC 4443 §2.3).
pub fn icmpv6_checksum(source: &Ipv6Addr, destination: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&source.octets());
    add(&destination.octets());
    add(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(0))
}
