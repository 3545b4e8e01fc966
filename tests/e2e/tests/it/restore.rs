//! A restore that takes longer than the transaction timeout aborts nothing (issue 14 §5).
//!
//! The aggregator restores a partition's state (reads its counts partition from the start) on
//! the first record of it after an assignment. If a transaction is open then (records of
//! other partitions counted since the last commit), a restore longer than
//! `transaction.timeout.ms` lets the broker abort that transaction and fence the producer: the
//! instance exits, restarts, restores again inside a new transaction, and so on. The
//! aggregator now commits before it restores, so a restore is bounded by its own limit only.
//!
//! Here: a transaction timeout of 1 s (the least librdkafka allows), commits every 100 ms,
//! partition 0 fed a record every 20 ms, every other one malformed (its dead letter is
//! produced at once, so a transaction is nearly always open and registered with the
//! coordinator, whose timeout then runs; the test broker enforces timeouts within a second),
//! and counts
//! partition 1 filled beforehand with 400,000 all-time records, whose restore takes several
//! seconds. Then one post arrives on partition 1. Expected: no transaction aborted, the
//! instance still running, and the counts exact: every post of partition 0 and the one of
//! partition 1, on top of the restored state. The counts are read back from the counts topic
//! (`read_committed`), independently of the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{Topics, create_topic, get_text, metric_value, rfc3339, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use test_support::{KafkaBroker, unique_name};
use trends_common::time::now_ms;

const WAIT: Duration = Duration::from_secs(180);
/// All-time records in counts partition 1 before the aggregator starts.
const PREFILLED: usize = 400_000;

fn client() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "bootstrap.servers",
        KafkaBroker::shared().bootstrap_servers(),
    );
    config
}

