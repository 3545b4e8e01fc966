//! The `x` source: the X API v2 filtered stream, with its rules managed from config.
//!
//! Why rules are synced, not added: the filtered stream delivers whatever matches the rules
//! stored on X's side for the app, and they outlive the process. Adding the configured rules at
//! every start would pile up old ones (and each delivered post is billed), so at start the
//! producer reads them (`GET /2/tweets/search/stream/rules`, every page) and makes them
//! exactly the configured set: one `POST /2/tweets/search/stream/rules` with
//! `{"delete":{"ids":[…]}}` for the rules that are not configured (or differ in tag), then one
//! with `{"add":[{"value","tag"}…]}` for the configured ones that are missing; none when they
//! already match ([`diff_rules`], pure). A rule X rejects (bad syntax, too long, over the
//! plan's limits) stops the source with X's reason.
//!
//! Then `GET /2/tweets/search/stream?tweet.fields=created_at,entities,lang,author_id` with the
//! app's bearer token: a chunked body of JSON objects, one per line, and a bare `\r\n` every
//! 20 s as keep-alive. Mapping ([`map_line`], pure): id `x:<id>`, `text`, `created_at`, `lang`,
//! `author_id`, `source` = `x`, `hashtags` = `data.entities.hashtags[].tag`. A line with only
//! `errors` (e.g. an operational disconnect notice) is logged; a line that is not a valid post
//! is skipped and counted as malformed (a line over [`MAX_LINE_BYTES`] too; a post whose
//! record is over `source.max_post_bytes` is skipped and counted as oversized by the pipeline).
//!
//! No resume position: the stream cannot be resumed without recovery features not every plan
//! has, so after a restart it starts live. Posts made while the producer was down are missed;
//! none is published twice (what the killed run had not committed is discarded by Kafka).
//!
//! Reconnects follow X's documented policy ([`Backoff`]), not the shared one: an established
//! connection that drops is reconnected at once; then network errors (refused, reset,
//! [`IDLE_TIMEOUT`] without even a keep-alive) back off linearly, 250 ms more per attempt up to
//! 16 s; HTTP errors (5xx and the like) exponentially from 5 s, doubling up to 320 s; a 429
//! waits until the `x-rate-limit-reset` time when the response gives one in the future, else
//! exponentially from 1 minute. No jitter: an app may hold only one connection, so there is no
//! herd to spread. All durations are settings (`source.x.backoff`). A 400, 401, 403 or 404 will
//! not get better by retrying (a bad token, a plan without filtered-stream access): the source
//! stops with X's reason, never the token.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use trends_core::post::{RawPost, parse_rfc3339_millis};

use crate::http::{self, Line, LineSplitter, RESPONSE_TIMEOUT};
use crate::metrics::inc;
use crate::now_ms;
use crate::settings::{SourceSettings, XBackoffSettings};
use crate::source::{SourceContext, SourceEvent, SourcePost};

/// The stream's query: the post fields the contract needs.
pub const STREAM_QUERY: &str = "tweet.fields=created_at,entities,lang,author_id";
/// X sends a keep-alive every 20 s; a connection silent for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines longer than this are skipped (a post with its fields is a few KiB).
pub const MAX_LINE_BYTES: usize = 2 << 20;
/// The config key of the token (for errors).
pub const TOKEN_KEY: &str = "source.x.token";
/// At most this many pages of rules are read (X allows at most 1,000 rules per page).
const MAX_RULE_PAGES: usize = 100;

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
    pub policy: Policy,
}

impl XConfig {
    /// From (validated) settings; fails if the token was not read at load.
    pub fn from_settings(source: &SourceSettings) -> anyhow::Result<XConfig> {
        let x = &source.x;
        Ok(XConfig {
            base_url: x.base_url.trim().trim_end_matches('/').to_owned(),
            rules: x.rule_list(),
            tag: Some(x.tag.trim().to_owned()).filter(|t| !t.is_empty()),
            token: x
                .resolved_token
                .clone()
                .with_context(|| format!("{TOKEN_KEY} was not read"))?,
            policy: Policy::from_settings(&x.backoff),
        })
    }
}

/// X's documented reconnect policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub network_step: Duration,
    pub network_max: Duration,
    pub http_min: Duration,
    pub http_max: Duration,
    pub rate_limit_min: Duration,
    pub rate_limit_max: Duration,
}

