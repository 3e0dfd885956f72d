//! Pure request builders: every message lvs-operator sends, and the words naming it in errors.

use std::fmt;
use std::net::IpAddr;

use super::convert::{
    daemon_attributes, daemon_state_number, destination_attributes, destination_key_attributes,
    service_attributes, service_key_attributes, timeouts_attributes,
};
use super::daemon::DaemonAttribute;
use super::message::{IpvsAttribute, IpvsCommand, IpvsMessage};
use super::types::{DaemonState, SyncDaemon, Timeouts};
use crate::model::{Destination, Service, ServiceKey};

/// A change to services or destinations: what [`IpvsHandle::apply_all`] takes.
///
/// [`IpvsHandle::apply_all`]: super::IpvsHandle::apply_all
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsRequest {
    /// `ipvsadm -A`.
    NewService(Service),
    /// `ipvsadm -E`.
    SetService(Service),
    /// `ipvsadm -D`.
    DeleteService(ServiceKey),
    /// `ipvsadm -a`.
    NewDestination {
        /// The service it joins.
        service: ServiceKey,
        /// The destination.
        destination: Destination,
    },
    /// `ipvsadm -e`.
    SetDestination {
        /// Its service.
        service: ServiceKey,
        /// The destination, identified by address and port.
        destination: Destination,
    },
    /// `ipvsadm -d`.
    DeleteDestination {
        /// Its service.
        service: ServiceKey,
        /// The destination's address.
        address: IpAddr,
        /// The destination's port.
        port: u16,
    },
}

impl IpvsRequest {
    /// The message to send.
    pub fn message(&self) -> IpvsMessage {
        match self {
            Self::NewService(service) => service_message(IpvsCommand::NewService, service),
            Self::SetService(service) => service_message(IpvsCommand::SetService, service),
            Self::DeleteService(key) => IpvsMessage::new(
                IpvsCommand::DeleteService,
                vec![IpvsAttribute::Service(service_key_attributes(key))],
            ),
            Self::NewDestination { service, destination } => IpvsMessage::new(
                IpvsCommand::NewDestination,
                vec![
                    IpvsAttribute::Service(service_key_attributes(service)),
                    IpvsAttribute::Destination(destination_attributes(destination)),
                ],
            ),
            Self::SetDestination { service, destination } => IpvsMessage::new(
                IpvsCommand::SetDestination,
                vec![
                    IpvsAttribute::Service(service_key_attributes(service)),
                    IpvsAttribute::Destination(destination_attributes(destination)),
                ],
            ),
            Self::DeleteDestination {
                service,
                address,
                port,
            } => IpvsMessage::new(
                IpvsCommand::DeleteDestination,
                vec![
                    IpvsAttribute::Service(service_key_attributes(service)),
                    IpvsAttribute::Destination(destination_key_attributes(*address, *port)),
                ],
            ),
        }
    }

    /// The scheduler the request asks the kernel to load, if any.
    pub fn scheduler(&self) -> Option<&str> {
        match self {
            Self::NewService(service) | Self::SetService(service) => Some(&service.scheduler),
            _ => None,
        }
    }
}

impl fmt::Display for IpvsRequest {
    /// What the request does, e.g. `adding destination 10.1.0.2:80 to service TCP 10.0.0.1:80`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewService(service) => write!(formatter, "creating service {}", service.key),
            Self::SetService(service) => write!(formatter, "editing service {}", service.key),
            Self::DeleteService(key) => write!(formatter, "deleting service {key}"),
            Self::NewDestination { service, destination } => write!(
                formatter,
                "adding destination {} to service {service}",
                SocketAddress(destination.address, destination.port)
            ),
            Self::SetDestination { service, destination } => write!(
                formatter,
                "editing destination {} of service {service}",
                SocketAddress(destination.address, destination.port)
            ),
            Self::DeleteDestination {
                service,
                address,
                port,
            } => {
                write!(
                    formatter,
                    "deleting destination {} of service {service}",
                    SocketAddress(*address, *port)
                )
            }
        }
    }
}

/// `10.0.0.1:80`, `[2001:db8::1]:80`.
struct SocketAddress(IpAddr, u16);

impl fmt::Display for SocketAddress {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(address) => write!(formatter, "{address}:{}", self.1),
            IpAddr::V6(address) => write!(formatter, "[{address}]:{}", self.1),
        }
    }
}

fn service_message(command: IpvsCommand, service: &Service) -> IpvsMessage {
    IpvsMessage::new(command, vec![IpvsAttribute::Service(service_attributes(service))])
}

impl IpvsMessage {
    /// GET_SERVICE, dumped: every service.
    pub fn get_services() -> Self {
        Self::new(IpvsCommand::GetService, Vec::new())
    }

    /// GET_SERVICE of one service.
    pub fn get_service(key: &ServiceKey) -> Self {
        Self::new(
            IpvsCommand::GetService,
            vec![IpvsAttribute::Service(service_key_attributes(key))],
        )
    }

    /// GET_DEST, dumped: the destinations of a service (the service key is required).
    pub fn get_destinations(service: &ServiceKey) -> Self {
        Self::new(
            IpvsCommand::GetDestination,
            vec![IpvsAttribute::Service(service_key_attributes(service))],
        )
    }

    /// GET_INFO.
    pub fn get_info() -> Self {
        Self::new(IpvsCommand::GetInfo, Vec::new())
    }

    /// GET_CONFIG: the timeouts.
    pub fn get_config() -> Self {
        Self::new(IpvsCommand::GetConfig, Vec::new())
    }

    /// SET_CONFIG: the timeouts (0 leaves one unchanged).
    pub fn set_config(timeouts: &Timeouts) -> Self {
        Self::new(IpvsCommand::SetConfig, timeouts_attributes(timeouts))
    }

    /// GET_DAEMON, dumped: the running sync daemons.
    pub fn get_daemons() -> Self {
        Self::new(IpvsCommand::GetDaemon, Vec::new())
    }

    /// NEW_DAEMON: start a sync daemon.
    pub fn new_daemon(daemon: &SyncDaemon) -> Self {
        Self::new(
            IpvsCommand::NewDaemon,
            vec![IpvsAttribute::Daemon(daemon_attributes(daemon))],
        )
    }

    /// DEL_DAEMON: stop the sync daemon in `state`.
    pub fn delete_daemon(state: DaemonState) -> Self {
        Self::new(
            IpvsCommand::DeleteDaemon,
            vec![IpvsAttribute::Daemon(vec![DaemonAttribute::State(
                daemon_state_number(state),
            )])],
        )
    }

    /// ZERO: the counters of one service, or of every service when `service` is `None`.
    pub fn zero(service: Option<&ServiceKey>) -> Self {
        let attributes = service.map(|key| IpvsAttribute::Service(service_key_attributes(key)));
        Self::new(IpvsCommand::Zero, attributes.into_iter().collect())
    }
}
