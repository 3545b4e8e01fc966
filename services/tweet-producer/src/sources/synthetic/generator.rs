//! The synthetic post generator: pure, no I/O, no clock.
//!
//! Why synthetic posts at all: the pipeline needs traffic to be demonstrated, load-tested and
//! tested end to end, and no public firehose is free or stable. The generator is therefore
//! built to look like the real thing where it matters to a trends pipeline:
//!
//! - **Heavy-tailed popularity**: tags come from a [`Vocabulary`] with Zipf-like weights.
//! - **Unicode**: posts in eight languages and scripts; tags spelled in several ways that
//!   normalize to one (`#RustLang`, `#rustlang`, fullwidth), some glued to emoji (`🔥#rust`),
//!   sometimes with the fullwidth sign `＃` in Japanese posts.
//! - **Something to trend**: every `burst_every` of generation time one tag from outside the
//!   top 10 is boosted for `burst_len`, so the chart visibly moves.
//! - **Realistic shape**: 80–280 characters, 0–5 tags, ~15 % of posts without any.
//!
//! Determinism: the same seed and the same timestamps give the same posts, byte for byte. The
//! clock is an argument of [`Generator::next_post`], so the caller passes "now" and the unit
//! tests pass fixed times. The PRNG is our own ([`super::rng`]) so this also holds across
//! dependency upgrades.
//!
//! Posts do not carry the `hashtags` field: the aggregator must extract them from the text,
//! which is the harder and more realistic path.

use trends_core::EpochMillis;
use trends_core::post::RawPost;

use super::lang::{EMOJI, LANGUAGES, Language};
use super::rng::Rng;
use super::vocabulary::{Spelling, Vocabulary};

/// Share of posts without any hashtag.
pub const NO_TAG_SHARE: f64 = 0.15;
/// Relative frequency of 1, 2, 3, 4 and 5 tags in posts that have tags.
const TAG_COUNT_WEIGHTS: [f64; 5] = [0.35, 0.25, 0.17, 0.13, 0.10];
/// During a burst, the probability that a tag slot of a post is the bursting tag.
pub const BURST_SHARE: f64 = 0.3;
/// Bursting tags are chosen from outside the top this many ranks.
pub const BURST_MIN_RANK: usize = 10;
/// Shortest and longest text, in characters (Unicode scalar values).
pub const MIN_CHARS: usize = 80;
pub const MAX_CHARS: usize = 280;

/// What a [`Generator`] is made of.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Same seed, same posts.
    pub seed: u64,
    /// Number of distinct hashtags (at least 1).
    pub vocabulary: usize,
    /// A burst starts every this many milliseconds of generation time; 0 disables bursts.
    pub burst_every_ms: i64,
    /// How long a burst lasts, in milliseconds; 0 disables bursts.
    pub burst_ms: i64,
}

/// One generated post and what the generator meant to put in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The post as published (the `RawPost` contract, without `hashtags`).
    pub post: RawPost,
    /// `created_at` in epoch milliseconds (the Kafka record timestamp).
    pub event_time: EpochMillis,
    /// Vocabulary ranks of the tags in the text, in order.
    pub tag_ranks: Vec<usize>,
    /// The tags as written in the text (without the sign), in order; what
    /// `trends_core::hashtag::extract_hashtags` must find.
    pub written_tags: Vec<String>,
}

