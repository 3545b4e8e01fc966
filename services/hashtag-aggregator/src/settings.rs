//! Settings of the aggregator.
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `aggregator.group_id` | `hashtag-aggregator` | consumer group shared by all instances |
//! | `aggregator.instance_id` | `$HOSTNAME`, else random | names this instance's transactional producer (`<group_id>-<instance_id>`); unique among live instances (a second instance with the same id fences the first, which exits saying so: [`crate::fencing`]) and stable across restarts of the same instance so a restart fences its predecessor at once; several on one host: e.g. `<host>-<metrics port>` |
//! | `aggregator.commit_interval_ms` | `1000` | how often counts are published and offsets committed (one transaction) |
//! | `aggregator.transaction_timeout_ms` | `30000` | broker aborts a transaction left open longer (e.g. by a crashed instance) |
//! | `aggregator.session_timeout_ms` | `10000` | consumer group session timeout |
//! | `aggregator.static_membership` | `false` | join with `group.instance.id = instance_id`: a restart within the session timeout gets its partitions back without a rebalance |
//! | `aggregator.allow_state_reset` | `false` | when a counts partition holds no state but the group has committed input offsets (the counts topic was deleted and re-created), count on from zero instead of refusing to start; for a deliberate reset: set it once, then unset it |
//! | `aggregator.allowed_lateness_secs` | `86400` | a post older than the partition's watermark minus this counts in `all` only (and in the late-records metric) |
//! | `aggregator.max_future_skew_secs` | `300` | a post whose `created_at` is further ahead of its record's Kafka timestamp (its ingest time) goes to the DLQ (`future_timestamp`); one less far ahead counts at its ingest time |
//! | `aggregator.max_tags_per_post` | `30` | a post counts for at most this many distinct tags, the first ones; the hashtags after them are counted in `trends_aggregator_tags_dropped_total{reason="over_limit"}` |
//! | `aggregator.max_tags_per_bucket` | `20000` | a partition's bucket (10 s or 5 min) counts at most this many distinct tags exactly; past it the least counted is evicted (Space-Saving) and counts become estimates with a stated error |
//! | `aggregator.all_time_capacity` | `50000` | a partition's `all` window holds at most this many tags; past it the least counted is evicted, its key tombstoned, and counts become estimates |
//! | `aggregator.author_dedup_slots` | `262144` | per partition, how many (tag, language, 5-minute bucket, author) combinations the trend track remembers to count each author once (8 bytes each: 2 MiB); past it the least recently seen are forgotten and may count again |
//! | `aggregator.restore_timeout_secs` | `120` | a partition's restore (rebuilding its state from the counts topic, outside any transaction) gives up after this long, and the instance restarts; at most 200 |
//! | `aggregator.metrics_addr` | `0.0.0.0:9100` | where `GET /metrics` (Prometheus text) is served; one port per instance on a host (a port in use stops the instance naming this key); port `0`: any free one, logged |
//!
//! plus the shared `kafka`, `topics`, `log` and `windows` sections. The sections only the
//! producer or the API read are passed over (one environment may serve all three services);
//! a key no service reads is refused ([`trends_common::config::load_service`]).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, DurationSeconds, serde_as};
use trends_common::config::{ConfigError, Load, Service};
use trends_common::settings::{KafkaSettings, LogSettings, TopicSettings, WindowSettings};
use trends_core::counter::Capacity;
use trends_core::window::BucketLayout;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub topics: TopicSettings,
    pub log: LogSettings,
    pub windows: WindowSettings,
    pub aggregator: AggregatorSettings,
}

/// `[aggregator]`. The keys keep their unit in their name (`…_ms`, `…_secs`); the fields are
/// typed.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorSettings {
    pub group_id: String,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "commit_interval_ms")]
    pub commit_interval: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "transaction_timeout_ms")]
    pub transaction_timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "session_timeout_ms")]
    pub session_timeout: Duration,
    pub static_membership: bool,
    /// Count on from zero when a partition's state is lost (restore.rs, `LostState`) instead of
    /// refusing to start. For a deliberate reset only: set it once, then unset it.
    #[serde(default)]
    pub allow_state_reset: bool,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "allowed_lateness_secs")]
    pub allowed_lateness: Duration,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "max_future_skew_secs")]
    pub max_future_skew: Duration,
    pub max_tags_per_post: usize,
    /// Distinct tags a bucket of one partition holds at most ([`Capacity::bucket_tags`]).
    pub max_tags_per_bucket: usize,
    /// Tags the `all` window of one partition holds at most ([`Capacity::all_time_tags`]).
    pub all_time_capacity: usize,
    /// Fingerprints a partition's trend track keeps to count each author once
    /// ([`trends_core::trend_track::SeenSet`]).
    pub author_dedup_slots: usize,
    /// A partition's restore gives up (and the instance restarts) after this long. Restores
    /// run outside transactions, so this is their only limit; it must stay below librdkafka's
    /// `max.poll.interval.ms` (300 s), as the consumer is not polled while a restore runs.
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "restore_timeout_secs")]
    pub restore_timeout: Duration,
    pub metrics_addr: SocketAddr,
}

/// The longest `aggregator.restore_timeout_secs`: with the 60 s the watchdog adds, still below
/// librdkafka's `max.poll.interval.ms` (300 s).
pub const MAX_RESTORE_TIMEOUT: Duration = Duration::from_secs(200);

