//! Destination (real server) attributes (`IPVS_DEST_ATTR_*`), nested in `IPVS_CMD_ATTR_DEST`.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator, Parseable,
};

use super::constants::{
    IPVS_DEST_ATTR_ACTIVE_CONNS, IPVS_DEST_ATTR_ADDR, IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_FWD_METHOD,
    IPVS_DEST_ATTR_INACT_CONNS, IPVS_DEST_ATTR_L_THRESH, IPVS_DEST_ATTR_PERSIST_CONNS, IPVS_DEST_ATTR_PORT,
    IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_TUN_FLAGS, IPVS_DEST_ATTR_TUN_PORT,
    IPVS_DEST_ATTR_TUN_TYPE, IPVS_DEST_ATTR_U_THRESH, IPVS_DEST_ATTR_WEIGHT,
};
use super::stats::{StatsAttribute, parse_stats_nest};
use super::wire::{InetAddress, parse_u8, parse_u16, parse_u16_big_endian, parse_u32};

/// One attribute of a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationAttribute {
    /// The real server's address (family from `AddressFamily`, else the service's).
    Address(InetAddress),
    /// The real server's port (sent big-endian).
    Port(u16),
    /// `IP_VS_CONN_F_MASQ` (0), `_LOCALNODE` (1), `_TUNNEL` (2) or `_DROUTE` (3).
    ForwardingMethod(u32),
    /// Weight (the kernel refuses values above `i32::MAX`).
    Weight(u32),
    /// Upper connection threshold (0: none).
    UpperThreshold(u32),
    /// Lower connection threshold (0: none).
    LowerThreshold(u32),
    /// Active connections (replies only).
    ActiveConnections(u32),
    /// Inactive connections (replies only).
    InactiveConnections(u32),
    /// Persistence templates (replies only).
    PersistentConnections(u32),
    /// Counters, the older nest (some counters 32-bit; replies only).
    Stats(Vec<StatsAttribute>),
    /// `AF_INET` / `AF_INET6` of `Address` (kernel 3.18+; lets tunnels mix families).
    AddressFamily(u16),
    /// Counters, all 64-bit (replies only).
    Stats64(Vec<StatsAttribute>),
    /// `IP_VS_CONN_F_TUNNEL_TYPE_IPIP` (0), `_GUE` (1) or `_GRE` (2).
    TunnelType(u8),
    /// GUE's UDP port (sent big-endian).
    TunnelPort(u16),
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (host order).
    TunnelFlags(u16),
    /// An attribute this code does not know.
    Other(DefaultNla),
}

impl Nla for DestinationAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Address(_) => InetAddress::LENGTH,
            Self::Port(_) | Self::AddressFamily(_) | Self::TunnelPort(_) | Self::TunnelFlags(_) => {
                size_of::<u16>()
            }
            Self::ForwardingMethod(_)
            | Self::Weight(_)
            | Self::UpperThreshold(_)
            | Self::LowerThreshold(_)
            | Self::ActiveConnections(_)
            | Self::InactiveConnections(_)
            | Self::PersistentConnections(_) => size_of::<u32>(),
            Self::TunnelType(_) => size_of::<u8>(),
            Self::Stats(attributes) | Self::Stats64(attributes) => attributes.as_slice().buffer_len(),
            Self::Other(attribute) => attribute.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Address(_) => IPVS_DEST_ATTR_ADDR,
            Self::Port(_) => IPVS_DEST_ATTR_PORT,
            Self::ForwardingMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            Self::UpperThreshold(_) => IPVS_DEST_ATTR_U_THRESH,
            Self::LowerThreshold(_) => IPVS_DEST_ATTR_L_THRESH,
            Self::ActiveConnections(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            Self::InactiveConnections(_) => IPVS_DEST_ATTR_INACT_CONNS,
            Self::PersistentConnections(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            Self::Stats(_) => IPVS_DEST_ATTR_STATS | NLA_F_NESTED,
            Self::AddressFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            Self::Stats64(_) => IPVS_DEST_ATTR_STATS64 | NLA_F_NESTED,
            Self::TunnelType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            Self::TunnelPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            Self::TunnelFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            Self::Other(attribute) => attribute.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Address(address) => buffer[..InetAddress::LENGTH].copy_from_slice(&address.0),
            Self::Port(port) | Self::TunnelPort(port) => buffer[..2].copy_from_slice(&port.to_be_bytes()),
            Self::AddressFamily(value) | Self::TunnelFlags(value) => {
                buffer[..2].copy_from_slice(&value.to_ne_bytes())
            }
            Self::ForwardingMethod(value)
            | Self::Weight(value)
            | Self::UpperThreshold(value)
            | Self::LowerThreshold(value)
            | Self::ActiveConnections(value)
            | Self::InactiveConnections(value)
            | Self::PersistentConnections(value) => buffer[..4].copy_from_slice(&value.to_ne_bytes()),
            Self::TunnelType(value) => buffer[0] = *value,
            Self::Stats(attributes) | Self::Stats64(attributes) => attributes.as_slice().emit(buffer),
            Self::Other(attribute) => attribute.emit_value(buffer),
        }
    }
}

