//! Build: the snapshot through `lvs_core::build`, with readiness gating fed by the VIPs each
//! node's agent reported configured in its LvsNodeConfig status — a real server gets traffic
//! only once its node accepts the VIP.

use std::collections::BTreeSet;
use std::net::IpAddr;

use kube::Resource;
use lvs_api::LvsNodeConfig;
use lvs_core::object::Kind;
use lvs_core::{BuildCache, BuildInput, BuildOutput, ClusterSettings};

use crate::services::Generated;
use crate::watch::Snapshot;

/// The `(node, VIP)` pairs whose real-server setup the node's agent reported done.
pub fn configured_vips<'a>(
    node_configs: impl IntoIterator<Item = &'a LvsNodeConfig>,
) -> BTreeSet<(String, IpAddr)> {
    node_configs
        .into_iter()
        .filter_map(|config| Some((&config.spec.node_name, config.status.as_ref()?)))
        .flat_map(|(node, status)| {
            status
                .real_server_vips
                .iter()
                .filter(|vip| vip.configured)
                .map(move |vip| (node.clone(), vip.address))
        })
        .collect()
}

/// Resolves the snapshot, with the objects `generated` from Services in place of any user-made
/// object claiming to be one of them, into every node's config and every object's outcome,
/// reusing from `cache` what did not change since the last pass.
pub fn build(
    snapshot: &Snapshot,
    generated: &Generated,
    settings: &ClusterSettings,
    cache: &mut BuildCache,
) -> BuildOutput {
    let configured = configured_vips(&snapshot.node_configs);
    let (pools, namespaces) = (snapshot.pools.refs(), snapshot.namespaces.refs());
    let virtual_servers = merged(
        snapshot
            .virtual_servers
            .iter()
            .filter(|object| !generated.excludes(Kind::VirtualServer, &object.metadata)),
        &generated.virtual_servers,
    );
    let real_servers = merged(
        snapshot
            .real_servers
            .iter()
            .filter(|object| !generated.excludes(Kind::RealServer, &object.metadata)),
        &generated.real_servers,
    );
    let nodes = snapshot.nodes.refs();
    cache.build(BuildInput {
        pools: (&pools).into(),
        namespaces: (&namespaces).into(),
        settings,
        virtual_servers: (&virtual_servers).into(),
        real_servers: (&real_servers).into(),
        nodes: (&nodes).into(),
        configured_vips: Some(&configured),
    })
}

/// The user's objects and the generated ones, sorted by namespace and name (the order the
/// build's cache compares inputs in must not depend on where they came from).
fn merged<'a, K: Resource>(users: impl Iterator<Item = &'a K>, generated: &'a [K]) -> Vec<&'a K> {
    let mut objects: Vec<&K> = users.chain(generated).collect();
    objects.sort_by(|one, other| {
        (one.meta().namespace.as_deref(), one.meta().name.as_deref())
            .cmp(&(other.meta().namespace.as_deref(), other.meta().name.as_deref()))
    });
    objects
}
