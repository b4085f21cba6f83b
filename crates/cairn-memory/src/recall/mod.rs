//! `POST /v1/memory/recall` and `POST /v1/memory/recall_text` (reference
//! §1.2.2, §6): stage 1 seeds by vector similarity ([`seeds`], through the
//! scope's IVF index when it has one), stage 2 the seeds' neighbourhood
//! ([`graph`]), spreading activation and scoring ([`activation`]), the
//! returned subgraph ([`subgraph`]), the context text ([`context`]), then
//! the DTOs, trajectory / observability blocks and the recall audit row.
//!
//! Pure parts are unit-tested; [`recall`] is the I/O shell over
//! [`cairn_spin::sql::Sql`]. Everything is read in one read transaction, so
//! a recall sees one snapshot even while derivation writes.

pub mod activation;
pub mod context;
pub mod graph;
pub mod hybrid;
pub mod knobs;
pub mod lexical;
pub mod postings;
pub mod request;
pub mod seeds;
pub mod stage1;
pub mod subgraph;
pub mod text_query;

use crate::node_dto::add_common;
use crate::settings::{AuditSink, Settings};
use crate::stored_rows::StoredNode;
use activation::{Ranked, ScoreEdge, ScoreNode};
use cairn_core::ApiError;
use cairn_core::digest::sha256_hex;
use cairn_spin::sql::{Sql, SqlValue, read_txn};
use request::{DEBUG_EMBEDDING_NODES, DEBUG_EMBEDDING_PREVIEW, Endpoint, RecallRequest};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::Instant;

/// Largest debug-embeddings block, in bytes of JSON.
const DEBUG_EMBEDDINGS_MAX_BYTES: usize = 64 * 1024;

/// Embeds a query text (recall_text): the host's `generate-embeddings`
/// in the component, a fake in tests. Errors are already mapped
/// ([`text_query::map_failure`]).
pub type QueryEmbedder<'a> = &'a dyn Fn(&str) -> Result<Vec<f32>, ApiError>;

