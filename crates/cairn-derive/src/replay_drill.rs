//! The dead-letter replay drill (issue 18, step 5): the runbook of
//! docs/operations.md ("The replay drill") run end to end on a live store,
//! in a scope of its own, timed, its result registered as evidence.
//!
//! A drill of tenant T with run id R works in scope `drill-R` of T and
//! touches no other scope's jobs:
//!
//! 1. `inject`: writes one event memory there (the real write path, so an
//!    `embed_nodes` job exists) and runs that job's first attempt under an
//!    injected embedder outage with the attempt limit at 1 — the poison job
//!    dead-letters exactly as `outbox::fail` dead-letters any job whose
//!    attempts ran out (`max_attempts_exceeded: …`, its node `failed`);
//! 2. `dead_letter`: the job is dead-lettered and its node failed;
//! 3. `fix`: the fix is the deployment's real embedder: it must answer a
//!    probe with vectors of the tier's dimension;
//! 4. `dry_run`: a replay preview of exactly the scope's dead letters
//!    (`outbox_admin::replay`, an `outbox.replay.preview` audit event);
//! 5. `replay`: the replay itself (`outbox.replay`);
//! 6. `derive`: derivation ticks of the drill scope (the worker's settings,
//!    no retention pass) until its jobs are done, a job fails again, or the
//!    bounds (ticks, time) are spent;
//! 7. `check`: every job of the scope is done, its node embedded (status
//!    `ready`, a stored vector) and its chain verifies;
//! 8. `cleanup` (pass or fail): the scope is erased like a torn-down
//!    tenant's (`erasure::erase_scope`: an `erase` commit, tombstones, its
//!    open jobs deleted), so no drill memory is recalled and no drill dead
//!    letter is left for the health gate; its chain still verifies.
//!
//! The drill stops at the first failing step (cleanup still runs). Its
//! result `{ok, tenant_id, scope, run_id, started_at, finished_at, steps:
//! [{name, ok, ms, detail, error?}], failed_step?, error?, total_ms,
//! evidence_id}` is registered, pass or fail, as evidence of kind
//! `replay_drill` for the tenant (producer `replay_drill`). Its audit
//! events have actor `replay_drill`, which the health gate does not count
//! as a decision on the tenant's real dead letters.
//!
//! [`due`] lists the tenants whose tier's `ops.replay_drill` (`monthly`…)
//! asks for a drill that no passing one answers yet.

use crate::embedder::{EmbedFailure, Embedder};
use crate::outbox::{self, ClaimFilter};
use crate::outbox_admin::{self, Caller};
use crate::settings::DeriveSettings;
use crate::tick::{self, TickOptions};
use cairn_control_plane::admin::AdminCtx;
use cairn_control_plane::evidence::{self, Artifact};
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::tenant_scope::TenantScope;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, rows_write_txn, scope_write_txn, write_txn};
use serde_json::{Value, json};

/// The evidence kind, its producer, and the actor of the drill's audit
/// events and erasure.
pub const KIND: &str = "replay_drill";
pub const ACTOR: &str = "replay_drill";

/// The drill's steps, in order.
pub const STEPS: [&str; 8] = ["inject", "dead_letter", "fix", "dry_run", "replay", "derive", "check", "cleanup"];

/// Writes tried when a concurrent worker claims the drill's job before the
/// poisoned attempt does (a server's cron ticks every second).
const INJECT_TRIES: usize = 3;
/// Bounds of the `derive` step.
const DERIVE_MAX_TICKS: i64 = 20;
const DERIVE_BUDGET_MS: i64 = 30_000;
/// Wait between ticks while the scope's jobs are held by another worker.
const DERIVE_PAUSE_MS: i64 = 200;

/// What the drill runs on, besides the stores.
pub struct Env<'a> {
    /// The worker's settings (attempts, backoff, the tier's dimension).
    pub settings: &'a DeriveSettings,
    /// The deployment's embedder: the drill's fix.
    pub embedder: &'a dyn Embedder,
    /// Wall-clock ms (steps are timed with it).
    pub clock: &'a dyn Fn() -> i64,
    /// Waits that many ms.
    pub sleep: &'a dyn Fn(i64),
    /// A fresh random id (claim tokens, audit events, the evidence id).
    pub uuid: &'a dyn Fn() -> String,
}

/// A drill request: `{tenant_id, run_id?}` (`run_id`:
/// `^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`, default `<UTC time>-<random>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub tenant_id: String,
    pub run_id: String,
}

