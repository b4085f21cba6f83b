//! The provisioning verbs (seeds: tier model, hosted plan), idempotent and
//! safe to repeat: `provision {tier}`, `status`, `upgrade {tier}`,
//! `teardown` (the tenant's memory erased behind tombstones — its commit
//! chains stay and still verify, saying what was erased, when and by whom —
//! its keys revoked, the tenant suspended). A tier is
//! a row of the tier profiles (config/tiers.yaml) — provisioning records the
//! name; what it means (quotas, seats, caps) is read from the row when it
//! applies, so adding a tier adds no code. With `billing=disabled` every
//! tenant is `solo` (the self-host floor).

use crate::admin::{AdminCtx, audit};
use crate::tenants::require_tenant;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::{Value, json};

/// The self-host floor every tenant gets when billing is disabled.
pub const FLOOR_TIER: &str = "solo";

fn profiles(ctx: &AdminCtx) -> Value {
    ctx.tier_profiles.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_else(|| json!({}))
}

/// The profile row of `tier`, or `400 unknown_tier`.
fn profile(ctx: &AdminCtx, tier: &str) -> Result<Value, ApiError> {
    let doc = profiles(ctx);
    doc.get("tiers").and_then(|t| t.get(tier)).cloned().ok_or_else(|| {
        let known: Vec<String> =
            doc.get("tiers").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        ApiError::bad_request("unknown_tier", format!("tier '{tier}' is not in the tier profiles"))
            .with_details(json!({"tier": tier, "known": known}))
    })
}

/// The tier a request asks for (`solo` when billing is disabled).
fn requested_tier(ctx: &AdminCtx, body: &Value) -> Result<String, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tier = crate::tenants::id_req(&mut r, o, "tier", 64);
    r.finish()?;
    let tier = tier.expect("checked");
    profile(ctx, &tier)?;
    Ok(if ctx.billing_disabled { FLOOR_TIER.to_string() } else { tier })
}

