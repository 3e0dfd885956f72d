//! Value types shared by the user-facing kinds and the resolved per-node config: protocols,
//! schedulers, forwarding methods, health checks, persistence.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Transport protocol of a virtual service: TCP (the default), UDP or SCTP.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Protocol {
    /// TCP, the default. Without a `healthCheck`, TCP services get a TCP connect check.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP. Without a `healthCheck`, UDP services are not checked; `onePacket` schedules each
    /// datagram on its own.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP. Without a `healthCheck`, SCTP services are not checked.
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

/// IP address family of a service: IPv4 or IPv6. Named for a VIP the controller picks and for
/// fwmark services without an address; otherwise it follows the address.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum AddressFamily {
    /// IPv4, the default for a fwmark service without `address`.
    #[default]
    IPv4,
    /// IPv6.
    IPv6,
}

/// IPVS scheduling algorithm, by the kernel's (and ipvsadm's) name: it picks the real server for
/// each new connection. The directors' kernel needs the module `ip_vs_<name>`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Round robin: each real server in turn. Weights are ignored, except that weight 0 gets
    /// nothing.
    Rr,
    /// Weighted round robin: in turn, in proportion to the weights.
    Wrr,
    /// Least connections: the real server with the fewest connections (active ones count more than
    /// inactive ones); weights are ignored except 0.
    Lc,
    /// Weighted least connections: the fewest connections relative to weight. The default, as in
    /// the kernel.
    #[default]
    Wlc,
    /// Locality-based least connections: connections to the same destination address go to the same
    /// real server unless it is overloaded; for cache clusters.
    Lblc,
    /// Locality-based least connections with replication: like lblc, but each destination address
    /// maps to a set of real servers that grows under load.
    Lblcr,
    /// Destination hashing: the real server is chosen by a hash of the packet's destination
    /// address.
    Dh,
    /// Source hashing: the real server is chosen by a hash of the client's address, so a client
    /// keeps its real server while the set does not change. Flags `sh-fallback`, `sh-port`.
    Sh,
    /// Shortest expected delay: the real server with the smallest (active connections + 1) /
    /// weight.
    Sed,
    /// Never queue: an idle real server if there is one, else as sed.
    Nq,
    /// Weighted failover: every new connection goes to the available real server with the highest
    /// weight.
    Fo,
    /// Weighted overflow: the highest-weight real server until its active connections exceed its
    /// weight, then the next.
    Ovf,
    /// Maglev hashing: consistent hashing of the client's address, so few clients move when real
    /// servers come or go. Flags `mh-fallback`, `mh-port`.
    Mh,
    /// Weighted random twos choice: two real servers picked at random by weight, and the one with
    /// fewer connections relative to its weight wins. Not every kernel has `ip_vs_twos`.
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

/// A flag that changes how the `sh` or `mh` scheduler hashes; each flag belongs to one of the two.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum SchedulerFlag {
    /// `sh` only: when the hashed real server is unavailable (weight 0 or over its upper
    /// threshold), pick another one instead of dropping the connection.
    #[serde(rename = "sh-fallback")]
    ShFallback,
    /// `sh` only: hash the client's source port as well as its address, so one client's connections
    /// spread over several real servers.
    #[serde(rename = "sh-port")]
    ShPort,
    /// `mh` only: when the hashed real server is unavailable (weight 0 or over its upper
    /// threshold), pick another one instead of dropping the connection.
    #[serde(rename = "mh-fallback")]
    MhFallback,
    /// `mh` only: hash the client's source port as well as its address, so one client's connections
    /// spread over several real servers.
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

/// How a director hands packets to the real servers.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ForwardingMethod {
    /// Direct routing (LVS-DR, the default): the director rewrites only the destination MAC
    /// address, so real servers must share an L2 network with it; they hold the VIP without
    /// answering ARP for it and reply to clients directly. Ports cannot be remapped.
    #[default]
    DirectRouting,
    /// Masquerading (LVS-NAT): the director rewrites the destination address and may change the
    /// port. The agent enables forwarding and IPVS conntrack on the directors and masquerades
    /// traffic to the real servers, so their replies return through the director.
    #[serde(rename = "NAT")]
    Nat,
    /// IP tunnelling (LVS-TUN): the director encapsulates each packet to the real server, which may
    /// be on another network; the real server decapsulates it, holds the VIP on the tunnel device
    /// and replies to the client directly. Ports cannot be remapped.
    Tunnel,
}

