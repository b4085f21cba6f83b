//! The wasm adapter. One component, three entries:
//! - Spin's cron trigger calls `handle-cron-event` (`fermyon:spin-cron@2.0.0`):
//!   a derivation tick, or the weekly governance schedule on the manifest
//!   component whose `cron_job` variable says so;
//! - HTTP (`spin-sdk`): `/v1/admin/derive/{status,tick,rebuild}`,
//!   `/v1/admin/control/outbox[/replay]`,
//!   `/v1/admin/control/consistency-check` and
//!   `/v1/admin/control/health-gate` and
//!   `/v1/admin/derive/governance-schedule`, all behind the admin token;
//! - the `cairn:derive/derive` export, which `cairn job ...` calls directly.

use cairn_control_plane::placement;
use cairn_core::ApiError;
use cairn_derive::embedder::{EmbedFailure, Embedder};
use cairn_derive::http_routes::{DeriveRoute, match_route};
use cairn_derive::outbox_admin::{self, Caller};
use cairn_derive::settings::{DeriveSettings, EMBEDDING_MODEL};
use cairn_derive::tick::{self, TickOptions};
use cairn_spin::store::{self, Store};
use cairn_spin::wasi_env::{now_ms, random_uuid};
use serde_json::Value;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

wit_bindgen::generate!({
    world: "cairn:derive/derive-worker",
    path: "../../wit",
    with: {
        "spin:sqlite/sqlite@3.0.0": cairn_spin::bindings::spin::sqlite::sqlite,
        "spin:postgres/postgres@4.0.0": cairn_spin::bindings::spin::postgres::postgres,
        "fermyon:spin/variables@2.0.0": cairn_spin::bindings::fermyon::spin::variables,
        "fermyon:spin/llm@2.0.0": cairn_spin::bindings::fermyon::spin::llm,
        "cairn:common/types@0.1.0": generate,
        "fermyon:spin-cron/cron-types@2.0.0": generate,
    },
});

use exports::cairn::derive::derive::{CallContext, ComponentInfo, Guest as DeriveGuest};

fn settings() -> DeriveSettings {
    DeriveSettings::from_lookup(cairn_spin::variables::get)
}

/// `fermyon:spin/llm` `generate-embeddings`, model `all-minilm-l6-v2`.
struct SpinEmbedder {
    label: String,
}

impl SpinEmbedder {
    fn new(s: &DeriveSettings) -> SpinEmbedder {
        let provider = s.kernel.embedding_provider.clone().unwrap_or_else(|| "none".into());
        let label = cairn_spin::variables::get("embedding_model_label")
            .unwrap_or_else(|| format!("{provider}:{EMBEDDING_MODEL}"));
        SpinEmbedder { label }
    }
}

impl Embedder for SpinEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        cairn_spin::embeddings::generate(EMBEDDING_MODEL, texts)
            .map_err(|f| EmbedFailure { retryable: f.retryable, message: f.message })
    }
    fn model_name(&self) -> String {
        self.label.clone()
    }
}

/// The home store, migrated.
fn open() -> Result<Store, ApiError> {
    let db = store::open()?;
    cairn_derive::ensure_schemas(&db, &now_text())?;
    Ok(db)
}

fn now_text() -> String {
    cairn_core::time_fmt::rfc3339_millis(now_ms())
}

/// A store a tier places tenants in, migrated: it holds the kernel's
/// schema only (the control plane is the home store's).
fn apart_migrated(db: Store) -> Result<Store, ApiError> {
    cairn_derive::ensure_apart_schema(&db, &now_text())?;
    Ok(db)
}

/// The home store, and the store of a tenant's memories when its tier
/// places it apart (`cairn_core::placement`).
struct TenantStores {
    home: Store,
    apart: Option<Store>,
}

impl TenantStores {
    /// Where the tenant's memories are.
    fn memories(&self) -> &Store {
        self.apart.as_ref().unwrap_or(&self.home)
    }

