//! `topic_cluster` jobs: online kNN clustering of events into topics
//! (reference §4.1), recorded as one `topic_cluster` commit on the scope's
//! chain.
//!
//! Each ready event not yet in a topic is compared (cosine) with the
//! centroids of the scope's topics in the same lane and ownership — private
//! memory never clusters with someone else's; the event joins the nearest
//! one (the best of the reference's top k) when similarity ≥ 0.78 (ties to
//! the smaller id), otherwise it seeds a new
//! draft topic (`stableUuid("<scope>:topic:draft:<sha256(summary)>:<event>")`),
//! promoted to `active` at 5 members. Membership is two edges with stable
//! ids: `part_of` event→topic (weight = confidence = similarity, 0.5 for a
//! new topic) and `derived_from` topic→event (1.0 / 0.8). The topic's
//! centroid is the exact fixed-point sum of its members' unit vectors
//! ([`crate::vectors::FixedSum`]); its direction is the topic's vector.
//!
//! Topic nodes and edges are memory like any other: the commit's diff holds
//! their content hashes (a topic re-attested each time its slots change),
//! so `verify` covers them. Its `request_sha256` is derived from the job
//! key, so a job can never commit twice.

use crate::derived_rows;
use crate::outbox::{self, Job};
use crate::settings::DeriveSettings;
use crate::vectors::{self, FixedSum};
use cairn_core::ApiError;
use cairn_core::digest::sha256_hex;
use cairn_core::stable_id::stable_uuid;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_memory::commit_chain::{self, NewCommit};
use cairn_memory::stored_rows::{StoredEdge, StoredNode};
use cairn_spin::sql::{Sql, SqlValue, placeholders, scope_write_txn};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// The commit kind clustering appends.
pub const KIND_TOPIC_CLUSTER: &str = "topic_cluster";
const ACTOR: &str = "derive:topic_cluster";

/// What one job did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClusterReport {
    pub claim_lost: bool,
    pub processed_events: i64,
    pub assigned: i64,
    pub created_topics: i64,
    pub promoted: i64,
    pub rollups_enqueued: i64,
    pub commit_hash: Option<String>,
}

/// Lane and ownership: a topic only gathers events with the same.
type LaneKey = (String, Option<String>, Option<String>);

struct Topic {
    node: StoredNode,
    sum: FixedSum,
    members: i64,
    direction: Vec<f32>,
    touched: bool,
    is_new: bool,
}

/// The topics of one scope as clustering last left them, kept across the
/// jobs of a tick so each job does not re-read every centroid.
pub struct TopicCache {
    scope: String,
    candidates: Vec<Candidate>,
}

/// Runs one `topic_cluster` job in its own write transaction, under its
/// scope's lock (it writes only that scope's rows and its own job's). `cache`
/// is reused when it holds the job's scope and dropped if the job fails.
pub fn run_job(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    now_ms: i64,
    cache: &mut Option<TopicCache>,
) -> Result<ClusterReport, ApiError> {
    let now = rfc3339_millis(now_ms);
    let out = scope_write_txn(db, &job.scope, |db| {
        if !outbox::still_claimed(db, job)? {
            return Ok(ClusterReport { claim_lost: true, ..Default::default() });
        }
        let event_ids: Vec<String> = job.payload_strings("event_ids");
        if event_ids.is_empty() {
            outbox::finish(db, job, &json!({"skipped": true, "reason": "no_event_ids"}), &now)?;
            return Ok(ClusterReport::default());
        }
        if cache.as_ref().is_none_or(|c| c.scope != job.scope) {
            *cache = Some(TopicCache { scope: job.scope.clone(), candidates: load_candidates(db, &job.scope)? });
        }
        let candidates = &mut cache.as_mut().expect("filled above").candidates;
        let report = cluster(db, s, job, &event_ids, &now, candidates);
        for c in candidates.iter_mut() {
            c.loaded = None;
        }
        let report = report?;
        let result = json!({
            "topic_cluster": {
                "processed_events": report.processed_events,
                "assigned": report.assigned,
                "created_topics": report.created_topics,
                "promoted": report.promoted,
                "strategy_requested": "online_knn",
                "strategy_executed": "online_knn",
            },
            "topic_commit_hash": report.commit_hash,
        });
        outbox::finish(db, job, &result, &now)?;
        Ok(report)
    });
    if out.is_err() {
        *cache = None;
    }
    out
}