/// The largest `aggregator.max_tags_per_bucket` and `aggregator.all_time_capacity`.
pub const MAX_CAPACITY: usize = 10_000_000;

/// The largest `aggregator.max_tags_per_post`: a post's work stays bounded by
/// [`trends_core::tags::MAX_OCCURRENCES_EXAMINED`] occurrences anyway.
pub const MAX_TAGS_PER_POST: usize = 1000;

impl Load for Settings {
    const SERVICE: Service = Service::Aggregator;

    const DEFAULTS: &'static str = r#"
[aggregator]
group_id = "hashtag-aggregator"
commit_interval_ms = 1000
transaction_timeout_ms = 30000
session_timeout_ms = 10000
static_membership = false
allowed_lateness_secs = 86400
max_future_skew_secs = 300
max_tags_per_post = 30
max_tags_per_bucket = 20000
all_time_capacity = 50000
author_dedup_slots = 262144
restore_timeout_secs = 120
metrics_addr = "0.0.0.0:9100"
"#;

    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.topics.validate()?;
        self.windows.layout()?;
        let a = &self.aggregator;
        if a.group_id.trim().is_empty() {
            return Err(ConfigError("aggregator.group_id must not be empty".into()));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&a.commit_interval) {
            return Err(ConfigError(
                "aggregator.commit_interval_ms must be within 10..=60000".into(),
            ));
        }
        if a.transaction_timeout <= a.commit_interval {
            return Err(ConfigError(
                "aggregator.transaction_timeout_ms must be larger than aggregator.commit_interval_ms".into(),
            ));
        }
        for (key, value) in [
            ("aggregator.max_tags_per_bucket", a.max_tags_per_bucket),
            ("aggregator.all_time_capacity", a.all_time_capacity),
            ("aggregator.author_dedup_slots", a.author_dedup_slots),
        ] {
            if !(1..=MAX_CAPACITY).contains(&value) {
                return Err(ConfigError(format!(
                    "{key} must be within 1..={MAX_CAPACITY} (it bounds the memory of a partition)"
                )));
            }
        }
        if !(Duration::from_secs(1)..=MAX_RESTORE_TIMEOUT).contains(&a.restore_timeout) {
            return Err(ConfigError(format!(
                "aggregator.restore_timeout_secs must be within 1..={} (below max.poll.interval.ms)",
                MAX_RESTORE_TIMEOUT.as_secs()
            )));
        }
        if !(1..=MAX_TAGS_PER_POST).contains(&a.max_tags_per_post) {
            return Err(ConfigError(format!(
                "aggregator.max_tags_per_post must be within 1..={MAX_TAGS_PER_POST}"
            )));
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
}

impl Settings {
    pub fn layout(&self) -> BucketLayout {
        self.windows.layout().unwrap_or_default()
    }

    /// A fresh trend track for `partition` (its author counts), sized by the settings.
    pub fn trend_track(&self, partition: i32) -> trends_core::trend_track::TrendTrack {
        trends_core::trend_track::TrendTrack::new(
            partition,
            self.layout(),
            self.capacity(),
            self.aggregator.author_dedup_slots,
        )
    }

    /// How many tags a partition's counter holds at most.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            bucket_tags: self.aggregator.max_tags_per_bucket,
            all_time_tags: self.aggregator.all_time_capacity,
        }
    }

    /// This instance's stable name.
    pub fn instance_id(&self) -> String {
        self.aggregator
            .instance_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("pid{}-{}", std::process::id(), random_suffix()))
    }
}

/// Milliseconds in `d`, as Kafka's `…ms` settings and the event-time arithmetic want them.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load_from_pairs(pairs)
    }

    /// The shared catalogue of keys (what a shared environment may hold) and this service's
    /// types agree both ways.
    #[test]
    fn the_shared_catalogue_lists_exactly_the_keys_of_this_service() {
        let defaults = format!(
            "{}{}",
            trends_common::settings::SHARED_DEFAULTS,
            Settings::DEFAULTS
        );
        let mismatches = trends_common::config::catalogue_mismatches::<Settings>(&defaults);
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).expect("defaults");
        assert_eq!(s.aggregator.group_id, "hashtag-aggregator");
        assert_eq!(s.topics.counts, "hashtag-counts");
        assert_eq!(s.aggregator.max_tags_per_post, 30);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value, named) in [
            (
                "TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS",
                "0",
                "aggregator.commit_interval_ms",
            ),
            (
                "TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS",
                "soon",
                "aggregator.commit_interval_ms",
            ),
            ("TRENDS__WINDOWS__FINE_BUCKET_SECS", "7", "windows"),
            ("TRENDS__AGGREGATOR__GROUPID", "x", "groupid"),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                "9100",
                "aggregator.metrics_addr",
            ),
            (
                "TRENDS__AGGREGATOR__ALLOWED_LATENESS_SECS",
                "-1",
                "aggregator.allowed_lateness_secs",
            ),
            (
                "TRENDS__AGGREGATOR__STATIC_MEMBERSHIP",
                "maybe",
                "aggregator.static_membership",
            ),
            (
                "TRENDS__AGGREGATOR__MAX_TAGS_PER_POST",
                "0",
                "aggregator.max_tags_per_post",
            ),
            (
                "TRENDS__AGGREGATOR__MAX_TAGS_PER_POST",
                "1001",
                "aggregator.max_tags_per_post",
            ),
        ] {
            let err = load(&[(key, value)]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }
}
