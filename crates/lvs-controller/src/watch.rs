//! Fetch: reflector stores of AddressPools, Namespaces, VirtualServers, RealServers, Nodes,
//! Services, EndpointSlices and the controller's own LvsNodeConfigs, each fed by a watch that survives objects it cannot deserialize (kube's
//! [`DeserializeGuard`]: such an object is kept aside and reported, the others flow on), and the
//! stream of changes that triggers the global reconcile.

use std::fmt;
use std::sync::Arc;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use kube::{Api, Client, Resource, ResourceExt};
use lvs_api::labels::NODE_NAME;
use lvs_api::{AddressPool, LvsNodeConfig, RealServer, VirtualServer};
use serde::de::DeserializeOwned;

/// A watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Watched {
    /// AddressPools (cluster-scoped).
    AddressPools,
    /// Namespaces (their labels, for the pools' namespace selectors).
    Namespaces,
    /// VirtualServers in every namespace.
    VirtualServers,
    /// RealServers in every namespace.
    RealServers,
    /// Nodes.
    Nodes,
    /// LvsNodeConfigs carrying the `lvs.operator.io/node` label (the controller's own).
    NodeConfigs,
    /// Services in every namespace (only LoadBalancers of our class are used).
    Services,
    /// EndpointSlices in every namespace (those of our Services are used).
    EndpointSlices,
}

impl Watched {
    /// Every watched kind.
    pub const ALL: [Self; 8] = [
        Self::AddressPools,
        Self::Namespaces,
        Self::VirtualServers,
        Self::RealServers,
        Self::Nodes,
        Self::NodeConfigs,
        Self::Services,
        Self::EndpointSlices,
    ];

    /// The kind's name as Kubernetes spells it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::AddressPools => "AddressPool",
            Self::Namespaces => "Namespace",
            Self::VirtualServers => "VirtualServer",
            Self::RealServers => "RealServer",
            Self::Nodes => "Node",
            Self::NodeConfigs => "LvsNodeConfig",
            Self::Services => "Service",
            Self::EndpointSlices => "EndpointSlice",
        }
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.kind())
    }
}

/// What a watch reports to the reconcile loop.
#[derive(Debug)]
pub enum Change {
    /// The first complete listing (or a relisting) is in the store.
    Listed(Watched),
    /// An object was added, changed or deleted.
    Changed(Watched),
    /// The watch failed; it backs off and retries by itself.
    Failed(Watched, watcher::Error),
}

/// The stores the reconcile reads.
#[derive(Clone)]
pub struct Stores {
    pools: Store<DeserializeGuard<AddressPool>>,
    namespaces: Store<DeserializeGuard<Namespace>>,
    virtual_servers: Store<DeserializeGuard<VirtualServer>>,
    real_servers: Store<DeserializeGuard<RealServer>>,
    nodes: Store<DeserializeGuard<Node>>,
    node_configs: Store<DeserializeGuard<LvsNodeConfig>>,
    services: Store<DeserializeGuard<Service>>,
    endpoint_slices: Store<DeserializeGuard<EndpointSlice>>,
}

/// An object the controller cannot read: its watch carries on without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// Its kind.
    pub kind: Watched,
    /// Its reference, for Events.
    pub reference: k8s_openapi::api::core::v1::ObjectReference,
    /// Why it cannot be read.
    pub error: String,
}

impl Unreadable {
    /// `namespace/name` (or `name`).
    pub fn name(&self) -> String {
        match &self.reference.namespace {
            Some(namespace) => format!(
                "{namespace}/{}",
                self.reference.name.as_deref().unwrap_or_default()
            ),
            None => self.reference.name.clone().unwrap_or_default(),
        }
    }
}

/// The readable objects of one kind at one moment, shared with the store (not copied: an
/// estate's objects are tens of megabytes), sorted by namespace and name.
#[derive(Debug)]
pub struct Shared<K>(Vec<Arc<DeserializeGuard<K>>>);

impl<K> Default for Shared<K> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K> Shared<K> {
    /// The objects, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.0.iter().filter_map(|object| object.0.as_ref().ok())
    }

    /// References to the objects, sorted (for [`lvs_core::Objects`]).
    pub fn refs(&self) -> Vec<&K> {
        self.iter().collect()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a, K> IntoIterator for &'a Shared<K> {
    type Item = &'a K;
    type IntoIter = Box<dyn Iterator<Item = &'a K> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Everything in the stores at one moment, sorted by namespace and name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every readable AddressPool.
    pub pools: Shared<AddressPool>,
    /// Every readable Namespace.
    pub namespaces: Shared<Namespace>,
    /// Every readable VirtualServer.
    pub virtual_servers: Shared<VirtualServer>,
    /// Every readable RealServer.
    pub real_servers: Shared<RealServer>,
    /// Every readable Node.
    pub nodes: Shared<Node>,
    /// Every readable LvsNodeConfig of ours.
    pub node_configs: Shared<LvsNodeConfig>,
    /// Every readable Service (of any type and class: the reconcile picks ours).
    pub services: Shared<Service>,
    /// Every readable EndpointSlice.
    pub endpoint_slices: Shared<EndpointSlice>,
    /// Objects that failed to deserialize.
    pub unreadable: Vec<Unreadable>,
}

