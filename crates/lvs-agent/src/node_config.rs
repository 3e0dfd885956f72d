//! This node's intent: in standalone mode manifests → lvs-core `build` → this node's
//! `LvsNodeConfig`; in Kubernetes mode the config shards the controller wrote. Either way it
//! becomes desired kernel state together with what the health checks say.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::desired::{Health, Inputs, desired_state};
use lvs_api::LvsNodeConfigSpec;
use lvs_core::build::BuildOutput;
use lvs_core::manifest::Manifests;
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::{ClusterSettings, Severity, build};
use lvs_dataplane::model::NodeState;

/// What this node should do, and the problems found on the way.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The node's resolved config (empty when it has no role).
    pub config: LvsNodeConfigSpec,
    /// The node's own IPv4 address, from its Node object.
    pub node_address: Option<Ipv4Addr>,
    /// One line per problem in the manifests (file, object, field, reason).
    pub problems: Vec<(Severity, String)>,
    /// Whether this is the whole intent. A partial one (a config shard not seen yet) never
    /// prunes: state it does not mention may belong to the missing part.
    pub complete: bool,
}

/// A folder (or files) of manifests, read again on every change. An object that becomes
/// invalid — or whose file stops parsing — keeps its last valid version until it is fixed, as
/// an API server keeps the old object when an apply is rejected: a typo never deletes a
/// service that is serving. Objects removed from valid files go.
#[derive(Debug)]
pub struct ManifestSource {
    paths: Vec<PathBuf>,
    node_name: String,
    last_good: Manifests,
}

impl ManifestSource {
    /// A source reading `paths` for `node_name`.
    pub fn new(paths: Vec<PathBuf>, node_name: &str) -> Self {
        Self {
            paths,
            node_name: node_name.to_owned(),
            last_good: Manifests::default(),
        }
    }

    /// Reads the manifests and resolves this node's part.
    pub fn load(&mut self) -> anyhow::Result<Intent> {
        let loaded = lvs_core::manifest::load_paths(&self.paths).map_err(anyhow::Error::msg)?;
        let mut manifests = loaded.manifests;
        let mut problems: Vec<(Severity, String)> = loaded
            .problems
            .iter()
            .map(|problem| (problem.severity, problem.to_string()))
            .collect();
        let broken = |key: &ObjectKey, source: &str| {
            loaded.problems.iter().any(|problem| {
                problem.severity == Severity::Error
                    && match &problem.object {
                        Some(object) => object == key,
                        None => problem.source == source,
                    }
            })
        };
        problems.extend(restore(&mut manifests, &self.last_good, &broken));
        let mut output = resolve(&manifests);
        let invalid: BTreeSet<ObjectKey> = output
            .problems
            .iter()
            .filter(|problem| problem.severity == Severity::Error)
            .map(|problem| problem.object.clone())
            .collect();
        let restorable = |key: &ObjectKey, _: &str| invalid.contains(key);
        let mut reported = output.problems.clone();
        let mut kept = Vec::new();
        // Only when an invalid object has a last valid version to fall back to is a second
        // build worth a copy of every object (a plan or the first load never needs it).
        if invalid.iter().any(|key| self.last_good.sources.contains_key(key)) {
            let mut retry = manifests.clone();
            retry
                .virtual_servers
                .retain(|object| !invalid.contains(&key_of(Kind::VirtualServer, &object.metadata)));
            retry
                .real_servers
                .retain(|object| !invalid.contains(&key_of(Kind::RealServer, &object.metadata)));
            kept = restore(&mut retry, &self.last_good, &restorable);
            if !kept.is_empty() {
                output = resolve(&retry);
                manifests = retry;
                reported.extend(output.problems.iter().cloned());
            }
        }
        for problem in &reported {
            let source = manifests
                .sources
                .get(&problem.object)
                .map_or("<unknown file>", String::as_str);
            problems.push((problem.severity, problem.line(source)));
        }
        problems.extend(kept);
        problems.sort();
        problems.dedup();
        let still_invalid: BTreeSet<ObjectKey> = output
            .problems
            .iter()
            .filter(|problem| problem.severity == Severity::Error)
            .map(|problem| problem.object.clone())
            .collect();
        let intent = intent_for(&self.node_name, &manifests, output, problems);
        manifests
            .virtual_servers
            .retain(|object| !still_invalid.contains(&key_of(Kind::VirtualServer, &object.metadata)));
        manifests
            .real_servers
            .retain(|object| !still_invalid.contains(&key_of(Kind::RealServer, &object.metadata)));
        self.last_good = manifests;
        Ok(intent)
    }
}

/// Reads the manifests once and resolves this node's part (for `plan` and `--once`).
pub fn load(paths: &[PathBuf], node_name: &str) -> anyhow::Result<Intent> {
    ManifestSource::new(paths.to_vec(), node_name).load()
}

fn resolve(manifests: &Manifests) -> BuildOutput {
    build(manifests.build_input(&ClusterSettings::default()))
}

