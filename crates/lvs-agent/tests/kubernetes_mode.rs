//! Kubernetes mode against a mock API server (kube's client over a `tower-test` service): this
//! node's `LvsNodeConfig` arrives → the fake dataplane is programmed → the status is written by
//! server-side apply with the expected body, and only when it changed; the config is deleted →
//! everything the agent programmed is removed; an incomplete set of shards never prunes; a
//! failed status write is retried. Every request the agent makes is recorded and, at the end of
//! each test, must be listed in `lvs_agent::access::API_REQUESTS` (the chart's RBAC is held to it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use lvs_agent::access::{self, ApiRequest};
use lvs_agent::health::HealthMonitor;
use lvs_agent::kubernetes::{self, Options};
use lvs_agent::metrics::Metrics;
use lvs_agent::reconciler::Reconciler;
use lvs_dataplane::FakeDataplane;
use lvs_dataplane::model::ServiceKey;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

const NODE: &str = "director-1";
const BASE: &str = "/apis/lvs.operator.io/v1alpha1/lvsnodeconfigs";

/// A director service for `vip:port` with two real servers of weights `weights`.
fn service(name: &str, vip: &str, port: u16, weights: [u16; 2]) -> Value {
    json!({
        "virtualServer": format!("default/{name}"),
        "generation": 1,
        "address": vip,
        "port": port,
        "protocol": "TCP",
        "family": "IPv4",
        "scheduler": "wrr",
        "forwarding": { "method": "DirectRouting" },
        "vipPlacement": "Dummy",
        "healthCheck": { "type": "None" },
        "onFailure": "Quiescent",
        "onePacket": false,
        "directors": [NODE],
        "destinations": [
            { "realServer": "default/rs-1", "address": "10.100.0.11", "port": port, "weight": weights[0],
              "thresholds": { "upper": 0, "lower": 0 }, "state": "Active", "awaitingNode": false },
            { "realServer": "default/rs-2", "address": "10.100.0.12", "port": port, "weight": weights[1],
              "thresholds": { "upper": 0, "lower": 0 }, "state": "Active", "awaitingNode": false },
        ],
    })
}

/// An LvsNodeConfig shard of this node.
fn config(name: &str, index: u32, count: u32, resource_version: u32, services: Vec<Value>) -> Value {
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "LvsNodeConfig",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "generation": 1,
            "resourceVersion": resource_version.to_string(),
            "labels": { "lvs.operator.io/node": NODE },
        },
        "spec": {
            "nodeName": NODE,
            "shard": { "index": index, "count": count },
            "directorServices": services,
        },
    })
}

/// A status write the agent made.
#[derive(Debug)]
struct StatusPatch {
    name: String,
    query: String,
    content_type: String,
    body: Value,
}

/// The mock API server: answers the list from `initial`, each watch request with the next batch
/// of events the test sends, and records status patches (failing the first `failures` of them)
/// and every request's method, path and query.
struct ApiServer {
    patches: mpsc::UnboundedReceiver<StatusPatch>,
    events: mpsc::UnboundedSender<Vec<Value>>,
    list_queries: Arc<std::sync::Mutex<Vec<String>>>,
    seen: Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl ApiServer {
    /// Asserts that every request so far is one `access::API_REQUESTS` lists; returns the
    /// entries they used.
    fn assert_requests_listed(&self) -> BTreeSet<ApiRequest> {
        let seen = self.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "the agent made no request");
        let mut used = BTreeSet::new();
        for (method, path, query) in &seen {
            let attributes = access::classify(method, path, query)
                .unwrap_or_else(|| panic!("unclassifiable {method} {path}"));
            let entry = access::API_REQUESTS
                .iter()
                .find(|listed| listed.covers(&attributes))
                .unwrap_or_else(|| {
                    panic!("{method} {path}?{query} ({attributes:?}) is missing from lvs_agent::access::API_REQUESTS")
                });
            used.insert(*entry);
        }
        used
    }
}

