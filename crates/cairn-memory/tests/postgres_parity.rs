//! The kernel on PostgreSQL answers exactly as on SQLite: the same
//! operations, with the same clock and ids, run against a native SQLite and
//! a throwaway PostgreSQL 15 (`cairn-testpg`) must return the same JSON,
//! commit hashes included (docs/postgres.md).

use cairn_memory::settings::Settings;
use cairn_memory::{Op, run};
use cairn_spin::parity::BothBackends;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

const T0: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z

struct Pair {
    both: BothBackends,
    settings: Settings,
    now: i64,
    ids: u64,
}

impl Pair {
    fn new() -> Pair {
        Pair { both: BothBackends::start(), settings: Settings::from_lookup(|_| None), now: T0, ids: 0 }
    }

    /// Runs `op` on both backends, a second later than the last call, with
    /// the same next id; returns the (equal) answer, or the (equal) error's
    /// status and code.
    fn run(&mut self, op: Op, body: Value) -> Result<Value, (u16, String)> {
        self.now += 1_000;
        self.ids += 1;
        let (now, ids, text) = (self.now, self.ids, body.to_string());
        self.both
            .same(&format!("{op:?} {text}"), |db| {
                run(db, &self.settings, op, &text, now, || format!("00000000-0000-4000-8000-{ids:012}"))
            })
            .map_err(|e| (e.status, e.code))
    }

    fn ok(&mut self, op: Op, body: Value) -> Value {
        self.run(op, body.clone()).unwrap_or_else(|e| panic!("{op:?} {body}: {e:?}"))
    }

    fn read(&self, what: &str, f: impl Fn(&dyn Sql) -> Result<Value, cairn_core::ApiError>) -> Value {
        self.both.same(what, f).unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }
}

fn event(client_id: &str, text: &str) -> Value {
    json!({
        "input_text": format!("write {client_id}: {text}"),
        "memory_lane": "shared",
        "nodes": [{"client_id": client_id, "type": "event", "text_summary": text}],
    })
}

#[test]
fn writes_finds_and_the_commit_chain_match_sqlite() {
    let mut p = Pair::new();
    let first = p.ok(
        Op::Write,
        json!({
            "input_text": "Alice deployed v2",
            "memory_lane": "shared",
            "nodes": [
                {"client_id": "evt-1", "type": "event", "text_summary": "Alice deployed v2", "slots": {"env": "prod", "n": 2}},
                {"client_id": "alice", "type": "entity", "title": "Alice"}
            ],
            "edges": [{"type": "related_to", "src": {"client_id": "evt-1"}, "dst": {"client_id": "alice"}, "weight": 0.9}]
        }),
    );
    assert_eq!(first["commit_hash"].as_str().unwrap().len(), 64);
    for i in 0..5 {
        p.ok(Op::Write, event(&format!("e{i}"), &format!("event number {i}")));
    }
    // An identical retry returns the first commit; a changed edge updates it.
    let retry = p.ok(Op::Write, event("e0", "event number 0"));
    assert_eq!(p.ok(Op::Write, event("e0", "event number 0"))["commit_id"], retry["commit_id"]);
    p.ok(
        Op::Write,
        json!({
            "input_text": "stronger",
            "edges": [{"type": "related_to", "src": {"id": first["nodes"][0]["id"]}, "dst": {"id": first["nodes"][1]["id"]},
                       "weight": 0.95}]
        }),
    );
    // Another scope, private lane with an owner.
    p.ok(
        Op::Write,
        json!({"scope": "other", "input_text": "x", "memory_lane": "private", "producer_agent_id": "a1",
               "nodes": [{"client_id": "p1", "type": "event", "text_summary": "private one"}]}),
    );
    // Bad input fails the same way on both.
    assert_eq!(p.run(Op::Write, json!({"input_text": "x", "nodes": [{"type": "nope"}]})).unwrap_err().0, 400);
    let stale = json!({"input_text": "s", "parent_commit_id": first["commit_id"],
                       "nodes": [{"client_id": "s", "type": "event", "text_summary": "s"}]});
    assert!(p.run(Op::Write, stale).is_err());

    let all = p.ok(Op::Find, json!({}));
    assert!(all["nodes"].as_array().unwrap().len() >= 7, "{all}");
    p.ok(Op::Find, json!({"type": "event", "limit": 2}));
    p.ok(Op::Find, json!({"client_id": "evt-1"}));
    p.ok(Op::Find, json!({"text_contains": "NUMBER 3"}));
    p.ok(Op::Find, json!({"slots_contains": {"env": "prod"}}));
    p.ok(Op::Find, json!({"scope": "other"}));

    let verified = p.ok(Op::VerifyCommits, json!({}));
    assert_eq!(verified["ok"], true, "{verified}");
    let every = p.ok(Op::VerifyCommits, json!({"all_scopes": true}));
    assert_eq!(every["ok"], true, "{every}");
    let q = vec![("limit".to_string(), "3".to_string())];
    let listed = p.read("commits", |db| cairn_memory::commit_log::list(db, &p.settings, &q));
    assert_eq!(listed["commits"].as_array().unwrap().len(), 3, "{listed}");
}

