//! The `bluesky` source: Bluesky's public Jetstream, over a WebSocket.
//!
//! Why Jetstream: it is the public, credential-free stream of the whole Bluesky network as
//! plain JSON (the firehose itself is CBOR and needs repository decoding). We subscribe to
//! `/subscribe?wantedCollections=app.bsky.feed.post` and keep only `kind: "commit"` events
//! whose `commit.operation` is `create` in collection `app.bsky.feed.post`; everything else
//! (deletes, updates, `identity` and `account` events) only moves the resume position.
//!
//! Mapping ([`map_event`], pure): id `bsky:<did>/<rkey>`, text `record.text`, `created_at`
//! `record.createdAt` (when it is not RFC 3339, the event's `time_us` instead), `lang` the
//! first of `record.langs`, `author_id` the DID, `source` `bluesky`, `hashtags` the tags of
//! `record.facets[].features[]` of type `app.bsky.richtext.facet#tag` plus `record.tags` (once
//! each, in order; absent when there are none, so the aggregator extracts from the text).
//!
//! Resume: every event carries `time_us`, Jetstream's cursor. Within a run, a reconnect passes
//! `cursor = <last time_us seen> − rewind_secs`, and the dedup drops the repeats. Across
//! restarts, the position committed with the last transaction is read from the offsets topic
//! ([`crate::offsets`]): the stream resumes *at* its cursor (Jetstream replays `time_us ≥
//! cursor`) and the pipeline drops the posts it lists as already published at that `time_us`
//! ([`crate::position`]), so two events sharing a `time_us` are neither lost nor repeated.
//! Without a committed position (the first start) the stream starts live.
//!
//! Size: a frame over `source.max_post_bytes` is skipped and counted
//! (`trends_producer_events_oversized_total`) after only its `time_us` is read (serde with that
//! one field, no value tree), and the position moves past it; otherwise it would fail its
//! transaction, and the restart would meet it again. The WebSocket itself refuses messages over
//! [`MAX_MESSAGE_BYTES`] (16 MiB, far above any post; one connection, so the memory is
//! bounded); such a message ends the connection.
//!
//! Failures: a refused or failed connection, a dropped one, or [`IDLE_TIMEOUT`] without a
//! frame leads to a reconnect after an exponential back-off with jitter (`backon`), reset once
//! a connection delivers a frame. A frame that is not a valid event (bad JSON, a binary frame)
//! is skipped and counted (`trends_producer_events_malformed_total`); it never stops the source.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use trends_core::EpochMillis;
use trends_core::post::{RawPost, parse_rfc3339_millis};

use crate::metrics::inc;
use crate::position::Mark;
use crate::settings::SourceSettings;
use crate::source::{SourceContext, SourceEvent, SourcePost};

