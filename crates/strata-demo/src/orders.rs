//! The order simulation: every customer's purchase history, then the
//! anonymous checkouts, then orders.csv in time order.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::DemoError;
use crate::catalogue::{ACCOUNTS, Catalogue, DEPTS, MARKETS};
use crate::customers::{CustomerPlan, CustomerStats, ID_WIDTH, Kind, time_of_day};
use crate::out::{CsvOut, push_money, push_padded, push_u64};
use crate::rng::{Rng, stream};
use crate::time::{Calendar, DAY, YEAR, push_timestamp};

/// Days of product_daily.csv, ending the day before `end`.
pub(crate) const DAILY_DAYS: usize = 45;
pub(crate) const NO_CUSTOMER: u32 = u32::MAX;
/// Customers per simulation chunk; each chunk has its own random stream,
/// so the result does not depend on how many threads run the chunks.
const CHUNK: usize = 4_096;
/// Share of orders placed without a customer account.
const ANONYMOUS_SHARE: f64 = 0.05;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    Pending,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    /// Whether the order counts for the segment fields (fields.md).
    pub fn counts(self) -> bool {
        !matches!(self, Status::Cancelled | Status::Refunded)
    }

    /// Recent orders are still on their way; about 3% are cancelled and 2%
    /// refunded (a refund needs a delivered parcel, so not in the last days).
    fn draw(rng: &mut Rng, age: i64) -> Status {
        let r = rng.f64();
        if r < 0.03 {
            Status::Cancelled
        } else if r < 0.05 && age > 4 * DAY {
            Status::Refunded
        } else if age < 2 * DAY {
            if rng.chance(0.5) {
                Status::Pending
            } else {
                Status::Shipped
            }
        } else if age < 6 * DAY {
            if rng.chance(0.6) {
                Status::Shipped
            } else {
                Status::Delivered
            }
        } else if rng.chance(0.95) {
            Status::Delivered
        } else {
            Status::Shipped
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Order {
    pub time: i64,
    pub customer: u32,
    pub first_line: u32,
    pub n_lines: u8,
    pub status: Status,
    pub market: u8,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Line {
    pub product: u32,
    pub qty: u16,
    pub unit: u32,
    pub discount: u32,
    pub fees: u32,
}

/// Per-product sales over counting lines, as the daily report and the
/// inventory need them.
pub(crate) struct ProductStats {
    /// Units sold before the first day of product_daily.csv.
    pub before: Vec<u64>,
    /// Units in the 7-, 14- and 30-day windows ending at `end`.
    pub window: Vec<[u32; 3]>,
    /// Units per product and day of product_daily.csv (`DAILY_DAYS` each).
    pub daily: Vec<u32>,
}

impl ProductStats {
    fn new(n: usize) -> Self {
        ProductStats {
            before: vec![0; n],
            window: vec![[0; 3]; n],
            daily: vec![0; n * DAILY_DAYS],
        }
    }

    fn merge(&mut self, other: &ProductStats) {
        for (a, b) in self.before.iter_mut().zip(&other.before) {
            *a += b;
        }
        for (a, b) in self.window.iter_mut().zip(&other.window) {
            for k in 0..3 {
                a[k] += b[k];
            }
        }
        for (a, b) in self.daily.iter_mut().zip(&other.daily) {
            *a += b;
        }
    }

    /// `0.5 × u7/7 + 0.3 × u14/14 + 0.2 × u30/30` (fields.md).
    pub fn velocity(&self, p: usize) -> f64 {
        let w = self.window[p];
        0.5 * w[0] as f64 / 7.0 + 0.3 * w[1] as f64 / 14.0 + 0.2 * w[2] as f64 / 30.0
    }
}

pub(crate) struct Context<'a> {
    pub cat: &'a Catalogue,
    pub cal: &'a Calendar,
    pub end: i64,
    /// Day number (since 1970-01-01) of the first product_daily.csv row.
    pub daily_first_day: i64,
}

pub(crate) struct Simulation {
    pub orders: Vec<Order>,
    pub lines: Vec<Line>,
    pub customers: Vec<CustomerStats>,
    pub products: ProductStats,
}

/// Orders of one chunk of customers (or of the anonymous buyers).
struct Builder<'c, 's> {
    ctx: &'c Context<'c>,
    orders: Vec<Order>,
    lines: Vec<Line>,
    stats: &'s mut ProductStats,
}

impl Builder<'_, '_> {
    /// Adds one order and returns its (counting) revenue and profit.
    fn order(
        &mut self,
        rng: &mut Rng,
        t: i64,
        market: u8,
        customer: u32,
        plan: Option<&CustomerPlan>,
        history: &mut Vec<u32>,
    ) -> Option<(i64, i64)> {
        let ctx = self.ctx;
        let cat = ctx.cat;
        let month = ctx.cal.month(t);
        let wholesale = plan.is_some_and(|p| p.wholesale);
        let n_lines = if wholesale {
            1 + rng.below(4)
        } else {
            1 + rng.weighted(&[0.5, 0.27, 0.13, 0.10]) as u64
        };
        let status = Status::draw(rng, ctx.end - t);
        let first_line = self.lines.len();
        let years_ago = ((ctx.end - t) as f64 / YEAR).floor();
        let promo_chance = if ctx.cal.promo(t) { 0.4 } else { 0.07 };
        let (mut revenue, mut profit) = (0i64, 0i64);
        for _ in 0..n_lines {
            let mut product = None;
            for _ in 0..3 {
                // Consumables come back: re-buy something bought before.
                let p = if !history.is_empty() && rng.chance(0.35) {
                    let p = *rng.pick(history);
                    if cat.can_sell(rng, p, t, month) {
                        p
                    } else {
                        cat.pick(rng, market as usize, None, t, month)
                    }
                } else {
                    let dept = plan
                        .filter(|_| rng.chance(0.25))
                        .map(|p| p.fav_dept as usize);
                    cat.pick(rng, market as usize, dept, t, month)
                };
                if !self.lines[first_line..].iter().any(|l| l.product == p) {
                    product = Some(p);
                    break;
                }
            }
            let Some(p) = product else { continue };
            let prod = &cat.products[p as usize];
            let dept = &DEPTS[prod.dept as usize];
            if plan.is_some() && dept.repeat && !history.contains(&p) {
                if history.len() < 8 {
                    history.push(p);
                } else {
                    let k = rng.below(8) as usize;
                    history[k] = p;
                }
            }
            let qty: u16 = if wholesale {
                *rng.pick(&[6, 12, 12, 24, 36, 48])
            } else {
                [1, 2, 3, 4, 5, 6][rng.weighted(&[0.82, 0.11, 0.04, 0.015, 0.01, 0.005])]
            };
            let price = prod.price.unwrap_or(0);
            // Prices drift up a few per cent a year; sale days cut them.
            let mut unit = if years_ago >= 1.0 {
                (price as f64 * (1.0 - 0.04 * years_ago).max(0.7)).round() as i64
            } else {
                price
            };
            if rng.chance(promo_chance) {
                unit = (unit as f64 * rng.uniform(0.75, 0.95)).round() as i64;
            }
            let gross = unit * qty as i64;
            let discount = if wholesale {
                gross / 10
            } else if rng.chance(0.05) {
                gross * *rng.pick(&[5, 10, 15, 20]) / 100
            } else {
                0
            };
            let line_revenue = gross - discount;
            let fees = if status == Status::Cancelled {
                0
            } else {
                line_revenue * dept.fee_bp / 10_000
            };
            if status.counts() {
                revenue += line_revenue;
                profit += line_revenue - fees - qty as i64 * prod.cost.unwrap_or(0);
                self.record(p as usize, t, qty as u64);
            }
            self.lines.push(Line {
                product: p,
                qty,
                unit: unit as u32,
                discount: discount as u32,
                fees: fees as u32,
            });
        }
        let n = self.lines.len() - first_line;
        if n == 0 {
            return None;
        }
        self.orders.push(Order {
            time: t,
            customer,
            first_line: first_line as u32,
            n_lines: n as u8,
            status,
            market,
        });
        status.counts().then_some((revenue, profit))
    }

    #[inline]
    fn record(&mut self, p: usize, t: i64, qty: u64) {
        let end = self.ctx.end;
        let s = &mut *self.stats;
        for (k, days) in [7, 14, 30].into_iter().enumerate() {
            if t >= end - days * DAY {
                s.window[p][k] += qty as u32;
            }
        }
        let day = t.div_euclid(DAY) - self.ctx.daily_first_day;
        if day < 0 {
            s.before[p] += qty;
        } else if (day as usize) < DAILY_DAYS {
            s.daily[p * DAILY_DAYS + day as usize] += qty as u32;
        }
    }
}

/// Order rate (per year) and mean active lifetime (years) of a kind.
fn rhythm(rng: &mut Rng, kind: Kind) -> (f64, f64) {
    match kind {
        Kind::Never | Kind::OneOff => (0.0, 0.0),
        Kind::Occasional => (rng.lognormal(3.3, 0.5), 1.5),
        Kind::Loyal => (rng.lognormal(12.0, 0.5), 3.0),
        Kind::Heavy => (rng.lognormal(50.0, 0.5), 5.0),
    }
}

/// One customer's history: a first order soon after sign-up, then a
/// Poisson stream thinned by the store's demand calendar until the
/// customer drifts away (churn) or `end`.
fn simulate_customer(
    b: &mut Builder<'_, '_>,
    rng: &mut Rng,
    id: u32,
    plan: &CustomerPlan,
    history: &mut Vec<u32>,
) -> CustomerStats {
    let mut st = CustomerStats::default();
    if plan.kind == Kind::Never {
        return st;
    }
    let end = b.ctx.end;
    let first = if rng.chance(0.7) {
        plan.created + rng.int(0, 900)
    } else {
        plan.created + rng.exp(20.0 * DAY as f64) as i64
    };
    if first >= end {
        return st;
    }
    history.clear();
    let mut count = |r: Option<(i64, i64)>| {
        if let Some((rev, prof)) = r {
            st.orders += 1;
            st.revenue += rev;
            st.profit += prof;
        }
    };
    count(b.order(rng, first, plan.market, id, Some(plan), history));
    let (rate, life) = rhythm(rng, plan.kind);
    if rate > 0.0 {
        let stop = end.min(first.saturating_add((rng.exp(life) * YEAR) as i64));
        let max = b.ctx.cal.max_demand;
        let mean_gap = YEAR / (rate * max);
        let mut t = first;
        for _ in 0..600 {
            t += rng.exp(mean_gap) as i64 + 1;
            if t >= stop {
                break;
            }
            if rng.chance(b.ctx.cal.demand(t) / max) {
                let mut at = time_of_day(rng, t, plan.market);
                if at < first || at >= end {
                    at = t;
                }
                count(b.order(rng, at, plan.market, id, Some(plan), history));
            }
        }
    }
    st
}

/// Runs the simulation on up to `threads` threads; the result is the same
/// for any number.
pub(crate) fn simulate(
    ctx: &Context,
    plans: &[CustomerPlan],
    seed: u64,
    threads: usize,
) -> Simulation {
    let n_products = ctx.cat.products.len();
    let n_chunks = plans.len().div_ceil(CHUNK);
    let threads = threads.clamp(1, n_chunks.max(1));
    let next = AtomicUsize::new(0);
    type ChunkOut = (usize, Vec<Order>, Vec<Line>, Vec<CustomerStats>);
    let work = |stats: &mut ProductStats| -> Vec<ChunkOut> {
        let mut done = Vec::new();
        let mut history = Vec::with_capacity(8);
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= n_chunks {
                return done;
            }
            let mut rng = Rng::new(seed, stream::SIMULATION + c as u64);
            let range = c * CHUNK..((c + 1) * CHUNK).min(plans.len());
            let mut b = Builder {
                ctx,
                orders: Vec::with_capacity(range.len() * 6),
                lines: Vec::with_capacity(range.len() * 11),
                stats,
            };
            let cust: Vec<CustomerStats> = range
                .clone()
                .map(|i| simulate_customer(&mut b, &mut rng, i as u32, &plans[i], &mut history))
                .collect();
            done.push((c, b.orders, b.lines, cust));
        }
    };
    let mut products = ProductStats::new(n_products);
    let mut chunks: Vec<ChunkOut> = if threads <= 1 {
        work(&mut products)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (1..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut st = ProductStats::new(n_products);
                        let done = work(&mut st);
                        (done, st)
                    })
                })
                .collect();
            let mut all = work(&mut products);
            for h in handles {
                let (done, st) = h.join().expect("simulation thread panicked");
                products.merge(&st);
                all.extend(done);
            }
            all
        })
    };
    chunks.sort_by_key(|c| c.0);

    let total_orders: usize = chunks.iter().map(|c| c.1.len()).sum();
    let total_lines: usize = chunks.iter().map(|c| c.2.len()).sum();
    let anonymous =
        (total_orders as f64 * ANONYMOUS_SHARE / (1.0 - ANONYMOUS_SHARE)).round() as usize;
    let mut orders = Vec::with_capacity(total_orders + anonymous);
    let mut lines = Vec::with_capacity(total_lines + anonymous * 2);
    let mut customers = Vec::with_capacity(plans.len());
    for (_, o, l, c) in chunks {
        let offset = lines.len() as u32;
        orders.extend(o.into_iter().map(|o| Order {
            first_line: o.first_line + offset,
            ..o
        }));
        lines.extend(l);
        customers.extend(c);
    }

    // Guest checkouts happen when the account holders shop, so each one
    // borrows the time and marketplace of a random customer order.
    let mut rng = Rng::new(seed, stream::ANONYMOUS);
    let mut b = Builder {
        ctx,
        orders: Vec::with_capacity(anonymous),
        lines: Vec::new(),
        stats: &mut products,
    };
    let mut none = Vec::new();
    for _ in 0..anonymous {
        let base = &orders[rng.below(total_orders as u64) as usize];
        let launch = ctx.cat.launch[base.market as usize];
        // A day or two either side, at about the same hour of the day.
        let mut t = base.time + rng.int(-2, 2) * DAY + rng.int(-1800, 1800);
        if t < launch || t >= ctx.end {
            t = (base.time - rng.int(0, 1800)).max(launch);
        }
        b.order(&mut rng, t, base.market, NO_CUSTOMER, None, &mut none);
    }
    let offset = lines.len() as u32;
    orders.extend(b.orders.into_iter().map(|o| Order {
        first_line: o.first_line + offset,
        ..o
    }));
    lines.extend(b.lines);

    // Export order: by time, as a shop's order export reads.
    orders.sort_unstable_by_key(|o| (o.time, o.first_line));
    // Lines in the same order, so that writing reads them sequentially.
    let mut sorted_lines = Vec::with_capacity(lines.len());
    for o in &mut orders {
        let first = o.first_line as usize;
        o.first_line = sorted_lines.len() as u32;
        sorted_lines.extend_from_slice(&lines[first..first + o.n_lines as usize]);
    }
    let lines = sorted_lines;
    Simulation {
        orders,
        lines,
        customers,
        products,
    }
}

