//! The suite on PostgreSQL, each test in a schema of its own.
//!
//! The server is `STRATA_TEST_DATABASE_URL` (default
//! `postgres://root@127.0.0.1:5432/test`). A server that cannot be reached
//! fails every test; `STRATA_TEST_POSTGRES=skip` skips them instead.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use strata_store::postgres::PgStore;
use strata_store::{Store, StoreError};

use crate::suite::Fixture;

fn base_url() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// `true` if the tests are to be skipped; panics if the server is needed
/// and cannot be reached.
fn skipped() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| {
        if std::env::var("STRATA_TEST_POSTGRES").as_deref() == Ok("skip") {
            eprintln!("STRATA_TEST_POSTGRES=skip: PostgreSQL tests skipped");
            return true;
        }
        let url = base_url();
        if let Err(e) = Client::connect(&url, NoTls) {
            panic!(
                "cannot reach PostgreSQL at {url} ({e}); start it, point \
                 STRATA_TEST_DATABASE_URL at one, or set STRATA_TEST_POSTGRES=skip"
            );
        }
        false
    })
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// A schema of its own, dropped with the fixture. The store's connection
/// carries the schema's name as its `application_name`, so that a reopen
/// can wait for the old session to end: the server frees a dead session's
/// advisory locks only once its backend has gone.
pub struct PgFixture {
    url: String,
    schema: String,
    raw: Client,
    store: Option<PgStore>,
}

pub fn fixture() -> PgFixture {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!(
        "strata_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let url = with_param(&base_url(), &format!("application_name={schema}"));
    let store = PgStore::connect_in_schema(&url, &schema).expect("a fresh store opens");
    let mut raw = Client::connect(&base_url(), NoTls).expect("a raw connection");
    raw.batch_execute(&format!("SET search_path TO {schema}"))
        .expect("the schema");
    PgFixture {
        url,
        schema,
        raw,
        store: Some(store),
    }
}

impl PgFixture {
    fn close(&mut self) {
        if self.store.take().is_none() {
            return;
        }
        let started = Instant::now();
        loop {
            let alive: i64 = self
                .raw
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&self.schema],
                )
                .expect("pg_stat_activity")
                .get(0);
            if alive == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the store's session did not end"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PgFixture {
    fn drop(&mut self) {
        self.store = None;
        // `DROP SCHEMA` waits for the locks of sessions still ending.
        let _ = self
            .raw
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

impl Fixture for PgFixture {
    fn store(&mut self) -> &mut dyn Store {
        self.store.as_mut().expect("the store is open")
    }

    fn try_reopen(&mut self) -> Result<(), StoreError> {
        self.close();
        self.store = Some(PgStore::connect_in_schema(&self.url, &self.schema)?);
        Ok(())
    }

    fn recreate_at_version_1(&mut self) {
        self.close();
        self.raw
            .batch_execute(&format!(
                "DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema};
                 CREATE TABLE strata_migrations (
                     version    BIGINT PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at BIGINT NOT NULL
                 );",
                schema = self.schema
            ))
            .expect("an empty schema");
        self.raw
            .batch_execute(include_str!("../../migrations/postgres/0001_init.sql"))
            .expect("schema version 1");
        self.raw
            .batch_execute(
                "INSERT INTO strata_migrations (version, name, applied_at) VALUES (1, 'init', 0)",
            )
            .expect("version 1 recorded");
    }

    fn connect(&mut self) -> Box<dyn Store> {
        Box::new(PgStore::connect_in_schema(&base_url(), &self.schema).expect("another connection"))
    }

    fn execute(&mut self, sql: &str) {
        self.raw.batch_execute(sql).expect("raw SQL");
    }

    fn query(&mut self, sql: &str) -> Option<i64> {
        self.raw
            .query_opt(sql, &[])
            .expect("raw SQL")
            .and_then(|row| row.get::<_, Option<i64>>(0))
    }
}

// `return` leaves the generated test itself: the block is expanded into its
// body.
store_suite!({
    if skipped() {
        return;
    }
    fixture
});

// ---- PostgreSQL only -------------------------------------------------------

/// Two processes opening a fresh schema at once: one migrates, the other
/// waits and finds it done.
#[test]
fn concurrent_first_connections_migrate_once() {
    if skipped() {
        return;
    }
    let f = fixture();
    let schema = format!("{}_twin", f.schema);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                let mut store = PgStore::connect_in_schema(&base_url(), &schema)?;
                store.schema_version()
            })
        })
        .collect();
    let versions: Vec<_> = openers.into_iter().map(|o| o.join().unwrap()).collect();
    let mut raw = Client::connect(&base_url(), NoTls).unwrap();
    let applied = raw
        .query_one(
            &format!("SELECT COUNT(*) FROM {schema}.strata_migrations"),
            &[],
        )
        .map(|r| r.get::<_, i64>(0));
    raw.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    for version in versions {
        assert_eq!(version.unwrap(), 3);
    }
    assert_eq!(applied.unwrap(), 3);
}

/// A URL may choose the schema itself.
#[test]
fn a_url_can_set_the_search_path() {
    if skipped() {
        return;
    }
    let mut f = fixture();
    let t = f.store().tenant("shop").unwrap();
    let url = with_param(
        &base_url(),
        &format!("options=-c%20search_path%3D{}", f.schema),
    );
    let mut other = PgStore::connect(&url).unwrap();
    assert_eq!(other.tenants().unwrap(), [t]);
}
