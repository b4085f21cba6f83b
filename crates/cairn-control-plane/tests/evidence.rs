//! The evidence registry: artifacts registered with their bytes and an
//! audit event, listed and fetched, and verified — a changed byte, a
//! changed fact or a dropped registration is named (a real in-memory
//! SQLite, the real queries).

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::evidence;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU8, Ordering};

const T0: i64 = 1_800_000_000_000;

/// Fresh random bytes per call, so every evidence and event id differs.
fn random(b: &mut [u8]) {
    static N: AtomicU8 = AtomicU8::new(1);
    b.fill(N.fetch_add(1, Ordering::Relaxed));
}

fn ctx() -> AdminCtx<'static> {
    AdminCtx { random: &random, ..common::ctx(T0) }
}

fn report(db: &dyn Sql, tenant: &str, content: &str) -> Value {
    let body = json!({"kind": "weekly_report", "tenant_id": tenant, "content": content, "producer": "cairn job governance-weekly-report",
                      "period_start": "2027-01-04T00:00:00.000Z", "period_end": "2027-01-11T00:00:00.000Z"});
    evidence::register(db, &ctx(), &body).unwrap()["evidence"].clone()
}

#[test]
fn artifacts_are_registered_listed_fetched_and_verified() {
    let db = common::db(T0);
    let a = report(&db, "acme", r#"{"summary": {"ok": true}}"#);
    let b = report(&db, "beta", "# weekly status\nall green\n");
    let drill = evidence::register(
        &db,
        &ctx(),
        &json!({"kind": "replay_drill", "content": "passed", "content_type": "text/plain"}),
    )
    .unwrap()["evidence"]
        .clone();
    assert_eq!(a["sha256"], cairn_core::digest::sha256_hex(r#"{"summary": {"ok": true}}"#));
    assert_eq!(a["size_bytes"], 25);
    assert_eq!((drill["tenant_id"].clone(), drill["producer"].clone()), (Value::Null, json!("admin_token")));

    let all = evidence::list(&db, &ctx(), &[]).unwrap();
    assert_eq!(all["evidence"].as_array().unwrap().len(), 3);
    assert!(all["evidence"][0].get("content").is_none(), "a list carries no bytes");
    let acme = evidence::list(&db, &ctx(), &common::q(&[("tenant_id", "acme")])).unwrap();
    assert_eq!(acme["evidence"].as_array().unwrap().len(), 1);
    let reports = evidence::list(&db, &ctx(), &common::q(&[("kind", "weekly_report")])).unwrap();
    assert_eq!(reports["evidence"].as_array().unwrap().len(), 2);
    let got = evidence::get(&db, &ctx(), b["evidence_id"].as_str().unwrap()).unwrap();
    assert_eq!(got["evidence"]["content"], "# weekly status\nall green\n");
    assert_eq!(evidence::get(&db, &ctx(), "nope").unwrap_err().status, 404);

    // Each registration is an audit event with the artifact's facts.
    let events = db.query("SELECT count(*) FROM control_audit_events WHERE action = 'evidence.register'", &[]).unwrap();
    assert_eq!(events[0].int(0), 3);
    let v = evidence::verify(&db, &ctx()).unwrap();
    assert_eq!((v["ok"].clone(), v["checked"].clone()), (json!(true), json!(3)), "{v}");

    // A changed byte, a changed fact (with its hash kept consistent) and a
    // dropped registration are each named.
    db.exec(
        "UPDATE control_evidence SET content = 'failed' WHERE evidence_id = ?",
        &[drill["evidence_id"].as_str().unwrap().into()],
    )
    .unwrap();
    db.exec(
        "UPDATE control_evidence SET tenant_id = 'other' WHERE evidence_id = ?",
        &[a["evidence_id"].as_str().unwrap().into()],
    )
    .unwrap();
    let v = evidence::verify(&db, &ctx()).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    let reasons: Vec<(String, String)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["evidence_id"].as_str().unwrap().to_string(), f["reason"].as_str().unwrap().to_string()))
        .collect();
    assert!(reasons.contains(&(drill["evidence_id"].as_str().unwrap().into(), "content_changed".into())), "{v}");
    assert!(reasons.contains(&(a["evidence_id"].as_str().unwrap().into(), "facts_changed".into())), "{v}");
    assert_eq!(reasons.len(), 2, "{v}");
    db.exec("DELETE FROM control_audit_events WHERE resource_id = ?", &[b["evidence_id"].as_str().unwrap().into()])
        .unwrap();
    let v = evidence::verify(&db, &ctx()).unwrap();
    assert_eq!(v["audit_chain"]["ok"], false, "a dropped event breaks the chain: {v}");
    assert!(v["failures"].as_array().unwrap().iter().any(|f| f["reason"] == "registration_missing"), "{v}");
}

#[test]
fn bad_registrations_are_400_with_their_fields() {
    let db = common::db(T0);
    let cases = [
        (json!({"content": "x"}), "kind"),
        (json!({"kind": "Weekly Report", "content": "x"}), "kind"),
        (json!({"kind": "weekly_report"}), "content"),
        (json!({"kind": "weekly_report", "content": "x", "tenant_id": "bad tenant"}), "tenant_id"),
        (json!({"kind": "weekly_report", "content": "x", "period_start": "last week"}), "period_start"),
        (
            json!({"kind": "weekly_report", "content": "x", "period_start": "2027-01-11T00:00:00Z", "period_end": "2027-01-04T00:00:00Z"}),
            "period_end",
        ),
    ];
    for (body, field) in cases {
        let e = evidence::register(&db, &ctx(), &body).unwrap_err();
        assert_eq!(e.status, 400, "{body}");
        assert!(e.details.as_ref().is_some_and(|d| d.to_string().contains(field)), "{body}: {:?}", e.details);
    }
    assert_eq!(evidence::list(&db, &ctx(), &[]).unwrap()["evidence"], json!([]));
}
