//! One test per propagation path and per kind of expiry, on small stores
//! built change by change, each event checked for instant and cause.

use rust_decimal::Decimal;
use strata_data::{Nanos, RuleSource, Tier, TierMetric, TierScheme};
use strata_lang::catalog::Kind;
use strata_live::{
    Cause, Change, CustomerRow, DailyRow, Event, LineRow, LiveEngine, LiveError, ProductRow,
    ProductValue,
};

const SEC: i64 = 1_000_000_000;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 86_400 * SEC;
/// 2024-06-30T12:00:00Z
const T0: Nanos = 1_719_748_800 * SEC;

fn engine() -> LiveEngine {
    LiveEngine::empty(T0, jiff::tz::TimeZone::UTC)
}

fn ok(live: &mut LiveEngine, change: Change) -> Vec<Event> {
    live.apply(change).unwrap()
}

fn product(live: &mut LiveEngine, sku: &str, account: &str, inventory: u64) {
    ok(
        live,
        Change::UpsertProduct(ProductRow {
            sku: sku.into(),
            seller_account: Some(account.into()),
            marketplace: Some("US".into()),
            price: Some(Decimal::TEN),
            cost: Some(Decimal::ONE),
            inventory: Some(inventory),
            ..ProductRow::default()
        }),
    );
}

fn customer(live: &mut LiveEngine, id: &str) {
    ok(
        live,
        Change::UpsertCustomer(CustomerRow {
            customer_id: id.into(),
            country: Some("US".into()),
            marketplace: Some("US".into()),
            ..CustomerRow::default()
        }),
    );
}

fn order(id: &str, at: Nanos, customer: Option<&str>, sku: &str, qty: u32, price: i64) -> Change {
    Change::AddLines(vec![LineRow {
        order_id: id.into(),
        ordered_at: at,
        customer_id: customer.map(Into::into),
        sku: sku.into(),
        quantity: qty,
        unit_price: Decimal::from(price),
        discount: Decimal::ZERO,
        fees: Decimal::ZERO,
        status: None,
        marketplace: Some("US".into()),
        seller_account: None,
    }])
}

/// [`order`] with one unit at `price` less `discount` (a discount above the
/// price makes the line worth less than nothing).
fn discounted(
    id: &str,
    at: Nanos,
    customer: Option<&str>,
    price: Decimal,
    discount: Decimal,
) -> Change {
    let mut change = order(id, at, customer, "S1", 1, 0);
    if let Change::AddLines(lines) = &mut change {
        lines[0].unit_price = price;
        lines[0].discount = discount;
    }
    change
}

/// A daily row of June 2024 (`T0` is on June 30) with these sessions and
/// reviews.
fn june(sku: &str, day: i8, sessions: Option<u64>, reviews: Option<u64>) -> Change {
    Change::PutDaily(DailyRow {
        sku: sku.into(),
        date: jiff::civil::date(2024, 6, day),
        sessions,
        bsr: None,
        reviews,
        rating: None,
    })
}

fn segment(live: &mut LiveEngine, name: &str, kind: Kind, rule: &str) -> Vec<Event> {
    ok(
        live,
        Change::PutSegment {
            name: name.into(),
            kind,
            rule: RuleSource::Text(rule.into()),
        },
    )
}

/// Events as `(at, segment, entity, enter)`, tier events left out.
fn members(events: &[Event]) -> Vec<(Nanos, String, String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Member {
                at,
                segment,
                entity,
                enter,
                ..
            } => Some((*at, segment.to_string(), entity.to_string(), *enter)),
            Event::Tier { .. } => None,
        })
        .collect()
}

/// Applies a change: the (segment, entity) pairs it evaluated, and its
/// membership events.
fn evaluations(live: &mut LiveEngine, change: Change) -> (u64, Vec<(Nanos, String, String, bool)>) {
    let before = live.evaluations();
    let events = ok(live, change);
    (live.evaluations() - before, members(&events))
}

/// Moves the clock: the (segment, entity) pairs its wakes evaluated, and
/// its membership events.
fn advance(live: &mut LiveEngine, to: Nanos) -> (u64, Vec<(Nanos, String, String, bool)>) {
    let before = live.evaluations();
    let events = live.advance_to(to).unwrap();
    (live.evaluations() - before, members(&events))
}

/// Moves the clock three times and checks the quiet-instant pattern: the
/// first wake looks at `sku` in `segment` once and finds it stays, the
/// second passes it by, the third looks once and takes it out at `out`.
fn looked_at_once_then_out(
    live: &mut LiveEngine,
    [first, passed, out]: [Nanos; 3],
    segment: &str,
    sku: &str,
) {
    assert_eq!(advance(live, first), (1, vec![]));
    assert_eq!(advance(live, passed), (0, vec![]));
    assert_eq!(advance(live, out), (1, vec![ev(out, segment, sku, false)]));
}

fn ev(at: Nanos, segment: &str, entity: &str, enter: bool) -> (Nanos, String, String, bool) {
    (at, segment.into(), entity.into(), enter)
}

#[test]
fn a_window_expires_one_nanosecond_after_its_boundary() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    segment(
        &mut live,
        "recent",
        Kind::Customer,
        "orders(since: -30d) >= 1",
    );
    let events = ok(&mut live, order("O1", T0, Some("C1"), "S1", 1, 5));
    assert_eq!(members(&events), [ev(T0, "recent", "C1", true)]);
    // At exactly now − 30 d = the order's instant the window still holds it.
    assert!(members(&live.advance_to(T0 + 30 * DAY).unwrap()).is_empty());
    let events = live.advance_to(T0 + 40 * DAY).unwrap();
    assert_eq!(
        members(&events),
        [ev(T0 + 30 * DAY + 1, "recent", "C1", false)]
    );
    assert_eq!(events[0].cause(), Cause::Time);
}

