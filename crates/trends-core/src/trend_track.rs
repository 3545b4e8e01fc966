//! The trend track: distinct authors per tag and language, per bucket, on one input partition.
//!
//! Ranking by posts lets 20 accounts posting a tag 10,000 times beat 1,000 people posting it
//! once. The trend score (see [`crate::trend`]) therefore counts **authors**: an author counts
//! at most once per (tag, language, coarse bucket), in the fine bucket of their first post with
//! the tag in that coarse bucket. So the `5m` window holds an author at most twice (it can
//! straddle two coarse buckets), the `24h` window at most 288 times, however much they post.
//! A post without `author_id` counts as its own author.
//!
//! **Exact per partition, summed by the API.** tweet-producer keys the `tweets` topic by
//! author (the post id when there is none), so all posts of an author land on one partition
//! and the per-partition author counts add up to exact totals. A topic keyed otherwise still
//! works: an author posting to several partitions then counts once per partition.
//!
//! **Bounded memory, not by the number of authors.** Which (tag, language, bucket, author)
//! combinations were already counted lives in [`SeenSet`]: a fixed table of 64-bit
//! fingerprints, set-associative (4 ways), least recently used out. Its size is configuration
//! (`aggregator.author_dedup_slots`), never the input's: when a bucket has more distinct
//! combinations than fit, the least recently seen are forgotten and an author whose entry was
//! forgotten counts again (an over-count, reported by [`TrendTrack::dedup_evictions`]). Frequent
//! posters (the floods this is for) stay in the table because every post refreshes them. The
//! table is not in the changelog: after a restore it starts empty, so an author active in the
//! current bucket may count once more.
//!
//! **Backdated posts.** Authors count only for posts in the watermark's coarse bucket or the one
//! before; an older post still counts as a post (and in its language's volume) but not as an
//! author, so backdating posts across 288 buckets cannot multiply one account.
//!
//! **Posts per language.** Every post also counts, without deduplication, for each of its
//! tags in its language (exact per-language counts: `sort=count&lang=…`) and once under its
//! language with an empty tag (the language's volume, which `GET /api/v1/languages` lists).
//!
//! The counting itself is two [`PartitionCounter`]s whose "tags" are `lang|tag` names, without
//! all-time counts: authors with two days of coarse buckets (the baseline reads yesterday),
//! posts with one. Their records are mapped to and from [`CountsKey::Language`].

use std::hash::BuildHasher;

use crate::EpochMillis;
use crate::counter::{Capacity, PartitionCounter};
use crate::counts_record::{CountsKey, CountsRecord, Measure};
use crate::tags::PostTag;
use crate::window::{BucketLayout, Resolution};

/// Coarse buckets the trend track keeps: two days, so the `24h` window has a previous day and
/// every window the same hour yesterday.
pub const HISTORY_MS: i64 = 2 * 86_400_000;

/// Ways per set of the [`SeenSet`].
const WAYS: usize = 4;

/// A bounded set of 64-bit fingerprints: `slots / 4` sets of 4 ways, least recently used out.
/// 0 marks an empty way (a fingerprint of 0 is stored as 1: one in 2⁶⁴ merges with it).
#[derive(Debug)]
pub struct SeenSet {
    ways: Vec<[u64; WAYS]>,
    evictions: u64,
}

impl SeenSet {
    /// A table of at least `slots` fingerprints (rounded up to a power of two, at least 4):
    /// 8 bytes each.
    pub fn new(slots: usize) -> SeenSet {
        let sets = slots.div_ceil(WAYS).next_power_of_two().max(1);
        SeenSet {
            ways: vec![[0; WAYS]; sets],
            evictions: 0,
        }
    }

    /// Whether `fingerprint` was present; it is the most recently used of its set afterwards.
    pub fn check_and_insert(&mut self, fingerprint: u64) -> bool {
        let fingerprint = fingerprint.max(1);
        let mask = self.ways.len() - 1;
        // The set from the high bits, so sets and fingerprints are not the same bits.
        let set = &mut self.ways[((fingerprint >> 32) as usize ^ fingerprint as usize) & mask];
        let found = set.iter().position(|&f| f == fingerprint);
        let end = match found {
            Some(i) => i,
            None => {
                if set[WAYS - 1] != 0 {
                    self.evictions += 1;
                }
                WAYS - 1
            }
        };
        // Move to the front: ways 0..end shift down by one.
        set.copy_within(0..end, 1);
        set[0] = fingerprint;
        found.is_some()
    }

