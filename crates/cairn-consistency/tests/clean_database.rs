//! A freshly migrated database passes every check; a schema left behind is
//! named and every check still runs.

use cairn_consistency::options::OutboxLimits;
use cairn_consistency::{Options, run};
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::json;

const NOW: &str = "2026-12-01T00:00:00.000Z";
const LIMITS: OutboxLimits = OutboxLimits { max_attempts: 25, claim_timeout_ms: 300_000 };

fn options(body: serde_json::Value) -> Options {
    Options::parse(&body, &ScopeDefaults::default(), LIMITS, 1_764_547_200_000).unwrap()
}

fn migrated() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    cairn_memory::schema::ensure(&db, NOW).unwrap();
    cairn_control_plane::schema::ensure(&db, NOW).unwrap();
    db
}

#[test]
fn a_fresh_database_passes_every_check() {
    let db = migrated();
    let r = run(&db, &options(json!({"strict_warnings": true}))).unwrap();
    let fired: Vec<_> = r.checks.iter().filter(|c| c.fired()).map(|c| (c.name, c.error.clone())).collect();
    assert!(fired.is_empty(), "{fired:?}");
    assert_eq!((r.errors(), r.warnings(), r.exit_code()), (0, 0, 0));
    assert!(r.checks.len() >= 35, "{} checks", r.checks.len());
    let names: std::collections::HashSet<_> = r.checks.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), r.checks.len(), "check names are unique");
    // The sets split the checks between them.
    let scope = run(&db, &options(json!({"check_set": "scope"}))).unwrap().checks.len();
    let cross = run(&db, &options(json!({"check_set": "cross_tenant", "mode": "fast"}))).unwrap().checks.len();
    assert_eq!(scope + cross, r.checks.len());
}

#[test]
fn a_schema_behind_is_an_error_and_strict_fails() {
    let db = migrated();
    db.exec("UPDATE cairn_schema SET version = version - 1 WHERE component = 'kernel'", &[]).unwrap();
    let lenient = run(&db, &options(json!({}))).unwrap();
    assert!(!lenient.ok());
    assert_eq!(lenient.exit_code(), 0, "without --strict a finding is reported, not failed");
    let r = run(&db, &options(json!({"strict": true}))).unwrap();
    let c = r.checks.iter().find(|c| c.name == "schema_version_mismatch").unwrap();
    assert_eq!(c.count, 1);
    assert_eq!(c.sample[0]["component"], "kernel");
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn a_check_whose_query_fails_counts_as_an_error() {
    let db = migrated();
    db.exec("DROP TABLE memory_tombstones", &[]).unwrap();
    let r = run(&db, &options(json!({"check_set": "scope"}))).unwrap();
    let c = r.checks.iter().find(|c| c.name == "tombstoned_rows_present").unwrap();
    assert!(c.error.as_deref().unwrap_or_default().contains("memory_tombstones"), "{:?}", c.error);
    assert!(r.errors() >= 1);
    assert!(r.to_json()["checks"].as_array().unwrap().iter().any(|c| c.get("error").is_some()));
}

#[test]
fn a_data_dir_without_a_control_plane_skips_its_checks() {
    let db = NativeSqlite::in_memory();
    cairn_memory::schema::ensure(&db, NOW).unwrap();
    let r = run(&db, &options(json!({"strict_warnings": true}))).unwrap();
    assert_eq!(r.exit_code(), 0, "{:?}", r.checks.iter().filter(|c| c.fired()).collect::<Vec<_>>());
    let audit = r.checks.iter().find(|c| c.name == "control_audit_chain_broken").unwrap();
    assert!(audit.note.starts_with("skipped: the control schema"), "{}", audit.note);
}
