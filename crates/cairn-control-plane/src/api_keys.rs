//! API keys (reference §1.3, §7.1): `ak_live_` + base64url(24 random bytes),
//! stored only as sha256 with a 14-character prefix, plaintext returned once.
//!
//! Better than the reference: rotation takes `grace_seconds` (default 0,
//! at most 7 days) — the old key keeps working until then (its `revoked_at`
//! is that future instant) — and nothing is cached, so a revocation holds
//! for the very next request on every instance.

use crate::admin::{AdminCtx, Page, audit, json_col, page};
use crate::tenants::{metadata, require_tenant};
use cairn_core::ApiError;
use cairn_core::digest::sha256_hex;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Row, Sql, SqlValue, write_txn};
use serde_json::{Value, json};

const KEY_COLUMNS: &str =
    "id, tenant_id, project_id, label, role, agent_id, team_id, key_prefix, status, metadata, created_at, revoked_at";
const PREFIX_LEN: usize = 14;
const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

fn key_json(r: &Row) -> Value {
    json!({
        "id": r.string(0), "tenant_id": r.string(1), "project_id": r.opt_string(2), "label": r.opt_string(3),
        "role": r.opt_string(4), "agent_id": r.opt_string(5), "team_id": r.opt_string(6),
        "key_prefix": r.string(7), "status": r.string(8), "metadata": json_col(r.text(9)),
        "created_at": r.string(10), "revoked_at": r.opt_string(11),
    })
}

fn get_key(db: &dyn Sql, id: &str) -> Result<Option<Value>, ApiError> {
    Ok(db
        .query_one(&format!("SELECT {KEY_COLUMNS} FROM control_api_keys WHERE id = ?"), &[id.into()])?
        .map(|r| key_json(&r)))
}

/// A new key's plaintext.
fn new_key(ctx: &AdminCtx) -> String {
    let mut b = [0u8; 24];
    (ctx.random)(&mut b);
    format!("ak_live_{}", cairn_core::encoding::base64url_encode(&b))
}

struct NewKey<'a> {
    tenant_id: &'a str,
    project_id: Option<&'a str>,
    label: Option<&'a str>,
    role: Option<&'a str>,
    agent_id: Option<&'a str>,
    team_id: Option<&'a str>,
    metadata: &'a Value,
}

/// Inserts a key; returns (id, plaintext).
fn insert_key(db: &dyn Sql, ctx: &AdminCtx, k: &NewKey) -> Result<(String, String), ApiError> {
    let (id, key) = (ctx.uuid(), new_key(ctx));
    db.exec(
        "INSERT INTO control_api_keys (id, tenant_id, project_id, label, role, agent_id, team_id, key_hash, key_prefix, \
         status, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
        &[
            (&id).into(),
            k.tenant_id.into(),
            k.project_id.into(),
            k.label.into(),
            k.role.into(),
            k.agent_id.into(),
            k.team_id.into(),
            sha256_hex(&key).into(),
            key[..PREFIX_LEN].into(),
            k.metadata.to_string().into(),
            ctx.now().into(),
        ],
    )?;
    Ok((id, key))
}

fn with_plaintext(mut row: Value, key: &str) -> Value {
    row["api_key"] = json!(key);
    row
}

