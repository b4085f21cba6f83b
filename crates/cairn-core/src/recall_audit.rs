//! The recall audit row's one INSERT, shared by the two writers of the row:
//! the kernel (`memory_recall_audit = true`) and the `cairn` host, which
//! writes the rows the kernel hands back (`memory_recall_audit = host`).

/// One `memory_recall_audit` row; parameters in the order of an audit
/// row's keys: scope, endpoint, consumer agent, consumer team, query hash,
/// seed / node / edge counts, time.
pub const INSERT_SQL: &str = "INSERT INTO memory_recall_audit (scope, endpoint, consumer_agent_id, \
     consumer_team_id, query_sha256, seed_count, node_count, edge_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
