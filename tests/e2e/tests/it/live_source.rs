//! A live source through the whole pipeline: a fake Bluesky Jetstream (a real WebSocket server
//! on a loopback port, speaking Jetstream's documented event shapes) feeds the real
//! `tweet-producer` binary, whose posts the real aggregator counts and the real API serves.
//!
//! The fake drops the first connection without a close frame halfway through, so the producer
//! must resume from the last event it saw (rewound a little, as it does) and drop the repeats:
//! a duplicate anywhere in the chain would show as a count one too high. (Restarts of the
//! producer, `kill -9` included, are `source_exactly_once.rs`.) The expected counts are computed
//! here from the frames the test wrote, independently of the product's mapping code: a post's
//! hashtags are its facet tags plus `record.tags`, lowercased, each once per post.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use trends_common::time::now_ms;

use e2e::{
    Lcg, ServiceProcess, Topics, free_port, get_json, get_text, metric_value, ranking, wait_for,
};
use test_support::fakes::jetstream::{FakeJetstream, Frame as JetstreamFrame, Plan};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
const POSTS: usize = 600;
/// Frames the first connection serves before the fake drops it.
const FIRST_CONNECTION_FRAMES: usize = 350;
const VOCABULARY: [&str; 12] = [
    "Rust",
    "Kafka",
    "Bluesky",
    "Trending",
    "Jetstream",
    "Music",
    "News",
    "Art",
    "Science",
    "Photography",
    "Gaming",
    "Books",
];

/// One frame the fake serves: its `time_us`, its text, and for a post the hashtags it should
/// count for.
#[derive(Debug, Clone)]
struct Frame {
    time_us: i64,
    text: String,
    tags: Option<BTreeSet<String>>,
    malformed: bool,
}

/// Posts with hashtags (in facets, in `record.tags`, both, in mixed case), interleaved with
/// likes, deletes, identity events and malformed frames. Event times are the last few minutes.
fn frames(now_ms: i64) -> Vec<Frame> {
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    let first_us = (now_ms - 180_000) * 1000;
    for i in 0..POSTS {
        let time_us = first_us + i as i64 * 200_000;
        let created_ms = time_us / 1000;
        let did = format!("did:plc:e2eauthor{}", i % 5);
        let rkey = format!("3lbe2e{i:06}");
        let picked: Vec<&str> = (0..1 + rng.next(3))
            .map(|_| VOCABULARY[rng.next(VOCABULARY.len() as u64) as usize])
            .collect();
        let spelled: Vec<String> = picked
            .iter()
            .enumerate()
            .map(|(k, t)| {
                if (i + k) % 4 == 0 {
                    t.to_uppercase()
                } else {
                    (*t).to_string()
                }
            })
            .collect();
        // The first tag (or two) as facets over the text, the rest in `record.tags`; every
        // third post repeats its first tag in `record.tags` in lower case.
        let in_facets = spelled.len().min(2);
        let mut text = format!("post {i}");
        let mut facets = Vec::new();
        for tag in &spelled[..in_facets] {
            text.push(' ');
            let start = text.len();
            text.push('#');
            text.push_str(tag);
            facets.push(format!(
                r##"{{"features":[{{"$type":"app.bsky.richtext.facet#tag","tag":"{tag}"}}],"index":{{"byteEnd":{},"byteStart":{start}}}}}"##,
                text.len()
            ));
        }
        let mut record_tags: Vec<String> = spelled[in_facets..].to_vec();
        if i % 3 == 0 {
            record_tags.push(spelled[0].to_lowercase());
        }
        let record_tags: Vec<String> = record_tags.iter().map(|t| format!("\"{t}\"")).collect();
        let post = format!(
            r#"{{"did":"{did}","time_us":{time_us},"kind":"commit","commit":{{"rev":"{rkey}","operation":"create","collection":"app.bsky.feed.post","rkey":"{rkey}","record":{{"$type":"app.bsky.feed.post","createdAt":"{created}","langs":["en"],"text":"{text}","facets":[{facets}],"tags":[{record_tags}]}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#,
            created = e2e::rfc3339(created_ms),
            facets = facets.join(","),
            record_tags = record_tags.join(","),
        );
        out.push(Frame {
            time_us,
            text: post,
            tags: Some(spelled.iter().map(|t| t.to_lowercase()).collect()),
            malformed: false,
        });
        let other_us = time_us + 1;
        let other = match i % 10 {
            2 => Some(format!(
                r#"{{"did":"{did}","time_us":{other_us},"kind":"commit","commit":{{"rev":"l{rkey}","operation":"create","collection":"app.bsky.feed.like","rkey":"l{rkey}","record":{{"$type":"app.bsky.feed.like","createdAt":"2024-09-09T19:46:02.102Z","subject":{{"cid":"bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4","uri":"at://did:plc:wa7b35aakoll7hugkrjtf3xf/app.bsky.feed.post/3l3pte3p2e325"}}}},"cid":"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"}}}}"#
            )),
            5 => Some(format!(
                r#"{{"did":"{did}","time_us":{other_us},"kind":"commit","commit":{{"rev":"d{rkey}","operation":"delete","collection":"app.bsky.feed.post","rkey":"x{rkey}"}}}}"#
            )),
            7 => Some(format!(
                r#"{{"did":"{did}","time_us":{other_us},"kind":"identity","identity":{{"did":"{did}","handle":"someone.bsky.social","seq":1409752997,"time":"2024-09-05T06:11:04.870Z"}}}}"#
            )),
            9 if i % 30 == 9 => Some(format!(
                r#"{{"did":"{did}","time_us":{other_us},"kind":"commit","commit":"#
            )),
            _ => None,
        };
        if let Some(text) = other {
            out.push(Frame {
                time_us: other_us,
                text,
                tags: None,
                malformed: i % 10 == 9,
            });
        }
    }
    out
}

