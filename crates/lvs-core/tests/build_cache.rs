//! `BuildCache`: a build that reuses what did not change gives exactly what a fresh build gives,
//! change after change — real servers changed, added, relabelled and deleted, nodes relabelled,
//! VirtualServers and pools edited, VIPs reported configured, objects without versions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use lvs_api::RealServerState;
use lvs_core::manifest::Manifests;
use lvs_core::{BuildCache, BuildInput, BuildOutput, ClusterSettings, build};
use pretty_assertions::assert_eq;

/// Every example with its nodes, a second director and the lab pool; every object gets a uid
/// and a resourceVersion, as from an API server.
fn estate() -> Manifests {
    let mut manifests = Manifests::default();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for file in [
        "nodes.yaml",
        "pool.yaml",
        "virtualserver.yaml",
        "virtualserver-ha.yaml",
        "methods/nat.yaml",
        "methods/tunnel.yaml",
        "methods/fwmark.yaml",
        "methods/ipv6.yaml",
        "methods/dns-udp.yaml",
    ] {
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        // Files repeat some RealServer names; those are skipped with a problem, as intended.
        manifests.read(file, &text);
    }
    let mut director = manifests.nodes[0].clone();
    director.metadata.name = Some("director-2".to_owned());
    director.status.as_mut().unwrap().addresses.as_mut().unwrap()[0].address = "10.100.0.3".to_owned();
    director.status.as_mut().unwrap().addresses.as_mut().unwrap()[1].address = "fd00:100::3".to_owned();
    manifests.nodes.push(director);
    let mut serial = 0;
    let mut stamp = |meta: &mut ObjectMeta| {
        serial += 1;
        meta.uid = Some(format!("uid-{serial}"));
        meta.resource_version = Some("1".to_owned());
    };
    manifests
        .pools
        .iter_mut()
        .for_each(|object| stamp(&mut object.metadata));
    manifests
        .nodes
        .iter_mut()
        .for_each(|object| stamp(&mut object.metadata));
    manifests
        .virtual_servers
        .iter_mut()
        .for_each(|object| stamp(&mut object.metadata));
    manifests
        .real_servers
        .iter_mut()
        .for_each(|object| stamp(&mut object.metadata));
    assert!(manifests.virtual_servers.len() >= 7 && manifests.real_servers.len() >= 6);
    manifests
}

/// A new resourceVersion, as the API server gives every write.
fn bump(meta: &mut ObjectMeta) {
    let version: u64 = meta.resource_version.as_deref().unwrap_or("0").parse().unwrap();
    meta.resource_version = Some((version + 1).to_string());
}

/// Builds through `cache` and fresh; they must agree, and the cached one is returned.
fn check(
    step: &str,
    manifests: &Manifests,
    configured: &BTreeSet<(String, IpAddr)>,
    cache: &mut BuildCache,
) -> BuildOutput {
    let settings = ClusterSettings::default();
    let input = BuildInput {
        configured_vips: Some(configured),
        ..manifests.build_input(&settings)
    };
    let cached = cache.build(input);
    let fresh = build(input);
    assert_eq!(cached, fresh, "after: {step}");
    cached
}

