//! Stage 1 by mode (`stage1_mode`): `dense` seeds by vector similarity alone
//! (the reference's stage 1, [`seeds`]); `lexical` by BM25 alone
//! ([`lexical`]); `hybrid` (recall_text's default) fuses both and lifts
//! neighbours ([`hybrid`]). `recall`, which has no query text, is dense.
//!
//! Hybrid reads, in one snapshot: the dense pool (`limit`, as dense mode
//! reads it) and the lexical pool (`max(50, 2·limit)`), the vectors of
//! lexical-only candidates, the write-order numbers of the dense ones, and
//! the ±2 neighbours of the best `max(8, limit/2)` — four statements besides
//! the dense channel's own. (On the LoCoMo dev split a dense pool of 50 and
//! neighbours of the best 24 scored the same, for twice the reads.)

use super::hybrid::{self, Candidate, Weights};
use super::lexical;
use super::ms;
use super::seeds::{self, Seed, SeedQuery, Stage1, cosine_with_blob, seedable_row};
use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue, placeholders};
use std::collections::HashMap;

/// Which channels seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dense,
    Lexical,
    Hybrid,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Dense => "dense",
            Mode::Lexical => "lexical",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// The stage-1 knobs of a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage1Knobs {
    pub mode: Mode,
    pub weights: Weights,
}

/// What the lexical side did, for debug and observability.
#[derive(Debug, Clone, Default)]
pub struct LexicalReport {
    pub available: bool,
    pub terms: usize,
    /// Words left out as too common, and whether only recent matches were
    /// scored (see `lexical::plan`).
    pub dropped_terms: Vec<String>,
    pub recent_only: bool,
    pub hits: usize,
    pub dense_candidates: usize,
    pub neighbors_added: usize,
    /// The whole of hybrid/lexical stage 1, and its parts: the full-text
    /// query, the dense channel, the cosines and write order of the
    /// one-channel candidates, the neighbours.
    pub ms: f64,
    pub fts_ms: f64,
    pub dense_ms: f64,
    pub fill_ms: f64,
    pub neighbors_ms: f64,
}

/// Stage 1's result: the dense channel's own report (mode, index work),
/// the seeds, and the lexical report.
pub struct Found {
    pub dense: Stage1,
    pub seeds: Vec<Seed>,
    pub lexical: Option<LexicalReport>,
    pub mode: Mode,
}

