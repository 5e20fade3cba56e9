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

    /// The number of entries, exact and day ones.
    pub fn len(&self) -> usize {
        self.exact.len() + self.days.len()
    }
}

/// `xs.partition_point(pred)`, searched outward from `hint` (where the
/// previous search for the same dependency ended). As the clock moves the
/// point mostly moves a step or two, so this reads a couple of
/// neighbouring records where a binary search reads scattered ones (a
/// cache miss each in a large store). Any hint gives the right answer.
pub fn partition_from<T>(xs: &[T], hint: usize, pred: impl Fn(&T) -> bool) -> usize {
    let n = xs.len();
    let h = hint.min(n);
    let (lo, hi) = if h < n && pred(&xs[h]) {
        // The point is after h: gallop forward.
        let mut lo = h + 1;
        let mut step = 1;
        loop {
            let i = h + step;
            if i >= n {
                break (lo, n);
            }
            if !pred(&xs[i]) {
                break (lo, i);
            }
            lo = i + 1;
            step *= 2;
        }
    } else if h > 0 && !pred(&xs[h - 1]) {
        // The point is at or before h − 1: gallop backward.
        let mut hi = h - 1;
        let mut step = 1;
        loop {
            let Some(i) = hi.checked_sub(step) else {
                break (0, hi);
            };
            if pred(&xs[i]) {
                break (i + 1, hi);
            }
            hi = i;
            step *= 2;
        }
    } else {
        return h;
    };
    lo + xs[lo..hi].partition_point(pred)
}

/// The next instant after `now` at which entry `i` of `deps` (the exact
/// entries, then the day ones) can change something, from these records,
/// starting the search of `times` at `hint` and leaving where it ended,
/// with what [`hits`] finds there: for an exact entry the flag bits
/// ([`AT`] / [`AFTER`] shifted to their source) the instant satisfies, for
/// a day entry `1`. When the instant comes, these are the hits, unless a
/// record has gone or been superseded since (which only adds a bit that
/// costs an evaluation).
pub fn next_of<T, D>(
    deps: &TimeDeps,
    (i, hint): (usize, &mut u32),
    now: Nanos,
    cal: &Calendar,
    (times, time): (&[T], &impl Fn(&T) -> Nanos),
    extra: Option<Nanos>,
    (dates, date): (&[D], &impl Fn(&D) -> Date),
) -> Option<(Nanos, u8)> {
    let mut best: Option<(Nanos, u8)> = None;
    let mut keep = |t: Option<Nanos>, bits: u8| {
        if let Some(t) = t
            && t > now
        {
            best = Some(match best {
                Some((b, m)) if b < t => (b, m),
                Some((b, m)) if b == t => (b, m | bits),
                _ => (t, bits),
            });
        }
    };
    if let Some(&(off, flags)) = deps.exact.get(i) {
        let target = now.saturating_add(off);
        // AT: x − off > now. AFTER: x − off + 1 > now, i.e. x ≥ now + off.
        let mut single = |x: Nanos, source: u8| {
            let f = flags >> source;
            if f & AT != 0 && x > target {
                keep(x.checked_sub(off), AT << source);
            }
            if f & AFTER != 0 && x >= target {
                let t = x.checked_sub(off).and_then(|t| t.checked_add(1));
                keep(t, AFTER << source);
            }
        };
        if flags & (AT | AFTER) != 0 {
            let i = partition_from(times, *hint as usize, |x| time(x) <= target);
            *hint = i as u32;
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
        return best;
    }
    let &(off, k) = deps.days.get(i - deps.exact.len())?;
    let shifted = now.saturating_add(off);
    let threshold = cal.checked_shift(cal.date_of(shifted), -k)?;
    // The first recorded date after `threshold`.
    let next_day = threshold.tomorrow().ok()?;
    let from = cal.day_start(next_day);
    let mut first: Option<Date> = None;
    let mut consider = |d: Date| {
        if d > threshold {
            first = Some(first.map_or(d, |f| f.min(d)));
        }
    };
    let i = partition_from(times, *hint as usize, |x| time(x) < from);
    *hint = i as u32;
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
        && let Some(dk) = cal.checked_shift(d, k)
    {
        keep(cal.day_start(dk).checked_sub(off), 1);
    }
    best
}

/// What [`hits`] finds: indexes into `deps.exact` with the flags that hold
/// there, and indexes into `deps.days`.
pub type Hits = (Vec<(usize, u8)>, Vec<usize>);

/// Which of `deps` make `at` a wake-up instant for this entity: indexes
/// into `deps.exact` (with the flags that hold there) and `deps.days`. A
/// wake re-evaluates only the segments that have one of those, not every
/// time-dependent segment. The engine keeps these beside each instant
/// [`next_of`] gives; this search of the records is the reference its debug
/// builds check them against.
pub fn hits<T, D>(
    deps: &TimeDeps,
    at: Nanos,
    cal: &Calendar,
    (times, time): (&[T], impl Fn(&T) -> Nanos),
    extra: Option<Nanos>,
    (dates, date): (&[D], impl Fn(&D) -> Date),
) -> Hits {
    let mut exact = Vec::new();
    for (i, &(off, flags)) in deps.exact.iter().enumerate() {
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
        let Some(shifted) = at.checked_add(off) else {
            continue;
        };
        let day = cal.date_of(shifted);
        if cal.day_start(day) != shifted {
            continue;
        }
        let Some(d) = cal.checked_shift(day, -k) else {
            continue;
        };
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::partition_from;

    proptest! {
        /// From any hint, the galloping search finds what a binary search
        /// of the whole slice finds.
        #[test]
        fn partition_from_any_hint_is_partition_point(
            mut xs in proptest::collection::vec(0u8..40, 0..60),
            hint in 0usize..70,
            target in 0u8..42,
        ) {
            xs.sort_unstable();
            let want = xs.partition_point(|&x| x <= target);
            prop_assert_eq!(partition_from(&xs, hint, |&x| x <= target), want);
        }
    }
}
