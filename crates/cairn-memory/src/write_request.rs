//! `POST /v1/memory/write`: reading and validating the request into a
//! [`WriteSpec`] — normalized text, defaults applied, every id derived —
//! before anything touches the database.

use crate::settings::Settings;
use cairn_core::ApiError;
use cairn_core::digest::{is_sha256_hex, sha256_canonical, sha256_hex};
use cairn_core::request_reader::{Obj, Reader};
use cairn_core::stable_id::stable_uuid;
use cairn_core::tenant_scope::{self, TenantScope};
use cairn_core::text;
use serde_json::{Map, Value, json};

pub const NODE_TYPES: &[&str] = &["event", "entity", "topic", "rule", "evidence", "concept", "procedure", "self_model"];
pub const EDGE_TYPES: &[&str] = &["part_of", "related_to", "derived_from"];
pub const TIERS: &[&str] = &["hot", "warm", "cold", "archive"];
pub const LANES: &[&str] = &["private", "shared"];

/// A node to write, fully resolved.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub client_id: Option<String>,
    pub node_type: String,
    pub tier: String,
    pub title: Option<String>,
    pub text_summary: Option<String>,
    pub slots: Map<String, Value>,
    pub raw_ref: Option<String>,
    pub evidence_ref: Option<String>,
    pub embedding: Option<Vec<f32>>,
    /// sha256 of the vector's little-endian f32 bytes (computed once).
    pub embedding_sha256: Option<String>,
    pub embedding_model: Option<String>,
    pub salience: f64,
    pub importance: f64,
    pub confidence: f64,
    pub memory_lane: String,
    pub producer_agent_id: Option<String>,
    pub owner_agent_id: Option<String>,
    pub owner_team_id: Option<String>,
}

/// How an edge names an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointRef {
    Id(String),
    ClientId(String),
}

