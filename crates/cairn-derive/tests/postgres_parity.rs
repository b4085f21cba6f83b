//! Derivation on PostgreSQL does exactly what it does on SQLite: the same
//! writes, ticks and embedder on both backends (`cairn_spin::parity`) must
//! give the same tick reports (claims, embeddings, topics and their commit
//! hashes) and the same derived memory.

use cairn_derive::embedder::{EmbedFailure, Embedder};
use cairn_derive::settings::DeriveSettings;
use cairn_derive::tick::{self, TickOptions};
use cairn_memory::{Op, run};
use cairn_spin::parity::BothBackends;
use serde_json::{Value, json};
use std::cell::Cell;

const T0: i64 = 1_764_547_200_000;
const DIMS: usize = 384;

/// Words hashed into a unit vector: similar texts, similar vectors.
struct WordHash;

impl Embedder for WordHash {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; DIMS];
                for w in t.to_lowercase().split_whitespace() {
                    let h =
                        w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                    v[(h % DIMS as u64) as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                v.iter_mut().for_each(|x| *x /= n);
                v
            })
            .collect())
    }
    fn model_name(&self) -> String {
        "test:word-hash".into()
    }
}

/// Drops what is measured rather than computed.
fn without_timings(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("_ms"));
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// As spin.toml configures it (an embedding provider, so writes enqueue
/// embed jobs), on a tier with the IVF index, with small topics and a
/// small IVF threshold.
fn settings() -> DeriveSettings {
    DeriveSettings::from_lookup(|k: &str| match k {
        "tier_profiles" => Some(r#"{"tiers": {"solo": {"resource_caps": {"vector_index": "ivf"}}}}"#.to_string()),
        "embedding_provider" => Some("local".to_string()),
        "auto_topic_cluster_on_write" => Some("true".to_string()),
        "topic_min_events" | "topic_rollup_every" => Some("3".to_string()),
        "topic_sim_threshold" => Some("0.3".to_string()),
        "vector_index_min_vectors" => Some("16".to_string()),
        _ => None,
    })
}

fn write_events(both: &BothBackends, s: &DeriveSettings, now: &mut i64, texts: &[String]) {
    for text in texts {
        *now += 1_000;
        let id = format!("e{now}");
        let body = json!({"input_text": text, "memory_lane": "shared",
                          "nodes": [{"client_id": id, "type": "event", "text_summary": text}]})
        .to_string();
        both.same(&format!("write {text}"), |db| run(db, &s.kernel, Op::Write, &body, *now, || format!("id-{id}")))
            .unwrap();
    }
}

/// Ticks both backends until the outbox is drained; returns the reports.
fn drain(both: &BothBackends, s: &DeriveSettings, now: &mut i64) -> Vec<Value> {
    let opts = TickOptions { batch_size: 3, ..Default::default() };
    let mut reports = Vec::new();
    for round in 0..50 {
        *now += 1_000;
        let start = *now;
        let report = both
            .same(&format!("tick {round}"), |db| {
                let clock = Cell::new(start);
                let tokens = Cell::new(0u32);
                let next_ms = || {
                    clock.set(clock.get() + 1);
                    clock.get()
                };
                let next_token = || {
                    tokens.set(tokens.get() + 1);
                    format!("token-{start}-{}", tokens.get())
                };
                Ok(without_timings(tick::tick(db, None, s, &WordHash, &opts, &next_ms, next_token)?.to_json()))
            })
            .unwrap();
        let claimed = report["claimed"].as_i64().unwrap();
        reports.push(report);
        if claimed == 0 {
            return reports;
        }
    }
    panic!("the outbox did not drain: {reports:?}");
}

#[test]
fn ticks_embed_cluster_and_summarize_exactly_as_on_sqlite() {
    let both = BothBackends::start();
    let settings = settings();
    let mut now = T0;
    let texts = [
        "deploy failed on the migration step",
        "the migration step failed again during deploy",
        "deploy rolled back after the migration failed",
        "lunch order for the team offsite",
        "the team offsite lunch order is in",
        "deploy migration fixed and the deploy went out",
        "offsite lunch for the team moved to friday",
    ];
    write_events(&both, &settings, &mut now, &texts.map(String::from));
    let reports = drain(&both, &settings, &mut now);
    assert!(reports.iter().any(|r| r["topic_cluster"]["topics_created"].as_i64() > Some(0)), "{reports:?}");
    let all = json!({"limit": 200, "include_slots": true}).to_string();
    let found = both.same("find", |db| run(db, &settings.kernel, Op::Find, &all, now, || "x".into())).unwrap();
    let nodes = found["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["type"] == "topic"), "derivation made topics: {found}");
    let verify = json!({"all_scopes": true}).to_string();
    let v =
        both.same("verify", |db| run(db, &settings.kernel, Op::VerifyCommits, &verify, now, || "x".into())).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn the_ivf_index_is_trained_kept_and_searched_as_on_sqlite() {
    let both = BothBackends::start();
    let settings = settings();
    let mut now = T0;
    let words = ["deploy", "migration", "lunch", "offsite", "friday", "rollback", "incident", "release"];
    let text = |i: usize| format!("{} {} note {i}", words[i % words.len()], words[(i * 3 + 1) % words.len()]);
    write_events(&both, &settings, &mut now, &(0..40).map(text).collect::<Vec<_>>());
    let reports = drain(&both, &settings, &mut now);
    assert!(
        reports.iter().any(|r| r["vector_index"]["builds"].as_i64() > Some(0)),
        "an index was trained: {reports:?}"
    );
    // Written after training: kept through the lists' pending changes.
    write_events(&both, &settings, &mut now, &(40..60).map(text).collect::<Vec<_>>());
    drain(&both, &settings, &mut now);
    let query = WordHash.embed(&["deploy migration".to_string()]).unwrap().remove(0);
    let body = json!({"query_embedding": query, "limit": 10});
    let answer = both
        .same("recall", |db| {
            let endpoint = cairn_memory::recall::request::Endpoint::Recall;
            let no_text = |_: &str| -> Result<Vec<f32>, cairn_core::ApiError> { unreachable!("recall has a vector") };
            let a = cairn_memory::recall::recall(db, &settings.kernel, &body, endpoint, false, &no_text, now)?;
            Ok(without_timings(a.body))
        })
        .unwrap();
    assert!(!answer["seeds"].as_array().unwrap().is_empty(), "{answer}");
}

/// Two instances claim at once on PostgreSQL: each claim locks the jobs it
/// takes and passes over the other's (`FOR UPDATE SKIP LOCKED`), so neither
/// waits and no job is claimed twice; and a job whose claim is being
/// checked (`still_claimed`, `FOR UPDATE`) cannot be taken over, even once
/// its claim has expired.
#[test]
fn concurrent_claims_on_postgresql_never_share_a_job_nor_wait() {
    use cairn_derive::outbox::{self, ClaimFilter};
    use cairn_spin::sql::Sql;
    let both = BothBackends::start();
    let s = settings();
    let mut now = T0;
    write_events(&both, &s, &mut now, &(0..6).map(|i| format!("event {i}")).collect::<Vec<_>>());
    let (a, b) = (&both.postgres, both.another_postgres_connection());
    let claim = |db: &dyn Sql, batch: i64, at: i64, token: &str| {
        outbox::claim(db, &s, &ClaimFilter::default(), batch, at, token).unwrap()
    };
    let ids = |jobs: &[outbox::Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    // The claim cursor exists from the first claim on (the very first two
    // claims ever may meet on its insertion: the second waits for the
    // first's commit).
    a.exec("INSERT INTO memory_derive_state (name, value) VALUES ('claim_cursor', '')", &[]).unwrap();
    // A claims three and has not committed; B's claim does not wait for A
    // (it would block forever here, on one thread) and takes the others.
    a.exec("BEGIN IMMEDIATE ROWS", &[]).unwrap();
    let by_a = claim(a, 3, now, "token-a");
    b.exec("BEGIN IMMEDIATE ROWS", &[]).unwrap();
    let by_b = claim(&b, 100, now, "token-b");
    b.exec("COMMIT", &[]).unwrap();
    a.exec("COMMIT", &[]).unwrap();
    let total: i64 = a.query_one("SELECT count(*) FROM memory_outbox", &[]).unwrap().unwrap().int(0);
    assert_eq!(by_a.len(), 3);
    assert_eq!(by_a.len() + by_b.len(), total as usize, "every job claimed once: {:?} / {:?}", ids(&by_a), ids(&by_b));
    assert!(ids(&by_a).iter().all(|id| !ids(&by_b).contains(id)), "{:?} / {:?}", ids(&by_a), ids(&by_b));
    // Later, every claim has expired. A checks its first job inside a
    // transaction; B's claim takes every other expired job, not that one.
    let later = now + s.claim_timeout_ms + 1;
    a.exec("BEGIN IMMEDIATE ROWS", &[]).unwrap();
    assert!(outbox::still_claimed(a, &by_a[0]).unwrap());
    b.exec("BEGIN IMMEDIATE ROWS", &[]).unwrap();
    let taken = claim(&b, 100, later, "token-c");
    b.exec("COMMIT", &[]).unwrap();
    assert_eq!(taken.len(), total as usize - 1);
    assert!(!ids(&taken).contains(&by_a[0].id), "the job being checked was passed over");
    assert!(outbox::finish(a, &by_a[0], &json!({"ok": true}), "2026-01-01T00:00:00.000Z").unwrap());
    a.exec("COMMIT", &[]).unwrap();
}

/// On PostgreSQL a tick commits under its jobs' scopes' locks only: while
/// another instance holds a write transaction of scope `alpha` open, a tick
/// of scope `beta`'s jobs embeds, clusters and finishes them without
/// waiting (under the whole-database lock it would wait for that write to
/// end; here, on one thread, it would run into the lock timeout), and a
/// write to `alpha` still waits.
#[test]
fn a_tick_of_one_scope_does_not_wait_for_a_write_to_another() {
    use cairn_spin::sql::Sql;
    let both = BothBackends::start();
    let mut s = settings();
    // Retention's turn is a whole-database transaction: not due in this test.
    s.retention_interval_ms = i64::MAX;
    let pg = &both.postgres;
    let write = |scope: &str, i: i64| {
        let text = format!("{scope} deploy note {i}");
        let body = json!({"scope": scope, "input_text": text, "memory_lane": "shared",
                          "nodes": [{"client_id": format!("{scope}{i}"), "type": "event", "text_summary": text}]})
        .to_string();
        run(pg, &s.kernel, Op::Write, &body, T0 + i, || format!("id-{scope}-{i}"))
    };
    for i in 0..4 {
        write("alpha", i).unwrap();
        write("beta", i).unwrap();
    }
    let other = both.another_postgres_connection();
    other.exec(&format!("BEGIN IMMEDIATE SCOPE {}", cairn_spin::pg_dialect::scope_lock_key("alpha")), &[]).unwrap();
    pg.exec("SET lock_timeout = '3s'", &[]).unwrap();
    let opts = TickOptions::parse(&json!({"scope": "beta"}), &s).unwrap();
    let clock = Cell::new(T0 + 60_000);
    let next_ms = || {
        clock.set(clock.get() + 1);
        clock.get()
    };
    let tokens = Cell::new(0u32);
    let next_token = || {
        tokens.set(tokens.get() + 1);
        format!("token-{}", tokens.get())
    };
    let mut done = 0;
    for _ in 0..5 {
        let r = tick::tick(pg, None, &s, &WordHash, &opts, &next_ms, next_token).unwrap();
        assert_eq!((r.retrying, r.dead_lettered, r.claims_lost), (0, 0, 0), "{}", r.to_json());
        done += r.done;
        if r.claimed == 0 {
            break;
        }
    }
    let pending = |scope: &str| {
        pg.query_one(
            "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL",
            &[scope.into()],
        )
        .unwrap()
        .unwrap()
        .int(0)
    };
    assert!(done >= 4, "beta's embed jobs and what followed them ran: {done}");
    assert_eq!(pending("beta"), 0, "beta is derived while alpha is being written");
    assert!(pending("alpha") >= 4, "alpha's jobs were not in the filter");
    pg.exec("SET lock_timeout = '200ms'", &[]).unwrap();
    let e = write("alpha", 9).unwrap_err();
    assert_eq!(e.status, 500, "alpha's lock is held: {e:?}");
    other.exec("ROLLBACK", &[]).unwrap();
    pg.exec("SET lock_timeout = 0", &[]).unwrap();
    write("alpha", 9).unwrap();
}
