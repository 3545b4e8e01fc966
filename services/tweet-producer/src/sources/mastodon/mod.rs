//! The `mastodon` source: a Mastodon server's streaming API, over Server-Sent Events
//! ([`stream`]), statuses mapped to the raw post contract ([`status`]) with their HTML turned
//! into text ([`html`]).
//!
//! Why SSE and not the WebSocket endpoint: both carry the same events, but the SSE endpoints
//! (`GET /api/v1/streaming/public`, `…/public/local`, `…/hashtag?tag=`) are plain HTTP
//! requests, so the token goes in an `Authorization: Bearer` header (a WebSocket client would
//! put it in the URL's `access_token` or in `Sec-WebSocket-Protocol`, and URLs end up in logs),
//! the HTTP status of a refusal (401, 429, 503) is there to decide between giving up and
//! backing off, and it is the same HTTP client as the `x` source. Mastodon ≥ 4.2 requires a
//! user token with `read:statuses` for these streams.
//!
//! No resume position: Mastodon's streaming API cannot be resumed, so after a restart the
//! stream starts live. Statuses posted while the producer was down are missed; none is
//! published twice (what the killed run had not committed is discarded by Kafka).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.mastodon.base_url` | `https://mastodon.social` | the Mastodon server the token belongs to (`https://` or `http://`, no path); its host is part of every post id |
//! | `source.mastodon.streaming_url` | `""` | where the streaming API is served; empty = discovered from the server's `GET /api/v2/instance` (`configuration.urls.streaming`), else `base_url` |
//! | `source.mastodon.stream` | `public` | `public` (the federated timeline), `public:local` (posts of this server) or `hashtag` (with `source.mastodon.tag`) |
//! | `source.mastodon.tag` | `""` | the hashtag (without `#`) of `stream = "hashtag"` |
//! | `source.mastodon.token.env` / `.file` | `""` | where the access token (scope `read:statuses`) is: an environment variable's name, or a file; exactly one, required for `kind = "mastodon"` |

pub mod html;
pub mod status;
pub mod stream;

use std::collections::HashMap;

use anyhow::Context as _;
use secrecy::SecretString;
use serde::Deserialize;
use trends_common::config::{ConfigError, by_name};

pub use self::stream::{MastodonStream, TOKEN_KEY};
use self::stream::{MastodonConfig, Streaming, http_base};
use super::contract::{Source, SourceContext, SourceTask, Start};
use super::live::http::{check_http_url, host_of, host_or_url};
use super::live::{self, Exponential};
use super::position::Position;
use crate::secret::SecretRef;

/// The defaults of `[source.mastodon]`.
pub const DEFAULTS: &str = r#"
[source.mastodon]
base_url = "https://mastodon.social"
streaming_url = ""
stream = "public"
tag = ""

[source.mastodon.token]
env = ""
file = ""
"#;

/// `[source.mastodon]`: a Mastodon server's streaming API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSettings {
    pub base_url: String,
    pub streaming_url: String,
    #[serde(deserialize_with = "by_name")]
    pub stream: MastodonStream,
    pub tag: String,
    /// Where the access token is; the token itself is in [`MastodonSettings::resolved_token`].
    pub token: SecretRef,
    /// The token, read at load when `source.kind = "mastodon"` (never from a config file).
    #[serde(skip)]
    pub resolved_token: Option<SecretString>,
}

impl MastodonSettings {
    /// The hashtag of `stream = hashtag`, without `#`.
    fn tag(&self) -> &str {
        self.tag.trim().trim_start_matches('#')
    }
}

impl Source for MastodonSettings {
    fn validate(&self, selected: bool) -> Result<(), ConfigError> {
        if !selected {
            return Ok(());
        }
        check_http_url("source.mastodon.base_url", &self.base_url, false)?;
        if !self.streaming_url.trim().is_empty() {
            check_http_url(
                "source.mastodon.streaming_url",
                &http_base(&self.streaming_url),
                true,
            )?;
        }
        if self.stream == MastodonStream::Hashtag && self.tag().is_empty() {
            return Err(ConfigError(
                "source.mastodon.tag must name a hashtag when source.mastodon.stream = \"hashtag\""
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn resolve_secrets(&mut self, vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        self.resolved_token = Some(self.token.load(TOKEN_KEY, vars)?);
        Ok(())
    }

    /// `mastodon:<host>/<stream>` (`hashtag:<tag>` for a hashtag stream).
    fn origin(&self) -> String {
        let host = host_or_url(&self.base_url);
        let stream = match self.stream {
            MastodonStream::Public => "public".to_owned(),
            MastodonStream::PublicLocal => "public:local".to_owned(),
            MastodonStream::Hashtag => format!("hashtag:{}", self.tag()),
        };
        format!("mastodon:{host}/{stream}")
    }

    fn log_start(&self, topic: &str, _source_key: &str, _start: Option<&Position>) {
        tracing::info!(
            topic,
            base_url = %self.base_url,
            stream = ?self.stream,
            tag = %self.tag,
            "publishing live posts from a Mastodon server"
        );
    }

    fn start(&self, from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask> {
        let base_url = self.base_url.trim().trim_end_matches('/').to_owned();
        let host = host_of(&base_url)
            .with_context(|| format!("source.mastodon.base_url {base_url:?} has no host"))?;
        let token = self
            .resolved_token
            .clone()
            .with_context(|| format!("{TOKEN_KEY} was not read"))?;
        let config = MastodonConfig {
            base_url,
            stream: self.stream,
            tag: self.tag().to_owned(),
            host,
            token,
        };
        let streaming_url = Some(self.streaming_url.trim())
            .filter(|u| !u.is_empty())
            .map(http_base);
        let policy = Exponential::new(from.reconnect);
        Ok(Box::pin(async move {
            let mut streaming = Streaming::new(config, streaming_url)?;
            live::run(
                &mut streaming,
                policy,
                &ctx,
                "reconnecting to Mastodon after a back-off",
            )
            .await
        }))
    }
}
