//! One connection to Jetstream at a time: connect from the right cursor, read frames under an
//! idle timeout, skip what is too large or malformed (counted), and hand events on.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::event::{Mapped, frame_time_us, map_event, subscribe_url};
use crate::sources::contract::{SourceContext, SourceEvent};
use crate::sources::live::{Connection, Dropped, Ended, Waited, within};
use crate::sources::position::Mark;

/// A connection without any frame for this long is considered dead (Jetstream sends many
/// events per second).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt (TCP, TLS, WebSocket handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The WebSocket's hard limit on a message (and frame): far above the post limit
/// (`source.max_post_bytes`, ≤ 1 MB), so that a big frame is skipped with its position rather
/// than ending the connection (which a reconnect would meet again).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The connection to Jetstream, and where the next one resumes.
#[derive(Debug)]
pub struct Jetstream {
    /// `wss://host[:port]` (or `ws://` for tests), no path.
    host: String,
    /// Where to resume at start (`cursor` of the first connection, inclusive), from the
    /// committed position.
    start: Option<i64>,
    rewind_us: i64,
    /// Frames longer than this are skipped (`source.max_post_bytes`).
    max_frame_bytes: usize,
    /// The `time_us` of the last event seen in this run.
    last_seen: Option<i64>,
}

impl Jetstream {
    /// Resumes at `start` (the committed cursor, inclusive; none: live), and after a dropped
    /// connection `rewind_us` before the last event seen; frames over `max_frame_bytes` are
    /// skipped.
    pub fn new(
        host: String,
        start: Option<i64>,
        rewind_us: i64,
        max_frame_bytes: usize,
    ) -> Jetstream {
        Jetstream {
            host,
            start,
            rewind_us,
            max_frame_bytes,
            last_seen: None,
        }
    }
}

impl Connection for Jetstream {
    type Lost = Dropped;

    async fn attempt(&mut self, ctx: &SourceContext, attempt: u64) -> Ended<Dropped> {
        let cursor = match self.last_seen {
            Some(t) => Some(t.saturating_sub(self.rewind_us)),
            None => self.start,
        };
        let url = subscribe_url(&self.host, cursor);
        tracing::info!(url, attempt, "connecting to Jetstream");
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config), true),
        );
        let failed = Ended::Lost(Dropped { delivered: false });
        match ctx.shutdown.run_until_cancelled(connect).await {
            None => Ended::Stop,
            Some(Err(_)) => {
                tracing::warn!(url, "Jetstream connection timed out");
                failed
            }
            Some(Ok(Err(e))) => {
                tracing::warn!(url, error = %e, "cannot connect to Jetstream");
                failed
            }
            Some(Ok(Ok((ws, _response)))) => {
                tracing::info!(url, "connected to Jetstream");
                let ended = self.read(ws, ctx).await;
                if matches!(ended, Ended::Lost(_)) {
                    tracing::warn!(url, "Jetstream connection dropped");
                }
                ended
            }
        }
    }
}

impl Jetstream {
    /// Reads frames until the connection ends or the source must stop.
    async fn read<S>(
        &mut self,
        mut ws: tokio_tungstenite::WebSocketStream<S>,
        ctx: &SourceContext,
    ) -> Ended<Dropped>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut delivered = false;
        loop {
            let message = match within(ctx, IDLE_TIMEOUT, ws.next()).await {
                Waited::Stop => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return Ended::Stop;
                }
                Waited::Idle => {
                    tracing::warn!("no frame from Jetstream for {IDLE_TIMEOUT:?}");
                    return Ended::Lost(Dropped { delivered });
                }
                Waited::Ready(None) => return Ended::Lost(Dropped { delivered }),
                Waited::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "Jetstream read failed");
                    return Ended::Lost(Dropped { delivered });
                }
                Waited::Ready(Some(Ok(message))) => message,
            };
            delivered = true;
            let text = match message {
                Message::Text(text) => text,
                Message::Binary(_) => {
                    skip_malformed(ctx, "a binary frame (compression is not requested)");
                    continue;
                }
                Message::Close(_) => return Ended::Lost(Dropped { delivered }),
                // Pings are answered by tungstenite itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            let event = if text.len() > self.max_frame_bytes {
                match frame_time_us(text.as_str()) {
                    Ok(time_us) => {
                        ctx.oversized();
                        tracing::warn!(
                            time_us,
                            bytes = text.len(),
                            limit = self.max_frame_bytes,
                            "skipping a Jetstream frame over the size limit (source.max_post_bytes)"
                        );
                        self.last_seen = Some(time_us);
                        SourceEvent::Position(Mark::TimeUs(time_us))
                    }
                    Err(reason) => {
                        skip_malformed(ctx, &reason);
                        continue;
                    }
                }
            } else {
                match map_event(text.as_str()) {
                    Ok(Mapped::Post(post)) => {
                        if let Some(Mark::TimeUs(time_us)) = post.position {
                            self.last_seen = Some(time_us);
                        }
                        SourceEvent::Post(post)
                    }
                    Ok(Mapped::Other { time_us }) => {
                        self.last_seen = Some(time_us);
                        SourceEvent::Position(Mark::TimeUs(time_us))
                    }
                    Err(reason) => {
                        skip_malformed(ctx, &reason);
                        continue;
                    }
                }
            };
            if !ctx.emit(event).await {
                return Ended::Stop;
            }
        }
    }
}

fn skip_malformed(ctx: &SourceContext, reason: &str) {
    ctx.malformed();
    tracing::debug!(reason, "skipping a malformed Jetstream frame");
}