/// The counts topic as the aggregator creates it (compacted, two partitions), filled on
/// partition 1 with `PREFILLED` all-time counts of tags `filler{i}`.
async fn prefilled_counts(name: &str) {
    let admin: AdminClient<DefaultClientContext> = client().create().expect("admin");
    let topic = NewTopic::new(name, 2, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    for result in admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create")
    {
        result.expect("counts topic created");
    }
    let producer: FutureProducer = client()
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer");
    for i in 0..PREFILLED {
        let key = format!("1|a|filler{i}");
        let record = FutureRecord::to(name)
            .partition(1)
            .key(&key)
            .payload(r#"{"count":1}"#);
        // Queue without waiting for each delivery; the flush below waits for all.
        let mut record = record;
        loop {
            match producer.send_result(record) {
                Ok(_delivery) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("prefilled counts flushed");
}

/// The latest committed count of each of `keys` in counts partition `partition`.
fn read_counts(topic: &str, partition: i32, keys: &[String]) -> HashMap<String, i64> {
    e2e::read_compacted(topic, partition)
        .into_iter()
        .filter(|(key, _)| keys.contains(key))
        .map(|(key, value)| (key, value["count"].as_i64().unwrap_or(-1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_longer_than_the_transaction_timeout_aborts_nothing() {
    let topics = Topics::unique("restore-");
    create_topic(&topics.tweets, 2).await;
    prefilled_counts(&topics.counts).await;

    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let mut aggregator = topics.start_aggregator(
        bootstrap,
        2,
        &unique_name("restore-aggregator"),
        &[
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "100".into()),
            ("TRENDS__AGGREGATOR__TRANSACTION_TIMEOUT_MS", "1000".into()),
            // All 400,000 restored tags stay held (exact), as the test expects.
            ("TRENDS__AGGREGATOR__ALL_TIME_CAPACITY", "1000000".into()),
        ],
    );
    let client = reqwest::Client::new();
    let metric = |text: &str, name: &str| metric_value(text, name).unwrap_or(-1.0);

    // Partition 0 gets a post every 20 ms until told to stop.
    let producer: FutureProducer = client_producer();
    let stop = Arc::new(AtomicBool::new(false));
    let fed = Arc::new(AtomicUsize::new(0));
    let feeder = tokio::spawn({
        let (producer, tweets) = (producer.clone(), topics.tweets.clone());
        let (stop, fed) = (Arc::clone(&stop), Arc::clone(&fed));
        async move {
            while !stop.load(Ordering::Acquire) {
                let n = fed.load(Ordering::Acquire);
                // Every other record is malformed: its dead letter is produced at once, so
                // the open transaction is registered with the coordinator (counts are only
                // produced at commit time), and its timeout runs.
                let json = if n % 2 == 0 {
                    format!(
                        r#"{{"id":"a{n}","text":"steady #atag","created_at":"{}"}}"#,
                        rfc3339(now_ms())
                    )
                } else {
                    format!("not a post {n}")
                };
                producer
                    .send(
                        FutureRecord::to(&tweets)
                            .partition(0)
                            .key(&format!("a{n}"))
                            .payload(&json),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("post to partition 0");
                fed.store(n + 1, Ordering::Release);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    // Transactions flow on partition 0 before partition 1 sees a record.
    let url = aggregator.url.clone();
    wait_for("transactions on partition 0", WAIT, || async {
        let text = get_text(&client, &url).await?;
        let committed = metric(&text, "trends_aggregator_transactions_committed_total");
        if committed >= 5.0 {
            Ok(())
        } else {
            Err(format!("{committed} committed"))
        }
    })
    .await
    .expect("steady transactions");

    let json = format!(
        r#"{{"id":"b0","text":"the one #btag","created_at":"{}"}}"#,
        rfc3339(now_ms())
    );
    producer
        .send(
            FutureRecord::to(&topics.tweets)
                .partition(1)
                .key("b0")
                .payload(&json),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("post to partition 1");

    // Both partitions restored; partition 0 keeps flowing a little longer.
    let text = wait_for("partition 1 restored", WAIT, || async {
        let text = get_text(&client, &url).await?;
        if metric(&text, "trends_aggregator_partitions_restored_total") >= 2.0 {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await
    .expect("restored");
    let restore_seconds = metric(&text, "trends_aggregator_restore_duration_seconds_sum");
    assert!(
        restore_seconds > 1.0,
        "the setup must make the restore outlast the 1 s transaction timeout, took {restore_seconds} s"
    );
    let before = fed.load(Ordering::Acquire);
    wait_for("more posts after the restore", WAIT, || async {
        let now = fed.load(Ordering::Acquire);
        if now >= before + 20 {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await
    .expect("feeding");
    stop.store(true, Ordering::Release);
    feeder.await.expect("feeder");
    // Records 0, 2, 4, … of partition 0 are posts.
    let posts_a = i64::try_from(fed.load(Ordering::Acquire).div_ceil(2)).unwrap_or(i64::MAX);

    // Exact counts, read back from the counts topic.
    let counts = topics.counts.clone();
    let expected = HashMap::from([
        ("0|a|atag".to_string(), posts_a),
        ("1|a|btag".to_string(), 1),
        ("1|a|filler0".to_string(), 1),
    ]);
    let keys: Vec<String> = expected.keys().cloned().collect();
    wait_for("exact all-time counts", WAIT, || {
        let (counts, keys, expected) = (counts.clone(), keys.clone(), expected.clone());
        async move {
            let found = tokio::task::spawn_blocking(move || {
                let mut found = read_counts(&counts, 0, &keys);
                found.extend(read_counts(&counts, 1, &keys));
                found
            })
            .await
            .map_err(|e| e.to_string())?;
            if found == expected {
                Ok(())
            } else {
                Err(format!("{found:?} != {expected:?}"))
            }
        }
    })
    .await
    .expect("counts exact");

    let text = get_text(&client, &url).await.expect("metrics");
    assert_eq!(
        metric(&text, "trends_aggregator_transactions_aborted_total"),
        0.0,
        "no transaction aborted"
    );
    assert!(
        aggregator.process.is_running(),
        "the aggregator never exited:\n{}",
        e2e::tail(&aggregator.process.log(), 40)
    );
    eprintln!(
        "restored {PREFILLED} records in {restore_seconds:.2} s ({:.2} s per 100k); {posts_a} posts on partition 0",
        restore_seconds * 100_000.0 / PREFILLED as f64
    );
    assert_eq!(
        aggregator
            .process
            .terminate(Duration::from_secs(30))
            .expect("terminate"),
        Some(0)
    );
}

fn client_producer() -> FutureProducer {
    client()
        .set("enable.idempotence", "true")
        .create()
        .expect("producer")
}
