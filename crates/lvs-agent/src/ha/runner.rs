//! The failover service of one agent: one task owns the `FailoverState` and everything that
//! changes it arrives there as a message — a pass report, a peer's heartbeat (it owns the UDP
//! socket), a probe or uplink result, a restart notice — or as a tick of its clock (heartbeats
//! every interval, decisions four times per interval). Out go heartbeats, a `watch` of the roles
//! passes follow, the status (as the answer to a report) and the saved restart state. A second
//! task runs the slow checks (uplinks, who answers ARP/NDP for a VIP) and sends their results in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::detector::{Probe, StallWatch};
use super::record::{Now, Uplink, VipStatus};
use super::restart::{self, RestartState, RestartStore};
use super::state::{FailoverState, PassReport, Roles};
use super::wire::{self, HeartbeatKeys, Role, WireError};
use crate::metrics::Metrics;

/// Asks who else answers for a VIP on an uplink: MAC addresses.
pub type Prober =
    Arc<dyn Fn(IpAddr, Option<String>) -> BoxFuture<'static, Result<Vec<String>, String>> + Send + Sync>;

/// Whether the uplink of a VIP is up: None when it is, else why not.
pub type UplinkCheck =
    Arc<dyn Fn(IpAddr, Option<String>) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// How often the VIPs this node holds are probed for other owners (and uplinks checked).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How often a VIP is probed while its holder is silent (or restarting) and still answers: a
/// takeover waits for the probe that finds nobody, so it must follow soon after the holder goes.
const SILENT_HOLDER_PROBE_INTERVAL: Duration = Duration::from_millis(50);
pub use super::detector::PROBE_WAIT;
/// How many VIPs are probed at once (each probe is a raw socket on a thread of the blocking
/// pool for its wait).
const PROBES_AT_ONCE: usize = 16;
/// How long a peer that said it is restarting keeps its role without heartbeats, by default.
pub const DEFAULT_RESTART_HOLD: Duration = Duration::from_secs(30);

/// Settings of the failover service.
pub struct Options {
    /// This node.
    pub node: String,
    /// UDP port heartbeats are sent to and received on (the same on every director).
    pub port: u16,
    /// The address to receive heartbeats on (`0.0.0.0`: all).
    pub bind: IpAddr,
    /// The shared key (and, during a rotation, the previous one); None refuses to take part
    /// (and says so in status).
    pub key: Option<HeartbeatKeys>,
    /// Probes for other owners of a VIP.
    pub prober: Prober,
    /// Checks a VIP's uplink.
    pub uplink: UplinkCheck,
    /// Where the state for a restart is kept.
    pub restart_store: RestartStore,
    /// The VIPs on our device when the agent started.
    pub in_kernel: BTreeSet<IpAddr>,
    /// How long a peer that said it is restarting keeps its role without heartbeats (while a
    /// probe still finds it answering for the VIP).
    pub restart_hold: Duration,
}

impl Options {
    /// Settings with no restart state, nothing in the kernel and the default restart hold.
    pub fn new(
        node: &str,
        port: u16,
        bind: IpAddr,
        key: Option<HeartbeatKeys>,
        prober: Prober,
        uplink: UplinkCheck,
    ) -> Self {
        Self {
            node: node.to_owned(),
            port,
            bind,
            key,
            prober,
            uplink,
            restart_store: RestartStore::none(),
            in_kernel: BTreeSet::new(),
            restart_hold: DEFAULT_RESTART_HOLD,
        }
    }
}

/// Handle to the failover service.
#[derive(Clone)]
pub struct Failover {
    commands: mpsc::UnboundedSender<Command>,
    roles: watch::Receiver<Roles>,
    tasks: Arc<[tokio::task::AbortHandle]>,
}

enum Command {
    Report(PassReport, oneshot::Sender<Vec<VipStatus>>),
    Status(oneshot::Sender<Vec<VipStatus>>),
    Probed(IpAddr, Probe),
    Uplinks(BTreeMap<IpAddr, Uplink>),
    Restarting(oneshot::Sender<()>),
}

