//! Standalone mode end to end on the fake kernel: the agent's loop reads a folder of manifests,
//! health-checks real servers that really listen (in a private network namespace), and programs the fake
//! dataplane. A bad manifest is reported by file, object and field while the valid service keeps
//! its state; a file that stops parsing keeps its services; fixing recovers without a restart;
//! a dead real server is quiesced or removed and comes back; with none left the fallback serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lvs_agent::health::HealthMonitor;
use lvs_agent::metrics::Metrics;
use lvs_agent::reconciler::Reconciler;
use lvs_agent::standalone::{Options, run};
use lvs_dataplane::FakeDataplane;
use lvs_dataplane::model::ServiceKey;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The address pool the cluster admin owns (examples/pool.yaml).
const POOL: &str = include_str!("../../../examples/pool.yaml");

const NODES: &str = r#"
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
"#;

/// A VirtualServer `name` on `vip:80` over the real servers labelled `app: name`.
fn virtual_server(name: &str, vip: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: lvs.operator.io/v1alpha1
kind: VirtualServer
metadata:
  name: {name}
  namespace: default
spec:
  address: {vip}
  port: 80
  scheduler: wrr
  forwarding:
    method: DirectRouting
  realServers:
    selector:
      matchLabels:
        app: {name}
{extra}
"#
    )
}

fn real_server(name: &str, app: &str, address: &str, weight: u16) -> String {
    format!(
        r#"
apiVersion: lvs.operator.io/v1alpha1
kind: RealServer
metadata:
  name: {name}
  namespace: default
  labels:
    app: {app}
spec:
  address: {address}
  weight: {weight}
"#
    )
}

/// Health checks off: these tests are about manifests, not probes.
const NO_CHECKS: &str = "  healthCheck:\n    type: None\n";

