//! The admin API of the blocklist: `PUT`/`DELETE /api/v1/admin/blocked/{tag}`, `GET` (export)
//! and `POST` (bulk import) `/api/v1/admin/blocked`, behind `Authorization: Bearer <token>`.
//!
//! | request | answer |
//! |---|---|
//! | `PUT /api/v1/admin/blocked/{tag}`, optional body `{"reason":"…"}` (≤ 1 KiB) | 200, the stored entry |
//! | `DELETE /api/v1/admin/blocked/{tag}` | 204; 404 `unknown_entry` if not blocked |
//! | `GET /api/v1/admin/blocked` | 200 `application/x-ndjson`: one entry a line, sorted |
//! | `POST /api/v1/admin/blocked`, body: JSON lines (≤ `moderation.max_import_bytes`, ≤ `moderation.max_entries` lines) | 200 `{"imported":N}`; 400 `invalid_import` naming the first bad line, nothing written |
//!
//! Errors: 400 `invalid_entry` (a bad tag or pattern), `invalid_body`, `invalid_import`; 401
//! `unauthorized` (no or wrong token, with `WWW-Authenticate: Bearer`); 404 `unknown_entry`;
//! 409 `blocklist_full` (beyond `moderation.max_entries` or `.max_patterns`); 413
//! `payload_too_large`; 503 `blocklist_unavailable` (Kafka did not acknowledge the write, or
//! this replica had not applied it, within `moderation.write_timeout_ms`; `Retry-After: 1`).
//!
//! **Off without a token.** With no `admin.token` the router has no routes: the paths answer
//! whatever the app answers for an unknown path (404).
//!
//! **The token** is compared in constant time (`subtle`; only its length can show through
//! timing), never logged, never in a `Debug` output (it is a `SecretString`) and never in an
//! error message.
//!
//! **Bodies.** The router reads bodies up to `moderation.max_import_bytes` itself (axum's
//! `DefaultBodyLimit`), and `PUT` takes at most 1 KiB. The app's own 1 KiB body limit must
//! therefore not wrap these routes, or imports above 1 KiB get 413: merge this router after
//! that layer. Authentication runs before any body is read.
//!
//! **All or nothing, as far as validation goes.** An import is checked whole (every line, the
//! resulting size against the bounds) before the first record is written. The records are
//! then produced in order by one idempotent producer; should Kafka fail part-way (the answer is
//! 503), a prefix may be written, and importing the same body again completes it (each line
//! sets its entry to the same value).

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use trends_common::time::now_ms;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::Moderation;
use super::blocklist::Blocklist;
use super::entry::{Entry, Kind, normalize_entry, parse_import_line};
use super::store::WriteError;
use crate::api::types::ErrorBody;
use crate::error::error_response;

/// The admin API's paths (route templates), for the app's metrics labels.
pub const ADMIN_PATHS: [&str; 2] = ["/api/v1/admin/blocked", "/api/v1/admin/blocked/{tag}"];

/// The largest `PUT` body: `{"reason":"…"}` with a reason at its longest fits.
pub const MAX_PUT_BODY_BYTES: usize = 1024;

