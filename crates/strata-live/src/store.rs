//! The mutable store of the live engine: entities by dense slot, orders and
//! lines, and the per-entity aggregates kept by delta.
//!
//! Unlike `strata_data::Dataset` (columnar, immutable, as loaded), this
//! store is row-shaped because it is written one change at a time, and each
//! entity keeps its own time-ordered history so that one entity can be
//! evaluated without looking at any other.
//!
//! **Invariant: an order line contributes to aggregates exactly when its
//! order is counting (status not cancelled/refunded) and active (its
//! `ordered_at` is not after the engine's `now`).** Lines of a future order
//! wait in the scheduler until the clock reaches them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::civil::Date;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use strata_data::{NO_CUSTOMER, Nanos, TierScheme};

use strata_engine::clock::NANOS_PER_DAY;

use crate::chunked::Chunked;
use crate::ids::{IdTable, id_hash};

/// A nullable text value; never `Some("")` (an empty value is null).
pub type Text = Option<Box<str>>;

/// `None` for a missing or empty value.
pub fn text(value: Option<&str>) -> Text {
    value.filter(|s| !s.is_empty()).map(Box::from)
}

/// A text that many rows repeat (a customer's country, city or
/// marketplace, an order's status or marketplace, a line's seller
/// account), by its number in [`Words`] plus one (so that `Option<Word>`
/// is 4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Word(std::num::NonZeroU32);

/// Each distinct repeated text once. Millions of orders and lines name a
/// handful of statuses, marketplaces and accounts: a row keeps 4 bytes
/// where a string of its own would cost a heap block, and reading the text
/// is a read of this small, hot table rather than a cache miss per row.
#[derive(Clone, Debug, Default)]
pub struct Words {
    list: Vec<Box<str>>,
    numbers: FxHashMap<Box<str>, u32>,
}

impl Words {
    pub fn word(&mut self, text: &str) -> Word {
        let n = match self.numbers.get(text) {
            Some(&n) => n,
            None => {
                let n = self.list.len() as u32;
                self.list.push(text.into());
                self.numbers.insert(text.into(), n);
                n
            }
        };
        Word(
            std::num::NonZeroU32::MIN
                .checked_add(n)
                .expect("fewer than 2^32 - 1 distinct words"),
        )
    }

    /// [`text`], kept as a word.
    pub fn text(&mut self, value: Option<&str>) -> Option<Word> {
        value.filter(|s| !s.is_empty()).map(|s| self.word(s))
    }

    pub fn get(&self, w: Word) -> &str {
        &self.list[w.0.get() as usize - 1]
    }

    pub fn get_text(&self, w: Option<Word>) -> Option<&str> {
        w.map(|w| self.get(w))
    }
}

/// The windows shorter than 30 days whose starts a product keeps
/// ([`Product::short_starts`]).
pub const SHORT_DAYS: [i64; 2] = [7, 14];

/// The start of the window of the last `days` days ending at `now`.
pub fn days_before(now: Nanos, days: i64) -> Nanos {
    now.saturating_sub(days * NANOS_PER_DAY)
}

/// One contributing line as its product sees it.
#[derive(Clone, Debug)]
pub struct PLine {
    pub at: Nanos,
    pub line: u32,
    pub qty: u32,
    pub revenue: Decimal,
    /// Dense customer slot or [`NO_CUSTOMER`].
    pub customer: u32,
    /// Σ quantity and Σ revenue over the product's lines up to and
    /// including this one. Kept in the line rather than in arrays beside
    /// the list: a window's sums read the lines its search just found (a
    /// 64-byte line is one cache line), not two more arrays.
    pub cum_units: u64,
    pub cum_revenue: Decimal,
}

// A window's search and its sums read one cache line per line.
const _: () = assert!(std::mem::size_of::<PLine>() == 64);

#[derive(Clone, Debug, PartialEq)]
pub struct Day {
    pub date: Date,
    pub sessions: Option<u64>,
    pub bsr: Option<u64>,
    pub reviews: Option<u64>,
    pub rating: Option<Decimal>,
}

