//! Trending, not just frequent: the API's trend board.
//!
//! [`TrendBoard`] reads the trend track's records ([`crate::trend_track`]: distinct authors per
//! tag, language and bucket, on each input partition) and the partitions' watermarks, sums
//! them over partitions, and on [`TrendBoard::build`] scores every tag that has support against
//! a baseline of its own history. Every number is computed as follows (window `W` of length
//! `|W|`, watermark `t`):
//!
//! - **observed** `o`: the tag's distinct authors in `W` (each author at most once per tag,
//!   language and 5-minute bucket; summed over languages for "all languages").
//! - **baseline rate**, the larger of
//!   - *recent*: the tag's authors in the last 24 h outside `W`, divided by the time that
//!     covers (`min(24 h, history) − |W|`), so a tag's own burst does not raise its baseline;
//!   - *same hour yesterday*: its authors in the hour centred on `t − 24 h`, divided by 1 h,
//!     once the history reaches that far back (so a tag that peaks every evening is expected
//!     to peak this evening: daily cycles do not trend).
//!
//!   For `24h` itself the baseline is the previous day, `[t − 48 h, t − 24 h)`, scaled to 24 h
//!   when less of it is known.
//! - **expected** `μ = max(rate × |W|, 1)` (at least one author: a first mention is not
//!   infinitely surprising).
//! - **score** `z = (√o + √(o+1) − √(4μ+1)) / √(1 + k²·μ)`, `k` = [`TrendParams::dispersion`]
//!   (0.1): the Freeman–Tukey deviate of a Poisson count, widened for a rate that itself
//!   wanders by about `k` (a negative binomial). For large `μ` it is `(o − μ)/√(μ + (kμ)²)`, the
//!   number of standard deviations `o` lies above `μ`; for small `μ`, where that normal
//!   approximation makes 6 authors against 1 expected a "5σ" event (the Poisson tail says
//!   3.2σ), the square roots follow the skewed tail (2.9σ, slightly conservative). Pure
//!   Poisson (`k` = 0, η of the Twitter/Gnip model) makes a tag with 100,000 authors a day
//!   trend on a 1% wobble; with `k` = 0.1 its `z` stays near 1 unless it really moves.
//! - **scan**: a burst starts small, and in its first minutes the quiet rest of `W` dilutes it.
//!   So `W`'s score is the highest over the windows ending at `t` no longer than `W` (of
//!   [`TREND_WINDOWS`]), each with `o_v ≥ min_authors`, scored as above against its own `μ_v`
//!   and **adjusted** for its length by [`scale_adjusted`]: a window `r` times shorter has `r`
//!   times the chances per hour to cross a threshold by luck, so its `z` becomes the `z'` with
//!   `Q(z') = r·Q(z)`. Each window is held to the false-alarm rate per hour of `W` alone (the
//!   prospective scan statistic, with a Bonferroni-style correction). The window that scored is
//!   [`Trending::scored_over`].
//! - **eligible** when the score ≥ `min_score` (3) on a window with `o_v ≥ min_authors` (5), the
//!   tag is not blocked, and it is not a **flood**: its posts (all languages) are at most
//!   `flood_ratio` (5) times its authors, in `W` and in the window that scored. A few accounts
//!   posting a tag thousands of times never trend.
//! - **confirmation**: a tag that becomes eligible is a candidate, shown (and announced to
//!   webhooks) once it has stayed eligible for [`TrendParams::confirm_ms`] (10 s) of event time,
//!   or at once when the watermark stands still (the data stopped): in its first seconds a
//!   flood looks like a burst, before its accounts repeat. A candidate that stops qualifying
//!   is dropped unseen.
//! - **decay**: a trend's shown score is `max(z, peak · 2^(−(t − peak_at)/(|W|/2)))`, so a tag
//!   that peaked cools off with a half-life of half its window and leaves the list when the
//!   shown score falls below `min_score`. Its `started_at` is the start of the 10-second bucket
//!   in which it first became eligible; its **status** is `rising` while it set a new peak in
//!   the last quarter of `W`, `cooling` once its current score is below half its peak, `hot`
//!   otherwise.
//!
//! **Memory.** Per (bucket, partition, language, tag) one number, as the counts topic holds
//! (the aggregator bounds the series per bucket); sums per series over the seven ranges (five
//! windows, the hour a day ago, the previous day) only while one is non-zero; languages at most
//! [`MAX_LANGUAGES`]; trend episodes at most [`TrendParams::max_episodes`]. The records are
//! hostile input like any other: arithmetic saturates, a record for a language past the
//! bound is counted and skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord, Measure};
use crate::window::{BucketLayout, Resolution, Window};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

/// The windows that trend, in [`Window::ALL`] order (`all` has no baseline).
pub const TREND_WINDOWS: [Window; 5] =
    [Window::M1, Window::M5, Window::M15, Window::H1, Window::H24];
const H24: usize = 4;
/// The hour centred on `t − 24 h`.
const YESTERDAY_HOUR: usize = 5;
/// `[t − 48 h, t − 24 h)`.
const PREVIOUS_DAY: usize = 6;
const RANGES: usize = 7;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// The most languages the board tracks; records of more are skipped.
pub const MAX_LANGUAGES: usize = 1024;

/// The most entries a trending list keeps (the API's largest `limit`).
pub const MAX_LISTED: usize = 100;

/// How many entries of a list get a sparkline (a sparkline reads every bucket of the window:
/// up to 360 lookups).
pub const SPARKLINES: usize = 25;

/// Tag id of a language's volume series (posts, not authors).
const VOLUME: u32 = u32::MAX;
/// Language id of "all languages".
const ALL_LANGUAGES: u32 = 0;

/// The position of a window in [`TREND_WINDOWS`], if it trends.
pub fn trend_window_index(window: Window) -> Option<usize> {
    TREND_WINDOWS.iter().position(|&w| w == window)
}

/// What decides whether a tag trends (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendParams {
    pub min_authors: i64,
    pub min_score: f64,
    pub dispersion: f64,
    pub flood_ratio: f64,
    pub max_episodes: usize,
    /// How long (event time) a tag must stay eligible before it is shown.
    pub confirm_ms: i64,
}

impl Default for TrendParams {
    fn default() -> Self {
        TrendParams {
            min_authors: 5,
            min_score: 3.0,
            dispersion: 0.1,
            flood_ratio: 5.0,
            max_episodes: 50_000,
            confirm_ms: 10_000,
        }
    }
}