/// An event to cluster.
struct Event {
    id: String,
    unit: Vec<f32>,
    lane: LaneKey,
}

fn cluster(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    event_ids: &[String],
    now: &str,
    candidates: &mut Vec<Candidate>,
) -> Result<ClusterReport, ApiError> {
    let scope = job.scope.as_str();
    let mut report = ClusterReport::default();
    let events = load_events(db, scope, event_ids)?;
    if events.is_empty() {
        return Ok(report);
    }
    // A topic's full row and centroid are read only when an event joins it.
    let mut topics: Vec<Topic> = Vec::new();
    let mut new_edges: Vec<StoredEdge> = Vec::new();
    for ev in &events {
        report.processed_events += 1;
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in candidates.iter().enumerate() {
            if c.lane != ev.lane {
                continue;
            }
            let sim = vectors::dot(&ev.unit, &c.direction);
            // Highest similarity wins; ties go to the smaller id (deterministic).
            let better = match best {
                None => true,
                Some((b, bs)) => sim > bs || (sim == bs && c.id < candidates[b].id),
            };
            if better {
                best = Some((i, sim));
            }
        }
        let best = best.filter(|(_, sim)| *sim >= s.topic_sim_threshold);
        let (ci, weight) = match best {
            Some((i, sim)) => {
                report.assigned += 1;
                (i, sim.clamp(0.0, 1.0))
            }
            None => {
                let summary = load_summary(db, &ev.id)?;
                let id = stable_uuid(&format!("{scope}:topic:draft:{}:{}", sha256_hex(&summary), ev.id));
                topics.push(new_topic(id.clone(), scope, &summary, ev, s, now));
                candidates.push(Candidate {
                    id,
                    lane: ev.lane.clone(),
                    direction: ev.unit.clone(),
                    loaded: Some(topics.len() - 1),
                });
                report.created_topics += 1;
                (candidates.len() - 1, 0.5)
            }
        };
        let ti = match candidates[ci].loaded {
            Some(t) => t,
            None => {
                let Some(t) = load_topic(db, &candidates[ci].id)? else { continue };
                topics.push(t);
                candidates[ci].loaded = Some(topics.len() - 1);
                topics.len() - 1
            }
        };
        let t = &mut topics[ti];
        t.sum.add(&ev.unit);
        t.members += 1;
        t.direction = t.sum.direction().unwrap_or_else(|| ev.unit.clone());
        candidates[ci].direction = t.direction.clone();
        t.touched = true;
        let was_draft = t.node.slots.get("topic_state").and_then(Value::as_str) == Some("draft");
        let state = if t.members >= s.topic_min_events { "active" } else { "draft" };
        if was_draft && state == "active" && !t.is_new {
            report.promoted += 1;
        }
        t.node.slots.insert("topic_state".into(), json!(state));
        t.node.slots.insert("member_count".into(), json!(t.members));
        t.node.slots.insert("last_member_added_at".into(), json!(now));
        let topic_id = t.node.id.clone();
        let edge = |kind: &str, src: &str, dst: &str, w: f64, c: f64, d: f64| {
            let id = stable_uuid(&format!("{scope}:edge:topic_cluster:{kind}:{src}:{dst}"));
            derived_rows::edge(id, scope, kind, src, dst, (w, c, d), now)
        };
        new_edges.push(edge("part_of", &ev.id, &topic_id, weight, weight, 0.01));
        new_edges.push(edge("derived_from", &topic_id, &ev.id, 1.0, 0.8, 0.0));
    }
    if report.processed_events == 0 {
        return Ok(report);
    }

    let touched: Vec<&Topic> = topics.iter().filter(|t| t.touched).collect();
    // Active topics that just got promoted or grew by `rollup_every` get a
    // (re)summary.
    let rollup: Vec<&str> = touched
        .iter()
        .filter(|t| t.node.slots.get("topic_state").and_then(Value::as_str) == Some("active"))
        .filter(|t| t.members == s.topic_min_events || (s.rollup_every > 0 && t.members % s.rollup_every == 0))
        .map(|t| t.node.id.as_str())
        .collect();
    let diff = json!({
        "created_at": now,
        "nodes": touched.iter().map(|t| derived_rows::node_entry(&t.node)).collect::<Vec<_>>(),
        "edges": new_edges.iter().map(derived_rows::edge_entry).collect::<Vec<_>>(),
    });
    let result = json!({"processed_events": report.processed_events, "assigned": report.assigned, "created_topics": report.created_topics});
    let head = commit_chain::head(db, scope)?;
    let request_sha = sha256_hex(format!("topic_cluster:{}", job.job_key));
    let appended = commit_chain::append(
        db,
        head.as_ref(),
        &NewCommit {
            scope_key: scope,
            kind: KIND_TOPIC_CLUSTER,
            actor: ACTOR,
            input_sha256: &job.payload_sha256,
            model_version: None,
            prompt_version: None,
            diff: &diff,
            request_sha256: &request_sha,
            result_json: Some(&result.to_string()),
            created_at: now,
        },
    )?;
    for t in &touched {
        save_topic(db, t, &appended.id, now)?;
    }
    let vectors: Vec<(String, Vec<f32>)> = touched.iter().map(|t| (t.node.id.clone(), t.direction.clone())).collect();
    crate::vector_index::add(db, scope, &vectors)?;
    for e in &new_edges {
        derived_rows::insert_edge(db, e, &appended.id, now)?;
    }
    if !rollup.is_empty() {
        let payload = json!({"topic_ids": rollup});
        cairn_memory::write_path::enqueue(db, scope, &appended.id, "compression_rollup", &payload, now)?;
        report.rollups_enqueued = 1;
    }
    report.commit_hash = Some(appended.commit_hash);
    Ok(report)
}

