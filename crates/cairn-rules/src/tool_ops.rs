//! `tools/select`, `tools/decision` and `tools/feedback` (reference
//! §1.2.8–§1.2.10, §5.4, §5.5): every selection records a decision (the
//! context's and the applied policy's sha256, the rules behind it); feedback
//! re-evaluates the rules server-side, links itself to a decision (given,
//! inferred, or created from the feedback) and updates the attributed
//! rules' counters under one `tool_feedback` commit.

use crate::evaluate::{Evaluation, evaluate};
use crate::rule_ops::{OUTCOMES, context, tenant_scope, uuid_req};
use crate::store::{self, Decision, DecisionKey, FeedbackRow, PolicyCommit};
use crate::tool_selection::{normalize_candidates, select};
use cairn_core::ApiError;
use cairn_core::digest::sha256_canonical;
use cairn_core::request_reader::{Obj, Reader};
use cairn_core::tenant_scope::{ScopeDefaults, TenantScope};
use cairn_memory::write_request::read_input;
use cairn_spin::sql::{Sql, read_txn, scope_write_txn};
use serde_json::{Map, Value, json};

pub const KIND_TOOL_FEEDBACK: &str = "tool_feedback";
const MAX_CANDIDATES: usize = 200;

/// `candidates`: 1..200 non-empty strings, returned normalized.
fn candidates(r: &mut Reader, o: Obj) -> Vec<String> {
    let Some(list) = r.arr_opt(o, "candidates") else {
        if o.map.get("candidates").is_none_or(Value::is_null) {
            r.issue("candidates", "Required");
        }
        return Vec::new();
    };
    if list.is_empty() {
        r.issue("candidates", "Array must contain at least 1 element(s)");
    } else if list.len() > MAX_CANDIDATES {
        r.issue("candidates", format!("Array must contain at most {MAX_CANDIDATES} element(s)"));
    }
    for (i, v) in list.iter().enumerate() {
        match v.as_str() {
            Some("") => r.issue(Reader::elem_path(o, "candidates", i), "String must contain at least 1 character(s)"),
            Some(_) => {}
            None => r.issue(Reader::elem_path(o, "candidates", i), "Expected string"),
        }
    }
    normalize_candidates(list.iter().filter_map(Value::as_str))
}

fn context_sha256(ctx: &Value) -> String {
    sha256_canonical(ctx)
}

fn rules_block(e: &Evaluation, include_shadow: bool, shadow_selection: Option<Value>) -> (Value, Vec<String>) {
    let mut rules = e.json(false);
    let summary = e.applied.tool_conflicts_summary();
    rules.insert("tool_conflicts_summary".into(), json!(summary));
    if include_shadow {
        rules.insert("shadow_selection".into(), shadow_selection.unwrap_or(Value::Null));
        let shadow_summary = e.shadow_applied.as_ref().map(|a| a.tool_conflicts_summary()).unwrap_or_default();
        rules.insert("shadow_tool_conflicts_summary".into(), json!(shadow_summary));
    }
    (Value::Object(rules), summary)
}

/// `POST /v1/memory/tools/select`.
pub fn tools_select(
    db: &dyn Sql,
    defaults: &ScopeDefaults,
    body: &Value,
    now: &str,
    random_id: &dyn Fn() -> String,
) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ctx = context(&mut r, o);
    let cands = candidates(&mut r, o);
    let run_id = r.str_opt(o, "run_id");
    let include_shadow = r.bool_opt(o, "include_shadow").unwrap_or(false);
    let rules_limit = r.int_opt(o, "rules_limit", 1, 200).unwrap_or(50);
    let strict = r.bool_opt(o, "strict").unwrap_or(true);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;

    let rows = read_txn(db, |db| store::load_rules(db, &ts.scope_key, rules_limit, &ctx))?;
    let e = evaluate(&rows, &ctx, include_shadow);
    let selection = select(&cands, &e.applied.policy, strict)?;
    let shadow_selection = match &e.shadow_applied {
        Some(s) => Some(select(&cands, &s.policy, false)?),
        None => None,
    };
    let (rules, summary) = rules_block(&e, include_shadow, shadow_selection);

    // One row per rule, so the ids are unique already.
    let source_ids = e.active_source_ids();
    let mut metadata = json!({
        "strict": strict, "include_shadow": include_shadow, "rules_limit": rules_limit,
        "matched_rules": e.active.len() + e.shadow.len(), "tool_conflicts_summary": summary,
    });
    if include_shadow {
        metadata["shadow_tool_conflicts_summary"] = rules["shadow_tool_conflicts_summary"].clone();
    }
    let decision = Decision {
        id: random_id(),
        run_id: run_id.clone(),
        selected_tool: selection["selected"].as_str().map(str::to_string),
        candidates: cands.clone(),
        context_sha256: context_sha256(&ctx),
        policy_sha256: sha256_canonical(&e.applied.policy),
        source_rule_ids: source_ids,
        metadata,
        created_at: now.to_string(),
        commit_id: None,
    };
    scope_write_txn(db, &ts.scope_key, |db| store::insert_decision(db, &ts.scope_key, &decision))?;

    let mut out = Map::new();
    out.insert("tenant_id".into(), json!(ts.tenant_id));
    out.insert("scope".into(), json!(ts.scope));
    out.insert("candidates".into(), json!(cands));
    out.insert("selection".into(), selection);
    out.insert("rules".into(), rules);
    out.insert(
        "decision".into(),
        json!({
            "decision_id": decision.id, "run_id": decision.run_id, "selected_tool": decision.selected_tool,
            "policy_sha256": decision.policy_sha256, "source_rule_ids": decision.source_rule_ids,
            "created_at": decision.created_at,
        }),
    );
    Ok(Value::Object(out))
}

