//! A fake Bluesky Jetstream: a real WebSocket server on a loopback port that serves a fixed
//! list of frames from each connection's `cursor` on, as Jetstream does (every event whose
//! `time_us` is at least the cursor), and records what it saw.
//!
//! Used by the end-to-end tests that run the real `tweet-producer` binary against it
//! (`live_source.rs`: a dropped connection; `source_exactly_once.rs`: `kill -9` of the
//! producer). The frames are the test's: shaped like Jetstream's documented events, or
//! deliberately malformed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// One frame the fake serves.
#[derive(Debug, Clone)]
pub struct JetstreamFrame {
    /// Jetstream's cursor of the event (a malformed frame has one too: where it sits).
    pub time_us: i64,
    /// The frame's text, as sent.
    pub text: String,
    /// Counted in [`Seen::malformed_served`] each time it is sent.
    pub malformed: bool,
}

/// How the fake behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeJetstreamOptions {
    /// Drop the first connection (no close frame) after this many frames.
    pub drop_first_after: Option<usize>,
    /// Send at most this many frames per this interval (a steady feed); `None`: at once.
    pub pace: Option<(usize, Duration)>,
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The `cursor` query parameter of each connection, in order (`None`: absent).
    pub cursors: Vec<Option<i64>>,
    /// Frames written on the latest connection.
    pub served_latest: usize,
    /// Malformed frames written, over all connections (a resume re-sends some).
    pub malformed_served: usize,
}

/// A running fake; it serves until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct FakeJetstream {
    /// `ws://127.0.0.1:<port>`, the producer's `source.bluesky.host`.
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

impl FakeJetstream {
    /// Binds a loopback port and serves `frames` on every connection.
    pub async fn start(
        frames: Vec<JetstreamFrame>,
        options: FakeJetstreamOptions,
    ) -> FakeJetstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let frames = Arc::new(frames);
        let state = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut connection = 0usize;
            while let Ok((tcp, _)) = listener.accept().await {
                connection += 1;
                tokio::spawn(serve(
                    tcp,
                    Arc::clone(&frames),
                    Arc::clone(&state),
                    options,
                    connection == 1,
                ));
            }
        });
        FakeJetstream { url, seen }
    }

    /// What it saw so far.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }
}

/// A poisoned lock means a panic elsewhere in the test; the data is still usable.
fn lock(state: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one connection: the handshake (reading `cursor`), then the frames from the cursor on.
async fn serve(
    tcp: tokio::net::TcpStream,
    frames: Arc<Vec<JetstreamFrame>>,
    state: Arc<Mutex<Seen>>,
    options: FakeJetstreamOptions,
    first: bool,
) {
    let cursor = Arc::new(Mutex::new(None));
    let cursor_cb = Arc::clone(&cursor);
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    let callback = move |request: &Request, response: Response| {
        let value = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("cursor="))
            .and_then(|v| v.parse::<i64>().ok());
        *cursor_cb.lock().unwrap_or_else(|p| p.into_inner()) = value;
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let from = *cursor.lock().unwrap_or_else(|p| p.into_inner());
    let connection = {
        let mut seen = lock(&state);
        seen.cursors.push(from);
        seen.served_latest = 0;
        seen.cursors.len()
    };
    let mut tick = options.pace.map(|(_, every)| tokio::time::interval(every));
    let pending = frames
        .iter()
        .filter(|f| from.is_none_or(|c| f.time_us >= c));
    for (sent, frame) in pending.enumerate() {
        if first && options.drop_first_after == Some(sent) {
            return; // dropped without a close frame
        }
        if let (Some(tick), Some((per_tick, _))) = (tick.as_mut(), options.pace) {
            if sent % per_tick.max(1) == 0 {
                tick.tick().await;
            }
        }
        if ws.send(Message::text(frame.text.clone())).await.is_err() {
            return;
        }
        let mut seen = lock(&state);
        if seen.cursors.len() == connection {
            seen.served_latest += 1;
        }
        if frame.malformed {
            seen.malformed_served += 1;
        }
    }
    while let Some(Ok(_)) = ws.next().await {}
}
