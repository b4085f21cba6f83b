//! The evidence registry (issue 18, step 1): governance artifacts — weekly
//! reports, release bundles, drill results, rehearsals, consistency runs —
//! kept with their bytes in `control_evidence`, each registered by an
//! audit event (`evidence.register`) whose details carry its kind, tenant,
//! period, producer, sha256 and size. The registry is thereby hash-chained
//! through the audit log: changing an artifact's bytes, its metadata or its
//! event no longer verifies.
//!
//! Routes below `/v1/admin/control/`: `POST evidence`, `GET evidence`
//! (newest first, without bytes), `GET evidence/{evidence_id}` (with
//! bytes), `POST evidence/verify`.

use crate::admin::{AdminCtx, audit_by};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Row, Sql, SqlValue, read_txn, write_txn};
use serde_json::{Value, json};

/// Largest artifact accepted, in bytes of its text.
pub const MAX_CONTENT_BYTES: usize = 4 << 20;

const COLUMNS: &str =
    "evidence_id, kind, tenant_id, period_start, period_end, producer, content_type, sha256, size_bytes, created_at";

/// The registered facts of an artifact, as its audit event records them.
fn facts(r: &Row) -> Value {
    json!({
        "evidence_id": r.string(0), "kind": r.string(1), "tenant_id": r.opt_string(2),
        "period_start": r.opt_string(3), "period_end": r.opt_string(4), "producer": r.string(5),
        "content_type": r.string(6), "sha256": r.string(7), "size_bytes": r.int(8), "created_at": r.string(9),
    })
}

/// `kind`: `^[a-z0-9][a-z0-9_.-]{0,63}$` (e.g. `weekly_report`, `replay_drill`).
fn is_kind(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-'))
}

/// Unix ms of an RFC 3339 UTC time with or without milliseconds.
fn utc_millis(t: &str) -> Option<i64> {
    cairn_core::time_fmt::parse_rfc3339_millis(t).or_else(|| {
        let whole = t.strip_suffix('Z').filter(|w| w.len() == 19)?;
        cairn_core::time_fmt::parse_rfc3339_millis(&format!("{whole}.000Z"))
    })
}

/// `POST evidence {kind, content, content_type? ("application/json"),
/// tenant_id?, period_start?, period_end? (RFC 3339), producer?
/// ("admin_token")}`: stores the artifact and its registration event in
/// one transaction.
pub fn register(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let kind = crate::tenants::id_req(&mut r, o, "kind", 64);
    let content = r.str_req(o, "content");
    let content_type = r.str_opt_len(o, "content_type", 1, 128).unwrap_or_else(|| "application/json".into());
    let tenant_id = r.str_opt_len(o, "tenant_id", 1, 64);
    let period_start = r.str_opt_len(o, "period_start", 1, 64);
    let period_end = r.str_opt_len(o, "period_end", 1, 64);
    let producer = r.str_opt_len(o, "producer", 1, 128).unwrap_or_else(|| "admin_token".into());
    if kind.as_deref().is_some_and(|k| !is_kind(k)) {
        r.issue("kind", "kind must match ^[a-z0-9][a-z0-9_.-]{0,63}$");
    }
    if tenant_id.as_deref().is_some_and(|t| !cairn_core::tenant_scope::is_valid_tenant_id(t)) {
        r.issue("tenant_id", "tenant_id must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$");
    }
    // Stored in Cairn's one time form (UTC, milliseconds).
    let mut times = [None, None];
    for (i, (key, given)) in [("period_start", &period_start), ("period_end", &period_end)].into_iter().enumerate() {
        times[i] = given.as_deref().and_then(utc_millis);
        if given.is_some() && times[i].is_none() {
            r.issue(key, "must be an RFC 3339 UTC time (2027-01-04T00:00:00Z or …00.000Z)");
        }
    }
    if let [Some(a), Some(b)] = times
        && a > b
    {
        r.issue("period_end", "period_end is before period_start");
    }
    let [period_start, period_end] = times.map(|t| t.map(cairn_core::time_fmt::rfc3339_millis));
    if content.as_ref().is_some_and(|c| c.len() > MAX_CONTENT_BYTES) {
        r.issue("content", format!("content must be at most {MAX_CONTENT_BYTES} bytes"));
    }
    r.finish()?;
    let (kind, content) = (kind.expect("checked"), content.expect("checked"));
    let artifact = Artifact {
        kind: &kind,
        tenant_id: tenant_id.as_deref(),
        period_start,
        period_end,
        producer: &producer,
        content_type: &content_type,
        content: &content,
    };
    write_txn(db, |db| {
        crate::schema::ensure(db, &ctx.now())?;
        Ok(json!({"ok": true, "evidence": insert(db, ctx, "admin_token", &ctx.uuid(), &artifact)?}))
    })
}

