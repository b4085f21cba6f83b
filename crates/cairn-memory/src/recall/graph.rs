//! Stage 2: the seeds' neighbourhood (reference §6.2 steps 2–3).
//!
//! Edges: `EDGE_FETCH_BUDGET = min(1000, max(5·max_edges, max_edges))`,
//! per hop and direction at most `max(50, min(500, budget))` edges by
//! weight then confidence, each passing `min_edge_weight` /
//! `min_edge_confidence`. Hop 1 starts from the seeds; hop 2 from the seeds
//! and every hop-1 endpoint. The union is cut to the budget.
//!
//! Each hop is one statement: both directions united in SQL. Hop 2 is
//! also cut to the budget there, so only edges that can survive the final
//! cut leave the database (an edge among the union's best `budget` is
//! among its own hop's best `budget`, so cutting hop 2 first changes
//! nothing; hop 1 is not cut, as all its endpoints start hop 2).
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
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeSet, HashMap};

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
    fn from_row(mut r: cairn_spin::sql::Row) -> NeighborEdge {
        NeighborEdge {
            id: r.take_string(0),
            edge_type: r.take_string(1),
            src_id: r.take_string(2),
            dst_id: r.take_string(3),
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
/// Limits are literals: SQLite (3.47+) re-prepares a statement whose
/// `LIMIT ?` is bound anew on every run.
fn direction_sql(column: &str, frontier: usize, limit: usize) -> String {
    format!(
        "SELECT id, type, src_id, dst_id, weight, confidence FROM memory_edges \
         WHERE scope = ? AND {column} IN ({}) AND weight >= ? AND confidence >= ? \
         ORDER BY weight DESC, confidence DESC, id LIMIT {limit}",
        placeholders(frontier)
    )
}

/// A hop: each direction's best `per_direction`, united (an edge between
/// two frontier nodes comes back once) and cut to the best `limit`.
fn hop_sql(frontier: usize, per_direction: usize, limit: usize) -> String {
    let columns = "id, type, src_id, dst_id, weight, confidence";
    format!(
        "SELECT {columns} FROM ({}) AS out_edges UNION SELECT {columns} FROM ({}) AS in_edges \
         ORDER BY weight DESC, confidence DESC, id LIMIT {limit}",
        direction_sql("src_id", frontier, per_direction),
        direction_sql("dst_id", frontier, per_direction)
    )
}

/// The best `limit` edges of one hop from `frontier`, both directions.
fn hop(
    db: &dyn Sql,
    scope_key: &str,
    frontier: &[&str],
    k: &Knobs,
    (per_direction, limit): (usize, usize),
    out: &mut Vec<NeighborEdge>,
) -> Result<(), ApiError> {
    if frontier.is_empty() {
        return Ok(());
    }
    let mut params: Vec<SqlValue> = Vec::with_capacity(2 * frontier.len() + 6);
    for _direction in 0..2 {
        params.push(scope_key.into());
        params.extend(frontier.iter().map(|id| SqlValue::from(*id)));
        params.push(SqlValue::Real(k.min_edge_weight));
        params.push(SqlValue::Real(k.min_edge_confidence));
    }
    let sql = hop_sql(frontier.len(), per_direction, limit);
    out.extend(db.query(&sql, &params)?.into_iter().map(NeighborEdge::from_row));
    Ok(())
}

/// The neighbourhood's edges, at most the edge budget.
pub fn fetch_edges(db: &dyn Sql, scope_key: &str, seeds: &[&str], k: &Knobs) -> Result<Vec<NeighborEdge>, ApiError> {
    let budget = edge_fetch_budget(k.max_edges);
    let per = hop_budget(budget);
    let mut found = Vec::new();
    // Hop 1 is not cut: every one of its endpoints starts hop 2.
    hop(db, scope_key, seeds, k, (per, 2 * per), &mut found)?;
    if k.neighborhood_hops >= 2 {
        let mut frontier: BTreeSet<&str> = seeds.iter().copied().collect();
        for e in &found {
            frontier.insert(&e.src_id);
            frontier.insert(&e.dst_id);
        }
        let frontier: Vec<&str> = frontier.into_iter().collect();
        let mut hop2 = Vec::new();
        for chunk in frontier.chunks(400) {
            hop(db, scope_key, chunk, k, (per, budget), &mut hop2)?;
        }
        found.append(&mut hop2);
    }
    // Hop 2 reads the seeds' edges again: equal ids are equal rows, so
    // after the sort they sit side by side.
    sort_edges(&mut found);
    found.dedup_by(|a, b| a.id == b.id);
    found.truncate(budget);
    Ok(found)
}

/// Which node ids to read: seeds first, then the best-connected others.
pub fn select_node_ids(seeds: &[&str], edges: &[NeighborEdge], max_nodes: i64) -> Vec<String> {
    let budget = node_fetch_budget(max_nodes);
    let seed_set: FxHashSet<&str> = seeds.iter().copied().collect();
    let mut strength: FxHashMap<&str, f64> = FxHashMap::default();
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
) -> Result<FxHashMap<String, StoredNode>, ApiError> {
    let mut out = FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
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
            let n = StoredNode::from_owned_row(r);
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
                    &format!("EXPLAIN QUERY PLAN {}", direction_sql(column, 3, 500)),
                    &["s".into(), "a".into(), "b".into(), "c".into(), SqlValue::Real(0.0), SqlValue::Real(0.0)],
                )
                .unwrap()
                .iter()
                .map(|r| r.string(3))
                .collect();
            let ranked = format!("USING COVERING INDEX memory_edges_scope_{}_rank", &column[..3]);
            assert!(plan.iter().any(|p| p.contains(&ranked)), "{plan:?}");
            assert!(plan.iter().all(|p| p.contains("COVERING INDEX") || p.contains("TEMP B-TREE")), "{plan:?}");
        }
        // The hop's statement reads both directions the same way.
        let mut params: Vec<SqlValue> = Vec::new();
        for _ in 0..2 {
            params.extend(["s".into(), "a".into(), "b".into(), SqlValue::Real(0.0), SqlValue::Real(0.0)]);
        }
        let plan: Vec<String> = db
            .query(&format!("EXPLAIN QUERY PLAN {}", hop_sql(2, 500, 400)), &params)
            .unwrap()
            .iter()
            .map(|r| r.string(3))
            .collect();
        for index in ["memory_edges_scope_src_rank", "memory_edges_scope_dst_rank"] {
            assert!(plan.iter().any(|p| p.contains(&format!("USING COVERING INDEX {index}"))), "{plan:?}");
        }
        assert!(!plan.iter().any(|p| p.contains("SCAN memory_edges")), "{plan:?}");
    }

    /// The neighbourhood as the reference defines it, over every edge in
    /// memory: each hop's directions cut to `per` apiece, the union cut to
    /// the budget.
    fn reference_edges(all: &[NeighborEdge], seeds: &[&str], k: &Knobs) -> Vec<String> {
        let budget = edge_fetch_budget(k.max_edges);
        let per = hop_budget(budget);
        let top = |keep: &dyn Fn(&NeighborEdge) -> bool| {
            let mut v: Vec<NeighborEdge> = all
                .iter()
                .filter(|e| e.weight >= k.min_edge_weight && e.confidence >= k.min_edge_confidence && keep(e))
                .cloned()
                .collect();
            sort_edges(&mut v);
            v.truncate(per);
            v
        };
        let hop = |front: &BTreeSet<String>| {
            let mut v = top(&|e| front.contains(&e.src_id));
            v.extend(top(&|e| front.contains(&e.dst_id)));
            v
        };
        let mut frontier: BTreeSet<String> = seeds.iter().map(|s| s.to_string()).collect();
        let mut found = hop(&frontier);
        if k.neighborhood_hops >= 2 {
            for e in found.clone() {
                frontier.insert(e.src_id);
                frontier.insert(e.dst_id);
            }
            found.extend(hop(&frontier));
        }
        let mut by_id: HashMap<String, NeighborEdge> = found.into_iter().map(|e| (e.id.clone(), e)).collect();
        let mut edges: Vec<NeighborEdge> = by_id.drain().map(|(_, e)| e).collect();
        sort_edges(&mut edges);
        edges.truncate(budget);
        edges.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn each_hop_in_one_statement_finds_the_reference_neighbourhood() {
        let db = cairn_spin::native_sqlite::NativeSqlite::in_memory();
        crate::schema::ensure(&db, "2026-12-01T00:00:00.000Z").unwrap();
        db.exec("PRAGMA foreign_keys=OFF", &[]).unwrap();
        // Seeds in three topics of 150 members each (both membership
        // edges), plus seed-to-member links; weights repeat, so ties fall
        // to the id.
        let mut all = Vec::new();
        let mut x: u64 = 7;
        let mut weight = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % 20) as f64 / 20.0 + 0.05
        };
        let mut add = |t: &str, s: String, d: String, w: f64, c: f64| {
            let id = format!("e{:05}", all.len());
            all.push(neighbor(&id, &s, &d, t, w, c));
        };
        for h in 0..3 {
            for m in 0..150 {
                let (w, c) = (weight(), weight());
                add("part_of", format!("m{h}-{m}"), format!("topic{h}"), w, c);
                add("derived_from", format!("topic{h}"), format!("m{h}-{m}"), weight(), 0.8);
            }
        }
        for s in 0..12 {
            add("part_of", format!("s{s}"), format!("topic{}", s % 3), weight(), weight());
            add("related_to", format!("s{s}"), format!("m{}-{}", s % 3, s * 7), weight(), weight());
            add("related_to", format!("m{}-{}", (s + 1) % 3, s * 3), format!("s{s}"), weight(), weight());
        }
        for e in &all {
            db.exec(
                "INSERT INTO memory_edges (id, scope, type, src_id, dst_id, weight, confidence, created_at, commit_id) \
                 VALUES (?, 'sc', ?, ?, ?, ?, ?, 't', 'c')",
                &[
                    e.id.as_str().into(),
                    e.edge_type.as_str().into(),
                    e.src_id.as_str().into(),
                    e.dst_id.as_str().into(),
                    SqlValue::Real(e.weight),
                    SqlValue::Real(e.confidence),
                ],
            )
            .unwrap();
        }
        let seeds: Vec<String> = (0..12).map(|s| format!("s{s}")).collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let base = Knobs {
            limit: 24,
            neighborhood_hops: 2,
            max_nodes: 60,
            max_edges: 80,
            ranked_limit: 140,
            min_edge_weight: 0.0,
            min_edge_confidence: 0.0,
        };
        for k in [
            base,
            Knobs { max_edges: 100, ..base },
            Knobs { max_edges: 5, ..base },
            Knobs { neighborhood_hops: 1, ..base },
            Knobs { min_edge_weight: 0.4, min_edge_confidence: 0.3, ..base },
        ] {
            let got: Vec<String> = fetch_edges(&db, "sc", &seeds, &k).unwrap().into_iter().map(|e| e.id).collect();
            let want = reference_edges(&all, &seeds, &k);
            assert!(!want.is_empty());
            assert_eq!(got, want, "{k:?}");
        }
    }

    #[test]
    fn columns_skip_the_vector() {
        let c = node_columns();
        assert!(c.contains("NULL") && !c.contains("n.embedding,") && c.contains("n.embedding_status"));
    }
}
