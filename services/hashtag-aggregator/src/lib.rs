//! The hashtag aggregator: raw posts in, windowed hashtag counts out, exactly once.
//!
//! # Data flow
//! Each instance is a member of one consumer group on the raw-posts topic. For every input
//! partition it owns, it keeps a [`trends_core::counter::PartitionCounter`] and writes that
//! partition's counts to the **same partition number** of the compacted counts topic (see
//! [`trends_core::counts_record`] for keys and values). Malformed records go to the dead-letter
//! topic with the reason in headers.
//!
//! # Delivery guarantee
//! Exactly once, by Kafka transactions: every `commit_interval_ms` the instance writes the
//! changed counts (and any dead letters) and the consumed input offsets in **one** transaction
//! (`send_offsets_to_transaction` with the consumer's group metadata). Either all of it becomes
//! visible to `read_committed` readers, or none of it and the input is read again.
//!
//! # State
//! Nothing is kept on local disk. When an instance gets a partition (start-up, rebalance, a
//! peer's crash) it reads that partition of the counts topic from the beginning with
//! `isolation.level=read_committed` before it processes any new record of it; the committed
//! counts and the committed input offsets always belong to the same transaction, so the
//! restored state is exactly the state at the committed offset. Before a partition is taken
//! away in a rebalance, the open transaction is committed.
//!
//! The consuming loop is blocking rdkafka code on a dedicated thread ([`engine`]); a
//! [`watchdog`] thread ends the process if one of its Kafka calls hangs past its limit.

pub mod dead_letter;
pub mod engine;
pub mod extract_command;
pub mod fencing;
pub mod metrics;
pub mod restore;
pub mod settings;
pub mod watchdog;

use std::time::Duration;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use trends_common::config_error::listen_error;
use trends_common::kafka::{
    MESSAGE_MAX_BYTES, TopicSpec, add_partitions, ensure_topics, partition_count, topic_config,
    topic_max_message_bytes,
};
use trends_common::shutdown::TaskGroup;

use crate::metrics::Metrics;

use crate::settings::Settings;

/// Creates the topics if needed, then consumes until `shutdown` is cancelled or an error occurs.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Bound first: two instances on one host that want the same port learn it at once.
    let addr = settings.aggregator.metrics_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!(listen_error("aggregator.metrics_addr", addr, &e)))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        setting = "aggregator.metrics_addr",
        "serving metrics on /metrics"
    );
    let partitions = prepare_topics(&settings).await?;
    tracing::info!(
        tweets = settings.topics.tweets,
        counts = settings.topics.counts,
        partitions,
        group = settings.aggregator.group_id,
        "hashtag-aggregator starting"
    );
    let limits = record_limits(&settings).await;
    let metrics = Arc::new(Metrics::new());

    let mut tasks = TaskGroup::new(shutdown.clone());
    tasks.spawn(
        "metrics server",
        trends_common::metrics::serve(listener, metrics.registry(), shutdown.clone()),
    );
    let engine_shutdown = shutdown.clone();
    tasks.spawn("consumer", async move {
        let token = engine_shutdown.clone();
        let watchdog = Arc::new(watchdog::Watchdog::default());
        let _watching = watchdog.watch(watchdog::exit_on_overdue)?;
        let instance = fencing::Instance::of(&settings);
        let result = tokio::task::spawn_blocking(move || {
            engine::run_blocking(&settings, limits, &token, metrics, watchdog)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
        // Fenced by another instance with the same id: say so, and how to fix it.
        .map_err(|e| instance.explain(e));
        // The engine ends only on shutdown or failure; either way the service stops.
        engine_shutdown.cancel();
        result
    });
    tasks.join().await
}

/// How large the records the engine writes may be: the producer's limit, or the dead-letter
/// topic's `max.message.bytes` when that is lower (a topic created by someone else).
async fn record_limits(settings: &Settings) -> engine::RecordLimits {
    let topic = &settings.topics.dlq;
    let limit = match topic_max_message_bytes(&settings.kafka, topic).await {
        Ok(Some(topic_limit)) => {
            if topic_limit < MESSAGE_MAX_BYTES {
                tracing::warn!(
                    topic,
                    topic_limit,
                    client_limit = MESSAGE_MAX_BYTES,
                    "the dead-letter topic takes smaller records than the client; dead letters are cut to fit it"
                );
            }
            topic_limit.min(MESSAGE_MAX_BYTES)
        }
        Ok(None) => MESSAGE_MAX_BYTES,
        Err(e) => {
            tracing::warn!(topic, error = %e, "cannot read the dead-letter topic's max.message.bytes; assuming the client's limit");
            MESSAGE_MAX_BYTES
        }
    };
    engine::RecordLimits {
        dead_letter_bytes: dead_letter::budget(limit),
    }
}

/// Waits (up to 30 s) until `topic` has at least `partitions` partitions in the metadata and
/// returns its count.
async fn wait_for_partitions(
    kafka: &trends_common::settings::KafkaSettings,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (settings, name) = (kafka.clone(), topic.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            partition_count(&settings, &name, Duration::from_secs(10))
        })
        .await??
        .unwrap_or(0);
        if found >= partitions || std::time::Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before input partition `partition` is restored: the counts topic must have it. When
/// partitions were added to the input while the aggregator runs (the group rebalances onto
/// them), the counts topic is grown to match, so the partitions stay co-partitioned. Runs on
/// the engine's blocking thread.
/// Returns whether it grew the topic.
pub fn ensure_counts_partition(settings: &Settings, partition: i32) -> anyhow::Result<bool> {
    let timeout = Duration::from_secs(10);
    let topics = &settings.topics;
    let counts = partition_count(&settings.kafka, &topics.counts, timeout)?.unwrap_or(0);
    if partition < counts {
        return Ok(false);
    }
    let input = partition_count(&settings.kafka, &topics.tweets, timeout)?.unwrap_or(0);
    anyhow::ensure!(
        partition < input,
        "input partition {partition} of {} is assigned but the topic has {input} partitions",
        topics.tweets
    );
    tracing::info!(
        counts_topic = topics.counts,
        from = counts,
        to = input,
        "partitions were added to the input; adding them to the counts topic"
    );
    // A runtime of its own for the admin calls: this runs on the engine's blocking thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let grown = runtime.block_on(async {
        add_partitions(&settings.kafka, &topics.counts, input).await?;
        wait_for_partitions(&settings.kafka, &topics.counts, input).await
    })?;
    anyhow::ensure!(
        partition < grown,
        "topic {} has {grown} partitions after growing it to {input}",
        topics.counts
    );
    Ok(true)
}

