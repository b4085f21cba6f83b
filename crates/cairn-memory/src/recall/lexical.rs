//! Stage 1's lexical channel: BM25 over the full-text index of the written
//! memories' `title` and `text_summary`. On SQLite the index is FTS5
//! (kernel schema 9, `memory_nodes_fts`: Porter stemming, diacritics
//! folded); on PostgreSQL a postings table (schema 15, [`postings`]) that
//! answers the same two questions per word: how many matches (up to a
//! bound), and which are the newest. Everything else here is the same on
//! both.
//!
//! **One index, a vocabulary per scope.** Each word is stored with its
//! scope's prefix (`x<12 hex of sha256(scope)>_word`), so a scope's words
//! are terms of their own: a MATCH reads only that scope's postings, BM25's
//! document frequencies are the scope's, and no other tenant's row is ever a
//! candidate or moves a score. The text is split here (runs of letters and
//! digits, the same rule as the query's), FTS5 lowercases, folds diacritics
//! and stems each prefixed token (the same on both sides, so they match).
//! The write path adds a node's row in its own transaction ([`index_node`]);
//! deletions (erasure, retention) follow by trigger. Derived topics and
//! summaries are not indexed: they are found by their vectors.
//!
//! **Bounded work.** A query is an OR of its words without stopwords, each
//! quoted (no input is read as FTS5 syntax), and BM25 is computed for at
//! most [`MAX_MATCHES`] memories ([`plan`]): each word's matches are
//! counted first (each count stops at the bound, so it costs little); the
//! rarest words are kept while their matches fit, and the commonest
//! dropped — a speaker's name that half a conversation carries adds little
//! to BM25 and would only cost. When even the rarest word matches more than
//! the bound (a big scope, a question made of its everyday words), the most
//! recent matches of all the words are scored and older ones are left to
//! the dense side. Tier and lane visibility are applied in the same
//! statement as the scoring.
//!
//! **BM25 over the recent slice.** FTS5's `bm25()` takes each word's
//! document frequency by walking the word's whole posting list on every
//! query, so a plan of common words cost what the scope holds (1.2 ms of a
//! 1.3 ms query at 100k memories, growing with the scope), however few
//! matches it scored. A recent-only plan is therefore scored here instead
//! ([`slice_floor`], [`slice_scores`]): each word's most recent matches (the window
//! [`MAX_MATCHES`] shares between the words), the slice of the scope newer
//! than the oldest match every window still reaches (inside it each word's
//! matches are all known), and BM25 with the slice's own statistics —
//! its memories and each word's matches in it — with term frequency 1 and
//! average length (memories are short). Older memories are left to the
//! dense side, as before.
//!
//! **On PostgreSQL** every plan is scored that way: the postings carry no
//! BM25, so an exact plan (each word's matches all known, at most
//! [`MAX_MATCHES`]) is a slice that spans the scope, scored with the
//! scope's memories and each word's matches. FTS5's exact plan uses real
//! term frequencies and lengths, so scores (and near ties) differ between
//! the backends; the matches differ only where the two stemmers do.
//!
//! A SQLite without FTS5 has no index; the channel then reports itself
//! unavailable and recall runs on vectors alone.

use super::postings;
use super::seeds::seed_state_sql;
use crate::stored_rows::lane_visible_sql_at;
use cairn_core::ApiError;
use cairn_spin::sql::{Dialect, Row, Sql, SqlValue};

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

/// Best matches read per hit wanted, so that memories the consumer may
/// not see (another agent's private lane, cold tiers) leave enough behind.
pub const VISIBILITY_HEADROOM: usize = 2;

/// Most matches BM25 is computed for, the most recent first.
pub const MAX_MATCHES: usize = 500;

/// The prefix a scope's words are stored with: `x` and 12 hex digits of
/// the sha256 of the scope key, then `_` (a token character of the index).
pub fn scope_prefix(scope_key: &str) -> String {
    let h = cairn_core::digest::sha256_hex(scope_key);
    format!("x{}_", &h[..12])
}

