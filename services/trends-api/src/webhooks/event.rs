//! What a webhook says: a [`TrendEvent`], its deterministic id and its JSON body.
//!
//! The id is a hash of what identifies the *transition* (kind, window, language, tag and when
//! the trend began), not of when it was seen, so that the same transition reported twice (the
//! detector re-deriving it after a restart, a second API replica) carries the same id and a
//! receiver can deduplicate on it. The scores and counts are not part of it: they describe the
//! transition, they do not identify it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use trends_core::format_rfc3339_millis;

/// Whether a tag began or ceased to trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrendEventKind {
    Started,
    Stopped,
}

impl TrendEventKind {
    /// The body's `type`: `trend.started` or `trend.stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendEventKind::Started => "trend.started",
            TrendEventKind::Stopped => "trend.stopped",
        }
    }
}

/// A tag starting or stopping to trend in one window (and language), as the trend detector
/// reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendEvent {
    pub kind: TrendEventKind,
    /// The counting form of the tag.
    pub hashtag: String,
    /// Its most frequent spelling.
    pub display: String,
    /// `None`: all languages.
    pub lang: Option<String>,
    /// `"5m"`, `"1h"`, …
    pub window: &'static str,
    pub score: f64,
    pub authors: i64,
    pub posts: i64,
    pub expected: f64,
    /// Epoch milliseconds (event time) at which the trend began.
    pub started_at: i64,
    /// Epoch milliseconds (event time) of this transition.
    pub at: i64,
}

/// Domain separation of the id hash: a new encoding gets a new tag, never the same ids.
const ID_DOMAIN: &[u8] = b"trends-api/webhook-event/v1";

impl TrendEvent {
    /// The event id: lowercase hex of SHA-256 over (kind, window, lang, hashtag, started_at),
    /// each field length-prefixed (so no two different tuples encode alike) and `None` told
    /// apart from any language.
    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(ID_DOMAIN);
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        field(self.kind.as_str().as_bytes());
        field(self.window.as_bytes());
        match &self.lang {
            None => field(&[0]),
            Some(lang) => field(&[&[1], lang.as_bytes()].concat()),
        }
        field(self.hashtag.as_bytes());
        field(&self.started_at.to_be_bytes());
        hex(&hash.finalize())
    }

    /// The JSON body POSTed to every URL (its bytes are what is signed).
    pub fn body(&self, id: &str) -> Vec<u8> {
        let body = Body {
            id,
            kind: self.kind.as_str(),
            hashtag: &self.hashtag,
            display: &self.display,
            lang: self.lang.as_deref(),
            window: self.window,
            score: finite(self.score),
            authors: self.authors,
            posts: self.posts,
            expected: finite(self.expected),
            started_at: format_rfc3339_millis(self.started_at),
            at: format_rfc3339_millis(self.at),
        };
        // A struct of strings and numbers: serializing it cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// JSON has no NaN or infinity: such a score is sent as 0 rather than as `null`, so receivers
/// can always read a number.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The body, in the documented field order.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    hashtag: &'a str,
    display: &'a str,
    lang: Option<&'a str>,
    window: &'a str,
    score: f64,
    authors: i64,
    posts: i64,
    expected: f64,
    started_at: String,
    at: String,
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> TrendEvent {
        TrendEvent {
            kind: TrendEventKind::Started,
            hashtag: "rust".into(),
            display: "Rust".into(),
            lang: Some("en".into()),
            window: "5m",
            score: 12.5,
            authors: 40,
            posts: 55,
            expected: 3.25,
            started_at: 1_795_435_200_000,
            at: 1_795_435_260_000,
        }
    }

    #[test]
    fn the_id_is_the_hash_of_the_transition_and_nothing_else() {
        let base = event();
        let id = base.id();
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        // The same transition seen again, later, with other numbers: the same id.
        let again = TrendEvent {
            display: "RUST".into(),
            score: 99.0,
            authors: 1,
            posts: 2,
            expected: 0.5,
            at: base.at + 3_600_000,
            ..base.clone()
        };
        assert_eq!(again.id(), id);
        // Every identifying field changes it.
        let others = [
            TrendEvent {
                kind: TrendEventKind::Stopped,
                ..base.clone()
            },
            TrendEvent {
                window: "1h",
                ..base.clone()
            },
            TrendEvent {
                lang: None,
                ..base.clone()
            },
            TrendEvent {
                lang: Some(String::new()),
                ..base.clone()
            },
            TrendEvent {
                hashtag: "rustlang".into(),
                ..base.clone()
            },
            TrendEvent {
                started_at: base.started_at + 1,
                ..base.clone()
            },
        ];
        let mut ids: Vec<String> = others.iter().map(TrendEvent::id).collect();
        ids.push(id);
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    }

    #[test]
    fn the_id_is_sha256_of_the_documented_encoding() {
        // Recomputed by hand: domain, then each field as an 8-byte big-endian length and bytes.
        let e = event();
        let mut input = ID_DOMAIN.to_vec();
        for field in [
            b"trend.started".to_vec(),
            b"5m".to_vec(),
            b"\x01en".to_vec(),
            b"rust".to_vec(),
            e.started_at.to_be_bytes().to_vec(),
        ] {
            input.extend_from_slice(&(field.len() as u64).to_be_bytes());
            input.extend_from_slice(&field);
        }
        assert_eq!(e.id(), hex(&Sha256::digest(&input)));
    }

    #[test]
    fn the_body_has_every_documented_field() {
        let e = TrendEvent {
            lang: None,
            score: f64::NAN,
            ..event()
        };
        let id = e.id();
        let body: serde_json::Value = serde_json::from_slice(&e.body(&id)).expect("json");
        assert_eq!(
            body,
            serde_json::json!({
                "id": id, "type": "trend.started", "hashtag": "rust", "display": "Rust",
                "lang": null, "window": "5m", "score": 0.0, "authors": 40, "posts": 55,
                "expected": 3.25, "started_at": "2026-11-23T12:00:00.000Z",
                "at": "2026-11-23T12:01:00.000Z"
            })
        );
    }
}
