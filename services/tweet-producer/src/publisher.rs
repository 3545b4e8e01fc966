//! Publishing to Kafka in transactions, with a bounded number of records in flight.
//!
//! **Transactions** (why): a post and the source position that covers it must become durable
//! together, or a crash repeats or loses posts. So the producer is transactional
//! (`transactional.id` stable per source, see [`crate::settings::Settings::transactional_id`]);
//! [`Publisher::commit`] writes the position record into the open transaction and commits it.
//! Readers with `read_committed` (the aggregator) see a transaction's posts whole or not at all.
//! A restarted producer with the same id fences its predecessor at `init_transactions`, which
//! also aborts the transaction the predecessor left open.
//!
//! **Failure policy** (like the aggregator's): any transaction error (a failed delivery, a
//! commit that fails, a fenced producer) is returned; the service aborts what it can and exits
//! non-zero, and the restart resumes from the committed position. There is no in-process
//! recovery path. A failed delivery of a record makes its transaction's commit fail, so the
//! commit is the delivery check. Blocking calls (`init_transactions`, `commit_transaction`,
//! `abort_transaction`) run on tokio's blocking pool under a deadline ([`CALL_TIMEOUT`] plus a
//! grace), so a call librdkafka never returns from ends the run instead of hanging it.
//!
//! **One record's content is never fatal**: a record librdkafka refuses synchronously because
//! of what it is (too large, invalid) is returned as [`Sent::Refused`], and the pipeline skips
//! and counts it; such a record was never queued, so the transaction is unaffected.
//!
//! **Back-pressure** (why bounded): sending without waiting lets memory grow without limit when
//! the broker slows down. Deliveries are tracked in a [`FuturesUnordered`] of at most
//! `max_in_flight`; sending waits for completions when it is full, and when librdkafka's queue
//! (bounded in bytes, [`QUEUE_MAX_KBYTES`]) is full. The pipeline awaits each send, so a slow
//! broker stops the pipeline, which fills the source channel, which stops the source.
//!
//! Records: key = the post's author (the post id when it has none: all of an author's posts
//! land in the same partition, which makes the trend track's author counts exact), value = the JSON, no
//! timestamp (librdkafka stamps the producer's clock; the `tweets` topic, created with
//! `LogAppendTime`, replaces it with the broker's). lz4, batched for up to 5 ms, `acks=all`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use trends_common::settings::KafkaSettings;

use crate::metrics::Metrics;

/// The timeout given to each blocking transactional call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long past [`CALL_TIMEOUT`] a blocking call may run before the run fails without it.
const CALL_GRACE: Duration = Duration::from_secs(30);
/// The broker aborts a transaction left open longer (a producer that died mid-transaction and
/// never came back).
pub const TRANSACTION_TIMEOUT_MS: u32 = 60_000;
/// librdkafka's queue of records not yet delivered, bounded in bytes (it defaults to 1 GiB).
pub const QUEUE_MAX_KBYTES: u32 = 64 * 1024;

/// What became of a record handed to [`Publisher::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued in the open transaction.
    Queued,
    /// Refused for its content ([`refused_for_content`]); never queued.
    Refused(RDKafkaErrorCode),
}

/// `true` for synchronous produce errors caused by the record itself, which would fail again
/// however often it is sent: skip it, never stop for it.
pub fn refused_for_content(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::BadMessage
    )
}

/// What a delivery future resolves to.
type DeliveryReport = <DeliveryFuture as std::future::Future>::Output;

/// One transactional producer, one topic of posts, bounded in-flight deliveries.
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    in_flight: FuturesUnordered<DeliveryFuture>,
    max_in_flight: usize,
    in_transaction: bool,
    /// Posts sent in the open transaction.
    pending_posts: u64,
    /// `accepted` on every queued post; `published` and `transactions` on every commit.
    metrics: Arc<Metrics>,
    /// `messaging_client_sent_messages_total` of the posts topic.
    sent: prometheus_client::metrics::counter::Counter,
    /// `messaging_client_operation_duration_seconds` of its commits.
    commit_duration: prometheus_client::metrics::histogram::Histogram,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .field("max_in_flight", &self.max_in_flight)
            .field("in_transaction", &self.in_transaction)
            .field("pending_posts", &self.pending_posts)
            .finish_non_exhaustive()
    }
}

