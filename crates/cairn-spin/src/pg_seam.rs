//! The [`Sql`] seam over any PostgreSQL client: one place that turns the
//! seam's SQLite-spelled statements into PostgreSQL's and keeps SQLite's
//! transaction guarantees, shared by the component's `spin:postgres`
//! backend (`spin_postgres.rs`) and the native one the logic's tests use
//! (`native_postgres.rs`), so what passes natively passes in a component.
//!
//! - Transaction statements become [`pg_dialect::transaction`]'s (the
//!   writer lock on `BEGIN IMMEDIATE`, one snapshot on `BEGIN`); a `BEGIN`
//!   inside a transaction is refused, as SQLite refuses it (PostgreSQL
//!   would only warn, and the inner `COMMIT` would commit the outer
//!   transaction).
//! - Every other statement has its placeholders numbered and cast to its
//!   values' types ([`pg_dialect::typed_statement`]).
//! - Errors name the statement; the client puts a server error's SQLSTATE
//!   in its message (`SQLSTATE 42P01`), which the logic matches on
//!   ([`crate::sql::is_missing_table`]).

use crate::pg_dialect;
use crate::sql::{Dialect, Row, Sql, SqlValue};
use cairn_core::ApiError;
use std::cell::Cell;

/// What a PostgreSQL client does for the seam.
pub trait PgClient {
    /// Runs one statement without parameters, ignoring rows (transaction
    /// control).
    fn batch(&self, sql: &str) -> Result<(), ApiError>;
    /// Runs one statement in PostgreSQL's syntax with its parameters bound
    /// as their own types (integer `int8`, real `float8`, text, blob
    /// `bytea`, NULL any type) and reads the rows back as seam values
    /// (booleans as 0/1, as SQLite has them).
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError>;
}

/// A PostgreSQL connection behind the seam.
pub struct PgSql<C> {
    client: C,
    in_transaction: Cell<bool>,
}

impl<C: PgClient> PgSql<C> {
    pub fn new(client: C) -> PgSql<C> {
        PgSql { client, in_transaction: Cell::new(false) }
    }

    fn transaction(&self, statements: Vec<String>) -> Result<(), ApiError> {
        let begins = statements[0].starts_with("BEGIN");
        if begins && self.in_transaction.get() {
            return Err(ApiError::internal("cannot start a transaction within a transaction"));
        }
        for s in &statements {
            if let Err(e) = self.client.batch(s) {
                if begins {
                    // The BEGIN went through and the lock did not: end it.
                    let _ = self.client.batch("ROLLBACK");
                }
                self.in_transaction.set(false);
                return Err(e);
            }
        }
        self.in_transaction.set(begins);
        Ok(())
    }
}

impl<C: PgClient> Sql for PgSql<C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
        let with_statement = |mut e: ApiError| {
            e.message = format!("{}: {sql}", e.message);
            e
        };
        if let Some(statements) = pg_dialect::transaction(sql) {
            return self.transaction(statements).map(|()| Vec::new()).map_err(with_statement);
        }
        let pg_sql = pg_dialect::typed_statement(sql, params).map_err(|e| with_statement(ApiError::internal(e)))?;
        self.client.query(&pg_sql, params).map_err(with_statement)
    }
}
