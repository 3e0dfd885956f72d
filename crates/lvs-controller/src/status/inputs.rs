//! What each VirtualServer's and RealServer's status was last computed from, so that a pass
//! recomputes only the statuses whose inputs changed: 21,000 objects each cost a status
//! computation (conditions, messages) on every pass otherwise, whatever the change was. A
//! VirtualServer's status reads its object, outcome, problems and service (its directors'
//! reports); a RealServer's its object, outcome and problems, the services of its
//! VirtualServers, and its node's config and agent reports. When none of those changed, the
//! status is the one the object has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use lvs_api::LvsNodeConfigSpec;
use lvs_core::build::{RealServerOutcome, VirtualServerOutcome};
use lvs_core::object::{Kind, ObjectKey};
use lvs_core::roles::Placement;
use lvs_core::{BuildOutput, Problem};

use super::Service;
use crate::watch::Snapshot;

/// One object's own inputs as last computed (besides what [`Changes`] covers).
#[derive(Debug)]
struct Inputs<O> {
    version: String,
    outcome: Option<O>,
    problems: Vec<Problem>,
}

impl<O: PartialEq + Clone> Inputs<O> {
    fn new(version: &str, outcome: Option<&O>, problems: &[Problem]) -> Self {
        Self {
            version: version.to_owned(),
            outcome: outcome.cloned(),
            problems: problems.to_vec(),
        }
    }

    fn same(&self, version: &str, outcome: Option<&O>, problems: &[Problem]) -> bool {
        self.version == version && self.outcome.as_ref() == outcome && self.problems == problems
    }
}

/// What changed since the last pass, for the statuses that read it.
#[derive(Debug, Default)]
pub struct Changes {
    /// VirtualServers whose service (directors' reports, resolved service) changed, appeared
    /// or went.
    services: BTreeSet<ObjectKey>,
    /// Nodes whose config or agent reports changed, appeared or went.
    nodes: BTreeSet<String>,
}

/// The inputs of the statuses computed so far (see the module docs).
#[derive(Debug, Default)]
pub struct StatusInputs {
    virtual_servers: HashMap<String, Inputs<VirtualServerOutcome>>,
    real_servers: HashMap<String, Inputs<RealServerOutcome>>,
    services: BTreeMap<ObjectKey, Service>,
    node_configs: BTreeMap<String, Arc<LvsNodeConfigSpec>>,
    /// Per node, the resourceVersions of its stored configs (which carry the agent's reports).
    reports: BTreeMap<String, Vec<Option<String>>>,
}

/// Remembers (or, without a version, forgets) the inputs of `name` in `inputs`.
fn record<O: PartialEq + Clone>(
    inputs: &mut HashMap<String, Inputs<O>>,
    name: &str,
    version: Option<&str>,
    outcome: Option<&O>,
    problems: &[Problem],
) {
    match version {
        Some(version) => {
            inputs.insert(name.to_owned(), Inputs::new(version, outcome, problems));
        }
        None => {
            inputs.remove(name);
        }
    }
}

/// The keys of two maps whose values differ, or that only one holds.
fn differing<K: Ord + Clone, V>(
    before: &BTreeMap<K, V>,
    now: &BTreeMap<K, V>,
    same: impl Fn(&V, &V) -> bool,
) -> impl Iterator<Item = K> {
    let changed: Vec<K> = now
        .iter()
        .filter(|(key, value)| !before.get(*key).is_some_and(|old| same(old, value)))
        .map(|(key, _)| key.clone())
        .chain(before.keys().filter(|key| !now.contains_key(*key)).cloned())
        .collect();
    changed.into_iter()
}

impl StatusInputs {
    /// What changed since the last call, which it then remembers (the services once the pass
    /// is done with them: [`remember_services`](Self::remember_services)).
    pub fn changes(
        &mut self,
        snapshot: &Snapshot,
        output: &BuildOutput,
        services: &BTreeMap<ObjectKey, Service>,
    ) -> Changes {
        let mut reports: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for config in &snapshot.node_configs {
            reports
                .entry(config.spec.node_name.clone())
                .or_default()
                .push(config.metadata.resource_version.clone());
        }
        let nodes = differing(&self.reports, &reports, |left, right| left == right)
            .chain(differing(&self.node_configs, &output.node_configs, Arc::ptr_eq))
            .collect();
        let changes = Changes {
            services: differing(&self.services, services, |left, right| left == right).collect(),
            nodes,
        };
        self.reports = reports;
        self.node_configs = output.node_configs.clone();
        changes
    }

    /// Whether the VirtualServer `name` (`key`, at `version`) has the inputs its status was last
    /// computed from.
    pub fn virtual_server_unchanged(
        &self,
        name: &str,
        key: &ObjectKey,
        version: Option<&str>,
        output: &BuildOutput,
        changes: &Changes,
    ) -> bool {
        let (Some(last), Some(version)) = (self.virtual_servers.get(name), version) else {
            return false;
        };
        last.same(version, output.virtual_servers.get(key), output.problems_of(key))
            && !changes.services.contains(key)
    }

