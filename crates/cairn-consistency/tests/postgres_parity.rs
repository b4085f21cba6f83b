//! The consistency checks find on PostgreSQL exactly what they find on
//! SQLite: the same writes and the same damage (made by hand, as an
//! operator's stray UPDATE would) on both backends, then every check's
//! count, sample and failure must be equal (`cairn_spin::parity`).

use cairn_consistency::options::OutboxLimits;
use cairn_consistency::{Options, run};
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_memory::settings::Settings;
use cairn_memory::{Op, run as kernel};
use cairn_spin::parity::BothBackends;
use cairn_spin::sql::{Dialect, Sql};
use serde_json::{Value, json};

const NOW: &str = "2026-12-01T00:00:00.000Z";
const T0: i64 = 1_764_547_200_000;
const LIMITS: OutboxLimits = OutboxLimits { max_attempts: 25, claim_timeout_ms: 300_000 };

fn report(db: &dyn Sql, body: Value) -> Result<Value, cairn_core::ApiError> {
    let opts = Options::parse(&body, &ScopeDefaults::default(), LIMITS, T0 + 3_600_000)?;
    let r = run(db, &opts)?;
    Ok(json!({
        "exit_code": r.exit_code(),
        "checks": r.checks.iter().map(|c| json!([c.name, c.count, c.sample, c.error.is_some()])).collect::<Vec<_>>(),
    }))
}

fn fired(r: &Value) -> Vec<String> {
    r["checks"].as_array().unwrap().iter().filter(|c| c[1] != 0 || c[3] == true).map(|c| c[0].to_string()).collect()
}

#[test]
fn the_checks_find_the_same_damage_on_both_backends() {
    let both = BothBackends::start();
    let settings = Settings::from_lookup(|_| None);
    let mut n = 0i64;
    let mut write = |body: Value| {
        n += 1;
        let text = body.to_string();
        both.same(&format!("write {text}"), |db| {
            kernel(db, &settings, Op::Write, &text, T0 + n * 1000, || format!("00000000-0000-4000-8000-{n:012}"))
        })
        .unwrap_or_else(|e| panic!("{text}: {e:?}"));
    };
    both.same("migrate", |db| {
        cairn_memory::schema::ensure(db, NOW)?;
        cairn_control_plane::schema::ensure(db, NOW)
    })
    .unwrap();
    write(json!({"input_text": "events", "memory_lane": "shared", "nodes": [
        {"client_id": "e1", "type": "event", "text_summary": "Melanie painted a sunrise"},
        {"client_id": "e2", "type": "event", "text_summary": "Caroline went to a meetup"},
        {"client_id": "t1", "type": "topic", "title": "Painting", "slots": {"topic_state": "weird", "member_count": -1}},
        {"client_id": "t2", "type": "topic", "title": "Meetups", "slots": {"topic_state": "active", "member_count": 2.5}},
        {"client_id": "t3", "type": "topic", "title": "Fine", "slots": {"topic_state": "draft", "member_count": 3}},
        {"client_id": "c1", "type": "concept", "title": "Summary", "slots": {"summary_kind": "compression_rollup",
         "citations": [{"node_id": "gone"}, {"node_id": "also-gone"}, "not an object"]}},
        {"client_id": "c2", "type": "concept", "title": "No citations", "slots": {"summary_kind": "compression_rollup"}},
    ]}));
    write(json!({"tenant_id": "acme", "input_text": "acme", "memory_lane": "shared",
                 "nodes": [{"client_id": "a1", "type": "event", "text_summary": "acme's event"}]}));
    let clean = both.same("clean report", |db| report(db, json!({"strict_warnings": true}))).unwrap();
    assert_eq!(
        fired(&clean),
        [
            "\"topic_state_invalid\"",
            "\"topic_member_count_invalid\"",
            "\"compression_citations_invalid\"",
            "\"compression_citation_node_missing\""
        ],
        "{clean}"
    );
    // Damage: a node's commit link, a topic's slots no longer JSON (skipped
    // by the JSON checks, not failed), a tombstone over a live row.
    both.same("damage", |db| {
        db.exec("UPDATE memory_nodes SET commit_id = 'nope' WHERE client_id = 'e2'", &[])?;
        db.exec("UPDATE memory_nodes SET slots = '{not json' WHERE client_id = 't2'", &[])?;
        db.exec(
            "INSERT INTO memory_tombstones (row_id, scope, row_kind, erased_at, erased_by, reason, commit_id) \
             SELECT id, scope, 'node', created_at, 'test', 'stray', commit_id FROM memory_nodes WHERE client_id = 'e1'",
            &[],
        )
    })
    .unwrap();
    // The lexical index loses a memory (each backend's own index).
    for db in [&both.sqlite as &dyn Sql, &both.postgres] {
        let table = match db.dialect() {
            Dialect::Sqlite => "DELETE FROM memory_nodes_fts WHERE rowid",
            Dialect::Postgres => "DELETE FROM memory_lexemes WHERE node_rowid",
        };
        db.exec(&format!("{table} = (SELECT rowid FROM memory_nodes WHERE client_id = 'e1')"), &[]).unwrap();
    }
    let damaged = both.same("damaged report", |db| report(db, json!({"sample": 5}))).unwrap();
    let names = fired(&damaged);
    for want in ["nodes_missing_commit_id", "tombstoned_rows_present", "commit_chain_broken", "fts_index_missing_rows"]
    {
        assert!(names.contains(&format!("\"{want}\"")), "{want} in {names:?}");
    }
    assert!(!names.contains(&"\"tenant_scope_key_malformed\"".to_string()));
    let member = damaged["checks"].as_array().unwrap().iter().find(|c| c[0] == "topic_member_count_invalid").unwrap();
    assert_eq!(member[1], 1, "t2's slots are no longer JSON, only t1 is left: {member}");
    assert_eq!(damaged["exit_code"], 0);
    // One tenant's report and the cross-tenant set.
    both.same("acme", |db| report(db, json!({"tenant_id": "acme", "strict": true}))).unwrap();
    both.same("cross", |db| report(db, json!({"check_set": "cross_tenant", "mode": "fast"}))).unwrap();
    // A private rule's owner constraint is read from each catalog.
    let constraint = damaged["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == "private_rule_owner_constraint_not_validated")
        .unwrap();
    assert_eq!((constraint[1].as_i64(), constraint[3].as_bool()), (Some(0), Some(false)), "{constraint}");
}
