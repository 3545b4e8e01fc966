//! The `mastodon` source: a Mastodon server's streaming API, over Server-Sent Events.
//!
//! Why SSE and not the WebSocket endpoint: both carry the same events, but the SSE endpoints
//! (`GET /api/v1/streaming/public`, `…/public/local`, `…/hashtag?tag=`) are plain HTTP
//! requests, so the token goes in an `Authorization: Bearer` header (a WebSocket client would
//! put it in the URL's `access_token` or in `Sec-WebSocket-Protocol`, and URLs end up in logs),
//! the HTTP status of a refusal (401, 429, 503) is there to decide between giving up and
//! backing off, and it is the same HTTP client as the `x` source. Mastodon ≥ 4.2 requires a
//! user token with `read:statuses` for these streams.
//!
//! Where: the streaming API may be served by another host than the REST API. Unless
//! `source.mastodon.streaming_url` is set, the producer reads the server's
//! `GET /api/v2/instance` (`configuration.urls.streaming`, a `wss://` URL used as `https://`)
//! before the first connection, and uses `base_url` itself when the server does not say (older
//! servers answer 404).
//!
//! Mapping ([`map_status`], pure): only `update` events (a new status); `delete`,
//! `status.update` (edits) and other events are ignored, and so are boosts. Id
//! `mastodon:<host>/<status id>` (status ids are per server; the host is `base_url`'s), text
//! the HTML `content` as plain text ([`crate::html`]) after the content warning
//! (`spoiler_text`) if any, `created_at`, `lang` = `language`, `author_id` = `account.id`,
//! `source` = `mastodon`, `hashtags` = `tags[].name` (absent when empty, so the aggregator
//! extracts from the text).
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
//!
//! No resume position: Mastodon's streaming API cannot be resumed, so after a restart the
//! stream starts live. Statuses posted while the producer was down are missed; none is
//! published twice (what the killed run had not committed is discarded by Kafka).

use std::time::Duration;

use anyhow::Context as _;
use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::{StatusCode, Url};
use secrecy::SecretString;
use serde::Deserialize;
use trends_core::post::{RawPost, parse_rfc3339_millis};

use crate::html;
use crate::http::{self, RESPONSE_TIMEOUT};
use crate::metrics::inc;
use crate::settings::{MastodonStream, SourceSettings};
use crate::source::{SourceContext, SourceEvent, SourcePost};
use crate::sse::{Sse, SseParser};

/// A connection without a byte (event or heartbeat) for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Events larger than this are skipped (a status is a few KiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// The config key of the token (for errors).
pub const TOKEN_KEY: &str = "source.mastodon.token";

