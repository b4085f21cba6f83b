//! The exports: every call is refused the way Spin refuses it.

wit_bindgen::generate!({
    world: "cairn:deny-adapter/deny-all",
    path: "../../wit",
});

use exports::fermyon::spin::{llm, variables};
use exports::spin::postgres::postgres;
use exports::spin::sqlite::sqlite;
use exports::wasi::cli::environment;

struct DenyAll;

/// A connection can never be opened, so none of its methods can be reached.
struct NoConnection;

impl sqlite::Guest for DenyAll {
    type Connection = NoConnection;
}

impl sqlite::GuestConnection for NoConnection {
    fn open(_database: String) -> Result<sqlite::Connection, sqlite::Error> {
        Err(sqlite::Error::AccessDenied)
    }
    fn execute(
        &self,
        _statement: String,
        _parameters: Vec<sqlite::Value>,
    ) -> Result<sqlite::QueryResult, sqlite::Error> {
        Err(sqlite::Error::InvalidConnection)
    }
    fn last_insert_rowid(&self) -> i64 {
        0
    }
    fn changes(&self) -> u64 {
        0
    }
}

impl postgres::Guest for DenyAll {
    type Connection = NoConnection;
}

/// Spin's answer for an address the component may not reach.
impl postgres::GuestConnection for NoConnection {
    fn open(address: String) -> Result<postgres::Connection, postgres::Error> {
        let _ = address;
        Err(postgres::Error::ConnectionFailed(
            "not granted: the dependency does not inherit allowed_outbound_hosts".into(),
        ))
    }
    fn query(
        &self,
        _statement: String,
        _params: Vec<postgres::ParameterValue>,
    ) -> Result<postgres::RowSet, postgres::Error> {
        Err(postgres::Error::ConnectionFailed("no connection".into()))
    }
    fn execute(&self, _statement: String, _params: Vec<postgres::ParameterValue>) -> Result<u64, postgres::Error> {
        Err(postgres::Error::ConnectionFailed("no connection".into()))
    }
}

impl variables::Guest for DenyAll {
    fn get(name: String) -> Result<String, variables::Error> {
        Err(variables::Error::Undefined(name))
    }
}

impl llm::Guest for DenyAll {
    fn infer(
        _model: String,
        _prompt: String,
        _params: Option<llm::InferencingParams>,
    ) -> Result<llm::InferencingResult, llm::Error> {
        Err(llm::Error::ModelNotSupported)
    }
    fn generate_embeddings(_model: String, _text: Vec<String>) -> Result<llm::EmbeddingsResult, llm::Error> {
        Err(llm::Error::ModelNotSupported)
    }
}

impl environment::Guest for DenyAll {
    fn get_environment() -> Vec<(String, String)> {
        Vec::new()
    }
    fn get_arguments() -> Vec<String> {
        Vec::new()
    }
    fn initial_cwd() -> Option<String> {
        None
    }
}

export!(DenyAll);
