//! products.csv (with inventory derived from the simulated sales) and
//! product_daily.csv (traffic, sales rank and reviews that follow them).

use std::path::Path;

use crate::DemoError;
use crate::catalogue::{ACCOUNTS, Catalogue, DEPTS, MARKETS};
use crate::orders::{DAILY_DAYS, ProductStats};
use crate::out::{CsvOut, push_money, push_text, push_u64};
use crate::rng::{Rng, stream};
use crate::time::{DAY, push_date, push_timestamp};

/// Units on hand now. Sellers keep roughly a few weeks of cover, so stock
/// follows the recent sales velocity with a wide spread; that is what
/// gives `days_of_stock` its interesting low end. Out-of-stock listings
/// (the simulation stopped selling them) have 0; untracked ones none.
pub(crate) fn inventory(
    cat: &Catalogue,
    stats: &ProductStats,
    end: i64,
    seed: u64,
) -> Vec<Option<u64>> {
    let mut rng = Rng::new(seed, stream::INVENTORY);
    cat.products
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p.is_parent {
                None
            } else if p.draft {
                p.tracked.then(|| rng.int(20, 200) as u64)
            } else if !p.tracked {
                None
            } else if p.avail_to < end {
                (!p.discontinued || rng.chance(0.5)).then_some(0)
            } else {
                let v = stats.velocity(i);
                if v == 0.0 {
                    Some(rng.int(3, 150) as u64)
                } else {
                    let cover = if p.discontinued {
                        rng.lognormal(8.0, 0.6)
                    } else {
                        rng.lognormal(40.0, 0.8)
                    };
                    Some(((v * cover).round() as u64).max(1))
                }
            }
        })
        .collect()
}

pub(crate) fn write_products(
    dir: &Path,
    cat: &Catalogue,
    inventory: &[Option<u64>],
) -> Result<(), DemoError> {
    let mut out = CsvOut::create(
        dir,
        "products.csv",
        &[
            "sku",
            "parent_sku",
            "asin",
            "title",
            "brand",
            "category",
            "tags",
            "seller_account",
            "marketplace",
            "price",
            "cost",
            "inventory",
            "created_at",
            "x_color",
        ],
    )?;
    for (p, inv) in cat.products.iter().zip(inventory) {
        let b = &mut out.buf;
        b.extend_from_slice(p.sku.as_bytes());
        b.push(b',');
        if p.parent != crate::catalogue::NO_PARENT {
            b.extend_from_slice(cat.products[p.parent as usize].sku.as_bytes());
        }
        b.push(b',');
        if let Some(a) = &p.asin {
            b.extend_from_slice(a);
        }
        b.push(b',');
        push_text(b, &p.title);
        b.push(b',');
        push_text(b, p.brand);
        b.push(b',');
        push_text(b, &p.category);
        b.push(b',');
        b.extend_from_slice(p.tags.as_bytes());
        b.push(b',');
        b.extend_from_slice(ACCOUNTS[p.account as usize].as_bytes());
        b.push(b',');
        b.extend_from_slice(MARKETS[p.market as usize].as_bytes());
        b.push(b',');
        if let Some(c) = p.price {
            push_money(b, c);
        }
        b.push(b',');
        if let Some(c) = p.cost {
            push_money(b, c);
        }
        b.push(b',');
        if let Some(n) = inv {
            push_u64(b, *n);
        }
        b.push(b',');
        push_timestamp(b, p.created);
        b.push(b',');
        if let Some(c) = p.colour {
            b.extend_from_slice(c.as_bytes());
        }
        out.end_row()?;
    }
    out.finish()
}

/// One row per live product and day for the `DAILY_DAYS` days before the
/// day of `end`. Sessions follow units through a per-product conversion
/// rate, BSR falls as smoothed sales rise (a power law, as Amazon's
/// ranks roughly do), reviews accrue from a share of the units sold.
/// Products without an ASIN have no Amazon metrics; some have a gap of a
/// few days (the report was not pulled).
pub(crate) fn write_daily(
    dir: &Path,
    cat: &Catalogue,
    stats: &ProductStats,
    first_day: i64,
    seed: u64,
) -> Result<usize, DemoError> {
    let mut rng = Rng::new(seed, stream::DAILY);
    let mut out = CsvOut::create(
        dir,
        "product_daily.csv",
        &["date", "sku", "sessions", "bsr", "reviews", "rating"],
    )?;
    let last_day = first_day + DAILY_DAYS as i64 - 1;
    let dates: Vec<Vec<u8>> = (0..DAILY_DAYS as i64)
        .map(|d| {
            let mut b = Vec::new();
            push_date(&mut b, first_day + d);
            b
        })
        .collect();
    let mut rows = 0;
    for (i, p) in cat.products.iter().enumerate() {
        if !p.sellable() {
            continue;
        }
        let start = p.created.div_euclid(DAY).max(first_day);
        if start > last_day {
            continue;
        }
        let gap = if rng.chance(0.06) {
            let g = rng.int(start, last_day);
            g..g + rng.int(1, 4)
        } else {
            0..0
        };
        let amazon = p.asin.is_some();
        let ranked = amazon && rng.chance(0.96);
        let conversion = rng.uniform(0.04, 0.18);
        let review_rate = rng.uniform(0.01, 0.04);
        let browse = rng.uniform(0.5, 4.0);
        let mut reviews = (stats.before[i] as f64 * review_rate).round() as u64;
        if p.created < (first_day - 30) * DAY {
            reviews += rng.int(0, 5) as u64;
        }
        let mean_rating = (4.95 - rng.normal().abs() * 0.55).clamp(2.5, 4.9);
        let mut rating = mean_rating;
        let units = &stats.daily[i * DAILY_DAYS..(i + 1) * DAILY_DAYS];
        let mut smooth = units.iter().sum::<u32>() as f64 / DAILY_DAYS as f64;
        let bsr_scale = DEPTS[p.dept as usize].bsr_scale * rng.lognormal(1.0, 0.3);
        for (d, &u) in units.iter().enumerate() {
            let day = first_day + d as i64;
            smooth = 0.7 * smooth + 0.3 * u as f64;
            reviews += rng.poisson(u as f64 * review_rate);
            rating = mean_rating + 0.8 * (rating - mean_rating) + 0.03 * rng.normal();
            if day < start || gap.contains(&day) {
                continue;
            }
            let sessions = (u as f64 / conversion * rng.uniform(0.8, 1.25)).round() as u64
                + rng.poisson(browse);
            let b = &mut out.buf;
            b.extend_from_slice(&dates[d]);
            b.push(b',');
            b.extend_from_slice(p.sku.as_bytes());
            b.push(b',');
            push_u64(b, sessions);
            b.push(b',');
            if ranked && !rng.chance(0.01) {
                let bsr = bsr_scale * (smooth + 0.05).powf(-0.9) * rng.lognormal(1.0, 0.12);
                push_u64(b, bsr.round().max(1.0) as u64);
            }
            b.push(b',');
            if amazon {
                push_u64(b, reviews);
                b.push(b',');
                if reviews > 0 {
                    let r = (rating.clamp(1.0, 5.0) * 10.0).round() as u64;
                    push_u64(b, r / 10);
                    b.push(b'.');
                    push_u64(b, r % 10);
                }
            } else {
                b.push(b',');
            }
            rows += 1;
            out.end_row()?;
        }
    }
    out.finish()?;
    Ok(rows)
}
