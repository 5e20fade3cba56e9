//! The bitmap evaluator: each node maps a candidate set to the subset of it
//! that satisfies the node.
//!
//! `AND` narrows: each child only sees what the previous ones kept, and a
//! leaf whose candidates are few tests just those rows instead of scanning
//! its column. `OR` evaluates each child on what is not yet matched. `NOT`
//! is the complement within the candidates (and so within the universe at
//! the root), which is what language.md's two-valued logic asks.

use roaring::RoaringBitmap;
use rust_decimal::Decimal;
use strata_data::{NO_CUSTOMER, NULL_CODE, TextColumn};
use strata_lang::catalog::Kind;

use crate::Engine;
use crate::columns::{Col, NumCol};
use crate::error::Internal;
use crate::facets::Facet;
use crate::index::{DenseBits, LiveLines, LiveOrders};
use crate::plan::{CustomerFn, Leaf, LineFilter, Node, Pred, ProductFilter, ProductFn, Source};
use crate::pred::{BoolPred, I64Pred, NumPred, SetPred, lower_eq};

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

/// [`select`] for an `i64` column, with the inner loop kept free of
/// branches so that the compiler can vectorise it.
pub fn select_i64(cand: &RoaringBitmap, vals: &[i64], pred: &I64Pred) -> RoaringBitmap {
    let n = vals.len();
    let count = cand.len() as usize;
    let simple = match pred.ranges.as_slice() {
        [(lo, hi)] if !pred.null => Some((*lo, *hi)),
        _ => None,
    };
    let Some((lo, hi)) = simple else {
        return select(cand, n, |r| pred.test(vals[r]));
    };
    if count == 0 {
        return RoaringBitmap::new();
    }
    // One unsigned comparison tests lo <= v <= hi; null (i64::MIN) is
    // below every range's lower end, so it fails as it should.
    let width = hi.wrapping_sub(lo) as u64;
    let inside = |v: i64| v.wrapping_sub(lo) as u64 <= width;
    if count * 8 < n {
        let hits = cand.iter().filter(|&r| inside(vals[r as usize]));
        return RoaringBitmap::from_sorted_iter(hits).unwrap_or_default();
    }
    let mut bytes = Vec::with_capacity(n.div_ceil(8));
    for chunk in vals.chunks(64) {
        let mut word = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            word |= u64::from(inside(v)) << i;
        }
        bytes.extend_from_slice(&word.to_le_bytes()[..chunk.len().div_ceil(8)]);
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

fn dict_verdicts_lower(dict: &[Box<str>], lower: &str) -> Vec<bool> {
    dict.iter().map(|s| lower_eq(s, lower)).collect()
}

impl Engine {
    pub(crate) fn eval_node(
        &self,
        kind: Kind,
        node: &Node,
        cand: &RoaringBitmap,
    ) -> Result<RoaringBitmap, Internal> {
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

    fn eval_leaf(
        &self,
        kind: Kind,
        leaf: &Leaf,
        cand: &RoaringBitmap,
    ) -> Result<RoaringBitmap, Internal> {
        let n = self.len(kind);
        match &leaf.source {
            Source::Field(name) => {
                let col = self
                    .column(kind, name)
                    .ok_or_else(|| Internal::new(format!("no column for {name}")))?;
                if let Some(facet) = self.facet(kind, name)
                    && let Some(hits) = eval_facet(facet, col, &leaf.pred)
                {
                    return Ok(hits & cand);
                }
                eval_column(col, &leaf.pred, cand, n)
            }
            Source::InSegment(index) => Ok(self.saved_members(*index)? & cand),
            Source::CustomerFn { func, filter } => {
                self.eval_customer_fn(*func, filter, &leaf.pred, cand)
            }
            Source::ProductFn { func, bounds } => {
                let live = &self.live;
                let range = live.time_range(bounds.lo, bounds.hi);
                let daily = &self.data.daily;
                match (&leaf.pred, func) {
                    (Pred::Num(p), ProductFn::UnitsSold | ProductFn::Sessions) => {
                        let p = p.to_fixed(0);
                        Ok(select(cand, n, |r| {
                            let total: u64 = if *func == ProductFn::UnitsSold {
                                live.prod_quantity[live.product_slots_in(r, &range)]
                                    .iter()
                                    .map(|&q| u64::from(q))
                                    .sum()
                            } else {
                                self.daily_index
                                    .of_product(r)
                                    .iter()
                                    .map(|&d| d as usize)
                                    .filter(|&d| {
                                        (bounds.first_day..=bounds.last_day)
                                            .contains(&daily.date[d])
                                    })
                                    .filter_map(|d| daily.sessions[d])
                                    .sum()
                            };
                            p.test(i64::try_from(total).unwrap_or(i64::MAX))
                        }))
                    }
                    (Pred::Num(p), ProductFn::Sales) => Ok(select(cand, n, |r| {
                        let slots = live.product_slots_in(r, &range);
                        let total: Decimal = live.by_product[slots]
                            .iter()
                            .map(|&l| live.revenue(l as usize))
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
                    let ok = dict_verdicts(col, |s| values.iter().any(|v| lower_eq(s, v)));
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
                (CustomerFn::Orders, p) => {
                    eval_column(Col::Num(&table.number_of_orders), p, cand, n)
                }
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

        let verdict = Verdict::new(func, pred)?.simplify();
        let (lo, hi) = (filter.bounds.lo, filter.bounds.hi);

        // "Bought at all since X" is "last order on or after X"; "until Y"
        // is "first order on or before Y": read the aggregates.
        if let Verdict::Purchased(want) = verdict
            && self.access_path == AccessPath::Auto
            && filter.products.is_empty()
            && filter.marketplaces.is_none()
        {
            let col = if hi >= self.as_of.now {
                Some((&table.last_order_date, (lo, i64::MAX)))
            } else if lo == i64::MIN {
                Some((&table.first_order_date, (I64Pred::MIN_VALUE, hi)))
            } else {
                None
            };
            if let Some((col, range)) = col {
                let bought = I64Pred {
                    null: false,
                    ranges: vec![range],
                };
                let bought = select_i64(cand, col, &bought);
                return Ok(if want.want { bought } else { cand - bought });
            }
        }

        let live = &self.live;
        let products = self.product_mask(&filter.products)?;
        let markets = filter.marketplaces.as_ref().map(|list| {
            dict_verdicts(&self.data.orders.marketplace, |s| {
                list.iter().any(|v| lower_eq(s, v))
            })
        });
        let market_ok = |code: u32| match &markets {
            None => true,
            Some(ok) => code != NULL_CODE && ok[code as usize],
        };
        let order_market = &self.data.orders.marketplace.codes;
        let passes = |l: usize| -> bool {
            if let Some(mask) = &products
                && !mask[live.product[l] as usize]
            {
                return false;
            }
            market_ok(order_market[live.order[l] as usize])
        };

        // Choose the access path that reads the fewest entries.
        let line_range = live.time_range(lo, hi);
        let order_range = self.live_orders.time_range(lo, hi);
        let per_customer_cost = (cand.len() as usize).saturating_mul(live.len() / n.max(1) + 1);
        // The filtered products' lines within the window, by position.
        let product_slots: Option<Vec<std::ops::Range<usize>>> = products.as_ref().map(|mask| {
            mask.iter()
                .enumerate()
                .filter(|(_, m)| **m)
                .map(|(p, _)| live.product_slots_in(p, &line_range))
                .filter(|slots| !slots.is_empty())
                .collect()
        });
        let product_cost = product_slots
            .as_ref()
            .map(|all| all.iter().map(|s| s.len()).sum::<usize>());
        let scan_cost = match product_cost {
            None => order_range.len(),
            Some(cost) => cost.min(line_range.len()),
        };
        let path = match (self.access_path, product_cost) {
            (AccessPath::Auto, _) if per_customer_cost <= scan_cost => AccessPath::PerCustomer,
            (AccessPath::Auto | AccessPath::Orders, None) => AccessPath::Orders,
            (AccessPath::Auto, Some(cost)) if cost < line_range.len() => AccessPath::ProductLines,
            (AccessPath::Auto | AccessPath::Orders, Some(_)) => AccessPath::TimeLines,
            (AccessPath::ProductLines, None) => AccessPath::TimeLines,
            (forced, _) => forced,
        };

        if path == AccessPath::PerCustomer {
            let out = cand.iter().filter(|&c| {
                let mut acc = Acc::default();
                for &l in LiveLines::clip(live.of_customer(c as usize), &line_range) {
                    let l = l as usize;
                    if passes(l) {
                        acc.add(live.order[l], live.quantity[l], live.revenue(l));
                    }
                }
                verdict.test(&acc)
            });
            return Ok(RoaringBitmap::from_sorted_iter(out).unwrap_or_default());
        }

        // Money sums in the narrowest form first: the sums are written at
        // random, so a smaller array means fewer cache misses. A sum that
        // leaves its form makes the scan run again in the next one.
        let widths: &[SumWidth] = if self.live.money.is_some() {
            &[SumWidth::I32, SumWidth::I64, SumWidth::Decimal]
        } else {
            &[SumWidth::Decimal]
        };
        for &width in widths {
            let mut accs = Accumulators::new(self, n, &verdict, width);
            match path {
                AccessPath::Orders => {
                    let orders = &self.live_orders;
                    for o in order_range.clone() {
                        if market_ok(orders.marketplace[o]) {
                            accs.add_order(o);
                        }
                    }
                }
                AccessPath::ProductLines => {
                    // Lines of one order may sit under several products; count
                    // each order once through a bitset over orders.
                    let mut seen_orders = DenseBits::new(if accs.counts_orders() {
                        self.data.orders.len()
                    } else {
                        0
                    });
                    for slots in product_slots.iter().flatten() {
                        for slot in slots.clone() {
                            let c = live.prod_customer[slot];
                            if c == NO_CUSTOMER {
                                continue;
                            }
                            let o = live.prod_order[slot] as usize;
                            if markets.is_some() && !market_ok(order_market[o]) {
                                continue;
                            }
                            let new_order = accs.counts_orders() && !seen_orders.contains(o);
                            if new_order {
                                seen_orders.insert(o);
                            }
                            accs.add_slot(slot, new_order);
                        }
                    }
                }
                _ => {
                    // An order's lines are contiguous in time order, so a change
                    // of order id among passing lines starts a new order.
                    let mut last_order = u32::MAX;
                    for l in line_range.clone() {
                        let c = live.customer[l];
                        if c == NO_CUSTOMER || !passes(l) {
                            continue;
                        }
                        let o = live.order[l];
                        accs.add_line(l, o != last_order);
                        last_order = o;
                    }
                }
            }
            if accs.overflowed {
                continue;
            }
            return Ok(accs.finish(&verdict, cand, n));
        }
        Err(Internal::new("decimal accumulation overflowed"))
    }
}

/// How a behaviour function reads the lines. `Auto` picks the cheapest;
/// the others force one, so that tests can hold every path to the
/// reference evaluator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessPath {
    Auto,
    /// Each candidate's own lines (few candidates).
    PerCustomer,
    /// The orders in the time window (no product filter).
    Orders,
    /// The lines of the filtered products (few such lines).
    ProductLines,
    /// Every line in the time window.
    TimeLines,
}

impl AccessPath {
    /// Every choice, `Auto` first.
    pub const ALL: [AccessPath; 5] = [
        AccessPath::Auto,
        AccessPath::PerCustomer,
        AccessPath::Orders,
        AccessPath::ProductLines,
        AccessPath::TimeLines,
    ];
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
#[derive(Clone, Debug)]
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

    /// A count test that only tells none from some (`orders(..) = 0`,
    /// `units(..) >= 1`) is a `purchased(..)` test: every passing line has
    /// a quantity of at least 1 and belongs to an order. Where it is true
    /// for none it keeps its form.
    fn simplify(self) -> Verdict {
        if let Verdict::Count { pred, .. } = &self {
            let positive = |v: i64| pred.test(v);
            let all_positive = pred
                .ranges
                .iter()
                .any(|&(lo, hi)| lo <= 1 && hi == i64::MAX);
            let no_positive = pred.ranges.iter().all(|&(_, hi)| hi < 1);
            if all_positive || no_positive {
                let some = positive(1);
                if some != positive(0) {
                    return Verdict::Purchased(BoolPred { want: some });
                }
            }
        }
        self
    }

    fn test(&self, acc: &Acc) -> bool {
        match self {
            Verdict::Count { func, pred } => {
                let v = if *func == CustomerFn::Orders {
                    acc.orders
                } else {
                    acc.units
                };
                pred.test(i64::try_from(v).unwrap_or(i64::MAX))
            }
            Verdict::Spent(p) => p.test(Some(acc.spent)),
            Verdict::Purchased(p) => p.test(Some(acc.orders > 0)),
        }
    }
}

/// The form money sums are accumulated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SumWidth {
    I32,
    I64,
    Decimal,
}

/// Dense per-customer accumulators for a scan over many lines or orders.
struct Accumulators<'a> {
    live: &'a LiveLines,
    orders: &'a LiveOrders,
    touched: DenseBits,
    /// Orders per customer, kept only when the verdict reads them.
    counts: Vec<u32>,
    units: Vec<u64>,
    /// Orders or units (`small_units`) per customer, saturating at 255: used
    /// instead of `counts`/`units` when the verdict is the same for every
    /// value from 255 up, since a quarter of the memory means fewer cache
    /// misses for the random increments.
    small: Vec<u8>,
    small_units: bool,
    /// Spent, in the one form of [`SumWidth`] this scan uses (the other
    /// vectors stay empty). Fixed-point sums are at the live lines' money
    /// scale; one that leaves its integer type sets `overflowed`, and the
    /// caller redoes the scan in the next wider form.
    spent32: Vec<i32>,
    spent64: Vec<i64>,
    spent: Vec<Decimal>,
    overflowed: bool,
}

impl<'a> Accumulators<'a> {
    fn new(engine: &'a Engine, n: usize, verdict: &Verdict, width: SumWidth) -> Accumulators<'a> {
        let live = &engine.live;
        let saturates = |pred: &I64Pred| {
            pred.ranges
                .iter()
                .flat_map(|&(lo, hi)| {
                    [
                        (lo > I64Pred::MIN_VALUE).then_some(lo),
                        (hi < i64::MAX).then(|| hi + 1),
                    ]
                })
                .flatten()
                .all(|bound| bound <= 255)
        };
        let (counts, units, small, spent) = match verdict {
            Verdict::Count { pred, .. } if saturates(pred) => (0, 0, n, 0),
            Verdict::Count {
                func: CustomerFn::Units,
                ..
            } => (0, n, 0, 0),
            Verdict::Count { .. } => (n, 0, 0, 0),
            Verdict::Spent(_) => (0, 0, 0, n),
            Verdict::Purchased(_) => (0, 0, 0, 0),
        };
        let small_units = matches!(
            verdict,
            Verdict::Count {
                func: CustomerFn::Units,
                ..
            }
        );
        Accumulators {
            live,
            orders: &engine.live_orders,
            touched: DenseBits::new(n),
            counts: vec![0; counts],
            units: vec![0; units],
            small: vec![0; small],
            small_units,
            spent32: vec![0; if width == SumWidth::I32 { spent } else { 0 }],
            spent64: vec![0; if width == SumWidth::I64 { spent } else { 0 }],
            spent: vec![Decimal::ZERO; if width == SumWidth::Decimal { spent } else { 0 }],
            overflowed: false,
        }
    }

    fn counts_orders(&self) -> bool {
        !self.counts.is_empty() || (!self.small.is_empty() && !self.small_units)
    }

    /// Adds to customer `c`: one more order if `new_order`, `units`, and the
    /// revenue, read lazily (fixed point or decimal, whichever is kept).
    #[inline]
    fn add(
        &mut self,
        c: usize,
        new_order: bool,
        units: impl FnOnce() -> u64,
        fixed: impl FnOnce() -> Option<i64>,
        decimal: impl FnOnce() -> Decimal,
    ) {
        self.touched.insert(c);
        if new_order && let Some(k) = self.counts.get_mut(c) {
            *k += 1;
        }
        if let Some(u) = self.units.get_mut(c) {
            *u += units();
        } else if let Some(k) = self.small.get_mut(c) {
            let step = if self.small_units {
                u8::try_from(units()).unwrap_or(u8::MAX)
            } else {
                u8::from(new_order)
            };
            *k = k.saturating_add(step);
        }
        if let Some(s) = self.spent32.get_mut(c) {
            match fixed().and_then(|v| s.checked_add(i32::try_from(v).ok()?)) {
                Some(sum) => *s = sum,
                None => self.overflowed = true,
            }
        } else if let Some(s) = self.spent64.get_mut(c) {
            match fixed().and_then(|v| s.checked_add(v)) {
                Some(sum) => *s = sum,
                None => self.overflowed = true,
            }
        }
        if let Some(s) = self.spent.get_mut(c) {
            *s += decimal();
        }
    }

    /// Adds live order `o`.
    #[inline]
    fn add_order(&mut self, o: usize) {
        let (orders, live) = (self.orders, self.live);
        let customer = orders.customer[o];
        if customer != NO_CUSTOMER {
            self.add(
                customer as usize,
                true,
                || orders.units[o],
                || {
                    orders
                        .revenue_fixed
                        .as_ref()
                        .and_then(|f| i64::try_from(f[o]).ok())
                },
                || orders.revenue(o, live.money.as_ref()),
            );
        }
    }

    /// Adds the line at position `slot` of the product-ordered columns (of
    /// a non-anonymous customer).
    #[inline]
    fn add_slot(&mut self, slot: usize, new_order: bool) {
        let live = self.live;
        self.add(
            live.prod_customer[slot] as usize,
            new_order,
            || u64::from(live.prod_quantity[slot]),
            || live.prod_revenue.as_ref().map(|r| r[slot]),
            || live.revenue(live.by_product[slot] as usize),
        );
    }

    /// Adds live line `l` of a (non-anonymous) customer.
    #[inline]
    fn add_line(&mut self, l: usize, new_order: bool) {
        let live = self.live;
        self.add(
            live.customer[l] as usize,
            new_order,
            || u64::from(live.quantity[l]),
            || live.money.as_ref().map(|m| m.revenue[l]),
            || live.revenue(l),
        );
    }

    /// Customers that no line touched have the empty value (0, false); they
    /// pass or fail together.
    fn finish(self, verdict: &Verdict, cand: &RoaringBitmap, n: usize) -> RoaringBitmap {
        let empty_passes = verdict.test(&Acc::default());
        let flip = match verdict {
            // Touched is exactly "purchased".
            Verdict::Purchased(_) => self.touched,
            Verdict::Count { pred, .. } => {
                let mut flip = DenseBits::new(n);
                let values = if !self.small.is_empty() {
                    Tally::Small(&self.small)
                } else if self.counts.is_empty() {
                    Tally::Units(&self.units)
                } else {
                    Tally::Counts(&self.counts)
                };
                for c in self.touched.iter() {
                    let v = match values {
                        Tally::Small(k) => u64::from(k[c]),
                        Tally::Units(u) => u[c],
                        Tally::Counts(k) => u64::from(k[c]),
                    };
                    if pred.test(i64::try_from(v).unwrap_or(i64::MAX)) != empty_passes {
                        flip.insert(c);
                    }
                }
                flip
            }
            Verdict::Spent(pred) => {
                let mut flip = DenseBits::new(n);
                match &self.live.money {
                    Some(m) if !self.spent32.is_empty() || !self.spent64.is_empty() => {
                        let fixed = pred.to_fixed(m.scale);
                        for c in self.touched.iter() {
                            let sum = match self.spent32.get(c) {
                                Some(&v) => i64::from(v),
                                None => self.spent64[c],
                            };
                            // i64::MIN is the null sentinel; a sum there is
                            // below every bound all the same.
                            if fixed.test(sum.max(I64Pred::MIN_VALUE)) != empty_passes {
                                flip.insert(c);
                            }
                        }
                    }
                    _ => {
                        for c in self.touched.iter() {
                            if pred.test(Some(self.spent[c])) != empty_passes {
                                flip.insert(c);
                            }
                        }
                    }
                }
                flip
            }
        };
        let flip = flip.into_bitmap();
        if empty_passes {
            cand - flip
        } else {
            flip & cand
        }
    }
}

/// Where a count verdict reads each customer's value.
#[derive(Clone, Copy)]
enum Tally<'a> {
    Small(&'a [u8]),
    Units(&'a [u64]),
    Counts(&'a [u32]),
}

/// Answers a test from a column's facet, when the test is of a kind the
/// facet can answer.
fn eval_facet(facet: &Facet, col: Col<'_>, pred: &Pred) -> Option<RoaringBitmap> {
    Some(match (col, pred) {
        (Col::Text(t), Pred::Text(p)) => {
            facet.select(&dict_verdicts(t, |s| p.test_present(s)), p.null)
        }
        (Col::Tags(t), Pred::Set(p)) => match p {
            SetPred::Contains(x) => facet.select(&dict_verdicts_lower(&t.dict, x), false),
            SetPred::NotContains(x) => {
                let hit: Vec<bool> = dict_verdicts_lower(&t.dict, x)
                    .into_iter()
                    .map(|h| !h)
                    .collect();
                // Rows holding none of the matching elements: everything
                // minus the rows that hold one.
                let mut all = facet.select(&hit, true);
                all |= facet.select(&vec![true; t.dict.len()], false);
                all - facet.select(&dict_verdicts_lower(&t.dict, x), false)
            }
            SetPred::Empty(true) => facet.none.clone(),
            SetPred::Empty(false) => facet.select(&vec![true; t.dict.len()], false),
        },
        (Col::Bool(_), Pred::Bool(p)) => facet.by_code[usize::from(p.want)].clone(),
        _ => return None,
    })
}

/// Evaluates a test on a column over the candidates.
pub fn eval_column(
    col: Col<'_>,
    pred: &Pred,
    cand: &RoaringBitmap,
    n: usize,
) -> Result<RoaringBitmap, Internal> {
    Ok(match (col, pred) {
        (Col::Num(NumCol::Fixed { scale, vals }), Pred::Num(p)) => {
            select_i64(cand, vals, &p.to_fixed(*scale))
        }
        (Col::Num(NumCol::Dec(vals)), Pred::Num(p)) => select(cand, n, |r| p.test(vals[r])),
        (Col::Num(NumCol::FixedRatio { num, den }), Pred::Num(p)) => match p.for_int_ratios() {
            Some(fast) => select(cand, n, |r| fast.test(num[r], den[r])),
            None => select(cand, n, |r| {
                p.test_ratio(Decimal::from(num[r]), Decimal::from(den[r]))
            }),
        },
        (Col::Num(NumCol::Ratio { num, den }), Pred::Num(p)) => {
            select(cand, n, |r| p.test_ratio(num[r], den[r]))
        }
        (Col::Time(vals), Pred::Time(p)) => select_i64(cand, vals, p),
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
        (Col::Tags(col), Pred::Set(p)) => {
            // Decide each distinct element once; a row then needs only codes.
            let matches = |want: &str| dict_verdicts_lower(&col.dict, want);
            match p {
                SetPred::Contains(x) => {
                    let hit = matches(x);
                    select(cand, n, |r| {
                        col.codes_of(r).iter().any(|&c| hit[c as usize])
                    })
                }
                SetPred::NotContains(x) => {
                    let hit = matches(x);
                    select(cand, n, |r| {
                        !col.codes_of(r).iter().any(|&c| hit[c as usize])
                    })
                }
                SetPred::Empty(want) => select(cand, n, |r| col.codes_of(r).is_empty() == *want),
            }
        }
        (col, pred) => return Err(Internal::new(format!("{pred:?} on {col:?}"))),
    })
}
