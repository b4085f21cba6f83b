//! SLOs as data (issue 16): each tier profile's `slo` block names its
//! objectives, and `GET /v1/admin/control/slo/tenant/:id?window_hours`
//! computes, from the stored request telemetry, each objective's
//! attainment over the window, the error budget consumed and the burn
//! rates over the last 1 h, 6 h and 24 h, and says which objective is at
//! risk. Adding an objective to a tier is YAML only:
//!
//! ```yaml
//! slo:
//!   window_hours: 720
//!   contractual: false
//!   objectives:
//!     - { name: availability, sli: availability, target: 0.999 }
//!     - { name: recall_text_p95, sli: latency, endpoint: recall_text, threshold_ms: 250, target: 0.95 }
//! ```
//!
//! - `availability`: a request is bad when it answered 5xx or 429 (the
//!   reference's `error_budget_consumed`: the server failed or throttled).
//! - `latency`: a request is bad when it took longer than `threshold_ms`,
//!   so "p95 ≤ 250 ms" is "95 % of requests within 250 ms" — a ratio with
//!   a budget, which a percentile is not.
//! - `endpoint` (optional): `write`, `recall` or `recall_text`; else all.
//!
//! Burn rate = (bad / total in the window) / (1 − target): 1 spends the
//! budget exactly over the SLO window. An objective is `breached` when the
//! window's budget is spent, `at_risk` on a fast burn (1 h ≥ 14.4 with 6 h
//! ≥ 6, the multiwindow rule) or a slow burn (24 h ≥ 3), else `ok`.

use crate::admin::AdminCtx;
use crate::latency::{ENDPOINTS, endpoint_filter};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

/// Longest window telemetry covers (the reference's retention, 720 h).
pub const MAX_WINDOW_HOURS: i64 = 720;
/// The burn-rate windows reported, hours.
const BURN_WINDOWS: [(&str, i64); 3] = [("1h", 1), ("6h", 6), ("24h", 24)];
const FAST_BURN: f64 = 14.4;
const FAST_BURN_CONFIRM: f64 = 6.0;
const SLOW_BURN: f64 = 3.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    Availability,
    Latency { threshold_ms: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub name: String,
    pub sli: Sli,
    pub endpoint: Option<String>,
    pub target: f64,
}

/// A tier's `slo` block.
#[derive(Debug, Clone, PartialEq)]
pub struct SloProfile {
    pub window_hours: i64,
    pub contractual: bool,
    pub objectives: Vec<Objective>,
}

impl SloProfile {
    /// Reads `tiers.<tier>.slo`; a malformed objective is an error naming it
    /// (a tier file's mistake must not silently drop an objective).
    pub fn from_profiles(profiles: &Value, tier: &str) -> Result<Option<SloProfile>, String> {
        let Some(slo) = profiles.get("tiers").and_then(|t| t.get(tier)).and_then(|p| p.get("slo")) else {
            return Ok(None);
        };
        let window_hours = slo.get("window_hours").and_then(Value::as_i64).unwrap_or(MAX_WINDOW_HOURS);
        if !(1..=MAX_WINDOW_HOURS).contains(&window_hours) {
            return Err(format!("tier {tier}: slo.window_hours must be 1..{MAX_WINDOW_HOURS}"));
        }
        let mut objectives = Vec::new();
        for (i, o) in slo.get("objectives").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let name = o.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let at = format!("tier {tier}: slo.objectives[{i}] ({name})");
            if name.is_empty() {
                return Err(format!("{at}: needs a name"));
            }
            let target = o.get("target").and_then(Value::as_f64).unwrap_or(-1.0);
            if !(target > 0.0 && target < 1.0) {
                return Err(format!("{at}: target must be between 0 and 1 (exclusive)"));
            }
            let endpoint = o.get("endpoint").and_then(Value::as_str).map(str::to_string);
            if endpoint.as_deref().is_some_and(|e| !ENDPOINTS.contains(&e)) {
                return Err(format!("{at}: endpoint must be one of {}", ENDPOINTS.join(", ")));
            }
            let sli = match o.get("sli").and_then(Value::as_str) {
                Some("availability") => Sli::Availability,
                Some("latency") => match o.get("threshold_ms").and_then(Value::as_f64) {
                    Some(t) if t > 0.0 => Sli::Latency { threshold_ms: t },
                    _ => return Err(format!("{at}: a latency objective needs threshold_ms > 0")),
                },
                _ => return Err(format!("{at}: sli must be availability or latency")),
            };
            objectives.push(Objective { name, sli, endpoint, target });
        }
        let contractual = slo.get("contractual").and_then(Value::as_bool).unwrap_or(false);
        Ok(Some(SloProfile { window_hours, contractual, objectives }))
    }
}

/// Requests and bad requests over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub total: i64,
    pub bad: i64,
}

