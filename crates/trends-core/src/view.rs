//! The API's read model: partial counts of every input partition, summed and ranked.
//!
//! [`TrendsView`] consumes counts-topic records in any order of partitions (within a partition,
//! in offset order). Each record carries an absolute per-partition value, so the view keeps the
//! last value of every (partition, key) and applies the difference. [`TrendsView::frame`] takes
//! a cheap, immutable copy of the current state and [`Ranker::build`] ranks it into a
//! [`Snapshot`]: every window ranked by count (descending, ties by tag ascending), ready to serve.
//!
//! Each tag also has a **display form**: its most frequent original spelling over all time
//! (summed over partitions; ties go to the spelling that sorts first, by code point, so the
//! answer does not depend on the order partitions were read in), e.g. `RustLang` for the
//! counted form `rustlang`.
//!
//! **Incremental, so a snapshot costs little** (issue 14). A record changes a handful of
//! numbers and nothing is re-summed:
//! - every tag is interned once: one string, a `u32` id; everything else is keyed by id, and
//!   an id whose last record is gone is freed and reused;
//! - every tag has its count in every window, kept up to date by each record's change (new
//!   absolute value − previous) for the windows whose range holds its bucket; when the
//!   watermark moves, the buckets leaving a window are subtracted from it and those entering
//!   added (each bucket leaves each window once);
//! - names and per-tag counts live in chunks of [`CHUNK`] ids behind [`Arc`]s, copied on
//!   write: a frame clones a few hundred pointers, and the view copies a chunk only when it
//!   changes one a snapshot still holds. Bucket sums (for the series) are shared the same way.
//!
//! **Ranking without comparing strings.** The [`Ranker`] keeps every live id sorted by name
//! across builds, merging in the ids added since the last build (binary search each, then one
//! pass), so every tag has a *name rank*. A window's ranking is then a sort of integers, count
//! descending and name rank ascending, packed into one `u64` and radix-sorted: about 20 ms
//! for 1M tags in 3 windows. It runs off the consumer's loop (the follower builds on a blocking
//! thread while it keeps reading). A snapshot holds each window's full ranking as name ranks,
//! so a prefix query finds its tags as one range of the name order (binary search) and each
//! result's `rank` by a binary search of the ranking by (count, name rank): no request sorts.
//!
//! **Estimates.** Above its capacity the aggregator's counts may be over-estimates (see
//! [`crate::counts_record`]): each bucket and all-time record carries an `error`, the
//! watermark record a partition's *all-time floor*. The view keeps errors only where they are
//! non-zero (most counts are exact, so exact data costs nothing more), and a snapshot gives
//! every count that is not exact its [`Bounds`]:
//! - a finite window: `lower` = Σ (value − error) over the partitions' buckets in the window,
//!   `upper` = the count (a tag a full bucket did not track at all is not covered: the bounds
//!   hold for the tracked tags, within their stated error);
//! - `all`: the count sums the partitions that hold the tag's all-time key; `lower` = Σ (value
//!   − error) over those, `upper` = the count + the floors of the partitions that do not
//!   (partitions from 64 on are taken as not holding it: a looser, still valid, upper bound).
//!
//! **Counts records are input like any other.** The view applies only what
//! [`CountsRecord::decode`] accepted (times within [`crate::EVENT_TIME_RANGE`], counts within
//! [`crate::MAX_COUNT`]), and its arithmetic saturates instead of wrapping: a hostile record
//! can make a number wrong, never a loop endless or a reader panic.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::window::{BucketLayout, Resolution, Window};

/// A map hashed with foldhash: several times faster than SipHash on short keys, and still
/// seeded per process, so keys chosen to collide (tags come from the public) cannot be
/// precomputed.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Windows, in [`Window::ALL`] order; `all` is the last.
const WINDOWS: usize = Window::ALL.len();
const ALL: usize = WINDOWS - 1;

/// Ids per copy-on-write chunk.
pub const CHUNK: usize = 128;

/// The most entries [`Snapshot::top`] keeps per window (the API's largest `limit`).
pub const MAX_TOP: usize = 100;

/// Position of a window in [`Window::ALL`].
fn window_index(window: Window) -> usize {
    match window {
        Window::M1 => 0,
        Window::M5 => 1,
        Window::M15 => 2,
        Window::H1 => 3,
        Window::H24 => 4,
        Window::All => 5,
    }
}

/// A vector of `T` in chunks of [`CHUNK`] behind [`Arc`]s: cloning it clones pointers, and
/// writing copies only the chunk written, and only if a clone still shares it.
#[derive(Debug, Clone)]
struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new() }
    }
}

impl<T: Clone + Default> Chunked<T> {
    fn get(&self, id: u32) -> Option<&T> {
        let i = id as usize;
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    /// The slot of `id`, growing the vector (with defaults) to hold it.
    fn get_mut(&mut self, id: u32) -> &mut T {
        let i = id as usize;
        while self.chunks.len() <= i / CHUNK {
            self.chunks.push(Arc::new(vec![T::default(); CHUNK]));
        }
        &mut Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK]
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

/// What the view knows of one tag, shared with snapshots.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// Counts in [`Window::ALL`] order.
    counts: [i64; WINDOWS],
    /// Bit `p`: partition `p` (below 64) holds the tag's all-time key.
    all_keys: u64,
    /// The most frequent spelling, when it is not the tag itself (a thin pointer: most tags
    /// have none).
    display: Option<Arc<Box<str>>>,
}

/// The key of a (partition, tag) pair in the partial maps.
fn part_key(partition: i32, id: u32) -> u64 {
    (u64::from(partition.unsigned_abs()) << 32) | u64::from(id)
}

/// One bucket: every partition's value of every tag, and their sums (shared with snapshots,
/// for the series).
#[derive(Debug, Clone, Default)]
struct Bucket {
    parts: Map<u64, i64>,
    /// Non-zero errors of `parts`.
    part_errors: Map<u64, i64>,
    sums: Arc<Map<u32, i64>>,
    /// Non-zero sums of `part_errors` per tag.
    error_sums: Map<u32, i64>,
}

/// One partition's all-time value of one tag.
#[derive(Debug, Clone)]
struct AllPart {
    value: i64,
    /// How often the tag was spelled as its counting form (stored apart: no string).
    plain: i64,
    /// The other spellings (`None` for most tags); its error is in `all_errors`.
    spellings: Option<Box<Spellings>>,
}

type Spellings = Box<[(Box<str>, i64)]>;

/// A count that is an estimate: the true count is within `lower..=upper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub lower: i64,
    pub upper: i64,
}

/// One ranked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedTag {
    pub tag: Arc<str>,
    pub count: i64,
    /// The most frequent original spelling.
    pub display: Arc<str>,
    /// `Some` when `count` is an estimate.
    pub bounds: Option<Bounds>,
}

/// Everything known about one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSummary {
    /// Counts in [`Window::ALL`] order.
    pub counts: [i64; WINDOWS],
    pub display: Arc<str>,
}

/// A tag's count in every bucket of a window, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The bucket size.
    pub bucket_ms: i64,
    /// `(bucket start, count)` for every bucket of the window, zeros included, ending with the
    /// bucket that holds the watermark. Empty before any data.
    pub points: Vec<(EpochMillis, i64)>,
}

