//! A checked rule compiled for evaluation one entity at a time, with what it
//! reads (for the dependency index) and how time moves it (for the
//! scheduler).

use std::collections::BTreeSet;

use jiff::civil::Date;
use rust_decimal::Decimal;
use strata_engine::clock::{NANOS_PER_SECOND, day_start};
use strata_lang::ast::{Arg, Call, CmpOp, Expr, Operand, Test, TextOp, Value};
use strata_lang::catalog::Kind;

use crate::quick::{Limit, Quick};

/// What a rule reads, as bits: the dependency index maps each bit to the
/// segments that have it, and a change marks only those segments dirty.
pub mod input {
    /// Attributes of the entity itself (text, tags, booleans, `created_at`).
    pub const ATTR: u32 = 1;
    /// Customer: the order-derived fields and behaviour functions.
    pub const ORDERS: u32 = 1 << 1;
    /// Customer: `total_profit` (moves when a bought product's cost does).
    pub const PROFIT: u32 = 1 << 2;
    /// Customer: `tier`.
    pub const TIER: u32 = 1 << 3;
    /// Customer: behaviour functions filtering by product attributes.
    pub const FILTER: u32 = 1 << 4;
    pub const PRICE: u32 = 1 << 5;
    pub const COST: u32 = 1 << 6;
    pub const INVENTORY: u32 = 1 << 7;
    /// Product: fields and functions over its order lines.
    pub const SALES: u32 = 1 << 8;
    /// Product: fields and functions over its daily rows.
    pub const DAILY: u32 = 1 << 9;
    /// Product: `revenue_share` (moves with the whole group's sales).
    pub const SHARE: u32 = 1 << 10;
    /// Time alone can change the truth.
    pub const TIME: u32 = 1 << 11;
    pub const COUNT: usize = 12;
}

/// How one segment refers to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `in_segment('x')`: the same entity.
    InSegment,
    /// `purchased(in_segment: 'x')` and the other behaviour functions: the
    /// customers who bought the product.
    Bought,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CField {
    Id,
    Email,
    EmailDomain,
    FirstName,
    LastName,
    Country,
    City,
    Marketplace,
    Tags,
    AcceptsMarketing,
    CreatedAt,
    NumberOfOrders,
    UnitsPurchased,
    AmountSpent,
    TotalProfit,
    AverageOrderValue,
    FirstOrderDate,
    LastOrderDate,
    Tier,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PField {
    Sku,
    ParentSku,
    Asin,
    Title,
    Brand,
    Category,
    Tags,
    SellerAccount,
    Marketplace,
    Price,
    Cost,
    Inventory,
    CreatedAt,
    UnitsSold,
    Sales,
    Units(i64),
    SalesN(i64),
    AvgDaily(i64),
    DailyVelocity,
    DaysOfStock,
    InventoryValue,
    RevenueShare,
    Customers30d,
    Sessions30d,
    ConversionRate30d,
    Bsr,
    Reviews,
    Rating,
    NewReviews30d,
}

impl PField {
    /// A value the product's own record holds (a product change sets it,
    /// neither lines nor daily rows nor time move it).
    pub fn of_record(self) -> bool {
        matches!(
            self,
            PField::Sku
                | PField::ParentSku
                | PField::Asin
                | PField::Title
                | PField::Brand
                | PField::Category
                | PField::Tags
                | PField::SellerAccount
                | PField::Marketplace
                | PField::Price
                | PField::Cost
                | PField::Inventory
        )
    }
}

/// An instant bound of a behaviour function, inclusive.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    Fixed(i64),
    /// `now + offset` (nanoseconds).
    Rel(i64),
    /// The first instant of `today`.
    TodayStart,
    /// The last instant of `today`.
    TodayEnd,
}

/// A calendar-day bound of `sessions(..)`.
#[derive(Clone, Copy, Debug)]
pub enum DayBound {
    Fixed(Date),
    /// The date of `now + offset`.
    Rel(i64),
    Today,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CFn {
    Orders,
    Units,
    Spent,
    Purchased,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PFn {
    UnitsSold,
    Sales,
}

#[derive(Clone, Debug, Default)]
pub struct LineFilter {
    /// Lower-cased alternatives; `None` when the argument is absent.
    pub sku: Option<Vec<String>>,
    pub category: Option<Vec<String>>,
    pub brand: Option<Vec<String>>,
    pub marketplace: Option<Vec<String>>,
    /// A product segment slot.
    pub segment: Option<u32>,
    /// The slot in [`crate::store::Store::filters`] of the `sku`,
    /// `category` and `brand` parts (a bit test per line instead of
    /// case-folded string comparisons). The engine attaches it to every
    /// rule it installs that has one of those parts; the evaluator reads
    /// the parts only through it.
    pub products: Option<u32>,
}

impl LineFilter {
    pub fn is_empty(&self) -> bool {
        self.sku.is_none()
            && self.category.is_none()
            && self.brand.is_none()
            && self.marketplace.is_none()
            && self.segment.is_none()
    }

    /// Whether the filter reads the line's product (not just its order).
    pub fn reads_product(&self) -> bool {
        self.sku.is_some()
            || self.category.is_some()
            || self.brand.is_some()
            || self.segment.is_some()
    }
}

impl LNode {
    /// Every line filter of the rule, to attach product slots to.
    pub fn filters_mut(&mut self, f: &mut dyn FnMut(&mut LineFilter)) {
        match self {
            LNode::And(xs) | LNode::Or(xs) => xs.iter_mut().for_each(|x| x.filters_mut(f)),
            LNode::Not(x) => x.filters_mut(f),
            LNode::Cond(LOperand::CCall { filter, .. }, _, _) => f(filter),
            LNode::Cond(..) => {}
        }
    }
}

#[derive(Clone, Debug)]
pub enum LOperand {
    C(CField),
    P(PField),
    /// A custom attribute by position in the store's list for the kind.
    Custom(usize),
    CCall {
        f: CFn,
        since: Option<Bound>,
        until: Option<Bound>,
        filter: Box<LineFilter>,
    },
    PCall {
        f: PFn,
        since: Option<Bound>,
        until: Option<Bound>,
    },
    Sessions {
        since: Option<DayBound>,
        until: Option<DayBound>,
    },
    InSegment(u32),
}

/// A time literal: how an instant compares with it.
#[derive(Clone, Copy, Debug)]
pub enum TimeLit {
    Instant(i128),
    Rel(i64),
    /// A calendar day: `[start, end)`.
    Day(i64, i64),
    Today,
}

#[derive(Clone, Debug)]
pub enum Lit {
    /// Lower-cased.
    Text(String),
    Num(Limit),
    Bool(bool),
    Time(TimeLit),
}

#[derive(Clone, Debug)]
pub enum LTest {
    Truth,
    IsNull(bool),
    IsEmpty(bool),
    Cmp(CmpOp, Lit),
    Between(Lit, Lit),
    In(bool, Vec<Lit>),
    Text(TextOp, bool, String),
}

#[derive(Clone, Debug)]
pub enum LNode {
    And(Vec<LNode>),
    Or(Vec<LNode>),
    Not(Box<LNode>),
    Cond(LOperand, LTest, Plan),
}

/// How a condition is evaluated besides its operand and test.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The operand's slot in the per-settle memo, where segments share it.
    pub memo: Option<u32>,
    /// Its compiled form, for a customer condition that has one: the
    /// evaluator answers with it instead of the operand and test.
    pub quick: Option<Quick>,
}

/// How a rule's truth for an entity can move under a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Not at all.
    Still,
    /// Only from false to true.
    Up,
    /// Only from true to false.
    Down,
    Any,
}

