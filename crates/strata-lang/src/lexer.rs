//! Tokens and literals, with `winnow`.
//!
//! The lexer cuts the text into tokens up to the first character it cannot
//! use and remembers that error instead of failing at once: the parser then
//! reports whichever problem comes first in the text, so `a = 'x` gets
//! "unterminated string", and `( $` gets the syntax error only if it comes
//! before the bad character.
//!
//! Literals that start with a digit or a sign are cut as one chunk
//! (`2024-01-31T10:00:00+02:00`, `-30d`, `49.99`) and then read whole, so
//! `2024-1-5` is one bad date rather than the number 2024 followed by `-1`.
//! The same literal readers serve the JSON form, which stores literals as
//! their text.

use jiff::civil::Date;
use rust_decimal::Decimal;
use winnow::ModalResult;
use winnow::Parser;
use winnow::ascii::digit1;
use winnow::combinator::{alt, delimited, opt, repeat};
use winnow::stream::AsChar;
use winnow::token::{one_of, take_till, take_while};

use crate::ast::{CmpOp, RelUnit, Relative, Span};
use crate::diagnostic::Diagnostic;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A name or a keyword; its text is the span's.
    Word,
    Str(String),
    Num(Decimal),
    Date(Date),
    /// Its text is the span's.
    Timestamp(jiff::Timestamp),
    Relative(Relative),
    LParen,
    RParen,
    Comma,
    Colon,
    Cmp(CmpOp),
    /// End of the usable input: the end of the text, or the place where the
    /// lexer stopped on an error.
    End,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Every token up to the end or the first lexical error; the list always
/// ends with [`Tok::End`], placed right after the last real token so that
/// "unexpected end" carets sit next to the text rather than on a later
/// blank line.
pub(crate) fn lex(src: &str) -> (Vec<Token>, Option<Diagnostic>) {
    let mut tokens = Vec::new();
    let mut rest = src;
    let mut error = None;
    loop {
        let _ = skip_ws(&mut rest);
        let at = src.len() - rest.len();
        let Some(first) = rest.chars().next() else {
            break;
        };
        match next_token(&mut rest, first, at) {
            Ok(tok) => tokens.push(Token {
                tok,
                span: Span::new(at, src.len() - rest.len()),
            }),
            Err(diag) => {
                error = Some(diag);
                break;
            }
        }
    }
    let end = tokens.last().map_or(0, |t| t.span.end as usize);
    tokens.push(Token {
        tok: Tok::End,
        span: Span::new(end, end),
    });
    (tokens, error)
}

fn next_token(rest: &mut &str, first: char, at: usize) -> Result<Tok, Diagnostic> {
    let one_char = Span::new(at, at + first.len_utf8());
    if first.is_ascii_alphabetic() || first == '_' {
        word.parse_next(rest).map_err(|_| internal(one_char))?;
        return Ok(Tok::Word);
    }
    if first == '\'' {
        return string_literal.parse_next(rest).map(Tok::Str).map_err(|_| {
            Diagnostic::new(one_char, "unterminated string; expected a closing '")
                .with_help("strings are written 'text'; a quote inside is doubled: 'it''s'")
        });
    }
    let second = rest[first.len_utf8()..].chars().next();
    let signed_digit = matches!(first, '-' | '+') && second.is_some_and(|c| c.is_ascii_digit());
    if first.is_ascii_digit() || signed_digit {
        let chunk: &str = literal_chunk
            .parse_next(rest)
            .map_err(|_| internal(one_char))?;
        let span = Span::new(at, at + chunk.len());
        return read_literal(chunk).map_err(|msg| Diagnostic::new(span, msg));
    }
    if let Ok(tok) = punct.parse_next(rest) {
        return Ok(tok);
    }
    Err(bad_character(rest, first, at))
}

fn internal(span: Span) -> Diagnostic {
    // Only reachable if the dispatch above and the token parsers disagree.
    Diagnostic::new(span, "unexpected character")
}

