//! Heartbeats as the failover state takes them in: replays (an older incarnation, an equal
//! sequence, two datagrams alternated across a restart, after the receiver's own restart) and
//! wrong sources are refused, a genuine restart is heard; each peer hears only the VIPs it
//! shares, in rounds that tell what it stopped reporting; a peer under another key is reported.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use tokio::time::Instant;

use super::tests::{at, group, hear, heartbeat, report, state, uplinks_up, vip};
use super::*;
use crate::ha::wire::{HeartbeatKey, HeartbeatKeys, KeySlot, Role};

/// d2, standby for VIP .100, having heard d1 (incarnation 10, sequence 5) hold it.
fn d2_hearing_d1(start: Instant) -> FailoverState {
    let mut d2 = state("d2");
    d2.report(report(&[vip(100)]), at(start, 0));
    uplinks_up(&mut d2, at(start, 0));
    hear(
        &mut d2,
        heartbeat("d1", 10, 5, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    d2
}

#[test]
fn an_equal_or_older_sequence_is_a_replay() {
    let start = Instant::now();
    let mut d2 = d2_hearing_d1(start);
    let active = |sequence| heartbeat("d1", 10, sequence, &[(vip(100), Role::Active, false)]);
    assert_eq!(
        hear(&mut d2, active(5), start),
        Err(Rejection::Replay),
        "the same datagram again"
    );
    assert_eq!(
        hear(&mut d2, active(4), start),
        Err(Rejection::Replay),
        "an older one"
    );
    assert_eq!(hear(&mut d2, active(6), start), Ok(()), "the next one");
}

#[test]
fn an_older_incarnation_is_a_replay_and_a_genuine_restart_is_heard() {
    let start = Instant::now();
    let mut d2 = d2_hearing_d1(start);
    let old = heartbeat("d1", 9, 1_000, &[(vip(100), Role::Active, false)]);
    assert_eq!(hear(&mut d2, old, start), Err(Rejection::Replay));
    // d1 restarted: a larger incarnation, its sequence starting over.
    let restarted = heartbeat("d1", 11, 1, &[(vip(100), Role::Standby, false)]);
    assert_eq!(hear(&mut d2, restarted, at(start, 100).instant), Ok(()));
    assert_eq!(
        d2.status(at(start, 100).instant)[0].active_director,
        None,
        "what the restarted d1 says counts"
    );
}

#[test]
fn two_datagrams_captured_across_a_restart_cannot_be_alternated() {
    let start = Instant::now();
    let mut d2 = state("d2");
    d2.report(report(&[vip(100)]), at(start, 0));
    uplinks_up(&mut d2, at(start, 0));
    // Captured: d1 active before its restart, and d1 standby after it.
    let before = heartbeat("d1", 10, 7, &[(vip(100), Role::Active, false)]);
    let after = heartbeat("d1", 11, 1, &[(vip(100), Role::Standby, false)]);
    assert_eq!(hear(&mut d2, before.clone(), start), Ok(()));
    assert_eq!(hear(&mut d2, after.clone(), start), Ok(()));
    for round in 1..=3 {
        let now = at(start, round * 100).instant;
        assert_eq!(
            hear(&mut d2, before.clone(), now),
            Err(Rejection::Replay),
            "round {round}"
        );
        assert_eq!(
            hear(&mut d2, after.clone(), now),
            Err(Rejection::Replay),
            "round {round}"
        );
    }
    // d1 is dead and only the replays come: d2 takes over once d1's silence is long enough.
    d2.probed(
        vip(100),
        Probe::new(Vec::new(), at(start, 1_000).instant),
        at(start, 1_000),
    );
    assert!(d2.evaluate(at(start, 1_100)), "taken over despite the replays");
}

#[test]
fn the_receivers_restart_keeps_the_marks_it_saved() {
    let start = Instant::now();
    let d2 = d2_hearing_d1(start);
    let saved = d2.restart_state();
    assert_eq!(
        saved.peers.get("d1"),
        Some(&crate::ha::restart::PeerMark {
            incarnation: 10,
            sequence: 5
        })
    );
    let mut restarted = state("d2");
    restarted.resume(Some(saved), &std::collections::BTreeSet::new(), at(start, 0));
    let replay = heartbeat("d1", 10, 5, &[(vip(100), Role::Active, false)]);
    assert_eq!(hear(&mut restarted, replay, start), Err(Rejection::Replay));
}

#[test]
fn a_new_incarnation_of_a_peer_is_worth_saving_a_new_sequence_is_not() {
    let start = Instant::now();
    let mut d2 = d2_hearing_d1(start);
    assert!(d2.take_marks_changed(), "first heard");
    assert!(!d2.take_marks_changed());
    hear(
        &mut d2,
        heartbeat("d1", 10, 6, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    assert!(!d2.take_marks_changed(), "not on every heartbeat");
    hear(
        &mut d2,
        heartbeat("d1", 12, 1, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    assert!(d2.take_marks_changed(), "a restart of d1");
}

#[test]
fn a_heartbeat_from_another_address_than_the_peers_is_refused() {
    let start = Instant::now();
    let mut d2 = state("d2");
    d2.report(report(&[vip(100)]), at(start, 0));
    let claim = heartbeat("d1", 10, 1, &[(vip(100), Role::Active, false)]);
    let third_host: IpAddr = "10.0.0.3".parse().unwrap();
    assert_eq!(
        d2.accept(claim.clone(), third_host, KeySlot::Current, start),
        Err(Rejection::WrongSource)
    );
    assert_eq!(
        d2.accept(claim.clone(), vip(2), KeySlot::Current, start),
        Err(Rejection::WrongSource),
        "d2's own address is not d1's"
    );
    assert!(d2.status(start)[0].peers_alive.is_empty(), "nothing was taken in");
    // From a dual-stack socket: d1's address as IPv4-mapped IPv6.
    let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    assert_eq!(d2.accept(claim, mapped, KeySlot::Current, start), Ok(()));
    let stranger = heartbeat("d9", 1, 1, &[(vip(100), Role::Active, false)]);
    assert_eq!(
        d2.accept(stranger, third_host, KeySlot::Current, start),
        Err(Rejection::Stranger)
    );
}

/// A group of VIP `last` between d1 and `other`.
fn pair(other: &str, address: u8) -> Group {
    let mut group = group();
    group.ranked = vec!["d1".into(), other.into()];
    group.peers = BTreeMap::from([
        ("d1".to_owned(), Some(vip(1))),
        (other.to_owned(), Some(vip(address))),
    ]);
    group
}

#[test]
fn each_peer_hears_only_the_vips_it_shares() {
    let start = Instant::now();
    let mut d1 = state("d1");
    let mut pass = report(&[vip(100), vip(101)]);
    pass.groups.insert(vip(100), pair("d2", 2));
    pass.groups.insert(vip(101), pair("d3", 3));
    d1.report(pass, at(start, 0));
    let rounds = d1.rounds(start, 9751);
    let told: Vec<(String, Vec<IpAddr>)> = rounds
        .iter()
        .map(|round| {
            (
                round.node.clone(),
                round.vips.iter().map(|vip| vip.address).collect(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            ("d2".to_owned(), vec![vip(100)]),
            ("d3".to_owned(), vec![vip(101)])
        ]
    );
    // And a peer cannot speak for a VIP it does not share with us.
    let claim = heartbeat(
        "d3",
        1,
        1,
        &[(vip(100), Role::Active, false), (vip(101), Role::Active, false)],
    );
    d1.accept(claim, vip(3), KeySlot::Current, start).unwrap();
    let status = d1.status(start);
    assert!(status[0].peers_alive.is_empty(), "d3 is no director of .100");
    assert_eq!(status[1].peers_alive, ["d3"]);
}

#[test]
fn five_thousand_vips_go_out_in_datagrams_under_the_limit_and_come_back_whole() {
    let start = Instant::now();
    let addresses: Vec<IpAddr> = (0..5_000u32)
        .map(|index| IpAddr::from(std::net::Ipv4Addr::from(0x0a64_0000 + index)))
        .collect();
    let keys = HeartbeatKeys::single(HeartbeatKey::new(b"a shared secret!"));
    let mut d1 = state("d1");
    d1.report(report(&addresses), at(start, 0));
    let mut d2 = state("d2");
    d2.report(report(&addresses), at(start, 0));
    let datagrams = d1.heartbeats(start, 9751, &keys);
    assert!(
        (20..=30).contains(&datagrams.len()),
        "{} datagrams",
        datagrams.len()
    );
    for (target, datagram) in &datagrams {
        assert_eq!(*target, "10.0.0.2:9751".parse().unwrap());
        assert!(datagram.len() <= wire::MAX_DATAGRAM, "{} bytes", datagram.len());
        let (heartbeat, key) = wire::decode(datagram, &keys).unwrap();
        d2.accept(heartbeat, vip(1), key, start).unwrap();
    }
    let status = d2.status(start);
    assert!(
        status.iter().all(|vip| vip.peers_alive == ["d1"]),
        "every VIP heard"
    );
    // The next round goes on with larger sequences: not a replay.
    let (_, next) = &d1.heartbeats(start, 9751, &keys)[0];
    let (heartbeat, key) = wire::decode(next, &keys).unwrap();
    assert_eq!(d2.accept(heartbeat, vip(1), key, start), Ok(()));
}

#[test]
fn a_complete_round_drops_what_the_peer_no_longer_reports() {
    let start = Instant::now();
    let mut d2 = state("d2");
    d2.report(report(&[vip(100), vip(101)]), at(start, 0));
    let both = heartbeat(
        "d1",
        1,
        1,
        &[(vip(100), Role::Active, false), (vip(101), Role::Active, false)],
    );
    hear(&mut d2, both, start).unwrap();
    assert_eq!(d2.status(start)[1].peers_alive, ["d1"]);
    // A round of two parts that no longer mentions .101.
    let mut first = heartbeat("d1", 1, 2, &[(vip(100), Role::Active, false)]);
    first.parts = 2;
    let mut second = heartbeat("d1", 1, 3, &[]);
    (second.part, second.parts) = (1, 2);
    let now = at(start, 100).instant;
    hear(&mut d2, first, now).unwrap();
    assert_eq!(
        d2.status(now)[1].peers_alive,
        ["d1"],
        "the round is not complete yet"
    );
    hear(&mut d2, second, now).unwrap();
    let status = d2.status(now);
    assert_eq!(status[0].peers_alive, ["d1"]);
    assert!(status[1].peers_alive.is_empty(), "d1 no longer reports .101");
    // A round with a part lost drops nothing.
    let mut lost_first = heartbeat("d1", 1, 5, &[]);
    (lost_first.part, lost_first.parts) = (1, 2);
    hear(&mut d2, lost_first, now).unwrap();
    assert_eq!(d2.status(now)[0].peers_alive, ["d1"]);
}

#[test]
fn a_known_peer_under_another_key_is_reported_as_a_key_mismatch() {
    let start = Instant::now();
    let mut d2 = state("d2");
    d2.report(report(&[vip(100)]), at(start, 0));
    assert!(
        !d2.other_key("d1", "10.0.0.3".parse().unwrap(), "ab".into(), start),
        "not from d1's address"
    );
    assert!(!d2.other_key("d9", vip(1), "ab".into(), start), "not a peer");
    assert!(d2.status(start)[0].key_mismatch.is_empty());
    assert!(d2.other_key("d1", vip(1), "0123456789abcdef".into(), start));
    let status = &d2.status(start)[0];
    assert_eq!(
        status.key_mismatch,
        [("d1".to_owned(), "0123456789abcdef".to_owned())]
    );
    assert!(
        status.message.as_deref().unwrap().contains("key"),
        "{:?}",
        status.message
    );
    // Gone once d1 is heard under a key we have, or after the dead interval.
    assert!(d2.status(at(start, 600).instant)[0].key_mismatch.is_empty());
    d2.other_key("d1", vip(1), "0123456789abcdef".into(), start);
    hear(
        &mut d2,
        heartbeat("d1", 1, 1, &[(vip(100), Role::Active, false)]),
        start,
    )
    .unwrap();
    assert!(d2.status(start)[0].key_mismatch.is_empty());
}

#[test]
fn a_peer_heard_under_the_previous_key_is_answered_under_it() {
    let start = Instant::now();
    let keys = HeartbeatKeys {
        current: HeartbeatKey::new(b"the new key....."),
        previous: Some(HeartbeatKey::new(b"the old key.....")),
    };
    let old_only = HeartbeatKeys::single(HeartbeatKey::new(b"the old key....."));
    let mut d1 = state("d1");
    d1.report(report(&[vip(100)]), at(start, 0));
    let (_, datagram) = &d1.heartbeats(start, 9751, &keys)[0];
    assert_eq!(
        wire::decode(datagram, &old_only).unwrap_err().label(),
        "other_key",
        "before d2 is heard: the current key"
    );
    // d2 has not rotated yet: it signs with the old key, which d1 still accepts.
    let from_d2 = wire::encode(
        &heartbeat("d2", 1, 1, &[(vip(100), Role::Standby, false)]),
        &old_only.current,
    );
    let (heartbeat, slot) = wire::decode(&from_d2, &keys).unwrap();
    assert_eq!(slot, KeySlot::Previous);
    d1.accept(heartbeat, vip(2), slot, start).unwrap();
    let (_, datagram) = &d1.heartbeats(start, 9751, &keys)[0];
    assert!(
        wire::decode(datagram, &old_only).is_ok(),
        "d2 hears d1 under the old key"
    );
}
