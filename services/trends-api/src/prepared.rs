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
//! the snapshot's by-name index, bounded by the limit. So is `/api/v1/hashtags/{tag}`
//! ([`Prepared::hashtag`]): one tag's counts and series, 648 bucket lookups.
//!
//! Every body the API serves from the data is built here, from the plain types of
//! [`crate::api::types`]; the handlers only parse the request and pick the body.

use std::sync::OnceLock;

use bytes::Bytes;
use trends_core::format_rfc3339_millis;
use trends_core::view::{RankedTag, Series, Snapshot};
use trends_core::window::Window;

use crate::api::types::{
    HashtagResponse, SeriesByWindow, SeriesPoint, SeriesResponse, TrendEntry, TrendsResponse,
    WindowCounts,
};

/// The largest `limit` a client may ask for.
pub const MAX_LIMIT: usize = 100;

const SLOTS: usize = Window::ALL.len() * MAX_LIMIT;

/// A snapshot and its lazily serialized bodies.
#[derive(Debug)]
pub struct Prepared {
    snapshot: Snapshot,
    watermark: Option<String>,
    bodies: Box<[OnceLock<Bytes>]>,
    events: Box<[OnceLock<Bytes>]>,
}

impl Default for Prepared {
    fn default() -> Self {
        Prepared::new(Snapshot::default())
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
    pub fn new(snapshot: Snapshot) -> Self {
        Prepared {
            watermark: snapshot.watermark.map(format_rfc3339_millis),
            snapshot,
            bodies: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            events: (0..SLOTS).map(|_| OnceLock::new()).collect(),
        }
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
        let [m1, m5, m15, h1, h24, all] = summary.counts;
        Some(HashtagResponse {
            hashtag: tag.to_string(),
            display: summary.display.to_string(),
            watermark: self.watermark.clone(),
            counts: WindowCounts {
                m1,
                m5,
                m15,
                h1,
                h24,
                all,
            },
            series: SeriesByWindow {
                h1: series_body(self.snapshot.series(tag, Window::H1)),
                h24: series_body(self.snapshot.series(tag, Window::H24)),
            },
        })
    }

    fn serialize(&self, window: Window, limit: usize, prefix: &str) -> Bytes {
        fn entry((rank, r): (usize, &RankedTag)) -> TrendEntry<'_> {
            TrendEntry {
                rank,
                hashtag: &r.tag,
                display: &r.display,
                count: r.count,
            }
        }
        let trends: Vec<TrendEntry<'_>> = if prefix.is_empty() {
            self.snapshot
                .top(window, limit)
                .iter()
                .enumerate()
                .map(|(i, r)| entry((i + 1, r)))
                .collect()
        } else {
            self.snapshot
                .top_with_prefix(window, prefix, limit)
                .into_iter()
                .map(entry)
                .collect()
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
