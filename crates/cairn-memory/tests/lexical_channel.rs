//! The lexical channel and hybrid stage 1 against a real SQLite (rusqlite,
//! bundled, FTS5): the index follows writes, updates and erasures through
//! its triggers, keeps to one scope and one lane, and recall_text's hybrid
//! stage 1 finds by words what vectors miss.

use cairn_memory::recall::lexical;
use cairn_memory::recall::request::Endpoint;
use cairn_memory::settings::Settings;
use cairn_memory::{Op, run};
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000_000;

fn settings() -> Settings {
    Settings {
        embedding_dims: 3,
        embedding_provider: Some("test".into()),
        recall_audit: cairn_memory::settings::AuditSink::Off,
        ..Settings::default()
    }
}

fn write(db: &NativeSqlite, body: Value) -> Value {
    run(db, &settings(), Op::Write, &body.to_string(), NOW, || "00000000-0000-4000-8000-000000000001".into())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn hits(db: &NativeSqlite, scope_key: &str, q: &str, agent: Option<&str>) -> Vec<String> {
    let found = lexical::search(db, scope_key, q, agent, None, 10).unwrap();
    assert!(found.available);
    found.hits.into_iter().map(|h| h.id).collect()
}

fn turn(id: &str, text: &str) -> Value {
    json!({"client_id": id, "type": "event", "text_summary": text, "memory_lane": "shared"})
}

fn db_with_turns() -> (NativeSqlite, Value) {
    let db = NativeSqlite::in_memory();
    let w = write(
        &db,
        json!({"input_text": "conversation", "nodes": [
            turn("t1", "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."),
            turn("t2", "Melanie: That's great! I painted a sunrise over the lake last summer."),
            turn("t3", "Caroline: Wow, painting sounds relaxing. What colours did you use?"),
            turn("t4", "Melanie: Mostly oranges and pinks, the sky was on fire."),
            {"client_id": "secret", "type": "event", "text_summary": "Melanie's private sunrise diary",
             "memory_lane": "private", "owner_agent_id": "agent-m"},
        ]}),
    );
    (db, w)
}

fn id_of(w: &Value, client: &str) -> String {
    w["nodes"].as_array().unwrap().iter().find(|n| n["client_id"] == client).unwrap()["id"].as_str().unwrap().into()
}

#[test]
fn the_index_has_fts5_and_finds_by_stemmed_words() {
    let (db, w) = db_with_turns();
    assert!(lexical::available(&db).unwrap(), "memory_features says the index exists");
    // "painted" and "painting" both stem to "paint".
    let found = hits(&db, "default", "When did Melanie paint a sunrise?", None);
    assert_eq!(found[0], id_of(&w, "t2"), "{found:?}");
    assert!(found.contains(&id_of(&w, "t3")));
    assert!(hits(&db, "default", "what is it", None).is_empty(), "stopwords alone find nothing");
}

#[test]
fn lanes_and_scopes_hold_inside_the_query() {
    let (db, w) = db_with_turns();
    let secret = id_of(&w, "secret");
    assert!(!hits(&db, "default", "sunrise diary", None).contains(&secret), "another agent's private memory");
    assert!(hits(&db, "default", "sunrise diary", Some("agent-m")).contains(&secret), "its owner sees it");
    write(&db, json!({"scope": "other", "input_text": "x", "nodes": [turn("o1", "a sunrise in another scope")]}));
    let other = hits(&db, "other", "sunrise", None);
    assert_eq!(other.len(), 1);
    assert!(!hits(&db, "default", "sunrise", None).contains(&other[0]));
    write(&db, json!({"tenant_id": "acme", "input_text": "x", "nodes": [turn("a1", "acme's sunrise")]}));
    let acme_key = cairn_core::tenant_scope::scope_key("acme", "default", &Default::default());
    assert_eq!(hits(&db, &acme_key, "sunrise", None).len(), 1);
    assert!(hits(&db, "default", "acme", None).is_empty(), "tenant isolation");
}

#[test]
fn erasure_follows_through_the_trigger() {
    let (db, w) = db_with_turns();
    let t2 = id_of(&w, "t2");
    cairn_memory::erasure::erase_before(
        &db,
        "default",
        "2099-01-01T00:00:00.000Z",
        "test",
        "retention",
        "2099-01-01T00:00:00.000Z",
    )
    .map(|_| ())
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!hits(&db, "default", "sunrise lake", None).contains(&t2), "retention's erasure leaves the index");
    let (db, _) = db_with_turns();
    cairn_memory::erasure::erase_scope(&db, "default", "test", "teardown", "2027-01-01T00:00:00.000Z").unwrap();
    assert!(hits(&db, "default", "caroline melanie", None).is_empty(), "erased rows leave the index");
    let left: i64 = db.query_one("SELECT count(*) FROM memory_nodes_fts", &[]).unwrap().unwrap().int(0);
    assert_eq!(left, 0);
}

