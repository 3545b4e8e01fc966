//! A published snapshot with its response bodies, serialized once.
//!
//! `/api/v1/trends` and `/api/v1/stream` answer the same few hundred questions (6 windows ×
//! limits 1–100) thousands of times between two snapshots. [`Prepared`] wraps a [`Snapshot`]
//! with one [`OnceLock`] slot per (window, limit) for the JSON body and one for the
//! Server-Sent-Events frame carrying it: the first request of a kind serializes, every later
//! one clones a [`Bytes`] (a reference count). A new snapshot comes with empty slots, so
//! nothing is ever stale and nothing is computed for questions nobody asks.
//!
//! Prefix queries (`?prefix=ru`) are too many to cache; they are answered per request from
//! the snapshot's name order (one binary search for the range of matching tags, then at most
//! one pass over the window, `limit` entries out, each rank a binary search: nothing sorted).
//! So is `/api/v1/hashtags/{tag}` ([`Prepared::hashtag`]): one tag's counts and series, 648
//! bucket lookups. A body slot is filled by the first request that needs it, in microseconds
//! (at most 100 entries); no request waits on another's ranking.
//!
//! **Complete or nothing.** A [`Prepared`] is either a snapshot of the counts topic read to its
//! end on every partition ([`Prepared::new`]), or the placeholder the server starts with
//! ([`Prepared::loading`], [`Prepared::is_complete`] false) before the follower has caught up
//! once. The data endpoints answer 503 `not_ready` for the placeholder: a sum over partitions
//! read partly is a number no one ever counted, so it is never served.
//!
//! Every body the API serves from the data is built here, from the plain types of
//! [`crate::api::types`]; the handlers only parse the request and pick the body.

use std::sync::OnceLock;

use bytes::Bytes;
use trends_core::format_rfc3339_millis;
use trends_core::view::{Bounds, RankedTag, Series, Snapshot};
use trends_core::window::Window;

use crate::api::types::{
    Estimate, HashtagResponse, SeriesByWindow, SeriesPoint, SeriesResponse, TrendEntry,
    TrendsResponse, WindowCounts, WindowEstimates,
};

/// The largest `limit` a client may ask for.
pub const MAX_LIMIT: usize = 100;

const SLOTS: usize = Window::ALL.len() * MAX_LIMIT;

/// A snapshot and its lazily serialized bodies.
#[derive(Debug)]
pub struct Prepared {
    snapshot: Snapshot,
    /// Built from a view that had read every partition to its end (false: the placeholder).
    complete: bool,
    watermark: Option<String>,
    bodies: Box<[OnceLock<Bytes>]>,
    events: Box<[OnceLock<Bytes>]>,
}

impl Default for Prepared {
    /// The placeholder served before the follower caught up: see [`Prepared::loading`].
    fn default() -> Self {
        Prepared::loading()
    }
}

impl From<Snapshot> for Prepared {
    fn from(snapshot: Snapshot) -> Self {
        Prepared::new(snapshot)
    }
}

/// The slot of (window, limit), for limits 1..=MAX_LIMIT.
fn slot(window: Window, limit: usize) -> Option<usize> {
    let w = Window::ALL.iter().position(|&x| x == window)?;
    (1..=MAX_LIMIT)
        .contains(&limit)
        .then(|| w * MAX_LIMIT + limit - 1)
}

