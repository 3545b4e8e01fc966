//! Arbitrary bytes as a post, through `extract_post_tags` with a limit taken from the input.
//!
//! Checks, beyond "no panic": `parse_post_ref` + `extract_post_ref_tags` (the aggregator's
//! path) give the very same tags; at most `max_tags` tags, each distinct, non-empty, at most
//! `MAX_TAG_CHARS` characters in both forms, its counting form the normalization of its
//! spelling; what the limits dropped is accounted for (kept + dropped never exceeds the
//! occurrences offered).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trends_core::hashtag::{extract_hashtags, normalize};
use trends_core::post::{parse_post, parse_post_ref};
use trends_core::tags::{MAX_TAG_CHARS, extract_post_ref_tags, extract_post_tags};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max_tags = usize::from(first % 64) + 1;
    let Ok(parsed) = parse_post(rest) else {
        return;
    };
    let got = extract_post_tags(&parsed.post, max_tags);
    // The aggregator's path (the fast parser, tags from the borrowed post) gives the same.
    let fast = parse_post_ref(rest).expect("parse_post accepted it");
    assert_eq!(
        extract_post_ref_tags(&fast, max_tags),
        got,
        "the fast path's tags differ"
    );
    assert!(got.tags.len() <= max_tags, "more than {max_tags} tags");
    for (i, t) in got.tags.iter().enumerate() {
        assert!(!t.tag.is_empty(), "an empty tag");
        assert!(
            t.tag.chars().count() <= MAX_TAG_CHARS,
            "a tag over the limit"
        );
        assert!(
            t.spelling.chars().count() <= MAX_TAG_CHARS,
            "a spelling over the limit"
        );
        assert_eq!(
            t.tag,
            normalize(&t.spelling),
            "tag is not its spelling normalized"
        );
        assert!(
            got.tags[..i].iter().all(|u| u.tag != t.tag),
            "tag {:?} twice",
            t.tag
        );
    }
    let offered = match &parsed.post.hashtags {
        Some(list) => list.len(),
        None => extract_hashtags(&parsed.post.text).len(),
    };
    let accounted = got.tags.len() + got.too_long as usize + got.over_limit as usize;
    assert!(
        accounted <= offered,
        "{accounted} accounted of {offered} offered"
    );
});
