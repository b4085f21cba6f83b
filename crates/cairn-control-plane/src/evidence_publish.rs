//! The evidence publish queue (issue 18, step 7; the reference's §7.7
//! publish queue): a signed evidence bundle POSTed to an operator's target
//! survives a failing target. A job goes `pending → processing →
//! succeeded`, or back to `failed` with its next attempt after
//! `min(retry_max, retry_base · 2^(attempts−1))`, or to `dead_letter` once
//! `max_attempts` are spent; a dead letter is replayed by an operator. The
//! host sends (`cairn job evidence publish`, `publish-worker`); this module
//! keeps the state, each transition one transaction, enqueue, dead letter and
//! replay recorded in the audit chain.
//!
//! Verb ops (`evidence-publish {op, ...}`): `enqueue`, `claim`, `record`,
//! `replay`; route `GET /v1/admin/control/evidence/publish-jobs`.

use crate::admin::{AdminCtx, audit_by};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Row, Sql, SqlValue, write_txn};
use serde_json::{Value, json};

/// Who moves jobs (audit actor).
pub const ACTOR: &str = "evidence_publish";
/// A claimed job nobody recorded is claimable again after this long.
pub const LEASE_MS: i64 = 300_000;
/// The reference's worker defaults (`--retry-base-seconds 30
/// --retry-max-seconds 900`), and its enqueue default of 5 attempts.
pub const DEFAULTS: (i64, i64, i64) = (5, 30_000, 900_000);

const COLUMNS: &str = "job_id, tenant_id, target, index_sha256, status, attempts, max_attempts, retry_base_ms, \
                       retry_max_ms, next_attempt_ms, last_error, last_response_code, published_at, created_at, updated_at";

fn job_json(r: &Row) -> Value {
    json!({
        "job_id": r.string(0), "tenant_id": r.string(1), "target": r.string(2), "index_sha256": r.string(3),
        "status": r.string(4), "attempts": r.int(5), "max_attempts": r.int(6), "retry_base_ms": r.int(7),
        "retry_max_ms": r.int(8), "next_attempt_at": cairn_core::time_fmt::rfc3339_millis(r.int(9)),
        "last_error": r.opt_string(10), "last_response_code": (!r.is_null(11)).then(|| r.int(11)),
        "published_at": r.opt_string(12), "created_at": r.string(13), "updated_at": r.string(14),
    })
}

fn job(db: &dyn Sql, job_id: &str) -> Result<Value, ApiError> {
    db.query_one(&format!("SELECT {COLUMNS} FROM control_evidence_publish_jobs WHERE job_id = ?"), &[job_id.into()])?
        .map(|r| job_json(&r))
        .ok_or_else(|| ApiError::not_found("not_found", "no such publish job").with_details(json!({"job_id": job_id})))
}

/// Runs one op of the `evidence-publish` verb.
pub fn handle(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    crate::schema::ensure(db, &ctx.now())?;
    match body.get("op").and_then(Value::as_str) {
        Some("enqueue") => enqueue(db, ctx, body),
        Some("claim") => claim(db, ctx, body),
        Some("record") => record(db, ctx, body),
        Some("replay") => replay(db, ctx, body),
        other => Err(ApiError::invalid("op", format!("op must be enqueue, claim, record or replay, not {other:?}"))),
    }
}

