//! Health, request ids, routing errors, body limits, CORS, admin token.

use cairn_e2e::{Options, Server};
use serde_json::json;

#[test]
fn health_reports_components() {
    let s = Server::start();
    let r = s.get("/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ok"], true);
    for c in ["kernel", "policy", "control"] {
        assert!(r.body["components"][c]["version"].is_string(), "{c} missing: {}", r.text);
    }
    assert_eq!(r.body["components"]["kernel"]["schema_version"], 15);
    assert_eq!(r.body["components"]["control"]["schema_version"], 9);
    assert_eq!(r.body["memory_store_feature_capabilities"]["packs_export"], true);
    // libsql has FTS5; PostgreSQL has its postings table (docs/postgres.md).
    assert_eq!(r.body["memory_store_feature_capabilities"]["lexical_index"], true);
    let on_sqlite = cairn_e2e::backend() == cairn_e2e::Backend::Sqlite;
    assert_eq!(r.body["memory_store_backend"], if on_sqlite { "sqlite" } else { "postgres" });
    // The database's identity, stable across restarts of the same data dir.
    let hash = r.body["database_target_hash"].as_str().unwrap().to_string();
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    let again = Server::start_on(&s.data_dir, &Default::default()).get("/health");
    assert_eq!(again.body["database_target_hash"], hash.as_str());
    assert_ne!(Server::start().get("/health").body["database_target_hash"], hash.as_str());
}

#[test]
fn request_id_is_echoed_or_generated() {
    let s = Server::start();
    let r = s.get_with("/health", &[("x-request-id", "  req-123  ")]);
    assert_eq!(r.header("x-request-id"), Some("req-123"));
    let r = s.get("/health");
    let id = r.header("x-request-id").expect("generated id");
    assert_eq!(id.len(), 36, "uuid expected, got {id}");
    // Errors carry it too, and the host never leaks its private log header.
    let r = s.post_with("/v1/memory/write", &json!({}), &[("x-request-id", "bad-1")]);
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-request-id"), Some("bad-1"));
    assert!(r.header("x-cairn-tenant").is_none());
}

#[test]
fn unknown_routes_and_methods_use_the_envelope() {
    let s = Server::start();
    let r = s.get("/v1/memory/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"], "not_found");
    assert!(r.body["message"].is_string());
    let r = s.get("/v1/memory/write");
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"], "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn oversized_and_malformed_bodies_are_4xx() {
    let s = Server::start();
    let big = vec![b' '; 5 * 1024 * 1024 + 10];
    let r = s.post_raw("/v1/memory/write", &big, &[]);
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"], "payload_too_large");
    let r = s.post_raw("/v1/memory/write", b"{\"input_text\": ", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_json");
    // Python's json.dumps writes NaN, which is not JSON.
    let r = s.post_raw("/v1/memory/write", br#"{"input_text":"x","nodes":[{"type":"event","salience":NaN}]}"#, &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_json");
    let r = s.post_raw("/v1/memory/write", &[0xff, 0xfe], &[]);
    assert_eq!(r.status, 400);
    let r = s.post("/v1/memory/write", &json!([1, 2]));
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");
}

#[test]
fn cors_preflight() {
    // `*` only when configured (the default allows no origin; tests/cors_host.rs).
    let s = Server::start_with(Options {
        extra_args: vec!["--var".into(), "cors_allow_origins=*".into()],
        ..Default::default()
    });
    let r = s.agent_options("/v1/memory/write");
    assert_eq!(r.0, 204);
    assert_eq!(r.1.as_deref(), Some("*"));
}

trait Preflight {
    fn agent_options(&self, path: &str) -> (u16, Option<String>);
}

impl Preflight for Server {
    fn agent_options(&self, path: &str) -> (u16, Option<String>) {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(c, "OPTIONS {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: http://app.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n", self.port).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let allow = out
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("access-control-allow-origin:"))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string());
        (status, allow)
    }
}

#[test]
fn admin_token_semantics_on_packs() {
    let s = Server::start();
    let r = s.post("/v1/memory/packs/export", &json!({}));
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"], "admin_not_configured");
    drop(s);
    let s = Server::start_with(Options { admin_token: Some("s3cret".into()), ..Default::default() });
    for headers in [vec![], vec![("x-admin-token", "wrong")]] {
        let r = s.post_with("/v1/memory/packs/export", &json!({}), &headers);
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"], "unauthorized_admin");
        let r = s.post_with("/v1/memory/packs/import", &json!({}), &headers);
        assert_eq!(r.status, 401);
    }
    let r = s.post_with("/v1/memory/packs/export", &json!({}), &[("x-admin-token", "s3cret")]);
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn sigterm_exits_cleanly() {
    let mut s = Server::start();
    assert_eq!(s.get("/health").status, 200);
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}; log:\n{}", s.log());
    assert!(s.log().contains("shutting down"), "{}", s.log());
}

/// spin.toml routes `/v1/admin/derive/...` to the derive component (the
/// longest matching route wins); it reports the outbox the writes filled.
#[test]
fn derive_component_reports_the_outbox() {
    let s = Server::start_with(Options { admin_token: Some("t0k".into()), ..Default::default() });
    let r = s.get("/v1/admin/derive/status");
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "unauthorized_admin");
    let w = s.post("/v1/memory/write", &cairn_e2e::event_write("e1", "needs an embedding"));
    assert_eq!(w.body["embedding_backfill"]["pending_nodes"], 1);
    let r = s.get_with("/v1/admin/derive/status", &[("x-admin-token", "t0k")]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["outbox"]["pending"], 1);
    assert_eq!(r.body["outbox"]["dead_letter"], 0);
    assert!(r.body["outbox"]["oldest_pending_age_sec"].is_number());
}
