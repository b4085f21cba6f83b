//! Alerts that reach someone (reference §7.5): alert routes per tenant
//! (webhook, Slack, PagerDuty Events v2), alert rules evaluated on demand
//! (`cairn job alert-dispatch`), every delivery recorded.
//!
//! - Routes: `POST/GET /v1/admin/control/alerts/routes`, `POST
//!   .../routes/:id/status`; deliveries: `GET .../alerts/deliveries`.
//!   Targets must be public `https://` URLs (Slack and PagerDuty on their
//!   own hosts); `alert_loopback_targets=true` admits `http://127.0.0.1` /
//!   `localhost` for local receivers (tests, a sidecar).
//! - Events: `slo_at_risk` (an SLO objective breached or burning fast or
//!   slow; critical when breached or on a fast burn), `key_rotation_sla_failed`
//!   (active keys older than 30 days; critical), `key_usage_anomaly` (the
//!   key-usage view's anomalies; warning) and `outbox_dead_letters`
//!   (dead-lettered derivation jobs; critical from 50).
//! - Route policy (`metadata.policy`): `min_severity` (`warning`),
//!   `quiet_windows[] {days [0..6, Sunday 0], start, end ("HH:MM", UTC),
//!   mode: suppress | warning_only}`, `dedupe {key (template,
//!   "{{tenant_id}}:{{event_type}}:{{severity}}:{{route_id}}"), ttl_seconds
//!   (1800, 60..604800)}`.
//! - [`plan`] decides each (event, route): skipped (recorded with its
//!   reason: `event_filter`, `severity_threshold`, `quiet_window_suppressed`,
//!   `dedupe`) or a delivery with its exact body; the host sends those
//!   (signing webhooks: `x-aionis-signature-ts: <unix s>`,
//!   `x-aionis-signature: hex(HMAC-SHA256(secret, "<ts>.<body>"))`) and
//!   [`record`]s each outcome (`sent` / `failed`, response code, body ≤ 2,000
//!   characters).

use crate::admin::{AdminCtx, audit, page};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_spin::sql::{Sql, SqlValue, write_txn};
use serde_json::{Value, json};

const CHANNELS: [&str; 3] = ["webhook", "slack_webhook", "pagerduty_events"];
const DEFAULT_DEDUPE: &str = "{{tenant_id}}:{{event_type}}:{{severity}}:{{route_id}}";
const ROUTE_COLUMNS: &str =
    "id, tenant_id, channel, label, events, status, target, headers, metadata, created_at, updated_at";

fn route_json(r: &cairn_spin::sql::Row) -> Value {
    let j = |i: usize| r.text(i).and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    json!({"id": r.string(0), "tenant_id": r.string(1), "channel": r.string(2), "label": r.opt_string(3),
           "events": j(4), "status": r.string(5), "target": r.string(6), "headers": j(7), "metadata": j(8),
           "created_at": r.string(9), "updated_at": r.string(10)})
}

/// Why a target is refused (`None`: fine).
pub fn target_problem(channel: &str, target: &str, loopback_ok: bool) -> Option<String> {
    let lower = target.to_ascii_lowercase();
    let (scheme_ok, rest) = if let Some(r) = lower.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = lower.strip_prefix("http://") {
        (false, r)
    } else {
        return Some("target must be an absolute https:// URL".into());
    };
    if target.chars().any(char::is_control) {
        return Some("target has control characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some("target must not carry credentials".into());
    }
    let host = if let Some(h) = authority.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1");
    if loopback_ok && loopback {
        return None;
    }
    if !scheme_ok {
        return Some("target must be https:// (http is allowed only for loopback with alert_loopback_targets)".into());
    }
    let private = host.is_empty()
        || host.bytes().all(|b| b.is_ascii_digit())
        || host == "localhost"
        || [".localhost", ".local", ".internal"].iter().any(|s| host.ends_with(s))
        || host.contains(':')
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| {
            let o = ip.octets();
            ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_multicast()
                || ip.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || ip.is_documentation()
        });
    if private {
        return Some(format!("target host '{host}' is not a public address"));
    }
    let allowed: &[&str] = match channel {
        "slack_webhook" => &["hooks.slack.com", "hooks.slack-gov.com"],
        "pagerduty_events" => &["events.pagerduty.com", "events.eu.pagerduty.com"],
        _ => &[],
    };
    if !allowed.is_empty() && !allowed.contains(&host) {
        return Some(format!("a {channel} target must be on {}", allowed.join(" or ")));
    }
    None
}

