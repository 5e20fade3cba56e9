//! Durable storage for Strata: one [`Store`] trait, two backends.
//!
//! - [`sqlite::SqliteStore`]: the embedded default, a bundled SQLite file in
//!   a data directory (WAL, `synchronous=FULL`: a commit that returned is on
//!   disk). Nothing to install or start.
//! - [`postgres::PgStore`]: PostgreSQL, for a team that runs Strata next to
//!   its own database.
//!
//! Both hold the same tables (`migrations/<backend>/NNNN_name.sql`, applied
//! in order and recorded in `strata_migrations`): tenants ("stores" in the
//! product's words) with their settings, products, customers, orders and
//! their lines, daily product rows, seller accounts and marketplaces seen,
//! saved segments, tier schemes, the current memberships and tiers, the
//! enter/exit event log and the member-count history; and, in the same
//! database, the accounts ([`Accounts`], a supertrait of [`Store`]): users,
//! login sessions, API tokens, per-store module rights, segment owners and
//! segment shares.
//!
//! # What a store guarantees
//!
//! - **A call that returned `Ok` is durable**, and a call that failed, or a
//!   process that died inside one, left no part of it behind.
//! - **Live changes commit with their consequences.** [`Store::commit`]
//!   writes a change, its events, the counts and the clock in one
//!   transaction; [`Store::commit_batch`] writes several such commits in
//!   one (group commit: one disk flush for the lot), all or none.
//! - **An import either completes or leaves no trace.** It writes its rows
//!   into staging tables in committed batches, then moves them into the
//!   real tables in one transaction; staging rows of an import that died are
//!   removed by the next import or [`Store::clean_abandoned`]. Readers never
//!   look at staging tables.
//! - **Rows come back as they went in**: [`Store::load`] rebuilds a
//!   [`Dataset`] that evaluates exactly like the imported one, entities in
//!   first-stored order (so `members` prints in the order of the files).
//! - Instants are kept as i64 nanoseconds since the epoch (PostgreSQL's
//!   `timestamptz` has only microseconds); money as exact decimals (`TEXT` in
//!   SQLite, `NUMERIC` in PostgreSQL).
//!
//! Identity, so that imports are idempotent: a product by `sku`, a customer
//! by `customer_id`, an order by `order_id`, an order line by `(order_id,
//! line_no)` where `line_no` is the line's position among its order's lines
//! (1-based, file order; live `AddLines` continue the numbering), a daily
//! row by `(sku, date)`, a segment by name, a tier scheme by marketplace.

use jiff::civil::Date;
use strata_data::{Dataset, Nanos, SegmentKind};
use strata_live::{Change, Event};

pub mod accounts;
pub mod live;
mod migrate;
mod open;
pub mod postgres;
mod rows_json;
pub mod sqlite;
mod staging;

pub use accounts::{
    Accounts, ApiToken, ModuleRights, Right, SegmentMeta, SegmentShare, User, UserId,
};
pub use open::{Location, open};

/// Rows per committed staging batch of an import: the backend's `default`,
/// or `STRATA_IMPORT_BATCH` (crash tests use small batches so that a kill
/// lands between two of them).
pub(crate) fn import_batch(default: usize) -> usize {
    std::env::var("STRATA_IMPORT_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(default)
}

/// An error of the `i`th of `n` commits of a batch, saying which one when
/// there are several.
pub(crate) fn in_batch(err: StoreError, i: usize, n: usize) -> StoreError {
    match err {
        StoreError::Invalid(m) if n > 1 => {
            StoreError::Invalid(format!("commit {} of {n} in the batch: {m}", i + 1))
        }
        err => err,
    }
}

/// A tenant's id in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// IANA time zone name (`UTC` by default).
    pub timezone: String,
    pub currency: String,
    /// The live engine's clock at its last commit (`None`: no engine has
    /// run on this tenant yet).
    pub clock: Option<Nanos>,
    /// Sequence number of the last committed change (0: none).
    pub last_change: u64,
    /// Bumped by every import that changed something: the stored
    /// memberships were computed before it.
    pub data_version: u64,
    /// The `data_version` the stored memberships and tiers were computed
    /// on (0: none stored yet).
    pub memberships_version: u64,
}

/// Which phase an import is in, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Writing rows into staging, in committed batches.
    Staging,
    /// Moving staged rows into the tables, in one transaction.
    Merging,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    /// Rows done and in all, over every file of the import.
    pub done: u64,
    pub total: u64,
}

/// What an import changed, per kind of row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub import_id: i64,
    pub products: Counts,
    pub customers: Counts,
    pub orders: Counts,
    pub lines: Counts,
    pub daily: Counts,
    pub segments: Counts,
    pub tier_schemes: Counts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows that were not there before.
    pub inserted: u64,
    /// Rows that were there with other values.
    pub updated: u64,
    /// Rows that were there with the same values.
    pub unchanged: u64,
}

