//! Desired kernel state from a node's resolved config: `LvsNodeConfigSpec` (+ what the health
//! checks say) → `NodeState`. Pure. Health decides weights: unhealthy real servers get weight 0
//! (Quiescent) or disappear (Remove); with no real server able to take traffic the fallback
//! server takes it; a real server whose node has not reported its VIP gets weight 0.
//!
//! This is the edge between the API and the dataplane: the CRD's enums become the dataplane's
//! own (`protocol`, `address_family`, `tunnel_type`, `tunnel_checksum`), so the netlink crate
//! never sees a Kubernetes type.
//!
//! The input guard is built here too: every VIP local on this node — a director VIP it holds or
//! may hold (failover decides later which it holds; the guard does not change with it), a
//! real-server VIP on a device — takes only the services declared on it. A real-server VIP
//! whose services take every port of an unknown protocol (a fwmark service without ports)
//! stays open.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use lvs_api::{
    ArpMethod, DirectorService, FailureAction, ForwardingMethod, LvsNodeConfigSpec, RealServerVip,
    SchedulerFlag, VipPlacement,
};
use lvs_dataplane::executor::DUMMY_DEVICE;
use lvs_dataplane::model::{
    AddressFamily, ArpGuard, Destination, Forwarding, Link, MarkRule, NftRules, NodeState, Persistence,
    PortMatch, Protocol, Service, ServiceFlags, ServiceKey, ServiceState, TunnelChecksum, TunnelType,
    VipAddress,
};

/// What the health checks say about one real server of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// No result yet: treated as healthy, so a restarted agent does not drain anything.
    #[default]
    Unknown,
    /// Checks pass.
    Healthy,
    /// Checks fail.
    Unhealthy,
}

/// Inputs besides the config.
pub struct Inputs<'a> {
    /// Health of (VirtualServer `namespace/name`, RealServer `namespace/name`).
    pub health: &'a dyn Fn(&str, &str) -> Health,
    /// The node's own IPv4 address, announced instead of a VIP by the NFTablesARP method.
    pub node_address: Option<Ipv4Addr>,
    /// The uplinks of IPv6 director VIPs without a named interface (`uplink_lookups` says
    /// which): the interfaces whose network contains each.
    pub uplinks: &'a BTreeMap<IpAddr, Vec<String>>,
}

/// The kernel state `config` asks for.
pub fn desired_state(config: &LvsNodeConfigSpec, inputs: &Inputs<'_>) -> NodeState {
    let mut state = NodeState::default();
    let mut rules = NftRules::default();
    for service in &config.director_services {
        add_director_service(service, inputs, &mut state, &mut rules);
    }
    let mut open = BTreeSet::new();
    for vip in &config.real_server_vips {
        add_real_server_vip(vip, inputs, &mut state, &mut rules, &mut open);
    }
    rules.guarded_vips.retain(|vip| !open.contains(vip));
    rules
        .guarded_services
        .retain(|service| !open.contains(&service.address));
    for sysctl in &config.sysctls {
        state.sysctls.insert(sysctl.name.clone(), sysctl.value.clone());
    }
    let rules = rules.normalized();
    state.nftables = (!rules.is_empty()).then_some(rules);
    state
}

/// The dataplane's protocol for the API's.
pub fn protocol(protocol: lvs_api::Protocol) -> Protocol {
    match protocol {
        lvs_api::Protocol::Tcp => Protocol::Tcp,
        lvs_api::Protocol::Udp => Protocol::Udp,
        lvs_api::Protocol::Sctp => Protocol::Sctp,
    }
}

/// The dataplane's address family for the API's.
pub fn address_family(family: lvs_api::AddressFamily) -> AddressFamily {
    match family {
        lvs_api::AddressFamily::IPv4 => AddressFamily::IPv4,
        lvs_api::AddressFamily::IPv6 => AddressFamily::IPv6,
    }
}

/// The dataplane's tunnel encapsulation for the API's.
pub fn tunnel_type(tunnel: lvs_api::TunnelType) -> TunnelType {
    match tunnel {
        lvs_api::TunnelType::Ipip => TunnelType::Ipip,
        lvs_api::TunnelType::Gue => TunnelType::Gue,
        lvs_api::TunnelType::Gre => TunnelType::Gre,
    }
}

/// The dataplane's tunnel checksum mode for the API's.
pub fn tunnel_checksum(checksum: lvs_api::TunnelChecksum) -> TunnelChecksum {
    match checksum {
        lvs_api::TunnelChecksum::None => TunnelChecksum::None,
        lvs_api::TunnelChecksum::Checksum => TunnelChecksum::Checksum,
        lvs_api::TunnelChecksum::RemoteChecksum => TunnelChecksum::RemoteChecksum,
    }
}

