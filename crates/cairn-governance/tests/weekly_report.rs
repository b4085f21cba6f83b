//! The weekly report on seeded data: every check's value is known, and the
//! documents say what the JSON says.

use cairn_core::tenant_scope::ScopeDefaults;
use cairn_core::time_fmt::{parse_rfc3339_millis, rfc3339_millis};
use cairn_governance::snapshot::Sources;
use cairn_governance::weekly_report;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

fn at(s: &str) -> i64 {
    parse_rfc3339_millis(s).unwrap()
}

/// Wednesday of 2026-W49; the report covers the 168 h before it.
fn now() -> i64 {
    at("2026-12-02T12:00:00.000Z")
}

fn write(db: &NativeSqlite, body: Value, at_ms: i64) {
    let s = cairn_memory::settings::Settings::default();
    let spec = cairn_memory::write_request::parse(&body, &s).unwrap();
    cairn_memory::write_path::write(db, &s, &spec, at_ms).unwrap();
}

#[allow(clippy::too_many_arguments)] // one row shape, spelled out at each call
fn feedback(
    db: &NativeSqlite,
    scope: &str,
    n: usize,
    outcome: &str,
    source: &str,
    decision: bool,
    run: bool,
    at_ms: i64,
) {
    for i in 0..n {
        db.exec(
            "INSERT INTO memory_rule_feedback (id, scope, rule_node_id, run_id, outcome, source, decision_id, created_at, commit_id) \
             VALUES (?, ?, 'r', ?, ?, ?, ?, ?, 'c')",
            &[
                format!("{scope}-{outcome}-{source}-{decision}-{run}-{i}-{at_ms}").into(),
                scope.into(),
                run.then(|| format!("run-{}", i % 2)).into(),
                outcome.into(),
                source.into(),
                decision.then_some("d").into(),
                rfc3339_millis(at_ms).into(),
            ],
        )
        .unwrap();
    }
}

fn telemetry(db: &NativeSqlite, tenant: &str, status: i64, endpoint: &str, n: usize, at_ms: i64) {
    for _ in 0..n {
        db.exec(
            "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, created_at) VALUES (?, ?, ?, 5, ?)",
            &[tenant.into(), endpoint.into(), status.into(), rfc3339_millis(at_ms).into()],
        )
        .unwrap();
    }
}

/// Two tenants: `default` (scope alpha) with most of the week's activity,
/// `acme` (scope main) with a little.
fn seeded() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    let t0 = now() - 48 * HOUR;
    cairn_memory::schema::ensure(&db, &rfc3339_millis(t0)).unwrap();
    cairn_control_plane::schema::ensure(&db, &rfc3339_millis(t0)).unwrap();
    // 3 private memories, 2 with an owner; 1 shared.
    write(
        &db,
        json!({"scope": "alpha", "input_text": "seed", "nodes": [
            {"type": "event", "text_summary": "a", "owner_agent_id": "agent-1"},
            {"type": "event", "text_summary": "b", "producer_agent_id": "agent-2"},
            {"type": "event", "text_summary": "c"},
            {"type": "entity", "text_summary": "d", "memory_lane": "shared"}]}),
        t0,
    );
    write(
        &db,
        json!({"tenant_id": "acme", "scope": "main", "input_text": "seed", "nodes": [
        {"type": "event", "text_summary": "e", "memory_lane": "shared"}]}),
        t0,
    );
    for (i, state) in ["active", "active", "active", "draft", "shadow"].iter().enumerate() {
        db.exec(
            "INSERT INTO memory_rule_defs (rule_node_id, scope, state, created_at, updated_at, commit_id) VALUES (?, 'alpha', ?, ?, ?, 'c')",
            &[format!("rule-{i}").into(), (*state).into(), rfc3339_millis(t0).into(), rfc3339_millis(t0).into()],
        )
        .unwrap();
    }
    // alpha: 6 rule feedback (2 negative, 4 with run ids over 2 runs) and
    // 4 tools feedback (3 name their decision); acme: 5 positive.
    feedback(&db, "alpha", 2, "negative", "rule_feedback", false, true, t0);
    feedback(&db, "alpha", 2, "positive", "rule_feedback", false, true, t0);
    feedback(&db, "alpha", 2, "neutral", "rule_feedback", false, false, t0);
    feedback(&db, "alpha", 3, "positive", "tools_feedback", true, false, t0);
    feedback(&db, "alpha", 1, "positive", "tools_feedback", false, false, t0);
    feedback(&db, "tenant:acme::scope:main", 5, "positive", "rule_feedback", false, false, t0);
    // Before the window: not counted.
    feedback(&db, "alpha", 3, "negative", "rule_feedback", false, false, now() - 200 * HOUR);
    for i in 0..2 {
        db.exec(
            "INSERT INTO memory_execution_decisions (id, scope, decision_kind, context_sha256, policy_sha256, created_at) \
             VALUES (?, 'alpha', 'tools_select', 'x', 'y', ?)",
            &[format!("d{i}").into(), rfc3339_millis(t0).into()],
        )
        .unwrap();
    }
    // 5 recalls, 4 name their consumer, 1 found no seed.
    for i in 0..5 {
        db.exec(
            "INSERT INTO memory_recall_audit (scope, endpoint, consumer_agent_id, query_sha256, seed_count, node_count, edge_count, created_at) \
             VALUES ('alpha', 'recall_text', ?, 'q', ?, 1, 0, ?)",
            &[(i < 4).then_some("agent-1").into(), i64::from(i > 0).into(), rfc3339_millis(t0).into()],
        )
        .unwrap();
    }
    // Telemetry of default: 10 requests on day one, 2 throttled recalls; 5
    // on day two, 1 server error.
    telemetry(&db, "default", 200, "write", 8, t0);
    telemetry(&db, "default", 429, "recall", 2, t0);
    telemetry(&db, "default", 200, "write", 4, t0 + 24 * HOUR);
    telemetry(&db, "default", 500, "recall_text", 1, t0 + 24 * HOUR);
    // One of alpha's jobs dead-lettered in the window, no replay decided.
    db.exec(
        "INSERT INTO memory_outbox (scope, commit_id, event_type, payload, payload_sha256, job_key, created_at, failed_at, failed_reason) \
         VALUES ('alpha', 'c', 'embed_nodes', '{}', 'x', 'k', ?, ?, 'embedder down')",
        &[rfc3339_millis(t0).into(), rfc3339_millis(t0 + HOUR).into()],
    )
    .unwrap();
    db
}

