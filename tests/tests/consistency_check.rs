//! The consistency check against a real data dir, while its server runs:
//! a clean dir passes with no findings; each class of fault, seeded through
//! SQL, is named with its severity, count and a sample; `--strict` and
//! `--strict-warnings` turn findings into exit code 1; the admin route
//! answers the same report.

use cairn_e2e::{Options, Server, cairn, event_write};
use serde_json::{Value, json};

const TOKEN: &str = "consistency-test-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];

fn server() -> Server {
    Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() })
}

/// `cairn job consistency-check --json` on the server's data dir: exit code and report.
fn check(s: &Server, extra: &[&str]) -> (i32, Value) {
    let data = s.data_dir.to_str().unwrap();
    let mut args = vec!["job", "consistency-check", "--json", "--embedder", "lexical", "--data-dir", data];
    args.extend_from_slice(extra);
    let (st, out, err) = cairn(&args);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (st.code().expect("exit code"), report)
}

fn finding<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

fn fired(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["count"].as_i64().unwrap_or(0) > 0 || c.get("error").is_some())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(path, &body, ADMIN);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

/// Two tenants with memories, derived, and a live API key for `acme`.
fn seeded() -> Server {
    let s = server();
    admin(&s, "/v1/admin/control/tenants", json!({"tenant_id": "acme"}));
    admin(&s, "/v1/admin/control/api-keys", json!({"tenant_id": "acme", "label": "ci"}));
    for i in 0..3 {
        assert_eq!(
            s.post("/v1/memory/write", &event_write(&format!("d{i}"), &format!("default memory {i}"))).status,
            200
        );
        let mut w = event_write(&format!("a{i}"), &format!("acme memory {i}"));
        w["tenant_id"] = json!("acme");
        assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    }
    let tick = admin(&s, "/v1/admin/derive/tick", json!({}));
    assert!(tick["done"].as_i64().unwrap() >= 6, "{tick}");
    s
}

