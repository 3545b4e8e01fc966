//! Fake servers of the live sources, on loopback ports, speaking the real wire formats: a
//! Jetstream ([`jetstream`], WebSocket), a Mastodon server ([`mastodon`], the instance document
//! and Server-Sent Events) and the X API ([`x`], filtered-stream rules and JSON lines). Real
//! servers on real sockets, not mocks: the producer's own HTTP and WebSocket clients talk to
//! them, in the producer's integration tests and in the end-to-end tests alike.
//!
//! What the two HTTP fakes share is here: the requests they received ([`Calls`]), and a
//! streaming endpoint that answers each request by a [`Plan`] ([`Script`]).

pub mod jetstream;
pub mod mastodon;
pub mod x;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;

/// Serves `app` on a free loopback port, for as long as the test runs; its `http://` URL.
pub async fn serve(app: Router) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// One request a fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub path_and_query: String,
    /// The body, if it was JSON.
    pub body: Option<Value>,
    pub authorization: Option<String>,
}

/// Every request a fake received, in order.
#[derive(Debug, Default)]
pub struct Calls(Mutex<Vec<Call>>);

impl Calls {
    /// Records `request` (its body read, at most 1 MiB).
    pub async fn record(&self, request: Request) -> Call {
        let method = request.method().to_string();
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or(String::new(), |p| p.to_string());
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let call = Call {
            method,
            path_and_query,
            body: serde_json::from_slice(&bytes).ok(),
            authorization,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call.clone());
        call
    }

    pub fn all(&self) -> Vec<Call> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The calls whose path and query start with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> Vec<Call> {
        self.all()
            .into_iter()
            .filter(|c| c.path_and_query.starts_with(prefix))
            .collect()
    }
}

/// What a fake streaming endpoint does with one request.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Answer with this status, headers and body.
    Refuse(u16, Vec<(&'static str, String)>, &'static str),
    /// Send these chunks, then drop the connection in the middle of the body when the test
    /// says so ([`Script::drop_connection`]).
    ServeThenDrop(Vec<String>),
    /// Send these chunks, then keep the connection open.
    ServeThenHold(Vec<String>),
}

/// A streaming endpoint's answers: the plan of the n-th request (the last one repeats).
#[derive(Debug)]
pub struct Script {
    plans: Vec<Plan>,
    drop_now: tokio::sync::Notify,
}

impl Script {
    pub fn new(plans: Vec<Plan>) -> Arc<Script> {
        Arc::new(Script {
            plans,
            drop_now: tokio::sync::Notify::new(),
        })
    }

    /// Drops the connection being served by a `ServeThenDrop` plan (now or when it comes).
    pub fn drop_connection(&self) {
        self.drop_now.notify_one();
    }

    /// The answer to the `n`-th request (from 1): a refusal with `refusal_type` as its content
    /// type, or a streaming body with `headers`.
    pub fn answer(
        self: &Arc<Script>,
        n: usize,
        headers: &[(&str, &str)],
        refusal_type: &str,
    ) -> Response {
        let plan = self.plans[(n - 1).min(self.plans.len() - 1)].clone();
        let (chunks, hold) = match plan {
            Plan::Refuse(code, extra, body) => {
                let mut response = Response::builder()
                    .status(code)
                    .header("content-type", refusal_type);
                for (name, value) in extra {
                    response = response.header(name, value);
                }
                return response
                    .body(Body::from(body))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            Plan::ServeThenDrop(chunks) => (chunks, false),
            Plan::ServeThenHold(chunks) => (chunks, true),
        };
        let chunks = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<Bytes, std::io::Error>(Bytes::from(c))),
        );
        let body = if hold {
            Body::from_stream(chunks.chain(futures_util::stream::pending()))
        } else {
            // An error in the body makes the server abort the connection mid-stream.
            let script = Arc::clone(self);
            let drop = futures_util::stream::once(async move {
                script.drop_now.notified().await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped",
                ))
            });
            Body::from_stream(chunks.chain(drop))
        };
        let mut response = Response::builder();
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}
