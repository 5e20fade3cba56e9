//! The id index: a customer's, order's or product's id to its dense slot.
//!
//! A map from `Arc<str>` to `u32` (hashbrown's, as std's `HashMap` is)
//! keeps its control bytes and its buckets apart, and its key behind a
//! pointer: looking up a known id of five million costs a miss on the
//! control bytes, one on the bucket and one on the key's heap block, and
//! adding a new one a miss on the control bytes and one on the bucket (on
//! this machine kind about 0.8 µs either way, a tenth of an order line's
//! whole budget). Here an entry is eight bytes, the upper half of the id's
//! hash and the slot, in one array probed linearly: the probe for an id
//! reads one cache line (two at a run's end), adding writes the line the
//! probe has just read, and the key is compared in the record the caller
//! reads next anyway. It is a third of the memory, too.
//!
//! **An entry's place is a function of its stored half-hash only** (its top
//! `bits` bits), so growing re-places entries without hashing any id again.
//! The table does not own the ids: every lookup takes the id's hash and a
//! test of whether a slot holds that id. The reference is a `HashMap`
//! (`tests::agrees_with_a_map`).

use std::hash::BuildHasher;

/// The hash an [`IdTable`] is probed with.
pub fn id_hash(id: &str) -> u64 {
    // Places and stored halves both come from the upper bits: mix the
    // lower ones into them.
    let x = rustc_hash::FxBuildHasher.hash_one(id);
    (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[derive(Clone, Debug)]
pub struct IdTable {
    /// `(hash >> 32) << 32 | (slot + 1)`; 0 is an empty entry.
    entries: Vec<u64>,
    /// `entries.len() == 1 << bits`.
    bits: u32,
    len: usize,
}

impl Default for IdTable {
    fn default() -> Self {
        IdTable {
            entries: vec![0; 16],
            bits: 4,
            len: 0,
        }
    }
}

impl IdTable {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn home(&self, half: u64) -> usize {
        (half >> (32 - self.bits)) as usize
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The slot holding the id whose hash is `hash`, asking `is` of each
    /// slot whose stored half-hash matches.
    pub fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.index_of(hash, &mut is)
            .map(|i| slot_of(self.entries[i]))
    }

    fn index_of(&self, hash: u64, is: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        let half = hash >> 32;
        let mut i = self.home(half);
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == half && is(slot_of(e)) {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Adds a slot for an id the table does not hold.
    pub fn insert(&mut self, hash: u64, slot: u32) {
        assert!(slot < u32::MAX, "fewer than 2^32 - 1 slots");
        // A load of at most 3/4 keeps a probe to a line or two.
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        self.place((hash >> 32) << 32 | u64::from(slot + 1));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mut i = self.home(e >> 32);
        while self.entries[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        assert!(self.bits < 32, "an id table of at most 2^32 entries");
        self.bits += 1;
        let old = std::mem::replace(&mut self.entries, vec![0; 1 << self.bits]);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Removes the id whose hash is `hash`; its slot.
    pub fn remove(&mut self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut hole = self.index_of(hash, &mut is)?;
        let slot = slot_of(self.entries[hole]);
        self.len -= 1;
        // Linear probing has no tombstones: each later entry of the run
        // whose home is not between the hole and itself moves back into
        // the hole, or a probe for it would stop there.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = self.home(e >> 32);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
        Some(slot)
    }

    /// Every slot held, in no particular order.
    #[cfg(test)]
    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .iter()
            .filter(|&&e| e != 0)
            .map(|&e| slot_of(e))
    }
}

fn slot_of(e: u64) -> u32 {
    (e as u32) - 1
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Whether a slot of `ids` (ids by slot, as a store's records hold
    /// them) holds `id`.
    fn holds<'a>(ids: &'a [String], id: &'a str) -> impl FnMut(u32) -> bool + 'a {
        move |s| ids[s as usize] == id
    }

    proptest! {
        /// Inserts, removals and lookups agree with a map, under a hash
        /// that makes long runs, collisions of the stored half and runs
        /// that wrap round the table's end (`spread` of 0 gives every id
        /// the same hash).
        #[test]
        fn agrees_with_a_map(
            ops in proptest::collection::vec((0u8..3, 0u32..60), 0..600),
            spread in 0u32..4,
        ) {
            let hash = |id: &str| {
                let h = id_hash(id);
                match spread {
                    0 => 0xffff_ffff_0000_0000,
                    1 => h & 0xf000_0003_0000_0000 | 0x0fff_fff0_0000_0000,
                    2 => h | 0xfff0_0000_0000_0000,
                    _ => h,
                }
            };
            let mut table = IdTable::default();
            let mut records: Vec<String> = Vec::new();
            let mut model: HashMap<String, u32> = HashMap::new();
            for (op, n) in ops {
                let id = format!("id-{n}");
                let h = hash(&id);
                match op {
                    0 if !model.contains_key(&id) => {
                        let slot = records.len() as u32;
                        records.push(id.clone());
                        table.insert(h, slot);
                        model.insert(id, slot);
                    }
                    1 => {
                        let got = table.remove(h, holds(&records, &id));
                        prop_assert_eq!(got, model.remove(&id));
                    }
                    _ => {
                        prop_assert_eq!(table.find(h, holds(&records, &id)), model.get(&id).copied());
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for n in 0..60 {
                let id = format!("id-{n}");
                prop_assert_eq!(
                    table.find(hash(&id), holds(&records, &id)),
                    model.get(&id).copied()
                );
            }
            let mut held: Vec<u32> = table.slots().collect();
            let mut want: Vec<u32> = model.values().copied().collect();
            held.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(held, want);
        }
    }
}
