//! The admin API (`/v1/admin/control/*`, reference §1.3, behind the admin
//! token — checked by the gateway): one router over the control-plane
//! operations, and what they share (the call context, audit events, paging).

use crate::audit::{self as audit_log, AuditEvent};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// Who is calling and with what: request id, clock, randomness.
pub struct AdminCtx<'a> {
    pub request_id: &'a str,
    pub now_ms: i64,
    /// Fills the buffer with random bytes.
    pub random: &'a dyn Fn(&mut [u8]),
    /// `tier_profiles` (the tiers document as JSON) and `default_tier`.
    pub tier_profiles: Option<&'a str>,
    pub default_tier: &'a str,
    /// `billing=disabled`: every tenant is `solo`.
    pub billing_disabled: bool,
    /// `memory_tenant_id`: the tenant whose scopes carry no prefix.
    pub default_tenant_id: &'a str,
    /// `alert_loopback_targets=true`: alert routes may target loopback
    /// `http://` receivers (local sidecars, tests).
    pub alert_loopback_targets: bool,
}

impl AdminCtx<'_> {
    pub fn now(&self) -> String {
        cairn_core::time_fmt::rfc3339_millis(self.now_ms)
    }

    pub fn uuid(&self) -> String {
        let mut b = [0u8; 16];
        (self.random)(&mut b);
        cairn_core::stable_id::uuid_v4(b)
    }
}

/// Records an admin mutation (actor `admin_token`, reference §7.4) in the
/// caller's transaction.
pub fn audit(
    db: &dyn Sql,
    ctx: &AdminCtx,
    action: &str,
    resource_type: &str,
    resource_id: &str,
    tenant_id: Option<&str>,
    details: Value,
) -> Result<(), ApiError> {
    let (event_id, now) = (ctx.uuid(), ctx.now());
    audit_log::record(
        db,
        &AuditEvent {
            event_id: &event_id,
            actor: "admin_token",
            action,
            resource_type,
            resource_id,
            tenant_id,
            request_id: Some(ctx.request_id),
            details: &details,
            created_at: &now,
        },
    )?;
    Ok(())
}

/// A stored JSON object column.
pub fn json_col(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_else(|| json!({}))
}

/// `limit` / `offset` and the named filters of a list query.
pub struct Page {
    pub limit: i64,
    pub offset: i64,
    pub filters: Vec<Option<String>>,
}

pub fn page(
    query: &[(String, String)],
    filters: &[&str],
    default_limit: i64,
    max_limit: i64,
) -> Result<Page, ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut r = Reader::new();
    let limit = query_int(&mut r, "limit", get("limit"), 1, max_limit).unwrap_or(default_limit);
    let offset = query_int(&mut r, "offset", get("offset"), 0, i64::MAX).unwrap_or(0);
    r.finish()?;
    let filters = filters.iter().map(|f| get(f).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)).collect();
    Ok(Page { limit, offset, filters })
}

/// Routes an admin request (`path` below `/v1/admin/control/`).
pub fn route(
    db: &dyn Sql,
    ctx: &AdminCtx,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &str,
) -> Result<Value, ApiError> {
    let body = || -> Result<Value, ApiError> {
        let text = if body.trim().is_empty() { "{}" } else { body };
        serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))
    };
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| cairn_core::encoding::decode_uri_component(s).unwrap_or_else(|| s.to_string()))
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    crate::schema::ensure(db, &ctx.now())?;
    match (method, seg.as_slice()) {
        ("POST", ["tenants"]) => crate::tenants::upsert_tenant(db, ctx, &body()?),
        ("GET", ["tenants"]) => crate::tenants::list_tenants(db, query),
        ("POST", ["tenants", t, "provision"]) => crate::provisioning::provision(db, ctx, t, &body()?),
        ("GET", ["tenants", t, "status"]) => crate::provisioning::status(db, ctx, t),
        ("POST", ["tenants", t, "upgrade"]) => crate::provisioning::upgrade(db, ctx, t, &body()?),
        ("POST", ["tenants", t, "teardown"]) => crate::provisioning::teardown(db, ctx, t),
        ("POST", ["projects"]) => crate::tenants::upsert_project(db, ctx, &body()?),
        ("POST", ["api-keys"]) => crate::api_keys::create(db, ctx, &body()?),
        ("GET", ["api-keys"]) => crate::api_keys::list(db, query),
        ("GET", ["api-keys", "stale"]) => crate::api_keys::stale(db, ctx, query),
        ("POST", ["api-keys", id, "revoke"]) => crate::api_keys::revoke(db, ctx, id),
        ("POST", ["api-keys", id, "rotate"]) => crate::api_keys::rotate(db, ctx, id, &body()?),
        ("PUT", ["tenant-quotas", t]) => crate::quotas::put(db, ctx, t, &body()?),
        ("GET", ["tenant-quotas", t]) => crate::quotas::get(db, t),
        ("DELETE", ["tenant-quotas", t]) => crate::quotas::delete(db, ctx, t),
        ("GET", ["audit-events"]) => audit_log::list(db, query),
        ("POST", ["audit-events", "verify"]) => audit_log::verify(db),
        ("POST", ["releases"]) => crate::releases::record(db, ctx, &body()?),
        ("GET", ["tiers"]) => crate::tiers::list(ctx),
        ("GET", ["dashboard", "tenant", t]) => crate::dashboard::tenant(db, ctx, t),
        ("GET", ["dashboard", "tenant", t, "timeseries"]) => crate::timeseries::tenant(db, ctx, t, query),
        ("GET", ["dashboard", "tenant", t, "key-usage"]) => crate::key_usage::tenant(db, ctx, t, query),
        ("GET", ["diagnostics", "tenant", t]) => crate::diagnostics::tenant(db, ctx, t, query),
        ("GET", ["slo", "tenant", t]) => crate::slo::tenant(db, ctx, t, query),
        ("POST", ["alerts", "routes"]) => crate::alerts::create_route(db, ctx, &body()?),
        ("GET", ["alerts", "routes"]) => crate::alerts::list_routes(db, query),
        ("POST", ["alerts", "routes", id, "status"]) => crate::alerts::set_status(db, ctx, id, &body()?),
        ("GET", ["alerts", "deliveries"]) => crate::alerts::list_deliveries(db, query),
        (_, ["tenants" | "projects" | "api-keys" | "tenant-quotas" | "audit-events" | "tiers" | "releases" | "slo" | "alerts", ..]) => Err(
            ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on /v1/admin/control/{path}")),
        ),
        _ => Err(ApiError::not_found("not_found", format!("no admin route for {method} /v1/admin/control/{path}"))),
    }
}
