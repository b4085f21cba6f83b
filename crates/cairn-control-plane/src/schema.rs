//! The control plane's SQLite schema (append-only migration steps, applied
//! in-app by `cairn_spin::migrations`; a new step goes into PostgreSQL's
//! list, `crate::schema_pg`, too).

use cairn_core::ApiError;
use cairn_spin::sql::{Dialect, Sql};

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
    // 2: tenants, projects, API keys (sha256 of the key only, with a
    // prefix to recognise it), per-tenant quota profiles.
    &[
        "CREATE TABLE IF NOT EXISTS control_tenants (
            tenant_id TEXT PRIMARY KEY,
            display_name TEXT,
            status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS control_projects (
            project_id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES control_tenants (tenant_id) ON DELETE CASCADE,
            display_name TEXT,
            status TEXT NOT NULL CHECK (status IN ('active', 'archived')),
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        // A rotated key keeps working until revoked_at when that is in the
        // future (the rotation's grace window).
        "CREATE TABLE IF NOT EXISTS control_api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES control_tenants (tenant_id) ON DELETE CASCADE,
            project_id TEXT REFERENCES control_projects (project_id) ON DELETE SET NULL,
            label TEXT,
            role TEXT,
            agent_id TEXT,
            team_id TEXT,
            key_hash TEXT NOT NULL UNIQUE,
            key_prefix TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )",
        "CREATE INDEX IF NOT EXISTS control_api_keys_tenant ON control_api_keys (tenant_id, created_at DESC)",
        "CREATE TABLE IF NOT EXISTS control_tenant_quotas (
            tenant_id TEXT PRIMARY KEY REFERENCES control_tenants (tenant_id) ON DELETE CASCADE,
            recall_rps REAL NOT NULL,
            recall_burst INTEGER NOT NULL,
            write_rps REAL NOT NULL,
            write_burst INTEGER NOT NULL,
            write_max_wait_ms INTEGER NOT NULL,
            debug_embed_rps REAL NOT NULL,
            debug_embed_burst INTEGER NOT NULL,
            recall_text_embed_rps REAL NOT NULL,
            recall_text_embed_burst INTEGER NOT NULL,
            recall_text_embed_max_wait_ms INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
    ],
    // 3: token buckets of the tenant quotas, in the database so every host
    // process (and Spin instance) draws from the same bucket.
    &["CREATE TABLE IF NOT EXISTS control_quota_buckets (
            tenant_id TEXT NOT NULL,
            class TEXT NOT NULL,
            tokens REAL NOT NULL,
            updated_ms INTEGER NOT NULL,
            granted INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, class)
        ) WITHOUT ROWID"],
    // 4: a tenant's tier (provisioning verbs) and when it was provisioned
    // or torn down.
    &[
        "ALTER TABLE control_tenants ADD COLUMN tier TEXT",
        "ALTER TABLE control_tenants ADD COLUMN provisioned_at TEXT",
        "ALTER TABLE control_tenants ADD COLUMN torn_down_at TEXT",
    ],
    // 5: one row per memory request (reference memory_request_telemetry),
    // written by the host in batches off the request path.
    &[
        "CREATE TABLE IF NOT EXISTS memory_request_telemetry (
            id INTEGER PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            scope TEXT,
            endpoint TEXT NOT NULL CHECK (endpoint IN ('write', 'recall', 'recall_text')),
            status_code INTEGER NOT NULL,
            latency_ms REAL NOT NULL CHECK (latency_ms >= 0),
            request_id TEXT,
            created_at TEXT NOT NULL,
            api_key_prefix TEXT
        )",
        "CREATE INDEX IF NOT EXISTS memory_request_telemetry_tenant ON memory_request_telemetry (tenant_id, created_at)",
    ],
    // 6: alert routes and every delivery attempt (reference §7.5;
    // crate::alerts). The secret never leaves the database except to sign.
    &[
        "CREATE TABLE IF NOT EXISTS control_alert_routes (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('webhook', 'slack_webhook', 'pagerduty_events')),
            label TEXT,
            events TEXT NOT NULL DEFAULT '[\"*\"]',
            status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
            target TEXT NOT NULL,
            secret TEXT,
            headers TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS control_alert_routes_tenant ON control_alert_routes (tenant_id, status)",
        "CREATE TABLE IF NOT EXISTS control_alert_deliveries (
            id INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL UNIQUE,
            route_id TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sent', 'failed', 'skipped')),
            request_id TEXT,
            response_code INTEGER,
            response_body TEXT,
            error TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            dedupe_key TEXT,
            created_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS control_alert_deliveries_dedupe ON control_alert_deliveries (route_id, dedupe_key, created_at) WHERE dedupe_key IS NOT NULL",
    ],
    // 7: the evidence registry (crate::evidence): each artifact with its
    // bytes, registered by an `evidence.register` audit event.
    &[
        "CREATE TABLE IF NOT EXISTS control_evidence (
            evidence_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            tenant_id TEXT,
            period_start TEXT,
            period_end TEXT,
            producer TEXT NOT NULL,
            content_type TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            content TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS control_evidence_kind ON control_evidence (kind, created_at)",
        "CREATE INDEX IF NOT EXISTS control_evidence_tenant ON control_evidence (tenant_id, created_at)",
    ],
    // 8: the weekly governance report archive (crate::governance_reports):
    // one row per (week, subject) — the unique key is what keeps two
    // schedulers from making a week's report twice —, its bytes in
    // control_evidence (report_id = evidence_id), kept until expires_at_ms
    // (NULL: by contract), then deleted with the row kept as the record.
    &[
        "CREATE TABLE IF NOT EXISTS control_governance_reports (
            report_id TEXT PRIMARY KEY,
            report_week TEXT NOT NULL,
            subject TEXT NOT NULL,
            tenant_id TEXT,
            profile TEXT NOT NULL,
            tiers TEXT NOT NULL DEFAULT '[]',
            covered_tenants TEXT NOT NULL DEFAULT '[]',
            retention_days INTEGER,
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            expires_at_ms INTEGER,
            ok INTEGER NOT NULL,
            exit_code INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            deleted_at TEXT,
            UNIQUE (report_week, subject)
        )",
        "CREATE INDEX IF NOT EXISTS control_governance_reports_tenant ON control_governance_reports (tenant_id, report_week)",
        "CREATE INDEX IF NOT EXISTS control_governance_reports_expiry ON control_governance_reports (expires_at_ms) WHERE deleted_at IS NULL",
    ],
    // 9: the evidence publish queue (crate::evidence_publish): a bundle to
    // POST to a target, retried with backoff, dead-lettered after
    // max_attempts, replayable (reference §7.7's publish queue).
    &[
        "CREATE TABLE IF NOT EXISTS control_evidence_publish_jobs (
            job_id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            target TEXT NOT NULL,
            index_sha256 TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'dead_letter')),
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            retry_base_ms INTEGER NOT NULL,
            retry_max_ms INTEGER NOT NULL,
            next_attempt_ms INTEGER NOT NULL,
            locked_until_ms INTEGER,
            last_error TEXT,
            last_response_code INTEGER,
            published_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS control_evidence_publish_due ON control_evidence_publish_jobs (status, next_attempt_ms)",
    ],
];

pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The steps for `dialect`'s database.
pub fn migrations(dialect: Dialect) -> &'static [&'static [&'static str]] {
    match dialect {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => crate::schema_pg::MIGRATIONS,
    }
}

pub fn ensure(db: &dyn Sql, now: &str) -> Result<(), ApiError> {
    cairn_spin::migrations::ensure(db, COMPONENT, migrations(db.dialect()), now)
}