fn start_api_server(initial: Vec<Value>, failures: usize) -> (Client, ApiServer) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (patch_sender, patches) = mpsc::unbounded_channel();
    let (events, event_receiver) = mpsc::unbounded_channel::<Vec<Value>>();
    let event_receiver = Arc::new(Mutex::new(event_receiver));
    let list_queries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let queries = Arc::clone(&list_queries);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(failures));
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let patch_sender = patch_sender.clone();
            let event_receiver = Arc::clone(&event_receiver);
            let initial = initial.clone();
            let queries = Arc::clone(&queries);
            let failures = Arc::clone(&failures);
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let method = request.method().clone();
            recorded
                .lock()
                .unwrap()
                .push((method.to_string(), path.clone(), query.clone()));
            tokio::spawn(async move {
                let response = if method == Method::GET && path == BASE && !query.contains("watch=true") {
                    queries.lock().unwrap().push(query);
                    json_response(
                        StatusCode::OK,
                        &json!({
                            "apiVersion": "lvs.operator.io/v1alpha1",
                            "kind": "LvsNodeConfigList",
                            "metadata": { "resourceVersion": "1" },
                            "items": initial,
                        }),
                    )
                } else if method == Method::GET && path == BASE {
                    // Each watch request gets the next batch; with none left it hangs like an idle watch.
                    let batch = event_receiver.lock().await.recv().await;
                    let Some(batch) = batch else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    let lines: String = batch.iter().map(|event| format!("{event}\n")).collect();
                    Response::builder()
                        .status(StatusCode::OK)
                        .body(Body::from(lines.into_bytes()))
                        .unwrap()
                } else if method == Method::PATCH && path.starts_with(BASE) && path.ends_with("/status") {
                    let name = path
                        .trim_start_matches(BASE)
                        .trim_start_matches('/')
                        .trim_end_matches("/status")
                        .to_owned();
                    let content_type = request
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .map(|value| value.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let bytes = request.into_body().collect_bytes().await.unwrap();
                    let body: Value = serde_json::from_slice(&bytes).unwrap();
                    let fail = failures
                        .fetch_update(
                            std::sync::atomic::Ordering::SeqCst,
                            std::sync::atomic::Ordering::SeqCst,
                            |left| left.checked_sub(1),
                        )
                        .is_ok();
                    let mut object = body.clone();
                    object["metadata"] = json!({ "name": name });
                    patch_sender
                        .send(StatusPatch {
                            name,
                            query,
                            content_type,
                            body,
                        })
                        .unwrap();
                    if fail {
                        json_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": "etcd is having a bad day", "reason": "InternalError", "code": 500 }),
                        )
                    } else {
                        json_response(StatusCode::OK, &object)
                    }
                } else {
                    json_response(
                        StatusCode::NOT_FOUND,
                        &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": format!("unexpected {method} {path}"), "reason": "NotFound", "code": 404 }),
                    )
                };
                respond.send_response(response);
            });
        }
    });
    (
        Client::new(service, "default"),
        ApiServer {
            patches,
            events,
            list_queries,
            seen,
        },
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// The agent in Kubernetes mode on a fake kernel; stop it by dropping the returned sender.
struct Agent {
    dataplane: Arc<FakeDataplane>,
    ready: watch::Receiver<bool>,
    _stop: oneshot::Sender<()>,
}

fn start_agent(client: Client) -> Agent {
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new(NODE);
    let health = HealthMonitor::new(4, lvs_agent::metrics_observer(&metrics));
    let reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, NODE);
    let (ready_sender, ready) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let options = Options {
        node_name: NODE.to_owned(),
        node_address: None,
        resync: Duration::from_secs(3600),
    };
    tokio::spawn(async move {
        kubernetes::run(client, reconciler, options, ready_sender, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Agent {
        dataplane,
        ready,
        _stop: stop,
    }
}

async fn next_patch(server: &mut ApiServer) -> StatusPatch {
    tokio::time::timeout(Duration::from_secs(10), server.patches.recv())
        .await
        .expect("no status patch within 10 s")
        .expect("the mock API server stopped")
}

/// The kernel's services as (VIP:port, sorted weights).
fn kernel_services(dataplane: &FakeDataplane) -> Vec<(String, Vec<u32>)> {
    dataplane.kernel().with_state(|state| {
        state
            .services
            .iter()
            .map(|(key, service)| {
                let name = match key {
                    ServiceKey::Address { address, port, .. } => format!("{address}:{port}"),
                    other => other.to_string(),
                };
                let mut weights: Vec<u32> = service
                    .destinations
                    .values()
                    .map(|destination| destination.weight)
                    .collect();
                weights.sort_unstable();
                (name, weights)
            })
            .collect()
    })
}

fn kernel_addresses(dataplane: &FakeDataplane) -> BTreeSet<IpAddr> {
    dataplane
        .kernel()
        .with_state(|state| state.addresses.iter().map(|vip| vip.address).collect())
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|condition| condition["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

#[tokio::test]
async fn config_arrives_is_programmed_and_reported_then_deleted_and_cleaned_up() {
    let web = config(NODE, 0, 1, 1, vec![service("web", "10.100.0.100", 80, [1, 3])]);
    let (client, mut server) = start_api_server(vec![web.clone()], 0);
    let mut agent = start_agent(client);

    let patch = next_patch(&mut server).await;
    assert_eq!(patch.name, NODE);
    assert!(patch.query.contains("fieldManager=lvs-agent"), "{}", patch.query);
    assert!(patch.query.contains("force=true"), "{}", patch.query);
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    assert_eq!(patch.body["apiVersion"], "lvs.operator.io/v1alpha1");
    assert_eq!(patch.body["kind"], "LvsNodeConfig");
    let status = &patch.body["status"];
    assert_eq!(status["observedGeneration"], 1);
    let synced = condition(status, "Synced");
    assert_eq!(synced["status"], "True", "{status}");
    assert_eq!(synced["reason"], "Synced");
    assert_eq!(status["services"][0]["virtualServer"], "default/web");
    assert_eq!(status["services"][0]["programmed"], true);
    assert_eq!(
        status["services"][0]["destinations"][0]["realServer"],
        "default/rs-1"
    );
    assert_eq!(status["services"][0]["destinations"][0]["weight"], 1);
    assert_eq!(status["services"][0]["destinations"][1]["weight"], 3);
    assert_eq!(status["driftRepairs"], 0);
    assert!(status.get("lastError").is_none(), "{status}");

    let queries = server.list_queries.lock().unwrap().clone();
    assert!(
        queries
            .iter()
            .all(|query| query.contains("labelSelector=lvs.operator.io%2Fnode%3Ddirector-1")),
        "the agent lists only its own node's configs: {queries:?}"
    );
    assert_eq!(
        kernel_services(&agent.dataplane),
        vec![("10.100.0.100:80".to_owned(), vec![1, 3])]
    );
    assert!(kernel_addresses(&agent.dataplane).contains(&"10.100.0.100".parse::<IpAddr>().unwrap()));
    agent.ready.wait_for(|ready| *ready).await.unwrap();

    // Our own status write echoes back as a watch event: nothing changed, so nothing is written.
    // Then a real change (weights 2 and 2) must be the very next patch.
    let mut echoed = web.clone();
    echoed["status"] = status.clone();
    echoed["metadata"]["resourceVersion"] = json!("2");
    let mut changed = config(NODE, 0, 1, 3, vec![service("web", "10.100.0.100", 80, [2, 2])]);
    changed["metadata"]["generation"] = json!(2);
    server
        .events
        .send(vec![json!({ "type": "MODIFIED", "object": echoed })])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .events
        .send(vec![json!({ "type": "MODIFIED", "object": changed })])
        .unwrap();
    let patch = next_patch(&mut server).await;
    assert_eq!(
        patch.body["status"]["observedGeneration"], 2,
        "the echo caused a write: {:?}",
        patch.body
    );
    assert_eq!(
        patch.body["status"]["services"][0]["destinations"][0]["weight"],
        2
    );
    assert_eq!(
        kernel_services(&agent.dataplane),
        vec![("10.100.0.100:80".to_owned(), vec![2, 2])]
    );

    // The controller deletes the node's config: everything we programmed goes.
    server
        .events
        .send(vec![json!({ "type": "DELETED", "object": changed })])
        .unwrap();
    let dataplane = Arc::clone(&agent.dataplane);
    let cleaned = || kernel_services(&dataplane).is_empty() && kernel_addresses(&dataplane).is_empty();
    for _ in 0..100 {
        if cleaned() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cleaned(),
        "after the config was deleted: services {:?}, addresses {:?}",
        kernel_services(&dataplane),
        kernel_addresses(&dataplane)
    );
    assert!(
        server.patches.try_recv().is_err(),
        "no status is written for a deleted config"
    );
    assert_eq!(
        server.assert_requests_listed(),
        access::API_REQUESTS.iter().copied().collect(),
        "access::API_REQUESTS lists a request the agent never made"
    );
}

#[tokio::test]
async fn an_incomplete_set_of_shards_programs_without_pruning() {
    let shard0 = config(NODE, 0, 2, 1, vec![service("a", "10.100.0.100", 80, [1, 1])]);
    let shard1 = config(
        &format!("{NODE}-shard-1"),
        1,
        2,
        1,
        vec![service("b", "10.100.0.101", 81, [1, 1])],
    );
    let (client, mut server) = start_api_server(vec![shard0.clone(), shard1.clone()], 0);
    let agent = start_agent(client);
    let mut written = BTreeSet::new();
    while written.len() < 2 {
        written.insert(next_patch(&mut server).await.name);
    }
    assert_eq!(kernel_services(&agent.dataplane).len(), 2);

    // Shard 1 vanishes (the controller is rewriting the shards): service b must stay.
    server
        .events
        .send(vec![json!({ "type": "DELETED", "object": shard1 })])
        .unwrap();
    // Shard 0 changes at the same time: its change is still programmed.
    let changed = config(NODE, 0, 2, 5, vec![service("a", "10.100.0.100", 80, [5, 5])]);
    server
        .events
        .send(vec![json!({ "type": "MODIFIED", "object": changed })])
        .unwrap();
    let dataplane = Arc::clone(&agent.dataplane);
    eventually("shard 0's change programmed", || {
        kernel_services(&dataplane).contains(&("10.100.0.100:80".to_owned(), vec![5, 5]))
    })
    .await;
    assert!(
        kernel_services(&agent.dataplane).contains(&("10.100.0.101:81".to_owned(), vec![1, 1])),
        "a missing shard's service was pruned: {:?}",
        kernel_services(&agent.dataplane)
    );

    // The controller settles on one shard: now the intent is complete and b goes.
    let single = config(NODE, 0, 1, 7, vec![service("a", "10.100.0.100", 80, [5, 5])]);
    server
        .events
        .send(vec![json!({ "type": "MODIFIED", "object": single })])
        .unwrap();
    let dataplane = Arc::clone(&agent.dataplane);
    eventually("service b pruned once the shards are complete", || {
        kernel_services(&dataplane) == vec![("10.100.0.100:80".to_owned(), vec![5, 5])]
    })
    .await;
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_failed_status_write_is_retried() {
    let web = config(NODE, 0, 1, 1, vec![service("web", "10.100.0.100", 80, [1, 1])]);
    let (client, mut server) = start_api_server(vec![web], 1);
    let _agent = start_agent(client);
    let first = next_patch(&mut server).await;
    let second = next_patch(&mut server).await;
    assert_eq!(first.name, second.name);
    assert_eq!(
        first.body["status"]["services"], second.body["status"]["services"],
        "the retry writes the same status"
    );
    server.assert_requests_listed();
}

#[tokio::test]
async fn a_kernel_refusal_is_reported_in_the_status() {
    let mut broken = service("web", "10.100.0.100", 80, [1, 1]);
    // The fake kernel, like Debian's cloud kernel, has no `twos` scheduler.
    broken["scheduler"] = json!("twos");
    let (client, mut server) = start_api_server(vec![config(NODE, 0, 1, 1, vec![broken])], 0);
    let agent = start_agent(client);
    let patch = next_patch(&mut server).await;
    let status = &patch.body["status"];
    let synced = condition(status, "Synced");
    assert_eq!(synced["status"], "False", "{status}");
    assert_eq!(synced["reason"], "SyncFailed");
    assert!(synced["message"].as_str().unwrap().contains("twos"), "{synced}");
    assert_eq!(status["services"][0]["programmed"], false);
    assert!(
        status["services"][0]["message"]
            .as_str()
            .unwrap()
            .contains("twos"),
        "{status}"
    );
    assert!(
        status["lastError"].as_str().unwrap().starts_with("default/web: "),
        "{status}"
    );
    assert!(!*agent.ready.borrow(), "not ready while nothing synced");
    server.assert_requests_listed();
}

#[test]
fn the_test_objects_are_valid_node_configs() {
    let object = config(NODE, 0, 1, 1, vec![service("web", "10.100.0.100", 80, [1, 3])]);
    let parsed: lvs_api::LvsNodeConfig = serde_json::from_value(object).unwrap();
    assert_eq!(parsed.spec.director_services[0].destinations[1].weight, 3);
}
