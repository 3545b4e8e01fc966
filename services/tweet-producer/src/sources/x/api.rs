//! Talking to the X API: what a connection needs of the settings, a request sent and its
//! answer classified for X's back-off ([`send`]), and a JSON answer read ([`json`]).
//!
//! Classification: no answer is a network failure; a 429 is rate limited (with its
//! `x-rate-limit-reset` time); a 400, 401, 403 or 404 will not get better by retrying (a bad
//! token, a plan without filtered-stream access), so the source stops with X's reason, never
//! the token; any other error is an HTTP failure, retried.

use reqwest::StatusCode;
use secrecy::SecretString;

use super::backoff::{Failure, XBackoffSettings};
use crate::sources::contract::SourceContext;
use crate::sources::live::Ended;
use crate::sources::live::http::{self, RESPONSE_TIMEOUT, SendError};

/// The config key of the token (for errors).
pub const TOKEN_KEY: &str = "source.x.token";

/// What the source is configured with.
#[derive(Debug, Clone)]
pub struct XConfig {
    /// `https://api.x.com` without a trailing slash.
    pub base_url: String,
    /// The configured rule values, once each.
    pub rules: Vec<String>,
    /// The tag given to every rule.
    pub tag: Option<String>,
    pub token: SecretString,
    pub policy: XBackoffSettings,
}

/// Sends a request (bounded by [`RESPONSE_TIMEOUT`], interrupted by shutdown); a non-2xx
/// answer is classified: 429 rate limited, 400/401/403/404 fatal, others retried.
pub async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
    config: &XConfig,
    ctx: &SourceContext,
) -> Result<reqwest::Response, Ended<Failure>> {
    let (status, headers, summary) = match http::send(request, ctx, &config.token).await {
        Ok(response) => return Ok(response),
        Err(SendError::Stop) => return Err(Ended::Stop),
        Err(SendError::TimedOut) => {
            tracing::warn!(what, "X did not answer in time");
            return Err(Ended::Lost(Failure::Network));
        }
        Err(SendError::Unreachable(e)) => {
            tracing::warn!(what, error = %e, "cannot reach X");
            return Err(Ended::Lost(Failure::Network));
        }
        Err(SendError::Refused {
            status,
            headers,
            summary,
        }) => (status, headers, summary),
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let reset_at = http::header_u64(&headers, "x-rate-limit-reset");
            tracing::warn!(what, error = summary, reset_at, "X rate limit reached");
            Err(Ended::Lost(Failure::RateLimited { reset_at }))
        }
        StatusCode::BAD_REQUEST
        | StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND => Err(Ended::Fatal(anyhow::anyhow!(
            "X refused {what}: {summary} (check {TOKEN_KEY}: an app bearer token of a plan with filtered-stream access, and source.x.base_url)"
        ))),
        _ => {
            tracing::warn!(what, error = summary, "X answered with an error");
            Err(Ended::Lost(Failure::Http))
        }
    }
}

/// Reads a JSON response body (bounded by [`RESPONSE_TIMEOUT`]).
pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, Ended<Failure>> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, response.bytes()).await {
        Err(_) => Err(Ended::Lost(Failure::Network)),
        Ok(Err(e)) => {
            tracing::warn!(what, error = %e, "cannot read X's answer");
            Err(Ended::Lost(Failure::Network))
        }
        Ok(Ok(body)) => serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(what, error = %e, "X's answer is not what was expected");
            Ended::Lost(Failure::Http)
        }),
    }
}