impl Policy {
    pub fn from_settings(b: &XBackoffSettings) -> Policy {
        let ms = Duration::from_millis;
        Policy {
            network_step: ms(b.network_step_ms),
            network_max: ms(b.network_max_ms),
            http_min: ms(b.http_min_ms),
            http_max: ms(b.http_max_ms),
            rate_limit_min: ms(b.rate_limit_min_ms),
            rate_limit_max: ms(b.rate_limit_max_ms),
        }
    }
}

/// Why an attempt failed, for the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused, reset, timed out: no HTTP answer.
    Network,
    /// An HTTP error worth retrying (5xx and the like).
    Http,
    /// A 429, with the `x-rate-limit-reset` time (epoch seconds) if the response had one.
    RateLimited { reset_at: Option<u64> },
}

/// Consecutive failures of each kind, and the delays they lead to.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    network: u32,
    http: u32,
    rate_limited: u32,
}

impl Backoff {
    pub fn new(policy: Policy) -> Backoff {
        Backoff {
            policy,
            network: 0,
            http: 0,
            rate_limited: 0,
        }
    }

    /// After a connection was established: start over.
    pub fn reset(&mut self) {
        self.network = 0;
        self.http = 0;
        self.rate_limited = 0;
    }

    /// The wait after `failure`, at wall-clock `now_ms` (epoch milliseconds).
    pub fn delay(&mut self, failure: Failure, now_ms: i64) -> Duration {
        let p = &self.policy;
        match failure {
            Failure::Network => {
                self.network = self.network.saturating_add(1);
                p.network_step
                    .saturating_mul(self.network)
                    .min(p.network_max)
            }
            Failure::Http => {
                self.http = self.http.saturating_add(1);
                doubled(p.http_min, self.http).min(p.http_max)
            }
            Failure::RateLimited { reset_at } => {
                self.rate_limited = self.rate_limited.saturating_add(1);
                let until_reset = reset_at
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                    .map(|s| s.saturating_mul(1000).saturating_sub(now_ms))
                    .filter(|&ms| ms > 0)
                    .map(|ms| Duration::from_millis(ms.unsigned_abs()));
                until_reset
                    .unwrap_or_else(|| doubled(p.rate_limit_min, self.rate_limited))
                    .min(p.rate_limit_max)
            }
        }
    }
}

/// `base × 2^(n−1)`, saturating.
fn doubled(base: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

/// A rule as X returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    pub id: String,
    pub value: String,
    #[serde(default)]
    pub tag: Option<String>,
}

/// A rule to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRule {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What makes the server's rules equal to the configured ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleChanges {
    /// Ids of rules to delete, in the server's order.
    pub delete: Vec<String>,
    /// Rules to add, in the configured order.
    pub add: Vec<NewRule>,
}

/// The changes that turn `current` into `wanted` (values, each with `tag`). A rule is kept
/// only if its value and tag are both as configured (X refuses two rules with one value, so a
/// rule whose tag changed is deleted and added again).
pub fn diff_rules(current: &[Rule], wanted: &[String], tag: Option<&str>) -> RuleChanges {
    let mut kept: Vec<&str> = Vec::new();
    let mut changes = RuleChanges::default();
    for rule in current {
        let same_tag = rule.tag.as_deref().filter(|t| !t.is_empty()) == tag;
        let value = rule.value.as_str();
        if same_tag && wanted.iter().any(|w| w == value) && !kept.contains(&value) {
            kept.push(value);
        } else {
            changes.delete.push(rule.id.clone());
        }
    }
    for value in wanted {
        if !kept.contains(&value.as_str()) {
            changes.add.push(NewRule {
                value: value.clone(),
                tag: tag.map(str::to_owned),
            });
        }
    }
    changes
}

/// One line of the stream.
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    data: Option<Tweet>,
    #[serde(default)]
    errors: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id: String,
    text: String,
    created_at: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    author_id: Option<String>,
    #[serde(default)]
    entities: Option<Entities>,
}

#[derive(Debug, Deserialize)]
struct Entities {
    #[serde(default)]
    hashtags: Vec<Hashtag>,
}

