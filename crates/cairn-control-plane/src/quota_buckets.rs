//! Enforcing tenant quotas (reference §7.3): one token bucket per tenant and
//! request class (`recall`, `write`, `debug_embeddings`, `recall_text_embed`),
//! full at first (`burst`), refilled at `rps`, one token per request. The
//! bucket lives in SQLite and is drawn in one statement, so every host
//! process and instance shares it (the reference kept buckets per process).
//!
//! Limits come from the tenant's quota profile (`tenant-quotas`), else from
//! its tier's `quotas` in the tier profiles. Which apply is the gateway's
//! call (`tenant_quota_enabled`): [`admit`] both, [`admit_explicit`] the
//! tenant's own profile alone (tier quotas off). A denied request is
//! `429 tenant_rate_limited_<class>` with `retry_after_ms`; classes with a
//! `max_wait_ms` (write, recall_text_embed) wait once for a token that comes
//! within it.

use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

pub const CLASSES: &[&str] = &["recall", "write", "debug_embeddings", "recall_text_embed"];

/// A class's bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub rps: f64,
    pub burst: f64,
    pub max_wait_ms: i64,
}

/// A tenant's own quota profile (`tenant-quotas`), every class's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantProfile {
    pub recall: Limits,
    pub write: Limits,
    pub debug_embeddings: Limits,
    pub recall_text_embed: Limits,
}

impl TenantProfile {
    pub fn class(&self, class: &str) -> Option<Limits> {
        match class {
            "recall" => Some(self.recall),
            "write" => Some(self.write),
            "debug_embeddings" => Some(self.debug_embeddings),
            "recall_text_embed" => Some(self.recall_text_embed),
            _ => None,
        }
    }
}

/// The tenant's quota profile, `None` when it has none — also when the
/// control schema does not exist yet (nobody can have set one). One read by
/// primary key.
pub fn tenant_profile(db: &dyn Sql, tenant: &str) -> Result<Option<TenantProfile>, ApiError> {
    let row = match db.query_one(
        "SELECT recall_rps, recall_burst, write_rps, write_burst, write_max_wait_ms, \
                debug_embed_rps, debug_embed_burst, \
                recall_text_embed_rps, recall_text_embed_burst, recall_text_embed_max_wait_ms \
         FROM control_tenant_quotas WHERE tenant_id = ?",
        &[tenant.into()],
    ) {
        Ok(row) => row,
        Err(e) if cairn_spin::sql::is_missing_table(&e) => None,
        Err(e) => return Err(e),
    };
    Ok(row.map(|r| TenantProfile {
        recall: Limits { rps: r.real(0), burst: r.real(1), max_wait_ms: 0 },
        write: Limits { rps: r.real(2), burst: r.real(3), max_wait_ms: r.int(4) },
        debug_embeddings: Limits { rps: r.real(5), burst: r.real(6), max_wait_ms: 0 },
        recall_text_embed: Limits { rps: r.real(7), burst: r.real(8), max_wait_ms: r.int(9) },
    }))
}

/// A class's limits from the tier's `quotas` (`None`: the tier sets none).
pub fn tier_limits(tier_quotas: Option<&Value>, class: &str) -> Option<Limits> {
    if !CLASSES.contains(&class) {
        return None;
    }
    tier_quotas.and_then(|q| q.get(class)).and_then(|c| {
        let num = |k: &str| c.get(k).and_then(Value::as_f64);
        Some(Limits {
            rps: num("rps").filter(|x| *x > 0.0)?,
            burst: num("burst").filter(|x| *x >= 1.0)?,
            max_wait_ms: num("max_wait_ms").unwrap_or(0.0).max(0.0) as i64,
        })
    })
}