/// Summed partial counts, kept incrementally.
#[derive(Debug)]
pub struct TrendsView {
    layout: BucketLayout,
    /// Tag names by id; `None` for a free id.
    names: Chunked<Option<Arc<str>>>,
    entries: Chunked<Entry>,
    /// Name → id, hashed by `hasher`; holds ids only (the names live in `names`).
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Per id: how many partial values (bucket or all-time) hold it. At 0 the id is freed.
    refs: Vec<u32>,
    free: Vec<u32>,
    /// Ids named or freed since the last [`TrendsView::frame`] (for the ranker's name order).
    added: Vec<u32>,
    removed: Vec<u32>,
    /// Too many changes were listed: the next ranker build sorts all names afresh.
    renamed_all: bool,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    all: Map<u64, AllPart>,
    /// The non-zero errors of `all`.
    all_errors: Map<u64, i64>,
    /// Per tag with spellings other than its counting form: their counts, summed over
    /// partitions (a tag only ever spelled as it is counted has no entry).
    spellings: Map<u32, Vec<(Box<str>, i64)>>,
    /// The highest partition seen (to find a tag's all-time keys beyond the 64 of its mask).
    max_partition: i32,
    /// Per tag, the non-zero error sums per window.
    errors: Map<u32, [i64; WINDOWS]>,
    /// Each partition's all-time floor (non-zero only).
    floors: BTreeMap<i32, i64>,
    watermarks: HashMap<i32, EpochMillis>,
    watermark: Option<EpochMillis>,
    /// The bucket range each finite window sums now.
    ranges: [Option<(EpochMillis, EpochMillis)>; ALL],
}

/// An immutable copy of a view's state (cheap: shared chunks), for [`Ranker::build`].
#[derive(Debug, Clone, Default)]
pub struct Frame {
    watermark: Option<EpochMillis>,
    layout: BucketLayout,
    names: Chunked<Option<Arc<str>>>,
    entries: Chunked<Entry>,
    errors: Arc<Map<u32, [i64; WINDOWS]>>,
    floors: Arc<[(i32, i64)]>,
    added: Vec<u32>,
    removed: Vec<u32>,
    renamed_all: bool,
    fine: BTreeMap<EpochMillis, Arc<Map<u32, i64>>>,
    coarse: BTreeMap<EpochMillis, Arc<Map<u32, i64>>>,
}

/// Ranks frames into snapshots; keeps the name order of all ids from one build to the next.
#[derive(Debug, Default)]
pub struct Ranker {
    /// Live ids sorted by name; `None` before the first build.
    order: Option<Arc<Vec<u32>>>,
    /// Each id's position in `order` (`u32::MAX`: none), reused from build to build.
    name_rank: Vec<u32>,
    /// How many tags each window ranked last time (to size the next build's lists).
    last_lens: [usize; WINDOWS],
}

/// An immutable, ranked picture of every window at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The latest event time seen on any partition; `None` before any data.
    pub watermark: Option<EpochMillis>,
    frame: Frame,
    /// Live ids sorted by name: position = name rank.
    order: Arc<Vec<u32>>,
    /// Per window: the name ranks of every tag with a positive count, best first.
    ranked: [Vec<u32>; WINDOWS],
    /// Per window: the first [`MAX_TOP`] entries of `ranked`.
    top: [Vec<RankedTag>; WINDOWS],
}

/// Adds `delta` to `map[key]`, removing the entry at zero.
fn add_to<K: std::hash::Hash + Eq>(map: &mut Map<K, i64>, key: K, delta: i64) {
    use std::collections::hash_map::Entry as Slot;
    if delta == 0 {
        return;
    }
    match map.entry(key) {
        Slot::Occupied(mut slot) => {
            let sum = slot.get().saturating_add(delta);
            if sum == 0 {
                slot.remove();
            } else {
                *slot.get_mut() = sum;
            }
        }
        Slot::Vacant(slot) => {
            slot.insert(delta);
        }
    }
}

/// Adds `delta` to a tag's error sum of window `w`, dropping the tag when all are zero.
fn add_error(errors: &mut Map<u32, [i64; WINDOWS]>, id: u32, w: usize, delta: i64) {
    if delta == 0 {
        return;
    }
    let slot = errors.entry(id).or_insert([0; WINDOWS]);
    slot[w] = slot[w].saturating_add(delta);
    if slot.iter().all(|&e| e == 0) {
        errors.remove(&id);
    }
}

/// Adds (`sign` 1) or subtracts (−1) a bucket's sums to or from window `w`.
fn shift_window(
    bucket: &Bucket,
    w: usize,
    sign: i64,
    entries: &mut Chunked<Entry>,
    errors: &mut Map<u32, [i64; WINDOWS]>,
) {
    for (&id, &sum) in bucket.sums.iter() {
        let count = &mut entries.get_mut(id).counts[w];
        *count = count.saturating_add(sign.saturating_mul(sum));
    }
    for (&id, &error) in &bucket.error_sums {
        add_error(errors, id, w, sign.saturating_mul(error));
    }
}

