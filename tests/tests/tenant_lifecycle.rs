//! The whole tenant lifecycle on `solo`, with the embedded default, local
//! auth and no external service: provision, keys, writes, a quota hit,
//! rotation with grace, revoke, upgrade, teardown (memory erased behind
//! tombstones) and verify — the chain and the audit log both still verify.

use cairn_e2e::{Options, Server};
use serde_json::{Value, json};

const TOKEN: &str = "lifecycle-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];
const SECRET: &str = "lifecycle-jwt";

fn admin(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(&format!("/v1/admin/control/{path}"), &body, ADMIN);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

fn write(i: usize) -> Value {
    json!({"scope": "notes", "input_text": format!("note {i}"), "memory_lane": "shared",
           "nodes": [{"client_id": format!("n{i}"), "type": "event", "text_summary": format!("note {i}")},
                     {"client_id": format!("e{i}"), "type": "entity", "title": format!("thing {i}")}],
           "edges": [{"type": "related_to", "src": {"client_id": format!("n{i}")}, "dst": {"client_id": format!("e{i}")}}]})
}

#[test]
fn tenant_lifecycle_on_solo() {
    let s = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: ["--var", "memory_auth_mode=api_key_or_jwt", "--var", &format!("memory_jwt_hs256_secret={SECRET}")]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        ..Default::default()
    });
    // Provision.
    let p = admin(&s, "tenants/acme/provision", json!({"tier": "solo"}));
    assert_eq!(p["tier"], "solo");
    // Keys and writes.
    let k = admin(&s, "api-keys", json!({"tenant_id": "acme", "agent_id": "bot"}));
    let (key_id, key) =
        (k["key"]["id"].as_str().unwrap().to_string(), k["key"]["api_key"].as_str().unwrap().to_string());
    let with = |key: &str, i: usize| s.post_with("/v1/memory/write", &write(i), &[("x-api-key", key)]);
    for i in 0..3 {
        let w = with(&key, i);
        assert_eq!((w.status, w.body["tenant_id"].as_str()), (200, Some("acme")), "{}", w.text);
    }
    // A quota hit.
    let quota = json!({"recall_rps": 100, "recall_burst": 100, "write_rps": 0.0001, "write_burst": 2,
                       "write_max_wait_ms": 0, "debug_embed_rps": 1, "debug_embed_burst": 1,
                       "recall_text_embed_rps": 10, "recall_text_embed_burst": 10, "recall_text_embed_max_wait_ms": 0});
    assert_eq!(s.put_with("/v1/admin/control/tenant-quotas/acme", &quota, ADMIN).status, 200);
    let hit = (10..14).map(|i| with(&key, i)).find(|r| r.status != 200).expect("the quota is hit");
    assert_eq!((hit.status, hit.body["error"].as_str()), (429, Some("tenant_rate_limited_write")), "{}", hit.text);
    assert!(hit.header("retry-after").is_some());
    assert_eq!(s.delete_with("/v1/admin/control/tenant-quotas/acme", ADMIN).status, 200);
    // Rotation with grace: both keys work; revoking ends each at once.
    let r = admin(&s, &format!("api-keys/{key_id}/rotate"), json!({"grace_seconds": 600}));
    let (new_id, new_key) =
        (r["key"]["rotated"]["id"].as_str().unwrap().to_string(), r["key"]["api_key"].as_str().unwrap().to_string());
    assert_eq!(with(&key, 20).status, 200, "old key in its grace window");
    assert_eq!(with(&new_key, 21).status, 200);
    admin(&s, &format!("api-keys/{key_id}/revoke"), json!({}));
    assert_eq!(with(&key, 22).status, 401, "revoking ends the grace window");
    admin(&s, &format!("api-keys/{new_id}/revoke"), json!({}));
    assert_eq!(with(&new_key, 23).status, 401);
    // Upgrade.
    let u = admin(&s, "tenants/acme/upgrade", json!({"tier": "starter"}));
    assert_eq!(u["tier"], "starter");
    let k2 = admin(&s, "api-keys", json!({"tenant_id": "acme", "agent_id": "bot"}));
    let key2 = k2["key"]["api_key"].as_str().unwrap().to_string();
    assert_eq!(with(&key2, 30).status, 200);
    let before = s.post_with("/v1/memory/find", &json!({"scope": "notes"}), &[("x-api-key", &key2)]);
    assert!(before.body["nodes"].as_array().unwrap().len() >= 10, "{}", before.text);

    let d = s.get_with("/v1/admin/control/dashboard/tenant/acme", ADMIN);
    assert_eq!(d.status, 200, "{}", d.text);
    let dash = &d.body["dashboard"];
    assert_eq!((dash["tenant"]["tier"].as_str(), dash["api_keys"]["active"].as_i64()), (Some("starter"), Some(1)));
    assert!(
        dash["data_plane"]["nodes"].as_i64().unwrap() >= 10 && dash["data_plane"]["stored_bytes"].as_i64().unwrap() > 0
    );
    assert!(dash["data_plane"]["commits_24h"].as_i64().unwrap() >= 8, "{dash}");

    // Diagnostics: the requests above were recorded (off the request path)
    // and the recall pipeline is summarized.
    let mut diag = Value::Null;
    for _ in 0..50 {
        diag = s.get_with("/v1/admin/control/diagnostics/tenant/acme?window_minutes=60", ADMIN).body;
        // Rows are flushed in batches every half second.
        let writes = diag["diagnostics"]["request_telemetry"]["endpoints"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["endpoint"] == "write"))
            .and_then(|w| w["total"].as_i64())
            .unwrap_or(0);
        if writes >= 8 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let write_stats = diag["diagnostics"]["request_telemetry"]["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|x| x["endpoint"] == "write").cloned())
        .unwrap_or_else(|| panic!("no write telemetry: {diag}"));
    assert!(
        write_stats["total"].as_i64().unwrap() >= 8 && write_stats["latency_p95_ms"].as_f64().unwrap() > 0.0,
        "{diag}"
    );
    assert!(diag["diagnostics"]["outbox"]["totals"]["pending"].is_i64(), "{diag}");
    let bad = s.get_with("/v1/admin/control/diagnostics/tenant/acme?window_minutes=2", ADMIN);
    assert_eq!(bad.status, 400, "{}", bad.text);

    // Teardown: content erased, keys revoked, tenant suspended.
    let t = admin(&s, "tenants/acme/teardown", json!({}));
    assert_eq!(
        (t["status"].as_str(), t["erased"]["scopes"][0]["scope"].as_str()),
        (Some("suspended"), Some("notes")),
        "{t}"
    );
    let erased_nodes = t["erased"]["nodes"].as_i64().unwrap();
    assert!(erased_nodes >= 10 && t["erased"]["edges"].as_i64().unwrap() >= 5, "{t}");
    assert_eq!(with(&key2, 40).status, 401, "a torn-down tenant's keys stop");
    let again = admin(&s, "tenants/acme/teardown", json!({}));
    assert_eq!(
        (again["erased"]["nodes"].as_i64(), again["torn_down_at"].as_str()),
        (Some(0), t["torn_down_at"].as_str())
    );

    // Verify (as the tenant, through a JWT): the chain holds and says what was erased.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let jwt = cairn_core::auth::sign_jwt(&json!({"tenant_id": "acme", "exp": now + 300}), SECRET.as_bytes());
    let bearer = format!("Bearer {jwt}");
    let auth: &[(&str, &str)] = &[("authorization", &bearer)];
    let v = s.post_with("/v1/memory/commits/verify", &json!({"scope": "notes"}), auth);
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["erased"]["nodes"], erased_nodes);
    assert_eq!(
        (v.body["erased"]["erased_by"].as_str(), v.body["erased"]["reason"].as_str()),
        (Some("admin_token"), Some("tenant teardown"))
    );
    assert!(v.body["erased"]["erased_at"].is_string());
    let after = s.post_with("/v1/memory/find", &json!({"scope": "notes"}), auth);
    assert_eq!(after.body["nodes"].as_array().unwrap().len(), 0, "{}", after.text);
    let commits = s.get_with("/v1/memory/commits?scope=notes&limit=1", auth);
    assert_eq!(commits.body["commits"][0]["kind"], "erase", "{}", commits.text);

    let d = s.get_with("/v1/admin/control/dashboard/tenant/acme", ADMIN);
    assert_eq!(
        (
            d.body["dashboard"]["data_plane"]["nodes"].as_i64(),
            d.body["dashboard"]["data_plane"]["stored_bytes"].as_i64()
        ),
        (Some(0), Some(0))
    );

    let audit = admin(&s, "audit-events/verify", json!({}));
    assert_eq!(audit["ok"], true, "{audit}");
    let actions: Vec<String> =
        s.get_with("/v1/admin/control/audit-events?tenant_id=acme&limit=100", ADMIN).body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect();
    for a in [
        "tenant.provision",
        "api_key.create",
        "tenant_quota.upsert",
        "api_key.rotate",
        "api_key.revoke",
        "tenant.upgrade",
        "tenant.teardown",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing from {actions:?}");
    }
}

