//! HTTP routes. [`app`] builds the whole router from an [`AppState`], so tests can drive it
//! without a socket or Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use trends_core::format_rfc3339_millis;
use trends_core::hashtag::normalize;
use trends_core::view::Snapshot;
use trends_core::window::Window;

use crate::error::AppError;

/// Shared state of all handlers: the latest prepared snapshot and readiness.
#[derive(Debug, Clone)]
pub struct AppState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }
}

const DEFAULT_WINDOW: Window = Window::M5;
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
const MAX_TAG_BYTES: usize = 280;

/// The full router.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/api/v1/trends", get(trends))
        .route("/api/v1/hashtags/{tag}", get(hashtag))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(crate::web::index))
        .route("/app.js", get(crate::web::app_js))
        .route("/style.css", get(crate::web::style_css))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(1024))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
}

async fn not_found() -> AppError {
    AppError::NotFound {
        code: "not_found",
        message: "no such route".into(),
    }
}

#[derive(Debug, Serialize)]
struct TrendsResponse<'a> {
    window: &'static str,
    watermark: Option<String>,
    trends: Vec<TrendEntry<'a>>,
}

#[derive(Debug, Serialize)]
struct TrendEntry<'a> {
    rank: usize,
    hashtag: &'a str,
    display: &'a str,
    count: i64,
}

fn parse_window(params: &HashMap<String, String>) -> Result<Window, AppError> {
    match params.get("window") {
        None => Ok(DEFAULT_WINDOW),
        Some(w) => w.parse().map_err(|e: trends_core::window::UnknownWindow| {
            AppError::bad_request("invalid_window", e.to_string())
        }),
    }
}

fn parse_limit(params: &HashMap<String, String>) -> Result<usize, AppError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(AppError::bad_request(
                "invalid_limit",
                format!("limit must be an integer from 1 to {MAX_LIMIT}, got {l:?}"),
            )),
        },
    }
}

/// `GET /api/v1/trends?window=5m&limit=10`
async fn trends(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(params) =
        params.map_err(|e| AppError::bad_request("invalid_query", e.body_text()))?;
    let window = parse_window(&params)?;
    let limit = parse_limit(&params)?;
    let snapshot = state.current();
    let body = TrendsResponse {
        window: window.as_str(),
        watermark: snapshot.watermark.map(format_rfc3339_millis),
        trends: snapshot
            .top(window, limit)
            .iter()
            .enumerate()
            .map(|(i, r)| TrendEntry {
                rank: i + 1,
                hashtag: &r.tag,
                display: &r.display,
                count: r.count,
            })
            .collect(),
    };
    // Serialized straight from the snapshot (no intermediate JSON tree); field order as declared.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        bytes,
    ))
}

/// `GET /api/v1/hashtags/{tag}`: the tag's count in every window and its display form. The tag may be given in any
/// spelling (`Rust`, `#rust`, `%23RUST`); it is normalized like the counts.
async fn hashtag(
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
    let snapshot = state.current();
    let summary = snapshot.tag(&tag).ok_or_else(|| AppError::NotFound {
        code: "unknown_hashtag",
        message: format!("no counts for #{tag}"),
    })?;
    let counts: serde_json::Map<String, serde_json::Value> = Window::ALL
        .iter()
        .zip(summary.counts)
        .map(|(w, c)| (w.as_str().to_string(), c.into()))
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "hashtag": tag,
            "display": &*summary.display,
            "watermark": snapshot.watermark.map(format_rfc3339_millis),
            "counts": counts,
        })),
    ))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(Json(serde_json::json!({"status": "ready"})))
    } else {
        Err(AppError::NotReady)
    }
}
