//! The mock API server of the controller tests: kube's `Client` over a `tower-test` service.
//! It lists the objects a test starts with, answers each watch request with the next batch of
//! events the test sends (an idle watch hangs), keeps the objects it was written (created,
//! merge-patched, applied, deleted) so that its answers deserialize, records every request, and
//! answers anything unexpected with 404.
#![allow(dead_code)] // each test file uses its own part of the helpers

pub mod cluster;
pub mod services;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use lvs_controller::access::{RequestAttributes, classify};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

pub const VIRTUAL_SERVERS: &str = "/apis/lvs.operator.io/v1alpha1/virtualservers";
pub const REAL_SERVERS: &str = "/apis/lvs.operator.io/v1alpha1/realservers";
pub const NODES: &str = "/api/v1/nodes";
pub const NODE_CONFIGS: &str = "/apis/lvs.operator.io/v1alpha1/lvsnodeconfigs";
pub const POOLS: &str = "/apis/lvs.operator.io/v1alpha1/addresspools";
pub const NAMESPACES: &str = "/api/v1/namespaces";
pub const SERVICES: &str = "/api/v1/services";
pub const ENDPOINT_SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";
pub const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
pub const COLLECTIONS: [&str; 8] = [
    VIRTUAL_SERVERS,
    REAL_SERVERS,
    NODES,
    NODE_CONFIGS,
    POOLS,
    NAMESPACES,
    SERVICES,
    ENDPOINT_SLICES,
];

/// A request that is not a list or a watch.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    /// The request body parsed (`Null` for a PATCH when the mock keeps nothing: not parsed).
    pub body: Value,
    /// The request body's size, bytes.
    pub bytes: usize,
}

impl Recorded {
    pub fn is(&self, method: &Method, path: &str) -> bool {
        self.method == *method && self.path == path
    }
}

/// The test's side of the mock API server.
pub struct ApiServer {
    /// Every write, in order (tests mostly use [`ApiServer::next_write`]).
    pub writes: mpsc::UnboundedReceiver<Recorded>,
    events: BTreeMap<&'static str, mpsc::UnboundedSender<Vec<Value>>>,
    /// Every request, as (method, path, query).
    pub seen: Arc<Mutex<Vec<(String, String, String)>>>,
}

/// The path of an object in a list, for the collection it is listed in.
pub fn object_path(collection: &str, object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => {
            let (prefix, resource) = collection.rsplit_once('/').unwrap();
            format!("{prefix}/namespaces/{namespace}/{resource}/{name}")
        }
        None => format!("{collection}/{name}"),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn not_found(what: &str) -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                 "message": format!("{what} not found"), "reason": "NotFound", "code": 404 }),
    )
}

/// Starts the server with `initial` objects per collection path and, when `crds`, the CRDs
/// installed.
pub fn start(initial: BTreeMap<&'static str, Vec<Value>>, crds: bool) -> (Client, ApiServer) {
    start_with(initial, crds, Keep::Writes)
}

/// Whether the mock keeps what is written to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Written statuses and configs are stored and served back, like an API server.
    Writes,
    /// Each write is answered as if stored, then dropped: the mock's memory stays that of the
    /// initial objects (for benchmarks measuring the controller's memory).
    Nothing,
}

