//! Backend-independent store tests.
//!
//! A backend provides a [`Fixture`]: a fresh, empty store of its own (a
//! temporary directory, a PostgreSQL schema of its own) that it removes
//! when dropped, and that can be reopened to simulate a restart.
//!
//! Expected datasets come from a [`Model`]: the rows of a dataset as plain
//! vectors, changed the way the crate docs say a store changes them, and
//! built with `DatasetBuilder`; a store's `load` must print (`{:?}`) exactly
//! like the model's build.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use jiff::civil::Date;
use rust_decimal::Decimal;
use strata_data::{
    CustomerRow, DailyRow, Dataset, DatasetBuilder, LineRow, Nanos, ProductRow, RuleSource,
    SavedSegment, SegmentKind, Settings, Tier, TierMetric, TierScheme,
};
use strata_lang::catalog::{Kind, Schema};
use strata_live::{Cause, Change, Event, LiveEngine, ProductValue};
use strata_store::{
    Commit, Counts, ImportReport, Memberships, ModuleRights, Phase, Progress, Right, SegmentInfo,
    SegmentMeta, SegmentShare, Store, StoreError, StoredEvent, Tenant, TenantId, User, UserId,
};

pub trait Fixture {
    fn store(&mut self) -> &mut dyn Store;

    /// Drops the connection and opens the same store again.
    fn reopen(&mut self) {
        self.try_reopen().expect("reopening the store");
    }

    /// [`Fixture::reopen`], returning what opening returned (the store is
    /// closed after an error).
    fn try_reopen(&mut self) -> Result<(), StoreError>;

    /// Replaces the store by an empty database at schema version 1, as the
    /// program of that version left it, and closes it ([`Fixture::reopen`]
    /// opens, and so migrates, it).
    fn recreate_at_version_1(&mut self);

    /// A second connection to the same store, as another process has.
    fn connect(&mut self) -> Box<dyn Store>;

    /// Runs SQL straight on the database, beside the store (what no store
    /// method does: fake a newer schema).
    fn execute(&mut self, sql: &str);

    /// The first column of the first row of a query, as an integer (`None`
    /// for NULL), read straight from the database (staging tables, say).
    fn query(&mut self, sql: &str) -> Option<i64>;
}

/// Expands to one `#[test]` per suite test, each on a fresh fixture from
/// `$open()`.
macro_rules! store_suite {
    ($open:expr) => {
        store_suite!(@tests $open;
            import_then_load_gives_the_dataset_back,
            importing_again_changes_nothing,
            a_newer_dataset_is_upserted_and_nothing_deleted,
            a_reimport_moves_has_lines_with_the_lines,
            tenants_do_not_see_each_other,
            every_change_kind_is_committed_durably,
            a_refused_commit_leaves_nothing,
            events_page_by_cursor,
            count_history_keeps_the_last_count_of_each_day,
            reset_memberships_replaces_them_wholesale,
            reopening_does_not_migrate_again,
            a_failed_import_leaves_nothing,
            a_running_import_is_not_abandoned,
            a_newer_schema_is_refused,
            an_unknown_tenant_is_refused,
            a_restart_restores_the_live_engine_exactly,
            a_version_1_database_migrates_to_the_current_version,
            users_are_unique_by_lower_cased_email,
            sessions_expire_at_their_instant,
            tokens_are_revoked_by_their_owner_only,
            access_is_granted_per_store,
            shares_are_kept_per_segment_and_user,
            segment_info_is_stored_with_put_segment,
            a_batch_commits_every_change_in_order,
            a_batch_with_a_refused_commit_leaves_nothing,
            live_apply_batch_commits_the_accepted_changes,
            live_apply_groups_are_all_or_nothing,
        );
    };
    (@tests $open:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut fixture = $open();
                crate::suite::$name(&mut fixture);
            }
        )*
    };
}

// ---- data ------------------------------------------------------------------

/// The demo's last instant (its default end), the live tests' clock.
fn demo_end() -> jiff::Timestamp {
    strata_demo::DemoOptions::default().end
}

/// A generated demo dataset, loaded the way `strata check` loads it.
pub fn demo(customers: usize, seed: u64) -> Dataset {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let opts = strata_demo::DemoOptions {
        customers,
        seed,
        ..strata_demo::DemoOptions::default()
    };
    strata_demo::generate(dir.path(), &opts).expect("the demo generates");
    strata_data::load_dir(dir.path()).expect("the demo loads")
}

/// A dataset as rows.
#[derive(Clone, Debug)]
pub struct Model {
    pub settings: Settings,
    pub products: Vec<ProductRow>,
    pub customers: Vec<CustomerRow>,
    pub lines: Vec<LineRow>,
    pub daily: Vec<DailyRow>,
    pub tiers: Vec<TierScheme>,
    pub segments: Vec<SavedSegment>,
}

fn upsert<T>(rows: &mut Vec<T>, row: T, same: impl Fn(&T) -> bool) {
    match rows.iter_mut().find(|r| same(r)) {
        Some(old) => *old = row,
        None => rows.push(row),
    }
}

fn segment_kind(kind: Kind) -> SegmentKind {
    match kind {
        Kind::Customer => SegmentKind::Customer,
        Kind::Product => SegmentKind::Product,
    }
}

impl Model {
    pub fn of(data: &Dataset) -> Model {
        Model {
            settings: data.settings.clone(),
            products: (0..data.products.len())
                .map(|i| data.product_row(i))
                .collect(),
            customers: (0..data.customers.len())
                .map(|i| data.customer_row(i))
                .collect(),
            lines: (0..data.lines.len()).map(|i| data.line_row(i)).collect(),
            daily: (0..data.daily.len()).map(|i| data.daily_row(i)).collect(),
            tiers: data.tiers.clone(),
            segments: data.segments.clone(),
        }
    }

    pub fn build(&self) -> Dataset {
        let mut b = DatasetBuilder::new(self.settings.clone());
        for p in &self.products {
            b.product(p.clone()).expect("a model product");
        }
        for c in &self.customers {
            b.customer(c.clone()).expect("a model customer");
        }
        for l in &self.lines {
            b.line(l.clone()).expect("a model line");
        }
        for d in &self.daily {
            b.daily(d.clone()).expect("a model daily row");
        }
        for t in &self.tiers {
            b.tier_scheme(t.clone());
        }
        for s in &self.segments {
            b.segment(s.clone());
        }
        b.finish()
    }

    /// What a committed change does to the rows.
    pub fn apply(&mut self, change: &Change) {
        match change.clone() {
            Change::UpsertProduct(p) => {
                let sku = p.sku.clone();
                upsert(&mut self.products, p, |x| x.sku == sku);
            }
            Change::DeleteProduct(sku) => {
                self.products.retain(|p| p.sku != sku);
                self.daily.retain(|d| d.sku != sku);
            }
            Change::UpsertCustomer(c) => {
                let id = c.customer_id.clone();
                upsert(&mut self.customers, c, |x| x.customer_id == id);
            }
            Change::DeleteCustomer(id) => {
                self.customers.retain(|c| c.customer_id != id);
                for l in &mut self.lines {
                    if l.customer_id.as_deref() == Some(&*id) {
                        l.customer_id = None;
                    }
                }
            }
            Change::AddLines(lines) => self.lines.extend(lines),
            Change::SetOrderStatus { order_id, status } => {
                for l in &mut self.lines {
                    if l.order_id == order_id {
                        l.status = Some(status.clone());
                    }
                }
            }
            Change::SetProductValue { sku, value } => {
                let p = self
                    .products
                    .iter_mut()
                    .find(|p| p.sku == sku)
                    .expect("a model sku");
                match value {
                    ProductValue::Price(v) => p.price = v,
                    ProductValue::Cost(v) => p.cost = v,
                    ProductValue::Inventory(v) => p.inventory = v,
                }
            }
            Change::PutDaily(row) => {
                let (sku, date) = (row.sku.clone(), row.date);
                upsert(&mut self.daily, row, |d| d.sku == sku && d.date == date);
            }
            Change::PutSegment { name, kind, rule } => {
                // A change carries no description: the stored one stays.
                let description = self
                    .segments
                    .iter()
                    .find(|s| s.name == name)
                    .and_then(|s| s.description.clone());
                let segment = SavedSegment {
                    name: name.clone(),
                    kind: segment_kind(kind),
                    rule,
                    description,
                };
                upsert(&mut self.segments, segment, |s| s.name == name);
            }
            Change::DeleteSegment(name) => self.segments.retain(|s| s.name != name),
            Change::PutTierScheme(mut scheme) => {
                scheme.tiers.sort_by_key(|t| std::cmp::Reverse(t.threshold));
                let market = scheme.marketplace.clone();
                upsert(&mut self.tiers, scheme, |t| t.marketplace == market);
            }
            Change::DeleteTierScheme(market) => self.tiers.retain(|t| t.marketplace != market),
        }
    }
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

fn day(text: &str) -> Date {
    text.parse().expect("a date")
}

#[track_caller]
fn assert_same_dataset(got: &Dataset, want: &Dataset) {
    let (got, want) = (format!("{got:?}"), format!("{want:?}"));
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let from = at.saturating_sub(200);
        panic!(
            "the loaded dataset differs at byte {at}:\n got: ...{}\nwant: ...{}",
            &got[from..(at + 200).min(got.len())],
            &want[from..(at + 200).min(want.len())],
        );
    }
}

fn no_progress() -> impl FnMut(Progress) {
    |_| {}
}

fn import(store: &mut dyn Store, tenant: TenantId, data: &Dataset) -> ImportReport {
    store
        .import(tenant, data, &mut no_progress())
        .expect("the import succeeds")
}

fn all_events(store: &mut dyn Store, tenant: TenantId) -> Vec<StoredEvent> {
    store.events(tenant, 0, usize::MAX).expect("events")
}

fn counts(inserted: u64, updated: u64, unchanged: u64) -> Counts {
    Counts {
        inserted,
        updated,
        unchanged,
    }
}

/// The memberships and tiers a live engine holds, as a store reports them.
fn memberships_of(engine: &LiveEngine) -> Memberships {
    let mut out = Memberships::default();
    for (name, kind, _) in engine.segments() {
        for id in engine.member_ids(name).expect("a segment") {
            out.members
                .push((name.to_owned(), segment_kind(kind), id.to_owned()));
        }
    }
    out.members.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    out.tiers = engine
        .tiers()
        .into_iter()
        .filter_map(|(c, t)| Some((c.to_owned(), t?.to_owned())))
        .collect();
    out.tiers.sort();
    out
}

// ---- imports ---------------------------------------------------------------

