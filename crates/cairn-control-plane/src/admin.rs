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
    /// Opens the store of a tenant's memories when its tier places it away
    /// from the home store (`crate::placement`); `None`: everything is home.
    pub tenant_store: Option<TenantStoreFn<'a>>,
    /// The store a tier places its tenants' memories in (`Ok(None)`: the
    /// home store); `None`: every tier stores at home.
    pub tier_store: Option<TierStoreFn<'a>>,
}

/// Where a tier's tenants' memories live (`Ok(None)`: the home store).
pub type TierStoreFn<'a> = &'a dyn Fn(&str) -> Result<Option<cairn_core::placement::Backend>, ApiError>;

/// Opens a tenant's store (`Ok(None)`: it is the home store).
pub type TenantStoreFn<'a> = &'a dyn Fn(&str) -> Result<Option<Box<dyn Sql>>, ApiError>;

/// The store holding one tenant's memories: the home store, or its own.
pub enum TenantData<'d> {
    Home(&'d dyn Sql),
    Apart(Box<dyn Sql>),
}

impl TenantData<'_> {
    pub fn db(&self) -> &dyn Sql {
        match self {
            TenantData::Home(db) => *db,
            TenantData::Apart(db) => db.as_ref(),
        }
    }

    pub fn is_apart(&self) -> bool {
        matches!(self, TenantData::Apart(_))
    }
}

impl AdminCtx<'_> {
    /// The store of `tenant_id`'s memories (`home` unless placed apart).
    pub fn tenant_data<'d>(&self, home: &'d dyn Sql, tenant_id: &str) -> Result<TenantData<'d>, ApiError> {
        match self.tenant_store.map(|open| open(tenant_id)).transpose()?.flatten() {
            Some(db) => Ok(TenantData::Apart(db)),
            None => Ok(TenantData::Home(home)),
        }
    }

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
    audit_by(db, ctx, "admin_token", action, resource_type, resource_id, tenant_id, details)
}

/// Records a mutation made by `actor` (a scheduled job's name, say) in the
/// caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn audit_by(
    db: &dyn Sql,
    ctx: &AdminCtx,
    actor: &str,
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
            actor,
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

impl Page {
    /// A list query's conditions on `columns` (one per filter, in order:
    /// `(CAST(? AS TEXT) IS NULL OR <column> = ?)` joined by AND) and their
    /// parameters, then `limit` and `offset` for a trailing `LIMIT ? OFFSET ?`.
    pub fn conditions(&self, columns: &[&str]) -> (String, Vec<cairn_spin::sql::SqlValue>) {
        let cond: Vec<String> = columns.iter().map(|c| format!("(CAST(? AS TEXT) IS NULL OR {c} = ?)")).collect();
        let mut params: Vec<cairn_spin::sql::SqlValue> =
            self.filters.iter().take(columns.len()).flat_map(|f| [f.clone().into(), f.clone().into()]).collect();
        params
            .extend([cairn_spin::sql::SqlValue::Integer(self.limit), cairn_spin::sql::SqlValue::Integer(self.offset)]);
        (cond.join(" AND "), params)
    }
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

/// What a route's handler gets: the database, the call context, the
/// path's parameters (in template order), the query and the body.
pub struct Call<'a> {
    pub db: &'a dyn Sql,
    pub ctx: &'a AdminCtx<'a>,
    pub params: Vec<String>,
    pub query: &'a [(String, String)],
    body: &'a str,
}

impl Call<'_> {
    /// The `i`th path parameter.
    fn p(&self, i: usize) -> &str {
        &self.params[i]
    }

    /// The body as JSON (`{}` when empty).
    fn body(&self) -> Result<Value, ApiError> {
        let text = if self.body.trim().is_empty() { "{}" } else { self.body };
        serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))
    }
}

/// One admin route: method, path template below `/v1/admin/control/`
/// (`{name}` is one segment) and its handler.
pub struct AdminRoute {
    pub method: &'static str,
    pub path: &'static str,
    handler: fn(&Call) -> Result<Value, ApiError>,
}

const fn r(method: &'static str, path: &'static str, handler: fn(&Call) -> Result<Value, ApiError>) -> AdminRoute {
    AdminRoute { method, path, handler }
}

