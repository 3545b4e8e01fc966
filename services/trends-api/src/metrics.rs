//! The API's metrics, served as Prometheus text on `GET /metrics`.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_api_http_requests_total{route,status}` | counter | responses by route template and status |
//! | `trends_api_http_request_duration_seconds{route}` | histogram | time to the response head, by route |
//! | `trends_api_stream_clients` | gauge | open `/api/v1/stream` connections |
//! | `trends_api_counts_lag_records` | gauge | records between the follower's position and the end of the counts topic (all partitions) |
//! | `trends_api_snapshots_published_total` | counter | snapshots made servable |
//! | `trends_api_counts_records_skipped_total` | counter | counts-topic records the follower could not decode, logged and skipped |
//! | `trends_api_http_connections{listener}` | gauge | open TCP connections |
//! | `trends_api_http_connections_rejected_total{listener}` | counter | connections closed at once because `http.max_connections` were open |
//! | `trends_api_http_connections_timed_out_total{listener,reason}` | counter | connections closed by a timeout: `reason="header_read"` (no whole request head within `http.header_read_timeout_ms`: a slowloris, or a kept-alive connection with no next request) or `"idle"` (no byte moved either way for `http.idle_timeout_ms`) |
//!
//! `listener` is `api` (`http.addr`) or `metrics` (the separate `/metrics` listener of
//! `http.metrics_addr`; its series stay at zero without one).
//!
//! `route` is the matched route template (`/api/v1/hashtags/{tag}`), never the raw path, and
//! `unmatched` for requests no route matched, so the number of series is fixed by the code and
//! not by what clients send. The templates are declared once, by the router that serves them
//! (`crate::app`'s route table, [`Metrics::declare_routes`]), so the label values and the routes
//! cannot drift apart. The values are plain atomics in fixed arrays: recording a request takes
//! no lock, which matters at tens of thousands of requests per second. The exposition is
//! hand-written, like the aggregator's (`services/hashtag-aggregator/src/metrics.rs`).
//!
//! The rest of the crate sees only methods (`observe`, `set_counts_lag`, …, `render`) and
//! [`Gauge`] handles, never the atomics, so the storage can change without touching the
//! callers. A [`Gauge`] is shaped like `prometheus_client`'s: a cloneable shared value with
//! `inc`, `dec` and `get`; the caps (`crate::cap`) hold one each, so the open streams and
//! connections gauges move with the places held.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Histogram bucket bounds in seconds (cumulative `le` buckets; `+Inf` is the count).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Status codes 100..=599 get one counter each.
const STATUSES: usize = 500;

