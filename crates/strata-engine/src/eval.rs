//! The bitmap evaluator: each node maps a candidate set to the subset of it
//! that satisfies the node.
//!
//! `AND` narrows: each child only sees what the previous ones kept, and a
//! leaf whose candidates are few tests just those rows instead of scanning
//! its column. `OR` evaluates each child on what is not yet matched. `NOT`
//! is the complement within the candidates (and so within the universe at
//! the root), which is what language.md's two-valued logic asks.

use rust_decimal::Decimal;
use roaring::RoaringBitmap;
use strata_data::{NULL_CODE, TextColumn};
use strata_lang::catalog::Kind;

use crate::Engine;
use crate::columns::{Col, NumCol};
use crate::error::Internal;
use crate::plan::{CustomerFn, Leaf, LineFilter, Node, Pred, ProductFilter, ProductFn, Source};
use crate::pred::{BoolPred, I64Pred, NumPred};

/// Rows `0..n` that pass `test`, restricted to `cand`.
///
/// With many candidates a sequential scan that packs 64 verdicts per word
/// beats probing rows one by one; with few, probing wins.
pub fn select(cand: &RoaringBitmap, n: usize, test: impl Fn(usize) -> bool) -> RoaringBitmap {
    let count = cand.len() as usize;
    if count == 0 {
        return RoaringBitmap::new();
    }
    if count * 8 < n {
        let hits = cand.iter().filter(|&r| test(r as usize));
        return RoaringBitmap::from_sorted_iter(hits).unwrap_or_default();
    }
    let mut bytes = Vec::with_capacity(n.div_ceil(8));
    let mut row = 0;
    while row < n {
        let end = (row + 64).min(n);
        let mut word = 0u64;
        for r in row..end {
            word |= u64::from(test(r)) << (r - row);
        }
        bytes.extend_from_slice(&word.to_le_bytes()[..(end - row).div_ceil(8)]);
        row = end;
    }
    let mut out = RoaringBitmap::from_lsb0_bytes(0, &bytes);
    if count != n {
        out &= cand;
    }
    out
}

/// Per dictionary code, whether a present value passes: the test is then
/// decided once per distinct value.
fn dict_verdicts(col: &TextColumn, test: impl Fn(&str) -> bool) -> Vec<bool> {
    col.dict.iter().map(|s| test(s)).collect()
}

impl Engine {
    pub(crate) fn eval_node(&self, kind: Kind, node: &Node, cand: &RoaringBitmap) -> Result<RoaringBitmap, Internal> {
        match node {
            Node::And(children) => {
                let mut cur = cand.clone();
                for child in children {
                    if cur.is_empty() {
                        break;
                    }
                    cur = self.eval_node(kind, child, &cur)?;
                }
                Ok(cur)
            }
            Node::Or(children) => {
                let mut rest = cand.clone();
                let mut out = RoaringBitmap::new();
                for child in children {
                    if rest.is_empty() {
                        break;
                    }
                    let hit = self.eval_node(kind, child, &rest)?;
                    rest -= &hit;
                    out |= hit;
                }
                Ok(out)
            }
            Node::Not(child) => Ok(cand - self.eval_node(kind, child, cand)?),
            Node::Leaf(leaf) => self.eval_leaf(kind, leaf, cand),
        }
    }

