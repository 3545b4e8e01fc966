//! The whole-pipeline benchmark (issue 7), side by side with a Kafka Streams implementation of
//! the same job (`bench/kstreams`). Not a test: timings never decide a test's outcome; this is a
//! program that prints figures. Run it with `scripts/bench-pipeline.sh`, which builds the
//! release binaries and the Kafka Streams jar first.
//!
//! Everything is real and on this machine: one Kafka broker started as the tests start it
//! (`test-support`, KRaft, loopback), the release service binaries as processes, the Kafka Streams
//! app as a `java -jar` process. Phases (`BENCH_PHASES`, comma-separated, default all):
//!
//! - `producer`: `tweet-producer`'s synthetic source publishes `BENCH_POSTS` posts (2,000,000)
//!   as fast as the broker takes them into a 12-partition topic: posts/s from start to exit
//!   (after its final flush). The first run's topic is the input of the next two phases.
//! - `throughput`: the pre-filled topic consumed → counted → committed, exactly once, by 1 and
//!   by 2 aggregator instances, and by the Kafka Streams app (1 JVM, 2 stream threads), each
//!   with a fresh group and output topic, `BENCH_RUNS` times (3). Measured from the group's
//!   committed offsets (polled every 100 ms): *sustained* = records committed between the first
//!   commit and the last / the time between; *wall* = from process start until all committed.
//!   For Kafka Streams "all committed" includes its repartition topic. Afterwards the all-time
//!   counts of the last runs are compared tag by tag (ours from the counts topic, theirs from
//!   its output topic): the two implementations must agree exactly, or the comparison means
//!   nothing.
//! - `latency`: at a fixed offered load (`BENCH_RATE`, 10,000 posts/s, for `BENCH_SECONDS`,
//!   60 s, the first 5 s discarded), 10 probe posts per second each carry a unique tag; the
//!   time from handing a probe to the producer to seeing its count is recorded: in our counts
//!   topic and in `GET /api/v1/trends?window=all&prefix=…` for ours, in the output topic for
//!   Kafka Streams (`read_committed` consumers; like for like is topic to topic). Commit
//!   interval 100 ms for both, API snapshot interval 100 ms.
//! - `memory`: resident memory of the aggregator and of the API with 10,000, 100,000 and
//!   1,000,000 distinct tags in the 1h window (`BENCH_MEMORY_TAGS`), after all are counted and
//!   served.
//!
//! Output: one line per measurement as it happens, then a Markdown summary of medians.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trends_common::time::now_ms;

use anyhow::{Context as _, bail, ensure};
use e2e::{
    ServiceProcess, env_number, free_port, get_json, get_text, memory_mib, metric_value, tail,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use test_support::{KafkaBroker, spawn_killed_on_parent_exit, unique_name};
use trends_core::counts_record::{CountsKey, CountsRecord};

const PARTITIONS: i32 = 12;
const POLL: Duration = Duration::from_millis(100);
/// The Kafka Streams app's jar; `scripts/bench-pipeline.sh` copies the build output here so
/// that a rebuild during a run cannot pull the jar from under a running JVM.
const KSTREAMS_JAR: &str = "target/bench/trends-kstreams.jar";

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Bench {
    bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    http: reqwest::Client,
    runs: usize,
    posts: usize,
    vocabulary: usize,
    /// Markdown rows of the summary, by section.
    summary: BTreeMap<&'static str, Vec<String>>,
}

impl Bench {
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    async fn create_topic(&self, name: &str, compacted: bool) -> anyhow::Result<()> {
        let mut topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
        if compacted {
            topic = topic.set("cleanup.policy", "compact");
        }
        for result in self
            .admin
            .create_topics(&[topic], &AdminOptions::new())
            .await?
        {
            result.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
        }
        Ok(())
    }

    async fn delete_topics(&self, names: &[&str]) {
        let _ = self.admin.delete_topics(names, &AdminOptions::new()).await;
    }

    /// The end offset of every partition of `topic` (read_committed: the last stable offset).
    fn end_offsets(&self, topic: &str) -> anyhow::Result<Vec<i64>> {
        let consumer: BaseConsumer = self
            .client()
            .set("isolation.level", "read_committed")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        (0..partitions)
            .map(|p| {
                let high = consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))?
                    .1;
                self.after_last_record(topic, p, high)
            })
            .collect()
    }

    /// The offset after partition `p`'s last committed record, below its end offset `high`.
    /// A transactionally written partition ends with a commit marker, which a consumer skips
    /// and the aggregator's committed offset never passes (it commits the last record + 1);
    /// waiting for `high` would wait for ever. Reads the partition's tail (`read_committed`).
    fn after_last_record(&self, topic: &str, p: i32, high: i64) -> anyhow::Result<i64> {
        if high == 0 {
            return Ok(0);
        }
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", unique_name("bench-tail"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()?;
        // A few markers at most follow the last record: read the last 64 offsets.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset((high - 64).max(0)))?;
        consumer.assign(&tpl)?;
        let mut last = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => last = Some(m.offset() + 1),
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                _ => {}
            }
        }
        // No record in the tail (only markers, or an empty window): the end offset is the best
        // bound there is.
        Ok(last.unwrap_or(high))
    }

    /// The committed records of `topic` (read to its end with `read_committed`). Offsets
    /// alone overcount a transactionally written topic: each transaction leaves a commit
    /// marker in every partition it wrote to.
    fn count_committed(&self, topic: &str) -> anyhow::Result<i64> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", unique_name("bench-count"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()?;
        let ends = self.end_offsets(topic)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..ends.len() as i32 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut at_end = std::collections::HashSet::new();
        let mut count = 0i64;
        let deadline = Instant::now() + Duration::from_secs(600);
        while at_end.len() < ends.len() {
            ensure!(
                Instant::now() < deadline,
                "counting {topic} took over 600 s"
            );
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(_)) => count += 1,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => return Err(e.into()),
                None => {}
            }
        }
        Ok(count)
    }

    /// The sum over `topic`'s partitions of `group`'s committed offsets.
    fn committed(&self, group: &str, topic: &str, partitions: usize) -> anyhow::Result<i64> {
        let consumer: BaseConsumer = self.client().set("group.id", group).create()?;
        let partitions = i32::try_from(partitions)?;
        Ok(e2e::committed_offsets(&consumer, topic, partitions)?
            .iter()
            .sum())
    }

    fn section(&mut self, name: &'static str, row: String) {
        self.summary.entry(name).or_default().push(row);
    }
}

