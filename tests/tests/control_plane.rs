//! The control plane's admin API over HTTP (`/v1/admin/control/*`, admin
//! token): tenants, projects, API keys (create, list, revoke, rotate with a
//! grace window, stale), tenant quotas, the hash-chained audit log and its
//! verifier, and the tier profiles.

use cairn_e2e::{Options, Server};
use serde_json::{Value, json};

const TOKEN: &str = "control-test-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];

fn server() -> Server {
    Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() })
}

fn post(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(&format!("/v1/admin/control/{path}"), &body, ADMIN);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

fn get(s: &Server, path: &str) -> Value {
    let r = s.get_with(&format!("/v1/admin/control/{path}"), ADMIN);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

#[test]
fn admin_routes_need_the_admin_token() {
    let s = server();
    let r = s.post("/v1/admin/control/tenants", &json!({"tenant_id": "acme"}));
    assert_eq!((r.status, r.body["error"].as_str()), (401, Some("unauthorized_admin")), "{}", r.text);
    let r = s.get_with("/v1/admin/control/tenants", &[("x-admin-token", "wrong")]);
    assert_eq!(r.status, 401);
    let unset = Server::start();
    let r = unset.get_with("/v1/admin/control/tenants", ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (503, Some("admin_not_configured")), "{}", r.text);
    let r = s.get_with("/v1/admin/control/nothing-here", ADMIN);
    assert_eq!(r.status, 404, "{}", r.text);
}

#[test]
fn tenants_projects_and_quotas() {
    let s = server();
    let t = post(&s, "tenants", json!({"tenant_id": "acme", "display_name": "Acme", "metadata": {"plan": "x"}}));
    assert_eq!(t["tenant"]["status"], "active");
    assert_eq!(t["tenant"]["metadata"], json!({"plan": "x"}));
    let t = post(&s, "tenants", json!({"tenant_id": "acme", "status": "suspended"}));
    assert_eq!((t["tenant"]["status"].as_str(), t["tenant"]["display_name"].is_null()), (Some("suspended"), true));
    post(&s, "tenants", json!({"tenant_id": "beta"}));
    let list = get(&s, "tenants?status=suspended");
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(get(&s, "tenants?limit=1")["tenants"][0]["tenant_id"], "acme");

    let p = post(&s, "projects", json!({"project_id": "p1", "tenant_id": "acme"}));
    assert_eq!(p["project"]["status"], "active");
    let r = s.post_with("/v1/admin/control/projects", &json!({"project_id": "p2", "tenant_id": "ghost"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (404, Some("not_found")), "{}", r.text);
    let r = s.post_with("/v1/admin/control/tenants", &json!({"status": "active"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")), "{}", r.text);

    let quota = json!({"recall_rps": 5, "recall_burst": 10, "write_rps": 2.5, "write_burst": 5, "write_max_wait_ms": 100,
                       "debug_embed_rps": 1, "debug_embed_burst": 2, "recall_text_embed_rps": 3,
                       "recall_text_embed_burst": 6, "recall_text_embed_max_wait_ms": 200});
    let r = s.put_with("/v1/admin/control/tenant-quotas/acme", &quota, ADMIN);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["quota"]["write_rps"], 2.5);
    assert_eq!(get(&s, "tenant-quotas/acme")["quota"]["recall_burst"], 10);
    let mut bad = quota.clone();
    bad["recall_rps"] = json!(0);
    let r = s.put_with("/v1/admin/control/tenant-quotas/acme", &bad, ADMIN);
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s.put_with("/v1/admin/control/tenant-quotas/ghost", &quota, ADMIN);
    assert_eq!(r.status, 404, "{}", r.text);
    let r = s.delete_with("/v1/admin/control/tenant-quotas/acme", ADMIN);
    assert_eq!((r.status, r.body["deleted"].as_bool()), (200, Some(true)), "{}", r.text);
    let r = s.delete_with("/v1/admin/control/tenant-quotas/acme", ADMIN);
    assert_eq!(r.body["deleted"], false);
    let r = s.get_with("/v1/admin/control/tenant-quotas/acme", ADMIN);
    assert_eq!(r.status, 404);

    let actions: Vec<String> = get(&s, "audit-events?tenant_id=acme")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        ["tenant_quota.delete", "tenant_quota.upsert", "project.upsert", "tenant.upsert", "tenant.upsert"],
        "newest first, one per mutation (the second delete deleted nothing)"
    );
}

#[test]
fn api_keys_lifecycle_with_rotation_grace() {
    let s = server();
    post(&s, "tenants", json!({"tenant_id": "acme"}));
    post(&s, "projects", json!({"project_id": "p1", "tenant_id": "acme"}));
    let k = post(&s, "api-keys", json!({"tenant_id": "acme", "project_id": "p1", "label": "ci", "agent_id": "bot"}));
    let key = k["key"]["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ak_live_") && key.len() == 40, "{key}");
    assert_eq!(k["key"]["key_prefix"], &key[..14]);
    let id = k["key"]["id"].as_str().unwrap().to_string();
    // Seats = active keys; solo allows one.
    let r = s.post_with("/v1/admin/control/api-keys", &json!({"tenant_id": "acme"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (409, Some("seat_limit_reached")), "{}", r.text);
    assert_eq!(r.body["details"]["seats"], 1);

    let list = get(&s, "api-keys?tenant_id=acme");
    let listed = &list["keys"][0];
    assert!(listed.get("api_key").is_none() && listed.get("key_hash").is_none(), "{listed}");
    assert_eq!(listed["agent_id"], "bot");

    // Rotation with a grace window: the old key is revoked at a future instant.
    let r = post(&s, &format!("api-keys/{id}/rotate"), json!({"grace_seconds": 3600, "metadata": {"why": "test"}}));
    let rotated = &r["key"]["rotated"];
    assert_eq!(rotated["label"], "ci");
    assert_eq!(rotated["metadata"]["rotated_from_key_id"], id.as_str());
    assert_eq!(rotated["metadata"]["why"], "test");
    assert_eq!(r["key"]["revoked"]["status"], "revoked");
    assert!(r["key"]["revoked"]["revoked_at"].as_str().unwrap() > rotated["created_at"].as_str().unwrap());
    assert_ne!(r["key"]["api_key"].as_str().unwrap(), key);
    // Only an active key rotates.
    let again = s.post_with(&format!("/v1/admin/control/api-keys/{id}/rotate"), &json!({}), ADMIN);
    assert_eq!(again.status, 404, "{}", again.text);

    let new_id = rotated["id"].as_str().unwrap().to_string();
    let rv = post(&s, &format!("api-keys/{new_id}/revoke"), json!({}));
    assert_eq!(rv["key"]["status"], "revoked");
    let missing =
        s.post_with("/v1/admin/control/api-keys/00000000-0000-4000-8000-000000000000/revoke", &json!({}), ADMIN);
    assert_eq!(missing.status, 404);
    assert_eq!(get(&s, "api-keys?status=active")["keys"].as_array().unwrap().len(), 0);

    let stale = get(&s, "api-keys/stale?max_age_days=30");
    assert_eq!(stale["ok"], true);
    assert_eq!(stale["stale"]["count"], 0);
    let r = s.post_with("/v1/admin/control/api-keys", &json!({"tenant_id": "ghost"}), ADMIN);
    assert_eq!(r.status, 404, "{}", r.text);
}

#[test]
fn the_audit_log_is_a_verifiable_chain() {
    let s = server();
    for t in ["a", "b", "c"] {
        post(&s, "tenants", json!({"tenant_id": t}));
    }
    let v = post(&s, "audit-events/verify", json!({}));
    assert_eq!((v["ok"].as_bool(), v["checked"].as_i64()), (Some(true), Some(3)), "{v}");
    let events = get(&s, "audit-events?action=tenant.upsert");
    let middle = events["events"][1]["event_id"].as_str().unwrap().to_string();
    assert_eq!(events["events"][1]["actor"], "admin_token");
    s.tamper(&format!(
        "UPDATE control_audit_events SET details = '{{\"status\":\"suspended\"}}' WHERE event_id = '{middle}'"
    ));
    let v = post(&s, "audit-events/verify", json!({}));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken"]["event_id"], middle.as_str(), "{v}");
}

#[test]
fn tiers_are_listed_from_the_profiles_file() {
    let s = server();
    let t = get(&s, "tiers");
    let names: Vec<&str> = t["tiers"].as_array().unwrap().iter().map(|r| r["tier"].as_str().unwrap()).collect();
    for want in ["solo", "starter", "growth", "enterprise", "bespoke"] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert_eq!(t["default_tier"], "solo");
    let solo = t["tiers"].as_array().unwrap().iter().find(|r| r["tier"] == "solo").unwrap();
    assert_eq!(solo["resource_caps"]["embedding_dims"], 384);
    assert!(solo.get("driver_flags").is_some());
}

fn quota_opts() -> Options {
    Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--var".into(), "tenant_quota_enabled=true".into()],
        ..Default::default()
    }
}

fn tenant_write(i: usize) -> Value {
    json!({"tenant_id": "acme", "scope": "q", "input_text": format!("quota write {i}"),
           "nodes": [{"client_id": format!("q{i}"), "type": "event", "text_summary": "x"}]})
}

/// Two host processes on one data dir draw from the same buckets: together
/// they cannot exceed the tenant's quota.
#[test]
fn quotas_are_shared_by_every_host_process() {
    let a = Server::start_with(quota_opts());
    let b = Server::start_on(&a.data_dir, &quota_opts());
    post(&a, "tenants", json!({"tenant_id": "acme"}));
    // Three writes, refilled once every ~3 hours, no waiting.
    let quota = json!({"recall_rps": 100, "recall_burst": 100, "write_rps": 0.0001, "write_burst": 3,
                       "write_max_wait_ms": 0, "debug_embed_rps": 1, "debug_embed_burst": 1,
                       "recall_text_embed_rps": 1, "recall_text_embed_burst": 1, "recall_text_embed_max_wait_ms": 0});
    let r = a.put_with("/v1/admin/control/tenant-quotas/acme", &quota, ADMIN);
    assert_eq!(r.status, 200, "{}", r.text);
    for (i, s) in [&a, &b, &a].iter().enumerate() {
        let w = s.post("/v1/memory/write", &tenant_write(i));
        assert_eq!(w.status, 200, "write {i}: {}", w.text);
    }
    for (i, s) in [&b, &a].iter().enumerate() {
        let r = s.post("/v1/memory/write", &tenant_write(10 + i));
        assert_eq!((r.status, r.body["error"].as_str()), (429, Some("tenant_rate_limited_write")), "{}", r.text);
        assert_eq!(r.body["details"]["tenant_id"], "acme");
        assert!(r.body["details"]["retry_after_ms"].as_i64().unwrap() > 1000, "{}", r.text);
        assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().unwrap() > 1));
    }
    // Other classes and other tenants are unaffected.
    let f = b.post("/v1/memory/find", &json!({"tenant_id": "acme", "scope": "q"}));
    assert_eq!(f.status, 200, "{}", f.text);
    let other = a.post(
        "/v1/memory/write",
        &json!({"tenant_id": "beta", "scope": "q", "input_text": "x",
                                                  "nodes": [{"type": "event", "text_summary": "x"}]}),
    );
    assert_eq!(other.status, 200, "{}", other.text);
    // Deleting the profile lifts the limit back to the tier's quotas.
    assert_eq!(a.delete_with("/v1/admin/control/tenant-quotas/acme", ADMIN).status, 200);
    let w = b.post("/v1/memory/write", &tenant_write(20));
    assert_eq!(w.status, 200, "{}", w.text);
}

/// A quota profile set through the admin API applies with memory auth off
/// (`tenant_quota_enabled=auto`, the default): to the default tenant and to
/// a tenant named in the body; tenants without a profile stay unthrottled.
/// `tenant_quota_enabled=false` turns it off.
#[test]
fn an_explicit_tenant_quota_applies_without_auth() {
    let two_writes = json!({"recall_rps": 100, "recall_burst": 100, "write_rps": 0.0001, "write_burst": 2,
                            "write_max_wait_ms": 0, "debug_embed_rps": 1, "debug_embed_burst": 1,
                            "recall_text_embed_rps": 1, "recall_text_embed_burst": 1, "recall_text_embed_max_wait_ms": 0});
    let write = |tenant: Option<&str>, i: usize| {
        let mut w = json!({"input_text": format!("w {i}"), "nodes": [{"type": "event", "text_summary": "x"}]});
        if let Some(t) = tenant {
            w["tenant_id"] = json!(t);
        }
        w
    };
    let s = server();
    for t in ["default", "acme"] {
        post(&s, "tenants", json!({"tenant_id": t}));
        let r = s.put_with(&format!("/v1/admin/control/tenant-quotas/{t}"), &two_writes, ADMIN);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for tenant in [None, Some("acme")] {
        for i in 0..2 {
            let w = s.post("/v1/memory/write", &write(tenant, i));
            assert_eq!(w.status, 200, "{tenant:?} write {i}: {}", w.text);
        }
        let r = s.post("/v1/memory/write", &write(tenant, 2));
        assert_eq!((r.status, r.body["error"].as_str()), (429, Some("tenant_rate_limited_write")), "{}", r.text);
        assert_eq!(r.body["details"]["tenant_id"], tenant.unwrap_or("default"));
        assert!(r.body["details"]["retry_after_ms"].as_i64().unwrap() > 1000, "{}", r.text);
        assert_eq!(r.body["details"]["waited_ms"], 0);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().unwrap() > 1));
    }
    // The tenant's recall bucket and tenants without a profile: unaffected.
    assert_eq!(s.post("/v1/memory/find", &json!({})).status, 200);
    for i in 0..5 {
        let w = s.post("/v1/memory/write", &write(Some("beta"), i));
        assert_eq!(w.status, 200, "{}", w.text);
    }

    let off = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--var".into(), "tenant_quota_enabled=false".into()],
        ..Default::default()
    });
    post(&off, "tenants", json!({"tenant_id": "default"}));
    assert_eq!(off.put_with("/v1/admin/control/tenant-quotas/default", &two_writes, ADMIN).status, 200);
    for i in 0..5 {
        let w = off.post("/v1/memory/write", &write(None, i));
        assert_eq!(w.status, 200, "tenant_quota_enabled=false: write {i}: {}", w.text);
    }
}

