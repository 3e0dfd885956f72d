//! The health monitor: one scheduler task probes every target on its interval, at most
//! [`Concurrency::total`] at a time and at most [`Concurrency::per_virtual_server`] of one
//! VirtualServer (so one tenant's slow targets cannot hold every slot and delay another's checks),
//! keeps each target's rise/fall state, and tells subscribers when some target's health changes.
//!
//! The scheduler keeps a timer queue (a min-heap of due times) and runs the probes themselves as
//! futures of its own task, so a thousand targets cost one task and no threads. Each target is
//! always either queued or being probed; its next probe is due one interval after the last one
//! started (at once if that has passed).

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::desired::Health;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lvs_api::{DirectorService, HealthCheckType, RealServerState};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info};

use super::probe::{ProbeOutcome, ProbeTarget, probe};
use super::state::{TargetState, Thresholds, Transition};

/// The most a target's first probe is delayed to spread probes out (never more than a tenth of
/// its interval).
const MAX_FIRST_PROBE_SPREAD: Duration = Duration::from_millis(500);

/// How many probes may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// In all (at least 1; the agent's `--max-concurrent-checks`, default 64).
    pub total: usize,
    /// Of one VirtualServer (at least 1; `--max-concurrent-checks-per-virtual-server`, default
    /// 8): its targets beyond that wait for its own probes to finish, never for another's.
    pub per_virtual_server: usize,
}

impl Concurrency {
    /// The default share of one VirtualServer.
    pub const DEFAULT_PER_VIRTUAL_SERVER: usize = 8;

    /// At most `total` probes, and at most the default share (or `total`) per VirtualServer.
    pub fn new(total: usize) -> Self {
        Self {
            total,
            per_virtual_server: Self::DEFAULT_PER_VIRTUAL_SERVER.min(total),
        }
    }
}

/// Told about every probe result (metrics, status).
pub trait ProbeObserver: Send + Sync {
    /// `real_server` of `virtual_server` was probed with `check`.
    fn probed(&self, virtual_server: &str, real_server: &str, check: HealthCheckType, outcome: &ProbeOutcome);
}

/// An observer that ignores everything.
impl ProbeObserver for () {
    fn probed(&self, _: &str, _: &str, _: HealthCheckType, _: &ProbeOutcome) {}
}

/// What the monitor knows about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// Whether it counts as healthy; `None` before the health is known.
    pub healthy: Option<bool>,
    /// When the last check finished, in unix milliseconds.
    pub last_check_millis: Option<u64>,
    /// How long the last check took.
    pub latency: Option<Duration>,
    /// Successful checks in a row.
    pub consecutive_successes: u32,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Why the most recent failed check failed.
    pub last_failure: Option<String>,
}

/// Health checks of this node's real servers. Cheap to clone; the scheduler task stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct HealthMonitor {
    shared: Arc<Shared>,
    /// Wakes the scheduler after `set_targets`; closing it (dropping every clone) stops it.
    wake: mpsc::Sender<()>,
}

impl std::fmt::Debug for HealthMonitor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let targets = self.shared.registry().entries.len();
        formatter
            .debug_struct("HealthMonitor")
            .field("targets", &targets)
            .finish()
    }
}

struct Shared {
    registry: Mutex<Registry>,
    changes: watch::Sender<u64>,
    observer: Arc<dyn ProbeObserver>,
}

/// The targets and their timer queue.
#[derive(Default)]
struct Registry {
    /// Every target by id. Ids are never reused, so a queued time or a probe result for a target
    /// that was removed or replaced finds nothing and is dropped.
    entries: HashMap<u64, Entry>,
    /// Ids by virtual server, then real server.
    index: HashMap<String, HashMap<String, u64>>,
    /// Due times of queued targets.
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
    /// Probes in flight, in all and by VirtualServer (entries at zero are removed).
    running: usize,
    running_by_virtual_server: HashMap<String, usize>,
}

