//! `LvsNodeConfig`: the fully resolved intent for one node, written by the controller (or built
//! in memory by a standalone agent) and read only by that node's agent, which reports back in
//! its status. Large configs are split into shards found by the `lvs.operator.io/node` label.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AddressFamily, ArpMethod, FailureAction, ForwardingSpec, HealthCheckSpec, Protocol, RealServerState,
    Scheduler, SchedulerFlag, ThresholdsSpec, TunnelSpec, VipPlacement,
};

/// What one node must program: IPVS services as a director, VIPs as a real server, sysctls.
/// Written by lvs-controller; read-only for users.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "lvs.operator.io",
    version = "v1alpha1",
    kind = "LvsNodeConfig",
    plural = "lvsnodeconfigs",
    singular = "lvsnodeconfig",
    shortname = "lvsnc",
    category = "lvs",
    status = "LvsNodeConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "The resolved lvs-operator configuration of one node (or one shard of it).",
    printcolumn(name = "Node", type_ = "string", json_path = ".spec.nodeName"),
    printcolumn(name = "Shard", type_ = "integer", json_path = ".spec.shard.index"),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct LvsNodeConfigSpec {
    /// The node this config is for.
    pub node_name: String,
    /// Which part of the node's config this object holds.
    #[serde(default)]
    pub shard: Shard,
    /// IPVS services this node runs as a director.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub director_services: Vec<DirectorService>,
    /// VIPs this node accepts traffic for as a real server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real_server_vips: Vec<RealServerVip>,
    /// Kernel parameters the node's roles need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<SysctlSetting>,
}

/// Position of one object among the shards of a node's config.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// 0-based index of this shard.
    pub index: u32,
    /// How many shards the node's config has.
    #[schemars(range(min = 1))]
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

/// One IPVS service as a director programs it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorService {
    /// The VirtualServer, as `namespace/name`.
    pub virtual_server: String,
    /// The VirtualServer's metadata.generation this entry was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The VIP; absent for a fwmark service whose traffic is marked by someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Service port; absent for fwmark services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Firewall mark of a fwmark service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Ports the director marks for a fwmark service with an address (empty: every port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fwmark_ports: Vec<u16>,
    /// Address family.
    pub family: AddressFamily,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Scheduler flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduler_flags: Vec<SchedulerFlag>,
    /// One-packet scheduling (UDP).
    #[serde(default)]
    pub one_packet: bool,
    /// Forwarding method of every destination.
    pub forwarding: ForwardingSpec,
    /// Persistence, with defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<ResolvedPersistence>,
    /// Uplink interface (for gratuitous ARP and `Interface` placement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Where the VIP is held.
    pub vip_placement: VipPlacement,
    /// Health checking, with defaults filled in.
    pub health_check: HealthCheckSpec,
    /// What happens to failing real servers.
    pub on_failure: FailureAction,
    /// The sorry server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Endpoint>,
    /// Every director of this service (node names, sorted), for peering and election.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directors: Vec<String>,
    /// Failover among the directors; absent when this node is the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<crate::ResolvedHighAvailability>,
    /// The real servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
}

impl DirectorService {
    /// The VIP and failover settings of a service with an election (more than one director and
    /// an address); None otherwise.
    pub fn failover(&self) -> Option<(std::net::IpAddr, &crate::ResolvedHighAvailability)> {
        let settings = self.high_availability.as_ref()?;
        let address = self.address.as_deref()?.parse().ok()?;
        Some((address, settings))
    }
}

/// Persistence with its mask resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPersistence {
    /// Timeout in seconds.
    pub timeout_seconds: u32,
    /// Client prefix length that shares a real server (32 or 128: per client address).
    pub prefix_length: u8,
}

/// An address and port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// IP address.
    pub address: String,
    /// Port; 0 for fwmark services means "the packet's own port".
    pub port: u16,
}

/// One real server of a director service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The RealServer, as `namespace/name`.
    pub real_server: String,
    /// Its address.
    pub address: String,
    /// Its port; 0 for fwmark services means "the packet's own port".
    pub port: u16,
    /// Configured weight (health checks may lower it to 0).
    pub weight: u16,
    /// Connection thresholds.
    #[serde(default)]
    pub thresholds: ThresholdsSpec,
    /// Administrative state.
    #[serde(default)]
    pub state: RealServerState,
    /// True while the real server's node has not yet reported its VIP configured; the director
    /// gives it weight 0 until then.
    #[serde(default)]
    pub awaiting_node: bool,
}

/// A VIP a real-server node accepts traffic for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealServerVip {
    /// The VIP.
    pub address: String,
    /// How the node avoids answering ARP for it.
    pub arp_method: ArpMethod,
    /// Device holding the VIP: `lo`, `lvs0`, or a tunnel device; absent for Redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Tunnel decapsulation, for the Tunnel method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSpec>,
    /// Ports traffic arrives on (Redirect rules need them; empty for every port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortProtocol>,
    /// The VirtualServers (`namespace/name`) that need this VIP here.
    pub virtual_servers: Vec<String>,
}

/// A port and protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// Port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// A kernel parameter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SysctlSetting {
    /// Path below `/proc/sys`, with `/` separators so interface names may contain dots, e.g.
    /// `net/ipv4/conf/all/arp_ignore`.
    pub name: String,
    /// Value to write.
    pub value: String,
}

/// What the node's agent reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsNodeConfigStatus {
    /// The generation of the spec the agent last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Synced, DuplicateVIP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// State of each director service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
    /// State of each real-server VIP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real_server_vips: Vec<VipStatus>,
    /// Failover state of each VIP this node directs together with other directors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<crate::VipFailoverStatus>,
    /// The connection-sync daemons, when a failover VIP uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<crate::ConnectionSyncStatus>,
    /// How many times the agent found the kernel drifted from this config and repaired it.
    #[serde(default)]
    pub drift_repairs: u64,
    /// The last error the agent met, if the last sync failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A director service as the agent sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The VirtualServer, as `namespace/name`.
    pub virtual_server: String,
    /// The VirtualServer generation the programmed state reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Whether the IPVS service and its destinations are in the kernel.
    pub programmed: bool,
    /// Active when this node holds the VIP, Standby otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Why it is not programmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Health of each real server from this director.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationStatus>,
}

/// Health of one real server as seen from one director.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationStatus {
    /// The RealServer, as `namespace/name`.
    pub real_server: String,
    /// Whether its checks pass (absent before the first result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Weight in the kernel now.
    pub weight: u16,
    /// Latency of the last check in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_millis: Option<u64>,
    /// Consecutive successful checks.
    #[serde(default)]
    pub consecutive_successes: u32,
    /// Consecutive failed checks.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Reason of the last failed check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// A real-server VIP as the agent sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VipStatus {
    /// The VIP.
    pub address: String,
    /// Whether the VIP and its ARP method are in place.
    pub configured: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
