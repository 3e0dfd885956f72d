//! `LinuxKernel`: the primitives of `Kernel` on a real Linux node, and `LinuxDataplane`, the
//! ownership-aware executor over it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtnetlink::sys::AsyncSocket as _;
use tokio::task::AbortHandle;

use crate::changes::Watched;
use crate::dataplane::{DataplaneError, Object, Operation, ServiceStats};
use crate::executor::Executor;
use crate::ipvs::{
    IpvsError, IpvsHandle, IpvsRequest, ObservedDestination, ObservedService, SyncDaemon, UnreadableService,
};
use crate::kernel::{Kernel, KernelResult};
use crate::linux::monitor::{ChangeMonitor, Subject};
use crate::linux::{announce, connections, interfaces, nft, probe, sysctl};
use crate::model::{
    Destination, Link, NftRules, Service, ServiceKey, ServiceState, SyncDaemonSpec, SyncRole, VipAddress,
};
use crate::ops::Op;
use crate::ownership::RegistryStore;

/// How long the nftables generation must stand still after our own write before the listing
/// made after it is kept (the monitor drains its socket in well under this).
const LISTING_SETTLE: Duration = Duration::from_millis(20);
/// The longest wait for it.
const LISTING_SETTLE_LIMIT: Duration = Duration::from_millis(200);

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
    /// The IPVS entries the last listing could not read, each logged once when it appeared.
    unreadable: std::sync::Mutex<BTreeSet<UnreadableService>>,
}

/// The dataplane of a Linux node.
pub type LinuxDataplane = Executor<LinuxKernel>;

