//! Accepting VirtualServers: validation, admission into an address pool (see `admit`), then
//! conflicts — the same service identity, a VIP of another namespace, a fwmark service marking
//! ports another service serves. The oldest object keeps what it has.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use lvs_api::{Protocol, VirtualServer, conditions::reasons};

use super::admit::Admission;
use super::{BuildOutput, Objects, VirtualServerOutcome};
use crate::object::ObjectKey;
use crate::problem::Problem;
use crate::validate::{ServiceIdentity, ServiceKind, ValidVirtualServer, virtual_server};

/// Validates and admits every VirtualServer and returns the accepted ones, sorted by key;
/// records outcomes and problems for all.
pub(super) fn accept(
    virtual_servers: Objects<'_, VirtualServer>,
    admission: &Admission<'_>,
    output: &mut BuildOutput,
) -> Vec<Arc<ValidVirtualServer>> {
    let mut candidates = Vec::new();
    for object in virtual_servers.iter() {
        match virtual_server(object) {
            Ok(valid) => candidates.extend(valid.split()),
            Err(problems) => {
                if let Some(first) = problems
                    .iter()
                    .find(|problem| problem.severity == crate::Severity::Error)
                {
                    output.virtual_servers.insert(
                        first.object.clone(),
                        outcome(false, reasons::INVALID, first.describe()),
                    );
                }
                output.problems.extend(problems);
            }
        }
    }

    // Oldest first: objects with a creation timestamp before those without (standalone files),
    // then by namespace and name so the winner is deterministic.
    candidates.sort_by(|left, right| {
        (left.created.is_none(), left.created, &left.key).cmp(&(
            right.created.is_none(),
            right.created,
            &right.key,
        ))
    });
    let admitted = admission.admit(candidates, output);
    // Admission's OutsidePool warnings, read once (not a scan of every problem per object).
    let outside: BTreeMap<ObjectKey, String> = output
        .problems
        .iter()
        .filter(|problem| problem.reason == reasons::OUTSIDE_POOL)
        .map(|problem| (problem.object.clone(), problem.describe()))
        .collect();
    let mut claims = Claims::default();
    let mut accepted = Vec::new();
    for parts in by_object(admitted) {
        // A dual-stack VirtualServer is accepted whole or not at all: refused when one of its
        // parts was refused by admission or conflicts, and then it claims none of its VIPs.
        let Some(first) = parts.first() else {
            continue;
        };
        let key = first.key.clone();
        // A fwmark service without address has a pool but no VIP.
        let first_pool = first.pool.as_ref().map(|pool| pool.name.clone());
        if output
            .virtual_servers
            .get(&key)
            .is_some_and(|outcome| !outcome.accepted)
        {
            continue;
        }
        if let Some(problem) = parts.iter().find_map(|part| claims.conflict(part)) {
            reject(output, &key, problem);
            continue;
        }
        let mut accepted_outcome = outcome(true, reasons::ACCEPTED, String::new());
        if let Some(warning) = outside.get(&key) {
            accepted_outcome.reason = reasons::OUTSIDE_POOL;
            accepted_outcome.message = warning.clone();
        }
        for part in parts {
            claims.insert(&part);
            if let (Some(address), Some(pool)) = (part.address, &part.pool) {
                accepted_outcome.addresses.push((address, pool.name.clone()));
            }
            accepted.push(Arc::new(part));
        }
        // IPv4 first; `address` and `pool` are the first VIP's.
        accepted_outcome
            .addresses
            .sort_by_key(|(address, _)| address.is_ipv6());
        accepted_outcome.address = accepted_outcome.addresses.first().map(|(address, _)| *address);
        accepted_outcome.pool = accepted_outcome
            .addresses
            .first()
            .map(|(_, pool)| pool.clone())
            .or(first_pool);
        output.virtual_servers.insert(key, accepted_outcome);
    }
    // By key, then IPv4 before IPv6 (the parts of a dual-stack VirtualServer).
    accepted.sort_by(|left, right| (&left.key, left.family).cmp(&(&right.key, right.family)));
    accepted
}