    /// Whether the RealServer `name` (`key`, at `version`) has the inputs its status was last
    /// computed from.
    pub fn real_server_unchanged(
        &self,
        name: &str,
        key: &ObjectKey,
        version: Option<&str>,
        output: &BuildOutput,
        changes: &Changes,
    ) -> bool {
        let (Some(last), Some(version)) = (self.real_servers.get(name), version) else {
            return false;
        };
        let outcome = output.real_servers.get(key);
        if !last.same(version, outcome, output.problems_of(key)) {
            return false;
        }
        let Some(outcome) = outcome else {
            return true;
        };
        let node = match &outcome.placement {
            Some(
                Placement::Managed(node) | Placement::UnlabelledNode(node) | Placement::MissingNode(node),
            ) => Some(node),
            Some(Placement::External) | None => None,
        };
        !outcome
            .virtual_servers
            .iter()
            .any(|virtual_server| changes.services.contains(virtual_server))
            && !node.is_some_and(|node| changes.nodes.contains(node))
    }

    /// Remembers the inputs of the VirtualServer `name` whose status was written or found the same.
    pub fn record_virtual_server(
        &mut self,
        name: &str,
        key: &ObjectKey,
        version: Option<&str>,
        output: &BuildOutput,
    ) {
        record(
            &mut self.virtual_servers,
            name,
            version,
            output.virtual_servers.get(key),
            output.problems_of(key),
        );
    }

    /// Remembers the inputs of the RealServer `name` whose status was written or found the same.
    pub fn record_real_server(
        &mut self,
        name: &str,
        key: &ObjectKey,
        version: Option<&str>,
        output: &BuildOutput,
    ) {
        record(
            &mut self.real_servers,
            name,
            version,
            output.real_servers.get(key),
            output.problems_of(key),
        );
    }

    /// Keeps this pass's services for the next pass's [`changes`](Self::changes) (moved, not
    /// copied: each holds its resolved service).
    pub fn remember_services(&mut self, services: BTreeMap<ObjectKey, Service>) {
        self.services = services;
    }

    /// Forgets the objects `keep` rejects (by kind and qualified name).
    pub fn retain(&mut self, mut keep: impl FnMut(Kind, &str) -> bool) {
        self.virtual_servers
            .retain(|name, _| keep(Kind::VirtualServer, name));
        self.real_servers.retain(|name, _| keep(Kind::RealServer, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_output(node: &str, problem: bool) -> (BuildOutput, ObjectKey) {
        let key = ObjectKey::new(Kind::RealServer, "default", "a");
        let mut output = BuildOutput::default();
        output.real_servers.insert(
            key.clone(),
            RealServerOutcome {
                valid: true,
                placement: Some(Placement::Managed(node.to_owned())),
                virtual_servers: vec![ObjectKey::new(Kind::VirtualServer, "default", "web")],
            },
        );
        if problem {
            output.problems.push(Problem::warning(
                &key,
                "spec.address",
                "Unmanaged",
                "x".to_owned(),
            ));
        }
        (output, key)
    }

    #[test]
    fn a_status_is_recomputed_when_any_of_its_inputs_changed() {
        let mut inputs = StatusInputs::default();
        let (output, key) = build_output("n1", false);
        let none = Changes::default();
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &none),
            "never computed"
        );
        inputs.record_real_server("default/a", &key, Some("1"), &output);
        assert!(inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &none));
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("2"), &output, &none),
            "a new version"
        );
        assert!(
            !inputs.real_server_unchanged("default/a", &key, None, &output, &none),
            "no version"
        );
        let (moved, _) = build_output("n2", false);
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &moved, &none),
            "another outcome"
        );
        let (problem, _) = build_output("n1", true);
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &problem, &none),
            "a new problem"
        );
        let service = Changes {
            services: BTreeSet::from([ObjectKey::new(Kind::VirtualServer, "default", "web")]),
            ..Changes::default()
        };
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &service),
            "its service"
        );
        let node = Changes {
            nodes: BTreeSet::from(["n1".to_owned()]),
            ..Changes::default()
        };
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &node),
            "its node"
        );
        let elsewhere = Changes {
            nodes: BTreeSet::from(["n9".to_owned()]),
            services: BTreeSet::from([ObjectKey::new(Kind::VirtualServer, "default", "other")]),
        };
        assert!(
            inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &elsewhere),
            "unrelated"
        );
        inputs.retain(|_, _| false);
        assert!(
            !inputs.real_server_unchanged("default/a", &key, Some("1"), &output, &none),
            "forgotten"
        );
    }

    #[test]
    fn differing_finds_changed_added_and_removed_keys() {
        let before = BTreeMap::from([(1, "a"), (2, "b"), (3, "c")]);
        let now = BTreeMap::from([(1, "a"), (2, "changed"), (4, "d")]);
        let mut keys: Vec<i32> = differing(&before, &now, |left, right| left == right).collect();
        keys.sort_unstable();
        assert_eq!(keys, [2, 3, 4]);
    }
}
