//! `spin:postgres/postgres@4.0.0` host implementation.

use super::values;
use crate::spin_bindings::postgres::{self, Error, ParameterValue, RowSet};
use crate::state::RequestState;
use wasmtime::component::Resource;

/// An open connection held by a guest.
pub struct ConnectionHandle {
    client: Option<deadpool_postgres::Object>,
    /// A `BEGIN` was sent and no `COMMIT`/`ROLLBACK` since.
    in_transaction: bool,
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && self.in_transaction
        {
            // The pool would hand the open transaction to the next user:
            // end it first, off the guest's path (or, with no runtime to
            // run that on, close the connection instead of pooling it).
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                let _ = deadpool_postgres::Object::take(client);
                return;
            };
            rt.spawn(async move {
                if let Err(e) = client.batch_execute("ROLLBACK").await {
                    tracing::warn!(error = %e, "rolling back a dropped PostgreSQL connection failed");
                    // Not returned to the pool in an unknown state.
                    let _ = deadpool_postgres::Object::take(client);
                }
            });
        }
    }
}

/// How a statement changes the transaction state (by its first word).
fn transaction_effect(sql: &str) -> Option<bool> {
    let mut words = sql.split_whitespace().map(|w| w.trim_end_matches(';').to_ascii_uppercase());
    match (words.next()?.as_str(), words.next().as_deref()) {
        ("ROLLBACK", Some("TO")) => None,
        ("BEGIN" | "START", _) => Some(true),
        ("COMMIT" | "END" | "ROLLBACK" | "ABORT", _) => Some(false),
        _ => None,
    }
}

impl ConnectionHandle {
    pub fn new(client: deadpool_postgres::Object) -> ConnectionHandle {
        ConnectionHandle { client: Some(client), in_transaction: false }
    }

    fn client(&self) -> Result<&deadpool_postgres::Object, Error> {
        self.client.as_ref().ok_or_else(|| Error::Other("the connection is closed".into()))
    }

    fn note(&mut self, sql: &str) {
        if let Some(open) = transaction_effect(sql) {
            self.in_transaction = open;
        }
    }

    pub async fn query(&mut self, sql: &str, params: Vec<ParameterValue>) -> Result<RowSet, Error> {
        let params = values::params(params)?;
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await.map_err(query_failed)?;
        let rows = client.query(&stmt, &values::refs(&params)).await.map_err(query_failed)?;
        self.note(sql);
        let columns = values::columns(stmt.columns());
        let rows = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| values::value(r, i)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RowSet { columns, rows })
    }

    pub async fn execute(&mut self, sql: &str, params: Vec<ParameterValue>) -> Result<u64, Error> {
        let client = self.client()?;
        let n = if params.is_empty() && transaction_effect(sql).is_some() {
            // Transaction control cannot be prepared with parameters; send it as is.
            client.batch_execute(sql).await.map(|()| 0).map_err(query_failed)?
        } else {
            let params = values::params(params)?;
            let stmt = client.prepare_cached(sql).await.map_err(query_failed)?;
            client.execute(&stmt, &values::refs(&params)).await.map_err(query_failed)?
        };
        self.note(sql);
        Ok(n)
    }
}

/// A driver error in the interface's terms, with PostgreSQL's structured
/// fields when the server sent them.
fn query_failed(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::QueryFailed(postgres::QueryError::DbError(postgres::DbError {
            as_text: e.to_string(),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras: Vec::new(),
        })),
        None if e.is_closed() => Error::ConnectionFailed(e.to_string()),
        None => Error::QueryFailed(postgres::QueryError::Text(e.to_string())),
    }
}

impl postgres::Host for RequestState {}

impl postgres::HostConnection for RequestState {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        if let Err(e) = self.postgres.check(&address) {
            return Ok(Err(e));
        }
        let started = std::time::Instant::now();
        let connected = self.postgres.capability.connect(&address).await;
        self.postgres.spent(started);
        match connected {
            Ok(client) => Ok(Ok(self.table.push(ConnectionHandle::new(client))?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn query(
        &mut self,
        conn: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let started = std::time::Instant::now();
        let out = self.table.get_mut(&conn)?.query(&statement, params).await;
        self.postgres.spent(started);
        Ok(out)
    }

    async fn execute(
        &mut self,
        conn: Resource<ConnectionHandle>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let started = std::time::Instant::now();
        let out = self.table.get_mut(&conn)?.execute(&statement, params).await;
        self.postgres.spent(started);
        Ok(out)
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
    fn transaction_statements_are_recognised_by_their_first_word() {
        assert_eq!(transaction_effect("BEGIN"), Some(true));
        assert_eq!(transaction_effect("  begin isolation level serializable"), Some(true));
        assert_eq!(transaction_effect("START TRANSACTION"), Some(true));
        assert_eq!(transaction_effect("commit"), Some(false));
        assert_eq!(transaction_effect("ROLLBACK"), Some(false));
        assert_eq!(transaction_effect("SELECT 1"), None);
        assert_eq!(transaction_effect("BEGINNING"), None);
        assert_eq!(transaction_effect("ROLLBACK TO SAVEPOINT s1"), None, "the transaction stays open");
    }
}
