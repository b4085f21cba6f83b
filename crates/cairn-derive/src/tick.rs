//! One derivation tick: sweep, then claim → run → record, batch after
//! batch, until nothing is eligible or the tick's budget is spent.
//!
//! Driven by Spin's cron trigger, `POST /v1/admin/derive/tick`, the host's
//! scheduler or `cairn job derive --once` — any number at once: claims are
//! fenced, so concurrent ticks share the work and never run a job twice.

use crate::embed_job;
use crate::embedder::Embedder;
use crate::outbox::{self, ClaimFilter, Job};
use crate::settings::DeriveSettings;
use crate::topic_cluster;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, rows_write_txn, scope_write_txn};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Limits of one tick.
#[derive(Debug, Clone)]
pub struct TickOptions {
    /// Most jobs claimed in the whole tick.
    pub max_jobs: i64,
    /// Jobs claimed per batch (one provider call per batch).
    pub batch_size: i64,
    /// Stop claiming after this many milliseconds.
    pub budget_ms: i64,
    pub filter: ClaimFilter,
}

impl Default for TickOptions {
    fn default() -> Self {
        TickOptions { max_jobs: 5000, batch_size: 64, budget_ms: 5000, filter: ClaimFilter::default() }
    }
}

impl TickOptions {
    /// Reads `{max_jobs?, batch_size?, budget_ms?, tenant_id?, scope?}`:
    /// `scope` limits the tick to one scope (of `tenant_id`, else the
    /// default tenant), `tenant_id` alone to every scope of that tenant.
    pub fn parse(body: &Value, s: &DeriveSettings) -> Result<TickOptions, ApiError> {
        let mut r = Reader::new();
        let root = Reader::root(body)?;
        let d = TickOptions::default();
        let max_jobs = r.int_opt(root, "max_jobs", 1, 100_000).unwrap_or(d.max_jobs);
        let batch_size = r.int_opt(root, "batch_size", 1, 500).unwrap_or(d.batch_size);
        let budget_ms = r.int_opt(root, "budget_ms", 1, 600_000).unwrap_or(d.budget_ms);
        let tenant = r.str_opt(root, "tenant_id");
        let scope = r.str_opt(root, "scope");
        r.finish()?;
        let defaults = &s.kernel.defaults;
        let filter = match (tenant, scope) {
            (tenant, Some(sc)) => {
                let ts = cairn_core::tenant_scope::resolve(tenant.as_deref(), Some(&sc), defaults)?;
                ClaimFilter { scope: Some(ts.scope_key), ..Default::default() }
            }
            (Some(t), None) => {
                ClaimFilter::tenant(&cairn_core::tenant_scope::check_tenant(Some(&t), defaults)?, defaults)
            }
            (None, None) => ClaimFilter::default(),
        };
        Ok(TickOptions { max_jobs, batch_size, budget_ms, filter })
    }
}

/// What a tick did (also the JSON the routes and CLI print).
#[derive(Debug, Default, Clone)]
pub struct TickReport {
    pub swept: i64,
    pub claimed: i64,
    pub done: i64,
    pub retrying: i64,
    pub dead_lettered: i64,
    pub claims_lost: i64,
    pub skipped_unknown: i64,
    pub nodes_embedded: i64,
    pub provider_calls: i64,
    pub topic_cluster_runs: i64,
    pub topics_created: i64,
    pub events_clustered: i64,
    pub topic_commit_hashes: Vec<String>,
    pub summaries_written: i64,
    pub index_builds_enqueued: i64,
    pub index_builds: i64,
    pub index_build_ms: i64,
    pub scopes: BTreeSet<String>,
    pub batches: i64,
    pub elapsed_ms: i64,
    pub retention_erased_nodes: i64,
    pub retention_erased_edges: i64,
}

