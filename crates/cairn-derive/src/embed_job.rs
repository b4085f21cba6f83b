//! `embed_nodes` jobs: embed the nodes' texts through the provider, store
//! the vectors, move the nodes `pending → ready` (or `failed`), and enqueue
//! the topic clustering that was waiting for them.
//!
//! All texts of a batch go to the provider in one call; if that call fails,
//! each job is retried on its own so one poison job cannot hold back the
//! rest. The provider is called outside any transaction; the results are
//! applied in one write transaction, each job fenced by its claim.

use crate::embedder::{EmbedFailure, Embedder};
use crate::outbox::{self, FailOutcome, Job};
use crate::settings::DeriveSettings;
use crate::vectors;
use cairn_core::ApiError;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue, placeholders, scopes_write_txn};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What a batch of embed jobs did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EmbedReport {
    pub done: i64,
    pub retrying: i64,
    pub dead_lettered: i64,
    pub claims_lost: i64,
    pub nodes_embedded: i64,
    pub topic_jobs_enqueued: i64,
    pub provider_calls: i64,
}

/// One node of a job that needs a vector.
struct Work {
    node_id: String,
    text: String,
}

struct Plan<'a> {
    job: &'a Job,
    work: Vec<Work>,
    after_cluster: Vec<String>,
}

