//! Prometheus with live data, and its own page: the README's "Observability" screenshot.
//!
//! Grafana cannot be installed from the package registries this project may use, so the
//! screenshot is of Prometheus's own graph page (Debian's `prometheus` package, whose server
//! ships the classic web UI at `/classic/graph`). The test runs a broker and the three services
//! as processes (tweet-producer's synthetic source sends exactly [`POSTS`] posts, then exits),
//! and the real `prometheus` server with a scrape configuration generated from the compose
//! profile's `deploy/prometheus/prometheus.yml` (its jobs and rule file, the targets pointed at
//! the test's processes, a 1 s scrape interval) on a free port and a temporary storage
//! directory. It checks through Prometheus's HTTP API that:
//!
//! - every service is scraped while posts flow, and the rate of posts counted is above 0;
//! - once the producer has exited, Prometheus holds exactly what the test sent: the
//!   aggregator's records counted and freshness observations are [`POSTS`], the API read
//!   exactly the counts records the aggregator wrote, each equal to the service's own
//!   `/metrics`; the producer's last scraped count is at most [`POSTS`], and its target is down;
//! - the alert rules of `deploy/prometheus/alerts.yml` are loaded and evaluate against the real
//!   series without error, none firing.
//!
//! Then `tests/browser/prometheus.test.mjs` has headless Chromium (Debian's `chromium`,
//! through playwright-core) load the graph page with three of the dashboard's queries
//! (`$__rate_interval` replaced by [`RATE_WINDOW`]) and one exact count in the console tab,
//! checks that each graph drew its series and the count reads [`POSTS`], and screenshots it
//! (`target/browser-artifacts/prometheus-graph.png`), then the alerts page
//! (`prometheus-alerts.png`).
//!
//! Nothing is skipped: without `prometheus`, chromium, node or playwright-core the test fails
//! and says how to install them (`./scripts/test.sh` does).
//!
//! A second test checks offline that docker-compose.yml's `observability` profile runs these
//! checked files, wired to the services' own settings (ports, DNS names, mounts, data source).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{ServiceProcess, Topics, create_topic, free_port, get_text, metric_value, wait_for};
use serde_json::{Value, json};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
/// The whole browser run; it normally takes a few seconds.
const NODE_TIMEOUT: Duration = Duration::from_secs(300);
const PARTITIONS: i32 = 3;
/// Posts the synthetic source sends before it exits.
const POSTS: u64 = 3000;
/// … at this rate: 30 s of traffic, enough for several scrapes and rule evaluations.
const RATE: u64 = 100;
/// The range of the rate queries, for `$__rate_interval` (scrapes are 1 s apart).
const RATE_WINDOW: &str = "10s";
/// The jobs of `deploy/prometheus/prometheus.yml` that scrape the three services.
const SERVICE_JOBS: [&str; 3] = ["hashtag-aggregator", "trends-api", "tweet-producer"];

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Canonical: the rule file's path is shown on Prometheus's alerts page.
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// The `prometheus` server: `PROMETHEUS`, else on `PATH`. Missing: fail, saying how to get it.
fn prometheus_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMETHEUS") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PROMETHEUS={} is not a file",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the prometheus server is missing (this test runs it): install Debian's prometheus \
                 package without starting its daemon, as scripts/check-prometheus.sh does when \
                 run as root (./scripts/test.sh runs it before the tests), or \
                 `apt-get install --no-install-recommends prometheus`, or set PROMETHEUS to a \
                 prometheus binary"
            )
        })
}

/// Chromium, node and playwright-core must be there; say how to get them, never skip.
fn browser_setup(root: &Path) -> PathBuf {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM_PATH").unwrap_or("/usr/bin/chromium".into()));
    let how = "run ./scripts/test.sh once: it installs Debian's chromium (as root) and runs \
               `npm ci` in tests/browser";
    assert!(
        chromium.exists(),
        "{} is missing (this test screenshots Prometheus's page with headless Chromium): {how}",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing (this test runs tests/browser/prometheus.test.mjs with it): install \
         Node.js 20 or newer, then {how}"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules is missing: {how}"
    );
    chromium
}

