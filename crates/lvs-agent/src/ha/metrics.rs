//! Failover metrics: elections by outcome, failover durations, each VIP's role, duplicate VIP
//! owners seen, rejected heartbeats and the connections a director holds for its failover VIPs.

use std::net::IpAddr;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Label set `{vip, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ElectionLabels {
    vip: String,
    outcome: &'static str,
}

/// Label set `{vip}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipLabels {
    vip: String,
}

/// Label set `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The failover metrics, registered under the agent's prefix.
#[derive(Debug, Clone)]
pub struct FailoverMetrics {
    elections: Family<ElectionLabels, Counter>,
    duration: Histogram,
    role: Family<VipLabels, Gauge>,
    duplicate: Family<VipLabels, Gauge>,
    rejected: Family<ReasonLabels, Counter>,
    connections: Gauge,
    stalls: Counter,
    inconclusive_probes: Counter,
}

impl FailoverMetrics {
    /// Creates the metrics and registers them in `registry` (already prefixed).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            elections: Family::default(),
            // 10 ms to about 40 s.
            duration: Histogram::new(exponential_buckets(0.01, 2.0, 13)),
            role: Family::default(),
            duplicate: Family::default(),
            rejected: Family::default(),
            connections: Gauge::default(),
            stalls: Counter::default(),
            inconclusive_probes: Counter::default(),
        };
        registry.register(
            "failover_elections",
            "Election decisions of this node, by VIP and outcome (take_over, step_down)",
            metrics.elections.clone(),
        );
        registry.register_with_unit(
            "failover_duration",
            "From the last heartbeat of the previous holder to the first gratuitous ARP / NA, per takeover",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register(
            "failover_active",
            "1 while this node holds the failover VIP, 0 while standby",
            metrics.role.clone(),
        );
        registry.register(
            "duplicate_vip",
            "1 while another host answered ARP/NDP for the VIP at the last probe",
            metrics.duplicate.clone(),
        );
        registry.register(
            "heartbeats_rejected",
            "Heartbeat datagrams not accepted, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "sync_connections",
            "IPVS connection entries this director holds for its failover VIPs",
            metrics.connections.clone(),
        );
        registry.register(
            "failover_stalls",
            "Times the failover task woke a heartbeat interval or more later than planned (the peers' silence meanwhile was not counted)",
            metrics.stalls.clone(),
        );
        registry.register(
            "failover_probes_inconclusive",
            "Probes of a silent holder's VIP that found nobody answering but took much longer than their wait (this node did not run for part of it): not taken as the holder gone",
            metrics.inconclusive_probes.clone(),
        );
        metrics
    }

    /// An election decision: took the VIP over (`true`) or stepped down.
    pub fn election(&self, vip: IpAddr, took_over: bool) {
        let outcome = if took_over { "take_over" } else { "step_down" };
        self.elections
            .get_or_create(&ElectionLabels {
                vip: vip.to_string(),
                outcome,
            })
            .inc();
        self.role
            .get_or_create(&VipLabels { vip: vip.to_string() })
            .set(i64::from(took_over));
    }

    /// `vip` is no longer a failover VIP of this node: its series (elections, role, duplicate)
    /// go with it.
    pub fn forget_vip(&self, vip: IpAddr) {
        let vip = vip.to_string();
        for outcome in ["take_over", "step_down"] {
            self.elections.remove(&ElectionLabels {
                vip: vip.clone(),
                outcome,
            });
        }
        self.role.remove(&VipLabels { vip: vip.clone() });
        self.duplicate.remove(&VipLabels { vip });
    }

    /// A takeover finished (announced) after `duration`.
    pub fn failover_completed(&self, duration: Duration) {
        self.duration.observe(duration.as_secs_f64());
    }

    /// Whether the last probe found another owner of `vip`.
    pub fn duplicate_vip(&self, vip: IpAddr, found: bool) {
        self.duplicate
            .get_or_create(&VipLabels { vip: vip.to_string() })
            .set(i64::from(found));
    }

    /// A heartbeat was not accepted.
    pub fn heartbeat_rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The failover task woke much later than planned.
    pub fn stalled(&self) {
        self.stalls.inc();
    }

    /// A probe that found nobody took too long to be believed.
    pub fn inconclusive_probe(&self) {
        self.inconclusive_probes.inc();
    }

    /// Connections held for failover VIPs.
    pub fn sync_connections(&self, count: u64) {
        self.connections.set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}
