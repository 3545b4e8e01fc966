//! The live page in a real browser, against the real stack as processes: a Kafka broker,
//! hashtag-aggregator and trends-api. Posts with known hashtags, authors and languages go in
//! through a plain Kafka producer, keyed by author as tweet-producer keys them; the expected
//! ranking of every window, the trending list of `5m` (distinct authors, the sparkline), the
//! counts per language, the languages' volumes, and the counts and series of one tag are
//! computed here (the window rule as the README states it, trending as `trends_core::trend`
//! documents it); then `tests/browser/page.test.mjs` drives headless Chromium (Debian's
//! `chromium`, through playwright-core) and checks that the page shows exactly that: Trending
//! by default with why each tag trends (authors, ×expected, since, status, sparkline), Most
//! used with the counts in order, the window, limit and language selectors, a bar's details
//! and series, search, an update without reload when a second batch makes a new tag #1 (of
//! trending and of counts), and the connection indicator through an API restart.
//!
//! Trending, as computed here: in `5m` a tag trends when it has at least 5 distinct authors
//! (a post without `author_id` is its own author) and a score of 3; every tag of this data has
//! too little history for its expected authors to exceed the floor of 1, so the score is a
//! function of the authors alone (7 or more trend) and the list is ordered by authors (ties
//! by tag). The test checks that the
//! API agrees before the browser starts, so a page failure is the page's.
//!
//! The node script asks for the second batch and for the restart on its stdout (`NEED_MORE`,
//! `NEED_API_DOWN`, `NEED_API_UP`); this test answers on its stdin. Screenshots go to
//! `target/browser-artifacts/`. Needs chromium and `npm ci` in tests/browser (and, for
//! screenshots without empty boxes, the Noto fonts): run `scripts/test.sh` once, which
//! installs them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{
    ServiceProcess, Topics, create_topic, free_port, get_json, get_text, ranking, rfc3339, wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
/// The whole browser run, a generous bound: it normally takes well under a minute.
const NODE_TIMEOUT: Duration = Duration::from_secs(900);
const PARTITIONS: i32 = 3;
const FINE_MS: i64 = 10_000;
const COARSE_MS: i64 = 300_000;
/// (name, length, bucket) of the bucketed windows, as the README defines them.
const WINDOWS: [(&str, i64, i64); 5] = [
    ("1m", 60_000, FINE_MS),
    ("5m", 300_000, FINE_MS),
    ("15m", 900_000, FINE_MS),
    ("1h", 3_600_000, FINE_MS),
    ("24h", 86_400_000, COARSE_MS),
];

/// A batch: (spelling, language, [(age in seconds before T0, posts)]); each post is its own
/// author. One spelling per tag, so the display form is that spelling.
type Batch = &'static [(&'static str, &'static str, &'static [(i64, usize)])];

/// The first batch. Chosen so that `1m`, `5m` and `all` rank differently, with a tie (ai and
/// 日本語 in 5m), more than ten tags in some windows, and tags in five scripts (the page's
/// fonts must show them all).
const BATCH_1: Batch = &[
    (
        "Kafka",
        "en",
        &[(0, 3), (5, 6), (40, 3), (1_200, 10), (7_200, 6)],
    ),
    (
        "RustLang",
        "en",
        &[(20, 7), (200, 8), (2_000, 5), (20_000, 12)],
    ),
    ("日本語", "ja", &[(10, 4), (100, 6), (600, 2)]),
    ("WorldCup", "en", &[(30, 2), (250, 14)]),
    ("ai", "en", &[(15, 5), (180, 5)]),
    ("data_eng", "en", &[(44, 1), (120, 7)]),
    ("web3", "en", &[(280, 6)]),
    ("Привет", "ru", &[(35, 3), (150, 3)]),
    ("한국어", "ko", &[(50, 6)]),
    ("नमस्ते", "hi", &[(70, 5)]),
    ("مرحبا", "ar", &[(110, 5)]),
    ("OpenSource", "en", &[(3_000, 20)]),
    ("Climate", "en", &[(60_000, 25)]),
    ("music", "en", &[(8, 1), (90, 2)]),
    ("news", "en", &[(25, 3)]),
    ("Go", "en", &[(42, 2), (400, 1)]),
    // Older than the longest window: counted in `all` only, where it is first.
    ("Throwback", "en", &[(108_000, 40)]),
];
/// The second batch, 5 s after T0 (the same newest bucket, so no window moves): a new tag
/// that becomes #1 of 5m and 1m (by posts and by trend), and two more posts of Kafka.
const BATCH_2: Batch = &[
    ("BreakingNews", "en", &[(-5, 60)]),
    ("Kafka", "en", &[(-5, 2)]),
];
const NEW_TOP: &str = "breakingnews";
/// The burst: a new tag used once by each of many distinct authors in the last minutes, a
/// third of them in Japanese; every ninth author posts it twice (at the same instant, so it
/// is one author in every bucket). The first batch has `BURST_AUTHORS` of them, the second
/// `BURST_MORE` more.
const BURST: &str = "Eclipse";
const BURST_TAG: &str = "eclipse";
const BURST_AUTHORS: usize = 36;
const BURST_MORE: usize = 8;
/// The language the page filters by.
const LANG: &str = "ja";
/// The window the page checks trending and languages in.
const TREND_WINDOW: (&str, i64) = ("5m", 300_000);
/// Trending needs this many distinct authors (README: "How trending is computed").
const MIN_AUTHORS: usize = 5;
/// … and this score.
const MIN_SCORE: f64 = 3.0;

