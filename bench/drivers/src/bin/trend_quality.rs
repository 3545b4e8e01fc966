//! Trend quality against ground truth (issue 15, "Proof of quality"). Not a test: it prints
//! figures; nothing passes or fails on them. Run it with `scripts/bench-trend-quality.sh`.
//!
//! **What it replays.** tweet-producer's `trend-quality` scenario
//! (`tweet_producer::sources::synthetic::scenario`: steady giants, daily cycles, organic
//! bursts, spam floods and slow risers over the synthetic background, with their ground
//! truth), generated in-process from a fixed start (2026-11-20T00:00:00Z) and seed, in event
//! time order, as fast as the machine goes: event time is compressed to whatever the counting
//! code takes.
//!
//! **Through the real counting code, in-process, no Kafka.** Per post, as the aggregator does
//! (`hashtag-aggregator/src/engine.rs`): the tags are extracted from the text
//! (`trends_core::tags::TagExtractor`, at most 30 a post); the post goes to partition
//! `murmur2(key) % P` (Kafka's default partitioner; the key is the author, as tweet-producer
//! keys `tweets`), where a `PartitionCounter` counts it (posts) and a `TrendTrack` (distinct
//! authors per tag, language and bucket; the aggregator's default capacities and 262,144
//! dedup slots). Every `TQ_BUILD_SECS` (10) seconds of event time, as the API does
//! (`trends-api/src/follower.rs`): every partition's new records (trend track first, then the
//! counter with its watermark) are applied to one `TrendBoard` (the trend score, nothing
//! blocked) and one `TrendsView` (counts by posts, what `sort=count` serves), then
//! `TrendBoard::build` and a `Ranker::build` of the view rank both. The top `TQ_TOP` (10) of
//! the all-language lists of `5m` and `1h` are then read from each: **trending** (the board's
//! list, by shown score) and **count** (the view's, by posts).
//!
//! **Rules of the figures** (event time; a build's time is its watermark):
//!
//! - Only builds at or after the truth's `evaluate_from` (start + 25 h: one day of history for
//!   the baseline, plus an hour so that "the same hour yesterday" exists) are looked at. The
//!   history is built every 10 s too, so episodes and their decay are as live.
//! - **Recall**: a burst is *found* in a (ranking, window) when it is in that top 10 at some
//!   build between its onset and its end (ground truth: `onset + rise + plateau + 2
//!   half-lives`). Recall = found / bursts.
//! - **Detection delay**: for a found burst, its first build in the top 10 within that span
//!   minus its onset, in minutes; median and p90 (nearest rank) over the found bursts (misses
//!   show in recall, not here).
//! - **False positives**: a steady giant or daily cycle that is in the top 10 at any evaluated
//!   build; a spam flood that is in it while its flood is in the window, i.e. between its
//!   onset and its end plus the window's length. Rate = such tags / tags of those three
//!   classes (each class also shown alone). A flood tag has a small organic base (a hijacked
//!   tag) and can trend from it like any small tag (see *noise*), outside its flood: the line
//!   under the table counts those too (the literal "ever in the top 10").
//! - **Slow risers** are neither: the share in the top 10 at some build from the start of
//!   their growth on is shown for information.
//! - **Noise**: background tags (flat, random authors) that were in the top 10 at any
//!   evaluated build, out of the vocabulary: the Poisson tail of small tags.
//! - **Top-10 slots**: over all evaluated builds, the share of the top-10 slots held by each
//!   kind of tag, and left empty. A burst is *in its span* from onset to end and *cooling*
//!   from its end until its last posts leave the window (end + the window's length), a flood
//!   *in its flood* from onset to end + the window, a riser *growing or grown* from its onset
//!   on. **Precision** = slots of bursts in their span or cooling and of growing or grown
//!   risers / filled slots: the share of what the list shows that is a real trend.
//! - **Oracle lower bound**: per burst, from its posts themselves, the first moment from its
//!   onset on when its distinct authors in the last 5 minutes (a sliding window, by the
//!   author key the posts are partitioned by) reach `min_authors`, minus the onset: no
//!   detector that needs `min_authors` authors in a 5-minute window can list it earlier.
//!   Median and p90 over the bursts, also for the last minute, for supports of 3 to 7, and at
//!   the build cadence with confirmation (the first build at or after it, plus `confirm_ms`).
//! - **Ideal scan** (a bound on what better statistics could gain, not a lower bound on every
//!   detector): per burst, the first build from its onset on at which some window of 1 to 5
//!   minutes ending at the build holds at least `min_authors` distinct authors that are
//!   surprising against the burst's **true** base rate (the ground truth's `base_per_min`, so
//!   no baseline error), by the **exact** Poisson tail widened for `dispersion`, adjusted for
//!   the window's length as the trend board does (`Q(z') = 5m/L · Q(z)`), at `z' ≥ min_score`;
//!   plus `confirm_ms`. Median and p90 over the bursts.
//!
//! **Settings** (environment): `TQ_SEED` (42), `TQ_DAYS` (3), `TQ_BACKGROUND_RATE` (8 posts/s),
//! `TQ_PARTITIONS` (12), `TQ_BUILD_SECS` (10), `TQ_TOP` (10), and the trend parameters
//! (`trends.*`, default as the API's): `TQ_MIN_AUTHORS` (5), `TQ_MIN_SCORE` (3),
//! `TQ_DISPERSION` (0.1), `TQ_FLOOD_RATIO` (5). `TQ_DETAIL=1` also prints every scripted tag.
//! `TQ_TRACE=<tag>` (e.g. `burst12`) prints, on stderr, every build from a minute before the
//! tag's onset to 8 minutes after: its distinct authors in the last 5 minutes counted from the
//! posts themselves, and its place, score and scoring window in the 5m list.
//!
//! **Cost.** 5 to 10 minutes on one core for the defaults (7.4 million posts, 25,920
//! builds); nine tenths of it is `TrendBoard::build`, mostly the sparklines of every listed
//! entry (each a hash lookup per bucket of the window, for up to 100 entries per language
//! and window).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use anyhow::{Context as _, bail};
use trends_core::EpochMillis;
use trends_core::counter::{Capacity, PartitionCounter};
use trends_core::tags::TagExtractor;
use trends_core::trend::{TrendBoard, TrendParams};
use trends_core::trend_track::{Author, TrendTrack};
use trends_core::view::{Ranker, TrendsView};
use trends_core::window::{BucketLayout, Window};
use tweet_producer::sources::synthetic::scenario::{
    Class, GroundTruth, Scenario, ScenarioConfig, ScriptedTag,
};

