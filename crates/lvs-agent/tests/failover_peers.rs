//! The failover service with real UDP heartbeats between directors on loopback addresses
//! (127.0.0.1, 127.0.0.2, 127.0.0.3 — all local on Linux): one becomes active, the standby
//! takes over when the active one stops, a returning director stays standby without
//! preemption, a director with the wrong key is not heard but reported as a key mismatch, a probe finding another owner
//! makes the lower-priority director step down, and a director whose uplink goes down hands
//! the VIP over only once it has removed it; a VIP removed and added again keeps no old record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvs_agent::ha::election::Local;
use lvs_agent::ha::wire::{HeartbeatKey, HeartbeatKeys, Role};
use lvs_agent::ha::{Failover, Group, Now, Options, PassReport, Prober, UplinkCheck, VipStatus};
use lvs_agent::metrics::Metrics;
use tokio::time::Instant;

const VIP: &str = "10.0.0.100";
// Heartbeats every 100 ms, dead after 300 ms: short, yet not so short that a busy 2-core machine
// running several of these tests at once drops a director for a moment.
const INTERVAL: Duration = Duration::from_millis(100);

fn port() -> u16 {
    40_000 + u16::try_from(std::process::id() % 20_000).unwrap()
}

fn group() -> Group {
    Group {
        ranked: vec!["d1".into(), "d2".into()],
        peers: [
            ("d1".to_owned(), Some("127.0.0.1".parse().unwrap())),
            ("d2".to_owned(), Some("127.0.0.2".parse().unwrap())),
        ]
        .into_iter()
        .collect(),
        interval: INTERVAL,
        dead_after_count: 3,
        preempt: false,
        preempt_delay: Duration::ZERO,
        connection_sync: None,
        interface: None,
        devices: vec!["lvs0".into()],
        virtual_servers: vec!["lab/web".into()],
    }
}

struct Director {
    failover: Failover,
    metrics: Arc<Metrics>,
    claimants: Arc<Mutex<Vec<String>>>,
    uplink_down: Arc<Mutex<bool>>,
    group: Group,
}

async fn director(node: &str, bind: &str, secret: &[u8], port: u16) -> Director {
    director_with(node, bind, secret, port, group()).await
}

async fn director_with(node: &str, bind: &str, secret: &[u8], port: u16, group: Group) -> Director {
    let claimants = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&claimants);
    let prober: Prober = Arc::new(move |_, _| {
        let found = seen.lock().unwrap().clone();
        Box::pin(async move { Ok(found) })
    });
    let uplink_down = Arc::new(Mutex::new(false));
    let down = Arc::clone(&uplink_down);
    let uplink: UplinkCheck = Arc::new(move |_, _| {
        let down = *down.lock().unwrap();
        Box::pin(async move { down.then(|| "eth0 is down".to_owned()) })
    });
    let metrics = Metrics::new(node);
    let failover = Failover::start(
        Options::new(
            node,
            port,
            bind.parse().unwrap(),
            Some(HeartbeatKeys::single(HeartbeatKey::new(secret))),
            prober,
            uplink,
        ),
        Arc::clone(&metrics),
    )
    .await;
    let director = Director {
        failover,
        metrics,
        claimants,
        uplink_down,
        group,
    };
    director.report(PassReport::default()).await;
    director
}

impl Director {
    /// A pass report for this director's one VIP (eligible, two healthy real servers), with
    /// what `extra` adds.
    async fn report(&self, extra: PassReport) -> Vec<VipStatus> {
        let vip: IpAddr = VIP.parse().unwrap();
        self.failover
            .report(PassReport {
                groups: BTreeMap::from([(vip, self.group.clone())]),
                local: BTreeMap::from([(
                    vip,
                    Local {
                        eligible: true,
                        reason: None,
                        healthy: 2,
                        synced_since: None,
                    },
                )]),
                ..extra
            })
            .await
    }
}

fn holds(director: &Director) -> bool {
    director.failover.holds(&VIP.parse().unwrap())
}