impl TickReport {
    /// Adds the report of a tick of another store (a deployment whose tiers
    /// place tenants in several stores ticks each in turn).
    pub fn absorb(&mut self, o: TickReport) {
        let TickReport {
            swept,
            claimed,
            done,
            retrying,
            dead_lettered,
            claims_lost,
            skipped_unknown,
            nodes_embedded,
            provider_calls,
            topic_cluster_runs,
            topics_created,
            events_clustered,
            topic_commit_hashes,
            summaries_written,
            index_builds_enqueued,
            index_builds,
            index_build_ms,
            scopes,
            batches,
            elapsed_ms,
            retention_erased_nodes,
            retention_erased_edges,
        } = o;
        for (into, n) in [
            (&mut self.swept, swept),
            (&mut self.claimed, claimed),
            (&mut self.done, done),
            (&mut self.retrying, retrying),
            (&mut self.dead_lettered, dead_lettered),
            (&mut self.claims_lost, claims_lost),
            (&mut self.skipped_unknown, skipped_unknown),
            (&mut self.nodes_embedded, nodes_embedded),
            (&mut self.provider_calls, provider_calls),
            (&mut self.topic_cluster_runs, topic_cluster_runs),
            (&mut self.topics_created, topics_created),
            (&mut self.events_clustered, events_clustered),
            (&mut self.summaries_written, summaries_written),
            (&mut self.index_builds_enqueued, index_builds_enqueued),
            (&mut self.index_builds, index_builds),
            (&mut self.index_build_ms, index_build_ms),
            (&mut self.batches, batches),
            (&mut self.elapsed_ms, elapsed_ms),
            (&mut self.retention_erased_nodes, retention_erased_nodes),
            (&mut self.retention_erased_edges, retention_erased_edges),
        ] {
            *into += n;
        }
        self.topic_commit_hashes.extend(topic_commit_hashes);
        self.scopes.extend(scopes);
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": true,
            "swept_dead_letter": self.swept,
            "claimed": self.claimed,
            "done": self.done,
            "retrying": self.retrying,
            "dead_lettered": self.dead_lettered,
            "claims_lost": self.claims_lost,
            "skipped_unknown": self.skipped_unknown,
            "embed": {"nodes_embedded": self.nodes_embedded, "provider_calls": self.provider_calls},
            "topic_cluster": {
                "runs": self.topic_cluster_runs,
                "events_clustered": self.events_clustered,
                "topics_created": self.topics_created,
                "commit_hashes": self.topic_commit_hashes,
            },
            "compression_rollup": {"summaries_written": self.summaries_written},
            "vector_index": {"builds_enqueued": self.index_builds_enqueued, "builds": self.index_builds, "build_ms": self.index_build_ms},
            "scopes_claimed": self.scopes,
            "batches": self.batches,
            "elapsed_ms": self.elapsed_ms,
            "retention": {"erased_nodes": self.retention_erased_nodes, "erased_edges": self.retention_erased_edges},
        })
    }
}

/// Runs one tick of `db`'s queue. `home` is the home store when `db` is a
/// store a tier places tenants in (retention reads their tiers there);
/// `clock` gives wall-clock ms; `token` a fresh claim token.
pub fn tick(
    db: &dyn Sql,
    home: Option<&dyn Sql>,
    s: &DeriveSettings,
    embedder: &dyn Embedder,
    opts: &TickOptions,
    clock: &dyn Fn() -> i64,
    mut token: impl FnMut() -> String,
) -> Result<TickReport, ApiError> {
    let started = clock();
    let mut rep = TickReport { swept: outbox::sweep(db, s, started)?, ..Default::default() };
    // Topic candidates of the scope clustered last, kept for the tick (a
    // concurrent tick's new topics are seen from the next tick on; sums are
    // always re-read before they change).
    let mut topics = None;
    while rep.claimed < opts.max_jobs && clock() - started < opts.budget_ms {
        let want = opts.batch_size.min(opts.max_jobs - rep.claimed);
        let tok = token();
        let jobs = rows_write_txn(db, |db| outbox::claim(db, s, &opts.filter, want, clock(), &tok))?;
        if jobs.is_empty() {
            break;
        }
        rep.batches += 1;
        rep.claimed += jobs.len() as i64;
        rep.scopes.extend(jobs.iter().map(|j| j.scope.clone()));
        run_batch(db, s, embedder, &jobs, clock, &mut rep, &mut topics)?;
    }
    // Scopes whose vector count grew past the index threshold get a build.
    for scope in rep.scopes.clone() {
        let now = rfc3339_millis(clock());
        let queued = scope_write_txn(db, &scope, |db| {
            let Some(head) = cairn_memory::commit_chain::head(db, &scope)? else { return Ok(false) };
            crate::vector_index::maybe_enqueue_build(db, s, &scope, &head.id, &now)
        })?;
        rep.index_builds_enqueued += queued as i64;
    }
    (rep.retention_erased_nodes, rep.retention_erased_edges) = crate::retention::run(db, home, s, clock())?;
    rep.elapsed_ms = clock() - started;
    Ok(rep)
}