/// 2026-11-20T00:00:00Z: a fixed start, so a run does not depend on the clock.
const START: EpochMillis = 1_795_132_800_000;
const MINUTE_MS: f64 = 60_000.0;
const MINUTE: i64 = 60_000;
/// The aggregator's defaults.
const MAX_TAGS_PER_POST: usize = 30;
const DEDUP_SLOTS: usize = 262_144;
const WINDOWS: [Window; 2] = [Window::M5, Window::H1];
const RANKINGS: [&str; 2] = ["trending", "count"];

/// A number from the environment, or its default; a value that does not parse is an error
/// naming the variable.
fn env<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .replace('_', "")
            .parse()
            .ok()
            .with_context(|| format!("{name}: not a valid number: {v:?}")),
        _ => Ok(default),
    }
}

/// Kafka's murmur2 (the Java client's default partitioner), positive.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h & 0x7fff_ffff
}

/// One input partition: what the aggregator holds for it.
struct Partition {
    counter: PartitionCounter,
    track: TrendTrack,
}

/// Whether a top-10 entry of `tag` at `t` counts for it (see the module docs); `window_ms` is
/// the window's length.
fn counts(tag: &ScriptedTag, t: EpochMillis, window_ms: i64) -> bool {
    let (onset, end) = (tag.onset.unwrap_or(i64::MIN), tag.end.unwrap_or(i64::MAX));
    match tag.class {
        Class::Giant | Class::Cycle => true,
        Class::Burst => (onset..=end).contains(&t),
        Class::Flood => (onset..=end.saturating_add(window_ms)).contains(&t),
        Class::Riser => t >= onset,
    }
}

/// The kinds of top-10 slots (see the module docs), in table order.
const KINDS: [&str; 11] = [
    "burst in its span",
    "burst cooling",
    "burst at other times",
    "riser growing or grown",
    "riser before",
    "steady giant",
    "daily cycle",
    "flood in its flood",
    "flood tag outside",
    "background",
    "empty",
];

/// The kind of a top-10 entry at time `t`.
fn kind(tag: Option<&ScriptedTag>, t: EpochMillis, window_ms: i64) -> &'static str {
    let Some(tag) = tag else {
        return "background";
    };
    let inside = counts(tag, t, window_ms);
    match tag.class {
        Class::Burst if inside => "burst in its span",
        Class::Burst
            if tag
                .end
                .is_some_and(|e| t > e && t <= e.saturating_add(window_ms)) =>
        {
            "burst cooling"
        }
        Class::Burst => "burst at other times",
        Class::Flood if inside => "flood in its flood",
        Class::Flood => "flood tag outside",
        Class::Riser if inside => "riser growing or grown",
        Class::Riser => "riser before",
        Class::Giant => "steady giant",
        Class::Cycle => "daily cycle",
    }
}

