//! Logging and traces. Call [`init`] once at the start of `main` (the service skeleton,
//! [`crate::service::run`], does) and [`Telemetry::shutdown`] at the end.
//!
//! **Logs** go to stderr, human-readable or JSON lines, filtered by `RUST_LOG` or `log.filter`.
//!
//! **Traces** are exported with OpenTelemetry when an OTLP endpoint is set, and are off
//! otherwise (nothing is made per record then: [`crate::trace_context::enabled`]). They follow
//! the standard `OTEL_*` variables, read here ([`TraceSettings::from_vars`]) and refused at
//! start with the variable named when they are wrong:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset: traces off | the collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318` (`/v1/traces` is appended) |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | unset | the full traces URL, used as it is (wins over the above) |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | only `http/protobuf` is built in (no gRPC stack in the binaries) |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` | none, 10 s | read by the exporter |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the binary's name | the resource |
//! | `OTEL_TRACES_SAMPLER` | `parentbased_always_on` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` |
//! | `OTEL_TRACES_SAMPLER_ARG` | `1.0` | the ratio, 0 to 1 |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | 2048 | spans waiting for export; more are dropped and counted |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_EXPORT_TIMEOUT` | 5000 ms, 512, 30000 ms | read by the batch processor |
//! | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | | traces off |
//!
//! Whatever the sampler says, a span with a sampled link is sampled
//! ([`crate::trace_context::LinkAwareSampler`]).
//!
//! **Never blocking the hot path.** Spans end into the SDK's batch processor, which exports
//! from a thread of its own through a blocking HTTP client; a full queue drops the span rather
//! than wait. Its drops are not visible outside the SDK, so a gate in front of it
//! ([`BoundedSpans`]) keeps the queue below its capacity, drops and counts itself: the
//! `<service>_trace_spans_{exported,dropped,export_failed}_total` counters
//! ([`TraceSpanCounters`], registered by each service with its metrics).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config_error::ConfigError;
use crate::settings::{LogFormat, LogSettings};
use crate::trace_context::LinkAwareSampler;

/// How long [`Telemetry::shutdown`] waits for the last spans to be exported.
const EXPORT_ON_SHUTDOWN: Duration = Duration::from_secs(5);
/// Spans the gate lets through beyond the configured queue size, so that threads ending spans
/// at the same moment never find the SDK's queue full (its capacity has this slack).
const QUEUE_SLACK: usize = 64;

/// What [`init`] set up; [`Telemetry::shutdown`] exports what is left.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether traces are exported.
    pub fn traces_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued (waiting up to 5 s) and stops the exporter. Call it
    /// outside the async runtime: the exporter's HTTP client blocks.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(EXPORT_ON_SHUTDOWN)
        {
            eprintln!("warning: the last spans may not have been exported: {e}");
        }
    }
}

/// The `OTEL_*` trace settings (see the module docs), read from an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// `None`: traces off.
    pub endpoint: Option<String>,
    pub sampler: SamplerSetting,
    pub max_queue_size: usize,
    /// `OTEL_SERVICE_NAME` or `service.name` in `OTEL_RESOURCE_ATTRIBUTES` is set: the
    /// resource detector's name wins over the binary's.
    pub service_name_from_env: bool,
}

/// `OTEL_TRACES_SAMPLER` with its ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerSetting {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

impl SamplerSetting {
    fn sampler(self) -> Sampler {
        let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
        match self {
            SamplerSetting::AlwaysOn => Sampler::AlwaysOn,
            SamplerSetting::AlwaysOff => Sampler::AlwaysOff,
            SamplerSetting::Ratio(r) => Sampler::TraceIdRatioBased(r),
            SamplerSetting::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            SamplerSetting::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            SamplerSetting::ParentBasedRatio(r) => parent_based(Sampler::TraceIdRatioBased(r)),
        }
    }
}

