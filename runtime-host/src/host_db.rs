//! The database the host itself reads and writes: bookkeeping rows written
//! off the request path (request telemetry, recall audit: `batch_writer`)
//! and the tenant-tier lookup of the runtime caps (`tenant_limits`). It is
//! the components' own database, so the rows sit beside what they describe:
//! the app's SQLite `default`, or the PostgreSQL server `--database-url`
//! names (docs/postgres.md).
//!
//! Statements are written once, with SQLite's `?` placeholders; PostgreSQL
//! gets them numbered (`cairn_core::sql_placeholders`).

use crate::postgres::PostgresCapability;
use crate::postgres::host::ConnectionHandle;
use crate::spin_bindings::postgres::{DbValue, ParameterValue};
use crate::sqlite::SqliteCapability;
use std::sync::Arc;

#[derive(Clone)]
pub enum HostDb {
    Sqlite(SqliteCapability),
    Postgres { capability: Arc<PostgresCapability>, url: String },
}

impl HostDb {
    /// `sqlite` or `postgres`, as reports name it.
    pub fn backend_name(&self) -> &'static str {
        match self {
            HostDb::Sqlite(_) => "sqlite",
            HostDb::Postgres { .. } => "postgres",
        }
    }

    /// One text column of one row, or none (also when the table is missing
    /// or the database cannot be reached: the caller has a default).
    pub async fn lookup_text(&self, sql: &str, param: &str) -> Option<String> {
        match self {
            HostDb::Sqlite(sqlite) => {
                let db = sqlite.get("default")?;
                let conn = db.acquire().await.ok()?;
                let found = async {
                    let mut rows = conn.conn.query(sql, [param]).await.ok()?;
                    let row = rows.next().await.ok()??;
                    row.get::<String>(0).ok()
                }
                .await;
                db.release(conn);
                found
            }
            HostDb::Postgres { capability, url } => {
                let (pg_sql, _) = cairn_core::sql_placeholders::numbered(sql).ok()?;
                let mut conn = ConnectionHandle::new(capability.connect(url).await.ok()?);
                let set = conn.query(&pg_sql, vec![ParameterValue::Str(param.to_string())]).await.ok()?;
                match set.rows.into_iter().next()?.into_iter().next()? {
                    DbValue::Str(s) => Some(s),
                    _ => None,
                }
            }
        }
    }

    /// Inserts rows in one transaction: for each statement, its rows'
    /// parameters. A statement whose table is not there yet (its component
    /// creates it on first use) is skipped without costing the others
    /// their rows.
    pub async fn insert_rows(&self, groups: &[(&str, Vec<Vec<libsql::Value>>)]) -> anyhow::Result<()> {
        match self {
            HostDb::Sqlite(sqlite) => insert_sqlite(sqlite, groups).await,
            HostDb::Postgres { capability, url } => insert_postgres(capability, url, groups).await,
        }
    }
}

async fn insert_sqlite(sqlite: &SqliteCapability, groups: &[(&str, Vec<Vec<libsql::Value>>)]) -> anyhow::Result<()> {
    let db = sqlite.get("default").ok_or_else(|| anyhow::anyhow!("no default database"))?;
    let conn = db.acquire().await?;
    // Writers queue on the database's writer lock (as requests' write
    // transactions do) instead of meeting in SQLite's busy handler, whose
    // millisecond sleeps would show in the requests' latency.
    let writer = db.writer.clone();
    let _turn = writer.lock().await;
    let result = async {
        let tx = conn.conn.transaction().await?;
        for (sql, rows) in groups {
            // Rows of one kind share a prepared statement.
            let stmt = match tx.prepare(sql).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "bookkeeping rows of one kind not written");
                    continue;
                }
            };
            for params in rows {
                stmt.execute(libsql::params_from_iter(params.clone())).await?;
                stmt.reset();
            }
        }
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    db.release(conn);
    result
}

async fn insert_postgres(
    capability: &PostgresCapability,
    url: &str,
    groups: &[(&str, Vec<Vec<libsql::Value>>)],
) -> anyhow::Result<()> {
    let pg_error = |e: crate::spin_bindings::postgres::Error| anyhow::anyhow!("postgres: {e:?}");
    let mut conn = ConnectionHandle::new(capability.connect(url).await.map_err(pg_error)?);
    conn.execute("BEGIN", vec![]).await.map_err(pg_error)?;
    for (sql, rows) in groups {
        let (pg_sql, _) = cairn_core::sql_placeholders::numbered(sql).map_err(|e| anyhow::anyhow!(e))?;
        // A savepoint per kind: a missing table aborts only its own rows
        // (on PostgreSQL a failed statement aborts the whole transaction).
        conn.execute("SAVEPOINT bookkeeping_kind", vec![]).await.map_err(pg_error)?;
        let mut written = Ok(());
        for params in rows {
            let params = params.iter().map(to_parameter).collect();
            if let Err(e) = conn.execute(&pg_sql, params).await {
                written = Err(e);
                break;
            }
        }
        match written {
            Ok(()) => conn.execute("RELEASE SAVEPOINT bookkeeping_kind", vec![]).await.map_err(pg_error)?,
            Err(e) => {
                tracing::debug!(error = ?e, "bookkeeping rows of one kind not written");
                conn.execute("ROLLBACK TO SAVEPOINT bookkeeping_kind", vec![]).await.map_err(pg_error)?
            }
        };
    }
    conn.execute("COMMIT", vec![]).await.map_err(pg_error)?;
    Ok(())
}

fn to_parameter(v: &libsql::Value) -> ParameterValue {
    match v {
        libsql::Value::Null => ParameterValue::DbNull,
        libsql::Value::Integer(i) => ParameterValue::Int64(*i),
        libsql::Value::Real(x) => ParameterValue::Floating64(*x),
        libsql::Value::Text(s) => ParameterValue::Str(s.clone()),
        libsql::Value::Blob(b) => ParameterValue::Binary(b.clone()),
    }
}
