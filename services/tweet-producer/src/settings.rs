//! Settings of the tweet producer: `[producer]` here, `[source]` from [`crate::sources`] (the
//! section's common keys, and one section per source, each defined, defaulted, checked and
//! documented in its source's folder).
//!
//! Loaded by [`trends_common::config`]: built-in defaults, then the TOML file named by
//! `TRENDS_CONFIG_FILE`, then `TRENDS__SECTION__KEY` environment variables (for nested keys
//! every level is separated by `__`, e.g. `TRENDS__SOURCE__SYNTHETIC__RATE=500`). Unknown keys
//! and bad values stop the service at start with a message naming the key, because a typo that
//! silently falls back to a default produces the wrong traffic without anyone noticing. The
//! token of the selected source (if it needs one) is read at load too.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `producer.metrics_addr` | `0.0.0.0:9101` | where `GET /metrics` (Prometheus text in the OpenMetrics format) and `GET /healthz` are served |
//! | `producer.transactional_id` | `""` | the producer's `transactional.id`; empty = `tweet-producer-<source key>` (see [`Settings::source_key`]), stable per source and topic. A restart with the same id fences its predecessor; two producers with the same id fence each other |
//! | `producer.commit_interval_ms` | `500` | how often a transaction commits the posts sent since the last one and the source position, 10–60,000 |
//! | `producer.commit_max_posts` | `10000` | a transaction commits as soon as it holds this many posts, 1–1,000,000 |
//!
//! `[source]`: see [`crate::sources`] (`kind`, `buffer`, `keywords`, `languages`,
//! `dedup_capacity`, `max_post_bytes`), [`crate::sources::live`] (`reconnect.*`) and each
//! source: [`crate::sources::synthetic`], [`crate::sources::file`],
//! [`crate::sources::bluesky`], [`crate::sources::mastodon`], [`crate::sources::x`].
//!
//! Plus the shared sections: `kafka.bootstrap_servers`, `kafka.replication_factor`,
//! `topics.tweets` (the topic written to, default `tweets`), `topics.source_offsets` (the
//! compacted topic of resume positions, default `tweet-producer-offsets`), `topics.partitions`
//! (partitions when the producer creates `tweets`, default 12), `log.format`, `log.filter`.
//! `topics.counts`, `topics.dlq` and `windows.*` are accepted (the sections are shared) but not
//! used.
//!
//! [`Settings`] implements [`Load`] (`Settings::load()`, `Settings::load_from(&vars)`, with
//! the trait in scope): the shared loader (which passes over the API's and the aggregator's
//! sections and explains a removed key), plus every source's section defaults and the token of
//! the selected source. Durations and addresses are typed
//! (`Duration`, `SocketAddr`) under their old keys (`…_ms`, `…_secs`), and choices are serde
//! enums read by name ([`trends_common::config::by_name`]), so every error still names its key.
//!
//! `source.bluesky.cursor_file` was removed: positions are kept in `topics.source_offsets`,
//! written in the same transaction as the posts. Setting it stops the service at start with a
//! message saying so.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};
use trends_common::config::{self, ConfigError, Load, Service};
use trends_common::settings::{
    KafkaSettings, LogSettings, SHARED_DEFAULTS, TopicSettings, WindowSettings,
};

pub use crate::sources::{SourceKind, SourceSettings};

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

/// `[producer]`: the service itself. The keys keep their unit in their name
/// (`commit_interval_ms`); the fields are typed.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    pub metrics_addr: SocketAddr,
    /// Empty: derived from the source ([`Settings::transactional_id`]).
    pub transactional_id: String,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "commit_interval_ms")]
    pub commit_interval: Duration,
    pub commit_max_posts: u64,
}

impl Load for Settings {
    const SERVICE: Service = Service::Producer;

    /// The producer's own defaults (`[producer]`); [`Load::load_from`] appends
    /// [`SourceSettings::defaults`] (one section per source in the registry).
    const DEFAULTS: &'static str = r#"
[producer]
metrics_addr = "0.0.0.0:9101"
transactional_id = ""
commit_interval_ms = 500
commit_max_posts = 10000
"#;

