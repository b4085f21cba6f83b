//! `GET /v1/admin/control/tiers`: the ProvisioningProfile rows the host
//! handed in as the `tier_profiles` variable (config/tiers.yaml as JSON),
//! unknown fields included, in file order.

use crate::admin::AdminCtx;
use cairn_core::ApiError;
use serde_json::{Value, json};

pub fn list(ctx: &AdminCtx) -> Result<Value, ApiError> {
    let doc: Value = ctx.tier_profiles.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_else(|| json!({}));
    let tiers: Vec<Value> = doc
        .get("tiers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, profile)| {
            let mut row = serde_json::Map::new();
            row.insert("tier".into(), json!(name));
            if let Some(p) = profile.as_object() {
                row.extend(p.iter().filter(|(k, _)| k.as_str() != "tier").map(|(k, v)| (k.clone(), v.clone())));
            }
            Value::Object(row)
        })
        .collect();
    Ok(json!({"ok": true, "default_tier": ctx.default_tier, "tiers": tiers}))
}

/// `resource_caps.<cap>` of `tier`.
pub fn resource_cap(ctx: &AdminCtx, tier: &str, cap: &str) -> Option<Value> {
    let doc: Value = serde_json::from_str(ctx.tier_profiles?).ok()?;
    doc.get("tiers")?.get(tier)?.get("resource_caps")?.get(cap).cloned()
}

/// The tier of a tenant as stored (none for an unknown or unprovisioned one).
pub fn stored_tier(db: &dyn cairn_spin::sql::Sql, tenant_id: &str) -> Result<Option<String>, cairn_core::ApiError> {
    Ok(db
        .query_one("SELECT tier FROM control_tenants WHERE tenant_id = ?", &[tenant_id.into()])?
        .and_then(|r| r.opt_string(0)))
}
