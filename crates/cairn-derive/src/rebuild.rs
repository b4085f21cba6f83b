//! `cairn job rebuild-derived`: drop a scope's derived data and recompute
//! it from the log.
//!
//! Derived vectors of the scope's nodes are deleted (client-supplied
//! vectors are content, not derived, and stay), the nodes go back to
//! `pending`, and `embed_nodes` jobs are enqueued with the texts the log
//! recorded for them (the write's embed jobs in the outbox; the node's own
//! fields otherwise), followed by one `topic_refresh` job that recomputes
//! each topic's centroid from its members once they have vectors again.
//! Topic membership itself is history — `topic_cluster` commits on the
//! chain — and is kept; the vector index (recall issue) is rebuilt from the
//! same vectors. The jobs then drain like any other (the CLI runs ticks
//! until the scope is done).

use crate::settings::DeriveSettings;
use cairn_core::ApiError;
use cairn_core::request_reader::Reader;
use cairn_core::tenant_scope;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_memory::write_path::enqueue;
use cairn_spin::sql::{Sql, write_txn};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Nodes per enqueued embed job.
const NODES_PER_JOB: usize = 32;

/// Body: `{tenant_id?, scope}`.
pub fn rebuild(db: &dyn Sql, s: &DeriveSettings, body: &Value, now_ms: i64) -> Result<Value, ApiError> {
    let mut r = Reader::new();
    let root = Reader::root(body)?;
    let tenant = r.str_opt(root, "tenant_id");
    let scope = r.str_req(root, "scope");
    r.finish()?;
    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &s.kernel.defaults)?;
    let key = ts.scope_key.as_str();
    let now = rfc3339_millis(now_ms);
    write_txn(db, |db| {
        let Some(head) = cairn_memory::commit_chain::head(db, key)? else {
            return Err(ApiError::not_found("scope_not_found", "the scope has no commits")
                .with_details(json!({"tenant_id": ts.tenant_id, "scope": ts.scope})));
        };
        // Texts the log recorded for each node (latest job wins).
        let mut texts: HashMap<String, String> = HashMap::new();
        for row in db.query(
            "SELECT payload FROM memory_outbox WHERE scope = ? AND event_type = 'embed_nodes' ORDER BY id",
            &[key.into()],
        )? {
            let p: Value = serde_json::from_str(row.text(0).unwrap_or("{}")).unwrap_or(Value::Null);
            for n in p.get("nodes").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(id), Some(t)) =
                    (n.get("id").and_then(Value::as_str), n.get("text").and_then(Value::as_str))
                {
                    texts.insert(id.to_string(), t.to_string());
                }
            }
        }
        let dropped = db
            .query_one("SELECT count(*) FROM memory_derived_vectors WHERE scope = ?", &[key.into()])?
            .map(|r| r.int(0))
            .unwrap_or(0);
        db.exec("DELETE FROM memory_derived_vectors WHERE scope = ?", &[key.into()])?;
        // The vector index is derived too: dropped, retrained once the
        // vectors are back (the tick enqueues the build).
        for table in
            ["memory_vector_index", "memory_vector_lists", "memory_vector_list_changes", "memory_vector_members"]
        {
            db.exec(&format!("DELETE FROM {table} WHERE scope = ?"), &[key.into()])?;
        }

        // Nodes without a client vector: re-embed those with a text.
        let mut work: Vec<Value> = Vec::new();
        let mut topics = 0i64;
        for row in db.query(
            "SELECT n.id, n.type, n.title, n.text_summary, c.topic_id IS NOT NULL, n.embedding_status FROM memory_nodes n \
             LEFT JOIN memory_topic_centroids c ON c.topic_id = n.id \
             WHERE n.scope = ? AND n.embedding IS NULL AND n.embedding_status IN ('ready', 'pending', 'failed') ORDER BY n.created_at, n.id",
            &[key.into()],
        )? {
            let id = row.string(0);
            if row.int(4) != 0 {
                topics += 1;
                db.exec("UPDATE memory_nodes SET embedding_status = 'pending' WHERE id = ?", &[(&id).into()])?;
                continue;
            }
            let own = match row.string(1).as_str() {
                "entity" | "topic" | "concept" => row.opt_string(2).or(row.opt_string(3)),
                _ => row.opt_string(3).or(row.opt_string(2)),
            };
            // Only nodes derivation was asked to embed (a job in the log, or
            // a derived vector): a node written with auto_embed off stays as is.
            let own = own.filter(|_| row.text(5) == Some("ready"));
            let Some(text) = texts.remove(&id).or(own).filter(|t| !t.trim().is_empty()) else { continue };
            db.exec(
                "UPDATE memory_nodes SET embedding_status = 'pending', embedding_model = NULL, embedding_attempts = 0, \
                 embedding_last_error = NULL, embedding_ready_at = NULL WHERE id = ?",
                &[(&id).into()],
            )?;
            work.push(json!({"id": id, "text": text}));
        }
        let mut jobs = 0i64;
        for chunk in work.chunks(NODES_PER_JOB) {
            let payload = json!({"nodes": chunk, "force_reembed": true, "rebuild_at": now});
            enqueue(db, key, &head.id, "embed_nodes", &payload, &now)?;
            jobs += 1;
        }
        if topics > 0 {
            db.exec("UPDATE memory_topic_centroids SET updated_at = ? WHERE scope = ?", &[(&now).into(), key.into()])?;
            enqueue(db, key, &head.id, "topic_refresh", &json!({"scope": key, "rebuild_at": now}), &now)?;
            jobs += 1;
        }
        Ok(json!({
            "ok": true,
            "tenant_id": ts.tenant_id,
            "scope": ts.scope,
            "from_commit_id": head.id,
            "vectors_dropped": dropped,
            "nodes_reset": work.len(),
            "topics_reset": topics,
            "jobs_enqueued": jobs,
        }))
    })
}

/// Jobs of a scope not yet done or dead-lettered (the CLI drains until 0).
pub fn pending_in_scope(db: &dyn Sql, s: &DeriveSettings, body: &Value) -> Result<i64, ApiError> {
    let tenant = body.get("tenant_id").and_then(Value::as_str);
    let scope = body.get("scope").and_then(Value::as_str);
    let ts = tenant_scope::resolve(tenant, scope, &s.kernel.defaults)?;
    Ok(db
        .query_one(
            "SELECT count(*) FROM memory_outbox WHERE scope = ? AND published_at IS NULL AND failed_at IS NULL",
            &[ts.scope_key.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0))
}
