//! Spreading activation and scoring (reference §6.2 step 4).
//!
//! Seeds start at `clamp01(0.75·similarity + 0.25·salience)`. Then,
//! `neighborhood_hops` times, every active node passes
//! `activation · typeWeight · weight · confidence · 0.5` across each incident
//! edge (undirected; `derived_from` 1.0, `part_of` 0.9, `related_to` 0.6),
//! each node keeping the largest it receives or already has. A node's score
//! is `0.7·activation + 0.15·confidence + 0.15·salience`. The caller has
//! already left out draft topics, nodes that are not `ready`, and their edges.

use rustc_hash::FxHashMap as HashMap;

/// A node taking part in scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreNode {
    pub id: String,
    pub salience: f64,
    pub confidence: f64,
    /// Cosine similarity to the query for seeds.
    pub similarity: Option<f64>,
}

/// An edge taking part in scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreEdge {
    pub src: String,
    pub dst: String,
    pub edge_type: String,
    pub weight: f64,
    pub confidence: f64,
}

/// One ranked node.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub id: String,
    pub activation: f64,
    pub score: f64,
}

pub fn type_weight(edge_type: &str) -> f64 {
    match edge_type {
        "derived_from" => 1.0,
        "part_of" => 0.9,
        "related_to" => 0.6,
        _ => 0.0,
    }
}

/// Every node ranked by score (highest first; ties by id).
pub fn rank(nodes: &[ScoreNode], edges: &[ScoreEdge], hops: i64) -> Vec<Ranked> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut act: Vec<f64> = nodes
        .iter()
        .map(|n| n.similarity.map(|s| (0.75 * s + 0.25 * n.salience).clamp(0.0, 1.0)).unwrap_or(0.0))
        .collect();
    // Undirected adjacency over edges whose both ends take part.
    let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nodes.len()];
    for e in edges {
        if let (Some(&a), Some(&b)) = (index.get(e.src.as_str()), index.get(e.dst.as_str())) {
            let f = type_weight(&e.edge_type) * e.weight * e.confidence * 0.5;
            adj[a].push((b, f));
            adj[b].push((a, f));
        }
    }
    for _ in 0..hops.max(0) {
        let mut next = act.clone();
        for (i, a) in act.iter().enumerate() {
            if *a <= 0.0 {
                continue;
            }
            for (j, f) in &adj[i] {
                let passed = a * f;
                if passed > next[*j] {
                    next[*j] = passed;
                }
            }
        }
        act = next;
    }
    let mut ranked: Vec<Ranked> = nodes
        .iter()
        .zip(&act)
        .map(|(n, a)| Ranked {
            id: n.id.clone(),
            activation: *a,
            score: 0.7 * a + 0.15 * n.confidence + 0.15 * n.salience,
        })
        .collect();
    ranked.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.id.cmp(&y.id)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, sim: Option<f64>) -> ScoreNode {
        ScoreNode { id: id.into(), salience: 0.5, confidence: 0.5, similarity: sim }
    }

    fn edge(src: &str, dst: &str, t: &str, w: f64, c: f64) -> ScoreEdge {
        ScoreEdge { src: src.into(), dst: dst.into(), edge_type: t.into(), weight: w, confidence: c }
    }

    #[test]
    fn seeds_activate_and_spread_along_typed_edges() {
        let nodes = [node("seed", Some(0.9)), node("topic", None), node("far", None), node("alone", None)];
        let edges = [edge("seed", "topic", "part_of", 0.9, 0.9), edge("far", "topic", "related_to", 1.0, 1.0)];
        let one = rank(&nodes, &edges, 1);
        let get = |r: &[Ranked], id: &str| r.iter().find(|x| x.id == id).unwrap().clone();
        let a0 = 0.75 * 0.9 + 0.25 * 0.5;
        assert!((get(&one, "seed").activation - a0).abs() < 1e-12);
        let a1 = a0 * 0.9 * 0.9 * 0.9 * 0.5;
        assert!((get(&one, "topic").activation - a1).abs() < 1e-12);
        assert_eq!(get(&one, "far").activation, 0.0, "one hop only");
        let two = rank(&nodes, &edges, 2);
        assert!((get(&two, "far").activation - a1 * 0.6 * 0.5).abs() < 1e-12, "undirected, typed");
        assert_eq!(get(&two, "alone").activation, 0.0);
        assert!((get(&two, "seed").score - (0.7 * a0 + 0.15)).abs() < 1e-12);
        assert_eq!(two[0].id, "seed");
        // Ties break by id, so the order is stable.
        assert_eq!(two.last().unwrap().id, "alone");
    }

    #[test]
    fn activation_is_clamped_and_keeps_the_maximum() {
        let mut s = node("s", Some(1.0));
        s.salience = 1.0;
        let nodes = [s, node("t", Some(0.2))];
        let r = rank(&nodes, &[edge("s", "t", "derived_from", 1.0, 1.0)], 2);
        assert_eq!(r[0].activation, 1.0);
        // t's own seed activation (0.275) is below what s passes (0.5): it takes the larger.
        assert!((r[1].activation - 0.5).abs() < 1e-12);
    }
}
