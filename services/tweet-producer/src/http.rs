//! What the HTTP streaming sources (`mastodon`, `x`) share: the client, the bearer header and a
//! bounded line splitter for chunked bodies.
//!
//! Why one client set-up: both sources hold one long-lived response open and read it chunk by
//! chunk, so they need the same things: rustls with the Mozilla roots (like the WebSocket
//! client of `bluesky`), a connect timeout, no overall request timeout (a stream lasts for
//! hours), and the token in a header marked *sensitive* so that no `Debug` of a request shows
//! it. The token is put into the header here and nowhere else.
//!
//! Why a bounded splitter: a chunked body is an endless byte stream; a server (or a broken
//! proxy) that never sends a newline must not make the producer buffer without limit. A line
//! longer than the bound is reported once as [`Line::TooLong`] and its bytes are dropped up to
//! the next line end, so one bad line costs one malformed count, not the connection.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};

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

/// One line of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The bytes of a line, without its line end.
    Complete(Vec<u8>),
    /// A line longer than the bound: its bytes were dropped.
    TooLong,
}

/// Splits chunks into lines ended by `\n`, `\r\n` or `\r`, each at most `max` bytes.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    /// Dropping the rest of a line that was too long.
    discarding: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            buf: Vec::new(),
            after_cr: false,
            discarding: false,
        }
    }

    /// Feeds one chunk; the lines it completes are appended to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.take(&chunk[..end], out, true);
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.take(chunk, out, false);
    }

    /// Adds `bytes` to the current line; `ends`: they end it.
    fn take(&mut self, bytes: &[u8], out: &mut Vec<Line>, ends: bool) {
        if !self.discarding {
            if self.buf.len() + bytes.len() > self.max {
                self.buf = Vec::new();
                self.discarding = true;
                out.push(Line::TooLong);
            } else {
                self.buf.extend_from_slice(bytes);
            }
        }
        if ends {
            if self.discarding {
                self.discarding = false;
            } else {
                out.push(Line::Complete(std::mem::take(&mut self.buf)));
            }
        }
    }
}

/// A header holding a non-negative integer (`x-rate-limit-reset`: epoch seconds), if valid.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Line> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, &mut out);
        }
        out
    }

    fn complete(s: &str) -> Line {
        Line::Complete(s.as_bytes().to_vec())
    }

    #[test]
    fn every_line_end_and_chunk_boundary() {
        assert_eq!(
            split(&[b"a\r\nb\nc\rd", b"e\r", b"\nf\r\n\r\n", b"g"], 100),
            [
                complete("a"),
                complete("b"),
                complete("c"),
                complete("de"),
                complete("f"),
                complete(""),
            ],
            "`g` has no line end yet"
        );
        assert_eq!(
            split(&[b"x\r", b"\r\n"], 100),
            [complete("x"), complete("")],
            "a CR, then a CRLF: two lines"
        );
    }

    #[test]
    fn a_line_over_the_bound_is_dropped_once_and_the_next_one_is_fine() {
        assert_eq!(
            split(&[b"12345", b"678", b"90\nok\n"], 6),
            [Line::TooLong, complete("ok")]
        );
        assert_eq!(split(&[b"123456\n"], 6), [complete("123456")]);
    }

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
