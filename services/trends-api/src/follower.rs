//! Follows the compacted counts topic and publishes ready-to-serve snapshots.
//!
//! The API has no state of its own: it assigns itself every partition of the counts topic from
//! the beginning (no consumer group, `read_committed`), feeds each record into a
//! [`TrendsView`] (which keeps every window's totals incrementally), and at most every
//! `api.snapshot_interval_ms`, when something changed, takes a [`Frame`](trends_core::view::Frame)
//! of it (shared copy-on-write chunks: cheap) and has a [`Ranker`] rank it into a new
//! [`Snapshot`] on the blocking pool, wrapped as a [`Prepared`] (bodies serialized on first
//! use). The loop keeps reading records while a snapshot is ranked, so ranking never holds up
//! consumption; one build runs at a time. Requests never recompute a ranking; they read the
//! latest one.
//!
//! **Honest catch-up.** Until every partition has been read to its end once, the follower
//! publishes nothing: the server keeps [`Prepared::loading`] and the data endpoints answer 503
//! `not_ready` (a sum over partitions read partly was never true at any moment). Once caught
//! up it is ready (`/readyz` 200) and publishes. Readiness is lost again while the follower
//! lags more than `api.max_ready_lag_records` behind the end of the topic (a burst it cannot
//! keep up with, a stalled broker): `/readyz` answers 503 so a load balancer can send clients
//! elsewhere, and the follower stops publishing, so the data endpoints keep serving the **last
//! complete snapshot** (its `watermark` says how old it is) rather than one mixing partitions
//! read up to different points. Once the lag is back under the threshold it publishes again.
//!
//! **The lag** (also the gauge `trends_api_counts_lag_records`) is the sum over partitions of
//! the end of the partition (its high watermark, asked of the broker every
//! [`LAG_PROBE_INTERVAL`] by a separate task, so a busy or held follower is still measured)
//! minus the follower's position (after the last record it read, or, at the end of a
//! partition, the consumer's own position, which is past the commit marker that ends each of the
//! aggregator's transactions). While counts flow it can over-count by the records of
//! transactions still open and by one commit marker per partition, both small against the
//! threshold; once they stop it is 0.
//!
//! **Partitions added to the counts topic** (the aggregator adds them when `tweets` grows, to
//! stay co-partitioned) are noticed without a restart: a task asks for the topic's partition
//! count every [`PARTITION_CHECK_INTERVAL`], and the follower assigns each new partition from
//! its beginning and measures its lag like the others (while a large one is read, readiness
//! follows the lag as always).
//!
//! A record that does not decode ([`CountsRecord::decode`] rejects it) is logged with its
//! partition and offset, counted in `trends_api_counts_records_skipped_total`, and skipped:
//! anyone who can write to the topic must not be able to stop or skew the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::FutureExt as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{ReaderContext, client_config, partition_count};
use trends_common::memory::release_free_memory;
use trends_common::trace_context::{self, Links};
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::trend::{Transition, TrendBoard, TrendSnapshot};
use trends_core::view::{Ranker, Snapshot, TrendsView};

use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::settings::Settings;

/// How often the end of every counts partition is asked of the broker (for the lag).
pub const LAG_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one partition's end may take to answer before that probe is skipped.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the follower asks whether the counts topic has more partitions.
pub const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// After this many counts records applied (a catch-up, a burst), and once when caught up, the
/// freed heap goes back to the operating system (`trends_common::memory`): a walk of the free
/// lists, a few milliseconds on the blocking pool, so not at every tick.
const RELEASE_MEMORY_AFTER_RECORDS: u64 = 1_000_000;

/// Once the counts go quiet for a tick after at least this many records, the same.
const RELEASE_MEMORY_WHEN_QUIET: u64 = 10_000;

pub use crate::prepared::BlockedFn;
/// Given the tags that started or stopped trending (all languages) at each build.
pub type TransitionsFn = Arc<dyn Fn(Vec<Transition>) + Send + Sync>;

/// What the trend board asks of the rest of the API: moderation and webhooks.
#[derive(Clone, Default)]
pub struct TrendHooks {
    /// `None`: nothing is blocked.
    pub blocked: Option<BlockedFn>,
    /// `None`: nobody listens.
    pub transitions: Option<TransitionsFn>,
    /// Changes when the blocklist does: the next tick builds a snapshot even if no count
    /// changed, so a tag blocked when the counts are quiet leaves the lists at once.
    pub blocklist_changed: Option<watch::Receiver<Arc<crate::moderation::Blocklist>>>,
}

