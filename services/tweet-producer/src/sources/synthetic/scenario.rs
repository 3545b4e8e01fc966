//! Scripted scenarios with ground truth: the `trend-quality` scenario (issue 15, "Proof of
//! quality"). Pure, no I/O, no clock: the same [`ScenarioConfig`] and start time give the same
//! posts, byte for byte, and the same [`GroundTruth`].
//!
//! Why: "does trending find real bursts and ignore the rest?" can only be answered against a
//! stream whose truth is known. The scenario mixes labelled tags of five kinds into the
//! ordinary synthetic background, over `days` simulated days from `start`:
//!
//! - **background**: the synthetic [`Generator`] (Zipf tags of the vocabulary, eight
//!   languages, a random author among 1,000,000 per post), bursts off, `background_rate`
//!   posts per second;
//! - **steady giants** (`steadygiant1…`): flat, 1.5 to 5 posts/s each, every post by a random
//!   author;
//! - **daily cycles** (`dailycycle1…`): `mean · (1 + 0.9 · sin(2π · t / 24 h + phase))`, mean
//!   0.4 to 1.6 posts/s (peak 19 times the trough), random authors;
//! - **organic bursts** (`burst01…`): a tag with its own base rate all along; at `onset` it
//!   rises linearly for 1–10 min to `peak` = ×5–×50 the base (log-uniform), with a peak of
//!   6–120 posts a minute (log-uniform; the base follows), holds it 5–20 min, then decays to
//!   the base with a half-life of 5–20 min; every post by a random author (many authors). Its
//!   **end** in the ground truth is `onset + rise + plateau + 2 half-lives` (the excess down to
//!   a quarter);
//! - **spam floods** (`spamflood1…`): a tag with a small organic base (0.05–0.5 posts a
//!   minute) that 3–20 accounts post 5–50 times a second between `onset` and `end` (10–60 min);
//! - **slow risers** (`slowriser1…`): 0.5–2 posts a minute, growing exponentially ×10–×30 over
//!   6–12 hours from `onset` to `end`, flat at the top afterwards; random authors.
//!
//! Each scripted tag is in one language (drawn by the languages' shares), written in lower or
//! camel case (`#burst07`, `#Burst07`), at the end of a short text of that language's words,
//! and 30% of its posts carry one background tag too.
//!
//! **When things happen.** The first day (plus one hour) is history only: the trend score's
//! baseline needs the previous 24 hours and the same hour yesterday. Bursts, floods and risers
//! start in the **evaluated** span, from [`GroundTruth::evaluate_from`] = `start + 25 h`, and
//! are over (bursts, floods) or done growing (risers) before the end. Giants, cycles and the
//! bases run from the start.
//!
//! **How posts are made.** Second by second of event time: each series' rate at the middle of
//! the second gives a Poisson number of posts, each at a uniform millisecond of the second;
//! a second's posts come out sorted by time. So memory is one second of posts, whatever the
//! number of days.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use trends_core::EpochMillis;
use trends_core::post::RawPost;

use super::generator::{Generator, GeneratorConfig};
use super::lang::{LANGUAGES, Language};
use super::rng::Rng;
use super::vocabulary::Vocabulary;

/// The name of the scenario in `source.synthetic.scenario`.
pub const TREND_QUALITY: &str = "trend-quality";

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The history before anything scripted starts: a day for the baseline, an hour for "the
/// same hour yesterday" to be known.
pub const HISTORY_MS: i64 = DAY_MS + HOUR_MS;

/// Share of a scripted tag's posts that carry one background tag too.
const EXTRA_TAG_SHARE: f64 = 0.3;
/// Relative amplitude of the daily cycles.
const CYCLE_AMPLITUDE: f64 = 0.9;

