//! The tier chooses the store (`resource_caps.store`, docs/postgres.md
//! "Which store a tenant lives in"): one `cairn up` serves tenants whose
//! memories live in the data dir's SQLite beside tenants whose memories
//! live in PostgreSQL, each in exactly one of them, through the same API —
//! writes, find, recall, the commit log, rules, derivation, the dashboard,
//! the consistency check and teardown. Each test starts its own
//! PostgreSQL, so they run on the SQLite pass only.

use cairn_e2e::{Options, Server, db_query};
use serde_json::{Value, json};

const ADMIN: &str = "place-admin";

fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(path, &body, &[("x-admin-token", ADMIN)]);
    assert_eq!(r.status, 200, "{path} {body}: {}\n{}", r.text, s.log());
    r.body
}

fn tiers_file(dir: &std::path::Path, team_flags: &str) -> std::path::PathBuf {
    let path = dir.join("tiers-placed.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\ndefault_tier: solo\ntiers:\n\
             \x20 solo:\n    resource_caps: {{store: sqlite, vector_index: flat, embedding_dims: 384}}\n    driver_flags: {{}}\n\
             \x20 team:\n    resource_caps: {{store: postgres, vector_index: flat, embedding_dims: 384}}\n    driver_flags: {team_flags}\n"
        ),
    )
    .unwrap();
    path
}

fn write(s: &Server, tenant: &str, client_id: &str, text: &str) -> Value {
    let body = json!({"tenant_id": tenant, "scope": "notes", "input_text": text, "memory_lane": "shared",
                      "nodes": [{"client_id": client_id, "type": "event", "text_summary": text}]});
    let r = s.post("/v1/memory/write", &body);
    assert_eq!(r.status, 200, "{}\n{}", r.text, s.log());
    r.body
}

fn sqlite_count(s: &Server, sql: &str) -> i64 {
    match db_query(&s.data_dir, sql)[0][0] {
        libsql::Value::Integer(n) => n,
        ref v => panic!("{v:?}"),
    }
}

/// `field` of each node `find` returns for the tenant's `notes` that has it
/// (topics have no client id), newest first.
fn found_field(s: &Server, tenant: &str, field: &str) -> Vec<String> {
    let r = s.post("/v1/memory/find", &json!({"tenant_id": tenant, "scope": "notes"}));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["nodes"].as_array().unwrap().iter().filter_map(|n| n[field].as_str()).map(str::to_string).collect()
}

fn found(s: &Server, tenant: &str) -> Vec<String> {
    found_field(s, tenant, "client_id")
}

