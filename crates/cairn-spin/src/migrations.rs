//! Versioned, idempotent schema migrations, run from inside each component
//! (Spin on Kubernetes has no migration flag).
//!
//! Each component records its version in `cairn_schema`. Every instance reads
//! it once (one indexed read); the first one to find it behind applies the
//! missing steps in one `BEGIN IMMEDIATE` transaction and re-checks inside
//! it, so concurrent instances never apply a step twice.

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

/// Brings `component`'s schema up to `migrations.len()`; a no-op (one
/// indexed read) when it already is.
pub fn ensure(db: &dyn Sql, component: &str, migrations: &[&[&str]], now: &str) -> Result<(), ApiError> {
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
        for step in &migrations[have as usize..] {
            for stmt in step.iter() {
                db.exec(stmt, &[])?;
            }
        }
        db.exec(
            "INSERT INTO cairn_schema (component, version, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            &[component.into(), SqlValue::Integer(target), now.into()],
        )
    })
}
