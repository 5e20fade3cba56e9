//! Random datasets and random rules: the bitmap evaluator must agree with
//! the reference evaluator on every member.
//!
//! Datasets are written as CSV files and loaded through `strata-data`, so the
//! loader's view of the files is part of what is compared. Times cluster
//! around `NOW` and hit the window boundaries exactly; text values come from
//! small pools that differ in case, so that equality, case folding and nulls
//! are all exercised.

use proptest::prelude::*;
use strata_engine::{AccessPath, Engine};
use strata_lang::catalog::Kind;
use strata_testkit::*;

/// Every access path of the bitmap evaluator against the reference.
fn compare(engine: &mut Engine, kind: Kind, rule: &str) -> Result<(), TestCaseError> {
    let compiled = engine
        .compile(kind, rule)
        .map_err(|e| TestCaseError::fail(format!("{rule}: {e}")))?;
    let plain = engine.evaluate_reference(&compiled).unwrap();
    for path in AccessPath::ALL {
        engine.set_access_path(path);
        let fast = engine.evaluate(&compiled).unwrap();
        prop_assert_eq!(&fast, &plain, "rule: {} ({:?})", rule, path);
    }
    engine.set_access_path(AccessPath::Auto);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bitmap_evaluator_agrees_with_reference(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &mut rng);
        let data = strata_data::load_dir(dir.path()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let mut engine = Engine::new(data, NOW.parse().unwrap()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        for _ in 0..12 {
            let rule = customer_rule(&mut rng, 3, &["prod-0"], &["cust-0", "cust-1"]);
            compare(&mut engine, Kind::Customer, &rule)?;
            let rule = product_rule(&mut rng, 3, &["prod-0"]);
            compare(&mut engine, Kind::Product, &rule)?;
        }
        // The saved segments themselves.
        let saved: Vec<(String, Kind)> = engine.saved_segments().map(|(n, k)| (n.to_owned(), k)).collect();
        for (name, kind) in saved {
            compare(&mut engine, kind, &format!("in_segment('{name}')"))?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The same on datasets of hundreds of rows, where scans cross 64-row
    /// words and the access paths' cost estimates differ.
    #[test]
    fn bitmap_evaluator_agrees_with_reference_on_larger_data(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        write_dataset_scaled(dir.path(), &mut rng, 25);
        let data = strata_data::load_dir(dir.path()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let mut engine = Engine::new(data, NOW.parse().unwrap()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        for _ in 0..6 {
            let rule = customer_rule(&mut rng, 3, &["prod-0"], &["cust-0", "cust-1"]);
            compare(&mut engine, Kind::Customer, &rule)?;
            let rule = product_rule(&mut rng, 3, &["prod-0"]);
            compare(&mut engine, Kind::Product, &rule)?;
        }
    }
}

/// The generators must produce rules that split the entities, or the
/// agreement above would prove little.
#[test]
fn random_rules_are_not_trivial() {
    let (mut split, mut total) = (0, 0);
    for seed in 0..40 {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &mut rng);
        let data = strata_data::load_dir(dir.path()).unwrap();
        let engine = Engine::new(data, NOW.parse().unwrap()).unwrap();
        for _ in 0..10 {
            for (kind, rule) in [
                (
                    Kind::Customer,
                    customer_rule(&mut rng, 3, &["prod-0"], &["cust-0", "cust-1"]),
                ),
                (Kind::Product, product_rule(&mut rng, 3, &["prod-0"])),
            ] {
                let members = engine
                    .evaluate(&engine.compile(kind, &rule).unwrap())
                    .unwrap();
                total += 1;
                if !members.is_empty() && members.len() < engine.len(kind) as u64 {
                    split += 1;
                }
            }
        }
    }
    assert!(
        split * 100 >= total * 30,
        "only {split} of {total} rules split their entities"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Between two consecutive breakpoints nothing changes: members at any
    /// instant inside a gap equal those at the gap's start.
    #[test]
    fn members_only_change_at_breakpoints(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &mut rng);
        let data = std::sync::Arc::new(strata_data::load_dir(dir.path()).map_err(|e| TestCaseError::fail(format!("{e}")))?);
        let at = |secs: i64| jiff::Timestamp::from_second(secs).unwrap();
        let (from, to) = (NOW_SECS - 40 * 86_400, NOW_SECS + 10 * 86_400);
        let base = Engine::new(data.clone(), at(from)).unwrap();
        let texts: Vec<(Kind, String)> = (0..3)
            .flat_map(|_| {
                [
                    (Kind::Customer, customer_rule(&mut rng, 2, &["prod-0"], &["cust-0", "cust-1"])),
                    (Kind::Product, product_rule(&mut rng, 2, &["prod-0"])),
                ]
            })
            .collect();
        let compiled: Vec<_> = texts.iter().map(|(k, t)| base.compile(*k, t).unwrap()).collect();
        let refs: Vec<_> = compiled.iter().collect();
        let breaks = base.breakpoints(&refs, from * 1_000_000_000, to * 1_000_000_000);
        let members_at = |nanos: i64| -> Vec<roaring::RoaringBitmap> {
            let engine = Engine::new(data.clone(), jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap()).unwrap();
            texts.iter().map(|(k, t)| engine.evaluate(&engine.compile(*k, t).unwrap()).unwrap()).collect()
        };
        let gaps: Vec<(i64, i64)> = breaks.windows(2).map(|w| (w[0], w[1])).filter(|(a, b)| b - a > 1).collect();
        for _ in 0..12 {
            if gaps.is_empty() {
                break;
            }
            let (a, b) = gaps[rng.below(gaps.len())];
            let inside = a + 1 + (rng.next() % (b - a - 1) as u64) as i64;
            prop_assert_eq!(members_at(a), members_at(inside), "between {} and {} (at {})", a, b, inside);
        }
    }
}
