//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several controller replicas
//! exactly one writes. The rules are client-go's: take the Lease when it is missing, has no
//! holder, or its holder has not renewed it for a whole lease duration *as this replica
//! observed it* (its own monotonic clock — no trust in other machines' clocks); renew it every
//! retry period while leading; step down at once when someone else holds it, and when renewing
//! has failed for longer than the renew deadline (shorter than the lease duration, so a leader
//! cut off from the API server stops writing before anyone else may start). Every write is an
//! optimistic-concurrency update (the read resourceVersion), so two replicas never both win.
//! On shutdown the leader releases the Lease for a fast hand-over.
//!
//! [`Elector`] is the pure decision; [`run`] does the requests.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

/// Timing and identity of one candidate.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace of the Lease (the controller's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays held without renewal (whole seconds in the Lease).
    pub lease_duration: Duration,
    /// How long a leader keeps leading while it cannot renew.
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl Settings {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// What to do with the Lease as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, holding it.
    Create,
    /// It is free or expired: take it.
    Acquire,
    /// It is ours: renew it.
    Renew,
    /// Someone else holds it.
    Follow {
        /// Its holder.
        holder: String,
    },
}

/// The part of a Lease whose change shows that its holder is alive.
type Record = (Option<String>, Option<MicroTime>, Option<i32>);

fn record(spec: &LeaseSpec) -> Record {
    (
        spec.holder_identity.clone(),
        spec.renew_time.clone(),
        spec.lease_transitions,
    )
}

/// The decision rules, with what this replica observed of other holders.
#[derive(Debug, Clone)]
pub struct Elector {
    identity: String,
    lease_duration: Duration,
    observed: Option<(Record, Instant)>,
}

impl Elector {
    /// A candidate named `identity` that considers a Lease expired `lease_duration` after it
    /// last saw it change (unless the Lease states its own duration).
    pub fn new(identity: impl Into<String>, lease_duration: Duration) -> Self {
        Self {
            identity: identity.into(),
            lease_duration,
            observed: None,
        }
    }

