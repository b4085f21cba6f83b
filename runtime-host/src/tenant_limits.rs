//! Per-tenant runtime caps (the tier profile's `runtime {max_memory_mb,
//! request_timeout_ms}`), applied by the host to each memory request's
//! store: a runaway request is stopped — out of memory or out of time —
//! with a clear error, and other tenants' requests are untouched.
//!
//! The host picks the tenant before it instantiates anything, from the
//! request's credentials the way the gateway reads them: a control-plane
//! API key (its tenant, by the key's sha256), a JWT that verifies with the
//! configured secret, else `X-Tenant-Id`, else the default tenant. The
//! gateway stays the authority on who may do what; this only chooses
//! limits (a request whose credentials do not hold is refused by it at once).
//! The operator's `--max-instance-memory-mb` / `--request-timeout-secs`
//! remain the ceiling.

use crate::app::RunLimits;
use crate::host_db::HostDb;
use crate::variables::AppVariables;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the host trusts a tenant's tier it looked up (an upgrade
/// reaches the caps within this).
const TIER_TTL: Duration = Duration::from_secs(1);
/// Tenants whose tier is remembered at most (the map is cleared beyond).
const TIER_CACHE_MAX: usize = 10_000;

/// What the host needs to map a request to its tier's runtime caps.
pub struct TenantLimits {
    tiers: Value,
    default_tier: String,
    default_tenant: String,
    billing_disabled: bool,
    jwt_secret: Option<String>,
    /// `memory_jwt_clock_skew_sec`, as the gateway reads it.
    jwt_skew_s: i64,
    tier_cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl TenantLimits {
    pub fn from_variables(v: &AppVariables) -> TenantLimits {
        let get = |k: &str| v.get(k).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        TenantLimits {
            tiers: get("tier_profiles").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null),
            default_tier: get("default_tier").unwrap_or_else(|| "solo".into()),
            default_tenant: get("memory_tenant_id").unwrap_or_else(|| "default".into()),
            billing_disabled: get("billing").is_some_and(|b| b == "disabled"),
            jwt_secret: get("memory_jwt_hs256_secret"),
            jwt_skew_s: get("memory_jwt_clock_skew_sec").and_then(|s| s.parse().ok()).unwrap_or(30),
            tier_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant a request speaks for (best effort, see the module docs).
    async fn tenant(&self, db: &HostDb, headers: &hyper::HeaderMap) -> String {
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        if let Some(key) = header("x-api-key")
            && let Some(t) = db
                .lookup_text(
                    "SELECT tenant_id FROM control_api_keys WHERE key_hash = ?",
                    &cairn_core::digest::sha256_hex(key),
                )
                .await
        {
            return t;
        }
        if let (Some(token), Some(secret)) =
            (header("authorization").and_then(|h| h.strip_prefix("Bearer ")), self.jwt_secret.as_deref())
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if let Some(p) = cairn_core::auth::verify_jwt(token.trim(), secret.as_bytes(), now, self.jwt_skew_s, true) {
                return p.tenant_id;
            }
        }
        header("x-tenant-id").map(str::to_string).unwrap_or_else(|| self.default_tenant.clone())
    }

    /// The limits of a request to `path`: its tenant's tier's runtime caps
    /// under the operator's ceiling (memory routes only).
    pub async fn for_request(
        &self,
        db: &HostDb,
        path: &str,
        headers: &hyper::HeaderMap,
        ceiling: &RunLimits,
    ) -> RunLimits {
        if !path.starts_with("/v1/memory/") || self.tiers.is_null() {
            return ceiling.clone();
        }
        let tenant = self.tenant(db, headers).await;
        let tier = if self.billing_disabled { "solo".to_string() } else { self.tier_of(db, &tenant).await };
        let runtime = self.tiers.get("tiers").and_then(|t| t.get(&tier)).and_then(|p| p.get("runtime"));
        let num = |k: &str| runtime.and_then(|r| r.get(k)).and_then(Value::as_f64).filter(|x| *x > 0.0);
        RunLimits {
            max_memory_bytes: num("max_memory_mb")
                .map(|mb| ((mb * 1024.0 * 1024.0) as usize).min(ceiling.max_memory_bytes))
                .unwrap_or(ceiling.max_memory_bytes),
            request_timeout: num("request_timeout_ms")
                .map(|ms| Duration::from_millis(ms as u64).min(ceiling.request_timeout))
                .unwrap_or(ceiling.request_timeout),
        }
    }
}

impl TenantLimits {
    /// The `tenant` label of `tenant`'s metrics: itself when its tier (as
    /// last looked up for a request, else the default tier) has tenant-level
    /// `observability`, else [`crate::metrics::AGGREGATE_TENANT`]. No lookup.
    pub fn metrics_tenant(&self, tenant: &str) -> String {
        let tier = if self.billing_disabled {
            "solo".to_string()
        } else {
            let cached = self.tier_cache.lock().expect("tier cache").get(tenant).map(|(_, t)| t.clone());
            cached.unwrap_or_else(|| self.default_tier.clone())
        };
        let observability = self.tiers["tiers"][&tier]["observability"].as_str();
        if crate::metrics::tenant_level(observability) {
            tenant.to_string()
        } else {
            crate::metrics::AGGREGATE_TENANT.to_string()
        }
    }

    /// The tenant's tier (its own, else the default), remembered for
    /// [`TIER_TTL`] so a request pays no lookup most of the time.
    async fn tier_of(&self, db: &HostDb, tenant: &str) -> String {
        let now = Instant::now();
        if let Some((at, tier)) = self.tier_cache.lock().expect("tier cache").get(tenant)
            && now.duration_since(*at) < TIER_TTL
        {
            return tier.clone();
        }
        let tier = db
            .lookup_text("SELECT tier FROM control_tenants WHERE tenant_id = ?", tenant)
            .await
            .unwrap_or_else(|| self.default_tier.clone());
        let mut cache = self.tier_cache.lock().expect("tier cache");
        if cache.len() >= TIER_CACHE_MAX {
            cache.clear();
        }
        cache.insert(tenant.to_string(), (now, tier.clone()));
        tier
    }
}
