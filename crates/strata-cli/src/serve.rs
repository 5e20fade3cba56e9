//! `strata serve` and `strata user`.

use std::io::{self, BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use strata_server::{AppState, Config, SystemClock};
use strata_store::Location;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The data directory of the embedded store (SQLite), created if
    /// missing (default `./strata-data`).
    #[arg(long, value_name = "D", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database to use instead.
    #[arg(long, value_name = "U")]
    pub database_url: Option<String>,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Fill a store named `demo` with the synthetic dataset if it is
    /// empty, and create an administrator if there are no users (its
    /// password is printed once).
    #[arg(long)]
    pub demo: bool,
    /// Customers of the demo dataset.
    #[arg(long, default_value_t = 10_000, requires = "demo")]
    pub demo_customers: usize,
}

fn location(data_dir: &Option<PathBuf>, url: &Option<String>) -> Location {
    match (url, data_dir) {
        (Some(u), _) => Location::Url(u.clone()),
        (None, Some(d)) => Location::DataDir(d.clone()),
        (None, None) => Location::DataDir(PathBuf::from("strata-data")),
    }
}

pub fn serve(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let location = location(&args.data_dir, &args.database_url);
    let clock = Arc::new(SystemClock);
    if args.demo {
        use strata_server::Clock as _;
        eprintln!(
            "demo: preparing the 'demo' store ({} customers if empty)",
            args.demo_customers
        );
        let prepared = strata_server::demo::ensure(&location, args.demo_customers, clock.now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if prepared.customers > 0 {
            eprintln!(
                "demo: generated and imported {} customers",
                prepared.customers
            );
        }
        if let Some(p) = prepared.admin_password {
            eprintln!(
                "demo: log in as {} with password {p} (shown once)",
                strata_server::demo::ADMIN_EMAIL
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let state = AppState::new(Config::new(location), clock);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "strata: loading stores, then serving on http://{}/ (API docs at /api/v1/docs)",
            listener.local_addr()?
        );
        state
            .start_all()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("strata: ready");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        strata_server::serve(listener, state, shutdown).await?;
        Ok(())
    })
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        email: String,
        /// May do everything in every store.
        #[arg(long)]
        admin: bool,
        #[arg(long, value_name = "D", conflicts_with = "database_url")]
        data_dir: Option<PathBuf>,
        #[arg(long, value_name = "U")]
        database_url: Option<String>,
    },
}

pub fn user(cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Create {
            email,
            admin,
            data_dir,
            database_url,
        } => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprint!("password for {email}: ");
            }
            let mut password = String::new();
            stdin.lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if let Err(e) = strata_server::api::accounts::check_new_user(&email, password) {
                bail!(crate::Refused(e.to_string()));
            }
            let hash =
                strata_server::auth::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let location = location(&data_dir, &database_url);
            let mut store = strata_store::open(&location)?;
            let now = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
            match store.create_user(&email.trim().to_lowercase(), &hash, admin, now) {
                Ok(u) => {
                    println!(
                        "user {} created: {}{}",
                        u.id.0,
                        u.email,
                        if u.admin { " (admin)" } else { "" }
                    );
                    Ok(())
                }
                Err(strata_store::StoreError::Conflict(m)) => bail!(crate::Refused(m)),
                Err(e) => Err(e.into()),
            }
        }
    }
}