/// A second tiers file (the tier-model seed's solo / team / studio /
/// bespoke) works with no code change, unknown fields included.
fn tiers_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tiers-hearth.yaml");
    std::fs::write(
        &path,
        "version: 1\ndefault_tier: solo\ntiers:\n\
         \x20 solo:\n    resource_caps: {cairnet_storage_mb: 100, retention_days: 30, seats: 1, vector_index: flat, embedding_dims: 384}\n\
         \x20   driver_flags: {}\n    x_future: {nested: [1, {deep: true}]}\n\
         \x20 team:\n    resource_caps: {cairnet_storage_mb: 5000, retention_days: 90, seats: 5, vector_index: flat, embedding_dims: 384}\n\
         \x20   driver_flags: {local_docker: {replicas: 2}}\n\
         \x20 studio:\n    resource_caps: {seats: 100000, vector_index: flat, embedding_dims: 384}\n    driver_flags: {}\n\
         \x20 bespoke:\n    resource_caps: {seats: 3, vector_index: flat, embedding_dims: 384}\n    driver_flags: {deal: acme-2026}\n",
    )
    .unwrap();
    path
}

#[test]
fn provisioning_verbs_follow_the_tiers_file() {
    let dir = cairn_e2e::TempDir::new("tiers");
    let tiers = tiers_file(dir.path());
    let s = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--tiers".into(), tiers.to_str().unwrap().into()],
        ..Default::default()
    });
    let t = get(&s, "tiers");
    let names: Vec<&str> = t["tiers"].as_array().unwrap().iter().map(|r| r["tier"].as_str().unwrap()).collect();
    assert_eq!(names, ["solo", "team", "studio", "bespoke"]);
    assert_eq!(t["tiers"][0]["x_future"], json!({"nested": [1, {"deep": true}]}), "unknown fields ride through");
    assert_eq!(t["tiers"][3]["driver_flags"], json!({"deal": "acme-2026"}));

    let p = post(&s, "tenants/acme/provision", json!({"tier": "team"}));
    assert_eq!((p["tier"].as_str(), p["provisioned"].as_bool()), (Some("team"), Some(true)), "{p}");
    assert_eq!(p["profile"]["driver_flags"]["local_docker"]["replicas"], 2);
    let again = post(&s, "tenants/acme/provision", json!({"tier": "team"}));
    assert_eq!(again["provisioned_at"], p["provisioned_at"], "provisioning twice gives the same result");
    let r = s.post_with("/v1/admin/control/tenants/acme/provision", &json!({"tier": "studio"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (409, Some("tier_mismatch")), "{}", r.text);
    let r = s.post_with("/v1/admin/control/tenants/acme/provision", &json!({"tier": "gold"}), ADMIN);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("unknown_tier")), "{}", r.text);

    // team has 5 seats: five keys, the sixth refused.
    for _ in 0..5 {
        post(&s, "api-keys", json!({"tenant_id": "acme"}));
    }
    let r = s.post_with("/v1/admin/control/api-keys", &json!({"tenant_id": "acme"}), ADMIN);
    assert_eq!((r.status, r.body["details"]["tier"].as_str()), (409, Some("team")), "{}", r.text);

    let u = post(&s, "tenants/acme/upgrade", json!({"tier": "studio"}));
    assert_eq!(u["tier"], "studio");
    post(&s, "api-keys", json!({"tenant_id": "acme"}));
    let u2 = post(&s, "tenants/acme/upgrade", json!({"tier": "studio"}));
    assert_eq!(u2["tier"], "studio");
    let st = get(&s, "tenants/acme/status");
    assert_eq!((st["tier"].as_str(), st["active_api_keys"].as_i64()), (Some("studio"), Some(6)));
    let actions: Vec<String> = get(&s, "audit-events?tenant_id=acme&limit=50")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("tenant."))
        .collect();
    assert_eq!(actions, ["tenant.upgrade", "tenant.provision"], "repeats are not mutations");
    assert_eq!(s.get_with("/v1/admin/control/tenants/ghost/status", ADMIN).status, 404);
}