/// Tenant ids are case-sensitive, and so is every per-tenant selection of
/// scope keys: tenants `acme` and `ACME` each keep their own memory (tearing
/// down one leaves the other's findable and its chain verifying; usage and
/// dashboards count only their own), and a default-tenant scope `Tenant:x`
/// (only the exact prefix `tenant:` is reserved) is the default tenant's.
#[test]
fn tenants_differing_only_in_case_stay_apart() {
    let s = Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() });
    let write_as = |tenant: Option<&str>, scope: &str, i: usize| {
        let mut w = write(i);
        w["scope"] = json!(scope);
        if let Some(t) = tenant {
            w["tenant_id"] = json!(t);
        }
        let r = s.post("/v1/memory/write", &w);
        assert_eq!(r.status, 200, "{tenant:?}/{scope}: {}", r.text);
    };
    for t in ["acme", "ACME"] {
        admin(&s, &format!("tenants/{t}/provision"), json!({"tier": "solo"}));
    }
    // Two nodes and an edge per write: acme 2 writes, ACME 3, the default
    // tenant 1 in `Tenant:x` and 1 in `notes`.
    for i in 0..2 {
        write_as(Some("acme"), "notes", i);
    }
    for i in 0..3 {
        write_as(Some("ACME"), "notes", 10 + i);
    }
    write_as(None, "Tenant:x", 20);
    write_as(None, "notes", 21);

    let dashboard = |t: &str| {
        let d = s.get_with(&format!("/v1/admin/control/dashboard/tenant/{t}"), ADMIN);
        assert_eq!(d.status, 200, "{}", d.text);
        d.body["dashboard"]["data_plane"].clone()
    };
    let (acme, upper, default) = (dashboard("acme"), dashboard("ACME"), dashboard("default"));
    assert_eq!(
        (acme["nodes"].as_i64(), acme["edges"].as_i64(), acme["commits_24h"].as_i64()),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(
        (upper["nodes"].as_i64(), upper["edges"].as_i64(), upper["commits_24h"].as_i64()),
        (Some(6), Some(3), Some(3))
    );
    assert_eq!(
        (default["nodes"].as_i64(), default["commits_24h"].as_i64()),
        (Some(4), Some(2)),
        "Tenant:x counts: {default}"
    );
    let bytes = |v: &Value| v["stored_bytes"].as_i64().unwrap();
    assert!(bytes(&acme) > 0 && bytes(&upper) > bytes(&acme), "{acme} {upper}");

    // The default tenant's listings hold `Tenant:x`.
    let v = s.post("/v1/memory/commits/verify", &json!({"all_scopes": true}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    let mut scopes: Vec<&str> =
        v.body["scopes"].as_array().unwrap().iter().map(|x| x["scope"].as_str().unwrap()).collect();
    scopes.sort();
    assert_eq!(scopes, ["Tenant:x", "notes"], "{}", v.text);
    let o = s.get_with("/v1/admin/control/outbox?tenant_id=default&limit=200", ADMIN);
    assert_eq!(o.status, 200, "{}", o.text);
    assert!(o.body["samples"].as_array().unwrap().iter().any(|j| j["scope"] == "Tenant:x"), "{}", o.text);
    let pending = |t: &str| {
        let o = s.get_with(&format!("/v1/admin/control/outbox?tenant_id={t}&limit=200"), ADMIN);
        let samples = o.body["samples"].as_array().unwrap().clone();
        assert!(samples.iter().all(|j| j["tenant_id"] == t), "{t}: {}", o.text);
        o.body["outbox"]["pending"].as_i64().unwrap()
    };
    assert!(pending("acme") > 0 && pending("ACME") > pending("acme"));
    // Verifying a tenant's scopes walks only its own.
    let v = s.post("/v1/memory/commits/verify", &json!({"tenant_id": "acme", "all_scopes": true}));
    assert_eq!((v.body["ok"].as_bool(), v.body["checked"].as_i64()), (Some(true), Some(2)), "{}", v.text);
    assert_eq!(v.body["scopes"].as_array().unwrap().len(), 1, "{}", v.text);

    // Tearing down acme erases acme's memory only.
    let t = admin(&s, "tenants/acme/teardown", json!({}));
    assert_eq!((t["erased"]["nodes"].as_i64(), t["erased"]["edges"].as_i64()), (Some(4), Some(2)), "{t}");
    assert_eq!(t["erased"]["scopes"].as_array().unwrap().len(), 1, "{t}");
    let find = |t: &str| {
        let f = s.post("/v1/memory/find", &json!({"tenant_id": t, "scope": "notes"}));
        assert_eq!(f.status, 200, "{}", f.text);
        f.body["nodes"].as_array().unwrap().len()
    };
    assert_eq!((find("acme"), find("ACME")), (0, 6));
    let v = s.post("/v1/memory/commits/verify", &json!({"tenant_id": "ACME", "scope": "notes"}));
    assert_eq!((v.body["ok"].as_bool(), v.body["checked"].as_i64()), (Some(true), Some(3)), "{}", v.text);
    assert!(v.body["erased"].is_null(), "nothing of ACME was erased: {}", v.text);
    let after = dashboard("ACME");
    assert_eq!((after["nodes"].as_i64(), bytes(&after)), (upper["nodes"].as_i64(), bytes(&upper)), "{after}");
    let gone = dashboard("acme");
    assert_eq!((gone["nodes"].as_i64(), gone["stored_bytes"].as_i64()), (Some(0), Some(0)), "{gone}");
    assert_eq!(dashboard("default")["nodes"], 4);
    let status = s.get_with("/v1/admin/control/tenants/ACME/status", ADMIN);
    assert_eq!(status.body["status"], "active", "{}", status.text);
}
