//! Settings of the tweet producer.
//!
//! Loaded by [`trends_common::config`]: built-in defaults, then the TOML file named by
//! `TRENDS_CONFIG_FILE`, then `TRENDS__SECTION__KEY` environment variables (for nested keys
//! every level is separated by `__`, e.g. `TRENDS__SOURCE__SYNTHETIC__RATE=500`). Unknown keys
//! and bad values stop the service at start with a message naming the key, because a typo that
//! silently falls back to a default produces the wrong traffic without anyone noticing.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.kind` | `synthetic` | where posts come from: `synthetic` (generated), `file` (a JSON-lines file), `bluesky` (Jetstream, live), `mastodon` (a server's streaming API, live), `x` (X API v2 filtered stream, live) |
//! | `source.buffer` | `1024` | posts a source may have read ahead of the publisher (a bounded channel: a slow broker slows the source down, memory stays bounded) |
//! | `source.keywords` | `""` | comma-separated; when set, only posts whose text contains one of them (any of, case-insensitive) are published |
//! | `source.languages` | `""` | comma-separated language codes; when set, only posts in one of them (`en` also takes `en-US`) are published; posts without a language are dropped |
//! | `source.dedup_capacity` | `100000` | how many recent post ids are remembered to drop re-delivered posts (a bounded horizon; 0 disables) |
//! | `source.max_post_bytes` | `524288` | the largest post record (key + value) published, 1024 to 991,808 (`MESSAGE_MAX_BYTES` − 8 KiB); a larger post, Jetstream frame or file line is skipped and counted |
//! | `source.reconnect.min_ms` | `500` | first reconnect delay of `bluesky` and `mastodon`; doubles per failed attempt, with jitter (`x` follows X's documented policy, `source.x.backoff`) |
//! | `source.reconnect.max_ms` | `30000` | longest reconnect delay |
//! | `source.bluesky.host` | `wss://jetstream2.us-east.bsky.network` | the Jetstream instance (`wss://` or `ws://`, no path) |
//! | `source.bluesky.rewind_secs` | `3` | on a reconnect within a run, resume this far before the last event seen (repeats are dropped by the dedup) |
//! | `source.mastodon.base_url` | `https://mastodon.social` | the Mastodon server the token belongs to (`https://` or `http://`, no path); its host is part of every post id |
//! | `source.mastodon.streaming_url` | `""` | where the streaming API is served; empty = discovered from the server's `GET /api/v2/instance` (`configuration.urls.streaming`), else `base_url` |
//! | `source.mastodon.stream` | `public` | `public` (the federated timeline), `public:local` (posts of this server) or `hashtag` (with `source.mastodon.tag`) |
//! | `source.mastodon.tag` | `""` | the hashtag (without `#`) of `stream = "hashtag"` |
//! | `source.mastodon.token.env` / `.file` | `""` | where the access token (scope `read:statuses`) is: an environment variable's name, or a file; exactly one, required for `kind = "mastodon"` |
//! | `source.x.base_url` | `https://api.x.com` | the X API |
//! | `source.x.rules` | `""` | comma-separated filtered-stream rule values; at start the server's rules are made exactly these; required for `kind = "x"` |
//! | `source.x.tag` | `hashtag-trends` | the tag given to every rule (X echoes it in `matching_rules`); empty = no tag |
//! | `source.x.token.env` / `.file` | `""` | where the app's bearer token is (as for Mastodon); required for `kind = "x"` |
//! | `source.x.backoff.network_step_ms` / `network_max_ms` | `250` / `16000` | after a network error, wait 250 ms more per attempt, at most 16 s (X's documented policy) |
//! | `source.x.backoff.http_min_ms` / `http_max_ms` | `5000` / `320000` | after an HTTP error, wait 5 s, doubling per attempt, at most 320 s |
//! | `source.x.backoff.rate_limit_min_ms` / `rate_limit_max_ms` | `60000` / `900000` | after a 429, wait until `x-rate-limit-reset`, or else 1 min doubling per attempt; at most 15 min either way |
//! | `producer.metrics_addr` | `0.0.0.0:9101` | where `GET /metrics` (Prometheus text) is served |
//! | `producer.transactional_id` | `""` | the producer's `transactional.id`; empty = `tweet-producer-<source key>` (see [`crate::offsets::source_key`]), stable per source and topic. A restart with the same id fences its predecessor; two producers with the same id fence each other |
//! | `producer.commit_interval_ms` | `500` | how often a transaction commits the posts sent since the last one and the source position, 10–60,000 |
//! | `producer.commit_max_posts` | `10000` | a transaction commits as soon as it holds this many posts, 1–1,000,000 |
//! | `source.synthetic.rate` | `50.0` | posts per second, a finite number ≥ 0; `0` means as fast as the broker takes them |
//! | `source.synthetic.seed` | `42` | seed of the generator: the same seed gives the same posts (except `created_at`, which is the time of generation) |
//! | `source.synthetic.vocabulary` | `400` | number of distinct hashtags, 1–1,000,000; the vocabulary depends only on this number, not on the seed |
//! | `source.synthetic.limit` | `0` | stop (flush, exit 0) after this many posts; `0` runs until SIGTERM/Ctrl-C |
//! | `source.synthetic.burst_every_secs` | `60` | every this many seconds one tag from outside the top 10 bursts; `0` disables bursts |
//! | `source.synthetic.burst_secs` | `15` | how long a burst lasts; at most `burst_every_secs` |
//! | `source.file.path` | `""` | the JSON-lines file of posts (one `RawPost` per line); required when `source.kind = "file"` |
//! | `source.file.pace` | `fast` | `fast`: publish as fast as possible; `original`: wait between posts as long as their `created_at` differ, at most 5 s per gap |
//!
//! plus the shared sections: `kafka.bootstrap_servers`, `kafka.replication_factor`,
//! `topics.tweets` (the topic written to, default `tweets`), `topics.source_offsets` (the
//! compacted topic of resume positions, default `tweet-producer-offsets`), `topics.partitions`
//! (partitions when the producer creates `tweets`, default 12), `log.format`, `log.filter`.
//! `topics.counts`, `topics.dlq` and `windows.*` are accepted (the sections are shared) but not
//! used.
//!
//! `source.bluesky.cursor_file` was removed: positions are kept in `topics.source_offsets`,
//! written in the same transaction as the posts. Setting it stops the service at start with a
//! message saying so.

