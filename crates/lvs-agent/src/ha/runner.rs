//! The failover service of one agent: a UDP socket for heartbeats, a ticker that sends them and
//! notices silent peers, and a prober that asks who answers for the VIPs this node holds (or
//! holds back from). It runs the elections and publishes their roles; the reconciler adds or
//! removes VIPs accordingly and reports back this node's eligibility and announcements.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lvs_api::{FailoverRecord, VipFailoverStatus};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use super::election::{Decision, Election, Local, PeerReport};
use super::groups::Group;
use super::wire::{self, Heartbeat, HeartbeatKey, Role, VipReport};
use crate::metrics::Metrics;

/// Asks who else answers for a VIP on an uplink: MAC addresses.
pub type Prober =
    Arc<dyn Fn(IpAddr, Option<String>) -> BoxFuture<'static, Result<Vec<String>, String>> + Send + Sync>;

/// Whether the uplink of a VIP is up: None when it is, else why not.
pub type UplinkCheck =
    Arc<dyn Fn(IpAddr, Option<String>) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// How often the VIPs this node holds are probed for other owners (and uplinks checked).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe waits for answers.
pub const PROBE_WAIT: Duration = Duration::from_millis(200);

/// Settings of the failover service.
pub struct Options {
    /// This node.
    pub node: String,
    /// UDP port heartbeats are sent to and received on (the same on every director).
    pub port: u16,
    /// The address to receive heartbeats on (`0.0.0.0`: all).
    pub bind: IpAddr,
    /// The shared key; None refuses to take part (and says so in status).
    pub key: Option<HeartbeatKey>,
    /// Probes for other owners of a VIP.
    pub prober: Prober,
    /// Checks a VIP's uplink.
    pub uplink: UplinkCheck,
}

/// Handle to the failover service.
#[derive(Clone)]
pub struct Failover {
    shared: Arc<Shared>,
    tasks: Arc<[tokio::task::AbortHandle]>,
}

struct Shared {
    node: String,
    port: u16,
    key: Option<HeartbeatKey>,
    state: Mutex<State>,
    roles: watch::Sender<u64>,
    wake: tokio::sync::Notify,
    recheck: tokio::sync::Notify,
    metrics: Arc<Metrics>,
    prober: Prober,
    uplink: UplinkCheck,
    /// Why this node takes part in no election (no key, no socket), if it does not.
    refusal: Option<String>,
}

#[derive(Default)]
struct State {
    elections: BTreeMap<IpAddr, Election>,
    groups: BTreeMap<IpAddr, Group>,
    local: BTreeMap<IpAddr, Local>,
    /// The last uplink check of each VIP: None when up, else why not (absent: not checked yet).
    uplinks: BTreeMap<IpAddr, Option<String>>,
    peers: BTreeMap<IpAddr, BTreeMap<String, PeerReport>>,
    sequences: BTreeMap<String, (u64, u64)>,
    backup_running: bool,
    synced_since: BTreeMap<IpAddr, Instant>,
    takeovers: Takeovers,
    reannounce: std::collections::BTreeSet<IpAddr>,
    sequence: u64,
    incarnation: u64,
}

/// Takeovers and step-downs in progress, and the last takeover of each VIP.
#[derive(Default)]
struct Takeovers {
    /// The last takeover of each VIP.
    records: BTreeMap<IpAddr, FailoverRecord>,
    /// Takeovers not announced yet: when decided, and when the previous holder was last heard.
    pending: BTreeMap<IpAddr, (Instant, Option<Instant>)>,
    /// VIPs given up but maybe still on the node: peers keep hearing "active" until the
    /// reconciler removed the address (or the dead interval passed), so the VIP is never on two
    /// directors at once in a handover.
    releasing: BTreeMap<IpAddr, Instant>,
}

impl Takeovers {
    /// Forgets every VIP not in `groups` (a VIP removed and added again starts with no record).
    fn forget_others<T>(&mut self, groups: &BTreeMap<IpAddr, T>) {
        self.records.retain(|address, _| groups.contains_key(address));
        self.pending.retain(|address, _| groups.contains_key(address));
        self.releasing.retain(|address, _| groups.contains_key(address));
    }
}

