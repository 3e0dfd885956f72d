//! Selecting real servers for each accepted VirtualServer: label selection within the namespace,
//! then the pair checks (port remap, address family, a director serving itself, the pool's
//! backend networks and pinning rule) and placement (only on the pool's real-server nodes).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use kube::core::SelectorExt;
use lvs_api::{Destination, ForwardingMethod, RealServer, RealServerState, conditions::reasons};

use super::admit::{Admission, backend_refusal};
use super::candidates::Candidates;
use super::{BuildOutput, RealServerOutcome};
use crate::object::ObjectKey;
use crate::problem::Problem;
use crate::roles::{NodeIndex, Placement};
use crate::validate::{ValidRealServer, ValidVirtualServer, family_of, real_server};

/// A real server that passed validation (shared with the build cache), with where it runs.
#[derive(Debug, Clone)]
pub(super) struct PlacedRealServer {
    pub(super) spec: Arc<ValidRealServer>,
    pub(super) placement: Placement,
}

/// One real server chosen for one VirtualServer.
#[derive(Debug, Clone)]
pub(super) struct Selected {
    pub(super) destination: Option<Destination>,
    pub(super) placement: Placement,
}

/// An accepted VirtualServer with its directors and chosen real servers.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub(super) virtual_server: Arc<ValidVirtualServer>,
    pub(super) directors: Vec<String>,
    pub(super) selected: Vec<Selected>,
    /// The RealServers it uses, in the order chosen.
    pub(super) real_servers: Vec<ObjectKey>,
    /// What selecting found wrong (with the VirtualServer or with a pair).
    pub(super) problems: Vec<Problem>,
}

/// A RealServer validated on its own: the spec, or why it is invalid.
pub(super) type Validated = Result<Arc<ValidRealServer>, Arc<Vec<Problem>>>;

/// Validates one RealServer.
pub(super) fn validate_real_server(object: &RealServer) -> Validated {
    real_server(object).map(Arc::new).map_err(Arc::new)
}

/// Resolves the placement of every validated RealServer; records outcomes and problems.
pub(super) fn place_real_servers(
    validated: impl IntoIterator<Item = Validated>,
    nodes: &NodeIndex,
    output: &mut BuildOutput,
) -> Vec<PlacedRealServer> {
    let mut placed = Vec::new();
    // Gathered first, then made a map at once: from input in key order (the controller's
    // snapshot is sorted) the map is built in one sweep instead of 20,000 searches.
    let mut outcomes = Vec::new();
    for result in validated {
        match result {
            Ok(spec) => {
                let placement = nodes.placement_of(&spec);
                match &placement {
                    Placement::MissingNode(node) => output.problems.push(Problem::warning(
                        &spec.key,
                        "spec.node",
                        reasons::UNMANAGED,
                        format!("node {node:?} does not exist; its VIP and ARP settings are not configured"),
                    )),
                    Placement::UnlabelledNode(node) => output.problems.push(Problem::warning(
                        &spec.key,
                        if spec.node.is_some() {
                            "spec.node"
                        } else {
                            "spec.address"
                        },
                        reasons::UNMANAGED,
                        format!(
                            "node {node} lacks the label {}=true, so it is not configured as a real server",
                            lvs_api::labels::REAL_SERVER_ROLE
                        ),
                    )),
                    Placement::Managed(_) | Placement::External => {}
                }
                outcomes.push((
                    spec.key.clone(),
                    RealServerOutcome {
                        valid: true,
                        placement: Some(placement.clone()),
                        virtual_servers: Vec::new(),
                    },
                ));
                placed.push(PlacedRealServer { spec, placement });
            }
            Err(problems) => {
                if let Some(problem) = problems.first() {
                    outcomes.push((
                        problem.object.clone(),
                        RealServerOutcome {
                            valid: false,
                            placement: None,
                            virtual_servers: Vec::new(),
                        },
                    ));
                }
                output.problems.extend(problems.iter().cloned());
            }
        }
    }
    if output.real_servers.is_empty() {
        output.real_servers = outcomes.into_iter().collect();
    } else {
        output.real_servers.extend(outcomes);
    }
    placed.sort_by(|left, right| left.spec.key.cmp(&right.spec.key));
    placed
}