/// An artifact to register (times already in Cairn's form, UTC with
/// milliseconds).
pub struct Artifact<'a> {
    pub kind: &'a str,
    pub tenant_id: Option<&'a str>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub producer: &'a str,
    pub content_type: &'a str,
    pub content: &'a str,
}

/// Stores `a` as `evidence_id` and its `evidence.register` event (by
/// `actor`) in the caller's transaction; returns the registered facts.
pub fn insert(db: &dyn Sql, ctx: &AdminCtx, actor: &str, evidence_id: &str, a: &Artifact) -> Result<Value, ApiError> {
    let now = ctx.now();
    db.exec(
        &format!("INSERT INTO control_evidence ({COLUMNS}, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            evidence_id.into(),
            a.kind.into(),
            a.tenant_id.into(),
            a.period_start.clone().into(),
            a.period_end.clone().into(),
            a.producer.into(),
            a.content_type.into(),
            cairn_core::digest::sha256_hex(a.content).into(),
            SqlValue::Integer(a.content.len() as i64),
            (&now).into(),
            a.content.into(),
        ],
    )?;
    let registered = facts_of(db, evidence_id)?.ok_or_else(|| ApiError::internal("evidence vanished"))?;
    audit_by(db, ctx, actor, "evidence.register", "evidence", evidence_id, a.tenant_id, registered.clone())?;
    Ok(registered)
}

fn facts_of(db: &dyn Sql, evidence_id: &str) -> Result<Option<Value>, ApiError> {
    Ok(db
        .query_one(&format!("SELECT {COLUMNS} FROM control_evidence WHERE evidence_id = ?"), &[evidence_id.into()])?
        .map(|r| facts(&r)))
}

/// Deletes an artifact (a retention pass) in the caller's transaction and
/// records it: an `evidence.delete` event (by `actor`) carrying the facts
/// it was registered with and `why`. `None` when there is no such artifact.
pub fn delete(
    db: &dyn Sql,
    ctx: &AdminCtx,
    actor: &str,
    evidence_id: &str,
    why: Value,
) -> Result<Option<Value>, ApiError> {
    let Some(registered) = facts_of(db, evidence_id)? else { return Ok(None) };
    db.exec("DELETE FROM control_evidence WHERE evidence_id = ?", &[evidence_id.into()])?;
    let tenant = registered["tenant_id"].as_str().map(str::to_string);
    let details = json!({"evidence": registered, "why": why});
    audit_by(db, ctx, actor, "evidence.delete", "evidence", evidence_id, tenant.as_deref(), details.clone())?;
    Ok(Some(details))
}

/// Whose an artifact must be to count (an upgrade requirement, a
/// compliance control).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covers {
    /// Registered for the tenant.
    Tenant,
    /// Registered for no tenant (deployment-wide: a shared report, a
    /// release bundle).
    Deployment,
    /// Either.
    Either,
}

impl Covers {
    /// `tenant` | `deployment` | `either` (absent: `default`).
    pub fn parse(word: Option<&str>, default: Covers) -> Option<Covers> {
        match word {
            None => Some(default),
            Some("tenant") => Some(Covers::Tenant),
            Some("deployment") => Some(Covers::Deployment),
            Some("either") => Some(Covers::Either),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Covers::Tenant => "tenant",
            Covers::Deployment => "deployment",
            Covers::Either => "either",
        }
    }

    /// A condition on a `tenant_id` column, and its parameters.
    pub fn sql(self, column: &str, tenant_id: &str) -> (String, Vec<SqlValue>) {
        match self {
            Covers::Tenant => (format!("{column} = ?"), vec![tenant_id.into()]),
            Covers::Deployment => (format!("{column} IS NULL"), vec![]),
            Covers::Either => (format!("({column} = ? OR {column} IS NULL)"), vec![tenant_id.into()]),
        }
    }
}