#[test]
fn a_relative_date_enters_at_its_exact_instant() {
    let mut live = engine();
    ok(
        &mut live,
        Change::UpsertCustomer(CustomerRow {
            customer_id: "C1".into(),
            created_at: Some(T0),
            ..CustomerRow::default()
        }),
    );
    segment(&mut live, "old", Kind::Customer, "created_at < -7d");
    segment(&mut live, "new", Kind::Customer, "created_at > -7d");
    segment(&mut live, "not-old", Kind::Customer, "created_at >= -7d");
    segment(
        &mut live,
        "one-week",
        Kind::Customer,
        "created_at BETWEEN -8d AND -7d",
    );
    let events = live.advance_to(T0 + 100 * DAY).unwrap();
    // `>` lets go where now − 7d reaches the instant, `>=` a nanosecond
    // later; `<` holds from that nanosecond.
    let mut got = members(&events);
    got.sort();
    assert_eq!(
        got,
        [
            ev(T0 + 7 * DAY, "new", "C1", false),
            ev(T0 + 7 * DAY, "one-week", "C1", true),
            ev(T0 + 7 * DAY + 1, "not-old", "C1", false),
            ev(T0 + 7 * DAY + 1, "old", "C1", true),
            ev(T0 + 8 * DAY + 1, "one-week", "C1", false),
        ]
    );
}

#[test]
fn an_order_dated_in_the_future_counts_when_the_clock_reaches_it() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    segment(&mut live, "buyers", Kind::Customer, "number_of_orders >= 1");
    assert!(
        members(&ok(
            &mut live,
            order("O1", T0 + 3_600 * SEC, Some("C1"), "S1", 1, 5)
        ))
        .is_empty()
    );
    let events = live.advance_to(T0 + DAY).unwrap();
    assert_eq!(
        members(&events),
        [ev(T0 + 3_600 * SEC, "buyers", "C1", true)]
    );
}

#[test]
fn a_daily_row_ages_out_of_the_30_day_window_at_midnight() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    segment(&mut live, "visited", Kind::Product, "sessions_30d > 10");
    // today is 2024-06-30: a row of 2024-06-01 is the window's first day.
    let events = ok(&mut live, june("S1", 1, Some(11), None));
    assert_eq!(members(&events), [ev(T0, "visited", "S1", true)]);
    let events = live.advance_to(T0 + 5 * DAY).unwrap();
    let midnight = T0 + DAY / 2; // 2024-07-01T00:00:00Z
    assert_eq!(members(&events), [ev(midnight, "visited", "S1", false)]);
}

#[test]
fn a_product_entering_a_segment_rechecks_its_buyers() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    product(&mut live, "S2", "a", 10);
    customer(&mut live, "C1");
    customer(&mut live, "C2");
    ok(&mut live, order("O1", T0 - DAY, Some("C1"), "S1", 1, 5));
    ok(&mut live, order("O2", T0 - DAY, Some("C2"), "S2", 1, 5));
    segment(&mut live, "low", Kind::Product, "inventory < 5");
    segment(
        &mut live,
        "bought-low",
        Kind::Customer,
        "purchased(in_segment: 'low')",
    );
    let events = ok(
        &mut live,
        Change::SetProductValue {
            sku: "S1".into(),
            value: ProductValue::Inventory(Some(3)),
        },
    );
    assert_eq!(
        members(&events),
        [ev(T0, "low", "S1", true), ev(T0, "bought-low", "C1", true)]
    );
    assert!(
        events
            .iter()
            .all(|e| e.cause() == Cause::Change(live.last_change()))
    );
}

/// A store with product S1, customer C1 (US), `spenders` and
/// `us-spenders` on it.
fn spenders() -> LiveEngine {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    segment(&mut live, "spenders", Kind::Customer, "amount_spent > 100");
    segment(
        &mut live,
        "us-spenders",
        Kind::Customer,
        "in_segment('spenders') AND country = 'US'",
    );
    live
}

/// A product entering a segment can only add to what its buyers bought
/// there: buyers already in a segment on `purchased(in_segment: ..)` are
/// not looked at; leaving can only take away, so non-members are not.
#[test]
fn a_product_flip_looks_only_at_buyers_it_can_move() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    product(&mut live, "S2", "a", 10);
    customer(&mut live, "C1");
    customer(&mut live, "C2");
    ok(
        &mut live,
        Change::UpsertCustomer(CustomerRow {
            customer_id: "C3".into(),
            country: Some("FR".into()),
            ..CustomerRow::default()
        }),
    );
    for (o, c, sku) in [
        ("O1", "C1", "S1"),
        ("O2", "C1", "S2"),
        ("O3", "C2", "S2"),
        ("O4", "C3", "S2"),
    ] {
        ok(&mut live, order(o, T0 - DAY, Some(c), sku, 1, 5));
    }
    segment(&mut live, "low", Kind::Product, "inventory < 5");
    segment(
        &mut live,
        "bought",
        Kind::Customer,
        "purchased(in_segment: 'low')",
    );
    segment(
        &mut live,
        "us-bought",
        Kind::Customer,
        "purchased(in_segment: 'low') AND country = 'US'",
    );
    let inventory = |sku: &str, n| Change::SetProductValue {
        sku: sku.into(),
        value: ProductValue::Inventory(Some(n)),
    };
    assert_eq!(
        evaluations(&mut live, inventory("S1", 3)),
        (
            3,
            vec![
                ev(T0, "low", "S1", true),
                ev(T0, "bought", "C1", true),
                ev(T0, "us-bought", "C1", true)
            ]
        )
    );
    // S2's buyers C1, C2, C3: C1 is a member of both already.
    assert_eq!(
        evaluations(&mut live, inventory("S2", 3)),
        (
            5,
            vec![
                ev(T0, "low", "S2", true),
                ev(T0, "bought", "C2", true),
                ev(T0, "bought", "C3", true),
                ev(T0, "us-bought", "C2", true)
            ]
        )
    );
    // C1 still bought S2 there.
    assert_eq!(
        evaluations(&mut live, inventory("S1", 10)),
        (3, vec![ev(T0, "low", "S1", false)])
    );
    // C3 was never a member of `us-bought`: S2 leaving cannot make it one.
    assert_eq!(
        evaluations(&mut live, inventory("S2", 10)),
        (
            6,
            vec![
                ev(T0, "low", "S2", false),
                ev(T0, "bought", "C1", false),
                ev(T0, "bought", "C2", false),
                ev(T0, "bought", "C3", false),
                ev(T0, "us-bought", "C1", false),
                ev(T0, "us-bought", "C2", false)
            ]
        )
    );
}

