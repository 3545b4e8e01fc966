//! The trend board: what the API does with the trend track's records. `apply` is its share of
//! consuming the counts topic; `build` runs at every snapshot (at most every 250 ms), scoring
//! every series with enough authors and every trend in progress, then ranking each language's
//! tags by posts.
//!
//! `cargo bench -p trends-core --bench trend`
//!
//! The data: 200,000 posts over the last hour from 50,000 authors, 1–3 tags each from a
//! Zipf-like vocabulary of `TAGS` tags, in 8 languages, counted by one partition's
//! [`TrendTrack`]; its records are applied to a fresh board (`apply`), and a board holding them
//! builds (`build`).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use trends_core::counter::Capacity;
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::tags::PostTag;
use trends_core::trend::{TrendBoard, TrendParams};
use trends_core::trend_track::{Author, TrendTrack};
use trends_core::window::BucketLayout;

const T0: i64 = 1_795_435_200_000;
const POSTS: i64 = 200_000;

fn records(tags: u64) -> Vec<CountsRecord> {
    let mut state: u64 = 0x7E4D_5EED;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        state >> 33
    };
    let langs = ["en", "ja", "pt", "es", "de", "fr", "ko", "und"];
    let mut track = TrendTrack::new(0, BucketLayout::default(), Capacity::DEFAULT, 1 << 20);
    for i in 0..POSTS {
        let mut post_tags: Vec<PostTag> = Vec::new();
        for _ in 0..1 + next() % 3 {
            let u = (next() % 10_000) as f64 / 10_000.0;
            let tag = format!("tag{}", ((u * u) * tags as f64) as u64);
            if post_tags.iter().all(|t| t.tag != tag) {
                post_tags.push(PostTag {
                    spelling: tag.clone(),
                    tag,
                });
            }
        }
        let author = (next() % 50_000).to_string();
        let lang = langs[(next() % 8) as usize];
        track.record(T0 + i * 18, lang, Author::Id(&author), &post_tags);
    }
    let mut records = track.take_updates();
    records.push(CountsRecord::new(
        CountsKey::Watermark { partition: 0 },
        Some(T0 + POSTS * 18),
    ));
    records
}

fn board(c: &mut Criterion) {
    let mut group = c.benchmark_group("trend");
    group.sample_size(10);
    for tags in [10_000u64, 100_000] {
        let records = records(tags);
        group.throughput(Throughput::Elements(records.len() as u64));
        group.bench_function(format!("apply/{tags}_tags"), |b| {
            b.iter_batched(
                || TrendBoard::new(BucketLayout::default(), TrendParams::default()),
                |mut board| {
                    for r in &records {
                        board.apply(r);
                    }
                    board
                },
                BatchSize::LargeInput,
            );
        });
        let mut board = TrendBoard::new(BucketLayout::default(), TrendParams::default());
        for r in &records {
            board.apply(r);
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("build/{tags}_tags"), |b| {
            b.iter(|| black_box(board.build(&|_| false)));
        });
    }
    group.finish();
}

criterion_group!(benches, board);
criterion_main!(benches);
