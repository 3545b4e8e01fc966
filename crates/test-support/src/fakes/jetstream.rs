//! A fake Bluesky Jetstream: a real WebSocket server on a loopback port that serves a list of
//! frames from each connection's `cursor` on, as Jetstream does (every event whose `time_us`
//! is at least the cursor), by a [`Plan`] per connection (refuse, serve and drop, serve and
//! hold), optionally at a steady pace, and records what it saw.
//!
//! The producer's integration tests (a dropped connection, a restart from the committed
//! position, oversized and malformed frames, refused handshakes) and the end-to-end tests
//! (the real `tweet-producer` binary through the whole pipeline, `kill -9` included) use it.

// The handshake callback's error type (an HTTP response) is tungstenite's, not ours.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// One frame the fake serves.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Jetstream's cursor of the event. A frame that has none (a malformed one) carries the
    /// time of the frame before it, so a cursor serves it as Jetstream would.
    pub time_us: i64,
    pub message: Message,
    /// Counted in [`FakeJetstream::malformed_served`] each time it is sent.
    pub malformed: bool,
}

impl Frame {
    /// A text frame.
    pub fn text(time_us: i64, text: impl Into<String>) -> Frame {
        Frame {
            time_us,
            message: Message::text(text.into()),
            malformed: false,
        }
    }

    /// The same frame, marked malformed.
    pub fn malformed(self) -> Frame {
        Frame {
            malformed: true,
            ..self
        }
    }
}

impl From<(i64, Message)> for Frame {
    fn from((time_us, message): (i64, Message)) -> Frame {
        Frame {
            time_us,
            message,
            malformed: false,
        }
    }
}

/// What the fake does with one connection.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// Refuse the WebSocket handshake with a 503.
    Refuse,
    /// Serve the frames from the cursor on; after `limit` frames drop the TCP connection
    /// without a close frame, else keep it open once all are sent.
    Serve { limit: Option<usize> },
    /// Serve `frames` frames from the cursor on, then keep the connection open, silent.
    Hold { frames: usize },
}

#[derive(Debug, Default)]
struct Seen {
    /// The `cursor` query parameter of every connection attempt (`None`: absent).
    cursors: Vec<Option<i64>>,
    /// Frames written, over all connections.
    served: usize,
    /// Frames written on the latest connection.
    served_latest: usize,
    /// Malformed frames written, over all connections (a resume re-sends some).
    malformed_served: usize,
    /// What the next connections get (see [`FakeJetstream::replace`]).
    frames: Arc<Vec<Frame>>,
    plans: Vec<Plan>,
    /// Connections accepted since the last replacement.
    connections: usize,
}

/// A fake Jetstream on a loopback port; it serves until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct FakeJetstream {
    /// `ws://127.0.0.1:<port>`: the producer's `source.bluesky.host`.
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