/// `GET /v1/admin/control/tenants/:id/status`.
pub fn status(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str) -> Result<Value, ApiError> {
    let tenant = require_tenant(db, tenant_id)?;
    let row = db
        .query_one(
            "SELECT tier, provisioned_at, torn_down_at FROM control_tenants WHERE tenant_id = ?",
            &[tenant_id.into()],
        )?
        .ok_or_else(|| ApiError::internal("tenant vanished"))?;
    let tier = effective_tier(ctx, row.opt_string(0).as_deref());
    let keys = db
        .query_one(
            "SELECT count(*) FROM control_api_keys WHERE tenant_id = ? AND status = 'active'",
            &[tenant_id.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0);
    Ok(json!({
        "ok": true, "tenant_id": tenant_id, "status": tenant["status"],
        "provisioned": row.opt_string(1).is_some(), "provisioned_at": row.opt_string(1),
        "torn_down_at": row.opt_string(2), "tier": tier, "billing": if ctx.billing_disabled { "disabled" } else { "enabled" },
        "profile": profile(ctx, &tier).unwrap_or(Value::Null), "active_api_keys": keys,
    }))
}

/// A tenant's tier: its own, the default when it has none, `solo` when
/// billing is disabled.
pub fn effective_tier(ctx: &AdminCtx, own: Option<&str>) -> String {
    if ctx.billing_disabled {
        return FLOOR_TIER.into();
    }
    own.unwrap_or(ctx.default_tier).to_string()
}

/// `POST /v1/admin/control/tenants/:id/provision {tier}`: creates the
/// tenant on `tier` (or finds it already there: same answer); a tenant
/// provisioned on another tier is `409 tier_mismatch` (use upgrade).
pub fn provision(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, body: &Value) -> Result<Value, ApiError> {
    let tier = requested_tier(ctx, body)?;
    if tenant_id.is_empty() || tenant_id.chars().count() > 128 {
        return Err(ApiError::bad_request("invalid_tenant_id", "tenant id must be 1..128 characters"));
    }
    let now = ctx.now();
    write_txn(db, |db| {
        let existing =
            db.query_one("SELECT tier, provisioned_at FROM control_tenants WHERE tenant_id = ?", &[tenant_id.into()])?;
        match existing.as_ref().and_then(|r| r.opt_string(1).map(|_| r.opt_string(0))) {
            Some(current) => {
                let current = current.unwrap_or_else(|| ctx.default_tier.to_string());
                if current != tier {
                    return Err(ApiError::conflict(
                        "tier_mismatch",
                        "the tenant is provisioned on another tier; use upgrade",
                    )
                    .with_details(json!({"tenant_id": tenant_id, "tier": current, "requested": tier})));
                }
            }
            None => {
                db.exec(
                    "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier, provisioned_at) \
                     VALUES (?, 'active', '{}', ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET tier = excluded.tier, \
                     provisioned_at = excluded.provisioned_at, torn_down_at = NULL, updated_at = excluded.updated_at",
                    &[tenant_id.into(), (&now).into(), (&now).into(), (&tier).into(), (&now).into()],
                )?;
                audit(db, ctx, "tenant.provision", "tenant", tenant_id, Some(tenant_id), json!({"tier": tier}))?;
            }
        }
        status(db, ctx, tenant_id)
    })
}

/// `POST /v1/admin/control/tenants/:id/upgrade {tier}` (repeating it is a
/// no-op): `409 upgrade_evidence_missing` while the registry lacks evidence
/// the tier's `upgrade.requires_evidence` names (crate::upgrade_evidence).
pub fn upgrade(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, body: &Value) -> Result<Value, ApiError> {
    let tier = requested_tier(ctx, body)?;
    let mut r = Reader::new();
    let allow_store_change = r.bool_opt(Reader::root(body)?, "allow_store_change").unwrap_or(false);
    r.finish()?;
    let moved = check_store_change(db, ctx, tenant_id, &tier, allow_store_change)?;
    let now = ctx.now();
    write_txn(db, |db| {
        require_tenant(db, tenant_id)?;
        let current: Option<String> = db
            .query_one("SELECT tier FROM control_tenants WHERE tenant_id = ?", &[tenant_id.into()])?
            .and_then(|r| r.opt_string(0));
        let from = effective_tier(ctx, current.as_deref());
        if current.as_deref() != Some(tier.as_str()) {
            crate::upgrade_evidence::check(db, tenant_id, &from, &tier, &profile(ctx, &tier)?, ctx.now_ms)?;
            db.exec(
                "UPDATE control_tenants SET tier = ?, provisioned_at = coalesce(provisioned_at, ?), updated_at = ? WHERE tenant_id = ?",
                &[(&tier).into(), (&now).into(), (&now).into(), tenant_id.into()],
            )?;
            let mut details = json!({"from": from, "to": tier});
            if let Some(m) = &moved {
                details["store_change"] = m.clone();
            }
            audit(db, ctx, "tenant.upgrade", "tenant", tenant_id, Some(tenant_id), details)?;
        }
        status(db, ctx, tenant_id)
    })
}

/// An upgrade to a tier whose tenants' memories live in another store
/// (`resource_caps.store`) would leave the tenant's memories behind,
/// invisible: `409 tier_store_change_needs_migration` while it stores any,
/// unless the operator says they were copied (`allow_store_change: true`,
/// after `cairn job migrate-store`). Returns the change, for the audit
/// event, when the store changes.
fn check_store_change(
    db: &dyn Sql,
    ctx: &AdminCtx,
    tenant_id: &str,
    to_tier: &str,
    allowed: bool,
) -> Result<Option<Value>, ApiError> {
    let Some(store_of) = ctx.tier_store else { return Ok(None) };
    require_tenant(db, tenant_id)?;
    let from_tier = effective_tier(ctx, crate::tiers::stored_tier(db, tenant_id)?.as_deref());
    let name = |b: &Option<cairn_core::placement::Backend>| b.as_ref().map_or("home", |b| b.name());
    let (from, to) = (store_of(&from_tier)?, store_of(to_tier)?);
    if from == to {
        return Ok(None);
    }
    let data = ctx.tenant_data(db, tenant_id)?;
    cairn_memory::schema::ensure(data.db(), &ctx.now())?;
    let stored = cairn_memory::usage::tenant_bytes(data.db(), tenant_id, ctx.default_tenant_id)?;
    let change = json!({"from_store": name(&from), "to_store": name(&to), "stored_bytes": stored,
                        "allowed_by_operator": allowed});
    if stored > 0 && !allowed {
        return Err(ApiError::new(
            409,
            "tier_store_change_needs_migration",
            format!(
                "tier {to_tier} keeps its tenants' memories in a different store from tier {from_tier}: copy tenant \
                 {tenant_id}'s memories first (cairn job migrate-store), then upgrade with allow_store_change: true"
            ),
        )
        .with_details(change));
    }
    Ok(Some(change))
}

/// The scopes a teardown erased, with their counts.
#[derive(Default)]
struct Erased {
    scopes: Vec<Value>,
    nodes: i64,
    edges: i64,
}

/// Erases every scope of `tenant_id` in `db` (the store of its memories),
/// inside the caller's transaction.
fn erase_tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, now: &str) -> Result<Erased, ApiError> {
    cairn_memory::schema::ensure(db, now)?;
    let mut out = Erased::default();
    // A public scope may itself hold "::scope:": strip the exact prefix.
    let prefix = format!("tenant:{tenant_id}::scope:");
    for key in cairn_memory::erasure::tenant_scopes(db, tenant_id, ctx.default_tenant_id)? {
        let e = cairn_memory::erasure::erase_scope(db, &key, "admin_token", "tenant teardown", now)?;
        if let Some(commit) = e.commit_id {
            let public = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
            out.scopes.push(json!({"scope": public, "nodes": e.nodes, "edges": e.edges, "commit_id": commit}));
            out.nodes += e.nodes;
            out.edges += e.edges;
        }
    }
    Ok(out)
}

