//! Nodes and edges as stored, and the content hash a commit records for
//! each row it writes.
//!
//! The content hash covers what a write decides — never what derivation
//! fills in later (embedding status, derived vectors, activation times) — so
//! derived data can be rebuilt without breaking the chain:
//!
//! node: `sha256(canonical({id, scope, client_id, type, tier, title,
//! text_summary, slots, raw_ref, evidence_ref, embedding_sha256, salience,
//! importance, confidence, memory_lane, producer_agent_id, owner_agent_id,
//! owner_team_id, created_at}))`, where `scope` is the internal scope key and
//! `embedding_sha256` the sha256 of a client-supplied vector's little-endian
//! f32 bytes (null when none was supplied).
//!
//! edge: `sha256(canonical({id, scope, type, src_id, dst_id, weight,
//! confidence, decay_rate, created_at}))`.

use cairn_core::digest::{sha256_canonical, sha256_hex};
use cairn_spin::sql::Row;
use serde_json::{Map, Value, json};

/// Columns read for a [`StoredNode`], in [`StoredNode::from_row`] order.
pub const NODE_COLUMNS: &str = "id, scope, client_id, type, tier, title, text_summary, slots, raw_ref, \
    evidence_ref, embedding, salience, importance, confidence, memory_lane, producer_agent_id, \
    owner_agent_id, owner_team_id, created_at, commit_id, embedding_status, embedding_model, \
    updated_at, last_activated";

#[derive(Debug, Clone, PartialEq)]
pub struct StoredNode {
    pub id: String,
    pub scope_key: String,
    pub client_id: Option<String>,
    pub node_type: String,
    pub tier: String,
    pub title: Option<String>,
    pub text_summary: Option<String>,
    pub slots: Map<String, Value>,
    pub raw_ref: Option<String>,
    pub evidence_ref: Option<String>,
    pub embedding_sha256: Option<String>,
    pub salience: f64,
    pub importance: f64,
    pub confidence: f64,
    pub memory_lane: String,
    pub producer_agent_id: Option<String>,
    pub owner_agent_id: Option<String>,
    pub owner_team_id: Option<String>,
    pub created_at: String,
    // Not covered by the content hash:
    pub commit_id: String,
    pub embedding_status: String,
    pub embedding_model: Option<String>,
    pub updated_at: String,
    pub last_activated: Option<String>,
}

impl StoredNode {
    /// Parses a row selected with [`NODE_COLUMNS`].
    pub fn from_row(r: &Row) -> StoredNode {
        StoredNode::from_owned_row(r.clone())
    }

    /// [`StoredNode::from_row`] consuming the row: its strings move into
    /// the node instead of being copied (recall reads hundreds of rows).
    pub fn from_owned_row(mut r: Row) -> StoredNode {
        let slots = r
            .text(7)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        StoredNode {
            id: r.take_string(0),
            scope_key: r.take_string(1),
            client_id: r.take_opt_string(2),
            node_type: r.take_string(3),
            tier: r.take_string(4),
            title: r.take_opt_string(5),
            text_summary: r.take_opt_string(6),
            slots,
            raw_ref: r.take_opt_string(8),
            evidence_ref: r.take_opt_string(9),
            embedding_sha256: r.blob(10).map(sha256_hex),
            salience: r.real(11),
            importance: r.real(12),
            confidence: r.real(13),
            memory_lane: r.take_string(14),
            producer_agent_id: r.take_opt_string(15),
            owner_agent_id: r.take_opt_string(16),
            owner_team_id: r.take_opt_string(17),
            created_at: r.take_string(18),
            commit_id: r.take_string(19),
            embedding_status: r.take_string(20),
            embedding_model: r.take_opt_string(21),
            updated_at: r.take_string(22),
            last_activated: r.take_opt_string(23),
        }
    }

    /// The hashed content (see the module docs).
    pub fn content(&self) -> Value {
        json!({
            "id": self.id,
            "scope": self.scope_key,
            "client_id": self.client_id,
            "type": self.node_type,
            "tier": self.tier,
            "title": self.title,
            "text_summary": self.text_summary,
            "slots": Value::Object(self.slots.clone()),
            "raw_ref": self.raw_ref,
            "evidence_ref": self.evidence_ref,
            "embedding_sha256": self.embedding_sha256,
            "salience": self.salience,
            "importance": self.importance,
            "confidence": self.confidence,
            "memory_lane": self.memory_lane,
            "producer_agent_id": self.producer_agent_id,
            "owner_agent_id": self.owner_agent_id,
            "owner_team_id": self.owner_team_id,
            "created_at": self.created_at,
        })
    }

    pub fn content_sha256(&self) -> String {
        sha256_canonical(&self.content())
    }

    /// Whether a consumer with these ids may see the node: shared nodes
    /// always; private ones only by their owning agent or team.
    pub fn visible_to(&self, agent: Option<&str>, team: Option<&str>) -> bool {
        lane_visible(&self.memory_lane, self.owner_agent_id.as_deref(), self.owner_team_id.as_deref(), agent, team)
    }
}

