//! The Strata live engine: memberships and tiers that stay current as data
//! changes, with time windows expiring at their exact instant.
//!
//! [`LiveEngine`] takes [`Change`]s (products, customers, order lines,
//! statuses, prices, daily rows, segments, tier schemes) and clock advances,
//! and answers each with the [`Event`]s it caused: entities entering and
//! leaving segments, customers changing tier.
//!
//! How it stays cheap (ARCHITECTURE.md has the longer story):
//!
//! - **Aggregates by delta.** A line adds to its customer's totals, its
//!   product's time-ordered line list with prefix sums, and its revenue
//!   group's 30-day window; nothing is recomputed over the whole store.
//! - **A dependency index.** Each segment's rule is compiled with the set of
//!   inputs it reads ([`rule::input`]); a change marks dirty only the
//!   (segment, entity) pairs whose segment reads what changed, and
//!   references carry changes on (`in_segment`: the same entity;
//!   `purchased(in_segment:)`: the product's buyers).
//! - **Exact expiry.** From an entity's own recorded instants and dates and
//!   the offsets its kind's rules use, [`wake`] computes the next instant
//!   at which time alone could change a truth; a bucketed schedule keeps
//!   one entry per entity, and [`LiveEngine::advance_to`] visits those
//!   instants in order.
//!
//! The engine never reads the wall clock: `now` only moves by
//! [`LiveEngine::advance_to`].

pub mod calendar;
mod change;
pub mod chunked;
mod engine;
pub mod eval;
pub mod feed;
pub mod headroom;
pub mod ids;
pub mod quick;
mod quiet;
pub mod rule;
mod schedule;
mod snapshot;
pub mod store;
pub mod wake;

pub use change::{
    Cause, Change, CustomerRow, DailyRow, Event, LineRow, LiveError, ProductRow, ProductValue,
};
pub use engine::LiveEngine;