fn bad_character(rest: &str, first: char, at: usize) -> Diagnostic {
    let two = |n: usize| Span::new(at, at + n);
    let one = two(first.len_utf8());
    match first {
        '=' if rest.starts_with("==") => Diagnostic::new(
            two(2),
            "unexpected '=='; equality is written with a single '='",
        ),
        '<' if rest.starts_with("<>") => {
            Diagnostic::new(two(2), "unexpected '<>'; 'not equal' is written '!='")
        }
        '"' => Diagnostic::new(one, "unexpected '\"'; strings use single quotes")
            .with_help("write 'text'; a quote inside is doubled: 'it''s'"),
        '!' => Diagnostic::new(one, "unexpected character '!'")
            .with_help("'not equal' is written '!='; negation is NOT"),
        '&' => Diagnostic::new(one, "unexpected character '&'").with_help("write AND"),
        '|' => Diagnostic::new(one, "unexpected character '|'").with_help("write OR"),
        '-' | '+' => Diagnostic::new(
            one,
            format!("unexpected character '{first}'; expected digits after the sign"),
        ),
        c => Diagnostic::new(one, format!("unexpected character {c:?}")),
    }
}

fn skip_ws(i: &mut &str) -> ModalResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

/// rule: name := letter_or_underscore ( letter | digit | "_" )*
fn word<'a>(i: &mut &'a str) -> ModalResult<&'a str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .parse_next(i)
}

/// rule: string := "'" ( any char but "'" | "''" )* "'"
fn string_literal(i: &mut &str) -> ModalResult<String> {
    delimited(
        '\'',
        repeat(0.., alt((take_till(1.., '\''), "''".value("'")))).fold(
            String::new,
            |mut acc: String, part: &str| {
                acc.push_str(part);
                acc
            },
        ),
        '\'',
    )
    .parse_next(i)
}

fn literal_chunk<'a>(i: &mut &'a str) -> ModalResult<&'a str> {
    take_while(1.., |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')
    })
    .parse_next(i)
}

fn punct(i: &mut &str) -> ModalResult<Tok> {
    alt((
        "<=".value(Tok::Cmp(CmpOp::Le)),
        ">=".value(Tok::Cmp(CmpOp::Ge)),
        "!=".value(Tok::Cmp(CmpOp::Ne)),
        // `<>` is refused with its own message rather than read as `<`, `>`.
        ('<', winnow::combinator::not('>')).value(Tok::Cmp(CmpOp::Lt)),
        ">".value(Tok::Cmp(CmpOp::Gt)),
        // `==` is refused with its own message rather than read as `=`, `=`.
        ('=', winnow::combinator::not('=')).value(Tok::Cmp(CmpOp::Eq)),
        '('.value(Tok::LParen),
        ')'.value(Tok::RParen),
        ','.value(Tok::Comma),
        ':'.value(Tok::Colon),
    ))
    .parse_next(i)
}

fn read_literal(chunk: &str) -> Result<Tok, String> {
    if let Ok(parts) = timestamp_parts.parse(chunk) {
        return check_timestamp(chunk, parts).map(Tok::Timestamp);
    }
    if let Ok(parts) = date_parts.parse(chunk) {
        return check_date(chunk, parts).map(Tok::Date);
    }
    if let Ok(rel) = relative_parts.parse(chunk) {
        return check_relative(chunk, rel).map(Tok::Relative);
    }
    if number_text.parse(chunk).is_ok() {
        return check_number(chunk).map(Tok::Num);
    }
    Err(shape_error(chunk))
}

/// Says which literal the chunk was probably meant to be.
fn shape_error(chunk: &str) -> String {
    let b = chunk.as_bytes();
    let looks_dated = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    if looks_dated && chunk.contains(['T', 't', ':']) {
        format!(
            "invalid timestamp '{chunk}'; expected YYYY-MM-DDThh:mm:ss[.fraction] \
             followed by Z or ±hh:mm"
        )
    } else if looks_dated {
        format!("invalid date '{chunk}'; expected YYYY-MM-DD")
    } else if chunk.starts_with('+')
        || (chunk.starts_with('-') && chunk.bytes().any(|c| c.is_ascii_alphabetic()))
    {
        format!(
            "invalid relative time '{chunk}'; expected a sign, digits and a unit h, d or w \
             (e.g. -30d)"
        )
    } else {
        format!(
            "invalid number '{chunk}'; expected digits, an optional '-' and decimals (e.g. 49.99)"
        )
    }
}

