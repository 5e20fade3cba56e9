//! The JSON files of a dataset: `settings.json`, `tiers.json` (tiers.md) and
//! `segments.json`. All are small and optional, so each is read whole and
//! validated from a `serde_json::Value`: that gives messages naming the exact
//! place and rule (`[0].tiers[2].threshold`), which derive-based
//! deserialisation would not.

use std::io;
use std::path::Path;

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::{LoadError, Problem, Problems};
use crate::parse;
use crate::store::{RuleSource, SavedSegment, SegmentKind, Settings, Tier, TierMetric, TierScheme};

const SETTINGS: &str = "settings.json";
const TIERS: &str = "tiers.json";
const SEGMENTS: &str = "segments.json";
const MAX_TIERS: usize = 10;

/// Reads and parses an optional JSON file: `None` if absent or not JSON (a
/// problem).
fn read_json(
    dir: &Path,
    file: &'static str,
    problems: &mut Problems,
) -> Result<Option<Value>, LoadError> {
    let path = dir.join(file);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LoadError::Io { path, source }),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            problems.add(|| Problem::new(file, format!("not valid JSON: {e}")));
            Ok(None)
        }
    }
}

/// Problems of one JSON file, located by a path into the document.
struct Sink<'a> {
    file: &'static str,
    problems: &'a mut Problems,
}

impl Sink<'_> {
    fn whole(&mut self, message: &str) {
        let file = self.file;
        self.problems.add(|| Problem::new(file, message));
    }

    fn at(&mut self, path: &str, message: &str) {
        let file = self.file;
        self.problems
            .add(|| Problem::new(file, message).column(path));
    }

    fn got(&mut self, path: &str, message: &str, got: &Value) {
        let file = self.file;
        self.problems.add(|| {
            let got = match got {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Problem::new(file, message).column(path).got(&got)
        });
    }

    /// The object at `path`, or a problem.
    fn object<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Map<String, Value>> {
        let object = value.as_object();
        if object.is_none() {
            self.got(path, "expected an object", value);
        }
        object
    }

    /// Reports keys other than `allowed`.
    fn known_keys(&mut self, path: &str, object: &Map<String, Value>, allowed: &[&str]) {
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                self.at(&format!("{path}.{key}"), "unknown key");
            }
        }
    }

    /// A required non-empty text member.
    fn name<'v>(&mut self, path: &str, object: &'v Map<String, Value>) -> Option<&'v str> {
        let path = format!("{path}.name");
        match object.get("name") {
            None | Some(Value::Null) => self.at(&path, "missing"),
            Some(Value::String(name)) if !name.is_empty() => return Some(name),
            Some(other) => self.got(&path, "must be a non-empty text", other),
        }
        None
    }
}

