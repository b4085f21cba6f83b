//! What the policy operations read and write: rule rows for evaluation,
//! commits on the scope's chain, and execution decisions.

use crate::evaluate::{JsonText, RuleBody, RuleRow, candidates};
use cairn_core::ApiError;
use cairn_core::digest::{sha256_canonical, sha256_hex};
use cairn_memory::commit_chain::{self, Appended, NewCommit};
use cairn_memory::rule_defs::json_column;
use cairn_spin::sql::{Row, Sql, SqlValue, placeholders};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The scope's shadow and active rules, most recently updated first, at
/// most `limit` (the reference bounds the scan, not the matches), with the
/// bodies of those that may apply to `ctx`, so a scan of hundreds of rules
/// ships only their heads. Two statements: run it inside a transaction.
pub fn load_rules(db: &dyn Sql, scope_key: &str, limit: i64, ctx: &Value) -> Result<Vec<RuleRow>, ApiError> {
    let mut rows: Vec<RuleRow> = db
        .query(
            "SELECT rule_node_id, state, rule_scope, target_agent_id, target_team_id, memory_lane, owner_agent_id, \
                 owner_team_id, if_json FROM memory_rule_defs \
                 WHERE scope = ? AND state IN ('shadow', 'active') ORDER BY updated_at DESC, rule_node_id LIMIT ?",
            &[scope_key.into(), SqlValue::Integer(limit)],
        )?
        .iter()
        .map(rule_head)
        .collect();
    let wanted: Vec<String> = candidates(&rows, ctx).into_iter().map(str::to_string).collect();
    let mut bodies: HashMap<String, RuleBody> = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(400) {
        let mut params: Vec<SqlValue> = vec![scope_key.into()];
        params.extend(chunk.iter().map(SqlValue::from));
        let sql = format!(
            "SELECT rule_node_id, then_json, exceptions_json, positive_count, negative_count, commit_id, summary, \
                 rank_priority, rank_weight FROM memory_rule_defs WHERE scope = ? AND rule_node_id IN ({})",
            placeholders(chunk.len())
        );
        for r in db.query(&sql, &params)? {
            bodies.insert(r.string(0), rule_body(&r));
        }
    }
    for row in &mut rows {
        row.body = bodies.remove(&row.rule_node_id);
    }
    Ok(rows)
}

fn rule_head(r: &Row) -> RuleRow {
    RuleRow {
        rule_node_id: r.string(0),
        state: r.string(1),
        rule_scope: r.string(2),
        target_agent_id: r.opt_string(3),
        target_team_id: r.opt_string(4),
        memory_lane: r.string(5),
        owner_agent_id: r.opt_string(6),
        owner_team_id: r.opt_string(7),
        if_json: json_column(r.text(8), json!({})),
        body: None,
    }
}

fn rule_body(r: &Row) -> RuleBody {
    let slot = |i: usize| r.text(i).and_then(|t| serde_json::from_str(t).ok());
    RuleBody {
        then_json: JsonText(r.string(1)),
        exceptions_json: JsonText(r.string(2)),
        positive_count: r.int(3),
        negative_count: r.int(4),
        commit_id: r.string(5),
        summary: r.opt_string(6),
        priority: slot(7),
        weight: slot(8),
    }
}

/// A commit of `kind` on the scope's chain (inside the caller's write
/// transaction). The request hash names the parent, so repeating a request
/// later makes a new commit (a state set twice is two changes).
pub struct PolicyCommit<'a> {
    pub scope_key: &'a str,
    pub kind: &'a str,
    pub actor: &'a str,
    pub input_sha256: &'a str,
    pub diff: &'a Value,
    pub now: &'a str,
}

pub fn commit(db: &dyn Sql, c: &PolicyCommit) -> Result<Appended, ApiError> {
    let head = commit_chain::head(db, c.scope_key)?;
    let parent = head.as_ref().map(|h| h.commit_hash.as_str()).unwrap_or("");
    let request_sha = sha256_hex(format!("{}:{parent}:{}", c.kind, sha256_canonical(c.diff)));
    commit_chain::append(
        db,
        head.as_ref(),
        &NewCommit {
            scope_key: c.scope_key,
            kind: c.kind,
            actor: c.actor,
            input_sha256: c.input_sha256,
            model_version: None,
            prompt_version: None,
            diff: c.diff,
            request_sha256: &request_sha,
            result_json: None,
            created_at: c.now,
        },
    )
}

/// An execution decision row.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: String,
    pub run_id: Option<String>,
    pub selected_tool: Option<String>,
    pub candidates: Vec<String>,
    pub context_sha256: String,
    pub policy_sha256: String,
    pub source_rule_ids: Vec<String>,
    pub metadata: Value,
    pub created_at: String,
    pub commit_id: Option<String>,
}

const DECISION_COLUMNS: &str = "id, run_id, selected_tool, candidates_json, context_sha256, policy_sha256, \
    source_rule_ids, metadata_json, created_at, commit_id";

fn decision_row(r: &Row) -> Decision {
    let strings = |v: Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    Decision {
        id: r.string(0),
        run_id: r.opt_string(1),
        selected_tool: r.opt_string(2),
        candidates: strings(json_column(r.text(3), json!([]))),
        context_sha256: r.string(4),
        policy_sha256: r.string(5),
        source_rule_ids: strings(json_column(r.text(6), json!([]))),
        metadata: json_column(r.text(7), json!({})),
        created_at: r.string(8),
        commit_id: r.opt_string(9),
    }
}

