//! Arbitrary bytes through both post parsers, then hashtag extraction and normalization.
//!
//! Checks, beyond "no panic": the aggregator's fast parser (`parse_post_ref`) and the
//! reference (`parse_post`, serde_json) agree: the same post, or the very same error (code and
//! reason), and the same tags from `extract_post_ref_tags` and `extract_post_tags`; every
//! hashtag is a non-empty slice of the text it came from, `extract_hashtags` and
//! `for_each_hashtag` agree, `normalize_into` equals `normalize`, and normalizing a counting
//! form again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trends_core::hashtag::{extract_hashtags, for_each_hashtag, normalize, normalize_into};
use trends_core::post::{parse_post, parse_post_ref};
use trends_core::tags::{DEFAULT_MAX_TAGS_PER_POST, extract_post_ref_tags, extract_post_tags};

fn check_text(text: &str, buf: &mut String) {
    let tags = extract_hashtags(text);
    let mut streamed = Vec::with_capacity(tags.len());
    for_each_hashtag(text, |tag| streamed.push(tag));
    assert_eq!(
        tags, streamed,
        "extract_hashtags and for_each_hashtag disagree"
    );

    let whole = text.as_bytes().as_ptr_range();
    for tag in tags {
        let part = tag.as_bytes().as_ptr_range();
        assert!(!tag.is_empty(), "empty hashtag");
        assert!(
            whole.start <= part.start && part.end <= whole.end,
            "hashtag {tag:?} is not a slice of the text"
        );
        normalize_into(tag, buf);
        assert_eq!(
            *buf,
            normalize(tag),
            "normalize_into and normalize disagree"
        );
        // A body never starts with a sign, so its counting form normalizes to itself.
        if !buf.starts_with(['#', '＃']) {
            assert_eq!(
                normalize(buf),
                *buf,
                "normalization is not idempotent for {tag:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = String::new();
    match (parse_post(data), parse_post_ref(data)) {
        (Ok(old), Ok(new)) => {
            assert_eq!(
                extract_post_tags(&old.post, DEFAULT_MAX_TAGS_PER_POST),
                extract_post_ref_tags(&new, DEFAULT_MAX_TAGS_PER_POST),
                "the two parsers' posts give different tags"
            );
            assert_eq!(
                new.into_owned(),
                old,
                "the two parsers give different posts"
            );
        }
        (Err(old), Err(new)) => {
            assert_eq!(old, new, "the two parsers give different errors");
            assert_eq!((old.code(), old.to_string()), (new.code(), new.to_string()));
        }
        (old, new) => panic!("the parsers disagree: {old:?} / {new:?}"),
    }
    if let Ok(parsed) = parse_post(data) {
        check_text(&parsed.post.text, &mut buf);
        for supplied in parsed.post.hashtags.iter().flatten() {
            normalize_into(supplied, &mut buf);
        }
    }
    check_text(&String::from_utf8_lossy(data), &mut buf);
});