/// Ensures the input, counts and dead-letter topics exist, the counts topic co-partitioned with
/// the input. Returns the input's partition count.
async fn prepare_topics(settings: &Settings) -> anyhow::Result<i32> {
    let kafka = &settings.kafka;
    let topics = &settings.topics;
    let timeout = Duration::from_secs(10);
    let existing = {
        let kafka = kafka.clone();
        let tweets = topics.tweets.clone();
        tokio::task::spawn_blocking(move || partition_count(&kafka, &tweets, timeout)).await??
    };
    let partitions = existing.unwrap_or(topics.partitions);
    ensure_topics(
        kafka,
        &[
            TopicSpec::tweets(&topics.tweets, partitions),
            TopicSpec {
                name: &topics.counts,
                partitions,
                config: vec![
                    ("cleanup.policy", "compact"),
                    ("segment.ms", "600000"),
                    ("min.cleanable.dirty.ratio", "0.1"),
                ],
            },
            TopicSpec {
                name: &topics.dlq,
                partitions,
                config: vec![],
            },
        ],
    )
    .await?;
    // A topic just created may take a moment to appear in metadata.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let kafka = kafka.clone();
        let name = topics.counts.clone();
        let found =
            tokio::task::spawn_blocking(move || partition_count(&kafka, &name, timeout)).await??;
        match found {
            Some(n) => break n,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => anyhow::bail!("topic {} is missing after creation", topics.counts),
        }
    };
    // Partitions added to the input: the counts topic follows, so input partition p still
    // writes to counts partition p.
    let counts = if counts < partitions {
        tracing::info!(
            counts_topic = topics.counts,
            from = counts,
            to = partitions,
            "the input has more partitions than the counts topic; adding them to stay co-partitioned"
        );
        add_partitions(kafka, &topics.counts, partitions).await?;
        wait_for_partitions(kafka, &topics.counts, partitions).await?
    } else {
        counts
    };
    anyhow::ensure!(
        counts == partitions,
        "topic {} has {counts} partitions but {} has {partitions}; the counts topic must be co-partitioned with the input (partitions cannot be removed: re-create the counts topic with {partitions} partitions and start with aggregator.allow_state_reset, or give the input as many)",
        topics.counts,
        topics.tweets
    );
    // The counts topic is the aggregator's state (Kafka is the only store): with `delete` in
    // its cleanup policy, old segments are deleted by age, and a restore would start from
    // whatever is left: all-time counts silently restarting from a fraction.
    let policy = topic_config(kafka, &topics.counts, "cleanup.policy").await?;
    if let Some(policy) = policy {
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        anyhow::ensure!(
            policies == ["compact"],
            "topic {} has cleanup.policy={policy}; the counts topic holds the aggregator's state and must be cleanup.policy=compact only (delete would drop counts by age): \
             kafka-configs.sh --alter --entity-type topics --entity-name {} --add-config cleanup.policy=compact",
            topics.counts,
            topics.counts
        );
    }
    Ok(partitions)
}
