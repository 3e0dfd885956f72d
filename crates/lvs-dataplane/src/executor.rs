//! The ownership-aware `Dataplane` on top of any `Kernel`: observe filters the kernel down to
//! what we own; apply runs ops in order, records ownership before creating and forgets it after
//! deleting, treats EEXIST/ENOENT as success for what is ours, refuses to adopt a foreign
//! object, and skips ops that depend on a failed one.

mod batching;
pub mod router_advertisements;
mod sync_daemons;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use batching::{director_vip, has_live_service, runs, service_of, stages};

use crate::changes::Watched;
use crate::dataplane::{ApplyReport, Dataplane, DataplaneError, Object, OpFailure, ServiceStats};
use crate::kernel::Kernel;
use crate::model::{Link, NftRules, NodeState, ServiceKey, ServiceState, VipAddress, VipState};
use crate::ops::Op;
use crate::ownership::{Registry, RegistryStore};

/// The device whose addresses (and services on them) are ours by construction.
pub const DUMMY_DEVICE: &str = "lvs0";

/// `Dataplane` over a kernel implementation.
#[derive(Debug)]
pub struct Executor<K> {
    kernel: K,
    store: RegistryStore,
    registry: Mutex<Registry>,
    /// The record was corrupt and set aside at start: a sync daemon running exactly as asked is
    /// taken for ours (one per role per node; the record that said so is lost).
    recovered: bool,
}

impl<K: Kernel> Executor<K> {
    /// Wraps `kernel`, loading the ownership record from `store` (a corrupt one is set aside:
    /// `RegistryStore::load_or_set_aside`).
    pub fn new(kernel: K, store: RegistryStore) -> Result<Self, DataplaneError> {
        let (registry, recovered) = store.load_or_set_aside()?;
        kernel.watch(Watched::of(&registry));
        Ok(Self {
            kernel,
            store,
            recovered,
            registry: Mutex::new(registry),
        })
    }

    /// Wraps `kernel` with an in-memory record (tests: a restarted agent that kept its record).
    pub fn new_with_registry(kernel: K, registry: Registry) -> Self {
        kernel.watch(Watched::of(&registry));
        Self {
            kernel,
            store: RegistryStore::Memory,
            registry: Mutex::new(registry),
            recovered: false,
        }
    }

    /// Gives the kernel implementation back.
    pub fn into_kernel(self) -> K {
        self.kernel
    }

    /// The kernel implementation.
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// A copy of the ownership record.
    pub fn registry(&self) -> Registry {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, change: impl FnOnce(&mut Registry)) -> Result<(), DataplaneError> {
        let mut registry = self.lock();
        change(&mut registry);
        self.kernel.watch(Watched::of(&registry));
        self.store.save(&registry)?;
        Ok(())
    }

    /// Our addresses on the devices we may hold VIPs on: everything on `lvs0`, and what the
    /// record lists elsewhere.
    async fn owned_addresses(&self, registry: &Registry) -> Result<BTreeSet<VipAddress>, DataplaneError> {
        let mut devices: BTreeSet<String> = registry.addresses.iter().map(|vip| vip.device.clone()).collect();
        devices.insert(DUMMY_DEVICE.to_owned());
        Ok(self
            .kernel
            .addresses(&devices)
            .await?
            .into_iter()
            .filter(|vip| vip.device == DUMMY_DEVICE || registry.addresses.contains(vip))
            .collect())
    }

    async fn observe_state(&self) -> Result<NodeState, DataplaneError> {
        let registry = self.registry();
        let addresses = self.owned_addresses(&registry).await?;
        let services = self.our_services(&registry, &addresses).await?;
        let mut links = BTreeSet::new();
        let mut candidates = registry.links.clone();
        candidates.insert(Link::Dummy {
            name: DUMMY_DEVICE.to_owned(),
        });
        for link in candidates {
            if self.kernel.link_present(&link).await? {
                links.insert(link);
            }
        }
        let mut sysctls = BTreeMap::new();
        for name in registry.sysctl_originals.keys() {
            sysctls.insert(name.clone(), self.kernel.read_sysctl(name).await?);
        }
        let nftables = match self.kernel.nftables_fingerprint().await? {
            None => None,
            Some(fingerprint) if registry.nftables_fingerprint.as_ref() == Some(&fingerprint) => {
                registry.nftables.clone()
            }
            // Edited by hand (or not ours to read): differs from anything we want, so it is replaced.
            Some(_) => Some(NftRules::default()),
        };
        let sync_daemons = self.our_sync_daemons(&registry).await?;
        Ok(NodeState {
            links,
            sysctls,
            nftables,
            services,
            addresses,
            announce: BTreeMap::new(),
            sync_daemons,
        })
    }

