//! The counting state the aggregator keeps for one input partition.
//!
//! A [`PartitionCounter`] holds the partition's buckets at both resolutions, its all-time totals
//! and its watermark, and remembers which keys changed since the last emission. The aggregator
//! feeds it posts and periodically calls [`PartitionCounter::take_updates`], which also expires
//! buckets that left the longest window (emitting tombstones for them). Because the emitted
//! values are absolute, the state can be rebuilt from the counts topic alone with
//! [`PartitionCounter::restore`].
//!
//! **Why tags are interned.** A partition sees each distinct tag in up to three places (its fine
//! bucket, its coarse bucket, its all-time total) plus the set of changed keys. Keyed by
//! `String`, that was five allocations and about 500 bytes per tag; the aggregator's memory grew
//! with distinct tags, not posts. Now each tag's string is stored once (a `TagSlot`, found
//! through a `HashTable` of ids hashed by the string), buckets map a `u32` id to a `u32` count
//! with a one-multiply hash, and changed keys are `(resolution, start, id)` triples: one
//! allocation and about 190 bytes per tag (`examples/counter_memory.rs`), and counting is
//! ~5× faster (`benches/count.rs`). Tags are never forgotten: the all-time window keeps them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use hashbrown::HashTable;

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::tags::PostTag;
use crate::window::{BucketLayout, Resolution};

/// How many distinct spellings of one tag a partition tracks (the bound of the counts
/// topic's `spellings`, [`crate::counts_record::MAX_SPELLINGS`]).
///
/// When a ninth spelling arrives, it takes the place of the least frequent one (the newest of
/// those, on a tie) with that one's count plus one: the Space-Saving rule (Metwally et al.,
/// 2005). So a spelling seen later can still become the most frequent, any spelling used by
/// more than one post in 8 of the tag's is kept, and a kept spelling's count is at most the
/// count of the one it replaced too high.
pub use crate::counts_record::MAX_SPELLINGS;

/// Index of a tag in [`PartitionCounter::tags`]: the tag's string is stored once, and every
/// bucket counts by this id.
type TagId = u32;

/// A multiplicative hash for tag ids: they are small dense integers, so one multiply by an odd
/// constant spreads them over the table's bits; SipHash would cost more than the lookup.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        // Replaces what was hashed before: a dirty key (resolution, start, id) hashes by its id
        // alone. Keys sharing an id are the few buckets one tag touched since the last commit
        // (two or three), so they collide little, and mixing the rest in measured slower
        // (`benches/count.rs`: 29.0 ms against 21.4 ms, back to back).
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdBuild = BuildHasherDefault<IdHasher>;

/// One bucket: posts per tag id. `u32` counts: one partition's 10-second or 5-minute bucket
/// never sees four billion posts.
type Bucket = HashMap<TagId, u32, IdBuild>;

/// How a tag was spelled, with counts, in first-seen order. `None` stands for the spelling that
/// equals the normalized tag, the common case, which then costs no allocation.
#[derive(Debug, Default, Clone)]
enum Spellings {
    #[default]
    Empty,
    One(Option<Box<str>>, i64),
    Many(Vec<(Option<Box<str>>, i64)>),
}

impl Spellings {
    fn count(&mut self, tag: &str, spelling: &str) {
        let key = (spelling != tag).then_some(spelling);
        match self {
            Spellings::Empty => *self = Spellings::One(key.map(Box::from), 1),
            Spellings::One(s, n) if s.as_deref() == key => *n += 1,
            Spellings::One(s, n) => {
                let first = (s.take(), *n);
                *self = Spellings::Many(vec![first, (key.map(Box::from), 1)]);
            }
            Spellings::Many(list) => {
                if let Some((_, n)) = list.iter_mut().find(|(s, _)| s.as_deref() == key) {
                    *n += 1;
                } else if list.len() < MAX_SPELLINGS {
                    list.push((key.map(Box::from), 1));
                } else if let Some(least) = list.iter_mut().rev().min_by_key(|(_, n)| *n) {
                    // Space-Saving: the newcomer inherits the least count, plus its own post.
                    *least = (key.map(Box::from), least.1 + 1);
                }
            }
        }
    }

