//! Hostile input on a real broker: every kind of poison a live feed or a careless client can
//! write is followed by ordinary posts that must be counted exactly, and the aggregator never
//! exits (README, "What bad input gets").
//!
//! Each test runs its own aggregator and API:
//! - `oversized_…`: in turn, a ~600 KB post whose `#A` + 600,000 letters would be an all-time
//!   key over the record limit (it also carries `#fine`, which counts); a post whose
//!   `created_at` is 600 KB of digits (dead-lettered; the reason stays short); a malformed
//!   record just under the broker's limit, whose dead-letter copy cannot fit a record (written
//!   truncated, with the original's size and SHA-256); a ~1 MB post with ~166,000 distinct
//!   tags (the first 30 count, the rest are counted as dropped); a record whose key is not
//!   UTF-8 (its dead letter keeps the key's bytes). Before this was fixed, the first of them
//!   made the aggregator exit at every start: a crash loop;
//! - `a_post_dated_ahead_…`: posts of "now" and one post dated 290 s ahead: `1m` and `5m`
//!   hold exactly the posts of now (the ahead post counts at its ingest time), the watermark
//!   does not jump ahead; a post 10 minutes ahead is dead-lettered;
//! - `garbage_in_the_counts_topic_…`: an `i64::MAX`-ish watermark, a negative count, an
//!   undecodable key and an out-of-range bucket written straight into the counts topic: the
//!   API skips and counts them and goes on serving; a restarted aggregator restores through
//!   them and counts on exactly.
//!
//! The expected counts are computed here from what the test wrote, with the README's rules;
//! the tags used are ASCII, for which normalization is lowercasing.

use std::collections::BTreeMap;
use std::time::Duration;
use trends_common::time::now_ms;