/// The compose profile's Prometheus configuration, for processes on this host: its global
/// settings and rule file (made absolute), and of its scrape jobs those of the three services,
/// each with the one target given here instead of compose's DNS names. Scrapes and rule
/// evaluations every second, so that a short test has several of each.
fn scrape_config(root: &Path, targets: &BTreeMap<&str, String>) -> String {
    let path = root.join("deploy/prometheus/prometheus.yml");
    let text = std::fs::read_to_string(&path).expect("read deploy/prometheus/prometheus.yml");
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("deploy/prometheus/prometheus.yml is YAML");
    let global = config["global"]
        .as_mapping_mut()
        .expect("prometheus.yml has global settings");
    for key in ["scrape_interval", "evaluation_interval"] {
        global.insert(key.into(), "1s".into());
    }
    global.insert("scrape_timeout".into(), "900ms".into());
    let rule_files: Vec<serde_yaml::Value> = config["rule_files"]
        .as_sequence()
        .expect("prometheus.yml loads rule files")
        .iter()
        .map(|f| {
            let file = f.as_str().expect("a rule file path");
            path.parent()
                .expect("the config's directory")
                .join(file)
                .to_string_lossy()
                .into_owned()
                .into()
        })
        .collect();
    config["rule_files"] = rule_files.into();
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("prometheus.yml has scrape_configs");
    jobs.retain(|job| {
        job["job_name"]
            .as_str()
            .is_some_and(|name| targets.contains_key(name))
    });
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["job_name"].as_str()).collect();
    let mut expected: Vec<&str> = targets.keys().copied().collect();
    expected.sort_unstable();
    let mut found = names.clone();
    found.sort_unstable();
    assert_eq!(
        found, expected,
        "deploy/prometheus/prometheus.yml scrapes every service under the job name the alert \
         rules and the dashboard use"
    );
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().expect("job_name").to_string();
        let map = job.as_mapping_mut().expect("a scrape job is a mapping");
        map.retain(|key, _| {
            !key.as_str()
                .is_some_and(|k| k.ends_with("_sd_configs") || k == "static_configs")
        });
        map.insert(
            "static_configs".into(),
            serde_yaml::to_value(vec![json!({ "targets": [targets[name.as_str()]] })])
                .expect("static_configs as YAML"),
        );
    }
    serde_yaml::to_string(&config).expect("the generated config as YAML")
}

/// A `prometheus` server process on a free loopback port with its own storage directory;
/// killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(binary: &Path, config: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("e2e-prometheus-")
            .tempdir()
            .expect("tempdir");
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).expect("create prometheus.log");
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        let child = test_support::spawn_killed_on_parent_exit(cmd)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- prometheus ({}) ----\n{}",
                self.dir.path().display(),
                e2e::tail(&self.log(), 40)
            );
        }
    }
}

/// GET `{base}/api/v1/{path}` with `query`; the `data` of a successful answer.
async fn api(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Value, String> {
    let url = format!("{base}/api/v1/{path}");
    let response = client
        .get(&url)
        .query(query)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let body: Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    if body["status"] != "success" {
        return Err(format!("{url} {query:?}: {body}"));
    }
    Ok(body["data"].clone())
}

/// The value of an instant query that must return exactly one sample.
async fn scalar(client: &reqwest::Client, base: &str, expr: &str) -> Result<f64, String> {
    let data = api(client, base, "query", &[("query", expr)]).await?;
    match data["result"].as_array().map(Vec::as_slice) {
        Some([one]) => one["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{expr}: not a number: {one}")),
        other => Err(format!("{expr}: expected one sample, got {other:?}")),
    }
}

