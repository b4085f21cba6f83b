//! The replay drill against a real (in-memory) SQLite: on a healthy
//! embedder every step passes, the drill scope ends erased with its chain
//! verified, the tenant's other jobs are untouched and the result is
//! registered; an embedder that stays down fails the drill at `fix`, one
//! that answers the probe but fails the jobs at `derive` — each failure
//! registered too; a job another worker claims first is left to it (the
//! drill writes another); requests that cannot start a drill are refused;
//! `due` follows the tier's `ops.replay_drill`.

use cairn_control_plane::admin::AdminCtx;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_derive::embedder::{EmbedFailure, Embedder};
use cairn_derive::replay_drill::{self, Env, STEPS};
use cairn_derive::settings::DeriveSettings;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;
use serde_json::{Value, json};
use std::cell::Cell;

const T0: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;
const ACME_NOTES: &str = "tenant:acme::scope:notes";
static NEXT_RANDOM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Words hashed into a unit vector of the tier's dimension.
struct WordHash;

impl Embedder for WordHash {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 384];
                for w in t.split_whitespace() {
                    v[w.bytes().fold(7usize, |h, b| (h * 31 + b as usize) % 384)] += 1.0;
                }
                v
            })
            .collect())
    }
    fn model_name(&self) -> String {
        "test:word-hash".into()
    }
}

/// Always down.
struct Down;

impl Embedder for Down {
    fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        Err(EmbedFailure::retryable("connection refused"))
    }
    fn model_name(&self) -> String {
        "test:down".into()
    }
}

/// Answers the drill's probe, fails every memory's text.
struct ProbeOnly;

impl Embedder for ProbeOnly {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        if texts.iter().all(|t| t == "replay drill probe") {
            WordHash.embed(texts)
        } else {
            Err(EmbedFailure::retryable("rate limited"))
        }
    }
    fn model_name(&self) -> String {
        "test:probe-only".into()
    }
}

fn settings() -> DeriveSettings {
    DeriveSettings::from_lookup(|k: &str| match k {
        "embedding_provider" => Some("local".to_string()),
        "tier_profiles" => Some(
            r#"{"tiers": {"solo": {"ops": {"outbox": {"max_attempts": 25, "retry_base_ms": 1000}}},
                "growth": {"ops": {"replay_drill": "monthly"}}, "starter": {"ops": {}}}}"#
                .to_string(),
        ),
        _ => None,
    })
}

fn ctx(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx {
        request_id: "test",
        now_ms,
        // Distinct ids (audit events, evidence) on every call.
        random: &|b: &mut [u8]| {
            let n = NEXT_RANDOM.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b.fill(0);
            b[..8].copy_from_slice(&n.to_le_bytes());
        },
        tier_profiles: None,
        default_tier: "solo",
        billing_disabled: false,
        default_tenant_id: "default",
        alert_loopback_targets: false,
        tenant_store: None,
        tier_store: None,
    }
}

fn one(db: &NativeSqlite, sql: &str, params: &[cairn_spin::sql::SqlValue]) -> i64 {
    db.query_one(sql, params).unwrap().unwrap().int(0)
}

/// acme provisioned, with a dead letter and a fresh job in its scope
/// `notes` (which no drill may touch).
fn store() -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    let at = rfc3339_millis(T0);
    cairn_derive::ensure_schemas(&db, &at).unwrap();
    cairn_control_plane::tenants::upsert_tenant(&db, &ctx(T0), &json!({"tenant_id": "acme"})).unwrap();
    for (i, dead) in [(0, true), (1, false)] {
        let payload = json!({"nodes": [{"id": format!("n{i}"), "text": "t"}]});
        cairn_memory::write_path::enqueue(&db, ACME_NOTES, &format!("c{i}"), "embed_nodes", &payload, &at).unwrap();
        if dead {
            db.exec(
                "UPDATE memory_outbox SET attempts = 25, failed_at = ?, failed_reason = 'x' WHERE commit_id = 'c0'",
                &[at.clone().into()],
            )
            .unwrap();
        }
    }
    db
}

