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
//! always safe and never loses or doubles a count. A blocking call that does not return within
//! its limit counts as such an error too: the [`Watchdog`] ends the process (librdkafka can
//! ignore a transactional call's timeout when the coordinator goes away).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders, Timestamp, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use trends_common::kafka::client_config;
use trends_common::memory::release_free_memory;
use trends_common::time::now_ms;
use trends_common::trace_context::{self, Links};
use trends_core::counter::{Evictions, PartitionCounter, Recorded};
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::post::{MAX_REASON_BYTES, PostError, parse_post_ref};
use trends_core::tags::TagExtractor;
use trends_core::trend_track::{Author, TrendTrack};
use trends_core::{EpochMillis, truncate_utf8};

use crate::dead_letter::DeadLetter;
use crate::metrics::{CommitPhase, DropReason, EvictionScope, Metrics, RefusedTopic};
use crate::restore::{LostState, committed_offset, restore_partition};
use crate::settings::{Settings, millis};
use crate::watchdog::Watchdog;

/// A commit that produced at least this many counts records was a burst (a catch-up, or many
/// buckets expiring at once): afterwards the freed heap goes back to the operating system
/// (`trends_common::memory`). Steady commits produce far fewer and skip the walk.
const RELEASE_MEMORY_AFTER_RECORDS: usize = 20_000;

/// librdkafka's bound on the counts records queued in the producer (default 1 GiB): a catch-up
/// commit that produces more waits for deliveries (`send` polls on `QueueFull`) instead of
/// holding every record of the transaction at once.
const PRODUCER_QUEUE_KBYTES: u32 = 32 * 1024;

const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll slice of [`Engine::flush`]. rdkafka's `BaseProducer::poll` returns only when its
/// timeout is over (since rdkafka 0.38), so the slice is how late the last delivery report of a
/// transaction is noticed.
const FLUSH_POLL: Duration = Duration::from_millis(1);
/// How long past its own timeout a blocking call may run before the watchdog ends the process.
const WATCHDOG_GRACE: Duration = Duration::from_secs(30);

/// How long closing the consumer (leaving the group, the last revocation) may take before the
/// watchdog ends the process.
const CONSUMER_CLOSE_LIMIT: Duration = Duration::from_secs(60);
/// How long past `aggregator.restore_timeout_secs` (plus its 30 s watermark query) a restore
/// may run before the watchdog ends the process.
const RESTORE_GRACE: Duration = Duration::from_secs(60);

/// Limits on the records the engine writes, found at start.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    /// Bytes a dead letter's key and value may take ([`crate::dead_letter::budget`]).
    pub dead_letter_bytes: usize,
}

/// Produce errors caused by one record's content (its size or format): sending it again fails
/// again, so the record is dropped and counted rather than failing the transaction.
const CONTENT_ERRORS: [RDKafkaErrorCode; 5] = [
    RDKafkaErrorCode::MessageSizeTooLarge,
    RDKafkaErrorCode::InvalidMessageSize,
    RDKafkaErrorCode::InvalidMessage,
    RDKafkaErrorCode::InvalidRecord,
    RDKafkaErrorCode::BadMessage,
];

/// What became of a record handed to the producer.
enum Sent {
    /// Queued in the open transaction.
    Queued,
    /// Refused for its content (one of [`CONTENT_ERRORS`]); not queued.
    Refused(KafkaError),
}

/// Everything the loop mutates.
pub struct Engine {
    settings: Settings,
    limits: RecordLimits,
    producer: BaseProducer,
    assigned: HashSet<i32>,
    counters: HashMap<i32, PartitionCounter>,
    /// Per partition with a counter: its trend track (distinct authors per tag and language).
    tracks: HashMap<i32, TrendTrack>,
    /// Extracts every record's tags into buffers it reuses (no allocation per post).
    extractor: TagExtractor,
    /// Each counter's evictions as last added to the metric.
    evictions_seen: HashMap<i32, Evictions>,
    /// Each trend track's dedup evictions as last added to the metric.
    dedup_evictions_seen: HashMap<i32, u64>,
    /// Next input offset to commit, per partition touched in the open transaction.
    offsets: BTreeMap<i32, i64>,
    in_transaction: bool,
    failure: Option<anyhow::Error>,
    /// Set once a transaction failed, a record could not be processed or partitions were
    /// lost: from then on this instance commits nothing. Its counters may hold counts whose
    /// records were aborted (taken by the failed transaction) while `offsets` still holds
    /// their input positions; a later commit (the revocation while the consumer closes) would
    /// commit those offsets without those counts. The instance is on its way out; the next
    /// owner restores the committed state.
    failed: bool,
    /// The open transaction's span and the sampled posts it links to, when tracing is on.
    trace: Option<TransactionTrace>,
    /// The messaging client metrics' handles for this instance's topics.
    messaging: MessagingHandles,
    /// Dead letters queued in the open transaction (sent once it commits).
    dead_letters_in_transaction: u64,
    metrics: Arc<Metrics>,
    watchdog: Arc<Watchdog>,
}

