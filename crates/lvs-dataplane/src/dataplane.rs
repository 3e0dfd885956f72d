//! The narrow interface the agent programs the node through: observe what we own, apply ops,
//! and the quick reads a director's failover decisions need.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use crate::model::{NodeState, ServiceKey, ServiceState, Stats, VipState};
use crate::ops::Op;
use crate::ownership::RegistryError;

/// A failed kernel operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataplaneError {
    /// The object exists already (creates treat this as success).
    #[error("{what}: already exists")]
    Exists {
        /// The object.
        what: String,
    },
    /// The object does not exist (deletes treat this as success).
    #[error("{what}: not found")]
    NotFound {
        /// The object.
        what: String,
    },
    /// The kernel lacks the scheduler's module.
    #[error("{what}: scheduler {scheduler} not available in this kernel (module ip_vs_{scheduler})")]
    SchedulerUnavailable {
        /// The service.
        what: String,
        /// The scheduler.
        scheduler: String,
    },
    /// Any other refusal, with the kernel's or tool's message.
    #[error("{what}: {message}")]
    Kernel {
        /// The object and operation.
        what: String,
        /// Why.
        message: String,
    },
    /// The ownership record could not be kept.
    #[error("{0}")]
    Registry(String),
}

impl From<RegistryError> for DataplaneError {
    fn from(error: RegistryError) -> Self {
        Self::Registry(error.to_string())
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
    /// interfaces whose network contains it). The probe changes no neighbour cache.
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