/// What a scenario is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// Same seed (and start), same posts and truth.
    pub seed: u64,
    /// Simulated days, at least 2 (the first is history).
    pub days: u32,
    /// Background posts per second of event time.
    pub background_rate: f64,
    /// Distinct background hashtags.
    pub vocabulary: usize,
    pub giants: usize,
    pub cycles: usize,
    pub bursts: usize,
    pub floods: usize,
    pub risers: usize,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 42,
            days: 3,
            background_rate: 8.0,
            vocabulary: 400,
            giants: 5,
            cycles: 5,
            bursts: 30,
            floods: 10,
            risers: 4,
        }
    }
}

impl ScenarioConfig {
    /// Why the config cannot make a scenario, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=30).contains(&self.days) {
            return Err(format!("days must be within 2..=30, got {}", self.days));
        }
        if !self.background_rate.is_finite() || !(0.0..=100_000.0).contains(&self.background_rate) {
            return Err(format!(
                "the background rate must be within 0..=100000 posts/s, got {}",
                self.background_rate
            ));
        }
        if self.vocabulary == 0 {
            return Err("the vocabulary needs at least one tag".to_owned());
        }
        let scripted = self.giants + self.cycles + self.bursts + self.floods + self.risers;
        if scripted > 1_000 {
            return Err(format!("at most 1000 scripted tags, got {scripted}"));
        }
        Ok(())
    }
}

/// The kind of a scripted tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Giant,
    Cycle,
    Burst,
    Flood,
    Riser,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Giant,
        Class::Cycle,
        Class::Burst,
        Class::Flood,
        Class::Riser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Giant => "steady giant",
            Class::Cycle => "daily cycle",
            Class::Burst => "organic burst",
            Class::Flood => "spam flood",
            Class::Riser => "slow riser",
        }
    }

    /// Whether a trend detector should never show it (the false-positive classes).
    pub fn must_not_trend(self) -> bool {
        matches!(self, Class::Giant | Class::Cycle | Class::Flood)
    }
}

/// One scripted tag and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedTag {
    /// The counting form (lowercase ASCII).
    pub tag: String,
    pub class: Class,
    /// The language of its posts.
    pub lang: &'static str,
    /// Bursts: the onset; floods: the first flood post; risers: the start of the growth.
    /// `None` for giants and cycles.
    pub onset: Option<EpochMillis>,
    /// Bursts: `onset + rise + plateau + 2 half-lives`; floods: the end of the flood; risers:
    /// the end of the growth. `None` for giants and cycles.
    pub end: Option<EpochMillis>,
    /// Bursts: when the rise ends and the peak is reached (`onset` + 1–10 min); `None` for
    /// the others.
    pub peak_at: Option<EpochMillis>,
    /// Posts a minute outside the event (giants: always; cycles: the daily mean).
    pub base_per_min: f64,
    /// Posts a minute at the top (cycles: at the daily peak; floods: the accounts' volume).
    pub peak_per_min: f64,
    /// Floods: the accounts posting it.
    pub accounts: Option<u32>,
}

/// What the scenario contains: the span and every scripted tag.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub start: EpochMillis,
    /// The first millisecond after the scenario.
    pub end: EpochMillis,
    /// Where history ends and scripted events may start: `start + 25 h`.
    pub evaluate_from: EpochMillis,
    pub tags: Vec<ScriptedTag>,
}

impl GroundTruth {
    /// The scripted tag `tag` (counting form), if any.
    pub fn get(&self, tag: &str) -> Option<&ScriptedTag> {
        self.tags.iter().find(|t| t.tag == tag)
    }
}

/// One post of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioPost {
    pub post: RawPost,
    /// `created_at` in epoch milliseconds.
    pub event_time: EpochMillis,
}

/// How a series' rate (posts per second) moves.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Flat {
        rate: f64,
    },
    Cycle {
        mean: f64,
        phase: f64,
    },
    Burst {
        base: f64,
        peak: f64,
        onset: EpochMillis,
        rise: EpochMillis,
        plateau: EpochMillis,
        half_life: EpochMillis,
    },
    Flood {
        base: f64,
        rate: f64,
        from: EpochMillis,
        to: EpochMillis,
        accounts: u32,
    },
    Riser {
        base: f64,
        factor: f64,
        from: EpochMillis,
        growth: EpochMillis,
    },
}

