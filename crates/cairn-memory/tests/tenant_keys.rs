//! Selecting a tenant's scopes against a real (in-memory) SQLite: exactly
//! its keys, case-sensitive (tenants `acme` and `ACME` are different, a
//! default-tenant scope `Tenant:x` is the default tenant's), as one index
//! range rather than a `LIKE` scan. Covers `usage::tenant_bytes`,
//! `erasure::tenant_scopes` and `commit_log::verify` with `all_scopes`.

use cairn_memory::settings::Settings;
use cairn_memory::{Op, erasure, run, usage};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000_000;

fn settings() -> Settings {
    Settings {
        embedding_dims: 3,
        embedding_provider: Some("test".into()),
        recall_audit: cairn_memory::settings::AuditSink::Off,
        ..Settings::default()
    }
}

fn op(db: &NativeSqlite, op: Op, body: Value) -> Value {
    run(db, &settings(), op, &body.to_string(), NOW, || "00000000-0000-4000-8000-000000000001".into())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Tenant (None: the default one) and public scope of every write.
const WRITES: &[(Option<&str>, &str)] = &[
    (None, "a"),
    (None, "Tenant:x"),
    (None, "TENANT:y"),
    (None, "tenant;z"),
    (None, "~last"),
    (Some("acme"), "p"),
    (Some("acme"), "q::scope:r"),
    (Some("ACME"), "p"),
    (Some("Acme"), "p"),
    (Some("acme.2"), "p"),
    (Some("acm"), "p"),
];

fn db_with_tenants() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    for (i, (tenant, scope)) in WRITES.iter().enumerate() {
        let mut body = json!({"scope": scope, "input_text": format!("w{i}"), "memory_lane": "shared",
                              "nodes": [{"client_id": "n", "type": "event", "text_summary": format!("note {i}")}]});
        if let Some(t) = tenant {
            body["tenant_id"] = json!(t);
        }
        op(&db, Op::Write, body);
    }
    db
}

fn keys_of(tenant: &str) -> Vec<String> {
    let d = settings().defaults;
    let mut keys: Vec<String> = WRITES
        .iter()
        .filter(|(t, _)| t.unwrap_or(&d.tenant_id) == tenant)
        .map(|(t, sc)| cairn_core::tenant_scope::scope_key(t.unwrap_or(&d.tenant_id), sc, &d))
        .collect();
    keys.sort();
    keys
}

const TENANTS: &[&str] = &["default", "acme", "ACME", "Acme", "acme.2", "acm"];

#[test]
fn tenant_scopes_are_exactly_the_tenants_keys() {
    let db = db_with_tenants();
    for t in TENANTS {
        assert_eq!(erasure::tenant_scopes(&db, t, "default").unwrap(), keys_of(t), "{t}");
    }
    assert!(erasure::tenant_scopes(&db, "nobody", "default").unwrap().is_empty());
    let d = erasure::tenant_scopes(&db, "default", "default").unwrap();
    assert!(d.contains(&"Tenant:x".to_string()) && d.contains(&"TENANT:y".to_string()), "{d:?}");

    // Erasing what teardown would erase for `acme` leaves `ACME` whole.
    for key in erasure::tenant_scopes(&db, "acme", "default").unwrap() {
        erasure::erase_scope(&db, &key, "test", "teardown", "2027-01-15T08:00:00.000Z").unwrap();
    }
    let nodes = |key: &str| {
        db.query_one("SELECT count(*) FROM memory_nodes WHERE scope = ?", &[key.into()]).unwrap().unwrap().int(0)
    };
    assert_eq!(nodes("tenant:acme::scope:p"), 0);
    for t in ["ACME", "Acme", "acme.2", "acm", "default"] {
        for key in keys_of(t) {
            assert_eq!(nodes(&key), 1, "{key} survives acme's teardown");
        }
    }
}

#[test]
fn tenant_bytes_count_only_the_tenants_scopes() {
    let db = db_with_tenants();
    let bytes = |key: &str| {
        db.query_one("SELECT bytes FROM memory_scope_usage WHERE scope = ?", &[key.into()]).unwrap().unwrap().int(0)
    };
    let mut total = 0;
    for t in TENANTS {
        let want: i64 = keys_of(t).iter().map(|k| bytes(k)).sum();
        assert!(want > 0, "{t}");
        assert_eq!(usage::tenant_bytes(&db, t, "default").unwrap(), want, "{t}");
        total += want;
    }
    let all = db.query_one("SELECT sum(bytes) FROM memory_scope_usage", &[]).unwrap().unwrap().int(0);
    assert_eq!(total, all, "every key belongs to exactly one tenant");
    assert_eq!(usage::tenant_bytes(&db, "nobody", "default").unwrap(), 0);
}

#[test]
fn verify_all_scopes_walks_exactly_the_tenants_chains() {
    let db = db_with_tenants();
    for t in TENANTS {
        let v = op(&db, Op::VerifyCommits, json!({"tenant_id": t, "all_scopes": true}));
        assert_eq!(v["ok"], true, "{v}");
        let mut got: Vec<String> =
            v["scopes"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap().to_string()).collect();
        got.sort();
        let mut want: Vec<String> =
            WRITES.iter().filter(|(w, _)| w.unwrap_or("default") == *t).map(|(_, sc)| sc.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{t}: public scope names, no other tenant's keys");
    }
}

#[test]
fn a_tenants_keys_are_one_index_range() {
    let db = db_with_tenants();
    let plan = |tenant: &str| {
        let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant, "default");
        let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
        db.query(&format!("EXPLAIN QUERY PLAN SELECT DISTINCT scope FROM memory_commits WHERE {cond}"), &params)
            .unwrap()
            .iter()
            .map(|r| r.string(3))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let p = plan("acme");
    assert!(p.contains("SEARCH") && p.contains("scope>? AND scope<?"), "{p}");
    let usage = {
        let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", "ACME", "default");
        let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
        db.query(&format!("EXPLAIN QUERY PLAN SELECT sum(bytes) FROM memory_scope_usage WHERE {cond}"), &params)
            .unwrap()[0]
            .string(3)
    };
    assert!(usage.starts_with("SEARCH"), "{usage}");
}
