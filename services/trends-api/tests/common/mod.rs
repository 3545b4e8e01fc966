//! Test support: a snapshot built from known posts (the ground truth the tests compute their
//! expectations from) and requests through `app()` without a socket.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;
use trends_api::prepared::Prepared;
use trends_api::routes::{AppState, HttpOptions, app};
use trends_core::EpochMillis;
use trends_core::counter::PartitionCounter;
use trends_core::tags::PostTag;
use trends_core::view::TrendsView;
use trends_core::window::BucketLayout;

/// 2026-11-23T12:00:00Z.
pub const NOON: EpochMillis = 1_795_435_200_000;

/// A post: input partition, event time, tags as written.
#[derive(Debug, Clone, Copy)]
pub struct Post {
    pub partition: i32,
    pub at: EpochMillis,
    pub tags: &'static [&'static str],
}

/// The fixture. With the watermark at noon: `5m` holds kafka 2, rust 2, rustlang 2, ruby 1;
/// rust also has one post ten minutes ago; 日本 is two hours old (24h and all only).
pub const POSTS: [Post; 6] = [
    Post {
        partition: 0,
        at: NOON - 2 * 3_600_000,
        tags: &["日本"],
    },
    Post {
        partition: 0,
        at: NOON - 600_000,
        tags: &["rust"],
    },
    Post {
        partition: 0,
        at: NOON - 40_000,
        tags: &["RustLang"],
    },
    Post {
        partition: 1,
        at: NOON - 30_000,
        tags: &["RustLang", "ruby"],
    },
    Post {
        partition: 0,
        at: NOON,
        tags: &["Rust", "kafka"],
    },
    Post {
        partition: 1,
        at: NOON,
        tags: &["rust", "kafka"],
    },
];

pub fn post_tags(spellings: &[&str]) -> Vec<PostTag> {
    spellings
        .iter()
        .map(|s| PostTag {
            tag: s.to_lowercase(),
            spelling: s.to_string(),
        })
        .collect()
}

/// A view holding `posts`, counted the aggregator's way (one counter per partition).
pub fn view_of(posts: &[Post]) -> TrendsView {
    let layout = BucketLayout::default();
    let mut view = TrendsView::new(layout);
    let mut counters: Vec<PartitionCounter> =
        (0..2).map(|p| PartitionCounter::new(p, layout)).collect();
    for post in posts {
        counters[post.partition as usize].record(post.at, &post_tags(post.tags));
    }
    for counter in &mut counters {
        for record in counter.take_updates() {
            view.apply(record);
        }
    }
    view
}

pub fn prepared(posts: &[Post]) -> Arc<Prepared> {
    Arc::new(Prepared::new(view_of(posts).snapshot()))
}

/// State serving `posts`, and the sender to publish new snapshots with.
pub fn state_with(posts: &[Post], ready: bool) -> (AppState, watch::Sender<Arc<Prepared>>) {
    let (tx, rx) = watch::channel(prepared(posts));
    (AppState::new(rx, Arc::new(AtomicBool::new(ready))), tx)
}

/// State serving [`POSTS`] whose sender lives as long as the test.
pub fn state(ready: bool) -> AppState {
    let (state, tx) = state_with(&POSTS, ready);
    std::mem::forget(tx);
    state
}

pub fn request(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

pub async fn send(router: &Router, request: Request<Body>) -> Response {
    router.clone().oneshot(request).await.expect("infallible")
}

pub async fn body_bytes(response: Response) -> bytes::Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// Status and JSON body (`Null` if the body is not JSON).
pub async fn get_with(state: AppState, method: &str, uri: &str) -> (StatusCode, Value) {
    let router = app(state, &HttpOptions::default());
    let response = send(&router, request(method, uri)).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub async fn get(uri: &str) -> (StatusCode, Value) {
    get_with(state(true), "GET", uri).await
}
