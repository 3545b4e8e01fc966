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
    crate::kafka_security::apply(
        &mut config,
        settings.security_protocol,
        &settings.sasl,
        &settings.ssl,
        &settings.secrets,
        &settings.properties,
    );
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
///
/// **Durable by default.** Topics get `kafka.replication_factor` replicas (`-1`, the default:
/// the broker's `default.replication.factor`) and `min.insync.replicas` = min(2, that factor)
/// unless the spec sets it: with the producers' `acks=all`, a record is acknowledged only once
/// two brokers hold it, so losing one broker loses nothing acknowledged. On a single broker
/// both are 1.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[TopicSpec<'_>],
) -> anyhow::Result<()> {
    with_admin_retries("create topics", |timeout| {
        ensure_topics_once(settings, topics, timeout)
    })
    .await
}

async fn ensure_topics_once(
    settings: &KafkaSettings,
    topics: &[TopicSpec<'_>],
    timeout: Duration,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings, "hashtag-trends-admin").create()?;
    let replication = effective_replication_factor(settings, &admin, timeout).await?;
    let min_isr = replication.clamp(1, 2).to_string();
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
            if !t.config.iter().any(|(k, _)| *k == "min.insync.replicas") {
                topic = topic.set("min.insync.replicas", &min_isr);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = name, replication, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// How long one attempt of an admin request may take, and how many attempts are made.
///
/// **Why retry with a fresh client.** librdkafka sends an admin request to one broker it picks
/// from its metadata (CreateTopics to the "controller", DescribeConfigs to a given broker). In
/// the seconds after a broker dies, the metadata a client gets at start may still name the
/// dead one, and the request then waits for it until its timeout: a service starting during a
/// broker's outage (a rolling restart) failed after 30 s although the other brokers answer
/// everything (the e2e failover test starts the aggregator right after a kill). Each attempt
/// is short and starts from fresh metadata; the requests are idempotent (an existing topic or
/// partition count is fine). Only timeouts and transport errors are retried.
const ADMIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN_ATTEMPTS: u32 = 4;

async fn with_admin_retries<T, F, Fut>(what: &str, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut tried = 1;
    loop {
        match attempt(ADMIN_ATTEMPT_TIMEOUT).await {
            Err(e)
                if tried < ADMIN_ATTEMPTS
                    && e.downcast_ref::<rdkafka::error::KafkaError>()
                        .is_some_and(is_transient) =>
            {
                tracing::warn!(
                    operation = what,
                    attempt = tried,
                    error = %e,
                    "Kafka admin request failed; retrying with fresh metadata"
                );
                tried += 1;
            }
            other => return other,
        }
    }
}

/// Grows `topic` to `partitions` partitions (CreatePartitions); a topic that already has that
/// many (another instance grew it first) is fine.
pub async fn add_partitions(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    with_admin_retries("add partitions", |timeout| {
        add_partitions_once(settings, topic, partitions, timeout)
    })
    .await
}

async fn add_partitions_once(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> anyhow::Result<()> {
    use rdkafka::admin::NewPartitions;
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings, "hashtag-trends-admin").create()?;
    let count = usize::try_from(partitions).unwrap_or(0);
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    for result in admin
        .create_partitions(&[NewPartitions::new(topic, count)], &options)
        .await?
    {
        match result {
            Ok(_) => tracing::info!(topic, partitions, "added partitions"),
            Err((_, RDKafkaErrorCode::InvalidPartitions)) => {
                // "already has N partitions" (or more): grown by someone else.
                tracing::info!(topic, partitions, "the topic already has the partitions");
            }
            Err((name, code)) => anyhow::bail!("cannot add partitions to {name}: {code}"),
        }
    }
    Ok(())
}

/// The replication factor new topics get: `kafka.replication_factor`, or with `-1` the
/// broker's `default.replication.factor` (DescribeConfigs on one broker; 1 if it does not say).
async fn effective_replication_factor(
    settings: &KafkaSettings,
    admin: &AdminClient<DefaultClientContext>,
    timeout: Duration,
) -> anyhow::Result<i32> {
    use rdkafka::admin::ResourceSpecifier;
    if settings.replication_factor > 0 {
        return Ok(settings.replication_factor);
    }
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    let Some(broker) = metadata.brokers().first() else {
        return Ok(1);
    };
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Broker(broker.id())], &options)
        .await?;
    Ok(results
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|resource| resource.entries)
        .find(|entry| entry.name == "default.replication.factor")
        .and_then(|entry| entry.value)
        .and_then(|value| value.parse().ok())
        .unwrap_or(1))
}

