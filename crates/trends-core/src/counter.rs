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
//! ~5× faster (`benches/count.rs`).
//!
//! **Why the state is bounded.** A live feed brings new tags for ever, and a spam run can bring
//! millions in an hour. So every bucket and the all-time window hold at most a configured
//! number of tags ([`Capacity`]), as [Space-Saving](crate::space_saving) tables: exact below
//! the capacity; above it, a count may be over by its `error`, at most `N / capacity` of that
//! bucket or window, and every tag counted more often than that is held. A tag evicted from a
//! bucket or from `all` gets a tombstone, so the counts topic stays bounded too, and a tag's
//! string is freed once no bucket and no `all` holds it (reference counts): memory is bounded by
//! the capacities, whatever the input. Evictions are counted ([`PartitionCounter::evictions`]).

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use hashbrown::HashTable;

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::space_saving::{Estimate, SpaceSaving};
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

/// One bucket: posts per tag id, for at most [`Capacity::bucket_tags`] tags. `u32` counts: one
/// partition's 10-second or 5-minute bucket never sees four billion posts.
type Bucket = SpaceSaving<TagId, u32, IdBuild>;

/// The all-time counts of at most [`Capacity::all_time_tags`] tags.
type AllTime = SpaceSaving<TagId, i64, IdBuild>;

/// How many tags a partition's counter holds at most: memory is bounded by these, not by the
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Tags per bucket, at either resolution.
    pub bucket_tags: usize,
    /// Tags in the all-time window.
    pub all_time_tags: usize,
}

impl Capacity {
    /// The aggregator's defaults (`aggregator.max_tags_per_bucket`,
    /// `aggregator.all_time_capacity`).
    pub const DEFAULT: Capacity = Capacity {
        bucket_tags: 20_000,
        all_time_tags: 50_000,
    };
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity::DEFAULT
    }
}

/// How many tags were evicted, since the counter was made (see [`PartitionCounter::evictions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evictions {
    /// From a bucket, at either resolution.
    pub bucket: u64,
    /// From the all-time window.
    pub all_time: u64,
}

/// How a tag was spelled since `all` admitted it, with counts, in first-seen order.
///
/// `Canonical`, the common case, means only ever as the normalized tag itself, and as often as
/// `all` counted the tag since admitting it (its count minus its error: every post `all`
/// counts passes through [`Spellings::count`]); so it needs no count of its own, no allocation,
/// and 8 bytes a tag. In a `Listed` entry, `None` stands for the normalized tag's own spelling.
#[derive(Debug, Default, Clone)]
enum Spellings {
    #[default]
    Canonical,
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps every tag's slot 24 bytes smaller; lists are rare"
    )]
    Listed(Box<Vec<(Option<Box<str>>, i64)>>),
}

