//! The pure derivation: one Service of ours, its EndpointSlices and the Nodes → the
//! VirtualServers (one per port) and RealServers (one per eligible node, port and family, or with
//! NAT and Tunnel one per ready endpoint and port) that serve it, owned by the Service, labelled,
//! named deterministically.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use lvs_api::labels::{DIRECTOR_ROLE, ROLE_ENABLED, SERVICE_NAME, SERVICE_PORT};
use lvs_api::{
    AddressFamily, DirectorsSpec, FailureAction, ForwardingMethod, ForwardingSpec, HealthCheckSpec,
    HealthCheckType, HttpCheckSpec, HttpStatusCode, PersistenceSpec, Protocol, RealServer, RealServerSpec,
    RealServerState, RealServersSpec, VirtualServer, VirtualServerSpec,
};
use serde::Serialize;

use super::ServiceOptions;
use super::pods::pod_targets;

/// Nodes carrying this label are left out of external load balancers (Kubernetes' own label).
const EXCLUDE_FROM_LOAD_BALANCERS: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// What one Service's derivation reads.
#[derive(Debug, Clone, Copy)]
pub struct Derivation<'a> {
    /// The Service (one of ours: see [`super::ServiceClass::is_ours`]).
    pub service: &'a Service,
    /// Its settings, parsed.
    pub options: &'a ServiceOptions,
    /// Its EndpointSlices (those labelled `kubernetes.io/service-name` with its name), any order.
    pub slices: &'a [&'a EndpointSlice],
    /// Every Node.
    pub nodes: &'a [&'a Node],
    /// The VIPs the Service holds — asked for, recorded in its status or picked by an earlier
    /// build — at most one per family. While one of its families has none, only the first port
    /// is derived (without that address) so the build picks the VIP every port then shares.
    pub vips: &'a [IpAddr],
}

/// The objects derived from one Service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    /// One per port (only the first while a VIP is still to be picked), in port order.
    pub virtual_servers: Vec<VirtualServer>,
    /// One per eligible node, port and family (direct routing) or per ready endpoint address and
    /// port (NAT, Tunnel), sorted by name.
    pub real_servers: Vec<RealServer>,
    /// Ports that cannot be served, each with where and why.
    pub problems: Vec<String>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PortKey {
    /// Its name, else its number: part of the generated objects' names.
    pub(super) key: String,
    /// Its name, empty when unnamed (as in its EndpointSlices' `ports`).
    pub(super) name: String,
    /// The Service port.
    pub(super) number: u16,
    /// Its protocol.
    pub(super) protocol: Protocol,
}

/// Where one RealServer sends: an address and port, on a node or none, and the part of its
/// name after `svc-<service>-<port>-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) address: IpAddr,
    pub(super) port: u16,
    pub(super) node: Option<String>,
    pub(super) part: String,
}

/// How `externalTrafficPolicy` routes a Service's external traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrafficPolicy {
    /// Any node forwards to any endpoint: every ready node is a real server.
    Cluster,
    /// A node serves only its own endpoints: only nodes with a ready local endpoint.
    Local,
}

