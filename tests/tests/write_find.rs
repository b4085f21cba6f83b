//! `/v1/memory/write` and `/v1/memory/find` over HTTP: ids, idempotency,
//! references, lanes, tenants, normalization and every kind of bad input.

use cairn_core::stable_id::stable_uuid;
use cairn_e2e::{Server, event_write};
use serde_json::{Value, json};

fn commits(s: &Server, q: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/memory/commits?{q}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["commits"].as_array().unwrap().clone()
}

fn find(s: &Server, body: Value) -> Value {
    let r = s.post("/v1/memory/find", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[test]
fn write_returns_deterministic_ids_and_a_commit() {
    let s = Server::start();
    let body = json!({
        "input_text": "Alice deployed v2",
        "memory_lane": "shared",
        "nodes": [
            {"client_id": "evt-1", "type": "event", "text_summary": "Alice deployed v2"},
            {"client_id": "alice", "type": "entity", "title": "Alice"}
        ],
        "edges": [{"type": "related_to", "src": {"client_id": "evt-1"}, "dst": {"client_id": "alice"}, "weight": 0.9}]
    });
    let r = s.post("/v1/memory/write", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["tenant_id"], "default");
    assert_eq!(b["scope"], "default");
    assert_eq!(b["nodes"][0]["id"], stable_uuid("default:node:evt-1"));
    assert_eq!(b["nodes"][1]["id"], stable_uuid("default:node:alice"));
    assert_eq!(b["nodes"][0]["client_id"], "evt-1");
    assert_eq!(b["edges"][0]["src_id"], stable_uuid("default:node:evt-1"));
    assert_eq!(b["edges"][0]["id"], stable_uuid("default:edge:Alice deployed v2:related_to:evt-1:alice"));
    assert_eq!(b["commit_hash"].as_str().unwrap().len(), 64);
    assert_eq!(b["embedding_backfill"]["pending_nodes"], 2);
    let c = commits(&s, "");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["commit_id"], b["commit_id"]);
    assert_eq!(c[0]["seq"], 1);
    assert_eq!(c[0]["parent_hash"], "");
}

#[test]
fn identical_retry_returns_the_same_commit_without_forking() {
    let s = Server::start();
    let first = s.post("/v1/memory/write", &event_write("e1", "one"));
    let second = s.post("/v1/memory/write", &event_write("e2", "two"));
    let retry = s.post("/v1/memory/write", &event_write("e1", "one"));
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body["commit_id"], first.body["commit_id"]);
    assert_eq!(retry.body["commit_hash"], first.body["commit_hash"]);
    assert_eq!(retry.body["nodes"], first.body["nodes"]);
    let c = commits(&s, "");
    assert_eq!(c.len(), 2, "a retry must not add a commit");
    assert_eq!(c[0]["commit_id"], second.body["commit_id"]);
    assert_eq!(c[0]["parent_id"], first.body["commit_id"]);
    assert_eq!(c[0]["parent_hash"], first.body["commit_hash"]);
    let v = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!(v.body["ok"], true, "{}", v.text);
    assert_eq!(v.body["checked"], 2);
}

#[test]
fn parent_commit_id_must_be_the_head() {
    let s = Server::start();
    let a = s.post("/v1/memory/write", &event_write("a", "a")).body;
    let mut w = event_write("b", "b");
    w["parent_commit_id"] = a["commit_id"].clone();
    let b = s.post("/v1/memory/write", &w);
    assert_eq!(b.status, 200, "{}", b.text);
    let mut stale = event_write("c", "c");
    stale["parent_commit_id"] = a["commit_id"].clone();
    let r = s.post("/v1/memory/write", &stale);
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"], "parent_commit_conflict");
    let mut missing = event_write("d", "d");
    missing["parent_commit_id"] = json!("123e4567-e89b-42d3-a456-426614174000");
    let r = s.post("/v1/memory/write", &missing);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "parent_commit_not_found");
}

