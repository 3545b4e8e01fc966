//! `GET /api/v1/hashtags/{tag}`: one tag's count in every window and its series.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use trends_core::hashtag::normalize;

use super::MAX_TAG_BYTES;
use super::types::{ErrorBody, HashtagResponse};
use crate::error::AppError;
use crate::state::AppState;

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
        (status = 503, description = "`not_ready`: the counts topic has not been read to its end yet; see `Retry-After`", body = ErrorBody),
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
    let body = super::complete_snapshot(&state)?
        .hashtag(&tag)
        .ok_or_else(|| AppError::NotFound {
            code: "unknown_hashtag",
            message: format!("no counts for #{tag}"),
        })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}
