//! A transactional input is processed to its very end: the group's committed offsets reach the
//! partitions' end offsets, commit markers included, so the consumer lag reaches 0.
//!
//! `tweet-producer` writes `tweets` in transactions, and each transaction ends with a commit
//! marker: a record the consumer skips and never delivers. An aggregator that committed the last
//! delivered offset + 1 stayed one record behind per partition for ever (a lag that never
//! reached 0, and a benchmark waiting for a catch-up that never looked finished). Here: posts
//! written in five transactions on two partitions; expected: the committed offsets equal the
//! end offsets, the counts are exact, and the aggregator's lag gauge reads 0.

use std::time::Duration;

use e2e::{Topics, create_topic, get_text, metric_value, rfc3339, wait_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use test_support::{KafkaBroker, unique_name};
use trends_common::time::now_ms;

const WAIT: Duration = Duration::from_secs(120);

fn client() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "bootstrap.servers",
        KafkaBroker::shared().bootstrap_servers(),
    );
    config
}

/// `group`'s committed offsets and the end offsets of `topic`'s two partitions.
fn offsets(group: &str, topic: &str) -> Result<(Vec<i64>, Vec<i64>), String> {
    let consumer: BaseConsumer = client()
        .set("group.id", group)
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for partition in 0..2 {
        tpl.add_partition(topic, partition);
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        ends.push(high);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| e.to_string())?
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => -1,
        })
        .collect();
    Ok((committed, ends))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_input_is_committed_to_its_end_and_the_lag_reaches_zero() {
    let topics = Topics::unique("txinput-");
    create_topic(&topics.tweets, 2).await;
    let producer: BaseProducer = client()
        .set("transactional.id", unique_name("txinput-producer"))
        .create()
        .expect("producer");
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init");
    let created = rfc3339(now_ms() - 60_000);
    let mut posts = 0;
    for batch in 0..5 {
        producer.begin_transaction().expect("begin");
        for i in 0..10 {
            let json = format!(
                r##"{{"id":"t{batch}-{i}","text":"#committed","created_at":"{created}"}}"##
            );
            let key = format!("t{batch}-{i}");
            producer
                .send(
                    BaseRecord::to(&topics.tweets)
                        .partition(i % 2)
                        .key(&key)
                        .payload(&json),
                )
                .map_err(|(e, _)| e)
                .expect("queued");
            posts += 1;
        }
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
    }

    let group = unique_name("txinput-aggregator");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let mut aggregator = topics.start_aggregator(bootstrap, 2, &group, &[]);
    let (tweets, group_id) = (topics.tweets.clone(), group.clone());
    let (committed, ends) = wait_for("offsets committed to the end", WAIT, || {
        let (tweets, group) = (tweets.clone(), group_id.clone());
        async move {
            let (committed, ends) = tokio::task::spawn_blocking(move || offsets(&group, &tweets))
                .await
                .map_err(|e| e.to_string())??;
            if committed == ends {
                Ok((committed, ends))
            } else {
                Err(format!("committed {committed:?}, ends {ends:?}"))
            }
        }
    })
    .await
    .expect("committed to the end");
    // Five data records and five markers on each partition.
    assert_eq!(ends, vec![30, 30]);
    assert_eq!(committed, ends);

    let client = reqwest::Client::new();
    let url = aggregator.url.clone();
    wait_for("the lag gauge at 0", WAIT, || async {
        let text = get_text(&client, &url).await?;
        let lag: Vec<f64> = (0..2)
            .map(|p| {
                metric_value(
                    &text,
                    &format!("trends_aggregator_consumer_lag_records{{partition=\"{p}\"}}"),
                )
                .unwrap_or(-1.0)
            })
            .collect();
        if lag == [0.0, 0.0] {
            Ok(())
        } else {
            Err(format!("lag {lag:?}"))
        }
    })
    .await
    .expect("lag 0");
    let text = get_text(&client, &url).await.expect("metrics");
    assert_eq!(
        metric_value(&text, "trends_aggregator_records_processed_total"),
        Some(f64::from(posts))
    );
    assert_eq!(
        aggregator
            .process
            .terminate(Duration::from_secs(30))
            .expect("terminate"),
        Some(0)
    );
}
