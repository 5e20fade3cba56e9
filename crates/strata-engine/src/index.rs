//! Indexes over the order lines and daily rows that exist as of `now`.
//!
//! Only *counting* lines (status not cancelled/refunded, `ordered_at <= now`)
//! ever contribute to a field, so the index holds just those, denormalised
//! into time order: a time window is then one contiguous range found by
//! binary search. Per-customer and per-product lists (CSR) point into that
//! order, so each list is itself sorted by time.

use rust_decimal::Decimal;
use strata_data::{Dataset, NO_CUSTOMER, Nanos};

use crate::clock::AsOf;
use crate::columns::{MAX_FIXED_SCALE, to_fixed};

/// Counting lines as of `now`, sorted by `(ordered_at, order, file line)`.
///
/// **Invariant: the lines of one order are contiguous** (they share
/// `ordered_at`), in this order and therefore in every per-customer list, so
/// distinct orders are counted by watching the order id change.
#[derive(Debug, Default)]
pub struct LiveLines {
    pub at: Vec<Nanos>,
    pub customer: Vec<u32>,
    pub product: Vec<u32>,
    pub order: Vec<u32>,
    pub quantity: Vec<u32>,
    /// Revenue and fees as decimals: empty when `money` holds them (read
    /// them through [`LiveLines::revenue`] and [`LiveLines::fees`]).
    pub revenue_dec: Vec<Decimal>,
    pub fees_dec: Vec<Decimal>,
    /// Money in fixed point, when every amount (and every product cost)
    /// fits one scale: the hot loops then add integers, and the decimal
    /// columns are not kept.
    pub money: Option<FixedMoney>,
    /// Lines of customer `c`: `by_customer[cust_start[c]..cust_start[c + 1]]`.
    pub cust_start: Vec<u32>,
    pub by_customer: Vec<u32>,
    /// Lines of product `p`, likewise.
    pub prod_start: Vec<u32>,
    pub by_product: Vec<u32>,
    /// Copies of the line columns in `by_product` order: a product filter
    /// then reads its lines sequentially instead of all over the time
    /// order (which costs a cache miss per line on large data).
    pub prod_customer: Vec<u32>,
    pub prod_order: Vec<u32>,
    pub prod_quantity: Vec<u32>,
    /// Revenue in `by_product` order, fixed point (when `money` is).
    pub prod_revenue: Option<Vec<i64>>,
}

impl LiveLines {
    pub fn build(data: &Dataset, as_of: &AsOf) -> LiveLines {
        let orders = &data.orders;
        let lines = &data.lines;
        // The live lines in `(ordered_at, order, line)` order. Exports are
        // usually in time order already (and order ids are numbered in
        // first-seen order), so check that first and skip the sort; else
        // sort compact keys, whose comparisons touch no other memory.
        let live = |l: usize| {
            let o = lines.order[l] as usize;
            (orders.counting[o] && orders.ordered_at[o] <= as_of.now)
                .then(|| (orders.ordered_at[o], o as u32, l as u32))
        };
        let mut in_order = true;
        let mut previous = None;
        let mut count = 0;
        for l in 0..lines.len() {
            if let Some(key) = live(l) {
                count += 1;
                in_order &= previous.is_none_or(|p| p <= key);
                previous = Some(key);
            }
        }
        let keys: Vec<(Nanos, u32, u32)> = if in_order {
            // No copy to sort: read the keys again as they come.
            Vec::new()
        } else {
            let mut keys = Vec::with_capacity(count);
            keys.extend((0..lines.len()).filter_map(live));
            keys.sort_unstable();
            keys
        };
        let ordered = || -> Box<dyn Iterator<Item = (Nanos, u32, u32)> + '_> {
            if in_order {
                Box::new((0..lines.len()).filter_map(live))
            } else {
                Box::new(keys.iter().copied())
            }
        };

        let n = count;
        let mut out = LiveLines {
            at: Vec::with_capacity(n),
            customer: Vec::with_capacity(n),
            product: Vec::with_capacity(n),
            order: Vec::with_capacity(n),
            quantity: Vec::with_capacity(n),
            ..LiveLines::default()
        };
        for (at, o, l) in ordered() {
            let l = l as usize;
            out.at.push(at);
            out.customer.push(orders.customer[o as usize]);
            out.product.push(lines.product[l]);
            out.order.push(o);
            out.quantity.push(lines.quantity[l]);
        }
        // Money in fixed point when it fits, else (only then) in decimals.
        let sources = || ordered().map(|(_, _, l)| l as usize);
        out.money = FixedMoney::build(data, n, sources);
        if out.money.is_none() {
            out.revenue_dec = Vec::with_capacity(n);
            out.revenue_dec.extend(sources().map(|l| lines.revenue[l]));
            out.fees_dec = Vec::with_capacity(n);
            out.fees_dec.extend(sources().map(|l| lines.fees[l]));
        }
        drop(keys);

