//! The month soak through the real pipeline (issue 14, "A long-run soak"): does the deployed
//! system stay flat while the distinct tags it has seen grow for ever? Not a test: a program
//! that prints figures (run by `scripts/bench-soak.sh`).
//!
//! The in-process soak (`crates/trends-core/examples/soak.rs`) measures the counters' heap and
//! a model of the compacted topic. What an operator pays is process memory and broker disk, so
//! this driver runs the same feed through what is deployed: a real Kafka broker (the harness's,
//! `test-support`), the release `hashtag-aggregator` and `trends-api` binaries as processes with
//! their default capacities, and measures each process's RSS and the counts topic's bytes in
//! the broker's log directory.
//!
//! **The feed** (the in-process soak's generator): `SOAK_POSTS` posts (20,000,000) over
//! `SOAK_DAYS` simulated days (30), time-compressed: day *d*'s posts carry `created_at` and
//! Kafka timestamps spread evenly over day *d*, and the last day ends when the run starts, so
//! the 24 h window is live at the end. Each post has 1–3 tags; each tag is, with probability
//! 0.7, one of 100,000 evergreen tags drawn by a Zipf law (exponent 1.1), else a tag never seen
//! before (about 400,000 new tags a simulated day at the default size): the distinct tags grow
//! for ever, which is the point. The last 12 posts of a day, one per partition, carry the tag
//! `soakday<d>`: when the API counts it 12 times in `24h`, every partition's last post of the
//! day has been counted, committed and applied.
//!
//! **After each day** the driver waits until the aggregator's group has committed every input
//! record, the API serves the day's marker in all 12 partitions and reports no lag (at most
//! the commit marker that ends each partition), then records: posts and distinct tags so far,
//! the RSS of both processes, the bytes of the counts topic's `.log` segments in the broker's
//! data directory (and their number), the aggregator's state (its `state_entries` gauge and
//! all-time evictions) and, when `SOAK_READ_KEYS` is `1` (the default), the topic's live keys,
//! read back `read_committed` from the beginning.
//!
//! **The topics.** The input is created with `CreateTime` (the driver sets each record's
//! timestamp to its simulated time; the services' own topics use `LogAppendTime`) and a size
//! retention of 64 MiB per partition, several days of this feed, so the broker's disk does
//! not hold the whole month (a day is committed before the next is produced). The counts topic
//! is created before the aggregator starts (the aggregator accepts an existing topic) with a
//! log cleaner tuned to a month compressed into minutes, see [`COUNTS_TOPIC_CONFIG`].
//!
//! `SOAK_POSTS=200000 SOAK_DAYS=5 target/release/pipeline_soak` is a smoke run of a minute.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use e2e::{
    ServiceProcess, env_number, free_port, get_json, get_text, memory_mib, metric_value, tail,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use test_support::{KafkaBroker, unique_name};
use trends_common::time::now_ms;

const PARTITIONS: i32 = 12;
const DAY_MS: i64 = 86_400_000;
const ZIPF_EXPONENT: f64 = 1.1;
/// Share of tag draws that are an evergreen tag; the rest are new tags.
const EVERGREEN_SHARE: f64 = 0.7;
const POLL: Duration = Duration::from_millis(200);
/// How long one simulated day may take to be counted and served before the run fails.
const DAY_TIMEOUT: Duration = Duration::from_secs(1800);

/// The counts topic's configuration, for a month compressed into well under an hour (a
/// simulated day lasts tens of seconds of wall time; the record timestamps the aggregator
/// writes on the counts topic are wall-clock times, so the `*.ms` settings are wall time):
///
/// - `segment.bytes` 8 MiB: a partition's live state at this feed's size is ~6 MiB; the active
///   segment is never cleaned, so a small one bounds what waits to be cleaned.
/// - `segment.ms` 60 s: a partition that receives little still rolls and becomes cleanable
///   within a simulated day.
/// - `min.cleanable.dirty.ratio` 0.1 (what the aggregator itself creates): the cleaner runs
///   once a tenth of a partition's log is superseded, so on-disk bytes stay near the live
///   state.
/// - `delete.retention.ms` 60 s instead of a day: how long tombstones (and transaction
///   markers) outlive a cleaning. A follower that lags less than that still sees every
///   tombstone, and a reader that starts from the beginning needs none. At the default (24 h
///   of wall time) every tombstone of the compressed month would still be on disk at its end:
///   ~400,000 all-time evictions a simulated day.
const COUNTS_TOPIC_CONFIG: [(&str, &str); 5] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "8388608"),
    ("segment.ms", "60000"),
    ("min.cleanable.dirty.ratio", "0.1"),
    ("delete.retention.ms", "60000"),
];