/// A transaction's span (kind consumer, by OpenTelemetry's messaging conventions for batch
/// processing) and what it will link to; made at the transaction's first record, started and
/// ended at its commit.
struct TransactionTrace {
    span: tracing::Span,
    links: Links,
    /// Records the transaction processed.
    records: u64,
}

impl TransactionTrace {
    fn new(settings: &Settings) -> TransactionTrace {
        let span = tracing::info_span!(
            "process tweets",
            otel.name = %format_args!("process {}", settings.topics.tweets),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %settings.topics.tweets,
            messaging.consumer.group.name = %settings.aggregator.group_id,
            messaging.batch.message_count = tracing::field::Empty,
        );
        TransactionTrace {
            span,
            links: Links::default(),
            records: 0,
        }
    }
}

/// The instance's handles of `trends_aggregator_messaging_client_*`
/// (trends_common::metrics::MessagingMetrics), made once.
struct MessagingHandles {
    /// Records consumed from the posts topic by the group.
    consumed: prometheus_client::metrics::counter::Counter,
    /// Counts records (checkpoints included) in committed transactions.
    sent_counts: prometheus_client::metrics::counter::Counter,
    /// Dead letters in committed transactions.
    sent_dead_letters: prometheus_client::metrics::counter::Counter,
    /// Each transaction's commit (the flush of its deliveries, then the commit).
    commit_duration: prometheus_client::metrics::histogram::Histogram,
}

impl MessagingHandles {
    fn new(metrics: &Metrics, settings: &Settings) -> MessagingHandles {
        let topics = &settings.topics;
        MessagingHandles {
            consumed: metrics
                .messaging
                .consumed(&topics.tweets, &settings.aggregator.group_id),
            sent_counts: metrics.messaging.sent(&topics.counts),
            sent_dead_letters: metrics.messaging.sent(&topics.dlq),
            commit_duration: metrics.messaging.operation("commit", &topics.counts),
        }
    }
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
            .finish_non_exhaustive()
    }
}

