//! `GET /v1/admin/control/dashboard/tenant/:id/key-usage` (reference §7.6):
//! per (API key prefix, endpoint), the recent window against a baseline
//! before it, with anomalies flagged.
//!
//! Query: `endpoint?`, `window_hours` (24), `baseline_hours` (168, the
//! hours before the window), `min_requests` (30), `zscore_threshold` (3,
//! 0.5..100), `limit` (1..1000, 200), `offset`, `cursor` (the
//! [`crate::page_cursor`] of the previous page: window, baseline, endpoint,
//! limit and the snapshot's anchor; thresholds are the request's). Reasons, only when the
//! recent window has at least `min_requests`: `request_spike` (recent ÷ the
//! baseline scaled to the window ≥ 2), `latency_regression` (recent mean
//! latency's z-score against the baseline ≥ the threshold),
//! `error_budget_regression` (recent error rate ≥ 5 % and ≥ 2× the
//! baseline's). Requests without a key are not listed.

use crate::admin::AdminCtx;
use crate::latency::{Tally, check_endpoint, endpoint_filter, percentile};
use crate::page_cursor::{Bounds, PageCursor};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The thresholds of one request.
pub struct Thresholds {
    pub window_hours: i64,
    pub baseline_hours: i64,
    pub min_requests: i64,
    pub zscore: f64,
}

/// Why a key's recent traffic is anomalous (pure).
fn anomaly(recent: &Tally, base: &Tally, t: &Thresholds) -> Value {
    let expected = base.total() as f64 * t.window_hours as f64 / t.baseline_hours as f64;
    let traffic_ratio = if expected > 0.0 { recent.total() as f64 / expected } else { f64::INFINITY };
    let sd = base.stddev();
    let z = if sd > 0.0 { (recent.mean() - base.mean()) / sd } else { 0.0 };
    let mut reasons = Vec::new();
    if recent.total() >= t.min_requests {
        if traffic_ratio >= 2.0 {
            reasons.push("request_spike");
        }
        if z >= t.zscore {
            reasons.push("latency_regression");
        }
        if recent.error_rate() >= 0.05 && recent.error_rate() >= 2.0 * base.error_rate() {
            reasons.push("error_budget_regression");
        }
    }
    json!({"is_anomaly": !reasons.is_empty(), "reasons": reasons,
           "traffic_ratio": if traffic_ratio.is_finite() { json!(round(traffic_ratio)) } else { Value::Null },
           "latency_zscore": round(z)})
}

const KIND: &str = "key_usage";
const BOUNDS: Bounds = Bounds { max_window_hours: 720, max_limit: 1000 };

/// The request's page and thresholds, from a cursor or the query.
fn read_query(ctx: &AdminCtx, tenant_id: &str, query: &[(String, String)]) -> Result<(PageCursor, i64, f64), ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let mut r = Reader::new();
    // Thresholds are not part of the page: each request states its own.
    let min_requests = query_int(&mut r, "min_requests", get("min_requests"), 1, 1_000_000).unwrap_or(30);
    let zscore = match get("zscore_threshold") {
        None => 3.0,
        Some(z) => match z.parse::<f64>() {
            Ok(z) if (0.5..=100.0).contains(&z) => z,
            _ => {
                r.issue("zscore_threshold", "zscore_threshold must be a number in 0.5..100");
                3.0
            }
        },
    };
    let page = match get("cursor") {
        Some(raw) => {
            r.finish()?;
            PageCursor::decode(KIND, tenant_id, raw, &BOUNDS)?
        }
        None => {
            let window_hours = query_int(&mut r, "window_hours", get("window_hours"), 1, 720).unwrap_or(24);
            let baseline_hours = query_int(&mut r, "baseline_hours", get("baseline_hours"), 1, 720).unwrap_or(168);
            let limit = query_int(&mut r, "limit", get("limit"), 1, 1000).unwrap_or(200);
            let offset = query_int(&mut r, "offset", get("offset"), 0, 1_000_000).unwrap_or(0);
            let endpoint = get("endpoint").map(str::to_string);
            check_endpoint(&mut r, endpoint.as_deref());
            r.finish()?;
            PageCursor {
                endpoint,
                window_hours,
                baseline_hours: Some(baseline_hours),
                limit,
                offset,
                anchor_ms: ctx.now_ms,
            }
        }
    };
    Ok((page, min_requests, zscore))
}

