//! The `bluesky` source against a local fake Jetstream ([`test_support::fakes::jetstream`]: a real
//! WebSocket server on a loopback port, serving frames shaped like Jetstream's documented
//! events) and a real Kafka broker (from `test_support`): what reaches the topic is exactly the
//! expected set of posts, through a dropped connection, a restart from the position committed
//! in the offsets topic (including two posts sharing a `time_us`), malformed and oversized
//! frames, and refused connections.

use std::collections::BTreeSet;

use anyhow::Context as _;
use test_support::{KafkaBroker, unique_name};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tweet_producer::settings::Settings;

use crate::support::{self, ids, read_committed, read_posts, settings, start, wait_until};
use test_support::fakes::jetstream::{FakeJetstream, Plan};

const T0: i64 = 1_725_911_162_000_000;

/// A post commit event as Jetstream documents it.
fn post_frame(i: i64) -> (i64, Message) {
    let time_us = T0 + i * 1_000;
    let frame = format!(
        r#"{{"did":"did:plc:author{a}","time_us":{time_us},"kind":"commit","commit":{{"rev":"3l3qo2vutsw{i:02}","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo{i:02}","record":{{"$type":"app.bsky.feed.post","createdAt":"2024-09-09T19:46:02.{i:03}Z","langs":["en"],"text":"post {i} about #Rust","facets":[{{"features":[{{"$type":"app.bsky.richtext.facet#tag","tag":"Rust"}}],"index":{{"byteEnd":19,"byteStart":14}}}}],"tags":["jetstream{i}"]}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#,
        a = i % 3
    );
    (time_us, Message::text(frame))
}

fn post_id(i: i64) -> String {
    format!("bsky:did:plc:author{}/3l3qo2vuowo{i:02}", i % 3)
}

/// An `identity` event as documented.
fn identity_frame(i: i64) -> (i64, Message) {
    let time_us = T0 + i * 1_000;
    (
        time_us,
        Message::text(format!(
            r#"{{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","time_us":{time_us},"kind":"identity","identity":{{"did":"did:plc:ufbl4k27gp6kzas5glhz7fim","handle":"yohenrique.bsky.social","seq":1409752997,"time":"2024-09-05T06:11:04.870Z"}}}}"#
        )),
    )
}

/// A like (another collection) as documented: not a post. At `T0 + i × 100 µs`.
fn like_frame(i: i64) -> (i64, Message) {
    let time_us = T0 + i * 100;
    (
        time_us,
        Message::text(format!(
            r#"{{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":{time_us},"kind":"commit","commit":{{"rev":"3l3qo2vutsw2b","operation":"create","collection":"app.bsky.feed.like","rkey":"3l3qo2vuowo2b","record":{{"$type":"app.bsky.feed.like","createdAt":"2024-09-09T19:46:02.102Z","subject":{{"cid":"bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4","uri":"at://did:plc:wa7b35aakoll7hugkrjtf3xf/app.bsky.feed.post/3l3pte3p2e325"}}}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#
        )),
    )
}

/// A post commit event with its own `time_us`, id `bsky:did:plc:author<i % 3>/3l3qo2vuowo<i>`,
/// and a text of `text_bytes` letters.
fn post_frame_at(i: i64, time_us: i64, text_bytes: usize) -> (i64, Message) {
    let text = "x".repeat(text_bytes);
    let frame = format!(
        r#"{{"did":"did:plc:author{a}","time_us":{time_us},"kind":"commit","commit":{{"rev":"3l3qo2vutsw{i:02}","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vuowo{i:02}","record":{{"$type":"app.bsky.feed.post","createdAt":"2024-09-09T19:46:02.{i:03}Z","langs":["en"],"text":"post {i} {text} #Rust"}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#,
        a = i % 3
    );
    (time_us, Message::text(frame))
}

