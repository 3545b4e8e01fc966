//! How much heap the API's read model takes per distinct tag, and what ranking it costs: the
//! measurement behind the API rows of BENCHMARKS.md.
//!
//! Feeds a [`TrendsView`] the counts records of `N` distinct tags (`m<i>`, one post each, event
//! times spread over the last 50 minutes, on 12 partitions, as the pipeline benchmark's memory
//! phase writes them): per tag a fine bucket, a coarse bucket and an all-time record with its
//! spelling. Reports the heap the view holds (bytes requested and the bytes glibc's malloc
//! reserves, per tag and in total), then the heap of one ranked snapshot on top of it (what
//! the API serves while the view moves on), and the time one ranking takes, from scratch and
//! after 1,000 changed records (the follower's steady state).
//!
//! Times are wall-clock and, in brackets, the CPU time this thread ran (Linux
//! `/proc/thread-self/schedstat`), which a machine busy with other work inflates less.
//!
//! `cargo run --release -p trends-core --example view_memory -- 1000000`

// The measuring allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

#[path = "common/measuring.rs"]
mod measuring;

use std::time::Instant;

use measuring::{Measuring, snapshot};
use trends_core::counts_record::{CountsKey, CountsRecord};
use trends_core::view::{Ranker, TrendsView};
use trends_core::window::{BucketLayout, Resolution};

#[global_allocator]
static GLOBAL: Measuring = Measuring;

/// Nanoseconds this thread has run on a CPU (0 where the kernel does not say).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (wall ms, cpu ms).
type Times = (f64, f64);

/// A wall-clock and CPU stopwatch.
#[derive(Clone, Copy)]
struct Watch(Instant, u64);

impl Watch {
    fn start() -> Self {
        Watch(Instant::now(), cpu_ns())
    }

    /// (wall ms, cpu ms) since the start.
    fn ms(self) -> Times {
        (
            self.0.elapsed().as_secs_f64() * 1e3,
            cpu_ns().saturating_sub(self.1) as f64 / 1e6,
        )
    }
}

const NOW: i64 = 1_795_435_200_000;
const PARTITIONS: usize = 12;

/// The three records the aggregator writes for a post with tag `tag` at `time`, counted `count`
/// times on `partition`.
fn records(
    layout: BucketLayout,
    partition: i32,
    tag: &str,
    time: i64,
    count: i64,
) -> [CountsRecord; 3] {
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

fn main() {
    let tags: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let layout = BucketLayout::default();
    let time_of = |i: usize| NOW - 3_000_000 + (i as i64 * 3_000_000 / tags as i64);
    let before = snapshot();
    let mut view = TrendsView::new(layout);
    for partition in 0..PARTITIONS {
        view.apply(CountsRecord::new(
            CountsKey::Watermark {
                partition: partition as i32,
            },
            Some(NOW),
        ));
    }
    for i in 0..tags {
        let tag = format!("m{i}");
        for record in records(layout, (i % PARTITIONS) as i32, &tag, time_of(i), 1) {
            view.apply(record);
        }
    }
    let held = snapshot();
    let mib = |bytes: i64| bytes as f64 / 1_048_576.0;
    let per_tag = |bytes: i64| bytes as f64 / tags as f64;
    println!(
        "view of {tags} distinct tags ({PARTITIONS} partitions, 3 records a tag): \
         {:.0} bytes/tag requested, {:.0} bytes/tag reserved ({:.1} MiB), {:.1} allocations/tag",
        per_tag(held.0 - before.0),
        per_tag(held.1 - before.1),
        mib(held.1 - before.1),
        per_tag(held.2 - before.2),
    );

    let started = Watch::start();
    let mut ranker = Ranker::default();
    let first = ranker.build(view.frame());
    let from_scratch = started.ms();
    let ranked = snapshot();
    println!(
        "+ one ranked snapshot: {:.0} bytes/tag reserved ({:.1} MiB); view + snapshot {:.1} MiB",
        per_tag(ranked.1 - held.1),
        mib(ranked.1 - held.1),
        mib(ranked.1 - before.1),
    );

    // The steady state: 1,000 records change (counts of existing tags in the newest bucket,
    // and 100 new tags), then the follower frames the view and ranks the frame.
    let mut steady = Vec::new();
    for round in 0..5 {
        for j in 0..1_000 {
            let i = (round * 7_919 + j * 997) % tags;
            let (tag, count) = if j < 100 {
                (format!("n{round}-{j}"), 1)
            } else {
                (format!("m{i}"), 2 + round as i64)
            };
            for record in records(layout, (i % PARTITIONS) as i32, &tag, NOW, count) {
                view.apply(record);
            }
        }
        let started = Watch::start();
        let frame = view.frame();
        let framed = started.ms();
        let snapshot = ranker.build(frame);
        steady.push((framed, started.ms()));
        drop(snapshot);
    }
    let median = |pick: fn(&(Times, Times)) -> f64| {
        let mut values: Vec<f64> = steady.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "ranking from scratch: {:.1} ms [cpu {:.1}]; after 1,000 changed records (medians of 5): \
         frame {:.2} ms [cpu {:.2}] (on the consumer's loop), frame + ranking {:.1} ms \
         [cpu {:.1}] (off it)",
        from_scratch.0,
        from_scratch.1,
        median(|s| s.0.0),
        median(|s| s.0.1),
        median(|s| s.1.0),
        median(|s| s.1.1),
    );
    drop(first);
}
