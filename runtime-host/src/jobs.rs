//! `cairn job ...`: operator verbs run in-process against a data dir (the
//! server may be running on it at the same time; SQLite coordinates).
//!
//! - `derive --once`: one derivation tick; without `--once`, ticks until
//!   the outbox has nothing eligible;
//! - `outbox-status`: the backlog (as `GET /v1/admin/control/outbox`);
//! - `outbox-replay`: re-queue dead-lettered jobs (as `POST
//!   /v1/admin/control/outbox/replay`; an audit event with actor `operator`);
//! - `rebuild-derived`: drop and recompute a scope's derived data, then
//!   drain its jobs.

use crate::AppArgs;
use crate::derive_calls::{self, Verb};
use anyhow::{Result, bail};
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
    /// Only this tenant's scope (with --scope).
    #[arg(long)]
    tenant: Option<String>,
    /// Only this scope.
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
        JobCmd::Derive(j) => {
            let app = crate::load_app(&j.common.app, &j.common.data_dir).await?;
            let mut body = json!({"max_jobs": j.max_jobs, "batch_size": j.batch_size});
            if let Some(s) = &j.scope {
                body["scope"] = json!(s);
                body["tenant_id"] = json!(j.tenant);
            } else if j.tenant.is_some() {
                bail!("--tenant needs --scope");
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
