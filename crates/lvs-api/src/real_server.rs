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
    /// The server's IPv4 or IPv6 address.
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: String,
    /// Port the server listens on (default: the VirtualServer's real-server port, else its
    /// service port). Only a NAT VirtualServer may map to a different port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Relative share of new connections, 0–65535 (default 1). 0 takes no new connections.
    #[serde(default = "default_weight")]
    pub weight: u16,
    /// The node the server runs on. Default: the node whose addresses include `address`. Only a
    /// node labelled `lvs.operator.io/real-server=true` is ever configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub node: Option<String>,
    /// Active (default), Draining (weight 0, existing connections kept) or Disabled (removed).
    #[serde(default)]
    pub state: RealServerState,
    /// Connection thresholds (default: the VirtualServer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,
}

fn default_weight() -> u16 {
    1
}

/// Observed state of a RealServer, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealServerStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Healthy and Configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The node this real server was resolved to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The VirtualServers (`namespace/name`) that currently select this real server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<String>,
}