impl Drift {
    fn join(self, other: Drift) -> Drift {
        match (self, other) {
            (Drift::Still, x) | (x, Drift::Still) => x,
            (a, b) if a == b => a,
            _ => Drift::Any,
        }
    }

    pub fn flip(self) -> Drift {
        match self {
            Drift::Up => Drift::Down,
            Drift::Down => Drift::Up,
            x => x,
        }
    }
}

/// The index into [`LRule::added`] for a line of this revenue and profit.
pub fn added_index(revenue_negative: bool, profit_negative: bool) -> usize {
    usize::from(revenue_negative) | usize::from(profit_negative) << 1
}

/// What [`LRule::line_drift`] reads of the line added and of its entity.
pub trait LineCx {
    /// Whether the line counts in a call with this filter and window.
    fn passes(&mut self, filter: &LineFilter, since: Option<Bound>, until: Option<Bound>) -> bool;
    /// The entity's truth of a condition as the store stands, the line
    /// included: asked of [`steady`] conditions, and of conditions on a
    /// customer's own totals ([`totals`]).
    fn holds(&mut self, node: &LNode) -> bool;
    /// Whether the customer's first order stays what it was: one of its
    /// other orders comes first (the line's order is no earlier).
    fn first_order_kept(&mut self) -> bool;
    /// How a count compares with a literal, as a condition compares them.
    fn order(&mut self, count: u64, lit: &Lit) -> Option<std::cmp::Ordering>;
    /// Whether a line of non-negative revenue added to its product raises
    /// (or keeps) that product's revenue share: no line of negative
    /// revenue was ever stored, so every product's 30-day sales are at
    /// least zero and at most its group's total.
    fn shares_rise(&mut self) -> bool;
}

/// Whether a condition reads only what adding a line leaves as it is, and
/// cheaply: the entity's own attributes, its tier (a tier change touches
/// its readers), prices and stock, segment membership (a flip touches its
/// dependents).
pub fn steady(node: &LNode) -> bool {
    match node {
        LNode::And(xs) | LNode::Or(xs) => xs.iter().all(steady),
        LNode::Not(x) => steady(x),
        LNode::Cond(op, _, _) => match op {
            LOperand::C(f) => !totals(*f),
            LOperand::P(f) => f.of_record() || *f == PField::CreatedAt,
            LOperand::Custom(_) | LOperand::InSegment(_) => true,
            LOperand::CCall { .. } | LOperand::PCall { .. } | LOperand::Sessions { .. } => false,
        },
    }
}

/// A customer's fields kept in its own record as lines come and go (the
/// order list's ends for the dates): cheap to read, and already moved by
/// the line when [`LRule::line_drift`] asks.
fn totals(f: CField) -> bool {
    matches!(
        f,
        CField::NumberOfOrders
            | CField::UnitsPurchased
            | CField::AmountSpent
            | CField::TotalProfit
            | CField::AverageOrderValue
            | CField::FirstOrderDate
            | CField::LastOrderDate
    )
}

/// Whether [`LRule::line_drift`] can say more than [`LRule::added`]: the
/// rule has a call (a line can miss it, or decide it), a customer total
/// (read after the line), or a conjunction or disjunction one of whose
/// parts is [`steady`].
fn line_refinable(node: &LNode) -> bool {
    match node {
        LNode::And(xs) | LNode::Or(xs) => xs.iter().any(steady) || xs.iter().any(line_refinable),
        LNode::Not(x) => line_refinable(x),
        LNode::Cond(LOperand::CCall { .. }, _, _) => true,
        LNode::Cond(LOperand::C(f), _, _) if totals(*f) => true,
        LNode::Cond(LOperand::P(PField::RevenueShare), _, _) => true,
        LNode::Cond(..) => false,
    }
}