impl TrendsView {
    pub fn new(layout: BucketLayout) -> Self {
        TrendsView {
            layout,
            names: Chunked::default(),
            entries: Chunked::default(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            refs: Vec::new(),
            free: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            renamed_all: false,
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            all: Map::default(),
            all_errors: Map::default(),
            spellings: Map::default(),
            max_partition: 0,
            errors: Map::default(),
            floors: BTreeMap::new(),
            watermarks: HashMap::new(),
            watermark: None,
            ranges: [None; ALL],
        }
    }

    /// The latest event time over all partitions.
    pub fn watermark(&self) -> Option<EpochMillis> {
        self.watermark
    }

    /// How many tags the view holds (ids in use).
    pub fn tags(&self) -> usize {
        self.refs.len() - self.free.len()
    }

    fn lookup(&self, tag: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(tag);
        let names = &self.names;
        self.index
            .find(hash, |&id| {
                names.get(id).and_then(|n| n.as_deref()) == Some(tag)
            })
            .copied()
    }

    /// The id of `tag`, named (held by nothing yet) if new.
    fn intern(&mut self, tag: &str) -> u32 {
        if let Some(id) = self.lookup(tag) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.refs.push(0);
                u32::try_from(self.refs.len() - 1).unwrap_or(u32::MAX)
            }
        };
        *self.names.get_mut(id) = Some(Arc::from(tag));
        let hash = self.hasher.hash_one(tag);
        let (names, hasher) = (&self.names, &self.hasher);
        self.index.insert_unique(hash, id, |&i| {
            hasher.hash_one(names.get(i).and_then(|n| n.as_deref()).unwrap_or(""))
        });
        self.note(id, true);
        id
    }

    /// Lists an id named (`added`) or freed for the ranker; past as many changes as ids, asks
    /// it to sort all names afresh instead (bounded memory).
    fn note(&mut self, id: u32, added: bool) {
        if self.renamed_all {
            return;
        }
        if added {
            self.added.push(id);
        } else {
            self.removed.push(id);
        }
        if self.added.len() + self.removed.len() > self.refs.len() + 1024 {
            self.renamed_all = true;
            self.added = Vec::new();
            self.removed = Vec::new();
        }
    }

    /// One partial value fewer holds `id`; the last one frees it.
    fn unref(&mut self, id: u32) {
        let Some(refs) = self.refs.get_mut(id as usize) else {
            return;
        };
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return;
        }
        if let Some(name) = self.names.get_mut(id).take() {
            let hash = self.hasher.hash_one(&*name);
            if let Ok(found) = self.index.find_entry(hash, |&i| i == id) {
                found.remove();
            }
        }
        let clean = self
            .entries
            .get(id)
            .is_none_or(|e| e.counts == [0; WINDOWS] && e.all_keys == 0 && e.display.is_none());
        if !clean {
            *self.entries.get_mut(id) = Entry::default();
        }
        self.errors.remove(&id);
        self.spellings.remove(&id);
        self.free.push(id);
        self.note(id, false);
    }

    /// Applies one counts-topic record.
    pub fn apply(&mut self, record: CountsRecord) {
        let CountsRecord {
            key,
            value,
            spellings,
            error,
        } = record;
        // The error can never exceed the value (decoding refuses it otherwise); clamped anyway.
        let error = value.map_or(0, |v| error.clamp(0, v.max(0)));
        match key {
            CountsKey::Watermark { partition } => self.apply_watermark(partition, value, error),
            CountsKey::Bucket {
                partition,
                resolution,
                start,
                tag,
            } => self.apply_bucket(partition, resolution, start, &tag, value, error),
            CountsKey::Total { partition, tag } => {
                self.apply_total(partition, &tag, value, error, spellings);
            }
            // The trend track: read by `trend::TrendBoard`, not by this view.
            CountsKey::Language { .. } => {}
            // The aggregator's own bookkeeping (its input position).
            CountsKey::Checkpoint { .. } => {}
        }
    }

    fn apply_watermark(&mut self, partition: i32, value: Option<EpochMillis>, floor: i64) {
        match value {
            Some(w) => self.watermarks.insert(partition, w),
            None => self.watermarks.remove(&partition),
        };
        if floor > 0 {
            self.floors.insert(partition, floor);
        } else {
            self.floors.remove(&partition);
        }
        let watermark = self.watermarks.values().copied().max();
        if watermark != self.watermark {
            self.watermark = watermark;
            self.move_windows();
        }
    }

    /// Moves every finite window to the watermark: buckets leaving it are subtracted from its
    /// totals, buckets entering it added.
    fn move_windows(&mut self) {
        for (w, window) in Window::ALL.into_iter().enumerate().take(ALL) {
            let new = self
                .watermark
                .and_then(|wm| self.layout.window_range(window, wm))
                .map(|(_, from, to)| (from, to));
            let old = self.ranges[w];
            if new == old {
                continue;
            }
            self.ranges[w] = new;
            let buckets = match window.resolution() {
                Some(Resolution::Coarse) => &self.coarse,
                _ => &self.fine,
            };
            let inside =
                |range: Option<(i64, i64)>, s: i64| range.is_some_and(|(a, b)| a <= s && s <= b);
            for (range, other, sign) in [(old, new, -1), (new, old, 1)] {
                let Some((from, to)) = range else { continue };
                for (&start, bucket) in buckets.range(from..=to) {
                    if !inside(other, start) {
                        shift_window(bucket, w, sign, &mut self.entries, &mut self.errors);
                    }
                }
            }
        }
    }

    fn apply_bucket(
        &mut self,
        partition: i32,
        resolution: Resolution,
        start: EpochMillis,
        tag: &str,
        value: Option<i64>,
        error: i64,
    ) {
        let id = match value {
            Some(_) => self.intern(tag),
            None => match self.lookup(tag) {
                Some(id) => id,
                None => return,
            },
        };
        let key = part_key(partition, id);
        let buckets = match resolution {
            Resolution::Fine => &mut self.fine,
            Resolution::Coarse => &mut self.coarse,
        };
        let bucket = match value {
            Some(_) => buckets.entry(start).or_default(),
            None => match buckets.get_mut(&start) {
                Some(bucket) => bucket,
                None => return,
            },
        };
        let old = match value {
            Some(v) => bucket.parts.insert(key, v),
            None => bucket.parts.remove(&key),
        };
        let old_error = if error > 0 {
            bucket.part_errors.insert(key, error)
        } else {
            bucket.part_errors.remove(&key)
        }
        .unwrap_or(0);
        let delta = value.unwrap_or(0).saturating_sub(old.unwrap_or(0));
        if delta != 0 {
            // Copies the sums only if a snapshot still shares them.
            add_to(Arc::make_mut(&mut bucket.sums), id, delta);
        }
        let error_delta = error.saturating_sub(old_error);
        add_to(&mut bucket.error_sums, id, error_delta);
        if bucket.parts.is_empty() {
            buckets.remove(&start);
        }
        for (w, window) in Window::ALL.into_iter().enumerate().take(ALL) {
            let holds = window.resolution() == Some(resolution)
                && self.ranges[w].is_some_and(|(from, to)| from <= start && start <= to);
            if holds {
                if delta != 0 {
                    let count = &mut self.entries.get_mut(id).counts[w];
                    *count = count.saturating_add(delta);
                }
                add_error(&mut self.errors, id, w, error_delta);
            }
        }
        match (old.is_some(), value.is_some()) {
            (false, true) => {
                if let Some(refs) = self.refs.get_mut(id as usize) {
                    *refs = refs.saturating_add(1);
                }
            }
            (true, false) => self.unref(id),
            _ => {}
        }
    }

    fn apply_total(
        &mut self,
        partition: i32,
        tag: &str,
        value: Option<i64>,
        error: i64,
        spellings: Vec<(String, i64)>,
    ) {
        let id = match value {
            Some(_) => self.intern(tag),
            None => match self.lookup(tag) {
                Some(id) => id,
                None => return,
            },
        };
        let key = part_key(partition, id);
        self.max_partition = self.max_partition.max(partition);
        let new = value.map(|v| {
            let plain = spellings
                .iter()
                .filter(|(s, _)| s == tag)
                .fold(0i64, |sum, (_, n)| sum.saturating_add(*n));
            let others: Spellings = spellings
                .into_iter()
                .filter(|(s, _)| s != tag)
                .map(|(s, n)| (s.into_boxed_str(), n))
                .collect();
            AllPart {
                value: v,
                plain,
                spellings: (!others.is_empty()).then(|| Box::new(others)),
            }
        });
        let old = match new {
            Some(part) => self.all.insert(key, part),
            None => self.all.remove(&key),
        };
        let old_value = old.as_ref().map_or(0, |o| o.value);
        let old_error = if error > 0 {
            self.all_errors.insert(key, error)
        } else {
            self.all_errors.remove(&key)
        }
        .unwrap_or(0);
        let delta = value.unwrap_or(0).saturating_sub(old_value);
        let bit = u32::try_from(partition)
            .ok()
            .filter(|&p| p < 64)
            .map_or(0, |p| 1u64 << p);
        let keys = self.entries.get(id).map_or(0, |e| e.all_keys);
        let new_keys = if value.is_some() {
            keys | bit
        } else {
            keys & !bit
        };
        if delta != 0 || new_keys != keys {
            let entry = self.entries.get_mut(id);
            entry.counts[ALL] = entry.counts[ALL].saturating_add(delta);
            entry.all_keys = new_keys;
        }
        add_error(&mut self.errors, id, ALL, error.saturating_sub(old_error));
        let had = old.is_some();
        let old_plain = old.as_ref().map_or(0, |o| o.plain);
        let old_spellings = old
            .and_then(|o| o.spellings)
            .map(|s| *s)
            .unwrap_or_default();
        let (new_plain, new_spellings) = self
            .all
            .get(&key)
            .map(|p| (p.plain, p.spellings.as_deref().cloned().unwrap_or_default()))
            .unwrap_or_default();
        self.apply_spellings(id, &old_spellings, &new_spellings, old_plain != new_plain);
        self.count_ref(id, had, value.is_some());
    }

    /// Counts a partial value that appeared (`had` false, `has` true) or disappeared.
    fn count_ref(&mut self, id: u32, had: bool, has: bool) {
        match (had, has) {
            (false, true) => {
                if let Some(refs) = self.refs.get_mut(id as usize) {
                    *refs = refs.saturating_add(1);
                }
            }
            (true, false) => self.unref(id),
            _ => {}
        }
    }

    /// How often a tag was spelled as its counting form, over all partitions.
    fn plain_total(&self, id: u32) -> i64 {
        let keys = self.entries.get(id).map_or(0, |e| e.all_keys);
        let low = (0..64).filter(|p| keys & (1u64 << p) != 0);
        let high = 64..=self.max_partition;
        low.chain(high)
            .filter_map(|p| self.all.get(&part_key(p, id)))
            .fold(0i64, |sum, part| sum.saturating_add(part.plain))
    }

    /// Updates the display form after a partition's other spellings went from `old` to `new`
    /// (`plain_changed`: its count of the counting form changed too).
    fn apply_spellings(
        &mut self,
        id: u32,
        old: &[(Box<str>, i64)],
        new: &[(Box<str>, i64)],
        plain_changed: bool,
    ) {
        if old == new && !(plain_changed && self.spellings.contains_key(&id)) {
            return;
        }
        let sums = self.spellings.entry(id).or_default();
        for (spelling, n) in old {
            if let Some(i) = sums.iter().position(|(s, _)| s == spelling) {
                sums[i].1 = sums[i].1.saturating_sub(*n);
                if sums[i].1 <= 0 {
                    sums.swap_remove(i);
                }
            }
        }
        for (spelling, n) in new {
            match sums.iter().position(|(s, _)| s == spelling) {
                Some(i) => sums[i].1 = sums[i].1.saturating_add(*n),
                None => sums.push((spelling.clone(), *n)),
            }
        }
        let best = sums
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(s, n)| (s.clone(), *n));
        if sums.is_empty() {
            self.spellings.remove(&id);
        }
        let name = self.names.get(id).and_then(|n| n.as_deref()).unwrap_or("");
        // The most frequent spelling; ties go to the one that sorts first. `None`: the tag
        // itself (only ever spelled as counted, or that spelling wins).
        let display = best.filter(|(spelling, n)| {
            let plain = self.plain_total(id);
            *n > plain || (*n == plain && **spelling < *name)
        });
        let display = display.map(|(s, _)| s);
        let current = self
            .entries
            .get(id)
            .and_then(|e| e.display.as_deref().map(|d| &**d));
        if current != display.as_deref() {
            self.entries.get_mut(id).display = display.map(Arc::new);
        }
    }

    /// A cheap, immutable copy of the state for [`Ranker::build`], taking the list of ids
    /// named and freed since the last frame.
    pub fn frame(&mut self) -> Frame {
        let mut frame = self.peek();
        frame.added = std::mem::take(&mut self.added);
        frame.removed = std::mem::take(&mut self.removed);
        frame.renamed_all = std::mem::take(&mut self.renamed_all);
        frame
    }

    /// A frame that asks the ranker to sort all names (it leaves the change lists alone).
    fn peek(&self) -> Frame {
        let shared = |window: Window, buckets: &BTreeMap<EpochMillis, Bucket>| match self
            .watermark
            .and_then(|w| self.layout.window_range(window, w))
        {
            Some((_, from, to)) => buckets
                .range(from..=to)
                .map(|(start, bucket)| (*start, bucket.sums.clone()))
                .collect(),
            None => BTreeMap::new(),
        };
        Frame {
            watermark: self.watermark,
            layout: self.layout,
            names: self.names.clone(),
            entries: self.entries.clone(),
            errors: Arc::new(self.errors.clone()),
            floors: self.floors.iter().map(|(&p, &f)| (p, f)).collect(),
            added: Vec::new(),
            removed: Vec::new(),
            renamed_all: true,
            fine: shared(Window::H1, &self.fine),
            coarse: shared(Window::H24, &self.coarse),
        }
    }

    /// Ranks every window at the current watermark, from scratch (the follower uses
    /// [`TrendsView::frame`] and a long-lived [`Ranker`] instead, off its loop).
    pub fn snapshot(&self) -> Snapshot {
        Ranker::default().build(self.peek())
    }
}

