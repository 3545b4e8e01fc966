//! X's documented reconnect policy (`[source.x.backoff]`), kept instead of the shared one.
//!
//! An established connection that drops is reconnected at once; then network errors
//! (refused, reset, the idle timeout without even a keep-alive) back off linearly, 250 ms more
//! per attempt up to 16 s; HTTP errors (5xx and the like) exponentially from 5 s, doubling up to
//! 320 s; a 429 waits until the `x-rate-limit-reset` time when the response gives one in the
//! future, else exponentially from 1 minute. No jitter: an app may hold only one connection, so
//! there is no herd to spread. All durations are settings (their defaults are in
//! [`super::DEFAULTS`]).
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `source.x.backoff.network_step_ms` / `network_max_ms` | `250` / `16000` | after a network error, wait 250 ms more per attempt, at most 16 s (X's documented policy) |
//! | `source.x.backoff.http_min_ms` / `http_max_ms` | `5000` / `320000` | after an HTTP error, wait 5 s, doubling per attempt, at most 320 s |
//! | `source.x.backoff.rate_limit_min_ms` / `rate_limit_max_ms` | `60000` / `900000` | after a 429, wait until `x-rate-limit-reset`, or else 1 min doubling per attempt; at most 15 min either way |

use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, serde_as};
use trends_common::config::ConfigError;
use trends_common::time::now_ms;

use crate::sources::live;

/// `[source.x.backoff]`: X's documented reconnect policy. The keys keep their unit in their
/// name (`…_ms`); the fields are typed.
#[serde_as]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XBackoffSettings {
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "network_step_ms")]
    pub network_step: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "network_max_ms")]
    pub network_max: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "http_min_ms")]
    pub http_min: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "http_max_ms")]
    pub http_max: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "rate_limit_min_ms")]
    pub rate_limit_min: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "rate_limit_max_ms")]
    pub rate_limit_max: Duration,
}

impl XBackoffSettings {
    /// Each minimum at least 1 ms and each maximum at least its minimum; errors name the keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pairs = [
            ("network_step_ms", self.network_step, "network_max_ms", self.network_max),
            ("http_min_ms", self.http_min, "http_max_ms", self.http_max),
            (
                "rate_limit_min_ms",
                self.rate_limit_min,
                "rate_limit_max_ms",
                self.rate_limit_max,
            ),
        ];
        for (min_key, min, max_key, max) in pairs {
            if min < Duration::from_millis(1) || max < min {
                return Err(ConfigError(format!(
                    "source.x.backoff.{min_key} must be at least 1 and {max_key} at least {min_key}"
                )));
            }
        }
        Ok(())
    }
}

/// Why an attempt failed, for the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused, reset, timed out: no HTTP answer.
    Network,
    /// An HTTP error worth retrying (5xx and the like).
    Http,
    /// A 429, with the `x-rate-limit-reset` time (epoch seconds) if the response had one.
    RateLimited { reset_at: Option<u64> },
    /// An established connection (one that delivered at least a keep-alive) dropped:
    /// reconnect at once, and start the back-off over.
    Dropped,
}

/// Consecutive failures of each kind, and the delays they lead to.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: XBackoffSettings,
    network: u32,
    http: u32,
    rate_limited: u32,
}

impl Backoff {
    pub fn new(policy: XBackoffSettings) -> Backoff {
        Backoff {
            policy,
            network: 0,
            http: 0,
            rate_limited: 0,
        }
    }

    /// After a connection was established: start over.
    pub fn reset(&mut self) {
        self.network = 0;
        self.http = 0;
        self.rate_limited = 0;
    }

    /// The wait after `failure`, at wall-clock `now_ms` (epoch milliseconds).
    pub fn delay(&mut self, failure: Failure, now_ms: i64) -> Duration {
        let p = &self.policy;
        match failure {
            Failure::Dropped => {
                self.reset();
                Duration::ZERO
            }
            Failure::Network => {
                self.network = self.network.saturating_add(1);
                p.network_step
                    .saturating_mul(self.network)
                    .min(p.network_max)
            }
            Failure::Http => {
                self.http = self.http.saturating_add(1);
                doubled(p.http_min, self.http).min(p.http_max)
            }
            Failure::RateLimited { reset_at } => {
                self.rate_limited = self.rate_limited.saturating_add(1);
                let until_reset = reset_at
                    .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                    .map(|s| s.saturating_mul(1000).saturating_sub(now_ms))
                    .filter(|&ms| ms > 0)
                    .map(|ms| Duration::from_millis(ms.unsigned_abs()));
                until_reset
                    .unwrap_or_else(|| doubled(p.rate_limit_min, self.rate_limited))
                    .min(p.rate_limit_max)
            }
        }
    }
}

impl live::Policy for Backoff {
    type Lost = Failure;

    fn wait_after(&mut self, failure: Failure) -> Duration {
        self.delay(failure, now_ms())
    }
}

/// `base × 2^(n−1)`, saturating.
fn doubled(base: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> XBackoffSettings {
        let ms = Duration::from_millis;
        XBackoffSettings {
            network_step: ms(250),
            network_max: ms(16_000),
            http_min: ms(5_000),
            http_max: ms(320_000),
            rate_limit_min: ms(60_000),
            rate_limit_max: ms(900_000),
        }
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn the_documented_back_off() {
        let mut b = Backoff::new(policy());
        let network: Vec<f64> = (0..66)
            .map(|_| secs(b.delay(Failure::Network, 0)))
            .collect();
        assert_eq!(
            &network[..4],
            [0.25, 0.5, 0.75, 1.0],
            "linear, 250 ms steps"
        );
        assert_eq!(network[63], 16.0);
        assert_eq!(network[65], 16.0, "at most 16 s");

        let http: Vec<f64> = (0..9).map(|_| secs(b.delay(Failure::Http, 0))).collect();
        assert_eq!(
            http,
            [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0, 320.0]
        );

        let none = Failure::RateLimited { reset_at: None };
        let rate: Vec<f64> = (0..6).map(|_| secs(b.delay(none, 0))).collect();
        assert_eq!(rate, [60.0, 120.0, 240.0, 480.0, 900.0, 900.0]);

        b.reset();
        assert_eq!(secs(b.delay(Failure::Network, 0)), 0.25, "reset");
        assert_eq!(secs(b.delay(Failure::Http, 0)), 5.0);
        for _ in 0..100 {
            b.delay(Failure::Http, 0);
        }
        assert_eq!(secs(b.delay(Failure::Http, 0)), 320.0, "no overflow");
    }

    #[test]
    fn a_429_waits_for_the_reset_time_when_it_is_ahead() {
        let mut b = Backoff::new(policy());
        let now = 1_700_000_000_500;
        let in_42s = Failure::RateLimited {
            reset_at: Some(1_700_000_042),
        };
        assert_eq!(b.delay(in_42s, now), Duration::from_millis(41_500));
        let past = Failure::RateLimited {
            reset_at: Some(1_600_000_000),
        };
        assert_eq!(
            b.delay(past, now),
            Duration::from_secs(120),
            "a reset in the past: the exponential policy (second 429)"
        );
        let far = Failure::RateLimited {
            reset_at: Some(u64::MAX),
        };
        assert_eq!(b.delay(far, now), Duration::from_secs(900), "capped");
    }
}