/// Runs of letters and digits, as both the document and the query are split.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// The indexed document of a node: every word of its title and text with
/// its scope's prefix.
pub fn document(scope_key: &str, title: Option<&str>, text: Option<&str>) -> String {
    let prefix = scope_prefix(scope_key);
    let mut out = String::new();
    for w in title.into_iter().chain(text).flat_map(words) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&prefix);
        out.push_str(w);
    }
    out
}

/// One word of a scope as an FTS5 string; words are letters and digits
/// only ([`terms`]), so the quoting cannot be escaped.
fn quoted(prefix: &str, word: &str) -> String {
    format!("\"{prefix}{word}\"")
}

/// `"p_w1" OR "p_w2" ...`: the MATCH expression for `words` of one scope.
fn or_of(prefix: &str, words: &[String]) -> String {
    let ors: Vec<String> = words.iter().map(|w| quoted(prefix, w)).collect();
    ors.join(" OR ")
}

/// How a query is searched, from each word's match count (capped at
/// `MAX_MATCHES + 1`): the words to use, and whether only the most recent
/// matches can be scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub words: Vec<String>,
    pub dropped: Vec<String>,
    pub recent_only: bool,
}

pub fn plan(words: &[String], counts: &[usize]) -> Plan {
    let mut order: Vec<usize> = (0..words.len()).collect();
    order.sort_by_key(|&i| (counts[i], i));
    let (mut keep, mut total) = (Vec::new(), 0usize);
    for &i in &order {
        if counts[i] == 0 {
            continue;
        }
        if total + counts[i] > MAX_MATCHES && !keep.is_empty() {
            break;
        }
        total += counts[i];
        keep.push(i);
    }
    if total > MAX_MATCHES {
        // The rarest word alone is too common: every word, recent matches.
        return Plan { words: words.to_vec(), dropped: Vec::new(), recent_only: true };
    }
    keep.sort_unstable();
    let dropped = (0..words.len()).filter(|i| counts[*i] > 0 && !keep.contains(i)).map(|i| words[i].clone()).collect();
    Plan { words: keep.into_iter().map(|i| words[i].clone()).collect(), dropped, recent_only: false }
}

/// Adds a node just written to the index (inside the write's
/// transaction); nothing when this database has no index.
pub fn index_node(
    db: &dyn Sql,
    node_id: &str,
    scope_key: &str,
    title: Option<&str>,
    text: Option<&str>,
) -> Result<(), ApiError> {
    if db.dialect() == Dialect::Postgres {
        let prefix = scope_prefix(scope_key);
        let terms = postings::document_terms(&prefix, title.into_iter().chain(text).flat_map(words));
        return if terms.is_empty() { Ok(()) } else { postings::insert(db, node_id, &terms) };
    }
    let doc = document(scope_key, title, text);
    if doc.is_empty() {
        return Ok(());
    }
    match db.exec(
        "INSERT INTO memory_nodes_fts (rowid, body) SELECT rowid, ? FROM memory_nodes WHERE id = ?",
        &[doc.into(), node_id.into()],
    ) {
        Err(e) if unavailable(&e) => Ok(()),
        other => other,
    }
}

/// Indexes every written node (SQLite's schema 9 and PostgreSQL's 15, in
/// the migration's transaction); derived nodes (no write-order number)
/// are left out.
pub fn backfill(db: &dyn Sql) -> Result<(), ApiError> {
    if !available(db)? {
        return Ok(());
    }
    let mut after = 0i64;
    loop {
        let rows = db.query(
            "SELECT rowid, scope, title, text_summary, id FROM memory_nodes WHERE rowid > ? AND seq IS NOT NULL \
             ORDER BY rowid LIMIT 1000",
            &[SqlValue::Integer(after)],
        )?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.int(0);
        for r in &rows {
            index_node(db, r.text(4).unwrap_or_default(), r.text(1).unwrap_or_default(), r.text(2), r.text(3))?;
        }
    }
}

