//! Value types shared by the user-facing kinds and the resolved per-node config: protocols,
//! schedulers, forwarding methods, health checks, persistence.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The name users and ipvsadm use, e.g. `TCP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

/// IP address family, for services that have no address of their own (fwmark services).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum AddressFamily {
    /// IPv4 (the default).
    #[default]
    IPv4,
    /// IPv6.
    IPv6,
}

/// IPVS scheduling algorithm, by the kernel's (and ipvsadm's) name.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (the kernel's default).
    #[default]
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing (flags `sh-fallback`, `sh-port`).
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing (flags `mh-fallback`, `mh-port`).
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl Scheduler {
    /// Every scheduler, in declaration order.
    pub const ALL: [Scheduler; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
        Self::Twos,
    ];

    /// The kernel's name for the scheduler (module `ip_vs_<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Mh => "mh",
            Self::Twos => "twos",
        }
    }

    /// Looks a scheduler up by its kernel name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheduler| scheduler.as_str() == name)
    }
}

/// A flag that changes how the `sh` or `mh` scheduler hashes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum SchedulerFlag {
    /// `sh`: pick another real server when the hashed one is unavailable (weight 0 or overloaded).
    #[serde(rename = "sh-fallback")]
    ShFallback,
    /// `sh`: include the source port in the hash.
    #[serde(rename = "sh-port")]
    ShPort,
    /// `mh`: pick another real server when the hashed one is unavailable.
    #[serde(rename = "mh-fallback")]
    MhFallback,
    /// `mh`: include the source port in the hash.
    #[serde(rename = "mh-port")]
    MhPort,
}

impl SchedulerFlag {
    /// The flag's name, e.g. `sh-port`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ShFallback => "sh-fallback",
            Self::ShPort => "sh-port",
            Self::MhFallback => "mh-fallback",
            Self::MhPort => "mh-port",
        }
    }

    /// The only scheduler this flag applies to.
    pub fn scheduler(self) -> Scheduler {
        match self {
            Self::ShFallback | Self::ShPort => Scheduler::Sh,
            Self::MhFallback | Self::MhPort => Scheduler::Mh,
        }
    }
}

/// How the director hands packets to real servers.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ForwardingMethod {
    /// Direct routing (LVS-DR, the default): the director rewrites the destination MAC; real
    /// servers on the same L2 segment hold the VIP without answering ARP for it and reply to
    /// clients directly.
    #[default]
    DirectRouting,
    /// Masquerading (LVS-NAT): the director rewrites the destination address (and may remap the
    /// port); replies must return through the director.
    #[serde(rename = "NAT")]
    Nat,
    /// IP tunnelling (LVS-TUN): the director encapsulates packets to real servers, which may be
    /// on other networks; they decapsulate and reply directly.
    Tunnel,
}

/// Encapsulation used by the Tunnel forwarding method.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TunnelType {
    /// IP-in-IP (the default; real servers decapsulate on `tunl0`).
    #[default]
    #[serde(rename = "IPIP")]
    Ipip,
    /// Generic UDP Encapsulation; needs `port`.
    #[serde(rename = "GUE")]
    Gue,
    /// Generic Routing Encapsulation.
    #[serde(rename = "GRE")]
    Gre,
}

/// Checksum handling for GUE and GRE tunnels.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TunnelChecksum {
    /// No checksum (the default).
    #[default]
    None,
    /// Outer checksum.
    Checksum,
    /// Remote checksum offload.
    RemoteChecksum,
}

/// Forwarding method and, for Tunnel, the encapsulation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tunnel) || self.method == 'Tunnel'").message("tunnel may only be set when method is Tunnel").field_path(".tunnel"))]
pub struct ForwardingSpec {
    /// DirectRouting (default), NAT or Tunnel.
    #[serde(default)]
    pub method: ForwardingMethod,
    /// Encapsulation for the Tunnel method (default IPIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSpec>,
}

