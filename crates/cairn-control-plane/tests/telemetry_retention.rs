//! Telemetry retention per tenant: rows older than the tenant's retention
//! go, newer ones and other tenants' stay; the tier sets the hours.

mod common;

use cairn_control_plane::telemetry_retention::{DEFAULT_RETENTION_HOURS, purge, retention_hours};
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use common::Telemetry;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

fn seed(db: &NativeSqlite, tenant: &str, age_hours: i64, n: usize) {
    let row =
        Telemetry { tenant, endpoint: "write", status: 200, latency_ms: 1.0, at_ms: T0 - age_hours * HOUR, key: None };
    common::seed(db, &row, n);
}

fn count(db: &NativeSqlite, tenant: &str) -> i64 {
    db.query_one("SELECT count(*) FROM memory_request_telemetry WHERE tenant_id = ?", &[tenant.into()])
        .unwrap()
        .unwrap()
        .int(0)
}

#[test]
fn each_tenant_keeps_its_tiers_hours() {
    let db = NativeSqlite::in_memory();
    cairn_control_plane::schema::ensure(&db, &rfc3339_millis(T0)).unwrap();
    seed(&db, "short", 48, 3);
    seed(&db, "short", 1, 2);
    seed(&db, "long", 48, 4);
    seed(&db, "long", 800, 1);
    let hours = |t: &str| Ok(if t == "short" { 24 } else { DEFAULT_RETENTION_HOURS });
    let r = purge(&db, &hours, T0).unwrap();
    assert_eq!(r["deleted"], 4);
    assert_eq!(r["tenants"]["short"], json!({"deleted": 3, "retention_hours": 24}));
    assert_eq!(r["tenants"]["long"], json!({"deleted": 1, "retention_hours": 720}));
    assert_eq!((count(&db, "short"), count(&db, "long")), (2, 4));
    // Nothing more to do.
    assert_eq!(purge(&db, &hours, T0).unwrap()["deleted"], 0);
}

#[test]
fn the_tier_sets_the_hours() {
    let doc = json!({"tiers": {"g": {"ops": {"telemetry_retention_hours": 48}}, "s": {"ops": {}}}});
    assert_eq!(retention_hours(Some(&doc), "g"), 48);
    assert_eq!(retention_hours(Some(&doc), "s"), DEFAULT_RETENTION_HOURS);
    assert_eq!(retention_hours(None, "g"), DEFAULT_RETENTION_HOURS);
}
