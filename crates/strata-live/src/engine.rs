//! The live engine: applies changes, keeps memberships and tiers current,
//! and advances the clock through the instants where time changes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use strata_data::{NO_CUSTOMER, Nanos, RuleSource, TierScheme};
use strata_engine::RuleError;
use strata_lang::Diagnostic;
use strata_lang::ast::Expr;
use strata_lang::ast::Span;
use strata_lang::catalog::{Kind, Schema};

use crate::change::{
    Cause, Change, CustomerRow, DailyRow, Event, LineRow, LiveError, ProductRow, ProductValue,
    invalid,
};
use crate::eval::{AddedLine, Clock, Evaluator, Memberships};
use crate::headroom::NO_MARK;
use crate::ids::id_hash;
use crate::quiet::{PairTable, Quiet};
use crate::rule::{self, Drift, LRule, Names, TimeMove, Via, input};
use crate::schedule::Schedule;
use crate::store::{Customer, Day, Line, Order, Product, Store, counting_status, sales_rank, text};
use crate::wake::{TimeDeps, next_of};

/// Heap entry tags, in the order they are handled at one instant: data
/// first (an order coming due, a group's window moving), then entities.
const ORDER_DUE: u8 = 0;
const GROUP_AGES: u8 = 1;
const PRODUCT_WAKES: u8 = 2;
const CUSTOMER_WAKES: u8 = 3;

const NONE: Nanos = Nanos::MAX;

/// What an entity keeps for one of its time dependencies.
#[derive(Clone, Copy, Debug)]
struct Kept {
    /// The next instant the dependency can change something. **Never
    /// later than what the records give**, so a wake recomputes only the
    /// dependencies that came due and the others stand.
    at: Nanos,
    /// What [`next_of`] found at `at`: the hits, read by the wake instead
    /// of a search of the records.
    hits: u8,
    /// Where the search of the records ended: the next one starts there
    /// ([`crate::wake::partition_from`]).
    hint: u32,
}

impl Kept {
    const NONE: Kept = Kept {
        at: NONE,
        hits: 0,
        hint: 0,
    };
}

/// How [`LiveEngine::next_wake_of`] brings an entity's kept instants up to
/// date.
#[derive(Clone, Copy, Debug)]
enum Rewake {
    /// From all its records.
    All,
    /// After one record at this instant was added.
    Added(Nanos),
    /// After a wake at this instant.
    Due(Nanos),
}

fn k(kind: Kind) -> usize {
    match kind {
        Kind::Customer => 0,
        Kind::Product => 1,
    }
}

/// Segments of one kind that read none of each other.
#[derive(Clone, Debug)]
struct Level {
    kind: Kind,
    segs: Vec<u32>,
}

pub(crate) struct Segment {
    pub name: Arc<str>,
    pub kind: Kind,
    /// The normalised text form.
    pub text: String,
    pub expr: Expr,
    pub rule: LRule,
    /// Member count at the end of each day on which it changed.
    pub history: BTreeMap<Date, u64>,
}

/// What one line of an `AddLines` change names, as validation found it.
struct LineSlots {
    product: u32,
    /// Dense slot or [`NO_CUSTOMER`].
    customer: u32,
    order: OrderSlot,
}

#[derive(Clone, Copy)]
enum OrderSlot {
    Known(u32),
    /// Created by this change, at this line (the order's first here).
    New(usize),
}

/// Lines of one order contributed one after another: their customer is
/// marked once for them all, after the last ([`LiveEngine::flush_buyer`]),
/// where marking it per line walked its segments once a line.
struct BuyerLines {
    /// Their order (which names the customer and the instant).
    order: u32,
    add: bool,
    /// The lines' [`rule::added_index`], which they share.
    signs: usize,
    lines: SmallVec<[u32; 4]>,
}

/// Segment state that evaluation reads while the rest is written.
pub struct LiveEngine {
    pub(crate) store: Store,
    pub(crate) clock: Clock,
    pub(crate) segments: Vec<Option<Segment>>,
    pub(crate) members: Memberships,
    seg_ids: FxHashMap<String, u32>,
    /// Segments in settling order: product levels before customer ones,
    /// each segment in a later level than every segment of its kind it
    /// reads. A level settles entity by entity.
    levels: Vec<Level>,
    /// The (entity, segment) pairs of a level being settled (kept for its
    /// capacity).
    pairs: Vec<u64>,
    /// The segments one touch marks (kept for its capacity).
    touched: Vec<u32>,
    /// Per (product segment, product) pair: the instant before which
    /// time alone cannot move the pair's truth
    /// ([`Evaluator::product_quiet`]), as of its last evaluation by a
    /// wake. An evaluation for a change resets it (to `Nanos::MIN`: every
    /// wake evaluates). A pair a line skips keeps it: the skip means the
    /// rule only moves one way with that line and the entity already
    /// stands there (or an unchanging part decides it), so at every later
    /// instant the truth with the line is on that side wherever it was
    /// without, and it cannot leave earlier than the kept instant; or the
    /// line is short of the pair's headroom, taken only on parts that keep
    /// the pair out as the clock moves.
    quiet: Quiet,
    /// Per (product segment, product) pair that is not a member: the mark
    /// on the product's [`crate::store::Added`] counters below which added
    /// lines cannot bring it in ([`Evaluator::product_headroom`]), as of
    /// its last evaluation for a change; [`NO_MARK`] for a member. A wake
    /// that finds the pair still out keeps the mark (time only moves what
    /// it was taken on further away).
    headroom: PairTable<u64>,
    /// Segments that read each input, per kind: the dependency index.
    index: [[Vec<u32>; input::COUNT]; 2],
    /// Who refers to each segment, how, and how a member more moves the
    /// referrer's truth ([`rule::ref_drift`]).
    dependents: Vec<Vec<(u32, Via, Drift)>>,
    time_deps: [TimeDeps; 2],
    /// Segments having each entry of `time_deps[kind].exact` (with their
    /// own flags for it and how it moves them) / `.days` (likewise; a day
    /// dependency has the one flag `1`).
    exact_segs: [Vec<Vec<(u32, u8, TimeMove)>>; 2],
    day_segs: [Vec<Vec<(u32, u8, TimeMove)>>; 2],
    /// The literals `revenue_share` is compared with, over 100 (the share
    /// as a fraction of the group's total), and whether that is exact.
    share_thresholds: Vec<(Decimal, bool)>,
    heap: Schedule,
    wake: [Vec<Nanos>; 2],
    /// Per entity, for each time dependency (`time_deps[kind].len()`
    /// entries per entity), what comes next there (see `next_wake_of`).
    kept: [Vec<Kept>; 2],
    group_wake: Vec<Nanos>,
    dirty: Vec<Vec<u32>>,
    tier_dirty: Vec<u32>,
    tiers: Vec<Option<Arc<str>>>,
    /// The tier names `tiers` shares ([`LiveEngine::tier_name`]).
    tier_names: Vec<Arc<str>>,
    /// Groups whose total moved in this step, with the total before.
    group_moved: FxHashMap<u32, Decimal>,
    /// The products a settle's share candidates touch (kept for its
    /// capacity).
    share_touched: Vec<u32>,
    events: Vec<Event>,
    /// A settle level's `(segment, entity, enters)` results, kept for its
    /// allocation.
    flips: Vec<(u32, u32, bool)>,
    cause: Cause,
    seq: u64,
    /// Interned ids for events.
    ids: [Vec<Arc<str>>; 2],
    /// (segment, entity) evaluations so far.
    evaluations: u64,
    memo: crate::eval::Memo,
    /// While a dataset loads, entities are scheduled once at the end rather
    /// than again for every segment installed.
    loading: bool,
}

impl std::fmt::Debug for LiveEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEngine")
            .field("now", &self.clock.now)
            .field("customers", &self.store.customers.len())
            .field("products", &self.store.products.len())
            .field("scheduled", &self.heap.len())
            .field("lines", &self.store.lines.len())
            .finish_non_exhaustive()
    }
}

struct SegNames<'a> {
    engine: &'a LiveEngine,
}

impl Names for SegNames<'_> {
    fn segment(&self, kind: Kind, name: &str) -> Option<u32> {
        let &s = self.engine.seg_ids.get(name)?;
        let seg = self.engine.segments[s as usize].as_ref()?;
        (seg.kind == kind).then_some(s)
    }

    fn custom(&self, kind: Kind, name: &str) -> Option<usize> {
        let list = match kind {
            Kind::Customer => &self.engine.store.customer_custom,
            Kind::Product => &self.engine.store.product_custom,
        };
        list.iter().position(|n| n == name)
    }
}

impl LiveEngine {
    /// An empty engine at `now` in a time zone.
    pub fn empty(now: Nanos, tz: jiff::tz::TimeZone) -> LiveEngine {
        LiveEngine {
            store: Store::default(),
            clock: Clock::new(now, Arc::new(crate::calendar::Calendar::new(tz))),
            segments: Vec::new(),
            members: Memberships::default(),
            seg_ids: FxHashMap::default(),
            levels: Vec::new(),
            pairs: Vec::new(),
            touched: Vec::new(),
            quiet: Quiet::default(),
            headroom: PairTable::new(NO_MARK),
            index: Default::default(),
            dependents: Vec::new(),
            time_deps: Default::default(),
            exact_segs: Default::default(),
            day_segs: Default::default(),
            share_thresholds: Vec::new(),
            heap: Schedule::default(),
            wake: [Vec::new(), Vec::new()],
            kept: Default::default(),
            group_wake: Vec::new(),
            dirty: Vec::new(),
            tier_dirty: Vec::new(),
            tiers: Vec::new(),
            tier_names: Vec::new(),
            group_moved: FxHashMap::default(),
            share_touched: Vec::new(),
            events: Vec::new(),
            flips: Vec::new(),
            cause: Cause::Time,
            seq: 0,
            ids: [Vec::new(), Vec::new()],
            evaluations: 0,
            memo: Default::default(),
            loading: false,
        }
    }