impl std::fmt::Debug for TrendHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrendHooks")
            .field("blocked", &self.blocked.is_some())
            .field("transitions", &self.transitions.is_some())
            .field("blocklist_changed", &self.blocklist_changed.is_some())
            .finish()
    }
}

/// Records taken in one go once the consumer has woken the follower (see `follow`).
const DRAIN_BATCH: usize = 1024;

/// A hook for tests: while held, the follower reads no record (it still measures its lag and
/// decides readiness), as a follower that cannot keep up would. Production never holds it.
#[derive(Debug, Clone)]
pub struct Hold(Arc<HoldInner>);

#[derive(Debug)]
struct HoldInner {
    /// What the test asks for.
    requested: watch::Sender<bool>,
    /// What the follower's loop last acted on.
    acknowledged: watch::Sender<bool>,
}

impl Default for Hold {
    /// A hold nobody engaged.
    fn default() -> Self {
        Hold::new(false)
    }
}

impl Hold {
    fn new(held: bool) -> Self {
        Hold(Arc::new(HoldInner {
            requested: watch::Sender::new(held),
            acknowledged: watch::Sender::new(false),
        }))
    }

    /// A hold engaged from the start: the follower reads nothing until [`Hold::release`].
    pub fn engaged() -> Self {
        Hold::new(true)
    }

    /// Engages the hold and returns once the follower reads no more: every record it read
    /// was read before this returned.
    pub async fn engage(&self) {
        self.0.requested.send_replace(true);
        let mut acknowledged = self.0.acknowledged.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = acknowledged.wait_for(|&held| held).await;
    }

    pub fn release(&self) {
        self.0.requested.send_replace(false);
    }
}

/// Records between the follower's positions and the partitions' ends (unknown ends, negative,
/// count nothing).
pub fn lag(ends: &[AtomicI64], positions: &[i64]) -> i64 {
    ends.iter()
        .zip(positions)
        .map(|(end, &position)| end.load(Ordering::Relaxed).saturating_sub(position).max(0))
        .fold(0, i64::saturating_add)
}

/// Whether the API may serve: caught up once, and not lagging past the threshold since.
pub fn is_ready(caught_up_once: bool, lag: i64, max_lag: i64) -> bool {
    caught_up_once && lag <= max_lag
}

