//! Hybrid stage 1: how the dense and lexical candidates become seeds. Pure.
//!
//! Designed on the LoCoMo dev split (docs/recall.md#hybrid-stage-1, where
//! the misses that shaped it are described):
//!
//! 1. **Fusion by score, not rank.** Each channel's score is scaled by its
//!    best candidate (BM25 / best BM25; max(0, cosine) / best cosine) and
//!    the two are mixed, `w·lexical + (1−w)·dense` (`stage1_lexical_weight`,
//!    default 0.5). A candidate only one channel found scores 0 on the
//!    other (its BM25 outside the lexical pool is small, not known).
//!    Reciprocal-rank fusion throws away how far ahead a clear winner is
//!    (on the dev split it was no better than BM25 alone).
//! 2. **Neighbours.** Evidence in a conversation is rarely one turn alone:
//!    the question a turn answers, the detail a turn adds, sit next to it.
//!    A memory's score is raised by its best neighbour in write order
//!    (`seq`, numbered by the write path): `s + n·max(s±1) + n/2·max(s±2)`
//!    (`stage1_neighbor_weight` n, default 0.3); the neighbours of the best
//!    candidates are fetched for that, and may seed themselves.
//!    A memory must relate to the query itself (own score > 0) to seed.
//! 3. **Evidence first.** Derived summaries (topics and concepts made by
//!    derivation: nodes without a write-order number) come after the
//!    memories that were written, so they never push a written memory out
//!    of the first `limit` seeds.
//!
//! Scores are scaled so the best seed has 1.0.

use std::collections::HashMap;

/// How the channels are mixed (request knobs, see `request`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Share of the lexical score, 0..1 (0 = dense only, 1 = lexical only).
    pub lexical: f64,
    /// How much a neighbour's score lifts a memory, 0..1 (0 = off).
    pub neighbor: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { lexical: 0.5, neighbor: 0.3 }
    }
}

/// A stage-1 candidate with what each channel knows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    /// Write order in the scope; `None` for derived nodes.
    pub seq: Option<i64>,
    /// Cosine to the query, when the node has a vector.
    pub cosine: Option<f64>,
    /// BM25, when the lexical channel found it.
    pub bm25: Option<f64>,
    /// Whether it may seed (type and state; see `seeds`).
    pub seedable: bool,
}

/// A fused, ordered seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: String,
    /// Stage-1 score, 0..1.
    pub score: f64,
    /// Before the neighbour lift (scaled like `score`).
    pub own: f64,
    pub cosine: Option<f64>,
    pub bm25: Option<f64>,
}

/// Each candidate's own score (step 1), by index.
pub fn own_scores(c: &[Candidate], w: Weights) -> Vec<f64> {
    let best_bm25 = c.iter().filter_map(|x| x.bm25).fold(0.0f64, f64::max);
    let best_cos = c.iter().filter_map(|x| x.cosine).fold(0.0f64, f64::max);
    c.iter()
        .map(|x| {
            let lex = match (x.bm25, best_bm25 > 0.0) {
                (Some(b), true) => (b / best_bm25).max(0.0),
                _ => 0.0,
            };
            let dense = match (x.cosine, best_cos > 0.0) {
                (Some(s), true) => (s.max(0.0) / best_cos).min(1.0),
                _ => 0.0,
            };
            w.lexical * lex + (1.0 - w.lexical) * dense
        })
        .collect()
}

/// The `n` best candidates by own score whose neighbours are worth
/// fetching (written memories only).
pub fn expand_from(c: &[Candidate], own: &[f64], n: usize) -> Vec<i64> {
    let mut order: Vec<usize> = (0..c.len()).filter(|&i| c[i].seq.is_some()).collect();
    order.sort_by(|&a, &b| own[b].total_cmp(&own[a]).then_with(|| c[a].id.cmp(&c[b].id)));
    order.into_iter().take(n).filter_map(|i| c[i].seq).collect()
}

