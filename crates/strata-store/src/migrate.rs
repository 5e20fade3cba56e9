//! Schema migrations, as a backend-independent list: each backend embeds
//! its `migrations/<backend>/NNNN_name.sql` files in a `&[Migration]` and
//! applies [`pending`] ones in order, each in its own transaction together
//! with its row in `strata_migrations(version, name, applied_at)`.

use crate::StoreError;

/// One schema step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    /// 1, 2, 3, ... without gaps: the `NNNN` of the file name.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The version a database reaches once every migration of `all` ran.
pub(crate) fn latest(all: &[Migration]) -> i64 {
    all.last().map_or(0, |m| m.version)
}

/// The migrations a database at version `current` still needs, in order;
/// `TooNew` if a later program already moved it past what `all` knows (an
/// older program must not write into a schema it does not understand).
pub(crate) fn pending(all: &[Migration], current: i64) -> Result<&[Migration], StoreError> {
    let known = latest(all);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    Ok(&all[all.partition_point(|m| m.version <= current)..])
}

/// Checks a backend's list: versions 1, 2, ... in order (a test per
/// backend calls it, so a misnumbered file fails the build's tests rather
/// than a user's database).
#[cfg(test)]
pub(crate) fn check_list(all: &[Migration]) {
    for (i, m) in all.iter().enumerate() {
        assert_eq!(
            m.version,
            i as i64 + 1,
            "migration '{}' out of sequence",
            m.name
        );
        assert!(!m.sql.trim().is_empty(), "migration '{}' is empty", m.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[Migration] = &[
        Migration {
            version: 1,
            name: "init",
            sql: "CREATE TABLE a (x INTEGER);",
        },
        Migration {
            version: 2,
            name: "more",
            sql: "CREATE TABLE b (x INTEGER);",
        },
    ];

    #[test]
    fn pending_steps_follow_the_current_version() {
        check_list(LIST);
        let versions = |current| -> Vec<i64> {
            pending(LIST, current)
                .unwrap()
                .iter()
                .map(|m| m.version)
                .collect()
        };
        assert_eq!(versions(0), [1, 2]);
        assert_eq!(versions(1), [2]);
        assert_eq!(versions(2), [] as [i64; 0]);
        assert!(matches!(
            pending(LIST, 3),
            Err(StoreError::TooNew { found: 3, known: 2 })
        ));
    }
}
