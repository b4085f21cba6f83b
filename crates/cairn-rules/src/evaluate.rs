//! `rules/evaluate` over loaded rule rows (reference §5.3): scope filter,
//! lane filter (only when the context names an agent or a team), condition
//! match, then-schema check, rank; the applied policy merges matched patches
//! in ascending rank (highest wins) and replaces `tool` with the effective
//! tool policy. Active and shadow rules are merged separately; shadow rules
//! never touch the applied policy.

use crate::condition::{excepted, if_matches};
use crate::policy_patch::{self, Conflict};
use crate::rank::{Rank, js_num};
use crate::safe_regex::RegexCache;
use crate::tool_policy::{self, ToolRule, locale_cmp};
use serde_json::{Map, Value, json};

/// A stored JSON column, parsed only when a rule gets that far (most rules
/// of a scan fail their `if` and never need their `then`).
#[derive(Debug, Clone)]
pub struct JsonText(pub String);

impl JsonText {
    /// The parsed value (`fallback` when the text is not JSON).
    pub fn value(&self, fallback: Value) -> Value {
        serde_json::from_str(&self.0).unwrap_or(fallback)
    }
}

impl From<Value> for JsonText {
    fn from(v: Value) -> Self {
        JsonText(v.to_string())
    }
}

/// A shadow or active rule as stored. The head is what deciding whether
/// it applies needs; the body is loaded only for the rules that pass
/// scope, lane and `if` (see [`candidates`]).
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub rule_node_id: String,
    pub state: String,
    pub rule_scope: String,
    pub target_agent_id: Option<String>,
    pub target_team_id: Option<String>,
    pub memory_lane: String,
    pub owner_agent_id: Option<String>,
    pub owner_team_id: Option<String>,
    pub if_json: Value,
    pub body: Option<RuleBody>,
}

/// The rest of a rule's definition.
#[derive(Debug, Clone)]
pub struct RuleBody {
    pub then_json: JsonText,
    pub exceptions_json: JsonText,
    pub positive_count: i64,
    pub negative_count: i64,
    pub commit_id: String,
    pub summary: Option<String>,
    /// The rank's `priority` / `weight` slots (`rule_meta.x`, else `x`).
    pub priority: Option<Value>,
    pub weight: Option<Value>,
}

/// The agent and team a context speaks for (`agent.id` / `agent_id`,
/// `agent.team_id` / `team_id`, trimmed, non-empty).
pub fn context_identity(ctx: &Value) -> (Option<String>, Option<String>) {
    let pick = |nested: Option<&Value>, flat: Option<&Value>| {
        [nested, flat]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::trim)
            .find(|s| !s.is_empty())
            .map(str::to_string)
    };
    let agent = ctx.get("agent");
    (
        pick(agent.and_then(|a| a.get("id")), ctx.get("agent_id")),
        pick(agent.and_then(|a| a.get("team_id")), ctx.get("team_id")),
    )
}

fn scope_matches(r: &RuleRow, agent: Option<&str>, team: Option<&str>) -> bool {
    match r.rule_scope.as_str() {
        "agent" => r.target_agent_id.is_some() && r.target_agent_id.as_deref() == agent,
        "team" => r.target_team_id.is_some() && r.target_team_id.as_deref() == team,
        _ => true,
    }
}

/// (visible, legacy unowned private rule detected).
fn lane_visible(r: &RuleRow, agent: Option<&str>, team: Option<&str>) -> (bool, bool) {
    if r.memory_lane == "shared" {
        return (true, false);
    }
    let (oa, ot) = (r.owner_agent_id.as_deref(), r.owner_team_id.as_deref());
    if (oa.is_some() && oa == agent) || (ot.is_some() && ot == team) {
        return (true, false);
    }
    (false, oa.is_none() && ot.is_none())
}

fn lane_reason(agent: bool, team: bool) -> &'static str {
    match (agent, team) {
        (false, false) => "missing_agent_context",
        (true, true) => "enforced_agent_team",
        (true, false) => "enforced_agent_only",
        (false, true) => "enforced_team_only",
    }
}

