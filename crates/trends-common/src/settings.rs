//! Config sections the services have in common. Each service's settings struct embeds the ones
//! it needs; all of them refuse unknown keys.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use trends_core::window::BucketLayout;

use crate::config_error::ConfigError;
use crate::kafka_security::{KafkaSecrets, SaslSettings, SecurityProtocol, SslSettings};

/// `[kafka]`: how to reach the cluster, and how to authenticate to it
/// ([`crate::kafka_security`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Replication factor for topics the services create: `-1` (the default) = the broker's
    /// `default.replication.factor`, else at least 1.
    #[serde(default = "broker_default_replication")]
    pub replication_factor: i32,
    /// librdkafka debug contexts (`debug` in librdkafka's CONFIGURATION.md), for example
    /// `cgrp,fetch,eos`; empty (the default) for none. For diagnosing a client, never needed
    /// otherwise: it is verbose. The log filter must let `librdkafka=debug` through.
    #[serde(default)]
    pub debug: String,
    /// `plaintext` (the default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    #[serde(default)]
    pub sasl: SaslSettings,
    #[serde(default)]
    pub ssl: SslSettings,
    /// Any other librdkafka property, `_` for `.` in its name, for every client (module docs of
    /// [`crate::kafka_security`]: precedence, and what is refused).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The secrets `sasl`/`ssl` point at, read by [`KafkaSettings::resolve_secrets`] at load.
    #[serde(skip)]
    pub secrets: KafkaSecrets,
}

fn broker_default_replication() -> i32 {
    -1
}

impl Default for KafkaSettings {
    /// A local broker without authentication (tests build on it with `..Default::default()`).
    fn default() -> Self {
        KafkaSettings {
            bootstrap_servers: "localhost:9092".into(),
            replication_factor: -1,
            debug: String::new(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: SaslSettings::default(),
            ssl: SslSettings::default(),
            properties: BTreeMap::new(),
            secrets: KafkaSecrets::default(),
        }
    }
}

impl KafkaSettings {
    /// A broker at `bootstrap_servers` without authentication.
    pub fn plaintext(bootstrap_servers: &str) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: bootstrap_servers.to_owned(),
            ..KafkaSettings::default()
        }
    }

    /// Checks what every service needs of the cluster settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError(
                "kafka.bootstrap_servers must not be empty".into(),
            ));
        }
        if self.replication_factor < 1 && self.replication_factor != -1 {
            return Err(ConfigError(
                "kafka.replication_factor must be -1 (the broker's default) or at least 1".into(),
            ));
        }
        crate::kafka_security::validate(
            self.security_protocol,
            &self.sasl,
            &self.ssl,
            &self.properties,
        )
    }

    /// Reads the secrets the security settings point at (`vars`: the environment). Every
    /// service's loader calls it after [`KafkaSettings::validate`].
    pub fn resolve_secrets(&mut self, vars: &HashMap<String, String>) -> Result<(), ConfigError> {
        self.secrets = crate::kafka_security::resolve_secrets(
            self.security_protocol,
            &self.sasl,
            &self.ssl,
            vars,
        )?;
        Ok(())
    }
}

/// `[topics]`: topic names and the partition count of topics the services create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// Raw posts (the input).
    pub tweets: String,
    /// Compacted per-partition counts (the aggregator's output, the API's input).
    pub counts: String,
    /// Dead letters: records the aggregator could not use, with the reason in headers.
    pub dlq: String,
    /// Where `tweet-producer` keeps each source's resume position (compacted, one partition),
    /// written in the same transaction as the posts it covers. Shared so that one environment
    /// file serves every service.
    pub source_offsets: String,
    /// Partitions of the raw-posts topic when a service creates it. The counts topic always gets
    /// the same number, since it is co-partitioned with the input.
    pub partitions: i32,
}

