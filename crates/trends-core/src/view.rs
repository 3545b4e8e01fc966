//! The API's read model: partial counts of every input partition, summed and ranked.
//!
//! [`TrendsView`] consumes counts-topic records in any order of partitions (within a partition,
//! in offset order) and keeps, per bucket, the sum over partitions. Since each record carries an
//! absolute per-partition value, the view remembers the last value per key and applies the
//! difference. [`TrendsView::snapshot`] turns it into an immutable [`Snapshot`]: for every
//! window, all tags ranked by count (descending, ties by tag ascending), ready to serve.
//!
//! Each tag also has a **display form**: its most frequent original spelling over all time
//! (summed over partitions; ties go to the spelling that sorts first), e.g. `RustLang` for the
//! counted form `rustlang`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::EpochMillis;
use crate::counts_record::{CountsKey, CountsRecord};
use crate::window::{BucketLayout, Resolution, Window};

/// Summed partial counts.
#[derive(Debug)]
pub struct TrendsView {
    layout: BucketLayout,
    partials: HashMap<CountsKey, i64>,
    fine: BTreeMap<EpochMillis, HashMap<Arc<str>, i64>>,
    coarse: BTreeMap<EpochMillis, HashMap<Arc<str>, i64>>,
    totals: HashMap<Arc<str>, i64>,
    /// Last spellings per (partition, tag), to subtract when a new value replaces them.
    partial_spellings: HashMap<(i32, String), Vec<(String, i64)>>,
    spellings: HashMap<Arc<str>, HashMap<String, i64>>,
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

/// An immutable, ranked picture of every window at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The latest event time seen on any partition; `None` before any data.
    pub watermark: Option<EpochMillis>,
    ranked: HashMap<Window, Vec<RankedTag>>,
    by_tag: HashMap<Arc<str>, TagSummary>,
}

impl Snapshot {
    /// The top `limit` tags of a window.
    pub fn top(&self, window: Window, limit: usize) -> &[RankedTag] {
        let ranked = self.ranked.get(&window).map(Vec::as_slice).unwrap_or(&[]);
        &ranked[..limit.min(ranked.len())]
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
}

fn add(map: &mut HashMap<Arc<str>, i64>, tag: &str, delta: i64) {
    if delta == 0 {
        return;
    }
    match map.get_mut(tag) {
        Some(count) => {
            *count += delta;
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
            totals: HashMap::new(),
            partial_spellings: HashMap::new(),
            spellings: HashMap::new(),
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
        let delta = new - old;
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
                add(bucket, tag, delta);
                if bucket.is_empty() {
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
        let sums = match self.spellings.get_mut(tag) {
            Some(sums) => sums,
            None => self.spellings.entry(Arc::from(tag)).or_default(),
        };
        for (spelling, count) in old {
            if let Some(n) = sums.get_mut(spelling) {
                *n -= count;
                if *n <= 0 {
                    sums.remove(spelling);
                }
            }
        }
        for (spelling, count) in new {
            *sums.entry(spelling.clone()).or_insert(0) += count;
        }
        if sums.is_empty() {
            self.spellings.remove(tag);
        }
    }

    fn display(&self, tag: &Arc<str>) -> Arc<str> {
        self.spellings
            .get(tag)
            .and_then(|sums| {
                sums.iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(s, _)| Arc::from(s.as_str()))
            })
            .unwrap_or_else(|| tag.clone())
    }

    /// Sums and ranks every window at the current watermark.
    pub fn snapshot(&self) -> Snapshot {
        let watermark = self.watermark();
        let mut per_window: Vec<HashMap<Arc<str>, i64>> = Vec::with_capacity(Window::ALL.len());
        for window in Window::ALL {
            let counts = match (window, watermark) {
                (Window::All, _) => self.totals.clone(),
                (_, None) => HashMap::new(),
                (_, Some(w)) => {
                    let mut sum: HashMap<Arc<str>, i64> = HashMap::new();
                    if let Some((resolution, from, to)) = self.layout.window_range(window, w) {
                        let buckets = match resolution {
                            Resolution::Fine => &self.fine,
                            Resolution::Coarse => &self.coarse,
                        };
                        for bucket in buckets.range(from..=to).map(|(_, b)| b) {
                            for (tag, count) in bucket {
                                *sum.entry(tag.clone()).or_insert(0) += count;
                            }
                        }
                    }
                    sum
                }
            };
            per_window.push(counts);
        }
        let mut by_tag: HashMap<Arc<str>, TagSummary> = HashMap::new();
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
        let ranked = Window::ALL
            .into_iter()
            .zip(per_window)
            .map(|(window, counts)| {
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
                (window, list)
            })
            .collect();
        Snapshot {
            watermark,
            ranked,
            by_tag,
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
}
