//! Stage 1: the seeds (reference §6.2 step 1).
//!
//! Candidates are the scope's nodes that are `hot`/`warm`, `ready`, have a
//! vector (a client's in `memory_nodes.embedding` or a derived one in
//! `memory_derived_vectors`) and are visible to the consumer's lane. The
//! `oversample = max(limit, min(1000, 5·limit))` most similar are kept,
//! then only seedable ones remain (event, topic, concept, entity, rule;
//! topics only when active; rules only with a shadow/active def), the best
//! `limit` of them by cosine similarity.
//!
//! Where the candidates come from:
//! - **ann**: the scope has an IVF index (trained by derivation, see
//!   `cairn-vector`): the query's `nprobe` nearest lists are scanned over
//!   their int8 codes with their pending changes (vectors derivation added
//!   since the list was last folded; query quantized too: integer dot
//!   products); the best
//!   candidates' filter columns are read (no vectors), the visible ones in
//!   approximate order give the oversample cut and the seedable ones, and
//!   only the best `limit + max(8, limit/2)` of those are re-scored with
//!   their exact vectors. If fewer than `limit` seeds survive the filters,
//!   more lists are probed (×4 each round) up to all of them.
//! - **exact**: no index (small scope, or tier `vector_index: flat`, or an
//!   index of another dimension): every candidate is scored exactly.
//! - **exact_fallback**: the ANN found nothing at all; the exact scan runs
//!   once (it also sees client vectors derivation has not indexed yet).

use super::ms;
use crate::stored_rows::lane_visible_sql;
use cairn_core::ApiError;
use cairn_spin::sql::{Dialect, Row, Sql, SqlValue, placeholders};
use cairn_vector::{ivf, kmeans};
use std::time::Instant;

/// A seed: a node, its cosine similarity to the query (0 when it has no
/// vector yet) and its stage-1 score (the similarity itself in dense mode;
/// the fused score in hybrid and lexical modes, see `hybrid`).
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub id: String,
    pub similarity: f64,
    pub score: f64,
}

/// What stage 1 did, for `debug.stage1`, trajectory and observability.
#[derive(Debug, Clone, Default)]
pub struct Stage1 {
    pub seeds: Vec<Seed>,
    /// `ann`, `exact` or `exact_fallback`.
    pub mode: &'static str,
    /// Candidates the index produced (before filters).
    pub ann_seed_count: usize,
    pub exact_fallback_attempted: bool,
    /// Candidates among the oversample that could not seed (type, state).
    pub filtered: usize,
    pub lists_probed: usize,
    pub lists_total: usize,
    pub codes_scanned: usize,
    pub ann_ms: f64,
    pub exact_ms: f64,
    /// Parts of `ann_ms`: loading the centroids and ordering the lists,
    /// reading and scanning lists, re-ranking.
    pub index_ms: f64,
    pub probe_ms: f64,
    pub rerank_ms: f64,
}

/// Who is asking and how many seeds they want.
#[derive(Clone, Copy)]
pub struct SeedQuery<'a> {
    pub scope_key: &'a str,
    /// The query as a unit vector.
    pub unit_query: &'a [f32],
    pub limit: usize,
    pub consumer_agent: Option<&'a str>,
    pub consumer_team: Option<&'a str>,
    /// Whether the tier allows an index (`resource_caps.vector_index != flat`).
    pub use_index: bool,
}

/// Stage-1 oversampling (reference: `max(limit, min(1000, limit·5))`).
pub fn oversample(limit: usize) -> usize {
    limit.max((limit * 5).min(1000))
}

/// Node types that may seed.
const SEEDABLE: &[&str] = &["event", "topic", "concept", "entity", "rule"];

/// A scope's trained IVF index: `nlist` centroids of `dims` dimensions.
pub struct Index {
    pub dims: usize,
    pub centroids: Vec<Vec<f32>>,
    pub trained_count: i64,
}

