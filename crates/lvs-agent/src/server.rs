//! The agent's HTTP endpoints (lvs-runtime's `/healthz`, `/readyz`, `/metrics`): ready once
//! the first sync has succeeded.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let encode = Arc::new(move || metrics.encode());
    lvs_runtime::serve(listener, encode, ready, "waiting for a successful sync", shutdown).await
}
