//! When a silent peer counts as dead, at the default settings (heartbeats every 50 ms, dead
//! after 3): a jittery holder keeps its VIP through a gap it has shown before, a late burst
//! after this agent's own stall moves nothing, and a holder that stops is still taken over —
//! at the dead interval when its heartbeats were regular, within twice that when they were not.
//! Each case is one a fixed `deadAfter × interval` detector gets wrong (or, for the last ones,
//! one an unbounded adaptive detector would).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::time::Instant;

use super::tests::{at, hear, heartbeat, report, uplinks_up, vip};
use super::*;
use crate::ha::wire::Role;

const INTERVAL: Duration = Duration::from_millis(50);

/// d2, standby for VIP .100 with 50 ms heartbeats, dead after 3 (150 ms).
fn d2(start: Instant) -> FailoverState {
    let mut state = super::tests::state("d2");
    let mut pass = report(&[vip(100)]);
    for group in pass.groups.values_mut() {
        group.interval = INTERVAL;
        group.dead_after_count = 3;
    }
    state.report(pass, at(start, 0));
    uplinks_up(&mut state, at(start, 0));
    state
}

/// d1 says it holds VIP .100 (sequence `sequence`), heard at `millis`.
fn d1_holds(state: &mut FailoverState, start: Instant, sequence: u64, millis: u64) {
    hear(
        state,
        heartbeat("d1", 10, sequence, &[(vip(100), Role::Active, false)]),
        at(start, millis).instant,
    )
    .unwrap();
}

/// d1's rounds heard at `times` (ms after start), from sequence 1; returns the next sequence.
fn d1_heard_at(state: &mut FailoverState, start: Instant, times: &[u64]) -> u64 {
    let mut sequence = 1;
    for millis in times {
        d1_holds(state, start, sequence, *millis);
        assert!(!state.evaluate(at(start, *millis)));
        sequence += 1;
    }
    sequence
}

/// Whether d2 takes the VIP at `millis`, given that a probe then finds nobody answering for it
/// (as when d1's link is down, or its ARP answers are lost like its heartbeats).
fn takes_over_when_nobody_answers(state: &mut FailoverState, start: Instant, millis: u64) -> bool {
    let now = at(start, millis);
    state.evaluate(now);
    state.probed(vip(100), Probe::new(Vec::new(), now.instant), now);
    state.evaluate(now);
    state.roles().holds(&vip(100), false)
}

#[test]
fn a_jittery_holder_keeps_the_vip_through_a_gap_it_has_shown_before() {
    let start = Instant::now();
    let mut d2 = d2(start);
    // A busy d1: rounds 10 to 140 ms apart (50 on average), for a few seconds.
    let mut times = Vec::new();
    let mut now = 0;
    for round in 0..60 {
        now += [50, 20, 140, 10, 30][round % 5];
        times.push(now);
    }
    d1_heard_at(&mut d2, start, &times);
    // 170 ms of silence: longer than 3 × 50 ms, shorter than its largest gap plus an interval.
    assert!(
        !takes_over_when_nobody_answers(&mut d2, start, now + 170),
        "a fixed 150 ms deadline takes the VIP from a live, busy holder"
    );
    assert!(
        d2.status(at(start, now + 170).instant)[0]
            .peers_alive
            .contains(&"d1".to_owned())
    );
}

#[test]
fn a_late_burst_after_this_agents_own_stall_moves_nothing() {
    let start = Instant::now();
    let mut d2 = d2(start);
    let times: Vec<u64> = (1..=20).map(|round| round * 50).collect();
    let next = d1_heard_at(&mut d2, start, &times);
    // d2's task does not run from 1,010 ms to 1,400 ms (its node starved it): it wakes 390 ms
    // late, d1's heartbeats of that time waiting in its socket.
    d2.stalled(Duration::from_millis(390));
    assert!(
        !d2.evaluate(at(start, 1_400)),
        "no decision on a silence d2 could not hear"
    );
    assert!(
        d2.probe_targets(at(start, 1_400).instant).is_empty(),
        "d1 is not even suspect: a fixed detector would already be probing to take the VIP"
    );
    // The burst is taken in; d1 is as live as ever.
    for sequence in next..next + 8 {
        d1_holds(&mut d2, start, sequence, 1_400);
    }
    assert!(!takes_over_when_nobody_answers(&mut d2, start, 1_450));
    assert_eq!(
        d2.status(at(start, 1_450).instant)[0].active_director.as_deref(),
        Some("d1")
    );
}

