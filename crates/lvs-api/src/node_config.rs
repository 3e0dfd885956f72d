//! `LvsNodeConfig`: the fully resolved intent for one node, written by the controller (or built
//! in memory by a standalone agent) and read only by that node's agent, which reports back in
//! its status. Large configs are split into shards found by the `lvs.operator.io/node` label.

use std::net::IpAddr;

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
    /// Name of the node this config is for. Its agent reads only the configs labelled
    /// `lvs.operator.io/node=<nodeName>`.
    pub node_name: String,
    /// Which part of the node's config this object holds (default: index 0 of 1). A config over 256
    /// KiB is split into shards; the first holds the sysctls.
    #[serde(default)]
    pub shard: Shard,
    /// IPVS services this node runs as a director, one per VirtualServer, sorted by VirtualServer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub director_services: Vec<DirectorService>,
    /// VIPs this node accepts traffic for as a real server, sorted by address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real_server_vips: Vec<RealServerVip>,
    /// Kernel parameters the node's roles need: ARP suppression on real servers (arpMethod Sysctl),
    /// relaxed reverse-path filtering on tunnel real servers, forwarding and IPVS conntrack on NAT
    /// directors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<SysctlSetting>,
}

/// Position of one object among the shards of a node's config.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// 0-based index of this shard. Shard 0 is named after the node, the others
    /// `<node>-shard-<index>`.
    pub index: u32,
    /// How many shards the node's config has, at least 1. Until the agent has seen them all it
    /// programs what it has and removes nothing.
    #[schemars(range(min = 1))]
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

/// One IPVS service as a director programs it: one VirtualServer, resolved, with defaults filled
/// in.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorService {
    /// The VirtualServer it comes from, as `namespace/name`.
    pub virtual_server: String,
    /// The VirtualServer's `metadata.generation` this entry was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The VIP; absent for a fwmark service whose traffic is marked by someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Service port; absent for fwmark services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Transport protocol: TCP, UDP or SCTP.
    pub protocol: Protocol,
    /// Firewall mark of a fwmark service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Destination ports the director marks for a fwmark service with an address (empty: every
    /// port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fwmark_ports: Vec<u16>,
    /// For a fwmark service with an address: the bits of the packet mark the director's marking
    /// rule writes (`fwmark` lies inside them); the other bits are left as they were. Absent: the
    /// whole mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark_mask: Option<u32>,
    /// Address family of the service: IPv4 or IPv6.
    pub family: AddressFamily,
    /// IPVS scheduler, by its kernel name (e.g. `wlc`).
    pub scheduler: Scheduler,
    /// Scheduler flags (sh-fallback, sh-port, mh-fallback, mh-port), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduler_flags: Vec<SchedulerFlag>,
    /// Whether each UDP datagram is scheduled on its own.
    #[serde(default)]
    pub one_packet: bool,
    /// Forwarding method of every destination and, for Tunnel, the encapsulation.
    pub forwarding: ForwardingSpec,
    /// Client persistence, with the mask resolved to a prefix length; absent without persistence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<ResolvedPersistence>,
    /// Uplink for announcements, the uplink check and `Interface` placement; absent: every
    /// interface with an address in the VIP's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Where the director holds the VIP: Dummy (`lvs0`) or Interface.
    pub vip_placement: VipPlacement,
    /// Health checking, with defaults filled in; type None means no checks.
    pub health_check: HealthCheckSpec,
    /// What happens to a real server failing its checks: Quiescent (weight 0) or Remove.
    pub on_failure: FailureAction,
    /// The fallback ("sorry") server, with its port resolved; it takes new connections while every
    /// destination has weight 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Endpoint>,
    /// Every director of this service (node names, sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directors: Vec<String>,
    /// Failover among the directors; absent when this node is the only director.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<crate::ResolvedHighAvailability>,
    /// The real servers, sorted by RealServer; Disabled ones are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
}

impl DirectorService {
    /// The VIP and failover settings of a service with an election (more than one director and
    /// an address); None otherwise.
    pub fn failover(&self) -> Option<(IpAddr, &crate::ResolvedHighAvailability)> {
        Some((self.address?, self.high_availability.as_ref()?))
    }
}

/// Client persistence with its mask resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPersistence {
    /// Seconds a client stays with its real server after its last connection.
    pub timeout_seconds: u32,
    /// Clients whose addresses share this many leading bits share a real server (32 for IPv4 or 128
    /// for IPv6: each address on its own).
    pub prefix_length: u8,
}

/// An address and port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// IPv4 or IPv6 address.
    pub address: IpAddr,
    /// Port; 0 for a fwmark service means the packet's own destination port.
    pub port: u16,
}

