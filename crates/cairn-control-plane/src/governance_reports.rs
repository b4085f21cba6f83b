//! The archive of weekly governance reports (issue 18, step 2): each report
//! the schedule makes is an artifact of the evidence registry (kind
//! `weekly_report`, its bytes the report's `{summary, files}` JSON) and a
//! row of `control_governance_reports` naming its week and subject — the
//! shared report (`shared`) or one tenant's (`tenant:<id>`), unique per
//! week — with the retention its tier gave it. A retention pass deletes the
//! artifacts past `expires_at_ms`, records each deletion in the audit chain
//! (`evidence.delete`) and keeps the row, marked deleted, as the record.
//!
//! Routes below `/v1/admin/control/`: `GET governance/reports` (newest
//! week first) and `GET governance/reports/{report_id}` (the report's
//! summary and documents, or one of them with `?file=`).

use crate::admin::AdminCtx;
use crate::evidence::Artifact;
use cairn_core::ApiError;
use cairn_spin::sql::{Row, Sql, SqlValue, write_txn};
use serde_json::{Value, json};

/// The evidence kind of an archived weekly report.
pub const KIND: &str = "weekly_report";
/// Who archives and deletes reports (audit events' actor, evidence producer).
pub const ACTOR: &str = "governance_schedule";
const DAY_MS: i64 = 86_400_000;

const COLUMNS: &str = "g.report_id, g.report_week, g.subject, g.tenant_id, g.profile, g.tiers, g.covered_tenants, \
                       g.retention_days, g.period_start, g.period_end, g.expires_at_ms, g.ok, g.exit_code, \
                       g.created_at, g.deleted_at, e.sha256, e.size_bytes";

/// The subject key of a tenant's report.
pub fn tenant_subject(tenant_id: &str) -> String {
    format!("tenant:{tenant_id}")
}

/// The subject key of the shared report.
pub const SHARED_SUBJECT: &str = "shared";

/// A report to archive.
pub struct NewReport<'a> {
    pub week: &'a str,
    pub subject: &'a str,
    pub tenant_id: Option<&'a str>,
    /// The `governance.report` profile it was made for.
    pub profile: &'a str,
    pub tiers: &'a [String],
    pub covered_tenants: &'a [String],
    /// Days kept after the period ends (`None`: by contract, never deleted
    /// by the retention pass).
    pub retention_days: Option<i64>,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    pub ok: bool,
    pub exit_code: i32,
    /// The report's `{summary, files}` JSON.
    pub content: &'a str,
}

fn row_json(r: &Row) -> Value {
    let list = |i: usize| serde_json::from_str::<Value>(r.text(i).unwrap_or("[]")).unwrap_or_else(|_| json!([]));
    json!({
        "report_id": r.string(0), "report_week": r.string(1), "subject": r.string(2), "tenant_id": r.opt_string(3),
        "profile": r.string(4), "tiers": list(5), "covered_tenants": list(6),
        "retention_days": (!r.is_null(7)).then(|| r.int(7)),
        "period_start": r.string(8), "period_end": r.string(9),
        "expires_at": (!r.is_null(10)).then(|| cairn_core::time_fmt::rfc3339_millis(r.int(10))),
        "ok": r.int(11) != 0, "exit_code": r.int(12), "created_at": r.string(13), "deleted_at": r.opt_string(14),
        "sha256": r.opt_string(15), "size_bytes": (!r.is_null(16)).then(|| r.int(16)),
    })
}

/// The subjects whose report for `week` is archived (or was, and expired).
pub fn archived_subjects(db: &dyn Sql, week: &str) -> Result<std::collections::HashSet<String>, ApiError> {
    Ok(db
        .query("SELECT subject FROM control_governance_reports WHERE report_week = ?", &[week.into()])?
        .iter()
        .map(|r| r.string(0))
        .collect())
}

/// Archives `r` in one transaction: its row, then its artifact (the same
/// id, so each finds the other). `None`
/// when the subject's report for the week is already archived (another
/// scheduler made it first): nothing is written.
pub fn archive(db: &dyn Sql, ctx: &AdminCtx, r: &NewReport) -> Result<Option<Value>, ApiError> {
    let period = [r.period_start_ms, r.period_end_ms].map(cairn_core::time_fmt::rfc3339_millis);
    write_txn(db, |db| {
        crate::schema::ensure(db, &ctx.now())?;
        let report_id = ctx.uuid();
        let claimed = db.query(
            "INSERT INTO control_governance_reports (report_id, report_week, subject, tenant_id, profile, tiers, \
             covered_tenants, retention_days, period_start, period_end, expires_at_ms, ok, exit_code, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (report_week, subject) DO NOTHING RETURNING report_id",
            &[
                (&report_id).into(),
                r.week.into(),
                r.subject.into(),
                r.tenant_id.into(),
                r.profile.into(),
                json!(r.tiers).to_string().into(),
                json!(r.covered_tenants).to_string().into(),
                r.retention_days.into(),
                (&period[0]).into(),
                (&period[1]).into(),
                r.retention_days.map(|d| r.period_end_ms + d * DAY_MS).into(),
                SqlValue::Integer(i64::from(r.ok)),
                SqlValue::Integer(i64::from(r.exit_code)),
                ctx.now().into(),
            ],
        )?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let [period_start, period_end] = period.clone();
        crate::evidence::insert(
            db,
            ctx,
            ACTOR,
            &report_id,
            &Artifact {
                kind: KIND,
                tenant_id: r.tenant_id,
                period_start: Some(period_start),
                period_end: Some(period_end),
                producer: ACTOR,
                content_type: "application/json",
                content: r.content,
            },
        )?;
        one(db, &report_id).map(Some)
    })
}

