//! README "Running without Docker", run: several aggregators on one host from one shared
//! environment, as a systemd setup would start them (issue 18).
//!
//! The environment file and the systemd template unit are read from README.md, not copied
//! here. A unit instance is started the way systemd starts it: `Environment=` with `%H` (the
//! host's name) and `%i` (the instance name: the metrics port) expanded, then the
//! `EnvironmentFile=`'s lines, which override them; `ExecStart=`'s binary; restarted after
//! `RestartSec=` when it fails (`Restart=on-failure`). The test changes only what it must: the
//! broker address (the test broker), the topic names (unique per test, the broker is shared)
//! and the fixed ports of the API and the producer (free ones). The counts are checked
//! against a truth computed here from the posts the test wrote (all-time counts: the windows
//! are pipeline.rs's and exactly_once.rs's subject).
//!
//! Also here: one environment holding every variable README's Configuration table documents,
//! loaded by all three services' loaders; and the messages the issue asks for: a port in use
//! names its setting and value, a second instance with the same id names
//! `aggregator.instance_id` and the remedy, a typo names the nearest key.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{
    ServiceProcess, binary, create_topic, free_port, get_json, get_text, metric_value, ranking,
    rfc3339, tail, wait_for,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use test_support::{KafkaBroker, unique_name};
use trends_common::config::Load as _;

const PARTITIONS: i32 = 12;
/// A service's start, stop, or a little more processing.
const SERVICE: Duration = Duration::from_secs(120);
/// The group owning every partition again after a membership change.
const OWNERSHIP: Duration = Duration::from_secs(90);
/// 2026-11-22T10:00:00Z.
const T0: i64 = 1_795_341_600_000;
const VOCABULARY: usize = 24;
const ASSIGNED: &str = "trends_aggregator_assigned_partitions";

// ---------------------------------------------------------------------------------------------
// The README's section.
// ---------------------------------------------------------------------------------------------

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// The text under `heading` (a whole line) up to the next heading of the same or a higher
/// level; lines in code blocks (`# comment`) are not headings.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut start = None;
    let mut in_code = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        let trimmed = line.trim_end();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        match start {
            None if trimmed == heading => start = Some(offset),
            Some(from) => {
                let hashes = trimmed.chars().take_while(|c| *c == '#').count();
                if hashes > 0 && hashes <= level && trimmed[hashes..].starts_with(' ') {
                    return &text[from..here];
                }
            }
            None => {}
        }
    }
    let from = start.unwrap_or_else(|| panic!("README has a section {heading:?}"));
    &text[from..]
}

