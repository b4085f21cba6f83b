//! Telemetry retention (reference §7.9 `job:hosted-telemetry-retention`):
//! request telemetry older than its tenant's retention is deleted, in
//! batches of 20,000 rows, at most 20 batches per tenant and run (a large
//! backlog drains over runs without one long write transaction). The
//! retention is the tier's `ops.telemetry_retention_hours` (the reference's
//! default, 720 h, when unset); derivation runs this with its retention
//! pass, and `cairn job telemetry-retention` on demand.

use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::{Value, json};

pub const DEFAULT_RETENTION_HOURS: i64 = 720;
const BATCH: i64 = 20_000;
const MAX_PASSES: usize = 20;

/// `ops.telemetry_retention_hours` of `tier`, else the default.
pub fn retention_hours(profiles: Option<&Value>, tier: &str) -> i64 {
    profiles
        .and_then(|p| p.get("tiers")?.get(tier)?.get("ops")?.get("telemetry_retention_hours")?.as_i64())
        .filter(|h| *h > 0)
        .unwrap_or(DEFAULT_RETENTION_HOURS)
}

/// Deletes each tenant's rows older than `hours_of(tenant)`.
pub fn purge(db: &dyn Sql, hours_of: &dyn Fn(&str) -> Result<i64, ApiError>, now_ms: i64) -> Result<Value, ApiError> {
    let tenants: Vec<String> =
        db.query("SELECT DISTINCT tenant_id FROM memory_request_telemetry", &[])?.iter().map(|r| r.string(0)).collect();
    let (mut deleted, mut passes) = (0i64, 0usize);
    let mut per_tenant = serde_json::Map::new();
    for t in &tenants {
        let hours = hours_of(t)?;
        let cutoff = rfc3339_millis(now_ms - hours * 3_600_000);
        let mut mine = 0i64;
        for _ in 0..MAX_PASSES {
            // Counted, then deleted, in one write transaction (one snapshot).
            let n = write_txn(db, |db| {
                let args = [t.as_str().into(), cutoff.clone().into(), BATCH.into()];
                let old = "SELECT id FROM memory_request_telemetry WHERE tenant_id = ? AND created_at < ? LIMIT ?";
                let n = db.query(old, &args)?.len() as i64;
                if n > 0 {
                    db.exec(&format!("DELETE FROM memory_request_telemetry WHERE id IN ({old})"), &args)?;
                }
                Ok(n)
            })?;
            passes += 1;
            mine += n;
            if n < BATCH {
                break;
            }
        }
        if mine > 0 {
            per_tenant.insert(t.clone(), json!({"deleted": mine, "retention_hours": hours}));
        }
        deleted += mine;
    }
    Ok(json!({"ok": true, "deleted": deleted, "passes": passes, "tenants": per_tenant}))
}
