//! The endpoints of operators: liveness (`/healthz`), readiness (`/readyz`) and the
//! Prometheus scrape (`/metrics`). None of them is rate limited (see `crate::app`'s route
//! table), so probes and scrapers are never refused because of a busy client. In the OpenAPI
//! document they carry the tag `operations`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::types::{ErrorBody, StatusBody};
use crate::error::AppError;
use crate::state::AppState;

/// Liveness: 200 while the process serves.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = StatusBody)),
)]
pub async fn healthz() -> Json<StatusBody> {
    Json(StatusBody { status: "ok" })
}

/// Readiness: 200 once the counts topic has been read to its end, and while the follower lags
/// at most `api.max_ready_lag_records` records behind it since.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Caught up with the counts topic", body = StatusBody),
        (status = 503, description = "`not_ready`: still loading, or lagging more than `api.max_ready_lag_records` records behind the counts topic (the data endpoints then serve the last complete snapshot); see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<StatusBody>, AppError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(Json(StatusBody { status: "ready" }))
    } else {
        Err(AppError::NotReady)
    }
}

/// Prometheus metrics (OpenMetrics text 1.0.0).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus (OpenMetrics) text exposition", body = String, content_type = "application/openmetrics-text")),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, trends_common::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}
