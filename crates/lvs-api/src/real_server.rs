//! `RealServer`: one backend that VirtualServers select by label — its address, optional port,
//! weight, node and administrative state.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{RealServerState, ThresholdsSpec};

/// A backend server. VirtualServers in the same namespace select it by its labels.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "lvs.operator.io",
    version = "v1alpha1",
    kind = "RealServer",
    plural = "realservers",
    singular = "realserver",
    shortname = "lvsrs",
    shortname = "realsrv",
    category = "lvs",
    namespaced,
    status = "RealServerStatus",
    derive = "PartialEq",
    doc = "A backend server of IPVS virtual services.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".spec.weight"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state"),
    printcolumn(
        name = "Healthy",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Healthy\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RealServerSpec {
    /// The server's IPv4 or IPv6 unicast address: where the directors send its traffic, and how its
    /// node is found when `node` is not set.
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: String,
    /// Port the server listens on, 1–65535 (default: the VirtualServer's `realServers.port`, else
    /// its service port). Only a NAT VirtualServer may use another port than its service port;
    /// elsewhere the pair is refused with PortRemapNotAllowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Relative share of new connections, 0–65535 (default 1). 0 takes no new connections;
    /// schedulers without weights (rr, lc, …) treat every other value alike.
    #[serde(default = "default_weight")]
    pub weight: u16,
    /// Name of the node the server runs on (default: the node with `address` among its InternalIP
    /// and ExternalIP addresses). That node gets the VIP and ARP settings only if it is labelled
    /// `lvs.operator.io/real-server=true`; a server on no known node is left to its administrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(crate::limits::NODE_NAME).message(crate::limits::NODE_NAME_MESSAGE))]
    pub node: Option<String>,
    /// Active (the default) takes traffic by weight and health; Draining keeps weight 0, so
    /// existing connections continue but no new ones arrive; Disabled is removed from every
    /// service. Draining and Disabled servers are not health-checked.
    #[serde(default)]
    pub state: RealServerState,
    /// Connection limits on each director (default: the VirtualServer's `realServers.thresholds`,
    /// which these replace as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,
}

fn default_weight() -> u16 {
    1
}

/// Observed state of a RealServer, written by lvs-controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealServerStatus {
    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Healthy (the directors' health checks pass) and Configured (its node holds the VIP and ARP
    /// settings its VirtualServers need; Unknown when the operator does not manage its node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The node this real server was resolved to, from `node` or its address, even one without the
    /// real-server label; absent when it is on no node of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The VirtualServers (`namespace/name`) that select this real server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<String>,
}