/// A poisoned lock means a panic elsewhere in the test; the data is still usable.
fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeJetstream {
    /// Serves `frames` on every connection, the n-th connection by `plans[n]` (the last plan
    /// repeats), each as fast as the client reads.
    pub async fn start<F: Into<Frame>>(
        frames: impl IntoIterator<Item = F>,
        plans: Vec<Plan>,
    ) -> anyhow::Result<FakeJetstream> {
        Self::start_with(frames, plans, None).await
    }

    /// As [`FakeJetstream::start`], `per_tick` frames every `every`: a steady feed.
    pub async fn start_paced<F: Into<Frame>>(
        frames: impl IntoIterator<Item = F>,
        plans: Vec<Plan>,
        per_tick: usize,
        every: Duration,
    ) -> anyhow::Result<FakeJetstream> {
        Self::start_with(frames, plans, Some((per_tick.max(1), every))).await
    }

    async fn start_with<F: Into<Frame>>(
        frames: impl IntoIterator<Item = F>,
        plans: Vec<Plan>,
        pace: Option<(usize, Duration)>,
    ) -> anyhow::Result<FakeJetstream> {
        anyhow::ensure!(!plans.is_empty(), "a fake Jetstream needs a plan");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Seen {
            frames: Arc::new(frames.into_iter().map(Into::into).collect()),
            plans,
            ..Seen::default()
        }));
        let state = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (plan, frames) = {
                    let mut seen = lock(&state);
                    let plan = seen.plans[seen.connections.min(seen.plans.len() - 1)];
                    seen.connections += 1;
                    (plan, Arc::clone(&seen.frames))
                };
                tokio::spawn(serve(tcp, plan, frames, pace, Arc::clone(&state)));
            }
        });
        Ok(FakeJetstream { url, seen })
    }

    /// The same server (the same address, so the same source key) serving other frames and
    /// plans from its next connection on, as a Jetstream that went on while the producer was
    /// stopped; what it saw is forgotten.
    pub fn replace<F: Into<Frame>>(&self, frames: impl IntoIterator<Item = F>, plans: Vec<Plan>) {
        *lock(&self.seen) = Seen {
            frames: Arc::new(frames.into_iter().map(Into::into).collect()),
            plans,
            ..Seen::default()
        };
    }

    /// The `cursor` of every connection attempt, in order (`None`: absent).
    pub fn cursors(&self) -> Vec<Option<i64>> {
        lock(&self.seen).cursors.clone()
    }

    /// Frames written, over all connections.
    pub fn served(&self) -> usize {
        lock(&self.seen).served
    }

    /// Frames written on the latest connection.
    pub fn served_latest(&self) -> usize {
        lock(&self.seen).served_latest
    }

    /// Malformed frames written, over all connections.
    pub fn malformed_served(&self) -> usize {
        lock(&self.seen).malformed_served
    }
}

/// Serves one connection: the handshake (reading `cursor`), then the frames by `plan`.
async fn serve(
    tcp: tokio::net::TcpStream,
    plan: Plan,
    frames: Arc<Vec<Frame>>,
    pace: Option<(usize, Duration)>,
    state: Arc<Mutex<Seen>>,
) {
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
        lock(&state_cb).cursors.push(value);
        if matches!(plan, Plan::Refuse) || request.uri().path() != "/subscribe" || !wanted {
            let mut refusal = ErrorResponse::new(Some("unavailable".into()));
            *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Err(refusal);
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let connection = {
        let mut seen = lock(&state);
        seen.served_latest = 0;
        seen.cursors.len()
    };
    let from = *cursor.lock().unwrap_or_else(|p| p.into_inner());
    let (limit, hold) = match plan {
        Plan::Serve { limit } => (limit, None),
        Plan::Hold { frames } => (None, Some(frames)),
        Plan::Refuse => (Some(0), None),
    };
    let mut tick = pace.map(|(_, every)| tokio::time::interval(every));
    let pending = frames
        .iter()
        .filter(|f| from.is_none_or(|c| f.time_us >= c));
    let mut written = 0usize;
    for (sent, frame) in pending.enumerate() {
        if limit.is_some_and(|l| sent >= l) {
            return; // dropped without a close frame
        }
        if hold.is_some_and(|h| sent >= h) {
            break;
        }
        if let (Some(tick), Some((per_tick, _))) = (tick.as_mut(), pace) {
            if sent % per_tick == 0 {
                tick.tick().await;
            }
        }
        if ws.send(frame.message.clone()).await.is_err() {
            return;
        }
        written = sent + 1;
        let mut seen = lock(&state);
        seen.served += 1;
        if seen.cursors.len() == connection {
            seen.served_latest += 1;
        }
        if frame.malformed {
            seen.malformed_served += 1;
        }
    }
    if limit.is_some_and(|l| written >= l) {
        return; // the limit fell on the last frame: dropped all the same
    }
    // Hold the connection open until the client closes it.
    while let Some(Ok(_)) = ws.next().await {}
}
