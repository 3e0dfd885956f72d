//! Admitting VirtualServers into address pools: every VIP comes from a pool that admits the
//! namespace — the address asked for, the one recorded in status, or a free one picked here —
//! and the pool's rules hold (forwarding methods, interfaces, fwmark mask, special-purpose,
//! node and Service-network addresses, where the fallback server may be).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use lvs_api::conditions::reasons;

use super::{BuildOutput, ClusterSettings};
use crate::pool::allocate::{Reserved, allocate};
use crate::pool::{AddressRange, Pools, ValidPool, special};
use crate::problem::Problem;
use crate::roles::NodeIndex;
use crate::validate::{ServiceKind, ValidVirtualServer};

/// What admission reads besides the VirtualServers.
pub(super) struct Admission<'a> {
    pub(super) pools: &'a Pools,
    pub(super) nodes: &'a NodeIndex,
    pub(super) settings: &'a ClusterSettings,
}

/// Why a VirtualServer is not admitted (boxed: a `Problem` is large).
type Refusal = Box<Problem>;

/// How a VirtualServer gets its VIP.
enum Source {
    /// `spec.address`, or a fwmark service without one (no VIP).
    Asked,
    /// The address an earlier pass picked and recorded in status.
    Recorded(IpAddr, String),
    /// Pick a free one.
    Pick,
}

