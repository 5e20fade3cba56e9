//! The engine's queue of future instants: a priority queue of
//! `(instant, tag, id)` that pops in ascending order, like
//! `BinaryHeap<Reverse<_>>`, built for a queue of a million entries.
//!
//! A binary heap of that size pops through twenty levels of a 16 MiB
//! array, a cache miss per level. Here entries are dealt into buckets of
//! [`BUCKET_BITS`] nanoseconds (about 73 minutes): a push appends to its
//! bucket's vector; the earliest bucket, once reached, is sorted as a whole
//! and read from the front. Entries pushed into the bucket being read (or
//! an earlier one: nothing forbids it) go to a small heap beside it, so any
//! push is allowed at any time and the pop order is exactly the heap's.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use strata_data::Nanos;

pub type Entry = (Nanos, u8, u32);

/// 2^42 ns ≈ 73 min: a day's wake-ups in a few dozen buckets, each sorted
/// in cache; a year ahead in a few thousand, a small map.
const BUCKET_BITS: u32 = 42;

fn bucket(at: Nanos) -> i64 {
    at >> BUCKET_BITS
}

#[derive(Debug, Default)]
pub struct Schedule {
    /// The bucket being read: every entry of a bucket up to `current` is in
    /// `front` or `side`; later buckets are in `later`.
    current: Option<i64>,
    /// Sorted descending, so the next entry is popped off the end.
    front: Vec<Entry>,
    side: BinaryHeap<Reverse<Entry>>,
    later: BTreeMap<i64, Vec<Entry>>,
    len: usize,
}

impl Schedule {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, entry: Entry) {
        self.len += 1;
        let b = bucket(entry.0);
        if self.current.is_some_and(|c| b <= c) {
            self.side.push(Reverse(entry));
        } else {
            self.later.entry(b).or_default().push(entry);
        }
    }

    /// The smallest entry. When the open bucket is used up this scans the
    /// next one (once: the pop that follows sorts it).
    pub fn peek(&self) -> Option<Entry> {
        let front = self.front.last().copied();
        let side = self.side.peek().map(|r| r.0);
        match (front, side) {
            (Some(f), Some(s)) => Some(f.min(s)),
            (None, None) => self
                .later
                .first_key_value()
                .and_then(|(_, entries)| entries.iter().min().copied()),
            (f, s) => f.or(s),
        }
    }

    pub fn pop(&mut self) -> Option<Entry> {
        self.fill();
        let next = self.peek()?;
        self.len -= 1;
        if self.front.last() == Some(&next) {
            self.front.pop();
        } else {
            self.side.pop();
        }
        Some(next)
    }

    /// Opens the next bucket when the current one is used up.
    fn fill(&mut self) {
        if !self.front.is_empty() || !self.side.is_empty() {
            return;
        }
        let Some((b, mut entries)) = self.later.pop_first() else {
            return;
        };
        entries.sort_unstable_by(|a, b| b.cmp(a));
        self.front = entries;
        self.current = Some(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push(Nanos, u8, u32),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Instants a few buckets apart and within one, so pushes land in
        // the open bucket, before it and after it.
        let at = prop_oneof![
            0i64..(4i64 << BUCKET_BITS),
            (0i64..8).prop_map(|k| k << BUCKET_BITS),
            Just(i64::MAX),
            Just(i64::MIN),
        ];
        prop_oneof![
            3 => (at, 0u8..4, 0u32..50).prop_map(|(a, t, i)| Op::Push(a, t, i)),
            2 => Just(Op::Pop),
        ]
    }

    proptest! {
        #[test]
        fn pops_in_the_order_of_a_binary_heap(ops in prop::collection::vec(op(), 0..400)) {
            let mut reference = BinaryHeap::new();
            let mut schedule = Schedule::default();
            for op in ops {
                match op {
                    Op::Push(a, t, i) => {
                        reference.push(Reverse((a, t, i)));
                        schedule.push((a, t, i));
                    }
                    Op::Pop => {
                        prop_assert_eq!(schedule.peek(), reference.peek().map(|r| r.0));
                        prop_assert_eq!(schedule.pop(), reference.pop().map(|r| r.0));
                    }
                }
                prop_assert_eq!(schedule.len(), reference.len());
            }
            while let Some(Reverse(e)) = reference.pop() {
                prop_assert_eq!(schedule.pop(), Some(e));
            }
            prop_assert_eq!(schedule.pop(), None);
            prop_assert_eq!(schedule.len(), 0);
        }
    }
}
