//! HTTP routes. [`app`] builds the whole router from an [`AppState`] and [`HttpOptions`], so
//! tests can drive it without a socket or Kafka.
//!
//! Handlers only read: the latest [`Prepared`] snapshot (from a watch channel the follower
//! publishes into), the readiness flag and the metrics. `/trends` and `/stream` serve bodies
//! serialized once per snapshot; `/hashtags/{tag}` looks one tag up and reads its buckets.
//!
//! Layers, innermost first: body limit, request timeout, per-IP rate limit (optional), CORS
//! (optional), [`json_errors`] (gives the JSON error shape to errors made by layers), metrics
//! (sees every final status), tracing, and [`security_headers`] outermost, so that every
//! response the router makes carries them: data, errors, the page, streams and `/metrics`.
//!
//! With `http.metrics_addr` set, `/metrics` is served by [`metrics_app`] on its own listener
//! (so it need not be public) and [`app`] answers 404 for it. Connection-level limits (header
//! read and idle timeouts, the connection cap) are the server's, in [`crate::server`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use trends_core::format_rfc3339_millis;
use trends_core::hashtag::normalize;
use trends_core::view::Series;
use trends_core::window::{BucketLayout, Window};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, ErrorBody, json_errors};
use crate::metrics::Metrics;
use crate::prepared::{MAX_LIMIT, Prepared, TrendsResponse};
use crate::rate_limit::RateLimit;
use crate::settings::{CorsOrigins, Settings};
use crate::stream::{self, StreamOptions, StreamsByIp};

pub const TRENDS: &str = "/api/v1/trends";
pub const HASHTAG: &str = "/api/v1/hashtags/{tag}";
pub const WINDOWS: &str = "/api/v1/windows";
pub const STREAM: &str = "/api/v1/stream";
pub const OPENAPI: &str = "/openapi.json";
pub const METRICS: &str = "/metrics";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";

/// Every route template, the label values of the request metrics.
pub const ROUTES: [&str; 11] = [
    TRENDS,
    HASHTAG,
    WINDOWS,
    STREAM,
    OPENAPI,
    METRICS,
    HEALTHZ,
    READYZ,
    "/",
    "/app.js",
    "/style.css",
];

const DEFAULT_WINDOW: Window = Window::M5;
const DEFAULT_LIMIT: usize = 10;
/// Longest accepted hashtag or prefix, in bytes (before normalization).
const MAX_TAG_BYTES: usize = 280;
/// Requests are GETs: no handler reads a body.
const MAX_BODY_BYTES: usize = 1024;

/// The page is three same-origin files with no inline script or `style` attribute in its
/// markup (its script sets styles through the CSSOM, which CSP allows), a `data:` favicon,
/// and `fetch`/`EventSource` to its own origin. Nothing else is allowed: no other origin, no
/// plugin, no `<base>`, no form target, and no framing (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Shared state of all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The latest prepared snapshot.
    pub snapshot: watch::Receiver<Arc<Prepared>>,
    /// Caught up with the counts topic.
    pub ready: Arc<AtomicBool>,
    /// Bucket sizes (`/windows`).
    pub layout: BucketLayout,
    pub metrics: Arc<Metrics>,
    pub stream: StreamOptions,
    /// Open streams per client address (the per-IP stream cap).
    pub streams_by_ip: Arc<StreamsByIp>,
    /// Ends open streams when the server stops.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State with the default layout and stream options, fresh metrics, and a shutdown token
    /// nobody cancels.
    pub fn new(snapshot: watch::Receiver<Arc<Prepared>>, ready: Arc<AtomicBool>) -> Self {
        AppState {
            snapshot,
            ready,
            layout: BucketLayout::default(),
            metrics: Arc::new(Metrics::new(&ROUTES)),
            stream: StreamOptions::default(),
            streams_by_ip: Arc::new(StreamsByIp::default()),
            shutdown: CancellationToken::new(),
        }
    }

    fn current(&self) -> Arc<Prepared> {
        self.snapshot.borrow().clone()
    }
}

/// Limits and cross-origin policy of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub request_timeout: Duration,
    pub cors: CorsOrigins,
    /// `None`: no rate limit.
    pub rate_limit: Option<RateLimit>,
    /// A request head must arrive whole within this (from the connection's start, or from the
    /// end of the previous response on a kept-alive connection); else the connection closes.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves, either way, for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections per listener; a connection beyond is closed at once.
    pub max_connections: usize,
    /// `/metrics` has its own listener ([`metrics_app`]); [`app`] answers 404 for it.
    pub separate_metrics_listener: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            request_timeout: Duration::from_secs(10),
            cors: CorsOrigins::None,
            rate_limit: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 20_000,
            separate_metrics_listener: false,
        }
    }
}

