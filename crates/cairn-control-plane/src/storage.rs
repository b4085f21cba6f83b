//! The tier's storage cap (`resource_caps.storage_mb`): a tenant whose
//! scopes store that much (`cairn_memory::usage`) gets `413
//! tenant_storage_quota_exceeded` on writes; reads are unaffected.

use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// Checks the tenant against `storage_mb` of its tier's profile.
pub fn check(
    db: &dyn Sql,
    tenant_id: &str,
    tier_profile: Option<&Value>,
    default_tenant: &str,
) -> Result<(), ApiError> {
    let Some(mb) = tier_profile
        .and_then(|p| p.get("resource_caps"))
        .and_then(|c| c.get("storage_mb"))
        .and_then(Value::as_f64)
        .filter(|mb| *mb > 0.0)
    else {
        return Ok(());
    };
    let limit = (mb * 1024.0 * 1024.0) as i64;
    let used = cairn_memory::usage::tenant_bytes(db, tenant_id, default_tenant)?;
    if used >= limit {
        return Err(ApiError::new(
            413,
            "tenant_storage_quota_exceeded",
            "the tenant stores its tier's storage_mb; writes are refused (reads still work)",
        )
        .with_details(json!({"tenant_id": tenant_id, "used_bytes": used, "limit_bytes": limit})));
    }
    Ok(())
}
