//! Traffic counters (`IPVS_STATS_ATTR_*`), nested in the STATS and STATS64 attributes of
//! services and destinations.

use netlink_packet_core::{DecodeError, DefaultNla, ErrorContext, Nla, NlaBuffer, NlasIterator, Parseable};

use super::constants::{
    IPVS_STATS_ATTR_CONNS, IPVS_STATS_ATTR_CPS, IPVS_STATS_ATTR_INBPS, IPVS_STATS_ATTR_INBYTES,
    IPVS_STATS_ATTR_INPKTS, IPVS_STATS_ATTR_INPPS, IPVS_STATS_ATTR_OUTBPS, IPVS_STATS_ATTR_OUTBYTES,
    IPVS_STATS_ATTR_OUTPKTS, IPVS_STATS_ATTR_OUTPPS,
};
use crate::model::Stats;

/// One counter of a statistics nest.
///
/// STATS64 carries every counter as a u64. The older STATS nest carries the byte counters as
/// u64 and the others as u32; parsing accepts either width for every counter, and emitting
/// always writes a u64 (only the kernel sends statistics, so emitting serves tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAttribute {
    /// Connections scheduled (`IPVS_STATS_ATTR_CONNS`).
    Connections(u64),
    /// Incoming packets (`INPKTS`).
    IncomingPackets(u64),
    /// Outgoing packets (`OUTPKTS`).
    OutgoingPackets(u64),
    /// Incoming bytes (`INBYTES`).
    IncomingBytes(u64),
    /// Outgoing bytes (`OUTBYTES`).
    OutgoingBytes(u64),
    /// Connection rate (`CPS`).
    ConnectionsPerSecond(u64),
    /// Incoming packet rate (`INPPS`).
    IncomingPacketsPerSecond(u64),
    /// Outgoing packet rate (`OUTPPS`).
    OutgoingPacketsPerSecond(u64),
    /// Incoming byte rate (`INBPS`).
    IncomingBytesPerSecond(u64),
    /// Outgoing byte rate (`OUTBPS`).
    OutgoingBytesPerSecond(u64),
    /// Anything else, including the alignment padding `IPVS_STATS_ATTR_PAD`.
    Other(DefaultNla),
}

impl StatsAttribute {
    fn counter(&self) -> Option<u64> {
        match self {
            Self::Connections(value)
            | Self::IncomingPackets(value)
            | Self::OutgoingPackets(value)
            | Self::IncomingBytes(value)
            | Self::OutgoingBytes(value)
            | Self::ConnectionsPerSecond(value)
            | Self::IncomingPacketsPerSecond(value)
            | Self::OutgoingPacketsPerSecond(value)
            | Self::IncomingBytesPerSecond(value)
            | Self::OutgoingBytesPerSecond(value) => Some(*value),
            Self::Other(_) => None,
        }
    }
}

impl Nla for StatsAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Other(attribute) => attribute.value_len(),
            _ => size_of::<u64>(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Connections(_) => IPVS_STATS_ATTR_CONNS,
            Self::IncomingPackets(_) => IPVS_STATS_ATTR_INPKTS,
            Self::OutgoingPackets(_) => IPVS_STATS_ATTR_OUTPKTS,
            Self::IncomingBytes(_) => IPVS_STATS_ATTR_INBYTES,
            Self::OutgoingBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            Self::ConnectionsPerSecond(_) => IPVS_STATS_ATTR_CPS,
            Self::IncomingPacketsPerSecond(_) => IPVS_STATS_ATTR_INPPS,
            Self::OutgoingPacketsPerSecond(_) => IPVS_STATS_ATTR_OUTPPS,
            Self::IncomingBytesPerSecond(_) => IPVS_STATS_ATTR_INBPS,
            Self::OutgoingBytesPerSecond(_) => IPVS_STATS_ATTR_OUTBPS,
            Self::Other(attribute) => attribute.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Other(attribute) => attribute.emit_value(buffer),
            counter => {
                let value = counter.counter().unwrap_or_default();
                buffer[..size_of::<u64>()].copy_from_slice(&value.to_ne_bytes());
            }
        }
    }
}

