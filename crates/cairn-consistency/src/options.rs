//! What to check: the request body of `POST /v1/admin/control/consistency-check`
//! and of `cairn job consistency-check` (its flags become these fields).

use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::tenant_scope::{self, RESERVED_SCOPE_PREFIX, ScopeDefaults};
use serde_json::Value;

/// Which checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckSet {
    All,
    /// The selected scopes' rows.
    Scope,
    /// Global checks: tenant boundaries, the control plane.
    CrossTenant,
}

impl CheckSet {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckSet::All => "all",
            CheckSet::Scope => "scope",
            CheckSet::CrossTenant => "cross_tenant",
        }
    }

    pub fn includes(self, set: CheckSet) -> bool {
        self == CheckSet::All || self == set
    }
}

/// `full` counts every finding; `fast` stops counting at [`FAST_COUNT_CAP`]
/// per check (a lower bound) and verifies only the newest commits of each
/// chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Fast,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Fast => "fast",
        }
    }
}

/// In fast mode a check stops counting here.
pub const FAST_COUNT_CAP: i64 = 1000;

/// Which scopes the scope checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeFilter {
    /// Every scope of every tenant.
    Every,
    /// One scope key.
    Key(String),
    /// Every scope of the default tenant (raw keys).
    DefaultTenant,
    /// Every scope of one other tenant (`tenant:<id>::scope:`).
    TenantPrefix(String),
}

impl ScopeFilter {
    /// The scopes a request's `tenant_id` and `scope` select, and the one
    /// scope key when a scope is named: a scope alone is the default
    /// tenant's, a tenant alone selects all its scopes, neither every scope.
    pub fn select(
        tenant: Option<&str>,
        scope: Option<&str>,
        defaults: &ScopeDefaults,
    ) -> Result<(ScopeFilter, Option<String>), ApiError> {
        Ok(match (tenant, scope) {
            (_, Some(s)) => {
                let ts = tenant_scope::resolve(tenant, Some(s), defaults)?;
                (ScopeFilter::Key(ts.scope_key.clone()), Some(ts.scope_key))
            }
            (Some(t), None) => {
                let t = tenant_scope::check_tenant(Some(t), defaults)?;
                if t == defaults.tenant_id {
                    (ScopeFilter::DefaultTenant, None)
                } else {
                    (ScopeFilter::TenantPrefix(format!("{RESERVED_SCOPE_PREFIX}{t}::scope:")), None)
                }
            }
            (None, None) => (ScopeFilter::Every, None),
        })
    }

