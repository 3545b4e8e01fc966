//! The source abstraction: where posts come from, and how they reach the publisher.
//!
//! Why this shape: every source (the synthetic generator, a replayed file, a live stream)
//! produces [`SourceEvent`]s in the raw post contract into one **bounded** channel
//! ([`SourceContext::emit`]); the publisher ([`crate::pipeline`]) on the other end deduplicates,
//! filters and publishes them. When Kafka slows down, the channel fills and `emit` waits, so a
//! fast source is slowed down instead of buffering without limit. A source knows nothing
//! about Kafka, and the resilience pieces (dedup, filters, metrics, resume positions) are
//! written once for all sources.
//!
//! A source runs until it ends (the synthetic `limit`, the end of a file), the shutdown token
//! is cancelled, or it fails (a file that cannot be read). Live sources never end by
//! themselves: they reconnect with back-off ([`crate::bluesky`], [`crate::mastodon`],
//! [`crate::x`]) and stop early only when retrying cannot help (a token the server refuses).
//!
//! Adding a source: a variant of [`Source`] and a module with an `async fn run(…, ctx)`.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::{AsyncSeekExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_core::EpochMillis;
use trends_core::post::RawPost;

use crate::bluesky::{self, BlueskyConfig};
use crate::file_source::{JsonLines, Line};
use crate::generator::{Generator, GeneratorConfig};
use crate::mastodon::{self, MastodonConfig};
use crate::metrics::{Metrics, inc};
use crate::pacing::{Schedule, replay_gap};
use crate::position::{Mark, Position};
use crate::settings::{FileSettings, Pace, Settings, SourceKind, SyntheticSettings};
use crate::x::{self, XConfig};
use crate::{MAX_REPLAY_GAP, now_ms};

/// Posts generated between two checks for shutdown when there is no rate limit.
const UNPACED_BATCH: u64 = 512;

/// What a source hands to the publisher.
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

/// What a running source is given: the channel, the metrics, the shutdown token.
#[derive(Debug, Clone)]
pub struct SourceContext {
    tx: mpsc::Sender<SourceEvent>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
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
        }
    }

    /// Hands an event to the publisher, waiting while the channel is full (back-pressure).
    /// `false` when the source must stop: shutdown, or the publisher is gone.
    pub async fn emit(&self, event: SourceEvent) -> bool {
        if matches!(event, SourceEvent::Post(_)) {
            inc(&self.metrics.received);
        }
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => false,
            sent = self.tx.send(event) => sent.is_ok(),
        }
    }
}

/// A configured source.
#[derive(Debug, Clone)]
pub enum Source {
    Synthetic(SyntheticSettings),
    File(FileConfig),
    Bluesky(BlueskyConfig),
    Mastodon(Box<MastodonConfig>),
    X(Box<XConfig>),
}

impl Source {
    /// The source `settings.source.kind` names; `start` is the resume position read from the
    /// offsets topic (`bluesky`, `file`). A position of another kind than the source's is an
    /// error.
    pub fn from_settings(settings: &Settings, start: Option<&Position>) -> anyhow::Result<Source> {
        let source = &settings.source;
        let mismatch = || {
            anyhow::anyhow!(
                "the stored position {start:?} is not one of a {} source",
                source.kind.name()
            )
        };
        Ok(match source.kind {
            SourceKind::Synthetic => Source::Synthetic(source.synthetic.clone()),
            SourceKind::File => {
                let start = match start {
                    None => None,
                    Some(Position::File { offset, line }) => Some((*offset, *line)),
                    Some(_) => return Err(mismatch()),
                };
                Source::File(FileConfig {
                    settings: source.file.clone(),
                    max_line_bytes: source.max_post_bytes,
                    start,
                })
            }
            SourceKind::Bluesky => {
                let cursor = match start {
                    None => None,
                    Some(Position::Jetstream { cursor, .. }) => Some(*cursor),
                    Some(_) => return Err(mismatch()),
                };
                Source::Bluesky(BlueskyConfig::from_settings(source, cursor))
            }
            SourceKind::Mastodon => {
                Source::Mastodon(Box::new(MastodonConfig::from_settings(source)?))
            }
            SourceKind::X => Source::X(Box::new(XConfig::from_settings(source)?)),
        })
    }

    /// Runs the source until it ends, shutdown, or an error. Returns the number of malformed
    /// inputs skipped.
    pub async fn run(self, ctx: SourceContext) -> anyhow::Result<u64> {
        match self {
            Source::Synthetic(settings) => run_synthetic(&settings, &ctx).await,
            Source::File(config) => run_file(&config, &ctx).await,
            Source::Bluesky(config) => bluesky::run(&config, &ctx).await,
            Source::Mastodon(config) => mastodon::run(&config, &ctx).await,
            Source::X(config) => x::run(&config, &ctx).await,
        }
    }
}

