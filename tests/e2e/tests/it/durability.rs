//! Durable defaults (issue 16 §2): the topics the services create are replicated as the broker
//! says and acknowledged by min(2, replicas) brokers, and the aggregator refuses a counts topic
//! that would delete its state by age.

use std::time::Duration;

use e2e::{Topics, create_topic, wait_for};
use test_support::{KafkaBroker, unique_name};
use trends_common::kafka::topic_config;
use trends_common::settings::KafkaSettings;

/// A topic config entry as the broker describes it: its value, and whether it was set on the
/// topic itself (rather than inherited from the broker's defaults).
async fn topic_entry(bootstrap: &str, topic: &str, name: &str) -> Option<(String, bool)> {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .ok()?;
    described
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|resource| resource.entries)
        .find(|entry| entry.name == name)
        .and_then(|entry| {
            let on_topic = entry.source == ConfigSource::DynamicTopic;
            entry.value.map(|value| (value, on_topic))
        })
}

#[tokio::test]
async fn topics_get_the_brokers_replication_and_min_isr_of_at_most_two() {
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("durable-");
    let mut aggregator = topics.start_aggregator(bootstrap, 2, &unique_name("durable-group"), &[]);
    let kafka = KafkaSettings::plaintext(bootstrap);
    // The aggregator creates its three topics at start.
    for topic in [&topics.tweets, &topics.counts, &topics.dlq] {
        let min_isr = wait_for(
            &format!("{topic} created"),
            Duration::from_secs(60),
            || async {
                topic_entry(bootstrap, topic, "min.insync.replicas")
                    .await
                    .ok_or_else(|| "not described yet".to_string())
            },
        )
        .await
        .expect("the topic exists");
        // One broker: its default.replication.factor is 1, so min(2, 1) = 1, set on the topic
        // itself (the broker's own default is 1 too: the source tells them apart).
        assert_eq!(min_isr, ("1".to_string(), true), "{topic}");
    }
    let policy = topic_config(&kafka, &topics.counts, "cleanup.policy")
        .await
        .expect("describe");
    assert_eq!(policy.as_deref(), Some("compact"));
    aggregator
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop");
}

#[tokio::test]
async fn a_counts_topic_that_deletes_by_age_is_refused_at_start() {
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("deleting-");
    // Someone created the counts topic with the broker's defaults: cleanup.policy=delete.
    create_topic(&topics.tweets, 2).await;
    create_topic(&topics.counts, 2).await;
    let mut aggregator = topics.start_aggregator(bootstrap, 2, &unique_name("deleting-group"), &[]);
    let status = aggregator
        .process
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("the aggregator stops by itself");
    assert!(!status.success(), "{status}");
    let log = aggregator.process.log();
    assert!(
        log.contains(&format!(
            "topic {} has cleanup.policy=delete",
            topics.counts
        )) && log.contains("must be cleanup.policy=compact only"),
        "{log}"
    );
}

/// Produces `payloads` to partition 0 of `topic` on the shared broker.
async fn produce(topic: &str, payloads: &[String]) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for payload in payloads {
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(payload),
                Duration::from_secs(30),
            )
            .await
            .expect("sent");
    }
}

/// Waits until partition 0 of the counts topic holds the checkpoint `offset` (the aggregator
/// committed everything before it) and returns the partition's compacted state.
async fn wait_checkpoint(
    counts: &str,
    offset: i64,
) -> std::collections::HashMap<String, serde_json::Value> {
    wait_for(
        &format!("checkpoint {offset} in {counts}"),
        Duration::from_secs(60),
        || async {
            let topic = counts.to_string();
            let state = tokio::task::spawn_blocking(move || e2e::read_compacted(&topic, 0))
                .await
                .map_err(|e| e.to_string())?;
            match state.get("0|o").and_then(|v| v["offset"].as_i64()) {
                Some(seen) if seen == offset => Ok(state),
                other => Err(format!("checkpoint {other:?}")),
            }
        },
    )
    .await
    .expect("the aggregator commits its checkpoint")
}

fn post(i: usize) -> String {
    serde_json::json!({
        "id": format!("lost-{i}"),
        "text": "a post about #durability",
        "created_at": e2e::rfc3339(trends_common::time::now_ms() - 60_000),
    })
    .to_string()
}