impl HttpOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        HttpOptions {
            request_timeout: Duration::from_millis(settings.http.request_timeout_ms),
            // Validated at load.
            cors: settings.cors_origins().unwrap_or(CorsOrigins::None),
            rate_limit: RateLimit::new(
                settings.http.rate_limit_per_sec,
                settings.http.rate_limit_burst,
            ),
            header_read_timeout: Duration::from_millis(settings.http.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(settings.http.idle_timeout_ms),
            max_connections: settings.http.max_connections,
            separate_metrics_listener: !settings.http.metrics_addr.trim().is_empty(),
        }
    }
}

/// The full router of the API port.
pub fn app(state: AppState, options: &HttpOptions) -> Router {
    let metrics = state.metrics.clone();
    let mut routes = Router::new()
        .route(TRENDS, get(trends))
        .route(HASHTAG, get(hashtag))
        .route(WINDOWS, get(windows))
        .route(STREAM, get(stream))
        .route(OPENAPI, get(crate::openapi::openapi_json))
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
        .route("/", get(crate::web::index))
        .route("/app.js", get(crate::web::app_js))
        .route("/style.css", get(crate::web::style_css));
    if !options.separate_metrics_listener {
        routes = routes.route(METRICS, get(self::metrics));
    }
    let mut router = with_request_limits(routes, state, options);
    if let Some(limit) = &options.rate_limit {
        router = router.layer(middleware::from_fn_with_state(
            limit.clone(),
            crate::rate_limit::limit,
        ));
    }
    if let Some(cors) = cors_layer(&options.cors) {
        router = router.layer(cors);
    }
    with_outer_layers(router, metrics)
}

/// The router of the separate metrics listener (`http.metrics_addr`): `/metrics` only, with the
/// same error shape, request metrics and security headers as [`app`]; no rate limit or CORS.
pub fn metrics_app(state: AppState, options: &HttpOptions) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new().route(METRICS, get(self::metrics));
    with_outer_layers(with_request_limits(routes, state, options), metrics)
}

/// The 404 and 405 fallbacks, the state, the body limit and the request timeout.
fn with_request_limits(routes: Router<AppState>, state: AppState, options: &HttpOptions) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
}

/// The JSON error shape, request metrics, tracing and the security headers, in that order
/// from the inside.
fn with_outer_layers(router: Router, metrics: Arc<Metrics>) -> Router {
    router
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(metrics, record))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::map_response(security_headers))
}

/// Adds the security headers to a response (replacing any a handler set).
///
/// `Content-Security-Policy` ([`CONTENT_SECURITY_POLICY`]) limits what a page may load and
/// forbids framing; `X-Frame-Options: DENY` says the same to browsers without CSP level 2;
/// `X-Content-Type-Options: nosniff` stops a browser from running a JSON or text response as a
/// script or a page; `Referrer-Policy: no-referrer` keeps the page's URL (its query: a window,
/// a hashtag) from other sites.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Read-only CORS for the configured origins; `None` when off.
fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        }
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::HEAD])
            .max_age(Duration::from_secs(600)),
    )
}

/// Middleware: counts every response by route template and status, and times it.
async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn not_found() -> AppError {
    AppError::NotFound {
        code: "not_found",
        message: "no such route".into(),
    }
}

/// Query parameters of `/api/v1/trends` and `/api/v1/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendsQuery {
    /// The window; default `5m`.
    #[param(value_type = Option<crate::openapi::WindowName>)]
    window: Option<String>,
    /// How many tags, 1–100; default 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Only tags whose counting form starts with this, normalized like tags (a leading `#` is
    /// dropped, NFKC, lowercase). Ranks stay those of the full ranking. Empty = no filter.
    #[param(max_length = 280, example = "ru")]
    prefix: Option<String>,
}

/// The parsed and checked query.
fn parse_query(
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<stream::Query, AppError> {
    let Query(query) = query.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let window = match &query.window {
        None => DEFAULT_WINDOW,
        Some(w) => w.parse().map_err(|e: trends_core::window::UnknownWindow| {
            AppError::bad_request("invalid_window", e.to_string())
        })?,
    };
    let limit = match &query.limit {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AppError::bad_request(
                    "invalid_limit",
                    format!("limit must be an integer from 1 to {MAX_LIMIT}, got {l:?}"),
                ));
            }
        },
    };
    let prefix = match &query.prefix {
        None => String::new(),
        Some(p) if p.len() > MAX_TAG_BYTES => {
            return Err(AppError::bad_request(
                "invalid_prefix",
                format!("prefix longer than {MAX_TAG_BYTES} bytes"),
            ));
        }
        Some(p) => normalize(p.trim()),
    };
    Ok(stream::Query {
        window,
        limit,
        prefix,
    })
}

