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

/// Why a record is not a valid post. The `Display` text is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("value is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error("value is not a valid post: {0}")]
    InvalidJson(String),
    #[error("created_at is not an RFC 3339 timestamp: {0:?}")]
    BadTimestamp(String),
    #[error("record has no value")]
    Empty,
    #[error(
        "created_at {created_at} is more than {max_skew_secs} s ahead of the aggregator's clock"
    )]
    FutureTimestamp {
        created_at: String,
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

/// Parses a record value into a post, or says why it is not one.
pub fn parse_post(bytes: &[u8]) -> Result<ParsedPost, PostError> {
    if bytes.is_empty() {
        return Err(PostError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| PostError::NotUtf8(e.to_string()))?;
    let post: RawPost =
        serde_json::from_str(text).map_err(|e| PostError::InvalidJson(e.to_string()))?;
    let event_time = parse_rfc3339_millis(&post.created_at)
        .ok_or_else(|| PostError::BadTimestamp(post.created_at.clone()))?;
    Ok(ParsedPost { post, event_time })
}

/// Rejects a post whose event time is more than `max_skew_ms` ahead of `now`: a clock that far
/// off would drag the watermark into the future and empty every window.
pub fn check_not_in_future(
    post: &ParsedPost,
    now: EpochMillis,
    max_skew_ms: i64,
) -> Result<(), PostError> {
    if post.event_time > now.saturating_add(max_skew_ms) {
        return Err(PostError::FutureTimestamp {
            created_at: post.post.created_at.clone(),
            max_skew_secs: max_skew_ms / 1000,
        });
    }
    Ok(())
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
    fn posts_too_far_in_the_future_are_rejected() {
        let parsed = parse_post(br#"{"id":"1","text":"a","created_at":"2026-11-22T10:05:00Z"}"#)
            .expect("valid");
        let now = 1_795_341_600_000; // 10:00:00
        assert_eq!(check_not_in_future(&parsed, now, 300_000), Ok(()));
        let err = check_not_in_future(&parsed, now, 299_999).expect_err("too far ahead");
        assert_eq!(err.code(), "future_timestamp");
        assert!(err.to_string().contains("2026-11-22T10:05:00Z"), "{err}");
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
