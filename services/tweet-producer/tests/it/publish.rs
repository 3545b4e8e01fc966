//! The producer against a real Kafka broker (from `test_support`): what arrives in the topic is
//! exactly what was meant to, keyed by the contract and timestamped by the broker, a SIGTERM
//! loses nothing that was sent, a `kill -9` of a file replay repeats nothing, and a post too
//! large for the topic or the client is skipped and counted instead of stopping the service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Timestamp;
use rdkafka::{Message, Offset, TopicPartitionList};
use test_support::{KafkaBroker, spawn_killed_on_parent_exit, unique_name};
use tokio_util::sync::CancellationToken;
use trends_common::config::Load as _;
use trends_common::kafka::partition_count;
use trends_core::post::parse_post;
use tweet_producer::metrics::Metrics;
use tweet_producer::publisher::{Publisher, PublisherOptions, Sent};
use tweet_producer::settings::Settings;

use crate::support::{self, TIMEOUT, kafka_settings};

/// One record read back from the topic.
#[derive(Debug)]
struct Record {
    partition: i32,
    key: String,
    payload: Vec<u8>,
    timestamp: Timestamp,
}

/// The environment that points the producer at the test broker and topic (and an offsets
/// topic of its own).
fn base_env(bootstrap: &str, topic: &str) -> Vec<(String, String)> {
    let offsets = format!("{topic}-offsets");
    [
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("TRENDS__TOPICS__TWEETS", topic),
        ("TRENDS__TOPICS__SOURCE_OFFSETS", offsets.as_str()),
        ("TRENDS__LOG__FORMAT", "json"),
        ("TRENDS__PRODUCER__METRICS_ADDR", "127.0.0.1:0"),
        ("TRENDS__LOG__FILTER", "info,librdkafka=warn,rdkafka=warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Waits until `topic` exists (the producer creates it) and returns its partition count.
fn wait_for_topic(bootstrap: &str, topic: &str) -> anyhow::Result<i32> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(n) = partition_count(&kafka_settings(bootstrap), topic, Duration::from_secs(5))?
        {
            return Ok(n);
        }
        ensure!(Instant::now() < deadline, "topic {topic} was never created");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A consumer of committed records assigned to every partition of `topic` from the beginning.
fn consumer_from_start(bootstrap: &str, topic: &str) -> anyhow::Result<(BaseConsumer, i32)> {
    let partitions = wait_for_topic(bootstrap, topic)?;
    let consumer = support::committed_reader(bootstrap)?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok((consumer, partitions))
}

fn poll_record(consumer: &BaseConsumer) -> anyhow::Result<Option<Record>> {
    let Some(message) = consumer.poll(Duration::from_millis(100)) else {
        return Ok(None);
    };
    let message = message?;
    Ok(Some(Record {
        partition: message.partition(),
        key: String::from_utf8(message.key().context("record without key")?.to_vec())?,
        payload: message.payload().context("record without value")?.to_vec(),
        timestamp: message.timestamp(),
    }))
}

/// Every committed record of `topic` (read with `read_committed` to the end of every
/// partition). Returns the partition count too.
fn read_all(bootstrap: &str, topic: &str) -> anyhow::Result<(Vec<Record>, i32)> {
    let partitions = wait_for_topic(bootstrap, topic)?;
    let mut records = Vec::new();
    for record in support::read_committed(bootstrap, topic)? {
        records.push(Record {
            partition: record.partition,
            key: String::from_utf8(record.key.context("record without key")?)?,
            payload: record.payload.context("record without value")?,
            timestamp: record.timestamp,
        });
    }
    Ok((records, partitions))
}

/// Checks every record against the contract: a valid post, key = its author (its id without
/// one), the broker's timestamp
/// (`LogAppendTime`: the producer sets none), ids unique. Returns the ids.
fn check_contract(records: &[Record]) -> anyhow::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for record in records {
        let parsed = parse_post(&record.payload)
            .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&record.payload)))?;
        // Keyed by author (all of an author's posts on one partition), by id without one.
        let author_or_id = parsed.post.author_id.as_ref().unwrap_or(&parsed.post.id);
        ensure!(
            &record.key == author_or_id,
            "key {} for post {} by {:?}",
            record.key,
            parsed.post.id,
            parsed.post.author_id
        );
        ensure!(
            matches!(record.timestamp, Timestamp::LogAppendTime(t) if t > 0),
            "timestamp {:?} for post {}",
            record.timestamp,
            parsed.post.id
        );
        ensure!(
            ids.insert(parsed.post.id.clone()),
            "duplicate post {}",
            parsed.post.id
        );
    }
    Ok(ids)
}

