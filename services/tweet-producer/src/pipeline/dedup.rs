//! Deduplication of re-delivered posts within a bounded horizon.
//!
//! Why: live sources re-deliver. A Jetstream reconnect resumes a few seconds before the last
//! event seen (so nothing is missed), and streaming APIs replay after a reconnect; without
//! this, every reconnect would count those posts twice. Why bounded: the stream is endless, so
//! "every id ever seen" is unbounded memory. The last `capacity` distinct ids are remembered
//! (a ring of insertion order plus a hash set); an id older than that is forgotten, which is
//! fine because re-deliveries are recent by nature. Capacity 0 disables it.

use std::collections::{HashSet, VecDeque};

/// Remembers the last `capacity` distinct ids.
#[derive(Debug)]
pub struct Dedup {
    capacity: usize,
    seen: HashSet<String>,
    order: VecDeque<String>,
}

impl Dedup {
    pub fn new(capacity: usize) -> Dedup {
        Dedup {
            capacity,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// `true` the first time `id` is seen within the horizon (and remembers it), `false` for a
    /// repeat.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_horizon_are_dropped() {
        let mut d = Dedup::new(3);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("c"));
        assert!(!d.first_time("b"));
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn the_oldest_id_is_forgotten_at_capacity() {
        let mut d = Dedup::new(2);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(d.first_time("c"), "evicts a");
        assert_eq!(d.len(), 2);
        assert!(!d.first_time("b"));
        assert!(!d.first_time("c"));
        assert!(d.first_time("a"), "a was beyond the horizon");
    }

    #[test]
    fn capacity_zero_disables_it() {
        let mut d = Dedup::new(0);
        assert!(d.first_time("a"));
        assert!(d.first_time("a"));
        assert!(d.is_empty());
    }
}