pub fn import_then_load_gives_the_dataset_back(f: &mut dyn Fixture) {
    let data = demo(300, 42);
    let t = f.store().tenant("shop").unwrap();
    assert_eq!(
        (t.data_version, t.memberships_version, t.clock),
        (0, 0, None)
    );
    let mut seen = Vec::new();
    let report = f
        .store()
        .import(t.id, &data, &mut |p| seen.push(p))
        .unwrap();
    let everything = |n: usize| counts(n as u64, 0, 0);
    assert_eq!(
        report,
        ImportReport {
            import_id: report.import_id,
            products: everything(data.products.len()),
            customers: everything(data.customers.len()),
            orders: everything(data.orders.len()),
            lines: everything(data.lines.len()),
            daily: everything(data.daily.len()),
            segments: everything(data.segments.len()),
            tier_schemes: everything(data.tiers.len()),
        }
    );
    // Progress: staging then merging, never going back, ending at the total.
    let total =
        (data.products.len() + data.customers.len() + data.lines.len() + data.daily.len()) as u64;
    assert!(seen.iter().all(|p| p.total == total), "{seen:?}");
    let merging = seen.iter().position(|p| p.phase == Phase::Merging).unwrap();
    assert!(seen[..merging].iter().all(|p| p.phase == Phase::Staging));
    assert!(seen[merging..].iter().all(|p| p.phase == Phase::Merging));
    assert_eq!(seen[merging - 1].done, total);
    assert!(seen[merging..].windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!(seen.last().unwrap().done, total);

    f.reopen();
    let t = f.store().tenant("shop").unwrap();
    assert_eq!(t.data_version, 1);
    assert_eq!((t.timezone.as_str(), t.currency.as_str()), ("UTC", "USD"));
    let loaded = f.store().load(t.id).unwrap();
    assert_same_dataset(&loaded, &data);
    // And it evaluates the same: every saved segment has the same members.
    let now = demo_end();
    let (a, b) = (
        strata_engine::Engine::new(data, now).unwrap(),
        strata_engine::Engine::new(loaded, now).unwrap(),
    );
    for (i, (name, _)) in a.saved_segments().enumerate() {
        assert_eq!(
            a.saved_members(i).unwrap(),
            b.saved_members(i).unwrap(),
            "{name}"
        );
    }
}

pub fn importing_again_changes_nothing(f: &mut dyn Fixture) {
    let mut data = demo(300, 42);
    data.segments[0].description = Some("Kept as written: «quoted», 'too'".into());
    let t = f.store().tenant("shop").unwrap();
    let first = import(f.store(), t.id, &data);
    let again = import(f.store(), t.id, &data);
    assert!(again.import_id > first.import_id);
    let same = |c: Counts| counts(0, 0, c.inserted);
    assert_eq!(
        again,
        ImportReport {
            import_id: again.import_id,
            products: same(first.products),
            customers: same(first.customers),
            orders: same(first.orders),
            lines: same(first.lines),
            daily: same(first.daily),
            segments: same(first.segments),
            tier_schemes: same(first.tier_schemes),
        }
    );
    assert_eq!(f.store().tenant_by_id(t.id).unwrap().data_version, 1);
    assert_same_dataset(&f.store().load(t.id).unwrap(), &data);
    // A new description alone is a change.
    data.segments[0].description = None;
    let third = import(f.store(), t.id, &data);
    assert_eq!(third.segments.updated, 1);
    assert_same_dataset(&f.store().load(t.id).unwrap(), &data);
}

pub fn a_newer_dataset_is_upserted_and_nothing_deleted(f: &mut dyn Fixture) {
    let data = demo(300, 42);
    let t = f.store().tenant("shop").unwrap();
    import(f.store(), t.id, &data);

    // The store after the newer file: the old rows, some changed in place,
    // new ones after them.
    let mut want = Model::of(&data);
    let first_order = want.lines[0].order_id.clone();
    want.products[0].title = Some("A new title".into());
    let mut product = want.products[1].clone();
    product.sku = "NEW-SKU".into();
    want.products.push(product);
    want.customers[1].email = Some("changed@example.com".into());
    let mut customer = want.customers[0].clone();
    customer.customer_id = "NEW-CUSTOMER".into();
    want.customers.push(customer);
    for l in want.lines.iter_mut().filter(|l| l.order_id == first_order) {
        l.status = Some("refunded".into());
    }
    let changed_line = want
        .lines
        .iter()
        .position(|l| l.order_id != first_order)
        .unwrap();
    want.lines[changed_line].quantity += 1;
    let mut appended = want.lines[0].clone();
    appended.sku = "NEW-SKU".into();
    want.lines.push(appended);
    for sku in ["NEW-SKU", &want.products[0].sku.clone()] {
        let mut l = want.lines[0].clone();
        l.order_id = "NEW-ORDER".into();
        l.customer_id = Some("NEW-CUSTOMER".into());
        l.status = None;
        l.sku = sku.into();
        want.lines.push(l);
    }
    want.daily[0].sessions = Some(want.daily[0].sessions.unwrap_or(0) + 1);
    want.segments[0].rule = RuleSource::Text("units_30d >= 1".into());
    want.tiers[0].tiers[0].threshold += Decimal::ONE;
    // The newer file lacks the last daily row: the store keeps it.
    let mut newer = want.clone();
    newer.daily.pop();

    let before = f.store().tenant_by_id(t.id).unwrap().data_version;
    let report = import(f.store(), t.id, &newer.build());
    let (p, c, o, l, d) = (
        data.products.len() as u64,
        data.customers.len() as u64,
        data.orders.len() as u64,
        data.lines.len() as u64,
        data.daily.len() as u64,
    );
    assert_eq!(
        report,
        ImportReport {
            import_id: report.import_id,
            products: counts(1, 1, p - 1),
            customers: counts(1, 1, c - 1),
            orders: counts(1, 1, o - 1),
            lines: counts(3, 1, l - 1),
            daily: counts(0, 1, d - 2),
            segments: counts(0, 1, data.segments.len() as u64 - 1),
            tier_schemes: counts(0, 1, data.tiers.len() as u64 - 1),
        }
    );
    assert_eq!(
        f.store().tenant_by_id(t.id).unwrap().data_version,
        before + 1
    );
    f.reopen();
    assert_same_dataset(&f.store().load(t.id).unwrap(), &want.build());
}

pub fn a_reimport_moves_has_lines_with_the_lines(f: &mut dyn Fixture) {
    let data = demo(100, 11);
    let t = f.store().tenant("shop").unwrap();
    import(f.store(), t.id, &data);
    // Every line of one product now names another: the first is left with
    // none, and only `has_lines` lets it be deleted.
    let mut want = Model::of(&data);
    let from = want.lines[0].sku.clone();
    let to = want
        .products
        .iter()
        .map(|p| p.sku.clone())
        .find(|s| *s != from)
        .unwrap();
    for l in want.lines.iter_mut().filter(|l| l.sku == from) {
        l.sku = to.clone();
    }
    import(f.store(), t.id, &want.build());
    let marked = |f: &mut dyn Fixture, sku: &str| {
        f.query(&format!(
            "SELECT COUNT(*) FROM products WHERE sku = '{sku}' AND has_lines"
        ))
    };
    assert_eq!(marked(f, &from), Some(0));
    assert_eq!(marked(f, &to), Some(1));
    let wrong = "SELECT COUNT(*) FROM products p
                 WHERE has_lines <> EXISTS (SELECT 1 FROM order_lines l
                                            WHERE l.tenant_id = p.tenant_id AND l.sku = p.sku)";
    assert_eq!(f.query(wrong), Some(0));
    assert_same_dataset(&f.store().load(t.id).unwrap(), &want.build());
}

pub fn tenants_do_not_see_each_other(f: &mut dyn Fixture) {
    // Two demos: same generator, so many of the same skus and ids.
    let (a_data, b_data) = (demo(300, 42), demo(120, 7));
    let a = f.store().tenant("a").unwrap();
    let b = f.store().tenant("b").unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(f.store().tenant("a").unwrap().id, a.id);
    import(f.store(), a.id, &a_data);
    let report = import(f.store(), b.id, &b_data);
    assert_eq!(report.products.inserted, b_data.products.len() as u64);
    assert_eq!(report.lines.inserted, b_data.lines.len() as u64);

    // A live change and its events in one tenant only.
    let mut engine = LiveEngine::new(&a_data, demo_end()).unwrap();
    let customer = a_data.customer_row(0).customer_id;
    let anonymised = engine.customer_order_ids(&customer);
    assert!(!anonymised.is_empty(), "the deleted customer had orders");
    let change = Change::DeleteCustomer(customer);
    let events = engine.apply(change.clone()).unwrap();
    f.store()
        .reset_memberships(a.id, &memberships_of(&engine), engine.now(), 1)
        .unwrap();
    f.store()
        .commit(
            a.id,
            &Commit {
                seq: 1,
                change: Some(&change),
                events: &events,
                clock: engine.now(),
                counts: &[("vip".into(), 3)],
                day: day("2026-11-01"),
                info: None,
                anonymised_orders: &anonymised,
            },
        )
        .unwrap();

    f.reopen();
    let names: Vec<String> = f
        .store()
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let mut a_model = Model::of(&a_data);
    a_model.apply(&change);
    assert_same_dataset(&f.store().load(a.id).unwrap(), &a_model.build());
    assert_same_dataset(&f.store().load(b.id).unwrap(), &b_data);
    assert_eq!(f.store().memberships(b.id).unwrap(), Memberships::default());
    assert!(all_events(f.store(), b.id).is_empty());
    assert!(f.store().count_history(b.id, "vip").unwrap().is_empty());
    let b_now = f.store().tenant_by_id(b.id).unwrap();
    assert_eq!((b_now.clock, b_now.last_change), (None, 0));
    assert_ne!(f.store().memberships(a.id).unwrap(), Memberships::default());
}

// ---- live commits ------------------------------------------------------------

/// A live engine over a stored tenant, committing each change with its
/// events, and a model of the rows beside it.
struct Live {
    tenant: TenantId,
    engine: LiveEngine,
    model: Model,
    events: Vec<Event>,
}

impl Live {
    fn start(store: &mut dyn Store, data: &Dataset) -> Live {
        let tenant = store.tenant("shop").unwrap();
        import(store, tenant.id, data);
        let engine = LiveEngine::new(data, demo_end()).unwrap();
        let version = store.tenant_by_id(tenant.id).unwrap().data_version;
        store
            .reset_memberships(tenant.id, &memberships_of(&engine), engine.now(), version)
            .unwrap();
        Live {
            tenant: tenant.id,
            engine,
            model: Model::of(data),
            events: Vec::new(),
        }
    }

    fn counts(&self) -> Vec<(String, u64)> {
        self.engine
            .segments()
            .map(|(name, _, _)| (name.to_owned(), self.engine.count(name).unwrap()))
            .collect()
    }

    fn commit(&mut self, store: &mut dyn Store, change: Option<Change>, to: Option<Nanos>) {
        let before = self.counts();
        let anonymised = self.anonymised(change.as_ref());
        let events = match (&change, to) {
            (Some(change), None) => self.engine.apply(change.clone()).unwrap(),
            (None, Some(to)) => self.engine.advance_to(to).unwrap(),
            _ => unreachable!("a change or a clock advance"),
        };
        let counts: Vec<(String, u64)> = self
            .counts()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        let tz = self.engine.timezone().clone();
        store
            .commit(
                self.tenant,
                &Commit {
                    seq: self.engine.last_change(),
                    change: change.as_ref(),
                    events: &events,
                    clock: self.engine.now(),
                    counts: &counts,
                    day: strata_engine::clock::date_of(self.engine.now(), &tz),
                    info: None,
                    anonymised_orders: &anonymised,
                },
            )
            .unwrap_or_else(|e| panic!("committing {change:?}: {e}"));
        if let Some(change) = &change {
            self.model.apply(change);
        }
        self.events.extend(events);
    }

    /// The orders a deleted customer leaves, as `strata_store::live::Live`
    /// names them.
    fn anonymised(&self, change: Option<&Change>) -> Vec<String> {
        match change {
            Some(Change::DeleteCustomer(id)) => self.engine.customer_order_ids(id),
            _ => Vec::new(),
        }
    }

    /// [`Live::commit`] for several changes, committed in one batch.
    fn commit_batch(&mut self, store: &mut dyn Store, changes: Vec<Change>) {
        struct Taken {
            seq: u64,
            change: Change,
            events: Vec<Event>,
            clock: Nanos,
            counts: Vec<(String, u64)>,
            day: Date,
            anonymised: Vec<String>,
        }
        let tz = self.engine.timezone().clone();
        let mut taken = Vec::new();
        for change in changes {
            let before = self.counts();
            let anonymised = self.anonymised(Some(&change));
            let events = self.engine.apply(change.clone()).unwrap();
            let counts = self
                .counts()
                .into_iter()
                .filter(|c| !before.contains(c))
                .collect();
            taken.push(Taken {
                seq: self.engine.last_change(),
                change,
                events,
                clock: self.engine.now(),
                counts,
                day: strata_engine::clock::date_of(self.engine.now(), &tz),
                anonymised,
            });
        }
        let commits: Vec<Commit<'_>> = taken
            .iter()
            .map(|t| Commit {
                seq: t.seq,
                change: Some(&t.change),
                events: &t.events,
                clock: t.clock,
                counts: &t.counts,
                day: t.day,
                info: None,
                anonymised_orders: &t.anonymised,
            })
            .collect();
        store
            .commit_batch(self.tenant, &commits)
            .unwrap_or_else(|e| panic!("committing a batch of {}: {e}", commits.len()));
        for t in taken {
            self.model.apply(&t.change);
            self.events.extend(t.events);
        }
    }

    /// What the store must hold now.
    fn check(&self, store: &mut dyn Store) {
        let loaded = store.load(self.tenant).unwrap();
        assert_same_dataset(&loaded, &self.model.build());
        let stored = store.memberships(self.tenant).unwrap();
        assert_eq!(stored, memberships_of(&self.engine));
        let logged: Vec<Event> = all_events(store, self.tenant)
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(logged, self.events);
        let t = store.tenant_by_id(self.tenant).unwrap();
        assert_eq!(t.clock, Some(self.engine.now()));
        assert_eq!(t.last_change, self.engine.last_change());
        assert_eq!(t.memberships_version, t.data_version);
        // What a restart does: the rows, evaluated afresh at the stored
        // clock, give the stored memberships back.
        let at = jiff::Timestamp::from_nanosecond(i128::from(self.engine.now())).unwrap();
        let fresh = LiveEngine::new(&loaded, at).unwrap();
        assert_eq!(memberships_of(&fresh), stored);
    }
}

/// One change of every kind, on the demo's own ids.
fn changes(data: &Dataset, now: Nanos) -> Vec<Change> {
    let product = data.product_row(0);
    let customer = (0..data.lines.len())
        .find_map(|l| data.line_row(l).customer_id)
        .unwrap();
    let last_line = data.line_row(data.lines.len() - 1);
    let hour = 3_600_000_000_000;
    let mut new_product = ProductRow {
        sku: "NEW-SKU".into(),
        title: Some("Wool socks".into()),
        tags: vec!["new".into(), "wool".into()],
        price: Some(dec("12.50")),
        cost: Some(dec("4.1")),
        inventory: Some(40),
        custom: vec![("x_color".into(), Some("red".into()))],
        ..ProductRow::default()
    };
    let line = |order: &str, sku: &str, quantity: u32| LineRow {
        order_id: order.into(),
        ordered_at: now - hour,
        customer_id: Some("NEW-CUSTOMER".into()),
        sku: sku.into(),
        quantity,
        unit_price: dec("12.50"),
        discount: dec("0.50"),
        fees: dec("1.00"),
        status: None,
        marketplace: Some("US".into()),
        seller_account: Some("main".into()),
    };
    let json_rule = strata_lang::to_json(
        &strata_lang::parse_rule("units_30d > 0", &Schema::builtin(Kind::Product)).unwrap(),
    );
    let mut changes = vec![
        Change::UpsertProduct(new_product.clone()),
        Change::UpsertProduct(ProductRow {
            title: Some("Renamed".into()),
            price: Some(dec("99.99")),
            ..product.clone()
        }),
        Change::UpsertCustomer(CustomerRow {
            customer_id: "NEW-CUSTOMER".into(),
            email: Some("new@example.com".into()),
            tags: vec!["vip".into()],
            marketplace: Some("US".into()),
            accepts_marketing: Some(true),
            created_at: Some(now - 24 * hour),
            ..CustomerRow::default()
        }),
        Change::UpsertCustomer(CustomerRow {
            email: Some("changed@example.com".into()),
            ..data.customer_row(1)
        }),
        Change::AddLines(vec![
            line("NEW-ORDER", "NEW-SKU", 2),
            line("NEW-ORDER", &product.sku, 1),
        ]),
        // Continues the order's numbering.
        Change::AddLines(vec![line("NEW-ORDER", "NEW-SKU", 5)]),
        Change::AddLines(vec![LineRow {
            sku: "NEW-SKU".into(),
            quantity: 3,
            ..last_line
        }]),
        Change::SetOrderStatus {
            order_id: "NEW-ORDER".into(),
            status: "refunded".into(),
        },
        Change::SetProductValue {
            sku: product.sku.clone(),
            value: ProductValue::Price(Some(dec("5.00"))),
        },
        Change::SetProductValue {
            sku: product.sku.clone(),
            value: ProductValue::Cost(None),
        },
        Change::SetProductValue {
            sku: product.sku.clone(),
            value: ProductValue::Inventory(Some(7)),
        },
        Change::PutDaily(DailyRow {
            sku: "NEW-SKU".into(),
            date: day("2026-10-31"),
            sessions: Some(10),
            bsr: None,
            reviews: Some(2),
            rating: Some(dec("4.5")),
        }),
        Change::PutDaily(DailyRow {
            sessions: Some(12_345),
            ..data.daily_row(0)
        }),
        Change::PutSegment {
            name: "big-spenders".into(),
            kind: Kind::Customer,
            rule: RuleSource::Text("amount_spent > 100".into()),
        },
        Change::PutSegment {
            name: "selling".into(),
            kind: Kind::Product,
            rule: RuleSource::Json(json_rule),
        },
        Change::PutSegment {
            name: "big-spenders".into(),
            kind: Kind::Customer,
            rule: RuleSource::Text("amount_spent > 50".into()),
        },
        Change::PutTierScheme(TierScheme {
            marketplace: Some("DE".into()),
            metric: TierMetric::Units,
            tiers: vec![
                Tier {
                    name: "Low".into(),
                    threshold: dec("1"),
                },
                Tier {
                    name: "High".into(),
                    threshold: dec("10.0"),
                },
            ],
        }),
        Change::PutTierScheme(TierScheme {
            marketplace: None,
            metric: TierMetric::Revenue,
            tiers: vec![Tier {
                name: "Any".into(),
                threshold: dec("0"),
            }],
        }),
        Change::DeleteSegment("big-spenders".into()),
        Change::DeleteTierScheme(Some("DE".into())),
        Change::DeleteCustomer(customer),
    ];
    // A product with a daily row and no lines can go, its daily row with it.
    new_product.sku = "GONE-SKU".into();
    changes.push(Change::UpsertProduct(new_product));
    changes.push(Change::PutDaily(DailyRow {
        sku: "GONE-SKU".into(),
        date: day("2026-10-30"),
        sessions: Some(1),
        bsr: Some(100),
        reviews: None,
        rating: None,
    }));
    changes.push(Change::DeleteProduct("GONE-SKU".into()));
    changes
}

pub fn every_change_kind_is_committed_durably(f: &mut dyn Fixture) {
    let data = demo(300, 42);
    let mut live = Live::start(f.store(), &data);
    for change in changes(&data, live.engine.now()) {
        live.commit(f.store(), Some(change), None);
    }
    // Time alone moves members too (windows close, lapsed customers).
    let later = live.engine.now() + 90 * 86_400_000_000_000;
    live.commit(f.store(), None, Some(later));
    assert!(
        live.events.iter().any(|e| e.cause() == Cause::Time),
        "the clock advance gave no events; the test would not see them stored"
    );
    assert!(live.events.iter().any(|e| matches!(e, Event::Tier { .. })));
    live.check(f.store());
    f.reopen();
    live.check(f.store());
    // NEW-ORDER's third line came in a later change but kept its order.
    let loaded = f.store().load(live.tenant).unwrap();
    let quantities: Vec<u32> = (0..loaded.lines.len())
        .map(|l| loaded.line_row(l))
        .filter(|l| l.order_id == "NEW-ORDER")
        .map(|l| l.quantity)
        .collect();
    assert_eq!(quantities, [2, 1, 5]);
}

pub fn a_refused_commit_leaves_nothing(f: &mut dyn Fixture) {
    let data = demo(120, 42);
    let t = f.store().tenant("shop").unwrap();
    import(f.store(), t.id, &data);
    let line = data.line_row(0);
    let event = Event::Member {
        at: 5,
        cause: Cause::Change(1),
        kind: Kind::Customer,
        segment: "vip".into(),
        entity: "someone".into(),
        enter: true,
    };
    let refused = [
        Change::AddLines(vec![
            line.clone(),
            LineRow {
                sku: "NO-SUCH-SKU".into(),
                ..line.clone()
            },
        ]),
        Change::AddLines(vec![LineRow {
            customer_id: Some("NO-SUCH-CUSTOMER".into()),
            ..line.clone()
        }]),
        Change::DeleteProduct(line.sku.clone()),
        Change::DeleteProduct("NO-SUCH-SKU".into()),
        Change::DeleteCustomer("NO-SUCH-CUSTOMER".into()),
        Change::SetOrderStatus {
            order_id: "NO-SUCH-ORDER".into(),
            status: "shipped".into(),
        },
        Change::SetProductValue {
            sku: "NO-SUCH-SKU".into(),
            value: ProductValue::Inventory(Some(1)),
        },
        Change::PutDaily(DailyRow {
            sku: "NO-SUCH-SKU".into(),
            ..data.daily_row(0)
        }),
        Change::PutSegment {
            name: "broken".into(),
            kind: Kind::Customer,
            rule: RuleSource::Text("amount_spent >".into()),
        },
        Change::DeleteSegment("no-such-segment".into()),
        Change::DeleteTierScheme(Some("NO-SUCH-MARKET".into())),
    ];
    let before: Tenant = f.store().tenant_by_id(t.id).unwrap();
    for change in &refused {
        let result = f.store().commit(
            t.id,
            &Commit {
                seq: 1,
                change: Some(change),
                events: std::slice::from_ref(&event),
                clock: 5,
                counts: &[("vip".into(), 1)],
                day: day("2026-01-01"),
                info: None,
                anonymised_orders: &[],
            },
        );
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{change:?} gave {result:?}"
        );
    }
    f.reopen();
    assert_eq!(f.store().tenant_by_id(t.id).unwrap(), before);
    assert_same_dataset(&f.store().load(t.id).unwrap(), &data);
    assert!(all_events(f.store(), t.id).is_empty());
    assert_eq!(f.store().memberships(t.id).unwrap(), Memberships::default());
    assert!(f.store().count_history(t.id, "vip").unwrap().is_empty());
}

