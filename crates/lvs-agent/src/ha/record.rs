//! One VIP's failover record: everything this director knows and decides about one VIP it
//! shares with other directors, in one struct — its group (peers, timings), its election, what
//! each peer last said, this node's own state, the uplink check, the sync time, the takeover in
//! progress and the last one. Forgetting a VIP is dropping its record; nothing else keeps
//! per-VIP state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::election::{Election, Local, PeerReport, TakeoverReason};
use super::groups::Group;
use super::wire::{Role, VipReport};

/// A moment, as both clocks see it: the monotonic one decides, the wall clock is what status
/// shows. Every decision takes one as an input, so tests choose the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for every interval and deadline.
    pub instant: Instant,
    /// Wall-clock time, for timestamps in status.
    pub wall: SystemTime,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        Self {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// The last check of a VIP's uplink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Uplink {
    /// Not checked yet: the node is not eligible until it is.
    #[default]
    Unchecked,
    /// Up.
    Up,
    /// Down, or unusable: why.
    Down(String),
}

/// A takeover of a VIP by this director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    /// The director that held the VIP before, if known.
    pub from: Option<String>,
    /// This director.
    pub to: String,
    /// Why it took the VIP.
    pub reason: TakeoverReason,
    /// When the election decided.
    pub detected_at: SystemTime,
    /// When the first gratuitous ARP / unsolicited NA went out (None: not yet).
    pub announced_at: Option<SystemTime>,
    /// From the previous holder's last heartbeat to the decision.
    pub detection: Duration,
    /// From the previous holder's last heartbeat (or the decision) to the announcement.
    pub duration: Duration,
}

/// A takeover decided but not announced yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingTakeover {
    /// When the election decided.
    pub decided: Instant,
    /// When the previous holder was last heard holding the VIP.
    pub last_heard: Option<Instant>,
}

/// Everything about one failover VIP.
#[derive(Debug, Clone)]
pub struct VipRecord {
    /// The directors and timings of the VIP, from the config.
    pub group: Group,
    /// The election.
    pub election: Election,
    /// What each peer last said about this VIP.
    pub peers: BTreeMap<String, PeerReport>,
    /// This node's own state, as the last pass reported it (None: no pass yet).
    pub local: Option<Local>,
    /// The last uplink check.
    pub uplink: Uplink,
    /// Since when this node has been a synced backup for the VIP.
    pub synced_since: Option<Instant>,
    /// The last takeover by this node.
    pub last_takeover: Option<Takeover>,
    /// A takeover not announced yet.
    pub pending: Option<PendingTakeover>,
    /// Stepped down but maybe still holding the address: peers keep hearing "active" until the
    /// reconciler says it is gone, or until this deadline, so the VIP is never on two directors.
    pub releasing_until: Option<Instant>,
    /// Another host claimed the VIP (or stopped): announce it again.
    pub reannounce: bool,
    /// While active: a live peer said it is active too (it will step down, and its gratuitous
    /// ARP may have turned clients to it: announce again once it stopped).
    pub rival: bool,
}

impl VipRecord {
    /// A new record for `group`, standby (or active when `held`: the node already has the VIP).
    pub fn new(group: Group, address: IpAddr, node: &str, held: bool, now: Instant) -> Self {
        let mut election = Election::new(group.settings(address, node), now);
        if held {
            election.adopt_active();
        }
        Self {
            group,
            election,
            peers: BTreeMap::new(),
            local: None,
            uplink: Uplink::Unchecked,
            synced_since: None,
            last_takeover: None,
            pending: None,
            releasing_until: None,
            reannounce: false,
            rival: false,
        }
    }

    /// A standby whose active peer fell silent holds it as the holder for `hold` (from its last
    /// heartbeat) until a probe shows whether the VIP still answers: a holder whose agent is
    /// down or restarting (a rollout, an OOM kill, `kill -9`) still serves the VIP from its
    /// kernel, and taking it over would put it on two nodes. The hold (and its probe) starts
    /// after half the dead interval of silence, so that a holder that is really gone is known
    /// to be by the time the dead interval ends and the takeover is not delayed. Returns
    /// whether a hold started (a probe is due at once).
    pub fn hold_silent_holder(&mut self, now: Instant, hold: Duration) -> bool {
        if self.role() != Role::Standby {
            return false;
        }
        let dead_after = self.dead_after();
        let mut started = false;
        for (node, peer) in &mut self.peers {
            let suspect_after = peer.silence_allowed(dead_after) / 2;
            if peer.report.role == Role::Active
                && !peer.gone
                && peer.hold_until.is_none()
                && now.saturating_duration_since(peer.heard_at) >= suspect_after
            {
                tracing::info!(peer = %node, "the holder fell silent: checking whether the VIP still answers before taking it");
                peer.hold_until = Some(peer.heard_at + hold);
                started = true;
            }
        }
        started
    }

