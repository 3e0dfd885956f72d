//! Validation: user specs → strong types. Every rule the CRD's CEL rules enforce at apply time is
//! enforced here too (standalone mode has no API server), plus what CEL cannot judge. All
//! problems of an object are collected, each naming its field path.

mod bounds;
mod dual_stack;
pub(crate) mod fields;
mod health_check;
mod real_server;
mod virtual_server;

use std::net::IpAddr;
use std::num::{NonZeroU16, NonZeroU32};

use kube::core::Selector;
use lvs_api::{
    AddressFamily, ArpMethod, DirectorsSpec, FailureAction, ForwardingMethod, HealthCheckSpec, Protocol,
    RealServerState, ResolvedPersistence, Scheduler, SchedulerFlag, ThresholdsSpec, TunnelSpec, VipDevice,
};

pub use dual_stack::{DualStack, FamilyPart};
pub use real_server::real_server;
pub use virtual_server::virtual_server;

use crate::object::ObjectKey;

/// What identifies an IPVS service in the kernel — two VirtualServers with equal identities
/// conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceIdentity {
    /// Address, port and protocol.
    Address {
        /// The VIP.
        address: IpAddr,
        /// The port.
        port: NonZeroU16,
        /// The protocol.
        protocol: Protocol,
    },
    /// Firewall mark within an address family.
    Fwmark {
        /// Address family.
        family: AddressFamily,
        /// The mark.
        mark: NonZeroU32,
    },
}

impl std::fmt::Display for ServiceIdentity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address {
                address: IpAddr::V6(address),
                port,
                protocol,
            } => {
                write!(formatter, "[{address}]:{port}/{}", protocol.as_str())
            }
            Self::Address {
                address,
                port,
                protocol,
            } => write!(formatter, "{address}:{port}/{}", protocol.as_str()),
            Self::Fwmark { family, mark } => write!(formatter, "fwmark {mark} ({family:?})"),
        }
    }
}

/// What kind of IPVS service a VirtualServer is, before its VIP is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Address, port and protocol.
    Port(NonZeroU16),
    /// A firewall mark.
    Fwmark(NonZeroU32),
}

/// A VirtualServer whose spec passed validation. Until admission into an address pool,
/// `address` is the requested VIP (absent: the controller picks one) and `pool` is unset.
#[derive(Debug, Clone)]
pub struct ValidVirtualServer {
    /// Its key.
    pub key: ObjectKey,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// metadata.creationTimestamp, for "the older one wins".
    pub created: Option<k8s_openapi::jiff::Timestamp>,
    /// Port or fwmark service.
    pub service: ServiceKind,
    /// The VIP (for fwmark services, only when the directors mark traffic themselves).
    pub address: Option<IpAddr>,
    /// The pool asked for in `spec.addressPool`.
    pub requested_pool: Option<String>,
    /// The VIP and pool recorded in `status` by an earlier pass (Kubernetes mode).
    pub recorded: Option<(IpAddr, String)>,
    /// The pool the VIP was admitted from; set by admission.
    pub pool: Option<std::sync::Arc<crate::pool::ValidPool>>,
    /// For a fwmark service with an address: the packet-mark bits the directors' marking rule
    /// writes; set by admission.
    pub mark_mask: Option<u32>,
    /// Address family.
    pub family: AddressFamily,
    /// Protocol.
    pub protocol: Protocol,
    /// For fwmark services with an address: the ports to mark (empty: all).
    pub fwmark_ports: Vec<NonZeroU16>,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Scheduler flags, sorted and unique.
    pub scheduler_flags: Vec<SchedulerFlag>,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Forwarding method.
    pub method: ForwardingMethod,
    /// Tunnel settings (Tunnel only; defaulted).
    pub tunnel: Option<TunnelSpec>,
    /// Persistence.
    pub persistence: Option<ResolvedPersistence>,
    /// Directors.
    pub directors: DirectorsSpec,
    /// Real-server selector.
    pub real_server_selector: Selector,
    /// Default real-server port.
    pub real_server_port: Option<NonZeroU16>,
    /// Real-server ARP method.
    pub arp_method: ArpMethod,
    /// Real-server VIP device.
    pub vip_device: VipDevice,
    /// Default thresholds.
    pub thresholds: ThresholdsSpec,
    /// Health check with defaults filled in.
    pub health_check: HealthCheckSpec,
    /// Failure action.
    pub on_failure: FailureAction,
    /// Fallback server.
    pub fallback: Option<(IpAddr, Option<NonZeroU16>)>,
    /// Single- or dual-stack; a dual-stack VirtualServer is built as one part per family
    /// ([`split`](Self::split)).
    pub dual_stack: DualStack,
}

impl ValidVirtualServer {
    /// The service port, if it has one.
    pub fn port(&self) -> Option<NonZeroU16> {
        match self.service {
            ServiceKind::Port(port) => Some(port),
            ServiceKind::Fwmark(_) => None,
        }
    }

    /// The firewall mark, if it is a fwmark service.
    pub fn fwmark(&self) -> Option<NonZeroU32> {
        match self.service {
            ServiceKind::Fwmark(mark) => Some(mark),
            ServiceKind::Port(_) => None,
        }
    }

    /// What identifies its IPVS service; `None` for a port service whose VIP is not known yet.
    pub fn identity(&self) -> Option<ServiceIdentity> {
        match self.service {
            ServiceKind::Port(port) => Some(ServiceIdentity::Address {
                address: self.address?,
                port,
                protocol: self.protocol,
            }),
            ServiceKind::Fwmark(mark) => Some(ServiceIdentity::Fwmark {
                family: self.family,
                mark,
            }),
        }
    }
}

/// A RealServer whose spec passed validation.
#[derive(Debug, Clone)]
pub struct ValidRealServer {
    /// Its key.
    pub key: ObjectKey,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Address.
    pub address: IpAddr,
    /// Port override.
    pub port: Option<NonZeroU16>,
    /// Weight.
    pub weight: u16,
    /// Node named in the spec.
    pub node: Option<String>,
    /// State.
    pub state: RealServerState,
    /// Thresholds override.
    pub thresholds: Option<ThresholdsSpec>,
}

/// The family of an address.
pub fn family_of(address: &IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::IPv4,
        IpAddr::V6(_) => AddressFamily::IPv6,
    }
}
