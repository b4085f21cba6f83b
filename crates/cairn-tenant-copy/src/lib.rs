//! Copying one tenant from one Cairn store to another (`cairn job
//! migrate-store`, docs/migrate-store.md): the host runs a source and a
//! destination instance of the derive component and passes pages between
//! them; this crate is what each side does, one operation per call:
//!
//! - `plan`: the tables a copy walks, in order, and which of them are
//!   append-only logs that may grow while it runs;
//! - `digest`: one table's (or the audit log's) count and sha256 of the
//!   tenant's rows; `chains`: every scope's chain verified, with its head;
//! - `export` / `import`: a page of rows after a cursor / inserted in one
//!   transaction (audit events are re-chained, `audit_events`);
//! - `purge`: the tenant's rows deleted from every copied table, to undo a
//!   copy that failed;
//! - `record`: the audit event saying the copy was verified.
//!
//! The same SQL runs on SQLite and PostgreSQL (the `Sql` seam), so either
//! can be either side; the job copies SQLite to PostgreSQL today.

pub mod audit_events;
pub mod digest;
pub mod page;
pub mod tables;
pub mod wire;

use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

/// Who is calling and when, for the audit event `record` appends.
pub struct CallCtx<'a> {
    pub default_tenant: &'a str,
    pub request_id: &'a str,
    pub event_id: String,
    pub now: String,
}

fn tenant_of(request: &Value) -> Result<&str, ApiError> {
    let t = request["tenant_id"].as_str().unwrap_or_default();
    if !cairn_core::tenant_scope::is_valid_tenant_id(t) {
        return Err(ApiError::bad_request("invalid_tenant_id", format!("tenant_id {t:?} is not a tenant id")));
    }
    Ok(t)
}

fn table_of(request: &Value) -> Result<Option<&'static tables::Table>, ApiError> {
    let name = request["table"].as_str().unwrap_or_default();
    if name == tables::AUDIT_EVENTS {
        return Ok(None);
    }
    tables::find(name)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("invalid_table", format!("{name:?} is not a table a tenant copy walks")))
}

/// Runs one operation (`request.op`, see the crate docs) on `db`.
pub fn handle(db: &dyn Sql, request: &Value, ctx: &CallCtx) -> Result<Value, ApiError> {
    let op = request["op"].as_str().unwrap_or_default();
    if op == "plan" {
        let mut names: Vec<&str> = tables::TABLES.iter().map(|t| t.name).collect();
        names.push(tables::AUDIT_EVENTS);
        let logs: Vec<&str> = tables::TABLES.iter().filter(|t| t.log).map(|t| t.name).collect();
        return Ok(json!({"tables": names, "logs": logs}));
    }
    let tenant = tenant_of(request)?;
    let dt = ctx.default_tenant;
    match op {
        "digest" => match table_of(request)? {
            Some(t) => digest::table(db, t, tenant, dt),
            None => digest::audit_events(db, tenant),
        },
        "chains" => digest::chains(db, tenant, dt),
        "export" => {
            let limit = request["limit"].as_i64().unwrap_or(page::PAGE_ROWS);
            match table_of(request)? {
                Some(t) => {
                    let cursor = match request["cursor"].as_array() {
                        Some(c) => Some(c.iter().map(wire::from_json).collect::<Result<Vec<SqlValue>, _>>()?),
                        None => None,
                    };
                    page::export(db, t, tenant, dt, cursor.as_deref(), limit)
                }
                None => {
                    let after = request["cursor"].as_i64().unwrap_or(0);
                    let limit = limit.clamp(1, page::PAGE_ROWS);
                    let (events, last) = audit_events::page(db, tenant, after, limit)?;
                    let next = if events.len() as i64 == limit { json!(last) } else { Value::Null };
                    Ok(json!({"table": tables::AUDIT_EVENTS, "events": events, "next": next}))
                }
            }
        }
        "import" => {
            let page = &request["page"];
            match table_of(page)? {
                Some(t) => Ok(json!({"inserted": page::import(db, t, tenant, dt, page)?})),
                None => {
                    let events = page["events"].as_array().map(Vec::as_slice).unwrap_or_default();
                    let (appended, skipped) = audit_events::append(db, tenant, events)?;
                    Ok(json!({"inserted": appended, "skipped": skipped}))
                }
            }
        }
        "purge" => Ok(json!({"deleted": page::purge(db, tenant, dt)?})),
        "record" => {
            let details = request["details"].clone();
            cairn_spin::sql::write_txn(db, |db| {
                cairn_control_plane::audit::record(
                    db,
                    &cairn_control_plane::audit::AuditEvent {
                        event_id: &ctx.event_id,
                        actor: "operator",
                        action: "tenant.store_migrated",
                        resource_type: "tenant",
                        resource_id: tenant,
                        tenant_id: Some(tenant),
                        request_id: Some(ctx.request_id),
                        details: &details,
                        created_at: &ctx.now,
                    },
                )
            })
            .map(|hash| json!({"event_id": ctx.event_id, "event_hash": hash}))
        }
        _ => Err(ApiError::bad_request(
            "invalid_op",
            format!("op {op:?} is not one of plan, digest, chains, export, import, purge, record"),
        )),
    }
}
