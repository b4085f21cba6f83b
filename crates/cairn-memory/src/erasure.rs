//! Erasing a scope's memory content while keeping its chain verifiable
//! (tenant teardown): one `erase` commit on the scope's chain records who
//! erased how much and why; every node and edge becomes a tombstone (its
//! id, the erasure's time, actor, reason and commit) and its row goes, with
//! everything derived from it (vectors, index, topics, rule definitions,
//! decisions, jobs). Commits stay: `commits/verify` accepts a listed row
//! that is gone when a tombstone names it, and reports the erasure.

use crate::commit_chain::{self, NewCommit};
use cairn_core::ApiError;
use cairn_core::digest::sha256_hex;
use cairn_spin::sql::{Sql, SqlValue};
use serde_json::{Value, json};

pub const KIND_ERASE: &str = "erase";

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Erased {
    pub nodes: i64,
    pub edges: i64,
    pub commit_id: Option<String>,
}

fn count(db: &dyn Sql, table: &str, scope_key: &str) -> Result<i64, ApiError> {
    Ok(db
        .query_one(&format!("SELECT count(*) FROM {table} WHERE scope = ?"), &[scope_key.into()])?
        .map(|r| r.int(0))
        .unwrap_or(0))
}

/// Appends the `erase` commit of an erasure to the scope's chain.
fn append_erase(
    db: &dyn Sql,
    scope_key: &str,
    actor: &str,
    reason: &str,
    diff: &Value,
    now: &str,
) -> Result<commit_chain::Appended, ApiError> {
    let head = commit_chain::head(db, scope_key)?;
    let parent = head.as_ref().map(|h| h.commit_hash.as_str()).unwrap_or("");
    commit_chain::append(
        db,
        head.as_ref(),
        &NewCommit {
            scope_key,
            kind: KIND_ERASE,
            actor,
            input_sha256: &sha256_hex(format!("erase:{reason}")),
            model_version: None,
            prompt_version: None,
            diff,
            request_sha256: &sha256_hex(format!("erase:{parent}")),
            result_json: None,
            created_at: now,
        },
    )
}

/// Erases one scope (call inside a write transaction). A scope with nothing
/// left to erase is untouched (no commit), so repeating is a no-op.
pub fn erase_scope(db: &dyn Sql, scope_key: &str, actor: &str, reason: &str, now: &str) -> Result<Erased, ApiError> {
    let (nodes, edges) = (count(db, "memory_nodes", scope_key)?, count(db, "memory_edges", scope_key)?);
    if nodes == 0 && edges == 0 {
        return Ok(Erased { nodes, edges, commit_id: None });
    }
    let diff = json!({"created_at": now, "erase": {"reason": reason, "by": actor, "nodes": nodes, "edges": edges}});
    let appended = append_erase(db, scope_key, actor, reason, &diff, now)?;
    let stamp: [SqlValue; 5] = [now.into(), actor.into(), reason.into(), appended.id.clone().into(), scope_key.into()];
    for (kind, table) in [("edge", "memory_edges"), ("node", "memory_nodes")] {
        db.exec(
            &format!(
                "INSERT INTO memory_tombstones (row_id, scope, row_kind, erased_at, erased_by, reason, commit_id) \
                 SELECT id, scope, '{kind}', ?, ?, ?, ? FROM {table} WHERE scope = ? {TOMBSTONE_UPSERT}"
            ),
            &stamp,
        )?;
    }
    // Derived and dependent rows first, then edges, then nodes.
    for sql in [
        "DELETE FROM memory_derived_vectors WHERE scope = ?",
        "DELETE FROM memory_topic_centroids WHERE scope = ?",
        "DELETE FROM memory_vector_members WHERE scope = ?",
        "DELETE FROM memory_vector_lists WHERE scope = ?",
        "DELETE FROM memory_vector_list_changes WHERE scope = ?",
        "DELETE FROM memory_vector_index WHERE scope = ?",
        "DELETE FROM memory_rule_feedback WHERE scope = ?",
        "DELETE FROM memory_rule_defs WHERE scope = ?",
        "DELETE FROM memory_execution_decisions WHERE scope = ?",
        "DELETE FROM memory_outbox WHERE scope = ? AND published_at IS NULL",
        "DELETE FROM memory_edges WHERE scope = ?",
        "DELETE FROM memory_nodes WHERE scope = ?",
    ] {
        db.exec(sql, &[scope_key.into()])?;
    }
    crate::usage::reset(db, scope_key)?;
    Ok(Erased { nodes, edges, commit_id: Some(appended.id) })
}

/// Bytes [`crate::usage`] counted for the nodes `cond` selects (alias `n`).
/// A row erased again (its id reused after an earlier erasure) gets the
/// latest erasure's stamp: `INSERT OR REPLACE` as both backends spell it
/// (the SELECTs it follows all have a WHERE, which SQLite's parser needs).
const TOMBSTONE_UPSERT: &str = "ON CONFLICT (row_id) DO UPDATE SET scope = excluded.scope, row_kind = excluded.row_kind, \
     erased_at = excluded.erased_at, erased_by = excluded.erased_by, reason = excluded.reason, commit_id = excluded.commit_id";

fn node_bytes_sql(cond: &str) -> String {
    format!(
        "SELECT coalesce(sum({} + length(n.slots) + coalesce(length(n.title), 0) + coalesce(length(n.text_summary), 0) \
         + coalesce(length(n.raw_ref), 0) + coalesce(length(n.evidence_ref), 0) + coalesce(length(n.embedding), 0)), 0) \
         FROM memory_nodes n WHERE {cond}",
        crate::usage::ROW_OVERHEAD
    )
}