/// Deletes `topic` and creates it again, compacted, with one partition (deletion is
/// asynchronous: creation is retried until the old topic is gone).
async fn recreate_compacted(topic: &str) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .create()
        .expect("admin");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .delete_topics(&[topic], &options)
        .await
        .expect("delete")
    {
        result.expect("deleted");
    }
    wait_for(
        "the counts topic re-created",
        Duration::from_secs(60),
        || async {
            let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact");
            match admin.create_topics(&[new], &options).await {
                Ok(results) => match results.into_iter().next() {
                    Some(Ok(_)) => Ok(()),
                    other => Err(format!("{other:?}")),
                },
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
    .expect("re-created");
}

/// The counts topic deleted and re-created under a running deployment: the aggregator refuses
/// to count on from zero, saying why and what to do; with `aggregator.allow_state_reset` it
/// starts over on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_counts_topic_stops_the_aggregator_unless_a_reset_is_asked_for() {
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("lost-");
    let group = unique_name("lost-group");
    create_topic(&topics.tweets, 1).await;
    let mut first = topics.start_aggregator(bootstrap, 1, &group, &[]);
    produce(&topics.tweets, &(0..5).map(post).collect::<Vec<_>>()).await;
    let state = wait_checkpoint(&topics.counts, 5).await;
    assert_eq!(state["0|a|durability"]["count"], 5);
    first
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop");

    recreate_compacted(&topics.counts).await;
    let mut refused = topics.start_aggregator(bootstrap, 1, &group, &[]);
    produce(&topics.tweets, &[post(5)]).await;
    let status = refused
        .process
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("it counts on: {e}\n{}", refused.process.log()));
    assert!(!status.success());
    let log = refused.process.log();
    assert!(
        log.contains("the aggregator's state was lost")
            && log.contains(&format!("committed offset 5 on {}-0", topics.tweets))
            && log.contains("TRENDS__AGGREGATOR__ALLOW_STATE_RESET=true"),
        "{log}"
    );

    // A deliberate reset: counting starts over from the committed position.
    let mut reset = topics.start_aggregator(
        bootstrap,
        1,
        &group,
        &[("TRENDS__AGGREGATOR__ALLOW_STATE_RESET", "true".into())],
    );
    let state = wait_checkpoint(&topics.counts, 6).await;
    assert_eq!(state["0|a|durability"]["count"], 1, "{state:?}");
    assert!(reset.process.log().contains("counting on from zero"));
    reset
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop");
}

/// A partition that has seen only malformed records has no counts and no watermark, but its
/// checkpoint says its state exists: a restart is not mistaken for lost state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_only_dead_letters_restarts_without_complaint() {
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("garbage-");
    let group = unique_name("garbage-group");
    create_topic(&topics.tweets, 1).await;
    let mut first = topics.start_aggregator(bootstrap, 1, &group, &[]);
    let garbage: Vec<String> = (0..3).map(|i| format!("not json {i}")).collect();
    produce(&topics.tweets, &garbage).await;
    let state = wait_checkpoint(&topics.counts, 3).await;
    assert!(
        !state.contains_key("0|w"),
        "no post, no watermark: {state:?}"
    );
    first
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop");

    let mut second = topics.start_aggregator(bootstrap, 1, &group, &[]);
    produce(&topics.tweets, &["still not json".to_string()]).await;
    wait_checkpoint(&topics.counts, 4).await;
    assert!(second.process.is_running(), "{}", second.process.log());
    second
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop");
}

/// Partitions added to the input while everything runs: the aggregator adds them to the counts
/// topic (co-partitioned), the API follows the new counts partitions without a restart, and the
/// all-time counts stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_to_the_input_are_followed_without_a_restart() {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("grow-");
    create_topic(&topics.tweets, 2).await;
    let mut aggregator = topics.start_aggregator(bootstrap, 2, &unique_name("grow-group"), &[]);
    let mut api = topics.start_api(bootstrap, 2);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("producer");
    let mut sent = 0usize;
    let send = |partition: i32, i: usize| {
        let producer = producer.clone();
        let topic = topics.tweets.clone();
        async move {
            let body = post(i);
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&body),
                    Duration::from_secs(5),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e.to_string())
        }
    };
    for i in 0..10 {
        send(i32::try_from(i % 2).expect("small"), i)
            .await
            .expect("sent");
        sent += 1;
    }
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/hashtags/durability", api.url);
    let all_time = |want: usize| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            wait_for(
                &format!("all-time count {want}"),
                Duration::from_secs(120),
                || async {
                    let (_, body) = e2e::get_json(&client, &url).await?;
                    match body["counts"]["all"].as_i64() {
                        Some(n) if n == i64::try_from(want).unwrap_or(-1) => Ok(()),
                        other => Err(format!("all-time count {other:?}")),
                    }
                },
            )
            .await
        }
    };
    all_time(sent).await.expect("the first posts are counted");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    for result in admin
        .create_partitions(
            &[NewPartitions::new(&topics.tweets, 4)],
            &AdminOptions::new(),
        )
        .await
        .expect("create partitions")
    {
        result.expect("partitions added");
    }
    // Posts on the new partitions (the producer learns of them within a second).
    for partition in [2, 3] {
        for _ in 0..5 {
            let i = sent;
            wait_for(
                "a post sent to a new partition",
                Duration::from_secs(30),
                || send(partition, i),
            )
            .await
            .expect("sent");
            sent += 1;
        }
    }
    all_time(sent).await.unwrap_or_else(|e| {
        panic!(
            "{e}\naggregator: {}\napi: {}",
            aggregator.process.log(),
            api.process.log()
        )
    });
    let kafka = KafkaSettings::plaintext(bootstrap);
    let counts =
        trends_common::kafka::partition_count(&kafka, &topics.counts, Duration::from_secs(10))
            .expect("metadata");
    assert_eq!(counts, Some(4), "the counts topic grew with the input");
    assert!(api.process.is_running() && aggregator.process.is_running());
    api.process
        .terminate(Duration::from_secs(30))
        .expect("stop api");
    aggregator
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop aggregator");
}