fn one(db: &dyn Sql, report_id: &str) -> Result<Value, ApiError> {
    db.query_one(
        &format!(
            "SELECT {COLUMNS} FROM control_governance_reports g LEFT JOIN control_evidence e \
             ON e.evidence_id = g.report_id WHERE g.report_id = ?"
        ),
        &[report_id.into()],
    )?
    .map(|r| row_json(&r))
    .ok_or_else(|| {
        ApiError::not_found("not_found", "no such governance report").with_details(json!({"report_id": report_id}))
    })
}

/// The retention pass: deletes every archived report whose retention
/// ended by `now_ms`, each in its own transaction with its
/// `evidence.delete` event; returns what it deleted.
pub fn delete_expired(db: &dyn Sql, ctx: &AdminCtx) -> Result<Vec<Value>, ApiError> {
    crate::schema::ensure(db, &ctx.now())?;
    let due = db.query(
        "SELECT report_id FROM control_governance_reports WHERE deleted_at IS NULL AND expires_at_ms IS NOT NULL \
         AND expires_at_ms <= ? ORDER BY expires_at_ms, report_id",
        &[SqlValue::Integer(ctx.now_ms)],
    )?;
    let mut deleted = Vec::new();
    for r in due {
        let id = r.string(0);
        let done = write_txn(db, |db| {
            let report = one(db, &id)?;
            if !report["deleted_at"].is_null() {
                return Ok(None);
            }
            let why = json!({
                "reason": "retention", "report_week": report["report_week"], "subject": report["subject"],
                "retention_days": report["retention_days"], "expires_at": report["expires_at"],
            });
            crate::evidence::delete(db, ctx, ACTOR, &id, why)?;
            db.exec(
                "UPDATE control_governance_reports SET deleted_at = ? WHERE report_id = ?",
                &[ctx.now().into(), (&id).into()],
            )?;
            Ok(Some(json!({
                "report_id": id, "report_week": report["report_week"], "subject": report["subject"],
                "sha256": report["sha256"], "retention_days": report["retention_days"], "expires_at": report["expires_at"],
            })))
        })?;
        deleted.extend(done);
    }
    Ok(deleted)
}

/// `GET governance/reports?tenant_id&report_week&subject&include_deleted
/// (false)&limit(≤500, 100)&offset`: newest week first, without bytes.
pub fn list(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let crate::admin::Page { limit, offset, filters } =
        crate::admin::page(query, &["tenant_id", "report_week", "subject", "include_deleted"], 100, 500)?;
    let include_deleted = match filters[3].as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad_request("invalid_request", "include_deleted must be true or false")
                .with_details(json!({"field": "include_deleted"})));
        }
    };
    let opt = |i: usize| -> SqlValue { filters[i].clone().into() };
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM control_governance_reports g LEFT JOIN control_evidence e ON e.evidence_id = g.report_id \
             WHERE (CAST(? AS TEXT) IS NULL OR g.tenant_id = ?) AND (CAST(? AS TEXT) IS NULL OR g.report_week = ?) \
             AND (CAST(? AS TEXT) IS NULL OR g.subject = ?) AND (? = 1 OR g.deleted_at IS NULL) \
             ORDER BY g.report_week DESC, g.subject LIMIT ? OFFSET ?"
        ),
        &[
            opt(0),
            opt(0),
            opt(1),
            opt(1),
            opt(2),
            opt(2),
            SqlValue::Integer(i64::from(include_deleted)),
            SqlValue::Integer(limit),
            SqlValue::Integer(offset),
        ],
    )?;
    Ok(json!({"ok": true, "reports": rows.iter().map(row_json).collect::<Vec<_>>()}))
}

/// `GET governance/reports/{report_id}?file=`: the report's row, summary
/// and documents (`files: {name: text}`); with `file` (`summary.json`,
/// `WEEKLY_STATUS.md`, `weekly_report.html`) that document alone, with its
/// content type. `410 report_deleted` once retention deleted it.
pub fn get(db: &dyn Sql, report_id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let report = one(db, report_id)?;
    if !report["deleted_at"].is_null() {
        return Err(ApiError::new(410, "report_deleted", "the report's retention ended and it was deleted")
            .with_details(json!({"report_id": report_id, "deleted_at": report["deleted_at"]})));
    }
    let content = db
        .query_one("SELECT content FROM control_evidence WHERE evidence_id = ?", &[report_id.into()])?
        .map(|r| r.string(0))
        .ok_or_else(|| ApiError::internal("an archived report's artifact is missing (run POST evidence/verify)"))?;
    let mut stored: Value = serde_json::from_str(&content)
        .map_err(|e| ApiError::internal(format!("an archived report is not JSON: {e}")))?;
    let file = query.iter().rev().find(|(k, _)| k == "file").map(|(_, v)| v.as_str());
    match file {
        None => Ok(
            json!({"ok": true, "report": report, "summary": stored["summary"].take(), "files": stored["files"].take()}),
        ),
        Some(name) => {
            let text = stored["files"].get(name).and_then(Value::as_str).ok_or_else(|| {
                let names: Vec<&String> = stored["files"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
                ApiError::bad_request("invalid_request", format!("no document named {name:?} in this report"))
                    .with_details(json!({"field": "file", "files": names}))
            })?;
            let content_type = match name.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("md") => "text/markdown; charset=utf-8",
                _ => "application/json",
            };
            Ok(
                json!({"ok": true, "report": report, "file": {"name": name, "content_type": content_type, "content": text}}),
            )
        }
    }
}