/// An endless, deterministic sequence of synthetic posts.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
    vocabulary: Vocabulary,
    rng: Rng,
    /// Number of posts generated so far; the next post's id is `syn-<seed>-<sequence>`.
    sequence: u64,
    /// The timestamp of the first post: bursts are scheduled relative to it.
    origin: Option<EpochMillis>,
    /// Cumulative language weights, for drawing a post's language.
    language_cumulative: Vec<f64>,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Generator {
        let vocabulary = Vocabulary::new(config.vocabulary);
        let mut total = 0.0;
        let language_cumulative = LANGUAGES
            .iter()
            .map(|l| {
                total += l.weight;
                total
            })
            .collect();
        Generator {
            rng: Rng::new(config.seed),
            config,
            vocabulary,
            sequence: 0,
            origin: None,
            language_cumulative,
        }
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The rank of the tag bursting at `now`, if any. Bursts are counted from the first
    /// post's timestamp: burst `k` (k ≥ 1) runs from `origin + k·burst_every` for `burst_len`.
    /// Before the first post there is no origin and so no burst.
    pub fn burst_at(&self, now: EpochMillis) -> Option<usize> {
        let every = self.config.burst_every_ms;
        let len = self.config.burst_ms;
        let elapsed = now - self.origin?;
        if every <= 0 || len <= 0 || elapsed < every || elapsed % every >= len {
            return None;
        }
        Some(self.burst_tag(elapsed / every))
    }

    /// The tag of burst number `k`: drawn from its own sub-stream of the seed, so it does not
    /// depend on how many posts were generated before the burst.
    pub fn burst_tag(&self, k: i64) -> usize {
        let n = self.vocabulary.len();
        let lowest = if n > BURST_MIN_RANK {
            BURST_MIN_RANK
        } else {
            n / 2
        };
        let mut rng = Rng::derived(self.config.seed, k.unsigned_abs());
        lowest + rng.index(n - lowest)
    }

    /// The next post, created at `now` (epoch milliseconds).
    pub fn next_post(&mut self, now: EpochMillis) -> Generated {
        self.origin.get_or_insert(now);
        let burst = self.burst_at(now);
        let language = self.pick_language();
        let tag_ranks = self.pick_tags(burst);
        let fullwidth_sign = language.code == "ja" && self.rng.chance(0.2);
        let tags: Vec<RenderedTag> = tag_ranks
            .iter()
            .map(|&rank| self.render_tag(rank, fullwidth_sign))
            .collect();
        let (text, order) = self.compose(language, &tags);
        let tag_ranks = order.iter().map(|&i| tag_ranks[i]).collect();
        let written_tags = order.iter().map(|&i| tags[i].written.clone()).collect();
        let id = format!("syn-{}-{}", self.config.seed, self.sequence);
        self.sequence += 1;
        let author_id = (self.rng.below(1_000_000) + 1).to_string();
        Generated {
            post: RawPost {
                id,
                text,
                created_at: trends_core::format_rfc3339_millis(now),
                author_id: Some(author_id),
                lang: Some(language.code.to_owned()),
                source: Some("synthetic".to_owned()),
                hashtags: None,
            },
            event_time: now,
            tag_ranks,
            written_tags,
        }
    }

    fn pick_language(&mut self) -> &'static Language {
        let total = self.language_cumulative.last().copied().unwrap_or(1.0);
        let x = self.rng.next_f64() * total;
        let i = self.language_cumulative.partition_point(|&c| c <= x);
        &LANGUAGES[i.min(LANGUAGES.len() - 1)]
    }

    /// Distinct tag ranks for one post: none for [`NO_TAG_SHARE`] of posts, else 1–5.
    fn pick_tags(&mut self, burst: Option<usize>) -> Vec<usize> {
        if self.rng.chance(NO_TAG_SHARE) {
            return Vec::new();
        }
        let mut x = self.rng.next_f64();
        let mut count = TAG_COUNT_WEIGHTS.len();
        for (i, w) in TAG_COUNT_WEIGHTS.iter().enumerate() {
            if x < *w {
                count = i + 1;
                break;
            }
            x -= w;
        }
        let mut ranks = Vec::with_capacity(count);
        for _ in 0..count {
            // A post names a tag once; a few redraws, then the post simply has fewer tags.
            for _ in 0..8 {
                let rank = match burst {
                    Some(b) if self.rng.chance(BURST_SHARE) => b,
                    _ => self.vocabulary.sample(&mut self.rng),
                };
                if !ranks.contains(&rank) {
                    ranks.push(rank);
                    break;
                }
            }
        }
        ranks
    }

    fn render_tag(&mut self, rank: usize, fullwidth_sign: bool) -> RenderedTag {
        let x = self.rng.next_f64();
        let spelling = match x {
            x if x < 0.55 => Spelling::Lower,
            x if x < 0.85 => Spelling::Camel,
            x if x < 0.95 => Spelling::Upper,
            _ => Spelling::Fullwidth,
        };
        let written = self.vocabulary.tag(rank).spelled(spelling).to_owned();
        let sign = if fullwidth_sign { "＃" } else { "#" };
        // Decorations that must not stop the tag from being extracted.
        let token = match self.rng.next_f64() {
            x if x < 0.05 => format!("{}{sign}{written}", self.rng.pick(EMOJI)),
            x if x < 0.10 => format!("{sign}{written}{}", self.rng.pick(EMOJI)),
            x if x < 0.15 => format!("{sign}{written}{}", self.rng.pick(&["!", ",", ".", ":"])),
            x if x < 0.18 => format!("({sign}{written})"),
            _ => format!("{sign}{written}"),
        };
        let inline = self.rng.chance(0.35);
        RenderedTag {
            chars: token.chars().count(),
            token,
            written,
            inline,
        }
    }

    /// Writes the text: a body of words of the post's language, with some tags inserted
    /// between words and the others at the end, between `MIN_CHARS` and `MAX_CHARS` long.
    /// Returns the text and the indices of `tags` in the order they appear in it.
    ///
    /// Lengths are exact, not estimated: each tag adds its characters plus its separators
    /// (one space, or two for a tag inside unspaced Japanese text), and the body is grown word
    /// by word to fill the rest of a length drawn uniformly in `MIN_CHARS..=MAX_CHARS`.
    fn compose(&mut self, language: &Language, tags: &[RenderedTag]) -> (String, Vec<usize>) {
        let inline_extra = if language.spaced { 1 } else { 2 };
        let planned_tag_chars: usize = tags
            .iter()
            .map(|t| t.chars + if t.inline { inline_extra } else { 1 })
            .sum();
        // At least a few words of body, so inline tags have a place between two words.
        let min_body = 20;
        let target = self
            .rng
            .range_inclusive(MIN_CHARS, MAX_CHARS)
            .max(planned_tag_chars + min_body)
            .min(MAX_CHARS);
        let body_target = target.saturating_sub(planned_tag_chars);
        let body_max = MAX_CHARS.saturating_sub(planned_tag_chars);

        let separator = if language.spaced { " " } else { "" };
        let mut body = String::with_capacity(4 * MAX_CHARS);
        let mut body_chars = 0usize;
        // Byte offsets where a word starts, after the first: where inline tags can go.
        let mut boundaries: Vec<usize> = Vec::new();
        loop {
            let mut word = if self.rng.chance(0.04) {
                (*self.rng.pick(EMOJI)).to_owned()
            } else {
                (*self.rng.pick(language.words)).to_owned()
            };
            if self.rng.chance(0.1) {
                let end = *self.rng.pick(language.sentence_ends);
                word.push_str(end);
            }
            let sep_chars = if body.is_empty() { 0 } else { separator.len() };
            let add = sep_chars + word.chars().count();
            if !body.is_empty() && body_chars + add > body_max {
                break;
            }
            if !body.is_empty() {
                body.push_str(separator);
                boundaries.push(body.len());
            }
            body.push_str(&word);
            body_chars += add;
            if body_chars >= body_target {
                break;
            }
        }

        // Inline tags take distinct random boundaries; when there are none left a tag goes to
        // the end instead.
        let mut inline: Vec<usize> = Vec::new();
        let mut offsets: Vec<usize> = Vec::new();
        let mut trailing: Vec<usize> = Vec::new();
        let mut tag_chars = 0;
        for (i, tag) in tags.iter().enumerate() {
            if tag.inline && !boundaries.is_empty() {
                offsets.push(boundaries.swap_remove(self.rng.index(boundaries.len())));
                inline.push(i);
                tag_chars += tag.chars + inline_extra;
            } else {
                trailing.push(i);
                tag_chars += tag.chars + 1;
            }
        }
        // A tag moved to the end saves a separator in Japanese; make up for it (rare).
        let short = MIN_CHARS.saturating_sub(body_chars + tag_chars);
        let mut text = body;
        text.push_str(&language.sentence_ends[0].repeat(short));
        // Inline tags keep their drawn order: the i-th one goes to the i-th smallest offset.
        // Inserted back to front, so the smaller offsets stay valid.
        offsets.sort_unstable();
        for (offset, &i) in offsets.iter().zip(&inline).rev() {
            let token = &tags[i].token;
            let insert = if language.spaced {
                format!("{token} ")
            } else {
                format!(" {token} ")
            };
            text.insert_str(*offset, &insert);
        }
        for &i in &trailing {
            text.push(' ');
            text.push_str(&tags[i].token);
        }
        inline.extend(trailing);
        (text, inline)
    }
}