impl Counts {
    fn bad_ratio(self) -> f64 {
        if self.total == 0 { 0.0 } else { self.bad as f64 / self.total as f64 }
    }
}

/// One objective's verdict from its counts (pure).
pub fn evaluate(o: &Objective, window: Counts, burns: &[(&str, Counts)]) -> Value {
    let budget = 1.0 - o.target;
    let attainment = 1.0 - window.bad_ratio();
    let allowed_bad = budget * window.total as f64;
    let consumed = if window.bad == 0 {
        0.0
    } else if allowed_bad > 0.0 {
        window.bad as f64 / allowed_bad
    } else {
        f64::INFINITY
    };
    // 1 − 0.99 is 0.010000000000000009: compare with a little slack.
    let spent = consumed >= 1.0 - 1e-9;
    let burn = |c: Counts| c.bad_ratio() / budget;
    // With the same slack as `spent`, so a burn of exactly 3 is 3.
    let rate = |name: &str| burns.iter().find(|(n, _)| *n == name).map(|(_, c)| burn(*c) + 1e-9).unwrap_or(0.0);
    let mut reasons = Vec::new();
    if spent {
        reasons.push("error_budget_exhausted");
    }
    if rate("1h") >= FAST_BURN && rate("6h") >= FAST_BURN_CONFIRM {
        reasons.push("fast_burn");
    }
    if rate("24h") >= SLOW_BURN {
        reasons.push("slow_burn");
    }
    let status = if spent {
        "breached"
    } else if reasons.is_empty() {
        "ok"
    } else {
        "at_risk"
    };
    let round = |x: f64| if x.is_finite() { (x * 1e6).round() / 1e6 } else { x };
    json!({
        "name": o.name,
        "sli": match o.sli { Sli::Availability => "availability", Sli::Latency { .. } => "latency" },
        "endpoint": o.endpoint,
        "threshold_ms": match o.sli { Sli::Latency { threshold_ms } => json!(threshold_ms), Sli::Availability => Value::Null },
        "target": o.target,
        "window": {"total": window.total, "good": window.total - window.bad, "bad": window.bad, "attainment": round(attainment)},
        "error_budget": {
            "allowed_bad": round(allowed_bad),
            "consumed_ratio": if consumed.is_finite() { json!(round(consumed)) } else { json!("exhausted") },
            "remaining_ratio": round((1.0 - consumed).max(0.0)),
        },
        "burn_rates": burns.iter().map(|(n, c)| ((*n).to_string(), json!(round(burn(*c))))).collect::<serde_json::Map<_, _>>(),
        "status": status,
        "reasons": reasons,
    })
}

/// Counts of `o`'s requests by `tenant` since `since_ms` (and before
/// `until_ms` when given: a past window, as the weekly report reads).
pub fn counts(
    db: &dyn Sql,
    tenant: &str,
    o: &Objective,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Counts, ApiError> {
    let bad = match o.sli {
        Sli::Availability => "status_code >= 500 OR status_code = 429".to_string(),
        Sli::Latency { threshold_ms } => format!("latency_ms > {threshold_ms}"),
    };
    let until = until_ms.map(rfc3339_millis);
    let mut params: Vec<SqlValue> =
        vec![tenant.into(), rfc3339_millis(since_ms).into(), until.clone().into(), until.into()];
    let endpoint = endpoint_filter(o.endpoint.as_deref(), &mut params);
    let r = db
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE {bad}) FROM memory_request_telemetry \
                 WHERE tenant_id = ? AND created_at >= ? AND (CAST(? AS TEXT) IS NULL OR created_at < ?){endpoint}"
            ),
            &params,
        )?
        .expect("an aggregate returns a row");
    Ok(Counts { total: r.int(0), bad: r.int(1) })
}

