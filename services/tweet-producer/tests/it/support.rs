//! What the tests share: settings from `TRENDS__…` pairs, a producer run in process against the
//! shared test broker, waiting on conditions (never on time alone), reading back what reached a
//! topic, and capturing every log line so that a test can check a token never appears in them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Timestamp;
use rdkafka::{ClientConfig, Message as _};
use test_support::unique_name;
use tokio_util::sync::CancellationToken;
use trends_common::config::Load as _;
use trends_common::kafka::partition_count;
use trends_common::settings::KafkaSettings;
use trends_core::post::{RawPost, parse_post};
use tweet_producer::metrics::Metrics;
use tweet_producer::pipeline::offsets::ToEnd;
use tweet_producer::settings::Settings;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Settings from `TRENDS__…` pairs (and any other variables, e.g. the token's).
pub fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok(Settings::load_from(&env)?)
}

/// A running producer with its metrics.
pub struct Running {
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<tweet_producer::Summary>>,
}

pub fn start(settings: Settings, source: &'static str) -> Running {
    let metrics = Arc::new(Metrics::new(source));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(tweet_producer::run_with_metrics(
        settings,
        shutdown.clone(),
        Arc::clone(&metrics),
    ));
    Running {
        metrics,
        shutdown,
        task,
    }
}

impl Running {
    /// Stops it and returns how the run ended, and its metrics.
    pub async fn stop(self) -> anyhow::Result<(tweet_producer::Summary, Arc<Metrics>)> {
        self.shutdown.cancel();
        let summary = tokio::time::timeout(TIMEOUT, self.task).await???;
        Ok((summary, self.metrics))
    }

    /// Waits until it ends by itself (a fatal source error), at most [`TIMEOUT`].
    pub async fn ended(self) -> anyhow::Result<tweet_producer::Summary> {
        let result = tokio::time::timeout(TIMEOUT, self.task).await;
        self.shutdown.cancel();
        result.context("the producer did not stop by itself")??
    }
}

/// Waits until `condition` holds (checked every 10 ms), at most [`TIMEOUT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The shared Kafka settings for the test broker.
pub fn kafka_settings(bootstrap: &str) -> KafkaSettings {
    KafkaSettings::plaintext(bootstrap)
}

/// One record read back.
#[derive(Debug)]
pub struct Record {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub timestamp: Timestamp,
}

/// A consumer of committed records only (`read_committed`), in a group of its own, that
/// commits nothing.
pub fn committed_reader(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?)
}

/// Every committed record of `topic`: all partitions from the beginning, with
/// `read_committed`, until the consumer's position reaches each partition's end (its position
/// moves past aborted records and transaction markers too), so the set is exact without
/// waiting for "no more records".
pub fn read_committed(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Record>> {
    let partitions = partition_count(&kafka_settings(bootstrap), topic, Duration::from_secs(10))?
        .with_context(|| format!("topic {topic} exists"))?;
    let consumer = committed_reader(bootstrap)?;
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let to_end = ToEnd::new(&probe, topic, partitions, TIMEOUT)?;
    consumer.assign(&to_end.assignment)?;
    let mut records = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if to_end.reached(&consumer)? {
            return Ok(records);
        }
        ensure!(
            Instant::now() < deadline,
            "read {} records of {topic}, not to its end",
            records.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        records.push(Record {
            partition: message.partition(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            timestamp: message.timestamp(),
        });
    }
}

/// Every committed post of `topic`, checked against the contract (valid post, key = its
/// author or else its id,
/// timestamp the broker's: the producer creates `tweets` with `LogAppendTime`).
pub fn read_posts(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<RawPost>> {
    let mut posts = Vec::new();
    for record in read_committed(bootstrap, topic)? {
        let parsed = parse_post(record.payload.as_deref().context("value")?)?;
        let author_or_id = parsed.post.author_id.as_ref().unwrap_or(&parsed.post.id);
        ensure!(
            record.key.as_deref() == Some(author_or_id.as_bytes()),
            "key = the author, or the id without one"
        );
        ensure!(
            matches!(record.timestamp, Timestamp::LogAppendTime(t) if t > 0),
            "the broker's timestamp, got {:?}",
            record.timestamp
        );
        posts.push(parsed.post);
    }
    Ok(posts)
}

/// The ids of `posts`, sorted (duplicates kept, so that they show).
pub fn ids(posts: &[RawPost]) -> Vec<String> {
    let mut ids: Vec<String> = posts.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    ids
}

/// Every log line of this test binary (all levels, every test), from the first call on.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        // Only this function installs a subscriber in this test binary.
        let _ = tracing::subscriber::set_global_default(subscriber);
        Logs(buffer)
    })
}

/// The captured log text.
#[derive(Debug)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
