//! The producer's metrics, declared once on a `prometheus-client` registry and served as
//! Prometheus (OpenMetrics) text on `producer.metrics_addr` (`GET /metrics`), every one
//! labelled with the source (`source="bluesky"`, …).
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
//! | `trends_producer_messaging_client_sent_messages_total` | counter, per `messaging_destination_name` | posts written to `tweets` in committed transactions (the OpenTelemetry messaging convention's name; `trends_common::metrics::MessagingMetrics`) |
//! | `trends_producer_messaging_client_operation_duration_seconds` | histogram, `messaging_operation_name="commit"` | one transaction's commit: its deliveries, then the commit |
//! | `trends_producer_resident_memory_bytes`, `trends_producer_trace_spans_{exported,dropped,export_failed}_total` | gauge, counters | resident memory; spans exported over OTLP (process-wide, not labelled by source) |
//!
//! One set of handles for everything the producer counts, the publisher's counts included
//! (`published`, `transactions`, and `accepted`, which only the progress log reads): the
//! sources count through [`crate::sources::SourceContext`], the pipeline and the publisher
//! update their handles directly, and the `/metrics` server and the progress log read them.
//! No global registry: two producers in one test process each have their own.
//!
//! This module depends on nothing of the crate; everything that counts depends on it.

use std::borrow::Cow;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use trends_common::metrics::Registry;

/// `reason` of `…_events_filtered_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FilterLabel {
    reason: &'static str,
}

/// The producer's metric handles (one source). Cheap to share (`Arc`); every handle updates
/// atomically.
#[derive(Debug)]
pub struct Metrics {
    /// Posts a source produced, before dedup and filters.
    pub received: Counter,
    /// Posts in committed transactions.
    pub published: Counter,
    /// Transactions committed.
    pub transactions: Counter,
    pub filtered_keyword: Counter,
    pub filtered_language: Counter,
    pub duplicates: Counter,
    pub malformed: Counter,
    pub oversized: Counter,
    pub reconnects: Counter,
    /// Posts handed to the Kafka producer (queued in a transaction, committed or not). Not
    /// exported: only the progress log reads it, next to `published`.
    pub accepted: Counter,
    /// The messaging client families (trends_common::metrics::MessagingMetrics).
    pub messaging: trends_common::metrics::MessagingMetrics,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Every family, registered on a fresh `trends_producer` registry, labelled with
    /// `source` (the source's name).
    pub fn new(source: &'static str) -> Metrics {
        let mut root = trends_common::metrics::registry("trends_producer");
        let registry =
            root.sub_registry_with_label((Cow::Borrowed("source"), Cow::Borrowed(source)));
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let received = counter(
            "events_received",
            "Posts a source produced, before dedup and filters",
        );
        let published = counter("events_published", "Posts committed to Kafka");
        let transactions = counter(
            "transactions_committed",
            "Transactions committed: posts and the source position together",
        );
        let duplicates = counter(
            "events_duplicate",
            "Re-delivered posts dropped by the dedup",
        );
        let malformed = counter("events_malformed", "Input the source could not use");
        let oversized = counter(
            "events_oversized",
            "Posts or frames over source.max_post_bytes, skipped",
        );
        let reconnects = counter(
            "reconnects",
            "Connection attempts of a live source after the first",
        );
        let filtered = Family::<FilterLabel, Counter>::default();
        registry.register(
            "events_filtered",
            "Posts dropped by a filter",
            filtered.clone(),
        );
        let messaging = trends_common::metrics::MessagingMetrics::register(registry);
        // Both reasons exist from the start, at 0: an alert on them needs the series.
        let reason = |reason| filtered.get_or_create(&FilterLabel { reason }).clone();
        Metrics {
            received,
            published,
            transactions,
            filtered_keyword: reason("keyword"),
            filtered_language: reason("language"),
            duplicates,
            malformed,
            oversized,
            reconnects,
            accepted: Counter::default(),
            messaging,
            registry: Arc::new({
                // Process-wide, so on the root: not labelled by source.
                root.register_collector(Box::new(trends_common::metrics::ResidentMemory));
                root.register_collector(Box::new(trends_common::telemetry::TraceSpanCounters));
                root
            }),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_source_label() {
        let metrics = Metrics::new("bluesky");
        metrics.received.inc();
        metrics.received.inc();
        metrics.filtered_language.inc();
        metrics.reconnects.inc();
        metrics.oversized.inc();
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
            "# TYPE trends_producer_events_filtered counter\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn the_publishers_counts_are_metrics_and_accepted_stays_internal() {
        let metrics = Metrics::new("file");
        metrics.accepted.inc_by(3);
        metrics.published.inc_by(2);
        metrics.transactions.inc();
        let text = metrics.render();
        assert!(
            text.contains("trends_producer_events_published_total{source=\"file\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("trends_producer_transactions_committed_total{source=\"file\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("accepted"), "{text}");
        // The families by source, the process's resident memory and its three trace span
        // counters (not by source); the messaging families show once the publisher makes
        // their series.
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 12);
        metrics.messaging.sent("tweets").inc_by(2);
        assert!(
            metrics.render().contains(
                "trends_producer_messaging_client_sent_messages_total{source=\"file\",messaging_system=\"kafka\",messaging_destination_name=\"tweets\"} 2\n"
            ),
            "{}",
            metrics.render()
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("trends_producer_resident_memory_bytes ")),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn two_producers_do_not_share_metrics() {
        let (a, b) = (Metrics::new("file"), Metrics::new("file"));
        a.published.inc();
        assert_eq!(b.published.get(), 0);
        assert!(
            b.render()
                .contains("events_published_total{source=\"file\"} 0\n")
        );
    }
}