    fn from_list(tag: &str, list: Vec<(String, i64)>) -> Spellings {
        let mut list: Vec<(Option<Box<str>>, i64)> = list
            .into_iter()
            .take(MAX_SPELLINGS)
            .map(|(s, n)| ((s != tag).then(|| s.into_boxed_str()), n))
            .collect();
        match list.len() {
            0 => Spellings::Empty,
            1 => {
                let (s, n) = list.pop().unwrap_or((None, 0));
                Spellings::One(s, n)
            }
            _ => Spellings::Many(list),
        }
    }

    fn to_list(&self, tag: &str) -> Vec<(String, i64)> {
        let spelled = |s: &Option<Box<str>>| s.as_deref().unwrap_or(tag).to_string();
        match self {
            Spellings::Empty => Vec::new(),
            Spellings::One(s, n) => vec![(spelled(s), *n)],
            Spellings::Many(list) => list.iter().map(|(s, n)| (spelled(s), *n)).collect(),
        }
    }
}

/// A tag seen on this partition, with its all-time count. Tags are never forgotten: the
/// all-time window keeps them.
#[derive(Debug)]
struct TagSlot {
    name: Box<str>,
    /// `None` when there is no all-time count (a restored tombstone).
    total: Option<i64>,
    spellings: Spellings,
    /// The all-time count changed since the last emission.
    total_dirty: bool,
}

/// Per-input-partition windowed counts.
#[derive(Debug)]
pub struct PartitionCounter {
    partition: i32,
    layout: BucketLayout,
    watermark: Option<EpochMillis>,
    /// Posts older than `watermark - allowed_lateness` count in `all` only.
    allowed_lateness_ms: i64,
    /// Every tag seen, by id.
    tags: Vec<TagSlot>,
    /// Tag string → id, hashed by `hasher`; holds ids only (the strings live in `tags`).
    index: HashTable<TagId>,
    hasher: RandomState,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    /// (resolution, bucket start, tag) of bucket counts changed since the last emission.
    dirty_buckets: HashSet<(Resolution, EpochMillis, TagId), IdBuild>,
    /// Ids whose all-time count changed since the last emission (`total_dirty` set).
    dirty_totals: Vec<TagId>,
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
            tags: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            dirty_buckets: HashSet::default(),
            dirty_totals: Vec::new(),
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

    /// The id of `tag`, added (without an all-time count) if new.
    fn intern(&mut self, tag: &str) -> TagId {
        let hash = self.hasher.hash_one(tag);
        let tags = &self.tags;
        if let Some(&id) = self.index.find(hash, |&id| &*tags[id as usize].name == tag) {
            return id;
        }
        let id = TagId::try_from(self.tags.len()).unwrap_or(TagId::MAX);
        self.tags.push(TagSlot {
            name: tag.into(),
            total: None,
            spellings: Spellings::Empty,
            total_dirty: false,
        });
        let (tags, hasher) = (&self.tags, &self.hasher);
        self.index
            .insert_unique(hash, id, |&id| hasher.hash_one(&*tags[id as usize].name));
        id
    }

    /// The id of `tag` if it was seen.
    fn lookup(&self, tag: &str) -> Option<TagId> {
        let hash = self.hasher.hash_one(tag);
        self.index
            .find(hash, |&id| &*self.tags[id as usize].name == tag)
            .copied()
    }

    fn name(&self, id: TagId) -> String {
        self.tags[id as usize].name.to_string()
    }

    fn mark_total_dirty(&mut self, id: TagId) {
        let slot = &mut self.tags[id as usize];
        if !slot.total_dirty {
            slot.total_dirty = true;
            self.dirty_totals.push(id);
        }
    }

