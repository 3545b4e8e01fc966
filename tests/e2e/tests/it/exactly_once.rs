//! Exactly-once counts that survive crashes, rebalances and scaling out.
//!
//! Every test runs the real binaries against a real broker, feeds posts with a plain Kafka
//! client, and ends by comparing the full ranking of every window (`1m 5m 15m 1h 24h all`)
//! served by trends-api with a ground truth computed here, independently of the product's
//! code: the window rule as the README states it, lowercase for normalization (the test only
//! uses ASCII tags, for which that is the whole of NFKC + lowercase). An over-count in `all`
//! (a doubled record) fails at once; a lost record shows as a count that never arrives.
//!
//! The aggregators run with a 200 ms commit interval, a 6 s session timeout (the broker's
//! minimum) and a 10 s transaction timeout, so that a killed instance's open transaction does
//! not block `read_committed` readers for long. Timing bounds are generous: the machine running
//! these tests is small and shared.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{
    Lcg, ServiceProcess, Topics, free_port, get_json, get_text, metric_value, ranking, rfc3339,
    tail, wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};

const PARTITIONS: i32 = 12;
/// How long the API may take to show the final counts once production stopped.
const CONVERGE: Duration = Duration::from_secs(300);
/// How long the group may take to own every partition again after a membership change.
const OWNERSHIP: Duration = Duration::from_secs(90);
/// How long a service may take to start, stop, or process a little more.
const SERVICE: Duration = Duration::from_secs(120);
/// 2026-11-22T10:00:00Z, the watermark of the test data (the first post of every test).
const T0: i64 = 1_795_341_600_000;
const WINDOWS: [(&str, i64, i64); 5] = [
    ("1m", 60_000, 10_000),
    ("5m", 300_000, 10_000),
    ("15m", 900_000, 10_000),
    ("1h", 3_600_000, 10_000),
    ("24h", 86_400_000, 300_000),
];
/// Distinct hashtags of the generated posts: the whole ranking fits in one `limit=100` page.
const VOCABULARY: u64 = 60;
const ASSIGNED: &str = "trends_aggregator_assigned_partitions";
const PROCESSED: &str = "trends_aggregator_records_processed_total";
const DEAD_LETTERED: &str = "trends_aggregator_records_dead_lettered_total";
const LATE: &str = "trends_aggregator_records_late_total";
const COMMITTED: &str = "trends_aggregator_transactions_committed_total";

// ---------------------------------------------------------------------------------------------
// The stack: topics, aggregators, the API.
// ---------------------------------------------------------------------------------------------

/// The names and broker of one test's pipeline.
#[derive(Debug, Clone)]
struct Stack {
    bootstrap: String,
    tweets: String,
    counts: String,
    dlq: String,
    group: String,
}

/// One aggregator process and the URL of its metrics.
#[derive(Debug)]
struct Aggregator {
    instance: String,
    process: ServiceProcess,
    metrics: String,
}

impl Stack {
    /// Fresh topic and group names on `bootstrap`; creates the input topic with 12 partitions
    /// (the aggregator creates the counts and dead-letter topics co-partitioned with it).
    async fn new(bootstrap: &str) -> Stack {
        let stack = Stack {
            bootstrap: bootstrap.to_string(),
            tweets: unique_name("tweets"),
            counts: unique_name("counts"),
            dlq: unique_name("dlq"),
            group: unique_name("aggregator"),
        };
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin");
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    &stack.tweets,
                    PARTITIONS,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .expect("create topics");
        for r in results {
            r.expect("topic created");
        }
        stack
    }

    fn env(&self, extra: &[(&str, String)]) -> HashMap<String, String> {
        Topics {
            tweets: self.tweets.clone(),
            counts: self.counts.clone(),
            dlq: self.dlq.clone(),
        }
        .env(&self.bootstrap, PARTITIONS, extra)
    }

    /// Starts an aggregator with a stable instance id (a restart with the same id fences its
    /// predecessor's transactional producer at once).
    fn aggregator(&self, instance: &str) -> Aggregator {
        let port = free_port();
        let env = self.env(&[
            ("TRENDS__AGGREGATOR__GROUP_ID", self.group.clone()),
            ("TRENDS__AGGREGATOR__INSTANCE_ID", instance.to_string()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            ("TRENDS__AGGREGATOR__TRANSACTION_TIMEOUT_MS", "10000".into()),
            ("TRENDS__AGGREGATOR__SESSION_TIMEOUT_MS", "6000".into()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{port}"),
            ),
        ]);
        let process = ServiceProcess::start("hashtag-aggregator", &env).expect("start aggregator");
        Aggregator {
            instance: instance.to_string(),
            process,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    fn api(&self) -> (ServiceProcess, String) {
        let port = free_port();
        let env = self.env(&[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))]);
        let process = ServiceProcess::start("trends-api", &env).expect("start api");
        (process, format!("http://127.0.0.1:{port}"))
    }

    /// Records in the dead-letter topic, committed or not (the sum of its high watermarks): the
    /// test data is all valid, so any record there is something odd.
    async fn dead_letters(&self) -> i64 {
        let (bootstrap, topic) = (self.bootstrap.clone(), self.dlq.clone());
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .expect("consumer");
            (0..PARTITIONS)
                .map(|p| {
                    let (low, high) = consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(30))
                        .expect("watermarks");
                    high - low
                })
                .sum()
        })
        .await
        .expect("watermarks task")
    }
}

