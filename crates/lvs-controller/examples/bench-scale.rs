//! bench-scale — the controller at the size of a real estate, against the mock API server of its
//! tests (kube's client over `tower-test`, in this process): N VirtualServers, each with 20
//! RealServers on real-server nodes and four directors, one AddressPool. Prints, as `name=value`
//! lines: the first full pass (time to its last write, API writes, bytes written), the peak RSS
//! the controller added (process high-water mark minus the mock's share measured before the
//! controller started; the mock answers writes without keeping them), and the cost of one change — a RealServer's weight, a RealServer added,
//! a real-server node's role label flipped — in writes (all, and node configs alone), bytes and
//! time to the last write. The changed objects are sent without the status the controller wrote
//! (the mock keeps no writes), so a change's writes include that object's status written again,
//! which against an API server (whose events carry the status) they would not.
//!
//! Usage: `cargo run --release -p lvs-controller --example bench-scale -- [VS RS NODES]` (default
//! `100 2000 50`; one size per process, so that the peak RSS is this size's;
//! e2e/bench/controller-scale runs each size). Figures only: nothing here is judged, except that
//! the first pass must write a config for every node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lvs_controller::controller::{self, Options};
use lvs_controller::metrics::Metrics;
use serde_json::{Value, json};
use support::cluster::{namespace, node, pool};
use support::{ApiServer, NAMESPACES, NODE_CONFIGS, NODES, POOLS, REAL_SERVERS, VIRTUAL_SERVERS, event};
use tokio::sync::{oneshot, watch};

/// No write for this long ends a pass.
const QUIET: Duration = Duration::from_millis(1500);
/// The longest wait for a pass's first write.
const FIRST_WRITE: Duration = Duration::from_secs(300);
const DIRECTORS: usize = 4;
const REAL_SERVERS_PER_VS: usize = 20;

/// One estate: `virtual_servers` VirtualServers, `real_servers` RealServers, `nodes` nodes (four
/// of them directors).
#[derive(Debug, Clone, Copy)]
struct Size {
    virtual_servers: usize,
    real_servers: usize,
    nodes: usize,
}

impl Size {
    fn label(self) -> String {
        format!("{}x{}x{}", self.virtual_servers, self.real_servers, self.nodes)
    }
}

fn node_address(index: usize) -> String {
    format!(
        "10.{}.{}.{}",
        64 + index / 65536,
        (index / 256) % 256,
        index % 256
    )
}

fn vip(index: usize) -> String {
    format!("10.200.{}.{}", index / 256, index % 256)
}

fn real_server_node(size: Size, index: usize) -> usize {
    DIRECTORS + index % (size.nodes - DIRECTORS)
}

fn virtual_server(index: usize) -> Value {
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "VirtualServer",
        "metadata": { "name": format!("vs-{index}"), "namespace": "default", "uid": format!("uid-vs-{index}"),
                      "generation": 1, "resourceVersion": "10", "creationTimestamp": "2026-01-01T00:00:00Z" },
        "spec": {
            "address": vip(index), "port": 80, "protocol": "TCP", "scheduler": "wlc",
            "forwarding": { "method": "DirectRouting" },
            "directors": { "nodeSelector": { "lvs.operator.io/director": "true" } },
            "realServers": { "selector": { "matchLabels": { "app": format!("vs-{index}") } }, "arpMethod": "Sysctl" },
        },
    })
}

/// RealServer `rs-<index>` of VirtualServer `vs-<index / 20>` (the last RealServer added by the
/// bench goes to `vs-0`).
fn real_server(size: Size, index: usize, weight: u32) -> Value {
    let owner = if index < size.real_servers {
        index / REAL_SERVERS_PER_VS
    } else {
        0
    };
    json!({
        "apiVersion": "lvs.operator.io/v1alpha1",
        "kind": "RealServer",
        "metadata": { "name": format!("rs-{index}"), "namespace": "default", "uid": format!("uid-rs-{index}"),
                      "generation": 1, "resourceVersion": "11", "labels": { "app": format!("vs-{owner}") } },
        "spec": { "address": node_address(real_server_node(size, index)), "weight": weight },
    })
}

