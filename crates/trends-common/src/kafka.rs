//! The one place where Kafka clients are configured and topics are created.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::KafkaSettings;

/// Base client configuration shared by every producer, consumer and admin client.
pub fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", client_id)
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

/// A topic to create if it does not exist yet.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub config: Vec<(&'a str, &'a str)>,
}

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
