//! Follows the compacted counts topic and publishes ready-to-serve snapshots.
//!
//! The API has no state of its own: it assigns itself every partition of the counts topic from
//! the beginning (no consumer group, `read_committed`), feeds each record into a
//! [`TrendsView`], and at most every `api.snapshot_interval_ms` turns the view into a new
//! [`Snapshot`] when something changed. Requests never compute anything; they read the latest
//! snapshot. Readiness flips to true once every partition has been read to its end once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{ReaderContext, client_config, partition_count};
use trends_core::counts_record::CountsRecord;
use trends_core::view::{Snapshot, TrendsView};

use crate::settings::Settings;

/// Reads the counts topic until `shutdown`; publishes snapshots into `snapshots`.
pub async fn follow(
    settings: Settings,
    snapshots: watch::Sender<Arc<Snapshot>>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topic = settings.topics.counts.clone();
    let Some(partitions) = wait_for_topic(&settings, &shutdown).await? else {
        return Ok(());
    };
    let consumer: StreamConsumer<ReaderContext> = client_config(&settings.kafka, "trends-api")
        .set("group.id", "trends-api-unused")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(ReaderContext)
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
    let mut tick = tokio::time::interval(Duration::from_millis(settings.api.snapshot_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                let caught_up = at_end.len() == usize::try_from(partitions).unwrap_or(0);
                if dirty || (caught_up && !ready.load(Ordering::Acquire)) {
                    let _ = snapshots.send(Arc::new(view.snapshot()));
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
                        Err(e) => tracing::warn!(partition = message.partition(), offset = message.offset(), error = %e, "skipping malformed counts record"),
                    }
                    records += 1;
                }
                Err(KafkaError::PartitionEOF(partition)) => { at_end.insert(partition); }
                Err(e) => tracing::warn!(error = %e, "counts consumer error"),
            }
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
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
