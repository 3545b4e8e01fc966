//! Webhooks against a real receiver: an axum server on a loopback port that records every
//! request and answers as each test scripts it (a status, a `Retry-After`, or never).
//!
//! The ground truth is what the receiver recorded. "Never sent again" cannot be observed by
//! waiting, so a later, different event serves as a barrier: deliveries to one URL are in
//! order, so once the receiver has the barrier, everything sent before it is settled, and what
//! it did not get by then it never gets. Signatures are recomputed here from the secret with
//! `hmac`/`sha2` directly, not with the crate's signer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use trends_api::webhooks::{
    self, EVENT_ID_HEADER, SIGNATURE_HEADER, TrendEvent, TrendEventKind, WebhookMetrics,
    WebhookSettings, Webhooks,
};
use trends_common::secret::SecretRef;

use crate::helpers::{NOON, wait_for};

const KEY: &str = "whsec-test-signing-key";
/// A deadline far above every configured wait: it turns a hang into a failure.
const DEADLINE: Duration = Duration::from_secs(15);

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// 429 or 5xx with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Never answers.
    Hang,
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    signature: String,
    content_type: String,
    body: Bytes,
    at: Instant,
}

/// Answers a request, given its event id and how many times that id came before (1 = first).
type Script = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Script,
}

struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header(EVENT_ID_HEADER);
    let nth = {
        let mut hits = state.hits.lock().expect("hits");
        hits.push(Hit {
            id: id.clone(),
            signature: header(SIGNATURE_HEADER),
            content_type: header("content-type"),
            body,
            at: Instant::now(),
        });
        hits.iter().filter(|h| h.id == id).count()
    };
    match (state.script)(&id, nth) {
        Reply::Status(code) => StatusCode::from_u16(code).expect("status").into_response(),
        Reply::RetryAfter(code, seconds) => (
            StatusCode::from_u16(code).expect("status"),
            [("retry-after", seconds.to_string())],
        )
            .into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

impl Receiver {
    async fn start(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            hits: hits.clone(),
            script: Arc::new(script),
        };
        let app = Router::new()
            .route("/hook/secret-path", post(record))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver");
        });
        Receiver {
            url: format!("http://{addr}/hook/secret-path"),
            hits,
            task,
        }
    }

    async fn always(code: u16) -> Self {
        Receiver::start(move |_, _| Reply::Status(code)).await
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    fn hits_of(&self, id: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.id == id).collect()
    }

    fn ids(&self) -> Vec<String> {
        self.hits().into_iter().map(|h| h.id).collect()
    }

    fn has(&self, id: &str) -> bool {
        self.hits().iter().any(|h| h.id == id)
    }
}

/// Fast retries, so the tests take milliseconds.
fn settings(urls: &[&Receiver]) -> WebhookSettings {
    let settings = WebhookSettings {
        urls: urls.iter().map(|r| r.url.clone()).collect(),
        secret: SecretRef {
            env: "WEBHOOK_KEY".into(),
            file: String::new(),
        },
        timeout: Duration::from_secs(3),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_attempts: 8,
        ..WebhookSettings::default()
    };
    settings.validate().expect("valid settings");
    settings
}

struct Running {
    hooks: Webhooks,
    task: JoinHandle<()>,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
}

fn start(settings: &WebhookSettings) -> Running {
    let metrics = WebhookMetrics::default();
    let shutdown = CancellationToken::new();
    let (hooks, task) = webhooks::start_with_metrics(
        settings,
        Some(SecretString::from(KEY)),
        metrics.clone(),
        shutdown.clone(),
    );
    assert!(hooks.is_on());
    Running {
        hooks,
        task,
        metrics,
        shutdown,
    }
}

fn event(tag: &str) -> TrendEvent {
    TrendEvent {
        kind: TrendEventKind::Started,
        hashtag: tag.to_lowercase(),
        display: tag.into(),
        lang: Some("ja".into()),
        window: "5m",
        score: 7.5,
        authors: 42,
        posts: 61,
        expected: 4.0,
        started_at: NOON - 60_000,
        at: NOON,
    }
}

