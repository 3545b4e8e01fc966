//! How much heap the aggregator's counting state takes per distinct tag: the measurement behind
//! the memory section of BENCHMARKS.md.
//!
//! Counts `N` posts, each with its own tag (`#m<i>`, event times spread over 50 minutes, as the
//! pipeline benchmark's memory phase does), into 12 [`PartitionCounter`]s, takes the updates (as
//! a commit does), and reports the heap the counters hold: bytes requested from the allocator,
//! the bytes glibc's malloc really reserves for them (chunks of 16-byte granules, 32 bytes at
//! least), and the number of live allocations, each per tag.
//!
//! `cargo run --release -p trends-core --example counter_memory -- 1000000`

// The measuring allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

#[path = "common/measuring.rs"]
mod measuring;

use measuring::{Measuring, snapshot};
use trends_core::counter::PartitionCounter;
use trends_core::tags::PostTag;
use trends_core::window::BucketLayout;

#[global_allocator]
static GLOBAL: Measuring = Measuring;

fn main() {
    let tags: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let partitions = 12;
    let now: i64 = 1_795_435_200_000;
    let before = snapshot();
    let mut counters: Vec<PartitionCounter> = (0..partitions)
        .map(|p| PartitionCounter::new(p, BucketLayout::default()))
        .collect();
    let mut peak = 0;
    for i in 0..tags {
        let time = now - 3_000_000 + (i as i64 * 3_000_000 / tags as i64);
        let tag = format!("m{i}");
        let post = [PostTag {
            spelling: tag.clone(),
            tag,
        }];
        counters[i % partitions as usize].record(time, &post);
        // A commit every 100,000 posts, as a catching-up aggregator commits every second.
        if i % 100_000 == 99_999 {
            peak = peak.max(snapshot().1 - before.1);
            for counter in &mut counters {
                drop(counter.take_updates());
            }
        }
    }
    peak = peak.max(snapshot().1 - before.1);
    for counter in &mut counters {
        drop(counter.take_updates());
    }
    let after = snapshot();
    let per_tag = |bytes: i64| bytes as f64 / tags as f64;
    let entries: usize = counters.iter().map(PartitionCounter::entries).sum();
    println!(
        "{tags} distinct tags over {partitions} partitions ({entries} bucket and total entries): \
         {:.0} bytes/tag requested, {:.0} bytes/tag reserved by malloc ({:.1} MiB), \
         {:.1} allocations/tag; peak reserved between commits {:.1} MiB",
        per_tag(after.0 - before.0),
        per_tag(after.1 - before.1),
        (after.1 - before.1) as f64 / 1_048_576.0,
        per_tag(after.2 - before.2),
        peak as f64 / 1_048_576.0,
    );
}