    /// Decides what to do with `lease` (its spec; `None`: no Lease object) at `now`.
    pub fn decide(&mut self, lease: Option<&LeaseSpec>, now: Instant) -> Decision {
        let Some(spec) = lease else {
            self.observed = None;
            return Decision::Create;
        };
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder == self.identity {
            return Decision::Renew;
        }
        if holder.is_empty() {
            return Decision::Acquire;
        }
        let current = record(spec);
        let since = match &self.observed {
            Some((seen, since)) if *seen == current => *since,
            _ => {
                self.observed = Some((current, now));
                now
            }
        };
        let duration = spec
            .lease_duration_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map_or(self.lease_duration, Duration::from_secs);
        if now.duration_since(since) >= duration {
            Decision::Acquire
        } else {
            Decision::Follow { holder }
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Leading,
    Following(String),
}

/// Campaigns for the Lease until `shutdown` resolves, publishing whether this replica leads on
/// `leading`; releases the Lease on shutdown if it holds it.
pub async fn run(
    client: Client,
    settings: Settings,
    leading: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut elector = Elector::new(&settings.identity, settings.lease_duration);
    let mut last_renewal: Option<Instant> = None;
    let mut follows: Option<String> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let started = Instant::now();
        match attempt(&api, &settings, &mut elector, started).await {
            Ok(Attempt::Leading) => {
                last_renewal = Some(started);
                follows = None;
                if !*leading.borrow() {
                    tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
                    leading.send_replace(true);
                }
            }
            Ok(Attempt::Following(holder)) => {
                last_renewal = None;
                if *leading.borrow() {
                    tracing::warn!(lease = %settings.name, %holder, "lost the lease: stepping down");
                    leading.send_replace(false);
                } else if follows.as_ref() != Some(&holder) {
                    tracing::info!(lease = %settings.name, %holder, "another replica leads: standing by");
                }
                follows = Some(holder);
            }
            Err(error) => {
                tracing::warn!(%error, lease = %settings.name, "cannot read or renew the lease");
                let overdue = last_renewal
                    .is_none_or(|renewed| started.duration_since(renewed) >= settings.renew_deadline);
                if *leading.borrow() && overdue {
                    tracing::warn!(lease = %settings.name, "could not renew within the renew deadline: stepping down");
                    leading.send_replace(false);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(started + settings.retry_period) => {}
            () = &mut shutdown => break,
        }
    }
    if *leading.borrow() {
        leading.send_replace(false);
        if let Err(error) = release(&api, &settings).await {
            tracing::warn!(%error, lease = %settings.name, "cannot release the lease; it expires by itself");
        }
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

async fn attempt(
    api: &Api<Lease>,
    settings: &Settings,
    elector: &mut Elector,
    now: Instant,
) -> Result<Attempt, kube::Error> {
    let lease = api.get_opt(&settings.name).await?;
    let decision = elector.decide(lease.as_ref().and_then(|lease| lease.spec.as_ref()), now);
    let wall_clock = MicroTime(Timestamp::now());
    let written = match (decision, lease) {
        (Decision::Follow { holder }, _) => return Ok(Attempt::Following(holder)),
        (Decision::Create, _) | (_, None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(settings.lease_duration_seconds()),
                    acquire_time: Some(wall_clock.clone()),
                    renew_time: Some(wall_clock),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await.map(drop)
        }
        (Decision::Renew, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(wall_clock);
            spec.lease_duration_seconds = Some(settings.lease_duration_seconds());
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
                .map(drop)
        }
        (Decision::Acquire, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(settings.identity.clone());
            spec.lease_duration_seconds = Some(settings.lease_duration_seconds());
            spec.acquire_time = Some(wall_clock.clone());
            spec.renew_time = Some(wall_clock);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
                .map(drop)
        }
    };
    match written {
        Ok(()) => Ok(Attempt::Leading),
        // Someone else wrote the Lease between our read and our write: they won this round.
        Err(error) if is_conflict(&error) => Ok(Attempt::Following("another replica".to_owned())),
        Err(error) => Err(error),
    }
}

/// Gives the Lease up if this replica still holds it: no holder, so others take it at once.
async fn release(api: &Api<Lease>, settings: &Settings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&settings.name, &PostParams::default(), &lease)
        .await?;
    tracing::info!(lease = %settings.name, "released the lease");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn held_by(holder: Option<&str>, renewed_at: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_at).unwrap())),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_or_free_lease_is_taken_and_our_own_is_renewed() {
        let now = Instant::now();
        let mut elector = Elector::new("me", 15 * SECOND);
        assert_eq!(elector.decide(None, now), Decision::Create);
        assert_eq!(elector.decide(Some(&held_by(None, 1)), now), Decision::Acquire);
        assert_eq!(
            elector.decide(Some(&held_by(Some(""), 1)), now),
            Decision::Acquire
        );
        assert_eq!(
            elector.decide(Some(&held_by(Some("me"), 1)), now),
            Decision::Renew
        );
    }

    #[test]
    fn another_holder_is_followed_until_it_stops_renewing_for_a_lease_duration() {
        let start = Instant::now();
        let mut elector = Elector::new("me", 15 * SECOND);
        let other = held_by(Some("other"), 100);
        let follow = Decision::Follow {
            holder: "other".to_owned(),
        };
        assert_eq!(
            elector.decide(Some(&other), start),
            follow,
            "first sight: wait a whole duration, however old the renewTime looks"
        );
        assert_eq!(elector.decide(Some(&other), start + 14 * SECOND), follow);
        assert_eq!(
            elector.decide(Some(&other), start + 15 * SECOND),
            Decision::Acquire
        );
    }

    #[test]
    fn a_renewal_restarts_the_wait() {
        let start = Instant::now();
        let mut elector = Elector::new("me", 15 * SECOND);
        let follow = Decision::Follow {
            holder: "other".to_owned(),
        };
        assert_eq!(elector.decide(Some(&held_by(Some("other"), 100)), start), follow);
        assert_eq!(
            elector.decide(Some(&held_by(Some("other"), 110)), start + 10 * SECOND),
            follow
        );
        assert_eq!(
            elector.decide(Some(&held_by(Some("other"), 110)), start + 20 * SECOND),
            follow,
            "renewed 10 s in: expires at 25 s"
        );
        assert_eq!(
            elector.decide(Some(&held_by(Some("other"), 110)), start + 25 * SECOND),
            Decision::Acquire
        );
    }

    #[test]
    fn the_lease_s_own_duration_wins_over_ours() {
        let start = Instant::now();
        let mut elector = Elector::new("me", 15 * SECOND);
        let mut short = held_by(Some("other"), 100);
        short.lease_duration_seconds = Some(2);
        assert!(matches!(
            elector.decide(Some(&short), start),
            Decision::Follow { .. }
        ));
        assert_eq!(
            elector.decide(Some(&short), start + 2 * SECOND),
            Decision::Acquire
        );
    }
}
