//! VirtualServer validation: service identity, scheduler, forwarding, persistence, directors,
//! real-server settings, health check and fallback.

use std::net::{IpAddr, Ipv4Addr};
use std::num::{NonZeroU16, NonZeroU32};

use kube::core::Selector;
use lvs_api::{
    AddressFamily, ArpMethod, ForwardingMethod, HighAvailabilitySpec, PersistenceSpec, Protocol,
    ResolvedPersistence, TunnelChecksum, TunnelSpec, TunnelType, VipPlacement, VirtualServer,
    VirtualServerSpec,
};

use super::dual_stack::{self, DualStack, FamilyPart, Vips};
use super::{ServiceKind, ValidVirtualServer, bounds, family_of, fields, health_check::health_check};
use crate::object::{Kind, key_of};
use crate::problem::{Problem, ProblemSink};

/// Validates one VirtualServer.
pub fn virtual_server(object: &VirtualServer) -> Result<ValidVirtualServer, Vec<Problem>> {
    let key = key_of(Kind::VirtualServer, &object.metadata);
    let mut sink = ProblemSink::new(&key);
    fields::object_key(&mut sink, &key);
    let spec = &object.spec;

    let vips = dual_stack::resolve(&mut sink, spec);
    let (family, address) = match vips {
        Vips::Single(family, address) => (family, address),
        Vips::Dual(address, _) => (AddressFamily::IPv4, address),
    };
    let service = service_kind(&mut sink, spec);
    if let Some(pool) = &spec.address_pool {
        fields::dns_subdomain(&mut sink, "spec.addressPool", pool);
        if spec.fwmark.is_some() && spec.address.is_none() {
            sink.invalid(
                "spec.addressPool",
                "needs spec.address with spec.fwmark: a fwmark service without address has no VIP",
            );
        }
    }
    let recorded = dual_stack::recorded(object.status.as_ref(), family);
    let fwmark_ports = fwmark_ports(&mut sink, spec);

    let mut scheduler_flags = spec.scheduler_flags.clone().unwrap_or_default();
    for (index, flag) in scheduler_flags.iter().enumerate() {
        if flag.scheduler() != spec.scheduler {
            sink.invalid(
                format!("spec.schedulerFlags[{index}]"),
                format!(
                    "{} only applies to the {} scheduler, not {}",
                    flag.as_str(),
                    flag.scheduler().as_str(),
                    spec.scheduler.as_str()
                ),
            );
        }
    }
    scheduler_flags.sort();
    scheduler_flags.dedup();
    if spec.one_packet && spec.protocol != Protocol::Udp {
        sink.invalid(
            "spec.onePacket",
            format!("is only for UDP services, not {}", spec.protocol.as_str()),
        );
    }

    let tunnel = tunnel(&mut sink, spec);
    let dual = matches!(vips, Vips::Dual(..));
    let persistence = spec
        .persistence
        .as_ref()
        .and_then(|persistence| resolve_persistence(&mut sink, persistence, family, dual));

    if let Some(interface) = &spec.directors.interface {
        fields::interface_name(&mut sink, "spec.directors.interface", interface);
    } else if spec.directors.vip_placement == VipPlacement::Interface {
        sink.invalid(
            "spec.directors.interface",
            "is required when vipPlacement is Interface",
        );
    }
    fields::label_keys(
        &mut sink,
        "spec.directors.nodeSelector",
        spec.directors.node_selector.keys(),
    );
    high_availability(&mut sink, &spec.directors.high_availability);

    if let Some(labels) = &spec.real_servers.selector.match_labels {
        fields::label_keys(&mut sink, "spec.realServers.selector.matchLabels", labels.keys());
    }
    let real_server_selector = match Selector::try_from(spec.real_servers.selector.clone()) {
        Ok(selector) => Some(selector),
        Err(error) => {
            sink.invalid(
                "spec.realServers.selector",
                format!("is not a valid label selector: {error}"),
            );
            None
        }
    };
    let real_server_port = spec
        .real_servers
        .port
        .and_then(|port| fields::port(&mut sink, "spec.realServers.port", port));
    if let (Some(real_server_port), Some(service_port)) = (real_server_port, spec.port)
        && real_server_port.get() != service_port
        && spec.forwarding.method != ForwardingMethod::Nat
    {
        sink.invalid(
            "spec.realServers.port",
            format!("{real_server_port} differs from the service port {service_port}; only NAT may map to another port"),
        );
    }
    if spec.real_servers.arp_method == ArpMethod::Redirect {
        if spec.forwarding.method == ForwardingMethod::Tunnel {
            sink.invalid(
                "spec.realServers.arpMethod",
                "Redirect does not apply to Tunnel (real servers must decapsulate); use Sysctl or NFTablesARP",
            );
        } else if spec.fwmark.is_some() && spec.fwmark_ports.is_none() {
            sink.invalid(
                "spec.realServers.arpMethod",
                "Redirect with fwmark needs spec.fwmarkPorts to know what to redirect",
            );
        }
    }
    if let Some(thresholds) = &spec.real_servers.thresholds {
        fields::thresholds(&mut sink, "spec.realServers.thresholds", thresholds);
    }

    let health_check = health_check(&mut sink, spec);
    let fallback = fallback(&mut sink, spec, (!dual).then_some(family));
    let dual_stack = match vips {
        Vips::Single(..) => DualStack::No,
        Vips::Dual(v4, v6) => {
            let v6_persistence = spec.persistence.as_ref().and_then(|persistence| {
                resolve_persistence(&mut sink, persistence, AddressFamily::IPv6, dual)
            });
            let part = |family, address, persistence| FamilyPart {
                family,
                address,
                recorded: dual_stack::recorded(object.status.as_ref(), family),
                persistence,
                fallback: fallback.filter(|(address, _)| family_of(address) == family),
            };
            DualStack::Unsplit(vec![
                part(AddressFamily::IPv4, v4, persistence.clone()),
                part(AddressFamily::IPv6, v6, v6_persistence),
            ])
        }
    };
    bounds::virtual_server_spec(&mut sink, spec);

    match (service, real_server_selector) {
        (Some(service), Some(real_server_selector)) if !sink.has_errors() => Ok(ValidVirtualServer {
            generation: object.metadata.generation,
            created: object.metadata.creation_timestamp.as_ref().map(|time| time.0),
            service,
            address,
            requested_pool: spec.address_pool.clone(),
            recorded,
            pool: None,
            mark_mask: None,
            family,
            protocol: spec.protocol,
            fwmark_ports,
            scheduler: spec.scheduler,
            scheduler_flags,
            one_packet: spec.one_packet,
            method: spec.forwarding.method,
            tunnel,
            persistence,
            directors: spec.directors.clone(),
            real_server_selector,
            real_server_port,
            arp_method: spec.real_servers.arp_method,
            vip_device: spec.real_servers.vip_device,
            thresholds: spec.real_servers.thresholds.unwrap_or_default(),
            health_check,
            on_failure: spec.on_failure,
            fallback: if dual {
                fallback.filter(|(address, _)| address.is_ipv4())
            } else {
                fallback
            },
            dual_stack,
            key,
        }),
        _ => Err(sink.problems),
    }
}

