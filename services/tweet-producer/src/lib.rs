//! `tweet-producer`: the entrance of the hashtag-trends pipeline. It reads posts from a source
//! and publishes them, as JSON in the [`trends_core::post::RawPost`] contract, to the
//! raw-posts topic (`topics.tweets`).
//!
//! Why it exists: the aggregator and the API need traffic, reproducibly without a paid
//! firehose, and live when a user wants real trends. Sources ([`sources`], one folder each)
//! all feed one bounded channel to the pipeline, so a slow broker slows the source down:
//!
//! - **synthetic** ([`sources::synthetic`]): an endless, seeded stream of multilingual posts
//!   with Zipf-distributed hashtags and periodic bursts, at a fixed rate or as fast as possible;
//! - **file** ([`sources::file`]): a JSON-lines file replayed as fast as possible or with its
//!   original timing;
//! - **bluesky** ([`sources::bluesky`]): Bluesky's public Jetstream, live, resumed exactly where
//!   the last transaction ended;
//! - **mastodon** ([`sources::mastodon`]): a Mastodon server's streaming API (Server-Sent
//!   Events), statuses' HTML turned into text, with a user token;
//! - **x** ([`sources::x`]): the X API v2 filtered stream (chunked JSON lines), its rules synced
//!   from config, X's documented reconnect policy, with an app bearer token.
//!
//! The live ones share their machinery ([`sources::live`]): reconnecting under a back-off
//! policy, HTTP requests and streaming bodies, framing. Between the channel and Kafka
//! ([`pipeline`]): the resume filter and the position ([`sources::position`]), a
//! bounded-horizon dedup of post ids, keyword and language filters, the record size limit, and
//! per-source counters ([`metrics`], OpenMetrics text on `producer.metrics_addr`). Secrets for
//! token-based sources are [`secret`] types.
//!
//! **Exactly once from the source into `tweets`** (KIP-618 style): the producer is
//! transactional ([`publisher`]); every `producer.commit_interval_ms` one transaction commits
//! the posts sent since the last commit together with the source's resume position, a record
//! keyed by source in the compacted offsets topic ([`pipeline::offsets`]). At start the
//! producer fences its predecessor (`init_transactions`), reads its position from that topic
//! with `read_committed`, and the source resumes there. A crash loses the open transaction's
//! posts and its position together; the restart sends them again, once. Sources whose APIs
//! cannot resume (Mastodon, X) start live after a restart; the synthetic generator starts over.
//!
//! Publishing: record key = the post's author, or its id without one (all of an author's posts
//! land in one partition: the aggregator's distinct-author counts are exact), value =
//! the JSON, no timestamp of ours (the `tweets` topic is `LogAppendTime`: the broker's clock
//! is the ingest time). Any transaction error stops the service with an error (the restart
//! resumes from the committed position). The topics are created at start if missing
//! (`topics.partitions` partitions for `tweets`; one compacted partition for the offsets).
//!
//! Lifecycle ([`run`]): SIGTERM/Ctrl-C (or the end of the source: EOF, `limit` reached) stops
//! reading; what was sent is committed with the position; the number of published posts is
//! logged; `run` returns `Ok`. Progress is logged every 10 s. This file only wires source →
//! pipeline → publisher: it names no source (the registry in [`sources`] does).
//!
//! `main.rs` only hands [`run`] to the shared skeleton (`trends_common::service::run`: it loads
//! [`settings::Settings`], sets up logging and signals): everything is testable in-process.
//! Settings are documented in [`settings`].
//!
//! # Performance
//!
//! There are no benchmarks (no criterion): the producer is not the bottleneck of the pipeline
//! and its throughput is best measured end to end. Set `source.synthetic.rate = 0` and a
//! `limit`, and read the rate in the progress log line. For reference, 100,000 synthetic posts
//! into a local single-node broker on a 2-core machine (2026-12-03, the default 500 ms commit
//! interval, two runs each): 9,969 and 13,328 posts/s from a debug build, 21,820 and 33,694
//! from a release build; with a commit every 100 ms, 6,298 (debug) and 18,262 (release).
//! Sending pauses while a transaction commits (its flush and the broker's round trips), so a
//! shorter commit interval costs throughput and a longer one adds latency.

