//! Tier profiles as data: `config/tiers.yaml` holds one ProvisioningProfile
//! row per tier. The host reads the file, checks its shape, and hands it to
//! the components as the `tier_profiles` variable (JSON, unknown fields kept
//! as they are) together with `default_tier`. No tier is compiled in.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The variables a tiers file provides.
pub fn load(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading tiers file {}", path.display()))?;
    to_variables(&text).with_context(|| format!("in tiers file {}", path.display()))
}

/// The tiers file as the text of `config/tiers.json`: the whole document as
/// pretty JSON in the YAML's key order, what `tier_profiles` takes under Spin
/// (`spin up --variable tier_profiles=@config/tiers.json`).
pub fn json_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading tiers file {}", path.display()))?;
    to_variables(&text).with_context(|| format!("in tiers file {}", path.display()))?;
    let doc: Value = serde_norway::from_str(&text)?;
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// Parses tiers YAML and returns `tier_profiles` (JSON) and `default_tier`.
pub fn to_variables(yaml: &str) -> Result<BTreeMap<String, String>> {
    let doc: Value = serde_norway::from_str(yaml)?;
    let Some(tiers) = doc.get("tiers").and_then(Value::as_object) else {
        bail!("expected a `tiers` mapping of tier name -> profile");
    };
    if tiers.is_empty() {
        bail!("`tiers` is empty");
    }
    for (name, profile) in tiers {
        if !profile.is_object() {
            bail!("tier '{name}' must be a mapping");
        }
    }
    let default_tier = doc.get("default_tier").and_then(Value::as_str).unwrap_or("solo").to_string();
    if !tiers.contains_key(&default_tier) {
        bail!("default_tier '{default_tier}' is not one of the tiers");
    }
    let mut out = BTreeMap::new();
    out.insert("tier_profiles".to_string(), serde_json::to_string(&doc)?);
    out.insert("default_tier".to_string(), default_tier);
    Ok(out)
}

/// Refuses, at start, tiers that place tenants in a store this deployment
/// cannot open (`resource_caps.store`; docs/postgres.md). `var` reads the
/// resolved variables. Returns `tier -> sqlite | postgres` for the tiers
/// stored apart from the home store.
pub fn check_placements(var: impl Fn(&str) -> Option<String>) -> Result<BTreeMap<String, &'static str>> {
    let placements = cairn_core::placement::from_variables(var).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(placements.map(|p| p.summary()).unwrap_or_default())
}

/// The fields every tier row must have (preflight's `tiers_file_complete`):
/// what the components read per tier, plus what an operator reads.
pub const REQUIRED_FIELDS: &[&str] = &[
    "description",
    "isolation",
    "resource_caps.storage_mb",
    "resource_caps.retention_days",
    "resource_caps.seats",
    "resource_caps.vector_index",
    "resource_caps.embedding_dims",
    "quotas.recall",
    "quotas.write",
    "quotas.debug_embeddings",
    "quotas.recall_text_embed",
    "runtime.max_memory_mb",
    "runtime.request_timeout_ms",
    "governance",
    "ops.outbox",
    "ops.health",
    "observability",
    "slo.objectives",
];

/// `tier.field` for every required field a tier row of `profiles` (the
/// `tier_profiles` document) lacks.
pub fn missing_fields(profiles: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (tier, row) in profiles.get("tiers").and_then(Value::as_object).into_iter().flatten() {
        for field in REQUIRED_FIELDS {
            let found = field.split('.').try_fold(row, |v, k| v.get(k)).is_some_and(|v| !v.is_null());
            if !found {
                out.push(format!("{tier}.{field}"));
            }
        }
    }
    out
}

/// `resource_caps.embedding_dims` of the default tier, from [`to_variables`]' output.
pub fn embedding_dims(vars: &BTreeMap<String, String>) -> Option<usize> {
    let profiles: Value = serde_json::from_str(vars.get("tier_profiles")?).ok()?;
    let tier = vars.get("default_tier")?;
    let dims = profiles.get("tiers")?.get(tier)?.get("resource_caps")?.get("embedding_dims")?.as_u64()?;
    (1..=8192).contains(&dims).then_some(dims as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_tiers_are_complete_and_gaps_are_named() {
        let config = crate::repo_root().join("config/tiers.yaml");
        let vars = load(&config).unwrap();
        let doc: Value = serde_json::from_str(&vars["tier_profiles"]).unwrap();
        assert_eq!(missing_fields(&doc), Vec::<String>::new());
        let partial = serde_json::json!({"tiers": {"t": {"description": "x", "ops": {"outbox": {}}}}});
        let missing = missing_fields(&partial);
        assert!(missing.contains(&"t.ops.health".to_string()) && !missing.contains(&"t.ops.outbox".to_string()));
        assert_eq!(missing.len(), REQUIRED_FIELDS.len() - 2);
    }

    /// config/tiers.json is what `spin up` reads: it must say what
    /// config/tiers.yaml says.
    #[test]
    fn the_shipped_json_matches_the_yaml() {
        let config = crate::repo_root().join("config");
        let expected = json_file(&config.join("tiers.yaml")).unwrap();
        let shipped = std::fs::read_to_string(config.join("tiers.json")).unwrap_or_default();
        assert!(shipped == expected, "config/tiers.json is out of date with config/tiers.yaml: run `make tiers-json`");
    }

    #[test]
    fn placements_are_checked_at_start_against_the_variables() {
        let vars = to_variables(
            "default_tier: solo\ntiers:\n  solo: {resource_caps: {store: sqlite}}\n  team: {resource_caps: {store: postgres}, driver_flags: {store_connection: tenant_database_url}}\n",
        )
        .unwrap();
        let with = |url: &'static str| {
            let vars = vars.clone();
            move |n: &str| match n {
                "tenant_database_url" => Some(url.to_string()).filter(|u| !u.is_empty()),
                _ => vars.get(n).cloned(),
            }
        };
        let placed = check_placements(with("postgres://cairn@db:5432/t")).unwrap();
        // The home store is SQLite (no database_url): solo stays home.
        assert_eq!(placed, BTreeMap::from([("team".to_string(), "postgres")]));
        let e = check_placements(with("")).unwrap_err().to_string();
        assert!(e.contains("tier team stores in postgres, but the variable tenant_database_url is empty"), "{e}");
        let shipped = load(&crate::repo_root().join("config/tiers.yaml")).unwrap();
        assert!(
            check_placements(|n| shipped.get(n).cloned()).unwrap().is_empty(),
            "the shipped tiers all store at home"
        );
    }

    #[test]
    fn converts_and_keeps_unknown_fields() {
        let vars = to_variables(
            "default_tier: team\ntiers:\n  team:\n    resource_caps: {embedding_dims: 384}\n    driver_flags: {x: [1, 2]}\n    future_field: kept\n",
        )
        .unwrap();
        assert_eq!(vars["default_tier"], "team");
        let v: Value = serde_json::from_str(&vars["tier_profiles"]).unwrap();
        assert_eq!(v["tiers"]["team"]["future_field"], "kept");
        assert_eq!(v["tiers"]["team"]["driver_flags"]["x"][1], 2);
        assert!(to_variables("tiers: {}").is_err());
        assert!(to_variables("default_tier: gold\ntiers: {solo: {}}").is_err());
    }
}
