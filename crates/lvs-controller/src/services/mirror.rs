//! Mirror: the VirtualServers and RealServers derived from Services, written into the API so
//! that `kubectl get vs -A` shows them and their statuses have an object to live in. Created
//! when missing; merge-patched (the stored resourceVersion as precondition) when their spec,
//! labels or ownerReference differ; deleted once no longer derived. A stored object with a
//! generated name that its Service does not control is someone else's: never written nor
//! deleted, and reported; one generated from a Service since deleted (its controller
//! ownerReference names another uid: garbage collection has not run, or cannot — the emulator
//! has none) is deleted and then created anew. Planning is pure; the build keeps using the
//! derived objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::{NamespaceResourceScope, ObjectMeta};
use kube::{Api, Client, Resource};
use lvs_api::labels::{CONTROLLER_FIELD_MANAGER, SERVICE_NAME};
use lvs_api::{RealServer, RealServerSpec, VirtualServer, VirtualServerSpec};
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::service::is_generated_label;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::reconcile::{IN_FLIGHT, ReconcileError, ensure_leading};
use crate::written::Written;

/// The uid of the Service whose controller ownerReference `metadata` carries.
pub fn controlling_service(metadata: &ObjectMeta) -> Option<&str> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true) && owner.kind == "Service" && owner.api_version == "v1")
        .map(|owner| owner.uid.as_str())
}

/// A kind generated from Services.
pub trait Mirrored:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Its spec.
    type Spec: PartialEq + Serialize;
    /// Its kind.
    const KIND: Kind;
    /// Its spec.
    fn spec(&self) -> &Self::Spec;
    /// The object to create: name, namespace, labels, ownerReferences and spec — none of the
    /// derived object's synthetic uid, resourceVersion, generation or creationTimestamp.
    fn to_create(&self) -> Self;
}

/// [`Mirrored`] for a kind with `metadata`, `spec` and `status`.
macro_rules! mirrored {
    ($kind:ident, $spec:ident) => {
        impl Mirrored for $kind {
            type Spec = $spec;
            const KIND: Kind = Kind::$kind;

            fn spec(&self) -> &$spec {
                &self.spec
            }

            fn to_create(&self) -> Self {
                Self {
                    metadata: identity(&self.metadata),
                    spec: self.spec.clone(),
                    status: None,
                }
            }
        }
    };
}

mirrored!(VirtualServer, VirtualServerSpec);
mirrored!(RealServer, RealServerSpec);

/// The metadata the controller sets on a generated object.
fn identity(metadata: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: metadata.name.clone(),
        namespace: metadata.namespace.clone(),
        labels: metadata.labels.clone(),
        owner_references: metadata.owner_references.clone(),
        ..ObjectMeta::default()
    }
}

/// A stored generated object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Which.
    pub key: ObjectKey,
    /// Its uid and the resourceVersion the plan saw (preconditions: nothing else is deleted).
    pub uid: Option<String>,
    /// The resourceVersion the plan saw.
    pub resource_version: Option<String>,
}

/// One write of a derived object: which, the derived resourceVersion (its content's hash),
/// and what to send.
#[derive(Debug)]
pub struct Write<T> {
    /// Which.
    pub key: ObjectKey,
    /// The derived object's resourceVersion.
    pub derived: String,
    /// The object to create, or the merge patch.
    pub body: T,
    /// The stored resourceVersion a patch replaces.
    pub replaced: Option<String>,
}

/// The writes that bring the stored objects of one kind to the derived ones.
#[derive(Debug)]
pub struct Plan<K> {
    /// Derived objects no stored object holds the name of.
    pub create: Vec<Write<K>>,
    /// Derived objects whose stored copy differs.
    pub patch: Vec<Write<Value>>,
    /// Stored generated objects no longer derived.
    pub delete: Vec<Removal>,
    /// (Service `namespace/name`, note) for each generated name an object the Service does not
    /// control holds.
    pub taken: Vec<(String, String)>,
}

/// What the controller knows of one kind's mirrored objects beyond the store.
#[derive(Debug, Default)]
struct Memory {
    /// By name: the derived resourceVersion written over the stored version (`None`: created).
    written: Written<String>,
    /// By name: deleted over the stored version.
    deleted: Written<()>,
    /// By name: the stored and derived resourceVersions last found equal.
    verified: HashMap<String, (String, String)>,
}

/// The mirror's memory, for both kinds.
#[derive(Debug, Default)]
pub struct Mirror {
    virtual_servers: Memory,
    real_servers: Memory,
}

/// What one pass's mirroring did.
#[derive(Debug, Default)]
pub struct MirrorSummary {
    /// Objects created, patched or deleted.
    pub writes: usize,
    /// Failed requests, as messages.
    pub failures: Vec<String>,
    /// (Service `namespace/name`, note) for each generated name held by someone else's object.
    pub taken: Vec<(String, String)>,
}

