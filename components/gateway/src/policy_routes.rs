//! The policy routes and the two places where the gateway combines the
//! kernel and the policy engine: recall's `rules` block (when the request
//! carries `rules_context`) and `planning/context` (recall_text + rules +
//! tool selection in one call, reference §1.2.14).

use crate::dispatch::{Backend, PolicyCall};
use crate::routes::Route;
use cairn_core::ApiError;
use serde_json::{Map, Value, json};

/// The policy call a route maps to directly.
pub fn policy_call(route: &Route) -> Option<PolicyCall> {
    Some(match route {
        Route::RulesEvaluate => PolicyCall::RulesEvaluate,
        Route::RulesState => PolicyCall::RulesState,
        Route::RuleFeedback => PolicyCall::Feedback,
        Route::ToolsSelect => PolicyCall::ToolsSelect,
        Route::ToolsDecision => PolicyCall::ToolsDecision,
        Route::ToolsFeedback => PolicyCall::ToolsFeedback,
        _ => return None,
    })
}

fn parse(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))
}

/// Adds `rules` to a recall response when the request has a non-null
/// `rules_context`; the response is otherwise passed through untouched
/// (spliced as text, so large recalls are not re-serialized).
pub fn with_recall_rules(
    backend: &dyn Backend,
    request: &str,
    response: String,
    rid: &str,
    admin: bool,
) -> Result<String, ApiError> {
    if !request.contains("\"rules_context\"") {
        return Ok(response);
    }
    let body = parse(request)?;
    if body.get("rules_context").is_none_or(Value::is_null) {
        return Ok(response);
    }
    let rules = backend.policy(PolicyCall::RecallRules, request, rid, admin)?;
    let Some(head) = response.strip_suffix('}') else {
        return Err(ApiError::internal("recall response is not a JSON object"));
    };
    Ok(format!("{head},\"rules\":{rules}}}"))
}

fn pick(body: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter().filter_map(|k| body.get(*k).map(|v| (k.to_string(), v.clone()))).collect()
}

/// Keys of a planning request that are not recall's.
const PLANNING_ONLY: &[&str] =
    &["context", "include_shadow", "rules_limit", "run_id", "tool_candidates", "tool_strict"];

/// `POST /v1/memory/planning/context`.
pub fn planning_context(backend: &dyn Backend, request: &str, rid: &str, admin: bool) -> Result<String, ApiError> {
    let body = parse(request)?;
    let Some(m) = body.as_object() else {
        return Err(ApiError::invalid("", "Expected object, received non-object"));
    };
    if m.get("query_text").is_none_or(Value::is_null) {
        return Err(ApiError::invalid("query_text", "Required"));
    }
    let tool_candidates = match m.get("tool_candidates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= 200 => a.clone(),
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid("tool_candidates", "Array must contain at most 200 element(s)"));
        }
        Some(_) => return Err(ApiError::invalid("tool_candidates", "Expected array")),
    };
    let scope = pick(m, &["tenant_id", "scope"]);
    let context = m.get("context").cloned().unwrap_or(Value::Null);
    let include_shadow = m.get("include_shadow").cloned().unwrap_or(json!(false));
    let rules_limit = m.get("rules_limit").cloned().unwrap_or(json!(50));

    let recall_body: Map<String, Value> =
        m.iter().filter(|(k, _)| !PLANNING_ONLY.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let recall: Value = parse(&backend.memory(
        crate::dispatch::MemoryCall::RecallText(&Value::Object(recall_body).to_string()),
        rid,
        admin,
    )?)?;

    let mut rules_body = scope.clone();
    rules_body.insert("context".into(), context.clone());
    rules_body.insert("include_shadow".into(), include_shadow.clone());
    rules_body.insert("limit".into(), rules_limit.clone());
    let rules: Value =
        parse(&backend.policy(PolicyCall::RulesEvaluate, &Value::Object(rules_body).to_string(), rid, admin)?)?;

    let mut out = Map::new();
    out.insert("tenant_id".into(), recall["tenant_id"].clone());
    out.insert("scope".into(), recall["scope"].clone());
    out.insert("query".into(), recall["query"].clone());
    out.insert("recall".into(), recall);
    out.insert("rules".into(), rules);
    if !tool_candidates.is_empty() {
        let mut tools_body = scope;
        tools_body.insert("context".into(), context);
        tools_body.insert("candidates".into(), Value::Array(tool_candidates));
        tools_body.insert("strict".into(), m.get("tool_strict").cloned().unwrap_or(json!(true)));
        tools_body.insert("include_shadow".into(), include_shadow);
        tools_body.insert("rules_limit".into(), rules_limit);
        if let Some(run) = m.get("run_id") {
            tools_body.insert("run_id".into(), run.clone());
        }
        let tools = backend.policy(PolicyCall::ToolsSelect, &Value::Object(tools_body).to_string(), rid, admin)?;
        out.insert("tools".into(), parse(&tools)?);
    }
    Ok(Value::Object(out).to_string())
}
