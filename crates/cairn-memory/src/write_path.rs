//! The audit-first write: one `BEGIN IMMEDIATE` transaction that checks
//! every reference, appends one commit to the scope's chain, inserts the
//! nodes and edges it attests, and enqueues derivation jobs — or writes
//! nothing at all.
//!
//! Nodes are insert-once (re-writing an existing id changes nothing; the
//! commit records the stored row's content hash). Edges upsert on
//! (scope, type, src, dst) keeping the greater weight and confidence, and the
//! new commit then attests the row. An identical retry (same normalized
//! request in the same scope) returns the commit it made the first time.

use crate::commit_chain::{self, KIND_WRITE, NewCommit};
use crate::settings::Settings;
use crate::stored_rows::{EDGE_COLUMNS, NODE_COLUMNS, StoredEdge, StoredNode};
use crate::write_request::{EndpointRef, NodeSpec, WriteSpec};
use cairn_core::ApiError;
use cairn_core::digest::sha256_canonical;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue, f32_blob, is_unique_violation, placeholders, scope_write_txn};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// An edge's identity within a scope: (type, src id, dst id).
type EdgeKey = (String, String, String);

/// The request's edges with the same identity, merged (greatest weight and
/// confidence, first id and decay rate).
#[derive(Clone)]
struct MergedEdge {
    id: String,
    weight: f64,
    confidence: f64,
    decay_rate: f64,
}

/// Runs the write described by `spec`; returns the response body.
///
/// A write reads and changes only its scope's rows (the chain head, nodes,
/// edges, usage) and appends outbox jobs, so it holds its scope's lock
/// ([`scope_write_txn`]): on PostgreSQL, writes to other scopes run at the
/// same time. Node and edge ids are unique across scopes, and the checks
/// for one taken elsewhere (`node_id_conflict`, `edge_id_conflict`) read
/// other scopes without their locks: a write racing another scope's for
/// the same explicit id meets the unique key instead, answered as a 409.
pub fn write(db: &dyn Sql, settings: &Settings, spec: &WriteSpec, now_ms: i64) -> Result<Value, ApiError> {
    let request_sha = spec.request_sha256();
    scope_write_txn(db, &spec.ts.scope_key, |db| match earlier_commit_or_head(db, spec, &request_sha)? {
        Prior::Replay(resp) => Ok(resp),
        Prior::Head(head) => apply(db, settings, spec, &request_sha, head, now_ms),
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::conflict("id_conflict", "an id in this write was taken by a concurrent write to another scope")
                .with_details(json!({"cause": e.message}))
        } else {
            e
        }
    })
}

/// The tenant a scope key belongs to.
fn tenant_of_key<'a>(key: &'a str, default_tenant: &'a str) -> &'a str {
    cairn_core::tenant_scope::split_key(key, default_tenant).0
}

fn load_nodes(db: &dyn Sql, ids: &[&str]) -> Result<HashMap<String, StoredNode>, ApiError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(400) {
        let sql = format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id IN ({})", placeholders(chunk.len()));
        let params: Vec<SqlValue> = chunk.iter().map(|s| (*s).into()).collect();
        for row in db.query(&sql, &params)? {
            let n = StoredNode::from_row(&row);
            out.insert(n.id.clone(), n);
        }
    }
    Ok(out)
}