/// Encapsulation of the Tunnel forwarding method.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TunnelType {
    /// IP in IP, the default. Real servers decapsulate on `tunl0` (`ip6tnl0` for IPv6).
    #[default]
    #[serde(rename = "IPIP")]
    Ipip,
    /// Generic UDP Encapsulation: IP in UDP to `tunnel.port`, which is required. Real-server nodes
    /// receive GUE on that port and decapsulate on `tunl0` (`ip6tnl0` for IPv6).
    #[serde(rename = "GUE")]
    Gue,
    /// Generic Routing Encapsulation. Real servers decapsulate on `gre0` (`ip6gre0` for IPv6).
    #[serde(rename = "GRE")]
    Gre,
}

/// Checksum of GUE and GRE encapsulation; IPIP has none, and only GUE has remote checksum
/// offload.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TunnelChecksum {
    /// No checksum in the encapsulating header, the default.
    #[default]
    None,
    /// A checksum in the encapsulating UDP (GUE) or GRE header.
    Checksum,
    /// Remote checksum offload; GUE only.
    RemoteChecksum,
}

/// How a director forwards packets to the real servers and, for Tunnel, the encapsulation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tunnel) || self.method == 'Tunnel'").message("tunnel may only be set when method is Tunnel").field_path(".tunnel"))]
pub struct ForwardingSpec {
    /// DirectRouting (the default): the director rewrites only the destination MAC; real servers on
    /// its L2 network hold the VIP and reply to clients directly. NAT: the director rewrites the
    /// destination address (and may change the port) and masquerades, so replies return through it.
    /// Tunnel: the director encapsulates packets to real servers on any network, which reply
    /// directly.
    #[serde(default)]
    pub method: ForwardingMethod,
    /// Encapsulation of the Tunnel method (default: type IPIP, no checksum). Only allowed when
    /// `method` is Tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSpec>,
}

/// Tunnel encapsulation. (The CEL rules on `checksum` are stated on `VirtualServerSpec`, to keep
/// them out of `LvsNodeConfig`'s cost budget.)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'GUE' || has(self.port)").message("a GUE tunnel needs a port").field_path(".port"),
    validation = Rule::new("!has(self.port) || self.type == 'GUE'").message("port is only used by GUE tunnels").field_path(".port")
)]
pub struct TunnelSpec {
    /// IPIP (the default), GUE or GRE. Real servers hold the VIP on the matching tunnel device:
    /// `tunl0` for IPIP and GUE, `gre0` for GRE (`ip6tnl0` and `ip6gre0` for IPv6).
    #[serde(rename = "type", default)]
    pub tunnel_type: TunnelType,
    /// UDP port, 1–65535, the directors send GUE packets to and real-server nodes receive them on.
    /// Required for GUE; not allowed for IPIP and GRE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Checksum of the encapsulation: None (the default), Checksum (GUE and GRE), or
    /// RemoteChecksum (remote checksum offload, GUE only). IPIP has none: only None is allowed.
    #[serde(default)]
    pub checksum: TunnelChecksum,
}

/// How a real-server node accepts packets for the VIP without answering ARP for it (the "ARP
/// problem" of direct routing).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ArpMethod {
    /// The VIP on `realServers.vipDevice` plus node-wide `net.ipv4.conf.all.arp_ignore=1` and
    /// `arp_announce=2`; the default. IPv6 VIPs need no sysctls.
    #[default]
    Sysctl,
    /// The VIP on `realServers.vipDevice` plus an nftables `arp` table that drops ARP requests for
    /// the VIP and rewrites the VIP as sender address of outgoing ARP to the node's own address
    /// (the arptables method); sysctls are left alone.
    #[serde(rename = "NFTablesARP")]
    NftablesArp,
    /// No VIP at all: nftables redirects traffic for VIP:port to the node itself (the iptables
    /// REDIRECT method). Simplest, a little slower, and the service cannot bind to the VIP. Not for
    /// Tunnel; a fwmark service needs `fwmarkPorts`.
    Redirect,
}

