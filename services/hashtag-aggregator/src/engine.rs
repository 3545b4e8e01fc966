//! The consume → count → produce loop, one Kafka transaction per commit interval.
//!
//! Runs on a dedicated thread with rdkafka's blocking `BaseConsumer` and `BaseProducer`. The
//! [`Engine`] (counters, open transaction, offsets) lives inside the consumer's context so the
//! rebalance callbacks, which rdkafka runs inside `poll`, can commit before partitions are taken
//! away and restore state for partitions that arrive.
//!
//! Failure policy: any transaction error ends the loop with an error and the process exits
//! non-zero (a supervisor such as Docker's restart policy starts it again). Nothing uncommitted
//! is ever visible, and the restarted instance restores from the committed state, so exiting is
//! always safe and never loses or doubles a count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use trends_common::kafka::client_config;
use trends_core::counter::{PartitionCounter, Recorded};
use trends_core::hashtag::tags_for_post;
use trends_core::post::{PostError, parse_post};

use crate::restore::restore_partition;
use crate::settings::Settings;

const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters of what the engine did, logged periodically.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub processed: u64,
    pub dead_lettered: u64,
    pub late: u64,
    pub transactions: u64,
    pub rebalances: u64,
}

/// Everything the loop mutates.
pub struct Engine {
    settings: Settings,
    producer: BaseProducer,
    assigned: HashSet<i32>,
    counters: HashMap<i32, PartitionCounter>,
    /// Next input offset to commit, per partition touched in the open transaction.
    offsets: BTreeMap<i32, i64>,
    in_transaction: bool,
    failure: Option<anyhow::Error>,
    pub stats: Stats,
}

/// The consumer context: holds the engine for the rebalance callbacks.
#[derive(Debug)]
pub struct AggregatorContext {
    engine: Mutex<Engine>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("assigned", &self.assigned)
            .field("in_transaction", &self.in_transaction)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AggregatorContext {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A poisoned lock means a panic elsewhere; the state is still the best we have.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for AggregatorContext {}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for AggregatorContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = partitions_of(tpl);
            let lost = consumer.assignment_lost();
            self.engine().on_revoke(consumer, &partitions, lost);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.engine().on_assign(&partitions_of(tpl)),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

type AggregatorConsumer = BaseConsumer<AggregatorContext>;

impl Engine {
    fn begin_if_needed(&mut self) -> anyhow::Result<()> {
        if !self.in_transaction {
            self.producer
                .begin_transaction()
                .context("begin transaction")?;
            self.in_transaction = true;
        }
        Ok(())
    }

    fn send(&self, mut record: BaseRecord<'_, str, [u8]>) -> anyhow::Result<()> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e).context("produce"),
            }
        }
    }

    fn process(&mut self, message: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let partition = message.partition();
        if !self.assigned.contains(&partition) {
            // Fetched before a revocation; its new owner will process it.
            return Ok(());
        }
        if !self.counters.contains_key(&partition) {
            let counter = restore_partition(&self.settings, partition)?;
            self.counters.insert(partition, counter);
        }
        self.begin_if_needed()?;
        match parse_post(message.payload().unwrap_or_default()) {
            Ok(parsed) => {
                let tags = tags_for_post(&parsed.post);
                if let Some(counter) = self.counters.get_mut(&partition) {
                    if counter.record(parsed.event_time, &tags) == Recorded::Late {
                        self.stats.late += 1;
                    }
                }
            }
            Err(reason) => self.dead_letter(message, &reason)?,
        }
        self.stats.processed += 1;
        self.offsets.insert(partition, message.offset() + 1);
        Ok(())
    }

    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        reason: &PostError,
    ) -> anyhow::Result<()> {
        let reason_text = reason.to_string();
        let partition_text = message.partition().to_string();
        let offset_text = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq.error.code",
                value: Some(reason.code()),
            })
            .insert(Header {
                key: "dlq.error.reason",
                value: Some(reason_text.as_str()),
            })
            .insert(Header {
                key: "dlq.source.topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "dlq.source.partition",
                value: Some(partition_text.as_str()),
            })
            .insert(Header {
                key: "dlq.source.offset",
                value: Some(offset_text.as_str()),
            });
        let key = message.key().map(String::from_utf8_lossy);
        let mut record = BaseRecord::to(&self.settings.topics.dlq)
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = key.as_deref() {
            record = record.key(key);
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        self.send(record)?;
        self.stats.dead_lettered += 1;
        tracing::warn!(
            partition = message.partition(),
            offset = message.offset(),
            code = reason.code(),
            reason = reason_text,
            "record sent to the dead-letter topic"
        );
        Ok(())
    }

    /// Publishes every changed count and commits them with the consumed offsets, atomically.
    fn commit(&mut self, consumer: &AggregatorConsumer) -> anyhow::Result<()> {
        let mut updates = Vec::new();
        for (partition, counter) in &mut self.counters {
            for record in counter.take_updates() {
                updates.push((*partition, record));
            }
        }
        if !updates.is_empty() {
            self.begin_if_needed()?;
        }
        for (partition, record) in &updates {
            let key = record.key.encode();
            let value = record.encode_value();
            let mut out = BaseRecord::to(&self.settings.topics.counts)
                .partition(*partition)
                .key(key.as_str());
            if let Some(value) = value.as_deref() {
                out = out.payload(value.as_bytes());
            }
            self.send(out)?;
        }
        if !self.in_transaction {
            return Ok(());
        }
        if !self.offsets.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (partition, offset) in &self.offsets {
                tpl.add_partition_offset(
                    &self.settings.topics.tweets,
                    *partition,
                    Offset::Offset(*offset),
                )?;
            }
            let metadata = consumer
                .group_metadata()
                .context("consumer has no group metadata")?;
            self.producer
                .send_offsets_to_transaction(&tpl, &metadata, TRANSACTION_CALL_TIMEOUT)
                .context("send offsets to transaction")?;
        }
        self.producer
            .commit_transaction(TRANSACTION_CALL_TIMEOUT)
            .context("commit transaction")?;
        self.in_transaction = false;
        self.offsets.clear();
        self.stats.transactions += 1;
        Ok(())
    }

    fn on_revoke(&mut self, consumer: &AggregatorConsumer, partitions: &[i32], lost: bool) {
        self.stats.rebalances += 1;
        tracing::info!(?partitions, lost, "partitions revoked");
        if lost {
            // Another member may own these already: our open transaction would be fenced.
            self.failure.get_or_insert_with(|| {
                anyhow::anyhow!("partitions {partitions:?} were lost (session timeout?); restarting from committed state")
            });
            return;
        }
        if let Err(e) = self.commit(consumer) {
            self.failure
                .get_or_insert(e.context("commit before revocation"));
            return;
        }
        for partition in partitions {
            self.assigned.remove(partition);
            self.counters.remove(partition);
        }
    }

    fn on_assign(&mut self, partitions: &[i32]) {
        self.stats.rebalances += 1;
        tracing::info!(?partitions, "partitions assigned");
        self.assigned.extend(partitions.iter().copied());
    }
}