/// A rule that matched, with its parsed patch and rank.
pub struct Matched<'a> {
    pub row: &'a RuleRow,
    pub body: &'a RuleBody,
    pub patch: Value,
    pub exceptions: Value,
    pub rank: Rank,
}

impl Matched<'_> {
    fn dto(&self) -> Value {
        let (r, b) = (self.row, self.body);
        json!({
            "rule_node_id": r.rule_node_id, "state": r.state, "rule_scope": r.rule_scope,
            "target_agent_id": r.target_agent_id, "target_team_id": r.target_team_id, "summary": b.summary,
            "if_json": r.if_json, "then_json": self.patch, "exceptions_json": self.exceptions,
            "stats": {"positive": b.positive_count, "negative": b.negative_count},
            "rank": self.rank.json(),
            "match_detail": {"condition_paths": self.rank.condition_paths, "condition_path_count": self.rank.condition_paths.len()},
            "commit_id": b.commit_id,
        })
    }
}

fn by_rank_desc(a: &Matched, b: &Matched) -> std::cmp::Ordering {
    b.rank.score.total_cmp(&a.rank.score).then_with(|| locale_cmp(&a.row.rule_node_id, &b.row.rule_node_id))
}

/// The applied policy of one set of matched rules: `(policy, sources,
/// conflicts, conflict_explain, tool_explain)`.
pub struct Applied {
    pub policy: Value,
    pub sources: Vec<Value>,
    pub conflicts: Vec<Conflict>,
    pub conflict_explain: Vec<Value>,
    pub tool_explain: Value,
}

impl Applied {
    pub fn of(matched: &[Matched]) -> Applied {
        let mut asc: Vec<&Matched> = matched.iter().collect();
        asc.sort_by(|a, b| by_rank_desc(b, a));
        let (mut policy, conflicts) = policy_patch::merge(asc.iter().map(|m| (m.row.rule_node_id.as_str(), &m.patch)));
        let tool_rules: Vec<ToolRule> = matched
            .iter()
            .map(|m| ToolRule { rule_node_id: &m.row.rule_node_id, rank: &m.rank, tool: m.patch.get("tool") })
            .collect();
        let (tool, tool_explain) = tool_policy::effective(&tool_rules);
        policy.as_object_mut().expect("merged policy is an object").insert("tool".into(), tool);
        let sources: Vec<(Value, Vec<String>)> = asc
            .iter()
            .map(|m| {
                let touched = policy_patch::touched_paths(&m.patch);
                let v = json!({
                    "rule_node_id": m.row.rule_node_id, "state": m.row.state, "commit_id": m.body.commit_id,
                    "touched_paths": touched, "rank": m.rank.json(),
                });
                (v, touched)
            })
            .collect();
        let conflict_explain = conflicts
            .iter()
            .take(50)
            .map(|c| {
                let winner = matched.iter().find(|m| m.row.rule_node_id == c.winner);
                let mut losers: Vec<&Matched> = asc
                    .iter()
                    .zip(&sources)
                    .filter(|(m, (_, touched))| m.row.rule_node_id != c.winner && touched.contains(&c.path))
                    .map(|(m, _)| *m)
                    .collect();
                losers.sort_by(|a, b| b.rank.score.total_cmp(&a.rank.score));
                let w = |f: &dyn Fn(&Rank) -> Value| winner.map(|m| f(&m.rank)).unwrap_or(Value::Null);
                json!({
                    "path": c.path,
                    "winner": {
                        "rule_node_id": c.winner,
                        "score": w(&|r| js_num(r.score)), "priority": w(&|r| json!(r.priority)),
                        "weight": w(&|r| js_num(r.weight)), "evidence_score": w(&|r| json!(r.evidence_score)),
                        "specificity": w(&|r| json!(r.specificity)),
                    },
                    "losers": losers.iter().take(5).map(|m| json!({"rule_node_id": m.row.rule_node_id, "score": js_num(m.rank.score)})).collect::<Vec<_>>(),
                    "reason": "higher rank wins (priority > evidence*weight > condition_specificity)",
                })
            })
            .collect();
        Applied {
            policy,
            sources: sources.into_iter().map(|(v, _)| v).collect(),
            conflicts,
            conflict_explain,
            tool_explain,
        }
    }