impl TraceSettings {
    /// Reads and checks the `OTEL_*` variables; the error names the variable.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<TraceSettings, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let bad = |name: &str, value: &str, expected: &str| {
            ConfigError(format!("{name}={value:?} is not valid: {expected}"))
        };
        let endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v))
            .or_else(|| {
                get("OTEL_EXPORTER_OTLP_ENDPOINT").map(|v| ("OTEL_EXPORTER_OTLP_ENDPOINT", v))
            });
        if let Some((name, url)) = endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad(
                name,
                url,
                "expected an http:// or https:// URL of an OTLP/HTTP receiver (a collector's port 4318)",
            ));
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = get(name)
                && protocol != "http/protobuf"
            {
                return Err(bad(
                    name,
                    protocol,
                    "only http/protobuf is built in; point the endpoint at the collector's OTLP/HTTP port (4318)",
                ));
            }
        }
        let disabled = match get("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => return Err(bad("OTEL_SDK_DISABLED", v, "expected true or false")),
        };
        let exporter_off = match get("OTEL_TRACES_EXPORTER") {
            None | Some("otlp") => false,
            Some("none") => true,
            Some(v) => return Err(bad("OTEL_TRACES_EXPORTER", v, "expected otlp or none")),
        };
        let ratio = || -> Result<f64, ConfigError> {
            match get("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        bad("OTEL_TRACES_SAMPLER_ARG", v, "expected a ratio from 0 to 1")
                    }),
            }
        };
        let sampler = match get("OTEL_TRACES_SAMPLER") {
            None | Some("parentbased_always_on") => SamplerSetting::ParentBasedAlwaysOn,
            Some("always_on") => SamplerSetting::AlwaysOn,
            Some("always_off") => SamplerSetting::AlwaysOff,
            Some("traceidratio") => SamplerSetting::Ratio(ratio()?),
            Some("parentbased_always_off") => SamplerSetting::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => SamplerSetting::ParentBasedRatio(ratio()?),
            Some(v) => {
                return Err(bad(
                    "OTEL_TRACES_SAMPLER",
                    v,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };
        let max_queue_size = match get("OTEL_BSP_MAX_QUEUE_SIZE") {
            None => 2048,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "OTEL_BSP_MAX_QUEUE_SIZE",
                        v,
                        "expected a number of spans from 1 to 1000000",
                    )
                })?,
        };
        let service_name_from_env = get("OTEL_SERVICE_NAME").is_some()
            || get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
                a.split(',')
                    .any(|kv| kv.trim_start().starts_with("service.name="))
            });
        Ok(TraceSettings {
            endpoint: endpoint
                .filter(|_| !disabled && !exporter_off)
                .map(|(_, url)| url.to_owned()),
            sampler,
            max_queue_size,
            service_name_from_env,
        })
    }
}

/// Spans through the gate, exported, and dropped, for the metrics ([`TraceSpanCounters`]).
static SPANS_QUEUED: AtomicU64 = AtomicU64::new(0);
static SPANS_EXPORTED: AtomicU64 = AtomicU64::new(0);
static SPANS_DROPPED: AtomicU64 = AtomicU64::new(0);
static SPANS_EXPORT_FAILED: AtomicU64 = AtomicU64::new(0);

/// A gate in front of the SDK's batch processor: lets a span through only while fewer than
/// `max_queue` are waiting for export (queued − handed to the exporter), and counts the rest
/// as dropped. The SDK's queue has [`QUEUE_SLACK`] more room, so it never drops itself.
#[derive(Debug)]
struct BoundedSpans {
    inner: BatchSpanProcessor,
    max_queue: u64,
}

