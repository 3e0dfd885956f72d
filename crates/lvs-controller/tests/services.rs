//! LoadBalancer Services against the mock API server: a Service of our class with
//! EndpointSlices and Nodes gets a VIP in `status.loadBalancer.ingress` (ipMode VIP) and node
//! configs for its director and real-server nodes, in one pass; a Service of another class is
//! never touched; with `externalTrafficPolicy: Local` only nodes with endpoints serve, and the
//! set follows the endpoints within one pass; a Service that stops being ours has its VIP
//! released and every node config cleaned. Every request made is in `access::API_REQUESTS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use support::cluster::{namespace, node, pool};
use support::{
    ENDPOINT_SLICES, NAMESPACES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, Recorded, SERVICES,
    VIRTUAL_SERVERS, event, start_controller,
};

const QUIET: Duration = Duration::from_millis(600);
const WEB_STATUS: &str = "/api/v1/namespaces/shop/services/web/status";
const OTHER_STATUS: &str = "/api/v1/namespaces/shop/services/other/status";

fn ready_node(name: &str, address: &str, role: Option<&str>) -> Value {
    let mut node = node(name, address, role);
    node["status"]["conditions"] = json!([{ "type": "Ready", "status": "True" }]);
    node
}

fn service(name: &str, class: &str, policy: &str) -> Value {
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

fn slice(service: &str, nodes: &[&str]) -> Value {
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
fn cluster(services: Vec<Value>, slices: Vec<Value>) -> BTreeMap<&'static str, Vec<Value>> {
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
fn configs(writes: &[Recorded]) -> BTreeMap<String, Vec<String>> {
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

fn deleted(writes: &[Recorded]) -> Vec<String> {
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
fn ingress(writes: &[Recorded], path: &str) -> Option<Vec<(String, String)>> {
    writes
        .iter()
        .rev()
        .find(|write| write.is(&Method::PATCH, path))
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
fn echo_configs(server: &support::ApiServer, writes: &[Recorded]) {
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

fn events(writes: &[Recorded]) -> Vec<String> {
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

#[tokio::test]
async fn a_service_of_our_class_gets_a_vip_and_node_configs_and_another_class_is_untouched() {
    let (client, mut server) = support::start(
        cluster(
            vec![
                service("web", "lvs.operator.io/ipvs", "Cluster"),
                service("other", "metallb.io/metallb", "Cluster"),
            ],
            vec![slice("web", &["n1"]), slice("other", &["n1"])],
        ),
        false,
    );
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    let ingress = ingress(&writes, WEB_STATUS).expect("the Service's status is written");
    assert_eq!(ingress.len(), 1);
    let (vip, mode) = &ingress[0];
    assert_eq!(mode, "VIP");
    assert!(vip.starts_with("10.100.0.1"), "{vip} comes from the pool");
    assert_eq!(
        configs(&writes),
        BTreeMap::from([
            (
                "d1".to_owned(),
                vec!["director 53 \"UDP\"".to_owned(), "director 80 \"TCP\"".to_owned()]
            ),
            ("n1".to_owned(), vec![format!("rs {vip}")]),
            ("n2".to_owned(), vec![format!("rs {vip}")]),
        ]),
        "both ports in the first pass; every ready node serves (Cluster)"
    );
    assert!(
        writes.iter().all(|write| !write.path.contains("/services/other")),
        "a Service of another class is never touched"
    );
    assert!(ingress_untouched(&writes, OTHER_STATUS));
    assert!(
        events(&writes)
            .iter()
            .any(|event| event.starts_with("VIPAllocated")),
        "{:?}",
        events(&writes)
    );
    server.assert_requests_listed();
}

fn ingress_untouched(writes: &[Recorded], path: &str) -> bool {
    writes.iter().all(|write| write.path != path)
}

#[tokio::test]
async fn local_policy_serves_from_nodes_with_endpoints_and_follows_them_within_one_pass() {
    let web = service("web", "lvs.operator.io/ipvs", "Local");
    let (client, mut server) = support::start(cluster(vec![web], vec![slice("web", &["n1"])]), false);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    let vip = ingress(&writes, WEB_STATUS).unwrap()[0].0.clone();
    let first = configs(&writes);
    assert_eq!(first["n1"], [format!("rs {vip}")]);
    assert!(!first.contains_key("n2"), "n2 has no endpoint: {first:?}");
    let director = writes
        .iter()
        .find(|write| write.path == format!("{NODE_CONFIGS}/d1"))
        .unwrap();
    let check = &director.body["spec"]["directorServices"][0]["healthCheck"];
    assert_eq!(
        check["port"], 32000,
        "checked through healthCheckNodePort: {check}"
    );
    echo_configs(&server, &writes);
    let _ = server.writes_until_quiet(QUIET).await;

    server.send(ENDPOINT_SLICES, vec![event("MODIFIED", &slice("web", &["n2"]))]);
    let writes = server.writes_until_quiet(QUIET).await;
    let moved = configs(&writes);
    assert_eq!(moved.get("n2"), Some(&vec![format!("rs {vip}")]), "{moved:?}");
    assert_eq!(deleted(&writes), ["n1"], "n1 lost its only endpoint");
    assert!(
        ingress_untouched(&writes, WEB_STATUS),
        "the VIP stays: {:?}",
        ingress(&writes, WEB_STATUS)
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_service_that_stops_being_ours_releases_its_vip_and_every_node_config() {
    let web = service("web", "lvs.operator.io/ipvs", "Cluster");
    let (client, mut server) = support::start(cluster(vec![web.clone()], vec![slice("web", &["n1"])]), false);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    let vip = ingress(&writes, WEB_STATUS).unwrap()[0].0.clone();
    assert_eq!(configs(&writes).len(), 3);
    echo_configs(&server, &writes);
    let _ = server.writes_until_quiet(QUIET).await;

    let mut plain = web;
    plain["spec"]["type"] = json!("ClusterIP");
    plain["spec"].as_object_mut().unwrap().remove("loadBalancerClass");
    plain["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": vip, "ipMode": "VIP" }] } });
    server.send(SERVICES, vec![event("MODIFIED", &plain)]);
    let writes = server.writes_until_quiet(QUIET).await;
    assert_eq!(
        ingress(&writes, WEB_STATUS),
        Some(Vec::new()),
        "the ingress is cleared"
    );
    let mut gone = deleted(&writes);
    gone.sort();
    assert_eq!(gone, ["d1", "n1", "n2"]);
    assert!(
        events(&writes)
            .iter()
            .any(|event| event.starts_with("VIPReleased"))
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_bad_annotation_is_a_warning_naming_it_and_the_last_good_scheduler_stays() {
    let mut web = service("web", "lvs.operator.io/ipvs", "Cluster");
    web["metadata"]["annotations"] = json!({ "lvs.operator.io/scheduler": "mh" });
    let (client, mut server) = support::start(cluster(vec![web.clone()], vec![slice("web", &["n1"])]), false);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    let director = writes
        .iter()
        .find(|write| write.path == format!("{NODE_CONFIGS}/d1"))
        .unwrap();
    assert_eq!(director.body["spec"]["directorServices"][0]["scheduler"], "mh");
    let vip = ingress(&writes, WEB_STATUS).unwrap()[0].0.clone();
    echo_configs(&server, &writes);
    let _ = server.writes_until_quiet(QUIET).await;

    web["metadata"]["annotations"] = json!({ "lvs.operator.io/scheduler": "fastest" });
    web["status"] = json!({ "loadBalancer": { "ingress": [{ "ip": vip, "ipMode": "VIP" }] } });
    server.send(SERVICES, vec![event("MODIFIED", &web)]);
    let writes = server.writes_until_quiet(QUIET).await;
    assert!(
        events(&writes)
            .iter()
            .any(|event| event.starts_with("InvalidServiceSetting") && event.contains("\"fastest\"")),
        "{:?}",
        events(&writes)
    );
    assert!(configs(&writes).is_empty(), "mh stays: no node config changes");
}

#[tokio::test]
async fn a_service_never_gets_a_vip_its_namespaces_pools_do_not_admit() {
    let mut web = service("web", "lvs.operator.io/ipvs", "Cluster");
    web["metadata"]["annotations"] = json!({ "lvs.operator.io/address": "10.100.1.5" });
    let mut objects = cluster(vec![web], vec![slice("web", &["n1"])]);
    objects
        .get_mut(POOLS)
        .unwrap()
        .push(pool("team-b", &["10.100.1.0/28"], &["team-b"]));
    let (client, mut server) = support::start(objects, false);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    assert!(
        ingress_untouched(&writes, WEB_STATUS),
        "no ingress: {:?}",
        ingress(&writes, WEB_STATUS)
    );
    assert!(
        configs(&writes).is_empty(),
        "nothing served: {:?}",
        configs(&writes)
    );
    assert!(
        events(&writes)
            .iter()
            .any(|event| event.starts_with("VIPRefused") && event.contains("10.100.1.5")),
        "{:?}",
        events(&writes)
    );
}
