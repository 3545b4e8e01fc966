//! Hashtag extraction and normalization.
//!
//! # What counts as a hashtag
//! The rules follow twitter-text's (the reference most clients highlight by):
//! - the sign is `#` or the fullwidth `＃`, but not the keycap emoji `#️⃣`;
//! - it is preceded by the start of the text or by a character that is neither a hashtag
//!   character nor `&` (so `a#b` and `&#39;` are not hashtags);
//! - the body is a run of letters, combining marks, decimal digits and `_`, with at least one
//!   letter (so `#16` is not a hashtag);
//! - a hashtag directly followed by `#`, `＃` or `://` is rejected, and so is anything inside a
//!   URL (`https://example.com/#anchor`).
//!
//! # Normalization for counting
//! Two spellings are the same hashtag when their NFKC form, lowercased with Unicode's full
//! lowercase mapping, is equal: `#Rust`, `#RUST` and the fullwidth `#Ｒｕｓｔ` all count as `rust`.
//! Locale-specific cases are not special-cased: `İ` lowercases to `i̇` (i + combining dot),
//! and `ß` stays `ß` (lowercasing never folds it to `ss`).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::post::RawPost;

/// True for characters that may appear in a hashtag's body.
fn is_hashtag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining_mark(c) || c == '\u{200C}' || c == '\u{200D}'
}

fn is_hash_sign(c: char) -> bool {
    c == '#' || c == '＃'
}

/// Returns the hashtags in `text`, without the sign, as written, in order of appearance.
pub fn extract_hashtags(text: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut prev: Option<char> = None;
    // Byte offset where the current whitespace-delimited token starts (for URL detection).
    let mut token_start = 0usize;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c.is_whitespace() {
            token_start = i + c.len_utf8();
            prev = Some(c);
            continue;
        }
        let preceded_ok = match prev {
            None => true,
            Some(p) => !(is_hashtag_char(p) || p == '&'),
        };
        if !(is_hash_sign(c) && preceded_ok) {
            prev = Some(c);
            continue;
        }
        let body_start = i + c.len_utf8();
        let mut body_end = body_start;
        let mut has_letter = false;
        while let Some(&(j, d)) = iter.peek() {
            if !is_hashtag_char(d) {
                break;
            }
            has_letter |= d.is_alphabetic();
            body_end = j + d.len_utf8();
            prev = Some(d);
            iter.next();
        }
        if body_end == body_start {
            prev = Some(c);
            continue;
        }
        let rest = &text[body_end..];
        let followed_badly = rest.starts_with(['#', '＃']) || rest.starts_with("://");
        if has_letter && !followed_badly && !in_url(&text[token_start..i]) {
            tags.push(&text[body_start..body_end]);
        }
    }
    tags
}

/// True when the token text before a `#` makes it part of a URL.
fn in_url(token_prefix: &str) -> bool {
    token_prefix.contains("://") || token_prefix.starts_with("www.")
}

/// The counting form of a hashtag: NFKC, then Unicode lowercase. A leading sign is removed.
pub fn normalize(tag: &str) -> String {
    let tag = tag.strip_prefix(['#', '＃']).unwrap_or(tag);
    tag.nfkc().flat_map(char::to_lowercase).collect()
}

/// The hashtags a post counts for: normalized, each at most once, in order of first appearance.
///
/// When the source supplied `hashtags`, those are used (normalized the same way; empty ones are
/// dropped); otherwise they are extracted from `text`.
pub fn tags_for_post(post: &RawPost) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut push = |raw: &str| {
        let tag = normalize(raw);
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    };
    match &post.hashtags {
        Some(supplied) => supplied.iter().for_each(|t| push(t)),
        None => extract_hashtags(&post.text).into_iter().for_each(push),
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extracts_in_order_as_written() {
        assert_eq!(
            extract_hashtags("a #Rust and #日本語 post"),
            ["Rust", "日本語"]
        );
        assert_eq!(extract_hashtags("#start middle #end"), ["start", "end"]);
    }

    #[test]
    fn scripts_marks_digits_and_underscores() {
        assert_eq!(
            extract_hashtags("#привет #مرحبا #हिन्दी"),
            ["привет", "مرحبا", "हिन्दी"]
        );
        assert_eq!(
            extract_hashtags("#rust_lang #web3 #2024goals"),
            ["rust_lang", "web3", "2024goals"]
        );
        assert!(extract_hashtags("#16 #_ #123_456").is_empty());
    }

    #[test]
    fn fullwidth_sign_and_punctuation_neighbours() {
        assert_eq!(
            extract_hashtags("＃日本 (#paren) \"#quoted\", #end."),
            ["日本", "paren", "quoted", "end"]
        );
        assert_eq!(extract_hashtags("🔥#fire #️⃣"), ["fire"]);
    }

    #[test]
    fn glued_entities_urls_and_doubled_signs_are_not_hashtags() {
        assert!(extract_hashtags("word#glued").is_empty());
        assert!(extract_hashtags("&#39; entity").is_empty());
        assert!(
            extract_hashtags("see https://example.com/#anchor and http://x.org/a#b").is_empty()
        );
        assert!(extract_hashtags("#foo#bar #baz＃ #web://").is_empty());
    }

    #[test]
    fn normalization_folds_width_and_case() {
        assert_eq!(normalize("Rust"), "rust");
        assert_eq!(normalize("#RUST"), "rust");
        assert_eq!(normalize("Ｒｕｓｔ"), "rust");
        assert_eq!(normalize("Straße"), "straße");
        assert_eq!(normalize("İstanbul"), "i\u{307}stanbul");
    }

    #[test]
    fn a_post_counts_each_tag_once_and_prefers_supplied_tags() {
        let mut post = RawPost {
            id: "1".into(),
            text: "#Rust #rust #RUST #kafka".into(),
            created_at: "2026-11-22T10:00:00Z".into(),
            author_id: None,
            lang: None,
            source: None,
            hashtags: None,
        };
        assert_eq!(tags_for_post(&post), ["rust", "kafka"]);
        post.hashtags = Some(vec!["Bluesky".into(), "#bluesky".into(), String::new()]);
        assert_eq!(tags_for_post(&post), ["bluesky"]);
    }

    proptest! {
        #[test]
        fn never_panics_and_returns_substrings(text in any::<String>()) {
            for tag in extract_hashtags(&text) {
                prop_assert!(text.contains(tag));
                prop_assert!(!tag.is_empty());
            }
        }

        #[test]
        fn normalization_is_idempotent(text in "\\PC{0,20}") {
            let once = normalize(&text);
            // Stripping a sign is part of normalizing an input, so compare without re-stripping.
            let twice: String = once.nfkc().flat_map(char::to_lowercase).collect();
            prop_assert_eq!(once, twice);
        }
    }
}