/// The merge patch turning `from` into `to`: changed members, removed ones as `null`.
fn merge_patch(from: &Value, to: &Value) -> Value {
    let (Value::Object(from), Value::Object(to)) = (from, to) else {
        return to.clone();
    };
    let mut patch = Map::new();
    for (key, value) in to {
        match from.get(key) {
            Some(old) if old == value => {}
            Some(old) => {
                patch.insert(key.clone(), merge_patch(old, value));
            }
            None => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    for key in from.keys().filter(|key| !to.contains_key(*key)) {
        patch.insert(key.clone(), Value::Null);
    }
    Value::Object(patch)
}

/// Whether `stored` carries everything the controller sets on `derived`: its spec, its labels
/// and its ownerReference (others' labels and ownerReferences may be there too).
fn same<K: Mirrored>(stored: &K, derived: &K) -> bool {
    let (held, wanted) = (stored.meta(), derived.meta());
    stored.spec() == derived.spec()
        && wanted.labels.iter().flatten().all(|(key, value)| {
            held.labels
                .as_ref()
                .is_some_and(|labels| labels.get(key) == Some(value))
        })
        && wanted
            .owner_references
            .iter()
            .flatten()
            .all(|owner| held.owner_references.iter().flatten().any(|held| held == owner))
}

/// The merge patch bringing `stored` to `derived`, with the stored resourceVersion as
/// precondition: the spec's differences, the derived labels, the ownerReferences with the
/// derived ones added (a list is replaced whole).
fn patch_of<K: Mirrored>(stored: &K, derived: &K) -> Value {
    let to_value = |spec: &K::Spec| serde_json::to_value(spec).unwrap_or(Value::Null);
    let mut owners: Vec<OwnerReference> = stored.meta().owner_references.clone().unwrap_or_default();
    for owner in derived.meta().owner_references.iter().flatten() {
        if !owners.contains(owner) {
            owners.retain(|held| held.uid != owner.uid);
            owners.push(owner.clone());
        }
    }
    json!({
        "metadata": {
            "resourceVersion": stored.meta().resource_version,
            "labels": derived.meta().labels,
            "ownerReferences": owners,
        },
        "spec": merge_patch(&to_value(stored.spec()), &to_value(derived.spec())),
    })
}

/// The uid of the Service a stored object was generated from: it carries the generated label and
/// a Service's controller ownerReference.
fn generated_by(metadata: &ObjectMeta) -> Option<&str> {
    controlling_service(metadata).filter(|_| is_generated_label(metadata.labels.as_ref()))
}

/// `namespace/name` of the Service `object` was derived from.
fn service_of<K: Mirrored>(object: &K) -> String {
    let meta = object.meta();
    let name = meta
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME))
        .map_or("", String::as_str);
    format!("{}/{name}", meta.namespace.as_deref().unwrap_or_default())
}

impl Memory {
    /// The writes that bring `stored` (every stored object of the kind) to `derived`.
    fn plan<K: Mirrored>(&mut self, derived: &[K], stored: &[&K]) -> Plan<K> {
        let name_of = |metadata: &ObjectMeta| key_of(K::KIND, metadata).qualified_name();
        for object in stored {
            let (name, version) = (name_of(object.meta()), object.meta().resource_version.as_deref());
            self.written.settle(&name, version);
            self.deleted.settle(&name, version);
        }
        let wanted: BTreeSet<String> = derived.iter().map(|object| name_of(object.meta())).collect();
        self.written.retain(|name| wanted.contains(name));
        self.verified.retain(|name, _| wanted.contains(name));
        let by_name: BTreeMap<String, &K> = stored
            .iter()
            .map(|object| (name_of(object.meta()), *object))
            .collect();
        let owned: BTreeSet<(String, &str)> = derived
            .iter()
            .map(|object| {
                let owner = controlling_service(object.meta()).unwrap_or_default();
                (name_of(object.meta()), owner)
            })
            .collect();
        let mut plan = Plan {
            create: Vec::new(),
            patch: Vec::new(),
            delete: Vec::new(),
            taken: Vec::new(),
        };
        for object in derived {
            let name = name_of(object.meta());
            let owner = controlling_service(object.meta()).unwrap_or_default();
            let derived_version = object.meta().resource_version.clone().unwrap_or_default();
            let Some(held) = by_name.get(&name) else {
                if self.written.current(&name, None, None) != Some(&derived_version) {
                    plan.create.push(Write {
                        key: key_of(K::KIND, object.meta()),
                        derived: derived_version,
                        body: object.to_create(),
                        replaced: None,
                    });
                }
                continue;
            };
            if controlling_service(held.meta()) != Some(owner) {
                // Left by a Service of the same name deleted since: deleted below, then created.
                let stale =
                    generated_by(held.meta()).is_some_and(|holder| !owned.contains(&(name.clone(), holder)));
                if stale {
                    continue;
                }
                plan.taken.push((
                    service_of(object),
                    format!(
                        "{} {name} exists and is not this Service's: the Service is served all the same, but that object is left alone (not updated, no status); delete or rename it to see the Service's own",
                        K::KIND.as_str()
                    ),
                ));
                continue;
            }
            let version = held.meta().resource_version.clone().unwrap_or_default();
            let unchanged = match self.written.current(&name, Some(&version), None) {
                Some(written) => *written == derived_version,
                None => {
                    let verified = self
                        .verified
                        .get(&name)
                        .is_some_and(|(stored, wanted)| *stored == version && *wanted == derived_version);
                    verified || {
                        let equal = same(*held, object);
                        if equal {
                            self.verified
                                .insert(name.clone(), (version.clone(), derived_version.clone()));
                        }
                        equal
                    }
                }
            };
            if !unchanged {
                plan.patch.push(Write {
                    key: key_of(K::KIND, object.meta()),
                    derived: derived_version,
                    body: patch_of(*held, object),
                    replaced: Some(version),
                });
            }
        }
        for held in stored {
            let meta = held.meta();
            let name = name_of(meta);
            let Some(owner) = generated_by(meta) else {
                continue;
            };
            if owned.contains(&(name.clone(), owner))
                || self
                    .deleted
                    .current(&name, meta.resource_version.as_deref(), None)
                    .is_some()
            {
                continue;
            }
            plan.delete.push(Removal {
                key: key_of(K::KIND, meta),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
            });
        }
        plan
    }