impl AggregatorContext {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A poisoned lock means a panic elsewhere; the state is still the best we have.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for AggregatorContext {
    /// librdkafka's statistics (every 5 s) give, per partition, its end (the last stable
    /// offset: the consumer reads committed records only) and the consumer's position (after
    /// the last record handed to the engine). Every owned partition is reported. librdkafka's
    /// own `consumer_lag` is of no use here: it is measured from offsets the consumer committed
    /// itself, and this one never does (offsets commit through the producer's transaction), so
    /// it is -1 in a new group and frozen at the assignment's committed offset otherwise.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let engine = self.engine();
        let partitions = statistics
            .topics
            .get(&engine.settings.topics.tweets)
            .map(|t| &t.partitions);
        let lag = engine
            .assigned
            .iter()
            .map(|&partition| {
                let lag = partitions.and_then(|ps| ps.get(&partition)).map_or(0, |p| {
                    // Before the first record arrives: where the fetch started.
                    let position = [p.app_offset, p.committed_offset, p.lo_offset]
                        .into_iter()
                        .find(|o| *o >= 0)
                        .unwrap_or(0);
                    (p.ls_offset - position).max(0)
                });
                (partition, lag)
            })
            .collect();
        engine.metrics.set_lag(lag);
    }
}

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

    /// Queues a record in the open transaction. A full queue is waited out by serving delivery
    /// reports, for at most [`TRANSACTION_CALL_TIMEOUT`]: a queue that does not drain means the
    /// broker is not taking writes, a transaction error like any other. A record refused for
    /// its content is [`Sent::Refused`]: the caller drops it, counts and logs it.
    fn send<K: ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, [u8]>,
    ) -> anyhow::Result<Sent> {
        let deadline = Instant::now() + TRANSACTION_CALL_TIMEOUT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(Sent::Queued),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    // Short: rdkafka's poll waits out its whole timeout (see `flush`).
                    self.producer.poll(FLUSH_POLL);
                }
                Err((e @ KafkaError::MessageProduction(code), _))
                    if CONTENT_ERRORS.contains(&code) =>
                {
                    return Ok(Sent::Refused(e));
                }
                Err((e, _)) => return Err(e).context("produce"),
            }
        }
    }

    /// Commits the open transaction if `partition`'s next record will need a restore first.
    ///
    /// **Why restores run outside transactions.** A restore reads a whole counts partition; it
    /// can take longer than `transaction.timeout.ms`, after which the broker aborts the open
    /// transaction and fences this producer: the instance would exit, restart, restore again
    /// inside a new transaction, and so on. With nothing open while it restores, a restore is
    /// bounded by its own limit (`aggregator.restore_timeout_secs`) only.
    fn commit_before_restore(
        &mut self,
        consumer: &AggregatorConsumer,
        partition: i32,
    ) -> anyhow::Result<()> {
        let needs_restore =
            self.assigned.contains(&partition) && !self.counters.contains_key(&partition);
        if needs_restore && self.in_transaction {
            self.commit(consumer).context("commit before restoring")?;
        }
        Ok(())
    }

    /// Waits (up to 30 s) until the producer's metadata has counts partition `partition`.
    fn await_counts_partition(&self, partition: i32) -> anyhow::Result<()> {
        let topic = self.settings.topics.counts.as_str();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metadata = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let known = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if usize::try_from(partition).is_ok_and(|p| p < known) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the producer does not see partition {partition} of {topic} ({known} known)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn process(&mut self, message: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let partition = message.partition();
        if !self.assigned.contains(&partition) {
            // Fetched before a revocation; its new owner will process it.
            return Ok(());
        }
        if trace_context::enabled() {
            let trace = self
                .trace
                .get_or_insert_with(|| TransactionTrace::new(&self.settings));
            trace.records += 1;
            trace.links.add_from(message.headers());
        }
        if !self.counters.contains_key(&partition) {
            let started = Instant::now();
            let lateness = millis(self.settings.aggregator.allowed_lateness);
            crate::ensure_counts_partition(&self.settings, partition)?;
            // The counts topic may just have grown (here or by another instance): the
            // transactional producer must know the partition before it writes to it (its
            // metadata cache refreshes on a request of its own). One metadata request.
            self.await_counts_partition(partition)?;
            let restore = || {
                let limit = self.settings.aggregator.restore_timeout + RESTORE_GRACE;
                let _armed = self.watchdog.arm("restore partition", limit);
                restore_partition(&self.settings, partition)
            };
            let mut restored = restore()?;
            let mut lost_at = None;
            if !restored.had_state
                && let Some(committed) = committed_offset(&self.settings, partition)?
            {
                // The partition's first committed transaction (its checkpoint and its offsets,
                // by the member that owned it before) may have landed between the read above
                // and the offset lookup: an instance that was paused sees exactly that. Read
                // once more before calling the state lost.
                restored = restore()?;
                lost_at = (!restored.had_state).then_some(committed);
            }
            if let Some(committed) = lost_at {
                let lost = LostState {
                    counts: self.settings.topics.counts.clone(),
                    tweets: self.settings.topics.tweets.clone(),
                    group: self.settings.aggregator.group_id.clone(),
                    partition,
                    committed,
                };
                if !self.settings.aggregator.allow_state_reset {
                    return Err(lost.into());
                }
                tracing::warn!(error = %lost, "aggregator.allow_state_reset is set: counting on from zero");
            }
            let counter = restored.counter.with_allowed_lateness(lateness);
            self.metrics.counts_records_skipped.inc_by(restored.skipped);
            self.metrics.restored(started.elapsed());
            self.counters.insert(partition, counter);
            self.tracks.insert(partition, restored.trends);
            self.evictions_seen.insert(partition, Evictions::default());
        }
        self.begin_if_needed()?;
        let max_skew_ms = millis(self.settings.aggregator.max_future_skew);
        let now = now_ms();
        let ingest = ingest_time(message.timestamp(), now, max_skew_ms);
        // The fast parser borrows the post's strings from the record: the same posts and the
        // same errors as `parse_post` (trends-core's property test and fuzz targets check it).
        let parsed = parse_post_ref(message.payload().unwrap_or_default()).and_then(|p| {
            p.event_time_at_ingest(ingest, max_skew_ms)
                .map(|event_time| (p, event_time))
        });
        match parsed {
            Ok((parsed, event_time)) => {
                self.metrics.record_age(now.saturating_sub(ingest));
                if event_time < parsed.event_time {
                    self.metrics.records_clamped.inc();
                }
                let tags = self
                    .extractor
                    .extract(&parsed, self.settings.aggregator.max_tags_per_post);
                self.metrics
                    .tags_dropped(DropReason::TooLong, u64::from(tags.too_long));
                if tags.over_limit > 0 {
                    self.metrics.posts_over_tag_limit.inc();
                    self.metrics
                        .tags_dropped(DropReason::OverLimit, u64::from(tags.over_limit));
                    tracing::debug!(
                        partition,
                        offset = message.offset(),
                        over_limit = tags.over_limit,
                        "a post with hashtags past the per-post limit"
                    );
                }
                if let Some(counter) = self.counters.get_mut(&partition) {
                    if counter.record(event_time, &tags.tags) == Recorded::Late {
                        self.metrics.records_late.inc();
                    }
                }
                if let Some(track) = self.tracks.get_mut(&partition) {
                    let author = Author::of(parsed.author_id.as_deref(), &parsed.id);
                    let lang = trends_core::lang::code(parsed.lang.as_deref());
                    track.record(event_time, lang, author, &tags.tags);
                }
            }
            Err(reason) => self.dead_letter(message, &reason)?,
        }
        self.metrics.records_processed.inc();
        self.messaging.consumed.inc();
        self.offsets.insert(partition, message.offset() + 1);
        Ok(())
    }

    /// Writes the record to the dead-letter topic with the reason, in the open transaction.
    /// A copy too large for a record is cut ([`DeadLetter`]); one the client refuses anyway is
    /// dropped, counted and logged. Either way processing goes on.
    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        reason: &PostError,
    ) -> anyhow::Result<()> {
        let reason_text = reason.to_string();
        let reason_text = truncate_utf8(&reason_text, MAX_REASON_BYTES);
        let partition_text = message.partition().to_string();
        let offset_text = message.offset().to_string();
        let letter = DeadLetter::of(
            message.key(),
            message.payload().unwrap_or_default(),
            self.limits.dead_letter_bytes,
        );
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq.error.code",
                value: Some(reason.code()),
            })
            .insert(Header {
                key: "dlq.error.reason",
                value: Some(&*reason_text),
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
        if let Some(cut) = &letter.truncated {
            headers = headers
                .insert(Header {
                    key: "dlq.truncated",
                    value: Some("true"),
                })
                .insert(Header {
                    key: "dlq.original.size",
                    value: Some(&cut.original_size.to_string()),
                })
                .insert(Header {
                    key: "dlq.original.sha256",
                    value: Some(&cut.original_sha256),
                });
            if let Some(size) = cut.original_key_size {
                headers = headers.insert(Header {
                    key: "dlq.original.key.size",
                    value: Some(&size.to_string()),
                });
            }
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.settings.topics.dlq)
            .payload(letter.value)
            .headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        match self.send(record)? {
            Sent::Queued => {
                self.dead_letters_in_transaction += 1;
                self.metrics.dead_lettered(reason.code());
                if letter.truncated.is_some() {
                    self.metrics.dead_letters_truncated.inc();
                }
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    code = reason.code(),
                    reason = &*reason_text,
                    truncated = letter.truncated.is_some(),
                    "record sent to the dead-letter topic"
                );
            }
            Sent::Refused(error) => {
                self.metrics.refused(RefusedTopic::Dlq);
                tracing::error!(
                    partition = message.partition(),
                    offset = message.offset(),
                    code = reason.code(),
                    reason = &*reason_text,
                    %error,
                    "the Kafka client refused the dead letter; the record is dropped"
                );
            }
        }
        Ok(())
    }

    /// Publishes every changed count and commits them with the consumed offsets, atomically.
    /// On failure the open transaction is aborted (if Kafka still allows it) and the error is
    /// returned: the caller stops, and the restarted instance restores committed state.
    fn commit(&mut self, consumer: &AggregatorConsumer) -> anyhow::Result<()> {
        if self.failed {
            anyhow::bail!("an earlier failure stopped this instance; it commits nothing more");
        }
        let result = self.try_commit(consumer);
        self.failed = result.is_err();
        if result.is_err() && self.in_transaction {
            self.in_transaction = false;
            match self.abort() {
                Ok(()) => {
                    self.metrics.transactions_aborted.inc();
                }
                Err(abort) => {
                    tracing::warn!(error = %abort, "cannot abort the transaction (fenced?)");
                    // Into the error: fencing.rs tells a fenced instance by this too.
                    return result.map_err(|e| {
                        e.context(format!(
                            "the transaction could not be aborted either: {abort}"
                        ))
                    });
                }
            }
        }
        result
    }

    /// Aborts the open transaction after a processing error (best effort; the process exits).
    fn commit_failed(&mut self) {
        self.failed = true;
        if std::mem::take(&mut self.in_transaction) && self.abort().is_ok() {
            self.metrics.transactions_aborted.inc();
        }
    }

    /// Aborts the open transaction. librdkafka's abort waits until the delivery reports of the
    /// messages it purges have been served, and rdkafka's `BaseProducer` serves them only in
    /// `poll` (`commit_transaction` flushes first, `abort_transaction` does not): one long call
    /// would block for its whole timeout and fail, with the consumer unpolled all that time. So
    /// the abort goes in short, resumable steps with a poll in between.
    fn abort(&self) -> Result<(), KafkaError> {
        let _armed = self.watchdog.arm(
            "abort transaction",
            TRANSACTION_CALL_TIMEOUT + WATCHDOG_GRACE,
        );
        let deadline = Instant::now() + TRANSACTION_CALL_TIMEOUT;
        loop {
            match self.producer.abort_transaction(Duration::from_millis(200)) {
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    self.producer.poll(Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    /// Waits until every record of the transaction is delivered, serving delivery reports in
    /// [`FLUSH_POLL`] slices.
    ///
    /// **Why not rdkafka's flush.** `commit_transaction` flushes first, but rdkafka's flush
    /// polls in slices of 100 ms and its `poll` never returns before its timeout: every commit
    /// waited 100 ms plus the EndTxn round trip (~1.5 ms), whenever the records were delivered.
    /// After this flush, the one inside `commit_transaction` finds nothing in flight and returns
    /// at once (`bench/drivers/src/bin/txn_latency.rs` measures both).
    fn flush(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + TRANSACTION_CALL_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} records still undelivered after {TRANSACTION_CALL_TIMEOUT:?}",
                    self.producer.in_flight_count()
                );
            }
            self.producer.poll(FLUSH_POLL);
        }
        Ok(())
    }

    /// [`Engine::produce_and_commit`] in the transaction's span, when tracing is on: the span
    /// links to the sampled posts the transaction counted, and its checkpoint records carry its
    /// context in their headers (trends_common::trace_context).
    fn try_commit(&mut self, consumer: &AggregatorConsumer) -> anyhow::Result<()> {
        let Some(mut trace) = self.trace.take() else {
            return self.produce_and_commit(consumer, None);
        };
        trace.links.attach_to(&trace.span);
        trace
            .span
            .record("messaging.batch.message_count", trace.records);
        let _entered = trace.span.enter();
        let headers = trace_context::headers_of_span(&trace.span);
        let result = self.produce_and_commit(consumer, headers.as_ref());
        if let Err(e) = &result {
            trace.span.record("otel.status_code", "error");
            trace
                .span
                .record("otel.status_description", format!("{e:#}").as_str());
        }
        result
    }

    fn produce_and_commit(
        &mut self,
        consumer: &AggregatorConsumer,
        headers: Option<&OwnedHeaders>,
    ) -> anyhow::Result<()> {
        // One partition's updates at a time, queued as they are taken: a catch-up's commit
        // holds one partition's records in memory (and librdkafka at most
        // PRODUCER_QUEUE_KBYTES of them), not every partition's at once. All go into the same
        // transaction, so this changes nothing of what is committed together.
        let partitions: Vec<i32> = self.counters.keys().copied().collect();
        let (mut entries, mut tags, mut produced) = (0usize, 0usize, 0usize);
        // Records queued in this transaction (counts and checkpoints), for the metric.
        let mut queued = 0u64;
        let started = Instant::now();
        for partition in partitions {
            let Some(counter) = self.counters.get_mut(&partition) else {
                continue;
            };
            let mut updates = counter.take_updates();
            if let Some(track) = self.tracks.get_mut(&partition) {
                updates.extend(track.take_updates());
                entries += track.entries();
                let evicted = track.dedup_evictions();
                let seen = self.dedup_evictions_seen.entry(partition).or_default();
                self.metrics
                    .author_dedup_evictions
                    .inc_by(evicted.saturating_sub(*seen));
                *seen = evicted;
            }
            let now = counter.evictions();
            entries += counter.entries();
            tags += counter.tags_held();
            let seen = self.evictions_seen.entry(partition).or_default();
            self.metrics.tags_evicted(
                EvictionScope::Bucket,
                now.bucket.saturating_sub(seen.bucket),
            );
            self.metrics.tags_evicted(
                EvictionScope::AllTime,
                now.all_time.saturating_sub(seen.all_time),
            );
            *seen = now;
            if !updates.is_empty() {
                self.begin_if_needed()?;
            }
            produced += updates.len();
            for record in &updates {
                let key = record.key.encode();
                let value = record.encode_value();
                let mut out = BaseRecord::to(&self.settings.topics.counts)
                    .partition(partition)
                    .key(key.as_str());
                if let Some(value) = value.as_deref() {
                    out = out.payload(value.as_bytes());
                }
                let sent = self.send(out)?;
                queued += u64::from(matches!(sent, Sent::Queued));
                if let Sent::Refused(error) = sent {
                    // Tags are capped at 140 characters and spellings at 8, so a counts record
                    // is a few KiB at most; this is a defect, not an input, and one record
                    // must not stop the partition.
                    self.metrics.refused(RefusedTopic::Counts);
                    tracing::error!(
                        partition,
                        key = &*truncate_utf8(&key, 200),
                        %error,
                        "the Kafka client refused a counts record; it is dropped"
                    );
                }
            }
        }
        self.metrics
            .state_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.metrics
            .state_tags
            .set(i64::try_from(tags).unwrap_or(i64::MAX));
        self.metrics
            .commit_phase(CommitPhase::Produce, started.elapsed());
        if !self.in_transaction {
            return Ok(());
        }
        // Each partition's input position, with its counts and in the same transaction as the
        // consumer offsets: a counts partition that has neither this nor a watermark while the
        // group has committed offsets lost its state (restore.rs).
        let checkpoints: Vec<(i32, i64)> = self.offsets.iter().map(|(p, o)| (*p, *o)).collect();
        for (partition, offset) in checkpoints {
            let record = CountsRecord::new(CountsKey::Checkpoint { partition }, Some(offset));
            let key = record.key.encode();
            let value = record.encode_value().unwrap_or_default();
            let mut out = BaseRecord::to(&self.settings.topics.counts)
                .partition(partition)
                .key(key.as_str())
                .payload(value.as_bytes());
            // Only the checkpoints carry the transaction's context: every transaction writes
            // them (one per input partition), so a traced one always reaches the API. On every
            // counts record the header cost a copy per record (librdkafka allocates headers per
            // message: peak memory +59% in a catch-up with 1% of posts sampled, BENCHMARKS.md)
            // and bytes on every live key of the compacted topic.
            if let Some(headers) = headers {
                out = out.headers(headers.clone());
            }
            let sent = self.send(out)?;
            queued += u64::from(matches!(sent, Sent::Queued));
            if let Sent::Refused(error) = sent {
                self.metrics.refused(RefusedTopic::Counts);
                tracing::error!(partition, %error, "the Kafka client refused a checkpoint record");
            }
        }
        if !self.offsets.is_empty() {
            let started = Instant::now();
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
            let _armed = self.watchdog.arm(
                "send offsets to transaction",
                TRANSACTION_CALL_TIMEOUT + WATCHDOG_GRACE,
            );
            self.producer
                .send_offsets_to_transaction(&tpl, &metadata, TRANSACTION_CALL_TIMEOUT)
                .context("send offsets to transaction")?;
            self.metrics
                .commit_phase(CommitPhase::SendOffsets, started.elapsed());
        }
        {
            // Our flush (up to the timeout), then rdkafka's, which finds nothing left, then the
            // commit itself (up to the timeout again).
            let _armed = self.watchdog.arm(
                "commit transaction",
                2 * TRANSACTION_CALL_TIMEOUT + WATCHDOG_GRACE,
            );
            let started = Instant::now();
            self.flush().context("flush before commit")?;
            self.producer
                .commit_transaction(TRANSACTION_CALL_TIMEOUT)
                .context("commit transaction")?;
            self.metrics
                .commit_phase(CommitPhase::Commit, started.elapsed());
            self.messaging
                .commit_duration
                .observe(started.elapsed().as_secs_f64());
        }
        self.in_transaction = false;
        self.offsets.clear();
        self.metrics.transactions_committed.inc();
        self.metrics.counts_records_produced.inc_by(queued);
        self.messaging.sent_counts.inc_by(queued);
        self.messaging
            .sent_dead_letters
            .inc_by(std::mem::take(&mut self.dead_letters_in_transaction));
        if produced >= RELEASE_MEMORY_AFTER_RECORDS {
            // The burst (the records above and librdkafka's copies of them) is freed now; hand
            // its pages back, or resident memory stays at the burst's peak for good.
            let started = Instant::now();
            release_free_memory();
            tracing::debug!(produced, elapsed = ?started.elapsed(), "released free memory after a large commit");
        }
        Ok(())
    }

    fn on_revoke(&mut self, consumer: &AggregatorConsumer, partitions: &[i32], lost: bool) {
        self.metrics.rebalances.inc();
        tracing::info!(?partitions, lost, "partitions revoked");
        if lost {
            // Another member may own these already: our open transaction would be fenced.
            self.failed = true;
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
            self.tracks.remove(partition);
            self.dedup_evictions_seen.remove(partition);
            self.evictions_seen.remove(partition);
        }
        self.assignment_changed();
    }

    fn assignment_changed(&self) {
        self.metrics.set_assigned(self.assigned.len());
        if self.assigned.is_empty() {
            tracing::info!(
                "this instance owns no partitions now (more instances than partitions, or a rebalance in progress)"
            );
        }
    }

    fn on_assign(&mut self, partitions: &[i32]) {
        self.metrics.rebalances.inc();
        tracing::info!(?partitions, "partitions assigned");
        self.assigned.extend(partitions.iter().copied());
        self.assignment_changed();
    }
}