/// The events of `ids` in this scope that have a vector and no topic yet,
/// in the job's order.
fn load_events(db: &dyn Sql, scope: &str, ids: &[String]) -> Result<Vec<Event>, ApiError> {
    let mut found: HashMap<String, Event> = HashMap::new();
    for chunk in ids.chunks(300) {
        let mut params: Vec<SqlValue> = vec![scope.into()];
        params.extend(chunk.iter().map(|s| s.into()));
        let rows = db.query(
            &format!(
                "SELECT n.id, coalesce(n.embedding, v.vector), n.memory_lane, n.owner_agent_id, n.owner_team_id \
                 FROM memory_nodes n LEFT JOIN memory_derived_vectors v ON v.node_id = n.id \
                 WHERE {} = ?1 AND n.type = 'event' AND n.embedding_status = 'ready' AND n.id IN ({}) \
                 AND NOT EXISTS (SELECT 1 FROM memory_edges e JOIN memory_nodes t ON t.id = e.dst_id \
                   WHERE e.scope = ?1 AND e.type = 'part_of' AND e.src_id = n.id AND t.type = 'topic')",
                db.dialect().unindexed("n.scope"),
                placeholders(chunk.len())
            ),
            &params,
        )?;
        for r in rows {
            let Some(unit) = r.blob(1).map(vectors::from_blob).and_then(|v| vectors::unit(&v)) else { continue };
            found.insert(
                r.string(0),
                Event { id: r.string(0), unit, lane: (r.string(2), r.opt_string(3), r.opt_string(4)) },
            );
        }
    }
    let mut seen = HashSet::new();
    Ok(ids.iter().filter(|id| seen.insert(id.as_str())).filter_map(|id| found.remove(id)).collect())
}

/// A topic an event may join.
struct Candidate {
    id: String,
    lane: LaneKey,
    direction: Vec<f32>,
    /// Index into the job's loaded topics, once read.
    loaded: Option<usize>,
}