    fn conflicts_json(&self) -> Vec<Value> {
        self.conflicts.iter().map(|c| json!({"path": c.path, "winner_rule_node_id": c.winner})).collect()
    }

    /// `[code] message (winner=id)` lines, at most 5, each at most 200 chars
    /// (tools/select's `tool_conflicts_summary`).
    pub fn tool_conflicts_summary(&self) -> Vec<String> {
        self.tool_explain["conflicts"]
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
            .map(|c| {
                let winner = c["winner_rule_node_id"].as_str().map(|w| format!(" (winner={w})")).unwrap_or_default();
                let line =
                    format!("[{}] {}{winner}", c["code"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or(""));
                line.chars().take(200).collect()
            })
            .collect()
    }
}

/// What one evaluation found.
pub struct Evaluation<'a> {
    pub considered: usize,
    pub active: Vec<Matched<'a>>,
    pub shadow: Vec<Matched<'a>>,
    pub skipped_invalid_then: usize,
    pub invalid_then_sample: Vec<Value>,
    pub agent_visibility_summary: Value,
    pub applied: Applied,
    pub shadow_applied: Option<Applied>,
}

/// Whether a rule's scope target and lane let the context's agent see it;
/// `Err((lane, unowned))` when not: filtered by lane (else by scope), and
/// whether it is a legacy private rule without owners.
fn visible(r: &RuleRow, agent: Option<&str>, team: Option<&str>) -> Result<(), (bool, bool)> {
    if !scope_matches(r, agent, team) {
        return Err((false, false));
    }
    if agent.is_some() || team.is_some() {
        let (visible, unowned) = lane_visible(r, agent, team);
        if !visible {
            return Err((true, unowned));
        }
    }
    Ok(())
}

/// The rules whose bodies an evaluation of `ctx` will read: those that
/// pass scope, lane and `if`.
pub fn candidates<'a>(rows: &'a [RuleRow], ctx: &Value) -> Vec<&'a str> {
    let (agent, team) = context_identity(ctx);
    let mut regexes = RegexCache::default();
    rows.iter()
        .filter(|r| visible(r, agent.as_deref(), team.as_deref()).is_ok())
        .filter(|r| if_matches(&r.if_json, ctx, &mut regexes))
        .map(|r| r.rule_node_id.as_str())
        .collect()
}

