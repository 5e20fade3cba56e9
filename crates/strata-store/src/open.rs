//! Where a store is: a data directory (SQLite) or a PostgreSQL URL.

use std::path::PathBuf;

use crate::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The embedded default: `DIR/strata.db`, created if missing.
    DataDir(PathBuf),
    /// `postgres://...` (or `postgresql://...`).
    Url(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::DataDir(dir) => write!(f, "{}", dir.display()),
            // Never print a password a URL may carry.
            Location::Url(url) => f.write_str(&redact(url)),
        }
    }
}

/// `url` with the password, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Opens (and migrates) the store at `location`.
pub fn open(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        Location::DataDir(dir) => Box::new(crate::sqlite::SqliteStore::open(dir)?),
        Location::Url(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(StoreError::Invalid(format!(
                    "--database-url: expected postgres://... (got '{}')",
                    redact(url)
                )));
            }
            Box::new(crate::postgres::PgStore::connect(url)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_printed() {
        let check = |url: &str, expect: &str| assert_eq!(redact(url), expect);
        check(
            "postgres://ann:s3cret@db.example:5432/shop",
            "postgres://ann:***@db.example:5432/shop",
        );
        check(
            "postgres://root@127.0.0.1:5432/test",
            "postgres://root@127.0.0.1:5432/test",
        );
        check("postgres://db/x?a=b@c", "postgres://db/x?a=b@c");
        check("not a url", "not a url");
    }
}