#[test]
fn billing_disabled_puts_every_tenant_on_solo() {
    let s = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--var".into(), "billing=disabled".into()],
        ..Default::default()
    });
    let p = post(&s, "tenants/acme/provision", json!({"tier": "growth"}));
    assert_eq!((p["tier"].as_str(), p["billing"].as_str()), (Some("solo"), Some("disabled")), "{p}");
    let u = post(&s, "tenants/acme/upgrade", json!({"tier": "enterprise"}));
    assert_eq!(u["tier"], "solo");
    post(&s, "api-keys", json!({"tenant_id": "acme"}));
    let r = s.post_with("/v1/admin/control/api-keys", &json!({"tenant_id": "acme"}), ADMIN);
    assert_eq!(r.status, 409, "solo has one seat: {}", r.text);
}

/// A tenant that stores its tier's `storage_mb` cannot write more; reads go on.
#[test]
fn storage_cap_refuses_writes_not_reads() {
    let dir = cairn_e2e::TempDir::new("tiers-storage");
    // ~2 KB: a handful of small writes.
    let s = server_with_tiers(
        &dir,
        "default_tier: tiny\ntiers:\n  tiny:\n    resource_caps: {storage_mb: 0.002, seats: 1, vector_index: flat, embedding_dims: 384}\n",
        &["tenant_quota_enabled=true"],
    );
    let refused = (0..40)
        .map(|i| s.post("/v1/memory/write", &tenant_write(i)))
        .find(|r| r.status != 200)
        .expect("the storage cap is reached");
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (413, Some("tenant_storage_quota_exceeded")),
        "{}",
        refused.text
    );
    assert_eq!(refused.body["details"]["limit_bytes"], 2097);
    assert!(refused.body["details"]["used_bytes"].as_i64().unwrap() >= 2097);
    let f = s.post("/v1/memory/find", &json!({"tenant_id": "acme", "scope": "q"}));
    assert_eq!(f.status, 200, "reads are unaffected: {}", f.text);
    // Another tenant has its own allowance.
    let other = s.post(
        "/v1/memory/write",
        &json!({"tenant_id": "beta", "scope": "q", "input_text": "x",
                                                  "nodes": [{"type": "event", "text_summary": "x"}]}),
    );
    assert_eq!(other.status, 200, "{}", other.text);
}