/// Evaluates `rows` (most recently updated first) against `ctx`; rules
/// without a body are treated as not matching.
pub fn evaluate<'a>(rows: &'a [RuleRow], ctx: &Value, include_shadow: bool) -> Evaluation<'a> {
    let (agent, team) = context_identity(ctx);
    let (agent, team) = (agent.as_deref(), team.as_deref());
    let enforce_lane = agent.is_some() || team.is_some();
    let mut regexes = RegexCache::default();
    let (mut by_scope, mut by_lane, mut by_condition, mut legacy) = (0usize, 0usize, 0usize, 0usize);
    let mut skipped = 0usize;
    let mut sample = Vec::new();
    let (mut active, mut shadow) = (Vec::new(), Vec::new());
    for r in rows {
        if let Err((lane, unowned)) = visible(r, agent, team) {
            legacy += unowned as usize;
            if lane {
                by_lane += 1;
            } else {
                by_scope += 1;
            }
            continue;
        }
        let Some(body) = r.body.as_ref().filter(|_| if_matches(&r.if_json, ctx, &mut regexes)) else {
            by_condition += 1;
            continue;
        };
        let exceptions = body.exceptions_json.value(json!([]));
        if excepted(&exceptions, ctx, &mut regexes) {
            by_condition += 1;
            continue;
        }
        let patch = match policy_patch::parse(&body.then_json.value(Value::Null)) {
            Ok(p) => p,
            Err(_) => {
                skipped += 1;
                if sample.len() < 5 {
                    sample.push(json!({"rule_node_id": r.rule_node_id, "state": r.state, "commit_id": body.commit_id}));
                }
                continue;
            }
        };
        let rank = Rank::of(
            &r.if_json,
            body.priority.as_ref(),
            body.weight.as_ref(),
            body.positive_count,
            body.negative_count,
        );
        let m = Matched { row: r, body, patch, exceptions, rank };
        match r.state.as_str() {
            "active" => active.push(m),
            "shadow" if include_shadow => shadow.push(m),
            _ => {}
        }
    }
    active.sort_by(by_rank_desc);
    shadow.sort_by(by_rank_desc);
    let summary = json!({
        "agent": {"id": agent, "team_id": team},
        "rule_scope": {
            "scanned": rows.len(), "filtered_by_scope": by_scope, "filtered_by_lane": by_lane,
            "filtered_by_condition": by_condition, "skipped_invalid_then": skipped,
            "matched_active": active.len(), "matched_shadow": shadow.len(),
        },
        "lane": {
            "applied": enforce_lane, "reason": lane_reason(agent.is_some(), team.is_some()),
            "legacy_unowned_private_visible": 0, "legacy_unowned_private_detected": legacy,
        },
    });
    let applied = Applied::of(&active);
    let shadow_applied = include_shadow.then(|| Applied::of(&shadow));
    Evaluation {
        considered: rows.len(),
        active,
        shadow,
        skipped_invalid_then: skipped,
        invalid_then_sample: sample,
        agent_visibility_summary: summary,
        applied,
        shadow_applied,
    }
}

