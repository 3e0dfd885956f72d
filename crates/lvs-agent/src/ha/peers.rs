//! The peer directors of this node as heartbeats see them: each peer's address and the VIPs it
//! shares with us (from the groups), and what has been heard from it — the newest
//! (incarnation, sequence), the round in progress, the key it signs with, or that it signs with
//! a key this node does not have. Decides whether a datagram is admitted: from a known peer, from
//! the address its group gives it, newer than everything heard from it. The failover state then
//! takes in the VIPs it carries.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::detector::Arrivals;
use super::record::VipRecord;
use super::restart::PeerMark;
use super::wire::{Heartbeat, KeySlot};

/// Why a heartbeat was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a director of any VIP we share, or ourselves.
    Stranger,
    /// Not from the address the peer's group gives it (spoofed, or replayed by another host).
    WrongSource,
    /// An older incarnation than the newest heard from the node, or within it a sequence not
    /// larger than the last one: a replay (or a datagram reordered on the network).
    Replay,
}

impl Rejection {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Stranger => "stranger",
            Self::WrongSource => "wrong_source",
            Self::Replay => "replay",
        }
    }
}

/// A peer director as this node's groups know it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// Its heartbeat address (the first one a group gives; None: none known).
    pub address: Option<IpAddr>,
    /// The VIPs it shares with us.
    pub vips: BTreeSet<IpAddr>,
}

/// What has been heard from one peer node.
#[derive(Debug, Clone, Copy)]
struct Session {
    /// The newest incarnation and its largest sequence.
    mark: PeerMark,
    /// The key it last signed with (we answer under the same one).
    key: KeySlot,
    /// The round being received: the sequence of its part 0, when that was heard, and how many
    /// parts of it have been (None: not followed from part 0 on).
    round: Option<(u64, Instant, u16)>,
}

/// A datagram admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// It completed a round whose every part was heard, the first at this instant: a shared
    /// VIP the peer said nothing about since then it no longer reports.
    pub round_complete_since: Option<Instant>,
}

/// The peers of this node and what has been heard from them.
#[derive(Debug, Default)]
pub struct Peers {
    peers: BTreeMap<String, Peer>,
    sessions: BTreeMap<String, Session>,
    /// A peer started a new incarnation: its mark is worth saving.
    marks_changed: bool,
    /// Peers heard signing with a key this node does not have: when last, and its id.
    other_keys: BTreeMap<String, (Instant, String)>,
    /// When each peer's rounds arrived (how irregular its heartbeats are).
    arrivals: BTreeMap<String, Arrivals>,
}

/// The address as compared with a peer's: an IPv4-mapped IPv6 source (a dual-stack socket)
/// is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

impl Peers {
    /// Takes back the marks saved by a previous run of this agent.
    pub fn restore(&mut self, marks: BTreeMap<String, PeerMark>) {
        for (node, mark) in marks {
            let session = Session {
                mark,
                key: KeySlot::Current,
                round: None,
            };
            self.sessions.insert(node, session);
        }
    }

    /// Rebuilds the index of peers from the groups of `vips` (`me` is not a peer).
    pub fn index(&mut self, vips: &BTreeMap<IpAddr, VipRecord>, me: &str) {
        self.peers.clear();
        for (address, record) in vips {
            for (node, peer_address) in &record.group.peers {
                if node == me {
                    continue;
                }
                let peer = self.peers.entry(node.clone()).or_default();
                peer.address = peer.address.or(*peer_address);
                peer.vips.insert(*address);
            }
        }
        let peers = &self.peers;
        self.arrivals.retain(|node, _| peers.contains_key(node));
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Peer)> {
        self.peers.iter()
    }

    /// The VIPs `node` shares with us.
    pub fn shared(&self, node: &str) -> Option<&BTreeSet<IpAddr>> {
        self.peers.get(node).map(|peer| &peer.vips)
    }

    /// The key `node` last signed with.
    pub fn key(&self, node: &str) -> KeySlot {
        self.sessions
            .get(node)
            .map_or(KeySlot::Current, |session| session.key)
    }

    /// The newest heartbeat heard from each peer node, for the restart state.
    pub fn marks(&self) -> BTreeMap<String, PeerMark> {
        self.sessions
            .iter()
            .map(|(node, session)| (node.clone(), session.mark))
            .collect()
    }