impl Prepared {
    /// A complete snapshot, ready to serve.
    pub fn new(snapshot: Snapshot) -> Self {
        Prepared {
            watermark: snapshot.watermark.map(format_rfc3339_millis),
            snapshot,
            complete: true,
            bodies: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            events: (0..SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// What the server holds until the counts topic has been read to its end once: nothing to
    /// serve (the data endpoints answer 503 `not_ready`).
    pub fn loading() -> Self {
        Prepared {
            complete: false,
            ..Prepared::new(Snapshot::default())
        }
    }

    /// Whether this is a complete snapshot (false: the placeholder of [`Prepared::loading`]).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The watermark as served (RFC 3339, milliseconds).
    pub fn watermark(&self) -> Option<&str> {
        self.watermark.as_deref()
    }

    /// The `/trends` JSON body for a window, a limit and an optional (normalized) prefix.
    /// Without a prefix it is serialized once per snapshot.
    pub fn trends_body(&self, window: Window, limit: usize, prefix: &str) -> Bytes {
        match (prefix.is_empty(), slot(window, limit)) {
            (true, Some(i)) => self.bodies[i]
                .get_or_init(|| self.serialize(window, limit, ""))
                .clone(),
            _ => self.serialize(window, limit, prefix),
        }
    }

    /// One SSE event (`event: trends`, `data:` the `/trends` body), framed once per snapshot
    /// without a prefix.
    pub fn trends_event(&self, window: Window, limit: usize, prefix: &str) -> Bytes {
        match (prefix.is_empty(), slot(window, limit)) {
            (true, Some(i)) => self.events[i]
                .get_or_init(|| frame(&self.trends_body(window, limit, "")))
                .clone(),
            _ => frame(&self.trends_body(window, limit, prefix)),
        }
    }

    /// The `/hashtags/{tag}` body of a (normalized) tag: its count in every window and its
    /// series over the last hour and day; `None` if the tag was never seen.
    pub fn hashtag(&self, tag: &str) -> Option<HashtagResponse> {
        let summary = self.snapshot.tag(tag)?;
        let display = summary.display.to_string();
        let [m1, m5, m15, h1, h24, all] = summary.counts;
        let estimate = |window| self.snapshot.bounds(window, tag).map(estimate);
        let estimates = WindowEstimates {
            m1: estimate(Window::M1),
            m5: estimate(Window::M5),
            m15: estimate(Window::M15),
            h1: estimate(Window::H1),
            h24: estimate(Window::H24),
            all: estimate(Window::All),
        };
        let any = [
            &estimates.m1,
            &estimates.m5,
            &estimates.m15,
            &estimates.h1,
            &estimates.h24,
            &estimates.all,
        ]
        .iter()
        .any(|e| e.is_some());
        Some(HashtagResponse {
            hashtag: tag.to_string(),
            display,
            watermark: self.watermark.clone(),
            counts: WindowCounts {
                m1,
                m5,
                m15,
                h1,
                h24,
                all,
            },
            estimates: any.then_some(estimates),
            series: SeriesByWindow {
                h1: series_body(self.snapshot.series(tag, Window::H1)),
                h24: series_body(self.snapshot.series(tag, Window::H24)),
            },
        })
    }

    fn serialize(&self, window: Window, limit: usize, prefix: &str) -> Bytes {
        fn entry((rank, r): (usize, &RankedTag)) -> TrendEntry<'_> {
            let bounds = r.bounds;
            TrendEntry {
                rank,
                hashtag: &r.tag,
                display: &r.display,
                count: r.count,
                approximate: bounds.map(|_| true),
                count_lower: bounds.map(|b| b.lower),
                count_upper: bounds.map(|b| b.upper),
            }
        }
        let matches;
        let trends: Vec<TrendEntry<'_>> = if prefix.is_empty() {
            self.snapshot
                .top(window, limit)
                .iter()
                .enumerate()
                .map(|(i, r)| entry((i + 1, r)))
                .collect()
        } else {
            matches = self.snapshot.top_with_prefix(window, prefix, limit);
            matches.iter().map(|(rank, r)| entry((*rank, r))).collect()
        };
        let body = TrendsResponse {
            window: window.as_str(),
            watermark: self.watermark.clone(),
            trends,
        };
        // Serializing plain structs of strings and integers cannot fail.
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// The bounds of an estimate as served.
fn estimate(bounds: Bounds) -> Estimate {
    Estimate {
        approximate: true,
        count_lower: bounds.lower,
        count_upper: bounds.upper,
    }
}

/// A window's series as served; no points (and a zero bucket size) when there is none.
fn series_body(series: Option<Series>) -> SeriesResponse {
    let series = series.unwrap_or(Series {
        bucket_ms: 0,
        points: Vec::new(),
    });
    SeriesResponse {
        bucket_secs: series.bucket_ms / 1000,
        points: series
            .points
            .into_iter()
            .map(|(start, count)| SeriesPoint {
                start: format_rfc3339_millis(start),
                count,
            })
            .collect(),
    }
}

/// `event: trends\ndata: <json>\n\n`. Compact JSON has no newline, so one `data:` line holds it.
pub fn frame(json: &[u8]) -> Bytes {
    const HEAD: &[u8] = b"event: trends\ndata: ";
    let mut out = Vec::with_capacity(HEAD.len() + json.len() + 2);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