impl Evaluation<'_> {
    /// The `applied` block.
    pub fn applied_json(&self) -> Value {
        let a = &self.applied;
        let mut out = Map::new();
        out.insert("policy".into(), a.policy.clone());
        out.insert("sources".into(), json!(a.sources));
        out.insert("conflicts".into(), json!(a.conflicts_json()));
        out.insert("conflict_explain".into(), json!(a.conflict_explain));
        out.insert("tool_explain".into(), a.tool_explain.clone());
        if let Some(s) = &self.shadow_applied {
            out.insert("shadow_policy".into(), s.policy.clone());
            out.insert("shadow_sources".into(), json!(s.sources));
            out.insert("shadow_conflicts".into(), json!(s.conflicts_json()));
            out.insert("shadow_conflict_explain".into(), json!(s.conflict_explain));
            out.insert("shadow_tool_explain".into(), s.tool_explain.clone());
        }
        Value::Object(out)
    }

    /// The response fields after `tenant_id` / `scope`; `detailed` adds the
    /// `active` / `shadow` match lists (rules/evaluate), without them it is
    /// the applied-only form (tools/select, recall's `rules`).
    pub fn json(&self, detailed: bool) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("considered".into(), json!(self.considered));
        out.insert("matched".into(), json!(self.active.len() + self.shadow.len()));
        out.insert("skipped_invalid_then".into(), json!(self.skipped_invalid_then));
        out.insert("invalid_then_sample".into(), json!(self.invalid_then_sample));
        if detailed {
            out.insert("active".into(), Value::Array(self.active.iter().map(Matched::dto).collect()));
            out.insert("shadow".into(), Value::Array(self.shadow.iter().map(Matched::dto).collect()));
        }
        out.insert("agent_visibility_summary".into(), self.agent_visibility_summary.clone());
        out.insert("applied".into(), self.applied_json());
        out
    }

    /// Ids of the active rules whose patches shaped the applied policy.
    pub fn active_source_ids(&self) -> Vec<String> {
        self.active.iter().map(|m| m.row.rule_node_id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: &str, if_json: Value, then_json: Value) -> RuleRow {
        RuleRow {
            rule_node_id: id.into(),
            state: state.into(),
            rule_scope: "global".into(),
            target_agent_id: None,
            target_team_id: None,
            memory_lane: "shared".into(),
            owner_agent_id: None,
            owner_team_id: None,
            if_json,
            body: Some(RuleBody {
                then_json: then_json.into(),
                exceptions_json: json!([]).into(),
                positive_count: 0,
                negative_count: 0,
                commit_id: format!("c-{id}"),
                summary: None,
                priority: None,
                weight: None,
            }),
        }
    }

    fn set_priority(r: &mut RuleRow, p: i64) {
        r.body.as_mut().unwrap().priority = Some(json!(p));
    }

    #[test]
    fn shadow_rules_never_change_the_applied_policy() {
        let rows = vec![
            row("a", "active", json!({"intent": "json"}), json!({"output": {"format": "json"}})),
            row("s", "shadow", json!({}), json!({"output": {"format": "text"}, "tool": {"deny": ["bash"]}})),
        ];
        let e = evaluate(&rows, &json!({"intent": "json"}), true);
        assert_eq!(e.applied.policy, json!({"output": {"format": "json"}, "tool": {}}));
        let shadow = e.shadow_applied.as_ref().unwrap();
        assert_eq!(shadow.policy["tool"]["deny"], json!(["bash"]));
        assert_eq!(e.json(true)["matched"], 2);
        let hidden = evaluate(&rows, &json!({"intent": "json"}), false);
        assert_eq!(hidden.json(false)["matched"], 1);
        assert!(hidden.applied_json().get("shadow_policy").is_none());
    }

    #[test]
    fn scope_lane_and_then_filters_are_counted() {
        let mut agent_rule = row("ag", "active", json!({}), json!({}));
        agent_rule.rule_scope = "agent".into();
        agent_rule.target_agent_id = Some("a1".into());
        let mut private = row("pv", "active", json!({}), json!({}));
        private.memory_lane = "private".into();
        private.owner_agent_id = Some("a2".into());
        let mut unowned = row("un", "active", json!({}), json!({}));
        unowned.memory_lane = "private".into();
        let bad_then = row("bt", "active", json!({}), json!({"tools": {}}));
        let miss = row("mi", "active", json!({"intent": "x"}), json!({}));
        let rows = vec![agent_rule, private, unowned, bad_then, miss];

        let e = evaluate(&rows, &json!({"agent": {"id": "a2"}}), false);
        let s = &e.agent_visibility_summary;
        assert_eq!(s["rule_scope"]["filtered_by_scope"], 1);
        assert_eq!(s["rule_scope"]["filtered_by_lane"], 1);
        assert_eq!(s["lane"]["legacy_unowned_private_detected"], 1);
        assert_eq!(s["lane"]["reason"], "enforced_agent_only");
        assert_eq!(s["rule_scope"]["filtered_by_condition"], 1);
        assert_eq!(e.skipped_invalid_then, 1);
        assert_eq!(e.invalid_then_sample[0]["rule_node_id"], "bt");
        assert_eq!(e.active_source_ids(), vec!["pv"]);

        // Without an agent or team in the context, lanes are not enforced.
        let open = evaluate(&rows, &json!({}), false);
        assert_eq!(open.agent_visibility_summary["lane"]["applied"], false);
        assert_eq!(open.agent_visibility_summary["lane"]["reason"], "missing_agent_context");
    }

    #[test]
    fn higher_rank_wins_conflicts_and_is_explained() {
        let mut low = row("low", "active", json!({}), json!({"output": {"format": "text"}}));
        set_priority(&mut low, 1);
        let mut high = row("high", "active", json!({}), json!({"output": {"format": "json"}}));
        set_priority(&mut high, 5);
        let rows = vec![low, high];
        let e = evaluate(&rows, &json!({}), false);
        assert_eq!(e.applied.policy["output"]["format"], "json");
        assert_eq!(e.active[0].row.rule_node_id, "high");
        let explain = &e.applied.conflict_explain[0];
        assert_eq!(explain["path"], "output.format");
        assert_eq!(explain["winner"]["rule_node_id"], "high");
        assert_eq!(explain["winner"]["score"], 5000);
        assert_eq!(explain["losers"][0]["rule_node_id"], "low");
        // Sources are listed in merge (ascending rank) order.
        assert_eq!(e.applied.sources[0]["rule_node_id"], "low");
    }
}
