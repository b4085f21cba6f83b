//! The [`crate::sql::Sql`] seam over a native PostgreSQL client, for
//! native tests of the logic's PostgreSQL port (feature `native-postgres`).
//!
//! It binds and reads values as the host's `spin:postgres` does for a
//! component (`runtime-host/src/postgres/values.rs`), so what passes here
//! passes there: an integer is an `int8` parameter, a real a `float8`, text
//! `text`, a blob `bytea`, NULL fits any type; and the statements go
//! through the same translation ([`crate::pg_seam`]).

use crate::pg_seam::{PgClient, PgSql};
use crate::sql::{Row, SqlValue};
use cairn_core::ApiError;
use postgres::types::{ToSql, Type};
use std::cell::RefCell;

/// The seam over one native connection.
pub type NativePostgres = PgSql<NativeClient>;

pub struct NativeClient(RefCell<postgres::Client>);

/// Connects to `url` (`postgres://user@host:port/db`).
pub fn connect(url: &str) -> Result<NativePostgres, String> {
    let client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
    Ok(PgSql::new(NativeClient(RefCell::new(client))))
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(postgres::types::IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

fn bind(v: &SqlValue) -> Box<dyn ToSql + Sync> {
    match v {
        SqlValue::Null => Box::new(Null),
        SqlValue::Integer(i) => Box::new(*i),
        SqlValue::Real(x) => Box::new(*x),
        SqlValue::Text(s) => Box::new(s.clone()),
        SqlValue::Blob(b) => Box::new(b.clone()),
    }
}

fn read(row: &postgres::Row, i: usize) -> Result<SqlValue, String> {
    fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a postgres::Row, i: usize) -> Result<Option<T>, String> {
        row.try_get::<_, Option<T>>(i).map_err(|e| e.to_string())
    }
    let ty = row.columns()[i].type_().clone();
    let v = match ty {
        Type::BOOL => get::<bool>(row, i)?.map(|b| SqlValue::Integer(b as i64)),
        Type::INT2 => get::<i16>(row, i)?.map(|x| SqlValue::Integer(x.into())),
        Type::INT4 => get::<i32>(row, i)?.map(|x| SqlValue::Integer(x.into())),
        Type::INT8 => get::<i64>(row, i)?.map(SqlValue::Integer),
        Type::FLOAT4 => get::<f32>(row, i)?.map(|x| SqlValue::Real(x.into())),
        Type::FLOAT8 => get::<f64>(row, i)?.map(SqlValue::Real),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get::<String>(row, i)?.map(SqlValue::Text),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map(SqlValue::Blob),
        other => return Err(format!("column {i} has type {other}, which the Sql seam does not read")),
    };
    Ok(v.unwrap_or(SqlValue::Null))
}

/// The driver's message with its cause ("error serializing parameter 0"
/// alone does not say which types clashed).
fn with_cause(e: &postgres::Error) -> String {
    let code = e.code().map(|c| format!(" SQLSTATE {}", c.code())).unwrap_or_default();
    match std::error::Error::source(e) {
        Some(cause) => format!("{e} ({cause}){code}"),
        None => format!("{e}{code}"),
    }
}

impl PgClient for NativeClient {
    fn batch(&self, sql: &str) -> Result<(), ApiError> {
        self.0.borrow_mut().batch_execute(sql).map_err(|e| ApiError::internal(with_cause(&e)))
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
        let bound: Vec<Box<dyn ToSql + Sync>> = params.iter().map(bind).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref()).collect();
        let rows = self.0.borrow_mut().query(sql, &refs).map_err(|e| ApiError::internal(with_cause(&e)))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| read(r, i)).collect::<Result<Vec<_>, _>>().map(Row))
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg_dialect;
    use crate::sql::Sql;

    /// A write transaction holds the writer lock until it ends, so a second
    /// instance's write transaction waits (here: cannot take the lock).
    #[test]
    fn write_transactions_exclude_each_other_across_connections() {
        let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        let a = connect(&pg.url("postgres")).unwrap();
        let b = connect(&pg.url("postgres")).unwrap();
        let lock = format!("SELECT pg_try_advisory_xact_lock({})", pg_dialect::WRITER_LOCK_KEY);
        let try_lock = |db: &NativePostgres| {
            db.exec("BEGIN", &[]).unwrap();
            let got = db.query(&lock, &[]).unwrap()[0].int(0);
            db.exec("ROLLBACK", &[]).unwrap();
            got
        };
        crate::sql::write_txn(&a, |a| {
            assert_eq!(try_lock(&b), 0, "a second writer got the lock while the first held it");
            assert!(a.exec("BEGIN IMMEDIATE", &[]).unwrap_err().message.contains("within a transaction"));
            Ok(())
        })
        .unwrap();
        assert_eq!(try_lock(&b), 1, "the lock outlived the transaction");
    }

    /// A scope's write transaction excludes writers of its scope and every
    /// whole-database writer, and no writer of another scope.
    #[test]
    fn scope_write_transactions_exclude_only_their_scope_and_global_writers() {
        let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        let a = connect(&pg.url("postgres")).unwrap();
        let b = connect(&pg.url("postgres")).unwrap();
        let try_lock = |db: &NativePostgres, sql: String| {
            db.exec("BEGIN", &[]).unwrap();
            let got = db.query(&sql, &[]).unwrap()[0].int(0);
            db.exec("ROLLBACK", &[]).unwrap();
            got
        };
        let scope = |key: &str| format!("SELECT pg_try_advisory_xact_lock({})", pg_dialect::scope_lock_key(key));
        let global = format!("SELECT pg_try_advisory_xact_lock({})", pg_dialect::WRITER_LOCK_KEY);
        let shared = format!("SELECT pg_try_advisory_xact_lock_shared({})", pg_dialect::WRITER_LOCK_KEY);
        crate::sql::scope_write_txn(&a, "tenant:t::scope:one", |_| {
            assert_eq!(try_lock(&b, scope("tenant:t::scope:one")), 0, "a second writer of the scope got its lock");
            assert_eq!(try_lock(&b, global.clone()), 0, "a whole-database writer ran beside a scope's");
            assert_eq!(try_lock(&b, scope("tenant:t::scope:two")), 1, "another scope's writer was held up");
            assert_eq!(try_lock(&b, shared.clone()), 1, "another scope's writer could not share the writer lock");
            Ok(())
        })
        .unwrap();
        // And a whole-database writer keeps every scope's writer out.
        crate::sql::write_txn(&a, |_| {
            assert_eq!(try_lock(&b, shared.clone()), 0, "a scope's writer ran beside a whole-database writer");
            Ok(())
        })
        .unwrap();
        assert_eq!(try_lock(&b, global), 1, "the locks outlived their transactions");
    }

    #[test]
    fn values_round_trip_with_sqlite_placeholders() {
        let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        let db = connect(&pg.url("postgres")).unwrap();
        db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, b BYTEA, note TEXT)", &[]).unwrap();
        db.exec(
            "INSERT INTO t (id, n, x, b, note) VALUES (?, ?, ?, ?, ?)",
            &["a".into(), 42i64.into(), 0.5f64.into(), vec![0u8, 255].into(), SqlValue::Null],
        )
        .unwrap();
        let rows = db
            .query("SELECT id, n, x, b, note, n > ?1 AND n < ?1 + 100 FROM t WHERE id = ?2", &[1i64.into(), "a".into()])
            .unwrap();
        let r = &rows[0];
        assert_eq!((r.string(0), r.int(1), r.real(2), r.blob(3)), ("a".to_string(), 42, 0.5, Some(&[0u8, 255][..])));
        assert!(r.is_null(4));
        assert_eq!(r.int(5), 1, "a boolean reads as 0/1, as in SQLite");
        // Where PostgreSQL alone would infer `integer` (and the driver would
        // refuse an int8), the value's type wins, as in SQLite.
        assert_eq!(
            db.query("SELECT n FROM t WHERE n = ? + 1 LIMIT 2 * ?", &[41i64.into(), 1i64.into()]).unwrap().len(),
            1
        );
        assert_eq!(db.query("SELECT ?", &[7i64.into()]).unwrap()[0].int(0), 7);
        let e = db.query("SELECT ?", &[]).unwrap_err();
        assert!(e.message.contains("takes 1"), "{}", e.message);
    }
}
