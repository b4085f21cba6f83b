//! Dead-letter operations: the outbox backlog (`GET
//! /v1/admin/control/outbox`, `GET /v1/admin/derive/status`) and replay
//! (`POST /v1/admin/control/outbox/replay`, `cairn job outbox-replay`).
//!
//! A job's status: `pending` (never tried), `retrying` (tried, waiting for
//! its next attempt), `dead_letter` (given up: `failed_at`), `done`.
//! Replay puts dead-lettered (or retrying) jobs back in line; like the
//! reference's incident replay it needs a tenant or explicit ids unless
//! `allow_all_tenants` is set, and every call — dry runs included — is an
//! audit event.

use crate::settings::DeriveSettings;
use cairn_control_plane::audit::{self, AuditEvent};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_core::tenant_scope::{check_tenant, tenant_key_sql};
use cairn_core::time_fmt::{parse_rfc3339_millis, rfc3339_millis};
use cairn_spin::sql::{Sql, SqlValue, placeholders, read_txn, write_txn};
use serde_json::{Value, json};

const STATUS_SQL: &str = "CASE WHEN published_at IS NOT NULL THEN 'done' WHEN failed_at IS NOT NULL THEN 'dead_letter' \
     WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END";
const STATUSES: &[&str] = &["pending", "retrying", "dead_letter", "done"];

/// A tenant restriction as SQL over `memory_outbox.scope`: exactly the
/// tenant's scope keys (case-sensitive).
fn tenant_clause(s: &DeriveSettings, tenant: Option<&str>) -> Result<(String, Vec<SqlValue>), ApiError> {
    Ok(match tenant {
        None => ("1 = 1".into(), vec![]),
        Some(t) => {
            let t = check_tenant(Some(t), &s.kernel.defaults)?;
            let (cond, params) = tenant_key_sql("scope", &t, &s.kernel.defaults.tenant_id);
            (cond, params.into_iter().map(Into::into).collect())
        }
    })
}

/// `{tenant, scope}` of a scope key.
fn scope_parts(s: &DeriveSettings, key: &str) -> (String, String) {
    let (t, sc) = cairn_core::tenant_scope::split_key(key, &s.kernel.defaults.tenant_id);
    (t.to_string(), sc.to_string())
}

fn sample_json(s: &DeriveSettings, r: &cairn_spin::sql::Row) -> Value {
    let (tenant, scope) = scope_parts(s, &r.string(1));
    json!({
        "id": r.int(0), "tenant_id": tenant, "scope": scope, "event_type": r.string(2), "status": r.string(3),
        "attempts": r.int(4), "last_error": r.opt_string(5), "failed_reason": r.opt_string(6),
        "created_at": r.string(7), "next_attempt_at": r.opt_string(8), "failed_at": r.opt_string(9),
        "published_at": r.opt_string(10),
    })
}

const SAMPLE_COLUMNS: &str = "id, scope, event_type, {STATUS}, attempts, last_error, failed_reason, created_at, \
     next_attempt_at, failed_at, published_at";

fn sample_columns() -> String {
    SAMPLE_COLUMNS.replace("{STATUS}", STATUS_SQL)
}

