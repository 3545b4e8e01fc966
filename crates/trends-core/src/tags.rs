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
//! white space removed; a supplied tag that is then empty, longer than [`MAX_TAG_CHARS`]
//! characters, or contains white space or control characters is not a hashtag and is dropped.

use crate::hashtag::{for_each_hashtag, normalize};
use crate::post::RawPost;

/// Longest supplied tag accepted, in characters.
pub const MAX_TAG_CHARS: usize = 140;

/// One hashtag of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostTag {
    /// The normalized form: what is counted.
    pub tag: String,
    /// As written (without the sign), at its first appearance in the post.
    pub spelling: String,
}

fn supplied_tag(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    let tag = trimmed.strip_prefix(['#', '＃']).unwrap_or(trimmed);
    let valid = !tag.is_empty()
        && tag.chars().count() <= MAX_TAG_CHARS
        && !tag.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then_some(tag)
}

/// The hashtags a post counts for: normalized, each at most once, in order of first appearance.
pub fn post_tags(post: &RawPost) -> Vec<PostTag> {
    let mut tags: Vec<PostTag> = Vec::new();
    let mut push = |spelling: &str| {
        let tag = normalize(spelling);
        if !tag.is_empty() && !tags.iter().any(|t| t.tag == tag) {
            tags.push(PostTag {
                tag,
                spelling: spelling.to_string(),
            });
        }
    };
    match &post.hashtags {
        Some(supplied) => supplied
            .iter()
            .filter_map(|t| supplied_tag(t))
            .for_each(&mut push),
        None => for_each_hashtag(&post.text, &mut push),
    }
    tags
}

/// The normalized tags of [`post_tags`], without spellings.
pub fn tags_for_post(post: &RawPost) -> Vec<String> {
    post_tags(post).into_iter().map(|t| t.tag).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(tags_for_post(&post("#ignored", Some(vec![]))).is_empty());
    }
}