fn estate(size: Size) -> BTreeMap<&'static str, Vec<Value>> {
    let nodes = (0..size.nodes)
        .map(|index| {
            let role = if index < DIRECTORS {
                "director"
            } else {
                "real-server"
            };
            node(&format!("node-{index}"), &node_address(index), Some(role))
        })
        .collect();
    BTreeMap::from([
        (
            VIRTUAL_SERVERS,
            (0..size.virtual_servers).map(virtual_server).collect(),
        ),
        (
            REAL_SERVERS,
            (0..size.real_servers)
                .map(|index| real_server(size, index, 1))
                .collect(),
        ),
        (NODES, nodes),
        (NODE_CONFIGS, Vec::new()),
        (POOLS, vec![pool("bench", &["10.200.0.0/16"], &["*"])]),
        (NAMESPACES, vec![namespace("default")]),
    ])
}

/// Peak and current resident set of this process, KiB (`/proc/self/status`).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// What a pass wrote.
#[derive(Debug, Default)]
struct Pass {
    writes: usize,
    bytes: usize,
    node_configs: usize,
    last_write: Option<Duration>,
}

/// Collects writes from `since` until none came for [`QUIET`] after the first (which may take
/// up to [`FIRST_WRITE`]: a large estate is listed and built before anything is written).
async fn pass(api: &mut ApiServer, since: Instant) -> Pass {
    let mut pass = Pass::default();
    loop {
        let wait = if pass.writes == 0 { FIRST_WRITE } else { QUIET };
        let Ok(Some(write)) = tokio::time::timeout(wait, api.writes.recv()).await else {
            break;
        };
        pass.writes += 1;
        pass.bytes += write.bytes;
        if write.path.starts_with(NODE_CONFIGS) && !write.path.ends_with("/status") {
            pass.node_configs += 1;
        }
        pass.last_write = Some(since.elapsed());
    }
    pass
}

fn print_pass(size: &str, name: &str, pass: &Pass) {
    let millis = pass.last_write.map_or(0, |took| took.as_millis());
    println!("{size}.{name}_ms={millis}");
    println!("{size}.{name}_writes={}", pass.writes);
    println!("{size}.{name}_config_writes={}", pass.node_configs);
    println!("{size}.{name}_bytes={}", pass.bytes);
}

async fn run(size: Size) {
    let label = size.label();
    let initial = estate(size);
    let (client, mut api) = support::start_with(initial, true, support::Keep::Nothing);
    let (_, before) = memory_kib();
    let (_leader, leader) = watch::channel(true);
    let (ready, _ready) = watch::channel(false);
    let (_stop, stopped) = oneshot::channel::<()>();
    let options = Options {
        debounce: Duration::from_millis(20),
        resync: Duration::from_secs(3600),
        instance: Some("bench".to_owned()),
        settings: lvs_core::ClusterSettings::default(),
        service_class: lvs_core::service::ServiceClass::default(),
    };
    let started = Instant::now();
    tokio::spawn(async move {
        let _ = controller::run(client, options, leader, Metrics::new(), ready, async {
            let _ = stopped.await;
        })
        .await;
    });
    let first = pass(&mut api, started).await;
    let (peak, _) = memory_kib();
    print_pass(&label, "first_pass", &first);
    println!("{label}.first_pass_node_configs={}", first.node_configs);
    println!("{label}.rss_kib={}", peak.saturating_sub(before));
    assert!(
        first.node_configs >= size.nodes,
        "{label}: the first pass wrote {} node configs for {} nodes",
        first.node_configs,
        size.nodes
    );

    let since = Instant::now();
    api.send(REAL_SERVERS, vec![event("MODIFIED", &real_server(size, 0, 7))]);
    print_pass(&label, "weight_change", &pass(&mut api, since).await);

    let since = Instant::now();
    api.send(
        REAL_SERVERS,
        vec![event("ADDED", &real_server(size, size.real_servers, 1))],
    );
    print_pass(&label, "real_server_added", &pass(&mut api, since).await);

    let since = Instant::now();
    let flipped = node(
        &format!("node-{}", size.nodes - 1),
        &node_address(size.nodes - 1),
        None,
    );
    api.send(NODES, vec![event("MODIFIED", &flipped)]);
    print_pass(&label, "node_label_flipped", &pass(&mut api, since).await);
}

fn size() -> Size {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    match numbers[..] {
        [virtual_servers, real_servers, nodes] => Size {
            virtual_servers,
            real_servers: real_servers.max(virtual_servers),
            nodes: nodes.max(DIRECTORS + 1),
        },
        _ => Size {
            virtual_servers: 100,
            real_servers: 2000,
            nodes: 50,
        },
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(size()));
}