/// `POST /v1/admin/control/api-keys`.
pub fn create(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant_id = crate::tenants::id_req(&mut r, o, "tenant_id", 128);
    let project_id = r.str_opt_len(o, "project_id", 1, 128);
    let label = r.str_opt_len(o, "label", 0, 256);
    let role = r.str_opt_len(o, "role", 0, 128);
    let agent_id = r.str_opt_len(o, "agent_id", 1, 128);
    let team_id = r.str_opt_len(o, "team_id", 1, 128);
    let meta = Value::Object(metadata(&mut r, o));
    r.finish()?;
    let tenant_id = tenant_id.expect("checked");
    write_txn(db, |db| {
        require_tenant(db, &tenant_id)?;
        if let Some(p) = &project_id {
            let owner = db
                .query_one("SELECT tenant_id FROM control_projects WHERE project_id = ?", &[p.into()])?
                .map(|r| r.string(0));
            if owner.as_deref() != Some(tenant_id.as_str()) {
                return Err(ApiError::not_found("not_found", "project not found for this tenant")
                    .with_details(json!({"project_id": p, "tenant_id": tenant_id})));
            }
        }
        check_seats(db, ctx, &tenant_id)?;
        let k = NewKey {
            tenant_id: &tenant_id,
            project_id: project_id.as_deref(),
            label: label.as_deref(),
            role: role.as_deref(),
            agent_id: agent_id.as_deref(),
            team_id: team_id.as_deref(),
            metadata: &meta,
        };
        let (id, key) = insert_key(db, ctx, &k)?;
        audit(
            db,
            ctx,
            "api_key.create",
            "api_key",
            &id,
            Some(&tenant_id),
            json!({"project_id": project_id, "key_prefix": &key[..PREFIX_LEN]}),
        )?;
        let row = get_key(db, &id)?.ok_or_else(|| ApiError::internal("api key vanished"))?;
        Ok(json!({"ok": true, "key": with_plaintext(row, &key)}))
    })
}

