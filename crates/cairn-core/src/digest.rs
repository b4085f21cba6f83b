//! sha256 helpers: lowercase hex, as every Cairn hash is written.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// sha256 of the canonical JSON form of `value` (see [`crate::canonical_json`]).
pub fn sha256_canonical(value: &Value) -> String {
    sha256_hex(crate::canonical_json::to_string(value))
}

/// Whether `s` looks like a lowercase hex sha256 (`^[a-f0-9]{64}$`).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_vectors() {
        assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_canonical(&json!({"b": 1, "a": 2})), sha256_hex(r#"{"a":2,"b":1}"#));
        assert!(is_sha256_hex(&sha256_hex("x")));
        assert!(!is_sha256_hex("ABC"));
    }
}
