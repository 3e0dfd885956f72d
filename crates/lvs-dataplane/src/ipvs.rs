//! IPVS over generic netlink: pure message types and conversions, and a handle that talks to
//! the kernel.
//!
//! Why our own: no maintained crate covers the protocol. `nlrs` cannot edit a service (no
//! SET_SERVICE), create fwmark services, run the connection-sync daemon or read counters;
//! `netlink-packet-ipvs` is built on outdated netlink crates (netlink-packet-core 0.7,
//! netlink-packet-generic 0.3) and has no socket at all. This module sits on the stack
//! rtnetlink uses — netlink-packet-core 0.9, netlink-packet-generic 0.5, genetlink 0.3,
//! netlink-proto 0.14 — in the style of `netlink-packet-generic::ctrl` and
//! `netlink-packet-wireguard`.
//!
//! Layers:
//! - [`IpvsMessage`] (`GenlFamily` "IPVS" version 1, `Emitable`, `ParseableParametrized`) with
//!   typed attributes: [`IpvsAttribute`] at the top, [`ServiceAttribute`],
//!   [`DestinationAttribute`], [`DaemonAttribute`] and [`StatsAttribute`] nested, each with a
//!   `DefaultNla` fallback for attributes newer kernels may add. Pure: bytes in, bytes out.
//! - Conversions between those attributes and the shared model ([`convert`]), and the request
//!   builders ([`IpvsRequest`], `IpvsMessage::get_services`, ...).
//! - [`IpvsHandle`]: a connection task and a cloneable handle; kernel NACKs become a typed
//!   [`IpvsError`] naming the object. It drives netlink-proto directly with genetlink's raw
//!   message type, because `GenetlinkHandle` offers neither batches (many requests in one
//!   datagram, for bulk programming) nor forwarded acknowledgements (to tell which request of
//!   a batch failed); replies are decoded by us, so a malformed one is an error, never a
//!   silently dropped message.
//!
//! Wire facts worth knowing (`include/uapi/linux/ip_vs.h`, `net/netfilter/ipvs/ip_vs_ctl.c`):
//! ports are big-endian (the sync daemon's multicast port is not); addresses are the 16-byte
//! `union nf_inet_addr`; the IPv4 persistence netmask is a network-order mask while the IPv6
//! one is a host-order prefix length; every destination command carries the service key;
//! nests in kernel replies have no `NLA_F_NESTED` flag; GET_INFO replies reuse attribute
//! numbers 1 and 2 for the version and connection table size.

mod constants;
pub mod convert;
mod daemon;
mod destination;
mod error;
mod family;
mod handle;
mod message;
mod request;
mod service;
mod stats;
mod types;
mod wire;

pub use daemon::DaemonAttribute;
pub use destination::DestinationAttribute;
pub use error::IpvsError;
pub use handle::IpvsHandle;
pub use message::{IpvsAttribute, IpvsCommand, IpvsMessage};
pub use request::IpvsRequest;
pub use service::{FlagsWithMask, ServiceAttribute};
pub use stats::{StatsAttribute, stats_from_attributes, stats_to_attributes};
pub use types::{
    DaemonState, IpvsInfo, ObservedDestination, ObservedService, ServiceListing, SyncDaemon, Timeouts,
    UnreadableService,
};
pub use wire::{InetAddress, netmask_for_prefix, prefix_for_netmask};

/// The protocol's numbers, for tests and tools that build bytes by hand.
pub mod numbers {
    pub use super::constants::*;
}
