//! Text normalization applied to every stored text field and to
//! `input_text` before it is hashed: runs of whitespace collapse to one
//! space, the ends are trimmed, and text longer than [`MAX_TEXT_LEN`]
//! characters is cut to that length with a trailing `…`.

/// Longest stored text, in characters (the reference's `MAX_TEXT_LEN`).
pub const MAX_TEXT_LEN: usize = 8000;

/// Normalizes `s` (see the module docs).
pub fn normalize(s: &str) -> String {
    normalize_with_limit(s, MAX_TEXT_LEN)
}

/// Normalizes `s`, clamping to `max_chars` characters (the last one `…`).
pub fn normalize_with_limit(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut chars = 0usize;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
        if chars > max_chars {
            break;
        }
    }
    if chars > max_chars {
        // Keep max_chars - 1 characters and mark the cut.
        let cut = out.char_indices().nth(max_chars - 1).map(|(i, _)| i).unwrap_or(out.len());
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Normalizes an optional field; text that becomes empty is treated as absent.
pub fn normalize_opt(s: Option<&str>) -> Option<String> {
    s.map(normalize).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_trims() {
        assert_eq!(normalize("  a \n\t b  c "), "a b c");
        assert_eq!(normalize("   "), "");
        assert_eq!(normalize_opt(Some(" \n ")), None);
    }

    #[test]
    fn clamps_with_ellipsis() {
        let long = "x".repeat(8005);
        let n = normalize(&long);
        assert_eq!(n.chars().count(), MAX_TEXT_LEN);
        assert!(n.ends_with('…'));
        assert_eq!(normalize_with_limit("abcdef", 4), "abc…");
        assert_eq!(normalize_with_limit("abcd", 4), "abcd");
        assert_eq!(normalize_with_limit("ab  cd", 4), "ab …");
    }
}