/// The IPVS key of a director service, when it has one (a fwmark or an address and port).
pub fn service_key(service: &DirectorService) -> Option<ServiceKey> {
    match (service.fwmark, service.address, service.port) {
        (Some(mark), _, _) => Some(ServiceKey::Fwmark {
            family: address_family(service.family),
            mark,
        }),
        (None, Some(address), Some(port)) => Some(ServiceKey::Address {
            address,
            port,
            protocol: protocol(service.protocol),
        }),
        _ => None,
    }
}

/// The devices a director holds the service's VIP on: the uplink for `Interface` placement;
/// for `Dummy` placement `lvs0` — except an IPv6 VIP, held on its uplink (`interface`, else every
/// interface whose network contains it, from `uplinks`), because Linux answers neighbour
/// solicitation only for addresses on the interface it arrives on, and an unsolicited
/// advertisement creates no entry on a client that has none. (Proxy NDP would keep it on
/// `lvs0`, but needs the uplink switched to router behaviour — `forwarding`, `proxy_ndp`,
/// `accept_ra` and `proxy_delay` on an interface that is not ours — where one `/128` address
/// is all this takes; it is added deprecated, so it is never a source address.) An IPv6 VIP
/// whose network is on no interface (routed to the director) stays on `lvs0`.
pub fn vip_devices(service: &DirectorService, uplinks: &BTreeMap<IpAddr, Vec<String>>) -> Vec<String> {
    match (service.vip_placement, &service.interface, service.address) {
        (VipPlacement::Interface, Some(interface), _) => vec![interface.clone()],
        (VipPlacement::Dummy, Some(interface), Some(IpAddr::V6(_))) => vec![interface.clone()],
        (VipPlacement::Dummy, None, Some(address @ IpAddr::V6(_))) => match uplinks.get(&address) {
            Some(found) if !found.is_empty() => found.clone(),
            _ => vec![DUMMY_DEVICE.to_owned()],
        },
        _ => vec![DUMMY_DEVICE.to_owned()],
    }
}

/// The IPv6 director VIPs of `config` whose uplinks must be looked up for `Inputs::uplinks`
/// (Dummy placement without a named interface).
pub fn uplink_lookups(config: &LvsNodeConfigSpec) -> BTreeSet<IpAddr> {
    config
        .director_services
        .iter()
        .filter(|service| service.vip_placement == VipPlacement::Dummy && service.interface.is_none())
        .filter_map(|service| service.address)
        .filter(IpAddr::is_ipv6)
        .collect()
}

