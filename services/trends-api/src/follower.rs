//! Follows the compacted counts topic and publishes ready-to-serve snapshots.
//!
//! The API has no state of its own: it assigns itself every partition of the counts topic from
//! the beginning (no consumer group, `read_committed`), feeds each record into a
//! [`TrendsView`], and at most every `api.snapshot_interval_ms` turns the view into a new
//! [`Snapshot`](trends_core::view::Snapshot) when something changed, wrapped as a
//! [`Prepared`] (bodies serialized on first use). Requests never recompute a ranking; they read
//! the latest one. Readiness flips to true once every partition has been read to its end once.
//!
//! A record that does not decode ([`CountsRecord::decode`] rejects it) is logged with its
//! partition and offset, counted in `trends_api_counts_records_skipped_total`, and skipped:
//! anyone who can write to the topic must not be able to stop or skew the API.
//!
//! The lag gauge comes from librdkafka's statistics (every [`STATS_INTERVAL_MS`]): per partition,
//! the last stable offset minus how far the follower has read, summed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Message, Offset, Statistics, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{ReaderContext, client_config, partition_count};
use trends_core::counts_record::CountsRecord;
use trends_core::view::TrendsView;

use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::settings::Settings;

/// How often librdkafka reports statistics (the lag gauge's refresh interval).
pub const STATS_INTERVAL_MS: u32 = 5000;

/// Logs like [`ReaderContext`] and turns statistics into the lag gauge.
struct FollowerContext {
    topic: String,
    metrics: Arc<Metrics>,
}

impl ClientContext for FollowerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        ReaderContext.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            let lag = counts_lag(topic.partitions.values().map(|p| PartitionOffsets {
                partition: p.partition,
                app_offset: p.app_offset,
                eof_offset: p.eof_offset,
                lo_offset: p.lo_offset,
                ls_offset: p.ls_offset,
            }));
            self.metrics.set_counts_lag(lag);
        }
    }
}

impl ConsumerContext for FollowerContext {}

/// The offsets of one partition in librdkafka's statistics (negative = unknown).
#[derive(Debug, Clone, Copy)]
pub struct PartitionOffsets {
    /// `-1` is librdkafka's internal "unassigned" pseudo-partition.
    pub partition: i32,
    /// After the last record handed to the follower.
    pub app_offset: i64,
    /// Where the follower last reached the end (past transaction markers).
    pub eof_offset: i64,
    /// The log start.
    pub lo_offset: i64,
    /// The last stable offset: the end for a `read_committed` reader.
    pub ls_offset: i64,
}

/// Records between the follower's position and the end, over all partitions. The position is
/// the further of the last record read and the last end reached: a committed transaction ends
/// with a control record the application never sees, so the last record read alone would
/// leave a lag of one per partition forever.
pub fn counts_lag(partitions: impl IntoIterator<Item = PartitionOffsets>) -> i64 {
    partitions
        .into_iter()
        .filter(|p| p.partition >= 0 && p.ls_offset >= 0)
        .map(|p| {
            let position = p.app_offset.max(p.eof_offset).max(p.lo_offset).max(0);
            (p.ls_offset - position).max(0)
        })
        .sum()
}

/// Reads the counts topic until `shutdown`; publishes snapshots into `snapshots`.
pub async fn follow(
    settings: Settings,
    snapshots: watch::Sender<Arc<Prepared>>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topic = settings.topics.counts.clone();
    let Some(partitions) = wait_for_topic(&settings, &shutdown).await? else {
        return Ok(());
    };
    let context = FollowerContext {
        topic: topic.clone(),
        metrics: metrics.clone(),
    };
    let consumer: StreamConsumer<FollowerContext> = client_config(&settings.kafka, "trends-api")
        .set("group.id", "trends-api-unused")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("statistics.interval.ms", STATS_INTERVAL_MS.to_string())
        .create_with_context(context)
        .context("create consumer")?;
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions {
        tpl.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    tracing::info!(topic, partitions, "following the counts topic");

    let mut view = TrendsView::new(settings.layout());
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut dirty = false;
    let mut records = 0u64;
    let mut tick = tokio::time::interval(settings.api.snapshot_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                let caught_up = at_end.len() == usize::try_from(partitions).unwrap_or(0);
                if dirty || (caught_up && !ready.load(Ordering::Acquire)) {
                    let prepared = Arc::new(Prepared::new(build_snapshot(&view)));
                    let _ = snapshots.send(prepared);
                    metrics.snapshot_published();
                    dirty = false;
                    if caught_up && !ready.swap(true, Ordering::AcqRel) {
                        tracing::info!(records, "caught up with the counts topic; ready");
                    }
                }
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    match CountsRecord::decode(message.key().unwrap_or_default(), message.payload()) {
                        Ok(record) => { view.apply(record); dirty = true; }
                        Err(e) => {
                            // Counts records are untrusted input: one that does not decode is
                            // logged, counted and skipped; the follower goes on.
                            metrics.counts_record_skipped();
                            tracing::warn!(partition = message.partition(), offset = message.offset(), error = %e, "skipping malformed counts record");
                        }
                    }
                    records += 1;
                }
                Err(KafkaError::PartitionEOF(partition)) => { at_end.insert(partition); }
                Err(e) => tracing::warn!(error = %e, "counts consumer error"),
            }
        }
    }
}

/// Sums and ranks the view. With 100,000 tags this takes a good fraction of a second, so on a
/// multi-threaded runtime the worker hands its other tasks (requests, streams) to the rest of
/// the pool for the duration instead of stalling them.
fn build_snapshot(view: &TrendsView) -> trends_core::view::Snapshot {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| view.snapshot())
        }
        _ => view.snapshot(),
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

    fn offsets(partition: i32, app: i64, eof: i64, lo: i64, ls: i64) -> PartitionOffsets {
        PartitionOffsets {
            partition,
            app_offset: app,
            eof_offset: eof,
            lo_offset: lo,
            ls_offset: ls,
        }
    }

    #[test]
    fn lag_is_the_distance_to_the_last_stable_offset() {
        let unknown = -1001;
        assert_eq!(
            counts_lag([
                // Nothing read yet, log starts at 0 (or compacted up to 40).
                offsets(0, unknown, unknown, 0, 100),
                offsets(1, unknown, unknown, 40, 100),
                // Read up to 90.
                offsets(2, 90, unknown, 0, 100),
                // At the end: the last record was 98, then a commit marker at 99.
                offsets(3, 99, 100, 0, 100),
                // librdkafka's pseudo-partition and an unknown end count nothing.
                offsets(-1, unknown, unknown, unknown, unknown),
                offsets(4, 5, unknown, 0, unknown),
            ]),
            100 + 60 + 10
        );
    }
}