/// The score of `authors` against the expected 1 author, as README states it: the Freeman–Tukey
/// deviate `√o + √(o+1) − √(4μ+1)` over `√(1 + k²μ)`, `k` = 0.1. With every author of a tag in
/// the window and μ the floor of 1 in both `1m` and `5m`, the whole window scores highest (the
/// last minute holds no more authors and is held to a higher threshold), so this is the score.
fn score(authors: usize) -> f64 {
    let o = authors as f64;
    (o.sqrt() + (o + 1.0).sqrt() - 5f64.sqrt()) / 1.01f64.sqrt()
}
/// The tag whose details and series the browser checks.
const DETAIL_TAG: &str = "kafka";

#[derive(Debug, Clone)]
struct Post {
    id: String,
    time: i64,
    spelling: String,
    lang: &'static str,
    /// `None`: the post is its own author (as the aggregator counts it).
    author: Option<String>,
}

impl Post {
    fn tag(&self) -> String {
        // NFKC + lowercase is plain lowercase for these tags.
        self.spelling.to_lowercase()
    }

    /// Who counts as the author, and the Kafka key (tweet-producer keys by author).
    fn author(&self) -> &str {
        self.author.as_deref().unwrap_or(&self.id)
    }
}

/// The posts of a batch, then the burst's authors numbered `burst`: spread from 230 s to 20 s
/// before `t0`, or all at `burst_at`.
fn posts(
    batch: Batch,
    t0: i64,
    first_id: usize,
    burst: std::ops::Range<usize>,
    burst_at: Option<i64>,
) -> Vec<Post> {
    let mut out = Vec::new();
    for (spelling, lang, groups) in batch {
        for (age_secs, n) in *groups {
            for _ in 0..*n {
                out.push(Post {
                    id: format!("browser-{}", first_id + out.len()),
                    time: t0 - age_secs * 1000,
                    spelling: spelling.to_string(),
                    lang,
                    author: None,
                });
            }
        }
    }
    for i in burst {
        // The first batch spreads its authors from 230 s to 20 s before T0; a later batch
        // posts them all at `burst_at`.
        let time = burst_at.unwrap_or(t0 - (230 - 6 * i as i64) * 1000);
        let lang = if i % 3 == 0 { "ja" } else { "en" };
        for _ in 0..if i % 9 == 0 { 2 } else { 1 } {
            out.push(Post {
                id: format!("browser-{}", first_id + out.len()),
                time,
                spelling: BURST.to_string(),
                lang,
                author: Some(format!("burst-author-{i}")),
            });
        }
    }
    // Newest first, so that every partition's watermark is recent before the old posts come
    // (they are then late for their partition too: `all` only, whatever the order rule).
    out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.id.cmp(&b.id)));
    out
}

/// The buckets a window covers: starts in (newest - length, newest], newest = the bucket of
/// the watermark.
fn in_window(time: i64, watermark: i64, length: i64, bucket: i64) -> bool {
    let newest = watermark.div_euclid(bucket) * bucket;
    let start = time.div_euclid(bucket) * bucket;
    start > newest - length && start <= newest
}

