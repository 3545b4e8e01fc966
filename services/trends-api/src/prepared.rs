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

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use trends_core::format_rfc3339_millis;
use trends_core::trend::{TREND_WINDOWS, TrendSnapshot, Trending, trend_window_index};
use trends_core::view::{Bounds, RankedTag, Series, Snapshot};
use trends_core::window::Window;

use crate::api::types::{
    Estimate, HashtagResponse, LanguageEntry, LanguagesResponse, SeriesByWindow, SeriesPoint,
    SeriesResponse, TrendEntry, TrendingEntry, TrendingResponse, TrendsResponse, WindowCounts,
    WindowEstimates,
};

/// What one stream sends (and what one `/trends` request asks).
#[derive(Debug, Clone)]
pub struct Query {
    pub window: Window,
    pub limit: usize,
    /// Normalized; empty for none.
    pub prefix: String,
    pub sort: Sort,
    /// A language code ([`trends_core::lang`]); `None` for all languages.
    pub lang: Option<String>,
}

/// How a list is ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By posts in the window: the most used.
    Count,
    /// By trend score: what is talked about more than its own history predicts.
    Trending,
}

/// Whether moderation keeps a tag out of the lists (a shared predicate).
#[derive(Clone)]
pub struct BlockedFn(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl BlockedFn {
    pub fn new(blocked: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        BlockedFn(Arc::new(blocked))
    }

    pub fn is_blocked(&self, tag: &str) -> bool {
        (self.0)(tag)
    }
}

impl std::fmt::Debug for BlockedFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockedFn")
    }
}

/// The largest `limit` a client may ask for.
pub const MAX_LIMIT: usize = 100;

const SLOTS: usize = Window::ALL.len() * MAX_LIMIT;
const TRENDING_SLOTS: usize = TREND_WINDOWS.len() * MAX_LIMIT;

/// A snapshot and its lazily serialized bodies.
#[derive(Debug)]
pub struct Prepared {
    snapshot: Snapshot,
    /// The trend board's lists, built at the same moment as `snapshot`.
    trends: Arc<TrendSnapshot>,
    /// Moderation: tags left out of the lists by count (trending leaves them out itself).
    blocked: Option<BlockedFn>,
    /// Built from a view that had read every partition to its end (false: the placeholder).
    complete: bool,
    watermark: Option<String>,
    bodies: Box<[OnceLock<Bytes>]>,
    events: Box<[OnceLock<Bytes>]>,
    /// The same for `sort=trending` (all languages, no prefix), per (trend window, limit).
    trending_bodies: Box<[OnceLock<Bytes>]>,
    trending_events: Box<[OnceLock<Bytes>]>,
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
    /// A complete snapshot without trends, ready to serve.
    pub fn new(snapshot: Snapshot) -> Self {
        Prepared::with_trends(snapshot, Arc::default(), None)
    }

    /// A complete snapshot and the trends of the same moment, ready to serve; `blocked` says
    /// which tags moderation keeps out of every list.
    pub fn with_trends(
        snapshot: Snapshot,
        trends: Arc<TrendSnapshot>,
        blocked: Option<BlockedFn>,
    ) -> Self {
        let slots = |n: usize| (0..n).map(|_| OnceLock::new()).collect();
        Prepared {
            watermark: snapshot.watermark.map(format_rfc3339_millis),
            snapshot,
            trends,
            blocked,
            complete: true,
            bodies: slots(SLOTS),
            events: slots(SLOTS),
            trending_bodies: slots(TRENDING_SLOTS),
            trending_events: slots(TRENDING_SLOTS),
        }
    }

    /// The trend board's lists.
    pub fn trends(&self) -> &TrendSnapshot {
        &self.trends
    }

    fn is_blocked(&self, tag: &str) -> bool {
        self.blocked.as_ref().is_some_and(|b| b.is_blocked(tag))
    }

    /// The body `/trends` answers `q` with (and a stream sends): by count or by trend score,
    /// for all languages or one. The common questions are serialized once per snapshot.
    pub fn body(&self, q: &Query) -> Bytes {
        match (q.sort, q.lang.as_deref()) {
            (Sort::Count, None) => self.trends_body(q.window, q.limit, &q.prefix),
            (Sort::Count, Some(lang)) => self.language_counts_body(q, lang),
            (Sort::Trending, lang) => match trending_slot(q) {
                Some(i) => self.trending_bodies[i]
                    .get_or_init(|| self.serialize_trending(q.window, q.limit, "", None))
                    .clone(),
                None => self.serialize_trending(q.window, q.limit, &q.prefix, lang),
            },
        }
    }

