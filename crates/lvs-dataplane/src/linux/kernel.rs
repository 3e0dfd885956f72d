//! `LinuxKernel`: the primitives of `Kernel` on a real Linux node, and `LinuxDataplane`, the
//! ownership-aware executor over it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtnetlink::sys::AsyncSocket as _;
use tokio::task::AbortHandle;

use crate::changes::Watched;
use crate::dataplane::{DataplaneError, ServiceStats};
use crate::executor::Executor;
use crate::ipvs::{IpvsError, IpvsHandle, IpvsRequest, ObservedDestination, ObservedService, SyncDaemon};
use crate::kernel::{Kernel, KernelResult};
use crate::linux::monitor::{ChangeMonitor, Subject};
use crate::linux::{announce, connections, interfaces, nft, probe, sysctl};
use crate::model::{
    Destination, Link, NftRules, Service, ServiceKey, ServiceState, SyncDaemonSpec, SyncRole, VipAddress,
};
use crate::ops::Op;
use crate::ownership::RegistryStore;

/// Settings of the Linux implementation.
#[derive(Debug, Clone)]
pub struct LinuxSettings {
    /// Where sysctls live (`/proc/sys`).
    pub sysctl_root: PathBuf,
    /// The `nft` binary.
    pub nft_binary: String,
    /// How many gratuitous ARPs / unsolicited NAs to send when taking a VIP.
    pub announce_count: u32,
    /// Time between them.
    pub announce_interval: Duration,
    /// The ownership record.
    pub registry: RegistryStore,
}

impl Default for LinuxSettings {
    fn default() -> Self {
        Self {
            sysctl_root: PathBuf::from("/proc/sys"),
            nft_binary: "nft".to_owned(),
            announce_count: 3,
            announce_interval: Duration::from_millis(200),
            registry: RegistryStore::default_file(),
        }
    }
}

/// The real kernel.
#[derive(Debug)]
pub struct LinuxKernel {
    /// Opened on first use: a node that is only a real server needs no IPVS module at all.
    ipvs: tokio::sync::OnceCell<IpvsHandle>,
    routes: rtnetlink::Handle,
    settings: LinuxSettings,
    writes: std::sync::atomic::AtomicU64,
    /// Announcement repeats still to be sent, by VIP (stopped when the VIP is released).
    repeats: std::sync::Mutex<BTreeMap<IpAddr, Vec<AbortHandle>>>,
    /// Change notifications (started when first asked for).
    monitor: ChangeMonitor,
    /// The fingerprint of our nftables tables, and the monitor's nftables generation it was
    /// listed under.
    nftables_listed: std::sync::Mutex<Option<(u64, Option<String>)>>,
}

/// The dataplane of a Linux node.
pub type LinuxDataplane = Executor<LinuxKernel>;

impl LinuxDataplane {
    /// Connects to the kernel (rtnetlink now, IPVS generic netlink when first needed, on the
    /// current tokio runtime) and loads the ownership record.
    pub async fn connect(settings: LinuxSettings) -> Result<Self, DataplaneError> {
        let (mut connection, routes, _) =
            rtnetlink::new_connection().map_err(|error| DataplaneError::Kernel {
                what: "opening an rtnetlink socket".into(),
                message: error.to_string(),
            })?;
        // Bound now, so change notifications can tell our writes by the port id they carry.
        let writer_port = connection
            .socket_mut()
            .socket_mut()
            .bind_auto()
            .map_or(0, |address| address.port_number());
        tokio::spawn(connection);
        let monitor = ChangeMonitor::new(writer_port);
        let registry = settings.registry.clone();
        let kernel = LinuxKernel {
            ipvs: tokio::sync::OnceCell::new(),
            routes,
            settings,
            writes: std::sync::atomic::AtomicU64::new(0),
            repeats: std::sync::Mutex::default(),
            monitor,
            nftables_listed: std::sync::Mutex::default(),
        };
        Executor::new(kernel, registry)
    }
}

/// Maps an IPVS error to the dataplane's.
pub fn ipvs_error(error: IpvsError) -> DataplaneError {
    let what = error.to_string();
    if error.is_exists() {
        DataplaneError::Exists { what }
    } else if error.is_not_found() {
        DataplaneError::NotFound { what }
    } else if let IpvsError::SchedulerUnavailable { context, scheduler } = error {
        DataplaneError::SchedulerUnavailable {
            what: context,
            scheduler,
        }
    } else {
        DataplaneError::Kernel {
            what,
            message: "refused by the kernel".into(),
        }
    }
}

