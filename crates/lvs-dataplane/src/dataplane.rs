//! The narrow interface the agent programs the node through: observe what we own, apply ops,
//! and the quick reads a director's failover decisions need.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Link, NodeState, ServiceKey, ServiceState, Stats, SyncRole, VipAddress, VipState};
use crate::ops::Op;
use crate::ownership::RegistryError;

/// What the dataplane was doing when something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Creating an object (a service, destination, address, device, table) or starting a
    /// sync daemon.
    Create,
    /// Changing an object in place (a service, a destination, a sysctl's value).
    Update,
    /// Deleting an object or stopping a sync daemon.
    Delete,
    /// Reading or listing.
    Read,
    /// Setting a device up.
    SetUp,
    /// Sending gratuitous ARP / unsolicited neighbour advertisements for a VIP.
    Announce,
    /// Probing whether another host answers for a VIP.
    Probe,
    /// Opening a socket or connection.
    Open,
    /// Running a helper program (`nft`, `ip`).
    Run,
}

impl fmt::Display for Operation {
    /// The verb that opens an error message: `creating`, `deleting`, …
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Create => "creating",
            Self::Update => "changing",
            Self::Delete => "deleting",
            Self::Read => "reading",
            Self::SetUp => "setting up",
            Self::Announce => "announcing",
            Self::Probe => "probing for other holders of",
            Self::Open => "opening",
            Self::Run => "running",
        })
    }
}

/// What an operation was about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// An IPVS service.
    Service(ServiceKey),
    /// A destination of an IPVS service.
    Destination {
        /// The service.
        service: ServiceKey,
        /// The real server's address.
        address: IpAddr,
        /// The real server's port.
        port: u16,
    },
    /// A VIP address on a device.
    Address(VipAddress),
    /// A VIP on the uplink it is announced or probed on (`None`: not known yet, or every
    /// interface whose network contains it).
    Vip {
        /// The VIP.
        address: IpAddr,
        /// The uplink.
        interface: Option<String>,
    },
    /// A network device (`lvs0`, `tunl0`, an uplink).
    Device(String),
    /// A GUE receive port.
    GuePort(u16),
    /// A kernel parameter, by its path below `/proc/sys` (`net/ipv4/vs/conntrack`).
    Sysctl(String),
    /// One of our nftables tables (`inet lvs-operator`, or the name alone for all of them).
    NftTable(String),
    /// An IPVS connection-sync daemon.
    SyncDaemon(SyncRole),
    /// Anything else, named as a person would (`an rtnetlink socket`, `/proc/net/ip_vs_conn`,
    /// `nft`, `the IPVS services`).
    Other(String),
}

impl Object {
    /// The object a dataplane op is about.
    pub fn of(op: &Op) -> Self {
        match op {
            Op::AddService(service) | Op::UpdateService(service) => Self::Service(service.key),
            Op::DeleteService(key) => Self::Service(*key),
            Op::AddDestination(service, destination) | Op::UpdateDestination(service, destination) => {
                Self::Destination {
                    service: *service,
                    address: destination.address,
                    port: destination.port,
                }
            }
            Op::DeleteDestination(service, address, port) => Self::Destination {
                service: *service,
                address: *address,
                port: *port,
            },
            Op::AddAddress(address) | Op::DeleteAddress(address) => Self::Address(address.clone()),
            Op::Announce { address, interface } => Self::Vip {
                address: *address,
                interface: interface.clone(),
            },
            Op::AddLink(link) | Op::DeleteLink(link) => Self::link(link),
            Op::SetSysctl(sysctl) => Self::Sysctl(sysctl.name.clone()),
            Op::RestoreSysctl(name) => Self::Sysctl(name.clone()),
            Op::ReplaceNftables(_) | Op::DeleteNftables => {
                Self::NftTable(crate::linux::nft::TABLE.to_owned())
            }
            Op::StartSyncDaemon(role, _) | Op::StopSyncDaemon(role) => Self::SyncDaemon(*role),
        }
    }