/// A lexical hit: the node, its write-order number, and its BM25 score
/// (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub node_type: String,
    /// Topic state / rule state (see `seeds::seed_state_sql`).
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
    /// Words left out because commoner than the bound allows ([`plan`]).
    pub dropped_terms: Vec<String>,
    /// Only the most recent matches were scored.
    pub recent_only: bool,
}

fn unavailable(e: &ApiError) -> bool {
    e.message.contains("no such table: memory_nodes_fts")
}

/// Which index a database has: SQLite's FTS5 table, or PostgreSQL's
/// postings ([`postings`]). The channel's plan, slices and scoring are the
/// same over both; only how a word is looked up differs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Index {
    Fts5,
    Postings,
}

impl Index {
    fn of(db: &dyn Sql) -> Index {
        match db.dialect() {
            Dialect::Sqlite => Index::Fts5,
            Dialect::Postgres => Index::Postings,
        }
    }

    /// A query word of the scope with `prefix` as the index looks it up.
    fn term(self, prefix: &str, word: &str) -> SqlValue {
        match self {
            Index::Fts5 => quoted(prefix, word).into(),
            Index::Postings => postings::term(prefix, word).into(),
        }
    }

    /// The number of matches of the term at `?n`, counted up to `bound`.
    fn count_sql(self, n: usize, bound: usize) -> String {
        match self {
            Index::Fts5 => format!(
                "(SELECT count(*) FROM (SELECT 1 FROM memory_nodes_fts WHERE memory_nodes_fts MATCH ?{n} LIMIT {bound}))"
            ),
            Index::Postings => postings::count_sql(n, bound),
        }
    }

    /// `(i, rowid)` rows: the newest `limit` matches of the term at `?n`.
    fn window_sql(self, i: usize, n: usize, limit: usize) -> String {
        match self {
            Index::Fts5 => format!(
                "SELECT {i}, r FROM (SELECT rowid AS r FROM memory_nodes_fts WHERE memory_nodes_fts MATCH ?{n} \
                 ORDER BY rowid DESC LIMIT {limit})"
            ),
            Index::Postings => postings::window_sql(i, n, limit),
        }
    }
}

/// The best `limit` visible hits for `query` in a scope.
pub fn search(
    db: &dyn Sql,
    scope_key: &str,
    query: &str,
    agent: Option<&str>,
    team: Option<&str>,
    limit: usize,
) -> Result<Lexical, ApiError> {
    let index = Index::of(db);
    let words = terms(query);
    if words.is_empty() {
        return Ok(Lexical { available: true, ..Lexical::default() });
    }
    let prefix = scope_prefix(scope_key);
    // Each word's matches, counted up to the bound, in one statement.
    let counts_sql = (1..=words.len()).map(|n| index.count_sql(n, MAX_MATCHES + 1)).collect::<Vec<_>>().join(", ");
    let count_params: Vec<SqlValue> = words.iter().map(|w| index.term(&prefix, w)).collect();
    let counts: Vec<usize> = match db.query_one(&format!("SELECT {counts_sql}"), &count_params) {
        Ok(row) => row.map(|r| (0..words.len()).map(|i| r.int(i).max(0) as usize).collect()).unwrap_or_default(),
        Err(e) if unavailable(&e) => return Ok(Lexical::default()),
        Err(e) => return Err(e),
    };
    let plan = plan(&words, &counts);
    if plan.words.is_empty() {
        return Ok(Lexical { available: true, terms: words.len(), ..Lexical::default() });
    }
    let hits = match (plan.recent_only, index) {
        (false, Index::Fts5) => exact_hits(db, scope_key, &prefix, &plan.words, agent, team, limit)?,
        // The postings have no BM25 of their own: every match of the plan's
        // words (at most MAX_MATCHES, so each word's whole list) is scored
        // as a slice that spans the scope.
        (false, Index::Postings) => {
            let window = MAX_MATCHES + 1;
            sliced_hits(db, index, scope_key, &prefix, &plan.words, window, agent, team, limit)?
        }
        (true, _) => {
            let window = window(plan.words.len());
            sliced_hits(db, index, scope_key, &prefix, &plan.words, window, agent, team, limit)?
        }
    };
    Ok(Lexical {
        hits,
        available: true,
        terms: words.len(),
        dropped_terms: plan.dropped,
        recent_only: plan.recent_only,
    })
}

