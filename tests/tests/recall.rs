//! `/v1/memory/recall` and `/v1/memory/recall_text` over HTTP: the
//! reference's contract fixtures (§10.1 #1, #3–#8), lanes, tenants, bad
//! input, recall_text after derivation and its upstream errors, and the
//! IVF index's recall@10 against exact search.

use cairn_e2e::{FakeEmbedder, Options, Server, event_write};
use serde_json::{Value, json};

const TOKEN: &str = "recall-test-token";
const DIMS: usize = 384;

fn opts(extra: &[&str]) -> Options {
    Options {
        admin_token: Some(TOKEN.into()),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A unit vector at `cos = c` to axis 0, leaning towards axis `towards`.
fn at_cosine(c: f32, towards: usize) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    v[0] = c;
    v[towards] = (1.0 - c * c).sqrt();
    v
}

fn axis0() -> Vec<f32> {
    at_cosine(1.0, 1)
}

fn recall(s: &Server, body: Value) -> Value {
    let r = s.post("/v1/memory/recall", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn drain(s: &Server) {
    for _ in 0..200 {
        let r = s.post_with("/v1/admin/derive/tick", &json!({}), &[("x-admin-token", TOKEN)]);
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["claimed"] == 0 {
            return;
        }
    }
    panic!("outbox did not drain");
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn max_edges_101_and_other_bad_input_are_400() {
    let s = Server::start();
    let q = axis0();
    let bad = [
        json!({"query_embedding": q, "max_edges": 101}),
        json!({"query_embedding": q, "limit": 0}),
        json!({"query_embedding": q, "limit": 201}),
        json!({"query_embedding": q, "neighborhood_hops": 3}),
        json!({"query_embedding": [0.1, 0.2, 0.3]}),
        json!({"query_embedding": "nope"}),
        json!({}),
        json!({"query_embedding": q, "recall_strategy": "wide"}),
        json!({"query_embedding": q, "context_compaction_profile": "extreme"}),
        json!({"query_embedding": q, "context_token_budget": 0}),
        json!({"query_embedding": q, "min_edge_weight": 1.5}),
        json!({"query_embedding": q, "slots_preview_keys": 51}),
        json!({"query_embedding": q, "tenant_id": "bad tenant!"}),
        json!({"query_embedding": q, "scope": "tenant:x"}),
    ];
    for b in bad {
        let r = s.post("/v1/memory/recall", &b);
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.body["error"].is_string() && r.body["message"].is_string(), "{}", r.text);
    }
    let r = s.post("/v1/memory/recall", &json!({"query_embedding": q, "max_edges": 101}));
    assert_eq!(r.body["error"], "invalid_request");
    let issue = &r.body["details"]["issues"][0];
    assert_eq!(issue["path"], "max_edges");
    assert!(issue["message"].as_str().unwrap().contains("less than or equal to 100"), "{issue}");
    // NaN / Infinity are not JSON numbers; a huge exponent overflows.
    for raw in [
        format!("{{\"query_embedding\": [NaN{}]}}", ", 0".repeat(DIMS - 1)),
        format!("{{\"query_embedding\": [Infinity{}]}}", ", 0".repeat(DIMS - 1)),
        format!("{{\"query_embedding\": [1e999{}]}}", ", 0".repeat(DIMS - 1)),
    ] {
        let r = s.post_raw("/v1/memory/recall", raw.as_bytes(), &[("content-type", "application/json")]);
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "   "}));
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s.post("/v1/memory/recall_text", &json!({"query_embedding": q}));
    assert_eq!(r.status, 400, "query_text is required: {}", r.text);
}

#[test]
fn empty_seed_recall_echoes_the_public_scope_and_tenant() {
    let s = Server::start();
    let b = recall(&s, json!({"scope": "project-alpha", "tenant_id": "tenant-a", "query_embedding": axis0()}));
    assert_eq!(b["scope"], "project-alpha");
    assert_eq!(b["tenant_id"], "tenant-a");
    assert_eq!(b["seeds"], json!([]));
    assert_eq!(b["ranked"], json!([]));
    assert_eq!(b["subgraph"], json!({"nodes": [], "edges": []}));
    assert_eq!(b["context"], json!({"text": "", "items": [], "citations": []}));
    assert!(b["trajectory"]["pruned_reasons"].as_array().unwrap().contains(&json!("seed_empty")));
    assert!(b.get("debug").is_none());
}

/// Reference fixture #4: a seed event (similarity 0.9, confidence 0.8) and
/// a draft topic it is part of.
fn write_fixture(s: &Server) -> (String, String) {
    let body = json!({
        "input_text": "fixture",
        "memory_lane": "shared",
        "trigger_topic_cluster": false,
        "nodes": [
            {"client_id": "seed-event", "type": "event", "text_summary": "deploy failed on migration step",
             "confidence": 0.8, "embedding": at_cosine(0.9, 1)},
            {"client_id": "draft-topic", "type": "topic", "title": "Deploys",
             "slots": {"topic_state": "draft", "member_count": 1, "b": 2, "a": 1}},
        ],
        "edges": [{"type": "part_of", "src": {"client_id": "seed-event"}, "dst": {"client_id": "draft-topic"},
                   "weight": 0.9, "confidence": 0.9}],
    });
    let r = s.post("/v1/memory/write", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    (r.body["nodes"][0]["id"].as_str().unwrap().into(), r.body["nodes"][1]["id"].as_str().unwrap().into())
}

#[test]
fn contract_fixture_nodes_edges_and_dto_whitelisting() {
    let s = Server::start();
    let (event, topic) = write_fixture(&s);
    // #4: default recall → 2 nodes (the draft topic swapped in), 1 edge, no embeddings.
    let b = recall(&s, json!({"query_embedding": axis0()}));
    assert_eq!(ids(&b["seeds"]), [event.as_str()]);
    let sim = b["seeds"][0]["similarity"].as_f64().unwrap();
    assert!((sim - 0.9).abs() < 1e-5, "{sim}");
    assert_eq!(b["seeds"][0]["confidence"], 0.8);
    let nodes = b["subgraph"]["nodes"].as_array().unwrap();
    assert_eq!(ids(&b["subgraph"]["nodes"]), [event.clone(), topic.clone()]);
    assert_eq!(b["subgraph"]["edges"].as_array().unwrap().len(), 1);
    let allowed = ["id", "type", "title", "text_summary", "topic_state", "member_count"];
    for n in nodes {
        for k in n.as_object().unwrap().keys() {
            assert!(allowed.contains(&k.as_str()), "node key {k} leaked: {n}");
        }
    }
    assert_eq!(nodes[1]["topic_state"], "draft");
    assert_eq!(nodes[1]["member_count"], 1);
    let e = &b["subgraph"]["edges"][0];
    assert_eq!(e.as_object().unwrap().keys().collect::<Vec<_>>(), ["from_id", "to_id", "type", "weight"]);
    assert_eq!(
        (e["from_id"].as_str(), e["to_id"].as_str(), e["type"].as_str()),
        (Some(&*event), Some(&*topic), Some("part_of"))
    );
    assert!(!b.to_string().contains("\"embedding\""), "embeddings never leave");
    // The draft topic is not scored, so ranked holds the event only.
    assert_eq!(ids(&b["ranked"]), [event.as_str()]);
    let act = b["ranked"][0]["activation"].as_f64().unwrap();
    assert!((act - (0.75 * 0.9 + 0.25 * 0.5)).abs() < 1e-5, "{act}");
    let score = b["ranked"][0]["score"].as_f64().unwrap();
    assert!((score - (0.7 * act + 0.15 * 0.8 + 0.15 * 0.5)).abs() < 1e-9, "{score}");
    // Context: the event line cites its node; the draft topic is skipped.
    let text = b["context"]["text"].as_str().unwrap();
    assert!(text.contains(&format!("deploy failed on migration step (node:{event})")), "{text}");
    assert!(!text.contains(&topic), "{text}");
    assert_eq!(b["context"]["citations"][0]["node_id"], event.as_str());
    assert_eq!(b["trajectory"]["layers"][0]["mode"], "exact");
    assert_eq!(b["trajectory"]["budgets"]["max_edges"], 80, "strict_edges is the default profile");

    // #5: return_debug alone adds no meta.
    let d = recall(&s, json!({"query_embedding": axis0(), "return_debug": true}));
    for n in d["subgraph"]["nodes"].as_array().unwrap() {
        assert!(n.get("created_at").is_none() && n.get("commit_id").is_none(), "{n}");
    }
    assert!(d["subgraph"]["edges"][0].get("commit_id").is_none());
    assert_eq!(d["debug"]["neighborhood_counts"], json!({"nodes": 2, "edges": 1}));
    assert_eq!(d["debug"]["stage1"]["final_seed_count"], 1);

    // #6: slots preview: the first 2 keys in sorted order.
    let p = recall(&s, json!({"query_embedding": axis0(), "include_slots_preview": true, "slots_preview_keys": 2}));
    let t = &p["subgraph"]["nodes"][1];
    assert_eq!(t["slots_preview"].as_object().unwrap().keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(t.get("slots").is_none());

    // #7: include_meta.
    let m = recall(&s, json!({"query_embedding": axis0(), "include_meta": true}));
    let n = &m["subgraph"]["nodes"][0];
    for k in ["created_at", "commit_id", "embedding_model", "memory_lane", "salience", "embedding_status"] {
        assert!(n.get(k).is_some(), "meta field {k} missing: {n}");
    }
    assert!(m["subgraph"]["edges"][0]["commit_id"].is_string(), "{}", m["subgraph"]["edges"]);

    // An explicit knob: min_edge_weight above the edge drops it and the topic.
    let k = recall(&s, json!({"query_embedding": axis0(), "min_edge_weight": 0.95}));
    assert_eq!(ids(&k["subgraph"]["nodes"]), [event]);
    assert_eq!(k["observability"]["adaptive"]["profile"]["reason"], "explicit_knobs");
}

#[test]
fn debug_embeddings_need_privilege_and_are_bounded() {
    let s = Server::start_with(opts(&[]));
    write_fixture(&s);
    let body = json!({"query_embedding": axis0(), "return_debug": true, "include_embeddings": true, "limit": 10});
    let r = s.post("/v1/memory/recall", &body);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("debug_embeddings_not_allowed")), "{}", r.text);
    let r = s.post("/v1/memory/recall", &json!({"query_embedding": axis0(), "include_embeddings": true}));
    assert_eq!(r.body["error"], "debug_embeddings_requires_return_debug");
    let r = s.post_with("/v1/memory/recall", &body, &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{}", r.text);
    let e = r.body["debug"]["embeddings"].as_array().unwrap();
    assert!(!e.is_empty() && e.len() <= 5);
    assert_eq!(e[0]["dims"], DIMS);
    assert_eq!(e[0]["preview"].as_array().unwrap().len(), 16);
    assert_eq!(e[0]["sha256"].as_str().unwrap().len(), 64);
    let mut too_many = body.clone();
    too_many["limit"] = json!(21);
    let r = s.post_with("/v1/memory/recall", &too_many, &[("x-admin-token", TOKEN)]);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("debug_embeddings_limit_too_high")));
}