/// Loads a scope's index, if it has one.
pub fn load_index(db: &dyn Sql, scope_key: &str) -> Result<Option<Index>, ApiError> {
    let row = db.query_one(
        "SELECT dims, nlist, centroids, trained_count FROM memory_vector_index WHERE scope = ?",
        &[scope_key.into()],
    )?;
    Ok(row.and_then(|r| {
        let dims = r.int(0) as usize;
        let flat = f32s(r.blob(2)?);
        (dims > 0 && flat.len() == dims * r.int(1) as usize).then(|| Index {
            dims,
            centroids: flat.chunks(dims).map(<[f32]>::to_vec).collect(),
            trained_count: r.int(3),
        })
    }))
}

/// The scope's lists, nearest to the query first, if it has an index of the
/// query's dimension: from the int8 centroid codes (index built since
/// kernel schema 5), else from the f32 centroids.
fn list_order(
    db: &dyn Sql,
    scope_key: &str,
    unit_query: &[f32],
    query_code: &cairn_vector::quant::Code,
) -> Result<Option<Vec<usize>>, ApiError> {
    let row =
        db.query_one("SELECT dims, centroid_codes FROM memory_vector_index WHERE scope = ?", &[scope_key.into()])?;
    let Some(row) = row else { return Ok(None) };
    if row.int(0) as usize != unit_query.len() {
        return Ok(None);
    }
    if let Some(codes) = row.blob(1).filter(|c| ivf::header(c).is_some_and(|(d, _)| d == unit_query.len())) {
        return Ok(Some(ivf::order_lists(codes, query_code)));
    }
    Ok(load_index(db, scope_key)?
        .filter(|i| i.dims == unit_query.len())
        .map(|i| kmeans::nearest_n(&i.centroids, unit_query, i.centroids.len())))
}

/// Decodes little-endian f32 bytes.
pub fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Cosine of a unit query with a stored vector (any length; `None` when
/// the dimensions differ or the vector is zero).
pub fn cosine_with_blob(unit_query: &[f32], blob: &[u8], scratch: &mut Vec<f32>) -> Option<f64> {
    if blob.len() != unit_query.len() * 4 {
        return None;
    }
    scratch.clear();
    scratch.extend(blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    let norm = cairn_vector::dot(scratch, scratch).sqrt();
    if norm.is_nan() || norm <= 0.0 {
        return None;
    }
    Some((cairn_vector::dot(unit_query, scratch) / norm) as f64)
}

/// The state that decides whether a candidate may seed: a topic's
/// `topic_state`, a rule's definition state (`slots` is JSON text, read
/// with each dialect's JSON functions).
pub fn seed_state_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CASE n.type WHEN 'topic' THEN json_extract(n.slots, '$.topic_state') \
             WHEN 'rule' THEN (SELECT d.state FROM memory_rule_defs d WHERE d.rule_node_id = n.id) END"
        }
        Dialect::Postgres => {
            "CASE n.type WHEN 'topic' THEN n.slots::jsonb ->> 'topic_state' \
             WHEN 'rule' THEN (SELECT d.state FROM memory_rule_defs d WHERE d.rule_node_id = n.id) END"
        }
    }
}

/// The exact scan's candidates; binds (scope, agent, team).
fn candidate_sql(dialect: Dialect) -> String {
    format!(
        "SELECT n.id, n.type, {}, coalesce(n.embedding, v.vector) \
         FROM memory_nodes n LEFT JOIN memory_derived_vectors v ON v.node_id = n.id \
         WHERE n.scope = ? AND {} AND (n.embedding IS NOT NULL OR v.vector IS NOT NULL)",
        seed_state_sql(dialect),
        visible_sql()
    )
}

/// Who may seed, after the scope: hot or warm, ready, visible to the
/// consumer's lane; binds (agent, team).
fn visible_sql() -> String {
    format!("n.tier IN ('hot', 'warm') AND n.embedding_status = 'ready' AND {}", lane_visible_sql("n"))
}

/// A scored candidate that passed the SQL filters.
struct Candidate {
    id: String,
    seedable: bool,
    similarity: f64,
}

