//! The Services scenarios' cluster and readers: Service `web` (ports http 80/TCP and dns 53/UDP)
//! in namespace `shop`, its EndpointSlice, director d1 and nodes n1, n2 without role labels; what
//! the controller wrote (node configs, ingress, the `VIPReady` condition, generated objects,
//! Events), and the echoes an API server would send back through the watches.

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Value, json};

use super::cluster::{namespace, node, pool};
use super::{
    ApiServer, ENDPOINT_SLICES, NAMESPACES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, Recorded, SERVICES,
    VIRTUAL_SERVERS, event, merge,
};

pub const WEB_STATUS: &str = "/api/v1/namespaces/shop/services/web/status";
pub const OTHER_STATUS: &str = "/api/v1/namespaces/shop/services/other/status";
/// Where the generated objects of namespace `shop` live.
pub const SHOP_VIRTUAL_SERVERS: &str = "/apis/lvs.operator.io/v1alpha1/namespaces/shop/virtualservers";
pub const SHOP_REAL_SERVERS: &str = "/apis/lvs.operator.io/v1alpha1/namespaces/shop/realservers";

pub fn ready_node(name: &str, address: &str, role: Option<&str>) -> Value {
    let mut node = node(name, address, role);
    node["status"]["conditions"] = json!([{ "type": "Ready", "status": "True" }]);
    node
}

pub fn service(name: &str, class: &str, policy: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": "shop", "uid": format!("uid-svc-{name}"),
                      "resourceVersion": "30", "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": {
            "type": "LoadBalancer", "loadBalancerClass": class, "externalTrafficPolicy": policy,
            "healthCheckNodePort": 32000, "ipFamilies": ["IPv4"],
            "ports": [
                { "name": "http", "port": 80, "protocol": "TCP" },
                { "name": "dns", "port": 53, "protocol": "UDP" },
            ],
        },
    })
}

pub fn slice(service: &str, nodes: &[&str]) -> Value {
    let endpoints: Vec<Value> = nodes
        .iter()
        .map(|node| json!({ "addresses": ["10.244.0.5"], "nodeName": node, "conditions": { "ready": true } }))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": format!("{service}-abcde"), "namespace": "shop", "uid": format!("uid-slice-{service}"),
                      "resourceVersion": "31", "labels": { "kubernetes.io/service-name": service } },
        "addressType": "IPv4",
        "endpoints": endpoints,
    })
}

/// Director d1; n1 and n2 without any role label (Services make them real servers).
pub fn cluster(services: Vec<Value>, slices: Vec<Value>) -> BTreeMap<&'static str, Vec<Value>> {
    BTreeMap::from([
        (VIRTUAL_SERVERS, Vec::new()),
        (REAL_SERVERS, Vec::new()),
        (
            NODES,
            vec![
                ready_node("d1", "10.100.0.2", Some("director")),
                ready_node("n1", "10.100.0.11", None),
                ready_node("n2", "10.100.0.12", None),
            ],
        ),
        (NODE_CONFIGS, Vec::new()),
        (
            POOLS,
            vec![pool("lab", &["10.100.0.100-10.100.0.199"], &["shop"])],
        ),
        (NAMESPACES, vec![namespace("shop")]),
        (SERVICES, services),
        (ENDPOINT_SLICES, slices),
    ])
}