/// The backlog: counts by status, the oldest waiting job's age, samples.
/// Query: `tenant_id?`, `status?` (samples of that status; default: all
/// not done), `limit?` (samples, 1..200, default 20).
pub fn status(db: &dyn Sql, s: &DeriveSettings, query: &[(String, String)], now_ms: i64) -> Result<Value, ApiError> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let mut r = Reader::new();
    let limit = query_int(&mut r, "limit", get("limit"), 1, 200).unwrap_or(20);
    let status = get("status");
    if let Some(st) = status
        && !STATUSES.contains(&st)
    {
        r.issue("status", format!("status must be one of: {}", STATUSES.join("|")));
    }
    r.finish()?;
    let tenant = get("tenant_id");
    let (clause, params) = tenant_clause(s, tenant)?;
    let now = rfc3339_millis(now_ms);
    read_txn(db, |db| {
        let row = db
            .query_one(
                &format!(
                    "SELECT \
                       count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts = 0), \
                       count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts > 0), \
                       count(*) FILTER (WHERE failed_at IS NOT NULL AND published_at IS NULL), \
                       count(*) FILTER (WHERE published_at IS NOT NULL), \
                       min(created_at) FILTER (WHERE published_at IS NULL AND failed_at IS NULL) \
                     FROM memory_outbox WHERE {clause}"
                ),
                &params,
            )?
            .expect("aggregate returns one row");
        // Whole seconds since a stored time (the oldest waiting job's).
        let age_of = |t: Option<&str>| t.and_then(parse_rfc3339_millis).map(|t| (now_ms - t).max(0) / 1000);
        let oldest = row.opt_string(4);
        let age = age_of(oldest.as_deref());
        // The same counts per job kind (metrics, dashboards).
        let by_kind: Vec<Value> = db
            .query(
                &format!(
                    "SELECT event_type, \
                       count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts = 0), \
                       count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND attempts > 0), \
                       count(*) FILTER (WHERE failed_at IS NOT NULL AND published_at IS NULL), \
                       count(*) FILTER (WHERE published_at IS NOT NULL) \
                     FROM memory_outbox WHERE {clause} GROUP BY event_type ORDER BY event_type"
                ),
                &params,
            )?
            .iter()
            .map(|r| {
                json!({"event_type": r.string(0), "pending": r.int(1), "retrying": r.int(2),
                       "dead_letter": r.int(3), "done": r.int(4)})
            })
            .collect();
        // The backlog per tenant (metrics, the console): waiting rows only,
        // grouped by scope key and folded into tenants here.
        let mut by_tenant: std::collections::BTreeMap<String, (i64, i64, i64, Option<String>)> = Default::default();
        for r in db.query(
            &format!(
                "SELECT scope, \
                   count(*) FILTER (WHERE failed_at IS NULL AND attempts = 0), \
                   count(*) FILTER (WHERE failed_at IS NULL AND attempts > 0), \
                   count(*) FILTER (WHERE failed_at IS NOT NULL), \
                   min(created_at) FILTER (WHERE failed_at IS NULL) \
                 FROM memory_outbox WHERE {clause} AND published_at IS NULL GROUP BY scope"
            ),
            &params,
        )? {
            let e = by_tenant.entry(scope_parts(s, &r.string(0)).0).or_default();
            e.0 += r.int(1);
            e.1 += r.int(2);
            e.2 += r.int(3);
            if let Some(t) = r.opt_string(4).filter(|t| e.3.as_ref().is_none_or(|o| t < o)) {
                e.3 = Some(t);
            }
        }
        let by_tenant: Vec<Value> = by_tenant
            .into_iter()
            .map(|(tenant, (pending, retrying, dead, oldest))| {
                json!({"tenant_id": tenant, "pending": pending, "retrying": retrying, "dead_letter": dead,
                       "oldest_pending_age_sec": age_of(oldest.as_deref()), "oldest_pending_at": oldest})
            })
            .collect();
        let status_filter = match status {
            Some(st) => format!("{STATUS_SQL} = '{st}'"),
            None => "published_at IS NULL".into(),
        };
        let mut p = params.clone();
        p.push(limit.into());
        let samples: Vec<Value> = db
            .query(
                &format!(
                    "SELECT {} FROM memory_outbox WHERE {clause} AND {status_filter} ORDER BY id DESC LIMIT ?",
                    sample_columns()
                ),
                &p,
            )?
            .iter()
            .map(|r| sample_json(s, r))
            .collect();
        Ok(json!({
            "ok": true,
            "tenant_id": tenant,
            "generated_at": now,
            "outbox": {
                "pending": row.int(0),
                "retrying": row.int(1),
                "dead_letter": row.int(2),
                "done": row.int(3),
                "oldest_pending_at": oldest,
                "oldest_pending_age_sec": age,
            },
            "by_event_type": by_kind,
            "by_tenant": by_tenant,
            "max_attempts": s.max_attempts,
            "samples": samples,
        }))
    })
}

/// Who asks for a replay, for the audit event.
pub struct Caller<'a> {
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub event_id: String,
}