/// Whether a node of type `t` in `state` (topic state, rule state) may seed.
pub fn seedable_parts(t: &str, state: Option<&str>) -> bool {
    SEEDABLE.contains(&t)
        && (t != "topic" || state.unwrap_or("active") == "active")
        && (t != "rule" || matches!(state, Some("shadow" | "active")))
}

/// [`seedable_parts`] of a row `(id, type, state, ...)`.
pub fn seedable_row(r: &Row) -> bool {
    seedable_parts(r.text(1).unwrap_or(""), r.text(2))
}

fn score_rows(rows: &[Row], unit_query: &[f32]) -> Vec<Candidate> {
    let mut scratch = Vec::with_capacity(unit_query.len());
    rows.iter()
        .filter_map(|r| {
            let similarity = cosine_with_blob(unit_query, r.blob(3)?, &mut scratch)?;
            Some(Candidate { id: r.string(0), seedable: seedable_row(r), similarity })
        })
        .collect()
}

/// Keeps the best `oversample` candidates, then the best `limit` seedable
/// ones; also says how many of the oversample could not seed.
fn pick(mut c: Vec<Candidate>, limit: usize) -> (Vec<Seed>, usize) {
    c.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| a.id.cmp(&b.id)));
    c.truncate(oversample(limit));
    let filtered = c.iter().filter(|x| !x.seedable).count();
    let seeds = c
        .into_iter()
        .filter(|x| x.seedable)
        .take(limit)
        .map(|x| Seed { id: x.id, similarity: x.similarity, score: x.similarity })
        .collect();
    (seeds, filtered)
}

fn base_params(q: &SeedQuery) -> Vec<SqlValue> {
    vec![q.scope_key.into(), q.consumer_agent.map(str::to_string).into(), q.consumer_team.map(str::to_string).into()]
}

/// Scores every candidate of the scope.
fn exact(db: &dyn Sql, q: &SeedQuery) -> Result<(Vec<Seed>, usize), ApiError> {
    let rows = db.query(&candidate_sql(db.dialect()), &base_params(q))?;
    Ok(pick(score_rows(&rows, q.unit_query), q.limit))
}

/// Lists probed first: a few percent of the lists, at least 8.
fn initial_nprobe(nlist: usize) -> usize {
    nlist.div_ceil(32).clamp(8, 64).min(nlist)
}

