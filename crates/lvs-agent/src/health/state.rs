//! The rise/fall state machine of one target. Pure: it records outcomes and says when health
//! changes.
//!
//! A target starts `Unknown` (which the dataplane treats as healthy). The first success makes it
//! `Healthy`; `fall` consecutive failures make an `Unknown` or `Healthy` target `Unhealthy`; `rise`
//! consecutive successes bring an `Unhealthy` target back.

use std::time::Duration;

use crate::desired::Health;

use super::probe::ProbeOutcome;

/// How many consecutive results change health (each at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive successes that make an unhealthy target healthy.
    pub rise: u32,
    /// Consecutive failures that make a target unhealthy.
    pub fall: u32,
}

/// A change of health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Health before.
    pub from: Health,
    /// Health now.
    pub to: Health,
}

/// What is known about one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetState {
    health: Health,
    consecutive_successes: u32,
    consecutive_failures: u32,
    last_success: Option<bool>,
    last_latency: Option<Duration>,
    last_failure: Option<String>,
    last_check_millis: Option<u64>,
}

impl TargetState {
    /// A target not yet probed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `outcome`, finished at `now_millis` (unix time); returns the change of health,
    /// if any.
    pub fn record(
        &mut self,
        outcome: &ProbeOutcome,
        thresholds: Thresholds,
        now_millis: u64,
    ) -> Option<Transition> {
        self.last_success = Some(outcome.success);
        self.last_latency = Some(outcome.latency);
        self.last_check_millis = Some(now_millis);
        if outcome.success {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
            self.last_failure = Some(
                outcome
                    .message
                    .clone()
                    .unwrap_or_else(|| "check failed".to_owned()),
            );
        }
        let next = match self.health {
            Health::Unknown if outcome.success => Health::Healthy,
            Health::Unhealthy if self.consecutive_successes >= thresholds.rise.max(1) => Health::Healthy,
            Health::Unknown | Health::Healthy if self.consecutive_failures >= thresholds.fall.max(1) => {
                Health::Unhealthy
            }
            current => current,
        };
        let from = std::mem::replace(&mut self.health, next);
        (from != next).then_some(Transition { from, to: next })
    }

    /// Current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Successes in a row, up to the last result.
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Failures in a row, up to the last result.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether the last check passed; `None` before the first.
    pub fn last_success(&self) -> Option<bool> {
        self.last_success
    }

    /// How long the last check took.
    pub fn last_latency(&self) -> Option<Duration> {
        self.last_latency
    }

    /// Why the most recent failed check failed (kept after later successes).
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// When the last check finished, in unix milliseconds.
    pub fn last_check_millis(&self) -> Option<u64> {
        self.last_check_millis
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    const RISE_2_FALL_3: Thresholds = Thresholds { rise: 2, fall: 3 };

    fn pass() -> ProbeOutcome {
        ProbeOutcome::success(Duration::from_millis(5))
    }

    fn fail() -> ProbeOutcome {
        ProbeOutcome::failure(
            Duration::from_millis(7),
            "connect 10.0.0.1:80: connection refused",
        )
    }

    /// Feeds `outcomes` (`+` success, `-` failure) and returns the health after each.
    fn run(thresholds: Thresholds, outcomes: &str) -> Vec<Health> {
        let mut state = TargetState::new();
        outcomes
            .chars()
            .map(|result| {
                let outcome = if result == '+' { pass() } else { fail() };
                state.record(&outcome, thresholds, 0);
                state.health()
            })
            .collect()
    }

    use Health::{Healthy as H, Unhealthy as D, Unknown as U};

    #[test]
    fn starts_unknown() {
        let state = TargetState::new();
        assert_eq!(state.health(), U);
        assert_eq!(state.last_success(), None);
        assert_eq!(state.last_check_millis(), None);
    }

    #[test]
    fn first_success_from_unknown_is_healthy_at_once() {
        assert_eq!(run(RISE_2_FALL_3, "+"), [H]);
        assert_eq!(run(RISE_2_FALL_3, "--+"), [U, U, H]);
    }

    #[test]
    fn fall_failures_from_unknown_make_unhealthy() {
        assert_eq!(run(RISE_2_FALL_3, "---"), [U, U, D]);
    }

    #[test]
    fn fall_consecutive_failures_from_healthy_make_unhealthy() {
        assert_eq!(run(RISE_2_FALL_3, "+--+---"), [H, H, H, H, H, H, D]);
    }

    #[test]
    fn rise_consecutive_successes_from_unhealthy_make_healthy() {
        assert_eq!(run(RISE_2_FALL_3, "---+-++"), [U, U, D, D, D, D, H]);
    }

    #[test]
    fn a_failure_while_unhealthy_restarts_the_rise_count() {
        assert_eq!(
            run(Thresholds { rise: 3, fall: 1 }, "-++-+++"),
            [D, D, D, D, D, D, H]
        );
    }

    #[test]
    fn thresholds_of_one() {
        let one = Thresholds { rise: 1, fall: 1 };
        assert_eq!(run(one, "-+-+"), [D, H, D, H]);
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        let zero = Thresholds { rise: 0, fall: 0 };
        assert_eq!(run(zero, "+-+"), [H, D, H]);
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut state = TargetState::new();
        let thresholds = Thresholds { rise: 2, fall: 2 };
        assert_eq!(
            state.record(&pass(), thresholds, 1),
            Some(Transition { from: U, to: H })
        );
        assert_eq!(state.record(&pass(), thresholds, 2), None);
        assert_eq!(state.record(&fail(), thresholds, 3), None);
        assert_eq!(
            state.record(&fail(), thresholds, 4),
            Some(Transition { from: H, to: D })
        );
        assert_eq!(state.record(&fail(), thresholds, 5), None);
        assert_eq!(state.record(&pass(), thresholds, 6), None);
        assert_eq!(
            state.record(&pass(), thresholds, 7),
            Some(Transition { from: D, to: H })
        );
    }

    #[test]
    fn keeps_counts_latency_time_and_last_failure() {
        let mut state = TargetState::new();
        state.record(&fail(), RISE_2_FALL_3, 1_000);
        state.record(&fail(), RISE_2_FALL_3, 2_000);
        assert_eq!(state.consecutive_failures(), 2);
        assert_eq!(state.consecutive_successes(), 0);
        assert_eq!(state.last_success(), Some(false));
        assert_eq!(state.last_latency(), Some(Duration::from_millis(7)));
        state.record(&pass(), RISE_2_FALL_3, 3_000);
        assert_eq!(state.consecutive_failures(), 0);
        assert_eq!(state.consecutive_successes(), 1);
        assert_eq!(state.last_success(), Some(true));
        assert_eq!(state.last_latency(), Some(Duration::from_millis(5)));
        assert_eq!(state.last_check_millis(), Some(3_000));
        assert_eq!(
            state.last_failure(),
            Some("connect 10.0.0.1:80: connection refused")
        );
    }

    #[test]
    fn a_failure_without_a_message_still_has_a_reason() {
        let mut state = TargetState::new();
        let outcome = ProbeOutcome {
            success: false,
            latency: Duration::ZERO,
            message: None,
        };
        state.record(&outcome, RISE_2_FALL_3, 0);
        assert_eq!(state.last_failure(), Some("check failed"));
    }
}
