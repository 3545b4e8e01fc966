//! Which hashtags a post counts for.
//!
//! The rule: when the source supplied `hashtags` (Bluesky facets, X entities, Mastodon tags),
//! those are used; otherwise the tags are extracted from `text` by
//! [`crate::hashtag::for_each_hashtag`]. Either way every tag is normalized
//! ([`crate::hashtag::normalize`]), a post counts at most once per normalized tag, and tags are
//! kept in order of first appearance, each with the spelling of its first appearance (which
//! feeds the display form).
//!
//! Supplied tags are taken as the source gives them, with a leading `#`/`＃` and surrounding
//! white space removed; a supplied tag that is then empty, or contains white space or control
//! characters, is not a hashtag and is dropped.
//!
//! **Limits, because posts come from the open internet.** A post is up to a megabyte of
//! whatever its author wrote, and every tag it counts for becomes a key in the counting state
//! and a record in the counts topic. So:
//! - a tag (extracted or supplied) whose spelling or counting form is longer than
//!   [`MAX_TAG_CHARS`] characters is not a hashtag: it is dropped and counted
//!   ([`PostTags::too_long`]). No network allows tags that long (X's whole post is 280), and
//!   an unbounded tag would make an unbounded Kafka key;
//! - a post counts for at most `max_tags` distinct tags (the aggregator's
//!   `aggregator.max_tags_per_post`, [`DEFAULT_MAX_TAGS_PER_POST`] by default), the first in
//!   order of appearance, and at most [`MAX_OCCURRENCES_EXAMINED`] hashtag occurrences are
//!   normalized; the occurrences after either limit are only counted
//!   ([`PostTags::over_limit`]);
//! - deduplication is linear: a short list is scanned (the common case, no allocation beyond
//!   the result), a long one is indexed by hash.
//!
//! Together: the work per post is one linear scan of its text (or its supplied list) plus at
//! most [`MAX_OCCURRENCES_EXAMINED`] normalizations, and its output is at most `max_tags`
//! tags of at most [`MAX_TAG_CHARS`] characters each. `benches/extract.rs` (`hostile_posts`)
//! measures a megabyte of tags.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::hashtag::{for_each_hashtag, normalize_into};
use crate::post::{ParsedPostRef, RawPost, SuppliedHashtags};

/// Longest tag accepted, in characters, of its spelling and of its counting form.
pub const MAX_TAG_CHARS: usize = 140;

/// How many distinct tags a post counts for by default: Instagram's limit, and more than any
/// real post on Bluesky, Mastodon or X carries.
pub const DEFAULT_MAX_TAGS_PER_POST: usize = 30;

/// At most this many hashtag occurrences of one post are normalized and deduplicated; the
/// rest are only counted. A post whose first 1,024 hashtags hold fewer than `max_tags`
/// distinct tags counts those.
pub const MAX_OCCURRENCES_EXAMINED: usize = 1024;

/// Up to this many tags, deduplication scans the list; beyond, it uses a hash index.
const LINEAR_DEDUP_UP_TO: usize = 16;

/// One hashtag of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostTag {
    /// The normalized form: what is counted.
    pub tag: String,
    /// As written (without the sign), at its first appearance in the post.
    pub spelling: String,
}

/// The tags a post counts for, and what the limits left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostTags {
    /// Normalized, each at most once, in order of first appearance.
    pub tags: Vec<PostTag>,
    /// Examined occurrences dropped for being longer than [`MAX_TAG_CHARS`] characters.
    pub too_long: u32,
    /// Hashtag occurrences after the post reached its limit (`max_tags` distinct tags, or
    /// [`MAX_OCCURRENCES_EXAMINED`] occurrences): not examined, repeats of kept tags included.
    pub over_limit: u32,
}

fn supplied_tag(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    let tag = trimmed.strip_prefix(['#', '＃']).unwrap_or(trimmed);
    let valid = !tag.is_empty() && !tag.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then_some(tag)
}

/// More than [`MAX_TAG_CHARS`] characters? Cheap for short strings (bytes ≥ characters).
fn too_long(s: &str) -> bool {
    s.len() > MAX_TAG_CHARS && s.chars().nth(MAX_TAG_CHARS).is_some()
}

/// Collects one post's tags under the limits; [`TagExtractor`] reuses one for every post.
#[derive(Debug)]
struct Collector {
    max_tags: usize,
    out: PostTags,
    examined: usize,
    /// Hash index of `out.tags` by tag, in use (`indexed`) once the list outgrows a linear
    /// scan.
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    indexed: bool,
    /// Tags of earlier posts, kept for their strings' memory.
    spare: Vec<PostTag>,
}