#[test]
fn sessions_and_packs_match_sqlite() {
    let mut p = Pair::new();
    let session = p.ok(Op::CreateSession, json!({"session_id": "s1", "title": "planning", "memory_lane": "shared"}));
    assert!(session["session_node_id"].is_string(), "{session}");
    for i in 0..3 {
        p.ok(
            Op::WriteEvent,
            json!({"session_id": "s1", "event_id": format!("t{i}"), "text_summary": format!("turn {i}")}),
        );
    }
    // An event without an id gets one from the (same) id source.
    p.ok(Op::WriteEvent, json!({"session_id": "s1", "title": "no id"}));
    let q = vec![("limit".to_string(), "10".to_string())];
    let events = p.read("session events", |db| cairn_memory::sessions::list_events(db, &p.settings, "s1", &q));
    assert_eq!(events["events"].as_array().unwrap().len(), 4, "{events}");
    let exported = p.ok(Op::ExportPack, json!({"max_rows": 1000}));
    let import =
        json!({"tenant_id": "copy", "manifest_sha256": exported["manifest"]["sha256"], "pack": exported["pack"]});
    assert_eq!(p.ok(Op::ImportPack, import)["imported"], true);
    p.ok(Op::Find, json!({"tenant_id": "copy"}));
    assert_eq!(p.ok(Op::VerifyCommits, json!({"tenant_id": "copy"}))["ok"], true);
}

const DIMS: usize = 384;

/// A unit vector at `cos = c` to axis 0, leaning towards axis `towards`.
fn at_cosine(c: f32, towards: usize) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    v[0] = c;
    v[towards] = (1.0 - c * c).sqrt();
    v
}

/// Drops what is measured rather than computed (stage timings).
fn without_timings(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("_ms") && k != "timings");
            m.values_mut().for_each(without_timings);
        }
        Value::Array(a) => a.iter_mut().for_each(without_timings),
        _ => {}
    }
}

impl Pair {
    fn recall(&mut self, body: Value) -> Value {
        let embed = |_: &str| -> Result<Vec<f32>, cairn_core::ApiError> { Ok(at_cosine(1.0, 1)) };
        self.read(&format!("recall {body}"), |db| {
            let endpoint = cairn_memory::recall::request::Endpoint::Recall;
            let mut a = cairn_memory::recall::recall(db, &self.settings, &body, endpoint, false, &embed, self.now)?;
            without_timings(&mut a.body);
            Ok(a.body)
        })
    }
}

#[test]
fn recall_over_client_vectors_matches_sqlite() {
    let mut p = Pair::new();
    p.ok(
        Op::Write,
        json!({
            "input_text": "fixture",
            "memory_lane": "shared",
            "trigger_topic_cluster": false,
            "nodes": [
                {"client_id": "seed", "type": "event", "text_summary": "deploy failed on migration step",
                 "confidence": 0.8, "embedding": at_cosine(0.9, 1)},
                {"client_id": "near", "type": "event", "text_summary": "the migration was retried",
                 "embedding": at_cosine(0.8, 2)},
                {"client_id": "far", "type": "event", "text_summary": "lunch", "embedding": at_cosine(0.1, 3)},
                {"client_id": "topic", "type": "topic", "title": "Deploys",
                 "slots": {"topic_state": "active", "member_count": 2}},
                {"client_id": "rule", "type": "rule", "text_summary": "never deploy on friday", "memory_lane": "shared",
                 "slots": {"if": {"intent": "deploy"}, "then": {"deny": ["deploy"]}}}
            ],
            "edges": [
                {"type": "part_of", "src": {"client_id": "seed"}, "dst": {"client_id": "topic"}, "weight": 0.9},
                {"type": "part_of", "src": {"client_id": "near"}, "dst": {"client_id": "topic"}, "weight": 0.7},
                {"type": "related_to", "src": {"client_id": "seed"}, "dst": {"client_id": "rule"}, "weight": 0.5}
            ]
        }),
    );
    for i in 0..4 {
        p.ok(Op::Write, event(&format!("later{i}"), &format!("the deploy step {i} after the migration")));
    }
    let q = at_cosine(1.0, 1);
    let r = p.recall(json!({"query_embedding": q}));
    assert!(!r["seeds"].as_array().unwrap().is_empty(), "{r}");
    p.recall(json!({"query_embedding": q, "limit": 2, "neighborhood_hops": 2, "return_debug": true}));
    p.recall(json!({"query_embedding": q, "include_slots": true, "include_meta": true}));
}
