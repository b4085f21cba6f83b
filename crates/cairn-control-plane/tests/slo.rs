//! SLO attainment, error budget and burn rates on seeded telemetry, with
//! known answers (a real in-memory SQLite, the real queries).

mod common;

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::slo;
use cairn_spin::native_sqlite::NativeSqlite;
use common::Telemetry;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn seed(db: &NativeSqlite, tenant: &str, endpoint: &str, at_ms: i64, status: i64, latency_ms: f64, n: usize) {
    common::seed(db, &Telemetry { tenant, endpoint, status, latency_ms, at_ms, key: None }, n);
}

fn profiles() -> String {
    json!({"default_tier": "t", "tiers": {"t": {"slo": {"window_hours": 720, "contractual": true, "objectives": [
        {"name": "availability", "sli": "availability", "target": 0.99},
        {"name": "write_fast", "sli": "latency", "endpoint": "write", "threshold_ms": 100, "target": 0.95}]}}}})
    .to_string()
}

#[test]
fn attainment_budget_and_burn_rates_from_stored_telemetry() {
    let db = common::db(T0);
    // Two days ago: 895 good writes and 5 failures (inside 720 h, outside 24 h).
    seed(&db, "acme", "write", T0 - 48 * HOUR, 200, 10.0, 895);
    seed(&db, "acme", "write", T0 - 48 * HOUR, 503, 10.0, 5);
    // Half an hour ago: 87 fast, 10 slow, 2 failed, 1 throttled.
    seed(&db, "acme", "write", T0 - HOUR / 2, 200, 10.0, 87);
    seed(&db, "acme", "write", T0 - HOUR / 2, 200, 200.0, 10);
    seed(&db, "acme", "write", T0 - HOUR / 2, 500, 10.0, 2);
    seed(&db, "acme", "write", T0 - HOUR / 2, 429, 10.0, 1);
    // Not acme's, or older than the window: never counted.
    seed(&db, "other", "write", T0 - HOUR / 2, 500, 900.0, 50);
    seed(&db, "acme", "write", T0 - 800 * HOUR, 500, 900.0, 50);

    let tiers = profiles();
    let ctx = AdminCtx { tier_profiles: Some(&tiers), default_tier: "t", ..common::ctx(T0) };
    let r = slo::tenant(&db, &ctx, "acme", &[]).unwrap();
    assert_eq!(
        (r["tier"].as_str(), r["window_hours"].as_i64(), r["contractual"].as_bool()),
        (Some("t"), Some(720), Some(true))
    );

    // Availability: 1000 requests, 8 bad (5 + 2 + 1 throttled) of 10 allowed.
    let a = &r["objectives"][0];
    assert_eq!(a["window"], json!({"total": 1000, "good": 992, "bad": 8, "attainment": 0.992}));
    assert_eq!(a["error_budget"]["allowed_bad"], 10.0);
    assert_eq!(a["error_budget"]["consumed_ratio"], 0.8);
    // The last hour: 3 bad of 100 = 3 % against a 1 % budget rate.
    assert_eq!(a["burn_rates"], json!({"1h": 3.0, "6h": 3.0, "24h": 3.0}));
    assert_eq!((a["status"].as_str(), a["reasons"].clone()), (Some("at_risk"), json!(["slow_burn"])));

    // Latency: 10 slow writes of 1000, 50 allowed; the last hour 10 of 100.
    let l = &r["objectives"][1];
    assert_eq!(l["window"], json!({"total": 1000, "good": 990, "bad": 10, "attainment": 0.99}));
    assert_eq!(l["error_budget"]["consumed_ratio"], 0.2);
    assert_eq!(l["burn_rates"]["1h"], 2.0);
    assert_eq!(l["status"], "ok");
    assert_eq!(r["at_risk"], json!(["availability"]));

    // A shorter window: only the last half hour's 100 requests.
    let short = slo::tenant(&db, &ctx, "acme", &[("window_hours".into(), "1".into())]).unwrap();
    assert_eq!(short["objectives"][0]["window"]["total"], 100);
    assert_eq!(short["objectives"][0]["status"], "breached", "3 bad of 1 allowed");
    // Bad input and a tier without objectives are clear errors.
    let e = slo::tenant(&db, &ctx, "acme", &[("window_hours".into(), "721".into())]).unwrap_err();
    assert_eq!(e.status, 400);
    let bare = json!({"tiers": {"t": {}}}).to_string();
    let ctx2 = AdminCtx { tier_profiles: Some(&bare), ..ctx };
    let e = slo::tenant(&db, &ctx2, "acme", &[]).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (404, "slo_not_defined"));
}

/// Every tier the project ships has a readable `slo` block.
#[test]
fn the_shipped_tiers_define_their_slos() {
    let path = common::repo_root().join("config/tiers.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for tier in doc["tiers"].as_object().unwrap().keys() {
        let p = slo::SloProfile::from_profiles(&doc, tier).unwrap().unwrap_or_else(|| panic!("{tier} has no slo"));
        assert!(!p.objectives.is_empty(), "{tier}");
    }
    let enterprise = slo::SloProfile::from_profiles(&doc, "enterprise").unwrap().unwrap();
    assert!(enterprise.contractual);
}
