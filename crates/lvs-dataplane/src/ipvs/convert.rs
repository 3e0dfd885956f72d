//! Conversions between the shared model (`Service`, `Destination`, `Stats`, ...) and IPVS
//! attributes: what we send, and what we make of the kernel's replies. Replies that lack an
//! attribute we need, or hold a value we cannot represent, are errors, never panics.

use std::net::IpAddr;

use netlink_packet_core::{DecodeError, ErrorContext};

use super::constants::{
    IP_VS_CONN_F_DROUTE, IP_VS_CONN_F_FWD_MASK, IP_VS_CONN_F_LOCALNODE, IP_VS_CONN_F_MASQ,
    IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_TUNNEL_TYPE_GRE, IP_VS_CONN_F_TUNNEL_TYPE_GUE,
    IP_VS_CONN_F_TUNNEL_TYPE_IPIP, IP_VS_STATE_BACKUP, IP_VS_STATE_MASTER, IP_VS_SVC_F_ONEPACKET,
    IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
    IP_VS_TUNNEL_ENCAP_FLAG_CSUM, IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM, IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
};
use super::daemon::DaemonAttribute;
use super::destination::DestinationAttribute;
use super::message::{IpvsAttribute, IpvsMessage};
use super::service::{FlagsWithMask, ServiceAttribute};
use super::stats::{StatsAttribute, stats_from_attributes};
use super::types::{
    DaemonState, IpvsInfo, ObservedDestination, ObservedService, ServiceListing, SyncDaemon, Timeouts,
    UnreadableService,
};
use super::wire::{
    InetAddress, family_from_number, family_number, family_of, netmask_for_prefix, prefix_for_netmask,
    protocol_from_number, protocol_number,
};
use crate::model::{
    AddressFamily, Destination, Forwarding, Persistence, Service, ServiceFlags, ServiceKey, TunnelChecksum,
    TunnelType,
};

/// The service flags lvs-operator manages: the mask of every SET_SERVICE we send. The kernel's
/// own `IP_VS_SVC_F_HASHED` is left out.
pub const MANAGED_SERVICE_FLAGS: u32 = IP_VS_SVC_F_PERSISTENT
    | IP_VS_SVC_F_ONEPACKET
    | IP_VS_SVC_F_SCHED1
    | IP_VS_SVC_F_SCHED2
    | IP_VS_SVC_F_SCHED3;

/// The attributes identifying a service: AF + PROTOCOL + ADDR + PORT, or AF + FWMARK.
pub fn service_key_attributes(key: &ServiceKey) -> Vec<ServiceAttribute> {
    match *key {
        ServiceKey::Address {
            address,
            port,
            protocol,
        } => vec![
            ServiceAttribute::AddressFamily(family_number(family_of(address))),
            ServiceAttribute::Protocol(protocol_number(protocol)),
            ServiceAttribute::Address(InetAddress::from(address)),
            ServiceAttribute::Port(port),
        ],
        ServiceKey::Fwmark { family, mark } => {
            vec![
                ServiceAttribute::AddressFamily(family_number(family)),
                ServiceAttribute::Fwmark(mark),
            ]
        }
    }
}

