//! Every body the API answers with, as plain data: the JSON shapes of the contract and their
//! OpenAPI schemas (`ToSchema`), in one place.
//!
//! This module imports nothing from the crate (only serde, utoipa and `trends_core`'s window
//! names), so everything else can depend on it and it can depend on nothing: [`crate::prepared`]
//! fills these types, the handlers in [`crate::api`] return them, [`crate::openapi`] lists their
//! schemas, [`crate::error`] answers with [`ErrorBody`]. Types hold no logic beyond their shape.
//!
//! Every struct is `deny_unknown_fields` and its schema closed (every field required, `null`
//! where it may be absent), so `tests/it/openapi.rs` notices a field renamed, added or dropped.
//! The one exception are the fields of an estimate (`approximate`, `count_lower`,
//! `count_upper`, `estimates`): they are present only when a count is not exact, so that every
//! exact answer stays the same bytes as before estimates existed.

use std::borrow::Cow;

use serde::Serialize;
use trends_core::window::Window;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// The name of a window: `1m`, `5m`, `15m`, `1h`, `24h` or `all`.
#[derive(Debug)]
pub struct WindowName;

impl PartialSchema for WindowName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Window::ALL.iter().map(|w| w.as_str())))
            .description(Some("A window: `1m`, `5m`, `15m`, `1h`, `24h` or `all`."))
            .into()
    }
}

impl ToSchema for WindowName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WindowName")
    }
}

/// For `#[schema(schema_with = …)]` on fields that hold a window name as a string.
pub fn window_name() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name("WindowName"))
}

/// The body of `/api/v1/trends` (and of every `/api/v1/stream` event).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendsResponse<'a> {
    /// The window asked for.
    #[schema(schema_with = window_name)]
    pub window: &'static str,
    /// The latest event time in the data (RFC 3339, milliseconds, UTC); `null` before any data.
    #[schema(required = true, format = DateTime, example = "2026-11-22T10:00:00.123Z")]
    pub watermark: Option<String>,
    /// With `lang`: the language asked for (its counts are posts in that language); absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "ja")]
    pub lang: Option<&'a str>,
    /// The best tags, best first.
    pub trends: Vec<TrendEntry<'a>>,
}

/// The body of `/api/v1/trends?sort=trending` (and of its `/api/v1/stream` events).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendingResponse<'a> {
    /// The window asked for (`all` does not trend).
    #[schema(schema_with = window_name)]
    pub window: &'static str,
    /// Always `trending`.
    #[schema(example = "trending")]
    pub sort: &'static str,
    /// The language asked for; `null` for all languages.
    #[schema(required = true, example = "ja")]
    pub lang: Option<&'a str>,
    /// The latest event time in the data (RFC 3339, milliseconds, UTC); `null` before any data.
    #[schema(required = true, format = DateTime, example = "2026-11-22T10:00:00.123Z")]
    pub watermark: Option<String>,
    /// The trending tags, highest score first.
    pub trends: Vec<TrendingEntry<'a>>,
}

/// One trending hashtag, with why it trends (README: "How trending is computed").
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendingEntry<'a> {
    /// 1 = the highest score.
    #[schema(minimum = 1)]
    pub rank: usize,
    /// The counting form.
    #[schema(example = "eclipse")]
    pub hashtag: &'a str,
    /// The most frequent original spelling (all time).
    #[schema(example = "Eclipse")]
    pub display: &'a str,
    /// How surprising `authors` is against `expected` (standard deviations under a negative
    /// binomial), or the trend's decaying peak when that is higher.
    #[schema(example = 12.5)]
    pub score: f64,
    /// Distinct authors in the window (each at most once per 5-minute bucket).
    #[schema(minimum = 0)]
    pub authors: i64,
    /// Posts with the tag in the window.
    #[schema(minimum = 0)]
    pub posts: i64,
    /// The authors the tag's own history predicts for the window (at least 1).
    #[schema(example = 3.2)]
    pub expected: f64,
    /// The window, ending now and no longer than the one asked for, whose authors gave the
    /// score: the same window, or a shorter one where a fresh rise shows first (README, "How
    /// trending is computed").
    #[schema(example = "1m")]
    pub scored_over: &'static str,
    /// When it began trending (the start of a 10-second bucket; RFC 3339).
    #[schema(format = DateTime, example = "2026-11-22T09:58:40.000Z")]
    pub started_at: String,
    /// `rising` (a new peak in the last quarter of the window), `hot`, or `cooling` (below
    /// half its peak, shown while its score decays).
    #[schema(example = "rising")]
    pub status: &'static str,
    /// Authors per step across the window, oldest first (up to 12 steps).
    pub sparkline: Vec<i64>,
}

/// `/api/v1/languages`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguagesResponse {
    /// The latest event time in the data (RFC 3339, milliseconds, UTC); `null` before any data.
    #[schema(required = true, format = DateTime)]
    pub watermark: Option<String>,
    /// Every language with posts in the last 24 hours, most posts first.
    pub languages: Vec<LanguageEntry>,
}

/// One language of the feed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageEntry {
    /// The primary subtag of the posts' `lang`, lowercase (`en` for `en-US`); `und` for posts
    /// without one.
    #[schema(example = "ja")]
    pub code: String,
    /// Posts in the last hour.
    #[schema(minimum = 0)]
    pub posts_1h: i64,
    /// Posts in the last 24 hours.
    #[schema(minimum = 0)]
    pub posts_24h: i64,
}

