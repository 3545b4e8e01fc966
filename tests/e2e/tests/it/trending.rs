//! Trending on the real pipeline (issue 15): posts written by a plain Kafka client, keyed by
//! author as tweet-producer keys them, go through the real aggregator and API processes.
//!
//! The scenario, two hours of event time ending at `T0`:
//! - a **steady giant** (`#steady`): 30 new authors a minute, every minute, in English;
//! - an **organic burst** (`#eclipse`): 100 distinct authors in the last 5 minutes, a third of
//!   them in Japanese, the rest in English;
//! - a **spam flood** (`#buynow`): 20 accounts posting 30 times each in the last 5 minutes.
//!
//! By posts the flood leads `5m` and the giant beats the burst; by trend score the burst leads,
//! and neither the giant (its history predicts it) nor the flood (30 posts per author) appears.
//! The expected numbers — distinct authors, posts per language, the window rule — are computed
//! here from the posts, independently of the product's code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use e2e::{ServiceProcess, Topics, free_port, get_json, rfc3339, wait_for};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
/// 2026-11-22T10:00:00Z, the watermark of the test data.
const T0: i64 = 1_795_341_600_000;
const MINUTE: i64 = 60_000;

struct Post {
    id: String,
    author: String,
    lang: &'static str,
    time: i64,
    tag: &'static str,
}

/// The scenario, oldest first.
fn scenario() -> Vec<Post> {
    let mut posts = Vec::new();
    let mut push = |author: String, lang, time, tag| {
        let id = format!("p{}", posts.len());
        posts.push(Post {
            id,
            author,
            lang,
            time,
            tag,
        });
    };
    for minute in 0..120 {
        let at = T0 - 120 * MINUTE + minute * MINUTE;
        for i in 0..30 {
            push(format!("g{minute}-{i}"), "en", at + i * 1_000, "steady");
        }
    }
    for i in 0..100i64 {
        let lang = if i % 3 == 0 { "ja" } else { "en" };
        push(
            format!("e{i}"),
            lang,
            T0 - 4 * MINUTE + i * 2_000,
            "eclipse",
        );
    }
    for round in 0..30i64 {
        for account in 0..20i64 {
            let at = T0 - 4 * MINUTE + round * 7_000 + account * 100;
            push(format!("spam{account}"), "en", at, "buynow");
        }
    }
    // The watermark.
    push("w".into(), "en", T0, "steady");
    posts.sort_by_key(|p| p.time);
    posts
}

