//! Failover through the reconciler on the fake kernel: a standby director programs the IPVS
//! service and the backup sync daemon but not the VIP; when it wins the election a failover pass
//! adds the VIP, announces it and starts the master daemon, without reading IPVS; the status
//! says Active with a takeover record. A config whose VIP already had this node as its only
//! director keeps the VIP when a second director appears.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lvs_agent::ha::wire::{HeartbeatKey, HeartbeatKeys};
use lvs_agent::ha::{Failover, Options, Prober, UplinkCheck};
use lvs_agent::health::HealthMonitor;
use lvs_agent::metrics::Metrics;
use lvs_agent::node_config::Intent;
use lvs_agent::reconciler::{Pass, Reconciler};
use lvs_api::{FailoverRole, TakeoverReason};
use lvs_dataplane::FakeDataplane;
use lvs_dataplane::model::SyncRole;
use serde_json::{Value, json};

const VIP: &str = "10.100.0.100";

fn intent(failover: Option<Value>) -> Intent {
    let mut service = json!({
        "virtualServer": "default/web", "address": VIP, "port": 80, "protocol": "TCP",
        "family": "IPv4", "scheduler": "rr", "onePacket": false, "interface": "eth0",
        "forwarding": { "method": "DirectRouting" }, "vipPlacement": "Dummy",
        "healthCheck": { "type": "None" }, "onFailure": "Quiescent", "directors": ["director-1", "director-2"],
        "destinations": [{ "realServer": "default/rs-1", "address": "10.100.0.11", "port": 80, "weight": 1,
                           "thresholds": { "upper": 0, "lower": 0 }, "state": "Active", "awaitingNode": false }],
    });
    if let Some(failover) = failover {
        service["highAvailability"] = failover;
    }
    Intent {
        config: serde_json::from_value(json!({ "nodeName": "director-2", "directorServices": [service] }))
            .unwrap(),
        node_address: None,
        problems: Vec::new(),
        complete: true,
    }
}

fn two_directors() -> Value {
    json!({
        "peers": [{ "node": "director-1", "address": "127.0.0.1" }, { "node": "director-2", "address": "127.0.0.2" }],
        "heartbeatIntervalMillis": 50, "deadAfter": 3, "preempt": false, "preemptDelaySeconds": 0,
        "connectionSync": { "syncId": 7, "interface": "eth0", "failbackSyncSeconds": 3 },
    })
}

async fn reconciler(port: u16) -> (Arc<FakeDataplane>, Reconciler<FakeDataplane>, Failover) {
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new("director-2");
    let prober: Prober = Arc::new(|_, _| Box::pin(async { Ok(Vec::new()) }));
    let uplink: UplinkCheck = Arc::new(|_, _| Box::pin(async { None }));
    let failover = Failover::start(
        Options::new(
            "director-2",
            port,
            "127.0.0.2".parse().unwrap(),
            Some(HeartbeatKeys::single(HeartbeatKey::new(b"a shared secret!"))),
            prober,
            uplink,
        ),
        Arc::clone(&metrics),
    )
    .await;
    let health = HealthMonitor::new(1, lvs_agent::metrics_observer(&metrics));
    let reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-2")
        .with_failover(failover.clone());
    (dataplane, reconciler, failover)
}

