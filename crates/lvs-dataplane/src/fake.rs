//! `FakeDataplane`: the ownership-aware executor over an in-memory kernel with the kernel's
//! semantics — EEXIST and ENOENT, destinations need their service, missing scheduler modules,
//! foreign objects that must survive — for unit tests of the agent and of the executor. The
//! failover reads (connection counts, uplink state, VIP claimants) return what a test set. Its
//! change notifications fire when a test edits by hand what Linux would notify about.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::changes::Watched;
use crate::dataplane::{DataplaneError, Object, Operation, ServiceStats};
use crate::executor::Executor;
use crate::kernel::{Kernel, KernelResult};
use crate::model::{
    Destination, Link, NftRules, Service, ServiceKey, ServiceState, Stats, SyncDaemonSpec, SyncRole,
    VipAddress,
};
use crate::ownership::RegistryStore;

/// The uplink the fake kernel finds for any address when none is named.
pub const FAKE_UPLINK: &str = "eth0";

/// What the fake kernel holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeKernelState {
    /// Every IPVS service.
    pub services: BTreeMap<ServiceKey, ServiceState>,
    /// Every address, on any device.
    pub addresses: BTreeSet<VipAddress>,
    /// Existing devices (by name) and GUE ports.
    pub links: BTreeSet<Link>,
    /// Every sysctl that was read or written (unknown ones read as "0").
    pub sysctls: BTreeMap<String, String>,
    /// Our nftables rules, when our tables exist.
    pub nftables: Option<NftRules>,
    /// Bumped when our tables are edited behind our back (see `tamper_nftables`).
    pub nftables_generation: u64,
    /// Other programs' nftables tables.
    pub foreign_tables: BTreeSet<String>,
    /// Announcements sent: address and uplink.
    pub announcements: Vec<(IpAddr, Option<String>)>,
    /// Running IPVS connection-sync daemons (ours or not).
    pub sync_daemons: BTreeMap<SyncRole, SyncDaemonSpec>,
    /// IPVS connection entries per virtual address.
    pub connections: BTreeMap<IpAddr, u64>,
    /// Uplinks that are down or missing (every other one is up; an address without a named
    /// uplink uses `FAKE_UPLINK`).
    pub uplinks_down: BTreeSet<String>,
    /// Other hosts' MAC addresses that answer a probe for a VIP.
    pub claimants: BTreeMap<IpAddr, Vec<[u8; 6]>>,
    /// How often the IPVS table was listed (services, counters), so tests can tell a cheap read.
    pub ipvs_dumps: u64,
    /// A service another program creates with the key of ours just before ours is created (a
    /// race no look-up beforehand can see); taken when it happens.
    pub created_first: Option<ServiceState>,
    /// A service whose create is carried out but never answered: the agent stopped while
    /// waiting (a test drops the apply then).
    pub create_unanswered: Option<ServiceKey>,
}

impl FakeKernelState {
    /// The part of the state whose changes Linux notifies us about (see `Watched`).
    fn notified(&self, watched: &Watched) -> (Vec<VipAddress>, Vec<Link>, Option<NftRules>, u64) {
        let addresses = self
            .addresses
            .iter()
            .filter(|vip| watched.holds_address(vip.address, Some(&vip.device)))
            .cloned()
            .collect();
        let links = self
            .links
            .iter()
            .filter(|link| {
                matches!(link, Link::Dummy { name } | Link::TunnelFallback { name, .. } if watched.holds_device(name))
            })
            .cloned()
            .collect();
        (addresses, links, self.nftables.clone(), self.nftables_generation)
    }
}

/// The in-memory kernel.
#[derive(Debug)]
pub struct FakeKernel {
    state: Mutex<FakeKernelState>,
    unavailable_schedulers: BTreeSet<String>,
    writes: AtomicU64,
    changes: watch::Sender<u64>,
    watched: Mutex<Watched>,
}

impl Default for FakeKernel {
    fn default() -> Self {
        Self {
            state: Mutex::new(FakeKernelState::default()),
            // Like Debian's 6.1 cloud kernel.
            unavailable_schedulers: BTreeSet::from(["twos".to_owned()]),
            writes: AtomicU64::new(0),
            changes: watch::channel(0).0,
            watched: Mutex::default(),
        }
    }
}

