//! The counting state the aggregator keeps for one input partition.
//!
//! A [`PartitionCounter`] holds the partition's buckets at both resolutions, its all-time totals
//! and its watermark, and remembers which keys changed since the last emission. The aggregator
//! feeds it posts and periodically calls [`PartitionCounter::take_updates`], which also expires
//! buckets that left the longest window (emitting tombstones for them). Because the emitted
//! values are absolute, the state can be rebuilt from the counts topic alone with
//! [`PartitionCounter::restore`].

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::tags::PostTag;
use crate::window::{BucketLayout, Resolution};

type Bucket = HashMap<String, i64>;

/// How many distinct spellings of one tag a partition tracks for the display form. Spellings
/// beyond these are counted under their tag but not as spellings.
pub const MAX_SPELLINGS: usize = 8;

/// All-time count of one tag on this partition, with its spellings.
#[derive(Debug, Default, Clone)]
struct Total {
    count: i64,
    spellings: Vec<(String, i64)>,
}

/// Per-input-partition windowed counts.
#[derive(Debug)]
pub struct PartitionCounter {
    partition: i32,
    layout: BucketLayout,
    watermark: Option<EpochMillis>,
    /// Posts older than `watermark - allowed_lateness` count in `all` only.
    allowed_lateness_ms: i64,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    totals: HashMap<String, Total>,
    dirty: HashSet<CountsKey>,
    watermark_dirty: bool,
}

/// What happened to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Counted in its buckets and in `all`.
    InWindows,
    /// Older than the allowed lateness, or than the longest window, at this partition's
    /// watermark: counted in `all` only.
    Late,
}

impl PartitionCounter {
    pub fn new(partition: i32, layout: BucketLayout) -> Self {
        PartitionCounter {
            partition,
            layout,
            watermark: None,
            allowed_lateness_ms: i64::MAX,
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            totals: HashMap::new(),
            dirty: HashSet::new(),
            watermark_dirty: false,
        }
    }

    /// Sets the allowed lateness: a post whose event time is more than this before the
    /// partition's watermark is counted in `all` only. Unlimited by default (the longest window
    /// still bounds what the buckets keep).
    pub fn with_allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.allowed_lateness_ms = lateness_ms.max(0);
        self
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn watermark(&self) -> Option<EpochMillis> {
        self.watermark
    }

    fn buckets_mut(&mut self, resolution: Resolution) -> &mut BTreeMap<EpochMillis, Bucket> {
        match resolution {
            Resolution::Fine => &mut self.fine,
            Resolution::Coarse => &mut self.coarse,
        }
    }

    /// Counts one post with the given (normalized, distinct) tags at `event_time`.
    pub fn record(&mut self, event_time: EpochMillis, tags: &[PostTag]) -> Recorded {
        if self.watermark.is_none_or(|w| event_time > w) {
            self.watermark = Some(event_time);
            self.watermark_dirty = true;
        }
        let watermark = self.watermark.unwrap_or(event_time);
        let mut outcome = Recorded::InWindows;
        let too_late = event_time < watermark.saturating_sub(self.allowed_lateness_ms);
        for resolution in Resolution::BOTH {
            if too_late {
                outcome = Recorded::Late;
                break;
            }
            let start = self.layout.bucket_start(resolution, event_time);
            if start < self.layout.oldest_retained(resolution, watermark) {
                // Outside every window of this resolution already. Only a post that is outside
                // the 24 h window too is late; one older than 1 h still counts in 24 h.
                if resolution == Resolution::Coarse {
                    outcome = Recorded::Late;
                }
                continue;
            }
            let partition = self.partition;
            let bucket = self.buckets_mut(resolution).entry(start).or_default();
            for t in tags {
                *bucket.entry(t.tag.clone()).or_insert(0) += 1;
            }
            for t in tags {
                self.dirty.insert(CountsKey::Bucket {
                    partition,
                    resolution,
                    start,
                    tag: t.tag.clone(),
                });
            }
        }
        for t in tags {
            let total = self.totals.entry(t.tag.clone()).or_default();
            total.count += 1;
            if let Some((_, n)) = total.spellings.iter_mut().find(|(s, _)| *s == t.spelling) {
                *n += 1;
            } else if total.spellings.len() < MAX_SPELLINGS {
                total.spellings.push((t.spelling.clone(), 1));
            }
            self.dirty.insert(CountsKey::Total {
                partition: self.partition,
                tag: t.tag.clone(),
            });
        }
        outcome
    }

