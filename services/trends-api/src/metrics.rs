//! The API's metrics, declared once on a `prometheus-client` registry (prefix `trends_api`)
//! and served as Prometheus (OpenMetrics) text on `GET /metrics` (`crate::api::health`).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_api_http_requests_total{route,status}` | counter | responses by route template and status |
//! | `trends_api_http_request_duration_seconds{route}` | histogram | time to the response head, by route |
//! | `trends_api_stream_clients` | gauge | open `/api/v1/stream` connections |
//! | `trends_api_counts_lag_records` | gauge | records between the follower's position and the end of the counts topic (all partitions) |
//! | `trends_api_snapshots_published_total` | counter | snapshots made servable |
//! | `trends_api_counts_records_skipped_total` | counter | counts-topic records the follower could not decode, logged and skipped |
//! | `trends_api_counts_records_consumed_total` | counter | counts-topic records the follower read (decoded or not) |
//! | `trends_api_messaging_client_consumed_messages_total` | counter, per `messaging_destination_name` | the same, by the OpenTelemetry messaging convention's name (trends_common::metrics::MessagingMetrics; `messaging_consumer_group_name` is empty: the API has no group) |
//! | `trends_api_messaging_client_operation_duration_seconds` | histogram, `messaging_operation_name="process"` | applying one batch of counts records (up to 1,024 taken at once) |
//! | `trends_api_trace_spans_{exported,dropped,export_failed}_total` | counters | spans exported over OTLP, dropped at a full queue, lost in failed exports (trends_common::telemetry) |
//! | `trends_api_counts_age_seconds` | gauge | freshness: now minus the Kafka timestamp of the newest counts record in the snapshot served (absent before the first snapshot) |
//! | `trends_api_resident_memory_bytes` | gauge | the process's resident memory (`VmRSS`), read at each scrape |
//! | `trends_api_http_connections{listener}` | gauge | open TCP connections |
//! | `trends_api_http_connections_rejected_total{listener}` | counter | connections closed at once because `http.max_connections` were open |
//! | `trends_api_http_connections_timed_out_total{listener,reason}` | counter | connections closed by a timeout: `reason="header_read"` (no whole request head within `http.header_read_timeout_ms`: a slowloris, or a kept-alive connection with no next request) or `"idle"` (no byte moved either way for `http.idle_timeout_ms`) |
//!
//! **Counts age.** The counts records' Kafka timestamp is when the aggregator wrote them (its
//! transaction's produce); the newest one among those in the served snapshot is the time of the
//! newest count a client can see. The gauge is computed at each scrape (`now −` that time), so
//! it keeps growing while nothing new is served: a follower that stalls, lags past readiness
//! (and stops publishing), or has nothing to read because the aggregator wrote nothing. The
//! last case is also an idle pipeline (no posts): read it beside the aggregator's
//! `trends_aggregator_record_age_seconds` and the rate of posts.
//!
//! `listener` is `api` (`http.addr`) or `metrics` (the separate `/metrics` listener of
//! `http.metrics_addr`; its series stay at zero without one).
//!
//! `route` is the matched route template (`/api/v1/hashtags/{tag}`), never the raw path, and
//! `unmatched` for requests no route matched, so the number of series is fixed by the code and
//! not by what clients send. The templates are declared once, by the router that serves them
//! (`crate::app`'s route table, [`Metrics::declare_routes`]), so the label values and the routes
//! cannot drift apart. A request's series appear with its first response (`status` is only
//! known then); every other series exists from the start, at zero.
//!
//! The families are registered once, in [`Metrics::new`], on a registry of their own (no
//! global: two servers in one test process count apart). The rest of the crate sees typed
//! handles and methods (`observe`, `set_counts_lag`, …, `render`), never the registry. The
//! handles of fixed series (the gauges, the connection counters of each listener) are taken
//! once here, so updating them is one atomic operation; a request's two series are found in
//! their family by label (a read lock, uncontended), and the histogram takes its own short
//! lock. A [`Gauge`] is a cloneable shared value: the caps (`crate::cap`) hold one each, so
//! the open streams and connections gauges move with the places held.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use trends_common::metrics::Registry;