/// Options of the producer beyond the connection.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    pub transactional_id: String,
    pub max_in_flight: usize,
    /// librdkafka's `batch.size`: at most the target topic's limit, so that a batch of small
    /// records never exceeds what the topic accepts.
    pub batch_bytes: usize,
}

impl Publisher {
    /// Creates the producer and initializes its transactions: fences any predecessor with the
    /// same `transactional.id` and aborts the transaction it left open.
    pub async fn start(
        kafka: &KafkaSettings,
        topic: &str,
        options: &PublisherOptions,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Publisher> {
        let producer: FutureProducer = trends_common::kafka::client_config(kafka, "tweet-producer")
            .set("transactional.id", &options.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("batch.size", options.batch_bytes.max(1).to_string())
            .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES.to_string())
            .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS.to_string())
            // The first record after a commit waits for the broker to finish the previous
            // transaction (CONCURRENT_TRANSACTIONS, retried after this back-off, exponential up
            // to retry.backoff.max.ms). At librdkafka's 100 ms a commit every 100 ms cut the
            // throughput of a debug build from 6,298 to 2,509 posts/s.
            .set("retry.backoff.ms", "10")
            .create()
            .context("cannot create the Kafka producer")?;
        let init = producer.clone();
        blocking("init transactions", move || {
            init.init_transactions(CALL_TIMEOUT)
        })
        .await?;
        Ok(Publisher {
            producer,
            topic: topic.to_owned(),
            sent: metrics.messaging.sent(topic),
            commit_duration: metrics.messaging.operation("commit", topic),
            in_flight: FuturesUnordered::new(),
            max_in_flight: options.max_in_flight.max(1),
            in_transaction: false,
            pending_posts: 0,
            metrics,
        })
    }

    /// Hands one post to the open transaction (beginning one if needed), waiting only while
    /// `max_in_flight` records are undelivered or librdkafka's queue is full.
    ///
    /// Cancel-safe: if the future is dropped, the record either was queued (and the next
    /// commit covers it) or was not sent at all.
    pub async fn send(&mut self, key: &str, payload: &[u8]) -> anyhow::Result<Sent> {
        let topic = self.topic.clone();
        // A sampled post's trace starts here and travels in the record's headers
        // (trends_common::trace_context); nothing is made when tracing is off.
        let traced = if trends_common::trace_context::enabled() {
            trends_common::trace_context::start_producer_span(&topic)
        } else {
            None
        };
        let (_span, headers) = match traced {
            Some((span, headers)) => (Some(span), Some(headers)),
            None => (None, None),
        };
        let sent = self.send_to(&topic, key, Some(payload), headers).await?;
        if sent == Sent::Queued {
            self.pending_posts += 1;
            self.metrics.accepted.inc();
        }
        Ok(sent)
    }