fn member(at: Nanos, cause: Cause, segment: &str, entity: &str, enter: bool) -> Event {
    Event::Member {
        at,
        cause,
        kind: if segment.starts_with('p') {
            Kind::Product
        } else {
            Kind::Customer
        },
        segment: segment.into(),
        entity: entity.into(),
        enter,
    }
}

fn tier(at: Nanos, cause: Cause, customer: &str, from: Option<&str>, to: Option<&str>) -> Event {
    Event::Tier {
        at,
        cause,
        customer: customer.into(),
        from: from.map(Arc::from),
        to: to.map(Arc::from),
    }
}

fn commit_events(f: &mut dyn Fixture, tenant: TenantId, seq: u64, events: &[Event]) {
    let clock = events.iter().map(Event::at).max().unwrap_or(0);
    f.store()
        .commit(
            tenant,
            &Commit {
                seq,
                change: None,
                events,
                clock,
                counts: &[],
                day: day("2026-01-01"),
                info: None,
                anonymised_orders: &[],
            },
        )
        .unwrap();
}

pub fn events_page_by_cursor(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap();
    let other = f.store().tenant("other").unwrap();
    let batches = [
        vec![
            member(10, Cause::Change(1), "vip", "c1", true),
            member(10, Cause::Change(1), "products-hot", "SKU-1", true),
            tier(10, Cause::Change(1), "c1", None, Some("Gold")),
        ],
        vec![],
        vec![
            member(20, Cause::Time, "vip", "c1", false),
            tier(20, Cause::Time, "c1", Some("Gold"), Some("Silver")),
            tier(21, Cause::Time, "c2", Some("Gold"), None),
        ],
        vec![member(30, Cause::Change(2), "vip", "c3", true)],
    ];
    for (seq, batch) in batches.iter().enumerate() {
        commit_events(f, t.id, seq as u64, batch);
        commit_events(f, other.id, seq as u64, &batch[..batch.len().min(1)]);
    }
    f.reopen();
    let want: Vec<Event> = batches.concat();
    let all = all_events(f.store(), t.id);
    assert_eq!(
        all.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for limit in [1, 2, 3, 7, 100] {
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = f.store().events(t.id, after, limit).unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = last.id;
            paged.extend(page);
        }
        assert_eq!(paged, all, "pages of {limit}");
    }
    assert!(
        f.store()
            .events(t.id, all.last().unwrap().id, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.store().events(t.id, 0, 0).unwrap(), []);
    assert_eq!(all_events(f.store(), other.id).len(), 3);
    // The events moved the memberships and tiers.
    let m = f.store().memberships(t.id).unwrap();
    assert_eq!(
        m.members,
        [
            ("products-hot".into(), SegmentKind::Product, "SKU-1".into()),
            ("vip".into(), SegmentKind::Customer, "c3".into()),
        ]
    );
    assert_eq!(m.tiers, [("c1".into(), "Silver".into())]);
}

pub fn count_history_keeps_the_last_count_of_each_day(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap();
    let steps: [(&str, &[(&str, u64)]); 4] = [
        ("2026-03-01", &[("vip", 5)]),
        ("2026-03-02", &[("vip", 7), ("lapsed", 1)]),
        ("2026-03-01", &[("vip", 6)]),
        ("2026-02-27", &[("lapsed", 0)]),
    ];
    for (seq, (d, counts)) in steps.iter().enumerate() {
        let counts: Vec<(String, u64)> = counts.iter().map(|&(s, n)| (s.to_owned(), n)).collect();
        f.store()
            .commit(
                t.id,
                &Commit {
                    seq: seq as u64,
                    change: None,
                    events: &[],
                    clock: seq as Nanos,
                    counts: &counts,
                    day: day(d),
                    info: None,
                    anonymised_orders: &[],
                },
            )
            .unwrap();
    }
    f.reopen();
    let history = |f: &mut dyn Fixture, s: &str| f.store().count_history(t.id, s).unwrap();
    assert_eq!(
        history(f, "vip"),
        [(day("2026-03-01"), 6), (day("2026-03-02"), 7)]
    );
    assert_eq!(
        history(f, "lapsed"),
        [(day("2026-02-27"), 0), (day("2026-03-02"), 1)]
    );
    assert_eq!(history(f, "nothing"), []);
}

pub fn reset_memberships_replaces_them_wholesale(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap();
    commit_events(
        f,
        t.id,
        1,
        &[
            member(10, Cause::Change(1), "vip", "c1", true),
            member(11, Cause::Change(1), "vip", "c2", true),
            tier(12, Cause::Change(1), "c1", None, Some("Gold")),
        ],
    );
    let replaced = Memberships {
        members: vec![
            ("products-hot".into(), SegmentKind::Product, "SKU-9".into()),
            ("vip".into(), SegmentKind::Customer, "c2".into()),
            ("vip".into(), SegmentKind::Customer, "c3".into()),
        ],
        tiers: vec![("c2".into(), "Silver".into())],
    };
    f.store()
        .reset_memberships(t.id, &replaced, 500, 4)
        .unwrap();
    f.reopen();
    assert_eq!(f.store().memberships(t.id).unwrap(), replaced);
    let after = f.store().tenant_by_id(t.id).unwrap();
    assert_eq!((after.clock, after.memberships_version), (Some(500), 4));
    assert_eq!(after.last_change, 1);
    // The log is history: a reset does not rewrite it.
    assert_eq!(all_events(f.store(), t.id).len(), 3);
    f.store()
        .reset_memberships(t.id, &Memberships::default(), 600, 5)
        .unwrap();
    assert_eq!(f.store().memberships(t.id).unwrap(), Memberships::default());
}

// ---- schema and failures ---------------------------------------------------

pub fn reopening_does_not_migrate_again(f: &mut dyn Fixture) {
    let migrations = "SELECT COUNT(*) FROM strata_migrations";
    assert_eq!(f.store().schema_version().unwrap(), 3);
    assert_eq!(f.query(migrations), Some(3));
    let t = f.store().tenant("shop").unwrap();
    for _ in 0..2 {
        f.reopen();
        assert_eq!(f.store().schema_version().unwrap(), 3);
        assert_eq!(f.query(migrations), Some(3));
        assert_eq!(f.store().tenant("shop").unwrap(), t);
    }
}

fn staged_rows(f: &mut dyn Fixture) -> i64 {
    [
        "stage_products",
        "stage_customers",
        "stage_lines",
        "stage_daily",
    ]
    .iter()
    .map(|table| f.query(&format!("SELECT COUNT(*) FROM {table}")).unwrap())
    .sum()
}

fn imports_in(f: &mut dyn Fixture, state: &str) -> i64 {
    f.query(&format!(
        "SELECT COUNT(*) FROM imports WHERE state = '{state}'"
    ))
    .unwrap()
}

/// How the staging rows of a dead import go.
#[derive(Clone, Copy, Debug)]
enum Cleanup {
    CleanAbandoned,
    NextImport,
}

pub fn a_failed_import_leaves_nothing(f: &mut dyn Fixture) {
    let data = demo(120, 42);
    let mut newer = Model::of(&data);
    newer.products[0].title = Some("Changed".into());
    newer.lines.push(LineRow {
        order_id: "NEW-ORDER".into(),
        ..newer.lines[0].clone()
    });
    let newer = newer.build();
    let cases = [
        (Phase::Staging, Cleanup::CleanAbandoned),
        (Phase::Staging, Cleanup::NextImport),
        (Phase::Merging, Cleanup::CleanAbandoned),
        (Phase::Merging, Cleanup::NextImport),
    ];
    for (i, (phase, cleanup)) in cases.into_iter().enumerate() {
        let case = format!("dying while {phase:?}, cleaned by {cleanup:?}");
        let t = f.store().tenant(&format!("shop-{i}")).unwrap();
        import(f.store(), t.id, &data);
        let before = f.store().tenant_by_id(t.id).unwrap();
        let store = f.store();
        let died = catch_unwind(AssertUnwindSafe(|| {
            store.import(t.id, &newer, &mut |p| {
                if p.phase == phase {
                    panic!("the process dies while {phase:?}");
                }
            })
        }));
        assert!(died.is_err(), "{case}");
        f.reopen();
        assert!(staged_rows(f) > 0, "{case}: nothing was staged");
        assert_eq!(imports_in(f, "running"), 1, "{case}");
        assert_eq!(f.store().tenant_by_id(t.id).unwrap(), before, "{case}");
        assert_same_dataset(&f.store().load(t.id).unwrap(), &data);
        match cleanup {
            Cleanup::CleanAbandoned => {
                assert_eq!(f.store().clean_abandoned().unwrap(), 1, "{case}");
                assert_eq!(f.store().clean_abandoned().unwrap(), 0, "{case}");
            }
            Cleanup::NextImport => {
                let report = import(f.store(), t.id, &newer);
                assert_eq!(report.products.updated, 1, "{case}");
                assert_eq!(report.lines.inserted, 1, "{case}");
            }
        }
        assert_eq!(staged_rows(f), 0, "{case}");
        assert_eq!(imports_in(f, "running"), 0, "{case}");
        assert_eq!(imports_in(f, "abandoned"), i as i64 + 1, "{case}");
    }
}

pub fn a_running_import_is_not_abandoned(f: &mut dyn Fixture) {
    let data = demo(120, 42);
    let t = f.store().tenant("shop").unwrap();
    let mut other = f.connect();
    let mut seen = Vec::new();
    f.store()
        .import(t.id, &data, &mut |p| {
            seen.push((p.phase, other.clean_abandoned().unwrap()));
            if p.phase == Phase::Merging && p.done < p.total {
                // Inside the merge's transaction: another process reads
                // without waiting, and sees none of it.
                assert_eq!(other.tenant("shop").unwrap(), t);
                assert_eq!(other.load(t.id).unwrap().products.len(), 0);
            }
        })
        .unwrap();
    assert!(seen.iter().any(|&(phase, _)| phase == Phase::Staging));
    assert!(
        seen.iter()
            .filter(|&&(phase, _)| phase == Phase::Merging)
            .count()
            > 1
    );
    assert!(seen.iter().all(|&(_, cleaned)| cleaned == 0), "{seen:?}");
    assert_eq!(imports_in(f, "done"), 1);
    assert_eq!(staged_rows(f), 0);
    assert_same_dataset(&other.load(t.id).unwrap(), &data);
}

pub fn a_newer_schema_is_refused(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap();
    f.execute(
        "INSERT INTO strata_migrations (version, name, applied_at) VALUES (4, 'from the future', 0)",
    );
    match f.try_reopen() {
        Err(StoreError::TooNew { found: 4, known: 3 }) => {}
        other => panic!("opened a newer schema: {other:?}"),
    }
    f.execute("DELETE FROM strata_migrations WHERE version = 4");
    f.reopen();
    assert_eq!(f.store().tenant("shop").unwrap(), t);
}

pub fn an_unknown_tenant_is_refused(f: &mut dyn Fixture) {
    let known = f.store().tenant("shop").unwrap();
    let unknown = TenantId(known.id.0 + 1000);
    let data = demo(120, 42);
    let s = f.store();
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        ("tenant_by_id", s.tenant_by_id(unknown).map(drop)),
        (
            "import",
            s.import(unknown, &data, &mut no_progress()).map(drop),
        ),
        ("load", s.load(unknown).map(drop)),
        (
            "commit",
            s.commit(
                unknown,
                &Commit {
                    seq: 1,
                    change: None,
                    events: &[],
                    clock: 0,
                    counts: &[],
                    day: day("2026-01-01"),
                    info: None,
                    anonymised_orders: &[],
                },
            ),
        ),
        (
            "reset_memberships",
            s.reset_memberships(unknown, &Memberships::default(), 0, 1),
        ),
        ("memberships", s.memberships(unknown).map(drop)),
        ("events", s.events(unknown, 0, 10).map(drop)),
        ("count_history", s.count_history(unknown, "vip").map(drop)),
    ];
    for (call, result) in results {
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{call}: {result:?}"
        );
    }
    assert_eq!(f.store().tenants().unwrap(), [known]);
    assert_eq!(staged_rows(f), 0);
}