/// [`start`], choosing what the mock keeps.
pub fn start_with(
    initial: BTreeMap<&'static str, Vec<Value>>,
    crds: bool,
    keep: Keep,
) -> (Client, ApiServer) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (write_sender, writes) = mpsc::unbounded_channel();
    let mut events = BTreeMap::new();
    let mut event_receivers = BTreeMap::new();
    for collection in COLLECTIONS {
        let (sender, receiver) = mpsc::unbounded_channel::<Vec<Value>>();
        events.insert(collection, sender);
        event_receivers.insert(collection, Arc::new(tokio::sync::Mutex::new(receiver)));
    }
    let mut objects = BTreeMap::new();
    for (collection, items) in &initial {
        for item in items {
            objects.insert(object_path(collection, item), item.clone());
        }
    }
    let objects = Arc::new(Mutex::new(objects));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_server = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut versions = 1000_u64;
        while let Some((request, respond)) = handle.next_request().await {
            versions += 1;
            let version = versions.to_string();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let method = request.method().clone();
            seen_by_server
                .lock()
                .unwrap()
                .push((method.to_string(), path.clone(), query.clone()));
            let collection = COLLECTIONS.iter().copied().find(|collection| *collection == path);
            if method == Method::GET && query.contains("watch=true") {
                let Some(collection) = collection else {
                    respond.send_response(not_found(&path));
                    continue;
                };
                let receiver = Arc::clone(&event_receivers[collection]);
                tokio::spawn(async move {
                    // Each watch request gets the next batch; with none left it hangs like an idle watch.
                    let Some(batch) = receiver.lock().await.recv().await else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    let lines: String = batch.iter().map(|event| format!("{event}\n")).collect();
                    respond.send_response(
                        Response::builder()
                            .status(StatusCode::OK)
                            .body(Body::from(lines.into_bytes()))
                            .unwrap(),
                    );
                });
                continue;
            }
            if method == Method::GET {
                let response = if let Some(collection) = collection {
                    let kind = match collection {
                        VIRTUAL_SERVERS => "VirtualServerList",
                        REAL_SERVERS => "RealServerList",
                        NODES => "NodeList",
                        POOLS => "AddressPoolList",
                        NAMESPACES => "NamespaceList",
                        SERVICES => "ServiceList",
                        ENDPOINT_SLICES => "EndpointSliceList",
                        _ => "LvsNodeConfigList",
                    };
                    let api_version = match collection {
                        NODES | NAMESPACES | SERVICES => "v1",
                        ENDPOINT_SLICES => "discovery.k8s.io/v1",
                        _ => "lvs.operator.io/v1alpha1",
                    };
                    json_response(
                        StatusCode::OK,
                        &json!({
                            "apiVersion": api_version,
                            "kind": kind,
                            "metadata": { "resourceVersion": "1" },
                            "items": initial.get(collection).cloned().unwrap_or_default(),
                        }),
                    )
                } else if let Some(name) = path.strip_prefix(&format!("{CRDS}/")).filter(|_| crds) {
                    json_response(StatusCode::OK, &crd(name))
                } else {
                    not_found(&path)
                };
                respond.send_response(response);
                continue;
            }
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let size = bytes.len();
            let body: Value = if bytes.is_empty() || (keep == Keep::Nothing && method == Method::PATCH) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            let response = {
                let mut objects = objects.lock().unwrap();
                if keep == Keep::Nothing && method == Method::PATCH {
                    // Answered as stored: a status with the object as it was, a config with
                    // itself.
                    match objects.get(path.trim_end_matches("/status")) {
                        Some(object) => json_response(StatusCode::OK, object),
                        None if path.starts_with(NODE_CONFIGS) => Response::builder()
                            .status(StatusCode::OK)
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Body::from(bytes.to_vec()))
                            .unwrap(),
                        None => not_found(&path),
                    }
                } else if method == Method::PATCH && path.ends_with("/status") {
                    match objects.get_mut(path.trim_end_matches("/status")) {
                        Some(object) => {
                            object["status"] = body["status"].clone();
                            object["metadata"]["resourceVersion"] = json!(version);
                            json_response(StatusCode::OK, object)
                        }
                        None => not_found(&path),
                    }
                } else if method == Method::PATCH && path.starts_with(NODE_CONFIGS) {
                    let object = objects.entry(path.clone()).or_insert_with(|| body.clone());
                    object["spec"] = body["spec"].clone();
                    object["metadata"]["labels"] = body["metadata"]["labels"].clone();
                    object["metadata"]["resourceVersion"] = json!(version);
                    json_response(StatusCode::OK, object)
                } else if method == Method::PATCH && !path.starts_with(NODE_CONFIGS) {
                    match objects.get_mut(&path) {
                        Some(object) => {
                            merge(object, &body);
                            object["metadata"]["resourceVersion"] = json!(version);
                            json_response(StatusCode::OK, object)
                        }
                        None => not_found(&path),
                    }
                } else if method == Method::POST && !path.ends_with("/events") {
                    let key = format!("{path}/{}", body["metadata"]["name"].as_str().unwrap_or_default());
                    match objects.entry(key) {
                        std::collections::btree_map::Entry::Occupied(taken) => json_response(
                            StatusCode::CONFLICT,
                            &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "message": format!("{} already exists", taken.key()), "reason": "AlreadyExists", "code": 409 }),
                        ),
                        std::collections::btree_map::Entry::Vacant(free) => {
                            let object = free.insert(body.clone());
                            object["metadata"]["uid"] = json!(format!("uid-created-{version}"));
                            object["metadata"]["resourceVersion"] = json!(version);
                            object["metadata"]["generation"] = json!(1);
                            json_response(StatusCode::CREATED, object)
                        }
                    }
                } else if method == Method::DELETE {
                    match objects.remove(&path) {
                        Some(_) => json_response(
                            StatusCode::OK,
                            &json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200 }),
                        ),
                        None => not_found(&path),
                    }
                } else if method == Method::POST && path.ends_with("/events") {
                    json_response(StatusCode::CREATED, &body)
                } else {
                    not_found(&path)
                }
            };
            write_sender
                .send(Recorded {
                    method,
                    path,
                    query,
                    content_type,
                    body,
                    bytes: size,
                })
                .unwrap();
            respond.send_response(response);
        }
    });
    (
        Client::new(service, "default"),
        ApiServer { writes, events, seen },
    )
}

