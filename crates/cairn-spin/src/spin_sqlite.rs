//! [`Sql`] over Spin's `spin:sqlite/sqlite@3.0.0` interface.

use crate::bindings::spin::sqlite::sqlite::{Connection, Error, Value};
use crate::sql::{Row, Sql, SqlValue};
use cairn_core::ApiError;

/// An open connection to a named database ("default" unless configured).
pub struct SpinSqlite {
    conn: Connection,
}

impl SpinSqlite {
    pub fn open(database: &str) -> Result<Self, ApiError> {
        Connection::open(database).map(|conn| SpinSqlite { conn }).map_err(|e| map_error(&e, "open"))
    }
}

fn map_error(e: &Error, what: &str) -> ApiError {
    let (status, code, msg) = match e {
        Error::NoSuchDatabase => (503, "database_unavailable", "no such database".to_string()),
        Error::AccessDenied => (503, "database_unavailable", "access to the database denied".to_string()),
        Error::InvalidConnection => (503, "database_unavailable", "invalid database connection".to_string()),
        Error::DatabaseFull => (507, "database_full", "the database is full".to_string()),
        Error::Io(m) => (500, "internal_error", m.clone()),
    };
    ApiError::new(status, code, format!("sqlite {what}: {msg}"))
}

fn to_wit(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(x) => Value::Real(*x),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_wit(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(x) => SqlValue::Real(x),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

impl Sql for SpinSqlite {
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
        let params: Vec<Value> = params.iter().map(to_wit).collect();
        let result = self.conn.execute(sql, &params).map_err(|e| map_error(&e, "execute"))?;
        Ok(result.rows.into_iter().map(|r| Row(r.values.into_iter().map(from_wit).collect())).collect())
    }
}
