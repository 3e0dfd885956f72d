//! Apply: one `LvsNodeConfig` per node with a role (sharded when large), written by server-side
//! apply only when its spec or node label differs from what the API server holds; the configs of
//! nodes that lost every role or vanished, and shards no longer needed, deleted. Planning is
//! pure; the requests are in [`apply`] and [`delete`].

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use lvs_api::labels::{CONTROLLER_FIELD_MANAGER, NODE_NAME};
use lvs_api::{LvsNodeConfig, LvsNodeConfigSpec};
use lvs_core::build::{DEFAULT_SHARD_BYTES, EntrySizes, shard_reusing};
use serde::Serialize;

use crate::written::Written;

/// A config to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Object name.
    pub name: String,
    /// Its uid, so that a config recreated meanwhile is not deleted.
    pub uid: Option<String>,
    /// The resourceVersion the store shows.
    pub resource_version: Option<String>,
    /// The node it was for.
    pub node: String,
}

/// What to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Configs to server-side apply, with the resourceVersion each replaces (`None`: new).
    pub apply: Vec<(Arc<LvsNodeConfig>, Option<String>)>,
    /// Configs to delete.
    pub delete: Vec<Deletion>,
}

/// What the controller knows it wrote that the store may not show yet, and which stored configs
/// it found equal to what it wants (so that a pass compares only what changed: a director's
/// config is megabytes).
#[derive(Debug, Default)]
pub struct Memory {
    /// Applied configs.
    pub applied: Written<Arc<LvsNodeConfig>>,
    /// Deleted configs.
    pub deleted: Written<()>,
    /// By name: the stored resourceVersion found equal to the desired config, and that config.
    verified: HashMap<String, (String, Arc<LvsNodeConfig>)>,
}

impl Memory {
    /// Forgets everything.
    pub fn clear(&mut self) {
        self.applied.clear();
        self.deleted.clear();
        self.verified.clear();
    }
}

fn node_label(config: &LvsNodeConfig) -> Option<&str> {
    config.labels().get(NODE_NAME).map(String::as_str)
}

fn same_config(current: &LvsNodeConfig, desired: &LvsNodeConfig) -> bool {
    current.spec == desired.spec && node_label(current) == node_label(desired)
}

/// The writes that bring `existing` (the store's configs carrying the node label) to `desired`.
pub fn plan<C: Borrow<LvsNodeConfig>>(
    desired: Vec<Arc<LvsNodeConfig>>,
    existing: &[C],
    memory: &mut Memory,
) -> Plan {
    let existing: Vec<&LvsNodeConfig> = existing.iter().map(Borrow::borrow).collect();
    for config in &existing {
        let name = config.name_any();
        memory
            .applied
            .settle(&name, config.metadata.resource_version.as_deref());
        memory
            .deleted
            .settle(&name, config.metadata.resource_version.as_deref());
    }
    let desired_names: BTreeSet<String> = desired.iter().map(|config| config.name_any()).collect();
    memory.applied.retain(|name| desired_names.contains(name));
    memory.verified.retain(|name, _| desired_names.contains(name));

    let stored_by_name: HashMap<&str, &LvsNodeConfig> = existing
        .iter()
        .filter_map(|config| Some((config.metadata.name.as_deref()?, *config)))
        .collect();
    let mut plan = Plan::default();
    for config in desired {
        let name = config.name_any();
        let stored = stored_by_name.get(name.as_str()).copied();
        let stored_version = stored.and_then(|stored| stored.metadata.resource_version.clone());
        let unchanged = match memory.applied.current(&name, stored_version.as_deref(), None) {
            Some(written) => Arc::ptr_eq(written, &config) || same_config(written, &config),
            None => match (stored, &stored_version) {
                (Some(stored), Some(version)) => {
                    let verified = memory
                        .verified
                        .get(&name)
                        .is_some_and(|(seen, equal)| seen == version && Arc::ptr_eq(equal, &config));
                    verified || {
                        let same = same_config(stored, &config);
                        if same {
                            memory
                                .verified
                                .insert(name.clone(), (version.clone(), Arc::clone(&config)));
                        }
                        same
                    }
                }
                (Some(stored), None) => same_config(stored, &config),
                (None, _) => false,
            },
        };
        if !unchanged {
            plan.apply.push((config, stored_version));
        }
    }
    for config in &existing {
        let name = config.name_any();
        let version = config.metadata.resource_version.as_deref();
        if desired_names.contains(&name) || memory.deleted.current(&name, version, None).is_some() {
            continue;
        }
        plan.delete.push(Deletion {
            node: node_label(config).unwrap_or_default().to_owned(),
            uid: config.metadata.uid.clone(),
            resource_version: config.metadata.resource_version.clone(),
            name,
        });
    }
    plan
}