/// Reads one metric of an aggregator; `Err` while it does not answer.
async fn metric(client: &reqwest::Client, url: &str, name: &str) -> Result<f64, String> {
    let text = get_text(client, url).await?;
    metric_value(&text, name).ok_or_else(|| format!("{name} missing from {url}"))
}

/// Waits until the live instances together own all 12 partitions, each at least one, by the
/// `assigned_partitions` gauge of their metrics (updated every 5 s from librdkafka's
/// statistics). Prints and returns how long it took from `since`.
async fn wait_for_ownership(
    client: &reqwest::Client,
    live: &[&Supervisor],
    since: Instant,
    what: &str,
) -> Duration {
    let owned = wait_for(
        &format!("{what}: every partition owned"),
        OWNERSHIP,
        || async {
            let mut owned = Vec::new();
            for instance in live {
                let url = instance
                    .metrics()
                    .ok_or_else(|| format!("{} is restarting", instance.instance))?;
                owned.push((
                    instance.instance.clone(),
                    metric(client, &url, ASSIGNED).await? as i64,
                ));
            }
            let sum: i64 = owned.iter().map(|(_, n)| n).sum();
            if sum == i64::from(PARTITIONS) && owned.iter().all(|(_, n)| *n > 0) {
                Ok(owned)
            } else {
                Err(format!("{owned:?}"))
            }
        },
    )
    .await
    .expect("ownership");
    let took = since.elapsed();
    let restarts: Vec<String> = live
        .iter()
        .map(|i| format!("{}: {}", i.instance, i.exits().len()))
        .collect();
    eprintln!(
        "{what}: all {PARTITIONS} partitions owned {owned:?} after {took:.1?} (supervisor restarts so far: {restarts:?})"
    );
    took
}

// ---------------------------------------------------------------------------------------------
// Test data and the independent ground truth.
// ---------------------------------------------------------------------------------------------

/// One valid post: its JSON, where it goes, its event time and the normalized tags it counts
/// for.
#[derive(Debug, Clone)]
struct TestPost {
    id: String,
    json: Value,
    partition: i32,
    time: i64,
    tags: Vec<String>,
}

