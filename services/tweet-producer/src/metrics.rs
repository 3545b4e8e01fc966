//! The producer's metrics, served as Prometheus text on `producer.metrics_addr`
//! (`GET /metrics`), labelled with the source (`source="bluesky"`, …).
//!
//! Why these: a live source fails in ways a log line per event cannot show. Comparing
//! received with published tells whether posts are lost to filters, duplicates or malformed
//! input, and a rising reconnect count shows a flapping connection before trends go stale.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_producer_events_received_total` | counter | posts a source produced (before dedup and filters) |
//! | `trends_producer_events_published_total` | counter | posts committed to Kafka (in a committed transaction) |
//! | `trends_producer_events_filtered_total` | counter, per `reason` (`keyword`, `language`) | posts dropped by a filter |
//! | `trends_producer_events_duplicate_total` | counter | re-delivered posts dropped by the dedup |
//! | `trends_producer_events_malformed_total` | counter | input the source could not use (bad frames, bad lines, lines over the size limit) |
//! | `trends_producer_events_oversized_total` | counter | posts (or Jetstream frames) over `source.max_post_bytes`, skipped |
//! | `trends_producer_transactions_committed_total` | counter | transactions committed (posts and position together) |
//! | `trends_producer_reconnects_total` | counter | connection attempts of a live source after the first |
//!
//! Counters are plain atomics: the source and publisher tasks increment, the HTTP task reads.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::publisher::Stats;

/// Shared metric values of one producer (one source).
#[derive(Debug)]
pub struct Metrics {
    source: &'static str,
    /// The publisher's counters: `published` is its committed count.
    stats: Arc<Stats>,
    pub received: AtomicU64,
    pub filtered_keyword: AtomicU64,
    pub filtered_language: AtomicU64,
    pub duplicates: AtomicU64,
    pub malformed: AtomicU64,
    pub oversized: AtomicU64,
    pub reconnects: AtomicU64,
}

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Zeroed counters for `source` (the label value).
    pub fn new(source: &'static str, stats: Arc<Stats>) -> Metrics {
        Metrics {
            source,
            stats,
            received: AtomicU64::new(0),
            filtered_keyword: AtomicU64::new(0),
            filtered_language: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            oversized: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    /// The publisher's counters (`published`: committed posts).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let source = self.source;
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &AtomicU64); 7] = [
            (
                "events_received_total",
                "Posts a source produced, before dedup and filters.",
                &self.received,
            ),
            (
                "events_published_total",
                "Posts committed to Kafka.",
                &self.stats.published,
            ),
            (
                "transactions_committed_total",
                "Transactions committed: posts and the source position together.",
                &self.stats.transactions,
            ),
            (
                "events_duplicate_total",
                "Re-delivered posts dropped by the dedup.",
                &self.duplicates,
            ),
            (
                "events_malformed_total",
                "Input the source could not use.",
                &self.malformed,
            ),
            (
                "events_oversized_total",
                "Posts or frames over source.max_post_bytes, skipped.",
                &self.oversized,
            ),
            (
                "reconnects_total",
                "Connection attempts of a live source after the first.",
                &self.reconnects,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP trends_producer_{name} {help}");
            let _ = writeln!(out, "# TYPE trends_producer_{name} counter");
            let _ = writeln!(
                out,
                "trends_producer_{name}{{source=\"{source}\"}} {}",
                get(value)
            );
        }
        let _ = writeln!(
            out,
            "# HELP trends_producer_events_filtered_total Posts dropped by a filter."
        );
        let _ = writeln!(out, "# TYPE trends_producer_events_filtered_total counter");
        for (reason, value) in [
            ("keyword", &self.filtered_keyword),
            ("language", &self.filtered_language),
        ] {
            let _ = writeln!(
                out,
                "trends_producer_events_filtered_total{{source=\"{source}\",reason=\"{reason}\"}} {}",
                get(value)
            );
        }
        out
    }
}

/// Serves `GET /metrics` and `GET /healthz` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
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
    fn renders_every_metric_with_its_source_label() {
        let metrics = Metrics::new("bluesky", Arc::default());
        inc(&metrics.received);
        inc(&metrics.received);
        inc(&metrics.filtered_language);
        inc(&metrics.reconnects);
        inc(&metrics.oversized);
        let text = metrics.render();
        for line in [
            "trends_producer_events_received_total{source=\"bluesky\"} 2\n",
            "trends_producer_events_published_total{source=\"bluesky\"} 0\n",
            "trends_producer_events_duplicate_total{source=\"bluesky\"} 0\n",
            "trends_producer_events_malformed_total{source=\"bluesky\"} 0\n",
            "trends_producer_reconnects_total{source=\"bluesky\"} 1\n",
            "trends_producer_events_oversized_total{source=\"bluesky\"} 1\n",
            "trends_producer_transactions_committed_total{source=\"bluesky\"} 0\n",
            "trends_producer_events_filtered_total{source=\"bluesky\",reason=\"keyword\"} 0\n",
            "trends_producer_events_filtered_total{source=\"bluesky\",reason=\"language\"} 1\n",
            "# TYPE trends_producer_events_filtered_total counter\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
