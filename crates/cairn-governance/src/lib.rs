//! The weekly governance report (issue 18; the reference's
//! `job:governance-weekly-report`, §7.8): what a week of a tenant's (or
//! every tenant's) memory looked like to an auditor.
//!
//! - [`options`]: the request (tenant, scope, ISO week, window, thresholds);
//! - [`snapshot`]: the figures, read from the scopes' store and the home
//!   store's control plane;
//! - [`checks`]: the reference's checks and Cairn's own, pure;
//! - [`markdown`] and [`html`]: `WEEKLY_STATUS.md` and `weekly_report.html`
//!   (with charts) from the report's JSON, so a report read back from an
//!   archive renders the same.
//!
//! [`weekly_report`] returns the three documents; `cairn job
//! governance-weekly-report` writes them to a directory.

pub mod checks;
pub mod compliance;
pub mod html;
pub mod markdown;
pub mod options;
pub mod schedule;
pub mod snapshot;
mod svg;

use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use checks::ratio;
use options::Options;
use serde_json::{Value, json};
use snapshot::{CHAINS_LISTED, Snapshot, Sources, TOP_TENANTS};

/// File names of a report's documents.
pub const SUMMARY_FILE: &str = "summary.json";
pub const STATUS_FILE: &str = "WEEKLY_STATUS.md";
pub const HTML_FILE: &str = "weekly_report.html";

/// A report: its JSON (`summary.json`) and the two renderings.
pub struct Report {
    pub summary: Value,
    pub markdown: String,
    pub html: String,
    pub exit_code: i32,
}

impl Report {
    /// `{summary, files: {name: text}, exit_code}`: what the verb returns.
    pub fn to_json(&self) -> Value {
        json!({
            "summary": self.summary,
            "files": {
                SUMMARY_FILE: cairn_core::json_text(&self.summary),
                STATUS_FILE: self.markdown,
                HTML_FILE: self.html,
            },
            "exit_code": self.exit_code,
        })
    }
}

/// Makes the report `body` asks for (see [`options::Options::parse`]).
pub fn weekly_report(src: &Sources, body: &Value, now_ms: i64) -> Result<Report, ApiError> {
    let o = Options::parse(body, src.defaults, now_ms)?;
    let snap = snapshot::gather(src, &o)?;
    let summary = summary_json(&o, &snap, src.defaults);
    Ok(Report {
        markdown: markdown::render(&summary),
        html: html::render(&summary),
        exit_code: summary["exit_code"].as_i64().unwrap_or(0) as i32,
        summary,
    })
}

