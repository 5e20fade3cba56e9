//! The live engine kept durable: every change is applied to the engine,
//! then committed to the store with its events, before the caller hears of
//! it; a restart rebuilds the engine from the stored rows.
//!
//! # Restore
//!
//! The stored rows, the stored memberships and the engine clock were all
//! written by the same commits, so a fresh evaluation of the rows at the
//! stored clock gives the stored memberships back. [`Live::open`] does that
//! evaluation (`LiveEngine::new` at the stored clock), checks it against the
//! stored memberships, then advances the clock to `now`, committing what
//! time did meanwhile (windows that expired while the process was down,
//! orders dated in the future that came due) as events at their true
//! instants. Pending expiries need no storage: the engine derives them from
//! the rows.
//!
//! An import between two runs changes rows behind the stored memberships;
//! `data_version` tells. The restored memberships then replace the stored
//! ones wholesale, without events (an import is a bulk load, not a stream
//! of changes).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use strata_data::{Nanos, SegmentKind};
use strata_engine::clock::date_of;
use strata_lang::catalog::Kind;
use strata_live::{Change, Event, LiveEngine, LiveError};

use crate::{Commit, Memberships, SegmentInfo, Store, StoreError, Tenant};

#[derive(Debug, thiserror::Error)]
pub enum LiveStoreError {
    /// The engine refused the change: nothing was applied or stored.
    #[error(transparent)]
    Refused(#[from] LiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A commit failed after the engine had applied its change: the engine
    /// is ahead of the store and must be reopened from it.
    #[error("the store failed to take a change ({0}); reopen to continue from what it holds")]
    Broken(String),
}

/// What [`Live::open`] found and did.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// Reading the rows.
    pub load: Duration,
    /// Building the engine and evaluating every segment and tier.
    pub evaluate: Duration,
    /// The clock the engine was rebuilt at (the stored one, or `now` for a
    /// tenant no engine ran on).
    pub clock: Nanos,
    /// The stored memberships were computed before the last import (or
    /// never) and were replaced.
    pub refreshed: bool,
    /// The stored memberships disagreed with the rows although no import
    /// came between: a description of the first difference. They were
    /// replaced; this is a bug or tampering, worth a warning.
    pub mismatch: Option<String>,
    /// Events from advancing the clock to `now`.
    pub caught_up: usize,
}

/// A tenant's live engine bound to its store.
pub struct Live {
    store: Box<dyn Store>,
    tenant: Tenant,
    engine: LiveEngine,
    broken: Option<String>,
}

impl Live {
    /// Restores the tenant's engine from the store and brings it to `now`
    /// (or to the stored clock, if that is later: the engine's time never
    /// goes back). The tenant is created if missing.
    pub fn open(
        store: Box<dyn Store>,
        tenant_name: &str,
        now: Nanos,
    ) -> Result<(Live, Restored), LiveStoreError> {
        Live::open_inspect(store, tenant_name, now, |_| None)
    }

    /// [`Live::open`], showing `inspect` the stored rows on the way (what
    /// is already held, say) so they need not be read twice. For a tenant
    /// no engine ran on yet, an instant `inspect` returns replaces `now` as
    /// the engine's first clock.
    pub fn open_inspect(
        mut store: Box<dyn Store>,
        tenant_name: &str,
        now: Nanos,
        inspect: impl FnOnce(&strata_data::Dataset) -> Option<Nanos>,
    ) -> Result<(Live, Restored), LiveStoreError> {
        let tenant = store.tenant(tenant_name)?;
        let started = Instant::now();
        let data = store.load(tenant.id)?;
        let load = started.elapsed();
        let first_clock = inspect(&data);
        let started = Instant::now();
        let clock = tenant.clock.or(first_clock).unwrap_or(now);
        let at = jiff::Timestamp::from_nanosecond(i128::from(clock))
            .map_err(|e| StoreError::Corrupt(format!("stored clock {clock}: {e}")))?;
        let mut engine = LiveEngine::new(&data, at)?;
        engine.resume_sequence(tenant.last_change);
        drop(data);
        let evaluate = started.elapsed();
        let mut restored = Restored {
            load,
            evaluate,
            clock,
            ..Restored::default()
        };
        let current = memberships_of(&engine);
        if tenant.clock.is_none() || tenant.memberships_version != tenant.data_version {
            restored.refreshed = true;
        } else {
            let stored = store.memberships(tenant.id)?;
            restored.mismatch = first_difference(&stored, &current);
        }
        if restored.refreshed || restored.mismatch.is_some() {
            store.reset_memberships(tenant.id, &current, clock, tenant.data_version)?;
        }
        let tenant = store.tenant_by_id(tenant.id)?;
        let mut live = Live {
            store,
            tenant,
            engine,
            broken: None,
        };
        restored.caught_up = live.advance_to(now.max(clock))?.len();
        Ok((live, restored))
    }