#[test]
fn edges_reference_stored_nodes_by_id_only_within_scope_and_tenant() {
    let s = Server::start();
    let a = s.post("/v1/memory/write", &event_write("a", "a")).body;
    let a_id = a["nodes"][0]["id"].as_str().unwrap().to_string();
    // By id to a stored node: fine.
    let w = json!({"input_text": "link", "memory_lane": "shared",
        "nodes": [{"client_id": "b", "type": "event", "text_summary": "b"}],
        "edges": [{"type": "related_to", "src": {"client_id": "b"}, "dst": {"id": a_id}}]});
    let r = s.post("/v1/memory/write", &w);
    assert_eq!(r.status, 200, "{}", r.text);
    // By client_id to a node not in this request.
    let w = json!({"input_text": "x", "nodes": [{"client_id": "c", "type": "event"}],
        "edges": [{"type": "related_to", "src": {"client_id": "c"}, "dst": {"client_id": "a"}}]});
    let r = s.post("/v1/memory/write", &w);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "unknown_client_id_reference");
    // To a node that does not exist.
    let w = json!({"input_text": "x", "nodes": [{"client_id": "c", "type": "event"}],
        "edges": [{"type": "related_to", "src": {"client_id": "c"}, "dst": {"id": "123e4567-e89b-42d3-a456-426614174000"}}]});
    let r = s.post("/v1/memory/write", &w);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "edge_endpoint_not_found");
    // To a node of another scope of the same tenant.
    let mut w2 = w.clone();
    w2["scope"] = json!("other");
    w2["edges"][0]["dst"] = json!({"id": a_id});
    let r = s.post("/v1/memory/write", &w2);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "cross_scope_edge_not_allowed");
    // To a node of another tenant: indistinguishable from a missing one.
    let mut w3 = w2.clone();
    w3["tenant_id"] = json!("acme");
    w3["scope"] = json!("default");
    let r = s.post("/v1/memory/write", &w3);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "edge_endpoint_not_found");
    // Reusing another tenant's node id for a new node.
    let w4 = json!({"tenant_id": "acme", "input_text": "x", "nodes": [{"id": a_id, "type": "event"}]});
    let r = s.post("/v1/memory/write", &w4);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "node_id_conflict");
    // Self loops.
    let w5 = json!({"input_text": "x", "nodes": [{"client_id": "z", "type": "event"}],
        "edges": [{"type": "related_to", "src": {"client_id": "z"}, "dst": {"client_id": "z"}}]});
    assert_eq!(s.post("/v1/memory/write", &w5).status, 400);
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let s = Server::start();
    s.post("/v1/memory/write", &event_write("first", "first"));
    let bad = json!({"input_text": "half", "memory_lane": "shared",
        "nodes": [{"client_id": "would-be", "type": "event", "text_summary": "should not exist"}],
        "edges": [{"type": "part_of", "src": {"client_id": "would-be"}, "dst": {"id": "123e4567-e89b-42d3-a456-426614174000"}}]});
    assert_eq!(s.post("/v1/memory/write", &bad).status, 400);
    let f = find(&s, json!({"client_id": "would-be"}));
    assert_eq!(f["nodes"].as_array().unwrap().len(), 0);
    assert_eq!(commits(&s, "").len(), 1);
    assert_eq!(s.post("/v1/memory/commits/verify", &json!({})).body["ok"], true);
}

#[test]
fn bad_input_is_400_with_issues() {
    let s = Server::start();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"nodes": []}), "invalid_request", ""),
        (json!({"input_text": "x", "nodes": [{"type": "bogus"}]}), "invalid_request", "nodes.0.type"),
        (json!({"input_text": "x", "nodes": [{}]}), "invalid_request", "nodes.0.type"),
        (json!({"input_text": 42}), "invalid_request", "input_text"),
        (json!({"input_text": "x", "nodes": "nope"}), "invalid_request", "nodes"),
        (
            json!({"input_text": "x", "nodes": [{"type": "event", "salience": 1.5}]}),
            "invalid_request",
            "nodes.0.salience",
        ),
        (
            json!({"input_text": "x", "nodes": [{"type": "event", "tier": "lukewarm"}]}),
            "invalid_request",
            "nodes.0.tier",
        ),
        (json!({"input_text": "x", "memory_lane": "public"}), "invalid_request", "memory_lane"),
        (json!({"input_text": "x", "nodes": [{"type": "event", "id": "not-a-uuid"}]}), "invalid_request", "nodes.0.id"),
        (
            json!({"input_text": "x", "nodes": [{"type": "event", "client_id": "a", "id": "123e4567-e89b-42d3-a456-426614174000"}]}),
            "invalid_request",
            "nodes.0.id",
        ),
        (
            json!({"input_text": "x", "nodes": [{"type": "event", "embedding": [0.1, 0.2]}]}),
            "invalid_request",
            "nodes.0.embedding",
        ),
        (
            json!({"input_text": "x", "nodes": [{"type": "event", "scope": "elsewhere"}]}),
            "invalid_request",
            "nodes.0.scope",
        ),
        (
            json!({"input_text": "x", "edges": [{"type": "links", "src": {"client_id": "a"}, "dst": {}}]}),
            "invalid_request",
            "edges.0.type",
        ),
        (json!({"input_sha256": "xyz"}), "invalid_request", "input_sha256"),
        (json!({"input_text": "   "}), "invalid_request", "input_text"),
        (
            json!({"input_text": "x", "nodes": [{"type": "rule", "memory_lane": "private"}]}),
            "invalid_private_rule_owner",
            "",
        ),
        (json!({"input_text": "x", "tenant_id": "bad tenant"}), "invalid_tenant_id", ""),
        (json!({"input_text": "x", "scope": "tenant:x"}), "invalid_scope", ""),
        (json!({"input_text": "x", "scope": ""}), "invalid_scope", ""),
    ];
    for (body, code, path) in cases {
        let r = s.post("/v1/memory/write", &body);
        assert_eq!(r.status, 400, "{body} -> {}", r.text);
        assert_eq!(r.body["error"], code, "{body} -> {}", r.text);
        assert!(r.body["message"].is_string());
        if code == "invalid_request" {
            let issues = r.body["issues"].as_array().expect("issues[]");
            assert!(issues.iter().any(|i| i["path"] == path), "{body}: no issue at '{path}': {}", r.text);
        }
    }
    assert_eq!(commits(&s, "").len(), 0, "nothing may be written by bad requests");
}

