//! The weekly schedule over a seeded store: each tenant gets the report its
//! tier's governance profile names, once per week however often the
//! schedule runs; retention deletes exactly the reports past their tier's
//! days and records each deletion; the registry verifier catches an
//! archived report whose bytes changed or vanished.

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::{evidence, governance_reports};
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_core::time_fmt::{IsoWeek, parse_rfc3339_millis, rfc3339_millis};
use cairn_governance::schedule::{self, ScheduleRequest, ScheduleSources};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const DAY: i64 = 86_400_000;

fn at(s: &str) -> i64 {
    parse_rfc3339_millis(s).unwrap()
}

/// Distinct bytes on every call (ids must differ).
fn random(b: &mut [u8]) {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    for (i, x) in b.iter_mut().enumerate() {
        *x = n[i % 8] ^ (i as u8);
    }
}

/// Four tiers, one per governance profile the schedule treats differently.
fn profiles() -> Value {
    json!({"tiers": {
        "free": {"governance": {"report": "none", "retention_days": 30}},
        "starter": {"governance": {"report": "shared_weekly", "retention_days": 30}},
        "growth": {"governance": {"report": "tenant_weekly_export", "retention_days": 90}},
        "enterprise": {"governance": {"report": "compliance_evidence_package", "retention_days": "contract"}},
    }})
}

fn write(db: &NativeSqlite, tenant: &str, text: &str, at_ms: i64) {
    let s = cairn_memory::settings::Settings::default();
    let body = json!({"tenant_id": tenant, "scope": "main", "input_text": text,
                      "nodes": [{"type": "event", "text_summary": text, "owner_agent_id": "agent-1", "memory_lane": "private"}]});
    let spec = cairn_memory::write_request::parse(&body, &s).unwrap();
    cairn_memory::write_path::write(db, &s, &spec, at_ms).unwrap();
}

/// Tenants a and d on starter, b on growth, c on enterprise, e on free,
/// each with a memory written in 2026-W48; `late` (growth) created in W49.
fn seeded() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    let t0 = at("2026-11-25T10:00:00.000Z");
    cairn_memory::schema::ensure(&db, &rfc3339_millis(t0)).unwrap();
    cairn_control_plane::schema::ensure(&db, &rfc3339_millis(t0)).unwrap();
    for (tenant, tier) in [("a", "starter"), ("b", "growth"), ("c", "enterprise"), ("d", "starter"), ("e", "free")] {
        db.exec(
            "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier) VALUES (?, 'active', '{}', ?, ?, ?)",
            &[tenant.into(), rfc3339_millis(t0).into(), rfc3339_millis(t0).into(), tier.into()],
        )
        .unwrap();
        write(&db, tenant, &format!("{tenant} remembers"), t0);
    }
    // Created after W48 ended: no W48 report, its own from W49 on.
    let late = rfc3339_millis(at("2026-12-01T08:00:00.000Z"));
    db.exec(
        "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier) VALUES ('late', 'active', '{}', ?, ?, 'growth')",
        &[late.clone().into(), late.into()],
    )
    .unwrap();
    db
}

fn run(db: &NativeSqlite, now_ms: i64) -> Value {
    let p = profiles();
    let defaults = ScopeDefaults::default();
    let src = ScheduleSources {
        home: db,
        defaults: &defaults,
        tier_profiles: Some(&p),
        default_tier: "free",
        billing_disabled: false,
    };
    let ctx = ctx_at(now_ms);
    let req = ScheduleRequest::parse(&json!({}), now_ms).unwrap();
    schedule::run(&src, &ctx, req).unwrap()
}

fn subjects(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v.as_array().unwrap().iter().map(|r| r["subject"].as_str().unwrap().to_string()).collect();
    s.sort();
    s
}

fn verify(db: &NativeSqlite) -> Value {
    evidence::verify(db, &ctx_at(0)).unwrap()
}

fn ctx_at(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx {
        request_id: "schedule-test",
        now_ms,
        random: &random,
        tier_profiles: None,
        default_tier: "free",
        billing_disabled: false,
        default_tenant_id: "default",
        alert_loopback_targets: false,
        tenant_store: None,
        tier_store: None,
    }
}

fn listed(db: &NativeSqlite, query: &[(&str, &str)]) -> Vec<Value> {
    let q: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    governance_reports::list(db, &q).unwrap()["reports"].as_array().unwrap().clone()
}

