//! The failover state of one agent, without I/O: one `VipRecord` per VIP plus what is
//! node-wide (who we are, heartbeat sequence numbers, the sync backup). Every input — a pass
//! report, a peer's heartbeat, a probe, an uplink check, the clock — is a method taking the
//! time as an argument; the runner owns the one instance and does the sending and receiving.
//!
//! Heartbeats are accepted only from a known peer, from the address its group gives it, and
//! only when newer than everything heard from it: a larger incarnation (incarnations grow
//! across restarts, see `restart`), or within the same incarnation a larger sequence. So a
//! captured datagram replayed later, from any address, is refused, and two captured across a
//! restart of the sender cannot be alternated. Each peer gets only the VIPs it shares with us,
//! and taking a datagram in costs map lookups per VIP in it.
//!
//! The remaining window: the newest (incarnation, sequence) of every peer is kept in the restart
//! state, written with it (after each pass and role change, and when a peer's incarnation
//! changes) — not on every heartbeat. An agent that restarts therefore accepts, once each and
//! in order, the datagrams a peer sent between that last save and the restart (at most one
//! resync interval's worth); after a reboot (`/run` is empty) it knows no marks and accepts
//! any captured datagram of a peer's latest incarnation, once each, in order. Datagrams
//! reordered on the network are refused like replays (heartbeats are sent every interval;
//! one lost is harmless).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::detector::Probe;
use super::election::{Decision, Local, PeerReport};
use super::groups::Group;
use super::peers::Peers;
pub use super::peers::Rejection;
use super::record::{Now, PendingTakeover, Takeover, Uplink, VipRecord, VipStatus};
use super::restart::{RestartState, SavedVip};
use super::wire::{self, Heartbeat, HeartbeatKeys, KeySlot, Role, VipReport};
use crate::metrics::Metrics;

/// What one reconcile pass tells the failover service — the one message per pass.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// The failover VIPs of the config (new ones get a record, missing ones are forgotten).
    pub groups: BTreeMap<IpAddr, Group>,
    /// The failover VIPs the pass aimed to hold (a new record for one of them starts active:
    /// the node already had the VIP, e.g. a VIP that gets a second director).
    pub held: BTreeSet<IpAddr>,
    /// VIPs given up that are now gone from the kernel: peers may hear "standby".
    pub released: Vec<IpAddr>,
    /// VIPs announced (first gratuitous ARP / NA sent), and when.
    pub announced: Vec<(IpAddr, Now)>,
    /// This node's own state per VIP.
    pub local: BTreeMap<IpAddr, Local>,
    /// Whether the connection-sync backup daemon runs.
    pub backup_running: bool,
}

/// The roles a pass follows: published by the failover service whenever one changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// Each failover VIP's role on this node.
    pub elections: BTreeMap<IpAddr, Role>,
    /// VIPs found on our device when the agent started, not in any election yet: held until
    /// the first pass has told the failover service about them (a restart never drops them).
    pub adopt: BTreeSet<IpAddr>,
    /// VIPs held that must be announced again (another host claimed them).
    pub reannounce: BTreeSet<IpAddr>,
    /// VIPs another host answers for (the status reports them, so a change wakes a pass).
    pub duplicates: BTreeSet<IpAddr>,
}

impl Roles {
    /// The failover VIPs held now.
    pub fn held(&self) -> BTreeSet<IpAddr> {
        self.elections
            .iter()
            .filter(|(_, role)| **role == Role::Active)
            .map(|(address, _)| *address)
            .collect()
    }

    /// Whether this node holds the failover VIP `address`; `held_before`: whether the last pass
    /// held it (used for a VIP the failover service does not know yet).
    pub fn holds(&self, address: &IpAddr, held_before: bool) -> bool {
        match self.elections.get(address) {
            Some(role) => *role == Role::Active,
            None => held_before || self.adopt.contains(address),
        }
    }
}

