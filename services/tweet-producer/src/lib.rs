//! `tweet-producer`: the entrance of the hashtag-trends pipeline. It reads posts from a source
//! and publishes them, as JSON in the [`trends_core::post::RawPost`] contract, to the
//! raw-posts topic (`topics.tweets`).
//!
//! Why it exists: the aggregator and the API need traffic that looks like a social network's,
//! reproducibly, without a paid firehose. Two sources:
//!
//! - **synthetic** ([`generator`]): an endless, seeded stream of multilingual posts with
//!   Zipf-distributed hashtags and periodic bursts, at a fixed rate or as fast as possible;
//! - **file** ([`file_source`]): a JSON-lines file replayed as fast as possible or with its
//!   original timing.
//!
//! Publishing ([`publisher`]): one idempotent producer (`acks=all`, lz4, `linger.ms=5`), record
//! key = post id (so a post always lands in the same partition), value = the JSON, Kafka
//! timestamp = `created_at`. Deliveries are tracked with a bounded number in flight; a failed
//! delivery stops the service with an error. The topic is created at start if missing
//! (`topics.partitions` partitions).
//!
//! Lifecycle ([`run`]): SIGTERM/Ctrl-C (or the end of the source: EOF, `limit` reached) stops
//! reading; what was accepted is flushed; the number of published posts is logged; `run`
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

pub mod file_source;
pub mod generator;
pub mod lang;
pub mod pacing;
pub mod publisher;
pub mod rng;
pub mod settings;
pub mod vocabulary;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::io::BufReader;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{TopicSpec, ensure_topics};
use trends_core::EpochMillis;

use crate::file_source::{JsonLines, Line};
use crate::generator::{Generator, GeneratorConfig};
use crate::pacing::{Schedule, replay_gap};
use crate::publisher::{Publisher, Stats};
use crate::settings::{FileSettings, Pace, Settings, SourceKind, SyntheticSettings};

/// At most this many records are sent and not yet acknowledged.
pub const MAX_IN_FLIGHT: usize = 10_000;
/// How long the final flush may take before the service gives up with an error.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often progress is logged.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// A replayed file (`pace = "original"`) never waits longer than this between two posts.
pub const MAX_REPLAY_GAP: Duration = Duration::from_secs(5);
/// Posts generated between two checks for shutdown when there is no rate limit.
const UNPACED_BATCH: u64 = 512;

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Posts the broker acknowledged.
    pub published: u64,
    /// File lines that were not valid posts (always 0 for the synthetic source).
    pub skipped: u64,
}

/// Runs the producer until the source ends or `shutdown` is cancelled, then flushes.
///
/// Returns `Ok` after a clean stop, with what was published. Fails if the topic cannot be
/// created, the file cannot be read, a delivery fails, or the flush times out
/// ([`FLUSH_TIMEOUT`]).
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Summary> {
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

    let stats = Arc::new(Stats::default());
    let mut publisher = Publisher::new(&settings.kafka, topic, MAX_IN_FLIGHT, Arc::clone(&stats))?;
    let stop_progress = CancellationToken::new();
    let progress = tokio::spawn(report_progress(
        Arc::clone(&stats),
        stop_progress.clone(),
        PROGRESS_INTERVAL,
    ));
    match settings.source.kind {
        SourceKind::Synthetic => tracing::info!(
            topic,
            rate = settings.source.synthetic.rate,
            seed = settings.source.synthetic.seed,
            limit = settings.source.synthetic.limit,
            "publishing synthetic posts"
        ),
        SourceKind::File => tracing::info!(
            topic,
            path = %settings.source.file.path,
            pace = ?settings.source.file.pace,
            "publishing posts from a file"
        ),
    }

    let source = match settings.source.kind {
        SourceKind::Synthetic => {
            run_synthetic(&settings.source.synthetic, &mut publisher, &shutdown).await
        }
        SourceKind::File => run_file(&settings.source.file, &mut publisher, &shutdown).await,
    };
    // Flush what was accepted even when the source failed, so the failure loses no more than
    // it must; the source's error is the one reported.
    tracing::info!(
        in_flight = publisher.in_flight(),
        "source stopped, flushing"
    );
    let flushed = publisher.finish(FLUSH_TIMEOUT).await;
    stop_progress.cancel();
    let _ = progress.await;
    let skipped = source?;
    flushed?;
    let summary = Summary {
        published: stats.published(),
        skipped,
    };
    tracing::info!(
        published = summary.published,
        skipped = summary.skipped,
        "stopped: published {} posts",
        summary.published
    );
    Ok(summary)
}

