//! Service attributes (`IPVS_SVC_ATTR_*`), nested in `IPVS_CMD_ATTR_SERVICE`.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator, Parseable,
};

use super::constants::{
    IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_FLAGS, IPVS_SVC_ATTR_FWMARK, IPVS_SVC_ATTR_NETMASK,
    IPVS_SVC_ATTR_PE_NAME, IPVS_SVC_ATTR_PORT, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_SCHED_NAME,
    IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_TIMEOUT,
};
use super::stats::{StatsAttribute, parse_stats_nest};
use super::wire::{
    InetAddress, emit_name, parse_array, parse_name, parse_u16, parse_u16_big_endian, parse_u32,
};

/// The kernel's `struct ip_vs_flags`: which flags to set, and which of them the request
/// changes (the others keep their value on SET_SERVICE). Host order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FlagsWithMask {
    /// `IP_VS_SVC_F_*` bits.
    pub flags: u32,
    /// The bits of `flags` that count.
    pub mask: u32,
}

/// One attribute of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAttribute {
    /// `AF_INET` or `AF_INET6` (u16, host order).
    AddressFamily(u16),
    /// `IPPROTO_TCP`, `_UDP` or `_SCTP` (u16, host order).
    Protocol(u16),
    /// The virtual address.
    Address(InetAddress),
    /// The virtual port (sent big-endian).
    Port(u16),
    /// Firewall mark; a fwmark service sends AF + FWMARK instead of PROTOCOL/ADDR/PORT.
    Fwmark(u32),
    /// Scheduler name (`rr`, `wlc`, ...), at most 15 bytes.
    SchedulerName(String),
    /// Service flags and the mask of those the request sets.
    Flags(FlagsWithMask),
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Persistence netmask: the four wire bytes read big-endian. See
    /// [`netmask_for_prefix`](super::netmask_for_prefix) for the two families' encodings.
    Netmask(u32),
    /// Counters, the older nest (some counters 32-bit).
    Stats(Vec<StatsAttribute>),
    /// Persistence engine name (`sip`); we never set one.
    PersistenceEngineName(String),
    /// Counters, all 64-bit.
    Stats64(Vec<StatsAttribute>),
    /// An attribute this code does not know.
    Other(DefaultNla),
}

impl Nla for ServiceAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::AddressFamily(_) | Self::Protocol(_) | Self::Port(_) => size_of::<u16>(),
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => size_of::<u32>(),
            Self::Address(_) => InetAddress::LENGTH,
            Self::SchedulerName(name) | Self::PersistenceEngineName(name) => name.len() + 1,
            Self::Flags(_) => 2 * size_of::<u32>(),
            Self::Stats(attributes) | Self::Stats64(attributes) => attributes.as_slice().buffer_len(),
            Self::Other(attribute) => attribute.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::AddressFamily(_) => IPVS_SVC_ATTR_AF,
            Self::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            Self::Address(_) => IPVS_SVC_ATTR_ADDR,
            Self::Port(_) => IPVS_SVC_ATTR_PORT,
            Self::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            Self::SchedulerName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            Self::Flags(_) => IPVS_SVC_ATTR_FLAGS,
            Self::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            Self::Stats(_) => IPVS_SVC_ATTR_STATS | NLA_F_NESTED,
            Self::PersistenceEngineName(_) => IPVS_SVC_ATTR_PE_NAME,
            Self::Stats64(_) => IPVS_SVC_ATTR_STATS64 | NLA_F_NESTED,
            Self::Other(attribute) => attribute.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::AddressFamily(value) | Self::Protocol(value) => {
                buffer[..2].copy_from_slice(&value.to_ne_bytes())
            }
            Self::Port(port) => buffer[..2].copy_from_slice(&port.to_be_bytes()),
            Self::Fwmark(value) | Self::Timeout(value) => buffer[..4].copy_from_slice(&value.to_ne_bytes()),
            Self::Netmask(netmask) => buffer[..4].copy_from_slice(&netmask.to_be_bytes()),
            Self::Address(address) => buffer[..InetAddress::LENGTH].copy_from_slice(&address.0),
            Self::SchedulerName(name) | Self::PersistenceEngineName(name) => emit_name(buffer, name),
            Self::Flags(FlagsWithMask { flags, mask }) => {
                buffer[..4].copy_from_slice(&flags.to_ne_bytes());
                buffer[4..8].copy_from_slice(&mask.to_ne_bytes());
            }
            Self::Stats(attributes) | Self::Stats64(attributes) => attributes.as_slice().emit(buffer),
            Self::Other(attribute) => attribute.emit_value(buffer),
        }
    }
}

impl<'buffer, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'buffer T>> for ServiceAttribute {
    fn parse(buffer: &NlaBuffer<&'buffer T>) -> Result<Self, DecodeError> {
        let value = buffer.value();
        Ok(match buffer.kind() {
            IPVS_SVC_ATTR_AF => Self::AddressFamily(parse_u16(value, "IPVS_SVC_ATTR_AF")?),
            IPVS_SVC_ATTR_PROTOCOL => Self::Protocol(parse_u16(value, "IPVS_SVC_ATTR_PROTOCOL")?),
            IPVS_SVC_ATTR_ADDR => {
                Self::Address(InetAddress::parse(value).context("invalid IPVS_SVC_ATTR_ADDR")?)
            }
            IPVS_SVC_ATTR_PORT => Self::Port(parse_u16_big_endian(value, "IPVS_SVC_ATTR_PORT")?),
            IPVS_SVC_ATTR_FWMARK => Self::Fwmark(parse_u32(value, "IPVS_SVC_ATTR_FWMARK")?),
            IPVS_SVC_ATTR_SCHED_NAME => {
                Self::SchedulerName(parse_name(value).context("invalid IPVS_SVC_ATTR_SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                let bytes: [u8; 8] = parse_array(value, "IPVS_SVC_ATTR_FLAGS")?;
                let [f0, f1, f2, f3, m0, m1, m2, m3] = bytes;
                Self::Flags(FlagsWithMask {
                    flags: u32::from_ne_bytes([f0, f1, f2, f3]),
                    mask: u32::from_ne_bytes([m0, m1, m2, m3]),
                })
            }
            IPVS_SVC_ATTR_TIMEOUT => Self::Timeout(parse_u32(value, "IPVS_SVC_ATTR_TIMEOUT")?),
            IPVS_SVC_ATTR_NETMASK => {
                Self::Netmask(parse_array(value, "IPVS_SVC_ATTR_NETMASK").map(u32::from_be_bytes)?)
            }
            IPVS_SVC_ATTR_STATS => {
                Self::Stats(parse_stats_nest(value).context("invalid IPVS_SVC_ATTR_STATS")?)
            }
            IPVS_SVC_ATTR_PE_NAME => {
                Self::PersistenceEngineName(parse_name(value).context("invalid IPVS_SVC_ATTR_PE_NAME")?)
            }
            IPVS_SVC_ATTR_STATS64 => {
                Self::Stats64(parse_stats_nest(value).context("invalid IPVS_SVC_ATTR_STATS64")?)
            }
            _ => Self::Other(DefaultNla::parse(buffer)?),
        })
    }
}

/// Parses the attributes nested in `IPVS_CMD_ATTR_SERVICE`.
pub(super) fn parse_service_nest(payload: &[u8]) -> Result<Vec<ServiceAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|attribute| attribute.and_then(|attribute| ServiceAttribute::parse(&attribute)))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid IPVS_CMD_ATTR_SERVICE")
}
