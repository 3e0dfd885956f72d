//! One global reconcile, as a short typed pipeline: a [`Snapshot`] of the stores → build
//! (`lvs_core`, pure) → apply the node configs → mirror the objects generated from Services →
//! write the VirtualServer and RealServer statuses that changed → the Services' statuses →
//! Events on transitions. Writes happen only while this replica leads. A failed
//! request is counted and the others go on; the caller retries the whole pass with backoff.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use lvs_api::labels::CONTROLLER_FIELD_MANAGER;
use lvs_api::{
    AddressPool, AddressPoolStatus, LvsNodeConfig, RealServer, RealServerStatus, VirtualServer,
    VirtualServerStatus,
};
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::{BuildCache, ClusterSettings};
use serde::Serialize;
use tokio::sync::watch;

use crate::apply::{self, Memory, Shards};
use crate::events::{
    DIRECTOR_CHANGED, NO_ACTIVE_DIRECTOR, Notice, Publisher, UNREADABLE, director_notices, directors_settled,
    duplicate_notices, real_server_notices, virtual_server_notices,
};
use crate::metrics::{ConditionCounts, Metrics};
use crate::services::{Pass, Services};
use crate::status::{
    AgentReports, Service, StatusInputs, address_pool_status, real_server_status, same_address_pool_status,
    same_real_server_status, same_virtual_server_status, virtual_server_status,
};
use crate::watch::{Snapshot, Unreadable};
use crate::{desired, written::Written};

/// Why a pass stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Leadership was lost during the pass; the new leader takes over.
    #[error("this replica stopped leading")]
    NotLeader,
    /// Some requests failed.
    #[error("{failed} API request(s) failed; the first: {first}")]
    Requests {
        /// How many.
        failed: usize,
        /// The first failure, with what it was about.
        first: String,
    },
}

/// What a pass wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Node configs applied.
    pub applied: usize,
    /// Node configs deleted.
    pub deleted: usize,
    /// Objects generated from Services created, updated or deleted.
    pub mirrored: usize,
    /// Statuses written.
    pub statuses: usize,
    /// Events published.
    pub events: usize,
}

/// The reconcile state that outlives one pass: what was written and not yet seen in the stores,
/// and which unreadable objects were reported.
pub struct Reconciler {
    client: Client,
    settings: ClusterSettings,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    memory: Memory,
    /// What the last pass built, reused where nothing it read changed.
    cache: BuildCache,
    /// The last pass's node configs as objects, reused for the nodes whose config is the same.
    shards: Shards,
    /// What each RealServer's status was last computed from.
    inputs: StatusInputs,
    virtual_statuses: Written<VirtualServerStatus>,
    real_statuses: Written<RealServerStatus>,
    pool_statuses: Written<AddressPoolStatus>,
    reported: BTreeSet<(Option<String>, Option<String>)>,
    /// Each VirtualServer's active director as last seen settled (not while its directors catch
    /// up with a new generation, when none is known), for the director-change Events.
    active_directors: BTreeMap<String, Option<String>>,
    /// The LoadBalancer Services of our class: settings in force, VIPs picked and written.
    services: Services,
}

/// Failed requests of one pass.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, metrics: &Metrics, operation: &'static str, message: String) {
        tracing::warn!(operation, "{message}");
        metrics.request_failed(operation);
        self.count += 1;
        self.first.get_or_insert(message);
    }
}

/// Requests a pass keeps in flight at once: enough to hide the API server's round trip (the
/// first pass of a large estate writes tens of thousands of statuses), few enough not to crowd
/// the API server's priority-and-fairness queue for this controller.
pub const IN_FLIGHT: usize = 16;

/// One status to write, with the Events to publish once it is written.
struct PendingStatus<S> {
    key: ObjectKey,
    /// The resourceVersion of the object the status replaces.
    replaced: Option<String>,
    status: S,
    notices: Vec<Notice>,
    reference: ObjectReference,
}

impl<S> PendingStatus<S> {
    fn new<K: Resource<DynamicType = ()>>(
        key: ObjectKey,
        object: &K,
        status: S,
        notices: Vec<Notice>,
    ) -> Self {
        Self {
            key,
            replaced: object.meta().resource_version.clone(),
            status,
            notices,
            reference: object.object_ref(&()),
        }
    }
}

/// How one status write went.
enum Outcome {
    /// Written; this many Events published.
    Written { events: usize },
    /// The object is gone.
    Gone,
    /// The request failed.
    Failed(String),
    /// Not sent: this replica stopped leading.
    NotLeader,
}