impl Shape {
    /// Posts per second at `t` (`start` is the scenario's): by random authors, and by the
    /// flood accounts.
    fn rates(&self, t: EpochMillis, start: EpochMillis) -> (f64, f64) {
        match *self {
            Shape::Flat { rate } => (rate, 0.0),
            Shape::Cycle { mean, phase } => {
                let day = (t - start) as f64 / DAY_MS as f64;
                (
                    mean * (1.0 + CYCLE_AMPLITUDE * (TAU * day + phase).sin()),
                    0.0,
                )
            }
            Shape::Burst {
                base,
                peak,
                onset,
                rise,
                plateau,
                half_life,
            } => {
                let excess = peak - base;
                let rate = if t < onset {
                    base
                } else if t < onset + rise {
                    base + excess * (t - onset) as f64 / rise as f64
                } else if t < onset + rise + plateau {
                    peak
                } else {
                    let decayed = (t - onset - rise - plateau) as f64 / half_life as f64;
                    base + excess * (-decayed).exp2()
                };
                (rate, 0.0)
            }
            Shape::Flood {
                base,
                rate,
                from,
                to,
                ..
            } => (base, if (from..to).contains(&t) { rate } else { 0.0 }),
            Shape::Riser {
                base,
                factor,
                from,
                growth,
            } => {
                let progress = ((t - from) as f64 / growth as f64).clamp(0.0, 1.0);
                (base * factor.powf(progress), 0.0)
            }
        }
    }
}

/// A scripted tag's series.
#[derive(Debug, Clone)]
struct Series {
    /// Lower and camel spellings.
    spellings: [String; 2],
    language: &'static Language,
    shape: Shape,
    /// Index of the series (names its flood accounts).
    index: usize,
}

/// The scenario: an iterator of posts in event-time order, and its ground truth.
#[derive(Debug, Clone)]
pub struct Scenario {
    truth: GroundTruth,
    series: Vec<Series>,
    background: Generator,
    background_rate: f64,
    vocabulary: Vocabulary,
    rng: Rng,
    seed: u64,
    /// Start of the next second to generate.
    next_second: EpochMillis,
    pending: VecDeque<ScenarioPost>,
    sequence: u64,
}

/// Log-uniform in `[lo, hi]`.
fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.next_f64() * (hi.ln() - lo.ln())).exp()
}

/// Uniform milliseconds in `[lo, hi]`.
fn uniform_ms(rng: &mut Rng, lo: EpochMillis, hi: EpochMillis) -> EpochMillis {
    lo + (rng.next_f64() * (hi - lo).max(0) as f64) as EpochMillis
}

/// A Poisson number with mean `lambda`: Knuth's product of uniforms below 30, a rounded
/// normal above (the difference does not matter here, and the product underflows for large
/// means).
fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda < 30.0 {
        let limit = (-lambda).exp();
        let mut product = rng.next_f64();
        let mut k = 0;
        while product > limit {
            k += 1;
            product *= rng.next_f64();
        }
        return k;
    }
    // Box–Muller.
    let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
    let u2 = rng.next_f64();
    let z = (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos();
    (lambda + lambda.sqrt() * z).round().max(0.0) as u64
}

/// A language drawn by the languages' shares.
fn pick_language(rng: &mut Rng) -> &'static Language {
    let total: f64 = LANGUAGES.iter().map(|l| l.weight).sum();
    let mut x = rng.next_f64() * total;
    for language in LANGUAGES {
        if x < language.weight {
            return language;
        }
        x -= language.weight;
    }
    &LANGUAGES[0]
}

fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

