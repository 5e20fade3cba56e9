//! One tenant's live engine, owned by one thread.
//!
//! The thread owns the `Live` (engine plus its store connection); requests
//! reach it through a channel. Changes that queue up while a commit runs
//! are applied one by one and committed together (group commit: one disk
//! flush for the lot), so a busy ingest costs one flush per batch, not per
//! change. An intent the server turns into several changes (an order post:
//! new lines and a status) is all or nothing, in the engine and in the
//! store ([`Live::apply_groups`]). Between requests the thread moves the engine's clock to the
//! server clock, so windows expire on time without any request.
//!
//! Questions about every entity (an unsaved rule's members, member tables
//! sorted by any field, CSV export) are answered by a **snapshot**: the
//! live state written out as a dataset and loaded into the bitmap engine
//! of `strata-engine`, which evaluates a rule over a million customers in
//! milliseconds. Snapshots are rebuilt when the data or the clock moved;
//! see [`TenantHandle::snapshot`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;
use rustc_hash::{FxHashMap, FxHashSet};
use strata_data::Nanos;
use strata_lang::catalog::Kind;
use strata_live::{Change, Event, LiveError};
use strata_store::live::Live;
use strata_store::{SegmentInfo, TenantId};
use tokio::sync::{oneshot, watch};

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Clock};

type Job = Box<dyn FnOnce(&mut Live) + Send>;
pub type Applied = Vec<Result<Vec<Event>, LiveError>>;

/// What a request asks of the engine.
// An intent lives only on its way to the engine thread (moved, not copied):
// the size of a `Change` inline costs nothing worth a box at every call.
#[allow(clippy::large_enum_variant)]
pub enum Intent {
    Change(Change, Option<SegmentInfo>),
    /// An order as a whole. Lines are identified by their position in the
    /// order (as imports do), so a repeated post adds nothing, a longer one
    /// adds the lines past those stored, and a different status changes it;
    /// both or neither.
    Order {
        order_id: String,
        lines: Vec<strata_live::LineRow>,
        status: String,
    },
}

enum Cmd {
    Apply {
        items: Vec<Intent>,
        reply: oneshot::Sender<ApiResult<Applied>>,
    },
    Run(Job),
    Stop,
}

/// Where the engine stands: the last change and its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub seq: u64,
    pub clock: Nanos,
}

/// The live state at one position, in the bitmap engine.
pub struct Snapshot {
    pub engine: strata_engine::Engine,
    pub at: Position,
    pub built_in: Duration,
    ids: [OnceLock<FxHashMap<Box<str>, u32>>; 2],
    orders: OnceLock<FxHashMap<Box<str>, u32>>,
    order_lines: OnceLock<Vec<Vec<u32>>>,
    /// Member tables (rows in page order), most recently used first: a
    /// table is paged through one request at a time, and sorting or
    /// filtering every member again for each page would cost a sort per
    /// page. Being the snapshot's, they go when it is replaced.
    tables: Mutex<VecDeque<(TableKey, Arc<Vec<u32>>)>>,
    tables_built: AtomicU64,
}

/// What a member table is: a segment's members, filtered by a rule,
/// sorted by a field (the snapshot they come from is the one holding it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableKey {
    pub segment: String,
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub desc: bool,
}

/// How many member tables a snapshot keeps.
const TABLES: usize = 16;

impl Snapshot {
    /// The rows of the table `key`, made by `build` unless kept from an
    /// earlier request. Two requests missing at once both build it.
    pub fn table(
        &self,
        key: &TableKey,
        build: impl FnOnce() -> ApiResult<Vec<u32>>,
    ) -> ApiResult<Arc<Vec<u32>>> {
        {
            let mut tables = self.tables.lock().map_err(ApiError::internal)?;
            if let Some(i) = tables.iter().position(|(k, _)| k == key) {
                let hit = tables
                    .remove(i)
                    .ok_or_else(|| ApiError::internal("lost a table"))?;
                let rows = Arc::clone(&hit.1);
                tables.push_front(hit);
                return Ok(rows);
            }
        }
        let rows = Arc::new(build()?);
        self.tables_built.fetch_add(1, Ordering::Relaxed);
        let mut tables = self.tables.lock().map_err(ApiError::internal)?;
        if !tables.iter().any(|(k, _)| k == key) {
            tables.push_front((key.clone(), Arc::clone(&rows)));
            tables.truncate(TABLES);
        }
        Ok(rows)
    }

