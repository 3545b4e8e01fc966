//! Transactions survive the transaction coordinator being SIGKILLed on a three-node cluster
//! (`__transaction_state` has RF 3 and min ISR 2): the producer finds the new coordinator, the
//! interrupted transaction is committed or aborted and redone, and a read_committed reader
//! sees every record exactly once. This is what the product's exactly-once aggregator relies
//! on; the harness's `transaction_coordinator` picks the node to kill.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use common::{TIMEOUT, create_topic, payloads};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use test_support::{KafkaCluster, unique_name};

const PARTITIONS: i32 = 3;
/// How long a commit may take: enough for the coordinator's fencing (4 s), the election of
/// a new `__transaction_state` leader and librdkafka's coordinator lookup.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn transactions_survive_the_coordinator_being_killed() -> anyhow::Result<()> {
    let mut cluster = KafkaCluster::start(3)?;
    let config = cluster.client_config();
    let topic = unique_name("tx-output");
    create_topic(&config, &topic, PARTITIONS, -1).await?;

    let transactional_id = unique_name("tx");
    let producer: FutureProducer = config
        .clone()
        .set("transactional.id", &transactional_id)
        .set("message.timeout.ms", "60000")
        .create()?;
    producer.init_transactions(TIMEOUT)?;
    for start in (0..50).step_by(10) {
        commit(&producer, &topic, start..start + 10).await?;
    }

    // Kill the coordinator in the middle of a transaction: records sent, commit not yet asked.
    let coordinator = cluster.transaction_coordinator(&transactional_id)?;
    producer.begin_transaction()?;
    send_all(&producer, &topic, 50..60).await?;
    cluster.kill(coordinator)?;
    let killed_at = Instant::now();
    match producer.commit_transaction(COMMIT_TIMEOUT) {
        Ok(()) => println!(
            "interrupted transaction committed {:?} after killing coordinator {coordinator}",
            killed_at.elapsed()
        ),
        Err(e) => {
            println!("commit after killing coordinator {coordinator}: {e}; redoing it");
            abort_if_needed(&producer, &e)?;
            commit(&producer, &topic, 50..60).await?;
        }
    }
    for start in (60..100).step_by(10) {
        commit(&producer, &topic, start..start + 10).await?;
    }
    let new_coordinator = cluster.transaction_coordinator(&transactional_id)?;
    println!(
        "coordinator {coordinator} -> {new_coordinator}; 50 records in 5 transactions committed \
         {:?} after the kill",
        killed_at.elapsed()
    );
    ensure!(new_coordinator != coordinator, "coordinator did not move");

    cluster.start_node(coordinator)?;
    cluster.wait_in_sync("__transaction_state", Duration::from_secs(60))?;
    cluster.wait_in_sync(&topic, Duration::from_secs(60))?;
    commit(&producer, &topic, 100..110).await?;

    assert_eq!(read_committed(&config, &topic, 110)?, payloads(0..110));
    Ok(())
}

/// Sends `payload-<i>` for `i` in `range`, each awaited.
async fn send_all(producer: &FutureProducer, topic: &str, range: Range<u32>) -> anyhow::Result<()> {
    for i in range {
        let (key, payload) = (format!("key-{i}"), format!("payload-{i}"));
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&payload), TIMEOUT)
            .await
            .map_err(|(e, _)| anyhow::anyhow!("cannot send record {i}: {e}"))?;
    }
    Ok(())
}

/// One transaction holding `range`, redone (after an abort) if librdkafka says it must be
/// aborted, the commit retried if it says that is retriable. At most 5 attempts.
async fn commit(producer: &FutureProducer, topic: &str, range: Range<u32>) -> anyhow::Result<()> {
    for _ in 0..5 {
        producer.begin_transaction()?;
        if let Err(e) = send_all(producer, topic, range.clone()).await {
            println!("send failed: {e:#}; aborting");
            producer.abort_transaction(COMMIT_TIMEOUT)?;
            continue;
        }
        match producer.commit_transaction(COMMIT_TIMEOUT) {
            Ok(()) => return Ok(()),
            Err(e) => {
                println!("commit of {range:?} failed: {e}");
                abort_if_needed(producer, &e)?;
            }
        }
    }
    bail!("could not commit {range:?} in 5 attempts")
}

/// After a failed commit: aborts an abortable transaction, retries a retriable commit until it
/// gives a definite answer, fails on anything else (fatal).
fn abort_if_needed(producer: &FutureProducer, error: &KafkaError) -> anyhow::Result<()> {
    let KafkaError::Transaction(e) = error else {
        bail!("unexpected commit error: {error}");
    };
    if e.txn_requires_abort() {
        producer.abort_transaction(COMMIT_TIMEOUT)?;
        return Ok(());
    }
    if e.is_retriable() {
        // The outcome is unknown: a retried commit either completes it or says to abort.
        return match producer.commit_transaction(COMMIT_TIMEOUT) {
            Ok(()) => bail!("a retried commit succeeded: the records are in, do not redo them"),
            Err(again) => abort_if_needed(producer, &again),
        };
    }
    bail!("fatal transaction error: {error}")
}

/// Every committed payload of `topic`, reading until `expected` have arrived and every
/// partition's position has reached its high watermark (past the last commit marker).
fn read_committed(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
) -> anyhow::Result<BTreeSet<String>> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut highs = Vec::new();
    for partition in 0..PARTITIONS {
        highs.push(consumer.fetch_watermarks(topic, partition, TIMEOUT)?.1);
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut payloads = BTreeSet::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if payloads.len() >= expected && at_end(&consumer, topic, &highs)? {
            return Ok(payloads);
        }
        ensure!(
            Instant::now() < deadline,
            "read {} of {expected} records from {topic}",
            payloads.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let payload = message.payload_view::<str>().context("no payload")??;
            ensure!(
                payloads.insert(payload.to_owned()),
                "duplicate payload {payload} in {topic}"
            );
        }
    }
}

/// Whether every partition's position is at its high watermark.
fn at_end(consumer: &BaseConsumer, topic: &str, highs: &[i64]) -> anyhow::Result<bool> {
    let positions = consumer.position()?;
    Ok(highs.iter().zip(0..).all(|(&high, partition)| {
        matches!(
            positions.find_partition(topic, partition).map(|p| p.offset()),
            Some(Offset::Offset(position)) if position >= high
        )
    }))
}