impl Request {
    pub fn parse(body: &Value, env: &Env) -> Result<Request, ApiError> {
        let mut r = Reader::new();
        let o = Reader::root(body)?;
        let tenant = r.str_req(o, "tenant_id");
        let run_id = r.str_opt_len(o, "run_id", 1, 64);
        if run_id.as_deref().is_some_and(|id| !cairn_core::tenant_scope::is_valid_tenant_id(id)) {
            r.issue("run_id", "run_id must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$");
        }
        r.finish()?;
        let defaults = &env.settings.kernel.defaults;
        let tenant_id = cairn_core::tenant_scope::check_tenant(tenant.as_deref(), defaults)?;
        let run_id = run_id.unwrap_or_else(|| {
            // 20270104T000000Z-1a2b3c4d: sorts by time, unique enough.
            let t: String = rfc3339_millis((env.clock)()).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let day_time = format!("{}Z", &t[..15]);
            format!("{day_time}-{}", &(env.uuid)().replace('-', "")[..8])
        });
        Ok(Request { tenant_id, run_id })
    }

    /// The drill's scope.
    pub fn scope(&self) -> String {
        format!("drill-{}", self.run_id)
    }
}

/// Why a step failed: the message, and what was seen.
struct Failure {
    error: String,
    detail: Value,
}

impl Failure {
    fn new(error: impl Into<String>, detail: Value) -> Failure {
        Failure { error: error.into(), detail }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure { error: format!("{}: {}", e.code, e.message), detail: e.details.unwrap_or(Value::Null) }
    }
}

type Step = Result<Value, Failure>;

/// The steps run so far and the first failure.
struct Log<'a> {
    clock: &'a dyn Fn() -> i64,
    steps: Vec<Value>,
    failed: Option<(String, String)>,
}

impl Log<'_> {
    /// Runs step `name` unless an earlier one failed (`always`: even then);
    /// its value when it passed.
    fn step(&mut self, name: &str, always: bool, f: impl FnOnce() -> Step) -> Option<Value> {
        if self.failed.is_some() && !always {
            return None;
        }
        let t0 = (self.clock)();
        let out = f();
        let ms = (self.clock)() - t0;
        match out {
            Ok(detail) => {
                self.steps.push(json!({"name": name, "ok": true, "ms": ms, "detail": detail}));
                Some(detail)
            }
            Err(f) => {
                self.steps.push(json!({"name": name, "ok": false, "ms": ms, "detail": f.detail, "error": f.error}));
                self.failed.get_or_insert((name.to_string(), f.error));
                None
            }
        }
    }
}

/// An embedder that is down: the injected outage of the poisoned attempt.
struct Outage;

impl Embedder for Outage {
    fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        Err(EmbedFailure::retryable("replay drill: injected embedder outage"))
    }
    fn model_name(&self) -> String {
        "replay_drill:outage".into()
    }
}

/// The tenant must be the default one or provisioned and active.
fn check_tenant(home: &dyn Sql, s: &DeriveSettings, tenant_id: &str) -> Result<(), ApiError> {
    if tenant_id == s.kernel.defaults.tenant_id {
        return Ok(());
    }
    let row = cairn_control_plane::tenants::require_tenant(home, tenant_id)?;
    if row["status"] != "active" {
        return Err(ApiError::conflict("tenant_not_active", "a drill runs only for an active tenant")
            .with_details(json!({"tenant_id": tenant_id, "status": row["status"]})));
    }
    Ok(())
}