use e2e::{
    ServiceProcess, Topics, get_json, get_text, metric_value, ranking, read_dead_letters, rfc3339,
    wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 3;
/// The broker's default `max.message.bytes`, which the services give the topics they create.
const BROKER_LIMIT: usize = 1_048_588;
/// Tags of the ordinary posts.
const ORDINARY: [&str; 4] = ["rust", "kafka", "zig", "go"];

/// A client like any other, allowed to send records up to the broker's limit.
fn big_producer() -> FutureProducer {
    ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .set("message.max.bytes", "2000000")
        .set("batch.size", "2000000")
        .set("compression.type", "none")
        .create()
        .expect("producer")
}

/// What the test wrote, as the README says it must be counted.
#[derive(Debug, Default)]
struct Truth {
    all: BTreeMap<String, i64>,
    /// Counts of the posts in the `1m` and `5m` windows (the stage of "now").
    recent: BTreeMap<String, i64>,
    dead_letters: usize,
}

impl Truth {
    fn count(&mut self, tags: &[String]) {
        for tag in tags {
            *self.all.entry(tag.clone()).or_default() += 1;
        }
    }

    fn ranked(counts: &BTreeMap<String, i64>) -> Vec<(String, i64)> {
        let mut list: Vec<(String, i64)> = counts.iter().map(|(t, c)| (t.clone(), *c)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }
}

struct Stack {
    topics: Topics,
    group: String,
    aggregator: ServiceProcess,
    metrics_url: String,
    base: String,
    _api: ServiceProcess,
    producer: FutureProducer,
    client: reqwest::Client,
    truth: Truth,
    sequence: usize,
}

impl Stack {
    fn aggregator(topics: &Topics, group: &str) -> (ServiceProcess, String) {
        let started = topics.start_aggregator(
            KafkaBroker::shared().bootstrap_servers(),
            PARTITIONS,
            group,
            &[],
        );
        (started.process, started.url)
    }

    async fn start() -> Stack {
        let topics = Topics::unique("hostile-");
        let group = unique_name("hostile-aggregator");
        let (aggregator, metrics_url) = Stack::aggregator(&topics, &group);
        let api = topics.start_api(KafkaBroker::shared().bootstrap_servers(), PARTITIONS);
        let stack = Stack {
            topics,
            group,
            aggregator,
            metrics_url,
            base: api.url,
            _api: api.process,
            producer: big_producer(),
            client: reqwest::Client::new(),
            truth: Truth::default(),
            sequence: 0,
        };
        // The aggregator creates the topics (the input with LogAppendTime timestamps).
        let metrics_url = stack.metrics_url.clone();
        let client = stack.client.clone();
        wait_for("the aggregator to serve metrics", WAIT, || async {
            get_text(&client, &metrics_url).await.map(|_| ())
        })
        .await
        .expect("aggregator up");
        stack
    }

    /// Writes one record to the input topic, with the client's timestamp set to `timestamp`.
    async fn send(&self, key: &[u8], value: &[u8], timestamp: Option<i64>) {
        let mut record = FutureRecord::to(&self.topics.tweets)
            .key(key)
            .payload(value);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("the broker takes the record");
    }

    /// A valid post with `text`, dated `time`, its client timestamp set to the same.
    async fn post(&mut self, text: &str, time: i64) {
        self.sequence += 1;
        let id = format!("post-{}", self.sequence);
        let json = json!({"id": id, "text": text, "created_at": rfc3339(time)}).to_string();
        self.send(id.as_bytes(), json.as_bytes(), Some(time)).await;
    }

    /// 60 ordinary posts dated three hours ago, then waits until the API's `all` window
    /// equals everything the test expects, and checks the aggregator is still running.
    async fn ordinary_batch_counted(&mut self, stage: &str) {
        let base = now_ms() - 3 * 3_600_000;
        for i in 0..60usize {
            let tags: Vec<String> = ORDINARY
                .iter()
                .enumerate()
                .filter(|(k, _)| (i + k) % 3 != 0)
                .map(|(_, t)| t.to_string())
                .collect();
            let text: String = tags.iter().map(|t| format!("#{t} ")).collect();
            self.post(&format!("ordinary {i}: {text}"), base + i as i64)
                .await;
            self.truth.count(&tags);
        }
        self.wait_all(stage).await;
        assert!(
            self.aggregator.is_running(),
            "the aggregator exited during stage {stage}:\n{}",
            e2e::tail(&self.aggregator.log(), 40)
        );
    }

    async fn wait_all(&self, stage: &str) {
        let expected = Truth::ranked(&self.truth.all);
        let url = format!("{}/api/v1/trends?window=all&limit=100", self.base);
        wait_for(
            &format!("exact all-time counts after {stage}"),
            WAIT,
            || async {
                let (_, body) = get_json(&self.client, &url).await?;
                let seen = ranking(&body);
                if seen == expected {
                    Ok(())
                } else {
                    Err(format!("{seen:?} != {expected:?}"))
                }
            },
        )
        .await
        .expect("counts converge");
    }

    async fn metrics(&self) -> String {
        get_text(&self.client, &self.metrics_url)
            .await
            .expect("metrics")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_records_are_dead_lettered_or_dropped_and_counting_goes_on() {
    let mut stack = Stack::start().await;
    stack.ordinary_batch_counted("the first batch").await;

    // 1. A tag longer than any network allows, in a post that also has an ordinary tag.
    let long = format!("#fine #A{} end", "b".repeat(600_000));
    stack.post(&long, now_ms() - 3 * 3_600_000).await;
    stack.truth.count(&["fine".to_string()]);
    stack.ordinary_batch_counted("a 600,000-letter tag").await;

    // 2. A created_at of 600 KB: dead-lettered whole, its reason short.
    let huge_time = format!(
        r##"{{"id":"huge-time","text":"#rust","created_at":"2026-{}"}}"##,
        "9".repeat(600_000)
    );
    stack
        .send(b"huge-time", huge_time.as_bytes(), Some(now_ms()))
        .await;
    stack.truth.dead_letters += 1;
    stack.ordinary_batch_counted("a 600 KB created_at").await;

    // 3. A malformed record just under the broker's limit: its copy cannot fit a record.
    let near_limit: Vec<u8> = (0..BROKER_LIMIT - 200)
        .map(|i| b"not json "[i % 9])
        .collect();
    stack.send(b"near-limit", &near_limit, Some(now_ms())).await;
    stack.truth.dead_letters += 1;
    stack
        .ordinary_batch_counted("a record at the size limit")
        .await;

    // 4. ~166,000 distinct tags in one post: the first 30 count, the rest are dropped.
    let mut many = String::new();
    let mut occurrences = 0usize;
    while many.len() < 1_000_000 {
        many.push_str(&format!("#t{occurrences} "));
        occurrences += 1;
    }
    stack.post(&many, now_ms() - 3 * 3_600_000).await;
    let first_30: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
    stack.truth.count(&first_30);
    // And a record whose key is not UTF-8 (nor its value).
    let odd_key = [0xff, 0xfe, 0x00, b'k', 0xc3];
    stack.send(&odd_key, &[0xff, 0xfe, b'#'], None).await;
    stack.truth.dead_letters += 1;
    stack.ordinary_batch_counted("166,000 tags in a post").await;

    // Every dead letter, and what it says.
    let dead = read_dead_letters(&stack.topics.dlq, stack.truth.dead_letters, WAIT).await;
    assert_eq!(dead.len(), stack.truth.dead_letters, "{dead:?}");
    let by_key = |key: &[u8]| {
        dead.iter()
            .find(|d| d.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no dead letter with key {key:?}"))
    };
    for letter in &dead {
        let reason = &letter.headers["dlq.error.reason"];
        assert!(
            !reason.is_empty() && reason.len() <= 512,
            "reason of {} bytes",
            reason.len()
        );
    }
    let huge = by_key(b"huge-time");
    assert_eq!(huge.headers["dlq.error.code"], "bad_timestamp");
    assert_eq!(
        huge.value,
        huge_time.as_bytes(),
        "a copy that fits is whole"
    );
    assert!(!huge.headers.contains_key("dlq.truncated"));
    let cut = by_key(b"near-limit");
    assert_eq!(cut.headers["dlq.error.code"], "invalid_json");
    assert_eq!(cut.headers["dlq.truncated"], "true");
    assert_eq!(
        cut.headers["dlq.original.size"],
        near_limit.len().to_string()
    );
    assert_eq!(
        cut.headers["dlq.original.sha256"],
        hex(&Sha256::digest(&near_limit))
    );
    assert!(cut.value.len() < 1_000_000 && near_limit.starts_with(&cut.value));
    let odd = by_key(&odd_key);
    assert_eq!(odd.headers["dlq.error.code"], "not_utf8");
    assert_eq!(odd.value, [0xff, 0xfe, b'#']);

    // The aggregator accounts for what it dropped.
    let metrics = stack.metrics().await;
    let metric = |name: &str| metric_value(&metrics, name).unwrap_or(-1.0);
    assert_eq!(
        metric("trends_aggregator_tags_dropped_total{reason=\"too_long\"}"),
        1.0
    );
    assert_eq!(
        metric("trends_aggregator_tags_dropped_total{reason=\"over_limit\"}"),
        (occurrences - 30) as f64
    );
    assert_eq!(metric("trends_aggregator_posts_over_tag_limit_total"), 1.0);
    assert_eq!(
        metric("trends_aggregator_dead_letters_truncated_total"),
        1.0
    );
    assert_eq!(
        metric("trends_aggregator_records_dead_lettered_total"),
        stack.truth.dead_letters as f64
    );
    assert_eq!(
        metric("trends_aggregator_records_refused_total{topic=\"dlq\"}"),
        0.0
    );
    assert_eq!(
        metric("trends_aggregator_records_refused_total{topic=\"counts\"}"),
        0.0
    );

    assert_eq!(
        stack
            .aggregator
            .terminate(Duration::from_secs(30))
            .expect("terminate"),
        Some(0),
        "a clean stop: the aggregator never exited by itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_dated_ahead_cannot_move_the_windows() {
    let mut stack = Stack::start().await;
    stack.ordinary_batch_counted("the first batch").await;
    // Posts of now, one post dated 290 s ahead, one 10 minutes ahead.
    let now = now_ms();
    for i in 0..40i64 {
        let tag = format!("now{}", i % 5);
        stack
            .post(&format!("live #{tag}"), now - 20_000 + i * 500)
            .await;
        stack.truth.count(std::slice::from_ref(&tag));
        *stack.truth.recent.entry(tag).or_default() += 1;
    }
    // The client stamps its record with the same future time; the topic's LogAppendTime
    // replaces that with the broker's clock.
    stack.post("from the future #ahead", now + 290_000).await;
    stack.truth.count(&["ahead".to_string()]);
    *stack.truth.recent.entry("ahead".into()).or_default() += 1;
    stack.post("far future #never", now + 600_000).await;
    stack.truth.dead_letters += 1;
    let recent = Truth::ranked(&stack.truth.recent);
    for window in ["1m", "5m"] {
        let url = format!("{}/api/v1/trends?window={window}&limit=100", stack.base);
        let body = wait_for(
            &format!("window {window} to hold now's posts"),
            WAIT,
            || async {
                let (_, body) = get_json(&stack.client, &url).await?;
                if ranking(&body) == recent {
                    Ok(body)
                } else {
                    Err(format!("{:?} != {recent:?}", ranking(&body)))
                }
            },
        )
        .await
        .expect("windows of now");
        let watermark = body["watermark"].as_str().expect("a watermark").to_string();
        let latest_possible = rfc3339(now_ms() + 1_000);
        assert!(
            watermark <= latest_possible,
            "the watermark {watermark} ran ahead of ingest time ({latest_possible})"
        );
    }
    stack.wait_all("posts dated ahead").await;

    let dead = read_dead_letters(&stack.topics.dlq, stack.truth.dead_letters, WAIT).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].headers["dlq.error.code"], "future_timestamp");
    assert!(
        String::from_utf8_lossy(&dead[0].value).contains("#never"),
        "{:?}",
        dead[0]
    );
    let metrics = stack.metrics().await;
    assert_eq!(
        metric_value(&metrics, "trends_aggregator_records_clamped_total"),
        Some(1.0)
    );
    assert!(stack.aggregator.is_running(), "the aggregator never exited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_counts_topic_is_skipped_by_the_api_and_by_a_restore() {
    let mut stack = Stack::start().await;
    stack.ordinary_batch_counted("the first batch").await;
    // Garbage straight into the counts topic, partition 0.
    let poison: [(&[u8], Option<&[u8]>); 4] = [
        (b"0|w", Some(br#"{"watermark":9223372036854775000}"#)),
        (b"0|a|rust", Some(br#"{"count":-5}"#)),
        (&[0xff, 0xfe, b'|', b'w'], Some(b"{}")),
        (b"0|f|9223372036854770000|rust", Some(br#"{"count":1}"#)),
    ];
    for (key, value) in poison {
        let mut record = FutureRecord::to(&stack.topics.counts).partition(0).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        stack
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("poison written");
    }
    let api_metrics = format!("{}/metrics", stack.base);
    wait_for("the API to skip the garbage", WAIT, || async {
        let text = get_text(&stack.client, &api_metrics).await?;
        match metric_value(&text, "trends_api_counts_records_skipped_total") {
            Some(n) if n >= 4.0 => Ok(()),
            other => Err(format!("skipped: {other:?}")),
        }
    })
    .await
    .expect("skipped and counted");
    stack.wait_all("garbage in the counts topic").await;
    let (status, body) = get_json(
        &stack.client,
        &format!("{}/api/v1/hashtags/rust", stack.base),
    )
    .await
    .expect("hashtag");
    assert_eq!(status, 200);
    assert_eq!(body["counts"]["all"], json!(stack.truth.all["rust"]));
    assert!(
        body["series"]["1h"]["points"]
            .as_array()
            .is_some_and(|p| p.len() == 360)
    );

    // A restarted aggregator restores through the garbage and counts on, exactly.
    assert_eq!(
        stack
            .aggregator
            .terminate(Duration::from_secs(30))
            .expect("terminate"),
        Some(0),
        "a clean stop"
    );
    let (aggregator, metrics_url) = Stack::aggregator(&stack.topics, &stack.group);
    stack.aggregator = aggregator;
    stack.metrics_url = metrics_url;
    stack
        .ordinary_batch_counted("a restore through garbage")
        .await;
    // One more post, to partition 0 for sure, so that its restore has happened.
    let json = json!({"id": "p0", "text": "#rust", "created_at": rfc3339(now_ms())}).to_string();
    stack
        .producer
        .send(
            FutureRecord::to(&stack.topics.tweets)
                .partition(0)
                .key("p0")
                .payload(&json),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    stack.truth.count(&["rust".to_string()]);
    stack.wait_all("a post on partition 0").await;
    let metrics = stack.metrics().await;
    assert_eq!(
        metric_value(&metrics, "trends_aggregator_counts_records_skipped_total"),
        Some(poison.len() as f64),
        "the restore skipped exactly the garbage"
    );
    let body: Value = get_json(
        &stack.client,
        &format!("{}/api/v1/trends?window=all&limit=100", stack.base),
    )
    .await
    .map(|(_, b)| b)
    .expect("trends");
    assert!(
        body["watermark"]
            .as_str()
            .is_some_and(|w| w <= rfc3339(now_ms() + 1_000).as_str()),
        "{body}"
    );
    assert_eq!(
        stack
            .aggregator
            .terminate(Duration::from_secs(30))
            .expect("terminate"),
        Some(0)
    );
}
