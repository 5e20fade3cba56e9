//! Evaluates a compiled rule for one entity, reading only that entity's own
//! history (and, for `revenue_share`, its group's total; for references,
//! the current memberships).
//!
//! The semantics are those of the reference evaluator in `strata-engine`
//! (language.md and fields.md word for word); the model tests hold the two
//! equal after every change.

use std::borrow::Cow;
use std::cmp::Ordering;

use jiff::civil::Date;
use rust_decimal::Decimal;
use smallvec::SmallVec;
use strata_data::{NO_CUSTOMER, Nanos};
use strata_engine::tiers::{Metrics, scheme_for, tier_of};
use strata_lang::ast::{CmpOp, TextOp};

use crate::calendar::Calendar;
use crate::rule::{
    Bound, CField, CFn, DayBound, LNode, LOperand, LTest, LineFilter, Lit, PField, PFn, TimeLit,
};
use crate::store::{Customer, Product, Store, Text, Word, Words, days_before};

const NANOS_PER_DAY: i64 = strata_engine::clock::NANOS_PER_DAY;

/// The instant of evaluation and its calendar.
#[derive(Clone, Debug)]
pub struct Clock {
    pub now: Nanos,
    pub cal: std::sync::Arc<Calendar>,
    pub today: Date,
    pub today_start: Nanos,
    /// First instant of tomorrow.
    pub today_end: Nanos,
}

impl Clock {
    pub fn new(now: Nanos, cal: std::sync::Arc<Calendar>) -> Clock {
        let today = cal.date_of(now);
        let today_start = cal.day_start(today);
        let today_end = cal.day_end(today);
        Clock {
            now,
            cal,
            today,
            today_start,
            today_end,
        }
    }

    /// Moves forward to `now`; the calendar is asked again only when the
    /// day changes.
    pub fn move_to(&mut self, now: Nanos) {
        if (self.today_start..self.today_end).contains(&now) {
            self.now = now;
            debug_assert_eq!(
                self.today,
                self.cal.date_of(now),
                "a day's bounds are wrong"
            );
        } else {
            *self = Clock::new(now, self.cal.clone());
        }
    }

    fn rel(&self, off: i64) -> Nanos {
        self.now.saturating_add(off)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum V<'a> {
    Null,
    Text(Cow<'a, str>),
    Set(&'a [Box<str>]),
    Bool(bool),
    /// `num / den`, `den > 0`.
    Num(Decimal, Decimal),
    Time(Nanos),
}

fn num<'a>(d: Decimal) -> V<'a> {
    V::Num(d, Decimal::ONE)
}

fn ratio<'a>(n: Decimal, d: Decimal) -> V<'a> {
    if d.is_zero() {
        V::Null
    } else if d.is_sign_negative() {
        V::Num(-n, -d)
    } else {
        V::Num(n, d)
    }
}

fn txt(t: &Text) -> V<'_> {
    t.as_deref().map_or(V::Null, |s| V::Text(Cow::Borrowed(s)))
}

fn word(words: &Words, w: Option<Word>) -> V<'_> {
    words
        .get_text(w)
        .map_or(V::Null, |s| V::Text(Cow::Borrowed(s)))
}

pub struct Evaluator<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    /// Current members by segment slot.
    pub members: &'a Memberships,
    /// Operand values shared by segments, by (memo slot, entity); valid
    /// while the data stands still (one settle).
    pub memo: Option<&'a Memo>,
    /// Every customer's settled tier, when it is current (segments settle
    /// after tiers): `tier` then reads it instead of finding the scheme and
    /// ranking the customer again for each segment that asks.
    pub tiers: Option<&'a [Option<std::sync::Arc<str>>]>,
}

/// Every segment's members: per kind a bit table by entity, one row of
/// words per entity with a bit per segment slot, and each slot's count.
/// The hot paths ask "is e in s?" for many segments of one entity at a
/// time (a change marking segments, a settle comparing results,
/// `in_segment`): one row is one cache line, where a set per segment costs
/// a cache miss per segment in a large store. A flip writes one bit and
/// one count; a sorted set per segment (a roaring bitmap) cost a search
/// and a shift of up to 8 KiB of its container on every flip, the larger
/// part of a flip's time in a store of a million. Listing a segment's
/// members reads its bit down the table instead, which only readers do.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// Members by slot.
    counts: Vec<u64>,
    /// Words per entity row: a bit for every slot.
    words: usize,
    /// By kind index (customers 0, products 1).
    rows: [Vec<u64>; 2],
}

impl Memberships {
    /// Adds an empty slot; its number.
    pub fn add_slot(&mut self) -> u32 {
        let s = self.counts.len();
        self.counts.push(0);
        let words = self.counts.len().div_ceil(64);
        if words > self.words {
            // Wider rows: lay every table out again (once per 64 slots).
            for table in &mut self.rows {
                let n = table.len().checked_div(self.words).unwrap_or(0);
                let mut wide = vec![0; n * words];
                for (e, row) in table.chunks(self.words.max(1)).enumerate().take(n) {
                    wide[e * words..e * words + row.len()].copy_from_slice(row);
                }
                *table = wide;
            }
            self.words = words;
        }
        s as u32
    }

    /// The index of the word holding slot `s`'s bit in entity `e`'s row.
    fn word(&self, s: u32, e: u32) -> usize {
        e as usize * self.words + s as usize / 64
    }

