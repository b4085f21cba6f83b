//! The compliance report: each control of the tenant's tier's set judged
//! against the registry and the audit log — no evidence, stale evidence,
//! evidence that says otherwise, evidence that passes — with the entry it
//! judged linked; controls of other sets left out; the report registered.

use cairn_control_plane::admin::{AdminCtx, audit};
use cairn_control_plane::evidence;
use cairn_core::time_fmt::{parse_rfc3339_millis, rfc3339_millis};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const DAY: i64 = 86_400_000;
const TIERS: &str = r#"{"tiers": {"plus": {"governance": {"controls": "extended"}}, "bare": {}}}"#;

fn random(b: &mut [u8]) {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    for (i, x) in b.iter_mut().enumerate() {
        *x = n[i % 8] ^ (i as u8);
    }
}

fn now() -> i64 {
    parse_rfc3339_millis("2027-02-10T08:00:00.000Z").unwrap()
}

fn ctx(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx {
        request_id: "compliance-test",
        now_ms,
        random: &random,
        tier_profiles: Some(TIERS),
        default_tier: "bare",
        billing_disabled: false,
        default_tenant_id: "default",
        alert_loopback_targets: false,
        tenant_store: None,
        tier_store: None,
    }
}

fn controls() -> Value {
    let c = |id: &str, sets: Value, evidence: Value| json!({"id": id, "title": format!("{id} control"), "sets": sets, "evidence": evidence, "produced_by": format!("make {id}")});
    json!({"version": 1, "controls": [
        c("keys-rotated", json!(["baseline", "extended"]), json!({"audit_action": "api_key.rotate", "max_age_days": 90})),
        c("audit-ok", json!(["baseline", "extended"]), json!({"kind": "weekly_report", "covers": "either", "max_age_days": 14,
            "expect": {"path": "summary.checks.audit_chain_verified.pass", "equals": true}})),
        c("drilled", json!(["extended"]), json!({"kind": "replay_drill", "max_age_days": 35, "expect": {"path": "ok", "equals": true}})),
        c("isolation", json!(["formal"]), json!({"kind": "isolation_plan", "max_age_days": 365})),
    ]})
}

fn seeded() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    let t = rfc3339_millis(now() - 200 * DAY);
    cairn_memory::schema::ensure(&db, &t).unwrap();
    cairn_control_plane::schema::ensure(&db, &t).unwrap();
    db.exec(
        "INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier) VALUES ('acme', 'active', '{}', ?, ?, 'plus')",
        &[t.clone().into(), t.into()],
    )
    .unwrap();
    db
}

fn run(db: &NativeSqlite, body: Value) -> Value {
    cairn_governance::compliance::run(db, &ctx(now()), &body).unwrap()
}

fn statuses(rep: &Value) -> Vec<(String, String)> {
    rep["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

fn register(db: &NativeSqlite, at_ms: i64, kind: &str, tenant: Option<&str>, content: Value) -> String {
    let mut body = json!({"kind": kind, "content": content.to_string()});
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    evidence::register(db, &ctx(at_ms), &body).unwrap()["evidence"]["evidence_id"].as_str().unwrap().to_string()
}

#[test]
fn each_control_of_the_tenants_set_is_judged_against_its_evidence() {
    let db = seeded();
    let body = json!({"tenant_id": "acme", "controls": controls(), "strict": true});

    // Nothing recorded: every control of `extended` has no evidence; the
    // formal-only control is not the tenant's.
    let rep = run(&db, body.clone());
    assert_eq!((rep["tier"].as_str(), rep["control_set"].as_str()), (Some("plus"), Some("extended")));
    let none = |id: &str| (id.to_string(), "no_evidence".to_string());
    assert_eq!(statuses(&rep), [none("keys-rotated"), none("audit-ok"), none("drilled")]);
    assert_eq!((rep["ok"].as_bool(), rep["exit_code"].as_i64()), (Some(false), Some(2)));
    assert_eq!(rep["controls"][0]["why"], "no such evidence has ever been recorded");

    // A rotation 100 days ago (stale), the deployment's weekly report whose
    // audit chain verified, a drill that failed.
    write_txn(&db, |db| audit(db, &ctx(now() - 100 * DAY), "api_key.rotate", "api_key", "k1", Some("acme"), json!({})))
        .unwrap();
    let report_id = register(
        &db,
        now() - 3 * DAY,
        "weekly_report",
        None,
        json!({"summary": {"checks": [{"name": "audit_chain_verified", "pass": true}]}}),
    );
    let drill_id =
        register(&db, now() - DAY, "replay_drill", Some("acme"), json!({"ok": false, "failed_step": "replay"}));
    let rep = run(&db, body.clone());
    let st = |id: &str, s: &str| (id.to_string(), s.to_string());
    assert_eq!(statuses(&rep), [st("keys-rotated", "no_evidence"), st("audit-ok", "pass"), st("drilled", "fail")]);
    let c = &rep["controls"];
    assert_eq!(c[0]["newest_at"], rfc3339_millis(now() - 100 * DAY));
    assert!(c[0]["why"].as_str().unwrap().contains("older than 90 days"), "{}", c[0]["why"]);
    assert_eq!(c[1]["evidence"]["evidence_id"], report_id.as_str());
    assert_eq!(c[1]["evidence"]["fetch"], format!("GET /v1/admin/control/evidence/{report_id}"));
    assert_eq!(c[2]["evidence"]["evidence_id"], drill_id.as_str());
    assert_eq!(c[2]["why"], "ok = false, expected true");
    assert_eq!(rep["summary"], json!({"controls": 3, "pass": 1, "fail": 1, "no_evidence": 1}));

    // A fresh rotation and a passing drill: all pass; registered as evidence.
    write_txn(&db, |db| audit(db, &ctx(now() - DAY), "api_key.rotate", "api_key", "k1", Some("acme"), json!({})))
        .unwrap();
    register(&db, now() - 3_600_000, "replay_drill", Some("acme"), json!({"ok": true}));
    let mut b = body;
    b["register"] = json!(true);
    let rep = run(&db, b);
    assert_eq!((rep["ok"].as_bool(), rep["exit_code"].as_i64()), (Some(true), Some(0)), "{rep}");
    assert!(rep["controls"][0]["evidence"]["event_hash"].is_string());
    let id = rep["evidence_id"].as_str().unwrap();
    let stored = evidence::get(&db, &ctx(now()), id).unwrap();
    assert_eq!(
        (stored["evidence"]["kind"].as_str(), stored["evidence"]["tenant_id"].as_str()),
        (Some("compliance_report"), Some("acme"))
    );
    assert_eq!(evidence::verify(&db, &ctx(now())).unwrap()["ok"], true);
}

#[test]
fn bad_requests_are_named() {
    let db = seeded();
    let e = cairn_governance::compliance::run(&db, &ctx(now()), &json!({"tenant_id": "acme"})).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (400, "invalid_request"));
    let e = cairn_governance::compliance::run(&db, &ctx(now()), &json!({"tenant_id": "ghost", "controls": controls()}))
        .unwrap_err();
    assert_eq!(e.status, 404);
    let bad = json!({"controls": [{"id": "x", "title": "t", "sets": ["s"], "produced_by": "p", "evidence": {"max_age_days": 3}}]});
    let e = cairn_governance::compliance::run(&db, &ctx(now()), &json!({"tenant_id": "acme", "controls": bad}))
        .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (400, "invalid_controls"));
    assert_eq!(e.details.unwrap()["path"], "controls[0].evidence");
}
