//! The failover state of one agent, without I/O: one `VipRecord` per VIP plus what is
//! node-wide (who we are, heartbeat sequence numbers, the sync backup). Every input — a pass
//! report, a peer's heartbeat, a probe, an uplink check, the clock — is a method taking the
//! time as an argument; the runner owns the one instance and does the sending and receiving.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::election::{Decision, Local, PeerReport};
use super::groups::Group;
use super::record::{Now, PendingTakeover, Takeover, Uplink, VipRecord, VipStatus};
use super::restart::{RestartState, SavedVip};
use super::wire::{Heartbeat, Role};
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

/// Why a heartbeat was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a director of any VIP we share, or ourselves.
    Stranger,
    /// Not newer than the last one of its incarnation.
    Replay,
}

impl Rejection {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Stranger => "stranger",
            Self::Replay => "replay",
        }
    }
}

/// The failover state of this agent.
pub struct FailoverState {
    node: String,
    incarnation: u64,
    sequence: u64,
    vips: BTreeMap<IpAddr, VipRecord>,
    /// The last (incarnation, sequence) heard from each peer node.
    sequences: BTreeMap<String, (u64, u64)>,
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
            sequences: BTreeMap::new(),
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
        for vip in saved.map(|state| state.vips).unwrap_or_default() {
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
    }

    /// The state worth keeping for a restart.
    pub fn restart_state(&self) -> RestartState {
        RestartState {
            node: self.node.clone(),
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

    /// The heartbeat to send now and where to; None when there is nothing to say.
    pub fn heartbeat(&mut self, now: Instant, port: u16) -> Option<(Heartbeat, Vec<SocketAddr>)> {
        if self.vips.is_empty() || self.refusal.is_some() {
            return None;
        }
        self.sequence += 1;
        let vips = self
            .vips
            .iter()
            .map(|(address, record)| record.report(*address, now, self.restarting))
            .collect();
        let targets: BTreeSet<SocketAddr> = self
            .vips
            .values()
            .flat_map(|record| record.group.peers.iter())
            .filter(|(node, _)| **node != self.node)
            .filter_map(|(_, address)| address.map(|address| SocketAddr::new(address, port)))
            .collect();
        let heartbeat = Heartbeat {
            node: self.node.clone(),
            incarnation: self.incarnation,
            sequence: self.sequence,
            vips,
        };
        Some((heartbeat, targets.into_iter().collect()))
    }

    /// The shortest heartbeat interval of any VIP (200 ms with none).
    pub fn interval(&self) -> Duration {
        self.vips
            .values()
            .map(|record| record.group.interval)
            .min()
            .unwrap_or(Duration::from_millis(200))
    }

    /// Takes in a peer's heartbeat.
    pub fn accept(&mut self, heartbeat: Heartbeat, now: Instant) -> Result<(), Rejection> {
        let known = self
            .vips
            .values()
            .any(|record| record.group.peers.contains_key(&heartbeat.node));
        if !known || heartbeat.node == self.node {
            return Err(Rejection::Stranger);
        }
        let fresh = match self.sequences.get(&heartbeat.node) {
            Some((incarnation, sequence)) => {
                *incarnation != heartbeat.incarnation || heartbeat.sequence > *sequence
            }
            None => true,
        };
        if !fresh {
            return Err(Rejection::Replay);
        }
        self.sequences.insert(
            heartbeat.node.clone(),
            (heartbeat.incarnation, heartbeat.sequence),
        );
        for (address, record) in &mut self.vips {
            match heartbeat.vips.iter().find(|vip| vip.address == *address) {
                Some(report) => {
                    let mut peer = PeerReport::heard(now, report.clone());
                    if report.restarting {
                        tracing::info!(vip = %address, peer = %heartbeat.node, "the holder's agent is restarting: it keeps the VIP while it answers for it");
                        peer.hold_until = Some(now + self.restart_hold);
                    }
                    record.peers.insert(heartbeat.node.clone(), peer);
                }
                None => {
                    record.peers.remove(&heartbeat.node);
                }
            }
        }
        Ok(())
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
    /// duplicate state changed.
    pub fn probed(&mut self, address: IpAddr, claimants: Vec<String>, now: Now) -> bool {
        let Some(record) = self.vips.get_mut(&address) else {
            return false;
        };
        let _span = tracing::info_span!("vip", vip = %address).entered();
        if claimants.is_empty() && record.restarting_peer(now.instant) {
            tracing::warn!("nobody answers for the VIP while its holder is held: it is gone");
            record.holders_gone();
        }
        let had_duplicates = !record.election.duplicates().is_empty();
        let decision = record.election.probed(claimants, now.instant, &record.peers);
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
            .map(|(address, record)| record.status(*address, now, self.refusal.as_deref()))
            .collect()
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
