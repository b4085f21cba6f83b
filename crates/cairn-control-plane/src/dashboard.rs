//! `GET /v1/admin/control/dashboard/tenant/:tenant_id` (reference §7.6): the
//! tenant row, its keys, quota profile, and what its scopes hold and did in
//! the last 24 hours.

use crate::admin::AdminCtx;
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

/// `scope` condition selecting exactly a tenant's scope keys, with its
/// parameters.
fn scope_cond(ctx: &AdminCtx, tenant: &str) -> (String, Vec<SqlValue>) {
    let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant, ctx.default_tenant_id);
    (cond, params.into_iter().map(Into::into).collect())
}

pub fn tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str) -> Result<Value, ApiError> {
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let row = db.query_one(
        "SELECT status, created_at, updated_at, tier FROM control_tenants WHERE tenant_id = ?",
        &[tenant_id.into()],
    )?;
    let tenant = row.as_ref().map(|r| {
        json!({"status": r.string(0), "created_at": r.string(1), "updated_at": r.string(2),
               "tier": crate::provisioning::effective_tier(ctx, r.opt_string(3).as_deref())})
    });
    let keys = db.query(
        "SELECT sum(CASE WHEN status = 'active' THEN 1 ELSE 0 END), sum(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END) \
         FROM control_api_keys WHERE tenant_id = ?",
        &[tenant_id.into()],
    )?;
    let quota = crate::quotas::get(db, tenant_id).ok().map(|q| q["quota"].clone());
    // The memory counts come from the tenant's store (its tier may place
    // it apart from the home store, which holds the control tables).
    let data = ctx.tenant_data(db, tenant_id)?;
    let mdb = data.db();
    if data.is_apart() {
        cairn_memory::schema::ensure(mdb, &ctx.now())?;
    }
    let (cond, params) = scope_cond(ctx, tenant_id);
    let since = cairn_core::time_fmt::rfc3339_millis(ctx.now_ms - 86_400_000);
    let count = |table: &str, extra: &str, extra_params: &[SqlValue]| -> Result<i64, ApiError> {
        let mut p = params.clone();
        p.extend_from_slice(extra_params);
        Ok(mdb
            .query_one(&format!("SELECT count(*) FROM {table} WHERE {cond}{extra}"), &p)?
            .map(|r| r.int(0))
            .unwrap_or(0))
    };
    let data_plane = json!({
        "nodes": count("memory_nodes", "", &[])?,
        "edges": count("memory_edges", "", &[])?,
        "active_rules": count("memory_rule_defs", " AND state = 'active'", &[])?,
        "recalls_24h": count("memory_recall_audit", " AND created_at >= ?", &[since.clone().into()])?,
        "commits_24h": count("memory_commits", " AND created_at >= ?", &[since.into()])?,
        "stored_bytes": cairn_memory::usage::tenant_bytes(mdb, tenant_id, ctx.default_tenant_id)?,
    });
    let outbox = json!({
        "pending": count("memory_outbox", " AND published_at IS NULL", &[])?,
        "retrying": count("memory_outbox", " AND published_at IS NULL AND failed_at IS NULL AND attempts > 0", &[])?,
        "failed": count("memory_outbox", " AND failed_at IS NOT NULL", &[])?,
    });
    let k = keys.first();
    Ok(json!({"ok": true, "dashboard": {
        "tenant_id": tenant_id, "generated_at": ctx.now(), "default_tenant_id": ctx.default_tenant_id,
        "tenant": tenant,
        "api_keys": {"active": k.map(|r| r.int(0)).unwrap_or(0), "revoked": k.map(|r| r.int(1)).unwrap_or(0)},
        "quota_profile": quota, "data_plane": data_plane, "outbox": outbox,
    }}))
}
