//! Build: the snapshot through `lvs_core::build`, with readiness gating fed by the VIPs each
//! node's agent reported configured in its LvsNodeConfig status — a real server gets traffic
//! only once its node accepts the VIP.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lvs_api::LvsNodeConfig;
use lvs_core::{BuildInput, BuildOutput, ClusterSettings};

use crate::watch::Snapshot;

/// The `(node, VIP)` pairs whose real-server setup the node's agent reported done.
pub fn configured_vips(node_configs: &[LvsNodeConfig]) -> BTreeSet<(String, IpAddr)> {
    node_configs
        .iter()
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

/// Resolves the snapshot into every node's config and every object's outcome.
pub fn build(snapshot: &Snapshot, settings: &ClusterSettings) -> BuildOutput {
    let configured = configured_vips(&snapshot.node_configs);
    lvs_core::build(BuildInput {
        pools: &snapshot.pools,
        namespaces: &snapshot.namespaces,
        settings,
        virtual_servers: &snapshot.virtual_servers,
        real_servers: &snapshot.real_servers,
        nodes: &snapshot.nodes,
        configured_vips: Some(&configured),
    })
}