/// Runs the drill `body` asks for (see the module docs) on `home` (the
/// control plane; the tenant's memories too unless its tier places them
/// apart) and registers its result. A request that cannot start a drill
/// (bad input, unknown tenant, a run id used before) is an error; once
/// started, a failing drill is a result with `ok: false`.
pub fn run(home: &dyn Sql, ctx: &AdminCtx, env: &Env, body: &Value) -> Result<Value, ApiError> {
    let s = env.settings;
    let started = (env.clock)();
    crate::ensure_schemas(home, &rfc3339_millis(started))?;
    let req = Request::parse(body, env)?;
    check_tenant(home, s, &req.tenant_id)?;
    let data = ctx.tenant_data(home, &req.tenant_id)?;
    let db = data.db();
    let apart_home: Option<&dyn Sql> = if data.is_apart() { Some(home) } else { None };
    if data.is_apart() {
        crate::ensure_apart_schema(db, &rfc3339_millis(started))?;
    }
    let ts = cairn_core::tenant_scope::resolve(Some(&req.tenant_id), Some(&req.scope()), &s.kernel.defaults)?;
    let key = ts.scope_key.clone();
    if db.query_one("SELECT 1 FROM memory_commits WHERE scope = ? LIMIT 1", &[key.as_str().into()])?.is_some() {
        return Err(ApiError::conflict("drill_run_exists", "this run id was drilled before: use another")
            .with_details(json!({"run_id": req.run_id, "scope": ts.scope})));
    }

    let mut log = Log { clock: env.clock, steps: Vec::new(), failed: None };
    let injected = log.step("inject", false, || inject(db, env, &ts, &req.run_id));
    let job_id = injected.as_ref().and_then(|d| d["job_id"].as_i64()).unwrap_or(0);
    let node_id = injected.as_ref().and_then(|d| d["node_id"].as_str().map(str::to_string)).unwrap_or_default();
    let dead = log.step("dead_letter", false, || dead_lettered(db, &key, job_id, &node_id));
    let dead_ids: Vec<i64> = dead
        .as_ref()
        .and_then(|d| d["dead_letter_ids"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    log.step("fix", false, || fix(env));
    let replay_body = |dry_run: bool| {
        json!({"tenant_id": req.tenant_id, "ids": dead_ids, "limit": dead_ids.len().max(1), "dry_run": dry_run,
               "reason": format!("replay drill {}", req.run_id)})
    };
    log.step("dry_run", false, || replay(db, apart_home, env, ctx, &replay_body(true), &dead_ids));
    log.step("replay", false, || replay(db, apart_home, env, ctx, &replay_body(false), &dead_ids));
    log.step("derive", false, || derive(db, apart_home, env, &key));
    log.step("check", false, || check(db, &key, &node_id));
    log.step("cleanup", true, || cleanup(db, env, &key, &req.run_id));

    let finished = (env.clock)();
    let evidence_id = (env.uuid)();
    let mut result = json!({
        "ok": log.failed.is_none(),
        "kind": KIND,
        "tenant_id": req.tenant_id,
        "scope": ts.scope,
        "run_id": req.run_id,
        "started_at": rfc3339_millis(started),
        "finished_at": rfc3339_millis(finished),
        "steps": log.steps,
        "total_ms": finished - started,
        "evidence_id": evidence_id,
    });
    if let Some((step, error)) = &log.failed {
        result["failed_step"] = json!(step);
        result["error"] = json!(error);
    }
    let content = cairn_core::json_text(&result);
    let at = AdminCtx { now_ms: finished, ..*ctx };
    let artifact = Artifact {
        kind: KIND,
        tenant_id: Some(&req.tenant_id),
        period_start: Some(rfc3339_millis(started)),
        period_end: Some(rfc3339_millis(finished)),
        producer: ACTOR,
        content_type: "application/json",
        content: &content,
    };
    write_txn(home, |h| evidence::insert(h, &at, ACTOR, &evidence_id, &artifact))?;
    Ok(result)
}

/// Writes the drill's memory and runs its embed job's first attempt under
/// the outage, with one attempt allowed: the job dead-letters.
fn inject(db: &dyn Sql, env: &Env, ts: &TenantScope, run_id: &str) -> Step {
    let s = env.settings;
    let poisoned = DeriveSettings { max_attempts: 1, ..s.clone() };
    let filter = ClaimFilter { scope: Some(ts.scope_key.clone()), ..Default::default() };
    let mut lost = Vec::new();
    for n in 1..=INJECT_TRIES {
        let text = format!("replay drill {run_id}: a memory whose first embedding fails ({n})");
        let body = json!({
            "tenant_id": ts.tenant_id, "scope": ts.scope, "actor": ACTOR, "memory_lane": "shared",
            "input_text": text, "auto_embed": true,
            "nodes": [{"client_id": format!("replay-drill-{n}"), "type": "event", "text_summary": text}],
        });
        let spec = cairn_memory::write_request::parse(&body, &s.kernel)?;
        let written = cairn_memory::write_path::write(db, &s.kernel, &spec, (env.clock)())?;
        let commit_id = written["commit_id"].as_str().unwrap_or_default().to_string();
        let node_id = written["nodes"][0]["id"].as_str().unwrap_or_default().to_string();
        let job = db.query_one(
            "SELECT id FROM memory_outbox WHERE scope = ? AND commit_id = ? AND event_type = 'embed_nodes'",
            &[ts.scope_key.as_str().into(), commit_id.as_str().into()],
        )?;
        let Some(job_id) = job.map(|r| r.int(0)) else {
            return Err(Failure::new(
                "the write enqueued no embed job: no embedding provider is configured (embedding_provider)",
                json!({"commit_id": commit_id, "node_id": node_id}),
            ));
        };
        let token = (env.uuid)();
        let jobs = rows_write_txn(db, |db| outbox::claim(db, &poisoned, &filter, 1, (env.clock)(), &token))?;
        if jobs.len() != 1 || jobs[0].id != job_id {
            // Another worker took it first (or a job of an earlier try came
            // back): that memory is derived the normal way; write another.
            lost.push(job_id);
            continue;
        }
        let rep = crate::embed_job::run(db, &poisoned, &Outage, &jobs, env.clock)?;
        if rep.dead_lettered != 1 {
            return Err(Failure::new(
                "the poisoned attempt did not dead-letter the job",
                json!({"job_id": job_id, "report": format!("{rep:?}")}),
            ));
        }
        return Ok(json!({
            "commit_id": commit_id, "node_id": node_id, "job_id": job_id, "writes": n,
            "jobs_taken_by_other_workers": lost,
            "poison": {"embedder": Outage.model_name(), "max_attempts": 1},
        }));
    }
    Err(Failure::new(
        format!("another worker claimed the drill's job before the poisoned attempt, {INJECT_TRIES} times"),
        json!({"job_ids": lost}),
    ))
}

/// The injected job is dead-lettered and its node failed; the scope's dead
/// letters (the replay's ids).
fn dead_lettered(db: &dyn Sql, key: &str, job_id: i64, node_id: &str) -> Step {
    let job = db
        .query_one(
            "SELECT failed_at, failed_reason, attempts, last_error, published_at FROM memory_outbox WHERE id = ?",
            &[job_id.into()],
        )?
        .ok_or_else(|| Failure::new("the drill's job is gone", json!({"job_id": job_id})))?;
    let node =
        db.query_one("SELECT embedding_status FROM memory_nodes WHERE id = ?", &[node_id.into()])?.map(|r| r.string(0));
    let dead_ids: Vec<i64> = db
        .query(
            "SELECT id FROM memory_outbox WHERE scope = ? AND failed_at IS NOT NULL AND published_at IS NULL ORDER BY id",
            &[key.into()],
        )?
        .iter()
        .map(|r| r.int(0))
        .collect();
    let detail = json!({
        "job_id": job_id, "failed_at": job.opt_string(0), "failed_reason": job.opt_string(1),
        "attempts": job.int(2), "last_error": job.opt_string(3), "node_status": node, "dead_letter_ids": dead_ids,
    });
    if job.opt_string(0).is_none() || job.opt_string(4).is_some() {
        return Err(Failure::new("the drill's job is not dead-lettered", detail));
    }
    if node.as_deref() != Some("failed") {
        return Err(Failure::new("the drill's node is not marked failed", detail));
    }
    Ok(detail)
}

/// The fix: the real embedder answers with the tier's dimension.
fn fix(env: &Env) -> Step {
    let model = env.embedder.model_name();
    let want = env.settings.kernel.embedding_dims;
    match env.embedder.embed(&["replay drill probe".to_string()]) {
        Err(e) => Err(Failure::new(
            format!("the embedder still fails: {}", e.message),
            json!({"model": model, "retryable": e.retryable}),
        )),
        Ok(v) => {
            let dims = v.first().map_or(0, Vec::len);
            let detail = json!({"model": model, "dims": dims, "expected_dims": want});
            if dims != want {
                return Err(Failure::new(
                    format!("the embedder answers {dims} dimensions, the tier expects {want}"),
                    detail,
                ));
            }
            Ok(detail)
        }
    }
}

/// A replay (or its preview) of exactly `ids`.
fn replay(db: &dyn Sql, home: Option<&dyn Sql>, env: &Env, ctx: &AdminCtx, body: &Value, ids: &[i64]) -> Step {
    let dry_run = body["dry_run"] == true;
    let caller = Caller { actor: ACTOR, request_id: Some(ctx.request_id), event_id: (env.uuid)() };
    let out = outbox_admin::replay(db, home, env.settings, body, &caller, (env.clock)())?;
    let sample: Vec<i64> =
        out["jobs_sample"].as_array().into_iter().flatten().filter_map(|j| j["id"].as_i64()).collect();
    let detail = json!({
        "audit_event_id": out["audit_event_id"], "action": if dry_run { "outbox.replay.preview" } else { "outbox.replay" },
        "candidate_count": out["candidate_count"], "replayed_count": out["replayed_count"], "job_ids": sample,
    });
    let want_replayed = if dry_run { 0 } else { ids.len() as i64 };
    if out["candidate_count"].as_i64() != Some(ids.len() as i64)
        || out["replayed_count"].as_i64() != Some(want_replayed)
        || sample != ids
    {
        return Err(Failure::new(
            format!(
                "the {} did not select exactly the drill's {} dead letters",
                if dry_run { "preview" } else { "replay" },
                ids.len()
            ),
            detail,
        ));
    }
    Ok(detail)
}

/// The drill scope's jobs.
struct ScopeJobs {
    all: i64,
    done: i64,
    open: i64,
    dead: i64,
    /// Open ones that failed again since the replay (which clears errors).
    failed_again: i64,
    last_error: Option<String>,
}

impl ScopeJobs {
    fn counts(&self) -> Value {
        json!({"all": self.all, "done": self.done, "open": self.open, "dead_letter": self.dead})
    }
}

fn scope_jobs(db: &dyn Sql, key: &str) -> Result<ScopeJobs, ApiError> {
    let r = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE published_at IS NOT NULL), \
               count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL), \
               count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NOT NULL), \
               count(*) FILTER (WHERE published_at IS NULL AND failed_at IS NULL AND last_error IS NOT NULL), \
               max(last_error) FILTER (WHERE published_at IS NULL) \
             FROM memory_outbox WHERE scope = ?",
            &[key.into()],
        )?
        .expect("an aggregate returns a row");
    Ok(ScopeJobs {
        all: r.int(0),
        done: r.int(1),
        open: r.int(2),
        dead: r.int(3),
        failed_again: r.int(4),
        last_error: r.opt_string(5),
    })
}