    pub fn engine(&self) -> &LiveEngine {
        &self.engine
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Applies a change and commits it with its events; `Ok` means durable.
    pub fn apply(&mut self, change: Change) -> Result<Vec<Event>, LiveStoreError> {
        self.apply_with(change, None)
    }

    /// [`Live::apply`], with what a `PutSegment` carries besides its rule
    /// (description, owner; see [`Commit::info`]). Other changes carry
    /// none: `info` is not stored with them.
    pub fn apply_with(
        &mut self,
        change: Change,
        info: Option<SegmentInfo>,
    ) -> Result<Vec<Event>, LiveStoreError> {
        self.usable()?;
        let anonymised = self.anonymised(&change);
        let events = self.engine.apply(change.clone())?;
        let mut pending = self.pending(Some(change), info, events);
        pending.anonymised = anonymised;
        self.persist(std::slice::from_ref(&pending))?;
        Ok(pending.events)
    }

    /// Applies changes in order and commits the accepted ones together, in
    /// one transaction (one disk flush for all of them). A change the
    /// engine refuses gets its error at its place in the result and is
    /// neither applied nor stored; the others are, each with its own
    /// sequence number, events and counts. `Ok` means every accepted change
    /// is durable; if the commit fails none is, and `Live` is broken as
    /// after a failed [`Live::apply`].
    pub fn apply_batch(
        &mut self,
        items: Vec<(Change, Option<SegmentInfo>)>,
    ) -> Result<Vec<Result<Vec<Event>, LiveError>>, LiveStoreError> {
        self.apply_groups(items.into_iter().map(|item| vec![item]).collect())
    }

    /// [`Live::apply_batch`] for groups of changes, each all or nothing: a
    /// group is refused (its first refusal is its result) unless the
    /// engine takes every change of it, and then nothing of it is applied
    /// or stored. An accepted group's result is the events of its changes,
    /// in order.
    ///
    /// The engine cannot take a change back. A group refused after the
    /// engine took a part of it makes `Live` commit the groups before it
    /// (a transaction of their own), and rebuild the engine from the store
    /// as a restart does: costly, so callers order a group's changes so
    /// that the first is the one likely to be refused, and check what they
    /// can beforehand.
    pub fn apply_groups(
        &mut self,
        groups: Vec<Vec<(Change, Option<SegmentInfo>)>>,
    ) -> Result<Vec<Result<Vec<Event>, LiveError>>, LiveStoreError> {
        self.usable()?;
        let mut accepted: Vec<Pending> = Vec::new();
        // `accepted[..stored]` are committed already.
        let mut stored = 0;
        // Per group: the range of `accepted` it became, or its refusal.
        let mut outcomes = Vec::with_capacity(groups.len());
        for group in groups {
            let start = accepted.len();
            let mut refused = None;
            for (change, info) in group {
                let anonymised = self.anonymised(&change);
                match self.engine.apply(change.clone()) {
                    Ok(events) => {
                        let mut pending = self.pending(Some(change), info, events);
                        pending.anonymised = anonymised;
                        accepted.push(pending);
                    }
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            match refused {
                None => outcomes.push(Ok(start..accepted.len())),
                Some(e) => {
                    if accepted.len() > start {
                        accepted.truncate(start);
                        self.persist(&accepted[stored..])?;
                        stored = accepted.len();
                        self.reload()?;
                    }
                    outcomes.push(Err(e));
                }
            }
        }
        self.persist(&accepted[stored..])?;
        let mut events: Vec<Vec<Event>> = accepted.into_iter().map(|p| p.events).collect();
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.map(|range| events[range].iter_mut().flat_map(std::mem::take).collect())
            })
            .collect())
    }

    /// Rebuilds the engine from what the store holds, at the stored clock
    /// (which is the engine's: every clock move is committed). On failure
    /// `Live` is broken: the engine holds what the store does not.
    fn reload(&mut self) -> Result<(), LiveStoreError> {
        let rebuilt = (|| -> Result<(Tenant, LiveEngine), LiveStoreError> {
            let tenant = self.store.tenant_by_id(self.tenant.id)?;
            let clock = tenant.clock.unwrap_or_else(|| self.engine.now());
            let at = jiff::Timestamp::from_nanosecond(i128::from(clock))
                .map_err(|e| StoreError::Corrupt(format!("stored clock {clock}: {e}")))?;
            let data = self.store.load(tenant.id)?;
            let mut engine = LiveEngine::new(&data, at)?;
            engine.resume_sequence(tenant.last_change);
            Ok((tenant, engine))
        })();
        match rebuilt {
            Ok((tenant, engine)) => {
                self.tenant = tenant;
                self.engine = engine;
                Ok(())
            }
            Err(e) => {
                let why = format!("rebuilding the engine after a refused group: {e}");
                self.broken = Some(why.clone());
                Err(LiveStoreError::Broken(why))
            }
        }
    }