/// The bounds of `entry`'s count in window `w`, `None` when it is exact (module docs).
fn bounds_of(frame: &Frame, id: u32, entry: &Entry, w: usize) -> Option<Bounds> {
    let count = entry.counts[w];
    let error = frame.errors.get(&id).map_or(0, |e| e[w]);
    let lower = count.saturating_sub(error);
    let upper = if w == ALL {
        let missing = frame
            .floors
            .iter()
            .filter(|(p, _)| !(0..64).contains(p) || entry.all_keys & (1u64 << p) == 0)
            .fold(0i64, |sum, (_, floor)| sum.saturating_add(*floor));
        count.saturating_add(missing)
    } else {
        count
    };
    (lower != upper).then_some(Bounds { lower, upper })
}

/// Sorts `keys` ascending: least-significant-digit radix sort, 11 bits a pass, skipping the
/// passes in which every key has the same digit (the high bits of small counts).
fn radix_sort(keys: &mut Vec<u64>) {
    const BITS: usize = 11;
    const DIGITS: usize = 1 << BITS;
    const PASSES: usize = 64_usize.div_ceil(BITS);
    if keys.len() < 512 {
        keys.sort_unstable();
        return;
    }
    let digit = |key: u64, pass: usize| ((key >> (pass * BITS)) as usize) & (DIGITS - 1);
    let mut counts = vec![[0usize; DIGITS]; PASSES];
    for &key in keys.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[digit(key, pass)] += 1;
        }
    }
    let mut buffer = vec![0u64; keys.len()];
    for (pass, count) in counts.iter_mut().enumerate() {
        if count.contains(&keys.len()) {
            continue;
        }
        let mut offset = 0;
        for slot in count.iter_mut() {
            let n = *slot;
            *slot = offset;
            offset += n;
        }
        for &key in keys.iter() {
            let d = digit(key, pass);
            buffer[count[d]] = key;
            count[d] += 1;
        }
        std::mem::swap(keys, &mut buffer);
    }
}

impl Ranker {
    /// Ranks a frame. Frames must come from one view, each after the previous (their change
    /// lists are merged into the name order); any other frame asks for a full sort anyway.
    pub fn build(&mut self, frame: Frame) -> Snapshot {
        let order = self.update_order(&frame);
        let ids = frame.names.chunks.len() * CHUNK;
        let mut name_rank = std::mem::take(&mut self.name_rank);
        name_rank.clear();
        name_rank.resize(ids, u32::MAX);
        for (rank, &id) in (0u32..).zip(order.iter()) {
            if let Some(slot) = name_rank.get_mut(id as usize) {
                *slot = rank;
            }
        }
        // Pack (count descending, name rank ascending) into one integer when it fits.
        let rank_bits = (usize::BITS - order.len().leading_zeros()).max(1);
        let count_limit: i64 = i64::try_from((1u64 << (64 - rank_bits)) - 1).unwrap_or(i64::MAX);
        // One pass over the entries (in id order, sequential) for all windows.
        let mut keys: [Vec<u64>; WINDOWS] =
            std::array::from_fn(|w| Vec::with_capacity(self.last_lens[w] + self.last_lens[w] / 8));
        let mut overflow = [false; WINDOWS];
        for (id, entry) in (0u32..).zip(frame.entries.iter()) {
            let Some(&rank) = name_rank.get(id as usize) else {
                break;
            };
            if rank == u32::MAX {
                continue;
            }
            for (w, list) in keys.iter_mut().enumerate() {
                let count = entry.counts[w];
                if count > 0 {
                    overflow[w] |= count > count_limit;
                    let inverted = (count_limit - count.min(count_limit)).unsigned_abs();
                    list.push((inverted << rank_bits) | u64::from(rank));
                }
            }
        }
        let mask = (1u64 << rank_bits) - 1;
        let ranked: [Vec<u32>; WINDOWS] = std::array::from_fn(|w| {
            let mut list = std::mem::take(&mut keys[w]);
            if !overflow[w] {
                radix_sort(&mut list);
                return list.into_iter().map(|k| (k & mask) as u32).collect();
            }
            // A count too large to pack (hostile records can reach 2^53): compare pairs.
            let mut pairs: Vec<(std::cmp::Reverse<i64>, u32)> = list
                .into_iter()
                .map(|k| (k & mask) as u32)
                .filter_map(|rank| {
                    let id = *order.get(rank as usize)?;
                    let count = frame.entries.get(id)?.counts[w];
                    Some((std::cmp::Reverse(count), rank))
                })
                .collect();
            pairs.sort_unstable();
            pairs.into_iter().map(|(_, rank)| rank).collect()
        });
        self.name_rank = name_rank;
        self.last_lens = std::array::from_fn(|w| ranked[w].len());
        let mut snapshot = Snapshot {
            watermark: frame.watermark,
            frame,
            order,
            ranked,
            top: Default::default(),
        };
        snapshot.top = std::array::from_fn(|w| {
            snapshot.ranked[w]
                .iter()
                .take(MAX_TOP)
                .filter_map(|&rank| snapshot.ranked_tag(w, rank))
                .collect()
        });
        snapshot
    }