fn request_of(op: &Op) -> Option<IpvsRequest> {
    Some(match op {
        Op::AddService(service) => IpvsRequest::NewService(service.clone()),
        Op::UpdateService(service) => IpvsRequest::SetService(service.clone()),
        Op::DeleteService(key) => IpvsRequest::DeleteService(*key),
        Op::AddDestination(service, destination) => IpvsRequest::NewDestination {
            service: *service,
            destination: destination.clone(),
        },
        Op::UpdateDestination(service, destination) => IpvsRequest::SetDestination {
            service: *service,
            destination: destination.clone(),
        },
        Op::DeleteDestination(service, address, port) => IpvsRequest::DeleteDestination {
            service: *service,
            address: *address,
            port: *port,
        },
        _ => return None,
    })
}

impl LinuxKernel {
    /// The IPVS connection, opened (loading `ip_vs` if needed) on first use.
    async fn ipvs(&self) -> Result<&IpvsHandle, IpvsError> {
        self.ipvs.get_or_try_init(IpvsHandle::new).await
    }

    /// The IPVS connection for reading: `None` without the IPVS module, which reading does not
    /// load (without it there is nothing to read).
    async fn loaded_ipvs(&self) -> KernelResult<Option<&IpvsHandle>> {
        Ok(match self.ipvs.get() {
            Some(ipvs) => Some(ipvs),
            None => match IpvsHandle::open_if_loaded().await.map_err(ipvs_error)? {
                Some(ipvs) => Some(self.ipvs.get_or_init(|| async { ipvs }).await),
                None => None,
            },
        })
    }

    /// Every IPVS service with its destinations, as the kernel lists them (none without the
    /// IPVS module).
    async fn dump(&self) -> KernelResult<Vec<(ObservedService, Vec<ObservedDestination>)>> {
        let Some(ipvs) = self.loaded_ipvs().await? else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for observed in ipvs.services().await.map_err(ipvs_error)? {
            let destinations = ipvs
                .destinations(&observed.service.key)
                .await
                .map_err(ipvs_error)?;
            all.push((observed, destinations));
        }
        Ok(all)
    }

    fn count(&self) {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The uplinks of a VIP: the one named, or the interfaces whose network contains it.
    async fn uplinks(&self, address: IpAddr, interface: Option<&str>) -> KernelResult<Vec<String>> {
        match interface {
            Some(interface) => Ok(vec![interface.to_owned()]),
            None => interfaces::uplinks_for(&self.routes, address).await,
        }
    }

    /// Like `uplinks`, but none is an error naming the operation.
    async fn required_uplinks(
        &self,
        address: IpAddr,
        interface: Option<&str>,
        what: String,
    ) -> KernelResult<Vec<String>> {
        let uplinks = self.uplinks(address, interface).await?;
        if uplinks.is_empty() {
            return Err(DataplaneError::Kernel {
                what,
                message: "no interface has a network containing it; set spec.directors.interface".into(),
            });
        }
        Ok(uplinks)
    }

    fn listed_nftables(&self) -> std::sync::MutexGuard<'_, Option<(u64, Option<String>)>> {
        self.nftables_listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the announcement repeats of a VIP still under way.
    fn stop_repeats(&self, address: IpAddr) {
        let mut repeats = self
            .repeats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for repeat in repeats.remove(&address).unwrap_or_default() {
            repeat.abort();
        }
    }
}

impl Kernel for LinuxKernel {
    async fn services(&self) -> KernelResult<Vec<ServiceState>> {
        Ok(self
            .dump()
            .await?
            .into_iter()
            .map(|(observed, destinations)| ServiceState {
                service: observed.service,
                destinations: destinations
                    .into_iter()
                    .map(|destination| (destination.destination.key(), destination.destination))
                    .collect(),
            })
            .collect())
    }

    async fn add_service(&self, service: &Service) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .new_service(service)
            .await
            .map_err(ipvs_error)
    }