/// The report's JSON: the reference's `summary.json` shape, plus Cairn's
/// sections (chains, audit chain, erasures, dead letters, quota, backlog, SLO).
pub fn summary_json(o: &Options, s: &Snapshot, defaults: &cairn_core::tenant_scope::ScopeDefaults) -> Value {
    let checks = checks::evaluate(s, &o.thresholds);
    let (summary, exit_code) = checks::summarize(&checks, o.strict, o.strict_warnings);
    let recommendations: Vec<Value> = checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| json!({"check": c.name, "severity": c.severity.as_str(), "action": c.recommendation}))
        .collect();
    let f = &s.feedback;
    let eligible = s.tenants.iter().filter(|t| t.feedback_total >= o.thresholds.tenant_drift_min_feedback).count();
    let mut top = s.tenants.clone();
    top.sort_by(|a, b| b.active_rules.cmp(&a.active_rules).then(b.feedback_total.cmp(&a.feedback_total)));
    let own = o.tenant(defaults);
    let top: Vec<Value> = top
        .iter()
        .filter(|t| !o.tenant_export || own.as_deref() == Some(t.tenant_id.as_str()))
        .take(TOP_TENANTS)
        .map(|t| {
            json!({"tenant_id": t.tenant_id, "active_rules": t.active_rules, "feedback_total": t.feedback_total,
                   "feedback_negative": t.feedback_negative, "negative_ratio": ratio(t.feedback_negative, t.feedback_total)})
        })
        .collect();
    let check_json: Vec<Value> = checks.iter().map(checks::Check::to_json).collect();
    let find = |name: &str| check_json.iter().find(|c| c["name"] == name).map_or(Value::Null, |c| c["value"].clone());
    let commits: i64 = s.chains.iter().map(|c| c.checked).sum();
    let broken = s.chains.iter().filter(|c| c.first_broken.is_some()).count();
    let chains: Vec<Value> = s
        .chains
        .iter()
        .take(CHAINS_LISTED)
        .map(|c| {
            let mut v = json!({"tenant_id": c.tenant_id, "scope": c.scope, "ok": c.first_broken.is_none(),
                               "checked": c.checked, "head": c.head});
            if let Some(b) = &c.first_broken {
                v["first_broken"] = b.clone();
            }
            v
        })
        .collect();
    let d = &s.dead_letters;
    json!({
        "ok": summary["pass"],
        "kind": "governance_weekly_report",
        "report_week": o.week.to_string(),
        "run_id": o.run_id,
        "generated_at": rfc3339_millis(o.now_ms),
        "window_hours": o.window_hours,
        "window": {"start": rfc3339_millis(o.start_ms), "end": rfc3339_millis(o.end_ms)},
        "tenant_id": own,
        "tenant_export": o.tenant_export,
        "scope": o.scope,
        "thresholds": o.thresholds.to_json(),
        "scope_snapshot": {
            "scopes": s.scopes,
            "feedback": {
                "total": f.total, "positive": f.positive, "negative": f.negative, "neutral": f.neutral,
                "negative_ratio": ratio(f.negative, f.total),
                "with_run_id": f.with_run_id, "run_id_coverage": ratio(f.with_run_id, f.total),
                "distinct_runs": f.distinct_runs,
            },
            "rules": {"draft": s.rules.draft, "shadow": s.rules.shadow, "active": s.rules.active, "disabled": s.rules.disabled},
            "decision": {
                "available": s.decision_available, "decisions": s.decisions, "tools_feedback": f.tools_feedback,
                "linked_feedback": f.linked_to_decision, "link_coverage": ratio(f.linked_to_decision, f.tools_feedback),
            },
            "recall": {
                "available": s.recall_available, "total": s.recalls.total, "with_identity": s.recalls.with_identity,
                "identity_coverage": ratio(s.recalls.with_identity, s.recalls.total), "empty_seed": s.recalls.empty_seed,
            },
            "lane": {
                "available": s.lane_available, "private_nodes": s.lane.private_nodes, "private_owned": s.lane.private_owned,
                "shared_nodes": s.lane.shared_nodes,
                "private_owner_coverage": ratio(s.lane.private_owned, s.lane.private_nodes),
            },
        },
        "cross_tenant": {
            "tenant_count": s.tenants.len(),
            "tenants_with_feedback_floor": eligible,
            "active_rule_count_drift": find("tenant_active_rule_count_drift_max"),
            "negative_ratio_drift": find("tenant_negative_ratio_drift_max"),
            "top_tenants": top,
        },
        "chains": {"scopes": s.chains.len(), "commits_checked": commits, "broken": broken,
                   "listed": chains, "truncated": s.chains.len() > CHAINS_LISTED},
        "audit_chain": s.audit_chain,
        "erasures": {
            "by_reason": s.erasures.iter().map(|(r, n, e)| json!({"reason": r, "nodes": n, "edges": e})).collect::<Vec<_>>(),
            "teardowns": s.teardowns,
        },
        "dead_letters": {
            "open": d.open, "dead_lettered_in_window": d.in_window, "newest_at": d.newest_at,
            "replays_in_window": d.replay_events, "replay_previews_in_window": d.replay_previews,
            "jobs_replayed_in_window": d.replayed_jobs, "last_replay_decision_at": d.last_decision_at,
        },
        "quota": {
            // Telemetry records the endpoint a 429 answered, not the bucket
            // class (recall_text draws recall_text_embed and recall).
            "denials_by_endpoint": s.quota_denials,
            "denials": s.quota_denials.values().sum::<i64>(),
            "days": s.days.iter().map(|x| json!({"day": x.day, "requests": x.requests, "throttled": x.throttled,
                                                 "server_errors": x.server_errors})).collect::<Vec<_>>(),
        },
        "backlog": s.backlog.iter().map(|b| json!({"at": b.at, "open": b.open, "dead_letter": b.dead_letter})).collect::<Vec<_>>(),
        "slo": {
            "tenants": s.slo.iter().map(|t| json!({"tenant_id": t.tenant_id, "tier": t.tier, "objectives": t.objectives})).collect::<Vec<_>>(),
            "undefined_for": s.slo_undefined,
        },
        "checks": check_json,
        "summary": summary,
        "recommendations": recommendations,
        "exit_code": exit_code,
    })
}