    /// Fingerprints pushed out to make room, since the set was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Bytes the table holds.
    pub fn bytes(&self) -> usize {
        self.ways.len() * WAYS * 8
    }
}

/// One input partition's trend track: the author deduplication, the author counts and the
/// posts per language.
#[derive(Debug)]
pub struct TrendTrack {
    authors: PartitionCounter,
    posts: PartitionCounter,
    layout: BucketLayout,
    seen: SeenSet,
    /// Seeded per process: fingerprints of tags and authors chosen by posters.
    hasher: foldhash::quality::RandomState,
    /// Reused for each post's `lang|tag` names: all of them (posts), the first-time ones
    /// (authors).
    names: Vec<PostTag>,
    new_authors: Vec<PostTag>,
}

impl TrendTrack {
    /// A track for `partition` counting up to `capacity.bucket_tags` series per bucket, with a
    /// dedup table of `dedup_slots` fingerprints.
    pub fn new(
        partition: i32,
        layout: BucketLayout,
        capacity: Capacity,
        dedup_slots: usize,
    ) -> TrendTrack {
        let buckets = HISTORY_MS / layout.coarse_ms;
        let authors = PartitionCounter::with_capacity(partition, layout, capacity)
            .with_coarse_retention(buckets)
            .without_all_time();
        let posts = PartitionCounter::with_capacity(partition, layout, capacity).without_all_time();
        TrendTrack {
            authors,
            posts,
            layout,
            seen: SeenSet::new(dedup_slots),
            hasher: foldhash::quality::RandomState::default(),
            names: Vec::new(),
            new_authors: Vec::new(),
        }
    }

    /// Counts one post: `lang` is its [`crate::lang::code`], `author` its author (or its id:
    /// a post without author is its own author), `tags` its normalized tags.
    pub fn record(
        &mut self,
        event_time: EpochMillis,
        lang: &str,
        author: Author<'_>,
        tags: &[PostTag],
    ) {
        let coarse = self.layout.bucket_start(Resolution::Coarse, event_time);
        let newest = self.authors.watermark().map_or(coarse, |w| {
            self.layout
                .bucket_start(Resolution::Coarse, w.max(event_time))
        });
        let counts_authors = coarse >= newest - self.layout.coarse_ms;
        let (mut all, mut first) = (0, 0);
        set_name(&mut self.names, &mut all, lang, "");
        for t in tags {
            set_name(&mut self.names, &mut all, lang, &t.tag);
            if counts_authors {
                let fingerprint = self.hasher.hash_one((
                    coarse,
                    lang,
                    t.tag.as_str(),
                    author.kind(),
                    author.id(),
                ));
                if !self.seen.check_and_insert(fingerprint) {
                    set_name(&mut self.new_authors, &mut first, lang, &t.tag);
                }
            }
        }
        self.posts.record(event_time, &self.names[..all]);
        self.authors.record(event_time, &self.new_authors[..first]);
    }

    /// Applies a record read back from the counts topic: the partition's watermark and its
    /// per-language records; everything else is ignored.
    pub fn restore(&mut self, record: CountsRecord) {
        let CountsRecord {
            key, value, error, ..
        } = record;
        match key {
            CountsKey::Watermark { .. } => {
                self.authors.restore(CountsRecord::new(key.clone(), value));
                self.posts.restore(CountsRecord::new(key, value));
            }
            CountsKey::Language {
                partition,
                measure,
                resolution,
                start,
                lang,
                tag,
            } => {
                let key = CountsKey::Bucket {
                    partition,
                    resolution,
                    start,
                    tag: format!("{lang}|{tag}"),
                };
                let record = CountsRecord::new(key, value).with_error(error);
                match measure {
                    Measure::Authors => self.authors.restore(record),
                    Measure::Posts => self.posts.restore(record),
                }
            }
            CountsKey::Bucket { .. } | CountsKey::Total { .. } | CountsKey::Checkpoint { .. } => {}
        }
    }

    /// Every change since the last call, as [`CountsKey::Language`] records (absolute values,
    /// tombstones for expired buckets and evicted series).
    pub fn take_updates(&mut self) -> Vec<CountsRecord> {
        let mut updates = language_records(self.authors.take_updates(), Measure::Authors);
        updates.extend(language_records(self.posts.take_updates(), Measure::Posts));
        updates
    }

    /// Fingerprints forgotten to make room (each may have let an author count twice).
    pub fn dedup_evictions(&self) -> u64 {
        self.seen.evictions()
    }

