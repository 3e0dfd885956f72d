//! The agent's HTTP endpoints on a real socket, queried with a real HTTP/1.1 client: liveness,
//! readiness following the watch channel, /metrics with its content type, 404, and graceful
//! shutdown (also with an idle keep-alive connection open).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use lvs_agent::metrics::Metrics;
use lvs_agent::server::serve;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct Server {
    address: SocketAddr,
    ready: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(metrics: Arc<Metrics>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (ready, ready_receiver) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, metrics, ready_receiver, async move {
        let _ = stopped.await;
    }));
    Server {
        address,
        ready,
        stop: Some(stop),
        task,
    }
}

impl Server {
    /// Stops the server and waits (at most 5 s) for `serve` to return.
    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// An HTTP/1.1 client connection.
async fn connect(address: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: String,
}

async fn send(sender: &mut SendRequest<Empty<Bytes>>, method: Method, path: &str) -> Reply {
    sender.ready().await.unwrap();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .expect("no response within 5 s")
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(address: SocketAddr, path: &str) -> Reply {
    send(&mut connect(address).await, Method::GET, path).await
}

#[tokio::test]
async fn healthz_is_ok_while_running() {
    let server = start(Metrics::new("director-1")).await;
    let reply = get(server.address, "/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ok");
    server.shut_down().await;
}

#[tokio::test]
async fn readyz_follows_the_ready_flag() {
    let server = start(Metrics::new("director-1")).await;
    let reply = get(server.address, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.starts_with("not ready"), "{}", reply.body);
    // Liveness does not depend on readiness.
    assert_eq!(get(server.address, "/healthz").await.status, StatusCode::OK);

    server.ready.send(true).unwrap();
    let reply = get(server.address, "/readyz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ready");

    // The agent may withdraw readiness again.
    server.ready.send(false).unwrap();
    assert_eq!(
        get(server.address, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.shut_down().await;
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_text() {
    let metrics = Metrics::new("director-1");
    metrics.reconcile_finished(Duration::from_millis(5), false);
    let server = start(Arc::clone(&metrics)).await;
    let mut client = connect(server.address).await;

    let reply = send(&mut client, Method::GET, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some(OPENMETRICS));
    assert!(
        reply
            .body
            .lines()
            .any(|line| line == "lvs_agent_reconcile_runs_total{result=\"error\"} 1"),
        "{}",
        reply.body
    );
    assert!(reply.body.ends_with("# EOF\n"));

    // Each scrape reads the current values (same keep-alive connection).
    metrics.reconcile_finished(Duration::from_millis(5), false);
    metrics.drift_repaired();
    let reply = send(&mut client, Method::GET, "/metrics").await;
    assert!(
        reply
            .body
            .lines()
            .any(|line| line == "lvs_agent_reconcile_runs_total{result=\"error\"} 2")
    );
    assert!(
        reply
            .body
            .lines()
            .any(|line| line == "lvs_agent_drift_repairs_total 1")
    );

    // HEAD works too (Prometheus never sends it, but curl -I does).
    let reply = send(&mut client, Method::HEAD, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some(OPENMETRICS));
    assert!(reply.body.is_empty());
    drop(client);
    server.shut_down().await;
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let server = start(Metrics::new("director-1")).await;
    for path in ["/", "/metric", "/metrics/extra", "/healthz/", "/favicon.ico"] {
        let reply = get(server.address, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_ends_serve_even_with_an_idle_keep_alive_connection() {
    let server = start(Metrics::new("director-1")).await;
    let address = server.address;
    let mut idle = connect(address).await;
    assert_eq!(
        send(&mut idle, Method::GET, "/healthz").await.status,
        StatusCode::OK
    );
    server.shut_down().await;
    // The listener is closed: new connections are refused.
    assert!(TcpStream::connect(address).await.is_err());
    drop(idle);
}

#[tokio::test]
async fn serve_ends_when_shutdown_is_already_complete() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_ready, ready) = watch::channel(true);
    tokio::time::timeout(
        Duration::from_secs(5),
        serve(listener, Metrics::new("director-1"), ready, async {}),
    )
    .await
    .expect("serve did not return")
    .unwrap();
}