fn service_kind(sink: &mut ProblemSink<'_>, spec: &VirtualServerSpec) -> Option<ServiceKind> {
    match (spec.port, spec.fwmark) {
        (Some(_), Some(_)) => {
            sink.invalid("spec.port", "must be omitted when spec.fwmark is set");
            None
        }
        (None, None) => {
            sink.invalid("spec.port", "is required unless spec.fwmark is set");
            None
        }
        (None, Some(mark)) => {
            let mark = NonZeroU32::new(mark);
            if mark.is_none() {
                sink.invalid("spec.fwmark", "must be 1–4294967295, got 0");
            }
            mark.map(ServiceKind::Fwmark)
        }
        (Some(port), None) => fields::port(sink, "spec.port", port).map(ServiceKind::Port),
    }
}

fn fwmark_ports(sink: &mut ProblemSink<'_>, spec: &VirtualServerSpec) -> Vec<NonZeroU16> {
    let Some(ports) = &spec.fwmark_ports else {
        return Vec::new();
    };
    if spec.fwmark.is_none() || spec.address.is_none() {
        sink.invalid("spec.fwmarkPorts", "needs spec.fwmark and spec.address");
    }
    let mut valid: Vec<NonZeroU16> = ports
        .iter()
        .enumerate()
        .filter_map(|(index, port)| fields::port(sink, &format!("spec.fwmarkPorts[{index}]"), port.0))
        .collect();
    valid.sort();
    valid.dedup();
    valid
}

