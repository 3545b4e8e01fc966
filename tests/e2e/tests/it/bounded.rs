//! Bounded state through the real pipeline (issue 14 §1–2): a flood of one-off tags through an
//! aggregator with small capacities keeps the counts topic bounded, and every count it
//! publishes bounds the true count computed here.
//!
//! The aggregator runs with `all_time_capacity = 200` and `max_tags_per_bucket = 300`, and gets
//! 6,000 posts on two partitions, all in one 10-second bucket: each with a tag of its own, every
//! 5th with `#heavy`, 2 of every 20 with `#mid`. Then the counts topic (`read_committed`, the last
//! value of each key, as compaction keeps it) must hold, per partition:
//! - at most 200 all-time keys and at most 300 keys per bucket: evicted tags were tombstoned;
//! - for every tag with a key: `count − error ≤ true ≤ count`; for every tag without one:
//!   `true ≤ all_floor` (the watermark record's), with `all_floor ≤ N / 200`;
//! - `heavy` and `mid` held, with an error within `N / capacity`.
//!
//! Then the API, which sums the partitions, must rank `heavy` and `mid` first with their exact
//! counts, and for a sample of tags answer bounds (`count`, or `count_lower..=count_upper` when
//! approximate) that hold the true count in `5m` and `all`, or 404 for a tag evicted everywhere.

use std::collections::HashMap;
use std::time::Duration;

use e2e::{Topics, create_topic, get_json, get_text, metric_value, rfc3339, wait_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use test_support::{KafkaBroker, unique_name};
use trends_common::time::now_ms;

const WAIT: Duration = Duration::from_secs(180);
const POSTS: usize = 6_000;
const ALL_TIME_CAPACITY: usize = 200;
const BUCKET_CAPACITY: usize = 300;

fn client() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "bootstrap.servers",
        KafkaBroker::shared().bootstrap_servers(),
    );
    config
}

/// The sum of `group`'s committed offsets on both partitions of `topic` (an error while the
/// group coordinator is not ready yet: the caller retries).
fn committed_offsets(group: &str, topic: &str) -> Result<i64, String> {
    let consumer: BaseConsumer = client()
        .set("group.id", group)
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => 0,
        })
        .sum())
}