/// The top hashtags of a window.
///
/// Ranked by count (descending), ties by hashtag (ascending, by code point). With `prefix`,
/// only tags starting with it, keeping their rank in the full ranking.
#[utoipa::path(
    get,
    path = "/api/v1/trends",
    tag = "trends",
    params(TrendsQuery),
    responses(
        (status = 200, description = "The ranking", body = TrendsResponse),
        (status = 400, description = "`invalid_window`, `invalid_limit`, `invalid_prefix` or `invalid_query`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (only with a rate limit configured); see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn trends(
    State(state): State<AppState>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let q = parse_query(query)?;
    let body = state.current().trends_body(q.window, q.limit, &q.prefix);
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        body,
    ))
}

/// The `/trends` body as Server-Sent Events, whenever it changes.
///
/// Each event is `event: trends` with `data:` exactly the `/api/v1/trends` body for the same
/// parameters. The first comes at once (with a `retry:` hint), then one each time the body
/// changes, at most `api.stream_max_events_per_sec` per second (default 4); a `: keep-alive`
/// comment after 15 s without an event.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "trends",
    params(TrendsQuery),
    responses(
        (status = 200, description = "An event stream; each event's data is a TrendsResponse", body = TrendsResponse, content_type = "text/event-stream"),
        (status = 400, description = "As for /api/v1/trends", body = ErrorBody),
        (status = 429, description = "`too_many_streams_from_ip`: `api.max_streams_per_ip` streams are open from this client's address (IPv6: its /64); or `rate_limited` (only with a rate limit configured). See `Retry-After`", body = ErrorBody),
        (status = 503, description = "`too_many_streams`: `api.max_stream_clients` streams are open; see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let q = parse_query(query)?;
    stream::open(
        state.snapshot.clone(),
        stream::Caps {
            metrics: &state.metrics,
            by_ip: &state.streams_by_ip,
            client: peer_ip(peer),
        },
        &state.stream,
        state.shutdown.clone(),
        q,
    )
}

/// The TCP peer's address; unspecified when the request did not come through a socket (tests
/// calling the router directly), so such requests share one key.
fn peer_ip(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    peer.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(addr))| addr.ip(),
    )
}

/// `/api/v1/hashtags/{tag}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashtagResponse {
    /// The counting form.
    #[schema(example = "rust")]
    pub hashtag: String,
    /// The most frequent original spelling (all time).
    #[schema(example = "Rust")]
    pub display: String,
    /// The latest event time in the data (RFC 3339, milliseconds, UTC); `null` before any data.
    #[schema(required = true, format = DateTime)]
    pub watermark: Option<String>,
    pub counts: WindowCounts,
    pub series: SeriesByWindow,
}

/// A count per window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowCounts {
    #[serde(rename = "1m")]
    pub m1: i64,
    #[serde(rename = "5m")]
    pub m5: i64,
    #[serde(rename = "15m")]
    pub m15: i64,
    #[serde(rename = "1h")]
    pub h1: i64,
    #[serde(rename = "24h")]
    pub h24: i64,
    #[serde(rename = "all")]
    pub all: i64,
}

/// The tag's count per bucket over the last hour and the last day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesByWindow {
    #[serde(rename = "1h")]
    pub h1: SeriesResponse,
    #[serde(rename = "24h")]
    pub h24: SeriesResponse,
}

/// Every bucket of a window, oldest first, zeros included, ending with the bucket that holds
/// the watermark; empty before any data.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesResponse {
    /// Bucket size in seconds.
    #[schema(example = 10)]
    pub bucket_secs: i64,
    pub points: Vec<SeriesPoint>,
}

/// One bucket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    /// The bucket's start (RFC 3339, UTC).
    #[schema(format = DateTime, example = "2026-11-22T10:00:00.000Z")]
    pub start: String,
    #[schema(minimum = 0)]
    pub count: i64,
}

impl SeriesResponse {
    fn from_series(series: Option<Series>) -> Self {
        let series = series.unwrap_or(Series {
            bucket_ms: 0,
            points: Vec::new(),
        });
        SeriesResponse {
            bucket_secs: series.bucket_ms / 1000,
            points: series
                .points
                .into_iter()
                .map(|(start, count)| SeriesPoint {
                    start: format_rfc3339_millis(start),
                    count,
                })
                .collect(),
        }
    }
}

