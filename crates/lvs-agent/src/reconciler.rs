//! One reconcile pass, the same in both modes: intent + health → desired kernel state →
//! observe → plan → apply → outcome (what was done, what failed and for which object). Pruning
//! happens only through the plan, which covers only what the ownership record says is ours,
//! and only when the intent is complete.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lvs_dataplane::desired::service_key;
use lvs_dataplane::model::{NodeState, SyncRole};
use lvs_dataplane::{Dataplane, Op, plan};
use tokio::time::Instant;

use crate::ha::{self, Failover};
use crate::health::HealthMonitor;
use crate::metrics::{Metrics, op_kind};
use crate::node_config::Intent;
use lvs_runtime::backoff::Backoff;

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The intent changed: operations are expected.
    Change,
    /// Only the health of real servers changed: only IPVS services are read and changed (a
    /// quick pass, so a failed real server stops getting connections within one pass of the
    /// verdict; everything else is left to the next full pass).
    Health,
    /// The resync timer: operations found now are drift (someone changed the kernel).
    Resync,
    /// A retry of failed operations.
    Retry,
    /// A failover role changed: only VIP addresses and sync daemons are read and changed, so a
    /// takeover costs an address dump, an address and an announcement.
    Failover,
}

/// The object name under which node-wide failures (sysctls, nftables, devices) are reported.
pub const NODE_OBJECT: &str = "node";

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The state the pass aimed for.
    pub desired: NodeState,
    /// Operations planned.
    pub operations: usize,
    /// Kernel writes made.
    pub writes: u64,
    /// Failed operations: (object, message). The object is a VirtualServer `namespace/name`,
    /// `vip/<address>` for a real-server VIP, or `node`.
    pub failures: Vec<(String, String)>,
    /// The kernel could not be read at all.
    pub observe_error: Option<String>,
    /// The pass repaired drift.
    pub drift: bool,
    /// Everything is programmed.
    pub synced: bool,
    /// How long the pass took.
    pub duration: Duration,
    /// Failover state of each VIP shared with other directors.
    pub failover: Vec<lvs_api::VipFailoverStatus>,
    /// The connection-sync daemons, when a failover VIP uses them.
    pub connection_sync: Option<lvs_api::ConnectionSyncStatus>,
}

impl Outcome {
    /// The failure messages of one object.
    pub fn failures_of<'a>(&'a self, object: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.failures
            .iter()
            .filter(move |(name, _)| name == object)
            .map(|(_, message)| message.as_str())
    }

    /// A one-line summary of what is wrong, if anything.
    pub fn error_summary(&self) -> Option<String> {
        if let Some(error) = &self.observe_error {
            return Some(format!("reading the kernel: {error}"));
        }
        let (object, message) = self.failures.first()?;
        let more = self.failures.len() - 1;
        Some(if more == 0 {
            format!("{object}: {message}")
        } else {
            format!("{object}: {message} (and {more} more)")
        })
    }
}

/// Runs passes against one dataplane, keeping the drift count and the retry delays.
pub struct Reconciler<D> {
    dataplane: Arc<D>,
    health: HealthMonitor,
    metrics: Arc<Metrics>,
    node: String,
    drift_repairs: u64,
    last_synced: bool,
    backoff: Backoff,
    names: ServiceNames,
    last_desired: Option<NodeState>,
    failover: Option<Failover>,
    /// The failures of the last pass, with the part of the kernel state each was in: a partial
    /// pass (health, failover) carries forward those it did not look at.
    failures: Vec<(Scope, String, String)>,
    connections: u64,
}

/// The part of the kernel state an operation works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// IPVS services and destinations.
    Services,
    /// VIP addresses, their announcements and the sync daemons.
    Vips,
    /// Devices, sysctls, nftables.
    Rest,
}

impl Scope {
    fn of(op: &Op) -> Self {
        match op {
            Op::AddService(_)
            | Op::UpdateService(_)
            | Op::DeleteService(_)
            | Op::AddDestination(..)
            | Op::UpdateDestination(..)
            | Op::DeleteDestination(..) => Self::Services,
            Op::AddAddress(_)
            | Op::DeleteAddress(_)
            | Op::Announce { .. }
            | Op::StartSyncDaemon(..)
            | Op::StopSyncDaemon(_) => Self::Vips,
            _ => Self::Rest,
        }
    }
}

/// The VirtualServer behind each IPVS service, as of the last pass (labels for the counters).
pub type ServiceNames = Arc<std::sync::RwLock<BTreeMap<lvs_dataplane::model::ServiceKey, String>>>;

