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
//!
//! Then moderation and webhooks on the same run: a local receiver gets a signed
//! `trend.started` for the burst (the signature checked here with the shared key); blocking
//! the burst through the admin API takes it out of both lists and sends `trend.stopped`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};

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
    let (hook_url, received) = webhook_receiver().await;
    let port = free_port();
    let mut api_env = env(&[
        ("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}")),
        ("TRENDS__ADMIN__TOKEN__ENV", "TREND_TEST_ADMIN_TOKEN".into()),
        ("TRENDS__MODERATION__TOPIC", unique_name("trend-blocklist")),
        ("TRENDS__WEBHOOKS__URLS", hook_url),
        (
            "TRENDS__WEBHOOKS__SECRET__ENV",
            "TREND_TEST_WEBHOOK_KEY".into(),
        ),
    ]);
    api_env.insert("TREND_TEST_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
    api_env.insert("TREND_TEST_WEBHOOK_KEY".into(), WEBHOOK_KEY.into());
    let api = ServiceProcess::start("trends-api", &api_env).expect("start api");
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
    // The Freeman–Tukey deviate of the burst's authors against 1 expected, computed here
    // from the ground truth: the whole 5m window scores highest.
    let authors = authors_5m["eclipse"].len() as f64;
    let deviate = (authors.sqrt() + (authors + 1.0).sqrt() - 5f64.sqrt()) / 1.01f64.sqrt();
    let score = burst["score"].as_f64().expect("score");
    assert!((score - deviate).abs() < 0.006, "{burst}: {deviate}");
    assert_eq!(burst["scored_over"], "5m");
    assert!(
        burst["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    assert!(!burst["sparkline"].as_array().expect("sparkline").is_empty());

    // Per language: exact posts per (language, tag), and the flood is in English only. The
    // per-language lists are remade about once a second while counts flow, and once more when
    // they stop: they converge to the ground truth.
    for lang in ["en", "ja"] {
        let mut want: Vec<(String, i64)> = by_lang_5m
            .iter()
            .filter(|((l, _), _)| *l == lang)
            .map(|((_, t), n)| (t.to_string(), *n))
            .collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let url = format!("{base}/api/v1/trends?window=5m&lang={lang}&limit=100");
        let body = wait_for(&format!("exact counts in {lang}"), WAIT, || {
            let (client, url, want) = (client.clone(), url.clone(), want.clone());
            async move {
                let (_, body) = get_json(&client, &url).await?;
                if e2e::ranking(&body) == want {
                    Ok(body)
                } else {
                    Err(body.to_string())
                }
            }
        })
        .await
        .expect("lang counts");
        assert_eq!(body["lang"], lang);
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
        v.sort_by_key(|b| std::cmp::Reverse(b.1));
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

    // Webhooks: a signed trend.started for the burst in 5m.
    let started = wait_for("a trend.started webhook for the burst", WAIT, || {
        let received = received.clone();
        async move { find_event(&received, "trend.started", "eclipse", "5m") }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", e2e::tail(&api.log(), 30)));
    // Sent when the burst first qualified, while its posts were still arriving.
    let authors = started["authors"].as_i64().expect("authors");
    assert!((5..=100).contains(&authors), "{started}");

    // Moderation: a wrong token is refused; blocking the burst takes it out of trending and of
    // the count list, and stops its trend.
    let admin = format!("{base}/api/v1/admin/blocked/%23Eclipse");
    let refused = client
        .put(&admin)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("put");
    assert_eq!(refused.status(), 401);
    let put = client
        .put(&admin)
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "test"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    wait_for("the blocked burst to leave both lists", WAIT, || {
        let client = client.clone();
        let base = base.clone();
        async move {
            let (_, trending) = get_json(
                &client,
                &format!("{base}/api/v1/trends?window=5m&sort=trending"),
            )
            .await?;
            let (_, count) = get_json(&client, &format!("{base}/api/v1/trends?window=5m")).await?;
            let listed = |body: &Value| e2e::ranking(body).iter().any(|(t, _)| t == "eclipse");
            if listed(&trending) || listed(&count) {
                Err(format!("{trending} {count}"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .expect("blocked");
    wait_for("a trend.stopped webhook for the burst", WAIT, || {
        let received = received.clone();
        async move { find_event(&received, "trend.stopped", "eclipse", "5m") }
    })
    .await
    .expect("stopped");
    // Every delivery verified, and each event id delivered once.
    let all = received.lock().expect("lock").clone();
    let ids: BTreeSet<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "a duplicate delivery");
    // The API counts both in its metrics.
    let exposition = e2e::get_text(&client, &format!("{base}/metrics"))
        .await
        .expect("metrics");
    let metric = |name: &str| e2e::metric_value(&exposition, name).unwrap_or(-1.0);
    assert_eq!(metric("trends_api_blocklist_entries"), 1.0, "{exposition}");
    assert!(
        metric("trends_api_webhook_delivered_total") >= all.len() as f64,
        "{exposition}"
    );
}

const ADMIN_TOKEN: &str = "test-admin-token-5f2c";
const WEBHOOK_KEY: &str = "test-webhook-key-91ab";

/// Deliveries received: (event id, body), each checked against its signature on arrival.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A local webhook receiver that verifies `X-Trends-Signature: t=…,v1=…` (HMAC-SHA256 of
/// `"<t>.<body>"` with [`WEBHOOK_KEY`]), answering 401 to a bad one, 200 otherwise.
async fn webhook_receiver() -> (String, Received) {
    async fn hook(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> u16 {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let signature = header("x-trends-signature");
        let mut t = "";
        let mut v1 = "";
        for part in signature.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = value,
                Some(("v1", value)) => v1 = value,
                _ => {}
            }
        }
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_KEY.as_bytes()).expect("key");
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if t.is_empty() || expected != v1 {
            return 401;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&body) else {
            return 400;
        };
        received
            .lock()
            .expect("lock")
            .push((header("x-trends-event-id"), event));
        200
    }
    let received: Received = Arc::default();
    let router = Router::new()
        .route(
            "/hook",
            post(|state, headers, body| async move {
                axum::http::StatusCode::from_u16(hook(state, headers, body).await)
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), received)
}

/// The first received event of `kind` for `hashtag` in `window`.
fn find_event(
    received: &Received,
    kind: &str,
    hashtag: &str,
    window: &str,
) -> Result<Value, String> {
    let all = received.lock().map_err(|e| e.to_string())?;
    all.iter()
        .map(|(_, e)| e)
        .find(|e| e["type"] == kind && e["hashtag"] == hashtag && e["window"] == window)
        .cloned()
        .ok_or_else(|| {
            format!(
                "{} events: {:?}",
                all.len(),
                all.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>()
            )
        })
}
