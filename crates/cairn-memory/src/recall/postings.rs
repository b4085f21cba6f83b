//! The lexical channel's index on PostgreSQL: a postings table
//! (`memory_lexemes`, kernel schema 15 there), one row per distinct term
//! of a written node, keyed `(term, node_rowid)`.
//!
//! **Why not `tsvector`.** The channel's bounded work ([`super::lexical`])
//! rests on two reads per word: its matches counted up to a bound, and its
//! most recent matches (`ORDER BY rowid DESC LIMIT n`). A GIN index over a
//! `tsvector` answers neither without reading every match of the word (a
//! bitmap scan, then a sort), so a common word would cost what the scope
//! holds; a B-tree on `(term, node_rowid)` answers both by reading
//! backwards from the word's newest posting. It needs no extension
//! (`unaccent`, `pg_trgm`) a managed PostgreSQL may not offer.
//!
//! **Terms are made here**, as FTS5's tokenizer makes them inside SQLite:
//! the same words as the document and the query are split into, each
//! lowercased, its diacritics folded (`é` → `e`, FTS5's
//! `remove_diacritics 2`), stemmed (Snowball English, Porter's successor:
//! `painting` → `paint`; FTS5 runs Porter's original, so a few words stem
//! differently on the two backends, each consistent with itself), then
//! prefixed with the scope's vocabulary prefix.
//!
//! Deletions follow by `ON DELETE CASCADE` from `memory_nodes`, as the
//! FTS5 trigger does on SQLite.

use cairn_core::ApiError;
use cairn_spin::sql::{Sql, SqlValue};
use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A word as the index stores it, without the scope's prefix: lowercased,
/// diacritics folded, stemmed.
pub fn normalized(word: &str) -> String {
    let folded: String = word.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    Stemmer::create(Algorithm::English).stem(&folded).into_owned()
}

/// `word` of the scope whose prefix is `prefix` as a term of the index.
pub fn term(prefix: &str, word: &str) -> String {
    let mut t = String::with_capacity(prefix.len() + word.len());
    t.push_str(prefix);
    t.push_str(&normalized(word));
    t
}

/// The distinct terms of a node's words, in first-seen order.
pub fn document_terms<'a>(prefix: &str, words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words {
        let t = term(prefix, w);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Most terms bound in one INSERT (PostgreSQL takes 65,535 parameters; a
/// node's text is bounded far below, this only keeps a statement small).
const TERMS_PER_INSERT: usize = 500;

/// Stores the postings of the node `node_id` (inside the caller's
/// transaction, one statement per [`TERMS_PER_INSERT`] terms).
pub fn insert(db: &dyn Sql, node_id: &str, terms: &[String]) -> Result<(), ApiError> {
    for chunk in terms.chunks(TERMS_PER_INSERT) {
        // `?1` is the node, the terms are `?2` on.
        let rows: Vec<String> = (2..2 + chunk.len()).map(|n| format!("(?{n})")).collect();
        let mut params = Vec::with_capacity(chunk.len() + 1);
        params.push(SqlValue::from(node_id));
        params.extend(chunk.iter().map(SqlValue::from));
        db.exec(
            &format!(
                "INSERT INTO memory_lexemes (term, node_rowid) SELECT t.term, n.rowid FROM memory_nodes n, \
                 (VALUES {}) AS t (term) WHERE n.id = ?1 ON CONFLICT DO NOTHING",
                rows.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// One word's matches, counted up to `bound` (the term at `?n`).
pub fn count_sql(n: usize, bound: usize) -> String {
    format!("(SELECT count(*) FROM (SELECT 1 FROM memory_lexemes WHERE term = ?{n} LIMIT {bound}) c)")
}

/// One word's most recent matches, newest first: `(i, rowid)` rows for
/// word `i` (the term at `?n`).
pub fn window_sql(i: usize, n: usize, limit: usize) -> String {
    format!(
        "SELECT {i}, r FROM (SELECT node_rowid AS r FROM memory_lexemes WHERE term = ?{n} \
         ORDER BY node_rowid DESC LIMIT {limit}) w{i}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_lowercased_and_stemmed() {
        assert_eq!(normalized("Painting"), "paint");
        assert_eq!(normalized("paints"), "paint");
        assert_eq!(normalized("Café"), "cafe");
        assert_eq!(normalized("ÜNÏCODE"), normalized("unicode"));
        assert_eq!(normalized("sunrises"), normalized("sunrise"));
        assert_eq!(normalized("7pm"), "7pm");
        assert_eq!(normalized("2023"), "2023");
    }

    #[test]
    fn a_document_holds_each_term_once_with_its_scope_prefix() {
        let terms = document_terms("xabc_", ["Paint", "painting", "sky", "Sky"].into_iter());
        assert_eq!(terms, ["xabc_paint", "xabc_sky"]);
        assert_eq!(term("xabc_", "Painted"), "xabc_paint");
    }

    #[test]
    fn statements_bind_the_term_they_name() {
        assert!(count_sql(3, 501).contains("term = ?3 LIMIT 501"));
        assert!(window_sql(0, 1, 64).starts_with("SELECT 0, r FROM"));
    }
}
