//! The IPVS generic netlink message: a command and its top-level attributes.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator, Parseable,
    ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use super::constants::{
    IPVS_CMD_ATTR_DAEMON, IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_TIMEOUT_TCP,
    IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, IPVS_CMD_ATTR_TIMEOUT_UDP, IPVS_CMD_DEL_DAEMON, IPVS_CMD_DEL_DEST,
    IPVS_CMD_DEL_SERVICE, IPVS_CMD_FLUSH, IPVS_CMD_GET_CONFIG, IPVS_CMD_GET_DAEMON, IPVS_CMD_GET_DEST,
    IPVS_CMD_GET_INFO, IPVS_CMD_GET_SERVICE, IPVS_CMD_NEW_DAEMON, IPVS_CMD_NEW_DEST, IPVS_CMD_NEW_SERVICE,
    IPVS_CMD_SET_CONFIG, IPVS_CMD_SET_DEST, IPVS_CMD_SET_INFO, IPVS_CMD_SET_SERVICE, IPVS_CMD_ZERO,
    IPVS_GENL_NAME, IPVS_GENL_VERSION, IPVS_INFO_ATTR_CONN_TAB_SIZE, IPVS_INFO_ATTR_VERSION,
};
use super::daemon::{DaemonAttribute, parse_daemon_nest};
use super::destination::{DestinationAttribute, parse_destination_nest};
use super::service::{ServiceAttribute, parse_service_nest};
use super::wire::parse_u32;

/// An IPVS command (`IPVS_CMD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvsCommand {
    /// Add a service; also the command of every service in a GET_SERVICE reply.
    NewService,
    /// Edit a service (scheduler, flags, persistence).
    SetService,
    /// Delete a service and its destinations.
    DeleteService,
    /// Read one service, or dump them all.
    GetService,
    /// Add a destination; also the command of every destination in a GET_DEST dump.
    NewDestination,
    /// Edit a destination (weight, forwarding, thresholds).
    SetDestination,
    /// Delete a destination.
    DeleteDestination,
    /// Dump the destinations of a service.
    GetDestination,
    /// Start a sync daemon; also the command of every daemon in a GET_DAEMON dump.
    NewDaemon,
    /// Stop a sync daemon.
    DeleteDaemon,
    /// Dump the running sync daemons.
    GetDaemon,
    /// Set the TCP, TCP FIN and UDP timeouts; also the command of GET_CONFIG replies.
    SetConfig,
    /// Read the timeouts.
    GetConfig,
    /// The command of GET_INFO replies.
    SetInfo,
    /// Read the IPVS version and connection table size.
    GetInfo,
    /// Zero the counters of one service, or of all.
    Zero,
    /// Delete **every** service. Defined for completeness and never sent by lvs-operator: we
    /// must not touch services we do not own (kube-proxy's, keepalived's).
    Flush,
    /// A command this code does not know.
    Other(u8),
}

impl From<IpvsCommand> for u8 {
    fn from(command: IpvsCommand) -> u8 {
        match command {
            IpvsCommand::NewService => IPVS_CMD_NEW_SERVICE,
            IpvsCommand::SetService => IPVS_CMD_SET_SERVICE,
            IpvsCommand::DeleteService => IPVS_CMD_DEL_SERVICE,
            IpvsCommand::GetService => IPVS_CMD_GET_SERVICE,
            IpvsCommand::NewDestination => IPVS_CMD_NEW_DEST,
            IpvsCommand::SetDestination => IPVS_CMD_SET_DEST,
            IpvsCommand::DeleteDestination => IPVS_CMD_DEL_DEST,
            IpvsCommand::GetDestination => IPVS_CMD_GET_DEST,
            IpvsCommand::NewDaemon => IPVS_CMD_NEW_DAEMON,
            IpvsCommand::DeleteDaemon => IPVS_CMD_DEL_DAEMON,
            IpvsCommand::GetDaemon => IPVS_CMD_GET_DAEMON,
            IpvsCommand::SetConfig => IPVS_CMD_SET_CONFIG,
            IpvsCommand::GetConfig => IPVS_CMD_GET_CONFIG,
            IpvsCommand::SetInfo => IPVS_CMD_SET_INFO,
            IpvsCommand::GetInfo => IPVS_CMD_GET_INFO,
            IpvsCommand::Zero => IPVS_CMD_ZERO,
            IpvsCommand::Flush => IPVS_CMD_FLUSH,
            IpvsCommand::Other(command) => command,
        }
    }
}

impl From<u8> for IpvsCommand {
    fn from(command: u8) -> Self {
        match command {
            IPVS_CMD_NEW_SERVICE => Self::NewService,
            IPVS_CMD_SET_SERVICE => Self::SetService,
            IPVS_CMD_DEL_SERVICE => Self::DeleteService,
            IPVS_CMD_GET_SERVICE => Self::GetService,
            IPVS_CMD_NEW_DEST => Self::NewDestination,
            IPVS_CMD_SET_DEST => Self::SetDestination,
            IPVS_CMD_DEL_DEST => Self::DeleteDestination,
            IPVS_CMD_GET_DEST => Self::GetDestination,
            IPVS_CMD_NEW_DAEMON => Self::NewDaemon,
            IPVS_CMD_DEL_DAEMON => Self::DeleteDaemon,
            IPVS_CMD_GET_DAEMON => Self::GetDaemon,
            IPVS_CMD_SET_CONFIG => Self::SetConfig,
            IPVS_CMD_GET_CONFIG => Self::GetConfig,
            IPVS_CMD_SET_INFO => Self::SetInfo,
            IPVS_CMD_GET_INFO => Self::GetInfo,
            IPVS_CMD_ZERO => Self::Zero,
            IPVS_CMD_FLUSH => Self::Flush,
            other => Self::Other(other),
        }
    }
}

