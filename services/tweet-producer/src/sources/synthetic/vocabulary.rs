//! The hashtag vocabulary of the synthetic source and its Zipf-like popularity.
//!
//! Real hashtag popularity is heavy-tailed: a few tags are everywhere, most are rare. Rank `r`
//! (0-based) gets weight `1 / (r + 1)^1.1`, and tags are drawn by binary search over the
//! cumulative weights, so any vocabulary size costs `O(log n)` per draw.
//!
//! The vocabulary depends only on its size, never on the seed: producers started with different
//! seeds (e.g. several instances) talk about the same tags, so their posts add up to the same
//! trends. It is also prefix-stable: the first 400 tags of a 1,000-tag vocabulary are the
//! 400-tag vocabulary. The top ranks are a fixed list of recognizable tags
//! ([`super::lang::TOP_TAGS`]); the rest are made of syllables of the scripts in
//! [`super::lang::LANGUAGES`].
//!
//! Each tag has several spellings that normalize to the same counting form (`#rustlang`,
//! `#RustLang`, `#RUSTLANG`, fullwidth `#ｒｕｓｔｌａｎｇ`), so the pipeline's normalization is
//! exercised; every spelling is checked against `trends_core::hashtag` when the vocabulary is
//! built.

use std::collections::HashSet;

use trends_core::hashtag::{extract_hashtags, normalize};

use super::lang::{LANGUAGES, TOP_TAGS};
use super::rng::Rng;

/// Exponent of the Zipf-like popularity law.
pub const ZIPF_EXPONENT: f64 = 1.1;

/// Seed of the name generator: fixed, so the vocabulary is the same for every producer.
const NAMES_SEED: u64 = 0x7AE5_7A65_0000_0001;

/// How a tag is spelled in a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// The counting form itself: `rustlang`.
    Lower,
    /// Each part capitalized: `RustLang`.
    Camel,
    /// All capitals: `RUSTLANG`.
    Upper,
    /// Fullwidth forms of an ASCII tag: `ｒｕｓｔｌａｎｇ`.
    Fullwidth,
}

/// One hashtag of the vocabulary.
#[derive(Debug, Clone)]
pub struct Tag {
    /// The counting form (`trends_core::hashtag::normalize` of every spelling).
    pub canonical: String,
    /// The spellings this tag can be written in; always contains [`Spelling::Lower`] first.
    spellings: Vec<(Spelling, String)>,
}

impl Tag {
    /// Builds a tag from its parts, keeping only spellings that extract as one hashtag and
    /// normalize to the canonical form. `None` if even the plain form does not.
    fn from_parts(parts: &[&str]) -> Option<Tag> {
        let lower: String = parts.concat();
        let canonical = normalize(&lower);
        let camel: String = parts.iter().map(|p| capitalize(p)).collect();
        let upper = lower.to_uppercase();
        let fullwidth: Option<String> = lower
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
            .then(|| lower.chars().filter_map(to_fullwidth).collect());
        let candidates = [
            Some((Spelling::Lower, lower)),
            Some((Spelling::Camel, camel)),
            Some((Spelling::Upper, upper)),
            fullwidth.map(|f| (Spelling::Fullwidth, f)),
        ];
        let mut spellings: Vec<(Spelling, String)> = Vec::new();
        for (spelling, text) in candidates.into_iter().flatten() {
            let valid = normalize(&text) == canonical
                && extract_hashtags(&format!("#{text}")) == [text.as_str()]
                && spellings.iter().all(|(_, s)| *s != text);
            if valid {
                spellings.push((spelling, text));
            } else if spelling == Spelling::Lower {
                return None;
            }
        }
        Some(Tag {
            canonical,
            spellings,
        })
    }

    /// The text of `spelling`, or of the plain form if this tag has no such spelling (e.g. no
    /// uppercase for Japanese, none for `fußball` since `FUSSBALL` is another tag).
    pub fn spelled(&self, spelling: Spelling) -> &str {
        self.spellings
            .iter()
            .find(|(s, _)| *s == spelling)
            .or_else(|| self.spellings.first())
            .map_or(self.canonical.as_str(), |(_, text)| text.as_str())
    }

    /// The spellings this tag has.
    pub fn spellings(&self) -> impl Iterator<Item = (Spelling, &str)> {
        self.spellings.iter().map(|(s, t)| (*s, t.as_str()))
    }
}