fn tunnel(sink: &mut ProblemSink<'_>, spec: &VirtualServerSpec) -> Option<TunnelSpec> {
    match (&spec.forwarding.tunnel, spec.forwarding.method) {
        (Some(_), method) if method != ForwardingMethod::Tunnel => {
            sink.invalid(
                "spec.forwarding.tunnel",
                format!("may only be set when method is Tunnel, not {method:?}"),
            );
            None
        }
        (tunnel, ForwardingMethod::Tunnel) => {
            let tunnel = tunnel.clone().unwrap_or_default();
            match (tunnel.tunnel_type, tunnel.port) {
                (TunnelType::Gue, None) => {
                    sink.invalid("spec.forwarding.tunnel.port", "is required for GUE tunnels")
                }
                (TunnelType::Gue, Some(port)) => {
                    fields::port(sink, "spec.forwarding.tunnel.port", port);
                }
                (other, Some(_)) => sink.invalid(
                    "spec.forwarding.tunnel.port",
                    format!("is only used by GUE tunnels, not {other:?}"),
                ),
                (_, None) => {}
            }
            match (tunnel.tunnel_type, tunnel.checksum) {
                (TunnelType::Ipip, checksum) if checksum != TunnelChecksum::None => sink.invalid(
                    "spec.forwarding.tunnel.checksum",
                    format!("an IPIP tunnel has no checksum, so {checksum:?} needs type GUE or GRE"),
                ),
                (TunnelType::Gre, TunnelChecksum::RemoteChecksum) => sink.invalid(
                    "spec.forwarding.tunnel.checksum",
                    "remote checksum offload is GUE only; use Checksum with GRE",
                ),
                _ => {}
            }
            Some(tunnel)
        }
        _ => None,
    }
}

/// Failover settings: node names in `priority` and the connection-sync interface (their ranges
/// are schema bounds).
fn high_availability(sink: &mut ProblemSink<'_>, spec: &HighAvailabilitySpec) {
    const FIELD: &str = "spec.directors.highAvailability";
    for (index, node) in spec.priority.iter().enumerate() {
        fields::dns_subdomain(sink, &format!("{FIELD}.priority[{index}]"), node);
    }
    if let Some(interface) = &spec.connection_sync.interface {
        fields::interface_name(sink, &format!("{FIELD}.connectionSync.interface"), interface);
    }
}

/// Persistence for the VIP of `family`. A dual-stack VirtualServer may set both masks: each
/// family reads its own (`netmask` IPv4, `prefixLength` IPv6) and ignores the other's.
fn resolve_persistence(
    sink: &mut ProblemSink<'_>,
    spec: &PersistenceSpec,
    family: AddressFamily,
    dual: bool,
) -> Option<ResolvedPersistence> {
    if dual {
        let own = PersistenceSpec {
            netmask: spec.netmask.clone().filter(|_| family == AddressFamily::IPv4),
            prefix_length: spec.prefix_length.filter(|_| family == AddressFamily::IPv6),
            timeout_seconds: spec.timeout_seconds,
        };
        // The timeout is checked once, with the IPv4 part.
        let timeout_checked = family == AddressFamily::IPv6;
        return resolve_persistence_of(sink, &own, family, timeout_checked);
    }
    resolve_persistence_of(sink, spec, family, false)
}

