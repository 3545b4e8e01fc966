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
//! | `source.synthetic.scenario` | `"none"` | `"trend-quality"`: instead of the endless stream, replay the scripted scenario of [`scenario`] (steady giants, daily cycles, organic bursts, spam floods, slow risers over a background) with `created_at` from now − `scenario_days` days onwards, compressed: as fast as `rate` allows (`0`: as fast as the broker takes them), then stop like at `limit`. `seed` and `vocabulary` apply; the burst keys do not |
//! | `source.synthetic.scenario_days` | `3` | simulated days of the scenario, 2–30 (the first is history for the baseline) |

pub mod generator;
pub mod lang;
pub mod pacing;
pub mod rng;
pub mod scenario;
pub mod vocabulary;

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationSeconds, serde_as};
use tokio::time::Instant;
use trends_common::config::ConfigError;
use trends_common::time::now_ms;

use self::generator::{Generator, GeneratorConfig};
use self::pacing::Schedule;
use self::scenario::{Scenario, ScenarioConfig};
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
scenario = "none"
scenario_days = 3
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
    /// `"none"` or [`scenario::TREND_QUALITY`].
    pub scenario: String,
    pub scenario_days: u32,
}

impl SyntheticSettings {
    /// The scenario's config from these settings.
    fn scenario_config(&self) -> ScenarioConfig {
        ScenarioConfig {
            seed: self.seed,
            days: self.scenario_days,
            vocabulary: self.vocabulary,
            ..ScenarioConfig::default()
        }
    }
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
        if self.scenario != "none" && self.scenario != scenario::TREND_QUALITY {
            return Err(ConfigError(format!(
                "source.synthetic.scenario must be \"none\" or \"{}\", got {:?}",
                scenario::TREND_QUALITY,
                self.scenario
            )));
        }
        if let Err(e) = self.scenario_config().check() {
            return Err(ConfigError(format!("source.synthetic.scenario_days: {e}")));
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
            scenario = %self.scenario,
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
    let mut next_post = posts(settings);
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
            let Some((post, event_time)) = next_post(now_ms()) else {
                return;
            };
            let post = SourcePost::new(post, event_time);
            if !ctx.emit(SourceEvent::Post(Box::new(post))).await {
                return;
            }
            generated += 1;
        }
    }
}

/// The posts: the endless generator, or the scenario (ends after its last post).
type Posts = Box<dyn FnMut(i64) -> Option<(trends_core::post::RawPost, i64)> + Send>;

fn posts(settings: &SyntheticSettings) -> Posts {
    if settings.scenario == scenario::TREND_QUALITY {
        let config = settings.scenario_config();
        let start = now_ms() - i64::from(config.days) * 86_400_000;
        let mut scenario = Scenario::new(&config, start);
        return Box::new(move |_| scenario.next_post().map(|p| (p.post, p.event_time)));
    }
    let mut generator = Generator::new(GeneratorConfig {
        seed: settings.seed,
        vocabulary: settings.vocabulary,
        burst_every_ms: millis(settings.burst_every),
        burst_ms: millis(settings.burst),
    });
    Box::new(move |now| {
        let next = generator.next_post(now);
        Some((next.post, next.event_time))
    })
}

/// `d` in milliseconds, as the generator's event-time arithmetic takes it.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scenario: &str, days: u32) -> SyntheticSettings {
        serde_json::from_value(serde_json::json!({
            "rate": 0.0, "seed": 1, "vocabulary": 50, "limit": 0,
            "burst_every_secs": 60, "burst_secs": 15,
            "scenario": scenario, "scenario_days": days,
        }))
        .expect("a valid section")
    }

    #[test]
    fn the_scenario_keys_are_checked_by_name() {
        assert!(settings("none", 3).validate(true).is_ok());
        assert!(settings(scenario::TREND_QUALITY, 2).validate(true).is_ok());
        let bad = settings("trendy", 3)
            .validate(true)
            .expect_err("unknown scenario");
        assert!(bad.0.contains("source.synthetic.scenario"), "{}", bad.0);
        let bad = settings(scenario::TREND_QUALITY, 1)
            .validate(true)
            .expect_err("one day");
        assert!(
            bad.0.contains("source.synthetic.scenario_days"),
            "{}",
            bad.0
        );
    }

    /// The scenario source ends after the scenario's last post; the generator never does.
    #[test]
    fn the_scenario_replays_from_days_ago_and_ends() {
        let mut next = posts(&settings(scenario::TREND_QUALITY, 2));
        let now = now_ms();
        let (_, first) = next(0).expect("a first post");
        assert!(
            (first - (now - 2 * 86_400_000)).abs() < 60_000,
            "{first} vs {now}"
        );
        let mut generator = posts(&settings("none", 3));
        assert_eq!(generator(now).map(|(_, t)| t), Some(now));
    }
}
