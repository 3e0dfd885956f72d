//! Operations on kernel state, each idempotent, printed in ipvsadm/ip/nft-like notation.

use std::fmt;
use std::net::IpAddr;

use crate::model::{
    Destination, Link, NftRules, Service, ServiceKey, SyncDaemonSpec, SyncRole, Sysctl, VipAddress,
};

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create (or set up) a device.
    AddLink(Link),
    /// Delete a device we created.
    DeleteLink(Link),
    /// Write a kernel parameter (remembering the original value).
    SetSysctl(Sysctl),
    /// Put a kernel parameter back to the value it had before we changed it.
    RestoreSysctl(String),
    /// Replace our nftables tables atomically with these rules.
    ReplaceNftables(NftRules),
    /// Delete our nftables tables.
    DeleteNftables,
    /// Create an IPVS service.
    AddService(Service),
    /// Change a service's scheduler, flags or persistence.
    UpdateService(Service),
    /// Delete a service (and its destinations).
    DeleteService(ServiceKey),
    /// Add a destination to a service.
    AddDestination(ServiceKey, Destination),
    /// Change a destination's weight, thresholds or forwarding.
    UpdateDestination(ServiceKey, Destination),
    /// Remove a destination from a service.
    DeleteDestination(ServiceKey, IpAddr, u16),
    /// Add a VIP address.
    AddAddress(VipAddress),
    /// Remove a VIP address.
    DeleteAddress(VipAddress),
    /// Announce a VIP we just took (gratuitous ARP / unsolicited neighbour advertisement) on an
    /// uplink (`None`: the interface whose network contains the address).
    Announce {
        /// The VIP.
        address: IpAddr,
        /// The uplink.
        interface: Option<String>,
    },
    /// Start an IPVS connection-sync daemon in this role.
    StartSyncDaemon(SyncRole, SyncDaemonSpec),
    /// Stop the IPVS connection-sync daemon of this role.
    StopSyncDaemon(SyncRole),
}

impl Op {
    /// Whether the op writes to IPVS (the steady-state target is zero of these).
    pub fn is_ipvs_write(&self) -> bool {
        matches!(
            self,
            Self::AddService(_)
                | Self::UpdateService(_)
                | Self::DeleteService(_)
                | Self::AddDestination(..)
                | Self::UpdateDestination(..)
                | Self::DeleteDestination(..)
        )
    }
}

fn endpoint(address: &IpAddr, port: u16) -> String {
    match address {
        IpAddr::V6(address) => format!("[{address}]:{port}"),
        IpAddr::V4(address) => format!("{address}:{port}"),
    }
}

fn service_flags(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Address {
            address,
            port,
            protocol,
        } => {
            let flag = match protocol {
                crate::model::Protocol::Tcp => "-t",
                crate::model::Protocol::Udp => "-u",
                crate::model::Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", endpoint(address, *port))
        }
        ServiceKey::Fwmark { family, mark } => match family {
            crate::model::AddressFamily::IPv4 => format!("-f {mark}"),
            crate::model::AddressFamily::IPv6 => format!("-f {mark} -6"),
        },
    }
}

fn service_options(service: &Service) -> String {
    let mut text = format!("-s {}", service.scheduler);
    let mut flags = Vec::new();
    if service.flags.one_packet {
        text.push_str(" -o");
    }
    if service.flags.sched_fallback {
        flags.push("flag-1");
    }
    if service.flags.sched_port {
        flags.push("flag-2");
    }
    if service.flags.sched_3 {
        flags.push("flag-3");
    }
    if !flags.is_empty() {
        text.push_str(&format!(" -b {}", flags.join(",")));
    }
    if let Some(persistence) = service.persistence {
        text.push_str(&format!(
            " -p {} -M /{}",
            persistence.timeout, persistence.prefix_length
        ));
    }
    text
}

fn destination_options(destination: &Destination) -> String {
    let method = match destination.forwarding {
        crate::model::Forwarding::DirectRouting => "-g".to_owned(),
        crate::model::Forwarding::Nat => "-m".to_owned(),
        crate::model::Forwarding::Local => "-g (local)".to_owned(),
        crate::model::Forwarding::Tunnel { kind, port, .. } => match kind {
            crate::model::TunnelType::Ipip => "-i".to_owned(),
            crate::model::TunnelType::Gue => format!("-i --tun-type gue --tun-port {port}"),
            crate::model::TunnelType::Gre => "-i --tun-type gre".to_owned(),
        },
    };
    let mut text = format!(
        "-r {} {method} -w {}",
        endpoint(&destination.address, destination.port),
        destination.weight
    );
    if destination.upper_threshold != 0 {
        text.push_str(&format!(" -x {}", destination.upper_threshold));
    }
    if destination.lower_threshold != 0 {
        text.push_str(&format!(" -y {}", destination.lower_threshold));
    }
    text
}