impl Outcome {
    /// Counts the outcome into the pass: `Some(events)` when written, `None` when not (a failure
    /// is added to `failures`); an error when leadership was lost.
    fn settle(
        self,
        key: &ObjectKey,
        metrics: &Metrics,
        summary: &mut Summary,
        failures: &mut Failures,
    ) -> Result<Option<usize>, ReconcileError> {
        match self {
            Self::Written { events } => {
                summary.statuses += 1;
                Ok(Some(events))
            }
            Self::Gone => {
                tracing::debug!(object = %key, "gone before its status was written");
                Ok(None)
            }
            Self::Failed(message) => {
                failures.add(metrics, "status", message);
                Ok(None)
            }
            Self::NotLeader => Err(ReconcileError::NotLeader),
        }
    }
}

/// The API of namespaced objects of kind `K`, by namespace.
fn namespaced<K>(client: &Client) -> impl Fn(&str) -> Api<K> + '_
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    move |namespace| Api::namespaced(client.clone(), namespace)
}

/// `Err(NotLeader)` unless `leader` holds.
pub(crate) fn ensure_leading(leader: &watch::Receiver<bool>) -> Result<(), ReconcileError> {
    if *leader.borrow() {
        Ok(())
    } else {
        Err(ReconcileError::NotLeader)
    }
}

fn status_patch<K: Resource<DynamicType = ()>>(status: &impl Serialize) -> Patch<serde_json::Value> {
    Patch::Apply(serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    }))
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

impl Reconciler {
    /// A reconciler writing through `client`, building with the cluster-wide `settings`.
    pub fn new(
        client: Client,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        settings: ClusterSettings,
    ) -> Self {
        Self {
            client,
            settings,
            publisher,
            metrics,
            memory: Memory::default(),
            cache: BuildCache::default(),
            shards: Shards::default(),
            inputs: StatusInputs::default(),
            virtual_statuses: Written::default(),
            real_statuses: Written::default(),
            pool_statuses: Written::default(),
            reported: BTreeSet::new(),
            active_directors: BTreeMap::new(),
            services: Services::default(),
        }
    }

    /// Serving the LoadBalancer Services `class` selects.
    pub fn serving(mut self, class: lvs_core::service::ServiceClass) -> Self {
        self.services = Services::new(class);
        self
    }

    /// Forgets what was written and built (on gaining leadership and on resync: trust the
    /// stores, build everything anew).
    pub fn forget(&mut self) {
        self.cache = BuildCache::default();
        self.inputs = StatusInputs::default();
        self.memory.clear();
        self.virtual_statuses.clear();
        self.real_statuses.clear();
        self.pool_statuses.clear();
        self.services.forget();
    }