    fn eval_leaf(&self, kind: Kind, leaf: &Leaf, cand: &RoaringBitmap) -> Result<RoaringBitmap, Internal> {
        let n = self.len(kind);
        match &leaf.source {
            Source::Field(name) => {
                let col = self
                    .column(kind, name)
                    .ok_or_else(|| Internal::new(format!("no column for {name}")))?;
                eval_column(col, &leaf.pred, cand, n)
            }
            Source::InSegment(index) => Ok(self.saved_members(*index)? & cand),
            Source::CustomerFn { func, filter } => self.eval_customer_fn(*func, filter, &leaf.pred, cand),
            Source::ProductFn { func, bounds } => {
                let live = &self.live;
                let daily = &self.data.daily;
                match (&leaf.pred, func) {
                    (Pred::Num(p), ProductFn::UnitsSold | ProductFn::Sessions) => {
                        let p = p.to_fixed(0);
                        Ok(select(cand, n, |r| {
                            let total: u64 = if *func == ProductFn::UnitsSold {
                                live.clip(live.of_product(r), bounds.lo, bounds.hi)
                                    .iter()
                                    .map(|&l| u64::from(live.quantity[l as usize]))
                                    .sum()
                            } else {
                                self.daily_index
                                    .of_product(r)
                                    .iter()
                                    .map(|&d| d as usize)
                                    .filter(|&d| (bounds.first_day..=bounds.last_day).contains(&daily.date[d]))
                                    .filter_map(|d| daily.sessions[d])
                                    .sum()
                            };
                            p.test(i64::try_from(total).unwrap_or(i64::MAX))
                        }))
                    }
                    (Pred::Num(p), ProductFn::Sales) => Ok(select(cand, n, |r| {
                        let total: Decimal = live
                            .clip(live.of_product(r), bounds.lo, bounds.hi)
                            .iter()
                            .map(|&l| live.revenue[l as usize])
                            .sum();
                        p.test(Some(total))
                    })),
                    (other, _) => Err(Internal::new(format!("{other:?} on a product function"))),
                }
            }
        }
    }

    /// The products a line filter admits, as a dense mask (`None`: all).
    fn product_mask(&self, filters: &[ProductFilter]) -> Result<Option<Vec<bool>>, Internal> {
        if filters.is_empty() {
            return Ok(None);
        }
        let n = self.data.products.len();
        let mut mask = vec![true; n];
        for f in filters {
            match f {
                ProductFilter::Field { field, values } => {
                    let Some(Col::Text(col)) = self.column(Kind::Product, field) else {
                        return Err(Internal::new(format!("no text column {field}")));
                    };
                    let ok = dict_verdicts(col, |s| {
                        let l = s.to_lowercase();
                        values.iter().any(|v| *v == l)
                    });
                    for (p, m) in mask.iter_mut().enumerate() {
                        let code = col.codes[p];
                        *m = *m && code != NULL_CODE && ok[code as usize];
                    }
                }
                ProductFilter::Segment(index) => {
                    let members = self.saved_members(*index)?;
                    for (p, m) in mask.iter_mut().enumerate() {
                        *m = *m && members.contains(p as u32);
                    }
                }
            }
        }
        Ok(Some(mask))
    }

