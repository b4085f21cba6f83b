//! The report's checks, pure over a [`Snapshot`]: the reference's (§7.8)
//! with its names, severities and pass rules, then Cairn's own. Each check
//! is `{name, severity, pass, value, threshold, detail}`; a coverage with
//! nothing to cover (no private memories, no tools feedback, no recalls)
//! passes and says so.

use crate::options::Thresholds;
use crate::snapshot::Snapshot;
use serde_json::{Value, json};

/// The consistency check's severities: the same words mean the same here.
pub use cairn_consistency::Severity;

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub severity: Severity,
    pub pass: bool,
    pub value: Value,
    pub threshold: Value,
    pub detail: String,
    /// What to do when it fails.
    pub recommendation: &'static str,
}

impl Check {
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "severity": self.severity.as_str(), "pass": self.pass,
               "value": self.value, "threshold": self.threshold, "detail": self.detail})
    }
}

/// `n / d`, rounded to 6 places; `None` when there is nothing to measure.
pub fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| ((n as f64 / d as f64) * 1e6).round() / 1e6)
}

fn coverage(
    name: &'static str,
    severity: Severity,
    covered: i64,
    of: i64,
    min: f64,
    (population, covered_by): (&str, &str),
    recommendation: &'static str,
) -> Check {
    let r = ratio(covered, of);
    Check {
        name,
        severity,
        // A little slack: 0.95 of 20 is 19, and 19/20 must pass.
        pass: r.is_none_or(|r| r + 1e-9 >= min),
        value: r.map_or(Value::Null, |r| json!(r)),
        threshold: json!(min),
        detail: match r {
            Some(r) => format!("{covered} of {of} {population} {covered_by} ({:.1} %)", r * 100.0),
            None => format!("no {population}: nothing to cover"),
        },
        recommendation,
    }
}

fn available(name: &'static str, severity: Severity, yes: bool, table: &str) -> Check {
    Check {
        name,
        severity,
        pass: yes,
        value: json!(yes),
        threshold: json!(true),
        detail: if yes {
            format!("{table} readable")
        } else {
            format!("{table} missing: the store's schema is behind")
        },
        recommendation: "Migrate the store (start the current build on it once) and run the report again.",
    }
}

