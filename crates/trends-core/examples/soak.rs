//! A month of a live feed, time-compressed: does the aggregator's state stay flat?
//!
//! Counts `N` posts (20 million by default) with event times spread over 30 days into 12
//! [`PartitionCounter`]s with the aggregator's default capacities, taking the updates every
//! 100,000 posts as commits do, and applying them to a model of the compacted counts topic (the
//! last value of each key; a tombstone deletes). Tag popularity is heavy-tailed and new tags
//! never stop: each post has 1–3 tags, each with probability 0.7 drawn from 100,000 evergreen
//! tags by a Zipf law (exponent 1.1), else a tag never seen before (about 200,000 new tags a
//! simulated day, 6 million over the month).
//!
//! Prints a row per simulated day: the counters' heap (as glibc reserves it, counted by a
//! measuring allocator), their entries and distinct tags held, the live keys and bytes (keys +
//! values) of the counts topic, the evictions so far and the largest all-time floor. Flat
//! after the first day is the goal: memory bounded by configuration, not by what the month
//! brought.
//!
//! `cargo run --release -p trends-core --example soak -- 20000000`

// The measuring allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

#[path = "common/measuring.rs"]
mod measuring;

use std::collections::HashMap;

use measuring::{Measuring, set_counting, snapshot};
use trends_core::counter::PartitionCounter;
use trends_core::counts_record::CountsRecord;
use trends_core::tags::PostTag;
use trends_core::window::BucketLayout;

#[global_allocator]
static GLOBAL: Measuring = Measuring;

const PARTITIONS: usize = 12;
const DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
const EVERGREEN: usize = 100_000;
const ZIPF_EXPONENT: f64 = 1.1;
const COMMIT_EVERY: usize = 100_000;
const T0: i64 = 1_795_435_200_000;

/// A small deterministic generator (PCG-style LCG, upper bits).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() % (1 << 30)) as f64 / (1u64 << 30) as f64
    }
}

fn main() {
    let posts: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(20_000_000);
    set_counting(false);
    // The Zipf law's cumulative distribution over the evergreen ranks.
    let mut cdf = Vec::with_capacity(EVERGREEN);
    let mut total = 0.0;
    for rank in 1..=EVERGREEN {
        total += 1.0 / (rank as f64).powf(ZIPF_EXPONENT);
        cdf.push(total);
    }
    let mut rng = Rng(0x50A4_2026);
    // The counts topic after compaction: key → bytes of key and value.
    let mut topic: HashMap<String, usize> = HashMap::new();
    let mut topic_bytes: usize = 0;
    let mut new_tags = 0u64;
    let mut tags: Vec<PostTag> = Vec::with_capacity(3);

    set_counting(true);
    let before = snapshot();
    let mut counters: Vec<PartitionCounter> = (0..PARTITIONS as i32)
        .map(|p| PartitionCounter::new(p, BucketLayout::default()))
        .collect();
    set_counting(false);

    println!(
        "| day | posts | state heap | entries | tags held | topic keys | topic bytes | evictions (bucket / all) | max all floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut day_reported = 0;
    for i in 0..posts {
        let time = T0 + (i as i128 * (DAYS * DAY_MS) as i128 / posts as i128) as i64;
        tags.clear();
        for _ in 0..1 + rng.next() % 3 {
            let tag = if rng.unit() < 0.7 {
                let target = rng.unit() * total;
                let rank = cdf.partition_point(|&c| c < target);
                format!("ever{rank}")
            } else {
                new_tags += 1;
                format!("new{new_tags}")
            };
            if tags.iter().all(|t| t.tag != tag) {
                tags.push(PostTag {
                    spelling: tag.clone(),
                    tag,
                });
            }
        }
        let partition = (rng.next() as usize) % PARTITIONS;
        set_counting(true);
        counters[partition].record(time, &tags);
        set_counting(false);

        let last = i + 1 == posts;
        if (i + 1) % COMMIT_EVERY == 0 || last {
            for counter in &mut counters {
                set_counting(true);
                let updates = counter.take_updates();
                set_counting(false);
                apply(&mut topic, &mut topic_bytes, &updates);
                set_counting(true);
                drop(updates);
                set_counting(false);
            }
            let day = (time - T0) / DAY_MS + 1;
            if day > day_reported || last {
                day_reported = day;
                let heap = snapshot().1 - before.1;
                let entries: usize = counters.iter().map(PartitionCounter::entries).sum();
                let held: usize = counters.iter().map(PartitionCounter::tags_held).sum();
                let (bucket, all) = counters.iter().fold((0, 0), |(b, a), c| {
                    let e = c.evictions();
                    (b + e.bucket, a + e.all_time)
                });
                let floor = counters
                    .iter()
                    .map(PartitionCounter::all_time_floor)
                    .max()
                    .unwrap_or(0);
                println!(
                    "| {} | {:.1} M | {:.1} MiB | {:.2} M | {:.2} M | {:.2} M | {:.1} MiB | {} / {} | {} |",
                    if last {
                        format!("{day} (end)")
                    } else {
                        (day - 1).to_string()
                    },
                    (i + 1) as f64 / 1e6,
                    heap as f64 / 1_048_576.0,
                    entries as f64 / 1e6,
                    held as f64 / 1e6,
                    topic.len() as f64 / 1e6,
                    topic_bytes as f64 / 1_048_576.0,
                    bucket,
                    all,
                    floor
                );
            }
        }
    }
    println!(
        "{posts} posts, {new_tags} new tags, {} evergreen; 12 partitions, default capacities",
        EVERGREEN
    );
}

/// Applies a commit's updates to the compacted topic model.
fn apply(topic: &mut HashMap<String, usize>, bytes: &mut usize, updates: &[CountsRecord]) {
    for record in updates {
        let key = record.key.encode();
        let old = match record.encode_value() {
            Some(value) => topic.insert(key.clone(), key.len() + value.len()),
            None => topic.remove(&key),
        };
        *bytes -= old.unwrap_or(0);
        if let Some(&size) = topic.get(&key) {
            *bytes += size;
        }
    }
}
