//! `WEEKLY_STATUS.md`: the report for people who read it in a repository
//! or a ticket — the verdict, the checks, the figures, what to do.

use serde_json::Value;
use std::fmt::Write;

/// A number as the report shows it: ratios as percentages, absent as "n/a".
pub fn pct(v: &Value) -> String {
    v.as_f64().map_or_else(|| "n/a".to_string(), |r| format!("{:.1} %", r * 100.0))
}

/// The report's audience: every tenant, or one tenant (and scope).
pub fn subject(r: &Value) -> String {
    match (r["tenant_id"].as_str(), r["scope"].as_str()) {
        (Some(t), Some(s)) => format!("tenant {t}, scope {s}"),
        (Some(t), None) => format!("tenant {t}"),
        _ => "every tenant".to_string(),
    }
}

pub fn render(r: &Value) -> String {
    let mut m = String::new();
    let s = &r["scope_snapshot"];
    let verdict = if r["ok"] == true { "PASS" } else { "FAIL" };
    let _ = writeln!(m, "# Governance weekly status: {} ({})\n", r["report_week"].as_str().unwrap_or(""), subject(r));
    let _ = writeln!(
        m,
        "**{verdict}** · window {} → {} ({} h) · run `{}` · generated {}\n",
        r["window"]["start"].as_str().unwrap_or(""),
        r["window"]["end"].as_str().unwrap_or(""),
        r["window_hours"],
        r["run_id"].as_str().unwrap_or(""),
        r["generated_at"].as_str().unwrap_or("")
    );
    let sum = &r["summary"];
    for (label, key) in [("Failed errors", "failed_errors"), ("Failed warnings", "failed_warnings")] {
        let names: Vec<&str> = sum[key].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            let _ = writeln!(m, "{label}: {}\n", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "));
        }
    }
    let _ = writeln!(m, "## Checks\n\n| | Check | Severity | Value | Threshold | Detail |\n|---|---|---|---|---|---|");
    for c in r["checks"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | `{}` | {} | {} | {} | {} |",
            if c["pass"] == true { "✅" } else { "❌" },
            c["name"].as_str().unwrap_or(""),
            c["severity"].as_str().unwrap_or(""),
            c["value"],
            c["threshold"],
            c["detail"].as_str().unwrap_or("").replace('|', "\\|")
        );
    }
    let _ = writeln!(m, "\n## Memory in the window\n");
    let f = &s["feedback"];
    let _ = writeln!(m, "- Scopes: {}", s["scopes"]);
    let _ = writeln!(
        m,
        "- Rule feedback: {} ({} positive, {} negative, {} neutral; negative {}); run ids on {}, {} distinct runs",
        f["total"],
        f["positive"],
        f["negative"],
        f["neutral"],
        pct(&f["negative_ratio"]),
        pct(&f["run_id_coverage"]),
        f["distinct_runs"]
    );
    let ru = &s["rules"];
    let _ = writeln!(
        m,
        "- Rules now: {} active, {} shadow, {} draft, {} disabled",
        ru["active"], ru["shadow"], ru["draft"], ru["disabled"]
    );
    let d = &s["decision"];
    let _ = writeln!(
        m,
        "- Tool decisions: {}; tools feedback {} of which {} name their decision ({})",
        d["decisions"],
        d["tools_feedback"],
        d["linked_feedback"],
        pct(&d["link_coverage"])
    );
    let rc = &s["recall"];
    let _ = writeln!(
        m,
        "- Recalls: {} ({} name their consumer, {}; {} found no seed)",
        rc["total"],
        rc["with_identity"],
        pct(&rc["identity_coverage"]),
        rc["empty_seed"]
    );
    let l = &s["lane"];
    let _ = writeln!(
        m,
        "- Lanes now: {} private ({} owned, {}), {} shared",
        l["private_nodes"],
        l["private_owned"],
        pct(&l["private_owner_coverage"]),
        l["shared_nodes"]
    );
    let ct = &r["cross_tenant"];
    let _ = writeln!(
        m,
        "\n## Across tenants\n\n{} tenants; active-rule drift {}, negative-ratio drift {} ({} tenants with enough feedback).\n",
        ct["tenant_count"],
        ct["active_rule_count_drift"],
        ct["negative_ratio_drift"],
        ct["tenants_with_feedback_floor"]
    );
    let _ = writeln!(m, "| Tenant | Active rules | Feedback | Negative |\n|---|---|---|---|");
    for t in ct["top_tenants"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            t["tenant_id"].as_str().unwrap_or(""),
            t["active_rules"],
            t["feedback_total"],
            pct(&t["negative_ratio"])
        );
    }
    let ch = &r["chains"];
    let _ = writeln!(
        m,
        "\n## Integrity at report time\n\n- Commit chains: {} scopes, {} commits verified, {} broken",
        ch["scopes"], ch["commits_checked"], ch["broken"]
    );
    match r["audit_chain"].as_object() {
        Some(a) => {
            let _ = writeln!(
                m,
                "- Audit log: {} events, {}",
                a["checked"],
                if a["ok"] == true { "verifies" } else { "BROKEN" }
            );
        }
        None => {
            let _ = writeln!(m, "- Audit log: none in this store");
        }
    }
    let _ = writeln!(m, "\n| Tenant | Scope | Commits | Head seq | Head hash |\n|---|---|---|---|---|");
    for c in ch["listed"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | `{}` |",
            c["tenant_id"].as_str().unwrap_or(""),
            c["scope"].as_str().unwrap_or(""),
            c["checked"],
            c["head"]["seq"],
            c["head"]["commit_hash"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(m, "\n## Erasures, dead letters, quotas, SLOs\n");
    let er = &r["erasures"];
    let erased: Vec<String> = er["by_reason"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} nodes and {} edges ({})", e["nodes"], e["edges"], e["reason"].as_str().unwrap_or("")))
        .collect();
    let _ = writeln!(m, "- Erased: {}", if erased.is_empty() { "nothing".to_string() } else { erased.join("; ") });
    let _ = writeln!(m, "- Tenant teardowns: {}", er["teardowns"].as_array().map_or(0, Vec::len));
    let dl = &r["dead_letters"];
    let _ = writeln!(
        m,
        "- Dead letters: {} open, {} dead-lettered in the window; {} replays ({} jobs) and {} previews",
        dl["open"],
        dl["dead_lettered_in_window"],
        dl["replays_in_window"],
        dl["jobs_replayed_in_window"],
        dl["replay_previews_in_window"]
    );
    let q = &r["quota"];
    let _ = writeln!(m, "- Quota denials (429): {} {}", q["denials"], q["denials_by_endpoint"]);
    for t in r["slo"]["tenants"].as_array().into_iter().flatten() {
        for o in t["objectives"].as_array().into_iter().flatten() {
            let _ = writeln!(
                m,
                "- SLO {} / {}: attainment {} against {} ({}), budget consumed {}",
                t["tenant_id"].as_str().unwrap_or(""),
                o["name"].as_str().unwrap_or(""),
                pct(&o["window"]["attainment"]),
                pct(&o["target"]),
                o["status"].as_str().unwrap_or(""),
                pct(&o["error_budget"]["consumed_ratio"])
            );
        }
    }
    let recs = r["recommendations"].as_array().cloned().unwrap_or_default();
    if !recs.is_empty() {
        let _ = writeln!(m, "\n## Recommendations\n");
        for x in recs {
            let _ = writeln!(m, "- `{}`: {}", x["check"].as_str().unwrap_or(""), x["action"].as_str().unwrap_or(""));
        }
    }
    m
}
