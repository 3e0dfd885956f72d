//! Connection-synchronisation daemon attributes (`IPVS_DAEMON_ATTR_*`), nested in
//! `IPVS_CMD_ATTR_DAEMON`.

use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable};

use super::constants::{
    IPVS_DAEMON_ATTR_MCAST_GROUP, IPVS_DAEMON_ATTR_MCAST_GROUP6, IPVS_DAEMON_ATTR_MCAST_IFN,
    IPVS_DAEMON_ATTR_MCAST_PORT, IPVS_DAEMON_ATTR_MCAST_TTL, IPVS_DAEMON_ATTR_STATE,
    IPVS_DAEMON_ATTR_SYNC_ID, IPVS_DAEMON_ATTR_SYNC_MAXLEN,
};
use super::wire::{emit_name, parse_array, parse_name, parse_u8, parse_u16, parse_u32};

/// One attribute of a sync daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonAttribute {
    /// `IP_VS_STATE_MASTER` (1) or `IP_VS_STATE_BACKUP` (2).
    State(u32),
    /// The interface it sends or listens on, at most 15 bytes.
    MulticastInterface(String),
    /// Sync ID (only 0..=255 goes on the wire of the sync protocol).
    SyncId(u32),
    /// Largest sync message payload, in bytes.
    SyncMaxLength(u16),
    /// IPv4 multicast group (network order on the wire).
    MulticastGroup(Ipv4Addr),
    /// IPv6 multicast group.
    MulticastGroup6(Ipv6Addr),
    /// UDP port. Unlike service and destination ports this one is in **host** order: the
    /// kernel reads it with `nla_get_u16`.
    MulticastPort(u16),
    /// Multicast TTL.
    MulticastTtl(u8),
    /// An attribute this code does not know.
    Other(DefaultNla),
}

impl Nla for DaemonAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::State(_) | Self::SyncId(_) | Self::MulticastGroup(_) => size_of::<u32>(),
            Self::MulticastInterface(name) => name.len() + 1,
            Self::SyncMaxLength(_) | Self::MulticastPort(_) => size_of::<u16>(),
            Self::MulticastGroup6(_) => 16,
            Self::MulticastTtl(_) => size_of::<u8>(),
            Self::Other(attribute) => attribute.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::State(_) => IPVS_DAEMON_ATTR_STATE,
            Self::MulticastInterface(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            Self::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            Self::SyncMaxLength(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            Self::MulticastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            Self::MulticastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            Self::MulticastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            Self::MulticastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            Self::Other(attribute) => attribute.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::State(value) | Self::SyncId(value) => buffer[..4].copy_from_slice(&value.to_ne_bytes()),
            Self::MulticastInterface(name) => emit_name(buffer, name),
            Self::SyncMaxLength(value) | Self::MulticastPort(value) => {
                buffer[..2].copy_from_slice(&value.to_ne_bytes());
            }
            Self::MulticastGroup(group) => buffer[..4].copy_from_slice(&group.octets()),
            Self::MulticastGroup6(group) => buffer[..16].copy_from_slice(&group.octets()),
            Self::MulticastTtl(ttl) => buffer[0] = *ttl,
            Self::Other(attribute) => attribute.emit_value(buffer),
        }
    }
}

impl<'buffer, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'buffer T>> for DaemonAttribute {
    fn parse(buffer: &NlaBuffer<&'buffer T>) -> Result<Self, DecodeError> {
        let value = buffer.value();
        Ok(match buffer.kind() {
            IPVS_DAEMON_ATTR_STATE => Self::State(parse_u32(value, "IPVS_DAEMON_ATTR_STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                Self::MulticastInterface(parse_name(value).context("invalid IPVS_DAEMON_ATTR_MCAST_IFN")?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => Self::SyncId(parse_u32(value, "IPVS_DAEMON_ATTR_SYNC_ID")?),
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                Self::SyncMaxLength(parse_u16(value, "IPVS_DAEMON_ATTR_SYNC_MAXLEN")?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => Self::MulticastGroup(Ipv4Addr::from(parse_array::<4>(
                value,
                "IPVS_DAEMON_ATTR_MCAST_GROUP",
            )?)),
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => Self::MulticastGroup6(Ipv6Addr::from(parse_array::<16>(
                value,
                "IPVS_DAEMON_ATTR_MCAST_GROUP6",
            )?)),
            IPVS_DAEMON_ATTR_MCAST_PORT => {
                Self::MulticastPort(parse_u16(value, "IPVS_DAEMON_ATTR_MCAST_PORT")?)
            }
            IPVS_DAEMON_ATTR_MCAST_TTL => Self::MulticastTtl(parse_u8(value, "IPVS_DAEMON_ATTR_MCAST_TTL")?),
            _ => Self::Other(DefaultNla::parse(buffer)?),
        })
    }
}

/// Parses the attributes nested in `IPVS_CMD_ATTR_DAEMON`.
pub(super) fn parse_daemon_nest(payload: &[u8]) -> Result<Vec<DaemonAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|attribute| attribute.and_then(|attribute| DaemonAttribute::parse(&attribute)))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid IPVS_CMD_ATTR_DAEMON")
}
