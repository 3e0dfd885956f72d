//! Bulk programming in the VM lab: 1,000 services × 10 destinations through
//! `IpvsHandle::apply_all`, against `ipvsadm -R` of the same rules in the same VM boot
//! (`e2e/lab/scenarios/bench-ipvsadm.sh` builds the same rule set). Both must leave the same
//! table. Then the whole lvs-dataplane path (observe, plan, ownership-aware apply) does the same
//! from empty, and a second plan must be empty with zero writes. Times are printed as
//! `name=value` lines, last `ratio=<lvs-dataplane / ipvsadm -R>` (target ≤ 0.5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

use lvs_dataplane::ipvs::{IpvsHandle, IpvsRequest};
use lvs_dataplane::linux::kernel::{LinuxDataplane, LinuxSettings};
use lvs_dataplane::model::{
    Destination, Forwarding, NodeState, Protocol, Service, ServiceFlags, ServiceKey, ServiceState,
};
use lvs_dataplane::ownership::RegistryStore;
use lvs_dataplane::{Dataplane, plan};

const SERVICES: usize = 1000;
const DESTINATIONS: usize = 10;

fn run(program: &str, arguments: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The nth address of `10.{second}.0.0/16` as `lab_bench_rules` numbers them.
fn address(second: u8, n: usize) -> IpAddr {
    IpAddr::from([
        10,
        second,
        u8::try_from(n / 250).unwrap(),
        u8::try_from(n % 250 + 1).unwrap(),
    ])
}

fn sorted_rules() -> Vec<String> {
    let mut rules: Vec<_> = run("ipvsadm", &["-S", "-n"], None)
        .lines()
        .map(str::to_owned)
        .collect();
    rules.sort();
    rules
}

#[tokio::test]
#[ignore = "needs the lab kernel"]
async fn ipvs_bulk_apply_all_against_ipvsadm_restore() {
    assert_eq!(
        std::env::var("LVS_LAB_KERNEL").as_deref(),
        Ok("1"),
        "run me in the VM lab"
    );
    run("modprobe", &["ip_vs"], None);
    for arguments in [
        &["link", "set", "lo", "up"][..],
        &["link", "add", "bench0", "type", "dummy"],
        &["addr", "add", "10.201.0.1/16", "dev", "bench0"],
        &["link", "set", "bench0", "up"],
    ] {
        run("/sbin/ip", arguments, None);
    }
    let mut requests = Vec::new();
    let mut restore = String::new();
    for service_index in 0..SERVICES {
        let key = ServiceKey::Address {
            address: address(200, service_index),
            port: 80,
            protocol: Protocol::Tcp,
        };
        let vip = format!("{}:80", address(200, service_index));
        restore.push_str(&format!("-A -t {vip} -s rr\n"));
        requests.push(IpvsRequest::NewService(Service {
            key,
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        }));
        for destination_index in 0..DESTINATIONS {
            let real = address(201, service_index * DESTINATIONS + destination_index + 2);
            restore.push_str(&format!("-a -t {vip} -r {real}:80 -m -w 1\n"));
            let destination = Destination {
                address: real,
                port: 80,
                weight: 1,
                forwarding: Forwarding::Nat,
                upper_threshold: 0,
                lower_threshold: 0,
            };
            requests.push(IpvsRequest::NewDestination {
                service: key,
                destination,
            });
        }
    }

    let started = Instant::now();
    run("ipvsadm", &["-R"], Some(&restore));
    let ipvsadm_elapsed = started.elapsed();
    let reference = sorted_rules();
    assert_eq!(reference.len(), SERVICES * (DESTINATIONS + 1));
    run("ipvsadm", &["-C"], None);
    assert!(sorted_rules().is_empty());

    let handle = IpvsHandle::new().await.unwrap();
    let reference_requests = requests.clone();
    let started = Instant::now();
    let results = handle.apply_all(requests).await;
    let apply_elapsed = started.elapsed();
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|result| result.is_err())
    );
    assert_eq!(
        handle.write_count(),
        u64::try_from(SERVICES * (DESTINATIONS + 1)).unwrap()
    );
    assert_eq!(
        sorted_rules(),
        reference,
        "apply_all and ipvsadm -R leave the same table"
    );

    let started = Instant::now();
    let services = handle.services().await.unwrap();
    let dump_elapsed = started.elapsed();
    assert_eq!(services.len(), SERVICES);

    // The whole lvs-dataplane path — observe, plan, ownership-aware apply — from empty.
    run("ipvsadm", &["-C"], None);
    let desired = NodeState {
        services: requests_by_service(&reference_requests),
        ..NodeState::default()
    };
    let settings = LinuxSettings {
        registry: RegistryStore::Memory,
        ..LinuxSettings::default()
    };
    let dataplane = LinuxDataplane::connect(settings).await.unwrap();
    let started = Instant::now();
    let observed = dataplane.observe().await.unwrap();
    let report = dataplane.apply(plan(&desired, &observed)).await;
    let dataplane_elapsed = started.elapsed();
    assert!(report.is_success(), "{:?}", report.failures.first());
    assert_eq!(
        sorted_rules(),
        reference,
        "lvs-dataplane and ipvsadm -R leave the same table"
    );
    let writes = dataplane.write_count();
    let again = plan(&desired, &dataplane.observe().await.unwrap());
    assert!(
        again.is_empty(),
        "steady state plans nothing: {:?}",
        again.first()
    );
    assert_eq!(dataplane.write_count(), writes, "and writes nothing");

    let ratio = ipvsadm_elapsed.as_secs_f64() / apply_elapsed.as_secs_f64();
    // (a newline first: libtest has printed "test NAME ... " on this line)
    println!("\nipvsadm_restore_ms={}", ipvsadm_elapsed.as_millis());
    println!("ipvs_apply_all_ms={}", apply_elapsed.as_millis());
    println!("ipvs_dump_services_ms={}", dump_elapsed.as_millis());
    println!("ipvs_apply_all_speedup={ratio:.2}");
    // The agent ships optimized; a debug build of this test spends most of its time in
    // unoptimized code and says so.
    println!("ipvs_bulk_optimized={}", u8::from(!cfg!(debug_assertions)));
    println!("dataplane_apply_ms={}", dataplane_elapsed.as_millis());
    println!(
        "ratio={:.2}",
        dataplane_elapsed.as_secs_f64() / ipvsadm_elapsed.as_secs_f64()
    );
}

/// The requests as desired dataplane state.
fn requests_by_service(requests: &[IpvsRequest]) -> BTreeMap<ServiceKey, ServiceState> {
    let mut services = BTreeMap::new();
    for request in requests {
        match request {
            IpvsRequest::NewService(service) => {
                services.insert(
                    service.key,
                    ServiceState {
                        service: service.clone(),
                        destinations: BTreeMap::new(),
                    },
                );
            }
            IpvsRequest::NewDestination { service, destination } => {
                if let Some(state) = services.get_mut(service) {
                    state.destinations.insert(destination.key(), destination.clone());
                }
            }
            _ => {}
        }
    }
    services
}