    /// Whether a peer started a new incarnation since the last call.
    pub fn take_marks_changed(&mut self) -> bool {
        std::mem::take(&mut self.marks_changed)
    }

    /// Admits `heartbeat`, received from `from` and signed under `key`, when it comes from a
    /// known peer other than `me` at its address and is newer than everything heard from it.
    pub fn admit(
        &mut self,
        heartbeat: &Heartbeat,
        from: IpAddr,
        key: KeySlot,
        now: Instant,
        me: &str,
    ) -> Result<Admitted, Rejection> {
        let node = heartbeat.node.as_str();
        let Some(peer) = self.peers.get(node).filter(|_| node != me) else {
            return Err(Rejection::Stranger);
        };
        if peer.address.map(canonical) != Some(canonical(from)) {
            return Err(Rejection::WrongSource);
        }
        let incoming = PeerMark {
            incarnation: heartbeat.incarnation,
            sequence: heartbeat.sequence,
        };
        let previous = self.sessions.get(node).copied();
        if let Some(session) = previous
            && (incoming.incarnation, incoming.sequence) <= (session.mark.incarnation, session.mark.sequence)
        {
            return Err(Rejection::Replay);
        }
        let same_incarnation =
            previous.is_some_and(|session| session.mark.incarnation == incoming.incarnation);
        self.marks_changed |= !same_incarnation;
        // Rounds: the parts of one have consecutive sequences from its part 0.
        let first = heartbeat.sequence.wrapping_sub(u64::from(heartbeat.part));
        let round = if heartbeat.part == 0 {
            Some((heartbeat.sequence, now, 1))
        } else {
            previous
                .and_then(|session| session.round)
                .filter(|(round_first, _, _)| same_incarnation && *round_first == first)
                .map(|(round_first, started, seen)| (round_first, started, seen.saturating_add(1)))
        };
        self.sessions.insert(
            node.to_owned(),
            Session {
                mark: incoming,
                key,
                round,
            },
        );
        self.other_keys.remove(node);
        if heartbeat.part == 0 {
            self.arrivals.entry(node.to_owned()).or_default().heard(now);
        }
        let round_complete_since = round
            .filter(|(_, _, seen)| heartbeat.part + 1 == heartbeat.parts && *seen == heartbeat.parts)
            .map(|(_, started, _)| started);
        Ok(Admitted { round_complete_since })
    }

    /// A datagram naming `node` came from `from` signed with a key this node does not have
    /// (`key_id`): when that is a known peer at its address, it is noted as a key mismatch and
    /// true is returned. (The name and the key id are not authenticated: at worst another host
    /// makes a peer look misconfigured; it can never make it heard.)
    pub fn other_key(&mut self, node: &str, from: IpAddr, key_id: String, now: Instant) -> bool {
        let known = self
            .peers
            .get(node)
            .is_some_and(|peer| peer.address.map(canonical) == Some(canonical(from)));
        if known {
            if !self.other_keys.contains_key(node) {
                tracing::warn!(peer = %node, %key_id, "a peer director signs its heartbeats with a key this node does not have: it cannot be heard");
            }
            self.other_keys.insert(node.to_owned(), (now, key_id));
        }
        known
    }

    /// The silence allowed at `now` to `node` for a VIP with heartbeats every `interval`, dead
    /// after `dead_after` (see `detector`).
    pub fn allowed_silence(
        &self,
        node: &str,
        now: Instant,
        interval: Duration,
        dead_after: Duration,
    ) -> Duration {
        self.arrivals.get(node).map_or(dead_after, |arrivals| {
            arrivals.allowed_silence(now, interval, dead_after)
        })
    }

    /// This agent did not run for `stall`: the gap across it is not held against any peer.
    pub fn stalled(&mut self, stall: Duration) {
        for arrivals in self.arrivals.values_mut() {
            arrivals.stalled(stall);
        }
    }

    /// The key id `node` signed with when last heard under a key this node does not have,
    /// within `within` of `now`.
    pub fn other_key_of(&self, node: &str, now: Instant, within: Duration) -> Option<&str> {
        let (heard, key_id) = self.other_keys.get(node)?;
        (now.saturating_duration_since(*heard) < within).then_some(key_id.as_str())
    }
}
