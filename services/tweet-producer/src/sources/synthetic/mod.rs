//! The `synthetic` source: an endless, seeded stream of multilingual posts with Zipf-distributed
//! hashtags and periodic bursts ([`generator`], over [`vocabulary`], [`lang`] and [`rng`]), at
//! a fixed rate ([`pacing`]) or as fast as the pipeline takes them, until `limit` or shutdown.
//!
//! It has no resume position: a restart starts the sequence over (same seed, same posts).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.synthetic.rate` | `50.0` | posts per second, a finite number ≥ 0; `0` means as fast as the broker takes them |
//! | `source.synthetic.seed` | `42` | seed of the generator: the same seed gives the same posts (except `created_at`, which is the time of generation) |
//! | `source.synthetic.vocabulary` | `400` | number of distinct hashtags, 1–1,000,000; the vocabulary depends only on this number, not on the seed |
//! | `source.synthetic.limit` | `0` | stop (flush, exit 0) after this many posts; `0` runs until SIGTERM/Ctrl-C |
//! | `source.synthetic.burst_every_secs` | `60` | every this many seconds one tag from outside the top 10 bursts; `0` disables bursts |
//! | `source.synthetic.burst_secs` | `15` | how long a burst lasts; at most `burst_every_secs` |

pub mod generator;
pub mod lang;
pub mod pacing;
pub mod rng;
pub mod vocabulary;

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationSeconds, serde_as};
use tokio::time::Instant;
use trends_common::config::ConfigError;
use trends_common::time::now_ms;

use self::generator::{Generator, GeneratorConfig};
use self::pacing::Schedule;
use super::contract::{Source, SourceContext, SourceEvent, SourcePost, SourceTask, Start};
use super::position::Position;

/// The defaults of `[source.synthetic]`.
pub const DEFAULTS: &str = r#"
[source.synthetic]
rate = 50.0
seed = 42
vocabulary = 400
limit = 0
burst_every_secs = 60
burst_secs = 15
"#;

/// The largest vocabulary accepted (the generator keeps it in memory).
pub const MAX_VOCABULARY: usize = 1_000_000;

/// Posts generated between two checks for shutdown when there is no rate limit.
const UNPACED_BATCH: u64 = 512;

/// `[source.synthetic]`: the generator. The burst keys keep their unit in their name
/// (`…_secs`); the fields are typed.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSettings {
    pub rate: f64,
    pub seed: u64,
    pub vocabulary: usize,
    pub limit: u64,
    /// Zero: no bursts.
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "burst_every_secs")]
    pub burst_every: Duration,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "burst_secs")]
    pub burst: Duration,
}

impl Source for SyntheticSettings {
    /// Checked whatever the source: the defaults are valid, so a bad value is a typo.
    fn validate(&self, _selected: bool) -> Result<(), ConfigError> {
        if !self.rate.is_finite() || self.rate < 0.0 {
            return Err(ConfigError(format!(
                "source.synthetic.rate must be a number ≥ 0 (posts per second, 0 = as fast as possible), got {}",
                self.rate
            )));
        }
        if !(1..=MAX_VOCABULARY).contains(&self.vocabulary) {
            return Err(ConfigError(format!(
                "source.synthetic.vocabulary must be within 1..={MAX_VOCABULARY}, got {}",
                self.vocabulary
            )));
        }
        if !self.burst_every.is_zero() && self.burst > self.burst_every {
            return Err(ConfigError(
                "source.synthetic.burst_secs must not exceed source.synthetic.burst_every_secs"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn origin(&self) -> String {
        "synthetic".to_owned()
    }

    fn log_start(&self, topic: &str, _source_key: &str, _start: Option<&Position>) {
        tracing::info!(
            topic,
            rate = self.rate,
            seed = self.seed,
            limit = self.limit,
            "publishing synthetic posts"
        );
    }

    fn start(&self, _from: &Start<'_>, ctx: SourceContext) -> anyhow::Result<SourceTask> {
        let settings = self.clone();
        Ok(Box::pin(async move {
            run(&settings, &ctx).await;
            Ok(())
        }))
    }
}

/// Generates posts on a schedule (or as fast as the pipeline takes them) until the limit or
/// shutdown.
async fn run(settings: &SyntheticSettings, ctx: &SourceContext) {
    let mut generator = Generator::new(GeneratorConfig {
        seed: settings.seed,
        vocabulary: settings.vocabulary,
        burst_every_ms: millis(settings.burst_every),
        burst_ms: millis(settings.burst),
    });
    let limit = if settings.limit == 0 {
        u64::MAX
    } else {
        settings.limit
    };
    let mut schedule = (settings.rate > 0.0).then(|| Schedule::new(settings.rate));
    let start = Instant::now();
    let mut generated = 0u64;
    while generated < limit {
        let due = match schedule.as_mut() {
            None => UNPACED_BATCH,
            Some(schedule) => {
                // The deadline is fixed before waiting.
                let wake = start + schedule.next_wake(start.elapsed());
                let slept = ctx
                    .shutdown
                    .run_until_cancelled(tokio::time::sleep_until(wake))
                    .await;
                if slept.is_none() {
                    return;
                }
                schedule.take_due(start.elapsed())
            }
        };
        for _ in 0..due.min(limit - generated) {
            let next = generator.next_post(now_ms());
            let post = SourcePost::new(next.post, next.event_time);
            if !ctx.emit(SourceEvent::Post(Box::new(post))).await {
                return;
            }
            generated += 1;
        }
    }
}

/// `d` in milliseconds, as the generator's event-time arithmetic takes it.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