/// Ticks of the drill scope until its jobs are done.
fn derive(db: &dyn Sql, home: Option<&dyn Sql>, env: &Env, key: &str) -> Step {
    // The worker's settings; retention is the cron's business, not the drill's.
    let s = DeriveSettings { retention_interval_ms: i64::MAX, ..env.settings.clone() };
    let opts = TickOptions {
        max_jobs: 100,
        batch_size: 16,
        budget_ms: 10_000,
        filter: ClaimFilter { scope: Some(key.to_string()), ..Default::default() },
    };
    let deadline = (env.clock)() + DERIVE_BUDGET_MS;
    let (mut ticks, mut claimed, mut done, mut embedded) = (0i64, 0i64, 0i64, 0i64);
    loop {
        let rep = tick::tick(db, home, &s, env.embedder, &opts, env.clock, || (env.uuid)())?;
        ticks += 1;
        claimed += rep.claimed;
        done += rep.done;
        embedded += rep.nodes_embedded;
        let jobs = scope_jobs(db, key)?;
        let detail = json!({
            "ticks": ticks, "claimed": claimed, "done": done, "nodes_embedded": embedded,
            "jobs": jobs.counts(), "last_error": jobs.last_error,
        });
        if jobs.open == 0 && jobs.dead == 0 {
            return Ok(detail);
        }
        if jobs.dead > 0 || jobs.failed_again > 0 {
            let why = jobs.last_error.unwrap_or_default();
            return Err(Failure::new(format!("a replayed job failed again: {why}"), detail));
        }
        if ticks >= DERIVE_MAX_TICKS || (env.clock)() >= deadline {
            return Err(Failure::new(
                format!("{} jobs of the drill scope are still open after {ticks} ticks", jobs.open),
                detail,
            ));
        }
        if rep.claimed == 0 {
            // Held by another worker (a server's cron): wait for it.
            (env.sleep)(DERIVE_PAUSE_MS);
        }
    }
}