impl<D: Dataplane> Reconciler<D> {
    /// A reconciler for `node`.
    pub fn new(dataplane: Arc<D>, health: HealthMonitor, metrics: Arc<Metrics>, node: &str) -> Self {
        Self {
            dataplane,
            health,
            metrics,
            node: node.to_owned(),
            drift_repairs: 0,
            last_synced: false,
            backoff: Backoff::default(),
            names: ServiceNames::default(),
            last_desired: None,
            failover: None,
            failures: Vec::new(),
            connections: 0,
        }
    }

    /// Takes part in the elections of VIPs shared with other directors. Without this, every VIP
    /// of the config is held (tests of everything else).
    #[must_use]
    pub fn with_failover(mut self, failover: Failover) -> Self {
        self.failover = Some(failover);
        self
    }

    /// The failover service, if any.
    pub fn failover(&self) -> Option<&Failover> {
        self.failover.as_ref()
    }

    /// The VirtualServer behind each IPVS service.
    pub fn service_names(&self) -> ServiceNames {
        Arc::clone(&self.names)
    }

    /// The health checks.
    pub fn health(&self) -> &HealthMonitor {
        &self.health
    }

    /// Drift repairs so far.
    pub fn drift_repairs(&self) -> u64 {
        self.drift_repairs
    }

    /// When failed objects are due for a retry.
    pub fn next_retry(&self) -> Option<Instant> {
        self.backoff.next_retry()
    }

