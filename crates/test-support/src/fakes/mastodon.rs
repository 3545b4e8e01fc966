//! A fake Mastodon server (axum on a loopback port): the instance document, which may point at a
//! separate streaming host, and the Server-Sent Events endpoints, answered by a [`Script`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Call, Calls, Plan, Script, serve};

/// The prefix of every streaming endpoint.
const STREAMING: &str = "/api/v1/streaming";

#[derive(Debug)]
struct ServerState {
    /// `configuration.urls.streaming` of the instance document.
    streaming: Option<String>,
    script: Arc<Script>,
    calls: Calls,
}

/// A fake Mastodon server on a loopback port.
#[derive(Debug)]
pub struct FakeMastodon {
    pub url: String,
    state: Arc<ServerState>,
}

impl FakeMastodon {
    /// A server whose instance document names `streaming` (none: 404), and whose streaming
    /// endpoints answer by `plans`.
    pub async fn start(
        streaming: Option<String>,
        plans: Vec<Plan>,
    ) -> anyhow::Result<FakeMastodon> {
        let state = Arc::new(ServerState {
            streaming,
            script: Script::new(plans),
            calls: Calls::default(),
        });
        let app = Router::new()
            .route("/api/v2/instance", get(instance))
            .route("/api/v1/streaming/public", get(stream))
            .route("/api/v1/streaming/public/local", get(stream))
            .route("/api/v1/streaming/hashtag", get(stream))
            .with_state(Arc::clone(&state));
        let url = serve(app).await?;
        Ok(FakeMastodon { url, state })
    }

    /// Every request received.
    pub fn seen(&self) -> Vec<Call> {
        self.state.calls.all()
    }

    /// Drops the connection being served by a `ServeThenDrop` plan (now or when it comes).
    pub fn drop_connection(&self) {
        self.state.script.drop_connection();
    }

    /// The requests to the streaming endpoints.
    pub fn stream_requests(&self) -> Vec<Call> {
        self.state.calls.starting_with(STREAMING)
    }
}

/// `GET /api/v2/instance`, trimmed to the documented fields around the streaming URL.
async fn instance(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    state.calls.record(request).await;
    let Some(streaming) = &state.streaming else {
        return (StatusCode::NOT_FOUND, "{\"error\":\"Record not found\"}").into_response();
    };
    axum::Json(json!({
        "domain": "mastodon.example",
        "title": "Mastodon",
        "version": "4.3.0",
        "source_url": "https://github.com/mastodon/mastodon",
        "configuration": {
            "urls": { "streaming": streaming, "status": null },
            "statuses": { "max_characters": 500, "max_media_attachments": 4 }
        },
        "registrations": { "enabled": false, "approval_required": false, "message": null }
    }))
    .into_response()
}

/// The SSE endpoints: the plan of the n-th stream request (the last one repeats).
async fn stream(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    state.calls.record(request).await;
    let n = state.calls.starting_with(STREAMING).len();
    state.script.answer(
        n,
        &[
            ("content-type", "text/event-stream"),
            ("cache-control", "private, no-store"),
        ],
        "text/plain; charset=utf-8",
    )
}
