//! `/api/v1/stream`: Server-Sent Events through `app()` (the response body read frame by
//! frame) on tokio's paused clock, so throttling and keep-alives are checked by counting
//! events over virtual time, never by a stopwatch; and over a real socket, served by the
//! production server (`trends_api::server`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use trends_api::app::{HttpOptions, app};
use trends_api::prepared::Prepared;
use trends_api::sse::StreamOptions;
use trends_api::state::AppState;
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::view::TrendsView;

use crate::helpers::{
    self, NOON, POSTS, Post, Server, body_bytes, from_ip, json_body, request, send, state_with,
    status_of, wait_for,
};

/// One chunk of the stream: an event's `/trends` JSON, or a comment.
#[derive(Debug, PartialEq)]
enum Chunk {
    Event { retry: Option<u64>, data: Value },
    Comment(String),
}

fn parse(chunk: &[u8]) -> Chunk {
    let text = std::str::from_utf8(chunk).expect("utf-8");
    assert!(
        text.ends_with("\n\n"),
        "one whole event per chunk: {text:?}"
    );
    if let Some(comment) = text.strip_prefix(':') {
        return Chunk::Comment(comment.trim().to_string());
    }
    let mut retry = None;
    let mut event = None;
    let mut data = None;
    for line in text.trim_end().lines() {
        match line.split_once(": ") {
            Some(("retry", ms)) => retry = Some(ms.parse().expect("retry in ms")),
            Some(("event", name)) => event = Some(name),
            Some(("data", json)) => {
                assert!(data.is_none(), "one data line");
                data = Some(serde_json::from_str(json).expect("data is JSON"));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert_eq!(event, Some("trends"));
    Chunk::Event {
        retry,
        data: data.expect("data"),
    }
}

/// Reads the next chunk; `None` when the stream ended.
async fn next(body: &mut Body) -> Option<Chunk> {
    loop {
        let frame = body.frame().await?.expect("infallible");
        if let Ok(data) = frame.into_data() {
            return Some(parse(&data));
        }
    }
}

async fn next_event(body: &mut Body) -> Value {
    match next(body).await {
        Some(Chunk::Event { data, .. }) => data,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn open(state: &AppState, uri: &str) -> Response {
    send(
        &app(state.clone(), &HttpOptions::default()),
        request("GET", uri),
    )
    .await
}

async fn trends_json(state: &AppState, uri: &str) -> Value {
    json_body(open(state, uri).await).await
}

/// A snapshot of `posts` with the watermark moved to `watermark`: a distinct body for every
/// window.
fn with_watermark(posts: &[Post], watermark: i64) -> Arc<Prepared> {
    let mut view: TrendsView = helpers::view_of(posts);
    view.apply(CountsRecord {
        key: CountsKey::Watermark { partition: 0 },
        value: Some(watermark),
        spellings: vec![],
        error: 0,
    });
    Arc::new(Prepared::new(view.snapshot()))
}

#[tokio::test(start_paused = true)]
async fn the_first_event_comes_at_once_with_a_retry_hint_and_the_trends_body() {
    let (state, _tx) = state_with(&POSTS, true);
    for query in ["", "?window=all&limit=2", "?window=1h&prefix=RU"] {
        let started = tokio::time::Instant::now();
        let response = open(&state, &format!("/api/v1/stream{query}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let mut body = response.into_body();
        let first = next(&mut body).await;
        // Not even virtual time passed: no timer stood between connect and the snapshot.
        assert_eq!(started.elapsed(), Duration::ZERO, "{query}");
        let expected = trends_json(&state, &format!("/api/v1/trends{query}")).await;
        assert_eq!(
            first,
            Some(Chunk::Event {
                retry: Some(2000),
                data: expected
            }),
            "{query}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_published_snapshot_that_changes_the_body_is_pushed() {
    let (state, tx) = state_with(&POSTS[..4], true);
    let mut body = open(&state, "/api/v1/stream?window=5m").await.into_body();
    let first = next_event(&mut body).await;
    assert_eq!(first["trends"].as_array().map(Vec::len), Some(2));

    tx.send_replace(helpers::prepared(&POSTS));
    let second = next_event(&mut body).await;
    assert_eq!(
        second,
        trends_json(&state, "/api/v1/trends?window=5m").await
    );
    assert_ne!(second, first);
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_that_leaves_the_body_unchanged_sends_nothing() {
    let (state, tx) = state_with(&POSTS, true);
    let mut body = open(&state, "/api/v1/stream?window=1m").await.into_body();
    let first = next_event(&mut body).await;
    // 日本 two hours ago changes `all` and `24h`, not `1m`.
    let mut more = POSTS.to_vec();
    more.push(Post {
        partition: 1,
        at: NOON - 3 * 3_600_000,
        tags: &["日本"],
    });
    tx.send_replace(helpers::prepared(&more));
    // Then a change that does show: the watermark moves.
    tx.send_replace(with_watermark(&more, NOON + 1));
    let second = next_event(&mut body).await;
    assert_eq!(second["watermark"], "2026-11-23T12:00:00.001Z");
    assert_eq!(second["trends"], first["trends"]);
    // And nothing else was queued in between: the next chunk is a keep-alive.
    assert_eq!(
        next(&mut body).await,
        Some(Chunk::Comment("keep-alive".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn events_are_capped_per_second_and_bursts_coalesce_into_the_latest() {
    let (state, tx) = state_with(&POSTS, true);
    let state = state.with_streams(StreamOptions {
        max_events_per_sec: 2,
        ..StreamOptions::default()
    });
    let mut body = open(&state, "/api/v1/stream?limit=1").await.into_body();
    next_event(&mut body).await;

    // A burst of ten snapshots at one instant: one event, with the last.
    for i in 1..=10 {
        tx.send_replace(with_watermark(&POSTS, NOON + i));
    }
    let event = next_event(&mut body).await;
    assert_eq!(event["watermark"], "2026-11-23T12:00:00.010Z");
    assert_eq!(
        next(&mut body).await,
        Some(Chunk::Comment("keep-alive".into())),
        "the burst made exactly one event"
    );

    // A new snapshot every 50 ms for 10 s of virtual time: 200 changes, at most 2 events a
    // second get out.
    let publisher = tokio::spawn(async move {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send_replace(with_watermark(&POSTS, NOON + 1_000 + i));
        }
        tx
    });
    let mut events = 0;
    let mut last = Value::Null;
    while !publisher.is_finished() || last["watermark"] != "2026-11-23T12:00:01.199Z" {
        match next(&mut body).await {
            Some(Chunk::Event { data, .. }) => {
                events += 1;
                last = data;
            }
            Some(Chunk::Comment(_)) => {}
            None => panic!("stream ended"),
        }
    }
    // The cap allows one event at once and then one per 500 ms: at most 1 + 10 × 2. Fewer
    // than 20 would mean changes were dropped rather than coalesced.
    assert!(
        (20..=21).contains(&events),
        "{events} events for 200 changes over 10 s at 2/s"
    );
    drop(publisher.await);
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_gets_keep_alive_comments() {
    let (state, _tx) = state_with(&POSTS, true);
    let state = state.with_streams(StreamOptions {
        keep_alive: Duration::from_secs(3),
        ..StreamOptions::default()
    });
    let mut body = open(&state, "/api/v1/stream").await.into_body();
    next_event(&mut body).await;
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(
            next(&mut body).await,
            Some(Chunk::Comment("keep-alive".into()))
        );
    }
    assert_eq!(started.elapsed(), Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn beyond_the_client_cap_streams_get_503_until_one_leaves() {
    let (state, _tx) = state_with(&POSTS, true);
    let state = state.with_streams(StreamOptions {
        max_clients: 2,
        ..StreamOptions::default()
    });
    let router = app(state.clone(), &HttpOptions::default());
    let metric = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("trends_api_stream_clients "))
            .map(str::to_string)
    };
    let gauge = || async {
        let text = body_bytes(send(&router, request("GET", "/metrics")).await).await;
        metric(&String::from_utf8_lossy(&text))
    };

    let one = send(&router, request("GET", "/api/v1/stream")).await;
    let two = send(&router, request("GET", "/api/v1/stream?window=all")).await;
    assert_eq!(
        (one.status(), two.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(gauge().await.as_deref(), Some("2"));

    let refused = send(&router, request("GET", "/api/v1/stream")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "5");
    let body = json_body(refused).await;
    assert_eq!(body["error"]["code"], "too_many_streams");
    // Plain requests are not affected by the cap.
    assert_eq!(
        status_of(&router, request("GET", "/api/v1/trends")).await,
        StatusCode::OK
    );

    drop(one);
    assert_eq!(gauge().await.as_deref(), Some("1"));
    let three = send(&router, request("GET", "/api/v1/stream")).await;
    assert_eq!(three.status(), StatusCode::OK);
    drop((two, three));
    assert_eq!(gauge().await.as_deref(), Some("0"));
}

#[tokio::test(start_paused = true)]
async fn streams_end_on_shutdown_and_when_the_follower_is_gone() {
    let (state, tx) = state_with(&POSTS, true);
    let mut body = open(&state, "/api/v1/stream").await.into_body();
    next_event(&mut body).await;
    state.shutdown.cancel();
    assert_eq!(next(&mut body).await, None);

    drop(tx);

    let (state, tx) = state_with(&POSTS, true);
    let mut body = open(&state, "/api/v1/stream").await.into_body();
    next_event(&mut body).await;
    drop(tx);
    assert_eq!(next(&mut body).await, None);
}

/// Default stream options but for the per-address cap.
fn max_per_ip(streams: usize) -> StreamOptions {
    StreamOptions {
        max_per_ip: streams,
        ..StreamOptions::default()
    }
}

async fn error_code(response: Response) -> Value {
    json_body(response).await["error"]["code"].clone()
}

#[tokio::test(start_paused = true)]
async fn one_address_may_hold_only_max_streams_per_ip() {
    let (state, _tx) = state_with(&POSTS, true);
    let state = state.with_streams(max_per_ip(2));
    let router = app(state.clone(), &HttpOptions::default());
    let by_ip = state.streams.by_ip().clone();

    let one = send(&router, from_ip("/api/v1/stream", "10.0.0.1")).await;
    let two = send(&router, from_ip("/api/v1/stream?window=1h", "10.0.0.1")).await;
    assert_eq!(
        (one.status(), two.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = send(&router, from_ip("/api/v1/stream", "10.0.0.1")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "5");
    assert_eq!(error_code(refused).await, "too_many_streams_from_ip");
    // The refused stream took no global slot.
    assert_eq!(state.metrics.stream_clients(), 2);
    // Another address is not affected, nor are plain requests from the same one.
    let other = send(&router, from_ip("/api/v1/stream", "10.0.0.2")).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(
        status_of(&router, from_ip("/api/v1/trends", "10.0.0.1")).await,
        StatusCode::OK
    );
    assert_eq!(by_ip.tracked(), 2);

    // One closed: the address may open one again, and only one.
    drop(one);
    assert_eq!(by_ip.open_for("10.0.0.1".parse().expect("ip")), 1);
    let three = send(&router, from_ip("/api/v1/stream", "10.0.0.1")).await;
    assert_eq!(three.status(), StatusCode::OK);
    let refused = send(&router, from_ip("/api/v1/stream", "10.0.0.1")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    // The map shrinks: an address's entry goes with its last stream.
    drop(other);
    assert_eq!(by_ip.tracked(), 1);
    drop((two, three));
    assert_eq!(by_ip.tracked(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_per_ip_stream_cap_counts_an_ipv6_64_as_one_client() {
    let (state, _tx) = state_with(&POSTS, true);
    let state = state.with_streams(max_per_ip(2));
    let router = app(state.clone(), &HttpOptions::default());
    let a = send(&router, from_ip("/api/v1/stream", "2001:db8:7:8::1")).await;
    let b = send(&router, from_ip("/api/v1/stream", "2001:db8:7:8:abcd::2")).await;
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let refused = send(
        &router,
        from_ip("/api/v1/stream", "2001:db8:7:8:ffff:ffff:ffff:ffff"),
    )
    .await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a third address of the same /64"
    );
    let neighbour = send(&router, from_ip("/api/v1/stream", "2001:db8:7:9::1")).await;
    assert_eq!(
        neighbour.status(),
        StatusCode::OK,
        "the next /64 is another client"
    );

    // An IPv4 client seen through a dual-stack listener counts as its IPv4 address.
    let v4 = send(&router, from_ip("/api/v1/stream", "192.0.2.7")).await;
    let mapped = send(&router, from_ip("/api/v1/stream", "::ffff:192.0.2.7")).await;
    assert_eq!(
        (v4.status(), mapped.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = send(&router, from_ip("/api/v1/stream", "192.0.2.7")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(state.streams.by_ip().tracked(), 3);
    drop((a, b, neighbour, v4, mapped));
    assert_eq!(state.streams.by_ip().tracked(), 0);
}

/// A server on a loopback port for `state`, stopped by `state.shutdown`.
async fn serve(state: AppState) -> Server {
    Server::start(state, HttpOptions::default(), false).await
}

/// Over a real socket every client of the test is 127.0.0.1: the per-IP cap applies to it.
#[tokio::test]
async fn over_a_real_socket_the_third_stream_of_an_address_is_refused() {
    let (state, _tx) = state_with(&POSTS, true);
    let state = state.with_streams(max_per_ip(2));
    let by_ip = state.streams.by_ip().clone();
    let server = serve(state).await;
    let addr = server.addr;
    let client = reqwest::Client::new();
    let open = || async {
        client
            .get(format!("http://{addr}/api/v1/stream"))
            .send()
            .await
            .expect("connect")
    };
    let mut one = open().await;
    let mut two = open().await;
    assert_eq!(
        (one.status(), two.status()),
        (reqwest::StatusCode::OK, reqwest::StatusCode::OK)
    );
    // Both are live: each gets its first event.
    assert!(one.chunk().await.expect("read").is_some());
    assert!(two.chunk().await.expect("read").is_some());
    let refused = open().await;
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_streams_from_ip");

    // The client closes one; the server notices when the connection goes.
    drop(one);
    let localhost: IpAddr = "127.0.0.1".parse().expect("ip");
    wait_for(
        "the closed stream's slot to be freed",
        Duration::from_secs(10),
        || by_ip.open_for(localhost) == 1,
    )
    .await;
    let mut three = open().await;
    assert_eq!(three.status(), reqwest::StatusCode::OK);
    assert!(three.chunk().await.expect("read").is_some());

    server.stop().await;
    drop((two, three));
}

/// Over a real socket: headers arrive, then events as they are published, and a graceful
/// shutdown is not held up by open streams.
#[tokio::test]
async fn a_real_client_receives_events_and_shutdown_closes_the_stream() {
    let (state, tx) = state_with(&POSTS[..4], true);
    let shutdown = state.shutdown.clone();
    let server = serve(state).await;
    let addr = server.addr;

    let client = reqwest::Client::new();
    let mut response = client
        .get(format!("http://{addr}/api/v1/stream?window=5m"))
        .send()
        .await
        .expect("connect");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let first = response.chunk().await.expect("read").expect("first event");
    let Chunk::Event { data, .. } = parse(&first) else {
        panic!("expected an event")
    };
    assert_eq!(data["trends"].as_array().map(Vec::len), Some(2));

    tx.send_replace(helpers::prepared(&POSTS));
    let second = response.chunk().await.expect("read").expect("second event");
    let Chunk::Event { data, .. } = parse(&second) else {
        panic!("expected an event")
    };
    let trends: Value = client
        .get(format!("http://{addr}/api/v1/trends?window=5m"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(data, trends);

    shutdown.cancel();
    assert_eq!(response.chunk().await.ok().flatten(), None, "stream closed");
    server.stop().await;
}