/// Reads the counts topic until `shutdown`; publishes snapshots into `snapshots`.
pub async fn follow(
    settings: Settings,
    snapshots: watch::Sender<Arc<Prepared>>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    hold: Hold,
    mut hooks: TrendHooks,
) -> anyhow::Result<()> {
    let topic = settings.topics.counts.clone();
    metrics.follow_counts_topic(&topic);
    let Some(partitions) = wait_for_topic(&settings, &shutdown).await? else {
        return Ok(());
    };
    let consumer: Arc<StreamConsumer<ReaderContext>> = Arc::new(
        client_config(&settings.kafka, "trends-api")
            .set("group.id", "trends-api-unused")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // An assigned offset out of range (a partition emptied) restarts from its beginning.
            .set("auto.offset.reset", "earliest")
            .create_with_context(ReaderContext)
            .context("create consumer")?,
    );
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    tracing::info!(topic, partitions, "following the counts topic");

    let mut count = usize::try_from(partitions).unwrap_or(0);
    let mut ends: Arc<[AtomicI64]> = (0..count).map(|_| AtomicI64::new(-1)).collect();
    let mut _stop_probe = start_probe(&consumer, &topic, &ends, &shutdown);
    let (partition_count_tx, mut partition_count_rx) = watch::channel(partitions);
    let watch_token = shutdown.child_token();
    let _stop_watch = watch_token.clone().drop_guard();
    tokio::spawn(watch_partitions(
        settings.kafka.clone(),
        topic.clone(),
        partition_count_tx,
        watch_token,
    ));

    let max_lag = i64::try_from(settings.api.max_ready_lag_records).unwrap_or(i64::MAX);
    let mut view = TrendsView::new(settings.layout());
    let mut board = TrendBoard::new(settings.layout(), settings.trends.params());
    let mut ranker = Some(Ranker::default());
    type Built = (Ranker, Snapshot, Arc<TrendSnapshot>);
    let mut building: Option<tokio::task::JoinHandle<Built>> = None;
    // Kafka timestamp (ms) of the newest counts record applied, and of the one in the build
    // running: the served snapshot's, once published (`trends_api_counts_age_seconds`).
    let (mut newest_ms, mut building_ms) = (-1i64, -1i64);
    // Per partition: the offset after the last record read (or the end last reached).
    let mut positions = vec![0i64; count];
    let mut at_end = vec![false; count];
    let mut caught_up_once = false;
    let mut dirty = false;
    let mut records = 0u64;
    let mut records_at_release = 0u64;
    let mut records_at_tick = 0u64;
    let mut released_after_catch_up = false;
    let mut tick = tokio::time::interval(settings.api.snapshot_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requested = hold.0.requested.subscribe();
    loop {
        let held = *requested.borrow_and_update();
        hold.0.acknowledged.send_replace(held);
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            // A change of the hold ends a pending `recv` (cancel-safe: no record is lost).
            Ok(()) = requested.changed() => {}
            changed = async {
                match hooks.blocklist_changed.as_mut() {
                    Some(blocklist) => blocklist.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if changed {
                    dirty = true;
                } else {
                    // The blocklist follower ended (its task reports why): stop listening.
                    hooks.blocklist_changed = None;
                }
            }
            Ok(()) = partition_count_rx.changed() => {
                let now = usize::try_from(*partition_count_rx.borrow_and_update()).unwrap_or(0);
                if now > count {
                    // New partitions: assigned from their beginning, measured like the others.
                    let mut added = TopicPartitionList::new();
                    for partition in count..now {
                        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                        added.add_partition_offset(&topic, partition, Offset::Beginning)?;
                    }
                    consumer.incremental_assign(&added).context("assign new partitions")?;
                    tracing::info!(topic, from = count, to = now, "the counts topic has new partitions; following them");
                    ends = ends
                        .iter()
                        .map(|e| AtomicI64::new(e.load(Ordering::Relaxed)))
                        .chain((count..now).map(|_| AtomicI64::new(-1)))
                        .collect();
                    _stop_probe = start_probe(&consumer, &topic, &ends, &shutdown);
                    positions.resize(now, 0);
                    at_end.resize(now, false);
                    count = now;
                }
            }
            _ = tick.tick() => {
                if !caught_up_once && at_end.iter().all(|&e| e) {
                    caught_up_once = true;
                    tracing::info!(records, "caught up with the counts topic");
                }
                // After a burst: when one is large, and when the counts go quiet (nothing new
                // since the last tick) after any, and once caught up.
                let since_release = records.saturating_sub(records_at_release);
                let quiet = records == records_at_tick;
                records_at_tick = records;
                if since_release >= RELEASE_MEMORY_AFTER_RECORDS
                    || (quiet && since_release >= RELEASE_MEMORY_WHEN_QUIET)
                    || (caught_up_once && !released_after_catch_up)
                {
                    // A catch-up or a burst of counts is behind: its batches, the consumer's
                    // prefetched copies and the view's outgrown tables are freed; hand their
                    // pages back (trends_common::memory), or resident memory stays at the
                    // burst's peak for good.
                    released_after_catch_up |= caught_up_once;
                    records_at_release = records;
                    tokio::task::spawn_blocking(release_free_memory);
                }
                let lag = lag(&ends, &positions);
                metrics.set_counts_lag(lag);
                let eligible = is_ready(caught_up_once, lag, max_lag);
                let was_ready = ready.load(Ordering::Acquire);
                if !eligible && was_ready {
                    ready.store(false, Ordering::Release);
                    tracing::warn!(lag, max_lag, "lagging behind the counts topic; not ready, serving the last complete snapshot");
                }
                // Not ready: nothing is built, so the last complete snapshot stays served. A
                // build runs on the blocking pool while this loop goes on reading; the next
                // one starts once it is done (the ranker is back).
                // The trend board's per-language lists are remade about once a second while
                // counts flow, and candidates wait for confirmation; once counts stop, one more
                // build brings the lists up to date and shows the candidates.
                if eligible && (dirty || !was_ready || board.lists_stale() || board.has_pending()) {
                    if let Some(mut idle) = ranker.take() {
                        let frame = view.frame();
                        // Trends of the same moment (a pass over the tags with support: small).
                        let blocked = |tag: &str| hooks.blocked.as_ref().is_some_and(|b| b.is_blocked(tag));
                        let (trends, transitions) = board.build(&blocked);
                        if let Some(notify) = &hooks.transitions && !transitions.is_empty() {
                            notify(transitions);
                        }
                        let trends = Arc::new(trends);
                        dirty = false;
                        building_ms = newest_ms;
                        building = Some(tokio::task::spawn_blocking(move || {
                            let snapshot = idle.build(frame);
                            (idle, snapshot, trends)
                        }));
                    }
                }
            }
            built = async {
                match building.as_mut() {
                    Some(build) => build.await,
                    None => std::future::pending().await,
                }
            } => {
                building = None;
                let (idle, snapshot, trends) = built.context("ranking a snapshot")?;
                ranker = Some(idle);
                let _ = snapshots.send(Arc::new(Prepared::with_trends(snapshot, trends, hooks.blocked.clone())));
                metrics.snapshot_published();
                metrics.set_served_counts_time(building_ms);
                // Ready only once a complete snapshot is served.
                let lag = lag(&ends, &positions);
                if is_ready(caught_up_once, lag, max_lag) && !ready.swap(true, Ordering::AcqRel) {
                    tracing::info!(records, lag, "ready");
                }
            }
            received = consumer.recv(), if !held => {
                // The first record woke the loop; the ones already fetched behind it are taken
                // without going round the select (its futures cost more than a record's apply
                // during a catch-up), up to DRAIN_BATCH, so a tick or a hold waits little.
                let mut next = Some(received);
                let mut taken = 0;
                let batch_started = std::time::Instant::now();
                // With tracing on: this batch's span, made at its first record that carries a
                // sampled transaction's context, linking to every such transaction.
                let mut batch_trace: Option<(tracing::Span, Links)> = None;
                while let Some(received) = next.take() {
                    taken += 1;
                    match received {
                        Ok(message) => {
                            if trace_context::enabled()
                                && let Some(context) = trace_context::sampled_context(message.headers())
                            {
                                batch_trace
                                    .get_or_insert_with(|| (batch_span(&topic), Links::default()))
                                    .1
                                    .add(context);
                            }
                            if let Some(position) = usize::try_from(message.partition()).ok().and_then(|p| positions.get_mut(p)) {
                                *position = message.offset().saturating_add(1);
                            }
                            match CountsRecord::decode(message.key().unwrap_or_default(), message.payload()) {
                                Ok(record) => {
                                    if matches!(record.key, CountsKey::Language { .. } | CountsKey::Watermark { .. }) {
                                        board.apply(&record);
                                    }
                                    view.apply(record);
                                    dirty = true;
                                }
                                Err(e) => {
                                    // Counts records are untrusted input: one that does not
                                    // decode is logged, counted and skipped; the follower goes on.
                                    metrics.counts_record_skipped();
                                    tracing::warn!(partition = message.partition(), offset = message.offset(), error = %e, "skipping malformed counts record");
                                }
                            }
                            records += 1;
                            metrics.counts_records_consumed(1);
                            if let Some(ms) = message.timestamp().to_millis() {
                                newest_ms = newest_ms.max(ms);
                            }
                        }
                        Err(KafkaError::PartitionEOF(partition)) => {
                            // The consumer's own position: past the commit marker that ends each
                            // of the aggregator's transactions, a record never delivered.
                            // Without it the lag would stay at one a partition once the counts
                            // stop (a probe of the end taken before the marker was written).
                            let reached = consumer_position(&consumer, &topic, partition);
                            if let Ok(p) = usize::try_from(partition) {
                                if let (Some(done), Some(position), Some(end)) = (at_end.get_mut(p), positions.get_mut(p), ends.get(p)) {
                                    *done = true;
                                    // At the end: at least as far as the end last probed.
                                    *position = (*position).max(end.load(Ordering::Relaxed)).max(reached.unwrap_or(0));
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "counts consumer error"),
                    }
                    if taken < DRAIN_BATCH {
                        next = consumer.recv().now_or_never();
                    }
                }
                metrics.counts_batch_applied(batch_started.elapsed());
                if let Some((span, mut links)) = batch_trace {
                    links.attach_to(&span);
                    span.record("messaging.batch.message_count", taken);
                    // Started (with the links, so the sampler sees them) and ended here.
                    drop(span.enter());
                }
            }
        }
    }
}

/// The span of one applied batch of counts records (kind consumer; OpenTelemetry's messaging
/// conventions for batch processing): it links to the aggregator transactions whose records
/// it applied (trends_common::trace_context).
fn batch_span(topic: &str) -> tracing::Span {
    tracing::info_span!(
        "process counts",
        otel.name = %format_args!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %topic,
        messaging.batch.message_count = tracing::field::Empty,
    )
}

/// The consumer's position in `partition` of `topic` (the offset after the last record or
/// control record it read; local, no request), if it has one.
fn consumer_position(
    consumer: &StreamConsumer<ReaderContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// Starts [`probe_ends`] for `ends`; it stops when the guard drops (or on shutdown).
fn start_probe(
    consumer: &Arc<StreamConsumer<ReaderContext>>,
    topic: &str,
    ends: &Arc<[AtomicI64]>,
    shutdown: &CancellationToken,
) -> tokio_util::sync::DropGuard {
    let token = shutdown.child_token();
    tokio::spawn(probe_ends(
        consumer.clone(),
        topic.to_owned(),
        ends.clone(),
        token.clone(),
    ));
    token.drop_guard()
}

/// Every [`PARTITION_CHECK_INTERVAL`] until `stop`, asks for the topic's partition count and
/// publishes it when it grew (a shrinking count is impossible in Kafka; a failed request is
/// tried again at the next interval).
async fn watch_partitions(
    kafka: trends_common::settings::KafkaSettings,
    topic: String,
    count: watch::Sender<i32>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(PARTITION_CHECK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(every.tick()).await.is_some() {
        let (kafka, name) = (kafka.clone(), topic.clone());
        let asked =
            tokio::task::spawn_blocking(move || partition_count(&kafka, &name, PROBE_TIMEOUT));
        match stop.run_until_cancelled(asked).await {
            None => return,
            Some(Ok(Ok(Some(n)))) if n > *count.borrow() => {
                count.send_replace(n);
            }
            Some(Ok(Err(e))) => tracing::debug!(error = %e, "cannot check the partition count"),
            Some(_) => {}
        }
    }
}

/// Every [`LAG_PROBE_INTERVAL`] until `stop`, asks the broker for the end (high watermark) of
/// every partition, on the blocking pool (the call blocks).
async fn probe_ends(
    consumer: Arc<StreamConsumer<ReaderContext>>,
    topic: String,
    ends: Arc<[AtomicI64]>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(LAG_PROBE_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(every.tick()).await.is_some() {
        let (consumer, topic, ends) = (consumer.clone(), topic.clone(), ends.clone());
        let probed = tokio::task::spawn_blocking(move || {
            for (partition, end) in (0i32..).zip(ends.iter()) {
                match consumer.fetch_watermarks(&topic, partition, PROBE_TIMEOUT) {
                    Ok((_, high)) => end.store(high, Ordering::Relaxed),
                    Err(e) => tracing::debug!(partition, error = %e, "cannot probe the end"),
                }
            }
        });
        if stop.run_until_cancelled(probed).await.is_none() {
            return;
        }
    }
}

/// Waits until the counts topic exists (the aggregator creates it) and returns its partition
/// count, or `None` on shutdown.
async fn wait_for_topic(
    settings: &Settings,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<i32>> {
    let mut logged = false;
    loop {
        let kafka = settings.kafka.clone();
        let topic = settings.topics.counts.clone();
        let found = tokio::task::spawn_blocking(move || {
            partition_count(&kafka, &topic, Duration::from_secs(5))
        })
        .await?;
        match found {
            Ok(Some(n)) => return Ok(Some(n)),
            Ok(None) if !logged => {
                tracing::info!(
                    topic = settings.topics.counts,
                    "waiting for the counts topic to be created"
                );
                logged = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot fetch metadata yet"),
        }
        if shutdown
            .run_until_cancelled(tokio::time::sleep(Duration::from_millis(500)))
            .await
            .is_none()
        {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_distance_to_the_ends_and_readiness_follows_it() {
        let ends: Vec<AtomicI64> = [100, 100, 100, -1]
            .into_iter()
            .map(AtomicI64::new)
            .collect();
        // Nothing read; read up to 90; past the end (a commit marker not yet probed); unknown.
        assert_eq!(lag(&ends, &[0, 90, 120, 5]), 100 + 10);
        assert!(!is_ready(false, 0, 10));
        assert!(is_ready(true, 10, 10));
        assert!(!is_ready(true, 11, 10));
    }
}
