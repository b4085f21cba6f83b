//! Cairn's derivation logic: the outbox worker (the component in
//! `components/derive` is its wasm adapter).
//!
//! Derived data — embeddings, topics, (with the recall issue) the vector
//! index — is computed from the jobs the write path enqueues in the same
//! transaction as its commit. Failure here degrades recall, never a write.
//!
//! - [`tick`]: one pass of the worker (claim → run → record), driven by
//!   Spin's cron trigger, `POST /v1/admin/derive/tick`, the host's scheduler
//!   or `cairn job derive --once`;
//! - [`outbox`]: claims (fair across scopes, fenced), completion, backoff,
//!   dead-letter; [`outbox_admin`]: backlog listing and replay;
//! - [`embed_job`], [`topic_cluster`]: the job kinds; [`rebuild`]: drop and
//!   recompute a scope's derived data; [`replay_drill`]: the dead-letter
//!   runbook drilled end to end in a scope of its own, as evidence;
//! - [`embedder`]: the provider seam (`fermyon:spin/llm` in the component);
//!   [`vectors`]: vector arithmetic; [`vector_index`]: the IVF index's
//!   upkeep; [`retention`]: erasing memory older than the tier keeps it;
//!   [`settings`]: configuration; [`http_routes`]: the component's HTTP routes.

pub mod derived_rows;
pub mod embed_job;
pub mod embedder;
pub mod http_routes;
pub mod outbox;
pub mod outbox_admin;
pub mod rebuild;
pub mod replay_drill;
pub mod retention;
pub mod rollup;
pub mod settings;
pub mod tick;
pub mod topic_cluster;
pub mod vector_index;
pub mod vectors;

use cairn_core::ApiError;
use cairn_spin::sql::Sql;

/// Brings the schemas derivation works on (the kernel's and the control
/// plane's) up to date; one indexed read each when they are.
pub fn ensure_schemas(db: &dyn Sql, now: &str) -> Result<(), ApiError> {
    cairn_memory::schema::ensure(db, now)?;
    cairn_control_plane::schema::ensure(db, now)
}

/// Brings a store a tier places tenants in up to date: the kernel's schema
/// only (the control plane is the home store's; `cairn_core::placement`).
pub fn ensure_apart_schema(db: &dyn Sql, now: &str) -> Result<(), ApiError> {
    cairn_memory::schema::ensure(db, now)
}

/// The kernel schema version this build works on.
pub fn schema_version() -> i64 {
    cairn_memory::schema::current_version()
}

/// A request body: `{}` when empty, else JSON (the kernel's rules).
pub fn parse_body(body: &str) -> Result<serde_json::Value, ApiError> {
    if body.trim().is_empty() {
        Ok(serde_json::Value::Object(Default::default()))
    } else {
        cairn_memory::parse_body(body)
    }
}

/// An HTTP request body as received: [`parse_body`] of its text, and `400
/// invalid_json` when the bytes are not UTF-8 (they used to count as an
/// empty body, so a tick or a check ran with its defaults on garbage).
pub fn parse_body_bytes(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("invalid_json", "request body is not UTF-8"))?;
    parse_body(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_utf8_are_refused() {
        let e = parse_body_bytes(b"\xff\xfe{").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_json"));
        assert_eq!(parse_body_bytes(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body_bytes(br#"{"max_jobs": 1}"#).unwrap()["max_jobs"], 1);
    }
}