/// A hosted deployment: the home store (control plane and the team tier)
/// is PostgreSQL; the solo tier's tenants live in the data dir's SQLite.
#[test]
fn solo_tenants_live_in_sqlite_beside_team_tenants_in_postgresql() {
    if cairn_e2e::skip_unless_sqlite("starts its own PostgreSQL beside the data dir's SQLite") {
        return;
    }
    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = cairn_e2e::TempDir::new("placed");
    let tiers = tiers_file(dir.path(), "{}");
    let s = Server::start_with(Options {
        admin_token: Some(ADMIN.into()),
        extra_args: vec!["--database-url".into(), pg.url("postgres"), "--tiers".into(), tiers.to_str().unwrap().into()],
        ..Default::default()
    });
    let psql = |sql: &str| pg.psql("postgres", sql).unwrap_or_else(|e| panic!("{e}")).trim().to_string();

    let health = s.get("/health");
    assert_eq!(health.body["memory_store_backend"], "postgres", "{}", health.text);
    assert_eq!(health.body["memory_store_placements"], json!({"solo": "sqlite"}), "{}", health.text);

    admin(&s, "/v1/admin/control/tenants/acme/provision", json!({"tier": "team"}));
    admin(&s, "/v1/admin/control/tenants/brook/provision", json!({"tier": "solo"}));
    let a1 = write(&s, "acme", "a1", "acme shipped the harbor release");
    write(&s, "acme", "a2", "acme rolled back the harbor release");
    let b1 = write(&s, "brook", "b1", "brook planted the orchard");
    write(&s, "default", "d1", "the default tenant keeps a journal");

    // Each tenant's rows are in exactly one store; the control plane is home.
    let sqlite_nodes = |t: &str| sqlite_count(&s, &format!("SELECT count(*) FROM memory_nodes WHERE scope LIKE '{t}'"));
    let pg_nodes = |t: &str| psql(&format!("SELECT count(*) FROM memory_nodes WHERE scope LIKE '{t}'"));
    assert_eq!(pg_nodes("tenant:acme::%"), "2");
    assert_eq!(sqlite_nodes("tenant:acme::%"), 0);
    assert_eq!((sqlite_nodes("tenant:brook::%"), pg_nodes("tenant:brook::%").as_str()), (1, "0"));
    assert_eq!((sqlite_nodes("notes"), pg_nodes("notes").as_str()), (1, "0"), "the default tenant is on solo");
    assert_eq!(psql("SELECT tier FROM control_tenants WHERE tenant_id = 'brook'"), "solo");
    // Reads, retries, the commit log and its verification, per tenant.
    assert_eq!(found(&s, "acme"), ["a2", "a1"]);
    assert_eq!(found(&s, "brook"), ["b1"]);
    assert_eq!(write(&s, "acme", "a1", "acme shipped the harbor release")["commit_id"], a1["commit_id"]);
    for tenant in ["acme", "brook", "default"] {
        let v = s.post("/v1/memory/commits/verify", &json!({"tenant_id": tenant, "scope": "notes"}));
        assert_eq!((v.status, &v.body["ok"]), (200, &json!(true)), "{tenant}: {}", v.text);
        let log = s.get(&format!("/v1/memory/commits?tenant_id={tenant}&scope=notes"));
        assert_eq!(log.status, 200, "{}", log.text);
        let n = log.body["commits"].as_array().unwrap().len();
        assert_eq!(n, if tenant == "acme" { 2 } else { 1 }, "{tenant}: {}", log.text);
    }

    // Derivation ticks both stores: every node gets its embedding.
    let tick = admin(&s, "/v1/admin/derive/tick", json!({}));
    assert_eq!(tick["stores"], 2, "{tick}");
    assert_eq!(tick["embed"]["nodes_embedded"], 4, "{tick}");
    // Each store's nodes (events and the topics derivation made of them)
    // have their vectors in that store.
    assert_eq!(psql("SELECT count(*) FROM memory_derived_vectors"), psql("SELECT count(*) FROM memory_nodes"));
    assert_eq!(psql("SELECT count(*) FROM memory_derived_vectors WHERE scope NOT LIKE 'tenant:acme::%'"), "0");
    let sqlite_vectors = sqlite_count(&s, "SELECT count(*) FROM memory_derived_vectors");
    assert_eq!(sqlite_vectors, sqlite_count(&s, "SELECT count(*) FROM memory_nodes"));
    assert!(sqlite_vectors >= 2, "{tick}");
    let node_id = |w: &Value| w["nodes"][0]["id"].as_str().unwrap().to_string();
    for (tenant, text, want) in
        [("acme", "harbor release shipped", node_id(&a1)), ("brook", "orchard planted", node_id(&b1))]
    {
        let r = s.post("/v1/memory/recall_text", &json!({"tenant_id": tenant, "scope": "notes", "query_text": text}));
        assert_eq!(r.status, 200, "{}", r.text);
        let seeds: Vec<&str> = r.body["seeds"].as_array().unwrap().iter().filter_map(|n| n["id"].as_str()).collect();
        assert!(seeds.contains(&want.as_str()), "{tenant}: {}", r.text);
        let theirs = found_field(&s, tenant, "id");
        assert!(seeds.iter().all(|id| theirs.iter().any(|t| t == id)), "only {tenant}'s memories: {}", r.text);
    }
    // A recall of a tenant apart keeps its audit row beside its memories.
    let audited = sqlite_count(&s, "SELECT count(*) FROM memory_recall_audit WHERE scope LIKE 'tenant:brook::%'");
    assert_eq!(audited, 1);

    // Rules are memories: in the tenant's store.
    let rule = json!({"tenant_id": "brook", "scope": "notes", "input_text": "a rule", "memory_lane": "shared",
                      "nodes": [{"client_id": "rule1", "type": "rule", "text_summary": "prefer the spade",
                                 "slots": {"if": {"intent": "plant"}, "then": {"tool": {"prefer": ["spade"]}}}}]});
    let rule = s.post("/v1/memory/write", &rule);
    assert_eq!(rule.status, 200, "{}", rule.text);
    let state = s.post(
        "/v1/memory/rules/state",
        &json!({"tenant_id": "brook", "scope": "notes", "rule_node_id": node_id(&rule.body), "state": "active",
                "input_text": "activate"}),
    );
    assert_eq!(state.status, 200, "{}", state.text);
    let eval = s.post(
        "/v1/memory/rules/evaluate",
        &json!({"tenant_id": "brook", "scope": "notes", "context": {"intent": "plant"}}),
    );
    assert_eq!(eval.status, 200, "{}", eval.text);
    assert_eq!(eval.body["matched"], 1, "{}", eval.text);

    // The dashboard counts the tenant's memories where they are.
    let dash = s.get_with("/v1/admin/control/dashboard/tenant/brook", &[("x-admin-token", ADMIN)]);
    assert_eq!(dash.status, 200, "{}", dash.text);
    let brook_nodes = sqlite_nodes("tenant:brook::%");
    let plane = &dash.body["dashboard"]["data_plane"];
    assert_eq!(
        (plane["nodes"].as_i64(), plane["active_rules"].as_i64()),
        (Some(brook_nodes), Some(1)),
        "{}",
        dash.text
    );
    assert_eq!(plane["recalls_24h"], 1, "{}", dash.text);
    assert!(dash.body["dashboard"]["data_plane"]["stored_bytes"].as_i64() > Some(0), "{}", dash.text);

    // The consistency check of a tenant checks its store.
    let check = admin(&s, "/v1/admin/control/consistency-check", json!({"tenant_id": "brook", "strict": true}));
    assert_eq!(check["summary"]["errors"], 0, "{check}");

    // An upgrade that would leave a tenant's memories behind in another
    // store is refused until the operator says they were copied.
    admin(&s, "/v1/admin/control/tenants/dune/provision", json!({"tier": "solo"}));
    write(&s, "dune", "u1", "dune mapped the shoreline");
    let up = |body: Value| s.post_with("/v1/admin/control/tenants/dune/upgrade", &body, &[("x-admin-token", ADMIN)]);
    let refused = up(json!({"tier": "team"}));
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (409, Some("tier_store_change_needs_migration")),
        "{}",
        refused.text
    );
    assert_eq!(refused.body["details"]["from_store"], "sqlite", "{}", refused.text);
    assert_eq!(refused.body["details"]["to_store"], "home", "{}", refused.text);
    assert!(refused.body["message"].as_str().unwrap().contains("cairn job migrate-store"), "{}", refused.text);
    assert_eq!(psql("SELECT tier FROM control_tenants WHERE tenant_id = 'dune'"), "solo", "nothing changed");
    let bad = up(json!({"tier": "team", "allow_store_change": "yes"}));
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(up(json!({"tier": "team", "allow_store_change": true})).status, 200);
    let audited =
        psql("SELECT details FROM control_audit_events WHERE action = 'tenant.upgrade' AND tenant_id = 'dune'");
    assert!(
        audited.contains("\"allowed_by_operator\":true") || audited.contains("\"allowed_by_operator\": true"),
        "{audited}"
    );
    // A tenant without memories changes store freely.
    admin(&s, "/v1/admin/control/tenants/cove/provision", json!({"tier": "solo"}));
    admin(&s, "/v1/admin/control/tenants/cove/upgrade", json!({"tier": "team"}));

    // Teardown erases the memories in the tenant's store, and suspends it at home.
    let down = admin(&s, "/v1/admin/control/tenants/brook/teardown", json!({}));
    assert_eq!(down["erased"]["nodes"].as_i64(), Some(brook_nodes), "{down}");
    assert_eq!(sqlite_nodes("tenant:brook::%"), 0);
    assert_eq!(psql("SELECT status FROM control_tenants WHERE tenant_id = 'brook'"), "suspended");
    assert_eq!(found(&s, "acme"), ["a2", "a1"], "the other store is untouched");
    // Derivation, retention and teardown left the control plane at home.
    let sqlite_has_control = db_query(&s.data_dir, "SELECT count(*) FROM sqlite_master WHERE name = 'control_tenants'");
    assert!(matches!(sqlite_has_control[0][0], libsql::Value::Integer(0)), "no control plane in the solo store");
}

