//! The Mastodon stream: where it is, one connection to it, and its events read until it ends.
//!
//! Where: the streaming API may be served by another host than the REST API. Unless
//! `source.mastodon.streaming_url` is set, the producer reads the server's
//! `GET /api/v2/instance` (`configuration.urls.streaming`, a `wss://` URL used as `https://`)
//! before the first connection, and uses `base_url` itself when the server does not say (older
//! servers answer 404).
//!
//! Events: only `update` events (a new status) are mapped ([`super::status`]); `delete`,
//! `status.update` (edits) and other events are ignored, and so are boosts.
//!
//! Failures: a refused, failed or dropped connection, a 429 or 5xx, or [`IDLE_TIMEOUT`]
//! without a byte (the server sends a `:thump` heartbeat comment regularly) leads to a
//! reconnect after the shared exponential back-off with jitter (`source.reconnect`), reset once
//! a connection delivered something. A 400, 401, 403, 404 or 410 will not get better by
//! retrying (a bad token, a missing scope, a wrong URL or tag): the source stops with an error
//! naming the status, never the token. An event that is not valid (bad JSON, a status without
//! id, an event over [`MAX_EVENT_BYTES`]) is skipped and counted as malformed; a status
//! whose record is over `source.max_post_bytes` is skipped and counted as oversized by the
//! pipeline.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{StatusCode, Url};
use secrecy::SecretString;
use serde::Deserialize;

use super::status::map_status;
use crate::sources::contract::{SourceContext, SourceEvent};
use crate::sources::live::http::{self, Body, Lost, Next, RESPONSE_TIMEOUT, SendError};
use crate::sources::live::sse::{Sse, SseParser};
use crate::sources::live::{Connection, Dropped, Ended};

/// A connection without a byte (event or heartbeat) for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Events larger than this are skipped (a status is a few KiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The config key of the token (for errors).
pub const TOKEN_KEY: &str = "source.mastodon.token";

/// Which Mastodon timeline is streamed (`source.mastodon.stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MastodonStream {
    /// The federated timeline: every public post the server knows.
    #[serde(rename = "public")]
    Public,
    /// Public posts of the server's own users.
    #[serde(rename = "public:local")]
    PublicLocal,
    /// Public posts with one hashtag.
    #[serde(rename = "hashtag")]
    Hashtag,
}

/// What a connection needs of the settings.
#[derive(Debug, Clone)]
pub struct MastodonConfig {
    /// `https://server` without a trailing slash.
    pub base_url: String,
    pub stream: MastodonStream,
    /// The hashtag of `stream = hashtag`, without `#`.
    pub tag: String,
    /// `base_url`'s host (and port, if not the default): part of every post id.
    pub host: String,
    pub token: SecretString,
}

/// A streaming base as an HTTP URL: `wss://` is `https://`, `ws://` is `http://`; no trailing
/// slash.
pub fn http_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

/// The SSE endpoint of `stream` on the streaming server `base`.
pub fn stream_url(base: &str, stream: MastodonStream, tag: &str) -> anyhow::Result<Url> {
    let path = match stream {
        MastodonStream::Public => "/api/v1/streaming/public",
        MastodonStream::PublicLocal => "/api/v1/streaming/public/local",
        MastodonStream::Hashtag => "/api/v1/streaming/hashtag",
    };
    let mut url = Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
        .with_context(|| format!("{base:?} is not a URL"))?;
    if stream == MastodonStream::Hashtag {
        url.query_pairs_mut().append_pair("tag", tag);
    }
    Ok(url)
}

/// The stream of one server: its client, and where its streaming API is once known.
#[derive(Debug)]
pub struct Streaming {
    config: MastodonConfig,
    client: reqwest::Client,
    /// Where the streaming API is (configured, or discovered before the first connection).
    base: Option<String>,
}

impl Streaming {
    pub fn new(config: MastodonConfig, base: Option<String>) -> anyhow::Result<Streaming> {
        let client = http::client(&config.token, TOKEN_KEY)?;
        Ok(Streaming {
            config,
            client,
            base,
        })
    }
}

impl Connection for Streaming {
    type Lost = Dropped;

    async fn attempt(&mut self, ctx: &SourceContext, attempt: u64) -> Ended<Dropped> {
        let base = match &self.base {
            Some(base) => base.clone(),
            None => match self.discover(ctx).await {
                Ok(base) => {
                    self.base = Some(base.clone());
                    base
                }
                Err(ended) => return ended,
            },
        };
        self.connect(&base, ctx, attempt).await
    }
}

/// The instance document, as far as we read it.
#[derive(Debug, Deserialize)]
struct Instance {
    #[serde(default)]
    configuration: Option<InstanceConfiguration>,
}

#[derive(Debug, Deserialize)]
struct InstanceConfiguration {
    #[serde(default)]
    urls: Option<InstanceUrls>,
}

#[derive(Debug, Deserialize)]
struct InstanceUrls {
    #[serde(default)]
    streaming: Option<String>,
}

