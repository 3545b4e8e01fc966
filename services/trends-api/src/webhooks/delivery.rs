//! Delivery to one URL: its bounded queue, and the worker that empties it in order, one event
//! at a time, retrying as [`super::backoff`] says and remembering what was delivered.
//!
//! One worker per URL, so a slow or dead receiver holds up only its own queue. An event is
//! given up after `webhooks.max_attempts` (it cannot block the queue forever) or at once on a
//! refusal (3xx, 4xx other than 429: the request will not get better by repeating it). A 2xx
//! puts its id in the URL's memory of delivered ids (the last `webhooks.dedup_capacity`),
//! checked before every send: the same transition sent again, while still queued or later, is
//! skipped for that URL.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, jitter, parse_retry_after};
use super::metrics::WebhookMetrics;
use super::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, Signer};

/// An event ready to send: its id, its body (the same bytes on every attempt and URL) and what
/// logs say of it.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub id: Arc<str>,
    pub body: bytes::Bytes,
    pub kind: &'static str,
    pub hashtag: String,
    pub window: &'static str,
}

/// The undelivered events of one URL, oldest first, at most `capacity`.
#[derive(Debug)]
pub(super) struct Queue {
    events: Mutex<VecDeque<Arc<Outgoing>>>,
    capacity: usize,
    ready: Notify,
    /// `webhooks.urls[i]`, for logs.
    index: usize,
    origin: String,
    metrics: WebhookMetrics,
}

impl Queue {
    pub fn new(index: usize, origin: String, capacity: usize, metrics: WebhookMetrics) -> Self {
        Queue {
            events: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            ready: Notify::new(),
            index,
            origin,
            metrics,
        }
    }

