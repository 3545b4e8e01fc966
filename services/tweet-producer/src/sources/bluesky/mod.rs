//! The `bluesky` source: Bluesky's public Jetstream, over a WebSocket.
//!
//! Why Jetstream: it is the public, credential-free stream of the whole Bluesky network as
//! plain JSON (the firehose itself is CBOR and needs repository decoding). We subscribe to
//! `/subscribe?wantedCollections=app.bsky.feed.post` ([`stream`]) and map its events
//! ([`event`]).
//!
//! Resume: every event carries `time_us`, Jetstream's cursor. Within a run, a reconnect passes
//! `cursor = <last time_us seen> − rewind_secs`, and the dedup drops the repeats. Across
//! restarts, the position committed with the last transaction is read from the offsets topic
//! (`crate::pipeline::offsets`): the stream resumes *at* its cursor (Jetstream replays
//! `time_us ≥ cursor`) and the pipeline drops the posts it lists as already published at that
//! `time_us` ([`crate::sources::position`]), so two events sharing a `time_us` are neither lost
//! nor repeated. Without a committed position (the first start) the stream starts live.
//!
//! Size: a frame over `source.max_post_bytes` is skipped and counted
//! (`trends_producer_events_oversized_total`) after only its `time_us` is read (serde with that
//! one field, no value tree), and the position moves past it; otherwise it would fail its
//! transaction, and the restart would meet it again. The WebSocket itself refuses messages over
//! [`stream::MAX_MESSAGE_BYTES`] (16 MiB, far above any post; one connection, so the memory
//! is bounded); such a message ends the connection.
//!
//! Failures: a refused or failed connection, a dropped one, or [`stream::IDLE_TIMEOUT`]
//! without a frame leads to a reconnect after the shared exponential back-off with jitter
//! (`source.reconnect`, [`crate::sources::live`]), reset once a connection delivers a frame. A
//! frame that is not a valid event (bad JSON, a binary frame) is skipped and counted
//! (`trends_producer_events_malformed_total`); it never stops the source.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.bluesky.host` | `wss://jetstream2.us-east.bsky.network` | the Jetstream instance (`wss://` or `ws://`, no path) |
//! | `source.bluesky.rewind_secs` | `3` | on a reconnect within a run, resume this far before the last event seen (repeats are dropped by the dedup) |
//!
//! `source.bluesky.cursor_file` was removed: positions are kept in `topics.source_offsets`,
//! written in the same transaction as the posts (the loader says so if it is still set).

pub mod event;
pub mod stream;

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationSeconds, serde_as};
use trends_common::config::ConfigError;

use self::stream::Jetstream;
use super::contract::{Source, SourceContext, SourceTask, Start};
use super::live::{self, Exponential};
use super::position::Position;

/// The defaults of `[source.bluesky]`.
pub const DEFAULTS: &str = r#"
[source.bluesky]
host = "wss://jetstream2.us-east.bsky.network"
rewind_secs = 3
"#;

/// `[source.bluesky]`: Jetstream.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueskySettings {
    pub host: String,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "rewind_secs")]
    pub rewind: Duration,
}

impl BlueskySettings {
    /// `host` without surrounding blanks or a trailing slash.
    fn host(&self) -> &str {
        self.host.trim().trim_end_matches('/')
    }
}

impl Source for BlueskySettings {
    fn resumes(&self) -> bool {
        true
    }

    /// The host is checked whatever the source (its default is valid).
    fn validate(&self, _selected: bool) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if !(host.starts_with("wss://") || host.starts_with("ws://"))
            || host.len() <= "wss://".len()
        {
            return Err(ConfigError(format!(
                "source.bluesky.host must be a ws:// or wss:// URL without a path, got {host:?}"
            )));
        }
        Ok(())
    }

    /// `bluesky:<host>`: a cursor belongs to one Jetstream instance's clock.
    fn origin(&self) -> String {
        format!("bluesky:{}", self.host())
    }

    fn log_start(&self, topic: &str, source_key: &str, start: Option<&Position>) {
        tracing::info!(
            topic,
            host = %self.host,
            source_key,
            position = ?start,
            "publishing live posts from Bluesky Jetstream"
        );
    }

    fn start(&self, from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask> {
        let mut jetstream = Jetstream::new(
            self.host().to_owned(),
            from.resume("bluesky", Position::jetstream_cursor)?,
            i64::try_from(self.rewind.as_micros()).unwrap_or(i64::MAX),
            from.max_post_bytes,
        );
        let policy = Exponential::new(from.reconnect);
        Ok(Box::pin(async move {
            live::run(&mut jetstream, policy, &ctx, "reconnecting after a back-off").await
        }))
    }
}