pub mod metrics;
pub mod pipeline;
pub mod publisher;
pub mod secret;
pub mod settings;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{
    MESSAGE_MAX_BYTES, TOPIC_MAX_MESSAGE_BYTES, TopicSpec, ensure_topics, topic_max_message_bytes,
};

use crate::metrics::Metrics;
use crate::pipeline::dedup::Dedup;
use crate::pipeline::filter::Filters;
use crate::pipeline::offsets;
use crate::pipeline::{Pipeline, PipelineOptions};
use crate::publisher::{Publisher, PublisherOptions};
use crate::settings::Settings;
use crate::sources::SourceContext;

/// At most this many records are sent and not yet delivered.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// How often progress is logged.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// Room for a record's framing in a batch, below a topic's `max.message.bytes`.
const RECORD_OVERHEAD_BYTES: usize = 512;

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Posts committed to Kafka.
    pub published: u64,
    /// Inputs that were not valid posts: bad file lines, malformed frames.
    pub skipped: u64,
}

/// Runs the producer until the source ends or `shutdown` is cancelled, then commits.
///
/// Returns `Ok` after a clean stop, with what was published. Fails if a topic cannot be
/// created, the metrics address cannot be bound, the stored position cannot be read, the
/// source fails (a file cannot be read), or any transaction call fails (then the open
/// transaction is aborted: nothing of it becomes visible).
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let metrics = Arc::new(Metrics::new(settings.source.kind.name()));
    run_with_metrics(settings, shutdown, metrics).await
}

/// [`run`] with metrics the caller can read (tests).
pub async fn run_with_metrics(
    settings: Settings,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Summary> {
    let addr = settings.producer.metrics_addr;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(trends_common::config_error::listen_error(
            "producer.metrics_addr",
            addr,
            &e
        ))
    })?;
    tracing::info!(
        addr = %listener.local_addr()?,
        setting = "producer.metrics_addr",
        "serving metrics on /metrics"
    );
    let stop_metrics = CancellationToken::new();
    let metrics_server = tokio::spawn(trends_common::metrics::serve(
        listener,
        metrics.registry(),
        stop_metrics.clone(),
    ));
    let result = publish(settings, shutdown, metrics).await;
    stop_metrics.cancel();
    let _ = metrics_server.await;
    result
}

/// The largest record sent: `source.max_post_bytes`, or less when the `tweets` topic accepts
/// less (a topic created by someone else with a lower `max.message.bytes`); and the batch size
/// that keeps batches within the topic's limit.
async fn record_limits(settings: &Settings, topic: &str) -> (usize, usize) {
    let configured = settings.source.max_post_bytes;
    let topic_limit = match topic_max_message_bytes(&settings.kafka, topic).await {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(topic, error = %format!("{e:#}"), "cannot read the topic's max.message.bytes; assuming the default");
            None
        }
    }
    .unwrap_or(TOPIC_MAX_MESSAGE_BYTES);
    let batch = MESSAGE_MAX_BYTES.min(topic_limit.saturating_sub(RECORD_OVERHEAD_BYTES / 2));
    let records = configured.min(batch.saturating_sub(RECORD_OVERHEAD_BYTES / 2));
    if records < configured {
        tracing::warn!(
            topic,
            topic_max_message_bytes = topic_limit,
            max_post_bytes = records,
            "the topic accepts smaller records than source.max_post_bytes; larger posts are skipped"
        );
    }
    (records, batch)
}

