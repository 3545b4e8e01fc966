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
//! - [`space_saving`]: bounded top-k counting (Space-Saving), exact below capacity.
//! - [`counts_record`]: the wire format of the compacted counts topic (keys and values).
//! - [`view`]: the API's read model, which sums partial counts into ranked snapshots.

pub mod counter;
pub mod counts_record;
pub mod hashtag;
pub mod lang;
pub mod post;
pub mod space_saving;
pub mod tags;
pub mod trend;
pub mod trend_track;
pub mod view;
pub mod window;

/// Milliseconds since the Unix epoch, UTC. Event times and bucket starts use this unit.
pub type EpochMillis = i64;

/// The event times the pipeline can hold: RFC 3339's years 0000 to 9999. A post's
/// `created_at` cannot be outside (the parser accepts four-digit years only), and a time read
/// back from the counts topic outside it is malformed. Inside it, every sum of a time and a
/// window length fits an `i64` many times over, so time arithmetic cannot overflow.
pub const EVENT_TIME_RANGE: std::ops::RangeInclusive<EpochMillis> =
    -62_167_219_200_000..=253_402_300_799_999;

/// The largest count a counts record may carry: 2^53 − 1, the largest integer a JSON reader
/// such as a browser represents exactly. Sums over partitions saturate instead of wrapping.
pub const MAX_COUNT: i64 = (1 << 53) - 1;

/// `text` cut to at most `max_bytes` bytes at a character boundary, with `…` appended when
/// something was cut (the result is then at most `max_bytes + 3` bytes). For reasons and
/// previews that end up in logs and record headers: bounded whatever the input.
pub fn truncate_utf8(text: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max_bytes {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// Formats epoch milliseconds as RFC 3339 with millisecond precision and a `Z` suffix.
pub fn format_rfc3339_millis(ms: EpochMillis) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::from("invalid-time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("short", 10), "short");
        assert_eq!(truncate_utf8("abcdef", 3), "abc…");
        // "é" is two bytes: cutting inside it backs off to the boundary before.
        assert_eq!(truncate_utf8("aé", 2), "a…");
        assert_eq!(truncate_utf8("日本語", 4), "日…");
    }

    #[test]
    fn the_event_time_range_is_rfc3339s() {
        let first = chrono::DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
            .map(|t| t.timestamp_millis());
        let last = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z")
            .map(|t| t.timestamp_millis());
        assert_eq!(first, Ok(*EVENT_TIME_RANGE.start()));
        assert_eq!(last, Ok(*EVENT_TIME_RANGE.end()));
    }
}