/// Amazon-style order number `111-1234567-1234567`, unique because it is a
/// bijection of the sequence number mod 10^15 (affine maps with a
/// multiplier prime to 10, around a digit reversal that hides the
/// arithmetic progression).
fn push_order_id(buf: &mut Vec<u8>, seq: u64, market: u8) {
    const MODULUS: u128 = 1_000_000_000_000_000;
    let a = ((seq as u128 * 376_289_117_830_373 + 104_729_000_001) % MODULUS) as u64;
    let mut reversed = 0u64;
    let mut x = a;
    for _ in 0..15 {
        reversed = reversed * 10 + x % 10;
        x /= 10;
    }
    let n = ((reversed as u128 * 917_436_511_237_419 + 58_111) % MODULUS) as u64;
    buf.extend_from_slice([b"11", b"20", b"30"][market as usize]);
    let mut digits = [0u8; 15];
    let mut x = n;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (x % 10) as u8;
        x /= 10;
    }
    buf.push(digits[0]);
    buf.push(b'-');
    buf.extend_from_slice(&digits[1..8]);
    buf.push(b'-');
    buf.extend_from_slice(&digits[8..]);
}

pub(crate) fn write(dir: &Path, ctx: &Context, sim: &Simulation) -> Result<(), DemoError> {
    let mut out = CsvOut::create(
        dir,
        "orders.csv",
        &[
            "order_id",
            "ordered_at",
            "customer_id",
            "status",
            "marketplace",
            "sku",
            "seller_account",
            "quantity",
            "unit_price",
            "discount",
            "fees",
        ],
    )?;
    // `sku,seller_account,` of every product, packed: the products
    // themselves are too large to stay in cache while ten million lines
    // pick them at random.
    let mut packed = Vec::new();
    let mut at = Vec::with_capacity(ctx.cat.products.len() + 1);
    for p in &ctx.cat.products {
        at.push(packed.len());
        packed.extend_from_slice(p.sku.as_bytes());
        packed.push(b',');
        packed.extend_from_slice(ACCOUNTS[p.account as usize].as_bytes());
        packed.push(b',');
    }
    at.push(packed.len());
    let mut head = Vec::with_capacity(96);
    for (seq, o) in sim.orders.iter().enumerate() {
        head.clear();
        push_order_id(&mut head, seq as u64, o.market);
        head.push(b',');
        push_timestamp(&mut head, o.time);
        head.push(b',');
        if o.customer != NO_CUSTOMER {
            head.push(b'C');
            push_padded(&mut head, o.customer as u64 + 1, ID_WIDTH);
        }
        head.push(b',');
        head.extend_from_slice(o.status.as_str().as_bytes());
        head.push(b',');
        head.extend_from_slice(MARKETS[o.market as usize].as_bytes());
        head.push(b',');
        let first = o.first_line as usize;
        for line in &sim.lines[first..first + o.n_lines as usize] {
            let p = line.product as usize;
            let b = &mut out.buf;
            b.extend_from_slice(&head);
            b.extend_from_slice(&packed[at[p]..at[p + 1]]);
            push_u64(b, line.qty as u64);
            b.push(b',');
            push_money(b, line.unit as i64);
            b.push(b',');
            if line.discount > 0 {
                push_money(b, line.discount as i64);
            }
            b.push(b',');
            push_money(b, line.fees as i64);
            out.end_row()?;
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_does_not_change_the_result() {
        let end = 1_793_491_200;
        let founding = end - 3653 * DAY;
        let cat = crate::catalogue::build(300, founding, end, &mut Rng::new(3, 1));
        let cal = Calendar::new(founding / DAY - 1, end / DAY + 1);
        let plans = crate::customers::plan(
            3 * CHUNK + 100,
            founding,
            end,
            &cat.launch,
            &mut Rng::new(3, 2),
        );
        let ctx = Context {
            cat: &cat,
            cal: &cal,
            end,
            daily_first_day: end / DAY - DAILY_DAYS as i64,
        };
        let one = simulate(&ctx, &plans, 3, 1);
        let three = simulate(&ctx, &plans, 3, 3);
        assert!(one.orders == three.orders && one.lines == three.lines);
        assert_eq!(one.products.daily, three.products.daily);
        assert_eq!(one.products.window, three.products.window);
        let totals = |s: &Simulation| {
            s.customers
                .iter()
                .map(|c| (c.orders, c.revenue, c.profit))
                .collect::<Vec<_>>()
        };
        assert_eq!(totals(&one), totals(&three));
        assert!(one.orders.len() > 3 * CHUNK);
    }

    #[test]
    fn order_ids_are_distinct_and_shaped() {
        let mut seen = std::collections::HashSet::new();
        for seq in 0..50_000 {
            let mut b = Vec::new();
            push_order_id(&mut b, seq, (seq % 3) as u8);
            let s = String::from_utf8(b).unwrap();
            assert_eq!(s.len(), 19, "{s}");
            assert_eq!(&s[3..4], "-");
            assert_eq!(&s[11..12], "-");
            assert!(seen.insert(s[2..].to_string()));
        }
    }
}
