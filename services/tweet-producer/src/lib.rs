//! `tweet-producer`: the entrance of the hashtag-trends pipeline. It reads posts from a source
//! and publishes them, as JSON in the [`trends_core::post::RawPost`] contract, to the
//! raw-posts topic (`topics.tweets`).
//!
//! Why it exists: the aggregator and the API need traffic, reproducibly without a paid
//! firehose, and live when a user wants real trends. Sources ([`source`]) all feed one
//! bounded channel to the publisher, so a slow broker slows the source down:
//!
//! - **synthetic** ([`generator`]): an endless, seeded stream of multilingual posts with
//!   Zipf-distributed hashtags and periodic bursts, at a fixed rate or as fast as possible;
//! - **file** ([`file_source`]): a JSON-lines file replayed as fast as possible or with its
//!   original timing;
//! - **bluesky** ([`bluesky`]): Bluesky's public Jetstream, live, resumable from a cursor file;
//! - **mastodon** ([`mastodon`]): a Mastodon server's streaming API (Server-Sent Events,
//!   [`sse`]), statuses' HTML turned into text ([`html`]), with a user token;
//! - **x** ([`x`]): the X API v2 filtered stream (chunked JSON lines), its rules synced from
//!   config, X's documented reconnect policy, with an app bearer token.
//!
//! Between the channel and Kafka ([`pipeline`]): a bounded-horizon dedup of post ids
//! ([`dedup`]), keyword and language filters ([`filter`]), per-source counters ([`metrics`],
//! Prometheus text on `producer.metrics_addr`) and the durable resume position ([`cursor`]).
//! Secrets for token-based sources are [`secret`] types; [`http`] holds what the two HTTP
//! streaming sources share.
//!
//! Publishing ([`publisher`]): one idempotent producer (`acks=all`, lz4, `linger.ms=5`), record
//! key = post id (so a post always lands in the same partition), value = the JSON, Kafka
//! timestamp = `created_at`. Deliveries are tracked with a bounded number in flight; a failed
//! delivery stops the service with an error. The topic is created at start if missing
//! (`topics.partitions` partitions).
//!
//! Lifecycle ([`run`]): SIGTERM/Ctrl-C (or the end of the source: EOF, `limit` reached) stops
//! reading; what was accepted is flushed (and a live source's cursor stored); the number of published posts is logged; `run`
//! returns `Ok`. Progress is logged every 10 s.
//!
//! `main.rs` only loads [`settings::Settings`] and calls [`run`]: everything is testable
//! in-process. Settings are documented in [`settings`].
//!
//! # Performance
//!
//! There are no benchmarks (no criterion): the producer is not the bottleneck of the pipeline
//! and its throughput is best measured end to end. Set `source.synthetic.rate = 0` and a
//! `limit`, and read the rate in the progress log line. For reference, a debug build on a
//! 2-core machine with a local single-node broker publishes about 17,000 posts/s; the
//! broker, not the generator, is the limit there.

pub mod bluesky;
pub mod cursor;
pub mod dedup;
pub mod file_source;
pub mod filter;
pub mod generator;
pub mod html;
pub mod http;
pub mod lang;
pub mod mastodon;
pub mod metrics;
pub mod pacing;
pub mod pipeline;
pub mod publisher;
pub mod rng;
pub mod secret;
pub mod settings;
pub mod source;
pub mod sse;
pub mod vocabulary;
pub mod x;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{TopicSpec, ensure_topics};
use trends_core::EpochMillis;

use crate::cursor::CursorStore;
use crate::dedup::Dedup;
use crate::filter::Filters;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::publisher::{Publisher, Stats};
use crate::settings::{Settings, SourceKind};
use crate::source::{Source, SourceContext};

/// At most this many records are sent and not yet acknowledged.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// How long the final flush may take before the service gives up with an error.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often progress is logged.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// A replayed file (`pace = "original"`) never waits longer than this between two posts.
pub const MAX_REPLAY_GAP: Duration = Duration::from_secs(5);

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Posts the broker acknowledged.
    pub published: u64,
    /// Inputs that were not valid posts: bad file lines, malformed frames.
    pub skipped: u64,
}

/// Runs the producer until the source ends or `shutdown` is cancelled, then flushes.
///
/// Returns `Ok` after a clean stop, with what was published. Fails if the topic cannot be
/// created, the metrics address cannot be bound, the source fails (a file cannot be read, a
/// cursor file is garbled), a delivery fails, or the flush times out ([`FLUSH_TIMEOUT`]).
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let stats = Arc::new(Stats::default());
    let metrics = Arc::new(Metrics::new(
        settings.source.kind.name(),
        Arc::clone(&stats),
    ));
    run_with_metrics(settings, shutdown, metrics, stats).await
}

/// [`run`] with metrics the caller can read (tests).
pub async fn run_with_metrics(
    settings: Settings,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
) -> anyhow::Result<Summary> {
    let addr = settings.metrics_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (producer.metrics_addr)"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics on /metrics");
    let stop_metrics = CancellationToken::new();
    let metrics_server = tokio::spawn(metrics::serve(
        listener,
        Arc::clone(&metrics),
        stop_metrics.clone(),
    ));
    let result = publish(settings, shutdown, metrics, stats).await;
    stop_metrics.cancel();
    let _ = metrics_server.await;
    result
}