use std::collections::HashMap;

use secrecy::SecretString;
use serde::Deserialize;
use trends_common::config::{self, ConfigError};
use trends_common::settings::{
    KafkaSettings, LogSettings, SHARED_DEFAULTS, TopicSettings, WindowSettings,
};

use crate::secret::SecretRef;

/// Everything the producer is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub log: LogSettings,
    /// Part of the shared defaults; the producer does not use it.
    pub windows: WindowSettings,
    pub source: SourceSettings,
    pub producer: ProducerSettings,
}

/// `[producer]`: the service itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    pub metrics_addr: String,
    /// Empty: derived from the source ([`Settings::transactional_id`]).
    pub transactional_id: String,
    pub commit_interval_ms: u64,
    pub commit_max_posts: u64,
}

/// `[source]`: where posts come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub kind: SourceKind,
    pub buffer: usize,
    /// Comma-separated keywords (any of); empty = no keyword filter.
    pub keywords: String,
    /// Comma-separated language codes; empty = no language filter.
    pub languages: String,
    pub dedup_capacity: usize,
    /// The largest post record (key + value) published.
    pub max_post_bytes: usize,
    pub reconnect: ReconnectSettings,
    pub synthetic: SyntheticSettings,
    pub file: FileSettings,
    pub bluesky: BlueskySettings,
    pub mastodon: MastodonSettings,
    pub x: XSettings,
}

impl SourceSettings {
    /// The keywords, trimmed, without empty entries.
    pub fn keyword_list(&self) -> Vec<String> {
        split_list(&self.keywords)
    }

    /// The language codes, trimmed, without empty entries.
    pub fn language_list(&self) -> Vec<String> {
        split_list(&self.languages)
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SourceKind {
    Synthetic,
    File,
    Bluesky,
    Mastodon,
    X,
}

impl SourceKind {
    /// The name used in config, logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Synthetic => "synthetic",
            SourceKind::File => "file",
            SourceKind::Bluesky => "bluesky",
            SourceKind::Mastodon => "mastodon",
            SourceKind::X => "x",
        }
    }
}

impl TryFrom<String> for SourceKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "synthetic" => Ok(SourceKind::Synthetic),
            "file" => Ok(SourceKind::File),
            "bluesky" => Ok(SourceKind::Bluesky),
            "mastodon" => Ok(SourceKind::Mastodon),
            "x" => Ok(SourceKind::X),
            _ => Err(format!(
                "expected one of \"synthetic\", \"file\", \"bluesky\", \"mastodon\", \"x\", got {value:?}"
            )),
        }
    }
}

/// `[source.reconnect]`: back-off of live sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSettings {
    pub min_ms: u64,
    pub max_ms: u64,
}

/// `[source.bluesky]`: Jetstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueskySettings {
    pub host: String,
    pub rewind_secs: u64,
}

