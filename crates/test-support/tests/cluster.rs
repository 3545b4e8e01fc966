//! A three-node cluster really replicates: a topic with the default replication gets three
//! replicas and min ISR 2, and acks=all production goes on while the leader of a partition
//! is SIGKILLed; the node then restarts on its data and rejoins the in-sync replicas.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use common::{create_topic, payloads, produce, producer, read_all};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::{FutureProducer, Producer};
use test_support::{KafkaCluster, unique_name};

const PARTITIONS: i32 = 3;

#[tokio::test]
async fn three_nodes_survive_the_leader_being_killed() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut cluster = KafkaCluster::start(3)?;
    println!("3-node cluster up in {:?}", started.elapsed());
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    assert_eq!(cluster.bootstrap_servers().split(',').count(), 3);
    let metadata_client: BaseConsumer = cluster.client_config().create()?;
    let brokers = metadata_client.fetch_metadata(None, common::TIMEOUT)?;
    assert_eq!(brokers.brokers().len(), 3);

    // The broker's default replication (-1): three replicas, min ISR 2.
    let topic = unique_name("replicated");
    let config = cluster.client_config();
    create_topic(&config, &topic, PARTITIONS, -1).await?;
    let metadata = metadata_client.fetch_metadata(Some(&topic), common::TIMEOUT)?;
    for partition in metadata.topics()[0].partitions() {
        assert_eq!(
            partition.replicas().len(),
            3,
            "partition {}",
            partition.id()
        );
    }
    assert_eq!(
        topic_config(&config, &topic, "min.insync.replicas").await?,
        "2"
    );

    // Transactional producers make the cluster create __transaction_state (RF 3) while all
    // nodes are up. The harness's computed coordinator must be the one the broker names in
    // its FindCoordinator answer, which librdkafka logs with `debug=eos`; three ids, so that
    // a wrong rule cannot pass by chance (3 partitions led by 3 different nodes).
    for n in 0..3 {
        let transactional_id = unique_name(&format!("tx{n}"));
        let log = LogCapture::default();
        let transactional: FutureProducer<LogCapture> = config
            .clone()
            .set("transactional.id", &transactional_id)
            .set("debug", "eos")
            .set_log_level(RDKafkaLogLevel::Debug)
            .create_with_context(log.clone())?;
        transactional.init_transactions(common::TIMEOUT)?;
        let coordinator = cluster.transaction_coordinator(&transactional_id)?;
        println!("transaction coordinator of {transactional_id}: node {coordinator}");
        assert_eq!(
            log.last_id(
                "FindCoordinator response",
                "Transaction coordinator is broker "
            ),
            Some(coordinator),
            "FindCoordinator named another node for {transactional_id}"
        );
    }
    let tx_metadata =
        metadata_client.fetch_metadata(Some("__transaction_state"), common::TIMEOUT)?;
    for partition in tx_metadata.topics()[0].partitions() {
        assert_eq!(partition.replicas().len(), 3, "__transaction_state RF");
    }

    // Likewise the group coordinator of consumer groups (`debug=cgrp`).
    for n in 0..3 {
        let group = unique_name(&format!("group{n}"));
        let log = LogCapture::default();
        let member: BaseConsumer<LogCapture> = config
            .clone()
            .set("group.id", &group)
            .set("debug", "cgrp")
            .set_log_level(RDKafkaLogLevel::Debug)
            .create_with_context(log.clone())?;
        member.subscribe(&[&topic])?;
        let found = wait_for(common::TIMEOUT, || {
            let _ = member.poll(Duration::from_millis(100));
            log.last_id("coordinator is", " id ")
                .context("librdkafka has not logged the group coordinator yet")
        })?;
        let coordinator = cluster.group_coordinator(&group)?;
        println!("group coordinator of {group}: node {coordinator}");
        assert_eq!(
            found, coordinator,
            "FindCoordinator named another node for {group}"
        );
    }

    let producer = producer(&config, Duration::from_secs(60))?;
    produce(&producer, &topic, 0..100).await?;

    // SIGKILL the leader of partition 0, then keep producing with acks=all.
    let victim = cluster.leader_of(&topic, 0)?;
    cluster.kill(victim)?;
    assert!(!cluster.is_running(victim)?);
    let killed_at = Instant::now();
    produce(&producer, &topic, 100..200).await?;
    println!(
        "100 records acknowledged (acks=all) {:?} after killing node {victim}",
        killed_at.elapsed()
    );
    let new_leader = wait_for(Duration::from_secs(30), || {
        let leader = cluster.leader_of(&topic, 0)?;
        ensure!(
            leader != victim,
            "partition 0 still led by killed node {victim}"
        );
        Ok(leader)
    })?;
    println!("partition 0: leader {victim} -> {new_leader}");

    // Restart it on the same ports and data; it catches up and is in sync again.
    let victim_address = cluster.address(victim)?.to_owned();
    let restart = Instant::now();
    cluster.start_node(victim)?;
    assert!(cluster.is_running(victim)?);
    assert_eq!(cluster.address(victim)?, victim_address);
    cluster.wait_in_sync(&topic, Duration::from_secs(60))?;
    println!(
        "node {victim} restarted and in sync after {:?}",
        restart.elapsed()
    );

    produce(&producer, &topic, 200..250).await?;
    producer.flush(common::TIMEOUT)?;
    assert_eq!(read_all(&config, &topic, PARTITIONS)?, payloads(0..250));
    Ok(())
}

#[test]
fn cluster_size_is_checked() {
    let error = KafkaCluster::start(0).expect_err("a 0-node cluster");
    assert!(format!("{error:#}").contains("1 to 9 nodes"), "{error:#}");
}

/// One config value of `topic`, by DescribeConfigs.
async fn topic_config(
    config: &rdkafka::ClientConfig,
    topic: &str,
    name: &str,
) -> anyhow::Result<String> {
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await?;
    let resource = results
        .into_iter()
        .next()
        .context("no DescribeConfigs result")?
        .map_err(|e| anyhow::anyhow!("DescribeConfigs of {topic}: {e:?}"))?;
    resource
        .get(name)
        .and_then(|entry| entry.value.clone())
        .with_context(|| format!("{topic} has no {name}"))
}

/// Retries `f` every 200 ms until it succeeds or `timeout` passes (then its last error).
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Records librdkafka's log lines (with `debug=eos`: the FindCoordinator answers).
#[derive(Default, Clone)]
struct LogCapture(Arc<Mutex<Vec<String>>>);

impl LogCapture {
    /// The non-negative number right after `mark` in the last line containing `context`
    /// (e.g. "FindCoordinator response: Transaction coordinator is broker 2 (…)", or
    /// `Group "g" coordinator is 127.0.0.1:4242 id 2`).
    fn last_id(&self, context: &str, mark: &str) -> Option<i32> {
        let lines = self.0.lock().expect("log lock poisoned");
        lines.iter().rev().find_map(|line| {
            let after_context = &line[line.find(context)?..];
            let rest = &after_context[after_context.find(mark)? + mark.len()..];
            let id: i32 = rest.split_whitespace().next()?.parse().ok()?;
            (id >= 0).then_some(id)
        })
    }
}

impl ClientContext for LogCapture {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, log_message: &str) {
        self.0
            .lock()
            .expect("log lock poisoned")
            .push(log_message.to_owned());
    }
}

impl ConsumerContext for LogCapture {}
