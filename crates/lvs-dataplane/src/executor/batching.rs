//! How `apply` groups and guards ops: runs of IPVS changes that may be pipelined (everything
//! else, sync daemons included, goes alone), the stages within a run, and which ops depend on a
//! service or take a VIP.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::model::ServiceKey;
use crate::ops::Op;

/// Splits ops into runs: maximal sequences of IPVS service/destination adds and updates (and
/// destination deletes) that may be pipelined, and single other ops, keeping the order.
pub(super) fn runs(ops: Vec<Op>) -> Vec<Vec<Op>> {
    let mut runs: Vec<Vec<Op>> = Vec::new();
    for op in ops {
        let pipelinable = matches!(
            op,
            Op::AddService(_)
                | Op::UpdateService(_)
                | Op::AddDestination(..)
                | Op::UpdateDestination(..)
                | Op::DeleteDestination(..)
        );
        match runs.last_mut() {
            Some(run)
                if pipelinable
                    && run.first().is_some_and(|first| {
                        first.is_ipvs_write() && !matches!(first, Op::DeleteService(_))
                    }) =>
            {
                run.push(op)
            }
            _ => runs.push(vec![op]),
        }
    }
    runs
}

/// Within a run: service changes, then destination adds and updates, then destination deletes
/// (the order `plan` guarantees per service, kept across services).
pub(super) fn stages(run: Vec<Op>) -> [Vec<Op>; 3] {
    let mut stages: [Vec<Op>; 3] = Default::default();
    for op in run {
        let stage = match op {
            Op::AddService(_) | Op::UpdateService(_) => 0,
            Op::AddDestination(..) | Op::UpdateDestination(..) => 1,
            _ => 2,
        };
        stages[stage].push(op);
    }
    stages
}

/// The service an op depends on, if any.
pub(super) fn service_of(op: &Op) -> Option<ServiceKey> {
    match op {
        Op::AddService(service) | Op::UpdateService(service) => Some(service.key),
        Op::AddDestination(key, _) | Op::UpdateDestination(key, _) | Op::DeleteDestination(key, ..) => {
            Some(*key)
        }
        _ => None,
    }
}

/// The address of an op that takes a VIP (adds it to a device or announces it).
pub(super) fn director_vip(op: &Op) -> Option<IpAddr> {
    match op {
        Op::AddAddress(vip) => Some(vip.address),
        Op::Announce { address, .. } => Some(*address),
        _ => None,
    }
}

/// Whether a VIP has a service that works: false only when some service on it failed to be
/// created in this apply and no other service of `ours` (ours, or being created) uses it.
pub(super) fn has_live_service(
    address: IpAddr,
    failed: &BTreeSet<ServiceKey>,
    ours: &BTreeSet<ServiceKey>,
) -> bool {
    let on_vip =
        |key: &ServiceKey| matches!(key, ServiceKey::Address { address: vip, .. } if *vip == address);
    !failed.iter().any(on_vip) || ours.iter().any(|key| on_vip(key) && !failed.contains(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Destination, Forwarding, Protocol, Service, ServiceFlags, SyncDaemonSpec, SyncRole};

    fn key() -> ServiceKey {
        ServiceKey::Address {
            address: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
        }
    }

    fn add_destination(last_octet: u8) -> Op {
        Op::AddDestination(
            key(),
            Destination {
                address: IpAddr::from([10, 0, 1, last_octet]),
                port: 80,
                weight: 1,
                forwarding: Forwarding::DirectRouting,
                upper_threshold: 0,
                lower_threshold: 0,
            },
        )
    }

    #[test]
    fn a_sync_daemon_op_is_never_pipelined_with_ipvs_changes() {
        let service = Service {
            key: key(),
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        };
        let start = Op::StartSyncDaemon(
            SyncRole::Master,
            SyncDaemonSpec {
                interface: "eth0".into(),
                sync_id: 7,
            },
        );
        let ops = vec![
            Op::AddService(service),
            add_destination(1),
            start.clone(),
            add_destination(2),
            Op::StopSyncDaemon(SyncRole::Backup),
        ];
        let lengths: Vec<usize> = runs(ops).iter().map(Vec::len).collect();
        assert_eq!(lengths, [2, 1, 1, 1]);
        assert_eq!(runs(vec![start.clone(), add_destination(1)])[0], [start]);
    }
}