#[derive(Clone, Debug, Default)]
pub struct Product {
    /// Shared with the engine's event ids.
    pub sku: Arc<str>,
    pub alive: bool,
    pub parent_sku: Text,
    pub asin: Text,
    pub title: Text,
    pub brand: Text,
    pub category: Text,
    pub tags: Vec<Box<str>>,
    pub seller_account: Text,
    pub marketplace: Text,
    pub price: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub inventory: Option<u64>,
    pub created_at: Option<Nanos>,
    /// By position in [`Store::product_custom`].
    pub custom: Vec<Text>,
    /// Contributing lines sorted by `(at, line)`, with their prefix sums.
    pub lines: Vec<PLine>,
    /// Sorted by date, one per date.
    pub daily: Vec<Day>,
    /// `cum_sessions[i]` is Σ sessions over `daily[..=i]` (an absent count
    /// is 0), wrapping: a difference is exact whenever the window's own sum
    /// fits in a `u64`.
    pub cum_sessions: Vec<u64>,
    /// The dates of `daily`, packed: searches read 4 bytes a row instead of
    /// a whole row (a cache line or more apart in a large catalogue).
    pub daily_dates: Vec<Date>,
    /// Revenue-share group (seller account, marketplace).
    pub group: u32,
    /// Lines of any status naming this product.
    pub line_refs: u32,
    /// The 30-day buyers, kept as of `w30_now` (moved forward lazily):
    /// `lines[..w30_start]` are older than `w30_now − 30 d`, and
    /// `w30_buyers` counts the lines of each customer in the rest.
    pub w30_now: Nanos,
    pub w30_start: usize,
    /// Where the 7- and 14-day windows ([`SHORT_DAYS`]) start as of
    /// `w30_now`, moved with the buyer window: velocity and days of stock
    /// read three windows per evaluation, and a best seller's binary
    /// search through a month of lines costs a cache miss a step.
    pub short_starts: [usize; 2],
    pub w30_buyers: FxHashMap<u32, u32>,
    /// What every line ever added brought, never taken back (a line
    /// withdrawn leaves them as they are): units, lines, and revenue in
    /// hundredths, each line's rounded up and a negative one's as zero.
    /// A pair's headroom is a mark on one of these
    /// ([`crate::eval::Headroom`]).
    pub added: Added,
}

/// [`Product::added`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Added {
    pub units: u64,
    pub lines: u64,
    pub cents: u64,
}

impl Added {
    pub fn note(&mut self, qty: u32, revenue: Decimal) {
        self.units = self.units.saturating_add(u64::from(qty));
        self.lines = self.lines.saturating_add(1);
        self.cents = self.cents.saturating_add(cents_up(revenue));
    }
}

/// Hundredths of an amount's positive part, rounded up (0 for a negative
/// one): `mantissa·100 / 10^scale`.
pub fn cents_up(amount: Decimal) -> u64 {
    let (m, scale) = (amount.mantissa().max(0), amount.scale());
    let cents = if scale <= 2 {
        m * 10i128.pow(2 - scale)
    } else {
        let d = 10i128.pow(scale - 2);
        (m + d - 1) / d
    };
    u64::try_from(cents).unwrap_or(u64::MAX)
}

impl Product {
    /// Index of the first contributing line at or after `at`.
    ///
    /// Windows of 30 days or less start inside the buyer window, whose
    /// start index is kept: the search then runs over its recent lines
    /// only (the end of the list, warm in cache since lines are appended
    /// there) instead of the whole history. The reference is
    /// [`Product::first_at_full`].
    pub fn first_at(&self, at: Nanos) -> usize {
        let start = Store::window_start(self.w30_now);
        if at < start {
            return self.first_at_full(at);
        }
        let i = if at == start {
            self.w30_start
        } else if let Some(k) = SHORT_DAYS
            .iter()
            .position(|&d| at == days_before(self.w30_now, d))
        {
            self.short_starts[k]
        } else {
            self.w30_start + self.lines[self.w30_start..].partition_point(|l| l.at < at)
        };
        debug_assert_eq!(
            i,
            self.first_at_full(at),
            "the buyer window's start is stale"
        );
        i
    }