/// One heartbeat round to one peer: the VIPs we share, and under which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRound {
    /// The peer node.
    pub node: String,
    /// Where to send.
    pub target: SocketAddr,
    /// The key the peer last signed with.
    pub key: KeySlot,
    /// What we say about each VIP we share.
    pub vips: Vec<VipReport>,
}

/// The failover state of this agent.
pub struct FailoverState {
    node: String,
    incarnation: u64,
    /// The sequence of the last datagram sent.
    sequence: u64,
    vips: BTreeMap<IpAddr, VipRecord>,
    /// Every peer of our groups and what has been heard from it.
    peers: Peers,
    backup_running: bool,
    adopt: BTreeSet<IpAddr>,
    /// Why this node takes part in no election (no key, no socket), if it does not.
    refusal: Option<String>,
    /// How long a peer that said it is restarting keeps its role without heartbeats.
    restart_hold: Duration,
    /// This agent is stopping for a restart: heartbeats say so for the VIPs it holds.
    restarting: bool,
    metrics: Arc<Metrics>,
}

impl FailoverState {
    /// An empty state for `node`.
    pub fn new(
        node: &str,
        incarnation: u64,
        refusal: Option<String>,
        restart_hold: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            node: node.to_owned(),
            incarnation,
            sequence: 0,
            vips: BTreeMap::new(),
            peers: Peers::default(),
            backup_running: false,
            adopt: BTreeSet::new(),
            refusal,
            restart_hold,
            restarting: false,
            metrics,
        }
    }

    /// Picks up where a previous run of this agent left off: `saved` is what it wrote,
    /// `in_kernel` the VIPs on our device now. A saved VIP still in the kernel that this node
    /// held is held again at once; every VIP in the kernel is kept until the first pass.
    pub fn resume(&mut self, saved: Option<RestartState>, in_kernel: &BTreeSet<IpAddr>, now: Now) {
        self.adopt = in_kernel.clone();
        let saved = saved.unwrap_or_default();
        self.peers.restore(saved.peers);
        for vip in saved.vips {
            let held = vip.active && in_kernel.contains(&vip.address);
            let mut record = VipRecord::new(vip.group, vip.address, &self.node, held, now.instant);
            record.local = Some(Local {
                eligible: vip.eligible,
                reason: (!vip.eligible).then(|| "not reconciled since the agent restarted".to_owned()),
                healthy: vip.healthy,
                synced_since: None,
            });
            if held {
                tracing::info!(vip = %vip.address, "the agent restarted holding the VIP: still active");
            }
            self.vips.insert(vip.address, record);
        }
        self.peers.index(&self.vips, &self.node);
    }

    /// Whether a peer started a new incarnation since the last call (its mark is worth saving).
    pub fn take_marks_changed(&mut self) -> bool {
        self.peers.take_marks_changed()
    }

    /// The state worth keeping for a restart.
    pub fn restart_state(&self) -> RestartState {
        RestartState {
            node: self.node.clone(),
            incarnation: self.incarnation,
            peers: self.peers.marks(),
            vips: self
                .vips
                .iter()
                .map(|(address, record)| {
                    let local = record.local.clone().unwrap_or_default();
                    SavedVip {
                        address: *address,
                        group: record.group.clone(),
                        active: record.role() == Role::Active,
                        eligible: local.eligible,
                        healthy: local.healthy,
                    }
                })
                .collect(),
        }
    }

    /// Takes in a pass's report; returns whether a role changed.
    pub fn report(&mut self, report: PassReport, now: Now) -> bool {
        let metrics = &self.metrics.failover;
        self.vips.retain(|address, _| {
            let kept = report.groups.contains_key(address);
            if !kept {
                metrics.forget_vip(*address);
            }
            kept
        });
        for (address, group) in report.groups {
            match self.vips.get_mut(&address) {
                Some(record) => {
                    record.election.update(group.settings(address, &self.node));
                    record.group = group;
                }
                None => {
                    let held = report.held.contains(&address);
                    if held {
                        tracing::info!(vip = %address, "the VIP gets an election; this node holds it and stays active");
                    }
                    let record = VipRecord::new(group, address, &self.node, held, now.instant);
                    self.vips.insert(address, record);
                }
            }
        }
        self.adopt.clear();
        for address in report.released {
            if let Some(record) = self.vips.get_mut(&address) {
                record.releasing_until = None;
            }
        }
        for (address, at) in report.announced {
            self.announced(address, at);
        }
        for (address, record) in &mut self.vips {
            record.local = report.local.get(address).cloned().or(record.local.take());
        }
        self.backup_running = report.backup_running;
        self.peers.index(&self.vips, &self.node);
        self.evaluate(now)
    }

    fn announced(&mut self, address: IpAddr, at: Now) {
        let Some(record) = self.vips.get_mut(&address) else {
            return;
        };
        record.reannounce = false;
        let Some(PendingTakeover { decided, last_heard }) = record.pending.take() else {
            return;
        };
        let since = last_heard.unwrap_or(decided);
        let duration = at.instant.saturating_duration_since(since);
        if let Some(takeover) = &mut record.last_takeover {
            takeover.announced_at = Some(at.wall);
            takeover.duration = duration;
            takeover.detection = decided.saturating_duration_since(since);
            tracing::info!(
                vip = %address,
                from = takeover.from.as_deref().unwrap_or("none"),
                reason = %takeover.reason,
                detection_ms = takeover.detection.as_millis(),
                duration_ms = duration.as_millis(),
                "took over the VIP and announced it"
            );
        }
        self.metrics.failover.failover_completed(duration);
    }

    /// Runs every election; returns whether a role changed.
    pub fn evaluate(&mut self, now: Now) -> bool {
        if self.refusal.is_some() {
            return false;
        }
        let mut changed = false;
        for (address, record) in &mut self.vips {
            let _span = tracing::info_span!("vip", vip = %address).entered();
            // A synced backup: standby, receiving from a live active peer's master daemon.
            let synced = self.backup_running
                && record.role() == Role::Standby
                && record.group.connection_sync.is_some()
                && record.active_peer(now.instant).is_some();
            if !synced {
                record.synced_since = None;
            } else if record.synced_since.is_none() {
                record.synced_since = Some(now.instant);
            }
            record.hold_silent_holder(now.instant, self.restart_hold);
            let mut local = record.effective_local();
            local.synced_since = record.synced_since;
            let decision = record.election.evaluate(now.instant, &local, &record.peers);
            record.watch_rival(now.instant);
            changed |= apply_decision(
                &self.node,
                &self.metrics.failover,
                *address,
                record,
                decision,
                now,
            );
        }
        changed
    }

    /// What to tell each peer now: the VIPs it shares with us (none without a VIP or when this
    /// node takes part in no election).
    pub fn rounds(&self, now: Instant, port: u16) -> Vec<PeerRound> {
        if self.refusal.is_some() {
            return Vec::new();
        }
        self.peers
            .iter()
            .filter_map(|(node, peer)| {
                let address = peer.address?;
                let vips = peer
                    .vips
                    .iter()
                    .filter_map(|vip| {
                        let record = self.vips.get(vip)?;
                        Some(record.report(*vip, now, self.restarting))
                    })
                    .collect();
                Some(PeerRound {
                    node: node.clone(),
                    target: SocketAddr::new(address, port),
                    key: self.peers.key(node),
                    vips,
                })
            })
            .collect()
    }

    /// The datagrams to send now and where to: each peer's round, signed and split so that
    /// none is larger than `wire::MAX_DATAGRAM`.
    pub fn heartbeats(
        &mut self,
        now: Instant,
        port: u16,
        keys: &HeartbeatKeys,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut datagrams = Vec::new();
        for round in self.rounds(now, port) {
            let encoded = wire::encode_round(
                &self.node,
                self.incarnation,
                self.sequence + 1,
                &round.vips,
                keys.get(round.key),
            );
            self.sequence += encoded.len() as u64;
            datagrams.extend(encoded.into_iter().map(|datagram| (round.target, datagram)));
        }
        datagrams
    }

    /// The next moment after `now` at which a peer's silence changes what it counts as: it
    /// becomes suspect (a probe is due), dead, or its restart hold ends. The failover task
    /// wakes then, so a decision is made at its deadline, not at the next tick.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.vips
            .values()
            .flat_map(|record| {
                let dead_after = record.dead_after();
                record.peers.values().flat_map(move |peer| {
                    let allowed = peer.silence_allowed(dead_after);
                    [
                        Some(peer.heard_at + allowed / 2),
                        Some(peer.heard_at + allowed),
                        peer.hold_until,
                    ]
                })
            })
            .flatten()
            .filter(|at| *at > now)
            .min()
    }

    /// The shortest heartbeat interval of any VIP (200 ms with none).
    pub fn interval(&self) -> Duration {
        self.vips
            .values()
            .map(|record| record.group.interval)
            .min()
            .unwrap_or(Duration::from_millis(200))
    }

    /// Takes in a peer's heartbeat datagram, received from `from` and signed under `key`: only
    /// from a known peer at its address, only newer than everything heard from it; costs a map
    /// lookup per VIP in it (and, once per complete round, one per VIP shared with the peer).
    pub fn accept(
        &mut self,
        heartbeat: Heartbeat,
        from: IpAddr,
        key: KeySlot,
        now: Instant,
    ) -> Result<(), Rejection> {
        let admitted = self.peers.admit(&heartbeat, from, key, now, &self.node)?;
        let Some(shared) = self.peers.shared(&heartbeat.node) else {
            return Err(Rejection::Stranger);
        };
        for report in heartbeat.vips {
            if !shared.contains(&report.address) {
                continue;
            }
            let Some(record) = self.vips.get_mut(&report.address) else {
                continue;
            };
            let address = report.address;
            let restarting = report.restarting;
            let mut heard = PeerReport::heard(now, report);
            heard.allowed =
                self.peers
                    .allowed_silence(&heartbeat.node, now, record.group.interval, record.dead_after());
            if restarting {
                tracing::info!(vip = %address, peer = %heartbeat.node, "the holder's agent is restarting: it keeps the VIP while it answers for it");
                heard.hold_until = Some(now + self.restart_hold);
            }
            record.peers.insert(heartbeat.node.clone(), heard);
        }
        // A complete round: a shared VIP the peer said nothing about it no longer reports.
        if let Some(started) = admitted.round_complete_since {
            for address in shared {
                if let Some(record) = self.vips.get_mut(address)
                    && record
                        .peers
                        .get(&heartbeat.node)
                        .is_some_and(|report| report.heard_at < started)
                {
                    record.peers.remove(&heartbeat.node);
                }
            }
        }
        Ok(())
    }

    /// A datagram naming `node` came from `from` signed with a key this node does not have
    /// (`key_id`): when that is a known peer at its address, it is reported as a key mismatch
    /// (status says so for the VIPs shared with it) and true is returned.
    pub fn other_key(&mut self, node: &str, from: IpAddr, key_id: String, now: Instant) -> bool {
        self.peers.other_key(node, from, key_id, now)
    }

    /// The VIPs to probe for other hosts answering, with their uplinks: those held or held
    /// back from, and those whose holder is restarting (is it still there?).
    pub fn probe_targets(&self, now: Instant) -> Vec<(IpAddr, Option<String>)> {
        self.vips
            .iter()
            .filter(|(_, record)| {
                record.role() == Role::Active || record.election.held_back() || record.restarting_peer(now)
            })
            .map(|(address, record)| (*address, record.group.interface.clone()))
            .collect()
    }

    /// Whether a takeover waits for a probe: some VIP's holder is silent or restarting (held
    /// while the VIP still answers).
    pub fn awaiting_probe(&self, now: Instant) -> bool {
        self.vips.values().any(|record| record.restarting_peer(now))
    }

    /// Every VIP with its uplink, for the uplink checks.
    pub fn uplink_targets(&self) -> Vec<(IpAddr, Option<String>)> {
        self.vips
            .iter()
            .map(|(address, record)| (*address, record.group.interface.clone()))
            .collect()
    }

    /// Whether some VIP's uplink has not been checked yet.
    pub fn uplink_unchecked(&self) -> bool {
        self.vips
            .values()
            .any(|record| record.uplink == Uplink::Unchecked)
    }

    /// After the first uplink check of a resumed state: a VIP held before the restart whose
    /// uplink is down now is not held again (the agent came back on a node cut off; the VIP has
    /// moved on), it starts as standby.
    pub fn release_unreachable(&mut self, now: Now) {
        for (address, record) in &mut self.vips {
            if record.role() == Role::Active && matches!(record.uplink, Uplink::Down(_)) {
                tracing::info!(vip = %address, "restarted holding the VIP but its uplink is down: standby");
                let uplink = record.uplink.clone();
                let local = record.local.take();
                *record = VipRecord::new(record.group.clone(), *address, &self.node, false, now.instant);
                record.uplink = uplink;
                record.local = local;
            }
        }
    }

    /// Takes in uplink checks; returns whether a role changed.
    pub fn uplinks(&mut self, checks: BTreeMap<IpAddr, Uplink>, now: Now) -> bool {
        let mut any = false;
        for (address, uplink) in checks {
            if let Some(record) = self.vips.get_mut(&address)
                && record.uplink != uplink
            {
                if matches!(record.uplink, Uplink::Down(_)) && uplink == Uplink::Up {
                    // Back on the network: who holds the VIP is not known yet.
                    record.election.listen_again(now.instant);
                }
                record.uplink = uplink;
                any = true;
            }
        }
        any && self.evaluate(now)
    }

    /// Takes in a probe of who else answers for `address`; returns whether a role or the
    /// duplicate state changed. A probe that found nobody ends a silent holder's hold only when
    /// it ran on time (see [`Probe::nobody_answers`]); one that overlapped a stall of this node
    /// changes nothing, and the next probe follows soon.
    pub fn probed(&mut self, address: IpAddr, probe: Probe, now: Now) -> bool {
        let Some(record) = self.vips.get_mut(&address) else {
            return false;
        };
        let _span = tracing::info_span!("vip", vip = %address).entered();
        if record.restarting_peer(now.instant) {
            if probe.inconclusive(now.instant) {
                tracing::info!(
                    took_ms = now.instant.saturating_duration_since(probe.started).as_millis(),
                    "a probe found nobody answering for the VIP but took too long to be sure: probing again"
                );
                self.metrics.failover.inconclusive_probe();
                return false;
            }
            if probe.nobody_answers(now.instant) {
                tracing::warn!("nobody answers for the VIP while its holder is held: it is gone");
                record.holders_gone();
            }
        }
        let had_duplicates = !record.election.duplicates().is_empty();
        let decision = record
            .election
            .probed(probe.claimants, now.instant, &record.peers);
        let has_duplicates = !record.election.duplicates().is_empty();
        self.metrics.failover.duplicate_vip(address, has_duplicates);
        let duplicates_changed = had_duplicates != has_duplicates;
        let changed = apply_decision(&self.node, &self.metrics.failover, address, record, decision, now);
        if duplicates_changed && record.role() == Role::Active {
            // Another host claimed the VIP (and may have announced it), or stopped: tell the
            // neighbours again who holds it.
            record.reannounce = true;
        }
        changed || duplicates_changed
    }

    /// The roles passes follow.
    pub fn roles(&self) -> Roles {
        let refused = self.refusal.is_some();
        Roles {
            elections: self
                .vips
                .iter()
                .map(|(address, record)| (*address, if refused { Role::Standby } else { record.role() }))
                .collect(),
            adopt: if refused {
                BTreeSet::new()
            } else {
                self.adopt.clone()
            },
            reannounce: self
                .vips
                .iter()
                .filter(|(_, record)| record.reannounce && record.role() == Role::Active)
                .map(|(address, _)| *address)
                .collect(),
            duplicates: self
                .vips
                .iter()
                .filter(|(_, record)| !record.election.duplicates().is_empty())
                .map(|(address, _)| *address)
                .collect(),
        }
    }

    /// Every VIP's state for status.
    pub fn status(&self, now: Instant) -> Vec<VipStatus> {
        self.vips
            .iter()
            .map(|(address, record)| {
                let mut status = record.status(*address, now, self.refusal.as_deref());
                status.key_mismatch = record
                    .group
                    .peers
                    .keys()
                    .filter_map(|node| {
                        let key_id = self.peers.other_key_of(node, now, record.dead_after())?;
                        Some((node.clone(), key_id.to_owned()))
                    })
                    .collect();
                if self.refusal.is_none()
                    && let Some((node, key_id)) = status.key_mismatch.first()
                {
                    let mismatch = format!(
                        "director {node} signs its heartbeats with a key this node does not have (key id {key_id}): the two cannot hear each other; give both the same failover key"
                    );
                    status.message = Some(match status.message.take() {
                        Some(message) => format!("{message}; {mismatch}"),
                        None => mismatch,
                    });
                }
                status
            })
            .collect()
    }

    /// This agent did not run for `stall` (its task woke that much later than it meant to):
    /// the silence of the peers during it is not held against them — what they last said is
    /// taken as heard that much later, and the listening time of a starting election grows
    /// by it.
    pub fn stalled(&mut self, stall: Duration) {
        tracing::warn!(
            stall_ms = stall.as_millis(),
            "the failover task did not run for a while: the peers' silence during it is not counted"
        );
        self.metrics.failover.stalled();
        self.peers.stalled(stall);
        for record in self.vips.values_mut() {
            for peer in record.peers.values_mut() {
                peer.heard_at += stall;
            }
            record.election.stalled(stall);
        }
    }

    /// The agent stops for a restart: from now on heartbeats tell peers to keep this node as
    /// the holder of the VIPs it holds.
    pub fn set_restarting(&mut self) {
        self.restarting = true;
    }

    /// How many VIPs have a record (tests: nothing is left behind).
    pub fn len(&self) -> usize {
        self.vips.len()
    }

    /// Whether no VIP has a record.
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }
}