    /// Sends `plan`, [`IN_FLIGHT`] requests at a time, and remembers what was written.
    async fn send<K: Mirrored>(
        &mut self,
        client: &Client,
        plan: Plan<K>,
        leader: &watch::Receiver<bool>,
        done: &mut MirrorSummary,
    ) -> Result<(), ReconcileError> {
        let api = |namespace: &str| Api::<K>::namespaced(client.clone(), namespace);
        let post = PostParams {
            field_manager: Some(CONTROLLER_FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let patch = PatchParams {
            field_manager: Some(CONTROLLER_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let created: Vec<_> = stream::iter(plan.create)
            .map(|write| {
                let (api, post) = (&api, &post);
                async move {
                    ensure_leading(leader)?;
                    let result = api(&write.key.namespace).create(post, &write.body).await;
                    Ok::<_, ReconcileError>((write.key, write.replaced, write.derived, result.map(drop)))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let patched: Vec<_> = stream::iter(plan.patch)
            .map(|write| {
                let (api, patch) = (&api, &patch);
                async move {
                    ensure_leading(leader)?;
                    let result = api(&write.key.namespace)
                        .patch(&write.key.name, patch, &Patch::Merge(&write.body))
                        .await;
                    Ok::<_, ReconcileError>((write.key, write.replaced, write.derived, result.map(drop)))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for result in created.into_iter().chain(patched) {
            let (key, replaced, derived, result) = result?;
            let doing = if replaced.is_some() {
                "updating"
            } else {
                "creating"
            };
            if settled(&key, doing, result, done) {
                self.written.record(&key.qualified_name(), replaced, derived);
            }
        }
        for removal in plan.delete {
            ensure_leading(leader)?;
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: removal.uid.clone(),
                    resource_version: removal.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            let result = api(&removal.key.namespace)
                .delete(&removal.key.name, &params)
                .await
                .map(drop);
            let gone = matches!(&result, Err(kube::Error::Api(status)) if status.code == 404);
            if gone || settled(&removal.key, "deleting", result, done) {
                self.deleted
                    .record(&removal.key.qualified_name(), removal.resource_version, ());
            }
        }
        done.taken.extend(plan.taken);
        Ok(())
    }
}

/// Counts one request's result into `done`; returns whether it was written. A conflict (the
/// object changed, or appeared, since the store showed it) is no failure: the store's next
/// version starts another pass, which decides again.
fn settled(key: &ObjectKey, doing: &str, result: Result<(), kube::Error>, done: &mut MirrorSummary) -> bool {
    match result {
        Ok(()) => {
            tracing::info!(object = %key, "{doing} an object generated from a Service");
            done.writes += 1;
            true
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::debug!(object = %key, "changed meanwhile; decided again on the next pass");
            false
        }
        Err(error) => {
            done.failures.push(format!("{doing} {key}: {error}"));
            false
        }
    }
}

impl Mirror {
    /// Brings the stored generated objects to `virtual_servers` and `real_servers` (every object
    /// derived this pass), writing only while `leader` holds.
    pub async fn write(
        &mut self,
        client: &Client,
        derived: (&[VirtualServer], &[RealServer]),
        stored: (&[&VirtualServer], &[&RealServer]),
        leader: &watch::Receiver<bool>,
    ) -> Result<MirrorSummary, ReconcileError> {
        let mut done = MirrorSummary::default();
        let plan = self.virtual_servers.plan(derived.0, stored.0);
        self.virtual_servers.send(client, plan, leader, &mut done).await?;
        let plan = self.real_servers.plan(derived.1, stored.1);
        self.real_servers.send(client, plan, leader, &mut done).await?;
        Ok(done)
    }

    /// Forgets what was written (trust the stores).
    pub fn forget(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests;
