//! Packs: a scope's nodes, edges and commits as one JSON document with a
//! manifest hash (`sha256(canonical(pack))`), and import of such a document
//! as one ordinary write. With `include_meta` a pack carries every field the
//! content hashes cover, and its commits carry parent hashes and diffs, so
//! the chain can be re-verified offline (see docs/commit-chain.md).

use crate::settings::Settings;
use crate::stored_rows::{NODE_COLUMNS, StoredNode};
use crate::write_path;
use crate::write_request;
use cairn_core::ApiError;
use cairn_core::digest::sha256_canonical;
use cairn_core::request_reader::{Obj, Reader, type_name};
use cairn_core::tenant_scope;
use cairn_core::time_fmt::rfc3339_millis;
use cairn_spin::sql::{Sql, SqlValue, read_txn};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const PACK_VERSION: &str = "aionis_pack_v1";
pub const MANIFEST_VERSION: &str = "aionis_pack_manifest_v1";

fn node_json(n: &StoredNode, meta: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(n.id));
    m.insert("client_id".into(), json!(n.client_id));
    m.insert("type".into(), json!(n.node_type));
    m.insert("title".into(), json!(n.title));
    m.insert("text_summary".into(), json!(n.text_summary));
    m.insert("slots".into(), Value::Object(n.slots.clone()));
    if meta {
        for (k, v) in [
            ("tier", json!(n.tier)),
            ("raw_ref", json!(n.raw_ref)),
            ("evidence_ref", json!(n.evidence_ref)),
            ("embedding_sha256", json!(n.embedding_sha256)),
            ("embedding_status", json!(n.embedding_status)),
            ("embedding_model", json!(n.embedding_model)),
            ("salience", json!(n.salience)),
            ("importance", json!(n.importance)),
            ("confidence", json!(n.confidence)),
            ("memory_lane", json!(n.memory_lane)),
            ("producer_agent_id", json!(n.producer_agent_id)),
            ("owner_agent_id", json!(n.owner_agent_id)),
            ("owner_team_id", json!(n.owner_team_id)),
            ("created_at", json!(n.created_at)),
            ("updated_at", json!(n.updated_at)),
            ("commit_id", json!(n.commit_id)),
        ] {
            m.insert(k.into(), v);
        }
    }
    Value::Object(m)
}

/// `POST /v1/memory/packs/export` (admin).
pub fn export(db: &dyn Sql, settings: &Settings, body: &Value, now_ms: i64) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    let include_nodes = r.bool_opt(o, "include_nodes").unwrap_or(true);
    let include_edges = r.bool_opt(o, "include_edges").unwrap_or(true);
    let include_commits = r.bool_opt(o, "include_commits").unwrap_or(true);
    let include_meta = r.bool_opt(o, "include_meta").unwrap_or(true);
    let max_rows = r.int_opt(o, "max_rows", 1, 50_000).unwrap_or(5000);
    r.finish()?;
    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;
    let key = ts.scope_key.clone();
    let lim = SqlValue::Integer(max_rows + 1);

    // One snapshot for all three sections.
    let (nodes, edges, commits) = read_txn(db, |db| {
        let nodes = if include_nodes {
            db.query(
                &format!(
                    "SELECT {NODE_COLUMNS} FROM memory_nodes WHERE scope = ? ORDER BY created_at ASC, seq {}, id ASC LIMIT ?",
                    db.dialect().asc_nulls_first()
                ),
                &[(&key).into(), lim.clone()],
            )?
            .iter()
            .map(StoredNode::from_row)
            .collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        let edges = if include_edges {
            db.query(
                "SELECT e.id, e.type, e.src_id, e.dst_id, s.client_id, d.client_id, e.weight, e.confidence, e.decay_rate, \
                 e.created_at, e.commit_id FROM memory_edges e \
                 LEFT JOIN memory_nodes s ON s.id = e.src_id LEFT JOIN memory_nodes d ON d.id = e.dst_id \
                 WHERE e.scope = ? ORDER BY e.created_at ASC, e.id ASC LIMIT ?",
                &[(&key).into(), lim.clone()],
            )?
        } else {
            Vec::new()
        };
        let commits = if include_commits {
            db.query(
                "SELECT id, seq, parent_id, parent_hash, kind, input_sha256, diff_json, actor, model_version, prompt_version, \
                 created_at, commit_hash FROM memory_commits WHERE scope = ? ORDER BY seq ASC LIMIT ?",
                &[(&key).into(), lim.clone()],
            )?
        } else {
            Vec::new()
        };
        Ok((nodes, edges, commits))
    })?;
    let cap = max_rows as usize;
    let truncated = json!({"nodes": nodes.len() > cap, "edges": edges.len() > cap, "commits": commits.len() > cap});
    let nodes: Vec<Value> = nodes.iter().take(cap).map(|n| node_json(n, include_meta)).collect();
    let edges: Vec<Value> = edges
        .iter()
        .take(cap)
        .map(|e| {
            let mut v = json!({
                "id": e.string(0), "type": e.string(1), "src_id": e.string(2), "dst_id": e.string(3),
                "src_client_id": e.opt_string(4), "dst_client_id": e.opt_string(5),
                "weight": e.real(6), "confidence": e.real(7),
            });
            if include_meta {
                v["decay_rate"] = json!(e.real(8));
                v["created_at"] = json!(e.string(9));
                v["commit_id"] = json!(e.string(10));
            }
            v
        })
        .collect();
    let commits: Vec<Value> = commits
        .iter()
        .take(cap)
        .map(|c| {
            json!({
                "id": c.string(0), "seq": c.int(1), "parent_id": c.opt_string(2), "parent_hash": c.string(3),
                "kind": c.string(4), "input_sha256": c.string(5),
                "diff": serde_json::from_str::<Value>(c.text(6).unwrap_or("{}")).unwrap_or(Value::Null),
                "actor": c.string(7), "model_version": c.opt_string(8), "prompt_version": c.opt_string(9),
                "created_at": c.string(10), "commit_hash": c.string(11),
            })
        })
        .collect();
    let counts = json!({"nodes": nodes.len(), "edges": edges.len(), "commits": commits.len()});
    let pack = json!({
        "version": PACK_VERSION,
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "nodes": nodes,
        "edges": edges,
        "commits": commits,
    });
    Ok(json!({
        "tenant_id": ts.tenant_id,
        "scope": ts.scope,
        "manifest": {
            "version": MANIFEST_VERSION,
            "pack_version": PACK_VERSION,
            "sha256": sha256_canonical(&pack),
            "generated_at": rfc3339_millis(now_ms),
            "counts": counts,
            "truncated": truncated,
            "max_rows": max_rows,
        },
        "pack": pack,
    }))
}