/// Runs a drill with `embedder`; the clock moves 3 ms a reading.
fn drill(db: &dyn Sql, embedder: &dyn Embedder, body: Value) -> Result<Value, cairn_core::ApiError> {
    let s = settings();
    let now = Cell::new(T0 + DAY);
    let ids = Cell::new(0u32);
    let clock = || {
        now.set(now.get() + 3);
        now.get()
    };
    let uuid = || {
        ids.set(ids.get() + 1);
        format!("00000000-0000-4000-8000-{:012}", ids.get())
    };
    let sleep = |ms: i64| now.set(now.get() + ms);
    let env = Env { settings: &s, embedder, clock: &clock, sleep: &sleep, uuid: &uuid };
    replay_drill::run(db, &ctx(T0 + DAY), &env, &body)
}

fn step_names(r: &Value) -> Vec<String> {
    r["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

/// The registered artifact of a drill: (producer, content as JSON).
fn registered(db: &NativeSqlite, r: &Value) -> (String, String, Value) {
    let row = db
        .query_one(
            "SELECT kind, producer, tenant_id, content FROM control_evidence WHERE evidence_id = ?",
            &[r["evidence_id"].as_str().unwrap().into()],
        )
        .unwrap()
        .expect("the drill's result is registered");
    assert_eq!(row.string(2), "acme");
    (row.string(0), row.string(1), serde_json::from_str(&row.string(3)).unwrap())
}

/// The scope `notes` of acme as the store() made it: (dead, fresh) jobs.
fn notes_jobs(db: &NativeSqlite) -> (i64, i64) {
    let key = ACME_NOTES.into();
    (
        one(
            db,
            "SELECT count(*) FROM memory_outbox WHERE scope = ? AND failed_at IS NOT NULL AND attempts = 25",
            &[key],
        ),
        one(
            db,
            "SELECT count(*) FROM memory_outbox WHERE scope = ? AND failed_at IS NULL AND attempts = 0",
            &[ACME_NOTES.into()],
        ),
    )
}

#[test]
fn a_healthy_drill_passes_every_step_erases_its_scope_and_is_registered() {
    let db = store();
    let r = drill(&db, &WordHash, json!({"tenant_id": "acme", "run_id": "r1"})).unwrap();
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!((r["scope"].as_str(), r["run_id"].as_str()), (Some("drill-r1"), Some("r1")));
    assert_eq!(step_names(&r), STEPS);
    assert!(r["steps"].as_array().unwrap().iter().all(|s| s["ok"] == true && s["ms"].as_i64() > Some(0)), "{r:#}");
    assert!(r.get("failed_step").is_none());
    let step =
        |name: &str| r["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["detail"].clone();
    let job = step("inject")["job_id"].as_i64().unwrap();
    assert!(step("dead_letter")["failed_reason"].as_str().unwrap().starts_with("max_attempts_exceeded: replay drill"));
    assert_eq!(step("dead_letter")["dead_letter_ids"], json!([job]));
    assert_eq!(
        (step("dry_run")["job_ids"].clone(), step("replay")["replayed_count"].clone()),
        (json!([job]), json!(1))
    );
    assert_eq!(step("check")["node"]["embedding_status"], "ready");
    assert_eq!(step("check")["node"]["embedding_model"], "test:word-hash");
    assert_eq!(step("check")["chain"]["verified"], true);
    assert!(step("cleanup")["erased"]["nodes"].as_i64() >= Some(1), "{r:#}");

    // The result is the registered artifact, byte for byte as JSON.
    let (kind, producer, content) = registered(&db, &r);
    assert_eq!((kind.as_str(), producer.as_str(), &content), ("replay_drill", "replay_drill", &r));
    // Both decisions are audit events of the drill (actor replay_drill).
    let events = db
        .query(
            "SELECT action, actor, tenant_id FROM control_audit_events WHERE action LIKE 'outbox.replay%' ORDER BY seq",
            &[],
        )
        .unwrap();
    let events: Vec<(String, String, String)> =
        events.iter().map(|e| (e.string(0), e.string(1), e.string(2))).collect();
    let by_drill = |a: &str| (a.to_string(), "replay_drill".to_string(), "acme".to_string());
    assert_eq!(events, [by_drill("outbox.replay.preview"), by_drill("outbox.replay")]);

    // The drill scope: erased behind tombstones, its chain verified; its
    // jobs done; the tenant's other scope untouched.
    let key = "tenant:acme::scope:drill-r1";
    assert_eq!(one(&db, "SELECT count(*) FROM memory_nodes WHERE scope = ?", &[key.into()]), 0);
    assert!(one(&db, "SELECT count(*) FROM memory_tombstones WHERE scope = ?", &[key.into()]) >= 1);
    assert_eq!(
        one(&db, "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL", &[key.into()]),
        0
    );
    let chain = cairn_memory::commit_log::verify_scope(&db, key).unwrap();
    assert!(chain.first_broken.is_none() && chain.erased.is_some(), "{chain:?}");
    assert_eq!(notes_jobs(&db), (1, 1));

    // A run id drills once.
    let again = drill(&db, &WordHash, json!({"tenant_id": "acme", "run_id": "r1"})).unwrap_err();
    assert_eq!((again.status, again.code.as_str()), (409, "drill_run_exists"));
}

#[test]
fn an_embedder_that_stays_down_fails_the_drill_at_fix_and_the_failure_is_registered() {
    let db = store();
    let r = drill(&db, &Down, json!({"tenant_id": "acme", "run_id": "down"})).unwrap();
    assert_eq!(r["ok"], false, "{r:#}");
    assert_eq!(
        (r["failed_step"].as_str(), r["error"].as_str()),
        (Some("fix"), Some("the embedder still fails: connection refused"))
    );
    assert_eq!(step_names(&r), ["inject", "dead_letter", "fix", "cleanup"], "stops at the failure; cleanup still runs");
    let oks: Vec<bool> = r["steps"].as_array().unwrap().iter().map(|s| s["ok"] == true).collect();
    assert_eq!(oks, [true, true, false, true]);
    let (kind, _, content) = registered(&db, &r);
    assert_eq!((kind.as_str(), &content), ("replay_drill", &r));
    // Nothing was replayed; the drill's dead letter went with its scope.
    assert_eq!(one(&db, "SELECT count(*) FROM control_audit_events WHERE action LIKE 'outbox.replay%'", &[]), 0);
    let key = "tenant:acme::scope:drill-down";
    assert_eq!(
        one(&db, "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL", &[key.into()]),
        0
    );
    assert!(cairn_memory::commit_log::verify_scope(&db, key).unwrap().first_broken.is_none());
    assert_eq!(notes_jobs(&db), (1, 1));
}

#[test]
fn an_embedder_that_answers_the_probe_but_fails_the_jobs_fails_the_drill_at_derive() {
    let db = store();
    let r = drill(&db, &ProbeOnly, json!({"tenant_id": "acme", "run_id": "flaky"})).unwrap();
    assert_eq!(r["failed_step"], "derive", "{r:#}");
    assert_eq!(r["error"], "a replayed job failed again: rate limited");
    assert_eq!(step_names(&r), ["inject", "dead_letter", "fix", "dry_run", "replay", "derive", "cleanup"]);
    let derive = &r["steps"][5];
    assert_eq!((derive["ok"].as_bool(), derive["detail"]["ticks"].as_i64()), (Some(false), Some(1)), "{r:#}");
    assert_eq!(registered(&db, &r).2["failed_step"], "derive");
    // The replay was made (a real decision, recorded), its job gone with the scope.
    assert_eq!(one(&db, "SELECT count(*) FROM control_audit_events WHERE action = 'outbox.replay'", &[]), 1);
    let key = "tenant:acme::scope:drill-flaky";
    assert_eq!(
        one(&db, "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL", &[key.into()]),
        0
    );
}

#[test]
fn requests_that_cannot_start_a_drill_are_refused_and_a_store_without_embedder_fails_at_inject() {
    let db = store();
    let code = |body: Value| drill(&db, &WordHash, body).map(|r| r.to_string()).unwrap_err();
    let e = code(json!({"tenant_id": "nobody"}));
    assert_eq!((e.status, e.code.as_str()), (404, "not_found"));
    let e = code(json!({"tenant_id": "acme", "run_id": "../x"}));
    assert_eq!(e.status, 400);
    let e = code(json!({}));
    assert_eq!(e.status, 400);
    assert_eq!(one(&db, "SELECT count(*) FROM control_evidence", &[]), 0, "nothing started, nothing registered");

    // The default tenant needs no provisioning; a generated run id.
    let r = drill(&db, &WordHash, json!({"tenant_id": "default"})).unwrap();
    assert_eq!(r["ok"], true, "{r:#}");
    let run_id = r["run_id"].as_str().unwrap();
    assert!(run_id.starts_with("20270116T") && run_id.len() == 25, "{run_id}");
    assert_eq!(r["scope"], format!("drill-{run_id}"));

    // Without an embedding provider a write enqueues nothing to drill.
    let s = DeriveSettings::default();
    let now = Cell::new(T0);
    let clock = || {
        now.set(now.get() + 1);
        now.get()
    };
    let env = Env { settings: &s, embedder: &WordHash, clock: &clock, sleep: &|_| {}, uuid: &|| "x".repeat(8) };
    let r = replay_drill::run(&db, &ctx(T0), &env, &json!({"tenant_id": "acme", "run_id": "none"})).unwrap();
    assert_eq!(r["failed_step"], "inject", "{r:#}");
    assert!(r["error"].as_str().unwrap().contains("no embedding provider"), "{r:#}");
}

#[test]
fn due_lists_the_tenants_whose_tier_asks_for_a_drill_that_no_passing_one_answers() {
    let db = store();
    let s = settings();
    let now = T0 + 100 * DAY;
    for (t, tier) in [("g-new", "growth"), ("g-fresh", "growth"), ("g-failed", "growth"), ("s", "starter")] {
        cairn_control_plane::tenants::upsert_tenant(&db, &ctx(T0), &json!({"tenant_id": t})).unwrap();
        db.exec("UPDATE control_tenants SET tier = ? WHERE tenant_id = ?", &[tier.into(), t.into()]).unwrap();
    }
    let register = |tenant: &str, at: i64, ok: bool| {
        let body = json!({"kind": "replay_drill", "tenant_id": tenant, "content": json!({"ok": ok}).to_string()});
        cairn_control_plane::evidence::register(&db, &ctx(at), &body).unwrap();
    };
    register("g-fresh", now - 10 * DAY, true);
    register("g-failed", now - 40 * DAY, true);
    register("g-failed", now - DAY, false);
    let out = replay_drill::due(&db, &s, now).unwrap();
    let ids = |k: &str| {
        out[k].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    // acme is on the default tier (solo: no drills), s on starter (none).
    assert_eq!(
        (ids("due"), ids("not_due")),
        (vec!["g-failed".to_string(), "g-new".into()], vec!["g-fresh".to_string()])
    );
    let failed = &out["due"][0];
    assert_eq!((failed["every"].as_str(), failed["interval_days"].as_i64()), (Some("monthly"), Some(31)));
    assert_eq!(failed["last_run_at"], rfc3339_millis(now - DAY));
    assert_eq!(failed["last_passed_at"], Value::Null, "the pass 40 days ago is out of the interval");
}

/// A store where another worker takes (and finishes) the first job the
/// drill writes, just before the drill's poisoned claim.
struct RacingWorker<'a> {
    db: &'a NativeSqlite,
    raced: Cell<bool>,
}

impl Sql for RacingWorker<'_> {
    fn query(
        &self,
        sql: &str,
        params: &[cairn_spin::sql::SqlValue],
    ) -> Result<Vec<cairn_spin::sql::Row>, cairn_core::ApiError> {
        // A claim starts by reading the fairness cursor.
        if sql.starts_with("SELECT value FROM memory_derive_state") && !self.raced.replace(true) {
            self.db.exec(
                "UPDATE memory_outbox SET attempts = 1, published_at = '2027-01-16T08:00:00.000Z' \
                 WHERE scope LIKE '%drill-race' AND published_at IS NULL",
                &[],
            )?;
        }
        self.db.query(sql, params)
    }
}

#[test]
fn a_job_another_worker_takes_first_is_left_to_it_and_the_drill_writes_another() {
    let db = store();
    let racing = RacingWorker { db: &db, raced: Cell::new(false) };
    let r = drill(&racing, &WordHash, json!({"tenant_id": "acme", "run_id": "race"})).unwrap();
    assert_eq!(r["ok"], true, "{r:#}");
    let inject = &r["steps"][0]["detail"];
    assert_eq!(inject["writes"], 2, "{r:#}");
    assert_eq!(inject["jobs_taken_by_other_workers"].as_array().unwrap().len(), 1);
    assert_eq!(r["steps"][1]["detail"]["dead_letter_ids"], json!([inject["job_id"]]));
}