    fn eval_customer_fn(
        &self,
        func: CustomerFn,
        filter: &LineFilter,
        pred: &Pred,
        cand: &RoaringBitmap,
    ) -> Result<RoaringBitmap, Internal> {
        let n = self.data.customers.len();
        let table = &self.customers;
        // Without filters the function is an aggregate computed at load.
        if filter.is_unfiltered(&self.as_of) {
            return match (func, pred) {
                (CustomerFn::Orders, p) => eval_column(Col::Num(&table.number_of_orders), p, cand, n),
                (CustomerFn::Units, p) => eval_column(Col::Num(&table.units_purchased), p, cand, n),
                (CustomerFn::Spent, p) => eval_column(Col::Num(&table.amount_spent), p, cand, n),
                (CustomerFn::Purchased, Pred::Bool(p)) => {
                    let NumCol::Fixed { vals, .. } = &table.number_of_orders else {
                        return Err(Internal::new("order counts are not fixed"));
                    };
                    Ok(select(cand, n, |r| p.test(Some(vals[r] > 0))))
                }
                (_, other) => Err(Internal::new(format!("{other:?} on purchased"))),
            };
        }

        let verdict = Verdict::new(func, pred)?;
        let live = &self.live;
        let products = self.product_mask(&filter.products)?;
        let markets = filter.marketplaces.as_ref().map(|list| {
            dict_verdicts(&self.data.orders.marketplace, |s| {
                let l = s.to_lowercase();
                list.iter().any(|v| *v == l)
            })
        });
        let order_market = &self.data.orders.marketplace.codes;
        let passes = |l: usize| -> bool {
            if let Some(mask) = &products
                && !mask[live.product[l] as usize]
            {
                return false;
            }
            if let Some(ok) = &markets {
                let code = order_market[live.order[l] as usize];
                if code == NULL_CODE || !ok[code as usize] {
                    return false;
                }
            }
            true
        };
        let (lo, hi) = (filter.bounds.lo, filter.bounds.hi);

        // Choose the access path that reads the fewest lines.
        let range = live.time_range(lo, hi);
        let per_customer_cost = (cand.len() as usize).saturating_mul(live.len() / n.max(1) + 1);
        let product_cost = products.as_ref().map(|mask| {
            mask.iter()
                .enumerate()
                .filter(|(_, m)| **m)
                .map(|(p, _)| live.of_product(p).len())
                .sum::<usize>()
        });

        if per_customer_cost <= range.len() && product_cost.is_none_or(|c| per_customer_cost <= c) {
            let out = cand.iter().filter(|&c| {
                let mut acc = Acc::default();
                for &l in live.clip(live.of_customer(c as usize), lo, hi) {
                    let l = l as usize;
                    if passes(l) {
                        acc.add(live.order[l], live.quantity[l], live.revenue[l]);
                    }
                }
                verdict.test(&acc)
            });
            return Ok(RoaringBitmap::from_sorted_iter(out).unwrap_or_default());
        }

        let mut accs = Accumulators::new(n, func);
        match product_cost {
            Some(cost) if cost < range.len() => {
                let mask = products.as_ref().map(Vec::as_slice).unwrap_or_default();
                let mut picked: Vec<u32> = Vec::with_capacity(cost);
                for (p, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
                    picked.extend(live.clip(live.of_product(p), lo, hi).iter().filter(|&&l| passes(l as usize)));
                }
                // Line ids are positions in time order, so sorting them puts
                // each order's lines side by side again.
                picked.sort_unstable();
                for l in picked {
                    accs.add(live, l as usize);
                }
            }
            _ => {
                for l in range {
                    if passes(l) {
                        accs.add(live, l);
                    }
                }
            }
        }
        Ok(accs.finish(&verdict, cand))
    }
}

/// What a customer function computes over one customer's passing lines.
#[derive(Default)]
struct Acc {
    orders: u64,
    last_order: Option<u32>,
    units: u64,
    spent: Decimal,
}

impl Acc {
    fn add(&mut self, order: u32, quantity: u32, revenue: Decimal) {
        if self.last_order != Some(order) {
            self.orders += 1;
            self.last_order = Some(order);
        }
        self.units += u64::from(quantity);
        self.spent += revenue;
    }
}

/// The predicate on a customer function's value.
enum Verdict {
    Count { func: CustomerFn, pred: I64Pred },
    Spent(NumPred),
    Purchased(BoolPred),
}

impl Verdict {
    fn new(func: CustomerFn, pred: &Pred) -> Result<Verdict, Internal> {
        Ok(match (func, pred) {
            (CustomerFn::Orders | CustomerFn::Units, Pred::Num(p)) => Verdict::Count {
                func,
                pred: p.to_fixed(0),
            },
            (CustomerFn::Spent, Pred::Num(p)) => Verdict::Spent(p.clone()),
            (CustomerFn::Purchased, Pred::Bool(p)) => Verdict::Purchased(*p),
            (f, p) => return Err(Internal::new(format!("{p:?} on {f:?}"))),
        })
    }

    fn test(&self, acc: &Acc) -> bool {
        match self {
            Verdict::Count { func, pred } => {
                let v = if *func == CustomerFn::Orders { acc.orders } else { acc.units };
                pred.test(i64::try_from(v).unwrap_or(i64::MAX))
            }
            Verdict::Spent(p) => p.test(Some(acc.spent)),
            Verdict::Purchased(p) => p.test(Some(acc.orders > 0)),
        }
    }
}