fn run_batch(
    db: &dyn Sql,
    s: &DeriveSettings,
    embedder: &dyn Embedder,
    jobs: &[Job],
    clock: &dyn Fn() -> i64,
    rep: &mut TickReport,
    topics: &mut Option<topic_cluster::TopicCache>,
) -> Result<(), ApiError> {
    let embeds: Vec<Job> = jobs.iter().filter(|j| j.event_type == "embed_nodes").cloned().collect();
    match embed_job::run(db, s, embedder, &embeds, clock) {
        Ok(r) => {
            rep.done += r.done;
            rep.retrying += r.retrying;
            rep.dead_lettered += r.dead_lettered;
            rep.claims_lost += r.claims_lost;
            rep.nodes_embedded += r.nodes_embedded;
            rep.provider_calls += r.provider_calls;
        }
        Err(e) => {
            for j in &embeds {
                record_error(db, s, j, &e, clock(), rep)?;
            }
        }
    }
    // Grouped by scope, so the topics of a scope are read once per batch.
    let mut others: Vec<&Job> = jobs.iter().filter(|j| j.event_type != "embed_nodes").collect();
    others.sort_by(|a, b| (&a.scope, a.id).cmp(&(&b.scope, b.id)));
    for j in others {
        let outcome = match j.event_type.as_str() {
            "topic_cluster" => topic_cluster::run_job(db, s, j, clock(), topics).map(|r| {
                if r.claim_lost {
                    rep.claims_lost += 1;
                    return;
                }
                rep.done += 1;
                rep.topic_cluster_runs += 1;
                rep.events_clustered += r.processed_events;
                rep.topics_created += r.created_topics;
                rep.topic_commit_hashes.extend(r.commit_hash);
            }),
            "compression_rollup" => crate::rollup::run_job(db, j, clock()).map(|r| {
                if r.claim_lost {
                    rep.claims_lost += 1;
                    return;
                }
                rep.done += 1;
                rep.summaries_written += r.summaries_written;
            }),
            "topic_refresh" => run_topic_refresh(db, s, j, clock(), rep),
            "index_build" => run_index_build(db, s, j, clock, rep),
            "index_nodes" => run_index_nodes(db, j, clock(), rep),
            _ => {
                // Poison-pill guard: a job nobody knows is closed, not retried forever.
                let now = rfc3339_millis(clock());
                rows_write_txn(db, |db| {
                    outbox::finish(db, j, &json!({"skipped": true, "reason": "unknown_event_type"}), &now)
                })
                .map(|held| if held { rep.skipped_unknown += 1 } else { rep.claims_lost += 1 })
            }
        };
        if let Err(e) = outcome {
            record_error(db, s, j, &e, clock(), rep)?;
        }
    }
    Ok(())
}

/// A job whose processing failed inside the database (its transaction
/// rolled back): count it as a retryable failure so it backs off.
fn record_error(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    e: &ApiError,
    now_ms: i64,
    rep: &mut TickReport,
) -> Result<(), ApiError> {
    let msg = format!("{}: {}", e.code, e.message);
    // One fenced update of the job's own row.
    match rows_write_txn(db, |db| outbox::fail(db, s, job, true, &msg, now_ms))? {
        outbox::FailOutcome::Retrying => rep.retrying += 1,
        outbox::FailOutcome::DeadLettered => rep.dead_lettered += 1,
        outbox::FailOutcome::ClaimLost => rep.claims_lost += 1,
    }
    Ok(())
}