impl SpanProcessor for BoundedSpans {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let waiting = SPANS_QUEUED
            .load(Ordering::Relaxed)
            .saturating_sub(SPANS_EXPORTED.load(Ordering::Relaxed));
        if waiting >= self.max_queue {
            SPANS_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        SPANS_QUEUED.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what it is handed and what fails.
#[derive(Debug)]
struct CountingExporter<E>(E);

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        SPANS_EXPORTED.fetch_add(spans, Ordering::Relaxed);
        let result = self.0.export(batch).await;
        if result.is_err() {
            SPANS_EXPORT_FAILED.fetch_add(spans, Ordering::Relaxed);
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

/// `<prefix>_trace_spans_exported_total`, `_dropped_total` and `_export_failed_total`, read
/// at each scrape. Every service registers it: `registry.register_collector(Box::new(TraceSpanCounters))`.
#[derive(Debug)]
pub struct TraceSpanCounters;

impl prometheus_client::collector::Collector for TraceSpanCounters {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        let families = [
            (
                "trace_spans_exported",
                "Spans handed to the OTLP exporter.",
                &SPANS_EXPORTED,
            ),
            (
                "trace_spans_dropped",
                "Spans dropped because the export queue was full (OTEL_BSP_MAX_QUEUE_SIZE).",
                &SPANS_DROPPED,
            ),
            (
                "trace_spans_export_failed",
                "Spans in export requests that failed (the collector refused or was unreachable).",
                &SPANS_EXPORT_FAILED,
            ),
        ];
        for (name, help, value) in families {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(
                value.load(Ordering::Relaxed),
            );
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Installs the global `tracing` subscriber: human-readable or JSON lines on stderr, filtered
/// by `RUST_LOG` if set, else by the configured filter, and the OpenTelemetry layer when an
/// OTLP endpoint is set (see the module docs). Text lines are coloured only when stderr is a
/// terminal and `NO_COLOR` is not set ([`ansi_colour`]): a container's or a service manager's
/// log gets no escape codes. `service` is the default `service.name`.
pub fn init(settings: &LogSettings, service: &'static str) -> Result<Telemetry, ConfigError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let traces = TraceSettings::from_vars(&vars)?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = ansi_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match settings.format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let provider = match &traces.endpoint {
        Some(_) => Some(tracer_provider(&traces, service)?),
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
    });
    // A second init (e.g. in tests) keeps the first subscriber; that is fine.
    // One global filter for both layers. (A per-layer filter on the log layer, beside an
    // optional OpenTelemetry layer, lost some INFO lines: tracing-subscriber's callsite
    // interest caching with per-layer filters.) The services' spans are at INFO, so a filter
    // that silences INFO for a service's crate silences its spans too.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    if let Some(provider) = &provider {
        crate::trace_context::install(provider.tracer(service));
        tracing::info!(
            endpoint = traces.endpoint.as_deref().unwrap_or_default(),
            sampler = ?traces.sampler,
            max_queue = traces.max_queue_size,
            "exporting traces over OTLP/HTTP"
        );
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(
    traces: &TraceSettings,
    service: &'static str,
) -> Result<SdkTracerProvider, ConfigError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            ConfigError(format!(
                "OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {e}"
            ))
        })?;
    // The SDK reads OTEL_BSP_* itself; the queue gets the gate's slack on top.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(traces.max_queue_size + QUEUE_SLACK)
        .build();
    let processor = BatchSpanProcessor::builder(CountingExporter(exporter))
        .with_batch_config(batch)
        .build();
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !traces.service_name_from_env {
        resource = resource.with_service_name(service);
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BoundedSpans {
            inner: processor,
            max_queue: traces.max_queue_size as u64,
        })
        .with_sampler(LinkAwareSampler(traces.sampler.sampler()))
        .with_resource(resource.build())
        .build())
}

