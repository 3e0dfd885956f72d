//! [`BuildCache`]: what one build keeps for the next, so that a change rebuilds only what it
//! touches — in a cluster of 1,000 VirtualServers and 20,000 RealServers, one RealServer's weight
//! must not cost a rebuild of everything. Objects are recognised by uid and resourceVersion
//! (the API server gives every write a new resourceVersion); objects lacking either (files) are
//! never taken from the cache. What is kept, and while what holds:
//! - upstream — the pools, nodes and accepted VirtualServers: while no AddressPool, Namespace,
//!   VirtualServer or Node changed, nor the settings;
//! - each RealServer's validation: while its version is the same;
//! - each VirtualServer's selection and resolved service: while the upstream, the configured
//!   VIPs and the validated real servers its selector may match are the same;
//! - each node's config: while the selections touching it are the same.
//!
//! A cached build gives exactly what a fresh build gives (tests/build_cache.rs changes objects
//! one by one and compares).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use lvs_api::AddressFamily;

use super::admit::Admission;
use super::assemble::{self, NodeCache, Resolved};
use super::candidates::Candidates;
use super::select::{self, PlacedRealServer, Validated};
use super::{BuildInput, BuildOutput, ClusterSettings, accept, pools};
use crate::object::ObjectKey;
use crate::pool::Pools;
use crate::roles::{NodeFacts, NodeIndex};
use crate::validate::{ValidRealServer, ValidVirtualServer};

/// The `(node, VIP)` pairs reported configured.
type ConfiguredVips = BTreeSet<(String, IpAddr)>;

/// What builds keep between them (see the module docs). `BuildCache::default()` is empty: its
/// first build is a full one.
#[derive(Debug, Default)]
pub struct BuildCache {
    /// The last generation handed out (each stage result gets a new one when made anew).
    generation: u64,
    upstream: Option<Upstream>,
    /// The configured VIPs of the last build, and their generation.
    configured: Option<(Option<ConfiguredVips>, u64)>,
    /// Validated RealServers by uid.
    real_servers: HashMap<String, CachedRealServer>,
    /// Selections by VirtualServer and VIP family (a dual-stack VirtualServer has two).
    selections: HashMap<(ObjectKey, AddressFamily), CachedSelection>,
    nodes: NodeCache,
}

/// The versions of every object the upstream stage reads, with the settings.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    settings: ClusterSettings,
    /// How many pools, namespaces, VirtualServers and nodes.
    counts: [usize; 4],
    /// (uid, resourceVersion) of each, in input order.
    versions: Vec<(String, String)>,
}

impl Fingerprint {
    /// `None` when some object lacks a uid or resourceVersion.
    fn of(input: &BuildInput<'_>) -> Option<Self> {
        let metas = input
            .pools
            .iter()
            .map(|object| &object.metadata)
            .chain(input.namespaces.iter().map(|object| &object.metadata))
            .chain(input.virtual_servers.iter().map(|object| &object.metadata))
            .chain(input.nodes.iter().map(|object| &object.metadata));
        let versions = metas
            .map(|meta| Some((meta.uid.clone()?, meta.resource_version.clone()?)))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            settings: input.settings.clone(),
            counts: [
                input.pools.len(),
                input.namespaces.len(),
                input.virtual_servers.len(),
                input.nodes.len(),
            ],
            versions,
        })
    }
}

/// The pools, nodes and accepted VirtualServers, with the outcomes and problems found so far.
#[derive(Debug)]
struct Upstream {
    fingerprint: Option<Fingerprint>,
    generation: u64,
    nodes: NodeIndex,
    pools: Pools,
    accepted: Vec<Arc<ValidVirtualServer>>,
    output: BuildOutput,
}

impl Upstream {
    fn new(input: &BuildInput<'_>, fingerprint: Option<Fingerprint>, generation: u64) -> Self {
        let nodes = NodeIndex::new(input.nodes.iter().map(NodeFacts::from_node));
        let mut output = BuildOutput::default();
        let pools = pools::validate(input.pools, input.namespaces, &mut output);
        let admission = Admission {
            pools: &pools,
            nodes: &nodes,
            settings: input.settings,
        };
        let accepted = accept::accept(input.virtual_servers, &admission, &mut output);
        pools::record_usage(&pools, &accepted, &mut output);
        Self {
            fingerprint,
            generation,
            nodes,
            pools,
            accepted,
            output,
        }
    }
}

