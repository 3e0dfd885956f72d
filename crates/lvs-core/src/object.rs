//! Identity of the objects the domain talks about: kind, namespace and name.

use std::fmt;

/// The kinds the domain reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `VirtualServer`.
    VirtualServer,
    /// `RealServer`.
    RealServer,
    /// `Node`.
    Node,
    /// `AddressPool` (cluster-scoped).
    AddressPool,
    /// `Namespace` (for the pools' namespace selectors).
    Namespace,
}

impl Kind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VirtualServer => "VirtualServer",
            Self::RealServer => "RealServer",
            Self::Node => "Node",
            Self::AddressPool => "AddressPool",
            Self::Namespace => "Namespace",
        }
    }
}

/// A namespaced (or, for nodes, cluster-scoped) object reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The object's kind.
    pub kind: Kind,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A reference to a namespaced object.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A reference to a node.
    pub fn node(name: impl Into<String>) -> Self {
        Self::cluster(Kind::Node, name)
    }

    /// A reference to a cluster-scoped object.
    pub fn cluster(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: String::new(),
            name: name.into(),
        }
    }

    /// `namespace/name` (or just `name` for cluster-scoped objects), as stored in node configs.
    pub fn qualified_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.kind.as_str(), self.qualified_name())
    }
}

/// The namespace of an object's metadata, defaulting like `kubectl apply` does.
pub fn namespace_of(namespace: Option<&String>) -> String {
    namespace
        .filter(|namespace| !namespace.is_empty())
        .cloned()
        .unwrap_or_else(|| "default".to_owned())
}

/// The key of a namespaced object from its metadata (namespace defaulted like `kubectl apply`).
pub fn key_of(kind: Kind, metadata: &kube::core::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        kind,
        namespace_of(metadata.namespace.as_ref()),
        metadata.name.clone().unwrap_or_default(),
    )
}
