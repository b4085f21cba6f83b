//! The kernel's configuration, read once per call from Spin variables.
//!
//! | variable              | meaning                                            | default   |
//! |-----------------------|----------------------------------------------------|-----------|
//! | `memory_tenant_id`    | tenant whose scopes are stored under their raw name | `default` |
//! | `memory_scope`        | scope used when a request names none               | `default` |
//! | `embedding_provider`  | derivation's embedder; empty or `none` = no provider | (none)  |
//! | `tier_profiles`       | JSON of `config/tiers.yaml` (see runtime-host)     | (none)    |
//! | `default_tier`        | tier whose profile applies to tenants              | `solo`    |
//! | `memory_recall_audit` | one `memory_recall_audit` row per recall: `true` (written by the kernel), `host` (handed to the embedding, which writes it off the request path), `false` | `true` |
//! | `memory_recall_profile` | recall's base knob profile (§6.1)                | `strict_edges` |
//! | `memory_recall_profile_policy_json` | per tenant/endpoint profiles: `{"endpoint": {"recall_text": "lite"}, "tenant_default": {"acme": "quality_first"}, "tenant_endpoint": {"acme": {"recall": "legacy"}}}` | (none) |
//!
//! The embedding dimension comes from the tier profile's
//! `resource_caps.embedding_dims` (384 when absent).

use cairn_core::tenant_scope::ScopeDefaults;
use serde_json::Value;

/// The embedding model components ask the host for (Spin's `ai_models`).
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

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
    /// Base recall profile (`memory_recall_profile`).
    pub recall_profile: String,
    /// `memory_recall_profile_policy_json`, when it parsed as an object.
    pub recall_profile_policy: Option<Value>,
    /// Who writes the `memory_recall_audit` row of a recall
    /// (`memory_recall_audit`).
    pub recall_audit: AuditSink,
    /// The label of the embedder that embeds queries now
    /// (`embedding_model_label`, else `<embedding_provider>:all-minilm-l6-v2`,
    /// as derivation labels the vectors it stores).
    pub embedding_model_label: Option<String>,
}

/// Where a recall's audit row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSink {
    /// Not recorded.
    Off,
    /// Written by the kernel in a small write transaction of its own (what
    /// Spin runs: a write per read).
    Inline,
    /// Returned with the answer for the embedding to persist (`cairn`
    /// batches them off the request path), so a recall never writes.
    Embedding,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            defaults: ScopeDefaults::default(),
            embedding_dims: DEFAULT_EMBEDDING_DIMS,
            vector_index: "flat".into(),
            embedding_provider: None,
            auto_topic_cluster_on_write: true,
            recall_profile: crate::recall::knobs::DEFAULT_PROFILE.into(),
            recall_profile_policy: None,
            recall_audit: AuditSink::Inline,
            embedding_model_label: None,
        }
    }
}

impl Settings {
    /// Builds settings from a variable lookup (`get(name)` → value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let mut s = Settings { defaults: scope_defaults(&get), ..Settings::default() };
        s.embedding_provider = get("embedding_provider").filter(|p| p != "none");
        s.embedding_model_label = get("embedding_model_label")
            .filter(|l| !l.is_empty())
            .or_else(|| s.embedding_provider.as_ref().map(|p| format!("{p}:{EMBEDDING_MODEL}")));
        if let Some(v) = get("auto_topic_cluster_on_write") {
            s.auto_topic_cluster_on_write = matches!(v.as_str(), "true" | "1" | "yes" | "on");
        }
        if let Some(p) = get("memory_recall_profile").filter(|p| crate::recall::knobs::profile(p).is_some()) {
            s.recall_profile = p;
        }
        if let Some(v) = get("memory_recall_audit") {
            s.recall_audit = match v.as_str() {
                "false" | "0" | "no" | "off" => AuditSink::Off,
                "host" => AuditSink::Embedding,
                _ => AuditSink::Inline,
            };
        }
        s.recall_profile_policy = get("memory_recall_profile_policy_json")
            .and_then(|j| serde_json::from_str::<Value>(&j).ok())
            .filter(Value::is_object);
        let tier = get("default_tier").unwrap_or_else(|| "solo".into());
        // Parsed once: it is the whole tiers document.
        if let Some(caps) = get("tier_profiles").and_then(|p| resource_caps(&p, &tier)) {
            if let Some(dims) = caps.get("embedding_dims").and_then(Value::as_u64).filter(|d| (1..=8192).contains(d)) {
                s.embedding_dims = dims as usize;
            }
            if let Some(kind) = caps.get("vector_index").and_then(Value::as_str) {
                s.vector_index = kind.to_string();
            }
        }
        s
    }
}

