//! The reference evaluator: deliberately plain, row by row, straight from
//! the raw rows of the dataset and the syntax tree.
//!
//! It shares no aggregate, index, plan or predicate with the fast path: each
//! value is recomputed by scanning every order line or daily row, and each
//! test is applied to the literal as language.md words it (a date compared by
//! calendar day, a relative value as `now ± span`). That makes it slow —
//! O(rows × lines) — and useful: property tests hold the bitmap evaluator
//! equal to it on random data and rules.

use std::cmp::Ordering;

use jiff::civil::Date;
use roaring::RoaringBitmap;
use rust_decimal::Decimal;
use strata_data::{Dataset, NO_CUSTOMER, TextColumn};
use strata_lang::ast::{Arg, Call, CmpOp, Expr, Literal, Operand, Test, TextOp, Value};
use strata_lang::catalog::Kind;

use crate::error::Internal;
use crate::{Engine, Rule};

/// A value as the reference evaluator sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum RVal {
    Null,
    Text(String),
    Set(Vec<String>),
    Bool(bool),
    /// `num / den` with `den > 0`.
    Num(Decimal, Decimal),
    Time(i64),
}

fn num(d: Decimal) -> RVal {
    RVal::Num(d, Decimal::ONE)
}

fn ratio(n: Decimal, d: Decimal) -> RVal {
    if d.is_zero() {
        RVal::Null
    } else if d.is_sign_negative() {
        RVal::Num(-n, -d)
    } else {
        RVal::Num(n, d)
    }
}

fn text(col: &TextColumn, row: usize) -> RVal {
    col.get(row)
        .map_or(RVal::Null, |s| RVal::Text(s.to_owned()))
}

impl Engine {
    /// Members of a rule by the plain evaluator.
    pub fn evaluate_reference(&self, rule: &Rule) -> Result<RoaringBitmap, Internal> {
        let mut out = RoaringBitmap::new();
        for row in 0..self.len(rule.kind) {
            if self.ref_expr(rule.kind, &rule.expr, row)? {
                out.insert(row as u32);
            }
        }
        Ok(out)
    }

    /// The value of a field of one entity by the plain evaluator.
    pub fn reference_value(&self, kind: Kind, row: usize, field: &str) -> Result<RVal, Internal> {
        match kind {
            Kind::Customer => self.ref_customer_field(row, field),
            Kind::Product => self.ref_product_field(row, field),
        }
    }

    fn ref_saved(&self, kind: Kind, name: &str) -> Result<&RoaringBitmap, Internal> {
        let saved = self
            .saved
            .iter()
            .find(|s| s.name == name && s.kind == kind)
            .ok_or_else(|| Internal::new(format!("no saved {kind} segment {name}")))?;
        if let Some(m) = saved.reference_members.get() {
            return Ok(m);
        }
        let members = self.evaluate_reference(&saved.rule)?;
        Ok(saved.reference_members.get_or_init(|| members))
    }

    fn ref_expr(&self, kind: Kind, expr: &Expr, row: usize) -> Result<bool, Internal> {
        Ok(match expr {
            Expr::And(xs) => {
                for x in xs {
                    if !self.ref_expr(kind, x, row)? {
                        return Ok(false);
                    }
                }
                true
            }
            Expr::Or(xs) => {
                for x in xs {
                    if self.ref_expr(kind, x, row)? {
                        return Ok(true);
                    }
                }
                false
            }
            Expr::Not(x) => !self.ref_expr(kind, x, row)?,
            Expr::Cond(c) => {
                let value = match &c.operand {
                    Operand::Field(id) => self.reference_value(kind, row, &id.name)?,
                    Operand::Call(call) => self.ref_call(kind, call, row)?,
                };
                self.ref_test(&value, &c.test)?
            }
        })
    }

