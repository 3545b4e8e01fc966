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
}