    async fn update_service(&self, service: &Service) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .set_service(service)
            .await
            .map_err(ipvs_error)
    }

    async fn delete_service(&self, key: &ServiceKey) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .delete_service(key)
            .await
            .map_err(ipvs_error)
    }

    async fn add_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .new_destination(key, destination)
            .await
            .map_err(ipvs_error)
    }

    async fn update_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .set_destination(key, destination)
            .await
            .map_err(ipvs_error)
    }

    async fn delete_destination(&self, key: &ServiceKey, address: IpAddr, port: u16) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .delete_destination(key, address, port)
            .await
            .map_err(ipvs_error)
    }

    async fn ipvs_batch(&self, ops: &[Op]) -> Vec<KernelResult<()>> {
        let requests: Vec<Option<IpvsRequest>> = ops.iter().map(request_of).collect();
        let ipvs = match self.ipvs().await {
            Ok(ipvs) => ipvs,
            Err(error) => {
                let error = ipvs_error(error);
                return ops.iter().map(|_| Err(error.clone())).collect();
            }
        };
        let mut answers = ipvs
            .apply_all(requests.iter().flatten().cloned())
            .await
            .into_iter();
        requests
            .iter()
            .zip(ops)
            .map(|(request, op)| match request {
                Some(_) => answers
                    .next()
                    .unwrap_or_else(|| {
                        Err(IpvsError::NoReply {
                            context: op.to_string(),
                            seconds: 0,
                        })
                    })
                    .map_err(ipvs_error),
                None => Err(DataplaneError::Kernel {
                    what: op.to_string(),
                    message: "not an IPVS operation".into(),
                }),
            })
            .collect()
    }

    async fn addresses(&self, devices: &BTreeSet<String>) -> KernelResult<Vec<VipAddress>> {
        interfaces::addresses(&self.routes, devices).await
    }

    async fn add_address(&self, address: &VipAddress) -> KernelResult<()> {
        self.count();
        self.monitor
            .own_write(
                Subject::Address(address.address),
                interfaces::add_address(&self.routes, address),
            )
            .await
    }

    async fn delete_address(&self, address: &VipAddress) -> KernelResult<()> {
        self.count();
        // A released VIP is not announced any more.
        self.stop_repeats(address.address);
        self.monitor
            .own_write(
                Subject::Address(address.address),
                interfaces::delete_address(&self.routes, address),
            )
            .await
    }

    async fn link_present(&self, link: &Link) -> KernelResult<bool> {
        interfaces::link_present(&self.routes, link).await
    }

    async fn add_link(&self, link: &Link) -> KernelResult<()> {
        self.count();
        self.monitor
            .own_write(device_of(link), interfaces::add_link(&self.routes, link))
            .await
    }

    async fn delete_link(&self, link: &Link) -> KernelResult<()> {
        self.count();
        self.monitor
            .own_write(device_of(link), interfaces::delete_link(&self.routes, link))
            .await
    }

    async fn read_sysctl(&self, name: &str) -> KernelResult<String> {
        sysctl::read(&self.settings.sysctl_root, name).await
    }

    async fn write_sysctl(&self, name: &str, value: &str) -> KernelResult<()> {
        self.count();
        if name.starts_with("net/ipv4/vs/") {
            interfaces::modprobe("ip_vs").await?;
        }
        sysctl::write(&self.settings.sysctl_root, name, value).await
    }

    async fn nftables_fingerprint(&self) -> KernelResult<Option<String>> {
        let generation = self.monitor.nftables_generation();
        if let Some(generation) = generation
            && let Some((listed_under, fingerprint)) = self.listed_nftables().clone()
            && listed_under == generation
        {
            return Ok(fingerprint);
        }
        let fingerprint = nft::fingerprint(&self.settings.nft_binary).await?;
        if let Some(generation) = generation {
            *self.listed_nftables() = Some((generation, fingerprint.clone()));
        }
        Ok(fingerprint)
    }

    async fn replace_nftables(&self, rules: &NftRules) -> KernelResult<String> {
        self.count();
        // Our notifications may reach the monitor after the next read: list again then.
        self.listed_nftables().take();
        self.monitor
            .own_write(
                Subject::Nftables,
                nft::apply(&self.settings.nft_binary, &nft::replace_batch(rules)),
            )
            .await?;
        nft::fingerprint(&self.settings.nft_binary)
            .await?
            .ok_or_else(|| DataplaneError::Kernel {
                what: format!("nftables table {}", nft::TABLE),
                message: "missing right after it was created".into(),
            })
    }

    async fn delete_nftables(&self) -> KernelResult<()> {
        self.count();
        self.listed_nftables().take();
        self.monitor
            .own_write(
                Subject::Nftables,
                nft::apply(&self.settings.nft_binary, &nft::delete_batch()),
            )
            .await
    }

    async fn announce(&self, address: IpAddr, interface: Option<&str>) -> KernelResult<()> {
        let what = format!("announcing {address}");
        let interfaces = self.required_uplinks(address, interface, what).await?;
        self.stop_repeats(address);
        for interface in interfaces {
            let repeats = announce::announce(
                &interface,
                address,
                self.settings.announce_count,
                self.settings.announce_interval,
            )
            .await?;
            if let Some(repeats) = repeats {
                self.repeats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(address)
                    .or_default()
                    .push(repeats);
            }
        }
        Ok(())
    }

    async fn sync_daemons(&self) -> KernelResult<BTreeMap<SyncRole, SyncDaemonSpec>> {
        let Some(ipvs) = self.loaded_ipvs().await? else {
            return Ok(BTreeMap::new());
        };
        let mut daemons = BTreeMap::new();
        for daemon in ipvs.daemons().await.map_err(ipvs_error)? {
            let (role, spec) = daemon.role_and_spec().ok_or_else(|| DataplaneError::Kernel {
                what: format!("IPVS sync daemon {} on {}", daemon.state, daemon.interface),
                message: format!("sync ID {} out of range 0..=255", daemon.sync_id),
            })?;
            daemons.insert(role, spec);
        }
        Ok(daemons)
    }

    async fn start_sync_daemon(&self, role: SyncRole, spec: &SyncDaemonSpec) -> KernelResult<()> {
        self.ipvs()
            .await
            .map_err(ipvs_error)?
            .start_daemon(&SyncDaemon::for_role(role, spec))
            .await
            .map_err(ipvs_error)
    }

    async fn stop_sync_daemon(&self, role: SyncRole) -> KernelResult<()> {
        let Some(ipvs) = self.loaded_ipvs().await? else {
            return Err(DataplaneError::NotFound {
                what: format!("IPVS sync daemon {role} (IPVS not loaded)"),
            });
        };
        ipvs.stop_daemon(role).await.map_err(ipvs_error)
    }

    async fn connection_counts(&self) -> KernelResult<BTreeMap<IpAddr, u64>> {
        connections::read(Path::new(connections::CONNECTION_TABLE)).await
    }

    async fn uplink_up(&self, address: IpAddr, interface: Option<&str>) -> KernelResult<bool> {
        for uplink in self.uplinks(address, interface).await? {
            if interfaces::carries_traffic(&self.routes, &uplink).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn vip_claimants(
        &self,
        address: IpAddr,
        interface: Option<&str>,
        wait: Duration,
    ) -> KernelResult<Vec<[u8; 6]>> {
        let what = format!("probing for other holders of {address}");
        let uplinks = self.required_uplinks(address, interface, what).await?;
        let probes = uplinks
            .iter()
            .map(|uplink| probe::claimants(uplink, address, wait));
        let mut claimants: Vec<[u8; 6]> = Vec::new();
        for found in futures::future::try_join_all(probes).await? {
            for mac in found {
                if !claimants.contains(&mac) {
                    claimants.push(mac);
                }
            }
        }
        Ok(claimants)
    }

    async fn stats(&self) -> KernelResult<Vec<ServiceStats>> {
        Ok(self
            .dump()
            .await?
            .into_iter()
            .map(|(observed, destinations)| ServiceStats {
                key: observed.service.key,
                totals: observed.stats,
                destinations: destinations
                    .into_iter()
                    .map(|destination| {
                        let ObservedDestination {
                            destination: entry,
                            active_connections,
                            inactive_connections,
                            stats,
                            ..
                        } = destination;
                        (
                            entry.address,
                            entry.port,
                            stats,
                            active_connections,
                            inactive_connections,
                        )
                    })
                    .collect(),
            })
            .collect())
    }

    fn write_count(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
            + self.ipvs.get().map_or(0, IpvsHandle::write_count)
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.monitor.subscribe()
    }

    fn watch(&self, watched: Watched) {
        self.monitor.watch(watched);
    }
}

/// What a device write changes, for the change monitor (a GUE port has no device: any name
/// that no notification carries will do).
fn device_of(link: &Link) -> Subject {
    match link {
        Link::Dummy { name } | Link::TunnelFallback { name, .. } => Subject::Device(name.clone()),
        Link::GueReceivePort { port, .. } => Subject::Device(format!("gue port {port}")),
    }
}