    /// One pass.
    pub async fn reconcile(&mut self, intent: &Intent, pass: Pass) -> Outcome {
        let started = Instant::now();
        if matches!(pass, Pass::Change | Pass::Health) {
            self.backoff.reset();
        }
        self.health.set_targets(&intent.config.director_services);
        self.report_health(intent);
        let health = &self.health;
        let mut desired =
            intent.desired(&|virtual_server, real_server| health.health(virtual_server, real_server));
        let groups = ha::groups(&intent.config);
        // The failover VIPs this node gives up in this pass: decided once, so the addresses and
        // the sync daemons follow the same roles even if an election changes them meanwhile.
        let mut released: BTreeSet<IpAddr> = BTreeSet::new();
        if let Some(failover) = &self.failover {
            let last = self.last_desired.as_ref();
            failover.set_groups(groups.clone(), &|address| {
                last.is_some_and(|last| last.addresses.iter().any(|vip| vip.address == *address))
            });
            let held = failover.held();
            released = groups
                .keys()
                .filter(|address| !held.contains(*address))
                .copied()
                .collect();
            ha::desired::restrict(&mut desired, &groups, &|address| held.contains(address));
        }
        let mut outcome = Outcome::default();
        // A health verdict can change more than weights (a fallback server may need NAT rules):
        // then the pass is a full one.
        let services_only = pass == Pass::Health
            && self
                .last_desired
                .as_ref()
                .is_some_and(|last| same_apart_from_services(last, &desired));
        self.last_desired = Some(desired.clone());
        let observed = if pass == Pass::Failover {
            self.dataplane.observe_vips().await.map(|vips| NodeState {
                addresses: vips.addresses,
                sync_daemons: vips.sync_daemons,
                announce: BTreeMap::new(),
                ..desired.clone()
            })
        } else if services_only {
            self.dataplane.observe_services().await.map(|services| NodeState {
                services,
                announce: BTreeMap::new(),
                ..desired.clone()
            })
        } else {
            self.dataplane.observe().await
        };
        let observed = match observed {
            Ok(observed) => observed,
            Err(error) => {
                outcome.observe_error = Some(error.to_string());
                outcome.desired = desired;
                self.report_failover(intent, &groups, &mut outcome, pass, false)
                    .await;
                self.finish(&mut outcome, started, [NODE_OBJECT]);
                return outcome;
            }
        };
        let mut ops = plan(&desired, &observed);
        if !intent.complete {
            // A VIP this node no longer holds goes even so: a peer takes it once it is gone.
            ops.retain(|op| {
                !is_removal(op) || matches!(op, Op::DeleteAddress(vip) if released.contains(&vip.address))
            });
        }
        if let Some(failover) = &self.failover {
            for address in failover.take_reannounce() {
                let interface = desired.announce.get(&address).cloned();
                let announced = ops
                    .iter()
                    .any(|op| matches!(op, Op::Announce { address: other, .. } if *other == address));
                if let Some(interface) = interface
                    && !announced
                {
                    ops.push(Op::Announce { address, interface });
                }
            }
        }
        outcome.operations = ops.len();
        if !ops.is_empty() && pass == Pass::Resync && self.last_synced {
            self.drift_repairs += 1;
            outcome.drift = true;
            self.metrics.drift_repaired();
            tracing::warn!(node = %self.node, operations = ops.len(), "the kernel drifted from the config; repairing");
        }
        for op in &ops {
            tracing::info!(node = %self.node, "{op}");
        }
        let writes_before = self.dataplane.write_count();
        let report = self.dataplane.apply(ops.clone()).await;
        outcome.writes = self.dataplane.write_count().saturating_sub(writes_before);
        let succeeded = |op: &Op| !report.failures.iter().any(|failure| failure.op == *op);
        let kinds: Vec<(&'static str, bool)> = ops.iter().map(|op| (op_kind(op), succeeded(op))).collect();
        self.metrics.kernel_operations(&kinds);
        let owners = Owners::of(intent);
        if let Ok(mut names) = self.names.write() {
            names.clone_from(&owners.services);
        }
        let covered = |scope: Scope| match pass {
            Pass::Failover => scope == Scope::Vips,
            Pass::Health if services_only => scope == Scope::Services,
            _ => true,
        };
        let mut failures: Vec<(Scope, String, String)> = report
            .failures
            .iter()
            .map(|failure| {
                let object = owners.object_of(&failure.op);
                (Scope::of(&failure.op), object, failure.error.to_string())
            })
            .collect();
        for (_, object, message) in &failures {
            tracing::error!(node = %self.node, object = %object, "{message}");
        }
        failures.extend(self.failures.drain(..).filter(|(scope, _, _)| !covered(*scope)));
        outcome.failures = failures
            .iter()
            .map(|(_, object, message)| (object.clone(), message.clone()))
            .collect();
        self.failures = failures;
        if let Some(failover) = &self.failover {
            // Released once the address is really gone: this pass read the addresses (a
            // services-only pass did not) and either did not find it or deleted it.
            let gone = |address: &IpAddr| {
                !services_only
                    && (!observed.addresses.iter().any(|vip| vip.address == *address)
                        || ops.iter().any(|op| {
                            matches!(op, Op::DeleteAddress(vip) if vip.address == *address) && succeeded(op)
                        }))
            };
            failover.released(released.iter().filter(|address| gone(address)).copied().collect());
            let now = Instant::now();
            for op in &ops {
                if let Op::Announce { address, .. } = op
                    && groups.contains_key(address)
                    && succeeded(op)
                {
                    failover.announced(*address, now);
                }
            }
        }
        let backup_failed = report
            .failures
            .iter()
            .any(|failure| matches!(failure.op, Op::StartSyncDaemon(SyncRole::Backup, _)));
        outcome.desired = desired;
        self.report_failover(intent, &groups, &mut outcome, pass, !backup_failed)
            .await;
        let failing: Vec<String> = outcome
            .failures
            .iter()
            .map(|(object, _)| object.clone())
            .collect();
        self.finish(&mut outcome, started, failing.iter().map(String::as_str));
        outcome
    }

    /// Tells the failover service this node's state per VIP, and puts the failover state and
    /// the sync daemons' into the outcome.
    async fn report_failover(
        &mut self,
        intent: &Intent,
        groups: &BTreeMap<std::net::IpAddr, ha::Group>,
        outcome: &mut Outcome,
        pass: Pass,
        backup_started: bool,
    ) {
        let Some(failover) = self.failover.clone() else {
            return;
        };
        let health = &self.health;
        let failures = &self.failures;
        let local = ha::desired::local_states(
            &intent.config,
            groups,
            &|virtual_server| {
                failures
                    .iter()
                    .find(|(_, object, _)| object == virtual_server)
                    .map(|(_, _, message)| message.clone())
            },
            &|virtual_server, real_server| health.health(virtual_server, real_server),
        );
        let backup = outcome.desired.sync_daemons.get(&SyncRole::Backup).cloned();
        let backup_running = backup.is_some() && backup_started;
        failover.set_local(local, backup_running);
        outcome.failover = failover.status();
        let Some(backup) = backup else { return };
        if matches!(pass, Pass::Change | Pass::Resync | Pass::Failover) {
            match self.dataplane.connection_counts().await {
                Ok(counts) => {
                    self.connections = counts
                        .iter()
                        .filter(|(address, _)| groups.contains_key(address))
                        .map(|(_, count)| count)
                        .sum();
                    self.metrics.failover.sync_connections(self.connections);
                }
                Err(error) => tracing::warn!("counting IPVS connections: {error}"),
            }
        }
        outcome.connection_sync = Some(lvs_api::ConnectionSyncStatus {
            sync_id: backup.sync_id,
            interface: backup.interface.clone(),
            master: outcome.desired.sync_daemons.contains_key(&SyncRole::Master),
            backup: backup_running,
            connections: self.connections,
        });
    }

    /// Real-server health into the metrics, dropping pairs that are gone.
    fn report_health(&self, intent: &Intent) {
        let pairs = crate::status::checked_pairs(&intent.config);
        for (virtual_server, real_server) in &pairs {
            let healthy = self
                .health
                .status(virtual_server, real_server)
                .and_then(|status| status.healthy);
            self.metrics
                .real_server_health(virtual_server, real_server, healthy);
        }
        self.metrics.retain_real_servers(&pairs);
    }

    fn finish<'a>(
        &mut self,
        outcome: &mut Outcome,
        started: Instant,
        failing: impl IntoIterator<Item = &'a str>,
    ) {
        outcome.synced = outcome.observe_error.is_none() && outcome.failures.is_empty();
        outcome.duration = started.elapsed();
        self.last_synced = outcome.synced;
        self.backoff.record(failing, Instant::now());
        self.metrics.reconcile_finished(outcome.duration, outcome.synced);
        tracing::info!(
            node = %self.node,
            operations = outcome.operations,
            writes = outcome.writes,
            failures = outcome.failures.len(),
            synced = outcome.synced,
            "reconciled"
        );
    }