fn vip() -> IpAddr {
    VIP.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_holds_no_vip_until_it_wins_then_a_failover_pass_takes_it() {
    let port = 45_000 + u16::try_from(std::process::id() % 10_000).unwrap();
    let (dataplane, mut reconciler, failover) = reconciler(port).await;
    let mut roles = failover.subscribe();
    let intent = intent(Some(two_directors()));
    let first = reconciler.reconcile(&intent, Pass::Change).await;
    assert!(first.synced, "{:?}", first.failures);
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.services.len(), 1, "the standby programs the service");
        assert!(
            state.addresses.iter().all(|address| address.address != vip()),
            "but does not hold the VIP"
        );
        assert!(state.announcements.is_empty());
        assert_eq!(
            state.sync_daemons.keys().copied().collect::<Vec<_>>(),
            [SyncRole::Backup],
            "a standby receives connections"
        );
    });
    assert_eq!(first.failover[0].role, FailoverRole::Standby);

    // director-1 is never heard: after one dead interval (150 ms) director-2 takes the VIP.
    tokio::time::timeout(Duration::from_secs(5), roles.changed())
        .await
        .expect("a role change")
        .unwrap();
    assert!(failover.holds(&vip()));
    let dumps = dataplane.kernel().with_state(|state| state.ipvs_dumps);
    let takeover = reconciler.reconcile(&intent, Pass::Failover).await;
    assert!(takeover.synced, "{:?}", takeover.failures);
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.ipvs_dumps, dumps, "a failover pass reads no IPVS table");
        assert!(state.addresses.iter().any(|address| address.address == vip()));
        assert_eq!(state.announcements, [(vip(), Some("eth0".to_owned()))]);
        assert_eq!(
            state.sync_daemons.keys().copied().collect::<Vec<_>>(),
            [SyncRole::Master, SyncRole::Backup]
        );
    });
    assert_eq!(takeover.failover[0].role, FailoverRole::Active);
    let record = takeover.failover[0]
        .last_failover
        .clone()
        .expect("a takeover record");
    assert_eq!(
        (record.to.as_str(), record.reason),
        ("director-2", TakeoverReason::Startup)
    );
    assert!(record.garp_sent_at.is_some(), "announced");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let status = lvs_agent::status::node_status(
        &intent.config,
        None,
        &takeover,
        reconciler.health(),
        0,
        None,
        &now,
    );
    assert_eq!(status.services[0].role, Some(FailoverRole::Active));
    let sync = status.connection_sync.expect("sync status");
    assert!(sync.master && sync.backup && sync.sync_id == 7);
    let duplicate = status
        .conditions
        .iter()
        .find(|condition| condition.type_ == "DuplicateVIP")
        .expect("a DuplicateVIP condition");
    assert_eq!(duplicate.status, "False");
    failover.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_that_gets_a_second_director_stays_where_it_is() {
    let port = 46_000 + u16::try_from(std::process::id() % 10_000).unwrap();
    let (dataplane, mut reconciler, failover) = reconciler(port).await;
    let alone = reconciler.reconcile(&intent(None), Pass::Change).await;
    assert!(alone.synced);
    let announced = dataplane.kernel().with_state(|state| state.announcements.len());
    let shared = reconciler
        .reconcile(&intent(Some(two_directors())), Pass::Change)
        .await;
    assert!(shared.synced, "{:?}", shared.failures);
    assert_eq!(
        shared.failover[0].role,
        FailoverRole::Active,
        "adopted, not dropped"
    );
    dataplane.kernel().with_state(|state| {
        assert!(state.addresses.iter().any(|address| address.address == vip()));
        assert_eq!(state.announcements.len(), announced, "nothing to announce again");
    });
    failover.stop();
}

/// director-1 (the higher priority) as a bare failover service on 127.0.0.1, eligible.
async fn preferred_peer(port: u16) -> Failover {
    let prober: Prober = Arc::new(|_, _| Box::pin(async { Ok(Vec::new()) }));
    let uplink: UplinkCheck = Arc::new(|_, _| Box::pin(async { None }));
    let peer = Failover::start(
        Options::new(
            "director-1",
            port,
            "127.0.0.1".parse().unwrap(),
            Some(HeartbeatKeys::single(HeartbeatKey::new(b"a shared secret!"))),
            prober,
            uplink,
        ),
        Metrics::new("director-1"),
    )
    .await;
    let config = intent(Some(preempting())).config;
    peer.report(lvs_agent::ha::PassReport {
        groups: lvs_agent::ha::groups(&config, &std::collections::BTreeMap::new()),
        local: std::collections::BTreeMap::from([(
            vip(),
            lvs_agent::ha::election::Local {
                eligible: true,
                reason: None,
                healthy: 1,
                synced_since: None,
            },
        )]),
        ..lvs_agent::ha::PassReport::default()
    })
    .await;
    peer
}

fn preempting() -> Value {
    json!({
        "peers": [{ "node": "director-1", "address": "127.0.0.1" }, { "node": "director-2", "address": "127.0.0.2" }],
        "heartbeatIntervalMillis": 50, "deadAfter": 3, "preempt": true, "preemptDelaySeconds": 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_handing_over_removes_the_vip_first_even_from_an_incomplete_config() {
    let port = 47_000 + u16::try_from(std::process::id() % 10_000).unwrap();
    let (dataplane, mut reconciler, failover) = reconciler(port).await;
    let mut roles = failover.subscribe();
    let mut intent = intent(Some(preempting()));
    reconciler.reconcile(&intent, Pass::Change).await;
    tokio::time::timeout(Duration::from_secs(5), roles.changed())
        .await
        .expect("director-2 takes the VIP alone")
        .unwrap();
    assert!(reconciler.reconcile(&intent, Pass::Failover).await.synced);
    let holds_vip = || {
        dataplane
            .kernel()
            .with_state(|state| state.addresses.iter().any(|address| address.address == vip()))
    };
    assert!(holds_vip());

    // director-1 returns and asks for the VIP; director-2 steps down.
    let peer = preferred_peer(port).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while failover.holds(&vip()) {
            roles.changed().await.unwrap();
        }
    })
    .await
    .expect("director-2 steps down");
    // Until director-2 removed the VIP, director-1 does not take it.
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!peer.holds(&vip()), "director-1 waits for the VIP to be gone");
    // The config is incomplete right now (a shard missing): removals are held back, but not
    // this one.
    intent.complete = false;
    let handover = reconciler.reconcile(&intent, Pass::Failover).await;
    assert!(handover.synced, "{:?}", handover.failures);
    assert!(!holds_vip(), "the VIP is gone from director-2");
    tokio::time::timeout(Duration::from_secs(5), async {
        while !peer.holds(&vip()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("director-1 takes the VIP once director-2 released it");
    peer.stop();
    failover.stop();
}
