//! The publisher side of the source channel: resume filter, dedup ([`dedup`]), filters
//! ([`filter`]), size limit, publish, and one transaction per commit interval holding the posts
//! and the position, written to the offsets topic ([`offsets`]).
//!
//! Why one place: every source gets the same dedup ([`Dedup`]), the same filters
//! ([`Filters`]), the same limit on a record's size, the same counters and the same rule for
//! positions ([`Tracker`]): an event moves the position once it is handled (its post queued in
//! the open transaction, or dropped for a reason that holds on a replay), and every
//! [`PipelineOptions::commit_interval`] (or [`PipelineOptions::commit_max_posts`] posts,
//! whichever comes first) one transaction commits the posts sent since the last commit
//! together with the position reached. So the committed position always covers exactly the
//! committed posts.
//!
//! The channel from the source is bounded and this loop takes from it only after
//! [`Publisher::send`] returned, which waits while too many records are undelivered: a slow
//! broker therefore stops this loop, which fills the channel, which stops the source.
//!
//! Oversized posts: a post whose record (key + value) is over `source.max_post_bytes` (or what
//! the topic accepts) is skipped, counted (`trends_producer_events_oversized_total`) and logged
//! with its id and size, and the position moves past it. Sending it would fail the
//! transaction, and the restart would meet it again: a crash loop.

pub mod dedup;
pub mod filter;
pub mod offsets;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::dedup::Dedup;
use self::filter::{Drop, Filters};
use crate::metrics::Metrics;
use crate::publisher::{Publisher, Sent};
use crate::sources::position::{Mark, Position, ResumeFilter, Tracker};
use crate::sources::{SourceEvent, SourcePost};

/// How a pipeline commits and what it accepts.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Commit at least this often while posts or a new position are pending.
    pub commit_interval: Duration,
    /// Commit as soon as a transaction holds this many posts.
    pub commit_max_posts: u64,
    /// The largest record (key + value) sent; larger posts are skipped and counted.
    pub max_record_bytes: usize,
    /// The offsets topic and this source's key in it.
    pub offsets_topic: String,
    pub source_key: String,
}

/// Resume filter, dedup, filters and positions between a source and the publisher.
#[derive(Debug)]
pub struct Pipeline {
    dedup: Dedup,
    filters: Filters,
    metrics: Arc<Metrics>,
    tracker: Tracker,
    resume: Option<ResumeFilter>,
    options: PipelineOptions,
    /// The last position committed.
    committed: Option<Position>,
}

impl Pipeline {
    /// `start`: the position loaded from the offsets topic (the source resumes from it).
    pub fn new(
        dedup: Dedup,
        filters: Filters,
        metrics: Arc<Metrics>,
        start: Option<Position>,
        options: PipelineOptions,
    ) -> Pipeline {
        Pipeline {
            dedup,
            filters,
            metrics,
            resume: ResumeFilter::new(start.as_ref()),
            committed: start.clone(),
            tracker: Tracker::new(start),
            options,
        }
    }

