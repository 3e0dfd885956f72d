//! When a silent peer counts as dead (pure): after `deadAfter` heartbeat intervals of silence,
//! stretched — up to twice that — for a peer whose heartbeats recently arrived irregularly, and
//! never counting time this agent itself was not running.
//!
//! - Jitter: each peer's rounds of heartbeats are timed as they arrive; the largest gap between
//!   two rounds over the last [`JITTER_MEMORY`] plus one interval is the silence that peer is
//!   allowed, never less than the dead interval and never more than [`MAX_STRETCH`] times it.
//!   A peer on a busy node whose heartbeats leave late keeps its VIP; a peer that stops is still
//!   found dead within a bounded time.
//! - Own stalls: the failover task wakes at least every quarter interval. When it wakes much
//!   later than planned (its node was starved, the process paused), the silence it could not
//!   have heard is not held against the peers: their last heartbeats are moved forward by the
//!   stall, and datagrams waiting in the socket are taken in before any decision.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a probe of who answers for a VIP listens (ARP/NDP answers on a LAN take well under
/// a millisecond; the probe is sent twice, at the start and halfway). A takeover of a silent
/// holder waits for one probe that finds nobody, started after half the allowed silence, so
/// the probe should end within the other half: 300 ms at the default settings (200 ms
/// heartbeats, dead after 3), 75 ms with 50 ms heartbeats.
pub const PROBE_WAIT: Duration = Duration::from_millis(60);
/// A probe that found nobody is believed only when it took at most this long from its start
/// to its result: a longer one overlapped a time this node (or the probe's thread) did not run
/// — a loaded or paused node — and an answer that came then may have been missed.
pub const CONCLUSIVE_PROBE: Duration = Duration::from_millis(120);
/// How long an irregular gap between a peer's heartbeats is remembered.
pub const JITTER_MEMORY: Duration = Duration::from_secs(30);
/// The most a peer's allowed silence is stretched, in dead intervals.
pub const MAX_STRETCH: u32 = 2;
/// Gaps kept per peer at most (the largest in the memory are kept).
const MAX_GAPS: usize = 64;

/// The arrival times of one peer's heartbeat rounds.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    last: Option<Instant>,
    /// Gaps between rounds, (when the round arrived, gap), the largest first (a sliding-window
    /// maximum: a gap is dropped once a later one is at least as large, or it is too old).
    gaps: VecDeque<(Instant, Duration)>,
}

impl Arrivals {
    /// A round of heartbeats arrived at `now`.
    pub fn heard(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            while self.gaps.back().is_some_and(|(_, kept)| *kept <= gap) {
                self.gaps.pop_back();
            }
            self.gaps.push_back((now, gap));
            if self.gaps.len() > MAX_GAPS {
                self.gaps.pop_front();
            }
        }
        self.last = Some(now);
        self.forget_old(now);
    }

    /// This agent did not run for `stall`: the last arrival moves forward by it (the gap
    /// across the stall is not the peer's).
    pub fn stalled(&mut self, stall: Duration) {
        if let Some(last) = &mut self.last {
            *last += stall;
        }
    }

    /// The largest gap between rounds within [`JITTER_MEMORY`] of `now`.
    pub fn largest_gap(&self, now: Instant) -> Duration {
        self.gaps
            .iter()
            .find(|(at, _)| now.saturating_duration_since(*at) <= JITTER_MEMORY)
            .map_or(Duration::ZERO, |(_, gap)| *gap)
    }

    /// The silence allowed at `now` for a VIP with heartbeats every `interval`, dead after
    /// `dead_after`: the largest recent gap plus one interval, within
    /// `dead_after..=MAX_STRETCH × dead_after`.
    pub fn allowed_silence(&self, now: Instant, interval: Duration, dead_after: Duration) -> Duration {
        (self.largest_gap(now) + interval).clamp(dead_after, dead_after * MAX_STRETCH)
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .gaps
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > JITTER_MEMORY)
        {
            self.gaps.pop_front();
        }
    }
}

/// One probe of who else answers for a VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The MAC addresses of other hosts that answered.
    pub claimants: Vec<String>,
    /// When the probe was started (before its thread was even asked for).
    pub started: Instant,
}

