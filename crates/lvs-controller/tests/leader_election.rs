//! Leader election against a mock API server that keeps one Lease with optimistic concurrency
//! (a create of an existing Lease and an update from a stale resourceVersion get 409), shared
//! by several candidates: the first creates and renews it while the second follows; a holder
//! that stops renewing is replaced after a lease duration; a leader that finds another holder,
//! or cannot reach the API server for longer than the renew deadline, steps down (the latter
//! before its lease could expire); shutdown releases the Lease for a fast hand-over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use lvs_controller::access::classify;
use lvs_controller::leader::{self, Settings};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/lvs-system/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/lvs-system/leases/lvs-controller";

/// A request a candidate made.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// The one Lease and the switch that makes the server fail.
#[derive(Clone, Default)]
struct Leases {
    lease: Arc<Mutex<Option<Value>>>,
    version: Arc<Mutex<u64>>,
    failing: Arc<AtomicBool>,
}

impl Leases {
    fn holder(&self) -> Option<String> {
        let lease = self.lease.lock().unwrap();
        lease.as_ref()?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_owned)
    }

    fn transitions(&self) -> i64 {
        self.lease.lock().unwrap().as_ref().unwrap()["spec"]["leaseTransitions"]
            .as_i64()
            .unwrap()
    }

    fn store(&self, mut lease: Value) -> Value {
        let mut version = self.version.lock().unwrap();
        *version += 1;
        lease["metadata"]["resourceVersion"] = json!(version.to_string());
        *self.lease.lock().unwrap() = Some(lease.clone());
        lease
    }

    /// Another party takes the Lease (bypassing the candidates).
    fn take(&self, holder: &str) {
        let mut lease = self.lease.lock().unwrap().clone().unwrap();
        lease["spec"]["holderIdentity"] = json!(holder);
        lease["spec"]["renewTime"] = json!("2030-01-01T00:00:00.000000Z");
        self.store(lease);
    }
}

