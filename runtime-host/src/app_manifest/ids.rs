//! The identifier rules of Spin's manifest (`spin-serde` `Id<DELIM, LOWER>`),
//! so a name Spin refuses is refused here with the same reason:
//!
//! - component ids, plain dependency names, dependency interface names:
//!   kebab-case (`KebabId`, words split by `-`);
//! - variable names (`[variables]`, `[component.x.variables]`): lower
//!   snake_case (`LowerSnakeId`, words split by `_`, all lowercase);
//! - `sqlite_databases` / `key_value_stores` labels: kebab-case or snake_case.
//!
//! Every word starts with an ASCII letter and holds only ASCII letters and
//! digits, all lowercase or all UPPERCASE.

/// Checks `id` against Spin's rule for words separated by `delim`; `lower`
/// also refuses UPPERCASE words. The error text is Spin's.
pub fn check_id(id: &str, delim: char, lower: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty".into());
    }
    let wrong = if delim == '_' {
        Some('-')
    } else if delim == '-' {
        Some('_')
    } else {
        None
    };
    if let Some(wrong) = wrong
        && id.contains(wrong)
    {
        return Err(format!("words must be separated with {delim:?}, not {wrong:?}"));
    }
    for word in id.split(delim) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!("{delim:?}-separated words must start with an ASCII letter; got {first:?}"));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!("{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!("{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"));
            }
        }
        if lower && upper {
            return Err(format!("Lower-case identifiers must be all lowercase; got {id:?}"));
        }
    }
    Ok(())
}

pub fn check_kebab(id: &str) -> Result<(), String> {
    check_id(id, '-', false)
}

/// `LowerSnakeId`: the rule for variable names.
pub fn check_lower_snake(id: &str) -> Result<(), String> {
    check_id(id, '_', true)
}

/// Labels of `sqlite_databases` and `key_value_stores`.
pub fn check_kebab_or_snake(id: &str) -> Result<(), String> {
    if check_id(id, '-', false).is_ok() || check_id(id, '_', false).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".into())
    }
}

/// A WIT package reference `namespace:name` (`wasm-pkg-common`'s
/// `PackageRef`: both labels kebab-case, lowercase).
pub fn check_package_ref(s: &str) -> Result<(), String> {
    let Some((namespace, name)) = s.split_once(':') else {
        return Err(format!("invalid package reference {s:?}: expected `namespace:name`"));
    };
    for label in [namespace, name] {
        check_id(label, '-', true).map_err(|e| format!("invalid package reference {s:?}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_and_snake_follow_spin() {
        for ok in ["gateway", "cairn-kernel", "a1-b2", "ABC-def"] {
            assert!(check_kebab(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "-a", "a--b", "1a", "a-1", "aBc", "a.b"] {
            assert!(check_kebab(bad).is_err(), "{bad}");
        }
        for ok in ["admin_token", "tier2", "memory_jwt_clock_skew_sec"] {
            assert!(check_lower_snake(ok).is_ok(), "{ok}");
        }
        // Spin's LowerSnakeId: every word starts with a letter, so `x_2` is
        // refused though `[a-z0-9_]` would allow it.
        for bad in ["Admin", "ADMIN", "_x", "x_", "a__b", "1a", "x_2", "a-b", ""] {
            assert!(check_lower_snake(bad).is_err(), "{bad}");
        }
        assert_eq!(check_lower_snake("a-b").unwrap_err(), "words must be separated with '_', not '-'");
        assert!(check_kebab_or_snake("default").is_ok());
        assert!(check_kebab_or_snake("my_db").is_ok());
        assert!(check_kebab_or_snake("my-db").is_ok());
        assert!(check_kebab_or_snake("my db").is_err());
    }

    #[test]
    fn package_refs() {
        assert!(check_package_ref("cairn:memory").is_ok());
        assert!(check_package_ref("wasi:http").is_ok());
        for bad in ["cairn", "cairn:", ":memory", "Cairn:memory", "cairn:mem_ory", "cairn:memory/x"] {
            assert!(check_package_ref(bad).is_err(), "{bad}");
        }
    }
}