/// One RealServer's validation at one resourceVersion.
#[derive(Debug)]
struct CachedRealServer {
    version: String,
    validated: Validated,
    /// The build that last used it.
    pass: u64,
}

/// One VirtualServer's selection and what it was made from.
#[derive(Debug)]
struct CachedSelection {
    upstream: u64,
    configured: u64,
    inputs: Vec<Arc<ValidRealServer>>,
    resolved: Arc<Resolved>,
}

impl CachedSelection {
    fn still_holds(&self, upstream: u64, configured: u64, inputs: &[&PlacedRealServer]) -> bool {
        self.upstream == upstream
            && self.configured == configured
            && self.inputs.len() == inputs.len()
            && self
                .inputs
                .iter()
                .zip(inputs)
                .all(|(cached, now)| Arc::ptr_eq(cached, &now.spec))
    }
}

fn next(generation: &mut u64) -> u64 {
    *generation += 1;
    *generation
}

impl BuildCache {
    /// Builds `input`, reusing what did not change since the last build through this cache.
    pub fn build(&mut self, input: BuildInput<'_>) -> BuildOutput {
        let Self {
            generation,
            upstream,
            configured,
            real_servers,
            selections,
            nodes,
        } = self;
        let fingerprint = Fingerprint::of(&input);
        let up = match upstream.take() {
            Some(cached) if fingerprint.is_some() && cached.fingerprint == fingerprint => cached,
            _ => Upstream::new(&input, fingerprint, next(generation)),
        };
        let configured_generation = match configured {
            Some((set, cached)) if set.as_ref() == input.configured_vips => *cached,
            _ => {
                let made = next(generation);
                *configured = Some((input.configured_vips.cloned(), made));
                made
            }
        };

        let mut output = up.output.clone();
        let pass = next(generation);
        let validated = validate_real_servers(&input, real_servers, pass);
        let placed = select::place_real_servers(validated, &up.nodes, &mut output);
        let candidates = Candidates::new(&placed);
        let admission = Admission {
            pools: &up.pools,
            nodes: &up.nodes,
            settings: input.settings,
        };
        let mut kept = HashMap::with_capacity(up.accepted.len());
        let mut resolved = Vec::with_capacity(up.accepted.len());
        for virtual_server in &up.accepted {
            let inputs: Vec<&PlacedRealServer> =
                select::candidates_of(virtual_server, &placed, &candidates).collect();
            let selection_key = (virtual_server.key.clone(), virtual_server.family);
            let entry = match selections.remove(&selection_key) {
                Some(cached) if cached.still_holds(up.generation, configured_generation, &inputs) => cached,
                _ => {
                    let selection = select::select(
                        virtual_server,
                        inputs.iter().copied(),
                        &admission,
                        input.configured_vips,
                    );
                    CachedSelection {
                        upstream: up.generation,
                        configured: configured_generation,
                        inputs: inputs.iter().map(|placed| Arc::clone(&placed.spec)).collect(),
                        resolved: Arc::new(Resolved::new(selection, &up.nodes, next(generation))),
                    }
                }
            };
            select::record(&entry.resolved.selection, &mut output);
            output.problems.extend(entry.resolved.problems.iter().cloned());
            resolved.push(Arc::clone(&entry.resolved));
            kept.insert(selection_key, entry);
        }
        *selections = kept;
        output.node_configs = assemble::assemble(&resolved, nodes, &mut output.problems);
        output.problems.sort();
        output.problems.dedup();
        *upstream = Some(up);
        output
    }
}

/// Every RealServer of `input` validated, from `cache` where its version is the same; the cache
/// then holds exactly these (each stamped with this build's `pass`).
fn validate_real_servers(
    input: &BuildInput<'_>,
    cache: &mut HashMap<String, CachedRealServer>,
    pass: u64,
) -> Vec<Validated> {
    let validated = input
        .real_servers
        .iter()
        .map(|object| {
            let meta = &object.metadata;
            let (Some(uid), Some(version)) = (&meta.uid, &meta.resource_version) else {
                return select::validate_real_server(object);
            };
            if let Some(cached) = cache.get_mut(uid.as_str())
                && cached.version == *version
                && cached.pass != pass
            {
                cached.pass = pass;
                return cached.validated.clone();
            }
            let validated = select::validate_real_server(object);
            cache.insert(
                uid.clone(),
                CachedRealServer {
                    version: version.clone(),
                    validated: validated.clone(),
                    pass,
                },
            );
            validated
        })
        .collect();
    cache.retain(|_, cached| cached.pass == pass);
    validated
}
