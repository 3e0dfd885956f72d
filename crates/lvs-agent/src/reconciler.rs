//! One reconcile pass, the same in both modes, as a short pipeline of named steps:
//! desired (intent + health → kernel state) → restrict (to the failover VIPs this node holds)
//! → observe (the part of the kernel the pass's `Scope` covers) → plan → apply → report
//! (failures per object, one report to the failover service, the outcome). Pruning happens
//! only through the plan, which covers only what the ownership record says is ours, and only
//! when the intent is complete.

mod failover;
mod failures;
mod scope;

pub use failover::Holding;
pub use failures::{FailedObject, Failure};
pub use scope::Scope;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lvs_dataplane::model::{NodeState, SyncRole, VipAddress};
use lvs_dataplane::{ApplyReport, Dataplane, Op};
use tokio::time::Instant;
use tracing::Instrument;

use self::failures::{Owners, ScopedFailure};
use self::scope::Part;
use crate::ha::{self, Failover, Group};
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

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The state the pass aimed for.
    pub desired: NodeState,
    /// Operations planned.
    pub operations: usize,
    /// Kernel writes made.
    pub writes: u64,
    /// Failed operations, each on the object it was done for.
    pub failures: Vec<Failure>,
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
    pub fn failures_of<'a>(&'a self, object: &'a FailedObject) -> impl Iterator<Item = &'a str> + 'a {
        self.failures
            .iter()
            .filter(move |failure| failure.object == *object)
            .map(|failure| failure.message.as_str())
    }

    /// The first failure of one object.
    pub fn first_failure_of(&self, object: &FailedObject) -> Option<&Failure> {
        self.failures.iter().find(|failure| failure.object == *object)
    }

    /// A one-line summary of what is wrong, if anything.
    pub fn error_summary(&self) -> Option<String> {
        if let Some(error) = &self.observe_error {
            return Some(format!("reading the kernel: {error}"));
        }
        let Failure { object, message, .. } = self.failures.first()?;
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
    /// The failover VIPs the last pass held.
    last_held: Option<std::collections::BTreeSet<IpAddr>>,
    /// The uplinks of IPv6 director VIPs without a named interface (`look_up_uplinks`).
    uplinks: BTreeMap<IpAddr, Vec<String>>,
    /// This pass holds other failover VIPs than the last one: what it does to VIP addresses,
    /// announcements and sync daemons follows the roles, it is not drift (a resync can be the
    /// first pass after a role change).
    roles_moved: bool,
    failover: Option<Failover>,
    /// The heartbeat UDP port the input guard opens to the peer directors (set when this agent
    /// listens for heartbeats).
    heartbeat_port: Option<u16>,
    /// The failures of the last pass, with the part of the kernel state each was in: a partial
    /// pass carries forward those it did not look at.
    failures: Vec<ScopedFailure>,
    connections: u64,
}

/// The VirtualServer behind each IPVS service, as of the last pass (labels for the counters).
pub type ServiceNames = Arc<std::sync::RwLock<BTreeMap<lvs_dataplane::model::ServiceKey, String>>>;

/// What the apply step did.
struct Applied {
    ops: Vec<Op>,
    report: ApplyReport,
    writes: u64,
}

impl Applied {
    fn succeeded(&self, op: &Op) -> bool {
        !self.report.failures.iter().any(|failure| failure.op == *op)
    }

