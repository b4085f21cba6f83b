//! Pure logic shared by Cairn's components and host: no I/O, no clocks
//! (callers pass time in), tested natively.
//!
//! - [`canonical_json`]: the canonical JSON form every hash is taken over.
//! - [`digest`]: sha256 helpers.
//! - [`stable_id`]: deterministic UUIDs (`stableUuid`) for nodes, edges, commits.
//! - [`text`]: text normalization and limits.
//! - [`tenant_scope`]: tenant/scope validation and the internal scope key.
//! - [`admin_token`]: the `X-Admin-Token` guard.
//! - [`auth`]: memory-route auth modes, HS256 JWTs, binding a request to its principal.
//! - [`api_error`]: the error envelope.
//! - [`request_reader`]: typed reading of JSON requests that collects every issue.
//! - [`time_fmt`]: RFC 3339 timestamps from Unix milliseconds.
//! - [`encoding`]: `encodeURIComponent`, query strings, base64url.
//! - [`path_template`]: route templates (`/x/{id}`) and matching them.
//! - [`retry`]: the exponential backoff of every retrying queue.

pub mod admin_token;
pub mod api_error;
pub mod auth;
pub mod canonical_json;
pub mod digest;
pub mod encoding;
pub mod json_path;
pub mod path_template;
pub mod placement;
pub mod recall_audit;
pub mod request_reader;
pub mod retry;
pub mod sql_placeholders;
pub mod stable_id;
pub mod tenant_scope;
pub mod text;
pub mod time_fmt;

pub use api_error::ApiError;

/// A JSON document as response text. Goes straight to a byte buffer
/// (`Value::to_string` runs through `fmt`, measurably slower on large
/// recall and rules responses).
pub fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).expect("a serde_json::Value always serializes")
}