/// Tunnel encapsulation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'GUE' || has(self.port)").message("a GUE tunnel needs a port").field_path(".port"),
    validation = Rule::new("!has(self.port) || self.type == 'GUE'").message("port is only used by GUE tunnels").field_path(".port")
)]
pub struct TunnelSpec {
    /// IPIP (default), GUE or GRE.
    #[serde(rename = "type", default)]
    pub tunnel_type: TunnelType,
    /// UDP destination port of GUE encapsulation (required for GUE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Checksum mode for GUE and GRE.
    #[serde(default)]
    pub checksum: TunnelChecksum,
}

/// What a real server node does so that it accepts packets for the VIP without answering ARP for
/// it (the "ARP problem" of direct routing).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ArpMethod {
    /// VIP on the loopback (or `lvs0`) plus `arp_ignore=1` and `arp_announce=2` (the default).
    #[default]
    Sysctl,
    /// VIP on the loopback (or `lvs0`) plus an nftables `arp` table that drops ARP requests for
    /// the VIP and rewrites the sender address of outgoing ARP (the arptables method).
    #[serde(rename = "NFTablesARP")]
    NftablesArp,
    /// No VIP at all: nftables redirects VIP:port to the node itself (the iptables REDIRECT
    /// method: simplest, a little slower, and the service cannot bind to the VIP).
    Redirect,
}

/// The device on which a node holds a VIP.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum VipDevice {
    /// Real servers: the loopback `lo` (the default).
    #[default]
    Loopback,
    /// The operator's own dummy device `lvs0`.
    Dummy,
}

/// How a director holds the VIP.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum VipPlacement {
    /// On the operator's dummy device `lvs0` (the default); the kernel answers ARP for it on the
    /// uplink, and the node's own addresses are never touched.
    #[default]
    Dummy,
    /// On the uplink interface itself (`directors.interface`, required).
    Interface,
}

/// Health-check probe type.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum HealthCheckType {
    /// TCP connect (the default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// HTTP GET of `http.path`, expecting one of `http.expectedStatuses`.
    #[serde(rename = "HTTP")]
    Http,
    /// HTTPS GET; certificate verification is off unless `http.verifyCertificate` is set.
    #[serde(rename = "HTTPS")]
    Https,
    /// A DNS query over UDP, expecting any well-formed answer.
    #[serde(rename = "DNS")]
    Dns,
    /// No checks: every real server counts as healthy.
    None,
}

/// What happens to a real server that fails its health checks.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum FailureAction {
    /// Keep it with weight 0: no new connections, existing ones continue (the default).
    #[default]
    Quiescent,
    /// Remove it from the service.
    Remove,
}

/// Health checking of real servers, done by each director.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.timeoutSeconds <= self.intervalSeconds").message("timeoutSeconds must not exceed intervalSeconds").field_path(".timeoutSeconds"),
    validation = Rule::new("!has(self.http) || self.type == 'HTTP' || self.type == 'HTTPS'").message("http may only be set when type is HTTP or HTTPS").field_path(".http"),
    validation = Rule::new("!has(self.dns) || self.type == 'DNS'").message("dns may only be set when type is DNS").field_path(".dns")
)]
pub struct HealthCheckSpec {
    /// TCP (default for TCP services), HTTP, HTTPS, DNS, or None (default for UDP and SCTP).
    #[serde(rename = "type", default)]
    pub check_type: HealthCheckType,
    /// Seconds between checks of one real server.
    #[serde(default = "default_interval_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: u32,
    /// Seconds a check may take before it counts as failed.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: u32,
    /// Consecutive successes that make a failed real server healthy again.
    #[serde(default = "default_rise")]
    #[schemars(range(min = 1, max = 100))]
    pub rise: u32,
    /// Consecutive failures that take a healthy real server out.
    #[serde(default = "default_fall")]
    #[schemars(range(min = 1, max = 100))]
    pub fall: u32,
    /// Port to probe instead of the real server's service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// HTTP and HTTPS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckSpec>,
    /// DNS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCheckSpec>,
}