/// Dense per-customer accumulators for a scan over many lines.
struct Accumulators {
    touched: Vec<u32>,
    last_order: Vec<u32>,
    orders: Vec<u32>,
    units: Vec<u64>,
    spent: Vec<Decimal>,
}

impl Accumulators {
    fn new(n: usize, func: CustomerFn) -> Accumulators {
        Accumulators {
            touched: Vec::new(),
            last_order: vec![u32::MAX; n],
            orders: vec![0; n],
            units: if func == CustomerFn::Units { vec![0; n] } else { Vec::new() },
            spent: if func == CustomerFn::Spent {
                vec![Decimal::ZERO; n]
            } else {
                Vec::new()
            },
        }
    }

    fn add(&mut self, live: &crate::index::LiveLines, l: usize) {
        let c = live.customer[l];
        if c == strata_data::NO_CUSTOMER {
            return;
        }
        let c = c as usize;
        let order = live.order[l];
        if self.last_order[c] != order {
            if self.orders[c] == 0 {
                self.touched.push(c as u32);
            }
            self.orders[c] += 1;
            self.last_order[c] = order;
        }
        if !self.units.is_empty() {
            self.units[c] += u64::from(live.quantity[l]);
        }
        if !self.spent.is_empty() {
            self.spent[c] += live.revenue[l];
        }
    }

    fn acc(&self, c: usize) -> Acc {
        Acc {
            orders: u64::from(self.orders[c]),
            last_order: None,
            units: self.units.get(c).copied().unwrap_or(0),
            spent: self.spent.get(c).copied().unwrap_or(Decimal::ZERO),
        }
    }

    /// Customers that no line touched have the empty value (0, false); they
    /// pass or fail together.
    fn finish(mut self, verdict: &Verdict, cand: &RoaringBitmap) -> RoaringBitmap {
        self.touched.sort_unstable();
        let empty_passes = verdict.test(&Acc::default());
        if empty_passes {
            let failing = self
                .touched
                .iter()
                .copied()
                .filter(|&c| !verdict.test(&self.acc(c as usize)));
            cand - RoaringBitmap::from_sorted_iter(failing).unwrap_or_default()
        } else {
            let passing = self
                .touched
                .iter()
                .copied()
                .filter(|&c| verdict.test(&self.acc(c as usize)));
            RoaringBitmap::from_sorted_iter(passing).unwrap_or_default() & cand
        }
    }
}

/// Evaluates a test on a column over the candidates.
pub fn eval_column(col: Col<'_>, pred: &Pred, cand: &RoaringBitmap, n: usize) -> Result<RoaringBitmap, Internal> {
    Ok(match (col, pred) {
        (Col::Num(NumCol::Fixed { scale, vals }), Pred::Num(p)) => {
            let p = p.to_fixed(*scale);
            select(cand, n, |r| p.test(vals[r]))
        }
        (Col::Num(NumCol::Dec(vals)), Pred::Num(p)) => select(cand, n, |r| p.test(vals[r])),
        (Col::Num(NumCol::Ratio { num, den }), Pred::Num(p)) => select(cand, n, |r| p.test_ratio(num[r], den[r])),
        (Col::Time(vals), Pred::Time(p)) => select(cand, n, |r| p.test(vals[r])),
        (Col::Bool(vals), Pred::Bool(p)) => select(cand, n, |r| p.test(vals[r])),
        (Col::Text(col), Pred::Text(p)) => {
            if col.dict.len() <= cand.len() as usize {
                let ok = dict_verdicts(col, |s| p.test_present(s));
                select(cand, n, |r| match col.codes[r] {
                    NULL_CODE => p.null,
                    code => ok[code as usize],
                })
            } else {
                select(cand, n, |r| p.test(col.get(r)))
            }
        }
        (Col::Tags(col), Pred::Set(p)) => select(cand, n, |r| p.test(col.get(r))),
        (col, pred) => return Err(Internal::new(format!("{pred:?} on {col:?}"))),
    })
}