/// `POST /v1/admin/control/alerts/routes`.
pub fn create_route(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let tenant = r.str_opt(root, "tenant_id").unwrap_or_default();
    let channel = r.enum_opt(root, "channel", &CHANNELS).unwrap_or_default();
    let label = r.str_opt_len(root, "label", 1, 256);
    let status = r.enum_opt(root, "status", &["active", "disabled"]).unwrap_or_else(|| "active".into());
    let target = r.str_opt_len(root, "target", 1, 2048).unwrap_or_default();
    let secret = r.str_opt_len(root, "secret", 1, 2048);
    r.finish()?;
    if tenant.is_empty() || !cairn_core::tenant_scope::is_valid_tenant_id(&tenant) {
        return Err(ApiError::invalid("tenant_id", "tenant_id is required and must be a valid tenant id"));
    }
    if channel.is_empty() {
        return Err(ApiError::invalid("channel", "channel is required: webhook | slack_webhook | pagerduty_events"));
    }
    if let Some(p) = target_problem(&channel, &target, ctx.alert_loopback_targets) {
        return Err(ApiError::bad_request("invalid_alert_target", p));
    }
    if channel == "pagerduty_events" && secret.is_none() {
        return Err(ApiError::invalid("secret", "a pagerduty_events route needs its routing key as secret"));
    }
    let events = body.get("events").cloned().unwrap_or_else(|| json!(["*"]));
    if !events.as_array().is_some_and(|e| e.len() <= 64 && e.iter().all(|x| x.as_str().is_some_and(|s| s.len() <= 128)))
    {
        return Err(ApiError::invalid("events", "events must be a list of at most 64 event types"));
    }
    let headers = body.get("headers").cloned().unwrap_or_else(|| json!({}));
    if !headers.as_object().is_some_and(|h| h.values().all(Value::is_string)) {
        return Err(ApiError::invalid("headers", "headers must be an object of strings"));
    }
    let metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    policy_problem(&metadata["policy"]).map_or(Ok(()), |p| Err(ApiError::invalid("metadata.policy", p)))?;
    let (id, now) = (ctx.uuid(), ctx.now());
    write_txn(db, |db| {
        db.exec(
            "INSERT INTO control_alert_routes (id, tenant_id, channel, label, events, status, target, secret, headers, \
             metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                id.as_str().into(),
                tenant.as_str().into(),
                channel.as_str().into(),
                label.clone().into(),
                events.to_string().into(),
                status.as_str().into(),
                target.as_str().into(),
                secret.clone().into(),
                headers.to_string().into(),
                metadata.to_string().into(),
                now.as_str().into(),
                now.as_str().into(),
            ],
        )?;
        audit(
            db,
            ctx,
            "alert_route.create",
            "alert_route",
            &id,
            Some(&tenant),
            json!({"channel": channel, "status": status, "events": events, "label": label}),
        )
    })?;
    Ok(json!({"ok": true, "route": get_route(db, &id)?}))
}