pub fn tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let (page, min_requests, zscore) = read_query(ctx, tenant_id, query)?;
    let (window_hours, limit, offset) = (page.window_hours, page.limit, page.offset);
    let baseline_hours = page.baseline_hours.unwrap_or(168);
    let endpoint = page.endpoint.clone();
    let applied_baseline = baseline_hours.min(720 - window_hours.min(719));
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let anchor = rfc3339_millis(page.anchor_ms);
    let window_start = page.anchor_ms - window_hours * 3_600_000;
    let baseline_start = window_start - applied_baseline * 3_600_000;
    let mut params: Vec<SqlValue> =
        vec![tenant_id.into(), rfc3339_millis(baseline_start).into(), anchor.clone().into()];
    let filter = endpoint_filter(endpoint.as_deref(), &mut params);
    let rows = db.query(
        &format!(
            "SELECT api_key_prefix, endpoint, status_code, latency_ms, created_at FROM memory_request_telemetry \
             WHERE tenant_id = ? AND created_at >= ? AND created_at <= ? AND api_key_prefix IS NOT NULL{filter}"
        ),
        &params,
    )?;
    let window_from = rfc3339_millis(window_start);
    let mut keys: BTreeMap<(String, String), (Tally, Tally)> = BTreeMap::new();
    for row in &rows {
        let e = keys.entry((row.string(0), row.string(1))).or_default();
        let side = if row.text(4).unwrap_or("") >= window_from.as_str() { &mut e.0 } else { &mut e.1 };
        side.add(row.int(2), row.real(3));
    }
    let t = Thresholds { window_hours, baseline_hours: applied_baseline.max(1), min_requests, zscore };
    let total = keys.len() as i64;
    let mut anomalies = 0;
    let items: Vec<Value> = keys
        .iter_mut()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|((prefix, endpoint), (recent, base))| {
            recent.latencies.sort_by(f64::total_cmp);
            let a = anomaly(recent, base, &t);
            anomalies += usize::from(a["is_anomaly"] == true);
            json!({
                "api_key_prefix": prefix, "endpoint": endpoint,
                "recent": {"total": recent.total(), "server_errors": recent.server_errors, "throttled": recent.throttled,
                           "error_rate": round(recent.error_rate()), "latency_avg_ms": round(recent.mean()),
                           "latency_p95_ms": percentile(&recent.latencies, 95.0)},
                "baseline": {"total": base.total(), "server_errors": base.server_errors, "throttled": base.throttled,
                             "error_rate": round(base.error_rate()), "latency_avg_ms": round(base.mean()),
                             "latency_stddev_ms": round(base.stddev()), "slice_hours": t.baseline_hours},
                "anomaly": a,
            })
        })
        .collect();
    let has_more = offset + (items.len() as i64) < total;
    let next = has_more.then(|| page.next(items.len()).encode(KIND, tenant_id));
    Ok(json!({
        "ok": true, "tenant_id": tenant_id, "generated_at": ctx.now(),
        "window_hours": window_hours, "baseline_hours": t.baseline_hours,
        "thresholds": {"min_requests": min_requests, "zscore_threshold": zscore},
        "filters": {"endpoint": endpoint},
        "page": {"limit": limit, "offset": offset, "total": total, "has_more": has_more},
        "snapshot": {"anchor_utc": anchor},
        "anomalies": {"count_in_page": anomalies},
        "keys": items,
        "cursor": {"next": next},
    }))
}