/// A tag as it appears in the text.
#[derive(Debug)]
struct RenderedTag {
    /// The tag as written, without sign or decoration.
    written: String,
    /// What goes into the text: sign, tag and decoration.
    token: String,
    /// Characters in `token`.
    chars: usize,
    /// Between two words rather than at the end.
    inline: bool,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use trends_core::hashtag::{extract_hashtags, normalize};
    use trends_core::post::parse_post;
    use trends_core::tags::tags_for_post;

    use super::*;

    const T0: EpochMillis = 1_795_341_600_000; // 2026-11-22T10:00:00Z

    fn generator(seed: u64) -> Generator {
        Generator::new(GeneratorConfig {
            seed,
            vocabulary: 400,
            burst_every_ms: 60_000,
            burst_ms: 15_000,
        })
    }

    /// 100,000 posts, one per millisecond from T0, without bursts.
    fn sample() -> &'static [Generated] {
        static SAMPLE: OnceLock<Vec<Generated>> = OnceLock::new();
        SAMPLE.get_or_init(|| {
            let mut g = Generator::new(GeneratorConfig {
                burst_every_ms: 0,
                ..generator(42).config
            });
            (0..100_000).map(|i| g.next_post(T0 + i)).collect()
        })
    }

    #[test]
    fn same_seed_and_times_give_the_same_posts() {
        let mut a = generator(42);
        let mut b = generator(42);
        let mut c = generator(43);
        let mut differ = 0;
        for i in 0..2_000 {
            let now = T0 + i * 37;
            let (pa, pb, pc) = (a.next_post(now), b.next_post(now), c.next_post(now));
            assert_eq!(pa, pb);
            differ += usize::from(pa.post.text != pc.post.text);
        }
        assert!(differ > 1_900, "another seed gives other posts ({differ})");
    }

    #[test]
    fn posts_follow_the_contract() {
        let mut g = generator(7);
        let first = g.next_post(T0 + 123);
        assert_eq!(first.post.id, "syn-7-0");
        assert_eq!(first.post.created_at, "2026-11-22T10:00:00.123Z");
        assert_eq!(first.post.source.as_deref(), Some("synthetic"));
        assert_eq!(first.post.hashtags, None);
        assert!(first.post.author_id.is_some());
        assert_eq!(g.next_post(T0).post.id, "syn-7-1");
        let json = serde_json::to_vec(&first.post).expect("serializes");
        let parsed = parse_post(&json).expect("valid per the contract");
        assert_eq!(parsed.post, first.post);
        assert_eq!(parsed.event_time, T0 + 123);
    }

    #[test]
    fn extraction_finds_exactly_the_intended_tags_in_order() {
        let mut g = generator(1234);
        for i in 0..10_000 {
            // Cross a few bursts too.
            let p = g.next_post(T0 + i * 50);
            assert_eq!(
                extract_hashtags(&p.post.text),
                p.written_tags,
                "text: {}",
                p.post.text
            );
            let canonical: Vec<String> = p
                .tag_ranks
                .iter()
                .map(|&r| g.vocabulary().tag(r).canonical.clone())
                .collect();
            assert_eq!(tags_for_post(&p.post), canonical, "text: {}", p.post.text);
        }
    }

    #[test]
    fn zipf_the_top_tag_beats_the_tenth_and_the_tenth_beats_the_hundredth() {
        let mut counts: HashMap<usize, u32> = HashMap::new();
        for p in sample() {
            for &rank in &p.tag_ranks {
                *counts.entry(rank).or_default() += 1;
            }
        }
        let count = |rank| counts.get(&rank).copied().unwrap_or(0);
        assert!(count(0) > count(9), "{} vs {}", count(0), count(9));
        assert!(count(9) > count(99), "{} vs {}", count(9), count(99));
        // rank 1 vs rank 10: (10/1)^1.1 ≈ 12.6 times as frequent.
        assert!(count(0) > 8 * count(9));
    }

    #[test]
    fn about_fifteen_percent_of_posts_have_no_tag() {
        let none = sample().iter().filter(|p| p.tag_ranks.is_empty()).count();
        let share = none as f64 / sample().len() as f64;
        assert!((share - NO_TAG_SHARE).abs() <= 0.03, "{share}");
        let max = sample().iter().map(|p| p.tag_ranks.len()).max();
        assert_eq!(max, Some(5));
    }

    #[test]
    fn lengths_are_between_80_and_280_characters() {
        let mut shortest = usize::MAX;
        let mut longest = 0;
        for p in sample() {
            let n = p.post.text.chars().count();
            assert!((MIN_CHARS..=MAX_CHARS).contains(&n), "{n}: {}", p.post.text);
            shortest = shortest.min(n);
            longest = longest.max(n);
        }
        // The whole range is used, not just a corner of it.
        assert!(shortest < 90 && longest > 270, "{shortest}..{longest}");
    }

    #[test]
    fn languages_are_mixed_in_their_shares() {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for p in sample() {
            *counts
                .entry(p.post.lang.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        let total_weight: f64 = LANGUAGES.iter().map(|l| l.weight).sum();
        for lang in LANGUAGES {
            let share = counts.get(lang.code).copied().unwrap_or(0) as f64 / sample().len() as f64;
            let expected = lang.weight / total_weight;
            assert!(
                (share - expected).abs() < 0.01,
                "{}: {share} vs {expected}",
                lang.code
            );
        }
        assert_eq!(counts.len(), LANGUAGES.len());
    }

    #[test]
    fn mixed_spellings_and_scripts_appear_in_text() {
        let texts: Vec<&str> = sample()[..5_000]
            .iter()
            .map(|p| p.post.text.as_str())
            .collect();
        let all = texts.join("\n");
        for needle in ["#RustLang", "#rustlang", "#rust", "#RUST", "＃", "🔥#"] {
            assert!(all.contains(needle), "no {needle} in 5,000 posts");
        }
        // Written spellings differ but normalize to the same tag.
        let spellings: std::collections::HashSet<&str> = sample()
            .iter()
            .flat_map(|p| p.written_tags.iter().map(String::as_str))
            .filter(|t| normalize(t) == "rustlang")
            .collect();
        assert!(spellings.len() >= 3, "{spellings:?}");
    }

    #[test]
    fn a_burst_visibly_boosts_a_tag_from_outside_the_top_ten() {
        let mut g = generator(42);
        // One post every 10 ms for 3 minutes: bursts at +60 s and +120 s, 15 s each.
        let posts: Vec<Generated> = (0..18_000).map(|i| g.next_post(T0 + i * 10)).collect();
        let burst = g.burst_at(T0 + 60_000).expect("a burst at +60 s");
        assert!(burst >= BURST_MIN_RANK);
        assert_eq!(g.burst_at(T0 + 59_999), None);
        assert_eq!(g.burst_at(T0 + 74_999), Some(burst));
        assert_eq!(g.burst_at(T0 + 75_000), None);
        assert!(g.burst_at(T0 + 120_000).is_some());

        let mut during: HashMap<usize, u32> = HashMap::new();
        let mut before = 0u32;
        for p in &posts {
            let t = p.event_time - T0;
            for &rank in &p.tag_ranks {
                if (60_000..75_000).contains(&t) {
                    *during.entry(rank).or_default() += 1;
                } else if t < 60_000 && rank == burst {
                    before += 1;
                }
            }
        }
        let top_during = during.iter().max_by_key(|(_, n)| **n).map(|(r, _)| *r);
        assert_eq!(
            top_during,
            Some(burst),
            "the burst tag tops the chart while it bursts"
        );
        // Per second, far more frequent during the burst than before it (60 s vs 15 s).
        let rate_before = f64::from(before) / 60.0;
        let rate_during = f64::from(during[&burst]) / 15.0;
        assert!(
            rate_during > 5.0 * rate_before.max(0.1),
            "{rate_during} vs {rate_before}"
        );
    }

    #[test]
    fn a_tiny_vocabulary_still_works() {
        let mut g = Generator::new(GeneratorConfig {
            seed: 1,
            vocabulary: 1,
            burst_every_ms: 1_000,
            burst_ms: 500,
        });
        for i in 0..1_000 {
            let p = g.next_post(T0 + i * 10);
            assert!(p.tag_ranks.iter().all(|&r| r == 0));
            assert_eq!(extract_hashtags(&p.post.text), p.written_tags);
        }
    }
}
