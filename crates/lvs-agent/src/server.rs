//! The agent's HTTP endpoints: `/healthz` (liveness), `/readyz` (readiness: the first sync has
//! succeeded) and `/metrics` (Prometheus, OpenMetrics text); anything else is 404.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// What the handlers share.
#[derive(Clone)]
struct Endpoints {
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
}

/// Serves the endpoints on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns. `ready` turns `/readyz` to 200 while it holds `true` (the agent sets it
/// after its first successful sync).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    }
    axum::serve(listener, router(Endpoints { metrics, ready }))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(endpoints)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(endpoints): State<Endpoints>) -> Response {
    if *endpoints.ready.borrow() {
        "ready".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: waiting for a successful sync",
        )
            .into_response()
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], endpoints.metrics.encode()).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}