    /// The live ids sorted by name: the previous order with the frame's changes merged in
    /// (each new name placed by binary search, then one pass), or all names sorted afresh.
    fn update_order(&mut self, frame: &Frame) -> Arc<Vec<u32>> {
        let name = |id: u32| frame.names.get(id).and_then(|n| n.as_deref());
        let order = match &self.order {
            Some(order) if !frame.renamed_all => {
                if frame.added.is_empty() && frame.removed.is_empty() {
                    return order.clone();
                }
                let mut touched = vec![false; frame.names.chunks.len() * CHUNK];
                for &id in frame.added.iter().chain(&frame.removed) {
                    if let Some(t) = touched.get_mut(id as usize) {
                        *t = true;
                    }
                }
                let kept: Vec<u32> = order
                    .iter()
                    .copied()
                    .filter(|&id| !touched.get(id as usize).copied().unwrap_or(true))
                    .collect();
                let mut fresh: Vec<u32> = (0u32..)
                    .zip(&touched)
                    .filter(|&(id, &t)| t && name(id).is_some())
                    .map(|(id, _)| id)
                    .collect();
                fresh.sort_unstable_by(|&a, &b| name(a).cmp(&name(b)));
                let mut merged = Vec::with_capacity(kept.len() + fresh.len());
                let mut from = 0;
                for id in fresh {
                    let at = from + kept[from..].partition_point(|&k| name(k) < name(id));
                    merged.extend_from_slice(&kept[from..at]);
                    merged.push(id);
                    from = at;
                }
                merged.extend_from_slice(&kept[from..]);
                merged
            }
            _ => {
                let mut all: Vec<u32> = (0u32..)
                    .zip(frame.names.iter())
                    .filter(|(_, n)| n.is_some())
                    .map(|(id, _)| id)
                    .collect();
                all.sort_unstable_by(|&a, &b| name(a).cmp(&name(b)));
                all
            }
        };
        let order = Arc::new(order);
        self.order = Some(order.clone());
        order
    }
}

impl Snapshot {
    fn name(&self, id: u32) -> Option<&Arc<str>> {
        self.frame.names.get(id).and_then(Option::as_ref)
    }

    /// The tag's position in the name order and its id.
    fn find(&self, tag: &str) -> Option<(usize, u32)> {
        let at = self
            .order
            .partition_point(|&id| self.name(id).map_or("", |n| n) < tag);
        let id = *self.order.get(at)?;
        (self.name(id).map(|n| &**n) == Some(tag)).then_some((at, id))
    }

    /// The count of the tag of name rank `rank` in window `w`.
    fn count_at(&self, w: usize, rank: u32) -> i64 {
        self.order
            .get(rank as usize)
            .and_then(|&id| self.frame.entries.get(id))
            .map_or(0, |e| e.counts[w])
    }

    fn ranked_tag(&self, w: usize, rank: u32) -> Option<RankedTag> {
        let id = *self.order.get(rank as usize)?;
        let tag = self.name(id)?.clone();
        let entry = self.frame.entries.get(id)?;
        Some(RankedTag {
            display: entry
                .display
                .as_deref()
                .map_or_else(|| tag.clone(), |d| Arc::from(&**d)),
            tag,
            count: entry.counts[w],
            bounds: bounds_of(&self.frame, id, entry, w),
        })
    }

    /// The 1-based rank, in window `w`, of the tag of name rank `rank` and count `count`: a
    /// binary search of the ranking.
    fn rank_in(&self, w: usize, rank: u32, count: i64) -> usize {
        1 + self.ranked[w].partition_point(|&other| {
            let c = self.count_at(w, other);
            c > count || (c == count && other < rank)
        })
    }

    /// The top `limit` tags of a window (at most [`MAX_TOP`]).
    pub fn top(&self, window: Window, limit: usize) -> &[RankedTag] {
        let top = &self.top[window_index(window)];
        &top[..limit.min(top.len())]
    }

    /// How many tags a window ranks (count > 0).
    pub fn ranked_len(&self, window: Window) -> usize {
        self.ranked[window_index(window)].len()
    }

    /// Every ranked tag of a window (count > 0), best first. Materializes the whole window:
    /// for tests and tools, not for requests.
    pub fn ranking(&self, window: Window) -> Vec<RankedTag> {
        let w = window_index(window);
        self.ranked[w]
            .iter()
            .filter_map(|&rank| self.ranked_tag(w, rank))
            .collect()
    }