impl Probe {
    /// A probe started at `started` that found `claimants`.
    pub fn new(claimants: Vec<String>, started: Instant) -> Self {
        Self { claimants, started }
    }

    /// Whether the probe, its result taken in at `now`, shows that nobody answers for the VIP:
    /// nobody answered, and it took no longer than [`CONCLUSIVE_PROBE`].
    pub fn nobody_answers(&self, now: Instant) -> bool {
        self.claimants.is_empty() && now.saturating_duration_since(self.started) <= CONCLUSIVE_PROBE
    }

    /// Whether nobody answered but the probe took too long to be sure of it.
    pub fn inconclusive(&self, now: Instant) -> bool {
        self.claimants.is_empty() && !self.nobody_answers(now)
    }
}

/// Notices when the failover task itself did not run: it says when it means to wake next, and
/// when it wakes, how much later than that it is beyond a tolerance.
#[derive(Debug, Clone, Copy, Default)]
pub struct StallWatch {
    planned: Option<Instant>,
}

impl StallWatch {
    /// The task means to wake at `at` at the latest.
    pub fn plan(&mut self, at: Instant) {
        self.planned = Some(at);
    }

    /// The task woke at `now`: how long it was away beyond `tolerance` after its planned
    /// wake-up (None: it was not).
    pub fn woke(&mut self, now: Instant, tolerance: Duration) -> Option<Duration> {
        let planned = self.planned.take()?;
        let late = now.saturating_duration_since(planned);
        (late > tolerance).then_some(late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(50);
    const DEAD: Duration = Duration::from_millis(150);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_regular_peer_is_allowed_the_dead_interval() {
        let start = Instant::now();
        let mut arrivals = Arrivals::default();
        for round in 0..100 {
            arrivals.heard(start + INTERVAL * round);
        }
        assert_eq!(
            arrivals.allowed_silence(start + INTERVAL * 100, INTERVAL, DEAD),
            DEAD
        );
    }

    #[test]
    fn the_largest_recent_gap_stretches_the_allowed_silence_within_bounds() {
        let start = Instant::now();
        let mut arrivals = Arrivals::default();
        let mut now = start;
        for gap in [50, 20, 130, 10, 60, 40] {
            now += ms(gap);
            arrivals.heard(now);
        }
        assert_eq!(arrivals.largest_gap(now), ms(130));
        assert_eq!(arrivals.allowed_silence(now, INTERVAL, DEAD), ms(180));
        now += ms(900);
        arrivals.heard(now);
        assert_eq!(
            arrivals.allowed_silence(now, INTERVAL, DEAD),
            DEAD * MAX_STRETCH,
            "capped"
        );
    }

    #[test]
    fn a_gap_is_forgotten_after_the_memory() {
        let start = Instant::now();
        let mut arrivals = Arrivals::default();
        arrivals.heard(start);
        arrivals.heard(start + ms(250));
        let mut now = start + ms(250);
        while now < start + JITTER_MEMORY + ms(300) {
            now += INTERVAL;
            arrivals.heard(now);
        }
        assert_eq!(arrivals.largest_gap(now), INTERVAL);
        assert_eq!(arrivals.allowed_silence(now, INTERVAL, DEAD), DEAD);
    }

    #[test]
    fn a_stall_of_this_agent_moves_the_last_arrival_forward() {
        let start = Instant::now();
        let mut arrivals = Arrivals::default();
        arrivals.heard(start);
        arrivals.stalled(ms(400));
        arrivals.heard(start + ms(450));
        assert_eq!(arrivals.largest_gap(start + ms(450)), INTERVAL, "not 450 ms");
    }

    #[test]
    fn a_late_wake_is_a_stall_a_punctual_one_is_not() {
        let start = Instant::now();
        let mut watch = StallWatch::default();
        assert_eq!(watch.woke(start, INTERVAL), None, "nothing planned");
        watch.plan(start + ms(12));
        assert_eq!(
            watch.woke(start + ms(40), INTERVAL),
            None,
            "28 ms late: within tolerance"
        );
        watch.plan(start + ms(52));
        assert_eq!(watch.woke(start + ms(452), INTERVAL), Some(ms(400)));
    }
}