#[test]
fn text_is_normalized_and_clamped_and_embeddings_are_stored() {
    let s = Server::start();
    let long = "word ".repeat(3000);
    let emb: Vec<f64> = (0..384).map(|i| (i as f64) / 384.0).collect();
    let r = s.post("/v1/memory/write", &json!({
        "input_text": "  many   spaces\n\there ",
        "memory_lane": "shared",
        "nodes": [
            {"client_id": "long", "type": "event", "text_summary": long, "title": "  A   title  "},
            {"client_id": "vec", "type": "event", "text_summary": "has a vector", "embedding": emb, "embedding_model": "test:model"}
        ]
    }));
    assert_eq!(r.status, 200, "{}", r.text);
    let f = find(&s, json!({"client_id": "long", "include_meta": true}));
    let n = &f["nodes"][0];
    assert_eq!(n["title"], "A title");
    let t = n["text_summary"].as_str().unwrap();
    assert_eq!(t.chars().count(), 8000);
    assert!(t.ends_with('…'));
    assert_eq!(n["embedding_status"], "pending");
    let f = find(&s, json!({"client_id": "vec", "include_meta": true}));
    assert_eq!(f["nodes"][0]["embedding_status"], "ready");
    assert_eq!(f["nodes"][0]["embedding_model"], "test:model");
    assert!(f["nodes"][0].get("embedding").is_none(), "embeddings are never returned");
    // The commit's input hash is of the normalized text.
    let c = commits(&s, "");
    assert_eq!(c[0]["input_sha256"], cairn_core::digest::sha256_hex("many spaces here"));
}