/// Whether a post at `time` is in the window of `duration` (10-second buckets) at `T0`: its
/// bucket starts after the window's first bucket boundary (README, "Windows").
fn in_window(time: i64, duration: i64) -> bool {
    let bucket = 10_000;
    let newest = T0.div_euclid(bucket) * bucket;
    let start = time.div_euclid(bucket) * bucket;
    start > newest - duration && start <= newest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_trends_above_a_giant_and_a_spam_flood_never_does() {
    let broker = KafkaBroker::shared();
    let topics = Topics::unique("trend-");
    let group = unique_name("trend-aggregator");
    let env = |extra: &[(&str, String)]| topics.env(broker.bootstrap_servers(), 6, extra);
    e2e::create_topic(&topics.tweets, 6).await;
    let metrics = free_port();
    let _aggregator = ServiceProcess::start(
        "hashtag-aggregator",
        &env(&[
            ("TRENDS__AGGREGATOR__GROUP_ID", group.clone()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{metrics}"),
            ),
        ]),
    )
    .expect("start aggregator");
    let port = free_port();
    let _api = ServiceProcess::start(
        "trends-api",
        &env(&[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))]),
    )
    .expect("start api");
    let base = format!("http://127.0.0.1:{port}");

    let posts = scenario();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for post in &posts {
        let value = json!({
            "id": post.id,
            "text": format!("look #{}", post.tag),
            "created_at": rfc3339(post.time),
            "author_id": post.author,
            "lang": post.lang,
        })
        .to_string();
        producer
            .send(
                FutureRecord::to(&topics.tweets)
                    .key(&post.author)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("send");
    }

    // Ground truth for 5m: posts and distinct authors per tag, posts per (language, tag).
    let five = 5 * MINUTE;
    let mut posts_5m: BTreeMap<&str, i64> = BTreeMap::new();
    let mut authors_5m: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut by_lang_5m: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut lang_1h: BTreeMap<&str, i64> = BTreeMap::new();
    for p in posts.iter().filter(|p| in_window(p.time, five)) {
        *posts_5m.entry(p.tag).or_default() += 1;
        authors_5m.entry(p.tag).or_default().insert(&p.author);
        *by_lang_5m.entry((p.lang, p.tag)).or_default() += 1;
    }
    for p in posts.iter().filter(|p| in_window(p.time, 60 * MINUTE)) {
        *lang_1h.entry(p.lang).or_default() += 1;
    }
    assert!(posts_5m["buynow"] > posts_5m["steady"] && posts_5m["steady"] > posts_5m["eclipse"]);

    let client = reqwest::Client::new();
    // By posts: the flood first, the giant above the burst; counts exact. Waiting for this
    // exact ranking waits for every post to be counted.
    let want: Vec<(String, i64)> = {
        let mut v: Vec<(String, i64)> = posts_5m.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    wait_for("every post counted", WAIT, || {
        let client = client.clone();
        let url = format!("{base}/api/v1/trends?window=5m&sort=count&limit=100");
        let want = want.clone();
        async move {
            let (_, body) = get_json(&client, &url).await?;
            if e2e::ranking(&body) == want {
                Ok(())
            } else {
                Err(body.to_string())
            }
        }
    })
    .await
    .expect("counts");

    // By trend score: the burst alone. The same snapshot holds the trends of the same moment.
    let (_, trending) = get_json(
        &client,
        &format!("{base}/api/v1/trends?window=5m&sort=trending"),
    )
    .await
    .expect("trending");
    let tags: Vec<&str> = trending["trends"]
        .as_array()
        .expect("trends")
        .iter()
        .filter_map(|t| t["hashtag"].as_str())
        .collect();
    assert_eq!(tags, ["eclipse"], "{trending}");
    let burst = &trending["trends"][0];
    assert_eq!(trending["sort"], "trending");
    assert_eq!(burst["posts"], json!(posts_5m["eclipse"]));
    assert_eq!(burst["authors"], json!(authors_5m["eclipse"].len()));
    assert_eq!(burst["expected"], json!(1.0));
    assert_eq!(burst["status"], "rising");
    assert!(burst["score"].as_f64().expect("score") > 50.0, "{burst}");
    assert!(
        burst["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    assert!(!burst["sparkline"].as_array().expect("sparkline").is_empty());

    // Per language: exact posts per (language, tag), and the flood is in English only.
    for lang in ["en", "ja"] {
        let (_, body) = get_json(
            &client,
            &format!("{base}/api/v1/trends?window=5m&lang={lang}&limit=100"),
        )
        .await
        .expect("lang counts");
        assert_eq!(body["lang"], lang);
        let got = e2e::ranking(&body);
        let mut want: Vec<(String, i64)> = by_lang_5m
            .iter()
            .filter(|((l, _), _)| *l == lang)
            .map(|((_, t), n)| (t.to_string(), *n))
            .collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(got, want, "lang={lang}");
    }
    let (_, ja) = get_json(
        &client,
        &format!("{base}/api/v1/trends?window=5m&sort=trending&lang=ja"),
    )
    .await
    .expect("ja trending");
    assert_eq!(ja["lang"], "ja");
    assert_eq!(ja["trends"][0]["hashtag"], "eclipse");
    assert_eq!(
        ja["trends"][0]["authors"],
        json!(by_lang_5m[&("ja", "eclipse")])
    );

    // The languages and their volume.
    let (_, languages) = get_json(&client, &format!("{base}/api/v1/languages"))
        .await
        .expect("languages");
    let listed: Vec<(String, i64)> = languages["languages"]
        .as_array()
        .expect("languages")
        .iter()
        .map(|l| {
            (
                l["code"].as_str().unwrap_or_default().to_string(),
                l["posts_1h"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = {
        let mut v: Vec<(String, i64)> = lang_1h.iter().map(|(l, n)| (l.to_string(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1));
        v
    };
    assert_eq!(listed, want);

    // Bad parameters: 400 with a JSON error naming them.
    for (query, code) in [
        ("sort=hot", "invalid_sort"),
        ("sort=trending&window=all", "invalid_sort"),
        ("lang=e-n", "invalid_lang"),
        ("lang=en&window=all", "invalid_lang"),
    ] {
        let response = client
            .get(format!("{base}/api/v1/trends?{query}"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], code, "{query}");
    }
}