/// How the truth can move when one contributing line is added to the
/// entity (its customer's or its product's), with a revenue and a profit
/// that are not negative when `revenue_up` / `profit_up`.
///
/// Sums and counts over lines only grow with such a line (or, for a
/// negative revenue or profit, only shrink), whatever window or filter
/// they have; a comparison `>`/`>=` with a growing one can only become
/// true, `<`/`<=` only false. What other paths re-check is `Still` here:
/// `tier` (a tier change touches the segments reading it) and
/// `in_segment` (a flip touches its dependents). Anything else that moves
/// (averages, dates, ratios, equality) is `Any`.
///
/// With `cx`, the answer is for that line and entity: a call the line
/// does not count in stays still, and so does a conjunction with a
/// [`steady`] part that is false (a disjunction, true).
fn drift<'c>(
    node: &LNode,
    revenue_up: bool,
    profit_up: bool,
    mut cx: Option<&mut (dyn LineCx + 'c)>,
) -> (Drift, Option<bool>) {
    let sign = |up: bool| if up { Drift::Up } else { Drift::Down };
    match node {
        LNode::And(xs) | LNode::Or(xs) => {
            // The value of one part that decides the whole.
            let decides = matches!(node, LNode::Or(_));
            let mut d = Drift::Still;
            let mut all_known = true;
            for x in xs {
                let (dx, after) = drift(x, revenue_up, profit_up, cx.as_deref_mut());
                if after == Some(decides) {
                    return (sign(decides), Some(decides));
                }
                all_known &= after.is_some();
                d = d.join(dx);
            }
            if all_known && cx.is_some() {
                return (sign(!decides), Some(!decides));
            }
            if d != Drift::Still
                && let Some(cx) = cx
                && xs.iter().any(|x| steady(x) && cx.holds(x) == decides)
            {
                return (Drift::Still, None);
            }
            (d, None)
        }
        LNode::Not(x) => {
            let (d, after) = drift(x, revenue_up, profit_up, cx);
            (d.flip(), after.map(|b| !b))
        }
        LNode::Cond(op, test, _) => {
            let mut share_rises = false;
            if let Some(cx) = cx {
                match with_line(node, cx) {
                    Some(Some(after)) => return (sign(after), Some(after)),
                    Some(None) => return (Drift::Still, None),
                    None => {}
                }
                share_rises = revenue_up
                    && matches!(op, LOperand::P(PField::RevenueShare))
                    && cx.shares_rise();
            }
            let operand = match op {
                LOperand::C(f) => match f {
                    CField::NumberOfOrders | CField::UnitsPurchased => Drift::Up,
                    CField::AmountSpent => sign(revenue_up),
                    CField::TotalProfit => sign(profit_up),
                    CField::AverageOrderValue | CField::FirstOrderDate | CField::LastOrderDate => {
                        Drift::Any
                    }
                    _ => Drift::Still,
                },
                LOperand::P(f) => match f {
                    PField::UnitsSold
                    | PField::Units(_)
                    | PField::AvgDaily(_)
                    | PField::DailyVelocity
                    | PField::Customers30d => Drift::Up,
                    PField::Sales | PField::SalesN(_) => sign(revenue_up),
                    // Units over sessions no line changes (null, with no
                    // sessions, stays null).
                    PField::ConversionRate30d => Drift::Up,
                    // A line only adds units, so the velocity only grows:
                    // stock lasts fewer days, or gets a value where it had
                    // none (a null velocity). `<`/`<=` can only turn true.
                    PField::DaysOfStock => {
                        return match test {
                            LTest::Cmp(CmpOp::Lt | CmpOp::Le, Lit::Num(_)) => (Drift::Up, None),
                            _ => (Drift::Any, None),
                        };
                    }
                    // `(s + x) / (S + x)` is no less than `s / S` while
                    // `0 <= s <= S`, or has a value where there was none,
                    // which only `>`/`>=` read as a rise (any share passes
                    // `< 150` where none did; that case is also caught by
                    // the group's total leaving zero, which looks at every
                    // product of the group, but the drift does not lean on
                    // it).
                    PField::RevenueShare => match test {
                        LTest::Cmp(CmpOp::Gt | CmpOp::Ge, Lit::Num(_)) if share_rises => Drift::Up,
                        _ => Drift::Any,
                    },
                    _ => Drift::Still,
                },
                LOperand::CCall { f, .. } => match f {
                    CFn::Spent => sign(revenue_up),
                    CFn::Orders | CFn::Units | CFn::Purchased => Drift::Up,
                },
                LOperand::PCall { f, .. } => match f {
                    PFn::Sales => sign(revenue_up),
                    PFn::UnitsSold => Drift::Up,
                },
                LOperand::Custom(_) | LOperand::Sessions { .. } | LOperand::InSegment(_) => {
                    Drift::Still
                }
            };
            (through_test(operand, test), None)
        }
    }
}

/// How a rule's truth for an entity can move when segment `s` gains a
/// member the rule sees: the entity itself through `in_segment(s)`, or a
/// product the customer bought through an `in_segment: s` line filter.
/// A loss moves it the other way ([`Drift::flip`]).
///
/// A member more only adds lines to a filter (so counts, units and
/// `purchased` grow) or turns `in_segment` true; a `spent` sum can shrink
/// by a line of negative revenue, so it moves either way.
pub fn ref_drift(node: &LNode, s: u32) -> Drift {
    match node {
        LNode::And(xs) | LNode::Or(xs) => {
            xs.iter().fold(Drift::Still, |d, x| d.join(ref_drift(x, s)))
        }
        LNode::Not(x) => ref_drift(x, s).flip(),
        LNode::Cond(op, test, _) => {
            let operand = match op {
                LOperand::InSegment(x) if *x == s => Drift::Up,
                LOperand::CCall { f, filter, .. } if filter.segment == Some(s) => match f {
                    CFn::Purchased | CFn::Orders | CFn::Units => Drift::Up,
                    CFn::Spent => Drift::Any,
                },
                _ => Drift::Still,
            };
            through_test(operand, test)
        }
    }
}

/// What the line itself tells of condition `node` for its entity: that
/// the line leaves it as it was (`Some(None)`), or its truth once the
/// line is added (`Some(Some(truth))`), whatever the value was before.
///
/// A call the line does not count in stays; one it counts in has it
/// (`purchased(..)` is true, `orders(..) >= 1` too). A condition on the
/// customer's own totals ([`totals`]) is read off the record, which
/// already holds the line; the first order date stays where another order
/// comes first.
fn with_line(node: &LNode, cx: &mut dyn LineCx) -> Option<Option<bool>> {
    use std::cmp::Ordering::{Equal, Greater};
    let LNode::Cond(op, test, _) = node else {
        return None;
    };
    match op {
        LOperand::CCall {
            f,
            since,
            until,
            filter,
        } => {
            if !cx.passes(filter, *since, *until) {
                return Some(None);
            }
            let after = match (f, test) {
                (CFn::Purchased, LTest::Truth) => Some(true),
                // A count is never null.
                (CFn::Orders, LTest::IsNull(negated)) => Some(*negated),
                // The count is at least one: a test holding on the whole
                // half-line is true, one failing on all of it false.
                (CFn::Orders, LTest::Cmp(op, lit)) => match (op, cx.order(1, lit)?) {
                    (CmpOp::Gt, Greater) | (CmpOp::Ge, Greater | Equal) => Some(true),
                    (CmpOp::Lt, Greater | Equal) | (CmpOp::Le | CmpOp::Eq, Greater) => Some(false),
                    _ => None,
                },
                (CFn::Orders, LTest::Between(_, hi)) => {
                    (cx.order(1, hi)? == Greater).then_some(false)
                }
                _ => None,
            };
            after.map(Some)
        }
        LOperand::C(CField::FirstOrderDate) if cx.first_order_kept() => Some(None),
        LOperand::C(f) if totals(*f) => Some(Some(cx.holds(node))),
        _ => None,
    }
}