/// `POST /v1/memory/tools/decision`.
pub fn tools_decision(db: &dyn Sql, defaults: &ScopeDefaults, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let id = uuid_req(&mut r, o, "decision_id");
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    let id = id.expect("checked");
    let Some(d) = read_txn(db, |db| store::get_decision(db, &ts.scope_key, &id))? else {
        return Err(not_found(&ts, &id, 404));
    };
    Ok(json!({
        "tenant_id": ts.tenant_id, "scope": ts.scope,
        "decision": {
            "decision_id": d.id, "decision_kind": "tools_select", "run_id": d.run_id, "selected_tool": d.selected_tool,
            "candidates": d.candidates, "context_sha256": d.context_sha256, "policy_sha256": d.policy_sha256,
            "source_rule_ids": d.source_rule_ids, "metadata": d.metadata, "created_at": d.created_at,
            "commit_id": d.commit_id,
        },
    }))
}

fn not_found(ts: &TenantScope, id: &str, status: u16) -> ApiError {
    ApiError::new(status, "decision_not_found_in_scope", "decision_id was not found in this scope")
        .with_details(json!({"decision_id": id, "scope": ts.scope, "tenant_id": ts.tenant_id}))
}

/// A parsed tools/feedback request.
struct ToolFeedback {
    ts: TenantScope,
    ctx: Value,
    candidates: Vec<String>,
    selected_tool: String,
    outcome: String,
    actor: String,
    run_id: Option<String>,
    decision_id: Option<String>,
    target_all: bool,
    include_shadow: bool,
    rules_limit: i64,
    note: Option<String>,
    input_sha256: String,
}

fn parse_feedback(defaults: &ScopeDefaults, body: &Value) -> Result<ToolFeedback, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let ctx = context(&mut r, o);
    let candidates = candidates(&mut r, o);
    let selected_tool = r.str_req(o, "selected_tool").map(|s| s.trim().to_string());
    let outcome = r.enum_req(o, "outcome", OUTCOMES);
    let actor = r.str_opt(o, "actor").unwrap_or_else(|| "system".into());
    let run_id = r.str_opt(o, "run_id");
    let decision_id = r.uuid_opt(o, "decision_id");
    let target = r.enum_opt(o, "target", &["tool", "all"]);
    let include_shadow = r.bool_opt(o, "include_shadow").unwrap_or(false);
    let rules_limit = r.int_opt(o, "rules_limit", 1, 200).unwrap_or(50);
    let note = r.str_opt(o, "note");
    let (_, input_sha256) = read_input(&mut r, o);
    let ts = tenant_scope(&mut r, o, defaults)?;
    r.finish()?;
    Ok(ToolFeedback {
        ts,
        ctx,
        candidates,
        selected_tool: selected_tool.expect("checked"),
        outcome: outcome.expect("checked"),
        actor,
        run_id,
        decision_id,
        target_all: target.as_deref() == Some("all"),
        include_shadow,
        rules_limit,
        note,
        input_sha256,
    })
}

/// The rules feedback is attributed to: the matched sources (shadow ones
/// too with `include_shadow`), only those touching `tool` unless `all`. A
/// rule is either active or shadow, so each appears once.
fn attributed(e: &Evaluation, target_all: bool) -> Vec<String> {
    let mut sources: Vec<&Value> = e.applied.sources.iter().collect();
    if let Some(s) = &e.shadow_applied {
        sources.extend(s.sources.iter());
    }
    sources
        .into_iter()
        .filter(|s| {
            target_all
                || s["touched_paths"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|p| p == "tool" || p.starts_with("tool."))
        })
        .filter_map(|s| s["rule_node_id"].as_str().map(str::to_string))
        .collect()
}

/// Checks a linked decision against the feedback (reference §5.5 step 3).
fn check_compatible(d: &Decision, f: &ToolFeedback) -> Result<(), ApiError> {
    let details = || json!({"decision_id": d.id});
    if d.selected_tool.as_deref() != Some(f.selected_tool.as_str()) {
        return Err(ApiError::bad_request(
            "decision_selected_tool_mismatch",
            "selected_tool does not match the decision's selected tool",
        )
        .with_details(json!({"decision_id": d.id, "expected": d.selected_tool, "provided": f.selected_tool})));
    }
    if d.candidates != f.candidates {
        return Err(ApiError::bad_request(
            "decision_candidates_mismatch",
            "candidates do not match the decision's candidates",
        )
        .with_details(details()));
    }
    if let (Some(a), Some(b)) = (&d.run_id, &f.run_id)
        && a != b
    {
        return Err(ApiError::bad_request("decision_run_id_mismatch", "run_id does not match the decision's run_id")
            .with_details(json!({"decision_id": d.id, "expected": a, "provided": b})));
    }
    Ok(())
}

