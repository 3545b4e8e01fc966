//! The pure heart of the hashtag-trends pipeline.
//!
//! Everything in this crate is deterministic and free of I/O, so every rule of the product —
//! what a post is, what a hashtag is, which bucket a post falls in, what a window sums to and
//! how tags are ranked — can be unit-tested on its own and reused by every service:
//!
//! - [`post`]: the raw post contract (the JSON on the `tweets` topic) and its strict parser.
//! - [`hashtag`]: extraction of hashtags from text and their normalization for counting.
//! - [`tags`]: which hashtags a post counts for (supplied tags or extracted ones).
//! - [`window`]: the windows (`1m` … `24h`, `all`) and the event-time buckets they are made of.
//! - [`counter`]: the per-input-partition counting state kept by the aggregator.
//! - [`counts_record`]: the wire format of the compacted counts topic (keys and values).
//! - [`view`]: the API's read model, which sums partial counts into ranked snapshots.

pub mod counter;
pub mod counts_record;
pub mod hashtag;
pub mod post;
pub mod tags;
pub mod view;
pub mod window;

/// Milliseconds since the Unix epoch, UTC. Event times and bucket starts use this unit.
pub type EpochMillis = i64;

/// Formats epoch milliseconds as RFC 3339 with millisecond precision and a `Z` suffix.
pub fn format_rfc3339_millis(ms: EpochMillis) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::from("invalid-time"),
    }
}
