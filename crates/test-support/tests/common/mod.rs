//! Helpers shared by the secured-broker and cluster tests: every client is made from a
//! `ClientConfig` the harness hands out, so the same code runs over PLAINTEXT, SASL_SSL and
//! mTLS.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of these helpers"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use test_support::unique_name;

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates `topic` with `partitions` partitions; `replication` -1 means the broker's default.
pub async fn create_topic(
    admin_config: &ClientConfig,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = admin_config.create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(replication),
            )],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await?;
    for result in results {
        result.map_err(|(topic, e)| anyhow::anyhow!("cannot create {topic}: {e}"))?;
    }
    Ok(())
}

/// A producer with `acks=all` (librdkafka's default, spelled out) and idempotence, waiting up
/// to `delivery_timeout` per record (librdkafka retries within it, e.g. across a leader change).
pub fn producer(
    config: &ClientConfig,
    delivery_timeout: Duration,
) -> anyhow::Result<FutureProducer> {
    let mut config = config.clone();
    Ok(config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        )
        .create()?)
}

/// Produces `payload-<i>` for every `i` in `range`, each awaited (acknowledged) in turn.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<u32>,
) -> anyhow::Result<()> {
    for i in range {
        let (key, payload) = (format!("key-{i}"), format!("payload-{i}"));
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&payload), TIMEOUT)
            .await
            .map_err(|(e, _)| anyhow::anyhow!("cannot produce record {i} to {topic}: {e}"))?;
    }
    Ok(())
}

/// The payloads `payload-<i>` for `i` in `range`.
pub fn payloads(range: std::ops::Range<u32>) -> BTreeSet<String> {
    range.map(|i| format!("payload-{i}")).collect()
}

/// Every payload in `topic`: reads all partitions from the beginning up to their high
/// watermarks, so the count is exact without waiting for "no more records". Fails on a
/// duplicate payload.
pub fn read_all(
    config: &ClientConfig,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<BTreeSet<String>> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        total += high - low;
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let mut payloads = BTreeSet::new();
    let mut seen = 0;
    let deadline = Instant::now() + TIMEOUT;
    while seen < total {
        ensure!(
            Instant::now() < deadline,
            "read {seen} of {total} records from {topic}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let payload = message.payload_view::<str>().context("no payload")??;
            ensure!(
                payloads.insert(payload.to_owned()),
                "duplicate payload {payload} in {topic}"
            );
            seen += 1;
        }
    }
    Ok(payloads)
}
