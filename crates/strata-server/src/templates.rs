//! The built-in library of segment templates: a rule with named,
//! typed parameters and their defaults.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use strata_lang::catalog::Kind;
use utoipa::ToSchema;

use crate::api::kind_name;
use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// A whole number ≥ 1 (days, counts).
    Count,
    /// An exact decimal (money, units).
    Number,
    /// A text, quoted into the rule.
    Text,
}

pub struct Param {
    pub name: &'static str,
    pub kind: ParamType,
    pub default: &'static str,
    pub description: &'static str,
}

pub struct Template {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    /// The rule, `{param}` where a parameter goes.
    pub rule: &'static str,
    pub params: &'static [Param],
}

const DAYS_90: Param = Param {
    name: "days",
    kind: ParamType::Count,
    default: "90",
    description: "days to look back",
};

const DAYS_30: Param = Param {
    name: "days",
    kind: ParamType::Count,
    default: "30",
    description: "days to look back",
};

static TEMPLATES: &[Template] = &[
    Template {
        id: "high-spenders",
        name: "High spenders",
        description: "Customers who spent more than the amount, with at least the number of orders.",
        kind: Kind::Customer,
        rule: "amount_spent > {amount} AND number_of_orders >= {orders}",
        params: &[
            Param {
                name: "amount",
                kind: ParamType::Number,
                default: "500",
                description: "amount spent, all time",
            },
            Param {
                name: "orders",
                kind: ParamType::Count,
                default: "3",
                description: "orders at least",
            },
        ],
    },
    Template {
        id: "lapsed-customers",
        name: "Lapsed customers",
        description: "Customers who ordered before but not in the last N days.",
        kind: Kind::Customer,
        rule: "number_of_orders >= 1 AND NOT purchased(since: -{days}d)",
        params: &[Param {
            name: "days",
            kind: ParamType::Count,
            default: "180",
            description: "days without an order",
        }],
    },
    Template {
        id: "new-customers",
        name: "New customers",
        description: "Customers whose first order is in the last N days.",
        kind: Kind::Customer,
        rule: "first_order_date >= -{days}d",
        params: &[DAYS_30],
    },
    Template {
        id: "repeat-buyers",
        name: "Repeat buyers",
        description: "Customers with at least two orders.",
        kind: Kind::Customer,
        rule: "number_of_orders >= {orders}",
        params: &[Param {
            name: "orders",
            kind: ParamType::Count,
            default: "2",
            description: "orders at least",
        }],
    },
    Template {
        id: "one-time-buyers",
        name: "One-time buyers",
        description: "Customers with exactly one order.",
        kind: Kind::Customer,
        rule: "number_of_orders = 1",
        params: &[],
    },
    Template {
        id: "bought-category-recently",
        name: "Bought a category recently",
        description: "Customers who bought from a category in the last N days.",
        kind: Kind::Customer,
        rule: "purchased(category: {category}, since: -{days}d)",
        params: &[
            Param {
                name: "category",
                kind: ParamType::Text,
                default: "Socks",
                description: "product category",
            },
            DAYS_90,
        ],
    },
    Template {
        id: "marketing-subscribers-without-orders",
        name: "Subscribers who never ordered",
        description: "Customers who accept marketing and have no order.",
        kind: Kind::Customer,
        rule: "accepts_marketing = true AND number_of_orders = 0",
        params: &[],
    },
    Template {
        id: "low-stock",
        name: "Low stock",
        description: "Products with fewer days of stock left than the threshold.",
        kind: Kind::Product,
        rule: "days_of_stock < {days}",
        params: &[Param {
            name: "days",
            kind: ParamType::Count,
            default: "14",
            description: "days of stock",
        }],
    },
    Template {
        id: "overstock",
        name: "Overstock",
        description: "Products with more days of stock than the threshold.",
        kind: Kind::Product,
        rule: "days_of_stock > {days}",
        params: &[Param {
            name: "days",
            kind: ParamType::Count,
            default: "180",
            description: "days of stock",
        }],
    },
    Template {
        id: "best-sellers",
        name: "Best sellers",
        description: "Products with a revenue share of at least the percentage in their seller account and marketplace over 30 days.",
        kind: Kind::Product,
        rule: "revenue_share >= {percent}",
        params: &[Param {
            name: "percent",
            kind: ParamType::Number,
            default: "1",
            description: "percent of 30-day sales",
        }],
    },
    Template {
        id: "no-sales-30-days",
        name: "No sales in 30 days",
        description: "Products in stock that sold nothing in the last 30 days.",
        kind: Kind::Product,
        rule: "units_30d = 0 AND inventory > 0",
        params: &[],
    },
    Template {
        id: "missing-listing-fields",
        name: "Missing title or brand",
        description: "Products whose title or brand is empty (listing fields to fill in).",
        kind: Kind::Product,
        rule: "title IS NULL OR brand IS NULL",
        params: &[],
    },
    Template {
        id: "low-conversion",
        name: "Low conversion",
        description: "Products with sessions but a 30-day conversion rate under the percentage.",
        kind: Kind::Product,
        rule: "sessions_30d >= {sessions} AND conversion_rate_30d < {percent}",
        params: &[
            Param {
                name: "sessions",
                kind: ParamType::Count,
                default: "100",
                description: "sessions at least",
            },
            Param {
                name: "percent",
                kind: ParamType::Number,
                default: "2",
                description: "conversion rate, percent",
            },
        ],
    },
    Template {
        id: "falling-rank",
        name: "Poor sales rank",
        description: "Products whose best-seller rank is worse (higher) than the threshold.",
        kind: Kind::Product,
        rule: "bsr > {rank}",
        params: &[Param {
            name: "rank",
            kind: ParamType::Count,
            default: "100000",
            description: "BSR",
        }],
    },
    Template {
        id: "fast-movers",
        name: "Fast movers",
        description: "Products whose weighted daily velocity is at least the number of units a day.",
        kind: Kind::Product,
        rule: "daily_velocity >= {units}",
        params: &[Param {
            name: "units",
            kind: ParamType::Number,
            default: "5",
            description: "units a day",
        }],
    },
];