impl EndpointRef {
    pub fn as_str(&self) -> &str {
        match self {
            EndpointRef::Id(s) | EndpointRef::ClientId(s) => s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EdgeSpec {
    pub id: Option<String>,
    pub edge_type: String,
    pub src: EndpointRef,
    pub dst: EndpointRef,
    pub weight: f64,
    pub confidence: f64,
    pub decay_rate: f64,
    /// Index in the request's `edges` array, for error paths.
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct WriteSpec {
    pub ts: TenantScope,
    pub actor: String,
    pub parent_commit_id: Option<String>,
    pub input_text: Option<String>,
    pub input_sha256: String,
    pub model_version: Option<String>,
    pub prompt_version: Option<String>,
    pub auto_embed: Option<bool>,
    pub force_reembed: bool,
    pub trigger_topic_cluster: Option<bool>,
    pub nodes: Vec<NodeSpec>,
    pub edges: Vec<EdgeSpec>,
}

impl NodeSpec {
    /// The text derivation embeds for this node (reference §4).
    pub fn embed_text(&self, input_text: Option<&str>) -> Option<String> {
        let (t, s) = (self.title.as_deref(), self.text_summary.as_deref());
        let pick = match self.node_type.as_str() {
            "event" | "evidence" => s.or(t).or(input_text),
            "entity" | "topic" | "concept" => t.or(s),
            _ => s.or(t),
        };
        pick.map(str::to_string)
    }

    /// The canonical request form of the node (for idempotency and for ids
    /// of nodes that have neither `id` nor `client_id`).
    pub fn spec_json(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "type": self.node_type,
            "tier": self.tier,
            "title": self.title,
            "text_summary": self.text_summary,
            "slots": Value::Object(self.slots.clone()),
            "raw_ref": self.raw_ref,
            "evidence_ref": self.evidence_ref,
            "embedding_sha256": self.embedding_sha256,
            "embedding_model": self.embedding_model,
            "salience": self.salience,
            "importance": self.importance,
            "confidence": self.confidence,
            "memory_lane": self.memory_lane,
            "producer_agent_id": self.producer_agent_id,
            "owner_agent_id": self.owner_agent_id,
            "owner_team_id": self.owner_team_id,
        })
    }
}

impl WriteSpec {
    /// Identity of the request for idempotent retries: the same normalized
    /// request in the same scope is the same commit.
    pub fn request_sha256(&self) -> String {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| {
                let mut v = n.spec_json();
                v["id"] = json!(n.id);
                v
            })
            .collect();
        let edges: Vec<Value> = self
            .edges
            .iter()
            .map(|e| {
                json!({"id": e.id, "type": e.edge_type, "src": e.src.as_str(), "dst": e.dst.as_str(),
                       "weight": e.weight, "confidence": e.confidence, "decay_rate": e.decay_rate})
            })
            .collect();
        sha256_canonical(&json!({
            "v": 1,
            "kind": crate::commit_chain::KIND_WRITE,
            "scope": self.ts.scope_key,
            "actor": self.actor,
            "input_sha256": self.input_sha256,
            "model_version": self.model_version,
            "prompt_version": self.prompt_version,
            "parent_commit_id": self.parent_commit_id,
            "auto_embed": self.auto_embed,
            "force_reembed": self.force_reembed,
            "trigger_topic_cluster": self.trigger_topic_cluster,
            "nodes": nodes,
            "edges": edges,
        }))
    }
}

/// Request-level owner and lane defaults nodes inherit.
struct Defaults {
    lane: Option<String>,
    producer: Option<String>,
    owner_agent: Option<String>,
    owner_team: Option<String>,
}

/// Reads `input_text` / `input_sha256`: one is required; the hash is the
/// given one or that of the normalized text.
pub fn read_input(r: &mut Reader, o: Obj) -> (Option<String>, String) {
    let raw = r.str_any(o, "input_text");
    let given_sha = r.str_any(o, "input_sha256");
    if let Some(s) = &given_sha
        && !is_sha256_hex(s)
    {
        r.issue(Reader::path(o, "input_sha256"), "Invalid: must match ^[a-f0-9]{64}$");
    }
    let text = raw.as_deref().map(text::normalize);
    match (&text, &given_sha) {
        (None, None) => r.issue("", "must set input_text or input_sha256"),
        (Some(t), None) if t.is_empty() => {
            r.issue(Reader::path(o, "input_text"), "must not be empty after whitespace normalization")
        }
        _ => {}
    }
    let text = text.filter(|t| !t.is_empty());
    let sha = given_sha.unwrap_or_else(|| sha256_hex(text.as_deref().unwrap_or("")));
    (text, sha)
}

/// Parses and validates a write request.
pub fn parse(body: &Value, settings: &Settings) -> Result<WriteSpec, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    r.finish()?;
    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;
    parse_in_scope(o, ts, settings)
}

