//! Assembling each node's config from the selections: director services on director nodes,
//! real-server VIPs on managed real-server nodes, and the sysctls those roles need. A node's
//! config is rebuilt only when the selections touching it changed (see [`NodeCache`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use lvs_api::{
    AddressFamily, ArpMethod, DirectorService, Endpoint, ForwardingMethod, LvsNodeConfigSpec, PortProtocol,
    RealServerVip, Shard, SysctlSetting, TunnelType, VipDevice, conditions::reasons,
};

use super::select::Selection;
use crate::problem::Problem;
use crate::roles::{NodeIndex, Placement};
use crate::validate::ValidVirtualServer;

/// One selection with what it brings to nodes: the director service and the VIP its
/// real-server nodes accept. `generation` changes whenever the selection is made anew.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) selection: Selection,
    pub(super) service: DirectorService,
    /// Problems found resolving the service (failover settings).
    pub(super) problems: Vec<Problem>,
    pub(super) vip: Option<RealServerVip>,
    pub(super) generation: u64,
}

impl Resolved {
    /// Resolves `selection`'s service and VIP.
    pub(super) fn new(selection: Selection, nodes: &NodeIndex, generation: u64) -> Self {
        let mut problems = Vec::new();
        let service = director_service(&selection, nodes, &mut problems);
        let vip = real_server_vip(&selection.virtual_server);
        Self {
            selection,
            service,
            problems,
            vip,
            generation,
        }
    }
}

/// A node's part in one resolved service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Director,
    RealServer,
}

/// What a node's config was built from (each touching selection's generation and the node's
/// part in it, in selection order) and what it came to.
#[derive(Debug)]
pub(super) struct CachedNode {
    inputs: Vec<(u64, Role)>,
    config: Arc<LvsNodeConfigSpec>,
    problems: Vec<Problem>,
}

/// Each node's last config, by node name.
pub(super) type NodeCache = HashMap<String, CachedNode>;