/// The memberships and tiers of a from-scratch `strata_engine` evaluation
/// of `data` at `at` (an implementation independent of the live engine).
fn fresh_evaluation(data: &Dataset, at: jiff::Timestamp) -> Memberships {
    let engine = strata_engine::Engine::new(data.clone(), at).unwrap();
    let mut out = Memberships::default();
    for seg in &data.segments {
        let kind = match seg.kind {
            SegmentKind::Customer => Kind::Customer,
            SegmentKind::Product => Kind::Product,
        };
        let rule = engine
            .compile(kind, &format!("in_segment('{}')", seg.name))
            .unwrap();
        for e in engine.evaluate(&rule).unwrap() {
            out.members
                .push((seg.name.clone(), seg.kind, engine.id(kind, e).to_owned()));
        }
    }
    let names: std::collections::BTreeSet<&str> = data
        .tiers
        .iter()
        .flat_map(|s| s.tiers.iter().map(|t| t.name.as_str()))
        .collect();
    for name in names {
        let rule = engine
            .compile(Kind::Customer, &format!("tier = '{name}'"))
            .unwrap();
        for e in engine.evaluate(&rule).unwrap() {
            out.tiers
                .push((engine.id(Kind::Customer, e).to_owned(), name.to_owned()));
        }
    }
    out.members.sort();
    out.tiers.sort();
    out
}