/// Parses a write request whose tenant and scope are already resolved.
pub fn parse_in_scope(o: Obj, ts: TenantScope, settings: &Settings) -> Result<WriteSpec, ApiError> {
    let mut r = Reader::new();
    let actor = r.str_opt_len(o, "actor", 1, 256).unwrap_or_else(|| "system".into());
    let parent_commit_id = r.uuid_opt(o, "parent_commit_id");
    let (input_text, input_sha256) = read_input(&mut r, o);
    let model_version = r.str_opt_len(o, "model_version", 1, 256);
    let prompt_version = r.str_opt_len(o, "prompt_version", 1, 256);
    let auto_embed = r.bool_opt(o, "auto_embed");
    let force_reembed = r.bool_opt(o, "force_reembed").unwrap_or(false);
    let trigger_topic_cluster = r.bool_opt(o, "trigger_topic_cluster");
    let _topic_cluster_async = r.bool_opt(o, "topic_cluster_async");
    let defaults = Defaults {
        lane: r.enum_opt(o, "memory_lane", LANES),
        producer: r.str_opt_len(o, "producer_agent_id", 1, 256),
        owner_agent: r.str_opt_len(o, "owner_agent_id", 1, 256),
        owner_team: r.str_opt_len(o, "owner_team_id", 1, 256),
    };

    let mut nodes = Vec::new();
    if let Some(list) = r.arr_opt(o, "nodes") {
        for (i, v) in list.iter().enumerate() {
            let path = Reader::elem_path(o, "nodes", i);
            if let Some(n) = read_node(&mut r, v, &path, &ts, &defaults, settings) {
                nodes.push(n);
            }
        }
    }
    let mut edges = Vec::new();
    if let Some(list) = r.arr_opt(o, "edges") {
        for (i, v) in list.iter().enumerate() {
            let path = Reader::elem_path(o, "edges", i);
            if let Some(e) = read_edge(&mut r, v, &path, i, &ts) {
                edges.push(e);
            }
        }
    }
    r.finish()?;

    // Ids: client_id-derived ids are checked against an explicit id; nodes
    // with neither get an id from their content.
    for (i, n) in nodes.iter_mut().enumerate() {
        if n.id.is_empty() {
            let content = sha256_canonical(&n.spec_json());
            n.id = stable_uuid(&format!("{}:node:{content}", ts.scope_key));
        }
        // Private rules must name an owner, or nobody could ever see them.
        if n.node_type == "rule"
            && n.memory_lane == "private"
            && n.owner_agent_id.is_none()
            && n.owner_team_id.is_none()
        {
            return Err(ApiError::bad_request(
                "invalid_private_rule_owner",
                "private rule requires owner_agent_id or owner_team_id",
            )
            .with_details(json!({"node_id": n.id, "client_id": n.client_id, "memory_lane": n.memory_lane,
                                 "type": n.node_type, "index": i})));
        }
        if n.node_type == "rule" {
            crate::rule_defs::DefSource::from_slots(&n.slots)
                .check_target()
                .map_err(|e| e.with_details(json!({"node_id": n.id, "client_id": n.client_id, "index": i})))?;
        }
    }
    let edge_input = input_text.clone().unwrap_or_else(|| input_sha256.clone());
    for e in edges.iter_mut() {
        if e.id.is_none() {
            e.id = Some(stable_uuid(&format!(
                "{}:edge:{edge_input}:{}:{}:{}",
                ts.scope_key,
                e.edge_type,
                e.src.as_str(),
                e.dst.as_str()
            )));
        }
    }
    Ok(WriteSpec {
        ts,
        actor,
        parent_commit_id,
        input_text,
        input_sha256,
        model_version,
        prompt_version,
        auto_embed,
        force_reembed,
        trigger_topic_cluster,
        nodes,
        edges,
    })
}

/// Checks a per-row `scope` override: it must name the request's scope, since
/// each scope's content is attested by that scope's own chain.
fn check_row_scope(r: &mut Reader, o: Obj, ts: &TenantScope) {
    if let Some(s) = r.str_any(o, "scope")
        && s.trim() != ts.scope
    {
        r.issue(
            Reader::path(o, "scope"),
            format!("must equal the request scope '{}' (each scope has its own commit chain)", ts.scope),
        );
    }
}

fn read_node(
    r: &mut Reader,
    v: &Value,
    path: &str,
    ts: &TenantScope,
    d: &Defaults,
    settings: &Settings,
) -> Option<NodeSpec> {
    let Value::Object(map) = v else {
        r.issue(path, format!("Expected object, received {}", cairn_core::request_reader::type_name(v)));
        return None;
    };
    let o = Obj { map, path };
    check_row_scope(r, o, ts);
    let node_type = r.enum_req(o, "type", NODE_TYPES);
    let explicit_id = r.uuid_opt(o, "id");
    let client_id = r.str_opt_len(o, "client_id", 1, 512).map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    let tier = r.enum_opt(o, "tier", TIERS).unwrap_or_else(|| "hot".into());
    let lane = r.enum_opt(o, "memory_lane", LANES);
    let producer = r.str_opt_len(o, "producer_agent_id", 1, 256);
    let owner_agent = r.str_opt_len(o, "owner_agent_id", 1, 256);
    let owner_team = r.str_opt_len(o, "owner_team_id", 1, 256);
    let title = r.str_any(o, "title").and_then(|t| text::normalize_opt(Some(&t)));
    let text_summary = r.str_any(o, "text_summary").and_then(|t| text::normalize_opt(Some(&t)));
    let slots = r.obj_opt(o, "slots").cloned().unwrap_or_default();
    let raw_ref = r.str_opt_len(o, "raw_ref", 1, 4096);
    let evidence_ref = r.str_opt_len(o, "evidence_ref", 1, 4096);
    let embedding = read_embedding(r, o, settings.embedding_dims);
    let embedding_model = r.str_opt_len(o, "embedding_model", 1, 256);
    let salience = r.num_opt(o, "salience", 0.0, 1.0).unwrap_or(0.5);
    let importance = r.num_opt(o, "importance", 0.0, 1.0).unwrap_or(0.5);
    let confidence = r.num_opt(o, "confidence", 0.0, 1.0).unwrap_or(0.5);
    let node_type = node_type?;

    let mut id = explicit_id.clone().unwrap_or_default();
    if let Some(cid) = &client_id {
        let derived = stable_uuid(&format!("{}:node:{cid}", ts.scope_key));
        match &explicit_id {
            Some(given) if *given != derived => {
                r.issue(
                    Reader::path(o, "id"),
                    format!("client_id/id mismatch: client_id '{cid}' in this scope is id {derived}"),
                );
                return None;
            }
            _ => id = derived,
        }
    }
    let producer = producer.or_else(|| d.producer.clone());
    let owner_agent_id = owner_agent.or_else(|| d.owner_agent.clone()).or_else(|| producer.clone());
    let embedding_sha256 = embedding.as_ref().map(|e| sha256_hex(cairn_spin::sql::f32_blob(e)));
    Some(NodeSpec {
        id,
        client_id,
        node_type,
        tier,
        title,
        text_summary,
        slots,
        raw_ref,
        evidence_ref,
        embedding,
        embedding_sha256,
        embedding_model,
        salience,
        importance,
        confidence,
        memory_lane: lane.or_else(|| d.lane.clone()).unwrap_or_else(|| "private".into()),
        producer_agent_id: producer,
        owner_agent_id,
        owner_team_id: owner_team.or_else(|| d.owner_team.clone()),
    })
}