fn capitalize(part: &str) -> String {
    let mut chars = part.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The fullwidth form of a printable ASCII character (`a` → `ａ`).
fn to_fullwidth(c: char) -> Option<char> {
    ('!'..='~')
        .contains(&c)
        .then(|| char::from_u32(u32::from(c) - 0x21 + 0xFF01))
        .flatten()
}

/// `size` hashtags ranked by popularity, with a sampler.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    tags: Vec<Tag>,
    /// `cumulative[r]` = sum of the weights of ranks `0..=r`.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    /// The vocabulary of `size` tags (at least 1).
    pub fn new(size: usize) -> Vocabulary {
        let size = size.max(1);
        let mut tags: Vec<Tag> = Vec::with_capacity(size);
        let mut seen: HashSet<String> = HashSet::with_capacity(size);
        let mut push = |tags: &mut Vec<Tag>, tag: Tag| {
            if seen.insert(tag.canonical.clone()) {
                tags.push(tag);
                true
            } else {
                false
            }
        };
        for parts in TOP_TAGS.iter().take(size) {
            if let Some(tag) = Tag::from_parts(parts) {
                push(&mut tags, tag);
            }
        }
        let mut rng = Rng::new(NAMES_SEED);
        let mut misses = 0u32;
        while tags.len() < size {
            let mut parts = generated_name(&mut rng);
            if misses >= 50 {
                // The syllable space is crowded at this size: disambiguate with the rank. No
                // generated name contains `_`, so this cannot collide.
                parts.push(format!("_{}", tags.len()));
            }
            let parts_ref: Vec<&str> = parts.iter().map(String::as_str).collect();
            let added = Tag::from_parts(&parts_ref).is_some_and(|tag| push(&mut tags, tag));
            misses = if added { 0 } else { misses + 1 };
        }
        let mut total = 0.0;
        let cumulative = (0..tags.len())
            .map(|rank| {
                total += weight(rank);
                total
            })
            .collect();
        Vocabulary { tags, cumulative }
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The tag at `rank` (0 is the most popular).
    pub fn tag(&self, rank: usize) -> &Tag {
        &self.tags[rank]
    }

    /// All tags, most popular first.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The probability that one draw of [`Vocabulary::sample`] returns `rank`.
    pub fn probability(&self, rank: usize) -> f64 {
        weight(rank) / self.total_weight()
    }

    fn total_weight(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(1.0)
    }

    /// Draws a rank with Zipf-like probability.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let target = rng.next_f64() * self.total_weight();
        // First rank whose cumulative weight exceeds the target.
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.tags.len() - 1)
    }
}

/// Weight of a rank under the Zipf-like law.
fn weight(rank: usize) -> f64 {
    // Ranks are far below 2^53, so the conversion is exact.
    1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT)
}

/// A generated tag name as parts: a script picked with the language shares, then one or two
/// parts of two or three syllables each, sometimes with a number (`#novabyte2026`).
fn generated_name(rng: &mut Rng) -> Vec<String> {
    let total: f64 = LANGUAGES.iter().map(|l| l.weight).sum();
    let mut x = rng.next_f64() * total;
    let lang = LANGUAGES
        .iter()
        .find(|l| {
            x -= l.weight;
            x < 0.0
        })
        .unwrap_or(&LANGUAGES[0]);
    let parts = if rng.chance(0.4) { 2 } else { 1 };
    let mut name: Vec<String> = (0..parts)
        .map(|_| {
            let syllables = rng.range_inclusive(2, 3);
            (0..syllables).map(|_| *rng.pick(lang.syllables)).collect()
        })
        .collect();
    if rng.chance(0.08) {
        name.push(rng.pick(&["2026", "24", "3", "101", "42"]).to_string());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_ranks_are_the_recognizable_tags_in_order() {
        let vocabulary = Vocabulary::new(400);
        assert_eq!(vocabulary.len(), 400);
        let top: Vec<&str> = vocabulary.tags()[..5]
            .iter()
            .map(|t| t.canonical.as_str())
            .collect();
        assert_eq!(top, ["rust", "ai", "kafka", "worldcup", "rustlang"]);
        // Every fixed tag made it (none was rejected by the spelling checks).
        assert_eq!(vocabulary.tags()[TOP_TAGS.len() - 1].canonical, "bollywood");
        assert_eq!(vocabulary.tag(4).spelled(Spelling::Camel), "RustLang");
        assert_eq!(
            vocabulary.tag(8).spelled(Spelling::Upper),
            "fußball",
            "FUSSBALL is another tag"
        );
    }

    #[test]
    fn tags_are_distinct_normalized_and_every_spelling_extracts_and_normalizes_back() {
        let vocabulary = Vocabulary::new(5_000);
        let mut seen = HashSet::new();
        for tag in vocabulary.tags() {
            assert!(
                seen.insert(tag.canonical.clone()),
                "duplicate {}",
                tag.canonical
            );
            assert_eq!(normalize(&tag.canonical), tag.canonical);
            assert!(tag.canonical.chars().count() <= 32, "{}", tag.canonical);
            for (_, text) in tag.spellings() {
                assert_eq!(extract_hashtags(&format!("#{text}")), [text]);
                assert_eq!(normalize(text), tag.canonical);
            }
        }
        // Mixed scripts: some tags are not Latin.
        let non_latin = vocabulary
            .tags()
            .iter()
            .filter(|t| !t.canonical.is_ascii())
            .count();
        assert!(non_latin > 1_000, "{non_latin}");
    }

    #[test]
    fn the_vocabulary_is_prefix_stable_and_works_at_any_size() {
        let small = Vocabulary::new(300);
        let large = Vocabulary::new(3_000);
        for (a, b) in small.tags().iter().zip(large.tags()) {
            assert_eq!(a.canonical, b.canonical);
        }
        assert_eq!(Vocabulary::new(1).len(), 1);
        assert_eq!(Vocabulary::new(3).tag(2).canonical, "kafka");
    }

    #[test]
    fn sampling_follows_the_weights() {
        let vocabulary = Vocabulary::new(400);
        let mut rng = Rng::new(3);
        let mut counts = vec![0u32; vocabulary.len()];
        let draws = 200_000;
        for _ in 0..draws {
            counts[vocabulary.sample(&mut rng)] += 1;
        }
        for rank in [0, 1, 9, 99] {
            let expected = vocabulary.probability(rank) * f64::from(draws);
            let got = f64::from(counts[rank]);
            assert!(
                (got - expected).abs() < 5.0 * expected.sqrt() + 5.0,
                "rank {rank}: {got} vs {expected}"
            );
        }
    }
}
