//! Durable defaults (issue 16 §2): the topics the services create are replicated as the broker
//! says and acknowledged by min(2, replicas) brokers, and the aggregator refuses a counts topic
//! that would delete its state by age.

use std::time::Duration;

use e2e::{Topics, create_topic, wait_for};
use test_support::{KafkaBroker, unique_name};
use trends_common::kafka::topic_config;
use trends_common::settings::KafkaSettings;

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
                match topic_config(&kafka, topic, "min.insync.replicas").await {
                    Ok(Some(value)) => Ok(value),
                    Ok(None) => Err("not described yet".to_string()),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
        .expect("the topic exists");
        // One broker: its default.replication.factor is 1, so min(2, 1) = 1.
        assert_eq!(min_isr, "1", "{topic}");
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
