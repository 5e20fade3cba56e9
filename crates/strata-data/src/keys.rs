//! Row ids by unique key (sku → product, customer_id → customer), for the
//! references from `orders.csv` and `product_daily.csv`: one lookup per line.
//!
//! With random references into a large file, the lookup is a cache miss per
//! memory read, so the table keeps short keys inside its slots: a lookup is
//! then one 32-byte slot read, instead of a slot, a `Box<str>` in the store's
//! dictionary and the string behind it.

use crate::intern::hash;

/// Keys up to this many bytes are compared within the slot.
const INLINE: usize = 23;
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    hash: u32,
    row: u32,
    /// The key's length, saturated at 255.
    len: u8,
    /// The key's first bytes, zero padded.
    prefix: [u8; INLINE],
}

const EMPTY_SLOT: Slot = Slot {
    hash: 0,
    row: EMPTY,
    len: 0,
    prefix: [0; INLINE],
};

/// A key as the slots hold it.
struct Probe<'a> {
    key: &'a [u8],
    hash: u32,
    len: u8,
    prefix: [u8; INLINE],
}

impl<'a> Probe<'a> {
    fn new(key: &'a str, hash: u64) -> Probe<'a> {
        let key = key.as_bytes();
        let mut prefix = [0; INLINE];
        let n = key.len().min(INLINE);
        prefix[..n].copy_from_slice(&key[..n]);
        Probe {
            key,
            hash: hash as u32,
            len: key.len().min(255) as u8,
            prefix,
        }
    }
}

/// Open addressing with linear probing, at most half full.
pub(crate) struct KeyIndex {
    slots: Vec<Slot>,
    len: usize,
    /// Keys too long to fit a slot, by row (empty for the others).
    long_keys: Vec<u8>,
    long_ends: Vec<usize>,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            slots: vec![EMPTY_SLOT; 16],
            len: 0,
            long_keys: Vec::new(),
            long_ends: Vec::new(),
        }
    }
}

impl KeyIndex {
    fn long_key(&self, row: u32) -> &[u8] {
        let row = row as usize;
        let start = if row == 0 { 0 } else { self.long_ends[row - 1] };
        &self.long_keys[start..self.long_ends[row]]
    }

    fn find_probe(&self, probe: &Probe<'_>) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = probe.hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.row == EMPTY {
                return None;
            }
            if slot.hash == probe.hash
                && slot.len == probe.len
                && slot.prefix == probe.prefix
                && (probe.key.len() <= INLINE || self.long_key(slot.row) == probe.key)
            {
                return Some(slot.row);
            }
            i = (i + 1) & mask;
        }
    }

    /// The row with this key; `hash` is [`hash`]`(key)`.
    pub(crate) fn find(&self, hash: u64, key: &str) -> Option<u32> {
        self.find_probe(&Probe::new(key, hash))
    }

    /// Reads the slot a lookup of `hash` starts at (see
    /// [`crate::csv_table::Batch`]).
    #[inline]
    pub(crate) fn touch(&self, hash: u64) {
        let mask = self.slots.len() - 1;
        let i = hash as u32 as usize & mask;
        // Half the lookups go on to the next slot, often in the next line.
        std::hint::black_box(self.slots[i].row);
        std::hint::black_box(self.slots[(i + 1) & mask].row);
    }

    pub(crate) fn get(&self, key: &str) -> Option<u32> {
        self.find(hash(key), key)
    }

    /// Adds the next row, with its key if it has a valid one (not already
    /// present: the caller checks for duplicates first).
    pub(crate) fn push(&mut self, hash: u64, key: Option<&str>) {
        let row = self.long_ends.len() as u32;
        if let Some(key) = key {
            if key.len() > INLINE {
                self.long_keys.extend_from_slice(key.as_bytes());
            }
            if (self.len + 1) * 2 > self.slots.len() {
                self.grow();
            }
            let probe = Probe::new(key, hash);
            Self::place(
                &mut self.slots,
                Slot {
                    hash: probe.hash,
                    row,
                    len: probe.len,
                    prefix: probe.prefix,
                },
            );
            self.len += 1;
        }
        self.long_ends.push(self.long_keys.len());
    }

    fn place(slots: &mut [Slot], slot: Slot) {
        let mask = slots.len() - 1;
        let mut i = slot.hash as usize & mask;
        while slots[i].row != EMPTY {
            i = (i + 1) & mask;
        }
        slots[i] = slot;
    }

    fn grow(&mut self) {
        let mut slots = vec![EMPTY_SLOT; self.slots.len() * 2];
        for slot in self.slots.iter().filter(|s| s.row != EMPTY) {
            Self::place(&mut slots, *slot);
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_short_and_long_keys() {
        let keys: Vec<String> = (0..5000)
            .map(|i| match i % 4 {
                0 => format!("{i}"),
                1 => format!("SKU-{i:06}"),
                // Long keys sharing their first 23 bytes.
                2 => format!("{}-{i}", "p".repeat(INLINE)),
                _ => format!("{i}-{}", "é".repeat(20)),
            })
            .collect();
        let mut index = KeyIndex::default();
        index.push(0, None);
        for key in &keys {
            assert_eq!(index.get(key), None);
            index.push(hash(key), Some(key));
        }
        for (row, key) in keys.iter().enumerate() {
            assert_eq!(index.get(key), Some(row as u32 + 1), "{key}");
        }
        assert_eq!(index.get(""), None);
        assert_eq!(index.get(&"p".repeat(INLINE)), None);
        assert_eq!(index.get(&format!("{}-2x", "p".repeat(INLINE))), None);
        assert_eq!(index.get("SKU-00000"), None);
    }
}