impl IpvsCommand {
    /// Whether the command changes kernel configuration (what [`write_count`] counts).
    ///
    /// [`write_count`]: super::IpvsHandle::write_count
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::NewService
                | Self::SetService
                | Self::DeleteService
                | Self::NewDestination
                | Self::SetDestination
                | Self::DeleteDestination
                | Self::NewDaemon
                | Self::DeleteDaemon
                | Self::SetConfig
        )
    }

    /// GET_INFO and its reply number their top-level attributes differently.
    fn carries_info(self) -> bool {
        matches!(self, Self::GetInfo | Self::SetInfo)
    }
}

/// A top-level attribute (`IPVS_CMD_ATTR_*`, or `IPVS_INFO_ATTR_*` in GET_INFO messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsAttribute {
    /// The service (its key, or all of it).
    Service(Vec<ServiceAttribute>),
    /// The destination; every destination command carries the service too.
    Destination(Vec<DestinationAttribute>),
    /// A sync daemon.
    Daemon(Vec<DaemonAttribute>),
    /// TCP established timeout, seconds (0 in SET_CONFIG: unchanged).
    TimeoutTcp(u32),
    /// TCP FIN-WAIT timeout, seconds.
    TimeoutTcpFin(u32),
    /// UDP timeout, seconds.
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION`: `0x010201` is 1.2.1.
    Version(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE`: buckets of the connection hash table.
    ConnectionTableSize(u32),
    /// An attribute this code does not know.
    Other(DefaultNla),
}

impl Nla for IpvsAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(attributes) => attributes.as_slice().buffer_len(),
            Self::Destination(attributes) => attributes.as_slice().buffer_len(),
            Self::Daemon(attributes) => attributes.as_slice().buffer_len(),
            Self::TimeoutTcp(_)
            | Self::TimeoutTcpFin(_)
            | Self::TimeoutUdp(_)
            | Self::Version(_)
            | Self::ConnectionTableSize(_) => size_of::<u32>(),
            Self::Other(attribute) => attribute.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Service(_) => IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED,
            Self::Destination(_) => IPVS_CMD_ATTR_DEST | NLA_F_NESTED,
            Self::Daemon(_) => IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED,
            Self::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            Self::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            Self::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            Self::Version(_) => IPVS_INFO_ATTR_VERSION,
            Self::ConnectionTableSize(_) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(attribute) => attribute.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Service(attributes) => attributes.as_slice().emit(buffer),
            Self::Destination(attributes) => attributes.as_slice().emit(buffer),
            Self::Daemon(attributes) => attributes.as_slice().emit(buffer),
            Self::TimeoutTcp(value)
            | Self::TimeoutTcpFin(value)
            | Self::TimeoutUdp(value)
            | Self::Version(value)
            | Self::ConnectionTableSize(value) => buffer[..4].copy_from_slice(&value.to_ne_bytes()),
            Self::Other(attribute) => attribute.emit_value(buffer),
        }
    }
}

impl<'buffer, T: AsRef<[u8]> + ?Sized> ParseableParametrized<NlaBuffer<&'buffer T>, IpvsCommand>
    for IpvsAttribute
{
    /// Parses one top-level attribute of a message with `command`.
    fn parse_with_param(buffer: &NlaBuffer<&'buffer T>, command: IpvsCommand) -> Result<Self, DecodeError> {
        let value = buffer.value();
        Ok(match (command.carries_info(), buffer.kind()) {
            (true, IPVS_INFO_ATTR_VERSION) => Self::Version(parse_u32(value, "IPVS_INFO_ATTR_VERSION")?),
            (true, IPVS_INFO_ATTR_CONN_TAB_SIZE) => {
                Self::ConnectionTableSize(parse_u32(value, "IPVS_INFO_ATTR_CONN_TAB_SIZE")?)
            }
            (true, _) => Self::Other(DefaultNla::parse(buffer)?),
            (false, IPVS_CMD_ATTR_SERVICE) => Self::Service(parse_service_nest(value)?),
            (false, IPVS_CMD_ATTR_DEST) => Self::Destination(parse_destination_nest(value)?),
            (false, IPVS_CMD_ATTR_DAEMON) => Self::Daemon(parse_daemon_nest(value)?),
            (false, IPVS_CMD_ATTR_TIMEOUT_TCP) => {
                Self::TimeoutTcp(parse_u32(value, "IPVS_CMD_ATTR_TIMEOUT_TCP")?)
            }
            (false, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN) => {
                Self::TimeoutTcpFin(parse_u32(value, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?)
            }
            (false, IPVS_CMD_ATTR_TIMEOUT_UDP) => {
                Self::TimeoutUdp(parse_u32(value, "IPVS_CMD_ATTR_TIMEOUT_UDP")?)
            }
            (false, _) => Self::Other(DefaultNla::parse(buffer)?),
        })
    }
}

/// The payload of an IPVS generic netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    /// What to do (or, in a reply, what the message describes).
    pub cmd: IpvsCommand,
    /// Top-level attributes.
    pub attributes: Vec<IpvsAttribute>,
}

impl IpvsMessage {
    /// A message with `attributes`.
    pub fn new(cmd: IpvsCommand, attributes: Vec<IpvsAttribute>) -> Self {
        Self { cmd, attributes }
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attributes.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attributes.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buffer: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCommand::from(header.cmd);
        let attributes = NlasIterator::new(buffer)
            .map(|attribute| attribute.and_then(|attribute| IpvsAttribute::parse_with_param(&attribute, cmd)))
            .collect::<Result<Vec<_>, _>>()
            .context("failed to parse IPVS message attributes")?;
        Ok(Self { cmd, attributes })
    }
}
