//! The executor's ownership rules and idempotence, on the fake kernel.

use std::collections::{BTreeMap, BTreeSet};

use crate::dataplane::{Dataplane, DataplaneError, Object, Operation};
use crate::fake::FakeDataplane;
use crate::kernel::Kernel;
use crate::model::*;
use crate::plan::plan;

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().unwrap()
}

fn desired(weight: u32) -> NodeState {
    let key = ServiceKey::Address {
        address: ip("10.0.0.1"),
        port: 80,
        protocol: Protocol::Tcp,
    };
    let destination = Destination {
        address: ip("10.0.1.1"),
        port: 80,
        weight,
        forwarding: Forwarding::DirectRouting,
        upper_threshold: 0,
        lower_threshold: 0,
    };
    let service = Service {
        key,
        scheduler: "rr".into(),
        flags: ServiceFlags::default(),
        persistence: None,
    };
    NodeState {
        links: BTreeSet::from([Link::Dummy { name: "lvs0".into() }]),
        sysctls: BTreeMap::from([("net/ipv4/vs/conntrack".to_owned(), "1".to_owned())]),
        nftables: Some(NftRules {
            redirects: vec![PortMatch {
                address: ip("10.0.0.1"),
                protocol: Protocol::Tcp,
                port: 80,
            }],
            ..Default::default()
        }),
        services: BTreeMap::from([(
            key,
            ServiceState {
                service,
                destinations: BTreeMap::from([(destination.key(), destination)]),
            },
        )]),
        addresses: BTreeSet::from([VipAddress {
            address: ip("10.0.0.1"),
            device: "lvs0".into(),
        }]),
        announce: BTreeMap::from([(ip("10.0.0.1"), Some("eth0".to_owned()))]),
        sync_daemons: BTreeMap::new(),
    }
}

async fn converge(dataplane: &FakeDataplane, desired: &NodeState) -> usize {
    let observed = dataplane.observe().await.unwrap();
    let ops = plan(desired, &observed);
    let count = ops.len();
    let report = dataplane.apply(ops).await;
    assert!(report.is_success(), "{:?}", report.failures);
    count
}

fn observed_equals_desired(observed: &NodeState, desired: &NodeState) -> bool {
    let mut desired = desired.clone();
    desired.announce.clear();
    observed == &desired
}

#[tokio::test]
async fn apply_then_observe_equals_desired_and_a_second_apply_writes_nothing() {
    let dataplane = FakeDataplane::new_fake();
    let target = desired(1);
    assert!(converge(&dataplane, &target).await > 0);
    assert!(observed_equals_desired(
        &dataplane.observe().await.unwrap(),
        &target
    ));
    assert_eq!(
        dataplane.kernel().with_state(|state| state.announcements.len()),
        1
    );
    let writes = dataplane.write_count();
    assert_eq!(converge(&dataplane, &target).await, 0);
    assert_eq!(dataplane.write_count(), writes, "steady state makes zero writes");
    assert_eq!(converge(&dataplane, &desired(7)).await, 1);
    assert_eq!(
        dataplane.write_count(),
        writes + 1,
        "one weight change is one write"
    );
}

#[tokio::test]
async fn foreign_objects_survive_apply_and_prune() {
    let dataplane = FakeDataplane::new_fake();
    let foreign_key = ServiceKey::Address {
        address: ip("192.0.2.50"),
        port: 443,
        protocol: Protocol::Tcp,
    };
    let foreign = ServiceState {
        service: Service {
            key: foreign_key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        },
        destinations: BTreeMap::new(),
    };
    let foreign_address = VipAddress {
        address: ip("192.0.2.50"),
        device: "lo".into(),
    };
    dataplane.kernel().with_state(|state| {
        state.services.insert(foreign_key, foreign.clone());
        state.addresses.insert(foreign_address.clone());
        state.foreign_tables.insert("inet filter".into());
        state
            .sysctls
            .insert("net/ipv4/conf/all/arp_ignore".into(), "0".into());
    });
    converge(&dataplane, &desired(1)).await;
    assert!(
        !dataplane
            .observe()
            .await
            .unwrap()
            .services
            .contains_key(&foreign_key),
        "not observed as ours"
    );
    converge(&dataplane, &NodeState::default()).await;
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.services.get(&foreign_key), Some(&foreign));
        assert!(state.addresses.contains(&foreign_address));
        assert!(state.foreign_tables.contains("inet filter"));
        assert_eq!(state.services.len(), 1, "our service is gone");
        assert_eq!(state.nftables, None);
        assert_eq!(
            state.sysctls["net/ipv4/vs/conntrack"], "0",
            "restored to its original value"
        );
    });
}

