//! A real server on a loopback port, over a fresh SQLite store, with a
//! clock the test moves.

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
    _dir: tempfile::TempDir,
}

pub struct Options {
    /// Import the hand-made dataset into store `shop`.
    pub handmade: bool,
    pub config: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            handmade: true,
            config: Box::new(|_| {}),
        }
    }
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::DataDir(dir.path().to_path_buf());
        let clock = Arc::new(ManualClock::new(nanos(START)));
        let admin_id = {
            let mut store = strata_store::open(&location).unwrap();
            let tenant = store.tenant("shop").unwrap();
            if opts.handmade {
                let data = strata_data::load_dir(&handmade()).unwrap();
                store.import(tenant.id, &data, &mut |_| {}).unwrap();
            }
            let hash = strata_server::auth::hash_password(PASSWORD).unwrap();
            store
                .create_user("admin@example.com", &hash, true, nanos(START))
                .unwrap()
                .id
                .0
        };
        let mut config = Config::new(location);
        config.tick = std::time::Duration::from_millis(20);
        (opts.config)(&mut config);
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
            _dir: dir,
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

    /// A store connection for checking what was (not) stored.
    pub fn store(&self) -> Box<dyn Store> {
        self.state.pool.open().unwrap()
    }

    pub async fn stop(mut self) {
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

#[allow(dead_code)]
pub const ALL_EDIT: ModuleRights = ModuleRights {
    product_segments: Right::Edit,
    customer_segments: Right::Edit,
    tiers: Right::Edit,
};
