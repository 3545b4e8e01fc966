//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the code with `utoipa`.
//!
//! The response types ([`crate::api::types`]) derive `ToSchema` and the handlers
//! ([`crate::api`]) carry `#[utoipa::path]`, so the document changes when the code does;
//! `tests/it/openapi.rs` validates real responses against it, which catches the two drifting
//! apart. Response objects are closed (`additionalProperties: false`, every field required), so
//! a renamed or added field fails validation rather than passing unnoticed. The document is
//! serialized once per process.
//!
//! This module sits above the handlers and types it lists and below [`crate::app`], which
//! serves it; nothing it lists imports it back.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::OpenApi;

use crate::api::types::{
    ErrorBody, ErrorDetail, Estimate, HashtagResponse, LanguageEntry, LanguagesResponse,
    SeriesByWindow, SeriesPoint, SeriesResponse, StatusBody, TrendEntry, TrendingEntry,
    TrendingResponse, TrendsResponse, WindowCounts, WindowEstimates, WindowInfo, WindowName,
    WindowsResponse,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "hashtag-trends API",
        description = "Live trending hashtags, counted in sliding event-time windows from a \
                       Kafka stream of posts. Read-only; every error has one JSON shape.",
        license(name = "Apache-2.0"),
    ),
    paths(
        crate::api::trends::trends,
        crate::api::hashtag::hashtag,
        crate::api::windows::windows,
        crate::api::languages::languages,
        crate::api::stream::stream,
        crate::api::health::healthz,
        crate::api::health::readyz,
        crate::api::health::metrics,
        openapi_json,
    ),
    components(schemas(
        WindowName,
        TrendsResponse,
        TrendEntry,
        TrendingResponse,
        TrendingEntry,
        LanguagesResponse,
        LanguageEntry,
        HashtagResponse,
        WindowCounts,
        WindowEstimates,
        Estimate,
        SeriesByWindow,
        SeriesResponse,
        SeriesPoint,
        WindowsResponse,
        WindowInfo,
        ErrorBody,
        ErrorDetail,
        StatusBody,
    )),
    tags(
        (name = "trends", description = "Rankings, hashtags, windows and the live stream"),
        (name = "operations", description = "Liveness, readiness and metrics, for probes and scrapers"),
    ),
)]
pub struct ApiDoc;

/// The read-only API and the admin API (`crate::moderation::admin`), in one document.
pub fn full() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::moderation::admin::AdminDoc::openapi());
    doc
}

/// The document as served.
pub fn document() -> Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| Bytes::from(full().to_pretty_json().unwrap_or_else(|_| "{}".to_string())))
        .clone()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
               content_type = "application/json")),
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