/// The router (see [`Moderation::admin_router`]).
pub(super) fn router(moderation: Moderation) -> Router {
    if moderation.token().is_none() {
        return Router::new();
    }
    let body_limit = moderation.settings().max_import_bytes;
    Router::new()
        .route(ADMIN_PATHS[0], get(export).post(import))
        .route(ADMIN_PATHS[1], put(put_entry).delete(delete_entry))
        .route_layer(middleware::from_fn_with_state(
            moderation.clone(),
            require_token,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(moderation)
}

/// An error answer of the admin API, in the API's one JSON error shape.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AdminError {
        AdminError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> AdminError {
        AdminError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn unauthorized() -> AdminError {
        AdminError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this needs the admin token: Authorization: Bearer <token>",
        )
    }

    fn full(message: String) -> AdminError {
        AdminError::new(StatusCode::CONFLICT, "blocklist_full", message)
    }

    fn write_failed(e: &WriteError) -> AdminError {
        AdminError {
            retry_after: Some(1),
            ..AdminError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "blocklist_unavailable",
                e.to_string(),
            )
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let mut response = error_response(self.status, self.code, self.message, self.retry_after);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Middleware: the request carries `Authorization: Bearer <the token>`, or gets 401.
async fn require_token(
    State(moderation): State<Moderation>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let valid = match (given, moderation.token()) {
        (Some(given), Some(token)) => {
            bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes()))
        }
        _ => false,
    };
    if valid {
        next.run(request).await
    } else {
        AdminError::unauthorized().into_response()
    }
}

/// The entry of a path parameter, or the 400 to answer.
fn path_entry(tag: Result<Path<String>, PathRejection>) -> Result<(String, Kind), AdminError> {
    let Path(raw) = tag.map_err(|e| AdminError::bad_request("invalid_entry", e.body_text()))?;
    normalize_entry(&raw).map_err(|e| AdminError::bad_request("invalid_entry", e))
}

/// A body, or the 413/400 to answer.
fn body_bytes(body: Result<Bytes, BytesRejection>, max: usize) -> Result<Bytes, AdminError> {
    let too_large = || {
        AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body larger than {max} bytes"),
        )
    };
    match body {
        Ok(bytes) if bytes.len() > max => Err(too_large()),
        Ok(bytes) => Ok(bytes),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
        Err(e) => Err(AdminError::new(e.status(), "invalid_body", e.body_text())),
    }
}

/// Whether adding these new entries stays within the bounds; the 409 to answer if not.
fn check_room(
    moderation: &Moderation,
    list: &Blocklist,
    new_entries: usize,
    new_patterns: usize,
) -> Result<(), AdminError> {
    let limits = moderation.limits();
    if list.len() + new_entries > limits.max_entries {
        return Err(AdminError::full(format!(
            "the blocklist holds {} of at most {} entries (moderation.max_entries); {} more do not fit",
            list.len(),
            limits.max_entries,
            new_entries
        )));
    }
    if list.patterns() + new_patterns > limits.max_patterns {
        return Err(AdminError::full(format!(
            "the blocklist holds {} of at most {} patterns (moderation.max_patterns); {} more do not fit",
            list.patterns(),
            limits.max_patterns,
            new_patterns
        )));
    }
    Ok(())
}

/// The optional body of `PUT`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// Why the entry is blocked (trimmed; at most 200 characters; empty = none).
    #[serde(default)]
    #[schema(max_length = 200, example = "scam campaign")]
    pub reason: Option<String>,
}

