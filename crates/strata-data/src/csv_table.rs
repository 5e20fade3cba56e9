//! Streaming CSV reading: records, header mapping, cell access and the
//! problems a cell can have.
//!
//! Records come from `csv_core` driven over our own buffer rather than from
//! `csv::Reader`: problems must name the physical line where a record starts,
//! and `csv::Reader` reports the position where it *began looking* for the
//! record, which is off after blank lines and CRLF line ends. Owning the
//! buffer lets us skip blank lines ourselves and count newlines exactly.
//!
//! Each file is read on a thread of its own (a [`Producer`]) that hands over
//! [`Batch`]es of about a thousand records: CSV parsing is a fair share of
//! the work, and the loader has a second core. The producer also hashes the
//! key cells the loader will look up, so that the loader can touch the id
//! tables for a run of lines before processing them (see `load_orders`).
//! Batch buffers go back to the producer to be refilled, so memory stays at
//! a few batches whatever the file size.
//!
//! Problems found while reading (ragged rows, an unclosed quote) travel with
//! their record and are reported when the loader reaches it, so that all
//! problems stay in line order.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use csv_core::ReadRecordResult;

use crate::error::{LoadError, Problem, Problems};
use crate::intern::hash_bytes;

const BUFFER_SIZE: usize = 256 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Records read so far and not yet processed, back to back in two arenas.
#[derive(Default)]
pub(crate) struct Batch {
    /// Field bytes; only `..bytes_used` is meaningful, the rest is room for
    /// `csv_core` to write into.
    bytes: Vec<u8>,
    bytes_used: usize,
    /// Field ends, relative to the start of their record.
    ends: Vec<usize>,
    ends_used: usize,
    records: Vec<Record>,
    /// Hashes of the key cells named at [`Table::open`], per record.
    hashes: Vec<u64>,
    hashes_per_record: usize,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    /// Physical line where the record starts.
    line: u64,
    start: usize,
    end: usize,
    ends_start: usize,
    ends_end: usize,
    fault: Fault,
}

/// What makes a record unusable, reported when its turn comes so that
/// problems stay in line order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// The number of fields differs from the header's.
    Ragged,
    /// A quoted field runs to the end of the file.
    Unterminated,
}

/// Records per batch: large enough that handing batches between threads
/// costs little.
const BATCH_RECORDS: usize = 1024;

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    fn clear(&mut self) {
        self.bytes_used = 0;
        self.ends_used = 0;
        self.records.clear();
        self.hashes.clear();
    }

    /// The hashes (as [`hash_bytes`]) of record `i`'s cells in the columns
    /// named at [`Table::open`], in that order; 0 where the column is absent
    /// or the record unusable. Computed on the reading thread, so that the
    /// loader can touch id table slots with them cheaply.
    pub(crate) fn hashes(&self, i: usize) -> &[u64] {
        let n = self.hashes_per_record;
        &self.hashes[i * n..(i + 1) * n]
    }

    fn record_bytes(&self, record: &Record) -> &[u8] {
        &self.bytes[record.start..record.end]
    }

    fn record_ends(&self, record: &Record) -> &[usize] {
        &self.ends[record.ends_start..record.ends_end]
    }
}

/// Where a record read by [`RecordReader::read`] starts.
struct RecordStart {
    line: u64,
    /// Byte offset in the input.
    offset: u64,
    /// The record ended at the end of the input rather than at a line end.
    at_eof: bool,
}

