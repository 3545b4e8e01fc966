//! The aggregator's metrics, declared once on a `prometheus-client` registry and served as
//! Prometheus (OpenMetrics) text on `aggregator.metrics_addr` (`GET /metrics`).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_aggregator_records_processed_total` | counter | input records consumed (valid or not) |
//! | `trends_aggregator_records_late_total` | counter | valid posts older than the allowed lateness: counted in `all` only |
//! | `trends_aggregator_records_dead_lettered_total` | counter | records sent to the dead-letter topic |
//! | `trends_aggregator_author_dedup_evictions_total` | counter | author fingerprints the trend track forgot to make room (`aggregator.author_dedup_slots`); each may let an author count twice |
//! | `trends_aggregator_records_clamped_total` | counter | posts whose `created_at` was ahead of their record's timestamp (within `max_future_skew_secs`): counted at their ingest time instead |
//! | `trends_aggregator_tags_dropped_total` | counter, per `reason` | hashtag occurrences not counted: `too_long` (over 140 characters: not a hashtag), `over_limit` (after the post's first `max_tags_per_post` distinct tags, or its first 1,024 hashtags) |
//! | `trends_aggregator_posts_over_tag_limit_total` | counter | posts that had hashtags past the limit |
//! | `trends_aggregator_dead_letters_truncated_total` | counter | dead letters written truncated (`dlq.truncated=true`) because the copy would not fit a record |
//! | `trends_aggregator_records_refused_total` | counter, per `topic` (`counts`, `dlq`) | records the Kafka client refused for their content (size, format): dropped and logged, never retried |
//! | `trends_aggregator_counts_records_skipped_total` | counter | counts-topic records a restore skipped because they do not decode (logged with their offset) |
//! | `trends_aggregator_transactions_committed_total` | counter | Kafka transactions committed |
//! | `trends_aggregator_transactions_aborted_total` | counter | Kafka transactions aborted |
//! | `trends_aggregator_rebalances_total` | counter | partition assignments and revocations |
//! | `trends_aggregator_partitions_restored_total` | counter | partition states rebuilt from the counts topic |
//! | `trends_aggregator_restore_duration_seconds` | histogram | how long rebuilding one partition's state took |
//! | `trends_aggregator_transaction_duration_seconds` | histogram, per `phase` | one commit's phases: `produce` (queueing the changed counts), `send_offsets` (adding the input offsets to the transaction), `commit` (flush and end the transaction) |
//! | `trends_aggregator_assigned_partitions` | gauge | input partitions this instance owns |
//! | `trends_aggregator_consumer_lag_records` | gauge, per `partition` | last stable offset minus position |
//! | `trends_aggregator_record_age_seconds` | histogram | freshness: per counted post, now minus its Kafka timestamp, when it is counted |
//! | `trends_aggregator_dead_letters_total` | counter, per `code` | dead letters written, by their `dlq.error.code` |
//! | `trends_aggregator_counts_records_produced_total` | counter | counts records (with checkpoints) in committed transactions |
//! | `trends_aggregator_resident_memory_bytes` | gauge | the process's resident memory (`VmRSS`), read at each scrape |
//! | `trends_aggregator_messaging_client_consumed_messages_total` | counter, per `messaging_destination_name`, `messaging_consumer_group_name` | posts consumed (the OpenTelemetry messaging convention's name; trends_common::metrics::MessagingMetrics) |
//! | `trends_aggregator_messaging_client_sent_messages_total` | counter, per `messaging_destination_name` | counts records (checkpoints included) and dead letters in committed transactions |
//! | `trends_aggregator_messaging_client_operation_duration_seconds` | histogram, `messaging_operation_name="commit"` | one transaction's commit (its flush, then the commit call) |
//! | `trends_aggregator_trace_spans_{exported,dropped,export_failed}_total` | counters | spans exported over OTLP, dropped at a full queue, lost in failed exports (trends_common::telemetry) |
//! | `trends_aggregator_start_time_seconds` | gauge | when the metrics were made (the process start), Unix seconds: its changes count restarts |
//!
//! Why histograms for the durations: an operator wants to see the slow commits and restores
//! (their tail), which a running total hides; `_sum / _count` still gives the mean.
//!
//! **Record age.** Observed once per counted post (a valid post, late or not; dead letters are
//! not counted), as `now − the record's Kafka timestamp` with the clock reading the engine
//! takes anyway for the post's ingest time. One observation is a short uncontended lock and a
//! scan of 14 bounds (tens of nanoseconds: well under 1 % of a core at 100k posts/s). A post is
//! visible downstream once its transaction commits, up to `aggregator.commit_interval_ms` plus
//! the commit's duration later (`…_transaction_duration_seconds`): the age at count time is the
//! part that grows when the aggregator falls behind, which is what the alert watches. An
//! aborted transaction's posts were observed already; the process exits on an abort and counts
//! them again after its restart, so they are observed twice, on a path that is rare and loud.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use trends_common::metrics::Registry;

