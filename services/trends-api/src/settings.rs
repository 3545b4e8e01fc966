//! Settings of the API.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `http.addr` | `0.0.0.0:8080` | listen address |
//! | `http.request_timeout_ms` | `10000` | a request taking longer gets 408 |
//! | `http.cors_allowed_origins` | `[]` | origins allowed to read the API from a browser (CORS, GET only); `["*"]` = any; empty = CORS off |
//! | `http.rate_limit_per_sec` | `0` | requests per second and client IP; `0` = no rate limit |
//! | `http.rate_limit_burst` | `20` | requests a client IP may make at once before the rate applies |
//! | `http.header_read_timeout_ms` | `10000` | a request head must arrive whole within this, counted from the connection's start or the end of its previous response; else the connection is closed |
//! | `http.idle_timeout_ms` | `30000` | a connection on which no byte moves either way for this long is closed (at least 20000: above the 15 s stream keep-alive) |
//! | `http.max_connections` | `20000` | open connections per listener; beyond, a new connection is closed at once |
//! | `http.metrics_addr` | `""` | where `/metrics` is served; empty = on `http.addr` |
//! | `api.snapshot_interval_ms` | `250` | at most this often, new counts are turned into the served snapshot |
//! | `api.stream_max_events_per_sec` | `4` | at most this many events per second on one `/api/v1/stream` |
//! | `api.max_stream_clients` | `10000` | concurrent `/api/v1/stream` clients; more get 503 |
//! | `api.max_streams_per_ip` | `16` | concurrent streams of one client IP (IPv6: one /64); more get 429 |
//! | `trends.min_authors` | `5` | a tag trends only with at least this many distinct authors in the window |
//! | `trends.min_score` | `3.0` | … and a score at least this (standard deviations above its expected authors); a trend leaves the list when its decaying score falls below it |
//! | `trends.dispersion` | `0.1` | how much a tag's rate wanders by itself (`k` of the negative binomial): higher makes big tags need a bigger jump to trend |
//! | `trends.flood_ratio` | `5.0` | a tag with more than this many posts per author in the window is a flood and never trends |
//! | `trends.confirm_ms` | `10000` | a tag is shown once it stayed eligible this long (event time), or when the data stops; `0` = at once |
//! | `trends.max_episodes` | `50000` | trends in progress the API tracks at most (per tag, language and window) |
//! | `admin.token.env` / `admin.token.file` | unset | the admin API's bearer token: a variable's name or a file's path; unset = the admin API is off (404) |
//! | `moderation.topic` | `hashtag-blocklist` | the compacted topic holding the blocklist |
//! | `moderation.max_entries` / `max_patterns` | `10000` / `1000` | blocklist bounds |
//! | `moderation.max_import_bytes` | `4194304` | largest bulk import |
//! | `moderation.write_timeout_ms` | `5000` | an admin write waits this long for this replica to apply it, else 503 |
//! | `webhooks.urls` | `[]` | receivers of trend alerts (see `crate::webhooks`); empty = off |
//! | `webhooks.secret.env` / `.file` | unset | the HMAC-SHA256 signing key; required with URLs |
//! | `webhooks.*` | | `queue_capacity`, `dedup_capacity`, `timeout_ms`, `initial_backoff_ms`, `max_backoff_ms`, `max_attempts`: see `crate::webhooks::settings` |
//! | `api.max_ready_lag_records` | `100000` | once caught up, readiness (`/readyz`) goes back to 503 while the follower is more than this many records behind the end of the counts topic |
//!
//! Why these defaults: a real client sends its request head in one packet, so 10 s to receive
//! it is generous even on a slow mobile link, while a slowloris client (a header byte now and
//! then) holds a connection for at most that. Between requests the same clock runs, so an idle
//! kept-alive connection is closed after 10 s too. The idle timeout is for what the header
//! timeout does not see: a response nobody reads (a stalled stream) or a stuck request; it must
//! exceed the 15 s keep-alive comment interval of `/api/v1/stream`, so a healthy stream, which
//! moves bytes at least that often, is never idle. 20,000 connections leave room for all 10,000
//! streams plus as many plain connections, at roughly 16 KiB each (~320 MiB at the cap).
//! 16 streams per address lets a household or an office behind one NAT open the page in many
//! tabs, while one address can take at most 16 of the 10,000 stream slots.
//!
//! plus the shared `kafka`, `topics`, `log` and `windows` sections, which check themselves.
//!
//! The fields are typed (a `SocketAddr`, `Duration`s, [`CorsOrigins`]) and the keys keep their
//! names, units included (`http.idle_timeout_ms`), so every `TRENDS__…` variable stays. A value
//! of the wrong type is refused as it is read, a value out of range by [`Load::validate`];
//! either way the error names the key.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_with::{DurationMilliSeconds, serde_as};
use std::collections::HashMap;
use trends_common::config::{ConfigError, Load, Service};
use trends_common::settings::{KafkaSettings, LogSettings, TopicSettings, WindowSettings};

