//! `VirtualServer`: one load-balanced service — a VIP and port (or a firewall mark), how to
//! schedule and forward, which nodes direct it, which `RealServer`s serve it, how to check them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    AddressFamily, ArpMethod, FailureAction, ForwardingSpec, HealthCheckSpec, PersistenceSpec, Protocol,
    Scheduler, SchedulerFlag, ThresholdsSpec, VipDevice, VipPlacement,
};

/// A virtual service balanced by IPVS: clients reach `address:port` (or traffic carrying
/// `fwmark`) on a director, which forwards each connection to one of the selected real servers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "lvs.operator.io",
    version = "v1alpha1",
    kind = "VirtualServer",
    plural = "virtualservers",
    singular = "virtualserver",
    shortname = "vs",
    shortname = "lvsvs",
    category = "lvs",
    namespaced,
    status = "VirtualServerStatus",
    derive = "PartialEq",
    doc = "A virtual service balanced by IPVS on the director nodes.",
    printcolumn(name = "VIP", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "Proto", type_ = "string", json_path = ".spec.protocol"),
    printcolumn(name = "Method", type_ = "string", json_path = ".spec.forwarding.method"),
    printcolumn(name = "Sched", type_ = "string", json_path = ".spec.scheduler"),
    printcolumn(name = "Director", type_ = "string", json_path = ".status.activeDirector"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.port) != has(self.fwmark)").message("set exactly one of port and fwmark").field_path(".port"),
    validation = Rule::new("has(self.address) || has(self.fwmark)").message("address is required unless fwmark is set").field_path(".address"),
    validation = Rule::new("!has(self.schedulerFlags) || self.schedulerFlags.all(f, f.startsWith(self.scheduler + '-'))").message("scheduler flags must belong to the scheduler (sh-* for sh, mh-* for mh)").field_path(".schedulerFlags"),
    validation = Rule::new("!self.onePacket || self.protocol == 'UDP'").message("onePacket is only for UDP services").field_path(".onePacket"),
    validation = Rule::new("!has(self.fwmarkPorts) || (has(self.fwmark) && has(self.address))").message("fwmarkPorts needs fwmark and address").field_path(".fwmarkPorts"),
    validation = Rule::new("!has(self.address) || !has(self.family) || (self.family == 'IPv4') == (ip(self.address).family() == 4)").message("family does not match the address").field_path(".family"),
    validation = Rule::new("!has(self.persistence) || !has(self.address) || !has(self.persistence.netmask) || ip(self.address).family() == 4").message("netmask is for IPv4 services; use prefixLength for IPv6").field_path(".persistence.netmask"),
    validation = Rule::new("!has(self.persistence) || !has(self.address) || !has(self.persistence.prefixLength) || ip(self.address).family() == 6").message("prefixLength is for IPv6 services; use netmask for IPv4").field_path(".persistence.prefixLength"),
    validation = Rule::new("!has(self.realServers) || !has(self.realServers.port) || !has(self.port) || self.forwarding.method == 'NAT' || self.realServers.port == self.port").message("only NAT may map real servers to another port than the service port").field_path(".realServers.port"),
    validation = Rule::new("!has(self.realServers) || self.realServers.arpMethod != 'Redirect' || self.forwarding.method != 'Tunnel'").message("Redirect does not apply to Tunnel; use Sysctl or NFTablesARP").field_path(".realServers.arpMethod"),
    validation = Rule::new("!has(self.fallback) || !has(self.fallback.port) || !has(self.port) || self.forwarding.method == 'NAT' || self.fallback.port == self.port").message("only NAT may map the fallback server to another port than the service port").field_path(".fallback.port"),
    validation = Rule::new("!has(self.fallback) || !has(self.address) || ip(self.fallback.address).family() == ip(self.address).family() || self.forwarding.method != 'DirectRouting'").message("a direct-routing fallback server must be of the VIP's address family").field_path(".fallback.address")
)]
pub struct VirtualServerSpec {
    /// The virtual IP (IPv4 or IPv6) clients connect to. Required unless `fwmark` is set; with
    /// `fwmark`, the directors mark traffic to this address themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: Option<String>,
    /// Service port, 1–65535. Omit when `fwmark` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// TCP (default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Protocol,
    /// Balance traffic carrying this firewall mark instead of one address and port (for
    /// example several ports that must share persistence). Set `address` to have the directors
    /// mark traffic to it; otherwise mark it yourself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub fwmark: Option<u32>,
    /// With `fwmark` and `address`: mark only these destination ports (default: every port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub fwmark_ports: Option<Vec<ServicePort>>,
    /// Address family of a fwmark service without `address` (default IPv4). Must match
    /// `address` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<AddressFamily>,
    /// IPVS scheduler: rr, wrr, lc, wlc (default), lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh,
    /// twos.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// Scheduler flags: sh-fallback and sh-port for sh; mh-fallback and mh-port for mh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2))]
    pub scheduler_flags: Option<Vec<SchedulerFlag>>,
    /// UDP only: schedule every datagram on its own instead of per connection (for DNS and
    /// similar request/response protocols).
    #[serde(default)]
    pub one_packet: bool,
    /// How packets reach the real servers (default DirectRouting).
    #[serde(default)]
    pub forwarding: ForwardingSpec,
    /// Send a client back to the same real server for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistenceSpec>,
    /// Which director nodes serve this VIP.
    #[serde(default)]
    pub directors: DirectorsSpec,
    /// Which `RealServer` objects (in this namespace) serve it, and how their nodes are set up.
    pub real_servers: RealServersSpec,
    /// Health checking of the real servers. Default: TCP connect for TCP services, none for UDP
    /// and SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// What to do with a real server that fails its checks: Quiescent (weight 0, default) or
    /// Remove.
    #[serde(default)]
    pub on_failure: FailureAction,
    /// The "sorry server" that takes traffic while no real server is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSpec>,
}