/// `[source.mastodon]`: a Mastodon server's streaming API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSettings {
    pub base_url: String,
    pub streaming_url: String,
    pub stream: MastodonStream,
    pub tag: String,
    /// Where the access token is; the token itself is in [`MastodonSettings::resolved_token`].
    pub token: SecretRef,
    /// The token, read at load when `source.kind = "mastodon"` (never from a config file).
    #[serde(skip)]
    pub resolved_token: Option<SecretString>,
}

/// Which Mastodon timeline is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MastodonStream {
    /// The federated timeline: every public post the server knows.
    Public,
    /// Public posts of the server's own users.
    PublicLocal,
    /// Public posts with one hashtag.
    Hashtag,
}

impl TryFrom<String> for MastodonStream {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "public" => Ok(MastodonStream::Public),
            "public:local" => Ok(MastodonStream::PublicLocal),
            "hashtag" => Ok(MastodonStream::Hashtag),
            _ => Err(format!(
                "expected \"public\", \"public:local\" or \"hashtag\", got {value:?}"
            )),
        }
    }
}

/// `[source.x]`: the X API v2 filtered stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XSettings {
    pub base_url: String,
    /// Comma-separated rule values.
    pub rules: String,
    pub tag: String,
    pub token: SecretRef,
    pub backoff: XBackoffSettings,
    /// The bearer token, read at load when `source.kind = "x"`.
    #[serde(skip)]
    pub resolved_token: Option<SecretString>,
}

impl XSettings {
    /// The rule values, trimmed, without empty entries, once each.
    pub fn rule_list(&self) -> Vec<String> {
        let mut rules: Vec<String> = Vec::new();
        for rule in split_list(&self.rules) {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        rules
    }
}

/// `[source.x.backoff]`: X's documented reconnect policy, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XBackoffSettings {
    pub network_step_ms: u64,
    pub network_max_ms: u64,
    pub http_min_ms: u64,
    pub http_max_ms: u64,
    pub rate_limit_min_ms: u64,
    pub rate_limit_max_ms: u64,
}

/// `[source.synthetic]`: the generator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSettings {
    pub rate: f64,
    pub seed: u64,
    pub vocabulary: usize,
    pub limit: u64,
    pub burst_every_secs: u64,
    pub burst_secs: u64,
}

/// `[source.file]`: a JSON-lines file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub path: String,
    pub pace: Pace,
}

/// How fast a file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Pace {
    /// As fast as possible.
    Fast,
    /// Sleep the gap between consecutive `created_at`, capped per gap.
    Original,
}

impl TryFrom<String> for Pace {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "fast" => Ok(Pace::Fast),
            "original" => Ok(Pace::Original),
            _ => Err(format!("expected \"fast\" or \"original\", got {value:?}")),
        }
    }
}

/// The largest vocabulary accepted (the generator keeps it in memory).
pub const MAX_VOCABULARY: usize = 1_000_000;

/// The smallest `source.max_post_bytes` accepted.
pub const MIN_POST_BYTES: usize = 1024;
/// The largest `source.max_post_bytes` accepted: the client's record limit less room for the
/// record's framing.
pub const MAX_POST_BYTES: usize = trends_common::kafka::MESSAGE_MAX_BYTES - 8 * 1024;

/// What a leftover `source.bluesky.cursor_file` is told.
const CURSOR_FILE_REMOVED: &str = "source.bluesky.cursor_file (TRENDS__SOURCE__BLUESKY__CURSOR_FILE) was removed: the Bluesky resume position is now kept in the Kafka topic topics.source_offsets (default tweet-producer-offsets), committed in the same transaction as the posts, so no file or volume is needed; remove the setting";

/// The producer's own defaults, appended to [`SHARED_DEFAULTS`].
pub const DEFAULTS: &str = r#"
[producer]
metrics_addr = "0.0.0.0:9101"
transactional_id = ""
commit_interval_ms = 500
commit_max_posts = 10000

[source]
kind = "synthetic"
buffer = 1024
keywords = ""
languages = ""
dedup_capacity = 100000
max_post_bytes = 524288

[source.reconnect]
min_ms = 500
max_ms = 30000

[source.bluesky]
host = "wss://jetstream2.us-east.bsky.network"
rewind_secs = 3

[source.mastodon]
base_url = "https://mastodon.social"
streaming_url = ""
stream = "public"
tag = ""

[source.mastodon.token]
env = ""
file = ""

[source.x]
base_url = "https://api.x.com"
rules = ""
tag = "hashtag-trends"

[source.x.token]
env = ""
file = ""

[source.x.backoff]
network_step_ms = 250
network_max_ms = 16000
http_min_ms = 5000
http_max_ms = 320000
rate_limit_min_ms = 60000
rate_limit_max_ms = 900000

[source.synthetic]
rate = 50.0
seed = 42
vocabulary = 400
limit = 0
burst_every_secs = 60
burst_secs = 15

[source.file]
path = ""
pace = "fast"
"#;

