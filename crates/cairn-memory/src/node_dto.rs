//! What clients see of a node: the reference's DTO whitelisting. Embeddings
//! are never returned; slots only on request (whole, or a preview of the
//! first keys in sorted order); meta only with `include_meta`.

use crate::stored_rows::StoredNode;
use cairn_core::encoding::encode_uri_component;
use cairn_core::request_reader::{Obj, Reader};
use serde_json::{Map, Value, json};

/// The `aionis://<tenant>/<scope>/<type>/<id>` URI of a node.
pub fn node_uri(tenant: &str, scope: &str, node_type: &str, id: &str) -> String {
    format!(
        "aionis://{}/{}/{}/{}",
        encode_uri_component(tenant),
        encode_uri_component(scope),
        encode_uri_component(node_type),
        id
    )
}

/// DTO flags shared by find, sessions and recall.
#[derive(Debug, Clone, Copy)]
pub struct DtoOptions {
    pub include_meta: bool,
    pub include_slots: bool,
    pub include_slots_preview: bool,
    pub slots_preview_keys: usize,
}

impl DtoOptions {
    /// Reads `include_meta`, `include_slots`, `include_slots_preview`,
    /// `slots_preview_keys` (1..50, default 10) from a JSON body.
    pub fn read(r: &mut Reader, o: Obj) -> DtoOptions {
        DtoOptions {
            include_meta: r.bool_opt(o, "include_meta").unwrap_or(false),
            include_slots: r.bool_opt(o, "include_slots").unwrap_or(false),
            include_slots_preview: r.bool_opt(o, "include_slots_preview").unwrap_or(false),
            slots_preview_keys: r.int_opt(o, "slots_preview_keys", 1, 50).unwrap_or(10) as usize,
        }
    }

    /// The same from query-string pairs.
    pub fn read_query(r: &mut Reader, q: &dyn Fn(&str) -> Option<String>) -> DtoOptions {
        use cairn_core::request_reader::{query_bool, query_int};
        DtoOptions {
            include_meta: query_bool(r, "include_meta", q("include_meta").as_deref()).unwrap_or(false),
            include_slots: query_bool(r, "include_slots", q("include_slots").as_deref()).unwrap_or(false),
            include_slots_preview: query_bool(r, "include_slots_preview", q("include_slots_preview").as_deref())
                .unwrap_or(false),
            slots_preview_keys: query_int(r, "slots_preview_keys", q("slots_preview_keys").as_deref(), 1, 50)
                .unwrap_or(10) as usize,
        }
    }
}

/// The first `n` slot keys in sorted order.
pub fn slots_preview(slots: &Map<String, Value>, n: usize) -> Map<String, Value> {
    let mut keys: Vec<&String> = slots.keys().collect();
    keys.sort();
    keys.into_iter().take(n).map(|k| (k.clone(), slots[k].clone())).collect()
}

/// Adds `topic_state` / `member_count` for topics, slots or a preview, and
/// meta fields, to `m`.
pub fn add_common(m: &mut Map<String, Value>, n: &StoredNode, o: &DtoOptions, with_tier: bool) {
    if n.node_type == "topic" {
        m.insert("topic_state".into(), n.slots.get("topic_state").cloned().unwrap_or_else(|| json!("active")));
        m.insert("member_count".into(), n.slots.get("member_count").cloned().unwrap_or(Value::Null));
    }
    if o.include_slots {
        m.insert("slots".into(), Value::Object(n.slots.clone()));
    } else if o.include_slots_preview {
        m.insert("slots_preview".into(), Value::Object(slots_preview(&n.slots, o.slots_preview_keys)));
    }
    if o.include_meta {
        add_meta(m, n, with_tier);
    }
}

/// The meta fields `include_meta` adds.
pub fn add_meta(m: &mut Map<String, Value>, n: &StoredNode, with_tier: bool) {
    if with_tier {
        m.insert("tier".into(), json!(n.tier));
    }
    m.insert("raw_ref".into(), json!(n.raw_ref));
    m.insert("evidence_ref".into(), json!(n.evidence_ref));
    m.insert("embedding_status".into(), json!(n.embedding_status));
    m.insert("embedding_model".into(), json!(n.embedding_model));
    m.insert("memory_lane".into(), json!(n.memory_lane));
    m.insert("producer_agent_id".into(), json!(n.producer_agent_id));
    m.insert("owner_agent_id".into(), json!(n.owner_agent_id));
    m.insert("owner_team_id".into(), json!(n.owner_team_id));
    m.insert("created_at".into(), json!(n.created_at));
    m.insert("updated_at".into(), json!(n.updated_at));
    m.insert("last_activated".into(), json!(n.last_activated));
    m.insert("salience".into(), json!(n.salience));
    m.insert("importance".into(), json!(n.importance));
    m.insert("confidence".into(), json!(n.confidence));
    m.insert("commit_id".into(), json!(n.commit_id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_preview() {
        assert_eq!(
            node_uri("t 1", "s/x", "event", "123e4567-e89b-12d3-a456-426614174000"),
            "aionis://t%201/s%2Fx/event/123e4567-e89b-12d3-a456-426614174000"
        );
        let slots: Map<String, Value> = serde_json::from_value(json!({"b": 2, "a": 1, "c": 3})).unwrap();
        let p = slots_preview(&slots, 2);
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