pub use prometheus_client::metrics::gauge::Gauge;

/// Histogram bucket bounds in seconds (cumulative `le` buckets; `+Inf` is the count).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The status codes counted: a response with another (hyper allows up to 999) is timed but
/// not counted, so that `status` has at most 500 values.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// Which listener a connection came in on (the `listener` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `http.addr`: the API, the page, and `/metrics` unless it has its own listener.
    Api,
    /// `http.metrics_addr`: `/metrics` only.
    Metrics,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Api, Listener::Metrics];

    pub fn label(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::Metrics => "metrics",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TimeoutLabels {
    listener: &'static str,
    reason: &'static str,
}

/// A request-duration histogram with [`DURATION_BUCKETS`].
fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Connection counts of one listener: handles to its series of the connection families.
#[derive(Debug)]
pub struct ConnectionStats {
    open: Gauge,
    rejected: Counter,
    header_read_timeouts: Counter,
    idle_timeouts: Counter,
}

impl ConnectionStats {
    /// The open-connections gauge (held by the listener's connection cap).
    pub fn open_gauge(&self) -> &Gauge {
        &self.open
    }

    /// Open connections.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// Counts a connection refused at the cap; returns how many were refused before it.
    pub fn rejected_one(&self) -> u64 {
        self.rejected.inc()
    }

    pub fn rejected(&self) -> u64 {
        self.rejected.get()
    }

    pub fn header_read_timed_out(&self) {
        self.header_read_timeouts.inc();
    }

    pub fn header_read_timeouts(&self) -> u64 {
        self.header_read_timeouts.get()
    }

    pub fn idle_timed_out(&self) {
        self.idle_timeouts.inc();
    }

    pub fn idle_timeouts(&self) -> u64 {
        self.idle_timeouts.get()
    }
}

/// The gauge computed at each scrape: the counts age (the resident memory is the shared
/// [`trends_common::metrics::ResidentMemory`]).
#[derive(Debug)]
struct ScrapeTime {
    /// Kafka timestamp (ms) of the newest counts record in the served snapshot; -1: none yet.
    served_counts_ms: Arc<AtomicI64>,
}

impl Collector for ScrapeTime {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let served = self.served_counts_ms.load(Ordering::Relaxed);
        if served >= 0 {
            // Milliseconds to seconds: a gauge read every few seconds.
            #[allow(clippy::cast_precision_loss)]
            let age = (trends_common::time::now_ms().saturating_sub(served)).max(0) as f64 / 1000.0;
            let gauge = ConstGauge::new(age);
            let metric = encoder.encode_descriptor(
                "counts_age_seconds",
                "Now minus the Kafka timestamp of the newest counts record in the served snapshot.",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The API's metric handles and their registry.
#[derive(Debug)]
pub struct Metrics {
    /// The route templates, in the order declared; set once by [`Metrics::declare_routes`].
    routes: OnceLock<Box<[&'static str]>>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram, fn() -> Histogram>,
    stream_clients: Gauge,
    counts_lag: Gauge,
    snapshots_published: Counter,
    counts_records_skipped: Counter,
    counts_records_consumed: Counter,
    /// The messaging client families (trends_common::metrics::MessagingMetrics).
    messaging: trends_common::metrics::MessagingMetrics,
    /// Their handles for the counts topic, once the follower names it.
    counts_topic: OnceLock<(Counter, Histogram)>,
    served_counts_ms: Arc<AtomicI64>,
    /// Indexed like [`Listener::ALL`].
    connections: [ConnectionStats; 2],
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family, registered on a fresh `trends_api` registry. Until
    /// [`Metrics::declare_routes`], every request counts as unmatched.
    pub fn new() -> Self {
        let mut registry = trends_common::metrics::registry("trends_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP responses by route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabel, Histogram, _>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route template",
            durations.clone(),
        );
        let stream_clients = Gauge::default();
        registry.register(
            "stream_clients",
            "Open /api/v1/stream connections",
            stream_clients.clone(),
        );
        let counts_lag = Gauge::default();
        registry.register(
            "counts_lag_records",
            "Records between the follower's position and the end of the counts topic",
            counts_lag.clone(),
        );
        let snapshots_published = Counter::default();
        registry.register(
            "snapshots_published",
            "Snapshots made servable",
            snapshots_published.clone(),
        );
        let counts_records_skipped = Counter::default();
        registry.register(
            "counts_records_skipped",
            "Counts-topic records that could not be decoded and were skipped",
            counts_records_skipped.clone(),
        );
        let counts_records_consumed = Counter::default();
        registry.register(
            "counts_records_consumed",
            "Counts-topic records the follower read, decoded or not",
            counts_records_consumed.clone(),
        );
        let messaging = trends_common::metrics::MessagingMetrics::register(&mut registry);
        let served_counts_ms = Arc::new(AtomicI64::new(-1));
        registry.register_collector(Box::new(ScrapeTime {
            served_counts_ms: Arc::clone(&served_counts_ms),
        }));
        registry.register_collector(Box::new(trends_common::metrics::ResidentMemory));
        registry.register_collector(Box::new(trends_common::telemetry::TraceSpanCounters));
        let connections = connection_families(&mut registry);
        Metrics {
            routes: OnceLock::new(),
            requests,
            durations,
            stream_clients,
            counts_lag,
            snapshots_published,
            counts_records_skipped,
            counts_records_consumed,
            messaging,
            counts_topic: OnceLock::new(),
            served_counts_ms,
            connections,
            registry,
        }
    }

    /// The route templates the router serves: the values of the `route` label besides
    /// [`UNMATCHED`]. The first declaration holds; every router built on these metrics declares
    /// the same table.
    pub fn declare_routes(&self, templates: impl IntoIterator<Item = &'static str>) {
        self.routes.get_or_init(|| templates.into_iter().collect());
    }

    /// The `route` label of a matched template: the template as declared, or [`UNMATCHED`].
    fn route_label(&self, route: Option<&str>) -> &'static str {
        let declared = self.routes.get().map(|r| &r[..]).unwrap_or_default();
        route
            .and_then(|r| declared.iter().find(|name| **name == r))
            .map_or(UNMATCHED, |name| name)
    }

    /// Records one response. `route` is the matched template, `None` when nothing matched; a
    /// template never declared counts as unmatched.
    pub fn observe(&self, route: Option<&str>, status: u16, took: Duration) {
        let route = self.route_label(route);
        if STATUSES.contains(&status) {
            self.requests
                .get_or_create(&RequestLabels { route, status })
                .inc();
        }
        self.durations
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }

    /// The open-streams gauge (held by the stream cap).
    pub fn stream_clients_gauge(&self) -> &Gauge {
        &self.stream_clients
    }

    /// Open streams.
    pub fn stream_clients(&self) -> i64 {
        self.stream_clients.get()
    }

    pub fn set_counts_lag(&self, records: i64) {
        self.counts_lag.set(records);
    }

    pub fn snapshot_published(&self) {
        self.snapshots_published.inc();
    }

    /// A counts record the follower could not decode (and skipped).
    pub fn counts_record_skipped(&self) {
        self.counts_records_skipped.inc();
    }

    pub fn counts_records_skipped(&self) -> u64 {
        self.counts_records_skipped.get()
    }

    /// The follower read `n` counts records.
    pub fn counts_records_consumed(&self, n: u64) {
        self.counts_records_consumed.inc_by(n);
        if let Some((consumed, _)) = self.counts_topic.get() {
            consumed.inc_by(n);
        }
    }

    /// Names the counts topic the follower reads: its `messaging_client_*` series exist from
    /// now on (consumed by no group: the API assigns partitions itself).
    pub fn follow_counts_topic(&self, topic: &str) {
        self.counts_topic.get_or_init(|| {
            (
                self.messaging.consumed(topic, ""),
                self.messaging.operation("process", topic),
            )
        });
    }

    /// One batch of counts records applied, in `took`.
    pub fn counts_batch_applied(&self, took: Duration) {
        if let Some((_, duration)) = self.counts_topic.get() {
            duration.observe(took.as_secs_f64());
        }
    }

    /// A snapshot was published whose newest counts record has Kafka timestamp `ms` (the
    /// counts age is measured from it; a snapshot with no record keeps the last time).
    pub fn set_served_counts_time(&self, ms: i64) {
        self.served_counts_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The connection counts of `listener`.
    pub fn connections(&self, listener: Listener) -> &ConnectionStats {
        match listener {
            Listener::Api => &self.connections[0],
            Listener::Metrics => &self.connections[1],
        }
    }

    /// The registry, for a part of the API that registers its own families (the blocklist,
    /// the webhooks) before the metrics are shared; this module stays free of them.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The exposition (what `/metrics` serves, as [`trends_common::metrics::CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        trends_common::metrics::encode(&self.registry)
    }
}

/// Registers the three connection families and takes the handles of every listener's series
/// (created now, so that they read 0 before anything happened), in [`Listener::ALL`]'s order.
fn connection_families(registry: &mut Registry) -> [ConnectionStats; 2] {
    let open = Family::<ListenerLabel, Gauge>::default();
    registry.register(
        "http_connections",
        "Open TCP connections, by listener",
        open.clone(),
    );
    let rejected = Family::<ListenerLabel, Counter>::default();
    registry.register(
        "http_connections_rejected",
        "Connections closed at once because http.max_connections were open",
        rejected.clone(),
    );
    let timed_out = Family::<TimeoutLabels, Counter>::default();
    registry.register(
        "http_connections_timed_out",
        "Connections closed by the header-read or the idle timeout",
        timed_out.clone(),
    );
    Listener::ALL.map(|listener| {
        let listener = listener.label();
        let timeout = |reason| timed_out.get_or_create_owned(&TimeoutLabels { listener, reason });
        ConnectionStats {
            open: open.get_or_create_owned(&ListenerLabel { listener }),
            rejected: rejected.get_or_create_owned(&ListenerLabel { listener }),
            header_read_timeouts: timeout("header_read"),
            idle_timeouts: timeout("idle"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::new();
        metrics.declare_routes(["/api/v1/trends", "/api/v1/hashtags/{tag}"]);
        metrics.observe(Some("/api/v1/trends"), 200, Duration::from_micros(300));
        metrics.observe(Some("/api/v1/trends"), 200, Duration::from_millis(2));
        metrics.observe(Some("/api/v1/trends"), 400, Duration::from_secs(10));
        metrics.observe(None, 404, Duration::from_micros(50));
        metrics.observe(Some("/not/a/route"), 404, Duration::from_micros(50));
        metrics.set_counts_lag(17);
        metrics.snapshot_published();
        metrics.stream_clients_gauge().inc();
        metrics.stream_clients_gauge().inc();
        metrics.counts_record_skipped();
        metrics.counts_record_skipped();
        metrics.counts_records_consumed(2);
        metrics.follow_counts_topic("counts");
        metrics.counts_records_consumed(3);
        metrics.counts_batch_applied(Duration::from_millis(3));
        assert!(
            !metrics.render().contains("counts_age_seconds"),
            "no counts age before a snapshot"
        );
        metrics.set_served_counts_time(trends_common::time::now_ms() - 90_000);
        let api = metrics.connections(Listener::Api);
        for _ in 0..3 {
            api.open_gauge().inc();
        }
        api.rejected_one();
        api.header_read_timed_out();
        metrics.connections(Listener::Metrics).idle_timed_out();
        let text = metrics.render();
        for line in [
            "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"200\"} 2\n",
            "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"400\"} 1\n",
            "trends_api_http_requests_total{route=\"unmatched\",status=\"404\"} 2\n",
            "trends_api_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/api/v1/trends\"} 1\n",
            "trends_api_http_request_duration_seconds_bucket{le=\"0.0025\",route=\"/api/v1/trends\"} 2\n",
            "trends_api_http_request_duration_seconds_bucket{le=\"5.0\",route=\"/api/v1/trends\"} 2\n",
            "trends_api_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/v1/trends\"} 3\n",
            "trends_api_http_request_duration_seconds_sum{route=\"/api/v1/trends\"} 10.0023\n",
            "trends_api_http_request_duration_seconds_count{route=\"/api/v1/trends\"} 3\n",
            "trends_api_stream_clients 2\n",
            "trends_api_counts_lag_records 17\n",
            "trends_api_snapshots_published_total 1\n",
            "trends_api_counts_records_skipped_total 2\n",
            "trends_api_counts_records_consumed_total 5\n",
            "trends_api_http_connections{listener=\"api\"} 3\n",
            "trends_api_http_connections{listener=\"metrics\"} 0\n",
            "trends_api_http_connections_rejected_total{listener=\"api\"} 1\n",
            "trends_api_http_connections_timed_out_total{listener=\"api\",reason=\"header_read\"} 1\n",
            "trends_api_http_connections_timed_out_total{listener=\"api\",reason=\"idle\"} 0\n",
            "trends_api_http_connections_timed_out_total{listener=\"metrics\",reason=\"idle\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("hashtags/{tag}\",status"), "{text}");
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let age = value("trends_api_counts_age_seconds ");
        assert!(
            age.is_some_and(|age| (90.0..120.0).contains(&age)),
            "the counts age is measured at the scrape: {age:?}\n{text}"
        );
        assert!(
            value("trends_api_resident_memory_bytes ").is_some_and(|bytes| bytes > 1e6),
            "{text}"
        );
        for family in [
            "# TYPE trends_api_messaging_client_consumed_messages counter",
            "trends_api_messaging_client_consumed_messages_total{messaging_system=\"kafka\",messaging_destination_name=\"counts\",messaging_consumer_group_name=\"\"} 3\n",
            "trends_api_messaging_client_operation_duration_seconds_count{messaging_system=\"kafka\",messaging_operation_name=\"process\",messaging_destination_name=\"counts\"} 1\n",
            "# TYPE trends_api_messaging_client_operation_duration_seconds histogram",
            "# TYPE trends_api_trace_spans_exported counter",
            "# TYPE trends_api_trace_spans_dropped counter",
            "# TYPE trends_api_trace_spans_export_failed counter",
        ] {
            assert!(text.contains(family), "{family} in {text}");
        }
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# TYPE")).count(),
            // 12, the 3 trace span counters, and 2 messaging families with series (the API sends
            // nothing: no sent family is shown).
            17,
            "{text}"
        );
    }

    #[test]
    fn help_ends_in_one_full_stop_and_the_body_in_eof() {
        let text = Metrics::new().render();
        assert!(
            text.contains("# HELP trends_api_snapshots_published Snapshots made servable.\n"),
            "{text}"
        );
        assert!(
            !text.contains(".."),
            "the library adds the full stop:\n{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_status_outside_100_to_599_is_timed_but_not_counted() {
        let metrics = Metrics::new();
        metrics.observe(None, 999, Duration::from_millis(1));
        metrics.observe(None, 99, Duration::from_millis(1));
        let text = metrics.render();
        assert!(!text.contains("trends_api_http_requests_total{"), "{text}");
        assert!(
            text.contains(
                "trends_api_http_request_duration_seconds_count{route=\"unmatched\"} 2\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn two_instances_do_not_share_metrics() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.snapshot_published();
        a.stream_clients_gauge().inc();
        a.connections(Listener::Api).open_gauge().inc();
        // Series come in hash order: compare them sorted (the resident memory, read at each
        // scrape, moves by itself).
        let sorted = |metrics: &Metrics| {
            let mut lines: Vec<String> = metrics
                .render()
                .lines()
                .filter(|l| !l.starts_with("trends_api_resident_memory_bytes "))
                .map(String::from)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&b), sorted(&Metrics::new()));
        assert_eq!(a.stream_clients(), 1);
    }
}
