//! Counting throughput: [`PartitionCounter::record`] and the commit-time
//! [`PartitionCounter::take_updates`], the aggregator's per-post and per-transaction work after
//! parsing and extraction (which `benches/extract.rs` measures).
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
