//! The recall audit row's one INSERT and its parameters, shared by the two
//! writers of the row: the kernel (`memory_recall_audit = true`) and the
//! `cairn` host, which writes the rows the kernel hands back
//! (`memory_recall_audit = host`).

use serde_json::Value;

/// One `memory_recall_audit` row; parameters in the order of an audit
/// row's keys: scope, endpoint, consumer agent, consumer team, query hash,
/// seed / node / edge counts, time.
pub const INSERT_SQL: &str = "INSERT INTO memory_recall_audit (scope, endpoint, consumer_agent_id, \
     consumer_team_id, query_sha256, seed_count, node_count, edge_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// One parameter of [`INSERT_SQL`].
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Int(i64),
}

/// The parameters of [`INSERT_SQL`] for an audit row (the JSON object the
/// kernel builds), in the statement's order.
pub fn params(row: &Value) -> [Param; 9] {
    let text = |k: &str| Param::Text(row[k].as_str().map(str::to_string));
    let int = |k: &str| Param::Int(row[k].as_i64().unwrap_or(0));
    [
        text("scope"),
        text("endpoint"),
        text("consumer_agent_id"),
        text("consumer_team_id"),
        text("query_sha256"),
        int("seed_count"),
        int("node_count"),
        int("edge_count"),
        text("created_at"),
    ]
}