/// The marks that write only some bits of the packet mark, as `; masked: VIP MARK/MASK, ...`
/// (iptables' `--set-xmark` notation), or nothing when every mark writes the whole mark.
fn masked_marks(rules: &NftRules) -> String {
    let masked: Vec<String> = rules
        .marks
        .iter()
        .filter(|rule| !rule.writes_whole_mark())
        .map(|rule| format!("{} {:#x}/{:#x}", rule.address, rule.mark, rule.mask))
        .collect();
    if masked.is_empty() {
        String::new()
    } else {
        format!("; masked: {}", masked.join(", "))
    }
}

/// The input guard as `; input guard: N VIPs, N services, heartbeats from N peers on udp/P`,
/// or nothing without one.
fn input_guard(rules: &NftRules) -> String {
    if !rules.has_input_guard() {
        return String::new();
    }
    let mut text = format!(
        "; input guard: {} VIPs, {} services",
        rules.guarded_vips.len(),
        rules.guarded_services.len()
    );
    if let Some(heartbeats) = &rules.heartbeats {
        text.push_str(&format!(
            ", heartbeats from {} peers on udp/{} at most {}/s each",
            heartbeats.peers.len(),
            heartbeats.port,
            heartbeats.rate_per_second
        ));
    }
    text
}

fn link(link: &Link) -> String {
    match link {
        Link::Dummy { name } => format!("ip link add {name} type dummy && ip link set {name} up"),
        Link::TunnelFallback { name, module } => format!("modprobe {module} && ip link set {name} up"),
        Link::GueReceivePort { port, family } => {
            let family = if *family == crate::model::AddressFamily::IPv6 {
                " -6"
            } else {
                ""
            };
            format!("ip{family} fou add port {port} gue")
        }
    }
}

impl fmt::Display for Op {
    /// The command an administrator would type for the same change.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddLink(spec) => write!(formatter, "{}", link(spec)),
            Self::DeleteLink(spec) => match spec {
                Link::GueReceivePort { port, .. } => write!(formatter, "ip fou del port {port}"),
                Link::Dummy { name } | Link::TunnelFallback { name, .. } => {
                    write!(formatter, "ip link del {name}")
                }
            },
            Self::SetSysctl(sysctl) => write!(
                formatter,
                "sysctl -w {}={}",
                sysctl.name.replace('/', "."),
                sysctl.value
            ),
            Self::RestoreSysctl(name) => write!(formatter, "sysctl -w {}=<original>", name.replace('/', ".")),
            Self::ReplaceNftables(rules) => write!(
                formatter,
                "nft -f - (replace tables lvs-operator: {} arp guards, {} redirects, {} masquerades, {} marks{}{})",
                rules.arp_guards.len(),
                rules.redirects.len(),
                rules.masquerade.len(),
                rules.marks.len(),
                masked_marks(rules),
                input_guard(rules)
            ),
            Self::DeleteNftables => write!(
                formatter,
                "nft delete table arp lvs-operator; nft delete table inet lvs-operator"
            ),
            Self::AddService(service) => write!(
                formatter,
                "ipvsadm -A {} {}",
                service_flags(&service.key),
                service_options(service)
            ),
            Self::UpdateService(service) => {
                write!(
                    formatter,
                    "ipvsadm -E {} {}",
                    service_flags(&service.key),
                    service_options(service)
                )
            }
            Self::DeleteService(key) => write!(formatter, "ipvsadm -D {}", service_flags(key)),
            Self::AddDestination(key, destination) => {
                write!(
                    formatter,
                    "ipvsadm -a {} {}",
                    service_flags(key),
                    destination_options(destination)
                )
            }
            Self::UpdateDestination(key, destination) => {
                write!(
                    formatter,
                    "ipvsadm -e {} {}",
                    service_flags(key),
                    destination_options(destination)
                )
            }
            Self::DeleteDestination(key, address, port) => {
                write!(
                    formatter,
                    "ipvsadm -d {} -r {}",
                    service_flags(key),
                    endpoint(address, *port)
                )
            }
            Self::AddAddress(vip) => write!(
                formatter,
                "ip addr add {}/{} dev {}",
                vip.address,
                host_prefix(&vip.address),
                vip.device
            ),
            Self::DeleteAddress(vip) => write!(
                formatter,
                "ip addr del {}/{} dev {}",
                vip.address,
                host_prefix(&vip.address),
                vip.device
            ),
            Self::Announce { address, interface } => {
                let interface = interface.as_deref().unwrap_or("<uplink>");
                match address {
                    IpAddr::V4(address) => write!(formatter, "arping -U -c 3 -I {interface} {address}"),
                    IpAddr::V6(address) => write!(formatter, "unsolicited-na -I {interface} {address}"),
                }
            }
            Self::StartSyncDaemon(role, spec) => write!(
                formatter,
                "start IPVS sync daemon {role} on {} (sync ID {})",
                spec.interface, spec.sync_id
            ),
            Self::StopSyncDaemon(role) => write!(formatter, "stop IPVS sync daemon {role}"),
        }
    }
}

/// 32 for IPv4, 128 for IPv6.
pub fn host_prefix(address: &IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}
