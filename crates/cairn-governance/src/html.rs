//! `weekly_report.html`: one self-contained page (inline CSS and SVG, no
//! script) for the people who read the report — verdict first, then the
//! three trends (quota pressure, error budget, derivation backlog), the
//! checks, integrity and what to do.

use crate::markdown::{pct, subject};
use crate::svg::{self, AMBER, BLUE, GREEN, RED, esc};
use serde_json::Value;
use std::fmt::Write;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#2c3e50;max-width:980px;margin:24px auto;padding:0 16px;line-height:1.45}\
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #d5d8dc;padding-bottom:4px}\
.meta{color:#566573;font-size:13px}.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}\
.pass{background:#2e8b57}.fail{background:#c0392b}.warn{background:#d68910}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaecee;vertical-align:top}\
th{background:#f4f6f7}.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.tile{border:1px solid #d5d8dc;border-radius:6px;padding:8px 12px;min-width:130px}\
.tile b{display:block;font-size:20px}.tile span{font-size:12px;color:#566573}.chart{margin:8px 0 4px}.note{font-size:12px;color:#566573}\
code{font-size:12px;background:#f4f6f7;padding:1px 4px;border-radius:3px}";

/// `{"write": 4, "recall": 1}` as "recall 1, write 4" ("none" when empty).
fn denials(by_endpoint: &Value) -> String {
    let parts: Vec<String> = by_endpoint.as_object().into_iter().flatten().map(|(k, v)| format!("{k} {v}")).collect();
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// Escaped text whose `backticked` spans (the recommendations' commands,
/// written for Markdown) become `<code>`.
fn with_code(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_string() })
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => esc(x),
        Value::Null => "–".into(),
        other => esc(&other.to_string()),
    }
}

fn tile(out: &mut String, value: &str, label: &str) {
    let _ = write!(out, r#"<div class="tile"><b>{}</b><span>{}</span></div>"#, esc(value), esc(label));
}

pub fn render(r: &Value) -> String {
    let mut h = String::new();
    let week = r["report_week"].as_str().unwrap_or("");
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Governance weekly report {} — {}</title><style>{STYLE}</style></head><body>"#,
        esc(week),
        esc(&subject(r))
    );
    let failed_errors = r["summary"]["failed_errors"].as_array().map_or(0, Vec::len);
    let failed_warnings = r["summary"]["failed_warnings"].as_array().map_or(0, Vec::len);
    let (class, verdict) = match (failed_errors, failed_warnings) {
        (0, 0) => ("pass", "PASS".to_string()),
        (0, w) => ("warn", format!("PASS with {w} warning{}", if w == 1 { "" } else { "s" })),
        (e, _) => ("fail", format!("FAIL: {e} error check{}", if e == 1 { "" } else { "s" })),
    };
    let _ = write!(
        h,
        r#"<h1>Governance weekly report {}</h1><div class="meta">{} · window {} → {} ({} h) · run <code>{}</code> · generated {}</div><p><span class="verdict {class}">{}</span></p>"#,
        esc(week),
        esc(&subject(r)),
        s(&r["window"]["start"]),
        s(&r["window"]["end"]),
        r["window_hours"],
        s(&r["run_id"]),
        s(&r["generated_at"]),
        esc(&verdict)
    );
    let snap = &r["scope_snapshot"];
    h.push_str(r#"<div class="tiles">"#);
    tile(&mut h, &snap["scopes"].to_string(), "scopes");
    tile(&mut h, &r["chains"]["commits_checked"].to_string(), "commits verified");
    tile(&mut h, &snap["recall"]["total"].to_string(), "recalls");
    tile(&mut h, &snap["feedback"]["total"].to_string(), "rule feedback");
    tile(&mut h, &r["quota"]["denials"].to_string(), "quota denials (429)");
    tile(&mut h, &r["dead_letters"]["open"].to_string(), "dead letters open");
    h.push_str("</div>");

    // Quota pressure.
    h.push_str("<h2>Quota pressure</h2>");
    let days: Vec<(String, f64, f64)> = r["quota"]["days"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let day = d["day"].as_str().unwrap_or("");
            (
                day.get(5..).unwrap_or(day).to_string(),
                d["requests"].as_f64().unwrap_or(0.0),
                d["throttled"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    if days.is_empty() {
        h.push_str(r#"<p class="note">No memory requests were recorded in the window.</p>"#);
    } else {
        let _ = write!(
            h,
            r#"<div class="chart">{}</div><p class="note">Memory requests per day (blue), the throttled ones in red with their share; denials by endpoint: {}.</p>"#,
            svg::bars("memory requests and quota denials per day", &days),
            esc(&denials(&r["quota"]["denials_by_endpoint"]))
        );
    }

    // Error budget.
    h.push_str("<h2>Error budget</h2>");
    let mut budgets = Vec::new();
    for t in r["slo"]["tenants"].as_array().into_iter().flatten() {
        for o in t["objectives"].as_array().into_iter().flatten() {
            let consumed = match &o["error_budget"]["consumed_ratio"] {
                Value::String(_) => 10.0, // "exhausted": no budget at all
                v => v.as_f64().unwrap_or(0.0),
            };
            let colour = match o["status"].as_str() {
                Some("breached") => RED,
                Some("at_risk") => AMBER,
                _ => GREEN,
            };
            let label = format!("{} · {}", t["tenant_id"].as_str().unwrap_or(""), o["name"].as_str().unwrap_or(""));
            budgets.push((label, consumed, colour));
        }
    }
    if budgets.is_empty() {
        h.push_str(r#"<p class="note">No tenant with requests in the window has SLO objectives in its tier.</p>"#);
    } else {
        let _ = write!(
            h,
            r#"<div class="chart">{}</div><p class="note">Share of each objective's error budget the window consumed; past the dashed line the budget is spent.</p>"#,
            svg::budget("error budget consumed per objective", &budgets)
        );
    }

    // Backlog.
    h.push_str("<h2>Derivation backlog</h2>");
    let points = r["backlog"].as_array().cloned().unwrap_or_default();
    let labels: Vec<String> =
        points.iter().map(|p| p["at"].as_str().unwrap_or("").get(5..16).unwrap_or("").replace('T', " ")).collect();
    let open: Vec<f64> = points.iter().map(|p| p["open"].as_f64().unwrap_or(0.0)).collect();
    let dead: Vec<f64> = points.iter().map(|p| p["dead_letter"].as_f64().unwrap_or(0.0)).collect();
    let _ = write!(
        h,
        r#"<div class="chart">{}</div><p class="note">Derivation jobs waiting (blue) and dead-lettered (red) at {} instants of the window. Dead letters now: {}, newest {}; replays in the window: {} ({} jobs).</p>"#,
        svg::lines("derivation backlog", &labels, &[("open jobs", BLUE, open), ("dead letters", RED, dead)]),
        points.len(),
        r["dead_letters"]["open"],
        s(&r["dead_letters"]["newest_at"]),
        r["dead_letters"]["replays_in_window"],
        r["dead_letters"]["jobs_replayed_in_window"]
    );

    // Checks.
    h.push_str("<h2>Checks</h2><table><tr><th></th><th>Check</th><th>Severity</th><th>Value</th><th>Threshold</th><th>Detail</th></tr>");
    for c in r["checks"].as_array().into_iter().flatten() {
        let (mark, colour) = if c["pass"] == true { ("✔", GREEN) } else { ("✘", RED) };
        let _ = write!(
            h,
            r#"<tr><td style="color:{colour};font-weight:700">{mark}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            s(&c["name"]),
            s(&c["severity"]),
            s(&c["value"]),
            s(&c["threshold"]),
            s(&c["detail"])
        );
    }
    h.push_str("</table>");

    // Memory and tenants.
    let f = &snap["feedback"];
    let _ = write!(
        h,
        "<h2>Memory in the window</h2><table>\
         <tr><th>Rule feedback</th><td>{} ({} positive, {} negative, {} neutral); run ids on {}; {} distinct runs</td></tr>\
         <tr><th>Rules now</th><td>{} active, {} shadow, {} draft, {} disabled</td></tr>\
         <tr><th>Tool decisions</th><td>{}; {} of {} tools feedback events name their decision ({})</td></tr>\
         <tr><th>Recalls</th><td>{}; {} name their consumer ({}); {} found no seed</td></tr>\
         <tr><th>Lanes now</th><td>{} private ({} owned, {}), {} shared</td></tr></table>",
        f["total"],
        f["positive"],
        f["negative"],
        f["neutral"],
        pct(&f["run_id_coverage"]),
        f["distinct_runs"],
        snap["rules"]["active"],
        snap["rules"]["shadow"],
        snap["rules"]["draft"],
        snap["rules"]["disabled"],
        snap["decision"]["decisions"],
        snap["decision"]["linked_feedback"],
        snap["decision"]["tools_feedback"],
        pct(&snap["decision"]["link_coverage"]),
        snap["recall"]["total"],
        snap["recall"]["with_identity"],
        pct(&snap["recall"]["identity_coverage"]),
        snap["recall"]["empty_seed"],
        snap["lane"]["private_nodes"],
        snap["lane"]["private_owned"],
        pct(&snap["lane"]["private_owner_coverage"]),
        snap["lane"]["shared_nodes"]
    );
    let ct = &r["cross_tenant"];
    let _ = write!(
        h,
        "<h2>Across tenants</h2><p>{} tenants · active-rule drift {} · negative-ratio drift {} ({} tenants with enough feedback)</p>\
         <table><tr><th>Tenant</th><th>Active rules</th><th>Feedback</th><th>Negative</th></tr>",
        ct["tenant_count"],
        ct["active_rule_count_drift"],
        ct["negative_ratio_drift"],
        ct["tenants_with_feedback_floor"]
    );
    for t in ct["top_tenants"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s(&t["tenant_id"]),
            t["active_rules"],
            t["feedback_total"],
            pct(&t["negative_ratio"])
        );
    }
    h.push_str("</table>");

    // Integrity.
    let ch = &r["chains"];
    let audit = match r["audit_chain"].as_object() {
        Some(a) if a["ok"] == true => format!("{} audit events verify", a["checked"]),
        Some(a) => format!("the audit log is BROKEN at {}", a["first_broken"]),
        None => "no audit log in this store".into(),
    };
    let _ = write!(
        h,
        "<h2>Integrity at report time</h2><p>{} scopes, {} commits verified, {} broken · {}</p>\
         <table><tr><th>Tenant</th><th>Scope</th><th>Commits</th><th>Head seq</th><th>Head hash</th></tr>",
        ch["scopes"],
        ch["commits_checked"],
        ch["broken"],
        esc(&audit)
    );
    for c in ch["listed"].as_array().into_iter().flatten() {
        let style = if c["ok"] == true { "" } else { r#" style="color:#c0392b""# };
        let _ = write!(
            h,
            "<tr{style}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            s(&c["tenant_id"]),
            s(&c["scope"]),
            c["checked"],
            s(&c["head"]["seq"]),
            s(&c["head"]["commit_hash"])
        );
    }
    h.push_str("</table>");
    let er: Vec<String> = r["erasures"]["by_reason"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} nodes and {} edges ({})", e["nodes"], e["edges"], e["reason"].as_str().unwrap_or("")))
        .collect();
    let _ = write!(
        h,
        "<p>Erased in the window: {} · tenant teardowns: {}</p>",
        esc(&if er.is_empty() { "nothing".to_string() } else { er.join("; ") }),
        r["erasures"]["teardowns"].as_array().map_or(0, Vec::len)
    );

    let recs = r["recommendations"].as_array().cloned().unwrap_or_default();
    if !recs.is_empty() {
        h.push_str("<h2>What to do</h2><ul>");
        for x in recs {
            let _ = write!(
                h,
                "<li><code>{}</code>: {}</li>",
                s(&x["check"]),
                with_code(x["action"].as_str().unwrap_or(""))
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}