impl Scenario {
    /// The scenario of `config` starting at `start` (epoch milliseconds). The config must
    /// pass [`ScenarioConfig::check`]; a config that does not is clamped into range.
    pub fn new(config: &ScenarioConfig, start: EpochMillis) -> Scenario {
        let days = i64::from(config.days.clamp(2, 30));
        let end = start + days * DAY_MS;
        let evaluate_from = start + HISTORY_MS;
        let mut script = Rng::derived(config.seed, 0x5CE7_A210);
        let mut series = Vec::new();
        let mut tags = Vec::new();
        let mut add =
            |name: String,
             class: Class,
             shape: Shape,
             script: &mut Rng,
             truth: (Option<EpochMillis>, Option<EpochMillis>, f64, f64)| {
                let language = pick_language(script);
                let index = series.len();
                series.push(Series {
                    spellings: [name.clone(), camel(&name)],
                    language,
                    shape,
                    index,
                });
                let accounts = match shape {
                    Shape::Flood { accounts, .. } => Some(accounts),
                    _ => None,
                };
                tags.push(ScriptedTag {
                    tag: name,
                    class,
                    lang: language.code,
                    onset: truth.0,
                    end: truth.1,
                    peak_at: match shape {
                        Shape::Burst { onset, rise, .. } => Some(onset + rise),
                        _ => None,
                    },
                    base_per_min: truth.2,
                    peak_per_min: truth.3,
                    accounts,
                });
            };
        for i in 0..config.giants {
            let rate = log_uniform(&mut script, 1.5, 5.0);
            let truth = (None, None, rate * 60.0, rate * 60.0);
            let name = format!("steadygiant{}", i + 1);
            add(name, Class::Giant, Shape::Flat { rate }, &mut script, truth);
        }
        for i in 0..config.cycles {
            let mean = log_uniform(&mut script, 0.4, 1.6);
            let phase = script.next_f64() * TAU;
            let truth = (
                None,
                None,
                mean * 60.0,
                mean * 60.0 * (1.0 + CYCLE_AMPLITUDE),
            );
            let name = format!("dailycycle{}", i + 1);
            add(
                name,
                Class::Cycle,
                Shape::Cycle { mean, phase },
                &mut script,
                truth,
            );
        }
        for i in 0..config.bursts {
            let peak = log_uniform(&mut script, 6.0, 120.0) / 60.0;
            let base = peak / log_uniform(&mut script, 5.0, 50.0);
            let rise = uniform_ms(&mut script, MINUTE_MS, 10 * MINUTE_MS);
            let plateau = uniform_ms(&mut script, 5 * MINUTE_MS, 20 * MINUTE_MS);
            let half_life = uniform_ms(&mut script, 5 * MINUTE_MS, 20 * MINUTE_MS);
            let last = end - rise - plateau - 3 * half_life - 10 * MINUTE_MS;
            let onset = uniform_ms(&mut script, evaluate_from + 10 * MINUTE_MS, last);
            let over = onset + rise + plateau + 2 * half_life;
            let truth = (Some(onset), Some(over), base * 60.0, peak * 60.0);
            let shape = Shape::Burst {
                base,
                peak,
                onset,
                rise,
                plateau,
                half_life,
            };
            add(
                format!("burst{:02}", i + 1),
                Class::Burst,
                shape,
                &mut script,
                truth,
            );
        }
        for i in 0..config.floods {
            let base = log_uniform(&mut script, 0.05, 0.5) / 60.0;
            let rate = log_uniform(&mut script, 5.0, 50.0);
            let accounts = script.range_inclusive(3, 20) as u32;
            let length = uniform_ms(&mut script, 10 * MINUTE_MS, 60 * MINUTE_MS);
            let from = uniform_ms(&mut script, evaluate_from, end - length - 10 * MINUTE_MS);
            let truth = (Some(from), Some(from + length), base * 60.0, rate * 60.0);
            let shape = Shape::Flood {
                base,
                rate,
                from,
                to: from + length,
                accounts,
            };
            add(
                format!("spamflood{}", i + 1),
                Class::Flood,
                shape,
                &mut script,
                truth,
            );
        }
        for i in 0..config.risers {
            let base = log_uniform(&mut script, 0.5, 2.0) / 60.0;
            let factor = log_uniform(&mut script, 10.0, 30.0);
            let growth = uniform_ms(&mut script, 6 * HOUR_MS, 12 * HOUR_MS);
            let from = uniform_ms(
                &mut script,
                evaluate_from,
                (end - growth - HOUR_MS).max(evaluate_from),
            );
            let truth = (
                Some(from),
                Some(from + growth),
                base * 60.0,
                base * factor * 60.0,
            );
            let shape = Shape::Riser {
                base,
                factor,
                from,
                growth,
            };
            add(
                format!("slowriser{}", i + 1),
                Class::Riser,
                shape,
                &mut script,
                truth,
            );
        }
        let background = Generator::new(GeneratorConfig {
            seed: config.seed,
            vocabulary: config.vocabulary.max(1),
            burst_every_ms: 0,
            burst_ms: 0,
        });
        Scenario {
            truth: GroundTruth {
                start,
                end,
                evaluate_from,
                tags,
            },
            series,
            vocabulary: Vocabulary::new(config.vocabulary.max(1)),
            background,
            background_rate: config.background_rate.max(0.0),
            rng: Rng::derived(config.seed, 0x5CE7_A211),
            seed: config.seed,
            next_second: start,
            pending: VecDeque::new(),
            sequence: 0,
        }
    }

