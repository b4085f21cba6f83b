//! `rules/evaluate`, `rules/state` and rule `feedback` (reference §1.2.5–
//! §1.2.7, §5.2, §5.3). State changes and feedback are commits on the
//! scope's chain, written with their rows in one transaction.

use crate::evaluate::evaluate;
use crate::policy_patch;
use crate::store::{self, FeedbackRow, PolicyCommit};
use cairn_core::ApiError;
use cairn_core::request_reader::{Obj, Reader};
use cairn_core::tenant_scope::{self, ScopeDefaults, TenantScope};
use cairn_memory::rule_defs::{self, DefNode, DefSource};
use cairn_memory::write_request::read_input;
use cairn_spin::sql::{Sql, read_txn, scope_write_txn};
use serde_json::{Map, Value, json};

pub const OUTCOMES: &[&str] = &["positive", "negative", "neutral"];
pub const KIND_RULE_STATE: &str = "rule_state_change";
pub const KIND_RULE_FEEDBACK: &str = "rule_feedback";

/// The tenant and scope of a request body.
pub fn tenant_scope(r: &mut Reader, o: Obj, defaults: &ScopeDefaults) -> Result<TenantScope, ApiError> {
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), defaults)
}

/// A required UUID field.
pub fn uuid_req(r: &mut Reader, o: Obj, key: &str) -> Option<String> {
    if o.map.get(key).is_none_or(Value::is_null) {
        r.issue(Reader::path(o, key), "Required");
        return None;
    }
    r.uuid_opt(o, key)
}

/// The `context` every policy route takes (required; any JSON).
pub fn context(r: &mut Reader, o: Obj) -> Value {
    match o.map.get("context") {
        Some(v) => v.clone(),
        None => {
            r.issue("context", "Required");
            Value::Null
        }
    }
}

fn head(ts: &TenantScope) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("tenant_id".into(), json!(ts.tenant_id));
    out.insert("scope".into(), json!(ts.scope));
    out
}

/// `{tenant_id, scope, commit_id, commit_hash}` of a policy commit.
fn committed(ts: &TenantScope, c: &cairn_memory::commit_chain::Appended) -> Map<String, Value> {
    let mut out = head(ts);
    out.insert("commit_id".into(), json!(c.id));
    out.insert("commit_hash".into(), json!(c.commit_hash));
    out
}

/// `POST /v1/memory/rules/evaluate`.
pub fn rules_evaluate(db: &dyn Sql, defaults: &ScopeDefaults, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ctx = context(&mut r, o);
    let include_shadow = r.bool_opt(o, "include_shadow").unwrap_or(true);
    let limit = r.int_opt(o, "limit", 1, 200).unwrap_or(50);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    let rows = read_txn(db, |db| store::load_rules(db, &ts.scope_key, limit, &ctx))?;
    let e = evaluate(&rows, &ctx, include_shadow);
    let mut out = head(&ts);
    out.extend(e.json(true));
    Ok(Value::Object(out))
}

/// The applied-only evaluation recall attaches as `rules` when the request
/// carries `rules_context`.
pub fn recall_rules(db: &dyn Sql, defaults: &ScopeDefaults, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ctx = o.map.get("rules_context").cloned().unwrap_or(Value::Null);
    let include_shadow = r.bool_opt(o, "rules_include_shadow").unwrap_or(false);
    let limit = r.int_opt(o, "rules_limit", 1, 200).unwrap_or(50);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    let rows = read_txn(db, |db| store::load_rules(db, &ts.scope_key, limit, &ctx))?;
    let e = evaluate(&rows, &ctx, include_shadow);
    let full = e.json(false);
    let mut out = Map::new();
    out.insert("scope".into(), json!(ts.scope));
    for k in ["considered", "matched", "skipped_invalid_then", "invalid_then_sample", "applied"] {
        out.insert(k.into(), full[k].clone());
    }
    Ok(Value::Object(out))
}

