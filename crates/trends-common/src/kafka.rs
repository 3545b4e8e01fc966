//! The one place where Kafka clients are configured and topics are created.
//!
//! **Record size limits, stated once.** librdkafka refuses to produce a record larger than
//! its `message.max.bytes`, and a broker refuses a batch larger than the topic's
//! `max.message.bytes`. A record that trips either is not a transient error: sent again it
//! fails again. So every client gets [`MESSAGE_MAX_BYTES`] explicitly, every topic the
//! services create gets [`TOPIC_MAX_MESSAGE_BYTES`] (room for one record of the client limit
//! plus batch overhead), and each service checks a record's size against these numbers
//! *before* it sends, turning an oversized record into a counted, logged skip (or a truncated
//! dead letter) instead of a failed produce.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::KafkaSettings;

/// The largest record (key, value and headers) any client of the services produces:
/// librdkafka's `message.max.bytes`, its default, set explicitly so that the services' own size
/// checks and the client agree.
pub const MESSAGE_MAX_BYTES: usize = 1_000_000;

/// `max.message.bytes` of every topic the services create: the broker's default (1 MiB + 12
/// bytes), above one record of [`MESSAGE_MAX_BYTES`] plus its batch's overhead, so a record the
/// client accepts is never refused by the broker.
pub const TOPIC_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Base client configuration shared by every producer, consumer and admin client.
pub fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", client_id)
        .set("message.max.bytes", MESSAGE_MAX_BYTES.to_string())
        .set("log_level", "4");
    if !settings.debug.is_empty() {
        // librdkafka's own level follows the `librdkafka` target of the log filter, which must
        // let `debug` through too (e.g. `TRENDS__LOG__FILTER=info,librdkafka=debug`).
        config
            .set("debug", &settings.debug)
            .set("log_level", "7")
            .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    config
}

/// A topic to create if it does not exist yet. [`ensure_topics`] adds
/// `max.message.bytes` = [`TOPIC_MAX_MESSAGE_BYTES`] unless `config` sets it.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub config: Vec<(&'a str, &'a str)>,
}

impl<'a> TopicSpec<'a> {
    /// The raw-posts topic. Its records carry the broker's clock as their timestamp
    /// (`LogAppendTime`): the aggregator reads it as the post's ingest time and never lets a
    /// post's event time run ahead of it, whatever `created_at` or a client's clock claims.
    pub fn tweets(name: &'a str, partitions: i32) -> TopicSpec<'a> {
        TopicSpec {
            name,
            partitions,
            config: vec![("message.timestamp.type", "LogAppendTime")],
        }
    }
}

/// [`TOPIC_MAX_MESSAGE_BYTES`] as a config value.
const TOPIC_MAX_MESSAGE_BYTES_TEXT: &str = "1048588";

/// Creates the topics that do not exist; existing ones are left as they are.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[TopicSpec<'_>],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings, "hashtag-trends-admin").create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let mut topic = NewTopic::new(
                t.name,
                t.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            for (k, v) in &t.config {
                topic = topic.set(k, v);
            }
            if !t.config.iter().any(|(k, _)| *k == "max.message.bytes") {
                topic = topic.set("max.message.bytes", TOPIC_MAX_MESSAGE_BYTES_TEXT);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = name, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// A topic's `max.message.bytes` as the broker reports it (DescribeConfigs), `None` if the
/// broker does not say. A topic someone created with a lower limit than the services' own
/// ([`TOPIC_MAX_MESSAGE_BYTES`]) refuses records the client accepts; a service that sizes
/// records to fit (the aggregator's dead letters) asks first.
pub async fn topic_max_message_bytes(
    settings: &KafkaSettings,
    topic: &str,
) -> anyhow::Result<Option<usize>> {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings, "hashtag-trends-admin").create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await?;
    Ok(results
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|resource| resource.entries)
        .find(|entry| entry.name == "max.message.bytes")
        .and_then(|entry| entry.value)
        .and_then(|value| value.parse().ok()))
}

/// The number of partitions of a topic, or `None` if it does not exist.
pub fn partition_count(
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<Option<i32>> {
    let consumer: BaseConsumer = client_config(settings, "hashtag-trends-metadata").create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| match t.error() {
            None if !t.partitions().is_empty() => i32::try_from(t.partitions().len()).ok(),
            _ => None,
        }))
}

/// A client context that logs librdkafka errors through `tracing`, except "end of partition",
/// which readers that ask for it (`enable.partition.eof`) get as an event and is not an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReaderContext;

impl rdkafka::ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::trace!(reason, "end of partition");
        } else {
            tracing::error!(error = %error, reason, "kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_limit_text_matches_the_constant() {
        assert_eq!(
            TOPIC_MAX_MESSAGE_BYTES_TEXT,
            TOPIC_MAX_MESSAGE_BYTES.to_string()
        );
    }

    fn settings(debug: &str) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: "localhost:9092".into(),
            replication_factor: 1,
            debug: debug.into(),
        }
    }

    #[test]
    fn warnings_only_unless_debug_contexts_are_configured() {
        let quiet = client_config(&settings(""), "test");
        assert_eq!(quiet.get("log_level"), Some("4"));
        assert_eq!(quiet.get("message.max.bytes"), Some("1000000"));
        assert_eq!(quiet.get("debug"), None);
        let verbose = client_config(&settings("cgrp,eos"), "test");
        assert_eq!(verbose.get("debug"), Some("cgrp,eos"));
        assert_eq!(verbose.get("log_level"), Some("7"));
        assert!(matches!(
            verbose.log_level,
            rdkafka::config::RDKafkaLogLevel::Debug
        ));
    }
}
