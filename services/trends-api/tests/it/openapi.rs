//! The OpenAPI document against the real API: real responses, fetched through `app()`, must
//! validate against the schema the document declares for that path and status (JSON Schema
//! 2020-12 via the `jsonschema` crate, `$ref`s resolved within the document, formats checked).
//! The schemas are closed, so a renamed, missing or extra field fails; the last test proves
//! that on doctored copies of real responses.

use axum::http::StatusCode;
use serde_json::{Value, json};
use trends_api::app::{HttpOptions, app};
use trends_api::sse::StreamOptions;

use crate::helpers::{body_bytes, from_ip, json_body, request, send, state};

fn document() -> Value {
    serde_json::from_slice(&trends_api::openapi::document()).expect("the document is JSON")
}

/// The schema the document declares for `path`'s GET answering `status` with `content_type`,
/// as a standalone JSON Schema whose `$ref`s resolve into the document's components.
fn declared_schema(doc: &Value, path: &str, status: u16, content_type: &str) -> Value {
    let schema = &doc["paths"][path]["get"]["responses"][status.to_string()]["content"]
        [content_type]["schema"];
    assert!(
        schema.is_object(),
        "no {content_type} schema for GET {path} {status}"
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    })
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the declared schema compiles")
}

/// The validator of the JSON body the document declares for `path`'s GET answering `status`.
fn json_validator(doc: &Value, path: &str, status: u16) -> jsonschema::Validator {
    validator(&declared_schema(doc, path, status, "application/json"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// GETs `uri` through `app()`: status and JSON body.
async fn fetch(uri: &str) -> (u16, Value) {
    let router = app(state(uri != "/readyz?not-ready"), &HttpOptions::default());
    let uri = uri.trim_end_matches("?not-ready");
    let response = send(&router, request("GET", uri)).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&body_bytes(response).await).expect("JSON body");
    (status, body)
}

#[tokio::test]
async fn real_responses_validate_against_the_declared_schemas() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    for (path, uri, status) in [
        ("/api/v1/trends", "/api/v1/trends", 200),
        ("/api/v1/trends", "/api/v1/trends?window=all&limit=100", 200),
        ("/api/v1/trends", "/api/v1/trends?window=1h&prefix=ru", 200),
        ("/api/v1/trends", "/api/v1/trends?window=2m", 400),
        ("/api/v1/trends", "/api/v1/trends?limit=0", 400),
        ("/api/v1/hashtags/{tag}", "/api/v1/hashtags/%23Rust", 200),
        ("/api/v1/hashtags/{tag}", "/api/v1/hashtags/nothing", 404),
        ("/api/v1/hashtags/{tag}", "/api/v1/hashtags/%23", 400),
        ("/api/v1/windows", "/api/v1/windows", 200),
        ("/api/v1/stream", "/api/v1/stream?window=2m", 400),
        ("/healthz", "/healthz", 200),
        ("/readyz", "/readyz", 200),
        ("/readyz", "/readyz?not-ready", 503),
    ] {
        let (got, body) = fetch(uri).await;
        assert_eq!(got, status, "{uri}");
        let validator = json_validator(&doc, path, status);
        assert_eq!(
            errors(&validator, &body),
            Vec::<String>::new(),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn stream_events_carry_the_declared_schema() {
    use http_body_util::BodyExt;
    let doc = document();
    let validator = validator(&declared_schema(
        &doc,
        "/api/v1/stream",
        200,
        "text/event-stream",
    ));
    let router = app(state(true), &HttpOptions::default());
    let response = send(&router, request("GET", "/api/v1/stream?window=15m")).await;
    let mut body = response.into_body();
    let frame = body
        .frame()
        .await
        .expect("a first event")
        .expect("infallible");
    let text = String::from_utf8(frame.into_data().expect("data").to_vec()).expect("utf-8");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let event: Value = serde_json::from_str(data).expect("JSON");
    assert_eq!(errors(&validator, &event), Vec::<String>::new(), "{event}");
}

#[tokio::test]
async fn stream_refusals_validate_against_the_declared_schemas() {
    let doc = document();
    let state = state(true).with_streams(StreamOptions {
        max_per_ip: 1,
        max_clients: 2,
        ..StreamOptions::default()
    });
    let router = app(state, &HttpOptions::default());
    let from = |ip: &str| from_ip("/api/v1/stream", ip);
    let first = send(&router, from("10.0.0.1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    // The same address again: 429; a second address fills the server: then 503 for a third.
    let per_ip = send(&router, from("10.0.0.1")).await;
    let second = send(&router, from("10.0.0.2")).await;
    assert_eq!(second.status(), StatusCode::OK);
    let full = send(&router, from("10.0.0.3")).await;
    for (response, status, code) in [
        (per_ip, 429, "too_many_streams_from_ip"),
        (full, 503, "too_many_streams"),
    ] {
        assert_eq!(response.status().as_u16(), status);
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], code);
        let validator = json_validator(&doc, "/api/v1/stream", status);
        assert_eq!(errors(&validator, &body), Vec::<String>::new(), "{body}");
    }
    drop((first, second));
}

#[tokio::test]
async fn every_documented_path_is_served_and_the_document_itself_too() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 8, "{:?}", paths.keys());
    let router = app(state(true), &HttpOptions::default());
    // The admin API needs Kafka and a token: tests/it/moderation.rs serves every one of its
    // paths. Here: documented, and behind the bearer scheme.
    let (admin, public): (Vec<&String>, Vec<&String>) =
        paths.keys().partition(|p| p.starts_with("/api/v1/admin/"));
    assert_eq!(admin.len(), 2, "{admin:?}");
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    for path in public {
        let uri = path.replace("{tag}", "rust");
        let response = send(&router, request("GET", &uri)).await;
        assert!(
            response.status().is_success(),
            "{uri}: {}",
            response.status()
        );
    }
    let response = send(&router, request("GET", "/openapi.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = serde_json::from_slice(&body_bytes(response).await).expect("json");
    assert_eq!(served, doc);
}

#[tokio::test]
async fn a_renamed_missing_or_extra_field_fails_validation() {
    let doc = document();
    let trends = json_validator(&doc, "/api/v1/trends", 200);
    let (_, body) = fetch("/api/v1/trends").await;
    assert!(trends.is_valid(&body));

    let mut renamed = body.clone();
    let entry = renamed["trends"][0].as_object_mut().expect("an entry");
    let count = entry.remove("count").expect("count");
    entry.insert("cnt".into(), count);
    assert!(!trends.is_valid(&renamed), "count renamed to cnt");

    let mut missing = body.clone();
    missing.as_object_mut().expect("object").remove("watermark");
    assert!(!trends.is_valid(&missing), "watermark missing");

    let mut extra = body.clone();
    extra["extra"] = json!(1);
    assert!(!trends.is_valid(&extra), "unknown top-level field");

    let mut bad_window = body.clone();
    bad_window["window"] = json!("2m");
    assert!(!trends.is_valid(&bad_window), "window outside the enum");

    let hashtag = json_validator(&doc, "/api/v1/hashtags/{tag}", 200);
    let (_, body) = fetch("/api/v1/hashtags/rust").await;
    assert!(hashtag.is_valid(&body));
    let mut renamed = body.clone();
    let counts = renamed["counts"].as_object_mut().expect("counts");
    let h1 = counts.remove("1h").expect("1h");
    counts.insert("60m".into(), h1);
    assert!(!hashtag.is_valid(&renamed), "counts.1h renamed");
    let mut bad_point = body.clone();
    bad_point["series"]["1h"]["points"][0]["start"] = json!("yesterday");
    assert!(!hashtag.is_valid(&bad_point), "start is not a date-time");

    let windows = json_validator(&doc, "/api/v1/windows", 200);
    let (_, body) = fetch("/api/v1/windows").await;
    assert!(windows.is_valid(&body));
    let mut renamed = body.clone();
    let first = renamed["windows"][0].as_object_mut().expect("a window");
    let buckets = first.remove("buckets").expect("buckets");
    first.insert("bucket_count".into(), buckets);
    assert!(!windows.is_valid(&renamed), "windows[0].buckets renamed");

    let error = json_validator(&doc, "/api/v1/trends", 400);
    let (_, body) = fetch("/api/v1/trends?window=2m").await;
    assert!(error.is_valid(&body));
    let mut renamed = body.clone();
    let detail = renamed["error"].as_object_mut().expect("error");
    let code = detail.remove("code").expect("code");
    detail.insert("kind".into(), code);
    assert!(!error.is_valid(&renamed), "error.code renamed");
}
