//! The webhook metrics (prefix `trends_api_webhook_`), summed over all URLs: a URL is not a
//! label, because a webhook URL often holds a secret in its path and `/metrics` is public.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `trends_api_webhook_attempts_total` | counter | POSTs sent (first attempts and retries) |
//! | `trends_api_webhook_delivered_total` | counter | events a URL acknowledged with a 2xx |
//! | `trends_api_webhook_retries_total` | counter | attempts that failed and were scheduled again (connection error, timeout, 429, 5xx) |
//! | `trends_api_webhook_rejected_total` | counter | events a URL refused with a 3xx or 4xx other than 429: not retried |
//! | `trends_api_webhook_failed_total` | counter | events given up after `webhooks.max_attempts` |
//! | `trends_api_webhook_dropped_total` | counter | events dropped, oldest first, from a full queue (`webhooks.queue_capacity`) |
//! | `trends_api_webhook_duplicates_total` | counter | events not sent because their id was already delivered to that URL |
//! | `trends_api_webhook_undelivered_at_shutdown_total` | counter | events still queued or in flight when the API stopped |
//! | `trends_api_webhook_queued` | gauge | events waiting, all URLs together |

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Handles to the webhook series. `Default` gives unregistered ones (they count all the same:
/// tests read them).
#[derive(Debug, Clone, Default)]
pub struct WebhookMetrics {
    pub(super) attempts: Counter,
    pub(super) delivered: Counter,
    pub(super) retries: Counter,
    pub(super) rejected: Counter,
    pub(super) failed: Counter,
    pub(super) dropped: Counter,
    pub(super) duplicates: Counter,
    pub(super) undelivered_at_shutdown: Counter,
    pub(super) queued: Gauge,
}

impl WebhookMetrics {
    /// Registers every series on `registry` (the API's, prefixed `trends_api`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = WebhookMetrics::default();
        let counters = [
            (
                "webhook_attempts",
                "Webhook POSTs sent, retries included",
                &metrics.attempts,
            ),
            (
                "webhook_delivered",
                "Webhook events acknowledged with a 2xx",
                &metrics.delivered,
            ),
            (
                "webhook_retries",
                "Webhook attempts that failed and were scheduled again",
                &metrics.retries,
            ),
            (
                "webhook_rejected",
                "Webhook events refused with a 3xx or a 4xx other than 429 (not retried)",
                &metrics.rejected,
            ),
            (
                "webhook_failed",
                "Webhook events given up after webhooks.max_attempts",
                &metrics.failed,
            ),
            (
                "webhook_dropped",
                "Webhook events dropped from a full queue, oldest first",
                &metrics.dropped,
            ),
            (
                "webhook_duplicates",
                "Webhook events not sent again to a URL that had acknowledged their id",
                &metrics.duplicates,
            ),
            (
                "webhook_undelivered_at_shutdown",
                "Webhook events still queued or in flight at shutdown",
                &metrics.undelivered_at_shutdown,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "webhook_queued",
            "Webhook events waiting, all URLs together",
            metrics.queued.clone(),
        );
        metrics
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.get()
    }
    pub fn delivered(&self) -> u64 {
        self.delivered.get()
    }
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }
    pub fn rejected(&self) -> u64 {
        self.rejected.get()
    }
    pub fn failed(&self) -> u64 {
        self.failed.get()
    }
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
    pub fn duplicates(&self) -> u64 {
        self.duplicates.get()
    }
    pub fn undelivered_at_shutdown(&self) -> u64 {
        self.undelivered_at_shutdown.get()
    }
    pub fn queued(&self) -> i64 {
        self.queued.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_exposed_under_the_api_prefix() {
        let mut registry = Registry::with_prefix("trends_api");
        let metrics = WebhookMetrics::register(&mut registry);
        metrics.delivered.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for series in [
            "trends_api_webhook_attempts_total 0",
            "trends_api_webhook_delivered_total 1",
            "trends_api_webhook_retries_total 0",
            "trends_api_webhook_rejected_total 0",
            "trends_api_webhook_failed_total 0",
            "trends_api_webhook_dropped_total 0",
            "trends_api_webhook_duplicates_total 0",
            "trends_api_webhook_undelivered_at_shutdown_total 0",
            "trends_api_webhook_queued 0",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }
}