/// Derives the objects serving `input.service`.
pub fn derive(input: Derivation<'_>) -> Derived {
    let service = input.service;
    let mut derived = Derived::default();
    let Some(spec) = &service.spec else {
        return derived;
    };
    let name = service.metadata.name.clone().unwrap_or_default();
    let families = families_of(spec.ip_families.as_deref(), input.vips);
    let vip_of = |family: AddressFamily| input.vips.iter().copied().find(|vip| family_of(*vip) == family);
    let complete = families.iter().all(|family| vip_of(*family).is_some());
    let policy = match spec.external_traffic_policy.as_deref() {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    };
    let health_check_port = spec
        .health_check_node_port
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port > 0);
    let options = input.options;
    let to_nodes = options.forwarding == ForwardingMethod::DirectRouting;
    let nodes = if to_nodes {
        real_server_nodes(input.nodes, input.slices, policy)
    } else {
        BTreeMap::new()
    };
    // What cloud load balancers check on a node: with Local, whether it has a ready local
    // endpoint (the Service's healthCheckNodePort); else whether kube-proxy, which delivers the
    // VIP's traffic there, is healthy. Nothing listens on a node's own address at the Service
    // port, so the VirtualServer's default TCP check would fail on every node. Pods are
    // checked the default way, on their own port.
    let default_check = match (to_nodes, policy, health_check_port) {
        (true, TrafficPolicy::Local, Some(port)) => Some(kube_proxy_health_check(port, "/")),
        (true, _, _) => Some(kube_proxy_health_check(KUBE_PROXY_HEALTH_PORT, "/healthz")),
        (false, _, _) => None,
    };

    let mut ports: Vec<PortKey> = Vec::new();
    for port in spec.ports.iter().flatten() {
        match parse_port(port) {
            Ok(parsed) => ports.push(parsed),
            Err(problem) => derived.problems.push(format!("Service {name}: {problem}")),
        }
    }
    if !complete {
        ports.truncate(1);
    }
    for port in ports {
        let key = port.key.clone();
        let labels = BTreeMap::from([
            (SERVICE_NAME.to_owned(), name.clone()),
            (SERVICE_PORT.to_owned(), key.clone()),
        ]);
        let known: Vec<IpAddr> = families.iter().filter_map(|family| vip_of(*family)).collect();
        let (address, addresses, family, wanted_families) = match (known.as_slice(), families.as_slice()) {
            ([one], [_]) => (Some(one.to_string()), None, None, None),
            ([_, _], _) => (
                None,
                Some(known.iter().map(ToString::to_string).collect()),
                None,
                None,
            ),
            ([one], _) => (Some(one.to_string()), None, None, Some(families.clone())),
            (_, [only]) => (None, None, Some(*only), None),
            _ => (None, None, None, Some(families.clone())),
        };
        let health_check = match options
            .health_check
            .as_ref()
            .map(|check| port_check(check, &port))
        {
            None => default_check.clone(),
            Some(Ok(check)) => Some(check),
            Some(Err(why)) => {
                derived
                    .problems
                    .push(format!("Service {name}: port {key}: {why}"));
                None
            }
        };
        let spec = VirtualServerSpec {
            address,
            addresses,
            families: wanted_families,
            address_pool: options.address_pool.clone(),
            port: Some(port.number),
            protocol: port.protocol,
            fwmark: None,
            fwmark_ports: None,
            family,
            scheduler: options.scheduler,
            scheduler_flags: None,
            one_packet: false,
            forwarding: ForwardingSpec {
                method: options.forwarding,
                tunnel: None,
            },
            persistence: options.persistence.map(|timeout_seconds| PersistenceSpec {
                timeout_seconds,
                netmask: None,
                prefix_length: None,
            }),
            directors: DirectorsSpec {
                node_selector: options.directors.clone(),
                ..DirectorsSpec::default()
            },
            real_servers: RealServersSpec {
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    match_expressions: None,
                },
                ..RealServersSpec::default()
            },
            health_check,
            on_failure: FailureAction::default(),
            fallback: None,
        };
        let mut virtual_server = VirtualServer::new(&format!("svc-{name}-{key}"), spec);
        virtual_server.metadata = metadata(
            service,
            virtual_server.metadata.name.clone(),
            &key,
            labels.clone(),
        );
        derived.virtual_servers.push(versioned(virtual_server));
        let targets = if to_nodes {
            node_targets(&nodes, port.number, &families)
        } else {
            let (targets, problems) = pod_targets(input.slices, &port, &families, options.forwarding);
            derived.problems.extend(
                problems
                    .into_iter()
                    .map(|problem| format!("Service {name}: port {key}: {problem}")),
            );
            targets
        };
        for target in targets {
            let object_name = format!("svc-{name}-{key}-{}", target.part);
            let spec = RealServerSpec {
                address: target.address.to_string(),
                port: Some(target.port),
                weight: 1,
                node: target.node,
                state: RealServerState::Active,
                thresholds: None,
            };
            let mut real_server = RealServer::new(&object_name, spec);
            real_server.metadata = metadata(
                service,
                Some(object_name.clone()),
                &format!("{key}/{}", target.part),
                labels.clone(),
            );
            derived.real_servers.push(versioned(real_server));
        }
    }
    derived
        .real_servers
        .sort_by(|one, other| one.metadata.name.cmp(&other.metadata.name));
    derived
}