/// `in_segment` likewise: an entity entering a segment is not looked at
/// again in a segment that can only gain it and has it already.
#[test]
fn an_entry_passes_by_members_of_a_segment_it_can_only_add_to() {
    let mut live = spenders();
    segment(
        &mut live,
        "spenders-or-us",
        Kind::Customer,
        "in_segment('spenders') OR country = 'US'",
    );
    assert_eq!(
        evaluations(&mut live, order("O1", T0, Some("C1"), "S1", 20, 10)),
        (
            2,
            vec![
                ev(T0, "spenders", "C1", true),
                ev(T0, "us-spenders", "C1", true)
            ]
        )
    );
}

#[test]
fn a_segment_change_reaches_segments_that_use_it() {
    let mut live = spenders();
    let events = ok(&mut live, order("O1", T0, Some("C1"), "S1", 20, 10));
    assert_eq!(
        members(&events),
        [
            ev(T0, "spenders", "C1", true),
            ev(T0, "us-spenders", "C1", true)
        ]
    );
    // Cancelling the order takes both back.
    let events = ok(
        &mut live,
        Change::SetOrderStatus {
            order_id: "O1".into(),
            status: "Cancelled".into(),
        },
    );
    assert_eq!(
        members(&events),
        [
            ev(T0, "spenders", "C1", false),
            ev(T0, "us-spenders", "C1", false)
        ]
    );
    // And a segment in use cannot be deleted.
    match live.apply(Change::DeleteSegment("spenders".into())) {
        Err(LiveError::InUse { users, .. }) => assert_eq!(users, ["us-spenders"]),
        other => panic!("expected InUse, got {other:?}"),
    }
}

#[test]
fn revenue_share_moves_with_the_group_and_only_the_group() {
    let mut live = engine();
    product(&mut live, "A", "acct1", 10);
    product(&mut live, "B", "acct1", 10);
    product(&mut live, "X", "acct2", 10);
    segment(&mut live, "big", Kind::Product, "revenue_share > 50");
    let events = ok(&mut live, order("O1", T0, None, "A", 10, 10));
    assert_eq!(members(&events), [ev(T0, "big", "A", true)]);
    ok(&mut live, order("O2", T0, None, "X", 1, 10));
    // B's sale moves A's share (100 of 300) without any line of A's.
    let before = live.evaluations();
    let events = ok(&mut live, order("O3", T0, None, "B", 20, 10));
    assert_eq!(
        members(&events),
        [ev(T0, "big", "A", false), ev(T0, "big", "B", true)]
    );
    // Only the group's products were looked at, not X.
    assert_eq!(live.evaluations() - before, 2);
    // When the group total falls because another product's line ages out,
    // a product whose own lines stay can cross the threshold, at the exact
    // instant.
    let mut live = engine();
    product(&mut live, "A", "acct1", 10);
    product(&mut live, "B", "acct1", 10);
    segment(&mut live, "big", Kind::Product, "revenue_share > 50");
    ok(&mut live, order("O1", T0, None, "A", 10, 10));
    live.advance_to(T0 + DAY).unwrap();
    ok(&mut live, order("O2", T0 + DAY, None, "B", 6, 10));
    live.advance_to(T0 + 2 * DAY).unwrap();
    ok(&mut live, order("O3", T0 + 2 * DAY, None, "A", 5, 10));
    // A 150 of 210; then O1 ages out: A 50, B 60 of 110.
    let events = live.advance_to(T0 + 31 * DAY).unwrap();
    assert_eq!(
        members(&events),
        [
            ev(T0 + 30 * DAY + 1, "big", "A", false),
            ev(T0 + 30 * DAY + 1, "big", "B", true)
        ]
    );
}

#[test]
fn a_products_own_line_leaving_looks_only_at_members_of_a_share_above_a_threshold() {
    let mut live = engine();
    for sku in ["A", "B", "C"] {
        product(&mut live, sku, "acct1", 10);
    }
    // A 100, B 900, then C 10 (of 1010): A's line at T0, B's a day later,
    // C's two days later.
    ok(&mut live, order("O1", T0, None, "A", 10, 10));
    live.advance_to(T0 + DAY).unwrap();
    ok(&mut live, order("O2", T0 + DAY, None, "B", 90, 10));
    live.advance_to(T0 + 2 * DAY).unwrap();
    ok(&mut live, order("O3", T0 + 2 * DAY, None, "C", 10, 1));
    segment(&mut live, "big", Kind::Product, "revenue_share > 50");
    // A's line leaving lowers A's share: A, outside, is not looked at, and
    // the group's total (1010 to 910) carries nobody over 50 %.
    let (n, events) = advance(&mut live, T0 + 30 * DAY + 2);
    assert_eq!((n, events), (0, vec![]));
    // B's own line leaving takes B out: B is looked at for it. The total
    // falling from 910 to 10 carries C in (as a group's share candidate),
    // not B out: B's own wake is what finds it.
    let (n, events) = advance(&mut live, T0 + 31 * DAY + 2);
    assert_eq!(n, 2);
    assert_eq!(
        events,
        [
            ev(T0 + 31 * DAY + 1, "big", "B", false),
            ev(T0 + 31 * DAY + 1, "big", "C", true)
        ]
    );
}

#[test]
fn a_change_re_evaluates_only_segments_that_read_it() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    for i in 0..10 {
        customer(&mut live, &format!("C{i}"));
    }
    segment(&mut live, "us", Kind::Customer, "country = 'US'");
    segment(&mut live, "vip", Kind::Customer, "tags CONTAINS 'vip'");
    segment(&mut live, "buyers", Kind::Customer, "number_of_orders >= 1");
    segment(&mut live, "stocked", Kind::Product, "inventory > 0");
    let before = live.evaluations();
    ok(&mut live, order("O1", T0, Some("C3"), "S1", 1, 5));
    // One customer × the one order-reading segment; the product segment
    // reads inventory, which a sale does not change.
    assert_eq!(live.evaluations() - before, 1);
}

