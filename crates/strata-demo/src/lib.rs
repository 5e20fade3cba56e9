//! Deterministic synthetic seller datasets for Strata (`strata demo`).
//!
//! [`generate`] writes a dataset directory in the format of the dataset
//! spec: a catalogue, customers, ten years of orders, daily product
//! metrics, tier schemes and saved segments. Its purpose is to make every
//! kind of segment rule worth trying, so the data is shaped like a real
//! store rather than uniformly random.
//!
//! # The generative model
//!
//! *The store.* NorthPeak opened as a sock shop on Amazon US ten years
//! before `end`, then added Apparel, Home, Outdoors, Beauty, Toys & Games,
//! Pet Supplies and Electronics, and opened in the UK (year 3) and Germany
//! (year 4½). Growth is exponential, so most customers and orders fall in
//! the last two years, yet questions about the first season (say, sock
//! buyers in winter 2016/17 for the default `end`) still have answers.
//!
//! *Catalogue* (≈ customers / 10 rows, 200..=100,000). Products come in
//! variation families: a parent row (`SOCK`) and children that vary by
//! colour and/or size (`SOCK-RED-M`), or stand alone. Each family is
//! listed in one marketplace. Categories are `Department > Sub` paths or
//! the bare department, so `category = 'Socks'` and `category STARTS WITH
//! 'Home'` both select something. Popularity is Zipf over the families of a
//! marketplace (exponent ≈ 1), split unevenly between colours and sizes:
//! a long tail where the top tenth of products sells most units. A few
//! listings are drafts (never sold), discontinued (sold out or selling the
//! last units), stocked out in the last three weeks, or seasonal (summer
//! or holiday demand).
//!
//! *Customers.* Sign-up times follow the growth curve; each customer has a
//! marketplace (with a matching country and city), and a buying kind:
//! never buys (10%), one-off (38%), occasional, loyal or heavy (3%, some of
//! them wholesale buying by the case). The first order follows sign-up;
//! repeat orders are a Poisson stream whose rate is drawn per customer
//! (log-normal within the kind) and thinned by the store's demand calendar
//! (Black Friday to Cyber Monday, Prime Day, a December peak, a January
//! lull, weekday rhythm), until the customer churns (an exponential
//! lifetime), which leaves lapsed customers behind. Lines pick products by
//! popularity, available at that moment and in season, with a pull towards
//! the customer's favourite department and re-purchases of consumables.
//!
//! *Order lines.* 1–4 lines, quantity mostly 1, unit price the list price
//! (a little lower in past years, cut on sale days), occasional coupons,
//! marketplace fees of about 15% of revenue (8% for electronics). About 3%
//! of orders are cancelled, 2% refunded, the last days' still pending or
//! shipped; 5% are guest checkouts without a customer id.
//!
//! *Derived data.* Inventory is a few weeks of the simulated sales
//! velocity (widely spread, so `days_of_stock` has a low end); daily
//! sessions, BSR and reviews follow the simulated daily units; tier
//! thresholds and the `best-sellers` cut are quantiles of the simulated
//! totals.
//!
//! # Determinism
//!
//! Everything is drawn from ChaCha8 streams derived from the seed: one per
//! file or part, and one per chunk of 4,096 customers in the simulation,
//! which therefore runs on several threads with identical output. The
//! same seed, options and build give the same bytes on any day; `end` has
//! a fixed default for that reason.

mod catalogue;
mod customers;
mod daily;
mod meta;
mod orders;
mod out;
mod rng;
mod time;

use std::path::{Path, PathBuf};

use crate::time::DAY;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of customers; the catalogue, orders and daily rows scale
    /// with it (about 10 order lines per customer).
    pub customers: usize,
    pub seed: u64,
    /// The moment the data ends: no order or daily row is later.
    pub end: jiff::Timestamp,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            customers: 10_000,
            seed: 42,
            end: jiff::Timestamp::from_second(DEFAULT_END).expect("valid constant"),
        }
    }
}

/// 2026-11-01T00:00:00Z.
const DEFAULT_END: i64 = 1_793_491_200;

/// Row counts of the generated files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSummary {
    pub products: usize,
    pub customers: usize,
    pub orders: usize,
    pub order_lines: usize,
    pub daily_rows: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid demo options: {0}")]
    Options(String),
}

/// Most customers the ids and the in-memory simulation support.
pub const MAX_CUSTOMERS: usize = 50_000_000;

/// Writes a complete dataset into `dir` (created if missing; existing
/// files of the same names are replaced).
pub fn generate(dir: &Path, opts: &DemoOptions) -> Result<DemoSummary, DemoError> {
    if opts.customers > MAX_CUSTOMERS {
        return Err(DemoError::Options(format!(
            "at most {MAX_CUSTOMERS} customers are supported (got {})",
            opts.customers
        )));
    }
    let end = opts.end.as_second();
    // Ten years of history must fit in four-digit years.
    if !(days_to_secs(1011, 1, 1)..=days_to_secs(9999, 1, 1)).contains(&end) {
        return Err(DemoError::Options(format!(
            "end must lie between the years 1011 and 9999 (got {})",
            opts.end
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let founding = end - 3653 * DAY;
    let mut rng = rng::Rng::new(opts.seed, rng::stream::CATALOGUE);
    let target = (opts.customers / 10).clamp(200, 100_000);
    let cat = catalogue::build(target, founding, end, &mut rng);
    let cal = time::Calendar::new(founding.div_euclid(DAY) - 1, end.div_euclid(DAY) + 1);
    let mut rng = rng::Rng::new(opts.seed, rng::stream::CUSTOMER_PLAN);
    let plans = customers::plan(opts.customers, founding, end, &cat.launch, &mut rng);
    let ctx = orders::Context {
        cat: &cat,
        cal: &cal,
        end,
        daily_first_day: end.div_euclid(DAY) - orders::DAILY_DAYS as i64,
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let sim = orders::simulate(&ctx, &plans, opts.seed, threads);
    let inventory = daily::inventory(&cat, &sim.products, end, opts.seed);
    let vip_from = meta::quantile(
        sim.customers
            .iter()
            .filter(|s| s.orders > 0)
            .map(|s| s.revenue)
            .collect(),
        0.97,
    )
    .unwrap_or(i64::MAX);

    let daily_rows = std::thread::scope(|s| {
        let orders_file = s.spawn(|| orders::write(dir, &ctx, &sim));
        let rest = (|| {
            daily::write_products(dir, &cat, &inventory)?;
            let rows =
                daily::write_daily(dir, &cat, &sim.products, ctx.daily_first_day, opts.seed)?;
            customers::write(dir, &plans, &sim.customers, vip_from, opts.seed)?;
            out::write_file(dir, "tiers.json", &meta::tiers(&plans, &sim.customers))?;
            out::write_file(dir, "segments.json", &meta::segments(&cat, &sim.products))?;
            out::write_file(dir, "settings.json", meta::SETTINGS)?;
            Ok::<_, DemoError>(rows)
        })();
        orders_file.join().expect("orders writer panicked")?;
        rest
    })?;

    Ok(DemoSummary {
        products: cat.products.len(),
        customers: plans.len(),
        orders: sim.orders.len(),
        order_lines: sim.lines.len(),
        daily_rows,
    })
}

fn days_to_secs(y: i64, m: u32, d: u32) -> i64 {
    time::days_from_civil(y, m, d) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_end_is_november_2026() {
        let expected: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        assert_eq!(DemoOptions::default().end, expected);
    }
}
