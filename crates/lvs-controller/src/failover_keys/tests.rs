#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

type Seen = Arc<Mutex<Vec<(Method, String)>>>;
type Stored = Arc<Mutex<BTreeMap<String, Value>>>;

/// A namespace's Secrets behind a mock API server: GET answers from `secrets` (404 when
/// missing), POST stores the Secret (409 when it exists); every request is recorded.
fn api(secrets: BTreeMap<String, Value>) -> (Client, Seen, Stored) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stored = Arc::new(Mutex::new(secrets));
    let (seen_by_server, stored_by_server) = (Arc::clone(&seen), Arc::clone(&stored));
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let path = parts.uri.path().to_owned();
            seen_by_server
                .lock()
                .unwrap()
                .push((parts.method.clone(), path.clone()));
            let prefix = "/api/v1/namespaces/lvs-system/secrets";
            let (status, answer) = match parts.method {
                Method::GET => {
                    let name = path.trim_start_matches(prefix).trim_start_matches('/');
                    match stored_by_server.lock().unwrap().get(name) {
                        Some(secret) => (StatusCode::OK, secret.clone()),
                        None => (StatusCode::NOT_FOUND, status(404, "NotFound")),
                    }
                }
                Method::POST if path == prefix => {
                    let bytes = body.collect_bytes().await.unwrap();
                    let secret: Value = serde_json::from_slice(&bytes).unwrap();
                    let name = secret["metadata"]["name"].as_str().unwrap().to_owned();
                    match stored_by_server.lock().unwrap().entry(name) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            (StatusCode::CONFLICT, status(409, "AlreadyExists"))
                        }
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(secret.clone());
                            (StatusCode::CREATED, secret)
                        }
                    }
                }
                _ => (StatusCode::NOT_FOUND, status(404, "NotFound")),
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            send.send_response(response);
        }
    });
    (Client::new(service, "lvs-system"), seen, stored)
}

fn status(code: u16, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": reason})
}

fn secret(name: &str, key: &[u8]) -> Value {
    use base64::Engine as _;
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "lvs-system"},
        "data": {"key": base64::engine::general_purpose::STANDARD.encode(key)},
    })
}

fn decoded_key(secret: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["key"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_missing_key_secret_is_created_with_a_random_key_and_an_existing_one_left_alone() {
    let admins = b"an admin's own key, rotated by hand".to_vec();
    let (client, seen, stored) = api([(
        "lvs-failover-edge".to_owned(),
        secret("lvs-failover-edge", &admins),
    )]
    .into());
    let names = ["lvs-failover-default".to_owned(), "lvs-failover-edge".to_owned()];
    let found = ensure(&client, "lvs-system", &names).await.unwrap();
    assert_eq!(found, [KeySecret::Created, KeySecret::Present]);
    let created = stored.lock().unwrap()["lvs-failover-default"].clone();
    let key = decoded_key(&created);
    assert_eq!(key.len(), 48, "36 random bytes as base64 text");
    assert!(
        key.iter().all(|byte| byte.is_ascii_graphic()),
        "no whitespace for agents to trim"
    );
    assert_eq!(decoded_key(&stored.lock().unwrap()["lvs-failover-edge"]), admins);
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(method, _)| *method == Method::POST)
            .count(),
        1,
        "only the missing Secret is written"
    );

    // Again (a restart, another replica, a re-render of the chart): nothing changes.
    seen.lock().unwrap().clear();
    let again = ensure(&client, "lvs-system", &names).await.unwrap();
    assert_eq!(again, [KeySecret::Present, KeySecret::Present]);
    assert_eq!(decoded_key(&stored.lock().unwrap()["lvs-failover-default"]), key);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(method, _)| *method == Method::GET)
    );
}

#[tokio::test]
async fn keys_differ_between_secrets() {
    let (client, _, stored) = api(BTreeMap::new());
    let names = ["a".to_owned(), "b".to_owned()];
    ensure(&client, "lvs-system", &names).await.unwrap();
    let stored = stored.lock().unwrap();
    assert_ne!(decoded_key(&stored["a"]), decoded_key(&stored["b"]));
}

#[tokio::test]
async fn a_secret_without_a_usable_key_is_reported_and_never_overwritten() {
    let (client, seen, stored) = api([
        ("short".to_owned(), secret("short", b"tiny")),
        (
            "other".to_owned(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other"}, "data": {}}),
        ),
    ]
    .into());
    let found = ensure(&client, "lvs-system", &["short".to_owned(), "other".to_owned()])
        .await
        .unwrap();
    assert!(
        matches!(&found[0], KeySecret::Unusable(why) if why.contains("4 bytes")),
        "{found:?}"
    );
    assert!(
        matches!(&found[1], KeySecret::Unusable(why) if why.contains("no data key")),
        "{found:?}"
    );
    assert_eq!(decoded_key(&stored.lock().unwrap()["short"]), b"tiny");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(method, _)| *method == Method::GET)
    );
}
