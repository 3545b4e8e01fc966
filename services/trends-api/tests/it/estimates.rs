//! Estimates against a real broker: counts records carrying errors (Space-Saving over-counts)
//! and watermarks carrying all-time floors are written to the counts topic; every window's
//! `count`, `count_lower`, `count_upper` and `approximate` must be exactly what the rules of
//! the contract give, computed here from the records written; exact counts carry none of them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::catch_up::{Api, record};
use crate::helpers::NOON;

/// One bucket (`Some(start)`, fine) or all-time (`None`) record as written.
struct Count {
    partition: i32,
    start: Option<i64>,
    tag: &'static str,
    count: i64,
    error: i64,
}

const fn count(partition: i32, start: Option<i64>, tag: &'static str, n: i64, e: i64) -> Count {
    Count {
        partition,
        start,
        tag,
        count: n,
        error: e,
    }
}

/// Partition 0 has evicted tags from its `all` (floor 4); partition 1 has not.
const FLOORS: [(i32, i64, i64); 2] = [(0, NOON, 4), (1, NOON - 1_000, 0)];
const COUNTS: [Count; 8] = [
    count(0, Some(NOON), "rust", 10, 2),
    count(0, None, "rust", 50, 5),
    count(0, None, "kafka", 20, 0),
    count(0, Some(NOON), "kafka", 3, 0),
    count(1, Some(NOON - 10_000), "rust", 4, 1),
    count(1, None, "rust", 30, 0),
    count(1, None, "zig", 9, 0),
    // Evicted from `all` on every partition, still in a bucket.
    count(1, Some(NOON), "gone", 2, 0),
];