/// `{tenant_id, target, payload, index_sha256, max_attempts?, retry_base_ms?,
/// retry_max_ms?}`: a pending job due now. The target is held to the alert
/// routes' rules (https, public; loopback only with alert_loopback_targets).
fn enqueue(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let tenant_id = crate::tenants::id_req(&mut r, o, "tenant_id", 64);
    let target = r.str_req(o, "target");
    let payload = r.str_req(o, "payload");
    let index_sha256 = r.str_req(o, "index_sha256");
    let (d_attempts, d_base, d_max) = DEFAULTS;
    let max_attempts = r.int_opt(o, "max_attempts", 1, 100).unwrap_or(d_attempts);
    let base = r.int_opt(o, "retry_base_ms", 0, 86_400_000).unwrap_or(d_base);
    let max = r.int_opt(o, "retry_max_ms", 0, 7 * 86_400_000).unwrap_or(d_max);
    if let Some(t) = &target
        && let Some(p) = crate::alerts::target_problem("webhook", t, ctx.alert_loopback_targets)
    {
        r.issue("target", p);
    }
    if index_sha256.as_deref().is_some_and(|h| !cairn_core::digest::is_sha256_hex(h)) {
        r.issue("index_sha256", "must be 64 hex characters");
    }
    r.finish()?;
    let (tenant_id, target) = (tenant_id.expect("checked"), target.expect("checked"));
    let index_sha256 = index_sha256.expect("checked");
    let (job_id, now) = (ctx.uuid(), ctx.now());
    write_txn(db, |db| {
        crate::tenants::require_tenant(db, &tenant_id)?;
        db.exec(
            "INSERT INTO control_evidence_publish_jobs (job_id, tenant_id, target, index_sha256, payload, status, attempts, \
             max_attempts, retry_base_ms, retry_max_ms, next_attempt_ms, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, ?)",
            &[
                (&job_id).into(),
                (&tenant_id).into(),
                (&target).into(),
                (&index_sha256).into(),
                payload.clone().into(),
                SqlValue::Integer(max_attempts),
                SqlValue::Integer(base),
                SqlValue::Integer(max),
                SqlValue::Integer(ctx.now_ms),
                (&now).into(),
                (&now).into(),
            ],
        )?;
        let details = json!({"target": target, "index_sha256": index_sha256, "max_attempts": max_attempts});
        audit_by(
            db,
            ctx,
            ACTOR,
            "evidence.publish.enqueue",
            "evidence_publish_job",
            &job_id,
            Some(&tenant_id),
            details,
        )?;
        Ok(json!({"ok": true, "job": job(db, &job_id)?}))
    })
}

/// `{job_id?, limit? (10)}`: takes due jobs (pending or failed and due, or
/// processing whose lease ran out) and leases them; returns each with its
/// payload.
fn claim(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let only = r.str_opt(o, "job_id");
    let limit = r.int_opt(o, "limit", 1, 100).unwrap_or(10);
    r.finish()?;
    let now = ctx.now_ms;
    write_txn(db, |db| {
        let rows = db.query(
            "SELECT job_id, target, payload, attempts, index_sha256 FROM control_evidence_publish_jobs \
             WHERE (CAST(? AS TEXT) IS NULL OR job_id = ?) AND ((status IN ('pending', 'failed') AND next_attempt_ms <= ?) \
             OR (status = 'processing' AND locked_until_ms <= ?)) ORDER BY next_attempt_ms, created_at LIMIT ?",
            &[only.clone().into(), only.clone().into(), SqlValue::Integer(now), SqlValue::Integer(now), SqlValue::Integer(limit)],
        )?;
        let mut jobs = Vec::new();
        for row in rows {
            db.exec(
                "UPDATE control_evidence_publish_jobs SET status = 'processing', attempts = attempts + 1, \
                 locked_until_ms = ?, updated_at = ? WHERE job_id = ?",
                &[SqlValue::Integer(now + LEASE_MS), ctx.now().into(), row.string(0).into()],
            )?;
            jobs.push(json!({"job_id": row.string(0), "target": row.string(1), "payload": row.string(2),
                             "attempt": row.int(3) + 1, "index_sha256": row.string(4)}));
        }
        Ok(json!({"ok": true, "jobs": jobs}))
    })
}

