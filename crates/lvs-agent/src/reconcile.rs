//! The reconcile loop: resolve intent → observe the kernel → plan → apply → report; again when
//! the manifests change and on a resync timer that repairs drift. Pruning happens only through
//! the plan, which covers only what the ownership record says is ours.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use lvs_dataplane::{Dataplane, plan};
use serde::Serialize;

use crate::node_config;

/// How `run` behaves.
#[derive(Debug)]
pub struct Options {
    pub manifests: Vec<PathBuf>,
    pub node_name: String,
    pub status_file: Option<PathBuf>,
    pub once: bool,
    /// Time between full observe-and-repair passes.
    pub resync: Duration,
}

/// What the last reconcile did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    node: String,
    director_services: usize,
    real_server_vips: usize,
    operations: usize,
    writes: u64,
    failures: Vec<String>,
    problems: Vec<String>,
    drift_repairs: u64,
    synced: bool,
}

const POLL: Duration = Duration::from_secs(1);

/// Reconciles until stopped (or once).
pub async fn run(dataplane: &impl Dataplane, options: Options) -> anyhow::Result<ExitCode> {
    let mut last_seen = None;
    let mut last_sync = None::<std::time::Instant>;
    let mut drift_repairs = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        let fingerprint = manifests_fingerprint(&options.manifests);
        let due = last_sync.is_none_or(|time| time.elapsed() >= options.resync);
        if options.once || fingerprint != last_seen || due {
            let changed = fingerprint != last_seen;
            let status = reconcile_once(
                dataplane,
                &options,
                &mut drift_repairs,
                changed || last_sync.is_none(),
            )
            .await;
            write_status(&options, &status);
            if options.once {
                return Ok(
                    if status.synced && status.problems.iter().all(|line| !line.starts_with("error")) {
                        ExitCode::SUCCESS
                    } else {
                        for failure in &status.failures {
                            eprintln!("lvs-agent: {failure}");
                        }
                        ExitCode::FAILURE
                    },
                );
            }
            if status.synced {
                last_seen = fingerprint;
                last_sync = Some(std::time::Instant::now());
                backoff = Duration::from_millis(100);
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn reconcile_once(
    dataplane: &impl Dataplane,
    options: &Options,
    drift_repairs: &mut u64,
    expected_change: bool,
) -> Status {
    let mut status = Status {
        node: options.node_name.clone(),
        drift_repairs: *drift_repairs,
        ..Status::default()
    };
    let intent = match node_config::load(&options.manifests, &options.node_name) {
        Ok(intent) => intent,
        Err(error) => {
            status.failures.push(format!("reading manifests: {error:#}"));
            return status;
        }
    };
    intent.report_problems();
    status.problems = intent
        .problems
        .iter()
        .map(|(severity, line)| {
            format!(
                "{}: {line}",
                if *severity == lvs_core::Severity::Error {
                    "error"
                } else {
                    "warning"
                }
            )
        })
        .collect();
    status.director_services = intent.config.director_services.len();
    status.real_server_vips = intent.config.real_server_vips.len();
    let observed = match dataplane.observe().await {
        Ok(observed) => observed,
        Err(error) => {
            status.failures.push(format!("observing the kernel: {error}"));
            return status;
        }
    };
    let ops = plan(&intent.desired(&|_, _| lvs_dataplane::desired::Health::Unknown), &observed);
    status.operations = ops.len();
    if !ops.is_empty() && !expected_change {
        *drift_repairs += 1;
        status.drift_repairs = *drift_repairs;
        tracing::warn!(
            operations = ops.len(),
            "kernel drifted from the config; repairing"
        );
    }
    for op in &ops {
        tracing::info!(node = %options.node_name, "{op}");
    }
    let writes_before = dataplane.write_count();
    let report = dataplane.apply(ops).await;
    status.writes = dataplane.write_count() - writes_before;
    status.failures = report
        .failures
        .iter()
        .map(|failure| failure.error.to_string())
        .collect();
    status.synced = report.is_success();
    tracing::info!(
        node = %options.node_name,
        services = status.director_services,
        vips = status.real_server_vips,
        operations = status.operations,
        failures = status.failures.len(),
        "reconciled"
    );
    status
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

fn write_status(options: &Options, status: &Status) {
    let Some(path) = &options.status_file else { return };
    match serde_json::to_vec_pretty(status) {
        Ok(bytes) => {
            if let Err(error) = std::fs::write(path, bytes) {
                tracing::warn!(%error, path = %path.display(), "cannot write the status file");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot encode the status"),
    }
}
