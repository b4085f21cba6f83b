//! Reading a recall / recall_text body (reference §1.2.2): every problem is
//! collected and answered with one `400 invalid_request`; then the
//! debug-embeddings contract is checked (its own 400 codes).

use super::context::{CompactionProfile, ContextOptions};
use super::hybrid::Weights;
use super::knobs::{self, Resolved};
use super::stage1::{Mode, Stage1Knobs};
use crate::node_dto::DtoOptions;
use crate::settings::Settings;
use crate::write_request::read_vector;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::tenant_scope::{self, TenantScope};
use serde_json::Value;

/// Which route is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Recall,
    RecallText,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Recall => "recall",
            Endpoint::RecallText => "recall_text",
        }
    }
}

/// Most seeds the privileged debug channel returns vectors for, and how
/// many leading dimensions each preview shows.
pub const DEBUG_EMBEDDING_NODES: usize = 5;
pub const DEBUG_EMBEDDING_PREVIEW: usize = 16;
/// `limit` above this is refused when debug embeddings are asked for.
pub const DEBUG_EMBEDDING_MAX_LIMIT: i64 = 20;

/// A parsed recall request.
#[derive(Debug, Clone)]
pub struct RecallRequest {
    pub endpoint: Endpoint,
    pub ts: TenantScope,
    /// `query_embedding` (recall) — recall_text fills it after embedding.
    pub query: Option<Vec<f32>>,
    /// `query_text`, whitespace-normalized (recall_text).
    pub query_text: Option<String>,
    pub knobs: Resolved,
    pub consumer_agent_id: Option<String>,
    pub consumer_team_id: Option<String>,
    pub dto: DtoOptions,
    pub return_debug: bool,
    pub include_embeddings: bool,
    pub context: ContextOptions,
    /// `rules_context` was given (rule evaluation is the policy component's).
    pub rules_context: Option<Value>,
    pub rules_include_shadow: bool,
    pub rules_limit: i64,
    /// `stage1_mode`, `stage1_lexical_weight`, `stage1_neighbor_weight`
    /// (Cairn's, beside the reference's knobs; they do not count as
    /// explicit knobs).
    pub stage1: Stage1Knobs,
}

