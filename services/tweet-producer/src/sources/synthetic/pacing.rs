//! Pacing of the synthetic source: how many posts are due. Pure arithmetic on durations, so it
//! is tested without a clock.
//!
//! Why a schedule instead of "sleep 1/rate after each post": sleeping accumulates every
//! scheduling delay, so 50 posts/s becomes 47 and the error grows with time. Here the number
//! of posts due is computed from the time elapsed since the start (`⌊rate · elapsed⌋ + 1`), so
//! late wake-ups are made up in the next batch and the long-run rate is exact. Wake-ups are
//! at least [`MIN_TICK`] apart, so high rates are served in small batches instead of one
//! timer per post.

use std::time::Duration;

/// The shortest wait between two batches.
pub const MIN_TICK: Duration = Duration::from_millis(5);

/// After a stall (a slow broker, a suspended laptop) at most this much backlog is made up;
/// older slots are skipped instead of being sent as one huge burst.
pub const MAX_BACKLOG: Duration = Duration::from_secs(1);

/// A fixed-rate schedule: post `n` (0-based) is due `n / rate` seconds after the start.
#[derive(Debug, Clone)]
pub struct Schedule {
    rate: f64,
    /// Slots handed out (or skipped) so far.
    released: u64,
}

impl Schedule {
    /// A schedule of `rate` posts per second (> 0 and finite).
    pub fn new(rate: f64) -> Schedule {
        Schedule { rate, released: 0 }
    }

    /// Takes the posts due `elapsed` after the start: how many to send now.
    pub fn take_due(&mut self, elapsed: Duration) -> u64 {
        // Float to integer `as` saturates, and the product is non-negative and finite.
        let due = (elapsed.as_secs_f64() * self.rate).floor() as u64 + 1;
        let backlog_cap = ((MAX_BACKLOG.as_secs_f64() * self.rate).ceil() as u64).max(1);
        if due.saturating_sub(self.released) > backlog_cap {
            self.released = due - backlog_cap;
        }
        let n = due.saturating_sub(self.released);
        self.released += n;
        n
    }

    /// When, after the start, the next post is due: the time to sleep until (at least
    /// [`MIN_TICK`] after `elapsed`).
    pub fn next_wake(&self, elapsed: Duration) -> Duration {
        // Slot `released` is due at released / rate.
        let next_due = Duration::from_secs_f64(self.released as f64 / self.rate);
        next_due.max(elapsed + MIN_TICK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_long_run_rate_is_exact_whatever_the_wake_up_times() {
        let mut schedule = Schedule::new(50.0);
        let mut sent = schedule.take_due(ms(0));
        assert_eq!(sent, 1, "the first post goes out at once");
        // Irregular, late wake-ups over 60 s.
        let mut t = 0;
        while t < 60_000 {
            t += 7 + (t % 13);
            sent += schedule.take_due(ms(t));
        }
        let expected = (t as f64 * 50.0 / 1000.0).floor() as u64 + 1;
        assert_eq!(sent, expected);
    }

    #[test]
    fn waits_until_the_next_slot_but_at_least_a_tick() {
        let mut schedule = Schedule::new(2.0);
        assert_eq!(schedule.take_due(ms(0)), 1);
        assert_eq!(schedule.next_wake(ms(0)), ms(500));
        assert_eq!(schedule.take_due(ms(499)), 0);
        assert_eq!(schedule.take_due(ms(500)), 1);
        assert_eq!(schedule.next_wake(ms(500)), ms(1000));

        let mut fast = Schedule::new(100_000.0);
        assert_eq!(fast.take_due(ms(0)), 1);
        assert_eq!(
            fast.next_wake(ms(0)),
            MIN_TICK,
            "batches, not one timer per post"
        );
        assert_eq!(fast.take_due(MIN_TICK), 500);
    }

    #[test]
    fn a_stall_is_made_up_for_at_most_the_backlog_cap() {
        let mut schedule = Schedule::new(100.0);
        schedule.take_due(ms(0));
        // Asleep for a minute: 6,000 slots missed, only one second's worth is sent.
        assert_eq!(schedule.take_due(ms(60_000)), 100);
        assert_eq!(schedule.take_due(ms(60_010)), 1);
    }
}