impl LinuxDataplane {
    /// Connects to the kernel (rtnetlink now, IPVS generic netlink when first needed, on the
    /// current tokio runtime) and loads the ownership record.
    pub async fn connect(settings: LinuxSettings) -> Result<Self, DataplaneError> {
        let (mut connection, routes, _) = rtnetlink::new_connection().map_err(|error| {
            DataplaneError::failed(
                Operation::Open,
                Object::Other("an rtnetlink socket".into()),
                &error,
            )
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
            unreadable: std::sync::Mutex::default(),
        };
        Executor::new(kernel, registry)
    }
}

/// Maps an IPVS error of `operation` on `object` to the dataplane's, keeping the errno:
/// EEXIST → Exists, ENOENT/ESRCH → NotFound, a missing scheduler → SchedulerUnavailable, any
/// other NACK → Refused, and the rest (no module, no reply, a bad reply, the socket) → Failed.
pub fn ipvs_error(operation: Operation, object: Object) -> impl FnOnce(IpvsError) -> DataplaneError {
    move |error| {
        if error.is_exists() {
            return DataplaneError::Exists { operation, object };
        }
        if error.is_not_found() {
            return DataplaneError::NotFound {
                operation,
                object,
                errno: error.errno(),
            };
        }
        match error {
            IpvsError::SchedulerUnavailable { scheduler, .. } => DataplaneError::SchedulerUnavailable {
                operation,
                object,
                scheduler,
            },
            IpvsError::Kernel { errno, .. } => DataplaneError::Refused {
                operation,
                object,
                errno,
            },
            other => DataplaneError::Failed {
                operation,
                object,
                reason: other.reason(),
                errno: other.os_errno(),
            },
        }
    }
}

/// The IPVS table as a whole, for reads.
fn ipvs_table() -> Object {
    Object::Other("the IPVS services".into())
}

fn destination_object(service: &ServiceKey, destination: &Destination) -> Object {
    Object::Destination {
        service: *service,
        address: destination.address,
        port: destination.port,
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
            None => match IpvsHandle::open_if_loaded()
                .await
                .map_err(ipvs_error(Operation::Open, ipvs_table()))?
            {
                Some(ipvs) => Some(self.ipvs.get_or_init(|| async { ipvs }).await),
                None => None,
            },
        })
    }

    /// Every IPVS service with its destinations, as the kernel lists them (none without the
    /// IPVS module). An entry we cannot read — another program's, with a value we have no
    /// model for — is skipped and logged once, so it never stops the rest from being read.
    async fn dump(&self) -> KernelResult<Vec<(ObservedService, Vec<ObservedDestination>)>> {
        let Some(ipvs) = self.loaded_ipvs().await? else {
            return Ok(Vec::new());
        };
        let listing = ipvs
            .service_listing()
            .await
            .map_err(ipvs_error(Operation::Read, ipvs_table()))?;
        let mut unreadable = listing.unreadable;
        let mut all = Vec::new();
        for observed in listing.services {
            let key = observed.service.key;
            match ipvs.destinations(&key).await {
                Ok(destinations) => all.push((observed, destinations)),
                Err(IpvsError::MalformedReply { message, .. }) => unreadable.push(UnreadableService {
                    key: Some(key),
                    reason: format!("its destinations: {message}"),
                }),
                Err(error) => return Err(ipvs_error(Operation::Read, Object::Service(key))(error)),
            }
        }
        self.note_unreadable(unreadable);
        Ok(all)
    }

    /// Logs the unreadable IPVS entries not already logged while they stayed unreadable.
    fn note_unreadable(&self, unreadable: Vec<UnreadableService>) {
        let now: BTreeSet<UnreadableService> = unreadable.into_iter().collect();
        let mut logged = self
            .unreadable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for entry in now.difference(&logged) {
            tracing::warn!(
                entry = %entry,
                "an IPVS entry lvs-operator cannot read is skipped (not ours: left alone); logged once"
            );
        }
        *logged = now;
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
        operation: Operation,
    ) -> KernelResult<Vec<String>> {
        let uplinks = self.uplinks(address, interface).await?;
        if uplinks.is_empty() {
            return Err(DataplaneError::reason(
                operation,
                Object::Vip {
                    address,
                    interface: None,
                },
                "no interface has a network containing it; set spec.directors.interface",
            ));
        }
        Ok(uplinks)
    }

    /// Keeps the listing made right after our own write for the next observe, under the
    /// generation our write's notifications left: without it the first observe after every
    /// write of our tables started `nft` again — under emulation a second or more, which a
    /// drift repair (a VIP deleted by hand) waited for. The notifications are in the monitor's
    /// socket by the time `nft` exits; the generation is taken once it has stood still for
    /// [`LISTING_SETTLE`] (at most [`LISTING_SETTLE_LIMIT`]); a notification after that only
    /// makes the next observe list again, as before.
    async fn remember_own_listing(&self, fingerprint: &str) {
        let started = tokio::time::Instant::now();
        let Some(mut generation) = self.monitor.nftables_generation() else {
            return;
        };
        while started.elapsed() < LISTING_SETTLE_LIMIT {
            tokio::time::sleep(LISTING_SETTLE).await;
            let Some(now) = self.monitor.nftables_generation() else {
                return;
            };
            if now == generation {
                *self.listed_nftables() = Some((now, Some(fingerprint.to_owned())));
                return;
            }
            generation = now;
        }
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
        let object = Object::Service(service.key);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Create, object.clone()))?
            .new_service(service)
            .await
            .map_err(ipvs_error(Operation::Create, object))
    }

    async fn update_service(&self, service: &Service) -> KernelResult<()> {
        let object = Object::Service(service.key);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Update, object.clone()))?
            .set_service(service)
            .await
            .map_err(ipvs_error(Operation::Update, object))
    }

    async fn delete_service(&self, key: &ServiceKey) -> KernelResult<()> {
        let object = Object::Service(*key);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Delete, object.clone()))?
            .delete_service(key)
            .await
            .map_err(ipvs_error(Operation::Delete, object))
    }

    async fn add_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        let object = destination_object(key, destination);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Create, object.clone()))?
            .new_destination(key, destination)
            .await
            .map_err(ipvs_error(Operation::Create, object))
    }

    async fn update_destination(&self, key: &ServiceKey, destination: &Destination) -> KernelResult<()> {
        let object = destination_object(key, destination);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Update, object.clone()))?
            .set_destination(key, destination)
            .await
            .map_err(ipvs_error(Operation::Update, object))
    }

    async fn delete_destination(&self, key: &ServiceKey, address: IpAddr, port: u16) -> KernelResult<()> {
        let object = Object::Destination {
            service: *key,
            address,
            port,
        };
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Delete, object.clone()))?
            .delete_destination(key, address, port)
            .await
            .map_err(ipvs_error(Operation::Delete, object))
    }

    async fn ipvs_batch(&self, ops: &[Op]) -> Vec<KernelResult<()>> {
        let requests: Vec<Option<IpvsRequest>> = ops.iter().map(request_of).collect();
        let ipvs = match self.ipvs().await {
            Ok(ipvs) => ipvs,
            Err(error) => {
                // No IPVS connection (no module, no socket): every op fails for that reason.
                let (reason, errno) = (error.reason(), error.os_errno());
                return ops
                    .iter()
                    .map(|op| {
                        Err(DataplaneError::Failed {
                            operation: Operation::of(op),
                            object: Object::of(op),
                            reason: reason.clone(),
                            errno,
                        })
                    })
                    .collect();
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
                    .map_err(ipvs_error(Operation::of(op), Object::of(op))),
                None => Err(DataplaneError::reason(
                    Operation::of(op),
                    Object::of(op),
                    "not an IPVS operation",
                )),
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

    async fn sysctl_children(&self, directory: &str) -> KernelResult<Vec<String>> {
        sysctl::children(&self.settings.sysctl_root, directory).await
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
                nft::apply(
                    &self.settings.nft_binary,
                    &nft::replace_batch(rules),
                    Operation::Update,
                ),
            )
            .await?;
        let fingerprint = nft::fingerprint(&self.settings.nft_binary)
            .await?
            .ok_or_else(|| {
                DataplaneError::reason(
                    Operation::Create,
                    Object::NftTable(nft::TABLE.to_owned()),
                    "missing right after it was created",
                )
            })?;
        self.remember_own_listing(&fingerprint).await;
        Ok(fingerprint)
    }

    async fn delete_nftables(&self) -> KernelResult<()> {
        self.count();
        self.listed_nftables().take();
        self.monitor
            .own_write(
                Subject::Nftables,
                nft::apply(&self.settings.nft_binary, &nft::delete_batch(), Operation::Delete),
            )
            .await
    }

    async fn announce(&self, address: IpAddr, interface: Option<&str>) -> KernelResult<()> {
        let interfaces = self
            .required_uplinks(address, interface, Operation::Announce)
            .await?;
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
        let daemons_object = || Object::Other("the IPVS sync daemons".into());
        for daemon in ipvs
            .daemons()
            .await
            .map_err(ipvs_error(Operation::Read, daemons_object()))?
        {
            let (role, spec) = daemon.role_and_spec().ok_or_else(|| {
                DataplaneError::reason(
                    Operation::Read,
                    Object::Other(format!(
                        "IPVS sync daemon {} on {}",
                        daemon.state, daemon.interface
                    )),
                    format!("sync ID {} out of range 0..=255", daemon.sync_id),
                )
            })?;
            daemons.insert(role, spec);
        }
        Ok(daemons)
    }

    async fn start_sync_daemon(&self, role: SyncRole, spec: &SyncDaemonSpec) -> KernelResult<()> {
        let object = Object::SyncDaemon(role);
        self.ipvs()
            .await
            .map_err(ipvs_error(Operation::Create, object.clone()))?
            .start_daemon(&SyncDaemon::for_role(role, spec))
            .await
            .map_err(ipvs_error(Operation::Create, object))
    }

    async fn stop_sync_daemon(&self, role: SyncRole) -> KernelResult<()> {
        let Some(ipvs) = self.loaded_ipvs().await? else {
            // IPVS is not loaded: no daemon runs.
            return Err(DataplaneError::NotFound {
                operation: Operation::Delete,
                object: Object::SyncDaemon(role),
                errno: None,
            });
        };
        ipvs.stop_daemon(role)
            .await
            .map_err(ipvs_error(Operation::Delete, Object::SyncDaemon(role)))
    }

    async fn connection_counts(&self) -> KernelResult<BTreeMap<IpAddr, u64>> {
        connections::read(Path::new(connections::CONNECTION_TABLE)).await
    }

    async fn uplinks_of(&self, addresses: &BTreeSet<IpAddr>) -> KernelResult<BTreeMap<IpAddr, Vec<String>>> {
        interfaces::uplinks_of(&self.routes, addresses).await
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
        let uplinks = self
            .required_uplinks(address, interface, Operation::Probe)
            .await?;
        let probes = uplinks
            .iter()
            .map(|uplink| probe::claimants(uplink, address, wait));
        let mut claimants: Vec<[u8; 6]> = Vec::new();
        for found in futures::future::try_join_all(probes).await? {
            for mac in found {
                if !claimants.contains(&mac) && claimants.len() < probe::MAX_CLAIMANTS {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn service() -> Object {
        Object::Service(ServiceKey::Address {
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
        })
    }

    fn convert(error: IpvsError) -> DataplaneError {
        ipvs_error(Operation::Create, service())(error)
    }

    #[test]
    fn an_ipvs_refusal_keeps_its_errno_operation_and_object() {
        let context = || "creating service TCP 10.0.0.1:80".to_owned();
        let refused = convert(IpvsError::Kernel {
            context: context(),
            errno: 22,
        });
        assert_eq!(
            refused,
            DataplaneError::Refused {
                operation: Operation::Create,
                object: service(),
                errno: 22
            }
        );
        assert_eq!(refused.errno(), Some(22), "EINVAL");
        assert_eq!(
            refused.to_string(),
            "creating service TCP 10.0.0.1:80: refused by the kernel: Invalid argument (os error 22)"
        );

        let exists = convert(IpvsError::Kernel {
            context: context(),
            errno: 17,
        });
        assert_eq!(
            exists,
            DataplaneError::Exists {
                operation: Operation::Create,
                object: service()
            }
        );
        assert_eq!(exists.errno(), Some(17));
        let missing = convert(IpvsError::Kernel {
            context: context(),
            errno: 3,
        });
        assert!(
            matches!(missing, DataplaneError::NotFound { errno: Some(3), .. }),
            "ESRCH: {missing:?}"
        );

        let scheduler = convert(IpvsError::SchedulerUnavailable {
            context: context(),
            scheduler: "twos".into(),
        });
        assert_eq!(
            scheduler.to_string(),
            "creating service TCP 10.0.0.1:80: scheduler twos not available in this kernel (module ip_vs_twos)"
        );
        assert_eq!(scheduler.errno(), Some(2));

        let no_reply = convert(IpvsError::NoReply {
            context: context(),
            seconds: 5,
        });
        assert_eq!(
            no_reply.to_string(),
            "creating service TCP 10.0.0.1:80: no reply from the kernel within 5 s",
            "the operation is named once"
        );
        assert_eq!(no_reply.errno(), None);
        let socket = convert(IpvsError::Socket {
            context: context(),
            source: std::io::Error::from_raw_os_error(13),
        });
        assert_eq!(socket.errno(), Some(13), "EACCES from the socket: {socket:?}");
    }
}
