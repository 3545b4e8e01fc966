//! The source contract: what every source is given, what it hands back, and what it must
//! provide. Every source folder depends on this file; this file depends on no source.
//!
//! Why this shape: every source (the synthetic generator, a replayed file, a live stream)
//! produces [`SourceEvent`]s in the raw post contract into one **bounded** channel
//! ([`SourceContext::emit`]); the pipeline ([`crate::pipeline`]) on the other end deduplicates,
//! filters and publishes them. When Kafka slows down, the channel fills and `emit` waits, so a
//! fast source is slowed down instead of buffering without limit. A source knows nothing
//! about Kafka, and the resilience pieces (dedup, filters, metrics, resume positions) are
//! written once for all sources.
//!
//! **The resume position is part of the contract** (as a checkpoint is in Quickwit's
//! sources): a source that can resume ([`Source::resumes`]) tags every event with a
//! [`Mark`], where it is in its stream, and is started ([`Start`]) from the last
//! [`Position`] committed with the posts; the pipeline turns marks into positions and commits
//! them in the same transaction as the posts they cover ([`super::position`]).
//!
//! A source runs until it ends (the synthetic `limit`, the end of a file), the shutdown token
//! is cancelled, or it fails (a file that cannot be read, a token the server refuses). Live
//! sources never end by themselves: they reconnect with back-off ([`super::live`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trends_common::config::ConfigError;
use trends_core::EpochMillis;
use trends_core::post::RawPost;

use super::position::{Mark, Position};
use crate::metrics::Metrics;

/// What a source hands to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Post(Box<SourcePost>),
    /// An event of the stream with nothing to publish (not a new post, an oversized frame, a
    /// bad line): only the resume position moves past it.
    Position(Mark),
}

/// One post in the raw post contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePost {
    pub post: RawPost,
    /// `created_at` in epoch milliseconds (paces a replayed file; the record carries no
    /// timestamp of its own: Kafka stamps it).
    pub event_time: EpochMillis,
    /// Bytes to publish as they are (a replayed file keeps fields the contract does not know);
    /// `None`: `post` is serialized.
    pub payload: Option<Vec<u8>>,
    /// Where this post is in its stream (`bluesky`, `file`), for the resume position.
    pub position: Option<Mark>,
}

impl SourcePost {
    /// A post to serialize, with no position in its stream.
    pub fn new(post: RawPost, event_time: EpochMillis) -> SourcePost {
        SourcePost {
            post,
            event_time,
            payload: None,
            position: None,
        }
    }

    /// The post at `mark` in its stream.
    pub fn at(self, mark: Mark) -> SourcePost {
        SourcePost {
            position: Some(mark),
            ..self
        }
    }
}

/// What a running source is given: the channel to the pipeline, its counters, the shutdown
/// token. Sources count through it and never see the metrics themselves: this is the only
/// file under `sources/` that uses [`crate::metrics`], so changing how metrics are kept
/// changes nothing in the sources.
#[derive(Debug, Clone)]
pub struct SourceContext {
    tx: mpsc::Sender<SourceEvent>,
    metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    /// Inputs skipped as malformed, for the run's summary.
    skipped: Arc<AtomicU64>,
}

