//! Upgrades that demand their evidence (issue 18, step 6). A tier row may
//! name what an upgrade to it needs in the evidence registry:
//!
//! ```yaml
//! upgrade:
//!   requires_evidence:
//!     - { kind: replay_drill, max_age_days: 35, expect: { path: ok, equals: true } }
//!     - { kind: weekly_report, covers: deployment, max_age_days: 14 }  # deployment-wide
//! ```
//!
//! `covers: tenant` (the default) is satisfied by an artifact registered
//! for the tenant; `deployment` by one registered for no tenant (a shared
//! weekly report, a release bundle); `either` by both. `max_age_days` bounds how long ago it
//! was registered (absent: any age); `expect` a value the newest artifact's
//! JSON must hold (`cairn_core::json_path`). An upgrade to a tier whose
//! requirements are not all met is refused with `409
//! upgrade_evidence_missing`, naming each missing item and, when there is
//! a stale one, when the newest was registered. Which evidence a tier wants
//! is tier data: no tier name appears here.

use crate::evidence::Covers;
use cairn_core::ApiError;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

/// One item of `upgrade.requires_evidence`.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub kind: String,
    pub covers: Covers,
    pub max_age_days: Option<f64>,
    /// `(path, value)` the newest artifact's JSON must hold (a drill that
    /// passed, not just one that ran): `cairn_core::json_path`.
    pub expect: Option<(String, Value)>,
}

impl Requirement {
    fn to_json(&self) -> Value {
        json!({"kind": self.kind, "covers": self.covers.as_str(), "max_age_days": self.max_age_days,
               "expect": self.expect.as_ref().map(|(p, v)| json!({"path": p, "equals": v}))})
    }
}

/// The requirements of `profile` (a tier row); `500 tier_profile_invalid`
/// when the block is malformed, so a typo never waives a requirement.
pub fn requirements(tier: &str, profile: &Value) -> Result<Vec<Requirement>, ApiError> {
    let Some(list) = profile.get("upgrade").and_then(|u| u.get("requires_evidence")) else { return Ok(Vec::new()) };
    let invalid = |why: String| {
        ApiError::new(500, "tier_profile_invalid", format!("tier '{tier}': upgrade.requires_evidence {why}"))
            .with_details(json!({"tier": tier}))
    };
    let items = list.as_array().ok_or_else(|| invalid("must be a list".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let kind = item
                .get("kind")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| invalid(format!("[{i}] needs a kind")))?;
            let word = item.get("covers").and_then(Value::as_str);
            let covers = Covers::parse(word, Covers::Tenant).ok_or_else(|| {
                invalid(format!("[{i}].covers is {:?} (tenant, deployment or either)", word.unwrap_or("")))
            })?;
            let max_age_days = match item.get("max_age_days") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|d| *d > 0.0)
                        .ok_or_else(|| invalid(format!("[{i}].max_age_days must be a positive number of days")))?,
                ),
            };
            let expect = match item.get("expect") {
                None | Some(Value::Null) => None,
                Some(e) => match (e.get("path").and_then(Value::as_str).filter(|p| !p.is_empty()), e.get("equals")) {
                    (Some(p), Some(v)) => Some((p.to_string(), v.clone())),
                    _ => return Err(invalid(format!("[{i}].expect needs path and equals"))),
                },
            };
            Ok(Requirement { kind: kind.to_string(), covers, max_age_days, expect })
        })
        .collect()
}

/// The requirements `db`'s registry does not meet for `tenant_id` at
/// `now_ms`: each with `newest_at` (the newest artifact of its kind and
/// coverage, too old) or null (none at all).
pub fn missing(db: &dyn Sql, tenant_id: &str, reqs: &[Requirement], now_ms: i64) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for req in reqs {
        let newest = crate::evidence::newest(db, &req.kind, req.covers, tenant_id, req.expect.is_some())?;
        let at = newest.as_ref().and_then(|f| f["created_at"].as_str().map(str::to_string));
        let fresh = at.as_deref().is_some_and(|at| crate::evidence::fresh(at, req.max_age_days, now_ms));
        // The newest must also say what the requirement expects.
        let holds = match (&req.expect, &newest) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((path, want)), Some(f)) => f["content"]
                .as_str()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .is_some_and(|body| cairn_core::json_path::lookup(&body, path) == Some(want)),
        };
        if !(fresh && holds) {
            let mut m = req.to_json();
            m["newest_at"] = json!(at);
            if fresh && !holds {
                m["newest_fails_expect"] = json!(true);
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// `409 upgrade_evidence_missing` unless the registry meets every
/// requirement `profile` (the target tier's row) names.
pub fn check(
    db: &dyn Sql,
    tenant_id: &str,
    from: &str,
    to: &str,
    profile: &Value,
    now_ms: i64,
) -> Result<(), ApiError> {
    let reqs = requirements(to, profile)?;
    let missing = missing(db, tenant_id, &reqs, now_ms)?;
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|m| {
            let kind = m["kind"].as_str().unwrap_or("");
            match m["max_age_days"].as_f64() {
                Some(d) => format!("{kind} (registered within {d} days)"),
                None => kind.to_string(),
            }
        })
        .collect();
    Err(ApiError::new(
        409,
        "upgrade_evidence_missing",
        format!("upgrading {tenant_id} to {to} needs evidence the registry does not hold: {}", names.join(", ")),
    )
    .with_details(json!({
        "tenant_id": tenant_id, "from": from, "to": to, "missing": missing,
        "required": reqs.iter().map(Requirement::to_json).collect::<Vec<_>>(),
        "register_with": "POST /v1/admin/control/evidence",
    })))
}
