//! The control plane's SQLite schema (append-only migration steps, applied
//! in-app by `cairn_spin::migrations`).

use cairn_core::ApiError;
use cairn_spin::sql::Sql;

pub const COMPONENT: &str = "control";

pub const MIGRATIONS: &[&[&str]] = &[
    // 1: the audit log, hash-chained (see `audit`).
    &[
        "CREATE TABLE IF NOT EXISTS control_audit_events (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            tenant_id TEXT,
            request_id TEXT,
            details TEXT NOT NULL,
            created_at TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            event_hash TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS control_audit_events_tenant ON control_audit_events (tenant_id, seq)",
        "CREATE INDEX IF NOT EXISTS control_audit_events_action ON control_audit_events (action, seq)",
    ],
];

pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn ensure(db: &dyn Sql, now: &str) -> Result<(), ApiError> {
    cairn_spin::migrations::ensure(db, COMPONENT, MIGRATIONS, now)
}