/// The lane rule shared by find, sessions and (later) recall.
pub fn lane_visible(
    lane: &str,
    owner_agent: Option<&str>,
    owner_team: Option<&str>,
    agent: Option<&str>,
    team: Option<&str>,
) -> bool {
    lane == "shared" || (agent.is_some() && owner_agent == agent) || (team.is_some() && owner_team == team)
}

/// SQL condition implementing [`lane_visible`] for a nodes table alias;
/// binds (agent, team).
pub fn lane_visible_sql(alias: &str) -> String {
    lane_visible_sql_at(alias, "?", "?")
}

/// [`lane_visible_sql`] with the agent and team bound to given parameters
/// (e.g. `?3`, `?4`), for statements with numbered parameters.
pub fn lane_visible_sql_at(alias: &str, agent: &str, team: &str) -> String {
    format!(
        "({a}.memory_lane = 'shared' OR ({a}.owner_agent_id IS NOT NULL AND {a}.owner_agent_id = {agent}) \
         OR ({a}.owner_team_id IS NOT NULL AND {a}.owner_team_id = {team}))",
        a = alias
    )
}

/// Columns read for a [`StoredEdge`], in [`StoredEdge::from_row`] order.
pub const EDGE_COLUMNS: &str = "id, scope, type, src_id, dst_id, weight, confidence, decay_rate, created_at, commit_id";

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEdge {
    pub id: String,
    pub scope_key: String,
    pub edge_type: String,
    pub src_id: String,
    pub dst_id: String,
    pub weight: f64,
    pub confidence: f64,
    pub decay_rate: f64,
    pub created_at: String,
    pub commit_id: String,
}

impl StoredEdge {
    pub fn from_row(r: &Row) -> StoredEdge {
        StoredEdge {
            id: r.string(0),
            scope_key: r.string(1),
            edge_type: r.string(2),
            src_id: r.string(3),
            dst_id: r.string(4),
            weight: r.real(5),
            confidence: r.real(6),
            decay_rate: r.real(7),
            created_at: r.string(8),
            commit_id: r.string(9),
        }
    }

    pub fn content(&self) -> Value {
        json!({
            "id": self.id,
            "scope": self.scope_key,
            "type": self.edge_type,
            "src_id": self.src_id,
            "dst_id": self.dst_id,
            "weight": self.weight,
            "confidence": self.confidence,
            "decay_rate": self.decay_rate,
            "created_at": self.created_at,
        })
    }

    pub fn content_sha256(&self) -> String {
        sha256_canonical(&self.content())
    }
}

/// Rows for unit tests: a ready, shared node and an edge, defaults
/// everywhere else (commit ids `c-<id>`).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::StoredNode;
    use serde_json::Map;

    pub fn node(id: &str, node_type: &str) -> StoredNode {
        StoredNode {
            id: id.into(),
            scope_key: "s".into(),
            client_id: None,
            node_type: node_type.into(),
            tier: "hot".into(),
            title: None,
            text_summary: None,
            slots: Map::new(),
            raw_ref: None,
            evidence_ref: None,
            embedding_sha256: None,
            salience: 0.5,
            importance: 0.5,
            confidence: 0.5,
            memory_lane: "shared".into(),
            producer_agent_id: None,
            owner_agent_id: None,
            owner_team_id: None,
            created_at: String::new(),
            commit_id: format!("c-{id}"),
            embedding_status: "ready".into(),
            embedding_model: None,
            updated_at: String::new(),
            last_activated: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> StoredNode {
        let mut n = fixtures::node("n1", "event");
        n.scope_key = "default".into();
        n.client_id = Some("c".into());
        n.text_summary = Some("hello".into());
        n.confidence = 1.0;
        n.created_at = "2026-01-01T00:00:00.000Z".into();
        n.updated_at = "2026-01-01T00:00:00.000Z".into();
        n.commit_id = "c1".into();
        n.embedding_status = "pending".into();
        n
    }

    #[test]
    fn content_hash_ignores_derived_columns_and_covers_content() {
        let a = node();
        let mut b = node();
        b.embedding_status = "ready".into();
        b.commit_id = "c2".into();
        assert_eq!(a.content_sha256(), b.content_sha256());
        b.text_summary = Some("hellp".into());
        assert_ne!(a.content_sha256(), b.content_sha256());
        // confidence 1.0 hashes as the integer 1, like JavaScript.
        assert!(cairn_core::canonical_json::to_string(&a.content()).contains("\"confidence\":1,"));
    }

    #[test]
    fn lanes() {
        assert!(lane_visible("shared", None, None, None, None));
        assert!(!lane_visible("private", Some("a"), None, None, None));
        assert!(lane_visible("private", Some("a"), None, Some("a"), None));
        assert!(lane_visible("private", None, Some("t"), Some("x"), Some("t")));
        assert!(!lane_visible("private", None, None, Some("a"), Some("t")));
    }
}