async fn publish(
    settings: Settings,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Summary> {
    let topic = settings.topics.tweets.as_str();
    let offsets_topic = settings.topics.source_offsets.as_str();
    let specs = [
        TopicSpec::tweets(topic, settings.topics.partitions),
        offsets::topic_spec(offsets_topic),
    ];
    // A broker that is down makes this wait; a SIGTERM meanwhile is still a clean stop.
    let Some(created) = shutdown
        .run_until_cancelled(ensure_topics(&settings.kafka, &specs))
        .await
    else {
        return Ok(stopped_early());
    };
    created.with_context(|| format!("cannot create topics {topic} (topics.tweets) and {offsets_topic} (topics.source_offsets)"))?;
    let (max_record_bytes, batch_bytes) = record_limits(&settings, topic).await;

    let source_key = settings.source_key();
    let transactional_id = settings.transactional_id();
    tracing::info!(transactional_id, "initializing the transactional producer");
    // Fences a predecessor with the same id and aborts its open transaction, so its last
    // committed position is final before it is read.
    let options = PublisherOptions {
        transactional_id,
        max_in_flight: MAX_IN_FLIGHT,
        batch_bytes,
    };
    let start = Publisher::start(&settings.kafka, topic, &options, Arc::clone(&metrics));
    let Some(publisher) = shutdown.run_until_cancelled(start).await else {
        return Ok(stopped_early());
    };
    let mut publisher = publisher?;
    let source = settings.source.selected();
    let start = if source.resumes() {
        let read = offsets::read_position(&settings.kafka, offsets_topic, &source_key);
        let Some(read) = shutdown.run_until_cancelled(read).await else {
            return Ok(stopped_early());
        };
        read.with_context(|| format!("cannot read the position of {source_key} from {offsets_topic} (topics.source_offsets)"))?
    } else {
        None
    };
    // The source stops on shutdown, or when the pipeline fails.
    let stop_source = shutdown.child_token();
    let (tx, mut rx) = tokio::sync::mpsc::channel(settings.source.buffer);
    let ctx = SourceContext::new(tx, Arc::clone(&metrics), stop_source.clone());
    let source_task = settings.source.start(start.as_ref(), ctx)?;
    source.log_start(topic, &source_key, start.as_ref());

    let stop_progress = CancellationToken::new();
    let progress = tokio::spawn(report_progress(
        Arc::clone(&metrics),
        stop_progress.clone(),
        PROGRESS_INTERVAL,
    ));

    let source_task = tokio::spawn(source_task);
    let mut pipeline = Pipeline::new(
        Dedup::new(settings.source.dedup_capacity),
        Filters::new(
            &settings.source.keyword_list(),
            &settings.source.language_list(),
        ),
        Arc::clone(&metrics),
        start,
        PipelineOptions {
            commit_interval: settings.producer.commit_interval,
            commit_max_posts: settings.producer.commit_max_posts,
            max_record_bytes,
            offsets_topic: offsets_topic.to_owned(),
            source_key,
        },
    );
    let published = pipeline.run(&mut rx, &mut publisher, &shutdown).await;
    stop_source.cancel();
    drop(rx);
    let source_result = source_task
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the source task panicked: {e}")));
    if published.is_err() {
        // Nothing of the open transaction becomes visible; the restart resumes from the last
        // committed position.
        if let Err(e) = publisher.abort().await {
            tracing::warn!(error = %format!("{e:#}"), "cannot abort the transaction (fenced?)");
        }
    }
    stop_progress.cancel();
    let _ = progress.await;
    published?;
    let skipped = source_result?;
    let summary = Summary {
        published: metrics.published.get(),
        skipped,
    };
    tracing::info!(
        published = summary.published,
        skipped = summary.skipped,
        transactions = metrics.transactions.get(),
        position = ?pipeline.committed(),
        "stopped: published {} posts",
        summary.published
    );
    Ok(summary)
}

/// What a run that stopped before publishing anything (a SIGTERM while the broker was not
/// reachable, say) returns, after saying so.
fn stopped_early() -> Summary {
    tracing::info!("stopped before publishing anything");
    Summary {
        published: 0,
        skipped: 0,
    }
}

/// Logs the published count and rate every `interval` until `stop`.
async fn report_progress(metrics: Arc<Metrics>, stop: CancellationToken, interval: Duration) {
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), 0u64);
    loop {
        if stop.run_until_cancelled(ticker.tick()).await.is_none() {
            return;
        }
        let now = Instant::now();
        let published = metrics.published.get();
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
        let rate = (published - last.1) as f64 / secs;
        tracing::info!(
            published,
            accepted = metrics.accepted.get(),
            transactions = metrics.transactions.get(),
            rate = (rate * 10.0).round() / 10.0,
            "published {published} posts ({rate:.1}/s)"
        );
        last = (now, published);
    }
}
