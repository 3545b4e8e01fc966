//! The raw post contract: the JSON value of every record on the `tweets` topic.
//!
//! ```json
//! {"id": "1850000000000000001", "text": "Loving #RustLang and #kafka",
//!  "created_at": "2026-11-22T10:00:00.123Z", "author_id": "42", "lang": "en",
//!  "source": "synthetic", "hashtags": ["RustLang", "kafka"]}
//! ```
//!
//! `id`, `text` and `created_at` (RFC 3339) are required; the rest is optional and unknown fields
//! are ignored, so any Kafka client can feed the pipeline. Parsing is strict about what it needs
//! and says precisely what is wrong: the reason ends up in a dead-letter header, where a human
//! reads it.

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// A social post as published on the raw-posts topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPost {
    /// Unique id of the post; also the Kafka record key.
    pub id: String,
    /// The post's text, where hashtags are extracted from when `hashtags` is absent.
    pub text: String,
    /// Creation time, RFC 3339 (e.g. `2026-11-22T10:00:00.123Z`). Event time for the windows.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Hashtags a source already extracted (without `#`). When present they are used instead of
    /// extracting from `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashtags: Option<Vec<String>>,
}

/// A post that passed validation, with its event time resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPost {
    pub post: RawPost,
    /// `created_at` as milliseconds since the epoch.
    pub event_time: EpochMillis,
}

/// Longest reason a [`PostError`] gives, in bytes. Reasons go into a dead-letter header and a
/// log line; a record can carry megabytes of garbage, and its reason must not.
pub const MAX_REASON_BYTES: usize = 512;

/// How much of an offending value (a `created_at` that is not a timestamp) a reason quotes.
const PREVIEW_BYTES: usize = 64;

/// Why a record is not a valid post. The `Display` text is the dead-letter reason; it is at
/// most [`MAX_REASON_BYTES`] bytes long, however large the record (quoted values are cut).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("value is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error("value is not a valid post: {0}")]
    InvalidJson(String),
    /// Holds a preview of the value, at most 64 bytes and an ellipsis.
    #[error("created_at is not an RFC 3339 timestamp: {0:?}")]
    BadTimestamp(String),
    #[error("record has no value")]
    Empty,
    #[error(
        "created_at {created_at} is more than {max_skew_secs} s ahead of the record's timestamp {ingest_time}"
    )]
    FutureTimestamp {
        created_at: String,
        ingest_time: String,
        max_skew_secs: i64,
    },
}

impl PostError {
    /// A short machine-readable code, used as the `dlq.error.code` header.
    pub fn code(&self) -> &'static str {
        match self {
            PostError::NotUtf8(_) => "not_utf8",
            PostError::InvalidJson(_) => "invalid_json",
            PostError::BadTimestamp(_) => "bad_timestamp",
            PostError::Empty => "empty",
            PostError::FutureTimestamp { .. } => "future_timestamp",
        }
    }
}

/// A detail of a reason, cut so that the whole reason stays within [`MAX_REASON_BYTES`].
fn detail(text: String) -> String {
    // The longest fixed part of a reason ("value is not a valid post: ") is under 64 bytes.
    match crate::truncate_utf8(&text, MAX_REASON_BYTES - 64) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(cut) => cut,
    }
}