use secrecy::SecretString;
use trends_core::window::BucketLayout;

use crate::moderation::settings::{AdminSettings, ModerationSettings};
use crate::webhooks::WebhookSettings;

use crate::sse::KEEP_ALIVE;

/// The shortest `http.idle_timeout_ms`: the stream keep-alive interval plus 5 s of slack.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(KEEP_ALIVE.as_secs() + 5);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub log: LogSettings,
    pub windows: WindowSettings,
    pub http: HttpSettings,
    pub api: ApiSettings,
    pub trends: TrendSettings,
    /// `[admin]`: the admin API's token (off without one).
    #[serde(default)]
    pub admin: AdminSettings,
    /// `[moderation]`: the blocklist.
    pub moderation: ModerationSettings,
    /// `[webhooks]`: trend alerts (off without URLs).
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// The secrets the settings point at, read at load time (so a missing one stops the
    /// service at start, naming its key); never printed.
    #[serde(skip)]
    pub secrets: Secrets,
}

/// The admin token and the webhook signing key, read from where `admin.token` and
/// `webhooks.secret` point.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub admin_token: Option<SecretString>,
    pub webhook_key: Option<SecretString>,
}

/// `[trends]`: what makes a tag trend (README: "How trending is computed").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendSettings {
    pub min_authors: i64,
    pub min_score: f64,
    pub dispersion: f64,
    pub flood_ratio: f64,
    pub max_episodes: usize,
    pub confirm_ms: i64,
}

impl TrendSettings {
    pub fn params(&self) -> trends_core::trend::TrendParams {
        trends_core::trend::TrendParams {
            min_authors: self.min_authors,
            min_score: self.min_score,
            dispersion: self.dispersion,
            flood_ratio: self.flood_ratio,
            max_episodes: self.max_episodes,
            confirm_ms: self.confirm_ms,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&str, bool, &str); 6] = [
            (
                "trends.confirm_ms",
                (0..=300_000).contains(&self.confirm_ms),
                "0..=300000",
            ),
            (
                "trends.min_authors",
                (1..=1_000_000).contains(&self.min_authors),
                "1..=1000000",
            ),
            (
                "trends.min_score",
                (0.5..=1000.0).contains(&self.min_score),
                "0.5..=1000",
            ),
            (
                "trends.dispersion",
                (0.0..=10.0).contains(&self.dispersion),
                "0..=10",
            ),
            (
                "trends.flood_ratio",
                (1.0..=1_000_000.0).contains(&self.flood_ratio),
                "1..=1000000",
            ),
            (
                "trends.max_episodes",
                (1..=10_000_000).contains(&self.max_episodes),
                "1..=10000000",
            ),
        ];
        match checks.iter().find(|(_, ok, _)| !ok) {
            Some((key, _, range)) => Err(ConfigError(format!("{key} must be within {range}"))),
            None => Ok(()),
        }
    }
}