impl Collector {
    fn new(max_tags: usize) -> Collector {
        Collector {
            max_tags: max_tags.max(1),
            out: PostTags::default(),
            examined: 0,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            indexed: false,
            spare: Vec::new(),
        }
    }

    /// Ready for the next post; every buffer keeps its memory.
    fn reset(&mut self, max_tags: usize) {
        self.max_tags = max_tags.max(1);
        self.spare.append(&mut self.out.tags);
        self.out.too_long = 0;
        self.out.over_limit = 0;
        self.examined = 0;
        self.index.clear();
        self.indexed = false;
    }

    /// Offers the text's hashtags, or the supplied tags instead if there are any.
    fn collect<I>(&mut self, text: &str, supplied: Option<I>)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        match supplied {
            Some(supplied) => {
                for tag in supplied {
                    if let Some(tag) = supplied_tag(tag.as_ref()) {
                        self.offer(tag);
                    }
                }
            }
            None => for_each_hashtag(text, |t| self.offer(t)),
        }
    }

    fn full(&self) -> bool {
        self.out.tags.len() >= self.max_tags || self.examined >= MAX_OCCURRENCES_EXAMINED
    }

    fn offer(&mut self, spelling: &str) {
        if self.full() {
            self.out.over_limit = self.out.over_limit.saturating_add(1);
            return;
        }
        self.examined += 1;
        if too_long(spelling) {
            self.out.too_long = self.out.too_long.saturating_add(1);
            return;
        }
        // Normalized straight into a spare tag's string: no copy when it is kept.
        let mut kept = self.spare.pop().unwrap_or_else(|| PostTag {
            tag: String::new(),
            spelling: String::new(),
        });
        normalize_into(spelling, &mut kept.tag);
        if kept.tag.is_empty() || too_long(&kept.tag) || self.contains(&kept.tag) {
            if too_long(&kept.tag) {
                self.out.too_long = self.out.too_long.saturating_add(1);
            }
            self.spare.push(kept);
            return;
        }
        let position = self.out.tags.len();
        kept.spelling.clear();
        kept.spelling.push_str(spelling);
        self.out.tags.push(kept);
        let (tags, hasher, index) = (&self.out.tags, &self.hasher, &mut self.index);
        if self.indexed {
            let hash = hasher.hash_one(tags[position].tag.as_str());
            index.insert_unique(hash, position, |&i| hasher.hash_one(tags[i].tag.as_str()));
        } else if tags.len() > LINEAR_DEDUP_UP_TO {
            index.reserve(tags.len() * 2, |&i| hasher.hash_one(tags[i].tag.as_str()));
            for (i, t) in tags.iter().enumerate() {
                index.insert_unique(hasher.hash_one(t.tag.as_str()), i, |&j| {
                    hasher.hash_one(tags[j].tag.as_str())
                });
            }
            self.indexed = true;
        }
    }

    /// Is `tag` collected already?
    fn contains(&self, tag: &str) -> bool {
        if self.indexed {
            self.index
                .find(self.hasher.hash_one(tag), |&i| self.out.tags[i].tag == tag)
                .is_some()
        } else {
            self.out.tags.iter().any(|t| t.tag == tag)
        }
    }
}

/// Extracts post after post into the same buffers, so that once they have grown to the
/// largest post seen (at most `max_tags` tags of at most [`MAX_TAG_CHARS`] characters),
/// extracting allocates nothing: the aggregator's hot path, where allocating and freeing a
/// `PostTags` per post (two strings per tag) cost about a tenth of the per-record work. The
/// tags are the very same as [`extract_post_tags`]'s and [`extract_post_ref_tags`]'s (one
/// collector does the work for all three).
#[derive(Debug)]
pub struct TagExtractor {
    collector: Collector,
}

impl Default for TagExtractor {
    fn default() -> Self {
        TagExtractor::new()
    }
}

impl TagExtractor {
    pub fn new() -> TagExtractor {
        TagExtractor {
            collector: Collector::new(DEFAULT_MAX_TAGS_PER_POST),
        }
    }

    /// The tags of a post parsed by [`parse_post_ref`](crate::post::parse_post_ref):
    /// [`extract_post_ref_tags`], in buffers valid until the next call.
    pub fn extract(&mut self, post: &ParsedPostRef<'_>, max_tags: usize) -> &PostTags {
        self.extract_tags(
            &post.text,
            post.hashtags.as_ref().map(SuppliedHashtags::iter),
            max_tags,
        )
    }