    /// Bytes of the deduplication table.
    pub fn dedup_bytes(&self) -> usize {
        self.seen.bytes()
    }

    /// (bucket, series) entries held, for memory metrics.
    pub fn entries(&self) -> usize {
        self.authors.entries() + self.posts.entries()
    }
}

/// Sets `names[*used]` to `lang|tag` (reusing its buffer) and counts it.
fn set_name(names: &mut Vec<PostTag>, used: &mut usize, lang: &str, tag: &str) {
    if names.len() == *used {
        names.push(PostTag {
            tag: String::new(),
            spelling: String::new(),
        });
    }
    let name = &mut names[*used].tag;
    name.clear();
    name.push_str(lang);
    name.push('|');
    name.push_str(tag);
    *used += 1;
}

/// A counter's `lang|tag` bucket records as [`CountsKey::Language`] records of `measure`; its
/// watermark and anything else dropped (the main counter writes the watermark).
fn language_records(mut updates: Vec<CountsRecord>, measure: Measure) -> Vec<CountsRecord> {
    updates.retain_mut(|record| {
        let CountsKey::Bucket {
            partition,
            resolution,
            start,
            tag,
        } = &mut record.key
        else {
            return false;
        };
        let Some((lang, tag)) = tag.split_once('|') else {
            return false;
        };
        record.key = CountsKey::Language {
            partition: *partition,
            measure,
            resolution: *resolution,
            start: *start,
            lang: lang.to_string(),
            tag: tag.to_string(),
        };
        true
    });
    updates
}