#[test]
fn private_memories_need_a_matching_consumer() {
    let s = Server::start();
    let w = json!({
        "input_text": "lanes", "trigger_topic_cluster": false,
        "nodes": [
            {"client_id": "mine", "type": "event", "text_summary": "agent a's note", "memory_lane": "private",
             "owner_agent_id": "agent-a", "embedding": at_cosine(0.95, 1)},
            {"client_id": "team", "type": "event", "text_summary": "team note", "memory_lane": "private",
             "owner_team_id": "team-x", "embedding": at_cosine(0.9, 2)},
            {"client_id": "all", "type": "event", "text_summary": "shared note", "memory_lane": "shared",
             "embedding": at_cosine(0.8, 3)},
        ],
    });
    let r = s.post("/v1/memory/write", &w);
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = |extra: Value| {
        let mut b = json!({"query_embedding": axis0()});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let out = recall(&s, b);
        let mut texts: Vec<String> =
            out["seeds"].as_array().unwrap().iter().map(|n| n["text_summary"].as_str().unwrap().to_string()).collect();
        texts.sort();
        texts
    };
    assert_eq!(seen(json!({})), ["shared note"]);
    assert_eq!(seen(json!({"consumer_agent_id": "agent-a"})), ["agent a's note", "shared note"]);
    assert_eq!(seen(json!({"consumer_agent_id": "agent-b"})), ["shared note"]);
    assert_eq!(seen(json!({"consumer_team_id": "team-x"})), ["shared note", "team note"]);
    assert_eq!(seen(json!({"consumer_agent_id": "agent-a", "consumer_team_id": "team-x"})).len(), 3);
}