impl TopicSettings {
    /// Every name a valid Kafka topic name (1–249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`),
    /// no two the same (a service writing its counts into its input would loop), and at least
    /// one partition.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let names = [
            ("topics.tweets", &self.tweets),
            ("topics.counts", &self.counts),
            ("topics.dlq", &self.dlq),
            ("topics.source_offsets", &self.source_offsets),
        ];
        for (key, name) in names {
            let valid = !name.is_empty()
                && name.len() <= 249
                && name != "."
                && name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(ConfigError(format!(
                    "{key} {name:?} is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"
                )));
            }
        }
        for (i, (key, name)) in names.iter().enumerate() {
            if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == name) {
                return Err(ConfigError(format!(
                    "{key} must differ from {other} (both are {name:?})"
                )));
            }
        }
        if self.partitions < 1 {
            return Err(ConfigError("topics.partitions must be at least 1".into()));
        }
        Ok(())
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (human-readable) or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,rdkafka=warn`. `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[windows]`: bucket sizes. The aggregator and the API must agree on them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSettings {
    /// Fine buckets (for 1m/5m/15m/1h) in seconds; must divide 60.
    pub fine_bucket_secs: i64,
    /// Coarse buckets (for 24h) in seconds; a whole number of minutes dividing 24 h.
    pub coarse_bucket_secs: i64,
}

impl WindowSettings {
    pub fn layout(&self) -> Result<BucketLayout, ConfigError> {
        BucketLayout::new(self.fine_bucket_secs * 1000, self.coarse_bucket_secs * 1000)
            .map_err(|e| ConfigError(format!("windows: {e}")))
    }
}

/// The defaults of the shared sections, as TOML, for services to prepend to their own.
pub const SHARED_DEFAULTS: &str = r#"
[kafka]
bootstrap_servers = "localhost:9092"
replication_factor = -1

[topics]
tweets = "tweets"
counts = "hashtag-counts"
dlq = "tweets-dlq"
source_offsets = "tweet-producer-offsets"
partitions = 12

[log]
format = "text"
filter = "info,librdkafka=warn,rdkafka=warn"

[windows]
fine_bucket_secs = 10
coarse_bucket_secs = 300
"#;

/// A service of the pipeline: which sections it reads ([`SECTIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Producer,
    Aggregator,
    Api,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Producer, Service::Aggregator, Service::Api];

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Producer => "tweet-producer",
            Service::Aggregator => "hashtag-aggregator",
            Service::Api => "trends-api",
        }
    }
}

/// One top-level section of the settings: who reads it and every key it has (relative to the
/// section, `.` between levels; `*` at the end: any key below, e.g. `properties.*`).
#[derive(Debug)]
pub struct Section {
    pub name: &'static str,
    pub read_by: &'static [Service],
    pub keys: &'static [&'static str],
}

impl Section {
    /// Whether `key` (relative to the section) is one of its keys.
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix) && key.len() > prefix.len(),
            None => *k == key,
        })
    }
}

const ALL: &[Service] = &Service::ALL;
const PRODUCER: &[Service] = &[Service::Producer];
const AGGREGATOR: &[Service] = &[Service::Aggregator];
const API: &[Service] = &[Service::Api];