#[test]
fn a_cost_change_moves_profit_tiers() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    ok(
        &mut live,
        Change::PutTierScheme(TierScheme {
            marketplace: None,
            metric: TierMetric::Profit,
            tiers: vec![Tier {
                name: "Profitable".into(),
                threshold: Decimal::from(50),
            }],
        }),
    );
    // Revenue 100, cost 10 × 1: profit 90.
    let events = ok(&mut live, order("O1", T0, Some("C1"), "S1", 10, 10));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Tier { to: Some(t), .. } if &**t == "Profitable"))
    );
    assert_eq!(live.tier("C1"), Some("Profitable"));
    // Cost 6: profit 40.
    let events = ok(
        &mut live,
        Change::SetProductValue {
            sku: "S1".into(),
            value: ProductValue::Cost(Some(Decimal::from(6))),
        },
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Tier { from: Some(f), to: None, .. } if &**f == "Profitable")
        ),
        "{events:?}"
    );
    assert_eq!(live.tier("C1"), None);
    assert_eq!(live.tier_distribution().get(&None), Some(&1));
}

#[test]
fn deleting_a_customer_keeps_product_sales_and_reports_exits() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    ok(&mut live, order("O1", T0, Some("C1"), "S1", 2, 10));
    segment(&mut live, "buyers", Kind::Customer, "number_of_orders >= 1");
    segment(
        &mut live,
        "sold",
        Kind::Product,
        "units_sold = 2 AND customers_30d = 1",
    );
    let events = ok(&mut live, Change::DeleteCustomer("C1".into()));
    assert_eq!(
        members(&events),
        [ev(T0, "sold", "S1", false), ev(T0, "buyers", "C1", false)]
    );
    assert_eq!(live.count("sold"), Some(0));
    segment(&mut live, "sold2", Kind::Product, "units_sold = 2");
    assert_eq!(live.count("sold2"), Some(1));
}

#[test]
fn a_refused_change_changes_nothing() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    segment(&mut live, "buyers", Kind::Customer, "number_of_orders >= 1");
    let seq = live.last_change();
    let bad = Change::AddLines(vec![
        match order("O1", T0, Some("C1"), "S1", 1, 5) {
            Change::AddLines(mut l) => l.remove(0),
            _ => unreachable!(),
        },
        match order("O2", T0, Some("C1"), "NOPE", 1, 5) {
            Change::AddLines(mut l) => l.remove(0),
            _ => unreachable!(),
        },
    ]);
    let err = live.apply(bad).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("NOPE"), "{err}");
    assert_eq!(live.last_change(), seq);
    assert_eq!(live.count("buyers"), Some(0));
    let err = live
        .apply(Change::PutSegment {
            name: "x".into(),
            kind: Kind::Customer,
            rule: RuleSource::Text("in_segment('nope')".into()),
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown customer segment 'nope'"), "{err}");
    // A refused rule leaves no gap in the change numbers either.
    assert_eq!(live.last_change(), seq);
    assert!(live.advance_to(T0 - 1).is_err());
}

#[test]
fn count_history_has_a_value_for_every_day() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    customer(&mut live, "C2");
    segment(
        &mut live,
        "recent",
        Kind::Customer,
        "orders(since: -2d) >= 1",
    );
    ok(&mut live, order("O1", T0, Some("C1"), "S1", 1, 5));
    live.advance_to(T0 + DAY).unwrap();
    ok(&mut live, order("O2", T0 + DAY, Some("C2"), "S1", 1, 5));
    live.advance_to(T0 + 10 * DAY).unwrap();
    let day = |d: i8| {
        jiff::civil::date(2024, 6, 29)
            .checked_add(jiff::Span::new().days(d))
            .unwrap()
    };
    let history = live.count_history("recent", day(0), day(6)).unwrap();
    let counts: Vec<u64> = history.iter().map(|(_, c)| *c).collect();
    // 06-29: 0; 06-30: 1; 07-01: 2; 07-02: C1 leaves at 12:00 → 1;
    // 07-03: C2 leaves → 0.
    assert_eq!(counts, [0, 1, 2, 1, 0, 0, 0]);
}

#[test]
fn money_that_would_round_is_refused() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    let mut change = order("O1", T0, None, "S1", 3, 0);
    if let Change::AddLines(lines) = &mut change {
        lines[0].unit_price = "3.3266666666666666666666666667".parse().unwrap();
    }
    let err = live.apply(change).unwrap_err().to_string();
    assert!(err.contains("exact range"), "{err}");
}

#[test]
fn a_load_error_names_the_broken_segment_not_the_one_waiting_on_it() {
    let mut data = strata_data::Dataset::default();
    for (name, rule) in [("x", "in_segment('y')"), ("y", "amount_spen > 15")] {
        data.segments.push(strata_data::SavedSegment {
            name: name.into(),
            kind: strata_data::SegmentKind::Customer,
            rule: RuleSource::Text(rule.into()),
            description: None,
        });
    }
    let err = LiveEngine::new(&data, "2024-06-30T12:00:00Z".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'y'") && err.contains("amount_spen"), "{err}");
}

#[test]
fn a_strict_bound_lets_go_at_the_boundary_itself() {
    let mut live = engine();
    ok(
        &mut live,
        Change::UpsertCustomer(CustomerRow {
            customer_id: "C1".into(),
            created_at: Some(T0),
            ..CustomerRow::default()
        }),
    );
    segment(&mut live, "new", Kind::Customer, "created_at > -7d");
    let events = live.advance_to(T0 + 100 * DAY).unwrap();
    assert_eq!(members(&events), [ev(T0 + 7 * DAY, "new", "C1", false)]);
}

#[test]
fn a_product_flip_rechecks_only_buyers_within_the_rules_bounds() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    customer(&mut live, "C2");
    ok(
        &mut live,
        order("O1", T0 - 29 * DAY - DAY / 2, Some("C1"), "S1", 1, 5),
    );
    ok(
        &mut live,
        order("O2", T0 - 40 * DAY, Some("C2"), "S1", 1, 5),
    );
    segment(&mut live, "low", Kind::Product, "inventory < 5");
    segment(
        &mut live,
        "recent-low",
        Kind::Customer,
        "purchased(in_segment: 'low', since: -30d)",
    );
    let before = live.evaluations();
    let events = ok(
        &mut live,
        Change::SetProductValue {
            sku: "S1".into(),
            value: ProductValue::Inventory(Some(3)),
        },
    );
    assert_eq!(
        members(&events),
        [ev(T0, "low", "S1", true), ev(T0, "recent-low", "C1", true)]
    );
    // S1 in `low`, and C1 only: C2's line is older than the rule looks.
    assert_eq!(live.evaluations() - before, 2);
}

