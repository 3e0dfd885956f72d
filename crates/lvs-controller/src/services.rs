//! Services of our class: each pass derives their VirtualServers and RealServers
//! (`lvs_core::service`), keeps the VIPs they hold stable (asked for, recorded in
//! `status.loadBalancer.ingress`, or picked by this pass's build), mirrors the generated objects
//! into the API ([`mirror`]: owned by the Service, labelled `lvs.operator.io/service`, so that
//! `kubectl get vs -A` shows them and they get statuses), and afterwards writes the Services'
//! ingress and `lvs.operator.io/VIPReady` condition ([`status`]) with Events. The build uses the
//! derived objects themselves: stored objects carrying the generated label (or a generated
//! object's name) are left out of it, so no one can join or shadow a Service's VIP; only the
//! stored copies the Service controls get their status written.

mod mirror;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::ObjectMeta;
use kube::{Client, Resource};
use lvs_api::conditions::types;
use lvs_api::{RealServer, VirtualServer};
use lvs_core::BuildOutput;
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::service::{Derivation, ServiceClass, ServiceOptions, derive, is_generated_label};
use tokio::sync::watch;

pub use mirror::{MirrorSummary, controlling_service};
use status::Wrote;
pub use status::{ConditionChange, status_patch, vip_ready};

use crate::events::Notice;
use crate::reconcile::ReconcileError;
use crate::watch::Snapshot;

/// The label EndpointSlices name their Service by.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Event reason: a Service annotation (or loadBalancerIP) cannot be used.
pub const INVALID_SETTING: &str = "InvalidServiceSetting";
/// Event reason: the Service's VIP is allocated and written to its status.
pub const VIP_ALLOCATED: &str = "VIPAllocated";
/// Event reason: the Service cannot get a VIP (no admitting pool, pool exhausted, conflict).
pub const VIP_REFUSED: &str = "VIPRefused";
/// Event reason: the Service's VIP is released (no longer a LoadBalancer of our class).
pub const VIP_RELEASED: &str = "VIPReleased";
/// Event reason: a director holds the Service's VIP now (its `VIPReady` condition turned True).
pub const VIP_READY: &str = "VIPReady";
/// Event reason: an object the Service does not control holds a generated object's name.
pub const NAME_TAKEN: &str = "GeneratedNameTaken";

/// One Service of ours in this pass.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The Service, for Events.
    pub reference: ObjectReference,
    /// The VirtualServer of its first port (whose outcome holds the VIP), once derived.
    pub first: Option<ObjectKey>,
    /// Whether every family of the Service had a VIP when deriving (else only the first port
    /// was derived, to have the build pick).
    pub complete: bool,
    /// The VIPs in its `status.loadBalancer.ingress`.
    pub recorded: Vec<IpAddr>,
    /// Its settings that cannot be used, as Event notes.
    pub invalid: Vec<String>,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// Its `lvs.operator.io/VIPReady` condition, as stored.
    pub condition: Option<Condition>,
}

/// What this pass derived from the Services.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// Every generated VirtualServer.
    pub virtual_servers: Vec<VirtualServer>,
    /// Every generated RealServer.
    pub real_servers: Vec<RealServer>,
    /// Each Service of ours by `namespace/name`.
    pub services: BTreeMap<String, Entry>,
    /// The keys of the generated objects, by name (so that asking about a user-made object
    /// builds no key: every pass asks about each of tens of thousands).
    keys: BTreeMap<String, Vec<ObjectKey>>,
    /// The keys of the generated objects with the uid of the Service each is derived from.
    owners: BTreeSet<(ObjectKey, String)>,
}

impl Generated {
    /// Whether a stored object must be left out of the build (the derived object stands in for
    /// it): it carries the generated label, or has a generated object's name.
    pub fn excludes(&self, kind: Kind, metadata: &ObjectMeta) -> bool {
        is_generated_label(metadata.labels.as_ref())
            || metadata
                .name
                .as_deref()
                .and_then(|name| self.keys.get(name))
                .is_some_and(|keys| {
                    let namespace = metadata
                        .namespace
                        .as_deref()
                        .filter(|namespace| !namespace.is_empty());
                    keys.iter()
                        .any(|key| key.kind == kind && key.namespace == namespace.unwrap_or("default"))
                })
    }

    /// Whether a stored object is the mirror of a generated one: its name is generated and the
    /// Service it is derived from controls it.
    pub fn mirrors(&self, kind: Kind, metadata: &ObjectMeta) -> bool {
        controlling_service(metadata)
            .is_some_and(|uid| self.owners.contains(&(key_of(kind, metadata), uid.to_owned())))
    }