fn default_interval_seconds() -> u32 {
    5
}
fn default_timeout_seconds() -> u32 {
    3
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self {
            check_type: HealthCheckType::default(),
            interval_seconds: default_interval_seconds(),
            timeout_seconds: default_timeout_seconds(),
            rise: default_rise(),
            fall: default_fall(),
            port: None,
            http: None,
            dns: None,
        }
    }
}

/// HTTP(S) probe settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheckSpec {
    /// Request path.
    #[serde(default = "default_http_path")]
    #[schemars(length(min = 1), regex(pattern = r"^/"))]
    pub path: String,
    /// Status codes that count as healthy.
    #[serde(default = "default_expected_statuses")]
    #[schemars(length(min = 1))]
    pub expected_statuses: Vec<HttpStatusCode>,
    /// Host header, and the TLS server name (SNI) for HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Verify the real server's certificate (HTTPS only; off by default, as health checks usually
    /// reach real servers by address).
    #[serde(default)]
    pub verify_certificate: bool,
}

/// An HTTP status code, 100–599.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(transparent)]
pub struct HttpStatusCode(#[schemars(range(min = 100, max = 599))] pub u16);

fn default_http_path() -> String {
    "/".to_owned()
}
fn default_expected_statuses() -> Vec<HttpStatusCode> {
    vec![HttpStatusCode(200)]
}

impl Default for HttpCheckSpec {
    fn default() -> Self {
        Self {
            path: default_http_path(),
            expected_statuses: default_expected_statuses(),
            host: None,
            verify_certificate: false,
        }
    }
}

/// DNS probe settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsCheckSpec {
    /// Name to query.
    #[serde(default = "default_query_name")]
    #[schemars(length(min = 1, max = 253))]
    pub query_name: String,
    /// Record type to query.
    #[serde(default)]
    pub query_type: DnsQueryType,
}

fn default_query_name() -> String {
    ".".to_owned()
}

impl Default for DnsCheckSpec {
    fn default() -> Self {
        Self {
            query_name: default_query_name(),
            query_type: DnsQueryType::default(),
        }
    }
}

/// DNS record type of a DNS health check.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum DnsQueryType {
    /// Address record.
    A,
    /// IPv6 address record.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Name server record (the default; every server answers it for the root).
    #[default]
    #[serde(rename = "NS")]
    Ns,
    /// Start of authority.
    #[serde(rename = "SOA")]
    Soa,
}

/// Client persistence ("sticky" connections).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.netmask) || !has(self.prefixLength)").message("set netmask (IPv4) or prefixLength (IPv6), not both").field_path(".prefixLength"))]
pub struct PersistenceSpec {
    /// Seconds a client keeps going to the same real server after its last connection.
    #[serde(default = "default_persistence_timeout")]
    #[schemars(range(min = 1, max = 31536000))]
    pub timeout_seconds: u32,
    /// IPv4 services: clients whose addresses match under this mask share a real server,
    /// e.g. `255.255.255.0`. Default `255.255.255.255`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4").message("must be an IPv4 netmask such as 255.255.255.0"))]
    pub netmask: Option<String>,
    /// IPv6 services: clients in the same prefix of this length share a real server. Default 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub prefix_length: Option<u8>,
}

fn default_persistence_timeout() -> u32 {
    300
}

/// Connection thresholds of a real server; 0 means no limit.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.upper == 0 || self.lower <= self.upper").message("lower must not exceed upper").field_path(".lower"))]
pub struct ThresholdsSpec {
    /// Stop sending new connections to the real server when it has this many.
    #[serde(default)]
    pub upper: u32,
    /// Resume sending new connections when it is down to this many.
    #[serde(default)]
    pub lower: u32,
}

/// Administrative state of a real server.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum RealServerState {
    /// Takes traffic according to its weight and health (the default).
    #[default]
    Active,
    /// Weight 0: takes no new connections; existing connections continue.
    Draining,
    /// Removed from every service.
    Disabled,
}
