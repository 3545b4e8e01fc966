//! The filtered stream: one connection, its JSON lines mapped to the raw post contract.
//!
//! `GET /2/tweets/search/stream?tweet.fields=created_at,entities,lang,author_id` with the
//! app's bearer token: a chunked body of JSON objects, one per line, and a bare `\r\n` every
//! 20 s as keep-alive. Mapping ([`map_line`], pure): id `x:<id>`, `text`, `created_at`, `lang`,
//! `author_id`, `source` = `x`, `hashtags` = `data.entities.hashtags[].tag`. A line with only
//! `errors` (e.g. an operational disconnect notice) is logged; a line that is not a valid post
//! is skipped and counted as malformed (a line over [`MAX_LINE_BYTES`] too; a post whose
//! record is over `source.max_post_bytes` is skipped and counted as oversized by the pipeline).
//!
//! The rules are synced before the first connection ([`super::rules`]). A connection that
//! delivered at least a keep-alive and then drops is reconnected at once; anything else waits
//! what X's policy says ([`super::backoff`]).

use std::time::Duration;

use serde::Deserialize;
use trends_core::post::{RawPost, parse_rfc3339_millis};

use super::api::{XConfig, send};
use super::backoff::Failure;
use super::rules::sync_rules;
use crate::sources::contract::{SourceContext, SourceEvent, SourcePost};
use crate::sources::live::http::{Body, Lost, Next};
use crate::sources::live::lines::{Line, LineSplitter};
use crate::sources::live::{Connection, Ended, tags};

/// The stream's query: the post fields the contract needs.
pub const STREAM_QUERY: &str = "tweet.fields=created_at,entities,lang,author_id";
/// X sends a keep-alive every 20 s; a connection silent for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines longer than this are skipped (a post with its fields is a few KiB).
pub const MAX_LINE_BYTES: usize = 2 << 20;

/// One line of the stream.
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    data: Option<Tweet>,
    #[serde(default)]
    errors: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id: String,
    text: String,
    created_at: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    author_id: Option<String>,
    #[serde(default)]
    entities: Option<Entities>,
}

#[derive(Debug, Deserialize)]
struct Entities {
    #[serde(default)]
    hashtags: Vec<Hashtag>,
}

#[derive(Debug, Deserialize)]
struct Hashtag {
    tag: String,
}

/// What one line of the stream means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A blank line: the keep-alive.
    KeepAlive,
    Post(Box<SourcePost>),
    /// A message with errors only (what they say).
    Notice(String),
}

/// Maps one line of the stream (without its line end); `Err` (the reason) for a line that is
/// not a valid message.
pub fn map_line(line: &[u8]) -> Result<Mapped, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Mapped::KeepAlive);
    }
    let message: Message =
        serde_json::from_slice(line).map_err(|e| format!("not a stream message: {e}"))?;
    let Some(tweet) = message.data else {
        return match message.errors {
            Some(errors) if !errors.is_empty() => Ok(Mapped::Notice(
                serde_json::to_string(&errors).unwrap_or_default(),
            )),
            _ => Err("a message without data or errors".into()),
        };
    };
    if tweet.id.is_empty() {
        return Err("a post without id".into());
    }
    let event_time = parse_rfc3339_millis(&tweet.created_at)
        .ok_or_else(|| format!("created_at {:?} is not RFC 3339", tweet.created_at))?;
    let hashtags = tags(
        tweet
            .entities
            .map(|e| e.hashtags)
            .unwrap_or_default()
            .into_iter()
            .map(|hashtag| hashtag.tag),
    );
    let post = RawPost {
        id: format!("x:{}", tweet.id),
        text: tweet.text,
        created_at: tweet.created_at,
        author_id: tweet.author_id.filter(|a| !a.is_empty()),
        lang: tweet.lang.filter(|l| !l.is_empty()),
        source: Some("x".to_owned()),
        hashtags,
    };
    Ok(Mapped::Post(Box::new(SourcePost::new(post, event_time))))
}

/// The filtered stream of one app: its client, and whether its rules are in sync.
#[derive(Debug)]
pub struct FilteredStream {
    config: XConfig,
    client: reqwest::Client,
    synced: bool,
}

impl FilteredStream {
    pub fn new(config: XConfig, client: reqwest::Client) -> FilteredStream {
        FilteredStream {
            config,
            client,
            synced: false,
        }
    }
}

impl Connection for FilteredStream {
    type Lost = Failure;