#[test]
fn a_rule_that_only_rises_with_sales_skips_its_members_until_a_line_can_lower_it() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    customer(&mut live, "C2");
    segment(&mut live, "spenders", Kind::Customer, "amount_spent > 4");
    segment(
        &mut live,
        "quiet",
        Kind::Customer,
        "NOT purchased(since: -7d)",
    );
    // C1's first order: both rules look at C1 (it enters one, leaves one).
    let (n, events) = evaluations(&mut live, order("O1", T0, Some("C1"), "S1", 1, 5));
    assert_eq!(n, 2);
    assert_eq!(events.len(), 2);
    // Another sale cannot take C1 out of `spenders` or into `quiet`.
    let (n, events) = evaluations(&mut live, order("O2", T0, Some("C1"), "S1", 1, 5));
    assert_eq!((n, events), (0, vec![]));
    // C2 is outside `spenders`, and its total after this sale (1.00) keeps
    // it there: that is read off its record, not evaluated. It is in
    // `quiet`, which a sale can make it leave.
    let (n, events) = evaluations(&mut live, order("O3", T0, Some("C2"), "S1", 1, 1));
    assert_eq!(n, 1);
    assert_eq!(events, [ev(T0, "quiet", "C2", false)]);
    // A line worth less than nothing can lower `amount_spent`: C1 (10.00)
    // is looked at again and leaves at 0.50.
    let refund_like = discounted("O4", T0, Some("C1"), Decimal::ONE, Decimal::new(1050, 2));
    let (n, events) = evaluations(&mut live, refund_like);
    assert_eq!(n, 1);
    assert_eq!(events, [ev(T0, "spenders", "C1", false)]);
}

#[test]
fn an_ageing_line_skips_entities_on_the_side_it_cannot_leave() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    product(&mut live, "S2", "a", 10);
    // S1 sells 3 units, S2 one: only S1 is in `busy`; both are in `slow`.
    ok(&mut live, order("O1", T0, None, "S1", 3, 5));
    ok(&mut live, order("O2", T0, None, "S2", 1, 5));
    segment(&mut live, "busy", Kind::Product, "units_7d >= 2");
    segment(&mut live, "slow", Kind::Product, "units_7d < 5");
    let before = live.evaluations();
    let events = live.advance_to(T0 + 8 * DAY).unwrap();
    // Ageing lines can take S1 out of `busy` but put nobody in it, and can
    // put nobody out of `slow`: S1 in `busy` is the one pair looked at.
    assert_eq!(live.evaluations() - before, 1);
    assert_eq!(
        members(&events),
        [ev(T0 + 7 * DAY + 1, "busy", "S1", false)]
    );
}

#[test]
fn a_negative_line_leaving_a_window_is_looked_at_from_both_sides() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    segment(&mut live, "earners", Kind::Product, "sales_7d > 10");
    // −15.00 at T0 (a discount above the price), then 20.00 a day later:
    // 5.00 in all, so S1 is out; when the negative line leaves the window
    // the sum grows to 20.00 and S1 comes in, though lines leaving a
    // window usually only lower a sum.
    let negative = discounted("O1", T0, None, Decimal::from(5), Decimal::from(20));
    ok(&mut live, negative);
    live.advance_to(T0 + DAY).unwrap();
    let events = ok(&mut live, order("O2", T0 + DAY, None, "S1", 1, 20));
    assert!(members(&events).is_empty(), "{events:?}");
    let events = live.advance_to(T0 + 8 * DAY).unwrap();
    assert_eq!(
        members(&events),
        [ev(T0 + 7 * DAY + 1, "earners", "S1", true)]
    );
}

#[test]
fn an_operand_shared_by_segments_is_read_afresh_at_every_change_and_instant() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    customer(&mut live, "C1");
    // Both rules read the same 30-day sum: it is computed once per
    // settle, and must not be carried over to the next one.
    segment(
        &mut live,
        "over_10",
        Kind::Customer,
        "spent(since: -30d) > 10",
    );
    segment(
        &mut live,
        "over_30",
        Kind::Customer,
        "spent(since: -30d) > 30",
    );
    let events = ok(&mut live, order("O1", T0, Some("C1"), "S1", 1, 20));
    assert_eq!(members(&events), [ev(T0, "over_10", "C1", true)]);
    live.advance_to(T0 + DAY).unwrap();
    let events = ok(&mut live, order("O2", T0 + DAY, Some("C1"), "S1", 1, 20));
    assert_eq!(members(&events), [ev(T0 + DAY, "over_30", "C1", true)]);
    let events = live.advance_to(T0 + 40 * DAY).unwrap();
    assert_eq!(
        members(&events),
        [
            ev(T0 + 30 * DAY + 1, "over_30", "C1", false),
            ev(T0 + 31 * DAY + 1, "over_10", "C1", false),
        ]
    );
}

#[test]
fn events_of_one_instant_come_segment_by_segment_in_reference_order() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    for id in ["C1", "C2"] {
        customer(&mut live, id);
    }
    // `late` reads `early`, so it settles after it although it was put
    // first under a name that sorts before it.
    segment(&mut live, "early", Kind::Customer, "number_of_orders >= 1");
    segment(&mut live, "a_late", Kind::Customer, "in_segment('early')");
    segment(&mut live, "b_spent", Kind::Customer, "amount_spent > 0");
    let change = Change::AddLines(
        ["C2", "C1"]
            .into_iter()
            .enumerate()
            .map(
                |(i, c)| match order(&format!("O{i}"), T0, Some(c), "S1", 1, 5) {
                    Change::AddLines(mut lines) => lines.remove(0),
                    _ => unreachable!(),
                },
            )
            .collect(),
    );
    let events = ok(&mut live, change);
    assert_eq!(
        members(&events),
        [
            ev(T0, "early", "C1", true),
            ev(T0, "early", "C2", true),
            ev(T0, "b_spent", "C1", true),
            ev(T0, "b_spent", "C2", true),
            ev(T0, "a_late", "C1", true),
            ev(T0, "a_late", "C2", true),
        ]
    );
}

