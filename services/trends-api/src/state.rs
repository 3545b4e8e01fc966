//! [`AppState`]: what every handler may read. Nothing in it is written by a request except
//! through its own guards (the stream caps) and the metrics.
//!
//! The state is built once per server (`crate::run_with_listener`, or a test) and cloned into
//! the router; every field is shared (`Arc`, a watch receiver, a token), so a clone is cheap and
//! sees the same data. It depends only on the modules it holds ([`crate::prepared`],
//! [`crate::metrics`], [`crate::sse`]), never on the handlers or the router.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use trends_core::window::BucketLayout;

use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::sse::{StreamOptions, Streams};

/// Shared state of all handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The latest prepared snapshot.
    pub snapshot: watch::Receiver<Arc<Prepared>>,
    /// Caught up with the counts topic.
    pub ready: Arc<AtomicBool>,
    /// Bucket sizes (`/windows`).
    pub layout: BucketLayout,
    pub metrics: Arc<Metrics>,
    /// How streams behave and the caps on open streams (global and per client address); set
    /// with [`AppState::with_streams`], which sizes the caps.
    pub streams: Streams,
    /// Ends open streams when the server stops.
    pub shutdown: CancellationToken,
    /// The admin API's routes (`crate::moderation`), state applied; `None`: none (tests).
    pub admin: Option<axum::Router>,
}

impl AppState {
    /// State with the default layout and stream options, fresh metrics, and a shutdown token
    /// nobody cancels.
    pub fn new(snapshot: watch::Receiver<Arc<Prepared>>, ready: Arc<AtomicBool>) -> Self {
        AppState::with_metrics(snapshot, ready, Arc::new(Metrics::new()))
    }

    /// [`AppState::new`] counting in `metrics`.
    pub fn with_metrics(
        snapshot: watch::Receiver<Arc<Prepared>>,
        ready: Arc<AtomicBool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        AppState {
            snapshot,
            ready,
            layout: BucketLayout::default(),
            streams: Streams::new(StreamOptions::default(), &metrics),
            metrics,
            shutdown: CancellationToken::new(),
            admin: None,
        }
    }

    /// The same state with streams behaving as `options` says (fresh caps of that size).
    #[must_use]
    pub fn with_streams(mut self, options: StreamOptions) -> Self {
        self.streams = Streams::new(options, &self.metrics);
        self
    }

    /// The snapshot to answer from.
    pub fn current(&self) -> Arc<Prepared> {
        self.snapshot.borrow().clone()
    }
}
