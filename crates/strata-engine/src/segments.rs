//! Saved segments: parsing them, resolving `in_segment` references, and
//! refusing unknown names and cycles before anything is evaluated.

use rustc_hash::FxHashMap;
use strata_data::{RuleSource, SavedSegment, SegmentKind};
use strata_lang::Diagnostic;
use strata_lang::ast::{Expr, Literal, Span, Value};
use strata_lang::catalog::{Kind, Schema};

use crate::error::RuleError;
use crate::plan::SegmentLookup;

pub fn kind_of(kind: SegmentKind) -> Kind {
    match kind {
        SegmentKind::Customer => Kind::Customer,
        SegmentKind::Product => Kind::Product,
    }
}

fn diagnostic(span: Span, message: String, help: Option<String>) -> Diagnostic {
    Diagnostic {
        span,
        message,
        help,
    }
}

/// Segment names by name, with their kinds, for lookups and suggestions.
pub struct Directory {
    pub by_name: FxHashMap<String, (usize, Kind)>,
    pub names: Vec<(String, Kind)>,
}

impl Directory {
    pub fn new(segments: &[SavedSegment]) -> Directory {
        let names: Vec<(String, Kind)> = segments
            .iter()
            .map(|s| (s.name.clone(), kind_of(s.kind)))
            .collect();
        let by_name = names
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| (name.clone(), (i, *kind)))
            .collect();
        Directory { by_name, names }
    }

    fn suggestion(&self, kind: Kind, name: &str) -> Option<String> {
        self.names
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(n, _)| (strsim::jaro_winkler(n, name), n))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| format!("did you mean '{n}'?"))
    }
}

impl SegmentLookup for Directory {
    fn lookup(&self, kind: Kind, lit: &Literal) -> Result<usize, Diagnostic> {
        let Value::String(name) = &lit.value else {
            return Err(diagnostic(
                lit.span,
                "a segment name must be a string".into(),
                None,
            ));
        };
        match self.by_name.get(name.as_str()) {
            Some(&(index, k)) if k == kind => Ok(index),
            Some(&(_, k)) => Err(diagnostic(
                lit.span,
                format!("segment '{name}' is a {k} segment; a {kind} segment is needed here"),
                None,
            )),
            None => {
                let suggestion = self.suggestion(kind, name);
                let message = match &suggestion {
                    Some(s) => format!("unknown {kind} segment '{name}'; {s}"),
                    None => format!("unknown {kind} segment '{name}'"),
                };
                Err(diagnostic(lit.span, message, None))
            }
        }
    }
}

/// Parses and checks a saved segment's rule (text or JSON form).
pub fn parse_saved(segment: &SavedSegment, schema: &Schema) -> Result<(Expr, String), RuleError> {
    let refuse = |diagnostic: Diagnostic, source: String| RuleError {
        diagnostic,
        source,
        segment: Some(segment.name.clone()),
    };
    match &segment.rule {
        RuleSource::Text(text) => strata_lang::parse_rule(text, schema)
            .map(|e| (e, text.clone()))
            .map_err(|d| refuse(d, text.clone())),
        RuleSource::Json(value) => {
            let expr = strata_lang::json::from_json(value).map_err(|e| {
                refuse(
                    diagnostic(Span::default(), e.to_string(), None),
                    String::new(),
                )
            })?;
            let text = strata_lang::to_text(&expr);
            // Check the printed form so that messages point into real text.
            strata_lang::parse_rule(&text, schema)
                .map(|e| (e, text.clone()))
                .map_err(|d| refuse(d, text.clone()))
        }
    }
}

/// Finds a cycle among saved segments' references, if any, as the list of
/// indexes along it (first repeated at the end).
pub fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    let mut path: Vec<usize> = Vec::new();
    // Iterative DFS: a segment graph written by users may be deep.
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        path.push(root);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&child) = edges[node].get(*next) {
                *next += 1;
                match mark[child] {
                    Mark::Open => {
                        let from = path.iter().position(|&x| x == child).unwrap_or(0);
                        let mut cycle = path[from..].to_vec();
                        cycle.push(child);
                        return Some(cycle);
                    }
                    Mark::New => {
                        mark[child] = Mark::Open;
                        path.push(child);
                        stack.push((child, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    #[test]
    fn cycles_are_found_with_their_path() {
        assert_eq!(find_cycle(&[vec![1], vec![2], vec![]]), None);
        assert_eq!(
            find_cycle(&[vec![1], vec![2], vec![0]]),
            Some(vec![0, 1, 2, 0])
        );
        assert_eq!(find_cycle(&[vec![], vec![1]]), Some(vec![1, 1]));
        assert_eq!(find_cycle(&[vec![1, 2], vec![2], vec![]]), None);
    }
}