    /// How many member tables were built (not found kept) on this
    /// snapshot.
    pub fn tables_built(&self) -> u64 {
        self.tables_built.load(Ordering::Relaxed)
    }

    /// The row of an entity id.
    pub fn row(&self, kind: Kind, id: &str) -> Option<u32> {
        let slot = match kind {
            Kind::Customer => 0,
            Kind::Product => 1,
        };
        self.ids[slot]
            .get_or_init(|| {
                let n = self.engine.len(kind) as u32;
                (0..n)
                    .map(|r| (Box::from(self.engine.id(kind, r)), r))
                    .collect()
            })
            .get(id)
            .copied()
    }

    /// The dense index of an order id.
    pub fn order(&self, id: &str) -> Option<u32> {
        self.orders
            .get_or_init(|| {
                let o = &self.engine.data().orders;
                (0..o.len())
                    .map(|i| (Box::from(o.order_id.get(i)), i as u32))
                    .collect()
            })
            .get(id)
            .copied()
    }

    /// The lines of an order, in file order.
    pub fn lines_of(&self, order: u32) -> &[u32] {
        let all = self.order_lines.get_or_init(|| {
            let d = self.engine.data();
            let mut out = vec![Vec::new(); d.orders.len()];
            for (l, &o) in d.lines.order.iter().enumerate() {
                out[o as usize].push(l as u32);
            }
            out
        });
        all.get(order as usize).map_or(&[], Vec::as_slice)
    }

    /// The members of an unsaved rule, and its normalised text.
    pub fn evaluate(
        &self,
        kind: Kind,
        rule: strata_data::RuleSource,
    ) -> ApiResult<(RoaringBitmap, String)> {
        let seg = strata_data::SavedSegment {
            name: String::new(),
            kind: match kind {
                Kind::Customer => strata_data::SegmentKind::Customer,
                Kind::Product => strata_data::SegmentKind::Product,
            },
            rule,
            description: None,
        };
        let (expr, source) = strata_engine::parse_saved_rule(&seg, &self.engine.schema(kind))
            .map_err(|mut e| {
                e.segment = None;
                ApiError::rule(&e)
            })?;
        let text = strata_lang::to_text(&expr);
        let compiled = self
            .engine
            .compile_expr(kind, expr, &source)
            .map_err(|e| match e {
                strata_engine::EngineError::Rule(r) => ApiError::rule(&r),
                other => ApiError::internal(other),
            })?;
        let members = self
            .engine
            .evaluate(&compiled)
            .map_err(ApiError::internal)?;
        Ok((members, text))
    }

    pub fn members_of(&self, name: &str) -> Option<(Kind, RoaringBitmap)> {
        let (i, (_, kind)) = self
            .engine
            .saved_segments()
            .enumerate()
            .find(|(_, (n, _))| *n == name)?;
        let set = self.engine.saved_members(i).ok()?.clone();
        Some((kind, set))
    }
}

struct SnapState {
    current: Option<Arc<Snapshot>>,
    building: bool,
    last_build: Duration,
    /// When the last build ended: slow builds are spaced out, because
    /// writing the dataset out holds the engine thread (and so ingestion).
    finished: Option<Instant>,
}

impl SnapState {
    /// A background rebuild may start: at most one at a time, and after a
    /// pause of twice the last build's time (at least a second) since the
    /// previous one, so that snapshots take at most about a third of the
    /// engine thread however busy the readers are.
    fn may_start(&self) -> bool {
        !self.building
            && self
                .finished
                .is_none_or(|f| f.elapsed() >= (self.last_build * 2).max(Duration::from_secs(1)))
    }
}