fn policy_problem(p: &Value) -> Option<String> {
    if p.is_null() {
        return None;
    }
    if let Some(s) = p.get("min_severity")
        && !matches!(s.as_str(), Some("warning" | "critical"))
    {
        return Some("min_severity must be warning or critical".into());
    }
    for w in p.get("quiet_windows").and_then(Value::as_array).into_iter().flatten() {
        let hhmm = |k: &str| w[k].as_str().and_then(minutes_of);
        if hhmm("start").is_none() || hhmm("end").is_none() {
            return Some("quiet window start and end must be \"HH:MM\"".into());
        }
        if w.get("timezone").and_then(Value::as_str).is_some_and(|t| t != "UTC") {
            return Some("quiet windows are in UTC (timezone: \"UTC\")".into());
        }
        if !matches!(w.get("mode").and_then(Value::as_str).unwrap_or("suppress"), "suppress" | "warning_only") {
            return Some("quiet window mode must be suppress or warning_only".into());
        }
    }
    None
}

fn minutes_of(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

fn get_route(db: &dyn Sql, id: &str) -> Result<Value, ApiError> {
    db.query_one(&format!("SELECT {ROUTE_COLUMNS} FROM control_alert_routes WHERE id = ?"), &[id.into()])?
        .map(|r| route_json(&r))
        .ok_or_else(|| ApiError::not_found("alert_route_not_found", format!("no alert route {id}")))
}

/// `GET /v1/admin/control/alerts/routes?tenant_id&channel&status&limit&offset`.
pub fn list_routes(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let p = page(query, &["tenant_id", "channel", "status"], 100, 500)?;
    let f = |i: usize| SqlValue::from(p.filters[i].clone());
    let rows = db.query(
        &format!(
            "SELECT {ROUTE_COLUMNS} FROM control_alert_routes WHERE (CAST(?1 AS TEXT) IS NULL OR tenant_id = ?1) \
             AND (CAST(?2 AS TEXT) IS NULL OR channel = ?2) AND (CAST(?3 AS TEXT) IS NULL OR status = ?3) ORDER BY created_at, id LIMIT ?4 OFFSET ?5"
        ),
        &[f(0), f(1), f(2), p.limit.into(), p.offset.into()],
    )?;
    Ok(json!({"ok": true, "routes": rows.iter().map(route_json).collect::<Vec<_>>()}))
}

/// `POST /v1/admin/control/alerts/routes/:id/status {status}`.
pub fn set_status(db: &dyn Sql, ctx: &AdminCtx, id: &str, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let status = r.enum_opt(root, "status", &["active", "disabled"]);
    r.finish()?;
    let Some(status) = status else { return Err(ApiError::invalid("status", "status is required: active | disabled")) };
    let route = get_route(db, id)?;
    write_txn(db, |db| {
        db.exec(
            "UPDATE control_alert_routes SET status = ?, updated_at = ? WHERE id = ?",
            &[status.as_str().into(), ctx.now().into(), id.into()],
        )?;
        audit(db, ctx, "alert_route.status", "alert_route", id, route["tenant_id"].as_str(), json!({"status": status}))
    })?;
    Ok(json!({"ok": true, "route": get_route(db, id)?}))
}

/// `GET /v1/admin/control/alerts/deliveries?tenant_id&event_type&status&limit&offset`, newest first.
pub fn list_deliveries(db: &dyn Sql, query: &[(String, String)]) -> Result<Value, ApiError> {
    let p = page(query, &["tenant_id", "event_type", "status"], 100, 500)?;
    let f = |i: usize| SqlValue::from(p.filters[i].clone());
    let rows = db.query(
        "SELECT id, delivery_id, route_id, tenant_id, event_type, status, request_id, response_code, response_body, \
         error, metadata, created_at FROM control_alert_deliveries WHERE (CAST(?1 AS TEXT) IS NULL OR tenant_id = ?1) \
         AND (CAST(?2 AS TEXT) IS NULL OR event_type = ?2) AND (CAST(?3 AS TEXT) IS NULL OR status = ?3) ORDER BY id DESC LIMIT ?4 OFFSET ?5",
        &[f(0), f(1), f(2), p.limit.into(), p.offset.into()],
    )?;
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"id": r.int(0), "delivery_id": r.string(1), "route_id": r.string(2), "tenant_id": r.string(3),
                   "event_type": r.string(4), "status": r.string(5), "request_id": r.opt_string(6),
                   "response_code": (!r.is_null(7)).then(|| r.int(7)), "response_body": r.opt_string(8), "error": r.opt_string(9),
                   "metadata": r.text(10).and_then(|t| serde_json::from_str::<Value>(t).ok()), "created_at": r.string(11)})
        })
        .collect();
    Ok(json!({"ok": true, "deliveries": out}))
}

