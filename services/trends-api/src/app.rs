//! The application: the route table, the router built from it ([`app`], and [`metrics_app`]
//! for a separate `/metrics` listener), the layers around it, and the HTTP options they take.
//! Tests drive [`app`] without a socket or Kafka; [`crate::server`] serves it.
//!
//! **One route table.** [`ROUTES`] lists every route once: its path template, its handler (in
//! [`crate::api`], or the page in [`crate::web`], or the document in [`crate::openapi`]) and
//! whether the optional rate limit applies. The router is built from it, the metrics' `route`
//! label values are its paths ([`Metrics::declare_routes`]), and the rate limit's exemptions
//! are its rows marked not limited, so a new endpoint is one row here and nothing can be
//! routed but unlabelled, or exempt by a path spelled differently elsewhere.
//!
//! **Layers**, innermost first: body limit, request timeout, per-IP rate limit (optional), CORS
//! (optional), [`json_errors`] (gives the JSON error shape to errors made by layers), metrics
//! (sees every final status), tracing, and [`security_headers`] outermost, so that every
//! response the router makes carries them: data, errors, the page, streams and `/metrics`.
//!
//! With `http.metrics_addr` set, `/metrics` is served by [`metrics_app`] on its own listener
//! (so it need not be public) and [`app`] answers 404 for it. Connection-level limits (header
//! read and idle timeouts, the connection cap) are the server's, in [`crate::server`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{AppError, json_errors};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimit;
use crate::settings::{CorsOrigins, Settings};
use crate::state::AppState;
use crate::{api, openapi, web};

/// One row of the route table.
#[derive(Debug)]
pub struct Route {
    /// The path template; also the value of the metrics' `route` label.
    pub path: &'static str,
    /// Its handlers (every route is `GET`, which answers `HEAD` too).
    handler: fn() -> MethodRouter<AppState>,
    /// Whether the optional per-client rate limit applies: not to probes and scrapers, which
    /// must not be refused because a client on the same address is busy.
    pub rate_limited: bool,
}

/// `/metrics`: on the API port, or alone on `http.metrics_addr`.
const METRICS: &str = "/metrics";

/// A route the optional rate limit applies to.
const fn limited(path: &'static str, handler: fn() -> MethodRouter<AppState>) -> Route {
    Route {
        path,
        handler,
        rate_limited: true,
    }
}

/// A route the rate limit spares.
const fn exempt(path: &'static str, handler: fn() -> MethodRouter<AppState>) -> Route {
    Route {
        path,
        handler,
        rate_limited: false,
    }
}

/// Every route of the API port, in the order the metrics list them.
pub const ROUTES: [Route; 12] = [
    limited("/api/v1/trends", || get(api::trends::trends)),
    limited("/api/v1/hashtags/{tag}", || get(api::hashtag::hashtag)),
    limited("/api/v1/windows", || get(api::windows::windows)),
    limited("/api/v1/languages", || get(api::languages::languages)),
    limited("/api/v1/stream", || get(api::stream::stream)),
    limited("/openapi.json", || get(openapi::openapi_json)),
    exempt(METRICS, || get(api::health::metrics)),
    exempt("/healthz", || get(api::health::healthz)),
    exempt("/readyz", || get(api::health::readyz)),
    limited("/", || get(web::index)),
    limited("/app.js", || get(web::app_js)),
    limited("/style.css", || get(web::style_css)),
];

/// Requests are GETs: no handler reads a body.
const MAX_BODY_BYTES: usize = 1024;

/// The page is three same-origin files with no inline script or `style` attribute in its
/// markup (its script sets styles through the CSSOM, which CSP allows), a `data:` favicon,
/// and `fetch`/`EventSource` to its own origin. Nothing else is allowed: no other origin, no
/// plugin, no `<base>`, no form target, and no framing (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
        let http = &settings.http;
        HttpOptions {
            request_timeout: http.request_timeout,
            cors: http.cors_allowed_origins.clone(),
            rate_limit: RateLimit::new(http.rate_limit_per_sec, http.rate_limit_burst),
            header_read_timeout: http.header_read_timeout,
            idle_timeout: http.idle_timeout,
            max_connections: http.max_connections,
            separate_metrics_listener: http.metrics_addr.is_some(),
        }
    }
}

/// The full router of the API port: every route of [`ROUTES`] (but `/metrics` when it has its
/// own listener).
pub fn app(state: AppState, options: &HttpOptions) -> Router {
    let routes = ROUTES
        .iter()
        .filter(|route| !(options.separate_metrics_listener && route.path == METRICS));
    let mut router = with_request_limits(router_of(routes), &state, options);
    if let Some(admin) = &state.admin {
        // Outside the 1 KiB body limit of the read-only routes (an import is up to
        // `moderation.max_import_bytes`, checked by the admin router itself), inside the rate
        // limit, CORS (GET only: no browser of another origin can write) and the outer layers.
        router = router.merge(admin.clone());
    }
    if let Some(limit) = &options.rate_limit {
        let exempt = ROUTES.iter().filter(|r| !r.rate_limited).map(|r| r.path);
        router = router.layer(middleware::from_fn_with_state(
            limit.sparing(exempt),
            crate::rate_limit::limit,
        ));
    }
    if let Some(cors) = cors_layer(&options.cors) {
        router = router.layer(cors);
    }
    with_outer_layers(router, &state.metrics)
}

/// The router of the separate metrics listener (`http.metrics_addr`): `/metrics` only, with the
/// same error shape, request metrics and security headers as [`app`]; no rate limit or CORS.
pub fn metrics_app(state: AppState, options: &HttpOptions) -> Router {
    let routes = ROUTES.iter().filter(|route| route.path == METRICS);
    let router = with_request_limits(router_of(routes), &state, options);
    with_outer_layers(router, &state.metrics)
}

/// A router of these rows of the table.
fn router_of<'a>(routes: impl Iterator<Item = &'a Route>) -> Router<AppState> {
    routes.fold(Router::new(), |router, route| {
        router.route(route.path, (route.handler)())
    })
}

/// The 404 and 405 fallbacks, the state, the body limit and the request timeout; and the
/// metrics learn the table's templates.
fn with_request_limits(
    routes: Router<AppState>,
    state: &AppState,
    options: &HttpOptions,
) -> Router {
    state.metrics.declare_routes(
        ROUTES
            .iter()
            .map(|route| route.path)
            .chain(crate::moderation::ADMIN_PATHS),
    );
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state.clone())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
}

/// The JSON error shape, request metrics, tracing and the security headers, in that order
/// from the inside.
fn with_outer_layers(router: Router, metrics: &Arc<Metrics>) -> Router {
    router
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(metrics.clone(), record))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(http_span)
                .on_response(
                    |response: &Response, _latency: std::time::Duration, span: &tracing::Span| {
                        span.record("http.response.status_code", response.status().as_u16());
                    },
                ),
        )
        .layer(middleware::map_response(security_headers))
}

/// A request's span (kind server), a child of the caller's span when the request carries a
/// W3C `traceparent`; named `METHOD /route/template` as OpenTelemetry's HTTP conventions say.
/// With tracing off it is the empty span, as before (tower-http's default is at DEBUG).
fn http_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !trends_common::trace_context::enabled() {
        return tracing::Span::none();
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {}", route.as_deref().unwrap_or("")),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route.as_deref().unwrap_or(""),
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    // An invalid or absent traceparent gives the empty context: the span is a root.
    let _ = span.set_parent(trends_common::trace_context::http_parent(request.headers()));
    span
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
