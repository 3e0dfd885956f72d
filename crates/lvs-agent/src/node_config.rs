//! This node's intent in standalone mode: manifests → lvs-core `build` → this node's
//! `LvsNodeConfig` → desired kernel state.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use lvs_api::LvsNodeConfigSpec;
use lvs_core::{BuildInput, Severity, build};
use lvs_dataplane::desired::{Health, Inputs, desired_state};
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
}

/// Reads the manifests and resolves this node's part.
pub fn load(paths: &[PathBuf], node_name: &str) -> anyhow::Result<Intent> {
    let loaded = lvs_core::manifest::load_paths(paths).map_err(anyhow::Error::msg)?;
    let manifests = &loaded.manifests;
    let output = build(BuildInput {
        virtual_servers: &manifests.virtual_servers,
        real_servers: &manifests.real_servers,
        nodes: &manifests.nodes,
        configured_vips: None,
    });
    let mut problems: Vec<(Severity, String)> = loaded
        .problems
        .iter()
        .map(|problem| (problem.severity, problem.to_string()))
        .collect();
    for problem in &output.problems {
        let source = manifests
            .sources
            .get(&problem.object)
            .map_or("<unknown file>", String::as_str);
        problems.push((problem.severity, format!("{source}: {problem}")));
    }
    problems.sort();
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
        .cloned()
        .unwrap_or_else(|| LvsNodeConfigSpec {
            node_name: node_name.to_owned(),
            ..Default::default()
        });
    Ok(Intent {
        config,
        node_address,
        problems,
    })
}

impl Intent {
    /// The kernel state this intent asks for (health checks not yet known: every real server
    /// counts as healthy).
    pub fn desired(&self) -> NodeState {
        let unknown = |_: &str, _: &str| Health::Unknown;
        desired_state(
            &self.config,
            &Inputs {
                health: &unknown,
                node_address: self.node_address,
            },
        )
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