impl Failover {
    /// Starts the service's tasks on the current runtime. Without a key, or when the port
    /// cannot be bound, no VIP with more than one director is ever taken (status says why).
    pub async fn start(options: Options, metrics: Arc<Metrics>) -> Self {
        let mut incarnation = [0u8; 8];
        let random = ring::rand::SystemRandom::new();
        let _ = ring::rand::SecureRandom::fill(&random, &mut incarnation);
        let (roles, _) = watch::channel(0);
        let socket = match &options.key {
            None => Err(
                "no failover key: start the agent with --failover-key-file (the chart mounts one); this node never takes a VIP shared with other directors"
                    .to_owned(),
            ),
            Some(_) => UdpSocket::bind(SocketAddr::new(options.bind, options.port))
                .await
                .map_err(|error| {
                    let message = format!(
                        "cannot listen for failover heartbeats on UDP port {}: {error}",
                        options.port
                    );
                    tracing::error!("{message}");
                    message
                }),
        };
        let shared = Arc::new(Shared {
            node: options.node,
            port: options.port,
            key: options.key,
            state: Mutex::new(State {
                incarnation: u64::from_be_bytes(incarnation),
                ..State::default()
            }),
            roles,
            wake: tokio::sync::Notify::new(),
            recheck: tokio::sync::Notify::new(),
            metrics,
            prober: options.prober,
            uplink: options.uplink,
            refusal: socket.as_ref().err().cloned(),
        });
        let tasks: Arc<[tokio::task::AbortHandle]> = match socket {
            Ok(socket) => {
                let socket = Arc::new(socket);
                Arc::new([
                    tokio::spawn(receive(Arc::clone(&shared), Arc::clone(&socket))).abort_handle(),
                    tokio::spawn(tick(Arc::clone(&shared), socket)).abort_handle(),
                    tokio::spawn(probe(Arc::clone(&shared))).abort_handle(),
                ])
            }
            Err(_) => Arc::new([]),
        };
        Self { shared, tasks }
    }

    /// Stops sending and receiving heartbeats (as when the agent dies).
    pub fn stop(&self) {
        for task in self.tasks.iter() {
            task.abort();
        }
    }