    pub fn truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// The next post in event-time order; `None` after the last.
    pub fn next_post(&mut self) -> Option<ScenarioPost> {
        while self.pending.is_empty() {
            if self.next_second >= self.truth.end {
                return None;
            }
            self.fill_second();
        }
        self.pending.pop_front()
    }

    /// Generates the posts of the second starting at `next_second`.
    fn fill_second(&mut self) {
        let second = self.next_second;
        self.next_second += SECOND_MS;
        let middle = second + SECOND_MS / 2;
        let mut posts: Vec<ScenarioPost> = Vec::new();
        for _ in 0..poisson(&mut self.rng, self.background_rate) {
            let t = second + self.rng.below(SECOND_MS as u64) as i64;
            let generated = self.background.next_post(t);
            posts.push(ScenarioPost {
                post: generated.post,
                event_time: t,
            });
        }
        for s in 0..self.series.len() {
            let (crowd, accounts) = self.series[s].shape.rates(middle, self.truth.start);
            for _ in 0..poisson(&mut self.rng, crowd) {
                let author = (self.rng.below(1_000_000) + 1).to_string();
                posts.push(self.scripted(s, second, author));
            }
            for _ in 0..poisson(&mut self.rng, accounts) {
                let n = match self.series[s].shape {
                    Shape::Flood { accounts, .. } => u64::from(accounts.max(1)),
                    _ => 1,
                };
                let author = format!("spam-{}-{}", self.series[s].index, self.rng.below(n));
                posts.push(self.scripted(s, second, author));
            }
        }
        // Stable: posts of one millisecond keep their order of generation.
        posts.sort_by_key(|p| p.event_time);
        self.pending.extend(posts);
    }

    /// One post of series `s` in the second starting at `second`.
    fn scripted(&mut self, s: usize, second: EpochMillis, author: String) -> ScenarioPost {
        let t = second + self.rng.below(SECOND_MS as u64) as i64;
        let series = &self.series[s];
        let language = series.language;
        let separator = if language.spaced { " " } else { "" };
        let words = self.rng.range_inclusive(4, 12);
        let mut text = String::new();
        for i in 0..words {
            if i > 0 {
                text.push_str(separator);
            }
            let word: &&str = self.rng.pick(language.words);
            text.push_str(word);
        }
        text.push_str(" #");
        text.push_str(&series.spellings[self.rng.index(2)]);
        if self.rng.chance(EXTRA_TAG_SHARE) {
            let rank = self.vocabulary.sample(&mut self.rng);
            text.push_str(" #");
            text.push_str(&self.vocabulary.tag(rank).canonical);
        }
        let id = format!("tq-{}-{}", self.seed, self.sequence);
        self.sequence += 1;
        ScenarioPost {
            post: RawPost {
                id,
                text,
                created_at: trends_core::format_rfc3339_millis(t),
                author_id: Some(author),
                lang: Some(language.code.to_owned()),
                source: Some("synthetic".to_owned()),
                hashtags: None,
            },
            event_time: t,
        }
    }
}

