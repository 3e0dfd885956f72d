//! The HTTP endpoints on a loopback port: `/healthz` always answers, `/readyz` only once every
//! watch has listed, `/metrics` serves OpenMetrics text, anything else is 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lvs_controller::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// One HTTP/1.1 GET; returns the status code and the body.
async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (code, body)
}

#[tokio::test]
async fn probes_and_metrics_are_served() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    metrics.set_leader(true);
    let (ready, ready_receiver) = watch::channel(false);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(lvs_controller::server::serve(
        listener,
        metrics,
        ready_receiver,
        async {
            let _ = stopped.await;
        },
    ));

    assert_eq!(get(address, "/healthz").await, (200, "ok".to_owned()));
    let (code, body) = get(address, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    ready.send_replace(true);
    assert_eq!(get(address, "/readyz").await, (200, "ready".to_owned()));
    let (code, body) = get(address, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains("lvs_controller_leader 1"), "{body}");
    assert_eq!(get(address, "/nothing").await.0, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