impl FakeKernel {
    /// Reads or changes the state directly (what an administrator does by hand). A change to
    /// what the Linux kernel notifies about — our devices, the addresses we hold (or any on
    /// `lvs0`), our nftables tables — bumps the change counter, as the Linux dataplane's
    /// notifications do; IPVS, sysctls and the failover reads do not.
    pub fn with_state<T>(&self, change: impl FnOnce(&mut FakeKernelState) -> T) -> T {
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (result, changed) = self.locked(|state| {
            let before = state.notified(&watched);
            let result = change(state);
            (result, state.notified(&watched) != before)
        });
        if changed {
            self.changes.send_modify(|count| *count += 1);
        }
        result
    }

    /// The state under its lock, as the kernel's own operations see it (no notification).
    fn locked<T>(&self, change: impl FnOnce(&mut FakeKernelState) -> T) -> T {
        change(
            &mut self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn write<T>(&self, change: impl FnOnce(&mut FakeKernelState) -> KernelResult<T>) -> KernelResult<T> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.locked(change)
    }
}

/// The kernel's errnos for a missing object, as the fake answers them.
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

/// EEXIST, for a create.
fn exists(object: Object) -> DataplaneError {
    DataplaneError::Exists {
        operation: Operation::Create,
        object,
    }
}

/// A missing object, with the errno the kernel gives for it.
fn not_found(operation: Operation, object: Object, errno: i32) -> DataplaneError {
    DataplaneError::NotFound {
        operation,
        object,
        errno: Some(errno),
    }
}

fn no_service(operation: Operation, key: ServiceKey) -> DataplaneError {
    not_found(operation, Object::Service(key), ESRCH)
}

fn no_destination(operation: Operation, service: ServiceKey, address: IpAddr, port: u16) -> DataplaneError {
    let object = Object::Destination {
        service,
        address,
        port,
    };
    not_found(operation, object, ENOENT)
}

const KNOWN_SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

impl FakeKernel {
    fn check_scheduler(&self, operation: Operation, service: &Service) -> KernelResult<()> {
        if !KNOWN_SCHEDULERS.contains(&service.scheduler.as_str())
            || self.unavailable_schedulers.contains(&service.scheduler)
        {
            return Err(DataplaneError::SchedulerUnavailable {
                operation,
                object: Object::Service(service.key),
                scheduler: service.scheduler.clone(),
            });
        }
        Ok(())
    }
}

impl Kernel for FakeKernel {
    async fn services(&self) -> KernelResult<Vec<ServiceState>> {
        Ok(self.locked(|state| {
            state.ipvs_dumps += 1;
            state.services.values().cloned().collect()
        }))
    }

    async fn add_service(&self, service: &Service) -> KernelResult<()> {
        self.check_scheduler(Operation::Create, service)?;
        let unanswered = self.locked(|state| {
            if let Some(first) = state
                .created_first
                .take_if(|first| first.service.key == service.key)
            {
                state.services.insert(first.service.key, first);
            }
            state.create_unanswered == Some(service.key)
        });
        let result = self.write(|state| {
            if state.services.contains_key(&service.key) {
                return Err(exists(Object::Service(service.key)));
            }
            let entry = ServiceState {
                service: service.clone(),
                destinations: BTreeMap::new(),
            };
            state.services.insert(service.key, entry);
            Ok(())
        });
        if unanswered {
            std::future::pending::<()>().await;
        }
        result
    }

    async fn update_service(&self, service: &Service) -> KernelResult<()> {
        self.check_scheduler(Operation::Update, service)?;
        self.write(|state| match state.services.get_mut(&service.key) {
            Some(entry) => {
                entry.service = service.clone();
                Ok(())
            }
            None => Err(no_service(Operation::Update, service.key)),
        })
    }

    async fn delete_service(&self, key: &ServiceKey) -> KernelResult<()> {
        self.write(|state| {
            state
                .services
                .remove(key)
                .map(|_| ())
                .ok_or_else(|| no_service(Operation::Delete, *key))
        })
    }

