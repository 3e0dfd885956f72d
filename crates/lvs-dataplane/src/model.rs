//! Kernel state as data: the same types describe what we want (desired) and what the kernel has
//! (observed), so `plan` can compare them field by field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of an IPVS service. Serialized as ipvsadm names it (`TCP`), the form the
/// ownership registry on disk holds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
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
    /// The name ipvsadm uses, e.g. `TCP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

/// IP address family, for what has no address of its own (fwmark services, GUE receive ports).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AddressFamily {
    /// IPv4 (the default).
    #[default]
    IPv4,
    /// IPv6.
    IPv6,
}

/// Encapsulation of a tunnelled destination.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TunnelType {
    /// IP-in-IP (the default).
    #[default]
    #[serde(rename = "IPIP")]
    Ipip,
    /// Generic UDP Encapsulation, to a port.
    #[serde(rename = "GUE")]
    Gue,
    /// Generic Routing Encapsulation.
    #[serde(rename = "GRE")]
    Gre,
}

/// Checksum handling of GUE and GRE tunnels.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
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

/// What identifies an IPVS virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum ServiceKey {
    /// A VIP, port and protocol.
    Address {
        /// The virtual address.
        address: IpAddr,
        /// The port (0: every port, for persistent "port zero" services).
        port: u16,
        /// TCP, UDP or SCTP.
        protocol: Protocol,
    },
    /// Traffic carrying a firewall mark, within an address family.
    Fwmark {
        /// Address family of the service.
        family: AddressFamily,
        /// The mark (non-zero).
        mark: u32,
    },
}

impl ServiceKey {
    /// The service's address family.
    pub fn family(&self) -> AddressFamily {
        match self {
            Self::Address {
                address: IpAddr::V4(_),
                ..
            } => AddressFamily::IPv4,
            Self::Address {
                address: IpAddr::V6(_),
                ..
            } => AddressFamily::IPv6,
            Self::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// ipvsadm's notation: `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address {
                address: IpAddr::V6(address),
                port,
                protocol,
            } => {
                write!(formatter, "{} [{address}]:{port}", protocol.as_str())
            }
            Self::Address {
                address,
                port,
                protocol,
            } => write!(formatter, "{} {address}:{port}", protocol.as_str()),
            Self::Fwmark {
                family: AddressFamily::IPv4,
                mark,
            } => write!(formatter, "FWM {mark}"),
            Self::Fwmark {
                family: AddressFamily::IPv6,
                mark,
            } => write!(formatter, "FWM {mark} IPv6"),
        }
    }
}

/// Service flags that change scheduling.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ServiceFlags {
    /// Schedule each UDP datagram on its own (`IP_VS_SVC_F_ONEPACKET`).
    pub one_packet: bool,
    /// Scheduler flag 1 (`sh-fallback` / `mh-fallback`, `IP_VS_SVC_F_SCHED1`).
    pub sched_fallback: bool,
    /// Scheduler flag 2 (`sh-port` / `mh-port`, `IP_VS_SVC_F_SCHED2`).
    pub sched_port: bool,
    /// Scheduler flag 3 (`IP_VS_SVC_F_SCHED3`, unused by current schedulers).
    pub sched_3: bool,
}

/// Client persistence of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Persistence {
    /// Seconds.
    pub timeout: u32,
    /// Clients within this prefix length share a real server (32 / 128: per address).
    pub prefix_length: u8,
}

/// An IPVS virtual service, without its destinations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name as the kernel knows it (`rr`, `wlc`, `mh`, …).
    pub scheduler: String,
    /// Flags.
    pub flags: ServiceFlags,
    /// Persistence, if any (`IP_VS_SVC_F_PERSISTENT` with timeout and netmask).
    pub persistence: Option<Persistence>,
}

/// How packets are forwarded to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Forwarding {
    /// Masquerading (`IP_VS_CONN_F_MASQ`).
    Nat,
    /// Direct routing (`IP_VS_CONN_F_DROUTE`).
    DirectRouting,
    /// Tunnelling (`IP_VS_CONN_F_TUNNEL`) with its encapsulation.
    Tunnel {
        /// IPIP, GUE or GRE.
        kind: TunnelType,
        /// GUE's UDP port (0 otherwise).
        port: u16,
        /// Checksum mode (GUE and GRE).
        checksum: TunnelChecksum,
    },
    /// Local delivery (`IP_VS_CONN_F_LOCALNODE`); never produced by us, observed only.
    Local,
}

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    /// Address (may differ in family from the service only for tunnels).
    pub address: IpAddr,
    /// Port (0 for fwmark services: the packet's own port).
    pub port: u16,
    /// Weight; 0 sends no new connections.
    pub weight: u32,
    /// Forwarding method.
    pub forwarding: Forwarding,
    /// Upper connection threshold (0: none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0: none).
    pub lower_threshold: u32,
}