    pub fn contains(&self, kind: usize, s: u32, e: u32) -> bool {
        let i = self.word(s, e);
        self.rows[kind]
            .get(i)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    pub fn insert(&mut self, kind: usize, s: u32, e: u32) {
        let i = self.word(s, e);
        let table = &mut self.rows[kind];
        if i >= table.len() {
            table.resize((e as usize + 1) * self.words, 0);
        }
        let bit = 1 << (s % 64);
        if table[i] & bit == 0 {
            table[i] |= bit;
            self.counts[s as usize] += 1;
        }
    }

    pub fn remove(&mut self, kind: usize, s: u32, e: u32) {
        let i = self.word(s, e);
        let bit = 1 << (s % 64);
        if let Some(w) = self.rows[kind].get_mut(i)
            && *w & bit != 0
        {
            *w &= !bit;
            self.counts[s as usize] -= 1;
        }
    }

    /// Empties a slot whose members are entities of `kind`.
    pub fn clear(&mut self, kind: usize, s: u32) {
        if self.words == 0 {
            return;
        }
        let (word, bit) = (s as usize / 64, 1 << (s % 64));
        for row in self.rows[kind].chunks_mut(self.words) {
            row[word] &= !bit;
        }
        self.counts[s as usize] = 0;
    }

    /// The members of slot `s`, whose members are entities of `kind`, in
    /// ascending order.
    pub fn members(&self, kind: usize, s: u32) -> impl Iterator<Item = u32> + '_ {
        let (word, bit) = (s as usize / 64, 1u64 << (s % 64));
        self.rows[kind]
            .chunks(self.words.max(1))
            .enumerate()
            .filter(move |(_, row)| row.get(word).is_some_and(|w| w & bit != 0))
            .map(|(e, _)| e as u32)
    }

    pub fn len(&self, s: u32) -> u64 {
        self.counts[s as usize]
    }
}

pub type Memo = std::cell::RefCell<MemoTable>;

/// Operand values shared by segments: per memo slot, the value last
/// computed there and for which entity. A settle evaluates an entity's
/// segments one after another, so one entry per slot catches every reuse
/// without hashing; a new generation (each settle: the data moved)
/// forgets them all at once.
#[derive(Clone, Debug, Default)]
pub struct MemoTable {
    generation: u32,
    /// By slot: (generation, entity, value).
    slots: Vec<Option<(u32, u32, Memoised)>>,
}

impl MemoTable {
    /// Forgets every value.
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // A wrapped counter could revive entries of its first round.
            self.slots.iter_mut().for_each(|x| *x = None);
        }
    }

    fn get(&self, slot: u32, e: u32) -> Option<Memoised> {
        match self.slots.get(slot as usize) {
            Some(&Some((generation, x, m))) if generation == self.generation && x == e => Some(m),
            _ => None,
        }
    }

    fn put(&mut self, slot: u32, e: u32, m: Memoised) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        self.slots[i] = Some((self.generation, e, m));
    }
}

/// An operand value that can be kept.
#[derive(Clone, Copy, Debug)]
pub enum Memoised {
    Null,
    Bool(bool),
    Num(Decimal, Decimal),
}

impl Memoised {
    fn of(v: &V<'_>) -> Option<Memoised> {
        match v {
            V::Null => Some(Memoised::Null),
            V::Bool(b) => Some(Memoised::Bool(*b)),
            V::Num(n, d) => Some(Memoised::Num(*n, *d)),
            _ => None,
        }
    }

    fn value(self) -> V<'static> {
        match self {
            Memoised::Null => V::Null,
            Memoised::Bool(b) => V::Bool(b),
            Memoised::Num(n, d) => V::Num(n, d),
        }
    }
}