impl Spellings {
    /// Counts one post spelled `spelling`; `admitted` is how many posts `all` counted for the
    /// tag since admitting it, this one included.
    fn count(&mut self, tag: &str, spelling: &str, admitted: i64) {
        let key = (spelling != tag).then_some(spelling);
        match self {
            Spellings::Canonical if key.is_none() => {}
            Spellings::Canonical => {
                let before = admitted - 1;
                let mut list = Vec::with_capacity(2);
                if before > 0 {
                    list.push((None, before));
                }
                list.push((key.map(Box::from), 1));
                *self = Spellings::Listed(Box::new(list));
            }
            Spellings::Listed(list) => {
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
        if list.iter().all(|(s, _)| s == tag) {
            return Spellings::Canonical;
        }
        let list: Vec<(Option<Box<str>>, i64)> = list
            .into_iter()
            .take(MAX_SPELLINGS)
            .map(|(s, n)| ((s != tag).then(|| s.into_boxed_str()), n))
            .collect();
        Spellings::Listed(Box::new(list))
    }

    /// The list as the counts topic carries it; `admitted` as in [`Spellings::count`].
    fn to_list(&self, tag: &str, admitted: i64) -> Vec<(String, i64)> {
        let spelled = |s: &Option<Box<str>>| s.as_deref().unwrap_or(tag).to_string();
        match self {
            Spellings::Canonical if admitted > 0 => vec![(tag.to_string(), admitted)],
            Spellings::Canonical => Vec::new(),
            Spellings::Listed(list) => list.iter().map(|(s, n)| (spelled(s), *n)).collect(),
        }
    }
}

/// A tag held by this partition: by a bucket or by `all`.
#[derive(Debug)]
struct TagSlot {
    /// Empty while the slot is free.
    name: Box<str>,
    /// How this partition spelled the tag, while `all` holds it.
    spellings: Spellings,
    /// How many buckets hold the tag, plus one if `all` does. At zero the slot is freed at the
    /// end of the next [`PartitionCounter::take_updates`] (after its tombstones are written).
    refs: u32,
    /// The all-time count changed since the last emission.
    total_dirty: bool,
}

/// Per-input-partition windowed counts.
#[derive(Debug)]
pub struct PartitionCounter {
    partition: i32,
    layout: BucketLayout,
    capacity: Capacity,
    watermark: Option<EpochMillis>,
    /// Posts older than `watermark - allowed_lateness` count in `all` only.
    allowed_lateness_ms: i64,
    /// Coarse buckets kept, when more than the longest window needs (the trend track keeps
    /// two days: its baseline reads yesterday).
    coarse_retained: Option<i64>,
    /// Whether posts count in `all` (the trend track has no all-time counts).
    counts_all_time: bool,
    /// Tags held, by id; free slots are listed in `free`.
    tags: Vec<TagSlot>,
    free: Vec<TagId>,
    /// Ids whose `refs` fell to zero since the last emission.
    unreferenced: Vec<TagId>,
    /// Tag string → id, hashed by `hasher`; holds ids only (the strings live in `tags`).
    index: HashTable<TagId>,
    /// Seeded per counter (foldhash, as `tags.rs` uses): tags are chosen by posters.
    hasher: foldhash::fast::RandomState,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    all: AllTime,
    /// Evictions from buckets that have expired since (their tables are gone).
    expired_evictions: u64,
    /// (resolution, bucket start, tag) of bucket counts changed since the last emission.
    dirty_buckets: HashSet<(Resolution, EpochMillis, TagId), IdBuild>,
    /// Ids whose all-time count changed since the last emission (`total_dirty` set).
    dirty_totals: Vec<TagId>,
    watermark_dirty: bool,
    /// `all`'s floor as last emitted (with the watermark record).
    emitted_floor: i64,
}

/// The parts of a [`PartitionCounter`] that intern tags, borrowed apart from its buckets so
/// that [`PartitionCounter::record`] can hold both at once.
struct Interner<'c> {
    slots: &'c mut Vec<TagSlot>,
    free: &'c mut Vec<TagId>,
    index: &'c mut HashTable<TagId>,
    hasher: &'c foldhash::fast::RandomState,
}

impl Interner<'_> {
    /// The id of `tag`, added (held by nothing yet) if new.
    fn intern(&mut self, tag: &str) -> TagId {
        let hash = self.hasher.hash_one(tag);
        let slots = &*self.slots;
        if let Some(&id) = self
            .index
            .find(hash, |&id| &*slots[id as usize].name == tag)
        {
            return id;
        }
        let slot = TagSlot {
            name: tag.into(),
            spellings: Spellings::Canonical,
            refs: 0,
            total_dirty: false,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                TagId::try_from(self.slots.len() - 1).unwrap_or(TagId::MAX)
            }
        };
        let (slots, hasher) = (&*self.slots, self.hasher);
        self.index
            .insert_unique(hash, id, |&id| hasher.hash_one(&*slots[id as usize].name));
        id
    }
}

/// One holder fewer for `id`; listed in `unreferenced` when none is left.
fn release(slots: &mut [TagSlot], unreferenced: &mut Vec<TagId>, id: TagId) {
    let slot = &mut slots[id as usize];
    slot.refs = slot.refs.saturating_sub(1);
    if slot.refs == 0 {
        unreferenced.push(id);
    }
}

