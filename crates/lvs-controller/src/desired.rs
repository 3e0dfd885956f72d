//! Build: the snapshot through `lvs_core::build`, with readiness gating fed by the VIPs each
//! node's agent reported configured in its LvsNodeConfig status — a real server gets traffic
//! only once its node accepts the VIP.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lvs_api::LvsNodeConfig;
use lvs_core::{BuildCache, BuildInput, BuildOutput, ClusterSettings};

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

/// Resolves the snapshot into every node's config and every object's outcome, reusing from
/// `cache` what did not change since the last pass.
pub fn build(snapshot: &Snapshot, settings: &ClusterSettings, cache: &mut BuildCache) -> BuildOutput {
    let configured = configured_vips(&snapshot.node_configs);
    let (pools, namespaces) = (snapshot.pools.refs(), snapshot.namespaces.refs());
    let (virtual_servers, real_servers) = (snapshot.virtual_servers.refs(), snapshot.real_servers.refs());
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