/// The control component's routes: [`route`] walks this list, and the
/// OpenAPI test checks it against `docs/openapi.yaml`. (The outbox, the
/// consistency check and the health gate below the same prefix are the
/// derive component's, `spin.toml` routes them there.)
pub const ROUTES: &[AdminRoute] = &[
    r("POST", "tenants", |c| crate::tenants::upsert_tenant(c.db, c.ctx, &c.body()?)),
    r("GET", "tenants", |c| crate::tenants::list_tenants(c.db, c.query)),
    r("POST", "tenants/{tenant_id}/provision", |c| crate::provisioning::provision(c.db, c.ctx, c.p(0), &c.body()?)),
    r("GET", "tenants/{tenant_id}/status", |c| crate::provisioning::status(c.db, c.ctx, c.p(0))),
    r("POST", "tenants/{tenant_id}/upgrade", |c| crate::provisioning::upgrade(c.db, c.ctx, c.p(0), &c.body()?)),
    r("POST", "tenants/{tenant_id}/teardown", |c| crate::provisioning::teardown(c.db, c.ctx, c.p(0))),
    r("POST", "projects", |c| crate::tenants::upsert_project(c.db, c.ctx, &c.body()?)),
    r("POST", "api-keys", |c| crate::api_keys::create(c.db, c.ctx, &c.body()?)),
    r("GET", "api-keys", |c| crate::api_keys::list(c.db, c.query)),
    r("GET", "api-keys/stale", |c| crate::api_keys::stale(c.db, c.ctx, c.query)),
    r("POST", "api-keys/{id}/revoke", |c| crate::api_keys::revoke(c.db, c.ctx, c.p(0))),
    r("POST", "api-keys/{id}/rotate", |c| crate::api_keys::rotate(c.db, c.ctx, c.p(0), &c.body()?)),
    r("PUT", "tenant-quotas/{tenant_id}", |c| crate::quotas::put(c.db, c.ctx, c.p(0), &c.body()?)),
    r("GET", "tenant-quotas/{tenant_id}", |c| crate::quotas::get(c.db, c.p(0))),
    r("DELETE", "tenant-quotas/{tenant_id}", |c| crate::quotas::delete(c.db, c.ctx, c.p(0))),
    r("GET", "audit-events", |c| audit_log::list(c.db, c.query)),
    r("POST", "audit-events/verify", |c| audit_log::verify(c.db)),
    r("POST", "releases", |c| crate::releases::record(c.db, c.ctx, &c.body()?)),
    r("POST", "evidence", |c| crate::evidence::register(c.db, c.ctx, &c.body()?)),
    r("GET", "evidence", |c| crate::evidence::list(c.db, c.ctx, c.query)),
    r("POST", "evidence/verify", |c| crate::evidence::verify(c.db, c.ctx)),
    r("GET", "evidence/publish-jobs", |c| crate::evidence_publish::list(c.db, c.query)),
    r("GET", "evidence/{evidence_id}", |c| crate::evidence::get(c.db, c.ctx, c.p(0))),
    r("GET", "governance/reports", |c| crate::governance_reports::list(c.db, c.query)),
    r("GET", "governance/reports/{report_id}", |c| crate::governance_reports::get(c.db, c.p(0), c.query)),
    r("GET", "tiers", |c| crate::tiers::list(c.ctx)),
    r("GET", "dashboard/tenant/{tenant_id}", |c| crate::dashboard::tenant(c.db, c.ctx, c.p(0))),
    r("GET", "dashboard/tenant/{tenant_id}/timeseries", |c| crate::timeseries::tenant(c.db, c.ctx, c.p(0), c.query)),
    r("GET", "dashboard/tenant/{tenant_id}/key-usage", |c| crate::key_usage::tenant(c.db, c.ctx, c.p(0), c.query)),
    r("GET", "diagnostics/tenant/{tenant_id}", |c| crate::diagnostics::tenant(c.db, c.ctx, c.p(0), c.query)),
    r("GET", "slo/tenant/{tenant_id}", |c| crate::slo::tenant(c.db, c.ctx, c.p(0), c.query)),
    r("POST", "alerts/routes", |c| crate::alerts::create_route(c.db, c.ctx, &c.body()?)),
    r("GET", "alerts/routes", |c| crate::alerts::list_routes(c.db, c.query)),
    r("POST", "alerts/routes/{id}/status", |c| crate::alerts::set_status(c.db, c.ctx, c.p(0), &c.body()?)),
    r("GET", "alerts/deliveries", |c| crate::alerts::list_deliveries(c.db, c.query)),
];

/// Routes an admin request (`path` below `/v1/admin/control/`): the first
/// entry of [`ROUTES`] whose template fits; `405` when one fits with
/// another method, `404` when none does.
pub fn route(
    db: &dyn Sql,
    ctx: &AdminCtx,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &str,
) -> Result<Value, ApiError> {
    let mut allowed: Vec<&str> = Vec::new();
    for def in ROUTES {
        let Some(params) = cairn_core::path_template::match_path_template(def.path, path) else { continue };
        if def.method != method {
            allowed.push(def.method);
            continue;
        }
        crate::schema::ensure(db, &ctx.now())?;
        return (def.handler)(&Call { db, ctx, params, query, body });
    }
    if allowed.is_empty() {
        Err(ApiError::not_found("not_found", format!("no admin route for {method} /v1/admin/control/{path}")))
    } else {
        Err(ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on /v1/admin/control/{path}"))
            .with_details(json!({"allowed": allowed})))
    }
}
