//! Drift repaired between resyncs, on the fake kernel, in standalone mode with a resync of an
//! hour: a VIP deleted by hand comes back on the dataplane's change notification, IPVS services
//! flushed by hand (no notification) come back from the once-a-second IPVS check; both count as
//! drift repairs, and with nothing changed the checks write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lvs_agent::health::HealthMonitor;
use lvs_agent::metrics::Metrics;
use lvs_agent::reconciler::Reconciler;
use lvs_agent::standalone::{Options, run};
use lvs_dataplane::{Dataplane, FakeDataplane};
use serde_json::Value;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: director-1
  labels:
    lvs.operator.io/director: "true"
status:
  addresses:
    - type: InternalIP
      address: 10.100.0.2
---
apiVersion: lvs.operator.io/v1alpha1
kind: VirtualServer
metadata:
  name: web
  namespace: default
spec:
  address: 10.100.0.100
  port: 80
  forwarding:
    method: DirectRouting
  realServers:
    selector:
      matchLabels:
        app: web
  healthCheck:
    type: None
---
apiVersion: lvs.operator.io/v1alpha1
kind: RealServer
metadata:
  name: web-1
  namespace: default
  labels:
    app: web
spec:
  address: 10.100.0.11
"#;

fn status(path: &std::path::Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// Waits until `check` holds; returns how long that took.
async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {limit:?}");
}

#[tokio::test]
async fn drift_is_repaired_within_seconds_without_waiting_for_the_resync() {
    let dir = std::env::temp_dir().join(format!("lvs-agent-drift-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("web.yaml"), MANIFESTS).unwrap();
    std::fs::write(dir.join("pool.yaml"), include_str!("../../../examples/pool.yaml")).unwrap();
    let status_file = dir.with_extension("status.json");
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new("director-1");
    let health = HealthMonitor::new(8, lvs_agent::metrics_observer(&metrics));
    let reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-1");
    let options = Options {
        manifests: vec![dir.clone()],
        node_name: "director-1".to_owned(),
        status_file: Some(status_file.clone()),
        once: false,
        resync: Duration::from_secs(3600),
    };
    let (ready, _) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(reconciler, options, ready));

    let vip = || {
        dataplane.kernel().with_state(|state| {
            state
                .addresses
                .iter()
                .any(|vip| vip.device == "lvs0" && vip.address.to_string() == "10.100.0.100")
        })
    };
    let services = || dataplane.kernel().with_state(|state| state.services.len());
    wait_for("programmed", Duration::from_secs(10), || {
        vip() && services() == 1 && status(&status_file)["synced"] == true
    })
    .await;

    dataplane
        .kernel()
        .with_state(|state| state.addresses.retain(|vip| vip.device != "lvs0"));
    let took = wait_for("the VIP back", Duration::from_secs(2), vip).await;
    println!("VIP back after {} ms", took.as_millis());
    wait_for("one drift repair", Duration::from_secs(2), || {
        status(&status_file)["driftRepairs"] == 1
    })
    .await;

    dataplane.kernel().with_state(|state| state.services.clear());
    let took = wait_for("the IPVS service back", Duration::from_secs(3), || {
        services() == 1
    })
    .await;
    println!("IPVS service back after {} ms", took.as_millis());
    wait_for("two drift repairs", Duration::from_secs(2), || {
        status(&status_file)["driftRepairs"] == 2
    })
    .await;

    // Nothing changed: the checks read, no pass writes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = dataplane.write_count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(dataplane.write_count(), writes, "writes with nothing changed");
    assert_eq!(status(&status_file)["driftRepairs"], 2);
    task.abort();
}
