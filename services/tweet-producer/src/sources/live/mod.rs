//! What the network sources (`bluesky`, `mastodon`, `x`) share, written once: the reconnect
//! loop ([`run`]) under a back-off [`Policy`], waiting on the network under an idle timeout
//! and shutdown ([`within`]), HTTP requests and streaming bodies ([`http`]), line and
//! Server-Sent Events framing ([`lines`], [`sse`]), and the tags a source supplies ([`tags`]).
//!
//! Why one loop with a policy: every live source does the same thing around its connection
//! (count the reconnect, wait, stop on shutdown, give up on what retrying cannot fix), and
//! differs only in how long it waits after which failure. Bluesky and Mastodon use the shared
//! exponential back-off with jitter ([`Exponential`], `[source.reconnect]`:
//! [`ReconnectSettings`]), started over once a connection delivered something; X documents
//! its own policy, and keeps it (`crate::sources::x`'s `Backoff`, another [`Policy`]).

pub mod http;
pub mod lines;
pub mod sse;

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::contract::{ReconnectSettings, SourceContext};

/// How one connection attempt ended.
#[derive(Debug)]
pub enum Ended<L> {
    /// Shutdown, or the pipeline is gone: stop.
    Stop,
    /// It will not work by retrying (a refused token, a bad URL): the source fails.
    Fatal(anyhow::Error),
    /// The connection was lost, or never made: retry after the policy's delay for `L`.
    Lost(L),
}

/// How long to wait after a lost connection.
pub trait Policy {
    /// What the policy needs to know of a lost connection.
    type Lost;

    /// The wait before the next attempt.
    fn wait_after(&mut self, lost: Self::Lost) -> Duration;
}

/// One connection of a live source, attempted again and again by [`run`].
pub trait Connection {
    /// What a lost connection tells the policy.
    type Lost;

    /// Connects and reads until the connection ends; `attempt` counts from 1.
    fn attempt(
        &mut self,
        ctx: &SourceContext,
        attempt: u64,
    ) -> impl Future<Output = Ended<Self::Lost>> + Send;
}

/// Runs a live source: attempts its connection, and after each lost one waits what `policy`
/// says (logging `reconnecting` with the delay), until shutdown, the pipeline is gone, or a
/// fatal error. Every attempt after the first counts as a reconnect.
pub async fn run<C, P>(
    connection: &mut C,
    mut policy: P,
    ctx: &SourceContext,
    reconnecting: &str,
) -> anyhow::Result<()>
where
    C: Connection,
    P: Policy<Lost = C::Lost>,
{
    let mut attempt = 0u64;
    loop {
        if attempt > 0 {
            ctx.reconnecting();
        }
        attempt += 1;
        let lost = match connection.attempt(ctx, attempt).await {
            Ended::Stop => return Ok(()),
            Ended::Fatal(error) => return Err(error),
            Ended::Lost(lost) => lost,
        };
        let delay = policy.wait_after(lost);
        tracing::info!(delay_ms = delay.as_millis() as u64, "{reconnecting}");
        let slept = ctx
            .shutdown
            .run_until_cancelled(tokio::time::sleep(delay))
            .await;
        if slept.is_none() {
            return Ok(());
        }
    }
}

/// A connection of the shared exponential policy was lost; `delivered`: it had delivered
/// something first (the back-off starts over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub delivered: bool,
}

/// The shared back-off: exponential from `source.reconnect.min_ms` to `max_ms`, with jitter,
/// started over after a connection that delivered something.
#[derive(Debug)]
pub struct Exponential {
    builder: ExponentialBuilder,
    delays: <ExponentialBuilder as BackoffBuilder>::Backoff,
    max: Duration,
}

impl Exponential {
    pub fn new(settings: &ReconnectSettings) -> Exponential {
        let max = settings.max;
        let builder = ExponentialBuilder::new()
            .with_min_delay(settings.min)
            .with_max_delay(max)
            .with_jitter()
            .without_max_times();
        Exponential {
            builder,
            delays: builder.build(),
            max,
        }
    }
}

impl Policy for Exponential {
    type Lost = Dropped;

    fn wait_after(&mut self, lost: Dropped) -> Duration {
        if lost.delivered {
            self.delays = self.builder.build();
        }
        self.delays.next().unwrap_or(self.max)
    }
}

/// What waiting on the network gave.
#[derive(Debug)]
pub enum Waited<T> {
    Ready(T),
    /// Nothing within the idle timeout: the connection is considered dead.
    Idle,
    /// Shutdown.
    Stop,
}

/// Waits for `next` (a frame, a chunk), at most `idle`, and not past shutdown.
pub async fn within<F: Future>(ctx: &SourceContext, idle: Duration, next: F) -> Waited<F::Output> {
    match ctx
        .shutdown
        .run_until_cancelled(tokio::time::timeout(idle, next))
        .await
    {
        None => Waited::Stop,
        Some(Err(_)) => Waited::Idle,
        Some(Ok(value)) => Waited::Ready(value),
    }
}

/// The hashtags a source supplies, as the raw post contract carries them: a leading `#` or
/// `＃` dropped, empty ones skipped, each once in the order given; `None` when there are none
/// (the aggregator then extracts them from the text).
pub fn tags(supplied: impl IntoIterator<Item = String>) -> Option<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for tag in supplied {
        let tag = tag.trim_start_matches(['#', '＃']);
        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    (!tags.is_empty()).then_some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplied_tags_lose_their_sign_and_repeats_and_keep_their_order() {
        let supplied = ["#Rust", "kafka", "", "＃", "Rust", "＃カフカ", "kafka"];
        assert_eq!(
            tags(supplied.map(String::from)),
            Some(["Rust", "kafka", "カフカ"].map(String::from).to_vec())
        );
        assert_eq!(tags(["#", ""].map(String::from)), None);
        assert_eq!(tags(Vec::new()), None);
    }

    #[test]
    fn the_shared_back_off_grows_to_its_maximum_and_starts_over_after_a_delivery() {
        let mut policy = Exponential::new(&ReconnectSettings {
            min: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        });
        let failed = Dropped { delivered: false };
        let first = policy.wait_after(failed);
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
            "{first:?}"
        );
        for _ in 0..20 {
            assert!(policy.wait_after(failed) <= Duration::from_millis(2_000));
        }
        let again = policy.wait_after(Dropped { delivered: true });
        assert!(
            again <= Duration::from_millis(200),
            "started over: {again:?}"
        );
    }
}