pub fn all() -> &'static [Template] {
    TEMPLATES
}

#[derive(Serialize, ToSchema)]
pub struct ParamView {
    pub name: String,
    /// `count`, `number` or `text`.
    #[serde(rename = "type")]
    pub kind: String,
    pub default: String,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    /// The rule with the defaults filled in.
    pub rule: String,
    pub params: Vec<ParamView>,
}

impl TemplateView {
    pub fn of(t: &Template) -> TemplateView {
        TemplateView {
            id: t.id.to_owned(),
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            kind: kind_name(t.kind).to_owned(),
            rule: t.instantiate(&BTreeMap::new()).unwrap_or_default(),
            params: t
                .params
                .iter()
                .map(|p| ParamView {
                    name: p.name.to_owned(),
                    kind: match p.kind {
                        ParamType::Count => "count",
                        ParamType::Number => "number",
                        ParamType::Text => "text",
                    }
                    .to_owned(),
                    default: p.default.to_owned(),
                    description: p.description.to_owned(),
                })
                .collect(),
        }
    }
}

impl Template {
    /// The rule text with `given` values (defaults for the others). A
    /// value is checked against its parameter's type before it goes into
    /// the rule, so a template cannot be used to inject rule text.
    pub fn instantiate(&self, given: &BTreeMap<String, Value>) -> ApiResult<String> {
        if let Some(unknown) = given
            .keys()
            .find(|k| !self.params.iter().any(|p| p.name == *k))
        {
            return Err(ApiError::unprocessable(
                "unknown_parameter",
                format!("template '{}' has no parameter '{unknown}'", self.id),
            ));
        }
        let mut rule = self.rule.to_owned();
        for p in self.params {
            let raw = match given.get(p.name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(ApiError::unprocessable(
                        "invalid_parameter",
                        format!(
                            "parameter '{}': expected a number or text, got {other}",
                            p.name
                        ),
                    ));
                }
                None => p.default.to_owned(),
            };
            let bad = |what: &str| {
                ApiError::unprocessable(
                    "invalid_parameter",
                    format!("parameter '{}': '{raw}' is not {what}", p.name),
                )
            };
            let text = match p.kind {
                ParamType::Count => match raw.trim().parse::<u32>() {
                    Ok(n) if n >= 1 => n.to_string(),
                    _ => return Err(bad("a whole number of at least 1")),
                },
                ParamType::Number => match raw.trim().parse::<Decimal>() {
                    Ok(d) => d.normalize().to_string(),
                    Err(_) => return Err(bad("a number")),
                },
                ParamType::Text => format!("'{}'", raw.replace('\'', "''")),
            };
            rule = rule.replace(&format!("{{{}}}", p.name), &text);
        }
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template, with its defaults, is a rule that checks.
    #[test]
    fn templates_check() {
        assert!(all().len() >= 12);
        for t in all() {
            let rule = t.instantiate(&BTreeMap::new()).unwrap();
            let schema = strata_lang::catalog::Schema::with_custom(t.kind, Vec::<String>::new());
            if let Err(d) = strata_lang::parse_rule(&rule, &schema) {
                panic!("template {}: {}", t.id, d.render(&rule));
            }
            assert!(
                !rule.contains('{'),
                "{}: unfilled parameter in {rule}",
                t.id
            );
        }
    }

    #[test]
    fn text_parameters_are_quoted() {
        let t = all()
            .iter()
            .find(|t| t.id == "bought-category-recently")
            .unwrap();
        let mut p = BTreeMap::new();
        p.insert(
            "category".to_owned(),
            Value::String("Kid's') OR true OR ('".to_owned()),
        );
        let rule = t.instantiate(&p).unwrap();
        assert_eq!(
            rule,
            "purchased(category: 'Kid''s'') OR true OR (''', since: -90d)"
        );
        let schema =
            strata_lang::catalog::Schema::with_custom(Kind::Customer, Vec::<String>::new());
        assert!(strata_lang::parse_rule(&rule, &schema).is_ok());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let t = all().iter().find(|t| t.id == "low-stock").unwrap();
        for v in ["0", "-3", "14 OR true", "x"] {
            let mut p = BTreeMap::new();
            p.insert("days".to_owned(), Value::String(v.to_owned()));
            assert!(t.instantiate(&p).is_err(), "{v}");
        }
        let mut p = BTreeMap::new();
        p.insert("nope".to_owned(), Value::from(1));
        assert!(t.instantiate(&p).is_err());
    }
}