    /// Whether a stored object's status is the controller's to write: a user's object, or the
    /// mirror of a generated one — not an impostor carrying the label or a generated name.
    pub fn writes_status(&self, kind: Kind, metadata: &ObjectMeta) -> bool {
        !self.excludes(kind, metadata) || self.mirrors(kind, metadata)
    }
}

/// What a pass found, for the Services' statuses and Events.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    /// The stores.
    pub snapshot: &'a Snapshot,
    /// What was derived from the Services.
    pub generated: &'a Generated,
    /// The build.
    pub output: &'a BuildOutput,
    /// How each accepted VirtualServer is served (its directors' reports).
    pub served: &'a BTreeMap<ObjectKey, crate::status::Service>,
    /// The director Events (takeover, none left) of the VirtualServers whose status this pass
    /// wrote, by VirtualServer: a Service gets those of its first port.
    pub takeovers: &'a BTreeMap<ObjectKey, Vec<Notice>>,
}

/// What outlives a pass: settings last in force, VIPs picked but not yet seen in a status, and
/// what was written and reported.
#[derive(Debug, Default)]
pub struct Services {
    class: ServiceClass,
    options: BTreeMap<String, ServiceOptions>,
    picked: BTreeMap<String, Vec<IpAddr>>,
    /// The status last written, by Service. A Service whose written ingress or condition is not
    /// yet released, or whose stored status holds the condition, has both cleared once it stops
    /// being ours.
    written: BTreeMap<String, Wrote>,
    /// (Service, note) of the Warning Events already published.
    reported: BTreeSet<(String, String)>,
    /// The generated objects in the API.
    mirror: mirror::Mirror,
    /// (Service, note) for each generated name held by someone else's object, from the last
    /// mirroring.
    taken: Vec<(String, String)>,
}

/// The VIPs in a Service's `status.loadBalancer.ingress`, at most one per family.
fn recorded(service: &Service) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    let ingress = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_ref());
    for entry in ingress.into_iter().flatten() {
        if let Some(address) = entry.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok())
            && !addresses.iter().any(|known| known.is_ipv4() == address.is_ipv4())
        {
            addresses.push(address);
        }
    }
    addresses.sort_by_key(IpAddr::is_ipv6);
    addresses
}

/// A Service's `lvs.operator.io/VIPReady` condition, as stored.
fn stored_condition(service: &Service) -> Option<&Condition> {
    service
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|condition| condition.type_ == types::VIP_READY)
        })
}

/// `first`, then those of `more` of a family `first` lacks; IPv4 first.
fn merged(first: &[IpAddr], more: &[IpAddr]) -> Vec<IpAddr> {
    let mut addresses = first.to_vec();
    for address in more {
        if !addresses.iter().any(|known| known.is_ipv4() == address.is_ipv4()) {
            addresses.push(*address);
        }
    }
    addresses.sort_by_key(IpAddr::is_ipv6);
    addresses
}

impl Services {
    /// Serving the Services `class` selects.
    pub fn new(class: ServiceClass) -> Self {
        Self {
            class,
            ..Self::default()
        }
    }