fn sorted(mut m: Memberships) -> Memberships {
    m.members.sort();
    m.tiers.sort();
    m
}

/// `Live`: changes survive a restart; the restart evaluates the stored rows
/// at the stored clock, finds the stored memberships, and catches up with
/// the time that passed; an import in between refreshes the memberships.
pub fn a_restart_restores_the_live_engine_exactly(f: &mut dyn Fixture) {
    use strata_store::live::Live;
    let data = demo(120, 4);
    let tenant = f.store().tenant("default").unwrap();
    import(f.store(), tenant.id, &data);
    let t0 = strata_engine::clock::timestamp_nanos(demo_end());

    let (mut live, restored) = Live::open(f.connect(), "default", t0).unwrap();
    assert!(restored.refreshed, "an import came before any engine");
    assert_eq!(restored.mismatch, None);
    // A new order for a known customer, and a segment of recent buyers
    // that time will empty.
    let mut line = data.line_row(0);
    line.order_id = "LIVE-1".into();
    line.ordered_at = t0;
    line.status = None;
    let mut events = live.apply(Change::AddLines(vec![line])).unwrap();
    events.extend(
        live.apply(Change::PutSegment {
            name: "recent".into(),
            kind: Kind::Customer,
            rule: RuleSource::Text("last_order_date > -3d".into()),
        })
        .unwrap(),
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Event::Member { segment, enter: true, .. } if &**segment == "recent")
        ),
        "someone bought in the last 3 days"
    );
    let before = sorted(f.store().memberships(tenant.id).unwrap());
    drop(live);

    // Restart at the same instant: nothing to catch up, nothing differs.
    f.reopen();
    let stored = f.store().load(tenant.id).unwrap();
    let at0 = jiff::Timestamp::from_nanosecond(i128::from(t0)).unwrap();
    assert_eq!(fresh_evaluation(&stored, at0), before);
    let (live, restored) = Live::open(f.connect(), "default", t0).unwrap();
    assert!(!restored.refreshed);
    assert_eq!(restored.mismatch, None);
    assert_eq!(restored.caught_up, 0);
    assert_eq!(live.engine().last_change(), 2, "numbering continues");
    drop(live);

    // Restart ten days later: "recent" empties at its true instants.
    let t1 = t0 + 10 * 86_400 * 1_000_000_000;
    let (live, restored) = Live::open(f.connect(), "default", t1).unwrap();
    assert!(restored.caught_up > 0);
    assert_eq!(live.engine().count("recent"), Some(0));
    drop(live);
    let at1 = jiff::Timestamp::from_nanosecond(i128::from(t1)).unwrap();
    let stored = f.store().load(tenant.id).unwrap();
    let now_stored = sorted(f.store().memberships(tenant.id).unwrap());
    assert_eq!(fresh_evaluation(&stored, at1), now_stored);
    let exits: Vec<Nanos> = all_events(f.store(), tenant.id)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Member {
                segment,
                enter: false,
                at,
                cause: Cause::Time,
                ..
            } if &*segment == "recent" => Some(at),
            _ => None,
        })
        .collect();
    assert!(
        !exits.is_empty() && exits.iter().all(|&at| at > t0 && at <= t1),
        "{exits:?}"
    );

    // A segment that changes kind starts afresh, in the store too.
    let (mut live, _) = Live::open(f.connect(), "default", t1).unwrap();
    assert!(live.engine().count("vip").unwrap() > 0);
    live.apply(Change::PutSegment {
        name: "vip".into(),
        kind: Kind::Product,
        rule: RuleSource::Text("units_sold(since: -400d) > 0".into()),
    })
    .unwrap();
    assert!(live.engine().count("vip").unwrap() > 0);
    drop(live);
    let (live, restored) = Live::open(f.connect(), "default", t1).unwrap();
    assert_eq!(restored.mismatch, None);
    drop(live);
    let now_stored = sorted(f.store().memberships(tenant.id).unwrap());

    // Tampered memberships are found and repaired.
    f.execute("DELETE FROM memberships");
    let (live, restored) = Live::open(f.connect(), "default", t1).unwrap();
    assert!(restored.mismatch.is_some());
    drop(live);
    assert_eq!(
        sorted(f.store().memberships(tenant.id).unwrap()),
        now_stored
    );

    // An import between runs: the restore recomputes the memberships.
    let mut newer = data.clone();
    newer.customers.tags = strata_data::TagColumn::default();
    for _ in 0..newer.customers.len() {
        newer.customers.tags.offsets.push(0);
    }
    import(f.store(), tenant.id, &newer);
    let (live, restored) = Live::open(f.connect(), "default", t1).unwrap();
    assert!(restored.refreshed);
    drop(live);
    let stored = f.store().load(tenant.id).unwrap();
    assert_eq!(
        fresh_evaluation(&stored, at1),
        sorted(f.store().memberships(tenant.id).unwrap())
    );
}

// ---- schema version 2 --------------------------------------------------------