/// Runs stage 1 in `knobs.mode` for `query_text` (empty for `recall`).
pub fn find(db: &dyn Sql, q: &SeedQuery, query_text: &str, knobs: Stage1Knobs) -> Result<Found, ApiError> {
    let mode = if query_text.is_empty() { Mode::Dense } else { knobs.mode };
    if mode == Mode::Dense {
        let dense = seeds::find_seeds(db, q)?;
        let seeds = dense.seeds.clone();
        return Ok(Found { dense, seeds, lexical: None, mode });
    }
    let pool = (2 * q.limit).max(50);
    let t = std::time::Instant::now();
    let weights = if mode == Mode::Lexical { Weights { lexical: 1.0, ..knobs.weights } } else { knobs.weights };
    let lex = lexical::search(db, q.scope_key, query_text, q.consumer_agent, q.consumer_team, pool)?;
    let mut report = LexicalReport {
        available: lex.available,
        terms: lex.terms,
        dropped_terms: lex.dropped_terms.clone(),
        recent_only: lex.recent_only,
        hits: lex.hits.len(),
        fts_ms: ms(t),
        ..LexicalReport::default()
    };
    if !lex.available {
        // No full-text index in this database: vectors alone.
        let dense = seeds::find_seeds(db, q)?;
        let seeds = dense.seeds.clone();
        return Ok(Found { dense, seeds, lexical: Some(report), mode: Mode::Dense });
    }
    let td = std::time::Instant::now();
    let dense =
        if mode == Mode::Hybrid { seeds::find_seeds(db, q)? } else { Stage1 { mode: "none", ..Stage1::default() } };
    report.dense_ms = ms(td);
    let tf = std::time::Instant::now();
    report.dense_candidates = dense.seeds.len();

    // Candidates by id: the lexical hits, then the dense ones.
    let mut cands: Vec<Candidate> = Vec::with_capacity(lex.hits.len() + dense.seeds.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for h in &lex.hits {
        let seedable = seeds::seedable_parts(&h.node_type, h.state.as_deref());
        at.insert(h.id.clone(), cands.len());
        cands.push(Candidate { id: h.id.clone(), seq: h.seq, cosine: None, bm25: Some(h.bm25), seedable });
    }
    let mut dense_only: Vec<&str> = Vec::new();
    for s in &dense.seeds {
        match at.get(&s.id) {
            Some(&i) => cands[i].cosine = Some(s.similarity),
            None => {
                at.insert(s.id.clone(), cands.len());
                dense_only.push(&s.id);
                // Dense seeds are seedable by construction.
                cands.push(Candidate {
                    id: s.id.clone(),
                    seq: None,
                    cosine: Some(s.similarity),
                    bm25: None,
                    seedable: true,
                });
            }
        }
    }
    if mode == Mode::Hybrid {
        // Cosines of the lexical-only candidates that have a vector.
        let lexical_only: Vec<&str> =
            lex.hits.iter().map(|h| h.id.as_str()).filter(|id| cands[at[*id]].cosine.is_none()).collect();
        let mut scratch = Vec::with_capacity(q.unit_query.len());
        for chunk in lexical_only.chunks(500) {
            for r in seeds::vectors_of(db, chunk)? {
                if let Some(c) = r.blob(1).and_then(|b| cosine_with_blob(q.unit_query, b, &mut scratch)) {
                    cands[at[r.text(0).unwrap_or_default()]].cosine = Some(c);
                }
            }
        }
        // Write-order numbers of the dense-only candidates.
        if !dense_only.is_empty() {
            let params: Vec<SqlValue> = dense_only.iter().map(|id| SqlValue::from(*id)).collect();
            let rows = db.query(
                &format!("SELECT id, seq FROM memory_nodes WHERE id IN ({})", placeholders(dense_only.len())),
                &params,
            )?;
            for r in rows {
                if !r.is_null(1) {
                    cands[at[r.text(0).unwrap_or_default()]].seq = Some(r.int(1));
                }
            }
        }
    }

    report.fill_ms = ms(tf);

    // Neighbours of the best candidates.
    let tn = std::time::Instant::now();
    if knobs.weights.neighbor > 0.0 {
        let own = hybrid::own_scores(&cands, weights);
        let from = hybrid::expand_from(&cands, &own, (q.limit / 2).max(8));
        let known: Vec<i64> = cands.iter().filter_map(|c| c.seq).collect();
        let wanted = hybrid::neighbor_seqs(&from, &known);
        if !wanted.is_empty() {
            let mut params = vec![SqlValue::from(q.scope_key)];
            params.extend(wanted.iter().map(|s| SqlValue::Integer(*s)));
            params.push(q.consumer_agent.map(str::to_string).into());
            params.push(q.consumer_team.map(str::to_string).into());
            let rows = db.query(
                &format!(
                    "SELECT n.id, n.type, {}, n.seq, coalesce(n.embedding, v.vector) FROM memory_nodes n \
                     LEFT JOIN memory_derived_vectors v ON v.node_id = n.id \
                     WHERE n.scope = ? AND n.seq IN ({}) AND n.tier IN ('hot', 'warm') AND {}",
                    seeds::seed_state_sql(db.dialect()),
                    placeholders(wanted.len()),
                    crate::stored_rows::lane_visible_sql("n")
                ),
                &params,
            )?;
            let mut scratch = Vec::with_capacity(q.unit_query.len());
            for r in rows {
                let id = r.string(0);
                if at.contains_key(&id) {
                    continue;
                }
                let cosine = if mode == Mode::Hybrid {
                    r.blob(4).and_then(|b| cosine_with_blob(q.unit_query, b, &mut scratch))
                } else {
                    None
                };
                at.insert(id.clone(), cands.len());
                cands.push(Candidate { id, seq: Some(r.int(3)), cosine, bm25: None, seedable: seedable_row(&r) });
                report.neighbors_added += 1;
            }
        }
    }

    report.neighbors_ms = ms(tn);
    let ranked = hybrid::rank(&cands, weights, q.limit);
    let seeds =
        ranked.into_iter().map(|s| Seed { id: s.id, similarity: s.cosine.unwrap_or(0.0), score: s.score }).collect();
    report.ms = ms(t);
    Ok(Found { dense, seeds, lexical: Some(report), mode })
}
