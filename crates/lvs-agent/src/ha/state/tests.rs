//! The failover state on its own, with the time chosen by the test: records come and go whole,
//! a restarted agent keeps what it holds, a restarting peer keeps its VIP until nobody answers.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::*;
use crate::ha::election::Local;
use crate::ha::restart::{RestartState, SavedVip};
use crate::ha::wire::{Heartbeat, KeySlot, Role, VipReport};

pub(super) const INTERVAL: Duration = Duration::from_millis(200);

pub(super) fn vip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

pub(super) fn group() -> Group {
    Group {
        ranked: vec!["d1".into(), "d2".into()],
        peers: BTreeMap::from([("d1".to_owned(), Some(vip(1))), ("d2".to_owned(), Some(vip(2)))]),
        interval: INTERVAL,
        dead_after_count: 3,
        preempt: false,
        preempt_delay: Duration::ZERO,
        connection_sync: None,
        interface: Some("eth0".into()),
        devices: vec!["lvs0".into()],
        virtual_servers: vec!["lab/web".into()],
    }
}

pub(super) fn eligible() -> Local {
    Local {
        eligible: true,
        reason: None,
        healthy: 2,
        synced_since: None,
    }
}

/// A moment `millis` after `start`.
pub(super) fn at(start: Instant, millis: u64) -> Now {
    Now {
        instant: start + Duration::from_millis(millis),
        wall: SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
    }
}

pub(super) fn state(node: &str) -> FailoverState {
    FailoverState::new(
        node,
        7,
        None,
        Duration::from_secs(30),
        crate::metrics::Metrics::new(node),
    )
}

pub(super) fn report(vips: &[IpAddr]) -> PassReport {
    PassReport {
        groups: vips.iter().map(|address| (*address, group())).collect(),
        local: vips.iter().map(|address| (*address, eligible())).collect(),
        ..PassReport::default()
    }
}

pub(super) fn uplinks_up(state: &mut FailoverState, now: Now) {
    let checks = state
        .uplink_targets()
        .into_iter()
        .map(|(address, _)| (address, Uplink::Up))
        .collect();
    state.uplinks(checks, now);
}

/// `heartbeat` received by `state` from its sender's address (d1: 10.0.0.1, d2: 10.0.0.2).
pub(super) fn hear(state: &mut FailoverState, heartbeat: Heartbeat, now: Instant) -> Result<(), Rejection> {
    let from = if heartbeat.node == "d1" { vip(1) } else { vip(2) };
    state.accept(heartbeat, from, KeySlot::Current, now)
}

pub(super) fn heartbeat(
    node: &str,
    incarnation: u64,
    sequence: u64,
    vips: &[(IpAddr, Role, bool)],
) -> Heartbeat {
    Heartbeat {
        node: node.into(),
        incarnation,
        sequence,
        part: 0,
        parts: 1,
        vips: vips
            .iter()
            .map(|(address, role, restarting)| VipReport {
                address: *address,
                role: *role,
                eligible: true,
                wants_vip: false,
                healthy: 2,
                synced_millis: 0,
                restarting: *restarting,
            })
            .collect(),
    }
}

#[test]
fn vips_added_and_removed_leave_no_state_behind() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.report(report(&[vip(100), vip(101)]), at(start, 0));
    uplinks_up(&mut d1, at(start, 0));
    hear(
        &mut d1,
        heartbeat("d2", 1, 1, &[(vip(100), Role::Standby, false)]),
        start,
    )
    .unwrap();
    // After listening one dead interval d1 takes both, with takeover records and pending
    // announcements...
    assert!(d1.evaluate(at(start, 1_000)));
    assert_eq!(d1.roles().held(), BTreeSet::from([vip(100), vip(101)]));
    // ...and another host answers for one of them: a re-announcement is due.
    assert!(d1.probed(
        vip(101),
        Probe::new(vec!["02:00:00:00:00:09".into()], at(start, 1_100).instant),
        at(start, 1_100)
    ));
    assert_eq!(d1.roles().reannounce, BTreeSet::from([vip(101)]));
    assert_eq!(d1.status(start).len(), 2);

    d1.report(report(&[vip(100)]), at(start, 1_200));
    assert_eq!(d1.len(), 1, "one VIP gone: its record is gone");
    assert!(
        d1.roles().reannounce.is_empty(),
        "and its re-announcement with it"
    );
    d1.report(PassReport::default(), at(start, 1_300));
    assert!(d1.is_empty());
    assert_eq!(
        d1.roles(),
        Roles::default(),
        "no role, no adoption, no announcement left"
    );
    assert!(d1.status(start).is_empty());
    assert!(d1.rounds(start, 9751).is_empty(), "nothing to say");
    assert!(d1.probe_targets(start).is_empty() && d1.uplink_targets().is_empty());

    // Added again: a fresh standby, no record of the old takeover.
    d1.report(report(&[vip(100)]), at(start, 1_400));
    let status = d1.status(start);
    assert_eq!((status[0].role, &status[0].last_failover), (Role::Standby, &None));
}

