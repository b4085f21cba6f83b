//! Component-side access to the Spin host interfaces every Cairn component
//! uses, so each component's own code stays logic plus a thin adapter:
//!
//! - [`sql`]: the storage seam ([`sql::Sql`]) and transaction helpers;
//! - [`migrations`]: versioned, idempotent schema migrations run in-app;
//! - [`store`]: which database a component opens (SQLite, or PostgreSQL
//!   when `database_url` is set);
//! - `spin_sqlite` (wasm only): [`sql::Sql`] over `spin:sqlite/sqlite@3.0.0`;
//! - `spin_postgres` (wasm only): the same over `spin:postgres/postgres@4.0.0`
//!   ([`pg_seam`] translates; [`pg_dialect`] says how);
//! - `variables` (wasm only): `fermyon:spin/variables@2.0.0`;
//! - `embeddings` (wasm only): `fermyon:spin/llm@2.0.0` `generate-embeddings`;
//! - `wasi_env` (wasm only): the clock and random ids.

pub mod json_sql;
pub mod migrations;
#[cfg(feature = "native-postgres")]
pub mod native_postgres;
#[cfg(feature = "native-sqlite")]
pub mod native_sqlite;
#[cfg(feature = "parity-testing")]
pub mod parity;
pub mod pg_dialect;
pub mod pg_seam;
pub mod sql;
pub mod store;

#[cfg(target_arch = "wasm32")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "cairn:common/spin-host",
        path: "../../wit",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
pub mod embeddings;
#[cfg(target_arch = "wasm32")]
pub mod spin_postgres;
#[cfg(target_arch = "wasm32")]
pub mod spin_sqlite;
#[cfg(target_arch = "wasm32")]
pub mod variables;
#[cfg(target_arch = "wasm32")]
pub mod wasi_env;