/// A client-supplied vector: exactly `dims` finite numbers.
pub fn read_embedding(r: &mut Reader, o: Obj, dims: usize) -> Option<Vec<f32>> {
    read_vector(r, o, "embedding", dims)
}

/// A vector field `key`: exactly `dims` finite numbers (also recall's
/// `query_embedding`).
pub fn read_vector(r: &mut Reader, o: Obj, key: &str, dims: usize) -> Option<Vec<f32>> {
    let arr = r.arr_opt(o, key)?;
    let path = Reader::path(o, key);
    if arr.len() != dims {
        r.issue(&path, format!("Array must contain exactly {dims} element(s), received {}", arr.len()));
        return None;
    }
    let mut out = Vec::with_capacity(dims);
    for (i, x) in arr.iter().enumerate() {
        match x.as_f64() {
            Some(f) if f.is_finite() && (f as f32).is_finite() => out.push(f as f32),
            _ => {
                r.issue(format!("{path}.{i}"), "Expected a finite number");
                return None;
            }
        }
    }
    Some(out)
}

fn read_endpoint(r: &mut Reader, o: Obj, key: &str) -> Option<EndpointRef> {
    let path = Reader::path(o, key);
    let Some(map) = r.obj_opt(o, key) else {
        if o.map.get(key).is_none_or(Value::is_null) {
            r.issue(path, "Required");
        }
        return None;
    };
    let eo = Obj { map, path: &path };
    let before = r.issue_count();
    let id = r.uuid_opt(eo, "id");
    let cid = r.str_opt_len(eo, "client_id", 1, 512).map(|c| c.trim().to_string());
    match (id, cid) {
        (Some(id), None) => Some(EndpointRef::Id(id)),
        (None, Some(c)) if !c.is_empty() => Some(EndpointRef::ClientId(c)),
        (Some(_), Some(_)) => {
            r.issue(&path, "set either id or client_id, not both");
            None
        }
        _ => {
            if r.issue_count() == before {
                r.issue(&path, "must set id or client_id");
            }
            None
        }
    }
}

