//! The commit chain over HTTP: listing, paging, verification, and tamper
//! detection (one byte changed in a node, an edge or a commit row with SQL).

use cairn_core::canonical_json;
use cairn_core::digest::{sha256_canonical, sha256_hex};
use cairn_e2e::{Server, event_write};
use serde_json::{Value, json};

fn write_chain(s: &Server, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let r = s.post("/v1/memory/write", &json!({
                "input_text": format!("step {i}"),
                "memory_lane": "shared",
                "nodes": [
                    {"client_id": format!("e{i}"), "type": "event", "text_summary": format!("event {i}")},
                    {"client_id": format!("t{i}"), "type": "topic", "title": format!("topic {i}")}
                ],
                "edges": [{"type": "part_of", "src": {"client_id": format!("e{i}")}, "dst": {"client_id": format!("t{i}")}}]
            }));
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        })
        .collect()
}

fn verify(s: &Server) -> Value {
    let r = s.post("/v1/memory/commits/verify", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[test]
fn commits_list_newest_first_with_cursor_paging() {
    let s = Server::start();
    let written = write_chain(&s, 5);
    let r = s.get("/v1/memory/commits?limit=2");
    assert_eq!(r.status, 200);
    let page1 = r.body["commits"].as_array().unwrap().clone();
    assert_eq!(page1.len(), 2);
    assert_eq!(page1[0]["commit_id"], written[4]["commit_id"]);
    assert_eq!(page1[0]["seq"], 5);
    assert_eq!(page1[0]["counts"], json!({"nodes": 2, "edges": 1}));
    assert!(page1[0].get("diff").is_none());
    let cursor = r.body["page"]["next_cursor"].as_str().unwrap().to_string();
    let r2 = s.get(&format!("/v1/memory/commits?limit=2&cursor={cursor}&include_diff=true"));
    let page2 = r2.body["commits"].as_array().unwrap();
    assert_eq!(page2[0]["seq"], 3);
    assert!(page2[0]["diff"]["nodes"].is_array());
    let r3 = s.get(&format!("/v1/memory/commits?limit=2&cursor={}", r2.body["page"]["next_cursor"].as_str().unwrap()));
    assert_eq!(r3.body["commits"].as_array().unwrap().len(), 1);
    assert_eq!(r3.body["page"]["has_more"], false);
    assert_eq!(r3.body["page"]["next_cursor"], Value::Null);
    for bad in ["cursor=garbage", "limit=0", "limit=201", "limit=x"] {
        let r = s.get(&format!("/v1/memory/commits?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.body["error"], "invalid_request");
    }
}

#[test]
fn commit_hash_is_recomputable_from_the_documented_canonical_form() {
    let s = Server::start();
    write_chain(&s, 2);
    let r = s.get("/v1/memory/commits?include_diff=true");
    let commits = r.body["commits"].as_array().unwrap();
    for c in commits {
        let diff_sha = sha256_canonical(&c["diff"]);
        assert_eq!(c["diff_sha256"], diff_sha);
        let preimage = json!({
            "parentHash": c["parent_hash"], "inputSha": c["input_sha256"], "diffSha": diff_sha,
            "scope": "default", "actor": c["actor"], "model_version": c["model_version"], "prompt_version": c["prompt_version"],
        });
        assert_eq!(c["commit_hash"], sha256_hex(canonical_json::to_string(&preimage)), "commit {}", c["seq"]);
        assert_eq!(c["diff"]["created_at"], c["created_at"]);
    }
    assert_eq!(commits[0]["parent_hash"], commits[1]["commit_hash"]);
}

#[test]
fn verify_passes_on_an_untouched_chain_and_covers_all_scopes() {
    let s = Server::start();
    write_chain(&s, 3);
    let mut w = event_write("x", "other scope");
    w["scope"] = json!("second");
    s.post("/v1/memory/write", &w);
    let v = verify(&s);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checked"], 3);
    assert_eq!(v["head"]["seq"], 3);
    assert!(v.get("first_broken").is_none());
    let all = s.post("/v1/memory/commits/verify", &json!({"all_scopes": true}));
    assert_eq!(all.body["ok"], true, "{}", all.text);
    assert_eq!(all.body["checked"], 4);
    assert_eq!(all.body["scopes"].as_array().unwrap().len(), 2);
    let empty = s.post("/v1/memory/commits/verify", &json!({"scope": "never-written"}));
    assert_eq!(empty.body["ok"], true);
    assert_eq!(empty.body["checked"], 0);
    assert_eq!(empty.body["head"], Value::Null);
}

#[test]
fn tampering_with_a_node_is_detected_and_names_its_commit() {
    let s = Server::start();
    let w = write_chain(&s, 3);
    s.tamper("UPDATE memory_nodes SET text_summary = 'event X' WHERE client_id = 'e1'");
    let v = verify(&s);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["commit_id"], w[1]["commit_id"], "{v}");
    assert!(v["first_broken"]["reason"].as_str().unwrap().contains("content"), "{v}");
}

#[test]
fn tampering_with_an_edge_is_detected_and_names_its_commit() {
    let s = Server::start();
    let w = write_chain(&s, 3);
    s.tamper(&format!(
        "UPDATE memory_edges SET weight = 0.75 WHERE id = '{}'",
        w[2]["edges"][0]["id"].as_str().unwrap()
    ));
    let v = verify(&s);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["commit_id"], w[2]["commit_id"], "{v}");
}

#[test]
fn tampering_with_a_commit_row_is_detected_and_names_it() {
    let s = Server::start();
    let w = write_chain(&s, 3);
    s.tamper(&format!(
        "UPDATE memory_commits SET actor = 'mallory' WHERE id = '{}'",
        w[1]["commit_id"].as_str().unwrap()
    ));
    let v = verify(&s);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_broken"]["commit_id"], w[1]["commit_id"], "{v}");
    assert_eq!(v["checked"], 1, "the commits before the break were checked");
}

#[test]
fn a_changed_diff_or_timestamp_or_a_row_outside_any_commit_is_detected() {
    let s = Server::start();
    let w = write_chain(&s, 2);
    let c0 = w[0]["commit_id"].as_str().unwrap().to_string();
    s.tamper(&format!("UPDATE memory_commits SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = '{c0}'"));
    assert_eq!(verify(&s)["first_broken"]["commit_id"], c0);

    let s = Server::start();
    let w = write_chain(&s, 2);
    let c1 = w[1]["commit_id"].as_str().unwrap().to_string();
    s.tamper(&format!(
        "UPDATE memory_commits SET diff_json = replace(diff_json, '\"part_of\"', '\"related_to\"') WHERE id = '{c1}'"
    ));
    assert_eq!(verify(&s)["first_broken"]["commit_id"], c1);

    // A node inserted behind the kernel's back names a commit that never listed it.
    let s = Server::start();
    let w = write_chain(&s, 1);
    let c0 = w[0]["commit_id"].as_str().unwrap().to_string();
    s.tamper(&format!(
        "INSERT INTO memory_nodes (id, scope, type, embedding_status, memory_lane, created_at, updated_at, commit_id) \
         VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'event', 'failed', 'shared', 'x', 'x', '{c0}')"
    ));
    let v = verify(&s);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken"]["commit_id"], c0);
    assert!(v["first_broken"]["reason"].as_str().unwrap().contains("not attested"), "{v}");
}

#[test]
fn edge_upserts_re_attest_rows_and_keep_verify_green() {
    let s = Server::start();
    let a = s
        .post(
            "/v1/memory/write",
            &json!({"input_text": "a", "memory_lane": "shared",
        "nodes": [{"client_id": "x", "type": "event"}, {"client_id": "y", "type": "entity", "title": "Y"}],
        "edges": [{"type": "related_to", "src": {"client_id": "x"}, "dst": {"client_id": "y"}, "weight": 0.3}]}),
        )
        .body;
    let x = a["nodes"][0]["id"].as_str().unwrap();
    let y = a["nodes"][1]["id"].as_str().unwrap();
    let b = s.post(
        "/v1/memory/write",
        &json!({"input_text": "b",
        "edges": [{"type": "related_to", "src": {"id": x}, "dst": {"id": y}, "weight": 0.8}]}),
    );
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.body["edges"][0]["id"], a["edges"][0]["id"], "the stored edge is updated, not duplicated");
    assert_eq!(verify(&s)["ok"], true);
    // Tampering with it now names the commit that last wrote it.
    s.tamper(&format!(
        "UPDATE memory_edges SET confidence = 0.1 WHERE id = '{}'",
        a["edges"][0]["id"].as_str().unwrap()
    ));
    assert_eq!(verify(&s)["first_broken"]["commit_id"], b.body["commit_id"]);
}