#[test]
fn writes_are_numbered_in_order_for_neighbours() {
    let (db, w) = db_with_turns();
    let seq = |c: &str| {
        db.query_one("SELECT seq FROM memory_nodes WHERE id = ?", &[id_of(&w, c).as_str().into()])
            .unwrap()
            .unwrap()
            .int(0)
    };
    assert_eq!((seq("t1"), seq("t2"), seq("t3"), seq("t4")), (1, 2, 3, 4));
    let w2 = write(&db, json!({"input_text": "later", "nodes": [turn("t5", "Caroline: see you soon")]}));
    assert_eq!(
        db.query_one("SELECT seq FROM memory_nodes WHERE id = ?", &[id_of(&w2, "t5").as_str().into()])
            .unwrap()
            .unwrap()
            .int(0),
        6,
        "numbering goes on across writes (the private turn took 5)"
    );
}

#[test]
fn derived_nodes_are_not_indexed_and_old_rows_are_backfilled() {
    let (db, w) = db_with_turns();
    // Unindexed rows, as a database written before schema 9 has them.
    db.exec("DELETE FROM memory_nodes_fts", &[]).unwrap();
    db.exec("UPDATE memory_nodes SET seq = NULL WHERE client_id = 't4'", &[]).unwrap();
    assert!(hits(&db, "default", "sunrise", None).is_empty());
    lexical::backfill(&db).unwrap();
    assert!(hits(&db, "default", "sunrise", None).contains(&id_of(&w, "t2")));
    assert!(
        hits(&db, "default", "oranges pinks", None).is_empty(),
        "a node without write order is derived: not indexed"
    );
}

/// recall_text with a fake embedder that knows nothing: the words carry it.
#[test]
fn hybrid_recall_text_finds_a_rare_word_the_vectors_miss() {
    let (db, w) = db_with_turns();
    // Every node gets the same vector, so the dense side cannot tell them apart.
    db.exec(
        "UPDATE memory_nodes SET embedding = ?, embedding_dims = 3, embedding_status = 'ready'",
        &[cairn_spin::sql::f32_blob(&[1.0, 0.0, 0.0]).into()],
    )
    .unwrap();
    let body = json!({"query_text": "Which LGBTQ group did Caroline go to?", "limit": 4});
    let embed = |_: &str| Ok(vec![1.0, 0.0, 0.0]);
    let out =
        cairn_memory::recall::recall(&db, &settings(), &body, Endpoint::RecallText, false, &embed, NOW).unwrap().body;
    let seeds: Vec<&str> = out["seeds"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(seeds[0], id_of(&w, "t1"), "{}", out["seeds"]);
    assert_eq!(out["observability"]["stage1"]["stage1_mode"], "hybrid");
    assert_eq!(out["seeds"][0]["score"], 1.0);
    // Turns 2 and 4 share no word with the question and have the same
    // vector; turn 2 sits next to the answer and is lifted above turn 4.
    let at = |c: &str| seeds.iter().position(|s| *s == id_of(&w, c)).unwrap();
    assert!(at("t2") < at("t4"), "{seeds:?}");
    let dense = json!({"query_text": "Which LGBTQ group did Caroline go to?", "limit": 3, "stage1_mode": "dense"});
    let out =
        cairn_memory::recall::recall(&db, &settings(), &dense, Endpoint::RecallText, false, &embed, NOW).unwrap().body;
    assert_eq!(out["observability"]["stage1"]["stage1_mode"], "dense");
}

/// A scope embedded by another model than the one embedding queries now.
#[test]
fn a_scope_embedded_by_another_model_is_searched_by_words_or_refused() {
    let (db, w) = db_with_turns();
    let t1 = id_of(&w, "t1");
    db.exec(
        "INSERT INTO memory_derived_vectors (node_id, scope, model, dims, vector, updated_at) VALUES (?, 'default', 'old:model', 3, ?, 'x')",
        &[t1.as_str().into(), cairn_spin::sql::f32_blob(&[1.0, 0.0, 0.0]).into()],
    )
    .unwrap();
    let s = Settings { embedding_model_label: Some("new:model".into()), ..settings() };
    let embed = |_: &str| Ok(vec![1.0, 0.0, 0.0]);
    let body = json!({"query_text": "LGBTQ support group"});
    let out = cairn_memory::recall::recall(&db, &s, &body, Endpoint::RecallText, false, &embed, NOW).unwrap().body;
    assert_eq!(out["observability"]["stage1"]["stage1_mode"], "lexical");
    assert_eq!(out["observability"]["stage1"]["dense_refused"]["scope_model"], "old:model");
    assert_eq!(out["seeds"][0]["id"], t1.as_str(), "the words still find it");
    let dense = json!({"query_text": "LGBTQ support group", "stage1_mode": "dense"});
    let e = cairn_memory::recall::recall(&db, &s, &dense, Endpoint::RecallText, false, &embed, NOW).unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (409, "embedding_model_mismatch"));
    assert!(e.message.contains("rebuild-derived"), "{}", e.message);
    let same = Settings { embedding_model_label: Some("old:model".into()), ..settings() };
    let out = cairn_memory::recall::recall(&db, &same, &dense, Endpoint::RecallText, false, &embed, NOW).unwrap().body;
    assert!(out["observability"]["stage1"].get("dense_refused").is_none());
}

