//! The cluster the controller scenarios start from: VirtualServer `web` on 10.100.0.100:80
//! (direct routing), RealServers `web-1` and `web-2` on the nodes `rs-1` and `rs-2`, director
//! `director-1` — and the node configs with the agents' reports once everything is programmed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lvs_api::{LvsNodeConfig, RealServer, VirtualServer};
use serde_json::{Value, json};

use super::{NAMESPACES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, VIRTUAL_SERVERS};

pub const VIP: &str = "10.100.0.100";

pub fn virtual_server(name: &str, created: &str) -> Value {
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": { "name": name, "namespace": "default", "uid": format!("uid-vs-{name}"), "generation": 1,
                      "resourceVersion": "10", "creationTimestamp": created },
        "spec": {
            "address": VIP, "port": 80, "protocol": "TCP", "scheduler": "rr",
            "forwarding": { "method": "DirectRouting" },
            "realServers": { "selector": { "matchLabels": { "app": "web" } }, "arpMethod": "Sysctl" },
        },
    })
}

pub fn real_server(name: &str, address: &str) -> Value {
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "RealServer",
        "metadata": { "name": name, "namespace": "default", "uid": format!("uid-rs-{name}"), "generation": 1,
                      "resourceVersion": "11", "labels": { "app": "web" } },
        "spec": { "address": address, "weight": 1 },
    })
}

pub fn node(name: &str, address: &str, role: Option<&str>) -> Value {
    let labels: BTreeMap<String, String> = role
        .map(|role| (format!("lvs.operator.io/{role}"), "true".to_owned()))
        .into_iter()
        .chain([("kubernetes.io/hostname".to_owned(), name.to_owned())])
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "uid": format!("uid-node-{name}"), "resourceVersion": "12", "labels": labels },
        "status": { "addresses": [{ "type": "InternalIP", "address": address }] },
    })
}

/// An AddressPool of `addresses` admitting the namespaces `names` (`*`: every namespace).
pub fn pool(name: &str, addresses: &[&str], names: &[&str]) -> Value {
    let admits = if names == ["*"] {
        json!({ "namespaceSelector": {} })
    } else {
        json!({ "namespaces": names })
    };
    let mut spec = json!({ "addresses": addresses });
    spec.as_object_mut()
        .unwrap()
        .extend(admits.as_object().unwrap().clone());
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "AddressPool",
        "metadata": { "name": name, "uid": format!("uid-pool-{name}"), "generation": 1, "resourceVersion": "13" },
        "spec": spec,
    })
}

pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "uid": format!("uid-ns-{name}"), "resourceVersion": "14",
                      "labels": { "kubernetes.io/metadata.name": name } },
    })
}

pub fn nodes() -> Vec<Value> {
    vec![
        node("director-1", "10.100.0.2", Some("director")),
        node("rs-1", "10.100.0.11", Some("real-server")),
        node("rs-2", "10.100.0.12", Some("real-server")),
    ]
}

pub fn cluster() -> BTreeMap<&'static str, Vec<Value>> {
    BTreeMap::from([
        (
            VIRTUAL_SERVERS,
            vec![virtual_server("web", "2024-01-01T00:00:00Z")],
        ),
        (
            REAL_SERVERS,
            vec![
                real_server("web-1", "10.100.0.11"),
                real_server("web-2", "10.100.0.12"),
            ],
        ),
        (NODES, nodes()),
        (NODE_CONFIGS, Vec::new()),
        (POOLS, vec![pool("lab", &["10.100.0.100-10.100.0.199"], &["*"])]),
        (NAMESPACES, vec![namespace("default")]),
    ])
}

/// The node configs the controller writes once both real-server nodes reported the VIP
/// configured, as stored objects with the agents' reports: every service programmed and both
/// real servers healthy on director-1, the VIP configured on rs-1 and rs-2.
pub fn reported_configs(cluster: &BTreeMap<&'static str, Vec<Value>>) -> Vec<Value> {
    let parse = |collection: &str| cluster[collection].clone();
    let virtual_servers: Vec<VirtualServer> = serde_json::from_value(json!(parse(VIRTUAL_SERVERS))).unwrap();
    let real_servers: Vec<RealServer> = serde_json::from_value(json!(parse(REAL_SERVERS))).unwrap();
    let nodes: Vec<k8s_openapi::api::core::v1::Node> = serde_json::from_value(json!(parse(NODES))).unwrap();
    let vip: IpAddr = VIP.parse().unwrap();
    let configured = BTreeSet::from([("rs-1".to_owned(), vip), ("rs-2".to_owned(), vip)]);
    let pools: Vec<lvs_api::AddressPool> =
        vec![serde_json::from_value(pool("lab", &["10.100.0.100-10.100.0.199"], &["*"])).unwrap()];
    let output = lvs_core::build(lvs_core::BuildInput {
        pools: (&pools).into(),
        namespaces: lvs_core::Objects::Slice(&[]),
        settings: &lvs_core::ClusterSettings::default(),
        virtual_servers: (&virtual_servers).into(),
        real_servers: (&real_servers).into(),
        nodes: (&nodes).into(),
        configured_vips: Some(&configured),
    });
    output
        .node_config_objects()
        .into_iter()
        .map(|config: LvsNodeConfig| {
            let name = config.metadata.name.clone().unwrap();
            let mut object = serde_json::to_value(&config).unwrap();
            object["metadata"]["uid"] = json!(format!("uid-{name}"));
            object["metadata"]["resourceVersion"] = json!("20");
            object["metadata"]["generation"] = json!(1);
            object["status"] = if config.spec.director_services.is_empty() {
                json!({ "observedGeneration": 1, "realServerVips": [{ "address": VIP, "configured": true }] })
            } else {
                json!({
                    "observedGeneration": 1,
                    "services": [{
                        "virtualServer": "default/web", "generation": 1, "programmed": true, "role": "Active",
                        "destinations": [
                            { "realServer": "default/web-1", "healthy": true, "weight": 1 },
                            { "realServer": "default/web-2", "healthy": true, "weight": 1 },
                        ],
                    }],
                })
            };
            object
        })
        .collect()
}