/// The candidates as stored and compared (`candidates_json`).
pub fn candidates_text(candidates: &[String]) -> String {
    json!(candidates).to_string()
}

pub fn insert_decision(db: &dyn Sql, scope_key: &str, d: &Decision) -> Result<(), ApiError> {
    db.exec(
        &format!(
            "INSERT INTO memory_execution_decisions (scope, decision_kind, {DECISION_COLUMNS}) \
             VALUES (?, 'tools_select', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            scope_key.into(),
            (&d.id).into(),
            d.run_id.clone().into(),
            d.selected_tool.clone().into(),
            candidates_text(&d.candidates).into(),
            (&d.context_sha256).into(),
            (&d.policy_sha256).into(),
            json!(d.source_rule_ids).to_string().into(),
            d.metadata.to_string().into(),
            (&d.created_at).into(),
            d.commit_id.clone().into(),
        ],
    )?;
    Ok(())
}

pub fn get_decision(db: &dyn Sql, scope_key: &str, id: &str) -> Result<Option<Decision>, ApiError> {
    Ok(db
        .query_one(
            &format!("SELECT {DECISION_COLUMNS} FROM memory_execution_decisions WHERE scope = ? AND id = ?"),
            &[scope_key.into(), id.into()],
        )?
        .map(|r| decision_row(&r)))
}

/// What tools/feedback infers a decision from.
pub struct DecisionKey<'a> {
    pub run_id: Option<&'a str>,
    pub selected_tool: &'a str,
    pub candidates: &'a [String],
    pub context_sha256: &'a str,
}

/// The latest decision matching `k` (reference §5.5 step 2): with a run id,
/// the same run; otherwise (or failing that) one from the last 24 h that
/// names no run when the feedback does.
pub fn infer_decision(
    db: &dyn Sql,
    scope_key: &str,
    k: &DecisionKey,
    since: &str,
) -> Result<Option<Decision>, ApiError> {
    let base = format!(
        "SELECT {DECISION_COLUMNS} FROM memory_execution_decisions WHERE scope = ? AND decision_kind = 'tools_select' \
         AND selected_tool = ? AND candidates_json = ? AND context_sha256 = ?"
    );
    let params = |extra: Vec<SqlValue>| {
        let mut p: Vec<SqlValue> = vec![
            scope_key.into(),
            k.selected_tool.into(),
            candidates_text(k.candidates).into(),
            k.context_sha256.into(),
        ];
        p.extend(extra);
        p
    };
    if let Some(run) = k.run_id {
        let same_run = db.query_one(
            &format!("{base} AND run_id = ? ORDER BY created_at DESC, id DESC LIMIT 1"),
            &params(vec![run.into()]),
        )?;
        if let Some(r) = same_run {
            return Ok(Some(decision_row(&r)));
        }
    }
    let run_filter = if k.run_id.is_some() { " AND run_id IS NULL" } else { "" };
    Ok(db
        .query_one(
            &format!("{base} AND created_at >= ?{run_filter} ORDER BY created_at DESC, id DESC LIMIT 1"),
            &params(vec![since.into()]),
        )?
        .map(|r| decision_row(&r)))
}

/// Records `run_id` on a decision that had none; false when another writer
/// set one first.
pub fn adopt_run_id(db: &dyn Sql, scope_key: &str, id: &str, run_id: &str) -> Result<bool, ApiError> {
    let updated = db.query(
        "UPDATE memory_execution_decisions SET run_id = ? WHERE scope = ? AND id = ? AND run_id IS NULL RETURNING id",
        &[run_id.into(), scope_key.into(), id.into()],
    )?;
    Ok(!updated.is_empty())
}

/// One feedback row and the rule's counters.
pub struct FeedbackRow<'a> {
    pub id: &'a str,
    pub scope_key: &'a str,
    pub rule_node_id: &'a str,
    pub run_id: Option<&'a str>,
    pub outcome: &'a str,
    pub note: Option<&'a str>,
    pub source: &'a str,
    pub decision_id: Option<&'a str>,
    pub commit_id: &'a str,
    pub now: &'a str,
}

pub fn record_feedback(db: &dyn Sql, f: &FeedbackRow) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_rule_feedback (id, scope, rule_node_id, run_id, outcome, note, source, decision_id, \
         created_at, commit_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            f.id.into(),
            f.scope_key.into(),
            f.rule_node_id.into(),
            f.run_id.into(),
            f.outcome.into(),
            f.note.into(),
            f.source.into(),
            f.decision_id.into(),
            f.now.into(),
            f.commit_id.into(),
        ],
    )?;
    let (pos, neg) = match f.outcome {
        "positive" => (1, 0),
        "negative" => (0, 1),
        _ => (0, 0),
    };
    db.exec(
        "UPDATE memory_rule_defs SET positive_count = positive_count + ?, negative_count = negative_count + ?, \
         last_evaluated_at = ?, updated_at = ? WHERE scope = ? AND rule_node_id = ?",
        &[
            SqlValue::Integer(pos),
            SqlValue::Integer(neg),
            f.now.into(),
            f.now.into(),
            f.scope_key.into(),
            f.rule_node_id.into(),
        ],
    )?;
    Ok(())
}