/// What one (ranking, window) saw.
#[derive(Default)]
struct Seen {
    /// Per scripted tag (index into the truth): the first evaluated build in the top 10
    /// where it [`counts`].
    first: HashMap<usize, EpochMillis>,
    /// Per scripted tag: the first evaluated build in the top 10 at all.
    ever: HashMap<usize, EpochMillis>,
    /// Background tags ever in the top 10.
    noise: HashSet<String>,
    /// Top-10 slots held, per kind.
    slots: HashMap<&'static str, u64>,
}

impl Seen {
    /// Notes one build's top list `top` at `t`, of a window of `window_ms`.
    fn observe(
        &mut self,
        truth: &GroundTruth,
        index: &HashMap<&str, usize>,
        (top, t, window_ms): (&[&str], EpochMillis, i64),
        limit: usize,
    ) {
        for &name in top {
            let scripted = index.get(name).copied();
            let tag = scripted.map(|i| &truth.tags[i]);
            *self.slots.entry(kind(tag, t, window_ms)).or_default() += 1;
            let (Some(i), Some(tag)) = (scripted, tag) else {
                if !self.noise.contains(name) {
                    self.noise.insert(name.to_owned());
                }
                continue;
            };
            self.ever.entry(i).or_insert(t);
            if counts(tag, t, window_ms) {
                self.first.entry(i).or_insert(t);
            }
        }
        *self.slots.entry("empty").or_default() += (limit - top.len().min(limit)) as u64;
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        return "n/a".to_owned();
    }
    format!("{n}/{of} = {:.0}%", 100.0 * n as f64 / of as f64)
}

fn minutes(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |m| format!("{m:.1} min"))
}