#[test]
fn a_line_is_not_looked_at_by_rules_it_cannot_move_for_its_entity() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    ok(
        &mut live,
        Change::UpsertProduct(ProductRow {
            sku: "S2".into(),
            brand: Some("Acme".into()),
            price: Some(Decimal::TEN),
            ..ProductRow::default()
        }),
    );
    customer(&mut live, "C1");
    ok(
        &mut live,
        Change::UpsertCustomer(CustomerRow {
            customer_id: "F1".into(),
            country: Some("FR".into()),
            ..CustomerRow::default()
        }),
    );
    segment(
        &mut live,
        "acme",
        Kind::Customer,
        "units(brand: 'Acme', since: -30d) >= 2",
    );
    segment(
        &mut live,
        "us",
        Kind::Customer,
        "country = 'US' AND amount_spent > 100",
    );
    segment(
        &mut live,
        "uk",
        Kind::Customer,
        "purchased(marketplace: 'UK')",
    );
    // Not Acme, not the UK, and C1's total after the line (5) is not over
    // 100: no rule can move for C1.
    let (n, events) = evaluations(&mut live, order("O1", T0, Some("C1"), "S1", 1, 5));
    assert_eq!((n, events), (0, vec![]));
    // F1 is not in the US, and the line is neither Acme nor from the UK:
    // no rule can move.
    let (n, events) = evaluations(&mut live, order("O2", T0, Some("F1"), "S1", 5, 50));
    assert_eq!((n, events), (0, vec![]));
    // Two Acme units: `acme` looks, and C1 enters (`us` does not: 25
    // spent).
    let (n, events) = evaluations(&mut live, order("O3", T0, Some("C1"), "S2", 2, 10));
    assert_eq!((n, events), (1, vec![ev(T0, "acme", "C1", true)]));
    // An Acme line older than the window cannot move `acme` either; it
    // takes C1 over 100 spent.
    let (n, events) = evaluations(
        &mut live,
        order("O4", T0 - 40 * DAY, Some("C1"), "S2", 9, 10),
    );
    assert_eq!((n, events), (1, vec![ev(T0, "us", "C1", true)]));
    // The window's count is still 2 (the old line is outside it); what was
    // skipped agrees with a full look.
    assert_eq!(live.count("acme"), Some(1));
    assert_eq!(live.count("uk"), Some(0));
}

/// One line of [`order`].
fn line_of(change: Change) -> LineRow {
    match change {
        Change::AddLines(mut lines) => lines.remove(0),
        _ => unreachable!(),
    }
}

#[test]
fn the_lines_of_one_change_find_the_orders_it_creates_however_long_it_is() {
    for n in [3usize, 16, 17, 40] {
        let mut live = engine();
        product(&mut live, "S1", "a", 10);
        customer(&mut live, "C1");
        segment(&mut live, "buyers", Kind::Customer, "number_of_orders >= 2");
        // Lines of two new orders, interleaved, then of an existing one.
        ok(&mut live, order("OLD", T0, Some("C1"), "S1", 1, 5));
        let mut lines: Vec<LineRow> = (0..n)
            .map(|i| {
                let id = if i % 2 == 0 { "A" } else { "B" };
                line_of(order(id, T0, Some("C1"), "S1", 1, 5))
            })
            .collect();
        lines.push(line_of(order("OLD", T0, Some("C1"), "S1", 1, 5)));
        ok(&mut live, Change::AddLines(lines.clone()));
        assert_eq!(
            live.order_state("A"),
            Some(("shipped", n.div_ceil(2))),
            "{n}"
        );
        assert_eq!(live.order_state("B"), Some(("shipped", n / 2)), "{n}");
        assert_eq!(live.order_state("OLD"), Some(("shipped", 2)), "{n}");
        assert_eq!(live.count("buyers"), Some(1));
        // A late line of `A` naming another customer is refused, wherever
        // it falls, and nothing of the change is kept.
        let seq = live.last_change();
        lines[n - 1 - (n - 1) % 2].customer_id = None;
        let err = live.apply(Change::AddLines(lines)).unwrap_err().to_string();
        assert!(err.contains("disagree"), "{n}: {err}");
        assert_eq!(live.last_change(), seq);
        assert_eq!(
            live.order_state("A"),
            Some(("shipped", n.div_ceil(2))),
            "{n}"
        );
    }
}

#[test]
fn a_product_well_above_its_threshold_is_not_looked_at_as_lines_leave_until_it_can_fall() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    for i in 0..5 {
        live.advance_to(T0 + i * HOUR).unwrap();
        ok(
            &mut live,
            order(&format!("O{i}"), T0 + i * HOUR, None, "S1", 1, 5),
        );
    }
    segment(&mut live, "busy", Kind::Product, "units_7d >= 3");
    assert_eq!(live.count("busy"), Some(1));
    let leaves = |i: i64| T0 + i * HOUR + 7 * DAY + 1;
    // The first line leaving is looked at (5 → 4 units), and finds that
    // S1 cannot fall below 3 before the third line leaves. The second
    // leaving (4 → 3) is passed by; the third (3 → 2) takes S1 out, at
    // its exact instant.
    let instants = [leaves(0), leaves(1), leaves(2)];
    looked_at_once_then_out(&mut live, instants, "busy", "S1");
}

