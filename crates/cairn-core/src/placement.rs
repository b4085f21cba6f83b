//! Which store holds a tenant's memories: its tier's
//! `resource_caps.store` (docs/postgres.md, "Which store a tenant lives
//! in").
//!
//! A deployment has one *home* store, the one `database_url` selects (its
//! SQLite `default` when empty). The home store holds the control plane
//! (tenants, keys, quotas, audit events, telemetry) and the memories of
//! every tenant whose tier names no other store. A tier may say
//!
//! - `store: sqlite`: the deployment's SQLite `default` database;
//! - `store: postgres`: the PostgreSQL server in the variable that
//!   `driver_flags.store_connection` names (default `database_url`). The
//!   name must end in `database_url`, so a tiers file references a
//!   connection and never holds one (no password in `tiers.yaml`), and
//!   cannot point a store at another kind of variable.
//!
//! A tenant's memories, their commits and derived data live in exactly one
//! store; moving a tenant is `cairn job migrate-store`.

use crate::api_error::ApiError;
use serde_json::Value;
use std::collections::BTreeMap;

/// The variable naming the PostgreSQL server (empty: SQLite).
pub const DATABASE_URL_VARIABLE: &str = "database_url";

/// The backend a `database_url` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, ApiError> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Backend::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_string()));
        }
        // Never echo the value: it may hold a password.
        Err(ApiError::new(500, "invalid_configuration", "database_url must be empty (SQLite) or a postgres:// URL"))
    }

    /// `sqlite` or `postgres` (what `/health` says; never the URL).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The `driver_flags` key naming a tier's PostgreSQL connection variable.
pub const STORE_CONNECTION_FLAG: &str = "store_connection";

/// Where each tier's tenants store, as far as it differs from home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placements {
    home: Backend,
    /// Tiers whose store is not the home store.
    elsewhere: BTreeMap<String, Backend>,
}

