//! `cairn job migrate-store`: a tenant served from a data dir's SQLite is
//! copied to PostgreSQL (a throwaway server), and a `cairn up` on that
//! database answers for it exactly as the SQLite one does: find, recall,
//! the commit log and its verification, the control plane's rows; the
//! destination's audit chain verifies with the tenant's events in it; only
//! that tenant moved; a second run is refused.

use cairn_e2e::{Options, Server, cairn, db_query};
use serde_json::{Value, json};

const ADMIN: &str = "mig-admin";

fn ok(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(path, &body, &[("x-admin-token", ADMIN)]);
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    r.body
}

fn get(s: &Server, path: &str) -> Value {
    let r = s.get_with(path, &[("x-admin-token", ADMIN)]);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

/// An answer without what differs by instance and time (ids of requests,
/// timings).
fn stable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                for k in ["request_id", "observability", "duration_ms", "elapsed_ms", "timings_ms", "stage_timings_ms"]
                {
                    o.remove(k);
                }
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Where two answers first differ (a JSON path and both values), to keep a
/// failure's message readable.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            x.iter().find_map(|(k, v)| first_difference(v, y.get(k).unwrap_or(&Value::Null), format!("{at}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]")))
        }
        _ if a == b => None,
        _ => Some((at, a.to_string().chars().take(300).collect(), b.to_string().chars().take(300).collect())),
    }
}

