//! Tenant and scope: validation and the internal scope key every memory row
//! is keyed by. The default tenant's scopes are stored under their raw name;
//! every other tenant's under `tenant:<tenant_id>::scope:<scope>`, which is
//! why public scopes may not start with `tenant:`. Responses always echo the
//! public tenant and scope, never the key.

use crate::api_error::ApiError;

/// Reserved prefix of internal scope keys.
pub const RESERVED_SCOPE_PREFIX: &str = "tenant:";
/// Longest accepted scope name, in bytes.
pub const MAX_SCOPE_LEN: usize = 256;

/// Defaults applied when a request names no tenant or scope.
#[derive(Debug, Clone)]
pub struct ScopeDefaults {
    pub tenant_id: String,
    pub scope: String,
}

impl Default for ScopeDefaults {
    fn default() -> Self {
        ScopeDefaults { tenant_id: "default".into(), scope: "default".into() }
    }
}

/// A resolved (tenant, scope) pair and its storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    pub tenant_id: String,
    pub scope: String,
    pub scope_key: String,
}

/// Whether `t` matches `^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`.
pub fn is_valid_tenant_id(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Validates the tenant id (`400 invalid_tenant_id`).
pub fn check_tenant(tenant: Option<&str>, defaults: &ScopeDefaults) -> Result<String, ApiError> {
    let tenant = tenant.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(&defaults.tenant_id);
    if !is_valid_tenant_id(tenant) {
        return Err(ApiError::bad_request(
            "invalid_tenant_id",
            "tenant_id must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$",
        )
        .with_details(serde_json::json!({ "tenant_id": tenant })));
    }
    Ok(tenant.to_string())
}

/// Validates the scope name (`400 invalid_scope`).
pub fn check_scope(scope: Option<&str>, defaults: &ScopeDefaults) -> Result<String, ApiError> {
    let scope = match scope {
        None => defaults.scope.as_str(),
        Some(s) => s.trim(),
    };
    if scope.is_empty() {
        return Err(ApiError::bad_request("invalid_scope", "scope must not be empty"));
    }
    if scope.starts_with(RESERVED_SCOPE_PREFIX) {
        return Err(ApiError::bad_request("invalid_scope", "scope must not start with the reserved prefix 'tenant:'")
            .with_details(serde_json::json!({ "scope": scope })));
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(ApiError::bad_request("invalid_scope", format!("scope must be at most {MAX_SCOPE_LEN} bytes")));
    }
    Ok(scope.to_string())
}

/// The storage key of (tenant, scope).
pub fn scope_key(tenant_id: &str, scope: &str, defaults: &ScopeDefaults) -> String {
    if tenant_id == defaults.tenant_id { scope.to_string() } else { format!("tenant:{tenant_id}::scope:{scope}") }
}

/// The public (tenant, scope) of a storage key, given the default tenant's
/// id (whose scopes are stored under their raw names).
pub fn split_key<'a>(key: &'a str, default_tenant: &'a str) -> (&'a str, &'a str) {
    key.strip_prefix(RESERVED_SCOPE_PREFIX).and_then(|r| r.split_once("::scope:")).unwrap_or((default_tenant, key))
}

/// Resolves and validates a request's tenant and scope.
pub fn resolve(tenant: Option<&str>, scope: Option<&str>, defaults: &ScopeDefaults) -> Result<TenantScope, ApiError> {
    let tenant_id = check_tenant(tenant, defaults)?;
    let scope = check_scope(scope, defaults)?;
    let scope_key = scope_key(&tenant_id, &scope, defaults);
    Ok(TenantScope { tenant_id, scope, scope_key })
}

/// A range of scope keys in SQLite's byte order: `lo <= key < hi` (no `hi`:
/// unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lo: String,
    pub hi: Option<String>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange { lo: String::new(), hi: None }
    }

    pub fn contains(&self, key: &str) -> bool {
        key >= self.lo.as_str() && self.hi.as_deref().is_none_or(|hi| key < hi)
    }
}

/// The scope keys of `tenant_id` as ranges, in key order: the default
/// tenant's are every key outside `tenant:…`, another tenant's those below
/// its `tenant:<id>::scope:` prefix. Unlike a `LIKE` pattern these are exact
/// (case-sensitive) and each is one seek in an index on the scope.
pub fn tenant_key_ranges(tenant_id: &str, defaults: &ScopeDefaults) -> Vec<KeyRange> {
    key_ranges_of(tenant_id, &defaults.tenant_id)
}

/// [`tenant_key_ranges`] given the default tenant's id alone. An id that
/// is not a valid tenant id (memory is only ever stored under valid ones)
/// holds no key: one empty range, so a name such as `acme::scope:p` never
/// selects part of `acme`.
pub fn key_ranges_of(tenant_id: &str, default_tenant: &str) -> Vec<KeyRange> {
    // ';' is the byte after ':', so `<prefix minus its ':'>;` bounds
    // everything that starts with the prefix.
    if tenant_id == default_tenant {
        vec![
            KeyRange { lo: String::new(), hi: Some(RESERVED_SCOPE_PREFIX.into()) },
            KeyRange { lo: "tenant;".into(), hi: None },
        ]
    } else if !is_valid_tenant_id(tenant_id) {
        vec![KeyRange { lo: String::new(), hi: Some(String::new()) }]
    } else {
        vec![KeyRange { lo: format!("tenant:{tenant_id}::scope:"), hi: Some(format!("tenant:{tenant_id}::scope;")) }]
    }
}

