//! Vector-index upkeep: the per-scope IVF index recall probes (logic in
//! `cairn-vector`; tables in kernel migration 3).
//!
//! - **Build** (`index_build` job): once a scope with `resource_caps.vector_index
//!   = ivf` holds `index_min_vectors` ready vectors (default 2048), and again
//!   whenever that count has doubled since the last training, the worker
//!   trains `nlist = clamp(√n, 16, 1024)` spherical k-means centroids on a
//!   deterministic sample and writes every vector into its list (int8 codes).
//! - **Upkeep**: between builds, every vector derivation stores (embeds,
//!   topic centroids) is added to its nearest list in the same transaction,
//!   as a pending change of the list (a node that moves also leaves a
//!   removal in its old list); a list's changes are folded into its BLOB
//!   once it has [`FOLD_AT`] of them. Recall scans lists with their changes. Scopes below the
//!   threshold, or on `flat`, have no index: recall scans them exactly.
//!
//! Vectors written by clients reach it through the `index_nodes` job the
//! write path enqueues for them, so once a scope has an index every ready
//! vector is in it.

use crate::settings::DeriveSettings;
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, placeholders};
use cairn_vector::{ivf, kmeans, quant};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// Lloyd iterations per training.
const ITERATIONS: usize = 6;
/// Training sample: at most this many points per list.
const SAMPLE_PER_LIST: usize = 32;

// The index as stored is read the same way recall reads it.
pub use cairn_memory::recall::seeds::{Index, load_index as load};

/// Pending changes a list gathers before they are folded into its BLOB.
pub const FOLD_AT: i64 = 32;

/// Adds (or moves) unit vectors of one scope into its index, if it has one.
/// Call inside the caller's write transaction. Each vector becomes one
/// pending change of its list (and a removal from the list it left), not a
/// rewrite of the list: lists with [`FOLD_AT`] changes are folded, so a
/// batch rewrites a few lists instead of one per vector (kernel schema 11).
pub fn add(db: &dyn Sql, scope: &str, items: &[(String, Vec<f32>)]) -> Result<usize, ApiError> {
    if items.is_empty() {
        return Ok(0);
    }
    let Some(index) = load(db, scope)? else { return Ok(0) };
    let mut wanted: BTreeMap<i64, Vec<([u8; 16], quant::Code, String)>> = BTreeMap::new();
    for (id, v) in items {
        let Some(bytes) = ivf::uuid_bytes(id) else { continue };
        if v.len() != index.dims {
            continue;
        }
        let list = kmeans::nearest(&index.centroids, v) as i64;
        wanted.entry(list).or_default().push((bytes, quant::quantize(v), id.clone()));
    }
    // Where the nodes sit now (a node that moves leaves its old list).
    let ids: Vec<&String> = wanted.values().flatten().map(|(_, _, id)| id).collect();
    let mut current: HashMap<String, i64> = HashMap::new();
    for chunk in ids.chunks(400) {
        let params: Vec<SqlValue> = chunk.iter().map(|s| (*s).into()).collect();
        for r in db.query(
            &format!(
                "SELECT node_id, list FROM memory_vector_members WHERE node_id IN ({})",
                placeholders(chunk.len())
            ),
            &params,
        )? {
            current.insert(r.string(0), r.int(1));
        }
    }
    let mut touched: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
    let mut added = 0;
    for (list, entries) in &wanted {
        for (bytes, code, id) in entries {
            if let Some(old) = current.get(id).filter(|old| **old != *list) {
                record_change(db, scope, *old, bytes, None)?;
                touched.insert(*old);
            }
            record_change(db, scope, *list, bytes, Some(ivf::entry_bytes(bytes, code)))?;
            touched.insert(*list);
            db.exec(
                "INSERT INTO memory_vector_members (node_id, scope, list) VALUES (?, ?, ?) \
                 ON CONFLICT (node_id) DO UPDATE SET list = excluded.list",
                &[id.into(), scope.into(), (*list).into()],
            )?;
            added += 1;
        }
    }
    fold_full_lists(db, scope, index.dims, &touched.into_iter().collect::<Vec<_>>())?;
    Ok(added)
}

fn record_change(db: &dyn Sql, scope: &str, list: i64, id: &[u8; 16], entry: Option<Vec<u8>>) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_vector_list_changes (scope, list, node, entry) VALUES (?, ?, ?, ?)",
        &[scope.into(), list.into(), id.to_vec().into(), entry.map(SqlValue::Blob).unwrap_or(SqlValue::Null)],
    )
}

