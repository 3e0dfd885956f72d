#![allow(clippy::unwrap_used)]

use super::*;

const DEAD: Duration = Duration::from_millis(600);

fn settings(me: &str, preempt: bool, failback_sync: Option<Duration>) -> Settings {
    Settings {
        address: "10.100.0.100".parse().unwrap(),
        ranked: vec!["d1".into(), "d2".into(), "d3".into()],
        me: me.into(),
        dead_after: DEAD,
        preempt,
        preempt_delay: Duration::from_secs(2),
        failback_sync,
    }
}

fn local(healthy: u16) -> Local {
    Local {
        eligible: true,
        reason: None,
        healthy,
        synced_since: None,
    }
}

fn report(role: Role, eligible: bool, healthy: u16, wants_vip: bool) -> VipReport {
    VipReport {
        address: "10.100.0.100".parse().unwrap(),
        role,
        eligible,
        wants_vip,
        healthy,
        synced_millis: 0,
        restarting: false,
    }
}

fn peers(entries: &[(&str, Instant, VipReport)]) -> BTreeMap<String, PeerReport> {
    entries
        .iter()
        .map(|(node, heard_at, report)| ((*node).to_owned(), PeerReport::heard(*heard_at, report.clone())))
        .collect()
}

fn took_over(decision: &Decision) -> Option<TakeoverReason> {
    match decision {
        Decision::TakeOver { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_lone_director_listens_one_dead_interval_then_takes_the_vip() {
    let start = Instant::now();
    let mut election = Election::new(settings("d2", false, None), start);
    let none = BTreeMap::new();
    assert_eq!(election.evaluate(start, &local(2), &none), Decision::Stay);
    assert_eq!(
        took_over(&election.evaluate(start + DEAD, &local(2), &none)),
        Some(TakeoverReason::Startup)
    );
    assert_eq!(election.role(), Role::Active);
}

#[tokio::test(start_paused = true)]
async fn the_standby_takes_over_once_the_active_is_silent_for_the_dead_interval() {
    let start = Instant::now();
    let mut standby = Election::new(settings("d2", false, None), start);
    let last_heard = start + Duration::from_secs(5);
    let active = peers(&[("d1", last_heard, report(Role::Active, true, 2, false))]);
    assert_eq!(standby.evaluate(last_heard, &local(2), &active), Decision::Stay);
    assert_eq!(
        standby.evaluate(last_heard + DEAD - Duration::from_millis(1), &local(2), &active),
        Decision::Stay,
        "not dead yet"
    );
    let decision = standby.evaluate(last_heard + DEAD, &local(2), &active);
    assert_eq!(
        decision,
        Decision::TakeOver {
            reason: TakeoverReason::PeerDead,
            from: Some("d1".into()),
            last_heard: Some(last_heard)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn of_two_standbys_only_the_higher_priority_one_takes_over() {
    let start = Instant::now();
    let now = start + Duration::from_secs(5);
    let mut d2 = Election::new(settings("d2", false, None), start);
    let mut d3 = Election::new(settings("d3", false, None), start);
    let seen_by_d3 = peers(&[("d2", now, report(Role::Standby, true, 2, false))]);
    let seen_by_d2 = peers(&[("d3", now, report(Role::Standby, true, 2, false))]);
    assert_eq!(d3.evaluate(now, &local(2), &seen_by_d3), Decision::Stay);
    assert_eq!(
        took_over(&d2.evaluate(now, &local(2), &seen_by_d2)),
        Some(TakeoverReason::Startup)
    );
}

#[tokio::test(start_paused = true)]
async fn health_gates_leadership() {
    let start = Instant::now();
    let now = start + Duration::from_secs(5);
    // The active has no healthy real server while the standby has some: it hands over.
    let mut d1 = Election::new(settings("d1", false, None), start);
    assert!(took_over(&d1.evaluate(now, &local(0), &BTreeMap::new())).is_some());
    let healthy_standby = peers(&[("d2", now, report(Role::Standby, true, 2, false))]);
    assert!(matches!(
        d1.evaluate(now, &local(0), &healthy_standby),
        Decision::StepDown { .. }
    ));
    // The standby then takes it: the old active is no candidate, and it is standby now.
    let mut d2 = Election::new(settings("d2", false, None), start);
    let old_active = peers(&[("d1", now, report(Role::Standby, true, 0, false))]);
    assert!(took_over(&d2.evaluate(now, &local(2), &old_active)).is_some());
    // A director whose IPVS service is not programmed never takes the VIP, even alone.
    let mut broken = Election::new(settings("d1", false, None), start);
    let not_programmed = Local {
        eligible: false,
        reason: Some("IPVS service not programmed".into()),
        ..local(2)
    };
    assert_eq!(
        broken.evaluate(now, &not_programmed, &BTreeMap::new()),
        Decision::Stay
    );
    assert_eq!(broken.message(), Some("IPVS service not programmed"));
    // With nobody better, an active without healthy real servers keeps serving (the fallback).
    let mut alone = Election::new(settings("d1", false, None), start);
    assert!(took_over(&alone.evaluate(now, &local(0), &BTreeMap::new())).is_some());
    assert_eq!(alone.evaluate(now, &local(0), &BTreeMap::new()), Decision::Stay);
}

#[tokio::test(start_paused = true)]
async fn of_two_actives_the_lower_priority_one_steps_down() {
    let start = Instant::now();
    let now = start + Duration::from_secs(5);
    let mut d2 = Election::new(settings("d2", false, None), start);
    assert!(took_over(&d2.evaluate(now, &local(2), &BTreeMap::new())).is_some());
    let both = peers(&[("d1", now, report(Role::Active, true, 2, false))]);
    assert!(matches!(
        d2.evaluate(now, &local(2), &both),
        Decision::StepDown { .. }
    ));
    let mut d1 = Election::new(settings("d1", false, None), start);
    assert!(took_over(&d1.evaluate(now, &local(2), &BTreeMap::new())).is_some());
    let other = peers(&[("d2", now, report(Role::Active, true, 2, false))]);
    assert_eq!(d1.evaluate(now, &local(2), &other), Decision::Stay);
}

#[tokio::test(start_paused = true)]
async fn without_preemption_a_returning_higher_priority_director_stays_standby() {
    let start = Instant::now();
    let mut d1 = Election::new(settings("d1", false, None), start);
    let later = start + Duration::from_secs(60);
    let active = peers(&[("d2", later, report(Role::Active, true, 2, false))]);
    assert_eq!(d1.evaluate(start, &local(2), &active), Decision::Stay);
    assert_eq!(d1.evaluate(later, &local(2), &active), Decision::Stay);
    assert!(!d1.wants_vip());
}

#[tokio::test(start_paused = true)]
async fn preemption_waits_for_the_delay_and_the_sync_then_the_active_hands_over() {
    let start = Instant::now();
    let sync = Some(Duration::from_secs(3));
    let mut d1 = Election::new(settings("d1", true, sync), start);
    let at = |seconds: u64| start + Duration::from_secs(seconds);
    let d2_active = |seconds| peers(&[("d2", at(seconds), report(Role::Active, true, 2, false))]);
    let synced_from = |seconds| Local {
        synced_since: Some(at(seconds)),
        ..local(2)
    };
    assert_eq!(d1.evaluate(at(0), &synced_from(1), &d2_active(0)), Decision::Stay);
    assert!(!d1.wants_vip(), "the preemption delay (2 s) has not passed");
    assert_eq!(d1.evaluate(at(3), &synced_from(1), &d2_active(3)), Decision::Stay);
    assert!(
        !d1.wants_vip(),
        "eligible for 3 s, but synced for 2 s of the 3 needed"
    );
    assert_eq!(d1.evaluate(at(4), &synced_from(1), &d2_active(4)), Decision::Stay);
    assert!(
        d1.wants_vip(),
        "delay and sync time both passed: asks for the VIP"
    );

    // The active sees the request and hands over.
    let mut d2 = Election::new(settings("d2", true, sync), start);
    assert!(took_over(&d2.evaluate(at(1), &local(2), &BTreeMap::new())).is_some());
    let asking = peers(&[("d1", at(4), report(Role::Standby, true, 2, true))]);
    assert!(matches!(
        d2.evaluate(at(4), &local(2), &asking),
        Decision::StepDown { .. }
    ));
    // d1 sees d2 standby and takes the VIP.
    let handed = peers(&[("d2", at(4), report(Role::Standby, true, 2, false))]);
    assert_eq!(
        took_over(&d1.evaluate(at(4), &synced_from(1), &handed)),
        Some(TakeoverReason::Preempt)
    );
    // d2, now standby, does not take it back: d1 has a higher priority.
    let d1_active = peers(&[("d1", at(4), report(Role::Active, true, 2, false))]);
    assert_eq!(
        d2.evaluate(at(4) + Duration::from_millis(100), &local(2), &d1_active),
        Decision::Stay
    );
}

#[tokio::test(start_paused = true)]
async fn split_brain_the_lower_priority_owner_steps_down_and_holds_back() {
    let start = Instant::now();
    let now = start + Duration::from_secs(5);
    let none = BTreeMap::new();
    // Heartbeats dropped: both think they are alone and take the VIP.
    let mut d1 = Election::new(settings("d1", false, None), start);
    let mut d2 = Election::new(settings("d2", false, None), start);
    assert!(took_over(&d1.evaluate(now, &local(2), &none)).is_some());
    assert!(took_over(&d2.evaluate(now, &local(2), &none)).is_some());
    // Each probe finds the other's MAC.
    assert_eq!(
        d1.probed(vec!["02:00:0a:64:00:03".into()], now, &none),
        Decision::Stay
    );
    assert_eq!(d1.duplicates(), ["02:00:0a:64:00:03"]);
    for _ in 1..EVIDENCE_PROBES {
        assert_eq!(
            d2.probed(vec!["02:00:0a:64:00:02".into()], now, &none),
            Decision::Stay,
            "evidence must persist"
        );
    }
    assert!(matches!(
        d2.probed(vec!["02:00:0a:64:00:02".into()], now, &none),
        Decision::StepDown { .. }
    ));
    assert!(d2.held_back());
    // d2 does not take the VIP again while d1 answers for it.
    assert_eq!(d2.evaluate(now + DEAD * 3, &local(2), &none), Decision::Stay);
    assert_eq!(
        d2.probed(vec!["02:00:0a:64:00:02".into()], now, &none),
        Decision::Stay
    );
    assert_eq!(d2.evaluate(now + DEAD * 4, &local(2), &none), Decision::Stay);
    // d1's next probe is clean; d1 dies: d2's probe finds nobody and it takes over.
    assert_eq!(d1.probed(Vec::new(), now, &none), Decision::Stay);
    assert!(d1.duplicates().is_empty());
    assert_eq!(d2.probed(Vec::new(), now, &none), Decision::Stay);
    assert!(took_over(&d2.evaluate(now + DEAD * 5, &local(2), &none)).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_standby_hearing_the_active_ignores_its_answers() {
    let start = Instant::now();
    let now = start + Duration::from_secs(5);
    let mut d2 = Election::new(settings("d2", false, None), start);
    let active = peers(&[("d1", now, report(Role::Active, true, 2, false))]);
    assert_eq!(
        d2.probed(vec!["02:00:0a:64:00:02".into()], now, &active),
        Decision::Stay
    );
    assert!(d2.duplicates().is_empty());
    assert!(!d2.held_back());
}

#[tokio::test(start_paused = true)]
async fn an_answer_alone_steps_down_only_when_it_persists_and_once_per_hold() {
    let start = Instant::now();
    let none = BTreeMap::new();
    let mac = || vec!["02:00:0a:64:00:09".to_owned()];
    // d1 (higher priority) died; d2 took the VIP over.
    let mut d2 = Election::new(settings("d2", false, None), start);
    let mut now = start + Duration::from_secs(5);
    assert!(took_over(&d2.evaluate(now, &local(2), &none)).is_some());
    // One reply right after the takeover (stale, or spoofed): reported, nothing moves.
    assert_eq!(d2.probed(mac(), now, &none), Decision::Stay);
    assert_eq!(d2.duplicates(), ["02:00:0a:64:00:09"]);
    assert_eq!(d2.role(), Role::Active);
    assert_eq!(
        d2.probed(Vec::new(), now, &none),
        Decision::Stay,
        "a clean probe resets"
    );
    for _ in 1..EVIDENCE_PROBES {
        now += Duration::from_secs(1);
        assert_eq!(d2.probed(mac(), now, &none), Decision::Stay);
    }
    now += Duration::from_secs(1);
    assert!(matches!(d2.probed(mac(), now, &none), Decision::StepDown { .. }));
    // The answers stop: d2 takes the VIP again; the same evidence within the hold is reported
    // but does not take the VIP down a second time.
    assert_eq!(d2.probed(Vec::new(), now, &none), Decision::Stay);
    now += DEAD * 2;
    assert!(took_over(&d2.evaluate(now, &local(2), &none)).is_some());
    for _ in 0..EVIDENCE_PROBES * 2 {
        now += Duration::from_secs(1);
        assert_eq!(d2.probed(mac(), now, &none), Decision::Stay);
    }
    assert_eq!(d2.role(), Role::Active);
    assert!(
        d2.message()
            .is_some_and(|message| message.contains("staying active"))
    );
    // After the hold, persistent evidence counts again.
    now += EVIDENCE_HOLD;
    assert!(matches!(d2.probed(mac(), now, &none), Decision::StepDown { .. }));
}

#[tokio::test(start_paused = true)]
async fn the_other_owners_kept_are_bounded() {
    let start = Instant::now();
    let mut d2 = Election::new(settings("d2", false, None), start);
    let macs: Vec<String> = (0..40).map(|last| format!("02:00:00:00:01:{last:02x}")).collect();
    d2.probed(macs, start, &BTreeMap::new());
    assert_eq!(d2.duplicates().len(), MAX_DUPLICATES);
}
