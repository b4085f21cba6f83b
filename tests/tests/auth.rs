//! Auth for memory routes over HTTP (reference §1.0): control-plane API
//! keys and HS256 JWTs, the principal forcing the tenant (`403
//! identity_mismatch`) and filling identity fields, revocation taking effect
//! on the very next request, rotation with a grace window, and `cairn up`
//! refusing a non-loopback address without auth.

use cairn_e2e::{Options, Server, TempDir, cairn, free_port};
use serde_json::{Value, json};

const TOKEN: &str = "auth-test-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];
const SECRET: &str = "jwt-test-secret";

fn server(mode: &str) -> Server {
    Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec![
            "--var".into(),
            format!("memory_auth_mode={mode}"),
            "--var".into(),
            format!("memory_jwt_hs256_secret={SECRET}"),
        ],
        ..Default::default()
    })
}

fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(&format!("/v1/admin/control/{path}"), &body, ADMIN);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

/// Creates tenant `acme` and a key for agent `bot`; returns (id, key).
fn acme_key(s: &Server) -> (String, String) {
    admin(s, "tenants", json!({"tenant_id": "acme"}));
    let k = admin(s, "api-keys", json!({"tenant_id": "acme", "agent_id": "bot", "team_id": "ops"}));
    (k["key"]["id"].as_str().unwrap().to_string(), k["key"]["api_key"].as_str().unwrap().to_string())
}

fn write(cid: &str) -> Value {
    json!({"scope": "s", "input_text": format!("write {cid}"), "nodes": [{"client_id": cid, "type": "event", "text_summary": cid}]})
}

#[test]
fn api_keys_authenticate_and_bind_the_tenant() {
    let s = server("api_key");
    let (id, key) = acme_key(&s);
    let r = s.post("/v1/memory/write", &write("e1"));
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("unauthorized")), "{}", r.text);
    assert_eq!(r.body["message"], "valid X-Api-Key is required");
    let r = s.post_with("/v1/memory/write", &write("e1"), &[("x-api-key", "ak_live_nope")]);
    assert_eq!(r.status, 401);

    let auth: &[(&str, &str)] = &[("x-api-key", &key)];
    let w = s.post_with("/v1/memory/write", &write("e1"), auth);
    assert_eq!((w.status, w.body["tenant_id"].as_str()), (200, Some("acme")), "{}", w.text);
    let mut other = write("e2");
    other["tenant_id"] = json!("beta");
    let r = s.post_with("/v1/memory/write", &other, auth);
    assert_eq!((r.status, r.body["error"].as_str()), (403, Some("identity_mismatch")), "{}", r.text);
    assert_eq!(r.body["details"], json!({"field": "tenant_id", "provided": "beta", "expected": "acme"}));
    let r = s.post_with("/v1/memory/write", &write("e3"), &[("x-api-key", &key), ("x-tenant-id", "beta")]);
    assert_eq!(r.status, 403, "{}", r.text);

    // The write was private to the key's agent (owner filled in); the same
    // key finds it (consumer filled in), an unauthenticated find cannot run.
    let f = s.post_with("/v1/memory/find", &json!({"scope": "s", "client_id": "e1", "include_meta": true}), auth);
    assert_eq!(f.status, 200, "{}", f.text);
    assert_eq!(f.body["nodes"][0]["owner_agent_id"], "bot", "{}", f.text);
    let r = s.post_with("/v1/memory/find", &json!({"scope": "s", "consumer_agent_id": "mallory"}), auth);
    assert_eq!((r.status, r.body["details"]["field"].as_str()), (403, Some("consumer_agent_id")), "{}", r.text);

    // Policy routes: the context's agent is the key's.
    let e = s.post_with("/v1/memory/rules/evaluate", &json!({"scope": "s", "context": {}}), auth);
    assert_eq!(e.body["agent_visibility_summary"]["agent"], json!({"id": "bot", "team_id": "ops"}), "{}", e.text);
    // GET routes are bound too.
    let c = s.get_with("/v1/memory/commits?scope=s", auth);
    assert_eq!((c.status, c.body["tenant_id"].as_str()), (200, Some("acme")), "{}", c.text);
    // Health needs no key.
    assert_eq!(s.get("/health").status, 200);

    // Revocation holds for the next request.
    admin(&s, &format!("api-keys/{id}/revoke"), json!({}));
    assert_eq!(s.post_with("/v1/memory/write", &write("e4"), auth).status, 401);
}