/// What the source is configured with.
#[derive(Debug, Clone)]
pub struct MastodonConfig {
    /// `https://server` without a trailing slash.
    pub base_url: String,
    /// Where the streaming API is, if configured (else discovered).
    pub streaming_url: Option<String>,
    pub stream: MastodonStream,
    /// The hashtag of `stream = hashtag`, without `#`.
    pub tag: String,
    /// `base_url`'s host (and port, if not the default): part of every post id.
    pub host: String,
    pub token: SecretString,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl MastodonConfig {
    /// From (validated) settings; fails if the token was not read at load.
    pub fn from_settings(source: &SourceSettings) -> anyhow::Result<MastodonConfig> {
        let m = &source.mastodon;
        let base_url = m.base_url.trim().trim_end_matches('/').to_owned();
        let host = host_of(&base_url)
            .with_context(|| format!("source.mastodon.base_url {base_url:?} has no host"))?;
        let streaming_url = Some(m.streaming_url.trim())
            .filter(|u| !u.is_empty())
            .map(http_base);
        Ok(MastodonConfig {
            base_url,
            streaming_url,
            stream: m.stream,
            tag: m.tag.trim().trim_start_matches('#').to_owned(),
            host,
            token: m
                .resolved_token
                .clone()
                .with_context(|| format!("{TOKEN_KEY} was not read"))?,
            min_delay: Duration::from_millis(source.reconnect.min_ms),
            max_delay: Duration::from_millis(source.reconnect.max_ms),
        })
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

/// The fields of a Status we use.
#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    created_at: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: String,
    account: Account,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    reblog: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
}

/// Maps the payload of an `update` event (a Status as a JSON string): `Ok(None)` for a status
/// that is not a new post (a boost), `Err` (the reason) for one that is not a valid status.
pub fn map_status(host: &str, data: &str) -> Result<Option<SourcePost>, String> {
    let status: Status = serde_json::from_str(data).map_err(|e| format!("not a status: {e}"))?;
    if status.reblog.is_some() {
        return Ok(None);
    }
    if status.id.is_empty() || status.account.id.is_empty() {
        return Err("a status without id or account id".into());
    }
    let event_time = parse_rfc3339_millis(&status.created_at)
        .ok_or_else(|| format!("created_at {:?} is not RFC 3339", status.created_at))?;
    let content = html::to_text(&status.content);
    let text = match status.spoiler_text.trim() {
        "" => content,
        warning => format!("{warning}\n\n{content}"),
    };
    let mut hashtags: Vec<String> = Vec::new();
    for tag in status.tags {
        let tag = tag.name.trim_start_matches(['#', '＃']).to_owned();
        if !tag.is_empty() && !hashtags.contains(&tag) {
            hashtags.push(tag);
        }
    }
    let post = RawPost {
        id: format!("mastodon:{host}/{}", status.id),
        text,
        created_at: status.created_at,
        author_id: Some(status.account.id),
        lang: status.language.filter(|l| !l.is_empty()),
        source: Some("mastodon".to_owned()),
        hashtags: (!hashtags.is_empty()).then_some(hashtags),
    };
    Ok(Some(SourcePost {
        post,
        event_time,
        payload: None,
        position: None,
    }))
}

/// How one attempt ended.
enum Ended {
    /// Shutdown, or the publisher is gone.
    Stop,
    /// It will not work by retrying.
    Fatal(anyhow::Error),
    /// Retry after a back-off; `delivered`: the connection had delivered something.
    Retry { delivered: bool },
}

/// Runs the source: connects, reads, reconnects, until shutdown or a fatal refusal. Returns
/// the number of malformed events.
pub async fn run(config: &MastodonConfig, ctx: &SourceContext) -> anyhow::Result<u64> {
    let client = http::client(&config.token, TOKEN_KEY)?;
    let backoff = ExponentialBuilder::new()
        .with_min_delay(config.min_delay)
        .with_max_delay(config.max_delay)
        .with_jitter()
        .without_max_times();
    let mut delays = backoff.build();
    let mut streaming = config.streaming_url.clone();
    let mut malformed = 0u64;
    let mut attempt = 0u64;
    loop {
        if attempt > 0 {
            inc(&ctx.metrics.reconnects);
        }
        attempt += 1;
        let ended = match &streaming {
            Some(base) => connect(config, base, &client, ctx, &mut malformed, attempt).await,
            None => match discover(config, &client, ctx).await {
                Ok(Some(base)) => {
                    streaming = Some(base.clone());
                    connect(config, &base, &client, ctx, &mut malformed, attempt).await
                }
                Ok(None) => Ended::Stop,
                Err(()) => Ended::Retry { delivered: false },
            },
        };
        match ended {
            Ended::Stop => return Ok(malformed),
            Ended::Fatal(error) => return Err(error),
            Ended::Retry { delivered } => {
                if delivered {
                    delays = backoff.build();
                }
            }
        }
        let delay = delays.next().unwrap_or(config.max_delay);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting to Mastodon after a back-off"
        );
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(malformed),
            () = tokio::time::sleep(delay) => {}
        }
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

/// Where the streaming API is: `configuration.urls.streaming` of `GET /api/v2/instance`, or
/// `base_url` when the server does not say. `Ok(None)`: shutdown; `Err`: retry later.
async fn discover(
    config: &MastodonConfig,
    client: &reqwest::Client,
    ctx: &SourceContext,
) -> Result<Option<String>, ()> {
    let url = format!("{}/api/v2/instance", config.base_url);
    let request = tokio::time::timeout(RESPONSE_TIMEOUT, async {
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = if status.is_success() {
            Some(response.json::<Instance>().await)
        } else {
            None
        };
        Ok::<_, reqwest::Error>((status, body))
    });
    let result = tokio::select! {
        () = ctx.shutdown.cancelled() => return Ok(None),
        result = request => result,
    };
    let found = match result {
        Err(_) => {
            tracing::warn!(url, "the Mastodon instance document timed out");
            return Err(());
        }
        Ok(Err(e)) => {
            tracing::warn!(url, error = %e, "cannot read the Mastodon instance document");
            return Err(());
        }
        Ok(Ok((status, None)))
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
        {
            tracing::warn!(url, %status, "the Mastodon instance document is unavailable");
            return Err(());
        }
        Ok(Ok((_, None))) | Ok(Ok((_, Some(Err(_))))) => None,
        Ok(Ok((_, Some(Ok(instance))))) => instance
            .configuration
            .and_then(|c| c.urls)
            .and_then(|u| u.streaming)
            .filter(|s| !s.trim().is_empty()),
    };
    let base = match found {
        Some(streaming) => http_base(&streaming),
        None => config.base_url.clone(),
    };
    tracing::info!(streaming = base, "Mastodon streaming API located");
    Ok(Some(base))
}

/// One connection: request the stream, then read events until it ends.
async fn connect(
    config: &MastodonConfig,
    base: &str,
    client: &reqwest::Client,
    ctx: &SourceContext,
    malformed: &mut u64,
    attempt: u64,
) -> Ended {
    let url = match stream_url(base, config.stream, &config.tag) {
        Ok(url) => url,
        Err(e) => return Ended::Fatal(e),
    };
    tracing::info!(url = %url, attempt, "connecting to the Mastodon streaming API");
    let request = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send(),
    );
    let response = tokio::select! {
        () = ctx.shutdown.cancelled() => return Ended::Stop,
        response = request => response,
    };
    let response = match response {
        Err(_) => {
            tracing::warn!(url = %url, "the Mastodon stream did not answer in time");
            return Ended::Retry { delivered: false };
        }
        Ok(Err(e)) => {
            tracing::warn!(url = %url, error = %e, "cannot connect to the Mastodon stream");
            return Ended::Retry { delivered: false };
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let summary = http::error_summary(response, &config.token).await;
        if matches!(status.as_u16(), 400 | 401 | 403 | 404 | 410) {
            return Ended::Fatal(anyhow::anyhow!(
                "the Mastodon server refused the stream {url}: {summary} (check source.mastodon.base_url, stream, tag and that {TOKEN_KEY} is a user token with the read:statuses scope)"
            ));
        }
        tracing::warn!(url = %url, error = summary, "the Mastodon stream is unavailable");
        return Ended::Retry { delivered: false };
    }
    tracing::info!(url = %url, "connected to the Mastodon streaming API");
    read(response, config, ctx, malformed).await
}

/// Reads events until the connection ends or the source must stop.
async fn read(
    mut response: reqwest::Response,
    config: &MastodonConfig,
    ctx: &SourceContext,
    malformed: &mut u64,
) -> Ended {
    let mut parser = SseParser::new(MAX_EVENT_BYTES);
    let mut events: Vec<Sse> = Vec::new();
    let mut delivered = false;
    loop {
        let chunk = tokio::select! {
            () = ctx.shutdown.cancelled() => return Ended::Stop,
            chunk = tokio::time::timeout(IDLE_TIMEOUT, response.chunk()) => chunk,
        };
        let chunk = match chunk {
            Err(_) => {
                tracing::warn!("nothing from the Mastodon stream for {IDLE_TIMEOUT:?}");
                return Ended::Retry { delivered };
            }
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => {
                tracing::warn!("the Mastodon stream ended");
                return Ended::Retry { delivered };
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the Mastodon stream failed");
                return Ended::Retry { delivered };
            }
        };
        delivered = true;
        parser.feed(&chunk, &mut events);
        for event in events.drain(..) {
            let data = match event {
                Sse::Malformed(reason) => {
                    skip_malformed(ctx, malformed, reason);
                    continue;
                }
                Sse::Event { event, data } if event == "update" => data,
                Sse::Event { .. } => continue,
            };
            match map_status(&config.host, &data) {
                Ok(Some(post)) => {
                    if !ctx.emit(SourceEvent::Post(Box::new(post))).await {
                        return Ended::Stop;
                    }
                }
                Ok(None) => {}
                Err(reason) => skip_malformed(ctx, malformed, &reason),
            }
        }
    }
}

fn skip_malformed(ctx: &SourceContext, malformed: &mut u64, reason: &str) {
    *malformed += 1;
    inc(&ctx.metrics.malformed);
    tracing::debug!(reason, "skipping a malformed Mastodon event");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The federated-timeline update of Mastodon's streaming documentation.
    const PUBLIC_UPDATE: &str = r#"{"id":"108914354907984653","created_at":"2022-08-30T23:12:47.000Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://mstdn.jp/users/aiueohisama/statuses/108914354891945610","url":"https://mstdn.jp/@aiueohisama/108914354891945610","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":null,"content":"<p>処女の子が「処女だからキモい絡み方しちゃうかもだけど許して🥺」なんて言ってるのわたしは見たことない、童貞の甘えだよそれは 嫌われたくないなら最低限のマナーくらい身につけた方がいい</p>","reblog":null,"account":{"id":"272619","username":"aiueohisama","acct":"aiueohisama@mstdn.jp","display_name":"💎🌻陽菜💙💛","locked":false,"bot":false,"discoverable":false,"group":false,"created_at":"2017-04-15T00:00:00.000Z","note":"<p>とっても素直で真面目なOLでし！</p>","url":"https://mstdn.jp/@aiueohisama","avatar":"https://files.mastodon.social/cache/accounts/avatars/000/272/619/original/573669a325c87b8b.jpeg","avatar_static":"https://files.mastodon.social/cache/accounts/avatars/000/272/619/original/573669a325c87b8b.jpeg","header":"https://files.mastodon.social/cache/accounts/headers/000/272/619/original/5d5dad59a9fd1531.jpeg","header_static":"https://files.mastodon.social/cache/accounts/headers/000/272/619/original/5d5dad59a9fd1531.jpeg","followers_count":182,"following_count":20,"statuses_count":1128,"last_status_at":"2022-08-30","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[],"emojis":[],"card":null,"poll":null,"filter_results":[]}"#;

    /// The hashtag-timeline update of the same documentation.
    const HASHTAG_UPDATE: &str = r#"{"id":"108914430312582020","created_at":"2022-08-30T23:31:58.006Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":"https://mastodon.social/users/trwnh/statuses/108914430312582020","url":"https://mastodon.social/@trwnh/108914430312582020","replies_count":0,"reblogs_count":0,"favourites_count":0,"edited_at":null,"content":"<p><a href=\"https://mastodon.social/tags/test\" class=\"mention hashtag\" rel=\"tag\">#<span>test</span></a></p>","reblog":null,"application":{"name":"Web","website":null},"account":{"id":"14715","username":"trwnh","acct":"trwnh","display_name":"infinite love ⴳ","locked":false,"bot":false,"discoverable":true,"group":false,"created_at":"2016-11-24T00:00:00.000Z","note":"","url":"https://mastodon.social/@trwnh","avatar":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","avatar_static":"https://files.mastodon.social/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png","header":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","header_static":"https://files.mastodon.social/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg","followers_count":2520,"following_count":266,"statuses_count":59817,"last_status_at":"2022-08-30","emojis":[],"fields":[]},"media_attachments":[],"mentions":[],"tags":[{"name":"test","url":"https://mastodon.social/tags/test"}],"emojis":[],"card":null,"poll":null}"#;

    #[test]
    fn documented_updates_map_to_the_contract() {
        let Ok(Some(post)) = map_status("mastodon.social", HASHTAG_UPDATE) else {
            panic!("a post");
        };
        assert_eq!(post.event_time, 1_661_902_318_006);
        assert_eq!(post.position, None);
        assert_eq!(
            post.post,
            RawPost {
                id: "mastodon:mastodon.social/108914430312582020".into(),
                text: "#test".into(),
                created_at: "2022-08-30T23:31:58.006Z".into(),
                author_id: Some("14715".into()),
                lang: Some("en".into()),
                source: Some("mastodon".into()),
                hashtags: Some(vec!["test".into()]),
            }
        );
        let json = serde_json::to_vec(&post.post).expect("serializes");
        let parsed = trends_core::post::parse_post(&json).expect("a valid post");
        assert_eq!(parsed.event_time, post.event_time);

        let Ok(Some(post)) = map_status("mastodon.social", PUBLIC_UPDATE) else {
            panic!("a post");
        };
        assert_eq!(post.post.id, "mastodon:mastodon.social/108914354907984653");
        assert!(
            post.post.text.starts_with("処女の子が"),
            "{}",
            post.post.text
        );
        assert!(!post.post.text.contains("<p>"));
        assert_eq!(post.post.hashtags, None, "no tags: extracted from the text");
        assert_eq!(post.post.author_id.as_deref(), Some("272619"));
    }

    #[test]
    fn content_warnings_lead_the_text_and_boosts_are_not_posts() {
        let warned = r#"{"id":"1","created_at":"2022-08-30T23:31:58.006Z","spoiler_text":"CW: spoilers","language":null,"content":"<p>the end</p>","account":{"id":"2"},"tags":[{"name":"Films"},{"name":"Films"}]}"#;
        let Ok(Some(post)) = map_status("h", warned) else {
            panic!("a post");
        };
        assert_eq!(post.post.text, "CW: spoilers\n\nthe end");
        assert_eq!(post.post.lang, None);
        assert_eq!(post.post.hashtags, Some(vec!["Films".to_owned()]));
        let boost = r#"{"id":"3","created_at":"2022-08-30T23:31:58.006Z","content":"","account":{"id":"2"},"reblog":{"id":"1"}}"#;
        assert_eq!(map_status("h", boost), Ok(None));
    }

    #[test]
    fn malformed_statuses_are_errors_never_panics() {
        for data in [
            "",
            "undefined",
            "107214471804101576",
            "{}",
            r#"{"id":"1","created_at":"2022-08-30T23:31:58.006Z","content":"x"}"#,
            r#"{"id":"","created_at":"2022-08-30T23:31:58.006Z","content":"x","account":{"id":"2"}}"#,
            r#"{"id":"1","created_at":"yesterday","content":"x","account":{"id":"2"}}"#,
            r#"{"id":1,"created_at":"2022-08-30T23:31:58.006Z","content":"x","account":{"id":"2"}}"#,
        ] {
            assert!(map_status("h", data).is_err(), "{data}");
        }
    }

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
