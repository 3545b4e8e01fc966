//! Webhooks: a signed JSON POST to every configured URL when a tag starts trending and when it
//! stops.
//!
//! The trend detector calls [`Webhooks::send`] with a [`TrendEvent`]; it returns at once. The
//! event's id and body are made once ([`event`]); each URL then has its own bounded queue and
//! worker ([`delivery`]) that posts its events in order, one at a time, signed ([`signature`]),
//! retried with back-off ([`backoff`]) and remembered once delivered so the same id is never
//! sent to that URL twice.
//!
//! Guarantees, and their limits: delivery is *at least once* for every event that is neither
//! dropped from a full queue (`webhooks.queue_capacity` per URL, the oldest dropped first,
//! counted) nor given up (`webhooks.max_attempts`), and while the process lives: queues are in
//! memory (Kafka is the only store; a restarted API re-derives the current trends, and the
//! deterministic ids let receivers drop what they saw before the restart). A receiver must
//! therefore deduplicate on the event id; this side's own memory of delivered ids
//! (`webhooks.dedup_capacity` per URL) only spares it the repeats it can see. On shutdown the
//! workers stop at once (an attempt in flight is abandoned) and what is left is logged as not
//! delivered.
//!
//! Nothing here logs the signing key (it is a [`SecretString`], and [`signature::Signer`]'s
//! `Debug` hides it) or a whole URL (only `webhooks.urls[i]` and its origin). Redirects are not
//! followed: a 3xx is a refusal, like a 4xx.

pub mod backoff;
mod delivery;
pub mod event;
pub mod metrics;
pub mod settings;
pub mod signature;

use std::sync::Arc;

use secrecy::SecretString;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use event::{TrendEvent, TrendEventKind};
pub use metrics::WebhookMetrics;
pub use settings::WebhookSettings;
pub use signature::{EVENT_ID_HEADER, SIGNATURE_HEADER};

use backoff::Backoff;
use delivery::{Deliverer, Outgoing, Queue};
use signature::Signer;

/// The handle the trend detector sends events through. Cheap to clone; a no-op when webhooks
/// are off ([`Webhooks::off`], or no URL configured).
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    queues: Vec<Arc<Queue>>,
    shutdown: CancellationToken,
}

impl Webhooks {
    /// Webhooks off: [`Webhooks::send`] does nothing.
    pub fn off() -> Self {
        Webhooks::default()
    }

    /// Whether events go anywhere.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` for every URL and returns at once (never waits for a receiver). After
    /// shutdown it does nothing.
    pub fn send(&self, event: TrendEvent) {
        let Some(inner) = &self.inner else {
            return;
        };
        if inner.shutdown.is_cancelled() {
            return;
        }
        let id = event.id();
        let outgoing = Arc::new(Outgoing {
            body: event.body(&id).into(),
            id: id.into(),
            kind: event.kind.as_str(),
            hashtag: event.hashtag,
            window: event.window,
        });
        for queue in &inner.queues {
            queue.push(outgoing.clone());
        }
    }
}

/// [`start_with_metrics`] with unregistered metrics.
pub fn start(
    settings: &WebhookSettings,
    secret: Option<SecretString>,
    shutdown: CancellationToken,
) -> (Webhooks, JoinHandle<()>) {
    start_with_metrics(settings, secret, WebhookMetrics::default(), shutdown)
}

/// Starts one delivery worker per URL of (validated) `settings`, signing with `secret`, and
/// returns the handle to send through and the task that ends once every worker has stopped on
/// `shutdown`. Must be called within a Tokio runtime. Off (a no-op handle, a finished task)
/// when `settings.urls` is empty; also off, with an error logged, when there is no secret or
/// the HTTP client cannot be built (neither happens with validated settings and the secret of
/// [`WebhookSettings::load_secret`]).
pub fn start_with_metrics(
    settings: &WebhookSettings,
    secret: Option<SecretString>,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
) -> (Webhooks, JoinHandle<()>) {
    let off = || (Webhooks::off(), tokio::spawn(async {}));
    if !settings.enabled() {
        return off();
    }
    let Some(secret) = secret else {
        tracing::error!("webhooks.urls is set but no webhooks.secret was given: webhooks off");
        return off();
    };
    let urls = match settings.parsed_urls() {
        Ok(urls) => urls,
        Err(e) => {
            tracing::error!(error = %e, "webhooks off");
            return off();
        }
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("trends-api-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "cannot build the webhook HTTP client: webhooks off");
            return off();
        }
    };
    let deliverer = Deliverer {
        client,
        signer: Signer::new(&secret),
        backoff: Backoff {
            initial: settings.initial_backoff,
            max: settings.max_backoff,
        },
        max_attempts: settings.max_attempts,
        dedup_capacity: settings.dedup_capacity,
        metrics: metrics.clone(),
    };
    let mut workers = JoinSet::new();
    let mut queues = Vec::with_capacity(urls.len());
    for (index, url) in urls.into_iter().enumerate() {
        let origin = settings::origin(&url);
        let queue = Arc::new(Queue::new(
            index,
            origin.clone(),
            settings.queue_capacity,
            metrics.clone(),
        ));
        queues.push(queue.clone());
        tracing::info!(url = %format_args!("webhooks.urls[{index}]"), %origin, "webhook receiver");
        workers.spawn(deliverer.clone().run(url, queue, shutdown.clone()));
    }
    let task = tokio::spawn(async move {
        while let Some(joined) = workers.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "a webhook worker failed");
            }
        }
    });
    let handle = Webhooks {
        inner: Some(Arc::new(Inner { queues, shutdown })),
    };
    (handle, task)
}
