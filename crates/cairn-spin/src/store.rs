//! Which database a component opens. The home store is Spin's SQLite
//! `default`, unless the `database_url` variable names a PostgreSQL server
//! (docs/postgres.md); a tier may place its tenants' memories in another
//! store (`cairn_core::placement`, opened through [`open_backend`]).

pub use cairn_core::placement::{Backend, DATABASE_URL_VARIABLE};

#[cfg(target_arch = "wasm32")]
pub use component::{Store, open, open_backend, placements};

#[cfg(target_arch = "wasm32")]
mod component {
    use super::{Backend, DATABASE_URL_VARIABLE};
    use crate::spin_postgres::{self, SpinPostgres};
    use crate::spin_sqlite::SpinSqlite;
    use crate::sql::{Dialect, Row, Sql, SqlValue};
    use cairn_core::ApiError;

    /// The component's database connection.
    pub enum Store {
        Sqlite(SpinSqlite),
        Postgres(SpinPostgres),
    }

    /// The home store's backend (`database_url`).
    fn home() -> Result<Backend, ApiError> {
        Backend::from_url(&crate::variables::get(DATABASE_URL_VARIABLE).unwrap_or_default())
    }

    /// Opens the home store: the control plane's, and the memories' of
    /// every tenant its tier does not place elsewhere (`crate::placement`).
    pub fn open() -> Result<Store, ApiError> {
        open_backend(&home()?)
    }

    /// Opens one backend's store.
    pub fn open_backend(backend: &Backend) -> Result<Store, ApiError> {
        match backend {
            Backend::Sqlite => SpinSqlite::open("default").map(Store::Sqlite),
            Backend::Postgres(url) => spin_postgres::open(url).map(Store::Postgres),
        }
    }

    /// Where the tiers place their tenants; `None` when every tier stores
    /// at home (the tiers document names no `store`: nothing is parsed).
    pub fn placements() -> Result<Option<cairn_core::placement::Placements>, ApiError> {
        cairn_core::placement::from_variables(crate::variables::get)
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