/// A parenthesized SQL condition on `column` holding exactly the keys in
/// `ranges` (no ranges: every key), with its positional (`?`) parameters in
/// order. Comparisons use the column's collation, which for scope columns
/// is SQLite's BINARY (byte order, case-sensitive), and each range is one
/// seek in an index leading with the column.
pub fn key_ranges_sql(column: &str, ranges: &[KeyRange]) -> (String, Vec<String>) {
    if ranges.is_empty() {
        return ("(1 = 1)".into(), Vec::new());
    }
    let mut params = Vec::new();
    let terms: Vec<String> = ranges
        .iter()
        .map(|r| {
            let mut t = Vec::new();
            if !r.lo.is_empty() {
                t.push(format!("{column} >= ?"));
                params.push(r.lo.clone());
            }
            if let Some(hi) = &r.hi {
                t.push(format!("{column} < ?"));
                params.push(hi.clone());
            }
            if t.is_empty() { "1 = 1".to_string() } else { t.join(" AND ") }
        })
        .collect();
    (format!("({})", terms.join(" OR ")), params)
}

/// The SQL condition on `column` selecting exactly `tenant_id`'s scope keys
/// (`default_tenant`'s are the un-prefixed ones), with its parameters: see
/// [`key_ranges_of`] and [`key_ranges_sql`].
pub fn tenant_key_sql(column: &str, tenant_id: &str, default_tenant: &str) -> (String, Vec<String>) {
    key_ranges_sql(column, &key_ranges_of(tenant_id, default_tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_default_and_other_tenants() {
        let d = ScopeDefaults::default();
        let a = resolve(None, None, &d).unwrap();
        assert_eq!((a.tenant_id.as_str(), a.scope.as_str(), a.scope_key.as_str()), ("default", "default", "default"));
        let b = resolve(Some("tenant-a"), Some("project-alpha"), &d).unwrap();
        assert_eq!(b.scope_key, "tenant:tenant-a::scope:project-alpha");
        assert_eq!(b.scope, "project-alpha");
    }

    #[test]
    fn rejects_bad_tenants_and_scopes() {
        let d = ScopeDefaults::default();
        for t in ["-x", "a b", &"a".repeat(65), "ü"] {
            assert_eq!(resolve(Some(t), None, &d).unwrap_err().code, "invalid_tenant_id", "{t}");
        }
        assert!(resolve(Some(&"a".repeat(64)), None, &d).is_ok());
        for s in ["", "   ", "tenant:x"] {
            assert_eq!(resolve(None, Some(s), &d).unwrap_err().code, "invalid_scope", "{s:?}");
        }
        // The reserved prefix is exact: other cases are ordinary scopes, and
        // tenant ids differing only in case are different tenants.
        assert_eq!(resolve(None, Some("Tenant:x"), &d).unwrap().scope_key, "Tenant:x");
        assert_eq!(resolve(Some("ACME"), Some("x"), &d).unwrap().scope_key, "tenant:ACME::scope:x");
    }

    #[test]
    fn key_ranges_hold_exactly_the_tenants_keys() {
        let d = ScopeDefaults::default();
        let keys = |t: &str, sc: &str| scope_key(t, sc, &d);
        let holds = |t: &str, key: &str| tenant_key_ranges(t, &d).iter().any(|r| r.contains(key));
        for sc in ["default", "a", "tenant", "tenant;x", "tenanz", "Tenant:x", "zzz", "~"] {
            assert!(holds("default", &keys("default", sc)), "{sc}");
            assert!(!holds("acme", &keys("default", sc)), "{sc}");
        }
        for sc in ["default", "x", "tenant;", "~"] {
            let k = keys("acme", sc);
            assert!(holds("acme", &k) && !holds("default", &k) && !holds("ACME", &k) && !holds("acm", &k), "{k}");
            assert!(!holds("acme.2", &k));
        }
        assert!(!holds("acme", &keys("acme.2", "x")));
        assert!(KeyRange::all().contains("") && KeyRange::all().contains("tenant:a::scope:b"));
    }

    #[test]
    fn key_sql_is_the_ranges() {
        assert_eq!(
            tenant_key_sql("scope", "acme", "default"),
            ("(scope >= ? AND scope < ?)".into(), vec!["tenant:acme::scope:".into(), "tenant:acme::scope;".into()])
        );
        assert_eq!(
            tenant_key_sql("n.scope", "default", "default"),
            ("(n.scope < ? OR n.scope >= ?)".into(), vec!["tenant:".into(), "tenant;".into()])
        );
        assert_eq!(key_ranges_sql("scope", &[]), ("(1 = 1)".into(), vec![]));
        assert_eq!(key_ranges_sql("scope", &[KeyRange::all()]), ("(1 = 1)".into(), vec![]));
        assert_eq!(key_ranges_of("acme", "default"), tenant_key_ranges("acme", &ScopeDefaults::default()));
        // An invalid tenant id holds nothing, not a part of another tenant.
        for bad in ["acme::scope:p", "acme::scope:", "", "a b"] {
            let ranges = key_ranges_of(bad, "default");
            for key in ["tenant:acme::scope:p", "tenant:acme::scope:p::scope:q", "default", "", "zz"] {
                assert!(!ranges.iter().any(|r| r.contains(key)), "{bad:?} holds {key}");
            }
            assert_eq!(tenant_key_sql("scope", bad, "default"), ("(scope < ?)".into(), vec![String::new()]));
        }
    }
}