/// How a condition moves when its operand moves as `operand` says: a
/// `>`/`>=` follows its operand, a `<`/`<=` goes the other way, and any
/// other test of a moving value (equality, ranges, lists) can go either.
fn through_test(operand: Drift, test: &LTest) -> Drift {
    match (operand, test) {
        (Drift::Still, _) => Drift::Still,
        (Drift::Up | Drift::Down, LTest::Truth) => operand,
        (Drift::Up | Drift::Down, LTest::Cmp(CmpOp::Gt | CmpOp::Ge, Lit::Num(_))) => operand,
        (Drift::Up | Drift::Down, LTest::Cmp(CmpOp::Lt | CmpOp::Le, Lit::Num(_))) => operand.flip(),
        _ => Drift::Any,
    }
}

/// How time reaching one of a rule's dependencies (an exact one, an offset
/// with [`AT`] / [`AFTER`] bits shifted to their source; a day one, with
/// the one bit `1`) can move its truth:
/// bits of conditions that can become true, that can become false, and
/// of those whose direction holds only while no line has a negative
/// revenue (a `spent`/`sales` window losing a negative line grows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeMove {
    pub rise: u8,
    pub fall: u8,
    pub money: u8,
}

impl TimeMove {
    fn add(&mut self, bits: u8, drift: Drift, money: bool) {
        match drift {
            Drift::Still => {}
            Drift::Up => self.rise |= bits,
            Drift::Down => self.fall |= bits,
            Drift::Any => {
                self.rise |= bits;
                self.fall |= bits;
            }
        }
        if money {
            self.money |= bits;
        }
    }

    /// Whether a hit on `bits` can move an entity that is (`member`) or
    /// is not in the segment; `negative` when some line's revenue is
    /// negative.
    pub fn can_move(&self, bits: u8, member: bool, negative: bool) -> bool {
        let money = if negative { self.money } else { 0 };
        let way = if member { self.fall } else { self.rise };
        (way | money) & bits != 0
    }
}

/// How a window `[since, until]` changes where `now + off` crosses a
/// line: the lower bound only lets lines go, the upper only takes them
/// in.
fn window_move(since: Option<Bound>, until: Option<Bound>, off: i64) -> Drift {
    let lower = matches!(since, Some(Bound::Rel(o)) if o == off);
    let upper = matches!(until, Some(Bound::Rel(o)) if o == off);
    match (lower, upper) {
        (true, false) => Drift::Down,
        (false, true) => Drift::Up,
        _ => Drift::Any,
    }
}

/// How one condition moves when time crosses its exact dependency at
/// `off`, and whether that direction holds only for non-negative
/// revenues. Only shapes whose direction is plain are refined; anything
/// else is `Any` (evaluated whichever side the entity is on).
fn exact_move(op: &LOperand, test: &LTest, off: i64) -> (Drift, bool) {
    let counts = |d: Drift| (through_test(d, test), false);
    let money = |d: Drift| (through_test(d, test), true);
    match op {
        // Sums and counts over the last n days only lose lines as time
        // passes; the weights and divisors of the derived ones are fixed
        // (conversion's sessions move only at day dependencies).
        LOperand::P(
            PField::Units(_)
            | PField::AvgDaily(_)
            | PField::DailyVelocity
            | PField::Customers30d
            | PField::ConversionRate30d,
        ) => counts(Drift::Down),
        LOperand::P(PField::SalesN(_)) => money(Drift::Down),
        // Inventory over a shrinking velocity grows, or has no value once
        // the velocity is zero: either way `<`/`<=` can only turn false.
        LOperand::P(PField::DaysOfStock) => match test {
            LTest::Cmp(CmpOp::Lt | CmpOp::Le, Lit::Num(_)) => (Drift::Down, false),
            _ => (Drift::Any, false),
        },
        // The 30-day dependency of a share is one of the product's own
        // lines leaving: `s / S` becomes `(s - r) / (S - r)`, no larger
        // while `0 <= r <= s <= S` (no negative revenue), or has no value
        // once the group's total is gone. Either way `>`/`>=` can only
        // turn false. Other products' lines leaving raise the share, but
        // they reach it through the group's total (the engine's share
        // candidates), not through this dependency.
        LOperand::P(PField::RevenueShare) => match test {
            LTest::Cmp(CmpOp::Gt | CmpOp::Ge, Lit::Num(_)) => (Drift::Down, true),
            _ => (Drift::Any, false),
        },
        LOperand::CCall {
            f, since, until, ..
        } => {
            let d = window_move(*since, *until, off);
            if *f == CFn::Spent {
                money(d)
            } else {
                counts(d)
            }
        }
        LOperand::PCall { f, since, until } => {
            let d = window_move(*since, *until, off);
            if *f == PFn::Sales {
                money(d)
            } else {
                counts(d)
            }
        }
        // A recorded instant against `now + off`: `<` becomes true as now
        // passes it and stays so, `>` the reverse.
        LOperand::C(CField::CreatedAt | CField::FirstOrderDate | CField::LastOrderDate)
        | LOperand::P(PField::CreatedAt) => match test {
            LTest::Cmp(op, Lit::Time(TimeLit::Rel(o))) if *o == off => match op {
                CmpOp::Lt | CmpOp::Le => (Drift::Up, false),
                CmpOp::Gt | CmpOp::Ge => (Drift::Down, false),
                CmpOp::Eq | CmpOp::Ne => (Drift::Any, false),
            },
            _ => (Drift::Any, false),
        },
        _ => (Drift::Any, false),
    }
}

/// How one condition moves when a calendar day crosses its day
/// dependency `(off, k)`. `sessions_30d` sums the rows dated in the last
/// 30 days: a row dated today comes in (`k = 0`), one dated 30 days ago
/// goes (`k = 30`).
fn day_move(op: &LOperand, test: &LTest, (off, k): (i64, i64)) -> Drift {
    match (op, off, k) {
        (LOperand::P(PField::Sessions30d), 0, 0) => through_test(Drift::Up, test),
        (LOperand::P(PField::Sessions30d), 0, 30) => through_test(Drift::Down, test),
        _ => Drift::Any,
    }
}