    /// [`extract_tags`], in buffers valid until the next call.
    pub fn extract_tags<I>(&mut self, text: &str, supplied: Option<I>, max_tags: usize) -> &PostTags
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.collector.reset(max_tags);
        self.collector.collect(text, supplied);
        &self.collector.out
    }
}

/// The hashtags a post counts for, at most `max_tags` of them (at least one), with what the
/// limits dropped. See the [module docs](self) for the rules and limits.
pub fn extract_post_tags(post: &RawPost, max_tags: usize) -> PostTags {
    extract_tags(&post.text, post.hashtags.as_ref(), max_tags)
}

/// [`extract_post_tags`] for a post parsed by [`parse_post_ref`](crate::post::parse_post_ref):
/// the same tags, read from the borrowed text and supplied list.
pub fn extract_post_ref_tags(post: &ParsedPostRef<'_>, max_tags: usize) -> PostTags {
    extract_tags(
        &post.text,
        post.hashtags.as_ref().map(SuppliedHashtags::iter),
        max_tags,
    )
}

/// The hashtags a post counts for, from its parts: its `text`, and the tags its source
/// supplied, if any (`Some`, even empty, means they are used instead of the text). What
/// [`extract_post_tags`] and [`extract_post_ref_tags`] do.
pub fn extract_tags<I>(text: &str, supplied: Option<I>, max_tags: usize) -> PostTags
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut collector = Collector::new(max_tags);
    collector.collect(text, supplied);
    collector.out
}

/// The hashtags a post counts for under the default limit
/// ([`DEFAULT_MAX_TAGS_PER_POST`]): normalized, each at most once, in order of first
/// appearance.
pub fn post_tags(post: &RawPost) -> Vec<PostTag> {
    extract_post_tags(post, DEFAULT_MAX_TAGS_PER_POST).tags
}