#[test]
fn another_tenants_memories_never_appear() {
    let s = Server::start();
    for tenant in ["t-one", "t-two"] {
        let w = json!({
            "tenant_id": tenant, "scope": "shared-name", "input_text": "same", "memory_lane": "shared",
            "trigger_topic_cluster": false,
            "nodes": [{"client_id": "same", "type": "event", "text_summary": format!("note of {tenant}"),
                       "embedding": at_cosine(0.9, 1)}],
        });
        assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    }
    for tenant in ["t-one", "t-two"] {
        let b = recall(&s, json!({"tenant_id": tenant, "scope": "shared-name", "query_embedding": axis0()}));
        assert_eq!(b["seeds"].as_array().unwrap().len(), 1);
        assert_eq!(b["seeds"][0]["text_summary"], format!("note of {tenant}"));
        assert_eq!(b["tenant_id"], tenant);
    }
    // The X-Tenant-Id header selects the tenant too.
    let r = s.post_with(
        "/v1/memory/recall",
        &json!({"scope": "shared-name", "query_embedding": axis0()}),
        &[("x-tenant-id", "t-two")],
    );
    assert_eq!(r.body["seeds"][0]["text_summary"], "note of t-two");
    // The default tenant's scope of the same name is empty.
    let b = recall(&s, json!({"scope": "shared-name", "query_embedding": axis0()}));
    assert_eq!(b["seeds"], json!([]));
}

