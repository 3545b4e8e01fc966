//! The production server (`trends_api::server`) on real loopback sockets, talking raw TCP
//! where a test must control every byte: a slowloris client, a kept-alive connection with no
//! next request, a silent connection, a stream whose client stops reading, a healthy stream
//! that outlives both timeouts, the connection cap, `/metrics` on its own listener, the
//! security headers, and shutdown of both listeners.
//!
//! Timeouts are set to a few hundred milliseconds here. Every wait is for a condition (EOF, a
//! counter, a number of keep-alive comments) with a deadline far above the configured timeout:
//! the deadline only turns a hang into a failure, it is not what the test measures.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use trends_api::app::HttpOptions;
use trends_api::metrics::Listener;
use trends_api::prepared::Prepared;
use trends_api::sse::StreamOptions;
use trends_api::state::AppState;
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::view::TrendsView;
use trends_core::window::BucketLayout;

use crate::helpers::{NOON, POSTS, Server, state_with, wait_for};

/// Added to a configured timeout to get a test's deadline: generous, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

/// Reads until the server closes the connection (EOF, or a reset); returns what arrived.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            () = sleep_until(deadline) => panic!(
                "the connection is still open after {within:?} ({} bytes received)",
                received.len()
            ),
        }
    }
}

/// One response read off a kept-alive connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// The head, header names lowercase as hyper writes them.
    head: String,
    body: Vec<u8>,
}

/// Sends `GET path` and reads one response with a `content-length` body.
async fn get(stream: &mut TcpStream, path: &str) -> RawResponse {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("write");
    read_response(stream).await
}

