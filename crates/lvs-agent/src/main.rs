//! `lvs-agent`: programs this node's share of the load balancer — as a director, a real server,
//! or both — from its `LvsNodeConfig` in Kubernetes, or in standalone mode from a folder of the
//! same YAML users `kubectl apply`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lvs_agent::health::{Concurrency, HealthMonitor};
use lvs_agent::metrics::Metrics;
use lvs_agent::reconciler::Reconciler;
use lvs_agent::{kubernetes, node_config, shutdown_signal, standalone};
use lvs_dataplane::linux::kernel::{LinuxDataplane, LinuxSettings};
use lvs_dataplane::ownership::RegistryStore;

/// The lvs-operator node agent.
#[derive(Parser, Debug)]
#[command(name = "lvs-agent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArguments,
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "plain",
        env = "LVS_LOG_FORMAT",
        global = true
    )]
    log_format: lvs_runtime::LogFormat,
}

#[derive(Args, Debug)]
struct Source {
    /// Folder (or files) of VirtualServer, RealServer and Node YAML.
    #[arg(long = "manifests", required = true, num_args = 1..)]
    manifests: Vec<PathBuf>,
    /// This node's name, as in its Node object.
    #[arg(long = "node-name", env = "NODE_NAME")]
    node_name: String,
}

#[derive(Args, Debug)]
struct RunArguments {
    /// Run from manifests on disk instead of a Kubernetes API server.
    #[arg(long)]
    standalone: bool,
    /// Folder (or files) of VirtualServer, RealServer and Node YAML (standalone mode).
    #[arg(long = "manifests", num_args = 1.., requires = "standalone")]
    manifests: Vec<PathBuf>,
    /// This node's name (from the downward API's spec.nodeName in Kubernetes).
    #[arg(long = "node-name", env = "NODE_NAME")]
    node_name: Option<String>,
    /// This node's IPv4 address, announced for the NFTablesARP method (Kubernetes mode; from the
    /// downward API's status.hostIP). Standalone mode reads it from the Node manifest.
    /// An IPv6 address is accepted and ignored (NFTablesARP is IPv4-only).
    #[arg(long = "node-address", env = "NODE_IP")]
    node_address: Option<IpAddr>,
    /// Where the kernel's sysctls are: /proc/sys, or the host's /proc/sys mounted elsewhere in a
    /// container (a container cannot mount over its own /proc).
    #[arg(long, env = "LVS_SYSCTL_ROOT", default_value = "/proc/sys", global = true)]
    sysctl_root: PathBuf,
    /// Reconcile once and exit: 0 when everything is programmed, 1 with the reasons otherwise
    /// (standalone mode).
    #[arg(long, requires = "standalone")]
    once: bool,
    /// Where to keep the record of what this agent owns in the kernel.
    #[arg(long, default_value = "/run/lvs-operator/owned.json")]
    registry: PathBuf,
    /// Write the status as JSON to this file after each reconcile (standalone mode).
    #[arg(long, requires = "standalone")]
    status_file: Option<PathBuf>,
    /// Seconds between full observe-and-repair passes (drift repair).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    resync_seconds: u64,
    /// Serve /healthz, /readyz and /metrics on this address (`10.0.0.1`, `fd00::1`; with a
    /// port, `10.0.0.1:9750` or `[fd00::1]:9750`, it overrides --metrics-port). Kubernetes mode
    /// default: the node's own address (--node-address, NODE_IP: the chart passes
    /// status.hostIP), else 127.0.0.1 — never every address, so neither a VIP nor another host
    /// address reaches it. `0.0.0.0` or `::` listens on all. Standalone mode serves only when
    /// this is given.
    #[arg(long, env = "LVS_METRICS_ADDRESS", value_parser = listen_address)]
    metrics_address: Option<ListenAddress>,
    /// Port of /healthz, /readyz and /metrics.
    #[arg(long, env = "LVS_METRICS_PORT", default_value_t = DEFAULT_METRICS_PORT)]
    metrics_port: u16,
    /// The shared secret failover heartbeats are signed and authenticated with (the same file on
    /// every director; at least 16 bytes, a trailing newline ignored). Without it this node never
    /// takes a VIP it shares with other directors. A peer signing with a key this node does not
    /// have is reported as a key mismatch (status message, `FailoverKeyMismatch` condition,
    /// `heartbeats_rejected{reason="key_mismatch"}`), not as silence.
    #[arg(long, env = "LVS_FAILOVER_KEY_FILE")]
    failover_key_file: Option<PathBuf>,
    /// A second key still accepted during a rotation (the one being replaced). Rotation: give
    /// every director the new key as --failover-key-file and the old one as this file (one
    /// rollout: an agent answers each peer under the key that peer last used, so rotated and
    /// not-yet-rotated directors keep hearing each other), then remove this file (a second
    /// rollout). A missing file is ignored, so the Secret may omit it.
    #[arg(long, env = "LVS_FAILOVER_PREVIOUS_KEY_FILE", requires = "failover_key_file")]
    failover_previous_key_file: Option<PathBuf>,
    /// UDP port of failover heartbeats, the same on every director.
    #[arg(long, env = "LVS_FAILOVER_PORT", default_value_t = 9751)]
    failover_port: u16,
    /// The address failover heartbeats are received on and sent from: the address the peer
    /// directors know this node by (its first InternalIP, whatever the VIPs' family). Default:
    /// the node's own address (--node-address, NODE_IP: the chart passes status.hostIP), else
    /// every address of both families (a dual-stack socket on [::]; 0.0.0.0 without IPv6).
    /// Whatever the bind, the input guard admits heartbeats only from the peer directors, each
    /// under a rate.
    #[arg(long, env = "LVS_FAILOVER_ADDRESS")]
    failover_address: Option<IpAddr>,
    /// Where the agent keeps its failover roles and groups, so that a restarted agent (a
    /// DaemonSet rollout, an OOM kill) holds its VIPs again at once instead of handing them
    /// over. Keep it on a tmpfs that lives as long as the node's kernel state (/run).
    #[arg(long, default_value = "/run/lvs-operator/failover.json")]
    failover_state: PathBuf,
    /// Seconds a director whose agent said it is restarting (SIGTERM) keeps the VIPs it holds
    /// without heartbeats, as long as it still answers ARP/NDP for them (probed every second):
    /// a rollout does not move VIPs, a director that really went away loses them within about
    /// a second of no longer answering.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    restart_hold_seconds: u64,
    /// Gratuitous ARPs / unsolicited NAs sent when this node takes a VIP.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    announce_count: u32,
    /// Milliseconds between them.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    announce_interval_ms: u64,
    /// Most health checks in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_concurrent_checks: u64,
    /// Most health checks of one VirtualServer in flight at once (at most
    /// --max-concurrent-checks): a VirtualServer with many slow real servers waits for its own
    /// checks, never delaying another's.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_concurrent_checks_per_virtual_server: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the operations a reconcile would perform, touching nothing.
    Plan {
        #[command(flatten)]
        source: Source,
        /// Plan against an empty kernel instead of reading this node's.
        #[arg(long)]
        from_empty: bool,
        /// The ownership record to read.
        #[arg(long, default_value = "/run/lvs-operator/owned.json")]
        registry: PathBuf,
    },
}