impl Evaluator<'_> {
    pub fn customer(&self, node: &LNode, c: u32) -> bool {
        self.node(node, c, true)
    }

    pub fn product(&self, node: &LNode, p: u32) -> bool {
        self.node(node, p, false)
    }

    fn node(&self, node: &LNode, e: u32, customer: bool) -> bool {
        match node {
            LNode::And(xs) => xs.iter().all(|x| self.node(x, e, customer)),
            LNode::Or(xs) => xs.iter().any(|x| self.node(x, e, customer)),
            LNode::Not(x) => !self.node(x, e, customer),
            LNode::Cond(_, _, plan) if let Some(quick) = &plan.quick => {
                quick.holds(&self.store.customers[e as usize], self.clock)
            }
            LNode::Cond(op, test, plan) => match (plan.memo, self.memo) {
                (Some(slot), Some(cache)) => {
                    let known = cache.borrow().get(slot, e);
                    let v = match known {
                        Some(m) => m.value(),
                        None => {
                            let v = self.operand(op, e, customer);
                            if let Some(m) = Memoised::of(&v) {
                                cache.borrow_mut().put(slot, e, m);
                            }
                            v
                        }
                    };
                    self.test(&v, test)
                }
                _ => {
                    let v = self.operand(op, e, customer);
                    self.test(&v, test)
                }
            },
        }
    }

    fn operand(&self, op: &LOperand, e: u32, customer: bool) -> V<'_> {
        match op {
            LOperand::C(CField::Tier) if let Some(tiers) = self.tiers => tiers
                .get(e as usize)
                .and_then(|t| t.as_deref())
                .map_or(V::Null, |t| V::Text(Cow::Borrowed(t))),
            LOperand::C(f) => self.customer_field(&self.store.customers[e as usize], *f),
            LOperand::P(f) => self.product_field(e, *f),
            LOperand::Custom(i) => {
                let custom = if customer {
                    &self.store.customers[e as usize].custom
                } else {
                    &self.store.products[e as usize].custom
                };
                custom.get(*i).map_or(V::Null, txt)
            }
            LOperand::InSegment(s) => V::Bool(self.members.contains(usize::from(!customer), *s, e)),
            LOperand::CCall {
                f,
                since,
                until,
                filter,
            } => self.customer_call(e, *f, *since, *until, filter),
            LOperand::PCall { f, since, until } => {
                let lo = since.map_or(i64::MIN, |b| self.bound(b));
                let hi = until.map_or(i64::MAX, |b| self.bound(b));
                self.product_call(e, *f, lo, hi)
            }
            LOperand::Sessions { since, until } => {
                let p = &self.store.products[e as usize];
                let lo = since.map_or(Date::MIN, |b| self.day_bound(b));
                let hi = until
                    .map_or(Date::MAX, |b| self.day_bound(b))
                    .min(self.clock.today);
                num(Decimal::from(p.sessions(lo, hi)))
            }
        }
    }

    pub fn bound(&self, b: Bound) -> Nanos {
        match b {
            Bound::Fixed(n) => n,
            Bound::Rel(off) => self.clock.rel(off),
            Bound::TodayStart => self.clock.today_start,
            Bound::TodayEnd => self.clock.today_end.saturating_sub(1),
        }
    }

    /// `units_sold(..)` / `sales(..)` over the lines at `lo..=hi`.
    fn product_call(&self, e: u32, f: PFn, lo: Nanos, hi: Nanos) -> V<'_> {
        let p = &self.store.products[e as usize];
        let (u, r) = if lo > hi {
            (0, Decimal::ZERO)
        } else {
            let a = p.first_at(lo);
            let b = p.lines.partition_point(|l| l.at <= hi);
            p.sums(a, b)
        };
        match f {
            PFn::UnitsSold => num(Decimal::from(u)),
            PFn::Sales => num(r),
        }
    }

    fn day_bound(&self, b: DayBound) -> Date {
        match b {
            DayBound::Fixed(d) => d,
            DayBound::Rel(off) => self.clock.cal.date_of(self.clock.rel(off)),
            DayBound::Today => self.clock.today,
        }
    }

    fn customer_call(
        &self,
        c: u32,
        f: CFn,
        since: Option<Bound>,
        until: Option<Bound>,
        filter: &LineFilter,
    ) -> V<'_> {
        let store = self.store;
        let cust = &store.customers[c as usize];
        let lo = since.map_or(i64::MIN, |b| self.bound(b));
        let hi = until.map_or(i64::MAX, |b| self.bound(b));
        if lo > hi {
            return match f {
                CFn::Purchased => V::Bool(false),
                _ => num(Decimal::ZERO),
            };
        }
        // Windows end at or near `now`, so the orders they take are the
        // last few: searching back from the end reads the list's tail,
        // which the change being settled has just written, where a binary
        // search reads its middle (a cache miss in a long history).
        let n = cust.orders.len();
        let a = crate::wake::partition_from(&cust.orders, n, |&(at, _)| at < lo);
        let b = crate::wake::partition_from(&cust.orders, n, |&(at, _)| at <= hi);
        let plain = filter.is_empty();
        // With no product part, an order passes or fails as a whole.
        let whole = !filter.reads_product();
        if plain {
            // Whole orders pass: nothing to look at per line for a count.
            match f {
                CFn::Orders => return num(Decimal::from(b.saturating_sub(a))),
                CFn::Purchased => return V::Bool(b > a),
                _ => {}
            }
        }
        let mut orders = 0u64;
        let mut units = 0u64;
        let mut spent = Decimal::ZERO;
        for &(_, o) in &cust.orders[a..b.max(a)] {
            let order = &store.orders[o as usize];
            if let Some(markets) = &filter.marketplace
                && !any_of(markets, store.words.get_text(order.marketplace))
            {
                continue;
            }
            if whole {
                if order.lines.is_empty() {
                    continue;
                }
                if f == CFn::Purchased {
                    return V::Bool(true);
                }
                orders += 1;
                units += order.units;
                spent += order.revenue;
                continue;
            }
            let mut any = false;
            for &l in &order.lines {
                let line = &store.lines[l as usize];
                if !plain && !self.line_passes(line.product, filter) {
                    continue;
                }
                any = true;
                units += u64::from(line.qty);
                spent += line.revenue;
            }
            if any {
                if f == CFn::Purchased {
                    return V::Bool(true);
                }
                orders += 1;
            }
        }
        match f {
            CFn::Orders => num(Decimal::from(orders)),
            CFn::Units => num(Decimal::from(units)),
            CFn::Spent => num(spent),
            CFn::Purchased => V::Bool(orders > 0),
        }
    }

    fn line_passes(&self, p: u32, filter: &LineFilter) -> bool {
        debug_assert!(
            filter.products.is_some()
                || !(filter.sku.is_some() || filter.category.is_some() || filter.brand.is_some()),
            "a line filter reading product names without its product slot"
        );
        filter
            .products
            .is_none_or(|slot| self.store.filters[slot as usize].contains(p))
            && filter
                .segment
                .is_none_or(|s| self.members.contains(1, s, p))
    }

    pub fn customer_field<'c>(&'c self, c: &'c Customer, f: CField) -> V<'c> {
        let n_orders = || Decimal::from(c.orders.len());
        match f {
            CField::Id => V::Text(Cow::Borrowed(&c.id)),
            CField::Email => txt(&c.email),
            CField::EmailDomain => match c
                .email
                .as_deref()
                .and_then(|e| e.rfind('@').map(|i| &e[i + 1..]))
            {
                Some(dom) if !dom.is_empty() => V::Text(Cow::Owned(dom.to_lowercase())),
                _ => V::Null,
            },
            CField::FirstName => txt(&c.first_name),
            CField::LastName => txt(&c.last_name),
            CField::Country => word(&self.store.words, c.country),
            CField::City => word(&self.store.words, c.city),
            CField::Marketplace => word(&self.store.words, c.marketplace),
            CField::Tags => V::Set(&c.tags),
            CField::AcceptsMarketing => c.accepts_marketing.map_or(V::Null, V::Bool),
            CField::CreatedAt => c.created_at.map_or(V::Null, V::Time),
            CField::NumberOfOrders => num(n_orders()),
            CField::UnitsPurchased => num(Decimal::from(c.units)),
            CField::AmountSpent => num(c.spent),
            CField::TotalProfit => num(c.profit),
            CField::AverageOrderValue => ratio(c.spent, n_orders()),
            CField::FirstOrderDate => c.orders.first().map_or(V::Null, |&(t, _)| V::Time(t)),
            CField::LastOrderDate => c.orders.last().map_or(V::Null, |&(t, _)| V::Time(t)),
            CField::Tier => self.tier(c).map_or(V::Null, |t| V::Text(Cow::Borrowed(t))),
        }
    }

    pub fn tier<'c>(&'c self, c: &Customer) -> Option<&'c str> {
        let scheme = scheme_for(&self.store.tiers, self.store.words.get_text(c.marketplace))?;
        let metrics = Metrics {
            orders: Decimal::from(c.orders.len()),
            units: Decimal::from(c.units),
            revenue: c.spent,
            profit: c.profit,
        };
        tier_of(scheme, &metrics)
    }

    fn product_field(&self, e: u32, f: PField) -> V<'_> {
        self.product_field_at(e, f, self.clock.now, self.clock.today)
    }

    /// [`Evaluator::product_field`] as it will read at instant `now` on day
    /// `today` if nothing changes before then (what
    /// [`Evaluator::product_quiet`] probes): the order-line windows end at
    /// `now`, the daily rows are read as of `today`. Stock, prices and the
    /// group's total are read as they stand.
    fn product_field_at(&self, e: u32, f: PField, now: Nanos, today: Date) -> V<'_> {
        let p = &self.store.products[e as usize];
        let window = |days: i64| p.sums_since(days_before(now, days));
        let opt = |v: Option<Decimal>| v.map_or(V::Null, num);
        let velocity = || {
            let (u7, _) = window(7);
            let (u14, _) = window(14);
            let (u30, _) = window(30);
            // One fraction over 7·14·30 = 2940, times ten for the weights.
            let n = Decimal::from(5 * u7 * 14 * 30 + 3 * u14 * 7 * 30 + 2 * u30 * 7 * 14);
            (n, Decimal::from(7 * 14 * 30 * 10))
        };
        let cal = &self.clock.cal;
        let sessions_30d = || p.sessions(cal.shift(today, -29), today);
        match f {
            PField::Sku => V::Text(Cow::Borrowed(&p.sku)),
            PField::ParentSku => txt(&p.parent_sku),
            PField::Asin => txt(&p.asin),
            PField::Title => txt(&p.title),
            PField::Brand => txt(&p.brand),
            PField::Category => txt(&p.category),
            PField::Tags => V::Set(&p.tags),
            PField::SellerAccount => txt(&p.seller_account),
            PField::Marketplace => txt(&p.marketplace),
            PField::Price => opt(p.price),
            PField::Cost => opt(p.cost),
            PField::Inventory => opt(p.inventory.map(Decimal::from)),
            PField::CreatedAt => p.created_at.map_or(V::Null, V::Time),
            PField::UnitsSold => num(Decimal::from(p.lines.last().map_or(0, |l| l.cum_units))),
            PField::Sales => num(p.lines.last().map_or(Decimal::ZERO, |l| l.cum_revenue)),
            PField::Units(n) => num(Decimal::from(window(n).0)),
            PField::SalesN(n) => num(window(n).1),
            PField::AvgDaily(n) => ratio(Decimal::from(window(n).0), Decimal::from(n)),
            PField::DailyVelocity => {
                let (n, d) = velocity();
                ratio(n, d)
            }
            PField::DaysOfStock => match p.inventory {
                None => V::Null,
                Some(inv) => {
                    let (n, d) = velocity();
                    ratio(Decimal::from(inv) * d, n)
                }
            },
            PField::InventoryValue => match (p.inventory, p.cost) {
                (Some(inv), Some(cost)) => num(Decimal::from(inv) * cost),
                _ => V::Null,
            },
            PField::RevenueShare => {
                let total = self.store.groups[p.group as usize].total;
                ratio(Decimal::ONE_HUNDRED * window(30).1, total)
            }
            PField::Customers30d => {
                if let Some(n) = p.buyers_30d(now) {
                    return num(Decimal::from(n));
                }
                let a = p.first_at(days_before(now, 30));
                let mut buyers: Vec<u32> = p.lines[a..]
                    .iter()
                    .map(|l| l.customer)
                    .filter(|&c| c != NO_CUSTOMER)
                    .collect();
                buyers.sort_unstable();
                buyers.dedup();
                num(Decimal::from(buyers.len()))
            }
            PField::Sessions30d => num(Decimal::from(sessions_30d())),
            PField::ConversionRate30d => ratio(
                Decimal::ONE_HUNDRED * Decimal::from(window(30).0),
                Decimal::from(sessions_30d()),
            ),
            PField::Bsr => opt(latest(p, today, |r| r.bsr.map(Decimal::from))),
            PField::Reviews => opt(latest(p, today, |r| r.reviews.map(Decimal::from))),
            PField::Rating => opt(latest(p, today, |r| r.rating)),
            PField::NewReviews30d => match latest(p, today, |r| r.reviews.map(Decimal::from)) {
                None => V::Null,
                Some(now) => num(now
                    - latest(p, cal.shift(today, -30), |r| r.reviews.map(Decimal::from))
                        .unwrap_or(Decimal::ZERO)),
            },
        }
    }

    /// The truth of `node` for product `p` now, and the first instant
    /// after `now` at which time passing, with no change, could move it;
    /// never later than the true one, and `now` where it cannot tell (a
    /// wake then evaluates the pair as usual).
    ///
    /// A condition on a sum over the last n days (or a velocity, or days
    /// of stock, built from such sums) can only move one way as lines
    /// leave its window, so its truth changes at most once: at the first
    /// line leaving where the test's answer differs, found by a binary
    /// search over those instants. A member of `units_sold(since: -14d) >
    /// 10` with 30 units in the window is not looked at again until 20 of
    /// them have left. A condition on the daily rows (sessions, reviews,
    /// BSR) only moves on the days a row enters or leaves what it reads,
    /// and those days are walked ([`Evaluator::day_quiet`]).
    ///
    /// A conjunction that is false stays false while any false part does,
    /// so its instant is the latest of its false parts' (a disjunction that
    /// is true, likewise with its true parts); otherwise it is the earliest
    /// of all. That holds only while every part moves with time alone: a
    /// line the engine skips because a [`crate::rule::steady`] part decides
    /// the whole leaves the other parts unlooked at, so the latest is taken
    /// only where each steady part never moves with time ([`fixed`]): one
    /// that decides then decides for good.
    pub fn product_quiet(&self, node: &LNode, p: u32) -> (bool, Nanos) {
        self.quiet_of(node, p, None)
    }

    /// [`Evaluator::product_quiet`] for `node`, whose truth the caller
    /// passes when it has it already.
    fn quiet_of(&self, node: &LNode, p: u32, known: Option<bool>) -> (bool, Nanos) {
        match node {
            LNode::And(xs) | LNode::Or(xs) => {
                let decides = matches!(node, LNode::Or(_));
                let truths: Vec<bool> = xs.iter().map(|x| self.node(x, p, false)).collect();
                let truth = if truths.contains(&decides) {
                    decides
                } else {
                    !decides
                };
                debug_assert!(known.is_none_or(|k| k == truth));
                let parts = xs.iter().zip(truths.iter().copied());
                if truth == decides && xs.iter().all(|x| !crate::rule::steady(x) || fixed(x)) {
                    // Held by the parts that decide it: the latest of
                    // theirs, the cheapest asked first (a record field's
                    // is for good, and ends the search).
                    let mut hold = Nanos::MIN;
                    for cost in 0..=2 {
                        for (x, _) in parts
                            .clone()
                            .filter(|&(x, t)| t == decides && quiet_cost(x) == cost)
                        {
                            let q = self.quiet_of(x, p, Some(decides)).1;
                            if q == Nanos::MAX {
                                return (truth, q);
                            }
                            hold = hold.max(q);
                        }
                    }
                    (truth, hold)
                } else {
                    let now = self.clock.now;
                    let mut soonest = Nanos::MAX;
                    for (x, t) in parts {
                        soonest = soonest.min(self.quiet_of(x, p, Some(t)).1);
                        if soonest <= now {
                            break;
                        }
                    }
                    (truth, soonest)
                }
            }
            LNode::Not(x) => {
                let (truth, q) = self.quiet_of(x, p, known.map(|b| !b));
                (!truth, q)
            }
            LNode::Cond(op, test, _) => {
                let truth = known.unwrap_or_else(|| self.node(node, p, false));
                (truth, self.cond_quiet(op, test, p, truth))
            }
        }
    }

    fn cond_quiet(&self, op: &LOperand, test: &LTest, p: u32, was: bool) -> Nanos {
        const D: Nanos = NANOS_PER_DAY;
        let now = self.clock.now;
        let money = !self.store.negative_revenue;
        // A test that changes at most once along a value moving one way.
        let ordered = matches!(
            test,
            LTest::Cmp(CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge, Lit::Num(_))
        );
        let below = matches!(test, LTest::Cmp(CmpOp::Lt | CmpOp::Le, _));
        let windows: &[Nanos] = match op {
            LOperand::Custom(_) | LOperand::InSegment(_) => return Nanos::MAX,
            LOperand::P(f) => match f {
                f if f.of_record() => return Nanos::MAX,
                PField::InventoryValue | PField::UnitsSold | PField::Sales => return Nanos::MAX,
                PField::Units(n) | PField::AvgDaily(n) if ordered => &[n * D],
                PField::SalesN(n) if ordered && money => &[n * D],
                PField::DailyVelocity if ordered => &[7 * D, 14 * D, 30 * D],
                // Rises as the velocity falls, then is null at none: only
                // `<` / `<=` change once.
                PField::DaysOfStock if ordered && below => &[7 * D, 14 * D, 30 * D],
                PField::Sessions30d
                | PField::NewReviews30d
                | PField::Bsr
                | PField::Reviews
                | PField::Rating => return self.day_quiet(*f, test, p, was, ordered, below),
                PField::ConversionRate30d if ordered => {
                    return self.day_quiet(*f, test, p, was, ordered, below);
                }
                _ => return now,
            },
            LOperand::PCall {
                f,
                since: Some(Bound::Rel(off)),
                until: None,
            } if ordered && *off < 0 && (*f == PFn::UnitsSold || money) => &[-*off],
            _ => return now,
        };
        let today = self.clock.today;
        let value = |t: Nanos| match op {
            LOperand::P(f) => self.product_field_at(p, *f, t, today),
            LOperand::PCall { f, .. } => {
                self.product_call(p, *f, t.saturating_sub(windows[0]), Nanos::MAX)
            }
            _ => unreachable!("only sums over windows are probed"),
        };
        let product = &self.store.products[p as usize];
        let mut first = Nanos::MAX;
        for &w in windows {
            // The lines in the window now, in the order they leave it (a
            // line at `a` is in while `now - w <= a`).
            let inside = &product.lines[product.first_at(now.saturating_sub(w))..];
            let leaves = |l: &crate::store::PLine| l.at.saturating_add(w).saturating_add(1);
            let k = inside.partition_point(|l| self.test(&value(leaves(l)), test) == was);
            if let Some(l) = inside.get(k) {
                first = first.min(leaves(l));
            }
        }
        first
    }

    /// [`Evaluator::cond_quiet`] for a field of the daily rows. With no
    /// change, what such a field reads moves only at the start of a day on
    /// which a row enters it (a row dated after today: on its date) or
    /// leaves it (30 days after its date, for the 30-day sums and the
    /// review count 30 days back), so the days in between are skipped and
    /// only those days are probed, in order. The conversion rate also
    /// falls as lines leave its 30-day window, but with its sessions
    /// fixed between two such days it only falls: an ordered test changes
    /// at most once in between, and a binary search over the lines leaving
    /// finds where.
    fn day_quiet(
        &self,
        f: PField,
        test: &LTest,
        p: u32,
        was: bool,
        ordered: bool,
        below: bool,
    ) -> Nanos {
        const W: Nanos = 30 * NANOS_PER_DAY;
        // Days probed before giving up (a wake then evaluates as usual):
        // each probe costs about what the evaluation it may save does, so
        // a few days ahead; a field that lines move fewer still, as the
        // product's next line has it evaluated again anyway.
        let lines = f == PField::ConversionRate30d;
        let most = if lines { 3 } else { 8 };
        let product = &self.store.products[p as usize];
        let today = self.clock.today;
        let cal = &self.clock.cal;
        let holds = |t: Nanos, day: Date| self.test(&self.product_field_at(p, f, t, day), test);
        let leaves = |l: &crate::store::PLine| l.at.saturating_add(W).saturating_add(1);
        // The lines still in the window, in the order they leave it.
        let mut inside = if lines {
            &product.lines[product.first_at(Store::window_start(self.clock.now))..]
        } else {
            &[]
        };
        // The first instant in `(from, to)` at which the lines leaving the
        // 30-day window turn the test, read on `day`; `Nanos::MAX` if none.
        let mut leaving = |from: Nanos, to: Nanos, day: Date| -> Nanos {
            let here = &inside[..inside.partition_point(|l| leaves(l) < to)];
            inside = &inside[here.len()..];
            if here.is_empty() || holds(to.saturating_sub(1), day) == was {
                return Nanos::MAX;
            }
            let k = here.partition_point(|l| holds(leaves(l), day) == was);
            // The last probe says the test has turned before `to`, so some
            // line leaving turned it.
            here.get(k).map_or(from.saturating_add(1), leaves)
        };
        let dates = &product.daily_dates;
        let entering = &dates[dates.partition_point(|&d| d <= today)..];
        if f == PField::Sessions30d && entering.is_empty() {
            // With no row to come, sessions only fall as rows leave, and an
            // ordered test turns at most once: never, if it is on the side
            // falling moves it to; else on a day a binary search finds.
            if ordered {
                if was == below {
                    return Nanos::MAX;
                }
                let gone = cal.shift(today, -30);
                let rows = &dates[dates.partition_point(|&d| d <= gone)..];
                let out = |d: Date| cal.shift(d, 30);
                let k = rows.partition_point(|&d| {
                    let day = out(d);
                    holds(cal.day_start(day), day) == was
                });
                return rows.get(k).map_or(Nanos::MAX, |&d| cal.day_start(out(d)));
            }
        }
        let (mut from, mut day) = (self.clock.now, today);
        let mut probed = 0;
        loop {
            // The next day after `day` on which a row enters (one dated
            // later) or leaves (30 days after its date).
            let after = |x: Date| dates[dates.partition_point(|&d| d <= x)..].first().copied();
            let enters = after(day);
            let ages_out = after(cal.shift(day, -30)).map(|d| cal.shift(d, 30));
            let next = enters.into_iter().chain(ages_out).min();
            let Some(next) = next else {
                // Nothing enters or leaves again: the rest is lines leaving.
                return leaving(from, Nanos::MAX, day);
            };
            let start = cal.day_start(next);
            let turn = leaving(from, start, day);
            if turn != Nanos::MAX {
                return turn;
            }
            if holds(start, next) != was {
                return start;
            }
            probed += 1;
            if probed == most {
                return start;
            }
            (from, day) = (start, next);
        }
    }

    fn test(&self, v: &V<'_>, test: &LTest) -> bool {
        match test {
            LTest::Truth => *v == V::Bool(true),
            LTest::IsNull(negated) => (*v == V::Null) != *negated,
            LTest::IsEmpty(negated) => {
                let empty = match v {
                    V::Null => true,
                    V::Text(s) => s.is_empty(),
                    V::Num(n, _) => n.is_zero(),
                    V::Set(s) => s.is_empty(),
                    V::Bool(_) | V::Time(_) => false,
                };
                empty != *negated
            }
            LTest::Cmp(op, lit) => self.cmp(v, lit).is_some_and(|ord| op_holds(*op, ord)),
            LTest::Between(a, b) => {
                matches!(self.cmp(v, a), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(self.cmp(v, b), Some(Ordering::Less | Ordering::Equal))
            }
            LTest::In(negated, values) => {
                if *v == V::Null {
                    false
                } else {
                    values
                        .iter()
                        .any(|l| self.cmp(v, l) == Some(Ordering::Equal))
                        != *negated
                }
            }
            LTest::Text(op, negated, needle) => match v {
                V::Text(s) => {
                    let s = s.to_lowercase();
                    let hit = match op {
                        TextOp::Contains => s.contains(needle.as_str()),
                        TextOp::StartsWith => s.starts_with(needle.as_str()),
                        TextOp::EndsWith => s.ends_with(needle.as_str()),
                    };
                    hit != *negated
                }
                V::Set(items) => items.iter().any(|e| e.to_lowercase() == *needle) != *negated,
                _ => false,
            },
        }
    }

    fn cmp(&self, v: &V<'_>, lit: &Lit) -> Option<Ordering> {
        Some(match (v, lit) {
            (V::Null, _) => return None,
            (V::Text(s), Lit::Text(x)) => cmp_folded(s, x),
            (V::Bool(b), Lit::Bool(x)) => b.cmp(x),
            (V::Num(n, d), Lit::Num(c)) => c.cmp_fraction(*n, *d),
            (V::Time(t), Lit::Time(tl)) => cmp_time(self.clock, *t, *tl),
            _ => return None,
        })
    }
}

