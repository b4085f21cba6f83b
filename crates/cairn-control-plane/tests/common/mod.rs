//! What the control plane's telemetry tests share: a fixed admin context, a
//! database with the kernel's and the control plane's schemas, seeded
//! request telemetry rows, and query pairs.
#![allow(dead_code)] // each test file uses its own part

use cairn_control_plane::admin::AdminCtx;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::native_sqlite::NativeSqlite;
use cairn_spin::sql::Sql;

/// An admin context at `now_ms` with the defaults (tier `solo`, no tier
/// profiles, constant random bytes); override fields with `..ctx(now)`.
pub fn ctx(now_ms: i64) -> AdminCtx<'static> {
    AdminCtx {
        request_id: "test",
        now_ms,
        random: &|b: &mut [u8]| b.fill(1),
        tier_profiles: None,
        default_tier: "solo",
        billing_disabled: false,
        default_tenant_id: "default",
        alert_loopback_targets: false,
        tenant_store: None,
        tier_store: None,
    }
}

/// Distinct random bytes on every call (ids and event ids must differ).
pub fn counter_random(b: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    for (i, x) in b.iter_mut().enumerate() {
        *x = n[i % 8] ^ (i as u8);
    }
}

/// An in-memory database with the kernel's and the control plane's schemas.
pub fn db(now_ms: i64) -> NativeSqlite {
    let db = NativeSqlite::in_memory();
    let now = rfc3339_millis(now_ms);
    cairn_memory::schema::ensure(&db, &now).unwrap();
    cairn_control_plane::schema::ensure(&db, &now).unwrap();
    db
}

/// One request's telemetry row.
pub struct Telemetry<'a> {
    pub tenant: &'a str,
    pub endpoint: &'a str,
    pub status: i64,
    pub latency_ms: f64,
    pub at_ms: i64,
    pub key: Option<&'a str>,
}

/// Inserts `n` copies of `row`.
pub fn seed(db: &NativeSqlite, row: &Telemetry, n: usize) {
    for _ in 0..n {
        db.exec(
            "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, created_at, api_key_prefix) \
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                row.tenant.into(),
                row.endpoint.into(),
                row.status.into(),
                row.latency_ms.into(),
                rfc3339_millis(row.at_ms).into(),
                row.key.into(),
            ],
        )
        .unwrap();
    }
}

/// Query pairs as the routes take them.
pub fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The repository root, read at run time (a test binary built in another
/// checkout sharing the build directory must read this one's files).
pub fn repo_root() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    dir.unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))).join("../..")
}