    /// The best `limit` tags of a window whose counting form starts with `prefix`, with their
    /// rank (1-based) in the window's full ranking, best first. An empty prefix matches all.
    ///
    /// Cost: the tags starting with `prefix` are one range of the name order (binary search),
    /// so a tag matches when its name rank is in that range: an integer test. A narrow range is
    /// scanned whole, keeping the best `limit`, and each result's rank is a binary search of
    /// the ranking; a wide one (where matches are frequent) is cheaper found by walking the
    /// ranking from the top until `limit` matches. Either way, never worse than one pass over
    /// the window, and nothing is sorted but the `limit` results.
    pub fn top_with_prefix(
        &self,
        window: Window,
        prefix: &str,
        limit: usize,
    ) -> Vec<(usize, RankedTag)> {
        let w = window_index(window);
        let ranked = &self.ranked[w];
        let name = |id: u32| self.name(id).map_or("", |n| &**n);
        let (from, to) = if prefix.is_empty() {
            (0, self.order.len())
        } else {
            let from = self.order.partition_point(|&id| name(id) < prefix);
            let to = from + self.order[from..].partition_point(|&id| name(id).starts_with(prefix));
            (from, to)
        };
        let matches = to - from;
        if matches == 0 || limit == 0 {
            return Vec::new();
        }
        let inside = |rank: u32| (from..to).contains(&(rank as usize));
        // Walking the ranking finds `limit` matches after about limit × n / matches entries.
        let walk_cost = limit.saturating_mul(ranked.len()) / matches;
        if walk_cost < matches {
            return ranked
                .iter()
                .enumerate()
                .filter(|(_, rank)| inside(**rank))
                .take(limit)
                .filter_map(|(i, &rank)| Some((i + 1, self.ranked_tag(w, rank)?)))
                .collect();
        }
        // Keep the best `limit` as (count descending, name rank) in a max-heap of the worst.
        let mut best: BinaryHeap<(std::cmp::Reverse<i64>, u32)> =
            BinaryHeap::with_capacity(limit + 1);
        for rank in (from..to).filter_map(|r| u32::try_from(r).ok()) {
            let count = self.count_at(w, rank);
            if count <= 0 {
                continue;
            }
            let key = (std::cmp::Reverse(count), rank);
            if best.len() < limit {
                best.push(key);
            } else if best.peek().is_some_and(|worst| key < *worst) {
                best.pop();
                best.push(key);
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .filter_map(|(std::cmp::Reverse(count), rank)| {
                Some((self.rank_in(w, rank, count), self.ranked_tag(w, rank)?))
            })
            .collect()
    }

    /// A tag's count in every window (in [`Window::ALL`] order); `None` if no window counts it.
    pub fn tag_counts(&self, tag: &str) -> Option<[(Window, i64); WINDOWS]> {
        let summary = self.tag(tag)?;
        Some(std::array::from_fn(|i| (Window::ALL[i], summary.counts[i])))
    }

    /// A tag's counts and display form; `None` if no window counts it.
    pub fn tag(&self, tag: &str) -> Option<TagSummary> {
        let (_, id) = self.find(tag)?;
        let entry = self.frame.entries.get(id)?;
        if entry.counts.iter().all(|&c| c == 0) {
            return None;
        }
        let name = self.name(id)?;
        Some(TagSummary {
            counts: entry.counts,
            display: entry
                .display
                .as_deref()
                .map_or_else(|| name.clone(), |d| Arc::from(&**d)),
        })
    }

    /// A tag's count in a window as bounds, when it is an estimate; `None` when it is exact.
    pub fn bounds(&self, window: Window, tag: &str) -> Option<Bounds> {
        let (_, id) = self.find(tag)?;
        let entry = self.frame.entries.get(id)?;
        bounds_of(&self.frame, id, entry, window_index(window))
    }

    /// The bucket layout the snapshot was summed with.
    pub fn layout(&self) -> BucketLayout {
        self.frame.layout
    }

    /// A tag's count in every bucket of a finite window (`1h`, `24h`, or a shorter one), oldest
    /// first, zeros included; `None` for `all`. Empty points before any data.
    pub fn series(&self, tag: &str, window: Window) -> Option<Series> {
        let resolution = window.resolution()?;
        let layout = self.frame.layout;
        let bucket_ms = layout.size_ms(resolution);
        let Some((_, from, to)) = self.watermark.and_then(|w| layout.window_range(window, w))
        else {
            return Some(Series {
                bucket_ms,
                points: Vec::new(),
            });
        };
        let id = self.find(tag).map(|(_, id)| id);
        let buckets = match resolution {
            Resolution::Fine => &self.frame.fine,
            Resolution::Coarse => &self.frame.coarse,
        };
        let mut points =
            Vec::with_capacity(usize::try_from((to - from) / bucket_ms + 1).unwrap_or(0));
        let mut stored = buckets.range(from..=to).peekable();
        let mut start = from;
        while start <= to {
            let count = match stored.peek() {
                Some(&(&s, sums)) if s == start => {
                    stored.next();
                    id.and_then(|id| sums.get(&id)).copied().unwrap_or(0)
                }
                _ => 0,
            };
            points.push((start, count));
            // Times are within `EVENT_TIME_RANGE` (decoding refuses others), so this cannot
            // overflow; checked all the same, because an endless loop is the price if it did.
            match start.checked_add(bucket_ms) {
                Some(next) => start = next,
                None => break,
            }
        }
        Some(Series { bucket_ms, points })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::PartitionCounter;
    use crate::tags::PostTag;

    const NOON: EpochMillis = 1_795_435_200_000;

    fn names(list: &[RankedTag]) -> Vec<(&str, i64)> {
        list.iter().map(|r| (&*r.tag, r.count)).collect()
    }

    fn t(list: &[&str]) -> Vec<PostTag> {
        list.iter()
            .map(|s| PostTag {
                tag: s.to_lowercase(),
                spelling: s.to_string(),
            })
            .collect()
    }

    #[test]
    fn display_is_the_most_frequent_spelling_over_all_partitions() {
        let layout = BucketLayout::default();
        let mut view = TrendsView::new(layout);
        let mut p0 = PartitionCounter::new(0, layout);
        let mut p1 = PartitionCounter::new(1, layout);
        p0.record(NOON, &t(&["rustlang"]));
        p0.record(NOON, &t(&["rustlang"]));
        p1.record(NOON, &t(&["RustLang"]));
        p1.record(NOON, &t(&["RustLang"]));
        p1.record(NOON, &t(&["RustLang"]));
        for record in p0.take_updates().into_iter().chain(p1.take_updates()) {
            view.apply(record);
        }
        let snap = view.snapshot();
        assert_eq!(&*snap.top(Window::All, 1)[0].display, "RustLang");
        assert_eq!(
            snap.tag("rustlang").map(|s| s.display.to_string()),
            Some("RustLang".to_string())
        );
        // p0 catches up: 4 × rustlang against 3 × RustLang.
        p0.record(NOON, &t(&["rustlang"]));
        p0.record(NOON, &t(&["rustlang"]));
        p0.take_updates().into_iter().for_each(|r| view.apply(r));
        assert_eq!(&*view.snapshot().top(Window::All, 1)[0].display, "rustlang");
    }

    #[test]
    fn sums_partitions_and_ranks_with_ties_by_name() {
        let layout = BucketLayout::default();
        let mut view = TrendsView::new(layout);
        let mut p0 = PartitionCounter::new(0, layout);
        let mut p1 = PartitionCounter::new(1, layout);
        p0.record(NOON, &t(&["rust", "kafka"]));
        p1.record(NOON + 5_000, &t(&["rust"]));
        p1.record(NOON + 6_000, &t(&["zig"]));
        for record in p0.take_updates().into_iter().chain(p1.take_updates()) {
            view.apply(record);
        }
        let snap = view.snapshot();
        assert_eq!(snap.watermark, Some(NOON + 6_000));
        assert_eq!(
            names(snap.top(Window::M1, 10)),
            [("rust", 2), ("kafka", 1), ("zig", 1)]
        );
        assert_eq!(names(snap.top(Window::All, 1)), [("rust", 2)]);
        let rust = snap.tag_counts("rust").expect("seen");
        assert!(rust.iter().all(|(_, c)| *c == 2));
        assert!(snap.tag_counts("nope").is_none());
    }

    /// The worked example of the README's "Windows" section.
    #[test]
    fn readme_window_example() {
        let layout = BucketLayout::default();
        let ten = 1_795_341_600_000; // 2026-11-22T10:00:00Z
        let mut counter = PartitionCounter::new(0, layout);
        counter.record(ten + 5_000, &t(&["a"]));
        counter.record(ten + 58_000, &t(&["a", "b"]));
        counter.record(ten + 63_000, &t(&["a"]));
        let mut view = TrendsView::new(layout);
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let snap = view.snapshot();
        assert_eq!(names(snap.top(Window::M1, 10)), [("a", 2), ("b", 1)]);
        assert_eq!(names(snap.top(Window::M5, 10)), [("a", 3), ("b", 1)]);
    }

    #[test]
    fn replacing_values_and_tombstones_adjust_the_sums() {
        let layout = BucketLayout::default();
        let mut view = TrendsView::new(layout);
        let mut counter = PartitionCounter::new(0, layout);
        counter.record(NOON, &t(&["a"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        counter.record(NOON + 1, &t(&["a"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        assert_eq!(names(view.snapshot().top(Window::M5, 10)), [("a", 2)]);
        // Two minutes later the 1m window no longer holds "a", 5m still does.
        counter.record(NOON + 120_000, &t(&["b"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let snap = view.snapshot();
        assert_eq!(names(snap.top(Window::M1, 10)), [("b", 1)]);
        assert_eq!(names(snap.top(Window::M5, 10)), [("a", 2), ("b", 1)]);
        // Two hours later the fine bucket of "a" is tombstoned; 24h and all still count it.
        counter.record(NOON + 7_200_000, &t(&["c"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let snap = view.snapshot();
        assert_eq!(names(snap.top(Window::H1, 10)), [("c", 1)]);
        assert_eq!(
            names(snap.top(Window::H24, 10)),
            [("a", 2), ("b", 1), ("c", 1)]
        );
        assert!(view.fine.len() <= 360);
    }

    /// A view whose `all` window holds the given (tag, count) pairs.
    fn totals(pairs: &[(String, i64)]) -> Snapshot {
        let mut view = TrendsView::new(BucketLayout::default());
        for (tag, count) in pairs {
            view.apply(CountsRecord {
                key: CountsKey::Total {
                    partition: 0,
                    tag: tag.clone(),
                },
                value: Some(*count),
                spellings: vec![(tag.clone(), *count)],
                error: 0,
            });
        }
        view.snapshot()
    }

    /// The obvious answer: walk the whole ranking.
    fn brute_force(
        snap: &Snapshot,
        window: Window,
        prefix: &str,
        limit: usize,
    ) -> Vec<(usize, RankedTag)> {
        snap.ranking(window)
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.tag.starts_with(prefix))
            .take(limit)
            .map(|(i, r)| (i + 1, r))
            .collect()
    }

    #[test]
    fn prefix_queries_keep_the_full_ranks() {
        let snap = totals(&[
            ("rust".into(), 5),
            ("rustlang".into(), 7),
            ("ruby".into(), 9),
            ("kafka".into(), 6),
            ("rus".into(), 1),
        ]);
        let got: Vec<(usize, String)> = snap
            .top_with_prefix(Window::All, "rus", 10)
            .into_iter()
            .map(|(rank, r)| (rank, r.tag.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "rustlang".into()),
                (4, "rust".into()),
                (5, "rus".into())
            ]
        );
        let got: Vec<(usize, String)> = snap
            .top_with_prefix(Window::All, "ru", 2)
            .into_iter()
            .map(|(rank, r)| (rank, r.tag.to_string()))
            .collect();
        assert_eq!(got, [(1, "ruby".into()), (2, "rustlang".into())]);
        assert!(snap.top_with_prefix(Window::All, "zig", 10).is_empty());
        assert!(snap.top_with_prefix(Window::M5, "ru", 10).is_empty());
        assert_eq!(snap.top_with_prefix(Window::All, "", 10).len(), 5);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Both strategies (range scan, ranking walk) agree with the brute force, for narrow
        /// and wide prefixes, small and large limits, multi-byte tags and ties.
        #[test]
        fn prefix_queries_match_the_brute_force(
            tags in proptest::collection::hash_map("[abé日]{1,4}", 1i64..20, 0..300),
            prefixes in proptest::collection::vec("[abé日]{0,3}", 1..8),
            limit in 1usize..120,
        ) {
            let pairs: Vec<(String, i64)> = tags.into_iter().collect();
            let snap = totals(&pairs);
            for prefix in &prefixes {
                proptest::prop_assert_eq!(
                    snap.top_with_prefix(Window::All, prefix, limit),
                    brute_force(&snap, Window::All, prefix, limit),
                    "prefix {:?}", prefix
                );
            }
        }
    }

    #[test]
    fn series_has_every_bucket_of_the_window_ending_at_the_watermark() {
        let layout = BucketLayout::default();
        let ten = 1_795_341_600_000; // 2026-11-22T10:00:00Z
        let mut counter = PartitionCounter::new(0, layout);
        let mut view = TrendsView::new(layout);
        assert_eq!(
            view.snapshot().series("a", Window::H1),
            Some(Series {
                bucket_ms: 10_000,
                points: vec![]
            })
        );
        counter.record(ten + 5_000, &t(&["a"]));
        counter.record(ten + 58_000, &t(&["a", "b"]));
        counter.record(ten + 63_000, &t(&["a"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let snap = view.snapshot();

        let hour = snap.series("a", Window::H1).expect("finite window");
        assert_eq!(hour.bucket_ms, 10_000);
        assert_eq!(hour.points.len(), 360);
        let newest = ten + 60_000;
        let expected: Vec<(EpochMillis, i64)> = (0..360)
            .map(|i| {
                let start = newest - (359 - i) * 10_000;
                let count = [ten, ten + 50_000, ten + 60_000]
                    .iter()
                    .filter(|&&s| s == start)
                    .count();
                (start, count as i64)
            })
            .collect();
        assert_eq!(hour.points, expected);

        let day = snap.series("a", Window::H24).expect("finite window");
        assert_eq!((day.bucket_ms, day.points.len()), (300_000, 288));
        assert_eq!(day.points.last(), Some(&(ten, 3)));
        assert_eq!(day.points.first(), Some(&(ten - 287 * 300_000, 0)));
        assert_eq!(day.points.iter().map(|p| p.1).sum::<i64>(), 3);

        assert_eq!(
            snap.series("b", Window::H1)
                .map(|s| s.points.iter().map(|p| p.1).sum::<i64>()),
            Some(1)
        );
        assert_eq!(
            snap.series("nobody", Window::H1).map(|s| s.points.len()),
            Some(360)
        );
        assert_eq!(snap.series("a", Window::All), None);
    }

    /// The extremes decoding lets through make no loop endless and no sum wrap.
    #[test]
    fn extreme_but_valid_records_are_served() {
        let mut view = TrendsView::new(BucketLayout::default());
        let last = *crate::EVENT_TIME_RANGE.end();
        let decode = |key: &str, value: &str| {
            CountsRecord::decode(key.as_bytes(), Some(value.as_bytes())).expect("valid")
        };
        view.apply(decode("0|w", &format!(r#"{{"watermark":{last}}}"#)));
        view.apply(decode(
            "1|w",
            &format!(r#"{{"watermark":{}}}"#, crate::EVENT_TIME_RANGE.start()),
        ));
        for partition in 0..4 {
            view.apply(decode(
                &format!("{partition}|a|x"),
                r#"{"count":9007199254740991}"#,
            ));
        }
        let snap = view.snapshot();
        assert_eq!(snap.watermark, Some(last));
        let hour = snap.series("x", Window::H1).expect("finite");
        assert_eq!(hour.points.len(), 360);
        assert_eq!(snap.top(Window::All, 1)[0].count, 4 * crate::MAX_COUNT);
        // A watermark near i64::MAX, as a hostile writer could put in the topic, is refused.
        assert!(
            CountsRecord::decode(b"2|w", Some(br#"{"watermark":9223372036854775807}"#)).is_err()
        );
    }

    #[test]
    fn a_snapshot_keeps_its_buckets_while_the_view_moves_on() {
        let layout = BucketLayout::default();
        let mut counter = PartitionCounter::new(0, layout);
        let mut view = TrendsView::new(layout);
        counter.record(NOON, &t(&["a"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let before = view.snapshot();
        counter.record(NOON + 1, &t(&["a"]));
        counter
            .take_updates()
            .into_iter()
            .for_each(|r| view.apply(r));
        let after = view.snapshot();
        let last = |s: &Snapshot| {
            s.series("a", Window::H1)
                .and_then(|s| s.points.last().copied())
        };
        assert_eq!(last(&before), Some((NOON, 1)));
        assert_eq!(last(&after), Some((NOON, 2)));
    }
}

/// The incremental view and ranker against the obvious computation: every window summed from
/// the latest value of every key, at every step of a random stream of records (values,
/// tombstones, errors, watermarks moving both ways, tags freed and reused).
#[cfg(test)]
mod model {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    const BASE: EpochMillis = 1_795_435_200_000;

    /// A record as generated: (partition, kind, slot, tag, value, error); kind 0 fine, 1 coarse,
    /// 2 all-time, 3 watermark.
    fn record() -> impl Strategy<Value = CountsRecord> {
        (
            0i32..3,
            0u8..4,
            0i64..400,
            "[abc]{1,2}",
            proptest::option::weighted(0.8, 1i64..6),
            0i64..3,
        )
            .prop_map(|(partition, kind, slot, tag, value, error)| {
                let key = match kind {
                    0 => CountsKey::Bucket {
                        partition,
                        resolution: Resolution::Fine,
                        start: BASE + slot * 10_000,
                        tag,
                    },
                    1 => CountsKey::Bucket {
                        partition,
                        resolution: Resolution::Coarse,
                        start: BASE + (slot % 300) * 300_000,
                        tag,
                    },
                    2 => CountsKey::Total { partition, tag },
                    _ => CountsKey::Watermark { partition },
                };
                let value = match (&key, value) {
                    (CountsKey::Watermark { .. }, Some(_)) => Some(BASE + slot * 60_000),
                    (_, v) => v,
                };
                let error = match (&key, value) {
                    (CountsKey::Watermark { .. }, _) => error * 2,
                    (_, Some(v)) => error.min(v),
                    (_, None) => 0,
                };
                let spellings = match (&key, value) {
                    (CountsKey::Total { tag, .. }, Some(v)) => vec![(tag.to_uppercase(), v)],
                    _ => vec![],
                };
                CountsRecord {
                    key,
                    value,
                    spellings,
                    error,
                }
            })
    }

    /// The latest (value, error) of every key.
    #[derive(Default)]
    struct Model {
        latest: HashMap<CountsKey, (i64, i64)>,
    }

    impl Model {
        fn apply(&mut self, record: &CountsRecord) {
            match record.value {
                Some(v) => self.latest.insert(record.key.clone(), (v, record.error)),
                None => self.latest.remove(&record.key),
            };
        }

        /// Per window: tag → (count, lower, upper).
        fn windows(&self, layout: BucketLayout) -> Vec<HashMap<String, (i64, i64, i64)>> {
            let watermark = self
                .latest
                .iter()
                .filter(|(k, _)| matches!(k, CountsKey::Watermark { .. }))
                .map(|(_, v)| v.0)
                .max();
            let floors: HashMap<i32, i64> = self
                .latest
                .iter()
                .filter_map(|(k, v)| match k {
                    CountsKey::Watermark { partition } => Some((*partition, v.1)),
                    _ => None,
                })
                .collect();
            Window::ALL
                .iter()
                .map(|&window| {
                    let mut out: HashMap<String, (i64, i64, i64)> = HashMap::new();
                    let range = watermark.and_then(|w| layout.window_range(window, w));
                    for (key, &(value, error)) in &self.latest {
                        let tag = match (key, range) {
                            (
                                CountsKey::Bucket {
                                    resolution,
                                    start,
                                    tag,
                                    ..
                                },
                                Some((r, from, to)),
                            ) if *resolution == r && (from..=to).contains(start) => tag,
                            (CountsKey::Total { tag, .. }, _) if window == Window::All => tag,
                            _ => continue,
                        };
                        let slot = out.entry(tag.clone()).or_default();
                        slot.0 += value;
                        slot.1 += value - error;
                        slot.2 += value;
                    }
                    if window == Window::All {
                        // Tags seen in any bucket too: they may have lost their all-time keys.
                        for key in self.latest.keys() {
                            if let CountsKey::Bucket { tag, .. } = key {
                                out.entry(tag.clone()).or_default();
                            }
                        }
                        for (tag, slot) in out.iter_mut() {
                            for (p, floor) in &floors {
                                let key = CountsKey::Total {
                                    partition: *p,
                                    tag: tag.clone(),
                                };
                                if !self.latest.contains_key(&key) {
                                    slot.2 += floor;
                                }
                            }
                        }
                    }
                    out
                })
                .collect()
        }
    }

    fn check(
        snapshot: &Snapshot,
        model: &Model,
        layout: BucketLayout,
    ) -> Result<(), TestCaseError> {
        let windows = model.windows(layout);
        for (w, window) in Window::ALL.into_iter().enumerate() {
            let mut expected: Vec<(String, i64)> = windows[w]
                .iter()
                .filter(|(_, c)| c.0 > 0)
                .map(|(t, c)| (t.clone(), c.0))
                .collect();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let ranking = snapshot.ranking(window);
            let got: Vec<(String, i64)> = ranking
                .iter()
                .map(|r| (r.tag.to_string(), r.count))
                .collect();
            prop_assert_eq!(&got, &expected, "window {}", window);
            let top: Vec<(String, i64)> = snapshot
                .top(window, MAX_TOP)
                .iter()
                .map(|r| (r.tag.to_string(), r.count))
                .collect();
            prop_assert_eq!(&top[..], &expected[..expected.len().min(MAX_TOP)]);
            for (tag, &(count, lower, upper)) in &windows[w] {
                let bounds = snapshot.bounds(window, tag);
                let want = (lower != upper).then_some(Bounds { lower, upper });
                if snapshot.tag(tag).is_some() {
                    prop_assert_eq!(bounds, want, "bounds of {} in {}", tag, window);
                    let counts = snapshot.tag(tag).map(|s| s.counts[w]);
                    prop_assert_eq!(counts, Some(count), "{} in {}", tag, window);
                }
            }
            for prefix in ["", "a", "b", "ab", "c"] {
                let brute: Vec<(usize, String)> = ranking
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.tag.starts_with(prefix))
                    .take(3)
                    .map(|(i, r)| (i + 1, r.tag.to_string()))
                    .collect();
                let got: Vec<(usize, String)> = snapshot
                    .top_with_prefix(window, prefix, 3)
                    .into_iter()
                    .map(|(i, r)| (i, r.tag.to_string()))
                    .collect();
                prop_assert_eq!(got, brute, "prefix {:?} in {}", prefix, window);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn incremental_view_and_ranker_match_the_obvious_sums(
            records in proptest::collection::vec(record(), 1..300),
            every in 1usize..40,
        ) {
            let layout = BucketLayout::default();
            let mut view = TrendsView::new(layout);
            let mut ranker = Ranker::default();
            let mut model = Model::default();
            for (i, record) in records.iter().enumerate() {
                view.apply(record.clone());
                model.apply(record);
                if i % every == 0 {
                    let snapshot = ranker.build(view.frame());
                    check(&snapshot, &model, layout)?;
                }
            }
            check(&ranker.build(view.frame()), &model, layout)?;
            check(&view.snapshot(), &model, layout)?;
            // Every id freed when nothing holds it any more.
            let held: std::collections::HashSet<&str> = model
                .latest
                .keys()
                .filter_map(|k| match k {
                    CountsKey::Bucket { tag, .. } | CountsKey::Total { tag, .. } => Some(tag.as_str()),
                    CountsKey::Watermark { .. }
                    | CountsKey::Checkpoint { .. }
                    | CountsKey::Language { .. } => None,
                })
                .collect();
            prop_assert_eq!(view.tags(), held.len());
        }
    }
}
