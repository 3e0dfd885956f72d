//! The node agent's hands: the kernel state lvs-operator owns on a node — IPVS services and
//! destinations, connection-sync daemons, VIP addresses, sysctls, nftables tables, gratuitous
//! ARP — modelled as plain data, diffed by a pure `plan`, and applied by a Linux implementation
//! (or an in-memory fake with the kernel's semantics, for tests); plus the quick reads a
//! director's failover needs (its VIPs, connection counts, uplink state, other VIP holders); and
//! notifications when someone else changes what we own.

pub mod changes;
pub mod dataplane;
pub mod executor;
pub mod fake;
pub mod ipvs;
pub mod kernel;
pub mod linux;
pub mod model;
pub mod ops;
pub mod ownership;
pub mod plan;

pub use dataplane::{ApplyReport, Dataplane, DataplaneError};
pub use fake::FakeDataplane;
pub use ops::Op;
pub use plan::plan;