impl Failover {
    /// Starts the service's tasks on the current runtime, resuming from the saved restart
    /// state. Without a key, or when the port cannot be bound, no VIP with more than one
    /// director is ever taken (status says why).
    pub async fn start(options: Options, metrics: Arc<Metrics>) -> Self {
        let saved = options.restart_store.load(&options.node);
        let incarnation = restart::next_incarnation(
            saved.as_ref().map(|saved| saved.incarnation),
            std::time::SystemTime::now(),
        );
        let socket = match &options.key {
            None => Err(
                "no failover key: start the agent with --failover-key-file (the chart mounts one); this node never takes a VIP shared with other directors"
                    .to_owned(),
            ),
            Some(_) => bind(options.bind, options.port)
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
        let mut state = FailoverState::new(
            &options.node,
            incarnation,
            socket.as_ref().err().cloned(),
            options.restart_hold,
            Arc::clone(&metrics),
        );
        state.resume(saved, &options.in_kernel, Now::current());
        // A resumed VIP's uplink is checked before the first decision: a held VIP is never
        // given up because its uplink merely has not been checked yet.
        if !state.is_empty() {
            let checks = check_uplinks(&options.uplink, state.uplink_targets()).await;
            state.uplinks(checks, Now::current());
            state.release_unreachable(Now::current());
        }
        // The incarnation is saved before the first heartbeat goes out: the next start takes a
        // larger one even if the clock went back.
        let saved = state.restart_state();
        options.restart_store.save(&saved);
        let (roles, roles_receiver) = watch::channel(state.roles());
        let (plan, plan_receiver) = watch::channel(ProbePlan::of(&state));
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let socket = socket.ok();
        let dual_stack = socket
            .as_ref()
            .and_then(|socket| socket.local_addr().ok())
            .is_some_and(|local| local.is_ipv6());
        let actor = Actor {
            state,
            socket: socket.map(Arc::new),
            dual_stack,
            key: options.key,
            port: options.port,
            roles,
            plan,
            store: options.restart_store,
            saved,
            metrics,
        };
        let checker = Checker {
            prober: options.prober,
            uplink: options.uplink,
            commands: commands.clone(),
        };
        let tasks: Arc<[tokio::task::AbortHandle]> = Arc::new([
            tokio::spawn(actor.run(command_receiver)).abort_handle(),
            tokio::spawn(checker.run(plan_receiver)).abort_handle(),
        ]);
        Self {
            commands,
            roles: roles_receiver,
            tasks,
        }
    }

    /// Stops sending and receiving heartbeats (as when the agent dies).
    pub fn stop(&self) {
        for task in self.tasks.iter() {
            task.abort();
        }
    }

    /// The roles, as a watch that changes whenever one does.
    pub fn subscribe(&self) -> watch::Receiver<Roles> {
        self.roles.clone()
    }

    /// The roles now.
    pub fn roles(&self) -> Roles {
        self.roles.borrow().clone()
    }

    /// Whether this node holds the failover VIP `address` now.
    pub fn holds(&self, address: &IpAddr) -> bool {
        self.roles.borrow().elections.get(address) == Some(&Role::Active)
    }

    /// One pass's report; answers with every VIP's state once it is taken in.
    pub async fn report(&self, report: PassReport) -> Vec<VipStatus> {
        self.ask(|answer| Command::Report(report, answer)).await
    }

    /// Every VIP's state.
    pub async fn status(&self) -> Vec<VipStatus> {
        self.ask(Command::Status).await
    }

    /// The agent stops and will be back: tells the peers at once to keep this node as the
    /// holder of its VIPs (their restart hold), so a rollout does not move them.
    pub async fn restarting(&self) {
        let (answer, answered) = oneshot::channel();
        if self.commands.send(Command::Restarting(answer)).is_ok() {
            let _ = answered.await;
        }
    }

    async fn ask(&self, command: impl FnOnce(oneshot::Sender<Vec<VipStatus>>) -> Command) -> Vec<VipStatus> {
        let (answer, answered) = oneshot::channel();
        if self.commands.send(command(answer)).is_err() {
            return Vec::new();
        }
        answered.await.unwrap_or_default()
    }
}

/// What the checker looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct ProbePlan {
    uplinks: Vec<(IpAddr, Option<String>)>,
    probes: Vec<(IpAddr, Option<String>)>,
    unchecked: bool,
    /// A takeover waits for a probe (a holder is silent): probe again soon.
    urgent: bool,
}

impl ProbePlan {
    fn of(state: &FailoverState) -> Self {
        Self {
            uplinks: state.uplink_targets(),
            probes: state.probe_targets(Instant::now()),
            unchecked: state.uplink_unchecked(),
            urgent: state.awaiting_probe(Instant::now()),
        }
    }
}

/// The task that owns the failover state.
struct Actor {
    state: FailoverState,
    socket: Option<Arc<UdpSocket>>,
    /// The socket is IPv6 (`[::]` or an IPv6 address): IPv4 peers are sent to as
    /// `::ffff:a.b.c.d`.
    dual_stack: bool,
    key: Option<HeartbeatKeys>,
    port: u16,
    roles: watch::Sender<Roles>,
    plan: watch::Sender<ProbePlan>,
    store: RestartStore,
    saved: RestartState,
    metrics: Arc<Metrics>,
}