/// Erases the nodes of a scope created before `cutoff` and the edges that
/// touch them (retention): the same tombstones and `erase` commit as a
/// whole-scope erasure, the scope's usage reduced by what went. Nothing to
/// erase, nothing written.
pub fn erase_before(
    db: &dyn Sql,
    scope_key: &str,
    cutoff: &str,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<Erased, ApiError> {
    let old = "n.scope = ?1 AND n.created_at < ?2";
    let nodes = db
        .query_one(&format!("SELECT count(*) FROM memory_nodes n WHERE {old}"), &[scope_key.into(), cutoff.into()])?
        .map(|r| r.int(0))
        .unwrap_or(0);
    if nodes == 0 {
        return Ok(Erased { nodes: 0, edges: 0, commit_id: None });
    }
    let touching = format!(
        "e.scope = ?1 AND (e.src_id IN (SELECT n.id FROM memory_nodes n WHERE {old}) \
         OR e.dst_id IN (SELECT n.id FROM memory_nodes n WHERE {old}))"
    );
    let edges = db
        .query_one(
            &format!("SELECT count(*) FROM memory_edges e WHERE {touching}"),
            &[scope_key.into(), cutoff.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0);
    let bytes = db.query_one(&node_bytes_sql(old), &[scope_key.into(), cutoff.into()])?.map(|r| r.int(0)).unwrap_or(0)
        + edges * crate::usage::ROW_OVERHEAD as i64;
    let diff = json!({"created_at": now, "erase": {"reason": reason, "by": actor, "nodes": nodes, "edges": edges,
                                                  "created_before": cutoff}});
    let appended = append_erase(db, scope_key, actor, reason, &diff, now)?;
    let p: [SqlValue; 5] = [scope_key.into(), cutoff.into(), now.into(), actor.into(), reason.into()];
    let commit: SqlValue = appended.id.clone().into();
    let mut params: Vec<SqlValue> = p.to_vec();
    params.push(commit);
    db.exec(
        &format!(
            "INSERT INTO memory_tombstones (row_id, scope, row_kind, erased_at, erased_by, reason, commit_id) \
             SELECT e.id, e.scope, 'edge', ?3, ?4, ?5, ?6 FROM memory_edges e WHERE {touching} {TOMBSTONE_UPSERT}"
        ),
        &params,
    )?;
    db.exec(
        &format!(
            "INSERT INTO memory_tombstones (row_id, scope, row_kind, erased_at, erased_by, reason, commit_id) \
             SELECT n.id, n.scope, 'node', ?3, ?4, ?5, ?6 FROM memory_nodes n WHERE {old} {TOMBSTONE_UPSERT}"
        ),
        &params,
    )?;
    let ids = format!("(SELECT n.id FROM memory_nodes n WHERE {old})");
    for sql in [
        format!("DELETE FROM memory_derived_vectors WHERE node_id IN {ids}"),
        format!("DELETE FROM memory_topic_centroids WHERE topic_id IN {ids}"),
        format!("DELETE FROM memory_vector_members WHERE node_id IN {ids}"),
        format!("DELETE FROM memory_rule_feedback WHERE rule_node_id IN {ids}"),
        format!("DELETE FROM memory_rule_defs WHERE rule_node_id IN {ids}"),
        format!("DELETE FROM memory_edges WHERE id IN (SELECT e.id FROM memory_edges e WHERE {touching})"),
        format!("DELETE FROM memory_nodes WHERE id IN {ids}"),
    ] {
        db.exec(&sql, &[scope_key.into(), cutoff.into()])?;
    }
    crate::usage::add(db, scope_key, -bytes)?;
    Ok(Erased { nodes, edges, commit_id: Some(appended.id) })
}

/// The scope keys of a tenant (`default_tenant`'s are the un-prefixed ones),
/// exactly: a tenant whose id differs only in case is another tenant.
pub fn tenant_scopes(db: &dyn Sql, tenant_id: &str, default_tenant: &str) -> Result<Vec<String>, ApiError> {
    let (cond, params) = cairn_core::tenant_scope::tenant_key_sql("scope", tenant_id, default_tenant);
    let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
    Ok(db
        .query(&format!("SELECT DISTINCT scope FROM memory_commits WHERE {cond} ORDER BY scope"), &params)?
        .iter()
        .map(|r| r.string(0))
        .collect())
}

/// The erasure summary verify reports for a scope (`None` when nothing was
/// erased): rows per kind, and the latest erasure's time, actor and reason.
pub fn summary(db: &dyn Sql, scope_key: &str) -> Result<Option<Value>, ApiError> {
    let row = db.query_one(
        "SELECT sum(CASE WHEN row_kind = 'node' THEN 1 ELSE 0 END), sum(CASE WHEN row_kind = 'edge' THEN 1 ELSE 0 END), \
         max(erased_at) FROM memory_tombstones WHERE scope = ?",
        &[scope_key.into()],
    )?;
    let Some(r) = row.filter(|r| !r.is_null(2)) else { return Ok(None) };
    let last = db.query_one(
        "SELECT erased_by, reason, commit_id FROM memory_tombstones WHERE scope = ? ORDER BY erased_at DESC LIMIT 1",
        &[scope_key.into()],
    )?;
    Ok(Some(json!({
        "nodes": r.int(0), "edges": r.int(1), "erased_at": r.string(2),
        "erased_by": last.as_ref().map(|l| l.string(0)), "reason": last.as_ref().map(|l| l.string(1)),
        "commit_id": last.as_ref().map(|l| l.string(2)),
    })))
}