/// The collection subscribed to.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
/// The facet feature type of a hashtag.
pub const TAG_FEATURE: &str = "app.bsky.richtext.facet#tag";
/// A connection without any frame for this long is considered dead (Jetstream sends many
/// events per second).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt (TCP, TLS, WebSocket handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The WebSocket's hard limit on a message (and frame): far above the post limit
/// (`source.max_post_bytes`, ≤ 1 MB), so that a big frame is skipped with its position rather
/// than ending the connection (which a reconnect would meet again).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// What the source is configured with.
#[derive(Debug, Clone)]
pub struct BlueskyConfig {
    /// `wss://host[:port]` (or `ws://` for tests), no path.
    pub host: String,
    /// Where to resume at start (`cursor` of the first connection, inclusive), from the
    /// committed position.
    pub start: Option<i64>,
    pub rewind_us: i64,
    /// Frames longer than this are skipped (`source.max_post_bytes`).
    pub max_frame_bytes: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl BlueskyConfig {
    /// From settings; `cursor` is the committed position's cursor (resumed inclusively).
    pub fn from_settings(source: &SourceSettings, cursor: Option<i64>) -> BlueskyConfig {
        let rewind = i64::try_from(source.bluesky.rewind_secs).unwrap_or(i64::MAX / 1_000_000);
        BlueskyConfig {
            host: source.bluesky.host.trim().trim_end_matches('/').to_owned(),
            start: cursor,
            rewind_us: rewind.saturating_mul(1_000_000),
            max_frame_bytes: source.max_post_bytes,
            min_delay: Duration::from_millis(source.reconnect.min_ms),
            max_delay: Duration::from_millis(source.reconnect.max_ms),
        }
    }
}

/// The subscribe URL for a `cursor` (none: live).
pub fn subscribe_url(host: &str, cursor: Option<i64>) -> String {
    let mut url = format!("{host}/subscribe?wantedCollections={POST_COLLECTION}");
    if let Some(cursor) = cursor {
        url.push_str(&format!("&cursor={}", cursor.max(0)));
    }
    url
}

/// One Jetstream event, as far as we read it.
#[derive(Debug, Deserialize)]
struct Event {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    operation: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    record: Option<serde_json::Value>,
}

/// The fields of an `app.bsky.feed.post` record we use.
#[derive(Debug, Deserialize)]
struct PostRecord {
    text: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    #[serde(default)]
    langs: Option<Vec<String>>,
    #[serde(default)]
    facets: Option<Vec<Facet>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Facet {
    #[serde(default)]
    features: Vec<Feature>,
}

#[derive(Debug, Deserialize)]
struct Feature {
    #[serde(rename = "$type", default)]
    kind: String,
    #[serde(default)]
    tag: Option<String>,
}

/// What one frame means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A new post, and the event's `time_us`.
    Post(Box<SourcePost>),
    /// Any other event: only its `time_us` matters.
    Other { time_us: i64 },
}

/// Maps one Jetstream text frame; `Err` (the reason) for a frame that is not a valid event.
pub fn map_event(frame: &str) -> Result<Mapped, String> {
    let event: Event = serde_json::from_str(frame).map_err(|e| format!("not an event: {e}"))?;
    let time_us = event.time_us;
    let commit = match (event.kind.as_str(), event.commit) {
        ("commit", Some(commit)) => commit,
        ("commit", None) => return Err("a commit event without a commit".into()),
        _ => return Ok(Mapped::Other { time_us }),
    };
    if commit.operation != "create" || commit.collection != POST_COLLECTION {
        return Ok(Mapped::Other { time_us });
    }
    let record = commit.record.ok_or("a created post without a record")?;
    let record: PostRecord =
        serde_json::from_value(record).map_err(|e| format!("not a post record: {e}"))?;
    if event.did.is_empty() || commit.rkey.is_empty() {
        return Err("a post without did or rkey".into());
    }
    let (created_at, event_time) = match parse_rfc3339_millis(&record.created_at) {
        Some(ms) => (record.created_at, ms),
        None => {
            let ms: EpochMillis = time_us.div_euclid(1000);
            let text = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or("time_us out of range")?
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            (text, ms)
        }
    };
    let mut hashtags: Vec<String> = Vec::new();
    let facet_tags = record
        .facets
        .iter()
        .flatten()
        .flat_map(|f| f.features.iter())
        .filter(|f| f.kind == TAG_FEATURE)
        .filter_map(|f| f.tag.clone());
    for tag in facet_tags.chain(record.tags.into_iter().flatten()) {
        let tag = tag.trim_start_matches(['#', '＃']).to_owned();
        if !tag.is_empty() && !hashtags.contains(&tag) {
            hashtags.push(tag);
        }
    }
    let post = RawPost {
        id: format!("bsky:{}/{}", event.did, commit.rkey),
        text: record.text,
        created_at,
        author_id: Some(event.did),
        lang: record.langs.and_then(|l| l.into_iter().next()),
        source: Some("bluesky".to_owned()),
        hashtags: (!hashtags.is_empty()).then_some(hashtags),
    };
    Ok(Mapped::Post(Box::new(SourcePost {
        post,
        event_time,
        payload: None,
        position: Some(Mark::TimeUs(time_us)),
    })))
}

/// Only the cursor of an event.
#[derive(Debug, Deserialize)]
struct TimeOnly {
    time_us: i64,
}

/// The `time_us` of a frame, reading nothing else into memory (for frames too large to map).
pub fn frame_time_us(frame: &str) -> Result<i64, String> {
    serde_json::from_str::<TimeOnly>(frame)
        .map(|event| event.time_us)
        .map_err(|e| format!("not an event: {e}"))
}

/// How a connection ended.
enum Ended {
    /// Shutdown, or the publisher is gone: stop.
    Stop,
    /// The connection dropped; `delivered`: it had delivered at least one frame.
    Dropped { delivered: bool },
}

/// Runs the source: connects, reads, reconnects, until shutdown. Returns the number of
/// malformed frames.
pub async fn run(config: &BlueskyConfig, ctx: &SourceContext) -> anyhow::Result<u64> {
    let backoff = ExponentialBuilder::new()
        .with_min_delay(config.min_delay)
        .with_max_delay(config.max_delay)
        .with_jitter()
        .without_max_times();
    let mut delays = backoff.build();
    let mut last_seen: Option<i64> = None;
    let mut malformed = 0u64;
    let mut attempt = 0u64;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    loop {
        if attempt > 0 {
            inc(&ctx.metrics.reconnects);
        }
        attempt += 1;
        let cursor = match last_seen {
            Some(t) => Some(t.saturating_sub(config.rewind_us)),
            None => config.start,
        };
        let url = subscribe_url(&config.host, cursor);
        tracing::info!(url, attempt, "connecting to Jetstream");
        let connect = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), true),
        );
        let connected = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(malformed),
            connected = connect => connected,
        };
        match connected {
            Err(_) => tracing::warn!(url, "Jetstream connection timed out"),
            Ok(Err(e)) => tracing::warn!(url, error = %e, "cannot connect to Jetstream"),
            Ok(Ok((ws, _response))) => {
                tracing::info!(url, "connected to Jetstream");
                match read(ws, config, ctx, &mut last_seen, &mut malformed).await {
                    Ended::Stop => return Ok(malformed),
                    Ended::Dropped { delivered } => {
                        tracing::warn!(url, "Jetstream connection dropped");
                        if delivered {
                            delays = backoff.build();
                        }
                    }
                }
            }
        }
        let delay = delays.next().unwrap_or(config.max_delay);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting after a back-off"
        );
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(malformed),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Reads frames until the connection ends or the source must stop.
async fn read<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    config: &BlueskyConfig,
    ctx: &SourceContext,
    last_seen: &mut Option<i64>,
    malformed: &mut u64,
) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut delivered = false;
    loop {
        let frame = tokio::select! {
            () = ctx.shutdown.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return Ended::Stop;
            }
            frame = tokio::time::timeout(IDLE_TIMEOUT, ws.next()) => frame,
        };
        let message = match frame {
            Err(_) => {
                tracing::warn!("no frame from Jetstream for {IDLE_TIMEOUT:?}");
                return Ended::Dropped { delivered };
            }
            Ok(None) => return Ended::Dropped { delivered },
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "Jetstream read failed");
                return Ended::Dropped { delivered };
            }
            Ok(Some(Ok(message))) => message,
        };
        delivered = true;
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                skip_malformed(
                    ctx,
                    malformed,
                    "a binary frame (compression is not requested)",
                );
                continue;
            }
            Message::Close(_) => return Ended::Dropped { delivered },
            // Pings are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if text.len() > config.max_frame_bytes {
            match frame_time_us(text.as_str()) {
                Ok(time_us) => {
                    inc(&ctx.metrics.oversized);
                    tracing::warn!(
                        time_us,
                        bytes = text.len(),
                        limit = config.max_frame_bytes,
                        "skipping a Jetstream frame over the size limit (source.max_post_bytes)"
                    );
                    *last_seen = Some(time_us);
                    if !ctx.emit(SourceEvent::Position(Mark::TimeUs(time_us))).await {
                        return Ended::Stop;
                    }
                }
                Err(reason) => skip_malformed(ctx, malformed, &reason),
            }
            continue;
        }
        let event = match map_event(text.as_str()) {
            Ok(Mapped::Post(post)) => {
                if let Some(Mark::TimeUs(time_us)) = post.position {
                    *last_seen = Some(time_us);
                }
                SourceEvent::Post(post)
            }
            Ok(Mapped::Other { time_us }) => {
                *last_seen = Some(time_us);
                SourceEvent::Position(Mark::TimeUs(time_us))
            }
            Err(reason) => {
                skip_malformed(ctx, malformed, &reason);
                continue;
            }
        };
        if !ctx.emit(event).await {
            return Ended::Stop;
        }
    }
}