/// Each node's config as the objects written (sharded), kept while the build hands out the same
/// shared spec for the node: sharding measures every entry as JSON, which is worth doing only
/// for the nodes a change touched — and there only for the entries that changed.
#[derive(Debug, Default)]
pub struct Shards {
    by_node: HashMap<String, Sharded>,
}

/// One node's spec, its objects and the sizes of its entries.
#[derive(Debug)]
struct Sharded {
    spec: Arc<LvsNodeConfigSpec>,
    objects: Vec<Arc<LvsNodeConfig>>,
    sizes: EntrySizes,
}

impl Shards {
    /// The objects of every node config, in node order (a node's shards in order).
    pub fn objects(&mut self, configs: &BTreeMap<String, Arc<LvsNodeConfigSpec>>) -> Vec<Arc<LvsNodeConfig>> {
        let mut kept = HashMap::with_capacity(configs.len());
        let mut objects = Vec::with_capacity(configs.len());
        for (node, spec) in configs {
            let entry = match self.by_node.remove(node) {
                Some(cached) if Arc::ptr_eq(&cached.spec, spec) => cached,
                cached => {
                    let previous = cached.as_ref().map(|cached| (&*cached.spec, &cached.sizes));
                    let (shards, sizes) = shard_reusing(node, spec, DEFAULT_SHARD_BYTES, previous);
                    Sharded {
                        spec: Arc::clone(spec),
                        objects: shards.into_iter().map(Arc::new).collect(),
                        sizes,
                    }
                }
            };
            objects.extend(entry.objects.iter().cloned());
            kept.insert(node.clone(), entry);
        }
        self.by_node = kept;
        objects
    }
}

/// The server-side apply patch of one config: identity, node label and spec — never status,
/// which belongs to the node's agent. Serialized straight from the config (a director's spec
/// can be hundreds of KiB: no intermediate JSON tree).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyPatch<'a> {
    api_version: String,
    kind: &'static str,
    metadata: PatchMetadata<'a>,
    spec: &'a LvsNodeConfigSpec,
}

/// The metadata an [`ApplyPatch`] owns.
#[derive(Debug, Serialize)]
struct PatchMetadata<'a> {
    name: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// The [`ApplyPatch`] of `config`.
pub fn apply_patch(config: &LvsNodeConfig) -> ApplyPatch<'_> {
    ApplyPatch {
        api_version: format!("{}/{}", lvs_api::GROUP, lvs_api::VERSION),
        kind: "LvsNodeConfig",
        metadata: PatchMetadata {
            name: config.metadata.name.as_deref().unwrap_or_default(),
            labels: config.labels(),
        },
        spec: &config.spec,
    }
}

/// Writes one config by server-side apply as `lvs-controller`, taking over fields another
/// manager may have changed by hand.
pub async fn apply(api: &Api<LvsNodeConfig>, config: &LvsNodeConfig) -> Result<(), kube::Error> {
    api.patch(
        &config.name_any(),
        &PatchParams::apply(CONTROLLER_FIELD_MANAGER).force(),
        &Patch::Apply(apply_patch(config)),
    )
    .await
    .map(drop)
}