fn transactional_producer(
    settings: &Settings,
    watchdog: &Watchdog,
) -> anyhow::Result<BaseProducer> {
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
            "queue.buffering.max.kbytes",
            PRODUCER_QUEUE_KBYTES.to_string(),
        )
        .set(
            "transaction.timeout.ms",
            millis(settings.aggregator.transaction_timeout).to_string(),
        )
        .create()
        .context("create producer")?;
    let _armed = watchdog.arm(
        "init transactions",
        TRANSACTION_CALL_TIMEOUT + WATCHDOG_GRACE,
    );
    producer
        .init_transactions(TRANSACTION_CALL_TIMEOUT)
        .context("init transactions")?;
    Ok(producer)
}

/// Runs the loop until `shutdown` is cancelled (then commits and leaves the group) or a fatal
/// error occurs. A blocking call that overruns its limit ends the process through `watchdog`.
pub fn run_blocking(
    settings: &Settings,
    limits: RecordLimits,
    shutdown: &CancellationToken,
    metrics: Arc<Metrics>,
    watchdog: Arc<Watchdog>,
) -> anyhow::Result<()> {
    let producer = transactional_producer(settings, &watchdog)?;
    let close_watchdog = Arc::clone(&watchdog);
    let engine = Engine {
        settings: settings.clone(),
        limits,
        producer,
        assigned: HashSet::new(),
        counters: HashMap::new(),
        tracks: HashMap::new(),
        extractor: TagExtractor::new(),
        evictions_seen: HashMap::new(),
        dedup_evictions_seen: HashMap::new(),
        offsets: BTreeMap::new(),
        in_transaction: false,
        failure: None,
        failed: false,
        trace: None,
        messaging: MessagingHandles::new(&metrics, settings),
        dead_letters_in_transaction: 0,
        metrics: metrics.clone(),
        watchdog,
    };
    let context = AggregatorContext {
        engine: Mutex::new(engine),
    };
    let a = &settings.aggregator;
    let mut consumer_config = client_config(&settings.kafka, "hashtag-aggregator");
    if a.static_membership {
        consumer_config.set("group.instance.id", settings.instance_id());
    }
    let consumer: AggregatorConsumer = consumer_config
        .set("group.id", &a.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "5000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Partitions added to the input are noticed (and the group rebalanced onto them)
        // within this, instead of librdkafka's default 5 minutes; one small metadata request.
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("session.timeout.ms", millis(a.session_timeout).to_string())
        .set(
            "heartbeat.interval.ms",
            (millis(a.session_timeout) / 4).max(100).to_string(),
        )
        .create_with_context(context)
        .context("create consumer")?;
    consumer
        .subscribe(&[settings.topics.tweets.as_str()])
        .context("subscribe")?;

    let result = consume(&consumer, settings, shutdown, &metrics);
    if let Err(e) = &result {
        tracing::warn!(error = %format!("{e:#}"), "stopping after an error; closing the consumer");
    }
    // rdkafka's consumer closes itself on drop and polls until librdkafka reports it closed,
    // with no limit. A close that never completes (seen once in CI, after a commit failed in a
    // rebalance: the process neither exited nor logged, and ignored SIGTERM for 120 s) would
    // hold the instance for ever; armed like every blocking Kafka call, it ends the process.
    let _armed = close_watchdog.arm("close consumer", CONSUMER_CLOSE_LIMIT);
    drop(consumer);
    result
}

/// The poll loop, until `shutdown` is cancelled (then a last commit) or an error.
fn consume(
    consumer: &AggregatorConsumer,
    settings: &Settings,
    shutdown: &CancellationToken,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let interval = settings.aggregator.commit_interval;
    let mut last_commit = Instant::now();
    let mut last_log = Instant::now();
    let mut logged_processed = 0;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                let result = {
                    let mut engine = consumer.context().engine();
                    engine
                        .commit_before_restore(consumer, message.partition())
                        .and_then(|()| engine.process(&message))
                };
                if let Err(e) = result {
                    consumer.context().engine().commit_failed();
                    return Err(e);
                }
            }
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PollExceeded) => {
                // librdkafka has left the group; the lost-partitions callback that follows
                // stops the loop. Said loudly, because it means processing stalled.
                tracing::error!(error = %e, "left the consumer group: the poll loop stalled past max.poll.interval.ms");
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
            None => {}
        }
        let mut engine = consumer.context().engine();
        if let Some(failure) = engine.failure.take() {
            return Err(failure);
        }
        if last_commit.elapsed() >= interval {
            engine.commit(consumer)?;
            last_commit = Instant::now();
        }
        let processed = metrics.records_processed.get();
        if last_log.elapsed() >= Duration::from_secs(10) && processed != logged_processed {
            tracing::info!(
                processed,
                dead_lettered = metrics.records_dead_lettered.get(),
                late = metrics.records_late.get(),
                transactions = metrics.transactions_committed.get(),
                partitions = engine.assigned.len(),
                "progress"
            );
            logged_processed = processed;
            last_log = Instant::now();
        }
    }
    consumer.context().engine().commit(consumer)?;
    consumer.unsubscribe();
    tracing::info!(
        processed = metrics.records_processed.get(),
        transactions = metrics.transactions_committed.get(),
        "hashtag-aggregator stopped cleanly"
    );
    Ok(())
}