#[derive(Debug)]
struct RouteStats {
    by_status: Box<[AtomicU64]>,
    /// Non-cumulative per bucket; the last slot is above every bound.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            by_status: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

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

/// A gauge: a shared value that goes up and down. Clones are handles to the same value.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connection counts of one listener.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: Gauge,
    rejected: AtomicU64,
    header_read_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
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
        self.rejected.fetch_add(1, Ordering::Relaxed)
    }

    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    pub fn header_read_timed_out(&self) {
        self.header_read_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn header_read_timeouts(&self) -> u64 {
        self.header_read_timeouts.load(Ordering::Relaxed)
    }

    pub fn idle_timed_out(&self) {
        self.idle_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn idle_timeouts(&self) -> u64 {
        self.idle_timeouts.load(Ordering::Relaxed)
    }
}

/// Shared metric values.
#[derive(Debug)]
pub struct Metrics {
    /// Per route template, in the order declared; set once by [`Metrics::declare_routes`].
    routes: OnceLock<Box<[(&'static str, RouteStats)]>>,
    unmatched: RouteStats,
    stream_clients: Gauge,
    counts_lag: AtomicI64,
    snapshots_published: AtomicU64,
    counts_records_skipped: AtomicU64,
    /// Indexed like [`Listener::ALL`].
    connections: [ConnectionStats; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics. Until [`Metrics::declare_routes`], every request counts as unmatched.
    pub fn new() -> Self {
        Metrics {
            routes: OnceLock::new(),
            unmatched: RouteStats::new(),
            stream_clients: Gauge::default(),
            counts_lag: AtomicI64::new(0),
            snapshots_published: AtomicU64::new(0),
            counts_records_skipped: AtomicU64::new(0),
            connections: Default::default(),
        }
    }

    /// The route templates the router serves: the values of the `route` label besides
    /// [`UNMATCHED`]. The first declaration holds; every router built on these metrics declares
    /// the same table.
    pub fn declare_routes(&self, templates: impl IntoIterator<Item = &'static str>) {
        self.routes.get_or_init(|| {
            templates
                .into_iter()
                .map(|t| (t, RouteStats::new()))
                .collect()
        });
    }

    /// The declared templates and [`UNMATCHED`], with their stats, in the order rendered.
    fn route_stats(&self) -> impl Iterator<Item = (&'static str, &RouteStats)> {
        let declared = self.routes.get().map(|r| &r[..]).unwrap_or_default();
        declared
            .iter()
            .map(|(name, stats)| (*name, stats))
            .chain([(UNMATCHED, &self.unmatched)])
    }

    /// Records one response. `route` is the matched template, `None` when nothing matched; a
    /// template never declared counts as unmatched.
    pub fn observe(&self, route: Option<&str>, status: u16, took: Duration) {
        let stats = route
            .and_then(|r| self.route_stats().find(|(name, _)| *name == r))
            .map_or(&self.unmatched, |(_, stats)| stats);
        if let Some(counter) = usize::from(status)
            .checked_sub(100)
            .and_then(|i| stats.by_status.get(i))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(DURATION_BUCKETS.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        stats.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        stats.count.fetch_add(1, Ordering::Relaxed);
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
        self.counts_lag.store(records, Ordering::Relaxed);
    }

    pub fn snapshot_published(&self) {
        self.snapshots_published.fetch_add(1, Ordering::Relaxed);
    }

    /// A counts record the follower could not decode (and skipped).
    pub fn counts_record_skipped(&self) {
        self.counts_records_skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts_records_skipped(&self) -> u64 {
        self.counts_records_skipped.load(Ordering::Relaxed)
    }

    /// The connection counts of `listener`.
    pub fn connections(&self, listener: Listener) -> &ConnectionStats {
        match listener {
            Listener::Api => &self.connections[0],
            Listener::Metrics => &self.connections[1],
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP trends_api_http_requests_total HTTP responses by route template and status."
        );
        let _ = writeln!(out, "# TYPE trends_api_http_requests_total counter");
        for (route, stats) in self.route_stats() {
            for (i, counter) in stats.by_status.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n > 0 {
                    let status = i + 100;
                    let _ = writeln!(
                        out,
                        "trends_api_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP trends_api_http_request_duration_seconds Time from request to response head, by route template."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_api_http_request_duration_seconds histogram"
        );
        for (route, stats) in self.route_stats() {
            let count = stats.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (le, bucket) in DURATION_BUCKETS.iter().zip(&stats.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "trends_api_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += stats.buckets[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "trends_api_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "trends_api_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "trends_api_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }
        let gauges = [
            (
                "stream_clients",
                "Open /api/v1/stream connections.",
                self.stream_clients(),
            ),
            (
                "counts_lag_records",
                "Records between the follower's position and the end of the counts topic.",
                self.counts_lag.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP trends_api_{name} {help}");
            let _ = writeln!(out, "# TYPE trends_api_{name} gauge");
            let _ = writeln!(out, "trends_api_{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP trends_api_snapshots_published_total Snapshots made servable."
        );
        let _ = writeln!(out, "# TYPE trends_api_snapshots_published_total counter");
        let _ = writeln!(
            out,
            "trends_api_snapshots_published_total {}",
            self.snapshots_published.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP trends_api_counts_records_skipped_total Counts-topic records that could not be decoded and were skipped."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_api_counts_records_skipped_total counter"
        );
        let _ = writeln!(
            out,
            "trends_api_counts_records_skipped_total {}",
            self.counts_records_skipped()
        );
        self.render_connections(&mut out);
        out
    }

    fn render_connections(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP trends_api_http_connections Open TCP connections, by listener."
        );
        let _ = writeln!(out, "# TYPE trends_api_http_connections gauge");
        for listener in Listener::ALL {
            let _ = writeln!(
                out,
                "trends_api_http_connections{{listener=\"{}\"}} {}",
                listener.label(),
                self.connections(listener).open()
            );
        }
        let _ = writeln!(
            out,
            "# HELP trends_api_http_connections_rejected_total Connections closed at once because http.max_connections were open."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_api_http_connections_rejected_total counter"
        );
        for listener in Listener::ALL {
            let _ = writeln!(
                out,
                "trends_api_http_connections_rejected_total{{listener=\"{}\"}} {}",
                listener.label(),
                self.connections(listener).rejected()
            );
        }
        let _ = writeln!(
            out,
            "# HELP trends_api_http_connections_timed_out_total Connections closed by the header-read or the idle timeout."
        );
        let _ = writeln!(
            out,
            "# TYPE trends_api_http_connections_timed_out_total counter"
        );
        for listener in Listener::ALL {
            let stats = self.connections(listener);
            for (reason, n) in [
                ("header_read", stats.header_read_timeouts()),
                ("idle", stats.idle_timeouts()),
            ] {
                let _ = writeln!(
                    out,
                    "trends_api_http_connections_timed_out_total{{listener=\"{}\",reason=\"{reason}\"}} {n}",
                    listener.label()
                );
            }
        }
    }
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
            "trends_api_http_request_duration_seconds_bucket{route=\"/api/v1/trends\",le=\"0.0005\"} 1\n",
            "trends_api_http_request_duration_seconds_bucket{route=\"/api/v1/trends\",le=\"0.0025\"} 2\n",
            "trends_api_http_request_duration_seconds_bucket{route=\"/api/v1/trends\",le=\"5\"} 2\n",
            "trends_api_http_request_duration_seconds_bucket{route=\"/api/v1/trends\",le=\"+Inf\"} 3\n",
            "trends_api_http_request_duration_seconds_sum{route=\"/api/v1/trends\"} 10.0023\n",
            "trends_api_http_request_duration_seconds_count{route=\"/api/v1/trends\"} 3\n",
            "trends_api_stream_clients 2\n",
            "trends_api_counts_lag_records 17\n",
            "trends_api_snapshots_published_total 1\n",
            "trends_api_counts_records_skipped_total 2\n",
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
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# TYPE")).count(),
            9,
            "{text}"
        );
    }
}