/// Draws one token; `Ok(None)` when granted, else the wait until the next
/// token (ms).
pub fn draw(db: &dyn Sql, tenant: &str, class: &str, l: Limits, now_ms: i64) -> Result<Option<i64>, ApiError> {
    // `refilled` is the bucket at `now`; all SET expressions see the old row.
    // Spelled for both backends: CASE for SQLite's two-argument min/max
    // (PostgreSQL's least/greatest), the table's columns qualified (beside
    // `excluded` PostgreSQL finds them ambiguous), the flag as 0/1.
    let elapsed =
        "CASE WHEN ?4 > control_quota_buckets.updated_ms THEN ?4 - control_quota_buckets.updated_ms ELSE 0 END";
    let grown = format!("(control_quota_buckets.tokens + {elapsed} / 1000.0 * ?5)");
    let refilled = format!("(CASE WHEN {grown} < ?3 THEN {grown} ELSE ?3 END)");
    let row = db.query_one(
        &format!(
            "INSERT INTO control_quota_buckets (tenant_id, class, tokens, updated_ms, granted) \
             VALUES (?1, ?2, ?3 - 1, ?4, 1) \
             ON CONFLICT (tenant_id, class) DO UPDATE SET \
               tokens = CASE WHEN {refilled} >= 1 THEN {refilled} - 1 ELSE {refilled} END, \
               granted = CASE WHEN {refilled} >= 1 THEN 1 ELSE 0 END, \
               updated_ms = CASE WHEN ?4 > control_quota_buckets.updated_ms THEN ?4 \
                 ELSE control_quota_buckets.updated_ms END \
             RETURNING tokens, granted"
        ),
        // A rate below 1e-12 tokens/s refills nothing in any bucket's
        // lifetime, and one above 1e12 refills any bucket at once; held
        // between the two, the product can neither underflow nor overflow
        // (PostgreSQL refuses a float product that rounds to zero or to
        // infinity; SQLite would carry the infinity).
        &[
            tenant.into(),
            class.into(),
            SqlValue::Real(l.burst),
            SqlValue::Integer(now_ms),
            SqlValue::Real(l.rps.clamp(1e-12, 1e12)),
        ],
    )?;
    let Some(r) = row else { return Err(ApiError::internal("quota bucket draw returned no row")) };
    if r.int(1) == 1 {
        return Ok(None);
    }
    Ok(Some((((1.0 - r.real(0)) / l.rps) * 1000.0).ceil().max(1.0) as i64))
}

/// The 429 of a denied draw.
pub fn denied(tenant: &str, class: &str, retry_after_ms: i64, waited_ms: i64) -> ApiError {
    ApiError::new(429, &format!("tenant_rate_limited_{class}"), format!("tenant quota exceeded ({class}); retry later"))
        .with_details(json!({"tenant_id": tenant, "retry_after_ms": retry_after_ms, "waited_ms": waited_ms}))
}

/// Admits a request of `tenant` whose tier profile is `profile`: draws one
/// token of each class — limits from the tenant's quota profile, else the
/// tier's `quotas` — and, when it stores memory, checks the storage cap in
/// `stores`, the store of the tenant's memories.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    db: &dyn Sql,
    tenant: &str,
    classes: &[String],
    stores: Option<&dyn Sql>,
    profile: Option<&Value>,
    default_tenant: &str,
    clock: &dyn Fn() -> i64,
    sleep: &dyn Fn(i64),
) -> Result<(), ApiError> {
    let own = tenant_profile(db, tenant)?;
    let tier_quotas = profile.and_then(|p| p.get("quotas"));
    for class in classes {
        let limits = match &own {
            Some(p) => p.class(class),
            None => tier_limits(tier_quotas, class),
        };
        if let Some(l) = limits {
            draw_class(db, tenant, class, l, clock, sleep)?;
        }
    }
    if let Some(memories) = stores {
        crate::storage::check(memories, tenant, profile, default_tenant)?;
    }
    Ok(())
}

/// Admits a request against the tenant's own quota profile alone — what
/// applies while tier quotas are off (`tenant_quota_enabled=auto` without
/// memory auth): no profile, no limit — one read by primary key, nothing
/// written. No storage cap either: that comes from the tier.
pub fn admit_explicit(
    db: &dyn Sql,
    tenant: &str,
    classes: &[String],
    clock: &dyn Fn() -> i64,
    sleep: &dyn Fn(i64),
) -> Result<(), ApiError> {
    let Some(own) = tenant_profile(db, tenant)? else { return Ok(()) };
    // A profile exists, so the control schema does; bring it up to date
    // (the buckets' table) before drawing: one more read, only here.
    crate::schema::ensure(db, &cairn_core::time_fmt::rfc3339_millis(clock()))?;
    for class in classes {
        if let Some(l) = own.class(class) {
            draw_class(db, tenant, class, l, clock, sleep)?;
        }
    }
    Ok(())
}

/// One token of `class`, waiting once (through `sleep`) for a token due
/// within the class's `max_wait_ms`.
fn draw_class(
    db: &dyn Sql,
    tenant: &str,
    class: &str,
    l: Limits,
    clock: &dyn Fn() -> i64,
    sleep: &dyn Fn(i64),
) -> Result<(), ApiError> {
    let start = clock();
    let Some(wait) = draw(db, tenant, class, l, start)? else { return Ok(()) };
    if wait > l.max_wait_ms {
        return Err(denied(tenant, class, wait, 0));
    }
    sleep(wait);
    let now = clock();
    if let Some(again) = draw(db, tenant, class, l, now)? {
        return Err(denied(tenant, class, again, now - start));
    }
    Ok(())
}