struct Entry {
    virtual_server: String,
    real_server: String,
    target: Arc<ProbeTarget>,
    state: TargetState,
}

/// A probe the scheduler starts.
struct Dispatch {
    id: u64,
    virtual_server: String,
    target: Arc<ProbeTarget>,
    /// The probe's span: its VirtualServer and real server.
    span: tracing::Span,
}

/// A finished probe.
struct Completed {
    id: u64,
    virtual_server: String,
    started: Instant,
    outcome: ProbeOutcome,
}

impl HealthMonitor {
    /// A monitor with no targets, probing at most `max_concurrent_probes` (at least 1) targets at
    /// a time, a VirtualServer's at most [`Concurrency::DEFAULT_PER_VIRTUAL_SERVER`], and telling
    /// `observer` about every result.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the scheduler task is spawned here).
    pub fn new(max_concurrent_probes: usize, observer: Arc<dyn ProbeObserver>) -> Self {
        Self::with_concurrency(Concurrency::new(max_concurrent_probes), observer)
    }

    /// A monitor with no targets, probing within `concurrency`, telling `observer` about every
    /// result.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the scheduler task is spawned here).
    pub fn with_concurrency(concurrency: Concurrency, observer: Arc<dyn ProbeObserver>) -> Self {
        let concurrency = Concurrency {
            total: concurrency.total.max(1),
            per_virtual_server: concurrency.per_virtual_server.max(1),
        };
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry::default()),
            changes,
            observer,
        });
        let (wake, woken) = mpsc::channel(1);
        tokio::spawn(schedule(Arc::clone(&shared), woken, concurrency));
        Self { shared, wake }
    }

    /// Sets the targets from this node's director services: one per (service, destination) whose
    /// check type is not None and whose destination state is Active (Draining and Disabled real
    /// servers are not probed). Targets whose probe settings (address, port, check, protocol) are
    /// unchanged keep their state and schedule; new ones start probing at once (spread over a
    /// tenth of their interval, at most half a second); removed ones stop. A target whose
    /// settings changed starts over as a new one, `Unknown`.
    pub fn set_targets(&self, services: &[DirectorService]) {
        let now = Instant::now();
        let mut forgot_health = false;
        {
            let mut registry = self.shared.registry();
            let mut index: HashMap<String, HashMap<String, u64>> = HashMap::new();
            for service in services {
                for destination in &service.destinations {
                    if destination.state != RealServerState::Active {
                        continue;
                    }
                    let Some(target) = ProbeTarget::for_destination(service, destination) else {
                        continue;
                    };
                    let (virtual_server, real_server) = (&service.virtual_server, &destination.real_server);
                    if index
                        .get(virtual_server)
                        .is_some_and(|real_servers| real_servers.contains_key(real_server))
                    {
                        continue;
                    }
                    let unchanged = registry
                        .find(virtual_server, real_server)
                        .filter(|(_, entry)| *entry.target == target)
                        .map(|(id, _)| id);
                    let id = match unchanged {
                        Some(id) => id,
                        None => registry.insert(virtual_server, real_server, target, now),
                    };
                    index
                        .entry(virtual_server.clone())
                        .or_default()
                        .insert(real_server.clone(), id);
                }
            }
            let kept: HashSet<u64> = index.values().flat_map(|ids| ids.values().copied()).collect();
            registry.entries.retain(|id, entry| {
                let keep = kept.contains(id);
                if !keep {
                    debug!(
                        virtual_server = %entry.virtual_server,
                        real_server = %entry.real_server,
                        "health check target removed"
                    );
                    forgot_health |= entry.state.health() != Health::Unknown;
                }
                keep
            });
            registry.index = index;
        }
        if forgot_health {
            self.shared.bump();
        }
        // A full channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }

    /// The health of `real_server` in `virtual_server`; `Unknown` when it is not probed.
    pub fn health(&self, virtual_server: &str, real_server: &str) -> Health {
        let registry = self.shared.registry();
        registry
            .find(virtual_server, real_server)
            .map_or(Health::Unknown, |(_, entry)| entry.state.health())
    }

    /// What is known about `real_server` in `virtual_server`; `None` when it is not probed.
    pub fn status(&self, virtual_server: &str, real_server: &str) -> Option<TargetStatus> {
        let registry = self.shared.registry();
        let (_, entry) = registry.find(virtual_server, real_server)?;
        let state = &entry.state;
        Some(TargetStatus {
            healthy: match state.health() {
                Health::Unknown => None,
                Health::Healthy => Some(true),
                Health::Unhealthy => Some(false),
            },
            last_check_millis: state.last_check_millis(),
            latency: state.last_latency(),
            consecutive_successes: state.consecutive_successes(),
            consecutive_failures: state.consecutive_failures(),
            last_failure: state.last_failure().map(str::to_owned),
        })
    }

    /// A counter that changes whenever some target's health changes (including a known health
    /// forgotten because its target was removed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changes.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Takes the targets due at `now` that `limits` let start; also returns when the next queued
    /// target is due. A due target whose VirtualServer is at its share stays queued (one of that
    /// VirtualServer's probes finishing wakes the scheduler) and does not hold up the others; at
    /// the total limit nothing more starts until a probe finishes.
    fn take_due(&self, now: Instant, limits: Concurrency) -> (Vec<Dispatch>, Option<Instant>) {
        let mut registry = self.registry();
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        let mut next = None;
        while let Some(&Reverse((at, id))) = registry.queue.peek() {
            if at > now {
                next = Some(at);
                break;
            }
            if registry.running >= limits.total {
                break;
            }
            registry.queue.pop();
            let Some(entry) = registry.entries.get(&id) else {
                continue;
            };
            let running = registry
                .running_by_virtual_server
                .get(&entry.virtual_server)
                .copied()
                .unwrap_or(0);
            if running >= limits.per_virtual_server {
                waiting.push(Reverse((at, id)));
                continue;
            }
            let dispatch = Dispatch {
                id,
                virtual_server: entry.virtual_server.clone(),
                target: Arc::clone(&entry.target),
                span: tracing::debug_span!(
                    "real_server",
                    virtual_server = %entry.virtual_server,
                    real_server = %entry.real_server
                ),
            };
            registry.running += 1;
            *registry
                .running_by_virtual_server
                .entry(dispatch.virtual_server.clone())
                .or_default() += 1;
            due.push(dispatch);
        }
        registry.queue.extend(waiting);
        (due, next)
    }

    /// Records a finished probe, queues the target's next one, and reports.
    fn complete(&self, done: Completed) {
        let finished = Instant::now();
        let report = {
            let mut registry = self.registry();
            registry.finished(&done.virtual_server);
            let Some(entry) = registry.entries.get_mut(&done.id) else {
                return;
            };
            let thresholds = Thresholds {
                rise: entry.target.check.rise,
                fall: entry.target.check.fall,
            };
            let transition = entry.state.record(&done.outcome, thresholds, unix_millis());
            let report = Report {
                virtual_server: entry.virtual_server.clone(),
                real_server: entry.real_server.clone(),
                address: entry.target.socket_address(),
                check: entry.target.check.check_type,
                transition,
                successes: entry.state.consecutive_successes(),
            };
            let next = (done.started + entry.target.interval()).max(finished);
            registry.queue.push(Reverse((next, done.id)));
            report
        };
        self.observer.probed(
            &report.virtual_server,
            &report.real_server,
            report.check,
            &done.outcome,
        );
        if let Some(transition) = report.transition {
            let reason = match (transition.to, &done.outcome.message) {
                (Health::Unhealthy, Some(message)) => message.clone(),
                (Health::Healthy, _) if transition.from == Health::Unknown => "first check passed".to_owned(),
                (Health::Healthy, _) => format!("{} consecutive checks passed", report.successes),
                _ => "check failed".to_owned(),
            };
            let _span = tracing::info_span!(
                "real_server",
                virtual_server = %report.virtual_server,
                real_server = %report.real_server
            )
            .entered();
            info!(
                address = %report.address,
                from = ?transition.from,
                to = ?transition.to,
                reason = %reason,
                "real server health changed"
            );
            self.bump();
        }
    }
}