    /// Our IPVS services, as the kernel has them.
    async fn our_services(
        &self,
        registry: &Registry,
        addresses: &BTreeSet<VipAddress>,
    ) -> Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError> {
        Ok(self
            .kernel
            .services()
            .await?
            .into_iter()
            .filter(|state| is_ours(&state.service.key, registry, addresses))
            .map(|state| (state.service.key, state))
            .collect())
    }

    /// Applies one op. Creates were recorded by the caller beforehand (`ours_before` says what
    /// was ours before this batch); what a successful delete or a refused create must forget is
    /// returned, so the caller saves the record once.
    async fn apply_one(
        &self,
        op: &Op,
        ours_before: &Registry,
    ) -> (Result<(), DataplaneError>, Option<Forget>) {
        let refuse = not_ours;
        match op {
            Op::AddService(service) => match self.kernel.add_service(service).await {
                Err(DataplaneError::Exists { object, .. })
                    if !ours_before.services.contains(&service.key) =>
                {
                    (Err(refuse(object)), Some(Forget::Service(service.key)))
                }
                Err(DataplaneError::Exists { .. }) => (self.kernel.update_service(service).await, None),
                other => (other, None),
            },
            Op::UpdateService(service) => (self.kernel.update_service(service).await, None),
            Op::DeleteService(key) => forget_after(
                ignore_not_found(self.kernel.delete_service(key).await),
                Forget::Service(*key),
            ),
            Op::AddDestination(key, destination) => match self.kernel.add_destination(key, destination).await
            {
                Err(DataplaneError::Exists { .. }) => {
                    (self.kernel.update_destination(key, destination).await, None)
                }
                other => (other, None),
            },
            Op::UpdateDestination(key, destination) => {
                (self.kernel.update_destination(key, destination).await, None)
            }
            Op::DeleteDestination(key, address, port) => (
                ignore_not_found(self.kernel.delete_destination(key, *address, *port).await),
                None,
            ),
            Op::AddAddress(vip) => match self.kernel.add_address(vip).await {
                Err(DataplaneError::Exists { object, .. })
                    if vip.device != DUMMY_DEVICE && !ours_before.addresses.contains(vip) =>
                {
                    (Err(refuse(object)), Some(Forget::Address(vip.clone())))
                }
                other => (ignore_exists(other), None),
            },
            Op::DeleteAddress(vip) => forget_after(
                ignore_not_found(self.kernel.delete_address(vip).await),
                Forget::Address(vip.clone()),
            ),
            Op::AddLink(link) => (ignore_exists(self.kernel.add_link(link).await), None),
            Op::DeleteLink(link) => forget_after(
                ignore_not_found(self.kernel.delete_link(link).await),
                Forget::Link(link.clone()),
            ),
            Op::SetSysctl(sysctl) => (self.set_sysctl(&sysctl.name, &sysctl.value).await, None),
            Op::RestoreSysctl(name) => (self.restore_sysctl(name).await, None),
            Op::ReplaceNftables(rules) => {
                let result = match self.kernel.replace_nftables(rules).await {
                    Ok(fingerprint) => self.record(|registry| {
                        registry.nftables = Some(rules.clone());
                        registry.nftables_fingerprint = Some(fingerprint);
                    }),
                    Err(error) => Err(error),
                };
                (result, None)
            }
            Op::DeleteNftables => {
                let result = match ignore_not_found(self.kernel.delete_nftables().await) {
                    Ok(()) => self.record(|registry| {
                        registry.nftables = None;
                        registry.nftables_fingerprint = None;
                    }),
                    Err(error) => Err(error),
                };
                (result, None)
            }
            Op::Announce { address, interface } => {
                (self.kernel.announce(*address, interface.as_deref()).await, None)
            }
            Op::StartSyncDaemon(role, spec) => (self.start_sync_daemon(*role, spec, ours_before).await, None),
            Op::StopSyncDaemon(role) => (self.stop_sync_daemon(*role).await, None),
        }
    }

