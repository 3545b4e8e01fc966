//! The API's read model: partial counts of every input partition, summed and ranked.
//!
//! [`TrendsView`] consumes counts-topic records in any order of partitions (within a partition,
//! in offset order) and keeps, per bucket, the sum over partitions. Since each record carries an
//! absolute per-partition value, the view remembers the last value per key and applies the
//! difference. [`TrendsView::snapshot`] turns it into an immutable [`Snapshot`]: for every
//! window, all tags ranked by count (descending, ties by tag ascending), ready to serve.
//!
//! Each tag also has a **display form**: its most frequent original spelling over all time
//! (summed over partitions; ties go to the spelling that sorts first, by code point, so the
//! answer does not depend on the order partitions were read in), e.g. `RustLang` for the
//! counted form `rustlang`.
//!
//! **Counts records are input like any other.** The view applies only what
//! [`CountsRecord::decode`] accepted (times within [`crate::EVENT_TIME_RANGE`], counts within
//! [`crate::MAX_COUNT`]), and its arithmetic saturates instead of wrapping: a hostile record
//! can make a number wrong, never a loop endless or a reader panic.
//!
//! **Why buckets are shared, copy-on-write.** A snapshot must answer a tag's time series (its
//! count in every bucket of the last hour and day) long after the view has moved on. Copying
//! every bucket into every snapshot would cost as much as the view itself, several times a
//! second. Instead each bucket's sums sit behind an [`Arc`]: a snapshot clones the pointers
//! (a few hundred), and the view copies a bucket only when it changes one that a snapshot still
//! holds, which in a live stream is the newest bucket or two.
//!
//! **Why the prefix index is lazy.** Prefix queries (`/trends?prefix=ru`) binary-search an
//! index of a window's ranking sorted by tag. Most snapshots are never asked for a prefix, so
//! the index is built on the first such query of each window and snapshot ([`OnceLock`]).

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, OnceLock};

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::window::{BucketLayout, Resolution, Window};

/// A map keyed by tag, hashed with foldhash: several times faster than SipHash on short
/// strings, which dominated snapshot building, and still seeded per process, so tags chosen to
/// collide (tags come from the public) cannot be precomputed.
type TagMap<V> = HashMap<Arc<str>, V, foldhash::fast::RandomState>;

/// The summed counts of one bucket: tag → count over all partitions.
type Bucket = Arc<TagMap<i64>>;

/// Summed partial counts.
#[derive(Debug)]
pub struct TrendsView {
    layout: BucketLayout,
    partials: HashMap<CountsKey, i64>,
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
    totals: TagMap<i64>,
    /// Last spellings per (partition, tag), to subtract when a new value replaces them.
    partial_spellings: HashMap<(i32, String), Vec<(String, i64)>>,
    spellings: TagMap<HashMap<String, i64>>,
    /// The display form of every tag that has spellings, kept up to date by `apply_spellings`
    /// so a snapshot does not recompute (and reallocate) it for every tag.
    displays: TagMap<Arc<str>>,
    watermarks: HashMap<i32, EpochMillis>,
}

/// One ranked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedTag {
    pub tag: Arc<str>,
    pub count: i64,
    /// The most frequent original spelling.
    pub display: Arc<str>,
}

/// Everything known about one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSummary {
    /// Counts in [`Window::ALL`] order.
    pub counts: [i64; Window::ALL.len()],
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

/// An immutable, ranked picture of every window at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The latest event time seen on any partition; `None` before any data.
    pub watermark: Option<EpochMillis>,
    layout: BucketLayout,
    /// Per window, in [`Window::ALL`] order: every tag with a positive count, ranked.
    ranked: [Vec<RankedTag>; Window::ALL.len()],
    /// Per window: positions in `ranked` sorted by tag, built on the first prefix query.
    by_name: [OnceLock<Vec<u32>>; Window::ALL.len()],
    by_tag: TagMap<TagSummary>,
    /// The buckets of the `1h` and `24h` windows, shared with the view (copy-on-write).
    fine: BTreeMap<EpochMillis, Bucket>,
    coarse: BTreeMap<EpochMillis, Bucket>,
}