/// The real servers `virtual_server`'s selector may match (a superset: see [`Candidates`]).
pub(super) fn candidates_of<'r>(
    virtual_server: &ValidVirtualServer,
    real_servers: &'r [PlacedRealServer],
    candidates: &Candidates<'_>,
) -> impl Iterator<Item = &'r PlacedRealServer> {
    candidates
        .of(
            &virtual_server.key.namespace,
            &virtual_server.real_server_selector,
        )
        .into_iter()
        .map(|position| &real_servers[position])
}

/// Chooses the real servers of one VirtualServer among `candidates` (those its selector may
/// match).
pub(super) fn select<'r>(
    virtual_server: &Arc<ValidVirtualServer>,
    candidates: impl IntoIterator<Item = &'r PlacedRealServer>,
    admission: &Admission<'_>,
    configured_vips: Option<&BTreeSet<(String, IpAddr)>>,
) -> Selection {
    let nodes = admission.nodes;
    let directors = nodes.directors_of(virtual_server);
    let mut problems = Vec::new();
    if directors.is_empty() {
        problems.push(no_directors(virtual_server));
    }
    let mut selected = Vec::new();
    let mut real_servers = Vec::new();
    let selector = &virtual_server.real_server_selector;
    for candidate in candidates {
        let spec = &candidate.spec;
        if !selector.matches(&spec.labels) {
            continue;
        }
        // Each VIP of a dual-stack VirtualServer is served by the real servers of its family.
        if virtual_server.is_family_part() && family_of(&spec.address) != virtual_server.family {
            continue;
        }
        let Some(port) = destination_port(virtual_server, spec, &mut problems) else {
            continue;
        };
        let placement = pool_placement(
            virtual_server,
            &candidate.placement,
            nodes,
            &mut problems,
            &spec.key,
        );
        let pair = Pair {
            virtual_server,
            real_server: spec,
            placement: &placement,
            directors: &directors,
        };
        if let Some(problem) = pair.refusal(admission) {
            problems.push(problem);
            continue;
        }
        real_servers.push(spec.key.clone());
        let destination = (spec.state != RealServerState::Disabled).then(|| Destination {
            real_server: spec.key.qualified_name(),
            address: spec.address,
            port,
            weight: if spec.state == RealServerState::Draining {
                0
            } else {
                spec.weight
            },
            thresholds: spec.thresholds.unwrap_or(virtual_server.thresholds),
            state: spec.state,
            awaiting_node: awaiting_node(virtual_server, &placement, configured_vips),
        });
        selected.push(Selected {
            destination,
            placement,
        });
    }
    Selection {
        virtual_server: Arc::clone(virtual_server),
        directors,
        selected,
        real_servers,
        problems,
    }
}

/// Records what `selection` chose in the outcomes of its VirtualServer and RealServers.
pub(super) fn record(selection: &Selection, output: &mut BuildOutput) {
    let key = &selection.virtual_server.key;
    for real_server in &selection.real_servers {
        if let Some(outcome) = output.real_servers.get_mut(real_server) {
            outcome.virtual_servers.push(key.clone());
        }
    }
    if let Some(outcome) = output.virtual_servers.get_mut(key) {
        // Extended, not replaced: the parts of a dual-stack VirtualServer record in turn.
        outcome.directors.extend(selection.directors.iter().cloned());
        outcome.directors.sort();
        outcome.directors.dedup();
        outcome
            .real_servers
            .extend(selection.real_servers.iter().cloned());
    }
    output.problems.extend(selection.problems.iter().cloned());
}

/// The warning for a VirtualServer no node directs.
fn no_directors(virtual_server: &ValidVirtualServer) -> Problem {
    let pool = virtual_server
        .pool
        .as_ref()
        .filter(|pool| !pool.director_selector.is_empty());
    let selectors = match (virtual_server.directors.node_selector.is_empty(), pool) {
        (true, None) => String::new(),
        (false, None) => " and matches nodeSelector".to_owned(),
        (_, Some(pool)) => format!(
            " and matches nodeSelector and the directors.nodeSelector of AddressPool {}",
            pool.name
        ),
    };
    Problem::warning(
        &virtual_server.key,
        "spec.directors",
        reasons::NO_DIRECTORS,
        format!(
            "no node carries {}=true{selectors}; nothing programs this service",
            lvs_api::labels::DIRECTOR_ROLE
        ),
    )
}

/// One VirtualServer and one of the RealServers it selects, for the pair checks.
struct Pair<'a> {
    virtual_server: &'a ValidVirtualServer,
    real_server: &'a ValidRealServer,
    placement: &'a Placement,
    directors: &'a [String],
}

