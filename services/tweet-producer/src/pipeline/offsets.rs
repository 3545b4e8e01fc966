//! The offsets topic (`topics.source_offsets`): each source's resume position, keyed by source.
//!
//! Why a Kafka topic and not a file: the position must become durable in the *same*
//! transaction as the posts it covers, or a crash between the two writes either repeats or
//! loses posts. A record in a topic can be part of that transaction; a file cannot. The topic
//! is compacted (the last value per key is all that matters) and has one partition, so the
//! position of a source is one record to find; it needs no volume and survives the container.
//!
//! **Key** (`crate::settings::Settings::source_key`): `<source>@<tweets topic>`, e.g.
//! `bluesky:wss://jetstream2.us-east.bsky.network@tweets` or `file:/data/posts.jsonl@tweets`:
//! how far *this* source has been copied into *this* topic. A different Jetstream host or
//! target topic is a different key, and starts fresh. **Value**: [`Position`] as JSON; a
//! tombstone (null value) means "no position", which is how an operator resets a source.
//!
//! **Reading at start** ([`read_position`]): after the producer's `init_transactions` (which
//! fences a predecessor with the same `transactional.id` and aborts its open transaction), read
//! the topic from the beginning with `read_committed` up to the high watermark taken at that
//! moment; the last value for the key wins. Every record this producer's predecessors
//! committed is below that watermark. Records of other sources' open transactions hold the
//! last stable offset back; the read waits for them (they commit within their commit interval,
//! or the broker aborts them after `transaction.timeout.ms`), at most [`READ_TIMEOUT`].

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use trends_common::kafka::{
    ReaderContext, TopicSpec, client_config, is_transient, partition_count,
};
use trends_common::settings::KafkaSettings;

use crate::sources::position::Position;

/// How long reading the position may take before the start fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Segments of the offsets topic roll at least hourly, so compaction keeps it near one record
/// per source and reading it at start stays quick.
const SEGMENT_MS: &str = "3600000";

/// The offsets topic as the producer creates it: one partition, compacted.
pub fn topic_spec(name: &str) -> TopicSpec<'_> {
    TopicSpec {
        name,
        partitions: 1,
        config: vec![("cleanup.policy", "compact"), ("segment.ms", SEGMENT_MS)],
    }
}

/// Reads the last committed position of `key` (see the module docs). `None` when the topic has
/// no record for it, or its last record is a tombstone. A record that is not a position is an
/// error: starting fresh instead would silently skip or repeat posts.
pub async fn read_position(
    kafka: &KafkaSettings,
    topic: &str,
    key: &str,
) -> anyhow::Result<Option<Position>> {
    let (kafka, topic_owned, key_owned) = (kafka.clone(), topic.to_owned(), key.to_owned());
    let read = tokio::task::spawn_blocking(move || read_blocking(&kafka, &topic_owned, &key_owned));
    // The blocking read keeps its own deadline; this one only guards against a call into
    // librdkafka that never returns.
    match tokio::time::timeout(READ_TIMEOUT + Duration::from_secs(30), read).await {
        Err(_) => bail!("reading the position from {topic} did not finish in time"),
        Ok(joined) => joined.context("the position reader panicked")?,
    }
}

fn read_blocking(
    kafka: &KafkaSettings,
    topic: &str,
    key: &str,
) -> anyhow::Result<Option<Position>> {
    let started = Instant::now();
    let partitions = partition_count(kafka, topic, Duration::from_secs(30))?
        .with_context(|| format!("the offsets topic {topic} does not exist"))?;
    let consumer: BaseConsumer<ReaderContext> =
        client_config(kafka, "tweet-producer-offsets-reader")
            .set("group.id", "tweet-producer-offsets-reader-unused")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create_with_context(ReaderContext)?;
    // The end of each partition, everything included (the query follows the client's isolation
    // level, so it is asked of a read_uncommitted client).
    let probe: BaseConsumer<ReaderContext> =
        client_config(kafka, "tweet-producer-offsets-probe").create_with_context(ReaderContext)?;
    let to_end = ToEnd::new(&probe, topic, partitions, Duration::from_secs(30))?;
    drop(probe);
    if to_end.is_empty() {
        return Ok(None);
    }
    consumer.assign(&to_end.assignment)?;
    let mut found: Option<Option<Vec<u8>>> = None;
    let mut records = 0u64;
    let mut waiting_logged = false;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records += 1;
                if message.key() == Some(key.as_bytes()) {
                    found = Some(message.payload().map(<[u8]>::to_vec));
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => {}
            // A broker of the bootstrap list down: librdkafka retries, READ_TIMEOUT bounds it.
            Some(Err(e)) if is_transient(&e) => {
                tracing::warn!(topic, error = %e, "transient Kafka error while reading the position; carrying on");
            }
            Some(Err(e)) => return Err(e).context(format!("cannot read {topic}")),
            None => {}
        }
        if to_end.reached(&consumer)? {
            break;
        }
        let elapsed = started.elapsed();
        if elapsed > READ_TIMEOUT {
            bail!(
                "reading {topic} to its end took over {READ_TIMEOUT:?} (a transaction of another producer that stays open?)"
            );
        }
        if elapsed > Duration::from_secs(5) && !waiting_logged {
            waiting_logged = true;
            tracing::info!(
                topic,
                "waiting for open transactions of other producers on the offsets topic"
            );
        }
    }
    tracing::debug!(topic, records, "read the offsets topic");
    match found {
        None | Some(None) => Ok(None),
        Some(Some(value)) => Position::decode(&value).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "the position of {key:?} in {topic} is unusable ({e}); to start this source afresh, write a tombstone (null value) for that key"
            )
        }),
    }
}

/// A read of a topic from its beginning to the end it has now: the partitions to read, and
/// where each ends. `read_committed` readers use it to know they read everything committed
/// without waiting for "no more records".
#[derive(Debug)]
pub struct ToEnd {
    topic: String,
    /// The non-empty partitions, from the beginning: what the reader is assigned.
    pub assignment: TopicPartitionList,
    /// (partition, end offset).
    ends: Vec<(i32, i64)>,
}

impl ToEnd {
    /// The non-empty partitions of `topic` (`partitions` of them) and their ends, asked of
    /// `probe`. The ends are what the log holds, everything included: the query follows the
    /// client's isolation level, so `probe` must read uncommitted.
    pub fn new<C: ConsumerContext>(
        probe: &BaseConsumer<C>,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> KafkaResult<ToEnd> {
        let mut ends = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            let (low, high) = probe.fetch_watermarks(topic, partition, timeout)?;
            if high > low {
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
                ends.push((partition, high));
            }
        }
        Ok(ToEnd {
            topic: topic.to_owned(),
            assignment,
            ends,
        })
    }

    /// Whether there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether `consumer` (assigned [`ToEnd::assignment`]) has read to every end. Its
    /// position advances past aborted records and transaction markers too.
    pub fn reached<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> KafkaResult<bool> {
        let position = consumer.position()?;
        Ok(self.ends.iter().all(|(partition, end)| {
            position
                .find_partition(&self.topic, *partition)
                .is_some_and(|p| matches!(p.offset(), Offset::Offset(at) if at >= *end))
        }))
    }
}
