//! Condition helpers following the Kubernetes API conventions: set a condition carrying
//! `lastTransitionTime` forward when its status did not change, stamp `observedGeneration`,
//! and compare condition lists without timestamps so unchanged status is never written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition without its timestamp, as computed by the status logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionDraft {
    /// Type, e.g. `Ready`.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ConditionDraft {
    /// A new draft.
    pub fn new(
        type_: &'static str,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Sets `draft` in `conditions` (replacing the condition of the same type), stamping
/// `generation`. `lastTransitionTime` is carried forward when the status is unchanged, else set
/// to `now`. Returns whether anything but timestamps changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    draft: ConditionDraft,
    generation: Option<i64>,
    now: &Time,
) -> bool {
    let existing = conditions
        .iter()
        .position(|condition| condition.type_ == draft.type_);
    let last_transition_time = match existing.map(|index| &conditions[index]) {
        Some(previous) if previous.status == draft.status => previous.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: draft.type_.to_owned(),
        status: draft.status.to_owned(),
        reason: draft.reason.to_owned(),
        message: draft.message,
        observed_generation: generation,
        last_transition_time,
    };
    match existing {
        Some(index) => {
            let changed = !equal_ignoring_time(&conditions[index], &condition);
            conditions[index] = condition;
            changed
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// Merges a whole set of drafts: sets each, removes conditions of types listed in `owned_types`
/// that no draft mentions, and sorts by type. Returns whether anything but timestamps changed.
pub fn merge_conditions(
    conditions: &mut Vec<Condition>,
    drafts: Vec<ConditionDraft>,
    owned_types: &[&str],
    generation: Option<i64>,
    now: &Time,
) -> bool {
    let before = conditions.clone();
    conditions.retain(|condition| {
        !owned_types.contains(&condition.type_.as_str())
            || drafts.iter().any(|draft| draft.type_ == condition.type_)
    });
    for draft in drafts {
        set_condition(conditions, draft, generation, now);
    }
    conditions.sort_by(|left, right| left.type_.cmp(&right.type_));
    !lists_equal_ignoring_time(&before, conditions)
}

/// Whether two conditions are equal apart from `lastTransitionTime`.
pub fn equal_ignoring_time(left: &Condition, right: &Condition) -> bool {
    left.type_ == right.type_
        && left.status == right.status
        && left.reason == right.reason
        && left.message == right.message
        && left.observed_generation == right.observed_generation
}

/// Whether two condition lists are equal apart from timestamps (order-insensitive).
pub fn lists_equal_ignoring_time(left: &[Condition], right: &[Condition]) -> bool {
    left.len() == right.len()
        && left.iter().all(|condition| {
            right
                .iter()
                .any(|other| other.type_ == condition.type_ && equal_ignoring_time(condition, other))
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn time(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: &'static str, message: &str) -> ConditionDraft {
        ConditionDraft::new("Ready", status, "Serving", message)
    }

    #[test]
    fn transition_time_is_carried_forward_while_the_status_holds() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            ready("True", "2/2"),
            Some(1),
            &time(100)
        ));
        assert!(
            !set_condition(&mut conditions, ready("True", "2/2"), Some(1), &time(200)),
            "nothing changed"
        );
        assert_eq!(conditions[0].last_transition_time, time(100));
        assert!(
            set_condition(&mut conditions, ready("True", "1/2"), Some(1), &time(300)),
            "message changed"
        );
        assert_eq!(
            conditions[0].last_transition_time,
            time(100),
            "same status keeps its time"
        );
        assert!(set_condition(
            &mut conditions,
            ready("False", "0/2"),
            Some(2),
            &time(400)
        ));
        assert_eq!(conditions[0].last_transition_time, time(400));
        assert_eq!(conditions[0].observed_generation, Some(2));
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn merge_removes_owned_types_no_longer_reported_and_sorts() {
        let mut conditions = Vec::new();
        let drafts = vec![
            ready("True", "ok"),
            ConditionDraft::new("Accepted", "True", "Accepted", ""),
        ];
        assert!(merge_conditions(
            &mut conditions,
            drafts.clone(),
            &["Ready", "Accepted"],
            Some(1),
            &time(1)
        ));
        assert_eq!(
            conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Accepted", "Ready"]
        );
        assert!(!merge_conditions(
            &mut conditions,
            drafts,
            &["Ready", "Accepted"],
            Some(1),
            &time(2)
        ));
        assert!(merge_conditions(
            &mut conditions,
            vec![ready("True", "ok")],
            &["Ready", "Accepted"],
            Some(1),
            &time(3)
        ));
        assert_eq!(conditions.len(), 1, "Accepted is owned and was not reported");
    }

    #[test]
    fn comparison_ignores_only_timestamps() {
        let mut left = Vec::new();
        let mut right = Vec::new();
        set_condition(&mut left, ready("True", "a"), Some(1), &time(1));
        set_condition(&mut right, ready("True", "a"), Some(1), &time(9));
        assert!(lists_equal_ignoring_time(&left, &right));
        set_condition(&mut right, ready("True", "a"), Some(2), &time(9));
        assert!(
            !lists_equal_ignoring_time(&left, &right),
            "observedGeneration matters"
        );
    }
}