    /// The home store when the memories are apart from it.
    fn home_if_apart(&self) -> Option<&dyn cairn_spin::sql::Sql> {
        self.apart.as_ref().map(|_| &self.home as &dyn cairn_spin::sql::Sql)
    }
}

/// [`TenantStores`] of a tenant (`None`: the default tenant), migrated
/// when `migrate` (the read-only checks do not migrate, except that
/// finding a placed tenant's tier brings the home control schema current).
fn open_for(tenant: Option<String>, migrate: bool) -> Result<TenantStores, ApiError> {
    let home = if migrate { open()? } else { store::open()? };
    let apart = placement::tenant_store(&home, || tenant)?;
    let apart = if migrate { apart.map(apart_migrated).transpose()? } else { apart };
    Ok(TenantStores { home, apart })
}

/// The tenant a parsed body names.
fn tenant_in(body: &Value) -> Option<String> {
    body.get("tenant_id").and_then(Value::as_str).map(str::to_string)
}

fn parse(body: &str) -> Result<Value, ApiError> {
    cairn_derive::parse_body(body)
}

/// One tick of every store in use (the home store first; the options,
/// such as `max_jobs`, apply to each), reported as their sum.
fn run_tick(body: &Value) -> Result<Value, ApiError> {
    let s = settings();
    let opts = TickOptions::parse(body, &s)?;
    let embedder = SpinEmbedder::new(&s);
    let mut stores = placement::all_stores()?.into_iter();
    let home = stores.next().expect("the home store comes first");
    cairn_derive::ensure_schemas(&home, &now_text())?;
    let mut report = tick::tick(&home, None, &s, &embedder, &opts, &now_ms, random_uuid)?;
    let mut count = 1;
    for db in stores {
        let db = apart_migrated(db)?;
        report.absorb(tick::tick(&db, Some(&home), &s, &embedder, &opts, &now_ms, random_uuid)?);
        count += 1;
    }
    let mut out = report.to_json();
    out["stores"] = count.into();
    Ok(out)
}

fn replay(body: &Value, actor: &str, request_id: &str) -> Result<Value, ApiError> {
    let stores = open_for(tenant_in(body), true)?;
    let caller = Caller { actor, request_id: Some(request_id), event_id: random_uuid() };
    outbox_admin::replay(stores.memories(), stores.home_if_apart(), &settings(), body, &caller, now_ms())
}

fn rebuild(body: &Value) -> Result<Value, ApiError> {
    let stores = open_for(tenant_in(body), true)?;
    let (db, s) = (stores.memories(), settings());
    let mut out = cairn_derive::rebuild::rebuild(db, &s, body, now_ms())?;
    out["pending_jobs"] = cairn_derive::rebuild::pending_in_scope(db, &s, body)?.into();
    Ok(out)
}

/// The consistency check: read-only, so the schema is not migrated first
/// (a database behind this build is reported, not changed).
/// It checks the store of the tenant the body names (home unless placed
/// apart), or the home store when it names none.
fn consistency_check(body: &Value) -> Result<Value, ApiError> {
    let stores = open_for(tenant_in(body), false)?;
    let s = settings();
    let limits = cairn_consistency::options::OutboxLimits {
        max_attempts: s.max_attempts,
        claim_timeout_ms: s.claim_timeout_ms,
    };
    // `register: true` records the report in the evidence registry.
    let mut body = body.clone();
    let register = body.as_object_mut().and_then(|o| o.remove("register")).and_then(|v| v.as_bool()).unwrap_or(false);
    let opts = cairn_consistency::Options::parse(&body, &s.kernel.defaults, limits, now_ms())?;
    let mut report = cairn_consistency::run(stores.memories(), &opts)?.to_json();
    if register {
        let content = report.to_string();
        let tenant = tenant_in(&body);
        report["evidence_id"] = with_admin_ctx(&random_uuid(), now_ms(), |db, ctx| {
            let artifact = cairn_control_plane::evidence::Artifact {
                kind: "consistency_check",
                tenant_id: tenant.as_deref(),
                period_start: None,
                period_end: Some(ctx.now()),
                producer: "cairn job consistency-check",
                content_type: "application/json",
                content: &content,
            };
            let id = ctx.uuid();
            cairn_spin::sql::write_txn(db, |db| {
                cairn_control_plane::schema::ensure(db, &ctx.now())?;
                cairn_control_plane::evidence::insert(db, ctx, "operator", &id, &artifact)
            })?;
            Ok(Value::String(id))
        })?;
    }
    Ok(report)
}