    /// A condition on `column`. Keys are inlined as SQL string literals
    /// (quotes doubled), so a check's SQL needs no parameters however many
    /// tables it filters.
    pub fn sql(&self, column: &str) -> String {
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            ScopeFilter::Every => "1 = 1".into(),
            ScopeFilter::Key(k) => format!("{column} = {}", lit(k)),
            ScopeFilter::DefaultTenant => format!("substr({column}, 1, 7) <> '{RESERVED_SCOPE_PREFIX}'"),
            ScopeFilter::TenantPrefix(p) => format!("substr({column}, 1, {}) = {}", p.len(), lit(p)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Public tenant and scope as given (None: every tenant / scope).
    pub tenant_id: Option<String>,
    pub scope: Option<String>,
    /// The one scope key checked, when a scope was named.
    pub scope_key: Option<String>,
    pub filter: ScopeFilter,
    pub check_set: CheckSet,
    pub mode: Mode,
    pub sample: usize,
    pub strict: bool,
    pub strict_warnings: bool,
    /// Wall clock (ms), for claim ages.
    pub now_ms: i64,
    /// The outbox limits of derivation (tier `ops.outbox`).
    pub max_attempts: i64,
    pub claim_timeout_ms: i64,
}

/// The derivation limits the outbox checks compare against.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub max_attempts: i64,
    pub claim_timeout_ms: i64,
}

impl Options {
    /// Reads `{tenant_id?, scope?, check_set?, mode?, sample?, strict?,
    /// strict_warnings?}`. A scope alone is the default tenant's; a tenant
    /// alone selects all its scopes; neither, every scope.
    pub fn parse(
        body: &Value,
        defaults: &ScopeDefaults,
        limits: OutboxLimits,
        now_ms: i64,
    ) -> Result<Options, ApiError> {
        let mut r = Reader::new();
        let root = Reader::root(body)?;
        let tenant = r.str_opt(root, "tenant_id");
        let scope = r.str_opt(root, "scope");
        let check_set = match r.enum_opt(root, "check_set", &["all", "scope", "cross_tenant"]).as_deref() {
            Some("scope") => CheckSet::Scope,
            Some("cross_tenant") => CheckSet::CrossTenant,
            _ => CheckSet::All,
        };
        let mode = match r.enum_opt(root, "mode", &["full", "fast"]).as_deref() {
            Some("fast") => Mode::Fast,
            _ => Mode::Full,
        };
        let sample = r.int_opt(root, "sample", 1, 200).unwrap_or(20) as usize;
        let strict = r.bool_opt(root, "strict").unwrap_or(false);
        let strict_warnings = r.bool_opt(root, "strict_warnings").unwrap_or(false);
        r.finish()?;
        let (filter, scope_key) = ScopeFilter::select(tenant.as_deref(), scope.as_deref(), defaults)?;
        Ok(Options {
            tenant_id: tenant,
            scope,
            scope_key,
            filter,
            check_set,
            mode,
            sample,
            strict,
            strict_warnings,
            now_ms,
            max_attempts: limits.max_attempts,
            claim_timeout_ms: limits.claim_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: OutboxLimits = OutboxLimits { max_attempts: 25, claim_timeout_ms: 300_000 };

    fn parse(v: Value) -> Result<Options, ApiError> {
        Options::parse(&v, &ScopeDefaults::default(), LIMITS, 0)
    }

    #[test]
    fn scopes_select_keys_tenants_or_everything() {
        assert_eq!(parse(json!({})).unwrap().filter, ScopeFilter::Every);
        assert_eq!(parse(json!({"scope": "s"})).unwrap().filter, ScopeFilter::Key("s".into()));
        let o = parse(json!({"tenant_id": "acme", "scope": "s"})).unwrap();
        assert_eq!(o.scope_key.as_deref(), Some("tenant:acme::scope:s"));
        assert_eq!(parse(json!({"tenant_id": "default"})).unwrap().filter, ScopeFilter::DefaultTenant);
        assert_eq!(
            parse(json!({"tenant_id": "a_b"})).unwrap().filter,
            ScopeFilter::TenantPrefix("tenant:a_b::scope:".into())
        );
    }

    #[test]
    fn filters_quote_their_keys() {
        assert_eq!(ScopeFilter::Key("it's".into()).sql("n.scope"), "n.scope = 'it''s'");
        assert_eq!(
            ScopeFilter::TenantPrefix("tenant:a::scope:".into()).sql("s"),
            "substr(s, 1, 16) = 'tenant:a::scope:'"
        );
        assert_eq!(ScopeFilter::Every.sql("s"), "1 = 1");
    }

    #[test]
    fn bad_options_are_400s() {
        for body in [
            json!({"check_set": "some"}),
            json!({"mode": "slow"}),
            json!({"sample": 0}),
            json!({"sample": 201}),
            json!({"tenant_id": "-bad"}),
            json!({"scope": "tenant:x"}),
            json!([1]),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
        }
        let o =
            parse(json!({"check_set": "cross_tenant", "mode": "fast", "sample": 5, "strict_warnings": true})).unwrap();
        assert_eq!((o.check_set, o.mode, o.sample, o.strict_warnings), (CheckSet::CrossTenant, Mode::Fast, 5, true));
    }
}