impl<'buffer, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'buffer T>> for StatsAttribute {
    fn parse(buffer: &NlaBuffer<&'buffer T>) -> Result<Self, DecodeError> {
        let value = buffer.value();
        let counter = || -> Result<u64, DecodeError> {
            match value.len() {
                4 => Ok(u64::from(u32::from_ne_bytes([
                    value[0], value[1], value[2], value[3],
                ]))),
                8 => {
                    let mut bytes = [0; 8];
                    bytes.copy_from_slice(value);
                    Ok(u64::from_ne_bytes(bytes))
                }
                other => Err(DecodeError::from(format!(
                    "statistics counter {} has {other} bytes, expected 4 or 8",
                    buffer.kind()
                ))),
            }
        };
        Ok(match buffer.kind() {
            IPVS_STATS_ATTR_CONNS => Self::Connections(counter()?),
            IPVS_STATS_ATTR_INPKTS => Self::IncomingPackets(counter()?),
            IPVS_STATS_ATTR_OUTPKTS => Self::OutgoingPackets(counter()?),
            IPVS_STATS_ATTR_INBYTES => Self::IncomingBytes(counter()?),
            IPVS_STATS_ATTR_OUTBYTES => Self::OutgoingBytes(counter()?),
            IPVS_STATS_ATTR_CPS => Self::ConnectionsPerSecond(counter()?),
            IPVS_STATS_ATTR_INPPS => Self::IncomingPacketsPerSecond(counter()?),
            IPVS_STATS_ATTR_OUTPPS => Self::OutgoingPacketsPerSecond(counter()?),
            IPVS_STATS_ATTR_INBPS => Self::IncomingBytesPerSecond(counter()?),
            IPVS_STATS_ATTR_OUTBPS => Self::OutgoingBytesPerSecond(counter()?),
            _ => Self::Other(DefaultNla::parse(buffer)?),
        })
    }
}

/// Parses a statistics nest.
pub(super) fn parse_stats_nest(payload: &[u8]) -> Result<Vec<StatsAttribute>, DecodeError> {
    NlasIterator::new(payload)
        .map(|attribute| attribute.and_then(|attribute| StatsAttribute::parse(&attribute)))
        .collect::<Result<Vec<_>, _>>()
        .context("invalid statistics attributes")
}

/// The counters a nest holds (missing ones are zero, unknown ones ignored).
pub fn stats_from_attributes(attributes: &[StatsAttribute]) -> Stats {
    let mut stats = Stats::default();
    for attribute in attributes {
        match *attribute {
            StatsAttribute::Connections(value) => stats.connections = value,
            StatsAttribute::IncomingPackets(value) => stats.incoming_packets = value,
            StatsAttribute::OutgoingPackets(value) => stats.outgoing_packets = value,
            StatsAttribute::IncomingBytes(value) => stats.incoming_bytes = value,
            StatsAttribute::OutgoingBytes(value) => stats.outgoing_bytes = value,
            StatsAttribute::ConnectionsPerSecond(value) => stats.connections_per_second = value,
            StatsAttribute::IncomingPacketsPerSecond(value) => stats.incoming_packets_per_second = value,
            StatsAttribute::OutgoingPacketsPerSecond(value) => stats.outgoing_packets_per_second = value,
            StatsAttribute::IncomingBytesPerSecond(value) => stats.incoming_bytes_per_second = value,
            StatsAttribute::OutgoingBytesPerSecond(value) => stats.outgoing_bytes_per_second = value,
            StatsAttribute::Other(_) => {}
        }
    }
    stats
}

/// A STATS64 nest holding `stats` (what the kernel sends; used by tests and fakes).
pub fn stats_to_attributes(stats: &Stats) -> Vec<StatsAttribute> {
    vec![
        StatsAttribute::Connections(stats.connections),
        StatsAttribute::IncomingPackets(stats.incoming_packets),
        StatsAttribute::OutgoingPackets(stats.outgoing_packets),
        StatsAttribute::IncomingBytes(stats.incoming_bytes),
        StatsAttribute::OutgoingBytes(stats.outgoing_bytes),
        StatsAttribute::ConnectionsPerSecond(stats.connections_per_second),
        StatsAttribute::IncomingPacketsPerSecond(stats.incoming_packets_per_second),
        StatsAttribute::OutgoingPacketsPerSecond(stats.outgoing_packets_per_second),
        StatsAttribute::IncomingBytesPerSecond(stats.incoming_bytes_per_second),
        StatsAttribute::OutgoingBytesPerSecond(stats.outgoing_bytes_per_second),
    ]
}
