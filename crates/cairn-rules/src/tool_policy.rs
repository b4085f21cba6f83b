//! The effective tool policy of the matched rules (reference §5.3 step 7):
//! `allow` is the intersection of every non-empty allowlist (sorted; absent
//! when no rule has one), `deny` the union (sorted), `prefer` the rules'
//! preferences concatenated from the highest rank down, first occurrence
//! kept; with an explanation of who contributed what.

use crate::rank::{Rank, js_num};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

/// One matched rule's tool patch and rank.
pub struct ToolRule<'a> {
    pub rule_node_id: &'a str,
    pub rank: &'a Rank,
    pub tool: Option<&'a Value>,
}

fn list<'a>(tool: Option<&'a Value>, key: &str) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    tool.and_then(|t| t.get(key))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty() && seen.insert(*s))
        .collect()
}

/// The order JavaScript's `localeCompare` gives tool names in practice:
/// case-insensitive first, then by code point.
pub fn locale_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b))
}

fn sorted(mut xs: Vec<String>) -> Vec<String> {
    xs.sort_by(|a, b| locale_cmp(a, b));
    xs
}

/// The effective `tool` object and its `tool_explain`.
pub fn effective(rules: &[ToolRule]) -> (Value, Value) {
    let mut order: Vec<&ToolRule> = rules.iter().collect();
    order
        .sort_by(|a, b| b.rank.score.total_cmp(&a.rank.score).then_with(|| locale_cmp(a.rule_node_id, b.rule_node_id)));
    let mut contributions = Vec::new();
    let mut allow_sets: Vec<(&str, f64, Vec<&str>)> = Vec::new();
    let mut deny_by_tool: BTreeMap<&str, (&str, f64)> = BTreeMap::new();
    let mut prefer_by_tool: Map<String, Value> = Map::new();
    let mut deny_union: Vec<String> = Vec::new();
    let mut prefer_order: Vec<&str> = Vec::new();
    let mut top_choices: Vec<(&str, f64, &str)> = Vec::new();

    for r in order {
        let (allow, deny, prefer) = (list(r.tool, "allow"), list(r.tool, "deny"), list(r.tool, "prefer"));
        if allow.is_empty() && deny.is_empty() && prefer.is_empty() {
            continue;
        }
        contributions.push(json!({
            "rule_node_id": r.rule_node_id, "score": js_num(r.rank.score), "evidence_score": r.rank.evidence_score,
            "priority": r.rank.priority, "weight": js_num(r.rank.weight), "specificity": r.rank.specificity,
            "allow_n": allow.len(), "deny_n": deny.len(), "prefer_n": prefer.len(), "first_prefer": prefer.first(),
        }));
        if let Some(first) = prefer.first() {
            top_choices.push((r.rule_node_id, r.rank.score, first));
        }
        for t in &deny {
            if !deny_union.iter().any(|d| d == t) {
                deny_union.push(t.to_string());
            }
            let replace = deny_by_tool.get(t).is_none_or(|(_, s)| r.rank.score > *s);
            if replace {
                deny_by_tool.insert(t, (r.rule_node_id, r.rank.score));
            }
        }
        for t in &prefer {
            prefer_by_tool.entry(t.to_string()).or_insert_with(|| json!(r.rule_node_id));
            prefer_order.push(t);
        }
        if !allow.is_empty() {
            allow_sets.push((r.rule_node_id, r.rank.score, allow));
        }
    }

    let mut notes = Vec::new();
    let mut conflicts = Vec::new();
    let mut tool = Map::new();
    if allow_sets.is_empty() {
        notes.push("no matched rule sets tool.allow; allowlist not enforced.");
    } else {
        notes.push(
            "tool.allow present on >=1 matched rule; effective allowlist is the intersection across those rules.",
        );
        let mut inter: Vec<&str> = allow_sets[0].2.clone();
        for (_, _, set) in &allow_sets[1..] {
            inter.retain(|x| set.contains(x));
        }
        let allow = sorted(inter.into_iter().map(str::to_string).collect());
        let details: Vec<Value> = allow_sets
            .iter()
            .map(|(id, score, set)| json!({"rule_node_id": id, "score": js_num(*score), "allow_n": set.len()}))
            .collect();
        conflicts.push(json!({
            "code": "allow_intersection",
            "message": format!("effective allowlist is intersection of {} rule allowlists (size={})", allow_sets.len(), allow.len()),
            "details": details, "winner_rule_node_id": null,
        }));
        if allow.is_empty() {
            conflicts.push(json!({
                "code": "allow_intersection_empty",
                "message": "allowlist intersection is empty; tool selection may require strict=false fallback or rule changes",
                "details": details, "winner_rule_node_id": null,
            }));
        }
        tool.insert("allow".into(), json!(allow));
    }
    let deny = sorted(deny_union);
    if !deny.is_empty() {
        tool.insert("deny".into(), json!(deny));
    }
    let mut seen = HashSet::new();
    let prefer: Vec<&str> = prefer_order.into_iter().filter(|t| seen.insert(*t)).collect();
    if !prefer.is_empty() {
        tool.insert("prefer".into(), json!(prefer));
    }
    let mut distinct = HashSet::new();
    top_choices.iter().for_each(|(_, _, t)| {
        distinct.insert(*t);
    });
    if distinct.len() > 1 {
        // Contributions are already in rank order: the first is the winner.
        let winner = top_choices[0].0;
        conflicts.push(json!({
            "code": "prefer_competing_top_choice",
            "message": format!("multiple matched rules propose different top preferred tools; highest-rank rule wins priority (winner={winner})"),
            "details": top_choices.iter().map(|(id, score, t)| json!({"rule_node_id": id, "score": js_num(*score), "first_prefer": t})).collect::<Vec<_>>(),
            "winner_rule_node_id": winner,
        }));
    }
    let deny_winners: Map<String, Value> =
        deny_by_tool.into_iter().map(|(t, (id, _))| (t.to_string(), json!(id))).collect();
    let explain = json!({
        "notes": notes,
        "contributions": contributions,
        "winners": {"prefer_by_tool": prefer_by_tool, "deny_by_tool": deny_winners},
        "conflicts": conflicts,
    });
    (Value::Object(tool), explain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(score: f64) -> Rank {
        Rank {
            score,
            evidence_score: 0,
            priority: 0,
            weight: 1.0,
            specificity: score as usize,
            condition_paths: vec![],
        }
    }

    /// Reference §10.1 #13.
    #[test]
    fn allow_intersects_deny_unions_prefer_follows_rank() {
        let (low, high) = (rank(1.0), rank(10.0));
        let t_low = json!({"prefer": ["psql"], "allow": ["psql", "curl"]});
        let t_high = json!({"prefer": ["curl"], "allow": ["curl"], "deny": ["rm"]});
        let (tool, explain) = effective(&[
            ToolRule { rule_node_id: "r_low", rank: &low, tool: Some(&t_low) },
            ToolRule { rule_node_id: "r_high", rank: &high, tool: Some(&t_high) },
        ]);
        assert_eq!(tool["allow"], json!(["curl"]));
        assert_eq!(tool["deny"], json!(["rm"]));
        assert_eq!(tool["prefer"], json!(["curl", "psql"]));
        assert_eq!(explain["contributions"][0]["priority"], 0);
        assert_eq!(explain["contributions"][0]["weight"], 1);
        let codes: Vec<&str> =
            explain["conflicts"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
        assert_eq!(codes, vec!["allow_intersection", "prefer_competing_top_choice"]);
        assert_eq!(explain["conflicts"][1]["winner_rule_node_id"], "r_high");
        assert_eq!(explain["winners"]["deny_by_tool"]["rm"], "r_high");
        assert_eq!(explain["winners"]["prefer_by_tool"]["psql"], "r_low");
    }

    #[test]
    fn no_tool_rules_give_an_empty_policy() {
        let r = rank(0.0);
        let (tool, explain) = effective(&[ToolRule { rule_node_id: "r", rank: &r, tool: None }]);
        assert_eq!(tool, json!({}));
        assert!(explain["contributions"].as_array().unwrap().is_empty());
    }
}
