//! How row values that have no column type of their own are written into
//! the tables and read back, the same in every backend: tag lists, custom
//! attributes, tier lists, rule forms, kinds and import reports.
//!
//! Reading back refuses anything the writing side could not have produced
//! with [`StoreError::Corrupt`]: a table edited by hand should stop a load,
//! not slip a different dataset into the engine.

use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use strata_data::{RuleSource, SegmentKind, Tier, TierMetric};
use strata_lang::catalog::Kind;

use crate::{Counts, ImportReport, StoreError};

fn corrupt(what: &str, text: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} '{text}': {why}"))
}

/// `None` for an empty text: the dataset holds an empty cell as null, so
/// the tables do too, and a row compares equal however it spelled it.
pub(crate) fn text(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// Tags as the dataset keeps them (trimmed, no empty ones, no repeats,
/// first-seen order), as a JSON array.
pub(crate) fn tags_json(tags: &[String]) -> String {
    let mut kept: Vec<&str> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if !tag.is_empty() && !kept.contains(&tag) {
            kept.push(tag);
        }
    }
    Value::from(kept).to_string()
}

pub(crate) fn tags_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("tags", text, e))
}

/// Custom attributes as `[[name, value|null], ...]` (empty values null).
pub(crate) fn custom_json(custom: &[(String, Option<String>)]) -> String {
    let items: Vec<Value> = custom
        .iter()
        .map(|(name, value)| json!([name, self::text(value.as_deref())]))
        .collect();
    Value::from(items).to_string()
}

pub(crate) fn custom_from_json(text: &str) -> Result<Vec<(String, Option<String>)>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("custom attributes", text, e))
}

pub(crate) fn decimal(text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text).map_err(|e| corrupt("decimal", text, e))
}

pub(crate) fn date(text: &str) -> Result<Date, StoreError> {
    Date::from_str(text).map_err(|e| corrupt("date", text, e))
}

pub(crate) fn metric_name(metric: TierMetric) -> &'static str {
    match metric {
        TierMetric::Orders => "orders",
        TierMetric::Units => "units",
        TierMetric::Revenue => "revenue",
        TierMetric::Profit => "profit",
    }
}

pub(crate) fn metric_from_name(name: &str) -> Result<TierMetric, StoreError> {
    Ok(match name {
        "orders" => TierMetric::Orders,
        "units" => TierMetric::Units,
        "revenue" => TierMetric::Revenue,
        "profit" => TierMetric::Profit,
        _ => return Err(corrupt("tier metric", name, "unknown")),
    })
}

/// Tiers as `[{"name", "threshold": "decimal"}]`, highest threshold first
/// (the order `TierScheme` promises). Thresholds are text so that their
/// written scale survives every JSON reader.
pub(crate) fn tiers_json(tiers: &[Tier]) -> String {
    let mut sorted: Vec<&Tier> = tiers.iter().collect();
    sorted.sort_by_key(|t| std::cmp::Reverse(t.threshold));
    let items: Vec<Value> = sorted
        .iter()
        .map(|t| json!({"name": t.name, "threshold": t.threshold.to_string()}))
        .collect();
    Value::from(items).to_string()
}

pub(crate) fn tiers_from_json(text: &str) -> Result<Vec<Tier>, StoreError> {
    let bad = |why: &str| corrupt("tiers", text, why);
    let value: Value = serde_json::from_str(text).map_err(|e| corrupt("tiers", text, e))?;
    let items = value.as_array().ok_or_else(|| bad("not an array"))?;
    items
        .iter()
        .map(|item| {
            let name = item["name"]
                .as_str()
                .ok_or_else(|| bad("a tier without a name"))?;
            let threshold = item["threshold"]
                .as_str()
                .ok_or_else(|| bad("a tier without a threshold"))?;
            Ok(Tier {
                name: name.to_owned(),
                threshold: decimal(threshold)?,
            })
        })
        .collect()
}

/// The scheme marketplace as stored: `''` is the fallback scheme.
pub(crate) fn marketplace_key(marketplace: Option<&str>) -> &str {
    marketplace.unwrap_or("")
}

pub(crate) fn marketplace_from_key(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

pub(crate) fn segment_kind_name(kind: SegmentKind) -> &'static str {
    match kind {
        SegmentKind::Customer => "customer",
        SegmentKind::Product => "product",
    }
}

pub(crate) fn segment_kind(kind: Kind) -> SegmentKind {
    match kind {
        Kind::Customer => SegmentKind::Customer,
        Kind::Product => SegmentKind::Product,
    }
}

pub(crate) fn segment_kind_from_name(name: &str) -> Result<SegmentKind, StoreError> {
    match name {
        "customer" => Ok(SegmentKind::Customer),
        "product" => Ok(SegmentKind::Product),
        _ => Err(corrupt("segment kind", name, "unknown")),
    }
}

pub(crate) fn kind_from_name(name: &str) -> Result<Kind, StoreError> {
    Ok(match segment_kind_from_name(name)? {
        SegmentKind::Customer => Kind::Customer,
        SegmentKind::Product => Kind::Product,
    })
}