/// Whether log lines carry ANSI colour codes: only when the log goes to a terminal, and never
/// when `NO_COLOR` is set to anything but the empty string (<https://no-color.org>).
pub fn ansi_colour(log_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    log_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let set = |v: &'static str| Some(OsStr::new(v));
        assert!(ansi_colour(true, None), "a terminal");
        assert!(
            !ansi_colour(false, None),
            "a pipe, a file, a container's log"
        );
        assert!(!ansi_colour(true, set("1")), "NO_COLOR=1");
        assert!(!ansi_colour(true, set("0")), "NO_COLOR=0 is set too");
        assert!(ansi_colour(true, set("")), "an empty NO_COLOR is not set");
        assert!(!ansi_colour(false, set("1")));
    }

    /// An exporter that holds every export until released: a collector that hangs.
    #[derive(Debug, Clone, Default)]
    struct HangingCollector(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

    impl HangingCollector {
        fn release(&self) {
            let (released, wake) = &*self.0;
            *released.lock().expect("lock") = true;
            wake.notify_all();
        }
    }

    impl SpanExporter for HangingCollector {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            let (released, wake) = &*self.0;
            let mut done = released.lock().expect("lock");
            while !*done {
                done = wake.wait(done).expect("wait");
            }
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_spans_and_counts_them_instead_of_blocking() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let collector = HangingCollector::default();
        let (dropped, exported) = (
            SPANS_DROPPED.load(Ordering::Relaxed),
            SPANS_EXPORTED.load(Ordering::Relaxed),
        );
        // No export starts on its own (a long delay, a large batch): the queue only fills.
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(4 + QUEUE_SLACK)
            .with_max_export_batch_size(512)
            .with_scheduled_delay(Duration::from_secs(3600))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BoundedSpans {
                inner: BatchSpanProcessor::builder(CountingExporter(collector.clone()))
                    .with_batch_config(batch)
                    .build(),
                max_queue: 4,
            })
            .build();
        let tracer = provider.tracer("test");
        for i in 0..100 {
            // Ending a span never waits for the collector.
            drop(tracer.start(format!("span {i}")));
        }
        assert_eq!(SPANS_DROPPED.load(Ordering::Relaxed) - dropped, 96);
        collector.release();
        provider.shutdown().expect("shutdown");
        assert_eq!(
            SPANS_EXPORTED.load(Ordering::Relaxed) - exported,
            4,
            "the queued spans are exported at shutdown"
        );
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn traces_are_off_without_an_endpoint_and_follow_the_standard_variables() {
        let off = TraceSettings::from_vars(&vars(&[])).expect("no variables");
        assert_eq!(off.endpoint, None);
        assert_eq!(off.sampler, SamplerSetting::ParentBasedAlwaysOn);
        assert_eq!(off.max_queue_size, 2048);
        let on = TraceSettings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_SERVICE_NAME", "aggregator-7"),
        ]))
        .expect("valid");
        assert_eq!(on.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(on.sampler, SamplerSetting::ParentBasedRatio(0.01));
        assert_eq!(on.max_queue_size, 100);
        assert!(on.service_name_from_env);
        let traces_url = TraceSettings::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b/v1/traces"),
        ]))
        .expect("valid");
        assert_eq!(traces_url.endpoint.as_deref(), Some("https://b/v1/traces"));
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let settings = TraceSettings::from_vars(&vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                off,
            ]))
            .expect("valid");
            assert_eq!(settings.endpoint, None, "{off:?}");
        }
        let resource = TraceSettings::from_vars(&vars(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, service.name=x",
        )]))
        .expect("valid");
        assert!(resource.service_name_from_env);
    }

    #[test]
    fn a_wrong_otel_variable_is_refused_with_its_name() {
        for (pair, named) in [
            (
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (("OTEL_TRACES_SAMPLER", "sometimes"), "OTEL_TRACES_SAMPLER"),
            (("OTEL_BSP_MAX_QUEUE_SIZE", "0"), "OTEL_BSP_MAX_QUEUE_SIZE"),
            (("OTEL_SDK_DISABLED", "yes"), "OTEL_SDK_DISABLED"),
            (("OTEL_TRACES_EXPORTER", "zipkin"), "OTEL_TRACES_EXPORTER"),
        ] {
            let error = TraceSettings::from_vars(&vars(&[pair])).expect_err("refused");
            assert!(error.to_string().contains(named), "{error}");
        }
        for ratio in ["1.5", "-0.1", "half"] {
            let error = TraceSettings::from_vars(&vars(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", ratio),
            ]))
            .expect_err("refused");
            assert!(
                error.to_string().contains("OTEL_TRACES_SAMPLER_ARG"),
                "{error}"
            );
        }
    }
}