#[test]
fn a_conversion_rate_is_looked_at_again_only_where_a_leaving_line_can_turn_it() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    ok(&mut live, june("S1", 25, Some(100), None));
    let at = |i: i64| T0 - 20 * DAY + i * HOUR;
    for i in 0..10 {
        ok(&mut live, order(&format!("O{i}"), at(i), None, "S1", 1, 5));
    }
    // 10 units over 100 sessions: 10 %, falling a point per line leaving.
    segment(
        &mut live,
        "converts",
        Kind::Product,
        "conversion_rate_30d > 5",
    );
    assert_eq!(live.count("converts"), Some(1));
    let leaves = |i: i64| at(i) + 30 * DAY + 1;
    // The first line leaving is looked at (9 %), and finds that the rate
    // cannot reach 5 % before the fifth line leaves, which (6 % → 5 %)
    // takes S1 out at its exact instant.
    let instants = [leaves(0), leaves(3), leaves(4)];
    looked_at_once_then_out(&mut live, instants, "converts", "S1");
}

#[test]
fn a_review_count_is_looked_at_again_only_on_the_day_it_can_fall_below_its_threshold() {
    let mut live = engine();
    product(&mut live, "S1", "a", 10);
    // today is 2024-06-30: the count 30 days back moves on 07-01, 07-05,
    // 07-10, 07-20 and 07-28 as the rows of 30 days before pass.
    for (day, reviews) in [(1, 1), (5, 2), (10, 3), (20, 25), (28, 31)] {
        ok(&mut live, june("S1", day, None, Some(reviews)));
    }
    segment(&mut live, "reviewed", Kind::Product, "new_reviews_30d > 20");
    assert_eq!(live.count("reviewed"), Some(1));
    let midnight = |day: i8| {
        strata_engine::clock::timestamp_nanos(
            jiff::civil::date(2024, 7, day)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp(),
        )
    };
    // 07-01 (31 − 1 = 30) is looked at, and finds the count stays above 20
    // until 07-20 (31 − 25 = 6).
    let instants = [midnight(1), midnight(19), midnight(20)];
    looked_at_once_then_out(&mut live, instants, "reviewed", "S1");
}

/// Statuses, marketplaces and seller accounts are kept once per distinct
/// text: each order and line must still read back its own, through a
/// filter and through the dataset the engine writes out.
#[test]
fn repeated_texts_of_orders_and_lines_read_back_as_given() {
    let mut live = engine();
    product(&mut live, "S1", "acct", 5);
    customer(&mut live, "c1");
    let row = |id: &str, market: &str, account: Option<&str>, status: Option<&str>| {
        let mut line = line_of(order(id, T0, Some("c1"), "S1", 1, 10));
        line.marketplace = Some(market.into());
        line.seller_account = account.map(Into::into);
        line.status = status.map(Into::into);
        line
    };
    segment(
        &mut live,
        "de",
        Kind::Customer,
        "purchased(marketplace: 'DE')",
    );
    segment(
        &mut live,
        "uk",
        Kind::Customer,
        "purchased(marketplace: 'UK')",
    );
    ok(
        &mut live,
        Change::AddLines(vec![
            row("o1", "US", Some("a1"), None),
            row("o2", "DE", None, Some("cancelled")),
            row("o3", "UK", Some("a2"), Some("delivered")),
            row("o3", "UK", Some("a1"), Some("delivered")),
        ]),
    );
    // o2 is cancelled (and an order with no status is shipped).
    assert_eq!(live.count("de"), Some(0));
    assert_eq!(live.count("uk"), Some(1));
    assert_eq!(live.order_state("o2"), Some(("cancelled", 1)));
    assert_eq!(live.order_state("o3"), Some(("delivered", 2)));
    let data = live.to_dataset();
    let orders: Vec<_> = (0..data.orders.len())
        .map(|o| {
            (
                data.orders.order_id.get(o),
                data.orders.status.get(o),
                data.orders.marketplace.get(o),
            )
        })
        .collect();
    assert_eq!(
        orders,
        [
            ("o1", Some("shipped"), Some("US")),
            ("o2", Some("cancelled"), Some("DE")),
            ("o3", Some("delivered"), Some("UK")),
        ]
    );
    let accounts: Vec<_> = (0..data.lines.len())
        .map(|l| data.lines.seller_account.get(l))
        .collect();
    assert_eq!(accounts, [Some("a1"), None, Some("a2"), Some("a1")]);
}

/// A line only raises a product's velocity, so `days_of_stock <` can only
/// turn true under it: a product with no velocity yet (a null) is looked
/// at and enters, a member is passed by, and a rule the other way round is
/// looked at every time.
#[test]
fn a_line_looks_at_stock_running_low_only_where_it_can_bring_a_product_in() {
    let mut live = engine();
    product(&mut live, "S1", "acct", 10);
    segment(&mut live, "low", Kind::Product, "days_of_stock < 7");
    // 20 units today: velocity 0.5 × 20/7 + 0.3 × 20/14 + 0.2 × 20/30,
    // about 1.99 a day, so 10 in stock last about 5 days.
    let (n, events) = evaluations(&mut live, order("o1", T0, None, "S1", 20, 5));
    assert_eq!((n, events), (1, vec![ev(T0, "low", "S1", true)]));
    assert_eq!(
        evaluations(&mut live, order("o2", T0, None, "S1", 1, 5)),
        (0, vec![])
    );
    segment(&mut live, "plenty", Kind::Product, "days_of_stock >= 2");
    let (n, events) = evaluations(&mut live, order("o3", T0, None, "S1", 40, 5));
    assert_eq!((n, events), (1, vec![ev(T0, "plenty", "S1", false)]));
}

/// A customer's first order date moves only with their first order: a
/// line of a later order is not looked at by a rule on it, a first one is.
#[test]
fn a_later_order_is_not_looked_at_by_rules_on_the_first_order_date() {
    let mut live = engine();
    product(&mut live, "S1", "acct", 10);
    customer(&mut live, "c1");
    customer(&mut live, "c2");
    ok(
        &mut live,
        order("o1", T0 - 40 * DAY, Some("c1"), "S1", 1, 5),
    );
    segment(&mut live, "new", Kind::Customer, "first_order_date >= -30d");
    assert_eq!(
        evaluations(&mut live, order("o2", T0, Some("c1"), "S1", 1, 5)),
        (0, vec![])
    );
    let (n, events) = evaluations(&mut live, order("o3", T0, Some("c2"), "S1", 1, 5));
    assert_eq!((n, events), (1, vec![ev(T0, "new", "c2", true)]));
}

