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

/// CEL: whether the VirtualServer is dual-stack (two families asked for, or two addresses given).
const DUAL_STACK: &str = "((has(self.families) && size(self.families) == 2) || (has(self.addresses) && size(self.addresses) == 2))";
/// CEL, for a dual-stack VirtualServer: whether one of its VIPs is IPv4 (it always is: both are).
const HAS_IPV4: &str =
    "(has(self.families) ? 'IPv4' in self.families : self.addresses.exists(a, ip(a).family() == 4))";
/// CEL, for a single-stack VirtualServer: its given VIP is IPv4, or none is given.
const SINGLE_IPV4: &str = "(has(self.address) ? ip(self.address).family() == 4 : !has(self.addresses) || ip(self.addresses[0]).family() == 4)";
/// CEL, for a single-stack VirtualServer: its given VIP is IPv6, or none is given.
const SINGLE_IPV6: &str = "(has(self.address) ? ip(self.address).family() == 6 : !has(self.addresses) || ip(self.addresses[0]).family() == 6)";
/// CEL, for a dual-stack VirtualServer: whether one of its VIPs is IPv6.
const HAS_IPV6: &str =
    "(has(self.families) ? 'IPv6' in self.families : self.addresses.exists(a, ip(a).family() == 6))";

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
    printcolumn(name = "VIP", type_ = "string", json_path = ".status.vip"),
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
    validation = Rule::new("!has(self.addressPool) || !has(self.fwmark) || has(self.address)").message("addressPool with fwmark needs address: a fwmark service without address has no VIP").field_path(".addressPool"),
    validation = Rule::new("!has(self.schedulerFlags) || self.schedulerFlags.all(f, f.startsWith(self.scheduler + '-'))").message("scheduler flags must belong to the scheduler (sh-* for sh, mh-* for mh)").field_path(".schedulerFlags"),
    validation = Rule::new("!self.onePacket || self.protocol == 'UDP'").message("onePacket is only for UDP services").field_path(".onePacket"),
    validation = Rule::new("!has(self.fwmarkPorts) || (has(self.fwmark) && has(self.address))").message("fwmarkPorts needs fwmark and address").field_path(".fwmarkPorts"),
    validation = Rule::new("!has(self.address) || !has(self.family) || (self.family == 'IPv4') == (ip(self.address).family() == 4)").message("family does not match the address").field_path(".family"),
    validation = Rule::new("!has(self.address) || !has(self.addresses)").message("set address or addresses, not both").field_path(".addresses"),
    validation = Rule::new("!has(self.family) || !has(self.families)").message("set family or families, not both").field_path(".families"),
    validation = Rule::new("!has(self.addresses) || !has(self.family) || self.addresses.all(a, (self.family == 'IPv4') == (ip(a).family() == 4))").message("family does not match the addresses; use families for a dual-stack VirtualServer").field_path(".family"),
    validation = Rule::new("!has(self.addresses) || size(self.addresses) < 2 || ip(self.addresses[0]).family() != ip(self.addresses[1]).family()").message("addresses holds at most one address per family (one IPv4, one IPv6)").field_path(".addresses"),
    validation = Rule::new("!has(self.families) || !has(self.address) || (ip(self.address).family() == 4 ? 'IPv4' : 'IPv6') in self.families").message("address is not of one of families").field_path(".address"),
    validation = Rule::new("!has(self.families) || !has(self.addresses) || self.addresses.all(a, (ip(a).family() == 4 ? 'IPv4' : 'IPv6') in self.families)").message("every address must be of one of families").field_path(".addresses"),
    validation = Rule::new("!has(self.fwmark) || (!has(self.addresses) && !has(self.families))").message("addresses and families are for port services; a fwmark service has one address family").field_path(".fwmark"),
    validation = Rule::new(format!("!has(self.persistence) || !has(self.persistence.netmask) || !has(self.persistence.prefixLength) || {DUAL_STACK}")).message("set netmask (IPv4) or prefixLength (IPv6), not both (both only for a dual-stack VirtualServer)").field_path(".persistence.prefixLength"),
    validation = Rule::new(format!("!has(self.persistence) || !has(self.persistence.netmask) || ({DUAL_STACK} ? {HAS_IPV4} : {SINGLE_IPV4})")).message("netmask is for IPv4 services; use prefixLength for IPv6").field_path(".persistence.netmask"),
    validation = Rule::new(format!("!has(self.persistence) || !has(self.persistence.prefixLength) || ({DUAL_STACK} ? {HAS_IPV6} : {SINGLE_IPV6})")).message("prefixLength is for IPv6 services; use netmask for IPv4").field_path(".persistence.prefixLength"),
    validation = Rule::new("!has(self.realServers) || !has(self.realServers.port) || !has(self.port) || self.forwarding.method == 'NAT' || self.realServers.port == self.port").message("only NAT may map real servers to another port than the service port").field_path(".realServers.port"),
    validation = Rule::new("!has(self.realServers) || self.realServers.arpMethod != 'Redirect' || self.forwarding.method != 'Tunnel'").message("Redirect does not apply to Tunnel; use Sysctl or NFTablesARP").field_path(".realServers.arpMethod"),
    validation = Rule::new("!has(self.fallback) || !has(self.fallback.port) || !has(self.port) || self.forwarding.method == 'NAT' || self.fallback.port == self.port").message("only NAT may map the fallback server to another port than the service port").field_path(".fallback.port"),
    validation = Rule::new(format!("!has(self.fallback) || self.forwarding.method == 'Tunnel' || !isIP(self.fallback.address) || {DUAL_STACK} || ") + "(has(self.address) ? (!isIP(self.address) || ip(self.fallback.address).family() == ip(self.address).family()) : ip(self.fallback.address).family() == (has(self.family) && self.family == 'IPv6' ? 6 : 4))").message("the fallback server must be of the VIP's address family; only Tunnel may forward across families").field_path(".fallback.address"),
    validation = Rule::new("!has(self.healthCheck) || self.protocol == 'TCP' || !(self.healthCheck.type in ['TCP', 'HTTP', 'HTTPS']) || has(self.healthCheck.port)").message("a TCP, HTTP or HTTPS check of a UDP or SCTP service needs healthCheck.port: the service port is not a TCP port").field_path(".healthCheck.port"),
    validation = Rule::new("!has(self.fwmark) || has(self.port) || has(self.realServers.port) || (has(self.healthCheck) ? (self.healthCheck.type == 'None' || has(self.healthCheck.port)) : self.protocol != 'TCP')").message("a fwmark service has no port to probe: set healthCheck.port (or realServers.port with NAT), or healthCheck.type None").field_path(".healthCheck.port"),
    validation = Rule::new("!has(self.healthCheck) || !has(self.healthCheck.http) || ".to_owned() + &crate::limits::http_path("self.healthCheck.http.path")).message(crate::limits::HTTP_PATH_MESSAGE).field_path(".healthCheck.http.path"),
    validation = Rule::new("!has(self.healthCheck) || !has(self.healthCheck.http) || !has(self.healthCheck.http.host) || ".to_owned() + &crate::limits::http_host("self.healthCheck.http.host")).message(crate::limits::HTTP_HOST_MESSAGE).field_path(".healthCheck.http.host"),
    validation = Rule::new("!has(self.healthCheck) || !has(self.healthCheck.dns) || ".to_owned() + &crate::limits::dns_query_name("self.healthCheck.dns.queryName")).message(crate::limits::DNS_QUERY_NAME_MESSAGE).field_path(".healthCheck.dns.queryName"),
    validation = Rule::new("!has(self.forwarding.tunnel) || self.forwarding.tunnel.type != 'IPIP' || self.forwarding.tunnel.checksum == 'None'").message("an IPIP tunnel has no checksum; use GUE or GRE").field_path(".forwarding.tunnel.checksum"),
    validation = Rule::new("!has(self.forwarding.tunnel) || self.forwarding.tunnel.type != 'GRE' || self.forwarding.tunnel.checksum != 'RemoteChecksum'").message("remote checksum offload is GUE only; use Checksum with GRE").field_path(".forwarding.tunnel.checksum")
)]
pub struct VirtualServerSpec {
    /// The virtual IP (IPv4 or IPv6) clients connect to: the directors hold it and the real servers
    /// accept its traffic. It must be in an AddressPool that admits this namespace, and no node's
    /// own address. Default (without `fwmark`): the controller picks a free address of `family`
    /// from such a pool and shows it in `status.address`; it stays this object's until deleted.
    /// With `fwmark`, the directors mark traffic to this address themselves; a fwmark service
    /// without it balances traffic you mark yourself. For a dual-stack VirtualServer, use
    /// `addresses`, or this address with `families: [IPv4, IPv6]` to have the other family's VIP
    /// picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: Option<String>,
    /// The VIPs of a dual-stack VirtualServer, at most one per family (an IPv4 and an IPv6
    /// address), instead of `address`; each must be in an AddressPool that admits this namespace.
    /// Each VIP is served by the selected RealServers of its own family (for every method: a
    /// RealServer of the other family is simply not a destination of that VIP), and each has its
    /// own IPVS service, real-server setup and director election. Not with `fwmark`. Default:
    /// `address`, or the VIPs the controller picks for `families`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2), inner(length(max = 45)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(a, isIP(a))").message("every entry must be an IPv4 or IPv6 address"))]
    pub addresses: Option<Vec<String>>,
    /// The address families of the VIPs, like a Service's `ipFamilies`: `[IPv4]`, `[IPv6]`, or
    /// both for dual-stack (`[IPv4, IPv6]`; the order does not matter). For each family without an
    /// address in `address` or `addresses`, the controller picks a free address of that family
    /// from an AddressPool that admits this namespace (each family may come from another pool)
    /// and shows it in `status.addresses`. Adding `families: [IPv4, IPv6]` to a VirtualServer with
    /// an IPv4 `address` keeps that address and adds an IPv6 VIP. Not with `family` or `fwmark`.
    /// Default: the family of `address` or `addresses`, else `family`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub families: Option<Vec<AddressFamily>>,
    /// The AddressPool to take the VIP from (default: any pool that admits this namespace and
    /// holds `address`; for an address picked by the controller, the first such pool by name with
    /// `autoAssign`). For a dual-stack VirtualServer, both VIPs come from this pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub address_pool: Option<String>,
    /// Port clients connect to, 1–65535. Required unless `fwmark` is set, and not allowed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Transport protocol: TCP (the default), UDP or SCTP.
    #[serde(default)]
    pub protocol: Protocol,
    /// Balance traffic carrying this firewall mark, 1–4294967295, instead of one address and port
    /// (for example several ports that must share persistence). With `address` the directors mark
    /// traffic to it themselves; without, mark it yourself on the directors. Not allowed with
    /// `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub fwmark: Option<u32>,
    /// With `fwmark` and `address`: the destination ports to mark, 1 to 64 ports (default: every
    /// port of `protocol`). Real servers with arpMethod Redirect need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub fwmark_ports: Option<Vec<ServicePort>>,
    /// Address family of the VIP the controller picks when `address` is omitted, and of a fwmark
    /// service without `address`: IPv4 (the default) or IPv6. With `address` it follows the
    /// address, and must match it when set. For dual-stack, use `families` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<AddressFamily>,
    /// IPVS scheduler that picks the real server for each new connection (default wlc): rr round
    /// robin, wrr weighted round robin, lc least connections, wlc weighted least connections, lblc
    /// and lblcr locality-based least connections (without and with replication), dh destination
    /// hashing, sh source hashing, sed shortest expected delay, nq never queue, fo weighted
    /// failover, ovf weighted overflow, mh Maglev hashing, twos weighted random twos choice. The
    /// directors' kernel needs the module `ip_vs_<name>`.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// Up to two flags of the hashing schedulers: sh-fallback and sh-port for sh, mh-fallback and
    /// mh-port for mh. A `-fallback` flag picks another real server when the hashed one is
    /// unavailable (weight 0 or over its upper threshold) instead of dropping the connection; a
    /// `-port` flag adds the client's source port to the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2))]
    pub scheduler_flags: Option<Vec<SchedulerFlag>>,
    /// UDP only: schedule every datagram on its own, instead of sending the datagrams of one client
    /// address and port to the same real server (for DNS and similar request/response protocols).
    /// Default false.
    #[serde(default)]
    pub one_packet: bool,
    /// How the directors forward packets to the real servers: DirectRouting (the default), NAT or
    /// Tunnel.
    #[serde(default)]
    pub forwarding: ForwardingSpec,
    /// Send each client (or client network) to the same real server for a while. Default: none,
    /// every new connection is scheduled on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistenceSpec>,
    /// Which director nodes serve this VIP, where they hold it and how they fail over. Default:
    /// every node labelled `lvs.operator.io/director=true`, VIP on `lvs0`.
    #[serde(default)]
    pub directors: DirectorsSpec,
    /// Which `RealServer` objects in this namespace serve the VIP, and how their nodes are set up
    /// to accept its traffic.
    pub real_servers: RealServersSpec,
    /// How each director checks the real servers. Default: a TCP connect every 5 s (timeout 3 s,
    /// rise 2, fall 3) for TCP services; no checks for UDP and SCTP, where every real server counts
    /// as healthy. A fwmark service has no port to probe: give its checks a `port` (or set
    /// `realServers.port`, NAT), or type None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// What to do with a real server that fails its checks: Quiescent (the default) keeps it with
    /// weight 0, so existing connections continue; Remove takes it out of the IPVS service, and its
    /// existing connections are no longer forwarded.
    #[serde(default)]
    pub on_failure: FailureAction,
    /// The "sorry server" that takes new connections while no real server can (none healthy, or
    /// every weight 0). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSpec>,
}