/// The health gate (read-only like the check), probing the embedder with
/// one text.
fn health_gate(body: &Value) -> Result<Value, ApiError> {
    let stores = open_for(tenant_in(body), false)?;
    let probe = || {
        cairn_spin::embeddings::generate(EMBEDDING_MODEL, &["cairn health gate probe".to_string()])
            .map(|v| v.first().map_or(0, Vec::len))
            .map_err(|f| f.message)
    };
    let (db, home) = (stores.memories(), stores.home_if_apart());
    Ok(cairn_consistency::health::run(db, home, &settings(), body, now_ms(), &probe)?.json)
}

/// The weekly governance report (read-only): the tenant's store for its
/// scopes, the home store for audit events, telemetry and tiers.
fn governance_weekly_report(body: &Value) -> Result<Value, ApiError> {
    let stores = open_for(tenant_in(body), false)?;
    let s = settings();
    let src = cairn_governance::snapshot::Sources {
        db: stores.memories(),
        control: stores.home_if_apart().unwrap_or(stores.memories()),
        defaults: &s.kernel.defaults,
        tier_profiles: s.tier_profiles.as_ref(),
        default_tier: &s.default_tier,
        billing_disabled: s.billing_disabled,
    };
    Ok(cairn_governance::weekly_report(&src, body, now_ms())?.to_json())
}

/// Runs `f` with the home store and the control plane's call context at
/// `now_ms` (placed tenants' stores open through the tiers' placements).
fn with_admin_ctx<T>(
    request_id: &str,
    now_ms: i64,
    f: impl FnOnce(&Store, &cairn_control_plane::admin::AdminCtx) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let db = store::open()?;
    let open_tenant_store = |tenant: &str| placement::boxed_tenant_store(&db, tenant);
    let var = |k: &str| cairn_spin::variables::get(k);
    let profiles = var("tier_profiles");
    let default_tier = var("default_tier").unwrap_or_else(|| "solo".into());
    let default_tenant = var("memory_tenant_id").unwrap_or_else(|| "default".into());
    let ctx = cairn_control_plane::admin::AdminCtx {
        request_id,
        now_ms,
        random: &cairn_spin::wasi_env::random,
        tier_profiles: profiles.as_deref(),
        default_tier: &default_tier,
        billing_disabled: var("billing").is_some_and(|b| b.trim() == "disabled"),
        default_tenant_id: &default_tenant,
        // Loopback targets (a local sidecar, tests) only when the operator says so.
        alert_loopback_targets: cairn_spin::variables::get_bool("alert_loopback_targets", false),
        tenant_store: Some(&open_tenant_store),
        tier_store: None,
    };
    f(&db, &ctx)
}

/// The control-plane verbs derivation runs for the embedding, with the
/// control plane's context: alert dispatch planned and recorded here (the
/// host sends: `cairn job alert-dispatch`) and the key-usage anomaly job.
/// `verb`: plan, record or key-usage-anomaly.
fn control_verb(verb: &str, body: &Value, request_id: &str) -> Result<Value, ApiError> {
    with_admin_ctx(request_id, now_ms(), |db, ctx| match verb {
        "plan" => cairn_control_plane::alerts::plan(db, ctx, body),
        "key-usage-anomaly" => cairn_control_plane::key_usage::anomaly_report(db, ctx, body),
        _ => cairn_control_plane::alerts::record(db, ctx, body),
    })
}