#[tokio::test]
async fn a_foreign_service_with_our_key_is_not_adopted() {
    let dataplane = FakeDataplane::new_fake();
    let target = desired(1);
    let key = *target.services.keys().next().unwrap();
    let foreign = ServiceState {
        service: Service {
            key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        },
        destinations: BTreeMap::new(),
    };
    dataplane.kernel().with_state(|state| {
        state.services.insert(key, foreign.clone());
    });
    let ops = plan(&target, &dataplane.observe().await.unwrap());
    let report = dataplane.apply(ops).await;
    assert_eq!(
        report.failures.len(),
        4,
        "the service, its destination, and the VIP (address and announcement) that would lead \
         into a service we do not control: {:?}",
        report.failures
    );
    assert_eq!(
        report.failures[0].error.to_string(),
        "an IPVS service TCP 10.0.0.1:80 exists that lvs-operator did not create; left alone"
    );
    assert_eq!(
        report.failures[0].error,
        DataplaneError::ForeignService { service: key }
    );
    assert!(dataplane.kernel().with_state(|state| state.addresses.is_empty()));
    assert!(
        dataplane
            .kernel()
            .with_state(|state| state.services[&key] == foreign),
        "left alone"
    );
    assert!(!dataplane.registry().services.contains(&key));
}

#[tokio::test]
async fn a_restarted_agent_adopts_its_state_without_writing() {
    let dataplane = FakeDataplane::new_fake();
    let target = desired(1);
    converge(&dataplane, &target).await;
    let restarted = dataplane.restarted();
    let writes = restarted.write_count();
    assert_eq!(converge(&restarted, &target).await, 0);
    assert_eq!(restarted.write_count(), writes);
}

#[tokio::test]
async fn drift_is_repaired() {
    let dataplane = FakeDataplane::new_fake();
    let target = desired(1);
    converge(&dataplane, &target).await;
    dataplane.kernel().with_state(|state| {
        state.services.clear(); // ipvsadm -C
        state.addresses.clear(); // ip addr del
        state.nftables_generation += 1; // nft edited by hand
        state.sysctls.insert("net/ipv4/vs/conntrack".into(), "0".into());
    });
    let repairs = converge(&dataplane, &target).await;
    assert_eq!(repairs, 6, "service, destination, address, announce, nft, sysctl");
    assert!(observed_equals_desired(
        &dataplane.observe().await.unwrap(),
        &target
    ));
}

#[tokio::test]
async fn a_missing_scheduler_fails_its_service_and_skips_its_destinations_only() {
    let dataplane = FakeDataplane::new_fake();
    let mut target = desired(1);
    let mut extra = target.services.values().next().unwrap().clone();
    let key = ServiceKey::Address {
        address: ip("10.0.0.1"),
        port: 81,
        protocol: Protocol::Tcp,
    };
    extra.service.key = key;
    extra.service.scheduler = "twos".into();
    target.services.insert(key, extra);
    let report = dataplane
        .apply(plan(&target, &dataplane.observe().await.unwrap()))
        .await;
    let messages: Vec<String> = report
        .failures
        .iter()
        .map(|failure| failure.error.to_string())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("scheduler twos not available in this kernel"),
        "{messages:?}"
    );
    assert!(messages[1].contains("skipped"), "{messages:?}");
    assert!(
        matches!(
            &report.failures[0].error,
            DataplaneError::SchedulerUnavailable { operation: Operation::Create, object: Object::Service(failed), scheduler }
                if *failed == key && scheduler == "twos"
        ),
        "{:?}",
        report.failures[0]
    );
    assert_eq!(
        report.failures[0].error.errno(),
        Some(2),
        "ENOENT, as the kernel says"
    );
    assert!(
        matches!(
            &report.failures[1].error,
            DataplaneError::Skipped { object: Object::Destination { service, .. }, service: failed }
                if *service == key && *failed == key
        ),
        "{:?}",
        report.failures[1]
    );
    assert_eq!(
        dataplane.observe().await.unwrap().services.len(),
        1,
        "the other service is programmed"
    );
}

