//! Accepting VirtualServers: validation, VIPs that are node addresses, and conflicts over the
//! same service identity (the oldest object keeps it).

use std::collections::BTreeMap;

use lvs_api::{VirtualServer, conditions::reasons};

use super::{BuildOutput, VirtualServerOutcome};
use crate::problem::Problem;
use crate::roles::NodeIndex;
use crate::validate::{ServiceIdentity, ValidVirtualServer, virtual_server};

/// Validates every VirtualServer and returns the accepted ones, sorted by key; records outcomes
/// and problems for all.
pub(super) fn accept(
    virtual_servers: &[VirtualServer],
    nodes: &NodeIndex,
    output: &mut BuildOutput,
) -> Vec<ValidVirtualServer> {
    let mut candidates = Vec::new();
    for object in virtual_servers {
        match virtual_server(object) {
            Ok(valid) => match valid
                .address
                .and_then(|address| nodes.node_with_address(&address).map(|node| (address, node)))
            {
                Some((address, node)) => {
                    let problem = Problem::error(
                        &valid.key,
                        "spec.address",
                        reasons::VIP_IS_NODE_ADDRESS,
                        format!(
                            "{address} is an address of node {node}; a VIP must not be a node's own address"
                        ),
                    );
                    reject(output, &valid.key, problem);
                }
                None => candidates.push(valid),
            },
            Err(problems) => {
                let key = problems.first().map(|problem| problem.object.clone());
                if let Some(key) = key {
                    let first = problems
                        .iter()
                        .find(|problem| problem.severity == crate::Severity::Error);
                    let message = first.map(Problem::describe).unwrap_or_default();
                    output
                        .virtual_servers
                        .insert(key, outcome(false, reasons::INVALID, message));
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
    let mut owners: BTreeMap<ServiceIdentity, crate::ObjectKey> = BTreeMap::new();
    let mut accepted = Vec::new();
    for candidate in candidates {
        if let Some(owner) = owners.get(&candidate.identity) {
            let field = match candidate.identity {
                ServiceIdentity::Address { .. } => "spec.address",
                ServiceIdentity::Fwmark { .. } => "spec.fwmark",
            };
            let problem = Problem::error(
                &candidate.key,
                field,
                reasons::CONFLICT,
                format!("{} is already used by the older {owner}", candidate.identity),
            );
            reject(output, &candidate.key, problem);
            continue;
        }
        owners.insert(candidate.identity, candidate.key.clone());
        output.virtual_servers.insert(
            candidate.key.clone(),
            outcome(true, reasons::ACCEPTED, String::new()),
        );
        accepted.push(candidate);
    }
    accepted.sort_by(|left, right| left.key.cmp(&right.key));
    accepted
}

fn reject(output: &mut BuildOutput, key: &crate::ObjectKey, problem: Problem) {
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
        directors: Vec::new(),
        real_servers: Vec::new(),
    }
}
