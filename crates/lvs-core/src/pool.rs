//! Address pools: the cluster admin's grants of VIPs, validated once into [`ValidPool`] and
//! indexed by [`Pools`] for the questions the build asks — which pools admit a namespace, which
//! pool holds an address, which networks a backend may be in.

pub mod allocate;
pub mod range;
pub mod special;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::{Selector, SelectorExt};
use lvs_api::{AddressPool, ForwardingMethod};

pub use range::AddressRange;

use crate::object::{Kind, ObjectKey};
use crate::problem::{Problem, ProblemSink};
use crate::validate::fields;

/// An AddressPool whose spec passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPool {
    /// The pool's name.
    pub name: String,
    /// Its addresses, in the order listed.
    pub ranges: Vec<AddressRange>,
    /// Whether VirtualServers without `address` may get one of its addresses.
    pub auto_assign: bool,
    /// Namespaces admitted by name.
    pub namespaces: BTreeSet<String>,
    /// Namespaces admitted by label.
    pub namespace_selector: Option<Selector>,
    /// Labels a director must carry to hold its VIPs.
    pub director_selector: BTreeMap<String, String>,
    /// Uplinks its VirtualServers may name (empty: any).
    pub interfaces: BTreeSet<String>,
    /// Forwarding methods allowed (empty: all).
    pub methods: Vec<ForwardingMethod>,
    /// Where real servers and fallbacks may be (empty: anywhere not refused otherwise).
    pub backend_networks: Vec<AddressRange>,
    /// Labels a real-server node must carry to be set up for its VIPs.
    pub real_server_node_selector: BTreeMap<String, String>,
    /// Whether RealServers may name a node that does not own their address.
    pub allow_pinning: bool,
}

impl ValidPool {
    /// The pool's object key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::cluster(Kind::AddressPool, &self.name)
    }

    /// Whether namespace `name` with `labels` may use the pool.
    pub fn admits(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.contains(name)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|selector| selector.matches(labels))
    }

    /// The entry holding `address`, if any.
    pub fn entry_holding(&self, address: IpAddr) -> Option<&AddressRange> {
        self.ranges.iter().find(|range| range.contains(address))
    }

    /// Whether the pool allows `method`.
    pub fn allows_method(&self, method: ForwardingMethod) -> bool {
        self.methods.is_empty() || self.methods.contains(&method)
    }

    /// How many addresses the pool holds (overlapping entries counted once each).
    pub fn total(&self) -> u128 {
        self.ranges
            .iter()
            .fold(0u128, |total, range| total.saturating_add(range.size()))
    }

    /// Whether `node_labels` satisfy the pool's director selector.
    pub fn admits_director(&self, node_labels: &BTreeMap<String, String>) -> bool {
        matches_labels(&self.director_selector, node_labels)
    }

    /// Whether `node_labels` satisfy the pool's real-server node selector.
    pub fn admits_real_server_node(&self, node_labels: &BTreeMap<String, String>) -> bool {
        matches_labels(&self.real_server_node_selector, node_labels)
    }

    /// The namespaces admitted, as one line for the NAMESPACES column.
    pub fn namespaces_summary(&self) -> String {
        let mut parts: Vec<String> = self.namespaces.iter().cloned().collect();
        match &self.namespace_selector {
            Some(selector) if selector.selects_all() => return "*".to_owned(),
            Some(selector) => parts.push(format!("selector({selector})")),
            None => {}
        }
        parts.join(",")
    }

    /// The addresses, as one line for the ADDRESSES column.
    pub fn addresses_summary(&self) -> String {
        self.ranges
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn matches_labels(wanted: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(label, value)| labels.get(label) == Some(value))
}