/// `cairn job key-usage-anomaly` (reference §7.9
/// `job:hosted-key-usage-anomaly`): every tenant's key usage (or one
/// tenant's), paged through the route's cursor, and the anomalies found.
/// Body: `{tenant_id?, window_hours? (24), baseline_hours? (168),
/// min_requests? (30), zscore_threshold? (3), limit? (page size, 500),
/// strict?}`; `exit_code` is 2 with `strict` and any anomaly, else 0.
pub fn anomaly_report(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let only = r.str_opt_len(root, "tenant_id", 1, 128);
    // The route's bounds, so a bad threshold is refused whether or not any
    // tenant has keys.
    let window_hours = r.int_opt(root, "window_hours", 1, 720).unwrap_or(24);
    let baseline_hours = r.int_opt(root, "baseline_hours", 1, 720).unwrap_or(168);
    let min_requests = r.int_opt(root, "min_requests", 1, 1_000_000).unwrap_or(30);
    let zscore = r.num_opt(root, "zscore_threshold", 0.5, 100.0).unwrap_or(3.0);
    let limit = r.int_opt(root, "limit", 1, 1000).unwrap_or(500);
    let strict = r.bool_opt(root, "strict").unwrap_or(false);
    r.finish()?;
    // Each page's query: the thresholds, then the cursor or the first page.
    let query = |cursor: Option<&str>| -> Vec<(String, String)> {
        let mut q = vec![
            ("min_requests".to_string(), min_requests.to_string()),
            ("zscore_threshold".to_string(), zscore.to_string()),
        ];
        match cursor {
            Some(c) => q.push(("cursor".into(), c.to_string())),
            None => q.extend([
                ("window_hours".to_string(), window_hours.to_string()),
                ("baseline_hours".to_string(), baseline_hours.to_string()),
                ("limit".to_string(), limit.to_string()),
            ]),
        }
        q
    };
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let tenants: Vec<String> = match only {
        Some(t) => vec![t],
        None => {
            let since = rfc3339_millis(ctx.now_ms - (window_hours + baseline_hours) * 3_600_000);
            db.query(
                "SELECT DISTINCT tenant_id FROM memory_request_telemetry \
                 WHERE created_at >= ? AND api_key_prefix IS NOT NULL ORDER BY tenant_id",
                &[since.into()],
            )?
            .iter()
            .map(|row| row.string(0))
            .collect()
        }
    };
    let (mut keys_checked, mut anomalies, mut thresholds) = (0i64, Vec::new(), Value::Null);
    for t in &tenants {
        let mut cursor: Option<String> = None;
        loop {
            let page = tenant(db, ctx, t, &query(cursor.as_deref()))?;
            thresholds = page["thresholds"].clone();
            for k in page["keys"].as_array().into_iter().flatten() {
                keys_checked += 1;
                if k["anomaly"]["is_anomaly"] == true {
                    anomalies.push(json!({
                        "tenant_id": t, "api_key_prefix": k["api_key_prefix"], "endpoint": k["endpoint"],
                        "reasons": k["anomaly"]["reasons"], "traffic_ratio": k["anomaly"]["traffic_ratio"],
                        "latency_zscore": k["anomaly"]["latency_zscore"], "recent_total": k["recent"]["total"],
                        "recent_error_rate": k["recent"]["error_rate"],
                    }));
                }
            }
            match page["cursor"]["next"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
    }
    let count = anomalies.len();
    Ok(json!({
        "ok": count == 0 || !strict,
        "generated_at": ctx.now(),
        "window_hours": window_hours,
        "baseline_hours": baseline_hours,
        "thresholds": thresholds,
        "strict": strict,
        "tenants_checked": tenants.len(),
        "keys_checked": keys_checked,
        "anomalies_count": count,
        "anomalies": anomalies,
        "exit_code": if strict && count > 0 { 2 } else { 0 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(latencies: &[f64], errors: i64) -> Tally {
        Tally { latencies: latencies.to_vec(), server_errors: errors, ..Default::default() }
    }

    #[test]
    fn spikes_latency_and_error_regressions_have_known_answers() {
        let t = Thresholds { window_hours: 24, baseline_hours: 168, min_requests: 3, zscore: 3.0 };
        // Baseline: 70 requests in 168 h → 10 expected in 24 h; 30 recent = 3×.
        let base = side(&[10.0, 12.0].repeat(35), 0);
        let recent = side(&[11.0; 30], 0);
        let a = anomaly(&recent, &base, &t);
        assert_eq!(a["traffic_ratio"], 3.0);
        assert_eq!(a["reasons"], json!(["request_spike"]));
        // Latency: baseline mean 11, sd ≈ 1.007; recent mean 20 → z ≈ 8.9.
        let slow = side(&[20.0; 5], 0);
        let a = anomaly(&slow, &base, &t);
        assert_eq!(a["reasons"], json!(["latency_regression"]));
        assert!(a["latency_zscore"].as_f64().unwrap() > 8.0);
        // Errors: 2 of 5 failing against none.
        let failing = side(&[11.0; 5], 2);
        assert_eq!(anomaly(&failing, &base, &t)["reasons"], json!(["error_budget_regression"]));
        // Below min_requests nothing is flagged.
        let few = side(&[500.0; 2], 2);
        assert_eq!(anomaly(&few, &base, &t)["is_anomaly"], false);
    }
}
