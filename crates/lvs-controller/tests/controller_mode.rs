//! The controller against a mock API server (kube's client over a `tower-test` service), every
//! request asserted by method, path, query and body: a new VirtualServer gets node configs for
//! its director and both real-server nodes; the agents' reports make it Ready with `2/2` in the
//! READY column; a conflicting VirtualServer is rejected with an Event on it alone; a node that
//! loses its role loses its config (and stale shards go); an unchanged status is not written
//! again; an object that does not deserialize is reported and does not stall the others; the
//! start-up CRD check says how to install missing CRDs. Every request made is in
//! `access::API_REQUESTS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use kube::CustomResourceExt;
use lvs_api::{RealServer, VirtualServer};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use support::cluster::{VIP, cluster, namespace, node, pool, reported_configs, virtual_server};
use support::{
    NAMESPACES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, Recorded, VIRTUAL_SERVERS, event, start_controller,
};

const WEB_STATUS: &str = "/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web/status";
const QUIET: Duration = Duration::from_millis(600);

fn is_apply(write: &Recorded) -> bool {
    write.method == Method::PATCH && write.path.starts_with(NODE_CONFIGS) && !write.path.ends_with("/status")
}

fn applied(writes: &[Recorded]) -> BTreeMap<String, Recorded> {
    writes
        .iter()
        .filter(|write| is_apply(write))
        .map(|write| {
            (
                write
                    .path
                    .trim_start_matches(&format!("{NODE_CONFIGS}/"))
                    .to_owned(),
                write.clone(),
            )
        })
        .collect()
}

fn status_of<'a>(writes: &'a [Recorded], path: &str) -> &'a Value {
    let write = writes
        .iter()
        .rev()
        .find(|write| write.is(&Method::PATCH, path))
        .unwrap_or_else(|| panic!("no status written to {path}: {writes:#?}"));
    assert_server_side_apply(write);
    &write.body["status"]
}

