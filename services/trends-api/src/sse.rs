//! The machinery of `GET /api/v1/stream` (its handler is [`crate::api::stream`]): the
//! `/trends` body as Server-Sent Events, pushed when it changes, and the caps on open streams.
//!
//! Each connection is one small state machine polled by the response body (no task, no
//! channel per client), so an idle client costs a watch-channel receiver and a few timers. The
//! events are the bytes [`Prepared`] framed once per snapshot: with
//! thousands of clients on the same window and limit, a new snapshot is serialized once and
//! every client sends a clone of the same buffer.
//!
//! The protocol, for a browser's `EventSource` or any client:
//! - on connect, at once: `retry: 2000` (the reconnect delay hint) and the current snapshot as
//!   `event: trends`, so a reconnecting client is never blank;
//! - then one `event: trends` each time a published snapshot changes this body (a snapshot that
//!   changes other windows only sends nothing), at most `api.stream_max_events_per_sec` per
//!   second: changes arriving faster are coalesced into the latest;
//! - a comment line (`: keep-alive`) after 15 s without an event, so proxies and clients see
//!   the connection is alive;
//! - the stream ends when the server shuts down.
//!
//! At most `api.max_stream_clients` streams are open at once; beyond, 503 `too_many_streams`
//! with `Retry-After`. One client address may hold at most `api.max_streams_per_ip` of them
//! (IPv6: one /64, see [`client_key`]); beyond, 429 `too_many_streams_from_ip`, so a single
//! client cannot take every slot. [`Streams`] holds both caps for a server: the global one is
//! a [`Cap`] (a semaphore, so the cap is never counted by hand, and the
//! `trends_api_stream_clients` gauge, which moves with its places), the per-IP one a map of
//! counts. A stream's state holds both its places as RAII guards: they free themselves however
//! the stream ends (client gone, shutdown, error).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::cap::{Cap, Place};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::rate_limit::client_key;

/// A `: keep-alive` comment goes out after this long without an event.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How streams behave.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// At most this many events per second per stream.
    pub max_events_per_sec: u32,
    /// Concurrent streams; more get 503.
    pub max_clients: usize,
    /// Concurrent streams of one client key ([`client_key`]); more get 429.
    pub max_per_ip: usize,
    /// A comment line after this long without an event.
    pub keep_alive: Duration,
    /// The reconnect delay suggested to clients (`retry:`).
    pub retry: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_events_per_sec: 4,
            max_clients: 10_000,
            max_per_ip: 16,
            keep_alive: KEEP_ALIVE,
            retry: Duration::from_secs(2),
        }
    }
}

pub use crate::prepared::{Query, Sort};

/// The stream caps of one server, shared by all its handlers (cloning shares them).
#[derive(Debug, Clone)]
pub struct Streams {
    options: StreamOptions,
    /// `options.max_clients` places, counted in `metrics`' open-streams gauge.
    slots: Cap,
    by_ip: Arc<StreamsByIp>,
}

impl Streams {
    /// Caps sized by `options`, open streams counted in `metrics`; they are fixed for the life
    /// of the server, so options are only ever given here.
    pub fn new(options: StreamOptions, metrics: &Metrics) -> Self {
        Streams {
            slots: Cap::new(options.max_clients, metrics.stream_clients_gauge().clone()),
            by_ip: Arc::new(StreamsByIp::default()),
            options,
        }
    }

    pub fn options(&self) -> &StreamOptions {
        &self.options
    }

    /// Open streams per client key.
    pub fn by_ip(&self) -> &Arc<StreamsByIp> {
        &self.by_ip
    }
}

/// Open streams per client key. An entry exists only while its key has a stream open: the
/// last `IpSlot` of a key removes it, so the map never holds more entries than there are
/// open streams (at most `api.max_stream_clients`).
#[derive(Debug, Default)]
pub struct StreamsByIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl StreamsByIp {
    /// Client keys with at least one open stream.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Open streams of `ip`'s client key.
    pub fn open_for(&self, ip: IpAddr) -> usize {
        self.lock().get(&client_key(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map is consistent after any panic (single increments and decrements).
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Holds one of its client key's places for as long as the stream lives.
#[derive(Debug)]
struct IpSlot {
    streams: Arc<StreamsByIp>,
    key: IpAddr,
}

impl IpSlot {
    fn take(streams: &Arc<StreamsByIp>, ip: IpAddr, max: usize) -> Option<Self> {
        let key = client_key(ip);
        let mut open = streams.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            if *count == 0 {
                open.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            streams: streams.clone(),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

struct State {
    snapshots: watch::Receiver<Arc<Prepared>>,
    query: Query,
    options: StreamOptions,
    shutdown: CancellationToken,
    /// The last body sent; `None` before the first event.
    last: Option<Bytes>,
    /// No event before this (the rate cap).
    next_event: Instant,
    /// A keep-alive comment at this time unless an event goes first.
    keep_alive_at: Instant,
    _slot: Place,
    _ip_slot: IpSlot,
}

impl State {
    /// The current body and its event, if the body differs from the last one sent.
    fn changed_event(&mut self) -> Option<Bytes> {
        let prepared = self.snapshots.borrow_and_update().clone();
        let q = &self.query;
        let body = prepared.body(q);
        if self.last.as_ref() == Some(&body) {
            return None;
        }
        let event = prepared.event(q, &body);
        self.last = Some(body);
        let now = Instant::now();
        let per_sec = self.options.max_events_per_sec.max(1);
        self.next_event = now + Duration::from_secs(1) / per_sec;
        self.keep_alive_at = now + self.options.keep_alive;
        Some(event)
    }

    /// The next chunk of the response body; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if self.last.is_none() {
            let event = self.changed_event()?;
            let retry = format!("retry: {}\n", self.options.retry.as_millis());
            let mut first = Vec::with_capacity(retry.len() + event.len());
            first.extend_from_slice(retry.as_bytes());
            first.extend_from_slice(&event);
            return Some(Bytes::from(first));
        }
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                changed = self.snapshots.changed() => {
                    // The follower is gone: the server is stopping.
                    changed.ok()?;
                }
                () = sleep_until(self.keep_alive_at) => {
                    self.keep_alive_at = Instant::now() + self.options.keep_alive;
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
            // Coalesce: wait out the rate cap, then send whatever is latest.
            if Instant::now() < self.next_event {
                self.shutdown
                    .run_until_cancelled(sleep_until(self.next_event))
                    .await?;
            }
            if let Some(event) = self.changed_event() {
                return Some(event);
            }
        }
    }
}

/// Opens a stream for `client`, or refuses: 429 when the client's address has
/// `max_per_ip` streams open, 503 when `max_clients` are open in all.
pub fn open(
    streams: &Streams,
    snapshots: watch::Receiver<Arc<Prepared>>,
    client: IpAddr,
    shutdown: CancellationToken,
    query: Query,
) -> Result<Response, AppError> {
    let options = &streams.options;
    // Per address first: a client over its own cap must not consume a global slot, even
    // briefly. Either guard gives its place back when dropped.
    let ip_slot = IpSlot::take(&streams.by_ip, client, options.max_per_ip)
        .ok_or(AppError::TooManyStreamsFromIp)?;
    let slot = streams.slots.take().ok_or(AppError::TooManyStreams)?;
    let now = Instant::now();
    let state = State {
        snapshots,
        query,
        options: options.clone(),
        shutdown,
        last: None,
        next_event: now,
        keep_alive_at: now + options.keep_alive,
        _slot: slot,
        _ip_slot: ip_slot,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let chunk = state.next().await?;
        Some((Ok::<_, Infallible>(chunk), state))
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells nginx-like proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
