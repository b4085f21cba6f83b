//! The audit log: every operator mutation is an event `{event_id, actor,
//! action, resource_type, resource_id, tenant_id, request_id, details,
//! created_at}` (reference §7.4), appended in the caller's transaction.
//!
//! Events form one hash chain: `event_hash = sha256(canonical({prev_hash,
//! event_id, actor, action, resource_type, resource_id, tenant_id,
//! request_id, details, created_at}))`, `prev_hash` being the previous
//! event's hash ("" for the first), so rewriting or dropping an event is
//! detectable.

use cairn_core::ApiError;
use cairn_core::digest::sha256_canonical;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// An event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub event_id: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub tenant_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: &'a Value,
    pub created_at: &'a str,
}

impl AuditEvent<'_> {
    /// The hashed form, chained to `prev_hash`.
    pub fn hash(&self, prev_hash: &str) -> String {
        sha256_canonical(&json!({
            "prev_hash": prev_hash,
            "event_id": self.event_id,
            "actor": self.actor,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "details": self.details,
            "created_at": self.created_at,
        }))
    }
}

/// Appends `e` to the audit chain (call inside a write transaction).
/// Returns the event's hash.
pub fn record(db: &dyn Sql, e: &AuditEvent) -> Result<String, ApiError> {
    crate::schema::ensure(db, e.created_at)?;
    let prev = db
        .query_one("SELECT event_hash FROM control_audit_events ORDER BY seq DESC LIMIT 1", &[])?
        .map(|r| r.string(0))
        .unwrap_or_default();
    let hash = e.hash(&prev);
    db.exec(
        "INSERT INTO control_audit_events (event_id, actor, action, resource_type, resource_id, tenant_id, request_id, \
         details, created_at, prev_hash, event_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            e.event_id.into(),
            e.actor.into(),
            e.action.into(),
            e.resource_type.into(),
            e.resource_id.into(),
            e.tenant_id.into(),
            e.request_id.into(),
            cairn_core::canonical_json::to_string(e.details).into(),
            e.created_at.into(),
            prev.into(),
            hash.clone().into(),
        ],
    )?;
    Ok(hash)
}

const EVENT_COLUMNS: &str = "seq, event_id, actor, action, resource_type, resource_id, tenant_id, request_id, details, created_at, prev_hash, event_hash";

fn event_of(r: &cairn_spin::sql::Row) -> (i64, Value, String, String) {
    let details: Value = serde_json::from_str(r.text(8).unwrap_or("{}")).unwrap_or_else(|_| json!({}));
    let v = json!({
        "event_id": r.string(1), "actor": r.string(2), "action": r.string(3), "resource_type": r.string(4),
        "resource_id": r.string(5), "tenant_id": r.opt_string(6), "request_id": r.opt_string(7),
        "details": details, "created_at": r.string(9),
    });
    (r.int(0), v, r.string(10), r.string(11))
}

/// `GET /v1/admin/control/audit-events?tenant_id&action&limit(≤500, 100)&offset`, newest first.
pub fn list(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let crate::admin::Page { limit, offset, filters } = crate::admin::page(query, &["tenant_id", "action"], 100, 500)?;
    let (tenant, action) = (filters[0].clone(), filters[1].clone());
    let rows = db.query(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM control_audit_events WHERE (CAST(? AS TEXT) IS NULL OR tenant_id = ?) \
             AND (CAST(? AS TEXT) IS NULL OR action = ?) ORDER BY seq DESC LIMIT ? OFFSET ?"
        ),
        &[
            tenant.clone().into(),
            tenant.into(),
            action.clone().into(),
            action.into(),
            cairn_spin::sql::SqlValue::Integer(limit),
            cairn_spin::sql::SqlValue::Integer(offset),
        ],
    )?;
    Ok(json!({"ok": true, "events": rows.iter().map(|r| event_of(r).1).collect::<Vec<_>>()}))
}

/// `POST /v1/admin/control/audit-events/verify`: recomputes every event's
/// hash in order; names the first event whose link or content was changed.
pub fn verify(db: &dyn Sql) -> Result<Value, ApiError> {
    cairn_spin::sql::read_txn(db, verify_in_snapshot)
}

/// [`verify`] inside the caller's read transaction.
pub fn verify_in_snapshot(db: &dyn Sql) -> Result<Value, ApiError> {
    let mut prev = String::new();
    let mut checked = 0i64;
    let mut after = 0i64;
    loop {
        let rows = db.query(
            &format!("SELECT {EVENT_COLUMNS} FROM control_audit_events WHERE seq > ? ORDER BY seq ASC LIMIT 500"),
            &[cairn_spin::sql::SqlValue::Integer(after)],
        )?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let (seq, v, prev_hash, event_hash) = event_of(r);
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let (event_id, actor, action, rtype, rid, created) =
                (s("event_id"), s("actor"), s("action"), s("resource_type"), s("resource_id"), s("created_at"));
            let (tenant, request) = (v["tenant_id"].as_str(), v["request_id"].as_str());
            let e = AuditEvent {
                event_id: &event_id,
                actor: &actor,
                action: &action,
                resource_type: &rtype,
                resource_id: &rid,
                tenant_id: tenant,
                request_id: request,
                details: &v["details"],
                created_at: &created,
            };
            let reason = if prev_hash != prev {
                Some("prev_hash does not name the previous event")
            } else if e.hash(&prev) != event_hash {
                Some("event_hash does not match the recomputed hash")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(json!({"ok": false, "checked": checked,
                                 "first_broken": {"event_id": event_id, "seq": seq, "reason": reason}}));
            }
            prev = event_hash;
            checked += 1;
            after = seq;
        }
    }
    Ok(json!({"ok": true, "checked": checked, "head": if checked > 0 { json!(prev) } else { Value::Null }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_chains_and_covers_every_field() {
        let details = json!({"dry_run": false});
        let e = AuditEvent {
            event_id: "e1",
            actor: "admin_token",
            action: "outbox.replay",
            resource_type: "memory_outbox_batch",
            resource_id: "acme:2026-11-22T00:00:00.000Z",
            tenant_id: Some("acme"),
            request_id: Some("r1"),
            details: &details,
            created_at: "2026-11-22T00:00:00.000Z",
        };
        let h = e.hash("");
        assert_ne!(h, e.hash("x"));
        let mut other = e.clone();
        other.action = "outbox.replay.preview";
        assert_ne!(h, other.hash(""));
        assert_eq!(h, e.hash(""));
    }
}
