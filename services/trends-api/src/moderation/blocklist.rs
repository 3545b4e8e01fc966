//! The blocklist: an immutable [`Blocklist`] that readers share (`Arc`), and the [`Entries`]
//! the follower changes record by record and turns into a new [`Blocklist`] after each batch.

use std::collections::{BTreeMap, HashSet};

use super::entry::{Change, Entry, Kind};
use super::glob::Glob;

/// A published blocklist. Cheap to ask: a hash lookup for the exact tags, then each pattern
/// (at most `moderation.max_patterns`, each linear in the tag, see [`super::glob`]).
#[derive(Debug, Default)]
pub struct Blocklist {
    /// Every entry, by key (sorted: the export's order).
    entries: BTreeMap<String, Entry>,
    exact: HashSet<String>,
    patterns: Vec<Glob>,
}

impl Blocklist {
    fn new(entries: BTreeMap<String, Entry>) -> Blocklist {
        let mut exact = HashSet::new();
        let mut patterns = Vec::new();
        for entry in entries.values() {
            match entry.kind {
                Kind::Exact => {
                    exact.insert(entry.entry.clone());
                }
                Kind::Pattern => patterns.push(Glob::new(&entry.entry)),
            }
        }
        Blocklist {
            entries,
            exact,
            patterns,
        }
    }

    /// Whether `tag`, a counting form (normalized, as the counts and the view hold tags), is
    /// blocked: it is an exact entry or matches a pattern.
    pub fn is_blocked(&self, tag: &str) -> bool {
        self.exact.contains(tag) || self.patterns.iter().any(|glob| glob.matches(tag))
    }

    /// The entry with this key (a normalized tag or pattern).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every entry, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries are patterns.
    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }

    /// The export: one entry a line, as JSON, sorted by key.
    pub fn to_ndjson(&self) -> String {
        let mut out = String::new();
        for entry in self.entries.values() {
            // Serializing strings and an enum cannot fail; an entry that did would be left out.
            if let Ok(line) = serde_json::to_string(entry) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// The bounds on what the blocklist holds (`moderation.max_entries`, `.max_patterns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_patterns: usize,
}

/// The follower's working copy.
#[derive(Debug)]
pub struct Entries {
    map: BTreeMap<String, Entry>,
    patterns: usize,
    limits: Limits,
}

impl Entries {
    pub fn new(limits: Limits) -> Entries {
        Entries {
            map: BTreeMap::new(),
            patterns: 0,
            limits,
        }
    }

    /// Applies one record's change; `Ok(true)` if it changed anything. A new entry beyond the
    /// limits is refused (only a writer that skipped the admin API's checks, or two admins
    /// racing to the last places, can get there).
    pub fn apply(&mut self, change: Change) -> Result<bool, String> {
        match change {
            Change::Remove(key) => {
                let removed = self.map.remove(&key);
                if removed.as_ref().is_some_and(|e| e.kind == Kind::Pattern) {
                    self.patterns -= 1;
                }
                Ok(removed.is_some())
            }
            Change::Put(entry) => {
                if let Some(old) = self.map.get_mut(&entry.entry) {
                    // Same key, same kind: the count of patterns stays.
                    let changed = *old != entry;
                    *old = entry;
                    return Ok(changed);
                }
                if self.map.len() >= self.limits.max_entries {
                    return Err(format!(
                        "the blocklist is full ({} entries, moderation.max_entries)",
                        self.limits.max_entries
                    ));
                }
                if entry.kind == Kind::Pattern {
                    if self.patterns >= self.limits.max_patterns {
                        return Err(format!(
                            "the blocklist holds {} patterns already (moderation.max_patterns)",
                            self.limits.max_patterns
                        ));
                    }
                    self.patterns += 1;
                }
                self.map.insert(entry.entry.clone(), entry);
                Ok(true)
            }
        }
    }

    /// An immutable copy to publish.
    pub fn publish(&self) -> Blocklist {
        Blocklist::new(self.map.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(raw: &str) -> Change {
        Change::Put(Entry::new(raw, None, 0).expect("valid"))
    }

    #[test]
    fn exact_tags_and_patterns_block_within_the_limits() {
        let mut entries = Entries::new(Limits {
            max_entries: 4,
            max_patterns: 2,
        });
        for raw in ["spam", "*porn*", "crypto*"] {
            assert_eq!(entries.apply(put(raw)), Ok(true), "{raw}");
        }
        assert_eq!(entries.apply(put("spam")), Ok(false), "the same again");
        assert!(entries.apply(put("*third*")).is_err(), "a third pattern");
        assert_eq!(entries.apply(put("ham")), Ok(true));
        assert!(entries.apply(put("eggs")).is_err(), "a fifth entry");
        let list = entries.publish();
        assert_eq!((list.len(), list.patterns()), (4, 2));
        for (tag, blocked) in [
            ("spam", true),
            ("spammer", false),
            ("freeporn", true),
            ("cryptocoin", true),
            ("bitcrypto", false),
            ("rust", false),
        ] {
            assert_eq!(list.is_blocked(tag), blocked, "{tag}");
        }
        assert_eq!(entries.apply(Change::Remove("*porn*".into())), Ok(true));
        assert_eq!(entries.apply(Change::Remove("*porn*".into())), Ok(false));
        assert_eq!(
            entries.apply(put("*third*")),
            Ok(true),
            "a pattern's place freed"
        );
        let list = entries.publish();
        assert!(!list.is_blocked("freeporn"));
        let keys: Vec<&str> = list.entries().map(|e| e.entry.as_str()).collect();
        assert_eq!(keys, ["*third*", "crypto*", "ham", "spam"]);
        assert_eq!(list.to_ndjson().lines().count(), 4);
    }
}
