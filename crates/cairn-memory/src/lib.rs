//! Cairn's memory kernel logic: everything the kernel component
//! (`components/kernel`, which exports `cairn:memory/memory`) and the derive
//! component do with memory, over the [`cairn_spin::sql::Sql`] seam, tested
//! natively. A plain library (no wasm exports), so depending on it never
//! changes another component's exports.
//!
//! - [`write_request`] / [`write_path`]: the audit-first write;
//! - [`commit_chain`] / [`commit_log`]: hashing, listing and verifying the chain;
//! - [`stored_rows`]: rows and their content hashes;
//! - [`erasure`]: erasing a scope's content behind tombstones (tenant teardown);
//! - [`usage`]: bytes stored per scope (the tier's storage cap);
//! - [`find`], [`sessions`], [`packs`], [`node_dto`]: the read and exchange routes;
//! - [`recall`]: recall and recall_text (seeds through the vector index, graph
//!   expansion, spreading activation, context);
//! - [`rule_defs`]: rule definitions (written with their rule nodes);
//! - [`schema`]: migrations; [`settings`]: configuration.

pub mod commit_chain;
pub mod commit_log;
pub mod erasure;
pub mod find;
pub mod node_dto;
pub mod packs;
pub mod recall;
pub mod rule_defs;
pub mod schema;
pub mod schema_pg;
pub mod sessions;
pub mod settings;
pub mod stored_rows;
pub mod usage;
pub mod write_path;
pub mod write_request;

use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use serde_json::Value;

/// The kernel's operations, as the component exports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Find,
    CreateSession,
    WriteEvent,
    ExportPack,
    ImportPack,
    VerifyCommits,
}

/// Parses a JSON request body (`400 invalid_json` when it is not JSON).
pub fn parse_body(body: &str) -> Result<Value, ApiError> {
    serde_json::from_str(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))
}

/// Runs a JSON-bodied operation; migrations are brought up to date first.
pub fn run(
    db: &dyn Sql,
    settings: &settings::Settings,
    op: Op,
    body: &str,
    now_ms: i64,
    random_id: impl FnOnce() -> String,
) -> Result<Value, ApiError> {
    let body = parse_body(body)?;
    schema::ensure(db, &cairn_core::time_fmt::rfc3339_millis(now_ms))?;
    match op {
        Op::Write => {
            let spec = write_request::parse(&body, settings)?;
            write_path::write(db, settings, &spec, now_ms)
        }
        Op::Find => find::find(db, settings, &body),
        Op::CreateSession => sessions::create_session(db, settings, &body, now_ms),
        Op::WriteEvent => sessions::write_event(db, settings, &body, now_ms, random_id),
        Op::ExportPack => packs::export(db, settings, &body, now_ms),
        Op::ImportPack => packs::import(db, settings, &body, now_ms),
        Op::VerifyCommits => commit_log::verify(db, settings, &body),
    }
}
