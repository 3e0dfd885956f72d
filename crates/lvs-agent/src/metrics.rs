//! Prometheus metrics of the agent: reconcile runs, kernel operations, drift repairs, health
//! checks, and the IPVS counters of the services this agent owns, encoded as OpenMetrics text.
//!
//! Every metric is named `lvs_agent_…`. The agent's own counters and histograms live in a
//! [`Registry`]; what is labelled with an object — the health checks and health of each real
//! server, the IPVS counters of each service — lives in state the agent prunes, exposed by
//! collectors at scrape time, so a real server or service that is gone vanishes from the output
//! instead of lingering with its last value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lvs_dataplane::Op;
use lvs_dataplane::dataplane::ServiceStats;
use lvs_dataplane::model::{AddressFamily, ServiceKey, Stats};
use lvs_runtime::metrics::{ResultLabels, reconcile_histogram};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every metric name.
pub const PREFIX: &str = "lvs_agent";

/// The content type of [`Metrics::encode`]'s output.
pub use lvs_runtime::OPENMETRICS_CONTENT_TYPE as CONTENT_TYPE;

/// Label set `{kind, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: &'static str,
    result: &'static str,
}

/// Label set `{check}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

fn result(success: bool) -> &'static str {
    ResultLabels::of(success).result
}

/// Locks a snapshot; a panic elsewhere while holding the lock leaves a snapshot that is still
/// whole (every writer replaces or edits it in one step), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Health-check latencies: 0.5 ms to about 8 s.
fn health_check_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// The agent's metrics, shared as `Arc<Metrics>` between the reconcile loop, the health
/// checkers and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile_runs: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    kernel_operations: Family<OperationLabels, Counter>,
    drift_repairs: Counter,
    health_check_duration: Family<CheckLabels, Histogram, fn() -> Histogram>,
    real_servers: Arc<RealServerSeries>,
    ipvs: Arc<IpvsSnapshot>,
    /// Failover: elections, durations, roles, duplicates, heartbeats, synced connections.
    pub failover: crate::ha::metrics::FailoverMetrics,
}

