//! The ownership-aware `Dataplane` on top of any `Kernel`: observe filters the kernel down to
//! what we own (IPVS services by exact key, as the record lists them); apply runs ops in order,
//! claims what it creates before the kernel is asked (`claims`) and forgets it after deleting,
//! treats EEXIST/ENOENT as success for what is ours, refuses to adopt a foreign object, and
//! skips ops that depend on a failed one.

mod batching;
mod claims;
pub mod router_advertisements;
mod sync_daemons;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use batching::{director_vip, has_live_service, runs, service_of, stages};
use claims::{Claims, Settled, left_intents};

use crate::changes::Watched;
use crate::dataplane::{ApplyReport, Dataplane, DataplaneError, Object, OpFailure, ServiceStats};
use crate::kernel::Kernel;
use crate::model::{Link, NftRules, NodeState, ServiceKey, ServiceState, VipAddress, VipState};
use crate::ops::Op;
use crate::ownership::{Intents, Registry, RegistryStore};

/// The device whose addresses are ours by construction (IPVS services on them are not: only
/// those the record lists are).
pub const DUMMY_DEVICE: &str = "lvs0";

/// `Dataplane` over a kernel implementation.
#[derive(Debug)]
pub struct Executor<K> {
    kernel: K,
    store: RegistryStore,
    registry: Mutex<Registry>,
    /// The record was corrupt and set aside at start: a sync daemon running exactly as asked is
    /// taken for ours (one per role per node; the record that said so is lost), and so is an
    /// IPVS service exactly as asked on an `lvs0` address.
    recovered: bool,
    /// The intents the record held at start, settled at the first observe or apply.
    left_intents: Mutex<Option<Intents>>,
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
            left_intents: Mutex::new(left_intents(&registry)),
            registry: Mutex::new(registry),
        })
    }

    /// Wraps `kernel` with an in-memory record (tests: a restarted agent that kept its record).
    pub fn new_with_registry(kernel: K, registry: Registry) -> Self {
        kernel.watch(Watched::of(&registry));
        Self {
            kernel,
            store: RegistryStore::Memory,
            left_intents: Mutex::new(left_intents(&registry)),
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
        self.settle_left_intents().await?;
        let registry = self.registry();
        let addresses = self.owned_addresses(&registry).await?;
        let services = self.our_services(&registry).await?;
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
    ) -> Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError> {
        Ok(self
            .kernel
            .services()
            .await?
            .into_iter()
            .filter(|state| is_ours(&state.service.key, registry))
            .map(|state| (state.service.key, state))
            .collect())
    }

    /// Applies one op. Creates were claimed by the caller beforehand (`claims`; `ours_before`
    /// says what was ours once they were); what a successful delete must forget is returned, so
    /// the caller saves the record once.
    async fn apply_one(
        &self,
        op: &Op,
        ours_before: &Registry,
        claims: &Claims,
    ) -> (Result<(), DataplaneError>, Option<Forget>) {
        match op {
            Op::AddService(service) if claims.foreign_services.contains(&service.key) => {
                (Err(foreign(service.key)), None)
            }
            Op::AddService(service) => {
                let outcome = self.kernel.add_service(service).await;
                self.settle_ipvs(op, outcome, ours_before).await
            }
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
            Op::AddAddress(vip) if claims.foreign_addresses.contains(vip) => {
                (Err(not_ours(Object::Address(vip.clone()))), None)
            }
            Op::AddAddress(vip) => match self.kernel.add_address(vip).await {
                Err(DataplaneError::Exists { object, .. })
                    if vip.device != DUMMY_DEVICE && !ours_before.addresses.contains(vip) =>
                {
                    (Err(not_ours(object)), None)
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

    /// Interprets the kernel's answer to an IPVS op: EEXIST on create means "update" for what
    /// is ours and "refuse" for a foreign service (one made after `claim` looked).
    async fn settle_ipvs(
        &self,
        op: &Op,
        outcome: Result<(), DataplaneError>,
        ours_before: &Registry,
    ) -> (Result<(), DataplaneError>, Option<Forget>) {
        match (op, outcome) {
            (Op::AddService(service), Err(DataplaneError::Exists { .. })) => {
                if ours_before.services.contains(&service.key) {
                    (self.kernel.update_service(service).await, None)
                } else {
                    (Err(foreign(service.key)), None)
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

/// The refusal to create a service whose key another program's service has.
fn foreign(service: ServiceKey) -> DataplaneError {
    DataplaneError::ForeignService { service }
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

/// Whether a kernel service is ours: recorded, by its exact key, as created by us. Its address
/// says nothing — kube-proxy's or keepalived's service may sit on an address of `lvs0`.
fn is_ours(key: &ServiceKey, registry: &Registry) -> bool {
    registry.services.contains(key)
}

impl<K: Kernel> Dataplane for Executor<K> {
    async fn observe(&self) -> Result<NodeState, DataplaneError> {
        self.observe_state().await
    }

    async fn observe_services(&self) -> Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError> {
        self.settle_left_intents().await?;
        let registry = self.registry();
        self.our_services(&registry).await
    }

    async fn apply(&self, ops: Vec<Op>) -> ApplyReport {
        let mut report = ApplyReport::default();
        // Claimed before the kernel sees anything: what this batch creates is an intent (or
        // ours by construction), and what exists already and is not ours is refused unsent.
        let claimed = match self.settle_left_intents().await {
            Ok(()) => self.claim(&ops, &self.registry()).await,
            Err(error) => Err(error),
        };
        let claims = match claimed {
            Ok(claims) => claims,
            Err(error) => {
                report.failures.extend(ops.into_iter().map(|op| OpFailure {
                    op,
                    error: error.clone(),
                }));
                return report;
            }
        };
        let ours_before = self.registry();
        let services_of_ours = claims.services_of_ours(&ours_before);

        let mut failed_services = BTreeSet::new();
        let mut forgets = Vec::new();
        let mut settled = Vec::new();
        for run in runs(ops) {
            let results: Vec<(Op, Result<(), DataplaneError>, Option<Forget>)> = if run.len() > 1 {
                // A run of IPVS changes: services first, then destination adds/updates, then
                // destination deletes — each stage pipelined.
                let mut results = Vec::new();
                for stage in stages(run) {
                    // Foreign services are refused and ops of services that could not be
                    // created skipped; the rest go to the kernel as one pipelined batch.
                    let (unsent, stage): (Vec<Op>, Vec<Op>) = stage.into_iter().partition(|op| match op {
                        Op::AddService(service) => claims.foreign_services.contains(&service.key),
                        op => service_of(op).is_some_and(|key| failed_services.contains(&key)),
                    });
                    for op in unsent {
                        let error = match (&op, service_of(&op)) {
                            (Op::AddService(service), _) => {
                                failed_services.insert(service.key);
                                foreign(service.key)
                            }
                            (_, Some(service)) => DataplaneError::Skipped {
                                object: Object::of(&op),
                                service,
                            },
                            (_, None) => continue,
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
                        && !has_live_service(address, &failed_services, &services_of_ours)
                    {
                        // A VIP whose every service failed would attract traffic nothing serves.
                        let error = DataplaneError::NotTaken { address };
                        results.push((op, Err(error), None));
                        continue;
                    }
                    let (result, forget) = self.apply_one(&op, &ours_before, &claims).await;
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
                settled.extend(Settled::of(&op, result.is_ok(), &claims));
                match result {
                    Ok(()) => report.applied += 1,
                    Err(error) => {
                        tracing::warn!(%op, %error, "kernel operation failed");
                        report.failures.push(OpFailure { op, error });
                    }
                }
            }
        }
        if (!forgets.is_empty() || !settled.is_empty())
            && let Err(error) = self.record(|registry| {
                // What the kernel created becomes ours; intents it refused are dropped.
                for claim in settled {
                    claim.apply_to(registry);
                }
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
            tracing::warn!(%error, "could not update the ownership record after creates and deletes");
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
        let mut stats = self.kernel.stats().await?;
        stats.retain(|service| is_ours(&service.key, &registry));
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

    async fn uplinks_of(
        &self,
        addresses: &BTreeSet<IpAddr>,
    ) -> Result<BTreeMap<IpAddr, Vec<String>>, DataplaneError> {
        self.kernel.uplinks_of(addresses).await
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