        let (cust_start, by_customer) = csr(data.customers.len(), &out.customer);
        let (prod_start, by_product) = csr(data.products.len(), &out.product);
        out.cust_start = cust_start;
        out.by_customer = by_customer;
        out.prod_customer = by_product
            .iter()
            .map(|&l| out.customer[l as usize])
            .collect();
        out.prod_order = by_product.iter().map(|&l| out.order[l as usize]).collect();
        out.prod_quantity = by_product
            .iter()
            .map(|&l| out.quantity[l as usize])
            .collect();
        out.prod_revenue = out
            .money
            .as_ref()
            .map(|m| by_product.iter().map(|&l| m.revenue[l as usize]).collect());
        out.prod_start = prod_start;
        out.by_product = by_product;
        out
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// The revenue of live line `l`.
    #[inline]
    pub fn revenue(&self, l: usize) -> Decimal {
        match &self.money {
            Some(m) => Decimal::new(m.revenue[l], m.scale),
            None => self.revenue_dec[l],
        }
    }

    /// The fees of live line `l`.
    #[inline]
    pub fn fees(&self, l: usize) -> Decimal {
        match &self.money {
            Some(m) => Decimal::new(m.fees[l], m.scale),
            None => self.fees_dec[l],
        }
    }

    pub fn of_customer(&self, c: usize) -> &[u32] {
        &self.by_customer[self.cust_start[c] as usize..self.cust_start[c + 1] as usize]
    }

    /// Positions in `by_product` (and the `prod_*` columns) of product `p`.
    pub fn product_slots(&self, p: usize) -> std::ops::Range<usize> {
        self.prod_start[p] as usize..self.prod_start[p + 1] as usize
    }

    /// Positions in `by_product` of product `p`'s lines that lie in a
    /// [`LiveLines::time_range`].
    pub fn product_slots_in(
        &self,
        p: usize,
        range: &std::ops::Range<usize>,
    ) -> std::ops::Range<usize> {
        let slots = self.product_slots(p);
        let within = Self::clip_positions(&self.by_product[slots.clone()], range);
        slots.start + within.start..slots.start + within.end
    }

    /// The index range of all lines with `lo <= at <= hi`.
    pub fn time_range(&self, lo: Nanos, hi: Nanos) -> std::ops::Range<usize> {
        let start = self.at.partition_point(|&t| t < lo);
        let end = self.at.partition_point(|&t| t <= hi);
        start..end.max(start)
    }

    /// The part of a per-customer or per-product list that lies in a
    /// [`LiveLines::time_range`]. Line ids are positions in time order, so
    /// the list is compared with the range's ends directly.
    pub fn clip<'a>(list: &'a [u32], range: &std::ops::Range<usize>) -> &'a [u32] {
        &list[Self::clip_positions(list, range)]
    }

    /// The positions within `list` that [`LiveLines::clip`] keeps.
    fn clip_positions(list: &[u32], range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        let start = list.partition_point(|&l| (l as usize) < range.start);
        let end = list.partition_point(|&l| (l as usize) < range.end);
        start..end.max(start)
    }
}

/// Revenue and fees of the live lines, and product costs, as integers at
/// one common scale.
#[derive(Debug)]
pub struct FixedMoney {
    pub scale: u32,
    pub revenue: Vec<i64>,
    pub fees: Vec<i64>,
    /// Per product; `None` where the product has no cost.
    pub cost: Vec<Option<i64>>,
}

impl FixedMoney {
    /// Converts the live lines' money (`sources` yields their line ids in
    /// live order); `None` when some amount has no fixed form at the largest
    /// scale present.
    fn build<I: Iterator<Item = usize>>(
        data: &Dataset,
        n: usize,
        sources: impl Fn() -> I,
    ) -> Option<FixedMoney> {
        let lines = &data.lines;
        let costs = &data.products.cost;
        let scale = lines
            .revenue
            .iter()
            .chain(&lines.fees)
            .chain(costs.iter().flatten())
            .map(|d| d.scale())
            .max()
            .unwrap_or(0);
        if scale > MAX_FIXED_SCALE {
            return None;
        }
        // Sized up front: these are among the largest columns, and growing
        // them by doubling would copy them and fault in fresh pages.
        let convert = |col: &[Decimal]| -> Option<Vec<i64>> {
            let mut out = Vec::with_capacity(n);
            for l in sources() {
                out.push(to_fixed(col[l], scale)?);
            }
            Some(out)
        };
        let cost = costs
            .iter()
            .map(|c| match c {
                None => Some(None),
                Some(d) => to_fixed(*d, scale).map(Some),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FixedMoney {
            scale,
            revenue: convert(&lines.revenue)?,
            fees: convert(&lines.fees)?,
            cost,
        })
    }
}

/// Counting orders as of `now`, in the time order of [`LiveLines`], with
/// their order-level totals: a behaviour function without a product filter
/// reads one entry per order instead of one per line.
#[derive(Debug, Default)]
pub struct LiveOrders {
    pub at: Vec<Nanos>,
    pub customer: Vec<u32>,
    /// Dictionary code of the order's marketplace.
    pub marketplace: Vec<u32>,
    pub units: Vec<u64>,
    /// Order revenue at the scale of [`FixedMoney`], when the lines have
    /// one; else `revenue_dec` holds it.
    pub revenue_fixed: Option<Vec<i128>>,
    pub revenue_dec: Vec<Decimal>,
}

impl LiveOrders {
    pub fn build(data: &Dataset, live: &LiveLines) -> LiveOrders {
        // At most one entry per order of the dataset.
        let orders = data.orders.len();
        let mut out = LiveOrders {
            at: Vec::with_capacity(orders),
            customer: Vec::with_capacity(orders),
            marketplace: Vec::with_capacity(orders),
            units: Vec::with_capacity(orders),
            ..LiveOrders::default()
        };
        let mut prev = u32::MAX;
        for l in 0..live.len() {
            let o = live.order[l];
            if o != prev {
                prev = o;
                out.at.push(live.at[l]);
                out.customer.push(live.customer[l]);
                out.marketplace
                    .push(data.orders.marketplace.codes[o as usize]);
                out.units.push(0);
                if live.money.is_none() {
                    out.revenue_dec.push(Decimal::ZERO);
                }
            }
            let last = out.at.len() - 1;
            out.units[last] += u64::from(live.quantity[l]);
            if live.money.is_none() {
                out.revenue_dec[last] += live.revenue_dec[l];
            }
        }
        out.revenue_fixed = live.money.as_ref().map(|m| {
            let mut sums: Vec<i128> = Vec::with_capacity(out.at.len());
            let mut prev = u32::MAX;
            for l in 0..live.len() {
                if live.order[l] != prev {
                    prev = live.order[l];
                    sums.push(0i128);
                }
                if let Some(last) = sums.last_mut() {
                    *last += i128::from(m.revenue[l]);
                }
            }
            sums
        });
        out
    }