impl Destination {
    /// Identity of a destination within its service.
    pub fn key(&self) -> (IpAddr, u16) {
        (self.address, self.port)
    }
}

/// Traffic counters of a service or destination (the kernel's 64-bit `STATS64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub connections: u64,
    /// Incoming packets.
    pub incoming_packets: u64,
    /// Outgoing packets.
    pub outgoing_packets: u64,
    /// Incoming bytes.
    pub incoming_bytes: u64,
    /// Outgoing bytes.
    pub outgoing_bytes: u64,
    /// Connections per second (rate estimate).
    pub connections_per_second: u64,
    /// Incoming packets per second.
    pub incoming_packets_per_second: u64,
    /// Outgoing packets per second.
    pub outgoing_packets_per_second: u64,
    /// Incoming bytes per second.
    pub incoming_bytes_per_second: u64,
    /// Outgoing bytes per second.
    pub outgoing_bytes_per_second: u64,
}

/// A VIP address held on a device, as a host route (/32 or /128).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct VipAddress {
    /// The address.
    pub address: IpAddr,
    /// The device: `lvs0`, `lo`, a tunnel device or an uplink.
    pub device: String,
}

/// A network device the node's roles need.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Link {
    /// Our dummy device that holds VIPs (`lvs0`); created and deleted by us.
    Dummy {
        /// Device name.
        name: String,
    },
    /// A tunnel's fallback device (`tunl0`, `gre0`, `ip6tnl0`, `ip6gre0`): appears when its
    /// module loads; we load the module and set the device up, never delete it.
    TunnelFallback {
        /// Device name.
        name: String,
        /// Kernel module that provides it.
        module: String,
    },
    /// A GUE receive port (`ip fou add port N gue`), for GUE real servers.
    GueReceivePort {
        /// UDP port.
        port: u16,
        /// Address family of the encapsulated traffic.
        family: AddressFamily,
    },
}

/// A kernel parameter below `/proc/sys` (slash-separated, so interface names may hold dots).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sysctl {
    /// Path below `/proc/sys`, e.g. `net/ipv4/conf/all/arp_ignore`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Real-server ARP guard for one IPv4 VIP (the arptables method, in nftables' `arp` family):
/// drop ARP requests for the VIP and rewrite the sender address of outgoing ARP from the VIP to
/// the node's real address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ArpGuard {
    /// The VIP.
    pub vip: std::net::Ipv4Addr,
    /// The node's own address to announce instead.
    pub real_address: Option<std::net::Ipv4Addr>,
}

/// A destination address, protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct PortMatch {
    /// Destination address.
    pub address: IpAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination port.
    pub port: u16,
}

/// Marking traffic to a VIP for a fwmark service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct MarkRule {
    /// The VIP.
    pub address: IpAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// Ports (empty: every port).
    pub ports: Vec<u16>,
    /// The mark.
    pub mark: u32,
    /// The bits of the packet mark this rule writes; `mark` must lie inside them, and the other
    /// bits keep what the packet carried (other software — kube-proxy, Calico, Cilium — uses
    /// them). `u32::MAX`: the whole mark (`meta mark set MARK`), which is also what a record
    /// written before masks existed means.
    #[serde(default = "whole_mark")]
    pub mask: u32,
}

impl MarkRule {
    /// Whether the rule writes the whole packet mark.
    pub fn writes_whole_mark(&self) -> bool {
        self.mask == u32::MAX
    }
}

/// The mask of a mark rule that writes the whole packet mark.
fn whole_mark() -> u32 {
    u32::MAX
}

/// Failover heartbeats as the input guard admits them: UDP to `port` only from `peers`, each
/// peer limited to `rate_per_second` datagrams (a token bucket of as many), everyone else
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatGuard {
    /// The heartbeat UDP port (the agent's `--failover-port`, default 9751).
    pub port: u16,
    /// The addresses the peer directors send from.
    pub peers: Vec<IpAddr>,
    /// Datagrams per second each peer may send (also the burst); more are dropped.
    pub rate_per_second: u32,
}