fn apply(
    db: &dyn Sql,
    settings: &Settings,
    spec: &WriteSpec,
    request_sha: &str,
    head: Option<commit_chain::Head>,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let key = spec.ts.scope_key.as_str();
    let now = rfc3339_millis(now_ms);

    if let Some(p) = &spec.parent_commit_id {
        let found =
            db.query_one("SELECT seq FROM memory_commits WHERE id = ? AND scope = ?", &[p.into(), key.into()])?;
        if found.is_none() {
            return Err(ApiError::bad_request("parent_commit_not_found", "parent_commit_id not found in scope")
                .with_details(json!({"parent_commit_id": p, "scope": spec.ts.scope})));
        }
        if head.as_ref().map(|h| &h.id) != Some(p) {
            return Err(ApiError::conflict(
                "parent_commit_conflict",
                "parent_commit_id is not the scope's head commit; the chain does not fork (re-read the head and retry)",
            )
            .with_details(json!({"parent_commit_id": p, "head_commit_id": head.as_ref().map(|h| h.id.clone())})));
        }
    }

    // The request's nodes, first occurrence of each id wins.
    let mut nodes: Vec<&NodeSpec> = Vec::with_capacity(spec.nodes.len());
    let mut by_client: HashMap<&str, &str> = HashMap::new();
    for n in &spec.nodes {
        if nodes.iter().any(|m| m.id == n.id) {
            continue;
        }
        if let Some(c) = &n.client_id {
            by_client.insert(c, &n.id);
        }
        nodes.push(n);
    }

    // Everything already stored that the request names.
    let mut wanted: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    for e in &spec.edges {
        for r in [&e.src, &e.dst] {
            if let EndpointRef::Id(id) = r {
                wanted.push(id);
            }
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let existing = load_nodes(db, &wanted)?;

    let default_tenant = settings.defaults.tenant_id.as_str();
    for (i, n) in spec.nodes.iter().enumerate() {
        if let Some(e) = existing.get(&n.id)
            && e.scope_key != key
        {
            return Err(ApiError::bad_request("node_id_conflict", "node id is already used outside this scope")
                .with_details(json!({"node_id": n.id, "index": i})));
        }
    }

    // Resolve edge endpoints.
    let request_ids: std::collections::HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let resolve = |r: &EndpointRef, idx: usize, side: &str| -> Result<String, ApiError> {
        match r {
            EndpointRef::ClientId(c) => by_client.get(c.as_str()).map(|s| s.to_string()).ok_or_else(|| {
                ApiError::bad_request(
                    "unknown_client_id_reference",
                    format!("edges.{idx}.{side}.client_id '{c}' is not a node of this request (reference stored nodes by id)"),
                )
                .with_details(json!({"edge_index": idx, "side": side, "client_id": c}))
            }),
            EndpointRef::Id(id) => {
                if request_ids.contains(id.as_str()) {
                    return Ok(id.clone());
                }
                match existing.get(id) {
                    Some(n) if n.scope_key == key => Ok(id.clone()),
                    Some(n) if tenant_of_key(&n.scope_key, default_tenant) == spec.ts.tenant_id => {
                        Err(ApiError::bad_request("cross_scope_edge_not_allowed", "edge endpoints must be in the edge's scope")
                            .with_details(json!({"edge_index": idx, "side": side, "node_id": id})))
                    }
                    _ => Err(ApiError::bad_request("edge_endpoint_not_found", format!("edges.{idx}.{side} node {id} not found"))
                        .with_details(json!({"edge_index": idx, "side": side, "node_id": id}))),
                }
            }
        }
    };
    // (type, src, dst) -> merged edge, in request order.
    let mut edge_order: Vec<EdgeKey> = Vec::new();
    let mut merged: HashMap<EdgeKey, MergedEdge> = HashMap::new();
    for e in &spec.edges {
        let src = resolve(&e.src, e.index, "src")?;
        let dst = resolve(&e.dst, e.index, "dst")?;
        if src == dst {
            return Err(ApiError::invalid(&format!("edges.{}", e.index), "src and dst must be different nodes"));
        }
        let k = (e.edge_type.clone(), src, dst);
        match merged.get_mut(&k) {
            Some(m) => {
                m.weight = m.weight.max(e.weight);
                m.confidence = m.confidence.max(e.confidence);
            }
            None => {
                edge_order.push(k.clone());
                merged.insert(
                    k,
                    MergedEdge {
                        id: e.id.clone().unwrap_or_default(),
                        weight: e.weight,
                        confidence: e.confidence,
                        decay_rate: e.decay_rate,
                    },
                );
            }
        }
    }

    // Stored content after this write, node by node and edge by edge.
    let mut stored_nodes: Vec<(StoredNode, bool)> = Vec::with_capacity(nodes.len());
    for n in &nodes {
        match existing.get(&n.id) {
            Some(e) => stored_nodes.push((e.clone(), false)),
            None => stored_nodes.push((new_stored_node(n, key, &now), true)),
        }
    }
    let mut stored_edges: Vec<(StoredEdge, bool)> = Vec::with_capacity(edge_order.len());
    for k in &edge_order {
        let MergedEdge { id, weight: w, confidence: c, decay_rate: d } = merged[k].clone();
        let prior = db
            .query_one(
                &format!(
                    "SELECT {EDGE_COLUMNS} FROM memory_edges WHERE scope = ? AND type = ? AND src_id = ? AND dst_id = ?"
                ),
                &[key.into(), (&k.0).into(), (&k.1).into(), (&k.2).into()],
            )?
            .map(|r| StoredEdge::from_row(&r));
        let edge = match prior {
            Some(p) => StoredEdge { weight: p.weight.max(w), confidence: p.confidence.max(c), ..p },
            None => {
                if let Some(other) = db.query_one("SELECT scope FROM memory_edges WHERE id = ?", &[(&id).into()])? {
                    return Err(ApiError::bad_request("edge_id_conflict", "edge id is already used by another edge")
                        .with_details(json!({"edge_id": id, "same_scope": other.text(0) == Some(key)})));
                }
                StoredEdge {
                    id,
                    scope_key: key.to_string(),
                    edge_type: k.0.clone(),
                    src_id: k.1.clone(),
                    dst_id: k.2.clone(),
                    weight: w,
                    confidence: c,
                    decay_rate: d,
                    created_at: now.clone(),
                    commit_id: String::new(),
                }
            }
        };
        let is_new = edge.commit_id.is_empty();
        stored_edges.push((edge, is_new));
    }

    let diff = json!({
        "created_at": now,
        "nodes": stored_nodes.iter().map(|(n, _)| {
            let mut m = Map::new();
            m.insert("id".into(), json!(n.id));
            if let Some(c) = &n.client_id { m.insert("client_id".into(), json!(c)); }
            m.insert("type".into(), json!(n.node_type));
            if let Some(t) = &n.title { m.insert("title".into(), json!(t)); }
            m.insert("memory_lane".into(), json!(n.memory_lane));
            m.insert("producer_agent_id".into(), json!(n.producer_agent_id));
            m.insert("owner_agent_id".into(), json!(n.owner_agent_id));
            m.insert("owner_team_id".into(), json!(n.owner_team_id));
            m.insert("content_sha256".into(), json!(n.content_sha256()));
            Value::Object(m)
        }).collect::<Vec<_>>(),
        "edges": stored_edges.iter().map(|(e, _)| json!({
            "id": e.id, "type": e.edge_type, "src_id": e.src_id, "dst_id": e.dst_id,
            "content_sha256": e.content_sha256(),
        })).collect::<Vec<_>>(),
    });
    // Embedding status of each new node and the derivation jobs this write
    // enqueues — decided before the commit so its result is recorded with it.
    let provider = settings.embedding_provider.is_some();
    let auto_embed = spec.auto_embed.unwrap_or(true) && provider;
    let mut statuses: Vec<Option<NodeStatus>> = Vec::with_capacity(nodes.len());
    let mut embed_jobs: Vec<Value> = Vec::new();
    let mut ready_events: Vec<String> = Vec::new();
    let mut pending_events: Vec<String> = Vec::new();
    for (spec_node, (stored, is_new)) in nodes.iter().zip(&stored_nodes) {
        let embed_text = spec_node.embed_text(spec.input_text.as_deref());
        if !*is_new {
            if spec.force_reembed
                && auto_embed
                && let Some(t) = embed_text
            {
                embed_jobs.push(json!({"id": stored.id, "text": t}));
            }
            statuses.push(None);
            continue;
        }
        let st = match (&spec_node.embedding, &embed_text) {
            (Some(_), _) => {
                NodeStatus::ready(spec_node.embedding_model.clone().unwrap_or_else(|| "client".into()), &now)
            }
            (None, Some(_)) if auto_embed => NodeStatus::plain("pending", None),
            (None, None) if auto_embed => NodeStatus::plain("failed", Some("no_embed_text")),
            _ => NodeStatus::plain("failed", Some("auto_embed_disabled_or_no_provider")),
        };
        if st.status == "pending" {
            embed_jobs.push(json!({"id": stored.id, "text": embed_text}));
        }
        if stored.node_type == "event" {
            match st.status {
                "ready" => ready_events.push(stored.id.clone()),
                "pending" => pending_events.push(stored.id.clone()),
                _ => {}
            }
        }
        statuses.push(Some(st));
    }
    let cluster = spec.trigger_topic_cluster.unwrap_or(settings.auto_topic_cluster_on_write);
    let mut jobs: Vec<(&str, Value)> = Vec::new();
    let mut response_extra = Map::new();
    if !embed_jobs.is_empty() {
        let n = embed_jobs.len();
        let mut payload = json!({"nodes": embed_jobs});
        if spec.force_reembed {
            payload["force_reembed"] = json!(true);
        }
        if cluster && !pending_events.is_empty() {
            payload["after_topic_cluster_event_ids"] = json!(pending_events);
        }
        jobs.push(("embed_nodes", payload));
        response_extra.insert("embedding_backfill".into(), json!({"enqueued": true, "pending_nodes": n}));
    }
    if cluster && !ready_events.is_empty() {
        jobs.push(("topic_cluster", json!({"event_ids": ready_events})));
    }
    if cluster && (!ready_events.is_empty() || !pending_events.is_empty()) {
        response_extra.insert("topic_cluster".into(), json!({"enqueued": true}));
    }
    // Client vectors are ready at once; derivation puts them in the scope's
    // vector index (if it has one), as it does for the vectors it derives.
    let client_vectors: Vec<&str> = nodes
        .iter()
        .zip(&statuses)
        .filter(|(n, st)| n.embedding.is_some() && st.is_some())
        .map(|(n, _)| n.id.as_str())
        .collect();
    if !client_vectors.is_empty() {
        jobs.push(("index_nodes", json!({"node_ids": client_vectors})));
    }
    let result_json =
        (!response_extra.is_empty()).then(|| serde_json::to_string(&response_extra).expect("a JSON map serializes"));

    let appended = commit_chain::append(
        db,
        head.as_ref(),
        &NewCommit {
            scope_key: key,
            kind: KIND_WRITE,
            actor: &spec.actor,
            input_sha256: &spec.input_sha256,
            model_version: spec.model_version.as_deref(),
            prompt_version: spec.prompt_version.as_deref(),
            diff: &diff,
            request_sha256: request_sha,
            result_json: result_json.as_deref(),
            created_at: &now,
        },
    )?;

    // Rows and jobs, in the same transaction; the scope's usage grows by
    // what was stored.
    let mut stored_bytes = 0i64;
    for ((spec_node, (stored, _)), st) in nodes.iter().zip(&stored_nodes).zip(&statuses) {
        if let Some(st) = st {
            stored_bytes += insert_node(db, stored, spec_node.embedding.as_deref(), st, &appended.id)?;
            crate::recall::lexical::index_node(
                db,
                &stored.id,
                &stored.scope_key,
                stored.title.as_deref(),
                stored.text_summary.as_deref(),
            )?;
            if stored.node_type == "rule" {
                let def = crate::rule_defs::DefSource::from_slots(&stored.slots);
                let node = crate::rule_defs::DefNode {
                    memory_lane: &stored.memory_lane,
                    owner_agent_id: stored.owner_agent_id.as_deref(),
                    owner_team_id: stored.owner_team_id.as_deref(),
                    summary: stored.text_summary.as_deref(),
                };
                crate::rule_defs::insert_draft(db, &stored.scope_key, &stored.id, &def, &node, &appended.id, &now)?;
            }
        }
    }
    for (edge, is_new) in &stored_edges {
        upsert_edge(db, edge, *is_new, &appended.id, &now)?;
    }
    for (event_type, payload) in &jobs {
        enqueue(db, key, &appended.id, event_type, payload, &now)?;
    }
    let new_edges = stored_edges.iter().filter(|(_, is_new)| *is_new).count() as i64;
    crate::usage::add(db, key, stored_bytes + new_edges * crate::usage::ROW_OVERHEAD as i64)?;

    let mut resp = response_head(spec, &appended.id, &appended.commit_hash, &diff);
    resp.as_object_mut().expect("object").extend(response_extra);
    Ok(resp)
}

fn new_stored_node(n: &NodeSpec, key: &str, now: &str) -> StoredNode {
    StoredNode {
        id: n.id.clone(),
        scope_key: key.to_string(),
        client_id: n.client_id.clone(),
        node_type: n.node_type.clone(),
        tier: n.tier.clone(),
        title: n.title.clone(),
        text_summary: n.text_summary.clone(),
        slots: n.slots.clone(),
        raw_ref: n.raw_ref.clone(),
        evidence_ref: n.evidence_ref.clone(),
        embedding_sha256: n.embedding_sha256.clone(),
        salience: n.salience,
        importance: n.importance,
        confidence: n.confidence,
        memory_lane: n.memory_lane.clone(),
        producer_agent_id: n.producer_agent_id.clone(),
        owner_agent_id: n.owner_agent_id.clone(),
        owner_team_id: n.owner_team_id.clone(),
        created_at: now.to_string(),
        commit_id: String::new(),
        embedding_status: String::new(),
        embedding_model: None,
        updated_at: now.to_string(),
        last_activated: None,
    }
}

/// The embedding state a new node starts in.
struct NodeStatus {
    status: &'static str,
    last_error: Option<&'static str>,
    model: Option<String>,
    ready_at: Option<String>,
}

impl NodeStatus {
    fn plain(status: &'static str, last_error: Option<&'static str>) -> NodeStatus {
        NodeStatus { status, last_error, model: None, ready_at: None }
    }
    fn ready(model: String, now: &str) -> NodeStatus {
        NodeStatus { status: "ready", last_error: None, model: Some(model), ready_at: Some(now.to_string()) }
    }
}

/// Inserts a node; returns the bytes it stores (its texts, slots and
/// vector, plus a fixed row overhead) for the scope's usage.
fn insert_node(
    db: &dyn Sql,
    n: &StoredNode,
    embedding: Option<&[f32]>,
    st: &NodeStatus,
    commit_id: &str,
) -> Result<i64, ApiError> {
    let slots = cairn_core::canonical_json::to_string(&Value::Object(n.slots.clone()));
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let bytes = crate::usage::ROW_OVERHEAD
        + slots.len()
        + len(&n.title)
        + len(&n.text_summary)
        + len(&n.raw_ref)
        + len(&n.evidence_ref)
        + embedding.map_or(0, |e| e.len() * 4);
    db.exec(
        "INSERT INTO memory_nodes (id, scope, client_id, type, tier, title, text_summary, slots, raw_ref, evidence_ref, \
         embedding, embedding_dims, embedding_model, embedding_status, embedding_last_error, embedding_ready_at, \
         salience, importance, confidence, memory_lane, producer_agent_id, owner_agent_id, owner_team_id, \
         created_at, updated_at, commit_id, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
         ?23, ?24, ?25, ?26, \
         (SELECT coalesce(max(seq), 0) + 1 FROM memory_nodes WHERE scope = ?2 AND seq IS NOT NULL))",
        &[
            (&n.id).into(),
            (&n.scope_key).into(),
            n.client_id.clone().into(),
            (&n.node_type).into(),
            (&n.tier).into(),
            n.title.clone().into(),
            n.text_summary.clone().into(),
            slots.into(),
            n.raw_ref.clone().into(),
            n.evidence_ref.clone().into(),
            embedding.map(f32_blob).into(),
            embedding.map(|e| e.len() as i64).into(),
            st.model.clone().into(),
            st.status.into(),
            st.last_error.into(),
            st.ready_at.clone().into(),
            n.salience.into(),
            n.importance.into(),
            n.confidence.into(),
            (&n.memory_lane).into(),
            n.producer_agent_id.clone().into(),
            n.owner_agent_id.clone().into(),
            n.owner_team_id.clone().into(),
            (&n.created_at).into(),
            (&n.updated_at).into(),
            commit_id.into(),
        ],
    )?;
    Ok(bytes as i64)
}

fn upsert_edge(db: &dyn Sql, e: &StoredEdge, is_new: bool, commit_id: &str, now: &str) -> Result<(), ApiError> {
    if is_new {
        db.exec(
            "INSERT INTO memory_edges (id, scope, type, src_id, dst_id, weight, confidence, decay_rate, last_activated, created_at, commit_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                (&e.id).into(), (&e.scope_key).into(), (&e.edge_type).into(), (&e.src_id).into(), (&e.dst_id).into(),
                e.weight.into(), e.confidence.into(), e.decay_rate.into(), now.into(), (&e.created_at).into(), commit_id.into(),
            ],
        )
    } else {
        db.exec(
            "UPDATE memory_edges SET weight = ?, confidence = ?, last_activated = ?, commit_id = ? WHERE id = ?",
            &[e.weight.into(), e.confidence.into(), now.into(), commit_id.into(), (&e.id).into()],
        )
    }
}

