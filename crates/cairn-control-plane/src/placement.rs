//! The store a tenant's memories live in: its tier (its own, else the
//! default; `solo` when billing is disabled) through the tiers'
//! placements (`cairn_core::placement`). The tier is read from the home
//! store's `control_tenants`, so a deployment whose tiers all store at
//! home reads nothing.

use cairn_core::ApiError;
use cairn_core::placement::Placements;
use cairn_spin::sql::Sql;
use cairn_spin::store::Backend;

/// How a tenant's tier is found.
#[derive(Debug, Clone, Copy)]
pub struct TierRule<'a> {
    pub billing_disabled: bool,
    pub default_tier: &'a str,
}

impl TierRule<'_> {
    /// The tier of a tenant whose stored tier is `own` (none: unprovisioned).
    pub fn tier_of(&self, own: Option<String>) -> String {
        if self.billing_disabled {
            crate::provisioning::FLOOR_TIER.to_string()
        } else {
            own.unwrap_or_else(|| self.default_tier.to_string())
        }
    }
}

/// The tier `tenant_id` is on (read from `home`).
pub fn tenant_tier(home: &dyn Sql, rule: TierRule, tenant_id: &str) -> Result<String, ApiError> {
    if rule.billing_disabled {
        return Ok(rule.tier_of(None));
    }
    Ok(rule.tier_of(crate::tiers::stored_tier(home, tenant_id)?))
}

/// The store of `tenant_id`'s memories: `None` for the home store.
pub fn tenant_backend<'p>(
    home: &dyn Sql,
    placements: &'p Placements,
    rule: TierRule,
    tenant_id: &str,
) -> Result<Option<&'p Backend>, ApiError> {
    Ok(placements.for_tier(&tenant_tier(home, rule, tenant_id)?))
}

/// The tenant a JSON request body names (`tenant_id`).
pub fn body_tenant(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("tenant_id")?.as_str().map(str::to_string)
}

/// The tenant a query names (`tenant_id`).
pub fn query_tenant(query: &[(String, String)]) -> Option<String> {
    query.iter().find(|(k, _)| k == "tenant_id").map(|(_, v)| v.clone())
}

#[cfg(target_arch = "wasm32")]
pub use component::{all_stores, boxed_tenant_store, for_tenant, open_tenant, tenant_store, tier_store};

#[cfg(target_arch = "wasm32")]
mod component {
    use super::TierRule;
    use cairn_core::ApiError;
    use cairn_spin::store::{self, Store};
    use cairn_spin::variables::get;

    fn rule_and_then<T>(f: impl FnOnce(TierRule) -> T) -> T {
        let default_tier = get("default_tier").unwrap_or_else(|| "solo".into());
        f(TierRule {
            billing_disabled: get("billing").is_some_and(|b| b.trim() == "disabled"),
            default_tier: &default_tier,
        })
    }

    /// The store of a tenant's memories when its tier places it away from
    /// `home`; `None` for home itself. `tenant` names it (`None`: the
    /// default tenant) and is asked only when some tier is placed apart.
    pub fn tenant_store(home: &Store, tenant: impl FnOnce() -> Option<String>) -> Result<Option<Store>, ApiError> {
        let Some(placements) = store::placements()? else {
            return Ok(None);
        };
        let tenant = tenant()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| get("memory_tenant_id").unwrap_or_else(|| "default".into()));
        let now = cairn_core::time_fmt::rfc3339_millis(cairn_spin::wasi_env::now_ms());
        crate::schema::ensure(home, &now)?;
        match rule_and_then(|rule| super::tenant_backend(home, &placements, rule, tenant.trim()))? {
            None => Ok(None),
            Some(b) => store::open_backend(b).map(Some),
        }
    }

    /// [`tenant_store`] of the tenant `tenant_id`, boxed as the control
    /// plane's `AdminCtx::tenant_store` hands it out.
    pub fn boxed_tenant_store(
        home: &Store,
        tenant_id: &str,
    ) -> Result<Option<Box<dyn cairn_spin::sql::Sql>>, ApiError> {
        Ok(tenant_store(home, || Some(tenant_id.to_string()))?.map(|s| Box::new(s) as Box<dyn cairn_spin::sql::Sql>))
    }

    /// The store of `tier`'s tenants when the tier places them apart from
    /// home (for a caller that knows the tenant's tier already).
    pub fn tier_store(tier: &str) -> Result<Option<Store>, ApiError> {
        match store::placements()?.as_ref().and_then(|p| p.for_tier(tier)) {
            None => Ok(None),
            Some(b) => store::open_backend(b).map(Some),
        }
    }

    /// The store of a tenant's memories, home or not.
    pub fn for_tenant(tenant: impl FnOnce() -> Option<String>) -> Result<Store, ApiError> {
        open_tenant(tenant).map(|(store, _)| store)
    }

    /// [`for_tenant`], and whether that store is apart from home.
    pub fn open_tenant(tenant: impl FnOnce() -> Option<String>) -> Result<(Store, bool), ApiError> {
        let home = store::open()?;
        Ok(match tenant_store(&home, tenant)? {
            Some(apart) => (apart, true),
            None => (home, false),
        })
    }

    /// Every store in use, the home store first (derivation ticks them all).
    pub fn all_stores() -> Result<Vec<Store>, ApiError> {
        match store::placements()? {
            None => Ok(vec![store::open()?]),
            Some(p) => p.backends().iter().map(store::open_backend).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spin::native_sqlite::NativeSqlite;
    use serde_json::json;

    #[test]
    fn a_tenant_stores_where_its_tier_is_placed() {
        let home = NativeSqlite::in_memory();
        crate::schema::ensure(&home, "2026-01-01T00:00:00.000Z").unwrap();
        home.exec("INSERT INTO control_tenants (tenant_id, status, metadata, created_at, updated_at, tier) VALUES ('acme', 'active', '{}', 'x', 'x', 'team')", &[])
            .unwrap();
        let pg = "postgres://cairn@db:5432/tenants";
        let doc = json!({"tiers": {"solo": {}, "team": {"resource_caps": {"store": "postgres"}}}});
        let p =
            Placements::from_tiers(&doc, Backend::Sqlite, |n| (n == "database_url").then(|| pg.to_string())).unwrap();
        let rule = TierRule { billing_disabled: false, default_tier: "solo" };
        assert_eq!(tenant_backend(&home, &p, rule, "acme").unwrap(), Some(&Backend::Postgres(pg.into())));
        assert_eq!(tenant_backend(&home, &p, rule, "unknown").unwrap(), None, "the default tier stores at home");
        let floor = TierRule { billing_disabled: true, default_tier: "solo" };
        assert_eq!(tenant_backend(&home, &p, floor, "acme").unwrap(), None, "billing disabled: every tenant on solo");
        let team_default = TierRule { billing_disabled: false, default_tier: "team" };
        assert!(tenant_backend(&home, &p, team_default, "unknown").unwrap().is_some());
    }

    #[test]
    fn the_tenant_is_read_from_a_body_or_a_query() {
        assert_eq!(body_tenant(r#"{"tenant_id":"acme","scope":"s"}"#).as_deref(), Some("acme"));
        assert_eq!(body_tenant(r#"{"scope":"s"}"#), None);
        assert_eq!(body_tenant("not json"), None, "the operation answers the 400 itself");
        let q = vec![("limit".to_string(), "5".to_string()), ("tenant_id".to_string(), "acme".to_string())];
        assert_eq!(query_tenant(&q).as_deref(), Some("acme"));
        assert_eq!(query_tenant(&q[..1]), None);
    }
}