/// A port number, 1–65535.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(transparent)]
pub struct ServicePort(#[schemars(range(min = 1))] pub u16);

/// The director nodes of a VirtualServer: which nodes, their uplink, where they hold the VIP, and
/// failover between them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.vipPlacement != 'Interface' || has(self.interface)").message("vipPlacement Interface needs interface").field_path(".interface"))]
pub struct DirectorsSpec {
    /// Labels (exact key and value, up to 8) a node must carry, besides
    /// `lvs.operator.io/director=true`, to direct this VirtualServer. Narrows the set of director
    /// nodes, never widens it (default: every director node).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 8, "additionalProperties" = {"type": "string", "maxLength": 63}))]
    #[x_kube(validation = Rule::new(crate::limits::LABEL_KEYS).message(crate::limits::LABEL_KEYS_MESSAGE))]
    pub node_selector: BTreeMap<String, String>,
    /// The directors' uplink, where clients' traffic arrives: gratuitous ARP (IPv4) and unsolicited
    /// neighbour advertisements (IPv6) go out there, with failover a director whose uplink is down
    /// hands the VIP over, and connection sync uses it unless told otherwise. Required for
    /// vipPlacement Interface. 1–15 characters, not `.` or `..`, without `/`, `:`, whitespace or
    /// control characters. Default: every interface with an address in the VIP's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    #[x_kube(validation = Rule::new(crate::limits::INTERFACE_NAME).message(crate::limits::INTERFACE_NAME_MESSAGE))]
    pub interface: Option<String>,
    /// Where a director holds the VIP: Dummy (the default) on the operator's dummy device `lvs0`,
    /// leaving the uplink's addresses alone — except an IPv6 VIP, which Linux answers neighbour
    /// solicitation for only on the interface it arrives on: it is held on the uplink as a
    /// deprecated /128, never a source address (on `lvs0` when no interface's network contains
    /// it); Interface on `interface` itself.
    #[serde(default)]
    pub vip_placement: VipPlacement,
    /// Failover, used only when more than one node directs this VIP: the directors elect the one
    /// that holds it over authenticated UDP heartbeats, and a standby takes over
    /// `heartbeatIntervalMillis × deadAfter` (600 ms by default) after the active one falls silent.
    #[serde(default)]
    pub high_availability: crate::HighAvailabilitySpec,
}

/// The real servers of a VirtualServer and how their nodes accept the VIP's traffic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RealServersSpec {
    /// Selects the `RealServer` objects, in the VirtualServer's namespace, that serve it, by their
    /// labels: up to 8 `matchLabels` and 4 `matchExpressions` (of up to 8 values each). An empty
    /// selector selects every RealServer in the namespace.
    #[schemars(schema_with = "crate::limits::label_selector")]
    pub selector: LabelSelector,
    /// Port of the real servers that set none themselves, 1–65535 (default: the service port). Only
    /// NAT may differ from the service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// How real-server nodes accept the VIP's traffic without answering ARP for it. Sysctl (the
    /// default): the VIP on `vipDevice` plus node-wide `arp_ignore=1` and `arp_announce=2`.
    /// NFTablesARP: the VIP on `vipDevice` plus an nftables ARP filter, sysctls untouched.
    /// Redirect: no VIP; nftables redirects VIP:port to the node (not for Tunnel).
    #[serde(default)]
    pub arp_method: ArpMethod,
    /// Direct routing: the device real-server nodes hold the VIP on, Loopback (`lo`, the default)
    /// or Dummy (the operator's `lvs0`). Tunnel real servers use the tunnel device; Redirect needs
    /// none.
    #[serde(default)]
    pub vip_device: VipDevice,
    /// Connection limits on each director for the real servers that set none themselves (default:
    /// no limits). A RealServer's own `thresholds` replace these as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdsSpec>,
}

