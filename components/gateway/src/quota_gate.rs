//! Tenant quotas at the door (reference §1.0 protection classes, §7.3):
//! each memory route draws from its tenant's bucket of its class — recall
//! or write — plus `recall_text_embed` for routes that embed a query and
//! `debug_embeddings` for the debug channel. The buckets are the control
//! component's (in the database, shared by every instance).
//!
//! Which limits apply (`tenant_quota_enabled`):
//! - `auto` (default): a tenant's own quota profile (set through
//!   `tenant-quotas`) always; its tier's `quotas` and storage cap when
//!   memory auth is on, i.e. in a hosted deployment (the loopback self-host
//!   default is unthrottled unless someone set a profile);
//! - `true`: profile, tier quotas and storage cap, with or without auth;
//! - `false`: none, not even a profile.

use crate::dispatch::Backend;
use crate::routes::Route;
use cairn_core::ApiError;
use serde_json::Value;

/// The classes a request of `route` draws from.
pub fn classes(route: &Route, body: &str) -> Vec<&'static str> {
    let mut out = match route {
        Route::Recall
        | Route::RecallText
        | Route::RulesEvaluate
        | Route::ToolsSelect
        | Route::ToolsDecision
        | Route::Find
        | Route::ListSessionEvents { .. }
        | Route::PlanningContext => vec!["recall"],
        Route::Write
        | Route::RulesState
        | Route::RuleFeedback
        | Route::ToolsFeedback
        | Route::CreateSession
        | Route::WriteEvent => vec!["write"],
        _ => return Vec::new(),
    };
    if matches!(route, Route::RecallText | Route::PlanningContext) {
        out.push("recall_text_embed");
    }
    if matches!(route, Route::Recall | Route::RecallText | Route::PlanningContext)
        && body.contains("include_embeddings")
        && serde_json::from_str::<Value>(body)
            .is_ok_and(|v| v["return_debug"] == true && v["include_embeddings"] == true)
    {
        out.push("debug_embeddings");
    }
    out
}

/// Which quotas apply to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quotas {
    /// None (`tenant_quota_enabled=false`).
    Off,
    /// The tenant's own quota profile only, when it has one.
    Explicit,
    /// The tenant's profile, else its tier's quotas, and the storage cap.
    Full,
}

/// Which quotas apply (`auth_on`: memory auth is not `off`).
pub fn mode(backend: &dyn Backend, auth_on: bool) -> Quotas {
    match backend.variable("tenant_quota_enabled").as_deref().map(str::trim) {
        Some("true" | "1" | "yes" | "on") => Quotas::Full,
        Some("false" | "0" | "no" | "off") => Quotas::Off,
        _ if auth_on => Quotas::Full,
        _ => Quotas::Explicit,
    }
}

/// The tenant a request without a principal counts against: the one it
/// names — in the body or query (`tenant_id`), else `X-Tenant-Id`, as the
/// operation will resolve it — else the default.
pub fn tenant_of(backend: &dyn Backend, body: &str, query: &[(String, String)], header: Option<&str>) -> String {
    let named = body_tenant(body)
        .or_else(|| query.iter().find(|(k, _)| k == "tenant_id").map(|(_, v)| v.clone()))
        .filter(|t| !t.trim().is_empty())
        .or_else(|| header.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string));
    named.or_else(|| backend.variable("memory_tenant_id")).unwrap_or_else(|| "default".into())
}

/// The body's top-level `tenant_id` string. Every quota-checked request
/// passes here, so it does not build the body's JSON tree: a body that does
/// not mention the key is not parsed, one that does is scanned for that
/// key alone.
fn body_tenant(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        tenant_id: Option<Value>,
    }
    if !body.contains("\"tenant_id\"") {
        return None;
    }
    match serde_json::from_str::<Named>(body).ok()?.tenant_id? {
        Value::String(t) => Some(t),
        _ => None,
    }
}

/// Admits the request: its classes' tokens (the first empty bucket answers
/// 429); under [`Quotas::Full`], routes that store memory also meet the
/// tenant's storage cap (413).
pub fn draw(
    backend: &dyn Backend,
    quotas: Quotas,
    route: &Route,
    tenant: &str,
    classes: &[&str],
) -> Result<(), ApiError> {
    match quotas {
        Quotas::Off => Ok(()),
        Quotas::Explicit => backend.admit_explicit(tenant, classes),
        Quotas::Full => {
            backend.admit(tenant, classes, matches!(route, Route::Write | Route::CreateSession | Route::WriteEvent))
        }
    }
}