/// When a record reached Kafka: its timestamp (on the topics the services create,
/// `LogAppendTime`, the broker's clock; on a `CreateTime` topic, what the writing client set),
/// but never later than this machine's clock plus `max_skew_ms` (a client can set any
/// `CreateTime`), and this machine's clock for a record without one.
pub fn ingest_time(timestamp: Timestamp, now: EpochMillis, max_skew_ms: i64) -> EpochMillis {
    let ceiling = now.saturating_add(max_skew_ms);
    match timestamp {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) if t >= 0 => t.min(ceiling),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_time_is_the_record_timestamp_bounded_by_the_clock() {
        let now = 1_795_341_600_000;
        let skew = 300_000;
        assert_eq!(
            ingest_time(Timestamp::LogAppendTime(now - 5), now, skew),
            now - 5
        );
        // A slow local clock does not matter within the skew: the record's time counts.
        assert_eq!(
            ingest_time(Timestamp::CreateTime(now + 200_000), now, skew),
            now + 200_000
        );
        // A client-set time far ahead is capped at this clock plus the skew.
        assert_eq!(
            ingest_time(Timestamp::CreateTime(i64::MAX), now, skew),
            now + skew
        );
        assert_eq!(ingest_time(Timestamp::NotAvailable, now, skew), now);
        assert_eq!(ingest_time(Timestamp::CreateTime(-1), now, skew), now);
    }
}