    /// The object a device (or GUE port) is.
    pub fn link(link: &Link) -> Self {
        match link {
            Link::Dummy { name } | Link::TunnelFallback { name, .. } => Self::Device(name.clone()),
            Link::GueReceivePort { port, .. } => Self::GuePort(*port),
        }
    }
}

impl Operation {
    /// What a dataplane op does.
    pub fn of(op: &Op) -> Self {
        match op {
            Op::AddLink(_)
            | Op::AddService(_)
            | Op::AddDestination(..)
            | Op::AddAddress(_)
            | Op::StartSyncDaemon(..) => Self::Create,
            Op::SetSysctl(_)
            | Op::RestoreSysctl(_)
            | Op::ReplaceNftables(_)
            | Op::UpdateService(_)
            | Op::UpdateDestination(..) => Self::Update,
            Op::DeleteLink(_)
            | Op::DeleteNftables
            | Op::DeleteService(_)
            | Op::DeleteDestination(..)
            | Op::DeleteAddress(_)
            | Op::StopSyncDaemon(_) => Self::Delete,
            Op::Announce { .. } => Self::Announce,
        }
    }
}

impl fmt::Display for Object {
    /// `service TCP 10.0.0.1:80`, `destination 10.0.0.11:80 of TCP 10.0.0.1:80`,
    /// `address 10.0.0.1 on lvs0`, `sysctl net.ipv4.vs.conntrack`, …
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(key) => write!(formatter, "service {key}"),
            Self::Destination {
                service,
                address,
                port,
            } => write!(
                formatter,
                "destination {} of {service}",
                SocketAddr::new(*address, *port)
            ),
            Self::Address(vip) => write!(formatter, "address {} on {}", vip.address, vip.device),
            Self::Vip {
                address,
                interface: Some(interface),
            } => write!(formatter, "{address} on {interface}"),
            Self::Vip {
                address,
                interface: None,
            } => write!(formatter, "{address}"),
            Self::Device(name) => write!(formatter, "device {name}"),
            Self::GuePort(port) => write!(formatter, "GUE port {port}"),
            Self::Sysctl(path) => write!(formatter, "sysctl {}", path.replace('/', ".")),
            Self::NftTable(table) => write!(formatter, "nftables table {table}"),
            Self::SyncDaemon(role) => write!(formatter, "IPVS sync daemon {role}"),
            Self::Other(name) => formatter.write_str(name),
        }
    }
}

/// `EEXIST`.
pub const EEXIST: i32 = 17;

/// A failed dataplane operation: what was being done, to which object, and why — with the
/// kernel's errno when the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataplaneError {
    /// The object exists already (EEXIST; creates treat this as success when it is ours).
    #[error("{operation} {object}: already exists")]
    Exists {
        /// What was being done.
        operation: Operation,
        /// The object.
        object: Object,
    },
    /// The object does not exist (deletes treat this as success).
    #[error("{operation} {object}: not found")]
    NotFound {
        /// What was being done.
        operation: Operation,
        /// The object.
        object: Object,
        /// The kernel's answer (ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL), when it gave one.
        errno: Option<i32>,
    },
    /// The kernel lacks the service's scheduler module (it answers ENOENT).
    #[error(
        "{operation} {object}: scheduler {scheduler} not available in this kernel (module ip_vs_{scheduler})"
    )]
    SchedulerUnavailable {
        /// What was being done.
        operation: Operation,
        /// The service.
        object: Object,
        /// The scheduler.
        scheduler: String,
    },
    /// The kernel refused the request with an errno.
    #[error("{operation} {object}: refused by the kernel: {}", std::io::Error::from_raw_os_error(*errno))]
    Refused {
        /// What was being done.
        operation: Operation,
        /// The object.
        object: Object,
        /// The (positive) errno.
        errno: i32,
    },
    /// Anything else that went wrong (a system call, a helper program, a reply we could not
    /// read, a value that did not stick), with its reason and the errno if there was one.
    #[error("{operation} {object}: {reason}")]
    Failed {
        /// What was being done.
        operation: Operation,
        /// The object.
        object: Object,
        /// Why, as the kernel, the tool or the check put it.
        reason: String,
        /// The OS error behind it, if any.
        errno: Option<i32>,
    },
    /// The object exists but lvs-operator did not create it: it is left alone.
    #[error("{object}: exists and was not created by lvs-operator; left alone")]
    NotOurs {
        /// The object.
        object: Object,
    },
    /// An IPVS service with this exact key exists that lvs-operator did not create (kube-proxy's,
    /// keepalived's, made by hand): ours is not created, and that service, its destinations and
    /// its address are left alone.
    #[error("an IPVS service {service} exists that lvs-operator did not create; left alone")]
    ForeignService {
        /// The service's key.
        service: ServiceKey,
    },
    /// The op was not tried because the service it belongs to could not be created.
    #[error("{object}: skipped: the service could not be created")]
    Skipped {
        /// The op's object.
        object: Object,
        /// The service that failed.
        service: ServiceKey,
    },
    /// The VIP was not added because none of the services on it could be created (it would
    /// attract traffic nothing serves).
    #[error("{address}: not taken: none of the services on this VIP could be created")]
    NotTaken {
        /// The VIP.
        address: IpAddr,
    },
    /// The ownership record could not be kept.
    #[error("{message}")]
    Registry {
        /// The record's file.
        path: PathBuf,
        /// The OS error, when reading or writing failed (none when the file is corrupt).
        errno: Option<i32>,
        /// The record's error, in full.
        message: String,
    },
}