    /// Publishes what the source sends until the channel closes (the source ended) or
    /// `shutdown`, committing every interval, then commits what is left. Fails on any
    /// transaction error; the caller then aborts and exits.
    pub async fn run(
        &mut self,
        rx: &mut mpsc::Receiver<SourceEvent>,
        publisher: &mut Publisher,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(self.options.commit_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                // Failures surface while idle too, not only at the next commit.
                Some(report) = publisher.next_delivery() => report?,
                _ = tick.tick() => self.commit(publisher).await?,
                event = rx.recv() => match event {
                    None => break,
                    Some(SourceEvent::Position(mark)) => self.tracker.observe(mark, None),
                    Some(SourceEvent::Post(post)) => {
                        if !self.publish(*post, publisher, shutdown).await? {
                            break;
                        }
                        if publisher.pending_posts() >= self.options.commit_max_posts {
                            self.commit(publisher).await?;
                            tick.reset();
                        }
                    }
                },
            }
        }
        self.commit(publisher).await
    }

    /// Resume filter, dedup, filters, size check, send; `false` if shutdown interrupted the
    /// send (the post was not sent, and the position did not move past it).
    async fn publish(
        &mut self,
        post: SourcePost,
        publisher: &mut Publisher,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let id = post.post.id.as_str();
        let repeated = match (&mut self.resume, post.position) {
            (Some(resume), Some(mark)) => resume.already_published(mark, id),
            _ => false,
        };
        if repeated || !self.dedup.first_time(id) {
            self.metrics.duplicates.inc();
            return Ok(self.handled(post.position, None));
        }
        match self
            .filters
            .check(&post.post.text, post.post.lang.as_deref())
        {
            Ok(()) => {}
            Err(Drop::Keyword) => {
                self.metrics.filtered_keyword.inc();
                return Ok(self.handled(post.position, None));
            }
            Err(Drop::Language) => {
                self.metrics.filtered_language.inc();
                return Ok(self.handled(post.position, None));
            }
        }
        let payload = match &post.payload {
            Some(bytes) => std::borrow::Cow::Borrowed(bytes.as_slice()),
            None => std::borrow::Cow::Owned(
                serde_json::to_vec(&post.post).context("cannot serialize a post")?,
            ),
        };
        // Keyed by author, so all of an author's posts land on one partition and the
        // aggregator's per-partition author counts add up exactly (trends_core::trend_track);
        // a post without an author is its own.
        let key = post.post.author_id.as_deref().unwrap_or(id);
        let size = key.len() + payload.len();
        if size > self.options.max_record_bytes {
            self.metrics.oversized.inc();
            tracing::warn!(
                id = shorten(id),
                bytes = size,
                limit = self.options.max_record_bytes,
                "skipping a post over the size limit (source.max_post_bytes)"
            );
            return Ok(self.handled(post.position, None));
        }
        let Some(sent) = shutdown
            .run_until_cancelled(publisher.send(key, &payload))
            .await
        else {
            return Ok(false);
        };
        let sent = sent?;
        match sent {
            Sent::Queued => Ok(self.handled(post.position, Some(id))),
            Sent::Refused(code) => {
                if matches!(
                    code,
                    rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge
                        | rdkafka::types::RDKafkaErrorCode::InvalidMessageSize
                ) {
                    self.metrics.oversized.inc();
                } else {
                    self.metrics.malformed.inc();
                }
                tracing::warn!(
                    id = shorten(id),
                    bytes = size,
                    error = %code,
                    "skipping a post Kafka refuses"
                );
                Ok(self.handled(post.position, None))
            }
        }
    }

    /// Moves the position past an event; `published`: its post is in the open transaction.
    fn handled(&mut self, mark: Option<Mark>, published: Option<&str>) -> bool {
        if let Some(mark) = mark {
            self.tracker.observe(mark, published);
        }
        true
    }

    /// Commits the open transaction with the position reached, if anything changed.
    pub async fn commit(&mut self, publisher: &mut Publisher) -> anyhow::Result<()> {
        let position = self.tracker.take_changed();
        let value = position.as_ref().map(Position::encode);
        let record = value
            .as_deref()
            .map(|value| (self.options.source_key.as_str(), value));
        publisher
            .commit(record, &self.options.offsets_topic)
            .await?;
        if position.is_some() {
            self.committed = position;
        }
        Ok(())
    }

    /// The last position committed (or loaded at start).
    pub fn committed(&self) -> Option<&Position> {
        self.committed.as_ref()
    }
}

/// At most 200 bytes of an id for a log line (ids come from the network).
fn shorten(id: &str) -> &str {
    let mut end = id.len().min(200);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_logs_are_cut_on_a_character_boundary() {
        assert_eq!(shorten("bsky:a/b"), "bsky:a/b");
        let long = "é".repeat(150);
        let cut = shorten(&long);
        assert!(cut.len() <= 200 && long.starts_with(cut));
        assert_eq!(cut.chars().count(), 100);
    }
}