    /// Interprets the kernel's answer to a batched IPVS op like `apply_one` does: EEXIST on
    /// create means "update" for what is ours and "refuse" for a foreign object.
    async fn settle_ipvs(
        &self,
        op: &Op,
        outcome: Result<(), DataplaneError>,
        ours_before: &Registry,
    ) -> (Result<(), DataplaneError>, Option<Forget>) {
        match (op, outcome) {
            (Op::AddService(service), Err(DataplaneError::Exists { object, .. })) => {
                if ours_before.services.contains(&service.key) {
                    (self.kernel.update_service(service).await, None)
                } else {
                    (Err(not_ours(object)), Some(Forget::Service(service.key)))
                }
            }
            (Op::AddDestination(key, destination), Err(DataplaneError::Exists { .. })) => {
                (self.kernel.update_destination(key, destination).await, None)
            }
            (Op::DeleteDestination(..), Err(DataplaneError::NotFound { .. })) => (Ok(()), None),
            (_, outcome) => (outcome, None),
        }
    }

    /// Writes a sysctl, first saving its original value (write-ahead: a crash in between must not
    /// lose it).
    /// IPv6 forwarding keeps router advertisements accepted (`router_advertisements`).
    async fn set_sysctl(&self, name: &str, value: &str) -> Result<(), DataplaneError> {
        if !self.lock().sysctl_originals.contains_key(name) {
            let original = self.kernel.read_sysctl(name).await?;
            self.record(|registry| {
                registry.sysctl_originals.insert(name.to_owned(), original);
            })?;
        }
        if router_advertisements::turns_ipv6_forwarding_on(name, value) {
            self.keep_router_advertisements().await?;
        }
        self.kernel.write_sysctl(name, value).await
    }

    async fn restore_sysctl(&self, name: &str) -> Result<(), DataplaneError> {
        let original = self.lock().sysctl_originals.get(name).cloned();
        if let Some(original) = original {
            self.kernel.write_sysctl(name, &original).await?;
        }
        if name == router_advertisements::IPV6_FORWARDING {
            self.restore_router_advertisements().await?;
        }
        self.record(|registry| {
            registry.sysctl_originals.remove(name);
        })
    }
}

/// The refusal to touch an object that exists but is not ours.
fn not_ours(object: Object) -> DataplaneError {
    DataplaneError::NotOurs { object }
}

/// Something the record must forget after a batch.
#[derive(Debug, Clone)]
enum Forget {
    Service(ServiceKey),
    Address(VipAddress),
    Link(Link),
}

fn forget_after(
    result: Result<(), DataplaneError>,
    forget: Forget,
) -> (Result<(), DataplaneError>, Option<Forget>) {
    let forget = result.is_ok().then_some(forget);
    (result, forget)
}