    /// Notified whenever a role changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.roles.subscribe()
    }

    /// The VIPs of the config: new ones start as standby (active when `held` says this node
    /// already holds the VIP), removed ones are forgotten.
    pub fn set_groups(&self, groups: BTreeMap<IpAddr, Group>, held: &dyn Fn(&IpAddr) -> bool) {
        let now = Instant::now();
        let mut state = self.shared.lock();
        state.elections.retain(|address, _| groups.contains_key(address));
        state.peers.retain(|address, _| groups.contains_key(address));
        state.local.retain(|address, _| groups.contains_key(address));
        state
            .synced_since
            .retain(|address, _| groups.contains_key(address));
        state.reannounce.retain(|address| groups.contains_key(address));
        state.takeovers.forget_others(&groups);
        for (address, group) in &groups {
            let settings = group.settings(*address, &self.shared.node);
            match state.elections.get_mut(address) {
                Some(election) => election.update(settings),
                None => {
                    let mut election = Election::new(settings, now);
                    if held(address) {
                        tracing::info!(vip = %address, "the VIP gets a second director; this node holds it and stays active");
                        election.adopt_active();
                    }
                    state.elections.insert(*address, election);
                }
            }
        }
        let unchecked = groups.keys().any(|address| !state.uplinks.contains_key(address));
        state.uplinks.retain(|address, _| groups.contains_key(address));
        state.groups = groups;
        drop(state);
        if unchecked {
            self.shared.recheck.notify_one();
        }
    }

    /// The VIPs with an election that this node holds now (one look at every role).
    pub fn held(&self) -> std::collections::BTreeSet<IpAddr> {
        let state = self.shared.lock();
        state
            .elections
            .iter()
            .filter(|(_, election)| election.role() == Role::Active)
            .map(|(address, _)| *address)
            .collect()
    }

    /// Whether this node should hold `address`: VIPs without an election always, the others
    /// while this node is active.
    pub fn holds(&self, address: &IpAddr) -> bool {
        let state = self.shared.lock();
        state
            .elections
            .get(address)
            .is_none_or(|election| election.role() == Role::Active)
    }

    /// This node's own state for each VIP, after a pass; and whether the backup sync daemon runs.
    pub fn set_local(&self, local: BTreeMap<IpAddr, Local>, backup_running: bool) {
        {
            let mut state = self.shared.lock();
            state.local = local;
            state.backup_running = backup_running;
        }
        self.shared.evaluate_all();
    }

    /// The reconciler announced `address` (first gratuitous ARP / NA sent) at `at`.
    pub fn announced(&self, address: IpAddr, at: Instant) {
        let mut state = self.shared.lock();
        let Some((decided, last_heard)) = state.takeovers.pending.remove(&address) else {
            return;
        };
        let since = last_heard.unwrap_or(decided);
        let duration = at.saturating_duration_since(since);
        if let Some(record) = state.takeovers.records.get_mut(&address) {
            record.garp_sent_at = Some(Time(k8s_openapi::jiff::Timestamp::now()));
            record.duration_millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            record.detection_millis =
                u64::try_from(decided.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX);
            tracing::info!(
                vip = %address,
                from = record.from.as_deref().unwrap_or("none"),
                reason = %record.reason,
                detection_ms = decided.saturating_duration_since(since).as_millis(),
                duration_ms = duration.as_millis(),
                "took over the VIP and announced it"
            );
        }
        self.shared.metrics.failover.failover_completed(duration);
    }

    /// The reconciler removed these VIPs (or never had them): peers may now hear "standby".
    pub fn released(&self, addresses: Vec<IpAddr>) {
        let mut any = false;
        {
            let mut state = self.shared.lock();
            for address in addresses {
                any |= state.takeovers.releasing.remove(&address).is_some();
            }
        }
        if any {
            self.shared.wake.notify_one();
        }
    }

    /// VIPs this node holds that must be announced again (another host claimed them).
    pub fn take_reannounce(&self) -> Vec<IpAddr> {
        std::mem::take(&mut self.shared.lock().reannounce)
            .into_iter()
            .collect()
    }

    /// Every VIP's failover state for the node's status.
    pub fn status(&self) -> Vec<VipFailoverStatus> {
        let state = self.shared.lock();
        let now = Instant::now();
        let refusal = &self.shared.refusal;
        state
            .elections
            .iter()
            .map(|(address, election)| {
                let settings = election.settings();
                let peers = state.peers.get(address);
                let peers_alive: Vec<String> = peers
                    .into_iter()
                    .flatten()
                    .filter(|(_, peer)| now.saturating_duration_since(peer.heard_at) < settings.dead_after)
                    .map(|(node, _)| node.clone())
                    .collect();
                let active_director = match election.role() {
                    Role::Active => Some(self.shared.node.clone()),
                    Role::Standby => peers.and_then(|peers| {
                        peers
                            .iter()
                            .find(|(node, peer)| {
                                peer.report.role == Role::Active && peers_alive.contains(node)
                            })
                            .map(|(node, _)| node.clone())
                    }),
                };
                let local = effective(state.local.get(address), state.uplinks.get(address));
                VipFailoverStatus {
                    address: address.to_string(),
                    role: election.role().as_str().to_owned(),
                    active_director,
                    eligible: local.eligible,
                    message: refusal.clone().or_else(|| election.message().map(str::to_owned)),
                    peers_alive,
                    duplicate_owners: election.duplicates().to_vec(),
                    last_failover: state.takeovers.records.get(address).cloned(),
                }
            })
            .collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs every election; publishes role changes. Returns whether a role changed.
    fn evaluate_all(&self) -> bool {
        if self.refusal.is_some() {
            return false;
        }
        let now = Instant::now();
        let mut changed = false;
        let mut state = self.lock();
        let State {
            elections,
            groups,
            local,
            uplinks,
            peers,
            backup_running,
            synced_since,
            takeovers,
            ..
        } = &mut *state;
        let empty = BTreeMap::new();
        for (address, election) in elections.iter_mut() {
            // A synced backup: standby, receiving from a live active peer's master daemon.
            let active_peer = peers.get(address).is_some_and(|peers| {
                peers.values().any(|peer| {
                    peer.report.role == Role::Active
                        && now.saturating_duration_since(peer.heard_at) < election.settings().dead_after
                })
            });
            let synced = *backup_running
                && active_peer
                && election.role() == Role::Standby
                && groups
                    .get(address)
                    .is_some_and(|group| group.connection_sync.is_some());
            if synced {
                synced_since.entry(*address).or_insert(now);
            } else {
                synced_since.remove(address);
            }
            let mut local = effective(local.get(address), uplinks.get(address));
            local.synced_since = synced_since.get(address).copied();
            let decision = election.evaluate(now, &local, peers.get(address).unwrap_or(&empty));
            let dead_after = election.settings().dead_after;
            changed |= self.record(*address, decision, now, dead_after, takeovers);
        }
        drop(state);
        if changed {
            self.roles.send_modify(|version| *version += 1);
            self.wake.notify_one();
        }
        changed
    }

    fn record(
        &self,
        address: IpAddr,
        decision: Decision,
        now: Instant,
        dead_after: Duration,
        takeovers: &mut Takeovers,
    ) -> bool {
        match decision {
            Decision::Stay => false,
            Decision::TakeOver {
                reason,
                from,
                last_heard,
            } => {
                tracing::warn!(vip = %address, from = from.as_deref().unwrap_or("none"), reason, "taking over the VIP");
                self.metrics.failover.election(address, true);
                takeovers.records.insert(
                    address,
                    FailoverRecord {
                        from,
                        to: self.node.clone(),
                        reason: reason.to_owned(),
                        detected_at: Time(k8s_openapi::jiff::Timestamp::now()),
                        garp_sent_at: None,
                        detection_millis: 0,
                        duration_millis: 0,
                    },
                );
                takeovers.pending.insert(address, (now, last_heard));
                takeovers.releasing.remove(&address);
                true
            }
            Decision::StepDown { reason } => {
                tracing::warn!(vip = %address, "stepping down: {reason}");
                self.metrics.failover.election(address, false);
                takeovers.pending.remove(&address);
                takeovers.releasing.insert(address, now + dead_after);
                true
            }
        }
    }

    /// The heartbeat this node sends now, and to whom.
    fn heartbeat(&self) -> (Heartbeat, Vec<SocketAddr>) {
        let mut state = self.lock();
        state.sequence += 1;
        let now = Instant::now();
        let vips = state
            .elections
            .iter()
            .map(|(address, election)| {
                let local = effective(state.local.get(address), state.uplinks.get(address));
                let synced_since = state.synced_since.get(address).copied();
                let releasing = state
                    .takeovers
                    .releasing
                    .get(address)
                    .is_some_and(|deadline| *deadline > now);
                VipReport {
                    address: *address,
                    role: if releasing { Role::Active } else { election.role() },
                    eligible: local.eligible,
                    wants_vip: election.wants_vip(),
                    healthy: local.healthy,
                    synced_millis: synced_since.map_or(0, |since| {
                        u32::try_from(now.saturating_duration_since(since).as_millis())
                            .unwrap_or(u32::MAX)
                            .max(1)
                    }),
                }
            })
            .collect();
        let mut targets: Vec<SocketAddr> = state
            .groups
            .values()
            .flat_map(|group| group.peers.iter())
            .filter(|(node, _)| **node != self.node)
            .filter_map(|(_, address)| *address)
            .map(|address| SocketAddr::new(address, self.port))
            .collect();
        targets.sort();
        targets.dedup();
        (
            Heartbeat {
                node: self.node.clone(),
                incarnation: state.incarnation,
                sequence: state.sequence,
                vips,
            },
            targets,
        )
    }

    /// Takes in a peer's heartbeat; false when it is a replay or from a stranger.
    fn accept(&self, heartbeat: Heartbeat) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let known = state
            .groups
            .values()
            .any(|group| group.peers.contains_key(&heartbeat.node));
        if !known || heartbeat.node == self.node {
            return false;
        }
        let fresh = match state.sequences.get(&heartbeat.node) {
            Some((incarnation, sequence)) => {
                *incarnation != heartbeat.incarnation || heartbeat.sequence > *sequence
            }
            None => true,
        };
        if !fresh {
            return false;
        }
        state.sequences.insert(
            heartbeat.node.clone(),
            (heartbeat.incarnation, heartbeat.sequence),
        );
        let addresses: Vec<IpAddr> = state.elections.keys().copied().collect();
        for address in addresses {
            let peers = state.peers.entry(address).or_default();
            match heartbeat.vips.iter().find(|vip| vip.address == address) {
                Some(report) => {
                    peers.insert(
                        heartbeat.node.clone(),
                        PeerReport {
                            heard_at: now,
                            report: report.clone(),
                        },
                    );
                }
                None => {
                    peers.remove(&heartbeat.node);
                }
            }
        }
        true
    }

    fn probe_targets(&self) -> Vec<(IpAddr, Option<String>)> {
        let state = self.lock();
        state
            .elections
            .iter()
            .filter(|(_, election)| election.role() == Role::Active || election.held_back())
            .map(|(address, _)| {
                let interface = state
                    .groups
                    .get(address)
                    .and_then(|group| group.interface.clone());
                (*address, interface)
            })
            .collect()
    }

    fn probed(&self, address: IpAddr, claimants: Vec<String>) {
        let now = Instant::now();
        let changed = {
            let mut state = self.lock();
            let State {
                elections,
                peers,
                takeovers,
                reannounce,
                ..
            } = &mut *state;
            let Some(election) = elections.get_mut(&address) else {
                return;
            };
            let empty = BTreeMap::new();
            let before = election.duplicates().to_vec();
            let decision = election.probed(claimants, now, peers.get(&address).unwrap_or(&empty));
            self.metrics
                .failover
                .duplicate_vip(address, !election.duplicates().is_empty());
            let duplicates_changed = before.is_empty() != election.duplicates().is_empty();
            let dead_after = election.settings().dead_after;
            let changed = self.record(address, decision, now, dead_after, takeovers) || duplicates_changed;
            if duplicates_changed && election.role() == Role::Active {
                // Another host claimed the VIP (and may have announced it), or stopped: tell the
                // neighbours again who holds it.
                reannounce.insert(address);
            }
            changed
        };
        if changed {
            self.roles.send_modify(|version| *version += 1);
            self.wake.notify_one();
        }
    }

    fn tick_interval(&self) -> Duration {
        let state = self.lock();
        state
            .groups
            .values()
            .map(|group| group.interval)
            .min()
            .unwrap_or(Duration::from_millis(200))
    }
}

