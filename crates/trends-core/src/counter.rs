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
use crate::window::{BucketLayout, Resolution};

type Bucket = HashMap<String, i64>;

/// Per-input-partition windowed counts.
#[derive(Debug)]
pub struct PartitionCounter {
    partition: i32,
    layout: BucketLayout,
    watermark: Option<EpochMillis>,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    totals: Bucket,
    dirty: HashSet<CountsKey>,
    watermark_dirty: bool,
}

/// What happened to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Counted in its buckets and in `all`.
    InWindows,
    /// Older than the longest window at this partition's watermark: counted in `all` only.
    Late,
}

impl PartitionCounter {
    pub fn new(partition: i32, layout: BucketLayout) -> Self {
        PartitionCounter {
            partition,
            layout,
            watermark: None,
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            totals: HashMap::new(),
            dirty: HashSet::new(),
            watermark_dirty: false,
        }
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
    pub fn record(&mut self, event_time: EpochMillis, tags: &[String]) -> Recorded {
        if self.watermark.is_none_or(|w| event_time > w) {
            self.watermark = Some(event_time);
            self.watermark_dirty = true;
        }
        let watermark = self.watermark.unwrap_or(event_time);
        let mut outcome = Recorded::InWindows;
        for resolution in Resolution::BOTH {
            let start = self.layout.bucket_start(resolution, event_time);
            if start < self.layout.oldest_retained(resolution, watermark) {
                outcome = Recorded::Late;
                continue;
            }
            let partition = self.partition;
            let bucket = self.buckets_mut(resolution).entry(start).or_default();
            for tag in tags {
                *bucket.entry(tag.clone()).or_insert(0) += 1;
            }
            for tag in tags {
                self.dirty.insert(CountsKey::Bucket {
                    partition,
                    resolution,
                    start,
                    tag: tag.clone(),
                });
            }
        }
        for tag in tags {
            *self.totals.entry(tag.clone()).or_insert(0) += 1;
            self.dirty.insert(CountsKey::Total {
                partition: self.partition,
                tag: tag.clone(),
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
                self.totals.insert(tag, count);
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
                        updates.push(CountsRecord { key, value: None });
                    }
                }
            }
        }
        for key in self.dirty.drain() {
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
                CountsKey::Total { tag, .. } => self.totals.get(tag).copied(),
                CountsKey::Watermark { .. } => self.watermark,
            };
            updates.push(CountsRecord { key, value });
        }
        if std::mem::take(&mut self.watermark_dirty) {
            updates.push(CountsRecord {
                key: CountsKey::Watermark {
                    partition: self.partition,
                },
                value: self.watermark,
            });
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

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
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
        original.record(NOON + 31_000, &tags(&["a"]));
        restored.record(NOON + 31_000, &tags(&["a"]));
        assert_eq!(
            as_map(original.take_updates()),
            as_map(restored.take_updates())
        );
    }
}