/// Validates one AddressPool.
pub fn validate_pool(object: &AddressPool) -> Result<ValidPool, Vec<Problem>> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let key = ObjectKey::cluster(Kind::AddressPool, &name);
    let mut sink = ProblemSink::new(&key);
    if name.is_empty() {
        sink.invalid("metadata.name", "is required");
    } else {
        fields::dns_subdomain(&mut sink, "metadata.name", &name);
    }
    let spec = &object.spec;
    if spec.addresses.is_empty() {
        sink.invalid("spec.addresses", "must list at least one CIDR, address or range");
    }
    let ranges = parse_entries(
        &mut sink,
        "spec.addresses",
        spec.addresses.iter().map(|a| &a.0),
        true,
    );
    for (index, range) in ranges.iter().enumerate() {
        for address in [range.first(), range.last()] {
            if let Some(what) = special::never_usable(address) {
                sink.invalid(
                    format!("spec.addresses[{index}]"),
                    format!("{range} holds {what} addresses, which can never be VIPs"),
                );
                break;
            }
        }
    }
    let backend_networks = parse_entries(
        &mut sink,
        "spec.backendNetworks",
        spec.backend_networks.iter().map(|n| &n.0),
        false,
    );
    for name in &spec.namespaces {
        fields::dns_label(&mut sink, "spec.namespaces", &name.0);
    }
    let namespace_selector = match spec
        .namespace_selector
        .clone()
        .map(Selector::try_from)
        .transpose()
    {
        Ok(selector) => selector,
        Err(error) => {
            sink.invalid(
                "spec.namespaceSelector",
                format!("is not a valid label selector: {error}"),
            );
            None
        }
    };
    if spec.namespaces.is_empty() && spec.namespace_selector.is_none() {
        sink.invalid(
            "spec.namespaces",
            "set namespaces, namespaceSelector or both: a pool admits no namespace by default (namespaceSelector: {} admits every namespace)",
        );
    }
    for (index, interface) in spec.directors.interfaces.iter().enumerate() {
        fields::interface_name(
            &mut sink,
            &format!("spec.directors.interfaces[{index}]"),
            &interface.0,
        );
    }
    if sink.has_errors() {
        return Err(sink.problems);
    }
    let mut methods = spec.forwarding_methods.clone();
    methods.sort();
    methods.dedup();
    Ok(ValidPool {
        name,
        ranges,
        auto_assign: spec.auto_assign,
        namespaces: spec.namespaces.iter().map(|name| name.0.clone()).collect(),
        namespace_selector,
        director_selector: spec.directors.node_selector.clone(),
        interfaces: spec
            .directors
            .interfaces
            .iter()
            .map(|name| name.0.clone())
            .collect(),
        methods,
        backend_networks,
        real_server_node_selector: spec.real_server_nodes.node_selector.clone(),
        allow_pinning: spec.real_server_nodes.allow_pinning,
    })
}

fn parse_entries<'a>(
    sink: &mut ProblemSink<'_>,
    field: &str,
    entries: impl Iterator<Item = &'a String>,
    ranges_allowed: bool,
) -> Vec<AddressRange> {
    entries
        .enumerate()
        .filter_map(|(index, text)| {
            let parsed = if ranges_allowed {
                AddressRange::parse(text)
            } else {
                AddressRange::parse_network(text)
            };
            parsed
                .map_err(|error| sink.invalid(format!("{field}[{index}]"), error))
                .ok()
        })
        .collect()
}

/// Every valid pool plus the namespaces' labels: what admission asks about.
#[derive(Debug, Clone, Default)]
pub struct Pools {
    /// Valid pools by name.
    pools: BTreeMap<String, Arc<ValidPool>>,
    /// Each known namespace's labels; namespaces not listed have none.
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Pools {
    /// Indexes the valid pools and the namespaces.
    pub fn new<'n>(
        pools: impl IntoIterator<Item = ValidPool>,
        namespaces: impl IntoIterator<Item = &'n Namespace>,
    ) -> Self {
        Self {
            pools: pools
                .into_iter()
                .map(|pool| (pool.name.clone(), Arc::new(pool)))
                .collect(),
            namespace_labels: namespaces
                .into_iter()
                .filter_map(|namespace| {
                    let name = namespace.metadata.name.clone()?;
                    Some((name, namespace.metadata.labels.clone().unwrap_or_default()))
                })
                .collect(),
        }
    }

    /// The valid pool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ValidPool>> {
        self.pools.get(name)
    }

    /// Every valid pool, by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ValidPool>> {
        self.pools.values()
    }

    /// Whether `pool` admits `namespace`.
    pub fn admits(&self, pool: &ValidPool, namespace: &str) -> bool {
        const NO_LABELS: &BTreeMap<String, String> = &BTreeMap::new();
        let labels = self.namespace_labels.get(namespace).unwrap_or(NO_LABELS);
        pool.admits(namespace, labels)
    }

    /// The pools admitting `namespace`, by name.
    pub fn admitting<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Arc<ValidPool>> + 'a {
        self.pools
            .values()
            .filter(move |pool| self.admits(pool, namespace))
    }
}