/// Blocks a hashtag or a pattern.
///
/// The entry is normalized like a hashtag (one leading `#` dropped, NFKC, lowercase); with a
/// `*` it is a pattern, `*` matching any run of characters. Blocking an entry again replaces
/// its reason and keeps its `added_at`. Answers once this replica applies it.
#[utoipa::path(
    put,
    path = "/api/v1/admin/blocked/{tag}",
    tag = "admin",
    security(("admin_token" = [])),
    params(("tag" = String, Path, description = "A hashtag in any spelling, or a pattern with `*` (`crypto*`, `*spam*`); at most 140 characters once normalized", max_length = 1024)),
    request_body(content = Option<PutBody>, description = "Optional, at most 1 KiB", content_type = "application/json"),
    responses(
        (status = 200, description = "The stored entry", body = Entry),
        (status = 400, description = "`invalid_entry`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or wrong bearer token", body = ErrorBody),
        (status = 409, description = "`blocklist_full`: `moderation.max_entries` or `.max_patterns` reached", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`blocklist_unavailable`: not acknowledged or not applied within `moderation.write_timeout_ms`; see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn put_entry(
    State(moderation): State<Moderation>,
    tag: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Entry>, AdminError> {
    let (key, _) = path_entry(tag)?;
    let body = body_bytes(body, MAX_PUT_BODY_BYTES)?;
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<PutBody>(&body)
            .map_err(|e| {
                AdminError::bad_request(
                    "invalid_body",
                    format!("expected {{\"reason\":\"…\"}} or no body: {e}"),
                )
            })?
            .reason
    };
    let mut entry = Entry::new(&key, reason, now_ms())
        .map_err(|e| AdminError::bad_request("invalid_body", e))?;
    let list = moderation.blocklist();
    match list.get(&entry.entry) {
        Some(old) => entry.added_at.clone_from(&old.added_at),
        None => check_room(
            &moderation,
            &list,
            1,
            usize::from(entry.kind == Kind::Pattern),
        )?,
    }
    let value = entry
        .to_json()
        .map_err(|e| AdminError::bad_request("invalid_entry", e.to_string()))?;
    moderation
        .writer()
        .write(&[(entry.entry.clone(), Some(value))])
        .await
        .map_err(|e| AdminError::write_failed(&e))?;
    // Applied; absent only if another write took the last place first.
    if moderation.blocklist().get(&entry.entry) != Some(&entry) {
        return Err(AdminError::full(format!(
            "entry {} was not applied: the blocklist is full or it changed meanwhile",
            entry.entry
        )));
    }
    Ok(Json(entry))
}

/// Unblocks a hashtag or a pattern (given in any spelling).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/blocked/{tag}",
    tag = "admin",
    security(("admin_token" = [])),
    params(("tag" = String, Path, description = "The entry, in any spelling", max_length = 1024)),
    responses(
        (status = 204, description = "Removed; this replica has applied it"),
        (status = 400, description = "`invalid_entry`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_entry`: not blocked", body = ErrorBody),
        (status = 503, description = "`blocklist_unavailable`; see `Retry-After`", body = ErrorBody),
    ),
)]
pub async fn delete_entry(
    State(moderation): State<Moderation>,
    tag: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, AdminError> {
    let (key, _) = path_entry(tag)?;
    if moderation.blocklist().get(&key).is_none() {
        return Err(AdminError::new(
            StatusCode::NOT_FOUND,
            "unknown_entry",
            format!("{key} is not blocked"),
        ));
    }
    moderation
        .writer()
        .write(&[(key, None)])
        .await
        .map_err(|e| AdminError::write_failed(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Exports the blocklist: one entry a line (JSON lines), sorted by entry; a valid import body.
#[utoipa::path(
    get,
    path = "/api/v1/admin/blocked",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "One `Entry` as JSON a line", body = String, content_type = "application/x-ndjson"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
)]
pub async fn export(State(moderation): State<Moderation>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        moderation.blocklist().to_ndjson(),
    )
        .into_response()
}

/// The answer of an import.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Imported {
    /// Lines imported (blank lines are not counted).
    pub imported: usize,
}

/// Imports entries: JSON lines, each an exported line or less (`{"entry":"spam"}`; `kind`,
/// `reason`, `added_at` optional). Every line is checked before anything is written.
#[utoipa::path(
    post,
    path = "/api/v1/admin/blocked",
    tag = "admin",
    security(("admin_token" = [])),
    request_body(content = String, description = "JSON lines, at most `moderation.max_import_bytes` and `moderation.max_entries` lines", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "Every line written and applied by this replica", body = Imported),
        (status = 400, description = "`invalid_import`: the message names the first bad line; nothing was written", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`blocklist_full`: the result would exceed `moderation.max_entries` or `.max_patterns`; nothing was written", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`blocklist_unavailable`; see `Retry-After`. Importing the same body again completes a partial write", body = ErrorBody),
    ),
)]
pub async fn import(
    State(moderation): State<Moderation>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Imported>, AdminError> {
    let body = body_bytes(body, moderation.settings().max_import_bytes)?;
    let entries = parse_import(&body, moderation.limits().max_entries)
        .map_err(|message| AdminError::bad_request("invalid_import", message))?;
    let list = moderation.blocklist();
    let new: Vec<&Entry> = entries
        .iter()
        .filter(|e| list.get(&e.entry).is_none())
        .collect();
    let new_patterns = new.iter().filter(|e| e.kind == Kind::Pattern).count();
    check_room(&moderation, &list, new.len(), new_patterns)?;
    let records = entries
        .iter()
        .map(|entry| Ok((entry.entry.clone(), Some(entry.to_json()?))))
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| AdminError::bad_request("invalid_import", e.to_string()))?;
    moderation
        .writer()
        .write(&records)
        .await
        .map_err(|e| AdminError::write_failed(&e))?;
    Ok(Json(Imported {
        imported: entries.len(),
    }))
}