/// A database at kernel schema 8 with memories: the upgrade numbers them
/// and indexes them in the migration's transaction.
#[test]
fn upgrading_from_schema_8_indexes_existing_memories() {
    let db = NativeSqlite::in_memory();
    cairn_spin::migrations::ensure(&db, "kernel", &cairn_memory::schema::MIGRATIONS[..8], "t").unwrap();
    db.exec(
        "INSERT INTO memory_nodes (id, scope, type, text_summary, embedding_status, memory_lane, created_at, updated_at, commit_id) \
         VALUES ('old-1', 'default', 'event', 'an old memory about sourdough bread', 'ready', 'shared', 'a', 'a', 'c')",
        &[],
    )
    .unwrap();
    cairn_memory::schema::ensure(&db, "t").unwrap();
    assert_eq!(hits(&db, "default", "sourdough", None), ["old-1"]);
    let seq = db.query_one("SELECT seq FROM memory_nodes WHERE id = 'old-1'", &[]).unwrap().unwrap().int(0);
    assert_eq!(seq, 1);
}

/// The audit row goes where the settings say: the kernel writes it, or
/// hands it to the embedding and writes nothing (a recall that never
/// writes), or there is none.
#[test]
fn the_audit_row_goes_to_its_sink() {
    use cairn_memory::settings::AuditSink;
    let (db, _) = db_with_turns();
    let embed = |_: &str| Ok(vec![1.0, 0.0, 0.0]);
    let body = json!({"query_text": "sunrise"});
    let rows =
        |db: &NativeSqlite| db.query_one("SELECT count(*) FROM memory_recall_audit", &[]).unwrap().unwrap().int(0);
    for (sink, written, handed) in
        [(AuditSink::Inline, 1, false), (AuditSink::Embedding, 0, true), (AuditSink::Off, 0, false)]
    {
        let before = rows(&db);
        let s = Settings { recall_audit: sink, ..settings() };
        let a = cairn_memory::recall::recall(&db, &s, &body, Endpoint::RecallText, false, &embed, NOW).unwrap();
        assert_eq!(rows(&db) - before, written, "{sink:?}");
        assert_eq!(a.audit_row.is_some(), handed, "{sink:?}");
        if let Some(row) = a.audit_row {
            assert_eq!((row["endpoint"].as_str(), row["scope"].as_str()), (Some("recall_text"), Some("default")));
            cairn_memory::recall::write_audit_row(&db, &row).unwrap();
            assert_eq!(rows(&db) - before, 1, "the embedding writes what it was handed");
        }
    }
}

/// A question made of words every memory carries: the recent slice is
/// scored in Rust (FTS5's bm25() would walk every posting list), the
/// memories with more (and rarer) of the words first, the older ones left
/// to the dense side, the lanes held.
#[test]
fn common_words_score_the_recent_slice() {
    let db = NativeSqlite::in_memory();
    let n = 3 * lexical::MAX_MATCHES + 300;
    let recent = n - 10;
    // Every memory says "deploy"; every third also "alice"; the oldest and
    // one recent memory say all three words, and so does a private one.
    let text = |i: usize| match i {
        0 => "deploy failed for alice on the oldest run".to_string(),
        _ if i == recent => "deploy failed for alice just now".to_string(),
        _ if i.is_multiple_of(3) => format!("deploy for alice on run {i}"),
        _ => format!("deploy on run {i} failed"),
    };
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let nodes: Vec<Value> = chunk.iter().map(|&i| turn(&format!("m{i}"), &text(i))).collect();
        let w = write(&db, json!({"input_text": "batch", "nodes": nodes}));
        ids.extend(chunk.iter().map(|&i| id_of(&w, &format!("m{i}"))));
    }
    let private = id_of(
        &write(
            &db,
            json!({"input_text": "private", "nodes": [{"client_id": "p", "type": "event",
                "text_summary": "deploy failed for alice in private", "memory_lane": "private", "owner_agent_id": "agent-p"}]}),
        ),
        "p",
    );
    let found = lexical::search(&db, "default", "deploy failed alice", None, None, 10).unwrap();
    assert!(found.recent_only, "every word matches more than the bound");
    assert_eq!(found.hits[0].id, ids[recent], "the recent memory with every word comes first");
    assert!(found.hits.windows(2).all(|w| w[0].bm25 >= w[1].bm25), "best first");
    assert!(!found.hits.iter().any(|h| h.id == ids[0]), "the oldest is outside the slice: the dense side's");
    let ids_of = |agent| -> Vec<String> {
        lexical::search(&db, "default", "deploy failed alice", agent, None, 10)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    assert_eq!(ids_of(None).len(), 10);
    assert!(!ids_of(None).contains(&private), "another agent's private memory stays out");
    assert_eq!(ids_of(Some("agent-p"))[0], private, "its owner finds it first (as good as the best, newer)");
}