/// Folds the pending changes of those `lists` that have [`FOLD_AT`] or more
/// into their BLOBs; returns how many lists were rewritten.
pub fn fold_full_lists(db: &dyn Sql, scope: &str, dims: usize, lists: &[i64]) -> Result<usize, ApiError> {
    if lists.is_empty() {
        return Ok(0);
    }
    let mut params: Vec<SqlValue> = vec![scope.into()];
    params.extend(lists.iter().map(|l| SqlValue::Integer(*l)));
    params.push(SqlValue::Integer(FOLD_AT));
    let full: Vec<usize> = db
        .query(
            &format!(
                "SELECT list FROM memory_vector_list_changes WHERE scope = ? AND list IN ({}) \
                 GROUP BY list HAVING count(*) >= ?",
                placeholders(lists.len())
            ),
            &params,
        )?
        .iter()
        .map(|r| r.int(0) as usize)
        .collect();
    let mut changes = cairn_memory::recall::seeds::list_changes(db, scope, &full)?;
    let mut cache = BTreeMap::new();
    for list in &full {
        let list = *list as i64;
        let pending = changes.remove(&list).unwrap_or_default();
        let blob = get_list(db, scope, list, dims, &mut cache)?;
        ivf::fold(blob, &pending);
    }
    for (list, blob) in cache {
        save_list(db, scope, list, blob)?;
        db.exec("DELETE FROM memory_vector_list_changes WHERE scope = ? AND list = ?", &[scope.into(), list.into()])?;
    }
    Ok(full.len())
}

fn get_list<'a>(
    db: &dyn Sql,
    scope: &str,
    list: i64,
    dims: usize,
    cache: &'a mut BTreeMap<i64, Vec<u8>>,
) -> Result<&'a mut Vec<u8>, ApiError> {
    if let std::collections::btree_map::Entry::Vacant(slot) = cache.entry(list) {
        let blob = db
            .query_one(
                "SELECT entries FROM memory_vector_lists WHERE scope = ? AND list = ?",
                &[scope.into(), list.into()],
            )?
            .and_then(|r| r.blob(0).map(<[u8]>::to_vec))
            .filter(|b| ivf::header(b).is_some_and(|(d, _)| d == dims))
            .unwrap_or_else(|| ivf::empty(dims));
        slot.insert(blob);
    }
    Ok(cache.get_mut(&list).expect("inserted"))
}

fn save_list(db: &dyn Sql, scope: &str, list: i64, blob: Vec<u8>) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO memory_vector_lists (scope, list, entries) VALUES (?, ?, ?) \
         ON CONFLICT (scope, list) DO UPDATE SET entries = excluded.entries",
        &[scope.into(), list.into(), blob.into()],
    )
}

/// Ready vectors of a scope (client or derived).
fn ready_count(db: &dyn Sql, scope: &str) -> Result<i64, ApiError> {
    Ok(db
        .query_one(
            "SELECT (SELECT count(*) FROM memory_derived_vectors WHERE scope = ?1) + \
             (SELECT count(*) FROM memory_nodes WHERE scope = ?1 AND embedding IS NOT NULL AND embedding_status = 'ready')",
            &[scope.into()],
        )?
        .map(|r| r.int(0))
        .unwrap_or(0))
}

/// Enqueues an `index_build` for the scope when it is due and none waits.
pub fn maybe_enqueue_build(
    db: &dyn Sql,
    s: &DeriveSettings,
    scope: &str,
    commit_id: &str,
    now: &str,
) -> Result<bool, ApiError> {
    if s.kernel.vector_index != "ivf" {
        return Ok(false);
    }
    let count = ready_count(db, scope)?;
    let trained = db
        .query_one("SELECT trained_count FROM memory_vector_index WHERE scope = ?", &[scope.into()])?
        .map(|r| r.int(0));
    let due = match trained {
        None => count >= s.index_min_vectors,
        Some(t) => count >= 2 * t.max(1),
    };
    if !due {
        return Ok(false);
    }
    let waiting = db.query_one(
        "SELECT 1 FROM memory_outbox WHERE scope = ? AND published_at IS NULL AND failed_at IS NULL AND event_type = 'index_build' LIMIT 1",
        &[scope.into()],
    )?;
    if waiting.is_some() {
        return Ok(false);
    }
    cairn_memory::write_path::enqueue(
        db,
        scope,
        commit_id,
        "index_build",
        &json!({"scope": scope, "ready_vectors": count}),
        now,
    )?;
    Ok(true)
}