/// Carries out an election's decision on the record; returns whether the role changed.
fn apply_decision(
    node: &str,
    metrics: &super::metrics::FailoverMetrics,
    address: IpAddr,
    record: &mut VipRecord,
    decision: Decision,
    now: Now,
) -> bool {
    match decision {
        Decision::Stay => false,
        Decision::TakeOver {
            reason,
            from,
            last_heard,
        } => {
            tracing::warn!(from = from.as_deref().unwrap_or("none"), %reason, "taking over the VIP");
            metrics.election(address, true);
            record.last_takeover = Some(Takeover {
                from,
                to: node.to_owned(),
                reason,
                detected_at: now.wall,
                announced_at: None,
                detection: Duration::ZERO,
                duration: Duration::ZERO,
            });
            record.pending = Some(PendingTakeover {
                decided: now.instant,
                last_heard,
            });
            record.releasing_until = None;
            true
        }
        Decision::StepDown { reason } => {
            tracing::warn!("stepping down: {reason}");
            metrics.election(address, false);
            record.pending = None;
            record.releasing_until = Some(now.instant + record.dead_after());
            true
        }
    }
}

#[cfg(test)]
#[path = "state/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "state/heartbeat_tests.rs"]
mod heartbeat_tests;

#[cfg(test)]
#[path = "state/detector_tests.rs"]
mod detector_tests;