pub(crate) fn load_settings(dir: &Path, problems: &mut Problems) -> Result<Settings, LoadError> {
    let mut settings = Settings::default();
    let Some(value) = read_json(dir, SETTINGS, problems)? else {
        return Ok(settings);
    };
    let mut sink = Sink {
        file: SETTINGS,
        problems,
    };
    let Some(object) = value.as_object() else {
        sink.whole(r#"expected an object like {"timezone": "Europe/Berlin", "currency": "EUR"}"#);
        return Ok(settings);
    };
    for (key, value) in object {
        match (key.as_str(), value) {
            (_, Value::Null) if key == "timezone" || key == "currency" => {}
            ("timezone", Value::String(name)) => match TimeZone::get(name) {
                Ok(tz) => {
                    settings.timezone = tz;
                    settings.timezone_name = name.clone();
                }
                Err(_) => sink.got(key, "unknown time zone", value),
            },
            ("timezone", _) => sink.got(key, "must be a time zone name", value),
            ("currency", Value::String(code)) if !code.is_empty() => {
                settings.currency = code.clone();
            }
            ("currency", _) => sink.got(key, "must be a currency code", value),
            _ => sink.at(key, "unknown key"),
        }
    }
    Ok(settings)
}

pub(crate) fn load_tiers(
    dir: &Path,
    problems: &mut Problems,
) -> Result<Vec<TierScheme>, LoadError> {
    let Some(value) = read_json(dir, TIERS, problems)? else {
        return Ok(Vec::new());
    };
    let mut sink = Sink {
        file: TIERS,
        problems,
    };
    let Some(schemes) = value.as_array() else {
        sink.whole("expected an array of tier schemes");
        return Ok(Vec::new());
    };
    let mut out: Vec<TierScheme> = Vec::new();
    // Marketplace of each valid-so-far scheme and where it was, to name the
    // first of two schemes for one marketplace.
    let mut marketplaces: Vec<(Option<&str>, usize)> = Vec::new();
    for (i, scheme) in schemes.iter().enumerate() {
        let path = format!("[{i}]");
        let Some(object) = sink.object(&path, scheme) else {
            continue;
        };
        sink.known_keys(&path, object, &["marketplace", "metric", "tiers"]);
        let marketplace = match object.get("marketplace") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(name)) if !name.is_empty() => Some(Some(name.as_str())),
            Some(other) => {
                sink.got(
                    &format!("{path}.marketplace"),
                    "must be a marketplace name, or null for the fallback scheme",
                    other,
                );
                None
            }
        };
        if let Some(marketplace) = marketplace {
            if let Some(&(_, first)) = marketplaces.iter().find(|(m, _)| *m == marketplace) {
                let path = format!("{path}.marketplace");
                match marketplace {
                    Some(name) => sink.got(
                        &path,
                        &format!("a second scheme for this marketplace (first at [{first}])"),
                        &name.into(),
                    ),
                    None => sink.at(
                        &path,
                        &format!("a second fallback scheme, marketplace null (first at [{first}])"),
                    ),
                }
            } else {
                marketplaces.push((marketplace, i));
            }
        }
        let metric = metric(&mut sink, &path, object.get("metric"));
        let tiers = tiers(&mut sink, &path, object.get("tiers"));
        // A scheme with any problem is left out; the dataset is refused anyway.
        if let (Some(marketplace), Some(metric), Some(mut tiers)) = (marketplace, metric, tiers) {
            tiers.sort_by_key(|tier| std::cmp::Reverse(tier.threshold));
            out.push(TierScheme {
                marketplace: marketplace.map(str::to_owned),
                metric,
                tiers,
            });
        }
    }
    Ok(out)
}

fn metric(sink: &mut Sink<'_>, path: &str, value: Option<&Value>) -> Option<TierMetric> {
    let path = format!("{path}.metric");
    let Some(value) = value.filter(|v| !v.is_null()) else {
        sink.at(&path, "missing (one of orders, units, revenue, profit)");
        return None;
    };
    // The field names of fields.md are accepted as well.
    let metric = match value.as_str() {
        Some("orders" | "number_of_orders") => TierMetric::Orders,
        Some("units" | "units_purchased") => TierMetric::Units,
        Some("revenue" | "amount_spent") => TierMetric::Revenue,
        Some("profit" | "total_profit") => TierMetric::Profit,
        _ => {
            sink.got(
                &path,
                "unknown metric (expected orders, units, revenue or profit)",
                value,
            );
            return None;
        }
    };
    Some(metric)
}

/// The tiers of one scheme, in file order; `None` if any rule is broken.
fn tiers(sink: &mut Sink<'_>, path: &str, value: Option<&Value>) -> Option<Vec<Tier>> {
    let path = format!("{path}.tiers");
    let tiers = match value {
        None | Some(Value::Null) => {
            sink.at(&path, "missing");
            return None;
        }
        Some(Value::Array(tiers)) => tiers,
        Some(other) => {
            sink.got(&path, "expected an array of tiers", other);
            return None;
        }
    };
    let mut valid = true;
    if tiers.is_empty() || tiers.len() > MAX_TIERS {
        let count = tiers.len();
        sink.at(
            &path,
            &format!("a scheme has 1 to {MAX_TIERS} tiers, this one has {count}"),
        );
        valid = false;
    }
    let mut out: Vec<Tier> = Vec::new();
    let mut names: Vec<(&str, usize)> = Vec::new();
    let mut thresholds: Vec<(Decimal, usize)> = Vec::new();
    for (j, tier) in tiers.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let Some(object) = sink.object(&path, tier) else {
            valid = false;
            continue;
        };
        sink.known_keys(&path, object, &["name", "threshold"]);
        let name = sink.name(&path, object);
        if let Some(name) = name {
            if let Some(&(_, first)) = names.iter().find(|(n, _)| *n == name) {
                sink.got(
                    &format!("{path}.name"),
                    &format!(
                        "duplicate tier name (first at {path_first})",
                        path_first = sibling(&path, first)
                    ),
                    &name.into(),
                );
                valid = false;
            } else {
                names.push((name, j));
            }
        }
        let threshold = threshold(sink, &format!("{path}.threshold"), object.get("threshold"));
        if let Some(value) = threshold {
            if let Some(&(_, first)) = thresholds.iter().find(|(t, _)| *t == value) {
                sink.got(
                    &format!("{path}.threshold"),
                    &format!("duplicate threshold (first at {})", sibling(&path, first)),
                    object.get("threshold").unwrap_or(&Value::Null),
                );
                valid = false;
            } else {
                thresholds.push((value, j));
            }
        }
        match (name, threshold) {
            (Some(name), Some(threshold)) => out.push(Tier {
                name: name.to_owned(),
                threshold,
            }),
            _ => valid = false,
        }
    }
    valid.then_some(out)
}

