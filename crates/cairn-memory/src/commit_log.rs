//! Reading and verifying a scope's commit chain.
//!
//! `list` pages the chain newest first. `verify` recomputes, from the stored
//! rows alone, every commit hash, every parent link and every content hash,
//! and names the first commit where the chain breaks:
//!
//! 1. each commit: `seq` follows its parent's, `parent_id`/`parent_hash` name
//!    the previous commit, `commit_hash` matches the recomputed hash, the id
//!    is the one derived from the hash, and `created_at` equals the diff's;
//! 2. each node/edge a commit lists: the row exists and its content hash is
//!    the one recorded — unless a later commit of the chain has since
//!    re-attested the row (an edge upsert), in which case that commit checks it;
//! 3. every node and edge of the scope is attested by the commit its
//!    `commit_id` names (no row slipped in outside a commit).

use crate::commit_chain::{CommitPreimage, commit_id};
use crate::settings::Settings;
use crate::stored_rows::{EDGE_COLUMNS, NODE_COLUMNS, StoredEdge, StoredNode};
use cairn_core::ApiError;
use cairn_core::digest::sha256_canonical;
use cairn_core::encoding::{base64url_decode, base64url_encode};
use cairn_core::request_reader::{Reader, query_bool, query_int};
use cairn_core::tenant_scope::{self, TenantScope};
use cairn_spin::sql::{Row, Sql, SqlValue, placeholders, read_txn};
use serde_json::{Value, json};
use std::collections::HashMap;

const COMMIT_COLUMNS: &str = "id, seq, parent_id, parent_hash, kind, input_sha256, diff_json, actor, model_version, \
    prompt_version, created_at, commit_hash";

struct CommitRow {
    id: String,
    seq: i64,
    parent_id: Option<String>,
    parent_hash: String,
    kind: String,
    input_sha256: String,
    diff_json: String,
    actor: String,
    model_version: Option<String>,
    prompt_version: Option<String>,
    created_at: String,
    commit_hash: String,
}

impl CommitRow {
    fn from_row(r: &Row) -> CommitRow {
        CommitRow {
            id: r.string(0),
            seq: r.int(1),
            parent_id: r.opt_string(2),
            parent_hash: r.string(3),
            kind: r.string(4),
            input_sha256: r.string(5),
            diff_json: r.string(6),
            actor: r.string(7),
            model_version: r.opt_string(8),
            prompt_version: r.opt_string(9),
            created_at: r.string(10),
            commit_hash: r.string(11),
        }
    }
}

fn cursor_for(seq: i64) -> String {
    base64url_encode(cairn_core::canonical_json::to_string(&json!({"v": 1, "kind": "commits", "seq": seq})).as_bytes())
}

fn parse_cursor(c: &str) -> Option<i64> {
    let v: Value = serde_json::from_slice(&base64url_decode(c)?).ok()?;
    (v["v"] == 1 && v["kind"] == "commits").then(|| v["seq"].as_i64()).flatten()
}

/// `GET /v1/memory/commits?tenant_id&scope&limit&cursor&include_diff`.
pub fn list(db: &dyn Sql, settings: &Settings, query: &[(String, String)]) -> Result<Value, ApiError> {
    let q = |k: &str| query.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut r = Reader::new();
    let limit = query_int(&mut r, "limit", q("limit").as_deref(), 1, 200).unwrap_or(50);
    let include_diff = query_bool(&mut r, "include_diff", q("include_diff").as_deref()).unwrap_or(false);
    let before = match q("cursor").filter(|c| !c.is_empty()) {
        Some(c) => match parse_cursor(&c) {
            Some(seq) => Some(seq),
            None => {
                r.issue("cursor", "invalid cursor");
                None
            }
        },
        None => None,
    };
    r.finish()?;
    let ts = tenant_scope::resolve(q("tenant_id").as_deref(), q("scope").as_deref(), &settings.defaults)?;
    let rows = db.query(
        &format!("SELECT {COMMIT_COLUMNS} FROM memory_commits WHERE scope = ? AND seq < ? ORDER BY seq DESC LIMIT ?"),
        &[(&ts.scope_key).into(), SqlValue::Integer(before.unwrap_or(i64::MAX)), SqlValue::Integer(limit + 1)],
    )?;
    let has_more = rows.len() as i64 > limit;
    let commits: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|row| {
            let c = CommitRow::from_row(row);
            let diff: Value = serde_json::from_str(&c.diff_json).unwrap_or(Value::Null);
            let mut v = json!({
                "commit_id": c.id, "seq": c.seq, "parent_id": c.parent_id, "parent_hash": c.parent_hash,
                "kind": c.kind, "input_sha256": c.input_sha256, "diff_sha256": sha256_canonical(&diff),
                "actor": c.actor, "model_version": c.model_version, "prompt_version": c.prompt_version,
                "created_at": c.created_at, "commit_hash": c.commit_hash,
                "counts": {
                    "nodes": diff.get("nodes").and_then(Value::as_array).map(Vec::len).unwrap_or(0),
                    "edges": diff.get("edges").and_then(Value::as_array).map(Vec::len).unwrap_or(0),
                },
            });
            if include_diff {
                v["diff"] = diff;
            }
            v
        })
        .collect();
    let next = if has_more { commits.last().and_then(|c| c["seq"].as_i64()).map(cursor_for) } else { None };
    let returned = commits.len();
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "commits": commits,
        "page": {"limit": limit, "returned": returned, "has_more": has_more, "next_cursor": next},
    }))
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    pub commit_id: String,
    pub reason: String,
}