/// `[http]`. The keys keep their unit in their name (`…_ms`); the fields are typed, and every
/// value the types cannot refuse is checked by [`Load::validate`].
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(deserialize_with = "address")]
    pub addr: SocketAddr,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "request_timeout_ms")]
    pub request_timeout: Duration,
    /// Browser origins allowed to read the API (`https://example.org`), or `["*"]`. In an
    /// environment variable: a comma-separated list (`TRENDS__HTTP__CORS_ALLOWED_ORIGINS=a,b`).
    pub cors_allowed_origins: CorsOrigins,
    /// Per client IP; 0 turns rate limiting off.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "header_read_timeout_ms")]
    pub header_read_timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// A second listener serving only `/metrics`; `None` (the key empty) = `/metrics` on `addr`.
    #[serde(deserialize_with = "empty_or_address")]
    pub metrics_addr: Option<SocketAddr>,
}

/// `[api]`.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "snapshot_interval_ms")]
    pub snapshot_interval: Duration,
    pub stream_max_events_per_sec: u32,
    pub max_stream_clients: usize,
    pub max_streams_per_ip: usize,
    /// Readiness is lost while the follower lags more than this many records.
    pub max_ready_lag_records: u64,
}

/// Which browser origins may read the API (`http.cors_allowed_origins`, checked as it is
/// read: `*` alone, or `scheme://host[:port]` values).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OriginList")]
pub enum CorsOrigins {
    /// CORS off (the list empty): browsers allow same-origin reads only.
    None,
    /// `*`.
    Any,
    List(Vec<String>),
}

/// A TOML list, or a comma-separated string (what an environment variable can hold).
#[derive(Deserialize)]
#[serde(untagged)]
enum OriginList {
    List(Vec<String>),
    String(String),
}

impl TryFrom<OriginList> for CorsOrigins {
    type Error = String;

    fn try_from(list: OriginList) -> Result<Self, Self::Error> {
        let origins: Vec<String> = match list {
            OriginList::List(list) => list,
            OriginList::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        if origins.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if origins.iter().any(|o| o == "*") {
            if origins.len() > 1 {
                return Err("\"*\" must be the only entry".into());
            }
            return Ok(CorsOrigins::Any);
        }
        for origin in &origins {
            let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https")
                    && !rest.is_empty()
                    && !rest.contains(['/', '?', '#', ' '])
            }) && origin.is_ascii();
            if !valid {
                return Err(format!(
                    "{origin:?} is not an origin like https://example.org"
                ));
            }
        }
        Ok(CorsOrigins::List(origins))
    }
}

/// A socket address; the error quotes the value (the loader adds the key).
fn address<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    empty_or_address(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("an empty string is not a socket address"))
}

/// A socket address, or `None` for an empty string (the key's default: "not set").
fn empty_or_address<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a socket address: {e}")))
}

impl Load for Settings {
    const SERVICE: Service = Service::Api;