fn watermark(posts: &[Post]) -> i64 {
    posts.iter().map(|p| p.time).max().unwrap_or(0)
}

/// Every window's full ranking: count descending, then hashtag ascending (by code point).
fn rankings(posts: &[Post]) -> BTreeMap<String, Vec<(String, i64)>> {
    rankings_in(posts, None)
}

/// [`rankings`] of the posts in `lang` (all languages for `None`); the watermark is that of
/// every post.
fn rankings_in(posts: &[Post], lang: Option<&str>) -> BTreeMap<String, Vec<(String, i64)>> {
    let wm = watermark(posts);
    let mut windows: Vec<(&str, Option<(i64, i64)>)> = WINDOWS
        .iter()
        .map(|(n, l, b)| (*n, Some((*l, *b))))
        .collect();
    windows.push(("all", None));
    windows
        .into_iter()
        .map(|(name, spec)| {
            let mut counts: HashMap<String, i64> = HashMap::new();
            for p in posts.iter().filter(|p| lang.is_none_or(|l| p.lang == l)) {
                if spec.is_none_or(|(length, bucket)| in_window(p.time, wm, length, bucket)) {
                    *counts.entry(p.tag()).or_default() += 1;
                }
            }
            let mut ranked: Vec<(String, i64)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (name.to_string(), ranked)
        })
        .collect()
}

fn displays(posts: &[Post]) -> HashMap<String, String> {
    posts
        .iter()
        .map(|p| (p.tag(), p.spelling.clone()))
        .collect()
}

/// The page's expectations: every window's ranking as `{hashtag, display, count}`.
fn trends_json(posts: &[Post]) -> Value {
    trends_json_in(posts, None)
}

fn trends_json_in(posts: &[Post], lang: Option<&str>) -> Value {
    let display = displays(posts);
    let windows: serde_json::Map<String, Value> = rankings_in(posts, lang)
        .into_iter()
        .map(|(window, ranked)| {
            let list = ranked
                .iter()
                .map(
                    |(tag, count)| json!({"hashtag": tag, "display": display[tag], "count": count}),
                )
                .collect();
            (window, Value::Array(list))
        })
        .collect();
    Value::Object(windows)
}

/// The trending list of [`TREND_WINDOW`] in `lang` (all languages for `None`), best first, as
/// the API must answer it: every tag with at least [`MIN_AUTHORS`] distinct authors and a
/// [`score`] of [`MIN_SCORE`] (8 authors: 3.6; 7: 3.2; 6: 2.8), expected 1 (no tag here has the
/// history to predict more), so ranked by authors, ties by tag;
/// `rising` (its peak is the latest data); the sparkline as authors per step of 3 buckets,
/// aligned on the newest bucket, oldest first. Each author posts a tag at one instant, so
/// distinct (bucket, author) pairs are its distinct authors.
fn trending_json(posts: &[Post], lang: Option<&str>) -> Vec<Value> {
    let wm = watermark(posts);
    let (_, length) = TREND_WINDOW;
    let newest = wm.div_euclid(FINE_MS) * FINE_MS;
    let buckets = length / FINE_MS;
    let step = (buckets + 11) / 12;
    let points = (buckets + step - 1) / step;
    let mut authors: BTreeMap<String, BTreeSet<(i64, &str)>> = BTreeMap::new();
    let mut counts: HashMap<String, i64> = HashMap::new();
    for p in posts.iter().filter(|p| lang.is_none_or(|l| p.lang == l)) {
        if in_window(p.time, wm, length, FINE_MS) {
            let bucket = p.time.div_euclid(FINE_MS) * FINE_MS;
            authors
                .entry(p.tag())
                .or_default()
                .insert((bucket, p.author()));
            *counts.entry(p.tag()).or_default() += 1;
        }
    }
    let display = displays(posts);
    let mut list: Vec<(String, usize, Vec<i64>)> = authors
        .into_iter()
        .filter(|(_, a)| a.len() >= MIN_AUTHORS && score(a.len()) >= MIN_SCORE)
        .map(|(tag, a)| {
            let mut line = vec![0i64; points as usize];
            for (bucket, _) in &a {
                let from_end = (newest - bucket) / FINE_MS / step;
                line[(points - 1 - from_end) as usize] += 1;
            }
            (tag, a.len(), line)
        })
        .collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.into_iter()
        .map(|(tag, authors, sparkline)| {
            json!({
                "hashtag": tag,
                "display": display[&tag],
                "authors": authors,
                "posts": counts[&tag],
                "expected": 1.0,
                "status": "rising",
                "sparkline": sparkline,
            })
        })
        .collect()
}