/// The normalized tags of [`post_tags`], without spellings.
pub fn tags_for_post(post: &RawPost) -> Vec<String> {
    post_tags(post).into_iter().map(|t| t.tag).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashtag::{extract_hashtags, normalize};

    fn post(text: &str, hashtags: Option<Vec<&str>>) -> RawPost {
        RawPost {
            id: "1".into(),
            text: text.into(),
            created_at: "2026-11-22T10:00:00Z".into(),
            author_id: None,
            lang: None,
            source: None,
            hashtags: hashtags.map(|h| h.into_iter().map(String::from).collect()),
        }
    }

    #[test]
    fn a_post_counts_each_tag_once_with_its_first_spelling() {
        let tags = post_tags(&post("#Rust #rust #RUST #kafka", None));
        assert_eq!(
            tags,
            [
                PostTag {
                    tag: "rust".into(),
                    spelling: "Rust".into()
                },
                PostTag {
                    tag: "kafka".into(),
                    spelling: "kafka".into()
                },
            ]
        );
    }

    #[test]
    fn supplied_tags_win_over_the_text_and_are_sanitized() {
        let long = "x".repeat(141);
        let supplied = vec![
            "Bluesky",
            "#bluesky",
            "",
            "  ＃Rust ",
            "two words",
            "ctrl\u{7}",
            &long,
        ];
        let p = post("#ignored text", Some(supplied));
        assert_eq!(tags_for_post(&p), ["bluesky", "rust"]);
        assert_eq!(post_tags(&p)[1].spelling, "Rust");
        assert_eq!(extract_post_tags(&p, 30).too_long, 1);
        assert!(tags_for_post(&post("#ignored", Some(vec![]))).is_empty());
    }

    #[test]
    fn extracted_tags_longer_than_140_characters_are_not_hashtags() {
        let at_limit = "é".repeat(140);
        let over = format!("A{}", "b".repeat(600_000));
        let text = format!("#{at_limit} #{over} #ok");
        let got = extract_post_tags(&post(&text, None), 30);
        assert_eq!(
            got.tags.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>(),
            [at_limit.as_str(), "ok"]
        );
        assert_eq!((got.too_long, got.over_limit), (1, 0));
        // A spelling within the limit whose counting form is not: U+FDFA becomes 18 letters.
        let expands = "\u{FDFA}".repeat(10);
        assert!(normalize(&expands).chars().count() > MAX_TAG_CHARS);
        let got = extract_post_tags(&post(&format!("#{expands}"), None), 30);
        assert_eq!((got.tags.len(), got.too_long), (0, 1));
    }

    #[test]
    fn a_post_counts_for_at_most_max_tags_and_counts_the_rest() {
        let text: String = (0..50).map(|i| format!("#t{i} ")).collect();
        let got = extract_post_tags(&post(&text, None), 30);
        assert_eq!(got.tags.len(), 30);
        assert_eq!(got.tags[29].tag, "t29", "the first ones, in order");
        assert_eq!(got.over_limit, 20);
        // Repeats of kept tags before the limit is reached are not "over the limit".
        let got = extract_post_tags(&post("#a #A #b #a", None), 2);
        assert_eq!((got.tags.len(), got.over_limit), (2, 1));
        // The occurrence budget: 2,000 repeats of one tag, then a new one it never reaches.
        let text = format!("{} #late", "#same ".repeat(2000));
        let got = extract_post_tags(&post(&text, None), 30);
        assert_eq!(tags(&got), ["same"]);
        assert_eq!(got.over_limit as usize, 2001 - MAX_OCCURRENCES_EXAMINED);
        // Supplied tags obey the same limits.
        let supplied: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
        let p = RawPost {
            hashtags: Some(supplied),
            ..post("", None)
        };
        let got = extract_post_tags(&p, 30);
        assert_eq!((got.tags.len(), got.over_limit), (30, 10));
        // A reused extractor: the same, post after post, whatever came before.
        let mut extractor = TagExtractor::new();
        for (text, max_tags) in [(text.as_str(), 30), ("#a #A #b #a", 2), ("", 30), ("#x", 1)] {
            let want = extract_post_tags(&post(text, None), max_tags);
            assert_eq!(
                *extractor.extract_tags(text, None::<[&str; 0]>, max_tags),
                want
            );
        }
        assert_eq!(
            *extractor.extract_tags("#ignored", p.hashtags.as_ref(), 30),
            got
        );
    }

    fn tags(got: &PostTags) -> Vec<&str> {
        got.tags.iter().map(|t| t.tag.as_str()).collect()
    }

    /// The rules, written the obvious way: every extracted hashtag in order, normalized,
    /// length-checked, first occurrences kept, until the limits.
    fn reference(text: &str, max_tags: usize) -> PostTags {
        let mut out = PostTags::default();
        let mut examined = 0;
        for spelling in extract_hashtags(text) {
            if out.tags.len() >= max_tags || examined >= MAX_OCCURRENCES_EXAMINED {
                out.over_limit += 1;
                continue;
            }
            examined += 1;
            let tag = normalize(spelling);
            if spelling.chars().count() > MAX_TAG_CHARS || tag.chars().count() > MAX_TAG_CHARS {
                out.too_long += 1;
            } else if !tag.is_empty() && !out.tags.iter().any(|t| t.tag == tag) {
                out.tags.push(PostTag {
                    tag,
                    spelling: spelling.to_string(),
                });
            }
        }
        out
    }

    std::thread_local! {
        static EXTRACTOR: std::cell::RefCell<TagExtractor> =
            std::cell::RefCell::new(TagExtractor::new());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The fast collector (linear scan, then a hash index) agrees with the reference on
        /// posts with few and many tags, repeats in several spellings, over-long tags and
        /// small and large limits; the output never exceeds the limits.
        #[test]
        fn limits_and_dedup_match_the_reference(
            words in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-eA-E]{1,3}",
                    "[a-z]{1,2}[0-9]{0,2}",
                    "é{139,142}",
                    "ｒｕｓｔ|Rust|RUST|rust",
                ],
                0..120,
            ),
            max_tags in 1usize..60,
        ) {
            let text: String = words.iter().map(|w| format!("#{w} ")).collect();
            let got = extract_post_tags(&post(&text, None), max_tags);
            proptest::prop_assert_eq!(&got, &reference(&text, max_tags));
            // An extractor that served other posts before (of other sizes and limits) gives
            // the same.
            let reused = EXTRACTOR.with(|e| {
                e.borrow_mut().extract_tags(&text, None::<[&str; 0]>, max_tags).clone()
            });
            proptest::prop_assert_eq!(&reused, &got);
            proptest::prop_assert!(got.tags.len() <= max_tags);
            for t in &got.tags {
                proptest::prop_assert!(t.tag.chars().count() <= MAX_TAG_CHARS);
            }
        }
    }
}
