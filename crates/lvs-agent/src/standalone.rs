//! Standalone mode: intent from a folder of manifests, re-read when it changes; a pass on every
//! change (manifests or real-server health), a full observe-and-repair pass on the resync timer
//! and when drift is found between passes (`drift`), retries of failed objects on their backoff;
//! status to a file and the log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use lvs_api::LvsNodeConfigStatus;
use lvs_dataplane::Dataplane;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::node_config::{Intent, ManifestSource};
use crate::reconciler::{Outcome, Pass, Reconciler};
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
    /// Failed operations, `object: message`.
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
    mut reconciler: Reconciler<D>,
    options: Options,
    ready: watch::Sender<bool>,
) -> anyhow::Result<ExitCode> {
    let mut source = ManifestSource::new(options.manifests.clone(), &options.node_name);
    let mut health_changes = reconciler.health().subscribe();
    let mut role_changes = reconciler.failover().map(crate::ha::Failover::subscribe);
    let mut last_seen = None;
    let mut next_resync = Instant::now();
    let mut status = StandaloneStatus::default();
    let mut pending = Some(Pass::Change);
    let mut cached: Option<Intent> = None;
    let mut drift = crate::drift::DriftWatch::new(reconciler.dataplane().as_ref());
    let mut synced = false;
    // The pending pass repairs drift found between passes: the files did not change, so the
    // intent as last read is reused (reading and resolving them is most of a pass's time).
    let mut repair = false;
    loop {
        if let Some(pass) = pending.take() {
            let fingerprint = manifests_fingerprint(&options.manifests);
            // Manifests changed too: a health-only pass would leave the rest of the change out.
            let pass = if matches!(pass, Pass::Health | Pass::Failover) && fingerprint != last_seen {
                Pass::Change
            } else {
                pass
            };
            // Health verdicts and retries reuse the intent as last read: the files did not
            // change, and reading and resolving them again is the whole build.
            let loaded = match cached.take() {
                Some(intent)
                    if (matches!(pass, Pass::Health | Pass::Retry | Pass::Failover) || repair)
                        && fingerprint == last_seen =>
                {
                    Ok(intent)
                }
                _ => source.load().inspect(Intent::report_problems),
            };
            repair = false;
            let (outcome, intent) = match loaded {
                Ok(intent) => {
                    drift.pass_started();
                    let outcome = reconciler.reconcile(&intent, pass).await;
                    (outcome, Some(intent))
                }
                Err(error) => {
                    tracing::error!("reading the manifests: {error:#}");
                    let outcome = Outcome {
                        failures: vec![("manifests".to_owned(), format!("{error:#}"))],
                        ..Outcome::default()
                    };
                    (outcome, None)
                }
            };
            status = standalone_status(
                &options.node_name,
                &reconciler,
                intent.as_ref(),
                &outcome,
                &status,
            );
            write_status(options.status_file.as_ref(), &status);
            let ok = outcome.synced && intent.as_ref().is_some_and(|intent| !intent.has_errors());
            if options.once {
                if !ok {
                    for line in status
                        .failures
                        .iter()
                        .chain(status.problems.iter().filter(|line| line.starts_with("error")))
                    {
                        eprintln!("lvs-agent: {line}");
                    }
                }
                return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            if intent.is_some() {
                last_seen = fingerprint;
            }
            cached = intent;
            synced = outcome.synced;
            if outcome.synced {
                ready.send_replace(true);
            }
            if pass != Pass::Retry || outcome.synced {
                next_resync = Instant::now() + options.resync;
            }
        }
        let retry = reconciler.next_retry();
        tokio::select! {
            () = tokio::time::sleep(POLL) => {
                if manifests_fingerprint(&options.manifests) != last_seen {
                    pending = Some(Pass::Change);
                }
            }
            changed = health_changes.changed() => {
                if changed.is_ok() && pending.is_none() {
                    pending = Some(Pass::Health);
                }
            }
            () = crate::ha::role_changed(role_changes.as_mut()) => {
                if pending.is_none() {
                    pending = Some(Pass::Failover);
                }
            }
            () = lvs_runtime::sleep_until_some(retry) => pending = Some(Pass::Retry),
            () = tokio::time::sleep_until(next_resync) => pending = Some(Pass::Resync),
            () = drift.drifted(&reconciler, synced) => {
                pending = Some(Pass::Resync);
                repair = true;
            }
            () = crate::shutdown_signal() => return Ok(ExitCode::SUCCESS),
        }
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
            .chain(
                outcome
                    .failures
                    .iter()
                    .map(|(object, message)| format!("{object}: {message}")),
            )
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

/// Changes whenever a manifest file is added, removed or modified.
fn manifests_fingerprint(paths: &[PathBuf]) -> Option<Vec<(PathBuf, u64, Option<SystemTime>)>> {
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