    /// The dataplane (the run loops read it between passes to find drift).
    pub fn dataplane(&self) -> &Arc<D> {
        &self.dataplane
    }

    /// The IPVS services the last pass aimed for (`None` before the first pass).
    pub fn last_desired_services(
        &self,
    ) -> Option<&BTreeMap<lvs_dataplane::model::ServiceKey, lvs_dataplane::model::ServiceState>> {
        self.last_desired.as_ref().map(|desired| &desired.services)
    }
}

/// Whether two desired states differ in their IPVS services only.
fn same_apart_from_services(left: &NodeState, right: &NodeState) -> bool {
    left.links == right.links
        && left.sysctls == right.sysctls
        && left.nftables == right.nftables
        && left.addresses == right.addresses
        && left.announce == right.announce
        && left.sync_daemons == right.sync_daemons
}

/// Whether an op removes or restores something (never done from a partial intent).
fn is_removal(op: &Op) -> bool {
    matches!(
        op,
        Op::DeleteLink(_)
            | Op::RestoreSysctl(_)
            | Op::DeleteNftables
            | Op::DeleteService(_)
            | Op::DeleteDestination(..)
            | Op::DeleteAddress(_)
            | Op::StopSyncDaemon(_)
    )
}

/// Which object an operation works for.
struct Owners {
    services: BTreeMap<lvs_dataplane::model::ServiceKey, String>,
    director_vips: BTreeMap<std::net::IpAddr, String>,
}

impl Owners {
    fn of(intent: &Intent) -> Self {
        let mut services = BTreeMap::new();
        let mut director_vips = BTreeMap::new();
        for service in &intent.config.director_services {
            if let Some(key) = service_key(service) {
                services.insert(key, service.virtual_server.clone());
            }
            if let Some(address) = service
                .address
                .as_deref()
                .and_then(|address| address.parse().ok())
            {
                director_vips.insert(address, service.virtual_server.clone());
            }
        }
        Self {
            services,
            director_vips,
        }
    }

    fn object_of(&self, op: &Op) -> String {
        let service = |key| self.services.get(key).cloned();
        let address = |address: &std::net::IpAddr| {
            self.director_vips
                .get(address)
                .cloned()
                .unwrap_or_else(|| format!("vip/{address}"))
        };
        match op {
            Op::AddService(item) | Op::UpdateService(item) => service(&item.key),
            Op::DeleteService(key) | Op::AddDestination(key, _) | Op::UpdateDestination(key, _) => {
                service(key)
            }
            Op::DeleteDestination(key, ..) => service(key),
            Op::AddAddress(vip) | Op::DeleteAddress(vip) => Some(address(&vip.address)),
            Op::Announce { address: vip, .. } => Some(address(vip)),
            _ => None,
        }
        .unwrap_or_else(|| NODE_OBJECT.to_owned())
    }
}