impl DataplaneError {
    /// The errno behind the failure, when the kernel or the OS gave one: EEXIST for
    /// [`DataplaneError::Exists`], ENOENT for a missing scheduler.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Exists { .. } => Some(EEXIST),
            Self::SchedulerUnavailable { .. } => Some(ENOENT),
            Self::Refused { errno, .. } => Some(*errno),
            Self::NotFound { errno, .. } | Self::Failed { errno, .. } | Self::Registry { errno, .. } => {
                *errno
            }
            Self::NotOurs { .. }
            | Self::ForeignService { .. }
            | Self::Skipped { .. }
            | Self::NotTaken { .. } => None,
        }
    }

    /// What was being done, for the errors of a kernel operation.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::Exists { operation, .. }
            | Self::NotFound { operation, .. }
            | Self::SchedulerUnavailable { operation, .. }
            | Self::Refused { operation, .. }
            | Self::Failed { operation, .. } => Some(*operation),
            Self::NotOurs { .. }
            | Self::ForeignService { .. }
            | Self::Skipped { .. }
            | Self::NotTaken { .. }
            | Self::Registry { .. } => None,
        }
    }

    /// The object concerned (none for the ownership record).
    pub fn object(&self) -> Option<Object> {
        match self {
            Self::Exists { object, .. }
            | Self::NotFound { object, .. }
            | Self::SchedulerUnavailable { object, .. }
            | Self::Refused { object, .. }
            | Self::Failed { object, .. }
            | Self::NotOurs { object }
            | Self::Skipped { object, .. } => Some(object.clone()),
            Self::ForeignService { service } => Some(Object::Service(*service)),
            Self::NotTaken { address } => Some(Object::Vip {
                address: *address,
                interface: None,
            }),
            Self::Registry { .. } => None,
        }
    }

    /// A failure with a reason; `errno` from `error` when it is an OS error.
    pub fn failed(operation: Operation, object: Object, error: &std::io::Error) -> Self {
        Self::Failed {
            operation,
            object,
            reason: error.to_string(),
            errno: error.raw_os_error(),
        }
    }

    /// A failure with a reason and no errno.
    pub fn reason(operation: Operation, object: Object, reason: impl Into<String>) -> Self {
        Self::Failed {
            operation,
            object,
            reason: reason.into(),
            errno: None,
        }
    }
}

/// `ENOENT`.
const ENOENT: i32 = 2;

impl From<RegistryError> for DataplaneError {
    fn from(error: RegistryError) -> Self {
        let (path, errno) = match &error {
            RegistryError::Io { path, source } => (path.clone(), source.raw_os_error()),
            RegistryError::Corrupt { path, .. } => (path.clone(), None),
        };
        Self::Registry {
            path,
            errno,
            message: error.to_string(),
        }
    }
}

