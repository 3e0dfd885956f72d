//! `lvs-agent` as a library: the parts of the node agent, so the binary stays thin and the
//! integration tests drive the same code (reconcile against a fake dataplane, Kubernetes mode
//! against a mock API server).

pub mod access;
pub mod desired;
pub mod drift;
pub mod ha;
pub mod health;
pub mod kubernetes;
pub mod metrics;
pub mod node_config;
pub mod reconciler;
pub mod run_loop;
pub mod server;
pub mod standalone;
pub mod status;
pub mod status_writer;

use std::sync::Arc;
use std::time::Duration;

use lvs_api::HealthCheckType;
use lvs_dataplane::Dataplane;

use crate::health::{ProbeObserver, ProbeOutcome};
use crate::metrics::Metrics;
use crate::reconciler::ServiceNames;

pub use lvs_runtime::shutdown_signal;

/// Health-check results into the metrics.
struct MetricsObserver(Arc<Metrics>);

impl ProbeObserver for MetricsObserver {
    fn probed(
        &self,
        virtual_server: &str,
        real_server: &str,
        check: HealthCheckType,
        outcome: &ProbeOutcome,
    ) {
        let check = match check {
            HealthCheckType::Tcp => "tcp",
            HealthCheckType::Http => "http",
            HealthCheckType::Https => "https",
            HealthCheckType::Dns => "dns",
            HealthCheckType::None => "none",
        };
        self.0.health_check(
            virtual_server,
            real_server,
            check,
            outcome.success,
            outcome.latency,
        );
    }
}

/// The observer that counts health-check results in `metrics`.
pub fn metrics_observer(metrics: &Arc<Metrics>) -> Arc<dyn ProbeObserver> {
    Arc::new(MetricsObserver(Arc::clone(metrics)))
}

/// Copies the kernel's IPVS counters into the metrics every `period`.
pub async fn refresh_ipvs_metrics<D: Dataplane>(
    dataplane: Arc<D>,
    metrics: Arc<Metrics>,
    names: ServiceNames,
    period: Duration,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match dataplane.stats().await {
            Ok(stats) => {
                let names = names.read().map(|names| names.clone()).unwrap_or_default();
                metrics.ipvs_stats(&stats, &|key| names.get(key).cloned());
            }
            Err(error) => tracing::warn!(%error, "cannot read the IPVS counters"),
        }
    }
}
