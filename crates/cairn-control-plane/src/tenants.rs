//! Tenants and projects (reference §1.3): upserts, no delete. Every
//! mutation is an audit event in the same transaction.

use crate::admin::{AdminCtx, Page, audit, json_col, page};
use cairn_core::ApiError;
use cairn_core::request_reader::{Obj, Reader};
use cairn_spin::sql::{Row, Sql, SqlValue, write_txn};
use serde_json::{Map, Value, json};

const TENANT_COLUMNS: &str = "tenant_id, display_name, status, metadata, created_at, updated_at";
const PROJECT_COLUMNS: &str = "project_id, tenant_id, display_name, status, metadata, created_at, updated_at";

fn tenant_json(r: &Row) -> Value {
    json!({
        "tenant_id": r.string(0), "display_name": r.opt_string(1), "status": r.string(2),
        "metadata": json_col(r.text(3)), "created_at": r.string(4), "updated_at": r.string(5),
    })
}

fn project_json(r: &Row) -> Value {
    json!({
        "project_id": r.string(0), "tenant_id": r.string(1), "display_name": r.opt_string(2), "status": r.string(3),
        "metadata": json_col(r.text(4)), "created_at": r.string(5), "updated_at": r.string(6),
    })
}

/// `metadata?`: an object (default `{}`).
pub fn metadata(r: &mut Reader, o: Obj) -> Map<String, Value> {
    r.obj_opt(o, "metadata").cloned().unwrap_or_default()
}

/// A required string of 1..=max characters.
pub fn id_req(r: &mut Reader, o: Obj, key: &str, max: usize) -> Option<String> {
    if o.map.get(key).is_none_or(Value::is_null) {
        r.issue(Reader::path(o, key), "Required");
        return None;
    }
    r.str_opt_len(o, key, 1, max)
}

/// The tenant row, or `404 not_found`.
pub fn require_tenant(db: &dyn Sql, tenant_id: &str) -> Result<Value, ApiError> {
    db.query_one(&format!("SELECT {TENANT_COLUMNS} FROM control_tenants WHERE tenant_id = ?"), &[tenant_id.into()])?
        .map(|r| tenant_json(&r))
        .ok_or_else(|| {
            ApiError::not_found("not_found", "tenant not found").with_details(json!({"tenant_id": tenant_id}))
        })
}

/// `POST /v1/admin/control/tenants`: every field is overwritten (an omitted
/// status means `active`, omitted metadata `{}`).
pub fn upsert_tenant(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant_id = id_req(&mut r, o, "tenant_id", 128);
    let display_name = r.str_opt_len(o, "display_name", 0, 256);
    let status = r.enum_opt(o, "status", &["active", "suspended"]).unwrap_or_else(|| "active".into());
    let meta = metadata(&mut r, o);
    r.finish()?;
    let tenant_id = tenant_id.expect("checked");
    let now = ctx.now();
    write_txn(db, |db| {
        db.exec(
            "INSERT INTO control_tenants (tenant_id, display_name, status, metadata, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET display_name = excluded.display_name, \
             status = excluded.status, metadata = excluded.metadata, updated_at = excluded.updated_at",
            &[
                (&tenant_id).into(),
                display_name.clone().into(),
                (&status).into(),
                Value::Object(meta.clone()).to_string().into(),
                (&now).into(),
                (&now).into(),
            ],
        )?;
        audit(db, ctx, "tenant.upsert", "tenant", &tenant_id, Some(&tenant_id), json!({"status": status}))?;
        Ok(json!({"ok": true, "tenant": require_tenant(db, &tenant_id)?}))
    })
}

/// `GET /v1/admin/control/tenants?status&limit&offset`.
pub fn list_tenants(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let Page { limit, offset, filters } = page(query, &["status"], 100, 500)?;
    let status = filters.first().cloned().flatten();
    let rows = db.query(
        &format!(
            "SELECT {TENANT_COLUMNS} FROM control_tenants WHERE (CAST(? AS TEXT) IS NULL OR status = ?) \
             ORDER BY tenant_id ASC LIMIT ? OFFSET ?"
        ),
        &[status.clone().into(), status.into(), SqlValue::Integer(limit), SqlValue::Integer(offset)],
    )?;
    Ok(json!({"ok": true, "tenants": rows.iter().map(tenant_json).collect::<Vec<_>>()}))
}

/// `POST /v1/admin/control/projects`.
pub fn upsert_project(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let project_id = id_req(&mut r, o, "project_id", 128);
    let tenant_id = id_req(&mut r, o, "tenant_id", 128);
    let display_name = r.str_opt_len(o, "display_name", 0, 256);
    let status = r.enum_opt(o, "status", &["active", "archived"]).unwrap_or_else(|| "active".into());
    let meta = metadata(&mut r, o);
    r.finish()?;
    let (project_id, tenant_id) = (project_id.expect("checked"), tenant_id.expect("checked"));
    let now = ctx.now();
    write_txn(db, |db| {
        require_tenant(db, &tenant_id)?;
        if let Some(owner) = db
            .query_one("SELECT tenant_id FROM control_projects WHERE project_id = ?", &[(&project_id).into()])?
            .map(|r| r.string(0))
            .filter(|t| t != &tenant_id)
        {
            return Err(ApiError::conflict("project_tenant_mismatch", "the project belongs to another tenant")
                .with_details(json!({"project_id": project_id, "tenant_id": owner})));
        }
        db.exec(
            "INSERT INTO control_projects (project_id, tenant_id, display_name, status, metadata, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET display_name = excluded.display_name, \
             status = excluded.status, metadata = excluded.metadata, updated_at = excluded.updated_at",
            &[
                (&project_id).into(),
                (&tenant_id).into(),
                display_name.clone().into(),
                (&status).into(),
                Value::Object(meta.clone()).to_string().into(),
                (&now).into(),
                (&now).into(),
            ],
        )?;
        audit(db, ctx, "project.upsert", "project", &project_id, Some(&tenant_id), json!({"status": status}))?;
        let row = db
            .query_one(
                &format!("SELECT {PROJECT_COLUMNS} FROM control_projects WHERE project_id = ?"),
                &[(&project_id).into()],
            )?
            .ok_or_else(|| ApiError::internal("project vanished"))?;
        Ok(json!({"ok": true, "project": project_json(&row)}))
    })
}
