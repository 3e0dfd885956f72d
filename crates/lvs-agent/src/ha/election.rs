//! Who holds one VIP, decided by every director alone from the same inputs (pure): the
//! directors' priority order, what each live peer last said, and this node's own health.
//!
//! Rules, in order:
//! - A candidate is a live director (heard within the dead interval, or this node) that is
//!   eligible; while some candidate has healthy real servers, those without are not candidates.
//! - Active: step down when not a candidate while another director is; when a higher-priority
//!   director is active too (two actives after a partition heals); when a higher-priority
//!   candidate asks for the VIP (preemption); on evidence alone — another host answers for the
//!   VIP and a higher-priority director is out of reach (split brain: it probably holds it) —
//!   only under a bounded rule: the answers came in [`EVIDENCE_PROBES`] probes in a row (a
//!   single reply, e.g. a stale or spoofed one right after a takeover, is reported but moves
//!   nothing), and at most once per [`EVIDENCE_HOLD`] per VIP (after that the duplicate is
//!   reported and the VIP re-announced, but a host answering ARP cannot keep taking it down).
//!   The MACs reported are other hosts' only (the prober leaves out this node's own interfaces),
//!   at most [`MAX_DUPLICATES`].
//! - Standby: take the VIP when no live peer holds it, this node is the best candidate that is
//!   not already active, it has listened for one dead interval since starting, and it is not
//!   held back by another host answering for the VIP. With preemption, a higher-priority
//!   candidate asks for the VIP once it has been eligible for the preemption delay and (with
//!   connection sync) a synced backup for the failback time; the active hands it over.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::wire::{Role, VipReport};

/// Probes in a row that must find another host answering before an active director steps down
/// on that evidence alone (probes run every second).
pub const EVIDENCE_PROBES: u32 = 3;
/// After a step-down on evidence alone, how long before evidence may cause another.
pub const EVIDENCE_HOLD: Duration = Duration::from_secs(300);
/// The most MACs kept as other owners of a VIP (they go into status and Events).
pub const MAX_DUPLICATES: usize = 8;

/// One VIP's election settings, the same on every director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The VIP.
    pub address: IpAddr,
    /// Directors, highest priority first.
    pub ranked: Vec<String>,
    /// This node.
    pub me: String,
    /// Silence after which a peer is dead.
    pub dead_after: Duration,
    /// Whether a higher-priority director takes the VIP back.
    pub preempt: bool,
    /// How long it must have been eligible first.
    pub preempt_delay: Duration,
    /// With connection sync: how long it must have been a synced backup first.
    pub failback_sync: Option<Duration>,
}

impl Settings {
    fn rank(&self, node: &str) -> usize {
        self.ranked
            .iter()
            .position(|name| name == node)
            .unwrap_or(usize::MAX)
    }
}

/// What a peer last said about this VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// When it was heard.
    pub heard_at: Instant,
    /// What it said.
    pub report: VipReport,
    /// The peer holds the VIP but its agent is restarting (it said so) or fell silent while the
    /// VIP may still be served: it counts as live (and keeps its role) until then, unless a
    /// probe finds nobody answering for the VIP.
    pub hold_until: Option<Instant>,
    /// A probe found nobody answering for the VIP since this report: no hold any more.
    pub gone: bool,
    /// The silence this peer is allowed when longer than the dead interval: its heartbeats
    /// arrived irregularly of late (see `detector`).
    pub allowed: Duration,
}

impl PeerReport {
    /// A report heard at `heard_at`, with no restart hold.
    pub fn heard(heard_at: Instant, report: VipReport) -> Self {
        Self {
            heard_at,
            report,
            hold_until: None,
            gone: false,
            allowed: Duration::ZERO,
        }
    }

    /// The silence after which the peer is dead: `dead_after`, or longer when it is allowed
    /// more.
    pub fn silence_allowed(&self, dead_after: Duration) -> Duration {
        dead_after.max(self.allowed)
    }