/// The admin API's part of the OpenAPI document, with its `admin_token` bearer scheme:
/// `ApiDoc::openapi().merge_from(AdminDoc::openapi())`.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(put_entry, delete_entry, export, import),
    components(schemas(Entry, Kind, PutBody, Imported)),
    modifiers(&BearerToken),
    tags((name = "admin", description = "The blocklist (moderation); needs `Authorization: Bearer <admin.token>`, off (404) without `admin.token`")),
)]
pub struct AdminDoc;

/// Declares the `admin_token` security scheme the admin paths name.
#[derive(Debug)]
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "admin_token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Every non-blank line of an import as an entry, or the first problem, naming its line.
fn parse_import(body: &[u8], max_lines: usize) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format!("line {line}: not UTF-8")
    })?;
    let now = now_ms();
    let mut entries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if entries.len() == max_lines {
            return Err(format!(
                "line {number}: more than {max_lines} entries (moderation.max_entries)"
            ));
        }
        let entry = parse_import_line(line, now).map_err(|e| format!("line {number}: {e}"))?;
        if let Some(first) = seen.insert(entry.entry.clone(), number) {
            return Err(format!(
                "line {number}: entry {} repeats line {first}",
                entry.entry
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_the_admin_paths_and_their_scheme() {
        let mut doc = utoipa::openapi::OpenApi::default();
        doc.merge(AdminDoc::openapi());
        let json = serde_json::to_value(&doc).expect("json");
        for path in ADMIN_PATHS {
            assert!(json["paths"][path].is_object(), "{path}");
        }
        assert_eq!(
            json["components"]["securitySchemes"]["admin_token"]["scheme"],
            "bearer"
        );
        assert_eq!(
            json["components"]["schemas"]["Entry"]["additionalProperties"],
            false
        );
    }

    #[test]
    fn an_import_is_checked_whole_and_names_the_bad_line() {
        let body = "{\"entry\":\"Spam\"}\n\n{\"entry\":\"crypto*\",\"reason\":\"scams\"}\n";
        let entries = parse_import(body.as_bytes(), 10).expect("valid");
        let keys: Vec<&str> = entries.iter().map(|e| e.entry.as_str()).collect();
        assert_eq!(keys, ["spam", "crypto*"]);
        for (body, says) in [
            ("{\"entry\":\"a\"}\n{\"entry\":\"a b\"}\n", "line 2: "),
            (
                "{\"entry\":\"a\"}\n\n{\"entry\":\"#A\"}\n",
                "line 3: entry a repeats line 1",
            ),
            (
                "{\"entry\":\"a\"}\n{\"entry\":\"b\"}\n{\"entry\":\"c\"}\n",
                "line 3: more than 2",
            ),
            ("{\"entry\":\"a\"}\nnot json\n", "line 2: not a JSON entry"),
        ] {
            let err = parse_import(body.as_bytes(), 2).expect_err(body);
            assert!(err.starts_with(says), "{body:?}: {err}");
        }
        let err = parse_import(b"{\"entry\":\"a\"}\n\xff\n", 2).expect_err("bytes");
        assert_eq!(err, "line 2: not UTF-8");
    }
}
