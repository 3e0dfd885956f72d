//! Per-object retry delays: each object whose work failed waits 100 ms, then twice as long
//! after every further failure, up to a minute; an object that succeeds starts over. The loop
//! retries when the soonest failing object is due — never a hot loop. The agent keys it by the
//! object it programs; the controller, whose pass is one unit, by the pass.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The first retry delay.
pub const INITIAL: Duration = Duration::from_millis(100);
/// The longest retry delay.
pub const MAXIMUM: Duration = Duration::from_secs(60);

/// Retry delays of the objects that are failing, by object name.
#[derive(Debug, Default)]
pub struct Backoff {
    failing: BTreeMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// Records one pass: `failing` are the objects that failed in it (all others succeeded).
    pub fn record<'a>(&mut self, failing: impl IntoIterator<Item = &'a str>, now: Instant) {
        let failing: Vec<&str> = failing.into_iter().collect();
        self.failing.retain(|name, _| failing.contains(&name.as_str()));
        for name in failing {
            let entry = self
                .failing
                .entry(name.to_owned())
                .and_modify(|(delay, _)| *delay = (*delay * 2).min(MAXIMUM))
                .or_insert((INITIAL, now));
            entry.1 = now + entry.0;
        }
    }

    /// When the next retry is due, if anything is failing.
    pub fn next_retry(&self) -> Option<Instant> {
        self.failing.values().map(|(_, due)| *due).min()
    }

    /// The current delay of one object, if it is failing.
    pub fn delay_of(&self, name: &str) -> Option<Duration> {
        self.failing.get(name).map(|(delay, _)| *delay)
    }

    /// Forgets every failure (the intent changed: retry at once).
    pub fn reset(&mut self) {
        self.failing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_object_up_to_a_minute_and_restart_after_success() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        assert_eq!(backoff.next_retry(), None);
        backoff.record(["a"], now);
        assert_eq!(backoff.delay_of("a"), Some(INITIAL));
        assert_eq!(backoff.next_retry(), Some(now + INITIAL));
        for _ in 0..20 {
            backoff.record(["a"], now);
        }
        assert_eq!(backoff.delay_of("a"), Some(MAXIMUM));
        backoff.record(["a", "b"], now);
        assert_eq!(backoff.delay_of("b"), Some(INITIAL));
        assert_eq!(
            backoff.next_retry(),
            Some(now + INITIAL),
            "the soonest object decides"
        );
        backoff.record(["b"], now);
        assert_eq!(backoff.delay_of("a"), None, "a succeeded: it starts over");
        assert_eq!(backoff.delay_of("b"), Some(INITIAL * 2));
        backoff.record([], now);
        assert_eq!(backoff.next_retry(), None);
    }
}