/// One config value of a topic as the broker reports it (DescribeConfigs), `None` if the
/// broker does not say.
pub async fn topic_config(
    settings: &KafkaSettings,
    topic: &str,
    name: &str,
) -> anyhow::Result<Option<String>> {
    with_admin_retries("describe topic configs", |timeout| {
        topic_config_once(settings, topic, name, timeout)
    })
    .await
}

async fn topic_config_once(
    settings: &KafkaSettings,
    topic: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> =
        client_config(settings, "hashtag-trends-admin").create()?;
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await?;
    Ok(results
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|resource| resource.entries)
        .find(|entry| entry.name == name)
        .and_then(|entry| entry.value))
}

/// A topic's `max.message.bytes` as the broker reports it, `None` if the broker does not say.
/// A topic someone created with a lower limit than the services' own
/// ([`TOPIC_MAX_MESSAGE_BYTES`]) refuses records the client accepts; a service that sizes
/// records to fit (the aggregator's dead letters) asks first.
pub async fn topic_max_message_bytes(
    settings: &KafkaSettings,
    topic: &str,
) -> anyhow::Result<Option<usize>> {
    Ok(topic_config(settings, topic, "max.message.bytes")
        .await?
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

/// Why the cluster refused this service at start: a setting is wrong, so it exits with code
/// 2 ([`crate::service::run`]) instead of retrying forever.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccessDenied(pub String);

/// Checks at start that the cluster lets the service in: with TLS or SASL configured, one
/// metadata request, waiting up to `timeout` for the broker. An authentication or TLS failure
/// is returned naming the settings to look at (librdkafka itself would retry it forever,
/// logging the same error every few seconds); a broker that does not answer within `timeout`
/// is not an error here (the services wait for it as they always do). Without security
/// (`plaintext`) there is nothing to check.
pub fn check_access(settings: &KafkaSettings, timeout: Duration) -> Result<(), AccessDenied> {
    use crate::kafka_security::SecurityProtocol;
    use std::sync::{Arc, Mutex};

    /// Keeps the first authentication or TLS error librdkafka reports.
    #[derive(Default, Clone)]
    struct Watch(Arc<Mutex<Option<(RDKafkaErrorCode, String)>>>);
    impl rdkafka::ClientContext for Watch {
        fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
            let code = error.rdkafka_error_code();
            let denied = match code {
                Some(
                    RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::SSL,
                ) => code,
                // A TLS failure on the broker's side (it refused our certificate, or we sent
                // none to an mTLS listener) arrives as a transport failure.
                Some(RDKafkaErrorCode::BrokerTransportFailure)
                    if ["SSL", "certificate", "handshake"]
                        .iter()
                        .any(|w| reason.contains(w)) =>
                {
                    Some(RDKafkaErrorCode::SSL)
                }
                _ => None,
            };
            if let Some(code) = denied
                && let Ok(mut first) = self.0.lock()
            {
                first.get_or_insert((code, reason.to_owned()));
            }
        }
    }
    impl rdkafka::consumer::ConsumerContext for Watch {}

    if settings.security_protocol == SecurityProtocol::Plaintext {
        return Ok(());
    }
    let watch = Watch::default();
    let consumer: BaseConsumer<Watch> = match client_config(settings, "hashtag-trends-access")
        // `poll` serves the error callback; a consumer needs a group for it (never joined).
        .set("group.id", "hashtag-trends-access-check")
        // Fail over to the next attempt quickly while the broker is still starting.
        .set("reconnect.backoff.max.ms", "1000")
        .create_with_context(watch.clone())
    {
        Ok(consumer) => consumer,
        // librdkafka refused the configuration itself: e.g. an unreadable or invalid PEM file.
        Err(e) => {
            return Err(AccessDenied(format!(
                "kafka: the client cannot be created with these settings (kafka.ssl.*,                  kafka.sasl.*, kafka.properties): {e}"
            )));
        }
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        let attempt = consumer.fetch_metadata(None, remaining.min(Duration::from_millis(500)));
        // Serves the error callback, where librdkafka reports a refused login.
        let _ = consumer.poll(Duration::from_millis(100));
        let denied = watch.0.lock().ok().and_then(|first| first.clone());
        if let Some((code, reason)) = denied {
            let (what, keys) = match code {
                RDKafkaErrorCode::SSL => (
                    "the TLS handshake failed",
                    "kafka.ssl.ca_file (the CA that signed the broker's certificate),                      kafka.ssl.cert_file/key_file (mutual TLS) and kafka.ssl.verify_hostname",
                ),
                _ => (
                    "authentication failed",
                    "kafka.sasl.username and kafka.sasl.password (or kafka.sasl.mechanism,                      kafka.sasl.oauthbearer.*)",
                ),
            };
            return Err(AccessDenied(format!(
                "kafka: {what} at {} ({reason}); check {keys}",
                settings.bootstrap_servers
            )));
        }
        if attempt.is_ok() {
            return Ok(());
        }
        if remaining.is_zero() {
            tracing::warn!(
                bootstrap_servers = settings.bootstrap_servers,
                "the Kafka cluster did not answer within {} s; carrying on",
                timeout.as_secs()
            );
            return Ok(());
        }
    }
}

/// Whether a reader may carry on after `error` from `poll`: a connection-level event that
/// librdkafka reports and then retries by itself (a broker of the bootstrap list down, a name
/// that did not resolve, a request that timed out, a partition's leadership moving). A reader
/// that stopped on these would make its service crash-loop for as long as one broker of the
/// list is down, although the others serve everything it needs. The caller still bounds the
/// whole read by its own deadline; any other error (authorization, a topic that is gone)
/// stops it.
pub fn is_transient(error: &rdkafka::error::KafkaError) -> bool {
    // rdkafka reports no code for a failed admin request; the variant carries it.
    let code = match error {
        rdkafka::error::KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
        )
    )
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

    /// Runs `with_admin_retries` over attempts that return `results` in turn; returns the
    /// outcome and how many attempts were made.
    fn retried(
        results: Vec<Result<(), rdkafka::error::KafkaError>>,
    ) -> (Result<(), String>, usize) {
        let results = std::sync::Mutex::new(results.into_iter());
        let made = std::sync::atomic::AtomicUsize::new(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let outcome = runtime.block_on(with_admin_retries("test", |timeout| {
            assert_eq!(timeout, ADMIN_ATTEMPT_TIMEOUT);
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let next = results
                .lock()
                .expect("not poisoned")
                .next()
                .expect("an attempt too many");
            async move { next.map_err(anyhow::Error::from) }
        }));
        (outcome.map_err(|e| e.to_string()), made.into_inner())
    }

    #[test]
    fn an_admin_request_that_times_out_is_retried_and_a_refusal_is_not() {
        use rdkafka::error::KafkaError;
        let timed_out = || Err(KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut));
        assert_eq!(retried(vec![timed_out(), timed_out(), Ok(())]), (Ok(()), 3));
        let (outcome, made) = retried((0..ADMIN_ATTEMPTS).map(|_| timed_out()).collect());
        assert_eq!(made, ADMIN_ATTEMPTS as usize);
        assert!(
            outcome
                .expect_err("four timeouts fail")
                .contains("Timed out")
        );
        let denied = Err(KafkaError::AdminOp(
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ));
        let (outcome, made) = retried(vec![denied]);
        assert_eq!(made, 1);
        assert!(outcome.is_err());
    }

    #[test]
    fn a_broker_down_is_transient_and_a_refusal_is_not() {
        use rdkafka::error::KafkaError;
        let transient = [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::Resolve,
            RDKafkaErrorCode::OperationTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NetworkException,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::LeaderNotAvailable,
        ];
        for code in transient {
            assert!(
                is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
            assert!(is_transient(&KafkaError::Global(code)), "{code:?}");
            assert!(is_transient(&KafkaError::AdminOp(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::GroupAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::SSL,
        ] {
            assert!(
                !is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn topic_limit_text_matches_the_constant() {
        assert_eq!(
            TOPIC_MAX_MESSAGE_BYTES_TEXT,
            TOPIC_MAX_MESSAGE_BYTES.to_string()
        );
    }

    fn settings(debug: &str) -> KafkaSettings {
        KafkaSettings {
            debug: debug.into(),
            ..KafkaSettings::default()
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