fn ignore_not_found(result: Result<(), DataplaneError>) -> Result<(), DataplaneError> {
    match result {
        Err(DataplaneError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

fn ignore_exists(result: Result<(), DataplaneError>) -> Result<(), DataplaneError> {
    match result {
        Err(DataplaneError::Exists { .. }) => Ok(()),
        other => other,
    }
}

/// Whether a kernel service is ours: recorded as created by us, or on a VIP of our dummy device.
fn is_ours(key: &ServiceKey, registry: &Registry, addresses: &BTreeSet<VipAddress>) -> bool {
    registry.services.contains(key)
        || matches!(key, ServiceKey::Address { address, .. }
            if addresses.iter().any(|vip| vip.device == DUMMY_DEVICE && vip.address == *address))
}

impl<K: Kernel> Dataplane for Executor<K> {
    async fn observe(&self) -> Result<NodeState, DataplaneError> {
        self.observe_state().await
    }

    async fn observe_services(&self) -> Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError> {
        let registry = self.registry();
        let addresses = self.owned_addresses(&registry).await?;
        self.our_services(&registry, &addresses).await
    }

    async fn apply(&self, ops: Vec<Op>) -> ApplyReport {
        let mut report = ApplyReport::default();
        let ours_before = self.registry();
        // Write-ahead, once for the batch: everything this batch may create is recorded as ours
        // before the kernel sees it, so a crash never leaves an unrecorded object behind.
        if let Err(error) = self.record(|registry| {
            for op in &ops {
                match op {
                    Op::AddService(service) => {
                        registry.services.insert(service.key);
                    }
                    Op::AddAddress(vip) => {
                        registry.addresses.insert(vip.clone());
                    }
                    Op::AddLink(link) => {
                        registry.links.insert(link.clone());
                    }
                    _ => {}
                }
            }
        }) {
            report.failures.extend(ops.into_iter().map(|op| OpFailure {
                op,
                error: error.clone(),
            }));
            return report;
        }

        let mut failed_services = BTreeSet::new();
        let mut forgets = Vec::new();
        for run in runs(ops) {
            let results: Vec<(Op, Result<(), DataplaneError>, Option<Forget>)> = if run.len() > 1 {
                // A run of IPVS changes: services first, then destination adds/updates, then
                // destination deletes — each stage pipelined.
                let mut results = Vec::new();
                for stage in stages(run) {
                    // Ops of services that could not be created are skipped, the rest go to
                    // the kernel as one pipelined batch.
                    let (skipped, stage): (Vec<Op>, Vec<Op>) = stage.into_iter().partition(|op| {
                        service_of(op).is_some_and(|key| failed_services.contains(&key))
                            && !matches!(op, Op::AddService(_))
                    });
                    for op in skipped {
                        let Some(service) = service_of(&op) else { continue };
                        let error = DataplaneError::Skipped {
                            object: Object::of(&op),
                            service,
                        };
                        results.push((op, Err(error), None));
                    }
                    let outcomes = self.kernel.ipvs_batch(&stage).await;
                    for (op, outcome) in stage.into_iter().zip(outcomes) {
                        let (result, forget) = self.settle_ipvs(&op, outcome, &ours_before).await;
                        if let (Op::AddService(service), Err(_)) = (&op, &result) {
                            failed_services.insert(service.key);
                        }
                        results.push((op, result, forget));
                    }
                }
                results
            } else {
                let mut results = Vec::new();
                for op in run {
                    if let Some(address) = director_vip(&op)
                        && !has_live_service(address, &failed_services, &self.registry())
                    {
                        // A VIP whose every service failed would attract traffic nothing serves.
                        let error = DataplaneError::NotTaken { address };
                        results.push((op, Err(error), None));
                        continue;
                    }
                    let (result, forget) = self.apply_one(&op, &ours_before).await;
                    results.push((op, result, forget));
                }
                results
            };
            for (op, result, forget) in results {
                // A service alone in its run is created above; later VIP ops look here.
                if let (Op::AddService(service), Err(_)) = (&op, &result) {
                    failed_services.insert(service.key);
                }
                forgets.extend(forget);
                match result {
                    Ok(()) => report.applied += 1,
                    Err(error) => {
                        tracing::warn!(%op, %error, "kernel operation failed");
                        report.failures.push(OpFailure { op, error });
                    }
                }
            }
        }
        if !forgets.is_empty()
            && let Err(error) = self.record(|registry| {
                for forget in forgets {
                    match forget {
                        Forget::Service(key) => {
                            registry.services.remove(&key);
                        }
                        Forget::Address(vip) => {
                            registry.addresses.remove(&vip);
                        }
                        Forget::Link(link) => {
                            registry.links.remove(&link);
                        }
                    }
                }
            })
        {
            tracing::warn!(%error, "could not update the ownership record after deletes");
        }
        report
    }

    async fn observe_vips(&self) -> Result<VipState, DataplaneError> {
        let registry = self.registry();
        Ok(VipState {
            addresses: self.owned_addresses(&registry).await?,
            sync_daemons: self.our_sync_daemons(&registry).await?,
        })
    }

    async fn stats(&self) -> Result<Vec<ServiceStats>, DataplaneError> {
        let registry = self.registry();
        let addresses = self.owned_addresses(&registry).await?;
        let mut stats = self.kernel.stats().await?;
        stats.retain(|service| is_ours(&service.key, &registry, &addresses));
        Ok(stats)
    }

    fn write_count(&self) -> u64 {
        self.kernel.write_count()
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.kernel.changes()
    }

    async fn connection_counts(&self) -> Result<BTreeMap<IpAddr, u64>, DataplaneError> {
        self.kernel.connection_counts().await
    }

    async fn uplink_up(&self, address: IpAddr, interface: Option<&str>) -> Result<bool, DataplaneError> {
        self.kernel.uplink_up(address, interface).await
    }

    async fn vip_claimants(
        &self,
        address: IpAddr,
        interface: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<[u8; 6]>, DataplaneError> {
        self.kernel.vip_claimants(address, interface, wait).await
    }
}