/// One op that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFailure {
    /// The op.
    pub op: Op,
    /// Why.
    pub error: DataplaneError,
}

/// What an `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Ops that succeeded (including creates that found the object and deletes that did not).
    pub applied: usize,
    /// Ops that failed; later ops still ran unless they depended on a failed one.
    pub failures: Vec<OpFailure>,
}

impl ApplyReport {
    /// Whether every op succeeded.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Counters of one service and its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    /// The service.
    pub key: ServiceKey,
    /// Service totals.
    pub totals: Stats,
    /// Per destination: address, port, counters, active and inactive connections.
    pub destinations: Vec<(std::net::IpAddr, u16, Stats, u32, u32)>,
}

/// The node's kernel, as far as lvs-operator owns it.
pub trait Dataplane: Send + Sync + 'static {
    /// Reads the state we own (our services, VIPs, devices, changed sysctls, tables).
    fn observe(&self) -> impl Future<Output = Result<NodeState, DataplaneError>> + Send;
    /// Applies `ops` in order; idempotent (EEXIST on create and ENOENT on delete are success).
    fn apply(&self, ops: Vec<Op>) -> impl Future<Output = ApplyReport> + Send;
    /// Reads only our IPVS services with their destinations — what a change of real-server
    /// health can affect — skipping devices, sysctls and nftables.
    fn observe_services(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError>> + Send;
    /// Reads only our VIP addresses and our sync daemons — what a failover changes — skipping
    /// the IPVS dump, sysctls and nftables.
    fn observe_vips(&self) -> impl Future<Output = Result<VipState, DataplaneError>> + Send;
    /// Counters of our services.
    fn stats(&self) -> impl Future<Output = Result<Vec<ServiceStats>, DataplaneError>> + Send;
    /// IPVS connection entries per virtual address (on a standby: the connections its backup
    /// sync daemon received). Empty when IPVS is not loaded.
    fn connection_counts(&self)
    -> impl Future<Output = Result<BTreeMap<IpAddr, u64>, DataplaneError>> + Send;
    /// For each address, the interfaces whose network contains it (never `lo` or our dummy
    /// device), in one read: where a VIP without a named uplink is announced and, for IPv6,
    /// held (see lvs-agent's `desired::vip_devices`). None: an empty list.
    fn uplinks_of(
        &self,
        addresses: &BTreeSet<IpAddr>,
    ) -> impl Future<Output = Result<BTreeMap<IpAddr, Vec<String>>, DataplaneError>> + Send;
    /// Whether the uplink a VIP is announced on (`None`: any of the interfaces whose network
    /// contains `address`) exists, is set up and has carrier (operational state up, or unknown
    /// as for dummy devices). False when no such interface exists.
    fn uplink_up(
        &self,
        address: IpAddr,
        interface: Option<&str>,
    ) -> impl Future<Output = Result<bool, DataplaneError>> + Send;
    /// Who else answers for a VIP (split-brain detection): the MAC addresses of other hosts that
    /// answer, within `wait`, a duplicate-address probe for `address` on the uplink (`None`: the
    /// interfaces whose network contains it) — never a MAC of this host's own interfaces, at most
    /// eight. The probe changes no neighbour cache.
    fn vip_claimants(
        &self,
        address: IpAddr,
        interface: Option<&str>,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<[u8; 6]>, DataplaneError>> + Send;
    /// Kernel writes issued so far (IPVS, address, device, sysctl and nftables changes).
    fn write_count(&self) -> u64;
    /// Change notifications: a counter bumped (once per burst, after `changes::DEBOUNCE`) when
    /// someone else may have changed kernel state we own and the kernel tells — our devices,
    /// the VIP addresses we hold, our nftables tables. A bump means "run a repair pass": it is a
    /// hint, not a diff, and a pass after one that finds nothing to do is normal (our own
    /// writes are filtered out as far as the kernel lets us tell them). IPVS and sysctls have
    /// no notifications: read them (`observe_services`) to find their drift. Each call returns
    /// a new receiver that has seen the current count.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}