/// The replay drill of `{tenant_id, run_id?}` (the deployment's embedder
/// is its fix; the result is registered as evidence), or with `{due:
/// true}` the tenants whose drill is due.
fn replay_drill(body: &Value, request_id: &str) -> Result<Value, ApiError> {
    let s = settings();
    if body.get("due").and_then(Value::as_bool) == Some(true) {
        let db = open()?;
        return cairn_derive::replay_drill::due(&db, &s, now_ms());
    }
    let embedder = SpinEmbedder::new(&s);
    let sleep = |ms: i64| std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
    let env = cairn_derive::replay_drill::Env {
        settings: &s,
        embedder: &embedder,
        clock: &now_ms,
        sleep: &sleep,
        uuid: &random_uuid,
    };
    with_admin_ctx(request_id, now_ms(), |db, ctx| cairn_derive::replay_drill::run(db, ctx, &env, body))
}

/// The weekly governance schedule at `now_ms` (the cron trigger's time, or
/// the clock): `{report_week?, include_files?}`
/// ([`cairn_governance::schedule::ScheduleRequest`]).
fn governance_schedule(body: &Value, request_id: &str, now_ms: i64) -> Result<Value, ApiError> {
    let s = settings();
    let req = cairn_governance::schedule::ScheduleRequest::parse(body, now_ms)?;
    with_admin_ctx(request_id, now_ms, |db, ctx| {
        let src = cairn_governance::schedule::ScheduleSources {
            home: db,
            defaults: &s.kernel.defaults,
            tier_profiles: s.tier_profiles.as_ref(),
            default_tier: &s.default_tier,
            billing_disabled: s.billing_disabled,
        };
        cairn_governance::schedule::run(&src, ctx, req)
    })
    .and_then(|mut out| {
        out["compliance"] = compliance_packages(&out["made"], request_id, now_ms)?;
        out["drills"] = scheduled_drills(request_id, now_ms)?;
        Ok(out)
    })
}

/// The compliance half of each compliance evidence package the schedule
/// just made (`governance.report: compliance_evidence_package`): the
/// tenant's controls judged and registered beside its weekly report.
fn compliance_packages(made: &Value, request_id: &str, now_ms: i64) -> Result<Value, ApiError> {
    let controls = cairn_spin::variables::get("compliance_controls")
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object);
    let mut out = Vec::new();
    for r in made.as_array().into_iter().flatten().filter(|r| r["profile"] == "compliance_evidence_package") {
        let tenant = r["tenant_id"].as_str().unwrap_or_default();
        let Some(controls) = &controls else {
            out.push(serde_json::json!({"tenant_id": tenant, "ok": false, "error": "no compliance_controls configured"}));
            continue;
        };
        let body = serde_json::json!({"tenant_id": tenant, "controls": controls, "register": true});
        match with_admin_ctx(request_id, now_ms, |db, ctx| cairn_governance::compliance::run(db, ctx, &body)) {
            Ok(rep) => out.push(serde_json::json!({"tenant_id": tenant, "ok": rep["ok"], "summary": rep["summary"],
                                                   "evidence_id": rep["evidence_id"]})),
            Err(e) => out.push(serde_json::json!({"tenant_id": tenant, "ok": false, "error": e.code, "message": e.message})),
        }
    }
    Ok(Value::Array(out))
}

/// A failed drill is tried again a day later, not at every run.
const DRILL_RETRY_MS: i64 = 86_400_000;

/// The replay drills the tiers' `ops.replay_drill` make due (no passing
/// drill within the interval, and no attempt in the last day), run now:
/// each tenant's outcome and its evidence.
fn scheduled_drills(request_id: &str, now_ms: i64) -> Result<Value, ApiError> {
    let s = settings();
    let due = cairn_derive::replay_drill::due(&open()?, &s, now_ms)?;
    let mut ran = Vec::new();
    for t in due["due"].as_array().into_iter().flatten() {
        let last = t["last_run_at"].as_str().and_then(cairn_core::time_fmt::parse_rfc3339_millis);
        if last.is_some_and(|at| now_ms - at < DRILL_RETRY_MS) {
            continue;
        }
        let tenant = t["tenant_id"].as_str().unwrap_or_default();
        match replay_drill(&serde_json::json!({"tenant_id": tenant}), request_id) {
            Ok(r) => ran.push(serde_json::json!({"tenant_id": tenant, "ok": r["ok"], "failed_step": r["failed_step"],
                                                  "evidence_id": r["evidence_id"]})),
            Err(e) => ran.push(serde_json::json!({"tenant_id": tenant, "ok": false, "error": e.code, "message": e.message})),
        }
    }
    Ok(Value::Array(ran))
}

