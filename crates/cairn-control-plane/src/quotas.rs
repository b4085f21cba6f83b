//! Per-tenant quota profiles (reference §1.3 `tenant-quotas`, §7.3): the
//! token-bucket parameters of each request class. Stored here; enforced by
//! `quota_buckets` (a profile applies whenever it exists, unless
//! `tenant_quota_enabled=false`).

use crate::admin::{AdminCtx, audit};
use crate::tenants::require_tenant;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Row, Sql, SqlValue, write_txn};
use serde_json::{Map, Value, json};

/// (field, integer?, minimum is exclusive?)
const FIELDS: &[(&str, bool, bool)] = &[
    ("recall_rps", false, true),
    ("recall_burst", true, true),
    ("write_rps", false, true),
    ("write_burst", true, true),
    ("write_max_wait_ms", true, false),
    ("debug_embed_rps", false, true),
    ("debug_embed_burst", true, true),
    ("recall_text_embed_rps", false, true),
    ("recall_text_embed_burst", true, true),
    ("recall_text_embed_max_wait_ms", true, false),
];

fn columns() -> String {
    FIELDS.iter().map(|(f, _, _)| *f).collect::<Vec<_>>().join(", ")
}

fn quota_json(r: &Row) -> Value {
    let mut m = Map::new();
    m.insert("tenant_id".into(), json!(r.string(0)));
    for (i, (f, int, _)) in FIELDS.iter().enumerate() {
        m.insert((*f).into(), if *int { json!(r.int(i + 1)) } else { json!(r.real(i + 1)) });
    }
    m.insert("created_at".into(), json!(r.string(FIELDS.len() + 1)));
    m.insert("updated_at".into(), json!(r.string(FIELDS.len() + 2)));
    Value::Object(m)
}

fn load(db: &dyn Sql, tenant: &str) -> Result<Option<Value>, ApiError> {
    Ok(db
        .query_one(
            &format!(
                "SELECT tenant_id, {}, created_at, updated_at FROM control_tenant_quotas WHERE tenant_id = ?",
                columns()
            ),
            &[tenant.into()],
        )?
        .map(|r| quota_json(&r)))
}

/// `PUT /v1/admin/control/tenant-quotas/:tenant_id` (every field required).
pub fn put(db: &dyn Sql, ctx: &AdminCtx, tenant: &str, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let mut values: Vec<SqlValue> = Vec::with_capacity(FIELDS.len());
    let mut details = Map::new();
    for (f, int, exclusive) in FIELDS {
        if o.map.get(*f).is_none_or(Value::is_null) {
            r.issue(*f, "Required");
            continue;
        }
        let v = if *int {
            r.int_opt(o, f, 0, i64::MAX).map(|x| (x as f64, SqlValue::Integer(x), json!(x)))
        } else {
            r.num_opt(o, f, 0.0, f64::MAX).map(|x| (x, SqlValue::Real(x), json!(x)))
        };
        if let Some((x, sql, js)) = v {
            if *exclusive && x <= 0.0 {
                r.issue(*f, "Number must be greater than 0");
            }
            values.push(sql);
            details.insert((*f).into(), js);
        }
    }
    r.finish()?;
    let now = ctx.now();
    write_txn(db, |db| {
        require_tenant(db, tenant)?;
        let mut params: Vec<SqlValue> = vec![tenant.into()];
        params.extend(values.iter().cloned());
        params.push((&now).into());
        params.push((&now).into());
        let cols = columns();
        let updates = FIELDS.iter().map(|(f, _, _)| format!("{f} = excluded.{f}")).collect::<Vec<_>>().join(", ");
        db.exec(
            &format!(
                "INSERT INTO control_tenant_quotas (tenant_id, {cols}, created_at, updated_at) VALUES (?, {}) \
                 ON CONFLICT (tenant_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
                cairn_spin::sql::placeholders(FIELDS.len() + 2)
            ),
            &params,
        )?;
        audit(db, ctx, "tenant_quota.upsert", "tenant_quota", tenant, Some(tenant), Value::Object(details.clone()))?;
        Ok(json!({"ok": true, "quota": load(db, tenant)?}))
    })
}

/// `GET /v1/admin/control/tenant-quotas/:tenant_id`.
pub fn get(db: &dyn Sql, tenant: &str) -> Result<Value, ApiError> {
    match load(db, tenant)? {
        Some(q) => Ok(json!({"ok": true, "quota": q})),
        None => Err(ApiError::not_found("not_found", "tenant quota profile not found")),
    }
}

/// `DELETE /v1/admin/control/tenant-quotas/:tenant_id` (audited only when
/// something was deleted).
pub fn delete(db: &dyn Sql, ctx: &AdminCtx, tenant: &str) -> Result<Value, ApiError> {
    write_txn(db, |db| {
        let deleted = !db
            .query("DELETE FROM control_tenant_quotas WHERE tenant_id = ? RETURNING tenant_id", &[tenant.into()])?
            .is_empty();
        if deleted {
            audit(db, ctx, "tenant_quota.delete", "tenant_quota", tenant, Some(tenant), json!({}))?;
        }
        Ok(json!({"ok": true, "deleted": deleted}))
    })
}
