//! What the kernel reports beyond the shared model: services and destinations with their
//! counters, sync daemons, timeouts, and the IPVS version.

use std::net::IpAddr;

use crate::model::{Destination, Service, ServiceKey, Stats, SyncDaemonSpec, SyncRole};

/// A service as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedService {
    /// Its configuration.
    pub service: Service,
    /// Its counters.
    pub stats: Stats,
}

/// The IPVS services as the kernel lists them: those read, and those that could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceListing {
    /// The services read.
    pub services: Vec<ObservedService>,
    /// Entries that could not be read — another program's, with values lvs-operator has no
    /// model for (`ipvsadm -p -M 255.0.255.0`: a persistence netmask that is not a prefix) —
    /// skipped, so the rest of the table is still read.
    pub unreadable: Vec<UnreadableService>,
}

/// An entry of the IPVS service table that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnreadableService {
    /// Its key, when at least that could be read.
    pub key: Option<ServiceKey>,
    /// Why it could not be read.
    pub reason: String,
}

impl std::fmt::Display for UnreadableService {
    /// `service TCP 10.0.0.1:80: the IPv4 persistence netmask 255.0.255.0 is not a prefix`.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(formatter, "service {key}: {}", self.reason),
            None => write!(formatter, "a service: {}", self.reason),
        }
    }
}

/// A destination as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedDestination {
    /// Its configuration.
    pub destination: Destination,
    /// Established connections.
    pub active_connections: u32,
    /// Connections in other states.
    pub inactive_connections: u32,
    /// Persistence templates pointing at it.
    pub persistent_connections: u32,
    /// Its counters.
    pub stats: Stats,
}

/// Role of a connection-synchronisation daemon: the model's [`SyncRole`] (`IP_VS_STATE_MASTER`
/// or `IP_VS_STATE_BACKUP` on the wire).
pub use crate::model::SyncRole as DaemonState;

/// A connection-synchronisation daemon (`ipvsadm --start-daemon`).
///
/// The optional fields are left to the kernel's defaults when `None` (maximum length from the
/// interface MTU, group 224.0.0.81, port 8848, TTL 1); the kernel reports the values it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Interface to send or listen on (at most 15 bytes).
    pub interface: String,
    /// Sync ID shared by master and backups (0..=255).
    pub sync_id: u32,
    /// Largest sync message payload, bytes.
    pub max_length: Option<u16>,
    /// Multicast group (IPv4 or IPv6).
    pub multicast_group: Option<IpAddr>,
    /// UDP port.
    pub multicast_port: Option<u16>,
    /// Multicast TTL.
    pub multicast_ttl: Option<u8>,
}

impl SyncDaemon {
    /// A daemon in `role` as lvs-operator runs it: interface and sync ID from `spec`, the
    /// kernel's defaults for the rest.
    pub fn for_role(role: SyncRole, spec: &SyncDaemonSpec) -> Self {
        Self {
            state: role,
            interface: spec.interface.clone(),
            sync_id: u32::from(spec.sync_id),
            max_length: None,
            multicast_group: None,
            multicast_port: None,
            multicast_ttl: None,
        }
    }

    /// Its role, interface and sync ID (`None` when the sync ID does not fit the byte the sync
    /// protocol carries).
    pub fn role_and_spec(&self) -> Option<(SyncRole, SyncDaemonSpec)> {
        let spec = SyncDaemonSpec {
            interface: self.interface.clone(),
            sync_id: u8::try_from(self.sync_id).ok()?,
        };
        Some((self.state, spec))
    }
}

/// Connection timeouts, in seconds (`ipvsadm --set tcp tcpfin udp`). In
/// [`set_timeouts`](super::IpvsHandle::set_timeouts), 0 leaves a value unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// Established TCP connections.
    pub tcp: u32,
    /// TCP connections after a FIN.
    pub tcp_fin: u32,
    /// UDP "connections".
    pub udp: u32,
}

/// General facts about the kernel's IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpvsInfo {
    /// `IP_VS_VERSION_CODE`, e.g. `0x010201`.
    pub version_code: u32,
    /// Buckets of the connection hash table.
    pub connection_table_size: u32,
}

impl IpvsInfo {
    /// The version as ipvsadm prints it, e.g. `1.2.1`.
    pub fn version(&self) -> String {
        let code = self.version_code;
        format!("{}.{}.{}", (code >> 16) & 0xff, (code >> 8) & 0xff, code & 0xff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_daemons_convert_both_ways_with_the_kernel_defaults() {
        let spec = SyncDaemonSpec {
            interface: "eth0".into(),
            sync_id: 7,
        };
        let daemon = SyncDaemon::for_role(SyncRole::Backup, &spec);
        assert_eq!(daemon.state, DaemonState::Backup);
        assert_eq!(daemon.sync_id, 7);
        assert_eq!(daemon.multicast_group, None, "the kernel's default group");
        assert_eq!(daemon.role_and_spec(), Some((SyncRole::Backup, spec.clone())));
        let master = SyncDaemon {
            multicast_port: Some(8848),
            ..SyncDaemon::for_role(SyncRole::Master, &spec)
        };
        assert_eq!(master.role_and_spec(), Some((SyncRole::Master, spec)));
        let wide = SyncDaemon {
            sync_id: 256,
            ..master
        };
        assert_eq!(wide.role_and_spec(), None);
    }
}
