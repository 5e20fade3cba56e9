//! Values kept per (product segment, product) pair: each pair's quiet
//! instant (before it, time alone cannot move the pair's truth,
//! [`crate::eval::Evaluator::product_quiet`]) and its headroom (the added
//! lines it takes before the pair can enter,
//! [`crate::eval::Evaluator::product_headroom`]).
//!
//! Every evaluation of a product for a change writes its pairs' values
//! (mostly back to the floor: every wake looks, every line looks), and a
//! settle evaluates a product's pairs one after the other. A row per
//! product keeps those writes on a few cache lines; a row per segment put
//! each on its own, a cache miss per pair in a store of a hundred thousand
//! products.

use strata_data::Nanos;

/// Quiet instants; a missing entry reads `Nanos::MIN`.
pub type Quiet = PairTable<Nanos>;

impl Default for Quiet {
    fn default() -> Self {
        PairTable::new(Nanos::MIN)
    }
}

/// Values by pair, product-major: a column per product segment slot that
/// has ever held a value above the floor (a slot gets one the first time),
/// a row per product up to the last that has one. A missing entry reads
/// the floor.
#[derive(Clone, Debug)]
pub struct PairTable<T> {
    floor: T,
    /// Each slot's column.
    cols: Vec<Option<u32>>,
    width: usize,
    table: Vec<T>,
}

impl<T: Copy + PartialEq> PairTable<T> {
    pub fn new(floor: T) -> PairTable<T> {
        PairTable {
            floor,
            cols: Vec::new(),
            width: 0,
            table: Vec::new(),
        }
    }

    /// The value of slot `s`'s pair with product `e`.
    pub fn get(&self, s: u32, e: u32) -> T {
        self.cols
            .get(s as usize)
            .copied()
            .flatten()
            .and_then(|c| self.table.get(e as usize * self.width + c as usize))
            .copied()
            .unwrap_or(self.floor)
    }

    pub fn set(&mut self, s: u32, e: u32, q: T) {
        let s = s as usize;
        let floor = q == self.floor;
        if s >= self.cols.len() {
            if floor {
                return;
            }
            self.cols.resize(s + 1, None);
        }
        let c = match self.cols[s] {
            Some(c) => c as usize,
            None if floor => return,
            None => self.widen(s),
        };
        let i = e as usize * self.width + c;
        if i >= self.table.len() {
            if floor {
                return;
            }
            self.table.resize((e as usize + 1) * self.width, self.floor);
        }
        self.table[i] = q;
    }

    /// Forgets slot `s`'s values (its rule changed, or it is gone).
    pub fn reset(&mut self, s: u32) {
        if let Some(&Some(c)) = self.cols.get(s as usize) {
            for row in self.table.chunks_mut(self.width) {
                row[c as usize] = self.floor;
            }
        }
    }

    /// Gives slot `s` a column: every row is laid out again, once per
    /// product segment over the engine's life.
    fn widen(&mut self, s: usize) -> usize {
        let c = self.width;
        let wide = self.width + 1;
        let rows = self.table.len().checked_div(self.width).unwrap_or(0);
        let mut table = vec![self.floor; rows * wide];
        for (old, new) in self
            .table
            .chunks(self.width.max(1))
            .zip(table.chunks_mut(wide))
        {
            new[..old.len()].copy_from_slice(old);
        }
        self.table = table;
        self.width = wide;
        self.cols[s] = Some(c as u32);
        c
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use strata_data::Nanos;

    use super::Quiet;

    proptest! {
        /// The table reads back what a map of pairs holds through sets
        /// (many of them back to the floor, most of them on a few slots),
        /// resets and the widenings new slots bring.
        #[test]
        fn quiet_table_agrees_with_a_map(
            ops in proptest::collection::vec((0u8..6, 0u32..12, 0u32..30, 0i64..4), 0..300),
        ) {
            let mut q = Quiet::default();
            let mut model: HashMap<(u32, u32), Nanos> = HashMap::new();
            for (op, s, e, t) in ops {
                match op {
                    0 => {
                        q.reset(s);
                        model.retain(|&(x, _), _| x != s);
                    }
                    _ => {
                        let t = if t == 0 { Nanos::MIN } else { t * 1000 };
                        q.set(s, e, t);
                        model.insert((s, e), t);
                    }
                }
            }
            for s in 0..13 {
                for e in 0..32 {
                    let want = model.get(&(s, e)).copied().unwrap_or(Nanos::MIN);
                    prop_assert_eq!(q.get(s, e), want, "slot {} product {}", s, e);
                }
            }
        }
    }
}
