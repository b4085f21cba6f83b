//! `GET /v1/admin/control/diagnostics/tenant/:tenant_id?scope&window_minutes`
//! (reference §7.6): per-endpoint request telemetry (totals, errors,
//! latency percentiles), the recall pipeline (empty seeds / nodes / edges,
//! averages) and the outbox, over the last `window_minutes` (5..1440, 60).

use crate::admin::AdminCtx;
use crate::latency::{percentile, rate};
use cairn_core::ApiError;
use cairn_core::request_reader::{Reader, query_int};
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

pub fn tenant(db: &dyn Sql, ctx: &AdminCtx, tenant_id: &str, query: &[(String, String)]) -> Result<Value, ApiError> {
    let get = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut r = Reader::new();
    let window = query_int(&mut r, "window_minutes", get("window_minutes"), 5, 1440).unwrap_or(60);
    let scope = get("scope").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    if scope.as_ref().is_some_and(|s| s.chars().count() > 256) {
        r.issue("scope", "String must contain at most 256 character(s)");
    }
    r.finish()?;
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let since = cairn_core::time_fmt::rfc3339_millis(ctx.now_ms - window * 60_000);

    // Request telemetry, per endpoint.
    let mut endpoints = Vec::new();
    for endpoint in crate::latency::ENDPOINTS {
        let rows = db.query(
            "SELECT latency_ms, status_code FROM memory_request_telemetry WHERE tenant_id = ? AND endpoint = ? \
             AND created_at >= ? ORDER BY latency_ms",
            &[tenant_id.into(), endpoint.into(), since.clone().into()],
        )?;
        if rows.is_empty() {
            continue;
        }
        let lat: Vec<f64> = rows.iter().map(|r| r.real(0)).collect();
        let errors = rows.iter().filter(|r| r.int(1) >= 400).count() as i64;
        let total = rows.len() as i64;
        endpoints.push(json!({
            "endpoint": endpoint, "total": total, "errors": errors, "error_rate": rate(errors, total),
            "latency_p50_ms": percentile(&lat, 50.0), "latency_p95_ms": percentile(&lat, 95.0),
            "latency_p99_ms": percentile(&lat, 99.0),
        }));
    }

    // Which scopes: the one asked for, or all of the tenant's.
    let (cond, params): (String, Vec<SqlValue>) = match &scope {
        Some(s) => {
            let key = cairn_core::tenant_scope::scope_key(
                tenant_id,
                s,
                &cairn_core::tenant_scope::ScopeDefaults {
                    tenant_id: ctx.default_tenant_id.to_string(),
                    scope: s.clone(),
                },
            );
            ("scope = ?".into(), vec![key.into()])
        }
        None => {
            let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant_id, ctx.default_tenant_id);
            (cond, params.into_iter().map(Into::into).collect())
        }
    };
    // Recall audit and outbox rows are the tenant's memories' (its store);
    // request telemetry above is the home store's.
    let data = ctx.tenant_data(db, tenant_id)?;
    let mdb = data.db();
    if data.is_apart() {
        cairn_memory::schema::ensure(mdb, &ctx.now())?;
    }
    let mut p = params.clone();
    p.push(since.into());
    let recall = mdb
        .query_one(
            &format!(
                // Counts as sums of 0/1 and averages cast to a float: one
                // spelling for SQLite and PostgreSQL (no sum of booleans
                // there, and avg of integers is numeric).
                "SELECT count(*), sum(CASE WHEN seed_count = 0 THEN 1 ELSE 0 END), \
                 sum(CASE WHEN node_count = 0 THEN 1 ELSE 0 END), sum(CASE WHEN edge_count = 0 THEN 1 ELSE 0 END), \
                 CAST(avg(seed_count) AS DOUBLE PRECISION), CAST(avg(node_count) AS DOUBLE PRECISION), \
                 CAST(avg(edge_count) AS DOUBLE PRECISION) FROM memory_recall_audit WHERE {cond} AND created_at >= ?"
            ),
            &p,
        )?
        .map(|r| {
            let total = r.int(0);
            json!({
                "total": total, "empty_seed": r.int(1), "empty_nodes": r.int(2), "empty_edges": r.int(3),
                "empty_seed_rate": rate(r.int(1), total), "empty_node_rate": rate(r.int(2), total),
                "empty_edge_rate": rate(r.int(3), total),
                "seed_avg": r.real(4), "node_avg": r.real(5), "edge_avg": r.real(6),
            })
        });

    let by_type = mdb.query(
        &format!(
            "SELECT event_type, sum(CASE WHEN published_at IS NULL AND failed_at IS NULL THEN 1 ELSE 0 END), \
             sum(CASE WHEN published_at IS NULL AND failed_at IS NULL AND attempts > 0 THEN 1 ELSE 0 END), \
             sum(CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END), \
             min(CASE WHEN published_at IS NULL AND failed_at IS NULL THEN created_at END) \
             FROM memory_outbox WHERE {cond} GROUP BY event_type ORDER BY event_type"
        ),
        &params,
    )?;
    let age = |oldest: Option<String>| {
        oldest.and_then(|o| cairn_core::time_fmt::parse_rfc3339_millis(&o)).map(|t| ((ctx.now_ms - t) / 1000).max(0))
    };
    let mut totals = (0i64, 0i64, 0i64, None::<String>);
    let by_event_type: Vec<Value> = by_type
        .iter()
        .map(|r| {
            let oldest = r.opt_string(4);
            totals.0 += r.int(1);
            totals.1 += r.int(2);
            totals.2 += r.int(3);
            if let Some(o) = &oldest
                && totals.3.as_ref().is_none_or(|t| o < t)
            {
                totals.3 = Some(o.clone());
            }
            json!({"event_type": r.string(0), "pending": r.int(1), "retrying": r.int(2), "failed": r.int(3),
                   "oldest_pending_age_sec": age(oldest)})
        })
        .collect();
    Ok(json!({"ok": true, "diagnostics": {
        "tenant_id": tenant_id, "default_tenant_id": ctx.default_tenant_id, "scope": scope,
        "window_minutes": window, "generated_at": ctx.now(),
        "request_telemetry": {"endpoints": endpoints},
        "recall_pipeline": recall,
        "outbox": {"totals": {"pending": totals.0, "retrying": totals.1, "failed": totals.2,
                              "oldest_pending_age_sec": age(totals.3)},
                   "by_event_type": by_event_type},
    }}))
}