/// The synthetic source: generates posts on a schedule (or as fast as the publisher takes
/// them) until the limit or shutdown.
async fn run_synthetic(settings: &SyntheticSettings, ctx: &SourceContext) -> anyhow::Result<u64> {
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
    while generated < limit {
        let due = match schedule.as_mut() {
            None => UNPACED_BATCH,
            Some(schedule) => {
                // The deadline is fixed before waiting.
                let wake = start + schedule.next_wake(start.elapsed());
                tokio::select! {
                    () = ctx.shutdown.cancelled() => return Ok(0),
                    () = tokio::time::sleep_until(wake) => schedule.take_due(start.elapsed()),
                }
            }
        };
        for _ in 0..due.min(limit - generated) {
            let generated_post = generator.next_post(now_ms());
            let event = SourceEvent::Post(Box::new(SourcePost {
                post: generated_post.post,
                event_time: generated_post.event_time,
                payload: None,
                position: None,
            }));
            if !ctx.emit(event).await {
                return Ok(0);
            }
            generated += 1;
        }
    }
    Ok(0)
}

/// A file source: its settings, the line limit, and where to resume (byte offset, line number).
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub settings: FileSettings,
    pub max_line_bytes: usize,
    pub start: Option<(u64, u64)>,
}

/// The file source: every valid line until EOF or shutdown, from the resume position if there
/// is one; bad lines (and lines over the limit) are skipped, logged with their number and
/// counted as malformed. Every line moves the position, so a restart re-reads none of them.
async fn run_file(config: &FileConfig, ctx: &SourceContext) -> anyhow::Result<u64> {
    let settings = &config.settings;
    let path = settings.path.as_str();
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {path:?} (source.file.path)"))?;
    let (offset, line) = config.start.unwrap_or((0, 1));
    if offset > 0 {
        let length = file
            .metadata()
            .await
            .with_context(|| format!("cannot read {path:?} (source.file.path)"))?
            .len();
        if length < offset {
            anyhow::bail!(
                "{path:?} has {length} bytes, fewer than the position committed for it (byte {offset}, line {line}): the file was replaced or truncated; replay it under another path, or reset its position in the offsets topic"
            );
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .with_context(|| format!("cannot seek in {path:?} (source.file.path)"))?;
        tracing::info!(
            path,
            offset,
            line,
            "resuming the file where the last run committed"
        );
    }
    let mut lines = JsonLines::resuming(
        BufReader::with_capacity(256 * 1024, file),
        config.max_line_bytes,
        offset,
        line,
    );
    let mut previous: Option<EpochMillis> = None;
    let mut skipped = 0u64;
    while !ctx.shutdown.is_cancelled() {
        let line = lines
            .next_line()
            .await
            .with_context(|| format!("cannot read {path:?} (source.file.path)"))?;
        let Some(line) = line else {
            tracing::info!(path, skipped, "end of file");
            break;
        };
        let mark = Mark::FileLine {
            next_offset: lines.offset(),
            number: line.number(),
        };
        let (bytes, parsed) = match line {
            Line::Blank { .. } => {
                if !ctx.emit(SourceEvent::Position(mark)).await {
                    break;
                }
                continue;
            }
            Line::Bad { number, error } => {
                skipped += 1;
                inc(&ctx.metrics.malformed);
                tracing::warn!(path, line = number, error = %error, "skipping a line that is not a valid post");
                if !ctx.emit(SourceEvent::Position(mark)).await {
                    break;
                }
                continue;
            }
            Line::TooLong { number, length } => {
                skipped += 1;
                inc(&ctx.metrics.malformed);
                tracing::warn!(
                    path,
                    line = number,
                    bytes = length,
                    limit = config.max_line_bytes,
                    "skipping a line over the size limit (source.max_post_bytes)"
                );
                if !ctx.emit(SourceEvent::Position(mark)).await {
                    break;
                }
                continue;
            }
            Line::Post { bytes, parsed, .. } => (bytes, parsed),
        };
        if settings.pace == Pace::Original {
            let gap = replay_gap(previous, parsed.event_time, MAX_REPLAY_GAP);
            previous = Some(parsed.event_time);
            if !gap.is_zero() {
                tokio::select! {
                    () = ctx.shutdown.cancelled() => break,
                    () = tokio::time::sleep(gap) => {}
                }
            }
        }
        let event = SourceEvent::Post(Box::new(SourcePost {
            post: parsed.post,
            event_time: parsed.event_time,
            payload: Some(bytes),
            position: Some(mark),
        }));
        if !ctx.emit(event).await {
            break;
        }
    }
    Ok(skipped)
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