/// The families the Service's VIPs are of: `spec.ipFamilies`, else those of its VIPs, else IPv4.
fn families_of(listed: Option<&[String]>, vips: &[IpAddr]) -> Vec<AddressFamily> {
    let mut families: Vec<AddressFamily> = listed
        .into_iter()
        .flatten()
        .filter_map(|family| match family.as_str() {
            "IPv4" => Some(AddressFamily::IPv4),
            "IPv6" => Some(AddressFamily::IPv6),
            _ => None,
        })
        .collect();
    if families.is_empty() {
        families = vips.iter().map(|vip| family_of(*vip)).collect();
    }
    if families.is_empty() {
        families.push(AddressFamily::IPv4);
    }
    families.sort_by_key(|family| *family == AddressFamily::IPv6);
    families.dedup();
    families
}

pub(super) fn family_of(address: IpAddr) -> AddressFamily {
    if address.is_ipv4() {
        AddressFamily::IPv4
    } else {
        AddressFamily::IPv6
    }
}

/// A port's key (its name, else its number), name, number and protocol.
fn parse_port(port: &ServicePort) -> Result<PortKey, String> {
    let number = u16::try_from(port.port)
        .ok()
        .filter(|number| *number > 0)
        .ok_or_else(|| format!("port {} is not a port number (1-65535)", port.port))?;
    let protocol = match port.protocol.as_deref() {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            return Err(format!(
                "port {number}: protocol {other:?} is not TCP, UDP or SCTP"
            ));
        }
    };
    let name = port.name.clone().unwrap_or_default();
    let key = if name.is_empty() {
        number.to_string()
    } else {
        name.clone()
    };
    Ok(PortKey {
        key,
        name,
        number,
        protocol,
    })
}

/// The Service's health check as one port gets it: a TCP, HTTP or HTTPS check without a port
/// of its own cannot probe a UDP or SCTP port (the port is then not checked).
fn port_check(check: &HealthCheckSpec, port: &PortKey) -> Result<HealthCheckSpec, String> {
    let over_tcp = match check.check_type {
        HealthCheckType::Tcp => Some("TCP"),
        HealthCheckType::Http => Some("HTTP"),
        HealthCheckType::Https => Some("HTTPS"),
        HealthCheckType::Dns | HealthCheckType::None => None,
    };
    if let Some(kind) = over_tcp
        && check.port.is_none()
        && port.protocol != Protocol::Tcp
    {
        return Err(format!(
            "a {kind} health check of a {} port needs a port of its own (e.g. {kind}:{}); this port is not checked",
            port.protocol.as_str(),
            port.number
        ));
    }
    Ok(check.clone())
}

/// kube-proxy's own health endpoint on every node (`--healthz-bind-address`, default
/// `0.0.0.0:10256`): `/healthz` answers 200 while its rules are in sync.
const KUBE_PROXY_HEALTH_PORT: u16 = 10256;

/// A check of a node through kube-proxy: HTTP 200 from `path` on `port` — the
/// `healthCheckNodePort` of `externalTrafficPolicy: Local` (200 while the node has a ready local
/// endpoint, 503 otherwise), or kube-proxy's own `/healthz` on 10256.
fn kube_proxy_health_check(port: u16, path: &str) -> HealthCheckSpec {
    HealthCheckSpec {
        check_type: HealthCheckType::Http,
        port: Some(port),
        http: Some(HttpCheckSpec {
            path: path.to_owned(),
            expected_statuses: vec![HttpStatusCode(200)],
            host: None,
            verify_certificate: false,
        }),
        ..HealthCheckSpec::default()
    }
}

