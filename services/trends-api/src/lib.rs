//! trends-api: serves live trending hashtags.
//!
//! Two tasks share one cancellation token ([`trends_common::shutdown::TaskGroup`]): the
//! [`follower`] reads the compacted counts topic into memory and publishes prepared snapshots;
//! the HTTP server ([`server`], routing with [`app::app`]) answers from the latest snapshot.
//! The API is read-only and keeps no state of its own: a restarted instance rebuilds
//! everything from Kafka.
//!
//! Modules depend one way, from the data up to the server (each only on those before it):
//!
//! - [`api::types`]: every response body, plain data with its OpenAPI schema; imports nothing
//!   from the crate;
//! - [`prepared`]: a snapshot with its response bodies, serialized once;
//! - [`metrics`], [`cap`] (a semaphore-backed cap with its gauge: connections, streams),
//!   [`error`] (the one JSON error shape), [`rate_limit`] (the optional per-IP rate limit, and
//!   the client keys: IPv6 by /64), [`sse`] (the Server-Sent-Events machinery of
//!   `/api/v1/stream` and its caps), [`settings`];
//! - [`state`]: [`state::AppState`], what handlers read;
//! - [`api`]: the handlers, one module per resource;
//! - [`openapi`]: the OpenAPI document generated from the handlers and types;
//! - [`app`]: the route table, the router and its layers;
//! - [`server`]: connections: header-read and idle timeouts, the connection cap, `/metrics` on
//!   its own listener (optional), graceful shutdown;
//! - [`follower`] and this root, which wire it all together.

pub mod api;
pub mod app;
pub mod cap;
pub mod error;
pub mod follower;
pub mod healthcheck;
pub mod metrics;
pub mod moderation;
pub mod openapi;
pub mod prepared;
pub mod rate_limit;
pub mod server;
pub mod settings;
pub mod sse;
pub mod state;
pub mod web;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_common::config_error::listen_error;
use trends_common::shutdown::TaskGroup;

use crate::app::HttpOptions;
use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::settings::Settings;
use crate::sse::StreamOptions;
use crate::state::AppState;

/// Binds the configured address and serves until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let addr = settings.http.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!(listen_error("http.addr", addr, &e)))?;
    run_with_listener(settings, listener, shutdown).await
}

/// [`run_with_hold`] with a hold nobody engages.
pub async fn run_with_listener(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_hold(settings, listener, shutdown, follower::Hold::default()).await
}

/// Serves on an already bound listener (tests bind port 0); binds `http.metrics_addr` when set.
/// While `hold` is engaged the follower reads nothing (a test hook, see [`follower::Hold`]).
pub async fn run_with_hold(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
    hold: follower::Hold,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, setting = "http.addr", "trends-api listening");
    let metrics_listener = match settings.http.metrics_addr {
        None => None,
        Some(addr) => {
            let bound = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!(listen_error("http.metrics_addr", addr, &e)))?;
            tracing::info!(
                addr = %bound.local_addr()?,
                setting = "http.metrics_addr",
                "serving /metrics on its own listener"
            );
            Some(bound)
        }
    };
    let (sender, receiver) = watch::channel(Arc::new(Prepared::loading()));
    let ready = Arc::new(AtomicBool::new(false));
    let mut metrics = Metrics::new();
    let blocklist_metrics = moderation::ModerationMetrics::register(metrics.registry_mut());
    let webhook_metrics = webhooks::WebhookMetrics::register(metrics.registry_mut());
    let mut state = AppState::with_metrics(receiver, ready.clone(), Arc::new(metrics))
        .with_streams(StreamOptions {
            max_events_per_sec: settings.api.stream_max_events_per_sec,
            max_clients: settings.api.max_stream_clients,
            max_per_ip: settings.api.max_streams_per_ip,
            ..StreamOptions::default()
        });
    state.layout = settings.layout();
    state.shutdown = shutdown.clone();
    let metrics = state.metrics.clone();

    let mut tasks = TaskGroup::new(shutdown.clone());
    // The blocklist, read to its end before anything is served (so trending never shows a
    // blocked tag), and its admin API (off without `admin.token`).
    let (moderation, blocklist) = moderation::start(
        &settings.moderation,
        &settings.kafka,
        settings.secrets.admin_token.clone(),
        blocklist_metrics,
        shutdown.clone(),
    )
    .await?;
    tasks.spawn("blocklist follower", async move {
        blocklist.await.context("blocklist follower")?
    });
    state.admin = Some(moderation.admin_router());
    let (webhooks, deliveries) = webhooks::start_with_metrics(
        &settings.webhooks,
        settings.secrets.webhook_key.clone(),
        webhook_metrics,
        shutdown.clone(),
    );
    tasks.spawn("webhooks", async move {
        deliveries.await.context("webhooks")?;
        Ok(())
    });
    let hooks = trend_hooks(moderation, webhooks);
    let options = HttpOptions::from_settings(&settings);

    if let Some(limit) = options.rate_limit.clone() {
        let token = shutdown.clone();
        tasks.spawn("rate limit pruning", async move {
            let mut every = tokio::time::interval(rate_limit::PRUNE_EVERY);
            while token.run_until_cancelled(every.tick()).await.is_some() {
                limit.prune();
            }
            Ok(())
        });
    }
    let follower_token = shutdown.clone();
    tasks.spawn(
        "counts follower",
        follower::follow(
            settings,
            sender,
            ready,
            metrics,
            follower_token,
            hold,
            hooks,
        ),
    );
    let server_token = shutdown.clone();
    tasks.spawn("http server", async move {
        // Open streams end on the same token, so a graceful shutdown does not wait for them.
        server::serve_api(listener, metrics_listener, state, &options, server_token).await;
        Ok(())
    });
    tasks.join().await
}

/// What the trend board needs from moderation (is a tag blocked?) and gives webhooks (the
/// tags that started or stopped trending, all languages).
fn trend_hooks(
    moderation: moderation::Moderation,
    hooks: webhooks::Webhooks,
) -> follower::TrendHooks {
    let blocklist_changed = Some(moderation.subscribe());
    let blocked = follower::BlockedFn::new(move |tag: &str| moderation.blocklist().is_blocked(tag));
    let transitions: Option<follower::TransitionsFn> = hooks.is_on().then(|| {
        let send: follower::TransitionsFn = Arc::new(move |transitions| {
            for t in transitions {
                hooks.send(webhook_event(&t));
            }
        });
        send
    });
    follower::TrendHooks {
        blocked: Some(blocked),
        transitions,
        blocklist_changed,
    }
}

/// A trend transition as a webhook event.
fn webhook_event(t: &trends_core::trend::Transition) -> webhooks::TrendEvent {
    webhooks::TrendEvent {
        kind: if t.started {
            webhooks::TrendEventKind::Started
        } else {
            webhooks::TrendEventKind::Stopped
        },
        hashtag: t.tag.to_string(),
        display: t.tag.to_string(),
        lang: None,
        window: t.window.as_str(),
        score: t.score,
        authors: t.authors,
        posts: t.posts,
        expected: t.expected,
        started_at: t.started_at,
        at: t.at,
    }
}
