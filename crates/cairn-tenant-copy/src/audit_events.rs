//! The tenant's audit events. The audit log is one hash chain per store
//! (`cairn_control_plane::audit`), so a copy cannot move events with their
//! links: it re-appends each event's content (same id, actor, action,
//! resource, details and time) to the destination's chain, which then
//! verifies as a whole; [`crate::digest::audit_events`] compares the
//! content on both sides. Appending is idempotent by `event_id`, so a copy
//! re-run after a failure continues where it stopped.

use cairn_control_plane::audit::{AuditEvent, record};
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, write_txn};
use serde_json::{Value, json};

/// The tenant's events after chain position `after`, in chain order, as
/// content (`{event_id, actor, action, resource_type, resource_id,
/// tenant_id, request_id, details, created_at}`), and the last position read.
pub fn page(db: &dyn Sql, tenant_id: &str, after: i64, limit: i64) -> Result<(Vec<Value>, i64), ApiError> {
    let rows = db.query(
        "SELECT seq, event_id, actor, action, resource_type, resource_id, tenant_id, request_id, details, created_at \
         FROM control_audit_events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        &[tenant_id.into(), SqlValue::Integer(after), SqlValue::Integer(limit)],
    )?;
    let last = rows.last().map_or(after, |r| r.int(0));
    let events = rows
        .iter()
        .map(|r| {
            let details: Value = serde_json::from_str(r.text(8).unwrap_or("{}")).unwrap_or_else(|_| json!({}));
            json!({
                "event_id": r.string(1), "actor": r.string(2), "action": r.string(3), "resource_type": r.string(4),
                "resource_id": r.string(5), "tenant_id": r.opt_string(6), "request_id": r.opt_string(7),
                "details": details, "created_at": r.string(9),
            })
        })
        .collect();
    Ok((events, last))
}

/// Appends `events` (from [`page`]) to `db`'s chain in one write
/// transaction, skipping any whose `event_id` is there already. Returns
/// `(appended, skipped)`.
pub fn append(db: &dyn Sql, tenant_id: &str, events: &[Value]) -> Result<(i64, i64), ApiError> {
    write_txn(db, |db| {
        let (mut appended, mut skipped) = (0, 0);
        for e in events {
            let s = |k: &str| e[k].as_str().unwrap_or_default();
            if e["tenant_id"].as_str() != Some(tenant_id) || s("event_id").is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_page",
                    format!("not an audit event of tenant {tenant_id:?}: {e}"),
                ));
            }
            if db.query_one("SELECT 1 FROM control_audit_events WHERE event_id = ?", &[s("event_id").into()])?.is_some()
            {
                skipped += 1;
                continue;
            }
            record(
                db,
                &AuditEvent {
                    event_id: s("event_id"),
                    actor: s("actor"),
                    action: s("action"),
                    resource_type: s("resource_type"),
                    resource_id: s("resource_id"),
                    tenant_id: Some(tenant_id),
                    request_id: e["request_id"].as_str(),
                    details: &e["details"],
                    created_at: s("created_at"),
                },
            )?;
            appended += 1;
        }
        Ok((appended, skipped))
    })
}
