//! What a copy must reproduce, computed the same way on either side: per
//! table, the tenant's row count and a sha256 over its rows (copied
//! columns, in the table's order); per scope, the chain verified and its
//! head; the audit events' content in order. Two stores hold the same
//! tenant when their digests are equal.

use crate::tables::{AUDIT_EVENTS, Table};
use crate::wire;
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, read_txn};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Rows read per query while hashing.
const CHUNK: i64 = 1000;

/// `{rows, sha256}` of `table`'s rows of `tenant_id`, in one snapshot.
pub fn table(db: &dyn Sql, table: &Table, tenant_id: &str, default_tenant: &str) -> Result<Value, ApiError> {
    read_txn(db, |db| {
        let mut hasher = Sha256::new();
        let mut rows = 0i64;
        let mut cursor: Option<Vec<SqlValue>> = None;
        loop {
            let page = crate::page::export(db, table, tenant_id, default_tenant, cursor.as_deref(), CHUNK)?;
            for r in page["rows"].as_array().into_iter().flatten() {
                // One line of canonical JSON per row: the same bytes for the
                // same values on either backend.
                hasher.update(cairn_core::canonical_json::to_string(r).as_bytes());
                hasher.update(b"\n");
                rows += 1;
            }
            match page["next"].as_array() {
                Some(next) => cursor = Some(next.iter().map(wire::from_json).collect::<Result<_, _>>()?),
                None => break,
            }
        }
        Ok(json!({"rows": rows, "sha256": hex::encode(hasher.finalize())}))
    })
}

/// Every scope of the tenant with its chain verified:
/// `[{scope, checked, head, verified, first_broken}]`, in key order.
pub fn chains(db: &dyn Sql, tenant_id: &str, default_tenant: &str) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for scope in cairn_memory::erasure::tenant_scopes(db, tenant_id, default_tenant)? {
        let rep = cairn_memory::commit_log::verify_scope(db, &scope)?;
        out.push(json!({
            "scope": scope,
            "checked": rep.checked,
            "head": rep.head,
            "verified": rep.first_broken.is_none(),
            "first_broken": rep.first_broken.map(|b| json!({"commit_id": b.commit_id, "reason": b.reason})),
        }));
    }
    Ok(Value::Array(out))
}

/// `{events, sha256}` over the content of the tenant's audit events in
/// chain order (their links differ between stores: a copy re-chains them).
pub fn audit_events(db: &dyn Sql, tenant_id: &str) -> Result<Value, ApiError> {
    read_txn(db, |db| {
        let mut hasher = Sha256::new();
        let mut events = 0i64;
        let mut after = 0i64;
        loop {
            let (rows, last) = crate::audit_events::page(db, tenant_id, after, CHUNK)?;
            if rows.is_empty() {
                break;
            }
            for e in &rows {
                hasher.update(cairn_core::canonical_json::to_string(e).as_bytes());
                hasher.update(b"\n");
                events += 1;
            }
            after = last;
        }
        Ok(json!({"table": AUDIT_EVENTS, "events": events, "sha256": hex::encode(hasher.finalize())}))
    })
}
