//! A fake Jetstream: a real WebSocket server on a loopback port serving frames shaped like
//! Jetstream's documented events, from each connection's `cursor` on, by a plan per
//! connection (refuse, serve and drop, serve and hold).

// The handshake callback's error type (an HTTP response) is tungstenite's, not ours.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// What the fake server does with one connection.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// Refuse the WebSocket handshake with a 503.
    Refuse,
    /// Serve the events from the cursor on; after `limit` frames drop the TCP connection
    /// without a close frame, else keep it open.
    Serve { limit: Option<usize> },
    /// Serve `frames` frames from the cursor on, then keep the connection open, silent.
    Hold { frames: usize },
}

#[derive(Debug, Default)]
struct Seen {
    /// The `cursor` query parameter of every connection attempt (`None`: absent).
    cursors: Vec<Option<i64>>,
    /// Frames written to clients.
    served: usize,
    /// What the next connections get (see [`FakeJetstream::replace`]).
    frames: Vec<(i64, Message)>,
    plans: Vec<Plan>,
    /// Connections accepted since the last replacement.
    connections: usize,
}

/// A fake Jetstream on a loopback port. Frames without a time (malformed ones) carry the time
/// of the frame before them, so a cursor serves them like Jetstream would.
#[derive(Debug)]
pub struct FakeJetstream {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

impl FakeJetstream {
    pub async fn start(frames: Vec<(i64, Message)>, plans: Vec<Plan>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Seen {
            frames,
            plans,
            ..Seen::default()
        }));
        let state = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (plan, frames) = {
                    let mut seen = state.lock().unwrap_or_else(|p| p.into_inner());
                    let plan = seen.plans[seen.connections.min(seen.plans.len() - 1)];
                    seen.connections += 1;
                    (plan, seen.frames.clone())
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let cursor = Arc::new(Mutex::new(None));
                    let cursor_cb = Arc::clone(&cursor);
                    let state_cb = Arc::clone(&state);
                    let callback = move |request: &Request, response: Response| {
                        let query = request.uri().query().unwrap_or("").to_owned();
                        let wanted = query.contains("wantedCollections=app.bsky.feed.post");
                        let value = query
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("cursor="))
                            .and_then(|v| v.parse::<i64>().ok());
                        *cursor_cb.lock().unwrap_or_else(|p| p.into_inner()) = value;
                        state_cb
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .cursors
                            .push(value);
                        if matches!(plan, Plan::Refuse)
                            || request.uri().path() != "/subscribe"
                            || !wanted
                        {
                            let mut refusal = ErrorResponse::new(Some("unavailable".into()));
                            *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            return Err(refusal);
                        }
                        Ok(response)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await
                    else {
                        return;
                    };
                    let from = *cursor.lock().unwrap_or_else(|p| p.into_inner());
                    let (limit, hold) = match plan {
                        Plan::Serve { limit } => (limit, None),
                        Plan::Hold { frames } => (None, Some(frames)),
                        Plan::Refuse => (Some(0), None),
                    };
                    let mut sent = 0usize;
                    for (time_us, frame) in frames {
                        if from.is_some_and(|c| time_us < c) {
                            continue;
                        }
                        if limit.is_some_and(|l| sent >= l) {
                            return; // dropped without a close frame
                        }
                        if hold.is_some_and(|h| sent >= h) {
                            break;
                        }
                        if ws.send(frame).await.is_err() {
                            return;
                        }
                        sent += 1;
                        state.lock().unwrap_or_else(|p| p.into_inner()).served += 1;
                    }
                    if limit.is_some_and(|l| sent >= l) {
                        return;
                    }
                    // Hold the connection open until the client closes it.
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
        Ok(FakeJetstream { url, seen })
    }

    /// The same server (address, so the same source key) serving other frames and plans from
    /// its next connection on, as a Jetstream that went on while the producer was stopped;
    /// what it saw is forgotten.
    pub fn replace(&self, frames: Vec<(i64, Message)>, plans: Vec<Plan>) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen {
            frames,
            plans,
            ..Seen::default()
        };
    }

    pub fn cursors(&self) -> Vec<Option<i64>> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cursors
            .clone()
    }

    pub fn served(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).served
    }
}