#[test]
fn tenants_and_scopes_are_isolated_and_echoed() {
    let s = Server::start();
    let mut w = event_write("same", "tenant a memory");
    w["tenant_id"] = json!("tenant-a");
    w["scope"] = json!("project-alpha");
    let r = s.post("/v1/memory/write", &w);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["tenant_id"], "tenant-a");
    assert_eq!(r.body["scope"], "project-alpha");
    assert_eq!(r.body["nodes"][0]["id"], stable_uuid("tenant:tenant-a::scope:project-alpha:node:same"));
    // The same client_id in the default tenant is a different node.
    let r2 = s.post("/v1/memory/write", &{
        let mut x = event_write("same", "default memory");
        x["scope"] = json!("project-alpha");
        x
    });
    assert_ne!(r2.body["nodes"][0]["id"], r.body["nodes"][0]["id"]);
    let fa = find(&s, json!({"tenant_id": "tenant-a", "scope": "project-alpha"}));
    assert_eq!(fa["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(fa["nodes"][0]["text_summary"], "tenant a memory");
    assert_eq!(fa["scope"], "project-alpha");
    let fb = find(&s, json!({"tenant_id": "tenant-b", "scope": "project-alpha"}));
    assert_eq!(fb["nodes"].as_array().unwrap().len(), 0);
    // X-Tenant-Id fills in a missing tenant.
    let r = s.post_with("/v1/memory/find", &json!({"scope": "project-alpha"}), &[("x-tenant-id", "tenant-a")]);
    assert_eq!(r.body["tenant_id"], "tenant-a");
    assert_eq!(r.body["nodes"].as_array().unwrap().len(), 1);
}

#[test]
fn private_lane_needs_a_matching_consumer() {
    let s = Server::start();
    let r = s.post("/v1/memory/write", &json!({
        "input_text": "private stuff",
        "nodes": [
            {"client_id": "mine", "type": "event", "text_summary": "agent secret", "owner_agent_id": "agent-1"},
            {"client_id": "team", "type": "event", "text_summary": "team secret", "owner_team_id": "team-x"},
            {"client_id": "prod", "type": "event", "text_summary": "producer owned", "producer_agent_id": "agent-2"},
            {"client_id": "pub", "type": "event", "text_summary": "public", "memory_lane": "shared"}
        ]
    }));
    assert_eq!(r.status, 200, "{}", r.text);
    let ids = |b: Value| -> Vec<String> {
        let mut v: Vec<String> =
            b["nodes"].as_array().unwrap().iter().map(|n| n["client_id"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(find(&s, json!({}))), ["pub"]);
    assert_eq!(ids(find(&s, json!({"consumer_agent_id": "agent-1"}))), ["mine", "pub"]);
    assert_eq!(ids(find(&s, json!({"consumer_agent_id": "agent-2"}))), ["prod", "pub"]);
    assert_eq!(ids(find(&s, json!({"consumer_team_id": "team-x"}))), ["pub", "team"]);
    assert_eq!(ids(find(&s, json!({"consumer_agent_id": "agent-9", "consumer_team_id": "team-y"}))), ["pub"]);
}

#[test]
fn find_filters_uris_and_pages() {
    let s = Server::start();
    for i in 0..5 {
        let r = s.post("/v1/memory/write", &json!({
            "input_text": format!("item {i}"), "memory_lane": "shared",
            "nodes": [{"client_id": format!("n{i}"), "type": if i % 2 == 0 { "event" } else { "entity" },
                       "title": format!("Title {i}"), "text_summary": format!("Summary number {i}"),
                       "slots": {"kind": if i < 3 { "low" } else { "high" }, "n": i, "tags": ["x", format!("t{i}")], "nested": {"ok": i % 2 == 0}}}]
        }));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let count = |b: Value| b["nodes"].as_array().unwrap().len();
    assert_eq!(count(find(&s, json!({"type": "entity"}))), 2);
    assert_eq!(count(find(&s, json!({"title_contains": "title 3"}))), 1);
    assert_eq!(count(find(&s, json!({"text_contains": "NUMBER"}))), 5);
    assert_eq!(count(find(&s, json!({"slots_contains": {"kind": "high"}}))), 2);
    assert_eq!(count(find(&s, json!({"slots_contains": {"n": 4}}))), 1);
    assert_eq!(count(find(&s, json!({"slots_contains": {"tags": ["t1", "x"]}}))), 1);
    assert_eq!(count(find(&s, json!({"slots_contains": {"nested": {"ok": true}}}))), 3);
    assert_eq!(count(find(&s, json!({"slots_contains": {"nested": {"ok": 1}}}))), 0, "true is not 1");
    // Newest first, paged.
    let p1 = find(&s, json!({"limit": 2}));
    assert_eq!(p1["page"], json!({"limit": 2, "offset": 0, "returned": 2, "has_more": true}));
    assert_eq!(p1["nodes"][0]["client_id"], "n4");
    let p3 = find(&s, json!({"limit": 2, "offset": 4}));
    assert_eq!(p3["page"]["has_more"], false);
    assert_eq!(p3["nodes"][0]["client_id"], "n0");
    // URIs round-trip.
    let uri = p1["nodes"][0]["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("aionis://default/default/event/"));
    let by_uri = find(&s, json!({"uri": uri}));
    assert_eq!(count(by_uri.clone()), 1);
    assert_eq!(by_uri["nodes"][0]["client_id"], "n4");
    // Slots and previews on request only.
    let plain = find(&s, json!({"client_id": "n0"}));
    assert!(plain["nodes"][0].get("slots").is_none());
    let prev = find(&s, json!({"client_id": "n0", "include_slots_preview": true, "slots_preview_keys": 2}));
    let keys: Vec<&String> = prev["nodes"][0]["slots_preview"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kind", "n"]);
    // Bad finds.
    for (body, code) in [
        (json!({"uri": "aionis://default/default/event/not-a-uuid"}), "invalid_aionis_uri"),
        (json!({"uri": "http://x"}), "invalid_aionis_uri"),
        (json!({"uri": uri.clone(), "type": "entity"}), "conflicting_filters"),
        (json!({"limit": 0}), "invalid_request"),
        (json!({"limit": 201}), "invalid_request"),
        (json!({"type": "bogus"}), "invalid_request"),
        (json!({"slots_contains": "x"}), "invalid_request"),
    ] {
        let r = s.post("/v1/memory/find", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.body["error"], code, "{body}: {}", r.text);
    }
}