/// The expected authors of a window from the tag's sums: see the module docs.
/// `history_ms` is how far back the board's data goes from the watermark.
pub fn expected(window: usize, sums: &[i64; RANGES], history_ms: i64) -> f64 {
    let length = TREND_WINDOWS[window].duration_ms().unwrap_or(DAY_MS) as f64;
    let rate = if window == H24 {
        // The previous day, as much of it as is known.
        let known = (history_ms - DAY_MS).clamp(0, DAY_MS);
        if known < HOUR_MS {
            0.0
        } else {
            sums[PREVIOUS_DAY] as f64 / known as f64
        }
    } else {
        let covered = history_ms.min(DAY_MS) - TREND_WINDOWS[window].duration_ms().unwrap_or(0);
        let recent = if covered >= TREND_WINDOWS[window].duration_ms().unwrap_or(0).max(1) {
            sums[H24].saturating_sub(sums[window]).max(0) as f64 / covered as f64
        } else {
            0.0
        };
        let yesterday = if history_ms >= DAY_MS + HOUR_MS / 2 {
            sums[YESTERDAY_HOUR] as f64 / HOUR_MS as f64
        } else {
            0.0
        };
        recent.max(yesterday)
    };
    (rate * length).max(1.0)
}

/// The score of `observed` authors against `expected` ([`TrendParams::dispersion`] `k`).
pub fn score(observed: i64, expected: f64, dispersion: f64) -> f64 {
    let mu = expected.max(1.0);
    let o = observed.max(0) as f64;
    let freeman_tukey = o.sqrt() + (o + 1.0).sqrt() - (4.0 * mu + 1.0).sqrt();
    freeman_tukey / (1.0 + dispersion * dispersion * mu).sqrt()
}

/// `ln Q(z)`, the natural log of the standard normal upper tail `P(Z > z)`, accurate to a
/// relative 1.2·10⁻⁷ of `Q` for every `z` (no underflow: the tail of `z = 50` is `e^-1254`).
/// Numerical Recipes' `erfcc` Chebyshev fit, kept in log form.
pub fn ln_upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.5 * ax);
    let poly = -ax * ax - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // ln erfc(|x|)
    let ln_erfc = t.ln() + poly;
    if x >= 0.0 {
        ln_erfc - std::f64::consts::LN_2
    } else {
        // Q(z) = 1 − erfc(|x|)/2 for z < 0.
        (-0.5 * ln_erfc.exp()).ln_1p()
    }
}

/// A score on a window `ratio` times shorter than the list's, as the score on the list's own
/// window with the same false-alarm rate per unit of time: the `z'` whose tail is `ratio`
/// times the tail of `z` (`Q(z') = ratio · Q(z)`). A window five times shorter has five times
/// as many chances per hour to cross a threshold by luck, so it must cross a higher one:
/// `z = 3` on the list's window is `z ≈ 3.46` on one a fifth as long, `≈ 4.08` on a sixtieth.
/// `ratio` ≤ 1 leaves `z` as it is.
pub fn scale_adjusted(z: f64, ratio: f64) -> f64 {
    if ratio <= 1.0 || !z.is_finite() {
        return z;
    }
    let target = ln_upper_tail(z) + ratio.ln();
    if target >= -f64::EPSILON {
        // Certain to happen by chance that often: no surprise at all.
        return f64::NEG_INFINITY;
    }
    // Newton on f(x) = ln Q(x) − target from x = z, right of the root: ln Q is concave and
    // falling, so each tangent lands between the root and the last point (no overshoot), and
    // the steps shrink quadratically: a handful of iterations, not a bisection's 64.
    let ln_density = |x: f64| -0.5 * x * x - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut x = z;
    for _ in 0..50 {
        let ln_q = ln_upper_tail(x);
        let slope = -(ln_density(x) - ln_q).exp();
        if !slope.is_finite() || slope == 0.0 {
            break;
        }
        let step = (ln_q - target) / slope;
        x -= step;
        if step.abs() < 1e-12 {
            break;
        }
    }
    x
}

/// Where a trend is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Rising,
    Hot,
    Cooling,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Rising => "rising",
            Status::Hot => "hot",
            Status::Cooling => "cooling",
        }
    }
}

/// One trending tag of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Trending {
    pub tag: Arc<str>,
    /// The shown score (the current one, or the decaying peak).
    pub score: f64,
    /// Distinct authors in the window (in the list's language).
    pub authors: i64,
    /// Posts with the tag in the window (in the list's language).
    pub posts: i64,
    pub expected: f64,
    /// The window, ending now and no longer than the list's, whose authors scored (module
    /// docs, "score"): the list's own, or a shorter one a fresh rise shows in first.
    pub scored_over: Window,
    pub started_at: EpochMillis,
    pub status: Status,
    /// Authors per step over the window, oldest first (up to 12 steps).
    pub sparkline: Vec<i64>,
}

/// A language and its volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageVolume {
    pub code: Arc<str>,
    /// Posts in the last hour and the last 24 hours.
    pub posts_1h: i64,
    pub posts_24h: i64,
}

/// A tag that started or stopped trending (all languages), for webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub started: bool,
    pub window: Window,
    pub tag: Arc<str>,
    pub score: f64,
    pub authors: i64,
    pub posts: i64,
    pub expected: f64,
    pub started_at: EpochMillis,
    /// The watermark when it happened.
    pub at: EpochMillis,
}

/// Per language code: its tags by posts, per window in [`TREND_WINDOWS`] order.
type CountLists = HashMap<Arc<str>, [Vec<(Arc<str>, i64)>; TREND_WINDOWS.len()]>;

/// The ranked trends of one moment.
#[derive(Debug, Clone, Default)]
pub struct TrendSnapshot {
    pub watermark: Option<EpochMillis>,
    /// Per window (in [`TREND_WINDOWS`] order): the all-language list.
    all: [Vec<Trending>; TREND_WINDOWS.len()],
    /// Per language code: its lists.
    by_language: HashMap<Arc<str>, [Vec<Trending>; TREND_WINDOWS.len()]>,
    /// Per language code: its tags by posts, per window, best first (ties by tag).
    counts_by_language: Arc<CountLists>,
    /// Languages by 24 h volume, largest first.
    pub languages: Vec<LanguageVolume>,
}

impl TrendSnapshot {
    /// The trending list of `window` (all languages when `lang` is `None`), best first; empty
    /// for `all` and for a language without trends.
    pub fn list(&self, window: Window, lang: Option<&str>) -> &[Trending] {
        let Some(w) = trend_window_index(window) else {
            return &[];
        };
        match lang {
            None => &self.all[w],
            Some(code) => self.by_language.get(code).map_or(&[], |lists| &lists[w]),
        }
    }

    /// The tags of language `lang` by posts in `window`, best first (ties by tag), at most
    /// [`MAX_LISTED`]; empty for `all` (languages have no all-time counts).
    pub fn counts(&self, window: Window, lang: &str) -> &[(Arc<str>, i64)] {
        match (
            trend_window_index(window),
            self.counts_by_language.get(lang),
        ) {
            (Some(w), Some(lists)) => &lists[w],
            _ => &[],
        }
    }

    /// Whether the board has seen `code`.
    pub fn has_language(&self, code: &str) -> bool {
        self.languages.iter().any(|l| &*l.code == code)
    }
}

/// One bucket: each partition's value of each (language, tag), and their sums per series
/// (language-specific and all-language).
#[derive(Debug, Default)]
struct Bucket {
    parts: Map<(i32, u64), i64>,
    sums: Map<u64, i64>,
}