fn add_director_service(
    service: &DirectorService,
    inputs: &Inputs<'_>,
    state: &mut NodeState,
    rules: &mut NftRules,
) {
    let Some(key) = service_key(service) else { return };
    let forwarding = match service.forwarding.method {
        ForwardingMethod::DirectRouting => Forwarding::DirectRouting,
        ForwardingMethod::Nat => Forwarding::Nat,
        ForwardingMethod::Tunnel => {
            let tunnel = service.forwarding.tunnel.clone().unwrap_or_default();
            Forwarding::Tunnel {
                kind: tunnel_type(tunnel.tunnel_type),
                port: tunnel.port.unwrap_or(0),
                checksum: tunnel_checksum(tunnel.checksum),
            }
        }
    };
    let mut destinations = BTreeMap::new();
    for destination in &service.destinations {
        let health = (inputs.health)(&service.virtual_server, &destination.real_server);
        let weight = match (health, service.on_failure) {
            (Health::Unhealthy, FailureAction::Remove) => continue,
            (Health::Unhealthy, FailureAction::Quiescent) => 0,
            _ if destination.awaiting_node => 0,
            _ => u32::from(destination.weight),
        };
        let entry = Destination {
            address: destination.address,
            port: destination.port,
            weight,
            forwarding,
            upper_threshold: destination.thresholds.upper,
            lower_threshold: destination.thresholds.lower,
        };
        if service.forwarding.method == ForwardingMethod::Nat {
            rules.masquerade.push(PortMatch {
                address: destination.address,
                protocol: protocol(service.protocol),
                port: destination.port,
            });
        }
        destinations.insert(entry.key(), entry);
    }
    if let Some(fallback) = &service.fallback
        && destinations.values().all(|destination| destination.weight == 0)
    {
        let entry = Destination {
            address: fallback.address,
            port: fallback.port,
            weight: 1,
            forwarding,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        if service.forwarding.method == ForwardingMethod::Nat {
            rules.masquerade.push(PortMatch {
                address: fallback.address,
                protocol: protocol(service.protocol),
                port: fallback.port,
            });
        }
        destinations.insert(entry.key(), entry);
    }

    let mut flags = ServiceFlags {
        one_packet: service.one_packet,
        ..ServiceFlags::default()
    };
    for flag in &service.scheduler_flags {
        match flag {
            SchedulerFlag::ShFallback | SchedulerFlag::MhFallback => flags.sched_fallback = true,
            SchedulerFlag::ShPort | SchedulerFlag::MhPort => flags.sched_port = true,
        }
    }
    let ipvs_service = Service {
        key,
        scheduler: service.scheduler.as_str().to_owned(),
        flags,
        persistence: service.persistence.as_ref().map(|persistence| Persistence {
            timeout: persistence.timeout_seconds,
            prefix_length: persistence.prefix_length,
        }),
    };
    state.services.insert(
        key,
        ServiceState {
            service: ipvs_service,
            destinations,
        },
    );

    let Some(address) = service.address else { return };
    rules.guarded_vips.push(address);
    match key {
        ServiceKey::Address { port, protocol, .. } => {
            let target = PortMatch {
                address,
                protocol,
                port,
            };
            if service.forwarding.method != ForwardingMethod::Nat {
                // Direct routing and tunnelling need no conntrack here, and kube-proxy's DNAT
                // of a LoadBalancer IP (a Service's VIP) would take the packet from IPVS.
                rules.untracked.push(target);
            }
            rules.guarded_services.push(target);
        }
        ServiceKey::Fwmark { .. } => {
            // The ports the mark rule marks; none: every port of the protocol (port 0).
            let ports = if service.fwmark_ports.is_empty() {
                vec![0]
            } else {
                service.fwmark_ports.clone()
            };
            rules
                .guarded_services
                .extend(ports.into_iter().map(|port| PortMatch {
                    address,
                    protocol: protocol(service.protocol),
                    port,
                }));
        }
    }
    if let (Some(mark), ServiceKey::Fwmark { .. }) = (service.fwmark, key) {
        rules.marks.push(MarkRule {
            address,
            protocol: protocol(service.protocol),
            ports: service.fwmark_ports.clone(),
            mark,
            mask: service.fwmark_mask.unwrap_or(u32::MAX),
        });
    }
    for device in vip_devices(service, inputs.uplinks) {
        if device == DUMMY_DEVICE {
            state.links.insert(Link::Dummy {
                name: DUMMY_DEVICE.to_owned(),
            });
        }
        state.addresses.insert(VipAddress { address, device });
    }
    state.announce.insert(address, service.interface.clone());
}

/// Adds a real-server VIP; a VIP on a device whose services take every port goes into `open`
/// (never guarded).
fn add_real_server_vip(
    vip: &RealServerVip,
    inputs: &Inputs<'_>,
    state: &mut NodeState,
    rules: &mut NftRules,
    open: &mut BTreeSet<IpAddr>,
) {
    let address = vip.address;
    if vip.arp_method == ArpMethod::Redirect {
        for port in &vip.ports {
            rules.redirects.push(PortMatch {
                address,
                protocol: protocol(port.protocol),
                port: port.port,
            });
        }
        return;
    }
    let Some(device) = vip.device.clone() else { return };
    if vip.ports.is_empty() {
        open.insert(address);
    } else {
        rules.guarded_vips.push(address);
        rules
            .guarded_services
            .extend(vip.ports.iter().map(|port| PortMatch {
                address,
                protocol: protocol(port.protocol),
                port: port.port,
            }));
    }
    if let Some(tunnel) = &vip.tunnel {
        let module = match (tunnel_type(tunnel.tunnel_type), address.is_ipv6()) {
            (TunnelType::Ipip | TunnelType::Gue, false) => "ipip",
            (TunnelType::Ipip | TunnelType::Gue, true) => "ip6_tunnel",
            (TunnelType::Gre, false) => "ip_gre",
            (TunnelType::Gre, true) => "ip6_gre",
        };
        state.links.insert(Link::TunnelFallback {
            name: device.clone(),
            module: module.to_owned(),
        });
        if let (TunnelType::Gue, Some(port)) = (tunnel_type(tunnel.tunnel_type), tunnel.port) {
            let family = if address.is_ipv6() {
                AddressFamily::IPv6
            } else {
                AddressFamily::IPv4
            };
            state.links.insert(Link::GueReceivePort { port, family });
        }
    } else if device == DUMMY_DEVICE {
        state.links.insert(Link::Dummy {
            name: DUMMY_DEVICE.to_owned(),
        });
    }
    match (vip.arp_method, address) {
        (ArpMethod::NftablesArp, IpAddr::V4(vip_v4)) => rules.arp_guards.push(ArpGuard {
            vip: vip_v4,
            real_address: inputs.node_address,
        }),
        (ArpMethod::NftablesArp, IpAddr::V6(vip_v6)) => rules.nd_guards.push(vip_v6),
        _ => {}
    }
    state.addresses.insert(VipAddress { address, device });
}

#[cfg(test)]
#[path = "desired/tests.rs"]
mod tests;