/// Who may see a hit: the scope (bound at `?s`), hot or warm, the
/// consumer's lane (agent and team at the next two numbers). `+n.scope`:
/// the hits are found by rowid, never by walking the scope's index.
fn visible_hit_sql(dialect: Dialect, s: usize) -> String {
    format!(
        "{} = ?{s} AND n.tier IN ('hot', 'warm') AND {}",
        dialect.unindexed("n.scope"),
        lane_visible_sql_at("n", &format!("?{}", s + 1), &format!("?{}", s + 2))
    )
}

/// The plan's matches (at most [`MAX_MATCHES`], by the plan) scored by
/// FTS5's BM25, the best [`VISIBILITY_HEADROOM`]·limit checked for visibility (a private memory
/// may take a place; the dense side fills in). CROSS JOIN keeps the
/// matches the outer loop (SQLite would otherwise walk the scope's nodes
/// and probe the index for each).
fn exact_hits(
    db: &dyn Sql,
    scope_key: &str,
    prefix: &str,
    words: &[String],
    agent: Option<&str>,
    team: Option<&str>,
    limit: usize,
) -> Result<Vec<Hit>, ApiError> {
    let sql = format!(
        "SELECT n.id, n.type, {}, n.seq, f.score FROM \
         (SELECT r, score FROM \
           (SELECT rowid AS r, -bm25(memory_nodes_fts) AS score FROM memory_nodes_fts WHERE memory_nodes_fts MATCH ?1 \
            ORDER BY rowid DESC LIMIT {MAX_MATCHES}) \
          ORDER BY score DESC LIMIT {checked}) f \
         CROSS JOIN memory_nodes n ON n.rowid = f.r \
         WHERE {} ORDER BY f.score DESC LIMIT {limit}",
        seed_state_sql(Dialect::Sqlite),
        visible_hit_sql(Dialect::Sqlite, 2),
        // Literal limits: a bound `LIMIT ?` makes SQLite re-prepare the
        // statement on every run.
        checked = VISIBILITY_HEADROOM * limit,
    );
    let params =
        [or_of(prefix, words).into(), scope_key.into(), agent.map(str::to_string).into(), team.map(str::to_string).into()];
    Ok(db.query(&sql, &params)?.iter().map(|r| hit(r, r.real(4))).collect())
}

/// A hit from a row `(id, type, state, seq, ...)` and its score.
fn hit(r: &Row, bm25: f64) -> Hit {
    Hit {
        id: r.string(0),
        node_type: r.text(1).unwrap_or_default().to_string(),
        state: r.text(2).map(str::to_string),
        seq: (!r.is_null(3)).then(|| r.int(3)),
        bm25,
    }
}

/// Matches each word's window holds: [`MAX_MATCHES`] shared between the
/// words, at least 64 each.
fn window(words: usize) -> usize {
    MAX_MATCHES.div_ceil(words.max(1)).max(64)
}

/// Where the recent slice starts: `windows[i]` holds word i's most recent
/// matches (rowids, newest first, at most `window` of them); a full window
/// stops somewhere in the past, and the slice is what is newer than the
/// latest of those stops, where every word's matches are complete
/// (`i64::MIN`, the whole scope, when no window is full).
pub fn slice_floor(windows: &[Vec<i64>], window: usize) -> i64 {
    windows.iter().filter(|w| w.len() >= window).filter_map(|w| w.last().copied()).max().unwrap_or(i64::MIN)
}