/// A self-hosted deployment on SQLite adds a PostgreSQL for one tier: the
/// tier names the connection variable, and `cairn up` refuses to start
/// while that variable is unset.
#[test]
fn a_tier_names_its_postgresql_connection_and_start_refuses_it_unset() {
    if cairn_e2e::skip_unless_sqlite("starts its own PostgreSQL beside the data dir's SQLite") {
        return;
    }
    let dir = cairn_e2e::TempDir::new("placed-conn");
    let tiers = tiers_file(dir.path(), "{store_connection: tenant_database_url}");
    let tiers = tiers.to_str().unwrap();
    let (status, _, err) = cairn_e2e::cairn(&[
        "up",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("d").to_str().unwrap(),
        "--tiers",
        tiers,
    ]);
    assert!(!status.success());
    assert!(err.contains("tier team stores in postgres, but the variable tenant_database_url is empty"), "{err}");

    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let s = Server::start_with(Options {
        admin_token: Some(ADMIN.into()),
        extra_args: vec!["--tenant-database-url".into(), pg.url("postgres"), "--tiers".into(), tiers.into()],
        ..Default::default()
    });
    let health = s.get("/health");
    assert_eq!(health.body["memory_store_backend"], "sqlite", "{}", health.text);
    assert_eq!(health.body["memory_store_placements"], json!({"team": "postgres"}), "{}", health.text);
    admin(&s, "/v1/admin/control/tenants/acme/provision", json!({"tier": "team"}));
    write(&s, "acme", "a1", "acme shipped the harbor release");
    write(&s, "default", "d1", "the default tenant keeps a journal");
    let psql = |sql: &str| pg.psql("postgres", sql).unwrap_or_else(|e| panic!("{e}")).trim().to_string();
    assert_eq!(psql("SELECT count(*) FROM memory_nodes"), "1");
    assert_eq!(psql("SELECT count(*) FROM memory_nodes WHERE scope LIKE 'tenant:acme::%'"), "1");
    assert_eq!(sqlite_count(&s, "SELECT count(*) FROM memory_nodes"), 1, "only the default tenant's");
    assert_eq!(sqlite_count(&s, "SELECT count(*) FROM control_tenants WHERE tenant_id = 'acme'"), 1);
    assert_eq!(found(&s, "acme"), ["a1"]);
    assert_eq!(admin(&s, "/v1/admin/derive/tick", json!({}))["embed"]["nodes_embedded"], 2);
}
