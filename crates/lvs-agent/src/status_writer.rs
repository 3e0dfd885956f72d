//! Writes `LvsNodeConfig` statuses from a task of its own, so the reconcile loop never waits on
//! the API server: an unreachable API server delays status reports, never a pass (a failover
//! above all). The loop hands over the statuses that changed; the latest one per shard wins;
//! failed writes are retried every second until written or superseded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use lvs_api::labels::AGENT_FIELD_MANAGER;
use lvs_api::{LvsNodeConfig, LvsNodeConfigStatus};
use tokio::sync::watch;

/// How long one status write may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time between retries of failed writes.
const RETRY: Duration = Duration::from_secs(1);

/// Handle to the writer task.
pub struct StatusWriter {
    pending: watch::Sender<BTreeMap<String, LvsNodeConfigStatus>>,
    written: Arc<Mutex<BTreeMap<String, LvsNodeConfigStatus>>>,
}

impl StatusWriter {
    /// Starts the writer for `api`.
    pub fn start(api: Api<LvsNodeConfig>) -> Self {
        let (pending, receiver) = watch::channel(BTreeMap::new());
        let written = Arc::new(Mutex::new(BTreeMap::new()));
        tokio::spawn(write_loop(api, receiver, Arc::clone(&written)));
        Self { pending, written }
    }

    /// The status last written for each shard.
    pub fn written(&self) -> BTreeMap<String, LvsNodeConfigStatus> {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets shards that no longer exist.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, _| keep(name));
    }

    /// Statuses to write (every shard whose status differs from what was written), replacing
    /// what is still waiting.
    pub fn write(&self, statuses: BTreeMap<String, LvsNodeConfigStatus>) {
        self.pending.send_replace(statuses);
    }
}

async fn write_loop(
    api: Api<LvsNodeConfig>,
    mut pending: watch::Receiver<BTreeMap<String, LvsNodeConfigStatus>>,
    written: Arc<Mutex<BTreeMap<String, LvsNodeConfigStatus>>>,
) {
    let mut failed: BTreeMap<String, LvsNodeConfigStatus> = BTreeMap::new();
    loop {
        let batch = if failed.is_empty() {
            if pending.changed().await.is_err() {
                return;
            }
            pending.borrow_and_update().clone()
        } else {
            tokio::select! {
                changed = pending.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    pending.borrow_and_update().clone()
                }
                () = tokio::time::sleep(RETRY) => std::mem::take(&mut failed),
            }
        };
        failed.clear();
        for (name, status) in batch {
            let patch = serde_json::json!({
                "apiVersion": "lvs.operator.io/v1alpha1",
                "kind": "LvsNodeConfig",
                "status": status,
            });
            let params = PatchParams::apply(AGENT_FIELD_MANAGER).force();
            let result = tokio::time::timeout(
                WRITE_TIMEOUT,
                api.patch_status(&name, &params, &Patch::Apply(&patch)),
            )
            .await;
            match result {
                Ok(Ok(_)) => {
                    written
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(name, status);
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, config = %name, "cannot write the LvsNodeConfig status; will retry");
                    failed.insert(name, status);
                }
                Err(_) => {
                    tracing::warn!(config = %name, "writing the LvsNodeConfig status timed out; will retry");
                    failed.insert(name, status);
                }
            }
        }
    }
}