/// Port of /healthz, /readyz and /metrics unless told otherwise.
const DEFAULT_METRICS_PORT: u16 = 9750;

/// An address to listen on, with or without a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListenAddress {
    address: IpAddr,
    port: Option<u16>,
}

/// `10.0.0.1`, `fd00::1`, `[fd00::1]`, `10.0.0.1:9750` or `[fd00::1]:9750`.
fn listen_address(text: &str) -> Result<ListenAddress, String> {
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Ok(ListenAddress {
            address: socket.ip(),
            port: Some(socket.port()),
        });
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>()
        .map(|address| ListenAddress {
            address,
            port: None,
        })
        .map_err(|_| {
            format!(
                "{text:?} is not an address (10.0.0.1, fd00::1) or an address and port (10.0.0.1:9750, [fd00::1]:9750)"
            )
        })
}

/// Where heartbeats are received: the flag, else the node's address, else every IPv4 address.
fn failover_bind(arguments: &RunArguments) -> IpAddr {
    arguments
        .failover_address
        .or(arguments.node_address)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Where /metrics listens: the flag, else (Kubernetes mode) the node's address, else loopback;
/// `None` in standalone mode without the flag.
fn metrics_socket(arguments: &RunArguments) -> Option<SocketAddr> {
    let port = |listen: ListenAddress| {
        SocketAddr::new(listen.address, listen.port.unwrap_or(arguments.metrics_port))
    };
    match (arguments.metrics_address, arguments.standalone) {
        (Some(listen), _) => Some(port(listen)),
        (None, true) => None,
        (None, false) => {
            let address = arguments.node_address.unwrap_or_else(|| {
                tracing::warn!(
                    "no --metrics-address and no node address (NODE_IP): /metrics listens on 127.0.0.1 only, out of reach of Prometheus and kubelet probes"
                );
                IpAddr::from([127, 0, 0, 1])
            });
            Some(SocketAddr::new(address, arguments.metrics_port))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lvs_runtime::init_logging(cli.log_format);
    lvs_runtime::block_on("lvs-agent", run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Plan {
        source,
        from_empty,
        registry,
    }) = cli.command
    {
        return plan(source, from_empty, registry, cli.run.sysctl_root).await;
    }
    let arguments = cli.run;
    let Some(node_name) = arguments.node_name.clone() else {
        anyhow::bail!("the node name is missing: pass --node-name or set NODE_NAME");
    };
    if arguments.standalone && arguments.manifests.is_empty() {
        anyhow::bail!("standalone mode needs --manifests DIR");
    }
    let settings = LinuxSettings {
        registry: RegistryStore::File(arguments.registry.clone()),
        sysctl_root: arguments.sysctl_root.clone(),
        announce_count: arguments.announce_count,
        announce_interval: Duration::from_millis(arguments.announce_interval_ms),
        ..LinuxSettings::default()
    };
    let key = match &arguments.failover_key_file {
        Some(path) => {
            let previous = match &arguments.failover_previous_key_file {
                Some(path) if path.exists() => Some(read_key(path)?),
                _ => None,
            };
            Some(lvs_agent::ha::wire::HeartbeatKeys {
                current: read_key(path)?,
                previous,
            })
        }
        None => None,
    };
    if let Some(keys) = &key {
        tracing::info!(
            key_id = %keys.current.id(),
            previous_key_id = keys.previous.as_ref().map(|key| key.id()).unwrap_or_default(),
            "failover heartbeat keys"
        );
    }
    let dataplane = Arc::new(LinuxDataplane::connect(settings).await?);
    let metrics = Metrics::new(&node_name);
    let total = usize::try_from(arguments.max_concurrent_checks).unwrap_or(64);
    let concurrency = Concurrency {
        total,
        per_virtual_server: usize::try_from(arguments.max_concurrent_checks_per_virtual_server)
            .unwrap_or(8)
            .min(total),
    };
    let health = HealthMonitor::with_concurrency(concurrency, lvs_agent::metrics_observer(&metrics));
    let listens_for_heartbeats = key.is_some();
    let failover = lvs_agent::ha::start(
        Arc::clone(&dataplane),
        &node_name,
        lvs_agent::ha::Settings {
            port: arguments.failover_port,
            bind: failover_bind(&arguments),
            key,
            restart_store: lvs_agent::ha::RestartStore::file(&arguments.failover_state),
            restart_hold: Duration::from_secs(arguments.restart_hold_seconds),
        },
        Arc::clone(&metrics),
    )
    .await;
    let mut reconciler = Reconciler::new(Arc::clone(&dataplane), health, Arc::clone(&metrics), &node_name)
        .with_failover(failover);
    if listens_for_heartbeats {
        reconciler = reconciler.with_heartbeat_guard(arguments.failover_port);
    }
    let (ready, ready_receiver) = tokio::sync::watch::channel(false);
    if !arguments.once {
        serve_metrics(&arguments, &dataplane, &metrics, &reconciler, ready_receiver).await?;
    }
    let resync = Duration::from_secs(arguments.resync_seconds);
    if arguments.standalone {
        let options = standalone::Options {
            manifests: arguments.manifests,
            node_name,
            status_file: arguments.status_file,
            once: arguments.once,
            resync,
        };
        return standalone::run(reconciler, options, ready).await;
    }
    run_kubernetes(reconciler, node_name, arguments.node_address, resync, ready).await
}

/// Serves /healthz, /readyz and /metrics (Kubernetes mode: on the node's address, port 9750,
/// unless told otherwise; standalone: only when asked) and refreshes the IPVS counters every
/// 10 s.
async fn serve_metrics(
    arguments: &RunArguments,
    dataplane: &Arc<LinuxDataplane>,
    metrics: &Arc<Metrics>,
    reconciler: &Reconciler<LinuxDataplane>,
    ready: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(address) = metrics_socket(arguments) else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {address} for /metrics: {error}"))?;
    let served = Arc::clone(metrics);
    tokio::spawn(async move {
        if let Err(error) = lvs_agent::server::serve(listener, served, ready, shutdown_signal()).await {
            tracing::error!(%error, "the /metrics server stopped");
        }
    });
    tokio::spawn(lvs_agent::refresh_ipvs_metrics(
        Arc::clone(dataplane),
        Arc::clone(metrics),
        reconciler.service_names(),
        Duration::from_secs(10),
    ));
    Ok(())
}

/// Kubernetes mode: this node's LvsNodeConfig from the API server.
async fn run_kubernetes(
    reconciler: Reconciler<LinuxDataplane>,
    node_name: String,
    node_address: Option<IpAddr>,
    resync: Duration,
    ready: tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<ExitCode> {
    let client = kube::Client::try_default().await.map_err(|error| {
        anyhow::anyhow!(
            "cannot reach the Kubernetes API ({error}); to run without a cluster use --standalone --manifests DIR"
        )
    })?;
    let node_address = match node_address {
        Some(IpAddr::V4(address)) => Some(address),
        Some(IpAddr::V6(address)) => {
            tracing::info!(%address, "the node address is IPv6; NFTablesARP real servers need an IPv4 one");
            None
        }
        None => None,
    };
    let options = kubernetes::Options {
        node_name,
        node_address,
        resync,
    };
    kubernetes::run(client, reconciler, options, ready, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The failover key: the file's bytes without a trailing newline; at least 16 of them.
fn read_key(path: &std::path::Path) -> anyhow::Result<lvs_agent::ha::wire::HeartbeatKey> {
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow::anyhow!("cannot read the failover key {}: {error}", path.display()))?;
    let secret = bytes.trim_ascii_end();
    if secret.len() < 16 {
        anyhow::bail!(
            "the failover key {} has {} bytes; use at least 16 random ones (e.g. `head -c 32 /dev/urandom | base64`)",
            path.display(),
            secret.len()
        );
    }
    Ok(lvs_agent::ha::wire::HeartbeatKey::new(secret))
}

async fn plan(
    source: Source,
    from_empty: bool,
    registry: PathBuf,
    sysctl_root: PathBuf,
) -> anyhow::Result<ExitCode> {
    let intent = node_config::load(&source.manifests, &source.node_name)?;
    intent.report_problems();
    let lookups = lvs_agent::desired::uplink_lookups(&intent.config);
    let (observed, uplinks) = if from_empty {
        (
            lvs_dataplane::model::NodeState::default(),
            std::collections::BTreeMap::new(),
        )
    } else {
        let settings = LinuxSettings {
            registry: RegistryStore::File(registry),
            sysctl_root,
            ..LinuxSettings::default()
        };
        let dataplane = LinuxDataplane::connect(settings).await.map_err(|error| {
            anyhow::anyhow!(
                "cannot read this node's kernel state ({error}); use --from-empty to plan from nothing"
            )
        })?;
        let uplinks = lvs_dataplane::Dataplane::uplinks_of(&dataplane, &lookups).await?;
        (lvs_dataplane::Dataplane::observe(&dataplane).await?, uplinks)
    };
    let unknown = |_: &str, _: &str| lvs_agent::desired::Health::Unknown;
    for op in lvs_dataplane::plan(&intent.desired(&unknown, &uplinks), &observed) {
        println!("{op}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn arguments(flags: &[&str]) -> RunArguments {
        let mut command = vec!["lvs-agent", "--node-name", "n1"];
        command.extend_from_slice(flags);
        Cli::try_parse_from(command).unwrap().run
    }

    #[test]
    fn a_listen_address_takes_a_port_or_leaves_it_to_the_port_flag() {
        let parsed = |text| listen_address(text).map(|listen| (listen.address.to_string(), listen.port));
        assert_eq!(parsed("10.0.0.1"), Ok(("10.0.0.1".into(), None)));
        assert_eq!(parsed("10.0.0.1:9999"), Ok(("10.0.0.1".into(), Some(9999))));
        assert_eq!(parsed("fd00::1"), Ok(("fd00::1".into(), None)));
        assert_eq!(parsed("[fd00::1]"), Ok(("fd00::1".into(), None)));
        assert_eq!(parsed("[fd00::1]:9999"), Ok(("fd00::1".into(), Some(9999))));
        assert!(parsed("node-1").unwrap_err().contains("is not an address"));
    }

    #[test]
    fn the_agent_listens_on_the_node_address_by_default_never_on_every_address() {
        let kubernetes = arguments(&["--node-address", "10.0.0.7"]);
        assert_eq!(
            metrics_socket(&kubernetes),
            Some("10.0.0.7:9750".parse().unwrap())
        );
        assert_eq!(failover_bind(&kubernetes), IpAddr::from([10, 0, 0, 7]));
        assert_eq!(
            metrics_socket(&arguments(&[])),
            Some("127.0.0.1:9750".parse().unwrap()),
            "no node address: loopback"
        );
        let told = arguments(&[
            "--node-address",
            "10.0.0.7",
            "--metrics-address",
            "fd00::7",
            "--metrics-port",
            "9999",
            "--failover-address",
            "fd00::7",
        ]);
        assert_eq!(metrics_socket(&told), Some("[fd00::7]:9999".parse().unwrap()));
        assert_eq!(failover_bind(&told), "fd00::7".parse::<IpAddr>().unwrap());
        let standalone = arguments(&["--standalone", "--manifests", "/m"]);
        assert_eq!(metrics_socket(&standalone), None, "standalone: only when asked");
        assert_eq!(
            failover_bind(&standalone),
            IpAddr::from([0, 0, 0, 0]),
            "no node address: every IPv4 address, the input guard keeps strangers out"
        );
    }
}