/// Deletes one config, only if it is still the object the plan saw; gone already is fine.
pub async fn delete(api: &Api<LvsNodeConfig>, deletion: &Deletion) -> Result<(), kube::Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: deletion.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&deletion.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::ObjectMeta;
    use lvs_api::LvsNodeConfigSpec;

    use super::*;

    fn config(name: &str, node: &str, version: Option<&str>, sysctl: &str) -> LvsNodeConfig {
        LvsNodeConfig {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(NODE_NAME.to_owned(), node.to_owned())])),
                resource_version: version.map(str::to_owned),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: LvsNodeConfigSpec {
                node_name: node.to_owned(),
                sysctls: vec![lvs_api::SysctlSetting {
                    name: sysctl.to_owned(),
                    value: "1".to_owned(),
                }],
                ..LvsNodeConfigSpec::default()
            },
            status: None,
        }
    }

    fn shared(configs: Vec<LvsNodeConfig>) -> Vec<Arc<LvsNodeConfig>> {
        configs.into_iter().map(Arc::new).collect()
    }

    fn names(plan: &Plan) -> (Vec<String>, Vec<String>) {
        (
            plan.apply.iter().map(|(config, _)| config.name_any()).collect(),
            plan.delete.iter().map(|deletion| deletion.name.clone()).collect(),
        )
    }

    #[test]
    fn only_changed_configs_are_applied_and_orphans_deleted_once() {
        let mut memory = Memory::default();
        let existing = [
            config("a", "a", Some("1"), "x"),
            config("b", "b", Some("1"), "x"),
            config("gone", "gone", Some("1"), "x"),
        ];
        let desired = vec![
            config("a", "a", None, "x"),
            config("b", "b", None, "changed"),
            config("new", "new", None, "x"),
        ];
        let plan = plan_and_record(desired.clone(), &existing, &mut memory);
        assert_eq!(
            names(&plan),
            (vec!["b".into(), "new".into()], vec!["gone".into()])
        );
        assert_eq!(plan.apply[1].1, None, "new objects replace nothing");
        let again = super::plan(shared(desired.clone()), &existing, &mut memory);
        assert_eq!(
            names(&again),
            (vec![], vec![]),
            "the store has not caught up, but the writes are remembered"
        );
        let caught_up = [
            config("a", "a", Some("1"), "x"),
            config("b", "b", Some("2"), "changed"),
            config("new", "new", Some("2"), "x"),
        ];
        assert_eq!(
            names(&super::plan(shared(desired), &caught_up, &mut memory)),
            (vec![], vec![])
        );
    }

    #[test]
    fn a_config_deleted_by_hand_after_the_controller_created_it_is_recreated() {
        let mut memory = Memory::default();
        let desired = vec![config("a", "a", None, "x")];
        let plan = plan_and_record(desired.clone(), &[], &mut memory);
        assert_eq!(names(&plan).0, ["a"]);
        assert_eq!(
            names(&super::plan(
                shared(desired.clone()),
                &[config("a", "a", Some("3"), "x")],
                &mut memory
            ))
            .0,
            Vec::<String>::new()
        );
        assert_eq!(
            names(&super::plan::<LvsNodeConfig>(shared(desired), &[], &mut memory)).0,
            ["a"]
        );
    }

    #[test]
    fn a_config_with_the_wrong_node_label_is_reapplied() {
        let mut memory = Memory::default();
        let existing = [config("a", "elsewhere", Some("1"), "x")];
        let mut desired = config("a", "elsewhere", None, "x");
        desired
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(NODE_NAME.to_owned(), "a".to_owned());
        assert_eq!(
            names(&plan(shared(vec![desired]), &existing, &mut memory)).0,
            ["a"]
        );
    }

    /// Plans and records every write as done.
    fn plan_and_record(desired: Vec<LvsNodeConfig>, existing: &[LvsNodeConfig], memory: &mut Memory) -> Plan {
        let plan = plan(shared(desired), existing, memory);
        for (config, replaced) in &plan.apply {
            memory
                .applied
                .record(&config.name_any(), replaced.clone(), config.clone());
        }
        for deletion in &plan.delete {
            memory
                .deleted
                .record(&deletion.name, deletion.resource_version.clone(), ());
        }
        plan
    }
}