/// `ms` as hours and minutes (`25h03m`).
fn format_hours(ms: i64) -> String {
    let minutes = ms / 60_000;
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

fn format_params(p: &TrendParams) -> String {
    format!(
        "trends.min_authors = {}, min_score = {}, dispersion = {}, flood_ratio = {}",
        p.min_authors, p.min_score, p.dispersion, p.flood_ratio
    )
}

/// What the run was set to.
struct Options {
    config: ScenarioConfig,
    params: TrendParams,
    partitions: i32,
    build_ms: i64,
    limit: usize,
    detail: bool,
    /// `TQ_TRACE`: a scripted tag whose first minutes after onset are printed build by build.
    trace: Option<String>,
}

impl Options {
    fn from_env() -> anyhow::Result<Options> {
        let defaults = ScenarioConfig::default();
        let config = ScenarioConfig {
            seed: env("TQ_SEED", defaults.seed)?,
            days: env("TQ_DAYS", defaults.days)?,
            background_rate: env("TQ_BACKGROUND_RATE", defaults.background_rate)?,
            ..defaults
        };
        if let Err(e) = config.check() {
            bail!("the scenario: {e}");
        }
        let default_params = TrendParams::default();
        let params = TrendParams {
            min_authors: env("TQ_MIN_AUTHORS", default_params.min_authors)?,
            min_score: env("TQ_MIN_SCORE", default_params.min_score)?,
            dispersion: env("TQ_DISPERSION", default_params.dispersion)?,
            flood_ratio: env("TQ_FLOOD_RATIO", default_params.flood_ratio)?,
            ..default_params
        };
        let options = Options {
            config,
            params,
            partitions: env("TQ_PARTITIONS", 12)?,
            build_ms: env::<i64>("TQ_BUILD_SECS", 10)?.saturating_mul(1_000),
            limit: env("TQ_TOP", 10)?,
            detail: std::env::var("TQ_DETAIL").is_ok_and(|v| v == "1"),
            trace: std::env::var("TQ_TRACE").ok().filter(|v| !v.is_empty()),
        };
        if !(1..=1024).contains(&options.partitions) {
            bail!("TQ_PARTITIONS must be within 1..=1024");
        }
        if !(1_000..=3_600_000).contains(&options.build_ms) {
            bail!("TQ_BUILD_SECS must be within 1..=3600");
        }
        if !(1..=100).contains(&options.limit) {
            bail!("TQ_TOP must be within 1..=100");
        }
        Ok(options)
    }
}

/// Everything a run saw, `[ranking][window]`.
struct Run {
    truth: GroundTruth,
    seen: [[Seen; 2]; 2],
    posts: u64,
    builds: u64,
    elapsed_secs: f64,
    build_secs: f64,
    board_entries: usize,
    /// Per burst (index into the truth): its posts from 5 minutes before its onset to its
    /// end, as (event time, author key), in time order, for the oracle.
    burst_posts: HashMap<usize, Vec<(EpochMillis, String)>>,
    params: TrendParams,
    build_ms: i64,
}

/// The first moment at or after `onset` when `posts` (time order) hold at least `support`
/// distinct authors in the `window_ms` before it (`(t − window_ms, t]`), as a delay from
/// `onset` in milliseconds; `None` if never.
fn oracle_delay(
    posts: &[(EpochMillis, String)],
    onset: EpochMillis,
    support: usize,
    window_ms: i64,
) -> Option<i64> {
    let mut inside: HashMap<&str, usize> = HashMap::new();
    let mut oldest = 0usize;
    let mut checked_onset = false;
    let evict = |inside: &mut HashMap<&str, usize>, oldest: &mut usize, now: EpochMillis| {
        while *oldest < posts.len() && posts[*oldest].0 <= now - window_ms {
            let author = posts[*oldest].1.as_str();
            if let Some(n) = inside.get_mut(author) {
                *n -= 1;
                if *n == 0 {
                    inside.remove(author);
                }
            }
            *oldest += 1;
        }
    };
    for (i, (t, author)) in posts.iter().enumerate() {
        if *t >= onset && !checked_onset {
            checked_onset = true;
            evict(&mut inside, &mut oldest, onset);
            if inside.len() >= support {
                return Some(0);
            }
        }
        *inside.entry(author.as_str()).or_default() += 1;
        // Posts at the same millisecond all count at once.
        if posts.get(i + 1).is_some_and(|(next, _)| next == t) {
            continue;
        }
        evict(&mut inside, &mut oldest, *t);
        if *t >= onset && inside.len() >= support {
            return Some(t - onset);
        }
    }
    None
}

/// The oracle's delays (minutes, sorted) over the bursts, for `support` authors in
/// `window_ms`; with `cadence`, rounded up to the next build (`build_ms` after the start) plus
/// `confirm_ms`.
fn oracle_delays(
    run: &Run,
    support: usize,
    window_ms: i64,
    cadence: Option<(i64, i64)>,
) -> (Vec<f64>, usize) {
    let mut delays = Vec::new();
    let mut never = 0;
    for (i, tag) in run.truth.tags.iter().enumerate() {
        let (Class::Burst, Some(onset)) = (tag.class, tag.onset) else {
            continue;
        };
        let posts = run.burst_posts.get(&i).map_or(&[][..], Vec::as_slice);
        match oracle_delay(posts, onset, support, window_ms) {
            Some(d) => {
                let d = match cadence {
                    Some((build_ms, confirm_ms)) => {
                        let at = onset + d - run.truth.start;
                        let build = (at + build_ms - 1) / build_ms * build_ms;
                        build + confirm_ms + run.truth.start - onset
                    }
                    None => d,
                };
                delays.push(d as f64 / MINUTE_MS);
            }
            None => never += 1,
        }
    }
    delays.sort_by(f64::total_cmp);
    (delays, never)
}

/// `ln P(X ≥ o)` for `X ~ Poisson(μ)`, `o > μ` (the first term times the sum of the ratios
/// of the next ones).
fn ln_poisson_tail(o: usize, mu: f64) -> f64 {
    let (mut sum, mut term, mut j) = (1.0f64, 1.0f64, o as f64);
    loop {
        j += 1.0;
        term *= mu / j;
        sum += term;
        if term <= 1e-17 * sum {
            break;
        }
    }
    let ln_factorial: f64 = (2..=o).map(|i| (i as f64).ln()).sum();
    -mu + o as f64 * mu.ln() - ln_factorial + sum.ln()
}

/// The `z` with `ln Q(z) = target` (bisection on the board's own normal tail).
fn inverse_tail(target: f64) -> f64 {
    let (mut low, mut high) = (-10.0f64, 60.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (low + high);
        if trends_core::trend::ln_upper_tail(mid) > target {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// The ideal scan's delay for one burst (module docs), in milliseconds from `onset`.
fn ideal_scan_delay(
    posts: &[(EpochMillis, String)],
    (onset, base_per_min): (EpochMillis, f64),
    params: &TrendParams,
    (start, build_ms): (EpochMillis, i64),
) -> Option<i64> {
    let minute = MINUTE;
    let first = start + (onset - start + build_ms - 1) / build_ms * build_ms;
    let mut t = first;
    while t <= onset + 20 * minute {
        for length in 1..=5i64 {
            let from = t - length * minute;
            let lo = posts.partition_point(|(at, _)| *at <= from);
            let hi = posts.partition_point(|(at, _)| *at <= t);
            let authors: HashSet<&str> = posts[lo..hi].iter().map(|(_, a)| a.as_str()).collect();
            let o = authors.len();
            let mu = base_per_min * length as f64;
            if (o as i64) < params.min_authors || o as f64 <= mu {
                continue;
            }
            let widen = (1.0 + params.dispersion * params.dispersion * mu).sqrt();
            let z = inverse_tail(ln_poisson_tail(o, mu)) / widen;
            let adjusted = trends_core::trend::scale_adjusted(z, 5.0 / length as f64);
            if adjusted >= params.min_score {
                return Some(t + params.confirm_ms - onset);
            }
        }
        t += build_ms;
    }
    None
}

/// Replays the scenario through the counting code (module docs).
fn replay(options: &Options) -> Run {
    let layout = BucketLayout::default();
    let mut scenario = Scenario::new(&options.config, START);
    let truth = scenario.truth().clone();
    let index: HashMap<&str, usize> = truth
        .tags
        .iter()
        .enumerate()
        .map(|(i, t)| (t.tag.as_str(), i))
        .collect();
    let mut parts: Vec<Partition> = (0..options.partitions)
        .map(|p| Partition {
            counter: PartitionCounter::with_capacity(p, layout, Capacity::DEFAULT),
            track: TrendTrack::new(p, layout, Capacity::DEFAULT, DEDUP_SLOTS),
        })
        .collect();
    let mut board = TrendBoard::new(layout, options.params);
    let mut view = TrendsView::new(layout);
    let mut ranker = Ranker::default();
    let mut extractor = TagExtractor::new();
    let mut seen: [[Seen; 2]; 2] = Default::default();
    let (mut posts, mut builds) = (0u64, 0u64);
    let (mut build_time, started) = (std::time::Duration::ZERO, Instant::now());
    let mut next_build = truth.start + options.build_ms;
    let traced: Option<(String, EpochMillis)> = options.trace.as_ref().and_then(|name| {
        let t = truth.tags.iter().find(|t| t.tag == *name)?;
        Some((t.tag.clone(), t.onset?))
    });
    let mut trace_posts: std::collections::VecDeque<(EpochMillis, String)> =
        std::collections::VecDeque::new();
    let mut burst_posts: HashMap<usize, Vec<(EpochMillis, String)>> = HashMap::new();
    loop {
        let post = scenario.next_post();
        let due = post.as_ref().map_or(truth.end, |p| p.event_time);
        while next_build <= due && next_build <= truth.end {
            let t0 = Instant::now();
            for part in &mut parts {
                for record in part.track.take_updates() {
                    board.apply(&record);
                }
                for record in part.counter.take_updates() {
                    board.apply(&record);
                    view.apply(record);
                }
            }
            let (trends, _) = board.build(&|_| false);
            let by_count = ranker.build(view.frame());
            build_time += t0.elapsed();
            builds += 1;
            next_build += options.build_ms;
            let Some(t) = trends.watermark.filter(|&t| t >= truth.evaluate_from) else {
                continue;
            };
            if let Some((tag, onset)) = &traced {
                let since = t - onset;
                while trace_posts
                    .front()
                    .is_some_and(|(at, _)| *at <= t - 300_000)
                {
                    trace_posts.pop_front();
                }
                if (-MINUTE_MS as i64..=8 * MINUTE_MS as i64).contains(&since) {
                    let authors: HashSet<&str> =
                        trace_posts.iter().map(|(_, a)| a.as_str()).collect();
                    let listed = trends
                        .list(Window::M5, None)
                        .iter()
                        .position(|e| &*e.tag == tag.as_str())
                        .map(|i| {
                            let e = &trends.list(Window::M5, None)[i];
                            format!(
                                "#{} score {:.2} authors {} expected {:.2} over {}",
                                i + 1,
                                e.score,
                                e.authors,
                                e.expected,
                                e.scored_over.as_str()
                            )
                        });
                    eprintln!(
                        "trace {tag} {:+.2} min: {} distinct authors in the last 5 min; {}",
                        since as f64 / MINUTE_MS,
                        authors.len(),
                        listed.as_deref().unwrap_or("not listed")
                    );
                }
            }
            for (w, &window) in WINDOWS.iter().enumerate() {
                let window_ms = window.duration_ms().unwrap_or(0);
                let trending: Vec<&str> = trends
                    .list(window, None)
                    .iter()
                    .take(options.limit)
                    .map(|e| &*e.tag)
                    .collect();
                seen[0][w].observe(&truth, &index, (&trending, t, window_ms), options.limit);
                let counted: Vec<&str> = by_count
                    .top(window, options.limit)
                    .iter()
                    .map(|e| &*e.tag)
                    .collect();
                seen[1][w].observe(&truth, &index, (&counted, t, window_ms), options.limit);
            }
        }
        let Some(post) = post else {
            break;
        };
        posts += 1;
        let (post, event_time) = (post.post, post.event_time);
        let key = post.author_id.as_deref().unwrap_or(&post.id);
        let p = murmur2(key.as_bytes()) as usize % parts.len();
        let tags = extractor.extract_tags(&post.text, post.hashtags.as_ref(), MAX_TAGS_PER_POST);
        if let Some((tag, _)) = &traced
            && tags.tags.iter().any(|t| t.tag == *tag)
        {
            trace_posts.push_back((event_time, key.to_owned()));
        }
        for t in &tags.tags {
            let Some(&i) = index.get(t.tag.as_str()) else {
                continue;
            };
            let tag = &truth.tags[i];
            if let (Class::Burst, Some(onset), Some(end)) = (tag.class, tag.onset, tag.end)
                && (onset - 5 * MINUTE..=end).contains(&event_time)
            {
                burst_posts
                    .entry(i)
                    .or_default()
                    .push((event_time, key.to_owned()));
            }
        }
        let part = &mut parts[p];
        part.counter.record(event_time, &tags.tags);
        let lang = trends_core::lang::code(post.lang.as_deref());
        let author = Author::of(post.author_id.as_deref(), &post.id);
        part.track.record(event_time, lang, author, &tags.tags);
        if posts % 1_000_000 == 0 {
            eprintln!(
                "  {posts} posts, event time {}, {builds} builds, {:.0} s",
                trends_core::format_rfc3339_millis(event_time),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Run {
        truth,
        seen,
        posts,
        builds,
        elapsed_secs: started.elapsed().as_secs_f64(),
        build_secs: build_time.as_secs_f64(),
        board_entries: board.entries(),
        burst_posts,
        params: options.params,
        build_ms: options.build_ms,
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_env()?;
    let (config, params, limit) = (&options.config, &options.params, options.limit);
    eprintln!(
        "trend_quality: {} days, seed {}, {} partitions, a build every {} s; {}",
        config.days,
        config.seed,
        options.partitions,
        options.build_ms / 1_000,
        format_params(params)
    );
    let run = replay(&options);
    let truth = &run.truth;
    let of_class = |c: Class| -> Vec<usize> {
        truth
            .tags
            .iter()
            .enumerate()
            .filter(|(_, t)| t.class == c)
            .map(|(i, _)| i)
            .collect()
    };
    let bursts = of_class(Class::Burst);
    let negatives: Vec<Vec<usize>> = [Class::Giant, Class::Cycle, Class::Flood]
        .into_iter()
        .map(of_class)
        .collect();
    let floods = &negatives[2];
    let all_negative: usize = negatives.iter().map(Vec::len).sum();
    let risers = of_class(Class::Riser);

    println!();
    println!(
        "Trend quality: {} simulated days from {} ({} evaluated, from {}), seed {}, {} posts, {} partitions, a build every {} s of event time; {}.",
        config.days,
        trends_core::format_rfc3339_millis(truth.start),
        format_hours(truth.end - truth.evaluate_from),
        trends_core::format_rfc3339_millis(truth.evaluate_from),
        config.seed,
        run.posts,
        options.partitions,
        options.build_ms / 1_000,
        format_params(params),
    );
    println!(
        "Scripted: {} organic bursts, {} steady giants, {} daily cycles, {} spam floods, {} slow risers; background {} posts/s over {} tags.",
        bursts.len(),
        negatives[0].len(),
        negatives[1].len(),
        floods.len(),
        risers.len(),
        config.background_rate,
        config.vocabulary
    );
    println!();
    println!(
        "| ranking | window | burst recall, top {limit} (goal ≥ 90%) | false positives: giants / cycles / floods | false positives (goal ≤ 5%) | delay median (goal ≤ 2 min) | delay p90 | slow risers shown | noise tags shown | precision |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (r, ranking) in RANKINGS.iter().enumerate() {
        for (w, window) in WINDOWS.iter().enumerate() {
            let s = &run.seen[r][w];
            let mut delays: Vec<f64> = bursts
                .iter()
                .filter_map(|i| {
                    let first = s.first.get(i)?;
                    Some((first - truth.tags[*i].onset?) as f64 / MINUTE_MS)
                })
                .collect();
            delays.sort_by(f64::total_cmp);
            let shown = |tags: &[usize]| tags.iter().filter(|i| s.first.contains_key(i)).count();
            let per_class: Vec<String> = negatives
                .iter()
                .map(|tags| format!("{}/{}", shown(tags), tags.len()))
                .collect();
            let shown_negative: usize = negatives.iter().map(|t| shown(t)).sum();
            let slot = |k: &str| s.slots.get(k).copied().unwrap_or(0);
            let filled: u64 = KINDS
                .iter()
                .filter(|k| **k != "empty")
                .map(|k| slot(k))
                .sum();
            let good =
                slot("burst in its span") + slot("burst cooling") + slot("riser growing or grown");
            println!(
                "| {ranking} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {:.0}% |",
                window.as_str(),
                pct(delays.len(), bursts.len()),
                per_class.join(" / "),
                pct(shown_negative, all_negative),
                minutes(percentile(&delays, 0.5)),
                minutes(percentile(&delays, 0.9)),
                pct(shown(&risers), risers.len()),
                s.noise.len(),
                config.vocabulary,
                100.0 * good as f64 / filled.max(1) as f64,
            );
        }
    }
    println!();
    let seen = &run.seen;
    let ever: Vec<String> = RANKINGS
        .iter()
        .enumerate()
        .flat_map(|(r, ranking)| {
            WINDOWS.iter().enumerate().map(move |(w, window)| {
                let s = &seen[r][w];
                let n = floods.iter().filter(|i| s.ever.contains_key(i)).count();
                format!("{ranking} {} {n}/{}", window.as_str(), floods.len())
            })
        })
        .collect();
    let mut rises: Vec<f64> = bursts
        .iter()
        .filter_map(|&i| {
            let tag = &truth.tags[i];
            Some((tag.peak_at? - tag.onset?) as f64 / MINUTE_MS)
        })
        .collect();
    rises.sort_by(f64::total_cmp);
    let bursts = &bursts;
    let before_peak: Vec<String> = RANKINGS
        .iter()
        .enumerate()
        .flat_map(|(r, ranking)| {
            WINDOWS.iter().enumerate().map(move |(w, window)| {
                let n = bursts
                    .iter()
                    .filter(|&&i| {
                        let first = seen[r][w].first.get(&i);
                        first.is_some_and(|&f| truth.tags[i].peak_at.is_some_and(|p| f <= p))
                    })
                    .count();
                format!("{ranking} {} {n}/{}", window.as_str(), bursts.len())
            })
        })
        .collect();
    println!(
        "Bursts rise linearly to their peak in {} (median; p90 {}); found before reaching it: {}.",
        minutes(percentile(&rises, 0.5)),
        minutes(percentile(&rises, 0.9)),
        before_peak.join(", ")
    );
    println!(
        "Flood tags in the top {limit} at any evaluated build, also from their organic base outside the flood: {}.",
        ever.join(", ")
    );
    print_oracle(&run);
    println!();
    println!("Share of the top-{limit} slots over the evaluated builds, by kind of tag:");
    println!();
    println!("| ranking | window | {} |", KINDS.join(" | "));
    println!("|---|---|{}", "---|".repeat(KINDS.len()));
    for (r, ranking) in RANKINGS.iter().enumerate() {
        for (w, window) in WINDOWS.iter().enumerate() {
            let slots = &run.seen[r][w].slots;
            let total: u64 = slots.values().sum();
            let cells: Vec<String> = KINDS
                .iter()
                .map(|k| {
                    let n = slots.get(k).copied().unwrap_or(0);
                    format!("{:.1}%", 100.0 * n as f64 / total.max(1) as f64)
                })
                .collect();
            println!(
                "| {ranking} | {} | {} |",
                window.as_str(),
                cells.join(" | ")
            );
        }
    }
    if options.detail {
        print_detail(&run);
    }
    println!();
    println!(
        "({} posts, {} builds in {:.0} s of wall time, {:.0} s of it applying and building; {} board entries at the end)",
        run.posts, run.builds, run.elapsed_secs, run.build_secs, run.board_entries
    );
    Ok(())
}

/// The oracle lower bound on the detection delay (module docs).
fn print_oracle(run: &Run) {
    let support = usize::try_from(run.params.min_authors.max(1)).unwrap_or(1);
    let cell = |(delays, never): (Vec<f64>, usize)| {
        let never = if never > 0 {
            format!(" ({never} never)")
        } else {
            String::new()
        };
        format!(
            "{} / {}{never}",
            minutes(percentile(&delays, 0.5)),
            minutes(percentile(&delays, 0.9))
        )
    };
    let five = 5 * MINUTE;
    let cadence = Some((run.build_ms, run.params.confirm_ms));
    println!();
    println!(
        "Oracle lower bound on the delay: per burst, from onset until its {support}th distinct author (trends.min_authors) in the last 5 minutes, from its posts; median / p90: **{}**; at the build cadence plus confirmation ({} s + {} s): {}; {support} authors in the last minute: {}.",
        cell(oracle_delays(run, support, five, None)),
        run.build_ms / 1_000,
        run.params.confirm_ms / 1_000,
        cell(oracle_delays(run, support, five, cadence)),
        cell(oracle_delays(run, support, MINUTE, None)),
    );
    let mut ideal: Vec<f64> = Vec::new();
    let mut never = 0usize;
    for (i, tag) in run.truth.tags.iter().enumerate() {
        let (Class::Burst, Some(onset)) = (tag.class, tag.onset) else {
            continue;
        };
        let posts = run.burst_posts.get(&i).map_or(&[][..], Vec::as_slice);
        match ideal_scan_delay(
            posts,
            (onset, tag.base_per_min),
            &run.params,
            (run.truth.start, run.build_ms),
        ) {
            Some(d) => ideal.push(d as f64 / MINUTE_MS),
            None => never += 1,
        }
    }
    ideal.sort_by(f64::total_cmp);
    println!(
        "Ideal scan (windows of 1–5 min against each burst's true base rate, exact Poisson tail, adjusted, z' ≥ min_score, plus confirmation; a bound on better statistics, not on every detector), median / p90: {}.",
        cell((ideal, never))
    );
    let others: Vec<String> = (3..=7)
        .map(|k| format!("{k}: {}", cell(oracle_delays(run, k, five, None))))
        .collect();
    println!(
        "Oracle by support (authors in the last 5 minutes), median / p90: {}.",
        others.join("; ")
    );
}

/// Every scripted tag: its truth and when each ranking first showed it (relative to its
/// onset, where it has one), counted as in the table.
fn print_detail(run: &Run) {
    let truth = &run.truth;
    println!();
    println!(
        "| tag | class | lang | base/min | peak/min | onset | rise | end | oracle | ideal scan | trending 5m | trending 1h | count 5m | count 1h |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let support = usize::try_from(run.params.min_authors.max(1)).unwrap_or(1);
    for (i, tag) in truth.tags.iter().enumerate() {
        let cell = |r: usize, w: usize| match (run.seen[r][w].first.get(&i), tag.onset) {
            (Some(first), Some(onset)) => {
                format!("{:+.1} min", (first - onset) as f64 / MINUTE_MS)
            }
            (Some(first), None) => format!("at {}", format_hours(first - truth.start)),
            (None, _) => "–".to_owned(),
        };
        let time =
            |t: Option<EpochMillis>| t.map_or("–".to_owned(), |t| format_hours(t - truth.start));
        let oracle = match (tag.class, tag.onset) {
            (Class::Burst, Some(onset)) => {
                let posts = run.burst_posts.get(&i).map_or(&[][..], Vec::as_slice);
                oracle_delay(posts, onset, support, 5 * MINUTE).map_or("never".to_owned(), |d| {
                    format!("+{:.1} min", d as f64 / MINUTE_MS)
                })
            }
            _ => "–".to_owned(),
        };
        let ideal = match (tag.class, tag.onset) {
            (Class::Burst, Some(onset)) => {
                let posts = run.burst_posts.get(&i).map_or(&[][..], Vec::as_slice);
                ideal_scan_delay(
                    posts,
                    (onset, tag.base_per_min),
                    &run.params,
                    (truth.start, run.build_ms),
                )
                .map_or("never".to_owned(), |d| {
                    format!("+{:.1} min", d as f64 / MINUTE_MS)
                })
            }
            _ => "–".to_owned(),
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.1} | {} | {} | {} | {oracle} | {ideal} | {} | {} | {} | {} |",
            tag.tag,
            tag.class.as_str(),
            tag.lang,
            tag.base_per_min,
            tag.peak_per_min,
            time(tag.onset),
            match (tag.onset, tag.peak_at) {
                (Some(o), Some(p)) => format!("{:.1} min", (p - o) as f64 / MINUTE_MS),
                _ => "–".to_owned(),
            },
            time(tag.end),
            cell(0, 0),
            cell(0, 1),
            cell(1, 0),
            cell(1, 1),
        );
    }
}
