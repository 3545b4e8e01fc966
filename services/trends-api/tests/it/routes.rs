//! The HTTP contract, driven in-process through `app()` with a snapshot built from known posts
//! (no socket, no Kafka; the end-to-end tests cover those). Expected values are computed here
//! from the posts in `helpers::POSTS`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use governor::clock::FakeRelativeClock;
use proptest::prelude::*;
use serde_json::{Value, json};
use trends_api::app::{HttpOptions, app, metrics_app};
use trends_api::prepared::Prepared;
use trends_api::rate_limit::RateLimit;
use trends_api::settings::CorsOrigins;
use trends_api::state::AppState;
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::format_rfc3339_millis;

use crate::helpers::{
    self, NOON, POSTS, Post, body_bytes, from_ip, get, get_with, json_body, request, send, state,
    status_of,
};

/// How many posts of `posts` in `[from, to)` count for `tag` (once per post).
fn count(posts: &[Post], tag: &str, from: i64, to: i64) -> i64 {
    posts
        .iter()
        .filter(|p| (from..to).contains(&p.at) && p.tags.iter().any(|t| t.to_lowercase() == tag))
        .count() as i64
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
            {"rank": 3, "hashtag": "rustlang", "display": "RustLang", "count": 2},
            {"rank": 4, "hashtag": "ruby", "display": "ruby", "count": 1},
        ]})
    );
}

#[tokio::test]
async fn the_body_keeps_its_field_order() {
    let response = send(
        &app(state(true), &HttpOptions::default()),
        request("GET", "/api/v1/trends?limit=1"),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = String::from_utf8(body_bytes(response).await.to_vec()).expect("utf-8");
    assert_eq!(
        text,
        r#"{"window":"5m","watermark":"2026-11-23T12:00:00.000Z","trends":[{"rank":1,"hashtag":"kafka","display":"kafka","count":2}]}"#
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
async fn a_prefix_filters_by_counting_form_and_keeps_full_ranks() {
    for window in ["5m", "all", "1m"] {
        let (_, full) = get(&format!("/api/v1/trends?window={window}&limit=100")).await;
        for (raw, normalized, limit) in [
            ("ru", "ru", 10),
            ("RU", "ru", 10),
            ("%23Rust", "rust", 10),
            ("%EF%BC%83RUST", "rust", 1),
            ("rustl", "rustl", 10),
            ("k", "k", 10),
            ("zzz", "zzz", 10),
            ("%E6%97%A5", "日", 10),
        ] {
            let (status, body) = get(&format!(
                "/api/v1/trends?window={window}&limit={limit}&prefix={raw}"
            ))
            .await;
            assert_eq!(status, StatusCode::OK, "{raw}");
            let expected: Vec<Value> = full["trends"]
                .as_array()
                .expect("array")
                .iter()
                .filter(|t| {
                    t["hashtag"]
                        .as_str()
                        .is_some_and(|h| h.starts_with(normalized))
                })
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(body["trends"], Value::Array(expected), "{window} {raw}");
            assert_eq!(body["window"], window);
            assert_eq!(body["watermark"], full["watermark"]);
        }
    }
    let (_, body) = get("/api/v1/trends?prefix=ru").await;
    let ranks: Vec<(i64, &str)> = body["trends"]
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["rank"].as_i64().unwrap_or(0),
                t["hashtag"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(ranks, [(2, "rust"), (3, "rustlang"), (4, "ruby")]);
    // An empty prefix (or a bare #) filters nothing.
    let (_, all) = get("/api/v1/trends").await;
    assert_eq!(get("/api/v1/trends?prefix=").await.1, all);
    assert_eq!(get("/api/v1/trends?prefix=%23").await.1, all);
}

#[tokio::test]
async fn hashtag_counts_in_every_window_with_any_spelling() {
    let (status, body) = get("/api/v1/hashtags/%23RUST").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hashtag"], "rust");
    assert_eq!(body["display"], "rust", "2 × rust against 1 × Rust");
    assert_eq!(body["watermark"], "2026-11-23T12:00:00.000Z");
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
async fn hashtag_series_has_every_bucket_of_the_last_hour_and_day() {
    for tag in ["rust", "日本", "rustlang", "kafka"] {
        let uri = format!(
            "/api/v1/hashtags/{}",
            tag.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        );
        let (status, body) = get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{tag}");
        for (window, bucket_ms, buckets) in [("1h", 10_000, 360), ("24h", 300_000, 288)] {
            // The newest bucket holds the watermark (noon, aligned to both sizes).
            let expected: Vec<Value> = (0..buckets)
                .map(|i| {
                    let start = NOON - (buckets - 1 - i) * bucket_ms;
                    json!({
                        "start": format_rfc3339_millis(start),
                        "count": count(&POSTS, tag, start, start + bucket_ms),
                    })
                })
                .collect();
            assert_eq!(
                body["series"][window],
                json!({"bucket_secs": bucket_ms / 1000, "points": expected}),
                "{tag} {window}"
            );
        }
    }
}

#[tokio::test]
async fn before_any_data_series_are_empty_and_watermark_null() {
    let (state, _tx) = helpers::state_with(&[], true);
    let (status, body) = get_with(state.clone(), "GET", "/api/v1/trends").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"window": "5m", "watermark": null, "trends": []})
        )
    );
    // An all-time count without any watermark (possible only from a hand-written record).
    let mut view = trends_core::view::TrendsView::new(trends_core::window::BucketLayout::default());
    view.apply(CountsRecord {
        key: CountsKey::Total {
            partition: 0,
            tag: "solo".into(),
        },
        value: Some(1),
        spellings: vec![("Solo".into(), 1)],
        error: 0,
    });
    let (tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(Prepared::new(view.snapshot())));
    let state = AppState::new(rx, std::sync::Arc::new(true.into()));
    let (status, body) = get_with(state, "GET", "/api/v1/hashtags/solo").await;
    drop(tx);
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"hashtag": "solo", "display": "Solo", "watermark": null,
                   "counts": {"1m": 0, "5m": 0, "15m": 0, "1h": 0, "24h": 0, "all": 1},
                   "series": {"1h": {"bucket_secs": 10, "points": []},
                              "24h": {"bucket_secs": 300, "points": []}}})
        )
    );
}

