//! `cairn job ...`: operator verbs run in-process against a data dir (the
//! server may be running on it at the same time; SQLite coordinates).
//!
//! - `derive --once`: one derivation tick; without `--once`, ticks until
//!   the outbox has nothing eligible;
//! - `outbox-status`: the backlog (as `GET /v1/admin/control/outbox`);
//! - `outbox-replay`: re-queue dead-lettered jobs (as `POST
//!   /v1/admin/control/outbox/replay`; an audit event with actor `operator`);
//! - `rebuild-derived`: drop and recompute a scope's derived data, then
//!   drain its jobs;
//! - `consistency-check`: read-only integrity checks (as `POST
//!   /v1/admin/control/consistency-check`), exit 1 on findings with
//!   `--strict` / `--strict-warnings`;
//! - `health-gate`: the consistency check plus derivation's operability
//!   against the tier's thresholds (as `POST /v1/admin/control/health-gate`),
//!   exit 2 when it fails;
//! - `governance-weekly-report`: the weekly governance report
//!   (crates/cairn-governance) written to a directory as `summary.json`,
//!   `WEEKLY_STATUS.md` and `weekly_report.html`; exit 2 on failed checks
//!   with `--strict` / `--strict-warnings`;
//! - `replay-drill`: the dead-letter runbook drilled end to end in a scope
//!   of its own (crates/cairn-derive, replay_drill), registered as evidence;
//!   exit 2 when the drill fails;
//! - `migrate-store`: copy a tenant from a data dir's SQLite to PostgreSQL
//!   and verify the copy (`crate::migrate_store`).

use crate::AppArgs;
use crate::derive_calls::{self, Verb};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum JobCmd {
    /// Run derivation (embeddings, topics) over the outbox.
    Derive(DeriveJob),
    /// Show the outbox backlog: pending, retrying, dead-lettered jobs.
    OutboxStatus(StatusJob),
    /// Re-queue dead-lettered (or retrying) derivation jobs.
    OutboxReplay(ReplayJob),
    /// Drop one scope's derived data and recompute it from the log.
    RebuildDerived(RebuildJob),
    /// Read-only integrity checks of the data dir, in one read transaction
    /// (safe while a server runs on it); exit 1 on findings with --strict.
    ConsistencyCheck(ConsistencyJob),
    /// The health gate before a rollout: consistency, derivation backlog and
    /// dead letters, the embedder; exit 2 when it fails.
    HealthGate(HealthJob),
    /// Delete request telemetry past each tenant's tier retention
    /// (ops.telemetry_retention_hours, 720 by default; derivation's
    /// retention pass also runs it).
    TelemetryRetention(RetentionJob),
    /// Flag API keys whose recent traffic departs from their baseline
    /// (request spike, latency or error regression), for every tenant or
    /// one; exit 2 with --strict when any is found.
    KeyUsageAnomaly(KeyUsageJob),
    /// Evaluate alert rules (SLO at risk, dead letters) for every tenant
    /// with an active alert route and deliver (webhook, Slack, PagerDuty),
    /// recording each delivery.
    AlertDispatch(AlertJob),
    /// The weekly governance report of every tenant, one tenant or one
    /// scope: summary.json, WEEKLY_STATUS.md and weekly_report.html in
    /// --out-dir; exit 2 with --strict (error checks) or --strict-warnings.
    GovernanceWeeklyReport(GovernanceJob),
    /// The weekly governance schedule now (the manifest's `governance`
    /// cron runs it hourly): the last closed week's missing reports, one
    /// per tenant as its tier's governance profile says, archived in the
    /// evidence registry; then the retention pass over the archive.
    GovernanceSchedule(GovernanceScheduleJob),
    /// The tenant's compliance controls (config/controls.yaml) judged
    /// against the evidence registry and the audit log: pass, fail or
    /// no_evidence each, with the entry judged; exit 2 with --strict when
    /// any control does not pass.
    ComplianceReport(ComplianceJob),
    /// The evidence registry.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// The dead-letter replay drill of a tenant, in a scope of its own:
    /// inject a poison job, dead-letter it, fix (the configured embedder),
    /// preview and run the replay, derive, check, erase the scope; each
    /// step timed; the result registered as evidence replay_drill, pass or
    /// fail; exit 2 when it fails. --due lists whose drill the tiers'
    /// ops.replay_drill asks for; --all-due drills each of them.
    ReplayDrill(ReplayDrillJob),
    /// Copy one tenant (memory, commits, derived data, control-plane rows,
    /// audit events) from a data dir's SQLite to PostgreSQL, then verify
    /// both sides' chains and digests; exit 1 (destination cleaned) when
    /// anything differs.
    MigrateStore(crate::migrate_store::MigrateStoreJob),
}