async fn publish(
    settings: Settings,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
) -> anyhow::Result<Summary> {
    let topic = settings.topics.tweets.as_str();
    let spec = TopicSpec {
        name: topic,
        partitions: settings.topics.partitions,
        config: Vec::new(),
    };
    tokio::select! {
        // A broker that is down makes this wait; a SIGTERM meanwhile is still a clean stop.
        () = shutdown.cancelled() => {
            tracing::info!("stopped before publishing anything");
            return Ok(Summary { published: 0, skipped: 0 });
        }
        created = ensure_topics(&settings.kafka, std::slice::from_ref(&spec)) => created
            .with_context(|| format!("cannot create topic {topic} (topics.tweets)"))?,
    }

    let cursor_store = (settings.source.kind == SourceKind::Bluesky
        && !settings.source.bluesky.cursor_file.trim().is_empty())
    .then(|| CursorStore::new(settings.source.bluesky.cursor_file.trim()));
    let start = match &cursor_store {
        Some(store) => store.load()?,
        None => None,
    };
    let source = Source::from_settings(&settings, start)?;
    log_start(&settings, topic, start);

    let mut publisher = Publisher::new(&settings.kafka, topic, MAX_IN_FLIGHT, Arc::clone(&stats))?;
    let stop_progress = CancellationToken::new();
    let progress = tokio::spawn(report_progress(
        Arc::clone(&stats),
        stop_progress.clone(),
        PROGRESS_INTERVAL,
    ));

    // The source stops on shutdown, or when the publisher fails.
    let stop_source = shutdown.child_token();
    let (tx, mut rx) = tokio::sync::mpsc::channel(settings.source.buffer);
    let ctx = SourceContext::new(tx, Arc::clone(&metrics), stop_source.clone());
    let source_task = tokio::spawn(source.run(ctx));
    let mut pipeline = Pipeline::new(
        Dedup::new(settings.source.dedup_capacity),
        Filters::new(
            &settings.source.keyword_list(),
            &settings.source.language_list(),
        ),
        Arc::clone(&metrics),
        cursor_store,
    );
    let published = pipeline.run(&mut rx, &mut publisher, &shutdown).await;
    stop_source.cancel();
    drop(rx);
    let source_result = source_task
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the source task panicked: {e}")));

    // Flush what was accepted even when something failed, so a failure loses no more than it
    // must; the first error is the one reported.
    tracing::info!(
        in_flight = publisher.in_flight(),
        "source stopped, flushing"
    );
    let flushed = publisher.finish(FLUSH_TIMEOUT).await;
    stop_progress.cancel();
    let _ = progress.await;
    let skipped = source_result?;
    published?;
    let acked = flushed?;
    pipeline.checkpoint(acked).await?;
    let summary = Summary {
        published: stats.published(),
        skipped,
    };
    tracing::info!(
        published = summary.published,
        skipped = summary.skipped,
        cursor = pipeline.stored(),
        "stopped: published {} posts",
        summary.published
    );
    Ok(summary)
}

fn log_start(settings: &Settings, topic: &str, start: Option<i64>) {
    let source = &settings.source;
    match source.kind {
        SourceKind::Synthetic => tracing::info!(
            topic,
            rate = source.synthetic.rate,
            seed = source.synthetic.seed,
            limit = source.synthetic.limit,
            "publishing synthetic posts"
        ),
        SourceKind::File => tracing::info!(
            topic,
            path = %source.file.path,
            pace = ?source.file.pace,
            "publishing posts from a file"
        ),
        SourceKind::Bluesky => tracing::info!(
            topic,
            host = %source.bluesky.host,
            cursor_file = %source.bluesky.cursor_file,
            resume_after = start,
            "publishing live posts from Bluesky Jetstream"
        ),
        SourceKind::Mastodon => tracing::info!(
            topic,
            base_url = %source.mastodon.base_url,
            stream = ?source.mastodon.stream,
            tag = %source.mastodon.tag,
            "publishing live posts from a Mastodon server"
        ),
        SourceKind::X => tracing::info!(
            topic,
            base_url = %source.x.base_url,
            rules = ?source.x.rule_list(),
            "publishing live posts from the X filtered stream"
        ),
    }
}

/// Logs the published count and rate every `interval` until `stop`.
async fn report_progress(stats: Arc<Stats>, stop: CancellationToken, interval: Duration) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let published = stats.published();
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let rate = (published - last.1) as f64 / secs;
        tracing::info!(
            published,
            accepted = stats.accepted(),
            rate = (rate * 10.0).round() / 10.0,
            "published {published} posts ({rate:.1}/s)"
        );
        last = (now, published);
    }
}

/// Wall-clock now in epoch milliseconds: the `created_at` of generated posts.
pub fn now_ms() -> EpochMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