impl Pair<'_> {
    /// Why the real server may not serve the VirtualServer, if it may not: another address
    /// family (except Tunnel), a director serving itself, the pool's backend and pinning rules.
    fn refusal(&self, admission: &Admission<'_>) -> Option<Problem> {
        let (virtual_server, spec) = (self.virtual_server, self.real_server);
        let refuse =
            |field: &str, reason, message: String| Some(Problem::error(&spec.key, field, reason, message));
        if family_of(&spec.address) != virtual_server.family
            && virtual_server.method != ForwardingMethod::Tunnel
        {
            return refuse(
                "spec.address",
                reasons::INVALID,
                format!(
                    "{} is not {:?} like {}; only Tunnel forwards across address families",
                    spec.address, virtual_server.family, virtual_server.key
                ),
            );
        }
        if let Placement::Managed(node) = self.placement
            && self.directors.contains(node)
        {
            return refuse(
                "spec.node",
                reasons::INVALID,
                format!(
                    "node {node} directs {}; a director cannot also be one of its real servers",
                    virtual_server.key
                ),
            );
        }
        let pool = virtual_server.pool.as_ref()?;
        if let Some((reason, why)) = backend_refusal(
            pool,
            spec.address,
            self.directors,
            admission.nodes,
            admission.settings,
        ) {
            return refuse(
                "spec.address",
                reason,
                format!("cannot serve {}: {why}", virtual_server.key),
            );
        }
        let node = spec.node.as_ref()?;
        let owns = admission
            .nodes
            .node(node)
            .is_some_and(|facts| facts.addresses.contains(&spec.address));
        if owns || pool.allow_pinning {
            return None;
        }
        refuse(
            "spec.node",
            reasons::PINNING_NOT_ALLOWED,
            format!(
                "node {node} does not own {}, and AddressPool {} (of {}) does not allow pinning real servers to other nodes (realServerNodes.allowPinning)",
                spec.address, pool.name, virtual_server.key
            ),
        )
    }
}

/// The placement as far as this VirtualServer goes: a managed node outside the pool's
/// real-server nodes is not set up for its VIP (a warning says so).
fn pool_placement(
    virtual_server: &ValidVirtualServer,
    placement: &Placement,
    nodes: &NodeIndex,
    problems: &mut Vec<Problem>,
    real_server: &crate::ObjectKey,
) -> Placement {
    let (Placement::Managed(node), Some(pool)) = (placement, &virtual_server.pool) else {
        return placement.clone();
    };
    if nodes
        .node(node)
        .is_some_and(|facts| pool.admits_real_server_node(&facts.labels))
    {
        return placement.clone();
    }
    problems.push(Problem::warning(
        real_server,
        "spec.address",
        reasons::UNMANAGED,
        format!(
            "node {node} does not match realServerNodes.nodeSelector of AddressPool {}, so it is not set up for the VIP of {}",
            pool.name, virtual_server.key
        ),
    ));
    Placement::UnlabelledNode(node.clone())
}

/// The destination port, or `None` (with a pair problem) when the method cannot map ports.
fn destination_port(
    virtual_server: &ValidVirtualServer,
    real_server: &ValidRealServer,
    problems: &mut Vec<Problem>,
) -> Option<u16> {
    let service_port = virtual_server.port().map_or(0, |port| port.get());
    let port = real_server
        .port
        .or(virtual_server.real_server_port)
        .map_or(service_port, |port| port.get());
    if port != service_port && virtual_server.method != ForwardingMethod::Nat {
        let wanted = if service_port == 0 {
            "omitted for a fwmark service".to_owned()
        } else {
            service_port.to_string()
        };
        problems.push(Problem::error(
            &real_server.key,
            "spec.port",
            reasons::PORT_REMAP_NOT_ALLOWED,
            format!(
                "{port} differs from the port of {} ({wanted}); {:?} forwards without changing ports, only NAT may remap",
                virtual_server.key, virtual_server.method
            ),
        ));
        return None;
    }
    Some(port)
}

fn awaiting_node(
    virtual_server: &ValidVirtualServer,
    placement: &Placement,
    configured_vips: Option<&BTreeSet<(String, IpAddr)>>,
) -> bool {
    let (Some(configured), Placement::Managed(node), Some(address)) =
        (configured_vips, placement, virtual_server.address)
    else {
        return false;
    };
    virtual_server.method != ForwardingMethod::Nat && !configured.contains(&(node.clone(), address))
}