#[test]
fn a_cached_build_equals_a_fresh_one_after_every_kind_of_change() {
    let mut manifests = estate();
    let mut configured = BTreeSet::new();
    let mut cache = BuildCache::default();
    let first = check("the first build", &manifests, &configured, &mut cache);
    assert!(first.node_configs.len() >= 4, "{:?}", first.node_configs.keys());
    check("nothing changed", &manifests, &configured, &mut cache);

    let rs = |manifests: &Manifests, name: &str| {
        manifests
            .real_servers
            .iter()
            .position(|object| object.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no RealServer {name}"))
    };
    let web1 = rs(&manifests, "web-1");
    manifests.real_servers[web1].spec.weight = 7;
    bump(&mut manifests.real_servers[web1].metadata);
    let output = check("a weight changed", &manifests, &configured, &mut cache);
    assert!(
        output.node_configs["director-1"]
            .director_services
            .iter()
            .flat_map(|service| &service.destinations)
            .any(|destination| destination.weight == 7),
        "the weight reached the director"
    );

    manifests.real_servers[web1].spec.state = RealServerState::Draining;
    bump(&mut manifests.real_servers[web1].metadata);
    check("a real server draining", &manifests, &configured, &mut cache);

    let mut added = manifests.real_servers[web1].clone();
    added.metadata.name = Some("web-9".to_owned());
    added.metadata.uid = Some("uid-added".to_owned());
    added.spec.address = "10.100.0.19".parse().unwrap();
    manifests.real_servers.push(added);
    check("a real server added", &manifests, &configured, &mut cache);

    let labels = manifests.real_servers[web1].metadata.labels.as_mut().unwrap();
    labels.insert("app".to_owned(), "nothing-selects-this".to_owned());
    bump(&mut manifests.real_servers[web1].metadata);
    check(
        "a real server relabelled out of its selector",
        &manifests,
        &configured,
        &mut cache,
    );

    manifests.real_servers[web1].spec.port = Some(8080);
    let labels = manifests.real_servers[web1].metadata.labels.as_mut().unwrap();
    labels.insert("app".to_owned(), "web".to_owned());
    bump(&mut manifests.real_servers[web1].metadata);
    check(
        "a real server back, with a port DR cannot remap",
        &manifests,
        &configured,
        &mut cache,
    );

    manifests.real_servers.remove(web1);
    check("a real server deleted", &manifests, &configured, &mut cache);

    for (node, vip) in [("rs-1", "10.100.0.100"), ("rs-2", "10.100.0.100")] {
        configured.insert((node.to_owned(), vip.parse().unwrap()));
    }
    check("VIPs reported configured", &manifests, &configured, &mut cache);

    let rs2 = manifests
        .nodes
        .iter()
        .position(|node| node.metadata.name.as_deref() == Some("rs-2"))
        .unwrap();
    manifests.nodes[rs2].metadata.labels = None;
    bump(&mut manifests.nodes[rs2].metadata);
    check("a node lost its role", &manifests, &configured, &mut cache);

    manifests.virtual_servers[0].spec.port = Some(8081);
    bump(&mut manifests.virtual_servers[0].metadata);
    check(
        "a VirtualServer's port changed",
        &manifests,
        &configured,
        &mut cache,
    );

    manifests.pools[0].spec.addresses.truncate(1);
    bump(&mut manifests.pools[0].metadata);
    check(
        "the pool lost its IPv6 range",
        &manifests,
        &configured,
        &mut cache,
    );

    // Objects without versions (files) are never taken from the cache.
    let web2 = rs(&manifests, "web-2");
    manifests.real_servers[web2].metadata.resource_version = None;
    check(
        "a real server without a version",
        &manifests,
        &configured,
        &mut cache,
    );
    manifests.real_servers[web2].spec.weight = 3;
    let output = check(
        "a real server without a version changed",
        &manifests,
        &configured,
        &mut cache,
    );
    assert!(
        output.node_configs["director-1"]
            .director_services
            .iter()
            .flat_map(|service| &service.destinations)
            .any(|destination| destination.real_server == "default/web-2" && destination.weight == 3),
        "the unversioned change reached the director"
    );
    manifests.nodes[rs2].metadata.resource_version = None;
    manifests.nodes[rs2].metadata.labels = Some(
        [("lvs.operator.io/real-server".to_owned(), "true".to_owned())]
            .into_iter()
            .collect(),
    );
    check(
        "a node without a version got its role back",
        &manifests,
        &configured,
        &mut cache,
    );
}

#[test]
fn a_cached_build_reuses_the_configs_of_nodes_a_change_does_not_touch() {
    let mut manifests = estate();
    let configured = BTreeSet::new();
    let mut cache = BuildCache::default();
    let before = check("the first build", &manifests, &configured, &mut cache);
    // A NAT real server: only the NAT VirtualServer's director config changes.
    let nat = manifests
        .real_servers
        .iter()
        .position(|object| {
            object
                .metadata
                .labels
                .as_ref()
                .is_some_and(|labels| labels.get("app").is_some_and(|app| app.contains("nat")))
        })
        .expect("a NAT real server in the examples");
    manifests.real_servers[nat].spec.weight = 9;
    bump(&mut manifests.real_servers[nat].metadata);
    let after = check("a NAT weight changed", &manifests, &configured, &mut cache);
    let reused: Vec<&String> = after
        .node_configs
        .iter()
        .filter(|(node, config)| std::sync::Arc::ptr_eq(config, &before.node_configs[*node]))
        .map(|(node, _)| node)
        .collect();
    let rebuilt: Vec<&String> = after
        .node_configs
        .keys()
        .filter(|node| !reused.contains(node))
        .collect();
    assert!(
        rebuilt.iter().all(|node| node.starts_with("director")) && !rebuilt.is_empty(),
        "rebuilt {rebuilt:?}, reused {reused:?}"
    );
    assert!(
        reused.iter().any(|node| node.starts_with("rs-")),
        "reused {reused:?}"
    );
}
