//! Recall knobs (reference §6.1): `limit`, `neighborhood_hops`, `max_nodes`,
//! `max_edges`, `ranked_limit`, `min_edge_weight`, `min_edge_confidence`.
//!
//! Missing knobs are filled from the base profile (`strict_edges` unless
//! configured). `recall_strategy` (`local|balanced|global`) applies only
//! when the caller set **no** knob ("explicit knobs" = any of the seven
//! keys present and non-null). Limits: limit 1..200, hops 1|2, max_nodes
//! 1..200, max_edges 1..100 (hard), ranked_limit 1..500, thresholds 0..1.

use cairn_core::ApiError;
use cairn_core::request_reader::{Obj, Reader};
use serde_json::{Value, json};

/// The seven knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    pub limit: i64,
    pub neighborhood_hops: i64,
    pub max_nodes: i64,
    pub max_edges: i64,
    pub ranked_limit: i64,
    pub min_edge_weight: f64,
    pub min_edge_confidence: f64,
}

pub const KNOB_KEYS: [&str; 7] =
    ["limit", "neighborhood_hops", "max_nodes", "max_edges", "ranked_limit", "min_edge_weight", "min_edge_confidence"];

const fn k(limit: i64, hops: i64, nodes: i64, edges: i64, ranked: i64, w: f64, c: f64) -> Knobs {
    Knobs {
        limit,
        neighborhood_hops: hops,
        max_nodes: nodes,
        max_edges: edges,
        ranked_limit: ranked,
        min_edge_weight: w,
        min_edge_confidence: c,
    }
}

/// A named profile's knobs.
pub fn profile(name: &str) -> Option<Knobs> {
    Some(match name {
        "legacy" => k(30, 2, 50, 100, 100, 0.0, 0.0),
        "strict_edges" => k(24, 2, 60, 80, 140, 0.2, 0.2),
        "quality_first" => k(30, 2, 80, 100, 180, 0.05, 0.05),
        "lite" => k(12, 1, 24, 24, 48, 0.25, 0.25),
        _ => return None,
    })
}

pub const PROFILES: &[&str] = &["legacy", "strict_edges", "quality_first", "lite"];
pub const DEFAULT_PROFILE: &str = "strict_edges";

/// A strategy's knobs (used only without explicit knobs).
pub fn strategy(name: &str) -> Option<Knobs> {
    match name {
        "local" => Some(k(16, 1, 32, 40, 80, 0.2, 0.2)),
        "balanced" => profile("strict_edges"),
        "global" => profile("quality_first"),
        _ => None,
    }
}

/// The strategy a set of knobs amounts to (trajectory's `strategy` when
/// the caller named none): `local` or `global` when they equal those
/// strategies' knobs, else `balanced`.
pub fn infer_strategy(k: &Knobs) -> &'static str {
    if Some(*k) == strategy("local") {
        "local"
    } else if Some(*k) == strategy("global") {
        "global"
    } else {
        "balanced"
    }
}

/// The resolved knobs and how they were chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub knobs: Knobs,
    pub profile: String,
    pub strategy: Option<String>,
    pub explicit: bool,
}

impl Resolved {
    pub fn budgets_json(&self) -> Value {
        let k = &self.knobs;
        json!({
            "limit": k.limit, "neighborhood_hops": k.neighborhood_hops, "max_nodes": k.max_nodes,
            "max_edges": k.max_edges, "ranked_limit": k.ranked_limit,
            "min_edge_weight": k.min_edge_weight, "min_edge_confidence": k.min_edge_confidence,
        })
    }
}

/// Whether the body sets any knob.
pub fn has_explicit_knobs(body: &Value) -> bool {
    KNOB_KEYS.iter().any(|k| body.get(k).is_some_and(|v| !v.is_null()))
}

