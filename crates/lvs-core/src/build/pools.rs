//! The address pools' side of a build: validating them, finding overlaps between them, and
//! counting the VIPs each one has handed out (for the pools' status).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use lvs_api::AddressPool;
use lvs_api::conditions::reasons;

use super::{BuildOutput, Objects};
use crate::pool::{Pools, ValidPool, validate_pool};
use crate::problem::{Problem, Severity};
use crate::validate::ValidVirtualServer;

/// The outcome for one AddressPool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolOutcome {
    /// Whether its spec is valid (an invalid pool admits nothing).
    pub valid: bool,
    /// Why not, when invalid.
    pub message: String,
    /// Its addresses as one line.
    pub addresses: String,
    /// The namespaces it admits, as one line.
    pub namespaces: String,
    /// How many addresses it holds (saturating).
    pub total: u128,
    /// VIPs in use by accepted VirtualServers that came from it.
    pub allocated: BTreeSet<IpAddr>,
    /// Of those, the ones no longer inside its addresses (the pool was shrunk).
    pub outside: BTreeSet<IpAddr>,
    /// Other pools holding some of the same addresses.
    pub overlaps: Vec<String>,
}

/// Validates every pool, records outcomes (and overlaps as warnings), and indexes the valid ones.
pub(super) fn validate(
    pools: Objects<'_, AddressPool>,
    namespaces: Objects<'_, Namespace>,
    output: &mut BuildOutput,
) -> Pools {
    let mut valid: Vec<ValidPool> = Vec::new();
    for object in pools.iter() {
        match validate_pool(object) {
            Ok(pool) => {
                output.pools.insert(
                    pool.name.clone(),
                    PoolOutcome {
                        valid: true,
                        addresses: pool.addresses_summary(),
                        namespaces: pool.namespaces_summary(),
                        total: pool.total(),
                        ..PoolOutcome::default()
                    },
                );
                valid.push(pool);
            }
            Err(problems) => {
                if let Some(first) = problems
                    .iter()
                    .find(|problem| problem.severity == Severity::Error)
                {
                    output.pools.insert(
                        first.object.name.clone(),
                        PoolOutcome {
                            message: first.describe(),
                            ..PoolOutcome::default()
                        },
                    );
                }
                output.problems.extend(problems);
            }
        }
    }
    for (index, pool) in valid.iter().enumerate() {
        for other in valid.iter().skip(index + 1) {
            let shared = pool.ranges.iter().find_map(|mine| {
                other
                    .ranges
                    .iter()
                    .find(|theirs| mine.overlaps(theirs))
                    .map(|theirs| (mine, theirs))
            });
            let Some((mine, theirs)) = shared else { continue };
            for (this, that, range) in [(pool, other, theirs), (other, pool, mine)] {
                output.problems.push(Problem::warning(
                    &this.key(),
                    "spec.addresses",
                    reasons::OVERLAPS,
                    format!(
                        "shares addresses with AddressPool {} ({range}); the namespaces either pool admits may take them",
                        that.name
                    ),
                ));
                if let Some(outcome) = output.pools.get_mut(&this.name) {
                    outcome.overlaps.push(that.name.clone());
                }
            }
        }
    }
    Pools::new(valid, namespaces.iter())
}

/// Counts each pool's VIPs in use by the accepted VirtualServers.
pub(super) fn record_usage(pools: &Pools, accepted: &[Arc<ValidVirtualServer>], output: &mut BuildOutput) {
    for virtual_server in accepted {
        let (Some(pool), Some(address)) = (&virtual_server.pool, virtual_server.address) else {
            continue;
        };
        let Some(outcome) = output.pools.get_mut(&pool.name) else {
            continue;
        };
        outcome.allocated.insert(address);
        if pools
            .get(&pool.name)
            .is_some_and(|pool| pool.entry_holding(address).is_none())
        {
            outcome.outside.insert(address);
        }
    }
}
