//! The executor's sync daemons and failover reads, on the fake kernel: only our daemons are
//! observed, a foreign one is neither adopted nor stopped, the record follows starts and stops.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::dataplane::Dataplane;
use crate::fake::FakeDataplane;
use crate::model::*;
use crate::ops::Op;
use crate::plan::plan;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn daemon(interface: &str, sync_id: u8) -> SyncDaemonSpec {
    SyncDaemonSpec {
        interface: interface.to_owned(),
        sync_id,
    }
}

fn with_daemon(role: SyncRole, spec: SyncDaemonSpec) -> NodeState {
    NodeState {
        sync_daemons: BTreeMap::from([(role, spec)]),
        ..NodeState::default()
    }
}

async fn converge(dataplane: &FakeDataplane, desired: &NodeState) -> Vec<Op> {
    let ops = plan(desired, &dataplane.observe().await.unwrap());
    let report = dataplane.apply(ops.clone()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    ops
}

#[tokio::test]
async fn a_started_daemon_is_recorded_observed_and_adopted_after_a_restart() {
    let dataplane = FakeDataplane::new_fake();
    let desired = with_daemon(SyncRole::Backup, daemon("eth0", 7));
    assert_eq!(
        converge(&dataplane, &desired).await,
        [Op::StartSyncDaemon(SyncRole::Backup, daemon("eth0", 7))]
    );
    assert_eq!(
        dataplane.kernel().with_state(|state| state.sync_daemons.clone()),
        desired.sync_daemons
    );
    assert_eq!(dataplane.registry().sync_daemons, desired.sync_daemons);
    assert_eq!(
        dataplane.observe().await.unwrap().sync_daemons,
        desired.sync_daemons
    );

    let restarted = dataplane.restarted();
    let writes = restarted.write_count();
    assert!(
        converge(&restarted, &desired).await.is_empty(),
        "adopted, not restarted"
    );
    assert_eq!(restarted.write_count(), writes);
}

#[tokio::test]
async fn a_changed_daemon_is_restarted_and_recorded_as_it_now_runs() {
    let dataplane = FakeDataplane::new_fake();
    converge(&dataplane, &with_daemon(SyncRole::Master, daemon("eth0", 7))).await;
    let changed = with_daemon(SyncRole::Master, daemon("eth1", 9));
    assert_eq!(
        converge(&dataplane, &changed).await,
        [
            Op::StopSyncDaemon(SyncRole::Master),
            Op::StartSyncDaemon(SyncRole::Master, daemon("eth1", 9)),
        ]
    );
    assert_eq!(
        dataplane.kernel().with_state(|state| state.sync_daemons.clone()),
        changed.sync_daemons
    );
    assert_eq!(dataplane.registry().sync_daemons, changed.sync_daemons);
    assert!(converge(&dataplane, &changed).await.is_empty());
}

#[tokio::test]
async fn a_daemon_changed_by_hand_is_seen_and_put_back() {
    let dataplane = FakeDataplane::new_fake();
    let desired = with_daemon(SyncRole::Master, daemon("eth0", 7));
    converge(&dataplane, &desired).await;
    dataplane.kernel().with_state(|state| {
        state.sync_daemons.insert(SyncRole::Master, daemon("eth0", 8));
    });
    assert_eq!(
        dataplane.observe().await.unwrap().sync_daemons[&SyncRole::Master],
        daemon("eth0", 8),
        "observed as the kernel runs it"
    );
    assert_eq!(converge(&dataplane, &desired).await.len(), 2);
    assert_eq!(
        dataplane.kernel().with_state(|state| state.sync_daemons.clone()),
        desired.sync_daemons
    );
}

#[tokio::test]
async fn a_stopped_daemon_is_forgotten() {
    let dataplane = FakeDataplane::new_fake();
    converge(&dataplane, &with_daemon(SyncRole::Master, daemon("eth0", 7))).await;
    assert_eq!(
        converge(&dataplane, &NodeState::default()).await,
        [Op::StopSyncDaemon(SyncRole::Master)]
    );
    assert!(
        dataplane
            .kernel()
            .with_state(|state| state.sync_daemons.is_empty())
    );
    assert!(dataplane.registry().sync_daemons.is_empty());

    // Stopped behind our back: stopping it again is no error, and it is forgotten too.
    converge(&dataplane, &with_daemon(SyncRole::Backup, daemon("eth0", 7))).await;
    dataplane.kernel().with_state(|state| state.sync_daemons.clear());
    let report = dataplane.apply(vec![Op::StopSyncDaemon(SyncRole::Backup)]).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert!(dataplane.registry().sync_daemons.is_empty());
}

#[tokio::test]
async fn a_foreign_daemon_is_not_observed_adopted_or_stopped() {
    let dataplane = FakeDataplane::new_fake();
    dataplane.kernel().with_state(|state| {
        state.sync_daemons.insert(SyncRole::Master, daemon("eth9", 42));
    });
    assert!(dataplane.observe().await.unwrap().sync_daemons.is_empty());
    assert!(dataplane.observe_vips().await.unwrap().sync_daemons.is_empty());

    let desired = with_daemon(SyncRole::Master, daemon("eth0", 7));
    let report = dataplane
        .apply(plan(&desired, &dataplane.observe().await.unwrap()))
        .await;
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let message = report.failures[0].error.to_string();
    assert!(
        message.contains("exists and was not created by lvs-operator; left alone"),
        "{message}"
    );
    assert!(message.contains("master"), "names the daemon: {message}");
    assert!(dataplane.registry().sync_daemons.is_empty(), "nothing recorded");

    let report = dataplane.apply(vec![Op::StopSyncDaemon(SyncRole::Master)]).await;
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0]
            .error
            .to_string()
            .contains("was not created by lvs-operator")
    );
    assert_eq!(
        dataplane.kernel().with_state(|state| state.sync_daemons.clone()),
        BTreeMap::from([(SyncRole::Master, daemon("eth9", 42))]),
        "left running as it was"
    );

    // A backup of ours next to the foreign master: only ours is observed.
    converge(&dataplane, &with_daemon(SyncRole::Backup, daemon("eth0", 7))).await;
    assert_eq!(
        dataplane.observe().await.unwrap().sync_daemons,
        BTreeMap::from([(SyncRole::Backup, daemon("eth0", 7))])
    );
}