    /// Applies a record read back from the counts topic (absolute values; `None` deletes).
    /// Records of other partitions are ignored. Nothing restored is marked as changed.
    pub fn restore(&mut self, record: CountsRecord) {
        if record.key.partition() != self.partition {
            return;
        }
        match (record.key, record.value) {
            (CountsKey::Watermark { .. }, value) => self.watermark = value,
            (CountsKey::Total { tag, .. }, Some(count)) => {
                let mut spellings = record.spellings;
                spellings.truncate(MAX_SPELLINGS);
                self.totals.insert(tag, Total { count, spellings });
            }
            (CountsKey::Total { tag, .. }, None) => {
                self.totals.remove(&tag);
            }
            (
                CountsKey::Bucket {
                    resolution,
                    start,
                    tag,
                    ..
                },
                value,
            ) => {
                let buckets = self.buckets_mut(resolution);
                match value {
                    Some(count) => {
                        buckets.entry(start).or_default().insert(tag, count);
                    }
                    None => {
                        if let Some(bucket) = buckets.get_mut(&start) {
                            bucket.remove(&tag);
                            if bucket.is_empty() {
                                buckets.remove(&start);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Expires old buckets and returns every change since the last call: new absolute counts,
    /// tombstones for expired buckets, and the watermark if it moved.
    pub fn take_updates(&mut self) -> Vec<CountsRecord> {
        let mut updates = Vec::with_capacity(self.dirty.len() + 1);
        if let Some(watermark) = self.watermark {
            for resolution in Resolution::BOTH {
                let oldest = self.layout.oldest_retained(resolution, watermark);
                let buckets = self.buckets_mut(resolution);
                let kept = buckets.split_off(&oldest);
                let expired = std::mem::replace(buckets, kept);
                for (start, bucket) in expired {
                    for (tag, _) in bucket {
                        let key = CountsKey::Bucket {
                            partition: self.partition,
                            resolution,
                            start,
                            tag,
                        };
                        self.dirty.remove(&key);
                        updates.push(CountsRecord::new(key, None));
                    }
                }
            }
        }
        for key in self.dirty.drain() {
            let mut spellings = Vec::new();
            let value = match &key {
                CountsKey::Bucket {
                    resolution,
                    start,
                    tag,
                    ..
                } => {
                    let buckets = match resolution {
                        Resolution::Fine => &self.fine,
                        Resolution::Coarse => &self.coarse,
                    };
                    buckets.get(start).and_then(|b| b.get(tag)).copied()
                }
                CountsKey::Total { tag, .. } => self.totals.get(tag).map(|total| {
                    spellings.clone_from(&total.spellings);
                    total.count
                }),
                CountsKey::Watermark { .. } => self.watermark,
            };
            updates.push(CountsRecord {
                key,
                value,
                spellings,
            });
        }
        if std::mem::take(&mut self.watermark_dirty) {
            updates.push(CountsRecord::new(
                CountsKey::Watermark {
                    partition: self.partition,
                },
                self.watermark,
            ));
        }
        updates
    }

    /// Number of (bucket, tag) and (all, tag) entries held, for memory metrics.
    pub fn entries(&self) -> usize {
        let buckets: usize = self
            .fine
            .values()
            .chain(self.coarse.values())
            .map(HashMap::len)
            .sum();
        buckets + self.totals.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: EpochMillis = 1_795_435_200_000;

    fn tags(list: &[&str]) -> Vec<PostTag> {
        list.iter()
            .map(|s| PostTag {
                tag: s.to_lowercase(),
                spelling: s.to_string(),
            })
            .collect()
    }

    fn as_map(updates: Vec<CountsRecord>) -> HashMap<String, Option<i64>> {
        updates
            .into_iter()
            .map(|r| (r.key.encode(), r.value))
            .collect()
    }

    #[test]
    fn emits_absolute_counts_for_changed_keys_only() {
        let mut counter = PartitionCounter::new(2, BucketLayout::default());
        counter.record(NOON + 1_000, &tags(&["rust", "kafka"]));
        counter.record(NOON + 2_000, &tags(&["rust"]));
        let first = as_map(counter.take_updates());
        assert_eq!(first[&format!("2|f|{NOON}|rust")], Some(2));
        assert_eq!(first[&format!("2|c|{NOON}|kafka")], Some(1));
        assert_eq!(first["2|a|rust"], Some(2));
        assert_eq!(first["2|w"], Some(NOON + 2_000));
        assert_eq!(first.len(), 7);

        counter.record(NOON + 3_000, &tags(&["kafka"]));
        let second = as_map(counter.take_updates());
        assert_eq!(second.len(), 4, "{second:?}");
        assert_eq!(second["2|a|kafka"], Some(2));
        assert!(counter.take_updates().is_empty());
    }

    #[test]
    fn buckets_leaving_the_longest_window_are_tombstoned() {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        counter.record(NOON, &tags(&["old"]));
        counter.take_updates();
        // One hour later the fine bucket at NOON is out of the 1h window; the coarse one is not.
        counter.record(NOON + 3_600_000, &tags(&["new"]));
        let updates = as_map(counter.take_updates());
        assert_eq!(updates[&format!("0|f|{NOON}|old")], None);
        assert!(!updates.contains_key(&format!("0|c|{NOON}|old")));
        assert_eq!(
            counter.entries(),
            2 /* new f+c */ + 1 /* old c */ + 2 /* totals */
        );
    }

    #[test]
    fn records_older_than_the_longest_window_count_only_in_all() {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        counter.record(NOON + 86_400_000, &tags(&["x"]));
        assert_eq!(counter.record(NOON, &tags(&["x"])), Recorded::Late);
        let updates = as_map(counter.take_updates());
        assert_eq!(updates["0|a|x"], Some(2));
        assert!(!updates.contains_key(&format!("0|c|{NOON}|x")));
    }

    #[test]
    fn spellings_are_counted_in_all_and_capped() {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        counter.record(NOON, &tags(&["Rust"]));
        counter.record(NOON, &tags(&["RUST"]));
        counter.record(NOON, &tags(&["Rust"]));
        let total = counter
            .take_updates()
            .into_iter()
            .find(|r| r.key.encode() == "0|a|rust")
            .expect("total");
        assert_eq!(total.value, Some(3));
        assert_eq!(
            total.spellings,
            [("Rust".to_string(), 2), ("RUST".to_string(), 1)]
        );
        for i in 0..20 {
            let spelling = format!("r{}", "U".repeat(i));
            counter.record(
                NOON,
                &[PostTag {
                    tag: "x".into(),
                    spelling,
                }],
            );
        }
        let x = counter
            .take_updates()
            .into_iter()
            .find(|r| r.key.encode() == "0|a|x")
            .expect("x");
        assert_eq!((x.value, x.spellings.len()), (Some(20), MAX_SPELLINGS));
    }

    #[test]
    fn posts_beyond_the_allowed_lateness_count_only_in_all() {
        let mut counter =
            PartitionCounter::new(0, BucketLayout::default()).with_allowed_lateness(60_000);
        counter.record(NOON + 120_000, &tags(&["x"]));
        assert_eq!(
            counter.record(NOON + 60_000, &tags(&["x"])),
            Recorded::InWindows
        );
        assert_eq!(counter.record(NOON + 59_999, &tags(&["x"])), Recorded::Late);
        let updates = as_map(counter.take_updates());
        assert_eq!(updates["0|a|x"], Some(3));
        assert_eq!(updates[&format!("0|c|{NOON}|x")], Some(2));
    }

    #[test]
    fn restore_rebuilds_state_from_emitted_records() {
        let mut original = PartitionCounter::new(5, BucketLayout::default());
        original.record(NOON, &tags(&["a", "b"]));
        original.record(NOON + 30_000, &tags(&["a"]));
        let emitted = original.take_updates();

        let mut restored = PartitionCounter::new(5, BucketLayout::default());
        for record in emitted {
            restored.restore(record);
        }
        assert!(restored.take_updates().is_empty());
        assert_eq!(restored.watermark(), Some(NOON + 30_000));
        // Counting continues from the restored values.
        original.record(NOON + 31_000, &tags(&["A"]));
        restored.record(NOON + 31_000, &tags(&["A"]));
        assert_eq!(
            as_map(original.take_updates()),
            as_map(restored.take_updates())
        );
        original.record(NOON + 31_000, &tags(&["a"]));
        restored.record(NOON + 31_000, &tags(&["a"]));
        assert_eq!(
            as_map(original.take_updates()),
            as_map(restored.take_updates())
        );
    }
}
