//! When time alone can next change an entity's truth for some segment.
//!
//! A rule compares `now` (shifted by an offset) with instants the entity
//! recorded: its orders' or lines' times, its `created_at`; and compares
//! calendar days (the date of `now + offset`, or `today`) with dates the
//! entity recorded: the days of those instants and its daily rows' dates,
//! possibly shifted by a window of `k` days. Between two such crossings
//! nothing a rule reads of this entity moves, so its truth cannot change.
//!
//! For `now + off` against a recorded `x`, the comparison changes at
//! `now = x − off` (equality) and one nanosecond later. For the date of
//! `now + off` against `d + k`, it changes where that date becomes
//! `d + k` and where it passes it: `start(d + k) − off` for every `k` the
//! rule lists (`k + 1` is listed alongside where a day is compared for
//! equality). The wake-up is the smallest such instant after `now`; it is a
//! superset of the true changes, never a miss.

use jiff::civil::Date;
use strata_data::Nanos;

use crate::calendar::Calendar;
use crate::rule::{AFTER, ALL, AT, CREATED, FIRST, LAST};

/// The union of what time changes, over all segments of one kind.
#[derive(Clone, Debug, Default)]
pub struct TimeDeps {
    /// Sorted by offset, flags merged ([`crate::rule::AT`], `AFTER`).
    pub exact: Vec<(i64, u8)>,
    pub days: Vec<(i64, i64)>,
}

impl TimeDeps {
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.days.is_empty()
    }
}

fn add_days(d: Date, k: i64) -> Option<Date> {
    d.checked_add(jiff::Span::new().days(k)).ok()
}

/// Which of a [`TimeDeps`]' entries gave a wake-up instant: bit `i` for
/// `exact[i]`, bit `exact.len() + j` for `days[j]`. Entries from the 65th
/// on have every bit ([`ALL_DEPS`]), so they are searched whenever any
/// entry gave the instant.
pub type DepMask = u64;

pub const ALL_DEPS: DepMask = u64::MAX;

fn dep_bit(i: usize) -> DepMask {
    if i < 64 { 1 << i } else { ALL_DEPS }
}

impl TimeDeps {
    /// The mask bit of `days[j]`.
    fn day_bit(&self, j: usize) -> DepMask {
        dep_bit(self.exact.len() + j)
    }
}

/// The next instant after `now` at which time can change something, and
/// which entries of `deps` give it (so that [`hits`] need not search the
/// others when it comes).
///
/// `times` must be sorted; `dates` must be sorted. `extra` are single
/// recorded instants outside `times` (a `created_at`).
pub fn next_wake<T, D>(
    deps: &TimeDeps,
    now: Nanos,
    cal: &Calendar,
    (times, time): (&[T], impl Fn(&T) -> Nanos),
    extra: Option<Nanos>,
    (dates, date): (&[D], impl Fn(&D) -> Date),
) -> Option<(Nanos, DepMask)> {
    let mut best: Option<(Nanos, DepMask)> = None;
    let mut keep = |t: Option<Nanos>, bit: DepMask| {
        if let Some(t) = t
            && t > now
        {
            best = Some(match best {
                Some((b, m)) if b < t => (b, m),
                Some((b, m)) if b == t => (b, m | bit),
                _ => (t, bit),
            });
        }
    };
    for (i, &(off, flags)) in deps.exact.iter().enumerate() {
        let bit = dep_bit(i);
        let target = now.saturating_add(off);
        // AT: x − off > now. AFTER: x − off + 1 > now, i.e. x ≥ now + off.
        let mut single = |x: Nanos, source: u8| {
            let f = flags >> source;
            if f & AT != 0 && x > target {
                keep(x.checked_sub(off), bit);
            }
            if f & AFTER != 0 && x >= target {
                keep(x.checked_sub(off).and_then(|t| t.checked_add(1)), bit);
            }
        };
        if flags & (AT | AFTER) != 0 {
            let i = times.partition_point(|x| time(x) <= target);
            if let Some(x) = times.get(i) {
                single(time(x), ALL);
            }
            if i > 0 && time(&times[i - 1]) == target {
                single(target, ALL);
            }
            if let Some(x) = extra {
                single(x, ALL);
            }
        }
        if let Some(x) = extra {
            single(x, CREATED);
        }
        if let Some(x) = times.first() {
            single(time(x), FIRST);
        }
        if let Some(x) = times.last() {
            single(time(x), LAST);
        }
    }
    for (j, &(off, k)) in deps.days.iter().enumerate() {
        let bit = deps.day_bit(j);
        let shifted = now.saturating_add(off);
        let Some(threshold) = add_days(cal.date_of(shifted), -k) else {
            continue;
        };
        // The first recorded date after `threshold`.
        let Some(next_day) = threshold.tomorrow().ok() else {
            continue;
        };
        let from = cal.day_start(next_day);
        let mut first: Option<Date> = None;
        let mut consider = |d: Date| {
            if d > threshold {
                first = Some(first.map_or(d, |f| f.min(d)));
            }
        };
        let i = times.partition_point(|x| time(x) < from);
        if let Some(x) = times.get(i) {
            consider(cal.date_of(time(x)));
        }
        if let Some(x) = extra {
            consider(cal.date_of(x));
        }
        let j = dates.partition_point(|d| date(d) <= threshold);
        if let Some(d) = dates.get(j) {
            consider(date(d));
        }
        if let Some(d) = first
            && let Some(dk) = add_days(d, k)
        {
            keep(cal.day_start(dk).checked_sub(off), bit);
        }
    }
    best
}

