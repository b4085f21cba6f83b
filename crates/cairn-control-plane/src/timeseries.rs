//! `GET /v1/admin/control/dashboard/tenant/:id/timeseries` (reference §7.6):
//! a tenant's request telemetry in hourly buckets per endpoint class —
//! totals, server errors, throttles, client errors, the error budget
//! consumed (5xx + 429), error rate and latency percentiles — newest bucket
//! first, paged with a stable cursor, plus the window's budget per endpoint.
//!
//! Query: `endpoint?` (`write|recall|recall_text`), `window_hours` (168,
//! at most the telemetry retention, 720), `limit` (1..20000, 5000),
//! `offset`, `cursor`. The cursor (base64url JSON `{v:1, kind:"timeseries",
//! tenant_id, endpoint, window_hours, limit, offset, anchor_utc}`) pins the
//! snapshot: rows written after `anchor_utc` never shift a later page.

use crate::admin::AdminCtx;
use crate::latency::{Tally, check_endpoint, endpoint_filter, percentile};
use crate::page_cursor::{Bounds, PageCursor};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Hours of telemetry kept (`cairn job telemetry-retention`, reference 720).
pub const RETENTION_HOURS: i64 = 720;

/// A bucket's figures as the route shows them.
fn summary(b: &Tally) -> Value {
    json!({"total": b.total(), "server_errors": b.server_errors, "throttled": b.throttled,
           "client_errors": b.client_errors, "error_budget_consumed": b.budget_consumed(),
           "error_rate": b.error_rate()})
}

const KIND: &str = "timeseries";
// A cursor carries the requested window (up to a year), applied capped.
const BOUNDS: Bounds = Bounds { max_window_hours: 8760, max_limit: 20_000 };

/// The route.
pub fn tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let c = match get("cursor") {
        Some(raw) => PageCursor::decode(KIND, tenant_id, raw, &BOUNDS)?,
        None => {
            let mut r = Reader::new();
            let requested = query_int(&mut r, "window_hours", get("window_hours"), 1, 8760).unwrap_or(168);
            let limit = query_int(&mut r, "limit", get("limit"), 1, 20_000).unwrap_or(5000);
            let offset = query_int(&mut r, "offset", get("offset"), 0, 1_000_000).unwrap_or(0);
            let endpoint = get("endpoint").map(str::to_string);
            check_endpoint(&mut r, endpoint.as_deref());
            r.finish()?;
            PageCursor { endpoint, window_hours: requested, baseline_hours: None, limit, offset, anchor_ms: ctx.now_ms }
        }
    };
    let applied = c.window_hours.min(RETENTION_HOURS);
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let since = rfc3339_millis(c.anchor_ms - applied * 3_600_000);
    let anchor = rfc3339_millis(c.anchor_ms);
    let mut params: Vec<SqlValue> = vec![tenant_id.into(), since.into(), anchor.clone().into()];
    let filter = endpoint_filter(c.endpoint.as_deref(), &mut params);
    // Hour buckets: the first 13 characters of the RFC 3339 time.
    let rows = db.query(
        &format!(
            "SELECT substr(created_at, 1, 13), endpoint, status_code, latency_ms FROM memory_request_telemetry \
             WHERE tenant_id = ? AND created_at >= ? AND created_at <= ?{filter}"
        ),
        &params,
    )?;
    let mut buckets: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut budget: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &rows {
        let (hour, endpoint, status, latency) = (r.string(0), r.string(1), r.int(2), r.real(3));
        buckets.entry((hour, endpoint.clone())).or_default().add(status, latency);
        budget.entry(endpoint).or_default().add(status, latency);
    }
    let total = buckets.len() as i64;
    let series: Vec<Value> = buckets
        .iter_mut()
        .rev()
        .skip(c.offset as usize)
        .take(c.limit as usize)
        .map(|((hour, endpoint), b)| {
            b.latencies.sort_by(f64::total_cmp);
            let mut v = summary(b);
            v["bucket_utc"] = json!(format!("{hour}:00:00.000Z"));
            v["endpoint"] = json!(endpoint);
            v["latency_p50_ms"] = json!(percentile(&b.latencies, 50.0));
            v["latency_p95_ms"] = json!(percentile(&b.latencies, 95.0));
            v["latency_p99_ms"] = json!(percentile(&b.latencies, 99.0));
            v
        })
        .collect();
    let has_more = c.offset + (series.len() as i64) < total;
    let next = has_more.then(|| c.next(series.len()).encode(KIND, tenant_id));
    Ok(json!({
        "ok": true,
        "tenant_id": tenant_id,
        "bucket": "hour",
        "window_hours": applied,
        "retention": {"retention_hours": RETENTION_HOURS, "requested_window_hours": c.window_hours,
                      "applied_window_hours": applied, "truncated": c.window_hours > RETENTION_HOURS},
        "filters": {"endpoint": c.endpoint},
        "page": {"limit": c.limit, "offset": c.offset, "total": total, "has_more": has_more},
        "snapshot": {"anchor_utc": anchor},
        "generated_at": ctx.now(),
        "series": series,
        "budget": budget.iter().map(|(e, b)| { let mut v = summary(b); v["endpoint"] = json!(e); v }).collect::<Vec<_>>(),
        "cursor": {"next": next},
    }))
}