/// Milliseconds since `t`, to the microsecond (every stage timing).
pub(crate) fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The pgvector text form `[v1,v2,...]` of a vector (what the reference
/// hashes for `query_sha256` and debug embeddings).
pub fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// Serves a recall or recall_text request.
pub fn recall(
    db: &dyn Sql,
    settings: &Settings,
    body: &Value,
    endpoint: Endpoint,
    admin: bool,
    embed: QueryEmbedder,
    now_ms: i64,
) -> Result<RecallAnswer, ApiError> {
    let mut req = request::parse(body, settings, endpoint, admin)?;
    let mut query_block = None;
    let mut model_check: Option<text_query::ModelMismatch> = None;
    if endpoint == Endpoint::RecallText {
        let provider = settings.embedding_provider.clone().ok_or_else(|| {
            ApiError::bad_request("no_embedding_provider", "Configure EMBEDDING_PROVIDER to use recall_text.")
        })?;
        let text = req.query_text.clone().unwrap_or_default();
        let v = embed(&text)?;
        text_query::check_vector(&v, settings.embedding_dims)?;
        req.query = Some(v);
        model_check = text_query::scope_model_mismatch(db, &req.ts.scope_key, settings)?;
        if let Some(m) = &model_check {
            if req.stage1.mode == stage1::Mode::Dense {
                return Err(m.error());
            }
            // The vectors do not answer this query's model: words only.
            req.stage1.mode = stage1::Mode::Lexical;
        }
        query_block = Some(json!({"text": text, "embedding_provider": provider}));
    }
    let query = req.query.take().unwrap_or_default();
    let mut out = read_txn(db, |db| run_pipeline(db, settings, &req, &query))?;

    // Audit (best effort: a failure never fails the recall).
    let t = Instant::now();
    let row = json!({
        "scope": req.ts.scope_key, "endpoint": endpoint.name(),
        "consumer_agent_id": req.consumer_agent_id, "consumer_team_id": req.consumer_team_id,
        "query_sha256": sha256_hex(vector_literal(&query)),
        "seed_count": out.seed_count, "node_count": out.node_count, "edge_count": out.edge_count,
        "created_at": cairn_core::time_fmt::rfc3339_millis(now_ms),
    });
    let audit_row = match settings.recall_audit {
        AuditSink::Off => None,
        AuditSink::Embedding => Some(row),
        AuditSink::Inline => {
            if let Err(e) = write_audit_row(db, &row) {
                eprintln!("recall audit insert failed (recall answered anyway): {e}");
            }
            None
        }
    };
    out.timings.insert("audit_insert_ms".into(), json!(ms(t)));

    let mut body = out.body;
    if let Some(q) = query_block {
        body.insert("query".into(), q);
    }
    if let Some(obs) = body.get_mut("observability").and_then(Value::as_object_mut) {
        obs.insert("stage_timings_ms".into(), Value::Object(out.timings));
        if let Some(m) = &model_check
            && let Some(s1) = obs.get_mut("stage1").and_then(Value::as_object_mut)
        {
            s1.insert("dense_refused".into(), m.json());
        }
    }
    Ok(RecallAnswer { body: Value::Object(body), audit_row })
}

/// A recall's answer, and its audit row when the embedding persists it
/// ([`AuditSink::Embedding`]).
#[derive(Debug)]
pub struct RecallAnswer {
    pub body: Value,
    pub audit_row: Option<Value>,
}

/// Writes one audit row (the kernel's own sink; the host writes the rows
/// handed to it with the same statement), in its own small write
/// transaction so it queues behind other writers instead of spinning in
/// SQLite's busy handler.
pub fn write_audit_row(db: &dyn Sql, row: &Value) -> Result<(), ApiError> {
    use cairn_core::recall_audit::{INSERT_SQL, Param, params};
    let values: Vec<SqlValue> = params(row)
        .into_iter()
        .map(|p| match p {
            Param::Text(t) => t.into(),
            Param::Int(i) => SqlValue::Integer(i),
        })
        .collect();
    // One append: no read to guard, so no exclusive writer lock on PostgreSQL.
    cairn_spin::sql::rows_write_txn(db, |db| db.exec(INSERT_SQL, &values))
}

/// The pipeline's result before the audit row.
struct Outcome {
    body: Map<String, Value>,
    timings: Map<String, Value>,
    seed_count: usize,
    node_count: usize,
    edge_count: usize,
}

fn run_pipeline(db: &dyn Sql, settings: &Settings, req: &RecallRequest, query: &[f32]) -> Result<Outcome, ApiError> {
    let k = req.knobs.knobs;
    let agent = req.consumer_agent_id.as_deref();
    let team = req.consumer_team_id.as_deref();
    let unit = cairn_vector::unit(query).unwrap_or_default();

    // Stage 1.
    let t0 = Instant::now();
    let found = stage1::find(
        db,
        &seeds::SeedQuery {
            scope_key: &req.ts.scope_key,
            unit_query: &unit,
            limit: k.limit as usize,
            consumer_agent: agent,
            consumer_team: team,
            use_index: settings.vector_index != "flat",
        },
        req.query_text.as_deref().unwrap_or(""),
        req.stage1,
    )?;
    let stage1_ms = ms(t0);
    let mut stage1 = found.dense;
    stage1.seeds = found.seeds;
    let lexical_report = found.lexical;
    let stage1_mode = found.mode;
    let seed_ids: Vec<&str> = stage1.seeds.iter().map(|s| s.id.as_str()).collect();

    // Stage 2.
    let t = Instant::now();
    let edges =
        if seed_ids.is_empty() { Vec::new() } else { graph::fetch_edges(db, &req.ts.scope_key, &seed_ids, &k)? };
    let edges_ms = ms(t);
    let t = Instant::now();
    let node_ids = graph::select_node_ids(&seed_ids, &edges, k.max_nodes);
    let nodes = if node_ids.is_empty() {
        rustc_hash::FxHashMap::default()
    } else {
        graph::fetch_nodes(db, &req.ts.scope_key, &node_ids, agent, team)?
    };
    let edges_all: Vec<graph::NeighborEdge> =
        edges.into_iter().filter(|e| nodes.contains_key(&e.src_id) && nodes.contains_key(&e.dst_id)).collect();
    let nodes_ms = ms(t);

    // Scoring: draft topics and nodes that are not ready sit out.
    let t = Instant::now();
    // Activation starts from the stage-1 score (the similarity itself in
    // dense mode, as in the reference).
    let similarity: rustc_hash::FxHashMap<&str, f64> = stage1.seeds.iter().map(|s| (s.id.as_str(), s.score)).collect();
    // A seed found by its words scores even before its vector is derived.
    let scorable = |n: &StoredNode| {
        (n.embedding_status == "ready" || similarity.contains_key(n.id.as_str())) && !subgraph::is_draft_topic(n)
    };
    // node_ids holds each id once (seeds, then other endpoints).
    let score_nodes: Vec<ScoreNode> = node_ids
        .iter()
        .filter_map(|id| nodes.get(id))
        .filter(|n| scorable(n))
        .map(|n| ScoreNode {
            id: n.id.clone(),
            salience: n.salience,
            confidence: n.confidence,
            similarity: similarity.get(n.id.as_str()).copied(),
        })
        .collect();
    let score_edges: Vec<ScoreEdge> = edges_all
        .iter()
        .filter(|e| nodes.get(&e.src_id).is_some_and(scorable) && nodes.get(&e.dst_id).is_some_and(scorable))
        .map(|e| ScoreEdge {
            src: e.src_id.clone(),
            dst: e.dst_id.clone(),
            edge_type: e.edge_type.clone(),
            weight: e.weight,
            confidence: e.confidence,
        })
        .collect();
    let ranked_all: Vec<Ranked> = activation::rank(&score_nodes, &score_edges, k.neighborhood_hops);
    let picked =
        subgraph::select(&seed_ids, &ranked_all, &nodes, &edges_all, k.max_nodes as usize, k.max_edges as usize);
    let spread_ms = ms(t);

    // Rule definitions for the rule nodes context may show, then context over rankedAll.
    let t = Instant::now();
    let ranked_nodes: Vec<&StoredNode> = ranked_all.iter().filter_map(|r| nodes.get(&r.id)).collect();
    let rule_ids: Vec<&str> = ranked_nodes.iter().filter(|n| n.node_type == "rule").map(|n| n.id.as_str()).collect();
    let rule_defs = if rule_ids.is_empty() {
        HashMap::new()
    } else {
        crate::rule_defs::for_context(db, &req.ts.scope_key, &rule_ids)?
    };
    let rule_defs_ms = ms(t);
    let t = Instant::now();
    let uri_base = Some((req.ts.tenant_id.as_str(), req.ts.scope.as_str()));
    let built = context::build(&ranked_nodes, &rule_defs, &req.context, uri_base);
    let context_ms = ms(t);

    // DTOs.
    let seeds_json: Vec<Value> = stage1
        .seeds
        .iter()
        .filter_map(|s| {
            let n = nodes.get(&s.id)?;
            Some(json!({
                "id": n.id, "type": n.node_type, "title": n.title, "text_summary": n.text_summary,
                "tier": n.tier, "salience": n.salience, "confidence": n.confidence, "similarity": s.similarity,
                "score": s.score,
            }))
        })
        .collect();
    let ranked_json: Vec<Value> = ranked_all
        .iter()
        .take(k.ranked_limit as usize)
        .map(|r| json!({"id": r.id, "activation": r.activation, "score": r.score}))
        .collect();
    let nodes_json: Vec<Value> = picked
        .node_ids
        .iter()
        .filter_map(|id| nodes.get(id))
        .map(|n| {
            let mut m = Map::new();
            m.insert("id".into(), json!(n.id));
            m.insert("type".into(), json!(n.node_type));
            m.insert("title".into(), json!(n.title));
            m.insert("text_summary".into(), json!(n.text_summary));
            add_common(&mut m, n, &req.dto, false);
            Value::Object(m)
        })
        .collect();
    let edge_commits = if req.dto.include_meta { graph::commit_ids(db, &picked.edges)? } else { HashMap::new() };
    let edges_json: Vec<Value> = picked
        .edges
        .iter()
        .map(|e| {
            let mut m = json!({"from_id": e.src_id, "to_id": e.dst_id, "type": e.edge_type, "weight": e.weight});
            if req.dto.include_meta {
                m["commit_id"] = json!(edge_commits.get(&e.id));
            }
            m
        })
        .collect();

    // Trajectory and observability.
    let mut reasons: Vec<&str> = Vec::new();
    let mut l0_reasons = Vec::new();
    if stage1.seeds.is_empty() {
        l0_reasons.push(if stage1.exact_fallback_attempted { "exact_fallback_empty" } else { "seed_empty" });
    } else if stage1.exact_fallback_attempted {
        l0_reasons.push("ann_empty_recovered_by_exact_fallback");
    }
    if stage1.filtered > 0 && stage1.seeds.len() < k.limit as usize {
        l0_reasons.push("seed_visibility_or_state_filtered");
    }
    let mut l1_reasons = Vec::new();
    if picked.dropped_nodes > 0 {
        l1_reasons.push("max_nodes_cap");
    }
    if picked.dropped_edges > 0 {
        l1_reasons.push("max_edges_cap");
    }
    if k.min_edge_weight > 0.0 || k.min_edge_confidence > 0.0 {
        l1_reasons.push("edge_quality_thresholds_active");
    }
    let mut l2_reasons = Vec::new();
    if nodes_json.is_empty() {
        l2_reasons.push("context_empty_no_nodes");
    } else if built.text.is_empty() {
        l2_reasons.push("context_empty_after_compaction_or_missing_text");
    }
    for r in l0_reasons.iter().chain(&l1_reasons).chain(&l2_reasons) {
        if !reasons.contains(r) {
            reasons.push(r);
        }
    }
    let lexical_json = lexical_report.as_ref().map(|l| {
        json!({
            "available": l.available, "terms": l.terms, "dropped_terms": l.dropped_terms, "recent_only": l.recent_only,
            "hits": l.hits, "dense_candidates": l.dense_candidates,
            "neighbors_added": l.neighbors_added, "ms": l.ms, "fts_ms": l.fts_ms, "dense_ms": l.dense_ms,
            "fill_ms": l.fill_ms, "neighbors_ms": l.neighbors_ms,
        })
    });
    let stage1_json = json!({
        "stage1_mode": stage1_mode.name(),
        "lexical": lexical_json,
        "weights": {"lexical": req.stage1.weights.lexical, "neighbor": req.stage1.weights.neighbor},
        "mode": stage1.mode,
        "ann_seed_count": stage1.ann_seed_count,
        "final_seed_count": stage1.seeds.len(),
        "exact_fallback_enabled": true,
        "exact_fallback_attempted": stage1.exact_fallback_attempted,
        "lists_probed": stage1.lists_probed,
        "lists_total": stage1.lists_total,
        "codes_scanned": stage1.codes_scanned,
        "index_ms": stage1.index_ms,
        "probe_ms": stage1.probe_ms,
        "rerank_ms": stage1.rerank_ms,
    });
    let counts = json!({"nodes": nodes.len(), "edges": edges_all.len()});
    let trajectory = json!({
        "strategy": req.knobs.strategy.clone().unwrap_or_else(|| knobs::infer_strategy(&k).to_string()),
        "layers": [
            {"level": "L0", "name": "seed_candidates", "hits": stage1.seeds.len(),
             "ann_seed_candidates": stage1.ann_seed_count, "mode": stage1.mode,
             "exact_fallback_attempted": stage1.exact_fallback_attempted, "duration_ms": stage1_ms,
             "pruned_reasons": l0_reasons},
            {"level": "L1", "name": "graph_expansion", "hits": nodes_json.len(), "edges": edges_json.len(),
             "candidate_nodes": nodes.len(), "candidate_edges": edges_all.len(),
             "dropped_nodes": picked.dropped_nodes, "dropped_edges": picked.dropped_edges,
             "duration_ms": edges_ms + nodes_ms + spread_ms, "pruned_reasons": l1_reasons},
            {"level": "L2", "name": "context_assembly", "context_chars": context::utf16_len(&built.text),
             "duration_ms": context_ms, "pruned_reasons": l2_reasons},
        ],
        "budgets": req.knobs.budgets_json(),
        "pruned_reasons": reasons,
    });
    let adaptive_reason = if req.knobs.explicit { "explicit_knobs" } else { "wait_below_threshold" };
    let observability = json!({
        "stage_timings_ms": {},
        "inflight_wait_ms": 0,
        "adaptive": {
            "profile": {"profile": req.knobs.profile, "applied": false, "reason": adaptive_reason},
            "hard_cap": {"applied": false, "reason": adaptive_reason},
        },
        "stage1": stage1_json,
        "neighborhood_counts": counts,
    });
    let mut timings = Map::new();
    timings.insert("stage1_candidates_ann_ms".into(), json!(stage1.ann_ms));
    timings
        .insert("stage1_candidates_exact_ms".into(), json!(if stage1.mode == "exact" { stage1.exact_ms } else { 0.0 }));
    timings.insert(
        "stage1_candidates_exact_fallback_ms".into(),
        json!(if stage1.exact_fallback_attempted { stage1.exact_ms } else { 0.0 }),
    );
    timings.insert("stage1_lexical_ms".into(), json!(lexical_report.as_ref().map_or(0.0, |l| l.ms)));
    timings.insert("stage2_edges_ms".into(), json!(edges_ms));
    timings.insert("stage2_nodes_ms".into(), json!(nodes_ms));
    timings.insert("stage2_spread_ms".into(), json!(spread_ms));
    timings.insert("stage3_context_ms".into(), json!(context_ms));
    timings.insert("rule_defs_ms".into(), json!(rule_defs_ms));

    let mut body = Map::new();
    body.insert("tenant_id".into(), json!(req.ts.tenant_id));
    body.insert("scope".into(), json!(req.ts.scope));
    body.insert("seeds".into(), Value::Array(seeds_json));
    body.insert("ranked".into(), Value::Array(ranked_json));
    body.insert("subgraph".into(), json!({"nodes": nodes_json, "edges": edges_json}));
    body.insert("context".into(), json!({"text": built.text, "items": built.items, "citations": built.citations}));
    if req.return_debug {
        let mut debug = json!({
            "neighborhood_counts": counts,
            "context_compaction": built.compaction,
            "stage1": stage1_json,
        });
        if req.include_embeddings {
            let t = Instant::now();
            debug["embeddings"] = debug_embeddings(db, &seed_ids)?;
            timings.insert("debug_embeddings_ms".into(), json!(ms(t)));
        }
        body.insert("debug".into(), debug);
    }
    if !timings.contains_key("debug_embeddings_ms") {
        timings.insert("debug_embeddings_ms".into(), json!(0.0));
    }
    body.insert("trajectory".into(), trajectory);
    body.insert("observability".into(), observability);
    Ok(Outcome {
        body,
        timings,
        seed_count: stage1.seeds.len(),
        node_count: nodes_json.len(),
        edge_count: edges_json.len(),
    })
}

/// The privileged debug channel: for the first seeds, the vector's
/// dimension, the sha256 of its text form and its first dimensions.
fn debug_embeddings(db: &dyn Sql, seed_ids: &[&str]) -> Result<Value, ApiError> {
    let ids: Vec<&str> = seed_ids.iter().copied().take(DEBUG_EMBEDDING_NODES).collect();
    if ids.is_empty() {
        return Ok(json!([]));
    }
    let rows = seeds::vectors_of(db, &ids)?;
    let by_id: HashMap<String, Vec<f32>> =
        rows.iter().filter_map(|r| Some((r.string(0), seeds::f32s(r.blob(1)?)))).collect();
    let out: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let v = by_id.get(*id)?;
            Some(json!({
                "node_id": id,
                "dims": v.len(),
                "sha256": sha256_hex(vector_literal(v)),
                "preview": v.iter().take(DEBUG_EMBEDDING_PREVIEW).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let out = Value::Array(out);
    if out.to_string().len() > DEBUG_EMBEDDINGS_MAX_BYTES {
        return Err(ApiError::bad_request(
            "debug_embeddings_too_large",
            format!("debug embeddings exceed {DEBUG_EMBEDDINGS_MAX_BYTES} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_literal_is_the_pgvector_text_form() {
        assert_eq!(vector_literal(&[1.0, -0.5, 0.25]), "[1,-0.5,0.25]");
        assert_eq!(vector_literal(&[]), "[]");
    }
}