/// Every key of every service, by section: the one list that makes a shared environment work.
///
/// **Why a list.** One `.env` file or ConfigMap may serve all three services, so each service
/// must accept the sections the others read (`TRENDS__HTTP__ADDR` is the API's; the aggregator
/// passes over it) while a key that *no* service reads is still a typo to refuse, with the
/// nearest key that exists ([`crate::config::load_service`]). The services do not depend on
/// each other, so what they read is listed here, once. Each service's tests check the list
/// against its own types both ways (every key with a default is listed; every listed key of its
/// sections is one its types know), and the end-to-end tests load an environment with every
/// variable the README documents into all three loaders.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "kafka",
        read_by: ALL,
        keys: &[
            "bootstrap_servers",
            "replication_factor",
            "debug",
            "security_protocol",
            "sasl.mechanism",
            "sasl.username",
            "sasl.password.env",
            "sasl.password.file",
            "sasl.oauthbearer.token_endpoint_url",
            "sasl.oauthbearer.client_id",
            "sasl.oauthbearer.client_secret.env",
            "sasl.oauthbearer.client_secret.file",
            "sasl.oauthbearer.scope",
            "sasl.oauthbearer.extensions",
            "ssl.ca_file",
            "ssl.cert_file",
            "ssl.key_file",
            "ssl.key_password.env",
            "ssl.key_password.file",
            "ssl.verify_hostname",
            "properties.*",
        ],
    },
    Section {
        name: "topics",
        read_by: ALL,
        keys: &["tweets", "counts", "dlq", "source_offsets", "partitions"],
    },
    Section {
        name: "log",
        read_by: ALL,
        keys: &["format", "filter"],
    },
    Section {
        name: "windows",
        read_by: ALL,
        keys: &["fine_bucket_secs", "coarse_bucket_secs"],
    },
    Section {
        name: "aggregator",
        read_by: AGGREGATOR,
        keys: &[
            "group_id",
            "instance_id",
            "commit_interval_ms",
            "transaction_timeout_ms",
            "session_timeout_ms",
            "static_membership",
            "allow_state_reset",
            "allowed_lateness_secs",
            "max_future_skew_secs",
            "max_tags_per_post",
            "max_tags_per_bucket",
            "all_time_capacity",
            "author_dedup_slots",
            "restore_timeout_secs",
            "metrics_addr",
        ],
    },
    Section {
        name: "http",
        read_by: API,
        keys: &[
            "addr",
            "request_timeout_ms",
            "cors_allowed_origins",
            "rate_limit_per_sec",
            "rate_limit_burst",
            "header_read_timeout_ms",
            "idle_timeout_ms",
            "max_connections",
            "metrics_addr",
        ],
    },
    Section {
        name: "api",
        read_by: API,
        keys: &[
            "snapshot_interval_ms",
            "stream_max_events_per_sec",
            "max_stream_clients",
            "max_streams_per_ip",
            "max_ready_lag_records",
        ],
    },
    Section {
        name: "trends",
        read_by: API,
        keys: &[
            "min_authors",
            "min_score",
            "dispersion",
            "flood_ratio",
            "max_episodes",
            "confirm_ms",
        ],
    },
    Section {
        name: "admin",
        read_by: API,
        keys: &["token.env", "token.file"],
    },
    Section {
        name: "moderation",
        read_by: API,
        keys: &[
            "topic",
            "max_entries",
            "max_patterns",
            "max_import_bytes",
            "write_timeout_ms",
        ],
    },
    Section {
        name: "webhooks",
        read_by: API,
        keys: &[
            "urls",
            "secret.env",
            "secret.file",
            "queue_capacity",
            "dedup_capacity",
            "timeout_ms",
            "initial_backoff_ms",
            "max_backoff_ms",
            "max_attempts",
        ],
    },
    Section {
        name: "producer",
        read_by: PRODUCER,
        keys: &[
            "metrics_addr",
            "transactional_id",
            "commit_interval_ms",
            "commit_max_posts",
        ],
    },
    Section {
        name: "source",
        read_by: PRODUCER,
        keys: &[
            "kind",
            "buffer",
            "keywords",
            "languages",
            "dedup_capacity",
            "max_post_bytes",
            "reconnect.min_ms",
            "reconnect.max_ms",
            "bluesky.host",
            "bluesky.rewind_secs",
            "file.path",
            "file.pace",
            "mastodon.base_url",
            "mastodon.streaming_url",
            "mastodon.stream",
            "mastodon.tag",
            "mastodon.token.env",
            "mastodon.token.file",
            "synthetic.rate",
            "synthetic.seed",
            "synthetic.vocabulary",
            "synthetic.limit",
            "synthetic.burst_every_secs",
            "synthetic.burst_secs",
            "synthetic.scenario",
            "synthetic.scenario_days",
            "x.base_url",
            "x.rules",
            "x.tag",
            "x.token.env",
            "x.token.file",
            "x.backoff.network_step_ms",
            "x.backoff.network_max_ms",
            "x.backoff.http_min_ms",
            "x.backoff.http_max_ms",
            "x.backoff.rate_limit_min_ms",
            "x.backoff.rate_limit_max_ms",
        ],
    },
];