impl SourceContext {
    pub fn new(
        tx: mpsc::Sender<SourceEvent>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> SourceContext {
        SourceContext {
            tx,
            metrics,
            shutdown,
            skipped: Arc::default(),
        }
    }

    /// Hands an event to the pipeline, waiting while the channel is full (back-pressure).
    /// `false` when the source must stop: shutdown, or the pipeline is gone.
    pub async fn emit(&self, event: SourceEvent) -> bool {
        if matches!(event, SourceEvent::Post(_)) {
            self.metrics.received.inc();
        }
        self.shutdown
            .run_until_cancelled(self.tx.send(event))
            .await
            .is_some_and(|sent| sent.is_ok())
    }

    /// Counts an input the source could not use: a bad frame, event or line, or one over the
    /// size limit that was not a post (`…_events_malformed_total`, and the run's `skipped`).
    pub fn malformed(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.metrics.malformed.inc();
    }

    /// Counts a frame skipped for its size (`…_events_oversized_total`).
    pub fn oversized(&self) {
        self.metrics.oversized.inc();
    }

    /// Counts a connection attempt after the first (`…_reconnects_total`).
    pub fn reconnecting(&self) {
        self.metrics.reconnects.inc();
    }

    /// The inputs skipped as malformed so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// What a source starts from: the committed position, and what it may use of `[source]`
/// beyond its own section.
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    /// The position committed with the last transaction: `None` on the first run, and
    /// always for a source that does not [`resume`](Source::resumes).
    pub position: Option<&'a Position>,
    /// `source.max_post_bytes`: frames and lines larger than this are skipped.
    pub max_post_bytes: usize,
    /// `[source.reconnect]`: the shared back-off of live sources.
    pub reconnect: &'a ReconnectSettings,
}

impl Start<'_> {
    /// The committed position as `source` reads it (`read` gives `None` for a position of
    /// another kind, which is an error: resuming from it would skip or repeat posts).
    pub fn resume<T>(
        &self,
        source: &str,
        read: impl FnOnce(&Position) -> Option<T>,
    ) -> anyhow::Result<Option<T>> {
        let Some(position) = self.position else {
            return Ok(None);
        };
        match read(position) {
            Some(value) => Ok(Some(value)),
            None => Err(anyhow::anyhow!(
                "the stored position {:?} is not one of a {source} source",
                Some(position)
            )),
        }
    }
}

/// `[source.reconnect]`: the shared back-off of live sources ([`super::live::Exponential`]).
/// The keys keep their unit in their name (`min_ms`, `max_ms`); the fields are typed.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSettings {
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "min_ms")]
    pub min: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "max_ms")]
    pub max: Duration,
}

impl ReconnectSettings {
    /// Checks the bounds; the error names the keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min < Duration::from_millis(1) || self.max < self.min {
            return Err(ConfigError(
                "source.reconnect.min_ms must be at least 1 and source.reconnect.max_ms at least min_ms"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// A source's work once started: runs until the source ends, shutdown, or an error.
pub type SourceTask = BoxFuture<'static, anyhow::Result<()>>;

/// A source, as its settings section (`[source.<name>]`) describes it: how the section is
/// checked, which secrets it reads, where its position is kept, and how it starts. Every
/// source implements it once, on its settings type; the registry ([`super`]) dispatches to the
/// section `source.kind` names.
pub trait Source: std::fmt::Debug + Send + Sync {
    /// Whether the source resumes from a committed [`Position`]: its events carry
    /// [`Mark`]s, and it is started from the position read at start.
    fn resumes(&self) -> bool {
        false
    }

    /// Checks what the types alone do not; every error names its key. `selected`: this is
    /// the source `source.kind` names (checks that need what only a running source uses, a
    /// path or rules, apply only then).
    fn validate(&self, selected: bool) -> Result<(), ConfigError>;

    /// Reads the secrets the source needs (a token), looking variables up in `vars`; called
    /// for the selected source only, at load. Errors name the key, never the secret.
    fn resolve_secrets(&mut self, _vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Where posts come from, as the source's key in the offsets topic begins: the source's
    /// name, then `:` and what identifies its stream, if anything (`bluesky:<host>`).
    fn origin(&self) -> String;

    /// Logs, once, what is about to be published.
    fn log_start(&self, topic: &str, source_key: &str, start: Option<&Position>);

    /// Prepares the source to run from `from`. Fails, before anything runs, when it cannot
    /// start (a position of another source, a token that was not read).
    fn start(&self, from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask>;
}

/// A comma-separated setting as a list: entries trimmed, empty ones dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks that what a source publishes for `post` passes the aggregator's own parser, with the
/// same event time (tests of sources' mappings).
#[cfg(test)]
pub fn assert_publishable(post: &SourcePost) {
    let json = serde_json::to_vec(&post.post).expect("serializes");
    let parsed = trends_core::post::parse_post(&json).expect("a valid post");
    assert_eq!(parsed.event_time, post.event_time);
}