#[test]
fn recall_text_finds_memories_once_derivation_embedded_them() {
    let s = Server::start_with(opts(&[]));
    let texts = [
        "the deploy pipeline failed at the database migration step",
        "customer asked about invoice due dates and late fees",
        "cache hit ratio dropped after the redis upgrade",
    ];
    for (i, t) in texts.iter().enumerate() {
        let mut w = event_write(&format!("e{i}"), t);
        w["trigger_topic_cluster"] = json!(false);
        assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    }
    // Before derivation no vector exists, but the words already find it
    // (hybrid stage 1's lexical channel); dense alone finds nothing.
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "deploy migration failed"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let seeds = r.body["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 1, "{}", r.text);
    assert_eq!((seeds[0]["text_summary"].as_str(), seeds[0]["similarity"].as_f64()), (Some(texts[0]), Some(0.0)));
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "deploy migration failed", "stage1_mode": "dense"}));
    assert_eq!(r.body["seeds"], json!([]));
    drain(&s);
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "  deploy   migration failed ", "limit": 2}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["seeds"][0]["text_summary"], texts[0]);
    assert_eq!(r.body["query"]["text"], "deploy migration failed");
    assert_eq!(r.body["query"]["embedding_provider"], "local");
    assert!(r.body["context"]["text"].as_str().unwrap().contains(texts[0]));
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "invoice late fee"}));
    assert_eq!(r.body["seeds"][0]["text_summary"], texts[1]);
}

