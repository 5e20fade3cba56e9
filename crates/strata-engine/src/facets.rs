//! Inverted indexes ("facets") over columns with few distinct values: one
//! bitmap of rows per value, as a search engine keeps per facet value.
//!
//! A test on such a column is decided once per distinct value and answered
//! by a union of bitmaps, without touching the rows. Columns with many
//! distinct values (emails, titles) are scanned instead.

use roaring::{MultiOps, RoaringBitmap};
use strata_data::{NULL_CODE, TagColumn, TextColumn};

/// Columns with more distinct values than this are not indexed.
pub const MAX_VALUES: usize = 4_096;

/// Rows per dictionary code of a text or tag column.
#[derive(Debug, Default)]
pub struct Facet {
    pub by_code: Vec<RoaringBitmap>,
    /// Rows with no value: a null text, or an empty tag set.
    pub none: RoaringBitmap,
}

impl Facet {
    pub fn of_text(col: &TextColumn) -> Option<Facet> {
        if col.dict.len() > MAX_VALUES {
            return None;
        }
        let mut by_code = vec![RoaringBitmap::new(); col.dict.len()];
        let mut none = RoaringBitmap::new();
        for (row, &code) in col.codes.iter().enumerate() {
            let bits = if code == NULL_CODE {
                &mut none
            } else {
                &mut by_code[code as usize]
            };
            // Rows arrive in order, so each push appends.
            bits.push(row as u32);
        }
        Some(Facet { by_code, none })
    }

    pub fn of_tags(col: &TagColumn) -> Option<Facet> {
        if col.dict.len() > MAX_VALUES {
            return None;
        }
        let mut by_code = vec![RoaringBitmap::new(); col.dict.len()];
        let mut none = RoaringBitmap::new();
        for row in 0..col.len() {
            let codes = col.codes_of(row);
            if codes.is_empty() {
                none.push(row as u32);
            }
            for &code in codes {
                by_code[code as usize].push(row as u32);
            }
        }
        Some(Facet { by_code, none })
    }

    pub fn of_bools(vals: &[Option<bool>]) -> Facet {
        let mut by_code = vec![RoaringBitmap::new(), RoaringBitmap::new()];
        let mut none = RoaringBitmap::new();
        for (row, v) in vals.iter().enumerate() {
            match v {
                None => none.push(row as u32),
                Some(b) => by_code[usize::from(*b)].push(row as u32),
            };
        }
        Facet { by_code, none }
    }

    /// The rows whose value passes, given a verdict per code and for none.
    pub fn select(&self, verdicts: &[bool], none: bool) -> RoaringBitmap {
        let mut out: RoaringBitmap = self
            .by_code
            .iter()
            .zip(verdicts)
            .filter(|(_, ok)| **ok)
            .map(|(bits, _)| bits)
            .union();
        if none {
            out |= &self.none;
        }
        out
    }
}
