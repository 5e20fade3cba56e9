//! Output: a chunked CSV writer with hand formatting of numbers and money.
//!
//! Rows are appended to one growing byte buffer that is flushed in large
//! chunks; going through `csv::Writer` or `format!` per field costs several
//! times more, and the orders file alone holds about ten million rows.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::DemoError;

const FLUSH_AT: usize = 1 << 20;

pub(crate) struct CsvOut {
    path: PathBuf,
    file: File,
    pub buf: Vec<u8>,
}

impl CsvOut {
    pub fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self, DemoError> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| DemoError::Io {
            path: path.clone(),
            source,
        })?;
        let mut out = CsvOut {
            path,
            file,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
        };
        out.buf.extend_from_slice(header.join(",").as_bytes());
        out.buf.push(b'\n');
        Ok(out)
    }

    /// Ends the current row and flushes when the buffer is large.
    #[inline]
    pub fn end_row(&mut self) -> Result<(), DemoError> {
        self.buf.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DemoError> {
        self.file
            .write_all(&self.buf)
            .map_err(|source| DemoError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), DemoError> {
        self.flush()
    }
}

pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> Result<(), DemoError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| DemoError::Io { path, source })
}

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// `n` left-padded with zeros to `width` digits.
pub(crate) fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = 1;
    let mut x = n;
    while x >= 10 {
        x /= 10;
        digits += 1;
    }
    buf.extend(std::iter::repeat_n(b'0', width.saturating_sub(digits)));
    push_u64(buf, n);
}

/// Cents as a decimal with two places: `1234` → `12.34`, `-5` → `-0.05`.
pub(crate) fn push_money(buf: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        buf.push(b'-');
    }
    let c = cents.unsigned_abs();
    push_u64(buf, c / 100);
    buf.push(b'.');
    buf.push(b'0' + (c % 100 / 10) as u8);
    buf.push(b'0' + (c % 10) as u8);
}

/// One text field, quoted per RFC 4180 when it holds a comma, a quote or a
/// line break.
pub(crate) fn push_text(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut b = Vec::new();
        push_money(&mut b, 1234);
        b.push(b' ');
        push_money(&mut b, 5);
        b.push(b' ');
        push_money(&mut b, -105);
        b.push(b' ');
        push_padded(&mut b, 42, 7);
        b.push(b' ');
        push_padded(&mut b, 123_456_789, 7);
        b.push(b' ');
        push_text(&mut b, r#"12" Pan, Black"#);
        b.push(b' ');
        push_text(&mut b, "plain");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"12.34 0.05 -1.05 0000042 123456789 "12"" Pan, Black" plain"#
        );
    }
}