/// A trend in progress (per series and window).
#[derive(Debug, Clone, Copy)]
struct Episode {
    started_at: EpochMillis,
    /// The watermark when it first qualified.
    first_at: EpochMillis,
    peak: f64,
    peak_at: EpochMillis,
    /// Shown (and announced): it held for `confirm_ms` of event time, or the data stopped.
    confirmed: bool,
}

/// Bit 63 of a series key: posts (clear: authors).
const POSTS_BIT: u64 = 1 << 63;

fn series(lang: u32, tag: u32) -> u64 {
    (u64::from(lang & 0x7fff_ffff) << 32) | u64::from(tag)
}

fn posts_series(lang: u32, tag: u32) -> u64 {
    POSTS_BIT | series(lang, tag)
}

fn series_lang(s: u64) -> u32 {
    ((s & !POSTS_BIT) >> 32) as u32
}

fn series_tag(s: u64) -> u32 {
    s as u32
}

/// How many times shorter window `v` is than window `w` (both in [`TREND_WINDOWS`]).
fn scale_ratio(w: usize, v: usize) -> f64 {
    let length = |i: usize| TREND_WINDOWS[i].duration_ms().unwrap_or(DAY_MS) as f64;
    length(w) / length(v)
}

/// The raw score on a window `ratio` times shorter whose adjusted score is `min_score`.
fn raw_threshold(min_score: f64, ratio: f64) -> f64 {
    if ratio <= 1.0 {
        return min_score;
    }
    let (mut low, mut high) = (min_score, min_score + 40.0);
    for _ in 0..64 {
        let mid = 0.5 * (low + high);
        if scale_adjusted(mid, ratio) < min_score {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// Summed author counts per language and tag, scored into trends.
#[derive(Debug)]
pub struct TrendBoard {
    layout: BucketLayout,
    params: TrendParams,
    /// `[W][v]`: the raw score window `v` must reach to qualify in list `W` (`min_score` for
    /// `v = W`, higher for shorter `v`; [`scale_adjusted`]), for the cheap exit of `build`.
    scale_thresholds: [[f64; TREND_WINDOWS.len()]; TREND_WINDOWS.len()],
    tags: Vec<Option<Arc<str>>>,
    tag_refs: Vec<u32>,
    free_tags: Vec<u32>,
    tag_index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Language codes by id (id 0: all languages, unnamed).
    languages: Vec<Arc<str>>,
    language_ids: HashMap<Arc<str>, u32>,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    sums: Map<u64, [i64; RANGES]>,
    /// Per trend window: series with at least `min_authors` in it.
    supported: [Set<u64>; TREND_WINDOWS.len()],
    /// Per trend window: the trends in progress, by series.
    episodes: [Map<u64, Episode>; TREND_WINDOWS.len()],
    watermarks: HashMap<i32, EpochMillis>,
    watermark: Option<EpochMillis>,
    ranges: [Option<(Resolution, EpochMillis, EpochMillis)>; RANGES],
    skipped: u64,
    /// The watermark at the last build.
    last_build_watermark: Option<EpochMillis>,
    /// Candidates waiting for confirmation after the last build.
    pending: usize,
    /// The per-language count lists as last made, whether a record changed since, builds
    /// since, and whether a record was applied since the last build.
    language_lists: Arc<CountLists>,
    lists_stale: bool,
    builds_since_lists: u64,
    applied_since_build: bool,
}

/// How often `build` ranks every language's tags by posts (a pass over every series) while
/// records keep coming: every this many builds (about once a second at the default snapshot
/// interval); at once when they stop.
pub const LANGUAGE_COUNTS_EVERY: u64 = 4;

impl TrendBoard {
    pub fn new(layout: BucketLayout, params: TrendParams) -> TrendBoard {
        let all: Arc<str> = Arc::from("");
        let mut scale_thresholds = [[f64::INFINITY; TREND_WINDOWS.len()]; TREND_WINDOWS.len()];
        for (w, row) in scale_thresholds.iter_mut().enumerate() {
            for (v, threshold) in row.iter_mut().enumerate().take(w + 1) {
                *threshold = raw_threshold(params.min_score, scale_ratio(w, v));
            }
        }
        TrendBoard {
            layout,
            params,
            scale_thresholds,
            tags: Vec::new(),
            tag_refs: Vec::new(),
            free_tags: Vec::new(),
            tag_index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            languages: vec![all],
            language_ids: HashMap::new(),
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            sums: Map::default(),
            supported: Default::default(),
            episodes: Default::default(),
            watermarks: HashMap::new(),
            watermark: None,
            ranges: [None; RANGES],
            skipped: 0,
            last_build_watermark: None,
            pending: 0,
            language_lists: Arc::default(),
            lists_stale: false,
            // So that the first build makes them.
            builds_since_lists: LANGUAGE_COUNTS_EVERY,
            applied_since_build: false,
        }
    }

    /// Records skipped (a language past [`MAX_LANGUAGES`]).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// (bucket, partition, series) values held.
    pub fn entries(&self) -> usize {
        self.fine
            .values()
            .chain(self.coarse.values())
            .map(|b| b.parts.len())
            .sum()
    }

    /// Whether the per-language count lists lag the records applied: a build would bring them
    /// up to date (the follower builds then even when nothing else changed).
    pub fn lists_stale(&self) -> bool {
        self.lists_stale
    }

    /// Whether candidates wait for confirmation: the next build may show them (when the data
    /// has stopped, it does), so the follower builds then even if nothing changed.
    pub fn has_pending(&self) -> bool {
        self.pending > 0
    }

    /// Trend episodes in progress.
    pub fn episodes(&self) -> usize {
        self.episodes.iter().map(|e| e.len()).sum()
    }

    fn lookup_tag(&self, tag: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(tag);
        self.tag_index
            .find(hash, |&id| self.tags[id as usize].as_deref() == Some(tag))
            .copied()
    }

    fn intern_tag(&mut self, tag: &str) -> u32 {
        if let Some(id) = self.lookup_tag(tag) {
            return id;
        }
        let id = match self.free_tags.pop() {
            Some(id) => id,
            None => {
                self.tags.push(None);
                self.tag_refs.push(0);
                u32::try_from(self.tags.len() - 1).unwrap_or(VOLUME - 1)
            }
        };
        self.tags[id as usize] = Some(Arc::from(tag));
        let (tags, hasher) = (&self.tags, &self.hasher);
        self.tag_index
            .insert_unique(hasher.hash_one(tag), id, |&i| {
                hasher.hash_one(tags[i as usize].as_deref().unwrap_or(""))
            });
        id
    }

    fn unref_tag(&mut self, id: u32) {
        let Some(refs) = self.tag_refs.get_mut(id as usize) else {
            return;
        };
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return;
        }
        if let Some(name) = self.tags[id as usize].take() {
            let hash = self.hasher.hash_one(&*name);
            if let Ok(entry) = self.tag_index.find_entry(hash, |&i| i == id) {
                entry.remove();
            }
        }
        self.free_tags.push(id);
    }

    fn language_id(&mut self, code: &str, create: bool) -> Option<u32> {
        if let Some(&id) = self.language_ids.get(code) {
            return Some(id);
        }
        if !create || self.languages.len() > MAX_LANGUAGES {
            return None;
        }
        let id = u32::try_from(self.languages.len()).ok()?;
        let code: Arc<str> = Arc::from(code);
        self.languages.push(code.clone());
        self.language_ids.insert(code, id);
        Some(id)
    }

    /// Applies one counts-topic record: watermarks and the trend track's records; the rest is
    /// the posts view's.
    pub fn apply(&mut self, record: &CountsRecord) {
        match &record.key {
            CountsKey::Watermark { partition } => {
                match record.value {
                    Some(w) => self.watermarks.insert(*partition, w),
                    None => self.watermarks.remove(partition),
                };
                let watermark = self.watermarks.values().copied().max();
                if watermark != self.watermark {
                    self.watermark = watermark;
                    self.move_ranges();
                }
            }
            CountsKey::Language {
                partition,
                measure,
                resolution,
                start,
                lang,
                tag,
            } => self.apply_series(
                *partition,
                *measure,
                (*resolution, *start),
                lang,
                tag,
                record.value,
            ),
            CountsKey::Bucket { .. } | CountsKey::Total { .. } | CountsKey::Checkpoint { .. } => {}
        }
    }

    fn apply_series(
        &mut self,
        partition: i32,
        measure: Measure,
        (resolution, start): (Resolution, EpochMillis),
        lang: &str,
        tag: &str,
        value: Option<i64>,
    ) {
        self.lists_stale = true;
        self.applied_since_build = true;
        let Some(lang_id) = self.language_id(lang, value.is_some()) else {
            if value.is_some() {
                self.skipped += 1;
            }
            return;
        };
        let tag_id = if tag.is_empty() {
            VOLUME
        } else {
            match value {
                Some(_) => self.intern_tag(tag),
                None => match self.lookup_tag(tag) {
                    Some(id) => id,
                    None => return,
                },
            }
        };
        let of = match measure {
            Measure::Authors => series,
            Measure::Posts => posts_series,
        };
        let key = of(lang_id, tag_id);
        let buckets = match resolution {
            Resolution::Fine => &mut self.fine,
            Resolution::Coarse => &mut self.coarse,
        };
        let bucket = match value {
            Some(_) => buckets.entry(start).or_default(),
            None => match buckets.get_mut(&start) {
                Some(bucket) => bucket,
                None => return,
            },
        };
        let old = match value {
            Some(v) => bucket.parts.insert((partition, key), v),
            None => bucket.parts.remove(&(partition, key)),
        };
        let delta = value.unwrap_or(0).saturating_sub(old.unwrap_or(0));
        let keys = [key, of(ALL_LANGUAGES, tag_id)];
        if delta != 0 {
            for k in keys {
                add_to(&mut bucket.sums, k, delta);
            }
        }
        if bucket.parts.is_empty() {
            buckets.remove(&start);
        }
        if delta != 0 {
            for r in 0..RANGES {
                let holds = self.ranges[r].is_some_and(|(res, from, to)| {
                    res == resolution && from <= start && start <= to
                });
                if holds {
                    for k in keys {
                        self.bump(k, r, delta);
                    }
                }
            }
        }
        if tag_id != VOLUME {
            match (old.is_some(), value.is_some()) {
                (false, true) => self.tag_refs[tag_id as usize] += 1,
                (true, false) => self.unref_tag(tag_id),
                _ => {}
            }
        }
    }

    /// Adds `delta` to range `r` of series `key`, keeping the supported sets.
    fn bump(&mut self, key: u64, r: usize, delta: i64) {
        let sums = self.sums.entry(key).or_insert([0; RANGES]);
        let before = sums[r];
        sums[r] = sums[r].saturating_add(delta);
        let after = sums[r];
        if sums.iter().all(|&s| s == 0) {
            self.sums.remove(&key);
        }
        if r < TREND_WINDOWS.len() && series_tag(key) != VOLUME && key & POSTS_BIT == 0 {
            let min = self.params.min_authors;
            if before < min && after >= min {
                self.supported[r].insert(key);
            } else if before >= min && after < min {
                self.supported[r].remove(&key);
            }
        }
    }

    /// The bucket range of each of the seven ranges at watermark `w`.
    fn ranges_at(
        &self,
        w: EpochMillis,
    ) -> [Option<(Resolution, EpochMillis, EpochMillis)>; RANGES] {
        let mut ranges = [None; RANGES];
        for (r, window) in TREND_WINDOWS.into_iter().enumerate() {
            ranges[r] = self.layout.window_range(window, w);
        }
        let coarse = self.layout.coarse_ms;
        let newest = self.layout.bucket_start(Resolution::Coarse, w);
        let day_ago = newest - DAY_MS;
        ranges[YESTERDAY_HOUR] = Some((
            Resolution::Coarse,
            day_ago - HOUR_MS / 2 + coarse,
            day_ago + HOUR_MS / 2,
        ));
        ranges[PREVIOUS_DAY] = Some((Resolution::Coarse, day_ago - DAY_MS + coarse, day_ago));
        ranges
    }

    /// Moves every range to the watermark: buckets leaving a range are subtracted, entering
    /// ones added.
    fn move_ranges(&mut self) {
        let new = match self.watermark {
            Some(w) => self.ranges_at(w),
            None => [None; RANGES],
        };
        for (r, &target) in new.iter().enumerate() {
            let old = self.ranges[r];
            if old == target {
                continue;
            }
            self.ranges[r] = target;
            let inside = |range: Option<(Resolution, i64, i64)>, s: i64| {
                range.is_some_and(|(_, a, b)| a <= s && s <= b)
            };
            for (range, other, sign) in [(old, target, -1i64), (target, old, 1)] {
                let Some((resolution, from, to)) = range else {
                    continue;
                };
                let buckets = match resolution {
                    Resolution::Fine => &self.fine,
                    Resolution::Coarse => &self.coarse,
                };
                let changes: Vec<(u64, i64)> = buckets
                    .range(from..=to)
                    .filter(|(start, _)| !inside(other, **start))
                    .flat_map(|(_, b)| b.sums.iter().map(|(&k, &v)| (k, v)))
                    .collect();
                for (k, v) in changes {
                    self.bump(k, r, sign.saturating_mul(v));
                }
            }
        }
    }

    /// How far back the data goes: from the oldest coarse bucket to the watermark.
    fn history_ms(&self) -> i64 {
        match (self.watermark, self.coarse.keys().next()) {
            (Some(w), Some(&oldest)) => w - oldest,
            _ => 0,
        }
    }

    /// The authors of `key` per step of window `w`, oldest first.
    fn sparkline(&self, key: u64, w: usize) -> Vec<i64> {
        let Some((resolution, from, to)) = self.ranges[w] else {
            return Vec::new();
        };
        let size = self.layout.size_ms(resolution);
        let buckets = (to - from) / size + 1;
        let step = (buckets + 11) / 12;
        let map = match resolution {
            Resolution::Fine => &self.fine,
            Resolution::Coarse => &self.coarse,
        };
        let mut points = vec![0i64; usize::try_from((buckets + step - 1) / step).unwrap_or(0)];
        for (&start, bucket) in map.range(from..=to) {
            if let Some(&v) = bucket.sums.get(&key) {
                // Steps aligned on the newest bucket.
                let from_end = (to - start) / size / step;
                let len = points.len() as i64;
                if let Some(slot) = usize::try_from(len - 1 - from_end)
                    .ok()
                    .and_then(|i| points.get_mut(i))
                {
                    *slot = slot.saturating_add(v);
                }
            }
        }
        points
    }

    /// Scores every supported series and every trend in progress, updates the episodes, and
    /// ranks; ranks every language's tags by posts. `blocked` says whether moderation keeps a
    /// tag out of trending. Returns the snapshot and the all-language tags that started or
    /// stopped trending since the last build.
    pub fn build(&mut self, blocked: &dyn Fn(&str) -> bool) -> (TrendSnapshot, Vec<Transition>) {
        let mut snapshot = TrendSnapshot {
            watermark: self.watermark,
            ..TrendSnapshot::default()
        };
        let mut transitions = Vec::new();
        let Some(now) = self.watermark else {
            return (snapshot, transitions);
        };
        let history = self.history_ms();
        let params = self.params;
        let now_bucket = self.layout.bucket_start(Resolution::Fine, now);
        let mut lists: HashMap<u32, [Vec<Trending>; TREND_WINDOWS.len()]> = HashMap::new();
        // The watermark has not moved since the last build: no newer data to wait for.
        let quiet = self.last_build_watermark == Some(now);
        self.last_build_watermark = Some(now);
        let mut pending = 0usize;
        let episodes_total: usize = self.episodes.iter().map(|e| e.len()).sum();
        let mut room = params.max_episodes.saturating_sub(episodes_total);
        for (w, window) in TREND_WINDOWS.into_iter().enumerate() {
            let length = window.duration_ms().unwrap_or(DAY_MS);
            let half_life = (length / 2).max(1) as f64;
            let mut keys: Vec<u64> = self.supported[w].iter().copied().collect();
            keys.extend(
                self.episodes[w]
                    .keys()
                    .filter(|k| !self.supported[w].contains(*k)),
            );
            for key in keys {
                let sums = self.sums.get(&key).copied().unwrap_or([0; RANGES]);
                let observed = sums[w];
                let mu = expected(w, &sums, history);
                // The scan (module docs, "score"): every window ending now no longer than `W`
                // with support, each against its own threshold.
                let raw: [f64; TREND_WINDOWS.len()] = std::array::from_fn(|v| {
                    if v <= w && sums[v] >= params.min_authors {
                        score(sums[v], expected(v, &sums, history), params.dispersion)
                    } else {
                        f64::NEG_INFINITY
                    }
                });
                let qualifies_raw = (0..=w).any(|v| raw[v] >= self.scale_thresholds[w][v]);
                let had = self.episodes[w].get(&key).copied();
                if !qualifies_raw && had.is_none() {
                    // Most series with support: nothing to do (the cheap exit).
                    continue;
                }
                // Only a shorter window past its own threshold can beat `W`'s score where it
                // matters (an adjusted score under `min_score` is not eligible), so only those
                // are adjusted: a few per build, not one per series.
                let (scale, z) = (0..w)
                    .filter(|&v| raw[v] >= self.scale_thresholds[w][v])
                    .map(|v| (v, scale_adjusted(raw[v], scale_ratio(w, v))))
                    .chain(std::iter::once((w, score(observed, mu, params.dispersion))))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or((w, f64::NEG_INFINITY));
                let qualifies = sums[scale] >= params.min_authors && z >= params.min_score;
                let Some(Some(name)) = self.tags.get(series_tag(key) as usize) else {
                    self.episodes[w].remove(&key);
                    continue;
                };
                let name = name.clone();
                let lang = series_lang(key);
                let window_sum = |k: u64| self.sums.get(&k).map_or(0, |s| s[w]);
                let tag_posts = window_sum(posts_series(lang, series_tag(key)));
                // A flood is a property of the tag: all languages.
                let all_posts = window_sum(posts_series(ALL_LANGUAGES, series_tag(key)));
                let all_authors = window_sum(series(ALL_LANGUAGES, series_tag(key)));
                let scale_sum = |k: u64| self.sums.get(&k).map_or(0, |s| s[scale]);
                let scale_posts = scale_sum(posts_series(ALL_LANGUAGES, series_tag(key)));
                let scale_authors = scale_sum(series(ALL_LANGUAGES, series_tag(key)));
                // In `W` or in the window that scored.
                let flood = all_posts as f64 > params.flood_ratio * all_authors.max(1) as f64
                    || scale_posts as f64 > params.flood_ratio * scale_authors.max(1) as f64;
                let is_blocked = blocked(&name);
                let eligible = qualifies && !flood && !is_blocked;
                let mut episode = match (had, eligible) {
                    (None, false) => continue,
                    (None, true) => {
                        if room == 0 {
                            continue;
                        }
                        room -= 1;
                        Episode {
                            started_at: now_bucket,
                            first_at: now,
                            peak: z,
                            peak_at: now,
                            confirmed: false,
                        }
                    }
                    (Some(mut e), _) => {
                        if eligible && z >= e.peak {
                            e.peak = z;
                            e.peak_at = now;
                        }
                        e
                    }
                };
                let decayed = episode.peak * (-((now - episode.peak_at) as f64) / half_life).exp2();
                let current = if eligible { z } else { 0.0 };
                let shown = current.max(decayed);
                let gone = shown < params.min_score || flood || is_blocked;
                let transition = |started: bool| Transition {
                    started,
                    window,
                    tag: name.clone(),
                    score: shown,
                    authors: observed,
                    posts: tag_posts,
                    expected: mu,
                    started_at: episode.started_at,
                    at: now,
                };
                if !episode.confirmed {
                    // A candidate: shown once it has held for `confirm_ms` of event time (a
                    // flood looks like a burst in its first seconds, before its accounts
                    // repeat), or at once when the watermark stands still (the data
                    // stopped: nothing newer will come to confirm it). Dropped silently if it
                    // does not hold.
                    if !eligible {
                        if self.episodes[w].remove(&key).is_some() {
                            room += 1;
                        }
                        continue;
                    }
                    let held = now - episode.first_at >= params.confirm_ms;
                    if !(held || quiet) {
                        self.episodes[w].insert(key, episode);
                        pending += 1;
                        continue;
                    }
                    episode.confirmed = true;
                    if lang == ALL_LANGUAGES {
                        transitions.push(transition(true));
                    }
                }
                if gone {
                    if self.episodes[w].remove(&key).is_some() {
                        room += 1;
                        if lang == ALL_LANGUAGES {
                            transitions.push(transition(false));
                        }
                    }
                    continue;
                }
                self.episodes[w].insert(key, episode);
                let status = if current < episode.peak / 2.0 {
                    Status::Cooling
                } else if now - episode.peak_at <= length / 4 {
                    Status::Rising
                } else {
                    Status::Hot
                };
                lists.entry(lang).or_default()[w].push(Trending {
                    tag: name,
                    score: shown,
                    authors: observed,
                    posts: tag_posts,
                    expected: mu,
                    scored_over: TREND_WINDOWS[scale],
                    started_at: episode.started_at,
                    status,
                    sparkline: Vec::new(),
                });
            }
        }
        for (lang, mut per_window) in lists {
            for (w, list) in per_window.iter_mut().enumerate() {
                list.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.tag.cmp(&b.tag)));
                list.truncate(MAX_LISTED);
                for entry in list.iter_mut().take(SPARKLINES) {
                    if let Some(tag) = self.lookup_tag(&entry.tag) {
                        entry.sparkline = self.sparkline(series(lang, tag), w);
                    }
                }
            }
            if lang == ALL_LANGUAGES {
                snapshot.all = per_window;
            } else if let Some(code) = self.languages.get(lang as usize) {
                snapshot.by_language.insert(code.clone(), per_window);
            }
        }
        let mut languages: Vec<LanguageVolume> = self
            .languages
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(id, code)| {
                let sums = self
                    .sums
                    .get(&posts_series(u32::try_from(id).ok()?, VOLUME))?;
                (sums[H24] > 0).then(|| LanguageVolume {
                    code: code.clone(),
                    posts_1h: sums[3],
                    posts_24h: sums[H24],
                })
            })
            .collect();
        languages.sort_by(|a, b| {
            b.posts_24h
                .cmp(&a.posts_24h)
                .then_with(|| a.code.cmp(&b.code))
        });
        snapshot.languages = languages;
        // One pass over every series: redone every LANGUAGE_COUNTS_EVERY builds (about once a
        // second at the default snapshot interval), shared by the snapshots in between.
        // Also at once when nothing was applied since the last build: the counts went quiet, so
        // this may be the last build for a while and its lists must be current.
        self.builds_since_lists += 1;
        if self.lists_stale
            && (self.builds_since_lists >= LANGUAGE_COUNTS_EVERY || !self.applied_since_build)
        {
            self.language_lists = Arc::new(self.language_counts());
            self.lists_stale = false;
            self.builds_since_lists = 0;
        }
        self.applied_since_build = false;
        snapshot.counts_by_language = self.language_lists.clone();
        self.pending = pending;
        (snapshot, transitions)
    }
}