/// The input topic's configuration: the driver's timestamps, and a retention by size (several
/// days of this feed; the log has no retention by time, see test-support's broker).
const TWEETS_TOPIC_CONFIG: [(&str, &str); 3] = [
    ("message.timestamp.type", "CreateTime"),
    ("segment.bytes", "16777216"),
    ("retention.bytes", "67108864"),
];

/// A small deterministic generator (PCG-style LCG, upper bits), as in the in-process soak.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() % (1 << 30)) as f64 / (1u64 << 30) as f64
    }
}

/// The feed: heavy-tailed evergreen tags plus new tags, and what it has produced so far.
struct Feed {
    rng: Rng,
    /// The Zipf law's cumulative weights over the evergreen ranks.
    cdf: Vec<f64>,
    evergreen_seen: Vec<bool>,
    evergreen_distinct: usize,
    new_tags: u64,
    markers: u64,
}

impl Feed {
    fn new(evergreen: usize) -> Feed {
        let mut cdf = Vec::with_capacity(evergreen);
        let mut total = 0.0;
        for rank in 1..=evergreen {
            total += 1.0 / (rank as f64).powf(ZIPF_EXPONENT);
            cdf.push(total);
        }
        Feed {
            rng: Rng(0x50A4_2026),
            cdf,
            evergreen_seen: vec![false; evergreen],
            evergreen_distinct: 0,
            new_tags: 0,
            markers: 0,
        }
    }

    /// Appends one post's text (1–3 distinct hashtags) to `text`.
    fn post_text(&mut self, text: &mut String) {
        use std::fmt::Write as _;
        text.push_str("soak post");
        let mut drawn: [Option<usize>; 3] = [None; 3];
        for slot in 0..1 + (self.rng.next() % 3) as usize {
            if self.rng.unit() < EVERGREEN_SHARE {
                let total = self.cdf.last().copied().unwrap_or(0.0);
                let target = self.rng.unit() * total;
                let rank = self
                    .cdf
                    .partition_point(|&c| c < target)
                    .min(self.cdf.len() - 1);
                if drawn.contains(&Some(rank)) {
                    continue;
                }
                drawn[slot] = Some(rank);
                if !self.evergreen_seen[rank] {
                    self.evergreen_seen[rank] = true;
                    self.evergreen_distinct += 1;
                }
                let _ = write!(text, " #ever{}", rank + 1);
            } else {
                self.new_tags += 1;
                let _ = write!(text, " #new{}", self.new_tags);
            }
        }
    }

    /// Distinct tags produced so far (evergreen, new, day markers).
    fn distinct(&self) -> u64 {
        self.evergreen_distinct as u64 + self.new_tags + self.markers
    }
}

/// Counts deliveries and failures of the driver's producer.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<Deliveries>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Sends one record, waiting (serving delivery reports) while the local queue is full.
fn send(
    producer: &BaseProducer<CountingContext>,
    mut record: BaseRecord<'_, str, str>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => bail!("enqueue: {e}"),
        }
    }
}

/// Produces simulated day `day` (0-based) of `posts` posts into `topic`: spread evenly over
/// `[start, start + DAY_MS)`, then one marker post per partition at the day's last millisecond.
fn produce_day(
    producer: &BaseProducer<CountingContext>,
    topic: &str,
    feed: &mut Feed,
    day: usize,
    posts: usize,
    first_id: usize,
    start: i64,
) -> anyhow::Result<usize> {
    let mut text = String::with_capacity(128);
    let mut payload = String::with_capacity(256);
    let mut id = String::with_capacity(16);
    let mut emit = |id: &str, text: &str, time: i64, partition: Option<i32>| {
        use std::fmt::Write as _;
        payload.clear();
        let _ = write!(
            payload,
            r#"{{"id":"{id}","text":"{text}","created_at":"{}"}}"#,
            trends_core::format_rfc3339_millis(time)
        );
        let mut record = BaseRecord::to(topic)
            .key(id)
            .payload(payload.as_str())
            .timestamp(time);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        send(producer, record)
    };
    for j in 0..posts {
        let time = start + (j as i64 * DAY_MS) / posts.max(1) as i64;
        text.clear();
        feed.post_text(&mut text);
        id.clear();
        id.push_str(&format!("s{}", first_id + j));
        emit(&id, &text, time, None)?;
    }
    feed.markers += 1;
    for p in 0..PARTITIONS {
        let marker = format!("s{}-day{}-p{p}", first_id + posts, day + 1);
        let text = format!("end of day #soakday{}", day + 1);
        emit(&marker, &text, start + DAY_MS - 1, Some(p))?;
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flush the day")?;
    Ok(posts + PARTITIONS as usize)
}

/// The broker's data directory: the harness names its broker's temp dir `test-kafka-*` and
/// writes its owner's pid into it; the logs are under `data/`.
fn broker_data_dir() -> anyhow::Result<PathBuf> {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let path = entry?.path();
        let is_broker = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("test-kafka-"));
        if is_broker
            && std::fs::read_to_string(path.join("owner.pid")).is_ok_and(|pid| pid.trim() == me)
        {
            return Ok(path.join("data"));
        }
    }
    bail!("no broker data directory of this process under the temp dir")
}