fn written() -> Vec<(i32, String, String)> {
    let mut out: Vec<(i32, String, String)> = FLOORS
        .iter()
        .map(|&(p, watermark, floor)| {
            let floor = match floor {
                0 => String::new(),
                f => format!(r#","all_floor":{f}"#),
            };
            record(
                p,
                &format!("{p}|w"),
                &format!(r#"{{"watermark":{watermark}{floor}}}"#),
            )
        })
        .collect();
    for c in &COUNTS {
        let key = match c.start {
            Some(start) => format!("{}|f|{start}|{}", c.partition, c.tag),
            None => format!("{}|a|{}", c.partition, c.tag),
        };
        let error = match c.error {
            0 => String::new(),
            e => format!(r#","error":{e}"#),
        };
        out.push(record(
            c.partition,
            &key,
            &format!(r#"{{"count":{}{error}}}"#, c.count),
        ));
    }
    out
}

/// The ground truth: `(count, lower, upper)` of `tag` in `5m` (`Some` window start) or `all`.
fn truth(tag: &str, five_minutes: bool) -> (i64, i64, i64) {
    let watermark = FLOORS.iter().map(|f| f.1).max().unwrap_or(0);
    let newest = watermark - watermark.rem_euclid(10_000);
    let oldest = newest - 290_000;
    let mine = COUNTS.iter().filter(|c| c.tag == tag);
    if five_minutes {
        let inside: Vec<&Count> = mine
            .filter(|c| c.start.is_some_and(|s| (oldest..=newest).contains(&s)))
            .collect();
        let sum: i64 = inside.iter().map(|c| c.count).sum();
        let lower: i64 = inside.iter().map(|c| c.count - c.error).sum();
        return (sum, lower, sum);
    }
    let keys: Vec<&Count> = mine.filter(|c| c.start.is_none()).collect();
    let sum: i64 = keys.iter().map(|c| c.count).sum();
    let lower: i64 = keys.iter().map(|c| c.count - c.error).sum();
    let missing: i64 = FLOORS
        .iter()
        .filter(|f| !keys.iter().any(|c| c.partition == f.0))
        .map(|f| f.2)
        .sum();
    (sum, lower, sum + missing)
}

/// A `/trends` entry's or an estimate's fields as served, as `(count, lower, upper)`;
/// `lower` and `upper` are `count` when the fields are absent (exact).
fn served(entry: &Value, count: &Value) -> (i64, i64, i64) {
    let n = count.as_i64().unwrap_or(-1);
    match entry.get("approximate") {
        None => {
            assert!(
                entry.get("count_lower").is_none() && entry.get("count_upper").is_none(),
                "bounds without approximate: {entry}"
            );
            (n, n, n)
        }
        Some(flag) => {
            assert_eq!(flag, &json!(true), "{entry}");
            let (lower, upper) = (&entry["count_lower"], &entry["count_upper"]);
            let bounds = (lower.as_i64().unwrap_or(-1), upper.as_i64().unwrap_or(-1));
            assert_ne!(bounds.0, bounds.1, "approximate but exact: {entry}");
            (n, bounds.0, bounds.1)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_floors_give_every_window_its_exact_bounds() -> anyhow::Result<()> {
    let api = Api::start(&written(), false, &[]).await?;
    api.wait_for_status("/readyz", StatusCode::OK).await?;

    for (window, five) in [("5m", true), ("all", false)] {
        let (status, _, body) = api
            .get(&format!("/api/v1/trends?window={window}&limit=100"))
            .await?;
        assert_eq!(status, StatusCode::OK);
        let mut expected: Vec<(String, (i64, i64, i64))> = ["rust", "kafka", "zig", "gone"]
            .iter()
            .map(|t| (t.to_string(), truth(t, five)))
            .filter(|(_, (n, _, _))| *n > 0)
            .collect();
        expected.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        let got: Vec<(String, (i64, i64, i64))> = body["trends"]
            .as_array()
            .expect("trends")
            .iter()
            .map(|e| {
                (
                    e["hashtag"].as_str().unwrap_or_default().to_string(),
                    served(e, &e["count"]),
                )
            })
            .collect();
        assert_eq!(got, expected, "{window}: {body}");
    }
    // What the ground truth says, spelled out: rust in 5m is 14 within 11..=14; zig in all is
    // 9 within 9..=13 (partition 0 may have evicted up to 4 of its posts); kafka is exact.
    assert_eq!(truth("rust", true), (14, 11, 14));
    assert_eq!(truth("zig", false), (9, 9, 13));
    assert_eq!(truth("kafka", false), (20, 20, 20));

    // Lookups: the same bounds per window, in `estimates`, only for the estimates.
    for tag in ["rust", "kafka", "zig", "gone"] {
        let (status, _, body) = api.get(&format!("/api/v1/hashtags/{tag}")).await?;
        assert_eq!(status, StatusCode::OK, "{tag}");
        for (window, five) in [("5m", true), ("all", false)] {
            let count = &body["counts"][window];
            let got = match body.get("estimates").and_then(|e| e.get(window)) {
                Some(estimate) => served(estimate, count),
                None => served(&json!({}), count),
            };
            assert_eq!(got, truth(tag, five), "{tag} {window}: {body}");
        }
    }
    // The bodies with estimates validate against the OpenAPI document (closed schemas).
    let doc: Value = serde_json::from_slice(&trends_api::openapi::document())?;
    for (path, uri) in [
        ("/api/v1/trends", "/api/v1/trends?window=all"),
        ("/api/v1/trends", "/api/v1/trends?window=5m"),
        ("/api/v1/hashtags/{tag}", "/api/v1/hashtags/zig"),
        ("/api/v1/hashtags/{tag}", "/api/v1/hashtags/gone"),
    ] {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]],
            "components": doc["components"],
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)?;
        let (_, _, body) = api.get(uri).await?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors, Vec::<String>::new(), "{uri}: {body}");
        let mut extra = body.clone();
        extra["approximate"] = json!(true);
        assert!(
            !validator.is_valid(&extra),
            "{uri}: a field out of place passes"
        );
    }
    // Exact everywhere: no `estimates` at all.
    let (_, _, kafka) = api.get("/api/v1/hashtags/kafka").await?;
    assert!(kafka.get("estimates").is_none(), "{kafka}");
    // Evicted from `all` everywhere and in no window: unknown, like any tag never seen.
    let (status, _, body) = api.get("/api/v1/hashtags/nothing").await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("unknown_hashtag"))
    );
    api.stop().await
}
