//! trends-api: serves live trending hashtags.
//!
//! Two tasks share one cancellation token ([`trends_common::shutdown::TaskGroup`]): the
//! [`follower`] reads the compacted counts topic into memory and publishes prepared snapshots;
//! the HTTP server ([`routes::app`]) answers from the latest snapshot. The API is read-only and
//! keeps no state of its own: a restarted instance rebuilds everything from Kafka.
//!
//! - [`prepared`]: a snapshot with its response bodies, serialized once;
//! - [`stream`]: `/api/v1/stream`, Server-Sent Events;
//! - [`openapi`]: the OpenAPI document generated from the handlers and types;
//! - [`metrics`]: Prometheus text on `/metrics`;
//! - [`rate_limit`]: the optional per-IP rate limit;
//! - [`error`]: the one JSON error shape.

pub mod error;
pub mod follower;
pub mod metrics;
pub mod openapi;
pub mod prepared;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod stream;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::shutdown::TaskGroup;

use crate::prepared::Prepared;
use crate::routes::{AppState, HttpOptions};
use crate::settings::Settings;
use crate::stream::StreamOptions;

/// Binds the configured address and serves until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.addr()?).await?;
    run_with_listener(settings, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn run_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "trends-api listening");
    let (sender, receiver) = watch::channel(Arc::new(Prepared::default()));
    let ready = Arc::new(AtomicBool::new(false));
    let mut state = AppState::new(receiver, ready.clone());
    state.layout = settings.layout();
    state.shutdown = shutdown.clone();
    state.stream = StreamOptions {
        max_events_per_sec: settings.api.stream_max_events_per_sec,
        max_clients: settings.api.max_stream_clients,
        ..StreamOptions::default()
    };
    let metrics = state.metrics.clone();
    let options = HttpOptions::from_settings(&settings);
    let router = routes::app(state, &options);

    let mut tasks = TaskGroup::new(shutdown.clone());
    if let Some(limit) = options.rate_limit.clone() {
        let token = shutdown.clone();
        tasks.spawn("rate limit pruning", async move {
            let mut every = tokio::time::interval(rate_limit::PRUNE_EVERY);
            loop {
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    _ = every.tick() => limit.prune(),
                }
            }
        });
    }
    let follower_token = shutdown.clone();
    tasks.spawn(
        "counts follower",
        follower::follow(settings, sender, ready, metrics, follower_token),
    );
    let server_token = shutdown.clone();
    tasks.spawn("http server", async move {
        // Open streams end on the same token, so a graceful shutdown does not wait for them.
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { server_token.cancelled().await })
        .await?;
        Ok(())
    });
    tasks.join().await
}