/// Settings of a producer reading the fake Jetstream at `host`, keeping its position in
/// `offsets` (a topic of the test's own, so that other tests' producers never touch it).
fn bluesky_settings(
    bootstrap: &str,
    topic: &str,
    host: &str,
    offsets: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Settings> {
    let mut pairs = vec![
        ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap),
        ("TRENDS__TOPICS__TWEETS", topic),
        ("TRENDS__TOPICS__SOURCE_OFFSETS", offsets),
        ("TRENDS__PRODUCER__METRICS_ADDR", "127.0.0.1:0"),
        ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "100"),
        ("TRENDS__SOURCE__KIND", "bluesky"),
        ("TRENDS__SOURCE__BLUESKY__HOST", host),
        ("TRENDS__SOURCE__BLUESKY__REWIND_SECS", "3"),
        ("TRENDS__SOURCE__RECONNECT__MIN_MS", "1"),
        ("TRENDS__SOURCE__RECONNECT__MAX_MS", "20"),
    ];
    pairs.extend_from_slice(extra);
    settings(&pairs)
}

/// The committed value of the offsets record `key`, as JSON (`None`: no record).
fn stored_position(
    bootstrap: &str,
    offsets: &str,
    key: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let last = read_committed(bootstrap, offsets)?
        .into_iter()
        .rev()
        .find(|r| r.key.as_deref() == Some(key.as_bytes()));
    match last.and_then(|r| r.payload) {
        None => Ok(None),
        Some(value) => Ok(Some(serde_json::from_slice(&value)?)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_and_a_restart_resume_from_the_committed_position_without_gap_or_duplicate()
-> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-bluesky");
    let offsets = unique_name("offsets-bluesky");

    // Posts 1–10 with a like and an identity event among them; two malformed frames at the end
    // (they carry the time of the event before them).
    let mut frames: Vec<(i64, Message)> = Vec::new();
    for i in 1..=10 {
        frames.push(post_frame(i));
        if i == 3 {
            frames.push(like_frame(35));
        }
    }
    frames.sort_by_key(|(t, _)| *t);
    let last = identity_frame(40);
    let last_time = last.0;
    frames.push(last);
    frames.push((last_time, Message::text("{\"did\":\"did:plc:x\",\"kind\":")));
    frames.push((last_time, Message::binary(vec![0x28, 0xb5, 0x2f, 0xfd])));

    // Connection 1 serves 6 frames (posts 1–3, the like, posts 4–5) and drops; connection 2
    // serves from the rewound cursor and stays open.
    let server = FakeJetstream::start(
        frames.clone(),
        vec![Plan::Serve { limit: Some(6) }, Plan::Serve { limit: None }],
    )
    .await?;
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &[])?,
        "bluesky",
    );
    let total_frames = 6 + frames.len(); // everything is re-served: the rewind covers it all
    wait_until("every frame served and 10 posts published", || {
        server.served() == total_frames && running.metrics.published.get() == 10
    })
    .await?;
    let (summary, metrics) = running.stop().await?;
    assert_eq!(summary.published, 10);
    assert_eq!(summary.skipped, 2, "the two malformed frames");
    assert_eq!(metrics.malformed.get(), 2);
    assert_eq!(metrics.reconnects.get(), 1);
    assert_eq!(metrics.received.get(), 15, "10 posts + 5 re-delivered");
    assert_eq!(
        metrics.duplicates.get(),
        5,
        "posts 1–5 re-delivered after the rewind"
    );
    let cursors = server.cursors();
    assert_eq!(cursors.len(), 2);
    assert_eq!(cursors[0], None, "no position yet: a live start");
    let fifth = post_frame(5).0;
    assert_eq!(
        cursors[1],
        Some(fifth - 3_000_000),
        "last seen, rewound 3 s"
    );
    let key = format!("bluesky:{}@{topic}", server.url);
    assert_eq!(
        stored_position(&bootstrap, &offsets, &key)?,
        Some(serde_json::json!({"kind": "jetstream", "cursor": last_time, "skip": []})),
        "the committed position is the last event, which published nothing"
    );

    let posts = read_posts(&bootstrap, &topic)?;
    let expected: Vec<String> = {
        let mut v: Vec<String> = (1..=10).map(post_id).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&posts), expected, "exactly posts 1–10, once each");
    let seventh = posts
        .iter()
        .find(|p| p.id == post_id(7))
        .context("post 7")?;
    assert_eq!(seventh.text, "post 7 about #Rust");
    assert_eq!(seventh.created_at, "2024-09-09T19:46:02.007Z");
    assert_eq!(seventh.author_id.as_deref(), Some("did:plc:author1"));
    assert_eq!(seventh.lang.as_deref(), Some("en"));
    assert_eq!(seventh.source.as_deref(), Some("bluesky"));
    assert_eq!(
        seventh.hashtags,
        Some(vec!["Rust".to_owned(), "jetstream7".to_owned()])
    );

    // A restart reads the committed position and resumes at it: posts 41 and 42 only. The
    // same fake address, so the same source key (the first fake is still listening).
    let mut more = frames.clone();
    more.push(post_frame(41));
    more.push(post_frame(42));
    server.replace(more, vec![Plan::Serve { limit: None }]);
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &[])?,
        "bluesky",
    );
    wait_until("posts 41 and 42 published", || {
        running.metrics.published.get() == 2
    })
    .await?;
    let (_, metrics) = running.stop().await?;
    assert_eq!(
        server.cursors(),
        [Some(last_time)],
        "Jetstream's cursor is inclusive"
    );
    assert_eq!(metrics.duplicates.get(), 0);
    let posts = read_posts(&bootstrap, &topic)?;
    let mut expected = expected;
    expected.extend([post_id(41), post_id(42)]);
    expected.sort();
    assert_eq!(
        ids(&posts),
        expected,
        "no gap and no duplicate across the restart"
    );
    assert_eq!(
        posts
            .iter()
            .map(|p| p.id.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        12
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_back_off_and_reconnect() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-bluesky-refused");
    let frames: Vec<(i64, Message)> = (1..=3).map(post_frame).collect();
    let server = FakeJetstream::start(
        frames,
        vec![Plan::Refuse, Plan::Refuse, Plan::Serve { limit: None }],
    )
    .await?;
    let offsets = unique_name("offsets-bluesky-refused");
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &[])?,
        "bluesky",
    );
    wait_until("3 posts published", || running.metrics.published.get() == 3).await?;
    let (_, metrics) = running.stop().await?;
    assert_eq!(
        server.cursors().len(),
        3,
        "two refused attempts, then a connection"
    );
    assert_eq!(metrics.reconnects.get(), 2);
    assert_eq!(metrics.malformed.get(), 0);

    // A port where nothing listens: connection refused, retried, never a crash.
    let closed = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", closed.local_addr()?);
    drop(closed);
    let running = start(
        bluesky_settings(&bootstrap, &topic, &url, &offsets, &[])?,
        "bluesky",
    );
    wait_until("3 reconnect attempts", || {
        running.metrics.reconnects.get() >= 3
    })
    .await?;
    let (summary, _) = running.stop().await?;
    assert_eq!(summary.published, 0);
    Ok(())
}