/// `{job_id, ok, response_code?, error?}`: the outcome of a claimed job's
/// attempt.
fn record(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let job_id = r.str_req(o, "job_id");
    let ok = r.bool_opt(o, "ok").unwrap_or(false);
    let code = r.int_opt(o, "response_code", 0, 999);
    let error = r.str_opt(o, "error");
    r.finish()?;
    let job_id = job_id.expect("checked");
    let now = ctx.now();
    write_txn(db, |db| {
        let j = job(db, &job_id)?;
        if j["status"] != "processing" {
            return Err(ApiError::new(409, "publish_job_not_claimed", "record an attempt of a claimed job only")
                .with_details(json!({"job_id": job_id, "status": j["status"]})));
        }
        let attempts = j["attempts"].as_i64().unwrap_or(0);
        let status = if ok {
            "succeeded"
        } else if attempts >= j["max_attempts"].as_i64().unwrap_or(1) {
            "dead_letter"
        } else {
            "failed"
        };
        let (base, max) = (j["retry_base_ms"].as_i64().unwrap_or(0), j["retry_max_ms"].as_i64().unwrap_or(0));
        let next = ctx.now_ms + cairn_core::retry::backoff_ms(attempts, base, max);
        db.exec(
            "UPDATE control_evidence_publish_jobs SET status = ?, locked_until_ms = NULL, last_error = ?, \
             last_response_code = ?, next_attempt_ms = ?, published_at = CASE WHEN ? = 'succeeded' THEN ? ELSE published_at END, \
             updated_at = ? WHERE job_id = ?",
            &[
                status.into(),
                if ok { None } else { error.clone() }.into(),
                code.into(),
                SqlValue::Integer(next),
                status.into(),
                (&now).into(),
                (&now).into(),
                (&job_id).into(),
            ],
        )?;
        if status == "dead_letter" {
            let details =
                json!({"attempts": attempts, "last_error": error, "last_response_code": code, "target": j["target"]});
            let tenant = j["tenant_id"].as_str().map(str::to_string);
            audit_by(
                db,
                ctx,
                ACTOR,
                "evidence.publish.dead_letter",
                "evidence_publish_job",
                &job_id,
                tenant.as_deref(),
                details,
            )?;
        }
        Ok(json!({"ok": true, "job": job(db, &job_id)?}))
    })
}

/// `{job_ids? | tenant_id, dry_run?}`: dead-lettered (and failed) jobs back
/// to pending with their attempts reset, due now; a dry run lists them. Each
/// call is an audit event (`evidence.publish.replay[.preview]`).
fn replay(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let tenant = r.str_opt(o, "tenant_id");
    let ids: Vec<String> = r
        .arr_opt(o, "job_ids")
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let dry_run = r.bool_opt(o, "dry_run").unwrap_or(false);
    if tenant.is_none() && ids.is_empty() {
        r.issue("tenant_id", "name a tenant_id or job_ids");
    }
    r.finish()?;
    write_txn(db, |db| {
        let rows = db.query(
            &format!(
                "SELECT {COLUMNS} FROM control_evidence_publish_jobs WHERE status IN ('dead_letter', 'failed') \
                 AND (CAST(? AS TEXT) IS NULL OR tenant_id = ?) ORDER BY created_at"
            ),
            &[tenant.clone().into(), tenant.clone().into()],
        )?;
        let picked: Vec<Value> = rows
            .iter()
            .map(job_json)
            .filter(|j| ids.is_empty() || ids.iter().any(|i| j["job_id"] == i.as_str()))
            .collect();
        if !dry_run {
            for j in &picked {
                db.exec(
                    "UPDATE control_evidence_publish_jobs SET status = 'pending', attempts = 0, next_attempt_ms = ?, \
                     updated_at = ? WHERE job_id = ?",
                    &[SqlValue::Integer(ctx.now_ms), ctx.now().into(), j["job_id"].as_str().unwrap_or("").into()],
                )?;
            }
        }
        let job_ids: Vec<&Value> = picked.iter().map(|j| &j["job_id"]).collect();
        let action = if dry_run { "evidence.publish.replay.preview" } else { "evidence.publish.replay" };
        audit_by(
            db,
            ctx,
            "admin_token",
            action,
            "evidence_publish_job",
            "replay",
            tenant.as_deref(),
            json!({"job_ids": job_ids}),
        )?;
        Ok(json!({"ok": true, "dry_run": dry_run, "replayed": if dry_run { 0 } else { picked.len() }, "jobs": picked}))
    })
}

/// `GET evidence/publish-jobs?tenant_id&status&limit(≤500, 100)&offset`,
/// newest first, without payloads.
pub fn list(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let page = crate::admin::page(query, &["tenant_id", "status"], 100, 500)?;
    let (cond, params) = page.conditions(&["tenant_id", "status"]);
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM control_evidence_publish_jobs WHERE {cond} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?"
        ),
        &params,
    )?;
    Ok(json!({"ok": true, "jobs": rows.iter().map(job_json).collect::<Vec<_>>()}))
}