/// Whether a comparison holds of a value that compares with the literal
/// as `ord`.
pub(crate) fn op_holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// How instant `t` compares with a time literal at the clock's instant.
pub(crate) fn cmp_time(clock: &Clock, t: Nanos, lit: TimeLit) -> Ordering {
    match lit {
        TimeLit::Instant(i) => i128::from(t).cmp(&i),
        TimeLit::Rel(off) => i128::from(t).cmp(&(i128::from(clock.now) + i128::from(off))),
        TimeLit::Day(start, end) => day_cmp(t, start, end),
        TimeLit::Today => day_cmp(t, clock.today_start, clock.today_end),
    }
}

/// `n / d` against `c` (`d > 0`), exactly.
pub(crate) fn cmp_ratio(n: Decimal, d: Decimal, c: Decimal) -> Ordering {
    match c.checked_mul(d) {
        Some(cd) => cmp_decimal(n, cd),
        // Beyond any value the store can hold.
        None if c.is_sign_positive() => Ordering::Less,
        None => Ordering::Greater,
    }
}

/// `a.cmp(&b)`, on the mantissas where one scale can be brought to the
/// other inside an `i128` (always, for the amounts a store holds):
/// `Decimal`'s own comparison rescales through its 96-bit arithmetic, a
/// noticeable share of every evaluation that compares money.
pub(crate) fn cmp_decimal(a: Decimal, b: Decimal) -> Ordering {
    let (ma, mb) = (a.mantissa(), b.mantissa());
    let (sa, sb) = (a.scale(), b.scale());
    let scaled = match sa.cmp(&sb) {
        Ordering::Equal => Some((ma, mb)),
        Ordering::Less => 10i128
            .checked_pow(sb - sa)
            .and_then(|k| ma.checked_mul(k))
            .map(|x| (x, mb)),
        Ordering::Greater => 10i128
            .checked_pow(sa - sb)
            .and_then(|k| mb.checked_mul(k))
            .map(|y| (ma, y)),
    };
    match scaled {
        Some((x, y)) => x.cmp(&y),
        None => a.cmp(&b),
    }
}