#[test]
fn recall_text_maps_provider_failures_and_missing_provider() {
    let fake = FakeEmbedder::start();
    let s = Server::start_with(opts(&["--embedder", "openai", "--embedder-url", &fake.url]));
    fake.set(|f| f.down = true);
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "anything"}));
    assert_eq!((r.status, r.body["error"].as_str()), (503, Some("upstream_embedding_unavailable")), "{}", r.text);
    assert_eq!(r.body["details"]["provider_status"], 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    fake.set(|f| {
        f.down = false;
        f.rate_limited = true;
    });
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "anything"}));
    assert_eq!((r.status, r.body["error"].as_str()), (429, Some("upstream_embedding_rate_limited")), "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("2"));
    fake.set(|f| {
        f.rate_limited = false;
        f.fatal_poison = Some("anything".into());
    });
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "anything"}));
    assert_eq!((r.status, r.body["error"].as_str()), (502, Some("upstream_embedding_bad_response")), "{}", r.text);
    fake.set(|f| f.fatal_poison = None);
    let r = s.post("/v1/memory/recall_text", &json!({"query_text": "anything"}));
    assert_eq!(r.status, 200, "{}", r.text);

    let none = Server::start_with(opts(&["--var", "embedding_provider=none"]));
    let r = none.post("/v1/memory/recall_text", &json!({"query_text": "anything"}));
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("no_embedding_provider")), "{}", r.text);
}

/// Clustered synthetic vectors: `k` random unit centres, points scattered
/// around them (deterministic).
fn clustered(n: usize, k: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = cairn_vector::SplitMix64(seed);
    let mut gauss = move || {
        let (u, v) = (rng.next_f64().max(1e-12), rng.next_f64());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    let centres: Vec<Vec<f32>> = (0..k).map(|_| (0..DIMS).map(|_| gauss()).collect()).collect();
    (0..n)
        .map(|i| {
            let c = &centres[i % k];
            let v: Vec<f32> = c.iter().map(|x| x + 2.0 * gauss()).collect();
            cairn_vector::unit(&v).unwrap()
        })
        .collect()
}

#[test]
fn the_ivf_index_serves_recall_with_recall_at_10_above_0_95() {
    let s = Server::start_with(opts(&["--var", "vector_index_min_vectors=256"]));
    // 1,230 points around 40 centres: 1,200 are written, the last 30 (same
    // distribution, never written) are the queries.
    let mut points = clustered(1230, 40, 7);
    let queries = points.split_off(1200);
    let mut ids_by_point = Vec::new();
    for (b, chunk) in points.chunks(200).enumerate() {
        let nodes: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"client_id": format!("p{b}-{i}"), "type": "event", "text_summary": format!("point {b}-{i}"), "embedding": v}))
            .collect();
        let w = json!({"input_text": format!("batch {b}"), "memory_lane": "shared", "trigger_topic_cluster": false, "nodes": nodes});
        let r = s.post("/v1/memory/write", &w);
        assert_eq!(r.status, 200, "{}", r.text);
        ids_by_point.extend(ids(&r.body["nodes"]));
    }
    drain(&s);
    let mut hits = 0;
    for q in &queries {
        let mut exact: Vec<(usize, f32)> =
            points.iter().enumerate().map(|(i, p)| (i, p.iter().zip(q).map(|(a, b)| a * b).sum())).collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let truth: Vec<&String> = exact.iter().take(10).map(|(i, _)| &ids_by_point[*i]).collect();
        let b = recall(&s, json!({"query_embedding": q, "limit": 10, "return_debug": true}));
        assert_eq!(b["debug"]["stage1"]["mode"], "ann", "{}", b["debug"]);
        let got = ids(&b["seeds"]);
        assert_eq!(got.len(), 10);
        hits += truth.iter().filter(|t| got.contains(t)).count();
    }
    let recall_at_10 = hits as f64 / (10 * queries.len()) as f64;
    eprintln!("IVF recall@10 against exact search: {recall_at_10}");
    assert!(recall_at_10 >= 0.95, "recall@10 = {recall_at_10}");
    // A probe reads a fraction of the lists, not the whole scope.
    let d = recall(&s, json!({"query_embedding": queries[0], "limit": 10, "return_debug": true}));
    let st = &d["debug"]["stage1"];
    assert!(st["lists_probed"].as_u64().unwrap() < st["lists_total"].as_u64().unwrap(), "{st}");
    assert!(st["codes_scanned"].as_u64().unwrap() < points.len() as u64, "{st}");
}