/// The outcome of verifying one scope.
#[derive(Debug, Clone)]
pub struct ScopeReport {
    pub checked: i64,
    pub head: Option<Value>,
    pub first_broken: Option<Broken>,
    /// What erasures removed (rows, when, by whom), when any did.
    pub erased: Option<Value>,
}

const CHUNK: i64 = 500;

/// Verifies one scope (see the module docs).
pub fn verify_scope(db: &dyn Sql, key: &str) -> Result<ScopeReport, ApiError> {
    read_txn(db, |db| verify_in_snapshot(db, key))
}

/// [`verify_scope`] inside the caller's read transaction (the consistency
/// check verifies every scope in one snapshot).
pub fn verify_in_snapshot(db: &dyn Sql, key: &str) -> Result<ScopeReport, ApiError> {
    let mut checked = 0i64;
    let mut prev: Option<(String, String, i64)> = None; // id, hash, seq
    // Row id -> the commit that attests its current content.
    let mut attested_nodes: HashMap<String, String> = HashMap::new();
    let mut attested_edges: HashMap<String, String> = HashMap::new();
    let mut seq_of: HashMap<String, i64> = HashMap::new();

    // Rows erased by an `erase` commit (tenant teardown): id -> (kind, erasing commit).
    let mut tombstones: HashMap<String, (String, String)> = HashMap::new();
    for row in db.query("SELECT row_id, row_kind, commit_id FROM memory_tombstones WHERE scope = ?", &[key.into()])? {
        tombstones.insert(row.string(0), (row.string(1), row.string(2)));
    }

    // Every commit id of the scope with its seq, for "re-attested later" checks.
    for row in db.query("SELECT id, seq FROM memory_commits WHERE scope = ?", &[key.into()])? {
        seq_of.insert(row.string(0), row.int(1));
    }

    loop {
        let after = prev.as_ref().map(|p| p.2).unwrap_or(0);
        let rows = db.query(
            &format!(
                "SELECT {COMMIT_COLUMNS} FROM memory_commits WHERE scope = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
            ),
            &[key.into(), SqlValue::Integer(after), SqlValue::Integer(CHUNK)],
        )?;
        if rows.is_empty() {
            break;
        }
        let commits: Vec<CommitRow> = rows.iter().map(CommitRow::from_row).collect();

        // The rows these commits list, fetched in bulk.
        let mut node_ids = Vec::new();
        let mut edge_ids = Vec::new();
        let mut diffs = Vec::with_capacity(commits.len());
        for c in &commits {
            let diff: Value = match serde_json::from_str(&c.diff_json) {
                Ok(d) => d,
                Err(_) => return Ok(report_broken(checked, &c.id, "diff_json is not valid JSON".into())),
            };
            for n in diff.get("nodes").and_then(Value::as_array).into_iter().flatten() {
                node_ids.push(n["id"].as_str().unwrap_or_default().to_string());
            }
            for e in diff.get("edges").and_then(Value::as_array).into_iter().flatten() {
                edge_ids.push(e["id"].as_str().unwrap_or_default().to_string());
            }
            diffs.push(diff);
        }
        let nodes = load(db, &format!("SELECT {NODE_COLUMNS} FROM memory_nodes WHERE id IN "), &node_ids, |r| {
            let n = StoredNode::from_row(r);
            (n.id.clone(), (n.scope_key.clone(), n.commit_id.clone(), n.content_sha256()))
        })?;
        let edges = load(db, &format!("SELECT {EDGE_COLUMNS} FROM memory_edges WHERE id IN "), &edge_ids, |r| {
            let e = StoredEdge::from_row(r);
            (e.id.clone(), (e.scope_key.clone(), e.commit_id.clone(), e.content_sha256()))
        })?;

        for (c, diff) in commits.iter().zip(&diffs) {
            // 1. The commit itself and its link to the parent.
            let (want_parent_id, want_parent_hash, want_seq) = match &prev {
                Some((id, hash, seq)) => (Some(id.as_str()), hash.as_str(), seq + 1),
                None => (None, "", 1),
            };
            if c.seq != want_seq {
                return Ok(report_broken(checked, &c.id, format!("seq {} follows seq {}", c.seq, want_seq - 1)));
            }
            if c.parent_id.as_deref() != want_parent_id || c.parent_hash != want_parent_hash {
                return Ok(report_broken(checked, &c.id, "parent link does not name the previous commit".into()));
            }
            let diff_sha = sha256_canonical(diff);
            let hash = CommitPreimage {
                parent_hash: &c.parent_hash,
                input_sha256: &c.input_sha256,
                diff_sha256: &diff_sha,
                scope_key: key,
                actor: &c.actor,
                kind: &c.kind,
                model_version: c.model_version.as_deref(),
                prompt_version: c.prompt_version.as_deref(),
            }
            .commit_hash();
            if hash != c.commit_hash {
                return Ok(report_broken(checked, &c.id, "commit_hash does not match the recomputed hash".into()));
            }
            if commit_id(key, &c.commit_hash) != c.id {
                return Ok(report_broken(checked, &c.id, "commit id is not the one derived from its hash".into()));
            }
            if let Some(t) = diff.get("created_at").and_then(Value::as_str)
                && t != c.created_at
            {
                return Ok(report_broken(
                    checked,
                    &c.id,
                    "created_at differs from the time recorded in the diff".into(),
                ));
            }
            // 2. The rows it lists.
            for (kind, list, rows, attested) in [
                ("node", diff.get("nodes"), &nodes, &mut attested_nodes),
                ("edge", diff.get("edges"), &edges, &mut attested_edges),
            ] {
                for entry in list.and_then(Value::as_array).into_iter().flatten() {
                    let id = entry["id"].as_str().unwrap_or_default();
                    let recorded = entry["content_sha256"].as_str().unwrap_or_default();
                    let Some((scope, row_commit, actual)) = rows.get(id) else {
                        // Gone legitimately only if a later erase commit of this chain says so.
                        let erased = tombstones
                            .get(id)
                            .is_some_and(|(k, by)| k == kind && seq_of.get(by).is_some_and(|s| *s > c.seq));
                        if erased {
                            continue;
                        }
                        return Ok(report_broken(checked, &c.id, format!("{kind} {id} is missing")));
                    };
                    if scope != key {
                        return Ok(report_broken(checked, &c.id, format!("{kind} {id} is stored in another scope")));
                    }
                    if row_commit == &c.id {
                        if actual != recorded {
                            return Ok(report_broken(
                                checked,
                                &c.id,
                                format!("{kind} {id} content does not match its hash"),
                            ));
                        }
                        attested.insert(id.to_string(), c.id.clone());
                    } else if actual != recorded {
                        // Legitimate only if a later commit of this chain re-attested the row.
                        let later = seq_of.get(row_commit).is_some_and(|s| *s > c.seq);
                        if !later {
                            return Ok(report_broken(
                                checked,
                                &c.id,
                                format!("{kind} {id} content does not match its hash"),
                            ));
                        }
                    }
                }
            }
            checked += 1;
            prev = Some((c.id.clone(), c.commit_hash.clone(), c.seq));
        }
        if (commits.len() as i64) < CHUNK {
            break;
        }
    }

    // 3. No row outside the chain.
    for (kind, table, attested) in
        [("node", "memory_nodes", &attested_nodes), ("edge", "memory_edges", &attested_edges)]
    {
        let total = db
            .query_one(&format!("SELECT count(*) FROM {table} WHERE scope = ?"), &[key.into()])?
            .map(|r| r.int(0))
            .unwrap_or(0);
        if total != attested.len() as i64 {
            for row in
                db.query(&format!("SELECT id, commit_id FROM {table} WHERE scope = ? ORDER BY id"), &[key.into()])?
            {
                let (id, commit) = (row.string(0), row.string(1));
                if attested.get(&id) != Some(&commit) {
                    let reason = if seq_of.contains_key(&commit) {
                        format!("{kind} {id} is not attested by the commit it names")
                    } else {
                        format!("{kind} {id} names a commit that is not in this scope's chain")
                    };
                    return Ok(report_broken(checked, &commit, reason));
                }
            }
        }
    }
    let head = prev.map(|(id, hash, seq)| json!({"commit_id": id, "commit_hash": hash, "seq": seq}));
    Ok(ScopeReport { checked, head, first_broken: None, erased: crate::erasure::summary(db, key)? })
}

