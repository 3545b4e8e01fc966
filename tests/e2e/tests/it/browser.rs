//! The live page in a real browser, against the real stack as processes: a Kafka broker,
//! hashtag-aggregator and trends-api. Posts with known hashtags go in through a plain Kafka
//! producer; the expected ranking of every window, the counts and the series of one tag are
//! computed here (the window rule as the README states it); then `tests/browser/page.test.mjs`
//! drives headless Chromium (Debian's `chromium`, through playwright-core) and checks that the
//! page shows exactly that: the top hashtags in order with their counts, the window and limit
//! selectors, a bar's details and series, search, an update without reload when a second batch
//! makes a new tag #1, and the connection indicator through an API restart.
//!
//! The node script asks for the second batch and for the restart on its stdout (`NEED_MORE`,
//! `NEED_API_DOWN`, `NEED_API_UP`); this test answers on its stdin. Screenshots go to
//! `target/browser-artifacts/`. Needs chromium and `npm ci` in tests/browser: run
//! `scripts/test.sh` once, which installs both.

use std::collections::{BTreeMap, HashMap};
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

/// The first batch: (spelling, [(age in seconds before T0, posts)]). One spelling per tag, so
/// the display form is that spelling. Chosen so that `1m`, `5m` and `all` rank differently,
/// with a tie (ai and 日本語 in 5m) and more than ten tags in some windows.
const BATCH_1: &[(&str, &[(i64, usize)])] = &[
    ("Kafka", &[(0, 3), (5, 6), (40, 3), (1_200, 10), (7_200, 6)]),
    ("RustLang", &[(20, 7), (200, 8), (2_000, 5), (20_000, 12)]),
    ("日本語", &[(10, 4), (100, 6), (600, 2)]),
    ("WorldCup", &[(30, 2), (250, 14)]),
    ("ai", &[(15, 5), (180, 5)]),
    ("data_eng", &[(44, 1), (120, 7)]),
    ("web3", &[(280, 6)]),
    ("Привет", &[(35, 3), (150, 3)]),
    ("OpenSource", &[(3_000, 20)]),
    ("Climate", &[(60_000, 25)]),
    ("music", &[(8, 1), (90, 2)]),
    ("news", &[(25, 3)]),
    ("Go", &[(42, 2), (400, 1)]),
    // Older than the longest window: counted in `all` only, where it is first.
    ("Throwback", &[(108_000, 40)]),
];
/// The second batch, 5 s after T0 (the same newest bucket, so no window moves): a new tag
/// that becomes #1 of 5m and 1m, and two more posts of Kafka.
const BATCH_2: &[(&str, &[(i64, usize)])] = &[("BreakingNews", &[(-5, 30)]), ("Kafka", &[(-5, 2)])];
const NEW_TOP: &str = "breakingnews";
/// The tag whose details and series the browser checks.
const DETAIL_TAG: &str = "kafka";

#[derive(Debug, Clone)]
struct Post {
    id: String,
    time: i64,
    spelling: String,
}

impl Post {
    fn tag(&self) -> String {
        // NFKC + lowercase is plain lowercase for these tags.
        self.spelling.to_lowercase()
    }
}

fn posts(batch: &[(&str, &[(i64, usize)])], t0: i64, first_id: usize) -> Vec<Post> {
    let mut out = Vec::new();
    for (spelling, groups) in batch {
        for (age_secs, n) in *groups {
            for _ in 0..*n {
                out.push(Post {
                    id: format!("browser-{}", first_id + out.len()),
                    time: t0 - age_secs * 1000,
                    spelling: spelling.to_string(),
                });
            }
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
            for p in posts {
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
    let display = displays(posts);
    let windows: serde_json::Map<String, Value> = rankings(posts)
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
        let payload = json!({
            "id": post.id,
            "text": format!("what a day #{} for everyone", post.spelling),
            "created_at": rfc3339(post.time),
            "lang": "en",
        })
        .to_string();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&post.id)
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
    let batch_1 = posts(BATCH_1, t0, 0);
    let batch_2 = posts(BATCH_2, t0, batch_1.len());
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

    let dir = tempfile::tempdir().expect("tempdir");
    let expect_file = dir.path().join("expected.json");
    let expectations = json!({
        "watermark": rfc3339(watermark(&batch_1)),
        "trends": trends_json(&batch_1),
        "detail": detail_json(&batch_1, DETAIL_TAG),
        "unknown": "neverseenhashtag",
        "suggest_prefix": "w",
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
    drop(api);
}
