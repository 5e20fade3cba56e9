//! A real server on a loopback port, over a fresh store (a SQLite data
//! directory, or a schema of its own on the PostgreSQL server of
//! `STRATA_TEST_DATABASE_URL`), with a clock the test moves.
//!
//! Tests that run on both backends are written once, taking the
//! [`Backend`], and instantiated by [`both!`]. `STRATA_TEST_POSTGRES=skip`
//! skips the PostgreSQL ones (as the CLI's store tests do); otherwise a
//! PostgreSQL server that cannot be reached fails them.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use strata_server::{AppState, Config, ManualClock};
use strata_store::{Location, ModuleRights, Right, Store};

/// The instant the CLI tests evaluate the hand-made dataset at.
pub const START: &str = "2024-06-30T12:00:00Z";
pub const PASSWORD: &str = "correct horse battery";

pub fn nanos(ts: &str) -> i64 {
    i64::try_from(ts.parse::<jiff::Timestamp>().unwrap().as_nanosecond()).unwrap()
}

pub fn handmade() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/handmade")
}

/// `#[tokio::test]`s of `async fn name(backend: Backend)`, as
/// `name::sqlite` and `name::postgres` (`workers = n;` first: runtimes of
/// `n` worker threads rather than 2).
macro_rules! both {
    (workers = $n:literal; $($test:ident),+ $(,)?) => {$(
        mod $test {
            use crate::support::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = $n)]
            async fn sqlite() {
                super::$test(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = $n)]
            async fn postgres() {
                if Backend::postgres_skipped() {
                    eprintln!("skipped: STRATA_TEST_POSTGRES=skip");
                    return;
                }
                super::$test(Backend::Postgres).await;
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {
        both!(workers = 2; $($test),+);
    };
}

/// The database a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn postgres_skipped() -> bool {
        std::env::var("STRATA_TEST_POSTGRES").is_ok_and(|v| v == "skip")
    }
}

/// Runs `f` on a thread of its own. The PostgreSQL client blocks on a
/// runtime of its own, which tokio refuses inside a test's runtime.
pub fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        scope
            .spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// One test's database, removed when dropped.
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { base: String, schema: String },
}

impl Db {
    fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => Db::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => off_runtime(Db::postgres),
        }
    }

    fn postgres() -> Db {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "strata_server_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let base = std::env::var("STRATA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned());
        let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is needed (set STRATA_TEST_POSTGRES=skip to skip): {e}")
        });
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        Db::Postgres { base, schema }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres { .. } => Backend::Postgres,
        }
    }

    pub fn location(&self) -> Location {
        match self {
            Db::Sqlite(dir) => Location::DataDir(dir.path().to_path_buf()),
            Db::Postgres { base, schema } => {
                Location::Url(format!("{base}?options=-c%20search_path%3D{schema}"))
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { base, schema } = self {
            off_runtime(|| {
                if let Ok(mut client) = postgres::Client::connect(base, postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
                }
            });
        }
    }
}

pub struct Server {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub state: Arc<AppState>,
    pub http: Client,
    /// An administrator's API token.
    pub admin: String,
    pub admin_id: i64,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    db: Option<Db>,
}

pub struct Options {
    pub backend: Backend,
    /// Import the hand-made dataset into store `shop`.
    pub handmade: bool,
    pub config: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            backend: Backend::Sqlite,
            handmade: true,
            config: Box::new(|_| {}),
        }
    }
}

impl Options {
    pub fn on(backend: Backend) -> Options {
        Options {
            backend,
            ..Options::default()
        }
    }
}

impl Server {
    pub async fn start_on(backend: Backend) -> Server {
        Server::start_with(Options::on(backend)).await
    }

    pub async fn start_with(opts: Options) -> Server {
        let db = Db::new(opts.backend);
        let location = db.location();
        let import = opts.handmade;
        off_runtime(|| {
            let mut store = strata_store::open(&location).unwrap();
            let tenant = store.tenant("shop").unwrap();
            if import {
                let data = strata_data::load_dir(&handmade()).unwrap();
                store.import(tenant.id, &data, &mut |_| {}).unwrap();
            }
            let hash = strata_server::auth::hash_password(PASSWORD).unwrap();
            store
                .create_user("admin@example.com", &hash, true, nanos(START))
                .unwrap();
        });
        Server::launch(db, opts.config).await
    }

    /// A server on the database of one stopped before (see
    /// [`Server::stop_keeping_data`]): nothing is imported or created; the
    /// administrator logs in again.
    #[allow(dead_code)]
    pub async fn start_in(db: Db, opts: Options) -> Server {
        assert_eq!(db.backend(), opts.backend);
        Server::launch(db, opts.config).await
    }

