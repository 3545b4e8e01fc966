//! The resume cursor of a live source: which position is safe to store, and storing it.
//!
//! Why only acknowledged positions: a cursor stored before Kafka acknowledged every post up to
//! it would, after a crash, resume past posts that were never written, a silent gap. So each
//! post handed to the publisher gets a sequence number, and a source position becomes durable
//! only once every post up to it is acknowledged ([`CursorTracker`]). Positions of events that
//! published nothing (filtered, duplicate, not a post) become durable once everything sent
//! before them is acknowledged.
//!
//! Why a file, written atomically: the cursor is one number, and Kafka is the only store of the
//! pipeline's data but not of a source's private position; a small file (on a volume in
//! Docker) is the least machinery. It is written to a temporary file in the same directory,
//! synced and renamed over the old one, so a crash leaves the old or the new cursor, never half
//! of one, at most once per [`CursorStore`] interval.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Source positions waiting for their posts' acknowledgements.
#[derive(Debug, Default)]
pub struct CursorTracker {
    /// (publisher sequence number that must be acknowledged, position), both increasing.
    pending: VecDeque<(u64, i64)>,
    durable: Option<i64>,
}

impl CursorTracker {
    /// Records that `position` is safe once the publisher's first `seq` records are
    /// acknowledged.
    pub fn push(&mut self, seq: u64, position: i64) {
        self.pending.push_back((seq, position));
    }

    /// Advances with the publisher's acknowledged prefix (every record `≤ acked` is
    /// acknowledged) and returns the latest durable position.
    pub fn advance(&mut self, acked: u64) -> Option<i64> {
        while let Some(&(seq, position)) = self.pending.front() {
            if seq > acked {
                break;
            }
            self.durable = Some(self.durable.map_or(position, |d| d.max(position)));
            self.pending.pop_front();
        }
        self.durable
    }
}

/// A cursor kept in a file.
#[derive(Debug, Clone)]
pub struct CursorStore {
    path: PathBuf,
}

impl CursorStore {
    pub fn new(path: impl Into<PathBuf>) -> CursorStore {
        CursorStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored cursor; `None` when there is no file yet. An unreadable or garbled file is an
    /// error (starting live instead would silently skip posts).
    pub fn load(&self) -> anyhow::Result<Option<i64>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read cursor file {:?}", self.path));
            }
        };
        let cursor = text.trim().parse::<i64>().with_context(|| {
            format!(
                "cursor file {:?} does not hold a number; delete it to start live",
                self.path
            )
        })?;
        Ok(Some(cursor))
    }

    /// Replaces the stored cursor atomically (temporary file, fsync, rename).
    pub fn store(&self, cursor: i64) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = dir.join(name);
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp)?;
            writeln!(file, "{cursor}")?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().with_context(|| format!("cannot write cursor file {:?}", self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_durable_only_when_everything_before_it_is_acknowledged() {
        let mut t = CursorTracker::default();
        t.push(1, 100);
        t.push(2, 200);
        t.push(2, 250); // filtered after record 2: safe once 1..=2 are acknowledged
        t.push(3, 300);
        assert_eq!(t.advance(0), None);
        assert_eq!(t.advance(1), Some(100));
        assert_eq!(t.advance(2), Some(250));
        assert_eq!(t.advance(2), Some(250));
        assert_eq!(t.advance(3), Some(300));
    }

    #[test]
    fn the_store_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CursorStore::new(dir.path().join("bluesky.cursor"));
        assert_eq!(store.load().expect("no file"), None);
        store.store(1_725_911_162_329_308).expect("write");
        store.store(1_725_911_162_329_309).expect("overwrite");
        assert_eq!(store.load().expect("read"), Some(1_725_911_162_329_309));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["bluesky.cursor"], "no temporary file left");
        std::fs::write(store.path(), "garbage").expect("write");
        assert!(
            store.load().is_err(),
            "a garbled cursor is not silently ignored"
        );
    }
}