/// A product far below a threshold it can only rise to is looked at again
/// only once its lines could have reached it: `units_30d >= 10` takes ten
/// units, so after the evaluation the segment's creation made (no units)
/// nine lines of one unit pass it by, and the tenth enters it at its own
/// line; `days_of_stock
/// < 5` (200 in stock) likewise waits for the units that bring the
/// velocity to 40 a day.
#[test]
fn a_product_is_looked_at_again_once_its_lines_could_reach_a_threshold() {
    let mut live = engine();
    product(&mut live, "S1", "A", 200);
    segment(&mut live, "ten", Kind::Product, "units_30d >= 10");
    // Line n, an hour after the one before.
    let line = |live: &mut LiveEngine, n: u32, qty: u32| {
        let at = T0 + i64::from(n) * HOUR;
        live.advance_to(at).unwrap();
        evaluations(live, order(&format!("o{n}"), at, None, "S1", qty, 10))
    };
    for n in 1..=9 {
        assert_eq!(line(&mut live, n, 1), (0, vec![]), "line {n}");
    }
    let at10 = T0 + 10 * HOUR;
    assert_eq!(
        line(&mut live, 10, 1),
        (1, vec![ev(at10, "ten", "S1", true)])
    );

    // Days of stock: 200 / velocity, the velocity (5·u7/7 + 3·u14/14 +
    // 2·u30/30) / 10 rising by 0.0995 a unit sold now: ten units a line
    // bring it past 40 a day (under 5 days of stock) at about the fortieth
    // line, and each evaluation on the way knows how many units are still
    // needed.
    segment(&mut live, "short", Kind::Product, "days_of_stock < 5");
    let mut looked = 0;
    let mut entered = None;
    for n in 11..=100 {
        let (evals, events) = line(&mut live, n, 10);
        looked += evals;
        if !events.is_empty() {
            let at = T0 + i64::from(n) * HOUR;
            assert_eq!(events, vec![ev(at, "short", "S1", true)]);
            entered = Some(n);
            break;
        }
    }
    let entered = entered.expect("enters");
    assert!(
        (40..=60).contains(&entered) && looked <= 6,
        "entered at line {entered}, looked at {looked} times"
    );
}

/// No headroom is taken on revenue while a negative line is in the store:
/// its leaving the window raises the sum with no line added. Here the
/// product's 7-day sales are −50 when the segment is made and 40 after a
/// line of 90; once the −50 has left (90, still out) a line of 20 enters
/// it, which a mark taken at −50 (150 to go) would have held back.
#[test]
fn a_negative_line_in_the_window_leaves_revenue_without_headroom() {
    let mut live = engine();
    product(&mut live, "S1", "A", 100);
    ok(
        &mut live,
        discounted("n", T0, None, Decimal::TEN, Decimal::from(60)),
    );
    segment(&mut live, "sold", Kind::Product, "sales_7d > 100");
    live.advance_to(T0 + DAY).unwrap();
    assert_eq!(
        evaluations(&mut live, order("p", T0 + DAY, None, "S1", 1, 90)).1,
        vec![]
    );
    let (_, left) = advance(&mut live, T0 + 7 * DAY + HOUR);
    assert_eq!(left, vec![]);
    let at = T0 + 7 * DAY + 2 * HOUR;
    live.advance_to(at).unwrap();
    assert_eq!(
        evaluations(&mut live, order("q", at, None, "S1", 1, 20)).1,
        vec![ev(at, "sold", "S1", true)]
    );
}

/// A product's own lines pass a share segment by while they cannot carry
/// it over the threshold: a member's share only rises with them, and a
/// non-member is held back until its lines plus half (the threshold's
/// fraction) of what the group's total has lost since could have closed
/// the gap. Here A's mark, taken at 0 of 900 (a gap of 450), outlives
/// lines of 100 and 10; B's 900 leaving then takes another 450 off it, so
/// a line of 250 that brings A in (360 of 660) is looked at, where a mark
/// on A's own lines alone would still hold it back.
#[test]
fn a_products_own_lines_pass_a_share_segment_by_until_they_could_cross_it() {
    let mut live = engine();
    product(&mut live, "A", "acct1", 10);
    product(&mut live, "B", "acct1", 10);
    segment(&mut live, "half", Kind::Product, "revenue_share > 50");
    let step = |live: &mut LiveEngine, id: &str, at: Nanos, sku: &str, amount: i64| {
        live.advance_to(at).unwrap();
        evaluations(live, order(id, at, None, sku, 1, amount))
    };
    // The group's total leaves zero: both are looked at, A is marked.
    assert_eq!(
        step(&mut live, "b1", T0, "B", 900),
        (2, vec![ev(T0, "half", "B", true)])
    );
    // 100 of 1000, then 110 of 1310: nothing to look at.
    assert_eq!(step(&mut live, "a1", T0 + DAY, "A", 100), (0, vec![]));
    step(&mut live, "b2", T0 + 2 * DAY, "B", 300);
    assert_eq!(step(&mut live, "a2", T0 + 3 * DAY, "A", 10), (0, vec![]));
    // b1 leaves: 110 of 410, B (300, 73 %) stays in.
    let (_, events) = advance(&mut live, T0 + 30 * DAY + 2);
    assert_eq!(events, []);
    let at = T0 + 30 * DAY + 2;
    assert_eq!(
        step(&mut live, "a3", at, "A", 250).1,
        [ev(at, "half", "A", true), ev(at, "half", "B", false)]
    );
    // A member's own line only raises its share (370 of 670).
    assert_eq!(step(&mut live, "a4", at + 1, "A", 10), (0, vec![]));
    // B's 1000 takes A out (370 of 1670), marked on a counter that already
    // holds A's 370 and half of the 900 that left: A's next line of 10 is
    // far short of the new gap (465).
    assert_eq!(
        step(&mut live, "b3", at + 2, "B", 1000).1,
        [
            ev(at + 2, "half", "A", false),
            ev(at + 2, "half", "B", true)
        ]
    );
    assert_eq!(step(&mut live, "a5", at + 3, "A", 10), (0, vec![]));
}
