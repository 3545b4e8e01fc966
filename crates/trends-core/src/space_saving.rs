//! Space-Saving: the heavy hitters of a stream in bounded memory, with a proven error.
//!
//! A [`SpaceSaving`] counts keys exactly while it holds fewer than its capacity `K`. When a new
//! key arrives at a full table, the key with the smallest count is evicted and the newcomer
//! takes its place *with that count* (plus its own): the algorithm of Metwally, Agrawal and
//! El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data Streams" (ICDT
//! 2005). What it guarantees, for a stream of `N` increments:
//!
//! - below capacity nothing is evicted and every count is exact (`error == 0`);
//! - every held key has `count − error ≤ true count ≤ count`: the count never under-estimates,
//!   and `error` (the count it inherited) bounds the over-estimate;
//! - `error ≤ floor ≤ N / K`, where `floor` is the largest count ever evicted: the counts of a
//!   full table sum to `N`, so its smallest is at most `N / K`;
//! - a key not held has a true count of at most `floor`; so every key seen more than `N / K`
//!   times is held, and the top of the table is the top of the stream within `N / K`.
//!
//! **Why Space-Saving and not the frequent-items sketch** (Misra–Gries with a purge, as in
//! Apache DataSketches): both bound the error by `O(N / K)`, but a Misra–Gries purge lowers
//! *every* count at once. Our counts are published as absolute values to a compacted topic, so
//! each purge would re-publish the whole table. A Space-Saving count only ever grows, an
//! eviction changes one key (a tombstone), and the published state changes only where the
//! stream did. The `datasketches` crate would also add a dependency for a 150-line structure.
//!
//! **Memory.** Counts live in one map of `key → count`; the errors, zero for every key admitted
//! before the table filled (almost all of them, below capacity all), in a second map holding
//! the non-zero ones only. A bucket entry is then a `u32` key and a `u32` count, as it was
//! before tables were bounded.
//!
//! **Finding the smallest count** without a scan: a min-heap of `(count, key)` built the first
//! time the table is full (never below capacity, so an exact table costs no heap). Counts grow
//! without touching the heap; when the top entry is stale (its key's count grew since it was
//! pushed) it is pushed again with the current count. Each re-push follows at least one
//! increment, so an eviction costs `O(log K)` amortized, and the heap holds one entry per key.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};

/// A count type: `u32` for buckets (a bucket never sees four billion posts), `i64` for all-time
/// totals.
pub trait Count: Copy + Ord + Default + Debug {
    /// `self + other`, at most the type's maximum.
    fn plus(self, other: Self) -> Self;
}

impl Count for u32 {
    fn plus(self, other: u32) -> u32 {
        self.saturating_add(other)
    }
}

impl Count for i64 {
    fn plus(self, other: i64) -> i64 {
        self.saturating_add(other)
    }
}

/// A key's count and how much it may exceed the true count: the true count is within
/// `count − error ..= count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate<C> {
    pub count: C,
    pub error: C,
}

/// What [`SpaceSaving::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added<C> {
    /// The key's estimate after the increment.
    pub estimate: Estimate<C>,
    /// The key was not held before (it was admitted, maybe in place of an evicted one).
    pub admitted: bool,
}

/// Counts of at most `capacity` keys (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SpaceSaving<K, C, S> {
    capacity: usize,
    counts: HashMap<K, C, S>,
    /// The non-zero errors (keys admitted into a full table).
    errors: HashMap<K, C, S>,
    /// `(count, key)` of every held key, some counts stale (lower than the key's count now);
    /// built when the table first needs an eviction, dropped when keys are set or removed
    /// from outside (a restore).
    heap: Option<BinaryHeap<Reverse<(C, K)>>>,
    /// The largest count evicted so far: the most a key not held may have had.
    floor: C,
    evictions: u64,
}

