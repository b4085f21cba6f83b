//! Versioned, idempotent schema migrations, run from inside each component
//! (Spin on Kubernetes has no migration flag).
//!
//! Each component records its version in `cairn_schema`. Every instance reads
//! it once (one indexed read); the first one to find it behind applies the
//! missing steps in one `BEGIN IMMEDIATE` transaction and re-checks inside
//! it, so concurrent instances never apply a step twice.
//!
//! A statement may say it depends on what the database can do:
//! - `/* optional */ ...` may fail (e.g. a `CREATE VIRTUAL TABLE` whose
//!   module this SQLite lacks); the failure is reported on stderr and the
//!   step goes on (SQLite undoes just that statement);
//! - `/* if-table: NAME */ ...` runs only when table NAME exists (the
//!   triggers and backfill of an optional table).

use crate::sql::{Sql, SqlValue};
use cairn_core::ApiError;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS cairn_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)";

fn recorded_version(db: &dyn Sql, component: &str) -> Result<Option<i64>, ApiError> {
    match db.query_one("SELECT version FROM cairn_schema WHERE component = ?", &[component.into()]) {
        Ok(row) => Ok(Some(row.map(|r| r.int(0)).unwrap_or(0))),
        // The table itself does not exist yet on a fresh database.
        Err(e) if e.message.contains("no such table") => Ok(None),
        Err(e) => Err(e),
    }
}

fn table_exists(db: &dyn Sql, name: &str) -> Result<bool, ApiError> {
    Ok(db.query_one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", &[name.into()])?.is_some())
}

fn run_statement(db: &dyn Sql, component: &str, stmt: &str) -> Result<(), ApiError> {
    let stmt = stmt.trim_start();
    if let Some(rest) = stmt.strip_prefix("/* optional */") {
        if let Err(e) = db.exec(rest, &[]) {
            eprintln!("{component} schema: optional statement skipped ({}): {}", e.message, first_line(rest));
        }
        return Ok(());
    }
    if let Some(rest) = stmt.strip_prefix("/* if-table: ") {
        let (table, body) = rest.split_once("*/").unwrap_or((rest, ""));
        if table_exists(db, table.trim())? {
            db.exec(body, &[])?;
        }
        return Ok(());
    }
    db.exec(stmt, &[])
}

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or_default()
}

/// Brings `component`'s schema up to `migrations.len()`; a no-op (one
/// indexed read) when it already is.
pub fn ensure(db: &dyn Sql, component: &str, migrations: &[&[&str]], now: &str) -> Result<(), ApiError> {
    ensure_with(db, component, migrations, now, |_, _| Ok(()))
}

/// [`ensure`], calling `after_step(db, version)` inside the transaction
/// after each step is applied (data a step needs that SQL alone cannot
/// compute, e.g. backfilling an index from Rust).
pub fn ensure_with(
    db: &dyn Sql,
    component: &str,
    migrations: &[&[&str]],
    now: &str,
    after_step: impl Fn(&dyn Sql, usize) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let target = migrations.len() as i64;
    if recorded_version(db, component)? == Some(target) {
        return Ok(());
    }
    crate::sql::write_txn(db, |db| {
        db.exec(VERSION_TABLE, &[])?;
        let have = recorded_version(db, component)?.unwrap_or(0);
        if have > target {
            return Err(ApiError::new(
                503,
                "schema_too_new",
                format!("database schema of '{component}' is version {have}, this build knows {target}; upgrade cairn"),
            ));
        }
        for (i, step) in migrations.iter().enumerate().skip(have as usize) {
            for stmt in step.iter() {
                run_statement(db, component, stmt)?;
            }
            after_step(db, i + 1)?;
        }
        db.exec(
            "INSERT INTO cairn_schema (component, version, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            &[component.into(), SqlValue::Integer(target), now.into()],
        )
    })
}
