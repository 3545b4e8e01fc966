//! The aggregator's metrics, served as Prometheus text on `aggregator.metrics_addr`
//! (`GET /metrics`).
//!
//! Names follow `<namespace>_<name>_<unit>_total` for counters:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_aggregator_records_processed_total` | counter | input records consumed (valid or not) |
//! | `trends_aggregator_records_late_total` | counter | valid posts older than the allowed lateness: counted in `all` only |
//! | `trends_aggregator_records_dead_lettered_total` | counter | records sent to the dead-letter topic |
//! | `trends_aggregator_transactions_committed_total` | counter | Kafka transactions committed |
//! | `trends_aggregator_transactions_aborted_total` | counter | Kafka transactions aborted |
//! | `trends_aggregator_rebalances_total` | counter | partition assignments and revocations |
//! | `trends_aggregator_partitions_restored_total` | counter | partition states rebuilt from the counts topic |
//! | `trends_aggregator_restore_duration_seconds_total` | counter | time spent restoring |
//! | `trends_aggregator_transaction_duration_seconds_total` | counter, per `phase` | time spent committing, by phase: `produce` (queueing the changed counts), `send_offsets` (adding the input offsets to the transaction), `commit` (flush and end the transaction); divided by `transactions_committed_total`, the mean cost of a commit |
//! | `trends_aggregator_records_clamped_total` | counter | posts whose `created_at` was ahead of their record's timestamp (within `max_future_skew_secs`): counted at their ingest time instead |
//! | `trends_aggregator_tags_dropped_total` | counter, per `reason` | hashtag occurrences not counted: `too_long` (over 140 characters: not a hashtag), `over_limit` (after the post's first `max_tags_per_post` distinct tags, or its first 1,024 hashtags) |
//! | `trends_aggregator_posts_over_tag_limit_total` | counter | posts that had hashtags past the limit |
//! | `trends_aggregator_dead_letters_truncated_total` | counter | dead letters written truncated (`dlq.truncated=true`) because the copy would not fit a record |
//! | `trends_aggregator_records_refused_total` | counter, per `topic` (`counts`, `dlq`) | records the Kafka client refused for their content (size, format): dropped and logged, never retried |
//! | `trends_aggregator_counts_records_skipped_total` | counter | counts-topic records a restore skipped because they do not decode (logged with their offset) |
//! | `trends_aggregator_assigned_partitions` | gauge | input partitions this instance owns |
//! | `trends_aggregator_consumer_lag_records` | gauge, per `partition` | high watermark minus position |
//!
//! Counters are plain atomics: the engine thread increments, the HTTP task reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared metric values.
#[derive(Debug, Default)]
pub struct Metrics {
    pub records_processed: AtomicU64,
    pub records_late: AtomicU64,
    pub records_dead_lettered: AtomicU64,
    pub transactions_committed: AtomicU64,
    pub transactions_aborted: AtomicU64,
    pub rebalances: AtomicU64,
    pub partitions_restored: AtomicU64,
    pub records_clamped: AtomicU64,
    pub tags_too_long: AtomicU64,
    pub tags_over_limit: AtomicU64,
    pub posts_over_tag_limit: AtomicU64,
    pub dead_letters_truncated: AtomicU64,
    pub counts_records_refused: AtomicU64,
    pub dead_letters_refused: AtomicU64,
    pub counts_records_skipped: AtomicU64,
    restore_micros: AtomicU64,
    /// Micros spent per commit phase, in [`CommitPhase`] order.
    commit_phase_micros: [AtomicU64; 3],
    assigned_partitions: AtomicU64,
    lag: Mutex<BTreeMap<i32, i64>>,
}

/// A phase of committing a transaction, timed separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPhase {
    /// Queueing the changed counts in the producer.
    Produce = 0,
    /// `send_offsets_to_transaction`.
    SendOffsets = 1,
    /// `commit_transaction` (flush, then end the transaction).
    Commit = 2,
}

/// A counter family with one label: name, help, label name, and (label value, counter) pairs.
type LabelledFamily<'a> = (&'a str, &'a str, &'a str, [(&'a str, &'a AtomicU64); 2]);

