//! `build`: VirtualServers, RealServers and Nodes → every node's resolved `LvsNodeConfig` spec,
//! plus the problems found and each object's outcome (for status conditions). Pure and
//! deterministic: the same input gives byte-identical output.
//!
//! Steps: validate the address pools → accept VirtualServers (validate, admit into a pool, pick
//! free VIPs, conflicts) → select real servers per VirtualServer (pair checks, the pool's backend
//! and node rules) → assemble each node's config → shard.

mod accept;
mod admit;
mod assemble;
mod cache;
mod candidates;
mod failover;
mod pools;
mod select;
mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node};
use lvs_api::{AddressPool, LvsNodeConfig, LvsNodeConfigSpec, RealServer, VirtualServer};

pub use cache::BuildCache;
pub use shard::{DEFAULT_SHARD_BYTES, EntrySizes, shard, shard_reusing};

pub use pools::PoolOutcome;

use crate::object::ObjectKey;
use crate::pool::AddressRange;
use crate::problem::{Problem, Severity};
use crate::roles::Placement;

/// The packet-mark bits the directors' marking rules write unless told otherwise.
pub const DEFAULT_FWMARK_MASK: u32 = 0xff;

/// Cluster-wide settings the admin gives the controller (chart values), not objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The cluster's Service networks (ClusterIPs): refused as VIPs and backends unless a pool
    /// names them.
    pub service_networks: Vec<AddressRange>,
    /// The packet-mark bits the directors' marking rules write (default 0xff); a fwmark service
    /// with an address must have its mark inside them.
    pub fwmark_mask: u32,
}

impl ClusterSettings {
    /// Parses a fwmark mask as given on a command line: decimal or `0x`-hex, not zero.
    pub fn parse_fwmark_mask(text: &str) -> Result<u32, String> {
        let text = text.trim();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => text.parse::<u32>(),
        };
        match parsed {
            Ok(0) => Err("must not be 0: the directors could not mark anything".to_owned()),
            Ok(mask) => Ok(mask),
            Err(error) => Err(format!(
                "{text:?} is not a 32-bit mask (decimal or 0x-hex): {error}"
            )),
        }
    }

    /// Parses a Service network as given on a command line: a CIDR or a single address.
    pub fn parse_service_network(text: &str) -> Result<AddressRange, String> {
        AddressRange::parse_network(text.trim())
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            service_networks: Vec::new(),
            fwmark_mask: DEFAULT_FWMARK_MASK,
        }
    }
}

/// A list of objects a build reads, as the caller holds them: owned in a slice (files), or
/// shared with a cache (the controller's stores) and listed by reference — no copy either way.
#[derive(Debug)]
pub enum Objects<'a, T> {
    /// The objects themselves.
    Slice(&'a [T]),
    /// References to objects held elsewhere.
    Refs(&'a [&'a T]),
}

impl<T> Clone for Objects<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Objects<'_, T> {}

impl<'a, T> Objects<'a, T> {
    /// The objects, in the caller's order.
    pub fn iter(self) -> impl Iterator<Item = &'a T> {
        let (slice, refs): (&'a [T], &'a [&'a T]) = match self {
            Self::Slice(slice) => (slice, &[]),
            Self::Refs(refs) => (&[], refs),
        };
        slice.iter().chain(refs.iter().copied())
    }

    /// How many.
    pub fn len(self) -> usize {
        match self {
            Self::Slice(slice) => slice.len(),
            Self::Refs(refs) => refs.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl<'a, T> From<&'a [T]> for Objects<'a, T> {
    fn from(slice: &'a [T]) -> Self {
        Self::Slice(slice)
    }
}

impl<'a, T> From<&'a Vec<T>> for Objects<'a, T> {
    fn from(list: &'a Vec<T>) -> Self {
        Self::Slice(list)
    }
}

impl<'a, T> From<&'a [&'a T]> for Objects<'a, T> {
    fn from(refs: &'a [&'a T]) -> Self {
        Self::Refs(refs)
    }
}

impl<'a, T> From<&'a Vec<&'a T>> for Objects<'a, T> {
    fn from(refs: &'a Vec<&'a T>) -> Self {
        Self::Refs(refs)
    }
}

/// Everything `build` reads.
#[derive(Debug, Clone, Copy)]
pub struct BuildInput<'a> {
    /// Every AddressPool.
    pub pools: Objects<'a, AddressPool>,
    /// Every Namespace (for the pools' namespace selectors; namespaces not listed have no labels).
    pub namespaces: Objects<'a, Namespace>,
    /// Cluster-wide settings.
    pub settings: &'a ClusterSettings,
    /// Every VirtualServer, in any namespace.
    pub virtual_servers: Objects<'a, VirtualServer>,
    /// Every RealServer.
    pub real_servers: Objects<'a, RealServer>,
    /// Every Node.
    pub nodes: Objects<'a, Node>,
    /// Readiness gating (Kubernetes mode): the `(node, VIP)` pairs whose real-server setup the
    /// node's agent reported done. A managed real server whose pair is missing is marked
    /// `awaitingNode` and gets no traffic. `None` turns gating off (standalone mode).
    pub configured_vips: Option<&'a BTreeSet<(String, IpAddr)>>,
}

