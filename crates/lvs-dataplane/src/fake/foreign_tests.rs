//! The executor next to other programs' IPVS services (kube-proxy, keepalived): ownership by
//! exact key, never by address; creates claimed before the kernel is asked; agents that stop
//! halfway, on the fake kernel.

use std::collections::{BTreeMap, BTreeSet};

use futures::FutureExt;

use crate::dataplane::{ApplyReport, Dataplane, DataplaneError, Object};
use crate::fake::FakeDataplane;
use crate::model::*;
use crate::plan::plan;

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().unwrap()
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Address {
        address: ip("10.0.0.1"),
        port,
        protocol: Protocol::Tcp,
    }
}

fn service(port: u16, scheduler: &str, destination: &str) -> ServiceState {
    let destination = Destination {
        address: ip(destination),
        port: 80,
        weight: 1,
        forwarding: Forwarding::DirectRouting,
        upper_threshold: 0,
        lower_threshold: 0,
    };
    ServiceState {
        service: Service {
            key: key(port),
            scheduler: scheduler.into(),
            flags: ServiceFlags::default(),
            persistence: None,
        },
        destinations: BTreeMap::from([(destination.key(), destination)]),
    }
}

/// What kube-proxy's IPVS mode makes for a Service on 10.0.0.1:80: a `wlc` service with a NAT
/// destination, and the address on its own dummy device.
fn kube_proxy() -> (ServiceState, VipAddress) {
    let mut foreign = service(80, "wlc", "10.244.1.5");
    for destination in foreign.destinations.values_mut() {
        destination.forwarding = Forwarding::Nat;
        destination.port = 8080;
    }
    foreign.destinations = foreign
        .destinations
        .into_values()
        .map(|destination| (destination.key(), destination))
        .collect();
    let address = VipAddress {
        address: ip("10.0.0.1"),
        device: "kube-ipvs0".into(),
    };
    (foreign, address)
}

/// Our node: services 10.0.0.1:80 and :81 (rr, one real server each), the VIP on lvs0.
fn desired() -> NodeState {
    NodeState {
        links: BTreeSet::from([Link::Dummy { name: "lvs0".into() }]),
        services: BTreeMap::from([
            (key(80), service(80, "rr", "10.0.1.1")),
            (key(81), service(81, "rr", "10.0.1.1")),
        ]),
        addresses: BTreeSet::from([VipAddress {
            address: ip("10.0.0.1"),
            device: "lvs0".into(),
        }]),
        ..NodeState::default()
    }
}

async fn pass(dataplane: &FakeDataplane, desired: &NodeState) -> ApplyReport {
    let observed = dataplane.observe().await.unwrap();
    dataplane.apply(plan(desired, &observed)).await
}

