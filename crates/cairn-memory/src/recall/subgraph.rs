//! The returned subgraph (reference §6.2 step 5).
//!
//! Core nodes: the (ready) seeds, then the ranked nodes in rank order, up
//! to `max_nodes`. Draft topics are not scored, but for explainability the
//! ones attached to the core by `part_of`/`derived_from` edges come along,
//! best attached first (summed `weight·confidence`), at most
//! `min(10, max_nodes/5)`: appended while there is room, otherwise each
//! replaces the lowest-ranked non-seed node. Edges: those with both ends in
//! the output, by `weight·confidence` (descending, ties by id), at most
//! `max_edges`.

use super::activation::Ranked;
use super::graph::NeighborEdge;
use crate::stored_rows::StoredNode;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Whether a node is a draft topic.
pub fn is_draft_topic(n: &StoredNode) -> bool {
    n.node_type == "topic" && n.slots.get("topic_state").and_then(|v| v.as_str()) == Some("draft")
}

/// The output: node ids in order, and the chosen edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Subgraph {
    pub node_ids: Vec<String>,
    pub edges: Vec<NeighborEdge>,
    /// Core nodes cut by `max_nodes` (for trajectory).
    pub dropped_nodes: usize,
    /// Edges cut by `max_edges`.
    pub dropped_edges: usize,
}

pub fn select(
    seed_ids: &[&str],
    ranked: &[Ranked],
    nodes: &HashMap<String, StoredNode>,
    edges: &[NeighborEdge],
    max_nodes: usize,
    max_edges: usize,
) -> Subgraph {
    let scored: HashSet<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    let mut core: Vec<&str> = Vec::new();
    let mut in_core: HashSet<&str> = HashSet::default();
    let candidates =
        seed_ids.iter().copied().filter(|id| scored.contains(id)).chain(ranked.iter().map(|r| r.id.as_str()));
    let mut wanted = 0;
    for id in candidates {
        if in_core.contains(id) {
            continue;
        }
        wanted += 1;
        if core.len() < max_nodes {
            core.push(id);
            in_core.insert(id);
        }
    }
    let dropped_nodes = wanted - core.len();

    // Draft topics attached to the core.
    let mut attach: HashMap<&str, f64> = HashMap::default();
    for e in edges {
        if e.edge_type != "part_of" && e.edge_type != "derived_from" {
            continue;
        }
        for (a, b) in [(&e.src_id, &e.dst_id), (&e.dst_id, &e.src_id)] {
            if in_core.contains(a.as_str()) && nodes.get(b.as_str()).is_some_and(is_draft_topic) {
                *attach.entry(b.as_str()).or_default() += e.weight * e.confidence;
            }
        }
    }
    let mut drafts: Vec<(&str, f64)> = attach.into_iter().collect();
    drafts.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    drafts.truncate((max_nodes / 5).min(10));
    let seed_set: HashSet<&str> = seed_ids.iter().copied().collect();
    for (draft, _) in drafts {
        if core.len() < max_nodes {
            core.push(draft);
        } else if let Some(pos) =
            core.iter().rposition(|id| !seed_set.contains(id) && !nodes.get(*id).is_some_and(is_draft_topic))
        {
            core.remove(pos);
            core.push(draft);
        }
    }

    let out: HashSet<&str> = core.iter().copied().collect();
    let mut chosen: Vec<&NeighborEdge> =
        edges.iter().filter(|e| out.contains(e.src_id.as_str()) && out.contains(e.dst_id.as_str())).collect();
    chosen
        .sort_by(|a, b| (b.weight * b.confidence).total_cmp(&(a.weight * a.confidence)).then_with(|| a.id.cmp(&b.id)));
    let dropped_edges = chosen.len().saturating_sub(max_edges);
    chosen.truncate(max_edges);
    Subgraph {
        node_ids: core.into_iter().map(str::to_string).collect(),
        edges: chosen.into_iter().cloned().collect(),
        dropped_nodes,
        dropped_edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored_rows::fixtures;
    use serde_json::json;

    fn node(id: &str, t: &str, state: Option<&str>) -> StoredNode {
        let mut n = fixtures::node(id, t);
        if let Some(s) = state {
            n.slots.insert("topic_state".into(), json!(s));
        }
        n
    }

    fn edge(id: &str, s: &str, d: &str, t: &str, w: f64) -> NeighborEdge {
        crate::recall::graph::tests::neighbor(id, s, d, t, w, w)
    }

    fn ranked(ids: &[&str]) -> Vec<Ranked> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Ranked { id: id.to_string(), activation: 1.0, score: 1.0 - i as f64 * 0.1 })
            .collect()
    }

    #[test]
    fn draft_topic_is_swapped_in_for_explainability() {
        let nodes: HashMap<String, StoredNode> = [node("ev", "event", None), node("dt", "topic", Some("draft"))]
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let edges = [edge("e", "ev", "dt", "part_of", 0.9)];
        let g = select(&["ev"], &ranked(&["ev"]), &nodes, &edges, 60, 80);
        assert_eq!(g.node_ids, ["ev", "dt"]);
        assert_eq!(g.edges.len(), 1);
        // No room: the draft replaces the lowest-ranked non-seed node.
        let nodes: HashMap<String, StoredNode> = [
            node("ev", "event", None),
            node("a", "entity", None),
            node("b", "entity", None),
            node("c", "entity", None),
            node("d", "entity", None),
            node("dt", "topic", Some("draft")),
        ]
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
        let g = select(&["ev"], &ranked(&["ev", "a", "b", "c", "d"]), &nodes, &edges, 5, 80);
        assert_eq!(g.node_ids, ["ev", "a", "b", "c", "dt"]);
        // max_nodes below 5: no draft budget at all.
        let g = select(&["ev"], &ranked(&["ev", "a"]), &nodes, &edges, 4, 80);
        assert!(!g.node_ids.contains(&"dt".to_string()));
    }

    #[test]
    fn edges_need_both_ends_and_are_capped() {
        let nodes: HashMap<String, StoredNode> =
            ["a", "b", "c"].iter().map(|id| (id.to_string(), node(id, "event", None))).collect();
        let edges = [
            edge("e1", "a", "b", "related_to", 0.5),
            edge("e2", "a", "c", "related_to", 0.9),
            edge("e3", "a", "zz", "related_to", 1.0),
        ];
        let g = select(&["a"], &ranked(&["a", "b", "c"]), &nodes, &edges, 10, 1);
        assert_eq!(g.edges.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e2"]);
        assert_eq!(g.dropped_edges, 1);
        let g = select(&["a"], &ranked(&["a", "b", "c"]), &nodes, &edges, 2, 10);
        assert_eq!((g.node_ids.len(), g.dropped_nodes), (2, 1));
    }
}
