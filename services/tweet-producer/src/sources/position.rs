//! Where a source resumes after a restart: the position record, what moves it, and what a
//! resumed stream skips. Pure: no Kafka, no I/O (the offsets topic is `crate::pipeline::offsets`).
//!
//! Why a position travels with the posts: the producer is transactional, and every
//! transaction holds the posts sent since the last one **and** the position the source has
//! reached (`crate::pipeline`). A crash between two commits loses both together, so the
//! restarted producer resumes exactly after the last committed post: nothing missed, nothing
//! published twice (Kafka Connect's exactly-once sources work the same way, KIP-618).
//!
//! **Jetstream** (`bluesky`): Jetstream's cursor is an event's `time_us`, and a connection with
//! `cursor=T` replays every event with `time_us ≥ T`. Two events may share a `time_us`, so
//! "the last `time_us` published" is not enough: resuming after it would lose the second event,
//! resuming at it would repeat the first. The position is therefore
//! `{cursor: T, skip: [ids of posts already published with time_us = T]}`: resume at `T`
//! inclusive and drop those ids ([`ResumeFilter`]). `skip` holds at most
//! [`MAX_SKIP_BYTES`] of ids; a pathological stream with more posts than that at one
//! microsecond makes the position `T + 1` (the posts at `T` still unsent at a crash would be
//! missed, never repeated).
//!
//! **File**: the byte offset of the next line (and its line number, so log messages keep
//! their numbering across a restart); the file is re-opened and read from there.
//!
//! Mastodon, X and the synthetic generator have no position: their streams cannot be
//! resumed (a restart starts live; nothing is duplicated, what was posted meanwhile is missed).
//!
//! Memory: the [`Tracker`] holds one position and at most [`MAX_SKIP_BYTES`] of ids, however
//! long the stream runs.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The largest total length of the post ids a Jetstream position keeps (the ids published at
/// its `cursor`). Real streams have one or two events per microsecond; this only bounds a
/// hostile or broken stream, and keeps the position record far below Kafka's record limit.
pub const MAX_SKIP_BYTES: usize = 64 * 1024;

/// Where one source event is in its stream, as the source reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A Jetstream event's `time_us`.
    TimeUs(i64),
    /// A file line: the byte offset just past it, and its number.
    FileLine { next_offset: u64, number: u64 },
}

/// A source's durable resume position: the value of its record in the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Position {
    /// Resume Jetstream at `cursor` (inclusive) and drop the posts in `skip`, already
    /// published with that `time_us`.
    Jetstream { cursor: i64, skip: Vec<String> },
    /// Resume a file at byte `offset`, which starts line `line` (1-based).
    File { offset: u64, line: u64 },
}

impl Position {
    /// The record value: JSON, e.g. `{"kind":"jetstream","cursor":1725911162329308,"skip":["bsky:did:plc:a/3l3q"]}`.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The cursor of a Jetstream position.
    pub fn jetstream_cursor(&self) -> Option<i64> {
        match self {
            Position::Jetstream { cursor, .. } => Some(*cursor),
            Position::File { .. } => None,
        }
    }

    /// The byte offset and line number of a file position.
    pub fn file_line(&self) -> Option<(u64, u64)> {
        match self {
            Position::File { offset, line } => Some((*offset, *line)),
            Position::Jetstream { .. } => None,
        }
    }

    /// Parses a record value; `Err` names what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Position, String> {
        let position: Position =
            serde_json::from_slice(bytes).map_err(|e| format!("not a position: {e}"))?;
        match &position {
            Position::Jetstream { cursor, .. } if *cursor < 0 => {
                Err(format!("a negative Jetstream cursor {cursor}"))
            }
            Position::File { line, .. } if *line == 0 => Err("a file line number 0".to_owned()),
            _ => Ok(position),
        }
    }
}