/// An alert event of one tenant.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: &'static str,
    pub tenant_id: String,
    pub severity: &'static str,
    pub summary: String,
    pub payload: Value,
}

/// The events of `tenant` now.
pub fn events(db: &dyn Sql, ctx: &AdminCtx, tenant: &str) -> Result<Vec<Event>, ApiError> {
    let mut out = Vec::new();
    match crate::slo::tenant(db, ctx, tenant, &[]) {
        Ok(slo) => {
            let at_risk: Vec<&Value> =
                slo["objectives"].as_array().into_iter().flatten().filter(|o| o["status"] != "ok").collect();
            if !at_risk.is_empty() {
                let critical = at_risk.iter().any(|o| {
                    o["status"] == "breached"
                        || o["reasons"].as_array().is_some_and(|r| r.iter().any(|x| x == "fast_burn"))
                });
                let names: Vec<&str> = at_risk.iter().filter_map(|o| o["name"].as_str()).collect();
                out.push(Event {
                    event_type: "slo_at_risk",
                    tenant_id: tenant.into(),
                    severity: if critical { "critical" } else { "warning" },
                    summary: format!("tenant {tenant}: SLO at risk: {}", names.join(", ")),
                    payload: json!({"tier": slo["tier"], "window_hours": slo["window_hours"], "objectives": at_risk}),
                });
            }
        }
        Err(e) if e.status == 404 => {} // the tier defines no SLO
        Err(e) => return Err(e),
    }
    let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant, ctx.default_tenant_id);
    let params: Vec<SqlValue> = params.into_iter().map(SqlValue::from).collect();
    // Dead letters are in the tenant's store (home unless its tier places
    // it apart; a store that cannot be opened is an error, not zero).
    let data = ctx.tenant_data(db, tenant)?;
    let dead = data
        .db()
        .query_one(
            &format!(
                "SELECT count(*) FROM memory_outbox WHERE failed_at IS NOT NULL AND published_at IS NULL AND {cond}"
            ),
            &params,
        )
        .ok()
        .flatten()
        .map(|r| r.int(0))
        .unwrap_or(0);
    // Keys past the rotation SLA (30 days, as `GET api-keys/stale`).
    let stale_before = cairn_core::time_fmt::rfc3339_millis(ctx.now_ms - 30 * 86_400_000);
    let stale = db
        .query_one(
            "SELECT count(*) FROM control_api_keys WHERE tenant_id = ? AND status = 'active' AND created_at <= ?",
            &[tenant.into(), stale_before.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0);
    if stale > 0 {
        out.push(Event {
            event_type: "key_rotation_sla_failed",
            tenant_id: tenant.into(),
            severity: "critical",
            summary: format!("tenant {tenant}: {stale} API keys are older than 30 days"),
            payload: json!({"stale_count_for_tenant": stale, "max_age_days": 30}),
        });
    }
    // Keys whose recent traffic is anomalous (the key-usage view's defaults).
    let usage = crate::key_usage::tenant(db, ctx, tenant, &[])?;
    let anomalous: Vec<Value> = usage["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["anomaly"]["is_anomaly"] == true)
        .map(|k| json!({"api_key_prefix": k["api_key_prefix"], "endpoint": k["endpoint"], "reasons": k["anomaly"]["reasons"]}))
        .collect();
    if !anomalous.is_empty() {
        out.push(Event {
            event_type: "key_usage_anomaly",
            tenant_id: tenant.into(),
            severity: "warning",
            summary: format!("tenant {tenant}: {} API keys behave unusually", anomalous.len()),
            payload: json!({"anomalies_count": anomalous.len(), "keys": anomalous}),
        });
    }
    if dead > 0 {
        out.push(Event {
            event_type: "outbox_dead_letters",
            tenant_id: tenant.into(),
            severity: if dead >= 50 { "critical" } else { "warning" },
            summary: format!("tenant {tenant}: {dead} derivation jobs are dead-lettered"),
            payload: json!({"dead_letter": dead}),
        });
    }
    Ok(out)
}

/// Whether `now_ms` falls in the window (UTC; `end` before `start` wraps midnight).
fn in_window(w: &Value, now_ms: i64) -> bool {
    let minutes = (now_ms.div_euclid(60_000)).rem_euclid(1440);
    let day = (now_ms.div_euclid(86_400_000) + 4).rem_euclid(7); // 1970-01-01 was a Thursday (4)
    let days_ok = w.get("days").and_then(Value::as_array).is_none_or(|d| d.iter().any(|x| x.as_i64() == Some(day)));
    let (Some(start), Some(end)) = (w["start"].as_str().and_then(minutes_of), w["end"].as_str().and_then(minutes_of))
    else {
        return false;
    };
    let inside = if start <= end { (start..end).contains(&minutes) } else { minutes >= start || minutes < end };
    days_ok && inside
}

/// What the dispatcher does with one (event, route).
#[derive(Debug, Clone)]
pub enum Decision {
    Skip(&'static str),
    Deliver { severity: &'static str },
}

/// The policy's verdict (pure).
pub fn decide(route: &Value, e: &Event, now_ms: i64, already_sent: &dyn Fn(&str) -> bool) -> (Decision, String) {
    let policy = &route["metadata"]["policy"];
    let events = route["events"].as_array();
    let wanted = events.is_none_or(|ev| ev.iter().any(|x| x == "*" || x == e.event_type));
    let mut severity = e.severity;
    let dedupe_key = |sev: &str| {
        let template = policy["dedupe"]["key"].as_str().unwrap_or(DEFAULT_DEDUPE);
        template
            .replace("{{tenant_id}}", &e.tenant_id)
            .replace("{{event_type}}", e.event_type)
            .replace("{{severity}}", sev)
            .replace("{{route_id}}", route["id"].as_str().unwrap_or(""))
    };
    if !wanted {
        return (Decision::Skip("event_filter"), dedupe_key(severity));
    }
    for w in policy["quiet_windows"].as_array().into_iter().flatten() {
        if in_window(w, now_ms) {
            if w["mode"].as_str() == Some("warning_only") {
                severity = "warning";
            } else {
                return (Decision::Skip("quiet_window_suppressed"), dedupe_key(severity));
            }
        }
    }
    if policy["min_severity"] == "critical" && severity != "critical" {
        return (Decision::Skip("severity_threshold"), dedupe_key(severity));
    }
    let key = dedupe_key(severity);
    if already_sent(&key) {
        return (Decision::Skip("dedupe"), key);
    }
    (Decision::Deliver { severity }, key)
}

/// The request body for `route`'s channel.
fn body_for(route: &Value, e: &Event, severity: &str, key: &str, sent_at: &str, secret: Option<&str>) -> Value {
    match route["channel"].as_str() {
        Some("pagerduty_events") => json!({
            "routing_key": secret, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": e.summary, "source": "cairn-alert-dispatch", "severity": severity,
                        "custom_details": e.payload},
        }),
        _ => json!({
            "event_type": e.event_type, "tenant_id": e.tenant_id, "severity": severity, "summary": e.summary,
            "payload": e.payload, "sent_at": sent_at,
            "route": {"id": route["id"], "channel": route["channel"], "label": route["label"]},
        }),
    }
}

/// Plans a dispatch: `{dry_run, tenant_id?}` → every (event, route) decided;
/// skips are recorded now (unless `dry_run`), deliveries returned for the
/// host to send with their exact body, secret and headers.
pub fn plan(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let dry_run = r.bool_opt(root, "dry_run").unwrap_or(false);
    let only = r.str_opt(root, "tenant_id");
    r.finish()?;
    crate::schema::ensure(db, &ctx.now())?;
    cairn_memory::schema::ensure(db, &ctx.now())?;
    let rows = db.query(
        &format!(
            "SELECT {ROUTE_COLUMNS}, secret FROM control_alert_routes WHERE status = 'active' \
             AND (CAST(?1 AS TEXT) IS NULL OR tenant_id = ?1) ORDER BY tenant_id, created_at, id"
        ),
        &[only.clone().into()],
    )?;
    let routes: Vec<(Value, Option<String>)> = rows.iter().map(|r| (route_json(r), r.opt_string(11))).collect();
    let mut tenants: Vec<String> =
        routes.iter().filter_map(|(r, _)| r["tenant_id"].as_str().map(str::to_string)).collect();
    tenants.dedup();
    let now = ctx.now();
    let (mut deliveries, mut skipped) = (Vec::new(), Vec::new());
    for t in &tenants {
        for e in events(db, ctx, t)? {
            for (route, secret) in routes.iter().filter(|(r, _)| r["tenant_id"] == t.as_str()) {
                let ttl =
                    route["metadata"]["policy"]["dedupe"]["ttl_seconds"].as_i64().unwrap_or(1800).clamp(60, 604_800);
                let since = cairn_core::time_fmt::rfc3339_millis(ctx.now_ms - ttl * 1000);
                let route_id = route["id"].as_str().unwrap_or("").to_string();
                let sent = |key: &str| {
                    db.query_one(
                        "SELECT 1 FROM control_alert_deliveries WHERE route_id = ? AND status = 'sent' \
                         AND dedupe_key = ? AND created_at >= ? LIMIT 1",
                        &[route_id.as_str().into(), key.into(), since.as_str().into()],
                    )
                    .ok()
                    .flatten()
                    .is_some()
                };
                let (decision, key) = decide(route, &e, ctx.now_ms, &sent);
                let delivery_id = ctx.uuid();
                match decision {
                    Decision::Skip(reason) => skipped.push(json!({
                        "delivery_id": delivery_id, "route_id": route_id, "tenant_id": t, "event_type": e.event_type,
                        "status": "skipped", "error": reason, "dedupe_key": key,
                    })),
                    Decision::Deliver { severity } => deliveries.push(json!({
                        "delivery_id": delivery_id, "route_id": route_id, "tenant_id": t, "event_type": e.event_type,
                        "severity": severity, "dedupe_key": key, "channel": route["channel"], "target": route["target"],
                        "headers": route["headers"], "secret": secret,
                        "body": body_for(route, &e, severity, &key, &now, secret.as_deref()).to_string(),
                    })),
                }
            }
        }
    }
    if !dry_run && !skipped.is_empty() {
        record(db, ctx, &json!({"results": skipped}))?;
    }
    Ok(json!({"ok": true, "dry_run": dry_run, "tenants": tenants, "deliveries": deliveries, "skipped": skipped}))
}

/// Records delivery outcomes: `{results: [{delivery_id, route_id, tenant_id,
/// event_type, status (sent|failed|skipped), response_code?, response_body?,
/// error?, dedupe_key?}]}`.
pub fn record(db: &dyn Sql, ctx: &AdminCtx, body: &Value) -> Result<Value, ApiError> {
    let results = body["results"].as_array().ok_or_else(|| ApiError::invalid("results", "results must be a list"))?;
    let now = ctx.now();
    write_txn(db, |db| {
        for x in results {
            let s = |k: &str| x[k].as_str().map(str::to_string);
            let status = s("status").unwrap_or_default();
            if !matches!(status.as_str(), "sent" | "failed" | "skipped") {
                return Err(ApiError::invalid("results[].status", "status must be sent, failed or skipped"));
            }
            let response: Option<String> = s("response_body").map(|b| b.chars().take(2000).collect());
            db.exec(
                "INSERT INTO control_alert_deliveries (delivery_id, route_id, tenant_id, event_type, status, request_id, \
                 response_code, response_body, error, metadata, dedupe_key, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    s("delivery_id").into(),
                    s("route_id").into(),
                    s("tenant_id").into(),
                    s("event_type").into(),
                    status.into(),
                    ctx.request_id.into(),
                    x["response_code"].as_i64().into(),
                    response.into(),
                    s("error").into(),
                    json!({"dedupe_key": x["dedupe_key"], "severity": x["severity"]}).to_string().into(),
                    s("dedupe_key").into(),
                    now.as_str().into(),
                ],
            )?;
        }
        Ok(())
    })?;
    Ok(json!({"ok": true, "recorded": results.len()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_public_https() {
        for bad in [
            "http://alerts.example.com/x",
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://localhost/x",
            "https://user:pw@alerts.example.com/",
            "https://10.1.2.3/",
            "https://box.internal/",
            "ftp://x",
        ] {
            assert!(target_problem("webhook", bad, false).is_some(), "{bad}");
        }
        assert!(target_problem("webhook", "https://alerts.example.com/hook", false).is_none());
        assert!(target_problem("slack_webhook", "https://hooks.slack.com/services/x", false).is_none());
        assert!(target_problem("slack_webhook", "https://api.slack.com/x", false).is_some());
        assert!(target_problem("pagerduty_events", "https://events.pagerduty.com/v2/enqueue", false).is_none());
        assert!(target_problem("pagerduty_events", "https://pagerduty.com/x", false).is_some());
        assert!(target_problem("webhook", "http://127.0.0.1:9999/hook", true).is_none(), "loopback when allowed");
        assert!(target_problem("webhook", "http://10.0.0.1/hook", true).is_some());
    }

    fn event(severity: &'static str) -> Event {
        Event { event_type: "slo_at_risk", tenant_id: "acme".into(), severity, summary: "s".into(), payload: json!({}) }
    }

    #[test]
    fn policy_filters_thresholds_quiet_windows_and_dedupe() {
        let route =
            |policy: Value, events: Value| json!({"id": "r1", "events": events, "metadata": {"policy": policy}});
        let never = |_: &str| false;
        // 2026-12-01 was a Tuesday (2); 13:30 UTC.
        let now = 1_796_131_800_000;
        let (d, key) = decide(&route(json!({}), json!(["*"])), &event("warning"), now, &never);
        assert!(matches!(d, Decision::Deliver { severity: "warning" }));
        assert_eq!(key, "acme:slo_at_risk:warning:r1");
        let (d, _) = decide(&route(json!({}), json!(["outbox_dead_letters"])), &event("warning"), now, &never);
        assert!(matches!(d, Decision::Skip("event_filter")));
        let (d, _) = decide(&route(json!({"min_severity": "critical"}), json!(["*"])), &event("warning"), now, &never);
        assert!(matches!(d, Decision::Skip("severity_threshold")));
        let quiet = json!({"quiet_windows": [{"days": [2], "start": "13:00", "end": "14:00", "mode": "suppress"}]});
        let (d, _) = decide(&route(quiet, json!(["*"])), &event("critical"), now, &never);
        assert!(matches!(d, Decision::Skip("quiet_window_suppressed")));
        let other_day = json!({"quiet_windows": [{"days": [3], "start": "13:00", "end": "14:00"}]});
        assert!(matches!(
            decide(&route(other_day, json!(["*"])), &event("critical"), now, &never).0,
            Decision::Deliver { .. }
        ));
        let downgrade = json!({"quiet_windows": [{"start": "22:00", "end": "14:00", "mode": "warning_only"}]});
        assert!(matches!(
            decide(&route(downgrade, json!(["*"])), &event("critical"), now, &never).0,
            Decision::Deliver { severity: "warning" }
        ));
        let sent = |k: &str| k == "acme:slo_at_risk:critical:r1";
        assert!(matches!(
            decide(&route(json!({}), json!(["*"])), &event("critical"), now, &sent).0,
            Decision::Skip("dedupe")
        ));
    }
}
