//! `import`, `ingest`, and `count`/`members` over a store, on SQLite and on
//! PostgreSQL (the machine's server; each test in a schema of its own).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use strata_data::{Dataset, SegmentKind};
use strata_store::{Location, Memberships, Store};

use super::run;

/// A store of one test, removed when dropped.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { base: String, schema: String },
}

fn pg_base() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

fn pg_skipped() -> bool {
    std::env::var("STRATA_TEST_POSTGRES").is_ok_and(|v| v == "skip")
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Db {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "strata_cli_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let base = pg_base();
        let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is needed (set STRATA_TEST_POSTGRES=skip to skip): {e}")
        });
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        Db::Postgres { base, schema }
    }

    /// Every backend this run tests.
    fn all() -> Vec<Db> {
        let mut out = vec![Db::sqlite()];
        if !pg_skipped() {
            out.push(Db::postgres());
        }
        out
    }

    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }

    fn location(&self) -> Location {
        match self {
            Db::Sqlite(dir) => Location::DataDir(dir.path().to_owned()),
            Db::Postgres { base, schema } => {
                Location::Url(format!("{base}?options=-c%20search_path%3D{schema}"))
            }
        }
    }

    /// The command-line options naming this store.
    fn args(&self) -> Vec<String> {
        match self.location() {
            Location::DataDir(dir) => vec!["--data-dir".into(), dir.to_str().unwrap().into()],
            Location::Url(url) => vec!["--database-url".into(), url],
        }
    }

    fn open(&self) -> Box<dyn Store> {
        strata_store::open(&self.location()).unwrap()
    }

    /// The default tenant's rows (an empty dataset if there is none).
    fn dataset(&self) -> Dataset {
        let mut store = self.open();
        let tenants = store.tenants().unwrap();
        match tenants.iter().find(|t| t.name == "default") {
            Some(t) => store.load(t.id).unwrap(),
            None => Dataset::default(),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { base, schema } = self
            && let Ok(mut client) = postgres::Client::connect(base, postgres::NoTls)
        {
            let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

fn strata_with(args: &[&str], db: &Db) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(db.args());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run(&refs)
}

fn demo(customers: &str, seed: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["demo", d, "--customers", customers, "--seed", seed]);
    assert_eq!(code, 0, "{err}");
    dir
}

const CUSTOMER_RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../bench/rules-customers.txt"
);

/// A dataset's content, order-independent, for comparisons.
fn content(data: &Dataset) -> Vec<BTreeSet<String>> {
    let products = (0..data.products.len())
        .map(|p| format!("{:?}", data.product_row(p)))
        .collect();
    let customers = (0..data.customers.len())
        .map(|c| format!("{:?}", data.customer_row(c)))
        .collect();
    let lines = (0..data.lines.len())
        .map(|l| format!("{:?}", data.line_row(l)))
        .collect();
    let daily = (0..data.daily.len())
        .map(|r| format!("{:?}", data.daily_row(r)))
        .collect();
    let segments = data.segments.iter().map(|s| format!("{s:?}")).collect();
    let tiers = data.tiers.iter().map(|t| format!("{t:?}")).collect();
    vec![products, customers, lines, daily, segments, tiers]
}