#[derive(Debug, Deserialize)]
struct Hashtag {
    tag: String,
}

/// What one line of the stream means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// A blank line: the keep-alive.
    KeepAlive,
    Post(Box<SourcePost>),
    /// A message with errors only (what they say).
    Notice(String),
}

/// Maps one line of the stream (without its line end); `Err` (the reason) for a line that is
/// not a valid message.
pub fn map_line(line: &[u8]) -> Result<Mapped, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Mapped::KeepAlive);
    }
    let message: Message =
        serde_json::from_slice(line).map_err(|e| format!("not a stream message: {e}"))?;
    let Some(tweet) = message.data else {
        return match message.errors {
            Some(errors) if !errors.is_empty() => Ok(Mapped::Notice(
                serde_json::to_string(&errors).unwrap_or_default(),
            )),
            _ => Err("a message without data or errors".into()),
        };
    };
    if tweet.id.is_empty() {
        return Err("a post without id".into());
    }
    let event_time = parse_rfc3339_millis(&tweet.created_at)
        .ok_or_else(|| format!("created_at {:?} is not RFC 3339", tweet.created_at))?;
    let mut hashtags: Vec<String> = Vec::new();
    for hashtag in tweet.entities.map(|e| e.hashtags).unwrap_or_default() {
        let tag = hashtag.tag.trim_start_matches(['#', '＃']).to_owned();
        if !tag.is_empty() && !hashtags.contains(&tag) {
            hashtags.push(tag);
        }
    }
    let post = RawPost {
        id: format!("x:{}", tweet.id),
        text: tweet.text,
        created_at: tweet.created_at,
        author_id: tweet.author_id.filter(|a| !a.is_empty()),
        lang: tweet.lang.filter(|l| !l.is_empty()),
        source: Some("x".to_owned()),
        hashtags: (!hashtags.is_empty()).then_some(hashtags),
    };
    Ok(Mapped::Post(Box::new(SourcePost {
        post,
        event_time,
        payload: None,
        position: None,
    })))
}

/// Why an attempt did not go on.
enum Trouble {
    /// Shutdown, or the publisher is gone.
    Stop,
    /// It will not work by retrying.
    Fatal(anyhow::Error),
    Retry(Failure),
}

/// Runs the source: syncs the rules, connects, reads, reconnects, until shutdown or a fatal
/// refusal. Returns the number of malformed lines.
pub async fn run(config: &XConfig, ctx: &SourceContext) -> anyhow::Result<u64> {
    let client = http::client(&config.token, TOKEN_KEY)?;
    let mut backoff = Backoff::new(config.policy);
    let mut synced = false;
    let mut malformed = 0u64;
    let mut attempt = 0u64;
    loop {
        if attempt > 0 {
            inc(&ctx.metrics.reconnects);
        }
        attempt += 1;
        let outcome = if synced {
            stream(config, &client, ctx, &mut malformed, attempt).await
        } else {
            match sync_rules(config, &client, ctx).await {
                Ok(()) => {
                    synced = true;
                    stream(config, &client, ctx, &mut malformed, attempt).await
                }
                Err(trouble) => Err(trouble),
            }
        };
        let delay = match outcome {
            // An established connection dropped: reconnect at once.
            Ok(()) => {
                backoff.reset();
                Duration::ZERO
            }
            Err(Trouble::Stop) => return Ok(malformed),
            Err(Trouble::Fatal(error)) => return Err(error),
            Err(Trouble::Retry(failure)) => backoff.delay(failure, now_ms()),
        };
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting to the X filtered stream"
        );
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(malformed),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Sends a request (bounded by [`RESPONSE_TIMEOUT`], interrupted by shutdown); a non-2xx
/// answer is classified: 429 rate limited, 400/401/403/404 fatal, others retried.
async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
    config: &XConfig,
    ctx: &SourceContext,
) -> Result<reqwest::Response, Trouble> {
    let sent = tokio::select! {
        () = ctx.shutdown.cancelled() => return Err(Trouble::Stop),
        sent = tokio::time::timeout(RESPONSE_TIMEOUT, request.send()) => sent,
    };
    let response = match sent {
        Err(_) => {
            tracing::warn!(what, "X did not answer in time");
            return Err(Trouble::Retry(Failure::Network));
        }
        Ok(Err(e)) => {
            tracing::warn!(what, error = %e, "cannot reach X");
            return Err(Trouble::Retry(Failure::Network));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let reset_at = http::header_u64(response.headers(), "x-rate-limit-reset");
    let summary = http::error_summary(response, &config.token).await;
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            tracing::warn!(what, error = summary, reset_at, "X rate limit reached");
            Err(Trouble::Retry(Failure::RateLimited { reset_at }))
        }
        StatusCode::BAD_REQUEST
        | StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND => Err(Trouble::Fatal(anyhow::anyhow!(
            "X refused {what}: {summary} (check {TOKEN_KEY}: an app bearer token of a plan with filtered-stream access, and source.x.base_url)"
        ))),
        _ => {
            tracing::warn!(what, error = summary, "X answered with an error");
            Err(Trouble::Retry(Failure::Http))
        }
    }
}

