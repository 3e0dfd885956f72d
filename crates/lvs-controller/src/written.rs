//! What the controller wrote that its stores may not show yet. A write echoes back through the
//! watch a moment later; until then the store still holds the version the write replaced, and
//! comparing against it would write the same thing again. So each write is remembered with the
//! resourceVersion it replaced, and trusted exactly while the store still shows that version.

use std::collections::HashMap;

/// Values written per object name (hashed: every pass looks up each of tens of thousands of
/// objects).
#[derive(Debug, Clone)]
pub struct Written<T> {
    entries: HashMap<String, (Option<String>, T)>,
}

impl<T> Default for Written<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<T> Written<T> {
    /// Remembers that `value` was written over the object version `replaced` (`None`: the object
    /// did not exist).
    pub fn record(&mut self, name: &str, replaced: Option<String>, value: T) {
        self.entries.insert(name.to_owned(), (replaced, value));
    }

    /// The value the object holds as far as the controller knows: what it wrote, while the store
    /// still shows the version that write replaced; else what the store shows.
    pub fn current<'a>(
        &'a self,
        name: &str,
        stored_version: Option<&str>,
        stored: Option<&'a T>,
    ) -> Option<&'a T> {
        match self.entries.get(name) {
            Some((replaced, value)) if replaced.as_deref() == stored_version => Some(value),
            _ => stored,
        }
    }

    /// Forgets the write to `name` once the store shows any other version than the one it
    /// replaced: the store has caught up (or someone wrote after us), so the store is right.
    pub fn settle(&mut self, name: &str, stored_version: Option<&str>) {
        if self
            .entries
            .get(name)
            .is_some_and(|(replaced, _)| replaced.as_deref() != stored_version)
        {
            self.entries.remove(name);
        }
    }

    /// Forgets the objects `keep` rejects.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|name, _| keep(name));
    }

    /// Forgets everything (after losing and regaining leadership, another replica may have
    /// written since).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_trusted_until_the_store_moves_past_the_version_it_replaced() {
        let mut written = Written::default();
        let stored = 1;
        assert_eq!(written.current("a", Some("5"), Some(&stored)), Some(&1));
        written.record("a", Some("5".to_owned()), 2);
        assert_eq!(
            written.current("a", Some("5"), Some(&stored)),
            Some(&2),
            "the echo has not arrived"
        );
        let echoed = 2;
        assert_eq!(written.current("a", Some("6"), Some(&echoed)), Some(&2));
        let someone_else = 3;
        assert_eq!(
            written.current("a", Some("7"), Some(&someone_else)),
            Some(&3),
            "a later change by anyone wins"
        );
        written.record("b", None, 9);
        assert_eq!(
            written.current("b", None, None),
            Some(&9),
            "created, not yet seen"
        );
        written.settle("b", Some("1"));
        assert_eq!(
            written.current("b", None, None),
            None,
            "seen once, then deleted by someone: the store is right"
        );
        written.retain(|name| name != "a");
        assert_eq!(written.current("a", Some("5"), Some(&stored)), Some(&1));
    }
}
