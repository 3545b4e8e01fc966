//! The follower against a real broker: the counts topic is written with a plain producer,
//! good records mixed with records that cannot be decoded. The API must serve exactly what the
//! good ones say, skip the others without stopping, and count each skip in
//! `trends_api_counts_records_skipped_total`.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_api::settings::Settings;
use trends_common::config::Load as _;
use trends_common::kafka::{TopicSpec, client_config, ensure_topics};

use crate::helpers::NOON;

/// One record of the counts topic as written, and whether it is malformed.
struct Written {
    partition: i32,
    key: &'static [u8],
    value: Vec<u8>,
    malformed: bool,
}

fn written(partition: i32, key: &'static [u8], value: &str, malformed: bool) -> Written {
    Written {
        partition,
        key,
        value: value.as_bytes().to_vec(),
        malformed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_counts_records_are_counted_and_skipped() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("counts");
    let vars: HashMap<String, String> = [
        (
            "TRENDS__KAFKA__BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        ),
        ("TRENDS__TOPICS__COUNTS", topic.as_str()),
        ("TRENDS__HTTP__ADDR", "127.0.0.1:0"),
        ("TRENDS__API__SNAPSHOT_INTERVAL_MS", "50"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = Settings::load_from(&vars)?;
    ensure_topics(
        &settings.kafka,
        &[TopicSpec {
            name: &topic,
            partitions: 2,
            config: vec![],
        }],
    )
    .await?;

    // In order per partition: a bad record before a good one must not hide it.
    let records = [
        written(0, b"0|w", &format!(r#"{{"watermark":{NOON}}}"#), false),
        written(0, b"no separator", "{}", true),
        written(0, b"0|a|rust", "not json", true),
        written(0, b"0|a|rust", r#"{"count":3}"#, false),
        written(0, b"\xff\xfe|a|x", r#"{"count":1}"#, true),
        written(1, b"1|q|kafka", r#"{"count":1}"#, true),
        written(1, b"1|a|kafka", r#"{"count":2}"#, false),
        written(1, b"1|w", r#"{"watermark":"soon"}"#, true),
    ];
    let expected_skips = records.iter().filter(|r| r.malformed).count();
    let producer: FutureProducer = client_config(&settings.kafka, "follower-test").create()?;
    for record in &records {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(record.partition)
                    .key(record.key)
                    .payload(&record.value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let api = tokio::spawn(trends_api::run_with_listener(
        settings,
        listener,
        shutdown.clone(),
    ));

    // Ready means every partition was read to its end: every record above went through.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the API never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let skipped = format!("trends_api_counts_records_skipped_total {expected_skips}\n");
    assert!(metrics.contains(&skipped), "no {skipped:?} in\n{metrics}");

    // The good records, all of them, and nothing else.
    let trends: Value = http
        .get(format!("{base}/api/v1/trends?window=all"))
        .send()
        .await?
        .json()
        .await?;
    let ranking: Vec<(Value, Value)> = trends["trends"]
        .as_array()
        .expect("trends")
        .iter()
        .map(|t| (t["hashtag"].clone(), t["count"].clone()))
        .collect();
    assert_eq!(
        ranking,
        vec![(json!("rust"), json!(3)), (json!("kafka"), json!(2))]
    );
    assert_eq!(trends["watermark"], "2026-11-23T12:00:00.000Z");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), api).await???;
    Ok(())
}