    /// A probe found nobody answering for the VIP: holders under a hold are gone.
    pub fn holders_gone(&mut self) {
        for peer in self.peers.values_mut() {
            if peer.hold_until.take().is_some() {
                peer.gone = true;
            }
        }
    }

    /// While active: notes a live peer that says it is active too; when it stops, the VIP is to
    /// be announced again (its announcement may have turned clients to it).
    pub fn watch_rival(&mut self, now: Instant) {
        if self.role() != Role::Active {
            self.rival = false;
            return;
        }
        let rival = self.active_peer(now).is_some();
        if self.rival && !rival {
            self.reannounce = true;
        }
        self.rival = rival;
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.election.role()
    }

    /// Silence after which a peer is dead.
    pub fn dead_after(&self) -> Duration {
        self.election.settings().dead_after
    }

    /// This node's state with the uplink folded in: an uplink that is down, or not checked
    /// yet, makes the node ineligible.
    pub fn effective_local(&self) -> Local {
        let mut local = self.local.clone().unwrap_or_else(|| Local {
            reason: Some("not reconciled yet".to_owned()),
            ..Local::default()
        });
        let down = match &self.uplink {
            Uplink::Unchecked => Some("the uplink has not been checked yet".to_owned()),
            Uplink::Up => None,
            Uplink::Down(why) => Some(why.clone()),
        };
        if let Some(why) = down
            && local.eligible
        {
            local.eligible = false;
            local.reason = Some(why);
        }
        local
    }

    /// Whether a live peer says it holds the VIP.
    pub fn active_peer(&self, now: Instant) -> Option<&str> {
        self.peers
            .iter()
            .find(|(_, peer)| peer.report.role == Role::Active && peer.live(now, self.dead_after()))
            .map(|(node, _)| node.as_str())
    }

    /// Whether a peer holding the VIP is restarting (its hold not over yet).
    pub fn restarting_peer(&self, now: Instant) -> bool {
        self.peers
            .values()
            .any(|peer| peer.hold_until.is_some_and(|until| now < until))
    }

    /// What this node tells its peers about the VIP.
    pub fn report(&self, address: IpAddr, now: Instant, restarting: bool) -> VipReport {
        let local = self.effective_local();
        let releasing = self.releasing_until.is_some_and(|deadline| deadline > now);
        let role = if releasing { Role::Active } else { self.role() };
        VipReport {
            address,
            role,
            eligible: local.eligible,
            wants_vip: self.election.wants_vip(),
            healthy: local.healthy,
            synced_millis: self.synced_since.map_or(0, |since| {
                u32::try_from(now.saturating_duration_since(since).as_millis())
                    .unwrap_or(u32::MAX)
                    .max(1)
            }),
            restarting: restarting && role == Role::Active,
        }
    }

    /// The VIP's state for status.
    pub fn status(&self, address: IpAddr, now: Instant, refusal: Option<&str>) -> VipStatus {
        let dead_after = self.dead_after();
        let peers_alive: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.live(now, dead_after))
            .map(|(node, _)| node.clone())
            .collect();
        let active_director = match self.role() {
            Role::Active => Some(self.election.settings().me.clone()),
            Role::Standby => self.active_peer(now).map(str::to_owned),
        };
        VipStatus {
            address,
            role: self.role(),
            active_director,
            eligible: self.effective_local().eligible,
            message: refusal
                .map(str::to_owned)
                .or_else(|| self.election.message().map(str::to_owned)),
            peers_alive,
            duplicate_owners: self.election.duplicates().to_vec(),
            key_mismatch: Vec::new(),
            last_failover: self.last_takeover.clone(),
        }
    }
}

/// One failover VIP as this node sees it, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipStatus {
    /// The VIP.
    pub address: IpAddr,
    /// This node's role.
    pub role: Role,
    /// The director holding the VIP, as far as this node knows.
    pub active_director: Option<String>,
    /// Whether this node may hold the VIP.
    pub eligible: bool,
    /// Why this node is not active although it might be, or why it stepped down.
    pub message: Option<String>,
    /// Peers heard within the dead interval.
    pub peers_alive: Vec<String>,
    /// MAC addresses of other hosts that answered for the VIP at the last probe.
    pub duplicate_owners: Vec<String>,
    /// Peer directors of the VIP heard within the dead interval signing their heartbeats with
    /// a key this node does not have, with the key id they use.
    pub key_mismatch: Vec<(String, String)>,
    /// This node's last takeover of the VIP.
    pub last_failover: Option<Takeover>,
}