/// `GET /v1/admin/control/slo/tenant/:id?window_hours`.
pub fn tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut r = Reader::new();
    let asked = query_int(&mut r, "window_hours", get("window_hours"), 1, MAX_WINDOW_HOURS);
    r.finish()?;
    let tier = if ctx.billing_disabled {
        "solo".to_string()
    } else {
        crate::tiers::stored_tier(db, tenant_id)?.unwrap_or_else(|| ctx.default_tier.to_string())
    };
    let profiles: Value = ctx.tier_profiles.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    let profile = SloProfile::from_profiles(&profiles, &tier)
        .map_err(|m| ApiError::new(500, "slo_profile_invalid", m))?
        .ok_or_else(|| {
            ApiError::not_found("slo_not_defined", format!("tier '{tier}' has no slo block in the tier profiles"))
        })?;
    let window_hours = asked.unwrap_or(profile.window_hours);
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let mut objectives = Vec::new();
    let mut at_risk = Vec::new();
    for o in &profile.objectives {
        let window = counts(db, tenant_id, o, ctx.now_ms - window_hours * 3_600_000, None)?;
        let mut burns = Vec::new();
        for (name, hours) in BURN_WINDOWS {
            burns.push((name, counts(db, tenant_id, o, ctx.now_ms - hours * 3_600_000, None)?));
        }
        let v = evaluate(o, window, &burns);
        if v["status"] != "ok" {
            at_risk.push(o.name.clone());
        }
        objectives.push(v);
    }
    Ok(json!({
        "ok": true,
        "tenant_id": tenant_id,
        "tier": tier,
        "contractual": profile.contractual,
        "window_hours": window_hours,
        "generated_at": ctx.now(),
        "objectives": objectives,
        "at_risk": at_risk,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn availability(target: f64) -> Objective {
        Objective { name: "availability".into(), sli: Sli::Availability, endpoint: None, target }
    }

    #[test]
    fn budget_and_burn_rates_have_known_answers() {
        // 99.9 %: 10,000 requests allow 10 bad; 4 bad spend 40 %.
        let o = availability(0.999);
        let w = Counts { total: 10_000, bad: 4 };
        let burns = [
            ("1h", Counts { total: 500, bad: 1 }),
            ("6h", Counts { total: 2_000, bad: 2 }),
            ("24h", Counts { total: 5_000, bad: 3 }),
        ];
        let v = evaluate(&o, w, &burns);
        assert_eq!(v["window"]["attainment"], 0.9996);
        assert_eq!(v["error_budget"]["allowed_bad"], 10.0);
        assert_eq!(v["error_budget"]["consumed_ratio"], 0.4);
        assert_eq!(v["error_budget"]["remaining_ratio"], 0.6);
        // 1/500 = 0.002 → 2× the 0.001 budget rate; 2/2000 → 1×; 3/5000 → 0.6×.
        assert_eq!(v["burn_rates"]["1h"], 2.0);
        assert_eq!(v["burn_rates"]["6h"], 1.0);
        assert_eq!(v["burn_rates"]["24h"], 0.6);
        assert_eq!(v["status"], "ok");
    }

    #[test]
    fn fast_and_slow_burns_and_breaches() {
        let o = availability(0.99);
        let fast = [
            ("1h", Counts { total: 100, bad: 20 }),
            ("6h", Counts { total: 600, bad: 40 }),
            ("24h", Counts { total: 2400, bad: 40 }),
        ];
        let v = evaluate(&o, Counts { total: 10_000, bad: 40 }, &fast);
        // 1h: 0.2/0.01 = 20 ≥ 14.4 and 6h: 0.0667/0.01 = 6.67 ≥ 6.
        assert_eq!((v["status"].as_str(), v["reasons"].clone()), (Some("at_risk"), json!(["fast_burn"])));
        let slow = [
            ("1h", Counts { total: 100, bad: 1 }),
            ("6h", Counts { total: 600, bad: 6 }),
            ("24h", Counts { total: 2400, bad: 80 }),
        ];
        let v = evaluate(&o, Counts { total: 10_000, bad: 80 }, &slow);
        assert_eq!(v["reasons"], json!(["slow_burn"]));
        let v = evaluate(&o, Counts { total: 1000, bad: 10 }, &[]);
        assert_eq!(
            (v["status"].as_str(), v["error_budget"]["remaining_ratio"].as_f64()),
            (Some("breached"), Some(0.0))
        );
        // Nothing measured: attained, nothing spent.
        let v = evaluate(&o, Counts::default(), &[]);
        assert_eq!((v["window"]["attainment"].as_f64(), v["status"].as_str()), (Some(1.0), Some("ok")));
    }

    #[test]
    fn profiles_are_read_and_mistakes_named() {
        let doc = json!({"tiers": {"t": {"slo": {"window_hours": 168, "objectives": [
            {"name": "availability", "sli": "availability", "target": 0.999},
            {"name": "write_p95", "sli": "latency", "endpoint": "write", "threshold_ms": 50, "target": 0.95}]}}}});
        let p = SloProfile::from_profiles(&doc, "t").unwrap().unwrap();
        assert_eq!(p.window_hours, 168);
        assert_eq!(p.objectives[1].sli, Sli::Latency { threshold_ms: 50.0 });
        assert_eq!(SloProfile::from_profiles(&doc, "other").unwrap(), None);
        for bad in [
            json!({"name": "x", "sli": "latency", "target": 0.9}),
            json!({"name": "x", "sli": "availability", "target": 1.0}),
            json!({"name": "x", "sli": "availability", "target": 0.9, "endpoint": "nope"}),
            json!({"sli": "availability", "target": 0.9}),
            json!({"name": "x", "sli": "speed", "target": 0.9}),
        ] {
            let doc = json!({"tiers": {"t": {"slo": {"objectives": [bad.clone()]}}}});
            assert!(SloProfile::from_profiles(&doc, "t").is_err(), "{bad}");
        }
    }
}