/// One ranked hashtag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendEntry<'a> {
    /// The tag's rank in the window's full ranking (1 = most used), also under a prefix filter.
    #[schema(minimum = 1)]
    pub rank: usize,
    /// The counting form: NFKC, lowercase, without `#`.
    #[schema(example = "rust")]
    pub hashtag: &'a str,
    /// The most frequent original spelling (all time).
    #[schema(example = "Rust")]
    pub display: &'a str,
    /// Posts with the tag in the window (summed over the input partitions). Exact unless
    /// `approximate` is present.
    #[schema(minimum = 1)]
    pub count: i64,
    /// Present, and `true`, only when `count` is an estimate (the aggregator tracks a bounded
    /// number of tags per bucket and in `all`): the true count is then within `count_lower`
    /// ..= `count_upper`, for the tags it tracked (a finite window's `count_upper` is `count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub approximate: Option<bool>,
    /// With `approximate`: the least the true count can be.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub count_lower: Option<i64>,
    /// With `approximate`: the most the true count can be.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub count_upper: Option<i64>,
}

/// The bounds of a count that is an estimate.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    /// Always `true`.
    pub approximate: bool,
    /// The least the true count can be.
    #[schema(minimum = 0)]
    pub count_lower: i64,
    /// The most the true count can be.
    #[schema(minimum = 0)]
    pub count_upper: i64,
}

/// The windows whose count is an estimate, with its bounds; a window whose count is exact is
/// absent.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowEstimates {
    #[serde(rename = "1m", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub m1: Option<Estimate>,
    #[serde(rename = "5m", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub m5: Option<Estimate>,
    #[serde(rename = "15m", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub m15: Option<Estimate>,
    #[serde(rename = "1h", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub h1: Option<Estimate>,
    #[serde(rename = "24h", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub h24: Option<Estimate>,
    #[serde(rename = "all", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub all: Option<Estimate>,
}

/// `/api/v1/hashtags/{tag}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashtagResponse {
    /// The counting form.
    #[schema(example = "rust")]
    pub hashtag: String,
    /// The most frequent original spelling (all time).
    #[schema(example = "Rust")]
    pub display: String,
    /// The latest event time in the data (RFC 3339, milliseconds, UTC); `null` before any data.
    #[schema(required = true, format = DateTime)]
    pub watermark: Option<String>,
    pub counts: WindowCounts,
    /// Present only when some of `counts` are estimates: their bounds, per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub estimates: Option<WindowEstimates>,
    pub series: SeriesByWindow,
}

/// A count per window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowCounts {
    #[serde(rename = "1m")]
    pub m1: i64,
    #[serde(rename = "5m")]
    pub m5: i64,
    #[serde(rename = "15m")]
    pub m15: i64,
    #[serde(rename = "1h")]
    pub h1: i64,
    #[serde(rename = "24h")]
    pub h24: i64,
    #[serde(rename = "all")]
    pub all: i64,
}

/// The tag's count per bucket over the last hour and the last day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesByWindow {
    #[serde(rename = "1h")]
    pub h1: SeriesResponse,
    #[serde(rename = "24h")]
    pub h24: SeriesResponse,
}

/// Every bucket of a window, oldest first, zeros included, ending with the bucket that holds
/// the watermark; empty before any data.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesResponse {
    /// Bucket size in seconds.
    #[schema(example = 10)]
    pub bucket_secs: i64,
    pub points: Vec<SeriesPoint>,
}

/// One bucket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    /// The bucket's start (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-22T10:00:00.000Z")]
    pub start: String,
    #[schema(minimum = 0)]
    pub count: i64,
}

/// `/api/v1/windows`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowsResponse {
    /// Size of the buckets of `1m`, `5m`, `15m` and `1h`, in seconds.
    #[schema(example = 10)]
    pub fine_bucket_secs: i64,
    /// Size of the buckets of `24h`, in seconds.
    #[schema(example = 300)]
    pub coarse_bucket_secs: i64,
    /// Every window, shortest first.
    pub windows: Vec<WindowInfo>,
}

/// One window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInfo {
    #[schema(schema_with = window_name)]
    pub name: &'static str,
    /// Length in seconds; `null` for `all`.
    #[schema(required = true)]
    pub seconds: Option<i64>,
    /// Size of its buckets in seconds; `null` for `all`.
    #[schema(required = true)]
    pub bucket_secs: Option<i64>,
    /// How many buckets it sums (the newest one still filling); `null` for `all`.
    #[schema(required = true)]
    pub buckets: Option<i64>,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_window`, `invalid_limit`, `invalid_prefix`,
    /// `invalid_sort`, `invalid_lang`, `invalid_query`, `invalid_hashtag`, `unknown_hashtag`, `not_found`,
    /// `method_not_allowed`, `request_timeout`, `payload_too_large`, `rate_limited`,
    /// `too_many_streams_from_ip`, `not_ready`, `too_many_streams`.
    #[schema(example = "invalid_window")]
    pub code: String,
    /// A sentence for people.
    pub message: String,
}
