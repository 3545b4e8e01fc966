//! The one error type of the HTTP layer and its JSON shape:
//! `{"error":{"code":"invalid_window","message":"…"}}`.
//!
//! The shape itself ([`ErrorBody`]) is one of the response types in [`crate::api::types`].
//! Handlers answer with [`AppError`]. Errors made by layers that know nothing of this shape
//! (the request timeout, the body limit) are rewritten into it by [`json_errors`], so a client
//! never has to parse two kinds of error.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::types::{ErrorBody, ErrorDetail};

/// Everything a handler can answer with instead of data.
#[derive(Debug)]
pub enum AppError {
    /// 400: a parameter is wrong. `code` is stable and machine-readable.
    BadRequest { code: &'static str, message: String },
    /// 404: no such route or hashtag.
    NotFound { code: &'static str, message: String },
    /// 405.
    MethodNotAllowed,
    /// 429: this client made too many requests; it may retry after the given time.
    TooManyRequests { retry_after: Duration },
    /// 503: not caught up with the counts topic yet.
    NotReady,
    /// 503: too many concurrent streams.
    TooManyStreams,
    /// 429: this client's address (IPv6: its /64) has `api.max_streams_per_ip` streams open.
    TooManyStreamsFromIp,
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

/// An error response: `status`, the JSON body, and `Retry-After` when given (whole seconds).
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    retry_after: Option<u64>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.into(),
        },
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadRequest { code, message } => {
                error_response(StatusCode::BAD_REQUEST, code, message, None)
            }
            AppError::NotFound { code, message } => {
                error_response(StatusCode::NOT_FOUND, code, message, None)
            }
            AppError::MethodNotAllowed => error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this API is read-only: use GET",
                None,
            ),
            AppError::TooManyRequests { retry_after } => {
                // Whole seconds, rounded up: retrying earlier would be refused again.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests from this address; retry later",
                    Some(seconds.max(1)),
                )
            }
            AppError::NotReady => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "still loading the counts topic",
                Some(1),
            ),
            AppError::TooManyStreams => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "too many clients are streaming; retry later",
                Some(5),
            ),
            AppError::TooManyStreamsFromIp => error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams_from_ip",
                "too many streams are open from this address; close one or retry later",
                Some(5),
            ),
        }
    }
}

/// Middleware: an error status whose body is not JSON (made by a layer: 408 from the timeout,
/// 413 from the body limit, …) gets the JSON error shape, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this API is read-only: use GET"),
        s if s.is_client_error() => ("bad_request", "the request cannot be served"),
        _ => ("internal", "internal error"),
    };
    let (mut parts, _) = response.into_parts();
    let fresh = error_response(status, code, message, None);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        fresh_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, body)
}
