//! The controller's HTTP endpoints: `/healthz` (liveness), `/readyz` (readiness: every watch
//! has listed its objects once) and `/metrics` (Prometheus, OpenMetrics text); anything else is
//! 404.

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

/// Serves the endpoints on `listener` until `shutdown` completes. `/readyz` answers 200 while
/// `ready` holds `true`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    }
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(encode_metrics))
        .fallback(not_found)
        .with_state(Endpoints { metrics, ready });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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
            "not ready: waiting for the first complete listing of every watched kind",
        )
            .into_response()
    }
}

async fn encode_metrics(State(endpoints): State<Endpoints>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], endpoints.metrics.encode()).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}