/// Runs stage 1.
pub fn find_seeds(db: &dyn Sql, q: &SeedQuery) -> Result<Stage1, ApiError> {
    let mut out = Stage1 { mode: "exact", ..Stage1::default() };
    if q.limit == 0 || q.unit_query.is_empty() {
        return Ok(out);
    }
    let t = Instant::now();
    let query_code = cairn_vector::quant::quantize(q.unit_query);
    let order = if q.use_index { list_order(db, q.scope_key, q.unit_query, &query_code)? } else { None };
    let Some(order) = order.filter(|o| !o.is_empty()) else {
        let t = Instant::now();
        (out.seeds, out.filtered) = exact(db, q)?;
        out.exact_ms = ms(t);
        return Ok(out);
    };
    out.mode = "ann";
    let nlist = order.len();
    out.lists_total = nlist;
    out.index_ms = ms(t);
    let want = oversample(q.limit);
    // Candidates whose filter columns are read: the oversample and a little
    // headroom; when too few of them can seed, more lists are probed.
    let pool = (want + 16).min(4000);
    let mut probed = 0;
    let mut nprobe = initial_nprobe(nlist);
    // A node sits in exactly one list, so candidates never repeat.
    let mut scored: Vec<([u8; 16], f32)> = Vec::new();
    let seeds = loop {
        let tp = Instant::now();
        let lists = &order[probed..nprobe.min(nlist)];
        let rows = rows_of_lists(db, "SELECT list, entries FROM memory_vector_lists", q.scope_key, lists, "")?;
        let mut changes = list_changes(db, q.scope_key, lists)?;
        let empty = ivf::empty(q.unit_query.len());
        let stored = rows.iter().filter_map(|r| Some((r.int(0), r.blob(1)?)));
        // Lists with changes only (none stored yet) are scanned as empty ones.
        let unstored: Vec<i64> = changes.keys().copied().filter(|l| !rows.iter().any(|r| r.int(0) == *l)).collect();
        for (list, blob) in stored.chain(unstored.into_iter().map(|l| (l, empty.as_slice()))) {
            let pending = changes.remove(&list).unwrap_or_default();
            let mut top = ivf::TopK::new(pool);
            out.codes_scanned += ivf::scan_with_changes(blob, &pending, &query_code, &mut top);
            scored.extend(top.into_sorted());
        }
        probed = nprobe.min(nlist);
        // The best `pool` approximate candidates so far.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let best = &scored[..scored.len().min(pool)];
        out.ann_seed_count = best.len();
        out.probe_ms += ms(tp);
        let tr = Instant::now();
        let found = rerank(db, q, best)?;
        out.rerank_ms += ms(tr);
        if found.0.len() >= q.limit || probed >= nlist {
            break found;
        }
        nprobe = (nprobe * 4).min(nlist);
    };
    out.lists_probed = probed;
    out.ann_ms = ms(t);
    (out.seeds, out.filtered) = seeds;
    if out.ann_seed_count == 0 {
        out.exact_fallback_attempted = true;
        out.mode = "exact_fallback";
        let t = Instant::now();
        (out.seeds, out.filtered) = exact(db, q)?;
        out.exact_ms = ms(t);
    }
    Ok(out)
}

/// `select` (from a table keyed by scope and list) for a scope's `lists`.
fn rows_of_lists(
    db: &dyn Sql,
    select: &str,
    scope_key: &str,
    lists: &[usize],
    tail: &str,
) -> Result<Vec<Row>, ApiError> {
    let params: Vec<SqlValue> =
        std::iter::once(scope_key.into()).chain(lists.iter().map(|l| SqlValue::Integer(*l as i64))).collect();
    db.query(&format!("{select} WHERE scope = ? AND list IN ({}){tail}", placeholders(lists.len())), &params)
}

/// The pending changes of a scope's `lists` (kernel schema 11), oldest
/// first per list.
pub fn list_changes(
    db: &dyn Sql,
    scope_key: &str,
    lists: &[usize],
) -> Result<std::collections::HashMap<i64, Vec<ivf::Change>>, ApiError> {
    let mut out: std::collections::HashMap<i64, Vec<ivf::Change>> = std::collections::HashMap::new();
    if lists.is_empty() {
        return Ok(out);
    }
    let select = "SELECT list, node, entry FROM memory_vector_list_changes";
    for r in rows_of_lists(db, select, scope_key, lists, " ORDER BY id")? {
        let Some(id) = r.blob(1).and_then(|b| <[u8; ivf::ID_BYTES]>::try_from(b).ok()) else { continue };
        out.entry(r.int(0)).or_default().push(ivf::Change { id, entry: r.blob(2).map(<[u8]>::to_vec) });
    }
    Ok(out)
}

/// `(id, vector blob)` rows of the given nodes: the client's vector, else
/// the derived one.
pub fn vectors_of(db: &dyn Sql, ids: &[&str]) -> Result<Vec<Row>, ApiError> {
    let params: Vec<SqlValue> = ids.iter().map(|id| SqlValue::from(*id)).collect();
    db.query(
        &format!(
            "SELECT n.id, coalesce(n.embedding, v.vector) FROM memory_nodes n \
             LEFT JOIN memory_derived_vectors v ON v.node_id = n.id WHERE n.id IN ({})",
            placeholders(ids.len())
        ),
        &params,
    )
}