/// Builds the config of every node that has something to do, reusing from `cache` the configs
/// whose inputs did not change (the cache then holds exactly this build's nodes).
pub(super) fn assemble(
    resolved: &[Arc<Resolved>],
    cache: &mut NodeCache,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Arc<LvsNodeConfigSpec>> {
    // Per node, the selections touching it, in selection order: (index, role). Hashed while
    // gathering (tens of thousands of touches), then in node order.
    let mut touches: HashMap<&str, Vec<(usize, Role)>> = HashMap::new();
    for (index, item) in resolved.iter().enumerate() {
        for director in &item.selection.directors {
            touches
                .entry(director.as_str())
                .or_default()
                .push((index, Role::Director));
        }
        if item.vip.is_none() {
            continue;
        }
        for selected in &item.selection.selected {
            let Placement::Managed(node) = &selected.placement else {
                continue;
            };
            let list = touches.entry(node.as_str()).or_default();
            if list.last() != Some(&(index, Role::RealServer)) {
                list.push((index, Role::RealServer));
            }
        }
    }
    let mut touches: Vec<(&str, Vec<(usize, Role)>)> = touches.into_iter().collect();
    touches.sort_unstable_by_key(|(node, _)| *node);
    let mut configs = BTreeMap::new();
    let mut next = NodeCache::with_capacity(touches.len());
    for (node, list) in touches {
        let inputs: Vec<(u64, Role)> = list
            .iter()
            .map(|&(index, role)| (resolved[index].generation, role))
            .collect();
        let cached = cache
            .remove(node)
            .filter(|cached| cached.inputs == inputs)
            .unwrap_or_else(|| {
                let mut problems = Vec::new();
                let config = node_config(node, &list, resolved, &mut problems);
                CachedNode {
                    inputs,
                    config: Arc::new(config),
                    problems,
                }
            });
        problems.extend(cached.problems.iter().cloned());
        configs.insert(node.to_owned(), Arc::clone(&cached.config));
        next.insert(node.to_owned(), cached);
    }
    *cache = next;
    let keys = resolved
        .iter()
        .map(|item| {
            let key = &item.selection.virtual_server.key;
            (key.qualified_name(), key)
        })
        .collect();
    super::failover::overridden(&configs, &keys, problems);
    configs
}

/// The config of `node` from the selections touching it.
fn node_config(
    node: &str,
    touches: &[(usize, Role)],
    resolved: &[Arc<Resolved>],
    problems: &mut Vec<Problem>,
) -> LvsNodeConfigSpec {
    let mut config = LvsNodeConfigSpec {
        node_name: node.to_owned(),
        shard: Shard::default(),
        ..Default::default()
    };
    let mut sysctls: BTreeSet<SysctlSetting> = BTreeSet::new();
    for &(index, role) in touches {
        let item = &resolved[index];
        let virtual_server = &item.selection.virtual_server;
        match (role, &item.vip) {
            (Role::Director, _) => {
                sysctls.extend(director_sysctls(virtual_server));
                config.director_services.push(item.service.clone());
            }
            (Role::RealServer, Some(vip)) => {
                sysctls.extend(real_server_sysctls(vip));
                merge_vip(&mut config, vip.clone(), virtual_server, node, problems);
            }
            (Role::RealServer, None) => {}
        }
    }
    config
        .director_services
        .sort_by(|left, right| left.virtual_server.cmp(&right.virtual_server));
    config.real_server_vips.sort_by_key(|vip| vip.address);
    config.sysctls = sysctls.into_iter().collect();
    config
}

fn director_service(
    selection: &Selection,
    nodes: &NodeIndex,
    problems: &mut Vec<Problem>,
) -> DirectorService {
    let virtual_server = &selection.virtual_server;
    let service_port = virtual_server.port().map(|port| port.get());
    let mut destinations: Vec<_> = selection
        .selected
        .iter()
        .filter_map(|selected| selected.destination.clone())
        .collect();
    destinations.sort_by(|left, right| left.real_server.cmp(&right.real_server));
    DirectorService {
        virtual_server: virtual_server.key.qualified_name(),
        generation: virtual_server.generation,
        address: virtual_server.address,
        port: service_port,
        protocol: virtual_server.protocol,
        fwmark: virtual_server.fwmark().map(std::num::NonZeroU32::get),
        fwmark_ports: virtual_server
            .fwmark_ports
            .iter()
            .map(|port| port.get())
            .collect(),
        fwmark_mask: virtual_server.mark_mask,
        family: virtual_server.family,
        scheduler: virtual_server.scheduler,
        scheduler_flags: virtual_server.scheduler_flags.clone(),
        one_packet: virtual_server.one_packet,
        forwarding: lvs_api::ForwardingSpec {
            method: virtual_server.method,
            tunnel: virtual_server.tunnel.clone(),
        },
        persistence: virtual_server.persistence.clone(),
        interface: virtual_server.directors.interface.clone(),
        vip_placement: virtual_server.directors.vip_placement,
        health_check: virtual_server.health_check.clone(),
        on_failure: virtual_server.on_failure,
        fallback: virtual_server.fallback.map(|(address, port)| Endpoint {
            address,
            port: port.map(|port| port.get()).or(service_port).unwrap_or(0),
        }),
        directors: selection.directors.clone(),
        high_availability: super::failover::resolve(virtual_server, &selection.directors, nodes, problems),
        destinations,
    }
}

/// The VIP a real-server node of this VirtualServer must accept, if the method needs one.
fn real_server_vip(virtual_server: &ValidVirtualServer) -> Option<RealServerVip> {
    let address = virtual_server.address?;
    let ipv6 = address.is_ipv6();
    let (device, tunnel) = match virtual_server.method {
        ForwardingMethod::Nat => return None,
        ForwardingMethod::DirectRouting => {
            let device = match (virtual_server.arp_method, virtual_server.vip_device) {
                (ArpMethod::Redirect, _) => None,
                (_, VipDevice::Loopback) => Some("lo"),
                (_, VipDevice::Dummy) => Some(crate::DUMMY_DEVICE),
            };
            (device, None)
        }
        ForwardingMethod::Tunnel => {
            let tunnel = virtual_server.tunnel.clone().unwrap_or_default();
            let device = match (tunnel.tunnel_type, ipv6) {
                (TunnelType::Ipip | TunnelType::Gue, false) => "tunl0",
                (TunnelType::Ipip | TunnelType::Gue, true) => "ip6tnl0",
                (TunnelType::Gre, false) => "gre0",
                (TunnelType::Gre, true) => "ip6gre0",
            };
            (Some(device), Some(tunnel))
        }
    };
    let ports = match virtual_server.port() {
        Some(port) => vec![PortProtocol {
            port: port.get(),
            protocol: virtual_server.protocol,
        }],
        None => virtual_server
            .fwmark_ports
            .iter()
            .map(|port| PortProtocol {
                port: port.get(),
                protocol: virtual_server.protocol,
            })
            .collect(),
    };
    Some(RealServerVip {
        address,
        arp_method: virtual_server.arp_method,
        device: device.map(str::to_owned),
        tunnel,
        ports,
        virtual_servers: vec![virtual_server.key.qualified_name()],
    })
}

/// Adds `vip` to the node's VIPs, merging with an entry for the same address when compatible.
fn merge_vip(
    config: &mut LvsNodeConfigSpec,
    vip: RealServerVip,
    virtual_server: &ValidVirtualServer,
    node: &str,
    problems: &mut Vec<Problem>,
) {
    let Some(existing) = config
        .real_server_vips
        .iter_mut()
        .find(|existing| existing.address == vip.address)
    else {
        config.real_server_vips.push(vip);
        return;
    };
    if (existing.arp_method, &existing.device, &existing.tunnel) != (vip.arp_method, &vip.device, &vip.tunnel)
    {
        problems.push(Problem::warning(
            &virtual_server.key,
            "spec.realServers",
            reasons::CONFLICT,
            format!(
                "node {node} already accepts VIP {} with arpMethod {:?} on {} for {}; this VirtualServer's \
                 different setting is ignored there",
                vip.address,
                existing.arp_method,
                existing.device.as_deref().unwrap_or("no device"),
                existing.virtual_servers.join(", ")
            ),
        ));
    }
    for port in vip.ports {
        if !existing.ports.contains(&port) {
            existing.ports.push(port);
        }
    }
    existing.ports.sort();
    existing.virtual_servers.extend(vip.virtual_servers);
    existing.virtual_servers.sort();
    existing.virtual_servers.dedup();
}

fn sysctl(name: impl Into<String>, value: &str) -> SysctlSetting {
    SysctlSetting {
        name: name.into(),
        value: value.to_owned(),
    }
}

/// NAT directors forward and masquerade; IPVS must keep conntrack entries for that.
fn director_sysctls(virtual_server: &ValidVirtualServer) -> Vec<SysctlSetting> {
    if virtual_server.method != ForwardingMethod::Nat {
        return Vec::new();
    }
    let forwarding = match virtual_server.family {
        AddressFamily::IPv4 => sysctl("net/ipv4/ip_forward", "1"),
        AddressFamily::IPv6 => sysctl("net/ipv6/conf/all/forwarding", "1"),
    };
    vec![forwarding, sysctl("net/ipv4/vs/conntrack", "1")]
}

/// ARP suppression (IPv4 only: Linux answers neighbour solicitations only for addresses on the
/// receiving interface) and relaxed reverse-path filtering on tunnel devices. The effective
/// values are the maximum of `all` and the interface, so `all` is set.
fn real_server_sysctls(vip: &RealServerVip) -> Vec<SysctlSetting> {
    let IpAddr::V4(_) = vip.address else {
        return Vec::new();
    };
    let mut settings = Vec::new();
    if vip.arp_method == ArpMethod::Sysctl {
        settings.push(sysctl("net/ipv4/conf/all/arp_ignore", "1"));
        settings.push(sysctl("net/ipv4/conf/all/arp_announce", "2"));
    }
    if let (Some(_), Some(device)) = (&vip.tunnel, &vip.device) {
        settings.push(sysctl(format!("net/ipv4/conf/{device}/rp_filter"), "0"));
        settings.push(sysctl("net/ipv4/conf/all/rp_filter", "0"));
    }
    settings
}