#[tokio::test]
async fn observe_vips_reads_our_addresses_and_daemons_without_dumping_ipvs() {
    let dataplane = FakeDataplane::new_fake();
    let vip = VipAddress {
        address: ip("10.0.0.1"),
        device: "lvs0".into(),
    };
    let mut desired = with_daemon(SyncRole::Master, daemon("eth0", 7));
    desired.links.insert(Link::Dummy { name: "lvs0".into() });
    desired.addresses.insert(vip.clone());
    converge(&dataplane, &desired).await;
    dataplane.kernel().with_state(|state| {
        state.addresses.insert(VipAddress {
            address: ip("192.0.2.50"),
            device: "lo".into(),
        });
        state.sync_daemons.insert(SyncRole::Backup, daemon("eth9", 1));
    });
    let dumps = dataplane.kernel().with_state(|state| state.ipvs_dumps);
    let vips = dataplane.observe_vips().await.unwrap();
    assert_eq!(
        dataplane.kernel().with_state(|state| state.ipvs_dumps),
        dumps,
        "no IPVS dump"
    );
    assert_eq!(
        vips,
        VipState {
            addresses: [vip].into(),
            sync_daemons: desired.sync_daemons.clone(),
        }
    );
    let observed = dataplane.observe().await.unwrap();
    assert_eq!(vips.addresses, observed.addresses, "agrees with a full observe");
    assert_eq!(vips.sync_daemons, observed.sync_daemons);
}

#[tokio::test]
async fn failover_reads_return_what_the_fake_kernel_holds() {
    let dataplane = FakeDataplane::new_fake();
    let vip = ip("10.0.0.1");
    let other_mac = [0x02, 0, 0, 0, 0, 0x42];
    assert!(dataplane.connection_counts().await.unwrap().is_empty());
    assert!(dataplane.uplink_up(vip, None).await.unwrap(), "up by default");
    assert!(
        dataplane
            .vip_claimants(vip, None, Duration::from_millis(10))
            .await
            .unwrap()
            .is_empty()
    );
    dataplane.kernel().with_state(|state| {
        state.connections.insert(vip, 1200);
        state.uplinks_down.insert("eth1".into());
        state.claimants.insert(vip, vec![other_mac]);
    });
    assert_eq!(
        dataplane.connection_counts().await.unwrap(),
        BTreeMap::from([(vip, 1200)])
    );
    assert!(!dataplane.uplink_up(vip, Some("eth1")).await.unwrap());
    assert!(dataplane.uplink_up(vip, Some("eth2")).await.unwrap());
    assert!(dataplane.uplink_up(vip, None).await.unwrap());
    dataplane.kernel().with_state(|state| {
        state.uplinks_down.insert(crate::fake::FAKE_UPLINK.into());
    });
    assert!(!dataplane.uplink_up(vip, None).await.unwrap());
    assert_eq!(
        dataplane
            .vip_claimants(vip, Some("eth0"), Duration::from_millis(10))
            .await
            .unwrap(),
        [other_mac]
    );
}

#[tokio::test]
async fn after_a_corrupt_record_a_daemon_running_as_asked_is_taken_for_ours() {
    let folder = std::env::temp_dir().join(format!("lvs-sync-recovered-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("owned.json");
    std::fs::write(&path, b"{\"services\": [").unwrap();
    let kernel = crate::fake::FakeKernel::default();
    kernel.with_state(|state| {
        state.sync_daemons.insert(SyncRole::Master, daemon("eth0", 7));
    });
    let dataplane =
        crate::executor::Executor::new(kernel, crate::ownership::RegistryStore::File(path.clone())).unwrap();
    assert!(folder.join("owned.json.corrupt").exists(), "set aside");
    let desired = with_daemon(SyncRole::Master, daemon("eth0", 7));
    converge(&dataplane, &desired).await;
    assert_eq!(dataplane.registry().sync_daemons, desired.sync_daemons, "adopted");
    // One running otherwise is still refused, even now.
    dataplane.kernel().with_state(|state| {
        state.sync_daemons.insert(SyncRole::Backup, daemon("eth1", 9));
    });
    let ops = plan(
        &with_daemon(SyncRole::Backup, daemon("eth0", 7)),
        &dataplane.observe().await.unwrap(),
    );
    let report = dataplane.apply(ops).await;
    assert!(
        !report.is_success(),
        "a backup running on eth1 with sync ID 9 is not as asked"
    );
    std::fs::remove_dir_all(folder).unwrap();
}
