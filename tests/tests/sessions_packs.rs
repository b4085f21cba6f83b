//! Sessions and events, and pack export/import, over HTTP.

use cairn_core::stable_id::stable_uuid;
use cairn_e2e::{Options, Server, event_write};
use serde_json::{Value, json};

const TOKEN: &str = "admin-secret";

fn admin() -> Server {
    Server::start_with(Options { admin_token: Some(TOKEN.into()), ..Default::default() })
}

#[test]
fn sessions_and_events_round_trip() {
    let s = Server::start();
    let r = s.post(
        "/v1/memory/sessions",
        &json!({"session_id": "sess/1", "title": "Debugging", "memory_lane": "shared", "metadata": {"user": "u1"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let session_node = r.body["session_node_id"].as_str().unwrap().to_string();
    assert_eq!(session_node, stable_uuid("default:node:session:sess%2F1"));
    assert_eq!(r.body["session_uri"], format!("aionis://default/default/topic/{session_node}"));
    assert!(r.body["commit_hash"].is_string());
    // Re-creating is idempotent.
    let again = s.post(
        "/v1/memory/sessions",
        &json!({"session_id": "sess/1", "title": "Debugging", "memory_lane": "shared", "metadata": {"user": "u1"}}),
    );
    assert_eq!(again.body["commit_id"], r.body["commit_id"]);

    for i in 0..3 {
        let e = s.post("/v1/memory/events", &json!({"session_id": "sess/1", "event_id": format!("ev{i}"), "text_summary": format!("step {i}"), "metadata": {"i": i}}));
        assert_eq!(e.status, 200, "{}", e.text);
        assert_eq!(e.body["session_node_id"], session_node);
        assert_eq!(e.body["event_id"], format!("ev{i}"));
        assert_eq!(e.body["edges"][0]["type"], "part_of");
    }
    let generated = s.post("/v1/memory/events", &json!({"session_id": "sess/1", "title": "no id"}));
    assert_eq!(generated.body["event_id"].as_str().unwrap().len(), 36);

    let l = s.get("/v1/memory/sessions/sess%2F1/events?limit=2&include_meta=true&include_slots=true");
    assert_eq!(l.status, 200, "{}", l.text);
    assert_eq!(l.body["session"]["session_id"], "sess/1");
    assert_eq!(l.body["session"]["title"], "Debugging");
    let events = l.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(l.body["page"]["has_more"], true);
    assert_eq!(events[0]["edge_weight"], 1.0);
    assert!(events[0]["created_at"].is_string());
    assert_eq!(events[1]["slots"]["system_kind"], "session_event");
    let all = s.get("/v1/memory/sessions/sess%2F1/events?limit=10&include_meta=false");
    assert_eq!(all.body["events"].as_array().unwrap().len(), 4);
    assert!(all.body["events"][0].get("created_at").is_none());
    // Unknown sessions and bad queries.
    let none = s.get("/v1/memory/sessions/nope/events");
    assert_eq!(none.body["session"], Value::Null);
    assert_eq!(none.body["events"], json!([]));
    assert_eq!(s.get("/v1/memory/sessions/sess%2F1/events?limit=0").status, 400);
    assert_eq!(s.get("/v1/memory/sessions/sess%2F1/events?include_meta=maybe").status, 400);
    assert_eq!(s.post("/v1/memory/events", &json!({"session_id": "sess/1"})).status, 400);
    assert_eq!(s.post("/v1/memory/sessions", &json!({})).status, 400);
}

#[test]
fn private_sessions_belong_to_their_owner() {
    let s = Server::start();
    let r = s.post("/v1/memory/sessions", &json!({"session_id": "p1", "owner_agent_id": "agent-a"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let ok = s.post(
        "/v1/memory/events",
        &json!({"session_id": "p1", "text_summary": "mine", "producer_agent_id": "agent-a"}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);
    let other = s.post(
        "/v1/memory/events",
        &json!({"session_id": "p1", "text_summary": "intruder", "producer_agent_id": "agent-b"}),
    );
    assert_eq!(other.status, 403);
    assert_eq!(other.body["error"], "session_owner_mismatch");
    // Invisible to others, visible to the owner.
    let hidden = s.get("/v1/memory/sessions/p1/events?consumer_agent_id=agent-b");
    assert_eq!(hidden.body["session"], Value::Null);
    let seen = s.get("/v1/memory/sessions/p1/events?consumer_agent_id=agent-a");
    assert_eq!(seen.body["events"].as_array().unwrap().len(), 1);
}

#[test]
fn pack_export_verify_import_and_find() {
    let s = admin();
    let auth = [("x-admin-token", TOKEN)];
    let w = s.post("/v1/memory/write", &json!({"input_text": "pair", "memory_lane": "shared",
        "nodes": [{"client_id": "a", "type": "event", "text_summary": "alpha"}, {"client_id": "b", "type": "entity", "title": "Beta"}],
        "edges": [{"type": "related_to", "src": {"client_id": "a"}, "dst": {"client_id": "b"}, "weight": 0.7}]}));
    assert_eq!(w.status, 200, "{}", w.text);
    let ex = s.post_with("/v1/memory/packs/export", &json!({"max_rows": 1000}), &auth);
    assert_eq!(ex.status, 200, "{}", ex.text);
    let manifest = &ex.body["manifest"];
    let pack = &ex.body["pack"];
    assert_eq!(manifest["version"], "aionis_pack_manifest_v1");
    assert_eq!(manifest["sha256"], cairn_core::digest::sha256_canonical(pack));
    assert_eq!(manifest["counts"], json!({"nodes": 2, "edges": 1, "commits": 1}));
    assert_eq!(pack["commits"][0]["commit_hash"], w.body["commit_hash"]);
    assert!(pack["commits"][0]["diff"]["nodes"].is_array());
    assert_eq!(pack["edges"][0]["src_client_id"], "a");

    // Verify-only into another tenant, then import, then find.
    let req = json!({"tenant_id": "copy", "verify_only": true, "manifest_sha256": manifest["sha256"], "pack": pack});
    let v = s.post_with("/v1/memory/packs/import", &req, &auth);
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["imported"], false);
    assert_eq!(v.body["planned"], json!({"nodes": 2, "edges": 1, "commits_in_pack": 1}));
    let none = s.post("/v1/memory/find", &json!({"tenant_id": "copy", "client_id": "a"}));
    assert_eq!(none.body["nodes"].as_array().unwrap().len(), 0, "verify_only writes nothing");
    let mut imp = req.clone();
    imp["verify_only"] = json!(false);
    let i = s.post_with("/v1/memory/packs/import", &imp, &auth);
    assert_eq!(i.status, 200, "{}", i.text);
    assert_eq!(i.body["imported"], true);
    assert_eq!(i.body["nodes"], 2);
    assert_eq!(i.body["edges"], 1);
    let found = s.post("/v1/memory/find", &json!({"tenant_id": "copy", "client_id": "a"}));
    assert_eq!(found.body["nodes"][0]["text_summary"], "alpha");
    let v = s.post("/v1/memory/commits/verify", &json!({"tenant_id": "copy"}));
    assert_eq!(v.body["ok"], true);

    // Refusals.
    let mut bad = req.clone();
    bad["manifest_sha256"] = json!("0".repeat(64));
    let r = s.post_with("/v1/memory/packs/import", &bad, &auth);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("pack_hash_mismatch")));
    assert_eq!(r.body["details"]["actual"], manifest["sha256"]);
    let mut other_scope = req.clone();
    other_scope["scope"] = json!("elsewhere");
    let r = s.post_with("/v1/memory/packs/import", &other_scope, &auth);
    assert_eq!(r.body["error"], "pack_scope_mismatch");
    let mut dangling = pack.clone();
    dangling["nodes"] = json!([pack["nodes"][0].clone()]);
    let r = s.post_with("/v1/memory/packs/import", &json!({"tenant_id": "copy2", "pack": dangling}), &auth);
    assert_eq!(r.body["error"], "pack_edge_reference_missing");
    let r = s.post_with("/v1/memory/packs/import", &json!({"pack": {"version": "nope"}}), &auth);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")));
    let r = s.post_with("/v1/memory/packs/export", &json!({"max_rows": 0}), &auth);
    assert_eq!(r.status, 400);
}

#[test]
fn export_respects_flags_and_truncation() {
    let s = admin();
    let auth = [("x-admin-token", TOKEN)];
    for i in 0..3 {
        s.post("/v1/memory/write", &event_write(&format!("n{i}"), "x"));
    }
    let r = s.post_with(
        "/v1/memory/packs/export",
        &json!({"max_rows": 2, "include_meta": false, "include_commits": false}),
        &auth,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["manifest"]["truncated"]["nodes"], true);
    assert_eq!(r.body["pack"]["commits"], json!([]));
    let n = &r.body["pack"]["nodes"][0];
    assert!(n.get("created_at").is_none() && n.get("slots").is_some());
}

/// The README promises anyone can verify an exported pack by hand; this
/// runs the documented stand-alone verifier (Python stdlib only) on one.
#[test]
fn exported_packs_verify_offline_with_the_documented_script() {
    let s = admin();
    let auth = [("x-admin-token", TOKEN)];
    s.post("/v1/memory/write", &json!({"input_text": "one", "memory_lane": "shared", "tenant_id": "t1", "scope": "s1",
        "nodes": [{"client_id": "a", "type": "event", "text_summary": "é 😀 \"quoted\"", "salience": 1.0, "slots": {"z": 1e-7, "a": [1.5, 2]}},
                  {"client_id": "b", "type": "entity", "title": "B", "embedding": vec![0.25; 384]}],
        "edges": [{"type": "related_to", "src": {"client_id": "a"}, "dst": {"client_id": "b"}, "weight": 0.1}]}));
    s.post("/v1/memory/write", &json!({"input_text": "two", "tenant_id": "t1", "scope": "s1", "memory_lane": "shared",
        "nodes": [{"client_id": "a", "type": "event"}, {"client_id": "c", "type": "event", "text_summary": "third"}],
        "edges": [{"type": "related_to", "src": {"client_id": "a"}, "dst": {"id": stable_uuid("tenant:t1::scope:s1:node:b")}, "weight": 0.9}]}));
    let ex = s.post_with("/v1/memory/packs/export", &json!({"tenant_id": "t1", "scope": "s1"}), &auth);
    assert_eq!(ex.status, 200);
    let dir = cairn_e2e::TempDir::new("pack");
    let run = |doc: &Value| {
        let path = dir.path().join("pack.json");
        std::fs::write(&path, doc.to_string()).unwrap();
        std::process::Command::new("python3")
            .arg(cairn_e2e::repo_root().join("tools/verify_pack.py"))
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run(&ex.body);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 2 commits, 3 nodes, 1 edges"));
    // One changed byte in a node, with the manifest recomputed to match, still fails.
    let mut forged = ex.body.clone();
    forged["pack"]["nodes"][0]["text_summary"] = json!("tampered");
    forged["manifest"]["sha256"] = json!(cairn_core::digest::sha256_canonical(&forged["pack"]));
    let out = run(&forged);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("content does not match"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Responses larger than the host buffers in one piece are streamed; the
/// client still receives every byte.
#[test]
fn large_responses_stream_completely() {
    let s = admin();
    let text = "x".repeat(700);
    for batch in 0..4 {
        let nodes: Vec<Value> = (0..500)
            .map(|i| json!({"client_id": format!("n{batch}-{i}"), "type": "event", "text_summary": format!("{i} {text}"), "memory_lane": "shared"}))
            .collect();
        let r = s.post("/v1/memory/write", &json!({"input_text": format!("batch {batch}"), "nodes": nodes}));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let ex = s.post_with(
        "/v1/memory/packs/export",
        &json!({"max_rows": 5000, "include_commits": false}),
        &[("x-admin-token", TOKEN)],
    );
    assert_eq!(ex.status, 200);
    assert!(ex.text.len() > 2 * 1024 * 1024, "response is {} bytes", ex.text.len());
    assert_eq!(ex.body["pack"]["nodes"].as_array().unwrap().len(), 2000);
    assert_eq!(ex.body["manifest"]["sha256"], cairn_core::digest::sha256_canonical(&ex.body["pack"]));
}
