//! The worker's configuration, read from Spin variables and the default
//! tier's profile (`ops.outbox` in `config/tiers.yaml`).
//!
//! | source                               | meaning                                   | default  |
//! |--------------------------------------|-------------------------------------------|----------|
//! | `ops.outbox.max_attempts`            | claims before a job is dead-lettered      | 25       |
//! | `ops.outbox.retry_base_ms`           | first backoff after a retryable failure   | 1000     |
//! | `ops.outbox.retry_max_ms`            | longest backoff                           | 300000   |
//! | `ops.outbox.claim_timeout_ms`        | a claim older than this may be taken over | 300000   |
//! | `topic_sim_threshold` (variable)     | cosine needed to join a topic             | 0.78     |
//! | `topic_min_events` (variable)        | members before a draft topic is active    | 5        |
//! | `topic_rollup_every` (variable)      | re-summarize an active topic every N members | 5     |
//! | `vector_index_min_vectors` (variable)| ready vectors before a scope's IVF index is trained | 2048 |
//!
//! The kernel's settings (tenant defaults, embedding dimension, provider)
//! come along in [`DeriveSettings::kernel`].

use cairn_memory::settings::Settings;
use serde_json::Value;

/// The embedding model the worker asks the host for.
pub use cairn_memory::settings::EMBEDDING_MODEL;

#[derive(Debug, Clone)]
pub struct DeriveSettings {
    pub kernel: Settings,
    pub max_attempts: i64,
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    pub claim_timeout_ms: i64,
    pub topic_sim_threshold: f64,
    pub topic_min_events: i64,
    /// An active topic is re-summarized each time it grows by this many members.
    pub rollup_every: i64,
    /// Ready vectors a scope needs before its IVF index is trained.
    pub index_min_vectors: i64,
    /// The tier profiles document, the default tier, `billing=disabled`
    /// (retention reads each tenant's tier).
    pub tier_profiles: Option<Value>,
    pub default_tier: String,
    pub billing_disabled: bool,
    /// Least time between two retention passes (`retention_interval_ms`).
    pub retention_interval_ms: i64,
}

impl Default for DeriveSettings {
    fn default() -> Self {
        DeriveSettings {
            kernel: Settings::default(),
            max_attempts: 25,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            claim_timeout_ms: 300_000,
            topic_sim_threshold: 0.78,
            topic_min_events: 5,
            rollup_every: 5,
            index_min_vectors: 2048,
            tier_profiles: None,
            default_tier: "solo".into(),
            billing_disabled: false,
            retention_interval_ms: 3_600_000,
        }
    }
}

impl DeriveSettings {
    /// Builds settings from a variable lookup (`get(name)` → value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> DeriveSettings {
        let mut s = DeriveSettings { kernel: Settings::from_lookup(&get), ..Default::default() };
        let tier = get("default_tier").unwrap_or_else(|| "solo".into());
        s.tier_profiles = get("tier_profiles").and_then(|p| serde_json::from_str::<Value>(&p).ok());
        s.billing_disabled = get("billing").is_some_and(|b| b.trim() == "disabled");
        if let Some(ms) = get("retention_interval_ms").and_then(|v| v.parse::<i64>().ok()).filter(|m| *m >= 0) {
            s.retention_interval_ms = ms;
        }
        s.default_tier = tier.clone();
        if let Some(outbox) =
            s.tier_profiles.as_ref().and_then(|v| v.get("tiers")?.get(&tier)?.get("ops")?.get("outbox").cloned())
        {
            let int =
                |k: &str, min: i64, max: i64| outbox.get(k).and_then(Value::as_i64).filter(|v| (min..=max).contains(v));
            s.max_attempts = int("max_attempts", 1, 1000).unwrap_or(s.max_attempts);
            s.retry_base_ms = int("retry_base_ms", 0, 86_400_000).unwrap_or(s.retry_base_ms);
            s.retry_max_ms = int("retry_max_ms", 0, 7 * 86_400_000).unwrap_or(s.retry_max_ms);
            s.claim_timeout_ms = int("claim_timeout_ms", 1000, 86_400_000).unwrap_or(s.claim_timeout_ms);
        }
        if let Some(t) =
            get("topic_sim_threshold").and_then(|v| v.parse::<f64>().ok()).filter(|t| (0.0..=1.0).contains(t))
        {
            s.topic_sim_threshold = t;
        }
        if let Some(n) = get("topic_min_events").and_then(|v| v.parse::<i64>().ok()).filter(|n| *n >= 1) {
            s.topic_min_events = n;
        }
        if let Some(n) = get("vector_index_min_vectors").and_then(|v| v.parse::<i64>().ok()).filter(|n| *n >= 16) {
            s.index_min_vectors = n;
        }
        if let Some(n) = get("topic_rollup_every").and_then(|v| v.parse::<i64>().ok()).filter(|n| *n >= 1) {
            s.rollup_every = n;
        }
        s
    }

    /// Backoff after the `attempts`-th failed attempt:
    /// `min(retry_max, retry_base · 2^(attempts−1))` milliseconds.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        cairn_core::retry::backoff_ms(attempts, self.retry_base_ms, self.retry_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outbox_ops_from_the_default_tier() {
        let profiles =
            r#"{"tiers":{"team":{"ops":{"outbox":{"max_attempts":3,"retry_base_ms":10,"retry_max_ms":50}}}}}"#;
        let s = DeriveSettings::from_lookup(|n| match n {
            "tier_profiles" => Some(profiles.into()),
            "default_tier" => Some("team".into()),
            _ => None,
        });
        assert_eq!((s.max_attempts, s.retry_base_ms, s.retry_max_ms), (3, 10, 50));
        assert_eq!([s.backoff_ms(1), s.backoff_ms(2), s.backoff_ms(3), s.backoff_ms(9)], [10, 20, 40, 50]);
        let d = DeriveSettings::from_lookup(|_| None);
        assert_eq!(d.max_attempts, 25);
        assert_eq!(d.backoff_ms(1), 1000);
        assert_eq!(d.backoff_ms(100), 300_000);
    }
}