#[test]
fn a_tenant_moves_from_sqlite_to_postgres_and_answers_the_same() {
    if cairn_e2e::skip_unless_sqlite(
        "migrate-store copies from a SQLite data dir (this test starts its own PostgreSQL)",
    ) {
        return;
    }
    let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
    let url = pg.url("postgres");
    let src = Server::start_with(Options { admin_token: Some(ADMIN.into()), ..Default::default() });
    ok(&src, "/v1/admin/control/tenants", json!({"tenant_id": "acme", "display_name": "Acme"}));
    ok(&src, "/v1/admin/control/projects", json!({"project_id": "p1", "tenant_id": "acme"}));
    ok(&src, "/v1/admin/control/api-keys", json!({"tenant_id": "acme", "project_id": "p1", "label": "ci"}));
    for i in 0..24 {
        let scope = if i % 3 == 0 { "beta" } else { "alpha" };
        let w = json!({
            "tenant_id": "acme", "scope": scope, "input_text": format!("acme note {i}"), "memory_lane": "shared",
            "nodes": [
                {"client_id": format!("e{i}"), "type": "event", "text_summary": format!("acme shipped release {i} to region {}", i % 4),
                 "slots": {"release": i}},
                {"client_id": format!("r{}", i % 4), "type": "entity", "title": format!("region {}", i % 4)}
            ],
            "edges": [{"type": "related_to", "src": {"client_id": format!("e{i}")}, "dst": {"client_id": format!("r{}", i % 4)}}]
        });
        let r = src.post("/v1/memory/write", &w);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // The default tenant's memory stays behind.
    assert_eq!(src.post("/v1/memory/write", &cairn_e2e::event_write("d1", "default tenant note")).status, 200);
    let dir = src.data_dir.to_str().unwrap().to_string();
    let (st, out, err) = cairn(&["job", "derive", "--data-dir", &dir, "--embedder", "lexical"]);
    assert!(st.success(), "{out}{err}");

    let from = format!("sqlite:{dir}");
    let migrate = |extra: &[&str]| {
        let mut args =
            vec!["job", "migrate-store", "--from", &from, "--to", &url, "--tenant", "acme", "--embedder", "lexical"];
        args.extend_from_slice(extra);
        cairn(&args)
    };
    let (st, out, err) = migrate(&["--page-rows", "7"]);
    assert!(st.success(), "migrate-store failed:\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["ok"], true, "{report}");
    // Every row of acme's scopes, its own writes and what derivation made of them.
    let count = |table: &str| -> i64 {
        let rows = db_query(
            &src.data_dir,
            &format!(
                "SELECT count(*) FROM {table} WHERE scope >= 'tenant:acme::scope:' AND scope < 'tenant:acme::scope;'"
            ),
        );
        match rows[0][0] {
            libsql::Value::Integer(n) => n,
            ref v => panic!("{v:?}"),
        }
    };
    for table in ["memory_commits", "memory_nodes", "memory_edges", "memory_outbox", "memory_derived_vectors"] {
        assert_eq!(report["rows"][table].as_i64(), Some(count(table)), "{table}: {report}");
    }
    assert!(report["rows"]["memory_nodes"].as_i64() >= Some(24 + 4), "{report}");
    assert_eq!(
        report["rows"]["memory_derived_vectors"], report["rows"]["memory_nodes"],
        "derived data moves too: {report}"
    );
    assert!(report["rows"]["memory_commits"].as_i64() > Some(24), "derivation's commits move too: {report}");
    assert_eq!(
        (report["rows"]["control_api_keys"].as_i64(), report["scopes"].as_i64()),
        (Some(1), Some(2)),
        "{report}"
    );
    assert!(err.contains(&format!("memory_nodes: {} copied", count("memory_nodes"))), "progress on stderr: {err}");

    let dst = Server::start_with(Options {
        admin_token: Some(ADMIN.into()),
        extra_args: vec!["--database-url".into(), url.clone()],
        ..Default::default()
    });
    assert_eq!(dst.get("/health").body["memory_store_backend"], "postgres");
    // A query vector: one of the stored embeddings.
    let q = db_query(
        &src.data_dir,
        "SELECT v.vector FROM memory_derived_vectors v JOIN memory_nodes n ON n.id = v.node_id WHERE n.client_id = 'e5'",
    );
    let q: Vec<f32> = match &q[0][0] {
        libsql::Value::Blob(b) => b.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        other => panic!("no embedding: {other:?}"),
    };
    for scope in ["alpha", "beta"] {
        let requests = [
            ("/v1/memory/find", json!({"tenant_id": "acme", "scope": scope, "limit": 100})),
            ("/v1/memory/find", json!({"tenant_id": "acme", "scope": scope, "text_contains": "region 2"})),
            ("/v1/memory/recall", json!({"tenant_id": "acme", "scope": scope, "query_embedding": q, "limit": 10})),
            ("/v1/memory/commits/verify", json!({"tenant_id": "acme", "scope": scope})),
        ];
        for (path, body) in requests {
            let (a, b) = (src.post(path, &body), dst.post(path, &body));
            assert_eq!((a.status, b.status), (200, 200), "{path}: {}\n{}", a.text, b.text);
            let (a, b) = (stable(a.body), stable(b.body));
            assert!(a == b, "{path} answers differently after the move: {:?}", first_difference(&a, &b, String::new()));
        }
        let path = format!("/v1/memory/commits?tenant_id=acme&scope={scope}&limit=100");
        assert_eq!(src.get(&path).body, dst.get(&path).body, "{path}");
    }
    let v = dst.post("/v1/memory/commits/verify", &json!({"tenant_id": "acme", "scope": "alpha"}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert!(v.body["checked"].as_i64() >= Some(16), "{}", v.text);
    for path in ["/v1/admin/control/tenants", "/v1/admin/control/api-keys?tenant_id=acme"] {
        assert_eq!(get(&src, path), get(&dst, path), "{path}");
    }
    // The destination's audit chain verifies and holds acme's events, then the migration's.
    let audit = ok(&dst, "/v1/admin/control/audit-events/verify", json!({}));
    assert_eq!(audit["ok"], true, "{audit}");
    let events = get(&dst, "/v1/admin/control/audit-events?tenant_id=acme");
    let actions: Vec<&str> = events["events"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["tenant.store_migrated", "api_key.create", "project.upsert", "tenant.upsert"], "{events}");
    // Only acme moved.
    let d = dst.post("/v1/memory/find", &json!({"limit": 10}));
    assert_eq!(d.body["nodes"].as_array().map(Vec::len), Some(0), "{}", d.text);

    // Run again: refused, naming what is there, and nothing changes.
    let (st, out, err) = migrate(&[]);
    assert!(!st.success(), "{out}");
    let nodes = format!("memory_nodes: {}", count("memory_nodes"));
    assert!(err.contains("already holds rows of tenant \"acme\"") && err.contains(&nodes), "{err}");
    assert!(err.contains("--purge-destination"), "{err}");
    let v = dst.post("/v1/memory/commits/verify", &json!({"tenant_id": "acme", "scope": "beta"}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    // A source that is not a data dir, or a destination that is not PostgreSQL, is refused.
    for (from, to, says) in [
        ("sqlite:/nonexistent/cairn", url.as_str(), "no database at"),
        (from.as_str(), "mysql://x", "--to must be a postgres:// URL"),
        (&url as &str, url.as_str(), "--from must be sqlite:DATA_DIR"),
    ] {
        let (st, _, err) = cairn(&["job", "migrate-store", "--from", from, "--to", to, "--tenant", "acme"]);
        assert!(!st.success() && err.contains(says), "{from} -> {to}: {err}");
    }
}