/// Resolves the knobs of a recall body against `base_profile`, recording
/// every invalid value in `r` (so all issues are reported at once).
pub fn resolve(r: &mut Reader, o: Obj, base_profile: &str) -> Resolved {
    let explicit = has_explicit_knobs(&Value::Object(o.map.clone()));
    let strategy_name = r.enum_opt(o, "recall_strategy", &["local", "balanced", "global"]);
    let base = profile(base_profile).unwrap_or_else(|| profile(DEFAULT_PROFILE).expect("default profile exists"));
    let (fill, strategy_used) = match (&strategy_name, explicit) {
        (Some(s), false) => (strategy(s).expect("validated"), Some(s.clone())),
        _ => (base, None),
    };
    let hops = r.int_opt(o, "neighborhood_hops", 1, 2);
    let knobs = Knobs {
        limit: r.int_opt(o, "limit", 1, 200).unwrap_or(fill.limit),
        neighborhood_hops: hops.unwrap_or(fill.neighborhood_hops),
        max_nodes: r.int_opt(o, "max_nodes", 1, 200).unwrap_or(fill.max_nodes),
        max_edges: r.int_opt(o, "max_edges", 1, 100).unwrap_or(fill.max_edges),
        ranked_limit: r.int_opt(o, "ranked_limit", 1, 500).unwrap_or(fill.ranked_limit),
        min_edge_weight: r.num_opt(o, "min_edge_weight", 0.0, 1.0).unwrap_or(fill.min_edge_weight),
        min_edge_confidence: r.num_opt(o, "min_edge_confidence", 0.0, 1.0).unwrap_or(fill.min_edge_confidence),
    };
    let profile_name = if PROFILES.contains(&base_profile) { base_profile } else { DEFAULT_PROFILE };
    Resolved { knobs, profile: profile_name.to_string(), strategy: strategy_used, explicit }
}

/// Parses and resolves in one go (for callers that only need the knobs).
pub fn resolve_body(body: &Value, base_profile: &str) -> Result<Resolved, ApiError> {
    let mut r = Reader::new();
    let o = Reader::root(body)?;
    let out = resolve(&mut r, o, base_profile);
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_knobs_come_from_the_profile() {
        let r = resolve_body(&json!({}), "strict_edges").unwrap();
        assert_eq!(r.knobs, profile("strict_edges").unwrap());
        assert!(!r.explicit);
        let r = resolve_body(&json!({"limit": 5}), "legacy").unwrap();
        assert_eq!((r.knobs.limit, r.knobs.max_edges, r.knobs.min_edge_weight), (5, 100, 0.0));
        assert!(r.explicit);
        // An unknown configured profile falls back to the default.
        assert_eq!(resolve_body(&json!({}), "nope").unwrap().profile, "strict_edges");
    }

    #[test]
    fn strategy_applies_only_without_explicit_knobs() {
        let r = resolve_body(&json!({"recall_strategy": "local"}), "strict_edges").unwrap();
        assert_eq!((r.knobs.limit, r.knobs.neighborhood_hops), (16, 1));
        assert_eq!(r.strategy.as_deref(), Some("local"));
        let r = resolve_body(&json!({"recall_strategy": "local", "limit": 7}), "strict_edges").unwrap();
        assert_eq!((r.knobs.limit, r.knobs.neighborhood_hops), (7, 2), "explicit knobs: base profile fills the rest");
        assert_eq!(r.strategy, None);
        // null is absent.
        let r = resolve_body(&json!({"recall_strategy": "global", "limit": null}), "strict_edges").unwrap();
        assert_eq!(r.knobs, profile("quality_first").unwrap());
    }

    #[test]
    fn limits_are_enforced_with_every_issue_reported() {
        let e =
            resolve_body(&json!({"max_edges": 101, "limit": 0, "neighborhood_hops": 3}), "strict_edges").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_request"));
        let issues = e.details.unwrap()["issues"].as_array().unwrap().len();
        assert_eq!(issues, 3);
        assert!(resolve_body(&json!({"max_edges": 100, "ranked_limit": 500, "min_edge_weight": 1}), "lite").is_ok());
        assert!(resolve_body(&json!({"recall_strategy": "wide"}), "lite").is_err());
        assert!(resolve_body(&json!({"min_edge_confidence": -0.1}), "lite").is_err());
    }
}