/// What woke the actor.
enum Event {
    Command(Command),
    Datagram(usize, SocketAddr),
    Tick,
    Closed,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buffer = vec![0u8; 65_536];
        let mut next_send = Instant::now();
        let mut stalls = StallWatch::default();
        loop {
            // The task wakes for the next heartbeat to send (every interval, and at once after
            // a role change), at the next peer deadline (a decision is made at its deadline),
            // and at least once per interval for the slower timers (listening after a start,
            // preemption).
            let interval = self.state.interval();
            let socket = self.socket.clone();
            let woke = Instant::now();
            let wake = [
                Some(next_send),
                self.state.next_deadline(woke),
                Some(woke + interval),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(woke + interval);
            stalls.plan(wake);
            // Heartbeats first: what peers said is taken in before any decision.
            let event = tokio::select! {
                biased;
                received = receive(socket.as_deref(), &mut buffer) => match received {
                    Ok((length, from)) => Event::Datagram(length, from),
                    Err(error) => {
                        tracing::warn!("receiving a heartbeat: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Event::Tick
                    }
                },
                command = commands.recv() => command.map_or(Event::Closed, Event::Command),
                () = tokio::time::sleep_until(wake) => Event::Tick,
            };
            let now = Now::current();
            // Woke a whole interval late (the node starved this task, or the process was
            // paused): the peers' silence meanwhile was not heard, so it does not count.
            if let Some(stall) = stalls.woke(now.instant, interval) {
                self.state.stalled(stall);
            }
            let reported = matches!(event, Event::Command(Command::Report(..)));
            let mut send_now = match event {
                Event::Closed => return,
                Event::Command(command) => self.handle(command, now).await,
                Event::Datagram(length, from) => {
                    self.datagram(&buffer[..length], from, now);
                    // Every datagram already waiting too (a round in parts, or a burst that
                    // queued while this task did not run): no VIP is judged on a stale part.
                    if let Some(socket) = socket.as_deref() {
                        while let Ok((length, from)) = socket.try_recv_from(&mut buffer) {
                            self.datagram(&buffer[..length], from, now);
                        }
                    }
                    false
                }
                Event::Tick => false,
            };
            send_now |= self.state.evaluate(now);
            send_now |= self.publish(reported);
            if send_now || now.instant >= next_send {
                self.send_heartbeat().await;
                next_send = Instant::now() + self.state.interval();
            }
        }
    }

    /// Handles a command; returns whether a heartbeat should go out at once.
    async fn handle(&mut self, command: Command, now: Now) -> bool {
        match command {
            Command::Report(report, answer) => {
                let released = !report.released.is_empty();
                let changed = self.state.report(report, now);
                let _ = answer.send(self.state.status(now.instant));
                changed || released
            }
            Command::Status(answer) => {
                let _ = answer.send(self.state.status(now.instant));
                false
            }
            Command::Probed(address, probe) => {
                if !probe.claimants.is_empty() {
                    tracing::warn!(vip = %address, owners = ?probe.claimants, "another host answers for the VIP");
                }
                self.state.probed(address, probe, now)
            }
            Command::Uplinks(checks) => self.state.uplinks(checks, now),
            Command::Restarting(answer) => {
                self.state.set_restarting();
                // Twice, in case one is lost.
                self.send_heartbeat().await;
                self.send_heartbeat().await;
                let _ = answer.send(());
                false
            }
        }
    }

    fn datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Now) {
        let Some(keys) = self.key.as_ref() else { return };
        // An IPv4 peer on the dual-stack socket arrives as ::ffff:a.b.c.d.
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let reason = match wire::decode(bytes, keys) {
            Ok((heartbeat, key)) => match self.state.accept(heartbeat, from.ip(), key, now.instant) {
                Ok(()) => return,
                Err(rejection) => {
                    tracing::debug!(%from, "ignored a heartbeat: {rejection:?}");
                    rejection.label()
                }
            },
            Err(WireError::OtherKey { node, key_id }) => {
                tracing::debug!(%from, %node, %key_id, "ignored a heartbeat signed with another key");
                if self.state.other_key(&node, from.ip(), key_id, now.instant) {
                    "key_mismatch"
                } else {
                    "other_key"
                }
            }
            Err(error) => {
                tracing::debug!(%from, "ignored a datagram: {error}");
                error.label()
            }
        };
        self.metrics.failover.heartbeat_rejected(reason);
    }

    /// Publishes roles and the checker's plan where they changed, and saves the restart state
    /// after a pass's report or a change of the VIPs held (all it holds: groups and local state
    /// come with reports) — not on every heartbeat; returns whether a role changed.
    fn publish(&mut self, reported: bool) -> bool {
        // Passes wake only when what they act on or report changes — which VIPs are held, which
        // to announce again, which another host answers for — not when a report adds a record
        // that follows the pass's own choice.
        let roles = self.state.roles();
        let changed = self.roles.send_if_modified(|current| {
            let changed = current.held() != roles.held()
                || current.reannounce != roles.reannounce
                || current.duplicates != roles.duplicates;
            *current = roles;
            changed
        });
        let plan = ProbePlan::of(&self.state);
        self.plan.send_if_modified(|current| {
            let changed = *current != plan;
            if changed {
                *current = plan;
            }
            changed
        });
        if reported || changed || self.state.take_marks_changed() {
            let saved = self.state.restart_state();
            if saved != self.saved {
                self.store.save(&saved);
                self.saved = saved;
            }
        }
        changed
    }

