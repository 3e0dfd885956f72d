//! Node roles from labels, and which node a real server runs on. A node is only ever configured
//! when it carries the role label — or, as a real server, when a RealServer derived from a
//! Service places it there; selectors on a VirtualServer narrow the set, never widen it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use lvs_api::labels::{DIRECTOR_ROLE, REAL_SERVER_ROLE, ROLE_ENABLED};

use crate::validate::{ValidRealServer, ValidVirtualServer};

/// What the build needs to know about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Addresses from `status.addresses` (InternalIP and ExternalIP).
    pub addresses: BTreeSet<IpAddr>,
    /// The InternalIP addresses, in the order the Node lists them (the ones peers talk to).
    pub internal_addresses: Vec<IpAddr>,
}

impl NodeFacts {
    /// Extracts the facts from a Node object; addresses that do not parse are skipped.
    pub fn from_node(node: &Node) -> Self {
        let listed = || {
            node.status
                .as_ref()
                .and_then(|status| status.addresses.as_ref())
                .into_iter()
                .flatten()
        };
        let of_type = |type_: &str| {
            listed()
                .filter(|address| address.type_ == type_)
                .filter_map(|address| address.address.parse::<IpAddr>().ok())
                .collect::<Vec<_>>()
        };
        let internal_addresses = of_type("InternalIP");
        let addresses = internal_addresses
            .iter()
            .copied()
            .chain(of_type("ExternalIP"))
            .collect();
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            addresses,
            internal_addresses,
        }
    }

    /// Whether the node carries `lvs.operator.io/director=true`.
    pub fn is_director(&self) -> bool {
        self.labels.get(DIRECTOR_ROLE).map(String::as_str) == Some(ROLE_ENABLED)
    }

    /// Whether the node carries `lvs.operator.io/real-server=true`.
    pub fn is_real_server(&self) -> bool {
        self.labels.get(REAL_SERVER_ROLE).map(String::as_str) == Some(ROLE_ENABLED)
    }
}

/// The nodes, indexed for the lookups the build makes.
#[derive(Debug, Clone, Default)]
pub struct NodeIndex {
    by_name: BTreeMap<String, NodeFacts>,
    by_address: BTreeMap<IpAddr, String>,
}

/// Where a real server runs, as far as configuration goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On a node with the real-server role: the agent there configures it.
    Managed(String),
    /// On a known node without the role label: never configured by us.
    UnlabelledNode(String),
    /// `spec.node` names a node that does not exist.
    MissingNode(String),
    /// Not on any known node (an external server): the administrator configures it.
    External,
}

impl NodeIndex {
    /// Indexes `nodes`.
    pub fn new(nodes: impl IntoIterator<Item = NodeFacts>) -> Self {
        let mut index = Self::default();
        for node in nodes {
            for address in &node.addresses {
                index
                    .by_address
                    .entry(*address)
                    .or_insert_with(|| node.name.clone());
            }
            index.by_name.insert(node.name.clone(), node);
        }
        index
    }

    /// Every node, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeFacts> {
        self.by_name.values()
    }

    /// The node called `name`, if any.
    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.by_name.get(name)
    }

    /// The node that owns `address`, if any.
    pub fn node_with_address(&self, address: &IpAddr) -> Option<&str> {
        self.by_address.get(address).map(String::as_str)
    }

    /// The director nodes of a VirtualServer: role label, its pool's director selector and its
    /// own node selector, sorted by name.
    pub fn directors_of(&self, virtual_server: &ValidVirtualServer) -> Vec<String> {
        self.by_name
            .values()
            .filter(|node| node.is_director())
            .filter(|node| {
                virtual_server
                    .pool
                    .as_ref()
                    .is_none_or(|pool| pool.admits_director(&node.labels))
            })
            .filter(|node| {
                virtual_server
                    .directors
                    .node_selector
                    .iter()
                    .all(|(label, value)| node.labels.get(label) == Some(value))
            })
            .map(|node| node.name.clone())
            .collect()
    }

    /// Where `real_server` runs: its `spec.node`, else the node owning its address.
    pub fn placement_of(&self, real_server: &ValidRealServer) -> Placement {
        let node = match &real_server.node {
            Some(name) => match self.by_name.get(name) {
                Some(node) => node,
                None => return Placement::MissingNode(name.clone()),
            },
            None => match self
                .node_with_address(&real_server.address)
                .and_then(|name| self.by_name.get(name))
            {
                Some(node) => node,
                None => return Placement::External,
            },
        };
        // A RealServer derived from a Service (the controller drops user-made objects carrying
        // the label) makes its node a real server of that VIP without a role label.
        let derived = crate::service::is_generated_label(Some(&real_server.labels));
        if node.is_real_server() || derived {
            Placement::Managed(node.name.clone())
        } else {
            Placement::UnlabelledNode(node.name.clone())
        }
    }
}