fn status(code: StatusCode, reason: &str) -> Response<Body> {
    respond(
        code,
        &json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason,
                 "reason": reason, "code": code.as_u16() }),
    )
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A client of the shared Lease server; its requests go to `seen`.
fn client(leases: &Leases, seen: mpsc::UnboundedSender<Seen>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let leases = leases.clone();
    tokio::spawn(async move {
        while let Some((request, responder)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let _ = seen.send(Seen {
                method: method.clone(),
                path: path.clone(),
                query,
                body: body.clone(),
            });
            let current = leases.lease.lock().unwrap().clone();
            let response = if leases.failing.load(Ordering::SeqCst) {
                status(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            } else if method == Method::GET && path == LEASE {
                match current {
                    Some(lease) => respond(StatusCode::OK, &lease),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            } else if method == Method::POST && path == LEASES {
                match current {
                    Some(_) => status(StatusCode::CONFLICT, "AlreadyExists"),
                    None => respond(StatusCode::CREATED, &leases.store(body)),
                }
            } else if method == Method::PUT && path == LEASE {
                match current {
                    Some(lease)
                        if lease["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"] =>
                    {
                        respond(StatusCode::OK, &leases.store(body))
                    }
                    Some(_) => status(StatusCode::CONFLICT, "Conflict"),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                }
            } else {
                status(StatusCode::NOT_FOUND, "NotFound")
            };
            responder.send_response(response);
        }
    });
    Client::new(service, "default")
}

/// One candidate.
struct Candidate {
    leading: watch::Receiver<bool>,
    seen: mpsc::UnboundedReceiver<Seen>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn settings(identity: &str, lease_duration: Duration) -> Settings {
    Settings {
        lease_duration,
        renew_deadline: Duration::from_millis(600),
        retry_period: Duration::from_millis(100),
        ..Settings::new("lvs-system", "lvs-controller", identity)
    }
}

fn candidate(leases: &Leases, settings: Settings) -> Candidate {
    let (seen_sender, seen) = mpsc::unbounded_channel();
    let client = client(leases, seen_sender);
    let (leading_sender, leading) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(leader::run(client, settings, leading_sender, async {
        let _ = stopped.await;
    }));
    Candidate {
        leading,
        seen,
        stop: Some(stop),
        task,
    }
}

/// Waits until `candidate` leads (or not), failing after `within`; returns how long it took.
async fn until_leading(candidate: &mut Candidate, leading: bool, within: Duration) -> Duration {
    let start = Instant::now();
    tokio::time::timeout(within, candidate.leading.wait_for(|now| *now == leading))
        .await
        .unwrap_or_else(|_| panic!("leading was not {leading} within {within:?}"))
        .unwrap();
    start.elapsed()
}

fn assert_lease_requests_listed(seen: &[Seen]) {
    for request in seen {
        let attributes = classify(request.method.as_str(), &request.path, &request.query).unwrap();
        assert!(
            attributes.is_listed(),
            "{attributes:?} is not in access::API_REQUESTS"
        );
    }
}

fn drain(candidate: &mut Candidate) -> Vec<Seen> {
    let mut seen = Vec::new();
    while let Ok(request) = candidate.seen.try_recv() {
        seen.push(request);
    }
    seen
}

#[tokio::test]
async fn the_first_candidate_creates_and_renews_the_lease_while_the_second_follows() {
    let leases = Leases::default();
    let mut first = candidate(&leases, settings("a", Duration::from_secs(1)));
    until_leading(&mut first, true, Duration::from_secs(5)).await;
    let mut second = candidate(&leases, settings("b", Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(*first.leading.borrow(), "the leader kept its lease");
    assert!(
        !*second.leading.borrow(),
        "the second candidate follows a live leader"
    );
    assert_eq!(leases.holder().as_deref(), Some("a"));

    let seen = drain(&mut first);
    let writes: Vec<&Seen> = seen
        .iter()
        .filter(|request| request.method != Method::GET)
        .collect();
    let create = writes[0];
    assert_eq!(
        (create.method.clone(), create.path.as_str()),
        (Method::POST, LEASES)
    );
    let spec = &create.body["spec"];
    assert_eq!(spec["holderIdentity"], "a");
    assert_eq!(spec["leaseDurationSeconds"], 1);
    assert_eq!(spec["leaseTransitions"], 0);
    assert!(
        spec["acquireTime"].is_string() && spec["renewTime"].is_string(),
        "{spec}"
    );
    let renewals: Vec<&&Seen> = writes[1..].iter().collect();
    assert!(
        renewals.len() >= 10,
        "renewed every retry period: {}",
        renewals.len()
    );
    for renewal in &renewals {
        assert_eq!(
            (renewal.method.clone(), renewal.path.as_str()),
            (Method::PUT, LEASE)
        );
        assert_eq!(renewal.body["spec"]["holderIdentity"], "a");
        assert!(
            renewal.body["metadata"]["resourceVersion"].is_string(),
            "an optimistic-concurrency update"
        );
    }
    let times: Vec<&str> = renewals
        .iter()
        .map(|renewal| renewal.body["spec"]["renewTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    let second_seen = drain(&mut second);
    assert!(
        second_seen.iter().all(|request| request.method == Method::GET),
        "a follower only reads: {second_seen:?}"
    );
    assert_lease_requests_listed(&seen);
    assert_lease_requests_listed(&second_seen);
}

#[tokio::test]
async fn a_holder_that_stops_renewing_is_replaced_after_a_lease_duration() {
    let leases = Leases::default();
    let mut first = candidate(&leases, settings("a", Duration::from_secs(1)));
    until_leading(&mut first, true, Duration::from_secs(5)).await;
    let mut second = candidate(&leases, settings("b", Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.task.abort();
    let took = until_leading(&mut second, true, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(500),
        "taken over after {took:?}, before the lease could expire"
    );
    assert_eq!(leases.holder().as_deref(), Some("b"));
    assert_eq!(leases.transitions(), 1);
    assert_lease_requests_listed(&drain(&mut second));
}

#[tokio::test]
async fn a_leader_that_finds_another_holder_steps_down_at_once() {
    let leases = Leases::default();
    let mut first = candidate(&leases, settings("a", Duration::from_secs(10)));
    until_leading(&mut first, true, Duration::from_secs(5)).await;
    leases.take("intruder");
    let took = until_leading(&mut first, false, Duration::from_secs(2)).await;
    assert!(took < Duration::from_millis(500), "stepped down after {took:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        leases.holder().as_deref(),
        Some("intruder"),
        "a live holder is followed"
    );
    assert!(!*first.leading.borrow());
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_steps_down_before_its_lease_expires() {
    let leases = Leases::default();
    let mut first = candidate(&leases, settings("a", Duration::from_secs(1)));
    until_leading(&mut first, true, Duration::from_secs(5)).await;
    leases.failing.store(true, Ordering::SeqCst);
    let took = until_leading(&mut first, false, Duration::from_secs(3)).await;
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(1),
        "stepped down {took:?} after the API server went away (renew deadline 600 ms, lease 1 s)"
    );
    leases.failing.store(false, Ordering::SeqCst);
    until_leading(&mut first, true, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_releases_the_lease_for_a_fast_hand_over() {
    let leases = Leases::default();
    let mut first = candidate(&leases, settings("a", Duration::from_secs(30)));
    until_leading(&mut first, true, Duration::from_secs(5)).await;
    let mut second = candidate(&leases, settings("b", Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first.stop.take());
    tokio::time::timeout(Duration::from_secs(5), &mut first.task)
        .await
        .unwrap()
        .unwrap();
    assert!(!*first.leading.borrow());
    let release = drain(&mut first).into_iter().last().unwrap();
    assert_eq!(release.method, Method::PUT);
    assert!(
        release.body["spec"].get("holderIdentity").is_none(),
        "{}",
        release.body
    );
    let took = until_leading(&mut second, true, Duration::from_secs(2)).await;
    assert!(
        took < Duration::from_secs(1),
        "hand-over took {took:?} with a 30 s lease"
    );
    assert_eq!(leases.holder().as_deref(), Some("b"));
}