    /// One pass over `snapshot`, writing only while `leader` holds `true`.
    pub async fn reconcile(
        &mut self,
        snapshot: &Snapshot,
        leader: &watch::Receiver<bool>,
    ) -> Result<Summary, ReconcileError> {
        let now = Time(Timestamp::now());
        let mut summary = Summary::default();
        let mut failures = Failures::default();
        self.report_unreadable(&snapshot.unreadable, leader, &mut summary)
            .await?;

        let mut generated = self.services.derive(snapshot);
        let mut output = desired::build(snapshot, &generated, &self.settings, &mut self.cache);
        if self.services.record_picks(&generated, &output) {
            // A Service got its VIP: derive its other ports on it and build again, so that the
            // node configs written below serve every port at once.
            generated = self.services.derive(snapshot);
            output = desired::build(snapshot, &generated, &self.settings, &mut self.cache);
        }
        let node_configs = self.shards.objects(&output.node_configs);
        let node_config_count = node_configs.len();
        self.apply_node_configs(node_configs, snapshot, leader, &mut summary, &mut failures)
            .await?;
        let mirrored = self
            .services
            .mirror(&self.client, snapshot, &generated, leader)
            .await?;
        summary.mirrored += mirrored.writes;
        for message in mirrored.failures {
            failures.add(&self.metrics, "mirror", message);
        }

        let reports = AgentReports::new(&snapshot.node_configs);
        // Read from the objects the build used (a generated one, not its stored mirror): the
        // directors report the generation they were given.
        let services: BTreeMap<ObjectKey, Service> = snapshot
            .virtual_servers
            .iter()
            .filter(|object| !generated.excludes(Kind::VirtualServer, &object.metadata))
            .chain(&generated.virtual_servers)
            .filter_map(|object| {
                let key = key_of(Kind::VirtualServer, &object.metadata);
                let outcome = output
                    .virtual_servers
                    .get(&key)
                    .filter(|outcome| outcome.accepted)?;
                let service = Service::new(&key, object.metadata.generation, outcome, &output, &reports);
                Some((key, service))
            })
            .collect();
        let changed = self.inputs.changes(snapshot, &output, &services);
        let mut counts = ConditionCounts::default();
        // The objects whose statuses this pass keeps track of: what is remembered of others is
        // forgotten at the end.
        let mut virtual_names = HashSet::with_capacity(snapshot.virtual_servers.len());
        let mut real_names = HashSet::with_capacity(snapshot.real_servers.len());
        let mut pending = Vec::new();
        for object in &snapshot.virtual_servers {
            if !generated.writes_status(Kind::VirtualServer, &object.metadata) {
                continue;
            }
            let key = key_of(Kind::VirtualServer, &object.metadata);
            let name = key.qualified_name();
            virtual_names.insert(name.clone());
            let version = object.metadata.resource_version.as_deref();
            self.virtual_statuses.settle(&name, version);
            let previous = self
                .virtual_statuses
                .current(&name, version, object.status.as_ref());
            if let Some(previous) = previous
                && self
                    .inputs
                    .virtual_server_unchanged(&name, &key, version, &output, &changed)
            {
                counts.add("VirtualServer", &previous.conditions);
                continue;
            }
            let status = virtual_server_status(object, &output, services.get(&key), previous, &now);
            counts.add("VirtualServer", &status.conditions);
            if previous.is_some_and(|previous| same_virtual_server_status(previous, &status)) {
                self.inputs.record_virtual_server(&name, &key, version, &output);
                continue;
            }
            let mut notices = virtual_server_notices(
                previous.map_or(&[][..], |previous| &previous.conditions),
                &status.conditions,
            );
            notices.extend(duplicate_notices(
                previous.map_or(&[][..], |previous| &previous.conditions),
                &status.conditions,
            ));
            let settled = directors_settled(&status.conditions);
            if settled {
                notices.extend(director_notices(
                    self.active_directors.get(&name).map(Option::as_deref),
                    status.active_director.as_deref(),
                ));
            }
            pending.push(PendingStatus::new(key, object, status, notices));
        }
        let mut takeovers: BTreeMap<ObjectKey, Vec<Notice>> = BTreeMap::new();
        for (written, outcome) in self
            .write_statuses(namespaced::<VirtualServer>(&self.client), pending, leader)
            .await
        {
            if let Some(events) = outcome.settle(&written.key, &self.metrics, &mut summary, &mut failures)? {
                let name = written.key.qualified_name();
                let director_changes: Vec<Notice> = written
                    .notices
                    .iter()
                    .filter(|notice| [DIRECTOR_CHANGED, NO_ACTIVE_DIRECTOR].contains(&notice.reason.as_str()))
                    .cloned()
                    .collect();
                if !director_changes.is_empty() {
                    takeovers.insert(written.key.clone(), director_changes);
                }
                if directors_settled(&written.status.conditions) {
                    self.active_directors
                        .insert(name.clone(), written.status.active_director.clone());
                }
                self.inputs
                    .record_virtual_server(&name, &written.key, written.replaced.as_deref(), &output);
                self.virtual_statuses
                    .record(&name, written.replaced, written.status);
                summary.events += events;
            }
        }
        let mut pending = Vec::new();
        for object in &snapshot.real_servers {
            if !generated.writes_status(Kind::RealServer, &object.metadata) {
                continue;
            }
            let key = key_of(Kind::RealServer, &object.metadata);
            let name = key.qualified_name();
            real_names.insert(name.clone());
            let version = object.metadata.resource_version.as_deref();
            self.real_statuses.settle(&name, version);
            let previous = self.real_statuses.current(&name, version, object.status.as_ref());
            if let Some(previous) = previous
                && self
                    .inputs
                    .real_server_unchanged(&name, &key, version, &output, &changed)
            {
                counts.add("RealServer", &previous.conditions);
                continue;
            }
            let status = real_server_status(object, &output, &services, &reports, previous, &now);
            counts.add("RealServer", &status.conditions);
            if previous.is_some_and(|previous| same_real_server_status(previous, &status)) {
                self.inputs.record_real_server(&name, &key, version, &output);
                continue;
            }
            let notices = real_server_notices(
                previous.map_or(&[][..], |previous| &previous.conditions),
                &status.conditions,
            );
            pending.push(PendingStatus::new(key, object, status, notices));
        }
        for (written, outcome) in self
            .write_statuses(namespaced::<RealServer>(&self.client), pending, leader)
            .await
        {
            if let Some(events) = outcome.settle(&written.key, &self.metrics, &mut summary, &mut failures)? {
                let name = written.key.qualified_name();
                // Only a status written (or found the same) stands for its inputs: a failed
                // write is computed and retried next pass.
                self.inputs
                    .record_real_server(&name, &written.key, written.replaced.as_deref(), &output);
                self.real_statuses.record(&name, written.replaced, written.status);
                summary.events += events;
            }
        }
        self.write_pool_statuses(snapshot, &output, &now, leader, &mut summary, &mut failures)
            .await?;
        ensure_leading(leader)?;
        let pass = Pass {
            snapshot,
            generated: &generated,
            output: &output,
            served: &services,
            takeovers: &takeovers,
        };
        let (statuses, events, service_failures) =
            self.services.write(&self.client, &self.publisher, pass).await;
        summary.statuses += statuses;
        summary.events += events;
        for message in service_failures {
            failures.add(&self.metrics, "status", message);
        }
        self.virtual_statuses.retain(|name| virtual_names.contains(name));
        self.active_directors
            .retain(|name, _| virtual_names.contains(name));
        self.real_statuses.retain(|name| real_names.contains(name));
        self.inputs.remember_services(services);
        self.inputs.retain(|kind, name| match kind {
            Kind::VirtualServer => virtual_names.contains(name),
            _ => real_names.contains(name),
        });
        self.metrics.set_objects(&counts, node_config_count);

        match failures.first {
            None => Ok(summary),
            Some(first) => Err(ReconcileError::Requests {
                failed: failures.count,
                first,
            }),
        }
    }