/// A tier's `retention_days` erases older memory behind tombstones at the
/// next derivation pass; newer memory stays and the chain still verifies.
#[test]
fn retention_erases_expired_memory_behind_tombstones() {
    let dir = cairn_e2e::TempDir::new("tiers-retention");
    // 0.00002 days ≈ 1.7 s.
    let s = server_with_tiers(
        &dir,
        "default_tier: brief\ntiers:\n  brief:\n    resource_caps: {retention_days: 0.00002, seats: 1, vector_index: flat, embedding_dims: 384}\n",
        &["retention_interval_ms=0", "auto_topic_cluster_on_write=false"],
    );
    let write = |cid: &str| {
        let w = s.post(
            "/v1/memory/write",
            &json!({"scope": "r", "input_text": format!("write {cid}"), "memory_lane": "shared",
                    "nodes": [{"client_id": cid, "type": "event", "text_summary": cid},
                              {"client_id": format!("{cid}-e"), "type": "entity", "title": cid}],
                    "edges": [{"type": "related_to", "src": {"client_id": cid}, "dst": {"client_id": format!("{cid}-e")}}]}),
        );
        assert_eq!(w.status, 200, "{}", w.text);
    };
    write("old");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    write("new");
    let tick = s.post_with("/v1/admin/derive/tick", &json!({}), ADMIN);
    assert_eq!(tick.status, 200, "{}", tick.text);
    assert_eq!(tick.body["retention"], json!({"erased_nodes": 2, "erased_edges": 1}), "{}", tick.text);
    let f = s.post("/v1/memory/find", &json!({"scope": "r"}));
    let left: Vec<&str> =
        f.body["nodes"].as_array().unwrap().iter().map(|n| n["client_id"].as_str().unwrap()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|c| c.starts_with("new")), "{left:?}");
    let v = s.post("/v1/memory/commits/verify", &json!({"scope": "r"}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(
        (v.body["erased"]["nodes"].as_i64(), v.body["erased"]["erased_by"].as_str()),
        (Some(2), Some("retention"))
    );
}

/// A tier's runtime caps bound its tenants' requests: a tenant whose tier
/// allows 1 MB of memory per request is stopped with a clear error; other
/// tenants are unaffected.
#[test]
fn runtime_caps_follow_the_tenant_tier() {
    let dir = cairn_e2e::TempDir::new("tiers-runtime");
    let s = server_with_tiers(
        &dir,
        "default_tier: roomy\ntiers:\n\
         \x20 roomy:\n    resource_caps: {seats: 5, vector_index: flat, embedding_dims: 384}\n    runtime: {max_memory_mb: 256, request_timeout_ms: 10000}\n\
         \x20 cramped:\n    resource_caps: {seats: 5, vector_index: flat, embedding_dims: 384}\n    runtime: {max_memory_mb: 1, request_timeout_ms: 10000}\n",
        &[],
    );
    post(&s, "tenants/small/provision", json!({"tier": "cramped"}));
    let write = json!({"scope": "s", "input_text": "x", "nodes": [{"type": "event", "text_summary": "x"}]});
    let r = s.post_with("/v1/memory/write", &write, &[("x-tenant-id", "small")]);
    assert_eq!((r.status, r.body["error"].as_str()), (503, Some("request_memory_exceeded")), "{}", r.text);
    let ok = s.post_with("/v1/memory/write", &write, &[("x-tenant-id", "big")]);
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Admin routes run under the operator's limits.
    assert_eq!(s.get_with("/v1/admin/control/tenants/small/status", ADMIN).status, 200);
}

/// A server on a tiers file with `yaml`, plus `--var` settings.
fn server_with_tiers(dir: &cairn_e2e::TempDir, yaml: &str, vars: &[&str]) -> Server {
    let tiers = dir.path().join("tiers.yaml");
    std::fs::write(&tiers, yaml).unwrap();
    let mut extra_args = vec!["--tiers".to_string(), tiers.to_str().unwrap().to_string()];
    for v in vars {
        extra_args.push("--var".into());
        extra_args.push(v.to_string());
    }
    Server::start_with(Options { admin_token: Some(TOKEN.into()), extra_args, ..Default::default() })
}

/// The SLO view over HTTP: the default tier's objectives, measured from the
/// telemetry of real requests (written off the request path, so polled).
#[test]
fn the_slo_view_measures_a_tenants_requests() {
    let s = server();
    for i in 0..5 {
        assert_eq!(s.post("/v1/memory/write", &cairn_e2e::event_write(&format!("slo{i}"), "measured")).status, 200);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        let b = get(&s, "slo/tenant/default");
        if b["objectives"][0]["window"]["total"].as_i64() >= Some(5) {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "telemetry never reached the SLO view: {b}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(body["tier"], "solo");
    let names: Vec<&str> = body["objectives"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(names, ["availability", "recall_text_latency", "write_latency"]);
    let a = &body["objectives"][0];
    assert_eq!((a["window"]["bad"].as_i64(), a["status"].as_str()), (Some(0), Some("ok")), "{a}");
    assert_eq!(body["objectives"][2]["window"]["total"], 5, "write latency counts writes only");
    // The same requests in the hourly timeseries.
    let ts = get(&s, "dashboard/tenant/default/timeseries?endpoint=write");
    assert_eq!((ts["bucket"].as_str(), ts["budget"][0]["total"].as_i64()), (Some("hour"), Some(5)), "{ts}");
    assert_eq!(ts["series"][0]["endpoint"], "write");
    let r = s.get_with("/v1/admin/control/slo/tenant/default?window_hours=0", ADMIN);
    assert_eq!(r.status, 400, "{}", r.text);
}

/// `cairn job telemetry-retention` deletes rows past the tier's retention.
#[test]
fn telemetry_retention_deletes_old_rows() {
    let s = server();
    assert_eq!(s.post("/v1/memory/write", &cairn_e2e::event_write("tr", "kept")).status, 200);
    // The control schema exists once an admin route ran.
    get(&s, "tiers");
    s.tamper(
        "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, created_at) \
         VALUES ('default', 'write', 200, 1, '2020-01-01T00:00:00.000Z')",
    );
    let data = s.data_dir.to_str().unwrap();
    let (st, out, err) = cairn_e2e::cairn(&["job", "telemetry-retention", "--embedder", "lexical", "--data-dir", data]);
    assert!(st.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deleted"], 1, "{v}");
    assert_eq!(v["tenants"]["default"]["retention_hours"], 720);
}

/// Requests made with an API key show up per key prefix in key usage.
#[test]
fn key_usage_lists_requests_by_key_prefix() {
    let s = server();
    let key = "ck_usage_prefix_0123456789abcdef";
    for i in 0..3 {
        let r = s.post_with("/v1/memory/write", &cairn_e2e::event_write(&format!("k{i}"), "keyed"), &[("x-api-key", key)]);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        let b = get(&s, "dashboard/tenant/default/key-usage?min_requests=1");
        if b["keys"][0]["recent"]["total"].as_i64() >= Some(3) {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "telemetry never reached key usage: {b}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(body["keys"][0]["api_key_prefix"], &key[..14]);
    assert_eq!(body["keys"][0]["endpoint"], "write");
    // No baseline yet: three requests against none is a spike.
    assert_eq!(body["keys"][0]["anomaly"]["reasons"], json!(["request_spike"]));
    let r = s.get_with("/v1/admin/control/dashboard/tenant/default/key-usage?zscore_threshold=0.1", ADMIN);
    assert_eq!(r.status, 400, "{}", r.text);

    // The anomaly job finds the same spike across tenants; --strict fails on it.
    let data = s.data_dir.to_str().unwrap();
    let job = |extra: &[&str]| {
        let mut args = vec!["job", "key-usage-anomaly", "--json", "--embedder", "lexical", "--data-dir", data];
        args.extend_from_slice(extra);
        let (st, out, err) = cairn_e2e::cairn(&args);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        (st.code(), v)
    };
    let (code, v) = job(&["--min-requests", "3"]);
    assert_eq!((code, v["anomalies_count"].as_i64()), (Some(0), Some(1)), "{v}");
    assert_eq!((v["anomalies"][0]["tenant_id"].as_str(), v["anomalies"][0]["api_key_prefix"].as_str()), (Some("default"), Some(&key[..14])));
    let (code, v) = job(&["--min-requests", "3", "--strict"]);
    assert_eq!((code, v["exit_code"].as_i64()), (Some(2), Some(2)), "{v}");
    let (code, v) = job(&["--min-requests", "4", "--strict"]);
    assert_eq!((code, v["anomalies_count"].as_i64(), v["keys_checked"].as_i64()), (Some(0), Some(0), Some(1)), "{v}");
}

/// The evidence registry over HTTP, on either backend: an artifact is
/// registered, listed, fetched with its bytes and verified; a changed byte
/// fails the verifier, naming the artifact.
#[test]
fn evidence_is_registered_fetched_and_a_changed_byte_fails_verification() {
    let s = server();
    let body = json!({"kind": "weekly_report", "tenant_id": "acme", "content": "{\"checks\": []}",
                      "period_start": "2027-01-04T00:00:00Z", "period_end": "2027-01-11T00:00:00Z"});
    let e = post(&s, "evidence", body)["evidence"].clone();
    let id = e["evidence_id"].as_str().unwrap().to_string();
    assert_eq!(e["size_bytes"], 14, "{e}");
    assert_eq!(e["period_start"], "2027-01-04T00:00:00.000Z", "stored in Cairn's time form: {e}");
    let listed = get(&s, "evidence?kind=weekly_report");
    assert_eq!(listed["evidence"][0]["evidence_id"], id.as_str(), "{listed}");
    assert_eq!(get(&s, &format!("evidence/{id}"))["evidence"]["content"], "{\"checks\": []}");
    let missing = s.get_with("/v1/admin/control/evidence/nope", ADMIN);
    assert_eq!((missing.status, missing.body["error"].as_str()), (404, Some("not_found")), "{}", missing.text);
    let bad = s.post_with("/v1/admin/control/evidence", &json!({"kind": "x"}), ADMIN);
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(post(&s, "evidence/verify", json!({}))["ok"], true);
    s.tamper(&format!("UPDATE control_evidence SET content = '{{\"checks\": [1]}}' WHERE evidence_id = '{id}'"));
    let v = post(&s, "evidence/verify", json!({}));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["failures"], json!([{"evidence_id": id, "kind": "weekly_report", "reason": "content_changed"}]), "{v}");
}