/// Parses a record value into a post, or says why it is not one.
pub fn parse_post(bytes: &[u8]) -> Result<ParsedPost, PostError> {
    if bytes.is_empty() {
        return Err(PostError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| PostError::NotUtf8(detail(e.to_string())))?;
    let post: RawPost =
        serde_json::from_str(text).map_err(|e| PostError::InvalidJson(detail(e.to_string())))?;
    let event_time = parse_rfc3339_millis(&post.created_at).ok_or_else(|| {
        PostError::BadTimestamp(crate::truncate_utf8(&post.created_at, PREVIEW_BYTES).into_owned())
    })?;
    Ok(ParsedPost { post, event_time })
}

/// The time a post counts at, given when it reached Kafka (`ingest`: the record's timestamp;
/// see the aggregator for which one), or why it is refused.
///
/// **Event time never runs ahead of ingest time.** A post cannot have been written after it
/// was stored, so a `created_at` later than `ingest` (a client's fast clock, or a post dated
/// ahead on purpose: Bluesky lets clients set `createdAt` freely) counts at `ingest`. One such
/// post can therefore not drag the watermark, and every window ending at it, into the
/// future. A `created_at` more than `max_skew_ms` ahead of `ingest` is refused outright
/// ([`PostError::FutureTimestamp`], dead-lettered): that is no clock drift but a bad date.
pub fn event_time_at_ingest(
    post: &ParsedPost,
    ingest: EpochMillis,
    max_skew_ms: i64,
) -> Result<EpochMillis, PostError> {
    if post.event_time > ingest.saturating_add(max_skew_ms) {
        return Err(PostError::FutureTimestamp {
            created_at: crate::truncate_utf8(&post.post.created_at, PREVIEW_BYTES).into_owned(),
            ingest_time: crate::format_rfc3339_millis(ingest),
            max_skew_secs: max_skew_ms / 1000,
        });
    }
    Ok(post.event_time.min(ingest))
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339_millis(s: &str) -> Option<EpochMillis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let json = r#"{"id": "1850000000000000001", "text": "Loving #RustLang and #kafka", "created_at": "2026-11-22T10:00:00.123Z", "author_id": "42", "lang": "en", "source": "synthetic", "hashtags": ["RustLang", "kafka"]}"#;
        let parsed = parse_post(json.as_bytes()).expect("valid");
        assert_eq!(parsed.post.id, "1850000000000000001");
        assert_eq!(parsed.event_time, 1_795_341_600_123);
        assert_eq!(
            parsed.post.hashtags.as_deref(),
            Some(&["RustLang".to_string(), "kafka".to_string()][..])
        );
    }

    #[test]
    fn optional_fields_may_be_missing_and_unknown_fields_are_ignored() {
        let json =
            r#"{"id":"1","text":"x","created_at":"2026-11-22T10:00:00+01:00","extra":{"a":1}}"#;
        let parsed = parse_post(json.as_bytes()).expect("valid");
        assert_eq!(parsed.event_time, 1_795_338_000_000);
        assert_eq!(parsed.post.lang, None);
    }

    #[test]
    fn event_time_never_runs_ahead_of_ingest_time() {
        let ingest = 1_795_341_600_000; // 10:00:00
        let at = |created_at: &str| {
            let json = format!(r#"{{"id":"1","text":"a","created_at":"{created_at}"}}"#);
            parse_post(json.as_bytes()).expect("valid")
        };
        // Earlier than ingest: its own time.
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T09:59:00Z"), ingest, 300_000),
            Ok(ingest - 60_000)
        );
        // Ahead within the skew: counted at ingest time, not later.
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T10:04:50Z"), ingest, 300_000),
            Ok(ingest)
        );
        assert_eq!(
            event_time_at_ingest(&at("2026-11-22T10:05:00Z"), ingest, 300_000),
            Ok(ingest)
        );
        // Beyond it: refused, with both times in the reason.
        let err = event_time_at_ingest(&at("2026-11-22T10:05:00Z"), ingest, 299_999)
            .expect_err("too far ahead");
        assert_eq!(err.code(), "future_timestamp");
        let reason = err.to_string();
        assert!(reason.contains("2026-11-22T10:05:00Z"), "{reason}");
        assert!(reason.contains("2026-11-22T10:00:00.000Z"), "{reason}");
    }

    #[test]
    fn reasons_stay_short_whatever_the_record() {
        let huge = "9".repeat(600_000);
        let bad_time = format!(r#"{{"id":"1","text":"a","created_at":"{huge}"}}"#);
        let mistyped = format!(r#"{{"id":1,"text":"{huge}","created_at":"x"}}"#);
        let unknown_type = format!(r#"{{"id":"1","text":1,"created_at":"{huge}"}}"#);
        let wrong_string =
            format!(r#"{{"id":"1","text":"a","created_at":"x","hashtags":"{huge}"}}"#);
        for input in [bad_time, mistyped, unknown_type, wrong_string] {
            let err = parse_post(input.as_bytes()).expect_err("invalid");
            assert!(
                err.to_string().len() <= MAX_REASON_BYTES,
                "{} bytes: {}",
                err.to_string().len(),
                crate::truncate_utf8(&err.to_string(), 200)
            );
        }
        let mut not_utf8 = huge.into_bytes();
        not_utf8.push(0xff);
        let err = parse_post(&not_utf8).expect_err("invalid");
        assert!(err.to_string().len() <= MAX_REASON_BYTES, "{err}");
    }

    #[test]
    fn each_kind_of_malformed_record_has_its_reason() {
        assert_eq!(parse_post(b""), Err(PostError::Empty));
        assert_eq!(
            parse_post(b"\xff\xfe").map_err(|e| e.code()),
            Err("not_utf8")
        );
        assert_eq!(
            parse_post(b"not json").map_err(|e| e.code()),
            Err("invalid_json")
        );
        let missing = parse_post(br#"{"id":"1","created_at":"2026-11-22T10:00:00Z"}"#);
        let err = missing.expect_err("text is required");
        assert!(err.to_string().contains("missing field `text`"), "{err}");
        let mistyped = parse_post(br#"{"id":1,"text":"a","created_at":"2026-11-22T10:00:00Z"}"#);
        assert_eq!(mistyped.map_err(|e| e.code()), Err("invalid_json"));
        let bad_time = parse_post(br#"{"id":"1","text":"a","created_at":"yesterday"}"#);
        assert_eq!(bad_time, Err(PostError::BadTimestamp("yesterday".into())));
    }
}