    async fn send_to(
        &mut self,
        topic: &str,
        key: &str,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> anyhow::Result<Sent> {
        self.reap_ready()?;
        while self.in_flight.len() >= self.max_in_flight {
            self.wait_one().await?;
        }
        if !self.in_transaction {
            self.producer
                .begin_transaction()
                .context("cannot begin a transaction")?;
            self.in_transaction = true;
        }
        let mut record = FutureRecord::<str, [u8]>::to(topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push(delivery);
                    return Ok(Sent::Queued);
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.wait_one().await?;
                    }
                }
                Err((KafkaError::MessageProduction(code), _)) if refused_for_content(code) => {
                    return Ok(Sent::Refused(code));
                }
                Err((e, _)) => {
                    return Err(anyhow!(e).context(format!("cannot send record {key} to {topic}")));
                }
            }
        }
    }

    /// Commits the open transaction, first adding `position` (key, value) to `offsets_topic`
    /// when given; with no open transaction and no position it does nothing. Returns the number
    /// of posts committed. On error the transaction is left for [`Publisher::abort`].
    pub async fn commit(
        &mut self,
        position: Option<(&str, &[u8])>,
        offsets_topic: &str,
    ) -> anyhow::Result<u64> {
        if let Some((key, value)) = position {
            match self.send_to(offsets_topic, key, Some(value), None).await? {
                Sent::Queued => {}
                Sent::Refused(code) => {
                    bail!("the position record of {key} was refused: {code}")
                }
            }
        }
        if !self.in_transaction {
            return Ok(0);
        }
        // Every delivery first, so a failed one is reported as itself rather than as a less
        // specific commit error. And it is faster: rdkafka's `commit_transaction` flushes
        // first, and its flush polls in 100 ms slices that never end early (rdkafka ≥ 0.38),
        // so with anything still in flight every commit waited 100 ms more (the aggregator's
        // `Engine::flush` has the measurements). With nothing in flight it returns at once.
        let started = std::time::Instant::now();
        let drain = async {
            while let Some(report) = self.in_flight.next().await {
                check(report)?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(CALL_TIMEOUT, drain)
            .await
            .context("delivery reports did not arrive before the commit")??;
        let producer = self.producer.clone();
        // rdkafka flushes (nothing is left) before committing (up to the timeout).
        blocking_within(
            "commit transaction",
            2 * CALL_TIMEOUT + CALL_GRACE,
            move || producer.commit_transaction(CALL_TIMEOUT),
        )
        .await?;
        self.in_transaction = false;
        let committed = std::mem::take(&mut self.pending_posts);
        self.metrics.published.inc_by(committed);
        self.sent.inc_by(committed);
        self.commit_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.transactions.inc();
        Ok(committed)
    }

    /// Aborts the open transaction, if any: its records never become visible. Best effort on
    /// the way out (a fenced producer cannot abort; the broker aborts for it).
    pub async fn abort(&mut self) -> anyhow::Result<()> {
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        self.pending_posts = 0;
        let producer = self.producer.clone();
        let result = blocking("abort transaction", move || {
            producer.abort_transaction(CALL_TIMEOUT)
        })
        .await;
        self.in_flight = FuturesUnordered::new();
        result
    }

    /// Waits for the next delivery report; `None` when nothing is in flight. Cancel-safe.
    /// Lets an idle caller notice a failed delivery promptly instead of at the next commit.
    pub async fn next_delivery(&mut self) -> Option<anyhow::Result<()>> {
        let report = self.in_flight.next().await?;
        Some(check(report))
    }

    /// Posts sent in the open transaction.
    pub fn pending_posts(&self) -> u64 {
        self.pending_posts
    }

    /// Records in flight (queued, not yet delivered).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Checks the reports that have already arrived, without waiting.
    fn reap_ready(&mut self) -> anyhow::Result<()> {
        while let Some(Some(report)) = self.in_flight.next().now_or_never() {
            check(report)?;
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> anyhow::Result<()> {
        match self.in_flight.next().await {
            Some(report) => check(report),
            None => Ok(()),
        }
    }
}

/// Turns a failed delivery into an error naming the record.
fn check(report: DeliveryReport) -> anyhow::Result<()> {
    match report {
        Ok(Ok(_delivery)) => Ok(()),
        Ok(Err((e, message))) => {
            let key = message
                .key()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Err(anyhow!(e).context(format!(
                "delivery of record {key} to {} failed",
                message.topic()
            )))
        }
        Err(_canceled) => bail!("the producer dropped a delivery report"),
    }
}

/// Runs a blocking librdkafka call on the blocking pool; fails if it errs, or has not returned
/// [`CALL_GRACE`] after [`CALL_TIMEOUT`].
async fn blocking(
    what: &'static str,
    call: impl FnOnce() -> KafkaResult<()> + Send + 'static,
) -> anyhow::Result<()> {
    blocking_within(what, CALL_TIMEOUT + CALL_GRACE, call).await
}

async fn blocking_within(
    what: &'static str,
    limit: Duration,
    call: impl FnOnce() -> KafkaResult<()> + Send + 'static,
) -> anyhow::Result<()> {
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(call)).await {
        Err(_) => bail!("{what} did not return within {limit:?}"),
        Ok(Err(join)) => Err(anyhow!("{what} panicked: {join}")),
        Ok(Ok(result)) => result.with_context(|| what.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_errors_are_skipped() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::InvalidMessageSize,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert!(refused_for_content(code), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::Fatal,
            RDKafkaErrorCode::State,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::ProducerFenced,
        ] {
            assert!(!refused_for_content(code), "{code:?}");
        }
    }
}