/// Reads a JSON response body (bounded by [`RESPONSE_TIMEOUT`]).
async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, Trouble> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, response.bytes()).await {
        Err(_) => Err(Trouble::Retry(Failure::Network)),
        Ok(Err(e)) => {
            tracing::warn!(what, error = %e, "cannot read X's answer");
            Err(Trouble::Retry(Failure::Network))
        }
        Ok(Ok(body)) => serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(what, error = %e, "X's answer is not what was expected");
            Trouble::Retry(Failure::Http)
        }),
    }
}

#[derive(Debug, Deserialize)]
struct RulesPage {
    #[serde(default)]
    data: Vec<Rule>,
    #[serde(default)]
    meta: Option<RulesMeta>,
}

#[derive(Debug, Deserialize)]
struct RulesMeta {
    #[serde(default)]
    next_token: Option<String>,
}

/// The answer to an add or delete.
#[derive(Debug, Deserialize)]
struct Changed {
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct AddBody<'a> {
    add: &'a [NewRule],
}

#[derive(Debug, Serialize)]
struct DeleteBody<'a> {
    delete: DeleteIds<'a>,
}

#[derive(Debug, Serialize)]
struct DeleteIds<'a> {
    ids: &'a [String],
}

/// Makes the server's rules the configured ones.
async fn sync_rules(
    config: &XConfig,
    client: &reqwest::Client,
    ctx: &SourceContext,
) -> Result<(), Trouble> {
    let url = format!("{}/2/tweets/search/stream/rules", config.base_url);
    let mut current: Vec<Rule> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_RULE_PAGES {
        let mut request = client.get(&url);
        if let Some(token) = &token {
            request = request.query(&[("pagination_token", token)]);
        }
        let response = send(request, "reading the stream rules", config, ctx).await?;
        let page: RulesPage = json(response, "reading the stream rules").await?;
        current.extend(page.data);
        token = page.meta.and_then(|m| m.next_token);
        if token.is_none() {
            break;
        }
    }
    let changes = diff_rules(&current, &config.rules, config.tag.as_deref());
    if !changes.delete.is_empty() {
        let body = DeleteBody {
            delete: DeleteIds {
                ids: &changes.delete,
            },
        };
        let response = send(
            client.post(&url).json(&body),
            "deleting stream rules",
            config,
            ctx,
        )
        .await?;
        let changed: Changed = json(response, "deleting stream rules").await?;
        if !changed.errors.is_empty() {
            return Err(Trouble::Fatal(anyhow::anyhow!(
                "X did not delete stream rules {:?}: {}",
                changes.delete,
                serde_json::to_string(&changed.errors).unwrap_or_default()
            )));
        }
    }
    if !changes.add.is_empty() {
        let body = AddBody { add: &changes.add };
        let response = send(
            client.post(&url).json(&body),
            "adding stream rules",
            config,
            ctx,
        )
        .await?;
        let changed: Changed = json(response, "adding stream rules").await?;
        if !changed.errors.is_empty() {
            return Err(Trouble::Fatal(anyhow::anyhow!(
                "X refused stream rules (source.x.rules): {}",
                serde_json::to_string(&changed.errors).unwrap_or_default()
            )));
        }
    }
    tracing::info!(
        rules = config.rules.len(),
        deleted = changes.delete.len(),
        added = changes.add.len(),
        "X stream rules in sync"
    );
    Ok(())
}