fn assert_server_side_apply(write: &Recorded) {
    assert!(
        write.query.contains("fieldManager=lvs-controller"),
        "{}",
        write.query
    );
    assert!(write.query.contains("force=true"), "{}", write.query);
    assert_eq!(write.content_type, "application/apply-patch+yaml");
    assert_eq!(write.body["apiVersion"], "lvs.operator.io/v1alpha1");
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no conditions in {status}"))
        .iter()
        .find(|condition| condition["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn events(writes: &[Recorded]) -> Vec<&Value> {
    writes
        .iter()
        .filter(|write| write.method == Method::POST && write.path.ends_with("/events"))
        .map(|write| {
            assert_eq!(write.path, "/apis/events.k8s.io/v1/namespaces/default/events");
            &write.body
        })
        .collect()
}

/// The value a printer column of the VirtualServer CRD shows for `object`.
fn column(name: &str, object: &Value) -> Value {
    let crd = VirtualServer::crd();
    let path = crd.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .find(|column| column.name == name)
        .unwrap()
        .json_path
        .clone();
    path.trim_start_matches('.')
        .split('.')
        .fold(object.clone(), |value, key| value[key].clone())
}

#[tokio::test]
async fn a_new_virtual_server_gets_configs_for_its_director_and_both_real_server_nodes() {
    let (client, mut server) = support::start(cluster(), true);
    let mut controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    controller.ready.wait_for(|ready| *ready).await.unwrap();

    let configs = applied(&writes);
    assert_eq!(
        configs.keys().cloned().collect::<Vec<_>>(),
        ["director-1", "rs-1", "rs-2"],
        "{writes:#?}"
    );
    for (name, write) in &configs {
        assert_server_side_apply(write);
        assert_eq!(write.body["kind"], "LvsNodeConfig");
        assert_eq!(write.body["metadata"]["name"], name.as_str());
        assert_eq!(
            write.body["metadata"]["labels"]["lvs.operator.io/node"],
            name.as_str()
        );
        assert_eq!(write.body["spec"]["nodeName"], name.as_str());
        assert_eq!(write.body["spec"]["shard"], json!({ "index": 0, "count": 1 }));
        assert!(write.body.get("status").is_none(), "the status is the agent's");
    }
    let director = &configs["director-1"].body["spec"]["directorServices"][0];
    assert_eq!(director["virtualServer"], "default/web");
    assert_eq!(director["address"], VIP);
    assert_eq!(director["port"], 80);
    assert_eq!(director["scheduler"], "rr");
    let destinations = director["destinations"].as_array().unwrap();
    assert_eq!(
        destinations
            .iter()
            .map(|destination| (
                destination["realServer"].as_str().unwrap(),
                destination["awaitingNode"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("default/web-1", true), ("default/web-2", true)],
        "no traffic before the real-server nodes report the VIP configured"
    );
    for node in ["rs-1", "rs-2"] {
        let spec = &configs[node].body["spec"];
        assert!(spec.get("directorServices").is_none(), "{spec}");
        let vip = &spec["realServerVips"][0];
        assert_eq!(vip["address"], VIP);
        assert_eq!(vip["device"], "lo");
        assert_eq!(vip["arpMethod"], "Sysctl");
        assert_eq!(vip["virtualServers"], json!(["default/web"]));
        assert!(
            spec["sysctls"]
                .as_array()
                .unwrap()
                .contains(&json!({ "name": "net/ipv4/conf/all/arp_ignore", "value": "1" })),
            "{spec}"
        );
    }

    let status = status_of(&writes, WEB_STATUS);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(condition(status, "Accepted")["status"], "True");
    let programmed = condition(status, "Programmed");
    assert_eq!(programmed["status"], "False");
    assert_eq!(programmed["reason"], "Pending");
    assert!(
        programmed["message"]
            .as_str()
            .unwrap()
            .starts_with("0/1 directors"),
        "{programmed}"
    );
    assert_eq!(status["ready"], "0/2");
    let configured = condition(
        status_of(
            &writes,
            "/apis/lvs.operator.io/v1alpha1/namespaces/default/realservers/web-1/status",
        ),
        "Configured",
    );
    assert_eq!(configured["status"], "False");
    assert_eq!(configured["reason"], "Pending");

    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|(method, path, _)| method == "GET" && path == NODE_CONFIGS)
            .all(|(_, _, query)| query.contains("labelSelector=lvs.operator.io%2Fnode")),
        "only our own node configs are watched: {seen:?}"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn the_agents_reports_make_the_virtual_server_ready_with_two_of_two() {
    let mut cluster = cluster();
    let configs = reported_configs(&cluster);
    cluster.insert(NODE_CONFIGS, configs);
    let (client, mut server) = support::start(cluster, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    assert_eq!(
        applied(&writes).keys().collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the configs in the store are already what the build wants"
    );
    let status = status_of(&writes, WEB_STATUS);
    let ready = condition(status, "Ready");
    assert_eq!(ready["status"], "True", "{status}");
    assert_eq!(ready["reason"], "Serving");
    assert_eq!(ready["observedGeneration"], 1);
    let programmed = condition(status, "Programmed");
    assert_eq!(
        (&programmed["status"], &programmed["message"]),
        (&json!("True"), &json!("1/1 directors"))
    );
    assert_eq!(condition(status, "Degraded")["status"], "False");
    assert_eq!(status["readyRealServers"], 2);
    assert_eq!(status["totalRealServers"], 2);
    assert_eq!(
        status["directors"],
        json!([{ "node": "director-1", "role": "Active", "programmed": true }])
    );
    let object = json!({ "status": status });
    assert_eq!(column("Ready", &object), json!("2/2"), "kubectl get vs: READY");
    assert_eq!(
        column("Director", &object),
        json!("director-1"),
        "kubectl get vs: DIRECTOR"
    );

    for (name, node) in [("web-1", "rs-1"), ("web-2", "rs-2")] {
        let status = status_of(
            &writes,
            &format!("/apis/lvs.operator.io/v1alpha1/namespaces/default/realservers/{name}/status"),
        );
        assert_eq!(condition(status, "Healthy")["status"], "True", "{status}");
        assert_eq!(condition(status, "Healthy")["reason"], "CheckPassed");
        assert_eq!(condition(status, "Configured")["status"], "True", "{status}");
        assert_eq!(status["node"], node);
        assert_eq!(status["virtualServers"], json!(["default/web"]));
    }
    assert_eq!(
        events(&writes)
            .iter()
            .map(|event| (&event["reason"], &event["regarding"]["name"]))
            .collect::<Vec<_>>(),
        [(&json!("Accepted"), &json!("web"))],
        "a newly accepted VirtualServer is announced"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_conflicting_virtual_server_is_rejected_with_an_event_on_it_alone() {
    let mut cluster = cluster();
    let mut web = virtual_server("web", "2024-01-01T00:00:00Z");
    web["status"] = json!({ "observedGeneration": 1, "conditions": [{
        "type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
        "observedGeneration": 1, "lastTransitionTime": "2024-01-01T00:00:00Z" }] });
    cluster.insert(
        VIRTUAL_SERVERS,
        vec![web, virtual_server("web-copy", "2024-06-01T00:00:00Z")],
    );
    let (client, mut server) = support::start(cluster, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    let copy = status_of(
        &writes,
        "/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web-copy/status",
    );
    let accepted = condition(copy, "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "Conflict");
    assert!(
        accepted["message"].as_str().unwrap().contains("default/web"),
        "{accepted}"
    );
    assert!(
        copy["conditions"].as_array().unwrap().len() == 1,
        "only Accepted: {copy}"
    );
    assert_eq!(
        condition(status_of(&writes, WEB_STATUS), "Accepted")["status"],
        "True"
    );

    let events = events(&writes);
    assert_eq!(events.len(), 1, "{events:#?}");
    let conflict = events[0];
    assert_eq!(conflict["regarding"]["kind"], "VirtualServer");
    assert_eq!(conflict["regarding"]["name"], "web-copy");
    assert_eq!(conflict["regarding"]["namespace"], "default");
    assert_eq!(conflict["type"], "Warning");
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(conflict["action"], "Reject");
    assert_eq!(conflict["reportingController"], "lvs-controller");
    assert_eq!(conflict["reportingInstance"], "lvs-controller-0");
    assert!(
        conflict["note"]
            .as_str()
            .unwrap()
            .contains("older VirtualServer default/web"),
        "{conflict}"
    );

    let director = &applied(&writes)["director-1"].body["spec"]["directorServices"];
    assert_eq!(
        director.as_array().unwrap().len(),
        1,
        "the loser is not programmed"
    );
    assert_eq!(director[0]["virtualServer"], "default/web");
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_node_that_loses_its_role_or_vanishes_loses_its_config_and_stale_shards_go() {
    let mut cluster = cluster();
    let mut configs = reported_configs(&cluster);
    let mut stale = configs[0].clone();
    assert_eq!(stale["metadata"]["name"], "director-1");
    stale["metadata"]["name"] = json!("director-1-shard-1");
    stale["metadata"]["uid"] = json!("uid-director-1-shard-1");
    stale["spec"]["shard"] = json!({ "index": 1, "count": 2 });
    configs.push(stale);
    cluster.insert(NODE_CONFIGS, configs);
    let (client, mut server) = support::start(cluster, true);
    let _controller = start_controller(client);

    let writes = server.writes_until_quiet(QUIET).await;
    let deletes: Vec<&Recorded> = writes
        .iter()
        .filter(|write| write.method == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 1, "{writes:#?}");
    assert_eq!(deletes[0].path, format!("{NODE_CONFIGS}/director-1-shard-1"));
    assert_eq!(deletes[0].body["preconditions"]["uid"], "uid-director-1-shard-1");
    assert!(applied(&writes).is_empty(), "{writes:#?}");

    // rs-2 loses its real-server label: its config goes, nothing else does.
    server.send(NODES, vec![event("MODIFIED", &node("rs-2", "10.100.0.12", None))]);
    let delete = server.next_write("rs-2's config deleted").await;
    assert_eq!(
        (delete.method.clone(), delete.path.as_str()),
        (Method::DELETE, format!("{NODE_CONFIGS}/rs-2").as_str())
    );
    assert_eq!(delete.body["preconditions"]["uid"], "uid-rs-2");
    let writes = server.writes_until_quiet(QUIET).await;
    assert!(
        writes.iter().all(|write| write.method != Method::DELETE),
        "{writes:#?}"
    );
    let configured = condition(
        status_of(
            &writes,
            "/apis/lvs.operator.io/v1alpha1/namespaces/default/realservers/web-2/status",
        ),
        "Configured",
    );
    assert_eq!(
        (&configured["status"], &configured["reason"]),
        (&json!("Unknown"), &json!("Unmanaged"))
    );
    assert!(
        configured["message"]
            .as_str()
            .unwrap()
            .contains("lacks the label"),
        "{configured}"
    );

    // rs-1 vanishes.
    let mut deleted = node("rs-1", "10.100.0.11", Some("real-server"));
    deleted["metadata"]["resourceVersion"] = json!("30");
    server.send(NODES, vec![event("DELETED", &deleted)]);
    let delete = server.next_write("rs-1's config deleted").await;
    assert_eq!(
        (delete.method, delete.path.as_str()),
        (Method::DELETE, format!("{NODE_CONFIGS}/rs-1").as_str())
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again_and_a_real_server_going_down_is_announced() {
    let mut cluster = cluster();
    let configs = reported_configs(&cluster);
    cluster.insert(NODE_CONFIGS, configs.clone());
    let (client, mut server) = support::start(cluster.clone(), true);
    let _controller = start_controller(client);
    let first = server.writes_until_quiet(QUIET).await;
    let web_status = status_of(&first, WEB_STATUS).clone();
    assert_eq!(web_status["ready"], "2/2");

    // A trigger that changes nothing, before our status writes echo back: no write.
    let mut director = node("director-1", "10.100.0.2", Some("director"));
    director["metadata"]["resourceVersion"] = json!("40");
    server.send(NODES, vec![event("MODIFIED", &director)]);
    let writes = server.writes_until_quiet(QUIET).await;
    assert!(writes.is_empty(), "a status was written twice: {writes:#?}");

    // The writes echo back through the watches, then the same trigger again: still no write.
    let mut web = cluster[VIRTUAL_SERVERS][0].clone();
    web["status"] = web_status.clone();
    web["metadata"]["resourceVersion"] = json!("41");
    server.send(VIRTUAL_SERVERS, vec![event("MODIFIED", &web)]);
    let real_servers: Vec<Value> = cluster[REAL_SERVERS]
        .iter()
        .map(|object| {
            let name = object["metadata"]["name"].as_str().unwrap();
            let mut object = object.clone();
            object["status"] = status_of(
                &first,
                &format!("/apis/lvs.operator.io/v1alpha1/namespaces/default/realservers/{name}/status"),
            )
            .clone();
            object["metadata"]["resourceVersion"] = json!("42");
            event("MODIFIED", &object)
        })
        .collect();
    server.send(REAL_SERVERS, real_servers);
    director["metadata"]["resourceVersion"] = json!("43");
    server.send(NODES, vec![event("MODIFIED", &director)]);
    let writes = server.writes_until_quiet(QUIET).await;
    assert!(
        writes.is_empty(),
        "an echoed status was written again: {writes:#?}"
    );

    // The director reports web-2 failing its checks: READY 1/2, Degraded, and an Event on web-2.
    let mut report = configs
        .iter()
        .find(|config| config["metadata"]["name"] == "director-1")
        .unwrap()
        .clone();
    report["status"]["services"][0]["destinations"][1] = json!({ "realServer": "default/web-2", "healthy": false, "weight": 0, "lastFailure": "connection refused" });
    report["metadata"]["resourceVersion"] = json!("44");
    server.send(NODE_CONFIGS, vec![event("MODIFIED", &report)]);
    let writes = server.writes_until_quiet(QUIET).await;
    let status = status_of(&writes, WEB_STATUS);
    assert_eq!(status["ready"], "1/2");
    assert_eq!(condition(status, "Ready")["status"], "True");
    let degraded = condition(status, "Degraded");
    assert_eq!(
        (&degraded["status"], &degraded["reason"]),
        (&json!("True"), &json!("RealServersUnhealthy"))
    );
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{degraded}"
    );
    assert_eq!(
        condition(&web_status, "Ready")["lastTransitionTime"],
        condition(status, "Ready")["lastTransitionTime"],
        "Ready stayed True: its transition time is carried forward"
    );
    let healthy = condition(
        status_of(
            &writes,
            "/apis/lvs.operator.io/v1alpha1/namespaces/default/realservers/web-2/status",
        ),
        "Healthy",
    );
    assert_eq!(
        (&healthy["status"], &healthy["reason"]),
        (&json!("False"), &json!("CheckFailed"))
    );
    let events = events(&writes);
    assert_eq!(
        events
            .iter()
            .map(|event| (&event["reason"], &event["regarding"]["name"], &event["type"]))
            .collect::<Vec<_>>(),
        [(&json!("RealServerDown"), &json!("web-2"), &json!("Warning"))]
    );
    assert!(
        writes
            .iter()
            .all(|write| !write.path.ends_with("realservers/web-1/status")),
        "web-1 did not change: {writes:#?}"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn an_object_that_does_not_deserialize_is_reported_and_the_others_still_work() {
    let mut cluster = cluster();
    let mut broken = virtual_server("broken", "2024-02-01T00:00:00Z");
    broken["spec"]["port"] = json!("eighty");
    cluster.get_mut(VIRTUAL_SERVERS).unwrap().push(broken);
    let (client, mut server) = support::start(cluster, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    assert_eq!(applied(&writes).len(), 3, "web is still resolved: {writes:#?}");
    let events = events(&writes);
    let unreadable: Vec<_> = events
        .iter()
        .filter(|event| event["reason"] == "Unreadable")
        .collect();
    assert_eq!(unreadable.len(), 1, "{events:#?}");
    assert_eq!(unreadable[0]["regarding"]["name"], "broken");
    assert_eq!(unreadable[0]["type"], "Warning");
    assert!(
        unreadable[0]["note"].as_str().unwrap().contains("eighty"),
        "{}",
        unreadable[0]
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn the_crd_check_says_how_to_install_missing_crds() {
    let (client, server) = support::start(BTreeMap::new(), false);
    let error = lvs_controller::crds::check(&client)
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "addresspools.lvs.operator.io",
        "virtualservers.lvs.operator.io",
        "realservers.lvs.operator.io",
        "lvsnodeconfigs.lvs.operator.io",
        "kubectl apply -f crds/",
        "Helm chart",
    ] {
        assert!(error.contains(expected), "{expected:?} missing from: {error}");
    }
    server.assert_requests_listed();

    let (client, server) = support::start(BTreeMap::new(), true);
    lvs_controller::crds::check(&client).await.unwrap();
    assert_eq!(server.requests().len(), 4, "one GET per CRD");
    server.assert_requests_listed();
}

#[test]
fn the_test_objects_are_valid() {
    let cluster = cluster();
    let _: Vec<VirtualServer> = serde_json::from_value(json!(cluster[VIRTUAL_SERVERS])).unwrap();
    let _: Vec<RealServer> = serde_json::from_value(json!(cluster[REAL_SERVERS])).unwrap();
    assert_eq!(reported_configs(&cluster).len(), 3);
}

/// A VirtualServer `name` in `namespace` on `address` (none: the controller picks one).
fn tenant_virtual_server(namespace: &str, name: &str, address: Option<&str>) -> Value {
    let mut object = virtual_server(name, "2024-01-01T00:00:00Z");
    object["metadata"]["namespace"] = json!(namespace);
    object["metadata"]["uid"] = json!(format!("uid-vs-{namespace}-{name}"));
    match address {
        Some(address) => object["spec"]["address"] = json!(address),
        None => {
            object["spec"].as_object_mut().unwrap().remove("address");
        }
    }
    object
}

fn vs_status_path(namespace: &str, name: &str) -> String {
    format!("/apis/lvs.operator.io/v1alpha1/namespaces/{namespace}/virtualservers/{name}/status")
}

/// `virtualServer → address` of every service in the director's applied config.
fn director_addresses(writes: &[Recorded]) -> BTreeMap<String, String> {
    applied(writes)
        .get("director-1")
        .map(|write| {
            write.body["spec"]["directorServices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|service| {
                    (
                        service["virtualServer"].as_str().unwrap().to_owned(),
                        service["address"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_pool_admitting_one_namespace_refuses_the_other_namespaces_virtual_server() {
    let mut objects = cluster();
    objects.insert(
        POOLS,
        vec![pool("team-a", &["10.100.0.100-10.100.0.110"], &["team-a"])],
    );
    objects.insert(NAMESPACES, vec![namespace("team-a"), namespace("team-b")]);
    objects.insert(
        VIRTUAL_SERVERS,
        vec![
            tenant_virtual_server("team-a", "web", Some("10.100.0.100")),
            tenant_virtual_server("team-b", "web", Some("10.100.0.101")),
        ],
    );
    let (client, mut server) = support::start(objects, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    assert_eq!(
        director_addresses(&writes),
        BTreeMap::from([("team-a/web".to_owned(), "10.100.0.100".to_owned())]),
        "only the admitted namespace's service reaches a node config"
    );
    for write in writes.iter().filter(|write| is_apply(write)) {
        assert!(!write.body.to_string().contains("team-b"), "{}", write.body);
    }
    let refused = status_of(&writes, &vs_status_path("team-b", "web"));
    let accepted = condition(refused, "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "NoAddressPool");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("no AddressPool admits namespace team-b"),
        "{accepted}"
    );
    assert!(refused.get("address").is_none(), "{refused}");
    let admitted = status_of(&writes, &vs_status_path("team-a", "web"));
    assert_eq!(condition(admitted, "Accepted")["status"], "True");
    assert_eq!(admitted["address"], "10.100.0.100");
    assert_eq!(admitted["addressPool"], "team-a");
    let warning = writes
        .iter()
        .find(|write| write.method == Method::POST && write.path.ends_with("/namespaces/team-b/events"))
        .unwrap_or_else(|| panic!("no Event for team-b/web: {writes:#?}"));
    assert_eq!(warning.body["type"], "Warning");
    assert_eq!(warning.body["regarding"]["name"], "web");
    let pool_status = status_of(&writes, &format!("{POOLS}/team-a/status"));
    assert_eq!(pool_status["usage"], "1/11");
    assert_eq!(pool_status["namespaces"], "team-a");
    assert_eq!(condition(pool_status, "Valid")["status"], "True");
    assert_eq!(condition(pool_status, "Overlapping")["status"], "False");
    server.assert_requests_listed();
}

#[tokio::test]
async fn fifty_virtual_servers_without_address_keep_distinct_addresses_across_restarts() {
    let names: Vec<String> = (0..50).map(|index| format!("svc-{index:02}")).collect();
    let mut objects = cluster();
    objects.insert(
        VIRTUAL_SERVERS,
        names
            .iter()
            .map(|name| tenant_virtual_server("default", name, None))
            .collect(),
    );
    let (client, mut server) = support::start(objects.clone(), true);
    let controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    drop(controller);
    let picked: BTreeMap<String, String> = names
        .iter()
        .map(|name| {
            let status = status_of(&writes, &vs_status_path("default", name));
            assert_eq!(status["addressPool"], "lab", "{status}");
            (name.clone(), status["address"].as_str().unwrap().to_owned())
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = picked.values().collect();
    assert_eq!(distinct.len(), 50, "{picked:#?}");
    for address in picked.values() {
        let last: u8 = address.strip_prefix("10.100.0.").unwrap().parse().unwrap();
        assert!((100..=199).contains(&last), "{address} is outside the pool");
    }
    let configured: BTreeMap<String, String> = director_addresses(&writes)
        .into_iter()
        .map(|(name, address)| (name.trim_start_matches("default/").to_owned(), address))
        .collect();
    assert_eq!(configured, picked, "the director serves the addresses in status");

    // Restart on objects whose status records addresses other than a fresh pick would give
    // (each takes the next one's): the records win, so nothing moves after a restart or re-list.
    let rotated: Vec<String> = picked.values().cycle().skip(1).take(50).cloned().collect();
    let recorded: BTreeMap<String, String> = names.iter().cloned().zip(rotated).collect();
    objects.insert(
        VIRTUAL_SERVERS,
        names
            .iter()
            .map(|name| {
                let mut object = tenant_virtual_server("default", name, None);
                object["status"] = json!({ "address": recorded[name], "addressPool": "lab" });
                object
            })
            .collect(),
    );
    let (client, mut server) = support::start(objects, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;
    let configured: BTreeMap<String, String> = director_addresses(&writes)
        .into_iter()
        .map(|(name, address)| (name.trim_start_matches("default/").to_owned(), address))
        .collect();
    assert_eq!(configured, recorded, "every recorded address is kept");
    for name in &names {
        assert_eq!(
            status_of(&writes, &vs_status_path("default", name))["address"],
            recorded[name].as_str()
        );
    }
}

#[tokio::test]
async fn shrinking_a_pool_under_a_picked_address_keeps_it_working_and_flags_it() {
    let mut objects = cluster();
    objects.insert(POOLS, vec![pool("lab", &["10.100.0.100-10.100.0.120"], &["*"])]);
    let mut picked = tenant_virtual_server("default", "web", None);
    picked["status"] = json!({ "address": "10.100.0.150", "addressPool": "lab" });
    objects.insert(VIRTUAL_SERVERS, vec![picked]);
    let (client, mut server) = support::start(objects, true);
    let _controller = start_controller(client);
    let writes = server.writes_until_quiet(QUIET).await;

    assert_eq!(
        director_addresses(&writes),
        BTreeMap::from([("default/web".to_owned(), "10.100.0.150".to_owned())]),
        "the VIP keeps working"
    );
    let status = status_of(&writes, WEB_STATUS);
    let accepted = condition(status, "Accepted");
    assert_eq!(accepted["status"], "True");
    assert_eq!(accepted["reason"], "OutsidePool");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("10.100.0.150 is no longer in AddressPool lab"),
        "{accepted}"
    );
    let pool_status = status_of(&writes, &format!("{POOLS}/lab/status"));
    assert_eq!(pool_status["outsideAddresses"], json!(["10.100.0.150"]));
    assert_eq!(pool_status["usage"], "1/21");
    assert!(
        condition(pool_status, "Valid")["message"]
            .as_str()
            .unwrap()
            .contains("10.100.0.150"),
        "{pool_status}"
    );
}
