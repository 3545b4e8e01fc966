//! The hot path does not allocate: extraction with `for_each_hashtag` never does, and
//! `normalize_into` into a buffer with room does not for ASCII tags, nor for non-ASCII tags
//! that are already NFKC.
//!
//! A counting global allocator counts the allocations made by the current thread only, so
//! the test harness's other threads do not disturb the counts.

// A global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use trends_core::hashtag::{for_each_hashtag, normalize_into};
use trends_core::post::{RawPost, parse_post_ref};
use trends_core::tags::{DEFAULT_MAX_TAGS_PER_POST, TagExtractor};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while running `f`.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const POSTS: &[&str] = &[
    "Loving #RustLang and #kafka at the #Meetup2026 tonight!",
    "no hashtags in this one, just words and a link https://example.com/#anchor",
    "東京で #夏祭り と ＃花火 を見た 🎆 #Ｔｏｋｙｏ",
    "Привет из #Москва, #погода отличная",
    "#مرحبا بكم في #الرياض https://example.org/path?x=1#frag",
    "शुभ प्रभात #क्रिकेट #भारत 🇮🇳",
    "오늘 #서울 날씨 좋다 #맛집",
    "&#39;quoted&#39; word#glued #16 #️⃣ #foo#bar",
];

#[test]
fn the_hot_path_does_not_allocate() {
    // Warm up anything lazily initialised, and size the buffer once.
    let mut buf = String::with_capacity(256);
    let mut tags = 0usize;
    for post in POSTS {
        for_each_hashtag(post, |tag| {
            normalize_into(tag, &mut buf);
            tags += 1;
        });
    }
    assert_eq!(tags, 14, "hashtags in the sample posts");

    let extracting = allocations_during(|| {
        for post in POSTS {
            for_each_hashtag(post, |tag| {
                std::hint::black_box(tag);
            });
        }
    });
    assert_eq!(extracting, 0, "for_each_hashtag allocated");

    let ascii_tags = ["RustLang", "#kafka", "Meetup2026", "ALLCAPS_tag", "x"];
    let normalizing_ascii = allocations_during(|| {
        for tag in ascii_tags {
            normalize_into(tag, &mut buf);
            std::hint::black_box(&buf);
        }
    });
    assert_eq!(
        normalizing_ascii, 0,
        "normalize_into allocated for ASCII tags"
    );

    // Already-NFKC non-ASCII tags take the quick-check path and do not allocate either.
    let nfkc_tags = ["夏祭り", "Москва", "الرياض", "क्रिकेट", "서울", "Straße"];
    let normalizing_nfkc = allocations_during(|| {
        for tag in nfkc_tags {
            normalize_into(tag, &mut buf);
            std::hint::black_box(&buf);
        }
    });
    assert_eq!(
        normalizing_nfkc, 0,
        "normalize_into allocated for NFKC tags"
    );

    // The whole hot path over the sample posts.
    let hot_path = allocations_during(|| {
        for post in POSTS {
            for_each_hashtag(post, |tag| {
                normalize_into(tag, &mut buf);
                std::hint::black_box(&buf);
            });
        }
    });
    assert_eq!(hot_path, 0, "extract + normalize allocated");

    // The counter does count: a sanity check of the harness itself.
    let control = allocations_during(|| {
        std::hint::black_box(String::from("allocates"));
    });
    assert_eq!(control, 1);
}

/// The aggregator's per-record path before counting: `parse_post_ref` borrows every string of
/// a post written without escapes, and a `TagExtractor` that has seen posts before reuses its
/// buffers. So a record costs no allocation at all until it reaches the counter.
#[test]
fn parsing_a_record_and_extracting_its_tags_does_not_allocate() {
    let records: Vec<Vec<u8>> = POSTS
        .iter()
        .enumerate()
        .map(|(i, text)| {
            serde_json::to_vec(&RawPost {
                id: i.to_string(),
                text: text.to_string(),
                created_at: "2026-11-22T10:00:00.123Z".into(),
                author_id: Some("42".into()),
                lang: Some("en".into()),
                source: Some("synthetic".into()),
                hashtags: (i == 0).then(|| vec!["RustLang".into(), "#kafka".into()]),
            })
            .expect("serializes")
        })
        .collect();
    let mut extractor = TagExtractor::new();
    let run = |extractor: &mut TagExtractor| {
        let mut tags = 0;
        for record in &records {
            let post = parse_post_ref(record).expect("a valid post");
            tags += extractor
                .extract(&post, DEFAULT_MAX_TAGS_PER_POST)
                .tags
                .len();
        }
        tags
    };
    // The buffers grow to the sizes these records need (a few passes: tags trade strings).
    for _ in 0..3 {
        assert_eq!(run(&mut extractor), 13, "tags of the sample records");
    }
    let allocations = allocations_during(|| {
        std::hint::black_box(run(&mut extractor));
    });
    assert_eq!(allocations, 0, "parse_post_ref + TagExtractor allocated");
}