/// The built binary with `env` (and nothing from the caller's TRENDS_* or RUST_LOG), stderr
/// captured by a thread so the child never blocks on a full pipe.
fn spawn_producer(env: &[(String, String)]) -> anyhow::Result<(Child, JoinHandle<String>)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tweet-producer"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TRENDS") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn_killed_on_parent_exit(cmd)?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    Ok((child, reader))
}

/// Waits for the child to exit, killing it after `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("tweet-producer did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON log events of a run (the binary logs JSON lines with `TRENDS__LOG__FORMAT=json`).
fn log_events(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The `published` count of the final "stopped" event.
fn logged_published(log: &str) -> Option<u64> {
    log_events(log).iter().rev().find_map(|event| {
        let message = event.get("message")?.as_str()?;
        message
            .starts_with("stopped")
            .then(|| event.get("published")?.as_u64())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_posts_arrive_exactly_once_keyed_and_stamped_by_the_broker() -> anyhow::Result<()>
{
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-synthetic");
    let mut env: HashMap<String, String> = base_env(broker.bootstrap_servers(), &topic)
        .into_iter()
        .collect();
    env.insert("TRENDS__SOURCE__SYNTHETIC__LIMIT".into(), "2000".into());
    env.insert("TRENDS__SOURCE__SYNTHETIC__RATE".into(), "0".into());
    let settings = Settings::load_from(&env)?;

    let summary = tweet_producer::run(settings, CancellationToken::new()).await?;
    assert_eq!(summary.published, 2000);
    assert_eq!(summary.skipped, 0);

    let bootstrap = broker.bootstrap_servers().to_owned();
    let (records, partitions) =
        tokio::task::spawn_blocking(move || read_all(&bootstrap, &topic)).await??;
    assert_eq!(partitions, 12, "topics.partitions default");
    let ids = check_contract(&records)?;
    let expected: HashSet<String> = (0..2000).map(|i| format!("syn-42-{i}")).collect();
    let mut missing: Vec<_> = expected.difference(&ids).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{} missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(records.len(), 2000);
    assert_eq!(
        ids,
        (0..2000)
            .map(|i| format!("syn-42-{i}"))
            .collect::<HashSet<_>>()
    );
    // Keyed by id, so posts spread over the partitions.
    let used: HashSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(used.len() >= 10, "only partitions {used:?} used");
    Ok(())
}

#[test]
fn file_source_publishes_exactly_the_good_lines() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-file");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("posts.jsonl");
    let good: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"id":"file-{i}","text":"post {i} about #Rust and #カフカ","created_at":"2026-11-22T10:00:00.{i}50Z","lang":"en","extra":{{"kept":true}}}}"#
            )
        })
        .collect();
    let lines = [
        good[0].as_str(),
        good[1].as_str(),
        r#"{"id":"broken","text":"no end"#,
        good[2].as_str(),
        "",
        good[3].as_str(),
        good[4].as_str(),
    ];
    std::fs::write(&path, lines.join("\n") + "\n")?;

    let mut env = base_env(broker.bootstrap_servers(), &topic);
    env.push(("TRENDS__SOURCE__KIND".into(), "file".into()));
    env.push((
        "TRENDS__SOURCE__FILE__PATH".into(),
        path.display().to_string(),
    ));
    env.push(("TRENDS__SOURCE__FILE__PACE".into(), "original".into()));
    let (mut child, stderr) = spawn_producer(&env)?;
    let status = wait_exit(&mut child, TIMEOUT)?;
    let log = stderr
        .join()
        .map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;
    assert!(status.success(), "exit {status}; log:\n{log}");

    let (records, _) = read_all(broker.bootstrap_servers(), &topic)?;
    check_contract(&records)?;
    let by_id: BTreeMap<String, &[u8]> = records
        .iter()
        .map(|r| {
            let id = parse_post(&r.payload)
                .map(|p| p.post.id)
                .unwrap_or_default();
            (id, r.payload.as_slice())
        })
        .collect();
    assert_eq!(records.len(), 5, "log:\n{log}");
    for (i, line) in good.iter().enumerate() {
        let key = format!("file-{i}");
        assert_eq!(
            by_id.get(key.as_str()).copied(),
            Some(line.as_bytes()),
            "published as written"
        );
    }
    // The bad line was reported with its number, and counted.
    let events = log_events(&log);
    assert!(
        events
            .iter()
            .any(|e| e["level"] == "WARN" && e["line"] == 3),
        "no warning for line 3 in:\n{log}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["published"] == 5 && e["skipped"] == 1),
        "no final summary in:\n{log}"
    );
    Ok(())
}

