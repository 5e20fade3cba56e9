//! What every request handler shares: configuration, the clock, store
//! connections for accounts and reads, and the tenants' live engines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_data::Nanos;
use strata_store::{Location, Store, StoreError, TenantId};

use crate::auth::{LOGIN_ENTRIES, LoginThrottle};
use crate::error::{ApiError, ApiResult};
use crate::tenant::TenantHandle;

/// Where the server reads the time. The engine takes time from here only,
/// so tests can hold it still or move it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Nanos;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        let ns = jiff::Timestamp::now().as_nanosecond();
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told (tests, demos of expiry).
#[derive(Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(at: Nanos) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(at))
    }

    pub fn set(&self, at: Nanos) {
        self.0.store(at, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Limits a request cannot pass.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Any JSON body.
    pub body_bytes: usize,
    /// An NDJSON batch body.
    pub batch_bytes: usize,
    /// Lines of one NDJSON batch.
    pub batch_lines: usize,
    /// Rule text, in bytes.
    pub rule_bytes: usize,
    /// The largest page of members or events.
    pub page_size: usize,
    /// Failed logins for one e-mail within `login_window` (server clock)
    /// after which its logins are refused, without checking the password,
    /// until the oldest of them is that old.
    pub login_failures: usize,
    pub login_window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: 1 << 20,
            batch_bytes: 64 << 20,
            batch_lines: 100_000,
            rule_bytes: 64 << 10,
            page_size: 1000,
            login_failures: 5,
            login_window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone)]
pub struct Config {
    pub location: Location,
    pub limits: Limits,
    /// A stale snapshot is rebuilt while the request waits if the last
    /// build took less than this; otherwise in the background, and the
    /// request is answered from the previous one (its `as_of` says so).
    pub sync_snapshot_budget: Duration,
    /// How often the engine's clock is moved to the wall clock.
    pub tick: Duration,
    /// How long a login session lasts.
    pub session_lifetime: Duration,
    /// Cookies with `Secure` (behind TLS).
    pub secure_cookies: bool,
}

impl Config {
    pub fn new(location: Location) -> Config {
        Config {
            location,
            limits: Limits::default(),
            sync_snapshot_budget: Duration::from_millis(250),
            tick: Duration::from_secs(1),
            session_lifetime: Duration::from_secs(14 * 24 * 3600),
            secure_cookies: false,
        }
    }
}

/// Store connections for work outside a tenant's engine (accounts, the
/// event log, histories). One connection serves one call at a time; idle
/// ones are kept for the next call.
pub struct Pool {
    location: Location,
    idle: Mutex<Vec<Box<dyn Store>>>,
}

impl Pool {
    pub fn new(location: Location) -> Pool {
        Pool {
            location,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        strata_store::open(&self.location)
    }

    /// Runs `f` with a connection on a blocking thread.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> ApiResult<R> {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = pool.idle.lock().map_err(ApiError::internal)?.pop();
            let mut conn = match taken {
                Some(c) => c,
                None => pool.open()?,
            };
            let out = f(&mut *conn);
            // A connection whose call failed inside the database may be in
            // a bad state: drop it rather than hand it on.
            if !matches!(
                out,
                Err(StoreError::Sqlite(_) | StoreError::Postgres(_) | StoreError::Io(_))
            ) && let Ok(mut idle) = pool.idle.lock()
                && idle.len() < 16
            {
                idle.push(conn);
            }
            out.map_err(ApiError::from)
        })
        .await
        .map_err(ApiError::internal)?
    }
}

impl Drop for Pool {
    /// Closing a PostgreSQL connection blocks on the client's own runtime,
    /// which tokio forbids on an async thread, and the last `AppState` is
    /// dropped on one (at the end of `serve`): the idle connections are
    /// closed on a thread of their own.
    fn drop(&mut self) {
        let idle = match self.idle.get_mut() {
            Ok(idle) => std::mem::take(idle),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        if idle.is_empty() {
            return;
        }
        if let Ok(closer) = std::thread::Builder::new()
            .name("close-connections".to_owned())
            .spawn(move || drop(idle))
        {
            let _ = closer.join();
        }
    }
}

pub struct AppState {
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub pool: Arc<Pool>,
    /// Failed logins, per e-mail, in memory: a restart forgets them.
    pub logins: LoginThrottle,
    tenants: Mutex<HashMap<TenantId, Arc<TenantHandle>>>,
}

impl AppState {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Arc<AppState> {
        Arc::new(AppState {
            pool: Arc::new(Pool::new(config.location.clone())),
            logins: LoginThrottle::new(
                config.limits.login_failures,
                config.limits.login_window,
                LOGIN_ENTRIES,
            ),
            config,
            clock,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    pub fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// The live engine of a tenant, started (restored from the store) on
    /// first use.
    pub async fn tenant(
        self: &Arc<Self>,
        tenant: &strata_store::Tenant,
    ) -> ApiResult<Arc<TenantHandle>> {
        if let Some(h) = self
            .tenants
            .lock()
            .map_err(ApiError::internal)?
            .get(&tenant.id)
        {
            return Ok(Arc::clone(h));
        }
        let state = Arc::clone(self);
        let name = tenant.name.clone();
        let id = tenant.id;
        // Restoring reads every row: keep it off the async threads. Two
        // requests racing here both restore; the first one kept wins and
        // the other engine is dropped (rare, and only at start).
        let handle = tokio::task::spawn_blocking(move || TenantHandle::start(&state, id, &name))
            .await
            .map_err(ApiError::internal)??;
        let mut tenants = self.tenants.lock().map_err(ApiError::internal)?;
        Ok(Arc::clone(tenants.entry(id).or_insert(handle)))
    }

    /// Starts every stored tenant's engine (at server start).
    pub async fn start_all(self: &Arc<Self>) -> ApiResult<()> {
        let tenants = self.pool.run(|s| s.tenants()).await?;
        for t in tenants {
            self.tenant(&t).await?;
        }
        Ok(())
    }

    /// Stops every engine's thread (tests start many servers).
    pub fn shutdown(&self) {
        if let Ok(mut tenants) = self.tenants.lock() {
            for (_, h) in tenants.drain() {
                h.stop();
            }
        }
    }
}
