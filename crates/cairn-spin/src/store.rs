//! Which database a component stores in: Spin's SQLite `default`, unless
//! the `database_url` variable names a PostgreSQL server (the hosted
//! tiers; docs/postgres.md). Every component of one deployment reads the
//! same variable, so a tenant's data lives in exactly one backend.

use cairn_core::ApiError;

/// The variable naming the PostgreSQL server (empty: SQLite).
pub const DATABASE_URL_VARIABLE: &str = "database_url";

/// The backend a `database_url` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, ApiError> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Backend::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_string()));
        }
        // Never echo the value: it may hold a password.
        Err(ApiError::new(500, "invalid_configuration", "database_url must be empty (SQLite) or a postgres:// URL"))
    }
}

#[cfg(target_arch = "wasm32")]
pub use component::{Store, open};

#[cfg(target_arch = "wasm32")]
mod component {
    use super::Backend;
    use crate::spin_postgres::{self, SpinPostgres};
    use crate::spin_sqlite::SpinSqlite;
    use crate::sql::{Dialect, Row, Sql, SqlValue};
    use cairn_core::ApiError;

    /// The component's database connection.
    pub enum Store {
        Sqlite(SpinSqlite),
        Postgres(SpinPostgres),
    }

    /// Opens the configured database.
    pub fn open() -> Result<Store, ApiError> {
        match Backend::from_url(&crate::variables::get(super::DATABASE_URL_VARIABLE).unwrap_or_default())? {
            Backend::Sqlite => SpinSqlite::open("default").map(Store::Sqlite),
            Backend::Postgres(url) => spin_postgres::open(&url).map(Store::Postgres),
        }
    }

    impl Sql for Store {
        fn dialect(&self) -> Dialect {
            match self {
                Store::Sqlite(db) => db.dialect(),
                Store::Postgres(db) => db.dialect(),
            }
        }
        fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
            match self {
                Store::Sqlite(db) => db.query(sql, params),
                Store::Postgres(db) => db.query(sql, params),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_selects_the_backend_and_a_bad_one_is_refused_without_echoing_it() {
        assert_eq!(Backend::from_url("").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("  ").unwrap(), Backend::Sqlite);
        let url = "postgres://cairn@127.0.0.1:5432/cairn";
        assert_eq!(Backend::from_url(url).unwrap(), Backend::Postgres(url.into()));
        let e = Backend::from_url("mysql://u:hunter2@db/x").unwrap_err();
        assert_eq!(e.status, 500);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
