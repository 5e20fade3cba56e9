//! An append-only vector kept in fixed-size chunks.
//!
//! The store's tables of lines, orders and customers hold millions of rows
//! and only grow. In one `Vec`, the push that crosses the capacity copies
//! the whole table: measured on the 1M demo, the first replayed order paid
//! 12–14 ms for it with glibc's `mremap` and 2.6–3.4 s with jemalloc,
//! which copies. A change's latency must not depend on where a table's
//! length falls, so a row is never moved once stored: a push past the end
//! of the last chunk starts a new one, and only the small list of chunks
//! ever reallocates.

use std::ops::{Index, IndexMut};

/// Rows per chunk: a power of two, so that a row's chunk is a shift.
/// 65,536 rows of 64 bytes is 4 MiB, two huge pages.
const SHIFT: u32 = 16;
const CHUNK: usize = 1 << SHIFT;
const MASK: usize = CHUNK - 1;

#[derive(Debug)]
pub struct Chunked<T> {
    /// Every chunk but the last holds exactly `CHUNK` rows; the last holds
    /// at least one.
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new() }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn push(&mut self, row: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(row),
            _ => {
                let mut fresh = Vec::with_capacity(CHUNK);
                fresh.push(row);
                self.chunks.push(fresh);
            }
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> SHIFT][i & MASK]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> SHIFT][i & MASK]
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a mut Chunked<T> {
    type Item = &'a mut T;
    type IntoIter = std::iter::Flatten<std::slice::IterMut<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference is a plain `Vec`; lengths run over several chunks so
    /// that the boundaries are crossed.
    fn check(n: usize, writes: &[(usize, u32)]) {
        let mut reference: Vec<u32> = Vec::new();
        let mut chunked = Chunked::default();
        for i in 0..n {
            let v = (i as u32).wrapping_mul(2_654_435_761);
            reference.push(v);
            chunked.push(v);
            assert_eq!(chunked.len(), reference.len());
            assert_eq!(chunked[i], v, "row {i} as pushed");
        }
        for &(i, v) in writes {
            if n > 0 {
                reference[i % n] = v;
                chunked[i % n] = v;
            }
        }
        for i in [0, MASK, CHUNK, CHUNK + 1, n.saturating_sub(1)] {
            if i < n {
                assert_eq!(chunked[i], reference[i], "row {i} of {n}");
            }
        }
        assert!(chunked.iter().eq(reference.iter()));
        assert!(chunked.iter().rev().eq(reference.iter().rev()));
        assert!((&chunked).into_iter().eq(reference.iter()));
        for row in &mut chunked {
            *row ^= 1;
        }
        for row in &mut reference {
            *row ^= 1;
        }
        assert!(chunked.iter().eq(reference.iter()));
        assert_eq!(chunked.is_empty(), reference.is_empty());
    }

    #[test]
    fn chunk_boundaries() {
        for n in [0, 1, MASK, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7] {
            check(n, &[(n / 2, 7), (CHUNK, 9)]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn behaves_as_a_vec(n in 0usize..4 * CHUNK, writes in prop::collection::vec((any::<usize>(), any::<u32>()), 0..20)) {
            check(n, &writes);
        }
    }
}