/// One live change as the engine took it, in one transaction: the rows it
/// changes, the events it gave, the clock after it. A clock advance alone
/// has `change: None`.
#[derive(Clone, Debug)]
pub struct Commit<'a> {
    /// The engine's sequence number of `change` (the previous one for a
    /// clock advance).
    pub seq: u64,
    pub change: Option<&'a Change>,
    pub events: &'a [Event],
    /// The engine clock after the change.
    pub clock: Nanos,
    /// For every segment whose count changed: its count after the commit,
    /// recorded as the count of `day` (the clock's day in the tenant's time
    /// zone) in the count history.
    pub counts: &'a [(String, u64)],
    pub day: Date,
    /// With a `PutSegment`: the description to store (replacing the stored
    /// one) and the owner to record if the segment is new. `None` keeps
    /// both as stored.
    pub info: Option<&'a SegmentInfo>,
    /// With a `DeleteCustomer`: every order of the customer, which stays
    /// as an anonymous buyer's. The engine keeps each customer's orders;
    /// the store keeps no index from customers to orders, because keeping
    /// one costs a random index write for every order committed.
    pub anonymised_orders: &'a [String],
}

/// What a `PutSegment` carries besides its rule, from the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentInfo {
    pub description: Option<String>,
    /// Recorded when the segment is created; an existing owner stays.
    pub owner: Option<UserId>,
}

/// A logged event, with its position in the log (cursor for paging).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Increasing in commit order, unique within the store.
    pub id: i64,
    pub event: Event,
}

/// The memberships and tiers as last committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memberships {
    /// (segment, kind, entity id), sorted.
    pub members: Vec<(String, SegmentKind, String)>,
    /// (customer id, tier name), sorted; customers without a tier absent.
    pub tiers: Vec<(String, String)>,
}

/// A refusal the caller should show to the user, or a failure of the
/// database underneath.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request contradicts the stored data (an unknown tenant, a
    /// change the tables cannot take).
    #[error("{0}")]
    Invalid(String),
    /// The row exists already (an e-mail taken, say).
    #[error("{0}")]
    Conflict(String),
    /// The database's schema is newer than this program knows.
    #[error(
        "the database is at schema version {found}, newer than this program's {known}: upgrade Strata"
    )]
    TooNew { found: i64, known: i64 },
    /// Stored rows that do not form a valid dataset: corruption or a bug.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The storage a Strata process keeps its data in. Calls are blocking; one
/// value is one connection (open another for another thread).
pub trait Store: Accounts + Send {
    /// `sqlite` or `postgres`, for messages.
    fn backend(&self) -> &'static str;

    /// The tenant of that name, created (UTC, USD) if missing.
    fn tenant(&mut self, name: &str) -> Result<Tenant, StoreError>;

    /// A tenant by id, as stored now.
    fn tenant_by_id(&mut self, id: TenantId) -> Result<Tenant, StoreError>;

    fn tenants(&mut self) -> Result<Vec<Tenant>, StoreError>;

    /// Writes a validated dataset into a tenant: upserts its products,
    /// customers, orders, order lines, daily rows, segments and tier
    /// schemes by identity (see the crate docs), and sets the tenant's time
    /// zone and currency from its settings. Never deletes. Bumps
    /// `data_version` if anything changed. `progress` is called after
    /// every batch.
    fn import(
        &mut self,
        tenant: TenantId,
        data: &Dataset,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError>;

    /// Every row of a tenant as a dataset (settings, tiers and segments
    /// included).
    fn load(&mut self, tenant: TenantId) -> Result<Dataset, StoreError>;

    /// Writes one live change, its events and the clock, atomically.
    fn commit(&mut self, tenant: TenantId, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.commit_batch(tenant, std::slice::from_ref(commit))
    }

    /// Writes several commits, in order, in one transaction (group commit:
    /// one disk flush for a batch of changes). All or nothing.
    fn commit_batch(&mut self, tenant: TenantId, commits: &[Commit<'_>]) -> Result<(), StoreError>;

    /// Replaces the stored memberships and tiers of a tenant wholesale (after
    /// a restore found them stale), with the clock and `data_version`
    /// they are valid for, in one transaction.
    fn reset_memberships(
        &mut self,
        tenant: TenantId,
        memberships: &Memberships,
        clock: Nanos,
        data_version: u64,
    ) -> Result<(), StoreError>;

    fn memberships(&mut self, tenant: TenantId) -> Result<Memberships, StoreError>;

    /// Logged events with `id > after`, oldest first, at most `limit`.
    fn events(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The id of the newest logged event of a tenant (0: none yet), where
    /// a stream that wants only new events starts.
    fn last_event_id(&mut self, tenant: TenantId) -> Result<i64, StoreError> {
        let mut after = 0;
        loop {
            match self.events(tenant, after, 10_000)?.last() {
                Some(e) => after = e.id,
                None => return Ok(after),
            }
        }
    }

    /// A segment's recorded counts by day, oldest first.
    fn count_history(
        &mut self,
        tenant: TenantId,
        segment: &str,
    ) -> Result<Vec<(Date, u64)>, StoreError>;

    /// Removes the staging rows of imports whose process died, and marks
    /// those imports abandoned. Returns how many there were.
    fn clean_abandoned(&mut self) -> Result<u64, StoreError>;

    /// The schema version the database is at.
    fn schema_version(&mut self) -> Result<i64, StoreError>;
}
