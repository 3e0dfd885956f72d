//! `lvs-controller` as a library, so the binary stays thin and the tests drive the same code
//! against a mock API server.
//!
//! One global reconcile, because the build is global:
//!
//! ```text
//!  watch (stores) ──► build (lvs_core) ──► apply LvsNodeConfig/<node> (SSA, when changed)
//!        ▲                                   │
//!        │                                   ▼ agents report into LvsNodeConfig.status
//!        └──── status: VirtualServer/RealServer conditions + Events, when changed
//! ```
//!
//! Leader election ([`leader`]) decides which replica writes; [`access`] lists every request
//! the controller makes, for the RBAC check of the Helm chart.

pub mod access;
pub mod apply;
pub mod controller;
pub mod crds;
pub mod desired;
pub mod events;
pub mod failover_keys;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod server;
pub mod services;
pub mod status;
pub mod watch;
pub mod written;

pub use lvs_runtime::shutdown_signal;