/// Who wrote a post, for deduplication: its author, or the post itself when it names none.
#[derive(Debug, Clone, Copy)]
pub enum Author<'a> {
    Id(&'a str),
    /// No `author_id`: the post (by id) is its own author.
    Post(&'a str),
}

impl<'a> Author<'a> {
    /// The post's author, or the post when it has none.
    pub fn of(author_id: Option<&'a str>, post_id: &'a str) -> Author<'a> {
        match author_id {
            Some(id) => Author::Id(id),
            None => Author::Post(post_id),
        }
    }

    fn kind(self) -> u8 {
        match self {
            Author::Id(_) => 0,
            Author::Post(_) => 1,
        }
    }

    fn id(self) -> &'a str {
        match self {
            Author::Id(id) | Author::Post(id) => id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts_record::CountsRecord;

    fn tags(names: &[&str]) -> Vec<PostTag> {
        names
            .iter()
            .map(|n| PostTag {
                tag: n.to_string(),
                spelling: n.to_string(),
            })
            .collect()
    }

    /// Latest value of every key in `records`.
    fn state(records: &[CountsRecord]) -> std::collections::BTreeMap<String, i64> {
        let mut state = std::collections::BTreeMap::new();
        for r in records {
            match r.value {
                Some(v) => state.insert(r.key.encode(), v),
                None => state.remove(&r.key.encode()),
            };
        }
        state
    }

    const T0: EpochMillis = 1_795_435_200_000; // 12:00:00, a coarse bucket start

    #[test]
    fn an_author_counts_once_per_tag_and_coarse_bucket_in_the_fine_bucket_of_their_first_post() {
        let mut track = TrendTrack::new(3, BucketLayout::default(), Capacity::DEFAULT, 1024);
        // Author 1 posts #rust 50 times over 4 minutes; author 2 once; a post without author.
        for i in 0..50 {
            track.record(T0 + i * 5_000, "en", Author::Id("1"), &tags(&["rust"]));
        }
        track.record(
            T0 + 15_000,
            "en",
            Author::Id("2"),
            &tags(&["rust", "kafka"]),
        );
        track.record(T0 + 15_000, "ja", Author::Post("p9"), &tags(&["rust"]));
        // Next coarse bucket: author 1 counts again.
        track.record(T0 + 300_000, "en", Author::Id("1"), &tags(&["rust"]));
        let s = state(&track.take_updates());
        let f = |start: i64, rest: &str| s.get(&format!("3|u|f|{start}|{rest}")).copied();
        let c = |start: i64, rest: &str| s.get(&format!("3|u|c|{start}|{rest}")).copied();
        let posts = |start: i64, rest: &str| s.get(&format!("3|l|c|{start}|{rest}")).copied();
        assert_eq!(f(T0, "en|rust"), Some(1));
        assert_eq!(f(T0 + 10_000, "en|rust"), Some(1)); // author 2
        assert_eq!(f(T0 + 20_000, "en|rust"), None); // author 1 again: not counted
        assert_eq!(c(T0, "en|rust"), Some(2));
        assert_eq!(c(T0, "en|kafka"), Some(1));
        assert_eq!(c(T0, "ja|rust"), Some(1));
        assert_eq!(c(T0 + 300_000, "en|rust"), Some(1));
        // Posts per language and tag, and the language volume: every post.
        assert_eq!(posts(T0, "en|rust"), Some(51));
        assert_eq!(posts(T0, "en|kafka"), Some(1));
        assert_eq!(posts(T0, "en|"), Some(51));
        assert_eq!(posts(T0, "ja|"), Some(1));
        assert_eq!(c(T0, "en|"), None);
        assert!(s.keys().all(|k| !k.contains("|w") && !k.contains("|a|")));
    }

    #[test]
    fn backdated_posts_count_as_posts_but_not_as_authors() {
        let mut track = TrendTrack::new(0, BucketLayout::default(), Capacity::DEFAULT, 1024);
        track.record(T0 + 3_600_000, "en", Author::Id("1"), &tags(&["x"]));
        for hour in 1..=5 {
            track.record(
                T0 + 3_600_000 - hour * 300_000,
                "en",
                Author::Id("1"),
                &tags(&["x"]),
            );
        }
        let s = state(&track.take_updates());
        let authors: i64 = s
            .iter()
            .filter(|(k, _)| k.contains("|u|c|") && k.ends_with("|en|x"))
            .map(|(_, v)| v)
            .sum();
        let posts: i64 = s
            .iter()
            .filter(|(k, _)| k.contains("|l|c|") && k.ends_with("|en|"))
            .map(|(_, v)| v)
            .sum();
        // The 5-minute-old post is in the previous coarse bucket: it counts; older ones do not.
        assert_eq!(authors, 2);
        assert_eq!(posts, 6);
    }

    #[test]
    fn a_restored_track_continues_where_the_records_left_off() {
        let layout = BucketLayout::default();
        let mut a = TrendTrack::new(1, layout, Capacity::DEFAULT, 1024);
        a.record(T0, "en", Author::Id("1"), &tags(&["rust"]));
        let mut log = a.take_updates();
        log.push(CountsRecord::new(
            CountsKey::Watermark { partition: 1 },
            Some(T0),
        ));
        let mut b = TrendTrack::new(1, layout, Capacity::DEFAULT, 1024);
        for r in &log {
            b.restore(r.clone());
        }
        b.record(T0 + 1_000, "en", Author::Id("2"), &tags(&["rust"]));
        let s = state(&b.take_updates());
        assert_eq!(s.get(&format!("1|u|c|{T0}|en|rust")), Some(&2));
        assert_eq!(s.get(&format!("1|l|c|{T0}|en|rust")), Some(&2));
    }

    #[test]
    fn the_seen_set_is_bounded_and_forgets_the_least_recently_seen() {
        let mut seen = SeenSet::new(4);
        assert_eq!(seen.bytes(), 32);
        // One set of 4 ways: 5 distinct fingerprints that map to it push the first out.
        let same_set = |i: u64| i; // high bits 0, low bits i: all in set 0 of 1
        for i in 1..=4 {
            assert!(!seen.check_and_insert(same_set(i)));
        }
        assert!(seen.check_and_insert(1)); // refreshed: most recent
        assert!(!seen.check_and_insert(5)); // pushes out 2, the least recent
        assert_eq!(seen.evictions(), 1);
        assert!(seen.check_and_insert(1));
        assert!(!seen.check_and_insert(2));
    }

    #[test]
    fn two_days_of_coarse_buckets_are_kept() {
        let mut track = TrendTrack::new(0, BucketLayout::default(), Capacity::DEFAULT, 1024);
        track.record(T0, "en", Author::Id("1"), &tags(&["x"]));
        track.record(T0 + 47 * 3_600_000, "en", Author::Id("1"), &tags(&["x"]));
        let s = state(&track.take_updates());
        assert!(s.contains_key(&format!("0|u|c|{T0}|en|x")));
        track.record(T0 + 48 * 3_600_000, "en", Author::Id("1"), &tags(&["x"]));
        let s2 = track.take_updates();
        assert!(
            s2.iter()
                .any(|r| r.key.encode() == format!("0|u|c|{T0}|en|x") && r.value.is_none())
        );
    }
}