/// Every job of the scope done, the node embedded, the chain verified.
fn check(db: &dyn Sql, key: &str, node_id: &str) -> Step {
    let jobs = scope_jobs(db, key)?;
    let node = db.query_one(
        "SELECT n.embedding_status, n.embedding_model, (SELECT count(*) FROM memory_derived_vectors v WHERE v.node_id = n.id) \
         FROM memory_nodes n WHERE n.id = ?",
        &[node_id.into()],
    )?;
    let (status, model, vectors) = node.map_or((None, None, 0), |r| (r.opt_string(0), r.opt_string(1), r.int(2)));
    let chain = cairn_memory::commit_log::verify_scope(db, key)?;
    let detail = json!({
        "jobs": jobs.counts(), "last_error": jobs.last_error,
        "node": {"id": node_id, "embedding_status": status, "embedding_model": model, "vectors": vectors},
        "chain": {"commits": chain.checked, "verified": chain.first_broken.is_none()},
    });
    if jobs.done != jobs.all || jobs.all == 0 {
        let missing = jobs.all - jobs.done;
        return Err(Failure::new(format!("{missing} of the drill scope's {} jobs are not done", jobs.all), detail));
    }
    if status.as_deref() != Some("ready") || vectors != 1 {
        return Err(Failure::new("the drill's node is not embedded", detail));
    }
    if let Some(b) = &chain.first_broken {
        return Err(Failure::new(format!("the drill scope's chain breaks at {}: {}", b.commit_id, b.reason), detail));
    }
    Ok(detail)
}

