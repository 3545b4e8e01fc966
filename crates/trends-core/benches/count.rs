//! Counting throughput: [`PartitionCounter::record`] and the commit-time
//! [`PartitionCounter::take_updates`], the aggregator's per-post and per-transaction work after
//! parsing and extraction (which `benches/extract.rs` measures); and the same for the trend
//! track ([`TrendTrack`]: distinct authors and posts per language), which the aggregator runs
//! beside it for every post, and both together (`with_trend_track`), the aggregator's whole
//! counting cost. Authors: one in 20,000 per post (a few prolific), languages: 4.
//!
//! `cargo bench -p trends-core --bench count`
//!
//! Posts are generated here from a fixed seed: 1–4 tags each from a Zipf-like vocabulary of
//! 10,000 tags (a few popular, a long tail), one in five spelled with capitals, event times
//! advancing 1 ms per post. Each iteration counts 100,000 posts into one partition's counter,
//! taking the updates every 10,000 posts as a commit would. Reports posts per second.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use trends_core::counter::PartitionCounter;
use trends_core::tags::PostTag;
use trends_core::trend_track::{Author, TrendTrack};
use trends_core::window::BucketLayout;

const POSTS: usize = 100_000;
const VOCABULARY: u64 = 10_000;
const COMMIT_EVERY: usize = 10_000;
const T0: i64 = 1_795_435_200_000;

fn posts() -> Vec<(i64, Vec<PostTag>)> {
    let mut state: u64 = 0x5EED_C0DE;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        state >> 33
    };
    (0..POSTS)
        .map(|i| {
            let n = 1 + next() % 4;
            let mut tags: Vec<PostTag> = Vec::new();
            for _ in 0..n {
                // Zipf-like: the square of a uniform draw favours small ranks.
                let u = (next() % 1_000) as f64 / 1_000.0;
                let rank = ((u * u) * VOCABULARY as f64) as u64;
                let tag = format!("tag{rank}");
                if tags.iter().any(|t| t.tag == tag) {
                    continue;
                }
                let spelling = if next() % 5 == 0 {
                    format!("Tag{rank}")
                } else {
                    tag.clone()
                };
                tags.push(PostTag { tag, spelling });
            }
            (T0 + i as i64, tags)
        })
        .collect()
}

fn count(c: &mut Criterion) {
    let posts = posts();
    let mut group = c.benchmark_group("count");
    group.throughput(Throughput::Elements(POSTS as u64));
    group.bench_function("record+take_updates", |b| {
        b.iter_batched(
            || PartitionCounter::new(0, BucketLayout::default()),
            |mut counter| {
                for (i, (time, tags)) in posts.iter().enumerate() {
                    black_box(counter.record(*time, tags));
                    if i % COMMIT_EVERY == COMMIT_EVERY - 1 {
                        black_box(counter.take_updates());
                    }
                }
                counter
            },
            BatchSize::LargeInput,
        );
    });
    let authors: Vec<String> = (0..POSTS)
        .map(|i| format!("{}", (i * 7_919) % 20_000))
        .collect();
    let langs = ["en", "ja", "pt", "und"];
    let track = || {
        TrendTrack::new(
            0,
            BucketLayout::default(),
            trends_core::counter::Capacity::DEFAULT,
            262_144,
        )
    };
    group.bench_function("trend_track", |b| {
        b.iter_batched(
            track,
            |mut track| {
                for (i, (time, tags)) in posts.iter().enumerate() {
                    track.record(*time, langs[i % 4], Author::Id(&authors[i]), tags);
                    if i % COMMIT_EVERY == COMMIT_EVERY - 1 {
                        black_box(track.take_updates());
                    }
                }
                track
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("with_trend_track", |b| {
        b.iter_batched(
            || (PartitionCounter::new(0, BucketLayout::default()), track()),
            |(mut counter, mut track)| {
                for (i, (time, tags)) in posts.iter().enumerate() {
                    black_box(counter.record(*time, tags));
                    track.record(*time, langs[i % 4], Author::Id(&authors[i]), tags);
                    if i % COMMIT_EVERY == COMMIT_EVERY - 1 {
                        black_box(counter.take_updates());
                        black_box(track.take_updates());
                    }
                }
                (counter, track)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = counting;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(8));
    targets = count
}
criterion_main!(counting);