/// Replays failed jobs. Body: `{tenant_id?, ids? (≤500 job ids), statuses?
/// (["dead_letter"] default; "retrying" allowed), limit? (1..1000, 50),
/// reset_attempts? (true), dry_run? (false), reason? ("manual_replay"),
/// allow_all_tenants? (false)}`. The audit event is recorded in the same
/// transaction, or, when `db` is a store a tier places the tenant in,
/// in `home`'s log right after it commits (`cairn_core::placement`).
pub fn replay(
    db: &dyn Sql,
    home: Option<&dyn Sql>,
    s: &DeriveSettings,
    body: &Value,
    caller: &Caller,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let tenant = r.str_opt_len(root, "tenant_id", 1, 128);
    let ids: Option<Vec<i64>> = match root.map.get("ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() <= 500 => {
            let ids: Vec<i64> = a.iter().filter_map(Value::as_i64).collect();
            if ids.len() != a.len() {
                r.issue("ids", "ids must be outbox job ids (integers)");
            }
            Some(ids)
        }
        Some(Value::Array(_)) => {
            r.issue("ids", "at most 500 ids");
            None
        }
        Some(_) => {
            r.issue("ids", "ids must be an array of outbox job ids");
            None
        }
    };
    let statuses: Vec<String> = match root.map.get("statuses") {
        None | Some(Value::Null) => vec!["dead_letter".into()],
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 8 => {
            let st: Vec<String> = a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            if st.len() != a.len() || st.iter().any(|x| x != "dead_letter" && x != "retrying") {
                r.issue("statuses", "statuses must be a list of: dead_letter|retrying");
            }
            st
        }
        Some(_) => {
            r.issue("statuses", "statuses must be a non-empty list (≤8) of: dead_letter|retrying");
            vec![]
        }
    };
    let limit = r.int_opt(root, "limit", 1, 1000).unwrap_or(50);
    let reset_attempts = r.bool_opt(root, "reset_attempts").unwrap_or(true);
    let dry_run = r.bool_opt(root, "dry_run").unwrap_or(false);
    let reason = r.str_opt_len(root, "reason", 1, 256).unwrap_or_else(|| "manual_replay".into());
    let allow_all = r.bool_opt(root, "allow_all_tenants").unwrap_or(false);
    r.finish()?;
    if tenant.is_none() && ids.is_none() && !allow_all {
        return Err(ApiError::invalid(
            "tenant_id",
            "replay needs tenant_id or ids (set allow_all_tenants=true to replay every tenant)",
        ));
    }
    let (clause, mut params) = tenant_clause(s, tenant.as_deref())?;
    let mut conds = vec![clause, "published_at IS NULL".to_string()];
    let st_conds: Vec<&str> = statuses
        .iter()
        .map(|x| if x == "dead_letter" { "failed_at IS NOT NULL" } else { "(failed_at IS NULL AND attempts > 0)" })
        .collect();
    conds.push(format!("({})", st_conds.join(" OR ")));
    if let Some(ids) = &ids {
        if ids.is_empty() {
            conds.push("0 = 1".into());
        } else {
            conds.push(format!("id IN ({})", placeholders(ids.len())));
            params.extend(ids.iter().map(|i| SqlValue::Integer(*i)));
        }
    }
    let where_sql = conds.join(" AND ");
    let now = rfc3339_millis(now_ms);
    let record = |db: &dyn Sql, details: &Value, resource_id: &str| {
        audit::record(
            db,
            &AuditEvent {
                event_id: &caller.event_id,
                actor: caller.actor,
                action: if dry_run { "outbox.replay.preview" } else { "outbox.replay" },
                resource_type: "memory_outbox_batch",
                resource_id,
                tenant_id: tenant.as_deref(),
                request_id: caller.request_id,
                details,
                created_at: &now,
            },
        )
    };
    let (out, details, resource_id) = write_txn(db, |db| {
        let mut p = params.clone();
        p.push(limit.into());
        let rows = db.query(
            &format!(
                "SELECT {}, payload FROM memory_outbox WHERE {where_sql} ORDER BY id ASC LIMIT ?",
                sample_columns()
            ),
            &p,
        )?;
        let candidates: Vec<i64> = rows.iter().map(|r| r.int(0)).collect();
        let sample: Vec<Value> = rows.iter().take(20).map(|r| sample_json(s, r)).collect();
        if !dry_run && !candidates.is_empty() {
            for (row, id) in rows.iter().zip(&candidates) {
                let attempts = if reset_attempts { 0 } else { row.int(4).min(s.max_attempts - 1).max(0) };
                db.exec(
                    "UPDATE memory_outbox SET failed_at = NULL, failed_reason = NULL, claimed_at = NULL, claim_token = NULL, \
                     next_attempt_at = NULL, last_error = NULL, attempts = ? WHERE id = ?",
                    &[attempts.into(), (*id).into()],
                )?;
                // Nodes a dead-lettered embed job had failed wait for it again.
                if row.string(2) == "embed_nodes" {
                    let payload: Value = serde_json::from_str(row.text(11).unwrap_or("{}")).unwrap_or(Value::Null);
                    for n in payload.get("nodes").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(nid) = n.get("id").and_then(Value::as_str) {
                            db.exec(
                                "UPDATE memory_nodes SET embedding_status = 'pending' WHERE id = ? AND embedding_status = 'failed'",
                                &[nid.into()],
                            )?;
                        }
                    }
                }
            }
        }
        let replayed = if dry_run { 0 } else { candidates.len() as i64 };
        let details = json!({
            "replayed_count": replayed,
            "candidate_count": candidates.len(),
            "statuses": statuses,
            "limit": limit,
            "reset_attempts": reset_attempts,
            "dry_run": dry_run,
            "allow_all_tenants": allow_all,
            "reason": reason,
            "ids": ids,
            "sample_job_ids": candidates.iter().take(20).collect::<Vec<_>>(),
        });
        let resource_id = format!("{}:{now}", tenant.as_deref().unwrap_or("all"));
        if home.is_none() {
            record(db, &details, &resource_id)?;
        }
        let out = json!({
            "ok": true,
            "dry_run": dry_run,
            "replayed_count": replayed,
            "candidate_count": candidates.len(),
            "jobs_sample": sample,
            "audit_event_id": caller.event_id,
        });
        Ok((out, details, resource_id))
    })?;
    if let Some(home) = home {
        write_txn(home, |h| record(h, &details, &resource_id))?;
    }
    Ok(out)
}
