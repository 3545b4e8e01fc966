//! Rebuilding one partition's counting state from the counts topic.
//!
//! The counts topic is read like any input: a record that does not decode (see
//! [`CountsRecord::decode`]: garbage, or values the aggregator never writes) is logged with its
//! offset, counted, and skipped; it never stops the restore.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use trends_common::kafka::{ReaderContext, client_config, is_transient};
use trends_core::counter::PartitionCounter;
use trends_core::counts_record::CountsKey;
use trends_core::counts_record::CountsRecord;
use trends_core::trend_track::TrendTrack;

use crate::settings::Settings;

/// A restored partition.
#[derive(Debug)]
pub struct Restored {
    pub counter: PartitionCounter,
    /// The partition's trend track (its author counts; the dedup table starts empty).
    pub trends: TrendTrack,
    /// Records skipped because they did not decode.
    pub skipped: u64,
    /// Whether the partition had state: a checkpoint or a watermark record.
    pub had_state: bool,
}

/// The counts partition holds no state while the consumer group has committed offsets for the
/// input partition: the counts topic was deleted and re-created, or emptied by a `delete`
/// cleanup policy. Counting on would silently restart every count, all-time included, from
/// zero, so the aggregator stops instead (unless `aggregator.allow_state_reset`).
#[derive(Debug, thiserror::Error)]
#[error(
    "the counts topic {counts} holds no state for partition {partition}, but consumer group \
     {group} has committed offset {committed} on {tweets}-{partition}: the aggregator's state was \
     lost (the counts topic deleted and re-created, or emptied by a delete cleanup policy). \
     Counting on would restart all counts, all-time included, from zero. Restore the topic, or \
     to start over deliberately set TRENDS__AGGREGATOR__ALLOW_STATE_RESET=true once \
     (aggregator.allow_state_reset)"
)]
pub struct LostState {
    pub counts: String,
    pub tweets: String,
    pub group: String,
    pub partition: i32,
    pub committed: i64,
}

/// The consumer group's committed offset for input partition `partition`, `None` if it has
/// none (a new group). Read with OffsetFetch by a client that never joins the group.
pub fn committed_offset(settings: &Settings, partition: i32) -> anyhow::Result<Option<i64>> {
    let consumer: BaseConsumer<ReaderContext> =
        client_config(&settings.kafka, "hashtag-aggregator-offsets")
            .set("group.id", &settings.aggregator.group_id)
            .set("enable.auto.commit", "false")
            .create_with_context(ReaderContext)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&settings.topics.tweets, partition);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(30))?;
    Ok(committed.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(n) if n >= 0 => Some(n),
        _ => None,
    }))
}

/// Reads partition `partition` of the counts topic from the beginning up to its end with
/// `read_committed` and returns the counter it describes.
pub fn restore_partition(settings: &Settings, partition: i32) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let mut counter =
        PartitionCounter::with_capacity(partition, settings.layout(), settings.capacity());
    let mut trends = settings.trend_track(partition);
    let consumer: BaseConsumer<ReaderContext> =
        client_config(&settings.kafka, "hashtag-aggregator-restore")
            .set("group.id", "hashtag-aggregator-restore-unused")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create_with_context(ReaderContext)?;
    let topic = settings.topics.counts.as_str();
    let (low, high) = watermarks_when_led(&consumer, topic, partition, settings)?;
    let mut records = 0u64;
    let mut skipped = 0u64;
    let mut had_state = false;
    if high > low {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        loop {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    let record =
                        CountsRecord::decode(message.key().unwrap_or_default(), message.payload());
                    match record {
                        Ok(record) => match record.key {
                            CountsKey::Language { .. } => trends.restore(record),
                            CountsKey::Checkpoint { .. } => had_state = true,
                            CountsKey::Watermark { .. } => {
                                had_state |= record.value.is_some();
                                trends.restore(record.clone());
                                counter.restore(record);
                            }
                            CountsKey::Bucket { .. } | CountsKey::Total { .. } => {
                                counter.restore(record);
                            }
                        },
                        Err(e) => {
                            skipped += 1;
                            tracing::warn!(partition, offset = message.offset(), error = %e, "skipping malformed counts record");
                        }
                    }
                    records += 1;
                    if message.offset() >= high - 1 {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => {
                    break;
                }
                Some(Err(e)) if is_transient(&e) => {
                    // A broker of the bootstrap list is down (the others serve the partition):
                    // librdkafka retries by itself, and the deadline below bounds the wait.
                    tracing::warn!(partition, error = %e, "transient Kafka error while restoring; carrying on");
                    check_restore_deadline(started, settings, topic, partition)?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => check_restore_deadline(started, settings, topic, partition)?,
            }
        }
    }
    tracing::info!(
        partition,
        records,
        skipped,
        entries = counter.entries(),
        trend_entries = trends.entries(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "restored partition state"
    );
    Ok(Restored {
        counter,
        trends,
        skipped,
        had_state,
    })
}

/// Fails the restore once it has waited (for a record, or through transient errors) past
/// `aggregator.restore_timeout_secs`; a restore that keeps receiving records is not cut short.
fn check_restore_deadline(
    started: Instant,
    settings: &Settings,
    topic: &str,
    partition: i32,
) -> anyhow::Result<()> {
    let limit = settings.aggregator.restore_timeout;
    if started.elapsed() > limit {
        anyhow::bail!(
            "restoring partition {partition} of {topic} did not finish within {limit:?} (aggregator.restore_timeout_secs)"
        );
    }
    Ok(())
}

/// The partition's low and high watermarks. A counts partition just created (or whose leader
/// is moving, or whose old leader just died) answers "unknown partition", "not leader",
/// "leader not available" or a transport error for a moment: those are retried every 200 ms
/// within `aggregator.restore_timeout_secs`; any other error, or one that lasts, fails the
/// restore (and the instance restarts).
fn watermarks_when_led(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    partition: i32,
    settings: &Settings,
) -> anyhow::Result<(i64, i64)> {
    let started = Instant::now();
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(30)) {
            Ok(watermarks) => return Ok(watermarks),
            Err(e)
                if (is_transient(&e)
                    || e.rdkafka_error_code()
                        == Some(RDKafkaErrorCode::UnknownTopicOrPartition))
                    && started.elapsed() < settings.aggregator.restore_timeout =>
            {
                tracing::info!(partition, error = %e, "counts partition not readable yet; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "cannot read the offsets of partition {partition} of {topic}"
                )));
            }
        }
    }
}
