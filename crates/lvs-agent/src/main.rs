//! `lvs-agent`: programs this node's share of the load balancer — as a director, a real server,
//! or both — from its resolved config, in standalone mode from a folder of the same YAML users
//! `kubectl apply`.

use lvs_agent::{node_config, reconcile};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
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
    #[command(flatten)]
    source: Option<Source>,
    /// Reconcile once and exit: 0 when everything is programmed, 1 with the reasons otherwise.
    #[arg(long)]
    once: bool,
    /// Where to keep the record of what this agent owns in the kernel.
    #[arg(long, default_value = "/run/lvs-operator/owned.json")]
    registry: PathBuf,
    /// Write the status as JSON to this file after each reconcile.
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// Seconds between full observe-and-repair passes (drift repair).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    resync_seconds: u64,
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lvs-agent: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lvs-agent: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Plan {
            source,
            from_empty,
            registry,
        }) => {
            let intent = node_config::load(&source.manifests, &source.node_name)?;
            intent.report_problems();
            let observed = if from_empty {
                lvs_dataplane::model::NodeState::default()
            } else {
                let settings = LinuxSettings {
                    registry: RegistryStore::File(registry),
                    ..LinuxSettings::default()
                };
                let dataplane = LinuxDataplane::connect(settings).await.map_err(|error| {
                    anyhow::anyhow!("cannot read this node's kernel state ({error}); use --from-empty to plan from nothing")
                })?;
                lvs_dataplane::Dataplane::observe(&dataplane).await?
            };
            for op in lvs_dataplane::plan(&intent.desired(&|_, _| lvs_dataplane::desired::Health::Unknown), &observed) {
                println!("{op}");
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let RunArguments {
                standalone,
                source,
                once,
                registry,
                status_file,
                resync_seconds,
            } = cli.run;
            let Some(source) = source.filter(|_| standalone) else {
                anyhow::bail!(
                    "Kubernetes mode is not available yet: run with --standalone --manifests DIR --node-name NAME"
                );
            };
            let settings = LinuxSettings {
                registry: RegistryStore::File(registry),
                ..LinuxSettings::default()
            };
            let dataplane = LinuxDataplane::connect(settings).await?;
            let options = reconcile::Options {
                manifests: source.manifests,
                node_name: source.node_name,
                status_file,
                once,
                resync: std::time::Duration::from_secs(resync_seconds),
            };
            reconcile::run(&dataplane, options).await
        }
    }
}