fn folder(test: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("lvs-agent-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

struct Agent {
    dataplane: Arc<FakeDataplane>,
    status_file: PathBuf,
    task: JoinHandle<anyhow::Result<ExitCode>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start(manifests: &Path) -> Agent {
    let dataplane = Arc::new(FakeDataplane::new_fake());
    let metrics = Metrics::new("director-1");
    let health = HealthMonitor::new(8, lvs_agent::metrics_observer(&metrics));
    let reconciler = Reconciler::new(Arc::clone(&dataplane), health, metrics, "director-1");
    let status_file = manifests.with_extension("status.json");
    let options = Options {
        manifests: vec![manifests.to_path_buf()],
        node_name: "director-1".to_owned(),
        status_file: Some(status_file.clone()),
        once: false,
        resync: Duration::from_secs(3600),
    };
    let (ready, _) = tokio::sync::watch::channel(false);
    Agent {
        dataplane,
        status_file,
        task: tokio::spawn(run(reconciler, options, ready)),
    }
}

impl Agent {
    /// Destinations of the service on `vip:80`: (address, weight), or None without the service.
    fn destinations(&self, vip: &str) -> Option<Vec<(String, u32)>> {
        let key = ServiceKey::Address {
            address: vip.parse().unwrap(),
            port: 80,
            protocol: lvs_dataplane::model::Protocol::Tcp,
        };
        self.dataplane.kernel().with_state(|state| {
            state.services.get(&key).map(|service| {
                service
                    .destinations
                    .values()
                    .map(|destination| (destination.address.to_string(), destination.weight))
                    .collect()
            })
        })
    }

    fn status(&self) -> Value {
        std::fs::read(&self.status_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    }

    async fn wait_for(&self, what: &str, check: impl Fn(&Self) -> bool) {
        for _ in 0..300 {
            if check(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{what}: not within 15 s; kernel: {:?} / {:?}; status: {}",
            self.destinations("10.100.0.100"),
            self.destinations("10.100.0.101"),
            self.status()
        );
    }
}

fn problems(status: &Value) -> Vec<String> {
    status["problems"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|line| line.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bad_manifest_is_named_the_valid_service_stays_and_fixing_it_recovers() {
    let dir = folder("bad-input");
    std::fs::write(dir.join("nodes.yaml"), NODES).unwrap();
    std::fs::write(dir.join("pool.yaml"), POOL).unwrap();
    std::fs::write(
        dir.join("web.yaml"),
        [
            virtual_server("web", "10.100.0.100", NO_CHECKS),
            real_server("web-1", "web", "10.100.0.11", 1),
        ]
        .join("---"),
    )
    .unwrap();
    let agent = start(&dir);
    agent
        .wait_for("web programmed", |agent| {
            agent.destinations("10.100.0.100") == Some(vec![("10.100.0.11".to_owned(), 1)])
        })
        .await;

    // A new file with a bad field value.
    let bad = virtual_server(
        "api",
        "10.100.0.101",
        "  healthCheck:\n    type: TCP\n    timeoutSeconds: 9\n    intervalSeconds: 2\n",
    );
    std::fs::write(
        dir.join("api.yaml"),
        [bad, real_server("api-1", "api", "10.100.0.21", 1)].join("---"),
    )
    .unwrap();
    agent
        .wait_for("the error names file, object and field", |agent| {
            problems(&agent.status()).iter().any(|line| {
                line.starts_with("error: ")
                    && line.contains("api.yaml")
                    && line.contains("VirtualServer default/api")
                    && line.contains("spec.healthCheck.timeoutSeconds")
            })
        })
        .await;
    assert_eq!(
        agent.destinations("10.100.0.101"),
        None,
        "the invalid service is not programmed"
    );
    assert_eq!(
        agent.destinations("10.100.0.100"),
        Some(vec![("10.100.0.11".to_owned(), 1)]),
        "the valid service keeps serving"
    );

    // Fixed: programmed without a restart.
    let fixed = virtual_server("api", "10.100.0.101", NO_CHECKS);
    std::fs::write(
        dir.join("api.yaml"),
        [fixed, real_server("api-1", "api", "10.100.0.21", 1)].join("---"),
    )
    .unwrap();
    agent
        .wait_for("the fixed service programmed", |agent| {
            agent.destinations("10.100.0.101") == Some(vec![("10.100.0.21".to_owned(), 1)])
        })
        .await;
    assert!(
        problems(&agent.status())
            .iter()
            .all(|line| !line.starts_with("error")),
        "{:?}",
        problems(&agent.status())
    );

    // The web file stops parsing: its service keeps its last valid version.
    std::fs::write(
        dir.join("web.yaml"),
        "apiVersion: lvs.operator.io/v1alpha1\nkind: [unterminated\n",
    )
    .unwrap();
    agent
        .wait_for("the parse error and the kept objects reported", |agent| {
            let lines = problems(&agent.status());
            lines.iter().any(|line| {
                line.starts_with("error: ") && line.contains("web.yaml") && line.contains("not valid YAML")
            }) && lines
                .iter()
                .any(|line| line.contains("VirtualServer default/web: keeping its last valid version"))
        })
        .await;
    assert_eq!(
        agent.destinations("10.100.0.100"),
        Some(vec![("10.100.0.11".to_owned(), 1)])
    );

    // An edit that breaks one field of web keeps the old web, too.
    let broken = virtual_server(
        "web",
        "10.100.0.100",
        "  healthCheck:\n    type: TCP\n    timeoutSeconds: 9\n    intervalSeconds: 2\n",
    );
    std::fs::write(
        dir.join("web.yaml"),
        [broken, real_server("web-1", "web", "10.100.0.11", 5)].join("---"),
    )
    .unwrap();
    agent
        .wait_for(
            "the RealServer edit applies while the broken VirtualServer keeps its old version",
            |agent| agent.destinations("10.100.0.100") == Some(vec![("10.100.0.11".to_owned(), 5)]),
        )
        .await;

    // Removing the file (a valid change) removes the service.
    std::fs::remove_file(dir.join("web.yaml")).unwrap();
    agent
        .wait_for("web removed with its file", |agent| {
            agent.destinations("10.100.0.100").is_none()
        })
        .await;
    assert!(agent.destinations("10.100.0.101").is_some());
}

/// Listens on `address` (any free port when `port` is 0).
async fn listen(address: &str, port: u16) -> TcpListener {
    TcpListener::bind((address, port)).await.unwrap()
}

/// Accepts and drops connections until aborted.
fn serve(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    })
}

/// Runs this test binary's test `name` again inside a new network namespace (`unshare -n`,
/// root) whose loopback holds `addresses`, so real servers can listen on routable addresses
/// without touching the host; fails when that is impossible.
fn rerun_in_private_network(name: &str, addresses: &[&str]) {
    let mut script = String::from("ip link set lo up");
    for address in addresses {
        script.push_str(&format!(" && ip addr add {address}/32 dev lo"));
    }
    script.push_str(" && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1");
    let output = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .arg(name)
        .env("LVS_AGENT_TEST_NETNS", "1")
        .output()
        .expect("cannot run unshare (util-linux) to make a private network namespace");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} in a private network namespace: {}\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn health_checks_quiesce_remove_restore_and_fall_back() {
    if std::env::var_os("LVS_AGENT_TEST_NETNS").is_none() {
        rerun_in_private_network(
            "health_checks_quiesce_remove_restore_and_fall_back",
            &["10.100.0.11", "10.100.0.12", "10.100.0.13"],
        );
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(health_checks());
}

async fn health_checks() {
    let first = listen("10.100.0.11", 0).await;
    let port = first.local_addr().unwrap().port();
    let second = listen("10.100.0.12", port).await;
    let fallback = listen("10.100.0.13", port).await;
    let mut first_task = serve(first);
    let second_task = serve(second);
    let _fallback_task = serve(fallback);

    let dir = folder("health");
    std::fs::write(dir.join("nodes.yaml"), NODES).unwrap();
    std::fs::write(dir.join("pool.yaml"), POOL).unwrap();
    let write = |on_failure: &str| {
        let extra = format!(
            "  healthCheck:\n    type: TCP\n    intervalSeconds: 1\n    timeoutSeconds: 1\n    rise: 2\n    fall: 2\n    port: {port}\n  onFailure: {on_failure}\n  fallback:\n    address: 10.100.0.13\n"
        );
        std::fs::write(
            dir.join("web.yaml"),
            [
                virtual_server("web", "10.100.0.100", &extra),
                real_server("web-1", "web", "10.100.0.11", 1),
                real_server("web-2", "web", "10.100.0.12", 3),
            ]
            .join("---"),
        )
        .unwrap();
    };
    write("Quiescent");
    let agent = start(&dir);
    let both = Some(vec![("10.100.0.11".to_owned(), 1), ("10.100.0.12".to_owned(), 3)]);
    agent
        .wait_for("both real servers in", |agent| {
            agent.destinations("10.100.0.100") == both
        })
        .await;

    // web-1 stops listening: after `fall` failed checks its weight is 0 (Quiescent).
    first_task.abort();
    let _ = (&mut first_task).await;
    agent
        .wait_for("web-1 quiesced", |agent| {
            agent.destinations("10.100.0.100")
                == Some(vec![("10.100.0.11".to_owned(), 0), ("10.100.0.12".to_owned(), 3)])
        })
        .await;
    let status = agent.status();
    let web_1 = &status["status"]["services"][0]["destinations"][0];
    assert_eq!(web_1["realServer"], "default/web-1");
    assert_eq!(web_1["healthy"], false, "{status}");
    assert_eq!(web_1["weight"], 0);
    assert!(
        web_1["lastFailure"].as_str().unwrap().contains("refused"),
        "{web_1}"
    );

    // Remove instead of Quiescent: the destination goes.
    write("Remove");
    agent
        .wait_for("web-1 removed", |agent| {
            agent.destinations("10.100.0.100") == Some(vec![("10.100.0.12".to_owned(), 3)])
        })
        .await;

    // web-1 listens again: back with its weight after `rise` good checks.
    let first_task = serve(listen("10.100.0.11", port).await);
    agent
        .wait_for("web-1 back", |agent| agent.destinations("10.100.0.100") == both)
        .await;

    // Every real server down: the fallback takes the traffic.
    first_task.abort();
    second_task.abort();
    agent
        .wait_for("the fallback serves", |agent| {
            agent.destinations("10.100.0.100") == Some(vec![("10.100.0.13".to_owned(), 1)])
        })
        .await;
}