/// A step of `cairn job migrate-store` on this instance's store (migrated
/// first, so a fresh destination gets its schema).
fn tenant_copy(body: &Value, request_id: &str) -> Result<Value, ApiError> {
    let db = open()?;
    let default_tenant = settings().kernel.defaults.tenant_id;
    let ctx = cairn_tenant_copy::CallCtx {
        default_tenant: &default_tenant,
        request_id,
        event_id: random_uuid(),
        now: cairn_core::time_fmt::rfc3339_millis(now_ms()),
    };
    cairn_tenant_copy::handle(&db, body, &ctx)
}

// ---- HTTP ----

fn route(req: &Request, request_id: &str) -> Result<Value, ApiError> {
    let presented = req.header("x-admin-token").and_then(|h| h.as_str());
    cairn_core::admin_token::check(cairn_spin::variables::get("admin_token").as_deref(), presented)?;
    let body = || cairn_derive::parse_body_bytes(req.body());
    let query = || cairn_core::encoding::parse_query(req.query());
    let (method, path) = (req.method().to_string(), req.path().to_string());
    match match_route(&method, &path) {
        Ok(DeriveRoute::OutboxStatus) => {
            let q = query();
            outbox_admin::status(open_for(placement::query_tenant(&q), true)?.memories(), &settings(), &q, now_ms())
        }
        Ok(DeriveRoute::Tick) => run_tick(&body()?),
        Ok(DeriveRoute::Rebuild) => rebuild(&body()?),
        Ok(DeriveRoute::OutboxReplay) => replay(&body()?, "admin_token", request_id),
        Ok(DeriveRoute::ConsistencyCheck) => consistency_check(&body()?),
        Ok(DeriveRoute::HealthGate) => health_gate(&body()?),
        Ok(DeriveRoute::GovernanceSchedule) => governance_schedule(&body()?, request_id, now_ms()),
        Err(allowed) if !allowed.is_empty() => Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("use {} for {path}", allowed.join(" or ")),
        )),
        Err(_) => Err(ApiError::not_found("not_found", format!("no route for {method} {path}"))),
    }
}

#[http_component]
fn handle(req: Request) -> impl IntoResponse {
    let rid = req.header("x-request-id").and_then(|h| h.as_str()).map(str::to_string).unwrap_or_else(random_uuid);
    let (status, body) = match route(&req, &rid) {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.to_body()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", rid)
        .body(body.to_string())
        .build()
}

// ---- cron ----

struct Derive;

impl Guest for Derive {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        // One wasm, two manifest components: `cron_job` says which schedule
        // this one is (Spin's cron event carries only the time).
        if cairn_spin::variables::get("cron_job").as_deref() == Some("governance_schedule") {
            let at_ms = (metadata.timestamp as i64).saturating_mul(1000);
            let out = governance_schedule(&Value::Object(Default::default()), &random_uuid(), at_ms)
                .map_err(|e| Error::Other(format!("{}: {}", e.code, e.message)))?;
            let n = |k: &str| out[k].as_array().map_or(0, Vec::len);
            if n("made") + n("deleted") + n("failed") > 0 {
                eprintln!(
                    "governance schedule {}: week={} made={} deleted={} failed={} skipped={}",
                    metadata.timestamp, out["report_week"].as_str().unwrap_or(""), n("made"), n("deleted"),
                    n("failed"), n("skipped"),
                );
            }
            return if out["ok"] == true { Ok(()) } else { Err(Error::Other(format!("governance schedule: {}", out["failed"]))) };
        }
        match run_tick(&Value::Object(Default::default())) {
            Ok(rep) => {
                // One line per tick that did something (the host shows guests' stderr).
                let n = |k: &str| rep[k].as_i64().unwrap_or(0);
                if n("claimed") > 0 || n("swept_dead_letter") > 0 {
                    eprintln!(
                        "derive cron tick {}: claimed={} done={} retrying={} dead_lettered={} claims_lost={} nodes_embedded={} topic_runs={} ms={}",
                        metadata.timestamp,
                        n("claimed"),
                        n("done"),
                        n("retrying"),
                        n("dead_lettered") + n("swept_dead_letter"),
                        n("claims_lost"),
                        rep["embed"]["nodes_embedded"].as_i64().unwrap_or(0),
                        rep["topic_cluster"]["runs"].as_i64().unwrap_or(0),
                        n("elapsed_ms"),
                    );
                }
                Ok(())
            }
            Err(e) => Err(Error::Other(format!("{}: {}", e.code, e.message))),
        }
    }
}