    /// The SSE event carrying `body` (which [`Prepared::body`] gave for `q`), framed once per
    /// snapshot for the common questions.
    pub fn event(&self, q: &Query, body: &Bytes) -> Bytes {
        match (q.sort, q.lang.is_none() && q.prefix.is_empty()) {
            (Sort::Count, true) => self.trends_event(q.window, q.limit, ""),
            (Sort::Trending, true) => match trending_slot(q) {
                Some(i) => self.trending_events[i].get_or_init(|| frame(body)).clone(),
                None => frame(body),
            },
            _ => frame(body),
        }
    }

    /// `/api/v1/languages`.
    pub fn languages(&self) -> LanguagesResponse {
        LanguagesResponse {
            watermark: self.watermark.clone(),
            languages: self
                .trends
                .languages
                .iter()
                .map(|l| LanguageEntry {
                    code: l.code.to_string(),
                    posts_1h: l.posts_1h,
                    posts_24h: l.posts_24h,
                })
                .collect(),
        }
    }

    /// A tag's display form (its most frequent spelling), or the tag itself.
    fn display<'a>(&'a self, tag: &'a str) -> std::borrow::Cow<'a, str> {
        match self.snapshot.tag(tag) {
            Some(summary) => std::borrow::Cow::Owned(summary.display.to_string()),
            None => std::borrow::Cow::Borrowed(tag),
        }
    }

    fn language_counts_body(&self, q: &Query, lang: &str) -> Bytes {
        let list = self.trends.counts(q.window, lang);
        let displays: Vec<_> = list
            .iter()
            .enumerate()
            .filter(|(_, (tag, _))| tag.starts_with(q.prefix.as_str()) && !self.is_blocked(tag))
            .take(q.limit)
            .map(|(i, (tag, count))| (i + 1, &**tag, self.display(tag), *count))
            .collect();
        let body = TrendsResponse {
            window: q.window.as_str(),
            watermark: self.watermark.clone(),
            lang: Some(lang),
            trends: displays
                .iter()
                .map(|(rank, tag, display, count)| TrendEntry {
                    rank: *rank,
                    hashtag: tag,
                    display,
                    count: *count,
                    approximate: None,
                    count_lower: None,
                    count_upper: None,
                })
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    fn serialize_trending(
        &self,
        window: Window,
        limit: usize,
        prefix: &str,
        lang: Option<&str>,
    ) -> Bytes {
        let list: &[Trending] = self.trends.list(window, lang);
        let chosen: Vec<(usize, &Trending, std::borrow::Cow<'_, str>)> = list
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tag.starts_with(prefix))
            .take(limit)
            .map(|(i, t)| (i + 1, t, self.display(&t.tag)))
            .collect();
        let body = TrendingResponse {
            window: window.as_str(),
            sort: "trending",
            lang,
            watermark: self.watermark.clone(),
            trends: chosen
                .iter()
                .map(|(rank, t, display)| TrendingEntry {
                    rank: *rank,
                    hashtag: &t.tag,
                    display,
                    score: round2(t.score),
                    authors: t.authors,
                    posts: t.posts,
                    expected: round2(t.expected),
                    scored_over: t.scored_over.as_str(),
                    started_at: format_rfc3339_millis(t.started_at),
                    status: t.status.as_str(),
                    sparkline: t.sparkline.clone(),
                })
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
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
        // Blocked tags are left out (they still count): up to MAX_LIMIT are read so that a few
        // blocked ones do not shorten the list; each keeps its rank in the full ranking.
        let take = if self.blocked.is_some() {
            MAX_LIMIT
        } else {
            limit
        };
        let trends: Vec<TrendEntry<'_>> = if prefix.is_empty() {
            self.snapshot
                .top(window, take)
                .iter()
                .enumerate()
                .filter(|(_, r)| !self.is_blocked(&r.tag))
                .take(limit)
                .map(|(i, r)| entry((i + 1, r)))
                .collect()
        } else {
            matches = self.snapshot.top_with_prefix(window, prefix, take);
            matches
                .iter()
                .filter(|(_, r)| !self.is_blocked(&r.tag))
                .take(limit)
                .map(|(rank, r)| entry((*rank, r)))
                .collect()
        };
        let body = TrendsResponse {
            window: window.as_str(),
            watermark: self.watermark.clone(),
            lang: None,
            trends,
        };
        // Serializing plain structs of strings and integers cannot fail.
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// The cache slot of a `sort=trending` question for all languages without a prefix.
fn trending_slot(q: &Query) -> Option<usize> {
    if q.lang.is_some() || !q.prefix.is_empty() || !(1..=MAX_LIMIT).contains(&q.limit) {
        return None;
    }
    trend_window_index(q.window).map(|w| w * MAX_LIMIT + q.limit - 1)
}

/// Scores are served with two decimals: stable bytes between snapshots that changed nothing.
fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
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