impl TrendBoard {
    /// Every language's tags by posts, per window: one pass over the series, a bounded heap
    /// of [`MAX_LISTED`] per (language, window).
    fn language_counts(&self) -> CountLists {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        type Heap = BinaryHeap<Reverse<(i64, Reverse<Arc<str>>)>>;
        let mut heaps: HashMap<u32, [Heap; TREND_WINDOWS.len()]> = HashMap::new();
        for (&key, sums) in &self.sums {
            let lang = series_lang(key);
            if key & POSTS_BIT == 0 || lang == ALL_LANGUAGES || series_tag(key) == VOLUME {
                continue;
            }
            let Some(Some(name)) = self.tags.get(series_tag(key) as usize) else {
                continue;
            };
            let heaps = heaps.entry(lang).or_default();
            for (w, heap) in heaps.iter_mut().enumerate() {
                let count = sums[w];
                if count <= 0 {
                    continue;
                }
                // Compared before the name is cloned: most series do not make the list.
                let better = |least: &Reverse<(i64, Reverse<Arc<str>>)>| {
                    let (least_count, Reverse(least_name)) = &least.0;
                    count > *least_count || (count == *least_count && **name < **least_name)
                };
                if heap.len() < MAX_LISTED {
                    heap.push(Reverse((count, Reverse(name.clone()))));
                } else if heap.peek().is_some_and(better) {
                    heap.pop();
                    heap.push(Reverse((count, Reverse(name.clone()))));
                }
            }
        }
        heaps
            .into_iter()
            .filter_map(|(lang, heaps)| {
                let code = self.languages.get(lang as usize)?.clone();
                let lists = heaps.map(|heap| {
                    heap.into_sorted_vec()
                        .into_iter()
                        .map(|Reverse((count, Reverse(name)))| (name, count))
                        .collect()
                });
                Some((code, lists))
            })
            .collect()
    }
}