/// The fallback ("sorry") server. The operator does not set up its node: for DirectRouting and
/// Tunnel it must accept the VIP's traffic itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FallbackSpec {
    /// Address of the fallback server, IPv4 or IPv6. It must be of the VIP's address family unless
    /// the method is Tunnel.
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("must be an IPv4 or IPv6 address"))]
    pub address: String,
    /// Port of the fallback server, 1–65535 (default: the service port). Only NAT may use a
    /// different port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
}

/// Observed state of a VirtualServer, written by lvs-controller from its directors' reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerStatus {
    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The VIP in use: `spec.address`, or the one the controller picked; for a dual-stack
    /// VirtualServer the first of `addresses` (IPv4). Absent while the object is not accepted
    /// (and for fwmark services without address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The AddressPool the VIP belongs to (or belonged to when it was picked); for a dual-stack
    /// VirtualServer, the pool of `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_pool: Option<String>,
    /// Every VIP in use with its AddressPool, IPv4 first: one entry for a single-stack
    /// VirtualServer, two for a dual-stack one. Absent while the object is not accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<VirtualServerAddress>,
    /// Every VIP in use, joined by a comma, IPv4 first (e.g. `192.0.2.10,2001:db8::10`), for the
    /// VIP column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    /// Accepted (valid, and no other VirtualServer claims its VIP, port and protocol), Programmed
    /// (every director has programmed the IPVS service), Ready (the active director sends traffic
    /// to at least one real server), Degraded (some real servers or directors are not serving) and,
    /// with more than one director, DuplicateVIP (another host answers for the VIP) and
    /// FailoverKeyMismatch (a director hears a peer sign its heartbeats with another key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The director node holding the VIP: the first director that has programmed the current spec
    /// and reports the Active role. Absent while there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_director: Option<String>,
    /// Real servers taking new connections out of all selected, as `ready/total` (e.g. `2/3`), for
    /// the READY column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Selected real servers the active director sends new connections to: weight above 0 in its
    /// kernel and not failing their checks.
    #[serde(default)]
    pub ready_real_servers: u32,
    /// Real servers this VirtualServer selects, Draining and Disabled ones included.
    #[serde(default)]
    pub total_real_servers: u32,
    /// Every director node of this VirtualServer, with its role and whether it has programmed the
    /// current spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directors: Vec<DirectorStatus>,
    /// The newest takeover of the VIP any of its directors reported; absent with a single director
    /// or before the first takeover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<crate::FailoverRecord>,
}

/// One VIP of a VirtualServer and the AddressPool it comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerAddress {
    /// The VIP, IPv4 or IPv6.
    pub address: String,
    /// The AddressPool it belongs to (or belonged to when it was picked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_pool: Option<String>,
}

/// One director of a VirtualServer, as its agent reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorStatus {
    /// Name of the director node.
    pub node: String,
    /// Active (holds the VIP) or Standby; absent until the node's agent has reported. A sole
    /// director is always Active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::FailoverRole>,
    /// Whether the node's agent has programmed the IPVS service for the current spec.
    #[serde(default)]
    pub programmed: bool,
}
