//! `compression_rollup` jobs (reference §4.2): a summary of each active
//! topic's recent events, kept as one `concept` node per topic and recorded
//! as a `compression_rollup` commit.
//!
//! For a topic with at least 4 member events in the last 30 days, the 12
//! most recent (oldest first, each `- <summary>`, at most 1800 characters in
//! all) make the summary node `stableUuid("<scope>:compression:topic:<topic>")`
//! with slots `summary_kind: "compression_rollup"`, `topic_id`,
//! `source_event_count`, `source_event_ids`, `source_event_hash`,
//! `citations` (≤10 `{node_id}`), `generated_by: "job:compression_rollup"`,
//! the topic's lane and owners, an edge `part_of` summary→topic and
//! `derived_from` summary→event per source event. Nothing is written when
//! the sources are unchanged (same `source_event_hash`). The summary's text
//! is embedded like any node's (an `embed_nodes` job). Older `derived_from`
//! edges are kept: they are history on the chain (the reference prunes them).

use crate::derived_rows;
use crate::outbox::{self, Job};
use cairn_core::ApiError;
use cairn_core::digest::{sha256_canonical, sha256_hex};
use cairn_core::stable_id::stable_uuid;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_memory::commit_chain::{self, NewCommit};
use cairn_memory::stored_rows::{NODE_COLUMNS, StoredNode};
use cairn_spin::sql::{Sql, scope_write_txn};
use serde_json::{Map, Value, json};

pub const KIND_COMPRESSION_ROLLUP: &str = "compression_rollup";
const ACTOR: &str = "derive:compression_rollup";
const MIN_EVENTS: usize = 4;
const MAX_EVENTS: i64 = 12;
const MAX_TEXT: usize = 1800;
const LOOKBACK_MS: i64 = 30 * 86_400_000;
const MAX_CITATIONS: usize = 10;

/// What one job did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RollupReport {
    pub claim_lost: bool,
    pub summaries_written: i64,
    pub unchanged: i64,
    pub commit_hash: Option<String>,
}

/// Runs one job in its own write transaction, under its scope's lock.
pub fn run_job(db: &dyn Sql, job: &Job, now_ms: i64) -> Result<RollupReport, ApiError> {
    let now = rfc3339_millis(now_ms);
    scope_write_txn(db, &job.scope, |db| {
        if !outbox::still_claimed(db, job)? {
            return Ok(RollupReport { claim_lost: true, ..Default::default() });
        }
        let topic_ids: Vec<String> = job.payload_strings("topic_ids");
        let mut rep = RollupReport::default();
        let mut nodes: Vec<(StoredNode, bool)> = Vec::new();
        let mut edges = Vec::new();
        for topic_id in &topic_ids {
            match summarize(db, &job.scope, topic_id, now_ms, &now)? {
                Some((node, is_new, new_edges)) => {
                    nodes.push((node, is_new));
                    edges.extend(new_edges);
                }
                None => rep.unchanged += 1,
            }
        }
        if !nodes.is_empty() {
            let diff = json!({
                "created_at": now,
                "nodes": nodes.iter().map(|(n, _)| derived_rows::node_entry(n)).collect::<Vec<_>>(),
                "edges": edges.iter().map(derived_rows::edge_entry).collect::<Vec<_>>(),
            });
            let head = commit_chain::head(db, &job.scope)?;
            let appended = commit_chain::append(
                db,
                head.as_ref(),
                &NewCommit {
                    scope_key: &job.scope,
                    kind: KIND_COMPRESSION_ROLLUP,
                    actor: ACTOR,
                    input_sha256: &job.payload_sha256,
                    model_version: None,
                    prompt_version: None,
                    diff: &diff,
                    request_sha256: &sha256_hex(format!("compression_rollup:{}", job.job_key)),
                    result_json: Some(&json!({"summaries": nodes.len()}).to_string()),
                    created_at: &now,
                },
            )?;
            let mut embed = Vec::new();
            for (n, is_new) in &nodes {
                if *is_new {
                    derived_rows::insert_node(db, n, "pending", &appended.id)?;
                } else {
                    db.exec(
                        "UPDATE memory_nodes SET title = ?, text_summary = ?, slots = ?, updated_at = ?, commit_id = ?, \
                         embedding_status = 'pending', embedding_last_error = NULL WHERE id = ?",
                        &[
                            n.title.clone().into(),
                            n.text_summary.clone().into(),
                            cairn_core::canonical_json::to_string(&Value::Object(n.slots.clone())).into(),
                            (&now).into(),
                            (&appended.id).into(),
                            (&n.id).into(),
                        ],
                    )?;
                }
                embed.push(json!({"id": n.id, "text": n.text_summary}));
            }
            for e in &edges {
                derived_rows::insert_edge(db, e, &appended.id, &now)?;
            }
            let payload = json!({"nodes": embed, "force_reembed": true});
            cairn_memory::write_path::enqueue(db, &job.scope, &appended.id, "embed_nodes", &payload, &now)?;
            rep.summaries_written = nodes.len() as i64;
            rep.commit_hash = Some(appended.commit_hash);
        }
        let result = json!({"compression_rollup": {"summaries_written": rep.summaries_written, "unchanged": rep.unchanged},
            "commit_hash": rep.commit_hash});
        outbox::finish(db, job, &result, &now)?;
        Ok(rep)
    })
}