#[test]
fn a_removed_vip_takes_its_metric_series_along() {
    let start = Instant::now();
    let metrics = crate::metrics::Metrics::new("d1");
    let mut d1 = FailoverState::new("d1", 7, None, Duration::from_secs(30), Arc::clone(&metrics));
    d1.report(report(&[vip(100), vip(101)]), at(start, 0));
    uplinks_up(&mut d1, at(start, 0));
    assert!(d1.evaluate(at(start, 1_000)), "alone: d1 takes both");
    d1.probed(
        vip(101),
        Probe::new(vec!["02:00:00:00:00:09".into()], at(start, 1_100).instant),
        at(start, 1_100),
    );
    let series = |text: &str, vip: &str| {
        text.lines()
            .filter(|line| !line.starts_with('#') && line.contains(&format!("vip=\"{vip}\"")))
            .count()
    };
    let text = metrics.encode();
    assert!(
        series(&text, "10.0.0.101") >= 3,
        "elections, role, duplicate:\n{text}"
    );
    d1.report(report(&[vip(100)]), at(start, 1_200));
    let text = metrics.encode();
    assert_eq!(
        series(&text, "10.0.0.101"),
        0,
        "no series of the removed VIP:\n{text}"
    );
    assert!(series(&text, "10.0.0.100") >= 2, "the other VIP keeps its series");
}

/// d2, standby for VIP .100 (uplink up), having heard d1 hold it at `start`.
fn standby_hearing_d1(start: Instant) -> FailoverState {
    let mut d2 = state("d2");
    d2.report(report(&[vip(100)]), at(start, 0));
    uplinks_up(&mut d2, at(start, 0));
    hear(
        &mut d2,
        heartbeat("d1", 1, 1, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    d2
}

pub(super) fn saved(active: bool) -> RestartState {
    RestartState {
        node: "d1".into(),
        vips: vec![SavedVip {
            address: vip(100),
            group: group(),
            active,
            eligible: true,
            healthy: 2,
        }],
        ..RestartState::default()
    }
}

#[test]
fn a_restarted_agent_still_holding_its_vip_is_active_at_once() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.resume(Some(saved(true)), &BTreeSet::from([vip(100)]), at(start, 0));
    uplinks_up(&mut d1, at(start, 0));
    assert!(!d1.evaluate(at(start, 10)), "no change: it holds the VIP");
    assert!(d1.roles().holds(&vip(100), false));
    let rounds = d1.rounds(start, 9751);
    assert_eq!(rounds.len(), 1);
    assert_eq!(
        rounds[0].vips[0].role,
        Role::Active,
        "its first heartbeat says so"
    );
    assert!(rounds[0].vips[0].eligible, "with its last state, before any pass");
    assert_eq!(
        rounds[0].target,
        "10.0.0.2:9751".parse().unwrap(),
        "to the saved peers"
    );
    // The standby is heard: the restarted director stays active.
    hear(&mut d1, heartbeat_of_standby(), at(start, 50).instant).unwrap();
    assert!(!d1.evaluate(at(start, 60)));
    assert!(d1.roles().holds(&vip(100), false));
}

fn heartbeat_of_standby() -> Heartbeat {
    heartbeat("d2", 2, 1, &[(vip(100), Role::Standby, false)])
}

#[test]
fn a_saved_vip_gone_from_the_kernel_or_not_held_starts_as_standby() {
    let start = Instant::now();
    let mut gone = state("d1");
    gone.resume(Some(saved(true)), &BTreeSet::new(), at(start, 0));
    assert!(
        !gone.roles().holds(&vip(100), false),
        "not in the kernel: not held"
    );
    let mut standby = state("d1");
    standby.resume(Some(saved(false)), &BTreeSet::from([vip(100)]), at(start, 0));
    assert!(
        !standby.roles().holds(&vip(100), false),
        "was standby: stays standby"
    );
}

#[test]
fn without_a_saved_state_a_vip_in_the_kernel_is_kept_until_the_first_report() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.resume(None, &BTreeSet::from([vip(100)]), at(start, 0));
    assert!(
        d1.roles().holds(&vip(100), false),
        "kept, not dropped, before any pass"
    );
    let mut held = report(&[vip(100)]);
    held.held = BTreeSet::from([vip(100)]);
    d1.report(held, at(start, 10));
    assert_eq!(
        d1.roles().elections[&vip(100)],
        Role::Active,
        "the pass held it: active"
    );
    assert!(d1.roles().adopt.is_empty());
}