#[tokio::test]
async fn a_vip_whose_only_service_failed_is_neither_added_nor_announced() {
    let dataplane = FakeDataplane::new_fake();
    let mut target = desired(1);
    for state in target.services.values_mut() {
        state.service.scheduler = "twos".into();
    }
    let report = dataplane
        .apply(plan(&target, &dataplane.observe().await.unwrap()))
        .await;
    let messages: Vec<String> = report
        .failures
        .iter()
        .map(|failure| failure.error.to_string())
        .collect();
    assert!(
        messages
            .iter()
            .filter(|message| message.contains("not taken"))
            .count()
            == 2,
        "the address and its announcement are refused: {messages:?}"
    );
    assert!(
        report.failures.iter().any(|failure| failure.error
            == DataplaneError::NotTaken {
                address: ip("10.0.0.1")
            }),
        "{:?}",
        report.failures
    );
    dataplane.kernel().with_state(|state| {
        assert!(state.addresses.is_empty(), "{:?}", state.addresses);
        assert!(state.announcements.is_empty(), "{:?}", state.announcements);
    });

    // The same with a service without destinations (alone in its run of IPVS changes).
    let dataplane = FakeDataplane::new_fake();
    let mut lone = desired(1);
    for state in lone.services.values_mut() {
        state.service.scheduler = "twos".into();
        state.destinations.clear();
    }
    let report = dataplane
        .apply(plan(&lone, &dataplane.observe().await.unwrap()))
        .await;
    assert_eq!(
        report
            .failures
            .iter()
            .filter(|failure| failure.error.to_string().contains("not taken"))
            .count(),
        2,
        "{:?}",
        report.failures
    );
    dataplane
        .kernel()
        .with_state(|state| assert!(state.addresses.is_empty(), "{:?}", state.addresses));

    // With a second, working service on the VIP the VIP is taken.
    let mut target = desired(1);
    let mut broken = target.services.values().next().unwrap().clone();
    broken.service.key = ServiceKey::Address {
        address: ip("10.0.0.1"),
        port: 81,
        protocol: Protocol::Tcp,
    };
    broken.service.scheduler = "twos".into();
    target.services.insert(broken.service.key, broken);
    let report = dataplane
        .apply(plan(&target, &dataplane.observe().await.unwrap()))
        .await;
    assert!(
        report
            .failures
            .iter()
            .all(|failure| !failure.error.to_string().contains("not taken")),
        "{:?}",
        report.failures
    );
    dataplane.kernel().with_state(|state| {
        assert_eq!(state.addresses.len(), 1);
        assert_eq!(state.announcements.len(), 1);
    });
}

#[tokio::test]
async fn stats_cover_our_services_only() {
    let dataplane = FakeDataplane::new_fake();
    let foreign_key = ServiceKey::Address {
        address: ip("192.0.2.50"),
        port: 443,
        protocol: Protocol::Tcp,
    };
    dataplane.kernel().with_state(|state| {
        let service = Service {
            key: foreign_key,
            scheduler: "wlc".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        };
        state.services.insert(
            foreign_key,
            ServiceState {
                service,
                destinations: BTreeMap::new(),
            },
        );
    });
    converge(&dataplane, &desired(1)).await;
    let stats = dataplane.stats().await.unwrap();
    let keys: Vec<String> = stats.iter().map(|service| service.key.to_string()).collect();
    assert_eq!(keys, ["TCP 10.0.0.1:80"]);
    assert_eq!(stats[0].destinations.len(), 1);
}

#[tokio::test]
async fn the_fake_kernel_refuses_with_the_errno_operation_and_object_the_kernel_would() {
    let dataplane = FakeDataplane::new_fake();
    let kernel = dataplane.kernel();
    let key = ServiceKey::Address {
        address: ip("10.0.0.9"),
        port: 80,
        protocol: Protocol::Tcp,
    };
    let error = kernel.delete_service(&key).await.unwrap_err();
    assert_eq!(
        error,
        DataplaneError::NotFound {
            operation: Operation::Delete,
            object: Object::Service(key),
            errno: Some(3)
        },
        "ESRCH, as IPVS answers for a missing service"
    );
    assert_eq!(error.errno(), Some(3));
    assert_eq!(error.to_string(), "deleting service TCP 10.0.0.9:80: not found");

    let vip = VipAddress {
        address: ip("10.0.0.9"),
        device: "eth9".into(),
    };
    let error = kernel.add_address(&vip).await.unwrap_err();
    assert_eq!(error.errno(), Some(19), "ENODEV: {error:?}");
    assert_eq!(error.operation(), Some(Operation::Create));
    assert_eq!(error.object(), Some(Object::Address(vip)));
    assert_eq!(error.to_string(), "creating address 10.0.0.9 on eth9: not found");
}