/// Job → health of every active target.
async fn target_health(
    client: &reqwest::Client,
    base: &str,
) -> Result<BTreeMap<String, String>, String> {
    let data = api(client, base, "targets", &[]).await?;
    Ok(data["activeTargets"]
        .as_array()
        .ok_or_else(|| format!("no activeTargets: {data}"))?
        .iter()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                t["health"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// The alert names of `deploy/prometheus/alerts.yml`.
fn alert_names(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml"))
        .expect("read deploy/prometheus/alerts.yml");
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).expect("alerts.yml is YAML");
    rules["groups"]
        .as_sequence()
        .expect("alerts.yml has groups")
        .iter()
        .filter_map(|g| g["rules"].as_sequence())
        .flatten()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

/// Replaces Grafana's `$__rate_interval` by [`RATE_WINDOW`].
fn promql(dashboard_expr: &str) -> String {
    dashboard_expr.replace("$__rate_interval", RATE_WINDOW)
}

/// The dashboard's query of the panel titled `title` (its `index`th target).
fn dashboard_query(root: &Path, title: &str, index: usize) -> String {
    let path = root.join("deploy/grafana/dashboards/hashtag-trends.json");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .expect("read deploy/grafana/dashboards/hashtag-trends.json"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let panel = panels
        .iter()
        .chain(
            panels
                .iter()
                .filter_map(|p| p["panels"].as_array())
                .flatten(),
        )
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title:?} in {}", path.display()));
    let expr = panel["targets"][index]["expr"]
        .as_str()
        .unwrap_or_else(|| panic!("panel {title:?} has no query #{index}"));
    promql(expr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_live_services_and_its_page_graphs_the_dashboard_queries() {
    let root = repo_root();
    let prometheus_bin = prometheus_binary();
    let chromium = browser_setup(&root);
    let client = reqwest::Client::new();

    let topics = Topics::unique("prom-");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    create_topic(&topics.tweets, PARTITIONS).await;
    let mut aggregator =
        topics.start_aggregator(bootstrap, PARTITIONS, &unique_name("prom-aggregator"), &[]);
    let mut api_service = topics.start_api(bootstrap, PARTITIONS);
    let producer_addr = format!("127.0.0.1:{}", free_port());
    let addr_of = |url: &str| {
        url.trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_string()
    };
    let targets: BTreeMap<&str, String> = [
        ("hashtag-aggregator", addr_of(&aggregator.url)),
        ("trends-api", addr_of(&api_service.url)),
        ("tweet-producer", producer_addr.clone()),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        targets.keys().copied().collect::<Vec<_>>(),
        SERVICE_JOBS.to_vec()
    );
    let prometheus = Prometheus::start(&prometheus_bin, &scrape_config(&root, &targets));
    let prom = prometheus.url.clone();
    let started = Instant::now();
    let mut producer = ServiceProcess::start(
        "tweet-producer",
        &topics.env(
            bootstrap,
            PARTITIONS,
            &[
                ("TRENDS__SOURCE__KIND", "synthetic".into()),
                ("TRENDS__SOURCE__SYNTHETIC__RATE", RATE.to_string()),
                ("TRENDS__SOURCE__SYNTHETIC__LIMIT", POSTS.to_string()),
                ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "200".into()),
                ("TRENDS__PRODUCER__METRICS_ADDR", producer_addr),
            ],
        ),
    )
    .expect("start tweet-producer");

    // 1. Live: every service scraped, posts published and counted at a rate above 0.
    let counted = format!("sum(rate(trends_aggregator_records_processed_total[{RATE_WINDOW}]))");
    let published = format!("sum(rate(trends_producer_events_published_total[{RATE_WINDOW}]))");
    let live = wait_for("Prometheus scraping live data", WAIT, || {
        let (client, prom, counted, published) = (&client, &prom, &counted, &published);
        async move {
            let health = target_health(client, prom).await?;
            let up = SERVICE_JOBS
                .iter()
                .all(|job| health.get(*job).is_some_and(|h| h == "up"));
            let counted = scalar(client, prom, counted).await?;
            let published = scalar(client, prom, published).await?;
            if up && counted > 0.0 && published > 0.0 {
                Ok((counted, published))
            } else {
                Err(format!(
                    "targets {health:?}; posts/s published {published}, counted {counted}"
                ))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", e2e::tail(&prometheus.log(), 20)));
    eprintln!(
        "live after {:?}: {:.1} posts/s published, {:.1} counted",
        started.elapsed(),
        live.1,
        live.0
    );

    // 2. The producer stops at its limit; Prometheus then holds exactly what was sent.
    let status = producer
        .wait_exit(WAIT + Duration::from_secs(POSTS / RATE))
        .await
        .expect("tweet-producer exits at its limit");
    assert!(status.success(), "tweet-producer: {status}");
    let exact = wait_for("every post counted, as Prometheus scraped it", WAIT, || {
        let (client, prom) = (&client, &prom);
        async move {
            let mut values = BTreeMap::new();
            for expr in [
                "sum(trends_aggregator_records_processed_total)",
                "sum(trends_aggregator_record_age_seconds_count)",
                "sum(trends_aggregator_counts_records_produced_total)",
                "sum(trends_api_counts_records_consumed_total)",
                "max(max_over_time(trends_producer_events_published_total[10m]))",
                "up{job=\"tweet-producer\"}",
            ] {
                values.insert(expr, scalar(client, prom, expr).await?);
            }
            let done = values["sum(trends_aggregator_records_processed_total)"] == POSTS as f64
                && values["sum(trends_aggregator_record_age_seconds_count)"] == POSTS as f64
                && values["sum(trends_api_counts_records_consumed_total)"]
                    == values["sum(trends_aggregator_counts_records_produced_total)"]
                && values["up{job=\"tweet-producer\"}"] == 0.0;
            if done {
                Ok(values)
            } else {
                Err(format!("{values:#?}"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\naggregator log:\n{}\napi log:\n{}",
            e2e::tail(&aggregator.process.log(), 20),
            e2e::tail(&api_service.process.log(), 20)
        )
    });
    eprintln!("Prometheus after the producer's exit: {exact:#?}");
    // What Prometheus scraped is what the aggregator serves now: no post moves any more. (Counts
    // records still do, as buckets leave the windows and are deleted, so the two counts of
    // them are compared with each other above, as Prometheus held them at one moment.)
    let aggregator_text = get_text(&client, &aggregator.url)
        .await
        .expect("the aggregator's /metrics");
    for name in [
        "trends_aggregator_records_processed_total",
        "trends_aggregator_record_age_seconds_count",
    ] {
        assert_eq!(
            metric_value(&aggregator_text, name),
            Some(exact[format!("sum({name})").as_str()]),
            "{name}: the aggregator's /metrics and Prometheus agree"
        );
    }
    let producer_seen = exact["max(max_over_time(trends_producer_events_published_total[10m]))"];
    assert!(
        producer_seen > 0.0 && producer_seen <= POSTS as f64,
        "the producer's last scraped count {producer_seen} is at most the {POSTS} it sent (its \
         last posts may have gone out after its last scrape)"
    );
    assert!(
        exact["sum(trends_aggregator_counts_records_produced_total)"] > 0.0,
        "counts records were written"
    );
    for job in ["hashtag-aggregator", "trends-api"] {
        let up = scalar(&client, &prom, &format!("up{{job=\"{job}\"}}"))
            .await
            .expect("up");
        assert_eq!(up, 1.0, "{job} is up");
    }

    // 3. The alert rules: all loaded, evaluated against these series without error, none
    //    firing (every service is healthy, nothing lags, nothing is dead-lettered).
    let names = alert_names(&root);
    assert!(names.len() >= 5, "alerts.yml has its alerts: {names:?}");
    let rules = wait_for("the alert rules evaluated", WAIT, || {
        let (client, prom, names) = (&client, &prom, &names);
        async move {
            let data = api(client, prom, "rules", &[]).await?;
            let rules: Vec<Value> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["rules"].as_array())
                .flatten()
                .cloned()
                .collect();
            let mut loaded: Vec<String> = rules
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect();
            loaded.sort();
            let mut want = names.clone();
            want.sort();
            let evaluated = rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            });
            if loaded == want && evaluated {
                Ok(rules)
            } else {
                Err(format!(
                    "loaded {loaded:?}, want {want:?}, evaluated: {evaluated}"
                ))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
        assert_eq!(rule["state"], "inactive", "{rule}");
    }

    // 4. The page: three of the dashboard's queries as graphs over the whole run (from
    //    Prometheus's start to the rate of posts counted back at 0, so the graphs show the
    //    traffic whole), and the exact count in the console tab.
    wait_for("the rate of posts counted back at 0", WAIT, || {
        let (client, prom, counted) = (&client, &prom, &counted);
        async move {
            let rate = scalar(client, prom, counted).await?;
            if rate == 0.0 {
                Ok(())
            } else {
                Err(format!("{rate} posts/s"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let range_secs = started.elapsed().as_secs().div_ceil(5) * 5;
    let graphs = [
        (
            "Posts counted /s",
            dashboard_query(&root, "Posts counted /s", 0),
        ),
        (
            "Freshness p99",
            dashboard_query(&root, "Freshness p50 / p99", 1),
        ),
        (
            "Commit cycle by phase (mean)",
            dashboard_query(&root, "Commit cycle by phase", 0),
        ),
    ];
    let page = json!({
        "range": format!("{range_secs}s"),
        "graphs": graphs
            .iter()
            .map(|(title, expr)| json!({ "title": title, "expr": expr }))
            .collect::<Vec<_>>(),
        "console": {
            "expr": "sum(trends_aggregator_records_processed_total)",
            "value": POSTS.to_string(),
        },
        "alerts": names,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let page_file = dir.path().join("page.json");
    std::fs::write(&page_file, page.to_string()).expect("write page.json");
    let artifacts = root.join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let mut cmd = Command::new("node");
    cmd.current_dir(&root)
        .arg("tests/browser/prometheus.test.mjs")
        .arg(&prom)
        .arg(&page_file)
        .arg(&artifacts)
        .env("CHROMIUM_PATH", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut node = test_support::spawn_killed_on_parent_exit(cmd).expect("spawn node");
    let stderr = node.stderr.take().expect("node stderr");
    let stderr_thread = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .inspect(|l| eprintln!("  node: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let stdout = node.stdout.take().expect("node stdout");
    let stdout_thread = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .inspect(|l| eprintln!("  node: {l}"))
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + NODE_TIMEOUT;
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            panic!("the Prometheus page test did not finish within {NODE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = stdout_thread.join().expect("node stdout thread");
    let err = stderr_thread.join().expect("node stderr thread");
    let transcript = format!("{}\n{err}", out.join("\n"));
    assert!(
        status.success(),
        "the Prometheus page test failed ({status}):\n{transcript}"
    );
    assert!(
        out.iter().any(|l| l == "PROMETHEUS PAGE TEST PASSED"),
        "the page test says it passed:\n{transcript}"
    );
    let shots: Vec<&str> = out
        .iter()
        .filter_map(|l| l.strip_prefix("SCREENSHOT "))
        .collect();
    for name in ["prometheus-graph.png", "prometheus-alerts.png"] {
        let shot = shots
            .iter()
            .find(|s| s.ends_with(name))
            .unwrap_or_else(|| panic!("no {name} among {shots:?}:\n{transcript}"));
        assert!(Path::new(shot).is_file(), "{shot} was written");
        println!("Prometheus page screenshot: {shot}");
    }

    for process in [&mut aggregator.process, &mut api_service.process] {
        process
            .terminate(Duration::from_secs(20))
            .expect("stop a service");
    }
    drop(prometheus);
}

/// A compose service's environment with `${VAR:-default}` resolved to its default (the shell
/// sets nothing).
fn compose_environment(service: &serde_yaml::Value) -> std::collections::HashMap<String, String> {
    service["environment"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let key = k.as_str().expect("a variable name").to_string();
            let raw = match v {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .expect("a scalar")
                    .trim()
                    .to_string(),
            };
            let value = match (raw.strip_prefix("${"), raw.find(":-")) {
                (Some(_), Some(i)) => raw[i + 2..raw.len() - 1].to_string(),
                _ => raw,
            };
            (key, value)
        })
        .collect()
}

/// `host:port` → port.
fn port_of(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {address:?}"))
}

/// The observability profile of docker-compose.yml runs what this module and
/// scripts/check-prometheus.sh check, wired to the services as their own settings say: its
/// Prometheus mounts deploy/prometheus/prometheus.yml and the rule file it names, and scrapes
/// each service on the port that service listens on (every aggregator replica through compose's
/// DNS); Grafana gets the provisioning and dashboards of deploy/grafana/ with a data source that
/// is this Prometheus; the collector gets deploy/otel/collector.yaml and forwards to the Jaeger
/// of the profile. Images are pinned to versions, ports are on the host's loopback, and without
/// the profile nothing changes: the services' OTLP endpoint is empty (no exporter) unless set.
#[test]
fn the_compose_observability_profile_runs_the_checked_configuration() {
    use serde_yaml::Value;
    let root = repo_root();
    let mut compose: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml"),
    )
    .expect("docker-compose.yml is YAML");
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services");
    let in_profile = |s: &Value| {
        s["profiles"]
            .as_sequence()
            .is_some_and(|p| p.iter().any(|x| x == "observability"))
    };
    let mut profile: Vec<&str> = services
        .iter()
        .filter(|(_, s)| in_profile(s))
        .filter_map(|(name, _)| name.as_str())
        .collect();
    profile.sort_unstable();
    assert_eq!(
        profile,
        ["grafana", "jaeger", "otel-collector", "prometheus"],
        "the observability profile's services"
    );
    for (name, service) in services {
        let name = name.as_str().expect("a service name");
        if !in_profile(service) {
            assert!(
                service.get("profiles").is_none(),
                "{name} runs without a profile"
            );
            continue;
        }
        let image = service["image"].as_str().expect("image");
        let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
        let parts: Vec<&str> = tag.trim_start_matches('v').split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{name}: {image} is pinned to a version"
        );
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().expect("a port mapping");
            assert!(port.starts_with("127.0.0.1:"), "{name}: {port} on loopback");
        }
        assert!(
            service.get("volumes").is_none_or(|v| v
                .as_sequence()
                .expect("volumes")
                .iter()
                .all(|m| m.as_str().is_some_and(|m| m.starts_with("./")))),
            "{name}: bind mounts of the repository only, no named volume"
        );
    }
    // Container path → repository file or directory, of a service's bind mounts (read-only).
    let mounts = |name: &str| -> BTreeMap<String, PathBuf> {
        services[name]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|m| {
                let m = m.as_str().expect("a bind mount");
                let parts: Vec<&str> = m.split(':').collect();
                assert!(
                    parts.len() == 3 && parts[2] == "ro",
                    "{name}: {m} is mounted read-only"
                );
                let source = root.join(parts[0]);
                assert!(source.exists(), "{name}: {m}: {} exists", source.display());
                (parts[1].to_string(), source)
            })
            .collect()
    };
    let flag = |name: &str, prefix: &str| -> String {
        services[name]["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .find_map(|a| a.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{name} has {prefix}…"))
            .to_string()
    };

    // Prometheus: the checked config, the rule file it names, each service on its own port.
    let prometheus_mounts = mounts("prometheus");
    let config_path = flag("prometheus", "--config.file=");
    assert_eq!(
        prometheus_mounts.get(&config_path),
        Some(&root.join("./deploy/prometheus/prometheus.yml")),
        "the Prometheus of the profile runs deploy/prometheus/prometheus.yml"
    );
    let config: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/prometheus/prometheus.yml"))
            .expect("prometheus.yml"),
    )
    .expect("prometheus.yml is YAML");
    let config_dir = Path::new(&config_path).parent().expect("a directory");
    for file in config["rule_files"].as_sequence().expect("rule_files") {
        let file = file.as_str().expect("a rule file");
        let in_container = config_dir.join(file).to_string_lossy().into_owned();
        let source = prometheus_mounts
            .get(&in_container)
            .unwrap_or_else(|| panic!("{in_container} (rule_files: {file}) is mounted"));
        assert_eq!(
            std::fs::canonicalize(source).expect("the rule file"),
            std::fs::canonicalize(root.join("deploy/prometheus").join(file)).expect("rule file"),
            "the rule file checked beside prometheus.yml is the one mounted"
        );
    }
    let job = |name: &str| -> &Value {
        config["scrape_configs"]
            .as_sequence()
            .expect("scrape_configs")
            .iter()
            .find(|j| j["job_name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in prometheus.yml"))
    };
    let static_target = |name: &str| -> String {
        job(name)["static_configs"][0]["targets"][0]
            .as_str()
            .unwrap_or_else(|| panic!("job {name}: one static target"))
            .to_string()
    };
    let env = |name: &str| compose_environment(&services[name]);
    use trends_common::config::Load as _;
    let aggregator = hashtag_aggregator::settings::Settings::load_from(&env("hashtag-aggregator"))
        .expect("the aggregator's compose settings");
    let dns = &job("hashtag-aggregator")["dns_sd_configs"][0];
    assert_eq!(dns["type"], "A", "every replica: one A record each");
    assert_eq!(
        dns["names"].as_sequence().map(Vec::as_slice),
        Some(&[Value::from("hashtag-aggregator")][..]),
        "the aggregator service's compose DNS name"
    );
    assert_eq!(
        dns["port"].as_u64(),
        Some(u64::from(aggregator.aggregator.metrics_addr.port())),
        "aggregator.metrics_addr's port"
    );
    let api = trends_api::settings::Settings::load_from(&env("trends-api"))
        .expect("the API's compose settings");
    assert_eq!(api.http.metrics_addr, None, "/metrics on the API port");
    assert_eq!(
        static_target("trends-api"),
        format!("trends-api:{}", api.http.addr.port())
    );
    let producer = tweet_producer::settings::Settings::load_from(&env("tweet-producer"))
        .expect("the producer's compose settings");
    assert_eq!(
        static_target("tweet-producer"),
        format!("tweet-producer:{}", producer.producer.metrics_addr.port())
    );

    // The collector: its checked config; OTLP/HTTP where the services' endpoint points,
    // forwarding to the profile's Jaeger; its own metrics where Prometheus scrapes them.
    let collector_mounts = mounts("otel-collector");
    let collector_path = flag("otel-collector", "--config=");
    assert_eq!(
        collector_mounts.get(&collector_path),
        Some(&root.join("./deploy/otel/collector.yaml")),
        "the collector runs deploy/otel/collector.yaml"
    );
    let collector: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/otel/collector.yaml")).expect("collector"),
    )
    .expect("collector.yaml is YAML");
    let http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
        .as_str()
        .expect("an OTLP/HTTP receiver");
    assert_eq!(port_of(http), 4318, "OTLP/HTTP's standard port");
    let exporters = collector["service"]["pipelines"]["traces"]["exporters"]
        .as_sequence()
        .expect("the traces pipeline's exporters");
    for exporter in exporters {
        let name = exporter.as_str().expect("an exporter");
        let endpoint = collector["exporters"][name]["endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("exporter {name} has an endpoint"));
        assert_eq!(
            endpoint.split(':').next(),
            Some("jaeger"),
            "{name} sends to the profile's Jaeger"
        );
    }
    let telemetry = &collector["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
        ["prometheus"];
    assert_eq!(
        static_target("otel-collector"),
        format!(
            "otel-collector:{}",
            telemetry["port"]
                .as_u64()
                .expect("the collector's metrics port")
        )
    );
    for name in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        let raw = services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} passes OTEL_EXPORTER_OTLP_ENDPOINT"));
        assert_eq!(
            raw, "${OTEL_EXPORTER_OTLP_ENDPOINT:-}",
            "{name}: the shell's endpoint, empty (no exporter) by default"
        );
    }

    // Grafana: deploy/grafana's provisioning and dashboards, its data source this Prometheus.
    let grafana_mounts = mounts("grafana");
    let provisioning = root.join("deploy/grafana/provisioning");
    for kind in ["datasources", "dashboards"] {
        assert_eq!(
            grafana_mounts.get(&format!("/etc/grafana/provisioning/{kind}")),
            Some(&root.join(format!("./deploy/grafana/provisioning/{kind}"))),
            "Grafana's {kind} provisioning"
        );
    }
    let datasources: Value = serde_yaml::from_str(
        &std::fs::read_to_string(provisioning.join("datasources/prometheus.yml"))
            .expect("the data source"),
    )
    .expect("YAML");
    let prometheus_port = port_of(
        services["prometheus"]["ports"][0]
            .as_str()
            .expect("Prometheus's port"),
    );
    assert_eq!(
        datasources["datasources"][0]["url"],
        format!("http://prometheus:{prometheus_port}").as_str(),
        "Grafana's data source is the profile's Prometheus"
    );
    let dashboards: Value = serde_yaml::from_str(
        &std::fs::read_to_string(provisioning.join("dashboards/hashtag-trends.yml"))
            .expect("the dashboard provider"),
    )
    .expect("YAML");
    let path = dashboards["providers"][0]["options"]["path"]
        .as_str()
        .expect("the provider's path");
    assert_eq!(
        grafana_mounts.get(path),
        Some(&root.join("./deploy/grafana/dashboards")),
        "the dashboards are mounted where the provider reads them"
    );
}