fn skip_malformed(ctx: &SourceContext, malformed: &mut u64, reason: &str) {
    *malformed += 1;
    inc(&ctx.metrics.malformed);
    tracing::debug!(reason, "skipping a malformed Jetstream frame");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A post as Jetstream documents its commit events (field order and shape as published).
    const POST: &str = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1725911162329308,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.post","createdAt":"2024-09-09T19:46:02.102Z","langs":["en","pt"],"text":"Loving #RustLang and #kafka","facets":[{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"RustLang"}],"index":{"byteEnd":15,"byteStart":7}},{"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com"}],"index":{"byteEnd":26,"byteStart":20}},{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"kafka"}],"index":{"byteEnd":26,"byteStart":20}}],"tags":["streaming","kafka"]},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}"#;

    #[test]
    fn a_created_post_maps_to_the_contract() {
        let Ok(Mapped::Post(post)) = map_event(POST) else {
            panic!("a post");
        };
        assert_eq!(post.position, Some(Mark::TimeUs(1_725_911_162_329_308)));
        assert_eq!(post.event_time, 1_725_911_162_102);
        assert_eq!(post.payload, None);
        assert_eq!(
            post.post,
            RawPost {
                id: "bsky:did:plc:eygmaihciaxprqvxpfvl6flk/3l3qo2vuowo2b".into(),
                text: "Loving #RustLang and #kafka".into(),
                created_at: "2024-09-09T19:46:02.102Z".into(),
                author_id: Some("did:plc:eygmaihciaxprqvxpfvl6flk".into()),
                lang: Some("en".into()),
                source: Some("bluesky".into()),
                hashtags: Some(vec!["RustLang".into(), "kafka".into(), "streaming".into()]),
            }
        );
        // What is published passes the aggregator's own parser.
        let json = serde_json::to_vec(&post.post).expect("serializes");
        let parsed = trends_core::post::parse_post(&json).expect("a valid post");
        assert_eq!(parsed.event_time, post.event_time);
    }

    #[test]
    fn other_events_only_move_the_position() {
        let like = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1725911162329308,"kind":"commit","commit":{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.like","rkey":"3l3qo2vuowo2b","record":{"$type":"app.bsky.feed.like","createdAt":"2024-09-09T19:46:02.102Z","subject":{"cid":"bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4","uri":"at://did:plc:wa7b35aakoll7hugkrjtf3xf/app.bsky.feed.post/3l3pte3p2e325"}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}"#;
        let delete = r#"{"did":"did:plc:rfov6bpyztcnedeyyzgfq42k","time_us":1725516666833633,"kind":"commit","commit":{"rev":"3l3f6nzl3cv2s","operation":"delete","collection":"app.bsky.feed.post","rkey":"3l3f6nzl3cv2s"}}"#;
        let identity = r#"{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","time_us":1725516665234703,"kind":"identity","identity":{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","handle":"yohenrique.bsky.social","seq":1409752997,"time":"2024-09-05T06:11:04.870Z"}}"#;
        let account = r#"{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","time_us":1725516665333808,"kind":"account","account":{"active":true,"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","seq":1409753013,"time":"2024-09-05T06:11:04.870Z"}}"#;
        assert_eq!(
            map_event(like),
            Ok(Mapped::Other {
                time_us: 1_725_911_162_329_308
            })
        );
        assert_eq!(
            map_event(delete),
            Ok(Mapped::Other {
                time_us: 1_725_516_666_833_633
            })
        );
        assert_eq!(
            map_event(identity),
            Ok(Mapped::Other {
                time_us: 1_725_516_665_234_703
            })
        );
        assert_eq!(
            map_event(account),
            Ok(Mapped::Other {
                time_us: 1_725_516_665_333_808
            })
        );
    }

    #[test]
    fn a_post_without_tags_or_valid_created_at_still_maps() {
        let frame = r#"{"did":"did:plc:a","time_us":1725911162329308,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"$type":"app.bsky.feed.post","createdAt":"yesterday","text":"plain #text"},"cid":"c"}}"#;
        let Ok(Mapped::Post(post)) = map_event(frame) else {
            panic!("a post");
        };
        assert_eq!(
            post.post.hashtags, None,
            "the aggregator extracts from text"
        );
        assert_eq!(post.post.lang, None);
        assert_eq!(post.post.created_at, "2024-09-09T19:46:02.329Z");
        assert_eq!(post.event_time, 1_725_911_162_329);
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        for frame in [
            "",
            "not json",
            "[]",
            r#"{"did":"did:plc:a","kind":"commit"}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit"}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k"}}"#,
            r#"{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":5}}}"#,
            r#"{"did":"","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":"x","createdAt":"2024-09-09T19:46:02.102Z"}}}"#,
            r#"{"did":"did:plc:a","time_us":9223372036854775807,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":"x","createdAt":"bad"}}}"#,
        ] {
            assert!(map_event(frame).is_err(), "{frame}");
        }
    }

    #[test]
    fn an_oversized_frame_yields_its_time_us_without_mapping() {
        let text = "x".repeat(3 << 20);
        let frame = format!(
            r#"{{"did":"did:plc:a","time_us":1725911162329308,"kind":"commit","commit":{{"rev":"r","operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{{"text":"{text}","createdAt":"2024-09-09T19:46:02.102Z","nested":{{"a":[1,2,{{"b":null}}]}}}}}}}}"#
        );
        assert_eq!(frame_time_us(&frame), Ok(1_725_911_162_329_308));
        assert_eq!(frame_time_us(POST), Ok(1_725_911_162_329_308));
        for bad in ["", "{", r#"{"time_us":"soon"}"#, r#"{"did":"x"}"#, "[]"] {
            assert!(frame_time_us(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_url_carries_the_collection_and_cursor() {
        assert_eq!(
            subscribe_url("wss://jetstream2.us-east.bsky.network", None),
            "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post"
        );
        assert_eq!(
            subscribe_url("ws://127.0.0.1:1", Some(1_725_911_162_329_308)),
            "ws://127.0.0.1:1/subscribe?wantedCollections=app.bsky.feed.post&cursor=1725911162329308"
        );
    }
}