/// A database a version-1 program left, with a tenant and a segment in it,
/// is migrated when opened: the rows stay, the accounts tables work.
pub fn a_version_1_database_migrates_to_the_current_version(f: &mut dyn Fixture) {
    f.recreate_at_version_1();
    assert_eq!(
        f.query("SELECT MAX(version) FROM strata_migrations"),
        Some(1)
    );
    f.execute("INSERT INTO tenants (name, created_at) VALUES ('shop', 1)");
    // `owner` is version 1's column: the insert fails on any other schema.
    f.execute(
        "INSERT INTO segments (tenant_id, name, description, kind, rule_source, rule_text,
             rule_json, owner, created_at, updated_at)
         SELECT id, 'vip', 'Best customers', 'customer', 'text', 'amount_spent > 100', '{}',
             NULL, 5, 6
         FROM tenants",
    );
    // A product named by two lines: version 3 marks it.
    f.execute(
        "INSERT INTO products (tenant_id, sku) SELECT id, 'SKU-1' FROM tenants;
         INSERT INTO products (tenant_id, sku) SELECT id, 'SKU-2' FROM tenants;
         INSERT INTO orders (tenant_id, order_id, ordered_at, status)
             SELECT id, 'O-1', 1, 'shipped' FROM tenants;
         INSERT INTO order_lines (tenant_id, order_id, line_no, sku, quantity, unit_price,
                 discount, fees)
             SELECT id, 'O-1', n, 'SKU-1', 1, '1', '0', '0'
             FROM tenants, (SELECT 1 AS n UNION ALL SELECT 2) AS lines",
    );
    f.reopen();
    assert_eq!(f.store().schema_version().unwrap(), 3);
    assert_eq!(f.query("SELECT COUNT(*) FROM strata_migrations"), Some(3));
    assert_eq!(
        f.query("SELECT COUNT(*) FROM products WHERE sku = 'SKU-1' AND has_lines"),
        Some(1)
    );
    assert_eq!(
        f.query("SELECT COUNT(*) FROM products WHERE sku = 'SKU-2' AND has_lines"),
        Some(0)
    );
    let t = f.store().tenant("shop").unwrap();
    let vip = SegmentMeta {
        name: "vip".into(),
        description: Some("Best customers".into()),
        owner: None,
        created_at: 5,
        updated_at: 6,
    };
    assert_eq!(
        f.store().segment_metas(t.id).unwrap(),
        std::slice::from_ref(&vip)
    );
    let loaded = f.store().load(t.id).unwrap();
    assert_eq!(
        loaded.segments,
        [SavedSegment {
            name: "vip".into(),
            kind: SegmentKind::Customer,
            rule: RuleSource::Text("amount_spent > 100".into()),
            description: Some("Best customers".into()),
        }]
    );
    let ann = f
        .store()
        .create_user("ann@example.com", "h", true, 7)
        .unwrap();
    f.store()
        .set_access(t.id, ann.id, ModuleRights::default())
        .unwrap();
    f.store()
        .put_share(&share(t.id, "vip", ann.id, ann.id, 8))
        .unwrap();
    f.reopen();
    assert_eq!(f.store().schema_version().unwrap(), 3);
    assert_eq!(f.store().users().unwrap(), [ann]);
    assert_eq!(f.store().shares(t.id, "vip").unwrap().len(), 1);
    assert_eq!(f.store().segment_metas(t.id).unwrap(), [vip]);
}

// ---- accounts ----------------------------------------------------------------

fn user(f: &mut dyn Fixture, email: &str) -> User {
    f.store()
        .create_user(email, &format!("$argon2id$v=19${email}"), false, 1)
        .unwrap()
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "not refused: {result:?}"
    );
}

pub fn users_are_unique_by_lower_cased_email(f: &mut dyn Fixture) {
    let ann = f
        .store()
        .create_user("Ann.Lee@Example.COM", "$argon2id$ann", false, 100)
        .unwrap();
    assert_eq!(
        ann,
        User {
            id: ann.id,
            email: "ann.lee@example.com".into(),
            admin: false,
            created_at: 100,
        }
    );
    match f
        .store()
        .create_user("ANN.LEE@example.com", "$argon2id$other", true, 101)
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a taken e-mail in other case gave {other:?}"),
    }
    let bob = f
        .store()
        .create_user("bob@example.com", "$argon2id$bob", true, 102)
        .unwrap();
    assert!(bob.admin);
    assert!(bob.id > ann.id);
    f.reopen();
    assert_eq!(
        f.store().user_by_email("aNN.lEE@EXAMPLE.com").unwrap(),
        Some((ann.clone(), "$argon2id$ann".to_owned()))
    );
    assert_eq!(f.store().user_by_email("nobody@example.com").unwrap(), None);
    assert_eq!(f.store().user(bob.id).unwrap(), Some(bob.clone()));
    assert_eq!(f.store().user(UserId(bob.id.0 + 1000)).unwrap(), None);
    assert_eq!(f.store().users().unwrap(), [ann, bob]);
}

pub fn sessions_expire_at_their_instant(f: &mut dyn Fixture) {
    let ann = user(f, "ann@example.com");
    let bob = user(f, "bob@example.com");
    f.store()
        .create_session("hash-1", ann.id, 100, 200)
        .unwrap();
    f.store()
        .create_session("hash-2", bob.id, 100, 300)
        .unwrap();
    match f.store().create_session("hash-1", bob.id, 150, 400) {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a second session with one token gave {other:?}"),
    }
    assert_invalid(
        f.store()
            .create_session("hash-3", UserId(bob.id.0 + 1000), 100, 200),
    );
    f.reopen();
    let s = f.store();
    assert_eq!(s.session_user("hash-1", 100).unwrap(), Some(ann.clone()));
    assert_eq!(s.session_user("hash-1", 199).unwrap(), Some(ann.clone()));
    // Expired from `expires_at` on.
    assert_eq!(s.session_user("hash-1", 200).unwrap(), None);
    assert_eq!(s.session_user("hash-1", 250).unwrap(), None);
    assert_eq!(s.session_user("hash-2", 250).unwrap(), Some(bob.clone()));
    assert_eq!(s.session_user("no-such-hash", 0).unwrap(), None);
    assert!(s.delete_session("hash-2").unwrap());
    assert!(!s.delete_session("hash-2").unwrap());
    assert_eq!(s.session_user("hash-2", 250).unwrap(), None);
    // An expired session is still there to delete.
    assert!(s.delete_session("hash-1").unwrap());
}

pub fn tokens_are_revoked_by_their_owner_only(f: &mut dyn Fixture) {
    let ann = user(f, "ann@example.com");
    let bob = user(f, "bob@example.com");
    let ci = f
        .store()
        .create_token(ann.id, "ci", "stk_ab12", "hash-ci", 10)
        .unwrap();
    assert_eq!(
        ci,
        strata_store::ApiToken {
            id: ci.id,
            user: ann.id,
            name: "ci".into(),
            prefix: "stk_ab12".into(),
            created_at: 10,
            revoked_at: None,
        }
    );
    let laptop = f
        .store()
        .create_token(ann.id, "laptop", "stk_cd34", "hash-laptop", 11)
        .unwrap();
    let bobs = f
        .store()
        .create_token(bob.id, "script", "stk_ef56", "hash-bob", 12)
        .unwrap();
    match f
        .store()
        .create_token(bob.id, "again", "stk_ab12", "hash-ci", 13)
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a second token with one hash gave {other:?}"),
    }
    assert_invalid(
        f.store()
            .create_token(UserId(bob.id.0 + 1000), "x", "stk_x", "hash-x", 13),
    );
    f.reopen();
    let s = f.store();
    assert_eq!(s.tokens(ann.id).unwrap(), [ci.clone(), laptop.clone()]);
    assert_eq!(s.tokens(bob.id).unwrap(), std::slice::from_ref(&bobs));
    assert_eq!(s.token_user("hash-ci").unwrap(), Some(ann.clone()));
    assert_eq!(s.token_user("no-such-hash").unwrap(), None);
    // Bob cannot revoke Ann's token, nor a token that does not exist.
    assert!(!s.revoke_token(bob.id, ci.id, 20).unwrap());
    assert!(
        !s.revoke_token(ann.id, bobs.id.max(laptop.id) + 1000, 20)
            .unwrap()
    );
    assert_eq!(s.token_user("hash-ci").unwrap(), Some(ann.clone()));
    assert!(s.revoke_token(ann.id, ci.id, 20).unwrap());
    assert_eq!(s.token_user("hash-ci").unwrap(), None);
    // Revoked once: the first instant stays.
    assert!(!s.revoke_token(ann.id, ci.id, 30).unwrap());
    f.reopen();
    let s = f.store();
    let revoked = strata_store::ApiToken {
        revoked_at: Some(20),
        ..ci
    };
    assert_eq!(s.tokens(ann.id).unwrap(), [revoked, laptop]);
    assert_eq!(s.token_user("hash-ci").unwrap(), None);
    assert_eq!(s.token_user("hash-laptop").unwrap(), Some(ann));
    assert_eq!(s.token_user("hash-bob").unwrap(), Some(bob));
}

pub fn access_is_granted_per_store(f: &mut dyn Fixture) {
    let a = f.store().tenant("a").unwrap().id;
    let b = f.store().tenant("b").unwrap().id;
    let unknown = TenantId(a.0.max(b.0) + 1000);
    let ann = user(f, "ann@example.com");
    let bob = user(f, "bob@example.com");
    let rights = |p, c, t| ModuleRights {
        product_segments: p,
        customer_segments: c,
        tiers: t,
    };
    let editor = rights(Right::Edit, Right::Edit, Right::Read);
    let reader = rights(Right::Read, Right::None, Right::None);
    let s = f.store();
    s.set_access(a, ann.id, reader).unwrap();
    s.set_access(a, bob.id, reader).unwrap();
    s.set_access(b, ann.id, editor).unwrap();
    // Replaced, not added.
    s.set_access(a, ann.id, editor).unwrap();
    assert_invalid(s.set_access(unknown, ann.id, reader));
    assert_invalid(s.set_access(a, UserId(bob.id.0 + 1000), reader));
    assert_invalid(s.access(unknown, ann.id));
    f.reopen();
    let s = f.store();
    assert_eq!(s.access(a, ann.id).unwrap(), Some(editor));
    assert_eq!(s.access(a, bob.id).unwrap(), Some(reader));
    assert_eq!(s.access(b, bob.id).unwrap(), None);
    assert_eq!(
        s.accesses(a).unwrap(),
        [(ann.clone(), editor), (bob.clone(), reader)]
    );
    assert_eq!(s.accesses(b).unwrap(), [(ann.clone(), editor)]);
    assert_eq!(s.tenants_of(ann.id).unwrap(), [(a, editor), (b, editor)]);
    assert_eq!(s.tenants_of(bob.id).unwrap(), [(a, reader)]);
    assert!(s.remove_access(a, ann.id).unwrap());
    assert!(!s.remove_access(a, ann.id).unwrap());
    assert!(!s.remove_access(b, bob.id).unwrap());
    f.reopen();
    let s = f.store();
    assert_eq!(s.access(a, ann.id).unwrap(), None);
    assert_eq!(s.accesses(a).unwrap(), [(bob, reader)]);
    assert_eq!(s.tenants_of(ann.id).unwrap(), [(b, editor)]);
}

/// A share that lets `user` read, granted by `by` at `at`, never expiring.
fn share(tenant: TenantId, segment: &str, user: UserId, by: UserId, at: Nanos) -> SegmentShare {
    SegmentShare {
        tenant,
        segment: segment.into(),
        user,
        read: true,
        edit: false,
        delete: false,
        expires_at: None,
        granted_by: by,
        granted_at: at,
    }
}