#[test]
fn rotation_grace_and_suspended_tenants() {
    let s = server("api_key");
    let (id, old) = acme_key(&s);
    let r = admin(&s, &format!("api-keys/{id}/rotate"), json!({"grace_seconds": 600}));
    let new = r["key"]["api_key"].as_str().unwrap().to_string();
    for key in [&old, &new] {
        let w = s.post_with("/v1/memory/write", &write("g1"), &[("x-api-key", key)]);
        assert_eq!(w.status, 200, "a key works during the grace window: {}", w.text);
    }
    let new_id = r["key"]["rotated"]["id"].as_str().unwrap().to_string();
    let r = admin(&s, &format!("api-keys/{new_id}/rotate"), json!({}));
    let newest = r["key"]["api_key"].as_str().unwrap().to_string();
    assert_eq!(
        s.post_with("/v1/memory/write", &write("g2"), &[("x-api-key", &new)]).status,
        401,
        "grace 0 ends at once"
    );
    assert_eq!(s.post_with("/v1/memory/write", &write("g3"), &[("x-api-key", &newest)]).status, 200);

    admin(&s, "tenants", json!({"tenant_id": "acme", "status": "suspended"}));
    assert_eq!(s.post_with("/v1/memory/write", &write("g4"), &[("x-api-key", &newest)]).status, 401);
    admin(&s, "tenants", json!({"tenant_id": "acme"}));
    assert_eq!(s.post_with("/v1/memory/write", &write("g5"), &[("x-api-key", &newest)]).status, 200);
}

#[test]
fn jwts_authenticate_with_expiry() {
    let s = server("api_key_or_jwt");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let token = cairn_core::auth::sign_jwt(
        &json!({"tenant_id": "jwt-co", "sub": "agent-7", "exp": now + 300}),
        SECRET.as_bytes(),
    );
    let bearer = format!("Bearer {token}");
    // An unknown key falls through to the JWT.
    let w =
        s.post_with("/v1/memory/write", &write("j1"), &[("x-api-key", "ak_live_unknown"), ("authorization", &bearer)]);
    assert_eq!((w.status, w.body["tenant_id"].as_str()), (200, Some("jwt-co")), "{}", w.text);
    let expired = cairn_core::auth::sign_jwt(&json!({"tenant_id": "jwt-co", "exp": now - 120}), SECRET.as_bytes());
    let r = s.post_with("/v1/memory/write", &write("j2"), &[("authorization", &format!("Bearer {expired}"))]);
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (401, Some("valid X-Api-Key or Authorization: Bearer <jwt> is required"))
    );
    let forged = cairn_core::auth::sign_jwt(&json!({"tenant_id": "jwt-co", "exp": now + 300}), b"wrong");
    assert_eq!(
        s.post_with("/v1/memory/write", &write("j3"), &[("authorization", &format!("Bearer {forged}"))]).status,
        401
    );
}

#[test]
fn non_loopback_without_auth_refuses_to_start() {
    let dir = TempDir::new("auth-refuse");
    let listen = format!("0.0.0.0:{}", free_port());
    let (status, _out, err) =
        cairn(&["up", "--listen", &listen, "--data-dir", dir.path().to_str().unwrap(), "--no-cron"]);
    assert!(!status.success());
    assert!(err.contains("refusing to serve") && err.contains("memory_auth_mode=off"), "{err}");
}