/// A rule compiled for the live engine.
#[derive(Clone, Debug)]
pub struct LRule {
    /// How the truth can move when a line is added, by [`added_index`].
    pub added: [Drift; 4],
    /// Whether [`LRule::line_drift`] can narrow `added` for a given line.
    pub refine: bool,
    pub node: LNode,
    /// [`input`] bits.
    pub inputs: u32,
    pub refs: Vec<(u32, Via)>,
    /// Offsets (ns) at which `now + offset` is compared with the entity's
    /// recorded instants, with [`AT`] / [`AFTER`] flags: whether a truth can
    /// change where `now + offset` reaches an instant, or one nanosecond
    /// after (an inclusive bound lets go only after).
    pub exact: Vec<(i64, u8)>,
    /// `(offset ns, k days)`: the truth can change where the date of
    /// `now + offset` passes one of the entity's dates plus `k`.
    pub days: Vec<(i64, i64)>,
    /// For each entry of `exact`, how time reaching it can move the truth
    /// (a wake skips the entities already on the side it cannot leave).
    pub exact_moves: Vec<TimeMove>,
    /// For each entry of `days`, likewise (its one flag is `1`).
    pub day_moves: Vec<TimeMove>,
    /// Literals `revenue_share` is compared with.
    pub share_thresholds: Vec<Decimal>,
    /// The largest of `share_thresholds` as a fraction, in millionths
    /// rounded up, at most one million: a fall of the group's total by `z`
    /// brings a product's share at most this times `z` nearer any of them
    /// ([`crate::headroom`]).
    pub share_weight: u64,
    /// For each `in_segment:` product filter, its call's `since:` bound:
    /// a product flipping there only matters to buyers with lines since.
    pub bought_since: Vec<(u32, Option<Bound>)>,
}

impl LRule {
    /// How the truth for one entity can move when one line is added to
    /// it, `i` being the line's [`added_index`]: [`LRule::added`] narrowed
    /// by what `cx` says of the line and the entity. Never moves more ways
    /// than `added[i]`.
    pub fn line_drift(&self, i: usize, cx: &mut dyn LineCx) -> Drift {
        if !self.refine || self.added[i] == Drift::Still {
            return self.added[i];
        }
        drift(&self.node, i & 1 == 0, i & 2 == 0, Some(cx)).0
    }
}

/// Resolves names the rule refers to.
pub trait Names {
    fn segment(&self, kind: Kind, name: &str) -> Option<u32>;
    fn custom(&self, kind: Kind, name: &str) -> Option<usize>;
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compile: {0}")]
pub struct Unresolved(pub String);

struct Builder<'a> {
    kind: Kind,
    tz: &'a jiff::tz::TimeZone,
    names: &'a dyn Names,
    inputs: u32,
    refs: Vec<(u32, Via)>,
    exact: std::collections::BTreeMap<i64, u8>,
    days: BTreeSet<(i64, i64)>,
    share: Vec<Decimal>,
    bought: Vec<(u32, Option<Bound>)>,
    /// What the condition being built registers with time.
    cond_exact: Vec<(i64, u8)>,
    cond_days: Vec<(i64, i64)>,
    /// Under an odd number of NOTs.
    negated: bool,
    exact_moves: std::collections::BTreeMap<i64, TimeMove>,
    day_moves: std::collections::BTreeMap<(i64, i64), TimeMove>,
}

const DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// The truth can change where `now + offset` equals a recorded instant.
pub const AT: u8 = 1;
/// The truth can change one nanosecond after that.
pub const AFTER: u8 = 2;
/// Shifts of [`AT`] / [`AFTER`] naming which instants: every recorded one
/// (the orders' or lines' times and `created_at`), or only `created_at`,
/// the first order's or the last order's time.
pub const ALL: u8 = 0;
pub const CREATED: u8 = 2;
pub const FIRST: u8 = 4;
pub const LAST: u8 = 6;

pub fn compile(
    kind: Kind,
    expr: &Expr,
    tz: &jiff::tz::TimeZone,
    names: &dyn Names,
) -> Result<LRule, Unresolved> {
    let mut b = Builder {
        kind,
        tz,
        names,
        inputs: 0,
        refs: Vec::new(),
        exact: std::collections::BTreeMap::new(),
        days: BTreeSet::new(),
        share: Vec::new(),
        bought: Vec::new(),
        cond_exact: Vec::new(),
        cond_days: Vec::new(),
        negated: false,
        exact_moves: Default::default(),
        day_moves: Default::default(),
    };
    let mut node = b.node(expr)?;
    order_by_cost(&mut node);
    if !b.exact.is_empty() || !b.days.is_empty() {
        b.inputs |= input::TIME;
    }
    b.refs.sort_unstable_by_key(|&(s, v)| (s, v == Via::Bought));
    b.refs.dedup();
    // A product's own line reaches its share's readers through SALES alone.
    debug_assert!(b.inputs & input::SHARE == 0 || b.inputs & input::SALES != 0);
    let added = std::array::from_fn(|i| drift(&node, i & 1 == 0, i & 2 == 0, None).0);
    let refine = line_refinable(&node);
    // Every registered dependency has its entry: one the conditions did not
    // describe moves either way.
    let any = TimeMove {
        rise: u8::MAX,
        fall: u8::MAX,
        money: 0,
    };
    let exact_moves = b
        .exact
        .keys()
        .map(|off| b.exact_moves.get(off).copied().unwrap_or(any))
        .collect();
    let day_moves = b
        .days
        .iter()
        .map(|dep| b.day_moves.get(dep).copied().unwrap_or(any))
        .collect();
    Ok(LRule {
        added,
        refine,
        node,
        inputs: b.inputs,
        refs: b.refs,
        exact: b.exact.into_iter().collect(),
        days: b.days.into_iter().collect(),
        exact_moves,
        day_moves,
        share_weight: share_weight(&b.share),
        share_thresholds: b.share,
        bought_since: b.bought,
    })
}

/// [`LRule::share_weight`] of these percentages.
fn share_weight(percents: &[Decimal]) -> u64 {
    use rust_decimal::prelude::ToPrimitive;
    const MILLION: u64 = 1_000_000;
    percents
        .iter()
        .map(|l| {
            l.checked_mul(Decimal::from(10_000))
                .and_then(|x| x.ceil().to_u64())
                .map_or(MILLION, |x| x.min(MILLION))
        })
        .max()
        .unwrap_or(0)
}

