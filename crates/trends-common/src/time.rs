//! The wall clock, in the pipeline's unit.
//!
//! One function so that every service reads "now" the same way (and `trends-core`, which has
//! no I/O, never reads a clock at all: its callers pass the time in).

use std::time::{SystemTime, UNIX_EPOCH};

use trends_core::EpochMillis;

/// Milliseconds since the Unix epoch by this machine's clock; 0 for a clock before 1970,
/// `i64::MAX` for one past the year 292 million.
pub fn now_ms() -> EpochMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(super::now_ms() > 1_795_000_000_000);
    }
}
