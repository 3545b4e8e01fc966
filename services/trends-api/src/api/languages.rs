//! `GET /api/v1/languages`: the languages of the feed and their volume, for `lang=`.
//!
//! A post's language is the primary subtag of its `lang` field, lowercased (`en-US` → `en`),
//! `und` when it has none or an unusable one ([`trends_core::lang`]). Every language with posts
//! in the last 24 hours is listed, most posts first; each can be passed as `lang=` to
//! `/api/v1/trends` and `/api/v1/stream`.

use axum::Json;
use axum::extract::State;

use super::types::{ErrorBody, LanguagesResponse};
use crate::error::AppError;
use crate::state::AppState;

/// The languages of the last 24 hours, most posts first.
#[utoipa::path(
    get,
    path = "/api/v1/languages",
    tag = "trends",
    responses(
        (status = 200, description = "Languages by posts in the last 24 hours", body = LanguagesResponse),
        (status = 503, description = "`not_ready`: the counts topic has not been read to its end yet; see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn languages(State(state): State<AppState>) -> Result<Json<LanguagesResponse>, AppError> {
    Ok(Json(super::complete_snapshot(&state)?.languages()))
}
