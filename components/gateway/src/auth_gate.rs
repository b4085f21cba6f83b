//! Authenticating memory routes (reference §1.0) and binding the request to
//! its principal. `memory_auth_mode` = `off` (default) | `api_key` | `jwt` |
//! `api_key_or_jwt`: control-plane API keys (`X-Api-Key`, resolved by the
//! control component on every request — no cache, so a revocation holds
//! at once) and HS256 JWTs (`Authorization: Bearer`, `memory_jwt_hs256_secret`,
//! `exp` required, `memory_jwt_clock_skew_sec` of tolerance, default 30).
//! In `api_key_or_jwt` an unknown key falls through to the JWT.

use crate::dispatch::{Backend, HttpRequest};
use crate::routes::Route;
use cairn_core::ApiError;
use cairn_core::auth::{Mode, Principal, RouteKind, bind_body, verify_jwt};
use serde_json::Value;

/// The identity fields a route carries.
pub fn kind(route: &Route) -> RouteKind {
    match route {
        Route::Recall | Route::RecallText | Route::Find | Route::PlanningContext => RouteKind::Read,
        Route::Write | Route::CreateSession | Route::WriteEvent => RouteKind::Write,
        Route::RulesEvaluate | Route::ToolsSelect | Route::ToolsFeedback => RouteKind::Policy,
        _ => RouteKind::TenantOnly,
    }
}

/// Whether a route is a memory route under `memory_auth_mode` (health and
/// the admin-token routes are not).
pub fn guarded(route: &Route) -> bool {
    !matches!(route, Route::Health | Route::OpenApi) && !route.needs_admin()
}

/// The configured mode (`500` for a value that is not one).
pub fn mode(backend: &dyn Backend) -> Result<Mode, ApiError> {
    let raw = backend.variable("memory_auth_mode").unwrap_or_default();
    Mode::parse(&raw)
        .ok_or_else(|| ApiError::internal(format!("memory_auth_mode '{raw}' is not off|api_key|jwt|api_key_or_jwt")))
}

/// The principal of the request, or `401 unauthorized`.
pub fn authenticate(backend: &dyn Backend, req: &HttpRequest, mode: Mode) -> Result<Principal, ApiError> {
    if mode.keys()
        && let Some(key) = req.header("x-api-key").map(str::trim).filter(|k| !k.is_empty())
        && let Some(json) = backend.resolve_api_key(key)?
    {
        let v: Value = serde_json::from_str(&json).map_err(|e| ApiError::internal(format!("principal: {e}")))?;
        let s = |k: &str| v[k].as_str().map(str::to_string);
        return Ok(Principal {
            tenant_id: s("tenant_id").unwrap_or_default(),
            agent_id: s("agent_id"),
            team_id: s("team_id"),
            role: s("role"),
        });
    }
    if mode.jwt()
        && let Some(token) =
            req.header("authorization").and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
    {
        let secret = backend.variable("memory_jwt_hs256_secret").unwrap_or_default();
        let skew = backend.variable("memory_jwt_clock_skew_sec").and_then(|s| s.parse().ok()).unwrap_or(30);
        if let Some(p) = verify_jwt(token.trim(), secret.as_bytes(), backend.now_s(), skew, true) {
            return Ok(p);
        }
    }
    Err(mode.unauthorized())
}

/// Binds a JSON body text to the principal; returns the new text.
pub fn bind_text(text: &str, p: &Principal, route: &Route, header_tenant: Option<&str>) -> Result<String, ApiError> {
    let mut v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))?;
    bind_body(&mut v, p, kind(route), header_tenant)?;
    if *route == Route::PlanningContext {
        bind_body(&mut v, p, RouteKind::Policy, None)?;
    }
    Ok(v.to_string())
}

/// Binds query pairs (the GET routes): the tenant, and for session events
/// the consumer ids.
pub fn bind_query(q: &mut Vec<(String, String)>, p: &Principal, route: &Route) -> Result<(), ApiError> {
    let mut m = serde_json::Map::new();
    for (k, v) in q.iter() {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    let mut v = Value::Object(m);
    let kind = if matches!(route, Route::ListSessionEvents { .. }) { RouteKind::Read } else { RouteKind::TenantOnly };
    bind_body(&mut v, p, kind, None)?;
    q.retain(|(k, _)| !matches!(k.as_str(), "tenant_id" | "consumer_agent_id" | "consumer_team_id"));
    for k in ["tenant_id", "consumer_agent_id", "consumer_team_id"] {
        if let Some(s) = v.get(k).and_then(Value::as_str) {
            q.push((k.to_string(), s.to_string()));
        }
    }
    Ok(())
}
