//! recall_text's hybrid stage 1 over HTTP with the real all-MiniLM-L6-v2
//! (`--embedder minilm`; `make test` fetches the weights first): the dense
//! side finds a paraphrase, the lexical side a rare name and a date, and
//! both keep to lanes and tenants and forget erased memory.

use cairn_e2e::{Options, Server};
use serde_json::{Value, json};

const TOKEN: &str = "hybrid-test-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];

fn server() -> Server {
    Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: vec!["--embedder".into(), "minilm".into()],
        ..Default::default()
    })
}

fn drain(s: &Server) {
    for _ in 0..200 {
        let r = s.post_with("/v1/admin/derive/tick", &json!({}), ADMIN);
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["claimed"] == 0 {
            return;
        }
    }
    panic!("outbox did not drain");
}

/// A conversation's turns, one write, in order; returns client_id -> node id.
fn write_turns(s: &Server, extra: Value, turns: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let nodes: Vec<Value> = turns
        .iter()
        .map(|(id, text)| json!({"client_id": id, "type": "event", "text_summary": text, "memory_lane": "shared"}))
        .collect();
    let mut body = json!({"input_text": "conversation", "nodes": nodes});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.post("/v1/memory/write", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["client_id"].as_str().unwrap().to_string(), n["id"].as_str().unwrap().to_string()))
        .collect()
}

fn seeds(s: &Server, body: Value) -> Vec<String> {
    let r = s.post("/v1/memory/recall_text", &body);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["seeds"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

const TURNS: &[(&str, &str)] = &[
    ("t1", "Caroline: I went to the Zorblax support meetup on 7 May 2023, it was powerful."),
    ("t2", "Melanie: That's great. Work has been hectic, the kids keep me busy."),
    ("t3", "Melanie: Last summer I made a painting of the sun coming up over the lake."),
    ("t4", "Caroline: I am looking into counselling courses at the community college."),
    ("t5", "Melanie: We adopted a puppy named Biscuit in March."),
    ("t6", "Caroline: My grandmother gave me a necklace from Sweden."),
];

#[test]
fn the_dense_side_finds_a_paraphrase_and_the_lexical_side_a_rare_name_or_date() {
    let s = server();
    let ids = write_turns(&s, json!({"scope": "conv"}), TURNS);
    drain(&s);
    // No word in common with t3 (besides stopwords): only meaning connects them.
    let q = "Who depicted a sunrise?";
    let lexical = seeds(&s, json!({"scope": "conv", "query_text": q, "stage1_mode": "lexical", "limit": 3}));
    assert!(!lexical.contains(&ids["t3"]), "words alone do not find it: {lexical:?}");
    assert_eq!(seeds(&s, json!({"scope": "conv", "query_text": q, "limit": 3}))[0], ids["t3"]);
    // A name no model knows, and a date.
    for q in ["Who went to the Zorblax meetup?", "What happened on 7 May 2023?"] {
        let hybrid = seeds(&s, json!({"scope": "conv", "query_text": q, "limit": 3}));
        assert_eq!(hybrid[0], ids["t1"], "{q}");
    }
    // The answer says how stage 1 ran.
    let r = s.post("/v1/memory/recall_text", &json!({"scope": "conv", "query_text": "Biscuit", "return_debug": true}));
    let stage1 = &r.body["debug"]["stage1"];
    assert_eq!(
        (stage1["stage1_mode"].as_str(), stage1["lexical"]["available"].as_bool()),
        (Some("hybrid"), Some(true))
    );
    assert_eq!(r.body["seeds"][0]["id"], ids["t5"].as_str());
    assert_eq!(r.body["seeds"][0]["score"], 1.0);
    let h = s.get("/health");
    assert_eq!(h.body["memory_store_feature_capabilities"]["lexical_index"], true, "{}", h.text);
}

#[test]
fn lanes_and_tenants_hold_in_both_channels() {
    let s = server();
    let ids = write_turns(&s, json!({"scope": "conv"}), TURNS);
    let secret = s.post(
        "/v1/memory/write",
        &json!({"scope": "conv", "input_text": "private", "nodes": [{"client_id": "p1", "type": "event",
                "memory_lane": "private", "owner_agent_id": "agent-x",
                "text_summary": "Zorblax meetup notes: the puppy Biscuit came along."}]}),
    );
    assert_eq!(secret.status, 200, "{}", secret.text);
    let secret = secret.body["nodes"][0]["id"].as_str().unwrap().to_string();
    let other =
        write_turns(&s, json!({"scope": "conv", "tenant_id": "beta"}), &[("b1", "Zorblax meetup with Biscuit")]);
    drain(&s);
    for mode in ["hybrid", "dense", "lexical"] {
        let body = json!({"scope": "conv", "query_text": "Zorblax meetup Biscuit", "stage1_mode": mode});
        let found = seeds(&s, body.clone());
        assert!(!found.contains(&secret), "{mode}: another agent's private memory");
        assert!(!found.contains(&other["b1"]), "{mode}: another tenant's memory");
        let mut mine = body.clone();
        mine["consumer_agent_id"] = json!("agent-x");
        assert!(seeds(&s, mine).contains(&secret), "{mode}: its owner finds it");
        let mut beta = body;
        beta["tenant_id"] = json!("beta");
        let found = seeds(&s, beta);
        assert_eq!(found, vec![other["b1"].clone()], "{mode}: tenant beta sees only its own");
    }
    assert!(ids.len() == TURNS.len());
}

#[test]
fn erased_memory_leaves_both_channels() {
    let s = server();
    let r = s.post_with("/v1/admin/control/tenants", &json!({"tenant_id": "gone"}), ADMIN);
    assert_eq!(r.status, 200, "{}", r.text);
    let ids = write_turns(&s, json!({"scope": "conv", "tenant_id": "gone"}), TURNS);
    drain(&s);
    let body = json!({"tenant_id": "gone", "scope": "conv", "query_text": "Zorblax meetup in May"});
    assert_eq!(seeds(&s, body.clone())[0], ids["t1"]);
    let t = s.post_with("/v1/admin/control/tenants/gone/teardown", &json!({}), ADMIN);
    assert_eq!(t.status, 200, "{}", t.text);
    for mode in ["hybrid", "dense", "lexical"] {
        let mut b = body.clone();
        b["stage1_mode"] = json!(mode);
        assert!(seeds(&s, b).is_empty(), "{mode}: erased memory is never recalled");
    }
}

/// `cairn` runs the kernel with `memory_recall_audit = host`: a recall
/// writes nothing itself; the host writes its audit row in a batch, and
/// the private header that carried it never reaches the client.
#[test]
fn recall_audit_rows_are_written_by_the_host_off_the_request_path() {
    let s = server();
    write_turns(&s, json!({"scope": "conv"}), TURNS);
    for _ in 0..3 {
        let r = s.post("/v1/memory/recall_text", &json!({"scope": "conv", "query_text": "Biscuit"}));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.header("x-cairn-recall-audit").is_none(), "the host strips its private header");
    }
    let mut recalls = json!(null);
    for _ in 0..100 {
        let d = s.get_with("/v1/admin/control/dashboard/tenant/default", ADMIN);
        recalls = d.body["dashboard"]["data_plane"]["recalls_24h"].clone();
        if recalls == 3 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the audit rows did not arrive: recalls_24h = {recalls}");
}
