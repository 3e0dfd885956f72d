//! The HTTP endpoints of both binaries: `/healthz` (liveness), `/readyz` (200 while the
//! binary says it is ready, else 503 with its reason) and `/metrics` (OpenMetrics text from the
//! binary's registry); anything else is 404.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the handlers share.
#[derive(Clone)]
struct Endpoints {
    encode: Arc<dyn Fn() -> String + Send + Sync>,
    ready: watch::Receiver<bool>,
    not_ready: &'static str,
}

/// Serves the endpoints on `listener` until `shutdown` completes, then finishes the requests in
/// flight and returns. `/metrics` answers `encode()`; `/readyz` answers 200 while `ready` holds
/// `true`, else 503 `not ready: <not_ready>`.
pub async fn serve(
    listener: TcpListener,
    encode: Arc<dyn Fn() -> String + Send + Sync>,
    ready: watch::Receiver<bool>,
    not_ready: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    }
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(Endpoints {
            encode,
            ready,
            not_ready,
        });
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
            format!("not ready: {}", endpoints.not_ready),
        )
            .into_response()
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        (endpoints.encode)(),
    )
        .into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}