/// Bytes of the `.log` segments of `topic`'s partitions under `data`, and their number.
fn topic_log_bytes(data: &Path, topic: &str) -> anyhow::Result<(u64, usize)> {
    let mut bytes = 0;
    let mut segments = 0;
    for p in 0..PARTITIONS {
        let dir = data.join(format!("{topic}-{p}"));
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".log") {
                // A segment may be deleted by the cleaner between listing and reading.
                if let Ok(meta) = entry.metadata() {
                    bytes += meta.len();
                    segments += 1;
                }
            }
        }
    }
    Ok((bytes, segments))
}

struct Soak {
    bootstrap: String,
    http: reqwest::Client,
}

impl Soak {
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    async fn create_topic(&self, name: &str, config: &[(&str, &str)]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client().create()?;
        let mut topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
        for (key, value) in config {
            topic = topic.set(key, value);
        }
        for result in admin.create_topics(&[topic], &AdminOptions::new()).await? {
            result.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
        }
        Ok(())
    }

    /// The high watermarks of `topic`'s partitions (written without transactions: the end
    /// offset is the last record's + 1).
    fn ends(&self, consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i64>> {
        (0..PARTITIONS)
            .map(|p| {
                Ok(consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))?
                    .1)
            })
            .collect()
    }

    /// The committed offsets of `consumer`'s group on `topic`, per partition.
    fn committed(&self, consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i64>> {
        e2e::committed_offsets(consumer, topic, PARTITIONS)
    }
}