/// Turns approximate candidates (best first) into seeds, in two steps so
/// that only a few exact vectors are read: (1) the candidates' filter
/// columns (tier, readiness, lane, type, topic state — no vectors), which
/// give the visible ones in approximate order, the oversample cut and the
/// seedable ones; (2) the exact vectors of the best `limit + margin`
/// seedable ones, which are re-scored and cut to `limit`.
fn rerank(db: &dyn Sql, q: &SeedQuery, best: &[([u8; 16], f32)]) -> Result<(Vec<Seed>, usize), ApiError> {
    let ids: Vec<String> = best.iter().map(|(b, _)| ivf::uuid_string(b)).collect();
    let mut info: std::collections::HashMap<String, bool> = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut params = base_params(q);
        params.extend(chunk.iter().map(SqlValue::from));
        let sql = format!(
            "SELECT n.id, n.type, {} FROM memory_nodes n \
             WHERE {} = ? AND {} AND n.id IN ({})",
            seed_state_sql(db.dialect()),
            db.dialect().unindexed("n.scope"),
            visible_sql(),
            placeholders(chunk.len())
        );
        for r in db.query(&sql, &params)? {
            info.insert(r.string(0), seedable_row(&r));
        }
    }
    let visible: Vec<(&String, bool)> =
        ids.iter().filter_map(|id| info.get(id).map(|s| (id, *s))).take(oversample(q.limit)).collect();
    let filtered = visible.iter().filter(|(_, s)| !s).count();
    let margin = (q.limit / 2).max(8);
    let finalists: Vec<&String> =
        visible.iter().filter(|(_, s)| *s).map(|(id, _)| *id).take(q.limit + margin).collect();
    if finalists.is_empty() {
        return Ok((Vec::new(), filtered));
    }
    let finalists: Vec<&str> = finalists.into_iter().map(String::as_str).collect();
    let rows = vectors_of(db, &finalists)?;
    let mut scratch = Vec::with_capacity(q.unit_query.len());
    let mut seeds: Vec<Seed> = rows
        .iter()
        .filter_map(|r| {
            let similarity = cosine_with_blob(q.unit_query, r.blob(1)?, &mut scratch)?;
            Some(Seed { id: r.string(0), similarity, score: similarity })
        })
        .collect();
    seeds.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then_with(|| a.id.cmp(&b.id)));
    seeds.truncate(q.limit);
    Ok((seeds, filtered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversampling() {
        assert_eq!(oversample(1), 5);
        assert_eq!(oversample(24), 120);
        assert_eq!(oversample(200), 1000);
        assert_eq!(initial_nprobe(16), 8);
        assert_eq!(initial_nprobe(316), 10);
        assert_eq!(initial_nprobe(4), 4);
    }

    #[test]
    fn pick_keeps_the_oversample_then_seedable_ones() {
        let c = |id: &str, s: f64, ok: bool| Candidate { id: id.into(), seedable: ok, similarity: s };
        // limit 1 → oversample 5: the seedable node in 6th place is cut.
        let mut v: Vec<Candidate> = (0..5).map(|i| c(&format!("e{i}"), 0.9 - i as f64 * 0.01, false)).collect();
        v.push(c("late", 0.1, true));
        assert_eq!(pick(v, 1), (vec![], 5));
        let v = vec![c("b", 0.5, true), c("a", 0.5, true), c("x", 0.9, false)];
        let got: Vec<String> = pick(v, 2).0.into_iter().map(|s| s.id).collect();
        assert_eq!(got, ["a", "b"], "ties by id");
    }

    #[test]
    fn cosine_normalizes_the_stored_vector() {
        let q = [1.0f32, 0.0];
        let blob = cairn_spin::sql::f32_blob(&[3.0, 4.0]);
        let mut s = Vec::new();
        assert!((cosine_with_blob(&q, &blob, &mut s).unwrap() - 0.6).abs() < 1e-6);
        assert_eq!(cosine_with_blob(&q, &cairn_spin::sql::f32_blob(&[0.0, 0.0]), &mut s), None);
        assert_eq!(cosine_with_blob(&q, &cairn_spin::sql::f32_blob(&[1.0]), &mut s), None);
    }
}