/// A scope's rule node, as rules/state needs it.
struct RuleNode {
    lane: String,
    owner_agent: Option<String>,
    owner_team: Option<String>,
    summary: Option<String>,
    slots: Map<String, Value>,
}

fn rule_node(db: &dyn Sql, ts: &TenantScope, id: &str) -> Result<RuleNode, ApiError> {
    let row = db.query_one(
        "SELECT memory_lane, owner_agent_id, owner_team_id, slots, text_summary FROM memory_nodes \
         WHERE scope = ? AND id = ? AND type = 'rule'",
        &[(&ts.scope_key).into(), id.into()],
    )?;
    let Some(row) = row else {
        return Err(ApiError::bad_request("rule_not_found_in_scope", "rule_node_id was not found in this scope")
            .with_details(json!({"rule_node_id": id, "scope": ts.scope, "tenant_id": ts.tenant_id})));
    };
    let slots = rule_defs::json_column(row.text(3), json!({})).as_object().cloned().unwrap_or_default();
    Ok(RuleNode {
        lane: row.string(0),
        owner_agent: row.opt_string(1),
        owner_team: row.opt_string(2),
        summary: row.opt_string(4),
        slots,
    })
}

/// Promotion to shadow/active: the rule must be one the engine can run
/// (reference §5.2): an owned private rule, an object `if`, an array
/// `exceptions`, a schema-valid `then` and a scope target.
fn check_promotion(db: &dyn Sql, ts: &TenantScope, id: &str, node: &RuleNode) -> Result<(), ApiError> {
    if node.lane == "private" && node.owner_agent.is_none() && node.owner_team.is_none() {
        return Err(ApiError::bad_request(
            "invalid_private_rule_owner",
            "private rule requires owner_agent_id or owner_team_id",
        )
        .with_details(json!({"rule_node_id": id, "memory_lane": node.lane})));
    }
    let def = db.query_one(
        "SELECT if_json, then_json, exceptions_json, rule_scope, target_agent_id, target_team_id \
         FROM memory_rule_defs WHERE scope = ? AND rule_node_id = ?",
        &[(&ts.scope_key).into(), id.into()],
    )?;
    let src = match def {
        Some(d) => DefSource {
            rule_scope: match d.text(3) {
                Some("agent") => "agent",
                Some("team") => "team",
                _ => "global",
            },
            target_agent_id: d.opt_string(4),
            target_team_id: d.opt_string(5),
            if_json: rule_defs::json_column(d.text(0), Value::Null),
            then_json: rule_defs::json_column(d.text(1), Value::Null),
            exceptions_json: rule_defs::json_column(d.text(2), Value::Null),
            priority: None,
            weight: None,
        },
        None => DefSource::from_slots(&node.slots),
    };
    if !src.if_json.is_object() {
        return Err(ApiError::bad_request("invalid_rule_if_json", "rule if_json must be an object"));
    }
    if !src.exceptions_json.is_array() {
        return Err(ApiError::bad_request("invalid_rule_exceptions_json", "rule exceptions_json must be an array"));
    }
    if let Err(message) = policy_patch::parse(&src.then_json) {
        return Err(ApiError::bad_request(
            "invalid_rule_then_json",
            "rule then_json does not match the allowed policy schema",
        )
        .with_details(json!({"message": message})));
    }
    src.check_target()
}

