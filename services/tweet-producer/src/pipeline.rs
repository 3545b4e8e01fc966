//! The publisher side of the source channel: dedup, filters, publish, resume positions.
//!
//! Why one place: every source gets the same dedup ([`Dedup`]), the same filters ([`Filters`]),
//! the same counters and the same rule for resume positions: a position is stored only when
//! Kafka acknowledged every post up to it ([`CursorTracker`]), at most once per
//! [`CURSOR_INTERVAL`], and once more after the final flush.
//!
//! The channel from the source is bounded and this loop takes from it only after
//! [`Publisher::send`] returned, which waits while too many records are unacknowledged: a slow
//! broker therefore stops this loop, which fills the channel, which stops the source.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cursor::{CursorStore, CursorTracker};
use crate::dedup::Dedup;
use crate::filter::{Drop, Filters};
use crate::metrics::{Metrics, inc};
use crate::publisher::Publisher;
use crate::source::{SourceEvent, SourcePost};

/// How often, at most, the resume position is written.
pub const CURSOR_INTERVAL: Duration = Duration::from_secs(1);

/// Dedup, filters and resume positions between a source and the publisher.
#[derive(Debug)]
pub struct Pipeline {
    dedup: Dedup,
    filters: Filters,
    metrics: Arc<Metrics>,
    cursor: Option<CursorStore>,
    tracker: CursorTracker,
    stored: Option<i64>,
}

impl Pipeline {
    pub fn new(
        dedup: Dedup,
        filters: Filters,
        metrics: Arc<Metrics>,
        cursor: Option<CursorStore>,
    ) -> Pipeline {
        Pipeline {
            dedup,
            filters,
            metrics,
            cursor,
            tracker: CursorTracker::default(),
            stored: None,
        }
    }

    /// Publishes what the source sends until the channel closes (the source ended) or
    /// `shutdown`. Fails on a failed delivery or an unwritable cursor file.
    pub async fn run(
        &mut self,
        rx: &mut mpsc::Receiver<SourceEvent>,
        publisher: &mut Publisher,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(CURSOR_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let persist = self.cursor.is_some();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                // Failures surface while idle too, not only at the next send.
                Some(report) = publisher.next_delivery() => report?,
                _ = tick.tick(), if persist => self.checkpoint(publisher.acked_prefix()).await?,
                event = rx.recv() => match event {
                    None => return Ok(()),
                    Some(SourceEvent::Position(position)) => {
                        self.tracker.push(publisher.sent(), position);
                    }
                    Some(SourceEvent::Post(post)) => {
                        if !self.publish(post, publisher, shutdown).await? {
                            return Ok(());
                        }
                    }
                },
            }
        }
    }

    /// Dedups, filters and sends one post; `false` if shutdown interrupted the send.
    async fn publish(
        &mut self,
        post: Box<SourcePost>,
        publisher: &mut Publisher,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let post = *post;
        let keep = if !self.dedup.first_time(&post.post.id) {
            inc(&self.metrics.duplicates);
            false
        } else {
            match self
                .filters
                .check(&post.post.text, post.post.lang.as_deref())
            {
                Ok(()) => true,
                Err(Drop::Keyword) => {
                    inc(&self.metrics.filtered_keyword);
                    false
                }
                Err(Drop::Language) => {
                    inc(&self.metrics.filtered_language);
                    false
                }
            }
        };
        if !keep {
            if let Some(position) = post.position {
                self.tracker.push(publisher.sent(), position);
            }
            return Ok(true);
        }
        let payload = match post.payload {
            Some(bytes) => bytes,
            None => serde_json::to_vec(&post.post).context("cannot serialize a post")?,
        };
        let seq = tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            sent = publisher.send(&post.post.id, &payload, post.event_time) => sent?,
        };
        if let Some(position) = post.position {
            self.tracker.push(seq, position);
        }
        Ok(true)
    }

    /// Stores the latest durable position if it changed (`acked`: the publisher's
    /// acknowledged prefix).
    pub async fn checkpoint(&mut self, acked: u64) -> anyhow::Result<()> {
        let Some(store) = self.cursor.clone() else {
            return Ok(());
        };
        let Some(durable) = self.tracker.advance(acked) else {
            return Ok(());
        };
        if self.stored == Some(durable) {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || store.store(durable))
            .await
            .context("the cursor writer panicked")??;
        self.stored = Some(durable);
        Ok(())
    }

    /// The last position written.
    pub fn stored(&self) -> Option<i64> {
        self.stored
    }
}