fn profiles() -> Value {
    json!({"tiers": {"solo": {"slo": {"window_hours": 720, "objectives": [
        {"name": "availability", "sli": "availability", "target": 0.99}]}}}})
}

fn report(db: &NativeSqlite, body: Value) -> Value {
    let defaults = ScopeDefaults::default();
    let p = profiles();
    let src = Sources {
        db,
        control: db,
        defaults: &defaults,
        tier_profiles: Some(&p),
        default_tier: "solo",
        billing_disabled: false,
    };
    let r = weekly_report(&src, &body, now()).unwrap();
    let mut v = r.to_json();
    v["markdown"] = json!(r.markdown);
    v["html"] = json!(r.html);
    v
}

fn check<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["summary"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn every_check_has_its_known_value() {
    let db = seeded();
    let r = report(&db, json!({"max_tenant_active_rule_count_drift": 2, "strict": true}));
    let s = &r["summary"];
    assert_eq!(s["kind"], "governance_weekly_report");
    assert_eq!(s["report_week"], "2026-W49");
    assert_eq!(s["window"]["end"], "2026-12-02T12:00:00.000Z");
    assert_eq!(s["window"]["start"], "2026-11-25T12:00:00.000Z");
    let snap = &s["scope_snapshot"];
    assert_eq!(snap["scopes"], 2);
    assert_eq!(
        snap["feedback"],
        json!({"total": 15, "positive": 11, "negative": 2, "neutral": 2,
        "negative_ratio": 0.133333, "with_run_id": 4, "run_id_coverage": 0.266667, "distinct_runs": 2})
    );
    assert_eq!(snap["rules"], json!({"draft": 1, "shadow": 1, "active": 3, "disabled": 0}));
    assert_eq!(
        snap["decision"],
        json!({"available": true, "decisions": 2, "tools_feedback": 4, "linked_feedback": 3, "link_coverage": 0.75})
    );
    assert_eq!(
        snap["recall"],
        json!({"available": true, "total": 5, "with_identity": 4, "identity_coverage": 0.8, "empty_seed": 1})
    );
    assert_eq!(
        snap["lane"],
        json!({"available": true, "private_nodes": 3, "private_owned": 2, "shared_nodes": 2,
        "private_owner_coverage": 0.666667})
    );
    let expect = [
        ("lane_schema_available", true, json!(true)),
        ("decision_schema_available", true, json!(true)),
        ("recall_audit_schema_available", true, json!(true)),
        ("scope_private_owner_coverage_min", false, json!(0.666667)),
        ("scope_decision_link_coverage_min", false, json!(0.75)),
        ("scope_recall_identity_coverage_min", true, json!(0.8)),
        ("tenant_active_rule_count_drift_max", false, json!(3)),
        // default 2/10 = 0.2, acme 0/5 = 0.
        ("tenant_negative_ratio_drift_max", true, json!(0.2)),
        ("commit_chains_verified", true, json!(2)),
        ("audit_chain_verified", true, json!(0)),
        ("dead_letters_have_replay_decision", false, json!(1)),
        // 3 bad of 15 against 0.99: the budget is spent.
        ("slo_error_budgets_held", false, json!(0)),
    ];
    let names: Vec<&str> = s["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, expect.iter().map(|e| e.0).collect::<Vec<_>>());
    for (name, pass, value) in &expect {
        let c = check(&r, name);
        assert_eq!((&c["pass"], &c["value"]), (&json!(pass), value), "{name}: {c}");
    }
    assert_eq!(s["summary"]["failed_errors"], json!(["scope_private_owner_coverage_min"]));
    assert_eq!(
        s["summary"]["failed_warnings"],
        json!([
            "scope_decision_link_coverage_min",
            "tenant_active_rule_count_drift_max",
            "dead_letters_have_replay_decision",
            "slo_error_budgets_held"
        ])
    );
    assert_eq!((s["ok"].clone(), r["exit_code"].clone()), (json!(false), json!(2)));
    assert_eq!(s["recommendations"].as_array().unwrap().len(), 5);
    assert_eq!(s["cross_tenant"]["tenant_count"], 2);
    assert_eq!(
        s["cross_tenant"]["top_tenants"][0],
        json!({"tenant_id": "default", "active_rules": 3,
        "feedback_total": 10, "feedback_negative": 2, "negative_ratio": 0.2})
    );
    assert_eq!(s["dead_letters"]["open"], 1);
    assert_eq!(s["dead_letters"]["dead_lettered_in_window"], 1);
    assert_eq!(s["quota"]["denials_by_endpoint"], json!({"recall": 2}));
    assert_eq!(
        s["quota"]["days"],
        json!([
        {"day": "2026-11-30", "requests": 10, "throttled": 2, "server_errors": 0},
        {"day": "2026-12-01", "requests": 5, "throttled": 0, "server_errors": 1}])
    );
    let slo = &s["slo"]["tenants"][0]["objectives"][0];
    assert_eq!((&slo["window"]["bad"], &slo["status"]), (&json!(3), &json!("breached")));
    // The backlog holds the dead letter from its time on.
    let backlog = s["backlog"].as_array().unwrap();
    assert_eq!(backlog.len(), 14);
    assert_eq!(backlog.last().unwrap()["dead_letter"], 1);
    assert_eq!(backlog[0]["dead_letter"], 0);
    // Chain heads are listed per scope.
    let alpha = s["chains"]["listed"].as_array().unwrap().iter().find(|c| c["scope"] == "alpha").unwrap();
    assert_eq!(
        (&alpha["tenant_id"], &alpha["checked"], &alpha["head"]["seq"]),
        (&json!("default"), &json!(1), &json!(1))
    );
    // The documents carry the same verdict and figures.
    let md = r["markdown"].as_str().unwrap();
    assert!(md.starts_with("# Governance weekly status: 2026-W49 (every tenant)"), "{md}");
    assert!(md.contains("| ❌ | `scope_private_owner_coverage_min` | error | 0.666667 | 1.0 |"), "{md}");
    let html = r["html"].as_str().unwrap();
    assert!(html.contains("FAIL: 1 error check") && html.matches("<svg").count() == 3, "{html}");
    assert_eq!(r["files"]["summary.json"].as_str().map(|t| serde_json::from_str::<Value>(t).unwrap()), Some(s.clone()));
}

#[test]
fn one_tenant_sees_its_own_scopes_and_a_tampered_chain_fails() {
    let db = seeded();
    let r = report(&db, json!({"tenant_id": "acme"}));
    let s = &r["summary"];
    assert_eq!((&s["tenant_id"], &s["scope_snapshot"]["scopes"]), (&json!("acme"), &json!(1)));
    assert_eq!(s["scope_snapshot"]["feedback"]["total"], 5);
    assert_eq!(check(&r, "scope_private_owner_coverage_min")["value"], Value::Null, "acme has no private memories");
    assert_eq!(check(&r, "scope_private_owner_coverage_min")["pass"], true);
    assert_eq!(s["quota"]["denials"], 0);
    assert_eq!(s["slo"]["tenants"][0]["objectives"][0]["window"]["total"], 0);
    // Cross-tenant figures still span every tenant.
    assert_eq!(s["cross_tenant"]["tenant_count"], 2);
    assert_eq!(s["exit_code"], 0);
    db.exec("UPDATE memory_nodes SET text_summary = 'changed' WHERE scope = 'tenant:acme::scope:main'", &[]).unwrap();
    let r = report(&db, json!({"tenant_id": "acme", "strict": true}));
    let c = check(&r, "commit_chains_verified");
    assert_eq!((&c["pass"], &c["value"]), (&json!(false), &json!(0)));
    assert_eq!(r["summary"]["chains"]["broken"], 1);
    assert_eq!(r["exit_code"], 2);
}

#[test]
fn a_past_week_is_reported_whole_and_a_future_one_refused() {
    let db = seeded();
    let r = report(&db, json!({"report_week": "2026-W48"}));
    let s = &r["summary"];
    assert_eq!(
        (&s["window"]["start"], &s["window"]["end"]),
        (&json!("2026-11-23T00:00:00.000Z"), &json!("2026-11-30T00:00:00.000Z"))
    );
    // Only the 3 old negatives (200 h ago: 2026-11-24) fall in W48.
    assert_eq!(s["scope_snapshot"]["feedback"]["total"], 3);
    assert_eq!(s["quota"]["days"], json!([]));
    let defaults = ScopeDefaults::default();
    let src = Sources {
        db: &db,
        control: &db,
        defaults: &defaults,
        tier_profiles: None,
        default_tier: "solo",
        billing_disabled: false,
    };
    let e = weekly_report(&src, &json!({"report_week": "2027-W02"}), now()).err().unwrap();
    assert_eq!((e.status, e.code.as_str()), (400, "invalid_report_week"));
}
