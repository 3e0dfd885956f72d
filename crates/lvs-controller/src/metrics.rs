//! Prometheus metrics of the controller, named `lvs_controller_…`: reconcile runs, their
//! durations and failed API requests, watch errors, leadership, unreadable objects, and the
//! VirtualServers and RealServers by condition status — encoded as OpenMetrics text.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::sync::Arc;
use std::time::Duration;

use lvs_runtime::metrics::{ResultLabels, reconcile_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every metric name.
pub const PREFIX: &str = "lvs_controller";

/// Label set `{operation}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Label set `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Label set `{kind, condition, status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    kind: &'static str,
    condition: String,
    status: String,
}

/// Counts of objects by (kind, condition type, condition status). A handful of keys, kept in a
/// list and found without building one: every object's conditions are counted on every pass.
#[derive(Debug, Default)]
pub struct ConditionCounts(Vec<(&'static str, String, String, i64)>);

impl ConditionCounts {
    /// Counts each of `conditions` of one object of `kind`.
    pub fn add(&mut self, kind: &'static str, conditions: &[Condition]) {
        for condition in conditions {
            let (type_, status) = (condition.type_.as_str(), condition.status.as_str());
            match self.0.iter_mut().find(|(known, known_type, known_status, _)| {
                *known == kind && known_type == type_ && known_status == status
            }) {
                Some((.., count)) => *count += 1,
                None => self.0.push((kind, type_.to_owned(), status.to_owned(), 1)),
            }
        }
    }
}

/// The controller's metrics, shared between the reconcile loop and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile_runs: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    request_errors: Family<OperationLabels, Counter>,
    watch_errors: Family<KindLabels, Counter>,
    leader: Gauge,
    unreadable: Family<KindLabels, Gauge>,
    objects: Family<ConditionLabels, Gauge>,
    node_configs: Gauge,
}

impl Metrics {
    /// Metrics with `lvs_controller_info{version} 1`.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        registry.register(
            PREFIX,
            "The lvs-operator controller",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_owned())]),
        );
        let metrics = Self {
            reconcile_runs: Family::default(),
            reconcile_duration: reconcile_histogram(),
            request_errors: Family::default(),
            watch_errors: Family::default(),
            leader: Gauge::default(),
            unreadable: Family::default(),
            objects: Family::default(),
            node_configs: Gauge::default(),
            registry: Registry::default(),
        };
        let controller = registry.sub_registry_with_prefix(PREFIX);
        controller.register(
            "reconcile_runs",
            "Global reconciles finished, by result",
            metrics.reconcile_runs.clone(),
        );
        controller.register_with_unit(
            "reconcile_duration",
            "Time a global reconcile took",
            Unit::Seconds,
            metrics.reconcile_duration.clone(),
        );
        controller.register(
            "request_errors",
            "API requests that failed, by operation (apply, delete, mirror, status, event)",
            metrics.request_errors.clone(),
        );
        controller.register(
            "watch_errors",
            "Watch failures (each is retried with backoff), by kind",
            metrics.watch_errors.clone(),
        );
        controller.register(
            "leader",
            "1 while this replica holds the leader Lease and writes",
            metrics.leader.clone(),
        );
        controller.register(
            "unreadable_objects",
            "Objects that do not deserialize and are left out, by kind",
            metrics.unreadable.clone(),
        );
        controller.register(
            "objects",
            "VirtualServers and RealServers by condition type and status",
            metrics.objects.clone(),
        );
        controller.register(
            "node_configs",
            "LvsNodeConfig objects the last reconcile wanted (shards count singly)",
            metrics.node_configs.clone(),
        );
        Arc::new(Self { registry, ..metrics })
    }

    /// Records a finished reconcile.
    pub fn reconciled(&self, duration: Duration, success: bool) {
        self.reconcile_runs
            .get_or_create(&ResultLabels::of(success))
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Records a failed API request.
    pub fn request_failed(&self, operation: &'static str) {
        self.request_errors
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    /// Records a watch failure.
    pub fn watch_failed(&self, kind: &'static str) {
        self.watch_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Replaces the unreadable-object counts.
    pub fn set_unreadable(&self, counts: &BTreeMap<&'static str, i64>) {
        self.unreadable.clear();
        for (kind, count) in counts {
            self.unreadable.get_or_create(&KindLabels { kind }).set(*count);
        }
    }

    /// Replaces the objects-by-condition counts and the number of node configs.
    pub fn set_objects(&self, counts: &ConditionCounts, node_configs: usize) {
        self.objects.clear();
        for (kind, condition, status, count) in &counts.0 {
            self.objects
                .get_or_create(&ConditionLabels {
                    kind,
                    condition: condition.clone(),
                    status: status.clone(),
                })
                .set(*count);
        }
        self.node_configs
            .set(i64::try_from(node_configs).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        lvs_runtime::metrics::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_encoded_with_its_labels() {
        let metrics = Metrics::new();
        metrics.reconciled(Duration::from_millis(3), true);
        metrics.request_failed("apply");
        metrics.watch_failed("Node");
        metrics.set_leader(true);
        metrics.set_unreadable(&BTreeMap::from([("VirtualServer", 1)]));
        let ready = Condition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            reason: "Ready".to_owned(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        };
        let mut counts = ConditionCounts::default();
        counts.add("VirtualServer", std::slice::from_ref(&ready));
        counts.add("VirtualServer", &[ready]);
        metrics.set_objects(&counts, 3);
        let text = metrics.encode();
        for line in [
            "lvs_controller_reconcile_runs_total{result=\"success\"} 1",
            "lvs_controller_reconcile_duration_seconds_count 1",
            "lvs_controller_request_errors_total{operation=\"apply\"} 1",
            "lvs_controller_watch_errors_total{kind=\"Node\"} 1",
            "lvs_controller_leader 1",
            "lvs_controller_unreadable_objects{kind=\"VirtualServer\"} 1",
            "lvs_controller_objects{kind=\"VirtualServer\",condition=\"Ready\",status=\"True\"} 2",
            "lvs_controller_node_configs 3",
            "lvs_controller_info{version=",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
