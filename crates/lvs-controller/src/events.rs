//! Kubernetes Events on transitions: a VirtualServer accepted, or rejected (conflict, invalid,
//! VIP is a node address); its active director changing; a real server going down or coming
//! back; an object the controller cannot read. Which Events to send is decided purely from the conditions before and after a
//! status write; they are published only once that write succeeded, so a retried write never
//! repeats them.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use lvs_api::conditions::{reasons, status as condition_status, types};

/// Event reason: a real server started failing its checks.
pub const REAL_SERVER_DOWN: &str = "RealServerDown";
/// Event reason: a real server passes its checks again.
pub const REAL_SERVER_UP: &str = "RealServerUp";
/// Event reason: another director holds a VirtualServer's VIP now.
pub const DIRECTOR_CHANGED: &str = "DirectorChanged";
/// Event reason: no director holds a VirtualServer's VIP any more.
pub const NO_ACTIVE_DIRECTOR: &str = "NoActiveDirector";
/// Event reason: an object cannot be read (it does not match the schema the controller knows).
pub const UNREADABLE: &str = "Unreadable";

/// One Event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning (else Normal).
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What the controller did, CamelCase.
    pub action: &'static str,
    /// For humans.
    pub note: String,
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// The Events a VirtualServer's `Accepted` transition calls for.
pub fn virtual_server_notices(previous: &[Condition], next: &[Condition]) -> Vec<Notice> {
    let before = find(previous, types::ACCEPTED);
    let Some(after) = find(next, types::ACCEPTED) else {
        return Vec::new();
    };
    let was = |status: &str| before.is_some_and(|before| before.status == status);
    if after.status == condition_status::TRUE && !was(condition_status::TRUE) {
        return vec![Notice {
            warning: false,
            reason: after.reason.clone(),
            action: "Accept",
            note: after.message.clone(),
        }];
    }
    let same_rejection =
        was(condition_status::FALSE) && before.is_some_and(|before| before.reason == after.reason);
    if after.status == condition_status::FALSE && !same_rejection {
        return vec![Notice {
            warning: true,
            reason: after.reason.clone(),
            action: "Reject",
            note: after.message.clone(),
        }];
    }
    Vec::new()
}

/// Whether a VirtualServer's directors have all reported its current generation (`Programmed`
/// not `Pending`): only then does "no active director" mean one was lost, not that they are
/// catching up with a spec change.
pub fn directors_settled(conditions: &[Condition]) -> bool {
    find(conditions, types::PROGRAMMED).is_none_or(|programmed| programmed.reason != reasons::PENDING)
}

/// The Event a change of a VirtualServer's active director calls for. `last_known` is the
/// director last seen settled (`None`: never seen — the first one is no change).
pub fn director_notices(last_known: Option<Option<&str>>, next: Option<&str>) -> Vec<Notice> {
    let Some(previous) = last_known else {
        return Vec::new();
    };
    if previous == next {
        return Vec::new();
    }
    match next {
        Some(next) => vec![Notice {
            warning: false,
            reason: DIRECTOR_CHANGED.to_owned(),
            action: "Failover",
            note: match previous {
                Some(previous) => format!("the active director is now {next} (was {previous})"),
                None => format!("the active director is now {next} (there was none)"),
            },
        }],
        None => vec![Notice {
            warning: true,
            reason: NO_ACTIVE_DIRECTOR.to_owned(),
            action: "Failover",
            note: format!(
                "no director holds the VIP any more (was {})",
                previous.unwrap_or("none")
            ),
        }],
    }
}

/// The Event a VirtualServer's `DuplicateVIP` turning True calls for.
pub fn duplicate_notices(previous: &[Condition], next: &[Condition]) -> Vec<Notice> {
    let Some(after) = find(next, types::DUPLICATE_VIP) else {
        return Vec::new();
    };
    let before = find(previous, types::DUPLICATE_VIP);
    if after.status == condition_status::TRUE
        && before.is_none_or(|before| before.status != condition_status::TRUE)
    {
        return vec![Notice {
            warning: true,
            reason: types::DUPLICATE_VIP.to_owned(),
            action: "Probe",
            note: after.message.clone(),
        }];
    }
    Vec::new()
}

/// The Events a RealServer's `Healthy` transition calls for: down (True → False) and up
/// (False → True). A first result is no transition.
pub fn real_server_notices(previous: &[Condition], next: &[Condition]) -> Vec<Notice> {
    let (Some(before), Some(after)) = (find(previous, types::HEALTHY), find(next, types::HEALTHY)) else {
        return Vec::new();
    };
    match (before.status.as_str(), after.status.as_str()) {
        (condition_status::TRUE, condition_status::FALSE) => vec![Notice {
            warning: true,
            reason: REAL_SERVER_DOWN.to_owned(),
            action: "HealthCheck",
            note: after.message.clone(),
        }],
        (condition_status::FALSE, condition_status::TRUE) => vec![Notice {
            warning: false,
            reason: REAL_SERVER_UP.to_owned(),
            action: "HealthCheck",
            note: after.message.clone(),
        }],
        _ => Vec::new(),
    }
}

