//! A broker dies mid-stream (issue 16 §2): on a three-node KRaft cluster (replication 3, min
//! ISR 2), the leader of the counts partitions and, separately, the aggregator's transaction
//! coordinator are killed with SIGKILL while posts flow, then restarted. The counts stay
//! exact, checked against a ground truth computed in the test.
//!
//! **The failure policy under test.** librdkafka follows a partition's leadership to another
//! replica by itself: killing a partition leader must not stop the aggregator or the API
//! (no restart). Killing the transaction coordinator may fail the transaction in flight; the
//! aggregator then exits non-zero and a supervisor starts it again from the committed state
//! (README, "Delivery guarantee"): the test plays the supervisor and allows at most one such
//! restart for that kill, none for the other. Last, the aggregator starts while the first
//! broker of its bootstrap list is down: it must restore and count without a restart.

use std::collections::HashMap;
use std::time::Duration;

use e2e::{ServiceProcess, Topics, free_port, get_json, rfc3339, wait_for};
use rdkafka::producer::{FutureProducer, FutureRecord};
use test_support::{KafkaCluster, unique_name};

const WAIT: Duration = Duration::from_secs(180);
const PARTITIONS: i32 = 3;
const TAGS: u64 = 12;

/// The aggregator, restarted when it exits, as a supervisor would.
struct Supervised {
    env: HashMap<String, String>,
    process: ServiceProcess,
    restarts: u32,
    logs: String,
    /// One line per exit: its status and the last error lines it logged, so an assertion
    /// about restarts says why each one happened even when the full logs are cut.
    exits: Vec<String>,
}

impl Supervised {
    fn start(env: HashMap<String, String>) -> Supervised {
        let process = ServiceProcess::start("hashtag-aggregator", &env).expect("start aggregator");
        Supervised {
            env,
            process,
            restarts: 0,
            logs: String::new(),
            exits: Vec::new(),
        }
    }

    /// Restarts it if it exited (keeping its log).
    fn tend(&mut self) {
        if !self.process.is_running() {
            let log = self.process.log();
            let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
            self.exits.push(format!(
                "exit {:?} after: {}",
                self.process.exit_status(),
                errors[errors.len().saturating_sub(3)..].join(" | ")
            ));
            self.logs.push_str(&log);
            self.process = ServiceProcess::start("hashtag-aggregator", &self.env).expect("restart");
            self.restarts += 1;
        }
    }
}

/// Produces posts `range` (acks=all, idempotent) and adds their tags to `truth`.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<u64>,
    truth: &mut HashMap<String, i64>,
) {
    let at = rfc3339(trends_common::time::now_ms() - 60_000);
    for i in range {
        let tags = [i % TAGS, (i * 7 + 3) % TAGS];
        let text = format!("post {i} #tag{} #tag{}", tags[0], tags[1]);
        for t in tags.iter().collect::<std::collections::BTreeSet<_>>() {
            *truth.entry(format!("tag{t}")).or_default() += 1;
        }
        let body =
            serde_json::json!({"id": format!("f-{i}"), "text": text, "created_at": at}).to_string();
        let key = format!("author-{}", i % 50);
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&body),
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("post {i} not acknowledged: {e}"));
    }
}