/// Direct routing's targets: each node's InternalIP of each of `families`, on the Service port.
fn node_targets(nodes: &BTreeMap<String, Vec<IpAddr>>, port: u16, families: &[AddressFamily]) -> Vec<Target> {
    let mut targets = Vec::new();
    for (node, addresses) in nodes {
        for address in addresses {
            if families.contains(&family_of(*address)) {
                let suffix = if address.is_ipv6() { "-v6" } else { "" };
                targets.push(Target {
                    address: *address,
                    port,
                    node: Some(node.clone()),
                    part: format!("{node}{suffix}"),
                });
            }
        }
    }
    targets
}

/// Whether an endpoint is ready; an unknown readiness counts as ready.
pub(super) fn ready(endpoint: &Endpoint) -> bool {
    endpoint
        .conditions
        .as_ref()
        .and_then(|conditions| conditions.ready)
        .unwrap_or(true)
}

/// The real-server nodes, by name, with their InternalIPs: every eligible node when the
/// Service has a ready endpoint (Cluster), or the eligible nodes with a ready endpoint (Local).
/// Eligible: Ready, not a director (a director does not serve itself), not excluded from
/// external load balancers.
fn real_server_nodes(
    nodes: &[&Node],
    slices: &[&EndpointSlice],
    policy: TrafficPolicy,
) -> BTreeMap<String, Vec<IpAddr>> {
    let ready_endpoints: Vec<Option<&str>> = slices
        .iter()
        .flat_map(|slice| slice.endpoints.iter())
        .filter(|endpoint| ready(endpoint))
        .map(|endpoint| endpoint.node_name.as_deref())
        .collect();
    if ready_endpoints.is_empty() {
        return BTreeMap::new();
    }
    let local: BTreeSet<&str> = ready_endpoints.iter().flatten().copied().collect();
    nodes
        .iter()
        .filter(|node| eligible(node))
        .filter_map(|node| {
            let name = node.metadata.name.clone()?;
            if policy == TrafficPolicy::Local && !local.contains(name.as_str()) {
                return None;
            }
            let addresses: Vec<IpAddr> = internal_addresses(node);
            Some((name, addresses))
        })
        .collect()
}

fn eligible(node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|labels| labels.get(key)).map(String::as_str);
    let ready = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True");
    ready && label(DIRECTOR_ROLE) != Some(ROLE_ENABLED) && label(EXCLUDE_FROM_LOAD_BALANCERS).is_none()
}

/// The node's InternalIPs that parse, one per family (the first listed), IPv4 first.
fn internal_addresses(node: &Node) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    for listed in node
        .status
        .as_ref()
        .and_then(|status| status.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|address| address.type_ == "InternalIP")
    {
        if let Ok(address) = listed.address.parse::<IpAddr>()
            && !addresses.iter().any(|known| known.is_ipv4() == address.is_ipv4())
        {
            addresses.push(address);
        }
    }
    addresses.sort_by_key(IpAddr::is_ipv6);
    addresses
}

/// A generated object's metadata: in the Service's namespace, owned by it, created with it, and
/// with a uid of its own (`<service uid>/<part>`).
fn metadata(
    service: &Service,
    name: Option<String>,
    part: &str,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    let owner = OwnerReference {
        api_version: Service::api_version(&()).into_owned(),
        kind: Service::kind(&()).into_owned(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    ObjectMeta {
        name,
        namespace: service.metadata.namespace.clone(),
        uid: Some(format!(
            "{}/{part}",
            service.metadata.uid.as_deref().unwrap_or_default()
        )),
        generation: Some(1),
        creation_timestamp: service.metadata.creation_timestamp.clone(),
        labels: Some(labels),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    }
}

/// The object with a resourceVersion that changes exactly when its content does, so the
/// build's cache (which recognises objects by uid and resourceVersion) reuses what holds.
fn versioned<K: Resource + Serialize>(mut object: K) -> K {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&object)
        .unwrap_or_default()
        .hash(&mut hasher);
    object.meta_mut().resource_version = Some(format!("derived-{:016x}", hasher.finish()));
    object
}
