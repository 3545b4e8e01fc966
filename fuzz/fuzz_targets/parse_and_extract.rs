//! Arbitrary bytes through the post parser, then hashtag extraction and normalization.
//!
//! Checks, beyond "no panic": every hashtag is a non-empty slice of the text it came from,
//! `extract_hashtags` and `for_each_hashtag` agree, `normalize_into` equals `normalize`, and
//! normalizing a counting form again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trends_core::hashtag::{extract_hashtags, for_each_hashtag, normalize, normalize_into};
use trends_core::post::parse_post;

fn check_text(text: &str, buf: &mut String) {
    let tags = extract_hashtags(text);
    let mut streamed = Vec::with_capacity(tags.len());
    for_each_hashtag(text, |tag| streamed.push(tag));
    assert_eq!(tags, streamed, "extract_hashtags and for_each_hashtag disagree");

    let whole = text.as_bytes().as_ptr_range();
    for tag in tags {
        let part = tag.as_bytes().as_ptr_range();
        assert!(!tag.is_empty(), "empty hashtag");
        assert!(
            whole.start <= part.start && part.end <= whole.end,
            "hashtag {tag:?} is not a slice of the text"
        );
        normalize_into(tag, buf);
        assert_eq!(*buf, normalize(tag), "normalize_into and normalize disagree");
        // A body never starts with a sign, so its counting form normalizes to itself.
        if !buf.starts_with(['#', '＃']) {
            assert_eq!(normalize(buf), *buf, "normalization is not idempotent for {tag:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = String::new();
    if let Ok(parsed) = parse_post(data) {
        check_text(&parsed.post.text, &mut buf);
        for supplied in parsed.post.hashtags.iter().flatten() {
            normalize_into(supplied, &mut buf);
        }
    }
    check_text(&String::from_utf8_lossy(data), &mut buf);
});