/// `index_nodes` (client vectors from the write path): add them to the
/// scope's vector index, if it has one.
fn run_index_nodes(db: &dyn Sql, job: &Job, now_ms: i64, rep: &mut TickReport) -> Result<(), ApiError> {
    let now = rfc3339_millis(now_ms);
    let ids: Vec<String> = job.payload_strings("node_ids");
    let held = scope_write_txn(db, &job.scope, |db| {
        if !outbox::still_claimed(db, job)? {
            return Ok(false);
        }
        let mut items = Vec::new();
        for chunk in ids.chunks(300) {
            let mut params: Vec<cairn_spin::sql::SqlValue> = vec![job.scope.clone().into()];
            params.extend(chunk.iter().map(|s| s.into()));
            for r in db.query(
                &format!(
                    "SELECT id, embedding FROM memory_nodes WHERE {} = ? AND embedding IS NOT NULL \
                     AND embedding_status = 'ready' AND id IN ({})",
                    db.dialect().unindexed("scope"),
                    cairn_spin::sql::placeholders(chunk.len())
                ),
                &params,
            )? {
                if let Some(u) = r.blob(1).map(crate::vectors::from_blob).and_then(|v| crate::vectors::unit(&v)) {
                    items.push((r.string(0), u));
                }
            }
        }
        let added = crate::vector_index::add(db, &job.scope, &items)?;
        outbox::finish(db, job, &json!({"index_nodes": {"added": added}}), &now)
    })?;
    if held {
        rep.done += 1;
    } else {
        rep.claims_lost += 1;
    }
    Ok(())
}

/// `index_build`: train outside any write lock, then swap the scope's index
/// in one transaction (fenced like every job).
fn run_index_build(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    clock: &dyn Fn() -> i64,
    rep: &mut TickReport,
) -> Result<(), ApiError> {
    let t0 = clock();
    let from = rfc3339_millis(t0);
    let dims = s.kernel.embedding_dims;
    let built = cairn_spin::sql::read_txn(db, |db| crate::vector_index::train(db, &job.scope, dims))?;
    let t1 = clock();
    let now = rfc3339_millis(t1);
    let held = scope_write_txn(db, &job.scope, |db| {
        if !outbox::still_claimed(db, job)? {
            return Ok(false);
        }
        crate::vector_index::write(db, &job.scope, dims, &built, &from, &now)?;
        let result = json!({"index_build": {"vectors": built.vectors, "lists": built.centroids.len(),
            "read_train_ms": t1 - t0, "write_ms": clock() - t1}});
        outbox::finish(db, job, &result, &now)
    })?;
    rep.index_build_ms += clock() - t0;
    if held {
        rep.done += 1;
        rep.index_builds += 1;
    } else {
        rep.claims_lost += 1;
    }
    Ok(())
}

/// `topic_refresh` (enqueued by a rebuild): recompute the scope's topic
/// centroids once every member has its vector again.
fn run_topic_refresh(
    db: &dyn Sql,
    s: &DeriveSettings,
    job: &Job,
    now_ms: i64,
    rep: &mut TickReport,
) -> Result<(), ApiError> {
    let now = rfc3339_millis(now_ms);
    let waiting = scope_write_txn(db, &job.scope, |db| {
        if !outbox::still_claimed(db, job)? {
            return Ok(None);
        }
        let (refreshed, waiting) = topic_cluster::refresh_centroids(db, &job.scope, &now)?;
        if waiting == 0 {
            outbox::finish(db, job, &json!({"topic_refresh": {"topics": refreshed}}), &now)?;
        }
        Ok(Some(waiting))
    })?;
    match waiting {
        None => rep.claims_lost += 1,
        Some(0) => rep.done += 1,
        Some(n) => {
            let msg = format!("waiting_for_member_vectors: {n} topic members are not embedded yet");
            match rows_write_txn(db, |db| outbox::fail(db, s, job, true, &msg, now_ms))? {
                outbox::FailOutcome::DeadLettered => rep.dead_lettered += 1,
                _ => rep.retrying += 1,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TickReport;

    #[test]
    fn the_reports_of_several_stores_add_up() {
        let mut a = TickReport { claimed: 3, done: 2, nodes_embedded: 5, elapsed_ms: 7, ..Default::default() };
        a.scopes.insert("s1".into());
        let mut b = TickReport {
            claimed: 1,
            done: 1,
            retrying: 1,
            topic_commit_hashes: vec!["h".into()],
            ..Default::default()
        };
        b.scopes.insert("tenant:acme::scope:s1".into());
        a.absorb(b);
        let j = a.to_json();
        assert_eq!((j["claimed"].as_i64(), j["done"].as_i64(), j["retrying"].as_i64()), (Some(4), Some(3), Some(1)));
        assert_eq!(j["embed"]["nodes_embedded"], 5);
        assert_eq!(j["topic_cluster"]["commit_hashes"], serde_json::json!(["h"]));
        assert_eq!(j["scopes_claimed"].as_array().unwrap().len(), 2);
    }
}
