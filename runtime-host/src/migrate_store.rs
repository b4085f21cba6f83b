//! `cairn job migrate-store --from sqlite:DIR --to postgres://… --tenant T`:
//! copies one tenant from a data dir's SQLite to PostgreSQL and proves the
//! copy (docs/migrate-store.md).
//!
//! The host stays generic: it loads the app twice (once on each store) and
//! passes pages between the two derive instances' `tenant-copy` export,
//! which knows the tables (`crates/cairn-tenant-copy`). In order:
//! 1. both sides' digests: the source's chains must verify, and the
//!    destination must hold none of the tenant's rows (`--purge-destination`
//!    deletes them first, after an interrupted copy);
//! 2. every table page by page (one transaction per page), then the audit
//!    events re-chained;
//! 3. both digests again: the source unchanged, the destination equal to
//!    it table by table, every chain verifying on both sides;
//! 4. an audit event `tenant.store_migrated` in the destination.
//!
//! A failure in 2 or 3 purges what the copy wrote (never the audit log,
//! whose events a re-run skips) and exits 1.

use crate::AppArgs;
use crate::derive_calls::{self, Verb};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args)]
pub struct MigrateStoreJob {
    /// The source store: `sqlite:DATA_DIR` (the data dir of a `cairn up`).
    #[arg(long)]
    from: String,
    /// The destination store: a `postgres://` URL (its schema is migrated
    /// first).
    #[arg(long)]
    to: String,
    /// The tenant to copy.
    #[arg(long)]
    tenant: String,
    /// Delete the tenant's rows from the destination before copying (after
    /// an interrupted copy; never for a tenant the destination serves).
    #[arg(long)]
    purge_destination: bool,
    /// Rows per page (1..500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=500))]
    page_rows: i64,
    #[command(flatten)]
    app: AppArgs,
}

struct Side {
    app: Arc<crate::app::App>,
    name: &'static str,
}

impl Side {
    async fn call(&self, request: Value, rid: &str) -> Result<Value> {
        derive_calls::call_ok(&self.app, Verb::TenantCopy(request), rid)
            .await
            .with_context(|| format!("on the {}", self.name))
    }

    /// Every table's `{rows|events, sha256}` and the chains.
    async fn digest(&self, tables: &[String], tenant: &str, rid: &str) -> Result<Value> {
        let mut out = serde_json::Map::new();
        for t in tables {
            out.insert(t.clone(), self.call(json!({"op": "digest", "tenant_id": tenant, "table": t}), rid).await?);
        }
        out.insert("chains".into(), self.call(json!({"op": "chains", "tenant_id": tenant}), rid).await?);
        Ok(Value::Object(out))
    }
}

fn source_dir(from: &str) -> Result<PathBuf> {
    let Some(dir) = from.strip_prefix("sqlite:") else {
        bail!("--from must be sqlite:DATA_DIR (got {from:?}); copying out of PostgreSQL is not supported yet")
    };
    let dir = PathBuf::from(dir);
    crate::jobs::existing_database_of(&dir, "--from")?;
    Ok(dir)
}

/// A digest entry's count: a table's rows, or the audit log's events.
fn count_of(entry: &Value) -> i64 {
    entry.get("rows").or(entry.get("events")).and_then(Value::as_i64).unwrap_or(0)
}

/// Rows a digest counts (audit events apart: a re-run skips the ones there).
fn row_counts(digest: &Value) -> Vec<(String, i64)> {
    digest
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(t, d)| d["rows"].as_i64().filter(|n| *n > 0).map(|n| (t.clone(), n)))
        .collect()
}

fn broken_chains(digest: &Value) -> Vec<Value> {
    digest["chains"].as_array().into_iter().flatten().filter(|c| c["verified"] != json!(true)).cloned().collect()
}

/// Tables (and "chains") whose digests differ, but for the append-only
/// `logs`, which differ only when `b` holds fewer rows than `a`.
fn differences(a: &Value, b: &Value, logs: &[String]) -> Vec<String> {
    let keys = a.as_object().into_iter().flatten().map(|(k, _)| k.clone());
    keys.filter(|k| if logs.contains(k) { b[k]["rows"].as_i64() < a[k]["rows"].as_i64() } else { a[k] != b[k] })
        .collect()
}

/// Logs whose copy does not hold between `before`'s rows and `after`'s.
fn logs_out_of_range(before: &Value, after: &Value, copied: &Value, logs: &[String]) -> Vec<String> {
    logs.iter()
        .filter(|k| {
            let n = copied[*k]["rows"].as_i64();
            n < before[*k]["rows"].as_i64() || n > after[*k]["rows"].as_i64()
        })
        .map(|k| {
            format!(
                "{k}: {} rows copied, the source held {} then {}",
                copied[k]["rows"], before[k]["rows"], after[k]["rows"]
            )
        })
        .collect()
}