fn put_segment(name: &str) -> Change {
    Change::PutSegment {
        name: name.into(),
        kind: Kind::Customer,
        rule: RuleSource::Text("amount_spent > 100".into()),
    }
}

/// Commits one change without events (the rows are what these tests look
/// at), with `info`.
fn commit_change(
    f: &mut dyn Fixture,
    tenant: TenantId,
    seq: u64,
    clock: Nanos,
    change: &Change,
    info: Option<&SegmentInfo>,
) -> Result<(), StoreError> {
    f.store().commit(
        tenant,
        &Commit {
            seq,
            change: Some(change),
            events: &[],
            clock,
            counts: &[],
            day: day("2026-01-01"),
            info,
            anonymised_orders: &[],
        },
    )
}

pub fn shares_are_kept_per_segment_and_user(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap().id;
    let other = f.store().tenant("other").unwrap().id;
    for (seq, name) in ["vip", "lapsed", "zz-last"].into_iter().enumerate() {
        commit_change(f, t, seq as u64 + 1, 10, &put_segment(name), None).unwrap();
    }
    commit_change(f, other, 1, 10, &put_segment("vip"), None).unwrap();
    let ann = user(f, "ann@example.com");
    let bob = user(f, "bob@example.com");
    let cat = user(f, "cat@example.com");
    let s = f.store();
    s.put_share(&share(t, "vip", bob.id, ann.id, 20)).unwrap();
    let cat_vip = SegmentShare {
        edit: true,
        expires_at: Some(500),
        ..share(t, "vip", cat.id, ann.id, 21)
    };
    s.put_share(&cat_vip).unwrap();
    let bob_lapsed = SegmentShare {
        edit: true,
        delete: true,
        ..share(t, "lapsed", bob.id, ann.id, 22)
    };
    s.put_share(&bob_lapsed).unwrap();
    s.put_share(&share(t, "zz-last", bob.id, ann.id, 22))
        .unwrap();
    s.put_share(&share(other, "vip", bob.id, ann.id, 23))
        .unwrap();
    // Replaced whole, by whoever granted it last.
    let bob_vip = SegmentShare {
        read: false,
        edit: true,
        expires_at: Some(100),
        granted_by: cat.id,
        granted_at: 30,
        ..share(t, "vip", bob.id, ann.id, 0)
    };
    s.put_share(&bob_vip).unwrap();
    assert_invalid(s.put_share(&share(t, "no-such-segment", bob.id, ann.id, 1)));
    assert_invalid(s.put_share(&share(t, "vip", UserId(cat.id.0 + 1000), ann.id, 1)));
    assert_invalid(s.put_share(&share(t, "vip", bob.id, UserId(cat.id.0 + 1000), 1)));
    assert_invalid(s.put_share(&share(
        TenantId(t.0.max(other.0) + 1000),
        "vip",
        bob.id,
        ann.id,
        1,
    )));
    f.reopen();
    let s = f.store();
    assert_eq!(s.share(t, "vip", bob.id).unwrap(), Some(bob_vip.clone()));
    assert_eq!(s.share(t, "vip", ann.id).unwrap(), None);
    assert_eq!(
        s.shares(t, "vip").unwrap(),
        [bob_vip.clone(), cat_vip.clone()]
    );
    assert_eq!(
        s.shares_of(t, bob.id).unwrap(),
        [
            bob_lapsed.clone(),
            bob_vip.clone(),
            share(t, "zz-last", bob.id, ann.id, 22)
        ]
    );
    assert_eq!(s.shares_of(other, bob.id).unwrap().len(), 1);
    assert!(s.revoke_share(t, "vip", cat.id).unwrap());
    assert!(!s.revoke_share(t, "vip", cat.id).unwrap());
    assert_eq!(s.shares(t, "vip").unwrap(), [bob_vip]);

    // Deleting a segment deletes its shares, in that tenant only.
    commit_change(f, t, 4, 40, &Change::DeleteSegment("vip".into()), None).unwrap();
    f.reopen();
    let s = f.store();
    assert_eq!(s.shares(t, "vip").unwrap(), []);
    assert_eq!(s.share(t, "vip", bob.id).unwrap(), None);
    assert_eq!(
        s.shares_of(t, bob.id).unwrap(),
        [bob_lapsed, share(t, "zz-last", bob.id, ann.id, 22)]
    );
    assert_eq!(s.shares(other, "vip").unwrap().len(), 1);
    // A segment of the same name made again starts with no shares.
    commit_change(f, t, 5, 50, &put_segment("vip"), None).unwrap();
    assert_eq!(f.store().shares(t, "vip").unwrap(), []);
}

pub fn segment_info_is_stored_with_put_segment(f: &mut dyn Fixture) {
    let t = f.store().tenant("shop").unwrap().id;
    let ann = user(f, "ann@example.com");
    let bob = user(f, "bob@example.com");
    let info = |description: Option<&str>, owner: Option<&User>| SegmentInfo {
        description: description.map(str::to_owned),
        owner: owner.map(|u| u.id),
    };
    let meta = |name: &str, description: Option<&str>, owner: Option<&User>, created, updated| {
        SegmentMeta {
            name: name.into(),
            description: description.map(str::to_owned),
            owner: owner.map(|u| u.id),
            created_at: created,
            updated_at: updated,
        }
    };
    let vip = put_segment("vip");
    let created = info(Some("Best customers"), Some(&ann));
    commit_change(f, t, 1, 100, &vip, Some(&created)).unwrap();
    f.reopen();
    assert_eq!(
        f.store().segment_metas(t).unwrap(),
        [meta("vip", Some("Best customers"), Some(&ann), 100, 100)]
    );
    assert_eq!(
        f.store().load(t).unwrap().segments[0]
            .description
            .as_deref(),
        Some("Best customers")
    );
    // An update replaces the description and keeps the owner.
    let updated = info(Some("Top 1%"), Some(&bob));
    commit_change(f, t, 2, 200, &vip, Some(&updated)).unwrap();
    assert_eq!(
        f.store().segment_metas(t).unwrap(),
        [meta("vip", Some("Top 1%"), Some(&ann), 100, 200)]
    );
    // `Some` info without a description clears it.
    commit_change(f, t, 3, 300, &vip, Some(&info(None, None))).unwrap();
    assert_eq!(
        f.store().segment_metas(t).unwrap(),
        [meta("vip", None, Some(&ann), 100, 300)]
    );
    // No info keeps both.
    commit_change(f, t, 4, 400, &vip, Some(&info(Some("Again"), None))).unwrap();
    commit_change(f, t, 5, 500, &vip, None).unwrap();
    // A segment made without info has neither; made with an unknown owner,
    // it is refused.
    commit_change(f, t, 6, 600, &put_segment("lapsed"), None).unwrap();
    let stranger = SegmentInfo {
        description: None,
        owner: Some(UserId(bob.id.0 + 1000)),
    };
    assert_invalid(commit_change(
        f,
        t,
        7,
        700,
        &put_segment("other"),
        Some(&stranger),
    ));
    f.reopen();
    assert_eq!(
        f.store().segment_metas(t).unwrap(),
        [
            meta("lapsed", None, None, 600, 600),
            meta("vip", Some("Again"), Some(&ann), 100, 500),
        ]
    );
    let loaded = f.store().load(t).unwrap();
    let descriptions: Vec<(&str, Option<&str>)> = loaded
        .segments
        .iter()
        .map(|s| (s.name.as_str(), s.description.as_deref()))
        .collect();
    assert_eq!(descriptions, [("vip", Some("Again")), ("lapsed", None)]);
    assert_eq!(f.store().tenant_by_id(t).unwrap().last_change, 6);
}

// ---- group commit ------------------------------------------------------------

pub fn a_batch_commits_every_change_in_order(f: &mut dyn Fixture) {
    let data = demo(300, 42);
    let mut live = Live::start(f.store(), &data);
    let changes = changes(&data, live.engine.now());
    let (first, rest) = changes.split_at(6);
    live.commit_batch(f.store(), first.to_vec());
    live.check(f.store());
    live.commit_batch(f.store(), rest.to_vec());
    f.reopen();
    live.check(f.store());
    // Nothing to commit commits nothing.
    f.store().commit_batch(live.tenant, &[]).unwrap();
    live.check(f.store());
}

pub fn a_batch_with_a_refused_commit_leaves_nothing(f: &mut dyn Fixture) {
    let data = demo(120, 42);
    let t = f.store().tenant("shop").unwrap();
    import(f.store(), t.id, &data);
    let ann = user(f, "ann@example.com");
    let segment = data.segments[0].name.clone();
    f.store()
        .put_share(&share(t.id, &segment, ann.id, ann.id, 1))
        .unwrap();
    let before = f.store().tenant_by_id(t.id).unwrap();
    let metas = f.store().segment_metas(t.id).unwrap();

    let product = Change::UpsertProduct(ProductRow {
        sku: "NEW-SKU".into(),
        ..ProductRow::default()
    });
    let delete = Change::DeleteSegment(segment.clone());
    let created = put_segment("created");
    let info = SegmentInfo {
        description: Some("new".into()),
        owner: Some(ann.id),
    };
    let refused = [
        Change::DeleteSegment("no-such-segment".into()),
        Change::DeleteProduct("NO-SUCH-SKU".into()),
    ];
    for refused in &refused {
        let events: Vec<Vec<Event>> = (1..=4)
            .map(|seq| {
                vec![member(
                    seq,
                    Cause::Change(seq as u64),
                    "vip",
                    "someone",
                    true,
                )]
            })
            .collect();
        let commit = |seq: u64, change, info| Commit {
            seq,
            change: Some(change),
            events: &events[seq as usize - 1],
            clock: seq as Nanos,
            counts: &[],
            day: day("2026-01-01"),
            info,
            anonymised_orders: &[],
        };
        let batch = [
            commit(1, &product, None),
            commit(2, &delete, None),
            commit(3, &created, Some(&info)),
            commit(4, refused, None),
        ];
        match f.store().commit_batch(t.id, &batch) {
            Err(StoreError::Invalid(message)) => {
                assert!(message.contains("commit 4 of 4"), "{message}");
            }
            other => panic!("{refused:?} in a batch gave {other:?}"),
        }
    }
    f.reopen();
    assert_eq!(f.store().tenant_by_id(t.id).unwrap(), before);
    assert_same_dataset(&f.store().load(t.id).unwrap(), &data);
    assert!(all_events(f.store(), t.id).is_empty());
    assert_eq!(f.store().memberships(t.id).unwrap(), Memberships::default());
    assert_eq!(f.store().segment_metas(t.id).unwrap(), metas);
    assert_eq!(f.store().shares(t.id, &segment).unwrap().len(), 1);
}

