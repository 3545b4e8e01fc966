//! Config sections the services have in common. Each service's settings struct embeds the ones
//! it needs; all of them refuse unknown keys.

use serde::Deserialize;
use trends_core::window::BucketLayout;

use crate::config::ConfigError;

/// `[kafka]`: how to reach the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Replication factor for topics the services create (1 for a single broker).
    pub replication_factor: i32,
    /// librdkafka debug contexts (`debug` in librdkafka's CONFIGURATION.md), for example
    /// `cgrp,fetch,eos`; empty (the default) for none. For diagnosing a client, never needed
    /// otherwise: it is verbose. The log filter must let `librdkafka=debug` through.
    #[serde(default)]
    pub debug: String,
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
replication_factor = 1

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
