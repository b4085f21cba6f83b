//! Retention: a tier's `resource_caps.retention_days` bounds how long a
//! tenant's memory lives. At most once per `retention_interval_ms` (default
//! an hour) a tick erases, in each scope that stores anything, the nodes
//! created before `now − retention_days` and the edges touching them —
//! behind tombstones under one `erase` commit, so the chain still verifies
//! and says what was erased and when (`cairn_memory::erasure`).

use crate::settings::DeriveSettings;
use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, scope_write_txn, write_txn};
use serde_json::Value;

const STATE_KEY: &str = "retention_last_run_ms";
const DAY_MS: f64 = 86_400_000.0;

/// The tenant a scope key belongs to.
fn tenant_of(scope_key: &str, default_tenant: &str) -> String {
    cairn_core::tenant_scope::split_key(scope_key, default_tenant).0.to_string()
}

/// `retention_days` of a tenant's tier (its own, else the default; `solo`
/// with billing disabled), when positive.
fn retention_days(db: &dyn Sql, s: &DeriveSettings, tenant: &str) -> Result<Option<f64>, ApiError> {
    let tier = tier_of(db, s, tenant)?;
    Ok(s.tier_profiles
        .as_ref()
        .and_then(|p| p.get("tiers")?.get(&tier)?.get("resource_caps")?.get("retention_days"))
        .and_then(Value::as_f64)
        .filter(|d| *d > 0.0))
}

/// The tier of a tenant (its own, else the default; `solo` with billing off).
fn tier_of(db: &dyn Sql, s: &DeriveSettings, tenant: &str) -> Result<String, ApiError> {
    let rule = cairn_control_plane::placement::TierRule {
        billing_disabled: s.billing_disabled,
        default_tier: &s.default_tier,
    };
    cairn_control_plane::placement::tenant_tier(db, rule, tenant)
}

/// Deletes request telemetry past each tenant's tier's retention (now,
/// whether or not a retention pass is due: `cairn job telemetry-retention`).
pub fn purge_telemetry(db: &dyn Sql, s: &DeriveSettings, now_ms: i64) -> Result<Value, ApiError> {
    cairn_control_plane::schema::ensure(db, &rfc3339_millis(now_ms))?;
    let hours_of = |tenant: &str| {
        let tier = tier_of(db, s, tenant)?;
        Ok(cairn_control_plane::telemetry_retention::retention_hours(s.tier_profiles.as_ref(), &tier))
    };
    cairn_control_plane::telemetry_retention::purge(db, &hours_of, now_ms)
}

/// Runs a retention pass over `db` when one is due; returns (nodes, edges)
/// erased. `home` is the home store when `db` is a store a tier places
/// tenants in (`cairn_core::placement`): the tenants' tiers, and so their
/// retention, are read there, and request telemetry (home's alone) is
/// purged only by the home store's pass.
pub fn run(db: &dyn Sql, home: Option<&dyn Sql>, s: &DeriveSettings, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let now = rfc3339_millis(now_ms);
    let last_run = |db: &dyn Sql| -> Result<i64, ApiError> {
        Ok(db
            .query_one("SELECT value FROM memory_derive_state WHERE name = ?", &[STATE_KEY.into()])?
            .and_then(|r| r.text(0).and_then(|v| v.parse::<i64>().ok()))
            .unwrap_or(0))
    };
    // Most ticks stop at this read; a due pass is claimed in a write
    // transaction (one process at a time, at most once per interval).
    if now_ms - last_run(db)? < s.retention_interval_ms {
        return Ok((0, 0));
    }
    let due = write_txn(db, |db| {
        if now_ms - last_run(db)? < s.retention_interval_ms {
            return Ok(false);
        }
        db.exec(
            "INSERT INTO memory_derive_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[STATE_KEY.into(), now_ms.to_string().into()],
        )?;
        Ok(true)
    })?;
    if !due {
        return Ok((0, 0));
    }
    let tiers = home.unwrap_or(db);
    cairn_control_plane::schema::ensure(tiers, &now)?;
    let scopes: Vec<String> = db
        .query("SELECT scope FROM memory_scope_usage WHERE bytes > 0 ORDER BY scope", &[])?
        .iter()
        .map(|r| r.string(0))
        .collect();
    let (mut nodes, mut edges) = (0, 0);
    for scope in scopes {
        let tenant = tenant_of(&scope, &s.kernel.defaults.tenant_id);
        let Some(days) = retention_days(tiers, s, &tenant)? else { continue };
        let cutoff = rfc3339_millis(now_ms - (days * DAY_MS) as i64);
        let reason = format!("retention_days={days}");
        // Erasure touches only the scope's rows: its lock is enough.
        let erase = |db: &dyn Sql| cairn_memory::erasure::erase_before(db, &scope, &cutoff, "retention", &reason, &now);
        let e = scope_write_txn(db, &scope, erase)?;
        if e.nodes > 0 {
            log_erasure(&scope, e.nodes, e.edges);
        }
        nodes += e.nodes;
        edges += e.edges;
    }
    if home.is_none() {
        let telemetry = purge_telemetry(db, s, now_ms)?;
        if telemetry["deleted"].as_i64().unwrap_or(0) > 0 {
            eprintln!("retention: deleted {} request telemetry rows", telemetry["deleted"]);
        }
    }
    Ok((nodes, edges))
}

/// One line on stderr per erasing scope (the host's log).
fn log_erasure(scope: &str, nodes: i64, edges: i64) {
    eprintln!("retention: erased {nodes} nodes and {edges} edges of scope {scope}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_name_their_tenant() {
        assert_eq!(tenant_of("notes", "default"), "default");
        assert_eq!(tenant_of("tenant:acme::scope:notes", "default"), "acme");
    }
}
