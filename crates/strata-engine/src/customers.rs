//! Customer fields: the columns of `customers.csv` plus the aggregates of
//! fields.md, computed in one pass over the lines at load.

use rust_decimal::Decimal;
use strata_data::{Dataset, NO_CUSTOMER, TextColumn, TextColumnBuilder};

use crate::columns::{Col, NumCol, from_fixed, time_column};
use crate::index::LiveLines;
use crate::pred::I64Pred;
use crate::tiers::{Metrics, scheme_for, tier_of};

#[derive(Debug)]
pub struct CustomerTable {
    pub email_domain: TextColumn,
    pub tier: TextColumn,
    pub created_at: Vec<i64>,
    pub number_of_orders: NumCol,
    pub units_purchased: NumCol,
    pub amount_spent: NumCol,
    pub total_profit: NumCol,
    pub average_order_value: NumCol,
    pub first_order_date: Vec<i64>,
    pub last_order_date: Vec<i64>,
}

impl CustomerTable {
    pub fn build(data: &Dataset, live: &LiveLines) -> CustomerTable {
        let n = data.customers.len();
        let mut order_count = vec![0u64; n];
        let mut first = vec![I64Pred::NULL; n];
        let mut last = vec![I64Pred::NULL; n];
        let mut units = vec![0u64; n];
        // Money sums in fixed point when the amounts allow (the usual case),
        // in decimals otherwise; both exact.
        let (spent, profit, scale) = match &live.money {
            Some(m) => {
                let mut spent = vec![0i128; n];
                let mut profit = vec![0i128; n];
                for l in 0..live.len() {
                    let c = live.customer[l];
                    if c == NO_CUSTOMER {
                        continue;
                    }
                    let c = c as usize;
                    let q = live.quantity[l];
                    let revenue = i128::from(m.revenue[l]);
                    spent[c] += revenue;
                    let cost = m.cost[live.product[l] as usize].unwrap_or(0);
                    profit[c] += revenue - i128::from(m.fees[l]) - i128::from(q) * i128::from(cost);
                }
                (Sums::Fixed(spent), Sums::Fixed(profit), m.scale)
            }
            None => {
                let mut spent = vec![Decimal::ZERO; n];
                let mut profit = vec![Decimal::ZERO; n];
                let cost = &data.products.cost;
                for l in 0..live.len() {
                    let c = live.customer[l];
                    if c == NO_CUSTOMER {
                        continue;
                    }
                    let c = c as usize;
                    let q = live.quantity[l];
                    let revenue = live.revenue(l);
                    spent[c] += revenue;
                    let mut p = revenue - live.fees(l);
                    if let Some(unit_cost) = cost[live.product[l] as usize] {
                        p -= Decimal::from(q) * unit_cost;
                    }
                    profit[c] += p;
                }
                (Sums::Dec(spent), Sums::Dec(profit), 0)
            }
        };
        // One pass in time order: the first line seen of a customer is the
        // first order, the last one the last, and a change of order id
        // starts a new order (an order's lines are contiguous).
        let mut prev_order = u32::MAX;
        for l in 0..live.len() {
            let c = live.customer[l];
            let order = live.order[l];
            let new_order = order != prev_order;
            prev_order = order;
            if c == NO_CUSTOMER {
                continue;
            }
            let c = c as usize;
            let at = live.at[l];
            if new_order {
                order_count[c] += 1;
            }
            if first[c] == I64Pred::NULL {
                first[c] = at;
            }
            last[c] = at;
            units[c] += u64::from(live.quantity[l]);
        }

        let mut tier = TextColumnBuilder::default();
        for c in 0..n {
            let metrics = Metrics {
                orders: Decimal::from(order_count[c]),
                units: Decimal::from(units[c]),
                revenue: spent.get(c, scale),
                profit: profit.get(c, scale),
            };
            let name = scheme_for(&data.tiers, data.customers.marketplace.get(c))
                .and_then(|s| tier_of(s, &metrics));
            tier.push(name);
        }

        let mut domain = TextColumnBuilder::default();
        for c in 0..n {
            let d = data.customers.email.get(c).and_then(email_domain);
            domain.push(d.as_deref());
        }

        let counts: Vec<Decimal> = order_count.iter().map(|&k| Decimal::from(k)).collect();
        CustomerTable {
            email_domain: domain.finish(),
            tier: tier.finish(),
            created_at: time_column(&data.customers.created_at),
            number_of_orders: NumCol::from_u64(&order_count),
            units_purchased: NumCol::from_u64(&units),
            average_order_value: NumCol::ratio(
                (0..n).map(|c| spent.get(c, scale)).collect(),
                counts,
            ),
            amount_spent: spent.into_column(scale),
            total_profit: profit.into_column(scale),
            first_order_date: first,
            last_order_date: last,
        }
    }

    /// The column behind a customer field name.
    pub fn col<'a>(&'a self, data: &'a Dataset, name: &str) -> Option<Col<'a>> {
        Some(match name {
            "email_domain" => Col::Text(&self.email_domain),
            "created_at" => Col::Time(&self.created_at),
            "number_of_orders" => Col::Num(&self.number_of_orders),
            "units_purchased" => Col::Num(&self.units_purchased),
            "amount_spent" => Col::Num(&self.amount_spent),
            "total_profit" => Col::Num(&self.total_profit),
            "average_order_value" => Col::Num(&self.average_order_value),
            "first_order_date" => Col::Time(&self.first_order_date),
            "last_order_date" => Col::Time(&self.last_order_date),
            "tier" => Col::Text(&self.tier),
            other => return raw_col(data, other),
        })
    }
}

/// The columns read straight from `customers.csv` (text, tags, flags and
/// custom attributes), which need nothing computed.
pub fn raw_col<'a>(data: &'a Dataset, name: &str) -> Option<Col<'a>> {
    let c = &data.customers;
    Some(match name {
        "customer_id" => Col::Text(&c.customer_id),
        "email" => Col::Text(&c.email),
        "first_name" => Col::Text(&c.first_name),
        "last_name" => Col::Text(&c.last_name),
        "country" => Col::Text(&c.country),
        "city" => Col::Text(&c.city),
        "marketplace" => Col::Text(&c.marketplace),
        "tags" => Col::Tags(&c.tags),
        "accepts_marketing" => Col::Bool(&c.accepts_marketing),
        custom if custom.starts_with("x_") => {
            let col = c.custom.iter().find(|x| x.name == custom)?;
            Col::Text(&col.values)
        }
        _ => return None,
    })
}

/// Per-customer money sums, fixed point or decimal.
enum Sums {
    Fixed(Vec<i128>),
    Dec(Vec<Decimal>),
}

impl Sums {
    fn get(&self, c: usize, scale: u32) -> Decimal {
        match self {
            Sums::Fixed(v) => from_fixed(v[c], scale).unwrap_or(Decimal::MAX),
            Sums::Dec(v) => v[c],
        }
    }

    fn into_column(self, scale: u32) -> NumCol {
        match self {
            Sums::Fixed(v) => NumCol::from_fixed_sums(&v, scale),
            Sums::Dec(v) => NumCol::from_decimals(v.into_iter().map(Some).collect()),
        }
    }
}

/// The part of an email after the last `@`, lower-cased; `None` without one.
pub fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_lowercase())
}