/// A hashtag's count in every window, its display form, and its time series.
///
/// The tag may be given in any spelling (`Rust`, `#rust`, `%23RUST`); it is normalized like
/// the counts.
#[utoipa::path(
    get,
    path = "/api/v1/hashtags/{tag}",
    tag = "trends",
    params(("tag" = String, Path, description = "A hashtag in any spelling, with or without `#` (URL-encoded as `%23`)", max_length = 280)),
    responses(
        (status = 200, description = "The tag's counts and series", body = HashtagResponse),
        (status = 400, description = "`invalid_hashtag`", body = ErrorBody),
        (status = 404, description = "`unknown_hashtag`: never seen", body = ErrorBody),
    ),
)]
pub async fn hashtag(
    State(state): State<AppState>,
    tag: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Path(raw) = tag.map_err(|e| AppError::bad_request("invalid_hashtag", e.body_text()))?;
    if raw.len() > MAX_TAG_BYTES {
        return Err(AppError::bad_request(
            "invalid_hashtag",
            format!("hashtag longer than {MAX_TAG_BYTES} bytes"),
        ));
    }
    let tag = normalize(raw.trim());
    if tag.is_empty() {
        return Err(AppError::bad_request("invalid_hashtag", "hashtag is empty"));
    }
    let prepared = state.current();
    let snapshot = prepared.snapshot();
    let summary = snapshot.tag(&tag).ok_or_else(|| AppError::NotFound {
        code: "unknown_hashtag",
        message: format!("no counts for #{tag}"),
    })?;
    let [m1, m5, m15, h1, h24, all] = summary.counts;
    let body = HashtagResponse {
        display: summary.display.to_string(),
        watermark: prepared.watermark().map(str::to_string),
        counts: WindowCounts {
            m1,
            m5,
            m15,
            h1,
            h24,
            all,
        },
        series: SeriesByWindow {
            h1: SeriesResponse::from_series(snapshot.series(&tag, Window::H1)),
            h24: SeriesResponse::from_series(snapshot.series(&tag, Window::H24)),
        },
        hashtag: tag,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// `/api/v1/windows`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowsResponse {
    /// Size of the buckets of `1m`, `5m`, `15m` and `1h`, in seconds.
    #[schema(example = 10)]
    pub fine_bucket_secs: i64,
    /// Size of the buckets of `24h`, in seconds.
    #[schema(example = 300)]
    pub coarse_bucket_secs: i64,
    /// Every window, shortest first.
    pub windows: Vec<WindowInfo>,
}

/// One window.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInfo {
    #[schema(schema_with = crate::openapi::window_name)]
    pub name: &'static str,
    /// Length in seconds; `null` for `all`.
    #[schema(required = true)]
    pub seconds: Option<i64>,
    /// Size of its buckets in seconds; `null` for `all`.
    #[schema(required = true)]
    pub bucket_secs: Option<i64>,
    /// How many buckets it sums (the newest one still filling); `null` for `all`.
    #[schema(required = true)]
    pub buckets: Option<i64>,
}

/// The windows and their buckets.
#[utoipa::path(
    get,
    path = "/api/v1/windows",
    tag = "trends",
    responses((status = 200, description = "Windows, shortest first", body = WindowsResponse)),
)]
pub async fn windows(State(state): State<AppState>) -> Json<WindowsResponse> {
    let layout = state.layout;
    Json(WindowsResponse {
        fine_bucket_secs: layout.fine_ms / 1000,
        coarse_bucket_secs: layout.coarse_ms / 1000,
        windows: Window::ALL
            .iter()
            .map(|&w| {
                let bucket_ms = w.resolution().map(|r| layout.size_ms(r));
                WindowInfo {
                    name: w.as_str(),
                    seconds: w.duration_ms().map(|d| d / 1000),
                    bucket_secs: bucket_ms.map(|b| b / 1000),
                    buckets: w.duration_ms().zip(bucket_ms).map(|(d, b)| d / b),
                }
            })
            .collect(),
    })
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Alive", body = StatusBody)))]
pub async fn healthz() -> Json<StatusBody> {
    Json(StatusBody { status: "ok" })
}

/// Readiness: 200 once the counts topic has been read to its end.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Caught up with the counts topic", body = StatusBody),
        (status = 503, description = "`not_ready`: still loading; see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<StatusBody>, AppError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(Json(StatusBody { status: "ready" }))
    } else {
        Err(AppError::NotReady)
    }
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
