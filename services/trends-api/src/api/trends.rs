//! `GET /api/v1/trends`: the top hashtags of a window, and the query it shares with
//! `/api/v1/stream` ([`TrendsQuery`], checked by [`parse_query`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use trends_core::hashtag::normalize;
use trends_core::window::Window;
use utoipa::IntoParams;

use super::MAX_TAG_BYTES;
use super::types::{ErrorBody, TrendsResponse};
use crate::error::AppError;
use crate::prepared::MAX_LIMIT;
use crate::sse::{self, Sort};
use crate::state::AppState;
use trends_core::truncate_utf8;

const DEFAULT_WINDOW: Window = Window::M5;
const DEFAULT_LIMIT: usize = 10;

/// Query parameters of `/api/v1/trends` and `/api/v1/stream`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendsQuery {
    /// The window; default `5m`.
    #[param(value_type = Option<super::types::WindowName>)]
    window: Option<String>,
    /// How many tags, 1–100; default 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Only tags whose counting form starts with this, normalized like tags (a leading `#` is
    /// dropped, NFKC, lowercase). Ranks stay those of the full ranking. Empty = no filter.
    #[param(max_length = 280, example = "ru")]
    prefix: Option<String>,
    /// `count` (default: the most used, by posts; the answer clients had before trending
    /// existed) or `trending` (by trend score, each entry explaining itself; finite windows
    /// only).
    #[param(value_type = Option<String>, example = "trending")]
    sort: Option<String>,
    /// Only posts in this language: the primary subtag of the posts' `lang` (`en`, `ja`, …;
    /// case-insensitive), `und` for posts without one. Finite windows only. See
    /// `/api/v1/languages`.
    #[param(value_type = Option<String>, example = "ja")]
    lang: Option<String>,
}

/// The parsed and checked query.
pub fn parse_query(
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<sse::Query, AppError> {
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
    let sort = match query.sort.as_deref() {
        None | Some("count") => Sort::Count,
        Some("trending") => Sort::Trending,
        Some(other) => {
            return Err(AppError::bad_request(
                "invalid_sort",
                format!(
                    "sort must be count or trending, got {:?}",
                    truncate_utf8(other, 40)
                ),
            ));
        }
    };
    if sort == Sort::Trending && window == Window::All {
        return Err(AppError::bad_request(
            "invalid_sort",
            "sort=trending needs a finite window (1m, 5m, 15m, 1h or 24h): a trend is \
             measured against the tag's recent history",
        ));
    }
    let lang = match query.lang.as_deref() {
        None | Some("") => None,
        Some(l) => {
            let code = l.trim().to_ascii_lowercase();
            if !trends_core::lang::is_code(&code) {
                return Err(AppError::bad_request(
                    "invalid_lang",
                    format!(
                        "lang must be a language code such as en or ja (ASCII letters, at most {}), got {:?}",
                        trends_core::lang::MAX_CODE_LEN,
                        truncate_utf8(l, 40)
                    ),
                ));
            }
            if window == Window::All {
                return Err(AppError::bad_request(
                    "invalid_lang",
                    "lang needs a finite window (1m, 5m, 15m, 1h or 24h): languages have no all-time counts",
                ));
            }
            Some(code)
        }
    };
    Ok(sse::Query {
        window,
        limit,
        prefix,
        sort,
        lang,
    })
}

/// The top hashtags of a window: the most used, or the trending.
///
/// `sort=count` (the default): ranked by posts (descending), ties by hashtag (ascending, by
/// code point); with `lang`, posts in that language. With `prefix`, only tags starting with
/// it, keeping their rank in the full ranking.
///
/// `sort=trending`: ranked by trend score, each entry with its explanation (authors,
/// expected, since when, status, sparkline); the body is a `TrendingResponse`. README:
/// "How trending is computed".
#[utoipa::path(
    get,
    path = "/api/v1/trends",
    tag = "trends",
    params(TrendsQuery),
    responses(
        (status = 200, description = "The ranking: a `TrendsResponse` by count, a `TrendingResponse` with `sort=trending`", body = TrendsResponse),
        (status = 400, description = "`invalid_window`, `invalid_limit`, `invalid_prefix`, `invalid_sort`, `invalid_lang` or `invalid_query`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (only with a rate limit configured); see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`not_ready`: the counts topic has not been read to its end yet (a partial sum is never served); see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn trends(
    State(state): State<AppState>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let q = parse_query(query)?;
    let body = super::complete_snapshot(&state)?.body(&q);
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        body,
    ))
}