/// Seats are active API keys: the tier's `resource_caps.seats` bounds them
/// (`409 seat_limit_reached`; rotation swaps one key for another).
fn check_seats(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str) -> Result<(), ApiError> {
    let tier = crate::provisioning::effective_tier(ctx, crate::tiers::stored_tier(db, tenant_id)?.as_deref());
    let Some(seats) = crate::tiers::resource_cap(ctx, &tier, "seats").and_then(|v| v.as_i64()).filter(|s| *s > 0)
    else {
        return Ok(());
    };
    let active = db
        .query_one(
            "SELECT count(*) FROM control_api_keys WHERE tenant_id = ? AND status = 'active'",
            &[tenant_id.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0);
    if active >= seats {
        return Err(ApiError::conflict("seat_limit_reached", "the tenant's tier allows no more active API keys")
            .with_details(json!({"tenant_id": tenant_id, "seats": seats, "active_keys": active, "tier": tier})));
    }
    Ok(())
}

/// `GET /v1/admin/control/api-keys?tenant_id&project_id&status&limit&offset`.
pub fn list(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let Page { limit, offset, filters } = page(query, &["tenant_id", "project_id", "status"], 100, 500)?;
    let mut params: Vec<SqlValue> = Vec::new();
    for f in &filters {
        params.push(f.clone().into());
        params.push(f.clone().into());
    }
    params.push(SqlValue::Integer(limit));
    params.push(SqlValue::Integer(offset));
    let rows = db.query(
        &format!(
            "SELECT {KEY_COLUMNS} FROM control_api_keys WHERE (CAST(? AS TEXT) IS NULL OR tenant_id = ?) \
             AND (CAST(? AS TEXT) IS NULL OR project_id = ?) AND (CAST(? AS TEXT) IS NULL OR status = ?) \
             ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        ),
        &params,
    )?;
    Ok(json!({"ok": true, "keys": rows.iter().map(key_json).collect::<Vec<_>>()}))
}

/// `POST /v1/admin/control/api-keys/:id/revoke` (revoking again re-stamps
/// `revoked_at`).
pub fn revoke(db: &dyn Sql, ctx: &AdminCtx, id: &str) -> Result<Value, ApiError> {
    write_txn(db, |db| {
        let Some(row) = get_key(db, id)? else {
            return Err(ApiError::not_found("not_found", "api key not found"));
        };
        db.exec(
            "UPDATE control_api_keys SET status = 'revoked', revoked_at = ? WHERE id = ?",
            &[ctx.now().into(), id.into()],
        )?;
        let tenant = row["tenant_id"].as_str().map(str::to_string);
        audit(db, ctx, "api_key.revoke", "api_key", id, tenant.as_deref(), json!({"key_prefix": row["key_prefix"]}))?;
        Ok(json!({"ok": true, "key": get_key(db, id)?}))
    })
}

/// `POST /v1/admin/control/api-keys/:id/rotate {label?, metadata?,
/// grace_seconds?}`: a new key with the old one's identity; the old one is
/// revoked now, or at the end of the grace window.
pub fn rotate(db: &dyn Sql, ctx: &AdminCtx, id: &str, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let label = r.str_opt_len(o, "label", 0, 256);
    let overrides = metadata(&mut r, o);
    let grace = r.int_opt(o, "grace_seconds", 0, MAX_GRACE_SECONDS).unwrap_or(0);
    r.finish()?;
    write_txn(db, |db| {
        let old = db.query_one(
            &format!("SELECT {KEY_COLUMNS} FROM control_api_keys WHERE id = ? AND status = 'active'"),
            &[id.into()],
        )?;
        let Some(old) = old.map(|r| key_json(&r)) else {
            return Err(ApiError::not_found("not_found", "active api key not found"));
        };
        let s = |k: &str| old[k].as_str().map(str::to_string);
        let mut meta = old["metadata"].as_object().cloned().unwrap_or_default();
        meta.extend(overrides.clone());
        meta.insert("rotated_from_key_id".into(), json!(id));
        meta.insert("rotated_at".into(), json!(ctx.now()));
        let meta = Value::Object(meta);
        let (tenant, project, old_label) = (s("tenant_id").unwrap_or_default(), s("project_id"), s("label"));
        let (role, agent, team) = (s("role"), s("agent_id"), s("team_id"));
        let k = NewKey {
            tenant_id: &tenant,
            project_id: project.as_deref(),
            label: label.as_deref().or(old_label.as_deref()),
            role: role.as_deref(),
            agent_id: agent.as_deref(),
            team_id: team.as_deref(),
            metadata: &meta,
        };
        let (new_id, key) = insert_key(db, ctx, &k)?;
        let revoked_at = cairn_core::time_fmt::rfc3339_millis(ctx.now_ms + grace * 1000);
        db.exec(
            "UPDATE control_api_keys SET status = 'revoked', revoked_at = ? WHERE id = ?",
            &[revoked_at.into(), id.into()],
        )?;
        audit(
            db,
            ctx,
            "api_key.rotate",
            "api_key",
            &new_id,
            Some(&tenant),
            json!({"revoked_key_id": id, "key_prefix": &key[..PREFIX_LEN], "grace_seconds": grace}),
        )?;
        let rotated = get_key(db, &new_id)?.ok_or_else(|| ApiError::internal("api key vanished"))?;
        Ok(json!({"ok": true, "key": {"rotated": rotated, "revoked": get_key(db, id)?, "api_key": key}}))
    })
}

/// `GET /v1/admin/control/api-keys/stale?max_age_days(30)&warn_age_days(21)&rotation_window_days(30)&limit(200)`.
pub fn stale(db: &dyn Sql, ctx: &AdminCtx, query: &[(String, String)]) -> Result<Value, ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut r = Reader::new();
    let max_age =
        cairn_core::request_reader::query_int(&mut r, "max_age_days", get("max_age_days"), 1, 3650).unwrap_or(30);
    let warn_age =
        cairn_core::request_reader::query_int(&mut r, "warn_age_days", get("warn_age_days"), 0, 3650).unwrap_or(21);
    let window =
        cairn_core::request_reader::query_int(&mut r, "rotation_window_days", get("rotation_window_days"), 1, 3650)
            .unwrap_or(30);
    let limit = cairn_core::request_reader::query_int(&mut r, "limit", get("limit"), 1, 1000).unwrap_or(200);
    r.finish()?;
    let day = 86_400_000i64;
    let at = |days: i64| cairn_core::time_fmt::rfc3339_millis(ctx.now_ms - days * day);
    let (stale_before, warn_before, window_start) = (at(max_age), at(warn_age), at(window));
    let sample = |lo: Option<&str>, hi: &str| -> Result<(i64, Vec<Value>), ApiError> {
        let cond = "status = 'active' AND created_at <= ? AND (CAST(? AS TEXT) IS NULL OR created_at > ?)";
        let params: Vec<SqlValue> = vec![hi.into(), lo.into(), lo.into()];
        let count = db
            .query_one(&format!("SELECT count(*) FROM control_api_keys WHERE {cond}"), &params)?
            .map(|r| r.int(0))
            .unwrap_or(0);
        let mut p = params.clone();
        p.push(SqlValue::Integer(limit));
        let rows = db.query(
            &format!(
                "SELECT id, tenant_id, project_id, label, key_prefix, created_at FROM control_api_keys WHERE {cond} \
                 ORDER BY created_at ASC LIMIT ?"
            ),
            &p,
        )?;
        let list = rows
            .iter()
            .map(|r| {
                let age = cairn_core::time_fmt::parse_rfc3339_millis(&r.string(5))
                    .map(|t| (ctx.now_ms - t) / day)
                    .unwrap_or(0);
                json!({"id": r.string(0), "tenant_id": r.string(1), "project_id": r.opt_string(2), "label": r.opt_string(3),
                       "key_prefix": r.string(4), "created_at": r.string(5), "age_days": age})
            })
            .collect();
        Ok((count, list))
    };
    let (stale_n, stale_sample) = sample(None, &stale_before)?;
    let (warn_n, warn_sample) = sample(Some(&stale_before), &warn_before)?;
    let active = db.query(
        "SELECT tenant_id, count(*), min(created_at), max(created_at) FROM control_api_keys WHERE status = 'active' \
         GROUP BY tenant_id ORDER BY tenant_id",
        &[],
    )?;
    let rotations = db.query(
        "SELECT tenant_id, count(*) FROM control_audit_events WHERE action = 'api_key.rotate' AND created_at >= ? \
         AND tenant_id IS NOT NULL GROUP BY tenant_id ORDER BY tenant_id",
        &[window_start.into()],
    )?;
    let rotated: std::collections::HashSet<String> = rotations.iter().map(|r| r.string(0)).collect();
    Ok(json!({
        "ok": true, "checked_at": ctx.now(),
        "thresholds": {"max_age_days": max_age, "warn_age_days": warn_age, "rotation_window_days": window},
        "stale": {"count": stale_n, "sample": stale_sample},
        "warning_window": {"count": warn_n, "sample": warn_sample},
        "active_by_tenant": active.iter().map(|r| json!({"tenant_id": r.string(0), "active_key_count": r.int(1),
            "oldest_active_key_at": r.string(2), "newest_active_key_at": r.string(3)})).collect::<Vec<_>>(),
        "recent_rotations_by_tenant": rotations.iter().map(|r| json!({"tenant_id": r.string(0), "recent_rotation_count": r.int(1)})).collect::<Vec<_>>(),
        "tenants_without_recent_rotation": active.iter().map(|r| r.string(0)).filter(|t| !rotated.contains(t)).collect::<Vec<_>>(),
    }))
}

/// Who a presented key speaks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant_id: String,
    pub agent_id: Option<String>,
    pub team_id: Option<String>,
    pub role: Option<String>,
    pub key_prefix: String,
}

/// Resolves a presented key: active (or revoked with its grace window still
/// open), of an active tenant. Read on every request, never cached.
pub fn resolve(db: &dyn Sql, key: &str, now_ms: i64) -> Result<Option<Principal>, ApiError> {
    let now = cairn_core::time_fmt::rfc3339_millis(now_ms);
    Ok(db
        .query_one(
            "SELECT k.tenant_id, k.agent_id, k.team_id, k.role, k.key_prefix FROM control_api_keys k \
             JOIN control_tenants t ON t.tenant_id = k.tenant_id AND t.status = 'active' \
             WHERE k.key_hash = ? AND (k.status = 'active' OR (k.status = 'revoked' AND k.revoked_at > ?))",
            &[sha256_hex(key).into(), now.into()],
        )?
        .map(|r| Principal {
            tenant_id: r.string(0),
            agent_id: r.opt_string(1),
            team_id: r.opt_string(2),
            role: r.opt_string(3),
            key_prefix: r.string(4),
        }))
}
