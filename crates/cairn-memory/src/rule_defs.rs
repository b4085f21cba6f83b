//! Rule definitions (`memory_rule_defs`): a rule node's `if` / `then` /
//! `exceptions` and scope target, read from its slots once, when the write
//! that creates the node commits (state `draft`). Later state changes go
//! through `rules/state` commits (the policy component); the node itself is
//! insert-once, so editing slots never changes a definition.

use crate::recall::context::RuleDef;
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, placeholders};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Rule states (`draft → shadow → active`, any → `disabled`).
pub const STATES: &[&str] = &["draft", "shadow", "active", "disabled"];

/// What a rule node's slots say about its definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DefSource {
    pub rule_scope: &'static str,
    pub target_agent_id: Option<String>,
    pub target_team_id: Option<String>,
    pub if_json: Value,
    pub then_json: Value,
    pub exceptions_json: Value,
    /// The rank's slots: `rule_meta.priority` / `rule_meta.weight` (when
    /// `rule_meta` is an object), else the legacy `priority` / `weight`.
    pub priority: Option<Value>,
    pub weight: Option<Value>,
}

/// What a definition copies from its (insert-once) rule node.
pub struct DefNode<'a> {
    pub memory_lane: &'a str,
    pub owner_agent_id: Option<&'a str>,
    pub owner_team_id: Option<&'a str>,
    pub summary: Option<&'a str>,
}

fn rank_slot(slots: &Map<String, Value>, key: &str) -> Option<Value> {
    let meta = slots.get("rule_meta").and_then(Value::as_object);
    meta.and_then(|m| m.get(key)).filter(|v| !v.is_null()).or_else(|| slots.get(key).filter(|v| !v.is_null())).cloned()
}

fn trimmed_str(slots: &Map<String, Value>, key: &str) -> Option<String> {
    slots.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

impl DefSource {
    /// Reads the slots the reference's write path reads: `if` (default
    /// `{}`), `then` (`{}`), `exceptions` (`[]`), `rule_scope`
    /// (`global` unless `team` / `agent`, case-insensitive) and the trimmed
    /// `target_agent_id` / `target_team_id`.
    pub fn from_slots(slots: &Map<String, Value>) -> DefSource {
        let scope = slots.get("rule_scope").and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase());
        let rule_scope = match scope.as_deref() {
            Some("team") => "team",
            Some("agent") => "agent",
            _ => "global",
        };
        DefSource {
            rule_scope,
            target_agent_id: trimmed_str(slots, "target_agent_id"),
            target_team_id: trimmed_str(slots, "target_team_id"),
            if_json: slots.get("if").cloned().unwrap_or_else(|| json!({})),
            then_json: slots.get("then").cloned().unwrap_or_else(|| json!({})),
            exceptions_json: slots.get("exceptions").cloned().unwrap_or_else(|| json!([])),
            priority: rank_slot(slots, "priority"),
            weight: rank_slot(slots, "weight"),
        }
    }

    /// An agent rule must name its agent and a team rule its team
    /// (`400 invalid_rule_scope_target`; the reference failed with a 500).
    pub fn check_target(&self) -> Result<(), ApiError> {
        let missing = match self.rule_scope {
            "agent" if self.target_agent_id.is_none() => "agent-scoped rule requires target_agent_id",
            "team" if self.target_team_id.is_none() => "team-scoped rule requires target_team_id",
            _ => return Ok(()),
        };
        Err(ApiError::bad_request("invalid_rule_scope_target", missing))
    }
}

/// Inserts the draft definition of a newly written rule node (no-op when
/// one exists).
pub fn insert_draft(
    db: &dyn Sql,
    scope_key: &str,
    rule_node_id: &str,
    src: &DefSource,
    node: &DefNode,
    commit_id: &str,
    now: &str,
) -> Result<(), ApiError> {
    insert(db, scope_key, rule_node_id, "draft", src, node, commit_id, now)
}

