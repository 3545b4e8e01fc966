//! The HTTP server: hyper's HTTP/1 connection, driven per TCP connection by this module,
//! because `axum::serve` has no header-read timeout, no idle timeout and no connection cap, and
//! a server on the open internet needs all three.
//!
//! - **Header-read timeout** (`http.header_read_timeout_ms`; hyper's `header_read_timeout` on
//!   tokio's timer): a request head must arrive whole within it, counted from the moment the
//!   server waits for one: when the connection opens, or when the previous response on a
//!   kept-alive connection has been sent. A slowloris client (a header byte now and then) is
//!   cut off at that deadline however it trickles, and a kept-alive connection that sends no
//!   next request is closed after the same time. hyper closes without a response; it is
//!   counted in `trends_api_http_connections_timed_out_total{reason="header_read"}`.
//! - **Idle timeout** (`http.idle_timeout_ms`): a connection on which no byte moves, either
//!   way, for this long is closed, even mid-response. It covers what the header timeout does
//!   not see: a client that stops reading its response (a stalled stream would otherwise hold
//!   its slots and the server's buffers for ever). An open `/api/v1/stream` sends at least a
//!   keep-alive comment every 15 s, so a stream whose client reads is never idle (the settings
//!   require the timeout to exceed that interval). Counted with `reason="idle"`.
//! - **Connection cap** (`http.max_connections`, per listener): beyond it a new connection is
//!   accepted and closed at once, without a response, and counted in
//!   `trends_api_http_connections_rejected_total`. Closing, rather than leaving connections in
//!   the kernel's accept queue, answers the client at once (browsers and `EventSource`
//!   retry) and keeps a flood from piling up behind the slots. The first refusal after a quiet
//!   spell is logged, not every one. The cap is a [`Cap`] per listener: a connection holds a
//!   place (counted in the `trends_api_http_connections` gauge) for as long as it lives.
//!
//! - **Request head size**: at most [`MAX_REQUEST_HEAD_BYTES`] (hyper's read buffer limit;
//!   its default is ~400 KiB). A larger head gets hyper's own `431` (no JSON body: the router
//!   never sees the request) and the connection is closed. This bounds what one connection can
//!   make the server buffer before any handler runs.
//!
//! Every request carries `ConnectInfo<SocketAddr>`: the rate limiter and the per-IP stream cap
//! key on the TCP peer.
//!
//! **Shutdown.** When the token is cancelled the listener is closed (new connections are
//! refused), every connection is asked to finish its current response and close (an idle one
//! closes at once; open streams end on the same token), and [`serve`] returns once the last
//! connection is gone. A connection stuck on a client that does not read is still closed by
//! the idle timeout, so it cannot hold a shutdown up for longer than that.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service as _;

use crate::app::{self, HttpOptions};
use crate::cap::{Cap, Place};
use crate::metrics::{Listener, Metrics};
use crate::state::AppState;

/// The largest request head (request line and headers) read: 16 KiB, Node.js's default limit.
/// The API's requests are GETs with a few short headers; a browser with large cookies for the
/// domain stays well below.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// Serves the API on `api` and, when given, `/metrics` alone on `metrics` (then the API
/// listener answers 404 for `/metrics`), until `shutdown` is cancelled and every connection of
/// both listeners has closed.
pub async fn serve_api(
    api: TcpListener,
    metrics: Option<TcpListener>,
    state: AppState,
    options: &HttpOptions,
    shutdown: CancellationToken,
) {
    let options = HttpOptions {
        separate_metrics_listener: metrics.is_some(),
        ..options.clone()
    };
    let counters = state.metrics.clone();
    let api_router = app::app(state.clone(), &options);
    let api_server = serve(
        api,
        api_router,
        &options,
        Counted(counters.clone(), Listener::Api),
        shutdown.clone(),
    );
    match metrics {
        None => api_server.await,
        Some(listener) => {
            let metrics_router = app::metrics_app(state, &options);
            let metrics_server = serve(
                listener,
                metrics_router,
                &options,
                Counted(counters, Listener::Metrics),
                shutdown,
            );
            tokio::join!(api_server, metrics_server);
        }
    }
}

