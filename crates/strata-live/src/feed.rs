//! The changes that bring a loaded dataset's rows into the engine one at a
//! time (a replay, a benchmark): an order as `AddLines`, a daily row as
//! `PutDaily`.

use rust_decimal::Decimal;
use strata_data::{Dataset, NO_CUSTOMER};

use crate::change::{Change, DailyRow, LineRow};

/// A `(unit_price, discount)` pair, both ≥ 0, for which
/// `quantity × unit_price − discount` is exactly `revenue`: the store keeps
/// only the revenue of a line, the engine takes its parts. The unit price
/// is the revenue per unit rounded up at the revenue's scale, and the
/// discount (less than one unit of that scale per item) makes up the rest;
/// a revenue below zero is all discount. `None` where no such pair fits in
/// a decimal.
pub fn price_parts(quantity: u32, revenue: Decimal) -> Option<(Decimal, Decimal)> {
    let (unit, discount) = if revenue.is_sign_negative() {
        (Decimal::ZERO, -revenue)
    } else {
        // Integers in units of 10^-scale: no rounding anywhere.
        let (m, q, scale) = (
            revenue.mantissa(),
            i128::from(quantity.max(1)),
            revenue.scale(),
        );
        let unit = (m + q - 1) / q;
        let discount = unit * q - m;
        (
            Decimal::try_from_i128_with_scale(unit, scale).ok()?,
            Decimal::try_from_i128_with_scale(discount, scale).ok()?,
        )
    };
    // What the engine will compute, checked the way it checks it.
    let back = Decimal::from(quantity)
        .checked_mul(unit)?
        .checked_sub(discount)?;
    (back == revenue).then_some((unit, discount))
}

/// The change that brings order `o` (with its `lines`, see
/// `Dataset::lines_by_order`) into the engine.
pub fn order_change(data: &Dataset, o: usize, lines: &[u32]) -> Change {
    let orders = &data.orders;
    let order_id = orders.order_id.get(o);
    let customer_id = match orders.customer[o] {
        NO_CUSTOMER => None,
        c => data
            .customers
            .customer_id
            .get(c as usize)
            .map(str::to_owned),
    };
    let mut out = Vec::with_capacity(lines.len());
    for &l in lines {
        let l = l as usize;
        out.push(LineRow {
            order_id: order_id.to_owned(),
            ordered_at: orders.ordered_at[o],
            customer_id: customer_id.clone(),
            sku: data
                .products
                .sku
                .get(data.lines.product[l] as usize)
                .unwrap_or_default()
                .to_owned(),
            quantity: data.lines.quantity[l],
            unit_price: data.lines.unit_price[l],
            discount: data.lines.discount[l],
            fees: data.lines.fees[l],
            status: orders.status.get(o).map(str::to_owned),
            marketplace: orders.marketplace.get(o).map(str::to_owned),
            seller_account: data.lines.seller_account.get(l).map(str::to_owned),
        });
    }
    Change::AddLines(out)
}

/// The change that brings daily row `r` into the engine.
pub fn daily_change(data: &Dataset, r: usize) -> Change {
    let daily = &data.daily;
    Change::PutDaily(DailyRow {
        sku: data
            .products
            .sku
            .get(daily.product[r] as usize)
            .unwrap_or_default()
            .to_owned(),
        date: daily.date[r],
        sessions: daily.sessions[r],
        bsr: daily.bsr[r],
        reviews: daily.reviews[r],
        rating: daily.rating[r],
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::price_parts;

    #[test]
    fn price_parts_give_back_the_exact_revenue() {
        let cases = [
            (1, "9.99"),
            (3, "9.98"),
            (3, "10"),
            (7, "0.01"),
            (2, "0"),
            (4, "-3.50"),
            (3, "1.0000000000000000000000000001"),
            (u32::MAX, "12345678901234567.89"),
        ];
        for (q, revenue) in cases {
            let revenue: Decimal = revenue.parse().unwrap();
            let Some((unit, discount)) = price_parts(q, revenue) else {
                panic!("no split of {revenue} for {q}");
            };
            assert!(!unit.is_sign_negative() && !discount.is_sign_negative());
            assert_eq!(
                Decimal::from(q) * unit - discount,
                revenue,
                "{q} × {revenue}"
            );
        }
        // An even split needs no discount; otherwise cents are rounded up.
        let even = price_parts(4, "10.00".parse().unwrap()).unwrap();
        assert_eq!(even, ("2.50".parse().unwrap(), Decimal::ZERO));
        let odd = price_parts(3, "9.98".parse().unwrap()).unwrap();
        assert_eq!(odd, ("3.33".parse().unwrap(), "0.01".parse().unwrap()));
        // 6 × a unit price at or above Decimal::MAX / 6 overflows.
        assert_eq!(price_parts(6, Decimal::MAX), None);
    }
}