/// What `complete` reports once the registry is unlocked.
struct Report {
    virtual_server: String,
    real_server: String,
    address: SocketAddr,
    check: HealthCheckType,
    transition: Option<Transition>,
    successes: u32,
}

impl Registry {
    /// One probe of `virtual_server` no longer runs.
    fn finished(&mut self, virtual_server: &str) {
        self.running = self.running.saturating_sub(1);
        if let Some(running) = self.running_by_virtual_server.get_mut(virtual_server) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                self.running_by_virtual_server.remove(virtual_server);
            }
        }
    }

    fn find(&self, virtual_server: &str, real_server: &str) -> Option<(u64, &Entry)> {
        let id = *self.index.get(virtual_server)?.get(real_server)?;
        self.entries.get(&id).map(|entry| (id, entry))
    }

    /// Adds a new target, queued for its first probe.
    fn insert(&mut self, virtual_server: &str, real_server: &str, target: ProbeTarget, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let due = now + first_probe_delay(virtual_server, real_server, target.interval());
        debug!(virtual_server, real_server, address = %target.socket_address(), "health check target added");
        self.entries.insert(
            id,
            Entry {
                virtual_server: virtual_server.to_owned(),
                real_server: real_server.to_owned(),
                target: Arc::new(target),
                state: TargetState::new(),
            },
        );
        self.queue.push(Reverse((due, id)));
        id
    }
}

