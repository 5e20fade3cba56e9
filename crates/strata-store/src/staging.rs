//! What both backends' imports share while staging: rows cut into
//! committed batches, and progress counted over every kind of row.

use std::ops::Range;

use strata_data::Dataset;

use crate::{Phase, Progress, StoreError};

pub(crate) struct Staging<'a> {
    pub import_id: i64,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(Progress),
}

impl<'a> Staging<'a> {
    pub fn new(import_id: i64, data: &Dataset, progress: &'a mut dyn FnMut(Progress)) -> Self {
        let total =
            (data.products.len() + data.customers.len() + data.lines.len() + data.daily.len())
                as u64;
        Staging {
            import_id,
            done: 0,
            total,
            progress,
        }
    }

    /// Rows written so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Rows `0..n` of one kind, `write` committing each batch (of
    /// `default_batch` rows, or `STRATA_IMPORT_BATCH`), progress reported
    /// after each.
    pub fn in_batches(
        &mut self,
        n: usize,
        default_batch: usize,
        mut write: impl FnMut(Range<usize>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let batch = crate::import_batch(default_batch);
        let mut start = 0;
        while start < n {
            let end = n.min(start + batch);
            write(start..end)?;
            self.done += (end - start) as u64;
            (self.progress)(Progress {
                phase: Phase::Staging,
                done: self.done,
                total: self.total,
            });
            start = end;
        }
        Ok(())
    }
}
