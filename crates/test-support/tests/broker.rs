//! The broker really is Kafka: topics, produce, consume, and data surviving a restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use test_support::{KafkaBroker, spawn_killed_on_parent_exit, unique_name};

const PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn private_broker_keeps_records_across_restart() -> anyhow::Result<()> {
    let mut broker = KafkaBroker::start()?;
    let topic = unique_name("round-trip");
    create_topic(broker.bootstrap_servers(), &topic).await?;

    let expected: BTreeSet<String> = (0..100).map(|i| format!("payload-{i}")).collect();
    let producer = new_producer(broker.bootstrap_servers())?;
    for i in 0..100 {
        let (key, payload) = (format!("key-{i}"), format!("payload-{i}"));
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                TIMEOUT,
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    drop(producer);
    let read = read_all(broker.bootstrap_servers(), &topic)?;
    assert_eq!(read.len(), 100);
    assert_eq!(read, expected);

    let before = broker.bootstrap_servers().to_owned();
    broker.restart()?;
    assert_eq!(broker.bootstrap_servers(), before);
    assert_eq!(read_all(broker.bootstrap_servers(), &topic)?, expected);

    new_producer(broker.bootstrap_servers())?
        .send(
            FutureRecord::to(&topic)
                .key("late")
                .payload("after-restart"),
            TIMEOUT,
        )
        .await
        .map_err(|(e, _)| e)?;
    let mut expected = expected;
    expected.insert("after-restart".to_owned());
    assert_eq!(read_all(broker.bootstrap_servers(), &topic)?, expected);
    Ok(())
}

#[test]
fn shared_broker_is_started_once() -> anyhow::Result<()> {
    let first = KafkaBroker::shared();
    let second = KafkaBroker::shared();
    assert!(std::ptr::eq(first, second));
    assert_eq!(first.bootstrap_servers(), second.bootstrap_servers());

    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", first.bootstrap_servers())
        .create()?;
    let metadata = client.fetch_metadata(None, TIMEOUT)?;
    assert_eq!(metadata.brokers().len(), 1);
    Ok(())
}

#[test]
fn unique_names_differ() {
    let a = unique_name("topic");
    let b = unique_name("topic");
    assert_ne!(a, b);
    assert!(a.starts_with(&format!("topic-{}-", std::process::id())));
}

/// Env var telling a re-run of this test binary to act as the "dying parent" below.
const CHILD_MODE: &str = "TEST_KAFKA_DYING_PARENT";

/// A process spawned from a short-lived thread outlives that thread, but not the process.
#[test]
fn spawned_child_dies_with_the_process_not_the_thread() -> anyhow::Result<()> {
    if std::env::var_os(CHILD_MODE).is_some() {
        return dying_parent();
    }
    let output = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "spawned_child_dies_with_the_process_not_the_thread",
            "--nocapture",
        ])
        .env(CHILD_MODE, "1")
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid = stdout
        .lines()
        .find_map(|line| line.strip_prefix("SLEEPER_PID="))
        .with_context(|| format!("the dying parent printed no pid: {stdout}"))?;
    let proc_dir = Path::new("/proc").join(pid.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc_dir.exists() && !is_zombie(&proc_dir) {
        ensure!(
            Instant::now() < deadline,
            "sleeper {pid} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Runs in the child process: spawn a sleeper from a thread that then ends, check the sleeper
/// survives that, print its pid and exit without killing it.
fn dying_parent() -> anyhow::Result<()> {
    let mut sleeper = std::thread::spawn(|| {
        let mut cmd = Command::new("sleep");
        cmd.arg("600").stdout(Stdio::null());
        spawn_killed_on_parent_exit(cmd)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("spawning thread panicked"))??;
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = sleeper.try_wait()? {
        bail!("sleeper died with its spawning thread: {status}");
    }
    println!("SLEEPER_PID={}", sleeper.id());
    std::process::exit(0);
}

/// A killed process stays a zombie until its (new) parent reaps it; count that as dead.
fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
    })
}

async fn create_topic(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await?;
    for result in results {
        result.map_err(|(topic, e)| anyhow::anyhow!("cannot create {topic}: {e}"))?;
    }
    Ok(())
}

fn new_producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .create()?)
}

/// Every payload in `topic`: reads all partitions from the beginning up to their high
/// watermarks, so the count is exact without waiting for "no more records". Fails on a
/// duplicate payload.
fn read_all(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeSet<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        total += high - low;
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let mut payloads = BTreeSet::new();
    let mut seen = 0;
    let deadline = Instant::now() + TIMEOUT;
    while seen < total {
        ensure!(
            Instant::now() < deadline,
            "read {seen} of {total} records from {topic}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let payload = message.payload_view::<str>().context("no payload")??;
            ensure!(
                payloads.insert(payload.to_owned()),
                "duplicate payload {payload}"
            );
            seen += 1;
        }
    }
    Ok(payloads)
}
