//! Rows derivation writes (topics, summaries, their edges) and their
//! entries in a commit diff — the same fields the write path records, so
//! `verify` treats derived memory like any other.

use cairn_core::ApiError;
use cairn_memory::stored_rows::{StoredEdge, StoredNode};
use cairn_spin::sql::Sql;
use serde_json::{Map, Value, json};

/// An edge to insert; `(weight, confidence, decay_rate)`.
pub fn edge(id: String, scope: &str, kind: &str, src: &str, dst: &str, wcd: (f64, f64, f64), now: &str) -> StoredEdge {
    StoredEdge {
        id,
        scope_key: scope.to_string(),
        edge_type: kind.to_string(),
        src_id: src.to_string(),
        dst_id: dst.to_string(),
        weight: wcd.0,
        confidence: wcd.1,
        decay_rate: wcd.2,
        created_at: now.to_string(),
        commit_id: String::new(),
    }
}

/// A node's entry in a commit diff.
pub fn node_entry(n: &StoredNode) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(n.id));
    m.insert("type".into(), json!(n.node_type));
    if let Some(t) = &n.title {
        m.insert("title".into(), json!(t));
    }
    m.insert("memory_lane".into(), json!(n.memory_lane));
    m.insert("producer_agent_id".into(), json!(n.producer_agent_id));
    m.insert("owner_agent_id".into(), json!(n.owner_agent_id));
    m.insert("owner_team_id".into(), json!(n.owner_team_id));
    m.insert("content_sha256".into(), json!(n.content_sha256()));
    Value::Object(m)
}

/// An edge's entry in a commit diff.
pub fn edge_entry(e: &StoredEdge) -> Value {
    json!({"id": e.id, "type": e.edge_type, "src_id": e.src_id, "dst_id": e.dst_id, "content_sha256": e.content_sha256()})
}

/// Inserts a new edge attested by `commit_id`.
pub fn insert_edge(db: &dyn Sql, e: &StoredEdge, commit_id: &str, now: &str) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_edges (id, scope, type, src_id, dst_id, weight, confidence, decay_rate, last_activated, \
         created_at, commit_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            (&e.id).into(),
            (&e.scope_key).into(),
            (&e.edge_type).into(),
            (&e.src_id).into(),
            (&e.dst_id).into(),
            e.weight.into(),
            e.confidence.into(),
            e.decay_rate.into(),
            now.into(),
            (&e.created_at).into(),
            commit_id.into(),
        ],
    )
}

/// Inserts a derived node (no client vector) attested by `commit_id`.
pub fn insert_node(db: &dyn Sql, n: &StoredNode, status: &str, commit_id: &str) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_nodes (id, scope, client_id, type, tier, title, text_summary, slots, raw_ref, evidence_ref, \
         embedding, embedding_model, embedding_status, embedding_ready_at, salience, importance, confidence, memory_lane, \
         producer_agent_id, owner_agent_id, owner_team_id, created_at, updated_at, commit_id) \
         VALUES (?, ?, NULL, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
        &[
            (&n.id).into(),
            (&n.scope_key).into(),
            (&n.node_type).into(),
            (&n.tier).into(),
            n.title.clone().into(),
            n.text_summary.clone().into(),
            cairn_core::canonical_json::to_string(&Value::Object(n.slots.clone())).into(),
            n.embedding_model.clone().into(),
            status.into(),
            (status == "ready").then(|| n.updated_at.clone()).into(),
            n.salience.into(),
            n.importance.into(),
            n.confidence.into(),
            (&n.memory_lane).into(),
            n.owner_agent_id.clone().into(),
            n.owner_team_id.clone().into(),
            (&n.created_at).into(),
            (&n.updated_at).into(),
            commit_id.into(),
        ],
    )
}