/// The fenced code blocks of `text`: (language, body).
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(language)) => current = Some((language.trim().to_string(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// What "Running without Docker" tells an operator to write and run.
#[derive(Debug)]
struct Standalone {
    /// Where the environment file goes (its first line: `# <path>: …`).
    env_path: String,
    /// Its `KEY=VALUE` lines, in order.
    env: Vec<(String, String)>,
    unit: Unit,
    /// The by-hand shell block.
    shell: String,
}

/// The `[Service]` lines of the systemd template unit that matter here.
#[derive(Debug)]
struct Unit {
    environment_file: String,
    environment: Vec<(String, String)>,
    exec_start: String,
    restart: String,
    restart_sec: Duration,
}

fn standalone() -> Standalone {
    let text = readme();
    let blocks = code_blocks(section(&text, "### Running without Docker"));
    let (_, env_block) = blocks
        .iter()
        .find(|(_, body)| body.starts_with("# /") && body.contains("\nTRENDS__"))
        .expect("an environment file block (first line `# /path: …`)");
    let env_path = env_block
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .and_then(|l| l.split(':').next())
        .expect("the file's path")
        .to_string();
    let env: Vec<(String, String)> = env_block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("KEY=VALUE: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let (_, unit_block) = blocks
        .iter()
        .find(|(language, _)| language == "ini")
        .expect("the systemd unit (an ini block)");
    let mut environment_file = None;
    let mut environment = Vec::new();
    let mut exec_start = None;
    let mut restart = String::new();
    let mut restart_sec = Duration::ZERO;
    for line in unit_block.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "EnvironmentFile" => environment_file = Some(value.to_string()),
            "Environment" => {
                let (k, v) = value.split_once('=').expect("Environment=KEY=VALUE");
                environment.push((k.to_string(), v.to_string()));
            }
            "ExecStart" => exec_start = Some(value.to_string()),
            "Restart" => restart = value.to_string(),
            "RestartSec" => {
                restart_sec = Duration::from_secs(value.parse().expect("RestartSec in seconds"));
            }
            _ => {}
        }
    }
    let (_, shell) = blocks
        .iter()
        .find(|(language, body)| language == "sh" && body.contains("hashtag-aggregator &"))
        .expect("the by-hand shell block");
    Standalone {
        env_path,
        env,
        unit: Unit {
            environment_file: environment_file.expect("EnvironmentFile="),
            environment,
            exec_start: exec_start.expect("ExecStart="),
            restart,
            restart_sec,
        },
        shell: shell.clone(),
    }
}

/// This host's name, what systemd's `%H` expands to.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// One test's copy of the shared environment: the README's file with the broker, the topic
/// names and the API's and producer's ports changed (each of those must be in the file).
#[derive(Debug, Clone)]
struct Shared {
    env: HashMap<String, String>,
    tweets: String,
    api: String,
    producer_metrics: String,
}

impl Shared {
    fn new(readme: &Standalone) -> Shared {
        let tweets = unique_name("sa-tweets");
        let (api_port, api_metrics_port, producer_port) = (free_port(), free_port(), free_port());
        let changes = [
            ("TRENDS__AGGREGATOR__GROUP_ID", unique_name("sa-group")),
            (
                "TRENDS__KAFKA__BOOTSTRAP_SERVERS",
                KafkaBroker::shared().bootstrap_servers().to_string(),
            ),
            ("TRENDS__TOPICS__TWEETS", tweets.clone()),
            ("TRENDS__TOPICS__COUNTS", unique_name("sa-counts")),
            ("TRENDS__TOPICS__DLQ", unique_name("sa-dlq")),
            ("TRENDS__HTTP__ADDR", format!("127.0.0.1:{api_port}")),
            (
                "TRENDS__HTTP__METRICS_ADDR",
                format!("127.0.0.1:{api_metrics_port}"),
            ),
            (
                "TRENDS__PRODUCER__METRICS_ADDR",
                format!("127.0.0.1:{producer_port}"),
            ),
        ];
        let mut env: HashMap<String, String> = readme.env.iter().cloned().collect();
        for (key, value) in changes {
            assert!(
                env.insert(key.to_string(), value).is_some(),
                "README's environment file sets {key}"
            );
        }
        // Not in the README's file (its default is fine on a real broker), unique here.
        env.insert(
            "TRENDS__TOPICS__SOURCE_OFFSETS".into(),
            unique_name("sa-offsets"),
        );
        Shared {
            env,
            tweets,
            api: format!("http://127.0.0.1:{api_port}"),
            producer_metrics: format!("http://127.0.0.1:{producer_port}/metrics"),
        }
    }

    /// The environment systemd gives unit instance `instance` (host `host`): `Environment=`
    /// expanded, then the environment file's lines over it.
    fn unit_env(&self, unit: &Unit, instance: &str, host: &str) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = unit
            .environment
            .iter()
            .map(|(k, v)| {
                let value = v
                    .replace("%%", "\u{0}")
                    .replace("%i", instance)
                    .replace("%H", host)
                    .replace('\u{0}', "%");
                (k.clone(), value)
            })
            .collect();
        env.extend(self.env.clone());
        env
    }
}

// ---------------------------------------------------------------------------------------------
// Unit instances under a supervisor that restarts them on failure, as systemd would.
// ---------------------------------------------------------------------------------------------

/// A running `hashtag-aggregator@<instance>`.
struct UnitInstance {
    name: String,
    metrics: String,
    state: Arc<Mutex<Option<ServiceProcess>>>,
    restarts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    watcher: tokio::task::JoinHandle<()>,
}

impl UnitInstance {
    /// `systemctl start <binary>@<port>`: the unit's environment for instance `port`.
    fn start(shared: &Shared, unit: &Unit, port: u16) -> UnitInstance {
        let binary_name = Path::new(&unit.exec_start)
            .file_name()
            .expect("ExecStart names a binary")
            .to_string_lossy()
            .to_string();
        let instance = port.to_string();
        let env = shared.unit_env(unit, &instance, &host_name());
        let name = format!("{binary_name}@{instance}");
        let process = ServiceProcess::start(&binary_name, &env).expect("start the unit");
        let state = Arc::new(Mutex::new(Some(process)));
        let restarts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let on_failure = unit.restart == "on-failure";
        let restart_sec = unit.restart_sec;
        let watcher = tokio::spawn({
            let (state, restarts, stop, name) =
                (state.clone(), restarts.clone(), stop.clone(), name.clone());
            async move {
                while !stop.load(Ordering::Acquire) {
                    let failed = {
                        let mut guard = state.lock().expect("state");
                        match guard.as_mut().and_then(ServiceProcess::exit_status) {
                            Some(status) if !status.success() => {
                                let log =
                                    guard.as_ref().map(ServiceProcess::log).unwrap_or_default();
                                eprintln!(
                                    "{name} failed ({status}); Restart=on-failure: {}",
                                    tail(&log, 3)
                                );
                                true
                            }
                            _ => false,
                        }
                    };
                    if failed && on_failure {
                        tokio::time::sleep(restart_sec).await;
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let next = ServiceProcess::start(&binary_name, &env).expect("restart");
                        *state.lock().expect("state") = Some(next);
                        restarts.fetch_add(1, Ordering::AcqRel);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        UnitInstance {
            name,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            state,
            restarts,
            stop,
            watcher,
        }
    }

    fn restarts(&self) -> usize {
        self.restarts.load(Ordering::Acquire)
    }

    /// `systemctl stop`: SIGTERM, and the exit code (0: committed and left the group).
    async fn stop(self) -> Option<i32> {
        self.stop.store(true, Ordering::Release);
        self.watcher.await.expect("watcher");
        let process = self.state.lock().expect("state").take();
        let mut process = process.expect("a process");
        process.terminate(SERVICE).expect("stops on SIGTERM")
    }
}

/// Waits until `live` together own every partition, each at least one.
async fn wait_for_ownership(client: &reqwest::Client, live: &[&UnitInstance], what: &str) {
    let started = Instant::now();
    let owned = wait_for(
        &format!("{what}: every partition owned"),
        OWNERSHIP,
        || async {
            let mut owned = Vec::new();
            for unit in live {
                let text = get_text(client, &unit.metrics).await?;
                let n = metric_value(&text, ASSIGNED).ok_or("no gauge yet")? as i32;
                owned.push((unit.name.clone(), n));
            }
            let sum: i32 = owned.iter().map(|(_, n)| n).sum();
            if sum == PARTITIONS && owned.iter().all(|(_, n)| *n > 0) {
                Ok(owned)
            } else {
                Err(format!("{owned:?}"))
            }
        },
    )
    .await
    .expect("ownership");
    let restarts: Vec<(String, usize)> = live
        .iter()
        .map(|u| (u.name.clone(), u.restarts()))
        .collect();
    eprintln!(
        "{what}: {owned:?} after {:.1?} (restarts so far {restarts:?})",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Posts and the truth.
// ---------------------------------------------------------------------------------------------

/// Post `i`: 1–3 tags of a small vocabulary in varied case, on partition `i % 12`.
fn post(i: usize) -> (String, serde_json::Value, i32, Vec<String>) {
    let mut rng = e2e::Lcg(0x57a9 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut written = Vec::new();
    for _ in 0..1 + rng.next(3) {
        let index = rng.next(VOCABULARY as u64) * rng.next(VOCABULARY as u64) / VOCABULARY as u64;
        written.push(match rng.next(3) {
            0 => format!("solo{index:02}"),
            1 => format!("Solo{index:02}"),
            _ => format!("SOLO{index:02}"),
        });
    }
    let mut tags: Vec<String> = Vec::new();
    for w in &written {
        let tag = w.to_lowercase();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let id = format!("sa-{i}");
    let text: Vec<String> = written.iter().map(|w| format!("#{w}")).collect();
    let json = json!({"id": id, "text": format!("post {i} {}", text.join(" and ")),
                      "created_at": rfc3339(T0 - (i % 3_600) as i64 * 1_000), "lang": "en"});
    (id, json, (i % PARTITIONS as usize) as i32, tags)
}

/// Writes posts `range` and waits for every acknowledgement; adds their tags to `truth`.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<usize>,
    truth: &mut BTreeMap<String, i64>,
) {
    let mut in_flight = Vec::new();
    for i in range {
        let (id, json, partition, tags) = post(i);
        let payload = json.to_string();
        let record = FutureRecord::to(topic)
            .key(&id)
            .payload(&payload)
            .partition(partition);
        match producer.send_result(record) {
            Ok(delivery) => in_flight.push(delivery),
            Err((e, _)) => panic!("cannot enqueue {id}: {e}"),
        }
        for tag in tags {
            *truth.entry(tag).or_default() += 1;
        }
    }
    for delivery in in_flight {
        match delivery.await {
            Ok(Ok(_)) => {}
            other => panic!("a post was not delivered: {other:?}"),
        }
    }
}

/// The all-time ranking the API must serve for `truth`: count descending, then tag.
fn ranked(truth: &BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut list: Vec<(String, i64)> = truth.iter().map(|(t, c)| (t.clone(), *c)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

/// Waits until the API's all-time ranking is exactly `truth`; fails at once on an over-count.
async fn assert_exact(
    client: &reqwest::Client,
    api: &str,
    truth: &BTreeMap<String, i64>,
    what: &str,
) {
    let want = ranked(truth);
    let url = format!("{api}/api/v1/trends?window=all&limit=100");
    let started = Instant::now();
    wait_for(
        &format!("{what}: exact all-time counts"),
        SERVICE,
        || async {
            let (status, body) = get_json(client, &url).await?;
            if status != 200 {
                return Err(format!("HTTP {status}"));
            }
            let seen = ranking(&body);
            for (tag, count) in &seen {
                let posted = truth.get(tag).copied().unwrap_or(0);
                assert!(
                    *count <= posted,
                    "{what}: #{tag} counted {count} times, posted {posted}: a record counted twice"
                );
            }
            if seen == want {
                Ok(())
            } else {
                let total: i64 = seen.iter().map(|(_, c)| c).sum();
                Err(format!(
                    "total {total} of {}",
                    want.iter().map(|(_, c)| c).sum::<i64>()
                ))
            }
        },
    )
    .await
    .expect("exact counts");
    eprintln!(
        "{what}: exact ({} tag occurrences) after {:.1?}",
        want.iter().map(|(_, c)| c).sum::<i64>(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// The README's section is what this test runs: the unit's environment file is the file's
/// path, its per-instance variables are the shell loop's, and the file sets none of them
/// (systemd lets `EnvironmentFile=` override `Environment=`).
#[test]
fn the_readme_section_is_consistent() {
    let readme = standalone();
    assert_eq!(readme.unit.environment_file, readme.env_path);
    assert_eq!(readme.unit.restart, "on-failure");
    let per_instance: Vec<&str> = readme
        .unit
        .environment
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        per_instance,
        [
            "TRENDS__AGGREGATOR__INSTANCE_ID",
            "TRENDS__AGGREGATOR__METRICS_ADDR"
        ]
    );
    for key in &per_instance {
        assert!(
            readme.env.iter().all(|(k, _)| k != key),
            "the shared file must not set {key}: it would override the unit's"
        );
        assert!(
            readme.shell.contains(&format!("{key}=")),
            "the shell loop sets {key}"
        );
    }
    assert!(
        readme.shell.contains(&format!(". {}", readme.env_path)),
        "the shell reads the same file"
    );
    // The file holds settings of all three services: that is the point.
    for section in ["TRENDS__HTTP__", "TRENDS__SOURCE__", "TRENDS__AGGREGATOR__"] {
        assert!(
            readme.env.iter().any(|(k, _)| k.starts_with(section)),
            "{section}"
        );
    }
    for name in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        assert!(binary(name).is_file());
    }
}

/// The README's environment file, as is, is accepted by every service; a typo in it is
/// refused by every service, naming the nearest key; the binary exits with 2 saying so.
#[tokio::test]
async fn one_environment_serves_all_three_and_a_typo_names_the_nearest_key() {
    let readme = standalone();
    let env: HashMap<String, String> = readme.env.iter().cloned().collect();
    tweet_producer::settings::Settings::load_from(&env).expect("the producer accepts it");
    hashtag_aggregator::settings::Settings::load_from(&env).expect("the aggregator accepts it");
    trends_api::settings::Settings::load_from(&env).expect("the API accepts it");

    let mut typo = env.clone();
    typo.insert(
        "TRENDS__AGGREGATOR__METRICS_ADR".into(),
        "127.0.0.1:9110".into(),
    );
    let expected = [
        "unknown setting aggregator.metrics_adr (TRENDS__AGGREGATOR__METRICS_ADR)",
        "no service reads it",
        "the nearest is aggregator.metrics_addr (TRENDS__AGGREGATOR__METRICS_ADDR)",
    ];
    let errors = [
        tweet_producer::settings::Settings::load_from(&typo)
            .expect_err("producer")
            .to_string(),
        hashtag_aggregator::settings::Settings::load_from(&typo)
            .expect_err("aggregator")
            .to_string(),
        trends_api::settings::Settings::load_from(&typo)
            .expect_err("api")
            .to_string(),
    ];
    for error in &errors {
        for part in expected {
            assert!(error.contains(part), "{part} in {error}");
        }
    }
    let mut process = ServiceProcess::start("hashtag-aggregator", &typo).expect("start");
    let status = process.wait_exit(SERVICE).await.expect("exits");
    assert_eq!(
        status.code(),
        Some(2),
        "a refused configuration exits with 2"
    );
    let log = process.log();
    for part in expected {
        assert!(log.contains(part), "{part} in {log}");
    }
}

/// Every variable of README's Configuration table, in one environment, loaded by the three
/// services' loaders. Values: the documented default where the table gives one as a literal,
/// else (and for the settings that must hang together: a secured cluster, the sources, the
/// webhooks) one given here. A secret's `…__ENV` and `…__FILE` exclude each other, so the
/// environment is loaded twice: once with every `__ENV`, once with every `__FILE`.
#[test]
fn every_documented_variable_in_one_environment_loads_in_all_three_services() {
    let text = readme();
    let table = section(&text, "## Configuration");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, content: &str| -> String {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    };
    let given: HashMap<&str, String> = [
        ("TRENDS__KAFKA__SECURITY_PROTOCOL", "sasl_ssl".to_string()),
        ("TRENDS__KAFKA__SASL__MECHANISM", "OAUTHBEARER".into()),
        ("TRENDS__KAFKA__SASL__USERNAME", "hashtag-trends".into()),
        (
            "TRENDS__KAFKA__SASL__PASSWORD__ENV",
            "KAFKA_PASSWORD".into(),
        ),
        (
            "TRENDS__KAFKA__SASL__PASSWORD__FILE",
            file("kafka-password", "pw\n"),
        ),
        (
            "TRENDS__KAFKA__SASL__OAUTHBEARER__TOKEN_ENDPOINT_URL",
            "https://idp.example/oauth2/token".into(),
        ),
        (
            "TRENDS__KAFKA__SASL__OAUTHBEARER__CLIENT_ID",
            "hashtag-trends".into(),
        ),
        ("TRENDS__KAFKA__SASL__OAUTHBEARER__SCOPE", "kafka".into()),
        (
            "TRENDS__KAFKA__SASL__OAUTHBEARER__EXTENSIONS",
            "logicalCluster=lkc-1".into(),
        ),
        (
            "TRENDS__KAFKA__SASL__OAUTHBEARER__CLIENT_SECRET__ENV",
            "OIDC_SECRET".into(),
        ),
        (
            "TRENDS__KAFKA__SASL__OAUTHBEARER__CLIENT_SECRET__FILE",
            file("oidc-secret", "s\n"),
        ),
        ("TRENDS__KAFKA__SSL__CA_FILE", file("ca.pem", "ca\n")),
        ("TRENDS__KAFKA__SSL__CERT_FILE", file("user.crt", "crt\n")),
        ("TRENDS__KAFKA__SSL__KEY_FILE", file("user.key", "key\n")),
        (
            "TRENDS__KAFKA__SSL__KEY_PASSWORD__ENV",
            "KEY_PASSWORD".into(),
        ),
        (
            "TRENDS__KAFKA__SSL__KEY_PASSWORD__FILE",
            file("key-password", "k\n"),
        ),
        ("TRENDS__KAFKA__PROPERTIES__<NAME>", "true".into()),
        ("TRENDS__KAFKA__DEBUG", "cgrp,eos".into()),
        (
            "TRENDS__HTTP__CORS_ALLOWED_ORIGINS",
            "https://a.example".into(),
        ),
        ("TRENDS__HTTP__METRICS_ADDR", "127.0.0.1:9102".into()),
        ("TRENDS__ADMIN__TOKEN__ENV", "ADMIN_TOKEN".into()),
        ("TRENDS__ADMIN__TOKEN__FILE", file("admin-token", "a\n")),
        (
            "TRENDS__WEBHOOKS__URLS",
            "https://hooks.example/trends".into(),
        ),
        ("TRENDS__WEBHOOKS__SECRET__ENV", "WEBHOOK_KEY".into()),
        ("TRENDS__WEBHOOKS__SECRET__FILE", file("webhook-key", "w\n")),
        ("TRENDS__AGGREGATOR__INSTANCE_ID", "host-9110".into()),
        ("TRENDS__SOURCE__KEYWORDS", "rust,kafka".into()),
        ("TRENDS__SOURCE__LANGUAGES", "en,ja".into()),
        (
            "TRENDS__SOURCE__MASTODON__STREAMING_URL",
            "wss://streaming.mastodon.social".into(),
        ),
        ("TRENDS__SOURCE__MASTODON__STREAM", "hashtag".into()),
        ("TRENDS__SOURCE__MASTODON__TAG", "rust".into()),
        (
            "TRENDS__SOURCE__MASTODON__TOKEN__ENV",
            "MASTODON_TOKEN".into(),
        ),
        (
            "TRENDS__SOURCE__MASTODON__TOKEN__FILE",
            file("mastodon", "m\n"),
        ),
        ("TRENDS__SOURCE__X__RULES", "#rust lang:en".into()),
        ("TRENDS__SOURCE__X__TOKEN__ENV", "X_BEARER_TOKEN".into()),
        ("TRENDS__SOURCE__X__TOKEN__FILE", file("x-token", "x\n")),
        ("TRENDS__SOURCE__FILE__PATH", file("posts.jsonl", "")),
        (
            "TRENDS__PRODUCER__TRANSACTIONAL_ID",
            "tweet-producer-1".into(),
        ),
    ]
    .into_iter()
    .collect();

    let mut documented: Vec<(String, String)> = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `TRENDS__")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let names = backticked(cells[0].trim_start_matches("| "));
        let defaults = backticked(cells.get(1).copied().unwrap_or_default());
        let first = names[0].clone();
        let full: Vec<String> = names
            .iter()
            .map(|n| {
                let suffix = n.trim_start_matches('…');
                if suffix.starts_with("__") {
                    let base = first.rsplit_once("__").expect("a segment").0;
                    format!("{base}{suffix}")
                } else {
                    n.clone()
                }
            })
            .collect();
        for (i, name) in full.iter().enumerate() {
            let default = match defaults.len() {
                0 => None,
                1 => Some(defaults[0].clone()),
                _ => defaults.get(i).cloned(),
            };
            let value = given
                .get(name.as_str())
                .cloned()
                .or(default)
                .unwrap_or_else(|| panic!("README documents {name} without a literal default: give it a value in this test"));
            let name = name.replace("<NAME>", "SOCKET_KEEPALIVE_ENABLE");
            documented.push((name, value));
        }
    }
    assert!(
        documented.len() > 100,
        "{} variables found",
        documented.len()
    );
    let secrets = [
        ("KAFKA_PASSWORD", "pw"),
        ("OIDC_SECRET", "s"),
        ("KEY_PASSWORD", "k"),
        ("ADMIN_TOKEN", "a"),
        ("WEBHOOK_KEY", "w"),
        ("MASTODON_TOKEN", "m"),
        ("X_BEARER_TOKEN", "x"),
    ];
    for (alternative, excluded) in [("__ENV", "__FILE"), ("__FILE", "__ENV")] {
        let mut env: HashMap<String, String> = documented
            .iter()
            .filter(|(name, _)| !name.ends_with(excluded))
            .cloned()
            .collect();
        env.extend(secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let what = format!("{} variables, secrets by {alternative}", env.len());
        tweet_producer::settings::Settings::load_from(&env)
            .unwrap_or_else(|e| panic!("the producer refuses {what}: {e}"));
        hashtag_aggregator::settings::Settings::load_from(&env)
            .unwrap_or_else(|e| panic!("the aggregator refuses {what}: {e}"));
        trends_api::settings::Settings::load_from(&env)
            .unwrap_or_else(|e| panic!("the API refuses {what}: {e}"));
        eprintln!("all three services load {what}");
    }
}

/// The `backticked` spans of a table cell, in order.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A port in use stops each service with its setting, its value and what to do; port 0
/// takes any free port, and the log says which.
#[tokio::test]
async fn a_port_in_use_names_its_setting_and_port_0_logs_the_address_it_got() {
    let readme = standalone();
    let shared = Shared::new(&readme);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let taken_addr = format!("127.0.0.1:{port}");
    let cases = [
        (
            "hashtag-aggregator",
            shared.unit_env(&readme.unit, &port.to_string(), &host_name()),
            "aggregator.metrics_addr",
        ),
        (
            "trends-api",
            {
                let mut env = shared.env.clone();
                env.insert("TRENDS__HTTP__ADDR".into(), taken_addr.clone());
                env
            },
            "http.addr",
        ),
        (
            "tweet-producer",
            {
                let mut env = shared.env.clone();
                env.insert("TRENDS__PRODUCER__METRICS_ADDR".into(), taken_addr.clone());
                env
            },
            "producer.metrics_addr",
        ),
    ];
    for (name, env, setting) in cases {
        let mut process = ServiceProcess::start(name, &env).expect("start");
        let status = process.wait_exit(SERVICE).await.expect("exits");
        assert_eq!(status.code(), Some(1), "{name}");
        let log = process.log();
        for part in [
            format!("{setting} {taken_addr} is in use"),
            "give each instance on a host its own port".to_string(),
        ] {
            assert!(log.contains(&part), "{name}: {part} in {log}");
        }
        eprintln!("{name}: {}", tail(&log, 1));
    }
    drop(taken);

    // `hashtag-aggregator@0`: any free port, logged.
    let mut process = ServiceProcess::start(
        "hashtag-aggregator",
        &shared.unit_env(&readme.unit, "0", &host_name()),
    )
    .expect("start");
    let address = wait_for("the bound address in the log", SERVICE, || async {
        let log = process.log();
        log.lines()
            .find(|l| l.contains("serving metrics on /metrics"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .ok_or_else(|| tail(&log, 3))
    })
    .await
    .expect("logged");
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );
    let client = reqwest::Client::new();
    let metrics = wait_for("metrics on the logged address", SERVICE, || async {
        get_text(&client, &format!("http://{address}/metrics")).await
    })
    .await
    .expect("metrics");
    assert!(metrics.contains(ASSIGNED), "{metrics}");
    assert_eq!(process.terminate(SERVICE).expect("stop"), Some(0));
}

/// Two aggregators on one host that both take their id from `$HOSTNAME` (the issue's case):
/// the second fences the first, which says so, naming `aggregator.instance_id`, its value and
/// how to give each its own.
#[tokio::test]
async fn a_second_instance_with_the_same_id_is_named_as_the_reason() {
    let readme = standalone();
    let shared = Shared::new(&readme);
    create_topic(&shared.tweets, PARTITIONS).await;
    let host = unique_name("host");
    let start = |port: u16| {
        let mut env = shared.env.clone();
        env.insert(
            "TRENDS__AGGREGATOR__METRICS_ADDR".into(),
            format!("127.0.0.1:{port}"),
        );
        env.insert("HOSTNAME".into(), host.clone());
        ServiceProcess::start("hashtag-aggregator", &env).expect("start")
    };
    let client = reqwest::Client::new();
    let first_port = free_port();
    let mut first = start(first_port);
    // Posts keep coming, so the first instance has transactions to commit.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn({
        let (stop, topic) = (stop.clone(), shared.tweets.clone());
        async move {
            let producer = crate::pipeline::plain_producer();
            let mut truth = BTreeMap::new();
            let mut next = 0;
            while !stop.load(Ordering::Acquire) {
                produce(&producer, &topic, next..next + 24, &mut truth).await;
                next += 24;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    wait_for("the first instance to commit", SERVICE, || async {
        let text = get_text(&client, &format!("http://127.0.0.1:{first_port}/metrics")).await?;
        match metric_value(&text, "trends_aggregator_transactions_committed_total") {
            Some(n) if n > 0.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("commits");
    let mut second = start(free_port());
    let deadline = Instant::now() + SERVICE;
    let (which, status, log) = loop {
        if let Some(status) = first.exit_status() {
            break ("first", status, first.log());
        }
        if let Some(status) = second.exit_status() {
            break ("second", status, second.log());
        }
        assert!(
            Instant::now() < deadline,
            "neither instance exited within {SERVICE:?}:\n{}",
            tail(&first.log(), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Release);
    feeder.await.expect("feeder");
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains("hashtag-aggregator stopped"))
        .unwrap_or_default()
        .to_string();
    eprintln!("the {which} instance exited ({status}):\n{last}");
    // The newer instance fences the older (seen every time here); should a commit of the
    // newer one meet the rebalance first, it is refused by the group and says the same.
    assert_eq!(status.code(), Some(1));
    for part in [
        "another instance with the same aggregator.instance_id".to_string(),
        host.clone(),
        "took over".to_string(),
        "defaults to $HOSTNAME".to_string(),
        "give each instance its own aggregator.instance_id".to_string(),
        "%H-%i".to_string(),
    ] {
        assert!(last.contains(&part), "{part} in {last}");
    }
    assert_eq!(second.terminate(SERVICE).expect("stop"), Some(0));
}

/// The whole section: the API and aggregators started from the README's file and unit, 1 → 3
/// → 1 aggregators with exact counts after each step, then the producer from the same file.
#[tokio::test]
async fn three_aggregators_on_one_host_scale_1_3_1_with_exact_counts() {
    let readme = standalone();
    let shared = Shared::new(&readme);
    create_topic(&shared.tweets, PARTITIONS).await;
    let client = reqwest::Client::new();
    let mut api = ServiceProcess::start("trends-api", &shared.env).expect("start the API");
    let producer = crate::pipeline::plain_producer();
    let mut truth = BTreeMap::new();
    let ports = [free_port(), free_port(), free_port()];

    // systemctl enable --now hashtag-aggregator@<a>
    let a = UnitInstance::start(&shared, &readme.unit, ports[0]);
    wait_for_ownership(&client, &[&a], "one aggregator").await;
    produce(&producer, &shared.tweets, 0..1_000, &mut truth).await;
    assert_exact(&client, &shared.api, &truth, "one aggregator").await;

    // … hashtag-aggregator@<b> hashtag-aggregator@<c>: three, on one host.
    let b = UnitInstance::start(&shared, &readme.unit, ports[1]);
    let c = UnitInstance::start(&shared, &readme.unit, ports[2]);
    produce(&producer, &shared.tweets, 1_000..1_500, &mut truth).await;
    wait_for_ownership(&client, &[&a, &b, &c], "three aggregators").await;
    produce(&producer, &shared.tweets, 1_500..2_500, &mut truth).await;
    assert_exact(&client, &shared.api, &truth, "three aggregators").await;
    // Each instance's id is `%H-%i`: this host and its port, so three transactional ids.
    for port in ports {
        let env = shared.unit_env(&readme.unit, &port.to_string(), &host_name());
        assert_eq!(
            env["TRENDS__AGGREGATOR__INSTANCE_ID"],
            format!("{}-{port}", host_name())
        );
        assert_eq!(
            env["TRENDS__AGGREGATOR__METRICS_ADDR"],
            format!("127.0.0.1:{port}")
        );
    }

    // systemctl disable --now hashtag-aggregator@<b> hashtag-aggregator@<c>
    let restarts = a.restarts() + b.restarts() + c.restarts();
    assert_eq!(
        b.stop().await,
        Some(0),
        "SIGTERM: commit, leave the group, exit 0"
    );
    assert_eq!(
        c.stop().await,
        Some(0),
        "SIGTERM: commit, leave the group, exit 0"
    );
    produce(&producer, &shared.tweets, 2_500..3_000, &mut truth).await;
    wait_for_ownership(&client, &[&a], "one aggregator again").await;
    produce(&producer, &shared.tweets, 3_000..4_000, &mut truth).await;
    assert_exact(&client, &shared.api, &truth, "one aggregator again").await;
    eprintln!(
        "restarts by Restart=on-failure during the scaling: {restarts} (now {})",
        a.restarts()
    );

    // The producer, from the same file: its posts are counted on top.
    let mut tweet_producer =
        ServiceProcess::start("tweet-producer", &shared.env).expect("start the producer");
    let ours: i64 = truth.values().sum();
    wait_for("the producer's posts counted too", SERVICE, || async {
        let (_, body) = get_json(
            &client,
            &format!("{}/api/v1/trends?window=all&limit=100", shared.api),
        )
        .await?;
        let total: i64 = ranking(&body).iter().map(|(_, c)| c).sum();
        // The producer serves its metrics on the port the file gives it.
        get_text(&client, &shared.producer_metrics).await?;
        if total > ours {
            Ok(())
        } else {
            Err(format!("total {total}, ours {ours}"))
        }
    })
    .await
    .expect("the producer runs from the shared file");
    assert_eq!(tweet_producer.terminate(SERVICE).expect("stop"), Some(0));
    assert_eq!(a.stop().await, Some(0));
    assert_eq!(api.terminate(SERVICE).expect("stop"), Some(0));
}