/// `POST /v1/memory/tools/feedback`.
pub fn tools_feedback(
    db: &dyn Sql,
    defaults: &ScopeDefaults,
    body: &Value,
    now_ms: i64,
    random_id: &dyn Fn() -> String,
) -> Result<Value, ApiError> {
    let f = parse_feedback(defaults, body)?;
    let now = cairn_core::time_fmt::rfc3339_millis(now_ms);
    let since = cairn_core::time_fmt::rfc3339_millis(now_ms - 24 * 3600 * 1000);
    let ts = &f.ts;
    // A policy transaction reads and writes its scope's rows only.
    scope_write_txn(db, &ts.scope_key, |db| {
        let rows = store::load_rules(db, &ts.scope_key, f.rules_limit, &f.ctx)?;
        let e = evaluate(&rows, &f.ctx, f.include_shadow);
        let rule_ids = attributed(&e, f.target_all);
        if rule_ids.is_empty() {
            return Ok(json!({
                "ok": true, "scope": ts.scope, "tenant_id": ts.tenant_id, "updated_rules": 0, "rule_node_ids": [],
                "commit_id": null, "commit_hash": null, "note": "no matching rule sources for attribution",
            }));
        }
        let ctx_sha = context_sha256(&f.ctx);
        let (mut decision, mode) = match &f.decision_id {
            Some(id) => {
                (store::get_decision(db, &ts.scope_key, id)?.ok_or_else(|| not_found(ts, id, 400))?, "provided")
            }
            None => {
                let key = DecisionKey {
                    run_id: f.run_id.as_deref(),
                    selected_tool: &f.selected_tool,
                    candidates: &f.candidates,
                    context_sha256: &ctx_sha,
                };
                match store::infer_decision(db, &ts.scope_key, &key, &since)? {
                    Some(d) => (d, "inferred"),
                    None => (
                        Decision {
                            id: random_id(),
                            run_id: f.run_id.clone(),
                            selected_tool: Some(f.selected_tool.clone()),
                            candidates: f.candidates.clone(),
                            context_sha256: ctx_sha.clone(),
                            policy_sha256: sha256_canonical(&e.applied.policy),
                            source_rule_ids: e.active_source_ids(),
                            metadata: json!({"source": "feedback_derived"}),
                            created_at: now.clone(),
                            commit_id: None,
                        },
                        "created_from_feedback",
                    ),
                }
            }
        };
        check_compatible(&decision, &f)?;
        if mode != "created_from_feedback"
            && let (None, Some(run)) = (&decision.run_id, &f.run_id)
        {
            if !store::adopt_run_id(db, &ts.scope_key, &decision.id, run)? {
                // Someone else recorded a run id first: re-read and re-check.
                decision = store::get_decision(db, &ts.scope_key, &decision.id)?
                    .ok_or_else(|| not_found(ts, &decision.id, 400))?;
                check_compatible(&decision, &f)?;
            } else {
                decision.run_id = Some(run.clone());
            }
        }

        let feedback_ids: Vec<String> = rule_ids.iter().map(|_| random_id()).collect();
        let diff = json!({"created_at": now, "tool_feedback": {
            "decision_id": decision.id, "decision_link_mode": mode, "selected_tool": f.selected_tool,
            "outcome": f.outcome, "target": if f.target_all { "all" } else { "tool" }, "run_id": f.run_id,
            "note": f.note, "rule_node_ids": rule_ids, "feedback_ids": feedback_ids,
        }});
        let appended = store::commit(
            db,
            &PolicyCommit {
                scope_key: &ts.scope_key,
                kind: KIND_TOOL_FEEDBACK,
                actor: &f.actor,
                input_sha256: &f.input_sha256,
                diff: &diff,
                now: &now,
            },
        )?;
        if mode == "created_from_feedback" {
            decision.commit_id = Some(appended.id.clone());
            store::insert_decision(db, &ts.scope_key, &decision)?;
        }
        for (rule_id, fid) in rule_ids.iter().zip(&feedback_ids) {
            store::record_feedback(
                db,
                &FeedbackRow {
                    id: fid,
                    scope_key: &ts.scope_key,
                    rule_node_id: rule_id,
                    run_id: f.run_id.as_deref(),
                    outcome: &f.outcome,
                    note: f.note.as_deref(),
                    source: "tools_feedback",
                    decision_id: Some(&decision.id),
                    commit_id: &appended.id,
                    now: &now,
                },
            )?;
        }
        Ok(json!({
            "ok": true, "tenant_id": ts.tenant_id, "scope": ts.scope, "updated_rules": rule_ids.len(),
            "rule_node_ids": rule_ids, "commit_id": appended.id, "commit_hash": appended.commit_hash,
            "decision_id": decision.id, "decision_link_mode": mode, "decision_policy_sha256": decision.policy_sha256,
        }))
    })
}