/// The `IP_VS_SVC_F_*` bits of a service.
pub fn service_flag_bits(flags: &ServiceFlags, persistent: bool) -> u32 {
    [
        (persistent, IP_VS_SVC_F_PERSISTENT),
        (flags.one_packet, IP_VS_SVC_F_ONEPACKET),
        (flags.sched_fallback, IP_VS_SVC_F_SCHED1),
        (flags.sched_port, IP_VS_SVC_F_SCHED2),
        (flags.sched_3, IP_VS_SVC_F_SCHED3),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(0, |bits, (_, bit)| bits | bit)
}

/// A full service entry, as NEW_SERVICE and SET_SERVICE need it: the key, scheduler, flags
/// (with [`MANAGED_SERVICE_FLAGS`] as mask), persistence timeout and netmask. Without
/// persistence the timeout is 0 and the netmask covers the whole address (/32 or /128).
pub fn service_attributes(service: &Service) -> Vec<ServiceAttribute> {
    let family = service.key.family();
    let (timeout, prefix_length) = match service.persistence {
        Some(Persistence {
            timeout,
            prefix_length,
        }) => (timeout, prefix_length),
        None => (0, full_prefix(family)),
    };
    let mut attributes = service_key_attributes(&service.key);
    attributes.extend([
        ServiceAttribute::SchedulerName(service.scheduler.clone()),
        ServiceAttribute::Flags(FlagsWithMask {
            flags: service_flag_bits(&service.flags, service.persistence.is_some()),
            mask: MANAGED_SERVICE_FLAGS,
        }),
        ServiceAttribute::Timeout(timeout),
        ServiceAttribute::Netmask(netmask_for_prefix(family, prefix_length)),
    ]);
    attributes
}

fn missing(owner: &str, attribute: &str) -> DecodeError {
    DecodeError::from(format!("{owner} has no {attribute}"))
}

fn full_prefix(family: AddressFamily) -> u8 {
    match family {
        AddressFamily::IPv4 => 32,
        AddressFamily::IPv6 => 128,
    }
}

/// The key of a service the kernel describes.
pub fn service_key_from_attributes(attributes: &[ServiceAttribute]) -> Result<ServiceKey, DecodeError> {
    let (mut family, mut protocol, mut address, mut port, mut mark) = (None, None, None, None, None);
    for attribute in attributes {
        match *attribute {
            ServiceAttribute::AddressFamily(value) => family = Some(value),
            ServiceAttribute::Protocol(value) => protocol = Some(value),
            ServiceAttribute::Address(value) => address = Some(value),
            ServiceAttribute::Port(value) => port = Some(value),
            ServiceAttribute::Fwmark(value) => mark = Some(value),
            _ => {}
        }
    }
    let family = family_from_number(family.ok_or_else(|| missing("a service", "IPVS_SVC_ATTR_AF"))?)?;
    if let Some(mark) = mark.filter(|mark| *mark != 0) {
        return Ok(ServiceKey::Fwmark { family, mark });
    }
    match (protocol, address, port) {
        (Some(protocol), Some(address), Some(port)) => Ok(ServiceKey::Address {
            address: address.to_ip(family)?,
            port,
            protocol: protocol_from_number(protocol)?,
        }),
        _ => Err(DecodeError::from(
            "a service with neither a fwmark nor protocol, address and port",
        )),
    }
}

/// A service the kernel describes (GET_SERVICE replies), with its counters (STATS64, else
/// the older STATS).
pub fn service_from_attributes(attributes: &[ServiceAttribute]) -> Result<ObservedService, DecodeError> {
    let key = service_key_from_attributes(attributes)?;
    let (mut scheduler, mut flags, mut timeout, mut netmask) = (None, None, None, None);
    let (mut stats, mut stats64): (Option<&[StatsAttribute]>, Option<&[StatsAttribute]>) = (None, None);
    for attribute in attributes {
        match attribute {
            ServiceAttribute::SchedulerName(name) => scheduler = Some(name.clone()),
            ServiceAttribute::Flags(value) => flags = Some(value.flags),
            ServiceAttribute::Timeout(value) => timeout = Some(*value),
            ServiceAttribute::Netmask(value) => netmask = Some(*value),
            ServiceAttribute::Stats(value) => stats = Some(value),
            ServiceAttribute::Stats64(value) => stats64 = Some(value),
            _ => {}
        }
    }
    let owner = format!("service {key}");
    let scheduler = scheduler.ok_or_else(|| missing(&owner, "IPVS_SVC_ATTR_SCHED_NAME"))?;
    let flags = flags.ok_or_else(|| missing(&owner, "IPVS_SVC_ATTR_FLAGS"))?;
    let persistence = if flags & IP_VS_SVC_F_PERSISTENT == 0 {
        None
    } else {
        let timeout = timeout.ok_or_else(|| missing(&owner, "IPVS_SVC_ATTR_TIMEOUT"))?;
        let netmask = netmask.ok_or_else(|| missing(&owner, "IPVS_SVC_ATTR_NETMASK"))?;
        let prefix_length = prefix_for_netmask(key.family(), netmask).context(&owner)?;
        Some(Persistence {
            timeout,
            prefix_length,
        })
    };
    let service = Service {
        key,
        scheduler,
        flags: ServiceFlags {
            one_packet: flags & IP_VS_SVC_F_ONEPACKET != 0,
            sched_fallback: flags & IP_VS_SVC_F_SCHED1 != 0,
            sched_port: flags & IP_VS_SVC_F_SCHED2 != 0,
            sched_3: flags & IP_VS_SVC_F_SCHED3 != 0,
        },
        persistence,
    };
    let stats = stats64.or(stats).map(stats_from_attributes).unwrap_or_default();
    Ok(ObservedService { service, stats })
}

/// The services of a GET_SERVICE dump, one reply each. A reply that cannot be read (an
/// attribute missing, a value we cannot represent) is listed as unreadable, with its key when
/// that much can be read: one foreign entry must not hide the rest of the table.
pub fn service_listing_from_replies(replies: &[IpvsMessage]) -> ServiceListing {
    let mut listing = ServiceListing::default();
    for reply in replies {
        let attributes = reply.attributes.iter().find_map(|attribute| match attribute {
            IpvsAttribute::Service(attributes) => Some(attributes.as_slice()),
            _ => None,
        });
        let Some(attributes) = attributes else {
            listing.unreadable.push(UnreadableService {
                key: None,
                reason: "a reply without IPVS_CMD_ATTR_SERVICE".to_owned(),
            });
            continue;
        };
        match service_from_attributes(attributes) {
            Ok(service) => listing.services.push(service),
            Err(error) => {
                let key = service_key_from_attributes(attributes).ok();
                let reason = error.to_string();
                // The key goes apart, not twice.
                let reason = key
                    .and_then(|key| {
                        reason
                            .strip_prefix(&format!("service {key} caused by "))
                            .map(str::to_owned)
                    })
                    .unwrap_or(reason);
                listing.unreadable.push(UnreadableService { key, reason });
            }
        }
    }
    listing
}

/// The attributes identifying a destination within its service: ADDR, PORT, ADDR_FAMILY.
pub fn destination_key_attributes(address: IpAddr, port: u16) -> Vec<DestinationAttribute> {
    vec![
        DestinationAttribute::Address(InetAddress::from(address)),
        DestinationAttribute::Port(port),
        DestinationAttribute::AddressFamily(family_number(family_of(address))),
    ]
}

/// A full destination entry, as NEW_DEST and SET_DEST need it.
pub fn destination_attributes(destination: &Destination) -> Vec<DestinationAttribute> {
    let mut attributes = destination_key_attributes(destination.address, destination.port);
    let method = match destination.forwarding {
        Forwarding::Nat => IP_VS_CONN_F_MASQ,
        Forwarding::DirectRouting => IP_VS_CONN_F_DROUTE,
        Forwarding::Tunnel { .. } => IP_VS_CONN_F_TUNNEL,
        Forwarding::Local => IP_VS_CONN_F_LOCALNODE,
    };
    attributes.extend([
        DestinationAttribute::ForwardingMethod(method),
        DestinationAttribute::Weight(destination.weight),
        DestinationAttribute::UpperThreshold(destination.upper_threshold),
        DestinationAttribute::LowerThreshold(destination.lower_threshold),
    ]);
    if let Forwarding::Tunnel { kind, port, checksum } = destination.forwarding {
        attributes.extend([
            DestinationAttribute::TunnelType(match kind {
                TunnelType::Ipip => IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
                TunnelType::Gue => IP_VS_CONN_F_TUNNEL_TYPE_GUE,
                TunnelType::Gre => IP_VS_CONN_F_TUNNEL_TYPE_GRE,
            }),
            DestinationAttribute::TunnelPort(port),
            DestinationAttribute::TunnelFlags(match checksum {
                TunnelChecksum::None => IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
                TunnelChecksum::Checksum => IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
                TunnelChecksum::RemoteChecksum => IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
            }),
        ]);
    }
    attributes
}

/// A destination the kernel describes (GET_DEST dumps). `service_family` reads the address
/// when the reply has no ADDR_FAMILY (kernels before 3.18).
pub fn destination_from_attributes(
    attributes: &[DestinationAttribute],
    service_family: AddressFamily,
) -> Result<ObservedDestination, DecodeError> {
    let mut observed = ObservedDestination {
        destination: Destination {
            address: IpAddr::from([0, 0, 0, 0]),
            port: 0,
            weight: 0,
            forwarding: Forwarding::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
        },
        active_connections: 0,
        inactive_connections: 0,
        persistent_connections: 0,
        stats: Default::default(),
    };
    let (mut address, mut port, mut method, mut weight, mut family) = (None, None, None, None, None);
    let (mut tunnel_type, mut tunnel_port, mut tunnel_flags) = (0, 0, 0);
    let (mut stats, mut stats64): (Option<&[StatsAttribute]>, Option<&[StatsAttribute]>) = (None, None);
    for attribute in attributes {
        match attribute {
            DestinationAttribute::Address(value) => address = Some(*value),
            DestinationAttribute::Port(value) => port = Some(*value),
            DestinationAttribute::ForwardingMethod(value) => method = Some(*value),
            DestinationAttribute::Weight(value) => weight = Some(*value),
            DestinationAttribute::AddressFamily(value) => family = Some(*value),
            DestinationAttribute::UpperThreshold(value) => observed.destination.upper_threshold = *value,
            DestinationAttribute::LowerThreshold(value) => observed.destination.lower_threshold = *value,
            DestinationAttribute::ActiveConnections(value) => observed.active_connections = *value,
            DestinationAttribute::InactiveConnections(value) => observed.inactive_connections = *value,
            DestinationAttribute::PersistentConnections(value) => observed.persistent_connections = *value,
            DestinationAttribute::TunnelType(value) => tunnel_type = *value,
            DestinationAttribute::TunnelPort(value) => tunnel_port = *value,
            DestinationAttribute::TunnelFlags(value) => tunnel_flags = *value,
            DestinationAttribute::Stats(value) => stats = Some(value),
            DestinationAttribute::Stats64(value) => stats64 = Some(value),
            DestinationAttribute::Other(_) => {}
        }
    }
    let family = family
        .map(family_from_number)
        .transpose()?
        .unwrap_or(service_family);
    let address = address
        .ok_or_else(|| missing("a destination", "IPVS_DEST_ATTR_ADDR"))?
        .to_ip(family)?;
    let owner = format!("destination {address}");
    observed.destination.address = address;
    observed.destination.port = port.ok_or_else(|| missing(&owner, "IPVS_DEST_ATTR_PORT"))?;
    observed.destination.weight = weight.ok_or_else(|| missing(&owner, "IPVS_DEST_ATTR_WEIGHT"))?;
    let method = method.ok_or_else(|| missing(&owner, "IPVS_DEST_ATTR_FWD_METHOD"))?;
    observed.destination.forwarding =
        forwarding_from_wire(method, tunnel_type, tunnel_port, tunnel_flags).context(&owner)?;
    observed.stats = stats64.or(stats).map(stats_from_attributes).unwrap_or_default();
    Ok(observed)
}

fn forwarding_from_wire(method: u32, kind: u8, port: u16, flags: u16) -> Result<Forwarding, DecodeError> {
    Ok(match method & IP_VS_CONN_F_FWD_MASK {
        IP_VS_CONN_F_MASQ => Forwarding::Nat,
        IP_VS_CONN_F_LOCALNODE => Forwarding::Local,
        IP_VS_CONN_F_DROUTE => Forwarding::DirectRouting,
        IP_VS_CONN_F_TUNNEL => Forwarding::Tunnel {
            kind: match kind {
                IP_VS_CONN_F_TUNNEL_TYPE_IPIP => TunnelType::Ipip,
                IP_VS_CONN_F_TUNNEL_TYPE_GUE => TunnelType::Gue,
                IP_VS_CONN_F_TUNNEL_TYPE_GRE => TunnelType::Gre,
                other => return Err(DecodeError::from(format!("unknown tunnel type {other}"))),
            },
            port,
            checksum: match flags {
                IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM => TunnelChecksum::None,
                IP_VS_TUNNEL_ENCAP_FLAG_CSUM => TunnelChecksum::Checksum,
                IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM => TunnelChecksum::RemoteChecksum,
                other => return Err(DecodeError::from(format!("unsupported tunnel flags {other:#x}"))),
            },
        },
        other => return Err(DecodeError::from(format!("unknown forwarding method {other}"))),
    })
}

/// `IP_VS_STATE_*`.
pub fn daemon_state_number(state: DaemonState) -> u32 {
    match state {
        DaemonState::Master => IP_VS_STATE_MASTER,
        DaemonState::Backup => IP_VS_STATE_BACKUP,
    }
}

/// The attributes of NEW_DAEMON: state, interface, sync ID and whichever options are set.
pub fn daemon_attributes(daemon: &SyncDaemon) -> Vec<DaemonAttribute> {
    let mut attributes = vec![
        DaemonAttribute::State(daemon_state_number(daemon.state)),
        DaemonAttribute::MulticastInterface(daemon.interface.clone()),
        DaemonAttribute::SyncId(daemon.sync_id),
    ];
    attributes.extend(daemon.max_length.map(DaemonAttribute::SyncMaxLength));
    attributes.extend(daemon.multicast_group.map(|group| match group {
        IpAddr::V4(group) => DaemonAttribute::MulticastGroup(group),
        IpAddr::V6(group) => DaemonAttribute::MulticastGroup6(group),
    }));
    attributes.extend(daemon.multicast_port.map(DaemonAttribute::MulticastPort));
    attributes.extend(daemon.multicast_ttl.map(DaemonAttribute::MulticastTtl));
    attributes
}

/// A sync daemon the kernel describes (GET_DAEMON dumps).
pub fn daemon_from_attributes(attributes: &[DaemonAttribute]) -> Result<SyncDaemon, DecodeError> {
    let (mut state, mut interface, mut sync_id) = (None, None, None);
    let mut daemon = SyncDaemon {
        state: DaemonState::Master,
        interface: String::new(),
        sync_id: 0,
        max_length: None,
        multicast_group: None,
        multicast_port: None,
        multicast_ttl: None,
    };
    for attribute in attributes {
        match attribute {
            DaemonAttribute::State(value) => state = Some(*value),
            DaemonAttribute::MulticastInterface(value) => interface = Some(value.clone()),
            DaemonAttribute::SyncId(value) => sync_id = Some(*value),
            DaemonAttribute::SyncMaxLength(value) => daemon.max_length = Some(*value),
            DaemonAttribute::MulticastGroup(group) => daemon.multicast_group = Some(IpAddr::V4(*group)),
            DaemonAttribute::MulticastGroup6(group) => daemon.multicast_group = Some(IpAddr::V6(*group)),
            DaemonAttribute::MulticastPort(value) => daemon.multicast_port = Some(*value),
            DaemonAttribute::MulticastTtl(value) => daemon.multicast_ttl = Some(*value),
            DaemonAttribute::Other(_) => {}
        }
    }
    daemon.state = match state.ok_or_else(|| missing("a sync daemon", "IPVS_DAEMON_ATTR_STATE"))? {
        IP_VS_STATE_MASTER => DaemonState::Master,
        IP_VS_STATE_BACKUP => DaemonState::Backup,
        other => return Err(DecodeError::from(format!("unknown sync daemon state {other}"))),
    };
    daemon.interface = interface.ok_or_else(|| missing("a sync daemon", "IPVS_DAEMON_ATTR_MCAST_IFN"))?;
    daemon.sync_id = sync_id.ok_or_else(|| missing("a sync daemon", "IPVS_DAEMON_ATTR_SYNC_ID"))?;
    Ok(daemon)
}

/// The timeouts of a GET_CONFIG reply (a protocol the kernel was built without reads 0).
pub fn timeouts_from_attributes(attributes: &[IpvsAttribute]) -> Timeouts {
    let mut timeouts = Timeouts::default();
    for attribute in attributes {
        match *attribute {
            IpvsAttribute::TimeoutTcp(value) => timeouts.tcp = value,
            IpvsAttribute::TimeoutTcpFin(value) => timeouts.tcp_fin = value,
            IpvsAttribute::TimeoutUdp(value) => timeouts.udp = value,
            _ => {}
        }
    }
    timeouts
}

/// The attributes of SET_CONFIG.
pub fn timeouts_attributes(timeouts: &Timeouts) -> Vec<IpvsAttribute> {
    vec![
        IpvsAttribute::TimeoutTcp(timeouts.tcp),
        IpvsAttribute::TimeoutTcpFin(timeouts.tcp_fin),
        IpvsAttribute::TimeoutUdp(timeouts.udp),
    ]
}

/// The facts of a GET_INFO reply.
pub fn info_from_attributes(attributes: &[IpvsAttribute]) -> Result<IpvsInfo, DecodeError> {
    let (mut version, mut size) = (None, None);
    for attribute in attributes {
        match *attribute {
            IpvsAttribute::Version(value) => version = Some(value),
            IpvsAttribute::ConnectionTableSize(value) => size = Some(value),
            _ => {}
        }
    }
    Ok(IpvsInfo {
        version_code: version.ok_or_else(|| missing("the IPVS info", "IPVS_INFO_ATTR_VERSION"))?,
        connection_table_size: size
            .ok_or_else(|| missing("the IPVS info", "IPVS_INFO_ATTR_CONN_TAB_SIZE"))?,
    })
}