    /// Counts one post with the given (normalized, distinct) tags at `event_time`.
    pub fn record(&mut self, event_time: EpochMillis, tags: &[PostTag]) -> Recorded {
        if self.watermark.is_none_or(|w| event_time > w) {
            self.watermark = Some(event_time);
            self.watermark_dirty = true;
        }
        let watermark = self.watermark.unwrap_or(event_time);
        let too_late = event_time < watermark.saturating_sub(self.allowed_lateness_ms);
        let mut outcome = if too_late {
            Recorded::Late
        } else {
            Recorded::InWindows
        };
        for t in tags {
            let id = self.intern(&t.tag);
            if !too_late {
                for resolution in Resolution::BOTH {
                    let start = self.layout.bucket_start(resolution, event_time);
                    if start < self.layout.oldest_retained(resolution, watermark) {
                        // Outside every window of this resolution already. Only a post that is
                        // outside the 24 h window too is late; one older than 1 h still counts
                        // in 24 h.
                        if resolution == Resolution::Coarse {
                            outcome = Recorded::Late;
                        }
                        continue;
                    }
                    let count = self
                        .buckets_mut(resolution)
                        .entry(start)
                        .or_default()
                        .entry(id)
                        .or_insert(0);
                    *count = count.saturating_add(1);
                    self.dirty_buckets.insert((resolution, start, id));
                }
            }
            let slot = &mut self.tags[id as usize];
            slot.total = Some(slot.total.unwrap_or(0) + 1);
            slot.spellings.count(&t.tag, &t.spelling);
            self.mark_total_dirty(id);
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
            (CountsKey::Total { tag, .. }, None) => {
                if let Some(id) = self.lookup(&tag) {
                    let slot = &mut self.tags[id as usize];
                    slot.total = None;
                    slot.spellings = Spellings::Empty;
                }
            }
            (CountsKey::Total { tag, .. }, value) => {
                let id = self.intern(&tag);
                let slot = &mut self.tags[id as usize];
                slot.total = value;
                slot.spellings = match value {
                    Some(_) => Spellings::from_list(&tag, record.spellings),
                    None => Spellings::Empty,
                };
            }
            (
                CountsKey::Bucket {
                    resolution,
                    start,
                    tag,
                    ..
                },
                value,
            ) => match value {
                Some(count) => {
                    let id = self.intern(&tag);
                    let count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
                    self.buckets_mut(resolution)
                        .entry(start)
                        .or_default()
                        .insert(id, count);
                }
                None => {
                    let Some(id) = self.lookup(&tag) else {
                        return;
                    };
                    let buckets = self.buckets_mut(resolution);
                    if let Some(bucket) = buckets.get_mut(&start) {
                        bucket.remove(&id);
                        if bucket.is_empty() {
                            buckets.remove(&start);
                        }
                    }
                }
            },
        }
    }

