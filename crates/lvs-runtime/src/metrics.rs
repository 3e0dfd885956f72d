//! What the agent's and the controller's metrics have in common: the `{result}` label of their
//! reconcile counters, the buckets of their reconcile-duration histograms, and OpenMetrics
//! encoding of a registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set `{result}`: `success` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `error`.
    pub result: &'static str,
}

impl ResultLabels {
    /// The label for an outcome.
    pub fn of(success: bool) -> Self {
        Self {
            result: if success { "success" } else { "error" },
        }
    }
}

/// Reconcile durations: 1 ms to about 33 s.
pub fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of `registry` as OpenMetrics text, ending in `# EOF`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(%error, "encoding the metrics failed");
    }
    text
}