/// A trained index ready to be written.
pub struct Built {
    pub centroids: Vec<Vec<f32>>,
    pub lists: Vec<Vec<u8>>,
    pub members: Vec<(String, usize)>,
    pub vectors: usize,
}

/// Trains the scope's index from all its ready vectors (a read, then pure
/// computation: no write lock is held while it trains).
pub fn train(db: &dyn Sql, scope: &str, dims: usize) -> Result<Built, ApiError> {
    let rows = db.query(
        "SELECT n.id, coalesce(n.embedding, v.vector) FROM memory_nodes n \
         LEFT JOIN memory_derived_vectors v ON v.node_id = n.id \
         WHERE n.scope = ? AND n.embedding_status = 'ready' AND (n.embedding IS NOT NULL OR v.vector IS NOT NULL) ORDER BY n.id",
        &[scope.into()],
    )?;
    let points: Vec<(String, Vec<f32>)> = rows
        .iter()
        .filter_map(|r| {
            let v = crate::vectors::from_blob(r.blob(1)?);
            (v.len() == dims).then_some(())?;
            Some((r.string(0), crate::vectors::unit(&v)?))
        })
        .collect();
    let n = points.len();
    let nlist = ((n as f64).sqrt() as usize).clamp(16, 1024).min(n.max(1));
    // Deterministic sample: evenly spaced over the id order.
    let want = (nlist * SAMPLE_PER_LIST).min(n);
    let step = (n / want.max(1)).max(1);
    let sample: Vec<Vec<f32>> = points.iter().step_by(step).take(want).map(|(_, v)| v.clone()).collect();
    let centroids = kmeans::train(&sample, nlist, ITERATIONS, n as u64);
    let mut lists: Vec<Vec<u8>> = vec![ivf::empty(dims); centroids.len()];
    let mut members = Vec::with_capacity(n);
    for (id, v) in points {
        let Some(bytes) = ivf::uuid_bytes(&id) else { continue };
        let list = kmeans::nearest(&centroids, &v);
        ivf::upsert(&mut lists[list], &bytes, &quant::quantize(&v));
        members.push((id, list));
    }
    Ok(Built { centroids, lists, members, vectors: n })
}

/// Replaces the scope's index with `b` (inside the caller's write
/// transaction), then re-adds vectors derived since `trained_from` so none
/// stored during training is lost.
pub fn write(
    db: &dyn Sql,
    scope: &str,
    dims: usize,
    b: &Built,
    trained_from: &str,
    now: &str,
) -> Result<usize, ApiError> {
    db.exec("DELETE FROM memory_vector_lists WHERE scope = ?", &[scope.into()])?;
    db.exec("DELETE FROM memory_vector_list_changes WHERE scope = ?", &[scope.into()])?;
    db.exec("DELETE FROM memory_vector_members WHERE scope = ?", &[scope.into()])?;
    for (id, list) in &b.members {
        db.exec(
            "INSERT INTO memory_vector_members (node_id, scope, list) VALUES (?, ?, ?)",
            &[id.into(), scope.into(), (*list as i64).into()],
        )?;
    }
    for (i, blob) in b.lists.iter().enumerate() {
        save_list(db, scope, i as i64, blob.clone())?;
    }
    let flat: Vec<f32> = b.centroids.iter().flatten().copied().collect();
    db.exec(
        "INSERT INTO memory_vector_index (scope, dims, nlist, centroids, centroid_codes, trained_count, trained_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET dims = excluded.dims, \
         nlist = excluded.nlist, centroids = excluded.centroids, centroid_codes = excluded.centroid_codes, \
         trained_count = excluded.trained_count, trained_at = excluded.trained_at, updated_at = excluded.updated_at",
        &[
            scope.into(),
            (dims as i64).into(),
            (b.centroids.len() as i64).into(),
            crate::vectors::to_blob(&flat).into(),
            ivf::centroid_codes(&b.centroids).into(),
            (b.vectors as i64).into(),
            now.into(),
            now.into(),
        ],
    )?;
    let late: Vec<(String, Vec<f32>)> = db
        .query(
            "SELECT node_id, vector FROM memory_derived_vectors WHERE scope = ? AND updated_at >= ?",
            &[scope.into(), trained_from.into()],
        )?
        .iter()
        .filter_map(|r| Some((r.string(0), crate::vectors::unit(&crate::vectors::from_blob(r.blob(1)?))?)))
        .collect();
    add(db, scope, &late)
}