fn report_broken(checked: i64, commit: &str, reason: String) -> ScopeReport {
    ScopeReport {
        checked,
        head: None,
        first_broken: Some(Broken { commit_id: commit.to_string(), reason }),
        erased: None,
    }
}

/// Rows by id, keyed by what `f` returns: `prefix` ends in `IN `, the ids
/// are deduplicated and read in chunks of 400 placeholders.
pub(crate) fn load<T>(
    db: &dyn Sql,
    prefix: &str,
    ids: &[String],
    f: impl Fn(&Row) -> (String, T),
) -> Result<HashMap<String, T>, ApiError> {
    let mut ids: Vec<&String> = ids.iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(400) {
        let sql = format!("{prefix}({})", placeholders(chunk.len()));
        let params: Vec<SqlValue> = chunk.iter().map(|s| (*s).into()).collect();
        for row in db.query(&sql, &params)? {
            let (k, v) = f(&row);
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn scope_json(ts: &TenantScope, r: &ScopeReport) -> Value {
    let mut v = json!({"tenant_id": ts.tenant_id, "scope": ts.scope, "ok": r.first_broken.is_none(), "checked": r.checked, "head": r.head});
    if let Some(b) = &r.first_broken {
        v["first_broken"] = json!({"commit_id": b.commit_id, "reason": b.reason});
    }
    if let Some(e) = &r.erased {
        v["erased"] = e.clone();
    }
    v
}

/// `POST /v1/memory/commits/verify {tenant_id?, scope?, all_scopes?}`.
pub fn verify(db: &dyn Sql, settings: &Settings, body: &Value) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    let all_scopes = r.bool_opt(o, "all_scopes").unwrap_or(false);
    r.finish()?;
    if !all_scopes {
        let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;
        let report = verify_scope(db, &ts.scope_key)?;
        return Ok(scope_json(&ts, &report));
    }
    if scope.is_some() {
        return Err(ApiError::invalid("all_scopes", "all_scopes and scope are exclusive"));
    }
    let tenant_id = tenant_scope::check_tenant(tenant.as_deref(), &settings.defaults)?;
    let (cond, params) = tenant_scope::tenant_key_sql("scope", &tenant_id, &settings.defaults.tenant_id);
    let params: Vec<SqlValue> = params.into_iter().map(Into::into).collect();
    let keys: Vec<String> = db
        .query(&format!("SELECT DISTINCT scope FROM memory_commits WHERE {cond} ORDER BY scope"), &params)?
        .iter()
        .map(|r| r.string(0))
        .collect();
    let prefix = format!("tenant:{tenant_id}::scope:");
    let mut scopes = Vec::new();
    let (mut ok, mut checked) = (true, 0);
    let mut first_broken = Value::Null;
    for key in keys {
        let public = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
        let ts = TenantScope { tenant_id: tenant_id.clone(), scope: public, scope_key: key.clone() };
        let report = verify_scope(db, &key)?;
        checked += report.checked;
        if let Some(b) = &report.first_broken {
            if ok {
                first_broken = json!({"scope": ts.scope, "commit_id": b.commit_id, "reason": b.reason});
            }
            ok = false;
        }
        scopes.push(scope_json(&ts, &report));
    }
    let mut v = json!({"tenant_id": tenant_id, "ok": ok, "checked": checked, "head": null, "scopes": scopes});
    if !ok {
        v["first_broken"] = first_broken;
    }
    Ok(v)
}
