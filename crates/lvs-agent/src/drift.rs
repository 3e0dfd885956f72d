//! Drift found between passes, so it is repaired in about a second rather than at the next
//! resync: the dataplane's change notifications (our VIPs, devices and nftables tables), and —
//! IPVS sends none — a read of our IPVS services every second, compared with what the last pass
//! aimed for. Either makes a run loop run a full pass as a drift repair (`Pass::Resync`: the
//! operations it finds count as drift; with nothing changed it writes nothing).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lvs_dataplane::model::{NodeState, ServiceKey, ServiceState};
use lvs_dataplane::{Dataplane, DataplaneError, Op, plan};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::reconciler::Reconciler;

/// How often our IPVS services are read and compared with the last pass's aim.
pub const IPVS_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A read of our IPVS services under way.
type ServicesRead =
    Pin<Box<dyn Future<Output = Result<BTreeMap<ServiceKey, ServiceState>, DataplaneError>> + Send>>;

/// What a run loop waits on for drift between passes.
pub struct DriftWatch {
    changes: watch::Receiver<u64>,
    /// The dataplane stopped notifying (it never does while it lives): only the IPVS check is left.
    closed: bool,
    ipvs_check: Interval,
    /// The IPVS read under way, kept here so it survives `drifted` being dropped: a run loop's
    /// `select!` drops it whenever another branch wins (the manifest poll every second), and a
    /// read dropped halfway would never finish (netlink answers left with no one to take them).
    reading: Option<ServicesRead>,
    /// A pass started since the read began: what it read may be older than that pass's aim.
    stale: bool,
}

impl std::fmt::Debug for DriftWatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DriftWatch")
            .field("closed", &self.closed)
            .field("reading", &self.reading.is_some())
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl DriftWatch {
    /// Subscribes to the dataplane's change notifications.
    pub fn new(dataplane: &impl Dataplane) -> Self {
        let mut ipvs_check = tokio::time::interval(IPVS_CHECK_INTERVAL);
        ipvs_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            changes: dataplane.changes(),
            closed: false,
            ipvs_check,
            reading: None,
            stale: false,
        }
    }

    /// Call as a pass starts: the notifications so far are covered by what it observes.
    /// (Those that come while it runs are not: a hand edit in the middle of a pass is repaired
    /// by the next one, and one of our own writes that slipped through costs a pass that finds
    /// nothing.)
    pub fn pass_started(&mut self) {
        self.changes.borrow_and_update();
        self.stale = true;
    }

    /// Resolves when a drift-repair pass is due: the kernel notified a change of what we own,
    /// or our IPVS services differ from what the last pass aimed for. The IPVS check runs only
    /// after a pass that programmed everything (`synced`): otherwise it would find the failed
    /// operations every second, and those are retried on their backoff. Cancel-safe.
    pub async fn drifted<D: Dataplane>(&mut self, reconciler: &Reconciler<D>, synced: bool) {
        let Self {
            changes,
            closed,
            ipvs_check,
            reading,
            stale,
        } = self;
        loop {
            tokio::select! {
                changed = changes.changed(), if !*closed => {
                    if changed.is_ok() {
                        tracing::debug!("kernel change notification: a pass looks for drift");
                        return;
                    }
                    *closed = true;
                }
                _ = ipvs_check.tick(), if reading.is_none() => {
                    if synced && reconciler.last_desired_services().is_some() {
                        let dataplane = Arc::clone(reconciler.dataplane());
                        *reading = Some(Box::pin(async move { dataplane.observe_services().await }));
                        *stale = false;
                    }
                }
                observed = async {
                    match reading.as_mut() {
                        Some(read) => read.await,
                        None => std::future::pending().await,
                    }
                }, if reading.is_some() => {
                    *reading = None;
                    let desired = reconciler.last_desired_services();
                    match observed {
                        Ok(observed) => {
                            if !*stale && synced && desired.is_some_and(|desired| !same_services(desired, observed)) {
                                tracing::info!("our IPVS services differ from the config: a pass repairs them");
                                return;
                            }
                        }
                        Err(error) => tracing::debug!("reading our IPVS services: {error}"),
                    }
                }
            }
        }
    }
}

/// Whether the kernel has every desired service as desired. A service the kernel has beyond
/// them is not counted: a pass from an incomplete intent (shards missing) keeps such services,
/// and counting them would run a pass every second that changes nothing; the resync removes
/// what should go.
fn same_services(
    desired: &BTreeMap<ServiceKey, ServiceState>,
    observed: BTreeMap<ServiceKey, ServiceState>,
) -> bool {
    let desired = NodeState {
        services: desired.clone(),
        ..NodeState::default()
    };
    let observed = NodeState {
        services: observed,
        ..NodeState::default()
    };
    plan(&desired, &observed)
        .iter()
        .all(|op| matches!(op, Op::DeleteService(_)))
}

#[cfg(test)]
mod tests {
    use lvs_dataplane::model::{Destination, Forwarding, Protocol, Service, ServiceFlags};

    use super::*;

    fn service(address: &str, weights: &[u32]) -> (ServiceKey, ServiceState) {
        let key = ServiceKey::Address {
            address: address.parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
        };
        let destinations = weights
            .iter()
            .zip(11u8..)
            .map(|(weight, host)| Destination {
                address: std::net::IpAddr::from([10, 0, 1, host]),
                port: 80,
                weight: *weight,
                forwarding: Forwarding::DirectRouting,
                upper_threshold: 0,
                lower_threshold: 0,
            })
            .map(|destination| (destination.key(), destination))
            .collect();
        let service = Service {
            key,
            scheduler: "rr".into(),
            flags: ServiceFlags::default(),
            persistence: None,
        };
        (
            key,
            ServiceState {
                service,
                destinations,
            },
        )
    }

    #[test]
    fn missing_or_different_services_differ_and_extra_ones_do_not() {
        let desired = BTreeMap::from([service("10.0.0.1", &[1, 1])]);
        assert!(same_services(&desired, desired.clone()));
        assert!(!same_services(&desired, BTreeMap::new()), "ipvsadm -C");
        assert!(!same_services(
            &desired,
            BTreeMap::from([service("10.0.0.1", &[1])])
        ));
        assert!(!same_services(
            &desired,
            BTreeMap::from([service("10.0.0.1", &[1, 5])])
        ));
        assert!(
            !same_services(&desired, BTreeMap::from([service("10.0.0.1", &[1, 1, 1])])),
            "a destination added by hand"
        );
        let mut more = desired.clone();
        more.extend([service("10.0.0.2", &[1])]);
        assert!(same_services(&desired, more));
    }
}