impl<K, C, S> SpaceSaving<K, C, S>
where
    K: Copy + Eq + Hash + Ord,
    C: Count,
    S: BuildHasher + Default,
{
    /// An empty table holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            counts: HashMap::default(),
            errors: HashMap::default(),
            heap: None,
            floor: C::default(),
            evictions: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The largest count evicted so far (zero while nothing was): no key that is not held has
    /// a true count above it.
    pub fn floor(&self) -> C {
        self.floor
    }

    /// Raises the floor to at least `floor` (a restore: the floor the table had before).
    pub fn raise_floor(&mut self, floor: C) {
        self.floor = self.floor.max(floor);
    }

    /// How many keys were evicted since the table was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn error(&self, key: &K) -> C {
        if self.errors.is_empty() {
            return C::default();
        }
        self.errors.get(key).copied().unwrap_or_default()
    }

    pub fn get(&self, key: &K) -> Option<Estimate<C>> {
        let count = *self.counts.get(key)?;
        Some(Estimate {
            count,
            error: self.error(key),
        })
    }

    pub fn contains(&self, key: &K) -> bool {
        self.counts.contains_key(key)
    }

    /// Every held key with its estimate, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (K, Estimate<C>)> + '_ {
        self.counts.iter().map(|(k, &count)| {
            (
                *k,
                Estimate {
                    count,
                    error: self.error(k),
                },
            )
        })
    }

    /// Counts `n` more for `key`. A key not held is admitted; if the table is full, the key
    /// with the smallest count is evicted first and handed to `evicted`, and the newcomer
    /// starts from that count (its `error`).
    pub fn add(&mut self, key: K, n: C, mut evicted: impl FnMut(K, Estimate<C>)) -> Added<C> {
        let full = self.counts.len() >= self.capacity;
        match self.counts.entry(key) {
            Entry::Occupied(mut entry) => {
                let count = entry.get().plus(n);
                *entry.get_mut() = count;
                return Added {
                    estimate: Estimate {
                        count,
                        error: self.error(&key),
                    },
                    admitted: false,
                };
            }
            // The common case below capacity: one hash lookup, no eviction, no error.
            Entry::Vacant(entry) if !full => {
                entry.insert(n);
                if let Some(heap) = &mut self.heap {
                    heap.push(Reverse((n, key)));
                }
                return Added {
                    estimate: Estimate {
                        count: n,
                        error: C::default(),
                    },
                    admitted: true,
                };
            }
            Entry::Vacant(_) => {}
        }
        let mut inherited = C::default();
        while self.counts.len() >= self.capacity {
            let Some((old, estimate)) = self.pop_min() else {
                break;
            };
            inherited = inherited.max(estimate.count);
            self.floor = self.floor.max(estimate.count);
            self.evictions += 1;
            evicted(old, estimate);
        }
        let estimate = Estimate {
            count: inherited.plus(n),
            error: inherited,
        };
        self.counts.insert(key, estimate.count);
        if inherited != C::default() {
            self.errors.insert(key, inherited);
        }
        if let Some(heap) = &mut self.heap {
            heap.push(Reverse((estimate.count, key)));
        }
        Added {
            estimate,
            admitted: true,
        }
    }

    /// Removes and returns the held key with the smallest count.
    fn pop_min(&mut self) -> Option<(K, Estimate<C>)> {
        let counts = &self.counts;
        let heap = self
            .heap
            .get_or_insert_with(|| counts.iter().map(|(k, &c)| Reverse((c, *k))).collect());
        while let Some(Reverse((count, key))) = heap.pop() {
            match self.counts.get(&key) {
                // Removed since it was pushed.
                None => {}
                Some(&now) if now == count => {
                    self.counts.remove(&key);
                    let error = self.errors.remove(&key).unwrap_or_default();
                    return Some((key, Estimate { count, error }));
                }
                // Grew since it was pushed: push it again where it belongs now.
                Some(&now) => heap.push(Reverse((now, key))),
            }
        }
        None
    }

    /// Sets `key`'s estimate as it was written before (a restore). May hold more keys than the
    /// capacity (a restore after the capacity was lowered): the next admissions evict down to
    /// it. Returns whether the key is new.
    pub fn set(&mut self, key: K, estimate: Estimate<C>) -> bool {
        self.heap = None;
        if estimate.error == C::default() {
            self.errors.remove(&key);
        } else {
            self.errors.insert(key, estimate.error);
        }
        self.counts.insert(key, estimate.count).is_none()
    }

    /// Forgets `key` (a restored tombstone); returns what it held.
    pub fn remove(&mut self, key: &K) -> Option<Estimate<C>> {
        self.heap = None;
        let error = self.errors.remove(key).unwrap_or_default();
        let count = self.counts.remove(key)?;
        Some(Estimate { count, error })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdMap;
    use std::hash::RandomState;

    use proptest::prelude::*;

    use super::*;

    type Table = SpaceSaving<u32, i64, RandomState>;

    fn run(capacity: usize, stream: &[u32]) -> (Table, StdMap<u32, i64>, Vec<u32>) {
        let mut table = Table::new(capacity);
        let mut truth: StdMap<u32, i64> = StdMap::new();
        let mut evicted = Vec::new();
        for &key in stream {
            *truth.entry(key).or_default() += 1;
            table.add(key, 1, |k, _| evicted.push(k));
        }
        (table, truth, evicted)
    }

    #[test]
    fn below_capacity_every_count_is_exact() {
        let stream: Vec<u32> = (0..1000).map(|i| (i * 7919) % 100).collect();
        let (table, truth, evicted) = run(100, &stream);
        assert!(evicted.is_empty());
        assert_eq!(table.len(), truth.len());
        for (key, count) in &truth {
            assert_eq!(
                table.get(key),
                Some(Estimate {
                    count: *count,
                    error: 0
                })
            );
        }
        assert_eq!(table.floor(), 0);
    }

    #[test]
    fn a_newcomer_inherits_the_smallest_count() {
        let mut table = Table::new(2);
        for key in [1, 1, 1, 2, 2, 3] {
            table.add(key, 1, |_, _| {});
        }
        // 2 (count 2) was the smallest when 3 came: 3 starts at 2 + 1, error 2.
        assert_eq!(table.get(&2), None);
        assert_eq!(table.get(&3), Some(Estimate { count: 3, error: 2 }));
        assert_eq!(table.get(&1), Some(Estimate { count: 3, error: 0 }));
        assert_eq!(table.floor(), 2);
        assert_eq!(table.evictions(), 1);
    }

    #[test]
    fn a_flood_of_one_off_keys_keeps_the_heavy_hitters_exactly() {
        // Three heavy keys interleaved with 100,000 keys seen once each, capacity 1,000.
        let mut stream = Vec::new();
        for i in 0..100_000u32 {
            stream.push(1_000_000 + i);
            if i % 10 == 0 {
                stream.push(1);
                stream.push(2);
            }
            if i % 100 == 0 {
                stream.push(3);
            }
        }
        let (table, truth, _) = run(1_000, &stream);
        assert!(table.len() <= 1_000);
        let n = stream.len() as i64;
        for key in [1, 2, 3] {
            let estimate = table.get(&key).expect("a heavy hitter is held");
            assert!(estimate.count - estimate.error <= truth[&key]);
            assert!(truth[&key] <= estimate.count);
            assert!(estimate.error <= n / 1_000);
        }
    }

    proptest! {
        /// The guarantees of the module docs, against counts kept exactly in the test.
        #[test]
        fn bounds_hold_for_any_stream(
            capacity in 1usize..40,
            stream in proptest::collection::vec(
                prop_oneof![0u32..10, 0u32..200, 1_000u32..100_000], 0..2_000),
        ) {
            let (table, truth, _) = run(capacity, &stream);
            let n = stream.len() as i64;
            let k = capacity as i64;
            prop_assert!(table.len() <= capacity);
            if truth.len() <= capacity {
                prop_assert_eq!(table.evictions(), 0);
            }
            let mut sum = 0;
            for (key, estimate) in table.iter() {
                let true_count = truth[&key];
                prop_assert!(estimate.count - estimate.error <= true_count);
                prop_assert!(true_count <= estimate.count);
                prop_assert!(estimate.error <= table.floor());
                sum += estimate.count;
            }
            prop_assert!(table.floor() * k <= n, "floor {} > N/K", table.floor());
            if table.len() == capacity {
                prop_assert_eq!(sum, n, "a full table's counts sum to N");
            }
            for (key, true_count) in &truth {
                if !table.contains(key) {
                    prop_assert!(*true_count <= table.floor());
                }
            }
        }
    }

    #[test]
    fn a_restored_table_over_capacity_evicts_down_to_it() {
        let mut table = Table::new(2);
        for key in 0..5 {
            table.set(
                key,
                Estimate {
                    count: key as i64 + 1,
                    error: 0,
                },
            );
        }
        let mut evicted = Vec::new();
        table.add(9, 1, |k, _| evicted.push(k));
        assert_eq!(evicted, vec![0, 1, 2, 3]);
        assert_eq!(table.get(&9), Some(Estimate { count: 5, error: 4 }));
        assert_eq!(table.len(), 2);
    }
}