    const DEFAULTS: &'static str = r#"
[http]
addr = "0.0.0.0:8080"
request_timeout_ms = 10000
cors_allowed_origins = []
rate_limit_per_sec = 0
rate_limit_burst = 20
header_read_timeout_ms = 10000
idle_timeout_ms = 30000
max_connections = 20000
metrics_addr = ""

[api]
snapshot_interval_ms = 250
stream_max_events_per_sec = 4
max_stream_clients = 10000
max_streams_per_ip = 16
max_ready_lag_records = 100000

[trends]
min_authors = 5
min_score = 3.0
dispersion = 0.1
flood_ratio = 5.0
max_episodes = 50000
confirm_ms = 10000
"#;

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.topics.validate()?;
        self.windows.layout()?;
        self.trends.validate()?;
        self.admin.validate()?;
        self.moderation.validate()?;
        self.webhooks.validate()?;
        let (http, api) = (&self.http, &self.api);
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&api.snapshot_interval) {
            return Err(ConfigError(
                "api.snapshot_interval_ms must be within 10..=60000".into(),
            ));
        }
        if http.request_timeout.is_zero() {
            return Err(ConfigError(
                "http.request_timeout_ms must be positive".into(),
            ));
        }
        if !(1..=1000).contains(&api.stream_max_events_per_sec) {
            return Err(ConfigError(
                "api.stream_max_events_per_sec must be within 1..=1000".into(),
            ));
        }
        if !(1..=1_000_000).contains(&api.max_stream_clients) {
            return Err(ConfigError(
                "api.max_stream_clients must be within 1..=1000000".into(),
            ));
        }
        if http.rate_limit_per_sec > 0 && http.rate_limit_burst == 0 {
            return Err(ConfigError(
                "http.rate_limit_burst must be positive when http.rate_limit_per_sec is set".into(),
            ));
        }
        if !(1..=1_000_000).contains(&api.max_streams_per_ip) {
            return Err(ConfigError(
                "api.max_streams_per_ip must be within 1..=1000000".into(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300))
            .contains(&http.header_read_timeout)
        {
            return Err(ConfigError(
                "http.header_read_timeout_ms must be within 100..=300000".into(),
            ));
        }
        if !(MIN_IDLE_TIMEOUT..=Duration::from_secs(3600)).contains(&http.idle_timeout) {
            return Err(ConfigError(format!(
                "http.idle_timeout_ms must be within {}..=3600000 (above the {} s keep-alive of \
                 /api/v1/stream, so an open stream is never idle)",
                MIN_IDLE_TIMEOUT.as_millis(),
                KEEP_ALIVE.as_secs()
            )));
        }
        if http.idle_timeout <= http.request_timeout {
            return Err(ConfigError(
                "http.idle_timeout_ms must be greater than http.request_timeout_ms, so a request \
                 is answered (408 at worst) before its connection can be idle"
                    .into(),
            ));
        }
        if !(1..=1_000_000).contains(&http.max_connections) {
            return Err(ConfigError(
                "http.max_connections must be within 1..=1000000".into(),
            ));
        }
        if http.metrics_addr == Some(http.addr) && http.addr.port() != 0 {
            return Err(ConfigError(
                "http.metrics_addr must differ from http.addr (leave it empty to serve /metrics \
                 on http.addr)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn log(&self) -> &LogSettings {
        &self.log
    }

    fn kafka(&self) -> &KafkaSettings {
        &self.kafka
    }

    fn kafka_mut(&mut self) -> &mut KafkaSettings {
        &mut self.kafka
    }

    /// The layered settings, checked, with the secrets they point at read (variables looked up
    /// in `vars`).
    fn load_from(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let defaults = format!(
            "{}{}{}",
            trends_common::settings::SHARED_DEFAULTS,
            Self::DEFAULTS,
            crate::moderation::settings::DEFAULTS
        );
        let mut settings: Settings =
            trends_common::config::load_service(Self::SERVICE, &defaults, vars)?;
        settings.validate()?;
        settings.kafka.resolve_secrets(vars)?;
        settings.secrets = Secrets {
            admin_token: settings.admin.load_token(vars)?,
            webhook_key: settings.webhooks.load_secret(vars)?,
        };
        Ok(settings)
    }
}

impl Settings {
    pub fn layout(&self) -> BucketLayout {
        self.windows.layout().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from_pairs(pairs)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Each `(variable, value)` alone is refused, with an error that contains `named`.
    fn refused_naming(cases: &[(&str, &str, &str)]) {
        for &(key, value, named) in cases {
            let err = load(&[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }

    /// The shared catalogue of keys (what a shared environment may hold) and this service's
    /// types agree both ways.
    #[test]
    fn the_shared_catalogue_lists_exactly_the_keys_of_this_service() {
        let defaults = format!(
            "{}{}{}",
            trends_common::settings::SHARED_DEFAULTS,
            Settings::DEFAULTS,
            crate::moderation::settings::DEFAULTS
        );
        let mismatches = trends_common::config::catalogue_mismatches::<Settings>(&defaults);
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    #[test]
    fn defaults_and_documented_overrides() {
        let s = load(&[]).expect("defaults");
        assert_eq!(s.http.addr, "0.0.0.0:8080".parse().expect("addr"));
        let s = load(&[
            ("TRENDS__HTTP__ADDR", "127.0.0.1:9000"),
            ("TRENDS__TOPICS__COUNTS", "c"),
        ])
        .expect("env");
        assert_eq!(s.http.addr.port(), 9000);
        assert_eq!(s.http.addr.port(), 9000);
        assert_eq!(s.topics.counts, "c");
    }

    #[test]
    fn limits_default_off_and_are_configurable() {
        // Rate limit per second and burst, stream events per second and stream clients.
        let limits = |s: &Settings| {
            (
                s.http.rate_limit_per_sec,
                s.http.rate_limit_burst,
                s.api.stream_max_events_per_sec,
                s.api.max_stream_clients,
            )
        };
        let s = load(&[]).expect("defaults");
        assert_eq!(s.http.cors_allowed_origins, CorsOrigins::None);
        assert_eq!(limits(&s), (0, 20, 4, 10_000));
        let s = load(&[
            (
                "TRENDS__HTTP__CORS_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:3000",
            ),
            ("TRENDS__HTTP__RATE_LIMIT_PER_SEC", "50"),
            ("TRENDS__HTTP__RATE_LIMIT_BURST", "100"),
            ("TRENDS__API__STREAM_MAX_EVENTS_PER_SEC", "2"),
            ("TRENDS__API__MAX_STREAM_CLIENTS", "7"),
        ])
        .expect("env");
        assert_eq!(
            s.http.cors_allowed_origins,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        assert_eq!(limits(&s), (50, 100, 2, 7));
        let s = load(&[("TRENDS__HTTP__CORS_ALLOWED_ORIGINS", "*")]).expect("any");
        assert_eq!(s.http.cors_allowed_origins, CorsOrigins::Any);
    }

    #[test]
    fn connection_limits_have_defaults_and_are_configurable() {
        let limits = |s: &Settings| {
            (
                s.http.header_read_timeout,
                s.http.idle_timeout,
                s.http.max_connections,
                s.api.max_streams_per_ip,
            )
        };
        let s = load(&[]).expect("defaults");
        assert_eq!(limits(&s), (ms(10_000), ms(30_000), 20_000, 16));
        assert_eq!(s.http.metrics_addr, None, "on the API port");
        let s = load(&[
            ("TRENDS__HTTP__HEADER_READ_TIMEOUT_MS", "2500"),
            ("TRENDS__HTTP__IDLE_TIMEOUT_MS", "45000"),
            ("TRENDS__HTTP__MAX_CONNECTIONS", "300"),
            ("TRENDS__HTTP__METRICS_ADDR", "127.0.0.1:9102"),
            ("TRENDS__API__MAX_STREAMS_PER_IP", "4"),
        ])
        .expect("env");
        assert_eq!(limits(&s), (ms(2_500), ms(45_000), 300, 4));
        assert_eq!(
            s.http.metrics_addr,
            Some("127.0.0.1:9102".parse().expect("addr"))
        );
        let options = crate::app::HttpOptions::from_settings(&s);
        assert!(options.separate_metrics_listener);
        assert_eq!(
            (options.header_read_timeout, options.idle_timeout),
            (ms(2_500), Duration::from_secs(45))
        );
    }

    #[test]
    fn the_shared_sections_are_checked_and_named() {
        refused_naming(&[
            (
                "TRENDS__KAFKA__BOOTSTRAP_SERVERS",
                " ",
                "kafka.bootstrap_servers",
            ),
            ("TRENDS__TOPICS__COUNTS", "hashtag counts", "topics.counts"),
            ("TRENDS__HTTP__ADDR", "", "http.addr"),
        ]);
    }

    #[test]
    fn durations_are_read_in_their_keys_unit_and_an_empty_metrics_addr_is_none() {
        let s = load(&[
            ("TRENDS__HTTP__REQUEST_TIMEOUT_MS", "1500"),
            ("TRENDS__API__SNAPSHOT_INTERVAL_MS", "40"),
            ("TRENDS__HTTP__METRICS_ADDR", ""),
        ])
        .expect("env");
        assert_eq!(
            (s.http.request_timeout, s.api.snapshot_interval),
            (ms(1_500), ms(40))
        );
        assert_eq!(s.http.metrics_addr, None);
        let options = crate::app::HttpOptions::from_settings(&s);
        assert!(!options.separate_metrics_listener);
        assert_eq!(options.request_timeout, ms(1_500));
    }

    #[test]
    fn a_config_file_takes_a_list_of_origins() {
        let dir = std::env::temp_dir().join(format!("trends-api-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("api.toml");
        std::fs::write(
            &file,
            "[http]\ncors_allowed_origins = [\"https://a.example\"]\n",
        )
        .expect("write");
        let s = load(&[("TRENDS_CONFIG_FILE", file.to_str().expect("utf-8"))]).expect("file");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            s.http.cors_allowed_origins,
            CorsOrigins::List(vec!["https://a.example".into()])
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        refused_naming(&[
            ("TRENDS__HTTP__ADDR", "localhost", "http.addr"),
            (
                "TRENDS__API__SNAPSHOT_INTERVAL_MS",
                "0",
                "api.snapshot_interval_ms",
            ),
            ("TRENDS__HTTP__PORT", "1", "port"),
            (
                "TRENDS__API__STREAM_MAX_EVENTS_PER_SEC",
                "0",
                "api.stream_max_events_per_sec",
            ),
            (
                "TRENDS__API__MAX_STREAM_CLIENTS",
                "0",
                "api.max_stream_clients",
            ),
            (
                "TRENDS__API__MAX_STREAM_CLIENTS",
                "many",
                "max_stream_clients",
            ),
            (
                "TRENDS__HTTP__CORS_ALLOWED_ORIGINS",
                "example.org",
                "http.cors_allowed_origins",
            ),
            (
                "TRENDS__HTTP__CORS_ALLOWED_ORIGINS",
                "*,https://a.example",
                "http.cors_allowed_origins",
            ),
            (
                "TRENDS__HTTP__RATE_LIMIT_PER_SEC",
                "-1",
                "rate_limit_per_sec",
            ),
            (
                "TRENDS__HTTP__HEADER_READ_TIMEOUT_MS",
                "0",
                "http.header_read_timeout_ms",
            ),
            (
                "TRENDS__HTTP__HEADER_READ_TIMEOUT_MS",
                "soon",
                "header_read_timeout_ms",
            ),
            (
                "TRENDS__HTTP__IDLE_TIMEOUT_MS",
                "15000",
                "http.idle_timeout_ms",
            ),
            ("TRENDS__HTTP__MAX_CONNECTIONS", "0", "http.max_connections"),
            ("TRENDS__HTTP__METRICS_ADDR", "metrics", "http.metrics_addr"),
            (
                "TRENDS__HTTP__METRICS_ADDR",
                "0.0.0.0:8080",
                "http.metrics_addr",
            ),
            (
                "TRENDS__API__MAX_STREAMS_PER_IP",
                "0",
                "api.max_streams_per_ip",
            ),
        ]);
        // The idle timeout must also exceed the request timeout.
        let err = load(&[
            ("TRENDS__HTTP__REQUEST_TIMEOUT_MS", "40000"),
            ("TRENDS__HTTP__IDLE_TIMEOUT_MS", "30000"),
        ])
        .expect_err("idle <= request timeout");
        assert!(err.to_string().contains("http.idle_timeout_ms"), "{err}");
    }
}