    /// This pass's operations after those of a takeover's fast path (`earlier`). A fast-path
    /// operation that failed and that the pass then did is the pass's to report.
    fn follow(&mut self, earlier: Applied) {
        let redone = |op: &Op| self.ops.contains(op);
        let failures: Vec<_> = earlier
            .report
            .failures
            .into_iter()
            .filter(|failure| !redone(&failure.op))
            .collect();
        let mut ops: Vec<Op> = earlier.ops.into_iter().filter(|op| !redone(op)).collect();
        ops.append(&mut self.ops);
        self.ops = ops;
        self.report.applied += earlier.report.applied;
        self.report.failures.splice(0..0, failures);
        self.writes += earlier.writes;
    }
}

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
            last_held: None,
            uplinks: BTreeMap::new(),
            roles_moved: false,
            failover: None,
            heartbeat_port: None,
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

    /// Opens the input guard to the peer directors' heartbeats on UDP `port` (each peer under
    /// its rate, everyone else dropped): for an agent that takes part in failover (it has a
    /// key and listens on `port`). Without it the guard has no heartbeat rules.
    #[must_use]
    pub fn with_heartbeat_guard(mut self, port: u16) -> Self {
        self.heartbeat_port = Some(port);
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

    /// One pass, in a `pass` span.
    pub async fn reconcile(&mut self, intent: &Intent, pass: Pass) -> Outcome {
        let span = tracing::info_span!("pass", node = %self.node, pass = ?pass);
        self.pipeline(intent, pass).instrument(span).await
    }

    async fn pipeline(&mut self, intent: &Intent, pass: Pass) -> Outcome {
        let started = Instant::now();
        self.look_up_uplinks(intent, pass).await;
        let groups = ha::groups(&intent.config, &self.uplinks);
        let taken = self.take_over_at_once(&groups).await;
        self.prepare(intent, pass);
        let mut desired = self.desired(intent);
        let holding = self.restrict(&mut desired, &groups);
        self.roles_moved = taken.is_some() || self.last_held.as_ref() != Some(&holding.held);
        self.last_held = Some(holding.held.clone());
        let scope = self.scope(pass, &desired);
        self.last_desired = Some(desired.clone());
        let observed = match scope.observe(&*self.dataplane).await {
            Ok(observed) => observed,
            Err(error) => return self.unobserved(intent, groups, desired, error, started).await,
        };
        let ops = scope::operations(
            &desired,
            &observed,
            scope,
            intent.complete,
            &holding.released,
            &holding.reannounce,
        );
        let mut applied = self.apply(ops, pass).await;
        let drift = self.is_drift(&applied.ops, pass);
        // When the fast path's announcements went out, for the takeover's record.
        let mut announced_early = Vec::new();
        if let Some((taken, at)) = taken {
            announced_early = taken
                .ops
                .iter()
                .filter(|op| matches!(op, Op::Announce { .. }) && taken.succeeded(op))
                .filter_map(|op| match op {
                    Op::Announce { address, .. } => Some((*address, at)),
                    _ => None,
                })
                .collect();
            applied.follow(taken);
        }
        let mut outcome = Outcome {
            operations: applied.ops.len(),
            writes: applied.writes,
            drift,
            ..Outcome::default()
        };
        self.record_failures(intent, scope, &applied, &mut outcome);
        let backup_failed = applied
            .report
            .failures
            .iter()
            .any(|failure| matches!(failure.op, Op::StartSyncDaemon(SyncRole::Backup, _)));
        outcome.desired = desired;
        let report = |local, backup_running| {
            let mut report = failover::pass_report(
                groups.clone(),
                &holding,
                &observed,
                scope.covers(Part::Vips),
                &applied.ops,
                &|op| applied.succeeded(op),
                local,
                backup_running,
            );
            for (address, at) in &announced_early {
                if let Some(entry) = report
                    .announced
                    .iter_mut()
                    .find(|(announced, _)| announced == address)
                {
                    entry.1 = *at;
                }
            }
            report
        };
        self.report_failover(intent, &groups, &mut outcome, pass, !backup_failed, report)
            .await;
        self.finish(&mut outcome, started);
        outcome
    }

    /// Step 0, a takeover's fast path: each failover VIP this node has just become active for
    /// (held now, not in the last pass's state) is added and announced at once, before the
    /// pass computes and reads anything — a takeover costs an address and a gratuitous ARP /
    /// NA, nothing else in between. The rest of the pass (the sync master, anything that
    /// failed here) follows as usual: it finds the address in place.
    async fn take_over_at_once(&mut self, groups: &BTreeMap<IpAddr, Group>) -> Option<(Applied, ha::Now)> {
        let roles = self.failover.as_ref()?.roles();
        let last = self.last_desired.as_ref()?;
        let ops: Vec<Op> = groups
            .iter()
            .filter(|(address, _)| roles.elections.get(*address) == Some(&ha::wire::Role::Active))
            .filter(|(address, _)| !last.addresses.iter().any(|vip| vip.address == **address))
            .flat_map(|(address, group)| {
                let adds = group.devices.iter().map(|device| {
                    Op::AddAddress(VipAddress {
                        address: *address,
                        device: device.clone(),
                    })
                });
                adds.chain([Op::Announce {
                    address: *address,
                    interface: group.interface.clone(),
                }])
                .collect::<Vec<_>>()
            })
            .collect();
        if ops.is_empty() {
            return None;
        }
        let applied = self.apply(ops, Pass::Failover).await;
        Some((applied, ha::Now::current()))
    }

    /// Step 0: a change or a health verdict resets the retry delays; the health checks follow
    /// the config, and their verdicts go into the metrics.
    fn prepare(&mut self, intent: &Intent, pass: Pass) {
        if matches!(pass, Pass::Change | Pass::Health) {
            self.backoff.reset();
        }
        self.health.set_targets(&intent.config.director_services);
        self.report_health(intent);
    }

    /// Step 0: the uplinks of the IPv6 director VIPs held on them (`desired::vip_devices`), in
    /// one read on a change, a resync or a retry, and for VIPs not looked up yet. Failover and
    /// health passes use what was found, so a takeover reads nothing more. A failed read keeps
    /// what was found before (and is logged): the VIP stays where it is.
    async fn look_up_uplinks(&mut self, intent: &Intent, pass: Pass) {
        let wanted = crate::desired::uplink_lookups(&intent.config);
        self.uplinks.retain(|address, _| wanted.contains(address));
        let fresh = matches!(pass, Pass::Change | Pass::Resync | Pass::Retry);
        if wanted.is_empty() || (!fresh && wanted.iter().all(|address| self.uplinks.contains_key(address))) {
            return;
        }
        match self.dataplane.uplinks_of(&wanted).await {
            Ok(found) => self.uplinks.extend(found),
            Err(error) => {
                tracing::warn!(%error, "cannot look up the uplinks of IPv6 VIPs; they stay where they are")
            }
        }
    }

    /// Step 1: the kernel state the intent asks for, with what the health checks say.
    fn desired(&self, intent: &Intent) -> NodeState {
        let health = &self.health;
        intent.desired(
            &|virtual_server, real_server| health.health(virtual_server, real_server),
            &self.uplinks,
        )
    }

    /// Step 2: only the failover VIPs this node holds; the peers' heartbeats admitted.
    fn restrict(&self, desired: &mut NodeState, groups: &BTreeMap<IpAddr, Group>) -> Holding {
        if let (Some(port), Some(_)) = (self.heartbeat_port, &self.failover) {
            failover::guard_heartbeats(desired, groups, &self.node, port);
        }
        match &self.failover {
            Some(failover) => {
                failover::restrict(desired, groups, &failover.roles(), self.last_desired.as_ref())
            }
            None => Holding::default(),
        }
    }

    /// Step 3: what the pass reads. A health verdict can change more than weights (a fallback
    /// server may need NAT rules): then the pass reads everything.
    fn scope(&self, pass: Pass, desired: &NodeState) -> Scope {
        match pass {
            Pass::Failover => Scope::Vips,
            Pass::Health
                if self
                    .last_desired
                    .as_ref()
                    .is_some_and(|last| scope::same_apart_from_services(last, desired)) =>
            {
                Scope::Services
            }
            _ => Scope::Everything,
        }
    }

    /// Whether `ops` repair drift: a resync after a synced pass found something to do, other
    /// than what a role change asks of the VIPs.
    fn is_drift(&self, ops: &[Op], pass: Pass) -> bool {
        pass == Pass::Resync
            && self.last_synced
            && ops
                .iter()
                .any(|op| !(self.roles_moved && Part::of(op) == Part::Vips))
    }

    /// Step 5: the operations, counted and logged (drift when a resync finds any).
    async fn apply(&mut self, ops: Vec<Op>, pass: Pass) -> Applied {
        if self.is_drift(&ops, pass) {
            self.drift_repairs += 1;
            self.metrics.drift_repaired();
            tracing::warn!(
                operations = ops.len(),
                "the kernel drifted from the config; repairing"
            );
        }
        for op in &ops {
            let _span = op_span(op).entered();
            tracing::info!("{op}");
        }
        let writes_before = self.dataplane.write_count();
        let report = self.dataplane.apply(ops.clone()).await;
        let applied = Applied {
            writes: self.dataplane.write_count().saturating_sub(writes_before),
            ops,
            report,
        };
        let kinds: Vec<(&'static str, bool)> = applied
            .ops
            .iter()
            .map(|op| (op_kind(op), applied.succeeded(op)))
            .collect();
        self.metrics.kernel_operations(&kinds);
        applied
    }

    /// Step 6a: each failure on its object; failures of parts the pass did not look at carried
    /// forward.
    fn record_failures(&mut self, intent: &Intent, scope: Scope, applied: &Applied, outcome: &mut Outcome) {
        let owners = Owners::of(intent);
        if let Ok(mut names) = self.names.write() {
            names.clone_from(&owners.services);
        }
        let mut failures: Vec<ScopedFailure> = applied
            .report
            .failures
            .iter()
            .map(|failure| ScopedFailure {
                part: Part::of(&failure.op),
                failure: Failure::of(
                    owners.object_of(&failure.op),
                    Owners::vip_of(&failure.op),
                    &failure.error,
                ),
            })
            .collect();
        for (ScopedFailure { failure, .. }, op) in failures.iter().zip(&applied.report.failures) {
            let _span = op_span(&op.op).entered();
            tracing::error!(object = %failure.object, "{}", failure.message);
        }
        failures.extend(
            self.failures
                .drain(..)
                .filter(|failure| !scope.covers(failure.part)),
        );
        outcome.failures = failures.iter().map(|failure| failure.failure.clone()).collect();
        self.failures = failures;
    }

    /// A pass that could not read the kernel: nothing applied, the failover service still hears
    /// this node's state.
    async fn unobserved(
        &mut self,
        intent: &Intent,
        groups: BTreeMap<IpAddr, Group>,
        desired: NodeState,
        error: lvs_dataplane::DataplaneError,
        started: Instant,
    ) -> Outcome {
        let mut outcome = Outcome {
            observe_error: Some(error.to_string()),
            desired,
            ..Outcome::default()
        };
        let report = |local, backup_running| ha::PassReport {
            held: BTreeMap::keys(&groups).copied().collect(),
            groups: groups.clone(),
            local,
            backup_running,
            ..ha::PassReport::default()
        };
        self.report_failover(intent, &groups, &mut outcome, Pass::Change, false, report)
            .await;
        self.finish(&mut outcome, started);
        outcome
    }

    /// Step 6b: the one report to the failover service (this node's state per VIP, built by
    /// `report`), and the failover and sync daemons' state into the outcome.
    async fn report_failover(
        &mut self,
        intent: &Intent,
        groups: &BTreeMap<IpAddr, Group>,
        outcome: &mut Outcome,
        pass: Pass,
        backup_started: bool,
        report: impl FnOnce(BTreeMap<IpAddr, ha::election::Local>, bool) -> ha::PassReport,
    ) {
        let Some(failover) = self.failover.clone() else {
            return;
        };
        let health = &self.health;
        let failures = &self.failures;
        let local = ha::desired::local_states(
            &intent.config,
            groups,
            &|virtual_server, address| {
                failures
                    .iter()
                    .find(|failure| {
                        matches!(&failure.failure.object, FailedObject::VirtualServer(name) if name == virtual_server)
                            && failure.failure.concerns_vip(Some(address))
                    })
                    .map(|failure| failure.failure.message.clone())
            },
            &|virtual_server, real_server| health.health(virtual_server, real_server),
        );
        let backup = outcome.desired.sync_daemons.get(&SyncRole::Backup).cloned();
        let backup_running = backup.is_some() && backup_started;
        let statuses = failover.report(report(local, backup_running)).await;
        outcome.failover = statuses.iter().map(ha::api::vip_status).collect();
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

    /// Step 7: synced or not, the retry delays of the failing objects, the metrics and the log.
    fn finish(&mut self, outcome: &mut Outcome, started: Instant) {
        outcome.synced = outcome.observe_error.is_none() && outcome.failures.is_empty();
        outcome.duration = started.elapsed();
        self.last_synced = outcome.synced;
        let failing: Vec<String> = if outcome.observe_error.is_some() {
            vec![FailedObject::Node.to_string()]
        } else {
            outcome
                .failures
                .iter()
                .map(|failure| failure.object.to_string())
                .collect()
        };
        self.backoff
            .record(failing.iter().map(String::as_str), Instant::now());
        self.metrics.reconcile_finished(outcome.duration, outcome.synced);
        tracing::info!(
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

/// The span an operation's log lines go in: its IPVS service, or its VIP.
fn op_span(op: &Op) -> tracing::Span {
    match op {
        Op::AddService(item) | Op::UpdateService(item) => tracing::info_span!("service", service = %item.key),
        Op::DeleteService(key)
        | Op::AddDestination(key, _)
        | Op::UpdateDestination(key, _)
        | Op::DeleteDestination(key, ..) => tracing::info_span!("service", service = %key),
        Op::AddAddress(vip) | Op::DeleteAddress(vip) => tracing::info_span!("vip", vip = %vip.address),
        Op::Announce { address, .. } => tracing::info_span!("vip", vip = %address),
        _ => tracing::Span::none(),
    }
}
