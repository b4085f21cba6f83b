//! Tenant quotas against a real (in-memory) SQLite: a tenant's own profile
//! applies on its own (tier quotas off), a tenant without one is admitted
//! after one read, and the tier's quotas fill in under `admit`.

use cairn_control_plane::quota_buckets::{admit, admit_explicit};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::json;
use std::cell::Cell;

const NOW: &str = "2026-12-01T00:00:00.000Z";
const T0: i64 = 1_800_000_000_000;

fn db_with_profile(tenant: &str, write_burst: i64) -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    cairn_control_plane::schema::ensure(&db, NOW).unwrap();
    db.exec(
        "INSERT INTO control_tenants (tenant_id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
        &[tenant.into(), NOW.into(), NOW.into()],
    )
    .unwrap();
    db.exec(
        "INSERT INTO control_tenant_quotas (tenant_id, recall_rps, recall_burst, write_rps, write_burst, \
         write_max_wait_ms, debug_embed_rps, debug_embed_burst, recall_text_embed_rps, recall_text_embed_burst, \
         recall_text_embed_max_wait_ms, created_at, updated_at) VALUES (?, 100, 100, 0.0001, ?, 0, 1, 1, 1, 1, 0, ?, ?)",
        &[tenant.into(), write_burst.into(), NOW.into(), NOW.into()],
    )
    .unwrap();
    db
}

fn classes(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_explicit_profile_applies_without_tier_quotas() {
    let db = db_with_profile("default", 2);
    let clock = || T0;
    let slept = Cell::new(0);
    let sleep = |ms: i64| slept.set(slept.get() + ms);
    let write = classes(&["write"]);
    for _ in 0..2 {
        admit_explicit(&db, "default", &write, &clock, &sleep).unwrap();
    }
    let e = admit_explicit(&db, "default", &write, &clock, &sleep).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (429, "tenant_rate_limited_write"));
    let d = e.details.unwrap();
    assert_eq!(d["tenant_id"], "default");
    assert!(d["retry_after_ms"].as_i64().unwrap() > 1000, "{d}");
    assert_eq!(slept.get(), 0, "write_max_wait_ms 0: no waiting");
    // Other classes keep their own buckets; other tenants have no limit.
    admit_explicit(&db, "default", &classes(&["recall"]), &clock, &sleep).unwrap();
    for _ in 0..10 {
        admit_explicit(&db, "beta", &write, &clock, &sleep).unwrap();
    }
    let buckets = db.query("SELECT tenant_id FROM control_quota_buckets", &[]).unwrap();
    assert!(buckets.iter().all(|r| r.string(0) == "default"), "no bucket for a tenant without a profile");
}

#[test]
fn a_database_without_the_control_schema_admits_everything() {
    let db = NativeSqlite::in_memory();
    admit_explicit(&db, "default", &classes(&["write", "recall"]), &|| T0, &|_| {}).unwrap();
}

#[test]
fn admit_falls_back_to_the_tier_quotas() {
    let db = db_with_profile("acme", 50);
    let tier = json!({"quotas": {"write": {"rps": 0.0001, "burst": 1}}});
    let (clock, sleep) = (|| T0, |_: i64| {});
    let write = classes(&["write"]);
    admit(&db, "beta", &write, None, Some(&tier), "default", &clock, &sleep).unwrap();
    let e = admit(&db, "beta", &write, None, Some(&tier), "default", &clock, &sleep).unwrap_err();
    assert_eq!(e.code, "tenant_rate_limited_write");
    // acme's own profile (burst 50) wins over the tier's burst of 1.
    for _ in 0..5 {
        admit(&db, "acme", &write, None, Some(&tier), "default", &clock, &sleep).unwrap();
    }
}
