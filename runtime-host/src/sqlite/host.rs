//! `spin:sqlite/sqlite@3.0.0` host implementation.

use super::{PooledConn, SqliteDb};
use crate::spin_bindings::sqlite::{self, Error, QueryResult, RowResult, Value};
use crate::state::{Priority, RequestState};
use std::sync::Arc;
use wasmtime::component::Resource;

/// An open connection held by a guest.
pub struct ConnectionHandle {
    conn: Option<PooledConn>,
    db: Arc<SqliteDb>,
    writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        if let Some(pooled) = self.conn.take() {
            if !pooled.conn.is_autocommit() {
                // The guest went away mid-transaction (trap, timeout or bug):
                // undo it before anyone else can use the connection. Local
                // libsql calls never actually suspend, so this completes.
                let _ = futures::executor::block_on(pooled.conn.execute("ROLLBACK", ()));
            }
            if pooled.conn.is_autocommit() {
                self.db.release(pooled);
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

async fn run(pooled: &mut PooledConn, sql: &str, params: Vec<Value>) -> Result<QueryResult, Error> {
    let n = params.len();
    let params: Vec<libsql::Value> = params.into_iter().map(to_libsql).collect();
    if let Some(stmt) = pooled.cached(sql, n).await.map_err(map_err)? {
        let result = collect(stmt, params).await;
        // Release the statement's locks now, not when it is next used.
        stmt.reset();
        return result;
    }
    let stmt = pooled.conn.prepare(sql).await.map_err(map_err)?;
    collect(&stmt, params).await
}

async fn collect(stmt: &libsql::Statement, params: Vec<libsql::Value>) -> Result<QueryResult, Error> {
    let mut rows = stmt.query(libsql::params::Params::Positional(params)).await.map_err(map_err)?;
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

/// The database's write lock. A request counts itself as waiting while it
/// queues. Derivation takes the lock only when it is free and no request
/// waits (polling for up to [`super::BACKGROUND_YIELD`]), then queues like
/// anyone, so a steady stream of writes delays it but cannot starve it.
async fn take_writer(db: &Arc<SqliteDb>, priority: Priority) -> tokio::sync::OwnedMutexGuard<()> {
    use std::sync::atomic::Ordering::{AcqRel, Acquire};
    match priority {
        Priority::Foreground => {
            db.foreground_waiting.fetch_add(1, AcqRel);
            let guard = db.writer.clone().lock_owned().await;
            db.foreground_waiting.fetch_sub(1, AcqRel);
            guard
        }
        Priority::Background => {
            let deadline = std::time::Instant::now() + super::BACKGROUND_YIELD;
            loop {
                if db.foreground_waiting.load(Acquire) == 0
                    && let Ok(guard) = db.writer.clone().try_lock_owned()
                {
                    return guard;
                }
                if std::time::Instant::now() >= deadline {
                    return db.writer.clone().lock_owned().await;
                }
                tokio::time::sleep(std::time::Duration::from_micros(500)).await;
            }
        }
    }
}

impl sqlite::Host for RequestState {}

impl sqlite::HostConnection for RequestState {
    async fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        if !self.sqlite.allowed.contains(&database) {
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
            let waited = std::time::Instant::now();
            h.writer = Some(take_writer(&h.db, self.sqlite.priority).await);
            let us = waited.elapsed().as_micros() as u64;
            self.sqlite.stats.lock_wait_us.fetch_add(us, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(c) = h.conn.as_mut() else {
            return Ok(Err(Error::InvalidConnection));
        };
        let started = std::time::Instant::now();
        let result = run(c, &statement, parameters).await;
        let autocommit = c.conn.is_autocommit();
        tracing::trace!(target: "cairn::sql", us = started.elapsed().as_micros() as u64, sql = %statement.chars().take(60).collect::<String>());
        let stats = &self.sqlite.stats;
        stats.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.micros.fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        if h.writer.is_some() && autocommit {
            h.writer = None;
        }
        Ok(result)
    }

    async fn last_insert_rowid(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&conn)?.conn.as_ref().map(|c| c.conn.last_insert_rowid()).unwrap_or(0))
    }

    async fn changes(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&conn)?.conn.as_ref().map(|c| c.conn.changes()).unwrap_or(0))
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

    /// A request that queues while derivation waits for the lock writes
    /// first (ordering, not timing).
    #[tokio::test(flavor = "current_thread")]
    async fn derivation_lets_a_waiting_request_write_first() {
        let dir = std::env::temp_dir().join(format!("cairn-writer-order-{}", std::process::id()));
        let config = super::super::runtime_config::SqliteConfig::default_in(
            &dir,
            super::super::runtime_config::Synchronous::Normal,
        );
        let db = Arc::new(SqliteDb::open("default", &config).await.unwrap());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let holding = take_writer(&db, Priority::Foreground).await;
        let run = |priority: Priority, name: &'static str| {
            let (db, order) = (db.clone(), order.clone());
            tokio::spawn(async move {
                let _guard = take_writer(&db, priority).await;
                order.lock().unwrap().push(name);
            })
        };
        // Derivation asks first, then a request; both wait on the holder.
        let derivation = run(Priority::Background, "derivation");
        let request = run(Priority::Foreground, "request");
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        drop(holding);
        request.await.unwrap();
        derivation.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["request", "derivation"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