/// Sends Events as `lvs-controller`.
#[derive(Clone)]
pub struct Publisher {
    recorder: Recorder,
}

impl Publisher {
    /// A publisher reporting as `instance` (the pod name).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: lvs_api::labels::CONTROLLER_FIELD_MANAGER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes one Event about `regarding`.
    pub async fn publish(&self, notice: &Notice, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let note: String = notice.note.chars().take(1000).collect();
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.clone(),
            note: Some(note),
            action: notice.action.to_owned(),
            secondary: None,
        };
        self.recorder.publish(&event, regarding).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: format!("{type_} {status}"),
            observed_generation: Some(1),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }
    }

    #[test]
    fn acceptance_transitions_are_announced_once() {
        let accepted = [condition("Accepted", "True", "Accepted")];
        let conflict = [condition("Accepted", "False", "Conflict")];
        let invalid = [condition("Accepted", "False", "Invalid")];
        let reasons = |notices: Vec<Notice>| {
            notices
                .into_iter()
                .map(|notice| (notice.warning, notice.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reasons(virtual_server_notices(&[], &accepted)),
            [(false, "Accepted".to_owned())]
        );
        assert_eq!(reasons(virtual_server_notices(&accepted, &accepted)), []);
        assert_eq!(
            reasons(virtual_server_notices(&accepted, &conflict)),
            [(true, "Conflict".to_owned())]
        );
        assert_eq!(reasons(virtual_server_notices(&conflict, &conflict)), []);
        assert_eq!(
            reasons(virtual_server_notices(&conflict, &invalid)),
            [(true, "Invalid".to_owned())],
            "a new reason is news"
        );
        assert_eq!(
            reasons(virtual_server_notices(&[], &conflict)),
            [(true, "Conflict".to_owned())]
        );
    }

    #[test]
    fn director_changes_are_announced_but_not_the_first_one_seen() {
        assert!(director_notices(None, Some("a")).is_empty(), "no earlier status");
        assert!(director_notices(Some(Some("a")), Some("a")).is_empty());
        let changed = director_notices(Some(Some("a")), Some("b"));
        assert_eq!(changed[0].reason, DIRECTOR_CHANGED);
        assert_eq!(changed[0].note, "the active director is now b (was a)");
        assert!(!changed[0].warning);
        assert_eq!(
            director_notices(Some(None), Some("b"))[0].reason,
            DIRECTOR_CHANGED
        );
        let lost = director_notices(Some(Some("a")), None);
        assert_eq!(lost[0].reason, NO_ACTIVE_DIRECTOR);
        assert!(lost[0].warning);
    }

    #[test]
    fn directors_catching_up_with_a_new_generation_are_not_settled() {
        assert!(directors_settled(&[condition(
            "Programmed",
            "True",
            "Programmed"
        )]));
        assert!(directors_settled(&[condition(
            "Programmed",
            "False",
            "KernelError"
        )]));
        assert!(!directors_settled(&[condition("Programmed", "False", "Pending")]));
    }

    #[test]
    fn a_duplicate_vip_is_announced_when_it_appears() {
        let clear = [condition("DuplicateVIP", "False", "NoDuplicate")];
        let duplicate = [condition("DuplicateVIP", "True", "AnsweredElsewhere")];
        assert_eq!(duplicate_notices(&clear, &duplicate)[0].reason, "DuplicateVIP");
        assert!(duplicate_notices(&clear, &duplicate)[0].warning);
        assert_eq!(duplicate_notices(&[], &duplicate).len(), 1);
        assert!(duplicate_notices(&duplicate, &duplicate).is_empty());
        assert!(duplicate_notices(&duplicate, &clear).is_empty());
    }

    #[test]
    fn real_servers_going_down_and_up_are_announced_but_not_their_first_result() {
        let up = [condition("Healthy", "True", "CheckPassed")];
        let down = [condition("Healthy", "False", "CheckFailed")];
        let unknown = [condition("Healthy", "Unknown", "Pending")];
        assert!(real_server_notices(&[], &up).is_empty());
        assert!(real_server_notices(&unknown, &down).is_empty());
        assert_eq!(real_server_notices(&up, &down)[0].reason, REAL_SERVER_DOWN);
        assert!(real_server_notices(&up, &down)[0].warning);
        assert_eq!(real_server_notices(&down, &up)[0].reason, REAL_SERVER_UP);
        assert!(real_server_notices(&down, &down).is_empty());
    }
}
