//! Each (product segment, product) pair's quiet instant: before it, time
//! alone cannot move the pair's truth ([`crate::eval::Evaluator::product_quiet`]).
//!
//! Every evaluation of a product for a change writes its pairs' instants
//! (back to `Nanos::MIN`: every wake looks), and a settle evaluates a
//! product's pairs one after the other. A row per product keeps those
//! writes on a few cache lines; a row per segment put each on its own, a
//! cache miss per pair in a store of a hundred thousand products.

use strata_data::Nanos;

/// Quiet instants, product-major: a column per product segment slot that
/// has ever held a real instant (a slot gets one the first time), a row per
/// product up to the last that has one. A missing entry reads `Nanos::MIN`.
#[derive(Clone, Debug, Default)]
pub struct Quiet {
    /// Each slot's column.
    cols: Vec<Option<u32>>,
    width: usize,
    table: Vec<Nanos>,
}

impl Quiet {
    /// The instant of slot `s`'s pair with product `e`.
    pub fn get(&self, s: u32, e: u32) -> Nanos {
        self.cols
            .get(s as usize)
            .copied()
            .flatten()
            .and_then(|c| self.table.get(e as usize * self.width + c as usize))
            .copied()
            .unwrap_or(Nanos::MIN)
    }

    pub fn set(&mut self, s: u32, e: u32, q: Nanos) {
        let s = s as usize;
        if s >= self.cols.len() {
            if q == Nanos::MIN {
                return;
            }
            self.cols.resize(s + 1, None);
        }
        let c = match self.cols[s] {
            Some(c) => c as usize,
            None if q == Nanos::MIN => return,
            None => self.widen(s),
        };
        let i = e as usize * self.width + c;
        if i >= self.table.len() {
            if q == Nanos::MIN {
                return;
            }
            self.table.resize((e as usize + 1) * self.width, Nanos::MIN);
        }
        self.table[i] = q;
    }

    /// Forgets slot `s`'s instants (its rule changed, or it is gone).
    pub fn reset(&mut self, s: u32) {
        if let Some(&Some(c)) = self.cols.get(s as usize) {
            for row in self.table.chunks_mut(self.width) {
                row[c as usize] = Nanos::MIN;
            }
        }
    }

    /// Gives slot `s` a column: every row is laid out again, once per
    /// product segment over the engine's life.
    fn widen(&mut self, s: usize) -> usize {
        let c = self.width;
        let wide = self.width + 1;
        let rows = self.table.len().checked_div(self.width).unwrap_or(0);
        let mut table = vec![Nanos::MIN; rows * wide];
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