    /// Expires old buckets and returns every change since the last call: new absolute counts,
    /// tombstones for expired buckets, and the watermark if it moved.
    pub fn take_updates(&mut self) -> Vec<CountsRecord> {
        let mut updates =
            Vec::with_capacity(self.dirty_buckets.len() + self.dirty_totals.len() + 1);
        let partition = self.partition;
        if let Some(watermark) = self.watermark {
            for resolution in Resolution::BOTH {
                let oldest = self.layout.oldest_retained(resolution, watermark);
                let buckets = self.buckets_mut(resolution);
                let kept = buckets.split_off(&oldest);
                let expired = std::mem::replace(buckets, kept);
                for (start, bucket) in expired {
                    for (id, _) in bucket {
                        self.dirty_buckets.remove(&(resolution, start, id));
                        let key = CountsKey::Bucket {
                            partition,
                            resolution,
                            start,
                            tag: self.name(id),
                        };
                        updates.push(CountsRecord::new(key, None));
                    }
                }
            }
        }
        let dirty = std::mem::take(&mut self.dirty_buckets);
        for &(resolution, start, id) in &dirty {
            let buckets = match resolution {
                Resolution::Fine => &self.fine,
                Resolution::Coarse => &self.coarse,
            };
            let value = buckets
                .get(&start)
                .and_then(|b| b.get(&id))
                .map(|&n| i64::from(n));
            let key = CountsKey::Bucket {
                partition,
                resolution,
                start,
                tag: self.name(id),
            };
            updates.push(CountsRecord::new(key, value));
        }
        // Keep the set's table for the next interval unless it is far larger than needed
        // (a catch-up burst): a drained set keeps its capacity otherwise.
        let mut dirty = dirty;
        let used = dirty.len();
        dirty.clear();
        if dirty.capacity() > 4 * used.max(1024) {
            dirty.shrink_to(used);
        }
        self.dirty_buckets = dirty;
        for id in std::mem::take(&mut self.dirty_totals) {
            let slot = &mut self.tags[id as usize];
            slot.total_dirty = false;
            updates.push(CountsRecord {
                key: CountsKey::Total {
                    partition,
                    tag: slot.name.to_string(),
                },
                value: slot.total,
                spellings: slot.spellings.to_list(&slot.name),
            });
        }
        if std::mem::take(&mut self.watermark_dirty) {
            updates.push(CountsRecord::new(
                CountsKey::Watermark { partition },
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
        buckets + self.tags.iter().filter(|t| t.total.is_some()).count()
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

    fn spell(counter: &mut PartitionCounter, spelling: &str) {
        counter.record(
            NOON,
            &[PostTag {
                tag: spelling.to_lowercase(),
                spelling: spelling.into(),
            }],
        );
    }

    fn spellings_of(counter: &mut PartitionCounter, key: &str) -> Vec<(String, i64)> {
        counter
            .take_updates()
            .into_iter()
            .find(|r| r.key.encode() == key)
            .map(|r| r.spellings)
            .unwrap_or_default()
    }

    #[test]
    fn a_spelling_that_comes_after_the_first_eight_can_still_win() {
        let mut counter = PartitionCounter::new(0, BucketLayout::default());
        let as_x = |spelling: &str| {
            [PostTag {
                tag: "x".into(),
                spelling: spelling.into(),
            }]
        };
        let early = ["xA", "Xa", "XA", "xa", "xA_", "Xa_", "XA_", "xa_"];
        for s in early {
            counter.record(NOON, &as_x(s));
        }
        // A ninth spelling, many times: it replaces the newest least frequent one (`xa_`) and
        // overtakes the rest.
        for _ in 0..5 {
            counter.record(NOON, &as_x("LATE"));
        }
        let list = spellings_of(&mut counter, "0|a|x");
        assert_eq!(list.len(), MAX_SPELLINGS);
        assert_eq!(
            list[..7]
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            early[..7]
        );
        assert_eq!(
            list[7],
            ("LATE".to_string(), 6),
            "1 inherited + 5 of its own"
        );
        let best = list.iter().max_by_key(|(_, n)| *n).map(|(s, _)| s.as_str());
        assert_eq!(best, Some("LATE"));
    }

    #[test]
    fn spellings_keep_their_first_seen_order_through_a_restore() {
        let mut original = PartitionCounter::new(0, BucketLayout::default());
        for s in ["rust", "Rust", "RUST", "Rust", "rUST"] {
            spell(&mut original, s);
        }
        let emitted = original.take_updates();
        let total = emitted
            .iter()
            .find(|r| r.key.encode() == "0|a|rust")
            .expect("total");
        assert_eq!(
            total.spellings,
            [
                ("rust".to_string(), 1),
                ("Rust".to_string(), 2),
                ("RUST".to_string(), 1),
                ("rUST".to_string(), 1)
            ]
        );
        // Through the wire format and back: the same order, so the same future.
        let mut restored = PartitionCounter::new(0, BucketLayout::default());
        for record in emitted {
            let key = record.key.encode();
            let value = record.encode_value();
            restored.restore(
                CountsRecord::decode(key.as_bytes(), value.as_deref().map(str::as_bytes))
                    .expect("decodes"),
            );
        }
        for s in ["RuSt", "rusT", "RUst", "ruST", "NEW"] {
            spell(&mut original, s);
            spell(&mut restored, s);
        }
        assert_eq!(
            spellings_of(&mut original, "0|a|rust"),
            spellings_of(&mut restored, "0|a|rust")
        );
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