    /// Checks what the types alone do not; every error names its key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.topics.validate()?;
        let producer = &self.producer;
        if !(Duration::from_millis(10)..=Duration::from_secs(60))
            .contains(&producer.commit_interval)
        {
            return Err(ConfigError(format!(
                "producer.commit_interval_ms must be within 10..=60000, got {}",
                producer.commit_interval.as_millis()
            )));
        }
        if !(1..=1_000_000).contains(&producer.commit_max_posts) {
            return Err(ConfigError(format!(
                "producer.commit_max_posts must be within 1..=1000000, got {}",
                producer.commit_max_posts
            )));
        }
        self.source.validate()
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

    /// The provided loader, with what only the producer needs: the defaults of every
    /// source's section (the removed `source.bluesky.cursor_file` is explained by the shared
    /// loader: `trends_common::settings::REMOVED_KEYS`), and the
    /// token of the configured source (if it needs one), its variable looked up in `vars`, so
    /// that a missing token stops the service at start like any bad setting.
    fn load_from(vars: &HashMap<String, String>) -> Result<Settings, ConfigError> {
        let defaults = format!(
            "{SHARED_DEFAULTS}{}{}",
            Self::DEFAULTS,
            SourceSettings::defaults()
        );
        let mut settings: Settings = config::load_service(Self::SERVICE, &defaults, vars)?;
        settings.validate()?;
        settings.source.resolve_secrets(vars)?;
        settings.kafka.resolve_secrets(vars)?;
        Ok(settings)
    }
}

impl Settings {
    /// The source's key in the offsets topic (and the base of its default
    /// `transactional.id`): `<origin>@<tweets topic>`, the origin being the selected source's
    /// ([`crate::sources::Source::origin`]), e.g.
    /// `bluesky:wss://jetstream2.us-east.bsky.network@tweets`.
    pub fn source_key(&self) -> String {
        format!("{}@{}", self.source.selected().origin(), self.topics.tweets)
    }

