//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the code with `utoipa`.
//!
//! The response types derive `ToSchema` and the handlers carry `#[utoipa::path]`, so the
//! document changes when the code does; `tests/openapi.rs` validates real responses against it,
//! which catches the two drifting apart. Response objects are closed
//! (`additionalProperties: false`, every field required), so a renamed or added field fails
//! validation rather than passing unnoticed. The document is serialized once per process.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use trends_core::window::Window;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorBody, ErrorDetail};
use crate::prepared::{TrendEntry, TrendsResponse};
use crate::routes::{
    HashtagResponse, SeriesByWindow, SeriesPoint, SeriesResponse, StatusBody, WindowCounts,
    WindowInfo, WindowsResponse,
};

/// The name of a window: `1m`, `5m`, `15m`, `1h`, `24h` or `all`.
#[derive(Debug)]
pub struct WindowName;

impl PartialSchema for WindowName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Window::ALL.iter().map(|w| w.as_str())))
            .description(Some("A window: `1m`, `5m`, `15m`, `1h`, `24h` or `all`."))
            .into()
    }
}

impl ToSchema for WindowName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WindowName")
    }
}

/// For `#[schema(schema_with = …)]` on fields that hold a window name as a string.
pub fn window_name() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name("WindowName"))
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "hashtag-trends API",
        description = "Live trending hashtags, counted in sliding event-time windows from a \
                       Kafka stream of posts. Read-only; every error has one JSON shape.",
        license(name = "Apache-2.0"),
    ),
    paths(
        crate::routes::trends,
        crate::routes::hashtag,
        crate::routes::windows,
        crate::routes::stream,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics,
        openapi_json,
    ),
    components(schemas(
        WindowName,
        TrendsResponse,
        TrendEntry,
        HashtagResponse,
        WindowCounts,
        SeriesByWindow,
        SeriesResponse,
        SeriesPoint,
        WindowsResponse,
        WindowInfo,
        ErrorBody,
        ErrorDetail,
        StatusBody,
    )),
    tags((name = "trends", description = "Rankings, hashtags, windows and the live stream")),
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            Bytes::from(
                ApiDoc::openapi()
                    .to_pretty_json()
                    .unwrap_or_else(|_| "{}".to_string()),
            )
        })
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