fn read_edge(r: &mut Reader, v: &Value, path: &str, index: usize, ts: &TenantScope) -> Option<EdgeSpec> {
    let Value::Object(map) = v else {
        r.issue(path, format!("Expected object, received {}", cairn_core::request_reader::type_name(v)));
        return None;
    };
    let o = Obj { map, path };
    check_row_scope(r, o, ts);
    let id = r.uuid_opt(o, "id");
    let edge_type = r.enum_req(o, "type", EDGE_TYPES);
    let src = read_endpoint(r, o, "src");
    let dst = read_endpoint(r, o, "dst");
    let weight = r.num_opt(o, "weight", 0.0, 1.0).unwrap_or(0.5);
    let confidence = r.num_opt(o, "confidence", 0.0, 1.0).unwrap_or(0.5);
    let decay_rate = r.num_opt(o, "decay_rate", 0.0, 1.0).unwrap_or(0.01);
    Some(EdgeSpec { id, edge_type: edge_type?, src: src?, dst: dst?, weight, confidence, decay_rate, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings { embedding_dims: 3, ..Settings::default() }
    }

    #[test]
    fn derives_ids_and_applies_defaults() {
        let body = json!({
            "input_text": "  hello \n world ",
            "memory_lane": "shared",
            "producer_agent_id": "agent-1",
            "nodes": [
                {"client_id": " evt-1 ", "type": "event", "text_summary": "a  b", "embedding": [0.1, 0.2, 0.3]},
                {"type": "entity", "title": "Alice"}
            ],
            "edges": [{"type": "related_to", "src": {"client_id": "evt-1"}, "dst": {"client_id": "x"}}]
        });
        let w = parse(&body, &settings()).unwrap();
        assert_eq!(w.input_text.as_deref(), Some("hello world"));
        assert_eq!(w.input_sha256, sha256_hex("hello world"));
        assert_eq!(w.nodes[0].id, stable_uuid("default:node:evt-1"));
        assert_eq!(w.nodes[0].text_summary.as_deref(), Some("a b"));
        assert_eq!(w.nodes[0].memory_lane, "shared");
        assert_eq!(w.nodes[0].owner_agent_id.as_deref(), Some("agent-1"));
        assert_eq!(w.nodes[1].id.len(), 36);
        assert_eq!(w.edges[0].id.as_deref(), Some(stable_uuid("default:edge:hello world:related_to:evt-1:x").as_str()));
        // Same request, same identity.
        assert_eq!(w.request_sha256(), parse(&body, &settings()).unwrap().request_sha256());
    }

    #[test]
    fn collects_issues() {
        let body = json!({
            "nodes": [{"type": "bogus"}, {"type": "event", "embedding": [1, 2]}, {"type": "event", "salience": 2}],
            "edges": [{"type": "part_of", "src": {}, "dst": {"id": "nope"}}]
        });
        let e = parse(&body, &settings()).unwrap_err();
        assert_eq!(e.code, "invalid_request");
        let paths: Vec<String> = e.details.unwrap()["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect();
        assert!(paths.contains(&"".to_string()), "{paths:?}");
        assert!(paths.contains(&"nodes.0.type".to_string()));
        assert!(paths.contains(&"nodes.1.embedding".to_string()));
        assert!(paths.contains(&"nodes.2.salience".to_string()));
        assert!(paths.contains(&"edges.0.src".to_string()));
        assert!(paths.contains(&"edges.0.dst.id".to_string()));
    }

    #[test]
    fn client_id_id_mismatch_and_private_rule_owner() {
        let body = json!({"input_text": "x", "nodes": [{"type": "event", "client_id": "a", "id": "123e4567-e89b-12d3-a456-426614174000"}]});
        let e = parse(&body, &settings()).unwrap_err();
        assert!(e.message.contains("client_id/id mismatch"), "{e:?}");
        let body = json!({"input_text": "x", "nodes": [{"type": "rule", "memory_lane": "private"}]});
        assert_eq!(parse(&body, &settings()).unwrap_err().code, "invalid_private_rule_owner");
        let body =
            json!({"input_text": "x", "nodes": [{"type": "rule", "memory_lane": "private", "owner_team_id": "t"}]});
        assert!(parse(&body, &settings()).is_ok());
    }

    #[test]
    fn rejects_other_row_scopes_and_empty_input() {
        let body = json!({"input_text": "x", "scope": "a", "nodes": [{"type": "event", "scope": "b"}]});
        assert_eq!(parse(&body, &settings()).unwrap_err().code, "invalid_request");
        let body = json!({"input_text": "   "});
        assert_eq!(parse(&body, &settings()).unwrap_err().code, "invalid_request");
        let body = json!({"input_sha256": "A".repeat(64)});
        assert_eq!(parse(&body, &settings()).unwrap_err().code, "invalid_request");
    }
}