#[test]
fn a_regular_holder_that_stops_is_taken_over_at_the_dead_interval() {
    let start = Instant::now();
    let mut d2 = d2(start);
    let times: Vec<u64> = (1..=40).map(|round| round * 50).collect();
    d1_heard_at(&mut d2, start, &times);
    // d1 stops at 2,000 ms.
    assert!(
        !takes_over_when_nobody_answers(&mut d2, start, 2_149),
        "alive until 150 ms"
    );
    assert!(
        takes_over_when_nobody_answers(&mut d2, start, 2_150),
        "the adaptive part must not slow down a regular holder's takeover"
    );
}

#[test]
fn a_paused_holder_with_irregular_heartbeats_is_taken_over_within_twice_the_dead_interval() {
    let start = Instant::now();
    let mut d2 = d2(start);
    // d1 paused for a whole second once (its node stalled), then beat regularly again.
    let mut times: Vec<u64> = (1..=10).map(|round| round * 50).collect();
    times.extend((0..10).map(|round| 1_500 + round * 50));
    d1_heard_at(&mut d2, start, &times);
    // Then it stops for good at 1,950 ms: taken over by 1,950 + 300 ms at the latest, not
    // after a second-long allowance learned from the pause.
    assert!(!takes_over_when_nobody_answers(&mut d2, start, 2_100));
    assert!(takes_over_when_nobody_answers(&mut d2, start, 2_250));
}

#[test]
fn the_next_deadline_is_the_holders_suspicion_then_its_death() {
    let start = Instant::now();
    let mut d2 = d2(start);
    let times: Vec<u64> = (1..=10).map(|round| round * 50).collect();
    d1_heard_at(&mut d2, start, &times);
    assert_eq!(
        d2.next_deadline(at(start, 500).instant),
        Some(at(start, 575).instant),
        "half the dead interval: a probe is due"
    );
    assert_eq!(
        d2.next_deadline(at(start, 575).instant),
        Some(at(start, 650).instant)
    );
}

#[test]
fn a_probe_that_overlapped_a_stall_of_this_node_does_not_end_the_holders_hold() {
    let start = Instant::now();
    let mut d2 = d2(start);
    let times: Vec<u64> = (1..=40).map(|round| round * 50).collect();
    d1_heard_at(&mut d2, start, &times);
    // d1's agent is killed at 2,000 ms (its kernel still answers ARP for the VIP). d2 suspects
    // it at 2,075 ms and starts a probe; d2's node then stalls, and the probe's result —
    // nobody, its thread having woken after its deadline — is taken in 525 ms after its start.
    let probe_started = at(start, 2_075);
    d2.evaluate(probe_started);
    assert!(
        d2.awaiting_probe(probe_started.instant),
        "d1 is held while probed"
    );
    let late = at(start, 2_600);
    assert!(!d2.probed(vip(100), Probe::new(Vec::new(), probe_started.instant), late));
    d2.evaluate(late);
    assert!(
        !d2.roles().holds(&vip(100), false),
        "a probe that did not run on time takes the VIP from a holder that answers"
    );
    assert!(d2.awaiting_probe(late.instant), "the hold stands: probe again");
    // The next probe, on time, hears d1: still held.
    let answered = at(start, 2_700);
    d2.probed(
        vip(100),
        Probe::new(vec!["02:00:0a:64:00:02".into()], at(start, 2_640).instant),
        answered,
    );
    d2.evaluate(answered);
    assert!(!d2.roles().holds(&vip(100), false));
    // d1 really is gone later: a probe on time that finds nobody lets d2 take over.
    let gone = at(start, 3_000);
    d2.probed(vip(100), Probe::new(Vec::new(), at(start, 2_930).instant), gone);
    d2.evaluate(gone);
    assert!(d2.roles().holds(&vip(100), false));
}
