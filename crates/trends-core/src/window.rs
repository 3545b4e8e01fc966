//! Windows and the event-time buckets they are made of.
//!
//! Counts are kept in fixed event-time buckets at two resolutions:
//! - **fine** buckets (10 s by default) make up the `1m`, `5m`, `15m` and `1h` windows;
//! - **coarse** buckets (5 min by default) make up the `24h` window, so a day is 288 buckets
//!   instead of 8,640.
//!
//! The **watermark** is the latest event time seen. A window of duration `D` over buckets of size
//! `B` is the `D / B` most recent buckets, ending with the bucket that contains the watermark
//! (which is still filling). So `1m` with 10 s buckets covers between 50 and 60 seconds of event
//! time, and always exactly 6 buckets. `all` is the running total since the start of the topic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// A window the API can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "24h")]
    H24,
    #[serde(rename = "all")]
    All,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 6] = [
        Window::M1,
        Window::M5,
        Window::M15,
        Window::H1,
        Window::H24,
        Window::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::M1 => "1m",
            Window::M5 => "5m",
            Window::M15 => "15m",
            Window::H1 => "1h",
            Window::H24 => "24h",
            Window::All => "all",
        }
    }

    /// The window's length in milliseconds; `None` for `all`.
    pub fn duration_ms(self) -> Option<i64> {
        const MIN: i64 = 60_000;
        match self {
            Window::M1 => Some(MIN),
            Window::M5 => Some(5 * MIN),
            Window::M15 => Some(15 * MIN),
            Window::H1 => Some(60 * MIN),
            Window::H24 => Some(24 * 60 * MIN),
            Window::All => None,
        }
    }

    /// The bucket resolution a finite window is summed from; `None` for `all`.
    pub fn resolution(self) -> Option<Resolution> {
        match self {
            Window::M1 | Window::M5 | Window::M15 | Window::H1 => Some(Resolution::Fine),
            Window::H24 => Some(Resolution::Coarse),
            Window::All => None,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a window name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown window {0:?}; expected one of 1m, 5m, 15m, 1h, 24h, all")]
pub struct UnknownWindow(pub String);

impl FromStr for Window {
    type Err = UnknownWindow;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Window::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| UnknownWindow(s.to_string()))
    }
}

/// A bucket resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Fine,
    Coarse,
}

impl Resolution {
    pub const BOTH: [Resolution; 2] = [Resolution::Fine, Resolution::Coarse];

    /// One-letter code used in counts-topic keys.
    pub fn code(self) -> char {
        match self {
            Resolution::Fine => 'f',
            Resolution::Coarse => 'c',
        }
    }
}

/// Bucket sizes. Both services must use the same layout (it is one shared config section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLayout {
    pub fine_ms: i64,
    pub coarse_ms: i64,
}

/// Why a bucket layout is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("fine bucket size must divide 60 seconds, got {0} ms")]
    Fine(i64),
    #[error("coarse bucket size must divide 24 hours and be a multiple of 1 minute, got {0} ms")]
    Coarse(i64),
}

impl Default for BucketLayout {
    fn default() -> Self {
        BucketLayout {
            fine_ms: 10_000,
            coarse_ms: 300_000,
        }
    }
}

impl BucketLayout {
    /// Validates that every window is a whole number of its buckets.
    pub fn new(fine_ms: i64, coarse_ms: i64) -> Result<Self, LayoutError> {
        if fine_ms <= 0 || 60_000 % fine_ms != 0 {
            return Err(LayoutError::Fine(fine_ms));
        }
        if coarse_ms <= 0 || coarse_ms % 60_000 != 0 || 86_400_000 % coarse_ms != 0 {
            return Err(LayoutError::Coarse(coarse_ms));
        }
        Ok(BucketLayout { fine_ms, coarse_ms })
    }

    pub fn size_ms(&self, resolution: Resolution) -> i64 {
        match resolution {
            Resolution::Fine => self.fine_ms,
            Resolution::Coarse => self.coarse_ms,
        }
    }

    /// Start of the bucket containing `t`.
    pub fn bucket_start(&self, resolution: Resolution, t: EpochMillis) -> EpochMillis {
        let size = self.size_ms(resolution);
        t.div_euclid(size) * size
    }

    /// How many buckets of a resolution the longest window over it needs.
    pub fn retained_buckets(&self, resolution: Resolution) -> i64 {
        match resolution {
            Resolution::Fine => Window::H1.duration_ms().unwrap_or(0) / self.fine_ms,
            Resolution::Coarse => Window::H24.duration_ms().unwrap_or(0) / self.coarse_ms,
        }
    }

    /// Oldest bucket start still needed at this resolution when the watermark is `watermark`.
    pub fn oldest_retained(&self, resolution: Resolution, watermark: EpochMillis) -> EpochMillis {
        let newest = self.bucket_start(resolution, watermark);
        newest - (self.retained_buckets(resolution) - 1) * self.size_ms(resolution)
    }

    /// The inclusive range of bucket starts a finite window covers at this watermark.
    pub fn window_range(
        &self,
        window: Window,
        watermark: EpochMillis,
    ) -> Option<(Resolution, EpochMillis, EpochMillis)> {
        let resolution = window.resolution()?;
        let size = self.size_ms(resolution);
        let buckets = window.duration_ms()? / size;
        let newest = self.bucket_start(resolution, watermark);
        Some((resolution, newest - (buckets - 1) * size, newest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for w in Window::ALL {
            assert_eq!(w.as_str().parse::<Window>(), Ok(w));
        }
        assert!("2m".parse::<Window>().is_err());
        assert!("".parse::<Window>().is_err());
    }

    #[test]
    fn window_covers_a_whole_number_of_buckets_ending_at_the_watermark() {
        let layout = BucketLayout::default();
        // Watermark 12:00:35.5 → newest fine bucket 12:00:30; 1m = 6 buckets from 11:59:40.
        let noon = 1_795_435_200_000; // 2026-11-23T12:00:00Z
        let wm = noon + 35_500;
        assert_eq!(
            layout.window_range(Window::M1, wm),
            Some((Resolution::Fine, noon - 20_000, noon + 30_000))
        );
        assert_eq!(
            layout.window_range(Window::H24, wm),
            Some((Resolution::Coarse, noon - 86_400_000 + 300_000, noon))
        );
        assert_eq!(layout.window_range(Window::All, wm), None);
        assert_eq!(
            layout.oldest_retained(Resolution::Fine, wm),
            noon + 30_000 - 3_590_000
        );
    }

    #[test]
    fn buckets_are_floored_also_before_the_epoch() {
        let layout = BucketLayout::default();
        assert_eq!(layout.bucket_start(Resolution::Fine, -1), -10_000);
        assert_eq!(layout.bucket_start(Resolution::Fine, 19_999), 10_000);
    }

    #[test]
    fn layouts_that_do_not_tile_the_windows_are_rejected() {
        assert!(BucketLayout::new(10_000, 300_000).is_ok());
        assert!(BucketLayout::new(7_000, 300_000).is_err());
        assert!(BucketLayout::new(10_000, 90_000).is_err());
        assert!(BucketLayout::new(0, 300_000).is_err());
    }
}
