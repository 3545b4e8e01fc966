//! The HTTP contract, driven in-process through `app()` with a snapshot built from known counts
//! (no socket, no Kafka; the end-to-end tests cover those).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;
use trends_api::routes::{AppState, app};
use trends_core::counter::PartitionCounter;
use trends_core::tags::PostTag;
use trends_core::view::TrendsView;
use trends_core::window::BucketLayout;

const NOON: i64 = 1_795_435_200_000;

fn tags(spellings: &[&str]) -> Vec<PostTag> {
    spellings
        .iter()
        .map(|s| PostTag {
            tag: s.to_lowercase(),
            spelling: s.to_string(),
        })
        .collect()
}

fn state(ready: bool) -> AppState {
    let layout = BucketLayout::default();
    let mut view = TrendsView::new(layout);
    let mut p0 = PartitionCounter::new(0, layout);
    let mut p1 = PartitionCounter::new(1, layout);
    // rust: 3 (2 now, 1 ten minutes ago), kafka: 2 now, 日本: 1 two hours ago.
    p0.record(NOON - 2 * 3_600_000, &tags(&["日本"]));
    p0.record(NOON - 600_000, &tags(&["rust"]));
    p0.record(NOON, &tags(&["Rust", "kafka"]));
    p1.record(NOON, &tags(&["rust", "kafka"]));
    for record in p0.take_updates().into_iter().chain(p1.take_updates()) {
        view.apply(record);
    }
    let (_tx, rx) = watch::channel(Arc::new(view.snapshot()));
    std::mem::forget(_tx);
    AppState {
        snapshot: rx,
        ready: Arc::new(AtomicBool::new(ready)),
    }
}

async fn get(uri: &str) -> (StatusCode, Value) {
    get_with(state(true), "GET", uri).await
}

async fn get_with(state: AppState, method: &str, uri: &str) -> (StatusCode, Value) {
    let response = app(state, Duration::from_secs(5))
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn trends_default_to_five_minutes_and_rank_by_count() {
    let (status, body) = get("/api/v1/trends").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"window": "5m", "watermark": "2026-11-23T12:00:00.000Z", "trends": [
            {"rank": 1, "hashtag": "kafka", "display": "kafka", "count": 2},
            {"rank": 2, "hashtag": "rust", "display": "rust", "count": 2},
        ]})
    );
}

#[tokio::test]
async fn each_window_sums_its_buckets() {
    let expect = [("15m", 3, 0), ("1h", 3, 0), ("24h", 3, 1), ("all", 3, 1)];
    for (window, rust, japan) in expect {
        let (_, body) = get(&format!("/api/v1/trends?window={window}&limit=100")).await;
        let count = |tag: &str| {
            body["trends"]
                .as_array()
                .expect("array")
                .iter()
                .find(|t| t["hashtag"] == tag)
                .map_or(0, |t| t["count"].as_i64().unwrap_or(-1))
        };
        assert_eq!((count("rust"), count("日本")), (rust, japan), "{window}");
    }
    let (_, body) = get("/api/v1/trends?window=all&limit=1").await;
    assert_eq!(
        body["trends"],
        json!([{"rank": 1, "hashtag": "rust", "display": "rust", "count": 3}])
    );
}

#[tokio::test]
async fn hashtag_counts_in_every_window_with_any_spelling() {
    let (status, body) = get("/api/v1/hashtags/%23RUST").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hashtag"], "rust");
    assert_eq!(body["display"], "rust", "2 × rust against 1 × Rust");
    assert_eq!(
        body["counts"],
        json!({"1m": 2, "5m": 2, "15m": 3, "1h": 3, "24h": 3, "all": 3})
    );
    let (status, body) = get("/api/v1/hashtags/%E6%97%A5%E6%9C%AC").await;
    assert_eq!(
        (status, &body["counts"]["1h"], &body["counts"]["all"]),
        (StatusCode::OK, &json!(0), &json!(1))
    );
}

#[tokio::test]
async fn bad_parameters_are_400_json_errors() {
    for (uri, code) in [
        ("/api/v1/trends?window=2m", "invalid_window"),
        ("/api/v1/trends?window=", "invalid_window"),
        ("/api/v1/trends?limit=0", "invalid_limit"),
        ("/api/v1/trends?limit=101", "invalid_limit"),
        ("/api/v1/trends?limit=-1", "invalid_limit"),
        ("/api/v1/trends?limit=ten", "invalid_limit"),
        (
            "/api/v1/trends?limit=99999999999999999999999",
            "invalid_limit",
        ),
        ("/api/v1/hashtags/%23", "invalid_hashtag"),
        ("/api/v1/hashtags/%FF", "invalid_hashtag"),
    ] {
        let (status, body) = get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
    let long = "a".repeat(300);
    let (status, _) = get(&format!("/api/v1/hashtags/{long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_tags_and_routes_are_404_and_writes_are_405() {
    let (status, body) = get("/api/v1/hashtags/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_hashtag"))
    );
    let (status, body) = get("/api/v2/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = get_with(state(true), "POST", "/api/v1/trends").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn readiness_follows_the_flag_and_health_is_always_ok() {
    let (status, _) = get_with(state(false), "GET", "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get_with(state(true), "GET", "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get_with(state(false), "GET", "/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    for (uri, content_type) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let response = app(state(true), Duration::from_secs(5))
            .oneshot(
                Request::builder()
                    .uri(uri)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let header = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(header.starts_with(content_type), "{uri}: {header}");
    }
}