/// The scope's derived topics: id, lane and centroid direction.
fn load_candidates(db: &dyn Sql, scope: &str) -> Result<Vec<Candidate>, ApiError> {
    let rows = db.query(
        "SELECT n.id, n.memory_lane, n.owner_agent_id, n.owner_team_id, v.vector FROM memory_topic_centroids c \
         JOIN memory_nodes n ON n.id = c.topic_id JOIN memory_derived_vectors v ON v.node_id = c.topic_id \
         WHERE c.scope = ? AND n.tier = 'hot'",
        &[scope.into()],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let direction = vectors::from_blob(r.blob(4)?);
            Some(Candidate {
                id: r.string(0),
                lane: (r.string(1), r.opt_string(2), r.opt_string(3)),
                direction,
                loaded: None,
            })
        })
        .collect())
}

/// A topic's row and centroid.
fn load_topic(db: &dyn Sql, id: &str) -> Result<Option<Topic>, ApiError> {
    let cols = cairn_memory::stored_rows::NODE_COLUMNS
        .split(", ")
        .map(|c| format!("n.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let ncols = cairn_memory::stored_rows::NODE_COLUMNS.split(", ").count();
    let row = db.query_one(
        &format!(
            "SELECT {cols}, c.member_count, c.sum FROM memory_nodes n JOIN memory_topic_centroids c ON c.topic_id = n.id \
             WHERE n.id = ?"
        ),
        &[id.into()],
    )?;
    Ok(row.and_then(|r| {
        let node = StoredNode::from_row(&r);
        let sum = FixedSum::from_blob(r.blob(ncols + 1)?);
        let direction = sum.direction()?;
        Some(Topic { members: r.int(ncols), sum, direction, node, touched: false, is_new: false })
    }))
}

fn load_summary(db: &dyn Sql, event_id: &str) -> Result<String, ApiError> {
    let row =
        db.query_one("SELECT coalesce(text_summary, title, '') FROM memory_nodes WHERE id = ?", &[event_id.into()])?;
    Ok(cairn_core::text::normalize(row.as_ref().and_then(|r| r.text(0)).unwrap_or("")))
}

fn new_topic(id: String, scope: &str, summary: &str, seed: &Event, s: &DeriveSettings, now: &str) -> Topic {
    let (lane, seed_event) = (&seed.lane, seed.id.as_str());
    let title: String = summary.chars().take(120).collect();
    let mut slots = Map::new();
    slots.insert("topic_state".into(), json!(if s.topic_min_events <= 1 { "active" } else { "draft" }));
    slots.insert("member_count".into(), json!(0));
    slots.insert("seed_summary".into(), json!(summary));
    slots.insert("seed_event_id".into(), json!(seed_event));
    slots.insert("generated_by".into(), json!("topic_cluster"));
    let node = StoredNode {
        id,
        scope_key: scope.to_string(),
        client_id: None,
        node_type: "topic".into(),
        tier: "hot".into(),
        title: (!title.is_empty()).then_some(title),
        text_summary: (!summary.is_empty()).then(|| summary.to_string()),
        slots,
        raw_ref: None,
        evidence_ref: None,
        embedding_sha256: None,
        salience: 0.5,
        importance: 0.5,
        confidence: 0.5,
        memory_lane: lane.0.clone(),
        producer_agent_id: None,
        owner_agent_id: lane.1.clone(),
        owner_team_id: lane.2.clone(),
        created_at: now.to_string(),
        commit_id: String::new(),
        embedding_status: "ready".into(),
        embedding_model: Some("topic_centroid".into()),
        updated_at: now.to_string(),
        last_activated: None,
    };
    Topic {
        node,
        sum: FixedSum::zeros(seed.unit.len()),
        members: 0,
        direction: Vec::new(),
        touched: true,
        is_new: true,
    }
}

fn save_topic(db: &dyn Sql, t: &Topic, commit_id: &str, now: &str) -> Result<(), ApiError> {
    let n = &t.node;
    if t.is_new {
        derived_rows::insert_node(db, n, "ready", commit_id)?;
    } else {
        db.exec(
            "UPDATE memory_nodes SET slots = ?, updated_at = ?, commit_id = ? WHERE id = ?",
            &[
                cairn_core::canonical_json::to_string(&Value::Object(n.slots.clone())).into(),
                now.into(),
                commit_id.into(),
                (&n.id).into(),
            ],
        )?;
    }
    db.exec(
        "INSERT INTO memory_topic_centroids (topic_id, scope, member_count, sum, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (topic_id) DO UPDATE SET member_count = excluded.member_count, sum = excluded.sum, updated_at = excluded.updated_at",
        &[(&n.id).into(), (&n.scope_key).into(), t.members.into(), t.sum.to_blob().into(), now.into()],
    )?;
    db.exec(
        "INSERT INTO memory_derived_vectors (node_id, scope, model, dims, vector, updated_at) VALUES (?, ?, 'topic_centroid', ?, ?, ?) \
         ON CONFLICT (node_id) DO UPDATE SET dims = excluded.dims, vector = excluded.vector, updated_at = excluded.updated_at",
        &[(&n.id).into(), (&n.scope_key).into(), (t.direction.len() as i64).into(), vectors::to_blob(&t.direction).into(), now.into()],
    )
}

/// Recomputes every derived topic centroid of a scope from its members'
/// current vectors (after a rebuild re-embedded them). Returns how many
/// topics were refreshed; topics with a member still waiting for its vector
/// are reported in `waiting`.
pub fn refresh_centroids(db: &dyn Sql, scope: &str, now: &str) -> Result<(i64, i64), ApiError> {
    let rows = db.query(
        "SELECT c.topic_id, coalesce(n.embedding, v.vector), n.embedding_status FROM memory_topic_centroids c \
         JOIN memory_edges e ON e.scope = c.scope AND e.type = 'part_of' AND e.dst_id = c.topic_id \
         JOIN memory_nodes n ON n.id = e.src_id LEFT JOIN memory_derived_vectors v ON v.node_id = n.id \
         WHERE c.scope = ? ORDER BY c.topic_id",
        &[scope.into()],
    )?;
    let mut sums: Vec<(String, FixedSum, i64)> = Vec::new();
    let mut waiting = 0i64;
    for r in rows {
        let topic = r.string(0);
        let unit = r.blob(1).map(vectors::from_blob).and_then(|v| vectors::unit(&v));
        let Some(unit) = unit.filter(|_| r.text(2) == Some("ready")) else {
            waiting += 1;
            continue;
        };
        if sums.last().map(|s| &s.0) != Some(&topic) {
            sums.push((topic, FixedSum::zeros(unit.len()), 0));
        }
        let last = sums.last_mut().expect("pushed");
        last.1.add(&unit);
        last.2 += 1;
    }
    if waiting > 0 {
        return Ok((0, waiting));
    }
    for (topic, sum, members) in &sums {
        let Some(dir) = sum.direction() else { continue };
        db.exec(
            "UPDATE memory_topic_centroids SET sum = ?, member_count = ?, updated_at = ? WHERE topic_id = ?",
            &[sum.to_blob().into(), (*members).into(), now.into(), topic.into()],
        )?;
        db.exec(
            "UPDATE memory_nodes SET embedding_status = 'ready', embedding_ready_at = ? WHERE id = ?",
            &[now.into(), topic.into()],
        )?;
        db.exec(
            "INSERT INTO memory_derived_vectors (node_id, scope, model, dims, vector, updated_at) VALUES (?, ?, 'topic_centroid', ?, ?, ?) \
             ON CONFLICT (node_id) DO UPDATE SET dims = excluded.dims, vector = excluded.vector, updated_at = excluded.updated_at",
            &[topic.into(), scope.into(), (dir.len() as i64).into(), vectors::to_blob(&dir).into(), now.into()],
        )?;
    }
    Ok((sums.len() as i64, 0))
}
