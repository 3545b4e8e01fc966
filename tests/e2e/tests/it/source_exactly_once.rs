//! Exactly once from the source into `tweets`, through `kill -9` of the producer.
//!
//! A fake Bluesky Jetstream (a real WebSocket server on a loopback port, speaking Jetstream's
//! documented event shapes and honouring `cursor` as Jetstream does: every event with
//! `time_us ≥ cursor`) serves a few thousand posts at a steady pace to the real
//! `tweet-producer` binary. Posts come in pairs that share one `time_us`, with likes, deletes
//! and malformed frames between them. The producer is killed with SIGKILL three times (early,
//! mid-stream, and right after a transaction committed) and started again each time; it must
//! resume from the position committed in its offsets topic. Then every post id of the feed
//! must be in `tweets` exactly once (read with `read_committed`: what a crash left uncommitted
//! does not count), and the real aggregator and API must serve exactly the tag counts this test
//! computes from the feed, independently of the product's mapping code.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trends_common::time::now_ms;

use e2e::{
    Lcg, ServiceProcess, Topics, free_port, get_json, get_text, metric_value, ranking, wait_for,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use test_support::fakes::jetstream::{FakeJetstream, Frame as JetstreamFrame, Plan};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(180);
/// Posts in the feed (in pairs sharing a `time_us`).
const POSTS: usize = 3_000;
/// Partitions of `tweets`.
const PARTITIONS: i32 = 4;
/// The fake serves this many frames every [`PACE_TICK`]: about 400 frames a second.
const FRAMES_PER_TICK: usize = 4;
const PACE_TICK: Duration = Duration::from_millis(10);
const VOCABULARY: [&str; 10] = [
    "Rust",
    "Kafka",
    "Bluesky",
    "ExactlyOnce",
    "Jetstream",
    "Music",
    "News",
    "Art",
    "Science",
    "Books",
];

/// One frame of the feed: its `time_us`, its text, and for a post its id and the hashtags it
/// counts for.
#[derive(Debug, Clone)]
struct Frame {
    time_us: i64,
    text: String,
    post: Option<(String, BTreeSet<String>)>,
}

/// The feed: posts 2k and 2k+1 share a `time_us`; a like, a delete or a malformed frame
/// follows some pairs at the next microsecond. Event times are the last minutes.
fn feed(now_ms: i64) -> Vec<Frame> {
    let mut rng = Lcg(2024);
    let mut out = Vec::new();
    let first_us = (now_ms - 600_000) * 1000;
    for i in 0..POSTS {
        let pair = (i / 2) as i64;
        let time_us = first_us + pair * 100_000;
        let did = format!("did:plc:eoauthor{}", i % 7);
        let rkey = format!("3leo{i:07}");
        let tags: Vec<&str> = (0..1 + rng.next(3))
            .map(|_| VOCABULARY[rng.next(VOCABULARY.len() as u64) as usize])
            .collect();
        let mut text = format!("post {i}");
        let mut facets = Vec::new();
        for tag in &tags {
            text.push(' ');
            let start = text.len();
            text.push('#');
            text.push_str(tag);
            facets.push(format!(
                r##"{{"features":[{{"$type":"app.bsky.richtext.facet#tag","tag":"{tag}"}}],"index":{{"byteEnd":{},"byteStart":{start}}}}}"##,
                text.len()
            ));
        }
        let frame = format!(
            r#"{{"did":"{did}","time_us":{time_us},"kind":"commit","commit":{{"rev":"{rkey}","operation":"create","collection":"app.bsky.feed.post","rkey":"{rkey}","record":{{"$type":"app.bsky.feed.post","createdAt":"{created}","langs":["en"],"text":"{text}","facets":[{facets}]}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#,
            created = e2e::rfc3339(time_us / 1000),
            facets = facets.join(","),
        );
        out.push(Frame {
            time_us,
            text: frame,
            post: Some((
                format!("bsky:{did}/{rkey}"),
                tags.iter().map(|t| t.to_lowercase()).collect(),
            )),
        });
        if i % 2 == 1 {
            let other_us = time_us + 1;
            let other = match pair % 9 {
                1 => Some(format!(
                    r#"{{"did":"{did}","time_us":{other_us},"kind":"commit","commit":{{"rev":"l{rkey}","operation":"create","collection":"app.bsky.feed.like","rkey":"l{rkey}","record":{{"$type":"app.bsky.feed.like","createdAt":"2024-09-09T19:46:02.102Z","subject":{{"cid":"bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4","uri":"at://did:plc:wa7b35aakoll7hugkrjtf3xf/app.bsky.feed.post/3l3pte3p2e325"}}}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#
                )),
                4 => Some(format!(
                    r#"{{"did":"{did}","time_us":{other_us},"kind":"commit","commit":{{"rev":"d{rkey}","operation":"delete","collection":"app.bsky.feed.post","rkey":"x{rkey}"}}}}"#
                )),
                7 => Some(format!(r#"{{"did":"{did}","time_us":{other_us},"kind":"#)),
                _ => None,
            };
            if let Some(text) = other {
                out.push(Frame {
                    time_us: other_us,
                    text,
                    post: None,
                });
            }
        }
    }
    out
}

/// The fake serving `frames` from each connection's cursor on, [`FRAMES_PER_TICK`] per
/// [`PACE_TICK`], then holding the connection open until the client leaves.
async fn fake_jetstream(frames: &[Frame]) -> FakeJetstream {
    let served = frames
        .iter()
        .map(|f| JetstreamFrame::text(f.time_us, f.text.clone()));
    FakeJetstream::start_paced(
        served,
        vec![Plan::Serve { limit: None }],
        FRAMES_PER_TICK,
        PACE_TICK,
    )
    .await
    .expect("fake Jetstream")
}

/// Tag counts over the posts, ranked as the API ranks: count descending, then tag.
fn expected_ranking(frames: &[Frame]) -> Vec<(String, i64)> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    for (_, tags) in frames.iter().filter_map(|f| f.post.as_ref()) {
        for tag in tags {
            *counts.entry(tag.clone()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, i64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

fn read_committed_consumer(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("eo-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// How often each post id is in `topic`, reading every partition with `read_committed` to its
/// end (the consumer's position moves past aborted records and transaction markers too).
fn committed_ids(bootstrap: &str, topic: &str) -> HashMap<String, usize> {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("probe");
    let ends: Vec<(i32, i64)> = (0..PARTITIONS)
        .map(|p| {
            let (_, high) = probe
                .fetch_watermarks(topic, p, Duration::from_secs(30))
                .expect("watermarks");
            (p, high)
        })
        .collect();
    let consumer = read_committed_consumer(bootstrap, topic);
    let mut ids: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let position = consumer.position().expect("position");
        let done = ends.iter().all(|(partition, end)| {
            *end == 0
                || position
                    .find_partition(topic, *partition)
                    .is_some_and(|p| matches!(p.offset(), Offset::Offset(at) if at >= *end))
        });
        if done {
            return ids;
        }
        assert!(Instant::now() < deadline, "{topic} not read to its end");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("a record");
            *ids.entry(post_id(&message)).or_default() += 1;
        }
    }
}

/// A record's post id: the `id` of its JSON value (the key is the post's author, see README:
/// the raw post schema).
fn post_id(message: &rdkafka::message::BorrowedMessage<'_>) -> String {
    let value: serde_json::Value =
        serde_json::from_slice(message.payload().unwrap_or_default()).expect("a post");
    value["id"].as_str().expect("an id").to_owned()
}

/// The producer's counter `name` (its metrics endpoint), if it answers.
async fn producer_metric(client: &reqwest::Client, addr: &str, name: &str) -> Option<f64> {
    let text = get_text(client, &format!("http://{addr}/metrics"))
        .await
        .ok()?;
    metric_value(&text, &format!("{name}{{source=\"bluesky\"}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_producer_neither_loses_nor_repeats_a_post_of_the_feed() {
    let frames = feed(now_ms());
    let expected = expected_ranking(&frames);
    let post_ids: BTreeSet<String> = frames
        .iter()
        .filter_map(|f| f.post.as_ref().map(|(id, _)| id.clone()))
        .collect();
    assert_eq!(post_ids.len(), POSTS);
    let fake = fake_jetstream(&frames).await;
    let host = fake.url.clone();

    let topics = Topics::unique("eo-");
    let offsets = unique_name("eo-producer-offsets");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let client = reqwest::Client::new();
    let producer_env = |metrics: &str| {
        topics.env(
            bootstrap,
            PARTITIONS,
            &[
                ("TRENDS__SOURCE__KIND", "bluesky".into()),
                ("TRENDS__SOURCE__BLUESKY__HOST", host.clone()),
                ("TRENDS__TOPICS__SOURCE_OFFSETS", offsets.clone()),
                ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "200".into()),
                ("TRENDS__SOURCE__RECONNECT__MIN_MS", "10".into()),
                ("TRENDS__SOURCE__RECONNECT__MAX_MS", "100".into()),
                ("TRENDS__PRODUCER__METRICS_ADDR", metrics.to_owned()),
            ],
        )
    };
    let served_latest = || fake.served_latest();
    let connections = || fake.cursors().len();

    // 1. Early: as soon as the producer is receiving (before or around its first commit).
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut producer =
        ServiceProcess::start("tweet-producer", &producer_env(&metrics)).expect("start producer");
    wait_for("the first frames served", WAIT, || async {
        let n = served_latest();
        if connections() >= 1 && n >= 150 {
            Ok(())
        } else {
            Err(format!("{n} frames"))
        }
    })
    .await
    .expect("the producer connects");
    producer.kill_9().expect("kill -9 (early)");

    // 2. Mid-stream: about half the feed served on the second connection.
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut producer =
        ServiceProcess::start("tweet-producer", &producer_env(&metrics)).expect("restart producer");
    wait_for("a second connection well into the feed", WAIT, || async {
        let n = served_latest();
        if connections() >= 2 && n >= POSTS / 2 {
            Ok(())
        } else {
            Err(format!("{} connections, {n} frames", connections()))
        }
    })
    .await
    .expect("the producer reconnects");
    producer.kill_9().expect("kill -9 (mid-stream)");

    // 3. Right after a transaction committed: at the first change of its commit counter.
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut producer =
        ServiceProcess::start("tweet-producer", &producer_env(&metrics)).expect("restart producer");
    let name = "trends_producer_transactions_committed_total";
    let before = wait_for("a commit of the third run", WAIT, || async {
        match producer_metric(&client, &metrics, name).await {
            Some(n) if n >= 1.0 => Ok(n),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("the third run commits");
    let deadline = Instant::now() + WAIT;
    loop {
        let now = producer_metric(&client, &metrics, name).await;
        if now.is_some_and(|n| n > before) {
            producer.kill_9().expect("kill -9 (after a commit)");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second commit in the third run"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // 4. The last run goes to the end of the feed.
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut producer =
        ServiceProcess::start("tweet-producer", &producer_env(&metrics)).expect("restart producer");
    let stop_reader = Arc::new(AtomicBool::new(false));
    let live_ids = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let reader = {
        let (stop, ids) = (Arc::clone(&stop_reader), Arc::clone(&live_ids));
        let (bootstrap, topic) = (bootstrap.to_owned(), topics.tweets.clone());
        std::thread::spawn(move || {
            let consumer = read_committed_consumer(&bootstrap, &topic);
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                    ids.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(post_id(&message));
                }
            }
        })
    };
    let waited = wait_for("every post committed", WAIT, || async {
        let n = live_ids.lock().unwrap_or_else(|p| p.into_inner()).len();
        if n >= POSTS {
            Ok(())
        } else {
            Err(format!("{n} of {POSTS} distinct posts committed"))
        }
    })
    .await;
    stop_reader.store(true, Ordering::Relaxed);
    let _ = reader.join();
    waited.expect("the last run publishes the rest of the feed");
    assert_eq!(
        producer
            .terminate(Duration::from_secs(30))
            .expect("SIGTERM"),
        Some(0),
        "the last run stops cleanly"
    );

    // Every run after the first resumed from a committed position, never live.
    let cursors = fake.cursors();
    assert!(cursors.len() >= 4, "{cursors:?}");
    assert_eq!(cursors[0], None, "the first start is live");
    assert!(
        cursors[1..].iter().all(Option::is_some),
        "restarts resume from a position: {cursors:?}"
    );

    // Exactly once: every post of the feed, each once; nothing else.
    let (boot, topic) = (bootstrap.to_owned(), topics.tweets.clone());
    let counts = tokio::task::spawn_blocking(move || committed_ids(&boot, &topic))
        .await
        .expect("reader");
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "published more than once: {repeated:?}"
    );
    let found: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<&String> = post_ids.difference(&found).take(10).collect();
    assert!(missing.is_empty(), "never published: {missing:?}");
    assert_eq!(found, post_ids, "nothing but the feed's posts");

    // The committed positions: some fell between the two posts of one time_us (a skip list of
    // exactly one id), which is what the restart's resume rule is for.
    let (boot, offsets_topic) = (bootstrap.to_owned(), offsets.clone());
    let between = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &boot)
            .set("group.id", unique_name("eo-offsets"))
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&offsets_topic, 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&assignment).expect("assign");
        let mut between = 0;
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "offsets topic not read");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(message.payload().expect("a value")).expect("JSON");
                    if value["skip"].as_array().is_some_and(|s| s.len() == 1) {
                        between += 1;
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return between,
                _ => {}
            }
        }
    })
    .await
    .expect("offsets reader");
    assert!(
        between > 0,
        "no committed position between two posts of one time_us"
    );

    // The counts: the aggregator and the API over what the producer committed.
    let _aggregator =
        topics.start_aggregator(bootstrap, PARTITIONS, &unique_name("eo-aggregator"), &[]);
    let api = topics.start_api(bootstrap, PARTITIONS);
    let url = format!("{}/api/v1/trends?window=all&limit=100", api.url);
    wait_for("window all to match the feed", WAIT, || async {
        let (_, body) = get_json(&client, &url).await?;
        let served = ranking(&body);
        if served == expected {
            Ok(())
        } else {
            Err(format!("{served:?} != {expected:?}"))
        }
    })
    .await
    .expect("the API serves exactly the feed's counts");
    eprintln!(
        "connections {}: {cursors:?}; all: {expected:?}; positions between a pair: {between}",
        cursors.len()
    );
}
