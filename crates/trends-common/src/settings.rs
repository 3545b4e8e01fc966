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