    /// Moves the clock, committing the events time caused.
    pub fn advance_to(&mut self, to: Nanos) -> Result<Vec<Event>, LiveStoreError> {
        self.usable()?;
        if to <= self.engine.now() {
            return Ok(Vec::new());
        }
        let events = self.engine.advance_to(to)?;
        let pending = self.pending(None, None, events);
        self.persist(std::slice::from_ref(&pending))?;
        Ok(pending.events)
    }

    /// The orders a change makes anonymous (a deleted customer's), read
    /// before the engine forgets whose they were.
    fn anonymised(&self, change: &Change) -> Vec<String> {
        match change {
            Change::DeleteCustomer(id) => self.engine.customer_order_ids(id),
            _ => Vec::new(),
        }
    }

    fn usable(&self) -> Result<(), LiveStoreError> {
        match &self.broken {
            Some(why) => Err(LiveStoreError::Broken(why.clone())),
            None => Ok(()),
        }
    }

    /// What a change or clock advance the engine just took commits: taken
    /// right after it, since the counts and clock are those it left.
    fn pending(
        &self,
        change: Option<Change>,
        info: Option<SegmentInfo>,
        events: Vec<Event>,
    ) -> Pending {
        let touched: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Member { segment, .. } => Some(&**segment),
                Event::Tier { .. } => None,
            })
            .collect();
        let counts: Vec<(String, u64)> = touched
            .into_iter()
            .filter_map(|name| Some((name.to_owned(), self.engine.count(name)?)))
            .collect();
        let clock = self.engine.now();
        Pending {
            seq: self.engine.last_change(),
            change,
            info,
            clock,
            day: date_of(clock, self.engine.timezone()),
            counts,
            events,
            anonymised: Vec::new(),
        }
    }

    /// Commits what the engine took, in one transaction.
    fn persist(&mut self, pending: &[Pending]) -> Result<(), LiveStoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let commits: Vec<Commit<'_>> = pending
            .iter()
            .map(|p| Commit {
                seq: p.seq,
                change: p.change.as_ref(),
                events: &p.events,
                clock: p.clock,
                counts: &p.counts,
                day: p.day,
                info: p.info.as_ref(),
                anonymised_orders: &p.anonymised,
            })
            .collect();
        match self.store.commit_batch(self.tenant.id, &commits) {
            Ok(()) => Ok(()),
            Err(err) => {
                // The engine holds the changes and the store may not: only a
                // restore from the store makes them agree again.
                let why = err.to_string();
                self.broken = Some(why.clone());
                Err(LiveStoreError::Broken(why))
            }
        }
    }
}

/// A [`Commit`]'s contents, owned until it is written.
struct Pending {
    seq: u64,
    change: Option<Change>,
    info: Option<SegmentInfo>,
    events: Vec<Event>,
    clock: Nanos,
    counts: Vec<(String, u64)>,
    day: Date,
    anonymised: Vec<String>,
}

/// The engine's memberships and tiers in the store's form.
pub fn memberships_of(engine: &LiveEngine) -> Memberships {
    let mut members = Vec::new();
    for (name, kind, _) in engine.segments() {
        let kind = match kind {
            Kind::Customer => SegmentKind::Customer,
            Kind::Product => SegmentKind::Product,
        };
        for id in engine.member_ids(name).unwrap_or_default() {
            members.push((name.to_owned(), kind, id.to_owned()));
        }
    }
    members.sort_unstable();
    let mut tiers: Vec<(String, String)> = engine
        .tiers()
        .into_iter()
        .filter_map(|(c, t)| Some((c.to_owned(), t?.to_owned())))
        .collect();
    tiers.sort_unstable();
    Memberships { members, tiers }
}

fn first_difference(stored: &Memberships, current: &Memberships) -> Option<String> {
    fn first<T: Ord + std::fmt::Debug>(what: &str, a: &[T], b: &[T]) -> Option<String> {
        let (a, b): (BTreeSet<&T>, BTreeSet<&T>) = (a.iter().collect(), b.iter().collect());
        if let Some(x) = a.difference(&b).next() {
            return Some(format!(
                "stored {what} {x:?} is not in the rows' evaluation"
            ));
        }
        b.difference(&a)
            .next()
            .map(|x| format!("{what} {x:?} of the rows' evaluation is not stored"))
    }
    first("membership", &stored.members, &current.members)
        .or_else(|| first("tier", &stored.tiers, &current.tiers))
}
