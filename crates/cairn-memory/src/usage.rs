//! What each scope stores (`memory_scope_usage`), kept by the write path in
//! its transaction: a node counts its texts, slots and vector plus a fixed
//! row overhead, an edge the overhead. The control plane sums a tenant's
//! scopes against its tier's `resource_caps.storage_mb`; an erasure resets
//! the scope to zero.

use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue};

/// Bytes counted per row beyond its content (ids, numbers, index entries).
pub const ROW_OVERHEAD: usize = 256;

/// Adds `bytes` (negative: removes) to the scope's usage, never below
/// zero (inside the caller's transaction).
pub fn add(db: &dyn Sql, scope_key: &str, bytes: i64) -> Result<(), ApiError> {
    if bytes == 0 {
        return Ok(());
    }
    db.exec(
        // CASE rather than two-argument max(), which PostgreSQL spells
        // greatest(); the qualified column, which PostgreSQL needs beside
        // `excluded`.
        "INSERT INTO memory_scope_usage (scope, bytes) VALUES (?1, CASE WHEN ?2 > 0 THEN ?2 ELSE 0 END) \
         ON CONFLICT (scope) DO UPDATE SET bytes = CASE WHEN memory_scope_usage.bytes + ?2 > 0 \
         THEN memory_scope_usage.bytes + ?2 ELSE 0 END",
        &[scope_key.into(), SqlValue::Integer(bytes)],
    )
}

/// Forgets a scope's usage (its content was erased).
pub fn reset(db: &dyn Sql, scope_key: &str) -> Result<(), ApiError> {
    db.exec("DELETE FROM memory_scope_usage WHERE scope = ?", &[scope_key.into()])
}

/// The bytes a tenant's scopes store (`default_tenant`'s are the
/// un-prefixed ones): exactly its keys, case-sensitive.
pub fn tenant_bytes(db: &dyn Sql, tenant_id: &str, default_tenant: &str) -> Result<i64, ApiError> {
    let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant_id, default_tenant);
    let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
    let row = db.query_one(
        &format!("SELECT CAST(coalesce(sum(bytes), 0) AS BIGINT) FROM memory_scope_usage WHERE {cond}"),
        &params,
    )?;
    Ok(row.map(|r| r.int(0)).unwrap_or(0))
}
