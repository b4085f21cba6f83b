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
//!   step goes on (SQLite undoes just that statement; on PostgreSQL, where
//!   a failure aborts the whole transaction, it runs inside a savepoint);
//! - `/* if-table: NAME */ ...` runs only when table NAME exists (the
//!   triggers and backfill of an optional table).

use crate::sql::{Dialect, Sql, SqlValue, is_missing_table};
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
        Err(e) if is_missing_table(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn table_exists(db: &dyn Sql, name: &str) -> Result<bool, ApiError> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        Dialect::Postgres => "SELECT 1 WHERE to_regclass(?) IS NOT NULL",
    };
    Ok(db.query_one(sql, &[name.into()])?.is_some())
}

/// Runs a statement that may fail without failing the step.
fn run_optional(db: &dyn Sql, stmt: &str) -> Result<(), ApiError> {
    if db.dialect() == Dialect::Sqlite {
        return db.exec(stmt, &[]);
    }
    db.exec("SAVEPOINT cairn_optional", &[])?;
    match db.exec(stmt, &[]) {
        Ok(()) => db.exec("RELEASE SAVEPOINT cairn_optional", &[]),
        Err(e) => {
            db.exec("ROLLBACK TO SAVEPOINT cairn_optional", &[])?;
            db.exec("RELEASE SAVEPOINT cairn_optional", &[])?;
            Err(e)
        }
    }
}

fn run_statement(db: &dyn Sql, component: &str, stmt: &str) -> Result<(), ApiError> {
    let stmt = stmt.trim_start();
    if let Some(rest) = stmt.strip_prefix("/* optional */") {
        if let Err(e) = run_optional(db, rest) {
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

#[cfg(all(test, feature = "native-postgres"))]
mod postgres_tests {
    use super::*;
    use crate::native_postgres;

    const STEP1: &[&str] = &["CREATE TABLE notes (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"];
    const STEP2: &[&str] = &[
        "/* optional */ CREATE EXTENSION no_such_extension",
        "/* if-table: notes */ CREATE INDEX notes_n ON notes (n)",
        "/* if-table: missing */ CREATE INDEX never ON missing (x)",
        "INSERT INTO notes (id, n) VALUES ('seed', 1)",
    ];

    /// The runner on PostgreSQL: a fresh database is brought up step by
    /// step; an optional statement that fails leaves the step going (its
    /// savepoint keeps the transaction alive); a second run is a no-op.
    #[test]
    fn migrations_apply_once_on_postgres() {
        let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        let db = native_postgres::connect(&pg.url("postgres")).unwrap();
        ensure(&db, "probe", &[STEP1], "2026-12-01T00:00:00.000Z").unwrap();
        assert_eq!(recorded_version(&db, "probe").unwrap(), Some(1));
        ensure(&db, "probe", &[STEP1, STEP2], "2026-12-01T00:00:01.000Z").unwrap();
        assert_eq!(recorded_version(&db, "probe").unwrap(), Some(2));
        assert!(table_exists(&db, "notes").unwrap());
        let idx = db.query("SELECT 1 FROM pg_indexes WHERE indexname = 'notes_n'", &[]).unwrap();
        assert_eq!(idx.len(), 1, "the if-table statement ran after the failed optional one");
        // Again: nothing is applied twice (the seed row would conflict).
        ensure(&db, "probe", &[STEP1, STEP2], "2026-12-01T00:00:02.000Z").unwrap();
        assert_eq!(db.query("SELECT id FROM notes", &[]).unwrap().len(), 1);
        let e = ensure(&db, "probe", &[STEP1], "2026-12-01T00:00:03.000Z").unwrap_err();
        assert_eq!(e.code, "schema_too_new");
    }
}
