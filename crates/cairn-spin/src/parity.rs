//! The same logic on both backends, for tests (feature `parity-testing`):
//! a native SQLite in memory and a throwaway PostgreSQL (`cairn-testpg`),
//! each call run on both and its answers required to be equal, so the
//! PostgreSQL port is held to SQLite's behaviour (docs/postgres.md).

use crate::native_postgres::{self, NativePostgres};
use crate::native_sqlite::NativeSqlite;
use crate::sql::Sql;
use cairn_core::ApiError;
use std::fmt::Debug;

pub struct BothBackends {
    pub sqlite: NativeSqlite,
    pub postgres: NativePostgres,
    _server: cairn_testpg::TestPg,
}

impl BothBackends {
    /// A fresh SQLite and a fresh PostgreSQL server (panics with the reason
    /// when PostgreSQL cannot start).
    pub fn start() -> BothBackends {
        let server = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        let postgres = native_postgres::connect(&server.url("postgres")).unwrap_or_else(|e| panic!("{e}"));
        BothBackends { sqlite: NativeSqlite::in_memory(), postgres, _server: server }
    }

    /// A second connection to the PostgreSQL database, as another instance
    /// has: for tests of what two transactions do to each other.
    pub fn another_postgres_connection(&self) -> NativePostgres {
        native_postgres::connect(&self._server.url("postgres")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `f` on each backend and returns its answer, which must be the
    /// same on both: equal values, or errors with equal status and code.
    pub fn same<T: PartialEq + Debug>(
        &self,
        what: &str,
        f: impl Fn(&dyn Sql) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match (f(&self.sqlite), f(&self.postgres)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{what}: SQLite and PostgreSQL answer differently");
                Ok(a)
            }
            (Err(a), Err(b)) => {
                assert_eq!((a.status, &a.code), (b.status, &b.code), "{what}: errors differ: {a:?} / {b:?}");
                Err(a)
            }
            (a, b) => panic!("{what}: SQLite {a:?}, PostgreSQL {b:?}"),
        }
    }
}