    /// [`Product::first_at`] by a search of the whole list.
    pub fn first_at_full(&self, at: Nanos) -> usize {
        self.lines.partition_point(|l| l.at < at)
    }

    /// Σ (units, revenue) of the contributing lines with index in `lo..hi`.
    pub fn sums(&self, lo: usize, hi: usize) -> (u64, Decimal) {
        if lo >= hi {
            return (0, Decimal::ZERO);
        }
        let (u0, r0) = if lo == 0 {
            (0, Decimal::ZERO)
        } else {
            let x = &self.lines[lo - 1];
            (x.cum_units, x.cum_revenue)
        };
        let x = &self.lines[hi - 1];
        (x.cum_units - u0, x.cum_revenue - r0)
    }

    /// Σ (units, revenue) of contributing lines at or after `since`.
    pub fn sums_since(&self, since: Nanos) -> (u64, Decimal) {
        self.sums(self.first_at(since), self.lines.len())
    }

    /// Moves the 30-day buyer window forward to `now`.
    pub fn catch_up_buyers(&mut self, now: Nanos) {
        if now <= self.w30_now {
            return;
        }
        self.w30_now = now;
        let start = Store::window_start(now);
        while self.w30_start < self.lines.len() && self.lines[self.w30_start].at < start {
            let c = self.lines[self.w30_start].customer;
            self.forget_buyer(c);
            self.w30_start += 1;
        }
        for (k, days) in SHORT_DAYS.into_iter().enumerate() {
            let start = days_before(now, days);
            let i = &mut self.short_starts[k];
            // A shorter window starts no earlier than the 30-day one.
            *i = (*i).max(self.w30_start);
            while *i < self.lines.len() && self.lines[*i].at < start {
                *i += 1;
            }
        }
    }

    /// Sets the kept window starts from a search of the whole list, as of
    /// `now` (the buyers are the caller's).
    pub fn place_windows(&mut self, now: Nanos) {
        self.w30_now = now;
        self.w30_start = self.first_at_full(Store::window_start(now));
        for (k, days) in SHORT_DAYS.into_iter().enumerate() {
            self.short_starts[k] = self.first_at_full(days_before(now, days));
        }
    }

    fn forget_buyer(&mut self, c: u32) {
        if c == NO_CUSTOMER {
            return;
        }
        if let Some(n) = self.w30_buyers.get_mut(&c) {
            *n -= 1;
            if *n == 0 {
                self.w30_buyers.remove(&c);
            }
        }
    }

    fn note_buyer(&mut self, c: u32) {
        if c != NO_CUSTOMER {
            *self.w30_buyers.entry(c).or_insert(0) += 1;
        }
    }

    /// Keeps the kept windows (their starts and the 30-day buyers) right
    /// when the line at `pos` was inserted (or is about to be removed).
    fn windows_moved(&mut self, pos: usize, at: Nanos, c: u32, add: bool) {
        for (k, days) in SHORT_DAYS.into_iter().enumerate() {
            let i = &mut self.short_starts[k];
            if add && at < days_before(self.w30_now, days) {
                *i += 1;
            } else if !add && pos < *i {
                *i -= 1;
            }
        }
        let start = Store::window_start(self.w30_now);
        match (add, at < start) {
            (true, true) => self.w30_start += 1,
            (true, false) => self.note_buyer(c),
            (false, _) if pos < self.w30_start => self.w30_start -= 1,
            (false, _) => self.forget_buyer(c),
        }
    }

    /// A line's customer was erased (the customer was deleted).
    pub fn anonymise_line(&mut self, pos: usize) {
        let c = std::mem::replace(&mut self.lines[pos].customer, NO_CUSTOMER);
        if pos >= self.w30_start {
            self.forget_buyer(c);
        }
    }