/// The device on which a direct-routing real-server node holds a VIP.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum VipDevice {
    /// The loopback device `lo`, the default.
    #[default]
    Loopback,
    /// The operator's own dummy device `lvs0`, created when needed.
    Dummy,
}

/// Where a director holds the VIP.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum VipPlacement {
    /// On the operator's dummy device `lvs0`, the default. The kernel answers ARP for it on the
    /// uplink, and the uplink's own addresses are never touched. An IPv6 VIP is held on the
    /// uplink instead (Linux answers neighbour solicitation only for addresses on the interface
    /// it arrives on): a deprecated /128 beside the uplink's own addresses, never used as a
    /// source address; on `lvs0` only when no interface's network contains it.
    #[default]
    Dummy,
    /// On the uplink interface itself (`directors.interface`, which is then required).
    Interface,
}

/// Health-check probe type.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum HealthCheckType {
    /// Open a TCP connection to the port; healthy when it connects. The default type.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// An HTTP GET of `http.path` on a new connection; healthy when the status code is one of
    /// `http.expectedStatuses`. The body is not read.
    #[serde(rename = "HTTP")]
    Http,
    /// As HTTP, over TLS. The certificate is not verified unless `http.verifyCertificate` is set.
    #[serde(rename = "HTTPS")]
    Https,
    /// A DNS query over UDP for `dns.queryName` and `dns.queryType`; healthy when the answer's code
    /// is NOERROR or NXDOMAIN.
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
    /// Keep it with weight 0: no new connections, existing ones continue. The default.
    #[default]
    Quiescent,
    /// Remove it from the IPVS service: it gets no new connections and its existing connections are
    /// no longer forwarded.
    Remove,
}