impl Settings {
    /// Loads and validates settings from the process environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads and validates settings from an explicit environment (tests, config checks). The
    /// token of the configured source (if it needs one) is read too, its variable looked up in
    /// `vars`, so a missing token stops the service at start like any bad setting.
    pub fn load_from(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let mut settings: Settings = config::load_from(&defaults(), vars).map_err(|e| {
            if e.0.contains("`cursor_file`") {
                ConfigError(CURSOR_FILE_REMOVED.to_owned())
            } else {
                e
            }
        })?;
        settings.validate()?;
        settings.resolve_token(vars)?;
        Ok(settings)
    }

    /// Reads the token of the configured source (`mastodon`, `x`). Errors name the key and the
    /// variable or file, never the token.
    fn resolve_token(&mut self, vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        let source = &mut self.source;
        let resolved = |secret: &SecretRef, key: &str| {
            secret
                .resolve(key, vars)
                .map(Some)
                .map_err(|e| ConfigError(e.to_string()))
        };
        match source.kind {
            SourceKind::Mastodon => {
                source.mastodon.resolved_token =
                    resolved(&source.mastodon.token, "source.mastodon.token")?;
            }
            SourceKind::X => {
                source.x.resolved_token = resolved(&source.x.token, "source.x.token")?;
            }
            SourceKind::Synthetic | SourceKind::File | SourceKind::Bluesky => {}
        }
        Ok(())
    }