    /// Syncs the rules (once), then streams until the connection ends.
    async fn attempt(&mut self, ctx: &SourceContext, attempt: u64) -> Ended<Failure> {
        if !self.synced {
            if let Err(ended) = sync_rules(&self.config, &self.client, ctx).await {
                return ended;
            }
            self.synced = true;
        }
        self.stream(ctx, attempt).await
    }
}

impl FilteredStream {
    /// One connection to the stream, read until it ends: [`Failure::Dropped`] when it had
    /// delivered at least a keep-alive.
    async fn stream(&self, ctx: &SourceContext, attempt: u64) -> Ended<Failure> {
        let config = &self.config;
        let url = format!("{}/2/tweets/search/stream?{STREAM_QUERY}", config.base_url);
        tracing::info!(url, attempt, "connecting to the X filtered stream");
        let response = match send(self.client.get(&url), "the filtered stream", config, ctx).await
        {
            Ok(response) => response,
            Err(ended) => return ended,
        };
        tracing::info!(url, "connected to the X filtered stream");
        let mut body = Body::new(response, LineSplitter::new(MAX_LINE_BYTES), IDLE_TIMEOUT);
        let mut delivered = false;
        loop {
            let line = match body.next(ctx).await {
                Next::Frame(line) => line,
                Next::Stop => return Ended::Stop,
                Next::Lost(lost) => {
                    let why = match lost {
                        Lost::Idle => "no data or keep-alive",
                        Lost::Ended => "the stream ended",
                        Lost::Failed(_) => "the stream failed",
                    };
                    tracing::warn!(why, "X filtered stream connection lost");
                    return Ended::Lost(if delivered {
                        Failure::Dropped
                    } else {
                        Failure::Network
                    });
                }
            };
            delivered = true;
            let mapped = match line {
                Line::TooLong => Err("a line over the size limit".to_owned()),
                Line::Complete(bytes) => map_line(&bytes),
            };
            match mapped {
                Ok(Mapped::KeepAlive) => {}
                Ok(Mapped::Post(post)) => {
                    if !ctx.emit(SourceEvent::Post(post)).await {
                        return Ended::Stop;
                    }
                }
                Ok(Mapped::Notice(errors)) => {
                    tracing::warn!(errors, "X sent an error message on the stream");
                }
                Err(reason) => {
                    ctx.malformed();
                    tracing::debug!(reason, "skipping a malformed X stream line");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::contract::assert_publishable;

    #[test]
    fn a_documented_post_maps_to_the_contract() {
        let line = r#"{"data":{"author_id":"2244994945","created_at":"2022-09-14T19:00:55.000Z","edit_history_tweet_ids":["1570124790212898816"],"entities":{"hashtags":[{"start":27,"end":36,"tag":"XDevelopers"},{"start":37,"end":42,"tag":"API"},{"start":43,"end":48,"tag":"API"}]},"id":"1570124790212898816","lang":"en","text":"Our new docs are live! 👀 #XDevelopers #API #API"},"matching_rules":[{"id":"1570124786375143424","tag":"hashtag-trends"}]}"#;
        let Ok(Mapped::Post(post)) = map_line(line.as_bytes()) else {
            panic!("a post");
        };
        assert_eq!(post.event_time, 1_663_182_055_000);
        assert_eq!(
            post.post,
            RawPost {
                id: "x:1570124790212898816".into(),
                text: "Our new docs are live! 👀 #XDevelopers #API #API".into(),
                created_at: "2022-09-14T19:00:55.000Z".into(),
                author_id: Some("2244994945".into()),
                lang: Some("en".into()),
                source: Some("x".into()),
                hashtags: Some(vec!["XDevelopers".into(), "API".into()]),
            }
        );
        assert_publishable(&post);
    }

    #[test]
    fn keep_alives_notices_and_malformed_lines() {
        assert_eq!(map_line(b""), Ok(Mapped::KeepAlive));
        assert_eq!(map_line(b" \t"), Ok(Mapped::KeepAlive));
        let notice = br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#;
        assert!(
            matches!(map_line(notice), Ok(Mapped::Notice(n)) if n.contains("operational-disconnect"))
        );
        for line in [
            &b"{"[..],
            b"[]",
            b"{}",
            br#"{"errors":[]}"#,
            br#"{"data":{"id":"1","text":"x"}}"#,
            br#"{"data":{"id":"","text":"x","created_at":"2022-09-14T19:00:55.000Z"}}"#,
            br#"{"data":{"id":"1","text":"x","created_at":"now"}}"#,
            b"\xff\xfe",
        ] {
            assert!(map_line(line).is_err(), "{}", String::from_utf8_lossy(line));
        }
    }
}