#[test]
fn one_report_per_subject_per_week_then_retention_deletes_exactly_the_expired() {
    let db = seeded();
    // Wednesday of W49: the last closed week is W48.
    let now = at("2026-12-02T09:00:00.000Z");
    let first = run(&db, now);
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["report_week"], "2026-W48");
    assert_eq!(subjects(&first["made"]), ["shared", "tenant:b", "tenant:c"]);
    assert_eq!(first["skipped"], json!([]));
    let shared = first["made"].as_array().unwrap().iter().find(|r| r["subject"] == "shared").unwrap().clone();
    assert_eq!(shared["covered_tenants"], json!(["a", "d"]));
    assert_eq!(shared["tiers"], json!(["starter"]));
    assert_eq!(shared["retention_days"], 30);
    assert_eq!(shared["period_start"], "2026-11-23T00:00:00.000Z");
    assert_eq!(shared["period_end"], "2026-11-30T00:00:00.000Z");
    assert_eq!(shared["expires_at"], "2026-12-30T00:00:00.000Z");

    // Every later run that week finds them archived.
    for later in [now + 3_600_000, now + 2 * DAY] {
        let again = run(&db, later);
        assert_eq!(again["made"], json!([]), "{again}");
        assert_eq!(again["already_archived"], 3);
        assert_eq!(again["deleted"], json!([]));
    }
    assert_eq!(listed(&db, &[("report_week", "2026-W48")]).len(), 3);

    // The tenant export is b's alone: its tenant, its figures, no other
    // tenant by id.
    let b = &listed(&db, &[("tenant_id", "b")])[0];
    assert_eq!(b["profile"], "tenant_weekly_export");
    let got = governance_reports::get(&db, b["report_id"].as_str().unwrap(), &[]).unwrap();
    assert_eq!(got["summary"]["tenant_id"], "b");
    assert_eq!(got["summary"]["tenant_export"], true);
    assert_eq!(got["summary"]["chains"]["scopes"], 1);
    let top: Vec<&str> = got["summary"]["cross_tenant"]["top_tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap())
        .collect();
    assert!(top.iter().all(|t| *t == "b"), "{top:?}");
    let html = governance_reports::get(
        &db,
        b["report_id"].as_str().unwrap(),
        &[("file".to_string(), "weekly_report.html".to_string())],
    )
    .unwrap();
    assert_eq!(html["file"]["content_type"], "text/html; charset=utf-8");
    assert!(html["file"]["content"].as_str().unwrap().contains("2026-W48"));
    // The shared report spans every tenant of the store.
    let sh = governance_reports::get(&db, shared["report_id"].as_str().unwrap(), &[]).unwrap();
    assert_eq!(sh["summary"]["tenant_id"], Value::Null);
    assert_eq!(sh["summary"]["chains"]["scopes"], 5);
    assert_eq!(verify(&db)["ok"], true);

    // 30 days after W48 closed: the shared report (30 days) goes; b's (90
    // days) and c's (by contract) stay. That run also makes its own week.
    let month = IsoWeek::parse("2026-W48").unwrap().end_ms() + 30 * DAY;
    let before = run(&db, month - 1);
    assert_eq!(before["deleted"], json!([]), "not yet: {before}");
    assert_eq!(subjects(&before["made"]), ["shared", "tenant:b", "tenant:c", "tenant:late"], "{before}");
    let after = run(&db, month);
    let deleted = after["deleted"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{after}");
    assert_eq!(
        (deleted[0]["report_week"].as_str(), deleted[0]["subject"].as_str()),
        (Some("2026-W48"), Some("shared"))
    );
    assert_eq!(deleted[0]["sha256"], shared["sha256"]);
    let w48: Vec<String> =
        listed(&db, &[("report_week", "2026-W48")]).iter().map(|r| r["subject"].to_string()).collect();
    assert_eq!(w48, ["\"tenant:b\"", "\"tenant:c\""]);
    let kept = listed(&db, &[("report_week", "2026-W48"), ("include_deleted", "true")]);
    let gone = kept.iter().find(|r| r["subject"] == "shared").unwrap();
    assert!(gone["deleted_at"].is_string() && gone["sha256"].is_null(), "{gone}");
    let e = governance_reports::get(&db, shared["report_id"].as_str().unwrap(), &[]).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (410, "report_deleted"));
    // The deletion is recorded in the audit chain, and the registry still
    // verifies: the artifact is gone by a recorded decision.
    let events = db
        .query("SELECT actor, resource_id, details FROM control_audit_events WHERE action = 'evidence.delete'", &[])
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].string(0), "governance_schedule");
    assert_eq!(events[0].string(1), shared["report_id"].as_str().unwrap());
    let details: Value = serde_json::from_str(&events[0].string(2)).unwrap();
    assert_eq!(details["why"]["reason"], "retention");
    assert_eq!(details["evidence"]["sha256"], shared["sha256"]);
    let v = verify(&db);
    assert_eq!((v["ok"].as_bool(), v["deleted"].as_i64()), (Some(true), Some(1)), "{v}");
    // A second pass finds nothing more to delete.
    assert_eq!(run(&db, month + DAY)["deleted"], json!([]));
}

#[test]
fn a_tampered_or_vanished_archived_report_fails_the_registry_verifier() {
    let db = seeded();
    let first = run(&db, at("2026-12-02T09:00:00.000Z"));
    let id = |subject: &str| {
        first["made"].as_array().unwrap().iter().find(|r| r["subject"] == subject).unwrap()["report_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verify(&db)["ok"], true);
    // One character of b's archived HTML changed.
    db.exec(
        "UPDATE control_evidence SET content = replace(content, '2026-W48', '2026-W47') WHERE evidence_id = ?",
        &[id("tenant:b").into()],
    )
    .unwrap();
    // c's removed behind the registry's back (no evidence.delete event).
    db.exec("DELETE FROM control_evidence WHERE evidence_id = ?", &[id("tenant:c").into()]).unwrap();
    let v = verify(&db);
    assert_eq!(v["ok"], false);
    let mut reasons: Vec<(String, String)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["evidence_id"].as_str().unwrap().to_string(), f["reason"].as_str().unwrap().to_string()))
        .collect();
    reasons.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        reasons,
        [(id("tenant:b"), "content_changed".to_string()), (id("tenant:c"), "content_missing".to_string())]
    );
}