/// `patch` merged into `target` as a JSON merge patch (RFC 7386): objects merged, `null`
/// removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A served CRD of our group.
fn crd(name: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": name },
        "spec": {
            "group": "lvs.operator.io",
            "names": { "kind": "Whatever", "plural": name.split('.').next().unwrap() },
            "scope": "Namespaced",
            "versions": [{ "name": "v1alpha1", "served": true, "storage": true }],
        },
    })
}

impl ApiServer {
    /// Sends watch events for one collection. As an API server does, every added or modified
    /// object carries a resourceVersion of its own (the controller's caches rely on it).
    pub fn send(&self, collection: &str, mut events: Vec<Value>) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);
        for event in &mut events {
            if event["type"] == "ADDED" || event["type"] == "MODIFIED" {
                let version = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                event["object"]["metadata"]["resourceVersion"] = json!(format!("w{version}"));
            }
        }
        self.events[collection].send(events).unwrap();
    }

    /// The next write, or a panic naming `what` after 10 s.
    pub async fn next_write(&mut self, what: &str) -> Recorded {
        tokio::time::timeout(Duration::from_secs(10), self.writes.recv())
            .await
            .unwrap_or_else(|_| panic!("no request within 10 s: {what}"))
            .expect("the mock API server stopped")
    }

    /// Every write until none came for `quiet` (at most 15 s in all).
    pub async fn writes_until_quiet(&mut self, quiet: Duration) -> Vec<Recorded> {
        let mut writes = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(quiet, self.writes.recv()).await {
                Ok(Some(write)) => writes.push(write),
                Ok(None) | Err(_) => break,
            }
        }
        writes
    }

    /// Every request so far, in RBAC terms.
    pub fn requests(&self) -> Vec<RequestAttributes> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(method, path, query)| {
                classify(method, path, query).unwrap_or_else(|| panic!("unclassifiable {method} {path}"))
            })
            .collect()
    }

    /// Asserts that `access::API_REQUESTS` lists every request the controller made.
    pub fn assert_requests_listed(&self) {
        for request in self.requests() {
            assert!(
                request.is_listed(),
                "{request:?} is missing from lvs_controller::access::API_REQUESTS"
            );
        }
    }
}

/// A watch event line.
pub fn event(type_: &str, object: &Value) -> Value {
    json!({ "type": type_, "object": object })
}

/// The controller as leader on a mock API; stops when dropped.
pub struct Running {
    _leader: watch::Sender<bool>,
    /// Whether the controller has finished its first pass.
    pub ready: watch::Receiver<bool>,
    _stop: oneshot::Sender<()>,
}

/// Starts the controller on `client` as leader, with test timings (20 ms debounce, no resync
/// within a test).
pub fn start_controller(client: Client) -> Running {
    let (leader_sender, leader) = watch::channel(true);
    let (ready_sender, ready) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let options = lvs_controller::controller::Options {
        debounce: Duration::from_millis(20),
        resync: Duration::from_secs(3600),
        instance: Some("lvs-controller-0".to_owned()),
        settings: lvs_core::ClusterSettings::default(),
        service_class: lvs_core::service::ServiceClass::default(),
    };
    tokio::spawn(async move {
        lvs_controller::controller::run(
            client,
            options,
            leader,
            lvs_controller::metrics::Metrics::new(),
            ready_sender,
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    Running {
        _leader: leader_sender,
        ready,
        _stop: stop,
    }
}