/// Keys that existed once and were removed, with what to do instead: refused by every service
/// with this message rather than as a typo.
pub const REMOVED_KEYS: &[(&str, &str)] = &[(
    "source.bluesky.cursor_file",
    "source.bluesky.cursor_file (TRENDS__SOURCE__BLUESKY__CURSOR_FILE) was removed: the Bluesky resume position is now kept in the Kafka topic topics.source_offsets (default tweet-producer-offsets), committed in the same transaction as the posts, so no file or volume is needed; remove the setting",
)];

/// The section named `name`, if any service has it.
pub fn section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.name == name)
}

/// Every key as `section.key` (a `*` key as `section.prefix.<name>`), in catalogue order.
pub fn all_keys() -> impl Iterator<Item = String> {
    SECTIONS.iter().flat_map(|s| {
        s.keys.iter().map(move |k| match k.strip_suffix('*') {
            Some(prefix) => format!("{}.{prefix}<name>", s.name),
            None => format!("{}.{k}", s.name),
        })
    })
}

/// The environment variable that sets `key` (`http.addr` → `TRENDS__HTTP__ADDR`).
pub fn env_var(key: &str) -> String {
    format!(
        "{}__{}",
        crate::config::ENV_PREFIX,
        key.replace('.', "__").to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> TopicSettings {
        TopicSettings {
            tweets: "tweets".into(),
            counts: "hashtag-counts".into(),
            dlq: "tweets-dlq".into(),
            source_offsets: "tweet-producer-offsets".into(),
            partitions: 12,
        }
    }

    #[test]
    fn topic_names_are_checked_and_named_in_the_error() {
        assert!(topics().validate().is_ok());
        for (change, key) in [
            (
                (|t: &mut TopicSettings| t.counts = String::new()) as fn(&mut TopicSettings),
                "topics.counts",
            ),
            (|t| t.dlq = "dead letters".into(), "topics.dlq"),
            (|t| t.tweets = "x".repeat(250), "topics.tweets"),
            (|t| t.source_offsets = "..".into(), "topics.source_offsets"),
            (
                |t| t.counts = "tweets".into(),
                "topics.counts must differ from topics.tweets",
            ),
            (|t| t.partitions = 0, "topics.partitions"),
        ] {
            let mut t = topics();
            change(&mut t);
            let err = t.validate().expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn the_catalogue_has_each_section_and_key_once_and_open_maps() {
        let mut sections: Vec<&str> = SECTIONS.iter().map(|s| s.name).collect();
        sections.sort_unstable();
        sections.dedup();
        assert_eq!(sections.len(), SECTIONS.len(), "a section listed twice");
        let mut keys: Vec<String> = all_keys().collect();
        let listed = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), listed, "a key listed twice");
        for service in Service::ALL {
            assert!(
                SECTIONS.iter().any(|s| s.read_by == [service]),
                "{} has sections of its own",
                service.name()
            );
        }
        let kafka = section("kafka").expect("kafka");
        assert!(kafka.has("properties.client_rack"));
        assert!(!kafka.has("properties."), "a property needs a name");
        assert!(kafka.has("sasl.password.file"));
        assert!(!kafka.has("sasl.password"), "a table is not a key");
        assert_eq!(
            env_var("source.x.backoff.http_min_ms"),
            "TRENDS__SOURCE__X__BACKOFF__HTTP_MIN_MS"
        );
        assert!(keys.contains(&"kafka.properties.<name>".to_string()));
        for (removed, message) in REMOVED_KEYS {
            assert!(!keys.contains(&removed.to_string()), "{removed} is listed");
            assert!(message.starts_with(removed), "{message}");
        }
    }

    #[test]
    fn the_cluster_settings_are_checked() {
        let kafka = |servers: &str, rf: i32| KafkaSettings {
            replication_factor: rf,
            ..KafkaSettings::plaintext(servers)
        };
        assert!(kafka("k:9092", 1).validate().is_ok());
        assert!(kafka("k:9092", -1).validate().is_ok());
        assert!(kafka("k:9092", -2).validate().is_err());
        let err = kafka(" ", 1).validate().expect_err("empty");
        assert!(err.to_string().contains("kafka.bootstrap_servers"), "{err}");
        let err = kafka("k:9092", 0).validate().expect_err("zero");
        assert!(
            err.to_string().contains("kafka.replication_factor"),
            "{err}"
        );
    }
}
