//! Kubernetes mode: the intent source of the run loop that reads this node's own `LvsNodeConfig` shards (found by the
//! `lvs.operator.io/node` label; every agent watches only its own), status written back to each
//! shard by server-side apply — only when it changed, from a task of its own so a slow or dead
//! API server never holds up a pass. Nothing is reconciled before the first
//! complete listing, and a node whose shards are not all present never prunes. When the
//! controller deletes the node's config, the agent removes everything it programmed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use lvs_api::labels::NODE_NAME;
use lvs_api::{LvsNodeConfig, LvsNodeConfigSpec};
use lvs_core::Severity;
use lvs_dataplane::Dataplane;
use tokio::sync::watch;

use crate::node_config::Intent;
use crate::reconciler::{Outcome, Pass, Reconciler};
use crate::run_loop::IntentSource;
use crate::status::{node_status, same_status};
use crate::status_writer::StatusWriter;

/// How `run` behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's name (the downward API's `spec.nodeName`).
    pub node_name: String,
    /// This node's IPv4 address (the downward API's `status.hostIP`), announced by NFTablesARP.
    pub node_address: Option<Ipv4Addr>,
    /// Time between full observe-and-repair passes.
    pub resync: Duration,
}

/// Reconciles this node's config until `shutdown` resolves.
pub async fn run<D: Dataplane>(
    client: Client,
    reconciler: Reconciler<D>,
    options: Options,
    ready: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let api: Api<LvsNodeConfig> = Api::all(client);
    let selector = format!("{NODE_NAME}={}", options.node_name);
    let events = watcher::watcher(api.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let resync = options.resync;
    let source = NodeConfigWatch {
        events,
        shards: Shards::default(),
        writer: StatusWriter::start(api),
        options,
    };
    crate::run_loop::run(reconciler, source, resync, ready, shutdown).await?;
    Ok(())
}

/// The intent from this node's config shards, as the watch shows them; status written back
/// to each shard.
struct NodeConfigWatch {
    events: futures::stream::BoxStream<'static, Result<Event<LvsNodeConfig>, watcher::Error>>,
    shards: Shards,
    writer: StatusWriter,
    options: Options,
}

impl IntentSource for NodeConfigWatch {
    async fn changed(&mut self) -> anyhow::Result<()> {
        loop {
            match self.events.next().await {
                Some(Ok(event)) => {
                    self.shards.apply(event);
                    // Take every event that is already waiting before reconciling once.
                    while let Some(Some(Ok(event))) = self.events.next().now_or_never() {
                        self.shards.apply(event);
                    }
                    if self.shards.listed {
                        return Ok(());
                    }
                }
                Some(Err(error)) => tracing::warn!(%error, "watching this node's LvsNodeConfig"),
                None => anyhow::bail!("the LvsNodeConfig watch ended"),
            }
        }
    }

    fn load(&mut self) -> Option<Result<Intent, String>> {
        self.shards.listed.then(|| Ok(self.shards.intent(&self.options)))
    }

    fn passed<D: Dataplane>(
        &mut self,
        reconciler: &Reconciler<D>,
        _intent: Option<&Intent>,
        outcome: &Outcome,
        pass: Pass,
    ) -> Option<std::process::ExitCode> {
        write_statuses(&self.writer, &self.shards, reconciler, outcome, pass);
        None
    }
}

/// Hands the writer the status of every shard whose status changed.
fn write_statuses<D: Dataplane>(
    writer: &StatusWriter,
    shards: &Shards,
    reconciler: &Reconciler<D>,
    outcome: &Outcome,
    pass: Pass,
) {
    writer.retain(|name| shards.objects.contains_key(name));
    let written = writer.written();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut changed = BTreeMap::new();
    for (name, object) in &shards.objects {
        let previous = written.get(name).or(object.status.as_ref());
        let status = node_status(
            &object.spec,
            object.metadata.generation,
            outcome,
            reconciler.health(),
            reconciler.drift_repairs(),
            previous,
            &now,
        );
        // Health-check latencies and counts alone do not cause a write, except on resync.
        if previous.is_some_and(|previous| same_status(previous, &status, pass == Pass::Resync)) {
            continue;
        }
        changed.insert(name.clone(), status);
    }
    writer.write(changed);
}

/// This node's config shards as the watch has shown them.
#[derive(Debug, Default)]
struct Shards {
    objects: BTreeMap<String, LvsNodeConfig>,
    relisting: Option<BTreeMap<String, LvsNodeConfig>>,
    listed: bool,
}

impl Shards {
    fn apply(&mut self, event: Event<LvsNodeConfig>) {
        match event {
            Event::Init => self.relisting = Some(BTreeMap::new()),
            Event::InitApply(object) => {
                self.relisting
                    .get_or_insert_with(BTreeMap::new)
                    .insert(object.name_any(), object);
            }
            Event::InitDone => {
                self.objects = self.relisting.take().unwrap_or_default();
                self.listed = true;
            }
            Event::Apply(object) => {
                self.objects.insert(object.name_any(), object);
            }
            Event::Delete(object) => {
                self.objects.remove(&object.name_any());
            }
        }
    }

    /// The node's whole config, when every shard is here; else the shards we have, marked
    /// incomplete.
    fn intent(&self, options: &Options) -> Intent {
        let mut shards: Vec<&LvsNodeConfig> = self.objects.values().collect();
        shards.sort_by_key(|shard| shard.spec.shard.index);
        let mut problems = Vec::new();
        let count = shards.first().map_or(1, |shard| shard.spec.shard.count.max(1));
        // No shard at all is a complete answer: the controller removed this node's config.
        let complete = shards.is_empty()
            || shards.iter().all(|shard| shard.spec.shard.count.max(1) == count)
                && shards.len() == usize::try_from(count).unwrap_or(usize::MAX)
                && shards
                    .iter()
                    .zip(0..)
                    .all(|(shard, index): (&&LvsNodeConfig, u32)| shard.spec.shard.index == index);
        if !complete {
            problems.push((
                Severity::Warning,
                format!(
                    "{} of {count} LvsNodeConfig shards of node {} present: programming them without removing anything",
                    shards.len(),
                    options.node_name
                ),
            ));
        }
        let mut config = LvsNodeConfigSpec {
            node_name: options.node_name.clone(),
            ..LvsNodeConfigSpec::default()
        };
        for shard in shards {
            if shard.spec.node_name != options.node_name {
                problems.push((
                    Severity::Error,
                    format!(
                        "LvsNodeConfig {}: spec.nodeName is {:?} but its label says {}: ignored",
                        shard.name_any(),
                        shard.spec.node_name,
                        options.node_name
                    ),
                ));
                continue;
            }
            config
                .director_services
                .extend(shard.spec.director_services.iter().cloned());
            config
                .real_server_vips
                .extend(shard.spec.real_server_vips.iter().cloned());
            for sysctl in &shard.spec.sysctls {
                if !config.sysctls.contains(sysctl) {
                    config.sysctls.push(sysctl.clone());
                }
            }
        }
        Intent {
            config,
            node_address: options.node_address,
            problems,
            complete,
        }
    }
}