/// Runs `jobs` (all `embed_nodes`).
pub fn run(
    db: &dyn Sql,
    s: &DeriveSettings,
    embedder: &dyn Embedder,
    jobs: &[Job],
    now_ms: impl Fn() -> i64,
) -> Result<EmbedReport, ApiError> {
    let mut report = EmbedReport::default();
    if jobs.is_empty() {
        return Ok(report);
    }
    let plans = plan(db, jobs)?;

    // One provider call for the whole batch; per job if that fails.
    let texts: Vec<String> = plans.iter().flat_map(|p| p.work.iter().map(|w| w.text.clone())).collect();
    let mut outcomes: Vec<Result<Vec<Vec<f32>>, EmbedFailure>> = Vec::with_capacity(plans.len());
    let batch = if texts.is_empty() {
        Ok(Vec::new())
    } else {
        report.provider_calls += 1;
        embedder.embed(&texts).and_then(|v| check(v, texts.len(), s.kernel.embedding_dims))
    };
    match batch {
        Ok(mut all) => {
            for p in &plans {
                let rest = all.split_off(p.work.len());
                outcomes.push(Ok(std::mem::replace(&mut all, rest)));
            }
        }
        Err(e) if plans.len() == 1 => outcomes.push(Err(e)),
        Err(_) => {
            for p in &plans {
                let t: Vec<String> = p.work.iter().map(|w| w.text.clone()).collect();
                outcomes.push(if t.is_empty() {
                    Ok(Vec::new())
                } else {
                    report.provider_calls += 1;
                    embedder.embed(&t).and_then(|v| check(v, t.len(), s.kernel.embedding_dims))
                });
            }
        }
    }

    let model = embedder.model_name();
    let now_ms = now_ms();
    let now = rfc3339_millis(now_ms);
    // Every row written is of a job's scope (vectors, nodes' status, the
    // scope's IVF lists) or the job's own: the scopes' locks are enough.
    let mut scopes: Vec<&str> = plans.iter().map(|p| p.job.scope.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes_write_txn(db, &scopes, |db| {
        // Vectors stored by this batch, per scope, for the vector index.
        let mut indexed: HashMap<&str, Vec<(String, Vec<f32>)>> = HashMap::new();
        for (p, outcome) in plans.iter().zip(outcomes) {
            match outcome {
                Ok(vecs) => {
                    let mut enqueued = false;
                    let result = json!({
                        "embed_backfill": {"ok": true, "embedded": vecs.len(), "model": model},
                        "enqueued_topic_cluster": !p.after_cluster.is_empty(),
                    });
                    if !outbox::finish(db, p.job, &result, &now)? {
                        report.claims_lost += 1;
                        continue;
                    }
                    for (w, v) in p.work.iter().zip(&vecs) {
                        store_vector(db, &p.job.scope, &w.node_id, v, &model, &now)?;
                        indexed.entry(p.job.scope.as_str()).or_default().push((w.node_id.clone(), v.clone()));
                    }
                    report.nodes_embedded += vecs.len() as i64;
                    if !p.after_cluster.is_empty() {
                        let payload = json!({"event_ids": p.after_cluster});
                        cairn_memory::write_path::enqueue(
                            db,
                            &p.job.scope,
                            &p.job.commit_id,
                            "topic_cluster",
                            &payload,
                            &now,
                        )?;
                        enqueued = true;
                    }
                    report.topic_jobs_enqueued += enqueued as i64;
                    report.done += 1;
                }
                Err(e) => match outbox::fail(db, s, p.job, e.retryable, &e.message, now_ms)? {
                    FailOutcome::ClaimLost => report.claims_lost += 1,
                    outcome => {
                        let dead = outcome == FailOutcome::DeadLettered;
                        mark_failed_attempt(db, &p.work, &e.message, dead)?;
                        if dead {
                            report.dead_lettered += 1;
                        } else {
                            report.retrying += 1;
                        }
                    }
                },
            }
        }
        for (scope, items) in &indexed {
            crate::vector_index::add(db, scope, items)?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// Which nodes of each job still need a vector (stored, in the job's scope,
/// not already ready unless forced, without a client vector).
fn plan<'a>(db: &dyn Sql, jobs: &'a [Job]) -> Result<Vec<Plan<'a>>, ApiError> {
    let mut ids: Vec<&str> = Vec::new();
    for j in jobs {
        for n in j.payload.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = n.get("id").and_then(Value::as_str) {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    // id -> (scope, status, has client vector)
    let mut nodes: HashMap<String, (String, String, bool)> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        let params: Vec<SqlValue> = chunk.iter().map(|s| (*s).into()).collect();
        for r in db.query(
            &format!(
                "SELECT id, scope, embedding_status, embedding IS NOT NULL FROM memory_nodes WHERE id IN ({})",
                placeholders(chunk.len())
            ),
            &params,
        )? {
            nodes.insert(r.string(0), (r.string(1), r.string(2), r.int(3) != 0));
        }
    }
    Ok(jobs
        .iter()
        .map(|j| {
            let force = j.payload.get("force_reembed").and_then(Value::as_bool).unwrap_or(false);
            let work = j
                .payload
                .get("nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| {
                    let id = n.get("id")?.as_str()?;
                    let text = n.get("text")?.as_str()?.trim();
                    let (scope, status, client) = nodes.get(id)?;
                    let wanted = scope == &j.scope && !client && (force || status != "ready") && !text.is_empty();
                    wanted.then(|| Work { node_id: id.to_string(), text: text.to_string() })
                })
                .collect();
            let after_cluster = j.payload_strings("after_topic_cluster_event_ids");
            Plan { job: j, work, after_cluster }
        })
        .collect())
}

/// The provider's answer, checked: one finite vector per text, of the
/// configured dimension (a mismatch is a configuration error, not retryable).
fn check(vecs: Vec<Vec<f32>>, want: usize, dims: usize) -> Result<Vec<Vec<f32>>, EmbedFailure> {
    if vecs.len() != want {
        return Err(EmbedFailure::retryable(format!("provider returned {} vectors for {want} texts", vecs.len())));
    }
    let mut out = Vec::with_capacity(vecs.len());
    for v in vecs {
        if v.len() != dims {
            return Err(EmbedFailure::fatal(format!(
                "embedding_dims_mismatch: provider returned {} dimensions, the tier profile expects {dims}",
                v.len()
            )));
        }
        // A zero vector (a text with no features) is stored as is.
        out.push(vectors::unit(&v).unwrap_or(v));
    }
    if out.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
        return Err(EmbedFailure::fatal("provider returned a non-finite vector"));
    }
    Ok(out)
}

/// Stores a node's derived vector and marks it ready.
pub fn store_vector(
    db: &dyn Sql,
    scope: &str,
    node_id: &str,
    v: &[f32],
    model: &str,
    now: &str,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_derived_vectors (node_id, scope, model, dims, vector, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (node_id) DO UPDATE SET model = excluded.model, dims = excluded.dims, vector = excluded.vector, \
         updated_at = excluded.updated_at",
        &[node_id.into(), scope.into(), model.into(), (v.len() as i64).into(), vectors::to_blob(v).into(), now.into()],
    )?;
    db.exec(
        "UPDATE memory_nodes SET embedding_status = 'ready', embedding_model = ?, embedding_dims = ?, \
         embedding_attempts = embedding_attempts + 1, embedding_last_error = NULL, embedding_ready_at = ? WHERE id = ?",
        &[model.into(), (v.len() as i64).into(), now.into(), node_id.into()],
    )
}

/// Counts a failed attempt on the nodes; when the job is dead-lettered the
/// nodes that are not ready become `failed`.
fn mark_failed_attempt(db: &dyn Sql, work: &[Work], message: &str, dead: bool) -> Result<(), ApiError> {
    let message: String = message.chars().take(300).collect();
    for w in work {
        db.exec(
            "UPDATE memory_nodes SET embedding_attempts = embedding_attempts + 1, embedding_last_error = ?, \
             embedding_status = CASE WHEN ? = 1 AND embedding_status <> 'ready' THEN 'failed' ELSE embedding_status END \
             WHERE id = ?",
            &[message.clone().into(), dead.into(), (&w.node_id).into()],
        )?;
    }
    Ok(())
}