fn resolve_persistence_of(
    sink: &mut ProblemSink<'_>,
    spec: &PersistenceSpec,
    family: AddressFamily,
    timeout_checked: bool,
) -> Option<ResolvedPersistence> {
    const FIELD: &str = "spec.persistence";
    if !timeout_checked && (spec.timeout_seconds == 0 || spec.timeout_seconds > 31_536_000) {
        sink.invalid(
            format!("{FIELD}.timeoutSeconds"),
            format!("must be 1–31536000, got {}", spec.timeout_seconds),
        );
    }
    let prefix_length = match (family, &spec.netmask, spec.prefix_length) {
        (_, Some(_), Some(_)) => {
            sink.invalid(
                format!("{FIELD}.prefixLength"),
                "set netmask (IPv4) or prefixLength (IPv6), not both",
            );
            return None;
        }
        (AddressFamily::IPv6, Some(_), None) => {
            sink.invalid(
                format!("{FIELD}.netmask"),
                "is for IPv4 services; use prefixLength for IPv6",
            );
            return None;
        }
        (AddressFamily::IPv4, None, Some(_)) => {
            sink.invalid(
                format!("{FIELD}.prefixLength"),
                "is for IPv6 services; use netmask for IPv4",
            );
            return None;
        }
        (AddressFamily::IPv4, Some(netmask), None) => {
            netmask_prefix(sink, &format!("{FIELD}.netmask"), netmask)?
        }
        (AddressFamily::IPv6, None, Some(prefix)) => {
            if !(1..=128).contains(&prefix) {
                sink.invalid(
                    format!("{FIELD}.prefixLength"),
                    format!("must be 1–128, got {prefix}"),
                );
                return None;
            }
            prefix
        }
        (AddressFamily::IPv4, None, None) => 32,
        (AddressFamily::IPv6, None, None) => 128,
    };
    Some(ResolvedPersistence {
        timeout_seconds: spec.timeout_seconds,
        prefix_length,
    })
}

/// The prefix length of a contiguous IPv4 netmask such as `255.255.255.0`.
fn netmask_prefix(sink: &mut ProblemSink<'_>, field: &str, netmask: &str) -> Option<u8> {
    let Ok(mask) = netmask.parse::<Ipv4Addr>() else {
        sink.invalid(
            field,
            format!(
                "must be an IPv4 netmask such as 255.255.255.0, got {}",
                fields::quoted(netmask)
            ),
        );
        return None;
    };
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 || prefix == 0 {
        sink.invalid(
            field,
            format!("must be a contiguous, non-zero netmask such as 255.255.255.0, got {netmask}"),
        );
        return None;
    }
    u8::try_from(prefix).ok()
}

/// The fallback server; `family` is the single-stack VIP's (a dual-stack VirtualServer has a VIP
/// of every family, so any fallback family fits it).
fn fallback(
    sink: &mut ProblemSink<'_>,
    spec: &VirtualServerSpec,
    family: Option<AddressFamily>,
) -> Option<(IpAddr, Option<NonZeroU16>)> {
    let fallback = spec.fallback.as_ref()?;
    let address = fields::unicast_address(sink, "spec.fallback.address", &fallback.address)?;
    let port = fallback
        .port
        .and_then(|port| fields::port(sink, "spec.fallback.port", port));
    if let Some(family) = family
        && family_of(&address) != family
        && spec.forwarding.method != ForwardingMethod::Tunnel
    {
        sink.invalid(
            "spec.fallback.address",
            format!("{address} is not {family:?}; only Tunnel may forward across address families"),
        );
    }
    if let (Some(port), Some(service_port)) = (port, spec.port)
        && port.get() != service_port
        && spec.forwarding.method != ForwardingMethod::Nat
    {
        sink.invalid(
            "spec.fallback.port",
            format!("{port} differs from the service port {service_port}; only NAT may map to another port"),
        );
    }
    Some((address, port))
}