/// Every check, in the order the report lists them.
pub fn evaluate(s: &Snapshot, t: &Thresholds) -> Vec<Check> {
    let mut out = vec![
        available("lane_schema_available", Severity::Error, s.lane_available, "memory_nodes (lanes and owners)"),
        available(
            "decision_schema_available",
            Severity::Warning,
            s.decision_available,
            "memory_execution_decisions and memory_rule_feedback",
        ),
        available("recall_audit_schema_available", Severity::Warning, s.recall_available, "memory_recall_audit"),
        coverage(
            "scope_private_owner_coverage_min",
            Severity::Error,
            s.lane.private_owned,
            s.lane.private_nodes,
            t.min_private_owner_coverage,
            ("private memories", "have an owner"),
            "Private memories without an owner are visible to nobody: give them owners (owner := producer) or move them to the shared lane, and have writers send owner_agent_id or producer_agent_id.",
        ),
        coverage(
            "scope_decision_link_coverage_min",
            Severity::Warning,
            s.feedback.linked_to_decision,
            s.feedback.tools_feedback,
            t.min_decision_link_coverage,
            ("tools feedback events in the window", "name their decision"),
            "Send the decision_id tools/select returned with every tools/feedback, so feedback is traceable to the decision it judges.",
        ),
        coverage(
            "scope_recall_identity_coverage_min",
            Severity::Warning,
            s.recalls.with_identity,
            s.recalls.total,
            t.min_recall_identity_coverage,
            ("recalls in the window", "name their consumer"),
            "Send consumer_agent_id (or consumer_team_id) with recall and recall_text, so private memories are reachable and each recall is attributable.",
        ),
    ];
    // Cross-tenant drift (the reference's warnings).
    let rules: Vec<i64> = s.tenants.iter().map(|t| t.active_rules).collect();
    let rule_drift = rules.iter().max().zip(rules.iter().min()).map_or(0, |(a, b)| a - b);
    out.push(Check {
        name: "tenant_active_rule_count_drift_max",
        severity: Severity::Warning,
        pass: s.tenants.len() <= 1 || rule_drift <= t.max_tenant_active_rule_count_drift,
        value: json!(rule_drift),
        threshold: json!(t.max_tenant_active_rule_count_drift),
        detail: format!("active rules per tenant range over {rule_drift} across {} tenants", s.tenants.len()),
        recommendation: "Review the tenants with the most and fewest active rules: a large gap often means rules promoted in one tenant were never rolled out to the others, or a tenant's rules were left in shadow.",
    });
    let ratios: Vec<f64> = s
        .tenants
        .iter()
        .filter(|x| x.feedback_total >= t.tenant_drift_min_feedback)
        .filter_map(|x| ratio(x.feedback_negative, x.feedback_total))
        .collect();
    let neg_drift = if ratios.is_empty() {
        0.0
    } else {
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        ((hi - lo) * 1e6).round() / 1e6
    };
    out.push(Check {
        name: "tenant_negative_ratio_drift_max",
        severity: Severity::Warning,
        pass: ratios.len() < 2 || neg_drift <= t.max_tenant_negative_ratio_drift + 1e-9,
        value: json!(neg_drift),
        threshold: json!(t.max_tenant_negative_ratio_drift),
        detail: format!(
            "negative feedback ratio ranges over {neg_drift} across {} tenants with at least {} feedback events",
            ratios.len(),
            t.tenant_drift_min_feedback
        ),
        recommendation: "A tenant whose feedback is far more negative than the others' has rules that misfire for it: look at its most negatively rated rules and disable or refine them.",
    });
    // Cairn's own.
    let broken: Vec<&str> = s.chains.iter().filter(|c| c.first_broken.is_some()).map(|c| c.scope.as_str()).collect();
    let commits: i64 = s.chains.iter().map(|c| c.checked).sum();
    out.push(Check {
        name: "commit_chains_verified",
        severity: Severity::Error,
        pass: broken.is_empty(),
        value: json!(s.chains.len() - broken.len()),
        threshold: json!(s.chains.len()),
        detail: if broken.is_empty() {
            format!("{} scopes, {commits} commits: every chain verifies", s.chains.len())
        } else {
            format!("{} of {} scopes do not verify: {}", broken.len(), s.chains.len(), broken.join(", "))
        },
        recommendation: "A chain that does not verify means a memory row or commit was changed outside the write path: run `cairn job consistency-check --strict` for the rows, and restore the scope from a backup taken before the first broken commit.",
    });
    let audit_ok = s.audit_chain.as_ref().is_none_or(|a| a["ok"] == json!(true));
    out.push(Check {
        name: "audit_chain_verified",
        severity: Severity::Error,
        pass: audit_ok,
        value: s.audit_chain.as_ref().map_or(Value::Null, |a| a["checked"].clone()),
        threshold: Value::Null,
        detail: match &s.audit_chain {
            None => "no control plane in this store: no audit log to verify".into(),
            Some(a) if audit_ok => format!("{} audit events verify", a["checked"]),
            Some(a) => format!("the audit log breaks at {}", a["first_broken"]),
        },
        recommendation: "The control plane's audit log was changed outside the API: compare it with its last exported copy and find who had database access.",
    });
    let d = &s.dead_letters;
    let undecided = d.open > 0 && d.newest_at.as_deref() > d.last_decision_at.as_deref();
    out.push(Check {
        name: "dead_letters_have_replay_decision",
        severity: Severity::Warning,
        pass: !undecided,
        value: json!(d.open),
        threshold: json!(0),
        detail: if d.open == 0 {
            "no dead letters are open".into()
        } else if undecided {
            format!(
                "{} open, the newest ({}) after the last replay decision",
                dead_letters(d.open),
                d.newest_at.as_deref().unwrap_or("")
            )
        } else {
            format!(
                "{} open, all before the last replay decision ({})",
                dead_letters(d.open),
                d.last_decision_at.as_deref().unwrap_or("")
            )
        },
        recommendation: "Follow the dead-letter runbook: `cairn job outbox-status --status dead_letter`, fix the cause, `cairn job outbox-replay --dry-run`, then replay.",
    });
    let breached: Vec<String> = s
        .slo
        .iter()
        .flat_map(|t| {
            t.objectives
                .iter()
                .filter(|o| o["status"] == "breached")
                .map(move |o| format!("{}/{}", t.tenant_id, o["name"].as_str().unwrap_or("")))
        })
        .collect();
    let objectives: usize = s.slo.iter().map(|t| t.objectives.len()).sum();
    out.push(Check {
        name: "slo_error_budgets_held",
        severity: Severity::Warning,
        pass: breached.is_empty(),
        value: json!(objectives - breached.len()),
        threshold: json!(objectives),
        detail: if objectives == 0 {
            "no tenant with telemetry has SLO objectives in its tier".into()
        } else if breached.is_empty() {
            format!("{objectives} objectives of {} tenants kept their error budget", s.slo.len())
        } else {
            format!("error budget spent: {}", breached.join(", "))
        },
        recommendation: "An objective spent its error budget over the window: look at the SLO view (`GET /v1/admin/control/slo/tenant/:id`) for the endpoint and the hours that burned it.",
    });
    out
}

/// `{pass, failed_errors, failed_warnings}` and the exit code: 2 when an
/// error check fails under `strict`, or any check under `strict_warnings`.
pub fn summarize(checks: &[Check], strict: bool, strict_warnings: bool) -> (Value, i32) {
    let failed = |sev: Severity| -> Vec<&str> {
        checks.iter().filter(|c| !c.pass && c.severity == sev).map(|c| c.name).collect()
    };
    let (errors, warnings) = (failed(Severity::Error), failed(Severity::Warning));
    let pass = errors.is_empty() && (!strict_warnings || warnings.is_empty());
    let code = if (strict && !errors.is_empty()) || (strict_warnings && !(errors.is_empty() && warnings.is_empty())) {
        2
    } else {
        0
    };
    (json!({"pass": pass, "failed_errors": errors, "failed_warnings": warnings}), code)
}

/// "1 dead letter", "3 dead letters".
fn dead_letters(n: i64) -> String {
    if n == 1 { "1 dead letter".into() } else { format!("{n} dead letters") }
}