/// The node configs applied, by node: the VIPs a real-server node accepts, and the
/// `address:port/protocol` services a director runs.
pub fn configs(writes: &[Recorded]) -> BTreeMap<String, Vec<String>> {
    writes
        .iter()
        .filter(|write| write.method == Method::PATCH && write.path.starts_with(NODE_CONFIGS))
        .map(|write| {
            let spec = &write.body["spec"];
            let mut roles: Vec<String> = spec["realServerVips"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|vip| format!("rs {}", vip["address"].as_str().unwrap()))
                .collect();
            roles.extend(
                spec["directorServices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|service| format!("director {} {}", service["port"], service["protocol"])),
            );
            roles.sort();
            (spec["nodeName"].as_str().unwrap().to_owned(), roles)
        })
        .collect()
}

pub fn deleted(writes: &[Recorded]) -> Vec<String> {
    writes
        .iter()
        .filter(|write| write.method == Method::DELETE && write.path.starts_with(NODE_CONFIGS))
        .map(|write| {
            write
                .path
                .trim_start_matches(&format!("{NODE_CONFIGS}/"))
                .to_owned()
        })
        .collect()
}

/// The ingress written to `path`: (ip, ipMode) pairs.
pub fn ingress(writes: &[Recorded], path: &str) -> Option<Vec<(String, String)>> {
    writes
        .iter()
        .rev()
        .find(|write| {
            write.is(&Method::PATCH, path) && write.body["status"]["loadBalancer"]["ingress"].is_array()
        })
        .map(|write| {
            write.body["status"]["loadBalancer"]["ingress"]
                .as_array()
                .unwrap()
                .iter()
                .map(|entry| {
                    (
                        entry["ip"].as_str().unwrap().to_owned(),
                        entry["ipMode"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
}

/// Feeds the node configs written back through their watch, as an API server would.
pub fn echo_configs(server: &super::ApiServer, writes: &[Recorded]) {
    let events: Vec<Value> = writes
        .iter()
        .filter(|write| write.method == Method::PATCH && write.path.starts_with(NODE_CONFIGS))
        .map(|write| {
            let mut object = write.body.clone();
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            object["metadata"]["uid"] = json!(format!("uid-config-{name}"));
            event("ADDED", &object)
        })
        .collect();
    server.send(NODE_CONFIGS, events);
}

pub fn events(writes: &[Recorded]) -> Vec<String> {
    writes
        .iter()
        .filter(|write| write.method == Method::POST && write.path.ends_with("/events"))
        .map(|write| {
            format!(
                "{} {}",
                write.body["reason"].as_str().unwrap_or_default(),
                write.body["note"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Whether no write to `path` carries an ingress.
pub fn ingress_untouched(writes: &[Recorded], path: &str) -> bool {
    writes
        .iter()
        .all(|write| write.path != path || write.body["status"]["loadBalancer"].is_null())
}

/// The `lvs.operator.io/VIPReady` condition last written to `path`: (status, reason, message).
pub fn condition(writes: &[Recorded], path: &str) -> Option<(String, String, String)> {
    writes
        .iter()
        .rev()
        .filter(|write| write.is(&Method::PATCH, path))
        .flat_map(|write| {
            write.body["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|condition| condition["type"] == "lvs.operator.io/VIPReady")
        .map(|condition| {
            let text = |field: &str| condition[field].as_str().unwrap_or_default().to_owned();
            (text("status"), text("reason"), text("message"))
        })
}

/// The objects created in `collection` (a namespaced path), by name.
pub fn created(writes: &[Recorded], collection: &str) -> BTreeMap<String, Value> {
    writes
        .iter()
        .filter(|write| write.is(&Method::POST, collection))
        .map(|write| {
            (
                write.body["metadata"]["name"].as_str().unwrap().to_owned(),
                write.body.clone(),
            )
        })
        .collect()
}

/// The names of the objects deleted in `collection` (a namespaced path), sorted.
pub fn removed(writes: &[Recorded], collection: &str) -> Vec<String> {
    let mut names: Vec<String> = writes
        .iter()
        .filter(|write| write.method == Method::DELETE)
        .filter_map(|write| write.path.strip_prefix(&format!("{collection}/")))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Every write that is not an Event.
pub fn not_events(writes: &[Recorded]) -> Vec<String> {
    writes
        .iter()
        .filter(|write| !write.path.ends_with("/events"))
        .map(|write| format!("{} {}", write.method, write.path))
        .collect()
}

/// (reason, note) of the Events about `kind` objects.
pub fn events_about(writes: &[Recorded], kind: &str) -> Vec<(String, String)> {
    writes
        .iter()
        .filter(|write| write.method == Method::POST && write.path.ends_with("/events"))
        .filter(|write| write.body["regarding"]["kind"] == kind)
        .map(|write| {
            let text = |field: &str| write.body[field].as_str().unwrap_or_default().to_owned();
            (text("reason"), text("note"))
        })
        .collect()
}

/// The generated objects created in `shop`, as the stored objects a watch sends back (a uid,
/// status as the mock last holds none).
pub fn echo_created(server: &ApiServer, writes: &[Recorded]) -> (Vec<Value>, Vec<Value>) {
    let stored = |collection: &str| -> Vec<Value> {
        created(writes, collection)
            .into_values()
            .map(|mut object| {
                let name = object["metadata"]["name"].as_str().unwrap().to_owned();
                object["metadata"]["uid"] = json!(format!("uid-generated-{name}"));
                object["metadata"]["generation"] = json!(1);
                object
            })
            .collect()
    };
    let (virtual_servers, real_servers) = (stored(SHOP_VIRTUAL_SERVERS), stored(SHOP_REAL_SERVERS));
    server.send(
        VIRTUAL_SERVERS,
        virtual_servers
            .iter()
            .map(|object| event("ADDED", object))
            .collect(),
    );
    server.send(
        REAL_SERVERS,
        real_servers.iter().map(|object| event("ADDED", object)).collect(),
    );
    (virtual_servers, real_servers)
}

/// `service` with every status patch to it in `writes` merged in (the condition list merged by
/// type, as a strategic merge patch does), sent back through the Services' watch.
pub fn echo_service(server: &ApiServer, service: &mut Value, writes: &[Recorded]) {
    let name = service["metadata"]["name"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/namespaces/shop/services/{name}/status");
    for write in writes.iter().filter(|write| write.is(&Method::PATCH, &path)) {
        let mut patch = write.body.clone();
        let changes = patch["status"]
            .as_object_mut()
            .and_then(|status| status.remove("conditions"));
        merge(service, &patch);
        for change in changes
            .and_then(|changes| changes.as_array().cloned())
            .unwrap_or_default()
        {
            let conditions = service["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut kept: Vec<Value> = conditions
                .into_iter()
                .filter(|condition| condition["type"] != change["type"])
                .collect();
            if change.get("$patch").is_none() {
                kept.push(change);
            }
            service["status"]["conditions"] = json!(kept);
        }
    }
    server.send(SERVICES, vec![event("MODIFIED", service)]);
}

/// Director d1's config as last written in `writes`, sent back with its agent's report: every
/// service programmed, in failover `role` (`Active` or `Standby`).
pub fn report_director(server: &ApiServer, writes: &[Recorded], role: &str) {
    let path = format!("{NODE_CONFIGS}/d1");
    let written = writes
        .iter()
        .rev()
        .find(|write| write.is(&Method::PATCH, &path))
        .expect("d1's config is written");
    let mut config = written.body.clone();
    let services: Vec<Value> = config["spec"]["directorServices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| {
            json!({ "virtualServer": service["virtualServer"], "generation": service["generation"],
                    "programmed": true, "role": role, "destinations": [] })
        })
        .collect();
    config["metadata"]["uid"] = json!("uid-config-d1");
    config["status"] = json!({ "observedGeneration": 1, "services": services });
    server.send(NODE_CONFIGS, vec![event("MODIFIED", &config)]);
}