/// Scores of the slice from `floor` on, best first (ties: the more recent
/// first); `slice_docs` is how many memories the slice holds. Each match in
/// the slice scores BM25 with the slice as the corpus: `Σ idf(w)` over its
/// words, `idf = ln(1 + (N − df + ½)/(df + ½))`, term frequency 1 and
/// average length (`(k1+1)·tf/(tf+k1) = 1`). Returns `(rowid, score)`.
pub fn slice_scores(windows: &[Vec<i64>], floor: i64, slice_docs: usize) -> Vec<(i64, f64)> {
    let df: Vec<usize> = windows.iter().map(|w| w.iter().take_while(|r| **r >= floor).count()).collect();
    let n = slice_docs.max(df.iter().copied().max().unwrap_or(0)) as f64;
    let idf: Vec<f64> = df.iter().map(|&d| (1.0 + (n - d as f64 + 0.5) / (d as f64 + 0.5)).ln()).collect();
    let mut scores: std::collections::HashMap<i64, f64> = std::collections::HashMap::new();
    for (w, rows) in windows.iter().enumerate() {
        for r in rows.iter().take(df[w]) {
            *scores.entry(*r).or_default() += idf[w];
        }
    }
    let mut out: Vec<(i64, f64)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    out
}

/// The plan's words scored as a slice: each word's newest `per_word`
/// matches read in one statement, the slice they all cover scored by
/// [`slice_scores`], the best [`VISIBILITY_HEADROOM`]·limit checked for
/// visibility. A recent-only plan reads [`window`]s; the postings' exact
/// plan reads every match (each word's count is known to fit).
#[allow(clippy::too_many_arguments)]
fn sliced_hits(
    db: &dyn Sql,
    index: Index,
    scope_key: &str,
    prefix: &str,
    words: &[String],
    per_word: usize,
    agent: Option<&str>,
    team: Option<&str>,
    limit: usize,
) -> Result<Vec<Hit>, ApiError> {
    let sql = (0..words.len()).map(|i| index.window_sql(i, i + 1, per_word)).collect::<Vec<_>>().join(" UNION ALL ");
    let params: Vec<SqlValue> = words.iter().map(|w| index.term(prefix, w)).collect();
    let mut windows: Vec<Vec<i64>> = vec![Vec::new(); words.len()];
    for r in db.query(&sql, &params)? {
        if let Some(w) = windows.get_mut(r.int(0) as usize) {
            w.push(r.int(1));
        }
    }
    // Each window newest first, whatever order UNION ALL kept.
    windows.iter_mut().for_each(|w| w.sort_unstable_by(|a, b| b.cmp(a)));
    // The slice's memories: write-order numbers from its oldest to the
    // scope's newest (gaps left by erasure make it a slight overcount).
    let floor = slice_floor(&windows, per_word);
    let slice_docs = db
        .query_one(
            "SELECT (SELECT max(seq) FROM memory_nodes WHERE scope = ?1 AND seq IS NOT NULL) - \
             coalesce((SELECT seq FROM memory_nodes WHERE rowid = ?2), 1) + 1",
            &[scope_key.into(), SqlValue::Integer(floor)],
        )?
        .map(|r| r.int(0).max(0) as usize)
        .unwrap_or(0);
    let scored = slice_scores(&windows, floor, slice_docs);
    let best: Vec<(i64, f64)> = scored.into_iter().take(VISIBILITY_HEADROOM * limit).collect();
    if best.is_empty() {
        return Ok(Vec::new());
    }
    let mut params: Vec<SqlValue> =
        vec![scope_key.into(), agent.map(str::to_string).into(), team.map(str::to_string).into()];
    params.extend(best.iter().map(|(r, _)| SqlValue::Integer(*r)));
    let sql = format!(
        "SELECT n.id, n.type, {}, n.seq, n.rowid FROM memory_nodes n \
         WHERE n.rowid IN ({}) AND {}",
        seed_state_sql(db.dialect()),
        (4..4 + best.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", "),
        visible_hit_sql(db.dialect(), 1)
    );
    let score_of: std::collections::HashMap<i64, f64> = best.iter().copied().collect();
    let mut hits: Vec<(i64, Hit)> = db
        .query(&sql, &params)?
        .iter()
        .map(|r| {
            let rowid = r.int(4);
            (rowid, hit(r, score_of.get(&rowid).copied().unwrap_or(0.0)))
        })
        .collect();
    hits.sort_by(|(ra, a), (rb, b)| b.bm25.total_cmp(&a.bm25).then(rb.cmp(ra)));
    hits.truncate(limit);
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}