impl Streaming {
    /// Where the streaming API is: `configuration.urls.streaming` of `GET /api/v2/instance`,
    /// or `base_url` when the server does not say. `Err`: stop, or retry later.
    async fn discover(&self, ctx: &SourceContext) -> Result<String, Ended<Dropped>> {
        let url = format!("{}/api/v2/instance", self.config.base_url);
        let request = tokio::time::timeout(RESPONSE_TIMEOUT, async {
            let response = self.client.get(&url).send().await?;
            let status = response.status();
            let body = if status.is_success() {
                Some(response.json::<Instance>().await)
            } else {
                None
            };
            Ok::<_, reqwest::Error>((status, body))
        });
        let retry = Ended::Lost(Dropped { delivered: false });
        let found = match ctx.shutdown.run_until_cancelled(request).await {
            None => return Err(Ended::Stop),
            Some(Err(_)) => {
                tracing::warn!(url, "the Mastodon instance document timed out");
                return Err(retry);
            }
            Some(Ok(Err(e))) => {
                tracing::warn!(url, error = %e, "cannot read the Mastodon instance document");
                return Err(retry);
            }
            Some(Ok(Ok((status, None))))
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                tracing::warn!(url, %status, "the Mastodon instance document is unavailable");
                return Err(retry);
            }
            Some(Ok(Ok((_, None) | (_, Some(Err(_)))))) => None,
            Some(Ok(Ok((_, Some(Ok(instance)))))) => instance
                .configuration
                .and_then(|c| c.urls)
                .and_then(|u| u.streaming)
                .filter(|s| !s.trim().is_empty()),
        };
        let base = match found {
            Some(streaming) => http_base(&streaming),
            None => self.config.base_url.clone(),
        };
        tracing::info!(streaming = base, "Mastodon streaming API located");
        Ok(base)
    }

    /// One connection: request the stream, then read events until it ends.
    async fn connect(&self, base: &str, ctx: &SourceContext, attempt: u64) -> Ended<Dropped> {
        let config = &self.config;
        let url = match stream_url(base, config.stream, &config.tag) {
            Ok(url) => url,
            Err(e) => return Ended::Fatal(e),
        };
        tracing::info!(url = %url, attempt, "connecting to the Mastodon streaming API");
        let request = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let retry = Ended::Lost(Dropped { delivered: false });
        let response = match http::send(request, ctx, &config.token).await {
            Ok(response) => response,
            Err(SendError::Stop) => return Ended::Stop,
            Err(SendError::TimedOut) => {
                tracing::warn!(url = %url, "the Mastodon stream did not answer in time");
                return retry;
            }
            Err(SendError::Unreachable(e)) => {
                tracing::warn!(url = %url, error = %e, "cannot connect to the Mastodon stream");
                return retry;
            }
            Err(SendError::Refused {
                status, summary, ..
            }) => {
                if matches!(status.as_u16(), 400 | 401 | 403 | 404 | 410) {
                    return Ended::Fatal(anyhow::anyhow!(
                        "the Mastodon server refused the stream {url}: {summary} (check source.mastodon.base_url, stream, tag and that {TOKEN_KEY} is a user token with the read:statuses scope)"
                    ));
                }
                tracing::warn!(url = %url, error = summary, "the Mastodon stream is unavailable");
                return retry;
            }
        };
        tracing::info!(url = %url, "connected to the Mastodon streaming API");
        self.read(response, ctx).await
    }

    /// Reads events until the connection ends or the source must stop.
    async fn read(&self, response: reqwest::Response, ctx: &SourceContext) -> Ended<Dropped> {
        let mut body = Body::new(response, SseParser::new(MAX_EVENT_BYTES), IDLE_TIMEOUT);
        loop {
            let data = match body.next(ctx).await {
                Next::Stop => return Ended::Stop,
                Next::Lost(lost) => {
                    match lost {
                        Lost::Idle => {
                            tracing::warn!("nothing from the Mastodon stream for {IDLE_TIMEOUT:?}");
                        }
                        Lost::Ended => tracing::warn!("the Mastodon stream ended"),
                        Lost::Failed(e) => {
                            tracing::warn!(error = %e, "the Mastodon stream failed");
                        }
                    }
                    return Ended::Lost(Dropped {
                        delivered: body.received(),
                    });
                }
                Next::Frame(Sse::Malformed(reason)) => {
                    skip_malformed(ctx, reason);
                    continue;
                }
                Next::Frame(Sse::Event { event, data }) if event == "update" => data,
                Next::Frame(Sse::Event { .. }) => continue,
            };
            match map_status(&self.config.host, &data) {
                Ok(Some(post)) => {
                    if !ctx.emit(SourceEvent::Post(Box::new(post))).await {
                        return Ended::Stop;
                    }
                }
                Ok(None) => {}
                Err(reason) => skip_malformed(ctx, &reason),
            }
        }
    }
}

fn skip_malformed(ctx: &SourceContext, reason: &str) {
    ctx.malformed();
    tracing::debug!(reason, "skipping a malformed Mastodon event");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::live::http::host_of;

    #[test]
    fn urls_of_each_stream_and_host() {
        let base = "https://streaming.mastodon.social";
        assert_eq!(
            stream_url(base, MastodonStream::Public, "")
                .expect("url")
                .as_str(),
            "https://streaming.mastodon.social/api/v1/streaming/public"
        );
        assert_eq!(
            stream_url(base, MastodonStream::PublicLocal, "")
                .expect("url")
                .as_str(),
            "https://streaming.mastodon.social/api/v1/streaming/public/local"
        );
        assert_eq!(
            stream_url("http://127.0.0.1:8/", MastodonStream::Hashtag, "café & co")
                .expect("url")
                .as_str(),
            "http://127.0.0.1:8/api/v1/streaming/hashtag?tag=caf%C3%A9+%26+co"
        );
        assert_eq!(http_base("wss://streaming.mastodon.social/"), base);
        assert_eq!(http_base("ws://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(
            host_of("https://mastodon.social").as_deref(),
            Some("mastodon.social")
        );
        assert_eq!(
            host_of("https://mastodon.social:443/").as_deref(),
            Some("mastodon.social")
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(host_of("not a url"), None);
    }
}
