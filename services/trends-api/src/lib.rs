//! trends-api: serves live trending hashtags.
//!
//! Two tasks share one cancellation token ([`trends_common::shutdown::TaskGroup`]): the
//! [`follower`] reads the compacted counts topic into memory and publishes prepared snapshots;
//! the HTTP server ([`routes::app`]) answers from the latest snapshot. The API is read-only and
//! keeps no state of its own: a restarted instance rebuilds everything from Kafka.

pub mod error;
pub mod follower;
pub mod routes;
pub mod settings;
pub mod web;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::shutdown::TaskGroup;
use trends_core::view::Snapshot;

use crate::routes::AppState;
use crate::settings::Settings;

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
    let (sender, receiver) = watch::channel(Arc::new(Snapshot::default()));
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        snapshot: receiver,
        ready: ready.clone(),
    };
    let router = routes::app(
        state,
        Duration::from_millis(settings.http.request_timeout_ms),
    );

    let mut tasks = TaskGroup::new(shutdown.clone());
    let follower_token = shutdown.clone();
    tasks.spawn(
        "counts follower",
        follower::follow(settings, sender, ready, follower_token),
    );
    let server_token = shutdown.clone();
    tasks.spawn("http server", async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { server_token.cancelled().await })
            .await?;
        Ok(())
    });
    tasks.join().await
}
