//! The blocklist topic: the follower that reads it into [`Blocklist`]s, and the writer that
//! produces to it and waits until this replica has applied what it wrote.
//!
//! **One partition, read from the beginning.** Every replica assigns itself partition 0 from
//! its first offset (no consumer group, nothing committed), applies each record in order, and
//! after each batch publishes an immutable `Arc<Blocklist>` and then the offset it has applied
//! up to. Every replica reads the same records in the same order, so they converge; the topic
//! is compacted, so it holds one record per entry ever set and not yet removed for good.
//!
//! **Read your writes.** The writer (idempotent, `acks=all`) learns each record's offset from
//! its acknowledgement, then waits until the local follower's applied offset is past the
//! highest one: once a `PUT` answers, this replica's [`Blocklist`] has the entry. Other
//! replicas follow within their fetch latency.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::join_all;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::ReaderContext;

use super::blocklist::{Blocklist, Entries};
use super::entry::decode_record;

/// The one partition of the blocklist topic.
pub const PARTITION: i32 = 0;

/// Records applied before the follower publishes, at most (a catch-up, a bulk import).
const DRAIN_BATCH: usize = 4096;

/// The moderation metrics, for the API's registry (each field is a shared handle: register a
/// clone). Suggested names: `trends_api_blocklist_records_skipped_total`,
/// `trends_api_blocklist_entries`.
#[derive(Debug, Clone, Default)]
pub struct ModerationMetrics {
    /// Records of the blocklist topic that were refused (malformed, over a bound), logged and
    /// skipped.
    pub records_skipped: Counter,
    /// Entries in the published blocklist.
    pub entries: Gauge,
}

impl ModerationMetrics {
    /// Registers both series on `registry` (the API's, prefixed `trends_api`).
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let metrics = ModerationMetrics::default();
        registry.register(
            "blocklist_records_skipped",
            "Blocklist-topic records refused (malformed or over a bound) and skipped",
            metrics.records_skipped.clone(),
        );
        registry.register(
            "blocklist_entries",
            "Entries in the blocklist this replica applies",
            metrics.entries.clone(),
        );
        metrics
    }
}

/// What the follower publishes.
#[derive(Debug)]
pub struct Published {
    pub blocklist: watch::Sender<Arc<Blocklist>>,
    /// The offset after the last record applied (and published).
    pub applied: watch::Sender<i64>,
}

/// Reads partition [`PARTITION`] of `topic` (already assigned from the beginning) until
/// `shutdown`.
pub async fn follow(
    consumer: StreamConsumer<ReaderContext>,
    topic: String,
    mut entries: Entries,
    published: Published,
    metrics: ModerationMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            received = consumer.recv() => received,
        };
        let mut applied = *published.applied.borrow();
        let mut changed = false;
        let mut next = Some(received);
        let mut taken = 0;
        while let Some(received) = next.take() {
            taken += 1;
            match received {
                Ok(message) if message.partition() == PARTITION => {
                    applied = applied.max(message.offset().saturating_add(1));
                    let change = decode_record(message.key(), message.payload())
                        .and_then(|change| entries.apply(change));
                    match change {
                        Ok(did) => changed |= did,
                        Err(e) => {
                            // The topic is input like any other: anyone who can write to it
                            // must not be able to stop or skew the API.
                            metrics.records_skipped.inc();
                            tracing::warn!(topic, offset = message.offset(), error = %e, "skipping blocklist record");
                        }
                    }
                }
                Ok(_) => {}
                Err(KafkaError::PartitionEOF(_)) => {
                    // Past anything not delivered as a record (compacted away, markers).
                    if let Some(position) = position(&consumer, &topic) {
                        applied = applied.max(position);
                    }
                }
                Err(e) => tracing::warn!(topic, error = %e, "blocklist consumer error"),
            }
            if taken < DRAIN_BATCH {
                next = consumer.recv().now_or_never();
            }
        }
        if changed {
            let blocklist = entries.publish();
            metrics
                .entries
                .set(i64::try_from(blocklist.len()).unwrap_or(i64::MAX));
            published.blocklist.send_replace(Arc::new(blocklist));
        }
        // After the blocklist: a writer that sees its offset applied sees its entry.
        published.applied.send_if_modified(|old| {
            let moved = applied > *old;
            *old = (*old).max(applied);
            moved
        });
    }
}

/// The consumer's position in the partition (local, no request).
fn position(consumer: &StreamConsumer<ReaderContext>, topic: &str) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, PARTITION)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// Why a write did not complete.
#[derive(Debug)]
pub enum WriteError {
    /// Kafka did not acknowledge a record (the message is Kafka's).
    NotAcknowledged(String),
    /// Acknowledged, but this replica had not applied it when the deadline passed.
    NotApplied,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotAcknowledged(e) => {
                write!(f, "Kafka did not acknowledge the write in time: {e}")
            }
            WriteError::NotApplied => f.write_str(
                "the write was acknowledged but not applied by this replica within \
                 moderation.write_timeout_ms; it may still take effect",
            ),
        }
    }
}

/// Produces to the blocklist topic and waits for the local follower.
pub struct Writer {
    pub topic: String,
    pub producer: FutureProducer,
    pub applied: watch::Receiver<i64>,
    pub timeout: Duration,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("topic", &self.topic)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Writes `records` (key, value; `None` = tombstone) in order and returns once all are
    /// acknowledged and applied by this replica's follower, within the write timeout.
    pub async fn write(&self, records: &[(String, Option<Vec<u8>>)]) -> Result<(), WriteError> {
        let deadline = Instant::now() + self.timeout;
        let sends = records.iter().map(|(key, value)| {
            let mut record = FutureRecord::<str, [u8]>::to(&self.topic)
                .partition(PARTITION)
                .key(key.as_str());
            if let Some(value) = value {
                record = record.payload(value.as_slice());
            }
            self.producer.send(record, Timeout::After(self.timeout))
        });
        let delivered = tokio::time::timeout_at(deadline, join_all(sends))
            .await
            .map_err(|_| WriteError::NotAcknowledged("timed out".into()))?;
        let mut last = -1;
        for result in delivered {
            match result {
                Ok(delivery) => last = last.max(delivery.offset),
                Err((e, _)) => return Err(WriteError::NotAcknowledged(e.to_string())),
            }
        }
        let mut applied = self.applied.clone();
        match tokio::time::timeout_at(deadline, applied.wait_for(|&offset| offset > last)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(WriteError::NotApplied),
        }
    }
}
