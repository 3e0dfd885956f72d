//! The Linux dataplane's change notifications against a real kernel: a change made by hand to
//! an address or device we own (or to our nftables tables) bumps the counter within a bound;
//! our own writes and other programs' objects do not. On the build machine (veth and addresses,
//! in a private network namespace: it has no dummy device) and in the VM lab (`lvs0`, nftables).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ipvs_lab;
mod netns;

use std::time::{Duration, Instant};

use ipvs_lab::{ip, run};
use lvs_dataplane::Dataplane;
use lvs_dataplane::linux::kernel::{LinuxDataplane, LinuxSettings};
use lvs_dataplane::model::{Link, NftRules, PortMatch, Protocol, VipAddress};
use lvs_dataplane::ops::Op;
use lvs_dataplane::ownership::RegistryStore;
use tokio::sync::watch;

/// A hand-made change must be seen within this (the debounce is 50 ms; the lab is emulated).
const BOUND: Duration = Duration::from_secs(1);
/// How long to listen for a notification that must not come.
const QUIET: Duration = Duration::from_millis(400);

async fn dataplane() -> LinuxDataplane {
    LinuxDataplane::connect(LinuxSettings {
        registry: RegistryStore::Memory,
        ..LinuxSettings::default()
    })
    .await
    .unwrap()
}

async fn apply(dataplane: &LinuxDataplane, ops: Vec<Op>) {
    let report = dataplane.apply(ops).await;
    assert!(report.is_success(), "{:?}", report.failures);
}

/// Waits for a bump; returns how long it took.
async fn seen(changes: &mut watch::Receiver<u64>, what: &str) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(BOUND, changes.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: no change notification within {BOUND:?}"))
        .unwrap();
    changes.borrow_and_update();
    let took = started.elapsed();
    println!("{what}: notified after {} ms", took.as_millis());
    took
}

/// Fails when a bump comes within `QUIET`.
async fn quiet(changes: &mut watch::Receiver<u64>, what: &str) {
    let bumped = tokio::time::timeout(QUIET, changes.changed()).await.is_ok();
    assert!(!bumped, "{what}: a change notification came but none should");
}

fn vip(address: &str, device: &str) -> VipAddress {
    VipAddress {
        address: address.parse().unwrap(),
        device: device.into(),
    }
}

#[test]
fn hand_edits_of_our_addresses_and_devices_are_notified_and_our_writes_are_not() {
    if !netns::in_private_network(
        "hand_edits_of_our_addresses_and_devices_are_notified_and_our_writes_are_not",
    ) {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(addresses_and_devices());
}

async fn addresses_and_devices() {
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ip(&["link", "set", "v0", "up"]);
    let dataplane = dataplane().await;
    let mut changes = dataplane.changes();
    // The VIPs on an uplink, and v1 as a device we set up (as a tunnel's fallback device).
    let (v4, v6) = (vip("10.9.0.1", "v0"), vip("fd00:9::1", "v0"));
    apply(
        &dataplane,
        vec![
            Op::AddLink(Link::TunnelFallback {
                name: "v1".into(),
                module: "veth".into(),
            }),
            Op::AddAddress(v4.clone()),
            Op::AddAddress(v6.clone()),
        ],
    )
    .await;
    quiet(&mut changes, "our own writes").await;

    ip(&["addr", "add", "10.9.0.2/32", "dev", "v0"]);
    ip(&["addr", "add", "10.9.1.1/24", "dev", "v0"]);
    ip(&["link", "add", "v2", "type", "veth", "peer", "name", "v3"]);
    ip(&["link", "set", "v2", "up"]);
    quiet(&mut changes, "other addresses and devices").await;

    ip(&["addr", "del", "10.9.0.1/32", "dev", "v0"]);
    seen(&mut changes, "our IPv4 address deleted by hand").await;
    // IPv6 notifications carry no port id: our writes are told by their recent marks, so the
    // hand edit comes after those expired.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ip(&["addr", "del", "fd00:9::1/128", "dev", "v0"]);
    seen(&mut changes, "our IPv6 address deleted by hand").await;
    ip(&["link", "set", "v1", "down"]);
    seen(&mut changes, "our device set down by hand").await;

    apply(
        &dataplane,
        vec![
            Op::AddLink(Link::TunnelFallback {
                name: "v1".into(),
                module: "veth".into(),
            }),
            Op::AddAddress(v4),
            Op::AddAddress(v6),
        ],
    )
    .await;
    quiet(&mut changes, "our repair").await;
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn hand_edits_of_lvs0_and_our_nftables_tables_are_notified() {
    assert_eq!(
        std::env::var("LVS_LAB_KERNEL").as_deref(),
        Ok("1"),
        "run me in the VM lab"
    );
    ip(&["link", "set", "lo", "up"]);
    let dataplane = dataplane().await;
    let mut changes = dataplane.changes();
    let lvs0 = Link::Dummy { name: "lvs0".into() };
    let rules = NftRules {
        redirects: vec![PortMatch {
            address: "10.9.0.1".parse().unwrap(),
            protocol: Protocol::Tcp,
            port: 80,
        }],
        ..NftRules::default()
    };
    let ours = vec![
        Op::AddLink(lvs0.clone()),
        Op::AddAddress(vip("10.9.0.1", "lvs0")),
        Op::AddAddress(vip("fd00:9::1", "lvs0")),
        Op::ReplaceNftables(rules.clone()),
    ];
    apply(&dataplane, ours.clone()).await;
    // Creating lvs0 sends link notifications without a port id (before Linux 6.3) and the
    // kernel gives it a link-local address; none of it is drift.
    quiet(&mut changes, "our own writes").await;
    // The tables' listing is cached on the nftables notifications: twice the same, and right.
    for _ in 0..2 {
        assert_eq!(dataplane.observe().await.unwrap().nftables, Some(rules.clone()));
    }

    run("nft", &["add", "table", "inet", "someone-else"]);
    run("nft", &["add", "chain", "inet", "someone-else", "input"]);
    quiet(&mut changes, "another program's table").await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    run("nft", &["delete", "table", "inet", "lvs-operator"]);
    seen(&mut changes, "our nftables table deleted by hand").await;
    assert_eq!(
        dataplane.observe().await.unwrap().nftables,
        None,
        "the cached listing of our tables was dropped"
    );
    ip(&["addr", "del", "10.9.0.1/32", "dev", "lvs0"]);
    seen(&mut changes, "our VIP deleted from lvs0 by hand").await;
    ip(&["addr", "add", "10.9.0.77/32", "dev", "lvs0"]);
    seen(&mut changes, "an address added to lvs0 by hand").await;
    ip(&["link", "set", "lvs0", "down"]);
    seen(&mut changes, "lvs0 set down by hand").await;
    ip(&["link", "del", "lvs0"]);
    seen(&mut changes, "lvs0 deleted by hand").await;

    apply(&dataplane, ours).await;
    quiet(&mut changes, "our repair").await;
}