    /// Writes the AddressPools' statuses that changed.
    async fn write_pool_statuses(
        &mut self,
        snapshot: &Snapshot,
        output: &lvs_core::BuildOutput,
        now: &Time,
        leader: &watch::Receiver<bool>,
        summary: &mut Summary,
        failures: &mut Failures,
    ) -> Result<(), ReconcileError> {
        let mut pending = Vec::new();
        for object in &snapshot.pools {
            let name = object.name_any();
            let version = object.metadata.resource_version.as_deref();
            self.pool_statuses.settle(&name, version);
            let previous = self.pool_statuses.current(&name, version, object.status.as_ref());
            let status = address_pool_status(object, output, previous, now);
            if previous.is_some_and(|previous| same_address_pool_status(previous, &status)) {
                continue;
            }
            let key = ObjectKey::cluster(Kind::AddressPool, &name);
            pending.push(PendingStatus::new(key, object, status, Vec::new()));
        }
        for (written, outcome) in self
            .write_statuses(|_| Api::<AddressPool>::all(self.client.clone()), pending, leader)
            .await
        {
            if outcome
                .settle(&written.key, &self.metrics, summary, failures)?
                .is_some()
            {
                self.pool_statuses
                    .record(&written.key.name, written.replaced, written.status);
            }
        }
        let names: BTreeSet<String> = snapshot.pools.iter().map(ResourceExt::name_any).collect();
        self.pool_statuses.retain(|name| names.contains(name));
        Ok(())
    }

    /// Logs every unreadable object once per version and, while leading, sends a Warning Event
    /// about it.
    async fn report_unreadable(
        &mut self,
        unreadable: &[Unreadable],
        leader: &watch::Receiver<bool>,
        summary: &mut Summary,
    ) -> Result<(), ReconcileError> {
        let mut counts = BTreeMap::new();
        let current: BTreeSet<_> = unreadable
            .iter()
            .map(|object| {
                (
                    object.reference.uid.clone(),
                    object.reference.resource_version.clone(),
                )
            })
            .collect();
        self.reported.retain(|seen| current.contains(seen));
        for object in unreadable {
            *counts.entry(object.kind.kind()).or_insert(0) += 1;
            let seen = (
                object.reference.uid.clone(),
                object.reference.resource_version.clone(),
            );
            if self.reported.contains(&seen) {
                continue;
            }
            tracing::warn!(kind = %object.kind, object = %object.name(), error = %object.error, "cannot read this object; it is left out until it is fixed");
            ensure_leading(leader)?;
            let notice = Notice {
                warning: true,
                reason: UNREADABLE.to_owned(),
                action: "Read",
                note: format!(
                    "the controller cannot read this object, so it is ignored: {}",
                    object.error
                ),
            };
            match self.publisher.publish(&notice, &object.reference).await {
                Ok(()) => summary.events += 1,
                Err(error) => {
                    tracing::warn!(%error, object = %object.name(), "cannot publish an Event");
                    self.metrics.request_failed("event");
                }
            }
            self.reported.insert(seen);
        }
        self.metrics.set_unreadable(&counts);
        Ok(())
    }