type DateParts<'a> = (&'a str, &'a str, &'a str);

fn digits<'a>(
    n: usize,
) -> impl Parser<&'a str, &'a str, winnow::error::ErrMode<winnow::error::ContextError>> {
    take_while(n, AsChar::is_dec_digit)
}

/// rule: date := YYYY-MM-DD
fn date_parts<'a>(i: &mut &'a str) -> ModalResult<DateParts<'a>> {
    (digits(4), '-', digits(2), '-', digits(2))
        .map(|(y, _, m, _, d)| (y, m, d))
        .parse_next(i)
}

struct TimestampParts<'a> {
    date: DateParts<'a>,
    hms: [&'a str; 3],
    /// `None` for `Z`.
    offset: Option<[&'a str; 2]>,
}

/// rule: timestamp := YYYY-MM-DD "T" hh:mm:ss[.fraction] ( "Z" | ±hh:mm )
fn timestamp_parts<'a>(i: &mut &'a str) -> ModalResult<TimestampParts<'a>> {
    (
        date_parts,
        'T',
        digits(2),
        ':',
        digits(2),
        ':',
        digits(2),
        // jiff keeps nanoseconds: nine digits at most.
        opt(('.', take_while(1..=9, AsChar::is_dec_digit))),
        alt((
            'Z'.value(None),
            (one_of(['+', '-']), digits(2), ':', digits(2)).map(|(_, h, _, m)| Some([h, m])),
        )),
    )
        .map(|(date, _, h, _, m, _, s, _, offset)| TimestampParts {
            date,
            hms: [h, m, s],
            offset,
        })
        .parse_next(i)
}

/// rule: relative := ( "-" | "+" ) digits ( "h" | "d" | "w" )
fn relative_parts<'a>(i: &mut &'a str) -> ModalResult<(bool, &'a str, RelUnit)> {
    (
        one_of(['-', '+']).map(|c| c == '-'),
        digit1,
        alt((
            'h'.value(RelUnit::Hours),
            'd'.value(RelUnit::Days),
            'w'.value(RelUnit::Weeks),
        )),
    )
        .parse_next(i)
}

/// rule: number := ["-"] digits [ "." digits ]
fn number_text<'a>(i: &mut &'a str) -> ModalResult<&'a str> {
    (opt('-'), digit1, opt(('.', digit1))).take().parse_next(i)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn check_date(text: &str, (y, m, d): DateParts<'_>) -> Result<Date, String> {
    // Four digits each way, so these parses cannot fail or overflow.
    let year: i16 = y.parse().unwrap_or(0);
    let month: i8 = m.parse().unwrap_or(0);
    let day: i8 = d.parse().unwrap_or(0);
    if !(1..=12).contains(&month) {
        return Err(format!("invalid date '{text}': there is no month {m}"));
    }
    let first = Date::new(year, month, 1).map_err(|e| format!("invalid date '{text}': {e}"))?;
    let days = first.days_in_month();
    if day < 1 || day > days {
        let name = MONTHS[(month - 1) as usize];
        return Err(format!(
            "invalid date '{text}': {name} {year:04} has {days} days"
        ));
    }
    Date::new(year, month, day).map_err(|e| format!("invalid date '{text}': {e}"))
}

