//! `POST /v1/admin/control/releases`: records a release evidence bundle
//! (`cairn release evidence`) as an audit event, so the hash-chained audit
//! log references every rollout's evidence. Request: `{bundle_digest (64
//! hex), run_id?, summary?}`; the event is `release.evidence` on
//! `release_bundle` `<bundle_digest>`. Response: `{ok, event_id,
//! event_hash, created_at}`.

use crate::admin::AdminCtx;
use crate::audit::{self as audit_log, AuditEvent};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::{Value, json};

pub fn record(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let digest = r.str_opt(root, "bundle_digest").unwrap_or_default();
    let run_id = r.str_opt_len(root, "run_id", 1, 128);
    r.finish()?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("bundle_digest", "bundle_digest must be 64 hex characters (a sha256)"));
    }
    let summary = body.get("summary").cloned().unwrap_or(Value::Null);
    if summary.to_string().len() > 16_384 {
        return Err(ApiError::invalid("summary", "summary must be at most 16 KiB of JSON"));
    }
    let (event_id, now) = (ctx.uuid(), ctx.now());
    let details = json!({"run_id": run_id, "summary": summary});
    let hash = write_txn(db, |db| {
        audit_log::record(
            db,
            &AuditEvent {
                event_id: &event_id,
                actor: "admin_token",
                action: "release.evidence",
                resource_type: "release_bundle",
                resource_id: &digest.to_ascii_lowercase(),
                tenant_id: None,
                request_id: Some(ctx.request_id),
                details: &details,
                created_at: &now,
            },
        )
    })?;
    Ok(json!({"ok": true, "event_id": event_id, "event_hash": hash, "created_at": now}))
}