    /// The number of distinct 30-day buyers, if the window is kept as of
    /// `now`.
    pub fn buyers_30d(&self, now: Nanos) -> Option<usize> {
        (self.w30_now == now).then_some(self.w30_buyers.len())
    }

    /// Brings `cum_sessions` up to date after `daily[from..]` changed.
    pub fn daily_changed(&mut self, from: usize) {
        self.daily_dates.truncate(from);
        self.daily_dates
            .extend(self.daily[from..].iter().map(|r| r.date));
        self.cum_sessions.truncate(from);
        let mut sum = from.checked_sub(1).map_or(0, |i| self.cum_sessions[i]);
        for r in &self.daily[from..] {
            sum = sum.wrapping_add(r.sessions.unwrap_or(0));
            self.cum_sessions.push(sum);
        }
    }

    /// Σ sessions of the daily rows dated in `lo..=hi`: two searches and a
    /// difference of prefix sums instead of a walk over up to 30 rows.
    pub fn sessions(&self, lo: Date, hi: Date) -> u64 {
        if lo > hi {
            return 0;
        }
        let dates = &self.daily_dates;
        let a = dates.partition_point(|&d| d < lo);
        // The window mostly ends today, past the last row.
        let b = match dates.last() {
            Some(&last) if last <= hi => dates.len(),
            _ => dates.partition_point(|&d| d <= hi),
        };
        if b <= a {
            return 0;
        }
        let before = a.checked_sub(1).map_or(0, |i| self.cum_sessions[i]);
        let sum = self.cum_sessions[b - 1].wrapping_sub(before);
        debug_assert_eq!(sum, self.sessions_scan(lo, hi), "prefix sums of sessions");
        sum
    }

    /// The reference for [`Product::sessions`]: the rows summed one by one.
    pub fn sessions_scan(&self, lo: Date, hi: Date) -> u64 {
        self.daily
            .iter()
            .filter(|r| r.date >= lo && r.date <= hi)
            .fold(0u64, |s, r| s.wrapping_add(r.sessions.unwrap_or(0)))
    }