impl Admission<'_> {
    /// Admits `candidates` (oldest first), returning the admitted ones with `address`, `pool` and
    /// `mark_mask` set; the refused get an outcome and a problem in `output`.
    pub(super) fn admit(
        &self,
        candidates: Vec<ValidVirtualServer>,
        output: &mut BuildOutput,
    ) -> Vec<ValidVirtualServer> {
        let reserved = Reserved::new(
            self.nodes
                .nodes()
                .flat_map(|node| node.addresses.iter().copied())
                .map(AddressRange::single)
                .chain(self.settings.service_networks.iter().copied()),
        );
        // An address asked for is not picked for anyone else, even if its object is refused
        // below — but only when a pool admitting its namespace holds it: another tenant cannot
        // fence off a pool's addresses by asking for them.
        let mut used: BTreeSet<IpAddr> = candidates
            .iter()
            .filter_map(|candidate| candidate.address.map(|address| (candidate, address)))
            .filter(|(candidate, address)| {
                self.pools
                    .admitting(&candidate.key.namespace)
                    .any(|pool| pool.entry_holding(*address).is_some())
            })
            .map(|(_, address)| address)
            .collect();
        let mut sourced: Vec<(Source, ValidVirtualServer)> = candidates
            .into_iter()
            .map(
                |candidate| match (&candidate.address, &candidate.recorded, candidate.service) {
                    (Some(_), _, _) | (None, _, ServiceKind::Fwmark(_)) => (Source::Asked, candidate),
                    (None, Some((address, pool)), ServiceKind::Port(_)) => {
                        (Source::Recorded(*address, pool.clone()), candidate)
                    }
                    (None, None, ServiceKind::Port(_)) => (Source::Pick, candidate),
                },
            )
            .collect();
        // Recorded addresses before new picks, so a restart or re-list never moves a VIP.
        sourced.sort_by_key(|(source, _)| match source {
            Source::Asked => 0,
            Source::Recorded(..) => 1,
            Source::Pick => 2,
        });
        let mut admitted = Vec::new();
        for (source, mut candidate) in sourced {
            let result = match source {
                Source::Asked => self.asked(&candidate),
                Source::Recorded(address, pool) => {
                    self.recorded(&candidate, (address, &pool), &used, &reserved, output)
                }
                Source::Pick => self.pick(&candidate, &used, &reserved),
            };
            let checked = result.and_then(|(pool, address)| {
                candidate.address = address;
                candidate.pool = Some(pool);
                self.check(&mut candidate).map(|()| candidate)
            });
            match checked {
                Ok(candidate) => {
                    used.extend(candidate.address);
                    admitted.push(candidate);
                }
                Err(problem) => super::accept::reject(output, &problem.object.clone(), *problem),
            }
        }
        admitted
    }

    /// The pool for `spec.address` (or for a fwmark service without one).
    fn asked(&self, candidate: &ValidVirtualServer) -> Result<(Arc<ValidPool>, Option<IpAddr>), Refusal> {
        let admitting = self.admitting(candidate)?;
        let Some(address) = candidate.address else {
            return Ok((Arc::clone(admitting[0]), None));
        };
        match admitting
            .iter()
            .find(|pool| pool.entry_holding(address).is_some())
        {
            Some(pool) => Ok((Arc::clone(pool), Some(address))),
            None => Err(Box::new(Problem::error(
                &candidate.key,
                "spec.address",
                reasons::ADDRESS_NOT_IN_POOL,
                format!(
                    "{address} is in no AddressPool that admits namespace {} ({}); ask a cluster admin, or omit address to get a free one",
                    candidate.key.namespace,
                    describe_pools(&admitting)
                ),
            ))),
        }
    }

    /// The address recorded in status: kept while its pool admits the namespace — with a warning
    /// when the pool no longer holds it (shrunk) — else a new pick.
    fn recorded(
        &self,
        candidate: &ValidVirtualServer,
        (address, pool_name): (IpAddr, &str),
        used: &BTreeSet<IpAddr>,
        reserved: &Reserved,
        output: &mut BuildOutput,
    ) -> Result<(Arc<ValidPool>, Option<IpAddr>), Refusal> {
        let wanted_family = candidate.family == crate::validate::family_of(&address);
        let pool = self
            .pools
            .get(pool_name)
            .filter(|pool| self.pools.admits(pool, &candidate.key.namespace))
            .filter(|pool| {
                candidate
                    .requested_pool
                    .as_deref()
                    .is_none_or(|asked| asked == pool.name)
            });
        let taken = used.contains(&address);
        match pool {
            Some(pool) if wanted_family && !taken && pool.entry_holding(address).is_some() => {
                Ok((Arc::clone(pool), Some(address)))
            }
            // Shrunk: keep it unless another pool that does not admit the namespace holds it now.
            Some(pool)
                if wanted_family
                    && !taken
                    && !self.pools.all().any(|other| {
                        other.entry_holding(address).is_some()
                            && !self.pools.admits(other, &candidate.key.namespace)
                    }) =>
            {
                output.problems.push(Problem::warning(
                    &candidate.key,
                    "status.address",
                    reasons::OUTSIDE_POOL,
                    format!(
                        "{address} is no longer in AddressPool {} ({}); it keeps working until this VirtualServer is deleted",
                        pool.name,
                        pool.addresses_summary()
                    ),
                ));
                Ok((Arc::clone(pool), Some(address)))
            }
            _ => self.pick(candidate, used, reserved),
        }
    }

    /// A free address from the first admitting pool (by name) that has one.
    fn pick(
        &self,
        candidate: &ValidVirtualServer,
        used: &BTreeSet<IpAddr>,
        reserved: &Reserved,
    ) -> Result<(Arc<ValidPool>, Option<IpAddr>), Refusal> {
        let admitting = self.admitting(candidate)?;
        let v4 = candidate.family == lvs_api::AddressFamily::IPv4;
        let seed = candidate.key.qualified_name();
        let eligible: Vec<&Arc<ValidPool>> = admitting
            .iter()
            .copied()
            .filter(|pool| pool.auto_assign || candidate.requested_pool.is_some())
            .collect();
        eligible
            .iter()
            .find_map(|pool| allocate(pool, v4, &seed, used, reserved).map(|address| (Arc::clone(pool), Some(address))))
            .ok_or_else(|| {
                Box::new(Problem::error(
                    &candidate.key,
                    "spec.address",
                    reasons::POOL_EXHAUSTED,
                    if eligible.is_empty() {
                        format!(
                            "no AddressPool admitting namespace {} hands out addresses (autoAssign is false on {}); set spec.address",
                            candidate.key.namespace,
                            describe_pools(&admitting)
                        )
                    } else {
                        format!(
                            "no free {:?} address in the AddressPools admitting namespace {} ({}); set spec.family, or ask a cluster admin for more addresses",
                            candidate.family,
                            candidate.key.namespace,
                            describe_pools(&eligible)
                        )
                    },
                ))
            })
    }

    /// The pools the candidate may use: the one it names, else every one admitting its namespace.
    fn admitting<'s>(
        &'s self,
        candidate: &'s ValidVirtualServer,
    ) -> Result<Vec<&'s Arc<ValidPool>>, Refusal> {
        let namespace = &candidate.key.namespace;
        let refuse = |message: String| {
            let field = if candidate.requested_pool.is_some() {
                "spec.addressPool"
            } else {
                "spec.address"
            };
            Box::new(Problem::error(
                &candidate.key,
                field,
                reasons::NO_ADDRESS_POOL,
                message,
            ))
        };
        if let Some(name) = &candidate.requested_pool {
            return match self.pools.get(name) {
                Some(pool) if self.pools.admits(pool, namespace) => Ok(vec![pool]),
                Some(_) => Err(refuse(format!(
                    "AddressPool {name} does not admit namespace {namespace}; ask a cluster admin to add it to the pool's namespaces"
                ))),
                None => Err(refuse(format!(
                    "AddressPool {name} does not exist (or is invalid)"
                ))),
            };
        }
        let admitting: Vec<_> = self.pools.admitting(namespace).collect();
        if admitting.is_empty() {
            return Err(refuse(format!(
                "no AddressPool admits namespace {namespace}; a cluster admin must create one that lists it in spec.namespaces or matches it with spec.namespaceSelector (for a single-tenant cluster: examples/pool.yaml, namespaceSelector: {{}}; see README, \"Address pools\")"
            )));
        }
        Ok(admitting)
    }

    /// The pool's rules for an admitted candidate; sets `mark_mask`.
    fn check(&self, candidate: &mut ValidVirtualServer) -> Result<(), Refusal> {
        let Some(pool) = candidate.pool.clone() else {
            return Ok(());
        };
        let refuse = |field: &str, reason, message: String| {
            Err(Box::new(Problem::error(&candidate.key, field, reason, message)))
        };
        if let Some(address) = candidate.address {
            self.check_vip(candidate, &pool, address)?;
        }
        if !pool.allows_method(candidate.method) {
            return refuse(
                "spec.forwarding.method",
                reasons::METHOD_NOT_ALLOWED,
                format!(
                    "AddressPool {} allows only {}, not {}",
                    pool.name,
                    pool.methods
                        .iter()
                        .map(|method| method_name(*method))
                        .collect::<Vec<_>>()
                        .join(", "),
                    method_name(candidate.method)
                ),
            );
        }
        let interfaces = [
            ("spec.directors.interface", candidate.directors.interface.as_ref()),
            (
                "spec.directors.highAvailability.connectionSync.interface",
                candidate
                    .directors
                    .high_availability
                    .connection_sync
                    .interface
                    .as_ref(),
            ),
        ];
        for (field, interface) in interfaces {
            if let Some(interface) = interface
                && !pool.interfaces.is_empty()
                && !pool.interfaces.contains(interface)
            {
                return refuse(
                    field,
                    reasons::INTERFACE_NOT_ALLOWED,
                    format!(
                        "AddressPool {} allows only the interfaces {}, not {interface}",
                        pool.name,
                        pool.interfaces.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        if let (Some(mark), Some(_)) = (candidate.fwmark(), candidate.address) {
            let mask = self.settings.fwmark_mask;
            if mark.get() & !mask != 0 {
                return refuse(
                    "spec.fwmark",
                    reasons::FWMARK_OUTSIDE_MASK,
                    format!(
                        "{mark} ({:#x}) has bits outside the operator's fwmark mask {mask:#x}; the directors mark only those bits",
                        mark.get()
                    ),
                );
            }
            candidate.mark_mask = Some(mask);
        }
        if let Some((address, _)) = candidate.fallback {
            let directors = self.nodes.directors_of(candidate);
            if let Some((reason, why)) =
                backend_refusal(&pool, address, &directors, self.nodes, self.settings)
            {
                return refuse("spec.fallback.address", reason, why);
            }
        }
        Ok(())
    }

    fn check_vip(
        &self,
        candidate: &ValidVirtualServer,
        pool: &ValidPool,
        address: IpAddr,
    ) -> Result<(), Refusal> {
        let refuse = |reason, message: String| {
            Err(Box::new(Problem::error(
                &candidate.key,
                "spec.address",
                reason,
                message,
            )))
        };
        if let Some(block) = special::classify(address)
            && !special::explicitly_allowed(&block, address, &pool.ranges)
        {
            return refuse(
                reasons::SPECIAL_PURPOSE_ADDRESS,
                format!(
                    "{address} is in the {} block ({}); it can be a VIP only from a pool whose addresses lie inside that block",
                    block.name, block.range
                ),
            );
        }
        if let Some(node) = self.nodes.node_with_address(&address.to_canonical()) {
            return refuse(
                reasons::VIP_IS_NODE_ADDRESS,
                format!("{address} is an address of node {node}; a VIP must not be a node's own address"),
            );
        }
        if let Some(network) = self
            .settings
            .service_networks
            .iter()
            .find(|network| network.contains(address))
            && !pool
                .ranges
                .iter()
                .any(|entry| entry.contains(address) && entry.within(network))
        {
            return refuse(
                reasons::SERVICE_NETWORK_ADDRESS,
                format!(
                    "{address} is in the cluster's Service network {network}, where kube-proxy answers for ClusterIPs"
                ),
            );
        }
        Ok(())
    }
}

/// Why a real server or fallback at `address` may not serve a VirtualServer of `pool` with
/// `directors`, if it may not: a special-purpose or Service-network address the admin did not
/// name, outside the pool's backend networks, or a director's own address (its kubelet, its
/// metadata routes) unless named as a single address.
pub(super) fn backend_refusal(
    pool: &ValidPool,
    address: IpAddr,
    directors: &[String],
    nodes: &NodeIndex,
    settings: &ClusterSettings,
) -> Option<(&'static str, String)> {
    let networks = &pool.backend_networks;
    if let Some(block) = special::classify(address)
        && !special::explicitly_allowed(&block, address, networks)
    {
        return Some((
            reasons::SPECIAL_PURPOSE_ADDRESS,
            format!(
                "{address} is in the {} block ({}); AddressPool {} allows it only with a backendNetworks entry inside that block",
                block.name, block.range, pool.name
            ),
        ));
    }
    if !networks.is_empty() && !networks.iter().any(|network| network.contains(address)) {
        let listed: Vec<String> = networks.iter().map(ToString::to_string).collect();
        return Some((
            reasons::BACKEND_NOT_ALLOWED,
            format!(
                "{address} is outside the backendNetworks of AddressPool {} ({})",
                pool.name,
                listed.join(", ")
            ),
        ));
    }
    let named = |range: AddressRange| {
        networks
            .iter()
            .any(|network| network.contains(address) && network.within(&range))
    };
    if let Some(network) = settings
        .service_networks
        .iter()
        .find(|network| network.contains(address))
        && !named(*network)
    {
        return Some((
            reasons::SERVICE_NETWORK_ADDRESS,
            format!("{address} is in the cluster's Service network {network}"),
        ));
    }
    if let Some(node) = nodes.node_with_address(&address.to_canonical())
        && directors.iter().any(|director| director == node)
        && !named(AddressRange::single(address))
    {
        return Some((
            reasons::BACKEND_NOT_ALLOWED,
            format!(
                "{address} is an address of director {node}: forwarding there would reach the director's own ports; AddressPool {} must list it in backendNetworks as a single address to allow it",
                pool.name
            ),
        ));
    }
    None
}

/// A forwarding method as the API spells it.
fn method_name(method: lvs_api::ForwardingMethod) -> &'static str {
    match method {
        lvs_api::ForwardingMethod::DirectRouting => "DirectRouting",
        lvs_api::ForwardingMethod::Nat => "NAT",
        lvs_api::ForwardingMethod::Tunnel => "Tunnel",
    }
}

/// `name (ranges)` of each pool, for messages.
fn describe_pools(pools: &[&Arc<ValidPool>]) -> String {
    pools
        .iter()
        .map(|pool| format!("{}: {}", pool.name, pool.addresses_summary()))
        .collect::<Vec<_>>()
        .join("; ")
}