/// The services whose creates were refused as someone else's (the exact error is checked in
/// `tests::a_foreign_service_with_our_key_is_not_adopted`).
fn foreign_refusals(report: &ApplyReport) -> Vec<ServiceKey> {
    report
        .failures
        .iter()
        .filter_map(|failure| match &failure.error {
            DataplaneError::ForeignService { service }
            | DataplaneError::NotOurs {
                object: Object::Service(service),
            } => Some(*service),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_foreign_service_on_our_vip_survives_every_resync_and_the_prune() {
    let dataplane = FakeDataplane::new_fake();
    let (foreign, foreign_address) = kube_proxy();
    dataplane.kernel().with_state(|state| {
        state.links.insert(Link::Dummy {
            name: "kube-ipvs0".into(),
        });
        state.addresses.insert(foreign_address.clone());
        state.services.insert(key(80), foreign.clone());
    });
    for resync in 1..=3 {
        let report = pass(&dataplane, &desired()).await;
        assert_eq!(
            foreign_refusals(&report),
            [key(80)],
            "resync {resync}: refused with its reason: {:?}",
            report.failures
        );
        dataplane.kernel().with_state(|state| {
            assert_eq!(state.services[&key(80)], foreign, "resync {resync}: untouched");
            assert_eq!(
                state.services[&key(81)],
                service(81, "rr", "10.0.1.1"),
                "resync {resync}: ours programmed beside it"
            );
            assert!(state.addresses.contains(&foreign_address));
            assert!(
                state.addresses.iter().any(|vip| vip.device == "lvs0"),
                "our VIP, for :81"
            );
        });
        assert!(
            !dataplane.observe().await.unwrap().services.contains_key(&key(80)),
            "resync {resync}: its address is on lvs0, but the service is not ours"
        );
        assert!(!dataplane.registry().services.contains(&key(80)));
    }
    // Everything of ours removed: the foreign service and its address stay.
    let report = pass(&dataplane, &NodeState::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.services.values().cloned().collect::<Vec<_>>(), [foreign]);
        assert_eq!(
            state.addresses.iter().cloned().collect::<Vec<_>>(),
            [foreign_address]
        );
    });
}

#[tokio::test]
async fn a_create_refused_with_eexist_is_never_recorded_as_ours() {
    let dataplane = FakeDataplane::new_fake();
    let (foreign, _) = kube_proxy();
    // Made after the executor looked, just before its create: the kernel answers EEXIST.
    dataplane
        .kernel()
        .with_state(|state| state.created_first = Some(foreign.clone()));
    let report = pass(&dataplane, &desired()).await;
    assert_eq!(foreign_refusals(&report), [key(80)], "{:?}", report.failures);
    let registry = dataplane.registry();
    assert!(!registry.services.contains(&key(80)), "{registry:?}");
    assert!(registry.services.contains(&key(81)));
    assert!(registry.intents.is_empty(), "intents settled: {registry:?}");
    assert_eq!(
        dataplane
            .kernel()
            .with_state(|state| state.services[&key(80)].clone()),
        foreign
    );
}

#[tokio::test]
async fn an_agent_stopped_between_intent_and_answer_does_not_adopt_a_foreign_service() {
    let dataplane = FakeDataplane::new_fake();
    let (foreign, _) = kube_proxy();
    dataplane.kernel().with_state(|state| {
        state.created_first = Some(foreign.clone());
        state.create_unanswered = Some(key(80));
    });
    let observed = dataplane.observe().await.unwrap();
    let stopped = dataplane.apply(plan(&desired(), &observed)).now_or_never();
    assert!(
        stopped.is_none(),
        "the agent stopped while the create was under way"
    );
    // The record as it was persisted at that moment, the kernel as it is.
    let restarted = dataplane.restarted();
    restarted
        .kernel()
        .with_state(|state| state.create_unanswered = None);
    let observed = restarted.observe().await.unwrap();
    assert!(!observed.services.contains_key(&key(80)), "not adopted");
    assert!(restarted.registry().intents.is_empty());
    let report = pass(&restarted, &desired()).await;
    assert_eq!(foreign_refusals(&report), [key(80)]);
    assert_eq!(
        restarted
            .kernel()
            .with_state(|state| state.services[&key(80)].clone()),
        foreign,
        "untouched"
    );
}

#[tokio::test]
async fn an_agent_stopped_after_its_own_create_keeps_the_service() {
    let dataplane = FakeDataplane::new_fake();
    dataplane
        .kernel()
        .with_state(|state| state.create_unanswered = Some(key(80)));
    let observed = dataplane.observe().await.unwrap();
    assert!(
        dataplane
            .apply(plan(&desired(), &observed))
            .now_or_never()
            .is_none()
    );
    let restarted = dataplane.restarted();
    restarted
        .kernel()
        .with_state(|state| state.create_unanswered = None);
    assert!(
        restarted.observe().await.unwrap().services.contains_key(&key(80)),
        "created exactly as intended: ours"
    );
    let report = pass(&restarted, &desired()).await;
    assert!(report.is_success(), "{:?}", report.failures);
}

#[tokio::test]
async fn after_a_corrupt_record_a_service_as_asked_on_lvs0_is_taken_back_and_a_foreign_one_is_not() {
    let folder = std::env::temp_dir().join(format!("lvs-foreign-recovered-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("owned.json");
    std::fs::write(&path, b"{\"services\": [").unwrap();
    let kernel = crate::fake::FakeKernel::default();
    let (foreign, _) = kube_proxy();
    kernel.with_state(|state| {
        // Ours as asked (81) and someone else's (80), both on our VIP.
        state.links.insert(Link::Dummy { name: "lvs0".into() });
        state.addresses.insert(VipAddress {
            address: ip("10.0.0.1"),
            device: "lvs0".into(),
        });
        state.services.insert(key(81), service(81, "rr", "10.0.1.1"));
        state.services.insert(key(80), foreign.clone());
    });
    let dataplane =
        crate::executor::Executor::new(kernel, crate::ownership::RegistryStore::File(path)).unwrap();
    let report = pass(&dataplane, &desired()).await;
    std::fs::remove_dir_all(folder).unwrap();
    assert_eq!(foreign_refusals(&report), [key(80)]);
    assert_eq!(
        report.failures.len(),
        2,
        "and its destination: {:?}",
        report.failures
    );
    assert!(dataplane.registry().services.contains(&key(81)), "taken back");
    assert_eq!(
        dataplane
            .kernel()
            .with_state(|state| state.services[&key(80)].clone()),
        foreign
    );
    assert_eq!(
        dataplane
            .kernel()
            .with_state(|state| state.services[&key(81)].clone()),
        service(81, "rr", "10.0.1.1"),
        "set again as it was"
    );
}

#[tokio::test]
async fn a_foreign_address_outside_lvs0_is_refused_unsent_and_never_removed() {
    let dataplane = FakeDataplane::new_fake();
    let on_lo = VipAddress {
        address: ip("10.0.0.1"),
        device: "lo".into(),
    };
    dataplane
        .kernel()
        .with_state(|state| state.addresses.insert(on_lo.clone()));
    let real_server = NodeState {
        addresses: BTreeSet::from([on_lo.clone()]),
        ..NodeState::default()
    };
    let writes = dataplane.write_count();
    let report = pass(&dataplane, &real_server).await;
    assert_eq!(
        report
            .failures
            .iter()
            .map(|failure| &failure.error)
            .collect::<Vec<_>>(),
        [&DataplaneError::NotOurs {
            object: Object::Address(on_lo.clone())
        }]
    );
    assert_eq!(
        dataplane.write_count(),
        writes,
        "refused without asking the kernel"
    );
    let registry = dataplane.registry();
    assert!(
        !registry.addresses.contains(&on_lo) && registry.intents.is_empty(),
        "{registry:?}"
    );
    assert!(pass(&dataplane, &NodeState::default()).await.is_success());
    assert!(
        dataplane
            .kernel()
            .with_state(|state| state.addresses.contains(&on_lo))
    );
}