/// A delay that spreads first probes out, the same for the same target every time: up to a tenth
/// of the interval, at most `MAX_FIRST_PROBE_SPREAD`.
fn first_probe_delay(virtual_server: &str, real_server: &str, interval: Duration) -> Duration {
    let spread = u64::try_from((interval / 10).min(MAX_FIRST_PROBE_SPREAD).as_millis()).unwrap_or(0);
    if spread == 0 {
        return Duration::ZERO;
    }
    let mut hasher = DefaultHasher::new();
    (virtual_server, real_server).hash(&mut hasher);
    Duration::from_millis(hasher.finish() % spread)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The scheduler task: starts due probes, records finished ones, sleeps until the next is due.
async fn schedule(shared: Arc<Shared>, mut woken: mpsc::Receiver<()>, limits: Concurrency) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        let (due, next) = shared.take_due(Instant::now(), limits);
        for dispatch in due {
            in_flight.push(run_probe(dispatch));
        }
        let sleep_until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = woken.recv() => {
                if message.is_none() {
                    debug!("health monitor dropped; scheduler stops");
                    return;
                }
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => shared.complete(done),
            () = tokio::time::sleep_until(sleep_until), if next.is_some() => {}
        }
    }
}

async fn run_probe(dispatch: Dispatch) -> Completed {
    let started = Instant::now();
    let outcome = probe(&dispatch.target).instrument(dispatch.span.clone()).await;
    Completed {
        id: dispatch.id,
        virtual_server: dispatch.virtual_server,
        started,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_probes_are_spread_within_a_tenth_of_the_interval() {
        let interval = Duration::from_secs(1);
        let delays: HashSet<Duration> = (0..50)
            .map(|index| first_probe_delay("default/web", &format!("default/rs-{index}"), interval))
            .collect();
        assert!(delays.iter().all(|delay| *delay < Duration::from_millis(100)));
        assert!(delays.len() > 10, "delays should differ: {delays:?}");
        let long = first_probe_delay("default/web", "default/rs-1", Duration::from_secs(60));
        assert!(long < MAX_FIRST_PROBE_SPREAD);
        assert_eq!(
            first_probe_delay("default/web", "default/rs-1", interval),
            first_probe_delay("default/web", "default/rs-1", interval)
        );
    }
}
