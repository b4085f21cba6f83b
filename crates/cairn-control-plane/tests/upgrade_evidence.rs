//! Upgrades that demand evidence: refused with the missing items named,
//! allowed once the registry holds fresh evidence of the right coverage;
//! stale evidence and evidence of another tenant do not count; a repeat of
//! the current tier and a tier without requirements need nothing.

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::{evidence, provisioning};
use cairn_core::time_fmt::parse_rfc3339_millis;
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

const TIERS: &str = r#"{"tiers": {
    "basic": {"resource_caps": {"seats": 5}},
    "plus": {"resource_caps": {"seats": 50}, "upgrade": {"requires_evidence": [
        {"kind": "weekly_report", "covers": "deployment", "max_age_days": 14},
        {"kind": "replay_drill", "max_age_days": 35, "expect": {"path": "ok", "equals": true}}]}},
    "broken": {"upgrade": {"requires_evidence": [{"kind": "replay_drill", "covers": "everyone"}]}}
}}"#;

fn t0() -> i64 {
    parse_rfc3339_millis("2027-03-01T12:00:00.000Z").unwrap()
}

fn ctx(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx {
        random: &common::counter_random,
        tier_profiles: Some(TIERS),
        default_tier: "basic",
        ..common::ctx(now_ms)
    }
}

fn register(db: &dyn cairn_spin::sql::Sql, now_ms: i64, kind: &str, tenant: Option<&str>) {
    register_content(db, now_ms, kind, tenant, json!({"ok": true}))
}

fn register_content(db: &dyn cairn_spin::sql::Sql, now_ms: i64, kind: &str, tenant: Option<&str>, content: Value) {
    let mut body = json!({"kind": kind, "content": content.to_string()});
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    evidence::register(db, &ctx(now_ms), &body).unwrap();
}

fn upgrade(db: &dyn cairn_spin::sql::Sql, now_ms: i64, tier: &str) -> Result<Value, cairn_core::ApiError> {
    provisioning::upgrade(db, &ctx(now_ms), "acme", &json!({"tier": tier}))
}

fn missing_kinds(e: &cairn_core::ApiError) -> Vec<String> {
    e.details.as_ref().unwrap()["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_upgrade_is_refused_until_its_evidence_is_registered() {
    let now = t0();
    let db = common::db(now);
    provisioning::provision(&db, &ctx(now), "acme", &json!({"tier": "basic"})).unwrap();
    provisioning::provision(&db, &ctx(now), "other", &json!({"tier": "basic"})).unwrap();

    let e = upgrade(&db, now, "plus").unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (409, "upgrade_evidence_missing"));
    assert_eq!(missing_kinds(&e), ["weekly_report", "replay_drill"]);
    let d = e.details.clone().unwrap();
    assert_eq!((d["from"].as_str(), d["to"].as_str()), (Some("basic"), Some("plus")));
    assert_eq!(d["missing"][0]["covers"], "deployment");
    assert_eq!(d["missing"][0]["newest_at"], Value::Null);
    assert!(e.message.contains("replay_drill (registered within 35 days)"), "{}", e.message);

    // Evidence that does not count: another tenant's drill, a tenant's own
    // weekly report where the deployment's is asked for, a drill 36 days old.
    register(&db, now, "replay_drill", Some("other"));
    register(&db, now, "weekly_report", Some("acme"));
    register(&db, now - 36 * DAY, "replay_drill", Some("acme"));
    let e = upgrade(&db, now, "plus").unwrap_err();
    assert_eq!(missing_kinds(&e), ["weekly_report", "replay_drill"]);
    assert_eq!(
        e.details.as_ref().unwrap()["missing"][1]["newest_at"],
        "2027-01-24T12:00:00.000Z",
        "stale, and says when"
    );
    assert_eq!(provisioning::status(&db, &ctx(now), "acme").unwrap()["tier"], "basic", "nothing changed");

    // The deployment's weekly report and a fresh drill: allowed.
    register(&db, now - 13 * DAY, "weekly_report", None);
    let e = upgrade(&db, now, "plus").unwrap_err();
    assert_eq!(missing_kinds(&e), ["replay_drill"]);
    // A drill that ran but failed does not count.
    register_content(&db, now - 2 * DAY, "replay_drill", Some("acme"), json!({"ok": false}));
    let e = upgrade(&db, now, "plus").unwrap_err();
    assert_eq!(missing_kinds(&e), ["replay_drill"]);
    assert_eq!(e.details.as_ref().unwrap()["missing"][0]["newest_fails_expect"], true);
    register(&db, now - DAY, "replay_drill", Some("acme"));
    let up = upgrade(&db, now, "plus").unwrap();
    assert_eq!(up["tier"], "plus");
    // Repeating the current tier checks nothing, even once the evidence ages.
    assert_eq!(upgrade(&db, now + 60 * DAY, "plus").unwrap()["tier"], "plus");
    // A tier without requirements needs none.
    assert_eq!(upgrade(&db, now + 60 * DAY, "basic").unwrap()["tier"], "basic");
    // Two weeks on, the weekly report (14 days) is stale again.
    let e = upgrade(&db, now + 2 * DAY, "plus").unwrap_err();
    assert_eq!(missing_kinds(&e), ["weekly_report"]);
}

#[test]
fn a_malformed_requirement_refuses_rather_than_waives() {
    let now = t0();
    let db = common::db(now);
    provisioning::provision(&db, &ctx(now), "acme", &json!({"tier": "basic"})).unwrap();
    let e = upgrade(&db, now, "broken").unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (500, "tier_profile_invalid"));
    assert!(e.message.contains("covers is \"everyone\""), "{}", e.message);
}
