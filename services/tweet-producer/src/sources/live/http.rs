//! What the HTTP streaming sources (`mastodon`, `x`) share: the client and its bearer header,
//! a request sent and its answer classified ([`send`]), a streaming body read chunk by chunk
//! under an idle timeout and split into frames ([`Body`]), and URL checks for their settings.
//!
//! Why one client set-up: both sources hold one long-lived response open and read it chunk by
//! chunk, so they need the same things: rustls with the Mozilla roots (like the WebSocket
//! client of `bluesky`), a connect timeout, no overall request timeout (a stream lasts for
//! hours), and the token in a header marked *sensitive* so that no `Debug` of a request shows
//! it. The token is put into the header here and nowhere else.
//!
//! Why one send and one body reader: a request must give way to shutdown, be bounded in time,
//! and have a refusal described (status and the server's reason, never the token) before the
//! source decides between retrying and giving up; a stream must be cut when it goes silent.
//! Each source keeps only that decision, and its own log lines.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret as _, SecretString};
use trends_common::config::ConfigError;

use super::lines::Decoder;
use super::{Waited, within};
use crate::sources::contract::SourceContext;

/// How long establishing a connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the response headers of a request may take once connected.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("hashtag-trends-tweet-producer/", env!("CARGO_PKG_VERSION"));

/// A client for long-lived streaming responses. `key` names the token's config key, for the
/// error when the token cannot be a header value (the error never contains the token).
pub fn client(token: &SecretString, key: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer(token, key)?);
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .context("cannot set up the HTTP client")
}