/// The position reached by the events the pipeline has handled (published, or dropped for a
/// reason that will hold again on a replay: duplicate, filtered, oversized, not a post).
#[derive(Debug, Default)]
pub struct Tracker {
    position: Option<Position>,
    /// Total length of the ids in a Jetstream position's `skip`.
    skip_bytes: usize,
    /// The position changed since [`Tracker::take_changed`] was last called.
    changed: bool,
}

impl Tracker {
    /// Starts from the position loaded at start (none: the source starts fresh).
    pub fn new(start: Option<Position>) -> Tracker {
        let skip_bytes = match &start {
            Some(Position::Jetstream { skip, .. }) => skip.iter().map(String::len).sum(),
            _ => 0,
        };
        Tracker {
            position: start,
            skip_bytes,
            changed: false,
        }
    }

    /// Moves the position past an event at `mark`; `published` is the post id when the event
    /// was a post that is now in the open transaction. Never moves backwards (a reconnect
    /// within a run rewinds the stream a little; the dedup drops what it repeats).
    pub fn observe(&mut self, mark: Mark, published: Option<&str>) {
        match mark {
            Mark::TimeUs(time_us) => self.observe_time_us(time_us, published),
            Mark::FileLine {
                next_offset,
                number,
            } => {
                let ahead = match &self.position {
                    Some(Position::File { offset, .. }) => next_offset > *offset,
                    _ => true,
                };
                if ahead {
                    self.position = Some(Position::File {
                        offset: next_offset,
                        line: number.saturating_add(1),
                    });
                    self.changed = true;
                }
            }
        }
    }

    fn observe_time_us(&mut self, time_us: i64, published: Option<&str>) {
        let cursor = match &self.position {
            Some(Position::Jetstream { cursor, .. }) => Some(*cursor),
            _ => None,
        };
        match cursor {
            Some(cursor) if time_us < cursor => {}
            Some(cursor) if time_us == cursor => {
                let Some(id) = published else { return };
                if let Some(Position::Jetstream { cursor, skip }) = &mut self.position {
                    if self.skip_bytes + id.len() > MAX_SKIP_BYTES {
                        // Too many posts at one microsecond: resume after it.
                        *cursor = cursor.saturating_add(1);
                        skip.clear();
                        self.skip_bytes = 0;
                    } else {
                        skip.push(id.to_owned());
                        self.skip_bytes += id.len();
                    }
                    self.changed = true;
                }
            }
            _ => {
                let skip: Vec<String> = published.map(str::to_owned).into_iter().collect();
                self.skip_bytes = skip.iter().map(String::len).sum();
                if self.skip_bytes > MAX_SKIP_BYTES {
                    self.position = Some(Position::Jetstream {
                        cursor: time_us.saturating_add(1),
                        skip: Vec::new(),
                    });
                    self.skip_bytes = 0;
                } else {
                    self.position = Some(Position::Jetstream {
                        cursor: time_us,
                        skip,
                    });
                }
                self.changed = true;
            }
        }
    }

    /// The position, if it changed since the last call (what the next transaction writes).
    pub fn take_changed(&mut self) -> Option<Position> {
        std::mem::take(&mut self.changed)
            .then(|| self.position.clone())
            .flatten()
    }

    /// The current position.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Bytes of ids held (bounded by [`MAX_SKIP_BYTES`]).
    pub fn skip_bytes(&self) -> usize {
        self.skip_bytes
    }
}

/// Drops the posts a resumed Jetstream stream repeats: those at the stored cursor whose ids the
/// stored position lists. Disarms itself (and frees the ids) at the first event past the
/// cursor.
#[derive(Debug)]
pub struct ResumeFilter {
    cursor: i64,
    skip: HashSet<String>,
}

impl ResumeFilter {
    /// A filter for a Jetstream start position with ids to skip; `None` otherwise.
    pub fn new(start: Option<&Position>) -> Option<ResumeFilter> {
        match start {
            Some(Position::Jetstream { cursor, skip }) if !skip.is_empty() => Some(ResumeFilter {
                cursor: *cursor,
                skip: skip.iter().cloned().collect(),
            }),
            _ => None,
        }
    }