/// The seq numbers around `seqs` (±1, ±2) that are not among them.
pub fn neighbor_seqs(seqs: &[i64], known: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for s in seqs {
        for d in [-2, -1, 1, 2] {
            let t = s + d;
            if t > 0 && !known.contains(&t) && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Steps 2 and 3: the seedable candidates, best first, at most `limit`.
pub fn rank(c: &[Candidate], w: Weights, limit: usize) -> Vec<Scored> {
    let own = own_scores(c, w);
    let by_seq: HashMap<i64, f64> = c.iter().zip(&own).filter_map(|(x, s)| x.seq.map(|q| (q, *s))).collect();
    let at = |q: i64| by_seq.get(&q).copied().unwrap_or(0.0);
    let mut scored: Vec<(bool, Scored)> = c
        .iter()
        .zip(&own)
        // A memory neither channel relates to the query (no shared word, no
        // vector yet) never seeds, whoever its neighbours are.
        .filter(|(x, s)| x.seedable && **s > 0.0)
        .map(|(x, s)| {
            let lift = match x.seq {
                Some(q) => w.neighbor * at(q - 1).max(at(q + 1)) + w.neighbor / 2.0 * at(q - 2).max(at(q + 2)),
                None => 0.0,
            };
            let derived = x.seq.is_none();
            (derived, Scored { id: x.id.clone(), score: s + lift, own: *s, cosine: x.cosine, bm25: x.bm25 })
        })
        .collect();
    scored.sort_by(|(da, a), (db, b)| da.cmp(db).then(b.score.total_cmp(&a.score)).then_with(|| a.id.cmp(&b.id)));
    scored.truncate(limit);
    let top = scored.iter().map(|(_, s)| s.score).fold(0.0f64, f64::max);
    scored
        .into_iter()
        .map(|(_, mut s)| {
            if top > 0.0 {
                s.score /= top;
                s.own /= top;
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: &str, seq: Option<i64>, cosine: Option<f64>, bm25: Option<f64>) -> Candidate {
        Candidate { id: id.into(), seq, cosine, bm25, seedable: true }
    }

    #[test]
    fn channels_are_scaled_by_their_best_and_mixed() {
        let c = [
            cand("a", Some(1), Some(0.8), Some(10.0)),
            cand("b", Some(5), Some(0.4), None),
            cand("c", Some(9), None, Some(5.0)),
        ];
        let own = own_scores(&c, Weights { lexical: 0.5, neighbor: 0.0 });
        assert_eq!(own, vec![1.0, 0.25, 0.25]);
        let dense_only = own_scores(&c, Weights { lexical: 0.0, neighbor: 0.0 });
        assert_eq!(dense_only, vec![1.0, 0.5, 0.0]);
        // A negative cosine counts as no similarity, not as a penalty.
        let neg =
            own_scores(&[cand("x", None, Some(-0.3), None), cand("y", None, Some(0.6), None)], Weights::default());
        assert_eq!(neg[0], 0.0);
    }

    #[test]
    fn a_neighbour_lifts_the_turn_next_to_it() {
        // b (seq 11) is weak alone but sits next to the strong a (seq 10);
        // d is as weak as b with no neighbour.
        let c = [
            cand("a", Some(10), Some(0.9), Some(9.0)),
            cand("b", Some(11), Some(0.3), None),
            cand("d", Some(40), Some(0.35), None),
        ];
        let r = rank(&c, Weights::default(), 10);
        let ids: Vec<&str> = r.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
        assert_eq!(r[0].score, 1.0, "scaled so the best seed has 1.0");
        let off = rank(&c, Weights { lexical: 0.5, neighbor: 0.0 }, 10);
        let ids: Vec<&str> = off.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "d", "b"], "without the lift, own scores decide");
    }

    #[test]
    fn derived_summaries_come_after_written_memories() {
        let c = [
            cand("topic", None, Some(0.99), Some(20.0)),
            cand("turn1", Some(1), Some(0.2), None),
            cand("turn2", Some(7), Some(0.1), None),
        ];
        let r = rank(&c, Weights::default(), 2);
        let ids: Vec<&str> = r.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["turn1", "turn2"], "the topic never takes a written memory's place");
        let all = rank(&c, Weights::default(), 3);
        assert_eq!(all[2].id, "topic");
    }

    #[test]
    fn unseedable_candidates_lift_neighbours_but_never_seed() {
        let mut draft = cand("draft", Some(3), Some(0.9), Some(9.0));
        draft.seedable = false;
        let c = [draft, cand("next", Some(4), Some(0.2), None), cand("far", Some(20), Some(0.25), None)];
        let r = rank(&c, Weights::default(), 5);
        let ids: Vec<&str> = r.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["next", "far"]);
    }

    #[test]
    fn a_neighbour_alone_is_no_reason_to_seed() {
        let c = [cand("hit", Some(1), None, Some(4.0)), cand("pending", Some(2), None, None)];
        let ids: Vec<String> = rank(&c, Weights::default(), 5).into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["hit"], "no word, no vector: not a seed");
    }

    #[test]
    fn neighbours_to_fetch() {
        let c = [
            cand("a", Some(10), Some(0.9), None),
            cand("b", Some(2), Some(0.1), None),
            cand("t", None, Some(1.0), None),
        ];
        let own = own_scores(&c, Weights::default());
        assert_eq!(expand_from(&c, &own, 1), vec![10], "derived nodes have no neighbours");
        assert_eq!(neighbor_seqs(&[10, 2], &[10, 2]), vec![8, 9, 11, 12, 1, 3, 4]);
    }
}