/// `Bearer <token>`, marked sensitive.
pub fn bearer(token: &SecretString, key: &str) -> anyhow::Result<HeaderValue> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).map_err(|_| {
            anyhow::anyhow!("{key}: the token contains characters an HTTP header cannot carry")
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Why [`send`] got no usable answer.
#[derive(Debug)]
pub enum SendError {
    /// Shutdown.
    Stop,
    /// No answer within [`RESPONSE_TIMEOUT`].
    TimedOut,
    /// Refused, reset, no route: no HTTP answer.
    Unreachable(reqwest::Error),
    /// A non-2xx answer: its status, headers, and [`error_summary`].
    Refused {
        status: StatusCode,
        headers: HeaderMap,
        summary: String,
    },
}

/// Sends a request (bounded by [`RESPONSE_TIMEOUT`], given up on shutdown); a 2xx answer is
/// returned, anything else described ([`SendError`]).
pub async fn send(
    request: reqwest::RequestBuilder,
    ctx: &SourceContext,
    token: &SecretString,
) -> Result<reqwest::Response, SendError> {
    let sent = tokio::time::timeout(RESPONSE_TIMEOUT, request.send());
    let response = match ctx.shutdown.run_until_cancelled(sent).await {
        None => return Err(SendError::Stop),
        Some(Err(_)) => return Err(SendError::TimedOut),
        Some(Ok(Err(e))) => return Err(SendError::Unreachable(e)),
        Some(Ok(Ok(response))) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let summary = error_summary(response, token).await;
    Err(SendError::Refused {
        status,
        headers,
        summary,
    })
}

/// The most of an error response's body that is read.
const ERROR_BODY_BYTES: usize = 4096;

/// A short description of an error response for logs and errors: the status and what the
/// body says (`title`/`detail` of an X problem, `error` of a Mastodon error, else its first
/// line), at most 300 characters. Should the server echo the token, it is redacted.
pub async fn error_summary(response: reqwest::Response, token: &SecretString) -> String {
    let status = response.status();
    let mut body: Vec<u8> = Vec::new();
    let mut response = response;
    while body.len() < ERROR_BODY_BYTES {
        match tokio::time::timeout(RESPONSE_TIMEOUT, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES);
    let text = String::from_utf8_lossy(&body);
    let said = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| problem_text(&v))
        .unwrap_or_else(|| text.lines().next().unwrap_or("").trim().to_owned());
    let mut summary = format!("HTTP {status}");
    if !said.is_empty() {
        summary.push_str(": ");
        summary.extend(said.chars().take(300));
    }
    let secret = token.expose_secret();
    if !secret.is_empty() && summary.contains(secret) {
        summary = summary.replace(secret, "[REDACTED]");
    }
    summary
}

/// What an error document says: X's problem (`title`, `detail`, or the first of `errors`),
/// Mastodon's `error`.
fn problem_text(v: &serde_json::Value) -> Option<String> {
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    if let Some(error) = field(v, "error") {
        return Some(error);
    }
    let source = match v.get("errors").and_then(|e| e.get(0)) {
        Some(first) if v.get("title").is_none() => first,
        _ => v,
    };
    let parts: Vec<String> = ["title", "detail", "message"]
        .iter()
        .filter_map(|k| field(source, k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// A header holding a non-negative integer (`x-rate-limit-reset`: epoch seconds), if valid.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Why a streaming body stopped delivering.
#[derive(Debug)]
pub enum Lost {
    /// Nothing, not even a keep-alive, within the idle timeout.
    Idle,
    /// The server ended the body.
    Ended,
    /// The connection failed.
    Failed(reqwest::Error),
}

/// The next thing a streaming body gave.
#[derive(Debug)]
pub enum Next<T> {
    Frame(T),
    /// Shutdown.
    Stop,
    Lost(Lost),
}

/// A streaming response read chunk by chunk, at most `idle` apart, split into frames.
#[derive(Debug)]
pub struct Body<D: Decoder> {
    response: reqwest::Response,
    decoder: D,
    idle: Duration,
    ready: VecDeque<D::Frame>,
    scratch: Vec<D::Frame>,
    received: bool,
}

impl<D: Decoder> Body<D> {
    pub fn new(response: reqwest::Response, decoder: D, idle: Duration) -> Body<D> {
        Body {
            response,
            decoder,
            idle,
            ready: VecDeque::new(),
            scratch: Vec::new(),
            received: false,
        }
    }

    /// The next frame, reading chunks until one is complete.
    pub async fn next(&mut self, ctx: &SourceContext) -> Next<D::Frame> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Next::Frame(frame);
            }
            let chunk = match within(ctx, self.idle, self.response.chunk()).await {
                Waited::Stop => return Next::Stop,
                Waited::Idle => return Next::Lost(Lost::Idle),
                Waited::Ready(Ok(None)) => return Next::Lost(Lost::Ended),
                Waited::Ready(Err(e)) => return Next::Lost(Lost::Failed(e)),
                Waited::Ready(Ok(Some(chunk))) => chunk,
            };
            self.received = true;
            self.decoder.feed(&chunk, &mut self.scratch);
            self.ready.extend(self.scratch.drain(..));
        }
    }

    /// Whether any bytes arrived on this connection.
    pub fn received(&self) -> bool {
        self.received
    }
}

/// `host[:port]` of a URL (the port only when it is not the scheme's default).
pub fn host_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// `host[:port]` of a URL ([`host_of`]), or the URL itself (trimmed) when it has none.
pub fn host_or_url(url: &str) -> String {
    let url = url.trim();
    host_of(url).unwrap_or_else(|| url.to_owned())
}

/// Checks that `value` is an `http://` or `https://` URL with a host (and, unless
/// `path_allowed`, no path beyond `/`); the error names `key`.
pub fn check_http_url(key: &str, value: &str, path_allowed: bool) -> Result<(), ConfigError> {
    let value = value.trim();
    let bad = || {
        ConfigError(format!(
            "{key} must be an http:// or https:// URL{}, got {value:?}",
            if path_allowed { "" } else { " without a path" }
        ))
    };
    let url = Url::parse(value).map_err(|_| bad())?;
    let path_ok = path_allowed || url.path().trim_end_matches('/').is_empty();
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || !path_ok
        || url.query().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_a_sensitive_header_and_never_in_errors() {
        let token = SecretString::from("s3cr3t".to_owned());
        let value = bearer(&token, "source.x.token").expect("valid");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("s3cr3t"));
        let bad = SecretString::from("s3cr3t\nInjected: yes".to_owned());
        let message = bearer(&bad, "source.x.token")
            .expect_err("a newline is refused")
            .to_string();
        assert!(message.contains("source.x.token"), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
    }
}
