//! The whole pipeline, real processes against a real broker: posts written by a plain Kafka
//! client in the documented schema come out of the REST API with exact counts in every window;
//! malformed records land in the dead-letter topic; a restarted API gives the same answers.
//!
//! The expected counts are computed here, independently of the product's code: the window rule
//! as the README states it, and lowercase for normalization (the test only uses tags for which
//! that is the whole of NFKC + lowercase).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use e2e::{
    Lcg, ServiceProcess, Topics, create_topic, free_port, get_json, ranking, read_dead_letters,
    rfc3339, wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
/// 2026-11-22T10:00:00Z, the watermark of the test data.
const T0: i64 = 1_795_341_600_000;
const WINDOWS: [(&str, i64, i64); 5] = [
    ("1m", 60_000, 10_000),
    ("5m", 300_000, 10_000),
    ("15m", 900_000, 10_000),
    ("1h", 3_600_000, 10_000),
    ("24h", 86_400_000, 300_000),
];

#[derive(Debug, Clone)]
struct Names {
    tweets: String,
    counts: String,
    dlq: String,
    group: String,
}

impl Names {
    fn new() -> Names {
        Names {
            tweets: unique_name("tweets"),
            counts: unique_name("counts"),
            dlq: unique_name("dlq"),
            group: unique_name("aggregator"),
        }
    }

    fn env(&self, extra: &[(&str, String)]) -> HashMap<String, String> {
        Topics {
            tweets: self.tweets.clone(),
            counts: self.counts.clone(),
            dlq: self.dlq.clone(),
        }
        .env(KafkaBroker::shared().bootstrap_servers(), 6, extra)
    }

    /// Starts an aggregator; returns it with the URL of its metrics.
    fn aggregator(&self) -> (ServiceProcess, String) {
        let port = free_port();
        let env = self.env(&[
            ("TRENDS__AGGREGATOR__GROUP_ID", self.group.clone()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{port}"),
            ),
        ]);
        let process = ServiceProcess::start("hashtag-aggregator", &env).expect("start aggregator");
        (process, format!("http://127.0.0.1:{port}/metrics"))
    }

    fn api(&self) -> (ServiceProcess, String) {
        let port = free_port();
        let env = self.env(&[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))]);
        let process = ServiceProcess::start("trends-api", &env).expect("start api");
        (process, format!("http://127.0.0.1:{port}"))
    }
}

/// A plain idempotent producer on the shared broker (the tests' posts go in through it).
pub(crate) fn plain_producer() -> FutureProducer {
    ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}

/// One valid post: its JSON, its event time and the (normalized) tags it should count for.
struct TestPost {
    id: String,
    json: Value,
    time: i64,
    tags: Vec<String>,
    /// The spelling of each tag's first appearance in the post (parallel to `tags`).
    spellings: Vec<String>,
}

fn test_posts(count: usize) -> Vec<TestPost> {
    let spellings: [&[&str]; 8] = [
        &["Rust", "rust", "RUST"],
        &["kafka", "Kafka"],
        &["日本語"],
        &["Привет", "привет"],
        &["data_eng"],
        &["web3"],
        &["WorldCup", "worldcup"],
        &["ai", "AI"],
    ];
    let mut rng = Lcg(7);
    let mut posts = Vec::with_capacity(count);
    for i in 0..count {
        // A third in the last two minutes, a third in the last 90 minutes, the rest over 30 hours.
        let age = match i % 3 {
            0 => rng.next(120_000) as i64,
            1 => rng.next(5_400_000) as i64,
            _ => rng.next(108_000_000) as i64,
        };
        let time = if i == count / 2 { T0 } else { T0 - age };
        let n_tags = rng.next(4) as usize;
        let mut written: Vec<&str> = Vec::new();
        for _ in 0..n_tags {
            let family = spellings[rng.next(spellings.len() as u64) as usize];
            written.push(family[rng.next(family.len() as u64) as usize]);
        }
        let mut tags: Vec<String> = Vec::new();
        let mut first_spellings: Vec<String> = Vec::new();
        for w in &written {
            let t = w.to_lowercase();
            if !tags.contains(&t) {
                tags.push(t);
                first_spellings.push(w.to_string());
            }
        }
        let id = format!("e2e-{i}");
        let json = if i % 10 == 9 {
            // A source that extracted tags itself: those are used, not the text.
            json!({"id": id, "text": "tags supplied by the source #ignored", "created_at": rfc3339(time),
                   "source": "test", "hashtags": written})
        } else {
            let text: Vec<String> = written
                .iter()
                .enumerate()
                .map(|(k, w)| format!("word{k} (#{w}),"))
                .collect();
            json!({"id": id, "text": format!("post {i}: {} end", text.join(" ")), "created_at": rfc3339(time),
                   "lang": "en", "unknown_field": {"nested": true}})
        };
        posts.push(TestPost {
            spellings: first_spellings,
            id,
            json,
            time,
            tags,
        });
    }
    posts
}