    /// Brings the prefix sums of `lines[from..]` up to date.
    pub fn rebuild_sums(&mut self, from: usize) {
        let (mut u, mut r) = match from.checked_sub(1) {
            None => (0, Decimal::ZERO),
            Some(i) => (self.lines[i].cum_units, self.lines[i].cum_revenue),
        };
        for l in &mut self.lines[from..] {
            u += u64::from(l.qty);
            r += l.revenue;
            l.cum_units = u;
            l.cum_revenue = r;
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Customer {
    /// Shared with the engine's event ids.
    pub id: Arc<str>,
    pub alive: bool,
    pub email: Text,
    pub first_name: Text,
    pub last_name: Text,
    pub country: Option<Word>,
    pub city: Option<Word>,
    pub marketplace: Option<Word>,
    pub tags: Vec<Box<str>>,
    pub accepts_marketing: Option<bool>,
    pub created_at: Option<Nanos>,
    pub custom: Vec<Text>,
    /// Contributing orders that have at least one line, sorted by
    /// `(ordered_at, order)`.
    pub orders: Vec<(Nanos, u32)>,
    pub units: u64,
    pub spent: Decimal,
    /// Σ revenue − fees − quantity × the product's current cost.
    pub profit: Decimal,
    /// Every order naming this customer, any status.
    pub all_orders: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct Order {
    pub id: Box<str>,
    pub at: Nanos,
    pub customer: u32,
    pub status: Word,
    pub counting: bool,
    pub marketplace: Option<Word>,
    /// Most orders have one or two lines: up to four sit in the row
    /// itself, more move to the heap.
    pub lines: SmallVec<[u32; 4]>,
    /// Σ quantity and Σ revenue over `lines`: a customer's windowed sums
    /// with no product filter read these, not every line.
    pub units: u64,
    pub revenue: Decimal,
    /// `at <= now`: the clock has reached it.
    pub active: bool,
}

impl Order {
    pub fn contributes(&self) -> bool {
        self.active && self.counting
    }
}

#[derive(Clone, Debug)]
pub struct Line {
    pub order: u32,
    pub product: u32,
    pub qty: u32,
    pub revenue: Decimal,
    pub fees: Decimal,
    pub seller_account: Option<Word>,
}

/// The products of one (seller account, marketplace) and their 30-day
/// sales, for `revenue_share`.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub products: Vec<u32>,
    /// Contributing lines of the group inside the 30-day window, by
    /// `(at, line)`: the front is the next to age out.
    pub window: BTreeMap<(Nanos, u32), Decimal>,
    /// Σ of `window`.
    pub total: Decimal,
    /// Hundredths (rounded up) by which `total` ever fell, summed: a
    /// running counter that only grows, for the share headroom
    /// ([`crate::headroom`]), since a falling total raises every other
    /// product's share. Changed only through [`Group::shift`].
    pub fallen: u64,
    /// `(rank of sales_30d, product)` of the group's products, kept only
    /// while a segment reads `revenue_share`: the products whose share can
    /// cross a threshold when the total moves are within a range of it.
    /// The rank ([`sales_rank`]) orders as the amount does, ties aside, so a range of ranks holds every product of that range of
    /// amounts (and perhaps a few beside, looked at for nothing); sixteen
    /// bytes an entry keep the tree's nodes to a few cache lines.
    pub by_sales: BTreeSet<(i64, u32)>,
}

impl Group {
    /// Moves the total by `delta`, counting a fall in [`Group::fallen`].
    pub fn shift(&mut self, delta: Decimal) {
        self.total += delta;
        if delta.is_sign_negative() {
            self.fallen = self.fallen.saturating_add(cents_up(-delta));
        }
    }
}

/// A `by_sales` rank of an amount: its whole number of ten-thousandths,
/// rounded down, within an `i64` (beyond it, the nearest end). **It never
/// orders two amounts against their order** (equal ranks aside), so a
/// range of ranks holds every amount of the range between its ends, and
/// ranks compare as integers where `Decimal`'s comparison rescales both
/// sides.
pub fn sales_rank(amount: Decimal) -> i64 {
    const PLACES: u32 = 4;
    let (m, scale) = (amount.mantissa(), amount.scale());
    // |m| < 2^96 and scales are at most 28: neither the product nor the
    // divisor leaves an i128.
    let coarse = if scale <= PLACES {
        m * 10i128.pow(PLACES - scale)
    } else {
        m.div_euclid(10i128.pow(scale - PLACES))
    };
    i64::try_from(coarse).unwrap_or(if coarse < 0 { i64::MIN } else { i64::MAX })
}

pub fn counting_status(status: &str) -> bool {
    !status.eq_ignore_ascii_case("cancelled") && !status.eq_ignore_ascii_case("refunded")
}

#[derive(Debug, Default)]
pub struct Store {
    pub products: Vec<Product>,
    /// Slots by sku ([`Store::product_slot`]).
    pub product_ids: IdTable,
    pub customers: Chunked<Customer>,
    /// Slots by customer id ([`Store::customer_slot`]).
    pub customer_ids: IdTable,
    pub orders: Chunked<Order>,
    /// Slots by order id ([`Store::order_slot`]).
    pub order_ids: IdTable,
    pub lines: Chunked<Line>,
    /// The texts customers, orders and lines repeat.
    pub words: Words,
    pub groups: Vec<Group>,
    pub group_ids: FxHashMap<(Text, Text), u32>,
    pub product_custom: Vec<String>,
    pub customer_custom: Vec<String>,
    pub tiers: Vec<TierScheme>,
    /// Products whose `sales_30d` key in their group's `by_sales` is kept.
    pub track_sales: bool,
    /// Each product's 30-day sales as `by_sales` last saw them (its entry
    /// there has their [`sales_rank`]).
    pub sales_key: Vec<Decimal>,
    /// The product parts of the rules' line filters, one per distinct
    /// (sku, category, brand) lists.
    pub filters: Vec<ProductFilter>,
    /// Whether any line ever stored had a negative revenue (a discount
    /// above its price): sums of revenue are then not known to shrink as
    /// lines leave a window. Never cleared; it only costs evaluations.
    pub negative_revenue: bool,
}

/// The products one line filter's `sku`, `category` and `brand` let
/// through, as a bit vector kept as products change: testing a line is one
/// bit, where comparing case-folded names costs a product fetch (a cache
/// miss in a large catalogue) and string comparisons.
#[derive(Clone, Debug)]
pub struct ProductFilter {
    pub sku: Option<Vec<String>>,
    pub category: Option<Vec<String>>,
    pub brand: Option<Vec<String>>,
    bits: Vec<u64>,
}

impl ProductFilter {
    /// The reference test, by name.
    pub fn passes(&self, product: &Product) -> bool {
        use crate::eval::any_of;
        self.sku
            .as_ref()
            .is_none_or(|x| any_of(x, Some(&product.sku)))
            && self
                .category
                .as_ref()
                .is_none_or(|x| any_of(x, product.category.as_deref()))
            && self
                .brand
                .as_ref()
                .is_none_or(|x| any_of(x, product.brand.as_deref()))
    }

    pub fn contains(&self, p: u32) -> bool {
        self.bits
            .get(p as usize / 64)
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    fn set(&mut self, p: u32, on: bool) {
        let i = p as usize / 64;
        if i >= self.bits.len() {
            self.bits.resize(i + 1, 0);
        }
        if on {
            self.bits[i] |= 1 << (p % 64);
        } else {
            self.bits[i] &= !(1 << (p % 64));
        }
    }
}

/// What one line's contribution changed, for the engine to mark dirty.
#[derive(Clone, Copy, Debug)]
pub struct Touched {
    pub customer: u32,
    pub product: u32,
    pub group: u32,
    /// The line's instant (its order's).
    pub at: Nanos,
    /// The line's [`crate::rule::added_index`]: the signs of its revenue
    /// and profit.
    pub signs: usize,
}

impl Store {
    pub fn product_slot(&self, sku: &str) -> Option<u32> {
        self.product_ids
            .find(id_hash(sku), |p| *self.products[p as usize].sku == *sku)
    }

    pub fn customer_slot(&self, id: &str) -> Option<u32> {
        self.customer_ids
            .find(id_hash(id), |c| *self.customers[c as usize].id == *id)
    }

    pub fn order_slot(&self, id: &str) -> Option<u32> {
        self.order_ids
            .find(id_hash(id), |o| *self.orders[o as usize].id == *id)
    }

    /// Forgets a sku (its product stays, dead, in its slot); its slot.
    pub fn unlist_product(&mut self, sku: &str) -> Option<u32> {
        let products = &self.products;
        self.product_ids
            .remove(id_hash(sku), |p| *products[p as usize].sku == *sku)
    }

    /// Forgets a customer id (the record stays, dead, in its slot); its
    /// slot.
    pub fn unlist_customer(&mut self, id: &str) -> Option<u32> {
        let customers = &self.customers;
        self.customer_ids
            .remove(id_hash(id), |c| *customers[c as usize].id == *id)
    }

    /// Stores a line; its index.
    pub fn push_line(&mut self, line: Line) -> u32 {
        self.negative_revenue |= line.revenue.is_sign_negative();
        self.lines.push(line);
        (self.lines.len() - 1) as u32
    }

    /// The slot of the filter with these parts, made (over every product)
    /// if no rule had it yet.
    pub fn filter_slot(
        &mut self,
        sku: &Option<Vec<String>>,
        category: &Option<Vec<String>>,
        brand: &Option<Vec<String>>,
    ) -> u32 {
        if let Some(i) = self
            .filters
            .iter()
            .position(|f| &f.sku == sku && &f.category == category && &f.brand == brand)
        {
            return i as u32;
        }
        let mut f = ProductFilter {
            sku: sku.clone(),
            category: category.clone(),
            brand: brand.clone(),
            bits: Vec::new(),
        };
        for (p, product) in self.products.iter().enumerate() {
            if f.passes(product) {
                f.set(p as u32, true);
            }
        }
        self.filters.push(f);
        (self.filters.len() - 1) as u32
    }

    /// Brings every filter's bit for product `p` up to date with its
    /// names.
    pub fn refresh_filters(&mut self, p: u32) {
        let product = &self.products[p as usize];
        for f in &mut self.filters {
            let on = f.passes(product);
            f.set(p, on);
        }
    }

    pub fn group_of(&mut self, seller_account: &Text, marketplace: &Text) -> u32 {
        let key = (seller_account.clone(), marketplace.clone());
        if let Some(&g) = self.group_ids.get(&key) {
            return g;
        }
        let g = self.groups.len() as u32;
        self.groups.push(Group::default());
        self.group_ids.insert(key, g);
        g
    }

    pub fn window_start(now: Nanos) -> Nanos {
        days_before(now, 30)
    }

    /// Adds (or with `add == false` withdraws) one line's contribution.
    pub fn contribute(&mut self, l: u32, add: bool, now: Nanos) -> Touched {
        let line = &self.lines[l as usize];
        let order = &self.orders[line.order as usize];
        let (at, c, p, qty, revenue, fees) = (
            order.at,
            order.customer,
            line.product,
            line.qty,
            line.revenue,
            line.fees,
        );
        let product = &mut self.products[p as usize];
        let cost = product.cost.unwrap_or(Decimal::ZERO);
        let key = (at, l);
        // Lines mostly come in time order: the end is where a new one goes,
        // found without a search through the product's history.
        let pos = match product.lines.last() {
            Some(last) if add && (last.at, last.line) < key => product.lines.len(),
            _ => product.lines.partition_point(|x| (x.at, x.line) < key),
        };
        if add {
            product.lines.insert(
                pos,
                PLine {
                    at,
                    line: l,
                    qty,
                    revenue,
                    customer: c,
                    // Set by `rebuild_sums` below.
                    cum_units: 0,
                    cum_revenue: Decimal::ZERO,
                },
            );
            product.windows_moved(pos, at, c, true);
            product.added.note(qty, revenue);
        } else {
            debug_assert!(product.lines.get(pos).is_some_and(|x| x.line == l));
            product.windows_moved(pos, at, c, false);
            product.lines.remove(pos);
        }
        product.rebuild_sums(pos);
        let g = product.group;
        let profit = revenue - fees - Decimal::from(qty) * cost;
        if c != NO_CUSTOMER {
            let customer = &mut self.customers[c as usize];
            if add {
                customer.units += u64::from(qty);
                customer.spent += revenue;
                customer.profit += profit;
            } else {
                customer.units -= u64::from(qty);
                customer.spent -= revenue;
                customer.profit -= profit;
            }
        }
        if at >= Self::window_start(now) {
            let group = &mut self.groups[g as usize];
            if add {
                group.window.insert(key, revenue);
                group.shift(revenue);
            } else if group.window.remove(&key).is_some() {
                group.shift(-revenue);
            }
        }
        Touched {
            customer: c,
            product: p,
            group: g,
            at,
            signs: crate::rule::added_index(revenue.is_sign_negative(), profit.is_sign_negative()),
        }
    }

    /// Withdraws lines that left the 30-day window of a group; whether the
    /// total moved.
    pub fn age_group(&mut self, g: u32, now: Nanos) -> bool {
        let start = Self::window_start(now);
        let group = &mut self.groups[g as usize];
        let mut moved = false;
        while let Some((&(at, _), _)) = group.window.first_key_value() {
            if at >= start {
                break;
            }
            if let Some((_, revenue)) = group.window.pop_first() {
                group.shift(-revenue);
                moved = true;
            }
        }
        moved
    }

    /// Records an order as contributing (or not) in its customer's order
    /// list; the lines are handled by [`Store::contribute`].
    pub fn list_order(&mut self, o: u32, add: bool) {
        let order = &self.orders[o as usize];
        if order.customer == NO_CUSTOMER || order.lines.is_empty() {
            return;
        }
        let key = (order.at, o);
        let list = &mut self.customers[order.customer as usize].orders;
        let pos = list.partition_point(|x| *x < key);
        if add {
            if list.get(pos) != Some(&key) {
                list.insert(pos, key);
            }
        } else if list.get(pos) == Some(&key) {
            list.remove(pos);
        }
    }

    /// `sales_30d` of a product as of `now`.
    pub fn sales_30d(&self, p: u32, now: Nanos) -> Decimal {
        self.products[p as usize]
            .sums_since(Self::window_start(now))
            .1
    }

    /// Brings a product's `by_sales` key up to date; whether it moved.
    pub fn rekey_sales(&mut self, p: u32, now: Nanos) -> bool {
        if !self.track_sales {
            return false;
        }
        // Bringing the buyer window to `now` (amortised: it only moves
        // forward) makes the 30-day sum one prefix-sum difference.
        self.products[p as usize].catch_up_buyers(now);
        let s = self.sales_30d(p, now);
        let old = self.sales_key[p as usize];
        if old == s {
            return false;
        }
        let g = self.products[p as usize].group as usize;
        let (from, to) = (sales_rank(old), sales_rank(s));
        if from != to {
            self.groups[g].by_sales.remove(&(from, p));
            self.groups[g].by_sales.insert((to, p));
        }
        self.sales_key[p as usize] = s;
        true
    }

    /// Starts (or stops) keeping `by_sales`.
    pub fn set_track_sales(&mut self, on: bool, now: Nanos) {
        if on == self.track_sales {
            return;
        }
        self.track_sales = on;
        for g in &mut self.groups {
            g.by_sales.clear();
        }
        self.sales_key.clear();
        if on {
            for p in 0..self.products.len() as u32 {
                let s = self.sales_30d(p, now);
                self.sales_key.push(s);
                if self.products[p as usize].alive {
                    let g = self.products[p as usize].group as usize;
                    self.groups[g].by_sales.insert((sales_rank(s), p));
                }
            }
        }
    }

    /// Distinct customers among a product's contributing lines (the buyers
    /// that `purchased(in_segment: ..)` re-checks).
    pub fn buyers(&self, p: u32) -> Vec<u32> {
        self.buyers_since(p, Nanos::MIN)
    }

    /// Distinct customers among a product's contributing lines at or
    /// after `since`.
    pub fn buyers_since(&self, p: u32, since: Nanos) -> Vec<u32> {
        let product = &self.products[p as usize];
        let mut out: Vec<u32> = product.lines[product.first_at(since)..]
            .iter()
            .map(|l| l.customer)
            .filter(|&c| c != NO_CUSTOMER)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

const _: () = assert!(std::mem::size_of::<Line>() == 48);
const _: () = assert!(std::mem::size_of::<Order>() == 88);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::sales_rank;
    use crate::eval::tests::decimal;

    proptest! {
        /// Ranks never order two amounts against their order (a range of
        /// ranks holds every amount between its ends), at any scale.
        #[test]
        fn sales_ranks_keep_the_amounts_order(a in decimal(), b in decimal()) {
            prop_assert!(a > b || sales_rank(a) <= sales_rank(b));
            prop_assert!(a < b || sales_rank(a) >= sales_rank(b));
            let scaled = {
                let mut x = a;
                x.rescale((a.scale() + 3).min(28));
                x
            };
            prop_assert_eq!(sales_rank(scaled), sales_rank(a));
        }
    }
}