    /// Whether the peer counts as live at `now`: heard within the silence it is allowed (at
    /// least `dead_after`), or restarting within its hold.
    pub fn live(&self, now: Instant, dead_after: Duration) -> bool {
        now.saturating_duration_since(self.heard_at) < self.silence_allowed(dead_after)
            || self.hold_until.is_some_and(|until| now < until)
    }
}

/// Why a director took a VIP: the API's reason, shown as is in `FailoverRecord.reason`.
pub use lvs_api::TakeoverReason;

/// This node's own state for the VIP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// IPVS programmed and uplink up.
    pub eligible: bool,
    /// Why not.
    pub reason: Option<String>,
    /// Healthy real servers.
    pub healthy: u16,
    /// Since when it has been a synced backup (None: not).
    pub synced_since: Option<Instant>,
}

/// What the election decided now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current role.
    Stay,
    /// Take the VIP.
    TakeOver {
        /// Why.
        reason: TakeoverReason,
        /// The director that held it before, if known.
        from: Option<String>,
        /// When that director was last heard holding it.
        last_heard: Option<Instant>,
    },
    /// Give the VIP up.
    StepDown {
        /// Why, for logs and status.
        reason: String,
    },
}

/// The election of one VIP on this node.
#[derive(Debug, Clone)]
pub struct Election {
    settings: Settings,
    role: Role,
    started: Instant,
    eligible_since: Option<Instant>,
    wants_vip: bool,
    asked: bool,
    held_back: bool,
    duplicates: Vec<String>,
    /// Probes in a row that found another host answering for the VIP.
    evidence: u32,
    /// When this node last stepped down on evidence alone.
    evidence_step_down: Option<Instant>,
    last_active: Option<(String, Instant)>,
    message: Option<String>,
}

impl Election {
    /// A new election, starting as standby at `now`.
    pub fn new(settings: Settings, now: Instant) -> Self {
        Self {
            settings,
            role: Role::Standby,
            started: now,
            eligible_since: None,
            wants_vip: false,
            asked: false,
            held_back: false,
            duplicates: Vec::new(),
            evidence: 0,
            evidence_step_down: None,
            last_active: None,
            message: None,
        }
    }

    /// Starts out holding the VIP: it was held before this election existed (a VIP that had
    /// one director gets a second), so it is not dropped while the directors sort out roles.
    pub fn adopt_active(&mut self) {
        self.role = Role::Active;
    }

    /// A standby that could not hear its peers (its uplink was down) listens for one dead
    /// interval from `now` before it may take the VIP, as after a start.
    pub fn listen_again(&mut self, now: Instant) {
        if self.role == Role::Standby {
            self.started = now;
        }
    }