/// Expected ranking per window: count descending, then tag ascending.
fn expected(posts: &[TestPost]) -> BTreeMap<String, Vec<(String, i64)>> {
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

/// Expected display form per tag: the most frequent first-in-post spelling, ties to the
/// spelling that sorts first.
fn expected_display(posts: &[TestPost]) -> BTreeMap<String, String> {
    let mut spellings: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for post in posts {
        for (tag, spelling) in post.tags.iter().zip(&post.spellings) {
            *spellings
                .entry(tag.clone())
                .or_default()
                .entry(spelling.clone())
                .or_default() += 1;
        }
    }
    spellings
        .into_iter()
        .map(|(tag, counts)| {
            let mut list: Vec<(String, i64)> = counts.into_iter().collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (tag, list[0].0.clone())
        })
        .collect()
}

fn displays(body: &Value) -> BTreeMap<String, String> {
    body["trends"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    let field = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                    (field("hashtag"), field("display"))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn assert_all_windows(
    client: &reqwest::Client,
    base: &str,
    expected: &BTreeMap<String, Vec<(String, i64)>>,
) {
    for (window, ranked) in expected {
        let (status, body) = get_json(
            client,
            &format!("{base}/api/v1/trends?window={window}&limit=100"),
        )
        .await
        .expect("trends");
        assert_eq!(status, 200);
        assert_eq!(body["window"], window.as_str());
        assert_eq!(body["watermark"], rfc3339(T0), "watermark");
        assert_eq!(&ranking(&body), ranked, "window {window}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_from_a_plain_client_are_counted_exactly_and_survive_an_api_restart() {
    let names = Names::new();
    create_topic(&names.tweets, 6).await;
    let (mut aggregator, metrics_url) = names.aggregator();
    let (mut api, base) = names.api();

    let posts = test_posts(3_000);
    let expected = expected(&posts);
    assert!(
        expected["1m"].len() >= 3 && expected["all"].len() == 8,
        "test data covers the windows: {expected:?}"
    );
    let malformed: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad-json", b"this is not json".to_vec(), "invalid_json"),
        (
            "bad-missing",
            br#"{"id":"m","created_at":"2026-11-22T09:59:00Z"}"#.to_vec(),
            "invalid_json",
        ),
        (
            "bad-time",
            br##"{"id":"t","text":"#rust","created_at":"yesterday"}"##.to_vec(),
            "bad_timestamp",
        ),
        ("bad-utf8", vec![0xff, 0xfe, b'#', b'r'], "not_utf8"),
    ];

    let producer = plain_producer();
    for (i, post) in posts.iter().enumerate() {
        let payload = post.json.to_string();
        producer
            .send(
                FutureRecord::to(&names.tweets)
                    .key(&post.id)
                    .payload(&payload)
                    .timestamp(post.time),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
        if i % 1000 == 500 {
            let (key, value, _) = &malformed[i / 1000];
            producer
                .send(
                    FutureRecord::to(&names.tweets).key(*key).payload(value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce malformed");
        }
    }
    let (key, value, _) = &malformed[3];
    producer
        .send(
            FutureRecord::to(&names.tweets).key(*key).payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce malformed");

    let client = reqwest::Client::new();
    let all_url = format!("{base}/api/v1/trends?window=all&limit=100");
    wait_for("all-time counts to match", WAIT, || async {
        let (_, body) = get_json(&client, &all_url).await?;
        let seen = ranking(&body);
        if seen == expected["all"] {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await
    .expect("counts converge");
    assert_all_windows(&client, &base, &expected).await;
    let (_, body) = get_json(&client, &all_url).await.expect("trends");
    assert_eq!(displays(&body), expected_display(&posts), "display forms");

    let rust_all = expected["all"]
        .iter()
        .find(|(t, _)| t == "rust")
        .map_or(0, |(_, c)| *c);
    let (status, body) = get_json(&client, &format!("{base}/api/v1/hashtags/RUST"))
        .await
        .expect("hashtag");
    assert_eq!(
        (status, body["counts"]["all"].as_i64()),
        (200, Some(rust_all))
    );

    // Every malformed record is in the dead-letter topic, with its reason.
    let dead = read_dead_letters(&names.dlq, malformed.len(), WAIT).await;
    let mut seen: Vec<(String, String)> = dead
        .iter()
        .map(|d| (d.key_text(), d.header("dlq.error.code").to_string()))
        .collect();
    seen.sort();
    let mut wanted: Vec<(String, String)> = malformed
        .iter()
        .map(|(k, _, c)| (k.to_string(), c.to_string()))
        .collect();
    wanted.sort();
    assert_eq!(seen, wanted);
    assert!(
        dead.iter()
            .all(|d| !d.header("dlq.error.reason").is_empty())
    );

    // The aggregator's metrics account for every record.
    let metrics = client
        .get(&metrics_url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(u64::MAX)
    };
    assert_eq!(
        metric("trends_aggregator_records_processed_total "),
        (posts.len() + malformed.len()) as u64,
        "{metrics}"
    );
    assert_eq!(
        metric("trends_aggregator_records_dead_lettered_total "),
        malformed.len() as u64
    );
    assert!(metric("trends_aggregator_transactions_committed_total ") >= 1);

    // A restarted API rebuilds everything from Kafka and answers the same.
    assert_eq!(
        api.terminate(Duration::from_secs(20))
            .expect("terminate api"),
        Some(0)
    );
    let (_api2, base2) = names.api();
    wait_for("restarted API to be ready", WAIT, || async {
        match get_json(&client, &format!("{base2}/readyz")).await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("ready");
    assert_all_windows(&client, &base2, &expected).await;

    assert_eq!(
        aggregator
            .terminate(Duration::from_secs(30))
            .expect("terminate aggregator"),
        Some(0)
    );
}

/// The project's own producer feeds the same pipeline: every synthetic post it publishes is
/// counted. The expected counts come from reading the raw topic back (tags extracted with the
/// product's extractor, which its own tests pin down; this test checks the plumbing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synthetic_producer_feeds_the_pipeline_end_to_end() {
    let names = Names::new();
    let posts = 3_000usize;
    let mut producer = ServiceProcess::start(
        "tweet-producer",
        &names.env(&[
            ("TRENDS__SOURCE__SYNTHETIC__RATE", "0".into()),
            ("TRENDS__SOURCE__SYNTHETIC__LIMIT", posts.to_string()),
            ("TRENDS__SOURCE__SYNTHETIC__VOCABULARY", "60".into()),
            (
                "TRENDS__PRODUCER__METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
        ]),
    )
    .expect("start producer");
    let (_aggregator, _) = names.aggregator();
    let (_api, base) = names.api();

    let raw = read_raw_posts(&names.tweets, posts).await;
    assert_eq!(raw.len(), posts, "every synthetic post is in the topic");
    let expected = expected(&raw);
    let client = reqwest::Client::new();
    for (window, ranked) in &expected {
        let url = format!("{base}/api/v1/trends?window={window}&limit=100");
        wait_for(&format!("window {window} to match"), WAIT, || async {
            let (_, body) = get_json(&client, &url).await?;
            let seen = ranking(&body);
            if &seen == ranked {
                Ok(())
            } else {
                Err(format!("{seen:?} != {ranked:?}"))
            }
        })
        .await
        .expect("counts converge");
    }
    let deadline = std::time::Instant::now() + WAIT;
    while producer.is_running() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!producer.is_running(), "the producer stops after its limit");
}

/// Reads `n` raw posts back from the tweets topic as test posts (time + normalized tags).
async fn read_raw_posts(topic: &str, n: usize) -> Vec<TestPost> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set(
                "bootstrap.servers",
                KafkaBroker::shared().bootstrap_servers(),
            )
            .set("group.id", unique_name("raw-reader"))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let deadline = std::time::Instant::now() + WAIT;
        let mut out = Vec::new();
        while out.len() < n && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let parsed = trends_core::post::parse_post(m.payload().unwrap_or_default())
                    .expect("valid synthetic post");
                let post_tags = trends_core::tags::post_tags(&parsed.post);
                out.push(TestPost {
                    spellings: post_tags.iter().map(|t| t.spelling.clone()).collect(),
                    id: parsed.post.id.clone(),
                    json: Value::Null,
                    time: parsed.event_time,
                    tags: post_tags.iter().map(|t| t.tag.clone()).collect(),
                });
            }
        }
        out
    })
    .await
    .expect("reader")
}
