//! When to try again: exponential back-off with jitter, and `Retry-After`.
//!
//! Retry `n` (the attempt after the `n`-th failure) waits `initial · 2^(n−1)`, capped at the
//! maximum, times a jitter factor drawn uniformly from [0.5, 1] ("equal jitter"): half the wait
//! is guaranteed, so a struggling receiver gets the breathing room the schedule promises, and
//! the other half spreads the retries of many events (and of several API replicas) apart so
//! they do not arrive in lock-step. A `Retry-After: <seconds>` on a 429 or 5xx lengthens the
//! wait to what the receiver asked for, capped at the maximum too (a receiver cannot park a
//! queue for a day); it never shortens it. The HTTP-date form of `Retry-After` is ignored (the
//! computed back-off applies).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The back-off schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry `retry` (1 = the second attempt) without jitter:
    /// `initial · 2^(retry−1)`, at most `max`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The wait before retry `retry`, `jitter` in [0, 1] picking a point of
    /// [ceiling / 2, ceiling]; at least what `retry_after` asks, capped at `max`.
    pub fn delay(&self, retry: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(retry);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let jittered = ceiling.mul_f64(0.5 + 0.5 * jitter);
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max)),
            None => jittered,
        }
    }
}

/// A `Retry-After` value in seconds (`"120"`); `None` for an HTTP date or anything else.
pub fn parse_retry_after(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: an overflow is the only failure, and such a wait is capped anyway.
    Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)))
}

/// A uniform draw from [0, 1): std's per-instance random hash keys, hashed; no RNG crate for
/// a jitter that needs no quality beyond "not in lock-step".
pub fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    // The top 53 bits as a fraction.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn defaults() -> Backoff {
        Backoff {
            initial: MS(500),
            max: MS(60_000),
        }
    }

    #[test]
    fn doubles_from_the_initial_wait_up_to_the_cap() {
        let b = defaults();
        let ceilings: Vec<u64> = (1..=10).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        // Far past the cap, no overflow.
        assert_eq!(b.ceiling(u32::MAX), MS(60_000));
        assert_eq!(b.ceiling(0), MS(500));
    }

    #[test]
    fn jitter_keeps_the_wait_within_half_and_all_of_the_ceiling() {
        let b = defaults();
        for n in 1..=9 {
            let ceiling = b.ceiling(n);
            assert_eq!(b.delay(n, 0.0, None), ceiling / 2);
            assert_eq!(b.delay(n, 1.0, None), ceiling);
            assert_eq!(b.delay(n, f64::NAN, None), ceiling);
            for _ in 0..100 {
                let d = b.delay(n, jitter(), None);
                assert!(ceiling / 2 <= d && d <= ceiling, "{d:?} for retry {n}");
            }
        }
        // The draws are spread, not constant.
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.iter().any(|j| *j < 0.5) && draws.iter().any(|j| *j >= 0.5));
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_the_cap_and_never_shortens_it() {
        let b = defaults();
        assert_eq!(b.delay(1, 1.0, Some(Duration::from_secs(10))), MS(10_000));
        assert_eq!(b.delay(1, 1.0, Some(Duration::from_secs(3600))), MS(60_000));
        assert_eq!(b.delay(3, 1.0, Some(Duration::ZERO)), MS(2000));
    }

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        assert_eq!(parse_retry_after(b"120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(b" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(b"99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in [
            &b""[..],
            b"-1",
            b"1.5",
            b"Wed, 21 Oct 2026 07:28:00 GMT",
            b"\xff",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }
}
