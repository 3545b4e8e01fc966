//! The dashboard and the alert rules cannot rot: every metric name their PromQL uses
//! (`deploy/grafana/dashboards/*.json`, `deploy/prometheus/alerts.yml`) is exposed by the
//! running services. The producer (synthetic source, a small limit), the aggregator and the API
//! run on the shared test broker; their `/metrics` are scraped until every name is there (polled,
//! with a deadline), and a name missing at the deadline fails the test with the list of what was
//! missing and where it was used.
//!
//! Names come out of the PromQL by a small tokenizer ([`metric_names`]): identifiers outside
//! strings, label matchers (`{…}`) and ranges (`[…]`) that are not functions (followed by `(`),
//! keywords or aggregation operators, and not the label lists of `by`/`without`/`on`/`ignoring`/
//! `group_left`/`group_right`. A histogram's `_bucket`, `_sum` and `_count` and a counter's
//! `_total` are sample names of the exposition, so they are compared as they are written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{ServiceProcess, Topics, free_port, get_text, metric_value, wait_for};
use test_support::{KafkaBroker, unique_name};

const WAIT: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 2;
/// Series Prometheus makes itself for every target (not exposed by a service).
const SCRAPE_SERIES: [&str; 1] = ["up"];

/// PromQL keywords, aggregation operators and literals: never metric names.
const KEYWORDS: [&str; 26] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// Keywords followed by a parenthesized list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The metric names `expr` selects.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // Index after the bracket closing the one at `open` (strings inside skipped).
    let skip_group = |open: usize, close: char| {
        let mut j = open + 1;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            let c = chars[j];
            match quote {
                Some(_) if c == '\\' => j += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
                None if c == close => return j + 1,
                None => {}
            }
            j += 1;
        }
        chars.len()
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            // A string literal (in a function argument such as label_replace).
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c == '{' {
            i = skip_group(i, '}');
        } else if c == '[' {
            i = skip_group(i, ']');
        } else if c.is_ascii_digit() || c == '.' || c == '$' {
            // A number, a duration (5m) or a Grafana variable: one token.
            i += 1;
            while i < chars.len() && (is_part(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_start(c) {
            let start = i;
            while i < chars.len() && is_part(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let lower = word.to_ascii_lowercase();
            if LABEL_LISTS.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(next, ')');
                }
            } else if KEYWORDS.contains(&lower.as_str()) || chars.get(next) == Some(&'(') {
                // An aggregation operator or a function call.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every `expr` string anywhere in a Grafana dashboard.
fn dashboard_exprs(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                out.push(expr.clone());
            }
            map.values().for_each(|v| dashboard_exprs(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Metric name → where it is used (file and alert or query), from the dashboards and the rules.
fn names_in_use() -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let dashboards = repo().join("deploy/grafana/dashboards");
    let entries = std::fs::read_dir(&dashboards)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dashboards.display()));
    let mut files = 0;
    for entry in entries {
        let path = entry.expect("a dashboard directory entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("read a dashboard");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let mut exprs = Vec::new();
        dashboard_exprs(&json, &mut exprs);
        assert!(!exprs.is_empty(), "no queries in {}", path.display());
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
        for expr in exprs {
            for name in metric_names(&expr) {
                used.entry(name)
                    .or_default()
                    .insert(file.clone().unwrap_or_default());
            }
        }
    }
    assert!(files > 0, "no dashboards in {}", dashboards.display());
    let rules_path = repo().join("deploy/prometheus/alerts.yml");
    let rules: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(&rules_path).expect("read deploy/prometheus/alerts.yml"),
    )
    .expect("alerts.yml is YAML");
    let groups = rules["groups"]
        .as_sequence()
        .expect("alerts.yml has groups");
    let mut alerts = 0;
    for rule in groups
        .iter()
        .filter_map(|g| g["rules"].as_sequence())
        .flatten()
    {
        let name = rule["alert"]
            .as_str()
            .or_else(|| rule["record"].as_str())
            .expect("a rule has an alert or record name");
        let expr = rule["expr"].as_str().expect("a rule has an expr");
        alerts += 1;
        for metric in metric_names(expr) {
            used.entry(metric)
                .or_default()
                .insert(format!("alerts.yml {name}"));
        }
    }
    assert!(alerts >= 5, "only {alerts} rules in alerts.yml");
    used
}

/// The sample names of an exposition (`name{…} value` or `name value` lines).
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |expr: &str| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (le, phase) (rate(a_seconds_bucket{phase=~\"x|y\"}[$__rate_interval])))"
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum by (code) (rate(dl_total[5m])) / on() group_left() sum(rate(p_total[5m] offset 1h)) > 0.01"
        ),
        ["dl_total", "p_total"]
    );
    assert_eq!(
        names("min(age) > 300 and on() sum(rate(x[5m])) > 0 or up{job=\"api\"} == 0"),
        ["age", "up", "x"]
    );
    assert_eq!(
        names("max without (instance) (g) unless ignoring (partition) h"),
        ["g", "h"]
    );
    assert_eq!(
        names("label_replace(m, \"dst\", \"$1\", \"src\", \"(.*)\")"),
        ["m"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exposed() {
    let used = names_in_use();
    assert!(
        used.len() >= 20,
        "the parser found only {} names: {used:?}",
        used.len()
    );

    let topics = Topics::unique("obs-");
    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let producer_metrics = format!("http://127.0.0.1:{}/metrics", free_port());
    let mut producer = ServiceProcess::start(
        "tweet-producer",
        &topics.env(
            bootstrap,
            PARTITIONS,
            &[
                ("TRENDS__SOURCE__KIND", "synthetic".into()),
                ("TRENDS__SOURCE__SYNTHETIC__RATE", "200".into()),
                ("TRENDS__SOURCE__SYNTHETIC__LIMIT", "4000".into()),
                ("TRENDS__PRODUCER__COMMIT_INTERVAL_MS", "200".into()),
                (
                    "TRENDS__PRODUCER__METRICS_ADDR",
                    producer_metrics
                        .trim_start_matches("http://")
                        .trim_end_matches("/metrics")
                        .to_owned(),
                ),
            ],
        ),
    )
    .expect("start tweet-producer");
    let mut aggregator =
        topics.start_aggregator(bootstrap, PARTITIONS, &unique_name("obs-aggregator"), &[]);
    let mut api = topics.start_api(bootstrap, PARTITIONS);
    let api_metrics = format!("{}/metrics", api.url);
    let client = reqwest::Client::new();

    // The last exposition each service served (the producer exits at its limit; what it
    // served before stays valid).
    let last: std::sync::Mutex<BTreeMap<&str, String>> = std::sync::Mutex::default();
    let targets = [
        ("tweet-producer", producer_metrics.as_str()),
        ("hashtag-aggregator", aggregator.url.as_str()),
        ("trends-api", api_metrics.as_str()),
    ];
    let result = wait_for(
        "every metric of the dashboard and the alert rules on /metrics",
        WAIT,
        || {
            let (client, used, last) = (client.clone(), &used, &last);
            async move {
                for (service, url) in targets {
                    if let Ok(text) = get_text(&client, url).await {
                        last.lock()
                            .expect("the expositions lock")
                            .insert(service, text);
                    }
                }
                let seen = last.lock().expect("the expositions lock").clone();
                let all: BTreeSet<String> = seen.values().flat_map(|t| exposed(t)).collect();
                let counted = seen
                    .get("hashtag-aggregator")
                    .and_then(|t| metric_value(t, "trends_aggregator_records_processed_total"))
                    .unwrap_or(0.0);
                let missing: Vec<String> = used
                    .iter()
                    .filter(|(name, _)| {
                        !all.contains(name.as_str()) && !SCRAPE_SERIES.contains(&name.as_str())
                    })
                    .map(|(name, places)| format!("{name} (used in {places:?})"))
                    .collect();
                if missing.is_empty() && counted > 0.0 {
                    Ok(seen)
                } else {
                    Err(format!(
                        "{counted} posts counted; scraped {:?}; missing: {missing:#?}",
                        seen.keys().collect::<Vec<_>>()
                    ))
                }
            }
        },
    )
    .await;
    let logs = format!(
        "producer log:\n{}\naggregator log:\n{}\napi log:\n{}",
        e2e::tail(&producer.log(), 20),
        e2e::tail(&aggregator.process.log(), 20),
        e2e::tail(&api.process.log(), 20)
    );
    let seen = result.unwrap_or_else(|e| panic!("{e:#}\n{logs}"));

    // The freshness metrics carry real values: posts were counted a short while after they
    // reached Kafka, and the API serves counts of moments ago.
    let aggregator_text = &seen["hashtag-aggregator"];
    let ages = metric_value(
        aggregator_text,
        "trends_aggregator_record_age_seconds_count",
    );
    assert!(
        ages.is_some_and(|n| n > 0.0),
        "record ages observed: {ages:?}\n{aggregator_text}"
    );
    let api_text = &seen["trends-api"];
    let age = metric_value(api_text, "trends_api_counts_age_seconds");
    assert!(
        age.is_some_and(|a| (0.0..WAIT.as_secs_f64()).contains(&a)),
        "the API's counts age is that of this run: {age:?}\n{api_text}"
    );

    for process in [&mut producer, &mut aggregator.process, &mut api.process] {
        // The producer may have stopped at its limit already.
        if process.is_running() {
            process
                .terminate(Duration::from_secs(20))
                .expect("stop a service");
        }
    }
    // Every INFO line reaches the log with tracing off too.
    crate::traces::assert_startup_logged(&aggregator.process.log());
}