/// Reads one response with a `content-length` body.
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + MARGIN;
    loop {
        if let Some(end) = find(&received, b"\r\n\r\n") {
            let head = String::from_utf8(received[..end].to_vec()).expect("ascii head");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if received.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status");
                return RawResponse {
                    status,
                    body: received[end + 4..end + 4 + length].to_vec(),
                    head,
                };
            }
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {received:?}");
        received.extend_from_slice(&buf[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn assert_security_headers(head: &str) {
    for header in [
        "content-security-policy: default-src 'self';",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "x-frame-options: DENY",
    ] {
        assert!(head.contains(header), "no {header:?} in\n{head}");
    }
}

/// The server on [`POSTS`] with `options`; the sender keeps the snapshot channel open.
async fn serve_posts(
    options: HttpOptions,
    metrics_listener: bool,
) -> (Server, watch::Sender<Arc<Prepared>>) {
    let (state, tx) = state_with(&POSTS, true);
    (Server::start(state, options, metrics_listener).await, tx)
}

fn options() -> HttpOptions {
    HttpOptions {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
        ..HttpOptions::default()
    }
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_at_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let (server, _tx) = serve_posts(
        HttpOptions {
            header_read_timeout: timeout,
            ..options()
        },
        false,
    )
    .await;

    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHo")
        .await
        .expect("write");
    // Then one more header byte every 100 ms, for as long as the server lets it: if each byte
    // extended the deadline the connection would never close.
    let deadline = Instant::now() + timeout + MARGIN;
    let mut trickle = tokio::time::interval(Duration::from_millis(100));
    trickle.tick().await;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let mut trickled = 0;
    loop {
        tokio::select! {
            read = slow.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            _ = trickle.tick() => {
                if slow.write_all(b"s").await.is_ok() {
                    trickled += 1;
                }
            }
            () = sleep_until(deadline) => panic!("a slowloris client is still connected"),
        }
    }
    assert!(trickled >= 1, "the client trickled bytes before the cut");
    assert!(
        received.is_empty(),
        "no response for a request that never arrived: {:?}",
        String::from_utf8_lossy(&received)
    );
    wait_for("the timeout to be counted", MARGIN, || {
        server.api().header_read_timeouts() == 1
    })
    .await;
    assert_eq!(server.api().idle_timeouts(), 0);

    // A client that sends its head in time is served.
    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    let response = get(&mut client, "/healthz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, br#"{"status":"ok"}"#);
    server.stop().await;
}

#[tokio::test]
async fn a_request_head_over_the_size_limit_is_refused_with_431() {
    let (server, _tx) = serve_posts(options(), false).await;
    let limit = trends_api::server::MAX_REQUEST_HEAD_BYTES;
    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "GET /api/v1/trends HTTP/1.1\r\nHost: test\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(limit + 1)
    );
    // The server may stop reading (and close) before the whole head is written.
    let _ = client.write_all(head.as_bytes()).await;
    let answer = read_until_closed(&mut client, MARGIN).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    // A head just under the limit is served.
    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    let filler = "a".repeat(limit - 200);
    client
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Filler: {filler}\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let response = read_response(&mut client).await;
    assert_eq!(response.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_without_a_next_request_is_closed_by_the_same_timeout() {
    let timeout = Duration::from_millis(300);
    let (server, _tx) = serve_posts(
        HttpOptions {
            header_read_timeout: timeout,
            ..options()
        },
        false,
    )
    .await;
    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    // Two requests on one connection: keep-alive works...
    for _ in 0..2 {
        assert_eq!(get(&mut client, "/api/v1/windows").await.status, 200);
    }
    // ...and then, with no third request, the connection is closed.
    let extra = read_until_closed(&mut client, timeout + MARGIN).await;
    assert!(extra.is_empty(), "{extra:?}");
    wait_for("the timeout to be counted", MARGIN, || {
        server.api().header_read_timeouts() == 1
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_connection_on_which_nothing_moves_is_closed_by_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let (server, _tx) = serve_posts(
        HttpOptions {
            idle_timeout: idle,
            ..options()
        },
        false,
    )
    .await;
    // Connects and never sends a byte; the header timeout (30 s) is far away.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let received = read_until_closed(&mut silent, idle + MARGIN).await;
    assert!(received.is_empty());
    wait_for("the idle timeout to be counted", MARGIN, || {
        server.api().idle_timeouts() == 1
    })
    .await;
    assert_eq!(server.api().header_read_timeouts(), 0);
    wait_for("the connection to be released", MARGIN, || {
        server.api().open() == 0
    })
    .await;
    server.stop().await;
}

/// A snapshot of 200 tags with 100-character names in `all`: a ~30 KB event per watermark.
fn big_snapshot(watermark: i64) -> Arc<Prepared> {
    let mut view = TrendsView::new(BucketLayout::default());
    for i in 0..200 {
        view.apply(CountsRecord::new(
            CountsKey::Total {
                partition: 0,
                tag: format!("t{i:03}{}", "x".repeat(96)),
            },
            Some(i + 1),
        ));
    }
    view.apply(CountsRecord::new(
        CountsKey::Watermark { partition: 0 },
        Some(watermark),
    ));
    Arc::new(Prepared::new(view.snapshot()))
}

#[tokio::test]
async fn a_stream_whose_client_stops_reading_is_closed_and_frees_its_slots() {
    let (tx, rx) = watch::channel(big_snapshot(NOON));
    let state = AppState::new(rx, Arc::new(true.into())).with_streams(StreamOptions {
        max_events_per_sec: 1000,
        keep_alive: Duration::from_millis(100),
        ..StreamOptions::default()
    });
    let idle = Duration::from_millis(300);
    let server = Server::start(
        state,
        HttpOptions {
            idle_timeout: idle,
            ..options()
        },
        false,
    )
    .await;

    // A client with a small receive buffer that sends its request and never reads.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stalled = socket.connect(server.addr).await.expect("connect");
    stalled
        .write_all(b"GET /api/v1/stream?window=all&limit=100 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let streams = server.state.metrics.clone();
    wait_for("the stream to open", MARGIN, || {
        streams.stream_clients() == 1
    })
    .await;

    // New snapshots keep coming, so the server has ever more to write: the socket buffers
    // fill up, then nothing moves, and the idle timeout closes the connection.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut watermark = NOON;
    while server.api().idle_timeouts() == 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled stream is still open"
        );
        watermark += 1;
        tx.send_replace(big_snapshot(watermark));
        sleep(Duration::from_millis(2)).await;
    }
    wait_for("the stream's slots to be freed", MARGIN, || {
        streams.stream_clients() == 0
            && server.state.streams.by_ip().tracked() == 0
            && server.api().open() == 0
    })
    .await;
    // The client finds the connection closed after what had been buffered.
    let received = read_until_closed(&mut stalled, MARGIN).await;
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    server.stop().await;
}

#[tokio::test]
async fn an_open_stream_outlives_the_header_and_idle_timeouts() {
    let (state, _tx) = state_with(&POSTS, true);
    // Like production, the keep-alive comes well within the idle timeout (15 s vs 30 s).
    let state = state.with_streams(StreamOptions {
        keep_alive: Duration::from_millis(100),
        ..StreamOptions::default()
    });
    let timeout = Duration::from_millis(300);
    let server = Server::start(
        state,
        HttpOptions {
            header_read_timeout: timeout,
            idle_timeout: timeout,
            ..options()
        },
        false,
    )
    .await;
    let mut client = TcpStream::connect(server.addr).await.expect("connect");
    client
        .write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    // Twelve keep-alive comments: 1.2 s or more, four times either timeout.
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + MARGIN * 2;
    let count = |bytes: &[u8]| bytes.windows(12).filter(|w| w == b": keep-alive").count();
    while count(&received) < 12 {
        let n = tokio::time::timeout_at(deadline, client.read(&mut buf))
            .await
            .expect("keep-alives in time")
            .expect("read");
        assert!(
            n > 0,
            "the stream was closed: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("event: trends"), "{text}");
    assert_security_headers(&text);
    assert_eq!(
        (
            server.api().header_read_timeouts(),
            server.api().idle_timeouts()
        ),
        (0, 0)
    );
    server.stop().await;
    // Shutdown ended the stream and closed the connection.
    read_until_closed(&mut client, MARGIN).await;
}

#[tokio::test]
async fn beyond_the_connection_cap_new_connections_are_closed_at_once() {
    let (server, _tx) = serve_posts(
        HttpOptions {
            max_connections: 2,
            ..options()
        },
        false,
    )
    .await;
    // Two kept-alive connections, each served once: both hold a place.
    let mut one = TcpStream::connect(server.addr).await.expect("connect");
    let mut two = TcpStream::connect(server.addr).await.expect("connect");
    for client in [&mut one, &mut two] {
        let response = get(client, "/api/v1/trends").await;
        assert_eq!(response.status, 200);
        assert_security_headers(&response.head);
    }
    assert_eq!(server.api().open(), 2);

    // A third is closed without an answer.
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    let received = read_until_closed(&mut third, MARGIN).await;
    assert!(received.is_empty(), "{received:?}");
    assert_eq!(server.api().rejected(), 1);
    // The two held connections still work.
    assert_eq!(get(&mut two, "/healthz").await.status, 200);

    // One leaves: a new connection is served again.
    drop(one);
    wait_for("the place to be freed", MARGIN, || server.api().open() == 1).await;
    let mut fourth = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(get(&mut fourth, "/healthz").await.status, 200);
    assert_eq!(server.api().rejected(), 1);

    let metrics = String::from_utf8(get(&mut fourth, "/metrics").await.body).expect("utf-8");
    for line in [
        "trends_api_http_connections{listener=\"api\"} 2\n",
        "trends_api_http_connections_rejected_total{listener=\"api\"} 1\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_on_their_own_listener_and_both_listeners_stop_on_shutdown() {
    let (server, _tx) = serve_posts(options(), true).await;
    let metrics_addr = server.metrics_addr.expect("a metrics listener");

    let mut api = TcpStream::connect(server.addr).await.expect("connect");
    let response = get(&mut api, "/metrics").await;
    assert_eq!(response.status, 404, "not on the API listener");
    assert_security_headers(&response.head);
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    let response = get(&mut api, "/").await;
    assert_eq!(response.status, 200);
    assert_security_headers(&response.head);

    let mut scraper = TcpStream::connect(metrics_addr).await.expect("connect");
    let response = get(&mut scraper, "/metrics").await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .head
            .contains("content-type: application/openmetrics-text; version=1.0.0")
    );
    assert_security_headers(&response.head);
    let text = String::from_utf8(response.body).expect("utf-8");
    for line in [
        // The API listener's 404 above, counted in the same metrics.
        "trends_api_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n",
        "trends_api_http_connections{listener=\"api\"} 1\n",
        "trends_api_http_connections{listener=\"metrics\"} 1\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert_eq!(get(&mut scraper, "/api/v1/trends").await.status, 404);

    // Shutdown: the idle kept-alive connections are closed, the server returns, and neither
    // port accepts connections any more.
    let (addr, state) = (server.addr, server.state.clone());
    server.stop().await;
    read_until_closed(&mut api, MARGIN).await;
    read_until_closed(&mut scraper, MARGIN).await;
    for port in [addr, metrics_addr] {
        assert!(
            TcpStream::connect(port).await.is_err(),
            "{port} still accepts connections"
        );
    }
    for listener in Listener::ALL {
        assert_eq!(state.metrics.connections(listener).open(), 0);
    }
}