/// Everything lvs-operator keeps in its own nftables tables.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NftRules {
    /// ARP guards (table `arp lvs-operator`).
    pub arp_guards: Vec<ArpGuard>,
    /// REDIRECT of VIP:port to the node itself (the iptables REDIRECT method).
    pub redirects: Vec<PortMatch>,
    /// Masquerade of traffic to NAT destinations (one-armed NAT directors).
    pub masquerade: Vec<PortMatch>,
    /// Firewall marks for fwmark services.
    pub marks: Vec<MarkRule>,
    /// The input guard's VIPs: addresses local on this node (director VIPs it holds or may
    /// hold, real-server VIPs) that take only `guarded_services`, established and related
    /// traffic and the ICMP a client needs; everything else to them is dropped (table `inet
    /// lvs-operator`, chain `input`). Absent from records written before the guard existed.
    #[serde(default)]
    pub guarded_vips: Vec<IpAddr>,
    /// The services declared on the guarded VIPs: address, protocol and port (0: every port of
    /// the protocol).
    #[serde(default)]
    pub guarded_services: Vec<PortMatch>,
    /// Failover heartbeats, when this node takes part in failover.
    #[serde(default)]
    pub heartbeats: Option<HeartbeatGuard>,
    /// IPv6 VIPs whose neighbour solicitations are dropped as they arrive (the NFTablesARP
    /// method over IPv6; table `inet lvs-operator`, chain `neighbours`). Absent from records
    /// written before IPv6 guards existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nd_guards: Vec<std::net::Ipv6Addr>,
    /// Director services (VIP, protocol, port; 0: every port of the protocol) whose packets skip
    /// connection tracking as they arrive (table `inet lvs-operator`, chain `untracked`,
    /// prerouting at raw priority −300). IPVS keeps its own connection table for direct routing
    /// and tunnelling, and an untracked packet passes no NAT chain: kube-proxy's DNAT of a
    /// LoadBalancer IP (or Docker's, or a CNI's) cannot take the VIP's traffic from IPVS. Absent
    /// from records written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<PortMatch>,
}

impl NftRules {
    /// Whether there is nothing to install.
    pub fn is_empty(&self) -> bool {
        self.arp_guards.is_empty()
            && self.nd_guards.is_empty()
            && self.untracked.is_empty()
            && self.redirects.is_empty()
            && self.masquerade.is_empty()
            && self.marks.is_empty()
            && self.guarded_vips.is_empty()
            && self.heartbeats.is_none()
    }

    /// Whether the input guard has anything to do (VIPs to guard or heartbeats to admit).
    pub fn has_input_guard(&self) -> bool {
        !self.guarded_vips.is_empty() || self.heartbeats.is_some()
    }

    /// Sorts every list so equal rule sets compare equal.
    pub fn normalized(mut self) -> Self {
        self.arp_guards.sort();
        self.arp_guards.dedup();
        self.nd_guards.sort();
        self.nd_guards.dedup();
        self.redirects.sort();
        self.redirects.dedup();
        self.masquerade.sort();
        self.masquerade.dedup();
        self.untracked.sort();
        self.untracked.dedup();
        for mark in &mut self.marks {
            mark.ports.sort();
            mark.ports.dedup();
        }
        self.marks.sort();
        self.marks.dedup();
        self.guarded_vips.sort();
        self.guarded_vips.dedup();
        self.guarded_services.sort();
        self.guarded_services.dedup();
        if let Some(heartbeats) = &mut self.heartbeats {
            heartbeats.peers.sort();
            heartbeats.peers.dedup();
        }
        self
    }
}

/// Role of an IPVS connection-synchronisation daemon (`ipvsadm --start-daemon master|backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum SyncRole {
    /// Sends this director's connections to the backups (the active director).
    Master,
    /// Receives the active director's connections (a standby).
    Backup,
}

impl fmt::Display for SyncRole {
    /// `master` or `backup`, as ipvsadm spells them.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Master => "master",
            Self::Backup => "backup",
        })
    }
}

/// How a connection-synchronisation daemon runs: the interface it sends or listens on and the
/// sync ID shared by the directors of one group (the kernel's defaults for everything else:
/// group 224.0.0.81, port 8848, TTL 1, message size from the MTU).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct SyncDaemonSpec {
    /// The interface (at most 15 bytes).
    pub interface: String,
    /// The sync ID.
    pub sync_id: u8,
}

/// What a failover decision needs and nothing more: our VIP addresses and our sync daemons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipState {
    /// Our VIP addresses.
    pub addresses: BTreeSet<VipAddress>,
    /// The sync daemons lvs-operator started (and that run).
    pub sync_daemons: BTreeMap<SyncRole, SyncDaemonSpec>,
}

/// A service with its destinations, keyed by (address, port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// The service.
    pub service: Service,
    /// Its destinations.
    pub destinations: BTreeMap<(IpAddr, u16), Destination>,
}

/// The part of a node's kernel state lvs-operator owns (observed) or wants (desired).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    /// Devices.
    pub links: BTreeSet<Link>,
    /// Kernel parameters, by name.
    pub sysctls: BTreeMap<String, String>,
    /// Our nftables rules (`None`: no tables).
    pub nftables: Option<NftRules>,
    /// IPVS services.
    pub services: BTreeMap<ServiceKey, ServiceState>,
    /// VIP addresses.
    pub addresses: BTreeSet<VipAddress>,
    /// Desired only: addresses to announce (gratuitous ARP / unsolicited NA) when added, with
    /// the uplink to announce on (`None`: the interface whose network contains the address).
    pub announce: BTreeMap<IpAddr, Option<String>>,
    /// IPVS connection-sync daemons: desired, what should run; observed, only the daemons
    /// lvs-operator started.
    pub sync_daemons: BTreeMap<SyncRole, SyncDaemonSpec>,
}