/// Puts back, from `previous`, every object `broken` says is unusable now and that `manifests`
/// lacks; returns a warning per object kept.
fn restore(
    manifests: &mut Manifests,
    previous: &Manifests,
    broken: &dyn Fn(&ObjectKey, &str) -> bool,
) -> Vec<(Severity, String)> {
    let mut kept = Vec::new();
    let mut keep = |key: ObjectKey, manifests: &mut Manifests| -> bool {
        let Some(source) = previous.sources.get(&key) else {
            return false;
        };
        if manifests_has(manifests, &key) || !broken(&key, source) {
            return false;
        }
        kept.push((
            Severity::Warning,
            format!("{source}: {key}: keeping its last valid version until the error is fixed"),
        ));
        manifests.sources.insert(key, source.clone());
        true
    };
    for object in &previous.virtual_servers {
        if keep(key_of(Kind::VirtualServer, &object.metadata), manifests) {
            manifests.virtual_servers.push(object.clone());
        }
    }
    for object in &previous.real_servers {
        if keep(key_of(Kind::RealServer, &object.metadata), manifests) {
            manifests.real_servers.push(object.clone());
        }
    }
    for object in &previous.nodes {
        if keep(
            ObjectKey::node(object.metadata.name.clone().unwrap_or_default()),
            manifests,
        ) {
            manifests.nodes.push(object.clone());
        }
    }
    for object in &previous.pools {
        if keep(cluster_key(Kind::AddressPool, &object.metadata), manifests) {
            manifests.pools.push(object.clone());
        }
    }
    for object in &previous.namespaces {
        if keep(cluster_key(Kind::Namespace, &object.metadata), manifests) {
            manifests.namespaces.push(object.clone());
        }
    }
    kept
}

fn manifests_has(manifests: &Manifests, key: &ObjectKey) -> bool {
    match key.kind {
        Kind::VirtualServer => manifests
            .virtual_servers
            .iter()
            .any(|object| key_of(Kind::VirtualServer, &object.metadata) == *key),
        Kind::RealServer => manifests
            .real_servers
            .iter()
            .any(|object| key_of(Kind::RealServer, &object.metadata) == *key),
        Kind::Node => manifests
            .nodes
            .iter()
            .any(|object| object.metadata.name.as_deref() == Some(key.name.as_str())),
        Kind::AddressPool => manifests
            .pools
            .iter()
            .any(|object| object.metadata.name.as_deref() == Some(key.name.as_str())),
        Kind::Namespace => manifests
            .namespaces
            .iter()
            .any(|object| object.metadata.name.as_deref() == Some(key.name.as_str())),
    }
}

fn cluster_key(kind: Kind, metadata: &kube::core::ObjectMeta) -> ObjectKey {
    ObjectKey::cluster(kind, metadata.name.clone().unwrap_or_default())
}

/// This node's intent from resolved manifests.
fn intent_for(
    node_name: &str,
    manifests: &Manifests,
    output: BuildOutput,
    mut problems: Vec<(Severity, String)>,
) -> Intent {
    if !manifests
        .nodes
        .iter()
        .any(|node| node.metadata.name.as_deref() == Some(node_name))
    {
        problems.push((
            Severity::Warning,
            format!("no Node named {node_name} in the manifests: this node has no role"),
        ));
    }
    let node_address = manifests
        .nodes
        .iter()
        .filter(|node| node.metadata.name.as_deref() == Some(node_name))
        .flat_map(|node| {
            node.status
                .as_ref()
                .and_then(|status| status.addresses.clone())
                .unwrap_or_default()
        })
        .find_map(|address| match address.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if address.type_ == "InternalIP" => Some(v4),
            _ => None,
        });
    let config = output
        .node_configs
        .get(node_name)
        .map(|config| LvsNodeConfigSpec::clone(config))
        .unwrap_or_else(|| LvsNodeConfigSpec {
            node_name: node_name.to_owned(),
            ..Default::default()
        });
    Intent {
        config,
        node_address,
        problems,
        complete: true,
    }
}

impl Intent {
    /// The kernel state this intent asks for, given the health of each (VirtualServer,
    /// RealServer) pair and the uplinks of its IPv6 director VIPs (`Inputs::uplinks`).
    pub fn desired(
        &self,
        health: &dyn Fn(&str, &str) -> Health,
        uplinks: &BTreeMap<IpAddr, Vec<String>>,
    ) -> NodeState {
        desired_state(
            &self.config,
            &Inputs {
                health,
                node_address: self.node_address,
                uplinks,
            },
        )
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|(severity, _)| *severity == Severity::Error)
    }

    /// Logs every problem: errors name the file, object and field.
    pub fn report_problems(&self) {
        for (severity, line) in &self.problems {
            match severity {
                Severity::Error => tracing::error!("{line}"),
                Severity::Warning => tracing::warn!("{line}"),
            }
        }
    }
}
