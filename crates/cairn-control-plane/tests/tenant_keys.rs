//! The control plane's per-tenant views against a real (in-memory) SQLite
//! hold exactly the tenant's scope keys, case-sensitive: tenants `acme` and
//! `ACME` are different tenants (teardown of one leaves the other's memory
//! and chains), and a default-tenant scope `Tenant:x` is the default
//! tenant's. Covers `provisioning::teardown`, `dashboard::tenant` and
//! `diagnostics::tenant`.

use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::{dashboard, diagnostics, provisioning};
use cairn_memory::settings::Settings;
use cairn_memory::{Op, run};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

const NOW: i64 = 1_800_000_000_000;
const TIERS: &str = r#"{"tiers": {"solo": {}}}"#;

/// Distinct bytes on every call (event ids must differ).
fn random(b: &mut [u8]) {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    for (i, x) in b.iter_mut().enumerate() {
        *x = n[i % 8] ^ (i as u8);
    }
}

fn ctx() -> AdminCtx<'static> {
    AdminCtx {
        request_id: "req-1",
        now_ms: NOW + 1000,
        random: &random,
        tier_profiles: Some(TIERS),
        default_tier: "solo",
        billing_disabled: true,
        default_tenant_id: "default",
        alert_loopback_targets: false,
        tenant_store: None,
        tier_store: None,
    }
}

fn memory_settings() -> Settings {
    Settings {
        embedding_dims: 3,
        embedding_provider: Some("test".into()),
        recall_audit: cairn_memory::settings::AuditSink::Off,
        ..Settings::default()
    }
}

fn mem(db: &NativeSqlite, op: Op, body: Value) -> Value {
    run(db, &memory_settings(), op, &body.to_string(), NOW, || "00000000-0000-4000-8000-000000000001".into())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// (tenant, scope, nodes written there).
const WRITES: &[(&str, &str, usize)] = &[
    ("default", "a", 1),
    ("default", "Tenant:x", 2),
    ("acme", "p", 3),
    ("acme", "::scope:z", 1),
    ("ACME", "p", 4),
    ("Acme", "q", 5),
];

fn key(tenant: &str, scope: &str) -> String {
    cairn_core::tenant_scope::scope_key(tenant, scope, &memory_settings().defaults)
}

fn db_with_tenants() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    cairn_control_plane::schema::ensure(&db, &ctx().now()).unwrap();
    for (tenant, scope, n) in WRITES {
        let nodes: Vec<Value> = (0..*n)
            .map(|i| json!({"client_id": format!("n{i}"), "type": "event", "text_summary": format!("{tenant} {i}")}))
            .collect();
        mem(&db, Op::Write, json!({"tenant_id": tenant, "scope": scope, "input_text": "x", "nodes": nodes}));
        // One recall audit row per scope, for the diagnostics.
        db.exec(
            "INSERT INTO memory_recall_audit (scope, endpoint, query_sha256, seed_count, node_count, edge_count, \
             created_at) VALUES (?, 'recall', '00', 1, 1, 0, ?)",
            &[key(tenant, scope).into(), cairn_core::time_fmt::rfc3339_millis(NOW).into()],
        )
        .unwrap();
    }
    for t in ["acme", "ACME", "Acme"] {
        provisioning::provision(&db, &ctx(), t, &json!({"tier": "solo"})).unwrap();
    }
    db
}

fn count(db: &NativeSqlite, sql: &str, keys: &[String]) -> i64 {
    keys.iter().map(|k| db.query_one(sql, &[k.into()]).unwrap().unwrap().int(0)).sum()
}

fn keys_of(tenant: &str) -> Vec<String> {
    WRITES.iter().filter(|(t, _, _)| *t == tenant).map(|(t, sc, _)| key(t, sc)).collect()
}

#[test]
fn the_dashboard_counts_only_the_tenants_scopes() {
    let db = db_with_tenants();
    for (tenant, nodes) in [("default", 3), ("acme", 4), ("ACME", 4), ("Acme", 5)] {
        let d = dashboard::tenant(&db, &ctx(), tenant).unwrap();
        let dp = &d["dashboard"]["data_plane"];
        assert_eq!(dp["nodes"], nodes, "{tenant}: {dp}");
        let keys = keys_of(tenant);
        let bytes = count(&db, "SELECT bytes FROM memory_scope_usage WHERE scope = ?", &keys);
        assert_eq!((dp["stored_bytes"].as_i64(), dp["commits_24h"].as_i64()), (Some(bytes), Some(keys.len() as i64)));
        let outbox = count(&db, "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL", &keys);
        assert!(outbox > 0, "writes enqueue derivation jobs");
        assert_eq!(d["dashboard"]["outbox"]["pending"], outbox, "{tenant}");
    }
}

#[test]
fn diagnostics_summarize_only_the_tenants_scopes() {
    let db = db_with_tenants();
    for tenant in ["default", "acme", "ACME", "Acme"] {
        let keys = keys_of(tenant);
        let d = diagnostics::tenant(&db, &ctx(), tenant, &[]).unwrap();
        assert_eq!(d["diagnostics"]["recall_pipeline"]["total"], keys.len(), "{tenant}: {d}");
        let pending = count(
            &db,
            "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL AND failed_at IS NULL",
            &keys,
        );
        assert_eq!(d["diagnostics"]["outbox"]["totals"]["pending"], pending, "{tenant}");
    }
}

#[test]
fn tearing_down_acme_leaves_acme_in_other_cases_whole() {
    let db = db_with_tenants();
    // A control-plane tenant whose id is no memory tenant id holds no memory,
    // not the part of acme's its name would spell as a key prefix.
    for odd in ["acme::scope:", "acme::scope:p"] {
        provisioning::provision(&db, &ctx(), odd, &json!({"tier": "solo"})).unwrap();
        assert_eq!(provisioning::teardown(&db, &ctx(), odd).unwrap()["erased"]["nodes"], 0, "{odd}");
        assert_eq!(dashboard::tenant(&db, &ctx(), odd).unwrap()["dashboard"]["data_plane"]["nodes"], 0);
    }
    let t = provisioning::teardown(&db, &ctx(), "acme").unwrap();
    assert_eq!(t["erased"]["nodes"], 4, "{t}");
    let erased: Vec<&str> =
        t["erased"]["scopes"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap()).collect();
    assert_eq!(erased, ["::scope:z", "p"], "public names: {t}");
    let nodes = |tenant: &str| count(&db, "SELECT count(*) FROM memory_nodes WHERE scope = ?", &keys_of(tenant));
    assert_eq!((nodes("acme"), nodes("ACME"), nodes("Acme"), nodes("default")), (0, 4, 5, 3));
    for tenant in ["ACME", "Acme", "default"] {
        let v = mem(&db, Op::VerifyCommits, json!({"tenant_id": tenant, "all_scopes": true}));
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["scopes"].as_array().unwrap().iter().all(|s| s["erased"].is_null()), "{tenant}: nothing erased: {v}");
    }
    let v = mem(&db, Op::VerifyCommits, json!({"tenant_id": "acme", "scope": "p"}));
    assert_eq!((v["ok"].as_bool(), v["erased"]["nodes"].as_i64()), (Some(true), Some(3)), "{v}");
    assert_eq!(provisioning::status(&db, &ctx(), "ACME").unwrap()["status"], "active");
}
