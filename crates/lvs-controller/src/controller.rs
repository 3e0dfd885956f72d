//! The reconcile loop. The build is global, so instead of one controller per kind there is one
//! debounced global reconcile: any change a watch reports schedules a pass a short debounce
//! later, and changes arriving meanwhile join it. Nothing runs before every watch has listed
//! once (an empty store would read as "delete every node config"), nor while another replica
//! leads. A pass whose requests failed is retried after 100 ms, doubling up to a minute, and
//! never sooner however many changes arrive; a periodic resync re-derives everything.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::Publisher;
use crate::metrics::Metrics;
use crate::reconcile::{ReconcileError, Reconciler};
use crate::watch::{Change, Watched};

/// How [`run`] behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long after a change the pass starts.
    pub debounce: Duration,
    /// Time between passes with no change.
    pub resync: Duration,
    /// This replica's name in Events (its pod name).
    pub instance: Option<String>,
    /// Cluster-wide settings for the build (Service networks, fwmark mask).
    pub settings: lvs_core::ClusterSettings,
    /// Which LoadBalancer Services are ours (default: only those of class
    /// `lvs.operator.io/ipvs`).
    pub service_class: lvs_core::service::ServiceClass,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
            resync: Duration::from_secs(300),
            instance: None,
            settings: lvs_core::ClusterSettings::default(),
            service_class: lvs_core::service::ServiceClass::default(),
        }
    }
}

/// The first retry delay after a failed pass.
pub const INITIAL_BACKOFF: Duration = lvs_runtime::backoff::INITIAL;
/// The longest retry delay.
pub const MAXIMUM_BACKOFF: Duration = lvs_runtime::backoff::MAXIMUM;

/// Retry delays of failing passes: the shared per-object backoff with the pass as the one
/// object — 100 ms, doubling to a minute; reset by a pass that succeeds.
#[derive(Debug, Default)]
pub struct Backoff(lvs_runtime::backoff::Backoff);

/// The backoff's name for the pass.
const PASS: &str = "pass";

impl Backoff {
    /// Records a failed pass at `now`; returns the delay until the retry.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.0.record([PASS], now);
        self.0.delay_of(PASS).unwrap_or(INITIAL_BACKOFF)
    }

    /// Records a pass that succeeded.
    pub fn succeeded(&mut self) {
        self.0.reset();
    }

    /// The earliest time a pass may start, wanted at `wanted`.
    pub fn earliest(&self, wanted: Instant) -> Instant {
        self.0.next_retry().map_or(wanted, |due| wanted.max(due))
    }
}

/// Watches, and reconciles while `leader` holds `true`, until `shutdown` resolves. `ready`
/// turns `true` once every watch has listed its objects.
pub async fn run(
    client: Client,
    options: Options,
    mut leader: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    ready: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stores, mut changes) = crate::watch::watch(&client);
    let publisher = Publisher::new(client.clone(), options.instance.clone());
    let mut reconciler = Reconciler::new(client, publisher, Arc::clone(&metrics), options.settings.clone())
        .serving(options.service_class);
    let mut listed = BTreeSet::new();
    let mut due: Option<Instant> = None;
    let mut backoff = Backoff::default();
    let mut next_resync = Instant::now() + options.resync;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut election_running = true;
    metrics.set_leader(*leader.borrow_and_update());
    loop {
        let runnable = listed.len() == Watched::ALL.len() && *leader.borrow();
        let wake = due.filter(|_| runnable);
        tokio::select! {
            change = changes.next() => {
                let schedule = match change {
                    Some(Change::Listed(kind)) => {
                        listed.insert(kind);
                        if listed.len() == Watched::ALL.len() && !*ready.borrow() {
                            tracing::info!("every watch has listed its objects");
                            ready.send_replace(true);
                        }
                        true
                    }
                    Some(Change::Changed(_)) => true,
                    Some(Change::Failed(kind, error)) => {
                        tracing::warn!(%error, %kind, "watch failed; retrying with backoff");
                        metrics.watch_failed(kind.kind());
                        false
                    }
                    None => anyhow::bail!("the watches ended"),
                };
                if schedule {
                    let at = backoff.earliest(Instant::now() + options.debounce);
                    due = Some(due.map_or(at, |due| due.min(at)));
                }
            }
            changed = leader.changed(), if election_running => {
                if changed.is_err() {
                    // The election ends only at shutdown, after stepping down.
                    tracing::info!("leader election stopped");
                    election_running = false;
                    continue;
                }
                let leading = *leader.borrow_and_update();
                metrics.set_leader(leading);
                if leading {
                    tracing::info!("leading: reconciling everything");
                    reconciler.forget();
                    due = Some(backoff.earliest(Instant::now()));
                } else {
                    tracing::info!("not leading: standing by");
                }
            }
            () = lvs_runtime::sleep_until_some(wake) => {
                due = None;
                let snapshot = stores.snapshot();
                let started = Instant::now();
                let result = reconciler.reconcile(&snapshot, &leader).await;
                let elapsed = started.elapsed();
                match result {
                    Ok(summary) => {
                        backoff.succeeded();
                        metrics.reconciled(elapsed, true);
                        tracing::debug!(?summary, ?elapsed, "reconciled");
                    }
                    Err(ReconcileError::NotLeader) => {
                        tracing::info!("stopped a pass: no longer leading");
                    }
                    Err(error) => {
                        let delay = backoff.failed(Instant::now());
                        metrics.reconciled(elapsed, false);
                        tracing::warn!(%error, retry_in = ?delay, "reconcile failed");
                        due = Some(Instant::now() + delay);
                    }
                }
                next_resync = Instant::now() + options.resync;
            }
            () = tokio::time::sleep_until(next_resync) => {
                next_resync = Instant::now() + options.resync;
                reconciler.forget();
                let at = backoff.earliest(Instant::now());
                due = Some(due.map_or(at, |due| due.min(at)));
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_wait_longer_each_time_up_to_a_minute_and_success_resets() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        assert_eq!(backoff.earliest(now), now);
        assert_eq!(backoff.failed(now), INITIAL_BACKOFF);
        assert_eq!(
            backoff.earliest(now),
            now + INITIAL_BACKOFF,
            "changes cannot cut the wait short"
        );
        assert_eq!(backoff.failed(now), INITIAL_BACKOFF * 2);
        for _ in 0..20 {
            backoff.failed(now);
        }
        assert_eq!(backoff.failed(now), MAXIMUM_BACKOFF);
        backoff.succeeded();
        assert_eq!(backoff.earliest(now), now);
        assert_eq!(backoff.failed(now), INITIAL_BACKOFF);
    }
}