/// Parses a body for `endpoint`. `admin` says whether the caller presented
/// the admin token (the debug-embeddings privilege).
pub fn parse(body: &Value, settings: &Settings, endpoint: Endpoint, admin: bool) -> Result<RecallRequest, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    let (query, query_text) = match endpoint {
        Endpoint::Recall => {
            if o.map.get("query_embedding").is_none_or(Value::is_null) {
                r.issue("query_embedding", "Required");
            }
            (read_vector(&mut r, o, "query_embedding", settings.embedding_dims), None)
        }
        Endpoint::RecallText => {
            let text = r.str_req(o, "query_text").map(|t| cairn_core::text::normalize(&t));
            if text.as_deref() == Some("") {
                r.issue("query_text", "must not be empty after whitespace normalization");
            }
            (None, text)
        }
    };
    let base_profile = settings.recall_profile_for(tenant.as_deref(), endpoint.name());
    let knobs = knobs::resolve(&mut r, o, &base_profile);
    let consumer_agent_id = r.str_opt_len(o, "consumer_agent_id", 1, 256);
    let consumer_team_id = r.str_opt_len(o, "consumer_team_id", 1, 256);
    let dto = DtoOptions::read(&mut r, o);
    let return_debug = r.bool_opt(o, "return_debug").unwrap_or(false);
    let include_embeddings = r.bool_opt(o, "include_embeddings").unwrap_or(false);
    let token_budget = r.int_opt(o, "context_token_budget", 1, 256_000);
    let char_budget = r.int_opt(o, "context_char_budget", 1, 1_000_000);
    let profile = r.enum_opt(o, "context_compaction_profile", &["balanced", "aggressive"]).map(|p| match p.as_str() {
        "aggressive" => CompactionProfile::Aggressive,
        _ => CompactionProfile::Balanced,
    });
    let rules_context = o.map.get("rules_context").filter(|v| !v.is_null()).cloned();
    let rules_include_shadow = r.bool_opt(o, "rules_include_shadow").unwrap_or(false);
    let rules_limit = r.int_opt(o, "rules_limit", 1, 200).unwrap_or(50);
    let mode = match r.enum_opt(o, "stage1_mode", &["hybrid", "dense", "lexical"]).as_deref() {
        Some("dense") => Mode::Dense,
        Some("lexical") => Mode::Lexical,
        Some(_) => Mode::Hybrid,
        None if endpoint == Endpoint::RecallText => Mode::Hybrid,
        None => Mode::Dense,
    };
    if endpoint == Endpoint::Recall && mode != Mode::Dense {
        r.issue("stage1_mode", "recall seeds by query_embedding only (dense); hybrid and lexical need recall_text");
    }
    let defaults = Weights::default();
    let weights = Weights {
        lexical: r.num_opt(o, "stage1_lexical_weight", 0.0, 1.0).unwrap_or(defaults.lexical),
        neighbor: r.num_opt(o, "stage1_neighbor_weight", 0.0, 1.0).unwrap_or(defaults.neighbor),
    };
    r.finish()?;

    if include_embeddings {
        if !return_debug {
            return Err(ApiError::bad_request(
                "debug_embeddings_requires_return_debug",
                "include_embeddings requires return_debug=true",
            ));
        }
        if !admin {
            return Err(ApiError::bad_request(
                "debug_embeddings_not_allowed",
                "debug embeddings need the admin token (X-Admin-Token)",
            ));
        }
        if knobs.knobs.limit > DEBUG_EMBEDDING_MAX_LIMIT {
            return Err(ApiError::bad_request(
                "debug_embeddings_limit_too_high",
                format!("limit must be <= {DEBUG_EMBEDDING_MAX_LIMIT} when include_embeddings=true"),
            ));
        }
    }
    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;
    Ok(RecallRequest {
        endpoint,
        ts,
        query,
        query_text,
        knobs,
        consumer_agent_id,
        consumer_team_id,
        dto,
        return_debug,
        include_embeddings,
        context: ContextOptions { token_budget, char_budget, profile },
        rules_context,
        rules_include_shadow,
        rules_limit,
        stage1: Stage1Knobs { mode, weights },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings { embedding_dims: 3, ..Settings::default() }
    }

    fn err(body: Value, admin: bool) -> ApiError {
        parse(&body, &settings(), Endpoint::Recall, admin).unwrap_err()
    }

    #[test]
    fn reads_a_recall_body_with_profile_defaults() {
        let q =
            parse(&json!({"query_embedding": [1, 0, 0], "scope": "s"}), &settings(), Endpoint::Recall, false).unwrap();
        assert_eq!(q.query.as_deref(), Some(&[1.0, 0.0, 0.0][..]));
        assert_eq!(q.knobs.knobs, knobs::profile("strict_edges").unwrap());
        assert_eq!(q.ts.scope, "s");
        assert!(!q.return_debug);
    }

    #[test]
    fn bad_input_is_a_400_listing_every_issue() {
        let e = err(json!({"query_embedding": [1, 0], "max_edges": 101, "limit": 0}), false);
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_request"));
        let paths: Vec<String> = e.details.unwrap()["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(paths, ["query_embedding", "limit", "max_edges"]);
        assert_eq!(err(json!({}), false).code, "invalid_request");
        assert_eq!(err(json!({"query_embedding": [1, 0, 0], "context_compaction_profile": "wild"}), false).status, 400);
        let e = parse(&json!({"query_text": "  "}), &settings(), Endpoint::RecallText, false).unwrap_err();
        assert_eq!(e.code, "invalid_request");
    }

    #[test]
    fn stage1_knobs() {
        let text = |b: Value| parse(&b, &settings(), Endpoint::RecallText, false);
        let q = text(json!({"query_text": "x"})).unwrap();
        assert_eq!(q.stage1, Stage1Knobs { mode: Mode::Hybrid, weights: Weights::default() });
        assert!(!q.knobs.explicit, "stage-1 knobs are not the reference's explicit knobs");
        let q = text(json!({"query_text": "x", "stage1_mode": "lexical", "stage1_neighbor_weight": 0})).unwrap();
        assert_eq!((q.stage1.mode, q.stage1.weights.neighbor), (Mode::Lexical, 0.0));
        let e = text(json!({"query_text": "x", "stage1_mode": "fuzzy", "stage1_lexical_weight": 2})).unwrap_err();
        let paths: Vec<String> = e.details.unwrap()["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["path"].as_str().unwrap().into())
            .collect();
        assert_eq!(paths, ["stage1_mode", "stage1_lexical_weight"]);
        let dense = parse(&json!({"query_embedding": [1, 0, 0]}), &settings(), Endpoint::Recall, false).unwrap();
        assert_eq!(dense.stage1.mode, Mode::Dense);
        let e = err(json!({"query_embedding": [1, 0, 0], "stage1_mode": "hybrid"}), false);
        assert!(e.details.unwrap().to_string().contains("need recall_text"));
    }

    #[test]
    fn debug_embeddings_contract() {
        let base = json!({"query_embedding": [1, 0, 0], "include_embeddings": true});
        assert_eq!(err(base.clone(), true).code, "debug_embeddings_requires_return_debug");
        let mut b = base.clone();
        b["return_debug"] = json!(true);
        assert_eq!(err(b.clone(), false).code, "debug_embeddings_not_allowed");
        b["limit"] = json!(21);
        assert_eq!(err(b.clone(), true).code, "debug_embeddings_limit_too_high");
        b["limit"] = json!(20);
        assert!(parse(&b, &settings(), Endpoint::Recall, true).is_ok());
    }
}