/// Adds `delta` to `map[key]`, removing the entry at zero.
fn add_to(map: &mut Map<u64, i64>, key: u64, delta: i64) {
    let slot = map.entry(key).or_insert(0);
    *slot = slot.saturating_add(delta);
    if *slot == 0 {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::Capacity;
    use crate::tags::PostTag;
    use crate::trend_track::{Author, TrendTrack};

    const T0: EpochMillis = 1_795_435_200_000;
    const MIN: i64 = 60_000;

    fn tag(name: &str) -> Vec<PostTag> {
        vec![PostTag {
            tag: name.to_string(),
            spelling: name.to_string(),
        }]
    }

    /// Feeds a track's records (and its watermark) into a board.
    fn sync(track: &mut TrendTrack, board: &mut TrendBoard, partition: i32, watermark: i64) {
        for r in track.take_updates() {
            board.apply(&r);
        }
        board.apply(&CountsRecord::new(
            CountsKey::Watermark { partition },
            Some(watermark),
        ));
    }

    #[test]
    fn the_score_is_a_widened_freeman_tukey_deviate() {
        let burst = score(50, 1.0, 0.1);
        let want = (50f64.sqrt() + 51f64.sqrt() - 5f64.sqrt()) / 1.01f64.sqrt();
        assert!((burst - want).abs() < 1e-9);
        // A giant 1% up does not trend; 50% up does.
        assert!(score(101_000, 100_000.0, 0.1) < 0.2);
        assert!(score(150_000, 100_000.0, 0.1) > 4.0);
        // Against the exact Poisson tail (k = 0), as a z: P(X ≥ o | μ) = Q(z). The normal
        // approximation (o − μ)/√μ overstates small counts by up to 1.8σ; the deviate stays
        // within 0.4σ below. The tail is summed here from the pmf, independently of `score`.
        for (mu, o) in [
            (1.0, 5),
            (1.0, 6),
            (2.0, 8),
            (6.0, 15),
            (20.0, 35),
            (100.0, 130),
        ] {
            let pmf = |k: i64| (-mu + k as f64 * f64::ln(mu) - ln_factorial(k)).exp();
            let tail: f64 = 1.0 - (0..o).map(pmf).sum::<f64>();
            let exact = inverse_upper_tail(tail);
            let deviate = score(o, mu, 0.0);
            let normal = (o as f64 - mu) / mu.sqrt();
            assert!(
                deviate <= exact + 0.01 && exact - deviate < 0.4,
                "{mu} {o}: {deviate} vs {exact}"
            );
            assert!(normal >= exact, "{mu} {o}");
        }
    }

    fn ln_factorial(k: i64) -> f64 {
        (1..=k).map(|i| (i as f64).ln()).sum()
    }

    /// The `z` with `Q(z) = p`, by bisection on [`ln_upper_tail`].
    fn inverse_upper_tail(p: f64) -> f64 {
        let (mut low, mut high) = (-10.0, 40.0);
        for _ in 0..100 {
            let mid = 0.5 * (low + high);
            if ln_upper_tail(mid) > p.ln() {
                low = mid;
            } else {
                high = mid;
            }
        }
        low
    }

    #[test]
    fn the_normal_tail_is_exact_enough_everywhere() {
        // Reference values of Q(z) = P(Z > z) from libm: Python's `0.5 * math.erfc(z / sqrt(2))`.
        for (z, q) in [
            (-2.0, 0.977_249_868_051_820_8),
            (0.0, 0.5),
            (1.0, 0.158_655_253_931_457_05),
            (3.0, 0.001_349_898_031_630_095_7),
            (5.0, 2.866_515_718_791_946e-7),
            (10.0, 7.619_853_024_160_593e-24),
        ] {
            let got = ln_upper_tail(z).exp();
            assert!((got / q - 1.0).abs() < 2e-7, "Q({z}) = {got}, not {q}");
        }
        // Far in the tail: no underflow, and the asymptote −z²/2 − ln(z·√(2π)).
        let asymptote = -1250.0 - (50.0 * (2.0 * std::f64::consts::PI).sqrt()).ln();
        assert!((ln_upper_tail(50.0) - asymptote).abs() < 1e-3);
    }

    #[test]
    fn a_shorter_window_needs_a_higher_raw_score() {
        // Q(z') = ratio · Q(z).
        for (z, ratio) in [(3.0, 5.0), (4.0, 60.0), (12.0, 1440.0), (48.0, 3.0)] {
            let adjusted = scale_adjusted(z, ratio);
            let expected_ln = ln_upper_tail(z) + f64::ln(ratio);
            assert!(
                (ln_upper_tail(adjusted) - expected_ln).abs() < 1e-9,
                "{z} {ratio}"
            );
            assert!(adjusted < z);
        }
        assert_eq!(scale_adjusted(3.0, 1.0), 3.0);
        assert_eq!(scale_adjusted(0.0, 4.0), f64::NEG_INFINITY);
        // The thresholds of `5m` and `1h` for their shorter windows, at min_score 3.
        let m5_1m = raw_threshold(3.0, scale_ratio(1, 0));
        assert!((m5_1m - 3.46).abs() < 0.01, "{m5_1m}");
        let h1_1m = raw_threshold(3.0, scale_ratio(3, 0));
        assert!((h1_1m - 4.08).abs() < 0.01, "{h1_1m}");
        assert!((scale_adjusted(m5_1m, 5.0) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn expected_uses_the_rest_of_the_day_and_yesterday() {
        let mut sums = [0; RANGES];
        // 5m window: 10 authors in it, 24h holds 10 + 287 (one per remaining 5 minutes).
        sums[1] = 10;
        sums[H24] = 297;
        let mu = expected(1, &sums, DAY_MS);
        assert!((mu - 287.0 * 300_000.0 / (DAY_MS - 300_000) as f64).abs() < 1e-9);
        // Yesterday's same hour had 120 authors: 10 per 5 minutes expected.
        sums[YESTERDAY_HOUR] = 120;
        assert!((expected(1, &sums, 2 * DAY_MS) - 10.0).abs() < 1e-9);
        // Too little history: at least 1.
        assert_eq!(expected(1, &[0; RANGES], 60_000), 1.0);
        // 24h against the previous day.
        sums[PREVIOUS_DAY] = 480;
        assert!((expected(H24, &sums, 2 * DAY_MS) - 480.0).abs() < 1e-9);
    }

    /// A burst of many authors trends; a steady giant and a flood by few accounts do not.
    #[test]
    fn a_burst_trends_a_steady_giant_and_a_flood_do_not() {
        let layout = BucketLayout::default();
        let mut track = TrendTrack::new(0, layout, Capacity::DEFAULT, 1 << 16);
        let mut board = TrendBoard::new(layout, TrendParams::default());
        let mut posts: HashMap<(String, i64), i64> = HashMap::new();
        let mut author = 0u64;
        // Two hours: the giant has 40 new authors a minute throughout.
        let end = T0 + 2 * 60 * MIN;
        let mut t = T0;
        while t < end {
            for _ in 0..40 {
                author += 1;
                let a = author.to_string();
                track.record(t, "en", Author::Id(&a), &tag("giant"));
                *posts.entry(("giant".into(), t)).or_default() += 1;
            }
            // The last 5 minutes: a burst by 200 authors and a flood by 3 accounts.
            if t >= end - 5 * MIN {
                for i in 0..40 {
                    let a = format!("b{}", (t - T0) / MIN * 40 + i);
                    track.record(t, "en", Author::Id(&a), &tag("burst"));
                    *posts.entry(("burst".into(), t)).or_default() += 1;
                }
                for i in 0..300 {
                    let a = format!("spam{}", i % 3);
                    track.record(t, "en", Author::Id(&a), &tag("flood"));
                    *posts.entry(("flood".into(), t)).or_default() += 1;
                }
            }
            t += MIN;
        }
        sync(&mut track, &mut board, 0, end - MIN);
        let wm = end - MIN;
        let window_posts = |name: &str, w: Window| -> i64 {
            let from = wm - w.duration_ms().unwrap_or(0);
            posts
                .iter()
                .filter(|((n, t), _)| n == name && *t > from && *t <= wm)
                .map(|(_, c)| c)
                .sum()
        };
        // The first build finds candidates; the watermark has not moved at the second, so the
        // data stopped: they are confirmed and shown.
        let (first, _) = board.build(&|_| false);
        assert!(first.list(Window::M5, None).is_empty());
        assert!(board.has_pending());
        let (snap, transitions) = board.build(&|_| false);
        assert!(!board.has_pending());
        let list = snap.list(Window::M5, None);
        let names: Vec<&str> = list.iter().map(|t| &*t.tag).collect();
        assert_eq!(names, ["burst"], "{list:?}");
        assert_eq!(list[0].authors, 200);
        assert_eq!(list[0].posts, window_posts("burst", Window::M5));
        // Per-language counts by posts: the flood leads, exact.
        let counts = snap.counts(Window::M5, "en");
        assert_eq!(&*counts[0].0, "flood");
        assert_eq!(counts[0].1, window_posts("flood", Window::M5));
        assert_eq!(counts[1].1, window_posts("giant", Window::M5));
        assert_eq!(list[0].status, Status::Rising);
        assert_eq!(snap.list(Window::M5, Some("en")).len(), 1);
        assert!(snap.list(Window::M5, Some("ja")).is_empty());
        assert!(transitions.iter().any(|t| t.started && &*t.tag == "burst"));
        // Blocked: gone at the next build, with a stop transition.
        let (snap, transitions) = board.build(&|t| t == "burst");
        assert!(snap.list(Window::M5, None).is_empty());
        assert!(transitions.iter().any(|t| !t.started && &*t.tag == "burst"));
        assert_eq!(snap.languages[0].code.as_ref(), "en");
    }

    #[test]
    fn a_trend_cools_off_and_leaves() {
        let layout = BucketLayout::default();
        let mut track = TrendTrack::new(0, layout, Capacity::DEFAULT, 1 << 16);
        let mut board = TrendBoard::new(layout, TrendParams::default());
        for i in 0..200 {
            track.record(
                T0 + 3_600_000,
                "ja",
                Author::Id(&i.to_string()),
                &tag("news"),
            );
        }
        sync(&mut track, &mut board, 0, T0 + 3_600_000);
        board.build(&|_| false);
        let (snap, _) = board.build(&|_| false);
        let first = snap.list(Window::M1, None)[0].clone();
        assert_eq!(first.status, Status::Rising);
        assert_eq!(&*snap.list(Window::M1, Some("ja"))[0].tag, "news");
        // Two minutes later, nothing new: out of the 1m window, the score decays (half-life 30 s).
        sync(&mut track, &mut board, 0, T0 + 3_600_000 + 70_000);
        let (snap, _) = board.build(&|_| false);
        let later = &snap.list(Window::M1, None)[0];
        assert_eq!(later.status, Status::Cooling);
        assert!(later.score < first.score / 2.0);
        sync(&mut track, &mut board, 0, T0 + 3_600_000 + 10 * MIN);
        let (snap, transitions) = board.build(&|_| false);
        assert!(snap.list(Window::M1, None).is_empty());
        assert!(
            transitions
                .iter()
                .any(|t| !t.started && t.window == Window::M1)
        );
        // The 5m list still has it.
        assert!(board.episodes() > 0);
    }

    /// A candidate is shown only once it held for `confirm_ms` of event time: one that
    /// qualifies for a moment while the stream moves on is never shown nor announced.
    #[test]
    fn a_flash_is_not_shown_and_a_lasting_trend_is_after_confirm_ms() {
        let layout = BucketLayout::default();
        let mut track = TrendTrack::new(0, layout, Capacity::DEFAULT, 1 << 16);
        let mut board = TrendBoard::new(layout, TrendParams::default());
        let t = T0 + 3_600_000;
        // Ten accounts once each: looks like a burst…
        for i in 0..10 {
            track.record(t, "en", Author::Id(&format!("s{i}")), &tag("spam"));
            track.record(t, "en", Author::Id(&format!("b{i}")), &tag("news"));
        }
        sync(&mut track, &mut board, 0, t);
        let (snap, transitions) = board.build(&|_| false);
        assert!(snap.list(Window::M5, None).is_empty() && transitions.is_empty());
        // …5 s later the spam accounts have posted 20 more times each (a flood), the news
        // got 10 more authors: the flood is dropped unseen, the news is not confirmed yet.
        for i in 0..10 {
            for _ in 0..20 {
                track.record(t + 5_000, "en", Author::Id(&format!("s{i}")), &tag("spam"));
            }
            track.record(t + 5_000, "en", Author::Id(&format!("c{i}")), &tag("news"));
        }
        sync(&mut track, &mut board, 0, t + 5_000);
        let (snap, transitions) = board.build(&|_| false);
        assert!(snap.list(Window::M5, None).is_empty() && transitions.is_empty());
        // 10 s after it qualified, the news is shown and announced; the flood never was.
        track.record(t + 10_000, "en", Author::Id("d"), &tag("news"));
        sync(&mut track, &mut board, 0, t + 10_000);
        let (snap, transitions) = board.build(&|_| false);
        let names: Vec<&str> = snap
            .list(Window::M5, None)
            .iter()
            .map(|e| &*e.tag)
            .collect();
        assert_eq!(names, ["news"]);
        assert_eq!(snap.list(Window::M5, None)[0].started_at, t);
        assert!(transitions.iter().all(|x| &*x.tag == "news" && x.started));
    }

    #[test]
    fn a_fresh_rise_shows_through_the_last_minute_and_a_wobble_does_not() {
        let layout = BucketLayout::default();
        let mut track = TrendTrack::new(0, layout, Capacity::DEFAULT, 1 << 16);
        let mut board = TrendBoard::new(layout, TrendParams::default());
        // Two hours of history: 4 authors a minute for both tags (μ = 4 a minute).
        let start = T0;
        for minute in 0..120 {
            let at = start + minute * MIN + 30_000;
            for i in 0..4 {
                track.record(
                    at,
                    "en",
                    Author::Id(&format!("r{minute}-{i}")),
                    &tag("rise"),
                );
                track.record(
                    at,
                    "en",
                    Author::Id(&format!("w{minute}-{i}")),
                    &tag("wobble"),
                );
            }
        }
        // The newest minute: 20 authors of `rise` (z = 4.8 on 1m, but 2.8 on 5m: 36 authors
        // against 20), 9 of `wobble` (z = 2.0 on 1m: luck, once a minute is tested).
        let now = start + 120 * MIN + 30_000;
        for i in 0..20 {
            track.record(now, "en", Author::Id(&format!("new{i}")), &tag("rise"));
        }
        for i in 0..9 {
            track.record(now, "en", Author::Id(&format!("more{i}")), &tag("wobble"));
        }
        sync(&mut track, &mut board, 0, now);
        board.build(&|_| false);
        track.record(now + 10_000, "en", Author::Id("late"), &tag("other"));
        sync(&mut track, &mut board, 0, now + 10_000);
        let (snap, _) = board.build(&|_| false);
        for window in [Window::M5, Window::H1] {
            let list = snap.list(window, None);
            let names: Vec<&str> = list.iter().map(|e| &*e.tag).collect();
            assert_eq!(names, ["rise"], "{window:?}");
            assert_eq!(list[0].scored_over, Window::M1);
            // The score is the last minute's, adjusted: Q(score) = |W|/1m · Q(z_1m) (μ is 4 a
            // minute up to the history's edges).
            let z_1m = score(20, 4.0, 0.1);
            let ratio = window.duration_ms().unwrap_or(0) as f64 / MIN as f64;
            let want = scale_adjusted(z_1m, ratio);
            assert!(
                (list[0].score - want).abs() < 0.05,
                "{} vs {want}",
                list[0].score
            );
            assert!(list[0].score >= 3.0 && list[0].score < z_1m);
        }
        assert_eq!(snap.list(Window::M5, None)[0].authors, 36);
    }

    #[test]
    fn hostile_language_codes_are_bounded() {
        let mut board = TrendBoard::new(BucketLayout::default(), TrendParams::default());
        for i in 0..(MAX_LANGUAGES + 10) {
            let lang: String = format!("{:x}", i + 0xaaa)
                .chars()
                .map(|c| (b'a' + (c.to_digit(16).unwrap_or(0) as u8 % 26)) as char)
                .collect();
            board.apply(&CountsRecord::new(
                CountsKey::Language {
                    partition: 0,
                    measure: Measure::Authors,
                    resolution: Resolution::Fine,
                    start: T0,
                    lang,
                    tag: "x".into(),
                },
                Some(1),
            ));
        }
        assert!(board.languages.len() <= MAX_LANGUAGES + 1);
    }
}