fn hex_decode(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// What a receiver does: split the header, refuse stale timestamps, check the HMAC of
/// "<t>.<body>" in constant time (`verify_slice`).
fn verify(key: &str, header: &str, body: &[u8], now: u64) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or("malformed header")?;
    if now.abs_diff(t) > 300 {
        return Err(format!("timestamp {t} too far from {now}"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex_decode(v1))
        .map_err(|_| "bad signature".to_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn a_delivery_is_signed_and_verifies_with_the_secret() {
    let receiver = Receiver::always(204).await;
    let run = start(&settings(&[&receiver]));
    let sent = event("日本語");
    run.hooks.send(sent.clone());
    wait_for("the delivery", DEADLINE, || run.metrics.delivered() == 1).await;

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.id, sent.id());
    assert_eq!(hit.content_type, "application/json");
    verify(KEY, &hit.signature, &hit.body, unix_now()).expect("the signature verifies");
    // The wrong key, a changed body, a changed timestamp: all refused.
    assert!(verify("another-key", &hit.signature, &hit.body, unix_now()).is_err());
    let mut tampered = hit.body.to_vec();
    tampered[10] ^= 1;
    assert!(verify(KEY, &hit.signature, &tampered, unix_now()).is_err());
    let (t, rest) = hit.signature.split_once(',').expect("t,v1");
    let t: u64 = t.trim_start_matches("t=").parse().expect("t");
    assert!(verify(KEY, &format!("t={},{rest}", t + 1), &hit.body, unix_now()).is_err());
    assert!(verify(KEY, &hit.signature, &hit.body, t + 3600).is_err());

    let body: Value = serde_json::from_slice(&hit.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({
            "id": sent.id(), "type": "trend.started", "hashtag": "日本語", "display": "日本語",
            "lang": "ja", "window": "5m", "score": 7.5, "authors": 42, "posts": 61,
            "expected": 4.0, "started_at": "2026-11-23T11:59:00.000Z",
            "at": "2026-11-23T12:00:00.000Z"
        })
    );
    assert_eq!(run.metrics.attempts(), 1);
}

#[tokio::test]
async fn a_500_is_retried_once_and_the_retry_is_the_same_event() {
    let flaky = event("flaky").id();
    let receiver = Receiver::start(move |id, nth| {
        Reply::Status(if id == flaky && nth == 1 { 500 } else { 200 })
    })
    .await;
    let run = start(&settings(&[&receiver]));
    let (a, barrier) = (event("flaky"), event("barrier"));
    run.hooks.send(a.clone());
    run.hooks.send(barrier.clone());
    wait_for("the barrier", DEADLINE, || receiver.has(&barrier.id())).await;

    assert_eq!(receiver.ids(), [a.id(), a.id(), barrier.id()]);
    let tries = receiver.hits_of(&a.id());
    assert_eq!(tries[0].body, tries[1].body, "a retry sends the same body");
    for hit in &tries {
        verify(KEY, &hit.signature, &hit.body, unix_now()).expect("each attempt is signed");
    }
    wait_for("both delivered", DEADLINE, || run.metrics.delivered() == 2).await;
    assert_eq!(run.metrics.retries(), 1);
    assert_eq!(run.metrics.attempts(), 3);
}

#[tokio::test]
async fn a_delivered_event_is_never_sent_to_that_url_again() {
    let receiver = Receiver::always(200).await;
    let run = start(&settings(&[&receiver]));
    let a = event("once");
    run.hooks.send(a.clone());
    wait_for("the first delivery", DEADLINE, || {
        run.metrics.delivered() == 1
    })
    .await;

    // The same transition seen again later (a restart, a replica): other numbers, same id.
    let again = TrendEvent {
        score: 9.0,
        authors: 50,
        at: a.at + 30_000,
        ..a.clone()
    };
    assert_eq!(again.id(), a.id());
    let barrier = event("barrier");
    run.hooks.send(again);
    run.hooks.send(barrier.clone());
    wait_for("the barrier", DEADLINE, || receiver.has(&barrier.id())).await;

    assert_eq!(receiver.ids(), [a.id(), barrier.id()]);
    assert_eq!(run.metrics.duplicates(), 1);
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let refused = event("refused").id();
    let receiver =
        Receiver::start(move |id, _| Reply::Status(if id == refused { 400 } else { 200 })).await;
    let run = start(&settings(&[&receiver]));
    let (a, barrier) = (event("refused"), event("barrier"));
    run.hooks.send(a.clone());
    run.hooks.send(barrier.clone());
    wait_for("the barrier", DEADLINE, || receiver.has(&barrier.id())).await;

    assert_eq!(receiver.ids(), [a.id(), barrier.id()]);
    assert_eq!(run.metrics.rejected(), 1);
    assert_eq!(run.metrics.retries(), 0);
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let limited = event("limited").id();
    let receiver = Receiver::start(move |id, nth| {
        if id == limited && nth == 1 {
            Reply::RetryAfter(429, 1)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    // The back-off alone would wait 20..40 ms; Retry-After asks for 1 s (under the 1.5 s cap).
    let run = start(&WebhookSettings {
        max_backoff: Duration::from_millis(1500),
        ..settings(&[&receiver])
    });
    let a = event("limited");
    run.hooks.send(a.clone());
    wait_for("the retry", DEADLINE, || {
        receiver.hits_of(&a.id()).len() == 2
    })
    .await;

    let tries = receiver.hits_of(&a.id());
    let waited = tries[1].at - tries[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    wait_for("the delivery", DEADLINE, || run.metrics.delivered() == 1).await;
}

#[tokio::test]
async fn every_url_gets_every_event_and_a_dead_one_holds_up_only_itself() {
    let (one, two) = (Receiver::always(200).await, Receiver::always(200).await);
    let dead = Receiver::start(|_, _| Reply::Hang).await;
    let run = start(&settings(&[&one, &dead, &two]));
    let (a, b) = (event("first"), event("second"));
    run.hooks.send(a.clone());
    run.hooks.send(b.clone());
    wait_for("both URLs served", DEADLINE, || {
        one.has(&b.id()) && two.has(&b.id())
    })
    .await;

    assert_eq!(one.ids(), [a.id(), b.id()]);
    assert_eq!(two.ids(), [a.id(), b.id()]);
    // The dead receiver got the first event only (its attempts time out after 3 s), never
    // the second: its queue waits behind the first.
    let dead_ids = dead.ids();
    assert!(
        !dead_ids.is_empty() && dead_ids.iter().all(|id| *id == a.id()),
        "{dead_ids:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_and_is_retried() {
    let slow = event("slow").id();
    let receiver = Receiver::start(move |id, nth| {
        if id == slow && nth == 1 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let timeout = Duration::from_millis(300);
    let run = start(&WebhookSettings {
        timeout,
        ..settings(&[&receiver])
    });
    let (a, barrier) = (event("slow"), event("barrier"));
    run.hooks.send(a.clone());
    run.hooks.send(barrier.clone());
    wait_for("the barrier", DEADLINE, || receiver.has(&barrier.id())).await;

    assert_eq!(receiver.ids(), [a.id(), a.id(), barrier.id()]);
    let tries = receiver.hits_of(&a.id());
    assert_eq!(tries[0].body, tries[1].body);
    // The back-off alone is 10..20 ms: a retry this late came from the timeout. (Not the
    // whole 300 ms: the client's clock starts before the receiver sees the request.)
    let waited = tries[1].at - tries[0].at;
    assert!(
        waited >= timeout / 2,
        "retried after {waited:?}, before the timeout"
    );
    assert_eq!(run.metrics.retries(), 1);
    wait_for("both delivered", DEADLINE, || run.metrics.delivered() == 2).await;
}

#[tokio::test]
async fn connection_errors_are_retried_until_max_attempts_then_given_up() {
    // Accepts connections and closes them at once: every attempt fails without a response.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let closer = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let mut settings = settings(&[]);
    settings.urls = vec![format!("http://{addr}/hook")];
    settings.max_attempts = 3;
    let run = start(&settings);
    run.hooks.send(event("unreachable"));
    wait_for("the event given up", DEADLINE, || run.metrics.failed() == 1).await;
    closer.abort();

    assert_eq!(run.metrics.attempts(), 3);
    assert_eq!(run.metrics.retries(), 2);
    assert_eq!(run.metrics.delivered(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_undelivered_event() {
    let stuck = event("stuck").id();
    let receiver = Receiver::start(move |id, nth| {
        if id == stuck && nth == 1 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let run = start(&WebhookSettings {
        queue_capacity: 2,
        timeout: Duration::from_secs(1),
        ..settings(&[&receiver])
    });
    let a = event("stuck");
    run.hooks.send(a.clone());
    // While its first attempt hangs (1 s), the queue holds at most two more.
    wait_for("the first attempt", DEADLINE, || receiver.has(&a.id())).await;
    let later: Vec<TrendEvent> = ["b", "c", "d"].into_iter().map(event).collect();
    for e in &later {
        run.hooks.send(e.clone());
    }
    assert_eq!(run.metrics.dropped(), 1);
    wait_for("the last event", DEADLINE, || receiver.has(&later[2].id())).await;

    assert_eq!(
        receiver.ids(),
        [a.id(), a.id(), later[1].id(), later[2].id()]
    );
}

#[tokio::test]
async fn shutdown_stops_at_once_and_counts_what_was_not_delivered() {
    let receiver = Receiver::start(|_, _| Reply::Hang).await;
    let run = start(&WebhookSettings {
        timeout: Duration::from_secs(60),
        ..settings(&[&receiver])
    });
    let events: Vec<TrendEvent> = ["a", "b", "c"].into_iter().map(event).collect();
    for e in &events {
        run.hooks.send(e.clone());
    }
    wait_for("the first attempt", DEADLINE, || {
        receiver.has(&events[0].id())
    })
    .await;
    run.shutdown.cancel();
    tokio::time::timeout(DEADLINE, run.task)
        .await
        .expect("the workers stop at once, not after the 60 s timeout")
        .expect("joined");

    // The one in flight and the two queued.
    assert_eq!(run.metrics.undelivered_at_shutdown(), 3);
    assert_eq!(run.metrics.queued(), 0);
    run.hooks.send(event("late"));
    assert_eq!(run.metrics.queued(), 0, "nothing is queued after shutdown");
    assert_eq!(receiver.ids(), [events[0].id()]);
}

#[tokio::test]
async fn without_urls_webhooks_are_off() {
    let (hooks, task) =
        webhooks::start(&WebhookSettings::default(), None, CancellationToken::new());
    assert!(!hooks.is_on());
    hooks.send(event("nowhere"));
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("nothing to wait for")
        .expect("joined");
}

/// A `std::io::Write` into a shared buffer: what the fmt subscriber writes, kept.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A global subscriber that records nothing but never answers "never" for a callsite.
///
/// **Why.** Without a global subscriber, a callsite first reached on another test's thread
/// gets the global no-op's interest, "never", cached for every thread; a thread-scoped
/// subscriber set while that happens can miss the callsite's events for good (a `retrying`
/// line missed in a CI rehearsal). With "sometimes" cached instead, every event asks the
/// current thread's subscriber.
struct AskEveryTime;

impl tracing::Subscriber for AskEveryTime {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn logs_hold_neither_the_key_nor_a_urls_path() {
    // Once per process; should it be set already, that one stays.
    let _ = tracing::subscriber::set_global_default(AskEveryTime);
    // A current-thread runtime: the workers run on this thread, under this subscriber.
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A retry (500), a refusal (400), a dropped event, and one left at shutdown.
    let (flaky, refused) = (event("flaky").id(), event("refused").id());
    let script_flaky = flaky.clone();
    let receiver = Receiver::start(move |id, nth| match id {
        _ if id == script_flaky && nth == 1 => Reply::Status(500),
        _ if id == refused => Reply::Status(400),
        _ if id == script_flaky || nth > 1 => Reply::Status(200),
        _ => Reply::Hang,
    })
    .await;
    let run = start(&WebhookSettings {
        queue_capacity: 1,
        ..settings(&[&receiver])
    });
    run.hooks.send(event("flaky"));
    wait_for("the retry", DEADLINE, || {
        receiver.hits_of(&flaky).len() == 2
    })
    .await;
    run.hooks.send(event("refused"));
    wait_for("the refusal", DEADLINE, || run.metrics.rejected() == 1).await;
    run.hooks.send(event("hangs"));
    wait_for("the hanging attempt", DEADLINE, || {
        receiver.has(&event("hangs").id())
    })
    .await;
    run.hooks.send(event("dropped"));
    run.hooks.send(event("left"));
    assert_eq!(run.metrics.dropped(), 1);
    run.shutdown.cancel();
    tokio::time::timeout(DEADLINE, run.task)
        .await
        .expect("stops")
        .expect("joined");

    // Not "not delivered" (the shutdown line): in this test binary another test reaches that
    // callsite on another thread at the same time, and its line was missed in 6 of 10 full runs
    // under load; `shutdown_stops_at_once…` checks what it counts instead.
    let read = || String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    let text = read();
    for expected in [
        "retrying",
        "not retried",
        "dropped the oldest",
        "webhooks.urls[0]",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    assert!(!text.contains(KEY), "the key was logged:\n{text}");
    assert!(
        !text.contains("secret-path"),
        "a URL's path was logged:\n{text}"
    );
}