#[test]
fn sigterm_flushes_what_was_accepted_and_exits_zero() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-sigterm");
    let mut env = base_env(broker.bootstrap_servers(), &topic);
    env.push(("TRENDS__SOURCE__SYNTHETIC__LIMIT".into(), "0".into()));
    env.push(("TRENDS__SOURCE__SYNTHETIC__RATE".into(), "200".into()));
    let (mut child, stderr) = spawn_producer(&env)?;

    // Wait, by consuming, until at least 100 posts are in the topic.
    let (consumer, _) = consumer_from_start(broker.bootstrap_servers(), &topic)?;
    let mut seen = 0;
    let deadline = Instant::now() + TIMEOUT;
    while seen < 100 {
        if let Some(status) = child.try_wait()? {
            bail!("tweet-producer exited early ({status})");
        }
        ensure!(
            Instant::now() < deadline,
            "only {seen} posts after {TIMEOUT:?}"
        );
        if poll_record(&consumer)?.is_some() {
            seen += 1;
        }
    }

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(term.success(), "kill -TERM failed");
    let stopping = Instant::now();
    let status = wait_exit(&mut child, Duration::from_secs(30))?;
    let stop_time = stopping.elapsed();
    let log = stderr
        .join()
        .map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(
        stop_time < Duration::from_secs(10),
        "took {stop_time:?} to stop"
    );

    let published = logged_published(&log).with_context(|| format!("no summary in:\n{log}"))?;
    let (records, _) = read_all(broker.bootstrap_servers(), &topic)?;
    check_contract(&records)?;
    assert!(published >= 100, "published {published}");
    assert_eq!(
        records.len() as u64,
        published,
        "the topic holds what was logged"
    );
    Ok(())
}

#[test]
fn a_bad_setting_exits_2_naming_the_key() -> anyhow::Result<()> {
    let env = vec![("TRENDS__SOURCE__KIND".to_owned(), "file".to_owned())];
    let (mut child, stderr) = spawn_producer(&env)?;
    let status = wait_exit(&mut child, Duration::from_secs(10))?;
    let log = stderr
        .join()
        .map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;
    assert_eq!(status.code(), Some(2));
    assert!(log.starts_with("error: "), "{log}");
    assert!(log.contains("source.file.path"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}

/// Text that lz4 cannot shrink much: `len` pseudo-random letters.
fn incompressible(len: usize, seed: u64) -> String {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + u8::try_from((x >> 33) % 26).unwrap_or(0))
        })
        .collect()
}

/// A topic someone created with a small `max.message.bytes` refuses larger records at the
/// broker, which would fail the whole transaction, and the restart would meet the post again.
/// The producer reads the topic's limit at start: a post over it is skipped and counted, the
/// others are published, and the run ends cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_the_topic_would_refuse_is_skipped_and_counted() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-tiny");
    trends_common::kafka::ensure_topics(
        &kafka_settings(broker.bootstrap_servers()),
        &[trends_common::kafka::TopicSpec {
            name: &topic,
            partitions: 1,
            config: vec![
                ("max.message.bytes", "1024"),
                ("message.timestamp.type", "LogAppendTime"),
            ],
        }],
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.jsonl");
    let small: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"id":"small-{i}","text":"{} #rust","created_at":"2026-11-22T10:00:00Z"}}"#,
                incompressible(150, i)
            )
        })
        .collect();
    let big = format!(
        r#"{{"id":"big","text":"{}","created_at":"2026-11-22T10:00:00Z"}}"#,
        incompressible(4_000, 99)
    );
    let mut lines = small[..10].to_vec();
    lines.push(big);
    lines.extend_from_slice(&small[10..]);
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let mut env: HashMap<String, String> = base_env(broker.bootstrap_servers(), &topic)
        .into_iter()
        .collect();
    env.insert("TRENDS__SOURCE__KIND".into(), "file".into());
    env.insert(
        "TRENDS__SOURCE__FILE__PATH".into(),
        path.display().to_string(),
    );
    let settings = Settings::load_from(&env)?;
    let metrics = Arc::new(Metrics::new("file"));

    let summary = tokio::time::timeout(
        TIMEOUT,
        tweet_producer::run_with_metrics(settings, CancellationToken::new(), Arc::clone(&metrics)),
    )
    .await??;
    assert_eq!(summary.published, 20);
    assert_eq!(metrics.oversized.get(), 1);
    let bootstrap = broker.bootstrap_servers().to_owned();
    let (records, _) = tokio::task::spawn_blocking(move || read_all(&bootstrap, &topic)).await??;
    let ids = check_contract(&records)?;
    assert_eq!(
        ids,
        (0..20)
            .map(|i| format!("small-{i}"))
            .collect::<HashSet<_>>()
    );
    Ok(())
}