/// Waits until the API's all-time counts equal `truth`, tending the aggregator meanwhile.
async fn wait_exact(api: &str, truth: &HashMap<String, i64>, aggregator: &mut Supervised) {
    let client = reqwest::Client::new();
    let url = format!("{api}/api/v1/trends?window=all&limit=100");
    let mut expected: Vec<(String, i64)> = truth.iter().map(|(k, v)| (k.clone(), *v)).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        aggregator.tend();
        let seen = match get_json(&client, &url).await {
            Ok((_, body)) => e2e::ranking(&body),
            Err(e) => vec![(e, -1)],
        };
        if seen == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "counts never matched: {seen:?} != {expected:?}\naggregator: {}{}",
            aggregator.logs,
            aggregator.process.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_when_a_leader_and_the_transaction_coordinator_are_killed() {
    let mut cluster = KafkaCluster::start(3).expect("a 3-node cluster");
    let bootstrap = cluster.bootstrap_servers().to_string();
    let topics = Topics::unique("failover-");
    let group = unique_name("failover-group");
    let instance = "failover-1";
    let aggregator_env = topics.env(
        &bootstrap,
        PARTITIONS,
        &[
            ("TRENDS__AGGREGATOR__GROUP_ID", group.clone()),
            ("TRENDS__AGGREGATOR__INSTANCE_ID", instance.to_string()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
        ],
    );
    let mut aggregator = Supervised::start(aggregator_env);
    let port = free_port();
    let api_env = topics.env(
        &bootstrap,
        PARTITIONS,
        &[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))],
    );
    let mut api = ServiceProcess::start("trends-api", &api_env).expect("start api");
    let base = format!("http://127.0.0.1:{port}");

    let producer: FutureProducer = cluster
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    // The aggregator creates `tweets` (replication 3, min ISR 2: the brokers' defaults).
    let client = reqwest::Client::new();
    wait_for("the API to be ready", WAIT, || async {
        match get_json(&client, &format!("{base}/api/v1/trends?window=all")).await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", api.log()));

    let mut truth = HashMap::new();
    produce(&producer, &topics.tweets, 0..300, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    assert_eq!(aggregator.restarts, 0, "{}", aggregator.logs);

    // 1. The leader of counts partition 0 dies mid-stream.
    let leader = cluster.leader_of(&topics.counts, 0).expect("a leader");
    cluster.kill(leader).expect("kill -9 the leader");
    produce(&producer, &topics.tweets, 300..600, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    cluster.start_node(leader).expect("the node comes back");
    produce(&producer, &topics.tweets, 600..700, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    assert_eq!(
        aggregator.restarts,
        0,
        "a partition leader's death needs no aggregator restart\nexits:\n{}\n{}",
        aggregator.exits.join("\n"),
        aggregator.logs
    );
    assert!(api.is_running(), "{}", api.log());

    // 2. The aggregator's transaction coordinator dies mid-stream.
    cluster
        .wait_in_sync(&topics.counts, WAIT)
        .expect("replicas back in sync");
    let transactional_id = format!("{group}-{instance}");
    let coordinator = cluster
        .transaction_coordinator(&transactional_id)
        .expect("a coordinator");
    let before = aggregator.restarts;
    produce(&producer, &topics.tweets, 700..850, &mut truth).await;
    cluster.kill(coordinator).expect("kill -9 the coordinator");
    produce(&producer, &topics.tweets, 850..1_000, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    cluster
        .start_node(coordinator)
        .expect("the node comes back");
    produce(&producer, &topics.tweets, 1_000..1_100, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    assert!(
        aggregator.restarts - before <= 1,
        "the coordinator's death costs at most one restart, not {}\nexits:\n{}\n{}",
        aggregator.restarts - before,
        aggregator.exits.join("\n"),
        aggregator.logs
    );
    assert!(api.is_running(), "{}", api.log());

    // 3. The aggregator starts while a broker of its bootstrap list is down (a regression: its
    //    restore stopped on librdkafka's "connection refused" for that broker, and every
    //    restart did the same until the broker came back). Stopped cleanly first; the new one
    //    starts once the group and transaction coordinators have moved off the dead node, so
    //    the dead bootstrap entry is the only obstacle.
    cluster
        .wait_in_sync(&topics.counts, WAIT)
        .expect("replicas back in sync");
    aggregator
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop aggregator");
    aggregator.logs.push_str(&aggregator.process.log());
    let first = bootstrap.split(',').next().expect("a bootstrap server");
    let down = cluster
        .node_ids()
        .into_iter()
        .find(|id| cluster.address(*id).is_ok_and(|a| a == first))
        .expect("the first bootstrap server is a node");
    cluster
        .kill(down)
        .expect("kill -9 the first bootstrap server");
    wait_for("the coordinators to move off the dead node", WAIT, || {
        let moved = (
            cluster.group_coordinator(&group),
            cluster.transaction_coordinator(&transactional_id),
        );
        async move {
            match moved {
                (Ok(g), Ok(t)) if g != down && t != down => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let before = aggregator.restarts;
    aggregator.process =
        ServiceProcess::start("hashtag-aggregator", &aggregator.env).expect("start aggregator");
    produce(&producer, &topics.tweets, 1_100..1_300, &mut truth).await;
    wait_exact(&base, &truth, &mut aggregator).await;
    assert_eq!(
        aggregator.restarts - before,
        0,
        "a broker of the bootstrap list down needs no restart\nexits:\n{}\n{}",
        aggregator.exits.join("\n"),
        aggregator.logs
    );
    cluster.start_node(down).expect("the node comes back");
    assert!(api.is_running(), "{}", api.log());
    eprintln!(
        "failover: leader {leader} and coordinator {coordinator} killed, then node {down} \
         (first bootstrap server) down during a start; aggregator restarts: {}",
        aggregator.restarts
    );
    api.terminate(Duration::from_secs(30)).expect("stop api");
    aggregator
        .process
        .terminate(Duration::from_secs(30))
        .expect("stop aggregator");
}
