//! Publishing to Kafka with a bounded number of records in flight.
//!
//! Why bounded: awaiting each delivery before sending the next caps throughput at one record
//! per broker round trip; sending without waiting at all lets memory grow without limit when
//! the broker slows down. So deliveries are tracked in a [`FuturesUnordered`] holding at most
//! `max_in_flight` of them: sending waits for the oldest completions only when it is full,
//! which is the back-pressure. librdkafka's own queue full (`QueueFull`) is handled the same
//! way.
//!
//! Why every delivery is checked: a post that was accepted but never written is data loss, so
//! the first failed delivery (after librdkafka's own retries, up to `message.timeout.ms`,
//! default 5 minutes) is an error that stops the service with a non-zero exit, and the
//! orchestrator can restart it.
//!
//! The producer is idempotent with `acks=all`: broker-side retries cannot duplicate or reorder
//! records within a partition. Records are compressed with lz4 and batched for up to 5 ms.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use trends_common::settings::KafkaSettings;
use trends_core::EpochMillis;

/// Counters shared with the progress reporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records handed to the producer.
    pub accepted: AtomicU64,
    /// Records the broker acknowledged.
    pub published: AtomicU64,
}

impl Stats {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

/// A delivery tagged with the sequence number of its record.
struct Tagged {
    seq: u64,
    delivery: DeliveryFuture,
}

impl std::future::Future for Tagged {
    type Output = (u64, DeliveryReport);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let seq = self.seq;
        Pin::new(&mut self.delivery)
            .poll(cx)
            .map(|report| (seq, report))
    }
}

/// One producer, one topic, bounded in-flight deliveries.
///
/// Every record sent gets a sequence number (1, 2, …); [`Publisher::acked_prefix`] says up to
/// which number every record is acknowledged, which is what a live source may store as its
/// resume position (deliveries complete out of order across partitions).
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    in_flight: FuturesUnordered<Tagged>,
    /// Sequence numbers sent and not yet acknowledged.
    pending: BTreeSet<u64>,
    /// Records sent so far (the last sequence number).
    sent: u64,
    max_in_flight: usize,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .field("max_in_flight", &self.max_in_flight)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Creates the producer (it connects lazily).
    pub fn new(
        kafka: &KafkaSettings,
        topic: &str,
        max_in_flight: usize,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Publisher> {
        let producer: FutureProducer = trends_common::kafka::client_config(kafka, "tweet-producer")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .create()
            .context("cannot create the Kafka producer")?;
        Ok(Publisher {
            producer,
            topic: topic.to_owned(),
            in_flight: FuturesUnordered::new(),
            pending: BTreeSet::new(),
            sent: 0,
            max_in_flight: max_in_flight.max(1),
            stats,
        })
    }

    /// Hands one record to the producer, waiting only while `max_in_flight` records are
    /// unacknowledged or librdkafka's queue is full.
    ///
    /// Cancel-safe in the sense that matters: if the future is dropped, the record either was
    /// accepted (and will be flushed by [`Publisher::finish`]) or was not sent at all.
    /// Returns the record's sequence number.
    pub async fn send(
        &mut self,
        key: &str,
        payload: &[u8],
        timestamp: EpochMillis,
    ) -> anyhow::Result<u64> {
        self.reap_ready()?;
        while self.in_flight.len() >= self.max_in_flight {
            self.wait_one().await?;
        }
        let mut record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.sent += 1;
                    let seq = self.sent;
                    self.in_flight.push(Tagged { seq, delivery });
                    self.pending.insert(seq);
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    return Ok(seq);
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    // Field by field: `record` borrows `self.topic`.
                    match self.in_flight.next().await {
                        Some((seq, report)) => {
                            check(&self.stats, report)?;
                            self.pending.remove(&seq);
                        }
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(anyhow!(e).context(format!("cannot send post {key}"))),
            }
        }
    }

    /// Waits for the next delivery report; `None` when nothing is in flight. Cancel-safe.
    /// Lets a caller that is idle (waiting for the next batch) notice failures promptly.
    pub async fn next_delivery(&mut self) -> Option<anyhow::Result<()>> {
        let report = self.in_flight.next().await?;
        Some(self.check(report))
    }

    /// The highest sequence number `n` such that records 1..=n are all acknowledged.
    pub fn acked_prefix(&self) -> u64 {
        self.pending
            .first()
            .map_or(self.sent, |first| first.saturating_sub(1))
    }

    /// The sequence number of the last record sent (0 before any).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Records in flight (accepted, not yet acknowledged).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Flushes and waits for every outstanding delivery, at most `timeout`. Fails if a
    /// delivery failed or some records are still unacknowledged at the deadline.
    /// Returns the acknowledged prefix ([`Publisher::acked_prefix`]) at the end.
    pub async fn finish(mut self, timeout: Duration) -> anyhow::Result<u64> {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .context("the flush task panicked")?;
        // After a successful flush every report is ready; after a timed-out one, whatever
        // arrived is still checked, so a delivery error is reported rather than the timeout.
        while let Some(report) = self.in_flight.next().now_or_never().flatten() {
            self.check(report)?;
        }
        if let Err(e) = flushed {
            bail!(
                "{} posts were not acknowledged within {timeout:?} of stopping: {e}",
                self.in_flight.len()
            );
        }
        // Reports may trail the flush by a moment; they do not get another full timeout.
        let drain = async {
            while let Some(report) = self.in_flight.next().await {
                self.check(report)?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .context("delivery reports did not arrive after the flush")??;
        Ok(self.acked_prefix())
    }

    /// Checks the reports that have already arrived, without waiting.
    fn reap_ready(&mut self) -> anyhow::Result<()> {
        while let Some(Some(report)) = self.in_flight.next().now_or_never() {
            self.check(report)?;
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> anyhow::Result<()> {
        match self.in_flight.next().await {
            Some(report) => self.check(report),
            None => Ok(()),
        }
    }

    fn check(&mut self, (seq, report): (u64, DeliveryReport)) -> anyhow::Result<()> {
        check(&self.stats, report)?;
        self.pending.remove(&seq);
        Ok(())
    }
}

/// What a [`DeliveryFuture`] resolves to.
type DeliveryReport = <DeliveryFuture as std::future::Future>::Output;

/// Counts a successful delivery; turns a failed one into an error naming the post.
fn check(stats: &Stats, report: DeliveryReport) -> anyhow::Result<()> {
    match report {
        Ok(Ok(_delivery)) => {
            stats.published.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(Err((e, message))) => {
            let key = message
                .key()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Err(anyhow!(e).context(format!(
                "delivery of post {key} to {} failed",
                message.topic()
            )))
        }
        Err(_canceled) => bail!("the producer dropped a delivery report"),
    }
}