    /// `true` if the post `id` at `mark` was published before the restart.
    pub fn already_published(&mut self, mark: Mark, id: &str) -> bool {
        match mark {
            Mark::TimeUs(time_us) if time_us == self.cursor => self.skip.contains(id),
            Mark::TimeUs(time_us) if time_us > self.cursor => {
                self.skip = HashSet::new();
                false
            }
            _ => false,
        }
    }

    /// `false` once the stream went past the cursor.
    pub fn is_armed(&self) -> bool {
        !self.skip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jetstream(cursor: i64, skip: &[&str]) -> Position {
        Position::Jetstream {
            cursor,
            skip: skip.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn positions_round_trip_and_bad_records_are_errors() {
        for position in [
            jetstream(1_725_911_162_329_308, &[]),
            jetstream(7, &["bsky:did:plc:a/1", "bsky:did:plc:b/2"]),
            Position::File {
                offset: 4096,
                line: 31,
            },
        ] {
            let bytes = position.encode();
            assert_eq!(Position::decode(&bytes), Ok(position));
        }
        assert_eq!(
            String::from_utf8(jetstream(5, &["a"]).encode()).expect("utf-8"),
            r#"{"kind":"jetstream","cursor":5,"skip":["a"]}"#
        );
        assert_eq!(
            String::from_utf8(
                Position::File {
                    offset: 10,
                    line: 2
                }
                .encode()
            )
            .expect("utf-8"),
            r#"{"kind":"file","offset":10,"line":2}"#
        );
        for bad in [
            &b""[..],
            b"12345",
            b"{}",
            br#"{"kind":"jetstream","cursor":-1,"skip":[]}"#,
            br#"{"kind":"jetstream","cursor":"5","skip":[]}"#,
            br#"{"kind":"file","offset":1,"line":0}"#,
            br#"{"kind":"file","offset":-1,"line":1}"#,
            br#"{"kind":"tape","offset":1}"#,
            br#"{"kind":"file","offset":1,"line":1,"extra":true}"#,
            b"\xff\xfe",
        ] {
            assert!(
                Position::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_jetstream_position_lists_the_posts_published_at_its_cursor() {
        let mut t = Tracker::new(None);
        assert_eq!(t.take_changed(), None);
        t.observe(Mark::TimeUs(100), Some("a"));
        t.observe(Mark::TimeUs(100), Some("b"));
        assert_eq!(t.take_changed(), Some(jetstream(100, &["a", "b"])));
        assert_eq!(t.take_changed(), None, "unchanged since");
        // A filtered or duplicate post at the cursor changes nothing.
        t.observe(Mark::TimeUs(100), None);
        assert_eq!(t.take_changed(), None);
        // A later event that published nothing: resume at it, skipping nothing.
        t.observe(Mark::TimeUs(150), None);
        assert_eq!(t.take_changed(), Some(jetstream(150, &[])));
        t.observe(Mark::TimeUs(150), Some("c"));
        assert_eq!(t.take_changed(), Some(jetstream(150, &["c"])));
        // A rewound reconnect re-delivers older events: the position never goes back.
        t.observe(Mark::TimeUs(120), Some("z"));
        t.observe(Mark::TimeUs(149), None);
        assert_eq!(t.take_changed(), None);
        assert_eq!(t.position(), Some(&jetstream(150, &["c"])));
    }

    #[test]
    fn a_resumed_stream_skips_exactly_the_posts_published_at_the_cursor() {
        // Before the crash: a and b published at 100, c at 100 not yet (still in the channel).
        let mut before = Tracker::new(None);
        before.observe(Mark::TimeUs(90), Some("x"));
        before.observe(Mark::TimeUs(100), Some("a"));
        before.observe(Mark::TimeUs(100), Some("b"));
        let stored = before.take_changed().expect("a position");
        let stored = Position::decode(&stored.encode()).expect("round trip");

        // Jetstream replays from cursor 100 inclusive: a, b, c, then d at 101.
        let mut filter = ResumeFilter::new(Some(&stored)).expect("armed");
        let mut after = Tracker::new(Some(stored));
        let mut published = Vec::new();
        for (time_us, id) in [(100, "a"), (100, "b"), (100, "c"), (101, "d"), (102, "a")] {
            let mark = Mark::TimeUs(time_us);
            if filter.already_published(mark, id) {
                after.observe(mark, None);
                continue;
            }
            published.push(id);
            after.observe(mark, Some(id));
        }
        assert_eq!(
            published,
            ["c", "d", "a"],
            "a and b once; c not lost; an id at a later time_us is not the filter's business"
        );
        assert!(!filter.is_armed(), "past the cursor the ids are freed");
        assert_eq!(after.position(), Some(&jetstream(102, &["a"])));

        // A resume whose cursor event published nothing needs no filter.
        assert!(ResumeFilter::new(Some(&jetstream(5, &[]))).is_none());
        assert!(ResumeFilter::new(None).is_none());
    }

    #[test]
    fn a_file_position_is_the_next_line() {
        let mut t = Tracker::new(Some(Position::File {
            offset: 10,
            line: 2,
        }));
        t.observe(
            Mark::FileLine {
                next_offset: 25,
                number: 2,
            },
            Some("p"),
        );
        assert_eq!(
            t.take_changed(),
            Some(Position::File {
                offset: 25,
                line: 3
            })
        );
        t.observe(
            Mark::FileLine {
                next_offset: 25,
                number: 2,
            },
            None,
        );
        assert_eq!(t.take_changed(), None);
    }

    #[test]
    fn millions_of_positions_keep_the_tracker_bounded() {
        let mut t = Tracker::new(None);
        // 2 million events at increasing times, each published: one id at a time.
        for i in 0..2_000_000i64 {
            let id = format!("bsky:did:plc:author{}/{i:010}", i % 97);
            t.observe(Mark::TimeUs(1_000_000 + i), Some(&id));
            assert!(t.skip_bytes() <= MAX_SKIP_BYTES);
        }
        let Some(Position::Jetstream { cursor, skip }) = t.position() else {
            panic!("a Jetstream position");
        };
        assert_eq!((*cursor, skip.len()), (2_999_999, 1));
        // 3 million posts at one and the same microsecond (a hostile stream): the skip list
        // stays within its bound, and the position moves past that microsecond.
        for i in 0..3_000_000i64 {
            let id = format!("bsky:did:plc:flood/{i:010}");
            t.observe(Mark::TimeUs(5_000_000), Some(&id));
            assert!(t.skip_bytes() <= MAX_SKIP_BYTES);
        }
        let Some(Position::Jetstream { cursor, skip }) = t.position() else {
            panic!("a Jetstream position");
        };
        assert_eq!(*cursor, 5_000_001, "resume after the flooded microsecond");
        assert!(skip.is_empty());
        let encoded = t.take_changed().expect("changed").encode();
        assert!(encoded.len() < MAX_SKIP_BYTES + 1024, "{}", encoded.len());
        // At its fullest, the record stays far below Kafka's record limit.
        let mut full = Tracker::new(None);
        for i in 0..1_000_000i64 {
            full.observe(Mark::TimeUs(9), Some(&format!("bsky:did:plc:a/{i:08}")));
        }
        let Some(Position::Jetstream { skip, .. }) = full.position() else {
            panic!("a Jetstream position");
        };
        assert!(skip.len() <= MAX_SKIP_BYTES / "bsky:did:plc:a/00000000".len());
        // A file position is one number, whatever the number of lines.
        let mut file = Tracker::new(None);
        for n in 1..=2_000_000u64 {
            file.observe(
                Mark::FileLine {
                    next_offset: n * 100,
                    number: n,
                },
                None,
            );
        }
        assert_eq!(
            file.take_changed(),
            Some(Position::File {
                offset: 200_000_000,
                line: 2_000_001
            })
        );
    }
}