    async fn add_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        self.write(|state| {
            let entry = state
                .services
                .get_mut(key)
                .ok_or_else(|| no_service(Operation::Create, *key))?;
            if entry.destinations.contains_key(&destination.key()) {
                return Err(exists(Object::Destination {
                    service: *key,
                    address: destination.address,
                    port: destination.port,
                }));
            }
            entry.destinations.insert(destination.key(), destination.clone());
            Ok(())
        })
    }

    async fn update_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        self.write(|state| {
            let entry = state
                .services
                .get_mut(key)
                .ok_or_else(|| no_service(Operation::Update, *key))?;
            match entry.destinations.get_mut(&destination.key()) {
                Some(current) => {
                    *current = destination.clone();
                    Ok(())
                }
                None => Err(no_destination(
                    Operation::Update,
                    *key,
                    destination.address,
                    destination.port,
                )),
            }
        })
    }

    async fn delete_destination(&self, key: &ServiceKey, address: IpAddr, port: u16) -> KernelResult<()> {
        self.write(|state| {
            let entry = state
                .services
                .get_mut(key)
                .ok_or_else(|| no_service(Operation::Delete, *key))?;
            entry
                .destinations
                .remove(&(address, port))
                .map(|_| ())
                .ok_or_else(|| no_destination(Operation::Delete, *key, address, port))
        })
    }

    async fn addresses(&self, devices: &BTreeSet<String>) -> KernelResult<Vec<VipAddress>> {
        Ok(self.locked(|state| {
            state
                .addresses
                .iter()
                .filter(|vip| devices.contains(&vip.device))
                .cloned()
                .collect()
        }))
    }

    async fn add_address(&self, address: &VipAddress) -> KernelResult<()> {
        self.write(|state| {
            let device_exists = address.device == "lo"
                || state.links.iter().any(|link| matches!(link, Link::Dummy { name } | Link::TunnelFallback { name, .. } if *name == address.device));
            if !device_exists {
                return Err(not_found(
                    Operation::Create,
                    Object::Address(address.clone()),
                    ENODEV,
                ));
            }
            if !state.addresses.insert(address.clone()) {
                return Err(exists(Object::Address(address.clone())));
            }
            Ok(())
        })
    }

    async fn delete_address(&self, address: &VipAddress) -> KernelResult<()> {
        self.write(|state| {
            if state.addresses.remove(address) {
                Ok(())
            } else {
                Err(not_found(
                    Operation::Delete,
                    Object::Address(address.clone()),
                    EADDRNOTAVAIL,
                ))
            }
        })
    }

    async fn link_present(&self, link: &Link) -> KernelResult<bool> {
        Ok(self.locked(|state| state.links.contains(link)))
    }

    async fn add_link(&self, link: &Link) -> KernelResult<()> {
        self.write(|state| {
            if state.links.insert(link.clone()) {
                Ok(())
            } else {
                Err(exists(Object::link(link)))
            }
        })
    }

    async fn delete_link(&self, link: &Link) -> KernelResult<()> {
        self.write(|state| {
            if !state.links.remove(link) {
                return Err(not_found(Operation::Delete, Object::link(link), ENODEV));
            }
            if let Link::Dummy { name } = link {
                state.addresses.retain(|vip| vip.device != *name);
            }
            Ok(())
        })
    }

    async fn read_sysctl(&self, name: &str) -> KernelResult<String> {
        Ok(self.locked(|state| state.sysctls.get(name).cloned().unwrap_or_else(|| "0".to_owned())))
    }

    async fn sysctl_children(&self, directory: &str) -> KernelResult<Vec<String>> {
        let prefix = format!("{directory}/");
        Ok(self.locked(|state| {
            let children: std::collections::BTreeSet<String> = state
                .sysctls
                .keys()
                .filter_map(|name| name.strip_prefix(&prefix))
                .filter_map(|rest| rest.split('/').next())
                .map(str::to_owned)
                .collect();
            children.into_iter().collect()
        }))
    }

    async fn write_sysctl(&self, name: &str, value: &str) -> KernelResult<()> {
        self.write(|state| {
            state.sysctls.insert(name.to_owned(), value.to_owned());
            Ok(())
        })
    }

    async fn nftables_fingerprint(&self) -> KernelResult<Option<String>> {
        Ok(self.locked(|state| {
            state
                .nftables
                .as_ref()
                .map(|rules| format!("{rules:?}#{}", state.nftables_generation))
        }))
    }

    async fn replace_nftables(&self, rules: &NftRules) -> KernelResult<String> {
        self.write(|state| {
            state.nftables = Some(rules.clone());
            Ok(format!("{rules:?}#{}", state.nftables_generation))
        })
    }

    async fn delete_nftables(&self) -> KernelResult<()> {
        self.write(|state| {
            state.nftables.take().map(|_| ()).ok_or_else(|| {
                not_found(
                    Operation::Delete,
                    Object::NftTable(crate::linux::nft::TABLE.to_owned()),
                    ENOENT,
                )
            })
        })
    }

    async fn announce(&self, address: IpAddr, interface: Option<&str>) -> KernelResult<()> {
        self.locked(|state| state.announcements.push((address, interface.map(str::to_owned))));
        Ok(())
    }

    async fn sync_daemons(&self) -> KernelResult<BTreeMap<SyncRole, SyncDaemonSpec>> {
        Ok(self.locked(|state| state.sync_daemons.clone()))
    }

    async fn start_sync_daemon(&self, role: SyncRole, spec: &SyncDaemonSpec) -> KernelResult<()> {
        self.write(|state| {
            if state.sync_daemons.contains_key(&role) {
                return Err(exists(Object::SyncDaemon(role)));
            }
            state.sync_daemons.insert(role, spec.clone());
            Ok(())
        })
    }

    async fn stop_sync_daemon(&self, role: SyncRole) -> KernelResult<()> {
        self.write(|state| {
            state
                .sync_daemons
                .remove(&role)
                .map(|_| ())
                .ok_or_else(|| not_found(Operation::Delete, Object::SyncDaemon(role), ESRCH))
        })
    }

    async fn connection_counts(&self) -> KernelResult<BTreeMap<IpAddr, u64>> {
        Ok(self.locked(|state| state.connections.clone()))
    }

    async fn uplinks_of(&self, addresses: &BTreeSet<IpAddr>) -> KernelResult<BTreeMap<IpAddr, Vec<String>>> {
        Ok(addresses
            .iter()
            .map(|address| (*address, vec![FAKE_UPLINK.to_owned()]))
            .collect())
    }

    async fn uplink_up(&self, _address: IpAddr, interface: Option<&str>) -> KernelResult<bool> {
        let interface = interface.unwrap_or(FAKE_UPLINK);
        Ok(self.locked(|state| !state.uplinks_down.contains(interface)))
    }

    async fn vip_claimants(
        &self,
        address: IpAddr,
        _interface: Option<&str>,
        _wait: Duration,
    ) -> KernelResult<Vec<[u8; 6]>> {
        Ok(self.locked(|state| state.claimants.get(&address).cloned().unwrap_or_default()))
    }

    async fn stats(&self) -> KernelResult<Vec<ServiceStats>> {
        Ok(self.locked(|state| {
            state.ipvs_dumps += 1;
            state
                .services
                .values()
                .map(|entry| ServiceStats {
                    key: entry.service.key,
                    totals: Stats::default(),
                    destinations: entry
                        .destinations
                        .keys()
                        .map(|(address, port)| (*address, *port, Stats::default(), 0, 0))
                        .collect(),
                })
                .collect()
        }))
    }

    fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn watch(&self, watched: Watched) {
        *self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = watched;
    }
}

/// The fake dataplane: ownership logic over the in-memory kernel.
pub type FakeDataplane = Executor<FakeKernel>;

impl FakeDataplane {
    /// A fake node with `lo` only and nothing owned.
    pub fn new_fake() -> Self {
        match Executor::new(FakeKernel::default(), RegistryStore::Memory) {
            Ok(executor) => executor,
            Err(error) => unreachable!("an in-memory registry cannot fail to load: {error}"),
        }
    }

    /// Simulates a restart of the agent: same kernel, ownership record as persisted.
    pub fn restarted(self) -> Self {
        let registry = self.registry();
        Executor::new_with_registry(self.into_kernel(), registry)
    }
}

#[cfg(test)]
#[path = "fake/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "fake/failover_tests.rs"]
mod failover_tests;

#[cfg(test)]
#[path = "fake/foreign_tests.rs"]
mod foreign_tests;