/// One connection to the stream. `Ok` when an established connection (one that delivered at
/// least a keep-alive) ended.
async fn stream(
    config: &XConfig,
    client: &reqwest::Client,
    ctx: &SourceContext,
    malformed: &mut u64,
    attempt: u64,
) -> Result<(), Trouble> {
    let url = format!("{}/2/tweets/search/stream?{STREAM_QUERY}", config.base_url);
    tracing::info!(url, attempt, "connecting to the X filtered stream");
    let mut response = send(client.get(&url), "the filtered stream", config, ctx).await?;
    tracing::info!(url, "connected to the X filtered stream");
    let mut lines = LineSplitter::new(MAX_LINE_BYTES);
    let mut batch: Vec<Line> = Vec::new();
    let mut delivered = false;
    loop {
        let chunk = tokio::select! {
            () = ctx.shutdown.cancelled() => return Err(Trouble::Stop),
            chunk = tokio::time::timeout(IDLE_TIMEOUT, response.chunk()) => chunk,
        };
        let ended = match chunk {
            Err(_) => Some("no data or keep-alive"),
            Ok(Ok(None)) => Some("the stream ended"),
            Ok(Err(_)) => Some("the stream failed"),
            Ok(Ok(Some(chunk))) => {
                lines.feed(&chunk, &mut batch);
                None
            }
        };
        if let Some(why) = ended {
            tracing::warn!(why, "X filtered stream connection lost");
            return if delivered {
                Ok(())
            } else {
                Err(Trouble::Retry(Failure::Network))
            };
        }
        for line in batch.drain(..) {
            delivered = true;
            let mapped = match line {
                Line::TooLong => Err("a line over the size limit".to_owned()),
                Line::Complete(bytes) => map_line(&bytes),
            };
            match mapped {
                Ok(Mapped::KeepAlive) => {}
                Ok(Mapped::Post(post)) => {
                    if !ctx.emit(SourceEvent::Post(post)).await {
                        return Err(Trouble::Stop);
                    }
                }
                Ok(Mapped::Notice(errors)) => {
                    tracing::warn!(errors, "X sent an error message on the stream");
                }
                Err(reason) => {
                    *malformed += 1;
                    inc(&ctx.metrics.malformed);
                    tracing::debug!(reason, "skipping a malformed X stream line");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_settings(&XBackoffSettings {
            network_step_ms: 250,
            network_max_ms: 16_000,
            http_min_ms: 5_000,
            http_max_ms: 320_000,
            rate_limit_min_ms: 60_000,
            rate_limit_max_ms: 900_000,
        })
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn the_documented_back_off() {
        let mut b = Backoff::new(policy());
        let network: Vec<f64> = (0..66)
            .map(|_| secs(b.delay(Failure::Network, 0)))
            .collect();
        assert_eq!(
            &network[..4],
            [0.25, 0.5, 0.75, 1.0],
            "linear, 250 ms steps"
        );
        assert_eq!(network[63], 16.0);
        assert_eq!(network[65], 16.0, "at most 16 s");

        let http: Vec<f64> = (0..9).map(|_| secs(b.delay(Failure::Http, 0))).collect();
        assert_eq!(
            http,
            [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0, 320.0]
        );

        let none = Failure::RateLimited { reset_at: None };
        let rate: Vec<f64> = (0..6).map(|_| secs(b.delay(none, 0))).collect();
        assert_eq!(rate, [60.0, 120.0, 240.0, 480.0, 900.0, 900.0]);

        b.reset();
        assert_eq!(secs(b.delay(Failure::Network, 0)), 0.25, "reset");
        assert_eq!(secs(b.delay(Failure::Http, 0)), 5.0);
        for _ in 0..100 {
            b.delay(Failure::Http, 0);
        }
        assert_eq!(secs(b.delay(Failure::Http, 0)), 320.0, "no overflow");
    }

    #[test]
    fn a_429_waits_for_the_reset_time_when_it_is_ahead() {
        let mut b = Backoff::new(policy());
        let now = 1_700_000_000_500;
        let in_42s = Failure::RateLimited {
            reset_at: Some(1_700_000_042),
        };
        assert_eq!(b.delay(in_42s, now), Duration::from_millis(41_500));
        let past = Failure::RateLimited {
            reset_at: Some(1_600_000_000),
        };
        assert_eq!(
            b.delay(past, now),
            Duration::from_secs(120),
            "a reset in the past: the exponential policy (second 429)"
        );
        let far = Failure::RateLimited {
            reset_at: Some(u64::MAX),
        };
        assert_eq!(b.delay(far, now), Duration::from_secs(900), "capped");
    }

    fn rule(id: &str, value: &str, tag: Option<&str>) -> Rule {
        Rule {
            id: id.into(),
            value: value.into(),
            tag: tag.map(str::to_owned),
        }
    }

    fn wanted(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn rules_are_diffed_by_value_and_tag() {
        let current = [
            rule("1", "cat has:images", Some("cats with images")),
            rule("2", "#rust", Some("t")),
            rule("3", "#kafka", None),
            rule("4", "#rust", Some("t")),
        ];
        let changes = diff_rules(&current, &wanted(&["#rust", "#kafka", "#new"]), Some("t"));
        assert_eq!(changes.delete, ["1", "3", "4"]);
        assert_eq!(
            changes.add,
            [
                NewRule {
                    value: "#kafka".into(),
                    tag: Some("t".into())
                },
                NewRule {
                    value: "#new".into(),
                    tag: Some("t".into())
                },
            ]
        );
        let in_sync = [rule("2", "#rust", Some("t")), rule("5", "#new", Some("t"))];
        assert_eq!(
            diff_rules(&in_sync, &wanted(&["#new", "#rust"]), Some("t")),
            RuleChanges::default()
        );
        assert_eq!(
            diff_rules(&[rule("6", "x", Some(""))], &wanted(&["x"]), None),
            RuleChanges::default(),
            "an empty tag is no tag"
        );
        assert_eq!(
            serde_json::to_string(&NewRule {
                value: "x".into(),
                tag: None
            })
            .expect("json"),
            r#"{"value":"x"}"#
        );
    }

    #[test]
    fn a_documented_post_maps_to_the_contract() {
        let line = r#"{"data":{"author_id":"2244994945","created_at":"2022-09-14T19:00:55.000Z","edit_history_tweet_ids":["1570124790212898816"],"entities":{"hashtags":[{"start":27,"end":36,"tag":"XDevelopers"},{"start":37,"end":42,"tag":"API"},{"start":43,"end":48,"tag":"API"}]},"id":"1570124790212898816","lang":"en","text":"Our new docs are live! 👀 #XDevelopers #API #API"},"matching_rules":[{"id":"1570124786375143424","tag":"hashtag-trends"}]}"#;
        let Ok(Mapped::Post(post)) = map_line(line.as_bytes()) else {
            panic!("a post");
        };
        assert_eq!(post.event_time, 1_663_182_055_000);
        assert_eq!(
            post.post,
            RawPost {
                id: "x:1570124790212898816".into(),
                text: "Our new docs are live! 👀 #XDevelopers #API #API".into(),
                created_at: "2022-09-14T19:00:55.000Z".into(),
                author_id: Some("2244994945".into()),
                lang: Some("en".into()),
                source: Some("x".into()),
                hashtags: Some(vec!["XDevelopers".into(), "API".into()]),
            }
        );
        let json = serde_json::to_vec(&post.post).expect("serializes");
        trends_core::post::parse_post(&json).expect("a valid post");
    }

    #[test]
    fn keep_alives_notices_and_malformed_lines() {
        assert_eq!(map_line(b""), Ok(Mapped::KeepAlive));
        assert_eq!(map_line(b" \t"), Ok(Mapped::KeepAlive));
        let notice = br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#;
        assert!(
            matches!(map_line(notice), Ok(Mapped::Notice(n)) if n.contains("operational-disconnect"))
        );
        for line in [
            &b"{"[..],
            b"[]",
            b"{}",
            br#"{"errors":[]}"#,
            br#"{"data":{"id":"1","text":"x"}}"#,
            br#"{"data":{"id":"","text":"x","created_at":"2022-09-14T19:00:55.000Z"}}"#,
            br#"{"data":{"id":"1","text":"x","created_at":"now"}}"#,
            b"\xff\xfe",
        ] {
            assert!(map_line(line).is_err(), "{}", String::from_utf8_lossy(line));
        }
    }
}
