//! The one run loop of the agent, for both sources of intent (a folder of manifests, this
//! node's `LvsNodeConfig` watch): it waits for whatever calls for a pass — the intent changed,
//! a real server's health changed, a failover role changed, a failed object is due for a retry,
//! the resync timer, drift found between passes (`drift`) — and runs it. One rule for every source: the intent is read again only
//! on a change (other passes reuse it), and the resync timer restarts after a resync pass or
//! any pass that synced.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use lvs_dataplane::Dataplane;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::node_config::Intent;
use crate::reconciler::{Outcome, Pass, Reconciler};

/// Where the intent comes from, and where the outcome of each pass goes.
pub trait IntentSource {
    /// Resolves when the intent may have changed (and can be read); an error ends the loop.
    fn changed(&mut self) -> impl Future<Output = anyhow::Result<()>>;

    /// Reads the intent: None while it cannot be known yet (no complete listing), an error
    /// when it cannot be read.
    fn load(&mut self) -> Option<Result<Intent, String>>;

    /// Reports a pass (status file, status writes). Returns an exit code to stop the loop
    /// (`--once`).
    fn passed<D: Dataplane>(
        &mut self,
        reconciler: &Reconciler<D>,
        intent: Option<&Intent>,
        outcome: &Outcome,
        pass: Pass,
    ) -> Option<ExitCode>;
}

/// Reconciles from `source` until `shutdown` resolves (or the source says stop). `ready` turns
/// true after the first pass that synced a complete intent.
pub async fn run<D: Dataplane, S: IntentSource>(
    mut reconciler: Reconciler<D>,
    mut source: S,
    resync: Duration,
    ready: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let mut health_changes = reconciler.health().subscribe();
    let mut role_changes = reconciler.failover().map(crate::ha::Failover::subscribe);
    let mut next_resync = Instant::now() + resync;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut cached: Option<Intent> = None;
    let mut pending = Some(Pass::Change);
    let mut drift = crate::drift::DriftWatch::new(reconciler.dataplane().as_ref());
    let mut synced = false;
    loop {
        if let Some(pass) = pending.take() {
            let loaded = match cached.take() {
                Some(intent) if pass != Pass::Change => Some(Ok(intent)),
                _ => source
                    .load()
                    .map(|loaded| loaded.inspect(Intent::report_problems)),
            };
            if let Some(loaded) = loaded {
                let (outcome, intent) = match loaded {
                    Ok(intent) => {
                        drift.pass_started();
                        (reconciler.reconcile(&intent, pass).await, Some(intent))
                    }
                    Err(error) => (unreadable(error), None),
                };
                synced = outcome.synced;
                if let Some(code) = source.passed(&reconciler, intent.as_ref(), &outcome, pass) {
                    return Ok(code);
                }
                if outcome.synced && intent.as_ref().is_some_and(|intent| intent.complete) {
                    ready.send_replace(true);
                }
                if pass == Pass::Resync || outcome.synced {
                    next_resync = Instant::now() + resync;
                }
                cached = intent;
            }
        }
        let retry = reconciler.next_retry();
        pending = Some(tokio::select! {
            changed = source.changed() => {
                changed?;
                Pass::Change
            }
            changed = health_changes.changed() => {
                if changed.is_err() {
                    continue;
                }
                Pass::Health
            }
            () = crate::ha::role_changed(role_changes.as_mut()) => Pass::Failover,
            () = lvs_runtime::sleep_until_some(retry) => Pass::Retry,
            () = tokio::time::sleep_until(next_resync) => Pass::Resync,
            // Drift found between passes (a kernel notification, or IPVS read once a second):
            // repaired now, counted as drift, not left to the next resync.
            () = drift.drifted(&reconciler, synced) => Pass::Resync,
            () = &mut shutdown => {
                // Stopping is a restart as far as the peers know: the VIPs stay in the kernel
                // and the next run of the agent takes them up again.
                if let Some(failover) = reconciler.failover() {
                    failover.restarting().await;
                }
                return Ok(ExitCode::SUCCESS);
            }
        });
    }
}

/// The outcome of a pass whose intent could not be read.
fn unreadable(error: String) -> Outcome {
    tracing::error!("reading the intent: {error}");
    Outcome {
        failures: vec![crate::reconciler::Failure {
            object: crate::reconciler::FailedObject::Manifests,
            message: error,
            reason: None,
            vip: None,
        }],
        ..Outcome::default()
    }
}
