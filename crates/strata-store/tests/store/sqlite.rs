//! The suite on SQLite.

use rusqlite::OptionalExtension;
use strata_store::sqlite::SqliteStore;
use strata_store::{Phase, Store, StoreError};
use tempfile::TempDir;

use crate::suite::Fixture;

struct SqliteFixture {
    dir: TempDir,
    store: Option<SqliteStore>,
}

fn fixture() -> SqliteFixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A directory that does not exist yet: `open` creates it.
    let store = SqliteStore::open(&dir.path().join("data")).expect("a fresh store opens");
    SqliteFixture {
        dir,
        store: Some(store),
    }
}

impl SqliteFixture {
    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("data/strata.db")).expect("the database")
    }
}

impl Fixture for SqliteFixture {
    fn store(&mut self) -> &mut dyn Store {
        self.store.as_mut().expect("the store is open")
    }

    fn try_reopen(&mut self) -> Result<(), StoreError> {
        self.store = None;
        self.store = Some(SqliteStore::open(&self.dir.path().join("data"))?);
        Ok(())
    }

    fn recreate_at_version_1(&mut self) {
        self.store = None;
        let data = self.dir.path().join("data");
        std::fs::remove_dir_all(&data).expect("the old store removed");
        std::fs::create_dir_all(&data).expect("the data directory");
        let conn = self.raw();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE strata_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at INTEGER NOT NULL
             );",
        )
        .expect("the migrations table");
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_init.sql"))
            .expect("schema version 1");
        conn.execute_batch(
            "INSERT INTO strata_migrations (version, name, applied_at) VALUES (1, 'init', 0)",
        )
        .expect("version 1 recorded");
    }

    fn connect(&mut self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.dir.path().join("data")).expect("a second connection"))
    }

    fn execute(&mut self, sql: &str) {
        self.raw().execute_batch(sql).expect("raw SQL");
    }

    fn query(&mut self, sql: &str) -> Option<i64> {
        self.raw()
            .query_row(sql, [], |r| r.get(0))
            .optional()
            .expect("raw SQL")
            .flatten()
    }
}

store_suite!(fixture);

// ---- SQLite only -------------------------------------------------------------

/// Opening a store only reads unless it has to migrate: a process must not
/// wait for an import's merge (which holds the write lock for minutes on a
/// large dataset) to open the store and read.
#[test]
fn opening_does_not_wait_for_a_merge() {
    let mut f = fixture();
    let data = crate::suite::demo(120, 42);
    let dir = f.dir.path().join("data");
    let t = f.store().tenant("shop").unwrap();
    let mut opened = 0;
    f.store()
        .import(t.id, &data, &mut |p| {
            if p.phase == Phase::Merging && p.done < p.total {
                let mut other = SqliteStore::open(&dir).expect("opens during the merge");
                assert_eq!(other.tenant("shop").unwrap(), t);
                opened += 1;
            }
        })
        .unwrap();
    assert!(opened > 0);
}