/// `[0].tiers[3]` → `[0].tiers[j]`.
fn sibling(path: &str, j: usize) -> String {
    let base = &path[..path.rfind('[').unwrap_or(path.len())];
    format!("{base}[{j}]")
}

/// A threshold: a JSON number (read exactly, exponent allowed since it is
/// valid JSON) or a text holding a decimal.
fn threshold(sink: &mut Sink<'_>, path: &str, value: Option<&Value>) -> Option<Decimal> {
    let parsed = match value {
        None | Some(Value::Null) => {
            sink.at(path, "missing");
            return None;
        }
        Some(Value::Number(number)) => {
            let text = number.as_str();
            if text.contains(['e', 'E']) {
                Decimal::from_scientific(text).map_err(|_| parse::OUT_OF_RANGE)
            } else {
                parse::decimal(text)
            }
        }
        Some(Value::String(text)) => parse::decimal(text.trim_ascii()),
        Some(_) => Err(parse::NOT_A_DECIMAL),
    };
    match parsed {
        Ok(threshold) => Some(threshold),
        Err(message) => {
            sink.got(path, message, value.unwrap_or(&Value::Null));
            None
        }
    }
}

pub(crate) fn load_segments(
    dir: &Path,
    problems: &mut Problems,
) -> Result<Vec<SavedSegment>, LoadError> {
    let Some(value) = read_json(dir, SEGMENTS, problems)? else {
        return Ok(Vec::new());
    };
    let mut sink = Sink {
        file: SEGMENTS,
        problems,
    };
    let Some(segments) = value.as_array() else {
        sink.whole(
            r#"expected an array of segments like [{"name": .., "kind": "customer", "rule": ..}]"#,
        );
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut names: Vec<(&str, usize)> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let path = format!("[{i}]");
        let Some(object) = sink.object(&path, segment) else {
            continue;
        };
        sink.known_keys(&path, object, &["name", "kind", "rule", "description"]);
        let name = sink.name(&path, object);
        if let Some(name) = name {
            if let Some(&(_, first)) = names.iter().find(|(n, _)| *n == name) {
                sink.got(
                    &format!("{path}.name"),
                    &format!("duplicate segment name (first at [{first}])"),
                    &name.into(),
                );
            } else {
                names.push((name, i));
            }
        }
        let kind_path = format!("{path}.kind");
        let kind = match object.get("kind") {
            None | Some(Value::Null) => {
                sink.at(&kind_path, "missing (customer or product)");
                None
            }
            Some(Value::String(kind)) if kind == "customer" => Some(SegmentKind::Customer),
            Some(Value::String(kind)) if kind == "product" => Some(SegmentKind::Product),
            Some(other) => {
                sink.got(&kind_path, "expected customer or product", other);
                None
            }
        };
        let rule_path = format!("{path}.rule");
        let rule = match object.get("rule") {
            None | Some(Value::Null) => {
                sink.at(&rule_path, "missing");
                None
            }
            Some(Value::String(text)) => Some(RuleSource::Text(text.clone())),
            Some(tree @ Value::Object(_)) => Some(RuleSource::Json(tree.clone())),
            Some(other) => {
                sink.got(
                    &rule_path,
                    "expected a rule as text or as a JSON object",
                    other,
                );
                None
            }
        };
        let description = match object.get("description") {
            Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
            None | Some(Value::Null | Value::String(_)) => None,
            Some(other) => {
                sink.got(&format!("{path}.description"), "must be a text", other);
                None
            }
        };
        if let (Some(name), Some(kind), Some(rule)) = (name, kind, rule) {
            out.push(SavedSegment {
                name: name.to_owned(),
                kind,
                rule,
                description,
            });
        }
    }
    Ok(out)
}