fn field(value: &serde_json::Value, name: &str) -> i64 {
    value[name].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_one_off_tags_keeps_the_counts_topic_bounded_and_every_count_honest() {
    let topics = Topics::unique("bounded-");
    create_topic(&topics.tweets, 2).await;
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let group = unique_name("bounded-aggregator");
    let mut aggregator = topics.start_aggregator(
        bootstrap,
        2,
        &group,
        &[
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            (
                "TRENDS__AGGREGATOR__ALL_TIME_CAPACITY",
                ALL_TIME_CAPACITY.to_string(),
            ),
            (
                "TRENDS__AGGREGATOR__MAX_TAGS_PER_BUCKET",
                BUCKET_CAPACITY.to_string(),
            ),
        ],
    );

    // One fine bucket: every post a minute old, at a whole 10 s.
    let created = (now_ms() - 60_000) / 10_000 * 10_000;
    let mut truth: [HashMap<String, i64>; 2] = Default::default();
    let producer: FutureProducer = client().create().expect("producer");
    let mut pending = Vec::new();
    for i in 0..POSTS {
        let partition = (i % 2) as i32;
        let mut tags = vec![format!("once{i}")];
        if i % 5 == 0 {
            tags.push("heavy".into());
        }
        if i % 20 < 2 {
            tags.push("mid".into());
        }
        for tag in &tags {
            *truth[partition as usize].entry(tag.clone()).or_default() += 1;
        }
        let text: Vec<String> = tags.iter().map(|t| format!("#{t}")).collect();
        let json = format!(
            r#"{{"id":"p{i}","text":"{}","created_at":"{}"}}"#,
            text.join(" "),
            rfc3339(created)
        );
        let key = format!("p{i}");
        let record = FutureRecord::to(&topics.tweets)
            .partition(partition)
            .key(&key)
            .payload(&json);
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
        if pending.len() == 1_000 {
            for delivery in pending.drain(..) {
                delivery.await.expect("delivered").expect("written");
            }
        }
    }
    for delivery in pending.drain(..) {
        delivery.await.expect("delivered").expect("written");
    }

    // Every post counted and committed: the group's committed offsets (committed in the same
    // transaction as the counts) reached the end of both partitions.
    let tweets = topics.tweets.clone();
    let group = group.clone();
    wait_for("every post committed", WAIT, || {
        let (tweets, group) = (tweets.clone(), group.clone());
        async move {
            let committed = tokio::task::spawn_blocking(move || committed_offsets(&group, &tweets))
                .await
                .map_err(|e| e.to_string())??;
            if committed == POSTS as i64 {
                Ok(())
            } else {
                Err(format!("{committed} of {POSTS}"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\naggregator running: {}\n{}",
            aggregator.process.is_running(),
            e2e::tail(&aggregator.process.log(), 40)
        )
    });
    let client = reqwest::Client::new();
    let text = get_text(&client, &aggregator.url).await.expect("metrics");
    let metric = |name: &str| metric_value(&text, name).unwrap_or(-1.0);
    assert!(metric("trends_aggregator_tags_evicted_total{scope=\"all\"}") > 0.0);
    assert!(metric("trends_aggregator_tags_evicted_total{scope=\"bucket\"}") > 0.0);

    for partition in 0..2i32 {
        let truth = &truth[partition as usize];
        let posts = truth.values().sum::<i64>();
        let counts = topics.counts.clone();
        let state = tokio::task::spawn_blocking(move || e2e::read_compacted(&counts, partition))
            .await
            .expect("read");
        let prefix = format!("{partition}|a|");
        let all_keys = state.keys().filter(|k| k.starts_with(&prefix)).count();
        assert!(
            all_keys <= ALL_TIME_CAPACITY,
            "partition {partition}: {all_keys} all-time keys"
        );
        let mut per_bucket: HashMap<&str, usize> = HashMap::new();
        for key in state.keys() {
            let parts: Vec<&str> = key.splitn(4, '|').collect();
            if parts.len() == 4 {
                *per_bucket
                    .entry(&key[..key.len() - parts[3].len()])
                    .or_default() += 1;
            }
        }
        assert!(
            per_bucket.values().all(|&n| n <= BUCKET_CAPACITY),
            "partition {partition}: {per_bucket:?}"
        );
        let floor = field(&state[&format!("{partition}|w")], "all_floor");
        let bound = posts / ALL_TIME_CAPACITY as i64;
        assert!(
            floor > 0 && floor <= bound,
            "partition {partition}: floor {floor}, N/K {bound}"
        );
        for (tag, &n) in truth {
            match state.get(&format!("{partition}|a|{tag}")) {
                Some(value) => {
                    let (count, error) = (field(value, "count"), field(value, "error"));
                    assert!(
                        count - error <= n && n <= count,
                        "partition {partition}, {tag}: true {n}, published {value}"
                    );
                }
                None => assert!(
                    n <= floor,
                    "partition {partition}, {tag}: {n} > floor {floor}"
                ),
            }
        }
        for heavy in ["heavy", "mid"] {
            let value = &state[&format!("{partition}|a|{heavy}")];
            assert!(field(value, "error") <= bound, "{heavy}: {value}");
            let bucket = &state[&format!("{partition}|f|{created}|{heavy}")];
            let (count, error) = (field(bucket, "count"), field(bucket, "error"));
            assert!(count - error <= truth[heavy] && truth[heavy] <= count);
            assert!(error <= posts / BUCKET_CAPACITY as i64);
        }
    }

    // The API sums the partitions: every answer it gives bounds the true count.
    let mut api = topics.start_api(bootstrap, 2);
    let base = api.url.clone();
    wait_for("the API ready", WAIT, || async {
        let (status, body) = get_json(&client, &format!("{base}/readyz")).await?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await
    .expect("ready");
    let total = |tag: &str| truth[0].get(tag).unwrap_or(&0) + truth[1].get(tag).unwrap_or(&0);
    let (status, top) = get_json(&client, &format!("{base}/api/v1/trends?window=all&limit=2"))
        .await
        .expect("trends");
    assert_eq!(status, 200, "{top}");
    assert_eq!(
        e2e::ranking(&top),
        vec![
            ("heavy".to_string(), total("heavy")),
            ("mid".to_string(), total("mid"))
        ],
        "the heavy hitters on top, exact: they were held from their first post"
    );
    let (mut answered, mut estimated, mut unknown) = (0, 0, 0);
    // The heavy ones, and every 10th one-off tag.
    let sample: Vec<String> = ["heavy".to_string(), "mid".to_string()]
        .into_iter()
        .chain((0..POSTS).step_by(10).map(|i| format!("once{i}")))
        .collect();
    for tag in &sample {
        let n = total(tag);
        let (status, body) = get_json(&client, &format!("{base}/api/v1/hashtags/{tag}"))
            .await
            .expect("hashtag");
        if status == 404 {
            // Evicted from `all` on its partition and from its bucket: at most the floor.
            unknown += 1;
            continue;
        }
        assert_eq!(status, 200, "{tag}: {body}");
        answered += 1;
        for window in ["5m", "all"] {
            let count = body["counts"][window].as_i64().expect("a count");
            let estimate = &body["estimates"][window];
            let (lower, upper) = if estimate.is_null() {
                (count, count)
            } else {
                estimated += 1;
                assert_eq!(estimate["approximate"], true, "{tag}: {body}");
                (
                    estimate["count_lower"].as_i64().expect("lower"),
                    estimate["count_upper"].as_i64().expect("upper"),
                )
            };
            assert!(
                lower <= n && n <= upper,
                "{tag} in {window}: true {n}, answered {lower}..={upper}: {body}"
            );
        }
    }
    eprintln!(
        "API: {answered} tags answered ({estimated} window estimates), {unknown} unknown, of {}",
        sample.len()
    );
    assert!(
        answered > 2 && estimated > 0,
        "the sample covers exact and estimated counts"
    );
    for started in [&mut api, &mut aggregator] {
        assert_eq!(
            started
                .process
                .terminate(Duration::from_secs(30))
                .expect("terminate"),
            Some(0)
        );
    }
}
