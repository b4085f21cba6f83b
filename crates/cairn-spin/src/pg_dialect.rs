//! PostgreSQL's spelling of what the kernel's statements say in SQLite's.
//! Pure and tested here, so a PostgreSQL backend of [`crate::sql::Sql`]
//! translates in one named place and the logic crates keep one set of SQL.
//!
//! So far: placeholders typed by their values, and the transactions of
//! [`crate::sql::write_txn`], [`crate::sql::scope_write_txn`],
//! [`crate::sql::rows_write_txn`] and [`crate::sql::read_txn`]. The rest is planned in docs/postgres-port.md.

use crate::sql::SqlValue;

/// The advisory lock every write transaction takes first (see
/// [`transaction`]): the key is the first 8 bytes of sha256("cairn:writer").
pub const WRITER_LOCK_KEY: i64 = 0xc711_3acd_2d5a_f8b9_u64 as i64;

/// The advisory lock of one scope key (first 8 bytes of
/// sha256("cairn:scope:" + key)), taken by [`crate::sql::scope_write_txn`].
pub fn scope_lock_key(scope_key: &str) -> i64 {
    let h = cairn_core::digest::sha256_hex(format!("cairn:scope:{scope_key}"));
    u64::from_str_radix(&h[..16], 16).expect("sha256 hex") as i64
}

/// What a transaction statement of the seam becomes on PostgreSQL, or
/// `None` for any other statement:
///
/// - `BEGIN IMMEDIATE` (a write transaction: SQLite's one writer) →
///   `BEGIN`, then `pg_advisory_xact_lock(WRITER_LOCK_KEY)`, held to
///   `COMMIT`/`ROLLBACK`: one writer at a time across every instance on the
///   database, exactly SQLite's guarantee.
/// - `BEGIN IMMEDIATE SCOPE <key>…` (a write transaction confined to
///   some scopes, [`crate::sql::scopes_write_txn`]) → `BEGIN`, the writer
///   lock *shared*, then each scope's lock exclusive, in ascending order:
///   writes to different scopes run side by side, writes to one scope one
///   at a time, and every
///   `BEGIN IMMEDIATE` still runs alone (it waits for the shared holders,
///   and they for it). The shared lock comes first in every transaction,
///   so no two transactions wait on each other in a cycle.
/// - `BEGIN IMMEDIATE ROWS` (a write transaction whose conflicts its own
///   row locks settle, [`crate::sql::rows_write_txn`]) → `BEGIN`, then the
///   writer lock *shared*: it runs beside scope writers and other row
///   writers, and never beside a `BEGIN IMMEDIATE`.
/// - `BEGIN` (a read transaction: one snapshot for its statements) →
///   `BEGIN ISOLATION LEVEL REPEATABLE READ` (PostgreSQL's default, READ
///   COMMITTED, takes a new snapshot per statement).
/// - `COMMIT`, `ROLLBACK` → themselves.
pub fn transaction(sql: &str) -> Option<Vec<String>> {
    let words: Vec<String> = sql.split_whitespace().map(|w| w.trim_end_matches(';').to_ascii_uppercase()).collect();
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["BEGIN", "IMMEDIATE"] | ["BEGIN", "IMMEDIATE", "TRANSACTION"] => {
            Some(vec!["BEGIN".into(), format!("SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")])
        }
        ["BEGIN", "IMMEDIATE", "SCOPE", keys @ ..] if !keys.is_empty() => {
            let mut keys: Vec<i64> = keys.iter().map(|k| k.parse().ok()).collect::<Option<_>>()?;
            // Ascending, each once: two transactions locking overlapping
            // scopes take them in one order, so neither waits on the other
            // in a cycle.
            keys.sort_unstable();
            keys.dedup();
            let mut out = vec!["BEGIN".into(), format!("SELECT pg_advisory_xact_lock_shared({WRITER_LOCK_KEY})")];
            out.extend(keys.iter().map(|k| format!("SELECT pg_advisory_xact_lock({k})")));
            Some(out)
        }
        ["BEGIN", "IMMEDIATE", "ROWS"] => {
            Some(vec!["BEGIN".into(), format!("SELECT pg_advisory_xact_lock_shared({WRITER_LOCK_KEY})")])
        }
        ["BEGIN"] | ["BEGIN", "TRANSACTION"] | ["BEGIN", "DEFERRED"] => {
            Some(vec!["BEGIN ISOLATION LEVEL REPEATABLE READ".into()])
        }
        ["COMMIT"] | ["END"] => Some(vec!["COMMIT".into()]),
        ["ROLLBACK"] => Some(vec!["ROLLBACK".into()]),
        _ => None,
    }
}