pub struct TenantHandle {
    pub id: TenantId,
    pub name: String,
    tx: Mutex<mpsc::Sender<Cmd>>,
    /// The engine's position after each commit; SSE streams wait on it.
    pub position: watch::Receiver<Position>,
    snap: Mutex<SnapState>,
    snap_done: tokio::sync::Notify,
    sync_budget: Duration,
    /// The server clock, which the engine follows.
    clock: Arc<dyn Clock>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TenantHandle {
    /// Restores the tenant's engine from the store (blocking: it reads
    /// every row) and starts its thread.
    pub fn start(state: &Arc<AppState>, id: TenantId, name: &str) -> ApiResult<Arc<TenantHandle>> {
        let store = state.pool.open()?;
        let clock = Arc::clone(&state.clock);
        let (live, restored) = Live::open(store, name, clock.now())?;
        if let Some(m) = &restored.mismatch {
            tracing::warn!(
                tenant = name,
                "stored memberships disagreed with the rows: {m}"
            );
        }
        tracing::info!(
            tenant = name,
            load_ms = restored.load.as_millis() as u64,
            evaluate_ms = restored.evaluate.as_millis() as u64,
            caught_up = restored.caught_up,
            "engine restored"
        );
        let pos = Position {
            seq: live.engine().last_change(),
            clock: live.engine().now(),
        };
        let (pos_tx, pos_rx) = watch::channel(pos);
        let (tx, rx) = mpsc::channel();
        let tick = state.config.tick;
        let thread = std::thread::Builder::new()
            .name(format!("tenant-{}", id.0))
            .spawn(move || run(live, rx, pos_tx, clock, tick))
            .map_err(ApiError::internal)?;
        Ok(Arc::new(TenantHandle {
            id,
            name: name.to_owned(),
            tx: Mutex::new(tx),
            position: pos_rx,
            snap: Mutex::new(SnapState {
                current: None,
                building: false,
                last_build: Duration::ZERO,
                finished: None,
            }),
            snap_done: tokio::sync::Notify::new(),
            sync_budget: state.config.sync_snapshot_budget,
            clock: Arc::clone(&state.clock),
            thread: Mutex::new(Some(thread)),
        }))
    }

    fn send(&self, cmd: Cmd) -> ApiResult<()> {
        self.tx
            .lock()
            .map_err(ApiError::internal)?
            .send(cmd)
            .map_err(|_| ApiError::internal("the tenant's engine thread stopped"))
    }

    /// Applies intents in order and commits the accepted ones; a refused
    /// intent gets its error and leaves no trace, whatever number of
    /// changes it became.
    pub async fn apply(&self, items: Vec<Intent>) -> ApiResult<Applied> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Apply { items, reply })?;
        rx.await.map_err(ApiError::internal)?
    }

    /// Applies one change; its refusal is the error.
    pub async fn apply_one(
        &self,
        change: Change,
        info: Option<SegmentInfo>,
    ) -> ApiResult<Vec<Event>> {
        self.apply_intent(Intent::Change(change, info)).await
    }

    pub async fn apply_intent(&self, intent: Intent) -> ApiResult<Vec<Event>> {
        let mut out = self.apply(vec![intent]).await?;
        match out.pop() {
            Some(r) => r.map_err(ApiError::from),
            None => Err(ApiError::internal("no result for a change")),
        }
    }

    /// Runs `f` on the engine's thread, between changes.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Live) -> R + Send + 'static,
    ) -> ApiResult<R> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Run(Box::new(move |live| {
            let _ = tx.send(f(live));
        })))?;
        rx.await.map_err(ApiError::internal)
    }

    /// A snapshot for questions about every entity.
    ///
    /// It is exact (built at the engine's current position) when one was
    /// already there or rebuilding takes less than the budget; otherwise
    /// the previous snapshot answers while a new one builds in the
    /// background, and its `at` tells how old the answer is.
    pub async fn snapshot(self: &Arc<Self>) -> ApiResult<Arc<Snapshot>> {
        // The engine follows the clock between requests (each tick) and
        // before any request it runs: make it do so now if the clock moved
        // since, so the answer is for the present.
        if self.clock.now() > self.position.borrow().clock {
            self.with(|_| ()).await?;
        }
        loop {
            let now = *self.position.borrow();
            let (wait, start) = {
                let mut s = self.snap.lock().map_err(ApiError::internal)?;
                match &s.current {
                    Some(cur) if cur.at == now => return Ok(Arc::clone(cur)),
                    Some(cur) if s.last_build > self.sync_budget => {
                        let cur = Arc::clone(cur);
                        if s.may_start() {
                            s.building = true;
                            self.spawn_build();
                        }
                        return Ok(cur);
                    }
                    _ => {
                        let start = !s.building;
                        s.building = true;
                        (self.snap_done.notified(), start)
                    }
                }
            };
            if start {
                self.spawn_build();
            }
            wait.await;
            let s = self.snap.lock().map_err(ApiError::internal)?;
            if let Some(cur) = &s.current
                && (cur.at == *self.position.borrow() || s.last_build > self.sync_budget)
            {
                return Ok(Arc::clone(cur));
            }
        }
    }

    fn spawn_build(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let built = me.build().await;
            if let Ok(mut s) = me.snap.lock() {
                s.building = false;
                s.finished = Some(Instant::now());
                match built {
                    Ok(snap) => {
                        s.last_build = snap.built_in;
                        s.current = Some(Arc::new(snap));
                    }
                    Err(e) => tracing::error!(tenant = me.name, "snapshot failed: {e}"),
                }
            }
            me.snap_done.notify_waiters();
        });
    }

    async fn build(&self) -> ApiResult<Snapshot> {
        let started = Instant::now();
        let (data, at) = self
            .with(|live| {
                let e = live.engine();
                let at = Position {
                    seq: e.last_change(),
                    clock: e.now(),
                };
                (e.to_dataset(), at)
            })
            .await?;
        let engine = tokio::task::spawn_blocking(move || {
            let now = jiff::Timestamp::from_nanosecond(i128::from(at.clock))
                .map_err(ApiError::internal)?;
            strata_engine::Engine::new(data, now).map_err(ApiError::internal)
        })
        .await
        .map_err(ApiError::internal)??;
        Ok(Snapshot {
            engine,
            at,
            built_in: started.elapsed(),
            ids: [OnceLock::new(), OnceLock::new()],
            orders: OnceLock::new(),
            order_lines: OnceLock::new(),
            tables: Mutex::new(VecDeque::new()),
            tables_built: AtomicU64::new(0),
        })
    }

    /// Ends the engine's thread after the work queued before.
    pub fn stop(&self) {
        let _ = self.send(Cmd::Stop);
        if let Ok(mut t) = self.thread.lock()
            && let Some(t) = t.take()
        {
            let _ = t.join();
        }
    }
}

