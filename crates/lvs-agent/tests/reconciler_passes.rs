//! The kinds of reconcile pass on the fake kernel: a health pass reads and changes only IPVS
//! services (a VIP deleted by hand stays deleted until the next full pass), a resync pass repairs
//! everything and counts the drift, a change pass does not count drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lvs_agent::health::HealthMonitor;
use lvs_agent::metrics::Metrics;
use lvs_agent::node_config::Intent;
use lvs_agent::reconciler::{FailedObject, Pass, Reconciler};
use lvs_dataplane::FakeDataplane;
use serde_json::json;

fn intent() -> Intent {
    let config = json!({
        "nodeName": "director-1",
        "directorServices": [{
            "virtualServer": "default/web", "address": "10.100.0.100", "port": 80, "protocol": "TCP",
            "family": "IPv4", "scheduler": "rr", "onePacket": false,
            "forwarding": { "method": "DirectRouting" }, "vipPlacement": "Dummy",
            "healthCheck": { "type": "None" }, "onFailure": "Quiescent", "directors": ["director-1"],
            "destinations": [{ "realServer": "default/rs-1", "address": "10.100.0.11", "port": 80, "weight": 1,
                               "thresholds": { "upper": 0, "lower": 0 }, "state": "Active", "awaitingNode": false }],
        }],
    });
    Intent {
        config: serde_json::from_value(config).unwrap(),
        node_address: None,
        problems: Vec::new(),
        complete: true,
    }
}

#[tokio::test]
async fn a_health_pass_touches_only_ipvs_and_a_resync_repairs_the_rest() {
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new("director-1");
    let health = HealthMonitor::new(1, lvs_agent::metrics_observer(&metrics));
    let mut reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-1");
    let intent = intent();
    let first = reconciler.reconcile(&intent, Pass::Change).await;
    assert!(first.synced && first.operations > 0 && !first.drift);

    // By hand: the VIP is deleted and the service flushed.
    dataplane.kernel().with_state(|state| {
        state.addresses.clear();
        state.services.clear();
    });
    let health_pass = reconciler.reconcile(&intent, Pass::Health).await;
    assert!(health_pass.synced);
    assert!(!health_pass.drift, "a health pass never counts drift");
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.services.len(), 1, "the service is back");
        assert!(state.addresses.is_empty(), "the VIP is left to the full pass");
    });

    let resync = reconciler.reconcile(&intent, Pass::Resync).await;
    assert!(resync.drift && resync.synced);
    assert_eq!(reconciler.drift_repairs(), 1);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let status = lvs_agent::status::node_status(
        &intent.config,
        None,
        &resync,
        reconciler.health(),
        reconciler.drift_repairs(),
        None,
        &now,
    );
    assert_eq!(status.drift_repairs, 1);
    let synced = status
        .conditions
        .iter()
        .find(|condition| condition.type_ == "Synced")
        .unwrap();
    assert_eq!(synced.status, "True");
    assert!(synced.message.contains("undone 1 time(s)"), "{}", synced.message);
    dataplane
        .kernel()
        .with_state(|state| assert_eq!(state.addresses.len(), 1, "the VIP is back"));

    let quiet = reconciler.reconcile(&intent, Pass::Resync).await;
    assert_eq!((quiet.operations, quiet.writes, quiet.drift), (0, 0, false));

    // A health verdict whose consequences reach beyond IPVS (here: another VIP) gets a full pass.
    let mut wider = intent.clone();
    let mut second = wider.config.director_services[0].clone();
    second.virtual_server = "default/api".to_owned();
    second.address = Some("10.100.0.101".parse().unwrap());
    wider.config.director_services.push(second);
    let full = reconciler.reconcile(&wider, Pass::Health).await;
    assert!(full.synced);
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.services.len(), 2);
        assert_eq!(state.addresses.len(), 2, "the new VIP came with its service");
    });
}

#[tokio::test]
async fn a_partial_pass_keeps_reporting_failures_it_did_not_look_at() {
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new("director-1");
    let health = HealthMonitor::new(1, lvs_agent::metrics_observer(&metrics));
    let mut reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-1");
    let mut intent = intent();
    let mut twos = intent.config.director_services[0].clone();
    twos.virtual_server = "default/twos".to_owned();
    twos.address = Some("10.100.0.106".parse().unwrap());
    twos.scheduler = serde_json::from_value(json!("twos")).unwrap();
    intent.config.director_services.push(twos);
    let change = reconciler.reconcile(&intent, Pass::Change).await;
    assert!(!change.synced);
    assert!(
        change
            .failures_of(&FailedObject::VirtualServer("default/twos".into()))
            .next()
            .is_some()
    );
    let retry = reconciler.next_retry().expect("a retry is due");

    // A failover pass reads and changes only VIPs: the service it did not retry still fails.
    let failover = reconciler.reconcile(&intent, Pass::Failover).await;
    assert!(!failover.synced, "still not synced: {:?}", failover.failures);
    assert!(
        failover
            .failures_of(&FailedObject::VirtualServer("default/twos".into()))
            .next()
            .is_some(),
        "{:?}",
        failover.failures
    );
    assert!(
        reconciler.next_retry().is_some_and(|next| next >= retry),
        "the retry stays scheduled"
    );
}

#[tokio::test]
async fn a_foreign_ipvs_service_on_our_key_is_reported_with_its_own_reason() {
    use lvs_dataplane::model::{Protocol, Service, ServiceFlags, ServiceKey, ServiceState};
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let key = ServiceKey::Address {
        address: "10.100.0.100".parse().unwrap(),
        port: 80,
        protocol: Protocol::Tcp,
    };
    let foreign = ServiceState {
        service: Service {
            key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        },
        destinations: Default::default(),
    };
    dataplane
        .kernel()
        .with_state(|state| state.services.insert(key, foreign.clone()));
    let metrics = Metrics::new("director-1");
    let health = HealthMonitor::new(1, lvs_agent::metrics_observer(&metrics));
    let mut reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-1");
    let intent = intent();
    let outcome = reconciler.reconcile(&intent, Pass::Resync).await;
    assert!(!outcome.synced);
    let failure = outcome
        .first_failure_of(&FailedObject::VirtualServer("default/web".into()))
        .expect("web failed");
    assert_eq!(failure.reason, Some("ForeignService"));
    assert_eq!(
        failure.message,
        "an IPVS service TCP 10.100.0.100:80 exists that lvs-operator did not create; left alone"
    );
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let status =
        lvs_agent::status::node_status(&intent.config, None, &outcome, reconciler.health(), 0, None, &now);
    assert_eq!(status.services[0].reason.as_deref(), Some("ForeignService"));
    assert!(!status.services[0].programmed);
    dataplane
        .kernel()
        .with_state(|state| assert_eq!(state.services[&key], foreign, "left alone"));
}
