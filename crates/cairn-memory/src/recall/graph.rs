//! Stage 2: the seeds' neighbourhood (reference §6.2 steps 2–3).
//!
//! Edges: `EDGE_FETCH_BUDGET = min(1000, max(5·max_edges, max_edges))`,
//! per hop and direction at most `max(50, min(500, budget))` edges by
//! weight then confidence, each passing `min_edge_weight` /
//! `min_edge_confidence`. Hop 1 starts from the seeds; hop 2 from the seeds
//! and every hop-1 endpoint. The union is cut to the budget.
//!
//! Nodes: seeds and edge endpoints, at most
//! `NODE_FETCH_BUDGET = min(800, max(4·max_nodes, max_nodes))`; over it, the
//! seeds stay and the others go by the summed `weight·confidence` of their
//! edges (ties by id). Rows are read lane-filtered, without vectors; edges
//! whose both ends were not read are dropped.

use super::knobs::Knobs;
use crate::stored_rows::{StoredNode, lane_visible_sql};
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, placeholders};
use std::collections::{BTreeSet, HashMap, HashSet};

pub fn edge_fetch_budget(max_edges: i64) -> usize {
    (max_edges * 5).max(max_edges).min(1000) as usize
}

fn hop_budget(edge_budget: usize) -> usize {
    edge_budget.clamp(50, 500)
}

pub fn node_fetch_budget(max_nodes: i64) -> usize {
    (max_nodes * 4).max(max_nodes).min(800) as usize
}

/// An edge of the neighbourhood: what ranking, scoring and the answer's
/// subgraph read (the edge's commit only with `include_meta`:
/// [`commit_ids`]). All of it is in the ranking indexes (kernel schema 14),
/// so reading a hop never touches the edge table.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborEdge {
    pub id: String,
    pub edge_type: String,
    pub src_id: String,
    pub dst_id: String,
    pub weight: f64,
    pub confidence: f64,
}

impl NeighborEdge {
    fn from_row(r: &cairn_spin::sql::Row) -> NeighborEdge {
        NeighborEdge {
            id: r.string(0),
            edge_type: r.string(1),
            src_id: r.string(2),
            dst_id: r.string(3),
            weight: r.real(4),
            confidence: r.real(5),
        }
    }
}

/// Sorts edges by weight, then confidence (both descending), then id.
fn sort_edges(edges: &mut [NeighborEdge]) {
    edges.sort_by(|a, b| {
        b.weight.total_cmp(&a.weight).then(b.confidence.total_cmp(&a.confidence)).then_with(|| a.id.cmp(&b.id))
    });
}

/// One direction of a hop, read from the covering ranking index alone.
fn hop_sql(column: &str, frontier: usize) -> String {
    format!(
        "SELECT id, type, src_id, dst_id, weight, confidence FROM memory_edges \
         WHERE scope = ? AND {column} IN ({}) AND weight >= ? AND confidence >= ? \
         ORDER BY weight DESC, confidence DESC, id LIMIT ?",
        placeholders(frontier)
    )
}

/// The edges of one hop from `frontier`, both directions.
fn hop(
    db: &dyn Sql,
    scope_key: &str,
    frontier: &[&str],
    k: &Knobs,
    per_direction: usize,
    out: &mut HashMap<String, NeighborEdge>,
) -> Result<(), ApiError> {
    if frontier.is_empty() {
        return Ok(());
    }
    for column in ["src_id", "dst_id"] {
        let mut params: Vec<SqlValue> = vec![scope_key.into()];
        params.extend(frontier.iter().map(|id| SqlValue::from(*id)));
        params.push(SqlValue::Real(k.min_edge_weight));
        params.push(SqlValue::Real(k.min_edge_confidence));
        params.push(SqlValue::Integer(per_direction as i64));
        let sql = hop_sql(column, frontier.len());
        for r in db.query(&sql, &params)? {
            let e = NeighborEdge::from_row(&r);
            out.entry(e.id.clone()).or_insert(e);
        }
    }
    Ok(())
}

/// The neighbourhood's edges, at most the edge budget.
pub fn fetch_edges(db: &dyn Sql, scope_key: &str, seeds: &[&str], k: &Knobs) -> Result<Vec<NeighborEdge>, ApiError> {
    let budget = edge_fetch_budget(k.max_edges);
    let per = hop_budget(budget);
    let mut found = HashMap::new();
    hop(db, scope_key, seeds, k, per, &mut found)?;
    if k.neighborhood_hops >= 2 {
        let mut frontier: BTreeSet<&str> = seeds.iter().copied().collect();
        let hop1: Vec<NeighborEdge> = found.values().cloned().collect();
        for e in &hop1 {
            frontier.insert(&e.src_id);
            frontier.insert(&e.dst_id);
        }
        let frontier: Vec<&str> = frontier.into_iter().collect();
        for chunk in frontier.chunks(400) {
            hop(db, scope_key, chunk, k, per, &mut found)?;
        }
    }
    let mut edges: Vec<NeighborEdge> = found.into_values().collect();
    sort_edges(&mut edges);
    edges.truncate(budget);
    Ok(edges)
}