/// A phase of committing a transaction, timed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitPhase {
    /// Queueing the changed counts in the producer.
    Produce,
    /// `send_offsets_to_transaction`.
    SendOffsets,
    /// `commit_transaction` (flush, then end the transaction).
    Commit,
}

/// Why a hashtag occurrence was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    TooLong,
    OverLimit,
}

/// Where a tag was evicted from (the counter's bounded tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionScope {
    Bucket,
    AllTime,
}

/// The topic a refused record was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusedTopic {
    Counts,
    Dlq,
}

/// Label values as the README names them.
macro_rules! label_values {
    ($($type:ty { $($variant:ident => $name:literal),+ $(,)? })+) => {$(
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                use std::fmt::Write as _;
                encoder.write_str(match self { $(Self::$variant => $name),+ })
            }
        }
    )+};
}

label_values! {
    CommitPhase { Produce => "produce", SendOffsets => "send_offsets", Commit => "commit" }
    DropReason { TooLong => "too_long", OverLimit => "over_limit" }
    RefusedTopic { Counts => "counts", Dlq => "dlq" }
    EvictionScope { Bucket => "bucket", AllTime => "all" }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScopeLabel {
    scope: EvictionScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabel {
    phase: CommitPhase,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: DropReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TopicLabel {
    topic: RefusedTopic,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PartitionLabel {
    partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// The dead-letter codes (`trends_core::post::PostError::code`), whose series exist from the
/// start at 0. A code not listed still gets its series at its first dead letter.
pub const DEAD_LETTER_CODES: [&str; 5] = [
    "not_utf8",
    "invalid_json",
    "bad_timestamp",
    "empty",
    "future_timestamp",
];

/// Buckets of a record's age, in seconds: 100 ms (a pipeline keeping up) to an hour (a long
/// catch-up or an outage).
pub const RECORD_AGE_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets of a transaction phase: 1 ms to ~65 s, doubling.
fn phase_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The aggregator's metric handles. Cheap to share (`Arc`); every handle updates atomically.
#[derive(Debug)]
pub struct Metrics {
    pub records_processed: Counter,
    pub records_late: Counter,
    pub records_dead_lettered: Counter,
    pub records_clamped: Counter,
    pub author_dedup_evictions: Counter,
    pub posts_over_tag_limit: Counter,
    pub dead_letters_truncated: Counter,
    pub counts_records_skipped: Counter,
    pub transactions_committed: Counter,
    pub transactions_aborted: Counter,
    pub rebalances: Counter,
    pub partitions_restored: Counter,
    tags_dropped: Family<ReasonLabel, Counter>,
    tags_evicted: Family<ScopeLabel, Counter>,
    pub state_entries: Gauge,
    pub state_tags: Gauge,
    records_refused: Family<TopicLabel, Counter>,
    restore_duration: Histogram,
    transaction_duration: Family<PhaseLabel, Histogram>,
    assigned_partitions: Gauge,
    lag: Family<PartitionLabel, Gauge>,
    pub counts_records_produced: Counter,
    record_age: Histogram,
    dead_letters: Family<CodeLabel, Counter>,
    /// The messaging client families (trends_common::metrics::MessagingMetrics).
    pub messaging: trends_common::metrics::MessagingMetrics,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family, registered on a fresh `trends_aggregator` registry.
    pub fn new() -> Metrics {
        let mut registry = trends_common::metrics::registry("trends_aggregator");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let records_processed =
            counter(&mut registry, "records_processed", "Input records consumed");
        let records_late = counter(
            &mut registry,
            "records_late",
            "Posts older than the allowed lateness, counted in all only",
        );
        let records_dead_lettered = counter(
            &mut registry,
            "records_dead_lettered",
            "Records sent to the dead-letter topic",
        );
        let records_clamped = counter(
            &mut registry,
            "records_clamped",
            "Posts dated ahead of their ingest time, counted at their ingest time",
        );
        let author_dedup_evictions = counter(
            &mut registry,
            "author_dedup_evictions",
            "Author fingerprints forgotten to make room in a full dedup table",
        );
        let posts_over_tag_limit = counter(
            &mut registry,
            "posts_over_tag_limit",
            "Posts that had hashtags past the per-post limit",
        );
        let dead_letters_truncated = counter(
            &mut registry,
            "dead_letters_truncated",
            "Dead letters written truncated because the copy would not fit a record",
        );
        let counts_records_skipped = counter(
            &mut registry,
            "counts_records_skipped",
            "Counts-topic records a restore skipped because they do not decode",
        );
        let transactions_committed = counter(
            &mut registry,
            "transactions_committed",
            "Kafka transactions committed",
        );
        let transactions_aborted = counter(
            &mut registry,
            "transactions_aborted",
            "Kafka transactions aborted",
        );
        let rebalances = counter(
            &mut registry,
            "rebalances",
            "Partition assignments and revocations",
        );
        let partitions_restored = counter(
            &mut registry,
            "partitions_restored",
            "Partition states rebuilt from the counts topic",
        );
        let tags_dropped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "tags_dropped",
            "Hashtag occurrences not counted, by reason",
            tags_dropped.clone(),
        );
        let tags_evicted = Family::<ScopeLabel, Counter>::default();
        registry.register(
            "tags_evicted",
            "Tags evicted from a full bucket or all-time table (their counts become estimates), by scope",
            tags_evicted.clone(),
        );
        for scope in [EvictionScope::Bucket, EvictionScope::AllTime] {
            let _ = tags_evicted.get_or_create(&ScopeLabel { scope });
        }
        let state_entries = Gauge::default();
        registry.register(
            "state_entries",
            "(bucket, tag) and (all, tag) counts held for the owned partitions",
            state_entries.clone(),
        );
        let state_tags = Gauge::default();
        registry.register(
            "state_tags",
            "Distinct tags held for the owned partitions (summed over partitions)",
            state_tags.clone(),
        );
        let records_refused = Family::<TopicLabel, Counter>::default();
        registry.register(
            "records_refused",
            "Records the Kafka client refused for their content, dropped, by topic",
            records_refused.clone(),
        );
        // Both label values exist from the start, at 0: an alert on them needs the series.
        for reason in [DropReason::TooLong, DropReason::OverLimit] {
            let _ = tags_dropped.get_or_create(&ReasonLabel { reason });
        }
        for topic in [RefusedTopic::Counts, RefusedTopic::Dlq] {
            let _ = records_refused.get_or_create(&TopicLabel { topic });
        }
        // 10 ms to ~160 s, doubling: a restore is one pass over a compacted partition.
        let restore_duration = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        registry.register(
            "restore_duration_seconds",
            "Time to rebuild one partition's state from the counts topic",
            restore_duration.clone(),
        );
        let transaction_duration =
            Family::<PhaseLabel, Histogram>::new_with_constructor(phase_buckets as fn() -> _);
        registry.register(
            "transaction_duration_seconds",
            "Time one commit spent in each phase",
            transaction_duration.clone(),
        );
        for phase in [
            CommitPhase::Produce,
            CommitPhase::SendOffsets,
            CommitPhase::Commit,
        ] {
            let _ = transaction_duration.get_or_create(&PhaseLabel { phase });
        }
        let assigned_partitions = Gauge::default();
        registry.register(
            "assigned_partitions",
            "Input partitions owned by this instance",
            assigned_partitions.clone(),
        );
        let lag = Family::<PartitionLabel, Gauge>::default();
        registry.register(
            "consumer_lag_records",
            "Records between the consumer position and the last stable offset",
            lag.clone(),
        );
        let counts_records_produced = counter(
            &mut registry,
            "counts_records_produced",
            "Counts records, checkpoints included, in committed transactions",
        );
        let record_age = Histogram::new(RECORD_AGE_BUCKETS);
        registry.register(
            "record_age_seconds",
            "Age of each counted post when counted: now minus its Kafka timestamp",
            record_age.clone(),
        );
        let dead_letters = Family::<CodeLabel, Counter>::default();
        registry.register(
            "dead_letters",
            "Dead letters written, by dlq.error.code",
            dead_letters.clone(),
        );
        for code in DEAD_LETTER_CODES {
            let _ = dead_letters.get_or_create(&CodeLabel { code });
        }
        let messaging = trends_common::metrics::MessagingMetrics::register(&mut registry);
        registry.register_collector(Box::new(trends_common::metrics::ResidentMemory));
        registry.register_collector(Box::new(trends_common::telemetry::TraceSpanCounters));
        let start_time = Gauge::<i64>::default();
        start_time.set(trends_common::time::now_ms() / 1000);
        registry.register(
            "start_time_seconds",
            "When this instance started, in Unix seconds",
            start_time,
        );
        Metrics {
            records_processed,
            records_late,
            records_dead_lettered,
            records_clamped,
            author_dedup_evictions,
            posts_over_tag_limit,
            dead_letters_truncated,
            counts_records_skipped,
            transactions_committed,
            transactions_aborted,
            rebalances,
            partitions_restored,
            tags_dropped,
            tags_evicted,
            state_entries,
            state_tags,
            records_refused,
            restore_duration,
            transaction_duration,
            assigned_partitions,
            lag,
            counts_records_produced,
            record_age,
            dead_letters,
            messaging,
            registry: Arc::new(registry),
        }
    }

    /// The registry, for the `/metrics` server.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// The exposition (what `/metrics` serves).
    pub fn render(&self) -> String {
        trends_common::metrics::encode(&self.registry)
    }

    /// Counts hashtag occurrences dropped for `reason`.
    pub fn tags_dropped(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.tags_dropped
                .get_or_create(&ReasonLabel { reason })
                .inc_by(n);
        }
    }

    /// Counts `n` tags evicted from `scope`.
    pub fn tags_evicted(&self, scope: EvictionScope, n: u64) {
        if n > 0 {
            self.tags_evicted
                .get_or_create(&ScopeLabel { scope })
                .inc_by(n);
        }
    }

    /// Counts one record the client refused for its content.
    pub fn refused(&self, topic: RefusedTopic) {
        self.records_refused
            .get_or_create(&TopicLabel { topic })
            .inc();
    }

    /// One partition's state was restored in `took`.
    pub fn restored(&self, took: Duration) {
        self.partitions_restored.inc();
        self.restore_duration.observe(took.as_secs_f64());
    }

    /// One commit spent `took` in `phase`.
    pub fn commit_phase(&self, phase: CommitPhase, took: Duration) {
        self.transaction_duration
            .get_or_create(&PhaseLabel { phase })
            .observe(took.as_secs_f64());
    }

    /// A post was counted `age_ms` after its Kafka timestamp (negative ages, from a clock
    /// behind the broker's, count as 0).
    pub fn record_age(&self, age_ms: i64) {
        // Milliseconds to seconds: exact enough for buckets of 100 ms and up.
        #[allow(clippy::cast_precision_loss)]
        self.record_age.observe(age_ms.max(0) as f64 / 1000.0);
    }

    /// Counts one dead letter written with `code`.
    pub fn dead_lettered(&self, code: &'static str) {
        self.records_dead_lettered.inc();
        self.dead_letters.get_or_create(&CodeLabel { code }).inc();
    }

    /// Sets the assigned-partition gauge (at once on every assignment change).
    pub fn set_assigned(&self, partitions: usize) {
        self.assigned_partitions
            .set(i64::try_from(partitions).unwrap_or(i64::MAX));
    }

    /// Replaces the per-partition lag (one entry per owned partition; partitions no longer
    /// owned disappear).
    pub fn set_lag(&self, lag: BTreeMap<i32, i64>) {
        self.set_assigned(lag.len());
        self.lag.clear();
        for (partition, records) in lag {
            self.lag
                .get_or_create(&PartitionLabel { partition })
                .set(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_in_prometheus_text() {
        let metrics = Metrics::new();
        metrics.records_processed.inc();
        metrics.records_processed.inc();
        metrics.restored(Duration::from_millis(1500));
        metrics.set_lag(BTreeMap::from([(0, 5), (3, 0)]));
        metrics.set_lag(BTreeMap::from([(0, 5), (4, 1)]));
        metrics.commit_phase(CommitPhase::Commit, Duration::from_millis(250));
        metrics.commit_phase(CommitPhase::Commit, Duration::from_millis(250));
        metrics.tags_dropped(DropReason::OverLimit, 7);
        metrics.tags_evicted(EvictionScope::AllTime, 3);
        metrics.state_entries.set(12);
        metrics.record_age(250);
        metrics.record_age(-5);
        metrics.record_age(7_200_000);
        metrics.dead_lettered("invalid_json");
        metrics.counts_records_produced.inc_by(4);
        let text = metrics.render();
        for line in [
            "trends_aggregator_records_processed_total 2\n",
            "trends_aggregator_partitions_restored_total 1\n",
            "trends_aggregator_restore_duration_seconds_sum 1.5\n",
            "trends_aggregator_restore_duration_seconds_count 1\n",
            "trends_aggregator_assigned_partitions 2\n",
            "trends_aggregator_consumer_lag_records{partition=\"0\"} 5\n",
            "trends_aggregator_consumer_lag_records{partition=\"4\"} 1\n",
            "trends_aggregator_transaction_duration_seconds_sum{phase=\"commit\"} 0.5\n",
            "trends_aggregator_transaction_duration_seconds_count{phase=\"commit\"} 2\n",
            "trends_aggregator_transaction_duration_seconds_count{phase=\"send_offsets\"} 0\n",
            "trends_aggregator_tags_dropped_total{reason=\"too_long\"} 0\n",
            "trends_aggregator_tags_dropped_total{reason=\"over_limit\"} 7\n",
            "trends_aggregator_records_refused_total{topic=\"dlq\"} 0\n",
            "trends_aggregator_tags_evicted_total{scope=\"all\"} 3\n",
            "trends_aggregator_tags_evicted_total{scope=\"bucket\"} 0\n",
            "trends_aggregator_state_entries 12\n",
            "trends_aggregator_record_age_seconds_count 3\n",
            "trends_aggregator_record_age_seconds_sum 7200.25\n",
            "trends_aggregator_record_age_seconds_bucket{le=\"0.1\"} 1\n",
            "trends_aggregator_record_age_seconds_bucket{le=\"0.25\"} 2\n",
            "trends_aggregator_record_age_seconds_bucket{le=\"3600.0\"} 2\n",
            "trends_aggregator_record_age_seconds_bucket{le=\"+Inf\"} 3\n",
            "trends_aggregator_records_dead_lettered_total 1\n",
            "trends_aggregator_dead_letters_total{code=\"invalid_json\"} 1\n",
            "trends_aggregator_dead_letters_total{code=\"empty\"} 0\n",
            "trends_aggregator_counts_records_produced_total 4\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            text.lines()
                .filter(|l| l.starts_with("# HELP"))
                .all(|l| l.ends_with('.') && !l.ends_with("..")),
            "one full stop at the end of every HELP (the library adds it):\n{text}"
        );
        assert!(
            !text.contains("partition=\"3\""),
            "a partition no longer owned is gone:\n{text}"
        );
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("trends_aggregator_resident_memory_bytes "))
            .and_then(|v| v.parse::<i64>().ok());
        assert!(
            rss.is_some_and(|bytes| bytes > 1 << 20),
            "a resident memory of more than 1 MiB:\n{text}"
        );
        assert!(
            text.lines()
                .find_map(|l| l.strip_prefix("trends_aggregator_start_time_seconds "))
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|t| t > 1_700_000_000),
            "{text}"
        );
        // 26 families, and the 3 trace span counters (the messaging families have no series
        // until the engine makes its handles).
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 29);
    }

    #[test]
    fn two_instances_do_not_share_metrics() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.records_processed.inc();
        assert_eq!(b.records_processed.get(), 0);
    }
}