/// Adds a derivation job. `job_key` identifies it (the same job for the
/// same commit always has the same key); a commit enqueues each event type
/// once, inside its own transaction, so no duplicate can arise here.
pub fn enqueue(
    db: &dyn Sql,
    key: &str,
    commit_id: &str,
    event_type: &str,
    payload: &Value,
    now: &str,
) -> Result<(), ApiError> {
    let payload_sha = sha256_canonical(payload);
    let job_key = sha256_canonical(
        &json!({"v": 1, "scope": key, "commit_id": commit_id, "event_type": event_type, "payloadSha": payload_sha}),
    );
    db.exec(
        "INSERT INTO memory_outbox (scope, commit_id, event_type, payload, payload_sha256, job_key, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            key.into(),
            commit_id.into(),
            event_type.into(),
            cairn_core::canonical_json::to_string(payload).into(),
            payload_sha.into(),
            job_key.into(),
            now.into(),
        ],
    )
}

/// `{tenant_id, scope, commit_id, commit_hash, nodes, edges}` from a diff.
fn response_head(spec: &WriteSpec, commit_id: &str, commit_hash: &str, diff: &Value) -> Value {
    let nodes: Vec<Value> = diff["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    let mut m = Map::new();
                    m.insert("id".into(), n["id"].clone());
                    if let Some(c) = n.get("client_id") {
                        m.insert("client_id".into(), c.clone());
                    }
                    m.insert("type".into(), n["type"].clone());
                    Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    let edges: Vec<Value> = diff["edges"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| json!({"id": e["id"], "type": e["type"], "src_id": e["src_id"], "dst_id": e["dst_id"]}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "tenant_id": spec.ts.tenant_id,
        "scope": spec.ts.scope,
        "commit_id": commit_id,
        "commit_hash": commit_hash,
        "nodes": nodes,
        "edges": edges,
    })
}

/// What the scope already holds for this request.
enum Prior {
    /// An identical earlier request's response (idempotent retry).
    Replay(Value),
    /// No such request: the chain's head to append after.
    Head(Option<commit_chain::Head>),
}

/// Looks up an identical earlier request and the scope's head in one
/// statement (the write path's hottest read).
fn earlier_commit_or_head(db: &dyn Sql, spec: &WriteSpec, request_sha: &str) -> Result<Prior, ApiError> {
    let rows = db.query(
        "SELECT 0, id, commit_hash, seq, diff_json, result_json FROM memory_commits WHERE scope = ?1 AND request_sha256 = ?2 \
         UNION ALL \
         SELECT * FROM (SELECT 1, id, commit_hash, seq, NULL, NULL FROM memory_commits WHERE scope = ?1 ORDER BY seq DESC LIMIT 1) AS head",
        &[(&spec.ts.scope_key).into(), request_sha.into()],
    )?;
    if let Some(row) = rows.iter().find(|r| r.int(0) == 0) {
        let diff: Value = serde_json::from_str(row.text(4).unwrap_or("{}")).unwrap_or(Value::Null);
        let mut resp = response_head(spec, &row.string(1), &row.string(2), &diff);
        if let Some(Value::Object(extra)) = row.text(5).and_then(|t| serde_json::from_str(t).ok()) {
            resp.as_object_mut().expect("object").extend(extra);
        }
        return Ok(Prior::Replay(resp));
    }
    Ok(Prior::Head(rows.first().map(|r| commit_chain::Head {
        id: r.string(1),
        commit_hash: r.string(2),
        seq: r.int(3),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_of_scope_keys() {
        assert_eq!(tenant_of_key("default", "default"), "default");
        assert_eq!(tenant_of_key("tenant:acme::scope:x", "default"), "acme");
    }
}
