//! SQLite's placeholders in PostgreSQL's spelling: `?NNN` becomes `$NNN`,
//! and a bare `?` becomes `$k` where k is one more than the largest number
//! used so far (SQLite's own numbering, so `?1, ?, ?5, ?` is `$1, $2, $5,
//! $6`). String literals, quoted identifiers and comments are copied
//! unchanged. Pure, so the components' storage seam (`cairn_spin::pg_dialect`)
//! and the host's own few statements (`runtime-host/src/host_db.rs`) share it.

/// The rewritten statement and how many parameters it takes.
pub fn numbered(sql: &str) -> Result<(String, usize), String> {
    numbered_with(sql, |_| "")
}

/// [`numbered`], with `suffix(n)` written after each `$n` (a cast).
pub fn numbered_with(sql: &str, suffix: impl Fn(usize) -> &'static str) -> Result<(String, usize), String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut i, mut largest, mut start) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                // To the closing quote; a doubled quote is an escaped one.
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err("unterminated quote".into());
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").ok_or("unterminated comment")?;
                i += end + 4;
            }
            b'?' => {
                out.push_str(&sql[start..i]);
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let n = if digits == 0 {
                    largest + 1
                } else {
                    sql[i + 1..i + 1 + digits].parse::<usize>().map_err(|e| e.to_string())?
                };
                if n == 0 {
                    return Err("placeholder ?0".into());
                }
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
                out.push_str(suffix(n));
                i += 1 + digits;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[start..]);
    Ok((out, largest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_numbered_placeholders_follow_sqlite_numbering() {
        assert_eq!(numbered("SELECT ?1, ?, ?5, ?").unwrap(), ("SELECT $1, $2, $5, $6".into(), 6));
        assert_eq!(numbered("a = ? AND b IN (?, ?)").unwrap(), ("a = $1 AND b IN ($2, $3)".into(), 3));
        assert_eq!(numbered("x = ?2 OR y = ?2 OR z = ?1").unwrap(), ("x = $2 OR y = $2 OR z = $1".into(), 2));
        assert_eq!(numbered("SELECT 1").unwrap(), ("SELECT 1".into(), 0));
    }

    #[test]
    fn quotes_and_comments_are_left_alone() {
        let sql = "SELECT '?', \"a?b\", 'it''s ?' -- what?\n, ? /* ?9 */ , ?";
        assert_eq!(numbered(sql).unwrap().0, "SELECT '?', \"a?b\", 'it''s ?' -- what?\n, $1 /* ?9 */ , $2");
    }

    #[test]
    fn malformed_statements_are_refused() {
        assert!(numbered("SELECT 'open").is_err());
        assert!(numbered("SELECT /* open").is_err());
        assert!(numbered("SELECT ?0").is_err());
    }
}