// ---- cairn:derive/derive ----

fn to_wit(e: ApiError) -> cairn::common::types::Error {
    cairn::common::types::Error {
        status: e.status,
        code: e.code,
        message: e.message,
        details: e.details.map(|d| d.to_string()),
    }
}

impl DeriveGuest for Derive {
    fn info() -> ComponentInfo {
        ComponentInfo {
            name: "derive".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version: cairn_derive::schema_version() as u32,
        }
    }
    fn tick(_ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| run_tick(&b)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn outbox_status(_ctx: CallContext, query: Vec<(String, String)>) -> Result<String, cairn::common::types::Error> {
        open_for(placement::query_tenant(&query), true)
            .and_then(|db| outbox_admin::status(db.memories(), &settings(), &query, now_ms()))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn outbox_replay(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request)
            .and_then(|b| replay(&b, "operator", &ctx.request_id))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn rebuild_derived(_ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| rebuild(&b)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn consistency_check(_ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| consistency_check(&b)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn health_gate(_ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| health_gate(&b)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn governance_weekly_report(_ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| governance_weekly_report(&b)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn governance_schedule(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request)
            .and_then(|b| governance_schedule(&b, &ctx.request_id, now_ms()))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn compliance_report(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request)
            .and_then(|b| with_admin_ctx(&ctx.request_id, now_ms(), |db, c| cairn_governance::compliance::run(db, c, &b)))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn evidence_export(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request)
            .and_then(|b| with_admin_ctx(&ctx.request_id, now_ms(), |db, c| cairn_control_plane::evidence::export(db, c, &b)))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn evidence_publish(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request)
            .and_then(|b| with_admin_ctx(&ctx.request_id, now_ms(), |db, c| cairn_control_plane::evidence_publish::handle(db, c, &b)))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
    fn evidence_verify(ctx: CallContext, _request: String) -> Result<String, cairn::common::types::Error> {
        with_admin_ctx(&ctx.request_id, now_ms(), |db, c| {
            cairn_control_plane::schema::ensure(db, &c.now())?;
            cairn_control_plane::evidence::verify(db, c)
        })
        .map(|v| cairn_core::json_text(&v))
        .map_err(to_wit)
    }
    fn replay_drill(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| replay_drill(&b, &ctx.request_id)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn alert_plan(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| control_verb("plan", &b, &ctx.request_id)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn alert_record(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| control_verb("record", &b, &ctx.request_id)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn key_usage_anomaly(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| control_verb("key-usage-anomaly", &b, &ctx.request_id)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn tenant_copy(ctx: CallContext, request: String) -> Result<String, cairn::common::types::Error> {
        parse(&request).and_then(|b| tenant_copy(&b, &ctx.request_id)).map(|v| cairn_core::json_text(&v)).map_err(to_wit)
    }
    fn telemetry_retention(_ctx: CallContext, _request: String) -> Result<String, cairn::common::types::Error> {
        open()
            .and_then(|db| cairn_derive::retention::purge_telemetry(&db, &settings(), now_ms()))
            .map(|v| cairn_core::json_text(&v))
            .map_err(to_wit)
    }
}

export!(Derive);