    /// How many (segment, entity) pairs have been evaluated so far: what
    /// the dependency index saves shows here.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    pub fn now(&self) -> Nanos {
        self.clock.now
    }

    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.clock.cal.tz
    }

    /// Sequence number of the last change applied (0 before any).
    pub fn last_change(&self) -> u64 {
        self.seq
    }

    /// Continues the numbering of changes after `last`: an engine restored
    /// from storage gives its next change the number after the last one
    /// stored, so causes in an event log stay unique.
    pub fn resume_sequence(&mut self, last: u64) {
        self.seq = self.seq.max(last);
    }

    // ---- changes ----------------------------------------------------

    /// Applies one change at the current instant and returns the events it
    /// caused. A refused change leaves the engine as it was.
    pub fn apply(&mut self, change: Change) -> Result<Vec<Event>, LiveError> {
        let slots = self.validate(&change)?;
        self.seq += 1;
        self.cause = Cause::Change(self.seq);
        match change {
            Change::UpsertProduct(p) => self.upsert_product(p),
            Change::DeleteProduct(sku) => self.delete_product(&sku),
            Change::UpsertCustomer(c) => self.upsert_customer(c),
            Change::DeleteCustomer(id) => self.delete_customer(&id),
            Change::AddLines(lines) => self.add_lines(lines, &slots),
            Change::SetOrderStatus { order_id, status } => self.set_status(&order_id, &status),
            Change::SetProductValue { sku, value } => self.set_value(&sku, value),
            Change::PutDaily(row) => self.put_daily(row),
            Change::PutSegment { name, kind, rule } => {
                // A refused rule changes nothing, its number included: the
                // numbers of accepted changes have no gaps.
                if let Err(refused) = self.put_segment(name, kind, rule) {
                    self.seq -= 1;
                    return Err(refused);
                }
            }
            Change::DeleteSegment(name) => self.delete_segment(&name),
            Change::PutTierScheme(scheme) => self.put_tiers(Some(scheme), None),
            Change::DeleteTierScheme(market) => self.put_tiers(None, Some(market)),
        }
        self.settle();
        Ok(std::mem::take(&mut self.events))
    }

    /// Applies a change while loading: no sequence number, no settling.
    pub(crate) fn load_change(&mut self, change: Change) -> Result<(), LiveError> {
        match change {
            Change::UpsertProduct(p) => self.upsert_product(p),
            Change::UpsertCustomer(c) => self.upsert_customer(c),
            Change::PutSegment { name, kind, rule } => self.put_segment(name, kind, rule)?,
            other => {
                return Err(crate::change::invalid(format!(
                    "not a loading change: {other:?}"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn set_loading(&mut self) {
        self.loading = true;
    }

    /// Schedules what a bulk load left waiting: orders dated after `now`
    /// and the groups' windows.
    pub(crate) fn schedule_loaded(&mut self) {
        for (o, order) in self.store.orders.iter().enumerate() {
            if !order.active {
                self.heap.push((order.at, ORDER_DUE, o as u32));
            }
        }
        self.group_wake.resize(self.store.groups.len(), NONE);
        for g in 0..self.store.groups.len() as u32 {
            self.reschedule_group(g);
        }
    }

    /// Evaluates everything a load left dirty, without reporting events:
    /// the loaded state is the starting point, not a change.
    pub(crate) fn settle_initial(&mut self) {
        self.loading = false;
        for kind in [Kind::Customer, Kind::Product] {
            for e in 0..self.wake[k(kind)].len() as u32 {
                self.reschedule(kind, e);
            }
        }
        self.tier_dirty.extend(0..self.store.customers.len() as u32);
        self.cause = Cause::Time;
        self.settle();
        self.events.clear();
    }

    /// Checks a change against the data, so that applying it cannot fail
    /// half-way. Segment rules are checked when they are put. For order
    /// lines, returns what each names, so that applying them looks nothing
    /// up again.
    fn validate(&self, change: &Change) -> Result<Vec<LineSlots>, LiveError> {
        let s = &self.store;
        let product = |sku: &str| {
            s.product_slot(sku)
                .ok_or_else(|| invalid(format!("unknown sku '{sku}'")))
        };
        match change {
            Change::UpsertProduct(p) => {
                if p.sku.is_empty() {
                    return Err(invalid("a product needs a sku"));
                }
                check_custom(&p.custom)?;
            }
            Change::UpsertCustomer(c) => {
                if c.customer_id.is_empty() {
                    return Err(invalid("a customer needs a customer_id"));
                }
                check_custom(&c.custom)?;
            }
            Change::DeleteProduct(sku) => {
                let p = product(sku)?;
                let refs = s.products[p as usize].line_refs;
                if refs > 0 {
                    return Err(invalid(format!(
                        "product '{sku}' cannot be deleted: {refs} order lines name it"
                    )));
                }
            }
            Change::DeleteCustomer(id) => {
                if s.customer_slot(id).is_none() {
                    return Err(invalid(format!("unknown customer '{id}'")));
                }
            }
            Change::AddLines(lines) => {
                let mut slots: Vec<LineSlots> = Vec::with_capacity(lines.len());
                // The first line of each order named here; a map only for
                // changes too long for a scan of the earlier lines.
                let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
                for (i, l) in lines.iter().enumerate() {
                    let at = |msg: String| invalid(format!("line {}: {msg}", i + 1));
                    if l.order_id.is_empty() {
                        return Err(at("order_id is empty".into()));
                    }
                    let p = product(&l.sku).map_err(|e| at(e.to_string()))?;
                    let customer = match norm(&l.customer_id) {
                        Some(c) => s
                            .customer_slot(c)
                            .ok_or_else(|| at(format!("unknown customer '{c}'")))?,
                        None => NO_CUSTOMER,
                    };
                    l.checked_revenue().map_err(|what| at(what.into()))?;
                    line_revenue(l).ok_or_else(|| {
                        at("quantity × unit_price − discount is out of exact range".into())
                    })?;
                    let agrees = |o: &LineRow| {
                        o.ordered_at == l.ordered_at
                            && norm(&o.customer_id) == norm(&l.customer_id)
                            && status_of(&o.status) == status_of(&l.status)
                            && norm(&o.marketplace) == norm(&l.marketplace)
                    };
                    let earlier = if lines.len() <= 16 {
                        lines[..i].iter().position(|o| o.order_id == l.order_id)
                    } else {
                        let first = *seen.entry(l.order_id.as_str()).or_insert(i);
                        (first < i).then_some(first)
                    };
                    let order = if let Some(j) = earlier {
                        if !agrees(&lines[j]) {
                            return Err(at(format!(
                                "order '{}': order-level columns disagree with an earlier line",
                                l.order_id
                            )));
                        }
                        slots[j].order
                    } else if let Some(o) = s.order_slot(&l.order_id) {
                        let order = &s.orders[o as usize];
                        if order.at != l.ordered_at
                            || order.customer != customer
                            || s.words.get(order.status) != status_of(&l.status)
                            || s.words.get_text(order.marketplace) != norm(&l.marketplace)
                        {
                            return Err(at(format!(
                                "order '{}' exists with other order-level columns (change its status with SetOrderStatus)",
                                l.order_id
                            )));
                        }
                        OrderSlot::Known(o)
                    } else {
                        OrderSlot::New(i)
                    };
                    slots.push(LineSlots {
                        product: p,
                        customer,
                        order,
                    });
                }
                return Ok(slots);
            }
            Change::SetOrderStatus { order_id, status } => {
                if s.order_slot(order_id).is_none() {
                    return Err(invalid(format!("unknown order '{order_id}'")));
                }
                if status.is_empty() {
                    return Err(invalid("status is empty"));
                }
            }
            Change::SetProductValue { sku, .. } => {
                product(sku)?;
            }
            Change::PutDaily(row) => {
                product(&row.sku)?;
                if let Some(r) = row.rating
                    && (r < Decimal::ZERO || r > Decimal::from(5))
                {
                    return Err(invalid(format!("rating {r} is not within 0–5")));
                }
            }
            Change::PutSegment { name, .. } => {
                if name.is_empty() {
                    return Err(invalid("a segment needs a name"));
                }
            }
            Change::DeleteSegment(name) => {
                let &sid = self
                    .seg_ids
                    .get(name.as_str())
                    .ok_or_else(|| invalid(format!("unknown segment '{name}'")))?;
                let users = self.users_of(sid);
                if !users.is_empty() {
                    return Err(LiveError::InUse {
                        name: name.clone(),
                        users,
                    });
                }
            }
            Change::PutTierScheme(scheme) => check_scheme(scheme)?,
            Change::DeleteTierScheme(m) => {
                if !s.tiers.iter().any(|t| t.marketplace == *m) {
                    return Err(invalid(format!(
                        "no tier scheme for marketplace {}",
                        m.as_deref().unwrap_or("null")
                    )));
                }
            }
        }
        Ok(Vec::new())
    }

    fn users_of(&self, sid: u32) -> Vec<String> {
        let mut users: Vec<String> = self.dependents[sid as usize]
            .iter()
            .filter_map(|&(d, _, _)| self.segments[d as usize].as_ref())
            .map(|s| s.name.to_string())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Marks an entity dirty for every segment of its kind reading any of
    /// `bits`.
    fn touch(&mut self, kind: Kind, e: u32, bits: u32) {
        self.touch_moved(kind, e, bits, None);
    }

    /// [`LiveEngine::touch`] for `lines` added, all of one order and of one
    /// [`rule::added_index`] (`signs`): a segment whose rule can only move
    /// one way under them is skipped where the entity already stands on
    /// that side (a member of `amount_spent > 500` stays one as lines come
    /// in), and so is one the lines cannot move at all for this entity
    /// ([`LRule::line_drift`]: a call whose filter or window they all miss,
    /// a conjunction with an attribute condition that is false, a
    /// condition they decide for a non-member of a rule they falsify).
    ///
    /// Several lines at once are as sound as one: what the drift reads of
    /// the entity (its totals, its attributes) is the store with all of
    /// them in, a call moves if any of them counts in it, and lines of one
    /// sign move every sum and count the same way.
    fn touch_moved(&mut self, kind: Kind, e: u32, bits: u32, added: Option<(usize, &[u32])>) {
        let mut hit = std::mem::take(&mut self.touched);
        let index = &self.index[k(kind)];
        let ev = self.reader();
        let mut cx = added.map(|(signs, lines)| {
            let first = &self.store.lines[lines[0] as usize];
            let order = &self.store.orders[first.order as usize];
            let products = lines
                .iter()
                .map(|&l| self.store.lines[l as usize].product)
                .collect();
            (
                signs,
                AddedLine {
                    ev: &ev,
                    customer: kind == Kind::Customer,
                    entity: e,
                    at: order.at,
                    products,
                    order: first.order,
                    marketplace: self.store.words.get_text(order.marketplace),
                },
            )
        });
        for (bit, segs) in index.iter().enumerate() {
            if bits & (1 << bit) == 0 {
                continue;
            }
            for &s in segs {
                let stays = cx.as_mut().is_some_and(|(i, cx)| {
                    let Some(seg) = &self.segments[s as usize] else {
                        return true;
                    };
                    // What the rule's drift alone settles needs no look
                    // at the lines (the refined drift is never wider).
                    let member = self.members.contains(k(kind), s, e);
                    stays(seg.rule.added[*i], || member)
                        || stays(seg.rule.line_drift(*i, cx), || member)
                        // Below the pair's headroom the lines cannot bring
                        // it in (a negative one only lowers a sum, and its
                        // leaving undoes no more than that).
                        || (!member && kind == Kind::Product && self.held_back(s, e))
                });
                if !stays {
                    hit.push(s);
                }
            }
        }
        for &s in &hit {
            self.dirty[s as usize].push(e);
        }
        hit.clear();
        self.touched = hit;
    }

    fn touch_all_segments(&mut self, kind: Kind, e: u32) {
        for (s, seg) in self.segments.iter().enumerate() {
            if seg.as_ref().is_some_and(|seg| seg.kind == kind) {
                self.dirty[s].push(e);
            }
        }
    }

    fn note_group(&mut self, g: u32) {
        let total = self.store.groups[g as usize].total;
        self.group_moved.entry(g).or_insert(total);
    }

    fn custom_slots(&mut self, kind: Kind, custom: &[(String, Option<String>)]) -> Vec<usize> {
        let list = match kind {
            Kind::Customer => &mut self.store.customer_custom,
            Kind::Product => &mut self.store.product_custom,
        };
        custom
            .iter()
            .map(|(name, _)| match list.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    list.push(name.clone());
                    list.len() - 1
                }
            })
            .collect()
    }

    fn upsert_product(&mut self, input: ProductRow) {
        let slots = self.custom_slots(Kind::Product, &input.custom);
        let width = self.store.product_custom.len();
        let mut custom = vec![None; width];
        for (slot, (_, value)) in slots.into_iter().zip(&input.custom) {
            custom[slot] = text(value.as_deref());
        }
        let seller_account = text(input.seller_account.as_deref());
        let marketplace = text(input.marketplace.as_deref());
        let group = self.store.group_of(&seller_account, &marketplace);
        self.group_wake.resize(self.store.groups.len(), NONE);
        let fresh = Product {
            sku: input.sku.as_str().into(),
            alive: true,
            parent_sku: text(input.parent_sku.as_deref()),
            asin: text(input.asin.as_deref()),
            title: text(input.title.as_deref()),
            brand: text(input.brand.as_deref()),
            category: text(input.category.as_deref()),
            tags: tags(&input.tags),
            seller_account,
            marketplace,
            price: input.price,
            cost: input.cost,
            inventory: input.inventory,
            created_at: input.created_at,
            custom,
            group,
            ..Product::default()
        };
        match self.store.product_slot(&input.sku) {
            None => {
                let p = self.store.products.len() as u32;
                let sku = fresh.sku.clone();
                self.store.products.push(fresh);
                self.store.product_ids.insert(id_hash(&sku), p);
                self.store.groups[group as usize].products.push(p);
                self.store.refresh_filters(p);
                self.wake[1].push(NONE);
                let n = self.time_deps[1].len();
                self.kept[1].extend(std::iter::repeat_n(Kept::NONE, n));
                self.ids[1].push(sku);
                if self.store.track_sales {
                    self.store.sales_key.push(Decimal::ZERO);
                    self.store.groups[group as usize]
                        .by_sales
                        .insert((sales_rank(Decimal::ZERO), p));
                }
                self.touch_all_segments(Kind::Product, p);
                self.reschedule(Kind::Product, p);
            }
            Some(p) => {
                let old = &self.store.products[p as usize];
                let mut bits = 0;
                if old.parent_sku != fresh.parent_sku
                    || old.asin != fresh.asin
                    || old.title != fresh.title
                    || old.brand != fresh.brand
                    || old.category != fresh.category
                    || old.tags != fresh.tags
                    || old.seller_account != fresh.seller_account
                    || old.marketplace != fresh.marketplace
                    || old.created_at != fresh.created_at
                    || pad(&old.custom, width) != fresh.custom
                {
                    bits |= input::ATTR;
                }
                let filter_moved = old.brand != fresh.brand || old.category != fresh.category;
                let (cost, price, inventory) = (fresh.cost, fresh.price, fresh.inventory);
                let regroup = old.group != group;
                let created_moved = old.created_at != fresh.created_at;
                {
                    let old = &mut self.store.products[p as usize];
                    old.parent_sku = fresh.parent_sku;
                    old.asin = fresh.asin;
                    old.title = fresh.title;
                    old.brand = fresh.brand;
                    old.category = fresh.category;
                    old.tags = fresh.tags;
                    old.seller_account = fresh.seller_account;
                    old.marketplace = fresh.marketplace;
                    old.created_at = fresh.created_at;
                    old.custom = fresh.custom;
                }
                self.touch(Kind::Product, p, bits);
                if filter_moved {
                    self.store.refresh_filters(p);
                    for c in self.store.buyers(p) {
                        self.touch(Kind::Customer, c, input::FILTER);
                    }
                }
                if regroup {
                    self.regroup(p, group);
                }
                self.set_price(p, price);
                self.set_cost(p, cost);
                self.set_inventory(p, inventory);
                if created_moved {
                    self.reschedule(Kind::Product, p);
                }
            }
        }
    }

    /// Moves a product to another revenue-share group: both groups' totals
    /// move, and every product of both may change share.
    fn regroup(&mut self, p: u32, to: u32) {
        let from = self.store.products[p as usize].group;
        self.note_group(from);
        self.note_group(to);
        let start = Store::window_start(self.clock.now);
        let lines: Vec<(Nanos, u32, Decimal)> = self.store.products[p as usize]
            .lines
            .iter()
            .filter(|l| l.at >= start)
            .map(|l| (l.at, l.line, l.revenue))
            .collect();
        let s = &mut self.store;
        for (at, l, revenue) in lines {
            if s.groups[from as usize].window.remove(&(at, l)).is_some() {
                s.groups[from as usize].shift(-revenue);
            }
            s.groups[to as usize].window.insert((at, l), revenue);
            s.groups[to as usize].shift(revenue);
        }
        s.groups[from as usize].products.retain(|&x| x != p);
        s.groups[to as usize].products.push(p);
        if s.track_sales {
            let rank = sales_rank(s.sales_key[p as usize]);
            s.groups[from as usize].by_sales.remove(&(rank, p));
            s.groups[to as usize].by_sales.insert((rank, p));
        }
        s.products[p as usize].group = to;
        for g in [from, to] {
            let members = self.store.groups[g as usize].products.clone();
            for q in members {
                self.touch(Kind::Product, q, input::SHARE);
            }
            self.reschedule_group(g);
        }
    }

    fn set_price(&mut self, p: u32, price: Option<Decimal>) {
        if self.store.products[p as usize].price != price {
            self.store.products[p as usize].price = price;
            self.touch(Kind::Product, p, input::PRICE);
        }
    }

    fn set_inventory(&mut self, p: u32, inventory: Option<u64>) {
        if self.store.products[p as usize].inventory != inventory {
            self.store.products[p as usize].inventory = inventory;
            self.touch(Kind::Product, p, input::INVENTORY);
        }
    }

    /// A new cost moves the profit of every customer who bought the
    /// product, by quantity × the difference.
    fn set_cost(&mut self, p: u32, cost: Option<Decimal>) {
        let old = self.store.products[p as usize].cost;
        if old == cost {
            return;
        }
        self.store.products[p as usize].cost = cost;
        self.touch(Kind::Product, p, input::COST);
        let delta = cost.unwrap_or(Decimal::ZERO) - old.unwrap_or(Decimal::ZERO);
        if delta.is_zero() {
            return;
        }
        let mut buyers = Vec::new();
        for l in &self.store.products[p as usize].lines {
            if l.customer != NO_CUSTOMER {
                buyers.push((l.customer, l.qty));
            }
        }
        for (c, qty) in buyers {
            self.store.customers[c as usize].profit -= Decimal::from(qty) * delta;
            self.touch(Kind::Customer, c, input::PROFIT);
            self.tier_dirty.push(c);
        }
    }

    fn set_value(&mut self, sku: &str, value: ProductValue) {
        let Some(p) = self.store.product_slot(sku) else {
            return;
        };
        match value {
            ProductValue::Price(v) => self.set_price(p, v),
            ProductValue::Cost(v) => self.set_cost(p, v),
            ProductValue::Inventory(v) => self.set_inventory(p, v),
        }
    }

    fn delete_product(&mut self, sku: &str) {
        let Some(p) = self.store.unlist_product(sku) else {
            return;
        };
        let s = &mut self.store;
        let product = &mut s.products[p as usize];
        product.alive = false;
        let g = product.group;
        s.groups[g as usize].products.retain(|&x| x != p);
        if s.track_sales {
            let rank = sales_rank(s.sales_key[p as usize]);
            s.groups[g as usize].by_sales.remove(&(rank, p));
        }
        self.wake[1][p as usize] = NONE;
        self.touch_all_segments(Kind::Product, p);
    }

    fn upsert_customer(&mut self, input: CustomerRow) {
        let slots = self.custom_slots(Kind::Customer, &input.custom);
        let width = self.store.customer_custom.len();
        let mut custom = vec![None; width];
        for (slot, (_, value)) in slots.into_iter().zip(&input.custom) {
            custom[slot] = text(value.as_deref());
        }
        let fresh = Customer {
            id: input.customer_id.as_str().into(),
            alive: true,
            email: text(input.email.as_deref()),
            first_name: text(input.first_name.as_deref()),
            last_name: text(input.last_name.as_deref()),
            country: self.store.words.text(input.country.as_deref()),
            city: self.store.words.text(input.city.as_deref()),
            marketplace: self.store.words.text(input.marketplace.as_deref()),
            tags: tags(&input.tags),
            accepts_marketing: input.accepts_marketing,
            created_at: input.created_at,
            custom,
            ..Customer::default()
        };
        match self.store.customer_slot(&input.customer_id) {
            None => {
                let c = self.store.customers.len() as u32;
                let id = fresh.id.clone();
                self.store.customers.push(fresh);
                self.store.customer_ids.insert(id_hash(&id), c);
                self.wake[0].push(NONE);
                let n = self.time_deps[0].len();
                self.kept[0].extend(std::iter::repeat_n(Kept::NONE, n));
                self.tiers.push(None);
                self.ids[0].push(id);
                self.touch_all_segments(Kind::Customer, c);
                self.tier_dirty.push(c);
                self.reschedule(Kind::Customer, c);
            }
            Some(c) => {
                let old = &mut self.store.customers[c as usize];
                let market_moved = old.marketplace != fresh.marketplace;
                let created_moved = old.created_at != fresh.created_at;
                let changed = old.email != fresh.email
                    || old.first_name != fresh.first_name
                    || old.last_name != fresh.last_name
                    || old.country != fresh.country
                    || old.city != fresh.city
                    || market_moved
                    || old.tags != fresh.tags
                    || old.accepts_marketing != fresh.accepts_marketing
                    || created_moved
                    || pad(&old.custom, width) != fresh.custom;
                old.email = fresh.email;
                old.first_name = fresh.first_name;
                old.last_name = fresh.last_name;
                old.country = fresh.country;
                old.city = fresh.city;
                old.marketplace = fresh.marketplace;
                old.tags = fresh.tags;
                old.accepts_marketing = fresh.accepts_marketing;
                old.created_at = fresh.created_at;
                old.custom = fresh.custom;
                if changed {
                    self.touch(Kind::Customer, c, input::ATTR);
                }
                if market_moved {
                    self.tier_dirty.push(c);
                }
                if created_moved {
                    self.reschedule(Kind::Customer, c);
                }
            }
        }
    }

    /// Erases a customer; their orders stay as an anonymous buyer's, so
    /// product sales do not change (only `customers_30d` can).
    fn delete_customer(&mut self, id: &str) {
        let Some(c) = self.store.unlist_customer(id) else {
            return;
        };
        let orders = std::mem::take(&mut self.store.customers[c as usize].all_orders);
        let mut products = Vec::new();
        for &o in &orders {
            let order = &mut self.store.orders[o as usize];
            order.customer = NO_CUSTOMER;
            let contributes = order.contributes();
            for &l in &order.lines.clone() {
                let line = &self.store.lines[l as usize];
                let p = line.product;
                if contributes {
                    let at = self.store.orders[o as usize].at;
                    let product = &mut self.store.products[p as usize];
                    let pos = product.lines.partition_point(|x| (x.at, x.line) < (at, l));
                    if pos < product.lines.len() {
                        product.anonymise_line(pos);
                    }
                    products.push(p);
                }
            }
        }
        products.sort_unstable();
        products.dedup();
        for p in products {
            self.touch(Kind::Product, p, input::SALES);
        }
        let customer = &mut self.store.customers[c as usize];
        customer.alive = false;
        customer.orders.clear();
        customer.units = 0;
        customer.spent = Decimal::ZERO;
        customer.profit = Decimal::ZERO;
        self.wake[0][c as usize] = NONE;
        self.touch_all_segments(Kind::Customer, c);
        self.tier_dirty.push(c);
    }

    fn add_lines(&mut self, lines: Vec<LineRow>, slots: &[LineSlots]) {
        let now = self.clock.now;
        // The order of each line so far (a line of an order this change
        // creates finds it at the order's first line).
        let mut order_of = Vec::with_capacity(lines.len());
        let mut buyer = None;
        for (input, slot) in lines.into_iter().zip(slots) {
            let p = slot.product;
            let o = match slot.order {
                OrderSlot::Known(o) => o,
                OrderSlot::New(first) if first < order_of.len() => order_of[first],
                OrderSlot::New(_) => {
                    let customer = slot.customer;
                    let o = self.store.orders.len() as u32;
                    let status = status_of(&input.status);
                    let id: Box<str> = input.order_id.as_str().into();
                    let hash = id_hash(&id);
                    let words = &mut self.store.words;
                    self.store.orders.push(Order {
                        id,
                        at: input.ordered_at,
                        customer,
                        counting: counting_status(&status),
                        status: words.word(&status),
                        marketplace: words.text(input.marketplace.as_deref()),
                        lines: SmallVec::new(),
                        units: 0,
                        revenue: Decimal::ZERO,
                        active: input.ordered_at <= now,
                    });
                    self.store.order_ids.insert(hash, o);
                    if customer != NO_CUSTOMER {
                        self.store.customers[customer as usize].all_orders.push(o);
                    }
                    if input.ordered_at > now {
                        self.heap.push((input.ordered_at, ORDER_DUE, o));
                    }
                    o
                }
            };
            order_of.push(o);
            let revenue = line_revenue(&input).unwrap_or_default();
            let l = self.store.lines.len() as u32;
            let seller_account = self.store.words.text(input.seller_account.as_deref());
            self.store.push_line(Line {
                order: o,
                product: p,
                qty: input.quantity,
                revenue,
                fees: input.fees,
                seller_account,
            });
            self.store.products[p as usize].line_refs += 1;
            let order = &mut self.store.orders[o as usize];
            let first = order.lines.is_empty();
            order.lines.push(l);
            order.units += u64::from(input.quantity);
            order.revenue += revenue;
            if order.contributes() {
                if first {
                    self.store.list_order(o, true);
                }
                self.contribute(l, true, &mut buyer);
            }
        }
        self.flush_buyer(&mut buyer);
    }

    /// Adds or withdraws one line and marks what it moves: its product
    /// here, its customer with the other lines of its order in `buyer`
    /// ([`LiveEngine::flush_buyer`] marks it once the order's lines are
    /// in).
    fn contribute(&mut self, l: u32, add: bool, buyer: &mut Option<BuyerLines>) {
        let g = self.store.products[self.store.lines[l as usize].product as usize].group;
        self.note_group(g);
        let t = self.store.contribute(l, add, self.clock.now);
        if t.customer != NO_CUSTOMER {
            let order = self.store.lines[l as usize].order;
            match buyer {
                Some(b) if b.order == order && b.add == add && b.signs == t.signs => {
                    b.lines.push(l);
                }
                _ => {
                    self.flush_buyer(buyer);
                    *buyer = Some(BuyerLines {
                        order,
                        add,
                        signs: t.signs,
                        lines: SmallVec::from_slice(&[l]),
                    });
                }
            }
        }
        self.store.rekey_sales(t.product, self.clock.now);
        let drift = add.then_some((t.signs, std::slice::from_ref(&l)));
        // The product's own share moves too, but every rule reading it
        // reads its sales (`input::SALES`): it comes in here, where the
        // line's drift and the pair's headroom can pass it by. Other
        // products' shares move through the group's total (the settle's
        // share candidates).
        self.touch_moved(Kind::Product, t.product, input::SALES, drift);
        if add {
            self.reschedule_added(Kind::Product, t.product, t.at);
        } else {
            self.reschedule(Kind::Product, t.product);
        }
        self.reschedule_group(t.group);
    }

    /// Marks the customer of the lines gathered in `buyer`, once for them
    /// all, and empties it.
    fn flush_buyer(&mut self, buyer: &mut Option<BuyerLines>) {
        let Some(b) = buyer.take() else {
            return;
        };
        let order = &self.store.orders[b.order as usize];
        let (c, at) = (order.customer, order.at);
        let drift = b.add.then_some((b.signs, b.lines.as_slice()));
        self.touch_moved(Kind::Customer, c, input::ORDERS | input::PROFIT, drift);
        self.tier_dirty.push(c);
        if b.add {
            self.reschedule_added(Kind::Customer, c, at);
        } else {
            self.reschedule(Kind::Customer, c);
        }
    }

    fn set_status(&mut self, order_id: &str, status: &str) {
        let o = self
            .store
            .order_slot(order_id)
            .expect("validated: a known order");
        let order = &mut self.store.orders[o as usize];
        let before = order.contributes();
        order.status = self.store.words.word(status);
        order.counting = counting_status(status);
        let after = order.contributes();
        if before != after {
            self.flip_order(o, after);
        }
    }

    /// Starts or stops an order's contribution as a whole.
    fn flip_order(&mut self, o: u32, on: bool) {
        if on {
            self.store.list_order(o, true);
        }
        let mut buyer = None;
        for l in self.store.orders[o as usize].lines.clone() {
            self.contribute(l, on, &mut buyer);
        }
        self.flush_buyer(&mut buyer);
        if !on {
            self.store.list_order(o, false);
            let c = self.store.orders[o as usize].customer;
            if c != NO_CUSTOMER {
                self.reschedule(Kind::Customer, c);
            }
        }
    }

    fn put_daily(&mut self, row: DailyRow) {
        let p = self
            .store
            .product_slot(&row.sku)
            .expect("validated: a known sku");
        let daily = &mut self.store.products[p as usize].daily;
        let new = Day {
            date: row.date,
            sessions: row.sessions,
            bsr: row.bsr,
            reviews: row.reviews,
            rating: row.rating,
        };
        let pos = daily.partition_point(|r| r.date < row.date);
        if daily.get(pos).is_some_and(|r| r.date == row.date) {
            if daily[pos] == new {
                return;
            }
            daily[pos] = new;
        } else {
            daily.insert(pos, new);
        }
        self.store.products[p as usize].daily_changed(pos);
        self.touch(Kind::Product, p, input::DAILY);
        self.reschedule(Kind::Product, p);
    }

    // ---- segments -------------------------------------------------------

    pub(crate) fn schema(&self, kind: Kind) -> Schema {
        let custom = match kind {
            Kind::Customer => &self.store.customer_custom,
            Kind::Product => &self.store.product_custom,
        };
        Schema::with_custom(kind, custom.iter().cloned())
    }

    /// Parses and checks a rule of a kind against the segments there are,
    /// without installing it (the live count while a rule is edited).
    pub fn check_rule(&self, kind: Kind, rule: &RuleSource) -> Result<(Expr, String), RuleError> {
        let schema = self.schema(kind);
        let seg = strata_data::SavedSegment {
            name: String::new(),
            kind: match kind {
                Kind::Customer => strata_data::SegmentKind::Customer,
                Kind::Product => strata_data::SegmentKind::Product,
            },
            rule: rule.clone(),
            description: None,
        };
        let (expr, source) = strata_engine::parse_saved_rule(&seg, &schema).map_err(|mut e| {
            e.segment = None;
            e
        })?;
        for r in strata_lang::segment_refs(&expr, kind) {
            let refuse = |message: String| RuleError {
                diagnostic: Diagnostic {
                    span: r.span,
                    message,
                    help: None,
                },
                source: source.clone(),
                segment: None,
            };
            match self.seg_ids.get(&r.name) {
                None => return Err(refuse(format!("unknown {} segment '{}'", r.kind, r.name))),
                Some(&s) => {
                    let other = self.segments[s as usize].as_ref().map(|s| s.kind);
                    if other != Some(r.kind) {
                        return Err(refuse(format!(
                            "segment '{}' is a {} segment; a {} segment is needed here",
                            r.name,
                            other.unwrap_or(r.kind),
                            r.kind
                        )));
                    }
                }
            }
        }
        Ok((expr, source))
    }

    fn put_segment(
        &mut self,
        name: String,
        kind: Kind,
        source: RuleSource,
    ) -> Result<(), LiveError> {
        let (expr, text) = self.check_rule(kind, &source).map_err(|mut e| {
            e.segment = Some(name.clone());
            e
        })?;
        let existing = self.seg_ids.get(&name).copied();
        if let Some(s) = existing {
            let old_kind = self.segments[s as usize].as_ref().map(|s| s.kind);
            let users = self.users_of(s);
            if old_kind != Some(kind) && !users.is_empty() {
                return Err(LiveError::InUse { name, users });
            }
        }
        let names = SegNames { engine: self };
        let mut rule = rule::compile(kind, &expr, &self.clock.cal.tz, &names)
            .map_err(|e| strata_engine::Internal::new(e.to_string()))?;
        let store = &mut self.store;
        rule.node.filters_mut(&mut |f| {
            if f.sku.is_some() || f.category.is_some() || f.brand.is_some() {
                f.products = Some(store.filter_slot(&f.sku, &f.category, &f.brand));
            }
        });
        // A segment reaching itself through its references is refused.
        if let Some(s) = existing {
            let mut stack: Vec<u32> = rule.refs.iter().map(|r| r.0).collect();
            let mut seen = vec![false; self.segments.len()];
            while let Some(x) = stack.pop() {
                if x == s {
                    let span = strata_lang::segment_refs(&expr, kind)
                        .first()
                        .map_or(Span::default(), |r| r.span);
                    return Err(RuleError {
                        diagnostic: Diagnostic {
                            span,
                            message: format!("segment references form a cycle through '{name}'"),
                            help: None,
                        },
                        source: text,
                        segment: Some(name),
                    }
                    .into());
                }
                if std::mem::replace(&mut seen[x as usize], true) {
                    continue;
                }
                if let Some(seg) = &self.segments[x as usize] {
                    stack.extend(seg.rule.refs.iter().map(|r| r.0));
                }
            }
        }
        let s = match existing {
            Some(s) => s,
            None => {
                let s = self.segments.len() as u32;
                self.segments.push(None);
                let slot = self.members.add_slot();
                debug_assert_eq!(slot, s, "member slots follow segment slots");
                self.dependents.push(Vec::new());
                self.dirty.push(Vec::new());
                self.seg_ids.insert(name.clone(), s);
                s
            }
        };
        let old_kind = self.segments[s as usize].as_ref().map(|old| old.kind);
        let kind_changed = old_kind.is_some_and(|old| old != kind);
        if let Some(old) = old_kind.filter(|_| kind_changed) {
            self.members.clear(k(old), s);
        }
        let history = self.segments[s as usize]
            .take()
            .filter(|_| !kind_changed)
            .map(|old| old.history)
            .unwrap_or_default();
        self.segments[s as usize] = Some(Segment {
            name: Arc::from(name.as_str()),
            kind,
            text,
            expr,
            rule,
            history,
        });
        self.quiet.reset(s);
        self.headroom.reset(s);
        self.rebuild_graph();
        let n = match kind {
            Kind::Customer => self.store.customers.len(),
            Kind::Product => self.store.products.len(),
        };
        let all: Vec<u32> = (0..n as u32).collect();
        self.dirty[s as usize].extend(all);
        // The history gets today's count even when nobody enters.
        let count = self.members.len(s);
        if let Some(seg) = self.segments[s as usize].as_mut() {
            seg.history.entry(self.clock.today).or_insert(count);
        }
        Ok(())
    }

    fn delete_segment(&mut self, name: &str) {
        let Some(s) = self.seg_ids.remove(name) else {
            return;
        };
        if let Some(old) = self.segments[s as usize].take() {
            self.members.clear(k(old.kind), s);
        }
        self.dirty[s as usize].clear();
        self.quiet.reset(s);
        self.headroom.reset(s);
        self.rebuild_graph();
    }

    /// Rebuilds the dependency index, the reference graph and its order,
    /// and the time dependencies, after segments changed; reschedules
    /// every entity when what time changes moved.
    fn rebuild_graph(&mut self) {
        let mut index: [[Vec<u32>; input::COUNT]; 2] = Default::default();
        let mut dependents = vec![Vec::new(); self.segments.len()];
        // Per kind: exact offsets with their flags, and day dependencies.
        type Deps = (BTreeMap<i64, u8>, std::collections::BTreeSet<(i64, i64)>);
        let mut deps: [Deps; 2] = Default::default();
        let mut thresholds = Vec::new();
        let mut share = false;
        for (s, seg) in self.segments.iter().enumerate() {
            let Some(seg) = seg else { continue };
            let kk = k(seg.kind);
            for (bit, list) in index[kk].iter_mut().enumerate() {
                if seg.rule.inputs & (1 << bit) != 0 {
                    list.push(s as u32);
                }
            }
            for &(r, via) in &seg.rule.refs {
                let drift = rule::ref_drift(&seg.rule.node, r);
                dependents[r as usize].push((s as u32, via, drift));
            }
            for &(off, flags) in &seg.rule.exact {
                *deps[kk].0.entry(off).or_insert(0) |= flags;
            }
            deps[kk].1.extend(seg.rule.days.iter().copied());
            thresholds.extend(seg.rule.share_thresholds.iter().copied());
            share |= seg.rule.inputs & input::SHARE != 0;
        }
        // Operands that several segments share are computed once per
        // entity per settle.
        let mut seen: FxHashMap<String, (u32, u32)> = FxHashMap::default();
        for seg in self.segments.iter_mut().flatten() {
            let kind = seg.kind;
            rule::each_cond(&mut seg.rule.node, &mut |op, _| {
                if let Some(key) = rule::memo_key(kind, op) {
                    let next = seen.len() as u32;
                    seen.entry(key).or_insert((next, 0)).1 += 1;
                }
            });
        }
        for seg in self.segments.iter_mut().flatten() {
            let kind = seg.kind;
            rule::each_cond(&mut seg.rule.node, &mut |op, memo| {
                *memo = rule::memo_key(kind, op)
                    .and_then(|key| seen.get(&key))
                    .filter(|(_, uses)| *uses >= 2)
                    .map(|(slot, _)| *slot);
            });
        }
        // Kahn's order by depth; product segments never read customer
        // ones, so putting products first keeps every reference before its
        // reader.
        let mut levels = Vec::new();
        for kind in [Kind::Product, Kind::Customer] {
            let mut pending: Vec<usize> = vec![0; self.segments.len()];
            let mut ready = Vec::new();
            for (s, seg) in self.segments.iter().enumerate() {
                let Some(seg) = seg else { continue };
                if seg.kind != kind {
                    continue;
                }
                pending[s] = seg
                    .rule
                    .refs
                    .iter()
                    .filter(|&&(r, _)| {
                        self.segments[r as usize]
                            .as_ref()
                            .is_some_and(|x| x.kind == kind)
                    })
                    .count();
                if pending[s] == 0 {
                    ready.push(s as u32);
                }
            }
            while !ready.is_empty() {
                let mut next = Vec::new();
                for &s in &ready {
                    for &(d, _, _) in &dependents[s as usize] {
                        if self.segments[d as usize]
                            .as_ref()
                            .is_some_and(|x| x.kind == kind)
                        {
                            pending[d as usize] -= 1;
                            if pending[d as usize] == 0 {
                                next.push(d);
                            }
                        }
                    }
                }
                ready.sort_unstable();
                levels.push(Level {
                    kind,
                    segs: std::mem::replace(&mut ready, next),
                });
            }
        }
        self.index = index;
        self.dependents = dependents;
        self.levels = levels;

        thresholds.sort_unstable();
        thresholds.dedup();
        // As fractions of the total (a rule's share is a percentage):
        // one division here, not two per threshold and moved total. A
        // literal of more places than a fraction can hold looks at the
        // whole group.
        self.share_thresholds = thresholds
            .into_iter()
            .map(|c| {
                let f = c / Decimal::ONE_HUNDRED;
                (f, f * Decimal::ONE_HUNDRED == c)
            })
            .collect();
        self.store.set_track_sales(share, self.clock.now);
        let [(ce, cd), (pe, pd)] = deps;
        let new = [
            TimeDeps {
                exact: ce.into_iter().collect(),
                days: cd.into_iter().collect(),
            },
            TimeDeps {
                exact: pe.into_iter().collect(),
                days: pd.into_iter().collect(),
            },
        ];
        for kind in [Kind::Customer, Kind::Product] {
            let kk = k(kind);
            let mut exact_segs = vec![Vec::new(); new[kk].exact.len()];
            let mut day_segs = vec![Vec::new(); new[kk].days.len()];
            for (s, seg) in self.segments.iter().enumerate() {
                let Some(seg) = seg.as_ref().filter(|x| x.kind == kind) else {
                    continue;
                };
                for (&(off, flags), &moves) in seg.rule.exact.iter().zip(&seg.rule.exact_moves) {
                    if let Ok(i) = new[kk].exact.binary_search_by_key(&off, |e| e.0) {
                        exact_segs[i].push((s as u32, flags, moves));
                    }
                }
                for (dep, &moves) in seg.rule.days.iter().zip(&seg.rule.day_moves) {
                    if let Ok(i) = new[kk].days.binary_search(dep) {
                        day_segs[i].push((s as u32, 1, moves));
                    }
                }
            }
            self.exact_segs[kk] = exact_segs;
            self.day_segs[kk] = day_segs;
            if self.time_deps[kk].exact != new[kk].exact || self.time_deps[kk].days != new[kk].days
            {
                self.time_deps[kk] = new[kk].clone();
                // The kept instants index the old dependencies.
                let n = self.wake[kk].len() as u32;
                self.kept[kk] = vec![Kept::NONE; n as usize * new[kk].len()];
                for e in 0..n {
                    self.reschedule(kind, e);
                }
            }
        }
    }

    // ---- tiers ------------------------------------------------------------

    fn put_tiers(&mut self, scheme: Option<TierScheme>, delete: Option<Option<String>>) {
        if let Some(scheme) = scheme {
            let mut scheme = scheme;
            scheme.tiers.sort_by_key(|t| std::cmp::Reverse(t.threshold));
            match self
                .store
                .tiers
                .iter_mut()
                .find(|t| t.marketplace == scheme.marketplace)
            {
                Some(t) => *t = scheme,
                None => self.store.tiers.push(scheme),
            }
        }
        if let Some(market) = delete {
            self.store.tiers.retain(|t| t.marketplace != market);
        }
        self.tier_dirty.extend(0..self.store.customers.len() as u32);
    }

    // ---- time -------------------------------------------------------------

    fn reschedule(&mut self, kind: Kind, e: u32) {
        let next = self.next_wake_of(kind, e, Rewake::All);
        self.queue_wake(kind, e, next);
    }

    /// [`LiveEngine::reschedule`] after a line at `t` was added.
    fn reschedule_added(&mut self, kind: Kind, e: u32, t: Nanos) {
        let next = self.next_wake_of(kind, e, Rewake::Added(t));
        self.queue_wake(kind, e, next);
    }

    /// Brings an entity's kept instants up to date and returns the
    /// earliest, with the dependencies that give it.
    ///
    /// `All` recomputes every entry from all the records. `Added(t)` takes
    /// each entry's earlier with what that one new record gives: adding a
    /// record removes no instant that matters (a superseded `LAST` instant
    /// only costs a wake that finds nothing), so one record is read
    /// instead of a search per dependency. `Due(at)` recomputes only the
    /// entries that came due at `at`: the others' records have not moved.
    fn next_wake_of(&mut self, kind: Kind, e: u32, how: Rewake) -> Nanos {
        let kk = k(kind);
        let deps = &self.time_deps[kk];
        let n = deps.len();
        let kept = &mut self.kept[kk][e as usize * n..(e as usize + 1) * n];
        let alive = match kind {
            Kind::Customer => self.store.customers[e as usize].alive,
            Kind::Product => self.store.products[e as usize].alive,
        };
        if n == 0 || !alive {
            kept.fill(Kept::NONE);
            return NONE;
        }
        let (now, cal) = (self.clock.now, &*self.clock.cal);
        let none: &[Date] = &[];
        let at = |x: &Nanos| *x;
        let day = |d: &Date| *d;
        let due = |k: &Kept| match how {
            Rewake::Due(t) => k.at <= t,
            _ => true,
        };
        let found = |k: &mut Kept, x: Option<(Nanos, u8)>| {
            (k.at, k.hits) = x.unwrap_or((NONE, 0));
        };
        match (how, kind) {
            (Rewake::Added(t), _) => {
                for (i, k) in kept.iter_mut().enumerate() {
                    // An exact dependency finds the instant `t - off` (or a
                    // nanosecond after) at the earliest: past the kept one,
                    // the line changes nothing there.
                    if let Some(&(off, _)) = deps.exact.get(i)
                        && t.checked_sub(off).is_some_and(|x| x > k.at)
                    {
                        continue;
                    }
                    let one = (&[t][..], &at);
                    let Some((x, b)) =
                        next_of(deps, (i, &mut 0), now, cal, one, None, (none, &day))
                    else {
                        continue;
                    };
                    if x < k.at {
                        (k.at, k.hits) = (x, b);
                    } else if x == k.at {
                        k.hits |= b;
                    }
                }
            }
            (Rewake::All | Rewake::Due(_), Kind::Customer) => {
                let c = &self.store.customers[e as usize];
                let times = (c.orders.as_slice(), &|x: &(Nanos, u32)| x.0);
                for (i, k) in kept.iter_mut().enumerate().filter(|(_, k)| due(k)) {
                    let dates = (none, &day);
                    let x = next_of(deps, (i, &mut k.hint), now, cal, times, c.created_at, dates);
                    found(k, x);
                }
            }
            (Rewake::All | Rewake::Due(_), Kind::Product) => {
                let p = &self.store.products[e as usize];
                let times = (p.lines.as_slice(), &|l: &crate::store::PLine| l.at);
                for (i, k) in kept.iter_mut().enumerate().filter(|(_, k)| due(k)) {
                    let dates = (p.daily_dates.as_slice(), &day);
                    let x = next_of(deps, (i, &mut k.hint), now, cal, times, p.created_at, dates);
                    found(k, x);
                }
            }
        }
        let next = kept.iter().map(|k| k.at).min().unwrap_or(NONE);
        #[cfg(debug_assertions)]
        self.check_kept(kind, e);
        next
    }

    /// The reference: every kept instant of an entity is no later than
    /// what all its records give for that dependency.
    #[cfg(debug_assertions)]
    fn check_kept(&self, kind: Kind, e: u32) {
        let kk = k(kind);
        let deps = &self.time_deps[kk];
        let n = deps.len();
        let (now, cal) = (self.clock.now, &*self.clock.cal);
        let none: &[Date] = &[];
        for i in 0..n {
            let truth = match kind {
                Kind::Customer => {
                    let c = &self.store.customers[e as usize];
                    let times = (c.orders.as_slice(), &|x: &(Nanos, u32)| x.0);
                    let dates = (none, &|d: &Date| *d);
                    next_of(deps, (i, &mut 0), now, cal, times, c.created_at, dates)
                }
                Kind::Product => {
                    let p = &self.store.products[e as usize];
                    let times = (p.lines.as_slice(), &|l: &crate::store::PLine| l.at);
                    let dates = (p.daily.as_slice(), &|r: &Day| r.date);
                    next_of(deps, (i, &mut 0), now, cal, times, p.created_at, dates)
                }
            };
            let kept = self.kept[kk][e as usize * n + i].at;
            debug_assert!(
                kept <= truth.map_or(NONE, |x| x.0),
                "{kind:?} {e}: kept wake {kept} of dependency {i} after the true {truth:?}"
            );
        }
    }

    fn queue_wake(&mut self, kind: Kind, e: u32, at: Nanos) {
        let kk = k(kind);
        let queued = self.wake[kk][e as usize];
        // Only an earlier wake-up is pushed. A later one keeps the entry
        // already queued: when it comes due it finds nothing to evaluate
        // (no dependency hits that instant) and queues the right one; this
        // keeps the schedule from filling with superseded entries.
        if at < queued {
            self.wake[kk][e as usize] = at;
            if at != NONE {
                let tag = match kind {
                    Kind::Customer => CUSTOMER_WAKES,
                    Kind::Product => PRODUCT_WAKES,
                };
                self.heap.push((at, tag, e));
            }
        }
    }

    /// Marks dirty the segments whose time dependencies a wake hit, except
    /// where the entity stands on the side that time crossing those
    /// dependencies cannot move it from (a product outside `units_30d >=
    /// 10` stays out as its lines age).
    fn touch_due(&mut self, kind: Kind, e: u32, at: Nanos, (exact, days): crate::wake::Hits) {
        let kk = k(kind);
        let negative = self.store.negative_revenue;
        let hit = exact
            .iter()
            .map(|&(i, bits)| (&self.exact_segs[kk][i], bits));
        let hit = hit.chain(days.iter().map(|&i| (&self.day_segs[kk][i], 1)));
        for (segs, bits) in hit {
            for &(s, flags, moves) in segs {
                let bits = flags & bits;
                if bits != 0
                    && moves.can_move(bits, self.members.contains(kk, s, e), negative)
                    && !self.is_quiet(kind, s, e, at)
                {
                    self.dirty[s as usize].push(e);
                }
            }
        }
    }

    /// An evaluator of the settled state, without the per-settle memo.
    fn reader(&self) -> Evaluator<'_> {
        Evaluator {
            store: &self.store,
            clock: &self.clock,
            members: &self.members,
            memo: None,
            tiers: Some(&self.tiers),
        }
    }

    /// Whether the lines added to product `e` so far are short of pair
    /// `(s, e)`'s headroom ([`LiveEngine::headroom`]). Debug builds check
    /// the skip against an evaluation.
    fn held_back(&self, s: u32, e: u32) -> bool {
        let product = &self.store.products[e as usize];
        let mark = self.headroom.get(s, e);
        let held = crate::headroom::short_of(mark, &product.added, || {
            let weight = self.segments[s as usize]
                .as_ref()
                .map_or(u64::MAX, |seg| seg.rule.share_weight);
            self.share_count(e, weight, true)
        });
        #[cfg(debug_assertions)]
        if held && let Some(seg) = &self.segments[s as usize] {
            debug_assert!(
                !(product.alive && self.reader().product(&seg.rule.node, e)),
                "product {e} held back from segment {s} (mark {mark:#x}) though it entered"
            );
        }
        held
    }

    /// Product `e`'s [`crate::headroom::share_counter`] for a rule of
    /// share weight `weight`, rounded up or down.
    fn share_count(&self, e: u32, weight: u64, up: bool) -> u64 {
        let product = &self.store.products[e as usize];
        let fallen = self.store.groups[product.group as usize].fallen;
        crate::headroom::share_counter(&product.added, fallen, weight, up)
    }

    /// Whether time alone cannot have moved product pair `(s, e)` by `at`
    /// ([`LiveEngine::quiet`]). Debug builds check the skip against an
    /// evaluation.
    fn is_quiet(&self, kind: Kind, s: u32, e: u32, at: Nanos) -> bool {
        if kind != Kind::Product {
            return false;
        }
        let q = self.quiet.get(s, e);
        let quiet = at < q;
        #[cfg(debug_assertions)]
        if quiet && let Some(seg) = &self.segments[s as usize] {
            let ev = self.reader();
            let truth = self.store.products[e as usize].alive && ev.product(&seg.rule.node, e);
            debug_assert_eq!(
                truth,
                self.members.contains(k(kind), s, e),
                "product {e} skipped in segment {s} at {at} (quiet until {q}) though it moved"
            );
        }
        quiet
    }

    /// What a wake of an entity at `at` hits: the dependencies whose kept
    /// instant has come, with the flags kept beside it. Debug builds check
    /// it against searches of the records ([`crate::wake::hits`]).
    fn due_hits(&self, kind: Kind, e: u32, at: Nanos) -> crate::wake::Hits {
        let kk = k(kind);
        let deps = &self.time_deps[kk];
        let n = deps.len();
        let mut found: crate::wake::Hits = Default::default();
        let kept = &self.kept[kk][e as usize * n..(e as usize + 1) * n];
        for (i, kept) in kept.iter().enumerate().filter(|(_, k)| k.at <= at) {
            match i.checked_sub(deps.exact.len()) {
                None => found.0.push((i, kept.hits)),
                Some(j) => found.1.push(j),
            }
        }
        #[cfg(debug_assertions)]
        {
            // The reference searches every dependency twice: over the
            // records as they are, and as they stood before this instant.
            // Records at `at` itself (orders that came due just now) were
            // touched by their own change, as a line applied at `now` is: a
            // hit only one view has is theirs (they make it, or, as a newer
            // last order, make it moot). A hit both views have must be found.
            let cal = &*self.clock.cal;
            let (times, created, dates): (Vec<Nanos>, _, &[Day]) = match kind {
                Kind::Customer => {
                    let c = &self.store.customers[e as usize];
                    (c.orders.iter().map(|x| x.0).collect(), c.created_at, &[])
                }
                Kind::Product => {
                    let p = &self.store.products[e as usize];
                    (
                        p.lines.iter().map(|l| l.at).collect(),
                        p.created_at,
                        &p.daily,
                    )
                }
            };
            let before: Vec<Nanos> = times.iter().copied().filter(|&t| t != at).collect();
            let search = |times: &[Nanos]| {
                let dates = (dates, |r: &Day| r.date);
                crate::wake::hits(deps, at, cal, (times, |t| *t), created, dates)
            };
            let (now_exact, now_days) = search(&times);
            let (before_exact, before_days) = search(&before);
            for (i, bits) in before_exact {
                let both = now_exact
                    .iter()
                    .find(|x| x.0 == i)
                    .map_or(0, |x| x.1 & bits);
                let seen = found.0.iter().find(|x| x.0 == i).map_or(0, |x| x.1);
                debug_assert_eq!(both & !seen, 0, "a wake-up missed dependency {i}");
            }
            for i in before_days {
                if now_days.contains(&i) {
                    debug_assert!(found.1.contains(&i), "a wake-up missed day dependency {i}");
                }
            }
        }
        found
    }

    fn reschedule_group(&mut self, g: u32) {
        let at = self.store.groups[g as usize]
            .window
            .first_key_value()
            .map_or(NONE, |(&(at, _), _)| {
                at.saturating_add(30 * strata_engine::clock::NANOS_PER_DAY)
                    .saturating_add(1)
            });
        if self.group_wake[g as usize] != at {
            self.group_wake[g as usize] = at;
            if at != NONE {
                self.heap.push((at, GROUP_AGES, g));
            }
        }
    }

    /// Moves the clock to `to`, processing in time order every instant in
    /// between where time changes something; each event carries its own
    /// instant.
    pub fn advance_to(&mut self, to: Nanos) -> Result<Vec<Event>, LiveError> {
        if to < self.clock.now {
            return Err(invalid(format!(
                "the clock cannot go back (now {}, asked {})",
                self.clock.now, to
            )));
        }
        self.cause = Cause::Time;
        while let Some((at, _, _)) = self.heap.peek() {
            if at > to {
                break;
            }
            if at > self.clock.now {
                self.clock.move_to(at);
            }
            while let Some((t, tag, id)) = self.heap.peek() {
                if t != at {
                    break;
                }
                self.heap.pop();
                self.due(tag, id, at);
            }
            self.settle();
        }
        if to > self.clock.now {
            self.clock.move_to(to);
        }
        Ok(std::mem::take(&mut self.events))
    }

    /// The instant of the next scheduled entry, if any.
    pub fn next_due(&self) -> Option<Nanos> {
        self.heap.peek().map(|(at, _, _)| at)
    }

    fn due(&mut self, tag: u8, id: u32, at: Nanos) {
        match tag {
            ORDER_DUE => {
                let order = &mut self.store.orders[id as usize];
                if order.active || order.at != at {
                    return;
                }
                order.active = true;
                if order.counting {
                    self.flip_order(id, true);
                }
            }
            GROUP_AGES => {
                if self.group_wake[id as usize] != at {
                    return;
                }
                self.group_wake[id as usize] = NONE;
                self.note_group(id);
                self.store.age_group(id, at);
                self.reschedule_group(id);
            }
            PRODUCT_WAKES | CUSTOMER_WAKES => {
                let kind = if tag == PRODUCT_WAKES {
                    Kind::Product
                } else {
                    Kind::Customer
                };
                if self.wake[k(kind)][id as usize] != at {
                    return;
                }
                self.wake[k(kind)][id as usize] = NONE;
                let hits = self.due_hits(kind, id, at);
                // The key of `by_sales` is the 30-day sum, which time moves
                // only where a line leaves that window: a dependency of
                // every rule reading `revenue_share` (the only reader of
                // the key), so only wakes it hits rekey.
                let window_30 = -30 * strata_engine::clock::NANOS_PER_DAY;
                let exact = &self.time_deps[k(kind)].exact;
                if kind == Kind::Product && hits.0.iter().any(|&(i, _)| exact[i].0 == window_30) {
                    self.store.rekey_sales(id, at);
                }
                self.touch_due(kind, id, at, hits);
                let next = self.next_wake_of(kind, id, Rewake::Due(at));
                self.queue_wake(kind, id, next);
            }
            _ => {}
        }
    }

    // ---- settling -----------------------------------------------------------

    /// Re-evaluates every dirty (segment, entity) pair, in reference order,
    /// and records the events.
    fn settle(&mut self) {
        self.memo.borrow_mut().invalidate();
        self.share_candidates();
        let mut tiers_done = false;
        for i in 0..self.levels.len() {
            if self.levels[i].kind == Kind::Customer && !tiers_done {
                self.settle_tiers();
                tiers_done = true;
            }
            self.settle_level(i);
        }
        if !tiers_done {
            self.settle_tiers();
        }
    }

    /// A group total that moved can carry a product's share over a
    /// threshold only if `100 × sales_30d` lies between the threshold times
    /// the old and the new total: those products are a range of the
    /// group's products ordered by sales, so the rest are not looked at.
    fn share_candidates(&mut self) {
        // Both buffers go back empty, for their capacity: a hash map's
        // first insert allocates, and this runs at every settle.
        let mut moved = std::mem::take(&mut self.group_moved);
        let mut touched = std::mem::take(&mut self.share_touched);
        if self.store.track_sales {
            self.share_range(&moved, &mut touched);
        }
        for &p in &touched {
            self.touch(Kind::Product, p, input::SHARE);
        }
        debug_assert!(self.group_moved.is_empty() && self.share_touched.is_empty());
        moved.clear();
        touched.clear();
        self.group_moved = moved;
        self.share_touched = touched;
    }

    /// [`LiveEngine::share_candidates`]' products, for the groups whose
    /// total moved (with the total before).
    fn share_range(&self, moved: &FxHashMap<u32, Decimal>, touched: &mut Vec<u32>) {
        let eps = Decimal::new(1, 20);
        for (&g, &old) in moved {
            let group = &self.store.groups[g as usize];
            let new = group.total;
            if new == old {
                continue;
            }
            let crosses_zero =
                old.is_zero() || new.is_zero() || old.is_sign_negative() != new.is_sign_negative();
            if crosses_zero {
                touched.extend(group.products.iter().copied());
                continue;
            }
            #[cfg(debug_assertions)]
            for &p in &group.products {
                let now = self.clock.now;
                debug_assert_eq!(
                    self.store.sales_key[p as usize],
                    self.store.sales_30d(p, now),
                    "product {p}'s by_sales key is stale"
                );
            }
            for &(c, exact) in &self.share_thresholds {
                if !exact {
                    touched.extend(group.products.iter().copied());
                    continue;
                }
                let (a, b) = (c * old, c * new);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let (lo, hi) = (sales_rank(lo - eps), sales_rank(hi + eps));
                let range = group.by_sales.range((lo, 0)..=(hi, u32::MAX));
                touched.extend(range.map(|&(_, p)| p));
            }
        }
    }

    fn settle_tiers(&mut self) {
        let mut list = std::mem::take(&mut self.tier_dirty);
        if list.is_empty() {
            return;
        }
        list.sort_unstable();
        list.dedup();
        let mut moved = Vec::new();
        {
            let ev = Evaluator {
                store: &self.store,
                clock: &self.clock,
                members: &self.members,
                memo: Some(&self.memo),
                tiers: None,
            };
            for &c in &list {
                let customer = &self.store.customers[c as usize];
                let tier = if customer.alive {
                    ev.tier(customer)
                } else {
                    None
                };
                if tier != self.tiers[c as usize].as_deref() {
                    moved.push((c, tier.map(str::to_owned)));
                }
            }
        }
        for (c, tier) in moved {
            let tier = tier.map(|t| self.tier_name(&t));
            let from = std::mem::replace(&mut self.tiers[c as usize], tier.clone());
            self.events.push(Event::Tier {
                at: self.clock.now,
                cause: self.cause,
                customer: self.ids[0][c as usize].clone(),
                from,
                to: tier,
            });
            self.touch(Kind::Customer, c, input::TIER);
        }
        // Back empty, for its capacity (nothing above marks tiers).
        debug_assert!(self.tier_dirty.is_empty());
        list.clear();
        self.tier_dirty = list;
    }

    /// The one shared copy of a tier's name: every customer of a tier
    /// holds the same, so comparing or reading a customer's tier reads
    /// text already in cache (a copy each was a heap block, and a cache
    /// miss, per customer).
    fn tier_name(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.tier_names.iter().find(|t| ***t == *name) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(name);
        self.tier_names.push(t.clone());
        t
    }

    /// Evaluates the dirty pairs of one level entity by entity: the
    /// entity's records are fetched once for all its segments, and operands
    /// its segments share are computed once ([`crate::eval::MemoTable`]).
    fn settle_level(&mut self, level: usize) {
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        for &s in &self.levels[level].segs {
            pairs.extend(
                self.dirty[s as usize]
                    .drain(..)
                    .map(|e| (u64::from(e) << 32) | u64::from(s)),
            );
        }
        if pairs.is_empty() {
            self.pairs = pairs;
            return;
        }
        pairs.sort_unstable();
        pairs.dedup();
        let kind = self.levels[level].kind;
        if kind == Kind::Product {
            // The products about to be evaluated get their 30-day buyers
            // brought to `now` (the evaluator reads them without a scan).
            let now = self.clock.now;
            for &pair in &pairs {
                self.store.products[(pair >> 32) as usize].catch_up_buyers(now);
            }
        }
        self.evaluations += pairs.len() as u64;
        // (segment, entity, enters).
        let mut flips = std::mem::take(&mut self.flips);
        flips.clear();
        let timed = self.cause == Cause::Time;
        {
            let ev = Evaluator {
                store: &self.store,
                clock: &self.clock,
                members: &self.members,
                memo: Some(&self.memo),
                tiers: Some(&self.tiers),
            };
            let members = &self.members;
            for &pair in &pairs {
                let (e, s) = ((pair >> 32) as u32, pair as u32);
                let Some(seg) = &self.segments[s as usize] else {
                    continue;
                };
                let now_in = match kind {
                    Kind::Customer => {
                        self.store.customers[e as usize].alive && ev.customer(&seg.rule.node, e)
                    }
                    Kind::Product => {
                        let alive = self.store.products[e as usize].alive;
                        // Only wakes look ahead: a change's evaluation
                        // leaves the pair to its next wake.
                        let (truth, q) = match alive {
                            false => (false, Nanos::MIN),
                            true if timed => ev.product_quiet(&seg.rule.node, e),
                            true => (ev.product(&seg.rule.node, e), Nanos::MIN),
                        };
                        self.quiet.set(s, e, q);
                        match (alive, truth) {
                            (true, false) if timed => {}
                            (true, false) => {
                                let h = ev.product_headroom(&seg.rule.node, e);
                                let added = &self.store.products[e as usize].added;
                                let mark = h.mark(added, || {
                                    self.share_count(e, seg.rule.share_weight, false)
                                });
                                self.headroom.set(s, e, mark);
                            }
                            _ => self.headroom.set(s, e, NO_MARK),
                        }
                        truth
                    }
                };
                if now_in != members.contains(k(kind), s, e) {
                    flips.push((s, e, now_in));
                }
            }
        }
        self.pairs = pairs;
        // Events come out segment by segment (a level's segments are in
        // slot order), as a segment-major settle would give them.
        flips.sort_unstable();
        for group in flips.chunk_by(|a, b| a.0 == b.0) {
            self.flip(group[0].0, kind, group);
        }
        self.flips = flips;
    }

    /// Records segment `s`'s entries and exits (`(s, entity, enters)`), and
    /// marks its dependents.
    fn flip(&mut self, s: u32, kind: Kind, flips: &[(u32, u32, bool)]) {
        let Some(seg) = &self.segments[s as usize] else {
            return;
        };
        let name = seg.name.clone();
        self.events.reserve(flips.len());
        for &(_, e, enter) in flips {
            if enter {
                self.members.insert(k(kind), s, e);
            } else {
                self.members.remove(k(kind), s, e);
            }
            self.events.push(Event::Member {
                at: self.clock.now,
                cause: self.cause,
                kind,
                segment: name.clone(),
                entity: self.ids[k(kind)][e as usize].clone(),
                enter,
            });
        }
        let count = self.members.len(s);
        if let Some(seg) = self.segments[s as usize].as_mut() {
            // The clock only moves forward: today is the last entry or
            // a new one after it, found without a search from the root.
            match seg.history.last_entry() {
                Some(mut last) if *last.key() == self.clock.today => {
                    last.insert(count);
                }
                _ => {
                    seg.history.insert(self.clock.today, count);
                }
            }
        }
        // A dependent that a flip can only move one way is left alone
        // where the entity already stands on that side, as a line's touch
        // is ([`LiveEngine::touch_moved`]): every other change of this
        // step marks the pair itself, and changes that each move it one
        // way move it that way together.
        let dependents = self.dependents[s as usize].clone();
        for (d, via, drift) in dependents {
            // The kind of `d`'s entities.
            let dk = match via {
                Via::InSegment => k(kind),
                Via::Bought => k(Kind::Customer),
            };
            for &(_, e, enter) in flips {
                let drift = if enter { drift } else { drift.flip() };
                let members = &self.members;
                let moves = |x: &u32| !stays(drift, || members.contains(dk, d, *x));
                match via {
                    Via::InSegment => self.dirty[d as usize].extend(Some(e).filter(moves)),
                    Via::Bought => {
                        let buyers = self.store.buyers_since(e, self.bought_since(d, s));
                        self.dirty[d as usize].extend(buyers.into_iter().filter(moves));
                    }
                }
            }
        }
    }

    /// The earliest line instant through which segment `d` can see product
    /// segment `s`'s members (its `purchased(in_segment: s, since: ..)`
    /// calls); `Nanos::MIN` when one of them has no lower bound.
    fn bought_since(&self, d: u32, s: u32) -> Nanos {
        let Some(seg) = &self.segments[d as usize] else {
            return Nanos::MIN;
        };
        let ev = Evaluator {
            store: &self.store,
            clock: &self.clock,
            members: &self.members,
            memo: None,
            tiers: None,
        };
        seg.rule
            .bought_since
            .iter()
            .filter(|(x, _)| *x == s)
            .map(|(_, b)| b.map_or(Nanos::MIN, |b| ev.bound(b)))
            .min()
            .unwrap_or(Nanos::MIN)
    }

    // ---- reading ------------------------------------------------------------

    fn slot(&self, name: &str) -> Option<u32> {
        self.seg_ids.get(name).copied()
    }

    /// The members of a segment, as slots (see [`LiveEngine::id`]), in
    /// ascending order. It reads the segment's bit in every entity's row
    /// of memberships: for readers, not for a hot path.
    pub fn members(&self, name: &str) -> Option<Vec<u32>> {
        let s = self.slot(name)?;
        let kind = self.segments[s as usize].as_ref()?.kind;
        Some(self.members.members(k(kind), s).collect())
    }

    /// The ids of a segment's members, sorted.
    pub fn member_ids(&self, name: &str) -> Option<Vec<&str>> {
        let s = self.slot(name)?;
        let kind = self.segments[s as usize].as_ref()?.kind;
        let mut ids: Vec<&str> = self
            .members
            .members(k(kind), s)
            .map(|e| self.id(kind, e))
            .collect();
        ids.sort_unstable();
        Some(ids)
    }

    pub fn count(&self, name: &str) -> Option<u64> {
        self.slot(name).map(|s| self.members.len(s))
    }

    pub fn id(&self, kind: Kind, e: u32) -> &str {
        &self.ids[k(kind)][e as usize]
    }

    /// Segments: name, kind, normalised rule text.
    pub fn segments(&self) -> impl Iterator<Item = (&str, Kind, &str)> {
        self.segments
            .iter()
            .flatten()
            .map(|s| (&*s.name, s.kind, s.text.as_str()))
    }

    /// What refers to a segment.
    pub fn uses(&self, name: &str) -> Vec<String> {
        self.slot(name).map_or_else(Vec::new, |s| self.users_of(s))
    }

    /// A segment's rule as a checked, normalised tree (for the JSON form).
    pub fn segment_rule(&self, name: &str) -> Option<(Kind, &Expr)> {
        let seg = self.segments[self.slot(name)? as usize].as_ref()?;
        Some((seg.kind, &seg.expr))
    }

    /// An order's status and number of lines, if the engine holds it
    /// (the API adds only the lines past those, so a repeated post of the
    /// same order changes nothing).
    pub fn order_state(&self, order_id: &str) -> Option<(&str, usize)> {
        let o = self.store.order_slot(order_id)?;
        let order = &self.store.orders[o as usize];
        Some((self.store.words.get(order.status), order.lines.len()))
    }

    /// The ids of every order a customer placed (none for an unknown one).
    pub fn customer_order_ids(&self, customer_id: &str) -> Vec<String> {
        let Some(c) = self.store.customer_slot(customer_id) else {
            return Vec::new();
        };
        self.store.customers[c as usize]
            .all_orders
            .iter()
            .map(|&o| self.store.orders[o as usize].id.to_string())
            .collect()
    }

    /// Whether a live product or customer of that id exists.
    pub fn has_entity(&self, kind: Kind, id: &str) -> bool {
        match kind {
            Kind::Customer => self
                .store
                .customer_slot(id)
                .is_some_and(|c| self.store.customers[c as usize].alive),
            Kind::Product => self
                .store
                .product_slot(id)
                .is_some_and(|p| self.store.products[p as usize].alive),
        }
    }

    /// A customer's current tier.
    pub fn tier(&self, customer_id: &str) -> Option<&str> {
        let c = self.store.customer_slot(customer_id)?;
        self.tiers[c as usize].as_deref()
    }

    /// Customers per tier name (`None`: no tier), for the pie chart.
    pub fn tier_distribution(&self) -> BTreeMap<Option<&str>, u64> {
        let mut out = BTreeMap::new();
        for (c, tier) in self.tiers.iter().enumerate() {
            if self.store.customers[c].alive {
                *out.entry(tier.as_deref()).or_insert(0) += 1;
            }
        }
        out
    }

    /// The member count at the end of every day from `from` to `to`
    /// (a day without change repeats the day before; 0 before the segment
    /// existed).
    /// The first day the segment's count history has (its creation day, or
    /// the day the engine was built for one loaded with it).
    pub fn history_start(&self, name: &str) -> Option<Date> {
        let seg = self.segments[self.slot(name)? as usize].as_ref()?;
        seg.history.keys().next().copied()
    }

    pub fn count_history(&self, name: &str, from: Date, to: Date) -> Option<Vec<(Date, u64)>> {
        let s = self.slot(name)?;
        let seg = self.segments[s as usize].as_ref()?;
        let mut out = Vec::new();
        let mut last = seg.history.range(..from).next_back().map_or(0, |(_, &c)| c);
        let mut day = from;
        while day <= to {
            if let Some(&c) = seg.history.get(&day) {
                last = c;
            }
            out.push((day, last));
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        Some(out)
    }

    /// Every live customer id with its current tier, for checks.
    pub fn tiers(&self) -> Vec<(&str, Option<&str>)> {
        self.store
            .customers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.alive)
            .map(|(i, c)| (&*c.id, self.tiers[i].as_deref()))
            .collect()
    }
}

/// Whether a pair whose truth can only move as `drift` says stays where
/// it stands, `member` telling which side that is: a rule that can only
/// gain keeps its members, one that can only lose its non-members, one
/// that cannot move everyone.
fn stays(drift: Drift, member: impl FnOnce() -> bool) -> bool {
    match drift {
        Drift::Still => true,
        Drift::Up => member(),
        Drift::Down => !member(),
        Drift::Any => false,
    }
}

/// `quantity × unit_price − discount`, or `None` where `Decimal` would
/// round (past 28 significant digits) or overflow: money is never rounded
/// silently.
fn line_revenue(l: &LineRow) -> Option<Decimal> {
    let gross = Decimal::from(l.quantity).checked_mul(l.unit_price)?;
    // Multiplying by an integer keeps the scale unless the result was
    // rounded to fit.
    let exact_gross = u128::from(l.quantity)
        .checked_mul(l.unit_price.mantissa().unsigned_abs())
        .is_some_and(|m| m < 1u128 << 96);
    if !exact_gross {
        return None;
    }
    let revenue = gross.checked_sub(l.discount)?;
    (revenue.checked_add(l.discount)? == gross).then_some(revenue)
}

fn pad(custom: &[crate::store::Text], width: usize) -> Vec<crate::store::Text> {
    let mut v = custom.to_vec();
    v.resize(width, None);
    v
}

fn tags(list: &[String]) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for t in list {
        if !t.is_empty() && !out.iter().any(|x| **x == **t) {
            out.push(t.as_str().into());
        }
    }
    out
}

fn norm(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn status_of(s: &Option<String>) -> String {
    norm(s).unwrap_or("shipped").to_owned()
}

fn check_custom(custom: &[(String, Option<String>)]) -> Result<(), LiveError> {
    for (name, _) in custom {
        if !name.starts_with("x_") || name.len() < 3 {
            return Err(invalid(format!(
                "custom attribute '{name}' must be named x_something"
            )));
        }
    }
    Ok(())
}

fn check_scheme(scheme: &TierScheme) -> Result<(), LiveError> {
    let n = scheme.tiers.len();
    if !(1..=10).contains(&n) {
        return Err(invalid(format!("a tier scheme has 1 to 10 tiers, not {n}")));
    }
    for (i, a) in scheme.tiers.iter().enumerate() {
        for b in &scheme.tiers[i + 1..] {
            if a.name == b.name {
                return Err(invalid(format!("tier name '{}' appears twice", a.name)));
            }
            if a.threshold == b.threshold {
                return Err(invalid(format!(
                    "tier threshold {} appears twice",
                    a.threshold
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use strata_data::{ProductRow, RuleSource};
    use strata_lang::catalog::Kind;

    use super::*;

    /// 2024-06-30T12:00:00Z.
    const T0: Nanos = 1_719_748_800_000_000_000;

    /// A product created five days before `T0`, with no lines and no daily
    /// rows, and what [`Evaluator::product_quiet`] says of `rule` for it.
    fn quiet(rule: &str) -> (bool, Nanos) {
        let mut live = LiveEngine::empty(T0, jiff::tz::TimeZone::UTC);
        live.apply(Change::UpsertProduct(ProductRow {
            sku: "S1".into(),
            created_at: Some(T0 - 5 * strata_engine::clock::NANOS_PER_DAY),
            ..ProductRow::default()
        }))
        .unwrap();
        live.apply(Change::PutSegment {
            name: "s".into(),
            kind: Kind::Product,
            rule: RuleSource::Text(rule.into()),
        })
        .unwrap();
        let s = live.slot("s").unwrap();
        let seg = live.segments[s as usize].as_ref().unwrap();
        live.reader().product_quiet(&seg.rule.node, 0)
    }

    #[test]
    fn a_false_part_holds_a_conjunction_only_where_nothing_steady_moves_with_time() {
        let never = Nanos::MAX;
        let cases = [
            // Neither part moves with time alone: false for good.
            ("units_30d > 0 AND sessions_30d > 5", (false, never)),
            // A record field that decides decides for good, even beside a
            // part that cannot tell when it moves (`IS NULL` on a ratio).
            ("brand = 'Acme' AND units_30d > 0", (false, never)),
            (
                "brand = 'Acme' AND conversion_rate_30d IS NULL",
                (false, never),
            ),
            ("conversion_rate_30d IS NULL", (true, T0)),
            ("brand = 'Acme' OR units_30d > 0", (false, never)),
            ("NOT (brand = 'Acme' OR units_30d > 0)", (true, never)),
            // `created_at` moves with time: a line skipped while it decides
            // could leave `units_30d > 0` true when it turns, so the
            // conjunction keeps the earliest instant (now: it cannot tell).
            ("created_at < -10d AND units_30d > 0", (false, T0)),
            ("units_30d > 0 OR created_at < -10d", (false, T0)),
            // However many other parts never move.
            (
                "units_30d > 0 AND created_at < -10d AND sessions_30d > 5",
                (false, T0),
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(quiet(rule), want, "{rule}");
        }
    }
}