impl Placements {
    /// Reads every tier of the tiers document (`tier_profiles` as JSON);
    /// `var` reads a variable (the connection URLs). A tier naming an
    /// unknown store or an unset connection is a configuration error.
    pub fn from_tiers(
        doc: &Value,
        home: Backend,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Placements, ApiError> {
        let mut elsewhere = BTreeMap::new();
        for (tier, profile) in doc.get("tiers").and_then(Value::as_object).into_iter().flatten() {
            let backend = tier_backend(tier, profile, &home, &var)?;
            if backend != home {
                elsewhere.insert(tier.clone(), backend);
            }
        }
        Ok(Placements { home, elsewhere })
    }

    /// Whether every tier stores at home (then no tenant's tier is read).
    pub fn all_home(&self) -> bool {
        self.elsewhere.is_empty()
    }

    /// The store of `tier`'s tenants: `None` for the home store.
    pub fn for_tier(&self, tier: &str) -> Option<&Backend> {
        self.elsewhere.get(tier)
    }

    /// Every store in use, the home store first, each once.
    pub fn backends(&self) -> Vec<Backend> {
        let mut out = vec![self.home.clone()];
        for b in self.elsewhere.values() {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
        out
    }

    /// `tier -> sqlite | postgres` for every tier not at home (for
    /// `/health`; never a URL).
    pub fn summary(&self) -> BTreeMap<String, &'static str> {
        self.elsewhere.iter().map(|(t, b)| (t.clone(), b.name())).collect()
    }
}

/// The placements a deployment's variables give (`tier_profiles`, the home
/// `database_url` and the connections tiers name); `None` when every tier
/// stores at home. The tiers document is parsed only when it names a store.
pub fn from_variables(var: impl Fn(&str) -> Option<String>) -> Result<Option<Placements>, ApiError> {
    let Some(doc) = var("tier_profiles").filter(|d| may_place(d)) else {
        return Ok(None);
    };
    let doc: Value = serde_json::from_str(&doc)
        .map_err(|e| ApiError::new(500, "invalid_configuration", format!("tier_profiles is not JSON: {e}")))?;
    let home = Backend::from_url(&var(DATABASE_URL_VARIABLE).unwrap_or_default())?;
    let p = Placements::from_tiers(&doc, home, var)?;
    Ok((!p.all_home()).then_some(p))
}

/// Whether the tiers document may place any tier outside home: a cheap
/// test on its text, so a deployment without `store` caps parses nothing.
pub fn may_place(tier_profiles: &str) -> bool {
    tier_profiles.contains("\"store\"")
}

fn tier_backend(
    tier: &str,
    profile: &Value,
    home: &Backend,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Backend, ApiError> {
    let bad = |msg: String| ApiError::new(500, "invalid_configuration", msg);
    let store = profile.get("resource_caps").and_then(|c| c.get("store"));
    match store.map(|s| s.as_str().map(str::trim)) {
        None | Some(Some("")) => Ok(home.clone()),
        Some(Some("sqlite")) => Ok(Backend::Sqlite),
        Some(Some("postgres")) => {
            let name = match profile.get("driver_flags").and_then(|f| f.get(STORE_CONNECTION_FLAG)) {
                None => DATABASE_URL_VARIABLE,
                Some(v) => v.as_str().map(str::trim).filter(|n| is_connection_variable(n)).ok_or_else(|| {
                    bad(format!(
                        "tier {tier}: driver_flags.{STORE_CONNECTION_FLAG} must name a variable ending in \
                         database_url (lowercase letters, digits, _)"
                    ))
                })?,
            };
            let url = var(name).unwrap_or_default();
            if url.trim().is_empty() {
                return Err(bad(format!("tier {tier} stores in postgres, but the variable {name} is empty")));
            }
            match Backend::from_url(&url) {
                Ok(pg @ Backend::Postgres(_)) => Ok(pg),
                _ => Err(bad(format!("tier {tier}: the variable {name} must be a postgres:// URL"))),
            }
        }
        Some(_) => Err(bad(format!("tier {tier}: resource_caps.store must be sqlite or postgres"))),
    }
}

/// `[a-z0-9_]*database_url`.
fn is_connection_variable(name: &str) -> bool {
    name.ends_with("database_url") && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PG: &str = "postgres://cairn@db.internal:5432/cairn";
    const OTHER: &str = "postgres://cairn@tenants.internal:5432/hosted";

    fn vars(name: &str) -> Option<String> {
        match name {
            "database_url" => Some(PG.into()),
            "tenant_database_url" => Some(OTHER.into()),
            "admin_token" => Some("secret".into()),
            _ => None,
        }
    }

    fn doc(tiers: Value) -> Value {
        json!({"version": 1, "default_tier": "solo", "tiers": tiers})
    }

    #[test]
    fn tiers_without_a_store_stay_home() {
        let d = doc(json!({"solo": {"resource_caps": {"storage_mb": 1}}, "team": {"driver_flags": {}}}));
        let p = Placements::from_tiers(&d, Backend::Sqlite, vars).unwrap();
        assert!(p.all_home());
        assert_eq!(p.backends(), vec![Backend::Sqlite]);
        assert!(!may_place(&d.to_string()));
    }

    #[test]
    fn a_postgres_home_places_a_sqlite_tier_apart_and_a_postgres_tier_at_home() {
        let d = doc(json!({
            "solo": {"resource_caps": {"store": "sqlite"}},
            "team": {"resource_caps": {"store": "postgres"}},
        }));
        assert!(may_place(&d.to_string()));
        let p = Placements::from_tiers(&d, Backend::Postgres(PG.into()), vars).unwrap();
        assert_eq!(p.for_tier("solo"), Some(&Backend::Sqlite));
        assert_eq!(p.for_tier("team"), None, "postgres at database_url is home");
        assert_eq!(p.backends(), vec![Backend::Postgres(PG.into()), Backend::Sqlite]);
        assert_eq!(p.summary(), BTreeMap::from([("solo".to_string(), "sqlite")]));
    }

    #[test]
    fn a_named_connection_selects_its_variable_and_shared_stores_are_listed_once() {
        let flags = json!({"store_connection": "tenant_database_url"});
        let d = doc(json!({
            "solo": {},
            "team": {"resource_caps": {"store": "postgres"}, "driver_flags": flags},
            "studio": {"resource_caps": {"store": "postgres"}, "driver_flags": flags},
        }));
        let p = Placements::from_tiers(&d, Backend::Sqlite, vars).unwrap();
        assert_eq!(p.for_tier("solo"), None);
        assert_eq!(p.for_tier("team"), Some(&Backend::Postgres(OTHER.into())));
        assert_eq!(p.backends(), vec![Backend::Sqlite, Backend::Postgres(OTHER.into())]);
    }

    #[test]
    fn bad_placements_are_configuration_errors_that_never_echo_a_url() {
        let cases = [
            (json!({"resource_caps": {"store": "mysql"}}), "sqlite or postgres"),
            (
                json!({"resource_caps": {"store": "postgres"}, "driver_flags": {"store_connection": "admin_token"}}),
                "ending in database_url",
            ),
            (
                json!({"resource_caps": {"store": "postgres"}, "driver_flags": {"store_connection": 7}}),
                "ending in database_url",
            ),
            (
                json!({"resource_caps": {"store": "postgres"}, "driver_flags": {"store_connection": "missing_database_url"}}),
                "missing_database_url is empty",
            ),
        ];
        for (profile, says) in cases {
            let e = Placements::from_tiers(&doc(json!({"t": profile})), Backend::Sqlite, vars).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (500, "invalid_configuration"));
            assert!(e.message.contains(says) && e.message.contains("tier t"), "{}", e.message);
            assert!(!e.message.contains("secret") && !e.message.contains("postgres://"), "{}", e.message);
        }
        // database_url unset with a SQLite home: a postgres tier has nowhere to go.
        let e = Placements::from_tiers(
            &doc(json!({"t": {"resource_caps": {"store": "postgres"}}})),
            Backend::Sqlite,
            |_| None,
        )
        .unwrap_err();
        assert!(e.message.contains("database_url is empty"), "{}", e.message);
    }

    #[test]
    fn the_url_selects_the_backend_and_a_bad_one_is_refused_without_echoing_it() {
        assert_eq!(Backend::from_url("").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("  ").unwrap(), Backend::Sqlite);
        let url = "postgres://cairn@127.0.0.1:5432/cairn";
        assert_eq!(Backend::from_url(url).unwrap(), Backend::Postgres(url.into()));
        let e = Backend::from_url("mysql://u:hunter2@db/x").unwrap_err();
        assert_eq!(e.status, 500);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