/// The topic's summary node after this rollup and the edges it adds, or
/// `None` when there is nothing (new) to summarize.
fn summarize(
    db: &dyn Sql,
    scope: &str,
    topic_id: &str,
    now_ms: i64,
    now: &str,
) -> Result<Option<(StoredNode, bool, Vec<cairn_memory::stored_rows::StoredEdge>)>, ApiError> {
    let Some(topic) = db
        .query_one(
            &format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id = ? AND scope = ? AND type = 'topic'"),
            &[topic_id.into(), scope.into()],
        )?
        .map(|r| StoredNode::from_row(&r))
    else {
        return Ok(None);
    };
    let since = rfc3339_millis(now_ms - LOOKBACK_MS);
    let mut events: Vec<(String, String)> = db
        .query(
            "SELECT n.id, coalesce(n.text_summary, n.title, '') FROM memory_edges e JOIN memory_nodes n ON n.id = e.src_id \
             WHERE e.scope = ? AND e.type = 'part_of' AND e.dst_id = ? AND n.type = 'event' AND n.created_at >= ? \
             ORDER BY n.created_at DESC, n.seq DESC, n.id DESC LIMIT ?",
            &[scope.into(), topic_id.into(), since.into(), MAX_EVENTS.into()],
        )?
        .iter()
        .map(|r| (r.string(0), r.string(1)))
        .collect();
    if events.len() < MIN_EVENTS {
        return Ok(None);
    }
    events.reverse();
    let mut text = String::new();
    for (_, t) in &events {
        let line = format!("- {}\n", cairn_core::text::normalize(t));
        if text.chars().count() + line.chars().count() > MAX_TEXT {
            break;
        }
        text.push_str(&line);
    }
    let text = text.trim_end().to_string();
    let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    let source_hash = sha256_canonical(&json!({"event_ids": ids, "text": text}));
    let id = stable_uuid(&format!("{scope}:compression:topic:{topic_id}"));
    let existing = db
        .query_one(&format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id = ?"), &[(&id).into()])?
        .map(|r| StoredNode::from_row(&r));
    if let Some(e) = &existing
        && e.slots.get("source_event_hash").and_then(Value::as_str) == Some(source_hash.as_str())
    {
        return Ok(None);
    }
    let mut slots = Map::new();
    slots.insert("summary_kind".into(), json!("compression_rollup"));
    slots.insert("topic_id".into(), json!(topic_id));
    slots.insert("source_event_count".into(), json!(events.len()));
    slots.insert("source_event_ids".into(), json!(ids));
    slots.insert("source_event_hash".into(), json!(source_hash));
    slots.insert(
        "citations".into(),
        json!(ids.iter().rev().take(MAX_CITATIONS).map(|i| json!({"node_id": i})).collect::<Vec<_>>()),
    );
    slots.insert("generated_by".into(), json!("job:compression_rollup"));
    let title: String = format!("Summary: {}", topic.title.as_deref().unwrap_or(topic_id)).chars().take(200).collect();
    let is_new = existing.is_none();
    let node = match existing {
        Some(e) => StoredNode { title: Some(title), text_summary: Some(text), slots, ..e },
        None => StoredNode {
            id: id.clone(),
            scope_key: scope.to_string(),
            client_id: None,
            node_type: "concept".into(),
            tier: "hot".into(),
            title: Some(title),
            text_summary: Some(text),
            slots,
            raw_ref: None,
            evidence_ref: None,
            embedding_sha256: None,
            salience: 0.5,
            importance: 0.5,
            confidence: 0.5,
            memory_lane: topic.memory_lane.clone(),
            producer_agent_id: None,
            owner_agent_id: topic.owner_agent_id.clone(),
            owner_team_id: topic.owner_team_id.clone(),
            created_at: now.to_string(),
            commit_id: String::new(),
            embedding_status: "pending".into(),
            embedding_model: None,
            updated_at: now.to_string(),
            last_activated: None,
        },
    };
    // Edges not stored yet.
    let mut wanted = vec![("part_of", id.clone(), topic_id.to_string(), (1.0, 0.8, 0.0))];
    for ev in &ids {
        wanted.push(("derived_from", id.clone(), ev.to_string(), (1.0, 0.8, 0.0)));
    }
    let mut edges = Vec::new();
    for (kind, src, dst, wcd) in wanted {
        let eid = stable_uuid(&format!("{scope}:edge:compression:{kind}:{src}:{dst}"));
        if db.query_one("SELECT 1 FROM memory_edges WHERE id = ?", &[(&eid).into()])?.is_none() {
            edges.push(derived_rows::edge(eid, scope, kind, &src, &dst, wcd, now));
        }
    }
    Ok(Some((node, is_new, edges)))
}