fn one(s: &Server, sql: &str) -> String {
    match cairn_e2e::db_query(&s.data_dir, sql).into_iter().next().and_then(|r| r.into_iter().next()) {
        Some(libsql::Value::Text(t)) => t,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn a_clean_data_dir_passes_with_no_findings() {
    let s = seeded();
    let (code, r) = check(&s, &["--strict-warnings"]);
    assert_eq!(fired(&r), Vec::<String>::new(), "{r}");
    assert_eq!(code, 0);
    assert_eq!(r["ok"], true);
    assert_eq!(r["summary"]["errors"], 0);
    assert_eq!(r["summary"]["warnings"], 0);
    assert!(r["summary"]["checks_run"].as_i64().unwrap() >= 35, "{r}");
    // One tenant's scope, and each set alone.
    let (code, r) = check(&s, &["--tenant", "acme", "--scope", "default", "--check-set", "scope", "--strict"]);
    assert_eq!((code, r["scope_key"].as_str()), (0, Some("tenant:acme::scope:default")));
    let (code, r) = check(&s, &["--check-set", "cross_tenant", "--mode", "fast", "--strict-warnings"]);
    assert_eq!((code, r["check_set"].as_str(), r["mode"].as_str()), (0, Some("cross_tenant"), Some("fast")));
    // The human-readable form ends with the verdict.
    let data = s.data_dir.to_str().unwrap();
    let (st, out, _) = cairn(&["job", "consistency-check", "--embedder", "lexical", "--data-dir", data]);
    assert!(st.success());
    assert!(out.trim_end().ends_with("-> ok"), "{out}");
    // A data dir that does not exist is named, not created.
    let (st, _, err) = cairn(&["job", "consistency-check", "--data-dir", "/nonexistent/cairn-data"]);
    assert!(!st.success() && err.contains("no database at"), "{err}");
}

#[test]
fn a_stuck_claim_is_a_warning_that_only_strict_warnings_fails() {
    let s = seeded();
    // A job claimed long ago by a worker that never finished it.
    assert_eq!(s.post("/v1/memory/write", &event_write("late", "a memory not derived yet")).status, 200);
    s.tamper(
        "UPDATE memory_outbox SET claimed_at = '2026-01-01T00:00:00.000Z', claim_token = 'gone', attempts = 1 \
         WHERE id = (SELECT max(id) FROM memory_outbox WHERE published_at IS NULL)",
    );
    let (code, r) = check(&s, &["--strict"]);
    assert_eq!(fired(&r), ["outbox_claimed_too_old"], "{r}");
    let c = finding(&r, "outbox_claimed_too_old");
    assert_eq!((c["severity"].as_str(), c["count"].as_i64()), (Some("warning"), Some(1)));
    assert_eq!(c["sample"][0]["claimed_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!((code, r["ok"].as_bool()), (0, Some(true)), "a warning alone passes --strict");
    let (code, r) = check(&s, &["--strict-warnings"]);
    assert_eq!((code, r["summary"]["warnings"].as_i64()), (1, Some(1)));
    assert_eq!(r["exit_code"], 1);
}

#[test]
fn every_seeded_fault_is_named_with_its_severity_count_and_sample() {
    let s = seeded();
    let default_node = one(&s, "SELECT id FROM memory_nodes WHERE scope = 'default' AND client_id = 'd0'");
    let acme_node =
        one(&s, "SELECT id FROM memory_nodes WHERE scope = 'tenant:acme::scope:default' AND client_id = 'a0'");
    let default_commit = one(&s, "SELECT id FROM memory_commits WHERE scope = 'default' ORDER BY seq LIMIT 1");
    let acme_commit =
        one(&s, "SELECT id FROM memory_commits WHERE scope = 'tenant:acme::scope:default' ORDER BY seq LIMIT 1");
    // A memory changed outside the write path.
    s.tamper("UPDATE memory_nodes SET text_summary = 'tampered' WHERE scope = 'default' AND client_id = 'd1'");
    // An IVF member whose node does not exist.
    s.tamper(
        "INSERT INTO memory_vector_members (node_id, scope, list) VALUES ('00000000-0000-4000-8000-00000000dead', 'default', 0)",
    );
    // An edge from a default-tenant memory to one of acme's.
    s.tamper(&format!(
        "INSERT INTO memory_edges (id, scope, type, src_id, dst_id, weight, confidence, decay_rate, created_at, commit_id) \
         VALUES ('00000000-0000-4000-8000-0000000e0001', 'default', 'related_to', '{default_node}', '{acme_node}', 0.5, 0.5, 0.01, \
         '2026-12-01T00:00:00.000Z', '{default_commit}')"
    ));
    // A derivation job in the default tenant naming acme's commit.
    s.tamper(&format!(
        "INSERT INTO memory_outbox (scope, commit_id, event_type, payload, payload_sha256, job_key, created_at, published_at) \
         VALUES ('default', '{acme_commit}', 'embed_nodes', '{{}}', 'x', 'seeded', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')"
    ));
    // The control plane's audit log rewritten, and acme torn down with its key left live.
    s.tamper("UPDATE control_audit_events SET action = 'tampered' WHERE seq = 1");
    s.tamper("UPDATE control_tenants SET torn_down_at = '2026-11-30T00:00:00.000Z' WHERE tenant_id = 'acme'");

    let (code, r) = check(&s, &["--sample", "5"]);
    assert_eq!(code, 0, "findings without --strict are reported, not failed");
    assert_eq!(r["ok"], false);
    let expect = |name: &str, severity: &str, count: i64| {
        let c = finding(&r, name);
        assert_eq!((c["severity"].as_str(), c["count"].as_i64()), (Some(severity), Some(count)), "{c}");
        assert!(!c["sample"].as_array().unwrap().is_empty() && !c["note"].as_str().unwrap().is_empty(), "{c}");
        c.clone()
    };
    let chain = expect("commit_chain_broken", "error", 1);
    assert_eq!(chain["sample"][0]["scope"], "default");
    let member = expect("ivf_member_orphan", "error", 1);
    assert_eq!(member["sample"][0]["node_id"], "00000000-0000-4000-8000-00000000dead");
    let edge = expect("cross_tenant_edge_scope_mismatch", "error", 1);
    assert_eq!(edge["sample"][0]["dst_scope"], "tenant:acme::scope:default");
    expect("edges_cross_scope", "error", 1);
    let job = expect("cross_tenant_outbox_scope_mismatch", "error", 1);
    assert_eq!(job["sample"][0]["commit_scope"], "tenant:acme::scope:default");
    expect("outbox_commit_missing", "error", 1);
    let audit = expect("control_audit_chain_broken", "error", 1);
    assert_eq!(audit["sample"][0]["seq"], 1);
    let key = expect("api_keys_live_for_inactive_tenant", "error", 1);
    assert_eq!(key["sample"][0]["tenant_id"], "acme");
    assert!(r["summary"]["errors"].as_i64().unwrap() >= 8, "{}", r["summary"]);
    let (code, _) = check(&s, &["--strict"]);
    assert_eq!(code, 1);

    // Scoped to acme's scope, the default tenant's faults are out of view;
    // cross-tenant checks are global.
    let (_, scoped) = check(&s, &["--tenant", "acme", "--scope", "default", "--check-set", "scope"]);
    assert_eq!(finding(&scoped, "commit_chain_broken")["count"], 0);
    assert_eq!(finding(&scoped, "ivf_member_orphan")["count"], 0);
    let (_, cross) = check(&s, &["--check-set", "cross_tenant"]);
    assert!(cross["checks"].as_array().unwrap().iter().all(|c| c["name"] != "commit_chain_broken"));
    assert_eq!(finding(&cross, "cross_tenant_edge_scope_mismatch")["count"], 1);

    // The admin route answers the same report.
    let r =
        s.post_with("/v1/admin/control/consistency-check", &json!({"check_set": "cross_tenant", "sample": 1}), ADMIN);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["ok"], false);
    assert_eq!(finding(&r.body, "api_keys_live_for_inactive_tenant")["count"], 1);
    let r = s.post("/v1/admin/control/consistency-check", &json!({}));
    assert_eq!(r.status, 401, "{}", r.text);
    let r = s.post_with("/v1/admin/control/consistency-check", &json!({"check_set": "nope"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")), "{}", r.text);
}