    /// This agent did not run for `stall`: a standby still listening after its start listens
    /// that much longer.
    pub fn stalled(&mut self, stall: Duration) {
        if self.role == Role::Standby {
            self.started += stall;
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// New settings (the config changed); the role is kept.
    pub fn update(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this node asks for the VIP (preemption).
    pub fn wants_vip(&self) -> bool {
        self.wants_vip
    }

    /// Why this node is not active although it might be, or why it stepped down.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// MACs of other hosts that answered for the VIP at the last probe.
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }

    /// Whether the node holds back because another host answers for the VIP.
    pub fn held_back(&self) -> bool {
        self.held_back
    }

    /// The result of a probe for other hosts answering ARP/NDP for the VIP. Returns a step-down
    /// when this node is active and a higher-priority director it cannot hear probably holds
    /// the VIP too.
    pub fn probed(
        &mut self,
        claimants: Vec<String>,
        now: Instant,
        peers: &BTreeMap<String, PeerReport>,
    ) -> Decision {
        self.duplicates = claimants;
        self.duplicates.truncate(MAX_DUPLICATES);
        let peer_active = peers.iter().any(|(node, peer)| {
            *node != self.settings.me && peer.report.role == Role::Active && self.live(peers, node, now)
        });
        if self.role == Role::Standby && peer_active {
            // The host answering is, as far as we can tell, the peer that holds the VIP.
            self.duplicates.clear();
        }
        if self.duplicates.is_empty() {
            self.held_back = false;
            self.evidence = 0;
            return Decision::Stay;
        }
        self.evidence = self.evidence.saturating_add(1);
        let my_rank = self.settings.rank(&self.settings.me);
        let unheard_better = self
            .settings
            .ranked
            .iter()
            .take(my_rank.min(self.settings.ranked.len()))
            .find(|node| !self.live(peers, node, now));
        match (self.role, unheard_better) {
            (Role::Active, Some(better)) => {
                let answering = format!(
                    "another host ({}) answers for {} and {better}, which has a higher priority, cannot be heard",
                    self.duplicates.join(", "),
                    self.settings.address
                );
                if self.evidence < EVIDENCE_PROBES {
                    self.message = Some(format!(
                        "{answering} (probe {} of {EVIDENCE_PROBES} before stepping down)",
                        self.evidence
                    ));
                    return Decision::Stay;
                }
                if let Some(at) = self.evidence_step_down
                    && now < at + EVIDENCE_HOLD
                {
                    self.message = Some(format!(
                        "{answering}; stepped down on such evidence {} s ago, staying active and announcing",
                        now.duration_since(at).as_secs()
                    ));
                    return Decision::Stay;
                }
                self.held_back = true;
                self.evidence = 0;
                self.evidence_step_down = Some(now);
                self.step_down(format!("{answering}: stepping down"))
            }
            (Role::Standby, Some(_)) => {
                self.held_back = true;
                Decision::Stay
            }
            _ => Decision::Stay,
        }
    }

    fn live(&self, peers: &BTreeMap<String, PeerReport>, node: &str, now: Instant) -> bool {
        peers
            .get(node)
            .is_some_and(|peer| peer.live(now, self.settings.dead_after))
    }

    /// Decides, given the peers' last reports and this node's state.
    pub fn evaluate(
        &mut self,
        now: Instant,
        local: &Local,
        peers: &BTreeMap<String, PeerReport>,
    ) -> Decision {
        let live: BTreeMap<&str, &VipReport> = peers
            .iter()
            .filter(|(node, _)| **node != self.settings.me && self.live(peers, node, now))
            .map(|(node, peer)| (node.as_str(), &peer.report))
            .collect();
        for (node, report) in &live {
            if report.role == Role::Active
                && let Some(peer) = peers.get(*node)
            {
                self.last_active = Some(((*node).to_owned(), peer.heard_at));
            }
        }
        if local.eligible {
            self.eligible_since.get_or_insert(now);
        } else {
            self.eligible_since = None;
        }
        let view = View::new(&self.settings, local, live);
        match self.role {
            Role::Active => self.evaluate_active(local, &view),
            Role::Standby => self.evaluate_standby(now, local, &view),
        }
    }

    /// The rules for an active director: step down when another can serve and this one cannot,
    /// when a higher-priority director is active too, or when one asks for the VIP (preemption).
    fn evaluate_active(&mut self, local: &Local, view: &View<'_>) -> Decision {
        self.wants_vip = false;
        if !view.me_candidate
            && let Some((node, _)) = view
                .live
                .iter()
                .find(|(_, report)| view.candidate(report.eligible, report.healthy))
        {
            let why = local
                .reason
                .clone()
                .unwrap_or_else(|| "no healthy real server".to_owned());
            return self.step_down(format!("{why}; {node} can serve"));
        }
        if let Some((node, _)) = view
            .live
            .iter()
            .find(|(node, report)| report.role == Role::Active && view.better(node))
        {
            return self.step_down(format!("{node}, which has a higher priority, holds it too"));
        }
        if self.settings.preempt
            && let Some((node, _)) = view.live.iter().find(|(node, report)| {
                report.wants_vip && view.better(node) && view.candidate(report.eligible, report.healthy)
            })
        {
            return self.step_down(format!("handing over to {node} (preemption)"));
        }
        self.message = (!view.me_candidate).then(|| {
            local
                .reason
                .clone()
                .unwrap_or_else(|| "no healthy real server".to_owned())
        });
        Decision::Stay
    }

    /// The rules for a standby director: ask for the VIP (preemption), and take it when nobody
    /// holds it and this is the best candidate that listened long enough.
    fn evaluate_standby(&mut self, now: Instant, local: &Local, view: &View<'_>) -> Decision {
        let active_peer = view
            .live
            .iter()
            .find(|(_, report)| report.role == Role::Active)
            .map(|(node, _)| (*node).to_owned());
        self.wants_vip = self.settings.preempt
            && view.me_candidate
            && active_peer.as_deref().is_some_and(|node| !view.better(node))
            && self
                .eligible_since
                .is_some_and(|since| now.saturating_duration_since(since) >= self.settings.preempt_delay)
            && self.settings.failback_sync.is_none_or(|needed| {
                local
                    .synced_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= needed)
            });
        self.asked = (self.asked || self.wants_vip) && self.settings.preempt && view.me_candidate;
        if let Some(node) = active_peer {
            self.message = Some(format!("{node} holds the VIP"));
            return Decision::Stay;
        }
        if self.held_back {
            self.message = Some(format!(
                "another host ({}) answers for the VIP",
                self.duplicates.join(", ")
            ));
            return Decision::Stay;
        }
        if now.saturating_duration_since(self.started) < self.settings.dead_after {
            self.message = Some("listening for peers before taking the VIP".to_owned());
            return Decision::Stay;
        }
        if !view.me_candidate {
            self.message = Some(
                local
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no healthy real server while a peer has some".to_owned()),
            );
            return Decision::Stay;
        }
        if let Some((node, _)) = view
            .live
            .iter()
            .find(|(node, report)| view.better(node) && view.candidate(report.eligible, report.healthy))
        {
            self.message = Some(format!("{node} has a higher priority"));
            return Decision::Stay;
        }
        let wanted = self.asked;
        self.role = Role::Active;
        self.wants_vip = false;
        self.asked = false;
        self.evidence = 0;
        self.message = None;
        let (from, last_heard) = match self.last_active.take() {
            Some((node, heard)) => (Some(node), Some(heard)),
            None => (None, None),
        };
        let reason = match (&from, wanted) {
            (_, true) => TakeoverReason::Preempt,
            (Some(node), false) if view.live.contains_key(node.as_str()) => TakeoverReason::PeerStandby,
            (Some(_), false) => TakeoverReason::PeerDead,
            (None, false) => TakeoverReason::Startup,
        };
        Decision::TakeOver {
            reason,
            from,
            last_heard,
        }
    }

    fn step_down(&mut self, reason: String) -> Decision {
        self.role = Role::Standby;
        self.wants_vip = false;
        self.message = Some(reason.clone());
        Decision::StepDown { reason }
    }
}

/// What one evaluation sees: the live peers' reports and who counts as a candidate.
struct View<'a> {
    /// The directors with a higher priority than this node.
    higher: Vec<String>,
    /// Live peers (not this node) and what each last said.
    live: BTreeMap<&'a str, &'a VipReport>,
    /// Whether some candidate has healthy real servers (then those without are no candidates).
    some_healthy: bool,
    /// Whether this node is a candidate.
    me_candidate: bool,
}

impl<'a> View<'a> {
    fn new(settings: &Settings, local: &Local, live: BTreeMap<&'a str, &'a VipReport>) -> Self {
        let some_healthy = (local.eligible && local.healthy > 0)
            || live.values().any(|report| report.eligible && report.healthy > 0);
        let my_rank = settings.rank(&settings.me);
        let mut view = Self {
            higher: settings.ranked.iter().take(my_rank).cloned().collect(),
            live,
            some_healthy,
            me_candidate: false,
        };
        view.me_candidate = view.candidate(local.eligible, local.healthy);
        view
    }

    /// Whether a director that says this is a candidate.
    fn candidate(&self, eligible: bool, healthy: u16) -> bool {
        eligible && (healthy > 0 || !self.some_healthy)
    }

    /// Whether `node` has a higher priority than this node.
    fn better(&self, node: &str) -> bool {
        self.higher.iter().any(|higher| higher == node)
    }
}

#[cfg(test)]
#[path = "election/tests.rs"]
mod tests;
