//! The storage seam: the only way kernel logic reaches its database.
//!
//! Logic talks to [`Sql`], a one-method trait (run a statement with
//! parameters, get rows back), so the same code runs over Spin's SQLite
//! interface in the component (`spin_sqlite.rs`) and over any other backend
//! later (a Postgres adapter for hosted tiers) without touching the logic.
//! Statements use SQLite syntax; a backend for another dialect translates here.

use cairn_core::ApiError;

/// A statement parameter or a result column value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_string())
    }
}
impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}
impl From<&String> for SqlValue {
    fn from(s: &String) -> Self {
        SqlValue::Text(s.clone())
    }
}
impl From<i64> for SqlValue {
    fn from(i: i64) -> Self {
        SqlValue::Integer(i)
    }
}
impl From<f64> for SqlValue {
    fn from(x: f64) -> Self {
        SqlValue::Real(x)
    }
}
impl From<bool> for SqlValue {
    fn from(b: bool) -> Self {
        SqlValue::Integer(b as i64)
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(SqlValue::Null)
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(b: Vec<u8>) -> Self {
        SqlValue::Blob(b)
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    pub fn text(&self, i: usize) -> Option<&str> {
        match self.0.get(i) {
            Some(SqlValue::Text(s)) => Some(s),
            _ => None,
        }
    }
    pub fn string(&self, i: usize) -> String {
        self.text(i).unwrap_or_default().to_string()
    }
    pub fn opt_string(&self, i: usize) -> Option<String> {
        self.text(i).map(str::to_string)
    }
    /// Moves column `i`'s text out of the row (empty when not text), for
    /// readers that consume the row: no copy of the string.
    pub fn take_string(&mut self, i: usize) -> String {
        self.take_opt_string(i).unwrap_or_default()
    }
    /// Moves column `i`'s text out of the row, `None` when not text.
    pub fn take_opt_string(&mut self, i: usize) -> Option<String> {
        match self.0.get_mut(i) {
            Some(v @ SqlValue::Text(_)) => match std::mem::replace(v, SqlValue::Null) {
                SqlValue::Text(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(SqlValue::Integer(n)) => *n,
            Some(SqlValue::Real(x)) => *x as i64,
            _ => 0,
        }
    }
    pub fn real(&self, i: usize) -> f64 {
        match self.0.get(i) {
            Some(SqlValue::Real(x)) => *x,
            Some(SqlValue::Integer(n)) => *n as f64,
            _ => 0.0,
        }
    }
    pub fn blob(&self, i: usize) -> Option<&[u8]> {
        match self.0.get(i) {
            Some(SqlValue::Blob(b)) => Some(b),
            _ => None,
        }
    }
    pub fn is_null(&self, i: usize) -> bool {
        matches!(self.0.get(i), None | Some(SqlValue::Null))
    }
}

/// Which SQL a backend speaks, for the few places that must say it
/// differently (see `pg_dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The few spellings that differ, for the logic's statements built at run
/// time (the rest is translated by the backend, `pg_seam`).
impl Dialect {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// The function giving a substring's 1-based position (0: absent).
    pub fn position_fn(self) -> &'static str {
        match self {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        }
    }

    /// Descending order with NULLs last, SQLite's own order for `DESC`
    /// (PostgreSQL puts them first); spelled without the clause on SQLite,
    /// whose planner then keeps using the indexes that say plain `DESC`.
    pub fn desc_nulls_last(self) -> &'static str {
        match self {
            Dialect::Sqlite => "DESC",
            Dialect::Postgres => "DESC NULLS LAST",
        }
    }

    /// `expr` kept from using an index, SQLite's unary `+` (which steers its
    /// planner to the primary key when a scope's own index would read far
    /// more rows); PostgreSQL has no such hint (and no `+` on text) and
    /// plans from statistics.
    pub fn unindexed(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{expr}"),
            Dialect::Postgres => expr.to_string(),
        }
    }

    /// The clause that makes a `SELECT` lock the rows it returns and pass
    /// over rows another transaction has locked (PostgreSQL's `FOR UPDATE
    /// SKIP LOCKED`); nothing on SQLite, whose one writer already excludes
    /// every other.
    pub fn lock_skipping_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The clause that makes a `SELECT` lock the rows it returns until the
    /// transaction ends (`FOR UPDATE`); nothing on SQLite (one writer).
    pub fn lock_rows(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Ascending order with NULLs first (SQLite's order for `ASC`).
    pub fn asc_nulls_first(self) -> &'static str {
        match self {
            Dialect::Sqlite => "ASC",
            Dialect::Postgres => "ASC NULLS FIRST",
        }
    }
}

/// Whether `e` says a table does not exist: SQLite's message, or
/// PostgreSQL's SQLSTATE 42P01 (which a PostgreSQL backend puts in its
/// messages as `SQLSTATE 42P01`, whatever the server's language).
pub fn is_missing_table(e: &ApiError) -> bool {
    e.message.contains("no such table") || e.message.contains("SQLSTATE 42P01")
}

/// Whether `e` says a row broke a unique key: SQLite's message, or
/// PostgreSQL's SQLSTATE 23505.
pub fn is_unique_violation(e: &ApiError) -> bool {
    e.message.contains("UNIQUE constraint failed") || e.message.contains("SQLSTATE 23505")
}

/// A database connection.
pub trait Sql {
    /// The SQL this backend speaks (SQLite unless it says otherwise).
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    /// Runs one statement and returns its rows (empty for statements without
    /// results).
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError>;

    /// Runs one statement, ignoring rows.
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<(), ApiError> {
        self.query(sql, params).map(|_| ())
    }

    /// The first row, if any.
    fn query_one(&self, sql: &str, params: &[SqlValue]) -> Result<Option<Row>, ApiError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// Runs `f` inside a write transaction (`BEGIN IMMEDIATE` … `COMMIT`),
/// rolling back on any error so nothing is half-written.
pub fn write_txn<T>(db: &dyn Sql, f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>) -> Result<T, ApiError> {
    txn_begun_by(db, "BEGIN IMMEDIATE", f)
}

/// [`write_txn`] for a transaction that writes only `scope_key`'s rows (its
/// chain, nodes, edges, usage) and appends to shared append-only tables
/// (the outbox). On SQLite it is [`write_txn`] (one writer anyway); on
/// PostgreSQL it holds the scope's lock and the writer lock shared
/// (`pg_dialect::transaction`), so instances write different scopes at
/// once. Anything that reads and then writes another scope's or a global
/// row must use [`write_txn`].
pub fn scope_write_txn<T>(
    db: &dyn Sql,
    scope_key: &str,
    f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    scopes_write_txn(db, &[scope_key], f)
}

/// [`scope_write_txn`] for a transaction that writes the rows of several
/// scopes (a derivation batch's jobs): it holds every one of their locks,
/// taken in one order by every transaction (`pg_dialect::transaction`).
/// Without scopes it is [`rows_write_txn`].
pub fn scopes_write_txn<T>(
    db: &dyn Sql,
    scope_keys: &[&str],
    f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    match db.dialect() {
        Dialect::Sqlite => write_txn(db, f),
        Dialect::Postgres if scope_keys.is_empty() => rows_write_txn(db, f),
        Dialect::Postgres => {
            let mut begin = String::from("BEGIN IMMEDIATE SCOPE");
            for key in scope_keys {
                begin.push(' ');
                begin.push_str(&crate::pg_dialect::scope_lock_key(key).to_string());
            }
            txn_begun_by(db, &begin, f)
        }
    }
}

/// [`write_txn`] for a transaction that guards what it reads with row
/// locks of its own ([`Dialect::lock_skipping_locked`], `FOR UPDATE`), such
/// as the outbox's claims. On SQLite it is [`write_txn`]; on PostgreSQL it
/// holds the writer lock shared, so it neither waits for scope writers nor
/// holds them up, and still never runs beside a [`write_txn`].
pub fn rows_write_txn<T>(db: &dyn Sql, f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>) -> Result<T, ApiError> {
    match db.dialect() {
        Dialect::Sqlite => write_txn(db, f),
        Dialect::Postgres => txn_begun_by(db, "BEGIN IMMEDIATE ROWS", f),
    }
}

fn txn_begun_by<T>(db: &dyn Sql, begin: &str, f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>) -> Result<T, ApiError> {
    db.exec(begin, &[])?;
    match f(db) {
        Ok(v) => match db.exec("COMMIT", &[]) {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = db.exec("ROLLBACK", &[]);
                Err(e)
            }
        },
        Err(e) => {
            let _ = db.exec("ROLLBACK", &[]);
            Err(e)
        }
    }
}

/// Runs `f` inside a read transaction so every statement sees one snapshot.
pub fn read_txn<T>(db: &dyn Sql, f: impl FnOnce(&dyn Sql) -> Result<T, ApiError>) -> Result<T, ApiError> {
    db.exec("BEGIN", &[])?;
    let out = f(db);
    let _ = db.exec(if out.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[]);
    out
}

/// `?, ?, ?` with `n` placeholders.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// Encodes an embedding as little-endian f32 bytes (the stored form).
pub fn f32_blob(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}