    async fn apply_node_configs(
        &mut self,
        node_configs: Vec<Arc<LvsNodeConfig>>,
        snapshot: &Snapshot,
        leader: &watch::Receiver<bool>,
        summary: &mut Summary,
        failures: &mut Failures,
    ) -> Result<(), ReconcileError> {
        let plan = apply::plan(node_configs, &snapshot.node_configs.refs(), &mut self.memory);
        let api: Api<LvsNodeConfig> = Api::all(self.client.clone());
        let applied: Vec<_> = stream::iter(plan.apply)
            .map(|(config, replaced)| {
                let api = &api;
                async move {
                    ensure_leading(leader)?;
                    let result = apply::apply(api, &config).await;
                    Ok::<_, ReconcileError>((config, replaced, result))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for result in applied {
            let (config, replaced, result) = result?;
            let name = config.name_any();
            match result {
                Ok(()) => {
                    tracing::info!(config = %name, node = %config.spec.node_name, "applied the node config");
                    self.memory.applied.record(&name, replaced, config);
                    summary.applied += 1;
                }
                Err(error) => failures.add(
                    &self.metrics,
                    "apply",
                    format!("applying LvsNodeConfig {name}: {error}"),
                ),
            }
        }
        for deletion in plan.delete {
            ensure_leading(leader)?;
            match apply::delete(&api, &deletion).await {
                Ok(()) => {
                    tracing::info!(config = %deletion.name, node = %deletion.node, "deleted a node config no longer needed");
                    self.memory
                        .deleted
                        .record(&deletion.name, deletion.resource_version.clone(), ());
                    summary.deleted += 1;
                }
                Err(error) => failures.add(
                    &self.metrics,
                    "delete",
                    format!("deleting LvsNodeConfig {}: {error}", deletion.name),
                ),
            }
        }
        Ok(())
    }

    /// Writes `pending` statuses by server-side apply, [`IN_FLIGHT`] at a time, each followed by
    /// its Events; returns each with how it went (in no particular order).
    async fn write_statuses<K, S>(
        &self,
        api_for: impl Fn(&str) -> Api<K>,
        pending: Vec<PendingStatus<S>>,
        leader: &watch::Receiver<bool>,
    ) -> Vec<(PendingStatus<S>, Outcome)>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        S: Serialize,
    {
        let params = PatchParams::apply(CONTROLLER_FIELD_MANAGER).force();
        stream::iter(pending)
            .map(|written| {
                let (params, api_for) = (&params, &api_for);
                async move {
                    if ensure_leading(leader).is_err() {
                        return (written, Outcome::NotLeader);
                    }
                    let api = api_for(&written.key.namespace);
                    let outcome = match api
                        .patch_status(&written.key.name, params, &status_patch::<K>(&written.status))
                        .await
                    {
                        Ok(_) => {
                            tracing::debug!(object = %written.key, "wrote the status");
                            Outcome::Written {
                                events: self.publish(&written.notices, &written.reference).await,
                            }
                        }
                        Err(error) if is_not_found(&error) => Outcome::Gone,
                        Err(error) => {
                            Outcome::Failed(format!("writing the status of {}: {error}", written.key))
                        }
                    };
                    (written, outcome)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await
    }

    /// Publishes `notices` about `regarding`; returns how many were published.
    async fn publish(&self, notices: &[Notice], regarding: &ObjectReference) -> usize {
        let mut published = 0;
        for notice in notices {
            match self.publisher.publish(notice, regarding).await {
                Ok(()) => published += 1,
                Err(error) => {
                    tracing::warn!(%error, reason = %notice.reason, "cannot publish an Event");
                    self.metrics.request_failed("event");
                }
            }
        }
        published
    }
}