fn transactional_producer(settings: &Settings) -> anyhow::Result<BaseProducer> {
    let transactional_id = format!(
        "{}-{}",
        settings.aggregator.group_id,
        settings.instance_id()
    );
    tracing::info!(transactional_id, "initializing transactional producer");
    let producer: BaseProducer = client_config(&settings.kafka, "hashtag-aggregator")
        .set("transactional.id", &transactional_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set(
            "transaction.timeout.ms",
            settings.aggregator.transaction_timeout_ms.to_string(),
        )
        .create()
        .context("create producer")?;
    producer
        .init_transactions(TRANSACTION_CALL_TIMEOUT)
        .context("init transactions")?;
    Ok(producer)
}

/// Runs the loop until `shutdown` is cancelled (then commits and leaves the group) or a fatal
/// error occurs.
pub fn run_blocking(settings: &Settings, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let producer = transactional_producer(settings)?;
    let engine = Engine {
        settings: settings.clone(),
        producer,
        assigned: HashSet::new(),
        counters: HashMap::new(),
        offsets: BTreeMap::new(),
        in_transaction: false,
        failure: None,
        stats: Stats::default(),
    };
    let context = AggregatorContext {
        engine: Mutex::new(engine),
    };
    let a = &settings.aggregator;
    let consumer: AggregatorConsumer = client_config(&settings.kafka, "hashtag-aggregator")
        .set("group.id", &a.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", a.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (a.session_timeout_ms / 4).max(100).to_string(),
        )
        .create_with_context(context)
        .context("create consumer")?;
    consumer
        .subscribe(&[settings.topics.tweets.as_str()])
        .context("subscribe")?;

    let interval = Duration::from_millis(a.commit_interval_ms);
    let mut last_commit = Instant::now();
    let mut last_log = Instant::now();
    let mut logged = Stats::default();
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => consumer.context().engine().process(&message)?,
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        let mut engine = consumer.context().engine();
        if let Some(failure) = engine.failure.take() {
            return Err(failure);
        }
        if last_commit.elapsed() >= interval {
            engine.commit(&consumer)?;
            last_commit = Instant::now();
        }
        if last_log.elapsed() >= Duration::from_secs(10)
            && engine.stats.processed != logged.processed
        {
            let s = engine.stats;
            tracing::info!(
                processed = s.processed,
                dead_lettered = s.dead_lettered,
                late = s.late,
                transactions = s.transactions,
                partitions = engine.assigned.len(),
                "progress"
            );
            logged = s;
            last_log = Instant::now();
        }
    }
    consumer.context().engine().commit(&consumer)?;
    consumer.unsubscribe();
    let stats = consumer.context().engine().stats;
    tracing::info!(
        processed = stats.processed,
        transactions = stats.transactions,
        "hashtag-aggregator stopped cleanly"
    );
    Ok(())
}