fn day_cmp(t: Nanos, start: Nanos, end: Nanos) -> Ordering {
    if t < start {
        Ordering::Less
    } else if t >= end {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Compares a value with an already lower-cased literal, as if both were
/// lower-cased; without allocating when the value is ASCII.
fn cmp_folded(s: &str, folded: &str) -> Ordering {
    if s.is_ascii() {
        // A plain loop: the byte iterators' `cmp` does not vectorise or
        // stop early as well, and this runs for every order a marketplace
        // filter looks at.
        let (a, b) = (s.as_bytes(), folded.as_bytes());
        for (x, y) in a.iter().zip(b) {
            match x.to_ascii_lowercase().cmp(y) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        a.len().cmp(&b.len())
    } else {
        s.to_lowercase().as_str().cmp(folded)
    }
}

/// Whether `s` lower-cased is `folded` (already lower-cased).
fn eq_folded(s: &str, folded: &str) -> bool {
    if s.is_ascii() {
        // An ASCII string never equals one with other characters, whose
        // bytes `eq_ignore_ascii_case` compares as they are.
        s.eq_ignore_ascii_case(folded)
    } else {
        s.to_lowercase() == folded
    }
}

pub(crate) fn any_of(folded: &[String], value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    folded.iter().any(|f| eq_folded(value, f))
}

/// How dear [`Evaluator::quiet_of`] is for a condition: a fixed one's
/// instant is known at once, sessions' takes a binary search over a few
/// rows, others may walk days or lines.
fn quiet_cost(node: &LNode) -> u8 {
    if fixed(node) {
        0
    } else if matches!(node, LNode::Cond(LOperand::P(PField::Sessions30d), _, _)) {
        1
    } else {
        2
    }
}

/// Whether a condition reads nothing that moves with time alone: the
/// product's record, custom fields, segment membership.
pub(crate) fn fixed(node: &LNode) -> bool {
    match node {
        LNode::And(xs) | LNode::Or(xs) => xs.iter().all(fixed),
        LNode::Not(x) => fixed(x),
        LNode::Cond(op, _, _) => match op {
            LOperand::P(f) => f.of_record(),
            LOperand::Custom(_) | LOperand::InSegment(_) => true,
            _ => false,
        },
    }
}

/// The latest value of a daily column dated on or before `day`.
fn latest(
    p: &Product,
    day: Date,
    col: impl Fn(&crate::store::Day) -> Option<Decimal>,
) -> Option<Decimal> {
    let b = p.daily_dates.partition_point(|&d| d <= day);
    p.daily[..b].iter().rev().find_map(col)
}

/// Lines of one order just added to an entity, as
/// [`crate::rule::LRule::line_drift`] reads them.
pub struct AddedLine<'a> {
    pub ev: &'a Evaluator<'a>,
    pub customer: bool,
    pub entity: u32,
    /// The lines' instant (their order's).
    pub at: Nanos,
    /// Each line's product.
    pub products: SmallVec<[u32; 4]>,
    pub order: u32,
    /// Its order's.
    pub marketplace: Option<&'a str>,
}

impl crate::rule::LineCx for AddedLine<'_> {
    // Mirrors the tests `customer_call` makes of each line it sums.
    fn passes(&mut self, filter: &LineFilter, since: Option<Bound>, until: Option<Bound>) -> bool {
        let lo = since.map_or(i64::MIN, |b| self.ev.bound(b));
        let hi = until.map_or(i64::MAX, |b| self.ev.bound(b));
        (lo..=hi).contains(&self.at)
            && filter
                .marketplace
                .as_ref()
                .is_none_or(|markets| any_of(markets, self.marketplace))
            && (!filter.reads_product()
                || self
                    .products
                    .iter()
                    .any(|&p| self.ev.line_passes(p, filter)))
    }

    fn holds(&mut self, node: &LNode) -> bool {
        self.ev.node(node, self.entity, self.customer)
    }

    fn first_order_kept(&mut self) -> bool {
        // Another order first in the (time, order) list was already there
        // and is no later than this line's.
        self.customer
            && self.ev.store.customers[self.entity as usize]
                .orders
                .first()
                .is_some_and(|&(_, o)| o != self.order)
    }

    fn order(&mut self, count: u64, lit: &Lit) -> Option<Ordering> {
        self.ev.cmp(&num(Decimal::from(count)), lit)
    }

    fn shares_rise(&mut self) -> bool {
        !self.customer && !self.ev.store.negative_revenue
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use std::cmp::Ordering;

    use rust_decimal::Decimal;

    use super::{Memberships, cmp_decimal, cmp_folded, cmp_ratio, eq_folded};

    /// Mostly ASCII with case, some characters whose lower case is longer
    /// or not ASCII, so both paths and the prefix cases are reached.
    fn word() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(vec!['a', 'B', 'c', 'Z', '-', ' ', '0']),
                1 => proptest::sample::select(vec!['É', 'é', 'İ', 'ß', 'Σ']),
            ],
            0..5,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    /// Decimals of every scale, mantissas from zero to the 96-bit limit.
    pub(crate) fn decimal() -> impl Strategy<Value = Decimal> {
        (
            prop_oneof![
                0i128..1000,
                -1000i128..0,
                any::<i128>().prop_map(|m| m % (1i128 << 96)),
            ],
            0u32..=28,
        )
            .prop_map(|(m, scale)| Decimal::from_i128_with_scale(m, scale))
    }

    proptest! {
        /// The mantissa comparison agrees with `Decimal`'s, and a ratio's
        /// with the product it stands for.
        #[test]
        fn decimal_comparisons_agree_with_decimal_ordering(
            a in decimal(),
            b in decimal(),
            d in decimal(),
            one in any::<bool>(),
        ) {
            prop_assert_eq!(cmp_decimal(a, b), a.cmp(&b));
            prop_assert_eq!(cmp_decimal(a, a.normalize()), Ordering::Equal);
            let d = if one { Decimal::ONE } else { d.abs().max(Decimal::new(1, 28)) };
            let want = match b.checked_mul(d) {
                Some(bd) => a.cmp(&bd),
                None if b.is_sign_positive() => Ordering::Less,
                None => Ordering::Greater,
            };
            prop_assert_eq!(cmp_ratio(a, d, b), want);
        }

        /// The folded comparisons agree with lower-casing both sides.
        #[test]
        fn folded_comparisons_agree_with_lower_casing(s in word(), other in word(), how in 0u8..3) {
            // Equal strings in other cases, and ones a prefix apart, come
            // up too.
            let t = match how {
                0 => other,
                1 => s.to_uppercase(),
                _ => format!("{s}{other}"),
            };
            let folded = t.to_lowercase();
            let want = s.to_lowercase().cmp(&folded);
            prop_assert_eq!(cmp_folded(&s, &folded), want);
            prop_assert_eq!(eq_folded(&s, &folded), want.is_eq());
        }

        /// The bit rows, the lists read down them and the counts agree
        /// with a model set through inserts and removals (some of them
        /// repeated), clears and the re-layouts that new slots bring.
        #[test]
        fn rows_agree_with_a_model_set(ops in proptest::collection::vec((0u8..4, 0u32..150, 0u32..40), 0..400)) {
            let mut m = Memberships::default();
            // (slot, entity) members, and each slot's kind.
            let mut model: BTreeSet<(u32, u32)> = BTreeSet::new();
            let mut kinds: Vec<usize> = Vec::new();
            for (op, s, e) in ops {
                match op {
                    0 => {
                        let slot = m.add_slot();
                        prop_assert_eq!(slot as usize, kinds.len());
                        kinds.push((slot % 2) as usize);
                    }
                    _ if kinds.is_empty() => {}
                    1 => {
                        let s = s % kinds.len() as u32;
                        m.insert(kinds[s as usize], s, e);
                        model.insert((s, e));
                    }
                    2 => {
                        let s = s % kinds.len() as u32;
                        m.remove(kinds[s as usize], s, e);
                        model.remove(&(s, e));
                    }
                    _ => {
                        let s = s % kinds.len() as u32;
                        m.clear(kinds[s as usize], s);
                        model.retain(|&(x, _)| x != s);
                    }
                }
            }
            for (s, &kind) in kinds.iter().enumerate() {
                let s = s as u32;
                let want: Vec<u32> = model.iter().filter(|x| x.0 == s).map(|x| x.1).collect();
                prop_assert_eq!(m.members(kind, s).collect::<Vec<_>>(), want.clone());
                prop_assert_eq!(m.len(s), want.len() as u64);
                for e in 0..45 {
                    prop_assert_eq!(m.contains(kind, s, e), want.contains(&e));
                    // The other kind's table never has this slot's bits.
                    prop_assert!(!m.contains(1 - kind, s, e));
                }
            }
        }
    }
}
