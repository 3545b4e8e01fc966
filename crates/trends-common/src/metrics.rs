//! Metrics: one [`Registry`] per service, served as Prometheus text.
//!
//! Each service declares its metric families once, in its own `metrics.rs`, on a registry it
//! creates with [`registry`] (prefixed `trends_<service>`), and keeps typed handles to them
//! (`Counter`, `Gauge`, `Family`, `Histogram` from [`prometheus_client`], re-exported here) for
//! its code to update. No global registry: two instances of a service in one test process
//! each have their own.
//!
//! The exposition is OpenMetrics text (counters end in `_total`, histograms have `_bucket`,
//! `_sum` and `_count`, the body ends with `# EOF`), which Prometheus scrapes as it is.
//! [`serve`] is the one `/metrics` (and `/healthz`) server of the services that have no HTTP
//! API of their own; the API renders [`encode`] in its router.

use std::sync::Arc;

pub use prometheus_client;
pub use prometheus_client::registry::Registry;

/// The process's resident memory as the gauge `<prefix>_resident_memory_bytes`, read from
/// `/proc/self/status` at each scrape (no value where there is no procfs). Every service
/// registers it: `registry.register_collector(Box::new(ResidentMemory))`.
#[derive(Debug)]
pub struct ResidentMemory;

/// `VmRSS` of `/proc/self/status`, in bytes.
pub fn resident_memory_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl prometheus_client::collector::Collector for ResidentMemory {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        if let Some(bytes) = resident_memory_bytes() {
            let gauge = prometheus_client::metrics::gauge::ConstGauge::new(bytes);
            let metric = encoder.encode_descriptor(
                "resident_memory_bytes",
                "Resident memory of the process (VmRSS).",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The messaging client metrics OpenTelemetry's semantic conventions define, as Prometheus
/// families every service registers the same way (`<prefix>_messaging_client_…`), labelled
/// as the conventions' attributes are (dots as underscores):
///
/// | family | labels | what |
/// |---|---|---|
/// | `messaging_client_sent_messages_total` | `messaging_system`, `messaging_destination_name` | records written in committed transactions |
/// | `messaging_client_consumed_messages_total` | the same and `messaging_consumer_group_name` (empty for the API, which has no group) | records consumed |
/// | `messaging_client_operation_duration_seconds` | `messaging_system`, `messaging_operation_name`, `messaging_destination_name` | one client operation: `commit` (a transaction's commit, its deliveries first), `process` (the API's apply of a batch) |
///
/// Handles are made once per destination ([`MessagingMetrics::sent`] …) and kept: no label
/// is built per record.
#[derive(Debug, Clone)]
pub struct MessagingMetrics {
    sent: prometheus_client::metrics::family::Family<
        DestinationLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    consumed: prometheus_client::metrics::family::Family<
        ConsumerLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    duration: prometheus_client::metrics::family::Family<
        OperationLabels,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct DestinationLabels {
    messaging_system: &'static str,
    messaging_destination_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct ConsumerLabels {
    messaging_system: &'static str,
    messaging_destination_name: String,
    messaging_consumer_group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
struct OperationLabels {
    messaging_system: &'static str,
    messaging_operation_name: &'static str,
    messaging_destination_name: String,
}

/// 1 ms to ~65 s, doubling.
fn operation_buckets() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17),
    )
}

impl MessagingMetrics {
    /// Registers the three families on `registry`.
    pub fn register(registry: &mut Registry) -> MessagingMetrics {
        let metrics = MessagingMetrics {
            sent: Default::default(),
            consumed: Default::default(),
            duration: prometheus_client::metrics::family::Family::new_with_constructor(
                operation_buckets,
            ),
        };
        registry.register(
            "messaging_client_sent_messages",
            "Records written to a topic in committed transactions",
            metrics.sent.clone(),
        );
        registry.register(
            "messaging_client_consumed_messages",
            "Records consumed from a topic",
            metrics.consumed.clone(),
        );
        registry.register(
            "messaging_client_operation_duration_seconds",
            "Duration of one messaging client operation",
            metrics.duration.clone(),
        );
        metrics
    }

    /// The counter of records sent to `destination` (made at 0 if new).
    pub fn sent(&self, destination: &str) -> prometheus_client::metrics::counter::Counter {
        self.sent
            .get_or_create(&DestinationLabels {
                messaging_system: "kafka",
                messaging_destination_name: destination.to_owned(),
            })
            .clone()
    }

    /// The counter of records consumed from `destination` by `group` ("" when none).
    pub fn consumed(
        &self,
        destination: &str,
        group: &str,
    ) -> prometheus_client::metrics::counter::Counter {
        self.consumed
            .get_or_create(&ConsumerLabels {
                messaging_system: "kafka",
                messaging_destination_name: destination.to_owned(),
                messaging_consumer_group_name: group.to_owned(),
            })
            .clone()
    }

    /// The histogram of `operation` on `destination`.
    pub fn operation(
        &self,
        operation: &'static str,
        destination: &str,
    ) -> prometheus_client::metrics::histogram::Histogram {
        self.duration
            .get_or_create(&OperationLabels {
                messaging_system: "kafka",
                messaging_operation_name: operation,
                messaging_destination_name: destination.to_owned(),
            })
            .clone()
    }
}

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose metric names start with `prefix_` (e.g. `trends_aggregator`).
pub fn registry(prefix: &str) -> Registry {
    Registry::with_prefix(prefix)
}

/// The registry's metrics as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail; an encoder error would be a bug in a metric.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    out
}

/// Serves `GET /metrics` (the registry) and `GET /healthz` (`ok`) on `listener` until
/// `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                        encode(&registry),
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
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn names_carry_the_prefix_and_counters_end_in_total() {
        let mut registry = registry("trends_test");
        let counter: Counter = Counter::default();
        registry.register("things", "Things seen", counter.clone());
        counter.inc_by(3);
        let text = encode(&registry);
        assert!(
            text.contains("# TYPE trends_test_things counter\n"),
            "{text}"
        );
        assert!(text.contains("trends_test_things_total 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn messaging_families_are_named_and_labelled_as_the_conventions() {
        let mut registry = registry("trends_test");
        let messaging = MessagingMetrics::register(&mut registry);
        messaging.sent("tweets").inc_by(3);
        messaging.consumed("tweets", "g").inc();
        messaging.operation("commit", "tweets").observe(0.02);
        let text = encode(&registry);
        for line in [
            "trends_test_messaging_client_sent_messages_total{messaging_system=\"kafka\",messaging_destination_name=\"tweets\"} 3",
            "trends_test_messaging_client_consumed_messages_total{messaging_system=\"kafka\",messaging_destination_name=\"tweets\",messaging_consumer_group_name=\"g\"} 1",
            "trends_test_messaging_client_operation_duration_seconds_count{messaging_system=\"kafka\",messaging_operation_name=\"commit\",messaging_destination_name=\"tweets\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