/// `Live::apply_batch` gives what applying the changes one by one gives,
/// stores the accepted ones and refuses the others one by one; a batch the
/// store refuses breaks the `Live` and stores none of it.
pub fn live_apply_batch_commits_the_accepted_changes(f: &mut dyn Fixture) {
    use strata_store::live::{Live as StoreLive, LiveStoreError};
    let data = demo(120, 4);
    for name in ["one-by-one", "batched"] {
        let tenant = f.store().tenant(name).unwrap();
        import(f.store(), tenant.id, &data);
    }
    let ann = user(f, "ann@example.com");
    let t0 = strata_engine::clock::timestamp_nanos(demo_end());
    let mut line = data.line_row(0);
    line.order_id = "LIVE-1".into();
    line.ordered_at = t0;
    line.status = None;
    let recent = SegmentInfo {
        description: Some("Bought in the last 3 days".into()),
        owner: Some(ann.id),
    };
    let items = vec![
        (Change::AddLines(vec![line]), None),
        (Change::DeleteProduct("NO-SUCH-SKU".into()), None),
        (
            Change::PutSegment {
                name: "recent".into(),
                kind: Kind::Customer,
                rule: RuleSource::Text("last_order_date > -3d".into()),
            },
            Some(recent.clone()),
        ),
        (
            Change::PutSegment {
                name: "broken".into(),
                kind: Kind::Customer,
                rule: RuleSource::Text("amount_spent >".into()),
            },
            None,
        ),
        (
            Change::UpsertCustomer(CustomerRow {
                email: Some("changed@example.com".into()),
                ..data.customer_row(1)
            }),
            None,
        ),
    ];

    let (mut one, _) = StoreLive::open(f.connect(), "one-by-one", t0).unwrap();
    let singly: Vec<Result<Vec<Event>, LiveStoreError>> = items
        .iter()
        .map(|(change, info)| one.apply_with(change.clone(), info.clone()))
        .collect();
    // Not the number of accepted changes: the engine spends a sequence
    // number on a segment whose rule it then refuses.
    let last_change = one.engine().last_change();
    drop(one);
    let (mut batched, _) = StoreLive::open(f.connect(), "batched", t0).unwrap();
    let together = batched.apply_batch(items.clone()).unwrap();
    assert_eq!(batched.engine().last_change(), last_change);
    drop(batched);

    assert_eq!(together.len(), items.len());
    for (i, (single, batch)) in singly.iter().zip(&together).enumerate() {
        match (single, batch) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "events of change {i}"),
            (Err(LiveStoreError::Refused(_)), Err(_)) => {}
            other => panic!("change {i}: {other:?}"),
        }
    }
    let refused: Vec<usize> = (0..together.len())
        .filter(|&i| together[i].is_err())
        .collect();
    assert_eq!(refused, [1, 3]);
    assert!(
        together[2].as_ref().is_ok_and(|events| !events.is_empty()),
        "someone bought in the last 3 days"
    );

    f.reopen();
    let one = f.store().tenant("one-by-one").unwrap();
    let batched = f.store().tenant("batched").unwrap();
    assert_eq!(
        (batched.last_change, batched.clock),
        (last_change, one.clock)
    );
    assert_eq!(one.last_change, last_change);
    let s = f.store();
    assert_same_dataset(&s.load(batched.id).unwrap(), &s.load(one.id).unwrap());
    assert_eq!(
        s.memberships(batched.id).unwrap(),
        s.memberships(one.id).unwrap()
    );
    let logged = |s: &mut dyn Store, t: TenantId| -> Vec<Event> {
        s.events(t, 0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    };
    let batched_events = logged(s, batched.id);
    assert!(!batched_events.is_empty());
    assert_eq!(batched_events, logged(s, one.id));
    assert_eq!(
        s.count_history(batched.id, "recent").unwrap(),
        s.count_history(one.id, "recent").unwrap()
    );
    // Imported segments are stamped with the wall clock; the live one with
    // the engine's.
    let metas = |s: &mut dyn Store, t: TenantId| -> Vec<SegmentMeta> {
        let mut metas = s.segment_metas(t).unwrap();
        for m in metas.iter_mut().filter(|m| m.name != "recent") {
            (m.created_at, m.updated_at) = (0, 0);
        }
        metas
    };
    let batched_metas = metas(s, batched.id);
    assert_eq!(batched_metas, metas(s, one.id));
    assert!(batched_metas.contains(&SegmentMeta {
        name: "recent".into(),
        description: recent.description.clone(),
        owner: recent.owner,
        created_at: t0,
        updated_at: t0,
    }));
    // The restored engine finds what the batch stored.
    let (mut live, restored) = StoreLive::open(f.connect(), "batched", t0).unwrap();
    assert_eq!(restored.mismatch, None);
    assert_eq!(live.engine().last_change(), last_change);

    // A batch the store refuses (an owner it does not know): none of it is
    // stored, and the `Live` must be reopened.
    let stranger = SegmentInfo {
        description: None,
        owner: Some(UserId(ann.id.0 + 1000)),
    };
    let result = live.apply_batch(vec![
        (
            Change::UpsertProduct(ProductRow {
                sku: "NEW-SKU".into(),
                ..ProductRow::default()
            }),
            None,
        ),
        (put_segment("strangers"), Some(stranger)),
    ]);
    assert!(
        matches!(result, Err(LiveStoreError::Broken(_))),
        "{result:?}"
    );
    assert!(matches!(
        live.apply(Change::DeleteProduct("NO-SUCH-SKU".into())),
        Err(LiveStoreError::Broken(_))
    ));
    drop(live);
    let after = f.store().tenant_by_id(batched.id).unwrap();
    assert_eq!(after.last_change, last_change);
    let loaded = f.store().load(batched.id).unwrap();
    assert!(!loaded.segments.iter().any(|s| s.name == "strangers"));
    assert!((0..loaded.products.len()).all(|p| loaded.product_row(p).sku != "NEW-SKU"));
    let (live, restored) = StoreLive::open(f.connect(), "batched", t0).unwrap();
    assert_eq!(restored.mismatch, None);
    assert_eq!(live.engine().last_change(), last_change);
}

/// `Live::apply_groups` takes a group whole or not at all: a group whose
/// second change the engine refuses leaves nothing in the engine or the
/// store, and what comes before and after it is as if it had never been
/// sent (compared with the same accepted changes applied one by one).
pub fn live_apply_groups_are_all_or_nothing(f: &mut dyn Fixture) {
    use strata_store::live::Live as StoreLive;
    let data = demo(120, 4);
    for name in ["one-by-one", "grouped"] {
        let tenant = f.store().tenant(name).unwrap();
        import(f.store(), tenant.id, &data);
    }
    let t0 = strata_engine::clock::timestamp_nanos(demo_end());
    let new_order = |id: &str, row: usize| {
        let mut line = data.line_row(row);
        line.order_id = id.into();
        line.ordered_at = t0;
        line.status = None;
        Change::AddLines(vec![line])
    };
    let status = |id: &str, status: &str| Change::SetOrderStatus {
        order_id: id.into(),
        status: status.into(),
    };
    let customer = Change::UpsertCustomer(CustomerRow {
        email: Some("changed@example.com".into()),
        ..data.customer_row(1)
    });
    let sku = data.product_row(0).sku;
    let inventory = Change::SetProductValue {
        sku: sku.clone(),
        value: ProductValue::Inventory(Some(999)),
    };
    // A segment the new orders move their buyers in and out of.
    let recent = Change::PutSegment {
        name: "recent".into(),
        kind: Kind::Customer,
        rule: RuleSource::Text("purchased(since: -1d)".into()),
    };
    let group = |changes: Vec<Change>| changes.into_iter().map(|c| (c, None)).collect();
    let groups = vec![
        group(vec![recent.clone(), customer.clone()]),
        // The engine takes the lines, then refuses the empty status.
        group(vec![new_order("GROUP-1", 0), status("GROUP-1", "")]),
        // Refused at its first change.
        group(vec![Change::DeleteProduct("NO-SUCH-SKU".into()), inventory]),
        group(vec![new_order("GROUP-2", 1), status("GROUP-2", "refunded")]),
    ];
    let accepted = [
        recent,
        customer,
        new_order("GROUP-2", 1),
        status("GROUP-2", "refunded"),
    ];

    let (mut one, _) = StoreLive::open(f.connect(), "one-by-one", t0).unwrap();
    let singly: Vec<Vec<Event>> = accepted
        .iter()
        .map(|c| one.apply(c.clone()).unwrap())
        .collect();
    let last_change = one.engine().last_change();
    drop(one);

    let (mut grouped, _) = StoreLive::open(f.connect(), "grouped", t0).unwrap();
    let results = grouped.apply_groups(groups).unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap(), &singly[..2].concat());
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(results[2].is_err(), "{:?}", results[2]);
    let both: Vec<Event> = singly[2..].concat();
    assert!(!both.is_empty(), "the buyer enters and leaves 'recent'");
    assert_eq!(results[3].as_ref().unwrap(), &both);
    let e = grouped.engine();
    assert_eq!(e.order_state("GROUP-1"), None);
    assert_eq!(e.order_state("GROUP-2"), Some(("refunded", 1)));
    assert_eq!(e.last_change(), last_change);
    drop(grouped);

    f.reopen();
    let one = f.store().tenant("one-by-one").unwrap();
    let grouped = f.store().tenant("grouped").unwrap();
    assert_eq!(
        (grouped.last_change, grouped.clock),
        (one.last_change, one.clock)
    );
    let s = f.store();
    let loaded = s.load(grouped.id).unwrap();
    assert_same_dataset(&loaded, &s.load(one.id).unwrap());
    assert!((0..loaded.orders.len()).all(|o| loaded.orders.order_id.get(o) != "GROUP-1"));
    let p = (0..loaded.products.len())
        .find(|&p| loaded.product_row(p).sku == sku)
        .unwrap();
    assert_ne!(loaded.product_row(p).inventory, Some(999));
    assert_eq!(
        s.memberships(grouped.id).unwrap(),
        s.memberships(one.id).unwrap()
    );
    let events = |s: &mut dyn Store, t: TenantId| -> Vec<Event> {
        all_events(s, t).into_iter().map(|e| e.event).collect()
    };
    assert_eq!(events(s, grouped.id), events(s, one.id));
    let (live, restored) = StoreLive::open(f.connect(), "grouped", t0).unwrap();
    assert_eq!(restored.mismatch, None);
    assert_eq!(live.engine().last_change(), last_change);
}