#[test]
fn count_and_members_over_an_imported_store_equal_the_directory() {
    let dir = demo("300", "7");
    let d = dir.path().to_str().unwrap();
    for db in Db::all() {
        let backend = db.name();
        let (code, out, err) = strata_with(&["import", d], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(
            out.contains("customers: 300 inserted, 0 updated, 0 unchanged"),
            "{out}"
        );
        assert_eq!(
            content(&db.dataset()),
            content(&strata_data::load_dir(dir.path()).unwrap()),
            "{backend}"
        );

        let now = "2026-11-01";
        let (code, expect, err) = run(&[
            "count",
            d,
            "--customers",
            "--now",
            now,
            "--file",
            CUSTOMER_RULES,
        ]);
        assert_eq!(code, 0, "{err}");
        let (code, got, err) = strata_with(
            &[
                "count",
                "--customers",
                "--now",
                now,
                "--file",
                CUSTOMER_RULES,
            ],
            &db,
        );
        assert_eq!(code, 0, "{backend}: {err}");
        assert_eq!(got, expect, "{backend}");

        // Saved segments of the store serve `in_segment`; one rule as the
        // positional argument; csv output with the kind's fields.
        for (kind, rule) in [
            ("--customers", "in_segment('vip') OR in_segment('lapsed')"),
            ("--products", "in_segment('best-sellers') AND price > 10"),
        ] {
            let (code, expect, err) =
                run(&["members", d, kind, "--now", now, "--format", "csv", rule]);
            assert_eq!(code, 0, "{err}");
            let (code, got, err) = strata_with(
                &["members", kind, "--now", now, "--format", "csv", rule],
                &db,
            );
            assert_eq!(code, 0, "{backend}: {err}");
            assert_eq!(got, expect, "{backend} {rule}");
            assert!(expect.lines().count() > 1, "{rule} selects someone");
        }

        // Importing the same files again changes nothing.
        let (code, out, err) = strata_with(&["import", d], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        for line in out.lines() {
            assert!(
                line.contains(": 0 inserted, 0 updated, "),
                "{backend}: {line}"
            );
        }
    }
}

#[test]
fn a_newer_file_upserts_entities_and_appends_order_lines() {
    let dir = demo("200", "11");
    for db in Db::all() {
        let backend = db.name();
        let (code, _, err) = strata_with(&["import", dir.path().to_str().unwrap()], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        // The newer export: a renamed product, a refund, a new line on an
        // existing order and a new order.
        let newer = tempfile::tempdir().unwrap();
        for f in [
            "customers.csv",
            "product_daily.csv",
            "settings.json",
            "tiers.json",
            "segments.json",
        ] {
            let from = dir.path().join(f);
            if from.exists() {
                std::fs::copy(from, newer.path().join(f)).unwrap();
            }
        }
        let products = std::fs::read_to_string(dir.path().join("products.csv")).unwrap();
        let mut product_lines: Vec<String> = products.lines().map(str::to_owned).collect();
        let header: Vec<&str> = product_lines[0].split(',').collect();
        let title_col = header.iter().position(|h| *h == "title").unwrap();
        let mut rec = csv_row(&product_lines[1]);
        rec[title_col] = "Renamed".into();
        product_lines[1] = csv_line(&rec);
        std::fs::write(
            newer.path().join("products.csv"),
            product_lines.join("\n") + "\n",
        )
        .unwrap();

        let orders = std::fs::read_to_string(dir.path().join("orders.csv")).unwrap();
        let mut order_lines: Vec<String> = orders.lines().map(str::to_owned).collect();
        let header: Vec<String> = csv_row(&order_lines[0]);
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let first = csv_row(&order_lines[1]);
        let first_id = first[col("order_id")].clone();
        // Refund every line of the first order (order-level columns agree).
        for line in order_lines.iter_mut().skip(1) {
            let mut rec = csv_row(line);
            if rec[col("order_id")] == first_id {
                rec[col("status")] = "refunded".into();
                *line = csv_line(&rec);
            }
        }
        let mut extra = first.clone();
        extra[col("status")] = "refunded".into();
        extra[col("quantity")] = "5".into();
        order_lines.push(csv_line(&extra));
        let mut new_order = first.clone();
        new_order[col("order_id")] = "NEW-ORDER-1".into();
        order_lines.push(csv_line(&new_order));
        std::fs::write(
            newer.path().join("orders.csv"),
            order_lines.join("\n") + "\n",
        )
        .unwrap();

        let (code, out, err) = strata_with(&["import", newer.path().to_str().unwrap()], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        assert!(
            out.contains("products: 0 inserted, 1 updated"),
            "{backend}: {out}"
        );
        assert!(
            out.contains("orders: 1 inserted, 1 updated"),
            "{backend}: {out}"
        );
        assert!(
            out.contains("order lines: 2 inserted, 0 updated"),
            "{backend}: {out}"
        );
        let stored = db.dataset();
        assert_eq!(
            content(&stored),
            content(&strata_data::load_dir(newer.path()).unwrap()),
            "{backend}: the store holds the union, which here is the newer file"
        );
    }
}

fn csv_row(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect()
}

fn csv_line(rec: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(rec).unwrap();
    String::from_utf8(w.into_inner().unwrap())
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Bad files are refused whole, with where and what, and the store keeps
/// what it had.
#[test]
fn bad_input_is_refused_whole_and_the_store_is_unchanged() {
    let good = demo("50", "5");
    let db = Db::sqlite();
    let (code, _, err) = strata_with(&["import", good.path().to_str().unwrap()], &db);
    assert_eq!(code, 0, "{err}");
    let before = content(&db.dataset());

    let variant = |edit: &dyn Fn(&Path)| {
        let bad = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(good.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), bad.path().join(entry.file_name())).unwrap();
        }
        edit(bad.path());
        bad
    };
    let check = |bad: &tempfile::TempDir, expect: &[&str]| {
        let (code, out, err) = strata_with(&["import", bad.path().to_str().unwrap()], &db);
        assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
        for needle in expect {
            assert!(err.contains(needle), "{needle} missing from:\n{err}");
        }
        assert_eq!(content(&db.dataset()), before, "the store changed");
    };

    // A truncated file: the last row cut inside a quoted field.
    let truncated = variant(&|d| {
        let text = std::fs::read_to_string(d.join("products.csv")).unwrap();
        std::fs::write(d.join("products.csv"), format!("{text}P-CUT,\"Half a tit")).unwrap();
    });
    check(&truncated, &["products.csv:"]);

    // A duplicate id.
    let duplicate = variant(&|d| {
        let text = std::fs::read_to_string(d.join("customers.csv")).unwrap();
        let second = text.lines().nth(1).unwrap().to_owned();
        std::fs::write(d.join("customers.csv"), format!("{text}{second}\n")).unwrap();
    });
    check(&duplicate, &["customers.csv:52: customer_id:"]);

    // A file in the wrong encoding (Latin-1 bytes).
    let latin1 = variant(&|d| {
        let mut bytes = std::fs::read(d.join("customers.csv")).unwrap();
        let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut row = std::fs::read_to_string(d.join("customers.csv"))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .replacen(',', "X,", 1)
            .into_bytes();
        // "Müller" in Latin-1, in place of the id's tail.
        row.splice(0..0, b"M\xFCller-".iter().copied());
        row.push(b'\n');
        bytes.splice(header_end..header_end, row);
        std::fs::write(d.join("customers.csv"), bytes).unwrap();
    });
    check(&latin1, &["customers.csv:2:", "UTF-8"]);

    // A wrong type in line 900,000 of orders.csv.
    let deep = variant(&|d| {
        let text = std::fs::read_to_string(d.join("orders.csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let template = lines.next().unwrap();
        let cols = csv_row(header);
        let qty = cols.iter().position(|c| c == "quantity").unwrap();
        let id = cols.iter().position(|c| c == "order_id").unwrap();
        let mut rec = csv_row(template);
        let mut out = String::with_capacity(900_000 * template.len());
        out.push_str(header);
        out.push('\n');
        for n in 2..=900_001 {
            rec[id] = format!("BULK-{n}");
            rec[qty] = if n == 900_000 {
                "two".into()
            } else {
                "1".into()
            };
            out.push_str(&csv_line(&rec));
            out.push('\n');
        }
        std::fs::write(d.join("orders.csv"), out).unwrap();
    });
    check(&deep, &["orders.csv:900000: quantity:", "'two'"]);
}

/// Reads a child's lines until `stop` says so; the line it stopped at.
fn read_until(reader: &mut impl BufRead, mut stop: impl FnMut(&str) -> bool) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            return None;
        }
        if stop(line.trim_end()) {
            return Some(line.trim_end().to_owned());
        }
    }
}

fn spawn(args: &[&str], db: &Db, env: &[(&str, &str)]) -> Child {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(db.args());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(&all).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// SIGKILL in the middle of an import leaves no trace; the next import
/// completes and cleans up.
#[test]
fn an_import_killed_midway_leaves_no_trace() {
    let dir = demo("3000", "2");
    let d = dir.path().to_str().unwrap();
    let full = content(&strata_data::load_dir(dir.path()).unwrap());
    for db in Db::all() {
        let backend = db.name();
        let mut child = spawn(
            &["import", d],
            &db,
            &[
                ("STRATA_IMPORT_BATCH", "500"),
                ("STRATA_PROGRESS_INTERVAL_MS", "0"),
            ],
        );
        let mut err = BufReader::new(child.stderr.take().unwrap());
        // Kill once some batches are committed and more are to come.
        let seen = read_until(&mut err, |line| {
            line.strip_prefix("import: writing ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|frac| frac.split_once('/'))
                .is_some_and(|(done, total)| {
                    let (done, total): (u64, u64) = (done.parse().unwrap(), total.parse().unwrap());
                    done >= 2000 && done < total
                })
        });
        assert!(seen.is_some(), "{backend}: no progress line mid-import");
        child.kill().unwrap();
        child.wait().unwrap();
        let after = db.dataset();
        assert_eq!(
            after.products.len() + after.customers.len() + after.lines.len(),
            0,
            "{backend}: the import left rows"
        );

        let (code, _, err) = strata_with(&["import", d], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        assert_eq!(content(&db.dataset()), full, "{backend}");
        assert_eq!(
            db.open().clean_abandoned().unwrap(),
            0,
            "{backend}: staging rows left"
        );
    }
}

/// The memberships and tiers a from-scratch evaluation of the stored rows
/// gives at the stored clock.
fn fresh_memberships(db: &Db) -> (Memberships, Memberships) {
    let mut store = db.open();
    let tenant = store
        .tenants()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "default")
        .unwrap();
    let data = store.load(tenant.id).unwrap();
    let mut stored = store.memberships(tenant.id).unwrap();
    stored.members.sort();
    stored.tiers.sort();
    let clock = jiff::Timestamp::from_nanosecond(i128::from(tenant.clock.unwrap())).unwrap();
    let segments = data.segments.clone();
    let tiers: BTreeSet<String> = data
        .tiers
        .iter()
        .flat_map(|s| s.tiers.iter().map(|t| t.name.clone()))
        .collect();
    let engine = strata_engine::Engine::new(data, clock).unwrap();
    let mut fresh = Memberships::default();
    for seg in &segments {
        let kind = match seg.kind {
            SegmentKind::Customer => strata_lang::catalog::Kind::Customer,
            SegmentKind::Product => strata_lang::catalog::Kind::Product,
        };
        let rule = engine
            .compile(kind, &format!("in_segment('{}')", seg.name))
            .unwrap();
        for e in engine.evaluate(&rule).unwrap() {
            fresh
                .members
                .push((seg.name.clone(), seg.kind, engine.id(kind, e).to_owned()));
        }
    }
    for tier in tiers {
        let rule = engine
            .compile(
                strata_lang::catalog::Kind::Customer,
                &format!("tier = '{tier}'"),
            )
            .unwrap();
        for e in engine.evaluate(&rule).unwrap() {
            fresh.tiers.push((
                engine
                    .id(strata_lang::catalog::Kind::Customer, e)
                    .to_owned(),
                tier.clone(),
            ));
        }
    }
    fresh.members.sort();
    fresh.tiers.sort();
    (stored, fresh)
}

/// SIGKILL during live ingestion: the store holds every acknowledged
/// change (and at most the one in flight), its memberships equal a fresh
/// evaluation, and a second run resumes to the end.
#[test]
fn live_ingestion_killed_midway_keeps_every_acknowledged_change() {
    let dir = demo("150", "9");
    let d = dir.path().to_str().unwrap();
    let data = strata_data::load_dir(dir.path()).unwrap();
    let until = "2026-11-01";
    for db in Db::all() {
        let backend = db.name();
        let mut child = spawn(&["ingest", d, "--until", until], &db, &[]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut acked_orders = BTreeSet::new();
        read_until(&mut out, |line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields[0] == "ack" && fields[2] == "order" {
                acked_orders.insert(fields[3].to_owned());
            }
            acked_orders.len() >= 40
        })
        .unwrap_or_else(|| panic!("{backend}: ingest ended before 40 orders"));
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements still in the pipe were given before the kill.
        read_until(&mut out, |line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields[0] == "ack" && fields[2] == "order" {
                acked_orders.insert(fields[3].to_owned());
            }
            false
        });

        let stored = db.dataset();
        let stored_orders: BTreeSet<String> = (0..stored.orders.len())
            .map(|o| stored.orders.order_id.get(o).to_owned())
            .collect();
        assert!(
            acked_orders.is_subset(&stored_orders),
            "{backend}: an acknowledged order is missing"
        );
        assert!(
            stored_orders.len() <= acked_orders.len() + 1,
            "{backend}: more than the change in flight"
        );
        // Each stored order is whole.
        let by_order = data.lines_by_order();
        let stored_by_order = stored.lines_by_order();
        for o in 0..stored.orders.len() {
            let id = stored.orders.order_id.get(o);
            let src = (0..data.orders.len())
                .find(|&s| data.orders.order_id.get(s) == id)
                .unwrap();
            assert_eq!(
                stored_by_order.of(o).len(),
                by_order.of(src).len(),
                "{backend}: order {id}"
            );
        }
        let (stored_members, fresh) = fresh_memberships(&db);
        assert_eq!(stored_members, fresh, "{backend}: after the kill");
        assert!(
            !fresh.members.is_empty() || !fresh.tiers.is_empty(),
            "{backend}: nothing to compare"
        );

        // The second run resumes and finishes.
        let (code, out, err) = strata_with(&["ingest", d, "--until", until], &db);
        assert_eq!(code, 0, "{backend}: {err}");
        let resumed: BTreeSet<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("ack\t"))
            .filter_map(|l| l.split('\t').nth(2).filter(|_| l.contains("\torder\t")))
            .collect();
        assert!(
            resumed.is_disjoint(&stored_orders.iter().map(String::as_str).collect()),
            "{backend}: an order was fed twice"
        );
        assert_eq!(
            content(&db.dataset()),
            content(&data),
            "{backend}: after resuming"
        );
        let (stored_members, fresh) = fresh_memberships(&db);
        assert_eq!(stored_members, fresh, "{backend}: at the end");
    }
}

/// An engine started on imported rows begins after the newest of them, not
/// in their past.
#[test]
fn ingest_after_an_import_starts_at_the_newest_stored_order() {
    let dir = demo("60", "13");
    let d = dir.path().to_str().unwrap();
    let db = Db::sqlite();
    let (code, _, err) = strata_with(&["import", d], &db);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = strata_with(&["ingest", d], &db);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "everything was imported already");
    let newest = db.dataset().orders.ordered_at.iter().copied().max();
    let mut store = db.open();
    let tenant = store.tenant("default").unwrap();
    assert_eq!(tenant.clock, newest);
}