    /// The producer's `transactional.id`: `producer.transactional_id`, or
    /// `tweet-producer-<source key>` when that is empty.
    pub fn transactional_id(&self) -> String {
        match self.producer.transactional_id.trim() {
            "" => format!("tweet-producer-{}", self.source_key()),
            id => id.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretRef;
    use crate::sources::file::Pace;
    use crate::sources::mastodon::MastodonStream;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from_pairs(pairs)
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        load(pairs).expect_err("must be rejected").to_string()
    }

    /// The shared catalogue of keys (what a shared environment may hold) and this service's
    /// types agree both ways.
    #[test]
    fn the_shared_catalogue_lists_exactly_the_keys_of_this_service() {
        let defaults = format!(
            "{SHARED_DEFAULTS}{}{}",
            Settings::DEFAULTS,
            SourceSettings::defaults()
        );
        let mismatches = trends_common::config::catalogue_mismatches::<Settings>(&defaults);
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let s = load(&[]).expect("defaults");
        assert_eq!(s.source.kind, SourceKind::Synthetic);
        assert_eq!(s.source.synthetic.rate, 50.0);
        assert_eq!(s.source.synthetic.seed, 42);
        assert_eq!(s.source.synthetic.vocabulary, 400);
        assert_eq!(s.source.synthetic.limit, 0);
        assert_eq!(s.source.synthetic.burst_every, Duration::from_secs(60));
        assert_eq!(s.source.synthetic.burst, Duration::from_secs(15));
        assert_eq!(s.source.file.path, "");
        assert_eq!(s.source.file.pace, Pace::Fast);
        assert_eq!(s.topics.tweets, "tweets");
        assert_eq!(s.topics.partitions, 12);
        assert_eq!(s.source.buffer, 1024);
        assert!(s.source.keyword_list().is_empty());
        assert!(s.source.language_list().is_empty());
        assert_eq!(s.source.dedup_capacity, 100_000);
        assert_eq!(s.source.reconnect.min, Duration::from_millis(500));
        assert_eq!(s.source.reconnect.max, Duration::from_millis(30_000));
        assert_eq!(
            s.source.bluesky.host,
            "wss://jetstream2.us-east.bsky.network"
        );
        assert_eq!(s.source.max_post_bytes, 512 * 1024);
        assert_eq!(s.topics.source_offsets, "tweet-producer-offsets");
        assert_eq!(s.producer.commit_interval, Duration::from_millis(500));
        assert_eq!(s.producer.commit_max_posts, 10_000);
        assert_eq!(s.transactional_id(), "tweet-producer-synthetic@tweets");
        assert_eq!(s.source.bluesky.rewind, Duration::from_secs(3));
        assert_eq!(s.source.mastodon.base_url, "https://mastodon.social");
        assert_eq!(s.source.mastodon.streaming_url, "");
        assert_eq!(s.source.mastodon.stream, MastodonStream::Public);
        assert_eq!(s.source.mastodon.token, SecretRef::default());
        assert!(s.source.mastodon.resolved_token.is_none());
        assert_eq!(s.source.x.base_url, "https://api.x.com");
        assert!(s.source.x.rule_list().is_empty());
        assert_eq!(s.source.x.tag, "hashtag-trends");
        let ms = Duration::from_millis;
        assert_eq!(s.source.x.backoff.network_step, ms(250));
        assert_eq!(s.source.x.backoff.network_max, ms(16_000));
        assert_eq!(s.source.x.backoff.http_min, ms(5_000));
        assert_eq!(s.source.x.backoff.http_max, ms(320_000));
        assert_eq!(s.source.x.backoff.rate_limit_min, ms(60_000));
        assert_eq!(s.source.x.backoff.rate_limit_max, ms(900_000));
        assert_eq!(
            s.producer.metrics_addr,
            SocketAddr::from(([0, 0, 0, 0], 9101))
        );
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
        assert_eq!(s.source.x.backoff.http_min, Duration::from_millis(1));
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
        assert_eq!(s.source_key(), "bluesky:ws://127.0.0.1:1234@tweets");
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

    /// What `one_of` used to promise, now that the enums are serde's: a wrong choice is
    /// named, and so is every accepted one, and the key.
    #[test]
    fn a_bad_choice_lists_them_all() {
        for (var, value, key, names) in [
            (
                "TRENDS__SOURCE__FILE__PACE",
                "slow",
                "source.file.pace",
                "`fast` or `original`",
            ),
            (
                "TRENDS__SOURCE__MASTODON__STREAM",
                "user",
                "source.mastodon.stream",
                "`public`, `public:local`, `hashtag`",
            ),
            (
                "TRENDS__SOURCE__KIND",
                "kafka",
                "source.kind",
                "`synthetic`, `file`, `bluesky`, `mastodon`, `x`",
            ),
        ] {
            let message = error_of(&[(var, value)]);
            for part in [key, names, &format!("`{value}`")] {
                assert!(message.contains(part), "{part} in {message}");
            }
        }
    }

    #[test]
    fn typed_values_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "TRENDS__PRODUCER__METRICS_ADDR",
                "localhost",
                "producer.metrics_addr",
            ),
            (
                "TRENDS__PRODUCER__COMMIT_INTERVAL_MS",
                "-5",
                "producer.commit_interval_ms",
            ),
            (
                "TRENDS__PRODUCER__COMMIT_INTERVAL_MS",
                "60001",
                "producer.commit_interval_ms",
            ),
            (
                "TRENDS__SOURCE__RECONNECT__MIN_MS",
                "soon",
                "source.reconnect.min_ms",
            ),
            (
                "TRENDS__SOURCE__RECONNECT__MAX_MS",
                "0",
                "source.reconnect.min_ms",
            ),
            (
                "TRENDS__SOURCE__BLUESKY__REWIND_SECS",
                "-1",
                "source.bluesky.rewind_secs",
            ),
            (
                "TRENDS__SOURCE__SYNTHETIC__BURST_EVERY_SECS",
                "x",
                "source.synthetic.burst_every_secs",
            ),
        ];
        for (var, value, key) in cases {
            let message = error_of(&[(var, value)]);
            assert!(
                message.contains(key),
                "{var}={value}: {message:?} does not name {key}"
            );
        }
        let s = load(&[
            ("TRENDS__PRODUCER__METRICS_ADDR", "127.0.0.1:0"),
            ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "60000"),
            ("TRENDS__SOURCE__BLUESKY__REWIND_SECS", "0"),
        ])
        .expect("valid");
        assert_eq!(
            s.producer.metrics_addr,
            SocketAddr::from(([127, 0, 0, 1], 0))
        );
        assert_eq!(s.producer.commit_interval, Duration::from_secs(60));
        assert_eq!(s.source.bluesky.rewind, Duration::ZERO);
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