/// A record librdkafka refuses synchronously for its content (over `message.max.bytes`) is
/// returned as refused, never queued: the transaction goes on and commits the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_client_refuses_leaves_the_transaction_intact() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-refused");
    let offsets = unique_name("offsets-refused");
    let kafka = kafka_settings(broker.bootstrap_servers());
    trends_common::kafka::ensure_topics(
        &kafka,
        &[
            trends_common::kafka::TopicSpec::tweets(&topic, 2),
            tweet_producer::pipeline::offsets::topic_spec(&offsets),
        ],
    )
    .await?;
    let metrics = Arc::new(Metrics::new("synthetic"));
    let mut publisher = Publisher::start(
        &kafka,
        &topic,
        &PublisherOptions {
            transactional_id: unique_name("refused"),
            max_in_flight: 100,
            batch_bytes: 1_000_000,
        },
        Arc::clone(&metrics),
    )
    .await?;
    let post = |id: &str, text: &str| {
        format!(r#"{{"id":"{id}","text":"{text}","created_at":"2026-11-22T10:00:00Z"}}"#)
    };
    let huge = post(
        "huge",
        &incompressible(trends_common::kafka::MESSAGE_MAX_BYTES, 5),
    );
    assert_eq!(
        publisher.send("a", post("a", "#one").as_bytes()).await?,
        Sent::Queued
    );
    assert_eq!(
        publisher.send("huge", huge.as_bytes()).await?,
        Sent::Refused(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert_eq!(
        publisher.send("b", post("b", "#two").as_bytes()).await?,
        Sent::Queued
    );
    let committed = publisher
        .commit(Some(("test-source", b"{}".as_slice())), &offsets)
        .await?;
    assert_eq!(committed, 2);
    assert_eq!(metrics.published.get(), 2);
    assert_eq!(metrics.transactions.get(), 1);
    let bootstrap = broker.bootstrap_servers().to_owned();
    let (records, _) = tokio::task::spawn_blocking(move || read_all(&bootstrap, &topic)).await??;
    let ids = check_contract(&records)?;
    assert_eq!(ids, HashSet::from(["a".to_owned(), "b".to_owned()]));
    Ok(())
}

/// A file replay killed with `kill -9` part-way and started again publishes every line exactly
/// once: the restart resumes at the byte offset committed with the last transaction.
#[test]
fn a_killed_file_replay_resumes_where_its_last_transaction_ended() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let topic = unique_name("tweets-file-kill");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("posts.jsonl");
    let total = 3_000;
    let mut lines = Vec::new();
    for i in 0..total {
        if i % 500 == 250 {
            lines.push("not a post".to_owned());
        }
        // One post a millisecond: paced, the replay takes about 3 s.
        let (s, ms) = (i / 1000, i % 1000);
        lines.push(format!(
            r#"{{"id":"line-{i}","text":"post {i} #kill","created_at":"2026-11-22T10:00:{s:02}.{ms:03}Z"}}"#
        ));
    }
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let mut env = base_env(broker.bootstrap_servers(), &topic);
    env.push(("TRENDS__SOURCE__KIND".into(), "file".into()));
    env.push((
        "TRENDS__SOURCE__FILE__PATH".into(),
        path.display().to_string(),
    ));
    env.push(("TRENDS__SOURCE__FILE__PACE".into(), "original".into()));
    env.push(("TRENDS__PRODUCER__COMMIT_INTERVAL_MS".into(), "100".into()));
    let (mut child, stderr) = spawn_producer(&env)?;

    // Kill it once some posts are committed, well before the end.
    let (consumer, _) = consumer_from_start(broker.bootstrap_servers(), &topic)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = 0;
    while seen < 500 {
        if let Some(status) = child.try_wait()? {
            bail!("tweet-producer exited early ({status})");
        }
        ensure!(Instant::now() < deadline, "only {seen} committed posts");
        if poll_record(&consumer)?.is_some() {
            seen += 1;
        }
    }
    child.kill()?;
    child.wait()?;
    let first_log = stderr
        .join()
        .map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;

    let (mut child, stderr) = spawn_producer(&env)?;
    let status = wait_exit(&mut child, TIMEOUT)?;
    let log = stderr
        .join()
        .map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(
        log.contains("resuming the file where the last run committed"),
        "first run:\n{first_log}\nsecond run:\n{log}"
    );
    let (records, _) = read_all(broker.bootstrap_servers(), &topic)?;
    let ids = check_contract(&records)?;
    assert_eq!(records.len(), total, "no line twice");
    assert_eq!(
        ids,
        (0..total)
            .map(|i| format!("line-{i}"))
            .collect::<HashSet<_>>(),
        "no line lost"
    );
    let published = logged_published(&log).context("a summary")?;
    assert!(
        published < total as u64,
        "the restart published only the rest ({published})"
    );
    Ok(())
}
