//! The primitive kernel operations an implementation provides (netlink, procfs, nft — or the
//! in-memory fake). Ownership bookkeeping and ordering live above, in the executor.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use crate::changes::Watched;
use crate::dataplane::{DataplaneError, Object, Operation, ServiceStats};
use crate::model::{
    Destination, Link, NftRules, Service, ServiceKey, ServiceState, SyncDaemonSpec, SyncRole, VipAddress,
};
use crate::ops::Op;

/// Result of one primitive.
pub type KernelResult<T> = Result<T, DataplaneError>;

/// Primitive kernel operations. Creates return `DataplaneError::Exists` and deletes
/// `DataplaneError::NotFound` when the kernel says so; the executor decides what that means.
pub trait Kernel: Send + Sync + 'static {
    /// Every IPVS service with its destinations (ours or not).
    fn services(&self) -> impl Future<Output = KernelResult<Vec<ServiceState>>> + Send;
    /// Creates a service.
    fn add_service(&self, service: &Service) -> impl Future<Output = KernelResult<()>> + Send;
    /// Changes a service.
    fn update_service(&self, service: &Service) -> impl Future<Output = KernelResult<()>> + Send;
    /// Deletes a service.
    fn delete_service(&self, key: &ServiceKey) -> impl Future<Output = KernelResult<()>> + Send;
    /// Adds a destination.
    fn add_destination(
        &self,
        key: &ServiceKey,
        destination: &Destination,
    ) -> impl Future<Output = KernelResult<()>> + Send;
    /// Changes a destination.
    fn update_destination(
        &self,
        key: &ServiceKey,
        destination: &Destination,
    ) -> impl Future<Output = KernelResult<()>> + Send;
    /// Removes a destination.
    fn delete_destination(
        &self,
        key: &ServiceKey,
        address: IpAddr,
        port: u16,
    ) -> impl Future<Output = KernelResult<()>> + Send;
    /// Host-route addresses (/32, /128) on these devices.
    fn addresses(
        &self,
        devices: &BTreeSet<String>,
    ) -> impl Future<Output = KernelResult<Vec<VipAddress>>> + Send;
    /// Adds an address.
    fn add_address(&self, address: &VipAddress) -> impl Future<Output = KernelResult<()>> + Send;
    /// Removes an address.
    fn delete_address(&self, address: &VipAddress) -> impl Future<Output = KernelResult<()>> + Send;
    /// Whether a device (or GUE port) is present and set up.
    fn link_present(&self, link: &Link) -> impl Future<Output = KernelResult<bool>> + Send;
    /// Creates or sets up a device.
    fn add_link(&self, link: &Link) -> impl Future<Output = KernelResult<()>> + Send;
    /// Deletes a device.
    fn delete_link(&self, link: &Link) -> impl Future<Output = KernelResult<()>> + Send;
    /// Reads a sysctl.
    fn read_sysctl(&self, name: &str) -> impl Future<Output = KernelResult<String>> + Send;
    /// Writes a sysctl.
    fn write_sysctl(&self, name: &str, value: &str) -> impl Future<Output = KernelResult<()>> + Send;
    /// The entries of a sysctl directory, e.g. `all`, `default` and each interface under
    /// `net/ipv6/conf`.
    fn sysctl_children(&self, directory: &str) -> impl Future<Output = KernelResult<Vec<String>>> + Send;
    /// A fingerprint of our nftables tables as they are now (`None`: they do not exist).
    fn nftables_fingerprint(&self) -> impl Future<Output = KernelResult<Option<String>>> + Send;
    /// Replaces our tables atomically; returns the new fingerprint.
    fn replace_nftables(&self, rules: &NftRules) -> impl Future<Output = KernelResult<String>> + Send;
    /// Deletes our tables.
    fn delete_nftables(&self) -> impl Future<Output = KernelResult<()>> + Send;
    /// Sends gratuitous ARP / unsolicited NA for an address on an uplink (`None`: the interface
    /// whose network contains the address).
    fn announce(
        &self,
        address: IpAddr,
        interface: Option<&str>,
    ) -> impl Future<Output = KernelResult<()>> + Send;
    /// Every running IPVS connection-sync daemon (ours or not), by role.
    fn sync_daemons(&self) -> impl Future<Output = KernelResult<BTreeMap<SyncRole, SyncDaemonSpec>>> + Send;
    /// Starts a sync daemon (`Exists` when a daemon of that role already runs).
    fn start_sync_daemon(
        &self,
        role: SyncRole,
        spec: &SyncDaemonSpec,
    ) -> impl Future<Output = KernelResult<()>> + Send;
    /// Stops the sync daemon of a role (`NotFound` when none runs).
    fn stop_sync_daemon(&self, role: SyncRole) -> impl Future<Output = KernelResult<()>> + Send;
    /// IPVS connection entries (synced ones included) per virtual address; empty without IPVS.
    fn connection_counts(&self) -> impl Future<Output = KernelResult<BTreeMap<IpAddr, u64>>> + Send;
    /// For each address, the interfaces whose network contains it (not `lo`, not our dummy
    /// device): where a VIP is announced and answered by default; none: an empty list.
    fn uplinks_of(
        &self,
        addresses: &BTreeSet<IpAddr>,
    ) -> impl Future<Output = KernelResult<BTreeMap<IpAddr, Vec<String>>>> + Send;
    /// Whether the uplink (`None`: any of the interfaces whose network contains `address`)
    /// exists, is set up and has carrier; false when there is no such interface.
    fn uplink_up(
        &self,
        address: IpAddr,
        interface: Option<&str>,
    ) -> impl Future<Output = KernelResult<bool>> + Send;
    /// The MAC addresses of other hosts that answer, within `wait`, a duplicate-address probe
    /// for `address` sent on the uplink (`None`: the interfaces whose network contains it).
    fn vip_claimants(
        &self,
        address: IpAddr,
        interface: Option<&str>,
        wait: Duration,
    ) -> impl Future<Output = KernelResult<Vec<[u8; 6]>>> + Send;
    /// Counters of every IPVS service (ours or not).
    fn stats(&self) -> impl Future<Output = KernelResult<Vec<ServiceStats>>> + Send;
    /// Writes issued so far.
    fn write_count(&self) -> u64;
    /// A counter bumped when someone else may have changed what `watch` names or our nftables
    /// tables (see `Dataplane::changes`).
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Sets what change notifications cover: called with what the ownership record holds,
    /// whenever it changes.
    fn watch(&self, watched: Watched);

    /// Applies IPVS service and destination ops (only those) in order, pipelined where the
    /// implementation can; one result per op. The default runs them one by one.
    fn ipvs_batch(&self, ops: &[Op]) -> impl Future<Output = Vec<KernelResult<()>>> + Send {
        async move {
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                results.push(match op {
                    Op::AddService(service) => self.add_service(service).await,
                    Op::UpdateService(service) => self.update_service(service).await,
                    Op::DeleteService(key) => self.delete_service(key).await,
                    Op::AddDestination(key, destination) => self.add_destination(key, destination).await,
                    Op::UpdateDestination(key, destination) => {
                        self.update_destination(key, destination).await
                    }
                    Op::DeleteDestination(key, address, port) => {
                        self.delete_destination(key, *address, *port).await
                    }
                    other => Err(DataplaneError::reason(
                        Operation::of(other),
                        Object::of(other),
                        "not an IPVS operation",
                    )),
                });
            }
            results
        }
    }
}
