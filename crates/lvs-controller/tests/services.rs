//! LoadBalancer Services against the mock API server: a Service of our class with
//! EndpointSlices and Nodes gets a VIP in `status.loadBalancer.ingress` (ipMode VIP) and node
//! configs for its director and real-server nodes, in one pass; a Service of another class is
//! never touched; with `externalTrafficPolicy: Local` only nodes with endpoints serve, and the
//! set follows the endpoints within one pass; a Service that stops being ours has its VIP
//! released and every node config cleaned. What is derived is visible: the generated
//! VirtualServers and RealServers are created owned by the Service and labelled, get statuses,
//! follow its ports and go with it, and a pass with nothing changed writes nothing; an object
//! someone else made under a generated name is never touched, and the Service says so. The
//! Service's `lvs.operator.io/VIPReady` condition and Events follow its director. Every request
//! made is in `access::API_REQUESTS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use support::cluster::pool;
use support::services::{
    OTHER_STATUS, SHOP_REAL_SERVERS, SHOP_VIRTUAL_SERVERS, WEB_STATUS, cluster, condition, configs, created,
    deleted, echo_configs, echo_created, echo_service, events, events_about, ingress, ingress_untouched,
    not_events, ready_node, removed, report_director, service, slice,
};
use support::{
    ApiServer, ENDPOINT_SLICES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, Recorded, Running, SERVICES,
    VIRTUAL_SERVERS, event, start_controller,
};

const QUIET: Duration = Duration::from_millis(600);
const CLASS: &str = "lvs.operator.io/ipvs";