    /// Derives the objects of every Service of ours in `snapshot`.
    pub fn derive(&mut self, snapshot: &Snapshot) -> Generated {
        let nodes = snapshot.nodes.refs();
        let mut slices: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in &snapshot.endpoint_slices {
            let owner = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(SERVICE_NAME_LABEL));
            if let (Some(namespace), Some(owner)) = (slice.metadata.namespace.as_deref(), owner) {
                slices.entry((namespace, owner.as_str())).or_default().push(slice);
            }
        }
        let mut generated = Generated::default();
        let mut options = BTreeMap::new();
        for service in snapshot
            .services
            .iter()
            .filter(|service| self.class.is_ours(service))
        {
            let key = key_of(Kind::VirtualServer, &service.metadata).qualified_name();
            let (parsed, errors) = ServiceOptions::parse(service, self.options.get(&key));
            let recorded = recorded(service);
            let vips = if parsed.addresses.is_empty() {
                merged(&recorded, self.picked.get(&key).map_or(&[][..], Vec::as_slice))
            } else {
                parsed.addresses.clone()
            };
            let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
            let name = service.metadata.name.as_deref().unwrap_or_default();
            let own_slices = slices.get(&(namespace, name)).map_or(&[][..], Vec::as_slice);
            let derived = derive(Derivation {
                service,
                options: &parsed,
                slices: own_slices,
                nodes: &nodes,
                vips: &vips,
            });
            let ports = service
                .spec
                .as_ref()
                .and_then(|spec| spec.ports.as_ref())
                .map_or(0, Vec::len);
            let first = derived
                .virtual_servers
                .first()
                .map(|object| key_of(Kind::VirtualServer, &object.metadata));
            let mut invalid: Vec<String> = errors.iter().map(ToString::to_string).collect();
            invalid.extend(derived.problems.iter().cloned());
            let uid = service.metadata.uid.clone().unwrap_or_default();
            let keys = derived
                .virtual_servers
                .iter()
                .map(|object| key_of(Kind::VirtualServer, &object.metadata))
                .chain(
                    derived
                        .real_servers
                        .iter()
                        .map(|object| key_of(Kind::RealServer, &object.metadata)),
                );
            for key in keys {
                generated
                    .keys
                    .entry(key.name.clone())
                    .or_default()
                    .push(key.clone());
                generated.owners.insert((key, uid.clone()));
            }
            generated.services.insert(
                key.clone(),
                Entry {
                    reference: reference_of(service),
                    first,
                    complete: derived.virtual_servers.len() == ports || ports <= 1,
                    recorded,
                    invalid,
                    generation: service.metadata.generation,
                    condition: stored_condition(service).cloned(),
                },
            );
            generated.virtual_servers.extend(derived.virtual_servers);
            generated.real_servers.extend(derived.real_servers);
            options.insert(key, parsed);
        }
        self.options = options;
        self.picked.retain(|key, _| generated.services.contains_key(key));
        generated
    }

    /// Forgets which ingress was written (on resync and on gaining leadership: trust the
    /// stores).
    pub fn forget(&mut self) {
        for wrote in self.written.values_mut() {
            wrote.version = None;
        }
        self.mirror.forget();
    }

    /// Brings the generated objects stored in the API to those `generated` holds (created,
    /// updated, deleted), writing only while `leader` holds; remembers which generated names
    /// someone else's objects hold, for [`write`](Self::write) to report.
    pub async fn mirror(
        &mut self,
        client: &Client,
        snapshot: &Snapshot,
        generated: &Generated,
        leader: &watch::Receiver<bool>,
    ) -> Result<MirrorSummary, ReconcileError> {
        // Only those carrying the generated label or a generated name can be written or deleted.
        let stored_virtual: Vec<&VirtualServer> = snapshot
            .virtual_servers
            .iter()
            .filter(|object| generated.excludes(Kind::VirtualServer, &object.metadata))
            .collect();
        let stored_real: Vec<&RealServer> = snapshot
            .real_servers
            .iter()
            .filter(|object| generated.excludes(Kind::RealServer, &object.metadata))
            .collect();
        let mut summary = self
            .mirror
            .write(
                client,
                (&generated.virtual_servers, &generated.real_servers),
                (&stored_virtual, &stored_real),
                leader,
            )
            .await?;
        self.taken = std::mem::take(&mut summary.taken);
        Ok(summary)
    }

    /// Records the VIPs `output` picked for Services that had none; returns whether a Service
    /// now has more VIPs than it was derived with (derive and build again, so that every port
    /// shares them in this same pass).
    pub fn record_picks(&mut self, generated: &Generated, output: &BuildOutput) -> bool {
        let mut more = false;
        for (key, entry) in &generated.services {
            let Some(vips) = vips_of(entry, output) else {
                continue;
            };
            if entry.recorded != vips && self.picked.get(key) != Some(&vips) {
                self.picked.insert(key.clone(), vips);
                more |= !entry.complete;
            }
        }
        more
    }
}

fn warning(reason: &str, action: &'static str, note: &str) -> Notice {
    Notice {
        warning: true,
        reason: reason.to_owned(),
        action,
        note: note.to_owned(),
    }
}

/// The VIPs the build gave a Service's first port, IPv4 first; `None` when it has none.
fn vips_of(entry: &Entry, output: &BuildOutput) -> Option<Vec<IpAddr>> {
    let outcome = output.virtual_servers.get(entry.first.as_ref()?)?;
    if !outcome.accepted || outcome.addresses.is_empty() {
        return None;
    }
    let mut vips: Vec<IpAddr> = outcome.addresses.iter().map(|(address, _)| *address).collect();
    vips.sort_by_key(IpAddr::is_ipv6);
    Some(vips)
}

/// The Service's reference, with its resourceVersion (kube leaves it out).
fn reference_of(service: &Service) -> ObjectReference {
    let mut reference = service.object_ref(&());
    reference.resource_version = service.metadata.resource_version.clone();
    reference
}