/// Whether something recorded at `created_at` (RFC 3339) is at most
/// `max_age_days` old at `now_ms` (`None`: any age counts).
pub fn fresh(created_at: &str, max_age_days: Option<f64>, now_ms: i64) -> bool {
    match max_age_days {
        None => true,
        Some(d) => cairn_core::time_fmt::parse_rfc3339_millis(created_at)
            .is_some_and(|t| t >= now_ms - (d * 86_400_000.0) as i64),
    }
}

/// The newest artifact of `kind` that `covers` counts for `tenant_id`: its
/// facts, and its bytes when `with_content`.
pub fn newest(
    db: &dyn Sql,
    kind: &str,
    covers: Covers,
    tenant_id: &str,
    with_content: bool,
) -> Result<Option<Value>, ApiError> {
    let (cond, mut params) = covers.sql("tenant_id", tenant_id);
    params.insert(0, kind.into());
    let content = if with_content { ", content" } else { "" };
    Ok(db
        .query_one(
            &format!(
                "SELECT {COLUMNS}{content} FROM control_evidence WHERE kind = ? AND {cond} \
                 ORDER BY created_at DESC, evidence_id DESC LIMIT 1"
            ),
            &params,
        )?
        .map(|r| {
            let mut f = facts(&r);
            if with_content {
                f["content"] = json!(r.string(10));
            }
            f
        }))
}

/// Largest export, in artifacts (`evidence-export`).
pub const MAX_EXPORT: i64 = 10_000;

/// What a tenant's evidence bundle holds, read in one snapshot: every
/// artifact registered for the tenant or for no tenant (deployment-wide)
/// between `from` and `to` (RFC 3339, either open), with its bytes, and the
/// registry's verdict at that moment. Request: `{tenant_id, from?, to?}`.
pub fn export(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let tenant_id = crate::tenants::id_req(&mut r, o, "tenant_id", 64);
    let bounds = [r.str_opt_len(o, "from", 1, 64), r.str_opt_len(o, "to", 1, 64)];
    let mut times = [None, None];
    for (i, key) in ["from", "to"].into_iter().enumerate() {
        times[i] = bounds[i].as_deref().and_then(utc_millis).map(cairn_core::time_fmt::rfc3339_millis);
        if bounds[i].is_some() && times[i].is_none() {
            r.issue(key, "must be an RFC 3339 UTC time (2027-01-04T00:00:00Z or …00.000Z)");
        }
    }
    r.finish()?;
    let tenant_id = tenant_id.expect("checked");
    crate::schema::ensure(db, &ctx.now())?;
    let [from, to] = times;
    read_txn(db, |db| {
        let (cond, mut params) = Covers::Either.sql("tenant_id", &tenant_id);
        params.extend([from.clone().into(), from.clone().into(), to.clone().into(), to.clone().into()]);
        params.push(SqlValue::Integer(MAX_EXPORT + 1));
        let rows = db.query(
            &format!(
                "SELECT {COLUMNS}, content FROM control_evidence WHERE {cond} \
                 AND (CAST(? AS TEXT) IS NULL OR created_at >= ?) AND (CAST(? AS TEXT) IS NULL OR created_at < ?) \
                 ORDER BY created_at, evidence_id LIMIT ?"
            ),
            &params,
        )?;
        if rows.len() as i64 > MAX_EXPORT {
            return Err(ApiError::bad_request(
                "export_too_large",
                format!("more than {MAX_EXPORT} artifacts in the period: export a shorter one"),
            ));
        }
        let artifacts: Vec<Value> = rows
            .iter()
            .map(|row| {
                let mut f = facts(row);
                f["content"] = json!(row.string(10));
                f
            })
            .collect();
        let verified = verify_rows(db)?;
        Ok(json!({
            "tenant_id": tenant_id, "from": from, "to": to, "exported_at": ctx.now(),
            "artifacts": artifacts, "registry": verified,
        }))
    })
}