#[test]
fn a_restarting_holder_keeps_its_vip_until_nobody_answers_for_it() {
    let start = Instant::now();
    let mut d2 = standby_hearing_d1(start);
    // SIGTERM: d1 says it is restarting, then falls silent for longer than the dead interval.
    hear(
        &mut d2,
        heartbeat("d1", 1, 2, &[(vip(100), Role::Active, true)]),
        at(start, 100).instant,
    )
    .unwrap();
    assert!(
        !d2.evaluate(at(start, 5_000)),
        "held for the restart: no takeover"
    );
    assert_eq!(
        d2.probe_targets(at(start, 5_000).instant),
        [(vip(100), Some("eth0".to_owned()))],
        "the standby checks the holder still answers"
    );
    d2.probed(
        vip(100),
        Probe::new(vec!["02:00:00:00:00:01".into()], at(start, 5_100).instant),
        at(start, 5_100),
    );
    assert!(!d2.evaluate(at(start, 5_200)), "it answers: still no takeover");
    assert!(
        d2.status(at(start, 5_200).instant)[0].duplicate_owners.is_empty(),
        "and no duplicate"
    );
    // The restarted agent is heard (a new incarnation): normal heartbeats again.
    hear(
        &mut d2,
        heartbeat("d1", 2, 1, &[(vip(100), Role::Active, false)]),
        at(start, 6_000).instant,
    )
    .unwrap();
    assert!(!d2.evaluate(at(start, 6_100)));
    assert!(d2.probe_targets(at(start, 6_100).instant).is_empty());

    // Restarting again, and this time nobody answers for the VIP any more: taken over.
    hear(
        &mut d2,
        heartbeat("d1", 2, 2, &[(vip(100), Role::Active, true)]),
        at(start, 7_000).instant,
    )
    .unwrap();
    assert!(!d2.evaluate(at(start, 8_000)));
    d2.probed(
        vip(100),
        Probe::new(Vec::new(), at(start, 8_100).instant),
        at(start, 8_100),
    );
    assert!(d2.evaluate(at(start, 8_200)), "gone: taken over");
    assert!(d2.roles().holds(&vip(100), false));
}

#[test]
fn a_restart_hold_ends_by_itself() {
    let start = Instant::now();
    let mut d2 = FailoverState::new(
        "d2",
        7,
        None,
        Duration::from_secs(2),
        crate::metrics::Metrics::new("d2"),
    );
    d2.report(report(&[vip(100)]), at(start, 0));
    uplinks_up(&mut d2, at(start, 0));
    hear(
        &mut d2,
        heartbeat("d1", 1, 1, &[(vip(100), Role::Active, true)]),
        start,
    )
    .unwrap();
    assert!(!d2.evaluate(at(start, 1_900)));
    assert!(d2.evaluate(at(start, 2_100)), "the hold is over: taken over");
}

#[test]
fn the_saved_state_follows_roles_and_groups() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.report(report(&[vip(100)]), at(start, 0));
    uplinks_up(&mut d1, at(start, 0));
    assert!(d1.evaluate(at(start, 1_000)), "alone: takes the VIP");
    let saved = d1.restart_state();
    assert_eq!(saved.node, "d1");
    assert_eq!(
        saved
            .vips
            .iter()
            .map(|vip| (vip.address, vip.active))
            .collect::<Vec<_>>(),
        [(vip(100), true)]
    );
    d1.report(PassReport::default(), at(start, 1_100));
    assert!(d1.restart_state().vips.is_empty());
}

