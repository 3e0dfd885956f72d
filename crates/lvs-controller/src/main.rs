//! `lvs-controller`: resolves VirtualServers and RealServers into one LvsNodeConfig per node,
//! and reports what the node agents did back into their status, with Events. Several replicas
//! may run; the one holding the Lease writes.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use lvs_controller::{controller, crds, leader, metrics::Metrics, server, shutdown_signal};
use tokio::sync::watch;

/// The lvs-operator controller.
#[derive(Parser, Debug)]
#[command(name = "lvs-controller", version, about)]
struct Cli {
    /// Elect one active replica on a coordination.k8s.io Lease (required with more than one
    /// replica); without it this replica always writes.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the leader-election Lease (the controller's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "lvs-system")]
    leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "lvs-controller")]
    leader_election_lease_name: String,
    /// This replica's identity in the Lease and in Events (default: the pod name, else the host
    /// name).
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, env = "LVS_METRICS_ADDRESS", default_value = "0.0.0.0:9760")]
    metrics_address: SocketAddr,
    /// Milliseconds between a change and the reconcile it triggers (changes meanwhile join it).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    debounce_ms: u64,
    /// Seconds between full reconciles when nothing changes.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    resync_seconds: u64,
    /// Log format.
    #[arg(long, value_enum, default_value = "plain", env = "LVS_LOG_FORMAT")]
    log_format: lvs_runtime::LogFormat,
    /// The cluster's Service network (ClusterIP range), repeatable or comma-separated: refused
    /// as VIPs and backends unless an AddressPool names it (chart value `serviceCIDRs`).
    #[arg(long = "service-cidr", env = "LVS_SERVICE_CIDRS", value_delimiter = ',', value_parser = lvs_core::ClusterSettings::parse_service_network)]
    service_cidrs: Vec<lvs_core::pool::AddressRange>,
    /// The packet-mark bits the directors' marking rules for fwmark VirtualServers write, decimal
    /// or 0x-hex (default 0xff); every such fwmark must lie inside them, and the other bits of
    /// the packet mark are left alone (chart value `fwmarkMask`).
    #[arg(long, env = "LVS_FWMARK_MASK", default_value = "0xff", value_parser = lvs_core::ClusterSettings::parse_fwmark_mask)]
    fwmark_mask: u32,
    /// Serve `type: LoadBalancer` Services without `spec.loadBalancerClass` too, besides those
    /// of class `lvs.operator.io/ipvs` (default false; chart value `services.defaultClass`).
    #[arg(long, env = "LVS_DEFAULT_LOAD_BALANCER_CLASS")]
    default_load_balancer_class: bool,
    /// Secrets in the controller's namespace that hold the failover keys of the director sets,
    /// repeatable or comma-separated: each missing one is created with a random key, an existing
    /// one is never changed (chart: one per `agent.failover.directorSets` entry).
    #[arg(
        long = "failover-key-secret",
        env = "LVS_FAILOVER_KEY_SECRETS",
        value_delimiter = ','
    )]
    failover_key_secrets: Vec<String>,
    /// Print every API request the controller makes, in RBAC terms, as JSON, and exit.
    #[arg(long)]
    print_api_requests: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_api_requests {
        let json = format!("{:#}\n", lvs_controller::access::requests_json());
        return match std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    lvs_runtime::init_logging(cli.log_format);
    lvs_runtime::block_on("lvs-controller", async move {
        run(cli).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// This host's name, for the default identity.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("lvs-controller-{}", std::process::id()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .map_err(|error| anyhow::anyhow!("cannot reach the Kubernetes API: {error}"))?;
    crds::check(&client).await?;
    let identity = cli.leader_election_identity.clone().unwrap_or_else(host_name);

    // One shutdown signal, seen by every task.
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop.send_replace(true);
    });
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };

    let metrics = Metrics::new();
    let (ready, ready_receiver) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(cli.metrics_address)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {} for /metrics: {error}", cli.metrics_address))?;
    let served = Arc::clone(&metrics);
    let serving = stopped();
    tokio::spawn(async move {
        if let Err(error) = server::serve(listener, served, ready_receiver, serving).await {
            tracing::error!(%error, "the /metrics server stopped");
        }
    });

    tokio::spawn(lvs_controller::failover_keys::ensure_until_done(
        client.clone(),
        cli.leader_election_namespace.clone(),
        cli.failover_key_secrets.clone(),
        Duration::from_secs(10),
    ));
    let (leading, leader) = watch::channel(!cli.leader_election);
    let mut _always_leading = None;
    let election = if cli.leader_election {
        let settings = leader::Settings::new(
            &cli.leader_election_namespace,
            &cli.leader_election_lease_name,
            &identity,
        );
        Some(tokio::spawn(leader::run(
            client.clone(),
            settings,
            leading,
            stopped(),
        )))
    } else {
        tracing::warn!("leader election is off (--leader-election): run a single replica only");
        _always_leading = Some(leading);
        None
    };
    let options = controller::Options {
        debounce: Duration::from_millis(cli.debounce_ms),
        resync: Duration::from_secs(cli.resync_seconds),
        instance: Some(identity),
        settings: lvs_core::ClusterSettings {
            service_networks: cli.service_cidrs.clone(),
            fwmark_mask: cli.fwmark_mask,
        },
        service_class: lvs_core::service::ServiceClass {
            default_class: cli.default_load_balancer_class,
        },
    };
    let result = controller::run(client, options, leader, metrics, ready, stopped()).await;
    if let Some(election) = election {
        // Let the election release the Lease, for a fast hand-over.
        let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
    }
    result
}
