//! Services of our class: each pass derives their VirtualServers and RealServers
//! (`lvs_core::service`), keeps the VIPs they hold stable (asked for, recorded in
//! `status.loadBalancer.ingress`, or picked by this pass's build), and afterwards writes the
//! Services' ingress and Events. Generated objects live only in memory: they go into the build
//! next to the user's objects, and user-made objects carrying the generated label (or a
//! generated object's name) are left out, so no one can join or shadow a Service's VIP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::core::ObjectMeta;
use kube::{Api, Client, Resource};
use lvs_api::{RealServer, VirtualServer};
use lvs_core::BuildOutput;
use lvs_core::object::{Kind, ObjectKey, key_of};
use lvs_core::service::{Derivation, ServiceClass, ServiceOptions, derive, is_generated_label};
use serde_json::json;

use crate::events::{Notice, Publisher};
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
}

impl Generated {
    /// Whether a user-made object must be left out of the build: it carries the generated
    /// label, or has a generated object's name.
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
}

/// What outlives a pass: settings last in force, VIPs picked but not yet seen in a status, and
/// what was written and reported.
#[derive(Debug, Default)]
pub struct Services {
    class: ServiceClass,
    options: BTreeMap<String, ServiceOptions>,
    picked: BTreeMap<String, Vec<IpAddr>>,
    /// The ingress last written, by Service, with the resourceVersion it replaced (`None` after
    /// a resync): while the store still holds that version, the write is not repeated. A
    /// Service listed here that stops being ours has its ingress cleared.
    written: BTreeMap<String, (Vec<IpAddr>, Option<String>)>,
    /// (Service, note) of the Warning Events already published.
    reported: BTreeSet<(String, String)>,
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
                generated.keys.entry(key.name.clone()).or_default().push(key);
            }
            generated.services.insert(
                key.clone(),
                Entry {
                    reference: reference_of(service),
                    first,
                    complete: derived.virtual_servers.len() == ports || ports <= 1,
                    recorded,
                    invalid,
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
        for (_, version) in self.written.values_mut() {
            *version = None;
        }
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

    /// Writes each Service's `status.loadBalancer.ingress` where it differs from its VIPs
    /// (cleared for Services no longer ours that this controller wrote), with Events. Returns
    /// (statuses written, Events published, failures as messages).
    pub async fn write(
        &mut self,
        client: &Client,
        publisher: &Publisher,
        snapshot: &Snapshot,
        generated: &Generated,
        output: &BuildOutput,
    ) -> (usize, usize, Vec<String>) {
        let (mut statuses, mut events, mut failures) = (0, 0, Vec::new());
        let mut notices: Vec<(ObjectReference, Notice)> = Vec::new();
        let mut patches: Vec<(String, ObjectReference, Vec<IpAddr>)> = Vec::new();
        for (key, entry) in &generated.services {
            for note in &entry.invalid {
                if self.reported.insert((key.clone(), note.clone())) {
                    notices.push((
                        entry.reference.clone(),
                        warning(INVALID_SETTING, "Validate", note),
                    ));
                }
            }
            let vips = vips_of(entry, output).unwrap_or_default();
            if let Some(refusal) = entry
                .first
                .as_ref()
                .and_then(|first| output.virtual_servers.get(first))
                .filter(|outcome| !outcome.accepted)
                && self.reported.insert((key.clone(), refusal.message.clone()))
            {
                notices.push((
                    entry.reference.clone(),
                    warning(VIP_REFUSED, "Allocate", &refusal.message),
                ));
            }
            // Written and not yet seen in the store: not again (a resync forgets this).
            let pending = self.written.get(key).is_some_and(|(written, version)| {
                *written == vips && version.is_some() && *version == entry.reference.resource_version
            });
            if entry.recorded != vips && !pending {
                patches.push((key.clone(), entry.reference.clone(), vips));
            }
        }
        for service in &snapshot.services {
            let key = key_of(Kind::VirtualServer, &service.metadata).qualified_name();
            if !generated.services.contains_key(&key)
                && self.written.contains_key(&key)
                && !recorded(service).is_empty()
            {
                patches.push((key, reference_of(service), Vec::new()));
            }
        }
        let present: BTreeSet<String> = snapshot
            .services
            .iter()
            .map(|service| key_of(Kind::VirtualServer, &service.metadata).qualified_name())
            .collect();
        self.written.retain(|key, _| present.contains(key));
        self.reported
            .retain(|(key, _)| generated.services.contains_key(key));
        for (key, reference, vips) in patches {
            let api: Api<Service> =
                Api::namespaced(client.clone(), reference.namespace.as_deref().unwrap_or_default());
            let ingress: Vec<serde_json::Value> = vips
                .iter()
                .map(|vip| json!({ "ip": vip.to_string(), "ipMode": "VIP" }))
                .collect();
            let patch = json!({ "status": { "loadBalancer": { "ingress": ingress } } });
            let name = reference.name.clone().unwrap_or_default();
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    statuses += 1;
                    let listed: Vec<String> = vips.iter().map(ToString::to_string).collect();
                    let notice = if vips.is_empty() {
                        self.written.remove(&key);
                        Notice {
                            warning: false,
                            reason: VIP_RELEASED.to_owned(),
                            action: "Release",
                            note: "the Service's VIP is released".to_owned(),
                        }
                    } else {
                        self.written
                            .insert(key, (vips, reference.resource_version.clone()));
                        Notice {
                            warning: false,
                            reason: VIP_ALLOCATED.to_owned(),
                            action: "Allocate",
                            note: format!("VIP {} (ipMode VIP)", listed.join(", ")),
                        }
                    };
                    notices.push((reference, notice));
                }
                Err(error) if matches!(&error, kube::Error::Api(status) if status.code == 404) => {}
                Err(error) => failures.push(format!("writing the status of Service {key}: {error}")),
            }
        }
        for (reference, notice) in notices {
            match publisher.publish(&notice, &reference).await {
                Ok(()) => events += 1,
                Err(error) => tracing::warn!(%error, reason = %notice.reason, "cannot publish an Event"),
            }
        }
        (statuses, events, failures)
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
