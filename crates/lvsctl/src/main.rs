//! `lvsctl` (or `kubectl lvs` when installed as `kubectl-lvs`): validate manifests and print the
//! per-node configs they resolve to, exactly as the controller and a standalone agent would.

mod files;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lvs_core::{ClusterSettings, Severity, build};

/// Validate lvs-operator manifests and show what each node would be configured to do.
#[derive(Parser, Debug)]
#[command(name = "lvsctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The cluster-wide settings the controller takes as flags (chart values), for a faithful build.
#[derive(clap::Args, Debug, Clone)]
struct Settings {
    /// The cluster's Service network (ClusterIP range), repeatable or comma-separated, as the
    /// controller's `--service-cidr`: refused as VIPs and backends.
    #[arg(long = "service-cidr", value_delimiter = ',', value_parser = ClusterSettings::parse_service_network)]
    service_cidrs: Vec<lvs_core::pool::AddressRange>,
    /// The packet-mark bits the directors write for fwmark services, as the controller's
    /// `--fwmark-mask` (default 0xff).
    #[arg(long, default_value = "0xff", value_parser = ClusterSettings::parse_fwmark_mask)]
    fwmark_mask: u32,
}

impl Settings {
    fn cluster(&self) -> ClusterSettings {
        ClusterSettings {
            service_networks: self.service_cidrs.clone(),
            fwmark_mask: self.fwmark_mask,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check AddressPool, VirtualServer, RealServer, Node and Namespace manifests; print one
    /// line per problem.
    Validate {
        /// Files or folders of YAML (folders are read recursively, *.yaml and *.yml).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Print every node's resolved LvsNodeConfig as YAML (what the controller would write).
    Build {
        /// Files or folders of YAML.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Print only this node's config.
        #[arg(long)]
        node: Option<String>,
        #[command(flatten)]
        settings: Settings,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lvsctl: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths, settings } => {
            let loaded = files::load(&paths, &settings.cluster())?;
            let lines = loaded.problem_lines();
            let errors = lines
                .iter()
                .filter(|(severity, _)| *severity == Severity::Error)
                .count();
            for (_, line) in &lines {
                println!("{line}");
            }
            if errors > 0 {
                eprintln!("{errors} error(s) in {} file(s)", loaded.file_count);
                Ok(ExitCode::FAILURE)
            } else {
                eprintln!(
                    "ok: {} file(s), {} VirtualServer(s), {} RealServer(s), {} Node(s)",
                    loaded.file_count,
                    loaded.manifests.virtual_servers.len(),
                    loaded.manifests.real_servers.len(),
                    loaded.manifests.nodes.len()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Build {
            paths,
            node,
            settings,
        } => {
            let loaded = files::load(&paths, &settings.cluster())?;
            let lines = loaded.problem_lines();
            for (_, line) in &lines {
                eprintln!("{line}");
            }
            let mut objects = loaded.output.node_config_objects();
            if let Some(node) = &node {
                objects.retain(|object| &object.spec.node_name == node);
                if objects.is_empty() {
                    eprintln!("node {node} has nothing to do");
                }
            }
            for object in &objects {
                print!("---\n{}", serde_saphyr::to_string(object)?);
            }
            let failed = lines.iter().any(|(severity, _)| *severity == Severity::Error);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// Builds with gating off, as standalone mode does.
pub(crate) fn build_standalone(
    manifests: &lvs_core::manifest::Manifests,
    settings: &ClusterSettings,
) -> lvs_core::BuildOutput {
    build(manifests.build_input(settings))
}