/// The fake serving `frames`: the first connection is dropped (no close frame) after
/// [`FIRST_CONNECTION_FRAMES`]; later ones stay open until the client leaves.
async fn fake_jetstream(frames: &[Frame]) -> FakeJetstream {
    let served = frames.iter().map(|f| {
        let frame = JetstreamFrame::text(f.time_us, f.text.clone());
        if f.malformed {
            frame.malformed()
        } else {
            frame
        }
    });
    FakeJetstream::start(
        served,
        vec![
            Plan::Serve {
                limit: Some(FIRST_CONNECTION_FRAMES),
            },
            Plan::Serve { limit: None },
        ],
    )
    .await
    .expect("fake Jetstream")
}

/// Tag counts over the posts, ranked as the API ranks: count descending, then tag.
fn expected_ranking(frames: &[Frame]) -> Vec<(String, i64)> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    for tags in frames.iter().filter_map(|f| f.tags.as_ref()) {
        for tag in tags {
            *counts.entry(tag.clone()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, i64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_jetstream_feeds_the_pipeline_to_the_api_exactly_through_a_dropped_connection() {
    let frames = frames(now_ms());
    let expected = expected_ranking(&frames);
    let last_first_connection_us = frames[FIRST_CONNECTION_FRAMES - 1].time_us;
    let fake = fake_jetstream(&frames).await;

    let topics = Topics::unique("");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let env = |extra: &[(&str, String)]| topics.env(bootstrap, 4, extra);
    let producer_metrics = format!("127.0.0.1:{}", free_port());
    let _producer = ServiceProcess::start(
        "tweet-producer",
        &env(&[
            ("TRENDS__SOURCE__KIND", "bluesky".into()),
            ("TRENDS__SOURCE__BLUESKY__HOST", fake.url.clone()),
            (
                "TRENDS__TOPICS__SOURCE_OFFSETS",
                unique_name("producer-offsets"),
            ),
            ("TRENDS__SOURCE__RECONNECT__MIN_MS", "10".into()),
            ("TRENDS__SOURCE__RECONNECT__MAX_MS", "100".into()),
            ("TRENDS__PRODUCER__METRICS_ADDR", producer_metrics.clone()),
        ]),
    )
    .expect("start producer");
    let _aggregator = topics.start_aggregator(bootstrap, 4, &unique_name("aggregator"), &[]);
    let api = topics.start_api(bootstrap, 4);

    let client = reqwest::Client::new();
    for window in ["all", "1h", "15m"] {
        let url = format!("{}/api/v1/trends?window={window}&limit=100", api.url);
        wait_for(&format!("window {window} to match"), WAIT, || async {
            let (_, body) = get_json(&client, &url).await?;
            let seen = ranking(&body);
            if seen == expected {
                Ok(())
            } else {
                Err(format!("{seen:?} != {expected:?}"))
            }
        })
        .await
        .expect("the API serves exactly the posts of the fake Jetstream");
    }
    eprintln!("window all: {expected:?}");

    let (cursors, malformed) = { (fake.cursors(), fake.malformed_served()) };
    assert!(
        malformed >= 20,
        "every malformed frame was served at least once"
    );
    assert!(cursors.len() >= 2, "the producer reconnected: {cursors:?}");
    let resumed = cursors[1].expect("the reconnect passes a cursor");
    assert!(
        resumed <= last_first_connection_us,
        "the reconnect resumes at or before the last frame seen ({resumed} > {last_first_connection_us})"
    );

    let url = format!("http://{producer_metrics}/metrics");
    let text = get_text(&client, &url).await.expect("producer metrics");
    let value = |name: &str| {
        metric_value(&text, &format!("{name}{{source=\"bluesky\"}}")).unwrap_or(-1.0) as usize
    };
    assert_eq!(value("trends_producer_events_published_total"), POSTS);
    assert_eq!(value("trends_producer_events_malformed_total"), malformed);
    assert!(
        value("trends_producer_events_duplicate_total") > 0,
        "the rewound resume re-delivered posts and the producer dropped them"
    );
    assert_eq!(value("trends_producer_reconnects_total"), 1);
}
