//! Honest catch-up, against a real broker: until the counts topic has been read to its end,
//! the data endpoints answer 503 `not_ready` (never a partial sum), then exactly what the
//! topic says; readiness is lost while the follower lags past `api.max_ready_lag_records`,
//! and meanwhile the last complete snapshot is served unchanged.
//!
//! The follower is held with [`Hold`] (it reads nothing while held, as a follower that cannot
//! keep up), which makes "not caught up yet" and "lagging" observable without racing it.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_api::follower::Hold;
use trends_api::settings::Settings;
use trends_common::config::Load as _;
use trends_common::kafka::{TopicSpec, client_config, ensure_topics};

use crate::helpers::NOON;

/// Waits for conditions that depend on the broker and the follower.
const WAIT: Duration = Duration::from_secs(60);

/// An API following its own counts topic of two partitions, with a plain producer to write it.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub hold: Hold,
    topic: String,
    producer: FutureProducer,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Api {
    /// Creates the topic, writes `records` (partition, key, value), and starts the API held
    /// or not, with `extra` settings.
    pub async fn start(
        records: &[(i32, String, String)],
        held: bool,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Api> {
        let broker = KafkaBroker::shared();
        let topic = unique_name("counts");
        let mut vars: HashMap<String, String> = [
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
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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
        let producer: FutureProducer = client_config(&settings.kafka, "catch-up-test").create()?;
        let hold = if held {
            Hold::engaged()
        } else {
            Hold::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let api = Api {
            base,
            http: reqwest::Client::new(),
            hold: hold.clone(),
            topic,
            producer,
            shutdown: shutdown.clone(),
            task: tokio::spawn(trends_api::run_with_hold(
                settings, listener, shutdown, hold,
            )),
        };
        api.write(records).await?;
        Ok(api)
    }

    /// Writes records, in order per partition.
    pub async fn write(&self, records: &[(i32, String, String)]) -> anyhow::Result<()> {
        for (partition, key, value) in records {
            self.producer
                .send(
                    FutureRecord::to(&self.topic)
                        .partition(*partition)
                        .key(key.as_bytes())
                        .payload(value.as_bytes()),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    /// Status, `Retry-After` and JSON body (`Null` if not JSON) of a GET.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Option<String>, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, retry_after, body))
    }

    /// Polls `path` until it answers `status`.
    pub async fn wait_for_status(&self, path: &str, status: StatusCode) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok((got, _, _)) = self.get(path).await {
                if got == status {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "{path} never answered {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task).await???;
        Ok(())
    }
}

pub fn record(partition: i32, key: &str, value: &str) -> (i32, String, String) {
    (partition, key.to_string(), value.to_string())
}

/// `(hashtag, count)` of a `/trends` body.
fn ranking(body: &Value) -> Vec<(String, i64)> {
    body["trends"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    (
                        t["hashtag"].as_str().unwrap_or_default().to_string(),
                        t["count"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_endpoints_answer_503_until_caught_up_then_the_exact_counts() -> anyhow::Result<()> {
    let records = [
        record(0, "0|w", &format!(r#"{{"watermark":{NOON}}}"#)),
        record(0, "0|a|rust", r#"{"count":3}"#),
        record(1, "1|a|rust", r#"{"count":4}"#),
        record(1, "1|a|kafka", r#"{"count":5}"#),
        record(1, "1|w", &format!(r#"{{"watermark":{}}}"#, NOON - 1000)),
    ];
    let api = Api::start(&records, true, &[]).await?;
    api.wait_for_status("/healthz", StatusCode::OK).await?;
    // Held: nothing has been read, so nothing is served, whatever the time waited.
    for path in [
        "/readyz",
        "/api/v1/trends?window=all",
        "/api/v1/hashtags/rust",
        "/api/v1/stream?window=all",
    ] {
        let (status, retry_after, body) = api.get(path).await?;
        assert_eq!(
            (status, retry_after.as_deref(), &body["error"]["code"]),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("1"),
                &json!("not_ready")
            ),
            "{path}"
        );
    }
    api.hold.release();
    api.wait_for_status("/readyz", StatusCode::OK).await?;
    // The first answer after readiness is the whole topic: 7 rust (3 + 4), 5 kafka.
    let (status, _, body) = api.get("/api/v1/trends?window=all").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ranking(&body),
        [("rust".to_string(), 7), ("kafka".to_string(), 5)]
    );
    assert_eq!(body["watermark"], "2026-11-23T12:00:00.000Z");
    let (status, _, body) = api.get("/api/v1/hashtags/kafka").await?;
    assert_eq!(
        (status, &body["counts"]["all"]),
        (StatusCode::OK, &json!(5))
    );
    api.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_past_the_threshold_loses_readiness_and_serves_the_last_complete_snapshot()
-> anyhow::Result<()> {
    const MAX_LAG: usize = 50;
    let records = [
        record(0, "0|w", &format!(r#"{{"watermark":{NOON}}}"#)),
        record(0, "0|a|rust", r#"{"count":3}"#),
    ];
    let api = Api::start(
        &records,
        false,
        &[("TRENDS__API__MAX_READY_LAG_RECORDS", &MAX_LAG.to_string())],
    )
    .await?;
    api.wait_for_status("/readyz", StatusCode::OK).await?;
    let (_, _, before) = api.get("/api/v1/trends?window=all").await?;
    assert_eq!(ranking(&before), [("rust".to_string(), 3)]);

    // The follower stops reading; twice the threshold of new counts arrive: rust climbs to
    // 3 + 2 × MAX_LAG on partition 1.
    tokio::time::timeout(WAIT, api.hold.engage()).await?;
    let burst: Vec<(i32, String, String)> = (1..=2 * MAX_LAG)
        .map(|n| record(1, "1|a|rust", &format!(r#"{{"count":{n}}}"#)))
        .collect();
    api.write(&burst).await?;
    api.wait_for_status("/readyz", StatusCode::SERVICE_UNAVAILABLE)
        .await?;
    let (status, _, body) = api.get("/readyz").await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("not_ready"))
    );
    // Not ready again: the last complete snapshot, unchanged, not a 503 and not a mix.
    let (status, _, during) = api.get("/api/v1/trends?window=all").await?;
    assert_eq!((status, &during), (StatusCode::OK, &before));

    api.hold.release();
    api.wait_for_status("/readyz", StatusCode::OK).await?;
    let (_, _, after) = api.get("/api/v1/trends?window=all").await?;
    assert_eq!(
        ranking(&after),
        [("rust".to_string(), 3 + 2 * MAX_LAG as i64)]
    );
    api.stop().await
}

/// The aggregator writes counts in transactions, and each ends with a commit marker in every
/// partition it wrote: a record that takes an offset but that no consumer is given. Once the
/// counts stop, the lag must still come down to 0 (an alert on lag would never clear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_reaches_zero_past_the_commit_markers_of_transactional_counts() -> anyhow::Result<()>
{
    let api = Api::start(&[], false, &[]).await?;
    let broker = KafkaBroker::shared();
    let settings = Settings::load_from(&HashMap::from([(
        "TRENDS__KAFKA__BOOTSTRAP_SERVERS".to_string(),
        broker.bootstrap_servers().to_string(),
    )]))?;
    let producer: BaseProducer = client_config(&settings.kafka, "catch-up-test")
        .set("transactional.id", unique_name("counts-writer"))
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    // Transactions for a few seconds, so that the ends the follower probes (every second) are
    // mostly older than its reads, as with a live aggregator.
    const ROUNDS: i64 = 60;
    for round in 1..=ROUNDS {
        tokio::time::sleep(Duration::from_millis(40)).await;
        producer.begin_transaction()?;
        for (partition, key) in [(0, "0|a|rust"), (1, "1|a|rust")] {
            let value = format!(r#"{{"count":{round}}}"#);
            producer
                .send(
                    BaseRecord::to(&api.topic)
                        .partition(partition)
                        .key(key)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)?;
        }
        producer.commit_transaction(Duration::from_secs(30))?;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, trends) = api.get("/api/v1/trends?window=all").await?;
        let metrics = api
            .http
            .get(format!("{}/metrics", api.base))
            .send()
            .await?
            .text()
            .await?;
        let lag = metrics
            .lines()
            .find_map(|line| line.strip_prefix("trends_api_counts_lag_records "))
            .map(str::to_string);
        if ranking(&trends) == [("rust".to_string(), 2 * ROUNDS)] && lag.as_deref() == Some("0") {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "lag {lag:?} and trends {trends} after the last commit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.stop().await
}