/// Inserts a definition in `state` unless the rule already has one.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    db: &dyn Sql,
    scope_key: &str,
    rule_node_id: &str,
    state: &str,
    src: &DefSource,
    node: &DefNode,
    commit_id: &str,
    now: &str,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_rule_defs (rule_node_id, scope, state, rule_scope, target_agent_id, target_team_id, \
         if_json, then_json, exceptions_json, created_at, updated_at, commit_id, memory_lane, owner_agent_id, \
         owner_team_id, summary, rank_priority, rank_weight) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule_node_id) DO NOTHING",
        &[
            rule_node_id.into(),
            scope_key.into(),
            state.into(),
            src.rule_scope.into(),
            src.target_agent_id.clone().into(),
            src.target_team_id.clone().into(),
            src.if_json.to_string().into(),
            src.then_json.to_string().into(),
            src.exceptions_json.to_string().into(),
            now.into(),
            now.into(),
            commit_id.into(),
            node.memory_lane.into(),
            node.owner_agent_id.into(),
            node.owner_team_id.into(),
            node.summary.into(),
            src.priority.as_ref().map(Value::to_string).into(),
            src.weight.as_ref().map(Value::to_string).into(),
        ],
    )?;
    Ok(())
}

/// Parses a stored JSON column (`fallback` when it is not JSON).
pub fn json_column(text: Option<&str>, fallback: Value) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(fallback)
}

/// The definitions of the rule nodes `ids` of a scope, as recall's context
/// shows them.
pub fn for_context(db: &dyn Sql, scope_key: &str, ids: &[&str]) -> Result<HashMap<String, RuleDef>, ApiError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        let mut params: Vec<SqlValue> = vec![scope_key.into()];
        params.extend(chunk.iter().map(|s| SqlValue::from(*s)));
        let sql = format!(
            "SELECT rule_node_id, state, rule_scope, target_agent_id, target_team_id, if_json, then_json, \
             exceptions_json, positive_count, negative_count FROM memory_rule_defs \
             WHERE scope = ? AND rule_node_id IN ({})",
            placeholders(chunk.len())
        );
        for r in db.query(&sql, &params)? {
            out.insert(
                r.string(0),
                RuleDef {
                    state: r.string(1),
                    rule_scope: r.opt_string(2),
                    target_agent_id: r.opt_string(3),
                    target_team_id: r.opt_string(4),
                    if_json: json_column(r.text(5), json!({})),
                    then_json: json_column(r.text(6), json!({})),
                    exceptions_json: json_column(r.text(7), json!([])),
                    positive_count: r.int(8),
                    negative_count: r.int(9),
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_slots_like_the_reference() {
        let d =
            DefSource::from_slots(&slots(json!({"if": {"a": 1}, "rule_scope": " Agent ", "target_agent_id": " a1 "})));
        assert_eq!(d.rule_scope, "agent");
        assert_eq!(d.target_agent_id.as_deref(), Some("a1"));
        assert_eq!(d.then_json, json!({}));
        assert_eq!(d.exceptions_json, json!([]));
        assert!(d.check_target().is_ok());
        assert_eq!((d.priority, d.weight), (None, None));

        let ranked =
            DefSource::from_slots(&slots(json!({"rule_meta": {"priority": 5, "weight": null}, "weight": "1.5"})));
        assert_eq!((ranked.priority, ranked.weight), (Some(json!(5)), Some(json!("1.5"))));
        let legacy = DefSource::from_slots(&slots(json!({"rule_meta": "high", "priority": 3})));
        assert_eq!(legacy.priority, Some(json!(3)));

        let d = DefSource::from_slots(&slots(json!({"rule_scope": "planet", "target_team_id": "  "})));
        assert_eq!(d.rule_scope, "global");
        assert_eq!(d.target_team_id, None);

        let team = DefSource::from_slots(&slots(json!({"rule_scope": "team", "target_team_id": ""})));
        assert_eq!(team.check_target().unwrap_err().code, "invalid_rule_scope_target");
    }
}
