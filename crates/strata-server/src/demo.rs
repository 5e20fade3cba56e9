//! `strata serve --demo`: a store filled with the synthetic dataset, and
//! an administrator to log in with, so one command shows Strata working.

use strata_data::Nanos;
use strata_store::{Location, ModuleRights, Right};

use crate::error::{ApiError, ApiResult};

/// The demo store's name.
pub const STORE: &str = "demo";
pub const ADMIN_EMAIL: &str = "admin@demo.strata";

/// What [`ensure`] did.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Customers generated (0: the store held data already).
    pub customers: usize,
    /// The password of the administrator it created (none if users
    /// existed).
    pub admin_password: Option<String>,
}

/// Fills the `demo` store with generated data ending at `now` if it holds
/// none, and creates an administrator if there are no users. Blocking.
pub fn ensure(location: &Location, customers: usize, now: Nanos) -> ApiResult<Prepared> {
    let mut store = strata_store::open(location)?;
    let mut out = Prepared::default();
    let tenant = store.tenant(STORE)?;
    let empty = tenant.data_version == 0 && tenant.clock.is_none();
    if empty {
        let dir = tempfile::tempdir().map_err(ApiError::internal)?;
        let end = jiff::Timestamp::from_nanosecond(i128::from(now)).map_err(ApiError::internal)?;
        let opts = strata_demo::DemoOptions {
            customers,
            seed: 42,
            end,
        };
        strata_demo::generate(dir.path(), &opts).map_err(ApiError::internal)?;
        let data = strata_data::load_dir(dir.path()).map_err(ApiError::internal)?;
        store.import(tenant.id, &data, &mut |_| {})?;
        out.customers = customers;
    }
    if store.users()?.is_empty() {
        let password = crate::auth::new_secret()[..16].to_owned();
        let hash = crate::auth::hash_password(&password)?;
        let user = store.create_user(ADMIN_EMAIL, &hash, true, now)?;
        store.set_access(
            tenant.id,
            user.id,
            ModuleRights {
                product_segments: Right::Edit,
                customer_segments: Right::Edit,
                tiers: Right::Edit,
            },
        )?;
        out.admin_password = Some(password);
    }
    Ok(out)
}