/// This node's state for a VIP with the uplink's state folded in: an uplink that is down, or
/// not checked yet, makes the node ineligible.
fn effective(local: Option<&Local>, uplink: Option<&Option<String>>) -> Local {
    let mut local = local.cloned().unwrap_or_else(|| Local {
        reason: Some("not reconciled yet".to_owned()),
        ..Local::default()
    });
    let down = match uplink {
        None => Some("the uplink has not been checked yet".to_owned()),
        Some(down) => down.clone(),
    };
    if let Some(why) = down
        && local.eligible
    {
        local.eligible = false;
        local.reason = Some(why);
    }
    local
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let Some(key) = shared.key.as_ref() else { return };
    let mut buffer = vec![0u8; 65_536];
    loop {
        let (length, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!("receiving a heartbeat: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match wire::decode(&buffer[..length], key) {
            Ok(heartbeat) => {
                if shared.accept(heartbeat) {
                    shared.evaluate_all();
                } else {
                    shared.metrics.failover.heartbeat_rejected("replay-or-stranger");
                }
            }
            Err(error) => {
                tracing::debug!(%from, "ignored a datagram: {error}");
                shared.metrics.failover.heartbeat_rejected(error.label());
            }
        }
    }
}

async fn tick(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let Some(key) = shared.key.as_ref() else { return };
    let mut next_send = Instant::now();
    loop {
        let interval = shared.tick_interval();
        // Decisions are checked four times per interval, so a dead peer is noticed within a
        // quarter interval of its deadline; heartbeats go out every interval and at once after a
        // role change.
        let woken = tokio::select! {
            () = tokio::time::sleep(interval / 4) => false,
            () = shared.wake.notified() => true,
        };
        let changed = shared.evaluate_all();
        if woken || changed || Instant::now() >= next_send {
            let (heartbeat, targets) = shared.heartbeat();
            if !heartbeat.vips.is_empty() {
                let datagram = wire::encode(&heartbeat, key);
                for target in targets {
                    if let Err(error) = socket.send_to(&datagram, target).await {
                        tracing::debug!(%target, "sending a heartbeat: {error}");
                    }
                }
            }
            next_send = Instant::now() + interval;
        }
    }
}

async fn probe(shared: Arc<Shared>) {
    loop {
        let targets: Vec<(IpAddr, Option<String>)> = {
            let state = shared.lock();
            state
                .groups
                .iter()
                .map(|(address, group)| (*address, group.interface.clone()))
                .collect()
        };
        let mut uplinks = BTreeMap::new();
        for (address, interface) in targets {
            uplinks.insert(address, (shared.uplink)(address, interface).await);
        }
        let uplinks_changed = {
            let mut state = shared.lock();
            let changed = state.uplinks != uplinks;
            state.uplinks = uplinks;
            changed
        };
        if uplinks_changed {
            shared.evaluate_all();
        }
        for (address, interface) in shared.probe_targets() {
            match (shared.prober)(address, interface).await {
                Ok(claimants) => {
                    if !claimants.is_empty() {
                        tracing::warn!(vip = %address, owners = ?claimants, "another host answers for the VIP");
                    }
                    shared.probed(address, claimants);
                }
                Err(error) => tracing::warn!(vip = %address, "probing who answers for the VIP: {error}"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = shared.recheck.notified() => {}
        }
    }
}