#[derive(Args)]
pub struct AlertJob {
    /// Show what would be sent; send and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only this tenant's routes.
    #[arg(long)]
    tenant: Option<String>,
    /// Longest wait for one target.
    #[arg(long, default_value_t = 8000)]
    timeout_ms: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ComplianceJob {
    #[arg(long)]
    tenant: String,
    /// The controls document [default: config/controls.yaml beside the manifest].
    #[arg(long)]
    controls: Option<PathBuf>,
    /// Exit 2 when any control does not pass.
    #[arg(long)]
    strict: bool,
    /// Record the report in the evidence registry (kind compliance_report).
    #[arg(long)]
    register: bool,
    /// Print the report as JSON instead of one line per control.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand)]
pub enum EvidenceCmd {
    /// Verify the registry: the audit chain, and every artifact's bytes and
    /// facts against its registration (deletions must be recorded); exit 2
    /// naming each artifact that fails.
    Verify(EvidenceVerifyJob),
    /// Write a tenant's evidence (its artifacts and the deployment's,
    /// registered in the period) to a directory with evidence_index.json
    /// (path, sha256, size per file) and, given a key, an HMAC-SHA256
    /// signature of the index.
    Bundle(EvidenceBundleJob),
    /// Check a bundle directory: every file against the index, the index
    /// against its signature, each artifact against the registry's sha256;
    /// exit 2 naming each problem.
    VerifyBundle(VerifyBundleArgs),
    /// Build a tenant's bundle (as `bundle`) and POST it to a target
    /// through the publish queue: retried with backoff, dead-lettered after
    /// --max-attempts (exit 2), replayable with publish-replay.
    Publish(EvidencePublishJob),
    /// Attempt every publish job that is due now (those left by a stopped
    /// publish, or replayed).
    PublishWorker(PublishWorkerJob),
    /// Put dead-lettered publish jobs back in the queue (--dry-run lists them).
    PublishReplay(PublishReplayJob),
}

#[derive(Args)]
pub struct EvidencePublishJob {
    #[arg(long)]
    tenant: String,
    /// Where the bundle is POSTed (https://, public; loopback http:// only
    /// with --var alert_loopback_targets=true).
    #[arg(long)]
    target: String,
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    #[arg(long, default_value = crate::evidence_bundle::KEY_ENV)]
    signing_key_env: String,
    /// Attempts before the job is dead-lettered.
    #[arg(long, default_value_t = 5)]
    max_attempts: i64,
    /// Backoff after the first failure, doubled each time up to --retry-max-ms.
    #[arg(long, default_value_t = 30_000)]
    retry_base_ms: i64,
    #[arg(long, default_value_t = 900_000)]
    retry_max_ms: i64,
    /// Longest wait for the target's answer.
    #[arg(long, default_value_t = 20_000)]
    timeout_ms: u64,
    /// Queue the job and return without sending (publish-worker sends it).
    #[arg(long)]
    enqueue_only: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct PublishWorkerJob {
    #[arg(long, default_value_t = 20_000)]
    timeout_ms: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct PublishReplayJob {
    /// Every dead letter of this tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// These jobs (repeatable).
    #[arg(long = "job")]
    jobs: Vec<String>,
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct EvidenceBundleJob {
    #[arg(long)]
    tenant: String,
    /// Registered at or after (RFC 3339; default: the beginning).
    #[arg(long)]
    from: Option<String>,
    /// Registered before (RFC 3339; default: now).
    #[arg(long)]
    to: Option<String>,
    /// Where the bundle goes (an empty or new directory) [default:
    /// artifacts/evidence/<tenant>_<unix ms>].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The environment variable holding the signing key (unset: unsigned).
    #[arg(long, default_value = crate::evidence_bundle::KEY_ENV)]
    signing_key_env: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct VerifyBundleArgs {
    /// The bundle directory.
    dir: PathBuf,
    /// The environment variable holding the signing key.
    #[arg(long, default_value = crate::evidence_bundle::KEY_ENV)]
    signing_key_env: String,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReplayDrillJob {
    /// The tenant drilled.
    #[arg(long, required_unless_present_any = ["due", "all_due"], conflicts_with_all = ["due", "all_due"])]
    tenant: Option<String>,
    /// The run's id; the drill's scope is drill-<run id> [default: <UTC time>-<random>].
    #[arg(long, requires = "tenant")]
    run_id: Option<String>,
    /// List the tenants whose drill is due (their tier's ops.replay_drill,
    /// no passing drill within it); run nothing.
    #[arg(long, conflicts_with = "all_due")]
    due: bool,
    /// Drill every tenant whose drill is due.
    #[arg(long)]
    all_due: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct EvidenceVerifyJob {
    /// Print the verifier's JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct GovernanceScheduleJob {
    /// Make this closed ISO week's missing reports instead of the last
    /// closed week's (a backfill), e.g. 2026-W47.
    #[arg(long)]
    report_week: Option<String>,
    /// Also write each report made to <DIR>/<week>_<subject>/ (the
    /// archive in the database is the record; this is a file export).
    #[arg(long)]
    export_dir: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct GovernanceJob {
    /// Only this tenant's scopes (cross-tenant drift still spans every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this scope (the default tenant's without --tenant).
    #[arg(long)]
    scope: Option<String>,
    /// The ISO week reported, e.g. 2026-W48 (default: this week, up to now).
    #[arg(long)]
    report_week: Option<String>,
    /// Hours the window reaches back from the week's end (1..2160).
    #[arg(long, default_value_t = 168)]
    window_hours: i64,
    /// The run's id (default: <week>_<unix ms>).
    #[arg(long)]
    run_id: Option<String>,
    #[arg(long, default_value_t = 5)]
    tenant_drift_min_feedback: i64,
    #[arg(long, default_value_t = 0.95)]
    min_decision_link_coverage: f64,
    #[arg(long, default_value_t = 0.8)]
    min_recall_identity_coverage: f64,
    #[arg(long, default_value_t = 1.0)]
    min_private_owner_coverage: f64,
    #[arg(long, default_value_t = 20)]
    max_tenant_active_rule_count_drift: i64,
    #[arg(long, default_value_t = 0.3)]
    max_tenant_negative_ratio_drift: f64,
    /// Exit 2 when an error check fails.
    #[arg(long)]
    strict: bool,
    /// Exit 2 when any check fails.
    #[arg(long)]
    strict_warnings: bool,
    /// Where the documents go (default artifacts/governance/weekly/<week>_<run_id>).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Print summary.json instead of the check lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct RetentionJob {
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct KeyUsageJob {
    /// Only this tenant's keys (default: every tenant with keyed telemetry).
    #[arg(long)]
    tenant: Option<String>,
    /// The recent window, hours.
    #[arg(long, default_value_t = 24)]
    window_hours: i64,
    /// The baseline: the hours before the window.
    #[arg(long, default_value_t = 168)]
    baseline_hours: i64,
    /// Recent requests a key needs before it can be flagged.
    #[arg(long, default_value_t = 30)]
    min_requests: i64,
    /// Latency z-score that counts as a regression (0.5..100).
    #[arg(long, default_value_t = 3.0)]
    zscore_threshold: f64,
    /// Keys read per page.
    #[arg(long, default_value_t = 500)]
    limit: i64,
    /// Exit 2 when any anomaly is found.
    #[arg(long)]
    strict: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct Common {
    /// Data directory (the embedded SQLite database lives here).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = ".cairn")]
    data_dir: PathBuf,
    #[command(flatten)]
    app: AppArgs,
}

#[derive(Args)]
pub struct DeriveJob {
    /// Run one tick and stop (otherwise: tick until nothing is eligible).
    #[arg(long)]
    once: bool,
    /// Most jobs per tick.
    #[arg(long, default_value_t = 5000)]
    max_jobs: i64,
    /// Jobs per claimed batch.
    #[arg(long, default_value_t = 64)]
    batch_size: i64,
    /// Only this tenant's scopes (with --scope: that scope).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this scope (the default tenant's without --tenant).
    #[arg(long)]
    scope: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct StatusJob {
    #[arg(long)]
    tenant: Option<String>,
    /// Samples of this status: pending | retrying | dead_letter | done.
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: i64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ReplayJob {
    /// Tenant whose jobs to replay.
    #[arg(long)]
    tenant: Option<String>,
    /// Job ids to replay (comma-separated).
    #[arg(long, value_delimiter = ',')]
    ids: Vec<i64>,
    /// Statuses to replay: dead_letter, retrying (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "dead_letter")]
    statuses: Vec<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Keep the attempt counts (default: reset to 0).
    #[arg(long)]
    keep_attempts: bool,
    /// Show what would be replayed, change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, default_value = "manual_replay")]
    reason: String,
    /// Replay every tenant's jobs (needed without --tenant or --ids).
    #[arg(long)]
    all_tenants: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct RebuildJob {
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    scope: String,
    /// Only enqueue the recomputation (a running server's cron drains it).
    #[arg(long)]
    no_drain: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ConsistencyJob {
    /// Only this tenant's scopes (with --scope: that scope).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this scope (the default tenant's without --tenant).
    #[arg(long)]
    scope: Option<String>,
    /// Which checks: all | scope | cross_tenant.
    #[arg(long, default_value = "all", value_parser = ["all", "scope", "cross_tenant"])]
    check_set: String,
    /// full counts every finding; fast stops counting at 1000 per check.
    #[arg(long, default_value = "full", value_parser = ["full", "fast"])]
    mode: String,
    /// Rows shown per finding (1..200).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=200))]
    sample: i64,
    /// Exit 1 when an error-severity check finds anything.
    #[arg(long)]
    strict: bool,
    /// Exit 1 when any check (error or warning) finds anything.
    #[arg(long)]
    strict_warnings: bool,
    /// Print the whole report as JSON.
    #[arg(long)]
    json: bool,
    /// Record the report in the evidence registry (kind consistency_check).
    #[arg(long)]
    register: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct HealthJob {
    /// Only this tenant's scopes (its tier's thresholds apply).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this scope.
    #[arg(long)]
    scope: Option<String>,
    /// Which consistency checks: all | scope | cross_tenant.
    #[arg(long, default_value = "all", value_parser = ["all", "scope", "cross_tenant"])]
    consistency_check_set: String,
    /// Fail on warnings too (consistency warnings, the embedded share).
    #[arg(long)]
    strict_warnings: bool,
    /// Print the whole report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

/// The database of a data dir, which a read-only job must not create.
fn existing_database(data_dir: &std::path::Path) -> Result<()> {
    existing_database_of(data_dir, "--data-dir")
}

/// [`existing_database`], naming the option that gave `data_dir`.
pub(crate) fn existing_database_of(data_dir: &std::path::Path, option: &str) -> Result<()> {
    let db = data_dir.join(crate::sqlite::runtime_config::DEFAULT_DATABASE_FILE);
    if !db.exists() {
        bail!("no database at {} (is {option} right?)", db.display());
    }
    Ok(())
}

/// The gate's checks, one line each, then the verdict.
fn print_health(r: &Value) {
    for c in r["checks"].as_array().into_iter().flatten() {
        println!(
            "{:<5} {:<8} {:<26} {}",
            if c["pass"].as_bool() == Some(true) { "pass" } else { "FAIL" },
            c["severity"].as_str().unwrap_or(""),
            c["name"].as_str().unwrap_or(""),
            c["detail"]
        );
    }
    let reasons: Vec<&str> =
        r["fail_reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if reasons.is_empty() {
        println!("health gate: passed (tier {})", r["tier"].as_str().unwrap_or(""));
    } else {
        println!("health gate: FAILED: {}", reasons.join(", "));
    }
}

fn print_key_usage(r: &Value) {
    for a in r["anomalies"].as_array().into_iter().flatten() {
        let reasons: Vec<&str> = a["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        println!(
            "ANOMALY {:<20} {:<16} {:<12} {} (recent {}, traffic ×{}, latency z {})",
            a["tenant_id"].as_str().unwrap_or(""),
            a["api_key_prefix"].as_str().unwrap_or(""),
            a["endpoint"].as_str().unwrap_or(""),
            reasons.join(","),
            a["recent_total"],
            a["traffic_ratio"],
            a["latency_zscore"]
        );
    }
    println!(
        "key usage: {} anomalies in {} keys of {} tenants (window {} h, baseline {} h)",
        r["anomalies_count"], r["keys_checked"], r["tenants_checked"], r["window_hours"], r["baseline_hours"]
    );
}

/// The check's findings, one line each, then the summary.
fn print_consistency(r: &Value) {
    for c in r["checks"].as_array().into_iter().flatten() {
        let count = c["count"].as_i64().unwrap_or(0);
        if let Some(e) = c["error"].as_str() {
            println!("error    {:<46} could not run: {e}", c["name"].as_str().unwrap_or(""));
        } else if count > 0 {
            println!(
                "{:<8} {:<46} {count:>6}  {}",
                c["severity"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or(""),
                c["note"].as_str().unwrap_or("")
            );
            if let Some(first) = c["sample"].get(0) {
                println!("         e.g. {first}");
            }
        }
    }
    let s = &r["summary"];
    println!(
        "consistency check: {} errors, {} warnings ({} checks, set {}, mode {}) -> {}",
        s["errors"],
        s["warnings"],
        s["checks_run"],
        r["check_set"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        if r["ok"].as_bool() == Some(true) { "ok" } else { "FAILED" }
    );
}

/// A read-only report job (consistency check, health gate) on an existing
/// data dir: the report as JSON or its lines, then its `exit_code` (or
/// `failed_code` when it has none) as the process's.
async fn report_job(
    common: &Common,
    verb: Verb,
    as_json: bool,
    lines: fn(&Value),
    failed_code: i32,
    rid: &str,
) -> Result<()> {
    existing_database(&common.data_dir)?;
    let app = crate::load_app(&common.app, &common.data_dir).await?;
    let report = derive_calls::call_ok(&app, verb, rid).await?;
    if as_json {
        print(&report)?;
    } else {
        lines(&report);
    }
    let code = report["exit_code"].as_i64().map_or(failed_code, |c| c as i32);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Makes the report, writes its three documents to the out dir (created;
/// each file written whole, then renamed), prints its checks.
async fn governance_weekly_report(j: GovernanceJob, rid: &str) -> Result<()> {
    existing_database(&j.common.data_dir)?;
    let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
    let body = json!({
        "tenant_id": j.tenant, "scope": j.scope, "report_week": j.report_week, "window_hours": j.window_hours,
        "run_id": j.run_id, "tenant_drift_min_feedback": j.tenant_drift_min_feedback,
        "min_decision_link_coverage": j.min_decision_link_coverage,
        "min_recall_identity_coverage": j.min_recall_identity_coverage,
        "min_private_owner_coverage": j.min_private_owner_coverage,
        "max_tenant_active_rule_count_drift": j.max_tenant_active_rule_count_drift,
        "max_tenant_negative_ratio_drift": j.max_tenant_negative_ratio_drift,
        "strict": j.strict, "strict_warnings": j.strict_warnings,
    });
    let out = derive_calls::call_ok(&app, Verb::GovernanceWeeklyReport(body), rid).await?;
    let mut summary = out["summary"].clone();
    let dir = j.out_dir.unwrap_or_else(|| {
        PathBuf::from("artifacts/governance/weekly").join(format!(
            "{}_{}",
            summary["report_week"].as_str().unwrap_or(""),
            summary["run_id"].as_str().unwrap_or("")
        ))
    });
    summary["out_dir"] = json!(dir.display().to_string());
    let mut files = out["files"].clone();
    files["summary.json"] = json!(format!("{}\n", serde_json::to_string_pretty(&summary)?));
    write_documents(&dir, &files)?;
    if j.json {
        print(&summary)?;
    } else {
        for c in summary["checks"].as_array().into_iter().flatten() {
            println!(
                "{:<5} {:<8} {:<38} {}",
                if c["pass"] == true { "pass" } else { "FAIL" },
                c["severity"].as_str().unwrap_or(""),
                c["name"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or("")
            );
        }
        println!(
            "governance weekly report {}: {} -> {}",
            summary["report_week"].as_str().unwrap_or(""),
            if summary["ok"] == true { "pass" } else { "FAILED" },
            dir.display()
        );
    }
    let code = out["exit_code"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Runs the schedule once; prints what it made, skipped and deleted.
async fn governance_schedule(j: GovernanceScheduleJob, rid: &str) -> Result<()> {
    existing_database(&j.common.data_dir)?;
    let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
    let body = json!({"report_week": j.report_week, "include_files": j.export_dir.is_some()});
    let mut out = derive_calls::call_ok(&app, Verb::GovernanceSchedule(body), rid).await?;
    for made in out["made"].as_array_mut().into_iter().flatten() {
        let files = made.as_object_mut().and_then(|m| m.remove("files"));
        if let (Some(dir), Some(files)) = (&j.export_dir, files) {
            let subject = made["subject"].as_str().unwrap_or("").replace(':', "-");
            let sub = dir.join(format!("{}_{subject}", made["report_week"].as_str().unwrap_or("")));
            write_documents(&sub, &files)?;
            made["exported_to"] = json!(sub.display().to_string());
        }
    }
    print(&out)?;
    if out["ok"] != true {
        std::process::exit(1);
    }
    Ok(())
}

/// The controls document (YAML) as JSON.
fn load_controls(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading controls file {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing controls file {}", path.display()))
}

fn print_compliance(r: &Value) {
    for c in r["controls"].as_array().into_iter().flatten() {
        println!(
            "{:<11} {:<36} {}",
            c["status"].as_str().unwrap_or(""),
            c["id"].as_str().unwrap_or(""),
            c["why"].as_str().unwrap_or("")
        );
    }
    let s = &r["summary"];
    println!(
        "compliance {} (tier {}, controls {}): {} pass, {} fail, {} no evidence{}",
        r["tenant_id"].as_str().unwrap_or(""),
        r["tier"].as_str().unwrap_or(""),
        r["control_set"].as_str().unwrap_or("none"),
        s["pass"],
        s["fail"],
        s["no_evidence"],
        r["evidence_id"].as_str().map(|id| format!("; registered as evidence {id}")).unwrap_or_default()
    );
}

/// A drill's steps, one line each, then the verdict.
fn print_drill(r: &Value) {
    for st in r["steps"].as_array().into_iter().flatten() {
        let what = match st["error"].as_str() {
            Some(e) => format!("{e} {}", st["detail"]),
            None => st["detail"].to_string(),
        };
        println!(
            "{:<5} {:<12} {:>6} ms  {what}",
            if st["ok"] == true { "pass" } else { "FAIL" },
            st["name"].as_str().unwrap_or(""),
            st["ms"]
        );
    }
    let verdict = match r["failed_step"].as_str() {
        None => "passed".to_string(),
        Some(step) => format!("FAILED at {step}: {}", r["error"].as_str().unwrap_or("")),
    };
    println!(
        "replay drill {} (run {}, scope {}): {verdict} in {} ms; evidence {}",
        r["tenant_id"].as_str().unwrap_or(""),
        r["run_id"].as_str().unwrap_or(""),
        r["scope"].as_str().unwrap_or(""),
        r["total_ms"],
        r["evidence_id"].as_str().unwrap_or("")
    );
}

/// Runs the drill of `--tenant`, or of every due tenant (`--all-due`), or
/// lists the due ones (`--due`); exit 2 when a drill fails.
async fn replay_drill(j: ReplayDrillJob, rid: &str) -> Result<()> {
    existing_database(&j.common.data_dir)?;
    let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
    let tenants: Vec<String> = match &j.tenant {
        Some(t) => vec![t.clone()],
        None => {
            let due = derive_calls::call_ok(&app, Verb::ReplayDrill(json!({"due": true})), rid).await?;
            if j.due {
                return print(&due);
            }
            due["due"].as_array().into_iter().flatten().filter_map(|t| t["tenant_id"].as_str().map(str::to_string)).collect()
        }
    };
    let mut results = Vec::new();
    for tenant in &tenants {
        let body = json!({"tenant_id": tenant, "run_id": j.run_id});
        let r = derive_calls::call_ok(&app, Verb::ReplayDrill(body), rid).await?;
        if !j.json {
            print_drill(&r);
        }
        results.push(r);
    }
    let failed = results.iter().filter(|r| r["ok"] != true).count();
    if j.json {
        if j.tenant.is_some() { print(&results[0])? } else { print(&json!({"ok": failed == 0, "drills": results}))? }
    } else if j.tenant.is_none() {
        println!("replay drills: {} due, {failed} failed", tenants.len());
    }
    if failed > 0 {
        std::process::exit(2);
    }
    Ok(())
}

fn print_evidence_verify(r: &Value) {
    for f in r["failures"].as_array().into_iter().flatten() {
        println!(
            "FAIL {} {} {}",
            f["evidence_id"].as_str().unwrap_or(""),
            f["kind"].as_str().unwrap_or(""),
            f["reason"].as_str().unwrap_or("")
        );
    }
    println!(
        "evidence registry: {} ({} artifacts checked, {} deleted by retention, audit chain {})",
        if r["ok"] == true { "verified" } else { "FAILED" },
        r["checked"],
        r["deleted"],
        if r["audit_chain"]["ok"] == true { "ok" } else { "broken" }
    );
}

/// Writes each `{name: text}` document to `dir` (created), whole then renamed.
fn write_documents(dir: &std::path::Path, files: &Value) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in files.as_object().into_iter().flatten() {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text.as_str().unwrap_or("")).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

fn request_id() -> String {
    format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
    )
}

fn print(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(cmd: JobCmd) -> Result<()> {
    let rid = request_id();
    match cmd {
        JobCmd::MigrateStore(j) => crate::migrate_store::run(j, &rid).await,
        JobCmd::Derive(j) => {
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let mut body = json!({"max_jobs": j.max_jobs, "batch_size": j.batch_size});
            if let Some(s) = &j.scope {
                body["scope"] = json!(s);
            }
            if let Some(t) = &j.tenant {
                body["tenant_id"] = json!(t);
            }
            let mut total = json!({"ticks": 0, "claimed": 0, "done": 0, "retrying": 0, "dead_lettered": 0});
            loop {
                let rep = derive_calls::call_ok(&app, Verb::Tick(body.clone()), &rid).await?;
                for k in ["claimed", "done", "retrying", "dead_lettered"] {
                    total[k] = json!(total[k].as_i64().unwrap_or(0) + rep[k].as_i64().unwrap_or(0));
                }
                total["ticks"] = json!(total["ticks"].as_i64().unwrap_or(0) + 1);
                total["last_tick"] = rep.clone();
                if j.once || rep["claimed"].as_i64().unwrap_or(0) == 0 {
                    break;
                }
            }
            print(&total)
        }
        JobCmd::OutboxStatus(j) => {
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let mut q = vec![("limit".to_string(), j.limit.to_string())];
            if let Some(t) = j.tenant {
                q.push(("tenant_id".into(), t));
            }
            if let Some(s) = j.status {
                q.push(("status".into(), s));
            }
            print(&derive_calls::call_ok(&app, Verb::OutboxStatus(q), &rid).await?)
        }
        JobCmd::OutboxReplay(j) => {
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let body = json!({
                "tenant_id": j.tenant,
                "ids": if j.ids.is_empty() { Value::Null } else { json!(j.ids) },
                "statuses": j.statuses,
                "limit": j.limit,
                "reset_attempts": !j.keep_attempts,
                "dry_run": j.dry_run,
                "reason": j.reason,
                "allow_all_tenants": j.all_tenants,
            });
            print(&derive_calls::call_ok(&app, Verb::OutboxReplay(body), &rid).await?)
        }
        JobCmd::AlertDispatch(j) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let timeout = std::time::Duration::from_millis(j.timeout_ms.max(1));
            print(&crate::alert_sender::dispatch(&app, j.dry_run, j.tenant, timeout, &rid).await?)
        }
        JobCmd::GovernanceWeeklyReport(j) => governance_weekly_report(j, &rid).await,
        JobCmd::GovernanceSchedule(j) => governance_schedule(j, &rid).await,
        JobCmd::ComplianceReport(j) => {
            let path = j.controls.clone().unwrap_or_else(|| crate::config_beside(&j.common.app.manifest, "controls.yaml"));
            let body = json!({"tenant_id": j.tenant, "controls": load_controls(&path)?, "strict": j.strict,
                              "register": j.register});
            report_job(&j.common, Verb::ComplianceReport(body), j.json, print_compliance, 2, &rid).await
        }
        JobCmd::ReplayDrill(j) => replay_drill(j, &rid).await,
        JobCmd::Evidence(EvidenceCmd::Bundle(j)) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let body = json!({"tenant_id": j.tenant, "from": j.from, "to": j.to});
            let export = derive_calls::call_ok(&app, Verb::EvidenceExport(body), &rid).await?;
            let dir = j.out_dir.unwrap_or_else(|| crate::evidence_bundle::default_dir(&j.tenant));
            let key = crate::evidence_bundle::key_from_env(&j.signing_key_env);
            let bundle = crate::evidence_bundle::build(&export, key.as_deref())?;
            crate::evidence_bundle::write(&dir, &bundle)?;
            let index = &bundle.index;
            print(&json!({"ok": true, "dir": dir.display().to_string(), "files": index["files"].as_array().map_or(0, Vec::len),
                          "signed": key.is_some(), "registry_ok": index["registry_ok"]}))
        }
        JobCmd::Evidence(EvidenceCmd::Publish(j)) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let body = json!({"tenant_id": j.tenant, "from": j.from, "to": j.to});
            let export = derive_calls::call_ok(&app, Verb::EvidenceExport(body), &rid).await?;
            let key = crate::evidence_bundle::key_from_env(&j.signing_key_env);
            let bundle = crate::evidence_bundle::build(&export, key.as_deref())?;
            let upload = bundle.upload();
            let enqueue = json!({
                "op": "enqueue", "tenant_id": j.tenant, "target": j.target, "payload": upload.to_string(),
                "index_sha256": upload["index_sha256"], "max_attempts": j.max_attempts,
                "retry_base_ms": j.retry_base_ms, "retry_max_ms": j.retry_max_ms,
            });
            let queued = derive_calls::call_ok(&app, Verb::EvidencePublish(enqueue), &rid).await?;
            let job_id = queued["job"]["job_id"].as_str().unwrap_or_default().to_string();
            if j.enqueue_only {
                return print(&queued);
            }
            let timeout = std::time::Duration::from_millis(j.timeout_ms.max(1));
            let job = crate::evidence_publisher::drive(&app, &rid, &job_id, timeout).await?;
            print(&json!({"ok": job["status"] == "succeeded", "job": job}))?;
            if job["status"] != "succeeded" {
                std::process::exit(2);
            }
            Ok(())
        }
        JobCmd::Evidence(EvidenceCmd::PublishWorker(j)) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let timeout = std::time::Duration::from_millis(j.timeout_ms.max(1));
            let jobs = crate::evidence_publisher::pass(&app, &rid, None, timeout).await?;
            print(&json!({"ok": true, "attempted": jobs.len(), "jobs": jobs}))
        }
        JobCmd::Evidence(EvidenceCmd::PublishReplay(j)) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let body = json!({"op": "replay", "tenant_id": j.tenant,
                              "job_ids": if j.jobs.is_empty() { Value::Null } else { json!(j.jobs) }, "dry_run": j.dry_run});
            print(&derive_calls::call_ok(&app, Verb::EvidencePublish(body), &rid).await?)
        }
        JobCmd::Evidence(EvidenceCmd::VerifyBundle(a)) => {
            let key = crate::evidence_bundle::key_from_env(&a.signing_key_env);
            let v = crate::evidence_bundle::verify(&a.dir, key.as_deref())?;
            if a.json {
                print(&v)?;
            } else {
                for p in v["problems"].as_array().into_iter().flatten() {
                    println!("FAIL {} {}", p["path"].as_str().unwrap_or(""), p["problem"].as_str().unwrap_or(""));
                }
                println!(
                    "evidence bundle {}: {} ({} files, signature {})",
                    a.dir.display(),
                    if v["ok"] == true { "verified" } else { "FAILED" },
                    v["files_checked"],
                    v["signature"].as_str().unwrap_or("")
                );
            }
            if v["ok"] != true {
                std::process::exit(2);
            }
            Ok(())
        }
        JobCmd::Evidence(EvidenceCmd::Verify(j)) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let report = derive_calls::call_ok(&app, Verb::EvidenceVerify, &rid).await?;
            if j.json { print(&report)? } else { print_evidence_verify(&report) }
            if report["ok"] != true {
                std::process::exit(2);
            }
            Ok(())
        }
        JobCmd::TelemetryRetention(j) => {
            existing_database(&j.common.data_dir)?;
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            print(&derive_calls::call_ok(&app, Verb::TelemetryRetention, &rid).await?)
        }
        JobCmd::KeyUsageAnomaly(j) => {
            let body = json!({
                "tenant_id": j.tenant, "window_hours": j.window_hours, "baseline_hours": j.baseline_hours,
                "min_requests": j.min_requests, "zscore_threshold": j.zscore_threshold, "limit": j.limit,
                "strict": j.strict,
            });
            report_job(&j.common, Verb::KeyUsageAnomaly(body), j.json, print_key_usage, 2, &rid).await
        }
        JobCmd::HealthGate(j) => {
            let body = json!({
                "tenant_id": j.tenant, "scope": j.scope, "consistency_check_set": j.consistency_check_set,
                "strict_warnings": j.strict_warnings,
            });
            report_job(&j.common, Verb::HealthGate(body), j.json, print_health, 2, &rid).await
        }
        JobCmd::ConsistencyCheck(j) => {
            let body = json!({
                "tenant_id": j.tenant, "scope": j.scope, "check_set": j.check_set, "mode": j.mode,
                "sample": j.sample, "strict": j.strict, "strict_warnings": j.strict_warnings, "register": j.register,
            });
            report_job(&j.common, Verb::ConsistencyCheck(body), j.json, print_consistency, 1, &rid).await
        }
        JobCmd::RebuildDerived(j) => {
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let scope = json!({"tenant_id": j.tenant, "scope": j.scope});
            let mut out = derive_calls::call_ok(&app, Verb::RebuildDerived(scope.clone()), &rid).await?;
            if !j.no_drain {
                let mut body = scope.clone();
                body["max_jobs"] = json!(100_000);
                let started = std::time::Instant::now();
                let mut done = 0i64;
                loop {
                    let rep = derive_calls::call_ok(&app, Verb::Tick(body.clone()), &rid).await?;
                    done += rep["done"].as_i64().unwrap_or(0);
                    let claimed = rep["claimed"].as_i64().unwrap_or(0);
                    let dead = rep["dead_lettered"].as_i64().unwrap_or(0);
                    if dead > 0 {
                        bail!("rebuild: {dead} jobs were dead-lettered (see `cairn job outbox-status`)");
                    }
                    if rep["retrying"].as_i64().unwrap_or(0) > 0 {
                        bail!(
                            "rebuild: jobs are failing and backing off (see `cairn job outbox-status`); the server's cron will finish them"
                        );
                    }
                    if claimed == 0 {
                        break;
                    }
                }
                out["drained"] = json!({"jobs_done": done, "seconds": started.elapsed().as_secs_f64()});
            }
            print(&out)
        }
    }
}