/// Waits until `group` has committed every record of `topic` (whose ends are `ends`), sampling
/// every 100 ms, while `alive` says the consumer still runs. Returns (sustained records/s,
/// seconds from `started` to done, peak RSS MiB of `pid`).
async fn measure_catch_up(
    bench: &Bench,
    group: &str,
    topic: &str,
    ends: &[i64],
    started: Instant,
    pid: &[u32],
    mut alive: impl FnMut() -> bool,
) -> anyhow::Result<(f64, f64, f64)> {
    let total: i64 = ends.iter().sum();
    let mut first: Option<(Instant, i64)> = None;
    let mut peak = 0.0f64;
    loop {
        // A fresh group's coordinator may still be loading: retried, like a client would.
        let committed = match bench.committed(group, topic, ends.len()) {
            Ok(committed) => committed,
            Err(e) if started.elapsed() < Duration::from_secs(120) => {
                eprintln!("committed offsets of {group}: {e} (retrying)");
                tokio::time::sleep(POLL).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        for p in pid {
            if let Ok((_, hwm)) = memory_mib(*p) {
                peak = peak.max(hwm);
            }
        }
        if committed > 0 && first.is_none() {
            first = Some((now, committed));
        }
        if committed >= total {
            let (t0, c0) = first.unwrap_or((started, 0));
            let span = now.duration_since(t0).as_secs_f64().max(POLL.as_secs_f64());
            let sustained = (total - c0) as f64 / span;
            return Ok((sustained, now.duration_since(started).as_secs_f64(), peak));
        }
        ensure!(
            alive(),
            "the consumer exited with {committed} of {total} committed"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "no catch-up within an hour ({committed} of {total})"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn aggregator_env(
    bench: &Bench,
    tweets: &str,
    counts: &str,
    group: &str,
    instance: &str,
    commit_ms: u64,
) -> HashMap<String, String> {
    [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bench.bootstrap.clone()),
        ("TRENDS__TOPICS__TWEETS", tweets.to_string()),
        ("TRENDS__TOPICS__COUNTS", counts.to_string()),
        ("TRENDS__TOPICS__DLQ", format!("{counts}-dlq")),
        ("TRENDS__AGGREGATOR__GROUP_ID", group.to_string()),
        ("TRENDS__AGGREGATOR__INSTANCE_ID", instance.to_string()),
        (
            "TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS",
            commit_ms.to_string(),
        ),
        (
            "TRENDS__AGGREGATOR__METRICS_ADDR",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("TRENDS__LOG__FILTER", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(otel_passthrough())
    .collect()
}

/// The bench's own `OTEL_*` variables, for the services it starts: set
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (and a sampler) to measure the pipeline with tracing on.
fn otel_passthrough() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| k.starts_with("OTEL_"))
}

/// Environment of a `trends-api` following `counts` on `port`, with the snapshot interval
/// `snapshot_ms` when given (else the default).
fn api_env(
    bench: &Bench,
    counts: &str,
    port: u16,
    snapshot_ms: Option<u64>,
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bench.bootstrap.clone()),
        ("TRENDS__TOPICS__COUNTS", counts.to_string()),
        ("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}")),
        ("TRENDS__LOG__FILTER", "warn".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(ms) = snapshot_ms {
        env.insert("TRENDS__API__SNAPSHOT_INTERVAL_MS".into(), ms.to_string());
    }
    env
}

/// The Kafka Streams app as a process (killed with the harness).
struct KStreams {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl KStreams {
    fn start(
        bench: &Bench,
        input: &str,
        output: &str,
        app_id: &str,
        commit_ms: u64,
    ) -> anyhow::Result<KStreams> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("kstreams.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = std::process::Command::new("java");
        cmd.args(["-Xms512m", "-Xmx2g", "-jar", KSTREAMS_JAR])
            .env("BOOTSTRAP_SERVERS", &bench.bootstrap)
            .env("INPUT_TOPIC", input)
            .env("OUTPUT_TOPIC", output)
            .env("APPLICATION_ID", app_id)
            .env("COMMIT_INTERVAL_MS", commit_ms.to_string())
            .env("NUM_STREAM_THREADS", "2")
            .env("STATE_DIR", dir.path().join("state"))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = spawn_killed_on_parent_exit(cmd).context("start the Kafka Streams app")?;
        Ok(KStreams {
            child,
            log,
            _dir: dir,
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the app says it is running (all its tasks assigned and restored).
    async fn wait_running(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("kstreams: running") {
                return Ok(());
            }
            ensure!(
                self.alive(),
                "the Kafka Streams app exited:\n{}",
                self.log_tail()
            );
            ensure!(
                Instant::now() < deadline,
                "not running after 120 s:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 30)
    }

    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Names of `app_id`'s repartition topics.
fn repartition_topics(bench: &Bench, app_id: &str) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = bench.client().create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|n| n.starts_with(app_id) && n.ends_with("-repartition"))
        .collect())
}

/// Phase `producer`: returns the topic filled by the first run.
async fn producer_phase(bench: &mut Bench) -> anyhow::Result<String> {
    let mut rates = Vec::new();
    let mut filled = None;
    for run in 0..bench.runs {
        let topic = unique_name("bench-posts");
        bench.create_topic(&topic, false).await?;
        let env: HashMap<String, String> = [
            ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bench.bootstrap.clone()),
            ("TRENDS__TOPICS__TWEETS", topic.clone()),
            ("TRENDS__SOURCE__SYNTHETIC__RATE", "0".into()),
            ("TRENDS__SOURCE__SYNTHETIC__LIMIT", bench.posts.to_string()),
            (
                "TRENDS__SOURCE__SYNTHETIC__VOCABULARY",
                bench.vocabulary.to_string(),
            ),
            (
                "TRENDS__PRODUCER__METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("TRENDS__LOG__FILTER", "warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(otel_passthrough())
        .collect();
        let started = Instant::now();
        let mut producer = ServiceProcess::start("tweet-producer", &env)?;
        let status = producer.wait_exit(Duration::from_secs(3600)).await?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(
            status.success(),
            "tweet-producer failed: {}",
            tail(&producer.log(), 20)
        );
        let total = bench.count_committed(&topic)?;
        ensure!(
            total == bench.posts as i64,
            "{total} records in {topic}, expected {}",
            bench.posts
        );
        let rate = bench.posts as f64 / seconds;
        println!(
            "producer run {}: {} posts in {seconds:.1} s = {rate:.0} posts/s",
            run + 1,
            bench.posts
        );
        rates.push(rate);
        if filled.is_none() {
            filled = Some(topic);
        } else {
            bench.delete_topics(&[&topic]).await;
        }
    }
    let rate = median(&mut rates);
    bench.section(
        "producer",
        format!(
            "| synthetic source → Kafka (transactional, lz4), {} posts | {rate:.0} posts/s |",
            bench.posts
        ),
    );
    filled.context("no producer run")
}

/// One aggregator throughput run with `instances` instances; returns (sustained, wall, peak
/// RSS) and the counts topic.
async fn aggregator_run(
    bench: &Bench,
    input: &str,
    instances: usize,
) -> anyhow::Result<((f64, f64, f64), String)> {
    let group = unique_name("bench-agg");
    let counts = unique_name("bench-counts");
    let ends = bench.end_offsets(input)?;
    let started = Instant::now();
    let mut processes = Vec::new();
    for i in 0..instances {
        let env = aggregator_env(bench, input, &counts, &group, &format!("i{i}"), 1000);
        processes.push(ServiceProcess::start("hashtag-aggregator", &env)?);
    }
    let pids: Vec<u32> = processes.iter().map(ServiceProcess::pid).collect();
    let result = measure_catch_up(bench, &group, input, &ends, started, &pids, || {
        processes.iter_mut().all(ServiceProcess::is_running)
    })
    .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => bail!(
            "{e}\n{}",
            processes
                .iter()
                .map(|p| tail(&p.log(), 20))
                .collect::<Vec<_>>()
                .join("\n---\n")
        ),
    };
    for mut p in processes {
        p.terminate(Duration::from_secs(60))?;
    }
    Ok((result, counts))
}

/// One Kafka Streams throughput run; returns (sustained, wall, peak RSS) and its output topic.
async fn kstreams_run(bench: &Bench, input: &str) -> anyhow::Result<((f64, f64, f64), String)> {
    let app_id = unique_name("bench-ks");
    let output = unique_name("bench-ks-out");
    bench.create_topic(&output, true).await?;
    let ends = bench.end_offsets(input)?;
    let started = Instant::now();
    let mut app = KStreams::start(bench, input, &output, &app_id, 1000)?;
    let pid = app.child.id();
    let input_done = measure_catch_up(bench, &app_id, input, &ends, started, &[pid], || {
        app.alive()
    })
    .await;
    let (sustained_input, _, mut peak) = match input_done {
        Ok(r) => r,
        Err(e) => bail!("{e}\n{}", app.log_tail()),
    };
    // The counting happens after the repartition topic: done when that is committed too.
    for topic in repartition_topics(bench, &app_id)? {
        let ends = bench.end_offsets(&topic)?;
        let (_, _, p) = measure_catch_up(bench, &app_id, &topic, &ends, started, &[pid], || {
            app.alive()
        })
        .await?;
        peak = peak.max(p);
    }
    let wall = started.elapsed().as_secs_f64();
    app.stop();
    // Sustained: the input rate, bounded by the time until everything was counted.
    let total: i64 = ends.iter().sum();
    let sustained = sustained_input.min(total as f64 / wall);
    Ok(((sustained, wall, peak), output))
}

/// Latest all-time count per tag: ours (summed over the counts topic's partitions) or the
/// Kafka Streams output's `a|tag` records.
fn all_time_counts(bench: &Bench, topic: &str, ours: bool) -> anyhow::Result<HashMap<String, i64>> {
    let consumer: BaseConsumer = bench
        .client()
        .set("group.id", unique_name("bench-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        // The end of a transactional partition is a commit marker, never delivered: EOF
        // events say when a partition is read to its end.
        .set("enable.partition.eof", "true")
        .create()?;
    let ends = bench.end_offsets(topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..ends.len() as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut done: Vec<bool> = ends.iter().map(|e| *e == 0).collect();
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while done.iter().any(|d| !d) {
        ensure!(Instant::now() < deadline, "reading {topic} took too long");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => done[p as usize] = true,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                latest.insert(
                    message.key().unwrap_or_default().to_vec(),
                    message.payload().map(<[u8]>::to_vec),
                );
            }
        }
    }
    let mut counts = HashMap::new();
    for (key, value) in latest {
        if ours {
            if let Ok(record) = CountsRecord::decode(&key, value.as_deref()) {
                if let (CountsKey::Total { tag, .. }, Some(count)) = (&record.key, record.value) {
                    *counts.entry(tag.clone()).or_default() += count;
                }
            }
        } else if let (Some(tag), Some(value)) = (
            String::from_utf8_lossy(&key)
                .strip_prefix("a|")
                .map(str::to_string),
            value,
        ) {
            let json: serde_json::Value = serde_json::from_slice(&value)?;
            *counts.entry(tag).or_default() += json["count"].as_i64().unwrap_or(0);
        }
    }
    Ok(counts)
}

async fn throughput_phase(bench: &mut Bench, input: &str) -> anyhow::Result<()> {
    let mut results: BTreeMap<&str, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut last_ours = None;
    let mut last_theirs = None;
    for run in 0..bench.runs {
        for instances in [1usize, 2] {
            let (r, counts) = aggregator_run(bench, input, instances).await?;
            println!(
                "aggregator ×{instances} run {}: sustained {:.0} posts/s, all committed after {:.1} s, peak RSS {:.0} MiB (per instance, max)",
                run + 1,
                r.0,
                r.1,
                r.2
            );
            results
                .entry(if instances == 1 {
                    "ours ×1"
                } else {
                    "ours ×2"
                })
                .or_default()
                .push(r);
            if instances == 1 {
                if let Some(old) = last_ours.replace(counts) {
                    bench.delete_topics(&[&old]).await;
                }
            } else {
                bench.delete_topics(&[&counts]).await;
            }
        }
        if std::path::Path::new(KSTREAMS_JAR).exists() {
            let (r, output) = kstreams_run(bench, input).await?;
            println!(
                "kafka streams run {}: {:.0} posts/s, all counted and committed after {:.1} s, peak RSS {:.0} MiB",
                run + 1,
                r.0,
                r.1,
                r.2
            );
            results.entry("Kafka Streams").or_default().push(r);
            if let Some(old) = last_theirs.replace(output) {
                bench.delete_topics(&[&old]).await;
            }
        } else {
            println!("{KSTREAMS_JAR} is missing: build it (scripts/bench-pipeline.sh does)");
        }
    }
    let mut medians = BTreeMap::new();
    for (name, runs) in &results {
        let mut sustained: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let mut wall: Vec<f64> = runs.iter().map(|r| r.1).collect();
        let mut peak: Vec<f64> = runs.iter().map(|r| r.2).collect();
        let (s, w, p) = (median(&mut sustained), median(&mut wall), median(&mut peak));
        medians.insert(*name, s);
        bench.section(
            "throughput",
            format!(
                "| {name} | {s:.0} posts/s | {w:.1} s | {p:.0} MiB | {} |",
                runs.iter()
                    .map(|r| format!("{:.0}", r.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if let (Some(ours), Some(theirs)) = (medians.get("ours ×1"), medians.get("Kafka Streams")) {
        let ratio = ours / theirs;
        println!("throughput ratio ours ×1 / Kafka Streams = {ratio:.2}");
        bench.section(
            "ratios",
            format!("| throughput, ours ×1 / Kafka Streams | {ratio:.2} |"),
        );
    }
    if let (Some(ours), Some(theirs)) = (last_ours, last_theirs) {
        let a = all_time_counts(bench, &ours, true)?;
        let b = all_time_counts(bench, &theirs, false)?;
        let differing: Vec<_> = a
            .iter()
            .filter(|(tag, n)| b.get(*tag) != Some(n))
            .take(5)
            .collect();
        let total: i64 = a.values().sum();
        println!(
            "cross-check of all-time counts: ours {} tags ({total} tag occurrences), Kafka Streams {} tags; {} differ{}",
            a.len(),
            b.len(),
            differing.len(),
            if differing.is_empty() {
                String::new()
            } else {
                format!(", e.g. {differing:?}")
            }
        );
        ensure!(
            a == b,
            "the two implementations disagree: the comparison is void"
        );
        bench.section(
            "cross-check",
            format!(
                "all-time counts of both implementations equal for all {} tags ({total} tag occurrences)",
                a.len()
            ),
        );
    }
    Ok(())
}

/// Records, per probe tag, when it was first seen.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// Follows `topic` from its current end (`read_committed`) and records the first time each
/// probe tag appears in a key, as `tag_of(key)` finds it.
fn watch_topic(
    bench: &Bench,
    topic: &str,
    seen: Seen,
    stop: Arc<AtomicBool>,
    tag_of: fn(&str) -> Option<&str>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = bench
        .client()
        .set("group.id", unique_name("bench-watch"))
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                if let Some(tag) = tag_of(&key).filter(|t| t.starts_with("zprobe")) {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(tag.to_string())
                        .or_insert_with(Instant::now);
                }
            }
        }
    }))
}

/// The probe tag of post `k`: 10 per prefix group so one prefix query covers a group.
fn probe_tag(k: usize) -> String {
    format!("zprobe{:05}x{k}", k / 10)
}

/// Produces `rate` posts/s for `seconds` into `topic`, 10 probes per second among them; returns
/// the send time of each probe.
async fn offer_load(
    bench: &Bench,
    topic: &str,
    rate: usize,
    seconds: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let producer: FutureProducer = bench
        .client()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()?;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut probes = Vec::new();
    let mut pending = Vec::new();
    let total = rate * seconds;
    let mut rng = e2e::Lcg(11);
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize).min(total);
        while sent < due {
            let probe = sent % (rate / 10).max(1) == 0;
            let time = now_ms();
            let (tag, text) = if probe {
                let tag = probe_tag(probes.len());
                (Some(tag.clone()), format!("probe #{tag}"))
            } else {
                let a = rng.next(bench.vocabulary as u64);
                let b = rng.next(bench.vocabulary as u64);
                (None, format!("load post #tag{a} and #tag{b}"))
            };
            let id = format!("load-{sent}");
            let payload = serde_json::json!({
                "id": id, "text": text, "created_at": trends_core::format_rfc3339_millis(time)
            })
            .to_string();
            let record = FutureRecord::to(topic)
                .key(&id)
                .payload(&payload)
                .timestamp(time);
            match producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => bail!("enqueue: {e}"),
            }
            if let Some(tag) = tag {
                probes.push((tag, Instant::now()));
            }
            sent += 1;
        }
        if pending.len() > 20_000 {
            for d in pending.drain(..) {
                d.await.context("delivery")?.map_err(|(e, _)| e)?;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for d in pending {
        d.await.context("delivery")?.map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(probes)
}

/// Polls the API for the probes' prefix groups until every probe was seen (or 30 s after the
/// load ended).
async fn watch_api(
    http: reqwest::Client,
    base: String,
    seen: Seen,
    stop: Arc<AtomicBool>,
    expected: Arc<Mutex<usize>>,
) {
    let mut group = 0usize;
    while !stop.load(Ordering::Acquire) {
        // Query the groups from the oldest incomplete one on.
        let limit = *expected.lock().unwrap_or_else(|p| p.into_inner());
        let last_group = limit / 10;
        while group <= last_group {
            let complete = (group * 10..(group * 10 + 10).min(limit)).all(|k| {
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(&probe_tag(k))
            });
            if complete && (group + 1) * 10 <= limit {
                group += 1;
            } else {
                break;
            }
        }
        for g in group..=last_group {
            let url = format!("{base}/api/v1/trends?window=all&limit=100&prefix=zprobe{g:05}x");
            if let Ok((200, body)) = get_json(&http, &url).await {
                let now = Instant::now();
                let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                for (tag, _) in e2e::ranking(&body) {
                    s.entry(tag).or_insert(now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn latency_figures(probes: &[(String, Instant)], seen: &Seen, skip: Duration) -> (Vec<f64>, usize) {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let first = probes.first().map(|p| p.1);
    let mut ms: Vec<f64> = Vec::new();
    let mut missing = 0;
    for (tag, sent) in probes {
        if first.is_some_and(|f| sent.duration_since(f) < skip) {
            continue;
        }
        match seen.get(tag) {
            Some(at) => ms.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    ms.sort_by(f64::total_cmp);
    (ms, missing)
}

fn latency_row(name: &str, ms: &[f64], missing: usize) -> String {
    format!(
        "| {name} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
        percentile(ms, 50.0),
        percentile(ms, 95.0),
        percentile(ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len() + missing
    )
}

/// Waits until `seen` holds every probe, at most `timeout`.
async fn wait_all_seen(seen: &Seen, probes: &[(String, Instant)], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let all = {
            let s = seen.lock().unwrap_or_else(|p| p.into_inner());
            probes.iter().all(|(t, _)| s.contains_key(t))
        };
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn latency_phase(bench: &mut Bench) -> anyhow::Result<()> {
    let rate = env_number("BENCH_RATE", 10_000);
    let seconds = env_number("BENCH_SECONDS", 60);
    let skip = Duration::from_secs(5);
    let commit_ms = 100;

    // Ours: aggregator + API.
    let input = unique_name("bench-lat");
    let counts = unique_name("bench-lat-counts");
    bench.create_topic(&input, false).await?;
    let group = unique_name("bench-lat-agg");
    let env = aggregator_env(bench, &input, &counts, &group, "lat", commit_ms);
    let metrics_url = format!("http://{}/metrics", env["TRENDS__AGGREGATOR__METRICS_ADDR"]);
    let mut aggregator = ServiceProcess::start("hashtag-aggregator", &env)?;
    let api_port = free_port();
    let api_env = api_env(bench, &counts, api_port, Some(100));
    let mut api = ServiceProcess::start("trends-api", &api_env)?;
    let base = format!("http://127.0.0.1:{api_port}");
    e2e::wait_for("the API to be ready", Duration::from_secs(60), || async {
        get_text(&bench.http, &format!("{base}/readyz"))
            .await
            .map(|_| ())
    })
    .await?;
    e2e::wait_for_assigned_partitions(
        &bench.http,
        &metrics_url,
        PARTITIONS,
        Duration::from_secs(60),
    )
    .await?;
    let topic_seen: Seen = Arc::default();
    let api_seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_topic(bench, &counts, topic_seen.clone(), stop.clone(), |key| {
        key.splitn(3, '|')
            .nth(2)
            .filter(|_| key.split('|').nth(1) == Some("a"))
    })?;
    let expected = Arc::new(Mutex::new(rate * seconds / (rate / 10).max(1)));
    let api_watch = tokio::spawn(watch_api(
        bench.http.clone(),
        base.clone(),
        api_seen.clone(),
        stop.clone(),
        expected,
    ));
    let transactions = |text: &str| {
        metric_value(text, "trends_aggregator_transactions_committed_total").unwrap_or(0.0)
    };
    let phases = |text: &str| {
        ["produce", "send_offsets", "commit"].map(|phase| {
            metric_value(
                text,
                &format!("trends_aggregator_transaction_duration_seconds_sum{{phase=\"{phase}\"}}"),
            )
            .unwrap_or(0.0)
        })
    };
    let text_before = get_text(&bench.http, &metrics_url)
        .await
        .unwrap_or_default();
    let before = transactions(&text_before);
    let load_started = Instant::now();
    let probes = offer_load(bench, &input, rate, seconds).await?;
    let text_after = get_text(&bench.http, &metrics_url)
        .await
        .unwrap_or_default();
    let after = transactions(&text_after);
    let per_second = (after - before) / load_started.elapsed().as_secs_f64();
    let (p0, p1) = (phases(&text_before), phases(&text_after));
    let mean_ms: Vec<f64> = (0..3)
        .map(|i| (p1[i] - p0[i]) * 1000.0 / (after - before).max(1.0))
        .collect();
    println!(
        "mean time per transaction: produce {:.1} ms, send offsets {:.1} ms, commit {:.1} ms",
        mean_ms[0], mean_ms[1], mean_ms[2]
    );
    bench.section(
        "latency-notes",
        format!(
            "mean time per transaction under this load: queueing the counts {:.1} ms, `send_offsets_to_transaction` {:.1} ms, `commit_transaction` {:.1} ms",
            mean_ms[0], mean_ms[1], mean_ms[2]
        ),
    );
    println!(
        "aggregator under load: {per_second:.1} transactions/s (commit interval {commit_ms} ms): one commit cycle takes {:.0} ms",
        1000.0 / per_second
    );
    bench.section(
        "latency-notes",
        format!("our aggregator committed {per_second:.1} transactions/s under this load (interval {commit_ms} ms): a commit cycle took {:.0} ms on average", 1000.0 / per_second),
    );
    wait_all_seen(&api_seen, &probes, Duration::from_secs(30)).await;
    wait_all_seen(&topic_seen, &probes, Duration::from_secs(5)).await;
    stop.store(true, Ordering::Release);
    let _ = api_watch.await;
    let _ = watcher.join();
    let (topic_ms, topic_missing) = latency_figures(&probes, &topic_seen, skip);
    let (api_ms, api_missing) = latency_figures(&probes, &api_seen, skip);
    println!(
        "latency ours at {rate}/s: counts topic p50 {:.0} p99 {:.0} ms ({topic_missing} missing); API p50 {:.0} p99 {:.0} ms ({api_missing} missing)",
        percentile(&topic_ms, 50.0),
        percentile(&topic_ms, 99.0),
        percentile(&api_ms, 50.0),
        percentile(&api_ms, 99.0)
    );
    ensure!(
        aggregator.is_running() && api.is_running(),
        "a service died"
    );
    aggregator.terminate(Duration::from_secs(60))?;
    api.terminate(Duration::from_secs(30))?;
    bench.section(
        "latency",
        latency_row("ours: produce → counts topic", &topic_ms, topic_missing),
    );
    bench.section(
        "latency",
        latency_row("ours: produce → `GET /api/v1/trends`", &api_ms, api_missing),
    );

    // Kafka Streams on its own fresh input.
    if std::path::Path::new(KSTREAMS_JAR).exists() {
        let input = unique_name("bench-lat-ks");
        let output = unique_name("bench-lat-ks-out");
        bench.create_topic(&input, false).await?;
        bench.create_topic(&output, true).await?;
        let app_id = unique_name("bench-lat-ks");
        let mut app = KStreams::start(bench, &input, &output, &app_id, commit_ms)?;
        app.wait_running().await?;
        let warm: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch_topic(bench, &output, warm.clone(), stop.clone(), |key| {
            key.strip_prefix("a|")
        })?;
        let probes = offer_load(bench, &input, rate, seconds).await?;
        wait_all_seen(&warm, &probes, Duration::from_secs(60)).await;
        stop.store(true, Ordering::Release);
        let _ = watcher.join();
        let (ms, missing) = latency_figures(&probes, &warm, skip);
        println!(
            "latency kafka streams at {rate}/s: output topic p50 {:.0} p99 {:.0} ms ({missing} missing)",
            percentile(&ms, 50.0),
            percentile(&ms, 99.0)
        );
        ensure!(
            app.alive(),
            "the Kafka Streams app died:\n{}",
            app.log_tail()
        );
        app.stop();
        bench.section(
            "latency",
            latency_row("Kafka Streams: produce → output topic", &ms, missing),
        );
        let ratio = percentile(&ms, 99.0) / percentile(&topic_ms, 99.0);
        bench.section(
            "ratios",
            format!("| p99 latency to the output topic, Kafka Streams / ours | {ratio:.2} |"),
        );
    }
    Ok(())
}

async fn memory_phase(bench: &mut Bench) -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("BENCH_MEMORY_TAGS")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    for tags in sizes {
        let input = unique_name("bench-mem");
        let counts = unique_name("bench-mem-counts");
        bench.create_topic(&input, false).await?;
        // Post i carries the distinct tag #m<i>; event times spread over the last 50 minutes.
        let producer: FutureProducer = bench
            .client()
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("compression.type", "lz4")
            .create()?;
        let now = now_ms();
        let mut pending = Vec::new();
        for i in 0..tags {
            let time = now - 3_000_000 + (i as i64 * 3_000_000 / tags as i64);
            let id = format!("mem-{i}");
            let payload = serde_json::json!({
                "id": id, "text": format!("post #m{i}"),
                "created_at": trends_core::format_rfc3339_millis(time)
            })
            .to_string();
            match producer.send_result(
                FutureRecord::to(&input)
                    .key(&id)
                    .payload(&payload)
                    .timestamp(time),
            ) {
                Ok(d) => pending.push(d),
                Err((e, _)) => bail!("enqueue: {e}"),
            }
            if pending.len() >= 50_000 {
                for d in pending.drain(..) {
                    d.await.context("delivery")?.map_err(|(e, _)| e)?;
                }
            }
        }
        for d in pending {
            d.await.context("delivery")?.map_err(|(e, _)| e)?;
        }
        let ends = bench.end_offsets(&input)?;
        let group = unique_name("bench-mem-agg");
        let started = Instant::now();
        let mut aggregator = ServiceProcess::start(
            "hashtag-aggregator",
            &aggregator_env(bench, &input, &counts, &group, "mem", 1000),
        )?;
        let pid = aggregator.pid();
        measure_catch_up(bench, &group, &input, &ends, started, &[pid], || {
            aggregator.is_running()
        })
        .await?;
        let (aggregator_rss, aggregator_peak) = memory_mib(pid)?;

        let api_port = free_port();
        let api_env = api_env(bench, &counts, api_port, None);
        // The counts topic is complete: time the API from its start to ready (it answers 200 on
        // /readyz once it has read the whole topic and serves a complete snapshot).
        let api_started = Instant::now();
        let mut api = ServiceProcess::start("trends-api", &api_env)?;
        let base = format!("http://127.0.0.1:{api_port}");
        let ready = format!("{base}/readyz");
        e2e::wait_for("the API ready", Duration::from_secs(600), || async {
            match get_json(&bench.http, &ready).await? {
                (200, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        })
        .await?;
        let api_ready_secs = api_started.elapsed().as_secs_f64();
        // Served when the 1h window's top tag count equals 1 and the last tag is known.
        let last = format!("{base}/api/v1/hashtags/m{}", tags - 1);
        let first = format!("{base}/api/v1/hashtags/m0");
        e2e::wait_for(
            "the API to serve every tag",
            Duration::from_secs(600),
            || async {
                for url in [&first, &last] {
                    match get_json(&bench.http, url).await? {
                        (200, _) => {}
                        (status, _) => return Err(format!("{url}: {status}")),
                    }
                }
                let metrics = get_text(&bench.http, &format!("{base}/metrics")).await?;
                match metric_value(&metrics, "trends_api_counts_lag_records") {
                    Some(0.0) => Ok(()),
                    other => Err(format!("lag {other:?}")),
                }
            },
        )
        .await?;
        let (api_rss, api_peak) = memory_mib(api.pid())?;
        println!(
            "memory with {tags} distinct tags in 1h: aggregator RSS {aggregator_rss:.0} MiB (peak {aggregator_peak:.0}), API RSS {api_rss:.0} MiB (peak {api_peak:.0}), API start → ready {api_ready_secs:.1} s"
        );
        bench.section(
            "memory",
            format!(
                "| {tags} | {aggregator_rss:.0} MiB | {aggregator_peak:.0} MiB | {api_rss:.0} MiB | {api_peak:.0} MiB | {api_ready_secs:.1} s |"
            ),
        );
        aggregator.terminate(Duration::from_secs(60))?;
        api.terminate(Duration::from_secs(30))?;
        bench.delete_topics(&[&input, &counts]).await;
    }
    Ok(())
}

fn print_summary(bench: &Bench) {
    let table = |name: &str, header: &str| {
        if let Some(rows) = bench.summary.get(name) {
            println!("\n{header}");
            for row in rows {
                println!("{row}");
            }
        }
    };
    println!(
        "\n## Summary (medians of {} runs where repeated)",
        bench.runs
    );
    table("producer", "| producer | throughput |\n|---|---|");
    table(
        "throughput",
        "| consumer (exactly once, commit 1 s) | sustained | all committed after | peak RSS | runs |\n|---|---|---|---|---|",
    );
    table("cross-check", "");
    table(
        "latency",
        "| path | p50 | p95 | p99 | max | probes |\n|---|---|---|---|---|---|",
    );
    table("latency-notes", "");
    table(
        "memory",
        "| distinct tags in 1h | aggregator RSS | aggregator peak | API RSS | API peak | API start → ready |\n|---|---|---|---|---|---|",
    );
    table("ratios", "| ratio | value |\n|---|---|");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let phases: Vec<String> = std::env::var("BENCH_PHASES")
        .unwrap_or_else(|_| "producer,throughput,latency,memory".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let broker = tokio::task::spawn_blocking(KafkaBroker::start).await??;
    let bootstrap = broker.bootstrap_servers().to_string();
    let admin = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    let mut bench = Bench {
        bootstrap,
        admin,
        http: reqwest::Client::new(),
        runs: env_number("BENCH_RUNS", 3),
        posts: env_number("BENCH_POSTS", 2_000_000),
        vocabulary: env_number("BENCH_VOCABULARY", 10_000),
        summary: BTreeMap::new(),
    };
    println!(
        "pipeline benchmark: {} posts, vocabulary {}, {} runs, {} partitions, phases {phases:?}",
        bench.posts, bench.vocabulary, bench.runs, PARTITIONS
    );
    let has = |p: &str| phases.iter().any(|x| x == p);
    let mut input = None;
    if has("producer") || has("throughput") {
        input = Some(producer_phase(&mut bench).await?);
    }
    if has("throughput") {
        let input = input.as_deref().context("no input")?;
        throughput_phase(&mut bench, input).await?;
    }
    if has("latency") {
        latency_phase(&mut bench).await?;
    }
    if std::env::var("BENCH_SPARK").as_deref() == Ok("1") {
        // The Spark peer on this broker and this input (bench/spark/bench.py reads it from
        // BENCH_BOOTSTRAP and BENCH_INPUT), for the phases it has: throughput and latency.
        let spark_phases: Vec<&str> = ["throughput", "latency"]
            .into_iter()
            .filter(|p| has(p))
            .collect();
        if !spark_phases.is_empty() {
            let mut command = std::process::Command::new("bench/spark/run-bench.sh");
            command
                .env("BENCH_BOOTSTRAP", &bench.bootstrap)
                .env("BENCH_PHASES", spark_phases.join(","));
            if let Some(input) = input.as_deref() {
                command.env("BENCH_INPUT", input);
            }
            let status = tokio::task::spawn_blocking(move || command.status()).await??;
            anyhow::ensure!(status.success(), "the Spark peer failed: {status}");
        }
    }
    if has("memory") {
        memory_phase(&mut bench).await?;
    }
    print_summary(&bench);
    drop(broker);
    Ok(())
}
