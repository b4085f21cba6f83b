//! The outbox admin's tenant restriction against a real (in-memory) SQLite:
//! status and replay for a tenant hold exactly its scope keys,
//! case-sensitive (`acme` is not `ACME`), and a default-tenant scope
//! `Tenant:x` is the default tenant's.

use cairn_derive::outbox_admin::{self, Caller};
use cairn_derive::settings::DeriveSettings;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;
const AT: &str = "2026-11-22T00:00:00.000Z";

/// (scope key, jobs).
const JOBS: &[(&str, i64)] = &[
    ("a", 1),
    ("Tenant:x", 2),
    ("tenant:acme::scope:p", 3),
    ("tenant:ACME::scope:p", 4),
    ("tenant:Acme::scope:p", 5),
    ("tenant:acme.2::scope:p", 6),
];

fn db_with_dead_jobs() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    cairn_memory::schema::ensure(&db, AT).unwrap();
    cairn_control_plane::schema::ensure(&db, AT).unwrap();
    for (scope, n) in JOBS {
        for i in 0..*n {
            let payload = json!({"nodes": [{"id": format!("{scope}-{i}"), "text": "t"}]});
            cairn_memory::write_path::enqueue(&db, scope, &format!("c-{scope}-{i}"), "embed_nodes", &payload, AT)
                .unwrap();
        }
    }
    db.exec("UPDATE memory_outbox SET attempts = 3, failed_at = ?, failed_reason = 'x'", &[AT.into()]).unwrap();
    db
}

fn jobs_of(tenant: &str) -> i64 {
    JOBS.iter()
        .filter(|(k, _)| match k.strip_prefix("tenant:").and_then(|r| r.split_once("::scope:")) {
            Some((t, _)) => t == tenant,
            None => tenant == "default",
        })
        .map(|(_, n)| n)
        .sum()
}

const TENANTS: &[&str] = &["default", "acme", "ACME", "Acme", "acme.2"];

#[test]
fn status_counts_only_the_tenants_jobs() {
    let db = db_with_dead_jobs();
    let s = DeriveSettings::default();
    for t in TENANTS {
        let q = [("tenant_id".to_string(), t.to_string()), ("status".into(), "dead_letter".into())];
        let v = outbox_admin::status(&db, &s, &q, T0).unwrap();
        assert_eq!(v["outbox"]["dead_letter"], jobs_of(t), "{t}: {v}");
        let samples = v["samples"].as_array().unwrap();
        assert_eq!(samples.len() as i64, jobs_of(t));
        assert!(samples.iter().all(|j| j["tenant_id"] == *t), "{t}: {v}");
    }
    let v = outbox_admin::status(&db, &s, &[("tenant_id".into(), "default".into())], T0).unwrap();
    assert!(v["samples"].as_array().unwrap().iter().any(|j| j["scope"] == "Tenant:x"), "{v}");
}

#[test]
fn replay_for_a_tenant_leaves_other_tenants_dead_letters() {
    let db = db_with_dead_jobs();
    let s = DeriveSettings::default();
    let dead = |key: &str| {
        db.query_one("SELECT count(*) FROM memory_outbox WHERE scope = ? AND failed_at IS NOT NULL", &[key.into()])
            .unwrap()
            .unwrap()
            .int(0)
    };
    for (i, t) in ["acme", "default"].iter().enumerate() {
        let caller = Caller { actor: "admin_token", request_id: None, event_id: format!("ev-{i}") };
        let v = outbox_admin::replay(&db, None, &s, &json!({"tenant_id": t, "limit": 1000}), &caller, T0).unwrap();
        assert_eq!(v["replayed_count"], jobs_of(t), "{t}: {v}");
    }
    for (key, n) in JOBS {
        let replayed = ["a", "Tenant:x", "tenant:acme::scope:p"].contains(key);
        assert_eq!(dead(key), if replayed { 0 } else { *n }, "{key}");
    }
}