/// The API's trending entries with the fields [`trending_json`] predicts (not the score, nor
/// `started_at`: when a trend started depends on when the aggregator flushed).
fn trending_seen(body: &Value) -> Vec<Value> {
    let fields = [
        "hashtag",
        "display",
        "authors",
        "posts",
        "expected",
        "status",
        "sparkline",
    ];
    body["trends"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    Value::Object(
                        fields
                            .iter()
                            .map(|f| (f.to_string(), t[*f].clone()))
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every language with posts in the last 24 hours, most posts first (ties by code), with its
/// posts in the last hour, as `/api/v1/languages` must list them.
fn languages_json(posts: &[Post]) -> Vec<Value> {
    let wm = watermark(posts);
    let mut volume: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for p in posts {
        let v = volume.entry(p.lang).or_default();
        v.0 += i64::from(in_window(p.time, wm, 3_600_000, FINE_MS));
        v.1 += i64::from(in_window(p.time, wm, 86_400_000, COARSE_MS));
    }
    let mut list: Vec<(&str, (i64, i64))> = volume.into_iter().filter(|(_, v)| v.1 > 0).collect();
    list.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(b.0)));
    list.into_iter()
        .map(|(code, (h1, h24))| json!({"code": code, "posts_1h": h1, "posts_24h": h24}))
        .collect()
}

/// A tag's series over `length` in buckets of `bucket`: (points, total, largest bucket).
fn series(posts: &[Post], tag: &str, length: i64, bucket: i64) -> Value {
    let wm = watermark(posts);
    let mut per_bucket: BTreeMap<i64, i64> = BTreeMap::new();
    for p in posts.iter().filter(|p| p.tag() == tag) {
        if in_window(p.time, wm, length, bucket) {
            *per_bucket.entry(p.time.div_euclid(bucket)).or_default() += 1;
        }
    }
    json!({
        "points": length / bucket,
        "total": per_bucket.values().sum::<i64>(),
        "max": per_bucket.values().max().copied().unwrap_or(0),
    })
}

fn detail_json(posts: &[Post], tag: &str) -> Value {
    let counts: serde_json::Map<String, Value> = rankings(posts)
        .into_iter()
        .map(|(window, ranked)| {
            let count = ranked.iter().find(|(t, _)| t == tag).map_or(0, |(_, c)| *c);
            (window, count.into())
        })
        .collect();
    json!({
        "hashtag": tag,
        "display": displays(posts)[tag],
        "counts": counts,
        "series": {
            "1h": series(posts, tag, 3_600_000, FINE_MS),
            "24h": series(posts, tag, 86_400_000, COARSE_MS),
        },
    })
}

#[derive(Debug, Clone)]
struct Names {
    tweets: String,
    counts: String,
    dlq: String,
    group: String,
}

impl Names {
    fn new() -> Names {
        Names {
            tweets: unique_name("browser-tweets"),
            counts: unique_name("browser-counts"),
            dlq: unique_name("browser-dlq"),
            group: unique_name("browser-aggregator"),
        }
    }

    fn env(&self, extra: &[(&str, String)]) -> HashMap<String, String> {
        Topics {
            tweets: self.tweets.clone(),
            counts: self.counts.clone(),
            dlq: self.dlq.clone(),
        }
        .env(KafkaBroker::shared().bootstrap_servers(), PARTITIONS, extra)
    }

    fn aggregator(&self) -> ServiceProcess {
        let env = self.env(&[
            ("TRENDS__AGGREGATOR__GROUP_ID", self.group.clone()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".into()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{}", free_port()),
            ),
        ]);
        ServiceProcess::start("hashtag-aggregator", &env).expect("start aggregator")
    }

    /// trends-api on `port` (the same port again after a restart, so the page reconnects).
    fn api(&self, port: u16) -> ServiceProcess {
        let env = self.env(&[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))]);
        ServiceProcess::start("trends-api", &env).expect("start api")
    }
}

