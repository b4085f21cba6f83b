//! The kernel's configuration, read once per call from Spin variables.
//!
//! | variable              | meaning                                            | default   |
//! |-----------------------|----------------------------------------------------|-----------|
//! | `memory_tenant_id`    | tenant whose scopes are stored under their raw name | `default` |
//! | `memory_scope`        | scope used when a request names none               | `default` |
//! | `embedding_provider`  | derivation's embedder; empty or `none` = no provider | (none)  |
//! | `tier_profiles`       | JSON of `config/tiers.yaml` (see runtime-host)     | (none)    |
//! | `default_tier`        | tier whose profile applies to tenants              | `solo`    |
//!
//! The embedding dimension comes from the tier profile's
//! `resource_caps.embedding_dims` (384 when absent).

use cairn_core::tenant_scope::ScopeDefaults;
use serde_json::Value;

/// Dimension used when no tier profile names one (`all-minilm-l6-v2`).
pub const DEFAULT_EMBEDDING_DIMS: usize = 384;

#[derive(Debug, Clone)]
pub struct Settings {
    pub defaults: ScopeDefaults,
    pub embedding_dims: usize,
    /// `resource_caps.vector_index` of the tier: `flat` (exact scan only) or `ivf`.
    pub vector_index: String,
    pub embedding_provider: Option<String>,
    pub auto_topic_cluster_on_write: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            defaults: ScopeDefaults::default(),
            embedding_dims: DEFAULT_EMBEDDING_DIMS,
            vector_index: "flat".into(),
            embedding_provider: None,
            auto_topic_cluster_on_write: true,
        }
    }
}

impl Settings {
    /// Builds settings from a variable lookup (`get(name)` → value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let mut s = Settings::default();
        if let Some(t) = get("memory_tenant_id") {
            s.defaults.tenant_id = t;
        }
        if let Some(sc) = get("memory_scope") {
            s.defaults.scope = sc;
        }
        s.embedding_provider = get("embedding_provider").filter(|p| p != "none");
        if let Some(v) = get("auto_topic_cluster_on_write") {
            s.auto_topic_cluster_on_write = matches!(v.as_str(), "true" | "1" | "yes" | "on");
        }
        let tier = get("default_tier").unwrap_or_else(|| "solo".into());
        if let Some(profiles) = get("tier_profiles") {
            if let Some(dims) = embedding_dims_of(&profiles, &tier) {
                s.embedding_dims = dims;
            }
            if let Some(kind) = resource_cap_str(&profiles, &tier, "vector_index") {
                s.vector_index = kind;
            }
        }
        s
    }
}

/// `tiers[tier].resource_caps.<key>` as a string.
fn resource_cap_str(profiles_json: &str, tier: &str, key: &str) -> Option<String> {
    let v: Value = serde_json::from_str(profiles_json).ok()?;
    v.get("tiers")?.get(tier)?.get("resource_caps")?.get(key)?.as_str().map(str::to_string)
}

/// `tiers[tier].resource_caps.embedding_dims` from the profiles JSON
/// (`{"tiers": {"solo": {...}}}`).
fn embedding_dims_of(profiles_json: &str, tier: &str) -> Option<usize> {
    let v: Value = serde_json::from_str(profiles_json).ok()?;
    let dims = v.get("tiers")?.get(tier)?.get("resource_caps")?.get("embedding_dims")?.as_u64()?;
    (1..=8192).contains(&dims).then_some(dims as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dims_from_tier_profile() {
        let profiles = r#"{"tiers":{"solo":{"resource_caps":{"embedding_dims":16}},"growth":{}}}"#;
        let s = Settings::from_lookup(|n| match n {
            "tier_profiles" => Some(profiles.into()),
            "embedding_provider" => Some("local".into()),
            _ => None,
        });
        assert_eq!(s.embedding_dims, 16);
        assert_eq!(s.embedding_provider.as_deref(), Some("local"));
        let s = Settings::from_lookup(|n| (n == "embedding_provider").then(|| "none".into()));
        assert_eq!(s.embedding_dims, DEFAULT_EMBEDDING_DIMS);
        assert_eq!(s.embedding_provider, None);
    }
}