/// Post number `i` of a test, the same every time: post 0 is at `T0`; the others are spread
/// over 30 hours of event time in bands (< 1 min, < 5 min, < 15 min, < 1 h, < 24 h, older)
/// whose favourite tags differ, so every window ranks differently; some are older than the
/// 24 h allowed lateness and count in `all` only. Round-robin over the 12 partitions.
fn test_post(prefix: &str, i: usize) -> TestPost {
    let mut rng = Lcg(0x5eed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (band, age) = if i == 0 {
        (0, 0)
    } else {
        let (band, low, high) = match rng.next(100) {
            0..=19 => (0, 0, 60_000),
            20..=34 => (1, 60_000, 300_000),
            35..=49 => (2, 300_000, 900_000),
            50..=64 => (3, 900_000, 3_600_000),
            65..=89 => (4, 3_600_000, 86_400_000),
            _ => (5, 86_400_000, 108_000_000),
        };
        (band, low + rng.next(high - low))
    };
    let time = T0 - age as i64;
    let mut written: Vec<String> = Vec::new();
    for _ in 0..1 + rng.next(3) {
        // Low indices more often, shifted per band.
        let skewed = rng.next(VOCABULARY) * rng.next(VOCABULARY) / VOCABULARY;
        let index = (skewed + band * 9) % VOCABULARY;
        written.push(match rng.next(3) {
            0 => format!("tag{index:02}"),
            1 => format!("Tag{index:02}"),
            _ => format!("TAG{index:02}"),
        });
    }
    post_with_tags(prefix, i, time, &written)
}

/// A post with exactly these hashtags (as written).
fn post_with_tags(prefix: &str, i: usize, time: i64, written: &[String]) -> TestPost {
    let mut tags: Vec<String> = Vec::new();
    for w in written {
        let tag = w.to_lowercase();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let id = format!("{prefix}-{i}");
    let json = if i % 10 == 9 {
        // A source that extracted the tags itself: those are counted, not the text's.
        json!({"id": id, "text": "tags supplied by the source #ignored", "created_at": rfc3339(time),
               "source": "e2e", "hashtags": written})
    } else {
        let text: Vec<String> = written.iter().map(|w| format!("about #{w},")).collect();
        json!({"id": id, "text": format!("post {i}: {} end", text.join(" ")),
               "created_at": rfc3339(time), "lang": "en"})
    };
    TestPost {
        id,
        json,
        partition: (i % PARTITIONS as usize) as i32,
        time,
        tags,
    }
}

fn test_posts(prefix: &str, range: std::ops::Range<usize>) -> Vec<TestPost> {
    range.map(|i| test_post(prefix, i)).collect()
}

type Rankings = BTreeMap<String, Vec<(String, i64)>>;

/// How many posts the README's lateness rule makes late, for posts consumed in this order per
/// partition: a post is late when its 5-minute bucket is outside the 24 h window of its
/// partition's watermark so far (the default allowed lateness, 24 h, says the same).
fn expected_late(posts: &[TestPost]) -> usize {
    const COARSE: i64 = 300_000;
    const DAY: i64 = 86_400_000;
    let mut watermarks: HashMap<i32, i64> = HashMap::new();
    posts
        .iter()
        .filter(|post| {
            let watermark = watermarks.entry(post.partition).or_insert(post.time);
            *watermark = (*watermark).max(post.time);
            let bucket = |t: i64| t.div_euclid(COARSE) * COARSE;
            bucket(post.time) <= bucket(*watermark) - DAY || post.time < *watermark - DAY
        })
        .count()
}

/// Expected ranking per window, as the README defines them: the newest bucket is the one
/// holding the watermark (the latest event time); count descending, then tag ascending.
fn expected(posts: &[TestPost]) -> Rankings {
    let watermark = posts.iter().map(|p| p.time).max().unwrap_or(0);
    let mut result = BTreeMap::new();
    let mut windows: Vec<(&str, Option<(i64, i64)>)> = WINDOWS
        .iter()
        .map(|(n, d, b)| (*n, Some((*d, *b))))
        .collect();
    windows.push(("all", None));
    for (name, spec) in windows {
        let mut counts: HashMap<String, i64> = HashMap::new();
        for post in posts {
            let inside = match spec {
                None => true,
                Some((duration, bucket)) => {
                    let newest = watermark.div_euclid(bucket) * bucket;
                    let start = post.time.div_euclid(bucket) * bucket;
                    start > newest - duration && start <= newest
                }
            };
            if inside {
                for tag in &post.tags {
                    *counts.entry(tag.clone()).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(String, i64)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        result.insert(name.to_string(), ranked);
    }
    result
}

/// The test data covers every window, differently, and fits one page of the API.
fn assert_covers_windows(expected: &Rankings) {
    let rankings: Vec<&Vec<(String, i64)>> = expected.values().collect();
    for (i, a) in rankings.iter().enumerate() {
        assert!(!a.is_empty() && a.len() <= 100, "{expected:?}");
        for b in &rankings[i + 1..] {
            assert_ne!(a, b, "two windows would rank alike");
        }
    }
}

/// A short description of how `seen` differs from `want`.
fn difference(seen: &[(String, i64)], want: &[(String, i64)]) -> String {
    let seen_map: BTreeMap<&str, i64> = seen.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    let want_map: BTreeMap<&str, i64> = want.iter().map(|(t, c)| (t.as_str(), *c)).collect();
    let mut tags: Vec<&str> = seen_map.keys().chain(want_map.keys()).copied().collect();
    tags.sort_unstable();
    tags.dedup();
    let differing: Vec<String> = tags
        .into_iter()
        .filter(|t| seen_map.get(t) != want_map.get(t))
        .take(6)
        .map(|t| {
            format!(
                "{t}: {} want {}",
                seen_map.get(t).unwrap_or(&0),
                want_map.get(t).unwrap_or(&0)
            )
        })
        .collect();
    format!(
        "total {} want {}; {}",
        seen_map.values().sum::<i64>(),
        want_map.values().sum::<i64>(),
        if differing.is_empty() {
            "same counts, different order".to_string()
        } else {
            differing.join(", ")
        }
    )
}

/// Waits until the API serves exactly `expected` in every window, then checks every window
/// once more in one pass. Fails at once if any tag's all-time count ever exceeds the truth:
/// committed all-time counts only grow, so an over-count is a doubled record for good.
async fn assert_exact_counts(client: &reqwest::Client, base: &str, expected: &Rankings) {
    let started = Instant::now();
    let want_all: HashMap<&str, i64> = expected["all"]
        .iter()
        .map(|(t, c)| (t.as_str(), *c))
        .collect();
    let url = |window: &str| format!("{base}/api/v1/trends?window={window}&limit=100");
    wait_for("all-time counts to match", CONVERGE, || async {
        let (status, body) = get_json(client, &url("all")).await?;
        if status != 200 {
            return Err(format!("HTTP {status}: {body}"));
        }
        let seen = ranking(&body);
        for (tag, count) in &seen {
            let want = want_all.get(tag.as_str()).copied().unwrap_or(0);
            assert!(
                *count <= want,
                "#{tag} counted {count} times in `all` but posted {want} times: a record was counted twice"
            );
        }
        if seen == expected["all"] {
            Ok(())
        } else {
            Err(difference(&seen, &expected["all"]))
        }
    })
    .await
    .expect("all-time counts converge");
    // The last transaction's bucket records may land in the next snapshot.
    for (window, want) in expected {
        wait_for(&format!("window {window} to match"), SERVICE, || async {
            let (_, body) = get_json(client, &url(window)).await?;
            let seen = ranking(&body);
            if &seen == want {
                Ok(())
            } else {
                Err(difference(&seen, want))
            }
        })
        .await
        .expect("window converges");
    }
    for (window, want) in expected {
        let (status, body) = get_json(client, &url(window)).await.expect("trends");
        assert_eq!(status, 200);
        assert_eq!(body["watermark"], rfc3339(T0), "watermark");
        assert_eq!(&ranking(&body), want, "window {window}");
    }
    eprintln!(
        "counts exact in every window ({} posts' tags in `all`) after {:.1?}",
        expected["all"].iter().map(|(_, c)| c).sum::<i64>(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Producing.
// ---------------------------------------------------------------------------------------------

/// An idempotent producer of the kind a client of the pipeline would use.
fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "200000")
        // Reconnect quickly after a broker restart.
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .expect("producer")
}

/// Sends the posts with many sends in flight (chunks of 5,000) and waits until every one is
/// acknowledged. Panics on any failed delivery: the ground truth must be certain.
async fn produce(producer: &FutureProducer, topic: &str, posts: &[TestPost]) {
    for chunk in posts.chunks(5_000) {
        let mut in_flight = Vec::with_capacity(chunk.len());
        for post in chunk {
            let payload = post.json.to_string();
            let record = FutureRecord::to(topic)
                .key(&post.id)
                .payload(&payload)
                .partition(post.partition)
                .timestamp(post.time);
            match producer.send_result(record) {
                Ok(delivery) => in_flight.push(delivery),
                Err((e, _)) => panic!("cannot enqueue post {}: {e}", post.id),
            }
        }
        for (post, delivery) in chunk.iter().zip(in_flight) {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => panic!("post {} was not delivered: {e}", post.id),
                Err(_) => panic!("the producer dropped post {}", post.id),
            }
        }
    }
}

/// Produces posts `0, 1, 2, ...` of a test in rounds (`round` posts, then a short pause to
/// pace the load) until stopped; every post of a finished round is acknowledged.
#[derive(Debug)]
struct Feeder {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<usize>,
}

impl Feeder {
    fn start(bootstrap: &str, topic: &str, prefix: &str, round: usize, pause: Duration) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let producer = producer(bootstrap);
        let (topic, prefix) = (topic.to_string(), prefix.to_string());
        let task = tokio::spawn({
            let (stop, acked) = (stop.clone(), acked.clone());
            async move {
                let mut next = 0;
                while !stop.load(Ordering::Acquire) {
                    let posts = test_posts(&prefix, next..next + round);
                    produce(&producer, &topic, &posts).await;
                    next += round;
                    acked.store(next, Ordering::Release);
                    tokio::time::sleep(pause).await;
                }
                next
            }
        });
        Feeder { stop, acked, task }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::Acquire)
    }

    /// Waits until `more` posts beyond those acknowledged now are acknowledged.
    async fn wait_for_more(&self, more: usize) {
        let target = self.acked() + more;
        wait_for(&format!("{target} posts produced"), SERVICE, || async {
            assert!(!self.task.is_finished(), "the feeder stopped");
            let acked = self.acked();
            if acked >= target {
                Ok(())
            } else {
                Err(format!("{acked}"))
            }
        })
        .await
        .expect("feeder progresses");
    }

    /// Stops after the current round; returns how many posts were produced (all acked).
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Release);
        self.task.await.expect("feeder")
    }
}

/// Waits until an aggregator's metric reaches `at_least`.
async fn wait_for_metric(
    client: &reqwest::Client,
    aggregator: &Aggregator,
    name: &str,
    at_least: f64,
) -> f64 {
    wait_for(
        &format!("{} {name} >= {at_least}", aggregator.instance),
        SERVICE,
        || async {
            let value = metric(client, &aggregator.metrics, name).await?;
            if value >= at_least {
                Ok(value)
            } else {
                Err(format!("{value}"))
            }
        },
    )
    .await
    .expect("metric")
}

// ---------------------------------------------------------------------------------------------
// A supervisor, like Docker's `restart: unless-stopped`.
// ---------------------------------------------------------------------------------------------

/// A log line without its terminal colour codes.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC '[' parameters, up to a final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How a test takes an instance away for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// SIGTERM: commit, leave the group, exit 0.
    Term,
    /// `kill -9`.
    Kill,
}