/// Two posts share a `time_us`, and the producer stops (committing) between them: the restart
/// resumes at that `time_us` (Jetstream's cursor is inclusive), drops the one already
/// published and publishes the other. Neither is lost nor repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_two_posts_of_one_time_us_loses_and_repeats_neither() -> anyhow::Result<()>
{
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-bluesky-same-time");
    let offsets = unique_name("offsets-bluesky-same-time");
    let shared = T0 + 3_000;
    let frames = vec![
        post_frame_at(1, T0 + 1_000, 10),
        post_frame_at(2, T0 + 2_000, 10),
        post_frame_at(3, shared, 10),
        post_frame_at(4, shared, 10),
        post_frame_at(5, T0 + 4_000, 10),
    ];
    // The first run gets posts 1–3, then silence.
    let server = FakeJetstream::start(frames.clone(), vec![Plan::Hold { frames: 3 }]).await?;
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &[])?,
        "bluesky",
    );
    wait_until("posts 1–3 committed", || {
        running.metrics.published.get() == 3
    })
    .await?;
    running.stop().await?;
    let key = format!("bluesky:{}@{topic}", server.url);
    assert_eq!(
        stored_position(&bootstrap, &offsets, &key)?,
        Some(serde_json::json!({
            "kind": "jetstream",
            "cursor": shared,
            "skip": [post_id(3)],
        })),
    );

    server.replace(frames, vec![Plan::Serve { limit: None }]);
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &[])?,
        "bluesky",
    );
    wait_until("posts 4 and 5 committed", || {
        running.metrics.published.get() == 2
    })
    .await?;
    let (_, metrics) = running.stop().await?;
    assert_eq!(server.cursors(), [Some(shared)]);
    assert_eq!(
        metrics.received.get(),
        3,
        "posts 3, 4, 5 from the cursor on"
    );
    assert_eq!(metrics.duplicates.get(), 1, "post 3, published before");
    let mut expected: Vec<String> = (1..=5).map(post_id).collect();
    expected.sort();
    assert_eq!(ids(&read_posts(&bootstrap, &topic)?), expected);
    Ok(())
}