/// One real server of a director service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The RealServer it comes from, as `namespace/name`.
    pub real_server: String,
    /// The real server's address.
    pub address: IpAddr,
    /// The real server's port; 0 for a fwmark service means the packet's own destination port.
    pub port: u16,
    /// Weight from the RealServer (0 when Draining). In the kernel, failed health checks and
    /// `awaitingNode` may lower it to 0.
    pub weight: u16,
    /// Connection limits: the RealServer's, else the VirtualServer's (0: no limit).
    #[serde(default)]
    pub thresholds: ThresholdsSpec,
    /// Administrative state, Active or Draining (Disabled real servers are left out).
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
    pub address: IpAddr,
    /// How the node avoids answering ARP for it: Sysctl, NFTablesARP or Redirect.
    pub arp_method: ArpMethod,
    /// Device holding the VIP: `lo`, `lvs0`, or a tunnel device (`tunl0`, `ip6tnl0`, `gre0`,
    /// `ip6gre0`); absent for Redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Tunnel decapsulation, for the Tunnel method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSpec>,
    /// Ports traffic to the VIP arrives on, with their protocol; Redirect rules need them. Empty:
    /// every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortProtocol>,
    /// The VirtualServers (`namespace/name`) that need this VIP on this node.
    pub virtual_servers: Vec<String>,
}

/// A port and its transport protocol.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// Port, 1–65535.
    pub port: u16,
    /// Transport protocol: TCP, UDP or SCTP.
    pub protocol: Protocol,
}

/// A kernel parameter the agent sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SysctlSetting {
    /// Path below `/proc/sys`, with `/` separators so interface names may contain dots, e.g.
    /// `net/ipv4/conf/all/arp_ignore`.
    pub name: String,
    /// Value to write, e.g. `1`.
    pub value: String,
}

/// What the node's agent reports about this config (or shard), written by server-side apply (field
/// manager `lvs-agent`) whenever it changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LvsNodeConfigStatus {
    /// The `metadata.generation` of this config the agent last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Synced (the agent applied the whole config to the kernel) and, when this node shares a VIP
    /// with other directors, DuplicateVIP (another host answers ARP or NDP for it) and
    /// FailoverKeyMismatch (a peer director signs its heartbeats with a key this node lacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// State of each director service of this config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
    /// State of each real-server VIP of this config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real_server_vips: Vec<VipStatus>,
    /// Failover state of each VIP this node directs together with other directors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<crate::VipFailoverStatus>,
    /// The connection-sync daemons on this node; present when it directs a failover VIP with
    /// connection sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<crate::ConnectionSyncStatus>,
    /// How many full resyncs (every 30 s by default) found the kernel changed behind the agent's
    /// back, e.g. by `ipvsadm -C`, and put it back, since the agent started.
    #[serde(default)]
    pub drift_repairs: u64,
    /// The first failure of the last sync (and how many more there were), or why the kernel could
    /// not be read; absent when the last sync succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A director service as the agent sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The VirtualServer, as `namespace/name`.
    pub virtual_server: String,
    /// The VIP of this service; a dual-stack VirtualServer has one entry per VIP. Absent for a
    /// fwmark service without address (and from agents older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The VirtualServer's `metadata.generation` of the entry the agent programmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Whether the IPVS service and its destinations are in the kernel.
    pub programmed: bool,
    /// Active when this node holds the VIP, Standby otherwise; a sole director is always Active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::FailoverRole>,
    /// Why the service is not programmed, e.g. the error of a failed operation; absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The condition reason of `message` when it has one of its own, e.g. ForeignService;
    /// absent for a kernel error (KernelError) and when the service is programmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Health and kernel weight of each real server, as this director sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationStatus>,
}

/// One real server as seen from one director.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationStatus {
    /// The RealServer, as `namespace/name`.
    pub real_server: String,
    /// Whether its checks pass: true after the first success or `rise` successes in a row, false
    /// after `fall` failures in a row. Absent before the first verdict (it then counts as healthy),
    /// for Draining real servers, and without checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Its weight in the kernel now: 0 when it failed its checks (Quiescent), is Draining, its node
    /// has not configured the VIP yet, or it is not in the kernel.
    pub weight: u16,
    /// Milliseconds the last check took, passed or failed. Like the counts below, written at full
    /// resyncs (every 30 s by default) or with other status changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_millis: Option<u64>,
    /// Checks passed in a row.
    #[serde(default)]
    pub consecutive_successes: u32,
    /// Checks failed in a row.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Why the last failed check failed, e.g. `connect 10.0.0.11:80: connection refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// A real-server VIP as the agent sees it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VipStatus {
    /// The VIP.
    pub address: IpAddr,
    /// Whether the VIP and its ARP method are in place on this node.
    pub configured: bool,
    /// Why the VIP is not configured, e.g. the error of a failed operation; absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
