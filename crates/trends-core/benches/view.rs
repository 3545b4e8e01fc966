//! What the API's read model costs (`TrendsView`, `Ranker`), with 100,000 and 1,000,000
//! distinct tags in the last hour (one post each, on 12 partitions: a fine bucket, a coarse
//! bucket and an all-time record per tag, as the pipeline benchmark's memory phase writes):
//!
//! - `rank_from_scratch`: a snapshot with every name sorted afresh (the first one after a
//!   start, or `TrendsView::snapshot`);
//! - `consumer_side`: what the follower's loop does between two snapshots: apply 1,000 changed
//!   records (900 counts of existing tags, 100 new tags) and take a frame (shared chunks; the
//!   writes after a frame copy the chunks they touch);
//! - `steady_snapshot`: the same plus ranking the frame with the long-lived `Ranker` (this part
//!   runs on the blocking pool, not on the loop);
//! - `apply_100k_records`: applying 100,000 records to the 100k view.
//!
//! `cargo bench -p trends-core --bench view`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::view::{Ranker, TrendsView};
use trends_core::window::{BucketLayout, Resolution};

const NOW: i64 = 1_795_435_200_000;
const PARTITIONS: usize = 12;

fn records(partition: i32, tag: &str, time: i64, count: i64) -> [CountsRecord; 3] {
    let layout = BucketLayout::default();
    let bucket = |resolution| CountsKey::Bucket {
        partition,
        resolution,
        start: layout.bucket_start(resolution, time),
        tag: tag.to_string(),
    };
    [
        CountsRecord::new(bucket(Resolution::Fine), Some(count)),
        CountsRecord::new(bucket(Resolution::Coarse), Some(count)),
        CountsRecord {
            spellings: vec![(tag.to_string(), count)],
            ..CountsRecord::new(
                CountsKey::Total {
                    partition,
                    tag: tag.to_string(),
                },
                Some(count),
            )
        },
    ]
}

fn view(tags: usize) -> TrendsView {
    let mut view = TrendsView::new(BucketLayout::default());
    for partition in 0..PARTITIONS as i32 {
        view.apply(CountsRecord::new(
            CountsKey::Watermark { partition },
            Some(NOW),
        ));
    }
    for i in 0..tags {
        let time = NOW - 3_000_000 + (i as i64 * 3_000_000 / tags as i64);
        for record in records((i % PARTITIONS) as i32, &format!("m{i}"), time, 1) {
            view.apply(record);
        }
    }
    view
}

/// Round `round`'s 1,000 changed records: 900 counts of existing tags grow in the newest
/// bucket, 100 new tags appear.
fn changes(round: usize, tags: usize) -> Vec<CountsRecord> {
    (0..1_000)
        .flat_map(|j| {
            let i = (round * 7_919 + j * 997) % tags;
            let (tag, count) = if j < 100 {
                (format!("n{round}-{j}"), 1)
            } else {
                (format!("m{i}"), 2 + (round % 1_000) as i64)
            };
            records((i % PARTITIONS) as i32, &tag, NOW, count)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("view");
    group.sample_size(10);
    for tags in [100_000, 1_000_000] {
        let label = if tags == 100_000 { "100k" } else { "1m" };
        let mut view = view(tags);
        group.bench_function(BenchmarkId::new("rank_from_scratch", label), |b| {
            b.iter(|| black_box(view.snapshot()));
        });
        let mut ranker = Ranker::default();
        drop(ranker.build(view.frame()));
        let prepared: Vec<Vec<CountsRecord>> = (0..64).map(|r| changes(r, tags)).collect();
        let mut round = 0;
        let mut kept = None;
        group.bench_function(BenchmarkId::new("consumer_side", label), |b| {
            b.iter(|| {
                for record in prepared[round % prepared.len()].iter().cloned() {
                    view.apply(record);
                }
                round += 1;
                // The frame is kept while the next changes are applied, as the ranking does.
                kept = Some(black_box(view.frame()));
            });
        });
        drop(kept);
        drop(ranker.build(view.frame()));
        group.bench_function(BenchmarkId::new("steady_snapshot", label), |b| {
            b.iter(|| {
                for record in prepared[round % prepared.len()].iter().cloned() {
                    view.apply(record);
                }
                round += 1;
                black_box(ranker.build(view.frame()))
            });
        });
    }
    let records: Vec<CountsRecord> = (0..100_000)
        .flat_map(|i| {
            let time = NOW - 3_000_000 + (i as i64 * 30);
            records((i % PARTITIONS) as i32, &format!("m{i}"), time, 2)
        })
        .take(100_000)
        .collect();
    let mut view = view(100_000);
    group.bench_function("apply_100k_records", |b| {
        b.iter(|| {
            for record in records.iter().cloned() {
                view.apply(record);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
