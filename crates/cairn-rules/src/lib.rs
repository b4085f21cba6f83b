//! Cairn's Memory -> Policy logic (reference §5): rules stored in memory
//! become executable policy. Pure modules (tested natively) and the
//! operations the policy component exports, over the
//! [`cairn_spin::sql::Sql`] seam.
//!
//! - [`condition`], [`safe_regex`]: the `if` / `exceptions` language;
//! - [`policy_patch`]: the strict `then` schema, merging and touched paths;
//! - [`rank`]: `score = priority·1000 + evidence·100·weight + specificity`;
//! - [`tool_policy`], [`tool_selection`]: effective allow/deny/prefer and
//!   choosing among candidates;
//! - [`evaluate`]: one evaluation over loaded rules;
//! - [`store`]: rule rows, commits, decisions, feedback rows;
//! - [`rule_ops`], [`tool_ops`]: the routes.

pub mod condition;
pub mod evaluate;
pub mod policy_patch;
pub mod rank;
pub mod rule_ops;
pub mod safe_regex;
pub mod store;
pub mod tool_ops;
pub mod tool_policy;
pub mod tool_selection;

use cairn_core::ApiError;
use cairn_core::tenant_scope::ScopeDefaults;
use cairn_spin::sql::Sql;

/// The policy component's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    RulesEvaluate,
    RulesState,
    Feedback,
    ToolsSelect,
    ToolsDecision,
    ToolsFeedback,
    /// The `rules` block recall adds for `rules_context` (the recall body).
    RecallRules,
}

/// Runs `op` on a JSON body; the kernel schema (which holds the rule
/// tables) is brought up to date first.
pub fn run(
    db: &dyn Sql,
    defaults: &ScopeDefaults,
    op: Op,
    body: &str,
    now_ms: i64,
    random_id: &dyn Fn() -> String,
) -> Result<serde_json::Value, ApiError> {
    let body = cairn_memory::parse_body(body)?;
    let now = cairn_core::time_fmt::rfc3339_millis(now_ms);
    cairn_memory::schema::ensure(db, &now)?;
    match op {
        Op::RulesEvaluate => rule_ops::rules_evaluate(db, defaults, &body),
        Op::RulesState => rule_ops::rules_state(db, defaults, &body, &now),
        Op::Feedback => rule_ops::rule_feedback(db, defaults, &body, &now, random_id),
        Op::ToolsSelect => tool_ops::tools_select(db, defaults, &body, &now, random_id),
        Op::ToolsDecision => tool_ops::tools_decision(db, defaults, &body),
        Op::ToolsFeedback => tool_ops::tools_feedback(db, defaults, &body, now_ms, random_id),
        Op::RecallRules => rule_ops::recall_rules(db, defaults, &body),
    }
}