async fn produce(producer: &FutureProducer, topic: &str, posts: &[Post]) {
    for post in posts {
        let mut payload = json!({
            "id": post.id,
            "text": format!("what a day #{} for everyone", post.spelling),
            "created_at": rfc3339(post.time),
            "lang": post.lang,
        });
        if let Some(author) = &post.author {
            payload["author_id"] = json!(author);
        }
        let payload = payload.to_string();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(post.author())
                    .payload(&payload)
                    .timestamp(post.time),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Waits until the API serves exactly the expected ranking of every window, so that a page
/// failure below is the page's, not the pipeline's.
async fn wait_for_api(client: &reqwest::Client, base: &str, posts: &[Post]) {
    for (window, ranked) in rankings(posts) {
        let url = format!("{base}/api/v1/trends?window={window}&limit=100");
        wait_for(&format!("the API's {window} ranking"), WAIT, || async {
            let (_, body) = get_json(client, &url).await?;
            let seen = ranking(&body);
            if seen == ranked {
                Ok(())
            } else {
                Err(format!("{seen:?} != {ranked:?}"))
            }
        })
        .await
        .expect("the API converges");
    }
}

/// Waits until the API's trending lists (all languages and [`LANG`]), its counts in [`LANG`]
/// and its languages are exactly the expected ones; returns the trending body (all languages),
/// whose `started_at` the page must show.
async fn wait_for_trending(client: &reqwest::Client, base: &str, posts: &[Post]) -> Value {
    let (window, _) = TREND_WINDOW;
    let by_lang = &rankings_in(posts, Some(LANG))[window];
    let url = format!("{base}/api/v1/trends?window={window}&lang={LANG}&limit=100");
    wait_for(
        &format!("the API's {window} ranking in {LANG}"),
        WAIT,
        || async {
            let (_, body) = get_json(client, &url).await?;
            let seen = ranking(&body);
            if &seen == by_lang {
                Ok(())
            } else {
                Err(format!("{seen:?} != {by_lang:?}"))
            }
        },
    )
    .await
    .expect("the API's language counts converge");
    let languages = Value::Array(languages_json(posts));
    wait_for("the API's languages", WAIT, || async {
        let (_, body) = get_json(client, &format!("{base}/api/v1/languages")).await?;
        if body["languages"] == languages {
            Ok(())
        } else {
            Err(format!("{} != {languages}", body["languages"]))
        }
    })
    .await
    .expect("the API's languages converge");
    let mut all = Value::Null;
    for lang in [None, Some(LANG)] {
        let want = Value::Array(trending_json(posts, lang));
        let mut url = format!("{base}/api/v1/trends?window={window}&sort=trending&limit=100");
        if let Some(lang) = lang {
            url.push_str(&format!("&lang={lang}"));
        }
        let body = wait_for(
            &format!("the API's {window} trending in {lang:?}"),
            WAIT,
            || async {
                let (_, body) = get_json(client, &url).await?;
                let seen = Value::Array(trending_seen(&body));
                if seen == want {
                    Ok(body)
                } else {
                    Err(format!("{seen} != {want}"))
                }
            },
        )
        .await
        .expect("the API's trending converges");
        if lang.is_none() {
            all = body;
        }
    }
    all
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_for("trends-api to be ready", WAIT, || async {
        match get_json(client, &format!("{base}/readyz")).await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("ready");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium, node and playwright-core must be there; say how to get them, never skip.
fn check_browser_setup(root: &Path) -> PathBuf {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM_PATH").unwrap_or("/usr/bin/chromium".into()));
    let how = "run ./scripts/test.sh once: it installs Debian's chromium (as root) and runs \
               `npm ci` in tests/browser";
    assert!(
        chromium.exists(),
        "{} is missing (the browser test needs headless Chromium): {how}",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing (the browser test runs tests/browser/page.test.mjs with it): install \
         Node.js 20 or newer, then {how}"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules is missing: {how}"
    );
    // The checks do not depend on fonts, the screenshots do: say so rather than fail.
    for (family, package) in [
        ("Noto Sans CJK JP", "fonts-noto-cjk"),
        ("Noto Sans Devanagari", "fonts-noto-core"),
    ] {
        let found = Command::new("fc-list")
            .arg(format!(":family={family}"))
            .arg("family")
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        if !found {
            eprintln!(
                "warning: font {family:?} is missing: the screenshots will show some tags as \
                 empty boxes; install Debian's {package} (./scripts/test.sh does, as root)"
            );
        }
    }
    chromium
}

/// Answers the node process on its stdin. A write error means node has exited already; its
/// exit status and output then tell why.
fn reply(stdin: &mut std::process::ChildStdin, line: String) {
    let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
}

/// A line from the node process: its stdout (protocol and results) or its stderr (log).
#[derive(Debug)]
enum Line {
    Out(String),
    Err(String),
}

fn forward_lines(
    reader: impl std::io::Read + Send + 'static,
    tx: tokio::sync::mpsc::UnboundedSender<Line>,
    wrap: fn(String) -> Line,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_shows_the_trends_and_follows_them_in_a_real_browser() {
    let root = repo_root();
    let chromium = check_browser_setup(&root);

    // T0, the watermark of the first batch: a whole 10 s, a minute in the past (posts ahead of
    // the aggregator's clock would be refused).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let t0 = now.div_euclid(FINE_MS) * FINE_MS - 60_000;
    let batch_1 = posts(BATCH_1, t0, 0, 0..BURST_AUTHORS, None);
    let batch_2 = posts(
        BATCH_2,
        t0,
        batch_1.len(),
        BURST_AUTHORS..BURST_AUTHORS + BURST_MORE,
        Some(t0 + 5_000),
    );
    let all_posts: Vec<Post> = batch_1.iter().chain(&batch_2).cloned().collect();

    // The data must say what the page checks: different rankings per window, a new #1.
    let first = rankings(&batch_1);
    let second = rankings(&all_posts);
    let top10 = |w: &str| first[w].iter().take(10).cloned().collect::<Vec<_>>();
    assert_ne!(top10("1m"), top10("all"));
    assert_ne!(top10("1m"), top10("5m"));
    assert!(first["5m"].len() > 10 && first["all"].len() > 10);
    assert!(
        top10("5m").iter().any(|(t, _)| t == DETAIL_TAG),
        "the detail tag has a bar"
    );
    assert_eq!(second["5m"][0].0, NEW_TOP);
    assert_ne!(first["5m"][0].0, NEW_TOP);
    // Trending: the burst leads the first batch, the new tag the second; the burst's authors
    // differ from its posts (some post twice); the language has a list of its own.
    let trending_1 = trending_json(&batch_1, None);
    let trending_2 = trending_json(&all_posts, None);
    assert_eq!(trending_1[0]["hashtag"], BURST_TAG);
    assert_ne!(trending_1[0]["authors"], trending_1[0]["posts"]);
    assert!(trending_1.len() > 5, "several tags trend");
    assert_eq!(trending_2[0]["hashtag"], NEW_TOP);
    assert_eq!(trending_2[1]["hashtag"], BURST_TAG);
    assert_ne!(trending_1[0]["authors"], trending_2[1]["authors"]);
    let lang_trending = trending_json(&batch_1, Some(LANG));
    assert!(lang_trending.len() >= 2 && lang_trending.len() < trending_1.len());
    assert_ne!(rankings_in(&batch_1, Some(LANG))["5m"], first["5m"]);

    let names = Names::new();
    create_topic(&names.tweets, PARTITIONS).await;
    let _aggregator = names.aggregator();
    let port = free_port();
    let mut api = names.api(port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            KafkaBroker::shared().bootstrap_servers(),
        )
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    produce(&producer, &names.tweets, &batch_1).await;
    wait_ready(&client, &base).await;
    // The page is compiled into the binary: make sure it is the page in web/.
    for (route, file) in [
        ("/", "index.html"),
        ("/app.js", "app.js"),
        ("/style.css", "style.css"),
    ] {
        let served = get_text(&client, &format!("{base}{route}"))
            .await
            .expect("the page is served");
        let on_disk = std::fs::read_to_string(root.join("web").join(file)).expect("web/ file");
        assert!(
            served == on_disk,
            "trends-api serves an older web/{file}: rebuild the binaries with \
             `cargo build --workspace --bins` (scripts/test.sh does)"
        );
    }
    wait_for_api(&client, &base, &batch_1).await;
    let trending_body = wait_for_trending(&client, &base, &batch_1).await;
    let started_at: serde_json::Map<String, Value> = trending_body["trends"]
        .as_array()
        .expect("trends")
        .iter()
        .map(|t| {
            (
                t["hashtag"].as_str().unwrap_or_default().to_string(),
                t["started_at"].clone(),
            )
        })
        .collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let expect_file = dir.path().join("expected.json");
    let expectations = json!({
        "watermark": rfc3339(watermark(&batch_1)),
        "trends": trends_json(&batch_1),
        "detail": detail_json(&batch_1, DETAIL_TAG),
        "unknown": "neverseenhashtag",
        "suggest_prefix": "w",
        "trending": trending_1,
        "started_at": started_at,
        "burst": BURST_TAG,
        "lang": LANG,
        "lang_trends": trends_json_in(&batch_1, Some(LANG)),
        "lang_trending": lang_trending,
        "languages": languages_json(&batch_1),
    });
    std::fs::write(&expect_file, expectations.to_string()).expect("write expectations");
    let artifacts = root.join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");

    let mut cmd = Command::new("node");
    cmd.current_dir(&root)
        .arg("tests/browser/page.test.mjs")
        .arg(&base)
        .arg(&expect_file)
        .arg(&artifacts)
        .env("CHROMIUM_PATH", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut node = test_support::spawn_killed_on_parent_exit(cmd).expect("spawn node");
    let mut stdin = node.stdin.take().expect("node stdin");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forward_lines(node.stdout.take().expect("stdout"), tx.clone(), Line::Out);
    forward_lines(node.stderr.take().expect("stderr"), tx, Line::Err);

    let mut transcript = String::new();
    let mut answered = Vec::new();
    let mut screenshots = Vec::new();
    let deadline = Instant::now() + NODE_TIMEOUT;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = match tokio::time::timeout(remaining, rx.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => break, // node closed its output: it has exited
            Err(_) => {
                let _ = node.kill();
                panic!("the browser test did not finish within {NODE_TIMEOUT:?}:\n{transcript}");
            }
        };
        let text = match &line {
            Line::Out(t) | Line::Err(t) => t.clone(),
        };
        eprintln!("  node: {text}");
        transcript.push_str(&text);
        transcript.push('\n');
        let Line::Out(request) = line else { continue };
        match request.as_str() {
            "NEED_MORE" => {
                produce(&producer, &names.tweets, &batch_2).await;
                let produced = json!({
                    "watermark": rfc3339(watermark(&all_posts)),
                    "trends": trends_json(&all_posts),
                    "trending": trending_2,
                    "new_top": NEW_TOP,
                });
                reply(&mut stdin, format!("PRODUCED {produced}"));
            }
            "NEED_API_DOWN" => {
                api.kill_9().expect("kill -9 trends-api");
                reply(&mut stdin, "API_DOWN".into());
            }
            "NEED_API_UP" => {
                api = names.api(port);
                wait_ready(&client, &base).await;
                reply(&mut stdin, "API_UP".into());
            }
            other => {
                if let Some(path) = other.strip_prefix("SCREENSHOT ") {
                    screenshots.push(path.to_string());
                }
                continue;
            }
        }
        answered.push(request);
    }
    let status = node.wait().expect("wait for node");
    assert!(
        status.success(),
        "the browser test failed ({status}); its output:\n{transcript}"
    );
    assert_eq!(
        answered,
        ["NEED_MORE", "NEED_API_DOWN", "NEED_API_UP"],
        "every phase of the browser test ran:\n{transcript}"
    );
    assert!(
        transcript.contains("BROWSER TEST PASSED"),
        "the browser test says it passed:\n{transcript}"
    );
    for shot in &screenshots {
        assert!(Path::new(shot).exists(), "{shot} was written");
        println!("browser test screenshot: {shot}");
    }
    assert!(
        screenshots.iter().any(|s| s.ends_with("page.png")),
        "a screenshot of the page was saved:\n{transcript}"
    );
    // The restarted API serves what the page showed: it rebuilt everything from Kafka.
    wait_for_api(&client, &base, &all_posts).await;
    wait_for_trending(&client, &base, &all_posts).await;
    drop(api);
}