    /// Checks what the types alone do not; every error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: &str| Err(ConfigError(message.to_owned()));
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return bad("kafka.bootstrap_servers must not be empty");
        }
        if self.kafka.replication_factor < 1 {
            return bad("kafka.replication_factor must be at least 1");
        }
        if self.topics.tweets.trim().is_empty() {
            return bad("topics.tweets must not be empty");
        }
        if self.topics.partitions < 1 {
            return bad("topics.partitions must be at least 1");
        }
        if self.topics.source_offsets.trim().is_empty() {
            return bad("topics.source_offsets must not be empty");
        }
        if self.topics.source_offsets.trim() == self.topics.tweets.trim() {
            return bad("topics.source_offsets must not be topics.tweets");
        }
        if !(MIN_POST_BYTES..=MAX_POST_BYTES).contains(&self.source.max_post_bytes) {
            return Err(ConfigError(format!(
                "source.max_post_bytes must be within {MIN_POST_BYTES}..={MAX_POST_BYTES}, got {}",
                self.source.max_post_bytes
            )));
        }
        let producer = &self.producer;
        if !(10..=60_000).contains(&producer.commit_interval_ms) {
            return Err(ConfigError(format!(
                "producer.commit_interval_ms must be within 10..=60000, got {}",
                producer.commit_interval_ms
            )));
        }
        if !(1..=1_000_000).contains(&producer.commit_max_posts) {
            return Err(ConfigError(format!(
                "producer.commit_max_posts must be within 1..=1000000, got {}",
                producer.commit_max_posts
            )));
        }
        let synthetic = &self.source.synthetic;
        if !synthetic.rate.is_finite() || synthetic.rate < 0.0 {
            return Err(ConfigError(format!(
                "source.synthetic.rate must be a number ≥ 0 (posts per second, 0 = as fast as possible), got {}",
                synthetic.rate
            )));
        }
        if !(1..=MAX_VOCABULARY).contains(&synthetic.vocabulary) {
            return Err(ConfigError(format!(
                "source.synthetic.vocabulary must be within 1..={MAX_VOCABULARY}, got {}",
                synthetic.vocabulary
            )));
        }
        if synthetic.burst_every_secs > 0 && synthetic.burst_secs > synthetic.burst_every_secs {
            return bad(
                "source.synthetic.burst_secs must not exceed source.synthetic.burst_every_secs",
            );
        }
        if self.source.kind == SourceKind::File && self.source.file.path.trim().is_empty() {
            return bad("source.file.path must name a JSON-lines file when source.kind = \"file\"");
        }
        if self.source.buffer < 1 {
            return bad("source.buffer must be at least 1");
        }
        let reconnect = &self.source.reconnect;
        if reconnect.min_ms < 1 || reconnect.max_ms < reconnect.min_ms {
            return bad(
                "source.reconnect.min_ms must be at least 1 and source.reconnect.max_ms at least min_ms",
            );
        }
        let host = self.source.bluesky.host.trim();
        if !(host.starts_with("wss://") || host.starts_with("ws://"))
            || host.len() <= "wss://".len()
        {
            return Err(ConfigError(format!(
                "source.bluesky.host must be a ws:// or wss:// URL without a path, got {host:?}"
            )));
        }
        if self.source.kind == SourceKind::Mastodon {
            self.validate_mastodon()?;
        }
        if self.source.kind == SourceKind::X {
            self.validate_x()?;
        }
        self.metrics_addr()?;
        Ok(())
    }

    fn validate_mastodon(&self) -> Result<(), ConfigError> {
        let mastodon = &self.source.mastodon;
        check_http_url("source.mastodon.base_url", &mastodon.base_url, false)?;
        if !mastodon.streaming_url.trim().is_empty() {
            check_http_url(
                "source.mastodon.streaming_url",
                &crate::mastodon::http_base(&mastodon.streaming_url),
                true,
            )?;
        }
        let tag = mastodon.tag.trim().trim_start_matches('#');
        if mastodon.stream == MastodonStream::Hashtag && tag.is_empty() {
            return Err(ConfigError(
                "source.mastodon.tag must name a hashtag when source.mastodon.stream = \"hashtag\""
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn validate_x(&self) -> Result<(), ConfigError> {
        let x = &self.source.x;
        check_http_url("source.x.base_url", &x.base_url, false)?;
        if x.rule_list().is_empty() {
            return Err(ConfigError(
                "source.x.rules must list at least one filtered-stream rule (comma-separated) when source.kind = \"x\""
                    .to_owned(),
            ));
        }
        let b = &x.backoff;
        if b.network_step_ms < 1 || b.network_max_ms < b.network_step_ms {
            return Err(ConfigError(
                "source.x.backoff.network_step_ms must be at least 1 and network_max_ms at least network_step_ms"
                    .to_owned(),
            ));
        }
        if b.http_min_ms < 1 || b.http_max_ms < b.http_min_ms {
            return Err(ConfigError(
                "source.x.backoff.http_min_ms must be at least 1 and http_max_ms at least http_min_ms"
                    .to_owned(),
            ));
        }
        if b.rate_limit_min_ms < 1 || b.rate_limit_max_ms < b.rate_limit_min_ms {
            return Err(ConfigError(
                "source.x.backoff.rate_limit_min_ms must be at least 1 and rate_limit_max_ms at least rate_limit_min_ms"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The producer's `transactional.id`: `producer.transactional_id`, or
    /// `tweet-producer-<source key>` when that is empty.
    pub fn transactional_id(&self) -> String {
        match self.producer.transactional_id.trim() {
            "" => format!("tweet-producer-{}", crate::offsets::source_key(self)),
            id => id.to_owned(),
        }
    }

    /// `producer.metrics_addr` as a socket address.
    pub fn metrics_addr(&self) -> Result<std::net::SocketAddr, ConfigError> {
        self.producer.metrics_addr.parse().map_err(|e| {
            ConfigError(format!(
                "producer.metrics_addr {:?} is not a socket address: {e}",
                self.producer.metrics_addr
            ))
        })
    }
}

/// Checks that `value` is an `http://` or `https://` URL with a host (and, unless
/// `path_allowed`, no path beyond `/`).
fn check_http_url(key: &str, value: &str, path_allowed: bool) -> Result<(), ConfigError> {
    let value = value.trim();
    let bad = || {
        ConfigError(format!(
            "{key} must be an http:// or https:// URL{}, got {value:?}",
            if path_allowed { "" } else { " without a path" }
        ))
    };
    let url = reqwest::Url::parse(value).map_err(|_| bad())?;
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

fn defaults() -> String {
    format!("{SHARED_DEFAULTS}{DEFAULTS}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(&vars)
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        load(pairs).expect_err("must be rejected").to_string()
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let s = load(&[]).expect("defaults");
        assert_eq!(s.source.kind, SourceKind::Synthetic);
        assert_eq!(s.source.synthetic.rate, 50.0);
        assert_eq!(s.source.synthetic.seed, 42);
        assert_eq!(s.source.synthetic.vocabulary, 400);
        assert_eq!(s.source.synthetic.limit, 0);
        assert_eq!(s.source.synthetic.burst_every_secs, 60);
        assert_eq!(s.source.synthetic.burst_secs, 15);
        assert_eq!(s.source.file.path, "");
        assert_eq!(s.source.file.pace, Pace::Fast);
        assert_eq!(s.topics.tweets, "tweets");
        assert_eq!(s.topics.partitions, 12);
        assert_eq!(s.source.buffer, 1024);
        assert!(s.source.keyword_list().is_empty());
        assert!(s.source.language_list().is_empty());
        assert_eq!(s.source.dedup_capacity, 100_000);
        assert_eq!(s.source.reconnect.min_ms, 500);
        assert_eq!(s.source.reconnect.max_ms, 30_000);
        assert_eq!(
            s.source.bluesky.host,
            "wss://jetstream2.us-east.bsky.network"
        );
        assert_eq!(s.source.max_post_bytes, 512 * 1024);
        assert_eq!(s.topics.source_offsets, "tweet-producer-offsets");
        assert_eq!(s.producer.commit_interval_ms, 500);
        assert_eq!(s.producer.commit_max_posts, 10_000);
        assert_eq!(s.transactional_id(), "tweet-producer-synthetic@tweets");
        assert_eq!(s.source.bluesky.rewind_secs, 3);
        assert_eq!(s.source.mastodon.base_url, "https://mastodon.social");
        assert_eq!(s.source.mastodon.streaming_url, "");
        assert_eq!(s.source.mastodon.stream, MastodonStream::Public);
        assert_eq!(s.source.mastodon.token, SecretRef::default());
        assert!(s.source.mastodon.resolved_token.is_none());
        assert_eq!(s.source.x.base_url, "https://api.x.com");
        assert!(s.source.x.rule_list().is_empty());
        assert_eq!(s.source.x.tag, "hashtag-trends");
        assert_eq!(s.source.x.backoff.network_step_ms, 250);
        assert_eq!(s.source.x.backoff.network_max_ms, 16_000);
        assert_eq!(s.source.x.backoff.http_min_ms, 5_000);
        assert_eq!(s.source.x.backoff.http_max_ms, 320_000);
        assert_eq!(s.source.x.backoff.rate_limit_min_ms, 60_000);
        assert_eq!(s.source.x.backoff.rate_limit_max_ms, 900_000);
        assert_eq!(s.producer.metrics_addr, "0.0.0.0:9101");
    }

    const TOKEN: &str = "tok-3f9a-never-printed";

    #[test]
    fn mastodon_reads_its_token_from_the_named_variable_and_never_prints_it() {
        let s = load(&[
            ("TRENDS__SOURCE__KIND", "mastodon"),
            (
                "TRENDS__SOURCE__MASTODON__BASE_URL",
                "https://fosstodon.org/",
            ),
            ("TRENDS__SOURCE__MASTODON__STREAM", "hashtag"),
            ("TRENDS__SOURCE__MASTODON__TAG", "#rust"),
            ("TRENDS__SOURCE__MASTODON__TOKEN__ENV", "MASTODON_TOKEN"),
            ("MASTODON_TOKEN", TOKEN),
        ])
        .expect("valid");
        assert_eq!(s.source.mastodon.stream, MastodonStream::Hashtag);
        let token = s.source.mastodon.resolved_token.as_ref().expect("read");
        assert_eq!(secrecy::ExposeSecret::expose_secret(token), TOKEN);
        assert!(!format!("{s:?}").contains(TOKEN), "Debug never shows it");
        load(&[
            ("TRENDS__SOURCE__KIND", "mastodon"),
            ("TRENDS__SOURCE__MASTODON__STREAM", "public:local"),
            (
                "TRENDS__SOURCE__MASTODON__STREAMING_URL",
                "wss://streaming.mastodon.social",
            ),
            ("TRENDS__SOURCE__MASTODON__TOKEN__ENV", "MASTODON_TOKEN"),
            ("MASTODON_TOKEN", TOKEN),
        ])
        .expect("a wss:// streaming URL is fine");
    }

    #[test]
    fn x_reads_rules_and_its_token_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x-token");
        std::fs::write(&path, format!("{TOKEN}\n")).expect("write");
        let s = load(&[
            ("TRENDS__SOURCE__KIND", "x"),
            (
                "TRENDS__SOURCE__X__RULES",
                "#rust lang:en, #kafka ,, #rust lang:en",
            ),
            (
                "TRENDS__SOURCE__X__TOKEN__FILE",
                &path.display().to_string(),
            ),
            ("TRENDS__SOURCE__X__BACKOFF__HTTP_MIN_MS", "1"),
        ])
        .expect("valid");
        assert_eq!(s.source.x.rule_list(), ["#rust lang:en", "#kafka"]);
        assert_eq!(s.source.x.backoff.http_min_ms, 1);
        let token = s.source.x.resolved_token.as_ref().expect("read");
        assert_eq!(secrecy::ExposeSecret::expose_secret(token), TOKEN);
    }

    #[test]
    fn live_source_settings_are_checked_and_errors_never_show_the_token() {
        let token_var = ("MY_TOKEN", TOKEN);
        let mastodon = ("TRENDS__SOURCE__KIND", "mastodon");
        let mastodon_token = ("TRENDS__SOURCE__MASTODON__TOKEN__ENV", "MY_TOKEN");
        let x = ("TRENDS__SOURCE__KIND", "x");
        let x_token = ("TRENDS__SOURCE__X__TOKEN__ENV", "MY_TOKEN");
        let x_rules = ("TRENDS__SOURCE__X__RULES", "#rust");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[mastodon], "source.mastodon.token.env"),
            (
                &[mastodon, ("TRENDS__SOURCE__MASTODON__TOKEN__ENV", "UNSET")],
                "UNSET",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    ("TRENDS__SOURCE__MASTODON__TOKEN__FILE", "/run/secrets/t"),
                ],
                "exactly one",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    ("TRENDS__SOURCE__MASTODON__BASE_URL", "mastodon.social"),
                ],
                "source.mastodon.base_url",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    (
                        "TRENDS__SOURCE__MASTODON__BASE_URL",
                        "https://mastodon.social/api",
                    ),
                ],
                "source.mastodon.base_url",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    ("TRENDS__SOURCE__MASTODON__STREAM", "hashtag"),
                ],
                "source.mastodon.tag",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    ("TRENDS__SOURCE__MASTODON__STREAM", "user"),
                ],
                "source.mastodon.stream",
            ),
            (
                &[
                    mastodon,
                    mastodon_token,
                    token_var,
                    ("TRENDS__SOURCE__MASTODON__STREAMING_URL", "ftp://x"),
                ],
                "source.mastodon.streaming_url",
            ),
            (&[x, x_token, token_var], "source.x.rules"),
            (
                &[x, x_token, token_var, ("TRENDS__SOURCE__X__RULES", " , ")],
                "source.x.rules",
            ),
            (&[x, x_rules], "source.x.token.env"),
            (&[x, x_rules, x_token], "MY_TOKEN"),
            (
                &[
                    x,
                    x_rules,
                    x_token,
                    token_var,
                    ("TRENDS__SOURCE__X__BASE_URL", "api.x.com"),
                ],
                "source.x.base_url",
            ),
            (
                &[
                    x,
                    x_rules,
                    x_token,
                    token_var,
                    ("TRENDS__SOURCE__X__BACKOFF__HTTP_MAX_MS", "10"),
                ],
                "source.x.backoff.http_min_ms",
            ),
            (
                &[
                    x,
                    x_rules,
                    x_token,
                    token_var,
                    ("TRENDS__SOURCE__X__BACKOFF__NETWORK_STEP_MS", "0"),
                ],
                "source.x.backoff.network_step_ms",
            ),
            (
                &[
                    x,
                    x_rules,
                    x_token,
                    token_var,
                    ("TRENDS__SOURCE__X__BACKOFF__RATE_LIMIT_MIN_MS", "0"),
                ],
                "source.x.backoff.rate_limit_min_ms",
            ),
        ];
        for (vars, key) in cases {
            let message = error_of(vars);
            assert!(
                message.contains(key),
                "{vars:?}: {message:?} does not name {key}"
            );
            assert!(!message.contains(TOKEN), "{message}");
        }
        // A token for a source that is not used is not read.
        load(&[("TRENDS__SOURCE__X__TOKEN__ENV", "UNSET")]).expect("synthetic needs no token");
    }

    #[test]
    fn bluesky_and_list_settings_from_the_environment() {
        let s = load(&[
            ("TRENDS__SOURCE__KIND", "bluesky"),
            ("TRENDS__SOURCE__KEYWORDS", " Rust, kafka ,,"),
            ("TRENDS__SOURCE__LANGUAGES", "en,ja"),
            ("TRENDS__SOURCE__BLUESKY__HOST", "ws://127.0.0.1:1234/"),
            ("TRENDS__TOPICS__SOURCE_OFFSETS", "positions"),
        ])
        .expect("valid");
        assert_eq!(s.source.kind, SourceKind::Bluesky);
        assert_eq!(s.source.keyword_list(), ["Rust", "kafka"]);
        assert_eq!(s.source.language_list(), ["en", "ja"]);
        assert_eq!(s.source.bluesky.host, "ws://127.0.0.1:1234/");
        assert_eq!(s.topics.source_offsets, "positions");
        assert_eq!(
            crate::offsets::source_key(&s),
            "bluesky:ws://127.0.0.1:1234@tweets"
        );
        assert_eq!(
            s.transactional_id(),
            "tweet-producer-bluesky:ws://127.0.0.1:1234@tweets"
        );
        let s = load(&[
            ("TRENDS__SOURCE__KIND", "bluesky"),
            ("TRENDS__PRODUCER__TRANSACTIONAL_ID", "producer-7"),
        ])
        .expect("valid");
        assert_eq!(s.transactional_id(), "producer-7");
    }

    #[test]
    fn a_leftover_cursor_file_says_what_replaced_it() {
        let message = error_of(&[
            ("TRENDS__SOURCE__KIND", "bluesky"),
            (
                "TRENDS__SOURCE__BLUESKY__CURSOR_FILE",
                "/var/lib/tweet-producer/bluesky.cursor",
            ),
        ]);
        assert!(message.contains("source.bluesky.cursor_file"), "{message}");
        assert!(message.contains("topics.source_offsets"), "{message}");
        assert!(message.contains("was removed"), "{message}");
        // In a config file too.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("producer.toml");
        std::fs::write(&file, "[source.bluesky]\ncursor_file = \"/tmp/c\"\n").expect("write");
        let message = error_of(&[("TRENDS_CONFIG_FILE", file.to_str().expect("utf-8"))]);
        assert!(message.contains("was removed"), "{message}");
    }

    #[test]
    fn environment_variables_reach_nested_keys() {
        let s = load(&[
            ("TRENDS__SOURCE__KIND", "file"),
            ("TRENDS__SOURCE__FILE__PATH", "/data/posts.jsonl"),
            ("TRENDS__SOURCE__FILE__PACE", "original"),
            ("TRENDS__SOURCE__SYNTHETIC__RATE", "0"),
            ("TRENDS__SOURCE__SYNTHETIC__LIMIT", "2000"),
            ("TRENDS__TOPICS__TWEETS", "posts"),
        ])
        .expect("valid");
        assert_eq!(s.source.kind, SourceKind::File);
        assert_eq!(s.source.file.path, "/data/posts.jsonl");
        assert_eq!(s.source.file.pace, Pace::Original);
        assert_eq!(s.source.synthetic.rate, 0.0);
        assert_eq!(s.source.synthetic.limit, 2000);
        assert_eq!(s.topics.tweets, "posts");
    }

    #[test]
    fn each_bad_value_names_its_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("TRENDS__SOURCE__SYNTHETIC__RATE", "-1")],
                "source.synthetic.rate",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__RATE", "fast")],
                "source.synthetic.rate",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__VOCABULARY", "0")],
                "source.synthetic.vocabulary",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__VOCABULARY", "2000000")],
                "source.synthetic.vocabulary",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__SEED", "-3")],
                "source.synthetic.seed",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__LIMIT", "lots")],
                "source.synthetic.limit",
            ),
            (
                &[("TRENDS__SOURCE__SYNTHETIC__BURST_SECS", "61")],
                "source.synthetic.burst_secs",
            ),
            (&[("TRENDS__SOURCE__KIND", "file")], "source.file.path"),
            (
                &[
                    ("TRENDS__SOURCE__KIND", "file"),
                    ("TRENDS__SOURCE__FILE__PATH", "  "),
                ],
                "source.file.path",
            ),
            (&[("TRENDS__SOURCE__KIND", "kafka")], "source.kind"),
            (
                &[("TRENDS__SOURCE__FILE__PACE", "slow")],
                "source.file.pace",
            ),
            (&[("TRENDS__TOPICS__PARTITIONS", "0")], "topics.partitions"),
            (&[("TRENDS__TOPICS__TWEETS", "")], "topics.tweets"),
            (
                &[("TRENDS__TOPICS__SOURCE_OFFSETS", " ")],
                "topics.source_offsets",
            ),
            (
                &[("TRENDS__TOPICS__SOURCE_OFFSETS", "tweets")],
                "topics.source_offsets",
            ),
            (
                &[("TRENDS__SOURCE__MAX_POST_BYTES", "1000000")],
                "source.max_post_bytes",
            ),
            (
                &[("TRENDS__SOURCE__MAX_POST_BYTES", "100")],
                "source.max_post_bytes",
            ),
            (
                &[("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "0")],
                "producer.commit_interval_ms",
            ),
            (
                &[("TRENDS__PRODUCER__COMMIT_MAX_POSTS", "0")],
                "producer.commit_max_posts",
            ),
            (
                &[("TRENDS__KAFKA__BOOTSTRAP_SERVERS", "")],
                "kafka.bootstrap_servers",
            ),
        ];
        for (vars, key) in cases {
            let message = error_of(vars);
            assert!(
                message.contains(key),
                "{vars:?}: {message:?} does not name {key}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let message = error_of(&[("TRENDS__SOURCE__SYNTHETIC__RATEE", "5")]);
        assert!(message.contains("ratee"), "{message}");
        let message = error_of(&[("TRENDS__SOURCE__FILES__PATH", "x")]);
        assert!(message.contains("files"), "{message}");
    }

    #[test]
    fn a_file_source_with_a_path_and_bursts_off_are_fine() {
        load(&[
            ("TRENDS__SOURCE__KIND", "file"),
            ("TRENDS__SOURCE__FILE__PATH", "posts.jsonl"),
        ])
        .expect("valid");
        load(&[
            ("TRENDS__SOURCE__SYNTHETIC__BURST_EVERY_SECS", "0"),
            ("TRENDS__SOURCE__SYNTHETIC__BURST_SECS", "30"),
        ])
        .expect("bursts off: burst_secs is not checked");
    }
}
