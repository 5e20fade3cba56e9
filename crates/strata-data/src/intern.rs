//! Column builders and id lookups used while loading.
//!
//! Lookups go through [`IdTable`], a hash table of ids whose keys stay in
//! the store's own dictionary (`Vec<Box<str>>`). A `HashMap<Box<str>, u32>`
//! would allocate every distinct string a second time (millions of order ids
//! and e-mail addresses), and freeing those copies alone cost a large part of
//! the load time. Interners also remember the last value: runs of equal
//! values (one seller, one marketplace, sorted files) skip hashing.

use std::hash::Hasher;

use rustc_hash::FxHasher;

use crate::store::{NULL_CODE, TagColumn, TextColumn};

/// The hash the id tables work with.
pub(crate) fn hash(key: &str) -> u64 {
    hash_bytes(key.as_bytes())
}

/// [`hash`] of a raw cell, before it is known to be UTF-8.
pub(crate) fn hash_bytes(key: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(key);
    hasher.finish()
}

const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Low bits of the key's hash: the bucket, and a cheap check before the
    /// key itself is compared (which means a likely cache miss).
    hash: u32,
    id: u32,
}

/// Open addressing with linear probing, at most half full, over ids whose
/// keys the caller holds.
#[derive(Debug)]
pub(crate) struct IdTable {
    slots: Vec<Slot>,
    len: usize,
}

impl Default for IdTable {
    fn default() -> Self {
        IdTable {
            slots: vec![Slot { hash: 0, id: EMPTY }; 16],
            len: 0,
        }
    }
}

impl IdTable {
    /// The id whose key `is_key` accepts, among those with this hash.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let hash = hash as u32;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.id == EMPTY {
                return None;
            }
            if slot.hash == hash && is_key(slot.id) {
                return Some(slot.id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Reads the slot a lookup of `hash` starts at, so that a lookup soon
    /// after finds it in cache (see [`crate::csv_table::Batch`]).
    #[inline]
    pub(crate) fn touch(&self, hash: u64) {
        let mask = self.slots.len() - 1;
        std::hint::black_box(self.slots[hash as u32 as usize & mask].id);
    }

    /// Adds an id whose key is known to be absent.
    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        debug_assert_ne!(id, EMPTY);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        Self::place(&mut self.slots, hash as u32, id);
        self.len += 1;
    }

    fn place(slots: &mut [Slot], hash: u32, id: u32) {
        let mask = slots.len() - 1;
        let mut i = hash as usize & mask;
        while slots[i].id != EMPTY {
            i = (i + 1) & mask;
        }
        slots[i] = Slot { hash, id };
    }

    fn grow(&mut self) {
        let mut slots = vec![Slot { hash: 0, id: EMPTY }; self.slots.len() * 2];
        for slot in self.slots.iter().filter(|s| s.id != EMPTY) {
            Self::place(&mut slots, slot.hash, slot.id);
        }
        self.slots = slots;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Interner {
    column: TextColumn,
    index: IdTable,
    last: Option<u32>,
}

impl Interner {
    /// The code of a value (interning it), or [`NULL_CODE`] for null/empty.
    pub(crate) fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(text) = value.filter(|t| !t.is_empty()) else {
            return NULL_CODE;
        };
        let dict = &self.column.dict;
        if let Some(last) = self.last.filter(|&last| &*dict[last as usize] == text) {
            return last;
        }
        let code = intern(&mut self.index, &mut self.column.dict, text);
        self.last = Some(code);
        code
    }

    pub(crate) fn push(&mut self, value: Option<&str>) {
        let code = self.intern(value);
        self.column.codes.push(code);
    }

    pub(crate) fn push_code(&mut self, code: u32) {
        self.column.codes.push(code);
    }

    /// The text of a code handed out by this interner.
    pub(crate) fn text(&self, code: u32) -> Option<&str> {
        (code != NULL_CODE).then(|| &*self.column.dict[code as usize])
    }

    pub(crate) fn finish(self) -> TextColumn {
        self.column
    }
}

/// The code of `text` in `dict`, adding it if new.
fn intern(index: &mut IdTable, dict: &mut Vec<Box<str>>, text: &str) -> u32 {
    let hash = hash(text);
    if let Some(code) = index.find(hash, |code| &*dict[code as usize] == text) {
        return code;
    }
    let code = dict.len() as u32;
    dict.push(text.into());
    index.insert(hash, code);
    code
}

/// Builds a [`TagColumn`]: `;`-separated elements, each trimmed, empty ones
/// dropped, repeats within a row dropped (first occurrence kept).
#[derive(Debug, Default)]
pub(crate) struct TagBuilder {
    column: TagColumn,
    index: IdTable,
}

impl TagBuilder {
    pub(crate) fn push(&mut self, cell: Option<&str>) {
        self.push_each(cell.unwrap_or("").split(';'));
    }

    /// A row of tags given one by one (trimmed; empty ones and repeats
    /// dropped, as in a cell).
    pub(crate) fn push_each<'a>(&mut self, tags: impl IntoIterator<Item = &'a str>) {
        let row_start = self.column.codes.len();
        for element in tags {
            let tag = element.trim();
            if tag.is_empty() {
                continue;
            }
            let code = intern(&mut self.index, &mut self.column.dict, tag);
            if !self.column.codes[row_start..].contains(&code) {
                self.column.codes.push(code);
            }
        }
        self.column.offsets.push(self.column.codes.len() as u32);
    }

    pub(crate) fn finish(self) -> TagColumn {
        self.column
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_in(table: &IdTable, dict: &[Box<str>], key: &str) -> Option<u32> {
        table.find(hash(key), |id| &*dict[id as usize] == key)
    }

    #[test]
    fn id_table_finds_every_key() {
        let keys: Vec<Box<str>> = (0..10_000).map(|i| format!("K{i}").into()).collect();
        let mut table = IdTable::default();
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(find_in(&table, &keys, key), None);
            table.insert(hash(key), id as u32);
        }
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(find_in(&table, &keys, key), Some(id as u32));
        }
        assert_eq!(find_in(&table, &keys, "K10000"), None);
        assert_eq!(find_in(&table, &keys, ""), None);
    }

    #[test]
    fn interner_codes() {
        let mut interner = Interner::default();
        for value in [
            Some("US"),
            Some("DE"),
            None,
            Some(""),
            Some("US"),
            Some("US"),
        ] {
            interner.push(value);
        }
        let column = interner.finish();
        assert_eq!(column.dict, ["US".into(), "DE".into()] as [Box<str>; 2]);
        assert_eq!(column.codes, [0, 1, NULL_CODE, NULL_CODE, 0, 0]);
    }

    #[test]
    fn tags() {
        let mut tags = TagBuilder::default();
        tags.push(Some(" vip ; wholesale;;vip; "));
        tags.push(None);
        tags.push(Some("wholesale;new"));
        let column = tags.finish();
        assert_eq!(column.len(), 3);
        assert_eq!(column.get(0).collect::<Vec<_>>(), ["vip", "wholesale"]);
        assert_eq!(column.get(1).count(), 0);
        assert_eq!(column.get(2).collect::<Vec<_>>(), ["wholesale", "new"]);
        assert_eq!(column.codes_of(2), [1, 2]);
    }
}