impl<'buffer, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'buffer T>> for DestinationAttribute {
    fn parse(buffer: &NlaBuffer<&'buffer T>) -> Result<Self, DecodeError> {
        let value = buffer.value();
        Ok(match buffer.kind() {
            IPVS_DEST_ATTR_ADDR => {
                Self::Address(InetAddress::parse(value).context("invalid IPVS_DEST_ATTR_ADDR")?)
            }
            IPVS_DEST_ATTR_PORT => Self::Port(parse_u16_big_endian(value, "IPVS_DEST_ATTR_PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => {
                Self::ForwardingMethod(parse_u32(value, "IPVS_DEST_ATTR_FWD_METHOD")?)
            }
            IPVS_DEST_ATTR_WEIGHT => Self::Weight(parse_u32(value, "IPVS_DEST_ATTR_WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => Self::UpperThreshold(parse_u32(value, "IPVS_DEST_ATTR_U_THRESH")?),
            IPVS_DEST_ATTR_L_THRESH => Self::LowerThreshold(parse_u32(value, "IPVS_DEST_ATTR_L_THRESH")?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => {
                Self::ActiveConnections(parse_u32(value, "IPVS_DEST_ATTR_ACTIVE_CONNS")?)
            }
            IPVS_DEST_ATTR_INACT_CONNS => {
                Self::InactiveConnections(parse_u32(value, "IPVS_DEST_ATTR_INACT_CONNS")?)
            }
            IPVS_DEST_ATTR_PERSIST_CONNS => {
                Self::PersistentConnections(parse_u32(value, "IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            IPVS_DEST_ATTR_STATS => {
                Self::Stats(parse_stats_nest(value).context("invalid IPVS_DEST_ATTR_STATS")?)
            }
            IPVS_DEST_ATTR_ADDR_FAMILY => {
                Self::AddressFamily(parse_u16(value, "IPVS_DEST_ATTR_ADDR_FAMILY")?)
            }
            IPVS_DEST_ATTR_STATS64 => {
                Self::Stats64(parse_stats_nest(value).context("invalid IPVS_DEST_ATTR_STATS64")?)
            }
            IPVS_DEST_ATTR_TUN_TYPE => Self::TunnelType(parse_u8(value, "IPVS_DEST_ATTR_TUN_TYPE")?),
            IPVS_DEST_ATTR_TUN_PORT => {
                Self::TunnelPort(parse_u16_big_endian(value, "IPVS_DEST_ATTR_TUN_PORT")?)
            }
            IPVS_DEST_ATTR_TUN_FLAGS => Self::TunnelFlags(parse_u16(value, "IPVS_DEST_ATTR_TUN_FLAGS")?),
            _ => Self::Other(DefaultNla::parse(buffer)?),
        })
    }
}

/// Parses the attributes nested in `IPVS_CMD_ATTR_DEST`.
pub(super) fn parse_destination_nest(payload: &[u8]) -> Result<Vec<DestinationAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|attribute| attribute.and_then(|attribute| DestinationAttribute::parse(&attribute)))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid IPVS_CMD_ATTR_DEST")
}
