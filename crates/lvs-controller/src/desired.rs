//! Build: the snapshot through `lvs_core::build`, with readiness gating fed by the VIPs each
//! node's agent reported configured in its LvsNodeConfig status — a real server gets traffic
//! only once its node accepts the VIP.

use std::cmp::Ordering;
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

/// The user's objects (sorted, as the snapshot holds them) and the generated ones, sorted by
/// namespace and name (the order the build's cache compares inputs in must not depend on where
/// they came from). The few generated objects are merged in: sorting tens of thousands of
/// objects that are already in order would cost every pass a walk through all of them.
fn merged<'a, K: Resource>(users: impl Iterator<Item = &'a K>, generated: &'a [K]) -> Vec<&'a K> {
    fn order<K: Resource>(one: &K, other: &K) -> Ordering {
        (one.meta().namespace.as_deref(), one.meta().name.as_deref())
            .cmp(&(other.meta().namespace.as_deref(), other.meta().name.as_deref()))
    }
    let mut generated: Vec<&K> = generated.iter().collect();
    generated.sort_by(|one, other| order(*one, *other));
    let mut generated = generated.into_iter().peekable();
    let mut objects = Vec::new();
    for user in users {
        while let Some(next) = generated.next_if(|next| order(*next, user).is_lt()) {
            objects.push(next);
        }
        objects.push(user);
    }
    objects.extend(generated);
    objects
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;
    use lvs_api::RealServer;

    use super::merged;

    fn real_server(namespace: Option<&str>, name: &str) -> RealServer {
        RealServer {
            metadata: ObjectMeta {
                namespace: namespace.map(str::to_owned),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: serde_json::from_value(serde_json::json!({ "address": "10.0.0.1" }))
                .expect("a RealServer spec"),
            status: None,
        }
    }

    fn names(objects: &[&RealServer]) -> Vec<(Option<String>, Option<String>)> {
        objects
            .iter()
            .map(|object| (object.metadata.namespace.clone(), object.metadata.name.clone()))
            .collect()
    }

    #[test]
    fn merging_gives_the_order_a_full_sort_gives() {
        let users = [
            real_server(None, "b"),
            real_server(Some("a"), "a"),
            real_server(Some("a"), "m"),
            real_server(Some("c"), "x"),
        ];
        let generated = [
            real_server(Some("z"), "z"),
            real_server(Some("a"), "n"),
            real_server(None, "a"),
            real_server(Some("a"), "b"),
            real_server(Some("c"), "y"),
        ];
        for count in 0..=generated.len() {
            let merged = merged(users.iter(), &generated[..count]);
            let mut sorted: Vec<&RealServer> = users.iter().chain(&generated[..count]).collect();
            sorted.sort_by_key(|object| (object.metadata.namespace.clone(), object.metadata.name.clone()));
            assert_eq!(names(&merged), names(&sorted), "{count} generated");
        }
    }
}
