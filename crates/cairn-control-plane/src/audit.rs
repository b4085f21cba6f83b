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