/// A port number, 1–65535.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(transparent)]
pub struct ServicePort(#[schemars(range(min = 1))] pub u16);

/// The director nodes of a VirtualServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.vipPlacement != 'Interface' || has(self.interface)").message("vipPlacement Interface needs interface").field_path(".interface"))]
pub struct DirectorsSpec {
    /// Labels a node must carry, besides `lvs.operator.io/director=true`, to direct this
    /// VirtualServer. Narrows the set of director nodes; never widens it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// The uplink interface clients' traffic arrives on; gratuitous ARP is sent there. Default:
    /// the interface of the route to the VIP's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[x_kube(validation = Rule::new("!self.contains('/') && self != '.' && self != '..'").message("must be a network interface name"))]
    pub interface: Option<String>,
    /// Where the director holds the VIP: Dummy (the `lvs0` device, default) or Interface.
    #[serde(default)]
    pub vip_placement: VipPlacement,
    /// Failover, when more than one director serves this VIP.
    #[serde(default)]
    pub high_availability: crate::HighAvailabilitySpec,
}

/// The real servers of a VirtualServer and how their nodes accept the VIP's traffic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealServersSpec {
    /// Selects `RealServer` objects in the VirtualServer's namespace by their labels.
    pub selector: LabelSelector,
    /// Default port of the real servers (default: the service port). Only NAT may differ from
    /// the service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Direct routing: how real-server nodes avoid answering ARP for the VIP — Sysctl (default),
    /// NFTablesARP or Redirect.
    #[serde(default)]
    pub arp_method: ArpMethod,
    /// Direct routing: the device real-server nodes hold the VIP on — Loopback (default) or
    /// Dummy (`lvs0`). Tunnel real servers always use the tunnel device.
    #[serde(default)]
    pub vip_device: VipDevice,
    /// Connection thresholds for real servers that set none themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,
}

/// The fallback ("sorry") server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FallbackSpec {
    /// Its address.
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: String,
    /// Its port (default: the service port; only NAT may differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
}

/// Observed state of a VirtualServer, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Programmed, Ready, Degraded (and DuplicateVIP when another host claims the VIP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The node that currently holds the VIP and balances traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_director: Option<String>,
    /// Healthy real servers and all selected real servers, as `healthy/total` (e.g. `2/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Number of healthy real servers.
    #[serde(default)]
    pub ready_real_servers: u32,
    /// Number of selected real servers.
    #[serde(default)]
    pub total_real_servers: u32,
    /// Every director of this VirtualServer and its state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directors: Vec<DirectorStatus>,
    /// The last takeover of the VIP by a director.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<crate::FailoverRecord>,
}

/// One director's view of a VirtualServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorStatus {
    /// Node name.
    pub node: String,
    /// Active (holds the VIP) or Standby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Whether the IPVS service is programmed on this node.
    #[serde(default)]
    pub programmed: bool,
}