fn pack_array<'a>(r: &mut Reader, o: Obj<'a>, key: &str) -> Vec<&'a Map<String, Value>> {
    let mut out = Vec::new();
    if let Some(items) = r.arr_opt(o, key) {
        for (i, v) in items.iter().enumerate() {
            match v {
                Value::Object(m) => out.push(m),
                other => {
                    r.issue(Reader::elem_path(o, key, i), format!("Expected object, received {}", type_name(other)))
                }
            }
        }
    }
    out
}

/// `POST /v1/memory/packs/import` (admin).
pub fn import(db: &dyn Sql, settings: &Settings, body: &Value, now_ms: i64) -> Result<Value, ApiError> {
    let o = Reader::root(body)?;
    let mut r = Reader::new();
    let tenant = r.str_any(o, "tenant_id");
    let scope = r.str_any(o, "scope");
    let actor = r.str_opt_len(o, "actor", 1, 256).unwrap_or_else(|| "pack_import".into());
    let verify_only = r.bool_opt(o, "verify_only").unwrap_or(false);
    let auto_embed = r.bool_opt(o, "auto_embed").unwrap_or(false);
    let manifest_sha = r.str_opt(o, "manifest_sha256");
    let pack = r.obj_opt(o, "pack");
    if pack.is_none() && o.map.get("pack").is_none_or(Value::is_null) {
        r.issue("pack", "Required");
    }
    r.finish()?;
    let pack = pack.expect("checked");
    let pack_value = Value::Object(pack.clone());
    let po = Obj { map: pack, path: "pack" };
    let mut r = Reader::new();
    let version = r.str_req(po, "version");
    if version.as_deref().is_some_and(|v| v != PACK_VERSION) {
        r.issue("pack.version", format!("must be '{PACK_VERSION}'"));
    }
    let pack_scope = r.str_req(po, "scope");
    let _pack_tenant = r.str_any(po, "tenant_id");
    let nodes = pack_array(&mut r, po, "nodes");
    let edges = pack_array(&mut r, po, "edges");
    let commits_in_pack = pack.get("commits").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
    r.finish()?;

    let ts = tenant_scope::resolve(tenant.as_deref(), scope.as_deref(), &settings.defaults)?;
    let pack_scope = pack_scope.expect("checked");
    if pack_scope != ts.scope {
        return Err(ApiError::bad_request("pack_scope_mismatch", "pack scope does not match the request scope")
            .with_details(json!({"pack_scope": pack_scope, "scope": ts.scope})));
    }
    let sha = sha256_canonical(&pack_value);
    if let Some(expected) = &manifest_sha
        && *expected != sha
    {
        return Err(ApiError::bad_request("pack_hash_mismatch", "manifest_sha256 does not match the pack")
            .with_details(json!({"expected": expected, "actual": sha})));
    }

    // Re-key: nodes by client_id (or a pack-derived one), edges by the
    // client ids of their endpoints.
    let mut cid_of: HashMap<String, String> = HashMap::new();
    let mut wnodes = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let old_id = n.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let cid = match n.get("client_id").and_then(Value::as_str).filter(|c| !c.trim().is_empty()) {
            Some(c) => c.to_string(),
            None if !old_id.is_empty() => format!("pack:{}:node:{old_id}", &sha[..16]),
            None => {
                return Err(ApiError::invalid(&format!("pack.nodes.{i}"), "node needs an id or a client_id"));
            }
        };
        if !old_id.is_empty() {
            cid_of.insert(old_id, cid.clone());
        }
        let mut w = Map::new();
        w.insert("client_id".into(), json!(cid));
        for k in [
            "type",
            "tier",
            "title",
            "text_summary",
            "slots",
            "raw_ref",
            "evidence_ref",
            "salience",
            "importance",
            "confidence",
            "memory_lane",
            "producer_agent_id",
            "owner_agent_id",
            "owner_team_id",
        ] {
            if let Some(v) = n.get(k).filter(|v| !v.is_null()) {
                w.insert(k.into(), v.clone());
            }
        }
        wnodes.push(Value::Object(w));
    }
    let mut wedges = Vec::with_capacity(edges.len());
    for (i, e) in edges.iter().enumerate() {
        let end = |side: &str| -> Option<String> {
            e.get(&format!("{side}_client_id"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| e.get(&format!("{side}_id")).and_then(Value::as_str).and_then(|id| cid_of.get(id).cloned()))
                .filter(|c| cid_of.values().any(|v| v == c))
        };
        let (Some(src), Some(dst)) = (end("src"), end("dst")) else {
            return Err(ApiError::bad_request(
                "pack_edge_reference_missing",
                "edge endpoint is not a node of the pack",
            )
            .with_details(json!({"edge_index": i, "edge_id": e.get("id")})));
        };
        let mut w = json!({"type": e.get("type"), "src": {"client_id": src}, "dst": {"client_id": dst}});
        for k in ["weight", "confidence", "decay_rate"] {
            if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
                w[k] = v.clone();
            }
        }
        wedges.push(w);
    }
    let planned = json!({"nodes": wnodes.len(), "edges": wedges.len(), "commits_in_pack": commits_in_pack});
    let wbody = json!({
        "actor": actor,
        "input_text": format!("pack import {sha}"),
        "auto_embed": auto_embed,
        "trigger_topic_cluster": false,
        "nodes": wnodes,
        "edges": wedges,
    });
    // Validate as a write even when only verifying, so verify_only catches
    // everything an import would refuse.
    let spec = write_request::parse_in_scope(Reader::root(&wbody)?, ts.clone(), settings).map_err(prefix_pack_paths)?;
    if verify_only {
        return Ok(json!({
            "ok": true, "verified": true, "imported": false, "tenant_id": ts.tenant_id, "scope": ts.scope,
            "pack_sha256": sha, "planned": planned,
        }));
    }
    let resp = write_path::write(db, settings, &spec, now_ms)?;
    Ok(json!({
        "ok": true, "verified": true, "imported": true, "tenant_id": ts.tenant_id, "scope": ts.scope,
        "pack_sha256": sha, "commit_id": resp["commit_id"], "commit_hash": resp["commit_hash"],
        "nodes": spec.nodes.len(), "edges": resp["edges"].as_array().map(Vec::len).unwrap_or(0),
        "embedding_backfill": resp.get("embedding_backfill").cloned().unwrap_or(Value::Null),
    }))
}

/// Write-validation issues name `nodes.3.type`; in a pack that is `pack.nodes.3.type`.
fn prefix_pack_paths(mut e: ApiError) -> ApiError {
    if let Some(issues) = e.details.as_mut().and_then(|d| d.get_mut("issues")).and_then(Value::as_array_mut) {
        for i in issues.iter_mut() {
            if let Some(p) = i.get("path").and_then(Value::as_str) {
                let p = if p.is_empty() { "pack".to_string() } else { format!("pack.{p}") };
                i["path"] = json!(p);
            }
        }
        let issues = e.details.as_ref().and_then(|d| d.get("issues")).cloned().unwrap_or(Value::Null);
        let list: Vec<cairn_core::api_error::Issue> = issues
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| cairn_core::api_error::Issue {
                        path: i["path"].as_str().unwrap_or_default().into(),
                        message: i["message"].as_str().unwrap_or_default().into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        return ApiError::invalid_request(list);
    }
    e
}