/// `GET evidence?kind&tenant_id&limit(≤500, 100)&offset`, newest first.
pub fn list(db: &dyn Sql, ctx: &AdminCtx, query: &[(String, String)]) -> Result<Value, ApiError> {
    let page = crate::admin::page(query, &["kind", "tenant_id"], 100, 500)?;
    crate::schema::ensure(db, &ctx.now())?;
    let (cond, params) = page.conditions(&["kind", "tenant_id"]);
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM control_evidence WHERE {cond} ORDER BY created_at DESC, evidence_id DESC LIMIT ? OFFSET ?"
        ),
        &params,
    )?;
    Ok(json!({"ok": true, "evidence": rows.iter().map(facts).collect::<Vec<_>>()}))
}

/// `GET evidence/{evidence_id}`: the facts and the bytes.
pub fn get(db: &dyn Sql, ctx: &AdminCtx, evidence_id: &str) -> Result<Value, ApiError> {
    crate::schema::ensure(db, &ctx.now())?;
    let row = db
        .query_one(
            &format!("SELECT {COLUMNS}, content FROM control_evidence WHERE evidence_id = ?"),
            &[evidence_id.into()],
        )?
        .ok_or_else(|| {
            ApiError::not_found("not_found", "no such evidence").with_details(json!({"evidence_id": evidence_id}))
        })?;
    let mut out = facts(&row);
    out["content"] = json!(row.string(10));
    Ok(json!({"ok": true, "evidence": out}))
}

/// `POST evidence/verify`: the audit chain verifies, and every artifact's
/// bytes hash to its recorded sha256 and size, and its facts equal those
/// its `evidence.register` event recorded, and every registered artifact
/// is still there unless an `evidence.delete` event recorded its deletion.
/// Names every artifact that fails and why (`content_changed`,
/// `facts_changed`, `registration_missing`, `content_missing`).
pub fn verify(db: &dyn Sql, ctx: &AdminCtx) -> Result<Value, ApiError> {
    crate::schema::ensure(db, &ctx.now())?;
    read_txn(db, verify_rows)
}

/// [`verify`] inside the caller's read transaction.
fn verify_rows(db: &dyn Sql) -> Result<Value, ApiError> {
    let chain = crate::audit::verify_in_snapshot(db)?;
    let mut events: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    let mut deleted = std::collections::HashSet::new();
    for r in db.query(
        "SELECT resource_id, details, action FROM control_audit_events \
             WHERE action IN ('evidence.register', 'evidence.delete') ORDER BY seq",
        &[],
    )? {
        if r.text(2) == Some("evidence.delete") {
            deleted.insert(r.string(0));
        } else {
            events.insert(r.string(0), serde_json::from_str(r.text(1).unwrap_or("null")).unwrap_or(Value::Null));
        }
    }
    let rows =
        db.query(&format!("SELECT {COLUMNS}, content FROM control_evidence ORDER BY created_at, evidence_id"), &[])?;
    let mut failures = Vec::new();
    // Registered, not recorded as deleted, and gone: removed behind the
    // registry's back.
    let present: std::collections::HashSet<String> = rows.iter().map(|r| r.string(0)).collect();
    let mut missing: Vec<&String> =
        events.keys().filter(|id| !present.contains(*id) && !deleted.contains(*id)).collect();
    missing.sort();
    for id in missing {
        failures.push(json!({"evidence_id": id, "kind": events[id]["kind"], "reason": "content_missing"}));
    }
    for row in &rows {
        let f = facts(row);
        let content = row.string(10);
        let reason = if cairn_core::digest::sha256_hex(&content) != f["sha256"]
            || content.len() as i64 != f["size_bytes"].as_i64().unwrap_or(-1)
        {
            Some("content_changed")
        } else {
            match events.get(&row.string(0)) {
                None => Some("registration_missing"),
                Some(e) if *e != f => Some("facts_changed"),
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            failures.push(json!({"evidence_id": f["evidence_id"], "kind": f["kind"], "reason": reason}));
        }
    }
    let chain_ok = chain["ok"] == true;
    Ok(json!({
        "ok": chain_ok && failures.is_empty(),
        "checked": rows.len(),
        "deleted": deleted.len(),
        "failures": failures,
        "audit_chain": chain,
    }))
}