/// The synthetic source: generates posts on a schedule (or as fast as possible) until the
/// limit or shutdown. Returns the number of skipped inputs (none).
async fn run_synthetic(
    settings: &SyntheticSettings,
    publisher: &mut Publisher,
    shutdown: &CancellationToken,
) -> anyhow::Result<u64> {
    let mut generator = Generator::new(GeneratorConfig {
        seed: settings.seed,
        vocabulary: settings.vocabulary,
        burst_every_ms: secs_to_ms(settings.burst_every_secs),
        burst_ms: secs_to_ms(settings.burst_secs),
    });
    let limit = if settings.limit == 0 {
        u64::MAX
    } else {
        settings.limit
    };
    let mut schedule = (settings.rate > 0.0).then(|| Schedule::new(settings.rate));
    let start = Instant::now();
    let mut generated = 0u64;
    'posts: while generated < limit {
        let due = match schedule.as_mut() {
            None => {
                if shutdown.is_cancelled() {
                    break;
                }
                // Let the runtime run other tasks (signal handling, progress) between batches.
                tokio::task::yield_now().await;
                UNPACED_BATCH
            }
            Some(schedule) => {
                // The deadline is fixed before waiting, so a stream of delivery reports
                // cannot keep pushing it back.
                let wake = start + schedule.next_wake(start.elapsed());
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break 'posts,
                        // Failures surface while idle too, not only at the next send.
                        Some(report) = publisher.next_delivery() => report?,
                        () = tokio::time::sleep_until(wake) => break schedule.take_due(start.elapsed()),
                    }
                }
            }
        };
        for _ in 0..due.min(limit - generated) {
            let post = generator.next_post(now_ms());
            let payload = serde_json::to_vec(&post.post).context("cannot serialize a post")?;
            let sent = tokio::select! {
                () = shutdown.cancelled() => false,
                sent = publisher.send(&post.post.id, &payload, post.event_time) => { sent?; true }
            };
            if !sent {
                return Ok(0);
            }
            generated += 1;
        }
    }
    Ok(0)
}

/// The file source: publishes every valid line until EOF or shutdown. Returns the number of
/// bad lines skipped.
async fn run_file(
    settings: &FileSettings,
    publisher: &mut Publisher,
    shutdown: &CancellationToken,
) -> anyhow::Result<u64> {
    let path = settings.path.as_str();
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {path:?} (source.file.path)"))?;
    let mut lines = JsonLines::new(BufReader::with_capacity(256 * 1024, file));
    let mut previous: Option<EpochMillis> = None;
    let mut skipped = 0u64;
    while !shutdown.is_cancelled() {
        let line = lines
            .next_line()
            .await
            .with_context(|| format!("cannot read {path:?} (source.file.path)"))?;
        let (bytes, parsed) = match line {
            None => {
                tracing::info!(path, skipped, "end of file");
                break;
            }
            Some(Line::Blank { .. }) => continue,
            Some(Line::Bad { number, error }) => {
                skipped += 1;
                tracing::warn!(path, line = number, error = %error, "skipping a line that is not a valid post");
                continue;
            }
            Some(Line::Post { bytes, parsed, .. }) => (bytes, parsed),
        };
        if settings.pace == Pace::Original {
            let gap = replay_gap(previous, parsed.event_time, MAX_REPLAY_GAP);
            previous = Some(parsed.event_time);
            if !gap.is_zero() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(gap) => {}
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            sent = publisher.send(&parsed.post.id, &bytes, parsed.event_time) => sent?,
        }
    }
    Ok(skipped)
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

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Wall-clock now in epoch milliseconds: the `created_at` of generated posts.
fn now_ms() -> EpochMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