#[tokio::test]
async fn hand_edits_of_what_linux_notifies_about_bump_the_change_counter_and_our_writes_do_not() {
    let dataplane = FakeDataplane::new_fake();
    let mut changes = dataplane.changes();
    assert!(converge(&dataplane, &desired(1)).await > 0);
    assert!(!changes.has_changed().unwrap(), "our own writes are not changes");

    // By hand: IPVS and sysctls have no notifications; neither have reads.
    dataplane.kernel().with_state(|state| {
        state.services.clear();
        state.sysctls.clear();
    });
    dataplane.kernel().with_state(|state| state.addresses.len());
    assert!(!changes.has_changed().unwrap());
    // A foreign address on another device is not ours.
    dataplane.kernel().with_state(|state| {
        state.addresses.insert(VipAddress {
            address: ip("192.0.2.7"),
            device: "lo".into(),
        })
    });
    assert!(!changes.has_changed().unwrap());

    // Our VIP deleted by hand, our tables edited, our device deleted: one bump each.
    for edit in [
        |state: &mut crate::fake::FakeKernelState| {
            state.addresses.retain(|vip| vip.device != "lvs0");
        },
        |state: &mut crate::fake::FakeKernelState| state.nftables_generation += 1,
        |state: &mut crate::fake::FakeKernelState| {
            state.links.clear();
        },
    ] {
        let before = *changes.borrow_and_update();
        dataplane.kernel().with_state(edit);
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), before + 1);
    }
    // Repairing writes nothing that counts as a change.
    assert!(converge(&dataplane, &desired(1)).await > 0);
    assert!(!changes.has_changed().unwrap());
}

#[tokio::test]
async fn ipv6_forwarding_keeps_router_advertisements_where_they_were_accepted() {
    const FORWARDING: &str = "net/ipv6/conf/all/forwarding";
    let dataplane = FakeDataplane::new_fake();
    let accept_ra = |interface: &str| format!("net/ipv6/conf/{interface}/accept_ra");
    dataplane.kernel().with_state(|state| {
        state.sysctls.insert(FORWARDING.into(), "0".into());
        // eth0 takes advertisements (SLAAC), eth1 was told not to, lvs0 takes them too;
        // `default` is what new interfaces copy; `all` is not consulted for accept_ra.
        for (interface, value) in [
            ("all", "1"),
            ("default", "1"),
            ("eth0", "1"),
            ("eth1", "0"),
            ("lvs0", "1"),
        ] {
            state.sysctls.insert(accept_ra(interface), value.into());
        }
    });
    let nat6 = NodeState {
        sysctls: BTreeMap::from([(FORWARDING.to_owned(), "1".to_owned())]),
        ..NodeState::default()
    };
    converge(&dataplane, &nat6).await;
    let values = |dataplane: &FakeDataplane| {
        dataplane.kernel().with_state(|state| {
            ["all", "default", "eth0", "eth1", "lvs0"]
                .map(|interface| state.sysctls[&accept_ra(interface)].clone())
        })
    };
    assert_eq!(
        values(&dataplane),
        ["1", "2", "2", "0", "2"],
        "accept_ra 2 wherever it was 1: a forwarding interface still takes its default route"
    );
    assert_eq!(
        converge(&dataplane, &nat6).await,
        0,
        "not desired state of their own: nothing to restore or repair"
    );
    converge(&dataplane, &NodeState::default()).await;
    assert_eq!(
        values(&dataplane),
        ["1", "1", "1", "0", "1"],
        "restored with forwarding"
    );
    dataplane
        .kernel()
        .with_state(|state| assert_eq!(state.sysctls[FORWARDING], "0"));
}