impl Iterator for Scenario {
    type Item = ScenarioPost;

    fn next(&mut self) -> Option<ScenarioPost> {
        self.next_post()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use trends_core::tags::tags_for_post;

    use super::*;

    const T0: EpochMillis = 1_795_132_800_000; // 2026-11-20T00:00:00Z

    fn small() -> ScenarioConfig {
        ScenarioConfig {
            background_rate: 2.0,
            ..ScenarioConfig::default()
        }
    }

    /// Posts of `tag` per minute, by minute from T0, and its distinct authors per minute.
    fn per_minute(posts: &[ScenarioPost], tag: &str) -> (HashMap<i64, u32>, HashMap<i64, usize>) {
        let mut counts: HashMap<i64, u32> = HashMap::new();
        let mut authors: HashMap<i64, HashSet<String>> = HashMap::new();
        for p in posts {
            // One tag of each class in these tests: a substring match is exact enough (the
            // extraction itself is tested below).
            if p.post.text.to_lowercase().contains(&format!("#{tag}")) {
                let minute = (p.event_time - T0) / MINUTE_MS;
                *counts.entry(minute).or_default() += 1;
                authors
                    .entry(minute)
                    .or_default()
                    .insert(p.post.author_id.clone().unwrap_or_default());
            }
        }
        (
            counts,
            authors.into_iter().map(|(m, a)| (m, a.len())).collect(),
        )
    }

    #[test]
    fn the_same_seed_gives_the_same_posts_and_truth() {
        let a = Scenario::new(&small(), T0);
        let b = Scenario::new(&small(), T0);
        assert_eq!(a.truth(), b.truth());
        let pa: Vec<ScenarioPost> = a.take(5_000).collect();
        let pb: Vec<ScenarioPost> = b.take(5_000).collect();
        assert_eq!(pa, pb);
        let other = Scenario::new(&ScenarioConfig { seed: 7, ..small() }, T0);
        assert_ne!(other.truth().tags, Scenario::new(&small(), T0).truth().tags);
    }

    #[test]
    fn the_truth_has_every_class_and_events_in_the_evaluated_span() {
        let config = small();
        let scenario = Scenario::new(&config, T0);
        let truth = scenario.truth();
        assert_eq!(truth.end, T0 + 3 * DAY_MS);
        assert_eq!(truth.evaluate_from, T0 + 25 * HOUR_MS);
        let count = |class: Class| truth.tags.iter().filter(|t| t.class == class).count();
        assert_eq!(count(Class::Giant), config.giants);
        assert_eq!(count(Class::Cycle), config.cycles);
        assert_eq!(count(Class::Burst), config.bursts);
        assert_eq!(count(Class::Flood), config.floods);
        assert_eq!(count(Class::Riser), config.risers);
        let vocabulary = Vocabulary::new(config.vocabulary);
        let names: HashSet<&str> = truth.tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(names.len(), truth.tags.len(), "names are unique");
        for tag in &truth.tags {
            assert!(
                vocabulary.tags().iter().all(|v| v.canonical != tag.tag),
                "{} is not a background tag",
                tag.tag
            );
            match tag.class {
                Class::Giant | Class::Cycle => assert!(tag.onset.is_none() && tag.end.is_none()),
                _ => {
                    let (onset, end) = (tag.onset.unwrap_or(0), tag.end.unwrap_or(0));
                    assert!(onset >= truth.evaluate_from, "{tag:?}");
                    assert!(onset < end && end < truth.end, "{tag:?}");
                }
            }
            if tag.class == Class::Burst {
                let rise = tag.peak_at.unwrap_or(0) - tag.onset.unwrap_or(0);
                assert!((MINUTE_MS..=10 * MINUTE_MS).contains(&rise), "{tag:?}");
                let factor = tag.peak_per_min / tag.base_per_min;
                assert!((5.0..=50.0).contains(&factor), "{tag:?}");
                assert!((6.0..=120.0).contains(&tag.peak_per_min), "{tag:?}");
            }
            if tag.class == Class::Flood {
                assert!(tag.accounts.is_some_and(|a| (3..=20).contains(&a)));
            }
        }
    }

    #[test]
    fn posts_come_in_time_order_within_the_span_and_follow_the_contract() {
        let mut scenario = Scenario::new(&small(), T0);
        let mut last = T0;
        let mut ids = HashSet::new();
        for _ in 0..20_000 {
            let p = scenario.next_post().expect("3 days of posts");
            assert!(p.event_time >= last && p.event_time < T0 + 3 * DAY_MS);
            last = p.event_time;
            assert!(ids.insert(p.post.id.clone()), "unique ids");
            let json = serde_json::to_vec(&p.post).expect("serializes");
            let parsed = trends_core::post::parse_post(&json).expect("valid per the contract");
            assert_eq!(parsed.event_time, p.event_time);
            assert!(p.post.author_id.is_some() && p.post.lang.is_some());
        }
    }

    /// Each class looks like its description, in the posts themselves.
    #[test]
    fn each_class_has_its_shape() {
        let config = ScenarioConfig {
            background_rate: 0.0,
            giants: 1,
            cycles: 1,
            bursts: 1,
            floods: 1,
            risers: 0,
            ..ScenarioConfig::default()
        };
        let scenario = Scenario::new(&config, T0);
        let truth = scenario.truth().clone();
        let posts: Vec<ScenarioPost> = scenario.collect();
        let minutes = (3 * DAY_MS / MINUTE_MS) as f64;

        // Giant: flat; its rate as stated; many authors.
        let giant = &truth.tags[0];
        let (counts, authors) = per_minute(&posts, &giant.tag);
        let total: u32 = counts.values().sum();
        let mean = f64::from(total) / minutes;
        assert!(
            (mean / giant.base_per_min - 1.0).abs() < 0.02,
            "{mean} vs {giant:?}"
        );
        let first_day: u32 = (0..1440)
            .map(|m| counts.get(&m).copied().unwrap_or(0))
            .sum();
        let last_day: u32 = (2880..4320)
            .map(|m| counts.get(&m).copied().unwrap_or(0))
            .sum();
        assert!((f64::from(first_day) / f64::from(last_day) - 1.0).abs() < 0.03);
        assert!(
            authors
                .values()
                .all(|&a| a as f64 > 0.8 * giant.base_per_min * 0.5)
        );

        // Cycle: the busiest hour of a day is many times its quietest, on every day.
        let cycle = &truth.tags[1];
        let (counts, _) = per_minute(&posts, &cycle.tag);
        for day in 0..3 {
            let hours: Vec<u32> = (0..24)
                .map(|h| {
                    (0..60)
                        .map(|m| counts.get(&(day * 1440 + h * 60 + m)).copied().unwrap_or(0))
                        .sum()
                })
                .collect();
            let (max, min) = (
                hours.iter().max().copied().unwrap_or(0),
                hours.iter().min().copied().unwrap_or(0),
            );
            assert!(f64::from(max) > 8.0 * f64::from(min.max(1)), "{hours:?}");
        }

        // Burst: at its peak many times its base, by about as many authors as posts.
        let burst = &truth.tags[2];
        let (counts, authors) = per_minute(&posts, &burst.tag);
        let onset = (burst.onset.unwrap_or(0) - T0) / MINUTE_MS;
        let before: u32 = (onset - 600..onset)
            .map(|m| counts.get(&m).copied().unwrap_or(0))
            .sum();
        let base = f64::from(before) / 600.0;
        let (best_minute, best) = counts
            .iter()
            .filter(|(m, _)| (onset..onset + 60).contains(*m))
            .max_by_key(|(_, c)| **c)
            .map(|(m, c)| (*m, *c))
            .unwrap_or_default();
        assert!(
            f64::from(best) > 4.0 * base.max(burst.base_per_min),
            "{best} vs {base}: {burst:?}"
        );
        assert!(authors[&best_minute] as f64 >= 0.9 * f64::from(best));

        // Flood: huge volume by at most its accounts.
        let flood = &truth.tags[3];
        let (from, to) = (flood.onset.unwrap_or(0), flood.end.unwrap_or(0));
        let flood_posts: Vec<&ScenarioPost> = posts
            .iter()
            .filter(|p| (from..to).contains(&p.event_time))
            .filter(|p| {
                p.post
                    .text
                    .to_lowercase()
                    .contains(&format!("#{}", flood.tag))
            })
            .collect();
        let accounts: HashSet<&str> = flood_posts
            .iter()
            .filter_map(|p| p.post.author_id.as_deref())
            .filter(|a| a.starts_with("spam-"))
            .collect();
        assert!(accounts.len() as u32 <= flood.accounts.unwrap_or(0));
        let minutes = (to - from) as f64 / MINUTE_MS as f64;
        let per_min = flood_posts.len() as f64 / minutes;
        assert!(per_min > 0.9 * flood.peak_per_min, "{per_min} vs {flood:?}");
        assert!(per_min >= 300.0);
    }

    #[test]
    fn a_riser_grows_over_hours() {
        let config = ScenarioConfig {
            background_rate: 0.0,
            giants: 0,
            cycles: 0,
            bursts: 0,
            floods: 0,
            risers: 1,
            ..ScenarioConfig::default()
        };
        let scenario = Scenario::new(&config, T0);
        let riser = scenario.truth().tags[0].clone();
        let posts: Vec<ScenarioPost> = scenario.collect();
        let (counts, _) = per_minute(&posts, &riser.tag);
        let hour = |m: i64| -> u32 {
            (m..m + 60)
                .map(|m| counts.get(&m).copied().unwrap_or(0))
                .sum()
        };
        let (from, end) = (
            (riser.onset.unwrap_or(0) - T0) / MINUTE_MS,
            (riser.end.unwrap_or(0) - T0) / MINUTE_MS,
        );
        let early = hour(from - 60);
        let late = hour(end);
        assert!(
            f64::from(late) > 5.0 * f64::from(early.max(1)),
            "{early} → {late}"
        );
        // Still rising in the middle: no jump.
        let middle = hour((from + end) / 2);
        assert!(middle > early && middle < late, "{early} {middle} {late}");
    }

    #[test]
    fn scripted_tags_are_extracted_from_the_text_in_every_language() {
        let config = ScenarioConfig {
            background_rate: 0.0,
            giants: 40,
            ..small()
        };
        let scenario = Scenario::new(&config, T0);
        let truth = scenario.truth().clone();
        let languages: HashSet<&str> = truth.tags.iter().map(|t| t.lang).collect();
        assert!(languages.len() >= 4, "{languages:?}");
        for p in scenario.take(20_000) {
            let tags = tags_for_post(&p.post);
            let scripted: Vec<&ScriptedTag> = tags.iter().filter_map(|t| truth.get(t)).collect();
            assert_eq!(scripted.len(), 1, "{}", p.post.text);
            assert_eq!(p.post.lang.as_deref(), Some(scripted[0].lang));
        }
    }

    #[test]
    fn poisson_has_the_right_mean() {
        let mut rng = Rng::new(1);
        for lambda in [0.3, 4.0, 29.0, 45.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| poisson(&mut rng, lambda)).sum();
            let mean = sum as f64 / f64::from(n);
            assert!((mean / lambda - 1.0).abs() < 0.03, "{lambda}: {mean}");
        }
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }
}
