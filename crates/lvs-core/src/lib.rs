//! The pure domain of lvs-operator: parse manifests, validate specs into strong types, detect
//! conflicts between objects, resolve node roles, and build each node's resolved config.
//!
//! No I/O beyond what the caller hands in: no tokio, no Kubernetes client, no netlink. The
//! controller and the standalone agent both call [`build::build`].

pub mod access;
pub mod build;
pub mod conditions;
pub mod manifest;
pub mod object;
pub mod pool;
pub mod problem;
pub mod roles;
pub mod service;
pub mod validate;

pub use build::{BuildCache, BuildInput, BuildOutput, ClusterSettings, Objects, build};

/// The dummy device that holds VIPs owned by lvs-operator (like kube-proxy's `kube-ipvs0`).
pub const DUMMY_DEVICE: &str = "lvs0";
pub use object::ObjectKey;
pub use problem::{Problem, Severity};