/// What [`hits`] finds: indexes into `deps.exact` with the flags that hold
/// there, and indexes into `deps.days`.
pub type Hits = (Vec<(usize, u8)>, Vec<usize>);

/// Which of `deps` make `at` a wake-up instant for this entity: indexes
/// into `deps.exact` (with the flags that hold there) and `deps.days`. A
/// wake then re-evaluates only the segments that have one of those, not
/// every time-dependent segment. Only the entries in `only` (what
/// [`next_wake`] found gave `at`) are searched; the others cannot hit.
pub fn hits<T, D>(
    deps: &TimeDeps,
    only: DepMask,
    at: Nanos,
    cal: &Calendar,
    (times, time): (&[T], impl Fn(&T) -> Nanos),
    extra: Option<Nanos>,
    (dates, date): (&[D], impl Fn(&D) -> Date),
) -> Hits {
    let mut exact = Vec::new();
    for (i, &(off, flags)) in deps.exact.iter().enumerate() {
        if only & dep_bit(i) == 0 {
            continue;
        }
        let Some(x_at) = at.checked_add(off) else {
            continue;
        };
        let x_after = x_at.saturating_sub(1);
        let in_times = |x: Nanos| {
            let j = times.partition_point(|t| time(t) < x);
            times.get(j).is_some_and(|t| time(t) == x) || extra == Some(x)
        };
        // The bits of `flags` that this instant satisfies.
        let mut mask = 0u8;
        let mut mark = |x: Nanos, source: u8| {
            if x == x_at {
                mask |= AT << source;
            }
            if x == x_after {
                mask |= AFTER << source;
            }
        };
        if flags & AT != 0 && in_times(x_at) {
            mark(x_at, ALL);
        }
        if flags & AFTER != 0 && in_times(x_after) {
            mark(x_after, ALL);
        }
        if let Some(x) = extra {
            mark(x, CREATED);
        }
        if let Some(x) = times.first() {
            mark(time(x), FIRST);
        }
        if let Some(x) = times.last() {
            mark(time(x), LAST);
        }
        if mask & flags != 0 {
            exact.push((i, mask & flags));
        }
    }
    let mut days = Vec::new();
    for (i, &(off, k)) in deps.days.iter().enumerate() {
        if only & deps.day_bit(i) == 0 {
            continue;
        }
        let Some(shifted) = at.checked_add(off) else {
            continue;
        };
        let day = cal.date_of(shifted);
        if cal.day_start(day) != shifted {
            continue;
        }
        let Some(d) = add_days(day, -k) else { continue };
        let (from, to) = (cal.day_start(d), cal.day_end(d));
        let j = times.partition_point(|x| time(x) < from);
        let in_times = times.get(j).is_some_and(|x| time(x) < to);
        let in_extra = extra.is_some_and(|x| x >= from && x < to);
        let j = dates.partition_point(|x| date(x) < d);
        let in_dates = dates.get(j).is_some_and(|x| date(x) == d);
        if in_times || in_extra || in_dates {
            days.push(i);
        }
    }
    (exact, days)
}
