//! Reading Spin variables (`fermyon:spin/variables@2.0.0`).

use crate::bindings::fermyon::spin::variables;

/// The variable's value, or `None` when it is undefined or empty.
pub fn get(name: &str) -> Option<String> {
    variables::get(name).ok().filter(|v| !v.is_empty())
}

/// A boolean variable (`true/1/yes/on`), `default` when unset.
pub fn get_bool(name: &str, default: bool) -> bool {
    match get(name) {
        Some(v) => matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        None => default,
    }
}
