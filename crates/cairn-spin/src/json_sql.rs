//! Reading JSON stored as TEXT inside SQL, spelled for each backend: SQLite's
//! JSON1 functions, PostgreSQL's `jsonb` operators. For statements that
//! inspect stored documents in bulk (the consistency checks); the hot
//! paths read JSON in Rust.
//!
//! On PostgreSQL a cast of malformed text to `jsonb` raises an error (and
//! aborts the transaction), and `AND` does not promise to evaluate its left
//! side first; so every read of a document is guarded by `CASE WHEN
//! cairn_json_valid(doc)`, a function of the kernel's PostgreSQL schema
//! (step 15) that answers false where SQLite's `json_valid` does. A key is
//! always a literal of letters, digits and `_`.

use crate::sql::Dialect;

fn checked_key(key: &str) -> &str {
    assert!(
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "a JSON key in SQL is a plain identifier: {key:?}"
    );
    key
}

/// `doc::jsonb` where `doc` is valid JSON, else NULL.
fn pg_doc(doc: &str) -> String {
    format!("(CASE WHEN cairn_json_valid({doc}) THEN ({doc})::jsonb END)")
}

/// A JSON object text built from `'key', expr` pairs.
pub fn object(d: Dialect, pairs: &str) -> String {
    match d {
        Dialect::Sqlite => format!("json_object({pairs})"),
        Dialect::Postgres => format!("(json_build_object({pairs}))::text"),
    }
}

/// `sql` with every `json_object(…)` call (SQLite's spelling, as a
/// statement is written once) spelled for `d`: on PostgreSQL
/// `(json_build_object(…))::text`. Only that call is rewritten; quoted
/// text is left alone.
pub fn objects_for(d: Dialect, sql: &str) -> String {
    const CALL: &str = "json_object(";
    if d == Dialect::Sqlite {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 32);
    // Paren depths at which an opened json_build_object ends.
    let (mut depth, mut ends, mut quote) = (0usize, Vec::new(), false);
    let mut chars = sql.char_indices().peekable();
    let mut prev = ' ';
    while let Some((i, c)) = chars.next() {
        if quote {
            quote = c != '\'';
        } else if c == '\'' {
            quote = true;
        } else if sql[i..].starts_with(CALL) && !(prev.is_ascii_alphanumeric() || prev == '_') {
            out.push_str("(json_build_object(");
            depth += 1;
            ends.push(depth);
            for _ in 1..CALL.len() {
                chars.next();
            }
            prev = '(';
            continue;
        } else if c == '(' {
            depth += 1;
        } else if c == ')' {
            if ends.last() == Some(&depth) {
                ends.pop();
                out.push_str("))::text");
                depth -= 1;
                prev = ')';
                continue;
            }
            depth = depth.saturating_sub(1);
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Whether `doc` is well-formed JSON.
pub fn valid(d: Dialect, doc: &str) -> String {
    match d {
        Dialect::Sqlite => format!("json_valid({doc})"),
        Dialect::Postgres => format!("cairn_json_valid({doc})"),
    }
}

/// `doc.key` as an SQL scalar: a string as text, a number as a number
/// (SQLite's `json_extract`; on PostgreSQL numbers come back as text, so
/// compare them with [`whole_number`]), NULL when absent.
pub fn text(d: Dialect, doc: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => format!("json_extract({doc}, '$.{key}')"),
        Dialect::Postgres => format!("({} ->> '{key}')", pg_doc(doc)),
    }
}

/// `doc.key` as a JSON value to embed in an [`object`] (keeps its type).
pub fn value(d: Dialect, doc: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => format!("json_extract({doc}, '$.{key}')"),
        Dialect::Postgres => format!("({} -> '{key}')", pg_doc(doc)),
    }
}

/// Whether `doc` has `key` at all (a JSON `null` counts as present).
pub fn present(d: Dialect, doc: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => format!("(json_type({doc}, '$.{key}') IS NOT NULL)"),
        Dialect::Postgres => format!("(({} -> '{key}') IS NOT NULL)", pg_doc(doc)),
    }
}

/// Whether `doc.key` is an array.
pub fn is_array(d: Dialect, doc: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => format!("(coalesce(json_type({doc}, '$.{key}'), '') = 'array')"),
        Dialect::Postgres => format!("(coalesce(jsonb_typeof({} -> '{key}'), '') = 'array')", pg_doc(doc)),
    }
}

/// Whether `doc.key` is a whole number of at least 0, written without a
/// fraction (SQLite's `json_type` says `integer` for `3`, `real` for `3.0`).
pub fn whole_number(d: Dialect, doc: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => {
            format!("(json_type({doc}, '$.{key}') = 'integer' AND json_extract({doc}, '$.{key}') >= 0)")
        }
        Dialect::Postgres => format!(
            "(coalesce(jsonb_typeof({d} -> '{key}') = 'number' AND ({d} -> '{key}')::text ~ '^[0-9]+$', false))",
            d = pg_doc(doc)
        ),
    }
}

/// A FROM item: the elements of the array `doc.key` as rows of `alias`,
/// none when it is not an array; read a field of an element with
/// [`element_text`].
pub fn array_elements(d: Dialect, doc: &str, key: &str, alias: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => format!("json_each({doc}, '$.{key}') {alias}"),
        Dialect::Postgres => format!(
            "jsonb_array_elements(CASE WHEN jsonb_typeof({d} -> '{key}') = 'array' THEN {d} -> '{key}' \
             ELSE '[]'::jsonb END) AS {alias} (value)",
            d = pg_doc(doc)
        ),
    }
}

/// `element.key` as text, for an element of [`array_elements`]; NULL for
/// an element that is not an object.
pub fn element_text(d: Dialect, alias: &str, key: &str) -> String {
    let key = checked_key(key);
    match d {
        Dialect::Sqlite => {
            format!("(CASE WHEN {alias}.type = 'object' THEN json_extract({alias}.value, '$.{key}') END)")
        }
        Dialect::Postgres => {
            format!("(CASE WHEN jsonb_typeof({alias}.value) = 'object' THEN {alias}.value ->> '{key}' END)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(object(Dialect::Sqlite, "'a', x"), "json_object('a', x)");
        assert_eq!(object(Dialect::Postgres, "'a', x"), "(json_build_object('a', x))::text");
        assert_eq!(text(Dialect::Sqlite, "slots", "topic_state"), "json_extract(slots, '$.topic_state')");
        assert!(text(Dialect::Postgres, "slots", "k").contains("cairn_json_valid(slots)"));
        assert!(array_elements(Dialect::Postgres, "n.slots", "citations", "j").ends_with("AS j (value)"));
    }

    #[test]
    fn object_calls_are_renamed_with_their_arguments() {
        let sql = "SELECT json_object('id', n.id, 'n', length(x)) FROM t WHERE a = 'json_object(' \
                   UNION ALL SELECT json_object('k', (1))";
        assert_eq!(objects_for(Dialect::Sqlite, sql), sql);
        assert_eq!(
            objects_for(Dialect::Postgres, sql),
            "SELECT (json_build_object('id', n.id, 'n', length(x)))::text FROM t WHERE a = 'json_object(' \
             UNION ALL SELECT (json_build_object('k', (1)))::text"
        );
    }

    #[test]
    #[should_panic(expected = "plain identifier")]
    fn keys_are_identifiers() {
        text(Dialect::Sqlite, "slots", "a'); DROP TABLE x; --");
    }
}