/// Reads raw records into a [`Batch`].
pub(crate) struct RecordReader<R> {
    source: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    core: csv_core::Reader,
    /// Newlines and bytes consumed so far.
    newlines: u64,
    offset: u64,
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(source: R) -> RecordReader<R> {
        RecordReader {
            source,
            buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            core: csv_core::Reader::new(),
            newlines: 0,
            offset: 0,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        debug_assert_eq!(self.pos, self.end);
        self.pos = 0;
        self.end = loop {
            match self.source.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if self.end == 0 {
            self.eof = true;
        } else if self.offset == 0 && self.buf[..self.end].starts_with(BOM) {
            // The BOM is not part of the first column's name. (csv_core
            // would also drop it, but only if the first read holds all of it.)
            self.pos = BOM.len();
            self.offset = BOM.len() as u64;
        }
        Ok(())
    }

    /// Appends the next record to `batch` (without a [`Record`] entry, which
    /// is the caller's); `None` at the end of the input.
    fn read(&mut self, batch: &mut Batch) -> io::Result<Option<RecordStart>> {
        // Skip blank lines so that the line is where the record's text starts.
        loop {
            if self.pos == self.end {
                if self.eof {
                    return Ok(None);
                }
                self.fill()?;
                continue;
            }
            match self.buf[self.pos] {
                b'\n' => self.newlines += 1,
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
            self.offset += 1;
        }
        let start = RecordStart {
            line: self.newlines + 1,
            offset: self.offset,
            at_eof: false,
        };
        let (mut out, mut ends) = (batch.bytes_used, batch.ends_used);
        if batch.bytes.len() < out + 256 {
            batch
                .bytes
                .resize((out + 256).max(batch.bytes.len() * 2), 0);
        }
        if batch.ends.len() < ends + 16 {
            batch.ends.resize((ends + 16).max(batch.ends.len() * 2), 0);
        }
        loop {
            if self.pos == self.end && !self.eof {
                self.fill()?;
            }
            let input = &self.buf[self.pos..self.end];
            // csv_core counts ends from the record's start across calls.
            let (result, read, written, ended) =
                self.core
                    .read_record(input, &mut batch.bytes[out..], &mut batch.ends[ends..]);
            self.newlines += count_newlines(&input[..read]);
            let at_eof = input.is_empty();
            self.pos += read;
            self.offset += read as u64;
            out += written;
            ends += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = batch.bytes.len();
                    batch.bytes.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = batch.ends.len();
                    batch.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    batch.bytes_used = out;
                    batch.ends_used = ends;
                    return Ok(Some(RecordStart { at_eof, ..start }));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Whether the record starting at `start` opens a quoted field that the end
/// of the input closes. Mirrors csv_core's default dialect; only run on the
/// last record of a file, and only if it ended at end of file, since
/// csv_core silently ends an unclosed quoted field there.
fn ends_inside_quotes(source: impl Read) -> io::Result<bool> {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    for byte in BufReader::new(source).bytes() {
        let byte = byte?;
        state = match (state, byte) {
            (State::FieldStart, b'"') => State::Quoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (_, b',') => State::FieldStart,
            // The record ended before the end of the file after all.
            (_, b'\n' | b'\r') => return Ok(false),
            (_, _) => State::Unquoted,
        };
    }
    Ok(state == State::Quoted)
}

/// A column a file may have.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub required: bool,
}

impl Column {
    pub(crate) const fn required(name: &'static str) -> Column {
        Column {
            name,
            required: true,
        }
    }

    pub(crate) const fn optional(name: &'static str) -> Column {
        Column {
            name,
            required: false,
        }
    }
}

/// Reads batches of records from a file after its header.
struct Producer {
    reader: RecordReader<File>,
    path: PathBuf,
    width: usize,
    /// Field index of each column whose cells are hashed ahead (absent
    /// columns are `None`).
    hashed: Vec<Option<usize>>,
}

impl Producer {
    /// Reads the next batch into `batch`; `false` once the file is exhausted.
    fn fill(&mut self, batch: &mut Batch) -> io::Result<bool> {
        batch.clear();
        while batch.records.len() < BATCH_RECORDS {
            let (start, ends_start) = (batch.bytes_used, batch.ends_used);
            let Some(read) = self.reader.read(batch)? else {
                break;
            };
            let mut fault = Fault::None;
            // The last record, if it ends without a line end, may be a quoted
            // field that swallowed the rest of the file: csv_core accepts
            // that silently.
            if read.at_eof && self.unterminated_quote(read.offset)? {
                fault = Fault::Unterminated;
            } else if batch.ends_used - ends_start != self.width {
                fault = Fault::Ragged;
            }
            let record = Record {
                line: read.line,
                start,
                end: batch.bytes_used,
                ends_start,
                ends_end: batch.ends_used,
                fault,
            };
            for &field in &self.hashed {
                let hash = match (field, fault) {
                    (Some(field), Fault::None) => {
                        let ends = batch.record_ends(&record);
                        let start = if field == 0 { 0 } else { ends[field - 1] };
                        hash_bytes(&batch.record_bytes(&record)[start..ends[field]])
                    }
                    _ => 0,
                };
                batch.hashes.push(hash);
            }
            batch.records.push(record);
        }
        Ok(!batch.records.is_empty())
    }

    fn unterminated_quote(&self, offset: u64) -> io::Result<bool> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        ends_inside_quotes(file)
    }

    /// Runs the producer on its own thread: parsing CSV is a good part of
    /// the work, and the loader has a second core to give it.
    fn spawn(mut self) -> io::Result<Source> {
        // Two batches in flight keep both threads busy; used batches come
        // back to be refilled, so their buffers are allocated only once.
        let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Batch>>(2);
        let (spare_tx, spare_rx) = mpsc::channel::<Batch>();
        thread::Builder::new()
            .name("strata-csv".to_owned())
            .spawn(move || {
                loop {
                    let mut batch = spare_rx.try_recv().unwrap_or_default();
                    batch.hashes_per_record = self.hashed.len();
                    let message = match self.fill(&mut batch) {
                        Ok(true) => Ok(batch),
                        Ok(false) => return,
                        Err(e) => Err(e),
                    };
                    let failed = message.is_err();
                    // A closed channel means the loader stopped early.
                    if full_tx.send(message).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Source::Thread {
            full: full_rx,
            spare: spare_tx,
        })
    }
}

/// Where a table's batches come from.
enum Source {
    Thread {
        full: Receiver<io::Result<Batch>>,
        spare: Sender<Batch>,
    },
    /// The file has no header, or every batch was taken.
    Done,
}

/// One CSV file of the dataset, positioned after its header.
pub(crate) struct Table {
    pub file: &'static str,
    path: PathBuf,
    source: Source,
    columns: &'static [Column],
    /// Field index of each of `columns`, if the header has it.
    slots: Vec<Option<usize>>,
    /// Custom (`x_`) columns: full name and field index.
    custom: Vec<(String, usize)>,
    width: usize,
}

impl Table {
    /// Opens `dir/file` and maps its header onto `columns`. A missing file is
    /// `None`, and a problem if `required`. The cells of the `hashed` columns
    /// are hashed as they are read ([`Batch::hashes`]).
    pub(crate) fn open(
        dir: &Path,
        file: &'static str,
        required: bool,
        columns: &'static [Column],
        hashed: &[usize],
        problems: &mut Problems,
    ) -> Result<Option<Table>, LoadError> {
        let path = dir.join(file);
        let handle = match File::open(&path) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if required {
                    problems.add(|| Problem::new(file, "missing required file"));
                }
                return Ok(None);
            }
            Err(source) => return Err(LoadError::Io { path, source }),
        };
        let mut reader = RecordReader::new(handle);
        let mut table = Table {
            file,
            source: Source::Done,
            columns,
            slots: vec![None; columns.len()],
            custom: Vec::new(),
            width: 0,
            path: path.clone(),
        };
        let mut header = Batch::default();
        let io_error = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        match reader.read(&mut header).map_err(io_error)? {
            None => {
                problems.add(|| Problem::new(file, "empty file, expected a header row").line(1));
            }
            Some(start) => {
                table.map_header(&header, start.line, problems);
                let producer = Producer {
                    reader,
                    path: path.clone(),
                    width: table.width,
                    hashed: hashed.iter().map(|&c| table.slots[c]).collect(),
                };
                table.source = producer.spawn().map_err(io_error)?;
            }
        }
        Ok(Some(table))
    }

    fn map_header(&mut self, header: &Batch, line: u64, problems: &mut Problems) {
        let file = self.file;
        let ends = &header.ends[..header.ends_used];
        let bytes = &header.bytes[..header.bytes_used];
        self.width = ends.len();
        let mut start = 0;
        let mut seen: Vec<&str> = Vec::with_capacity(self.width);
        for (index, &end) in ends.iter().enumerate() {
            let raw = &bytes[start..end];
            start = end;
            let Ok(name) = std::str::from_utf8(raw) else {
                problems.add(|| {
                    Problem::new(file, "column name is not valid UTF-8")
                        .line(line)
                        .column(format!("column {}", index + 1))
                        .got_bytes(raw)
                });
                continue;
            };
            if name.is_empty() {
                problems.add(|| {
                    Problem::new(file, "empty column name")
                        .line(line)
                        .column(format!("column {}", index + 1))
                });
                continue;
            }
            if let Some(first) = seen.iter().position(|&seen| seen == name) {
                problems.add(|| {
                    Problem::new(
                        file,
                        format!("duplicate column, first is column {}", first + 1),
                    )
                    .line(line)
                    .column(name)
                });
                seen.push(name);
                continue;
            }
            seen.push(name);
            if let Some(slot) = self.columns.iter().position(|c| c.name == name) {
                self.slots[slot] = Some(index);
            } else if name.starts_with("x_") {
                self.custom.push((name.to_owned(), index));
            } else {
                let columns = self.columns;
                problems.add(|| {
                    // A near miss (`Price`, ` sku`) is likely a typo for a
                    // column the file may have.
                    let near = columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(name.trim()));
                    let message = match near {
                        Some(c) => format!("unknown column (did you mean '{}'?)", c.name),
                        None => "unknown column".to_owned(),
                    };
                    Problem::new(file, message).line(line).column(name)
                });
            }
        }
        for (column, slot) in self.columns.iter().zip(&self.slots) {
            if column.required && slot.is_none() {
                problems.add(|| {
                    Problem::new(file, "missing required column")
                        .line(line)
                        .column(column.name)
                });
            }
        }
    }

    /// Whether the header has this column (an index into the file's columns).
    pub(crate) fn has(&self, column: usize) -> bool {
        self.slots[column].is_some()
    }

    /// Names of the custom (`x_`) columns, in header order.
    pub(crate) fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|(name, _)| name.as_str())
    }

    /// Replaces `batch` with the next batch of records; `false` once the
    /// file is exhausted.
    pub(crate) fn fill(&mut self, batch: &mut Batch) -> Result<bool, LoadError> {
        let Source::Thread { full, spare } = &self.source else {
            return Ok(false);
        };
        match full.recv() {
            Ok(Ok(next)) => {
                let used = std::mem::replace(batch, next);
                // The producer may have finished; the spare is then unused.
                let _ = spare.send(used);
                Ok(true)
            }
            Ok(Err(source)) => Err(LoadError::Io {
                path: self.path.clone(),
                source,
            }),
            // The producer is done with the file.
            Err(mpsc::RecvError) => {
                self.source = Source::Done;
                Ok(false)
            }
        }
    }

    /// Record `i` of the batch as a row, or `None` if it is unusable: rows
    /// with the wrong number of fields are reported and skipped, as their
    /// cells cannot be trusted to be in the right columns.
    pub(crate) fn row<'a>(
        &'a self,
        batch: &'a Batch,
        i: usize,
        problems: &'a mut Problems,
    ) -> Option<Row<'a>> {
        let record = &batch.records[i];
        let (file, line) = (self.file, record.line);
        let ends = batch.record_ends(record);
        match record.fault {
            Fault::None => {}
            Fault::Unterminated => {
                problems.add(|| {
                    Problem::new(file, "quoted field not closed before the end of the file")
                        .line(line)
                });
                return None;
            }
            Fault::Ragged => {
                let (width, found) = (self.width, ends.len());
                problems.add(|| {
                    Problem::new(file, format!("expected {width} fields, found {found}")).line(line)
                });
                return None;
            }
        }
        let bytes = batch.record_bytes(record);
        Some(Row {
            file,
            line,
            text: std::str::from_utf8(bytes).ok(),
            bytes,
            ends,
            columns: self.columns,
            slots: &self.slots,
            custom: &self.custom,
            problems,
        })
    }
}