fn run(
    mut live: Live,
    rx: mpsc::Receiver<Cmd>,
    pos: watch::Sender<Position>,
    clock: Arc<dyn Clock>,
    tick: Duration,
) {
    let mut queue: VecDeque<Cmd> = VecDeque::new();
    let publish = |live: &Live| {
        let p = Position {
            seq: live.engine().last_change(),
            clock: live.engine().now(),
        };
        pos.send_if_modified(|old| {
            let changed = *old != p;
            *old = p;
            changed
        });
    };
    loop {
        let cmd = match queue.pop_front() {
            Some(c) => c,
            None => match rx.recv_timeout(tick) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = live.advance_to(clock.now()) {
                        tracing::error!("moving the clock failed: {e}");
                    }
                    publish(&live);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        match cmd {
            Cmd::Stop => return,
            Cmd::Run(job) => {
                // Reads see the engine at the current time.
                let _ = live.advance_to(clock.now());
                publish(&live);
                job(&mut live);
                publish(&live);
            }
            Cmd::Apply { items, reply } => {
                // Group commit: take every change already waiting.
                let mut batch = vec![(items, reply)];
                while let Ok(next) = rx.try_recv() {
                    match next {
                        Cmd::Apply { items, reply } => batch.push((items, reply)),
                        other => {
                            queue.push_back(other);
                            break;
                        }
                    }
                }
                let _ = live.advance_to(clock.now());
                let mut plan = Planner::default();
                // Planned and not yet applied: one group of changes per
                // intent, applied all or nothing.
                let mut planned: Vec<Group> = Vec::new();
                // Per planned group, in order: its outcome (`None`: lost
                // to a failed commit).
                let mut results: Vec<Option<Result<Vec<Event>, LiveError>>> = Vec::new();
                let mut failed: Option<String> = None;
                // Per request, per intent: the index in `results` of its
                // group, or its refusal before reaching the engine.
                let mut shapes: Vec<Vec<Result<usize, LiveError>>> = Vec::new();
                for (items, _) in &mut batch {
                    let mut mine = Vec::new();
                    for intent in items.drain(..) {
                        // An order planned on what the engine holds must see
                        // what came before it applied (or refused).
                        if plan.must_apply_first(&intent) {
                            flush(&mut live, &mut planned, &mut results, &mut failed);
                            plan = Planner::default();
                        }
                        match plan.changes(live.engine(), intent) {
                            Ok(group) => {
                                mine.push(Ok(results.len() + planned.len()));
                                planned.push(group);
                            }
                            Err(e) => mine.push(Err(e)),
                        }
                    }
                    shapes.push(mine);
                }
                flush(&mut live, &mut planned, &mut results, &mut failed);
                // Published before anyone hears back, so that a request
                // made after the reply sees the change (snapshots compare
                // this position to theirs).
                publish(&live);
                for ((_, reply), shape) in batch.into_iter().zip(shapes) {
                    let lost = shape
                        .iter()
                        .any(|r| r.as_ref().is_ok_and(|&i| results[i].is_none()));
                    if lost {
                        let msg = failed.clone().unwrap_or_default();
                        let _ = reply.send(Err(ApiError::from(
                            strata_store::live::LiveStoreError::Broken(msg),
                        )));
                        continue;
                    }
                    let mine: Applied = shape
                        .into_iter()
                        .map(|r| {
                            results[r?]
                                .take()
                                .unwrap_or_else(|| Err(LiveError::Invalid("no result".into())))
                        })
                        .collect();
                    let _ = reply.send(Ok(mine));
                }
            }
        }
    }
}

/// The changes one intent became, applied all or nothing.
type Group = Vec<(Change, Option<SegmentInfo>)>;

/// Applies and commits the planned groups (one transaction); their
/// outcomes join `results`. After a failed commit nothing more is applied
/// and the outcomes are `None`.
fn flush(
    live: &mut Live,
    planned: &mut Vec<Group>,
    results: &mut Vec<Option<Result<Vec<Event>, LiveError>>>,
    failed: &mut Option<String>,
) {
    let groups = std::mem::take(planned);
    if groups.is_empty() {
        return;
    }
    let n = groups.len();
    if failed.is_none() {
        match live.apply_groups(groups) {
            Ok(done) => {
                results.extend(done.into_iter().map(Some));
                return;
            }
            Err(e) => *failed = Some(e.to_string()),
        }
    }
    results.extend((0..n).map(|_| None));
}

/// Turns intents into changes against the engine's state. An order is
/// planned on what the engine holds of it, so an order that changes (or
/// may change) an order planned before must wait until that one has been
/// applied: [`Planner::must_apply_first`].
#[derive(Default)]
struct Planner {
    /// Orders the changes planned so far touch.
    orders: FxHashSet<String>,
}

impl Planner {
    fn must_apply_first(&self, intent: &Intent) -> bool {
        matches!(intent, Intent::Order { order_id, .. } if self.orders.contains(order_id))
    }

    /// The changes an intent becomes, in an order where only the first
    /// can be refused once the checks here pass: a group refused after
    /// its first change costs a rebuild of the engine
    /// ([`Live::apply_groups`]).
    fn changes(
        &mut self,
        engine: &strata_live::LiveEngine,
        intent: Intent,
    ) -> Result<Group, LiveError> {
        match intent {
            Intent::Change(c, info) => {
                match &c {
                    Change::SetOrderStatus { order_id, .. } => {
                        self.orders.insert(order_id.clone());
                    }
                    Change::AddLines(lines) => {
                        self.orders.extend(lines.iter().map(|l| l.order_id.clone()));
                    }
                    _ => {}
                }
                Ok(vec![(c, info)])
            }
            Intent::Order {
                order_id,
                mut lines,
                status,
            } => {
                self.orders.insert(order_id.clone());
                let stored = engine
                    .order_state(&order_id)
                    .map(|(s, n)| (s.to_owned(), n));
                let mut out = Vec::new();
                match stored {
                    None => {
                        if lines.is_empty() {
                            return Err(LiveError::Invalid(format!(
                                "order '{order_id}' has no lines"
                            )));
                        }
                        out.push((Change::AddLines(lines), None));
                    }
                    Some((old_status, n)) => {
                        // The engine's one refusal of a status change of an
                        // order it holds, which would come second.
                        if status.is_empty() {
                            return Err(LiveError::Invalid("status is empty".into()));
                        }
                        if lines.len() < n {
                            return Err(LiveError::Invalid(format!(
                                "order '{order_id}' has {n} lines stored and this post has {}: lines can be added, not removed",
                                lines.len()
                            )));
                        }
                        let new: Vec<_> = lines
                            .drain(n..)
                            .map(|mut l| {
                                l.status = Some(old_status.clone());
                                l
                            })
                            .collect();
                        if !new.is_empty() {
                            out.push((Change::AddLines(new), None));
                        }
                        if status != old_status {
                            out.push((Change::SetOrderStatus { order_id, status }, None));
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}
