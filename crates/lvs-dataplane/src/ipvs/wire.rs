//! Small wire encodings shared by the IPVS attributes: the 16-byte `union nf_inet_addr`,
//! NUL-terminated names, address family and protocol numbers, and the persistence netmask.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::DecodeError;

use super::constants::{AF_INET, AF_INET6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::model::{AddressFamily, Protocol};

/// The kernel's `union nf_inet_addr`: 16 bytes, an IPv4 address in the first 4 and zeros after.
///
/// The kernel accepts 4 or 16 bytes (it copies what it gets and zero-fills the rest) and always
/// answers with 16, so which family the bytes hold comes from a sibling attribute (`AF`,
/// `ADDR_FAMILY`). We always send 16 bytes, as ipvsadm does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct InetAddress(pub [u8; 16]);

impl InetAddress {
    /// Length on the wire.
    pub const LENGTH: usize = 16;

    /// Reads 4 (IPv4) or 16 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut address = [0; 16];
        match bytes.len() {
            4 | 16 => address[..bytes.len()].copy_from_slice(bytes),
            other => {
                return Err(DecodeError::from(format!(
                    "an IPVS address has 4 or 16 bytes, not {other}"
                )));
            }
        }
        Ok(Self(address))
    }

    /// The address, read as `family`. For IPv4, the last 12 bytes must be zero.
    pub fn to_ip(self, family: AddressFamily) -> Result<IpAddr, DecodeError> {
        let bytes = self.0;
        match family {
            AddressFamily::IPv6 => Ok(IpAddr::V6(Ipv6Addr::from(bytes))),
            AddressFamily::IPv4 if bytes[4..].iter().all(|byte| *byte == 0) => {
                Ok(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])))
            }
            AddressFamily::IPv4 => Err(DecodeError::from(format!(
                "an IPv4 address with non-zero bytes after the first 4: {bytes:02x?}"
            ))),
        }
    }
}

impl From<IpAddr> for InetAddress {
    fn from(address: IpAddr) -> Self {
        let mut bytes = [0; 16];
        match address {
            IpAddr::V4(address) => bytes[..4].copy_from_slice(&address.octets()),
            IpAddr::V6(address) => bytes = address.octets(),
        }
        Self(bytes)
    }
}

/// The family of an address.
pub fn family_of(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::IPv4,
        IpAddr::V6(_) => AddressFamily::IPv6,
    }
}

/// `AF_INET` / `AF_INET6`.
pub fn family_number(family: AddressFamily) -> u16 {
    match family {
        AddressFamily::IPv4 => AF_INET,
        AddressFamily::IPv6 => AF_INET6,
    }
}

/// The family an `AF_*` number names.
pub fn family_from_number(number: u16) -> Result<AddressFamily, DecodeError> {
    match number {
        AF_INET => Ok(AddressFamily::IPv4),
        AF_INET6 => Ok(AddressFamily::IPv6),
        other => Err(DecodeError::from(format!("unknown address family {other}"))),
    }
}

/// `IPPROTO_*`.
pub fn protocol_number(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Sctp => IPPROTO_SCTP,
    }
}

/// The protocol an `IPPROTO_*` number names.
pub fn protocol_from_number(number: u16) -> Result<Protocol, DecodeError> {
    match number {
        IPPROTO_TCP => Ok(Protocol::Tcp),
        IPPROTO_UDP => Ok(Protocol::Udp),
        IPPROTO_SCTP => Ok(Protocol::Sctp),
        other => Err(DecodeError::from(format!("unknown protocol {other}"))),
    }
}

/// The `IPVS_SVC_ATTR_NETMASK` value for clients sharing a `prefix_length`, as
/// [`ServiceAttribute::Netmask`](super::ServiceAttribute::Netmask) holds it (the four wire bytes
/// read big-endian).
///
/// IPv4 sends the mask itself in network order (`/24` → bytes `ff ff ff 00`). IPv6 sends the
/// prefix length in *host* order: the kernel checks `1..=128` without `ntohl`, so a big-endian
/// 128 is refused with EINVAL.
pub fn netmask_for_prefix(family: AddressFamily, prefix_length: u8) -> u32 {
    match family {
        AddressFamily::IPv4 => match prefix_length {
            0 => 0,
            length => u32::MAX << (32 - u32::from(length.min(32))),
        },
        AddressFamily::IPv6 => u32::from_be_bytes(u32::from(prefix_length).to_ne_bytes()),
    }
}

/// The prefix length a netmask value (as [`netmask_for_prefix`] builds it) stands for.
pub fn prefix_for_netmask(family: AddressFamily, netmask: u32) -> Result<u8, DecodeError> {
    match family {
        AddressFamily::IPv4 => {
            let length = netmask.leading_ones();
            if netmask.checked_shl(length).unwrap_or(0) != 0 {
                return Err(DecodeError::from(format!(
                    "the IPv4 persistence netmask {} is not a prefix",
                    Ipv4Addr::from(netmask)
                )));
            }
            // leading_ones of a u32 is at most 32
            Ok(u8::try_from(length).unwrap_or(32))
        }
        AddressFamily::IPv6 => {
            let length = u32::from_ne_bytes(netmask.to_be_bytes());
            match u8::try_from(length) {
                Ok(length) if length <= 128 => Ok(length),
                _ => Err(DecodeError::from(format!(
                    "the IPv6 persistence prefix length {length} is over 128"
                ))),
            }
        }
    }
}

/// A name as the kernel's `NLA_NUL_STRING` attributes carry it: its bytes and a NUL.
pub fn emit_name(buffer: &mut [u8], name: &str) {
    buffer[..name.len()].copy_from_slice(name.as_bytes());
    buffer[name.len()] = 0;
}

/// A NUL-terminated (or unterminated) UTF-8 name; stops at the first NUL.
pub fn parse_name(bytes: &[u8]) -> Result<String, DecodeError> {
    let end = bytes.iter().position(|byte| *byte == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec())
        .map_err(|error| DecodeError::from(format!("a name that is not UTF-8: {error}")))
}

/// A fixed-size value, or an error naming what was expected.
pub fn parse_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    bytes
        .try_into()
        .map_err(|_| DecodeError::from(format!("{what} has {} bytes, expected {N}", bytes.len())))
}

/// A host-order u16.
pub fn parse_u16(bytes: &[u8], what: &str) -> Result<u16, DecodeError> {
    parse_array(bytes, what).map(u16::from_ne_bytes)
}

/// A network-order u16 (ports).
pub fn parse_u16_big_endian(bytes: &[u8], what: &str) -> Result<u16, DecodeError> {
    parse_array(bytes, what).map(u16::from_be_bytes)
}

/// A host-order u32.
pub fn parse_u32(bytes: &[u8], what: &str) -> Result<u32, DecodeError> {
    parse_array(bytes, what).map(u32::from_ne_bytes)
}

/// A u8.
pub fn parse_u8(bytes: &[u8], what: &str) -> Result<u8, DecodeError> {
    parse_array::<1>(bytes, what).map(|[byte]| byte)
}