#[tokio::test]
async fn a_service_of_our_class_gets_a_vip_and_node_configs_and_another_class_is_untouched() {
    let (client, mut server) = support::start(
        cluster(
            vec![
                service("web", CLASS, "Cluster"),
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

#[tokio::test]
async fn local_policy_serves_from_nodes_with_endpoints_and_follows_them_within_one_pass() {
    let web = service("web", CLASS, "Local");
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
    let web = service("web", CLASS, "Cluster");
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
    let mut web = service("web", CLASS, "Cluster");
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
    let mut web = service("web", CLASS, "Cluster");
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
    let (state, reason, message) = condition(&writes, WEB_STATUS).expect("the condition is written");
    assert_eq!((state.as_str(), reason.as_str()), ("False", "Refused"));
    assert!(message.contains("10.100.1.5"), "{message}");
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

/// The controller serving `web` (Cluster policy, endpoint on n1) until quiet, then everything it
/// wrote sent back as an API server would (node configs, generated objects, the Service's
/// status) and its next writes awaited: (controller, server, first writes, writes after the
/// echo, VIP, `web` as stored).
async fn serving_web(
    extra: impl FnOnce(&mut BTreeMap<&'static str, Vec<Value>>),
) -> (Running, ApiServer, Vec<Recorded>, Vec<Recorded>, String, Value) {
    let mut web = service("web", CLASS, "Cluster");
    let mut objects = cluster(vec![web.clone()], vec![slice("web", &["n1"])]);
    extra(&mut objects);
    let (client, mut server) = support::start(objects, false);
    let controller = start_controller(client);
    let first = server.writes_until_quiet(QUIET).await;
    let vip = ingress(&first, WEB_STATUS).expect("a VIP")[0].0.clone();
    echo_configs(&server, &first);
    echo_created(&server, &first);
    echo_service(&server, &mut web, &first);
    let echoed = server.writes_until_quiet(QUIET).await;
    (controller, server, first, echoed, vip, web)
}

#[tokio::test]
async fn generated_objects_are_created_owned_and_labelled_get_statuses_and_an_unchanged_pass_writes_nothing()
{
    let (_controller, mut server, first, echoed, vip, _) = serving_web(|_| {}).await;
    let virtual_servers = created(&first, SHOP_VIRTUAL_SERVERS);
    assert_eq!(
        virtual_servers.keys().collect::<Vec<_>>(),
        ["svc-web-dns", "svc-web-http"],
        "one per port"
    );
    let http = &virtual_servers["svc-web-http"];
    assert_eq!(
        http["metadata"]["ownerReferences"],
        json!([{ "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-svc-web", "controller": true }])
    );
    assert_eq!(
        http["metadata"]["labels"],
        json!({ "lvs.operator.io/service": "web", "lvs.operator.io/service-port": "http" })
    );
    for synthetic in ["uid", "resourceVersion", "generation", "creationTimestamp"] {
        assert!(
            http["metadata"].get(synthetic).is_none(),
            "the derived {synthetic} is not sent: {}",
            http["metadata"]
        );
    }
    assert_eq!(
        (&http["spec"]["address"], &http["spec"]["port"]),
        (&json!(vip), &json!(80))
    );
    let real_servers = created(&first, SHOP_REAL_SERVERS);
    assert_eq!(
        real_servers.keys().collect::<Vec<_>>(),
        [
            "svc-web-dns-n1",
            "svc-web-dns-n2",
            "svc-web-http-n1",
            "svc-web-http-n2"
        ],
        "one per node and port"
    );
    assert_eq!(real_servers["svc-web-http-n2"]["spec"]["address"], "10.100.0.12");
    assert_eq!(
        real_servers["svc-web-http-n2"]["metadata"]["ownerReferences"][0]["uid"],
        "uid-svc-web"
    );
    let (state, reason, _) =
        condition(&first, WEB_STATUS).expect("the condition is written with the ingress");
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("False", "Pending"),
        "no director reported yet"
    );

    let status = |path: String| {
        echoed
            .iter()
            .find(|write| write.is(&Method::PATCH, &path))
            .unwrap_or_else(|| panic!("no status written to {path}: {:?}", not_events(&echoed)))
            .body["status"]
            .clone()
    };
    let http_status = status(format!("{SHOP_VIRTUAL_SERVERS}/svc-web-http/status"));
    assert_eq!(http_status["vip"], json!(vip));
    assert_eq!(http_status["observedGeneration"], 1);
    let accepted = http_status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|condition| condition["type"] == "Accepted")
        .unwrap();
    assert_eq!(accepted["status"], "True");
    let real_status = status(format!("{SHOP_REAL_SERVERS}/svc-web-http-n1/status"));
    assert_eq!(real_status["node"], "n1");
    let besides_statuses: Vec<String> = not_events(&echoed)
        .into_iter()
        .filter(|write| !write.ends_with("/status"))
        .collect();
    assert_eq!(
        besides_statuses,
        Vec::<String>::new(),
        "the stored copies are the derived objects: nothing created, patched or deleted again"
    );

    // A pass with nothing changed (a Node resent as it was) writes nothing at all.
    server.send(
        NODES,
        vec![event("MODIFIED", &ready_node("n2", "10.100.0.12", None))],
    );
    let writes = server.writes_until_quiet(QUIET).await;
    assert_eq!(not_events(&writes), Vec::<String>::new());
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_removed_port_deletes_its_generated_objects_and_a_changed_one_is_patched() {
    let (_controller, mut server, _, _, _, mut web) = serving_web(|_| {}).await;
    web["spec"]["ports"] = json!([{ "name": "http", "port": 80, "protocol": "TCP" }]);
    web["metadata"]["annotations"] = json!({ "lvs.operator.io/scheduler": "rr" });
    server.send(SERVICES, vec![event("MODIFIED", &web)]);
    let writes = server.writes_until_quiet(QUIET).await;
    let patch = writes
        .iter()
        .find(|write| write.is(&Method::PATCH, &format!("{SHOP_VIRTUAL_SERVERS}/svc-web-http")))
        .expect("the new scheduler is written");
    assert_eq!(
        patch.body["spec"],
        json!({ "scheduler": "rr" }),
        "only what changed"
    );
    assert!(
        patch.body["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|version| version.starts_with('w')),
        "the version seen is the precondition: {}",
        patch.body["metadata"]
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(removed(&writes, SHOP_VIRTUAL_SERVERS), ["svc-web-dns"]);
    assert_eq!(
        removed(&writes, SHOP_REAL_SERVERS),
        ["svc-web-dns-n1", "svc-web-dns-n2"]
    );
    let deletion = writes
        .iter()
        .find(|write| write.method == Method::DELETE && write.path.ends_with("/svc-web-dns"))
        .unwrap();
    assert_eq!(
        deletion.body["preconditions"]["uid"], "uid-generated-svc-web-dns",
        "only the object seen is deleted"
    );
    assert!(created(&writes, SHOP_VIRTUAL_SERVERS).is_empty());
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_service_that_stops_being_ours_loses_its_generated_objects_ingress_and_condition() {
    let (_controller, mut server, _, _, _, mut web) = serving_web(|_| {}).await;
    assert!(web["status"]["conditions"].is_array(), "{}", web["status"]);
    web["spec"].as_object_mut().unwrap().remove("loadBalancerClass");
    server.send(SERVICES, vec![event("MODIFIED", &web)]);
    let writes = server.writes_until_quiet(QUIET).await;
    assert_eq!(
        removed(&writes, SHOP_VIRTUAL_SERVERS),
        ["svc-web-dns", "svc-web-http"]
    );
    assert_eq!(
        removed(&writes, SHOP_REAL_SERVERS),
        [
            "svc-web-dns-n1",
            "svc-web-dns-n2",
            "svc-web-http-n1",
            "svc-web-http-n2"
        ]
    );
    let status = writes
        .iter()
        .find(|write| write.is(&Method::PATCH, WEB_STATUS))
        .expect("the status is cleared");
    assert_eq!(
        status.body,
        json!({ "status": {
            "loadBalancer": { "ingress": [] },
            "conditions": [{ "type": "lvs.operator.io/VIPReady", "$patch": "delete" }],
        } })
    );
    assert_eq!(
        status.content_type, "application/strategic-merge-patch+json",
        "others' conditions stay"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn an_object_someone_else_made_under_a_generated_name_is_never_touched_and_the_service_says_so() {
    let squatter = json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "VirtualServer",
        "metadata": { "name": "svc-web-http", "namespace": "shop", "uid": "uid-squatter", "generation": 1,
                      "resourceVersion": "40" },
        "spec": { "address": "10.100.0.150", "port": 8080, "protocol": "TCP",
                  "realServers": { "selector": { "matchLabels": { "app": "mine" } } } },
    });
    let labelled = json!({
        "apiVersion": "lvs.operator.io/v1alpha1", "kind": "RealServer",
        "metadata": { "name": "stray", "namespace": "shop", "uid": "uid-stray", "generation": 1,
                      "resourceVersion": "41", "labels": { "lvs.operator.io/service": "web" } },
        "spec": { "address": "10.100.0.99", "weight": 1 },
    });
    let (_controller, mut server, first, echoed, _, _) = serving_web(|objects| {
        objects.insert(VIRTUAL_SERVERS, vec![squatter]);
        objects.insert(REAL_SERVERS, vec![labelled]);
    })
    .await;
    server.send(
        NODES,
        vec![event("MODIFIED", &ready_node("n2", "10.100.0.12", None))],
    );
    let later = server.writes_until_quiet(QUIET).await;
    let writes: Vec<Recorded> = first.iter().chain(&echoed).chain(&later).cloned().collect();
    let touched: Vec<String> = not_events(&writes)
        .into_iter()
        .filter(|write| {
            write.contains("/svc-web-http") && !write.contains("/svc-web-http-") || write.contains("/stray")
        })
        .collect();
    assert_eq!(touched, Vec::<String>::new(), "neither written nor deleted");
    assert!(
        !created(&writes, SHOP_VIRTUAL_SERVERS).contains_key("svc-web-http"),
        "not created over"
    );
    assert!(created(&writes, SHOP_VIRTUAL_SERVERS).contains_key("svc-web-dns"));
    let taken: Vec<(String, String)> = events_about(&writes, "Service")
        .into_iter()
        .filter(|(reason, _)| reason == "GeneratedNameTaken")
        .collect();
    assert_eq!(taken.len(), 1, "said once: {taken:?}");
    assert!(
        taken[0].1.contains("VirtualServer shop/svc-web-http"),
        "{}",
        taken[0].1
    );
    assert_eq!(
        configs(&first)["d1"],
        ["director 53 \"UDP\"", "director 80 \"TCP\""],
        "the Service is served all the same"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn the_service_condition_and_events_follow_its_director() {
    let (_controller, mut server, first, echoed, vip, mut web) = serving_web(|_| {}).await;
    report_director(&server, &first, "Active");
    let writes = server.writes_until_quiet(QUIET).await;
    let (state, reason, message) = condition(&writes, WEB_STATUS).expect("the condition turns");
    assert_eq!((state.as_str(), reason.as_str()), ("True", "DirectorActive"));
    assert_eq!(message, format!("director d1 holds VIP {vip}"));
    assert!(
        ingress_untouched(&writes, WEB_STATUS),
        "only the condition is written"
    );
    let about = events_about(&writes, "Service");
    assert!(about.iter().any(|(reason, _)| reason == "VIPReady"), "{about:?}");
    let all: Vec<Recorded> = first.iter().chain(&echoed).chain(&writes).cloned().collect();
    echo_service(&server, &mut web, &all);
    let _ = server.writes_until_quiet(QUIET).await;

    report_director(&server, &first, "Standby");
    let writes = server.writes_until_quiet(QUIET).await;
    let (state, reason, _) = condition(&writes, WEB_STATUS).expect("the condition turns back");
    assert_eq!((state.as_str(), reason.as_str()), ("False", "NoDirector"));
    let about = events_about(&writes, "Service");
    assert!(
        about
            .iter()
            .any(|(reason, note)| reason == "NoActiveDirector" && note.contains("was d1")),
        "{about:?}"
    );

    report_director(&server, &first, "Active");
    let writes = server.writes_until_quiet(QUIET).await;
    let about = events_about(&writes, "Service");
    assert!(
        about.iter().any(|(reason, _)| reason == "DirectorChanged"),
        "a director takes over: {about:?}"
    );
    assert!(about.iter().any(|(reason, _)| reason == "VIPReady"), "{about:?}");
    server.assert_requests_listed();
}

/// A dual-stack Service (`ipFamilies: [IPv4, IPv6]`) on dual-stack nodes gets one VIP per family
/// in its ingress, both with ipMode VIP; each port runs once per VIP on the director, and each
/// real-server node accepts both VIPs.
#[tokio::test]
async fn a_dual_stack_service_gets_a_vip_per_family_served_by_both_families_of_nodes() {
    let mut objects = cluster(
        vec![service("web", CLASS, "Cluster")],
        vec![slice("web", &["n1"])],
    );
    objects.get_mut(SERVICES).unwrap()[0]["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    objects.get_mut(SERVICES).unwrap()[0]["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    for (node, address) in objects
        .get_mut(NODES)
        .unwrap()
        .iter_mut()
        .zip(["fd00::2", "fd00::11", "fd00::12"])
    {
        node["status"]["addresses"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "InternalIP", "address": address }));
    }
    objects.insert(
        POOLS,
        vec![pool(
            "lab",
            &["10.100.0.100-10.100.0.199", "fd00::100-fd00::1ff"],
            &["shop"],
        )],
    );
    let (client, mut server) = support::start(objects, false);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    let ingress = ingress(&writes, WEB_STATUS).expect("the Service's status is written");
    assert_eq!(ingress.len(), 2, "one VIP per family: {ingress:?}");
    let (v4, v6) = (&ingress[0], &ingress[1]);
    assert!(v4.0.starts_with("10.100.0.1") && v4.1 == "VIP", "{v4:?}");
    assert!(v6.0.starts_with("fd00::1") && v6.1 == "VIP", "{v6:?}");
    let configs = configs(&writes);
    assert_eq!(
        configs["d1"],
        [
            "director 53 \"UDP\"",
            "director 53 \"UDP\"",
            "director 80 \"TCP\"",
            "director 80 \"TCP\""
        ],
        "each port once per VIP"
    );
    for node in ["n1", "n2"] {
        assert_eq!(
            configs[node],
            [format!("rs {}", v4.0), format!("rs {}", v6.0)],
            "{node} accepts both VIPs"
        );
    }
}