/// One data row with its file's column mapping and the problem sink, so cell
/// accessors can report what is wrong with a cell where they find it.
pub(crate) struct Row<'a> {
    file: &'static str,
    pub line: u64,
    /// The whole record if it is valid UTF-8 (the common case: one check per
    /// record instead of one per cell).
    text: Option<&'a str>,
    bytes: &'a [u8],
    ends: &'a [usize],
    columns: &'static [Column],
    slots: &'a [Option<usize>],
    custom: &'a [(String, usize)],
    problems: &'a mut Problems,
}

impl<'a> Row<'a> {
    fn field(&mut self, index: usize, name: &str) -> Option<&'a str> {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        let end = self.ends[index];
        // A field boundary may split a character that only the concatenation
        // makes whole, hence `get` and the per-field fallback.
        if let Some(text) = self.text.and_then(|text| text.get(start..end)) {
            return Some(text);
        }
        let bytes: &'a [u8] = &self.bytes[start..end];
        match std::str::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => {
                let (file, line) = (self.file, self.line);
                self.problems.add(|| {
                    Problem::new(file, "not valid UTF-8")
                        .line(line)
                        .column(name)
                        .got_bytes(bytes)
                });
                None
            }
        }
    }

    /// The cell as written; `None` if empty, absent or not UTF-8 (reported).
    pub(crate) fn text(&mut self, column: usize) -> Option<&'a str> {
        let index = self.slots[column]?;
        self.field(index, self.columns[column].name)
            .filter(|text| !text.is_empty())
    }

    /// Like [`Self::text`], reporting an empty cell.
    pub(crate) fn required_text(&mut self, column: usize) -> Option<&'a str> {
        let value = self.text(column);
        if value.is_none() {
            self.report_missing(column);
        }
        value
    }

    /// Parses a cell after trimming surrounding ASCII whitespace. `None` if
    /// empty (reported if `required`) or invalid (reported).
    pub(crate) fn parse<T>(
        &mut self,
        column: usize,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Option<T> {
        let raw = self.text(column);
        let Some(text) = raw.map(str::trim_ascii).filter(|t| !t.is_empty()) else {
            if required {
                self.report_missing(column);
            }
            return None;
        };
        match parse(text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.report(column, message, raw);
                None
            }
        }
    }

    fn report_missing(&mut self, column: usize) {
        // An absent column was reported once, at the header.
        if self.slots[column].is_some() {
            self.report(column, "missing required value", None);
        }
    }

    /// Reports a problem with a cell.
    pub(crate) fn report(&mut self, column: usize, message: &str, got: Option<&str>) {
        let (file, line, name) = (self.file, self.line, self.columns[column].name);
        self.problems.add(|| {
            let problem = Problem::new(file, message).line(line).column(name);
            match got {
                Some(got) => problem.got(got),
                None => problem,
            }
        });
    }

    /// Like [`Self::report`] with a message built only if it will be shown.
    pub(crate) fn report_with(
        &mut self,
        column: usize,
        message: impl FnOnce() -> String,
        got: &str,
    ) {
        let (file, line, name) = (self.file, self.line, self.columns[column].name);
        self.problems.add(|| {
            Problem::new(file, message())
                .line(line)
                .column(name)
                .got(got)
        });
    }

    /// The cell of the `k`th custom column, like [`Self::text`].
    pub(crate) fn custom(&mut self, k: usize) -> Option<&'a str> {
        let custom: &'a [(String, usize)] = self.custom;
        let (name, index) = &custom[k];
        self.field(*index, name).filter(|text| !text.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` as records shown as `line: field|field`, all into one
    /// batch.
    fn records(input: &[u8]) -> Vec<String> {
        let mut reader = RecordReader::new(input);
        let mut batch = Batch::default();
        let mut out = Vec::new();
        loop {
            let (start, ends_start) = (batch.bytes_used, batch.ends_used);
            let Some(read) = reader.read(&mut batch).unwrap() else {
                break;
            };
            let bytes = &batch.bytes[start..batch.bytes_used];
            let mut field_start = 0;
            let mut fields = Vec::new();
            for &end in &batch.ends[ends_start..batch.ends_used] {
                fields.push(String::from_utf8_lossy(&bytes[field_start..end]).into_owned());
                field_start = end;
            }
            out.push(format!("{}: {}", read.line, fields.join("|")));
        }
        out
    }

    #[test]
    fn lines_are_where_records_start() {
        assert_eq!(
            records(b"\xEF\xBB\xBFsku,b\n1,2\n\n\n3,4\n\"x\ny\",5\n6,7"),
            ["1: sku|b", "2: 1|2", "5: 3|4", "6: x\ny|5", "8: 6|7"]
        );
        assert_eq!(
            records(b"sku,b\r\n1,2\r\n\r\n3,\"a\r\nb\"\r\n6,7\r\n"),
            ["1: sku|b", "2: 1|2", "4: 3|a\r\nb", "6: 6|7"]
        );
        assert_eq!(
            records(b"a,b\n\"q \"\"x\"\", y\",2\n,\n"),
            ["1: a|b", "2: q \"x\", y|2", "3: |"]
        );
    }

    #[test]
    fn records_larger_than_the_buffers() {
        let long = "y".repeat(BUFFER_SIZE * 2 + 17);
        let many = vec!["z"; 100].join(",");
        let input = format!("a\n\"{long}\"\n{many}\nlast\n");
        let records = records(input.as_bytes());
        assert_eq!(records.len(), 4);
        assert_eq!(records[1], format!("2: {long}"));
        assert_eq!(records[2], format!("3: {many}").replace(',', "|"));
        assert_eq!(records[3], "4: last");
    }

    #[test]
    fn unclosed_quotes() {
        let check = |input: &[u8]| ends_inside_quotes(input).unwrap();
        assert!(check(b"1,\"abc"));
        assert!(check(b"1,\"abc\ndef,2\n"));
        assert!(check(b"\"a\"\"b"));
        assert!(!check(b"1,\"abc\""));
        assert!(!check(b"1,\"a\"\"b\""));
        assert!(!check(b"1,27\" screen"));
        assert!(!check(b"1,2"));
    }
}
