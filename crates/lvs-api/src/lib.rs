//! lvs-operator's API: the `AddressPool`, `VirtualServer`, `RealServer` and `LvsNodeConfig`
//! custom resources (group `lvs.operator.io`, version `v1alpha1`), the condition types and
//! reasons they report, and the node labels that give nodes their roles.
//!
//! Types only — no I/O. The doc comments on every field become the CRD schema descriptions that
//! `kubectl explain` shows, so they are written for the user.

// kube-derive's repeated `printcolumn(type_ = …)` arguments read as duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

pub mod address_pool;
pub mod common;
pub mod conditions;
pub mod high_availability;
pub mod labels;
pub mod limits;
pub mod node_config;
pub mod real_server;
pub mod virtual_server;

pub use address_pool::*;
pub use common::*;
pub use high_availability::*;
pub use node_config::*;
pub use real_server::*;
pub use virtual_server::*;

/// The API group of every lvs-operator resource.
pub const GROUP: &str = "lvs.operator.io";
/// The API version this crate describes.
pub const VERSION: &str = "v1alpha1";