impl Builder<'_> {
    fn node(&mut self, expr: &Expr) -> Result<LNode, Unresolved> {
        Ok(match expr {
            Expr::And(xs) => LNode::And(xs.iter().map(|x| self.node(x)).collect::<Result<_, _>>()?),
            Expr::Or(xs) => LNode::Or(xs.iter().map(|x| self.node(x)).collect::<Result<_, _>>()?),
            Expr::Not(x) => {
                self.negated = !self.negated;
                let inner = self.node(x);
                self.negated = !self.negated;
                LNode::Not(Box::new(inner?))
            }
            Expr::Cond(c) => {
                self.cond_exact.clear();
                self.cond_days.clear();
                let operand = match &c.operand {
                    Operand::Field(id) => self.field(&id.name)?,
                    Operand::Call(call) => self.call(call)?,
                };
                // Which recorded instant a time field is: a relative date
                // compared with it moves the truth only where it passes
                // that instant, not every order's.
                let is_time = match operand {
                    LOperand::C(CField::CreatedAt) | LOperand::P(PField::CreatedAt) => {
                        Some(CREATED)
                    }
                    LOperand::C(CField::FirstOrderDate) => Some(FIRST),
                    LOperand::C(CField::LastOrderDate) => Some(LAST),
                    _ => None,
                };
                if matches!(operand, LOperand::P(PField::RevenueShare)) {
                    self.share.extend(test_numbers(&c.test));
                }
                let test = self.test(&c.test, is_time)?;
                self.note_moves(&operand, &test);
                let quick = match self.kind {
                    Kind::Customer => Quick::of(&operand, &test),
                    Kind::Product => None,
                };
                LNode::Cond(operand, test, Plan { memo: None, quick })
            }
        })
    }

    /// Records how the condition just built moves at each time dependency
    /// it registered, seen from the rule's root (a NOT turns it round).
    fn note_moves(&mut self, operand: &LOperand, test: &LTest) {
        let turn = |d: Drift, negated: bool| if negated { d.flip() } else { d };
        for &(off, bits) in &self.cond_exact {
            let (d, money) = exact_move(operand, test, off);
            let entry = self.exact_moves.entry(off).or_default();
            entry.add(bits, turn(d, self.negated), money);
        }
        for &dep in &self.cond_days {
            let d = turn(day_move(operand, test, dep), self.negated);
            self.day_moves.entry(dep).or_default().add(1, d, false);
        }
    }

    fn window(&mut self, days: i64) {
        self.instant(-days * DAY, AFTER);
    }

    fn instant(&mut self, off: i64, flags: u8) {
        // `flags` already shifted to its source (ALL is no shift).
        *self.exact.entry(off).or_insert(0) |= flags;
        self.cond_exact.push((off, flags));
    }

    fn day(&mut self, off: i64, k: i64) {
        self.days.insert((off, k));
        self.cond_days.push((off, k));
    }

    fn daily(&mut self, ks: &[i64]) {
        for &k in ks {
            self.day(0, k);
        }
    }

    fn field(&mut self, name: &str) -> Result<LOperand, Unresolved> {
        use input::*;
        if name.starts_with("x_") {
            self.inputs |= ATTR;
            let i = self
                .names
                .custom(self.kind, name)
                .ok_or_else(|| Unresolved(format!("custom attribute {name}")))?;
            return Ok(LOperand::Custom(i));
        }
        Ok(match self.kind {
            Kind::Customer => {
                let (f, bits) = match name {
                    "customer_id" => (CField::Id, ATTR),
                    "email" => (CField::Email, ATTR),
                    "email_domain" => (CField::EmailDomain, ATTR),
                    "first_name" => (CField::FirstName, ATTR),
                    "last_name" => (CField::LastName, ATTR),
                    "country" => (CField::Country, ATTR),
                    "city" => (CField::City, ATTR),
                    "marketplace" => (CField::Marketplace, ATTR),
                    "tags" => (CField::Tags, ATTR),
                    "accepts_marketing" => (CField::AcceptsMarketing, ATTR),
                    "created_at" => (CField::CreatedAt, ATTR),
                    "number_of_orders" => (CField::NumberOfOrders, ORDERS),
                    "units_purchased" => (CField::UnitsPurchased, ORDERS),
                    "amount_spent" => (CField::AmountSpent, ORDERS),
                    "total_profit" => (CField::TotalProfit, ORDERS | PROFIT),
                    "average_order_value" => (CField::AverageOrderValue, ORDERS),
                    "first_order_date" => (CField::FirstOrderDate, ORDERS),
                    "last_order_date" => (CField::LastOrderDate, ORDERS),
                    "tier" => (CField::Tier, TIER),
                    other => return Err(Unresolved(format!("customer field {other}"))),
                };
                self.inputs |= bits;
                LOperand::C(f)
            }
            Kind::Product => {
                let (f, bits) = match name {
                    "sku" => (PField::Sku, ATTR),
                    "parent_sku" => (PField::ParentSku, ATTR),
                    "asin" => (PField::Asin, ATTR),
                    "title" => (PField::Title, ATTR),
                    "brand" => (PField::Brand, ATTR),
                    "category" => (PField::Category, ATTR),
                    "tags" => (PField::Tags, ATTR),
                    "seller_account" => (PField::SellerAccount, ATTR),
                    "marketplace" => (PField::Marketplace, ATTR),
                    "price" => (PField::Price, PRICE),
                    "cost" => (PField::Cost, COST),
                    "inventory" => (PField::Inventory, INVENTORY),
                    "created_at" => (PField::CreatedAt, ATTR),
                    "units_sold" => (PField::UnitsSold, SALES),
                    "sales" => (PField::Sales, SALES),
                    "units_7d"
                    | "units_14d"
                    | "units_30d"
                    | "sales_7d"
                    | "sales_14d"
                    | "sales_30d"
                    | "avg_daily_units_7d"
                    | "avg_daily_units_14d"
                    | "avg_daily_units_30d" => {
                        let days: i64 = name
                            .trim_end_matches('d')
                            .rsplit('_')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(|| Unresolved(name.to_owned()))?;
                        self.window(days);
                        let f = if name.starts_with("units") {
                            PField::Units(days)
                        } else if name.starts_with("sales") {
                            PField::SalesN(days)
                        } else {
                            PField::AvgDaily(days)
                        };
                        (f, SALES)
                    }
                    "daily_velocity" | "days_of_stock" => {
                        for d in [7, 14, 30] {
                            self.window(d);
                        }
                        if name == "daily_velocity" {
                            (PField::DailyVelocity, SALES)
                        } else {
                            (PField::DaysOfStock, SALES | INVENTORY)
                        }
                    }
                    "inventory_value" => (PField::InventoryValue, INVENTORY | COST),
                    "revenue_share" => {
                        self.window(30);
                        (PField::RevenueShare, SALES | SHARE | ATTR)
                    }
                    "customers_30d" => {
                        self.window(30);
                        (PField::Customers30d, SALES)
                    }
                    "sessions_30d" => {
                        self.daily(&[0, 30]);
                        (PField::Sessions30d, DAILY)
                    }
                    "conversion_rate_30d" => {
                        self.window(30);
                        self.daily(&[0, 30]);
                        (PField::ConversionRate30d, DAILY | SALES)
                    }
                    "bsr" | "reviews" | "rating" => {
                        self.daily(&[0]);
                        let f = match name {
                            "bsr" => PField::Bsr,
                            "reviews" => PField::Reviews,
                            _ => PField::Rating,
                        };
                        (f, DAILY)
                    }
                    "new_reviews_30d" => {
                        self.daily(&[0, 30]);
                        (PField::NewReviews30d, DAILY)
                    }
                    other => return Err(Unresolved(format!("product field {other}"))),
                };
                self.inputs |= bits;
                LOperand::P(f)
            }
        })
    }

    fn segment(&mut self, kind: Kind, lit: &strata_lang::ast::Literal) -> Result<u32, Unresolved> {
        let Value::String(name) = &lit.value else {
            return Err(Unresolved("segment name".into()));
        };
        self.names
            .segment(kind, name)
            .ok_or_else(|| Unresolved(format!("segment {name}")))
    }

    fn bound(&mut self, arg: &Arg, upper: bool) -> Result<Bound, Unresolved> {
        Ok(match &arg.value.literals()[0].value {
            Value::Timestamp { instant, .. } => {
                let n = instant
                    .as_nanosecond()
                    .clamp(i128::from(i64::MIN), i128::from(i64::MAX))
                    as i64;
                Bound::Fixed(n)
            }
            Value::Date(d) => {
                if upper {
                    Bound::Fixed(day_end(*d, self.tz).saturating_sub(1))
                } else {
                    Bound::Fixed(day_start(*d, self.tz))
                }
            }
            Value::Relative(r) => {
                let off = r.offset_seconds().saturating_mul(NANOS_PER_SECOND);
                // `at >= now + off` lets go after; `at <= now + off` holds from.
                self.instant(off, if upper { AT } else { AFTER });
                Bound::Rel(off)
            }
            Value::Today => {
                self.day(0, 0);
                self.day(0, 1);
                if upper {
                    Bound::TodayEnd
                } else {
                    Bound::TodayStart
                }
            }
            other => return Err(Unresolved(format!("bound {other:?}"))),
        })
    }

    fn day_bound(&mut self, arg: &Arg) -> Result<DayBound, Unresolved> {
        Ok(match &arg.value.literals()[0].value {
            Value::Date(d) => DayBound::Fixed(*d),
            Value::Timestamp { instant, .. } => {
                DayBound::Fixed(self.tz.to_datetime(*instant).date())
            }
            Value::Relative(r) => {
                let off = r.offset_seconds().saturating_mul(NANOS_PER_SECOND);
                self.day(off, 0);
                self.day(off, 1);
                DayBound::Rel(off)
            }
            Value::Today => {
                self.day(0, 0);
                self.day(0, 1);
                DayBound::Today
            }
            other => return Err(Unresolved(format!("bound {other:?}"))),
        })
    }

    fn call(&mut self, call: &Call) -> Result<LOperand, Unresolved> {
        let name = call.name.name.as_str();
        if name == "in_segment" {
            let s = self.segment(self.kind, &call.args[0].value.literals()[0])?;
            self.refs.push((s, Via::InSegment));
            return Ok(LOperand::InSegment(s));
        }
        let mut since = None;
        let mut until = None;
        let mut filter = LineFilter::default();
        let is_sessions = self.kind == Kind::Product && name == "sessions";
        let mut day_since = None;
        let mut day_until = None;
        for arg in &call.args {
            let Some(arg_name) = &arg.name else { continue };
            let texts = || {
                arg.value
                    .literals()
                    .iter()
                    .filter_map(|l| match &l.value {
                        Value::String(s) => Some(s.to_lowercase()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            };
            match arg_name.name.as_str() {
                "since" if is_sessions => day_since = Some(self.day_bound(arg)?),
                "until" if is_sessions => day_until = Some(self.day_bound(arg)?),
                "since" => since = Some(self.bound(arg, false)?),
                "until" => until = Some(self.bound(arg, true)?),
                "sku" => {
                    filter.sku = Some(texts());
                }
                "category" => {
                    self.inputs |= input::FILTER;
                    filter.category = Some(texts());
                }
                "brand" => {
                    self.inputs |= input::FILTER;
                    filter.brand = Some(texts());
                }
                "marketplace" => filter.marketplace = Some(texts()),
                "in_segment" => {
                    let s = self.segment(Kind::Product, &arg.value.literals()[0])?;
                    self.refs.push((s, Via::Bought));
                    filter.segment = Some(s);
                }
                other => return Err(Unresolved(format!("argument {other}"))),
            }
        }
        if let Some(s) = filter.segment {
            self.bought.push((s, since));
        }
        Ok(match (self.kind, name) {
            (Kind::Customer, f) => {
                self.inputs |= input::ORDERS;
                let f = match f {
                    "orders" => CFn::Orders,
                    "units" => CFn::Units,
                    "spent" => CFn::Spent,
                    "purchased" => CFn::Purchased,
                    other => return Err(Unresolved(format!("function {other}"))),
                };
                LOperand::CCall {
                    f,
                    since,
                    until,
                    filter: Box::new(filter),
                }
            }
            (Kind::Product, "sessions") => {
                self.inputs |= input::DAILY;
                self.daily(&[0]);
                LOperand::Sessions {
                    since: day_since,
                    until: day_until,
                }
            }
            (Kind::Product, f) => {
                self.inputs |= input::SALES;
                let f = match f {
                    "units_sold" => PFn::UnitsSold,
                    "sales" => PFn::Sales,
                    other => return Err(Unresolved(format!("function {other}"))),
                };
                LOperand::PCall { f, since, until }
            }
        })
    }

    fn lit(&mut self, value: &Value, is_time: Option<u8>, flags: u8) -> Result<Lit, Unresolved> {
        Ok(match value {
            Value::String(s) => Lit::Text(s.to_lowercase()),
            Value::Number(n) => Lit::Num(Limit::new(*n)),
            Value::Bool(b) => Lit::Bool(*b),
            Value::Timestamp { instant, .. } => {
                Lit::Time(TimeLit::Instant(instant.as_nanosecond()))
            }
            Value::Date(d) => Lit::Time(TimeLit::Day(day_start(*d, self.tz), day_end(*d, self.tz))),
            Value::Relative(r) => {
                let off = r.offset_seconds().saturating_mul(NANOS_PER_SECOND);
                if let Some(shift) = is_time {
                    self.instant(off, flags << shift);
                }
                Lit::Time(TimeLit::Rel(off))
            }
            Value::Today => {
                if is_time.is_some() {
                    self.day(0, 0);
                    self.day(0, 1);
                }
                Lit::Time(TimeLit::Today)
            }
        })
    }

    fn test(&mut self, test: &Test, is_time: Option<u8>) -> Result<LTest, Unresolved> {
        const BOTH: u8 = AT | AFTER;
        Ok(match test {
            Test::Truth => LTest::Truth,
            Test::IsNull { negated } => LTest::IsNull(*negated),
            Test::IsEmpty { negated } => LTest::IsEmpty(*negated),
            Test::Cmp(op, lit) => {
                // x > now + off holds until now = x − off; x < now + off
                // from one nanosecond after; likewise the inclusive forms.
                let flags = match op {
                    CmpOp::Gt | CmpOp::Le => AT,
                    CmpOp::Lt | CmpOp::Ge => AFTER,
                    CmpOp::Eq | CmpOp::Ne => BOTH,
                };
                LTest::Cmp(*op, self.lit(&lit.value, is_time, flags)?)
            }
            Test::Between(a, b) => LTest::Between(
                self.lit(&a.value, is_time, AFTER)?,
                self.lit(&b.value, is_time, AT)?,
            ),
            Test::In { negated, values } => LTest::In(
                *negated,
                values
                    .iter()
                    .map(|l| self.lit(&l.value, is_time, BOTH))
                    .collect::<Result<_, _>>()?,
            ),
            Test::Text { op, negated, value } => {
                let Value::String(s) = &value.value else {
                    return Err(Unresolved("text test without a string".into()));
                };
                LTest::Text(*op, *negated, s.to_lowercase())
            }
        })
    }
}

/// A rough cost of evaluating a node for one entity.
fn cost(node: &LNode) -> u32 {
    match node {
        LNode::And(xs) | LNode::Or(xs) => xs.iter().map(cost).sum(),
        LNode::Not(x) => cost(x),
        LNode::Cond(op, _, _) => match op {
            LOperand::C(_) | LOperand::Custom(_) | LOperand::InSegment(_) => 1,
            LOperand::P(
                PField::Units(_)
                | PField::SalesN(_)
                | PField::AvgDaily(_)
                | PField::RevenueShare
                | PField::Bsr
                | PField::Reviews
                | PField::Rating,
            )
            | LOperand::PCall { .. } => 3,
            LOperand::P(PField::DailyVelocity | PField::DaysOfStock) => 6,
            LOperand::P(
                PField::Sessions30d
                | PField::ConversionRate30d
                | PField::NewReviews30d
                | PField::Customers30d,
            )
            | LOperand::Sessions { .. } => 8,
            LOperand::P(_) => 1,
            LOperand::CCall { filter, .. } => {
                if filter.is_empty() {
                    4
                } else {
                    12
                }
            }
        },
    }
}

/// Puts the cheap children of AND and OR first: a cheap condition that
/// decides the group saves evaluating the dear ones (every test is pure,
/// so the order cannot change the result).
fn order_by_cost(node: &mut LNode) {
    match node {
        LNode::And(xs) | LNode::Or(xs) => {
            xs.iter_mut().for_each(order_by_cost);
            xs.sort_by_key(cost);
        }
        LNode::Not(x) => order_by_cost(x),
        LNode::Cond(..) => {}
    }
}

fn test_numbers(test: &Test) -> Vec<Decimal> {
    let lits: Vec<&Value> = match test {
        Test::Cmp(_, l) => vec![&l.value],
        Test::Between(a, b) => vec![&a.value, &b.value],
        Test::In { values, .. } => values.iter().map(|l| &l.value).collect(),
        _ => Vec::new(),
    };
    lits.into_iter()
        .filter_map(|v| match v {
            Value::Number(n) => Some(*n),
            _ => None,
        })
        .collect()
}

/// The first instant of the day after `date`.
pub fn day_end(date: Date, tz: &jiff::tz::TimeZone) -> i64 {
    match date.tomorrow() {
        Ok(next) => day_start(next, tz),
        Err(_) => i64::MAX,
    }
}

/// A key naming an operand worth computing once per entity per settle
/// (it scans the entity's history); `None` for cheap ones and for those
/// that read memberships (which change during a settle).
pub fn memo_key(kind: Kind, op: &LOperand) -> Option<String> {
    let worth = match op {
        LOperand::CCall { filter, .. } => filter.segment.is_none(),
        LOperand::PCall { .. } | LOperand::Sessions { .. } => true,
        LOperand::P(f) => matches!(
            f,
            PField::Units(_)
                | PField::SalesN(_)
                | PField::AvgDaily(_)
                | PField::DailyVelocity
                | PField::DaysOfStock
                | PField::Customers30d
                | PField::Sessions30d
                | PField::ConversionRate30d
                | PField::NewReviews30d
                | PField::RevenueShare
        ),
        LOperand::C(_) | LOperand::Custom(_) | LOperand::InSegment(_) => false,
    };
    worth.then(|| format!("{kind:?} {op:?}"))
}

/// Calls `f` on every condition of a tree.
pub fn each_cond(node: &mut LNode, f: &mut dyn FnMut(&LOperand, &mut Option<u32>)) {
    match node {
        LNode::And(xs) | LNode::Or(xs) => xs.iter_mut().for_each(|x| each_cond(x, f)),
        LNode::Not(x) => each_cond(x, f),
        LNode::Cond(op, _, plan) => f(op, &mut plan.memo),
    }
}
