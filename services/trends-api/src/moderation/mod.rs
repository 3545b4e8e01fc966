//! Moderation: a blocklist of hashtags kept out of trending, stored in a compacted Kafka topic
//! and managed through a token-protected admin API.
//!
//! - [`entry`]: what an entry is (an exact tag's counting form, or a pattern with `*`), its
//!   bounds, and its record in the topic (key = entry, value = JSON, tombstone = removed);
//! - [`glob`]: the pattern matcher, linear in the tag whatever the pattern;
//! - [`blocklist`]: the immutable [`Blocklist`] readers share, and the follower's working copy;
//! - [`store`]: the follower (every replica reads the topic from the beginning and converges)
//!   and the writer (read-your-writes: a write answers once this replica has applied it);
//! - [`admin`]: the admin API's router (`/api/v1/admin/blocked…`), bearer-token protected;
//! - [`settings`]: `[admin]` and `[moderation]`.
//!
//! Why Kafka and not a file or a database: Kafka is the only store of the system. Every API
//! replica follows the same single-partition topic, so a `PUT` on one replica reaches the
//! others within their fetch latency, and a restarted replica rebuilds the list from the
//! topic like it rebuilds the counts.
//!
//! [`start`] creates the topic if missing, reads it to its end, and returns a [`Moderation`]
//! handle (cheap to clone) and the follower task, which runs until the shutdown token.

pub mod admin;
pub mod blocklist;
pub mod entry;
pub mod glob;
pub mod settings;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trends_common::kafka::{
    ReaderContext, TopicSpec, client_config, ensure_topics, partition_count,
};
use trends_common::settings::KafkaSettings;

pub use admin::ADMIN_PATHS;
pub use blocklist::Blocklist;
pub use settings::{AdminSettings, ModerationSettings};
pub use store::ModerationMetrics;

use blocklist::{Entries, Limits};
use store::{PARTITION, Published, Writer};

/// How long the topic's metadata and end offset may take to answer at start (a topic just
/// created may take a moment to have a leader everywhere).
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two tries of the above.
const METADATA_RETRY: Duration = Duration::from_millis(200);

/// The blocklist topic: one partition (one order of records, which every replica applies),
/// compacted (one record per entry).
pub fn topic_spec(name: &str) -> TopicSpec<'_> {
    TopicSpec {
        name,
        partitions: 1,
        config: vec![("cleanup.policy", "compact")],
    }
}

/// What a look at the blocklist topic found.
enum Probe {
    /// Not visible (yet).
    Missing,
    /// One partition, ending at this offset.
    End(i64),
    /// This many partitions: not a blocklist topic.
    Partitions(i32),
}

/// The end offset of the topic's one partition, retried until [`METADATA_TIMEOUT`]; an error
/// at once if the topic has more than one partition.
async fn topic_end(
    kafka: &KafkaSettings,
    topic: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<i64> {
    let deadline = tokio::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        let (settings, name) = (kafka.clone(), topic.to_string());
        let probed = tokio::task::spawn_blocking(move || -> anyhow::Result<Probe> {
            Ok(
                match partition_count(&settings, &name, METADATA_RETRY * 5)? {
                    None => Probe::Missing,
                    Some(1) => {
                        let probe: BaseConsumer =
                            client_config(&settings, "trends-api-moderation-probe").create()?;
                        let (_, high) =
                            probe.fetch_watermarks(&name, PARTITION, METADATA_RETRY * 5)?;
                        Probe::End(high)
                    }
                    Some(n) => Probe::Partitions(n),
                },
            )
        })
        .await?;
        let error = match probed {
            Ok(Probe::End(end)) => return Ok(end),
            Ok(Probe::Partitions(n)) => anyhow::bail!(
                "the blocklist topic {topic} (moderation.topic) has {n} partitions; it must have 1"
            ),
            Ok(Probe::Missing) => anyhow::anyhow!("the topic is not visible"),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline || shutdown.is_cancelled() {
            return Err(error.context(format!(
                "cannot read the end of the blocklist topic {topic} (moderation.topic)"
            )));
        }
        tokio::time::sleep(METADATA_RETRY).await;
    }
}

/// The handle: the latest blocklist, and the admin API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Moderation {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    blocklist: watch::Receiver<Arc<Blocklist>>,
    writer: Writer,
    /// `None`: the admin API is off.
    token: Option<SecretString>,
    settings: ModerationSettings,
    metrics: ModerationMetrics,
}