impl Settings {
    /// The base recall profile for a tenant and endpoint (`recall` or
    /// `recall_text`): policy `tenant_endpoint` > `tenant_default` >
    /// `endpoint` > `memory_recall_profile` (reference §6.1). Names that are
    /// not profiles are skipped.
    pub fn recall_profile_for(&self, tenant: Option<&str>, endpoint: &str) -> String {
        let tenant = tenant.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(&self.defaults.tenant_id);
        let valid = |v: Option<&Value>| {
            v.and_then(Value::as_str).filter(|p| crate::recall::knobs::profile(p).is_some()).map(str::to_string)
        };
        if let Some(p) = &self.recall_profile_policy {
            let candidates = [
                p.get("tenant_endpoint").and_then(|t| t.get(tenant)).and_then(|t| t.get(endpoint)),
                p.get("tenant_default").and_then(|t| t.get(tenant)),
                p.get("endpoint").and_then(|t| t.get(endpoint)),
            ];
            if let Some(found) = candidates.into_iter().find_map(valid) {
                return found;
            }
        }
        self.recall_profile.clone()
    }
}

/// The default tenant and scope (`memory_tenant_id`, `memory_scope`): all
/// a component that only resolves scopes needs to read.
pub fn scope_defaults(get: impl Fn(&str) -> Option<String>) -> ScopeDefaults {
    let mut d = ScopeDefaults::default();
    if let Some(t) = get("memory_tenant_id") {
        d.tenant_id = t;
    }
    if let Some(sc) = get("memory_scope") {
        d.scope = sc;
    }
    d
}

/// `tiers[tier].resource_caps` of the profiles JSON (`{"tiers": {"solo": {...}}}`).
fn resource_caps(profiles_json: &str, tier: &str) -> Option<Value> {
    let mut v: Value = serde_json::from_str(profiles_json).ok()?;
    v.get_mut("tiers")?.get_mut(tier)?.get_mut("resource_caps").map(Value::take)
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

    #[test]
    fn recall_profile_precedence() {
        let policy = r#"{"endpoint": {"recall_text": "lite"}, "tenant_default": {"acme": "quality_first"},
            "tenant_endpoint": {"acme": {"recall": "legacy"}, "bad": {"recall": "nope"}}}"#;
        let s = Settings::from_lookup(|n| match n {
            "memory_recall_profile_policy_json" => Some(policy.into()),
            "memory_recall_profile" => Some("quality_first".into()),
            _ => None,
        });
        assert_eq!(s.recall_profile_for(Some("acme"), "recall"), "legacy");
        assert_eq!(s.recall_profile_for(Some("acme"), "recall_text"), "quality_first");
        assert_eq!(s.recall_profile_for(Some("other"), "recall_text"), "lite");
        assert_eq!(s.recall_profile_for(Some("bad"), "recall"), "quality_first", "unknown names are skipped");
        assert_eq!(s.recall_profile_for(None, "recall"), "quality_first");
        let plain = Settings::from_lookup(|n| (n == "memory_recall_profile").then(|| "wat".into()));
        assert_eq!(plain.recall_profile_for(None, "recall"), "strict_edges");
    }
}
