//! The one error type of the HTTP layer and its JSON shape:
//! `{"error":{"code":"invalid_window","message":"…"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a handler can answer with instead of data.
#[derive(Debug)]
pub enum AppError {
    /// 400: a parameter is wrong. `code` is stable and machine-readable.
    BadRequest { code: &'static str, message: String },
    /// 404: no such route or hashtag.
    NotFound { code: &'static str, message: String },
    /// 405.
    MethodNotAllowed,
    /// 503: not caught up with the counts topic yet.
    NotReady,
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            AppError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message),
            AppError::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this API is read-only: use GET".to_string(),
            ),
            AppError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "still loading the counts topic".to_string(),
            ),
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
