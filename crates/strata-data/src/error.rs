//! What can go wrong while loading: I/O trouble, or a dataset refused for
//! the [`Problems`] found in it.

use std::fmt;
use std::path::PathBuf;

/// How many problems a refusal lists; past that only the count grows.
pub const PROBLEM_LIMIT: usize = 100;

/// Longest `got` value shown, in characters. A runaway quoted field can hold
/// the rest of a file; the message only needs enough to recognise it.
const GOT_LIMIT: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or a file in it could not be read. Not the data's fault,
    /// so it is not mixed into the problem list.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The dataset was read and refused.
    #[error("{0}")]
    Invalid(Problems),
}

/// One thing wrong with a dataset, shown as
/// `file:line: column: message (got 'value')`.
///
/// For JSON files `line` is `None` and `column` is a path into the document
/// such as `[0].tiers[2].threshold`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// Physical line (1-based) where the record starts; the header is line 1.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
    /// The offending value, already escaped and shortened for display.
    pub got: Option<String>,
}

impl Problem {
    pub(crate) fn new(file: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            got: None,
        }
    }

    pub(crate) fn line(mut self, line: u64) -> Problem {
        self.line = Some(line);
        self
    }

    pub(crate) fn column(mut self, column: impl Into<String>) -> Problem {
        self.column = Some(column.into());
        self
    }

    pub(crate) fn got(mut self, got: &str) -> Problem {
        self.got = Some(display_value(got));
        self
    }

    pub(crate) fn got_bytes(mut self, got: &[u8]) -> Problem {
        self.got = Some(display_bytes(got));
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(column) = &self.column {
            write!(f, "{column}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(got) = &self.got {
            write!(f, " (got '{got}')")?;
        }
        Ok(())
    }
}

/// The problems found in a dataset: the first [`PROBLEM_LIMIT`] in file
/// order, and how many there were in all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    shown: Vec<Problem>,
    total: usize,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// All problems found, including those past the limit.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The problems kept, at most [`PROBLEM_LIMIT`], in the order found.
    pub fn shown(&self) -> &[Problem] {
        &self.shown
    }

    /// Appends problems found elsewhere (another file, read in parallel),
    /// keeping the limit.
    pub(crate) fn append(&mut self, other: Problems) {
        let room = PROBLEM_LIMIT.saturating_sub(self.shown.len());
        self.shown.extend(other.shown.into_iter().take(room));
        self.total += other.total;
    }

    /// Counts a problem, building it only while under the limit: a file with
    /// millions of bad lines must not allocate millions of messages.
    pub(crate) fn add(&mut self, problem: impl FnOnce() -> Problem) {
        self.total += 1;
        if self.shown.len() < PROBLEM_LIMIT {
            self.shown.push(problem());
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.shown.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        let more = self.total - self.shown.len();
        if more > 0 {
            let noun = if more == 1 { "problem" } else { "problems" };
            write!(f, "\n... and {more} more {noun}")?;
        }
        Ok(())
    }
}

/// Escapes control characters so a problem stays on one line, and shortens
/// long values.
pub(crate) fn display_value(text: &str) -> String {
    let mut out = String::new();
    push_escaped(&mut out, text, &mut 0);
    out
}

/// Like [`display_value`], showing bytes that are not UTF-8 as `\xNN`.
pub(crate) fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for chunk in bytes.utf8_chunks() {
        if !push_escaped(&mut out, chunk.valid(), &mut shown) {
            return out;
        }
        for byte in chunk.invalid() {
            if shown == GOT_LIMIT {
                out.push('…');
                return out;
            }
            out.push_str(&format!("\\x{byte:02X}"));
            shown += 1;
        }
    }
    out
}

/// Returns false once the limit is reached (and the ellipsis written).
fn push_escaped(out: &mut String, text: &str, shown: &mut usize) -> bool {
    for c in text.chars() {
        if *shown == GOT_LIMIT {
            out.push('…');
            return false;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
        *shown += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display() {
        let p = Problem::new("orders.csv", "not a decimal")
            .line(7)
            .column("unit_price")
            .got("12,50");
        assert_eq!(
            p.to_string(),
            "orders.csv:7: unit_price: not a decimal (got '12,50')"
        );
        let p = Problem::new("orders.csv", "missing required file");
        assert_eq!(p.to_string(), "orders.csv: missing required file");
    }

    #[test]
    fn values_are_escaped_and_shortened() {
        assert_eq!(display_value("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(display_value("\u{7}"), "\\u{7}");
        assert_eq!(display_bytes(b"Caf\xe9 \xff"), "Caf\\xE9 \\xFF");
        let long = "x".repeat(100);
        assert_eq!(display_value(&long), format!("{}…", "x".repeat(60)));
        assert_eq!(display_value(&"x".repeat(60)), "x".repeat(60));
        let long_bytes = [0xffu8; 70];
        assert_eq!(
            display_bytes(&long_bytes),
            format!("{}…", "\\xFF".repeat(60))
        );
    }

    #[test]
    fn limit_and_count() {
        let mut problems = Problems::default();
        for i in 0..(PROBLEM_LIMIT + 2) {
            problems.add(|| Problem::new("a.csv", format!("p{i}")));
        }
        assert_eq!(problems.total(), PROBLEM_LIMIT + 2);
        assert_eq!(problems.shown().len(), PROBLEM_LIMIT);
        assert!(
            problems
                .to_string()
                .ends_with("a.csv: p99\n... and 2 more problems")
        );
    }
}
