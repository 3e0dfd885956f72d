//! Standalone mode: the intent source of the run loop that reads a folder of manifests (polled
//! every second, re-read when a file changes) and writes the status to a file after each pass;
//! `--once` stops after the first pass with its verdict as the exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use lvs_api::LvsNodeConfigStatus;
use lvs_dataplane::Dataplane;
use serde::Serialize;
use tokio::sync::watch;

use crate::node_config::{Intent, ManifestSource};
use crate::reconciler::{Outcome, Pass, Reconciler};
use crate::run_loop::IntentSource;
use crate::status::node_status;

/// How `run` behaves.
#[derive(Debug)]
pub struct Options {
    /// Manifest files and folders.
    pub manifests: Vec<PathBuf>,
    /// This node's name.
    pub node_name: String,
    /// Where to write the status after each pass.
    pub status_file: Option<PathBuf>,
    /// One pass, then exit.
    pub once: bool,
    /// Time between full observe-and-repair passes.
    pub resync: Duration,
}

/// The standalone status file: a summary of the last pass and the node status a Kubernetes
/// agent would write.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StandaloneStatus {
    /// This node.
    pub node: String,
    /// Director services in the config.
    pub director_services: usize,
    /// Real-server VIPs in the config.
    pub real_server_vips: usize,
    /// Operations the last pass planned.
    pub operations: usize,
    /// Kernel writes the last pass made.
    pub writes: u64,
    /// Failed operations, `object: message`, and ` [Reason]` when the failure has a condition
    /// reason of its own (`ForeignService`).
    pub failures: Vec<String>,
    /// Problems in the manifests, `error: file: object: field: message`.
    pub problems: Vec<String>,
    /// Drift repairs since start.
    pub drift_repairs: u64,
    /// Everything is programmed.
    pub synced: bool,
    /// The node status, as in `LvsNodeConfig.status`.
    pub status: LvsNodeConfigStatus,
}

/// How often the manifests are checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// Reconciles until stopped (or once). `ready` turns true after the first successful pass.
pub async fn run<D: Dataplane>(
    reconciler: Reconciler<D>,
    options: Options,
    ready: watch::Sender<bool>,
) -> anyhow::Result<ExitCode> {
    let resync = options.resync;
    let source = ManifestFolder {
        source: ManifestSource::new(options.manifests.clone(), &options.node_name),
        last_seen: None,
        status: StandaloneStatus::default(),
        options,
    };
    crate::run_loop::run(reconciler, source, resync, ready, crate::shutdown_signal()).await
}

/// The intent from a folder of manifests, polled for changes; the status to a file.
struct ManifestFolder {
    source: ManifestSource,
    options: Options,
    /// The files as they were when last read successfully.
    last_seen: Option<Fingerprint>,
    status: StandaloneStatus,
}

impl IntentSource for ManifestFolder {
    async fn changed(&mut self) -> anyhow::Result<()> {
        loop {
            tokio::time::sleep(POLL).await;
            if manifests_fingerprint(&self.options.manifests) != self.last_seen {
                return Ok(());
            }
        }
    }

    fn load(&mut self) -> Option<Result<Intent, String>> {
        let fingerprint = manifests_fingerprint(&self.options.manifests);
        let loaded = self.source.load().map_err(|error| format!("{error:#}"));
        if loaded.is_ok() {
            self.last_seen = fingerprint;
        }
        Some(loaded)
    }

    fn passed<D: Dataplane>(
        &mut self,
        reconciler: &Reconciler<D>,
        intent: Option<&Intent>,
        outcome: &Outcome,
        _pass: Pass,
    ) -> Option<ExitCode> {
        self.status = standalone_status(&self.options.node_name, reconciler, intent, outcome, &self.status);
        write_status(self.options.status_file.as_ref(), &self.status);
        if !self.options.once {
            return None;
        }
        let ok = outcome.synced && intent.is_some_and(|intent| !intent.has_errors());
        if !ok {
            for line in self.status.failures.iter().chain(
                self.status
                    .problems
                    .iter()
                    .filter(|line| line.starts_with("error")),
            ) {
                eprintln!("lvs-agent: {line}");
            }
        }
        Some(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

fn standalone_status<D: Dataplane>(
    node: &str,
    reconciler: &Reconciler<D>,
    intent: Option<&Intent>,
    outcome: &Outcome,
    previous: &StandaloneStatus,
) -> StandaloneStatus {
    let empty = lvs_api::LvsNodeConfigSpec::default();
    let config = intent.map_or(&empty, |intent| &intent.config);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    StandaloneStatus {
        node: node.to_owned(),
        director_services: config.director_services.len(),
        real_server_vips: config.real_server_vips.len(),
        operations: outcome.operations,
        writes: outcome.writes,
        failures: outcome
            .observe_error
            .iter()
            .map(|error| format!("reading the kernel: {error}"))
            .chain(outcome.failures.iter().map(|failure| match failure.reason {
                Some(reason) => format!("{}: {} [{reason}]", failure.object, failure.message),
                None => format!("{}: {}", failure.object, failure.message),
            }))
            .collect(),
        problems: intent
            .map(|intent| {
                intent
                    .problems
                    .iter()
                    .map(|(severity, line)| {
                        let label = if *severity == lvs_core::Severity::Error {
                            "error"
                        } else {
                            "warning"
                        };
                        format!("{label}: {line}")
                    })
                    .collect()
            })
            .unwrap_or_default(),
        drift_repairs: reconciler.drift_repairs(),
        synced: outcome.synced,
        status: node_status(
            config,
            None,
            outcome,
            reconciler.health(),
            reconciler.drift_repairs(),
            Some(&previous.status),
            &now,
        ),
    }
}

/// The manifest files with their sizes and modification times.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Changes whenever a manifest file is added, removed or modified.
fn manifests_fingerprint(paths: &[PathBuf]) -> Option<Fingerprint> {
    let mut entries = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let metadata = std::fs::metadata(&path).ok()?;
        if metadata.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .ok()?
                    .filter_map(|entry| entry.ok().map(|entry| entry.path())),
            );
        } else {
            entries.push((path, metadata.len(), metadata.modified().ok()));
        }
    }
    entries.sort();
    Some(entries)
}

fn write_status(path: Option<&PathBuf>, status: &StandaloneStatus) {
    let Some(path) = path else { return };
    match serde_json::to_vec_pretty(status) {
        Ok(bytes) => {
            // Write then rename, so readers never see half a file.
            let temporary = path.with_extension("tmp");
            if let Err(error) =
                std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path))
            {
                tracing::warn!(%error, path = %path.display(), "cannot write the status file");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot encode the status"),
    }
}