    async fn launch(db: Db, configure: Box<dyn FnOnce(&mut Config) + Send>) -> Server {
        let location = db.location();
        let admin_id = off_runtime(|| {
            let mut store = strata_store::open(&location).unwrap();
            store
                .user_by_email("admin@example.com")
                .unwrap()
                .unwrap()
                .0
                .id
                .0
        });
        let clock = Arc::new(ManualClock::new(nanos(START)));
        let mut config = Config::new(location);
        config.tick = std::time::Duration::from_millis(20);
        configure(&mut config);
        let state = AppState::new(config, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let task = tokio::spawn(async move {
            strata_server::serve(listener, s, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = Client::new();
        let admin = login_token(&http, &base, "admin@example.com", PASSWORD).await;
        Server {
            base,
            clock,
            state,
            http,
            admin,
            admin_id,
            shutdown: Some(tx),
            task: Some(task),
            db: Some(db),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer token (none: anonymous).
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.req(Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::POST, path, Some(token)).json(&body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::PUT, path, Some(token)).json(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.req(Method::DELETE, path, Some(token))).await
    }

    #[allow(dead_code)]
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::PATCH, path, Some(token)).json(&body)).await
    }

    /// A GET whose body is returned as text (CSV and the like).
    #[allow(dead_code)]
    pub async fn get_text(&self, path: &str, token: &str) -> (StatusCode, String) {
        let res = self
            .req(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.text().await.unwrap())
    }

    /// Opens a Server-Sent Events stream (`last_event_id`: resume after it).
    #[allow(dead_code)]
    pub async fn sse(&self, path: &str, token: &str, last_event_id: Option<i64>) -> SseStream {
        let mut r = self.req(Method::GET, path, Some(token));
        if let Some(id) = last_event_id {
            r = r.header("last-event-id", id.to_string());
        }
        sse_with(r).await
    }

    /// Creates a user (through the API, as the admin) and returns its id
    /// and an API token of theirs.
    pub async fn user(&self, email: &str) -> (i64, String) {
        let (status, body) = self
            .post(
                "/api/v1/users",
                &self.admin,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().unwrap();
        (
            id,
            login_token(&self.http, &self.base, email, PASSWORD).await,
        )
    }

    /// Grants a user rights in store `shop`.
    pub async fn grant(&self, user: i64, products: &str, customers: &str, tiers: &str) {
        let (status, body) = self
            .put(
                &format!("/api/v1/stores/shop/access/{user}"),
                &self.admin,
                json!({"product_segments": products, "customer_segments": customers, "tiers": tiers}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Moves the server's clock (the engine follows within a tick, and
    /// before any request that reads it).
    pub fn set_clock(&self, ts: &str) {
        self.clock.set(nanos(ts));
    }

    /// Runs `f` on a store connection of its own, for checking what was
    /// (not) stored.
    #[allow(dead_code)]
    pub fn with_store<R: Send>(&self, f: impl FnOnce(&mut dyn Store) -> R + Send) -> R {
        off_runtime(|| f(&mut *self.state.pool.open().unwrap()))
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the server and hands back its database, for
    /// [`Server::start_in`].
    #[allow(dead_code)]
    pub async fn stop_keeping_data(mut self) -> Db {
        self.halt().await;
        self.db.take().unwrap()
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Logs in with a password and creates an API token with the session.
pub async fn login_token(http: &Client, base: &str, email: &str, password: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/api/v1/tokens"))
        .header("cookie", cookie)
        .json(&json!({"name": "tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

pub async fn send(r: RequestBuilder) -> (StatusCode, Value) {
    let res: Response = r.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A whole answer: status, content type and body (JSON if it parses,
/// else the text as a JSON string; `Null` when empty).
#[allow(dead_code)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

#[allow(dead_code)]
impl Reply {
    /// Why this is not a proper problem document, if it is not one.
    pub fn not_a_problem(&self) -> Option<String> {
        if self.content_type != "application/problem+json" {
            return Some(format!(
                "content type '{}', not application/problem+json",
                self.content_type
            ));
        }
        if !self.body["code"].is_string() {
            return Some("no 'code'".to_owned());
        }
        if self.body["status"].as_u64() != Some(u64::from(self.status.as_u16())) {
            return Some(format!("'status' is {}", self.body["status"]));
        }
        None
    }

    /// Asserts a problem document with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        if let Some(why) = self.not_a_problem() {
            panic!("{why}: {}", self.body);
        }
        assert_eq!(self.body["code"], code, "{}", self.body);
    }
}

pub async fn send_full(r: RequestBuilder) -> Reply {
    let res: Response = r.send().await.unwrap();
    let status = res.status();
    let content_type = content_type(&res);
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        content_type,
        body,
    }
}

#[allow(dead_code)]
pub fn content_type(res: &Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[allow(dead_code)]
impl Server {
    /// Any request: a bearer token (none: anonymous) and a body with its
    /// content type (none: no body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut r = self.req(method, path, token);
        if let Some((content_type, bytes)) = body {
            r = r.header("content-type", content_type).body(bytes);
        }
        send_full(r).await
    }

    /// The id of store `shop`, for reading the store directly.
    pub fn shop(&self) -> strata_store::TenantId {
        self.with_store(|s| {
            s.tenants()
                .unwrap()
                .into_iter()
                .find(|t| t.name == "shop")
                .unwrap()
                .id
        })
    }
}

#[allow(dead_code)]
pub const ALL_EDIT: ModuleRights = ModuleRights {
    product_segments: Right::Edit,
    customer_segments: Right::Edit,
    tiers: Right::Edit,
};

/// Sends a request for a Server-Sent Events stream and checks it is one.
#[allow(dead_code)]
pub async fn sse_with(r: RequestBuilder) -> SseStream {
    let res = r.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseStream {
        res,
        buf: String::new(),
    }
}

/// One Server-Sent Event.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: Option<String>,
    pub data: Value,
}

/// An SSE response read as a byte stream, event by event.
#[allow(dead_code)]
pub struct SseStream {
    res: Response,
    buf: String,
}

#[allow(dead_code)]
impl SseStream {
    /// The next event (comments and keep-alives skipped), or `None` if
    /// none came within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if ev.event.is_some() || !data.is_empty() {
                    ev.data = serde_json::from_str(&data).unwrap();
                    return Some(ev);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(
                    &String::from_utf8(bytes.to_vec())
                        .unwrap()
                        .replace("\r\n", "\n"),
                ),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}
