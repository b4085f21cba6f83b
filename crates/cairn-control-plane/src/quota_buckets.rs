//! Enforcing tenant quotas (reference §7.3): one token bucket per tenant and
//! request class (`recall`, `write`, `debug_embeddings`, `recall_text_embed`),
//! full at first (`burst`), refilled at `rps`, one token per request. The
//! bucket lives in SQLite and is drawn in one statement, so every host
//! process and instance shares it (the reference kept buckets per process).
//!
//! Limits come from the tenant's quota profile (`tenant-quotas`), else from
//! the default tier's `quotas` in the tier profiles. A denied request is
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

/// The tenant's limits for `class`: its quota profile, else the tier's.
pub fn limits(
    db: &dyn Sql,
    tenant: &str,
    class: &str,
    tier_quotas: Option<&Value>,
) -> Result<Option<Limits>, ApiError> {
    let cols = match class {
        "recall" => "recall_rps, recall_burst, 0",
        "write" => "write_rps, write_burst, write_max_wait_ms",
        "debug_embeddings" => "debug_embed_rps, debug_embed_burst, 0",
        "recall_text_embed" => "recall_text_embed_rps, recall_text_embed_burst, recall_text_embed_max_wait_ms",
        _ => return Ok(None),
    };
    if let Some(r) =
        db.query_one(&format!("SELECT {cols} FROM control_tenant_quotas WHERE tenant_id = ?"), &[tenant.into()])?
    {
        return Ok(Some(Limits { rps: r.real(0), burst: r.real(1), max_wait_ms: r.int(2) }));
    }
    Ok(tier_quotas.and_then(|q| q.get(class)).and_then(|c| {
        let num = |k: &str| c.get(k).and_then(Value::as_f64);
        Some(Limits {
            rps: num("rps").filter(|x| *x > 0.0)?,
            burst: num("burst").filter(|x| *x >= 1.0)?,
            max_wait_ms: num("max_wait_ms").unwrap_or(0.0).max(0.0) as i64,
        })
    }))
}

/// Draws one token; `Ok(None)` when granted, else the wait until the next
/// token (ms).
pub fn draw(db: &dyn Sql, tenant: &str, class: &str, l: Limits, now_ms: i64) -> Result<Option<i64>, ApiError> {
    // `refilled` is the bucket at `now`; all SET expressions see the old row.
    let refilled = "min(?3, tokens + max(0, ?4 - updated_ms) / 1000.0 * ?5)";
    let row = db.query_one(
        &format!(
            "INSERT INTO control_quota_buckets (tenant_id, class, tokens, updated_ms, granted) \
             VALUES (?1, ?2, ?3 - 1, ?4, 1) \
             ON CONFLICT (tenant_id, class) DO UPDATE SET \
               tokens = CASE WHEN {refilled} >= 1 THEN {refilled} - 1 ELSE {refilled} END, \
               granted = {refilled} >= 1, \
               updated_ms = max(updated_ms, ?4) \
             RETURNING tokens, granted"
        ),
        &[tenant.into(), class.into(), SqlValue::Real(l.burst), SqlValue::Integer(now_ms), SqlValue::Real(l.rps)],
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
/// token of each class (waiting once, through `sleep`, for a token due
/// within the class's `max_wait_ms`) and, when it `stores` memory, checks
/// the storage cap.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    db: &dyn Sql,
    tenant: &str,
    classes: &[String],
    stores: bool,
    profile: Option<&Value>,
    default_tenant: &str,
    clock: &dyn Fn() -> i64,
    sleep: &dyn Fn(i64),
) -> Result<(), ApiError> {
    let tier_quotas = profile.and_then(|p| p.get("quotas"));
    for class in classes {
        let Some(l) = limits(db, tenant, class, tier_quotas)? else { continue };
        let start = clock();
        let Some(wait) = draw(db, tenant, class, l, start)? else { continue };
        if wait > l.max_wait_ms {
            return Err(denied(tenant, class, wait, 0));
        }
        sleep(wait);
        let now = clock();
        if let Some(again) = draw(db, tenant, class, l, now)? {
            return Err(denied(tenant, class, again, now - start));
        }
    }
    if stores {
        crate::storage::check(db, tenant, profile, default_tenant)?;
    }
    Ok(())
}