pub async fn run(j: MigrateStoreJob, rid: &str) -> Result<()> {
    let started = Instant::now();
    let dir = source_dir(&j.from)?;
    if !(j.to.starts_with("postgres://") || j.to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// URL (got {:?})", j.to);
    }
    let tenant = j.tenant.as_str();
    let mut src_args = j.app.clone();
    src_args.database_url = None;
    let mut dst_args = j.app.clone();
    dst_args.database_url = Some(j.to.clone());
    // The destination's app opens the same data dir's SQLite (the host's
    // own file), which it leaves alone: its stores are PostgreSQL's.
    let src = Side { app: crate::load_app(&src_args, &dir).await?, name: "source (SQLite)" };
    if src.app.variables.get("database_url").is_some_and(|u| !u.trim().is_empty()) {
        bail!(
            "the source resolves database_url (SPIN_VARIABLE_DATABASE_URL?); the source must be the data dir's SQLite"
        );
    }
    let dst = Side { app: crate::load_app(&dst_args, &dir).await?, name: "destination (PostgreSQL)" };

    let plan = src.call(json!({"op": "plan"}), rid).await?;
    let names = |k: &str| -> Vec<String> {
        plan[k].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect()
    };
    let (tables, logs) = (names("tables"), names("logs"));

    eprintln!("migrate-store: tenant {tenant}: reading the source's digest");
    let before = src.digest(&tables, tenant, rid).await?;
    if row_counts(&before).is_empty() {
        bail!("the source holds no rows of tenant {tenant:?}");
    }
    let broken = broken_chains(&before);
    if !broken.is_empty() {
        bail!("the source's chains do not verify; not copying: {}", Value::Array(broken));
    }
    let existing = row_counts(&dst.digest(&tables, tenant, rid).await?);
    if !existing.is_empty() {
        if !j.purge_destination {
            bail!(
                "the destination already holds rows of tenant {tenant:?} ({}); after an interrupted copy, re-run with --purge-destination",
                existing.iter().map(|(t, n)| format!("{t}: {n}")).collect::<Vec<_>>().join(", ")
            );
        }
        let purged = dst.call(json!({"op": "purge", "tenant_id": tenant}), rid).await?;
        eprintln!("migrate-store: purged the destination first: {}", purged["deleted"]);
    }

    let plan = Plan { tables: &tables, logs: &logs, tenant, page_rows: j.page_rows };
    let copied = match copy_and_verify(&src, &dst, &plan, &before, rid).await {
        Ok(copied) => copied,
        Err(e) => {
            eprintln!("migrate-store: failed ({e:#}); removing what the copy wrote to the destination");
            match dst.call(json!({"op": "purge", "tenant_id": tenant}), rid).await {
                Ok(p) => eprintln!("migrate-store: destination purged: {}", p["deleted"]),
                Err(pe) => eprintln!("migrate-store: the purge failed too ({pe:#}); re-run with --purge-destination"),
            }
            return Err(e);
        }
    };
    let summary: serde_json::Map<String, Value> =
        tables.iter().map(|t| (t.clone(), json!(count_of(&copied[t])))).collect();
    let scopes = before["chains"].as_array().map_or(0, Vec::len);
    let digest_sha256 = cairn_core::digest::sha256_canonical(&before);
    let event = dst
        .call(
            json!({"op": "record", "tenant_id": tenant, "details": {
                "from": "sqlite", "to": "postgres", "rows": summary, "scopes": scopes, "digest_sha256": digest_sha256,
            }}),
            rid,
        )
        .await?;
    let report = json!({
        "ok": true, "tenant_id": tenant, "from": j.from, "to": crate::postgres::host_of(&j.to).unwrap_or_default(),
        "rows": summary, "scopes": scopes, "chains_verified": true, "digest_sha256": digest_sha256,
        "audit_event_id": event["event_id"], "seconds": started.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

struct Plan<'a> {
    tables: &'a [String],
    logs: &'a [String],
    tenant: &'a str,
    page_rows: i64,
}

/// Copies every table, then checks the two sides; returns the
/// destination's digest.
async fn copy_and_verify(src: &Side, dst: &Side, plan: &Plan<'_>, before: &Value, rid: &str) -> Result<Value> {
    let Plan { tables, logs, tenant, page_rows } = *plan;
    for t in tables {
        let total = count_of(&before[t]);
        if total == 0 {
            continue;
        }
        let (mut cursor, mut done, mut last_report) = (Value::Null, 0i64, Instant::now());
        loop {
            let page = src
                .call(
                    json!({"op": "export", "tenant_id": tenant, "table": t, "cursor": cursor, "limit": page_rows}),
                    rid,
                )
                .await?;
            let got = dst.call(json!({"op": "import", "tenant_id": tenant, "page": page}), rid).await?;
            done += got["inserted"].as_i64().unwrap_or(0) + got["skipped"].as_i64().unwrap_or(0);
            if page["next"].is_null() {
                break;
            }
            cursor = page["next"].clone();
            if last_report.elapsed().as_secs() >= 2 {
                eprintln!("migrate-store: {t}: {done} / {total}");
                last_report = Instant::now();
            }
        }
        eprintln!("migrate-store: {t}: {done} copied");
    }
    eprintln!("migrate-store: verifying both sides");
    let after = src.digest(tables, tenant, rid).await?;
    let changed = differences(before, &after, logs);
    if !changed.is_empty() {
        bail!(
            "the source changed during the copy ({}): stop writes to tenant {tenant:?} and re-run",
            changed.join(", ")
        );
    }
    let copied = dst.digest(tables, tenant, rid).await?;
    let broken = broken_chains(&copied);
    if !broken.is_empty() {
        bail!("the destination's chains do not verify: {}", Value::Array(broken));
    }
    let mut detail: Vec<String> = differences(before, &copied, logs)
        .iter()
        .filter(|k| !logs.contains(k))
        .map(|k| format!("{k}: source {} destination {}", before[k], copied[k]))
        .collect();
    detail.extend(logs_out_of_range(before, &after, &copied, logs));
    if !detail.is_empty() {
        bail!("the destination differs from the source: {}", detail.join("; "));
    }
    Ok(copied)
}