    /// The revenue of live order `o`.
    pub fn revenue(&self, o: usize, money: Option<&FixedMoney>) -> Decimal {
        match (&self.revenue_fixed, money) {
            (Some(fixed), Some(m)) => {
                crate::columns::from_fixed(fixed[o], m.scale).unwrap_or(Decimal::MAX)
            }
            _ => self.revenue_dec[o],
        }
    }

    /// The index range of the orders with `lo <= at <= hi`.
    pub fn time_range(&self, lo: Nanos, hi: Nanos) -> std::ops::Range<usize> {
        let start = self.at.partition_point(|&t| t < lo);
        let end = self.at.partition_point(|&t| t <= hi);
        start..end.max(start)
    }
}

/// A plain bitset over dense ids, for building results row by row in any
/// order before handing them to roaring in one go.
pub struct DenseBits {
    words: Vec<u64>,
}

impl DenseBits {
    pub fn new(n: usize) -> DenseBits {
        DenseBits {
            words: vec![0; n.div_ceil(64)],
        }
    }

    #[inline]
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The set ids, ascending.
    pub fn iter(&self) -> DenseBitsIter<'_> {
        DenseBitsIter {
            words: &self.words,
            index: 0,
            current: self.words.first().copied().unwrap_or(0),
        }
    }

    pub fn into_bitmap(self) -> roaring::RoaringBitmap {
        let mut bytes = Vec::with_capacity(self.words.len() * 8);
        for w in &self.words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        roaring::RoaringBitmap::from_lsb0_bytes(0, &bytes)
    }
}

pub struct DenseBitsIter<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl Iterator for DenseBitsIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
        let bit = self.current.trailing_zeros() as usize;
        self.current &= self.current - 1;
        Some(self.index * 64 + bit)
    }
}

/// Groups `0..keys.len()` by key into CSR form, keeping their order within a
/// key. Keys equal to [`NO_CUSTOMER`] (anonymous lines) are left out.
fn csr(groups: usize, keys: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; groups + 1];
    for &k in keys {
        if k != NO_CUSTOMER {
            start[k as usize + 1] += 1;
        }
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut fill = start.clone();
    let mut items = vec![0u32; start[groups] as usize];
    for (i, &k) in keys.iter().enumerate() {
        if k != NO_CUSTOMER {
            let slot = &mut fill[k as usize];
            items[*slot as usize] = i as u32;
            *slot += 1;
        }
    }
    (start, items)
}

/// Daily rows dated on or before `today`, per product, sorted by date.
#[derive(Debug, Default)]
pub struct DailyIndex {
    pub start: Vec<u32>,
    /// Row ids into `Dataset::daily`.
    pub rows: Vec<u32>,
}

impl DailyIndex {
    pub fn build(data: &Dataset, as_of: &AsOf) -> DailyIndex {
        let daily = &data.daily;
        let mut rows: Vec<u32> = (0..daily.len() as u32)
            .filter(|&r| daily.date[r as usize] <= as_of.today)
            .collect();
        rows.sort_unstable_by_key(|&r| (daily.product[r as usize], daily.date[r as usize]));
        let keys: Vec<u32> = rows.iter().map(|&r| daily.product[r as usize]).collect();
        let (start, order) = csr(data.products.len(), &keys);
        let rows = order.into_iter().map(|i| rows[i as usize]).collect();
        DailyIndex { start, rows }
    }

    pub fn of_product(&self, p: usize) -> &[u32] {
        &self.rows[self.start[p] as usize..self.start[p + 1] as usize]
    }
}