/// One exit of a supervised incarnation.
#[derive(Debug, Clone)]
struct Exit {
    status: std::process::ExitStatus,
    /// The service's last log line saying why it stopped, if any.
    reason: String,
    log: String,
}

#[derive(Debug, Default)]
struct SupervisorState {
    current: Option<Aggregator>,
    exits: Vec<Exit>,
}

/// Runs one aggregator instance and starts it again (same instance id, after 1 s) whenever it
/// exits, like Docker's `restart: unless-stopped`: the aggregator's failure policy is to exit
/// on any transaction error and leave the restart to a supervisor.
#[derive(Debug)]
struct Supervisor {
    instance: String,
    state: Arc<Mutex<SupervisorState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Supervisor {
    fn start(stack: &Stack, instance: &str) -> Supervisor {
        let state = Arc::new(Mutex::new(SupervisorState {
            current: Some(stack.aggregator(instance)),
            exits: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (state, stop, stack, instance) = (
                state.clone(),
                stop.clone(),
                stack.clone(),
                instance.to_string(),
            );
            move || {
                while !stop.load(Ordering::Acquire) {
                    let exited = {
                        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                        let status = s.current.as_mut().and_then(|a| a.process.exit_status());
                        if let Some(status) = status {
                            let dead = s.current.take().expect("current");
                            let log = dead.process.log();
                            let reason = log
                                .lines()
                                .rev()
                                .find(|l| l.contains("hashtag-aggregator stopped"))
                                .map_or_else(|| "(no final log line)".to_string(), plain);
                            eprintln!(
                                "supervisor: {instance} exited ({status}); restarting it in 1 s. {reason}"
                            );
                            s.exits.push(Exit {
                                status,
                                reason,
                                log: tail(&log, 40),
                            });
                        }
                        s.current.is_none()
                    };
                    if exited {
                        std::thread::sleep(Duration::from_secs(1));
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let next = stack.aggregator(&instance);
                        state.lock().unwrap_or_else(|p| p.into_inner()).current = Some(next);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Supervisor {
            instance: instance.to_string(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SupervisorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metrics URL of the running incarnation.
    fn metrics(&self) -> Option<String> {
        self.lock().current.as_ref().map(|a| a.metrics.clone())
    }

    fn exits(&self) -> Vec<Exit> {
        self.lock().exits.clone()
    }

    /// Sends a signal to the running incarnation.
    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        match self.lock().current.as_ref() {
            Some(a) => a.process.signal(signal),
            None => anyhow::bail!("{} is restarting", self.instance),
        }
    }

    /// Waits until an incarnation exits for the `n`th time (counting from 1) and returns how.
    async fn wait_for_exit(&self, n: usize) -> Exit {
        wait_for(&format!("{} to exit", self.instance), SERVICE, || async {
            let exits = self.exits();
            exits
                .get(n - 1)
                .cloned()
                .ok_or_else(|| "still running".to_string())
        })
        .await
        .expect("exit")
    }

    /// Stops supervising, then stops the running incarnation the given way; returns its exit
    /// code (`None` after a SIGKILL).
    fn remove(mut self, how: Removal) -> Option<i32> {
        let deadline = Instant::now() + SERVICE;
        while self.metrics().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("supervisor thread");
        }
        let mut s = self.lock();
        let current = s.current.as_mut().expect("a running incarnation");
        match how {
            Removal::Term => current
                .process
                .terminate(SERVICE)
                .expect("SIGTERM the aggregator"),
            Removal::Kill => {
                current.process.kill_9().expect("kill -9 the aggregator");
                None
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if std::thread::panicking() {
            for (i, exit) in self.lock().exits.iter().enumerate() {
                eprintln!(
                    "---- {} incarnation {} exited ({}) ----\n{}",
                    self.instance,
                    i + 1,
                    exit.status,
                    exit.log
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// 100,000 posts over 12 partitions, produced with thousands of sends in flight, are counted
/// exactly by one aggregator in every window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_aggregator_counts_100k_posts_over_12_partitions_exactly() {
    let started = Instant::now();
    let stack = Stack::new(KafkaBroker::shared().bootstrap_servers()).await;
    let mut aggregator = stack.aggregator("solo");
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();

    let posts = test_posts("bulk", 0..100_000);
    let expected = expected(&posts);
    assert_covers_windows(&expected);
    let producing = Instant::now();
    produce(&producer(&stack.bootstrap), &stack.tweets, &posts).await;
    eprintln!(
        "produced {} posts in {:.1?}",
        posts.len(),
        producing.elapsed()
    );

    assert_exact_counts(&client, &base, &expected).await;
    let text = get_text(&client, &aggregator.metrics)
        .await
        .expect("metrics");
    assert_eq!(metric_value(&text, PROCESSED), Some(posts.len() as f64));
    assert_eq!(metric_value(&text, DEAD_LETTERED), Some(0.0));
    let late = expected_late(&posts);
    assert!(late > 1_000, "the data has late posts: {late}");
    assert_eq!(metric_value(&text, LATE), Some(late as f64), "late posts");
    assert_eq!(stack.dead_letters().await, 0);
    assert_eq!(
        aggregator.process.terminate(SERVICE).expect("terminate"),
        Some(0)
    );
    eprintln!("test took {:.1?}", started.elapsed());
}

/// The aggregator is `kill -9`ed four times while posts keep arriving, at different moments
/// (in steady state, while catching up a backlog right after a restart, during start-up before
/// it owns anything, and in steady state again), and restarted each time with the same
/// instance id. No count is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_never_loses_or_doubles_a_count() {
    let started = Instant::now();
    let stack = Stack::new(KafkaBroker::shared().bootstrap_servers()).await;
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();
    let mut aggregator = stack.aggregator("solo");
    let feeder = Feeder::start(
        &stack.bootstrap,
        &stack.tweets,
        "kill9",
        120,
        Duration::from_millis(100),
    );

    let moments = [
        "in steady state",
        "while catching up right after a restart",
        "during start-up",
        "in steady state, after a few commits",
    ];
    for (kill, moment) in moments.iter().enumerate() {
        match kill {
            0 => {
                wait_for_metric(&client, &aggregator, PROCESSED, 2_000.0).await;
            }
            1 => {
                wait_for_metric(&client, &aggregator, PROCESSED, 1.0).await;
            }
            2 => {
                // The metrics server answers right after start-up, before the group is joined.
                wait_for_metric(&client, &aggregator, PROCESSED, 0.0).await;
            }
            _ => {
                wait_for_metric(&client, &aggregator, COMMITTED, 5.0).await;
                feeder.wait_for_more(300).await;
            }
        }
        let processed = metric(&client, &aggregator.metrics, PROCESSED)
            .await
            .unwrap_or(-1.0);
        aggregator.process.kill_9().expect("kill -9");
        eprintln!(
            "kill -9 #{} {moment}: that incarnation had processed {processed} records; {} posts produced so far",
            kill + 1,
            feeder.acked()
        );
        aggregator = stack.aggregator("solo");
    }
    wait_for_metric(&client, &aggregator, PROCESSED, 1.0).await;
    feeder.wait_for_more(500).await;
    let produced = feeder.stop().await;
    eprintln!("produced {produced} posts");

    let expected = expected(&test_posts("kill9", 0..produced));
    assert_covers_windows(&expected);
    assert_exact_counts(&client, &base, &expected).await;
    let text = get_text(&client, &aggregator.metrics)
        .await
        .expect("metrics");
    assert_eq!(metric_value(&text, DEAD_LETTERED), Some(0.0), "{text}");
    assert_eq!(stack.dead_letters().await, 0, "nothing dead-lettered");
    assert_eq!(
        aggregator.process.terminate(SERVICE).expect("terminate"),
        Some(0)
    );
    eprintln!("test took {:.1?}", started.elapsed());
}

/// One instance, then three, then two (one stopped with SIGTERM), then one (one `kill -9`ed),
/// while posts keep arriving. After each change every partition is owned again within the
/// bound (the observed times are printed), and the final counts are exact. Each instance runs
/// under a supervisor, as the aggregator's failure policy expects: an instance whose commit
/// meets a rebalance (the group's generation moved on) exits and is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_1_3_1_keeps_counts_exact_and_partitions_owned() {
    let started = Instant::now();
    let stack = Stack::new(KafkaBroker::shared().bootstrap_servers()).await;
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();
    let feeder = Feeder::start(
        &stack.bootstrap,
        &stack.tweets,
        "scale",
        120,
        Duration::from_millis(100),
    );

    let change = Instant::now();
    let a = Supervisor::start(&stack, "a");
    wait_for_ownership(&client, &[&a], change, "1 instance (start)").await;
    feeder.wait_for_more(500).await;

    let change = Instant::now();
    let b = Supervisor::start(&stack, "b");
    let c = Supervisor::start(&stack, "c");
    wait_for_ownership(&client, &[&a, &b, &c], change, "1 -> 3 instances").await;
    feeder.wait_for_more(500).await;

    let change = Instant::now();
    assert_eq!(
        c.remove(Removal::Term),
        Some(0),
        "a SIGTERMed instance commits, leaves the group and exits 0"
    );
    wait_for_ownership(&client, &[&a, &b], change, "3 -> 2 instances (SIGTERM c)").await;
    feeder.wait_for_more(500).await;

    let change = Instant::now();
    b.remove(Removal::Kill);
    wait_for_ownership(&client, &[&a], change, "2 -> 1 instance (kill -9 b)").await;
    feeder.wait_for_more(500).await;

    let produced = feeder.stop().await;
    eprintln!("produced {produced} posts");
    let expected = expected(&test_posts("scale", 0..produced));
    assert_covers_windows(&expected);
    assert_exact_counts(&client, &base, &expected).await;
    assert_eq!(stack.dead_letters().await, 0, "nothing dead-lettered");
    assert_eq!(a.remove(Removal::Term), Some(0));
    eprintln!("test took {:.1?}", started.elapsed());
}

/// A private broker is restarted while posts keep arriving. The aggregator exits on the
/// transaction errors this causes (its designed failure policy) and is restarted by a
/// supervisor; the API reconnects by itself. The final counts are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_keeps_counts_exact() {
    let started = Instant::now();
    let mut broker = tokio::task::spawn_blocking(KafkaBroker::start)
        .await
        .expect("broker task")
        .expect("private broker");
    let stack = Stack::new(broker.bootstrap_servers()).await;
    let aggregator = Supervisor::start(&stack, "solo");
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();
    let feeder = Feeder::start(
        &stack.bootstrap,
        &stack.tweets,
        "restart",
        120,
        Duration::from_millis(100),
    );
    wait_for("the aggregator to count", SERVICE, || async {
        let url = aggregator.metrics().ok_or("restarting")?;
        match metric(&client, &url, COMMITTED).await? {
            n if n >= 5.0 => Ok(()),
            n => Err(format!("{n} transactions")),
        }
    })
    .await
    .expect("aggregator counts");
    feeder.wait_for_more(1_000).await;

    let restart = Instant::now();
    let before = feeder.acked();
    broker = tokio::task::spawn_blocking(move || {
        broker.restart().expect("restart broker");
        broker
    })
    .await
    .expect("restart task");
    eprintln!(
        "broker restarted in {:.1?} ({before} posts produced before)",
        restart.elapsed()
    );
    feeder.wait_for_more(2_000).await;
    let produced = feeder.stop().await;
    eprintln!("produced {produced} posts");

    let expected = expected(&test_posts("restart", 0..produced));
    assert_covers_windows(&expected);
    assert_exact_counts(&client, &base, &expected).await;
    let exits = aggregator.exits();
    eprintln!(
        "the supervisor restarted the aggregator {} times: {:?}",
        exits.len(),
        exits
            .iter()
            .map(|e| format!("{}: {}", e.status, e.reason))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        aggregator.remove(Removal::Term),
        Some(0),
        "the last incarnation stops cleanly"
    );
    drop(broker);
    eprintln!("test took {:.1?}", started.elapsed());
}

/// The guarantee: **the idempotent producer deduplicates its own retries within one producer
/// session; the aggregator does not deduplicate by post id.** A post sent again by a new
/// producer (say, a client that crashed after sending and resends on restart) under the same
/// id is counted twice. Tested with two separate producer instances sending the same posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_resent_under_the_same_id_counts_twice() {
    let stack = Stack::new(KafkaBroker::shared().bootstrap_servers()).await;
    let mut aggregator = stack.aggregator("solo");
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();

    let mut posts = test_posts("resend", 0..600);
    posts.push(post_with_tags(
        "resend",
        600,
        T0 - 30_000,
        &["ResentOnce".to_string()],
    ));
    let first = producer(&stack.bootstrap);
    produce(&first, &stack.tweets, &posts).await;
    first.flush(Duration::from_secs(30)).expect("flush");
    drop(first);

    // A new producer session resends the last 100 posts and the special one, same ids.
    let resent: Vec<TestPost> = posts[posts.len() - 101..].to_vec();
    produce(&producer(&stack.bootstrap), &stack.tweets, &resent).await;
    posts.extend(resent);

    let expected = expected(&posts);
    assert_covers_windows(&expected);
    let twice = expected["all"]
        .iter()
        .find(|(t, _)| t == "resentonce")
        .map(|(_, c)| *c);
    assert_eq!(
        twice,
        Some(2),
        "the ground truth counts the resent post twice"
    );
    assert_exact_counts(&client, &base, &expected).await;
    let (status, body) = get_json(&client, &format!("{base}/api/v1/hashtags/ResentOnce"))
        .await
        .expect("hashtag");
    assert_eq!(
        (status, body["counts"]["all"].as_i64()),
        (200, Some(2)),
        "{body}"
    );
    assert_eq!(
        aggregator.process.terminate(SERVICE).expect("terminate"),
        Some(0)
    );
}

/// Two instances; A is frozen with SIGSTOP past the session timeout while posts keep arriving,
/// B takes all 12 partitions and counts on; then A is resumed with SIGCONT. A must not commit
/// what it counted before it froze. What the design gives: A's next commit carries its old
/// group membership, so the group coordinator rejects the offsets of its transaction (unknown
/// member, KIP-447 fencing) or A's partitions are reported lost; either way A aborts and exits
/// non-zero, and its supervisor starts it again (same instance id), after which it gets its
/// share of the partitions back with state restored from committed counts. Final counts exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_zombie_cannot_commit_stale_counts() {
    let started = Instant::now();
    let stack = Stack::new(KafkaBroker::shared().bootstrap_servers()).await;
    let (_api, base) = stack.api();
    let client = reqwest::Client::new();
    let feeder = Feeder::start(
        &stack.bootstrap,
        &stack.tweets,
        "zombie",
        120,
        Duration::from_millis(100),
    );
    let a = Supervisor::start(&stack, "a");
    let b = Supervisor::start(&stack, "b");
    wait_for_ownership(&client, &[&a, &b], started, "2 instances").await;
    feeder.wait_for_more(500).await;

    // A commit that meets the rebalance of B's arrival makes an instance exit and restart (the
    // failure policy); let the group settle with both running before freezing A.
    wait_for_ownership(&client, &[&a, &b], Instant::now(), "2 instances, settled").await;
    let pause = Instant::now();
    wait_for("SIGSTOP to reach a running A", SERVICE, || async {
        a.signal("STOP").map_err(|e| e.to_string())
    })
    .await
    .expect("SIGSTOP a");
    // Read after the stop: a stopped process cannot exit by itself.
    let exits_before = a.exits().len();
    wait_for_ownership(&client, &[&b], pause, "A frozen (SIGSTOP)").await;
    // B counts on with A's former partitions.
    let b_url = b.metrics().expect("b runs");
    let b_owning = metric(&client, &b_url, PROCESSED).await.expect("b metrics");
    feeder.wait_for_more(1_000).await;
    wait_for("B to count 1,000 more records", SERVICE, || async {
        let url = b.metrics().ok_or("restarting")?;
        let processed = metric(&client, &url, PROCESSED).await?;
        if url != b_url || processed >= b_owning + 1_000.0 {
            Ok(())
        } else {
            Err(format!("{processed}"))
        }
    })
    .await
    .expect("B counts");

    a.signal("CONT").expect("SIGCONT a");
    let frozen = pause.elapsed();
    let zombie = a.wait_for_exit(exits_before + 1).await;
    eprintln!(
        "A was frozen for {frozen:.1?}; after SIGCONT it exited ({}): {}",
        zombie.status, zombie.reason
    );
    assert_eq!(
        zombie.status.code(),
        Some(1),
        "A exits non-zero:\n{}",
        zombie.log
    );
    assert!(
        zombie.reason.contains("Unknown member")
            || zombie.reason.contains("were lost")
            || zombie.reason.contains("fenced"),
        "A stops because its membership is gone or its producer fenced: {}",
        zombie.reason
    );

    let restart = Instant::now();
    wait_for_ownership(&client, &[&a, &b], restart, "A restarted by its supervisor").await;
    feeder.wait_for_more(500).await;
    let produced = feeder.stop().await;
    eprintln!("produced {produced} posts");

    let expected = expected(&test_posts("zombie", 0..produced));
    assert_covers_windows(&expected);
    assert_exact_counts(&client, &base, &expected).await;
    assert_eq!(stack.dead_letters().await, 0, "nothing dead-lettered");
    eprintln!(
        "exits: A {:?}, B {:?}",
        a.exits()
            .iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>(),
        b.exits()
            .iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
    );
    for instance in [a, b] {
        assert_eq!(instance.remove(Removal::Term), Some(0));
    }
    eprintln!("test took {:.1?}", started.elapsed());
}