async fn eventually(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_active_director_stops() {
    let port = port();
    let d1 = director("d1", "127.0.0.1", b"a shared secret!", port).await;
    let d2 = director("d2", "127.0.0.2", b"a shared secret!", port).await;
    eventually("d1 active, d2 standby", Duration::from_secs(5), || {
        holds(&d1) && !holds(&d2)
    })
    .await;
    // Stable: several dead intervals later nothing changed.
    tokio::time::sleep(INTERVAL * 10).await;
    assert!(holds(&d1) && !holds(&d2), "roles stay put while heartbeats flow");
    let status = d2.failover.status().await;
    assert_eq!(status[0].active_director.as_deref(), Some("d1"));
    assert_eq!(status[0].peers_alive, ["d1"]);

    d1.failover.stop();
    let took = eventually("d2 takes over", Duration::from_secs(5), || holds(&d2)).await;
    // Dead after 3 intervals, probed (nobody answers) after half of that; the decision is
    // checked every quarter interval.
    assert!(took < Duration::from_secs(2), "took over after {took:?}");
    let status = d2
        .report(PassReport {
            announced: vec![(VIP.parse().unwrap(), Now::current())],
            held: [VIP.parse().unwrap()].into(),
            ..PassReport::default()
        })
        .await;
    let record = status[0].last_failover.clone().expect("a record");
    assert_eq!(
        (record.from.as_deref(), record.to.as_str(), record.reason.as_str()),
        (Some("d1"), "d2", "PeerDead")
    );
    assert!(record.announced_at.is_some());
    assert!(
        record.detection >= INTERVAL * 3 && record.detection <= record.duration,
        "{record:?}"
    );
    let encoded = d2.metrics.encode();
    assert!(
        encoded.contains("lvs_agent_failover_elections_total{vip=\"10.0.0.100\",outcome=\"take_over\"} 1"),
        "{encoded}"
    );

    // d1 returns (a new incarnation): without preemption it stays standby.
    let d1 = director("d1", "127.0.0.1", b"a shared secret!", port).await;
    tokio::time::sleep(INTERVAL * 20).await;
    assert!(!holds(&d1) && holds(&d2), "no preemption: the VIP stays on d2");

    // A VIP removed from the config and added again starts afresh: no record of the old takeover.
    d2.failover.report(PassReport::default()).await;
    let status = d2.report(PassReport::default()).await;
    assert_eq!((status[0].role, &status[0].last_failover), (Role::Standby, &None));
    d1.failover.stop();
    d2.failover.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_with_another_key_is_not_heard() {
    let port = port() + 1;
    let d1 = director("d1", "127.0.0.1", b"a shared secret!", port).await;
    eventually("d1 active alone", Duration::from_secs(5), || holds(&d1)).await;
    let d2 = director("d2", "127.0.0.2", b"another secret!!", port).await;
    eventually(
        "d1 reports a key mismatch with d2",
        Duration::from_secs(5),
        || {
            d1.metrics
                .encode()
                .contains("lvs_agent_heartbeats_rejected_total{reason=\"key_mismatch\"}")
        },
    )
    .await;
    let status = d1.failover.status().await;
    assert!(status[0].peers_alive.is_empty(), "d2 is not a live peer");
    assert_eq!(
        status[0].key_mismatch,
        [("d2".to_owned(), HeartbeatKey::new(b"another secret!!").id())],
        "but a peer under another key, not silence"
    );
    d1.failover.stop();
    d2.failover.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_brain_ends_with_the_higher_priority_director() {
    let port = port() + 2;
    // Different keys: neither hears the other, as when heartbeats are dropped.
    let d1 = director("d1", "127.0.0.1", b"a shared secret!", port).await;
    let d2 = director("d2", "127.0.0.2", b"another secret!!", port).await;
    eventually("both take the VIP", Duration::from_secs(5), || {
        holds(&d1) && holds(&d2)
    })
    .await;
    *d1.claimants.lock().unwrap() = vec!["02:00:00:00:00:02".into()];
    *d2.claimants.lock().unwrap() = vec!["02:00:00:00:00:01".into()];
    eventually("d2 steps down", Duration::from_secs(5), || !holds(&d2)).await;
    assert!(holds(&d1), "d1 has the higher priority and keeps the VIP");
    let status = d2.failover.status().await;
    assert_eq!(status[0].duplicate_owners, ["02:00:00:00:00:01"]);
    assert!(
        status[0].message.as_deref().unwrap().contains("answers for"),
        "{status:?}"
    );
    // d1's own probe (once a second) finds d2's MAC: it announces the VIP again.
    eventually("d1 announces the VIP again", Duration::from_secs(3), || {
        d1.failover.roles().reannounce == [VIP.parse::<IpAddr>().unwrap()].into()
    })
    .await;
    tokio::time::sleep(INTERVAL * 20).await;
    assert!(!holds(&d2), "d2 holds back while d1 answers");
    d1.failover.stop();
    d2.failover.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_whose_uplink_fails_hands_over_once_it_removed_the_vip() {
    let port = port() + 3;
    let slow = Group {
        interval: Duration::from_millis(200),
        ..group()
    };
    let d1 = director_with("d1", "127.0.0.1", b"a shared secret!", port, slow.clone()).await;
    let d2 = director_with("d2", "127.0.0.2", b"a shared secret!", port, slow).await;
    eventually("d1 active, d2 standby", Duration::from_secs(5), || {
        holds(&d1) && !holds(&d2)
    })
    .await;
    *d1.uplink_down.lock().unwrap() = true;
    // The uplink is checked every second.
    eventually("d1 steps down", Duration::from_secs(5), || !holds(&d1)).await;
    let status = d1.failover.status().await;
    // "eth0 is down; d2 can serve" when stepping down, "eth0 is down" once standby.
    let message = status[0].message.clone().unwrap_or_default();
    assert!(message.starts_with("eth0 is down"), "{message}");
    assert!(!status[0].eligible);
    // Until d1 says the VIP is gone (or 600 ms pass), d2 still hears it as active.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(!holds(&d2), "d2 waits while d1 may still hold the address");
    d1.report(PassReport {
        released: vec![VIP.parse().unwrap()],
        ..PassReport::default()
    })
    .await;
    let took = eventually("d2 takes over", Duration::from_secs(5), || holds(&d2)).await;
    assert!(
        took < Duration::from_millis(500),
        "took over {took:?} after the release"
    );
    assert_eq!(
        d2.failover.status().await[0]
            .last_failover
            .as_ref()
            .unwrap()
            .reason
            .as_str(),
        "PeerStandby"
    );
    d1.failover.stop();
    d2.failover.stop();
}
