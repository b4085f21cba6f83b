//! [`crate::sql::Sql`] over Spin's `spin:postgres/postgres@4.0.0`
//! interface: the statements go through [`crate::pg_seam`], the values map
//! onto the interface's as [`crate::native_postgres`] binds them natively.

use crate::bindings::spin::postgres::postgres::{Connection, DbValue, Error, ParameterValue, QueryError};
use crate::pg_seam::{PgClient, PgSql};
use crate::sql::{Row, SqlValue};
use cairn_core::ApiError;

/// The seam over one `spin:postgres` connection.
pub type SpinPostgres = PgSql<SpinPgClient>;

pub struct SpinPgClient(Connection);

/// Opens `address` (a connection URL the component's
/// `allowed_outbound_hosts` grants).
pub fn open(address: &str) -> Result<SpinPostgres, ApiError> {
    Connection::open(address).map(|c| PgSql::new(SpinPgClient(c))).map_err(|e| map_error(&e, "open"))
}

fn map_error(e: &Error, what: &str) -> ApiError {
    match e {
        Error::ConnectionFailed(m) => {
            ApiError::new(503, "database_unavailable", format!("postgres {what}: connection failed: {m}"))
        }
        Error::QueryFailed(QueryError::DbError(d)) => {
            let detail = d.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            ApiError::internal(format!("postgres {what}: {}: {}{detail} SQLSTATE {}", d.severity, d.message, d.code))
        }
        Error::QueryFailed(QueryError::Text(m)) => ApiError::internal(format!("postgres {what}: {m}")),
        Error::BadParameter(m) => ApiError::internal(format!("postgres {what}: bad parameter: {m}")),
        Error::ValueConversionFailed(m) => ApiError::internal(format!("postgres {what}: value conversion: {m}")),
        Error::Other(m) => ApiError::internal(format!("postgres {what}: {m}")),
    }
}

fn to_wit(v: &SqlValue) -> ParameterValue {
    match v {
        SqlValue::Null => ParameterValue::DbNull,
        SqlValue::Integer(i) => ParameterValue::Int64(*i),
        SqlValue::Real(x) => ParameterValue::Floating64(*x),
        SqlValue::Text(s) => ParameterValue::Str(s.clone()),
        SqlValue::Blob(b) => ParameterValue::Binary(b.clone()),
    }
}

fn from_wit(v: DbValue, column: usize) -> Result<SqlValue, ApiError> {
    Ok(match v {
        DbValue::DbNull => SqlValue::Null,
        DbValue::Boolean(b) => SqlValue::Integer(b as i64),
        DbValue::Int8(i) => SqlValue::Integer(i.into()),
        DbValue::Int16(i) => SqlValue::Integer(i.into()),
        DbValue::Int32(i) => SqlValue::Integer(i.into()),
        DbValue::Int64(i) => SqlValue::Integer(i),
        DbValue::Floating32(x) => SqlValue::Real(x.into()),
        DbValue::Floating64(x) => SqlValue::Real(x),
        DbValue::Str(s) => SqlValue::Text(s),
        DbValue::Binary(b) => SqlValue::Blob(b),
        DbValue::Jsonb(b) => SqlValue::Text(String::from_utf8_lossy(&b).into_owned()),
        _ => {
            return Err(ApiError::internal(format!("postgres: column {column} has a type the Sql seam does not read")));
        }
    })
}

impl PgClient for SpinPgClient {
    fn batch(&self, sql: &str) -> Result<(), ApiError> {
        self.0.execute(sql, &[]).map(|_| ()).map_err(|e| map_error(&e, "execute"))
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, ApiError> {
        let params: Vec<ParameterValue> = params.iter().map(to_wit).collect();
        let set = self.0.query(sql, &params).map_err(|e| map_error(&e, "query"))?;
        set.rows
            .into_iter()
            .map(|r| r.into_iter().enumerate().map(|(i, v)| from_wit(v, i)).collect::<Result<Vec<_>, _>>().map(Row))
            .collect()
    }
}