/// Whether this database has the full-text index (for `/health`).
pub fn available(db: &dyn Sql) -> Result<bool, ApiError> {
    match db.query_one("SELECT enabled FROM memory_features WHERE name = 'lexical_index'", &[]) {
        Ok(row) => Ok(row.is_some_and(|r| r.int(0) == 1)),
        Err(e) if cairn_spin::sql::is_missing_table(&e) => Ok(false),
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
        let p = scope_prefix("default");
        assert_eq!((p.len(), p.starts_with('x'), p.ends_with('_')), (14, true, true));
        let e = or_of(&p, &terms("sunrise\" OR NEAR(x) * \"sk:"));
        assert_eq!(e, format!("\"{p}sunrise\" OR \"{p}near\" OR \"{p}x\" OR \"{p}sk\""));
        assert!(terms("why is it").is_empty());
        assert_ne!(scope_prefix("tenant:a::scope:b"), p, "each scope its own vocabulary");
    }

    #[test]
    fn plans_keep_the_rarest_words_within_the_bound() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let words = w(&["melanie", "caroline", "sunrise", "paint"]);
        // Both names are common, the two words rare: one name is dropped.
        let p = plan(&words, &[280, 270, 3, 12]);
        assert_eq!((p.words, p.dropped, p.recent_only), (w(&["caroline", "sunrise", "paint"]), w(&["melanie"]), false));
        // Everything fits: every word, exact BM25.
        assert_eq!(plan(&words, &[100, 100, 3, 12]).words, words);
        // Words that match nothing are left out, not "dropped".
        let p = plan(&words, &[0, 0, 3, 0]);
        assert_eq!((p.words, p.dropped), (w(&["sunrise"]), w(&[])));
        // Even the rarest word is over the bound: recent matches of all.
        let big = MAX_MATCHES + 1;
        let p = plan(&words, &[big, big, big, big]);
        assert_eq!((p.words, p.recent_only), (words.clone(), true));
        assert!(plan(&words, &[0, 0, 0, 0]).words.is_empty());
    }

    #[test]
    fn the_recent_slice_is_scored_with_its_own_statistics() {
        // Word 0 is in every recent memory (a full window of 4 reaching
        // back to rowid 7); word 1 is rarer (its window of 4 reaches 2).
        let windows = vec![vec![10, 9, 8, 7], vec![10, 6, 4, 2]];
        let floor = slice_floor(&windows, 4);
        assert_eq!(floor, 7, "the slice starts where the densest window stops");
        let scores = slice_scores(&windows, floor, 4);
        let idf = |n: f64, df: f64| (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        // In the slice (rowids 7..=10): word 0 in 4 of 4, word 1 in 1 of 4.
        assert_eq!(scores[0], (10, idf(4.0, 4.0) + idf(4.0, 1.0)));
        assert_eq!(scores[1..].iter().map(|s| s.0).collect::<Vec<_>>(), [9, 8, 7], "ties: newest first");
        assert!(scores.iter().all(|s| s.0 >= 7), "matches older than the slice are not scored");
        // No full window (a word with few matches): the whole scope is the slice.
        let floor = slice_floor(&[vec![5, 3]], 4);
        let scores = slice_scores(&[vec![5, 3]], floor, 100);
        assert_eq!((floor, scores.len()), (i64::MIN, 2));
        assert_eq!(window(3), 167);
        assert_eq!(window(32), 64);
    }

    #[test]
    fn documents_prefix_every_word() {
        let p = scope_prefix("s");
        assert_eq!(
            document("s", Some("Title"), Some("Hi, Mel—it's 7pm!")),
            format!("{p}Title {p}Hi {p}Mel {p}it {p}s {p}7pm")
        );
        assert_eq!(document("s", None, Some(" ,, ")), "");
    }
}