impl Metrics {
    /// Metrics of the agent on `node`, with `lvs_agent_info{node, version} 1`.
    pub fn new(node: &str) -> Arc<Self> {
        let mut registry = Registry::default();
        registry.register(
            PREFIX,
            "The lvs-operator node agent on this node",
            Info::new(vec![
                ("node", node.to_owned()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        );
        let reconcile_runs = Family::<ResultLabels, Counter>::default();
        let reconcile_duration = reconcile_histogram();
        let kernel_operations = Family::<OperationLabels, Counter>::default();
        let drift_repairs = Counter::default();
        let health_check_duration: Family<CheckLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(health_check_histogram);
        let real_servers = Arc::new(RealServerSeries::default());
        let ipvs = Arc::new(IpvsSnapshot::default());

        let agent = registry.sub_registry_with_prefix(PREFIX);
        agent.register(
            "reconcile_runs",
            "Reconcile passes finished, by result",
            reconcile_runs.clone(),
        );
        agent.register_with_unit(
            "reconcile_duration",
            "Time a reconcile pass took",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        agent.register(
            "kernel_operations",
            "Changes applied to the kernel, by kind and result",
            kernel_operations.clone(),
        );
        agent.register(
            "drift_repairs",
            "Passes that found kernel state changed behind the agent's back and put it back",
            drift_repairs.clone(),
        );
        agent.register_with_unit(
            "health_check_duration",
            "Time a health check took, by check",
            Unit::Seconds,
            health_check_duration.clone(),
        );
        agent.register_collector(Box::new(Arc::clone(&real_servers)));
        agent.register_collector(Box::new(Arc::clone(&ipvs)));
        let failover = crate::ha::metrics::FailoverMetrics::register(agent);

        Arc::new(Self {
            registry,
            reconcile_runs,
            reconcile_duration,
            kernel_operations,
            drift_repairs,
            health_check_duration,
            real_servers,
            ipvs,
            failover,
        })
    }

    /// Records a finished reconcile pass: `reconcile_runs_total{result}` and
    /// `reconcile_duration_seconds`.
    pub fn reconcile_finished(&self, duration: Duration, success: bool) {
        self.reconcile_runs
            .get_or_create(&ResultLabels::of(success))
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Records applied kernel operations, each as its kind (see [`op_kind`]) and whether it
    /// succeeded: `kernel_operations_total{kind, result}`.
    pub fn kernel_operations(&self, applied: &[(&'static str, bool)]) {
        for &(kind, success) in applied {
            self.kernel_operations
                .get_or_create(&OperationLabels {
                    kind,
                    result: result(success),
                })
                .inc();
        }
    }

    /// Records a pass that repaired drift: `drift_repairs_total`.
    pub fn drift_repaired(&self) {
        self.drift_repairs.inc();
    }

    /// Records one health check of `real_server` for `virtual_server` (`namespace/name` of
    /// each): `health_checks_total{virtual_server, real_server, check, result}` and
    /// `health_check_duration_seconds{check}`.
    pub fn health_check(
        &self,
        virtual_server: &str,
        real_server: &str,
        check: &str,
        success: bool,
        latency: Duration,
    ) {
        *lock(&self.real_servers.pairs)
            .entry((virtual_server.to_owned(), real_server.to_owned()))
            .or_default()
            .checks
            .entry((check.to_owned(), result(success)))
            .or_default() += 1;
        self.health_check_duration
            .get_or_create(&CheckLabels {
                check: check.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Sets `real_server_healthy{virtual_server, real_server}` to 1 or 0; `None` (not known,
    /// or no longer checked) removes that series (its health-check counts stay until the pair
    /// is gone: [`Metrics::retain_real_servers`]).
    pub fn real_server_health(&self, virtual_server: &str, real_server: &str, healthy: Option<bool>) {
        let mut pairs = lock(&self.real_servers.pairs);
        let key = (virtual_server.to_owned(), real_server.to_owned());
        match healthy {
            Some(healthy) => pairs.entry(key).or_default().healthy = Some(healthy),
            None => {
                if let Some(series) = pairs.get_mut(&key) {
                    series.healthy = None;
                }
            }
        }
    }

    /// Keeps every series labelled with a real server — `real_server_healthy` and
    /// `health_checks_total` — only for these `(virtual_server, real_server)` pairs: a real
    /// server or virtual server that is gone leaves no series behind.
    pub fn retain_real_servers(&self, keep: &BTreeSet<(String, String)>) {
        lock(&self.real_servers.pairs).retain(|key, _| keep.contains(key));
    }

    /// Replaces the IPVS counters with these, naming each service's virtual server
    /// (`namespace/name`) with `names`; services not in `stats` disappear from the output.
    pub fn ipvs_stats(&self, stats: &[ServiceStats], names: &dyn Fn(&ServiceKey) -> Option<String>) {
        let services = stats
            .iter()
            .map(|service| ServiceSnapshot {
                service: service_label(&service.key),
                virtual_server: names(&service.key).unwrap_or_default(),
                totals: service.totals,
                destinations: service
                    .destinations
                    .iter()
                    .map(|(address, port, stats, active, inactive)| DestinationSnapshot {
                        destination: endpoint_label(address, *port),
                        stats: *stats,
                        active: *active,
                        inactive: *inactive,
                    })
                    .collect(),
            })
            .collect();
        *lock(&self.ipvs.services) = services;
    }

    /// Every metric as OpenMetrics text (see [`CONTENT_TYPE`]), ending in `# EOF`.
    pub fn encode(&self) -> String {
        lvs_runtime::metrics::encode(&self.registry)
    }
}

/// The kind of a kernel operation, as the `kind` label of `kernel_operations_total`.
pub fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::AddLink(_) => "add_link",
        Op::DeleteLink(_) => "delete_link",
        Op::SetSysctl(_) => "set_sysctl",
        Op::RestoreSysctl(_) => "restore_sysctl",
        Op::ReplaceNftables(_) => "nft_apply",
        Op::DeleteNftables => "nft_delete",
        Op::AddService(_) => "add_service",
        Op::UpdateService(_) => "edit_service",
        Op::DeleteService(_) => "delete_service",
        Op::AddDestination(..) => "add_destination",
        Op::UpdateDestination(..) => "edit_destination",
        Op::DeleteDestination(..) => "delete_destination",
        Op::AddAddress(_) => "add_address",
        Op::DeleteAddress(_) => "delete_address",
        Op::Announce { .. } => "announce",
        Op::StartSyncDaemon(..) => "start_sync_daemon",
        Op::StopSyncDaemon(_) => "stop_sync_daemon",
    }
}

/// A service as the `service` label: `10.0.0.1:80/TCP`, `[2001:db8::1]:53/UDP`,
/// `fwmark:104/IPv4` (the family is part of a fwmark service's identity, so it is kept).
pub fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Address {
            address,
            port,
            protocol,
        } => format!("{}/{}", endpoint_label(address, *port), protocol.as_str()),
        ServiceKey::Fwmark { family, mark } => {
            let family = match family {
                AddressFamily::IPv4 => "IPv4",
                AddressFamily::IPv6 => "IPv6",
            };
            format!("fwmark:{mark}/{family}")
        }
    }
}

/// An address and port as a label: `10.0.0.11:80`, `[2001:db8::11]:80`.
fn endpoint_label(address: &IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(address) => format!("{address}:{port}"),
        IpAddr::V6(address) => format!("[{address}]:{port}"),
    }
}

/// What the metrics say about one `(virtual_server, real_server)` pair.
#[derive(Debug, Default)]
struct RealServerEntry {
    /// `real_server_healthy`, as last set; `None`: no series.
    healthy: Option<bool>,
    /// `health_checks_total` by `(check, result)`.
    checks: BTreeMap<(String, &'static str), u64>,
}

/// Every series labelled with a real server, one entry per `(virtual_server, real_server)`
/// pair, so removing the pair removes all of them.
#[derive(Debug, Default)]
struct RealServerSeries {
    pairs: Mutex<BTreeMap<(String, String), RealServerEntry>>,
}

impl Collector for RealServerSeries {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pairs = lock(&self.pairs);
        let labels = |(virtual_server, real_server): &(String, String)| {
            [
                ("virtual_server", virtual_server.clone()),
                ("real_server", real_server.clone()),
            ]
        };
        let checks: Vec<_> = pairs
            .iter()
            .flat_map(|(pair, entry)| {
                entry.checks.iter().map(move |((check, result), count)| {
                    let [virtual_server, real_server] = labels(pair);
                    (
                        [
                            virtual_server,
                            real_server,
                            ("check", check.clone()),
                            ("result", (*result).to_owned()),
                        ],
                        ConstCounter::new(*count),
                    )
                })
            })
            .collect();
        if !checks.is_empty() {
            family(
                &mut encoder,
                "health_checks",
                "Health checks of real servers, by virtual server, real server, check and result.",
                MetricType::Counter,
                checks,
            )?;
        }
        let health: Vec<_> = pairs
            .iter()
            .filter_map(|(pair, entry)| {
                entry
                    .healthy
                    .map(|healthy| (labels(pair), ConstGauge::new(i64::from(healthy))))
            })
            .collect();
        if !health.is_empty() {
            family(
                &mut encoder,
                "real_server_healthy",
                "Whether a real server passes its virtual server's health checks (1) or not (0).",
                MetricType::Gauge,
                health,
            )?;
        }
        Ok(())
    }
}

/// One service's counters, labelled.
#[derive(Debug)]
struct ServiceSnapshot {
    service: String,
    virtual_server: String,
    totals: Stats,
    destinations: Vec<DestinationSnapshot>,
}

impl ServiceSnapshot {
    /// `{service, virtual_server}`.
    fn labels(&self) -> Labels<'_, 2> {
        [
            ("service", self.service.as_str()),
            ("virtual_server", self.virtual_server.as_str()),
        ]
    }

    /// `{service, virtual_server, direction}`.
    fn directed(&self, direction: &'static str) -> Labels<'_, 3> {
        let [service, virtual_server] = self.labels();
        [service, virtual_server, ("direction", direction)]
    }

    /// `{service, virtual_server, destination}`.
    fn destination_labels<'a>(&'a self, destination: &'a DestinationSnapshot) -> Labels<'a, 3> {
        let [service, virtual_server] = self.labels();
        [
            service,
            virtual_server,
            ("destination", destination.destination.as_str()),
        ]
    }

    /// `{service, virtual_server, destination, direction}`.
    fn destination_directed<'a>(
        &'a self,
        destination: &'a DestinationSnapshot,
        direction: &'static str,
    ) -> Labels<'a, 4> {
        let [service, virtual_server, destination] = self.destination_labels(destination);
        [service, virtual_server, destination, ("direction", direction)]
    }
}

/// One destination's counters, labelled.
#[derive(Debug)]
struct DestinationSnapshot {
    destination: String,
    stats: Stats,
    active: u32,
    inactive: u32,
}

/// The IPVS counters of our services, as last read from the kernel.
#[derive(Debug, Default)]
struct IpvsSnapshot {
    services: Mutex<Vec<ServiceSnapshot>>,
}

/// Writes one metric family: its descriptor, then a sample per `(labels, value)`. (Unlike
/// `Registry::register`, a descriptor does not end the help text with a full stop for us.)
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

impl Collector for IpvsSnapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let services = lock(&self.services);
        if services.is_empty() {
            return Ok(());
        }
        family(
            &mut encoder,
            "ipvs_service_connections",
            "Connections an IPVS service has scheduled.",
            MetricType::Counter,
            services
                .iter()
                .map(|service| (service.labels(), ConstCounter::new(service.totals.connections))),
        )?;
        family(
            &mut encoder,
            "ipvs_service_packets",
            "Packets through an IPVS service, by direction.",
            MetricType::Counter,
            services.iter().flat_map(|service| {
                [
                    (
                        service.directed("in"),
                        ConstCounter::new(service.totals.incoming_packets),
                    ),
                    (
                        service.directed("out"),
                        ConstCounter::new(service.totals.outgoing_packets),
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "ipvs_service_bytes",
            "Bytes through an IPVS service, by direction.",
            MetricType::Counter,
            services.iter().flat_map(|service| {
                [
                    (
                        service.directed("in"),
                        ConstCounter::new(service.totals.incoming_bytes),
                    ),
                    (
                        service.directed("out"),
                        ConstCounter::new(service.totals.outgoing_bytes),
                    ),
                ]
            }),
        )?;

        let destinations = || {
            services.iter().flat_map(|service| {
                service
                    .destinations
                    .iter()
                    .map(move |destination| (service, destination))
            })
        };
        if destinations().next().is_none() {
            return Ok(());
        }
        family(
            &mut encoder,
            "ipvs_destination_connections",
            "Connections an IPVS service has scheduled to a destination.",
            MetricType::Counter,
            destinations().map(|(service, destination)| {
                (
                    service.destination_labels(destination),
                    ConstCounter::new(destination.stats.connections),
                )
            }),
        )?;
        family(
            &mut encoder,
            "ipvs_destination_packets",
            "Packets between an IPVS service and a destination, by direction.",
            MetricType::Counter,
            destinations().flat_map(|(service, destination)| {
                [
                    (
                        service.destination_directed(destination, "in"),
                        ConstCounter::new(destination.stats.incoming_packets),
                    ),
                    (
                        service.destination_directed(destination, "out"),
                        ConstCounter::new(destination.stats.outgoing_packets),
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "ipvs_destination_bytes",
            "Bytes between an IPVS service and a destination, by direction.",
            MetricType::Counter,
            destinations().flat_map(|(service, destination)| {
                [
                    (
                        service.destination_directed(destination, "in"),
                        ConstCounter::new(destination.stats.incoming_bytes),
                    ),
                    (
                        service.destination_directed(destination, "out"),
                        ConstCounter::new(destination.stats.outgoing_bytes),
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "ipvs_destination_active_connections",
            "Established connections of a destination.",
            MetricType::Gauge,
            destinations().map(|(service, destination)| {
                (
                    service.destination_labels(destination),
                    ConstGauge::new(destination.active),
                )
            }),
        )?;
        family(
            &mut encoder,
            "ipvs_destination_inactive_connections",
            "Connections of a destination in any other state (e.g. TIME_WAIT, FIN_WAIT).",
            MetricType::Gauge,
            destinations().map(|(service, destination)| {
                (
                    service.destination_labels(destination),
                    ConstGauge::new(destination.inactive),
                )
            }),
        )
    }
}