/// `POST /v1/memory/rules/state`.
pub fn rules_state(db: &dyn Sql, defaults: &ScopeDefaults, body: &Value, now: &str) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let rule_id = uuid_req(&mut r, o, "rule_node_id");
    let state = r.enum_req(o, "state", rule_defs::STATES);
    let actor = r.str_opt(o, "actor").unwrap_or_else(|| "system".into());
    let (_, input_sha) = read_input(&mut r, o);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    let (rule_id, state) = (rule_id.expect("checked"), state.expect("checked"));

    let appended = scope_write_txn(db, &ts.scope_key, |db| {
        let node = rule_node(db, &ts, &rule_id)?;
        if state == "shadow" || state == "active" {
            check_promotion(db, &ts, &rule_id, &node)?;
        }
        let diff = json!({"created_at": now, "rule_state_change": [{"rule_node_id": rule_id, "state": state}]});
        let appended = store::commit(
            db,
            &PolicyCommit {
                scope_key: &ts.scope_key,
                kind: KIND_RULE_STATE,
                actor: &actor,
                input_sha256: &input_sha,
                diff: &diff,
                now,
            },
        )?;
        // A rule written before definitions existed gets one from its slots.
        let mut src = DefSource::from_slots(&node.slots);
        for (v, fallback) in [(&mut src.if_json, json!({})), (&mut src.then_json, json!({}))] {
            if !v.is_object() {
                *v = fallback;
            }
        }
        if !src.exceptions_json.is_array() {
            src.exceptions_json = json!([]);
        }
        let def_node = DefNode {
            memory_lane: &node.lane,
            owner_agent_id: node.owner_agent.as_deref(),
            owner_team_id: node.owner_team.as_deref(),
            summary: node.summary.as_deref(),
        };
        rule_defs::insert(db, &ts.scope_key, &rule_id, &state, &src, &def_node, &appended.id, now)?;
        db.exec(
            "UPDATE memory_rule_defs SET state = ?, commit_id = ?, updated_at = ? WHERE scope = ? AND rule_node_id = ?",
            &[(&state).into(), (&appended.id).into(), now.into(), (&ts.scope_key).into(), (&rule_id).into()],
        )?;
        if state == "shadow" || state == "active" {
            db.exec(
                "UPDATE memory_nodes SET last_activated = ? WHERE scope = ? AND id = ?",
                &[now.into(), (&ts.scope_key).into(), (&rule_id).into()],
            )?;
        }
        Ok(appended)
    })?;
    Ok(Value::Object(committed(&ts, &appended)))
}

/// `POST /v1/memory/feedback`: feedback on one rule.
pub fn rule_feedback(
    db: &dyn Sql,
    defaults: &ScopeDefaults,
    body: &Value,
    now: &str,
    random_id: &dyn Fn() -> String,
) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let rule_id = uuid_req(&mut r, o, "rule_node_id");
    let outcome = r.enum_req(o, "outcome", OUTCOMES);
    let run_id = r.str_opt(o, "run_id");
    let note = r.str_opt(o, "note");
    let actor = r.str_opt(o, "actor").unwrap_or_else(|| "system".into());
    let (_, input_sha) = read_input(&mut r, o);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    let (rule_id, outcome) = (rule_id.expect("checked"), outcome.expect("checked"));
    let feedback_id = random_id();

    let appended = scope_write_txn(db, &ts.scope_key, |db| {
        rule_node(db, &ts, &rule_id)?;
        let diff = json!({"created_at": now, "rule_feedback": [{
            "feedback_id": feedback_id, "rule_node_id": rule_id, "outcome": outcome, "run_id": run_id, "note": note,
        }]});
        let appended = store::commit(
            db,
            &PolicyCommit {
                scope_key: &ts.scope_key,
                kind: KIND_RULE_FEEDBACK,
                actor: &actor,
                input_sha256: &input_sha,
                diff: &diff,
                now,
            },
        )?;
        store::record_feedback(
            db,
            &FeedbackRow {
                id: &feedback_id,
                scope_key: &ts.scope_key,
                rule_node_id: &rule_id,
                run_id: run_id.as_deref(),
                outcome: &outcome,
                note: note.as_deref(),
                source: "rule_feedback",
                decision_id: None,
                commit_id: &appended.id,
                now,
            },
        )?;
        Ok(appended)
    })?;
    let mut out = committed(&ts, &appended);
    out.insert("feedback_id".into(), json!(feedback_id));
    Ok(Value::Object(out))
}