fn check_timestamp(text: &str, parts: TimestampParts<'_>) -> Result<jiff::Timestamp, String> {
    check_date(text, parts.date).map_err(|e| e.replacen("invalid date", "invalid timestamp", 1))?;
    let [h, m, s] = parts.hms.map(|p| p.parse::<u8>().unwrap_or(99));
    if h > 23 || m > 59 || s > 59 {
        return Err(format!(
            "invalid timestamp '{text}': the time must be 00:00:00 to 23:59:59"
        ));
    }
    if let Some([oh, om]) = parts.offset {
        let (oh, om) = (
            oh.parse::<u8>().unwrap_or(99),
            om.parse::<u8>().unwrap_or(99),
        );
        if oh > 23 || om > 59 {
            return Err(format!(
                "invalid timestamp '{text}': the offset must be -23:59 to +23:59"
            ));
        }
    }
    text.parse::<jiff::Timestamp>()
        .map_err(|e| format!("invalid timestamp '{text}': {e}"))
}

fn check_relative(
    text: &str,
    (negative, amount, unit): (bool, &str, RelUnit),
) -> Result<Relative, String> {
    let amount: u32 = amount.parse().map_err(|_| {
        format!(
            "relative time '{text}' is too large; the amount is at most {}",
            u32::MAX
        )
    })?;
    Ok(Relative {
        negative,
        amount,
        unit,
    })
}

fn check_number(text: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(text).map_err(|_| {
        format!("number '{text}' cannot be held exactly; use at most 28 significant digits")
    })
}

/// Reads the whole text as one literal of the given shape (for the JSON
/// form, which keeps dates, timestamps and relative times as text).
pub(crate) fn date_from_text(text: &str) -> Result<Date, String> {
    let parts = date_parts
        .parse(text)
        .map_err(|_| format!("invalid date '{text}'; expected YYYY-MM-DD"))?;
    check_date(text, parts)
}

pub(crate) fn timestamp_from_text(text: &str) -> Result<jiff::Timestamp, String> {
    let parts = timestamp_parts.parse(text).map_err(|_| {
        format!(
            "invalid timestamp '{text}'; expected YYYY-MM-DDThh:mm:ss[.fraction] \
             followed by Z or ±hh:mm"
        )
    })?;
    check_timestamp(text, parts)
}

pub(crate) fn relative_from_text(text: &str) -> Result<Relative, String> {
    let parts = relative_parts.parse(text).map_err(|_| {
        format!(
            "invalid relative time '{text}'; expected a sign, digits and a unit h, d or w \
             (e.g. -30d)"
        )
    })?;
    check_relative(text, parts)
}

/// A number in the language's own syntax (no exponent, no `+`).
pub(crate) fn number_from_text(text: &str) -> Result<Decimal, String> {
    number_text
        .parse(text)
        .map_err(|_| format!("invalid number '{text}'"))?;
    check_number(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let (t, e) = lex(src);
        assert!(e.is_none(), "{e:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks("-30d +2w 5 -5.50 2024-01-31"),
            vec![
                Tok::Relative(Relative {
                    negative: true,
                    amount: 30,
                    unit: RelUnit::Days
                }),
                Tok::Relative(Relative {
                    negative: false,
                    amount: 2,
                    unit: RelUnit::Weeks
                }),
                Tok::Num(Decimal::new(5, 0)),
                Tok::Num(Decimal::new(-550, 2)),
                Tok::Date(Date::new(2024, 1, 31).unwrap()),
                Tok::End
            ]
        );
        assert_eq!(toks("'it''s'"), vec![Tok::Str("it's".into()), Tok::End]);
        assert_eq!(toks("''"), vec![Tok::Str(String::new()), Tok::End]);
    }

    #[test]
    fn errors_stop_lexing() {
        let (t, e) = lex("a = 'x");
        assert_eq!(t.len(), 3);
        assert_eq!(e.unwrap().span, Span::new(4, 5));
        let (_, e) = lex("a == 1");
        assert!(e.unwrap().message.contains("single '='"));
        let (_, e) = lex("2024-02-30");
        assert_eq!(
            e.unwrap().message,
            "invalid date '2024-02-30': February 2024 has 29 days"
        );
        let (_, e) = lex("-99999999999d");
        assert!(e.unwrap().message.contains("too large"));
        let (_, e) = lex("99999999999999999999999999999999");
        assert!(e.unwrap().message.contains("cannot be held exactly"));
    }
}