/// The metrics a listener's connections are counted in, and under which `listener` label.
#[derive(Debug, Clone)]
pub struct Counted(pub Arc<Metrics>, pub Listener);

/// Serves `router` on `listener` with `options`' connection limits until `shutdown` is
/// cancelled and its connections have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: &HttpOptions,
    counted: Counted,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let shared = Arc::new(Shared {
        router,
        builder,
        idle_timeout: options.idle_timeout,
        counted,
        shutdown,
    });
    let stats = shared.counted.0.connections(shared.counted.1);
    let places = Cap::new(options.max_connections, stats.open_gauge().clone());
    // Every connection task holds a receiver; `closed()` resolves when the last one is gone.
    let (all_closed, connection_open) = watch::channel(());
    let mut refusing = false;
    loop {
        let Some(accepted) = shared.shutdown.run_until_cancelled(listener.accept()).await else {
            break;
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            // The client gave up before we accepted: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Typically out of file descriptors: wait for connections to close.
                tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                let pause = tokio::time::sleep(Duration::from_secs(1));
                if shared.shutdown.run_until_cancelled(pause).await.is_none() {
                    break;
                }
                continue;
            }
        };
        let Some(place) = places.take() else {
            drop(stream);
            let before = stats.rejected_one();
            if !refusing {
                refusing = true;
                tracing::warn!(
                    listener = shared.counted.1.label(),
                    max_connections = options.max_connections,
                    refused_so_far = before + 1,
                    "connection cap reached: closing new connections at once"
                );
            }
            continue;
        };
        if refusing {
            refusing = false;
            tracing::info!(
                listener = shared.counted.1.label(),
                refused_so_far = stats.rejected(),
                "below the connection cap again"
            );
        }
        tokio::spawn(connection(
            shared.clone(),
            stream,
            peer,
            place,
            connection_open.clone(),
        ));
    }
    // Stop accepting: from here a connection attempt is refused by the kernel.
    drop(listener);
    drop(connection_open);
    all_closed.closed().await;
}

/// What every connection task of one listener shares.
struct Shared {
    router: Router,
    builder: http1::Builder,
    idle_timeout: Duration,
    counted: Counted,
    shutdown: CancellationToken,
}

/// Drives one connection until it closes, is idle too long, or the server has shut down.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _place: Place,
    _open: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        io: stream,
        activity: activity.clone(),
    });
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        // A router is always ready; cloning one is a reference count.
        router.clone().call(request)
    });
    let stats = shared.counted.0.connections(shared.counted.1);
    let mut conn = pin!(shared.builder.serve_connection(io, service));
    let mut idle_check = pin!(tokio::time::sleep(shared.idle_timeout));
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                match result {
                    Ok(()) => {}
                    Err(e) if e.is_timeout() => {
                        stats.header_read_timed_out();
                        tracing::debug!(%peer, "no whole request head in time: closed");
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
                }
                return;
            }
            () = shared.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = idle_check.as_mut() => {
                let quiet = activity.quiet_for();
                if quiet >= shared.idle_timeout {
                    stats.idle_timed_out();
                    tracing::debug!(%peer, quiet_ms = quiet.as_millis(), "idle connection closed");
                    // Dropping the connection closes the socket and ends any response in flight.
                    return;
                }
                idle_check
                    .as_mut()
                    .reset(Instant::now() + shared.idle_timeout.saturating_sub(quiet));
            }
        }
    }
}

/// `accept` errors that concern one connection only.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// When a connection last moved a byte either way.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last read or write of at least one byte.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records `poll`'s bytes, if it moved any.
    fn wrote(&self, poll: &Poll<io::Result<usize>>) {
        if matches!(poll, Poll::Ready(Ok(n)) if *n > 0) {
            self.touch();
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last byte moved.
    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }
}

/// A TCP stream that records in [`Activity`] whenever a byte is read or written.
struct Tracked {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.activity.wrote(&poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.activity.wrote(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