/// Reads `topic` from the beginning to its end (`read_committed`); returns (records read,
/// live keys: keys whose last record is not a tombstone). Keys are kept as 64-bit hashes.
fn live_keys(bootstrap: &str, topic: &str) -> anyhow::Result<(u64, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("soak-keys"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let hasher = std::collections::hash_map::RandomState::new();
    let mut live: HashMap<u64, bool> = HashMap::new();
    let mut at_end = [false; PARTITIONS as usize];
    let mut records = 0u64;
    let deadline = Instant::now() + Duration::from_secs(900);
    while at_end.iter().any(|e| !e) {
        ensure!(Instant::now() < deadline, "reading {topic} took over 900 s");
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let mut h = hasher.build_hasher();
                h.write(m.key().unwrap_or_default());
                live.insert(h.finish(), m.payload().is_some());
                records += 1;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(e) = usize::try_from(p).ok().and_then(|p| at_end.get_mut(p)) {
                    *e = true;
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    Ok((records, live.values().filter(|v| **v).count()))
}

/// One row of the table.
struct Row {
    day: usize,
    posts: usize,
    distinct: u64,
    aggregator_rss: f64,
    api_rss: f64,
    topic_bytes: u64,
    segments: usize,
    live_keys: Option<(u64, usize)>,
    entries: f64,
    evicted_all: f64,
    seconds: f64,
}

impl Row {
    fn markdown(&self) -> String {
        let keys = self.live_keys.map_or("—".to_string(), |(records, live)| {
            format!(
                "{:.2} M ({:.2} M records)",
                live as f64 / 1e6,
                records as f64 / 1e6
            )
        });
        format!(
            "| {} | {:.2} M | {:.2} M | {:.0} MiB | {:.0} MiB | {:.1} MiB ({} segments) | {keys} | {:.2} M | {:.2} M | {:.0} s |",
            self.day,
            self.posts as f64 / 1e6,
            self.distinct as f64 / 1e6,
            self.aggregator_rss,
            self.api_rss,
            self.topic_bytes as f64 / 1_048_576.0,
            self.segments,
            self.entries / 1e6,
            self.evicted_all / 1e6,
            self.seconds,
        )
    }
}

const HEADER: &str = "| day | posts so far | distinct tags so far | aggregator RSS | API RSS | counts topic `.log` bytes | live keys (records read) | aggregator entries | evicted from `all` so far | wall time so far |\n|---|---|---|---|---|---|---|---|---|---|";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let posts = env_number("SOAK_POSTS", 20_000_000);
    let days = env_number("SOAK_DAYS", 30).max(1);
    let evergreen = env_number("SOAK_EVERGREEN", 100_000).max(1);
    let read_keys = std::env::var("SOAK_READ_KEYS").as_deref() != Ok("0");
    let run_started = Instant::now();

    let broker = tokio::task::spawn_blocking(KafkaBroker::start).await??;
    let data = broker_data_dir()?;
    let soak = Soak {
        bootstrap: broker.bootstrap_servers().to_string(),
        http: reqwest::Client::new(),
    };
    let tweets = unique_name("soak-tweets");
    let counts = unique_name("soak-counts");
    soak.create_topic(&tweets, &TWEETS_TOPIC_CONFIG).await?;
    soak.create_topic(&counts, &COUNTS_TOPIC_CONFIG).await?;
    println!(
        "pipeline soak: {posts} posts over {days} simulated days, {evergreen} evergreen tags, {PARTITIONS} partitions, default capacities; broker data in {}",
        data.display()
    );
    println!("counts topic: {COUNTS_TOPIC_CONFIG:?}");

    let group = unique_name("soak-agg");
    let aggregator_metrics = format!("127.0.0.1:{}", free_port());
    let aggregator_env: HashMap<String, String> = [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", soak.bootstrap.clone()),
        ("TRENDS__TOPICS__TWEETS", tweets.clone()),
        ("TRENDS__TOPICS__COUNTS", counts.clone()),
        ("TRENDS__TOPICS__DLQ", format!("{counts}-dlq")),
        ("TRENDS__AGGREGATOR__GROUP_ID", group.clone()),
        ("TRENDS__AGGREGATOR__INSTANCE_ID", "soak".to_string()),
        (
            "TRENDS__AGGREGATOR__METRICS_ADDR",
            aggregator_metrics.clone(),
        ),
        ("TRENDS__LOG__FILTER", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let aggregator_metrics = format!("http://{aggregator_metrics}/metrics");
    let mut aggregator = ServiceProcess::start("hashtag-aggregator", &aggregator_env)?;
    let api_port = free_port();
    let api_env: HashMap<String, String> = [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", soak.bootstrap.clone()),
        ("TRENDS__TOPICS__COUNTS", counts.clone()),
        ("TRENDS__HTTP__ADDR", format!("127.0.0.1:{api_port}")),
        ("TRENDS__LOG__FILTER", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut api = ServiceProcess::start("trends-api", &api_env)?;
    let base = format!("http://127.0.0.1:{api_port}");

    e2e::wait_for_assigned_partitions(
        &soak.http,
        &aggregator_metrics,
        PARTITIONS,
        Duration::from_secs(120),
    )
    .await?;
    e2e::wait_for("the API to be ready", Duration::from_secs(120), || async {
        get_text(&soak.http, &format!("{base}/readyz"))
            .await
            .map(|_| ())
    })
    .await?;

    let deliveries = Arc::new(Deliveries::default());
    let mut producer: BaseProducer<CountingContext> = soak
        .client()
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .create_with_context(CountingContext(deliveries.clone()))?;
    let offsets: BaseConsumer = soak.client().set("group.id", &group).create()?;
    let mut feed = Feed::new(evergreen);
    let end = now_ms();
    let first_day = end - days as i64 * DAY_MS;
    let mut produced = 0usize;
    let mut sent = 0usize;
    let mut rows = Vec::new();
    println!("{HEADER}");
    for day in 0..days {
        // Posts of this day: an even share, the remainder spread over the first days.
        let today = posts / days + usize::from(day < posts % days);
        let day_started = Instant::now();
        // Producing blocks (the local queue, flushing): off the async workers.
        let day_sent;
        (day_sent, feed, producer) = {
            let topic = tweets.clone();
            let start = first_day + day as i64 * DAY_MS;
            let mut feed = feed;
            tokio::task::spawn_blocking(move || {
                let n = produce_day(&producer, &topic, &mut feed, day, today, sent, start);
                (n, feed, producer)
            })
            .await?
        };
        let day_sent = day_sent?;
        sent += day_sent;
        produced += today;
        let failed = deliveries.failed.load(Ordering::Relaxed);
        let ok = deliveries.ok.load(Ordering::Relaxed);
        ensure!(
            failed == 0 && ok == sent as u64,
            "{failed} deliveries failed, {ok} of {sent} delivered"
        );
        let produce_secs = day_started.elapsed().as_secs_f64();

        // The aggregator has committed every input record of the day.
        let ends = soak.ends(&offsets, &tweets)?;
        let total: i64 = ends.iter().sum();
        ensure!(
            total == sent as i64,
            "{total} records in {tweets}, {sent} sent"
        );
        let deadline = Instant::now() + DAY_TIMEOUT;
        loop {
            let committed = soak.committed(&offsets, &tweets)?;
            if committed.iter().zip(&ends).all(|(c, e)| c >= e) {
                break;
            }
            ensure!(
                aggregator.is_running(),
                "the aggregator exited:\n{}",
                tail(&aggregator.log(), 40)
            );
            ensure!(
                Instant::now() < deadline,
                "day {}: the aggregator committed {} of {total} records within {DAY_TIMEOUT:?}",
                day + 1,
                committed.iter().sum::<i64>()
            );
            tokio::time::sleep(POLL).await;
        }
        let counted_secs = day_started.elapsed().as_secs_f64();

        // The API has applied the day: its marker counted in all 12 partitions, and no lag.
        let marker = format!("{base}/api/v1/hashtags/soakday{}", day + 1);
        let metrics = format!("{base}/metrics");
        e2e::wait_for("the API to apply the day", DAY_TIMEOUT, || async {
            match get_json(&soak.http, &marker).await? {
                (200, body) if body["counts"]["24h"].as_i64() == Some(i64::from(PARTITIONS)) => {}
                (status, body) => return Err(format!("{status} {}", body["counts"])),
            }
            // The follower's lag counts the commit marker that ends each partition once it
            // has gone idle (it reached the partition's end before its last end probe): at
            // most one record a partition is "no lag" here.
            let text = get_text(&soak.http, &metrics).await?;
            match metric_value(&text, "trends_api_counts_lag_records") {
                Some(lag) if lag <= f64::from(PARTITIONS) => Ok(()),
                other => Err(format!("lag {other:?}")),
            }
        })
        .await?;
        let served_secs = day_started.elapsed().as_secs_f64();
        ensure!(
            aggregator.is_running() && api.is_running(),
            "a service exited:\n{}\n---\n{}",
            tail(&aggregator.log(), 40),
            tail(&api.log(), 40)
        );

        let (aggregator_rss, _) = memory_mib(aggregator.pid())?;
        let (api_rss, _) = memory_mib(api.pid())?;
        let (topic_bytes, segments) = topic_log_bytes(&data, &counts)?;
        let text = get_text(&soak.http, &aggregator_metrics)
            .await
            .map_err(anyhow::Error::msg)?;
        let entries = metric_value(&text, "trends_aggregator_state_entries").unwrap_or(f64::NAN);
        let evicted_all =
            metric_value(&text, "trends_aggregator_tags_evicted_total{scope=\"all\"}")
                .unwrap_or(f64::NAN);
        let live_keys = if read_keys {
            let (bootstrap, topic) = (soak.bootstrap.clone(), counts.clone());
            Some(tokio::task::spawn_blocking(move || live_keys(&bootstrap, &topic)).await??)
        } else {
            None
        };
        let row = Row {
            day: day + 1,
            posts: produced,
            distinct: feed.distinct(),
            aggregator_rss,
            api_rss,
            topic_bytes,
            segments,
            live_keys,
            entries,
            evicted_all,
            seconds: run_started.elapsed().as_secs_f64(),
        };
        println!("{}", row.markdown());
        eprintln!(
            "day {}: produced in {produce_secs:.1} s, committed after {counted_secs:.1} s, served after {served_secs:.1} s, measured after {:.1} s",
            day + 1,
            day_started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    let (aggregator_rss, aggregator_peak) = memory_mib(aggregator.pid())?;
    let (api_rss, api_peak) = memory_mib(api.pid())?;
    println!("\n## Pipeline soak summary\n");
    println!(
        "{produced} posts ({} with the day markers), {} distinct tags ({} new), {days} simulated days, in {:.0} s ({:.0} posts/s end to end)",
        sent,
        feed.distinct(),
        feed.new_tags,
        run_started.elapsed().as_secs_f64(),
        sent as f64 / run_started.elapsed().as_secs_f64()
    );
    println!(
        "end: aggregator RSS {aggregator_rss:.0} MiB (peak {aggregator_peak:.0}), API RSS {api_rss:.0} MiB (peak {api_peak:.0})\n"
    );
    println!("{HEADER}");
    for row in &rows {
        println!("{}", row.markdown());
    }
    aggregator.terminate(Duration::from_secs(60))?;
    api.terminate(Duration::from_secs(30))?;
    drop(broker);
    Ok(())
}