/// SQLite's placeholders numbered as PostgreSQL's
/// (`cairn_core::sql_placeholders`), each `$n` cast to its value's type: `::bigint`,
/// `::float8`, `::text`, `::bytea` (NULL stays uncast). PostgreSQL infers a
/// parameter's type from where it stands (`n < ?` against an int4
/// expression, `LIMIT 2 * ?`, `max(?, 0)` give `integer`) and the driver
/// refuses an `int8` value for it; the cast makes the value's own type win,
/// as SQLite's typeless parameters behave. Fails when the statement takes
/// a different number of parameters than `params` holds.
pub fn typed_statement(sql: &str, params: &[SqlValue]) -> Result<String, String> {
    let (out, wanted) = cairn_core::sql_placeholders::numbered_with(sql, |n| match params.get(n - 1) {
        Some(SqlValue::Integer(_)) => "::bigint",
        Some(SqlValue::Real(_)) => "::float8",
        Some(SqlValue::Text(_)) => "::text",
        Some(SqlValue::Blob(_)) => "::bytea",
        Some(SqlValue::Null) | None => "",
    })?;
    if wanted != params.len() {
        return Err(format!("{} parameters given, the statement takes {wanted}", params.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_placeholders_carry_their_values_types() {
        let params = [SqlValue::Integer(1), SqlValue::Real(0.5), "a".into(), SqlValue::Blob(vec![1]), SqlValue::Null];
        assert_eq!(
            typed_statement("SELECT ?, ?, ?2, ?, ?, ?", &params).unwrap(),
            "SELECT $1::bigint, $2::float8, $2::float8, $3::text, $4::bytea, $5"
        );
        assert!(typed_statement("SELECT ?", &[]).unwrap_err().contains("takes 1"));
    }

    #[test]
    fn transactions_take_sqlite_guarantees() {
        let write = transaction("BEGIN IMMEDIATE").unwrap();
        assert_eq!(write[0], "BEGIN");
        assert!(write[1].contains("pg_advisory_xact_lock"));
        assert_eq!(transaction("begin").unwrap(), ["BEGIN ISOLATION LEVEL REPEATABLE READ"]);
        assert_eq!(transaction("COMMIT;").unwrap(), ["COMMIT"]);
        assert_eq!(transaction("ROLLBACK").unwrap(), ["ROLLBACK"]);
        let scoped = transaction(&format!("BEGIN IMMEDIATE SCOPE {}", scope_lock_key("tenant:a::scope:b"))).unwrap();
        assert_eq!(scoped[0], "BEGIN");
        assert_eq!(scoped[1], format!("SELECT pg_advisory_xact_lock_shared({WRITER_LOCK_KEY})"));
        assert_eq!(scoped[2], format!("SELECT pg_advisory_xact_lock({})", scope_lock_key("tenant:a::scope:b")));
        assert_ne!(scope_lock_key("a"), scope_lock_key("b"));
        let rows = transaction("BEGIN IMMEDIATE ROWS").unwrap();
        assert_eq!(rows, ["BEGIN".to_string(), format!("SELECT pg_advisory_xact_lock_shared({WRITER_LOCK_KEY})")]);
        assert!(transaction("BEGIN IMMEDIATE SCOPE x").is_none(), "a key is a number");
        assert!(transaction("BEGIN IMMEDIATE SCOPE 3 x").is_none());
        assert!(transaction("BEGIN IMMEDIATE SCOPE").is_none());
        // Several scopes: locked in ascending order, each once.
        let several = transaction("BEGIN IMMEDIATE SCOPE 7 -2 7 5").unwrap();
        let locks: Vec<&str> = several[2..].iter().map(String::as_str).collect();
        assert_eq!(
            locks,
            ["SELECT pg_advisory_xact_lock(-2)", "SELECT pg_advisory_xact_lock(5)", "SELECT pg_advisory_xact_lock(7)"]
        );
        assert!(transaction("ROLLBACK TO SAVEPOINT a").is_none());
        assert!(transaction("SELECT 1").is_none());
    }

    #[test]
    fn the_writer_lock_key_is_the_documented_hash() {
        let h = cairn_core::digest::sha256_hex("cairn:writer");
        assert_eq!(WRITER_LOCK_KEY, u64::from_str_radix(&h[..16], 16).unwrap() as i64);
    }
}