#[tokio::test]
async fn windows_lists_every_window_and_its_buckets() {
    let (status, body) = get("/api/v1/windows").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"fine_bucket_secs": 10, "coarse_bucket_secs": 300, "windows": [
            {"name": "1m", "seconds": 60, "bucket_secs": 10, "buckets": 6},
            {"name": "5m", "seconds": 300, "bucket_secs": 10, "buckets": 30},
            {"name": "15m", "seconds": 900, "bucket_secs": 10, "buckets": 90},
            {"name": "1h", "seconds": 3600, "bucket_secs": 10, "buckets": 360},
            {"name": "24h", "seconds": 86400, "bucket_secs": 300, "buckets": 288},
            {"name": "all", "seconds": null, "bucket_secs": null, "buckets": null},
        ]})
    );
}

#[tokio::test]
async fn bad_parameters_are_400_json_errors() {
    let long = "a".repeat(281);
    for (uri, code) in [
        ("/api/v1/trends?window=2m".to_string(), "invalid_window"),
        ("/api/v1/trends?window=".into(), "invalid_window"),
        ("/api/v1/trends?limit=0".into(), "invalid_limit"),
        ("/api/v1/trends?limit=101".into(), "invalid_limit"),
        ("/api/v1/trends?limit=-1".into(), "invalid_limit"),
        ("/api/v1/trends?limit=ten".into(), "invalid_limit"),
        ("/api/v1/trends?limit=".into(), "invalid_limit"),
        (
            "/api/v1/trends?limit=99999999999999999999999".into(),
            "invalid_limit",
        ),
        (format!("/api/v1/trends?prefix={long}"), "invalid_prefix"),
        (format!("/api/v1/stream?prefix={long}"), "invalid_prefix"),
        ("/api/v1/stream?window=2m".into(), "invalid_window"),
        ("/api/v1/stream?limit=0".into(), "invalid_limit"),
        ("/api/v1/trends?window=1m&window=5m".into(), "invalid_query"),
        ("/api/v1/hashtags/%23".into(), "invalid_hashtag"),
        ("/api/v1/hashtags/%FF".into(), "invalid_hashtag"),
        (format!("/api/v1/hashtags/{long}"), "invalid_hashtag"),
    ] {
        let (status, body) = get(&uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
    // 280 bytes is still a prefix.
    let (status, _) = get(&format!("/api/v1/trends?prefix={}", "a".repeat(280))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_tags_and_routes_are_404_and_writes_are_405() {
    let (status, body) = get("/api/v1/hashtags/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_hashtag"))
    );
    for uri in ["/api/v2/nope", "/api/v1/hashtags/", "/api/v1/hashtags/a/b"] {
        let (status, body) = get(uri).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{uri}"
        );
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for uri in [
            "/api/v1/trends",
            "/api/v1/stream",
            "/api/v1/windows",
            "/api/v1/hashtags/rust",
            "/metrics",
        ] {
            let (status, body) = get_with(state(true), method, uri).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
                "{method} {uri}"
            );
        }
    }
    let (status, _) = get_with(state(true), "HEAD", "/api/v1/trends").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_json_error() {
    let router = app(state(true), &HttpOptions::default());
    let response = send(
        &router,
        Request::builder()
            .uri("/api/v1/trends")
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::from(vec![b'x'; 4096]))
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn readiness_follows_the_flag_and_health_is_always_ok() {
    let (status, body) = get_with(state(false), "GET", "/readyz").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready"))
    );
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
        let response = send(
            &app(state(true), &HttpOptions::default()),
            request("GET", uri),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let header = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(header.starts_with(content_type), "{uri}: {header}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let state = state(true);
    let router = app(state, &HttpOptions::default());
    for uri in [
        "/api/v1/trends",
        "/api/v1/trends?window=all",
        "/api/v1/trends?window=2m",
        "/api/v1/hashtags/rust",
        "/api/v1/hashtags/kafka",
        "/api/v1/hashtags/nothing",
        "/no/such/route",
    ] {
        send(&router, request("GET", uri)).await;
    }
    let response = send(&router, request("GET", "/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/openmetrics-text; version=1.0.0"))
    );
    let text = String::from_utf8(body_bytes(response).await.to_vec()).expect("utf-8");
    for line in [
        "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"200\"} 2",
        "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"400\"} 1",
        "trends_api_http_requests_total{route=\"/api/v1/hashtags/{tag}\",status=\"200\"} 2",
        "trends_api_http_requests_total{route=\"/api/v1/hashtags/{tag}\",status=\"404\"} 1",
        "trends_api_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "trends_api_http_request_duration_seconds_count{route=\"/api/v1/trends\"} 3",
        "trends_api_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/v1/trends\"} 3",
        "trends_api_http_request_duration_seconds_count{route=\"/api/v1/hashtags/{tag}\"} 3",
        "trends_api_stream_clients 0",
        "trends_api_counts_lag_records 0",
        "trends_api_snapshots_published_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Raw paths never become labels.
    assert!(!text.contains("/api/v1/hashtags/rust"), "{text}");
    assert!(!text.contains("/no/such/route"), "{text}");
}

/// The router with a rate limit of `per_sec` after a burst of `burst`, on a clock the test
/// moves.
fn rate_limited(per_sec: u32, burst: u32) -> (Router, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let options = HttpOptions {
        rate_limit: RateLimit::with_clock(per_sec, burst, clock.clone()),
        ..HttpOptions::default()
    };
    (app(state(true), &options), clock)
}

#[tokio::test]
async fn the_rate_limit_is_per_ip_answers_429_json_and_spares_probes() {
    let (router, clock) = rate_limited(1, 2);
    let a = "10.0.0.1";
    let b = "10.0.0.2";
    for _ in 0..2 {
        let response = send(&router, from_ip("/api/v1/trends", a)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = send(&router, from_ip("/api/v1/trends", a)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another address has its own allowance; probes and metrics are never limited.
    assert_eq!(
        status_of(&router, from_ip("/api/v1/windows", b)).await,
        StatusCode::OK
    );
    for uri in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            status_of(&router, from_ip(uri, a)).await,
            StatusCode::OK,
            "{uri}"
        );
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        status_of(&router, from_ip("/api/v1/trends", a)).await,
        StatusCode::OK
    );
    let metrics = body_bytes(send(&router, request("GET", "/metrics")).await).await;
    assert!(
        String::from_utf8_lossy(&metrics).contains(
            "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"429\"} 1\n"
        )
    );
}

#[tokio::test]
async fn the_rate_limit_keys_ipv6_clients_by_their_64() {
    let (router, _clock) = rate_limited(1, 2);
    // Two addresses of one /64 spend one allowance of 2.
    for addr in ["2001:db8:5:6::1", "2001:db8:5:6:ffff::2"] {
        assert_eq!(
            status_of(&router, from_ip("/api/v1/trends", addr)).await,
            StatusCode::OK,
            "{addr}"
        );
    }
    let response = send(&router, from_ip("/api/v1/trends", "2001:db8:5:6::3")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // The next /64 is another client.
    assert_eq!(
        status_of(&router, from_ip("/api/v1/trends", "2001:db8:5:7::1")).await,
        StatusCode::OK
    );
    // IPv4-mapped and plain IPv4 share one allowance.
    for addr in ["::ffff:198.51.100.9", "198.51.100.9"] {
        assert_eq!(
            status_of(&router, from_ip("/api/v1/trends", addr)).await,
            StatusCode::OK,
            "{addr}"
        );
    }
    assert_eq!(
        status_of(&router, from_ip("/api/v1/trends", "198.51.100.9")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// The headers every response must carry, whatever made it.
fn assert_security_headers(response: &axum::response::Response, what: &str) {
    let headers = response.headers();
    let get = |name: header::HeaderName| {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_string()
    };
    let csp = get(header::CONTENT_SECURITY_POLICY);
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "object-src 'none'",
    ] {
        assert!(
            directives.contains(&directive),
            "{what}: {directive} in {csp}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(get(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    assert_eq!(get(header::REFERRER_POLICY), "no-referrer", "{what}");
    assert_eq!(get(header::X_FRAME_OPTIONS), "DENY", "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (limited, _clock) = rate_limited(1, 1);
    for status in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let response = send(&limited, request("GET", "/api/v1/trends")).await;
        assert_eq!(response.status(), status);
        assert_security_headers(&response, "rate limit");
    }
    let plain = app(state(true), &HttpOptions::default());
    for (method, uri, status) in [
        ("GET", "/", StatusCode::OK),
        ("GET", "/app.js", StatusCode::OK),
        ("GET", "/style.css", StatusCode::OK),
        ("GET", "/api/v1/trends", StatusCode::OK),
        ("GET", "/api/v1/hashtags/rust", StatusCode::OK),
        ("GET", "/api/v1/windows", StatusCode::OK),
        ("GET", "/metrics", StatusCode::OK),
        ("GET", "/healthz", StatusCode::OK),
        ("GET", "/openapi.json", StatusCode::OK),
        ("GET", "/no/such/route", StatusCode::NOT_FOUND),
        ("GET", "/api/v1/trends?window=2m", StatusCode::BAD_REQUEST),
        ("GET", "/api/v1/hashtags/nothing", StatusCode::NOT_FOUND),
        ("DELETE", "/api/v1/trends", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/api/v1/stream", StatusCode::OK),
    ] {
        let response = send(&plain, request(method, uri)).await;
        assert_eq!(response.status(), status, "{method} {uri}");
        assert_security_headers(&response, uri);
    }
    // An error made by a layer (the body limit), rewritten by json_errors.
    let big = Request::builder()
        .method("GET")
        .uri("/api/v1/trends")
        .header(header::CONTENT_LENGTH, "4096")
        .body(Body::from(vec![b'x'; 4096]))
        .expect("request");
    let response = send(&plain, big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&response, "413");
    // Not ready: 503.
    let response = send(
        &app(state(false), &HttpOptions::default()),
        request("GET", "/readyz"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_security_headers(&response, "/readyz 503");
}

#[tokio::test]
async fn with_a_metrics_listener_the_api_router_answers_404_for_metrics() {
    let options = HttpOptions {
        separate_metrics_listener: true,
        ..HttpOptions::default()
    };
    let state = state(true);
    let api = app(state.clone(), &options);
    let response = send(&api, request("GET", "/metrics")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&response, "/metrics 404");
    let body = json_body(response).await;
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        status_of(&api, request("GET", "/api/v1/trends")).await,
        StatusCode::OK
    );

    let metrics = metrics_app(state, &options);
    let response = send(&metrics, request("GET", "/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response, "metrics listener");
    let text = String::from_utf8(body_bytes(response).await.to_vec()).expect("utf-8");
    // The API request above was counted, in the same metrics.
    assert!(
        text.contains(
            "trends_api_http_requests_total{route=\"/api/v1/trends\",status=\"200\"} 1\n"
        ),
        "{text}"
    );
    for uri in ["/api/v1/trends", "/"] {
        let response = send(&metrics, request("GET", uri)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_security_headers(&response, uri);
    }
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_configured_origins_for_get_only() {
    let with_origin = |method: &str, origin: &str, preflight: bool| {
        let mut builder = Request::builder()
            .method(method)
            .uri("/api/v1/trends")
            .header(header::ORIGIN, origin);
        if preflight {
            builder = builder.header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET");
        }
        builder.body(Body::empty()).expect("request")
    };
    let allow_origin = |response: &axum::response::Response| {
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap_or("?").to_string())
    };

    let off = app(state(true), &HttpOptions::default());
    let response = send(&off, with_origin("GET", "https://a.example", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(allow_origin(&response), None);
    let response = send(&off, with_origin("OPTIONS", "https://a.example", true)).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let list = app(
        state(true),
        &HttpOptions {
            cors: CorsOrigins::List(vec!["https://a.example".into()]),
            ..HttpOptions::default()
        },
    );
    let response = send(&list, with_origin("GET", "https://a.example", false)).await;
    assert_eq!(
        allow_origin(&response).as_deref(),
        Some("https://a.example")
    );
    let response = send(&list, with_origin("GET", "https://b.example", false)).await;
    assert_eq!(allow_origin(&response), None);
    let response = send(&list, with_origin("OPTIONS", "https://a.example", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let methods = response.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(methods, "GET,HEAD");
    // Errors carry the header too, so a page can read them.
    let mut bad = with_origin("GET", "https://a.example", false);
    *bad.uri_mut() = "/api/v1/trends?window=2m".parse().expect("uri");
    let response = send(&list, bad).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        allow_origin(&response).as_deref(),
        Some("https://a.example")
    );

    let any = app(
        state(true),
        &HttpOptions {
            cors: CorsOrigins::Any,
            ..HttpOptions::default()
        },
    );
    let response = send(&any, with_origin("GET", "https://b.example", false)).await;
    assert_eq!(allow_origin(&response).as_deref(), Some("*"));
}

/// Characters a client may put in a path segment or query value, some of them
/// percent-escaped bytes (invalid UTF-8 included).
fn uri_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-zA-Z0-9._~!$'()*+,;:@&=/?-]",
            (0u8..=255).prop_map(|b| format!("%{b:02X}")),
            Just("%".to_string()),
            Just("#".to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever the path and query, the answer is never a 5xx, and every error is the JSON
    /// shape.
    #[test]
    fn no_input_gives_a_server_error(
        route in prop::sample::select(vec![
            "/api/v1/trends?", "/api/v1/stream?limit=1&window=all&x=", "/api/v1/hashtags/",
            "/api/v1/trends?prefix=", "/api/v1/trends?window=", "/api/v1/trends?limit=",
            "/api/v1/windows?", "/", "/api/v1/",
        ]),
        text in uri_text(),
    ) {
        let uri = format!("{route}{text}");
        let Ok(parsed) = uri.parse::<axum::http::Uri>() else {
            return Ok(()); // not a URI a server could receive
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (status, content_type, body) = runtime.block_on(async {
            let router = app(state(true), &HttpOptions::default());
            let request = Request::builder().uri(parsed).body(Body::empty()).expect("request");
            let response = send(&router, request).await;
            let status = response.status();
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            // Streams are checked for their status only.
            let body = if uri.starts_with("/api/v1/stream") && status.is_success() {
                Value::Null
            } else {
                serde_json::from_slice(&body_bytes(response).await).unwrap_or(Value::Null)
            };
            (status, content_type, body)
        });
        prop_assert!(!status.is_server_error(), "{uri}: {status}");
        if status.is_client_error() {
            prop_assert_eq!(content_type.as_ref().map(|v| v.as_bytes()), Some(&b"application/json"[..]), "{}", uri);
            prop_assert!(body["error"]["code"].is_string(), "{}: {}", uri, body);
        }
    }
}