/// Which node ids to read: seeds first, then the best-connected others.
pub fn select_node_ids(seeds: &[&str], edges: &[NeighborEdge], max_nodes: i64) -> Vec<String> {
    let budget = node_fetch_budget(max_nodes);
    let seed_set: HashSet<&str> = seeds.iter().copied().collect();
    let mut strength: HashMap<&str, f64> = HashMap::new();
    for e in edges {
        for id in [e.src_id.as_str(), e.dst_id.as_str()] {
            if !seed_set.contains(id) {
                *strength.entry(id).or_default() += e.weight * e.confidence;
            }
        }
    }
    let mut others: Vec<(&str, f64)> = strength.into_iter().collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let room = budget.saturating_sub(seeds.len());
    seeds.iter().map(|s| s.to_string()).chain(others.into_iter().take(room).map(|(id, _)| id.to_string())).collect()
}

/// The commits of `edges` (the answer's `commit_id` with `include_meta`).
pub fn commit_ids(db: &dyn Sql, edges: &[NeighborEdge]) -> Result<HashMap<String, String>, ApiError> {
    let ids: Vec<String> = edges.iter().map(|e| e.id.clone()).collect();
    crate::commit_log::load(db, "SELECT id, commit_id FROM memory_edges WHERE id IN ", &ids, |r| {
        (r.string(0), r.string(1))
    })
}

/// Node columns without the vector (recall never needs it here).
fn node_columns() -> String {
    crate::stored_rows::NODE_COLUMNS
        .split(", ")
        .map(|c| if c.trim() == "embedding" { "NULL".to_string() } else { format!("n.{}", c.trim()) })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the nodes (same scope, lane-visible), keyed by id.
pub fn fetch_nodes(
    db: &dyn Sql,
    scope_key: &str,
    ids: &[String],
    agent: Option<&str>,
    team: Option<&str>,
) -> Result<HashMap<String, StoredNode>, ApiError> {
    let mut out = HashMap::with_capacity(ids.len());
    let columns = node_columns();
    for chunk in ids.chunks(400) {
        let mut params: Vec<SqlValue> =
            vec![scope_key.into(), agent.map(str::to_string).into(), team.map(str::to_string).into()];
        params.extend(chunk.iter().map(SqlValue::from));
        let sql = format!(
            // `+n.scope`: look the ids up by key, never walk the scope.
            "SELECT {columns} FROM memory_nodes n WHERE {} = ? AND {} AND n.id IN ({})",
            db.dialect().unindexed("n.scope"),
            lane_visible_sql("n"),
            placeholders(chunk.len())
        );
        for r in db.query(&sql, &params)? {
            let n = StoredNode::from_row(&r);
            out.insert(n.id.clone(), n);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn edge(id: &str, s: &str, d: &str, w: f64, c: f64) -> NeighborEdge {
        neighbor(id, s, d, "related_to", w, c)
    }

    /// A neighbourhood edge for other modules' tests.
    pub(crate) fn neighbor(id: &str, s: &str, d: &str, t: &str, w: f64, c: f64) -> NeighborEdge {
        NeighborEdge {
            id: id.into(),
            edge_type: t.into(),
            src_id: s.into(),
            dst_id: d.into(),
            weight: w,
            confidence: c,
        }
    }

    #[test]
    fn budgets() {
        assert_eq!(edge_fetch_budget(80), 400);
        assert_eq!(edge_fetch_budget(100), 500);
        assert_eq!(hop_budget(edge_fetch_budget(1)), 50);
        assert_eq!(node_fetch_budget(60), 240);
        assert_eq!(node_fetch_budget(200), 800);
    }

    #[test]
    fn node_selection_keeps_seeds_and_the_best_connected() {
        let edges = [edge("e1", "s", "a", 0.9, 0.9), edge("e2", "s", "b", 0.5, 0.5), edge("e3", "b", "c", 0.9, 0.1)];
        // max_nodes 1 → budget 4: s, then a (0.81), b (0.25 + 0.09), c (0.09).
        assert_eq!(select_node_ids(&["s"], &edges, 1), ["s", "a", "b", "c"]);
        let ids = select_node_ids(&["s", "x", "y"], &edges, 1);
        assert_eq!(ids, ["s", "x", "y", "a"]);
    }

    #[test]
    fn a_hop_reads_the_covering_ranking_index_alone() {
        let db = cairn_spin::native_sqlite::NativeSqlite::in_memory();
        crate::schema::ensure(&db, "2026-12-01T00:00:00.000Z").unwrap();
        for column in ["src_id", "dst_id"] {
            let plan: Vec<String> = db
                .query(
                    &format!("EXPLAIN QUERY PLAN {}", hop_sql(column, 3)),
                    &[
                        "s".into(),
                        "a".into(),
                        "b".into(),
                        "c".into(),
                        SqlValue::Real(0.0),
                        SqlValue::Real(0.0),
                        500.into(),
                    ],
                )
                .unwrap()
                .iter()
                .map(|r| r.string(3))
                .collect();
            let ranked = format!("USING COVERING INDEX memory_edges_scope_{}_rank", &column[..3]);
            assert!(plan.iter().any(|p| p.contains(&ranked)), "{plan:?}");
            assert!(plan.iter().all(|p| p.contains("COVERING INDEX") || p.contains("TEMP B-TREE")), "{plan:?}");
        }
    }

    #[test]
    fn columns_skip_the_vector() {
        let c = node_columns();
        assert!(c.contains("NULL") && !c.contains("n.embedding,") && c.contains("n.embedding_status"));
    }
}
