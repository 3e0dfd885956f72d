//! `AddressPool`: the cluster admin's grant of VIPs — which addresses, to which namespaces, on
//! which directors and interfaces, with which forwarding methods, towards which backend networks.
//! Cluster-scoped; tenants can read pools but not write them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::ForwardingMethod;

/// VIPs the cluster admin grants to some namespaces. A VirtualServer is accepted only with a VIP
/// from a pool that admits its namespace; without `address`, the controller picks one.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "lvs.operator.io",
    version = "v1alpha1",
    kind = "AddressPool",
    plural = "addresspools",
    singular = "addresspool",
    shortname = "lvspool",
    shortname = "vippool",
    category = "lvs",
    status = "AddressPoolStatus",
    derive = "PartialEq",
    doc = "VIPs the cluster admin grants to namespaces, with the directors, methods and backends they may use.",
    printcolumn(name = "Addresses", type_ = "string", json_path = ".status.addresses"),
    printcolumn(name = "Allocated", type_ = "string", json_path = ".status.usage"),
    printcolumn(name = "Namespaces", type_ = "string", json_path = ".status.namespaces"),
    printcolumn(
        name = "Overlaps",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Overlapping\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.namespaces) || has(self.namespaceSelector)").message("set namespaces, namespaceSelector or both: a pool admits no namespace by default (namespaceSelector: {} admits every namespace)").field_path(".namespaces")
)]
pub struct AddressPoolSpec {
    /// The VIPs of this pool, 1–64 entries, IPv4 and IPv6 mixed: CIDRs (`192.0.2.0/28`,
    /// `2001:db8:1::/120`), single addresses, or inclusive ranges (`192.0.2.10-192.0.2.20`). Every
    /// address counts, network and broadcast addresses of a CIDR included. Addresses in
    /// special-purpose blocks (link-local, documentation, reserved, …) are usable only when an
    /// entry lies entirely inside such a block, i.e. when the admin asked for them.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(a, isCIDR(a) ? cidr(a) == cidr(a).masked() : (isIP(a) || (a.split('-').size() == 2 && isIP(a.split('-')[0].trim()) && isIP(a.split('-')[1].trim()) && ip(a.split('-')[0].trim()).family() == ip(a.split('-')[1].trim()).family())))").message("each entry must be a CIDR without host bits (192.0.2.0/28), an address, or a range first-last of one family"))]
    pub addresses: Vec<PoolAddress>,
    /// Whether VirtualServers without `address` may be given an address from this pool (default
    /// true). With false, only VirtualServers that ask for one of its addresses get it.
    #[serde(default = "default_true")]
    pub auto_assign: bool,
    /// Names of the namespaces whose VirtualServers may use this pool, up to 256. A namespace is
    /// admitted when it is listed here or matches `namespaceSelector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub namespaces: Vec<NamespaceName>,
    /// Labels of the namespaces whose VirtualServers may use this pool. `{}` admits every
    /// namespace. Default: none besides `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Which directors may hold this pool's VIPs, and on which interfaces. Default: every director
    /// node, any interface.
    #[serde(default)]
    pub directors: PoolDirectorsSpec,
    /// The forwarding methods this pool's VirtualServers may use (default: all of DirectRouting,
    /// NAT and Tunnel).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub forwarding_methods: Vec<ForwardingMethod>,
    /// Networks (CIDRs, up to 64) the real servers and fallback servers of this pool's
    /// VirtualServers must be in. Default: any network — except, always, special-purpose addresses
    /// (unless an entry here lies inside their block), node addresses of the VirtualServer's
    /// directors, and the cluster's Service network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.all(n, isCIDR(n) ? cidr(n) == cidr(n).masked() : isIP(n))").message("each entry must be a CIDR without host bits (10.0.0.0/8) or an address"))]
    pub backend_networks: Vec<PoolNetwork>,
    /// Which real-server nodes are set up (VIP, ARP settings) for this pool's VIPs.
    #[serde(default)]
    pub real_server_nodes: PoolRealServerNodesSpec,
}

fn default_true() -> bool {
    true
}

/// One entry of a pool's `addresses`: a CIDR, a single address, or `first-last`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct PoolAddress(#[schemars(length(min = 2, max = 91))] pub String);

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a single address is a /32 or /128.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct PoolNetwork(#[schemars(length(min = 2, max = 43))] pub String);

/// A namespace name (RFC 1123 label).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(transparent)]
pub struct NamespaceName(#[schemars(length(min = 1, max = 63))] pub String);

/// The directors and interfaces of a pool's VIPs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolDirectorsSpec {
    /// Labels (exact key and value, up to 8) a director node must carry to hold this pool's VIPs;
    /// a VirtualServer's directors are those its own selector picks among them. Default: every
    /// director node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8))]
    pub node_selector: BTreeMap<String, String>,
    /// The uplink interfaces (up to 16) a VirtualServer of this pool may name in
    /// `directors.interface`. Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub interfaces: Vec<InterfaceName>,
}

/// A network interface name, 1–15 characters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct InterfaceName(#[schemars(length(min = 1, max = 15))] pub String);

/// Which real-server nodes the operator sets up for a pool's VIPs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolRealServerNodesSpec {
    /// Labels (exact key and value, up to 8) a node must carry, besides
    /// `lvs.operator.io/real-server=true`, to get this pool's VIPs and ARP settings. Default: every
    /// real-server node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8))]
    pub node_selector: BTreeMap<String, String>,
    /// Whether a RealServer may name, in `node`, a node that does not own its address (default
    /// false: the named node must have the address among its InternalIP and ExternalIP
    /// addresses).
    #[serde(default)]
    pub allow_pinning: bool,
}

/// Observed state of an AddressPool, written by lvs-controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressPoolStatus {
    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Valid (the spec parses; False names the entry that does not) and Overlapping (True when
    /// another pool holds some of the same addresses, naming it; such addresses are usable by
    /// the namespaces either pool admits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The pool's addresses as one line, for the ADDRESSES column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<String>,
    /// VIPs of this pool in use by VirtualServers.
    #[serde(default)]
    pub allocated: u32,
    /// How many addresses the pool holds (saturating at 2^64−1 for large IPv6 ranges).
    #[serde(default)]
    pub total: u64,
    /// VIPs handed out from this pool that are no longer inside its addresses (after the pool was
    /// shrunk): they keep working and are flagged on their VirtualServers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outside_addresses: Vec<String>,
    /// `allocated/total`, for the ALLOCATED column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// The namespaces admitted, as one line (names, and the selector), for the NAMESPACES column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<String>,
}