impl Moderation {
    /// The latest blocklist this replica has applied.
    pub fn blocklist(&self) -> Arc<Blocklist> {
        self.inner.blocklist.borrow().clone()
    }

    /// A receiver that sees each new blocklist (to re-filter what is served when it changes).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Blocklist>> {
        self.inner.blocklist.clone()
    }

    /// The admin API's routes with their state applied, to `merge` into the app; no routes
    /// at all (so they answer the app's 404) when no token is configured. It reads request
    /// bodies of up to `moderation.max_import_bytes` itself: merge it where the app's own
    /// body limit does not apply (see the module docs of [`admin`]).
    pub fn admin_router(&self) -> Router {
        admin::router(self.clone())
    }

    pub fn metrics(&self) -> &ModerationMetrics {
        &self.inner.metrics
    }

    pub fn settings(&self) -> &ModerationSettings {
        &self.inner.settings
    }

    fn token(&self) -> Option<&SecretString> {
        self.inner.token.as_ref()
    }

    fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    fn limits(&self) -> Limits {
        Limits {
            max_entries: self.inner.settings.max_entries,
            max_patterns: self.inner.settings.max_patterns,
        }
    }
}

/// Creates the blocklist topic if missing (refusing one with more than one partition), starts
/// the follower, waits until it has read the topic to its end, and returns the handle and
/// the follower's task (it ends with `Ok` when `shutdown` is cancelled). `token`: the admin
/// API's bearer token (`AdminSettings::load_token`), `None` to leave the admin API off.
pub async fn start(
    settings: &ModerationSettings,
    kafka: &KafkaSettings,
    token: Option<SecretString>,
    metrics: ModerationMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<(Moderation, JoinHandle<anyhow::Result<()>>)> {
    // An empty token would let an empty `Bearer` in: it means no token.
    let token = token.filter(|t| !t.expose_secret().trim().is_empty());
    let topic = settings.topic.clone();
    ensure_topics(kafka, &[topic_spec(&topic)])
        .await
        .with_context(|| format!("cannot create the blocklist topic {topic} (moderation.topic)"))?;
    let end = topic_end(kafka, &topic, &shutdown).await?;

    let consumer: StreamConsumer<ReaderContext> = client_config(kafka, "trends-api-moderation")
        .set("group.id", "trends-api-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(ReaderContext)
        .context("create the blocklist consumer")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, PARTITION, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let producer: FutureProducer = client_config(kafka, "trends-api-moderation")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.write_timeout.as_millis().to_string(),
        )
        .create()
        .context("create the blocklist producer")?;

    let limits = Limits {
        max_entries: settings.max_entries,
        max_patterns: settings.max_patterns,
    };
    let (blocklist_tx, blocklist_rx) = watch::channel(Arc::new(Blocklist::default()));
    let (applied_tx, applied_rx) = watch::channel(0i64);
    let follower = tokio::spawn(store::follow(
        consumer,
        topic.clone(),
        Entries::new(limits),
        Published {
            blocklist: blocklist_tx,
            applied: applied_tx,
        },
        metrics.clone(),
        shutdown.clone(),
    ));

    // Caught up before anyone asks: the first answers already leave blocked tags out.
    let mut applied = applied_rx.clone();
    tokio::select! {
        () = shutdown.cancelled() => {}
        // `is_ok` drops the borrow at once (a held `watch::Ref` would make this future !Send).
        caught_up = async { applied.wait_for(|&offset| offset >= end).await.is_ok() } => {
            if !caught_up {
                // The follower ended: its error is the one to report.
                follower.await??;
                anyhow::bail!("the blocklist follower stopped before reading {topic} to its end");
            }
        }
    }
    tracing::info!(
        topic,
        entries = blocklist_rx.borrow().len(),
        admin_api = token.is_some(),
        "blocklist loaded"
    );

    let moderation = Moderation {
        inner: Arc::new(Inner {
            blocklist: blocklist_rx,
            writer: Writer {
                topic,
                producer,
                applied: applied_rx,
                timeout: settings.write_timeout,
            },
            token,
            settings: settings.clone(),
            metrics,
        }),
    };
    Ok((moderation, follower))
}