    fn ref_test(&self, v: &RVal, test: &Test) -> Result<bool, Internal> {
        Ok(match test {
            Test::Truth => *v == RVal::Bool(true),
            Test::IsNull { negated } => (*v == RVal::Null) != *negated,
            Test::IsEmpty { negated } => {
                let empty = match v {
                    RVal::Null => true,
                    RVal::Text(s) => s.is_empty(),
                    RVal::Num(n, _) => n.is_zero(),
                    RVal::Set(s) => s.is_empty(),
                    RVal::Bool(_) | RVal::Time(_) => false,
                };
                empty != *negated
            }
            Test::Cmp(op, lit) => match self.ref_cmp(v, lit)? {
                None => false,
                Some(ord) => match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                },
            },
            Test::Between(a, b) => {
                let lo = self.ref_cmp(v, a)?;
                let hi = self.ref_cmp(v, b)?;
                matches!(lo, Some(Ordering::Greater | Ordering::Equal))
                    && matches!(hi, Some(Ordering::Less | Ordering::Equal))
            }
            Test::In { negated, values } => {
                if *v == RVal::Null {
                    false
                } else {
                    let mut any = false;
                    for lit in values {
                        any |= self.ref_cmp(v, lit)? == Some(Ordering::Equal);
                    }
                    any != *negated
                }
            }
            Test::Text { op, negated, value } => {
                let Value::String(needle) = &value.value else {
                    return Err(Internal::new("text test without a string"));
                };
                let needle = needle.to_lowercase();
                match v {
                    RVal::Null => false,
                    RVal::Text(s) => {
                        let s = s.to_lowercase();
                        let hit = match op {
                            TextOp::Contains => s.contains(&needle),
                            TextOp::StartsWith => s.starts_with(&needle),
                            TextOp::EndsWith => s.ends_with(&needle),
                        };
                        hit != *negated
                    }
                    RVal::Set(items) => {
                        items.iter().any(|e| e.to_lowercase() == needle) != *negated
                    }
                    other => return Err(Internal::new(format!("text test on {other:?}"))),
                }
            }
        })
    }

    /// Orders a value against a literal; `None` when the value is null.
    fn ref_cmp(&self, v: &RVal, lit: &Literal) -> Result<Option<Ordering>, Internal> {
        let as_of = &self.as_of;
        Ok(match (v, &lit.value) {
            (RVal::Null, _) => None,
            (RVal::Text(s), Value::String(x)) => Some(s.to_lowercase().cmp(&x.to_lowercase())),
            (RVal::Bool(b), Value::Bool(x)) => Some(b.cmp(x)),
            (RVal::Num(n, d), Value::Number(c)) => Some(n.cmp(&(c * d))),
            (RVal::Time(t), Value::Timestamp { instant, .. }) => {
                Some(i128::from(*t).cmp(&instant.as_nanosecond()))
            }
            (RVal::Time(t), Value::Relative(r)) => {
                let at = i128::from(as_of.now) + i128::from(r.offset_seconds()) * 1_000_000_000;
                Some(i128::from(*t).cmp(&at))
            }
            (RVal::Time(t), Value::Date(d)) => Some(as_of.date_of(*t).cmp(d)),
            (RVal::Time(t), Value::Today) => Some(as_of.date_of(*t).cmp(&as_of.today)),
            (v, lit) => return Err(Internal::new(format!("cannot compare {v:?} with {lit:?}"))),
        })
    }

    /// Whether an instant is within `since:` / `until:` (by calendar day for
    /// a date bound), and not after `now`.
    fn ref_in_bounds(&self, at: i64, args: &[Arg]) -> Result<bool, Internal> {
        if at > self.as_of.now {
            return Ok(false);
        }
        for arg in args {
            let Some(name) = &arg.name else { continue };
            let want = match name.name.as_str() {
                "since" => [Ordering::Greater, Ordering::Equal],
                "until" => [Ordering::Less, Ordering::Equal],
                _ => continue,
            };
            let lit = &arg.value.literals()[0];
            let ord = self.ref_cmp(&RVal::Time(at), lit)?;
            if !ord.is_some_and(|o| want.contains(&o)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether a daily row's date is within the bounds, each bound taken by
    /// its calendar day.
    fn ref_day_in_bounds(&self, date: Date, args: &[Arg]) -> Result<bool, Internal> {
        if date > self.as_of.today {
            return Ok(false);
        }
        for arg in args {
            let Some(name) = &arg.name else { continue };
            let lit = &arg.value.literals()[0];
            let day = match &lit.value {
                Value::Date(d) => *d,
                Value::Today => self.as_of.today,
                Value::Timestamp { instant, .. } => self.as_of.tz.to_datetime(*instant).date(),
                Value::Relative(r) => {
                    let at =
                        i128::from(self.as_of.now) + i128::from(r.offset_seconds()) * 1_000_000_000;
                    self.as_of
                        .date_of(at.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
                }
                other => return Err(Internal::new(format!("bound {other:?}"))),
            };
            let ok = match name.name.as_str() {
                "since" => date >= day,
                "until" => date <= day,
                _ => true,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Counting lines: `(line, order)` of orders not cancelled or refunded
    /// and not after `now`.
    fn ref_counting_lines(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let d = &self.data;
        (0..d.lines.len()).filter_map(move |l| {
            let o = d.lines.order[l] as usize;
            let status = d.orders.status.get(o).unwrap_or("shipped").to_lowercase();
            let counting = status != "cancelled" && status != "refunded";
            (counting && d.orders.ordered_at[o] <= self.as_of.now).then_some((l, o))
        })
    }

    fn ref_call(&self, kind: Kind, call: &Call, row: usize) -> Result<RVal, Internal> {
        let d = &self.data;
        let name = call.name.name.as_str();
        if name == "in_segment" {
            let Value::String(seg) = &call.args[0].value.literals()[0].value else {
                return Err(Internal::new("segment name"));
            };
            return Ok(RVal::Bool(self.ref_saved(kind, seg)?.contains(row as u32)));
        }
        match kind {
            Kind::Customer => {
                let mut orders: Vec<usize> = Vec::new();
                let mut units = Decimal::ZERO;
                let mut spent = Decimal::ZERO;
                for (l, o) in self.ref_counting_lines() {
                    if d.orders.customer[o] != row as u32
                        || !self.ref_in_bounds(d.orders.ordered_at[o], &call.args)?
                    {
                        continue;
                    }
                    if !self.ref_line_passes(l, o, &call.args)? {
                        continue;
                    }
                    orders.push(o);
                    units += Decimal::from(d.lines.quantity[l]);
                    spent += d.lines.revenue[l];
                }
                orders.sort_unstable();
                orders.dedup();
                Ok(match name {
                    "orders" => num(Decimal::from(orders.len())),
                    "units" => num(units),
                    "spent" => num(spent),
                    "purchased" => RVal::Bool(!orders.is_empty()),
                    other => return Err(Internal::new(format!("function {other}"))),
                })
            }
            Kind::Product => match name {
                "units_sold" | "sales" => {
                    let mut total = Decimal::ZERO;
                    for (l, o) in self.ref_counting_lines() {
                        if d.lines.product[l] as usize == row
                            && self.ref_in_bounds(d.orders.ordered_at[o], &call.args)?
                        {
                            total += if name == "sales" {
                                d.lines.revenue[l]
                            } else {
                                Decimal::from(d.lines.quantity[l])
                            };
                        }
                    }
                    Ok(num(total))
                }
                "sessions" => {
                    let mut total = 0u64;
                    for r in 0..d.daily.len() {
                        if d.daily.product[r] as usize == row
                            && self.ref_day_in_bounds(d.daily.date[r], &call.args)?
                        {
                            total += d.daily.sessions[r].unwrap_or(0);
                        }
                    }
                    Ok(num(Decimal::from(total)))
                }
                other => Err(Internal::new(format!("function {other}"))),
            },
        }
    }

    /// The product and marketplace arguments of a customer function.
    fn ref_line_passes(&self, l: usize, o: usize, args: &[Arg]) -> Result<bool, Internal> {
        let d = &self.data;
        let p = d.lines.product[l] as usize;
        for arg in args {
            let Some(name) = &arg.name else { continue };
            let any_of = |value: Option<&str>| {
                let Some(value) = value else { return false };
                arg.value
                    .literals()
                    .iter()
                    .any(|lit| matches!(&lit.value, Value::String(s) if s.to_lowercase() == value.to_lowercase()))
            };
            let ok = match name.name.as_str() {
                "sku" => any_of(d.products.sku.get(p)),
                "category" => any_of(d.products.category.get(p)),
                "brand" => any_of(d.products.brand.get(p)),
                "marketplace" => any_of(d.orders.marketplace.get(o)),
                "in_segment" => {
                    let Value::String(seg) = &arg.value.literals()[0].value else {
                        return Err(Internal::new("segment name"));
                    };
                    self.ref_saved(Kind::Product, seg)?.contains(p as u32)
                }
                _ => true,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn ref_customer_field(&self, row: usize, field: &str) -> Result<RVal, Internal> {
        let d: &Dataset = &self.data;
        let c = &d.customers;
        // Everything the aggregates need, from one scan of the lines.
        let mut orders: Vec<usize> = Vec::new();
        let mut units = Decimal::ZERO;
        let mut spent = Decimal::ZERO;
        let mut profit = Decimal::ZERO;
        let mut times: Vec<i64> = Vec::new();
        let needs_lines = !matches!(
            field,
            "customer_id"
                | "email"
                | "email_domain"
                | "first_name"
                | "last_name"
                | "country"
                | "city"
                | "marketplace"
                | "tags"
                | "accepts_marketing"
                | "created_at"
        );
        if needs_lines {
            for (l, o) in self.ref_counting_lines() {
                if d.orders.customer[o] != row as u32 {
                    continue;
                }
                let q = Decimal::from(d.lines.quantity[l]);
                let cost = d.products.cost[d.lines.product[l] as usize].unwrap_or(Decimal::ZERO);
                orders.push(o);
                units += q;
                spent += d.lines.revenue[l];
                profit += d.lines.revenue[l] - d.lines.fees[l] - q * cost;
                times.push(d.orders.ordered_at[o]);
            }
            orders.sort_unstable();
            orders.dedup();
        }
        let n_orders = Decimal::from(orders.len());
        Ok(match field {
            "customer_id" => text(&c.customer_id, row),
            "email" => text(&c.email, row),
            "email_domain" => match c
                .email
                .get(row)
                .and_then(|e| e.rfind('@').map(|i| &e[i + 1..]))
            {
                Some(dom) if !dom.is_empty() => RVal::Text(dom.to_lowercase()),
                _ => RVal::Null,
            },
            "first_name" => text(&c.first_name, row),
            "last_name" => text(&c.last_name, row),
            "country" => text(&c.country, row),
            "city" => text(&c.city, row),
            "marketplace" => text(&c.marketplace, row),
            "tags" => RVal::Set(c.tags.get(row).map(str::to_owned).collect()),
            "accepts_marketing" => c.accepts_marketing[row].map_or(RVal::Null, RVal::Bool),
            "created_at" => c.created_at[row].map_or(RVal::Null, RVal::Time),
            "number_of_orders" => num(n_orders),
            "units_purchased" => num(units),
            "amount_spent" => num(spent),
            "total_profit" => num(profit),
            "average_order_value" => ratio(spent, n_orders),
            "first_order_date" => times.iter().min().map_or(RVal::Null, |&t| RVal::Time(t)),
            "last_order_date" => times.iter().max().map_or(RVal::Null, |&t| RVal::Time(t)),
            "tier" => {
                let market = c.marketplace.get(row);
                let scheme = d
                    .tiers
                    .iter()
                    .find(|s| market.is_some() && s.marketplace.as_deref() == market)
                    .or_else(|| d.tiers.iter().find(|s| s.marketplace.is_none()));
                let Some(scheme) = scheme else {
                    return Ok(RVal::Null);
                };
                let metric = match scheme.metric {
                    strata_data::TierMetric::Orders => n_orders,
                    strata_data::TierMetric::Units => units,
                    strata_data::TierMetric::Revenue => spent,
                    strata_data::TierMetric::Profit => profit,
                };
                let best = scheme
                    .tiers
                    .iter()
                    .filter(|t| metric > t.threshold)
                    .max_by_key(|t| t.threshold);
                best.map_or(RVal::Null, |t| RVal::Text(t.name.clone()))
            }
            custom => {
                let col = c
                    .custom
                    .iter()
                    .find(|x| x.name == custom)
                    .ok_or_else(|| Internal::new(format!("customer field {custom}")))?;
                text(&col.values, row)
            }
        })
    }

    /// Σ quantity and Σ revenue of a product's counting lines within the
    /// last `days` × 24 h (all time for `None`).
    fn ref_product_sales(&self, p: usize, days: Option<i64>) -> (Decimal, Decimal) {
        let d = &self.data;
        let mut units = Decimal::ZERO;
        let mut sales = Decimal::ZERO;
        for (l, o) in self.ref_counting_lines() {
            if d.lines.product[l] as usize != p {
                continue;
            }
            if let Some(days) = days
                && d.orders.ordered_at[o] < self.as_of.now - days * 86_400 * 1_000_000_000
            {
                continue;
            }
            units += Decimal::from(d.lines.quantity[l]);
            sales += d.lines.revenue[l];
        }
        (units, sales)
    }

    /// The latest value of a daily column dated on or before `day`.
    fn ref_latest(
        &self,
        p: usize,
        day: Date,
        col: impl Fn(usize) -> Option<Decimal>,
    ) -> Option<Decimal> {
        let d = &self.data.daily;
        (0..d.len())
            .filter(|&r| d.product[r] as usize == p && d.date[r] <= day)
            .filter_map(|r| col(r).map(|v| (d.date[r], v)))
            .max_by_key(|(date, _)| *date)
            .map(|(_, v)| v)
    }

    fn ref_product_field(&self, row: usize, field: &str) -> Result<RVal, Internal> {
        let d = &self.data;
        let p = &d.products;
        let today = self.as_of.today;
        let days_back = |n: i64| {
            today
                .checked_sub(jiff::Span::new().days(n))
                .unwrap_or(Date::MIN)
        };
        let window = |n: i64| self.ref_product_sales(row, Some(n));
        let opt = |v: Option<Decimal>| v.map_or(RVal::Null, num);
        let velocity = || {
            let (u7, _) = window(7);
            let (u14, _) = window(14);
            let (u30, _) = window(30);
            let half = Decimal::new(5, 1);
            let three = Decimal::new(3, 1);
            let two = Decimal::new(2, 1);
            // Summed as one fraction over 7·14·30 so nothing is rounded.
            let den = Decimal::from(7 * 14 * 30);
            let n = half * u7 * Decimal::from(14 * 30)
                + three * u14 * Decimal::from(7 * 30)
                + two * u30 * Decimal::from(7 * 14);
            (n, den)
        };
        let sessions_30d = || -> Decimal {
            let first = days_back(29);
            (0..d.daily.len())
                .filter(|&r| {
                    d.daily.product[r] as usize == row
                        && d.daily.date[r] >= first
                        && d.daily.date[r] <= today
                })
                .map(|r| Decimal::from(d.daily.sessions[r].unwrap_or(0)))
                .sum()
        };
        let reviews =
            |day: Date| self.ref_latest(row, day, |r| d.daily.reviews[r].map(Decimal::from));
        Ok(match field {
            "sku" => text(&p.sku, row),
            "parent_sku" => text(&p.parent_sku, row),
            "asin" => text(&p.asin, row),
            "title" => text(&p.title, row),
            "brand" => text(&p.brand, row),
            "category" => text(&p.category, row),
            "tags" => RVal::Set(p.tags.get(row).map(str::to_owned).collect()),
            "seller_account" => text(&p.seller_account, row),
            "marketplace" => text(&p.marketplace, row),
            "price" => opt(p.price[row]),
            "cost" => opt(p.cost[row]),
            "inventory" => opt(p.inventory[row].map(Decimal::from)),
            "created_at" => p.created_at[row].map_or(RVal::Null, RVal::Time),
            "units_sold" => num(self.ref_product_sales(row, None).0),
            "sales" => num(self.ref_product_sales(row, None).1),
            "units_7d" => num(window(7).0),
            "units_14d" => num(window(14).0),
            "units_30d" => num(window(30).0),
            "sales_7d" => num(window(7).1),
            "sales_14d" => num(window(14).1),
            "sales_30d" => num(window(30).1),
            "avg_daily_units_7d" => ratio(window(7).0, Decimal::from(7)),
            "avg_daily_units_14d" => ratio(window(14).0, Decimal::from(14)),
            "avg_daily_units_30d" => ratio(window(30).0, Decimal::from(30)),
            "daily_velocity" => {
                let (n, den) = velocity();
                ratio(n, den)
            }
            "days_of_stock" => match p.inventory[row] {
                None => RVal::Null,
                Some(inv) => {
                    let (n, den) = velocity();
                    ratio(Decimal::from(inv) * den, n)
                }
            },
            "inventory_value" => match (p.inventory[row], p.cost[row]) {
                (Some(inv), Some(cost)) => num(Decimal::from(inv) * cost),
                _ => RVal::Null,
            },
            "revenue_share" => {
                let key = (p.seller_account.get(row), p.marketplace.get(row));
                let group: Decimal = (0..p.len())
                    .filter(|&q| (p.seller_account.get(q), p.marketplace.get(q)) == key)
                    .map(|q| self.ref_product_sales(q, Some(30)).1)
                    .sum();
                ratio(Decimal::ONE_HUNDRED * window(30).1, group)
            }
            "customers_30d" => {
                let mut buyers: Vec<u32> = self
                    .ref_counting_lines()
                    .filter(|&(l, o)| {
                        d.lines.product[l] as usize == row
                            && d.orders.ordered_at[o]
                                >= self.as_of.now - 30 * 86_400 * 1_000_000_000
                            && d.orders.customer[o] != NO_CUSTOMER
                    })
                    .map(|(_, o)| d.orders.customer[o])
                    .collect();
                buyers.sort_unstable();
                buyers.dedup();
                num(Decimal::from(buyers.len()))
            }
            "sessions_30d" => num(sessions_30d()),
            "conversion_rate_30d" => ratio(Decimal::ONE_HUNDRED * window(30).0, sessions_30d()),
            "bsr" => opt(self.ref_latest(row, today, |r| d.daily.bsr[r].map(Decimal::from))),
            "reviews" => opt(reviews(today)),
            "rating" => opt(self.ref_latest(row, today, |r| d.daily.rating[r])),
            "new_reviews_30d" => match reviews(today) {
                None => RVal::Null,
                Some(now) => num(now - reviews(days_back(30)).unwrap_or(Decimal::ZERO)),
            },
            custom => {
                let col = p
                    .custom
                    .iter()
                    .find(|x| x.name == custom)
                    .ok_or_else(|| Internal::new(format!("product field {custom}")))?;
                text(&col.values, row)
            }
        })
    }
}