/// Marks `id`'s all-time count as changed since the last emission.
fn mark_total_dirty(slots: &mut [TagSlot], dirty_totals: &mut Vec<TagId>, id: TagId) {
    let slot = &mut slots[id as usize];
    if !slot.total_dirty {
        slot.total_dirty = true;
        dirty_totals.push(id);
    }
}

/// [`PartitionCounter::oldest_retained`], for code that borrows the counter's parts apart.
fn oldest_retained(
    layout: &BucketLayout,
    coarse_retained: Option<i64>,
    resolution: Resolution,
    watermark: EpochMillis,
) -> EpochMillis {
    match (resolution, coarse_retained) {
        (Resolution::Coarse, Some(buckets)) => {
            layout.bucket_start(resolution, watermark) - (buckets - 1) * layout.coarse_ms
        }
        _ => layout.oldest_retained(resolution, watermark),
    }
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
    /// A counter with the default [`Capacity`].
    pub fn new(partition: i32, layout: BucketLayout) -> Self {
        PartitionCounter::with_capacity(partition, layout, Capacity::DEFAULT)
    }

    pub fn with_capacity(partition: i32, layout: BucketLayout, capacity: Capacity) -> Self {
        PartitionCounter {
            partition,
            layout,
            capacity,
            watermark: None,
            allowed_lateness_ms: i64::MAX,
            coarse_retained: None,
            counts_all_time: true,
            tags: Vec::new(),
            free: Vec::new(),
            unreferenced: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            all: AllTime::new(capacity.all_time_tags),
            expired_evictions: 0,
            dirty_buckets: HashSet::default(),
            dirty_totals: Vec::new(),
            watermark_dirty: false,
            emitted_floor: 0,
        }
    }

    /// Sets the allowed lateness: a post whose event time is more than this before the
    /// partition's watermark is counted in `all` only. Unlimited by default (the longest window
    /// still bounds what the buckets keep).
    pub fn with_allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.allowed_lateness_ms = lateness_ms.max(0);
        self
    }

    /// Keeps `buckets` coarse buckets (at least the longest window's) instead of the longest
    /// window's: the trend track reads two days back.
    pub fn with_coarse_retention(mut self, buckets: i64) -> Self {
        let window = self.layout.retained_buckets(Resolution::Coarse);
        self.coarse_retained = Some(buckets.max(window));
        self
    }

    /// Counts in buckets only: nothing in `all`, so no all-time records.
    pub fn without_all_time(mut self) -> Self {
        self.counts_all_time = false;
        self
    }

    /// The oldest bucket start kept at this resolution and watermark.
    fn oldest_retained(&self, resolution: Resolution, watermark: EpochMillis) -> EpochMillis {
        oldest_retained(&self.layout, self.coarse_retained, resolution, watermark)
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn watermark(&self) -> Option<EpochMillis> {
        self.watermark
    }

    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// How many tags were evicted from buckets and from `all`, since the counter was made.
    pub fn evictions(&self) -> Evictions {
        let live: u64 = self
            .fine
            .values()
            .chain(self.coarse.values())
            .map(Bucket::evictions)
            .sum();
        Evictions {
            bucket: self.expired_evictions + live,
            all_time: self.all.evictions(),
        }
    }

    /// The most posts a tag not held by `all` may have had on this partition (0 while `all`
    /// has evicted nothing).
    pub fn all_time_floor(&self) -> i64 {
        self.all.floor()
    }

    /// The id of `tag`, added (held by nothing yet) if new.
    fn intern(&mut self, tag: &str) -> TagId {
        Interner {
            slots: &mut self.tags,
            free: &mut self.free,
            index: &mut self.index,
            hasher: &self.hasher,
        }
        .intern(tag)
    }

    /// The id of `tag` if it is held.
    fn lookup(&self, tag: &str) -> Option<TagId> {
        let hash = self.hasher.hash_one(tag);
        self.index
            .find(hash, |&id| &*self.tags[id as usize].name == tag)
            .copied()
    }

    fn name(&self, id: TagId) -> String {
        self.tags[id as usize].name.to_string()
    }

    fn hold(&mut self, id: TagId) {
        self.tags[id as usize].refs += 1;
    }

    fn release(&mut self, id: TagId) {
        release(&mut self.tags, &mut self.unreferenced, id);
    }

    /// Frees the slots nothing holds any more: their tombstones were written.
    fn free_unreferenced(&mut self) {
        for id in std::mem::take(&mut self.unreferenced) {
            let slot = &self.tags[id as usize];
            if slot.refs != 0 || slot.name.is_empty() || slot.total_dirty {
                continue;
            }
            let hash = self.hasher.hash_one(&*slot.name);
            if let Ok(entry) = self.index.find_entry(hash, |&other| other == id) {
                entry.remove();
            }
            let slot = &mut self.tags[id as usize];
            slot.name = Box::from("");
            slot.spellings = Spellings::Canonical;
            self.free.push(id);
        }
    }

    /// Counts one post with the given (normalized, distinct) tags at `event_time`.
    ///
    /// The post's fine and coarse buckets are found once (two divisions and a `BTreeMap`
    /// lookup each), not once per tag; the tags are then counted one after the other, each
    /// in its buckets and then in `all`, in the very order (and so with the very ids,
    /// evictions and emitted records) of a per-tag lookup.
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
        if !tags.is_empty() {
            self.count_tags(event_time, watermark, too_late, tags, &mut outcome);
        }
        if self.all.floor() != self.emitted_floor {
            // The floor travels with the watermark record.
            self.watermark_dirty = true;
        }
        outcome
    }

    /// [`PartitionCounter::record`]'s counting, for a post with at least one tag.
    fn count_tags(
        &mut self,
        event_time: EpochMillis,
        watermark: EpochMillis,
        too_late: bool,
        tags: &[PostTag],
        outcome: &mut Recorded,
    ) {
        let PartitionCounter {
            layout,
            capacity,
            coarse_retained,
            counts_all_time,
            tags: slots,
            free,
            unreferenced,
            index,
            hasher,
            fine,
            coarse,
            all,
            dirty_buckets,
            dirty_totals,
            ..
        } = self;
        let mut interner = Interner {
            slots,
            free,
            index,
            hasher,
        };
        // The post's bucket at each resolution, unless it is outside every window of that
        // resolution already.
        let mut buckets: [Option<(Resolution, EpochMillis, &mut Bucket)>; 2] = [None, None];
        if !too_late {
            for (slot, (resolution, map)) in buckets
                .iter_mut()
                .zip([(Resolution::Fine, fine), (Resolution::Coarse, coarse)])
            {
                let start = layout.bucket_start(resolution, event_time);
                if start < oldest_retained(layout, *coarse_retained, resolution, watermark) {
                    // Only a post that is outside the 24 h window too is late; one older than
                    // 1 h still counts in 24 h.
                    if resolution == Resolution::Coarse {
                        *outcome = Recorded::Late;
                    }
                    continue;
                }
                let capacity = capacity.bucket_tags;
                let bucket = map.entry(start).or_insert_with(|| Bucket::new(capacity));
                *slot = Some((resolution, start, bucket));
            }
        }
        let mut evicted: Vec<TagId> = Vec::new();
        for t in tags {
            let id = interner.intern(&t.tag);
            let slots = &mut *interner.slots;
            for (resolution, start, bucket) in buckets.iter_mut().flatten() {
                let added = bucket.add(id, 1, |old, _| evicted.push(old));
                if added.admitted {
                    slots[id as usize].refs += 1;
                }
                dirty_buckets.insert((*resolution, *start, id));
                for old in evicted.drain(..) {
                    // Its key is tombstoned at the next emission.
                    dirty_buckets.insert((*resolution, *start, old));
                    release(slots, unreferenced, old);
                }
            }
            if !*counts_all_time {
                continue;
            }
            let added = all.add(id, 1, |old, _| evicted.push(old));
            if added.admitted {
                slots[id as usize].refs += 1;
            }
            for old in evicted.drain(..) {
                slots[old as usize].spellings = Spellings::Canonical;
                mark_total_dirty(slots, dirty_totals, old);
                release(slots, unreferenced, old);
            }
            let admitted = added.estimate.count - added.estimate.error;
            slots[id as usize]
                .spellings
                .count(&t.tag, &t.spelling, admitted);
            mark_total_dirty(slots, dirty_totals, id);
        }
    }

    /// Applies a record read back from the counts topic (absolute values; `None` deletes).
    /// Records of other partitions are ignored. Nothing restored is marked as changed.
    pub fn restore(&mut self, record: CountsRecord) {
        if record.key.partition() != self.partition {
            return;
        }
        let estimate = |count: i64| Estimate {
            count,
            error: record.error.clamp(0, count.max(0)),
        };
        match (record.key, record.value) {
            // The trend track's records: not this counter's (see `trend_track`).
            (CountsKey::Language { .. } | CountsKey::Checkpoint { .. }, _) => {}
            (CountsKey::Watermark { .. }, value) => {
                self.watermark = value;
                self.all.raise_floor(record.error.max(0));
                self.emitted_floor = self.all.floor();
            }
            (CountsKey::Total { tag, .. }, None) => {
                if let Some(id) = self.lookup(&tag)
                    && self.all.remove(&id).is_some()
                {
                    self.tags[id as usize].spellings = Spellings::Canonical;
                    self.release(id);
                }
            }
            (CountsKey::Total { tag, .. }, Some(count)) => {
                let id = self.intern(&tag);
                if self.all.set(id, estimate(count)) {
                    self.hold(id);
                }
                self.tags[id as usize].spellings = Spellings::from_list(&tag, record.spellings);
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
                    let Estimate { count, error } = estimate(count);
                    let narrow = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
                    let capacity = self.capacity.bucket_tags;
                    let new = self
                        .buckets_mut(resolution)
                        .entry(start)
                        .or_insert_with(|| Bucket::new(capacity))
                        .set(
                            id,
                            Estimate {
                                count: narrow(count),
                                error: narrow(error),
                            },
                        );
                    if new {
                        self.hold(id);
                    }
                }
                None => {
                    let Some(id) = self.lookup(&tag) else {
                        return;
                    };
                    let buckets = self.buckets_mut(resolution);
                    let Some(bucket) = buckets.get_mut(&start) else {
                        return;
                    };
                    let removed = bucket.remove(&id).is_some();
                    if bucket.is_empty() {
                        buckets.remove(&start);
                    }
                    if removed {
                        self.release(id);
                    }
                }
            },
        }
    }

    fn buckets_mut(&mut self, resolution: Resolution) -> &mut BTreeMap<EpochMillis, Bucket> {
        match resolution {
            Resolution::Fine => &mut self.fine,
            Resolution::Coarse => &mut self.coarse,
        }
    }

    /// Expires old buckets and returns every change since the last call: new absolute counts
    /// (with their error), tombstones for expired buckets and evicted tags, and the watermark
    /// (with `all`'s floor) if either moved. Then frees the tags nothing holds any more.
    pub fn take_updates(&mut self) -> Vec<CountsRecord> {
        let mut updates =
            Vec::with_capacity(self.dirty_buckets.len() + self.dirty_totals.len() + 1);
        let partition = self.partition;
        if let Some(watermark) = self.watermark {
            for resolution in Resolution::BOTH {
                let oldest = self.oldest_retained(resolution, watermark);
                let buckets = self.buckets_mut(resolution);
                let kept = buckets.split_off(&oldest);
                let expired = std::mem::replace(buckets, kept);
                for (start, bucket) in expired {
                    self.expired_evictions += bucket.evictions();
                    for (id, _) in bucket.iter() {
                        self.dirty_buckets.remove(&(resolution, start, id));
                        let key = CountsKey::Bucket {
                            partition,
                            resolution,
                            start,
                            tag: self.name(id),
                        };
                        updates.push(CountsRecord::new(key, None));
                        self.release(id);
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
            let estimate = buckets.get(&start).and_then(|b| b.get(&id));
            let key = CountsKey::Bucket {
                partition,
                resolution,
                start,
                tag: self.name(id),
            };
            updates.push(
                CountsRecord::new(key, estimate.map(|e| i64::from(e.count)))
                    .with_error(estimate.map_or(0, |e| i64::from(e.error))),
            );
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
            let estimate = self.all.get(&id);
            let slot = &mut self.tags[id as usize];
            slot.total_dirty = false;
            updates.push(CountsRecord {
                key: CountsKey::Total {
                    partition,
                    tag: slot.name.to_string(),
                },
                value: estimate.map(|e| e.count),
                spellings: match estimate {
                    Some(e) => slot.spellings.to_list(&slot.name, e.count - e.error),
                    None => Vec::new(),
                },
                error: estimate.map_or(0, |e| e.error),
            });
        }
        if std::mem::take(&mut self.watermark_dirty) {
            self.emitted_floor = self.all.floor();
            updates.push(
                CountsRecord::new(CountsKey::Watermark { partition }, self.watermark)
                    .with_error(self.emitted_floor),
            );
        }
        self.free_unreferenced();
        updates
    }

    /// Number of (bucket, tag) and (all, tag) entries held, for memory metrics.
    pub fn entries(&self) -> usize {
        let buckets: usize = self
            .fine
            .values()
            .chain(self.coarse.values())
            .map(Bucket::len)
            .sum();
        buckets + self.all.len()
    }

    /// Number of distinct tags held (by a bucket or by `all`), for memory metrics.
    pub fn tags_held(&self) -> usize {
        self.tags.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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

    fn small(bucket_tags: usize, all_time_tags: usize) -> PartitionCounter {
        PartitionCounter::with_capacity(
            0,
            BucketLayout::default(),
            Capacity {
                bucket_tags,
                all_time_tags,
            },
        )
    }

    /// The state the counts topic holds after applying `updates` in order (compaction).
    fn apply(topic: &mut HashMap<String, CountsRecord>, updates: Vec<CountsRecord>) {
        for record in updates {
            let key = record.key.encode();
            if record.value.is_some() {
                topic.insert(key, record);
            } else {
                topic.remove(&key);
            }
        }
    }

    #[test]
    fn below_capacity_every_count_is_exact() {
        let mut counter = small(100, 100);
        let mut truth: HashMap<String, i64> = HashMap::new();
        for i in 0..2_000u64 {
            let tag = format!("t{}", (i * 7_919) % 100);
            *truth.entry(tag.clone()).or_default() += 1;
            counter.record(NOON + i as i64, &tags(&[&tag]));
        }
        let mut topic = HashMap::new();
        apply(&mut topic, counter.take_updates());
        for (tag, n) in &truth {
            let total = &topic[&format!("0|a|{tag}")];
            assert_eq!((total.value, total.error), (Some(*n), 0), "{tag}");
        }
        assert_eq!(counter.evictions(), Evictions::default());
        assert_eq!(topic["0|w"].error, 0, "no floor while nothing was evicted");
    }

    #[test]
    fn a_flood_of_one_off_tags_stays_within_capacity_and_the_error_bound() {
        // Two heavy tags in every 10th post, 20,000 one-off tags, capacities of 500.
        let capacity = 500;
        let mut counter = small(capacity, capacity);
        let mut truth: HashMap<String, i64> = HashMap::new();
        let mut topic = HashMap::new();
        let mut posts = 0i64;
        for i in 0..20_000i64 {
            let mut list = vec![format!("once{i}")];
            if i % 10 == 0 {
                list.push("heavy".into());
                list.push("heavier".into());
            }
            if i % 5 == 0 {
                list.push("heavier".into());
            }
            list.dedup();
            let list: Vec<&str> = list.iter().map(String::as_str).collect();
            for t in &list {
                *truth.entry(t.to_string()).or_default() += 1;
            }
            posts += list.len() as i64;
            // All within one fine bucket: 20,000 tags into a bucket of 500.
            counter.record(NOON + i % 10_000, &tags(&list));
            if i % 1_000 == 0 {
                apply(&mut topic, counter.take_updates());
            }
        }
        apply(&mut topic, counter.take_updates());
        assert!(
            counter.tags_held() <= 2 * capacity,
            "{}",
            counter.tags_held()
        );
        assert!(counter.entries() <= 3 * capacity);
        let evictions = counter.evictions();
        assert!(evictions.bucket > 0 && evictions.all_time > 0);
        // The topic holds no more than the counter: evicted keys were tombstoned.
        assert!(topic.len() <= 3 * capacity + 1, "{}", topic.len());
        let bound = posts / capacity as i64;
        let floor = topic["0|w"].error;
        assert!(floor > 0 && floor <= bound);
        for heavy in ["heavy", "heavier"] {
            let n = truth[heavy];
            let total = &topic[&format!("0|a|{heavy}")];
            let count = total.value.expect("held");
            assert!(
                count - total.error <= n && n <= count,
                "{heavy}: {total:?} vs {n}"
            );
            assert!(total.error <= bound);
            let bucket = &topic[&format!("0|f|{NOON}|{heavy}")];
            let count = bucket.value.expect("held");
            assert!(count - bucket.error <= n && n <= count);
        }
        // Every all-time key in the topic bounds its tag's true count; a tag without one had at
        // most the floor.
        for (tag, n) in &truth {
            match topic.get(&format!("0|a|{tag}")) {
                Some(r) => {
                    let count = r.value.expect("live");
                    assert!(count - r.error <= *n && *n <= count, "{tag}");
                }
                None => assert!(*n <= floor, "{tag}: {n} > floor {floor}"),
            }
        }
    }

    #[test]
    fn a_restored_counter_continues_the_estimates_and_the_floor() {
        let mut original = small(50, 50);
        let mut topic = HashMap::new();
        for i in 0..500i64 {
            original.record(NOON, &tags(&[&format!("x{i}"), "keep"]));
        }
        apply(&mut topic, original.take_updates());
        let mut restored = small(50, 50);
        for record in topic.values() {
            restored.restore(record.clone());
        }
        assert_eq!(restored.all_time_floor(), original.all_time_floor());
        assert!(restored.take_updates().is_empty());
        for i in 500..600i64 {
            let post = [format!("x{i}"), "keep".to_string()];
            let post: Vec<&str> = post.iter().map(String::as_str).collect();
            original.record(NOON, &tags(&post));
            restored.record(NOON, &tags(&post));
        }
        let (a, b) = (original.take_updates(), restored.take_updates());
        let keep = |u: &[CountsRecord]| {
            u.iter()
                .find(|r| r.key.encode() == "0|a|keep")
                .map(|r| (r.value, r.error))
        };
        assert_eq!(keep(&a), Some((Some(600), 0)));
        assert_eq!(keep(&a), keep(&b));
        assert_eq!(original.tags_held(), restored.tags_held());
    }

    #[test]
    fn freed_tags_are_forgotten_and_their_slots_reused() {
        let mut counter = small(1_000, 10);
        for day in 0..5i64 {
            for i in 0..100 {
                counter.record(
                    NOON + day * 86_400_000 * 2,
                    &tags(&[&format!("d{day}t{i}")]),
                );
            }
            counter.take_updates();
        }
        // Two days between batches: the older batches' buckets expired and `all` holds 10.
        assert!(counter.tags_held() <= 100 + 10, "{}", counter.tags_held());
        assert!(
            counter.tags.len() <= 2 * 110,
            "slots are reused: {}",
            counter.tags.len()
        );
    }
}
