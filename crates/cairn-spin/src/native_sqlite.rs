//! The [`Sql`] seam over a native SQLite (rusqlite, bundled, with FTS5), so
//! the logic crates run their real SQL in native tests.

use crate::sql::{Row, Sql, SqlValue};
use cairn_core::ApiError;

pub struct NativeSqlite(pub rusqlite::Connection);

impl NativeSqlite {
    pub fn in_memory() -> NativeSqlite {
        NativeSqlite(rusqlite::Connection::open_in_memory().expect("in-memory SQLite"))
    }
}

fn to_sql(p: &SqlValue) -> rusqlite::types::Value {
    match p {
        SqlValue::Null => rusqlite::types::Value::Null,
        SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
        SqlValue::Real(r) => rusqlite::types::Value::Real(*r),
        SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
        SqlValue::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn from_sql(v: rusqlite::types::ValueRef) -> SqlValue {
    match v {
        rusqlite::types::ValueRef::Null => SqlValue::Null,
        rusqlite::types::ValueRef::Integer(i) => SqlValue::Integer(i),
        rusqlite::types::ValueRef::Real(f) => SqlValue::Real(f),
        rusqlite::types::ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        rusqlite::types::ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

impl Sql for NativeSqlite {
    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
        let fail = |e: rusqlite::Error| ApiError::internal(format!("{e}: {sql}"));
        let mut st = self.0.prepare(sql).map_err(fail)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter().map(to_sql))).map_err(fail)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(fail)? {
            out.push(Row((0..n).map(|i| from_sql(r.get_ref(i).expect("column in range"))).collect()));
        }
        Ok(out)
    }
}