#[test]
fn a_silent_holder_whose_vip_still_answers_keeps_it_until_nobody_answers() {
    let start = Instant::now();
    let mut d2 = standby_hearing_d1(start);
    // d1 falls silent (kill -9 of its agent): past the dead interval a probe is due first.
    assert!(!d2.evaluate(at(start, 700)), "no takeover before a probe");
    assert_eq!(d2.probe_targets(at(start, 700).instant).len(), 1);
    d2.probed(
        vip(100),
        Probe::new(vec!["02:00:00:00:00:01".into()], at(start, 800).instant),
        at(start, 800),
    );
    assert!(!d2.evaluate(at(start, 900)), "the VIP still answers: held");
    assert!(!d2.evaluate(at(start, 20_000)), "still held 20 s later");
    // Nobody answers any more (the node is gone): taken over at once.
    d2.probed(
        vip(100),
        Probe::new(Vec::new(), at(start, 21_000).instant),
        at(start, 21_000),
    );
    assert!(d2.evaluate(at(start, 21_010)));
    let status = d2.status(at(start, 21_010).instant);
    let takeover = status[0].last_failover.as_ref().unwrap();
    assert_eq!(
        (takeover.from.as_deref(), takeover.reason),
        (Some("d1"), crate::ha::election::TakeoverReason::PeerDead)
    );
}

#[test]
fn a_silent_holder_that_does_not_answer_is_taken_over_after_one_probe() {
    let start = Instant::now();
    let mut d2 = standby_hearing_d1(start);
    assert!(!d2.evaluate(at(start, 650)));
    d2.probed(
        vip(100),
        Probe::new(Vec::new(), at(start, 850).instant),
        at(start, 850),
    );
    assert!(d2.evaluate(at(start, 860)), "gone: taken over");
    // The hold is not started again for the same silence.
    assert!(d2.roles().holds(&vip(100), false));
}

#[test]
fn the_holder_announces_again_when_a_rival_holder_steps_down() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.resume(Some(saved(true)), &BTreeSet::from([vip(100)]), at(start, 0));
    uplinks_up(&mut d1, at(start, 0));
    // d2 took the VIP meanwhile (and announced it): two actives, d2 steps down.
    hear(
        &mut d1,
        heartbeat("d2", 1, 1, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    d1.evaluate(at(start, 10));
    assert!(d1.roles().reannounce.is_empty(), "not while d2 still says active");
    hear(
        &mut d1,
        heartbeat("d2", 1, 2, &[(vip(100), Role::Standby, false)]),
        at(start, 200).instant,
    )
    .unwrap();
    d1.evaluate(at(start, 210));
    assert_eq!(
        d1.roles().reannounce,
        BTreeSet::from([vip(100)]),
        "announced again"
    );
}

#[test]
fn a_holder_restarted_with_its_uplink_down_starts_as_standby() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.resume(Some(saved(true)), &BTreeSet::from([vip(100)]), at(start, 0));
    d1.uplinks(
        BTreeMap::from([(vip(100), Uplink::Down("eth0 is down".into()))]),
        at(start, 0),
    );
    d1.release_unreachable(at(start, 0));
    assert!(!d1.roles().holds(&vip(100), false));
}

#[test]
fn a_standby_back_on_the_network_listens_before_taking_the_vip() {
    let start = Instant::now();
    let mut d1 = state("d1");
    d1.report(report(&[vip(100)]), at(start, 0));
    d1.uplinks(
        BTreeMap::from([(vip(100), Uplink::Down("eth0 is down".into()))]),
        at(start, 0),
    );
    assert!(!d1.evaluate(at(start, 5_000)), "cut off: not eligible");
    // The link comes back at 5 s: the peer holding the VIP may not have been heard yet.
    d1.uplinks(BTreeMap::from([(vip(100), Uplink::Up)]), at(start, 5_000));
    assert!(!d1.evaluate(at(start, 5_100)), "listening first");
    assert!(
        d1.evaluate(at(start, 5_700)),
        "nobody heard for a dead interval: takes it"
    );
}