/// Health checking of real servers. Every director probes the Active real servers of its services
/// itself; Draining and Disabled ones are not probed. A real server counts as healthy until its
/// first result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.timeoutSeconds <= self.intervalSeconds").message("timeoutSeconds must not exceed intervalSeconds").field_path(".timeoutSeconds"),
    validation = Rule::new("!has(self.http) || self.type == 'HTTP' || self.type == 'HTTPS'").message("http may only be set when type is HTTP or HTTPS").field_path(".http"),
    validation = Rule::new("!has(self.dns) || self.type == 'DNS'").message("dns may only be set when type is DNS").field_path(".dns")
)]
pub struct HealthCheckSpec {
    /// Probe type: TCP (the default), HTTP, HTTPS, DNS, or None (no checks). When `healthCheck` is
    /// omitted altogether, TCP services get TCP checks and UDP and SCTP services None.
    #[serde(rename = "type", default)]
    pub check_type: HealthCheckType,
    /// Seconds between the starts of two checks of one real server, 1–3600 (default 5).
    #[serde(default = "default_interval_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: u32,
    /// Seconds one check may take before it counts as failed, 1–60 and at most `intervalSeconds`
    /// (default 3). Bounded so a slow target holds one of its VirtualServer's check slots for at
    /// most a minute.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,
    /// Consecutive successful checks that bring an unhealthy real server back, 1–100 (default 2).
    #[serde(default = "default_rise")]
    #[schemars(range(min = 1, max = 100))]
    pub rise: u32,
    /// Consecutive failed checks that make a healthy (or not yet checked) real server unhealthy,
    /// 1–100 (default 3).
    #[serde(default = "default_fall")]
    #[schemars(range(min = 1, max = 100))]
    pub fall: u32,
    /// Port to probe, 1–65535 (default: the real server's port). Required for TCP, HTTP and HTTPS
    /// checks of UDP and SCTP services (their port is not a TCP port), and for checks of a fwmark
    /// service unless it sets `realServers.port` (NAT): a fwmark service has no port of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// HTTP and HTTPS settings (default: path `/`, status 200). Only allowed when `type` is HTTP or
    /// HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckSpec>,
    /// DNS settings (default: query `.` for NS). Only allowed when `type` is DNS.
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

impl HealthCheckSpec {
    /// The longest `timeoutSeconds` allowed.
    pub const MAX_TIMEOUT_SECONDS: u32 = 60;
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

/// HTTP and HTTPS probe settings. (The CEL rules on `path` and `host` are stated on
/// `VirtualServerSpec`: see `crate::limits::http_path`.)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheckSpec {
    /// Path (with any query) of the GET request: starts with `/`, up to 1024 printable ASCII
    /// characters without spaces (percent-encode anything else). Default `/`.
    #[serde(default = "default_http_path")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/"))]
    pub path: String,
    /// HTTP status codes, 100–599, that count as healthy; 1 to 16 of them (default [200]).
    /// Redirects are not followed.
    #[serde(default = "default_expected_statuses")]
    #[schemars(length(min = 1, max = 16))]
    pub expected_statuses: Vec<HttpStatusCode>,
    /// Host header to send, and for HTTPS the TLS server name (SNI) and the name the certificate
    /// must match: a host name, an IPv4 address or an IPv6 address in brackets, optionally with
    /// `:port`, up to 253 characters. Default: the real server's address (with its port unless it
    /// is the scheme's default port), and no SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,
    /// HTTPS only: verify the real server's certificate against the agent's CA bundle
    /// (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`) and `host`. Off by default, as
    /// checks usually reach real servers by address.
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

/// DNS probe settings. (The CEL rule on `queryName` is stated on `VirtualServerSpec`: see
/// `crate::limits::dns_query_name`.)
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsCheckSpec {
    /// Domain name to query, 1–253 characters: labels of 1–63 printable ASCII characters (no
    /// spaces or `\`) joined by dots, or `.`, the root (the default). A server that does not
    /// recurse may refuse the root: then use a name in one of its zones.
    #[serde(default = "default_query_name")]
    #[schemars(length(min = 1, max = 253))]
    pub query_name: String,
    /// Record type to ask for: A, AAAA, NS (the default) or SOA. The records in the answer do not
    /// matter, only its code (NOERROR or NXDOMAIN).
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

/// Record type of a DNS health check's query.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum DnsQueryType {
    /// IPv4 address record.
    A,
    /// IPv6 address record.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// Name server record, the default.
    #[default]
    #[serde(rename = "NS")]
    Ns,
    /// Start-of-authority record.
    #[serde(rename = "SOA")]
    Soa,
}

/// Client persistence ("sticky" connections): new connections from the same client, or client
/// network, go to the same real server while the persistence lasts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistenceSpec {
    /// Seconds a client stays with its real server after its last connection, 1–31536000 (default
    /// 300).
    #[serde(default = "default_persistence_timeout")]
    #[schemars(range(min = 1, max = 31536000))]
    pub timeout_seconds: u32,
    /// IPv4 services only: clients whose addresses are equal under this contiguous mask share a
    /// real server, e.g. `255.255.255.0` for a /24 (default `255.255.255.255`: each address on its
    /// own). Set this or `prefixLength`, not both, unless the VirtualServer is dual-stack: then
    /// this applies to the IPv4 VIP and `prefixLength` to the IPv6 one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    #[x_kube(validation = Rule::new("isIP(self) && ip(self).family() == 4").message("must be an IPv4 netmask such as 255.255.255.0"))]
    pub netmask: Option<String>,
    /// IPv6 services only: clients in the same prefix of this length share a real server, 1–128
    /// (default 128: each address on its own). Set this or `netmask`, not both, unless the
    /// VirtualServer is dual-stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128))]
    pub prefix_length: Option<u8>,
}

fn default_persistence_timeout() -> u32 {
    300
}

/// Connection limits of a real server on each director, counted as its active plus inactive IPVS
/// connections; 0 means no limit.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.upper == 0 || self.lower <= self.upper").message("lower must not exceed upper").field_path(".lower"))]
pub struct ThresholdsSpec {
    /// Stop sending new connections to the real server once it has this many connections (default
    /// 0: no limit).
    #[serde(default)]
    pub upper: u32,
    /// After reaching `upper`, send it new connections again once it has fewer than this many; at
    /// most `upper` (default 0: fewer than three quarters of `upper`).
    #[serde(default)]
    pub lower: u32,
}

/// Administrative state of a real server.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum RealServerState {
    /// Takes new connections according to its weight and health, the default.
    #[default]
    Active,
    /// Weight 0: takes no new connections, existing connections continue. Not health-checked.
    Draining,
    /// Removed from every IPVS service, so its connections are no longer forwarded. Not
    /// health-checked.
    Disabled,
}