impl Snapshot {
    /// The top `limit` tags of a window.
    pub fn top(&self, window: Window, limit: usize) -> &[RankedTag] {
        let ranked = &self.ranked[window_index(window)];
        &ranked[..limit.min(ranked.len())]
    }

    /// Every ranked tag of a window (count > 0), best first.
    pub fn ranking(&self, window: Window) -> &[RankedTag] {
        &self.ranked[window_index(window)]
    }

    /// The best `limit` tags of a window whose counting form starts with `prefix`, with their
    /// rank (1-based) in the window's full ranking, best first. An empty prefix matches all.
    ///
    /// Cost: the tags starting with `prefix` form one range of the window's by-name index
    /// (binary search). A narrow range is scanned whole, keeping the best `limit`; a wide one
    /// (where matches are frequent) is cheaper found by walking the ranking from the top until
    /// `limit` matches. Either way, never worse than one pass over the window.
    pub fn top_with_prefix(
        &self,
        window: Window,
        prefix: &str,
        limit: usize,
    ) -> Vec<(usize, &RankedTag)> {
        let ranked = &self.ranked[window_index(window)];
        if prefix.is_empty() {
            return ranked
                .iter()
                .take(limit)
                .enumerate()
                .map(|(i, r)| (i + 1, r))
                .collect();
        }
        let index = self.by_name[window_index(window)].get_or_init(|| {
            let mut order: Vec<u32> =
                (0..u32::try_from(ranked.len()).unwrap_or(u32::MAX)).collect();
            order.sort_unstable_by(|&a, &b| ranked[a as usize].tag.cmp(&ranked[b as usize].tag));
            order
        });
        let tag = |i: &u32| &*ranked[*i as usize].tag;
        let from = index.partition_point(|i| tag(i) < prefix);
        let to = from + index[from..].partition_point(|i| tag(i).starts_with(prefix));
        let matches = to - from;
        if matches == 0 || limit == 0 {
            return Vec::new();
        }
        // Walking the ranking finds `limit` matches after about limit × n / matches entries.
        let walk_cost = limit.saturating_mul(ranked.len()) / matches;
        if walk_cost < matches {
            return ranked
                .iter()
                .enumerate()
                .filter(|(_, r)| r.tag.starts_with(prefix))
                .take(limit)
                .map(|(i, r)| (i + 1, r))
                .collect();
        }
        // Keep the `limit` smallest positions in a max-heap.
        let mut best: BinaryHeap<u32> = BinaryHeap::with_capacity(limit + 1);
        for &i in &index[from..to] {
            if best.len() < limit {
                best.push(i);
            } else if best.peek().is_some_and(|&worst| i < worst) {
                best.pop();
                best.push(i);
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|i| (i as usize + 1, &ranked[i as usize]))
            .collect()
    }

    /// A tag's count in every window (in [`Window::ALL`] order); `None` if it was never seen.
    pub fn tag_counts(&self, tag: &str) -> Option<[(Window, i64); Window::ALL.len()]> {
        let summary = self.by_tag.get(tag)?;
        Some(std::array::from_fn(|i| (Window::ALL[i], summary.counts[i])))
    }

    /// A tag's counts and display form.
    pub fn tag(&self, tag: &str) -> Option<&TagSummary> {
        self.by_tag.get(tag)
    }

    /// Number of distinct tags in `all`.
    pub fn distinct_tags(&self) -> usize {
        self.by_tag.len()
    }

    /// The bucket layout the snapshot was summed with.
    pub fn layout(&self) -> BucketLayout {
        self.layout
    }

    /// A tag's count in every bucket of a finite window (`1h`, `24h`, or a shorter one), oldest
    /// first, zeros included; `None` for `all`. Empty points before any data.
    pub fn series(&self, tag: &str, window: Window) -> Option<Series> {
        let resolution = window.resolution()?;
        let bucket_ms = self.layout.size_ms(resolution);
        let Some((_, from, to)) = self
            .watermark
            .and_then(|w| self.layout.window_range(window, w))
        else {
            return Some(Series {
                bucket_ms,
                points: Vec::new(),
            });
        };
        let buckets = match resolution {
            Resolution::Fine => &self.fine,
            Resolution::Coarse => &self.coarse,
        };
        let mut points =
            Vec::with_capacity(usize::try_from((to - from) / bucket_ms + 1).unwrap_or(0));
        let mut stored = buckets.range(from..=to).peekable();
        let mut start = from;
        while start <= to {
            let count = match stored.peek() {
                Some(&(&s, bucket)) if s == start => {
                    let count = bucket.get(tag).copied().unwrap_or(0);
                    stored.next();
                    count
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

fn add(map: &mut TagMap<i64>, tag: &str, delta: i64) {
    if delta == 0 {
        return;
    }
    match map.get_mut(tag) {
        Some(count) => {
            *count = count.saturating_add(delta);
            if *count == 0 {
                map.remove(tag);
            }
        }
        None => {
            map.insert(Arc::from(tag), delta);
        }
    }
}

impl TrendsView {
    pub fn new(layout: BucketLayout) -> Self {
        TrendsView {
            layout,
            partials: HashMap::new(),
            fine: BTreeMap::new(),
            coarse: BTreeMap::new(),
            totals: TagMap::default(),
            partial_spellings: HashMap::new(),
            spellings: TagMap::default(),
            displays: TagMap::default(),
            watermarks: HashMap::new(),
        }
    }

    /// The latest event time over all partitions.
    pub fn watermark(&self) -> Option<EpochMillis> {
        self.watermarks.values().copied().max()
    }

    /// Applies one counts-topic record.
    pub fn apply(&mut self, record: CountsRecord) {
        if let CountsKey::Watermark { partition } = record.key {
            match record.value {
                Some(w) => self.watermarks.insert(partition, w),
                None => self.watermarks.remove(&partition),
            };
            return;
        }
        let new = record.value.unwrap_or(0);
        let old = match record.value {
            Some(v) => self.partials.insert(record.key.clone(), v),
            None => self.partials.remove(&record.key),
        }
        .unwrap_or(0);
        let delta = new.saturating_sub(old);
        match &record.key {
            CountsKey::Bucket {
                resolution,
                start,
                tag,
                ..
            } => {
                let buckets = match resolution {
                    Resolution::Fine => &mut self.fine,
                    Resolution::Coarse => &mut self.coarse,
                };
                let bucket = buckets.entry(*start).or_default();
                // Copies the bucket only if a snapshot still shares it.
                let sums = Arc::make_mut(bucket);
                add(sums, tag, delta);
                if sums.is_empty() {
                    buckets.remove(start);
                }
            }
            CountsKey::Total { partition, tag } => {
                add(&mut self.totals, tag, delta);
                let slot = (*partition, tag.clone());
                let old = match record.value {
                    Some(_) => self.partial_spellings.insert(slot, record.spellings),
                    None => self.partial_spellings.remove(&slot),
                };
                let new = self
                    .partial_spellings
                    .get(&(*partition, tag.clone()))
                    .cloned()
                    .unwrap_or_default();
                self.apply_spellings(tag, old.as_deref().unwrap_or(&[]), &new);
            }
            CountsKey::Watermark { .. } => {}
        }
    }

    fn apply_spellings(&mut self, tag: &str, old: &[(String, i64)], new: &[(String, i64)]) {
        if old == new {
            return;
        }
        let key: Arc<str> = match self.spellings.get_key_value(tag) {
            Some((key, _)) => key.clone(),
            None => Arc::from(tag),
        };
        let sums = self.spellings.entry(key.clone()).or_default();
        for (spelling, count) in old {
            if let Some(n) = sums.get_mut(spelling) {
                *n = n.saturating_sub(*count);
                if *n <= 0 {
                    sums.remove(spelling);
                }
            }
        }
        for (spelling, count) in new {
            let n = sums.entry(spelling.clone()).or_insert(0);
            *n = n.saturating_add(*count);
        }
        // The most frequent spelling; ties go to the one that sorts first.
        let best = sums
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(s, _)| s.as_str());
        match best {
            None => {
                self.spellings.remove(tag);
                self.displays.remove(tag);
            }
            Some(best) if self.displays.get(tag).is_some_and(|d| **d == *best) => {}
            Some(best) => {
                let display = Arc::from(best);
                self.displays.insert(key, display);
            }
        }
    }

    fn display(&self, tag: &Arc<str>) -> Arc<str> {
        self.displays.get(tag).unwrap_or(tag).clone()
    }

    /// Sums and ranks every window at the current watermark.
    pub fn snapshot(&self) -> Snapshot {
        let watermark = self.watermark();
        let per_window: [TagMap<i64>; Window::ALL.len()] =
            Window::ALL.map(|window| match (window, watermark) {
                (Window::All, _) => self.totals.clone(),
                (_, None) => TagMap::default(),
                (_, Some(w)) => {
                    let mut sum: TagMap<i64> = TagMap::default();
                    if let Some((resolution, from, to)) = self.layout.window_range(window, w) {
                        let buckets = match resolution {
                            Resolution::Fine => &self.fine,
                            Resolution::Coarse => &self.coarse,
                        };
                        for bucket in buckets.range(from..=to).map(|(_, b)| b) {
                            for (tag, count) in bucket.iter() {
                                let n = sum.entry(tag.clone()).or_insert(0);
                                *n = n.saturating_add(*count);
                            }
                        }
                    }
                    sum
                }
            });
        let mut by_tag: TagMap<TagSummary> = TagMap::default();
        for (i, counts) in per_window.iter().enumerate() {
            for (tag, count) in counts {
                by_tag
                    .entry(tag.clone())
                    .or_insert_with(|| TagSummary {
                        counts: [0; Window::ALL.len()],
                        display: self.display(tag),
                    })
                    .counts[i] = *count;
            }
        }
        let ranked = per_window.map(|counts| {
            let mut list: Vec<RankedTag> = counts
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(|(tag, count)| {
                    let display = by_tag
                        .get(&tag)
                        .map_or_else(|| tag.clone(), |s| s.display.clone());
                    RankedTag {
                        tag,
                        count,
                        display,
                    }
                })
                .collect();
            list.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.tag.cmp(&b.tag)));
            list
        });
        // The buckets a series can ask for; older ones (kept until their tombstones arrive) are
        // left out.
        let shared = |window: Window, buckets: &BTreeMap<EpochMillis, Bucket>| match watermark
            .and_then(|w| self.layout.window_range(window, w))
        {
            Some((_, from, to)) => buckets
                .range(from..=to)
                .map(|(start, bucket)| (*start, bucket.clone()))
                .collect(),
            None => BTreeMap::new(),
        };
        Snapshot {
            watermark,
            layout: self.layout,
            ranked,
            by_name: Default::default(),
            by_tag,
            fine: shared(Window::H1, &self.fine),
            coarse: shared(Window::H24, &self.coarse),
        }
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
        assert_eq!(snap.tag("rustlang").map(|s| &*s.display), Some("RustLang"));
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
    fn brute_force<'a>(
        snap: &'a Snapshot,
        window: Window,
        prefix: &str,
        limit: usize,
    ) -> Vec<(usize, &'a RankedTag)> {
        snap.ranking(window)
            .iter()
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
        let got: Vec<(usize, &str)> = snap
            .top_with_prefix(Window::All, "rus", 10)
            .into_iter()
            .map(|(rank, r)| (rank, &*r.tag))
            .collect();
        assert_eq!(got, [(2, "rustlang"), (4, "rust"), (5, "rus")]);
        let got: Vec<(usize, &str)> = snap
            .top_with_prefix(Window::All, "ru", 2)
            .into_iter()
            .map(|(rank, r)| (rank, &*r.tag))
            .collect();
        assert_eq!(got, [(1, "ruby"), (2, "rustlang")]);
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
