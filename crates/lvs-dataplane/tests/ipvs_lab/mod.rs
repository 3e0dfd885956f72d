//! Shared set-up of the IPVS kernel tests (`ipvs_kernel*.rs`): running programs without a shell,
//! the lab namespace with routable destinations, a handle, and small constructors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lvs_dataplane::ipvs::IpvsHandle;
use lvs_dataplane::model::{Destination, Forwarding, Protocol, Service, ServiceFlags, ServiceKey};

/// Runs a program (no shell) and returns its stdout; fails the test when it fails.
pub fn run(program: &str, arguments: &[&str]) -> String {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {}: {}\n{stdout}{}",
        arguments.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// iproute2's `ip` (busybox has its own applet earlier on some PATHs).
pub fn ip(arguments: &[&str]) {
    run("/sbin/ip", arguments);
}

/// `ipvsadm -S -n`: the kernel's table as ipvsadm commands, one rule a line.
pub fn ipvsadm_rules() -> Vec<String> {
    run("ipvsadm", &["-S", "-n"]).lines().map(str::to_owned).collect()
}

/// The module, a dummy device `d0` holding 10.1.0.0/16 and fd00:1::/64 (so destinations
/// there are routable), and a handle.
pub async fn lab() -> IpvsHandle {
    assert_eq!(
        std::env::var("LVS_LAB_KERNEL").as_deref(),
        Ok("1"),
        "run me in the VM lab"
    );
    run("modprobe", &["ip_vs"]);
    ip(&["link", "set", "lo", "up"]);
    ip(&["link", "add", "d0", "type", "dummy"]);
    ip(&["addr", "add", "10.1.0.1/16", "dev", "d0"]);
    ip(&["addr", "add", "fd00:1::1/64", "dev", "d0", "nodad"]);
    ip(&["link", "set", "d0", "up"]);
    IpvsHandle::new().await.unwrap()
}

pub fn key(address: &str, port: u16, protocol: Protocol) -> ServiceKey {
    ServiceKey::Address {
        address: address.parse().unwrap(),
        port,
        protocol,
    }
}

pub fn service(key: ServiceKey, scheduler: &str) -> Service {
    Service {
        key,
        scheduler: scheduler.into(),
        flags: ServiceFlags::default(),
        persistence: None,
    }
}

pub fn destination(address: &str, port: u16, forwarding: Forwarding) -> Destination {
    Destination {
        address: address.parse().unwrap(),
        port,
        weight: 1,
        forwarding,
        upper_threshold: 0,
        lower_threshold: 0,
    }
}

pub async fn services_sorted(handle: &IpvsHandle) -> Vec<Service> {
    let mut services: Vec<_> = handle
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|observed| observed.service)
        .collect();
    services.sort();
    services
}

pub async fn destinations_sorted(handle: &IpvsHandle, key: &ServiceKey) -> Vec<Destination> {
    let observed = handle.destinations(key).await.unwrap();
    let mut destinations: Vec<_> = observed
        .into_iter()
        .map(|observed| observed.destination)
        .collect();
    destinations.sort();
    destinations
}

pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