/// `POST /v1/admin/control/tenants/:id/teardown`. A tenant whose tier
/// places its memories apart from the home store has them erased there
/// first, in that store's own transaction; then its keys are revoked and
/// it is suspended at home. Interrupted between the two, a repeated
/// teardown finishes the job (the erasure is idempotent).
pub fn teardown(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str) -> Result<Value, ApiError> {
    let now = ctx.now();
    require_tenant(db, tenant_id)?;
    let data = ctx.tenant_data(db, tenant_id)?;
    let erased_apart = match &data {
        crate::admin::TenantData::Apart(store) => {
            Some(write_txn(store.as_ref(), |d| erase_tenant(d, ctx, tenant_id, &now))?)
        }
        crate::admin::TenantData::Home(_) => None,
    };
    write_txn(db, |db| {
        require_tenant(db, tenant_id)?;
        let Erased { scopes, nodes, edges } = match erased_apart {
            Some(e) => e,
            None => erase_tenant(db, ctx, tenant_id, &now)?,
        };
        let first = db
            .query_one("SELECT torn_down_at FROM control_tenants WHERE tenant_id = ?", &[tenant_id.into()])?
            .is_some_and(|r| r.is_null(0));
        let revoked = db.query(
            "UPDATE control_api_keys SET status = 'revoked', revoked_at = ? WHERE tenant_id = ? \
             AND (status = 'active' OR revoked_at > ?) RETURNING id",
            &[(&now).into(), tenant_id.into(), (&now).into()],
        )?;
        db.exec(
            "UPDATE control_tenants SET status = 'suspended', torn_down_at = coalesce(torn_down_at, ?), updated_at = ? \
             WHERE tenant_id = ?",
            &[(&now).into(), (&now).into(), tenant_id.into()],
        )?;
        if first || !scopes.is_empty() || !revoked.is_empty() {
            let details =
                json!({"scopes": scopes.len(), "nodes": nodes, "edges": edges, "revoked_keys": revoked.len()});
            audit(db, ctx, "tenant.teardown", "tenant", tenant_id, Some(tenant_id), details)?;
        }
        let mut out = status(db, ctx, tenant_id)?;
        out["erased"] = json!({"scopes": scopes, "nodes": nodes, "edges": edges, "revoked_keys": revoked.len()});
        Ok(out)
    })
}