/// Erases the drill scope; its chain must still verify.
fn cleanup(db: &dyn Sql, env: &Env, key: &str, run_id: &str) -> Step {
    let now = rfc3339_millis((env.clock)());
    let reason = format!("replay drill {run_id}");
    let erased = scope_write_txn(db, key, |db| cairn_memory::erasure::erase_scope(db, key, ACTOR, &reason, &now))?;
    let chain = cairn_memory::commit_log::verify_scope(db, key)?;
    let detail = json!({
        "erased": {"nodes": erased.nodes, "edges": erased.edges, "commit_id": erased.commit_id},
        "chain": {"commits": chain.checked, "verified": chain.first_broken.is_none()},
    });
    if let Some(b) = &chain.first_broken {
        return Err(Failure::new(
            format!("the erased drill scope's chain breaks at {}: {}", b.commit_id, b.reason),
            detail,
        ));
    }
    Ok(detail)
}

/// Days between drills for an `ops.replay_drill` word; `None`: not
/// scheduled here (absent, `none`, `per_contract`, …).
pub fn interval_days(word: &str) -> Option<i64> {
    match word {
        "daily" => Some(1),
        "weekly" => Some(7),
        "monthly" => Some(31),
        "quarterly" => Some(92),
        _ => None,
    }
}

/// The provisioned, active tenants whose tier's `ops.replay_drill` asks
/// for a drill and that have no passing one (`ok: true`) registered within
/// its interval: `{ok, generated_at, due[], not_due[]}`, each `{tenant_id,
/// tier, every, interval_days, last_run_at, last_passed_at}`.
pub fn due(home: &dyn Sql, s: &DeriveSettings, now_ms: i64) -> Result<Value, ApiError> {
    crate::ensure_schemas(home, &rfc3339_millis(now_ms))?;
    let (mut due, mut not_due) = (Vec::new(), Vec::new());
    let tenants =
        home.query("SELECT tenant_id, tier FROM control_tenants WHERE status = 'active' ORDER BY tenant_id", &[])?;
    for t in &tenants {
        let tenant = t.string(0);
        let rule = cairn_control_plane::placement::TierRule {
            billing_disabled: s.billing_disabled,
            default_tier: &s.default_tier,
        };
        let tier = rule.tier_of(t.opt_string(1));
        let every = s
            .tier_profiles
            .as_ref()
            .and_then(|p| p.get("tiers")?.get(&tier)?.get("ops")?.get("replay_drill")?.as_str().map(str::to_string));
        let Some(days) = every.as_deref().and_then(interval_days) else { continue };
        let since = rfc3339_millis(now_ms - days * 86_400_000);
        let runs = home.query(
            "SELECT created_at, content FROM control_evidence WHERE kind = ? AND tenant_id = ? AND created_at >= ? \
             ORDER BY created_at DESC",
            &[KIND.into(), tenant.as_str().into(), since.into()],
        )?;
        let passed = |content: &str| serde_json::from_str::<Value>(content).is_ok_and(|v| v["ok"] == true);
        let last_passed = runs.iter().find(|r| passed(&r.string(1))).map(|r| r.string(0));
        let row = json!({"tenant_id": tenant, "tier": tier, "every": every, "interval_days": days,
                         "last_run_at": runs.first().map(|r| r.string(0)), "last_passed_at": last_passed});
        if last_passed.is_some() { not_due.push(row) } else { due.push(row) }
    }
    Ok(json!({"ok": true, "generated_at": rfc3339_millis(now_ms), "due": due, "not_due": not_due}))
}
