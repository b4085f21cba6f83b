//! `spin:sqlite/sqlite@3.0.0` host implementation.

use super::SqliteDb;
use crate::spin_bindings::sqlite::{self, Error, QueryResult, RowResult, Value};
use crate::state::RequestState;
use std::sync::Arc;
use wasmtime::component::Resource;

/// An open connection held by a guest.
pub struct ConnectionHandle {
    conn: Option<libsql::Connection>,
    db: Arc<SqliteDb>,
    writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() {
                // The guest went away mid-transaction (trap, timeout or bug):
                // undo it before anyone else can use the connection. Local
                // libsql calls never actually suspend, so this completes.
                let _ = futures::executor::block_on(conn.execute("ROLLBACK", ()));
            }
            if conn.is_autocommit() {
                self.db.release(conn);
            }
        }
        // `writer` drops after the rollback, releasing the write lock.
    }
}

/// Whether `sql` starts a write transaction.
fn begins_write(sql: &str) -> bool {
    let s = sql.trim_start();
    let head: String = s.chars().take(16).collect::<String>().to_ascii_uppercase();
    head.starts_with("BEGIN IMMEDIATE") || head.starts_with("BEGIN EXCLUSIVE")
}

fn to_libsql(v: Value) -> libsql::Value {
    match v {
        Value::Integer(i) => libsql::Value::Integer(i),
        Value::Real(x) => libsql::Value::Real(x),
        Value::Text(s) => libsql::Value::Text(s),
        Value::Blob(b) => libsql::Value::Blob(b),
        Value::Null => libsql::Value::Null,
    }
}

fn from_libsql(v: libsql::Value) -> Value {
    match v {
        libsql::Value::Integer(i) => Value::Integer(i),
        libsql::Value::Real(x) => Value::Real(x),
        libsql::Value::Text(s) => Value::Text(s),
        libsql::Value::Blob(b) => Value::Blob(b),
        libsql::Value::Null => Value::Null,
    }
}

fn map_err(e: libsql::Error) -> Error {
    match &e {
        libsql::Error::SqliteFailure(13, _) => Error::DatabaseFull,
        _ => Error::Io(e.to_string()),
    }
}

async fn run(conn: &libsql::Connection, sql: &str, params: Vec<Value>) -> Result<QueryResult, Error> {
    let params: Vec<libsql::Value> = params.into_iter().map(to_libsql).collect();
    let mut rows = conn.query(sql, libsql::params::Params::Positional(params)).await.map_err(map_err)?;
    let n = rows.column_count();
    let columns = (0..n).map(|i| rows.column_name(i).unwrap_or_default().to_string()).collect();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.map_err(map_err)? {
        let mut values = Vec::with_capacity(n as usize);
        for i in 0..n {
            values.push(from_libsql(row.get_value(i).map_err(map_err)?));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

impl sqlite::Host for RequestState {}

impl sqlite::HostConnection for RequestState {
    async fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        if !self.sqlite.allowed.iter().any(|d| *d == database) {
            return Ok(Err(Error::AccessDenied));
        }
        let Some(db) = self.sqlite.capability.get(&database).cloned() else {
            return Ok(Err(Error::NoSuchDatabase));
        };
        let conn = match db.acquire().await {
            Ok(c) => c,
            Err(e) => return Ok(Err(Error::Io(e.to_string()))),
        };
        let handle = ConnectionHandle { conn: Some(conn), db, writer: None };
        Ok(Ok(self.table.push(handle)?))
    }

    async fn execute(
        &mut self,
        conn: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let h = self.table.get_mut(&conn)?;
        if h.writer.is_none() && begins_write(&statement) {
            h.writer = Some(h.db.writer.clone().lock_owned().await);
        }
        let Some(c) = h.conn.as_ref() else {
            return Ok(Err(Error::InvalidConnection));
        };
        let result = run(c, &statement, parameters).await;
        if h.writer.is_some() && c.is_autocommit() {
            h.writer = None;
        }
        Ok(result)
    }

    async fn last_insert_rowid(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&conn)?.conn.as_ref().map(|c| c.last_insert_rowid()).unwrap_or(0))
    }

    async fn changes(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&conn)?.conn.as_ref().map(|c| c.changes()).unwrap_or(0))
    }

    async fn drop(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_write_transactions() {
        assert!(begins_write("BEGIN IMMEDIATE"));
        assert!(begins_write("  begin immediate transaction"));
        assert!(begins_write("BEGIN EXCLUSIVE"));
        assert!(!begins_write("BEGIN"));
        assert!(!begins_write("SELECT 1"));
    }
}