/// The outcome for one VirtualServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerOutcome {
    /// Whether it was accepted.
    pub accepted: bool,
    /// Condition reason for `Accepted`.
    pub reason: &'static str,
    /// Condition message for `Accepted`.
    pub message: String,
    /// Its VIP (asked for, recorded or picked), once admitted.
    pub address: Option<IpAddr>,
    /// The AddressPool the VIP comes from, once admitted.
    pub pool: Option<String>,
    /// Every VIP with its AddressPool, IPv4 first: one for a single-stack VirtualServer, two for
    /// a dual-stack one (`address` and `pool` are the first); empty until admitted.
    pub addresses: Vec<(IpAddr, String)>,
    /// Its director nodes (of every VIP, sorted).
    pub directors: Vec<String>,
    /// The real servers it selected and uses.
    pub real_servers: Vec<ObjectKey>,
}

/// The outcome for one RealServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerOutcome {
    /// Whether its spec is valid.
    pub valid: bool,
    /// Where it runs (for valid real servers).
    pub placement: Option<Placement>,
    /// The VirtualServers using it.
    pub virtual_servers: Vec<ObjectKey>,
}

/// What `build` produces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutput {
    /// The resolved config of every node that has something to do, by node name (unsharded;
    /// shared with the [`BuildCache`], which reuses a node's config while its inputs hold).
    pub node_configs: BTreeMap<String, Arc<LvsNodeConfigSpec>>,
    /// Every problem found, sorted (by object first: [`Problem`]'s order).
    pub problems: Vec<Problem>,
    /// Per VirtualServer.
    pub virtual_servers: BTreeMap<ObjectKey, VirtualServerOutcome>,
    /// Per RealServer.
    pub real_servers: BTreeMap<ObjectKey, RealServerOutcome>,
    /// Per AddressPool, by name.
    pub pools: BTreeMap<String, PoolOutcome>,
}

impl BuildOutput {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|problem| problem.severity == Severity::Error)
    }

    /// The problems of `object` (a slice of [`problems`](Self::problems), which is sorted by
    /// object first).
    pub fn problems_of(&self, object: &ObjectKey) -> &[Problem] {
        let start = self.problems.partition_point(|problem| problem.object < *object);
        let end = start + self.problems[start..].partition_point(|problem| problem.object == *object);
        &self.problems[start..end]
    }

    /// Every node config as the objects the controller writes, sharded to stay well below the
    /// API server's object size limit.
    pub fn node_config_objects(&self) -> Vec<LvsNodeConfig> {
        self.node_configs
            .iter()
            .flat_map(|(node, spec)| shard(node, spec, DEFAULT_SHARD_BYTES))
            .collect()
    }
}

/// Resolves the cluster objects into every node's config (a full build: see [`BuildCache`] for
/// builds that reuse what did not change).
pub fn build(input: BuildInput<'_>) -> BuildOutput {
    BuildCache::default().build(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;

    #[test]
    fn problems_of_finds_exactly_the_problems_of_one_object() {
        let key = |name: &str| ObjectKey::new(Kind::RealServer, "default", name);
        let mut output = BuildOutput::default();
        for (name, field) in [
            ("b", "spec.port"),
            ("a", "spec.address"),
            ("b", "spec.address"),
            ("c", ""),
        ] {
            output.problems.push(Problem::error(
                &key(name),
                field,
                "Invalid",
                format!("{name} {field}"),
            ));
        }
        output.problems.sort();
        let fields = |name: &str| -> Vec<String> {
            output
                .problems_of(&key(name))
                .iter()
                .map(|problem| problem.field.clone())
                .collect()
        };
        assert_eq!(fields("a"), ["spec.address"]);
        assert_eq!(fields("b"), ["spec.address", "spec.port"]);
        assert_eq!(fields("c"), [""]);
        assert!(fields("d").is_empty());
        assert!(fields("0").is_empty());
    }
}