    async fn send_heartbeat(&mut self) {
        let (Some(socket), Some(keys)) = (self.socket.as_ref(), self.key.as_ref()) else {
            return;
        };
        for (target, datagram) in self.state.heartbeats(Instant::now(), self.port, keys) {
            let target = match target {
                SocketAddr::V4(v4) if self.dual_stack => {
                    SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
                }
                other => other,
            };
            if let Err(error) = socket.send_to(&datagram, target).await {
                tracing::debug!(%target, "sending a heartbeat: {error}");
            }
        }
    }
}

/// The heartbeat socket on `address`; for `0.0.0.0` (no address given) a dual-stack socket on
/// `[::]` that reaches IPv4 and IPv6 peers alike (IPv4 ones as `::ffff:a.b.c.d`), or `0.0.0.0`
/// where the node has no IPv6.
async fn bind(address: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    if address == IpAddr::from([0, 0, 0, 0])
        && let Ok(socket) = UdpSocket::bind(SocketAddr::new(
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            port,
        ))
        .await
    {
        return Ok(socket);
    }
    UdpSocket::bind(SocketAddr::new(address, port)).await
}

async fn receive(socket: Option<&UdpSocket>, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

/// The task that runs the slow checks and reports their results to the actor.
struct Checker {
    prober: Prober,
    uplink: UplinkCheck,
    commands: mpsc::UnboundedSender<Command>,
}

impl Checker {
    /// Checks the plan's uplinks and sends the results; false when the actor is gone.
    async fn uplinks(&self, plan: &ProbePlan) -> bool {
        let uplinks = check_uplinks(&self.uplink, plan.uplinks.clone()).await;
        self.commands.send(Command::Uplinks(uplinks)).is_ok()
    }

    async fn run(self, mut plan: watch::Receiver<ProbePlan>) {
        let mut uplinks_checked: Option<Instant> = None;
        loop {
            let current = plan.borrow_and_update().clone();
            // Unchecked uplinks first (a new VIP is not eligible until checked); otherwise the
            // probes first: a takeover may be waiting for one (is a silent holder still there?).
            if current.unchecked {
                if !self.uplinks(&current).await {
                    return;
                }
                uplinks_checked = Some(Instant::now());
            }
            // Several VIPs at once (each probe listens for its whole wait when nobody answers:
            // one after another, the last of a silent holder's VIPs would wait for all the
            // others); each result goes in as soon as it is there.
            let mut probes = futures::stream::iter(current.probes.clone())
                .map(|(address, interface)| {
                    let prober = Arc::clone(&self.prober);
                    async move {
                        let started = Instant::now();
                        (address, started, prober(address, interface).await)
                    }
                })
                .buffer_unordered(PROBES_AT_ONCE);
            while let Some((address, started, result)) = probes.next().await {
                match result {
                    Ok(claimants) => {
                        let probe = Probe::new(claimants, started);
                        if self.commands.send(Command::Probed(address, probe)).is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(vip = %address, "probing who answers for the VIP: {error}"),
                }
            }
            // Uplinks once per probe interval, also while probes repeat faster.
            if !current.unchecked && uplinks_checked.is_none_or(|checked| checked.elapsed() >= PROBE_INTERVAL)
            {
                if !self.uplinks(&current).await {
                    return;
                }
                uplinks_checked = Some(Instant::now());
            }
            // Again after the interval (soon while a takeover waits for a probe), or at once when
            // a VIP's uplink has not been checked.
            let every = if current.urgent {
                SILENT_HOLDER_PROBE_INTERVAL
            } else {
                PROBE_INTERVAL
            };
            let deadline = tokio::time::sleep(every);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    changed = plan.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // At once when an uplink is not checked yet, or there is a new VIP to
                        // probe (a silent holder: is the VIP still answered?).
                        let next = plan.borrow();
                        if next.unchecked || next.probes.iter().any(|target| !current.probes.contains(target)) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Checks the uplinks of `targets`.
async fn check_uplinks(
    check: &UplinkCheck,
    targets: Vec<(IpAddr, Option<String>)>,
) -> BTreeMap<IpAddr, Uplink> {
    let mut checks = BTreeMap::new();
    for (address, interface) in targets {
        let uplink = match check(address, interface).await {
            None => Uplink::Up,
            Some(why) => Uplink::Down(why),
        };
        checks.insert(address, uplink);
    }
    checks
}