/// A frame over `source.max_post_bytes` is skipped and counted, and the position moves past
/// it: the restart does not meet it again (before: a failed publish, and a crash loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_skipped_counted_and_never_met_again() -> anyhow::Result<()> {
    let broker = KafkaBroker::shared();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let topic = unique_name("tweets-bluesky-oversized");
    let offsets = unique_name("offsets-bluesky-oversized");
    support::logs(); // capture from here on
    let limit = 4096;
    let (big_time, big) = post_frame_at(2, T0 + 2_000, 3 * 1024 * 1024);
    let mut frames = vec![
        post_frame_at(1, T0 + 1_000, 10),
        (big_time, big),
        post_frame_at(3, T0 + 3_000, 10),
    ];
    let server = FakeJetstream::start(frames.clone(), vec![Plan::Serve { limit: None }]).await?;
    let extra = [("TRENDS__SOURCE__MAX_POST_BYTES", "4096")];
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &extra)?,
        "bluesky",
    );
    wait_until("posts 1 and 3 committed", || {
        running.metrics.published.get() == 2
    })
    .await?;
    let (_, metrics) = running.stop().await?;
    assert_eq!(metrics.oversized.get(), 1);
    assert_eq!(metrics.malformed.get(), 0);
    assert_eq!(
        metrics.reconnects.get(),
        0,
        "the big frame did not end the connection"
    );
    assert!(
        support::logs()
            .text()
            .contains("skipping a Jetstream frame over the size limit"),
        "logged"
    );

    frames.push(post_frame_at(4, T0 + 4_000, limit));
    server.replace(frames, vec![Plan::Serve { limit: None }]);
    let running = start(
        bluesky_settings(&bootstrap, &topic, &server.url, &offsets, &extra)?,
        "bluesky",
    );
    wait_until("the restart handled post 4", || {
        running.metrics.oversized.get() == 1
    })
    .await?;
    let (_, metrics) = running.stop().await?;
    assert_eq!(server.cursors(), [Some(T0 + 3_000)], "past the big frame");
    assert_eq!(
        metrics.published.get(),
        0,
        "post 4's frame is over the limit too"
    );
    assert_eq!(metrics.duplicates.get(), 1, "post 3, published before");
    let mut expected = vec![post_id(1), post_id(3)];
    expected.sort();
    assert_eq!(ids(&read_posts(&bootstrap, &topic)?), expected);
    Ok(())
}