    /// Never held across an await; a panic elsewhere while holding it leaves a valid deque.
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Outgoing>>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event; when full, drops the oldest (logged, counted).
    pub fn push(&self, event: Arc<Outgoing>) {
        let dropped = {
            let mut events = self.lock();
            let dropped = if events.len() >= self.capacity {
                events.pop_front()
            } else {
                None
            };
            events.push_back(event);
            dropped
        };
        match dropped {
            Some(old) => {
                self.metrics.dropped.inc();
                tracing::warn!(
                    url = %format_args!("webhooks.urls[{}]", self.index),
                    origin = %self.origin,
                    id = %old.id,
                    r#type = old.kind,
                    hashtag = %old.hashtag,
                    window = old.window,
                    "webhook queue full (webhooks.queue_capacity): dropped the oldest undelivered event"
                );
            }
            None => {
                self.metrics.queued.inc();
            }
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Arc<Outgoing>> {
        let event = self.lock().pop_front();
        if event.is_some() {
            self.metrics.queued.dec();
        }
        event
    }

    /// The next event, waiting for one.
    async fn next(&self) -> Arc<Outgoing> {
        loop {
            if let Some(event) = self.pop() {
                return event;
            }
            // A push between the pop and this wait leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Empties the queue, returning what it held.
    fn drain(&self) -> Vec<Arc<Outgoing>> {
        let drained: Vec<_> = self.lock().drain(..).collect();
        self.metrics.queued.dec_by(drained.len() as i64);
        drained
    }
}

/// The ids most recently delivered to one URL, at most `capacity` (the oldest forgotten first).
#[derive(Debug)]
pub(super) struct Delivered {
    ids: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
}

impl Delivered {
    pub fn new(capacity: usize) -> Self {
        Delivered {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub fn insert(&mut self, id: Arc<str>) {
        if !self.ids.insert(id.clone()) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// How one event ended for one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Rejected,
    GaveUp,
    Cancelled,
}

/// What a worker needs, shared by every URL's worker.
#[derive(Debug, Clone)]
pub(super) struct Deliverer {
    pub client: Client,
    pub signer: Signer,
    pub backoff: Backoff,
    pub max_attempts: u32,
    pub dedup_capacity: usize,
    pub metrics: WebhookMetrics,
}

/// A failed request as a log line: the error and its causes (`error sending request: client
/// error (Connect): Connection refused`), without the URL: reqwest quotes it, and a webhook
/// URL may hold a secret.
fn describe(error: reqwest::Error) -> String {
    let timeout = error.is_timeout();
    let error = error.without_url();
    let mut text = if timeout {
        format!("timeout: {error}")
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Unix seconds now (0 if the clock is before 1970).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Deliverer {
    /// Delivers `queue`'s events to `url` until `shutdown`; then logs what is left undelivered.
    pub async fn run(self, url: Url, queue: Arc<Queue>, shutdown: CancellationToken) {
        let mut delivered = Delivered::new(self.dedup_capacity);
        let mut in_flight = None;
        loop {
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                event = queue.next() => event,
            };
            if delivered.contains(&event.id) {
                self.metrics.duplicates.inc();
                tracing::debug!(
                    url = %format_args!("webhooks.urls[{}]", queue.index),
                    id = %event.id,
                    "webhook event already delivered to this URL: skipped"
                );
                continue;
            }
            match self.deliver(&url, &queue, &event, &shutdown).await {
                Outcome::Delivered => delivered.insert(event.id.clone()),
                Outcome::Rejected | Outcome::GaveUp => {}
                Outcome::Cancelled => {
                    in_flight = Some(event);
                    break;
                }
            }
        }
        let left: Vec<_> = in_flight.into_iter().chain(queue.drain()).collect();
        if !left.is_empty() {
            self.metrics
                .undelivered_at_shutdown
                .inc_by(left.len() as u64);
            // The first few ids: a full queue would make a line of 64 KB.
            let ids: Vec<&str> = left.iter().take(10).map(|e| &*e.id).collect();
            tracing::warn!(
                url = %format_args!("webhooks.urls[{}]", queue.index),
                origin = %queue.origin,
                events = left.len(),
                first_ids = ?ids,
                "shutting down: webhook events not delivered"
            );
        }
    }

    /// Tries one event until it is delivered, refused, given up or cancelled.
    async fn deliver(
        &self,
        url: &Url,
        queue: &Queue,
        event: &Outgoing,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let target = format!("webhooks.urls[{}]", queue.index);
        let id_header = HeaderValue::from_str(&event.id).ok();
        for attempt in 1..=self.max_attempts {
            let mut request = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(
                    SIGNATURE_HEADER,
                    self.signer.header(unix_now(), &event.body),
                )
                .body(event.body.clone());
            if let Some(id) = &id_header {
                request = request.header(EVENT_ID_HEADER, id.clone());
            }
            self.metrics.attempts.inc();
            let sent = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Outcome::Cancelled,
                sent = request.send() => sent,
            };
            let (reason, retry_after) = match sent {
                Ok(response) if response.status().is_success() => {
                    self.metrics.delivered.inc();
                    tracing::debug!(
                        url = %target, id = %event.id, attempt, status = response.status().as_u16(),
                        "webhook event delivered"
                    );
                    return Outcome::Delivered;
                }
                Ok(response)
                    if response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error() =>
                {
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| parse_retry_after(v.as_bytes()));
                    (
                        format!("status {}", response.status().as_u16()),
                        retry_after,
                    )
                }
                Ok(response) => {
                    self.metrics.rejected.inc();
                    tracing::warn!(
                        url = %target, origin = %queue.origin, id = %event.id,
                        r#type = event.kind, hashtag = %event.hashtag, window = event.window,
                        status = response.status().as_u16(),
                        "webhook event refused by the receiver (redirects are not followed): \
                         not retried"
                    );
                    return Outcome::Rejected;
                }
                Err(e) => (describe(e), None),
            };
            if attempt == self.max_attempts {
                self.metrics.failed.inc();
                tracing::error!(
                    url = %target, origin = %queue.origin, id = %event.id,
                    r#type = event.kind, hashtag = %event.hashtag, window = event.window,
                    attempts = attempt, last_error = %reason,
                    "webhook event given up after webhooks.max_attempts"
                );
                return Outcome::GaveUp;
            }
            let wait = self.backoff.delay(attempt, jitter(), retry_after);
            self.metrics.retries.inc();
            tracing::info!(
                url = %target, origin = %queue.origin, id = %event.id, attempt,
                error = %reason, retry_in_ms = wait.as_millis() as u64,
                "webhook attempt failed: retrying"
            );
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Outcome::Cancelled,
                () = tokio::time::sleep(wait) => {}
            }
        }
        // max_attempts ≥ 1 (validated); with 0, nothing was tried.
        self.metrics.failed.inc();
        Outcome::GaveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(id: &str) -> Arc<Outgoing> {
        Arc::new(Outgoing {
            id: id.into(),
            body: bytes::Bytes::new(),
            kind: "trend.started",
            hashtag: "rust".into(),
            window: "5m",
        })
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let metrics = WebhookMetrics::default();
        let queue = Queue::new(0, "http://x".into(), 2, metrics.clone());
        for id in ["a", "b", "c", "d"] {
            queue.push(outgoing(id));
        }
        assert_eq!(metrics.dropped(), 2);
        assert_eq!(metrics.queued(), 2);
        let left: Vec<String> = queue.drain().iter().map(|e| e.id.to_string()).collect();
        assert_eq!(left, ["c", "d"]);
        assert_eq!(metrics.queued(), 0);
    }

    #[test]
    fn the_delivered_memory_forgets_the_oldest_beyond_its_capacity() {
        let mut delivered = Delivered::new(3);
        for id in ["a", "b", "c", "b", "d"] {
            delivered.insert(id.into());
        }
        assert_eq!(delivered.len(), 3);
        assert!(!delivered.contains("a"));
        assert!(["b", "c", "d"].iter().all(|id| delivered.contains(id)));
    }
}