const COMMIT_PHASE_NAMES: [&str; 3] = ["produce", "send_offsets", "commit"];

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn restored(&self, took: Duration) {
        inc(&self.partitions_restored);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.restore_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Adds the time one commit phase took.
    pub fn commit_phase(&self, phase: CommitPhase, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_phase_micros[phase as usize].fetch_add(micros, Ordering::Relaxed);
    }

    /// Sets the assigned-partition gauge (at once on every assignment change).
    pub fn set_assigned(&self, partitions: usize) {
        self.assigned_partitions
            .store(partitions as u64, Ordering::Relaxed);
    }

    /// Replaces the per-partition lag (one entry per owned partition).
    pub fn set_lag(&self, lag: BTreeMap<i32, i64>) {
        self.set_assigned(lag.len());
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "records_processed_total",
                "Input records consumed.",
                &self.records_processed,
            ),
            (
                "records_late_total",
                "Posts older than the allowed lateness, counted in all only.",
                &self.records_late,
            ),
            (
                "records_dead_lettered_total",
                "Records sent to the dead-letter topic.",
                &self.records_dead_lettered,
            ),
            (
                "transactions_committed_total",
                "Kafka transactions committed.",
                &self.transactions_committed,
            ),
            (
                "transactions_aborted_total",
                "Kafka transactions aborted.",
                &self.transactions_aborted,
            ),
            (
                "rebalances_total",
                "Partition assignments and revocations.",
                &self.rebalances,
            ),
            (
                "partitions_restored_total",
                "Partition states rebuilt from the counts topic.",
                &self.partitions_restored,
            ),
            (
                "records_clamped_total",
                "Posts dated ahead of their ingest time, counted at their ingest time.",
                &self.records_clamped,
            ),
            (
                "posts_over_tag_limit_total",
                "Posts that had hashtags past the per-post limit.",
                &self.posts_over_tag_limit,
            ),
            (
                "dead_letters_truncated_total",
                "Dead letters written truncated because the copy would not fit a record.",
                &self.dead_letters_truncated,
            ),
            (
                "counts_records_skipped_total",
                "Counts-topic records a restore skipped because they do not decode.",
                &self.counts_records_skipped,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP trends_aggregator_{name} {help}");
            let _ = writeln!(out, "# TYPE trends_aggregator_{name} counter");
            let _ = writeln!(
                out,
                "trends_aggregator_{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let labelled: [LabelledFamily<'_>; 2] = [
            (
                "tags_dropped_total",
                "Hashtag occurrences not counted, by reason.",
                "reason",
                [
                    ("too_long", &self.tags_too_long),
                    ("over_limit", &self.tags_over_limit),
                ],
            ),
            (
                "records_refused_total",
                "Records the Kafka client refused for their content, dropped, by topic.",
                "topic",
                [
                    ("counts", &self.counts_records_refused),
                    ("dlq", &self.dead_letters_refused),
                ],
            ),
        ];
        for (name, help, label, values) in labelled {
            let _ = writeln!(out, "# HELP trends_aggregator_{name} {help}");
            let _ = writeln!(out, "# TYPE trends_aggregator_{name} counter");
            for (value_name, value) in values {
                let _ = writeln!(
                    out,
                    "trends_aggregator_{name}{{{label}=\"{value_name}\"}} {}",
                    value.load(Ordering::Relaxed)
                );
            }
        }
        let seconds = self.restore_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP trends_aggregator_restore_duration_seconds_total Time spent restoring partition state."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_aggregator_restore_duration_seconds_total counter"
        );
        let _ = writeln!(
            out,
            "trends_aggregator_restore_duration_seconds_total {seconds}"
        );
        let _ = writeln!(
            out,
            "# HELP trends_aggregator_transaction_duration_seconds_total Time spent committing transactions, by phase."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_aggregator_transaction_duration_seconds_total counter"
        );
        for (name, micros) in COMMIT_PHASE_NAMES.iter().zip(&self.commit_phase_micros) {
            let _ = writeln!(
                out,
                "trends_aggregator_transaction_duration_seconds_total{{phase=\"{name}\"}} {}",
                micros.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP trends_aggregator_assigned_partitions Input partitions owned by this instance."
        );
        let _ = writeln!(out, "# TYPE trends_aggregator_assigned_partitions gauge");
        let _ = writeln!(
            out,
            "trends_aggregator_assigned_partitions {}",
            self.assigned_partitions.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP trends_aggregator_consumer_lag_records Records between the consumer position and the high watermark."
        );
        let _ = writeln!(out, "# TYPE trends_aggregator_consumer_lag_records gauge");
        for (partition, lag) in self.lag.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "trends_aggregator_consumer_lag_records{{partition=\"{partition}\"}} {lag}"
            );
        }
        out
    }
}

/// Serves `GET /metrics` and `GET /healthz` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_in_prometheus_text() {
        let metrics = Metrics::default();
        inc(&metrics.records_processed);
        inc(&metrics.records_processed);
        metrics.restored(Duration::from_millis(1500));
        metrics.set_lag(BTreeMap::from([(0, 5), (3, 0)]));
        metrics.commit_phase(CommitPhase::Commit, Duration::from_millis(250));
        metrics.commit_phase(CommitPhase::Commit, Duration::from_millis(250));
        let text = metrics.render();
        assert!(
            text.contains("trends_aggregator_records_processed_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("trends_aggregator_restore_duration_seconds_total 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("trends_aggregator_assigned_partitions 2\n"),
            "{text}"
        );
        assert!(
            text.contains("trends_aggregator_consumer_lag_records{partition=\"0\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "trends_aggregator_transaction_duration_seconds_total{phase=\"commit\"} 0.5\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "trends_aggregator_transaction_duration_seconds_total{phase=\"send_offsets\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("trends_aggregator_tags_dropped_total{reason=\"too_long\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("trends_aggregator_records_refused_total{topic=\"dlq\"} 0\n"),
            "{text}"
        );
        assert!(text.lines().filter(|l| l.starts_with("# TYPE")).count() >= 16);
    }
}
