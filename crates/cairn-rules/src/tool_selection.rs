//! Choosing a tool under a policy (reference §5.4 `applyToolPolicy`).
//!
//! Candidates are trimmed and de-duplicated (first occurrence kept). Pass 1
//! removes deny-listed candidates (`deny_list`) and, when an allowlist
//! exists, the ones outside it (`not_in_allow_list`). When that leaves
//! nothing: `strict` refuses (`400 no_tools_allowed`); otherwise a deny-only
//! pass runs (`allowlist_filtered_all`), and if even that is empty the
//! fallback says `deny_filtered_all`. Preferred tools come first, in the
//! policy's prefer order, then the other allowed ones in candidate order.

use cairn_core::ApiError;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Trimmed, non-empty, first occurrence kept.
pub fn normalize_candidates<'a>(xs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    xs.into_iter().map(str::trim).filter(|s| !s.is_empty() && seen.insert(*s)).map(str::to_string).collect()
}

fn policy_list(policy: &Value, key: &str) -> Vec<String> {
    normalize_candidates(
        policy
            .get("tool")
            .and_then(|t| t.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    )
}

/// The selection document (`candidates, allowed, denied, preferred,
/// ordered, selected, fallback`).
pub fn select(candidates: &[String], policy: &Value, strict: bool) -> Result<Value, ApiError> {
    let allow = policy_list(policy, "allow");
    let deny: HashSet<String> = policy_list(policy, "deny").into_iter().collect();
    let prefer = policy_list(policy, "prefer");
    let has_allow = !allow.is_empty();

    let pass = |use_allow: bool| {
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for c in candidates {
            if deny.contains(c) {
                denied.push(json!({"name": c, "reason": "deny_list"}));
            } else if use_allow && has_allow && !allow.contains(c) {
                denied.push(json!({"name": c, "reason": "not_in_allow_list"}));
            } else {
                allowed.push(c.clone());
            }
        }
        (allowed, denied)
    };

    let (mut allowed, mut denied) = pass(true);
    let mut fallback = json!({
        "applied": false, "reason": "none", "note": "no fallback applied",
        "effective_mode": if has_allow { "allow_and_deny" } else { "deny_only" },
    });
    if !strict && allowed.is_empty() && has_allow {
        (allowed, denied) = pass(false);
        fallback = json!({
            "applied": true, "reason": "allowlist_filtered_all",
            "note": "allowlist eliminated all candidates; falling back to deny-only (ignore tool.allow) because strict=false",
            "effective_mode": "deny_only",
        });
    }
    if strict && allowed.is_empty() {
        let message = if has_allow {
            "no candidates remain after allow/deny filters"
        } else {
            "no candidates remain after deny filters"
        };
        return Err(ApiError::bad_request("no_tools_allowed", message).with_details(json!({
            "candidates": candidates.len(), "allow": allow.len(), "deny": deny.len(),
        })));
    }
    if !strict && allowed.is_empty() {
        fallback = json!({
            "applied": true, "reason": "deny_filtered_all",
            "note": "denylist eliminated all candidates; no tool can be selected",
            "effective_mode": "deny_only",
        });
    }
    let preferred: Vec<&String> = prefer.iter().filter(|t| allowed.contains(t)).collect();
    let mut ordered: Vec<&String> = preferred.clone();
    ordered.extend(allowed.iter().filter(|t| !preferred.contains(t)));
    Ok(json!({
        "candidates": candidates,
        "allowed": allowed,
        "denied": denied,
        "preferred": preferred,
        "ordered": ordered,
        "selected": ordered.first(),
        "fallback": fallback,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference §10.1 #11.
    #[test]
    fn strict_selection_orders_preferred_first() {
        let c = normalize_candidates(["rm", "curl", "psql", "psql"]);
        let policy = json!({"tool": {"allow": ["psql", "curl"], "deny": ["rm"], "prefer": ["psql"]}});
        let s = select(&c, &policy, true).unwrap();
        assert_eq!(s["candidates"], json!(["rm", "curl", "psql"]));
        assert_eq!(s["allowed"], json!(["curl", "psql"]));
        assert_eq!(s["preferred"], json!(["psql"]));
        assert_eq!(s["ordered"], json!(["psql", "curl"]));
        assert_eq!(s["selected"], "psql");
        assert_eq!(s["denied"], json!([{"name": "rm", "reason": "deny_list"}]));
    }

    /// Reference §10.1 #12.
    #[test]
    fn lenient_selection_falls_back_to_deny_only() {
        let c = normalize_candidates(["psql", "curl"]);
        let policy = json!({"tool": {"allow": ["nonexistent"], "deny": ["curl"]}});
        let s = select(&c, &policy, false).unwrap();
        assert_eq!(s["allowed"], json!(["psql"]));
        assert_eq!(s["selected"], "psql");
        assert_eq!(s["fallback"]["applied"], true);
        assert_eq!(s["fallback"]["reason"], "allowlist_filtered_all");

        let e = select(&c, &policy, true).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "no_tools_allowed"));
        let all_denied = select(&c, &json!({"tool": {"deny": ["psql", "curl"]}}), false).unwrap();
        assert_eq!(all_denied["fallback"]["reason"], "deny_filtered_all");
        assert_eq!(all_denied["selected"], Value::Null);
    }
}
