//! Stage 1's lexical channel: BM25 over the full-text index of the nodes'
//! `title` and `text_summary` (kernel schema 9, `memory_nodes_fts`: SQLite
//! FTS5, Porter stemming, diacritics folded).
//!
//! The index holds every scope; a scope's rows carry its key as one token
//! (`sk`), so the MATCH itself keeps to the scope, and the join to
//! `memory_nodes` applies the tier and lane visibility in the same query —
//! a private memory of another agent is never a candidate, and no other
//! scope's row is ever read. BM25's document frequencies are those of the
//! whole index (every tenant's rows): they weigh terms, they reveal no row.
//!
//! The query text becomes an OR of its words without stopwords (the
//! question words and function words that would match everything), each
//! quoted, so no input can be read as FTS5 query syntax. A database without
//! FTS5 has no index; the channel then reports itself unavailable and recall
//! runs on vectors alone.

use crate::stored_rows::lane_visible_sql;
use cairn_core::ApiError;
use cairn_spin::sql::{Row, Sql, SqlValue};

/// Words a question is made of but evidence is not found by.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down", "each", "ever", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i",
    "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off",
    "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "s", "same", "she", "should", "so",
    "some", "such", "t", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this",
    "those", "to", "too", "up", "us", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "would", "yes", "you", "your", "yours",
];

/// Most words of a query used (the rest add little and cost time).
pub const MAX_TERMS: usize = 32;

/// The query's search words: lowercased runs of letters and digits, without
/// stopwords and repeats, in order.
pub fn terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let w = word.to_lowercase();
        if STOPWORDS.binary_search(&w.as_str()).is_ok() || out.contains(&w) {
            continue;
        }
        out.push(w);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// A scope key as the one token the index stores it as.
pub fn scope_token(scope_key: &str) -> String {
    let mut s = String::with_capacity(1 + 2 * scope_key.len());
    s.push('s');
    for b in scope_key.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The FTS5 MATCH expression for `query` in one scope; `None` when the
/// query has no search words.
pub fn match_expression(scope_key: &str, query: &str) -> Option<String> {
    let words = terms(query);
    if words.is_empty() {
        return None;
    }
    // Words are letters and digits only, so quoting cannot be escaped.
    let ors: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    Some(format!("sk : \"{}\" AND body : ({})", scope_token(scope_key), ors.join(" OR ")))
}

/// A lexical hit: the node, its write-order number, and its BM25 score
/// (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub node_type: String,
    /// Topic state / rule state (see `seeds::SEED_STATE_SQL`).
    pub state: Option<String>,
    pub seq: Option<i64>,
    pub bm25: f64,
}

/// What the channel found.
#[derive(Debug, Clone, Default)]
pub struct Lexical {
    pub hits: Vec<Hit>,
    /// False when this database has no full-text index.
    pub available: bool,
    pub terms: usize,
}

/// The best `limit` visible hits for `query` in a scope; binds (match,
/// scope, agent, team, limit).
pub fn search(
    db: &dyn Sql,
    scope_key: &str,
    query: &str,
    agent: Option<&str>,
    team: Option<&str>,
    limit: usize,
    seed_state_sql: &str,
) -> Result<Lexical, ApiError> {
    let Some(expr) = match_expression(scope_key, query) else {
        return Ok(Lexical { hits: Vec::new(), available: true, terms: 0 });
    };
    let sql = format!(
        "SELECT n.id, n.type, {seed_state_sql}, n.seq, -bm25(memory_nodes_fts, 0.0, 1.0) \
         FROM memory_nodes_fts JOIN memory_nodes n ON n.rowid = memory_nodes_fts.rowid \
         WHERE memory_nodes_fts MATCH ? AND n.scope = ? AND n.tier IN ('hot', 'warm') AND {} \
         ORDER BY bm25(memory_nodes_fts, 0.0, 1.0) LIMIT ?",
        lane_visible_sql("n")
    );
    let params = [
        expr.into(),
        scope_key.into(),
        agent.map(str::to_string).into(),
        team.map(str::to_string).into(),
        SqlValue::Integer(limit as i64),
    ];
    let rows = match db.query(&sql, &params) {
        Ok(rows) => rows,
        // Schema 9 on a SQLite without FTS5: no index, no lexical channel.
        Err(e) if e.message.contains("no such table: memory_nodes_fts") => {
            return Ok(Lexical { hits: Vec::new(), available: false, terms: 0 });
        }
        Err(e) => return Err(e),
    };
    Ok(Lexical { hits: rows.iter().map(hit).collect(), available: true, terms: terms(query).len() })
}

fn hit(r: &Row) -> Hit {
    Hit {
        id: r.string(0),
        node_type: r.text(1).unwrap_or_default().to_string(),
        state: r.text(2).map(str::to_string),
        seq: (!r.is_null(3)).then(|| r.int(3)),
        bm25: r.real(4),
    }
}

/// Whether this database has the full-text index (for `/health`).
pub fn available(db: &dyn Sql) -> Result<bool, ApiError> {
    match db.query_one("SELECT enabled FROM memory_features WHERE name = 'lexical_index'", &[]) {
        Ok(row) => Ok(row.is_some_and(|r| r.int(0) == 1)),
        Err(e) if e.message.contains("no such table") => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]), "keep STOPWORDS sorted");
    }

    #[test]
    fn a_question_becomes_its_search_words() {
        assert_eq!(terms("When did Melanie paint a sunrise?"), ["melanie", "paint", "sunrise"]);
        assert_eq!(terms("What's Caroline's identity—and HER identity?"), ["caroline", "identity"]);
        assert_eq!(terms("Ünïcode café, 7 May 2023"), ["ünïcode", "café", "7", "may", "2023"]);
        assert!(terms("what is it?").is_empty());
        assert_eq!(terms(&"word ".repeat(100)).len(), 1);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
    }

    #[test]
    fn match_expressions_cannot_carry_query_syntax() {
        let e = match_expression("default", "sunrise\" OR NEAR(x) * \"sk:").unwrap();
        assert_eq!(e, "sk : \"s64656661756c74\" AND body : (\"sunrise\" OR \"near\" OR \"x\" OR \"sk\")");
        assert_eq!(match_expression("default", "why is it"), None);
        assert_eq!(scope_token("tenant:a::scope:b"), "s74656e616e743a613a3a73636f70653a62");
    }
}
