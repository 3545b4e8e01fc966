//! Test support: a snapshot built from known posts (the ground truth the tests compute their
//! expectations from), requests through `app()` without a socket, and [`Server`], the
//! production server on a loopback port (the `spawn_app` of these tests).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tower::ServiceExt;
use trends_api::app::{HttpOptions, app};
use trends_api::metrics::{ConnectionStats, Listener};
use trends_api::prepared::Prepared;
use trends_api::server::serve_api;
use trends_api::state::AppState;
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

/// A GET of `uri` as if from `ip` (the TCP peer the server puts on every request).
pub fn from_ip(uri: &str, ip: &str) -> Request<Body> {
    let mut request = request("GET", uri);
    let ip: IpAddr = ip.parse().expect("an IP");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, 40_000)));
    request
}

pub async fn send(router: &Router, request: Request<Body>) -> Response {
    router.clone().oneshot(request).await.expect("infallible")
}

/// The status `router` answers `request` with.
pub async fn status_of(router: &Router, request: Request<Body>) -> StatusCode {
    send(router, request).await.status()
}

pub async fn body_bytes(response: Response) -> bytes::Bytes {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
}

/// The body as JSON.
pub async fn json_body(response: Response) -> Value {
    serde_json::from_slice(&body_bytes(response).await).expect("json")
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

/// The production server ([`serve_api`]) on loopback ports, serving `state` until
/// [`Server::stop`] cancels `state.shutdown`.
pub struct Server {
    pub addr: SocketAddr,
    /// The separate `/metrics` listener, when asked for.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    handle: JoinHandle<()>,
}

impl Server {
    pub async fn start(state: AppState, options: HttpOptions, metrics_listener: bool) -> Server {
        let api = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = api.local_addr().expect("addr");
        let metrics = if metrics_listener {
            Some(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        } else {
            None
        };
        let metrics_addr = metrics.as_ref().map(|l| l.local_addr().expect("addr"));
        let shutdown = state.shutdown.clone();
        let served = state.clone();
        let handle = tokio::spawn(async move {
            serve_api(api, metrics, served, &options, shutdown).await;
        });
        Server {
            addr,
            metrics_addr,
            state,
            handle,
        }
    }

    /// The API listener's connection counts.
    pub fn api(&self) -> &ConnectionStats {
        self.state.metrics.connections(Listener::Api)
    }

    /// Cancels the shutdown token and waits for the server to return.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        // Guards against a hang, not a timing assertion.
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the server stops")
            .expect("join");
    }
}

/// Polls `condition` until it holds; fails after `within`.
pub async fn wait_for(what: &str, within: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(5)).await;
    }
}