/// A saved rule as the `segments` table holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleForms {
    /// `text` or `json`: which form was written.
    pub source: &'static str,
    /// As written, or the printed form of a JSON rule.
    pub text: String,
    /// As written, or the JSON form of a text rule.
    pub json: String,
}

impl RuleForms {
    /// Both forms of a rule. Rules reach the store checked (by the dataset
    /// loader or the live engine); one that does not even parse is
    /// refused rather than stored without its other form.
    pub(crate) fn of(name: &str, rule: &RuleSource) -> Result<RuleForms, StoreError> {
        let refuse = |why: String| StoreError::Invalid(format!("segment '{name}': the rule {why}"));
        Ok(match rule {
            RuleSource::Text(text) => {
                let expr = strata_lang::parse(text)
                    .map_err(|d| refuse(format!("does not parse: {}", d.message)))?;
                RuleForms {
                    source: "text",
                    text: text.clone(),
                    json: strata_lang::to_json(&strata_lang::normalise(expr)).to_string(),
                }
            }
            RuleSource::Json(value) => {
                let expr = strata_lang::from_json(value)
                    .map_err(|e| refuse(format!("is not a rule: {e}")))?;
                RuleForms {
                    source: "json",
                    text: strata_lang::to_text(&expr),
                    json: value.to_string(),
                }
            }
        })
    }

    /// The rule as it was written.
    pub(crate) fn rule(source: &str, text: String, json: &str) -> Result<RuleSource, StoreError> {
        match source {
            "text" => Ok(RuleSource::Text(text)),
            "json" => serde_json::from_str(json)
                .map(RuleSource::Json)
                .map_err(|e| corrupt("rule", json, e)),
            _ => Err(corrupt("rule source", source, "unknown")),
        }
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({"inserted": c.inserted, "updated": c.updated, "unchanged": c.unchanged})
}

/// The report an import row keeps once done.
pub(crate) fn report_json(r: &ImportReport) -> String {
    json!({
        "products": counts_json(&r.products),
        "customers": counts_json(&r.customers),
        "orders": counts_json(&r.orders),
        "lines": counts_json(&r.lines),
        "daily": counts_json(&r.daily),
        "segments": counts_json(&r.segments),
        "tier_schemes": counts_json(&r.tier_schemes),
    })
    .to_string()
}

/// Event types in the `events` table.
pub(crate) const ENTER: &str = "enter";
pub(crate) const EXIT: &str = "exit";
pub(crate) const TIER: &str = "tier";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale_and_sign() {
        for text in [
            "0",
            "1.50",
            "-0.00",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
        ] {
            let d = decimal(text).unwrap();
            assert_eq!(
                decimal(&d.to_string()).unwrap().scale(),
                d.scale(),
                "{text}"
            );
            assert_eq!(
                format!("{:?}", decimal(&d.to_string()).unwrap()),
                format!("{d:?}")
            );
        }
    }

    #[test]
    fn tags_are_stored_as_the_dataset_keeps_them() {
        let tags = [" vip ", "", "new", "vip"].map(String::from);
        assert_eq!(tags_json(&tags), r#"["vip","new"]"#);
        assert_eq!(tags_from_json(&tags_json(&tags)).unwrap(), ["vip", "new"]);
    }

    #[test]
    fn custom_attributes_round_trip() {
        let custom = vec![
            ("x_color".to_owned(), Some("red".to_owned())),
            ("x_size".to_owned(), None),
            ("x_fit".to_owned(), Some(String::new())),
        ];
        let back = custom_from_json(&custom_json(&custom)).unwrap();
        assert_eq!(back[..2], custom[..2]);
        assert_eq!(back[2], ("x_fit".to_owned(), None));
    }

    #[test]
    fn tiers_round_trip_highest_first() {
        let tiers = vec![
            Tier {
                name: "Silver".into(),
                threshold: decimal("100.0").unwrap(),
            },
            Tier {
                name: "Gold".into(),
                threshold: decimal("1000").unwrap(),
            },
        ];
        let back = tiers_from_json(&tiers_json(&tiers)).unwrap();
        assert_eq!(back, [tiers[1].clone(), tiers[0].clone()]);
        assert_eq!(back[1].threshold.scale(), 1);
    }

    #[test]
    fn rule_forms_of_both_sources() {
        let text = RuleForms::of(
            "s",
            &RuleSource::Text("amount_spent > 5 and  orders_count >= 1".into()),
        )
        .unwrap();
        assert_eq!(text.source, "text");
        assert_eq!(text.text, "amount_spent > 5 and  orders_count >= 1");
        let json: Value = serde_json::from_str(&text.json).unwrap();
        let from_json = RuleForms::of("s", &RuleSource::Json(json.clone())).unwrap();
        assert_eq!(from_json.source, "json");
        assert_eq!(from_json.text, "amount_spent > 5 AND orders_count >= 1");
        assert_eq!(
            RuleForms::rule("json", from_json.text.clone(), &from_json.json).unwrap(),
            RuleSource::Json(json)
        );
        assert!(matches!(
            RuleForms::of("s", &RuleSource::Text("amount_spent >".into())),
            Err(StoreError::Invalid(_))
        ));
    }
}