/// The admitted VirtualServers grouped by object (the parts of a dual-stack one together), in
/// the order each object first appears.
fn by_object(admitted: Vec<ValidVirtualServer>) -> Vec<Vec<ValidVirtualServer>> {
    let mut groups: Vec<Vec<ValidVirtualServer>> = Vec::new();
    let mut index: BTreeMap<ObjectKey, usize> = BTreeMap::new();
    for candidate in admitted {
        match index.get(&candidate.key) {
            Some(&position) => groups[position].push(candidate),
            None => {
                index.insert(candidate.key.clone(), groups.len());
                groups.push(vec![candidate]);
            }
        }
    }
    groups
}

/// Which ports of one protocol a service takes on its VIP.
#[derive(Debug, Clone)]
enum Ports {
    /// A port service, or a fwmark service marking these ports.
    Some(BTreeSet<u16>),
    /// A fwmark service marking every port of the protocol.
    All,
}

impl Ports {
    fn overlaps(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Some(left), Self::Some(right)) => !left.is_disjoint(right),
            _ => true,
        }
    }
}

/// One service on a VIP: its protocol, the ports it takes, and its VirtualServer.
type VipService = (Protocol, Ports, ObjectKey);

/// What the accepted VirtualServers hold so far.
#[derive(Default)]
struct Claims {
    identities: BTreeMap<ServiceIdentity, ObjectKey>,
    /// Per VIP: the namespace holding it, and its services.
    vips: BTreeMap<IpAddr, (String, Vec<VipService>)>,
}

impl Claims {
    fn ports_of(candidate: &ValidVirtualServer) -> Ports {
        match candidate.service {
            ServiceKind::Port(port) => Ports::Some(BTreeSet::from([port.get()])),
            ServiceKind::Fwmark(_) if candidate.fwmark_ports.is_empty() => Ports::All,
            ServiceKind::Fwmark(_) => {
                Ports::Some(candidate.fwmark_ports.iter().map(|port| port.get()).collect())
            }
        }
    }

    fn conflict(&self, candidate: &ValidVirtualServer) -> Option<Problem> {
        let identity = candidate.identity()?;
        let refuse = |field: &str, message: String| {
            Some(Problem::error(&candidate.key, field, reasons::CONFLICT, message))
        };
        if let Some(owner) = self.identities.get(&identity) {
            let field = match identity {
                ServiceIdentity::Address { .. } => "spec.address",
                ServiceIdentity::Fwmark { .. } => "spec.fwmark",
            };
            return refuse(field, format!("{identity} is already used by the older {owner}"));
        }
        let address = candidate.address?;
        let (namespace, services) = self.vips.get(&address)?;
        if *namespace != candidate.key.namespace {
            return refuse(
                "spec.address",
                format!(
                    "{address} is a VIP of namespace {namespace} ({}); a VIP is shared only within one namespace",
                    services[0].2
                ),
            );
        }
        let ports = Self::ports_of(candidate);
        let (_, _, owner) = services
            .iter()
            .find(|(protocol, taken, _)| *protocol == candidate.protocol && taken.overlaps(&ports))?;
        let what = match candidate.service {
            ServiceKind::Fwmark(_) => "spec.fwmarkPorts",
            ServiceKind::Port(_) => "spec.port",
        };
        refuse(
            what,
            format!(
                "{} ports of {address} it would take are already served by the older {owner}; a fwmark service must list fwmarkPorts that no other service of its VIP uses",
                candidate.protocol.as_str()
            ),
        )
    }

    fn insert(&mut self, candidate: &ValidVirtualServer) {
        if let Some(identity) = candidate.identity() {
            self.identities.insert(identity, candidate.key.clone());
        }
        if let Some(address) = candidate.address {
            self.vips
                .entry(address)
                .or_insert_with(|| (candidate.key.namespace.clone(), Vec::new()))
                .1
                .push((
                    candidate.protocol,
                    Self::ports_of(candidate),
                    candidate.key.clone(),
                ));
        }
    }
}

/// Records `key` as not accepted because of `problem`.
pub(super) fn reject(output: &mut BuildOutput, key: &ObjectKey, problem: Problem) {
    output
        .virtual_servers
        .insert(key.clone(), outcome(false, problem.reason, problem.describe()));
    output.problems.push(problem);
}

fn outcome(accepted: bool, reason: &'static str, message: String) -> VirtualServerOutcome {
    VirtualServerOutcome {
        accepted,
        reason,
        message,
        address: None,
        pool: None,
        addresses: Vec::new(),
        directors: Vec::new(),
        real_servers: Vec::new(),
    }
}