impl Stores {
    /// What the stores hold now.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.pools = split(&self.pools, Watched::AddressPools, &mut snapshot);
        snapshot.namespaces = split(&self.namespaces, Watched::Namespaces, &mut snapshot);
        snapshot.virtual_servers = split(&self.virtual_servers, Watched::VirtualServers, &mut snapshot);
        snapshot.real_servers = split(&self.real_servers, Watched::RealServers, &mut snapshot);
        snapshot.nodes = split(&self.nodes, Watched::Nodes, &mut snapshot);
        snapshot.node_configs = split(&self.node_configs, Watched::NodeConfigs, &mut snapshot);
        snapshot.services = split(&self.services, Watched::Services, &mut snapshot);
        snapshot.endpoint_slices = split(&self.endpoint_slices, Watched::EndpointSlices, &mut snapshot);
        snapshot
    }
}

/// The readable objects of one store, sorted; the unreadable ones go to `snapshot.unreadable`.
fn split<K>(store: &Store<DeserializeGuard<K>>, kind: Watched, snapshot: &mut Snapshot) -> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let state = store.state();
    // Sorted by keys gathered once: comparing through each object's Arc and metadata chased
    // pointers 20,000 × log times (most of a pass's snapshot time).
    let mut keyed: Vec<(Option<&str>, Option<&str>, usize)> = state
        .iter()
        .enumerate()
        .map(|(index, object)| {
            (
                object.meta().namespace.as_deref(),
                object.meta().name.as_deref(),
                index,
            )
        })
        .collect();
    keyed.sort_unstable();
    let mut readable = Vec::with_capacity(state.len());
    for object in keyed.into_iter().map(|(_, _, index)| &state[index]) {
        let object = Arc::clone(object);
        match &object.0 {
            Ok(_) => readable.push(object),
            Err(invalid) => {
                let mut reference = object.object_ref(&());
                reference.resource_version = invalid.metadata.resource_version.clone();
                snapshot.unreadable.push(Unreadable {
                    kind,
                    reference,
                    error: invalid.error.clone(),
                });
            }
        }
    }
    snapshot
        .unreadable
        .sort_by_key(|object| (object.kind, object.name()));
    Shared(readable)
}

/// Starts the eight watches: returns their stores and the merged stream of changes, which must
/// be polled for the stores to fill.
pub fn watch(client: &Client) -> (Stores, BoxStream<'static, Change>) {
    let (pools, pool_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::AddressPools,
        |_| {},
    );
    let (namespaces, namespace_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::Namespaces,
        slim_namespace,
    );
    let (virtual_servers, virtual_server_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::VirtualServers,
        |_| {},
    );
    let (real_servers, real_server_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::RealServers,
        |_| {},
    );
    let (nodes, node_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::Nodes,
        slim_node,
    );
    let (node_configs, node_config_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default().labels(NODE_NAME),
        Watched::NodeConfigs,
        |_| {},
    );
    let (services, service_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::Services,
        |_| {},
    );
    let (endpoint_slices, endpoint_slice_changes) = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        Watched::EndpointSlices,
        |_| {},
    );
    let changes = stream::select_all([
        pool_changes,
        namespace_changes,
        virtual_server_changes,
        real_server_changes,
        node_changes,
        node_config_changes,
        service_changes,
        endpoint_slice_changes,
    ])
    .boxed();
    (
        Stores {
            pools,
            namespaces,
            virtual_servers,
            real_servers,
            nodes,
            node_configs,
            services,
            endpoint_slices,
        },
        changes,
    )
}

/// Namespaces: the build reads only their names and labels.
fn slim_namespace(namespace: &mut DeserializeGuard<Namespace>) {
    if let Ok(namespace) = &mut namespace.0 {
        namespace.metadata.annotations = None;
        namespace.spec = None;
        namespace.status = None;
    }
}

/// Nodes are large; the build reads only their names, labels, addresses and (for Services'
/// real servers) the Ready condition.
fn slim_node(node: &mut DeserializeGuard<Node>) {
    if let Ok(node) = &mut node.0
        && let Some(status) = &mut node.status
    {
        status.images = None;
        if let Some(conditions) = &mut status.conditions {
            conditions.retain(|condition| condition.type_ == "Ready");
            for condition in conditions.iter_mut() {
                // Heartbeats would make every Node differ on every update for nothing.
                condition.last_heartbeat_time = None;
            }
        }
        status.volumes_attached = None;
        status.volumes_in_use = None;
    }
}

/// One watch into one store, as a stream of changes.
fn reflect<K>(
    api: Api<DeserializeGuard<K>>,
    config: watcher::Config,
    kind: Watched,
    mut slim: impl FnMut(&mut DeserializeGuard<K>) + Send + 'static,
) -> (Store<DeserializeGuard<K>>, BoxStream<'static, Change>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let changes = watcher(api, config)
        .default_backoff()
        .modify(move |object: &mut DeserializeGuard<K>| {
            object.managed_fields_mut().clear();
            slim(object);
        })
        .reflect(writer)
        .filter_map(move |event| std::future::ready(change(kind, event)));
    (reader, boxed(changes))
}

fn boxed(changes: impl Stream<Item = Change> + Send + 'static) -> BoxStream<'static, Change> {
    changes.boxed()
}

fn change<K>(kind: Watched, event: Result<Event<K>, watcher::Error>) -> Option<Change> {
    match event {
        // The store swaps in a relisting only at InitDone.
        Ok(Event::Init | Event::InitApply(_)) => None,
        Ok(Event::InitDone) => Some(Change::Listed(kind)),
        Ok(Event::Apply(_) | Event::Delete(_)) => Some(Change::Changed(kind)),
        Err(error) => Some(Change::Failed(kind, error)),
    }
}
