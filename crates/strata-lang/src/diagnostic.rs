//! The one error a rule gets: where, what, and maybe a hint.
//!
//! A [`Diagnostic`] holds only a byte span; the source text is given again
//! when the position or the rustc-like rendering is wanted, so the parser and
//! the checker need not carry the text around (the checker never sees it).

use crate::ast::Span;

/// A refused rule: the offending span, the message (which says what was
/// expected) and an optional hint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// 1-based line and column (in characters) of the start of the span.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let (start, _) = effective_range(self.span, source);
        line_col_at(source, start)
    }

    /// The error as rustc shows one: message, position, the source line and
    /// carets under the offending text, then the hint if any.
    pub fn render(&self, source: &str) -> String {
        let (start, end) = effective_range(self.span, source);
        let (line_no, _) = line_col_at(source, start);
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let line = &source[line_start..line_end];
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A span running onto later lines is underlined to the end of its
        // first line; one at the very end points one past the last character.
        let under_end = end.min(line_end).max(start);
        let (shown, caret_from) = display_width(line, start - line_start);
        let (_, caret_to) = display_width(line, under_end - line_start);
        let carets = (caret_to - caret_from).max(1);

        let width = line_no.to_string().len();
        let pad = " ".repeat(width);
        let (line_no_shown, col) = self.line_col(source);
        let mut out = format!("error: {}\n", self.message);
        out.push_str(&format!("{pad}--> {line_no_shown}:{col}\n"));
        out.push_str(&format!("{pad} |\n"));
        out.push_str(&format!("{line_no} | {}\n", shown.trim_end()));
        out.push_str(&format!(
            "{pad} | {}{}",
            " ".repeat(caret_from),
            "^".repeat(carets)
        ));
        if let Some(help) = &self.help {
            out.push_str(&format!("\n{pad} = help: {help}"));
        }
        out
    }
}

/// The span clamped into the source and onto character boundaries, with
/// surrounding white space dropped: the checker points at the gap between an
/// operand and its value when it means the operator, and the carets should
/// fall on the operator, not on the blanks around it.
fn effective_range(span: Span, source: &str) -> (usize, usize) {
    let floor = |mut i: usize| {
        i = i.min(source.len());
        while !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(span.start as usize);
    let end = floor(span.end as usize).max(start);
    let text = &source[start..end];
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return (start, end);
    }
    let lead = text.len() - text.trim_start().len();
    (start + lead, start + lead + trimmed.len())
}

fn line_col_at(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The line as displayed (tabs as four spaces, control characters replaced
/// so the terminal does not move the cursor) and the display column of byte
/// offset `upto` within it.
fn display_width(line: &str, upto: usize) -> (String, usize) {
    let mut shown = String::with_capacity(line.len());
    let mut col_at = None;
    let mut col = 0;
    for (i, ch) in line.char_indices() {
        if i >= upto && col_at.is_none() {
            col_at = Some(col);
        }
        match ch {
            '\t' => {
                shown.push_str("    ");
                col += 4;
            }
            c if c.is_control() => {
                shown.push('\u{FFFD}');
                col += 1;
            }
            c => {
                shown.push(c);
                col += 1;
            }
        }
    }
    (shown, col_at.unwrap_or(col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let d = Diagnostic::new(Span::new(9, 10), "x");
        assert_eq!(d.line_col("tïtle = é"), (1, 9));
        let d = Diagnostic::new(Span::new(6, 7), "x");
        assert_eq!(d.line_col("a = 1\nb"), (2, 1));
    }

    #[test]
    fn render_survives_odd_spans() {
        let src = "a\u{e9}\tb";
        for start in 0..8 {
            for end in 0..8 {
                let d = Diagnostic::new(Span::new(start, end), "m").with_help("h");
                let _ = d.render(src);
                let _ = d.line_col(src);
            }
        }
    }

    #[test]
    fn operator_gap_is_trimmed() {
        let d = Diagnostic::new(Span::new(7, 10), "m");
        assert_eq!(d.line_col("country < 5"), (1, 9));
        assert_eq!(
            d.render("country < 5").lines().last(),
            Some("  |         ^")
        );
    }
}
