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

/// What the lexical channel found for `q`, as far as both backends must
/// agree: the plan, and the hits (ordered by id where the backends score
/// differently: FTS5's exact plan uses term frequencies and lengths,
/// PostgreSQL's postings score the scope as one slice; a recent-only plan
/// is scored the same way on both, so there order and scores must match).
fn lexical_answer(db: &dyn Sql, scope: &str, q: &str, agent: Option<&str>) -> Result<Value, cairn_core::ApiError> {
    let found = cairn_memory::recall::lexical::search(db, scope, q, agent, None, 10)?;
    let mut hits: Vec<Value> =
        found.hits.iter().map(|h| if found.recent_only { json!([h.id, h.bm25]) } else { json!(h.id) }).collect();
    if !found.recent_only {
        hits.sort_by_key(|h| h.to_string());
    }
    Ok(json!({"available": found.available, "terms": found.terms, "dropped": found.dropped_terms,
              "recent_only": found.recent_only, "hits": hits}))
}

#[test]
fn the_lexical_channel_finds_on_postgresql_what_it_finds_on_sqlite() {
    let mut p = Pair::new();
    let turns = [
        ("t1", "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."),
        ("t2", "Melanie: That's great! I painted a sunrise over the lake last summer."),
        ("t3", "Caroline: Wow, painting sounds relaxing. What colours did you use?"),
        ("t4", "Melanie: Mostly oranges and pinks, the sky was on fire at the Café Zoë."),
    ];
    for (id, text) in turns {
        p.ok(Op::Write, event(id, text));
    }
    p.ok(
        Op::Write,
        json!({"input_text": "private", "nodes": [{"client_id": "secret", "type": "event", "memory_lane": "private",
               "owner_agent_id": "agent-m", "text_summary": "Melanie's private sunrise diary"}]}),
    );
    p.ok(
        Op::Write,
        json!({"scope": "other", "input_text": "x", "memory_lane": "shared",
                           "nodes": [{"client_id": "o1", "type": "event", "text_summary": "a sunrise elsewhere"}]}),
    );
    let other_key = cairn_core::tenant_scope::scope_key("default", "other", &Default::default());
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("default", "When did Melanie paint a sunrise?", None),
        ("default", "sunrise diary", None),
        ("default", "sunrise diary", Some("agent-m")),
        ("default", "cafe zoe", None),
        ("default", "PAINTINGS", None),
        ("default", "what is it", None),
        ("default", "nothing matches zzyzx", None),
        (&other_key, "sunrise", None),
    ];
    let mut found_any = 0;
    for (scope, q, agent) in cases {
        let a = p.read(&format!("lexical {scope} {q:?} {agent:?}"), |db| lexical_answer(db, scope, q, *agent));
        assert_eq!(a["available"], true, "{a}");
        found_any += usize::from(!a["hits"].as_array().unwrap().is_empty());
    }
    assert_eq!(found_any, 6, "every case but the stopwords and the unknown word finds something");
    // Erasure takes a scope's memories out of the index (a cascade on
    // PostgreSQL, a trigger on SQLite).
    p.read("erase", |db| {
        cairn_memory::erasure::erase_scope(db, "default", "test", "teardown", "2027-01-01T00:00:00.000Z")
            .map(|e| json!(e.nodes))
    });
    let a = p.read("after erasure", |db| lexical_answer(db, "default", "sunrise caroline melanie", None));
    assert_eq!(a["hits"], json!([]));
    let left = p.both.postgres.query_one("SELECT count(*) FROM memory_lexemes", &[]).unwrap().unwrap().int(0);
    assert_eq!(left, 3, "only the other scope's memory is left: \"a sunrise elsewhere\"");
}

/// Common words (each matching more than the bound) score the recent slice
/// the same way on both backends: equal hits, equal scores.
#[test]
fn common_words_score_the_same_recent_slice_on_both_backends() {
    let mut p = Pair::new();
    let n = 3 * cairn_memory::recall::lexical::MAX_MATCHES + 300;
    let text = |i: usize| match i {
        0 => "deploy failed for alice on the oldest run".to_string(),
        _ if i.is_multiple_of(3) => format!("deploy for alice on run {i}"),
        _ => format!("deploy on run {i} failed"),
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(300) {
        let nodes: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"client_id": format!("m{i}"), "type": "event", "text_summary": text(i)}))
            .collect();
        p.ok(Op::Write, json!({"input_text": format!("batch {}", chunk[0]), "memory_lane": "shared", "nodes": nodes}));
    }
    let a = p.read("recent slice", |db| lexical_answer(db, "default", "deploy failed alice", None));
    assert_eq!((a["recent_only"].as_bool(), a["hits"].as_array().map(Vec::len)), (Some(true), Some(10)), "{a}");
}

/// A PostgreSQL database migrated before its postings existed (schema 14)
/// is indexed by migration 15, in the migration's transaction.
#[test]
fn migration_15_indexes_the_memories_already_written_on_postgresql() {
    let mut p = Pair::new();
    p.ok(Op::Write, event("t1", "Melanie painted a sunrise over the lake"));
    let pg = &p.both.postgres;
    pg.exec("DELETE FROM memory_lexemes", &[]).unwrap();
    pg.exec("UPDATE cairn_schema SET version = 14 WHERE component = 'kernel'", &[]).unwrap();
    let ids = |db: &dyn Sql| lexical_answer(db, "default", "painting sunrises", None).unwrap()["hits"].clone();
    assert_eq!(ids(pg), json!([]));
    cairn_memory::schema::ensure(pg, "2026-01-01T00:00:00.000Z").unwrap();
    assert_eq!(ids(pg), ids(&p.both.sqlite));
    assert_eq!(ids(pg).as_array().unwrap().len(), 1);
}
